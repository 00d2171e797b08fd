"""mirror.lock.json: round trip, validation naming the JSON path, built wheels."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from mirror.manifest import FileEntry, InvalidManifest, Manifest, load_manifest

SHA_A = "a" * 64
SHA_B = "b" * 64
SHA_C = "c" * 64

DOC: dict[str, object] = {
    "version": 1,
    "created_by": "offline-mirror 0.1.0",
    "upstream": "https://pypi.org/simple",
    "resolver": "uv",
    "targets": {
        "linux-amd64-cp311": {
            "target": {"name": "linux-amd64-cp311", "platform": "linux/amd64", "python": "3.11", "glibc": "2.28"},
            "packages": [
                {"name": "docopt", "version": "0.6.2", "role": "runtime", "files": ["docopt-0.6.2.tar.gz"],
                 "via": ["requirements.txt:1"]},
                {"name": "setuptools", "version": "80.0.0", "role": "build",
                 "files": ["setuptools-80.0.0-py3-none-any.whl"], "needed_by": ["docopt-0.6.2.tar.gz"]},
            ],
            "builds": [
                {"for": "docopt-0.6.2.tar.gz", "requires": ["setuptools>=40.8.0", "wheel"],
                 "static": ["setuptools>=40.8.0"], "dynamic": [], "backend": "setuptools.build_meta:__legacy__",
                 "error": None, "pins": ["setuptools==80.0.0"]},
            ],
        }
    },
    "files": {
        "docopt-0.6.2.tar.gz": {"project": "docopt", "version": "0.6.2", "kind": "sdist",
                                "url": "https://files.example/docopt-0.6.2.tar.gz", "sha256": SHA_A, "size": 25901,
                                "requires_python": None, "upload_time": "2014-06-16T11:18:57Z", "yanked": False},
        "setuptools-80.0.0-py3-none-any.whl": {"project": "setuptools", "version": "80.0.0", "kind": "wheel",
                                               "url": "https://files.example/setuptools-80.0.0-py3-none-any.whl",
                                               "sha256": SHA_B, "size": 1, "requires_python": ">=3.9",
                                               "upload_time": None, "yanked": "broken"},
    },
}


def test_round_trip() -> None:
    manifest = Manifest.from_dict(DOC)
    assert manifest.to_dict() == DOC
    entry = manifest.target("linux-amd64-cp311")
    assert [p.pin for p in entry.runtime()] == ["docopt==0.6.2"]
    assert [p.pin for p in entry.build()] == ["setuptools==80.0.0"]
    assert entry.filenames() == ["docopt-0.6.2.tar.gz", "setuptools-80.0.0-py3-none-any.whl"]
    assert manifest.files["docopt-0.6.2.tar.gz"].relpath == "docopt/docopt-0.6.2.tar.gz"


def test_with_built_wheel_adds_the_file_to_every_package_using_the_sdist() -> None:
    manifest = Manifest.from_dict(DOC)
    wheel = FileEntry(filename="docopt-0.6.2-py2.py3-none-any.whl", project="docopt", version="0.6.2", kind="wheel",
                      url=None, sha256=SHA_C, size=10, built_from="docopt-0.6.2.tar.gz")
    updated = manifest.with_built_wheel("linux-amd64-cp311", "docopt-0.6.2.tar.gz", wheel)
    (docopt,) = updated.target("linux-amd64-cp311").runtime()
    assert docopt.files == ("docopt-0.6.2.tar.gz", "docopt-0.6.2-py2.py3-none-any.whl")
    again = Manifest.from_dict(json.loads(updated.dumps()))
    assert again.files["docopt-0.6.2-py2.py3-none-any.whl"].built_from == "docopt-0.6.2.tar.gz"
    assert again == updated
    assert manifest.target("linux-amd64-cp311").runtime()[0].files == ("docopt-0.6.2.tar.gz",)  # not mutated


def broken(path: list[str | int], value: object) -> dict[str, object]:
    doc = copy.deepcopy(DOC)
    node: object = doc
    for key in path[:-1]:
        node = node[key]  # type: ignore[index]
    if value is KeyError:
        del node[path[-1]]  # type: ignore[attr-defined]
    else:
        node[path[-1]] = value  # type: ignore[index]
    return doc


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (broken(["version"], 2), "mirror.lock.json: version: expected 1, got 2"),
        (broken(["files", "docopt-0.6.2.tar.gz", "sha256"], "XYZ"),
         "mirror.lock.json: files.docopt-0.6.2.tar.gz.sha256: 'XYZ' is not a lowercase hex sha256"),
        (broken(["files", "docopt-0.6.2.tar.gz", "url"], "ftp://x/docopt-0.6.2.tar.gz"),
         "mirror.lock.json: files.docopt-0.6.2.tar.gz.url: 'ftp://x/docopt-0.6.2.tar.gz' is not an http(s) or file URL"),
        (broken(["files", "docopt-0.6.2.tar.gz", "url"], None),
         "mirror.lock.json: files.docopt-0.6.2.tar.gz.url: missing (only a wheel built here has no URL)"),
        (broken(["files", "docopt-0.6.2.tar.gz", "project"], "other"),
         "mirror.lock.json: files.docopt-0.6.2.tar.gz.project: 'other' does not match the filename (docopt)"),
        (broken(["files", "docopt-0.6.2.tar.gz", "size"], -1),
         "mirror.lock.json: files.docopt-0.6.2.tar.gz.size: expected a non-negative integer, got -1"),
        ({**DOC, "files": {"../evil-1.0.tar.gz": {}}},
         "mirror.lock.json: files.../evil-1.0.tar.gz: not a safe wheel or sdist filename"),
        (broken(["targets", "linux-amd64-cp311", "packages", 0, "role"], "dev"),
         "mirror.lock.json: targets.linux-amd64-cp311.packages[0].role: expected 'runtime' or 'build', got 'dev'"),
        (broken(["targets", "linux-amd64-cp311", "packages", 0, "files"], ["nope-1.0.tar.gz"]),
         "mirror.lock.json: targets.linux-amd64-cp311.packages[0].files: 'nope-1.0.tar.gz' is not listed under files"),
        (broken(["targets", "linux-amd64-cp311", "target", "platform"], "linux/amd65"),
         "mirror.lock.json: targets.linux-amd64-cp311.target.platform: 'linux/amd65' is not a known platform"),
    ],
)
def test_invalid_manifest_names_the_path(doc: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidManifest) as info:
        Manifest.from_dict(doc)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_load_manifest_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidManifest, match="no such file; run 'mirror lock' first"):
        load_manifest(tmp_path)
    (tmp_path / "mirror.lock.json").write_text("{not json")
    with pytest.raises(InvalidManifest, match=r"mirror.lock.json: cannot read: "):
        load_manifest(tmp_path)
    (tmp_path / "mirror.lock.json").write_text(json.dumps(broken(["version"], 7)))
    with pytest.raises(InvalidManifest) as info:
        load_manifest(tmp_path)
    assert str(info.value) == f"{tmp_path / 'mirror.lock.json'}: version: expected 1, got 7"
