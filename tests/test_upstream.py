"""The upstream fixture serves real, installable files: pip downloads, installs and builds from it."""

from __future__ import annotations

import base64
import hashlib
import http.client
import importlib.metadata
import json
import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from packaging.tags import sys_tags
from packaging.version import Version
from uv import find_uv_bin

from tests.fixtures.dists import (
    DEFAULT_RELEASES,
    NATIVE_TAGS,
    BackendSdist,
    Catalog,
    FixtureError,
    Release,
    pyproject_text,
    repack_installed,
)
from tests.fixtures.env import isolated_env, pip_command
from tests.fixtures.index import HTML_V1, JSON_V1, negotiate
from tests.fixtures.server import Upstream, drop_after, fail_times, http_request, wrong_bytes
from tests.om_backend import om_backend

MakeUpstream = Callable[..., Upstream]
PIP_ACCEPT = f"{JSON_V1}, {HTML_V1}; q=0.1, text/html; q=0.01"

# pip 23.2+ reads PEP 714 "core-metadata" from JSON pages; 22.3-23.1 (bundled with Python 3.10) do not, and would
# crash on the old "dist-info-metadata" key, which is why neither the fixture nor mirror index emits that one.
PIP_READS_CORE_METADATA = tuple(int(p) for p in importlib.metadata.version("pip").split(".")[:2]) >= (23, 2)


def run_pip(upstream: Upstream, command: str, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    home.mkdir(exist_ok=True)
    return subprocess.run(
        pip_command(command, upstream.url, *args),
        env=isolated_env(home),
        capture_output=True,
        text=True,
        timeout=300,
    )


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, f"{proc.args}\n{proc.stdout}\n{proc.stderr}"
    # The dead proxy catches any request to another host: pip warns about the retries, and
    # a failed index page would leave pip without candidates.
    output = proc.stdout + proc.stderr
    assert "ProxyError" not in output and "proxy connection error" not in output, output
    return proc


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def get(upstream: Upstream, path: str, accept: str | None = None) -> tuple[int, dict[str, str], bytes]:
    result = http_request(upstream.base_url + path, headers={} if accept is None else {"Accept": accept})
    return result.status, dict(result.headers), result.body


# --- content negotiation and pages -------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "text/html"),
        ("", "text/html"),
        ("*/*", "text/html"),
        (JSON_V1, JSON_V1),
        (PIP_ACCEPT, JSON_V1),
        (f"{JSON_V1}; q=0.5, text/html", "text/html"),
        (f"text/html; q=0.5, {HTML_V1}; q=0.9", HTML_V1),
        ("application/vnd.pypi.simple.latest+json", JSON_V1),
        ("text/html, application/vnd.pypi.simple.v1+json", "text/html"),  # tie: first listed
        (f"{JSON_V1}; q=0", None),
        ("application/xml", None),
    ],
)
def test_negotiate(accept: str | None, expected: str | None) -> None:
    assert negotiate(accept) == expected


def test_project_json_page(clean_upstream: Upstream) -> None:
    status, headers, body = get(clean_upstream, "/simple/om-pure/", PIP_ACCEPT)
    assert (status, headers["content-type"], headers["vary"]) == (200, JSON_V1, "Accept")
    page = json.loads(body)
    assert page["meta"] == {"api-version": "1.1"}
    assert page["name"] == "om-pure"
    assert page["versions"] == ["0.9", "1.0", "2.0"]
    by_name = {f["filename"]: f for f in page["files"]}
    assert list(by_name) == [
        "om_pure-0.9-py3-none-any.whl",
        "om_pure-0.9.tar.gz",
        "om_pure-1.0-py3-none-any.whl",
        "om_pure-1.0.tar.gz",
        "om_pure-2.0-py3-none-any.whl",
        "om_pure-2.0.tar.gz",
    ]
    for entry in page["files"]:
        # Relative URLs resolve against the page: /simple/om-pure/../../files/x -> /files/x
        assert entry["url"] == f"../../files/{entry['filename']}"
        status, _, data = get(clean_upstream, f"/files/{entry['filename']}")
        assert status == 200
        assert entry["hashes"] == {"sha256": hashlib.sha256(data).hexdigest()}
        assert entry["size"] == len(data)
        assert entry["upload-time"] == "2024-01-01T00:00:00.000000Z"
    assert [by_name[n]["yanked"] for n in by_name] == ["broken", "broken", False, False, False, False]
    assert "requires-python" not in by_name["om_pure-0.9.tar.gz"]
    assert by_name["om_pure-1.0-py3-none-any.whl"]["requires-python"] == ">=3.8"
    assert by_name["om_pure-2.0.tar.gz"]["requires-python"] == ">=3.9"
    assert by_name["om_pure-2.0.tar.gz"]["core-metadata"] is False

    wheel = by_name["om_pure-2.0-py3-none-any.whl"]
    status, _, metadata = get(clean_upstream, "/files/om_pure-2.0-py3-none-any.whl.metadata")
    assert status == 200
    assert wheel["core-metadata"] == {"sha256": hashlib.sha256(metadata).hexdigest()}
    assert wheel["data-dist-info-metadata"] == wheel["core-metadata"]
    assert "dist-info-metadata" not in wheel
    assert metadata.decode() == (
        "Metadata-Version: 2.1\n"
        "Name: om-pure\n"
        "Version: 2.0\n"
        "Summary: om-pure: an offline-mirror test fixture\n"
        "Requires-Python: >=3.9\n"
        'Requires-Dist: om-winhelper; sys_platform == "win32"\n'
        "Requires-Dist: om-dep\n\n"
    )
    assert clean_upstream.errors == []


def test_project_html_page(clean_upstream: Upstream) -> None:
    status, headers, body = get(clean_upstream, "/simple/om-pure/")
    assert (status, headers["content-type"]) == (200, "text/html")
    text = body.decode()
    assert '<meta name="pypi:repository-version" content="1.1">' in text
    anchors = re.findall(r"<a ([^>]*)>([^<]*)</a>", text)
    assert [name for _, name in anchors] == [
        "om_pure-0.9-py3-none-any.whl",
        "om_pure-0.9.tar.gz",
        "om_pure-1.0-py3-none-any.whl",
        "om_pure-1.0.tar.gz",
        "om_pure-2.0-py3-none-any.whl",
        "om_pure-2.0.tar.gz",
    ]
    attrs = {name: dict(re.findall(r'([\w-]+)="([^"]*)"', a)) for a, name in anchors}
    for name, attr in attrs.items():
        _, _, data = get(clean_upstream, f"/files/{name}")
        assert attr["href"] == f"../../files/{name}#sha256={hashlib.sha256(data).hexdigest()}"
    assert attrs["om_pure-0.9.tar.gz"] == {
        "href": attrs["om_pure-0.9.tar.gz"]["href"],
        "data-yanked": "broken",
    }
    assert attrs["om_pure-1.0.tar.gz"]["data-requires-python"] == "&gt;=3.8"
    wheel = attrs["om_pure-1.0-py3-none-any.whl"]
    _, _, metadata = get(clean_upstream, "/files/om_pure-1.0-py3-none-any.whl.metadata")
    expected = f"sha256={hashlib.sha256(metadata).hexdigest()}"
    assert (wheel["data-core-metadata"], wheel["data-dist-info-metadata"]) == (expected, expected)
    assert "data-yanked" not in wheel


def test_root_pages(clean_upstream: Upstream) -> None:
    names = [
        "om-backend", "om-buildhelper", "om-dep", "om-dynamic", "om-native", "om-pure",
        "om-sdistonly", "om-setuphelper", "om-setupreq", "om-winhelper",
        "packaging", "setuptools", "wheel",
    ]  # fmt: skip
    _, headers, body = get(clean_upstream, "/simple/", JSON_V1)
    assert headers["content-type"] == JSON_V1
    assert json.loads(body) == {
        "meta": {"api-version": "1.1"},
        "projects": [{"name": n} for n in names],
    }
    _, headers, body = get(clean_upstream, "/simple/", HTML_V1)
    assert headers["content-type"] == HTML_V1
    assert re.findall(r'<a href="([^"]*)">', body.decode()) == [f"{n}/" for n in names]


@pytest.mark.parametrize(
    ("path", "status", "location"),
    [
        ("/simple", 301, "/simple/"),
        ("/simple/OM_Pure/", 301, "/simple/om-pure/"),
        ("/simple/om.pure/", 301, "/simple/om-pure/"),
        ("/simple/om-pure", 301, "/simple/om-pure/"),
        ("/simple/om-unknown/", 404, None),
        ("/simple/om-pure/extra/", 404, None),
        ("/files/om_unknown-1.0.tar.gz", 404, None),
        ("/files/om_pure-2.0.tar.gz.metadata", 404, None),  # no PEP 658 metadata for sdists
        ("/elsewhere", 404, None),
    ],
)
def test_redirects_and_not_found(clean_upstream: Upstream, path: str, status: int, location: str | None) -> None:
    got_status, headers, _ = get(clean_upstream, path)
    assert (got_status, headers.get("location")) == (status, location)


def test_406_when_nothing_acceptable(clean_upstream: Upstream) -> None:
    assert get(clean_upstream, "/simple/om-pure/", "application/xml")[0] == 406


def test_format_query_parameter_overrides_accept(clean_upstream: Upstream) -> None:
    _, headers, _ = get(clean_upstream, f"/simple/om-dep/?format={JSON_V1}", "text/html")
    assert headers["content-type"] == JSON_V1


@pytest.mark.parametrize("path", ["/simple/om-pure/", "/files/om_dep-1.0-py3-none-any.whl"])
def test_head(clean_upstream: Upstream, path: str) -> None:
    head = http_request(clean_upstream.base_url + path, method="HEAD")
    full = http_request(clean_upstream.base_url + path)
    assert (head.status, head.body) == (200, b"")
    assert head.headers["content-length"] == str(len(full.body))
    assert head.headers["content-type"] == full.headers["content-type"]
    assert [(r.method, r.path) for r in clean_upstream.requests] == [("HEAD", path), ("GET", path)]


def test_absolute_urls(make_upstream: MakeUpstream) -> None:
    upstream = make_upstream([Release(name="om-dep", version="1.0")], absolute_urls=True)
    _, _, body = get(upstream, "/simple/om-dep/", JSON_V1)
    (entry,) = json.loads(body)["files"]
    assert entry["url"] == f"{upstream.base_url}/files/om_dep-1.0-py3-none-any.whl"
    assert http_request(entry["url"]).status == 200


# --- the distributions themselves --------------------------------------------------------------


def _record_digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def test_every_wheel_has_a_correct_record(upstream_catalog: Catalog) -> None:
    wheels = [n for n in upstream_catalog.filenames if n.endswith(".whl")]
    assert len(wheels) == 18
    for name in wheels:
        with zipfile.ZipFile(upstream_catalog.files_dir / name) as zf:
            # the wheel's own RECORD (setuptools also carries its vendored packages' dist-info)
            (record,) = [n for n in zf.namelist() if re.fullmatch(r"[^/]+\.dist-info/RECORD", n)]
            rows = [line.split(",") for line in zf.read(record).decode().splitlines()]
            assert sorted(r[0] for r in rows) == sorted(zf.namelist()), name
            for path, digest, size in rows:
                if path == record:
                    assert (digest, size) == ("", ""), name
                    continue
                data = zf.read(path)
                assert (digest, size) == (_record_digest(data), str(len(data))), (name, path)
            wheel_file = zf.read(record.replace("RECORD", "WHEEL")).decode()
        tags = [line[5:] for line in wheel_file.splitlines() if line.startswith("Tag: ")]
        assert tags == om_backend.expand_tag(name[: -len(".whl")].split("-", 2)[2]), name


def test_native_wheel_tags(upstream_catalog: Catalog) -> None:
    wheel = upstream_catalog.files_dir / f"om_native-1.0-{NATIVE_TAGS[0]}.whl"
    with zipfile.ZipFile(wheel) as zf:
        assert zf.read("om_native-1.0.dist-info/WHEEL").decode() == (
            "Wheel-Version: 1.0\n"
            "Generator: om_backend 1.0\n"
            "Root-Is-Purelib: false\n"
            "Tag: cp311-cp311-manylinux_2_17_x86_64\n"
            "Tag: cp311-cp311-manylinux2014_x86_64\n"
        )
        assert zf.read("om_native/__init__.py").decode() == (
            f"NAME = 'om-native'\nVERSION = '1.0'\nBUILT_FOR = {NATIVE_TAGS[0]!r}\n"
        )


def test_sdist_layout(upstream_catalog: Catalog) -> None:
    tomllib = pytest.importorskip("tomllib")
    with tarfile.open(upstream_catalog.files_dir / "om_sdistonly-1.0.tar.gz") as tar:
        assert tar.getnames() == [
            "om_sdistonly-1.0/PKG-INFO",
            "om_sdistonly-1.0/om_sdistonly/__init__.py",
            "om_sdistonly-1.0/pyproject.toml",
        ]
        member = tar.extractfile("om_sdistonly-1.0/pyproject.toml")
        assert member is not None
        pyproject = tomllib.loads(member.read().decode())
    assert pyproject["build-system"] == {
        "requires": ["om-backend", "om-buildhelper"],
        "build-backend": "om_backend",
    }
    assert pyproject["tool"]["om-backend"] == {
        "dynamic-requires": ["om-dynamic"],
        "import-check": ["om_buildhelper", "om_dynamic"],
    }


@pytest.mark.parametrize("release", [r for r in DEFAULT_RELEASES if isinstance(r.sdist, BackendSdist)], ids=str)
def test_backend_toml_fallback_parses_what_the_fixture_writes(release: Release) -> None:
    # om_backend must run on Pythons without tomllib: its parser must agree with tomllib.
    tomllib = pytest.importorskip("tomllib")
    assert isinstance(release.sdist, BackendSdist)
    text = pyproject_text(release, release.sdist)
    assert om_backend._parse_toml_subset(text) == tomllib.loads(text)


def test_om_backend_runs_on_python_38(upstream_catalog: Catalog, tmp_path: Path) -> None:
    # The backend promises Python >= 3.8 without tomllib; check it there when such a Python exists.
    pythons = sorted((Path.home() / ".pyenv" / "versions").glob("3.8*/bin/python"))
    if not pythons:
        pytest.skip("no Python 3.8 interpreter on this machine")
    with tarfile.open(upstream_catalog.files_dir / "om_sdistonly-1.0.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    source = tmp_path / "om_sdistonly-1.0"
    (source / "out").mkdir()
    probe = (
        f"import sys; sys.path.insert(0, {str(Path(om_backend.__file__).parent)!r}); "
        "import om_backend as b; "
        "print(b.get_requires_for_build_wheel(), b.build_sdist('out'), "
        "b.prepare_metadata_for_build_wheel('out'))"
    )
    proc = subprocess.run(
        [str(pythons[-1]), "-I", "-c", probe],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "['om-dynamic'] om_sdistonly-1.0.tar.gz om_sdistonly-1.0.dist-info\n"


def test_repack_needs_an_installed_distribution(tmp_path: Path) -> None:
    with pytest.raises(FixtureError) as info:
        repack_installed("om-not-installed", tmp_path)
    assert str(info.value) == (
        "cannot repack 'om-not-installed': it is not installed in the test environment "
        f"({sys.executable}); install it there (it is a test dependency)"
    )


# --- pip against the fixture -------------------------------------------------------------------


def test_pip_download_with_dependencies(clean_upstream: Upstream, tmp_path: Path) -> None:
    ok(run_pip(clean_upstream, "download", "om-pure==2.0", "-d", str(tmp_path / "d"), home=tmp_path / "h"))
    assert files_in(tmp_path / "d") == ["om_dep-1.0-py3-none-any.whl", "om_pure-2.0-py3-none-any.whl"]
    # pip read the PEP 658 metadata instead of downloading wheels to resolve (pip >= 23.2 reads it from JSON).
    if PIP_READS_CORE_METADATA:
        assert "/files/om_pure-2.0-py3-none-any.whl.metadata" in clean_upstream.requests.paths()
    assert "/simple/om-winhelper/" not in clean_upstream.requests.paths()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("--platform", "manylinux_2_17_aarch64", "om-native"),
            ["om_native-1.0-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"],
        ),
        (
            ("--platform", "win_amd64", "om-native", "om-pure==2.0"),
            [
                "om_dep-1.0-py3-none-any.whl",
                "om_native-1.0-cp311-cp311-win_amd64.whl",
                "om_pure-2.0-py3-none-any.whl",
                # No om-winhelper: pip evaluates markers (sys_platform == "win32") against the
                # running interpreter even with --platform. uv does not: see the test below.
            ],
        ),
        (
            ("--platform", "musllinux_1_2_x86_64", "om-native"),
            ["om_native-1.0-cp311-cp311-musllinux_1_2_x86_64.whl"],
        ),
        (
            # requires-python is honoured: om-pure 2.0 needs >=3.9.
            ("--platform", "any", "--python-version", "3.8", "--abi", "none", "om-pure"),
            ["om_pure-1.0-py3-none-any.whl"],
        ),
    ],
    ids=["linux-aarch64", "windows", "musllinux", "py38"],
)
def test_pip_download_for_a_foreign_target(
    upstream: Upstream, tmp_path: Path, args: tuple[str, ...], expected: list[str]
) -> None:
    defaults = ["--only-binary=:all:", "--implementation", "cp"]
    if "--python-version" not in args:
        defaults += ["--python-version", "3.11", "--abi", "cp311"]
    ok(run_pip(upstream, "download", *defaults, *args, "-d", str(tmp_path / "d"), home=tmp_path / "h"))
    assert files_in(tmp_path / "d") == expected


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        ("windows", ["om-dep==1.0", "om-native==1.0", "om-pure==2.0", "om-winhelper==1.0"]),
        ("aarch64-manylinux_2_17", ["om-dep==1.0", "om-native==1.0", "om-pure==2.0"]),
    ],
)
def test_uv_resolves_for_the_target_platform(
    upstream: Upstream, tmp_path: Path, platform: str, expected: list[str]
) -> None:
    # uv reads the PEP 691 JSON pages and evaluates markers for the target, not the host.
    (tmp_path / "requirements.in").write_text("om-pure==2.0\nom-native\n")
    home = tmp_path / "h"
    home.mkdir()
    proc = subprocess.run(
        [
            find_uv_bin(), "pip", "compile", "--no-config", "--no-cache", "--quiet", "--no-header",
            "--no-annotate", "--index-url", upstream.url, "--python-platform", platform,
            "--python-version", "3.11", str(tmp_path / "requirements.in"),
        ],
        env=isolated_env(home),
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    ok(proc)
    assert proc.stdout.split() == expected


def test_pip_installs_the_host_wheel(upstream: Upstream, tmp_path: Path) -> None:
    supported = {str(t) for t in sys_tags()}
    best = next(
        (tag for t in sys_tags() for tag in NATIVE_TAGS if str(t) in om_backend.expand_tag(tag)),
        None,
    )
    if best is None:
        pytest.skip(f"none of om-native's wheels fits this host ({sorted(supported)[:3]}...)")
    target = tmp_path / "target"
    ok(run_pip(upstream, "install", "--target", str(target), "om-native", "om-pure", home=tmp_path / "h"))
    probe = "import om_native, om_pure, om_dep; print(om_native.BUILT_FOR, om_pure.VERSION, om_dep.NAME)"
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == f"{best} 2.0 om-dep\n"


def test_pip_builds_a_two_level_build_closure(clean_upstream: Upstream, tmp_path: Path) -> None:
    ok(run_pip(clean_upstream, "wheel", "om-sdistonly", "-w", str(tmp_path / "w"), home=tmp_path / "h"))
    assert files_in(tmp_path / "w") == ["om_sdistonly-1.0-py3-none-any.whl"]
    paths = set(clean_upstream.requests.paths())
    assert {
        "/simple/om-sdistonly/",
        "/files/om_sdistonly-1.0.tar.gz",
        "/simple/om-buildhelper/",  # static build requirement, itself an sdist...
        "/files/om_buildhelper-1.0.tar.gz",
        "/simple/om-backend/",  # ...whose own build requirement is om-backend
        "/files/om_backend-1.0-py3-none-any.whl",
        "/simple/om-dynamic/",  # the PEP 517 dynamic requirement
        "/files/om_dynamic-1.0-py3-none-any.whl",
    } <= paths
    out = subprocess.run(
        [sys.executable, "-c", "import om_sdistonly; print(om_sdistonly.BUILT_FOR)"],
        env={"PYTHONPATH": str(tmp_path / "w" / "om_sdistonly-1.0-py3-none-any.whl")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == "source\n"


def test_om_backend_fails_loudly_without_its_build_closure(make_upstream: MakeUpstream, tmp_path: Path) -> None:
    broken = Release(
        name="om-sdistonly",
        version="1.0",
        wheel_tags=(),
        sdist=BackendSdist(build_requires=("om-backend",), import_check=("om_buildhelper",)),
    )
    upstream = make_upstream([r for r in DEFAULT_RELEASES if r.name == "om-backend"] + [broken], repack=())
    proc = run_pip(upstream, "wheel", "om-sdistonly", "-w", str(tmp_path / "w"), home=tmp_path / "h")
    assert proc.returncode != 0
    assert (
        "om-sdistonly: [tool.om-backend] import-check: cannot import 'om_buildhelper' in the "
        "build environment: No module named 'om_buildhelper'"
    ) in proc.stderr + proc.stdout


def test_pip_builds_a_legacy_setup_requires_project(clean_upstream: Upstream, tmp_path: Path) -> None:
    # pip builds it through setuptools.build_meta, which reports setup_requires as a dynamic
    # build requirement (get_requires_for_build_wheel): pip itself fetches om-setuphelper from
    # --index-url, setuptools' own fetcher is not involved. --use-pep517 because pip < 24.2 (the pip a
    # fresh Python 3.11 venv bundles) takes the legacy `setup.py` path when setuptools and wheel are
    # importable where pip runs, and there setup_requires does go through setuptools' fetcher.
    ok(run_pip(clean_upstream, "wheel", "--use-pep517", "om-setupreq", "-w", str(tmp_path / "w"), home=tmp_path / "h"))
    assert files_in(tmp_path / "w") == ["om_setupreq-1.0-py3-none-any.whl"]
    with zipfile.ZipFile(tmp_path / "w" / "om_setupreq-1.0-py3-none-any.whl") as zf:
        assert zf.read("om_setupreq/_stamp.py") == b"STAMP = 'om-setuphelper 1.0'\n"
    # setuptools came from the fixture (a wheel repacked from this test environment); a setuptools
    # before 70.1 also asks for wheel (which needs packaging).
    fetched = {p.rsplit("/", 1)[1].split("-")[0] for p in clean_upstream.requests.paths()}
    asks_for_wheel = Version(importlib.metadata.version("setuptools")) < Version("70.1")
    expected = {"setuptools", "om_setuphelper"} | ({"wheel", "packaging"} if asks_for_wheel else set())
    assert expected <= fetched


def test_setuptools_fetcher_reads_pydistutils_cfg(
    clean_upstream: Upstream, upstream_catalog: Catalog, tmp_path: Path
) -> None:
    # `python setup.py ...` outside pip: setup_requires goes through setuptools' own fetcher
    # (setuptools.installer.fetch_build_egg runs `pip wheel`), which takes its index from
    # [easy_install] index_url in ~/.pydistutils.cfg (PIP_INDEX_URL would win if it were set).
    home = tmp_path / "home"
    home.mkdir()
    (home / ".pydistutils.cfg").write_text(f"[easy_install]\nindex_url = {clean_upstream.url}/\n")
    with tarfile.open(upstream_catalog.files_dir / "om_setupreq-1.0.tar.gz") as tar:
        tar.extractall(tmp_path / "src", filter="data")
    proc = subprocess.run(
        [sys.executable, "setup.py", "bdist_wheel", "-d", str(tmp_path / "w")],
        cwd=tmp_path / "src" / "om_setupreq-1.0",
        env=isolated_env(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    ok(proc)
    with zipfile.ZipFile(tmp_path / "w" / "om_setupreq-1.0-py3-none-any.whl") as zf:
        assert zf.read("om_setupreq/_stamp.py") == b"STAMP = 'om-setuphelper 1.0'\n"
    assert clean_upstream.requests.paths() == [
        "/simple/om-setuphelper/",
        *(["/files/om_setuphelper-1.0-py3-none-any.whl.metadata"] if PIP_READS_CORE_METADATA else []),
        "/files/om_setuphelper-1.0-py3-none-any.whl",
    ]


def test_isolated_env_blocks_every_other_host(tmp_path: Path) -> None:
    # .invalid never resolves; the dead proxy refuses first, so nothing leaves the machine.
    home = tmp_path / "h"
    home.mkdir()
    proc = subprocess.run(
        [*pip_command("download", "https://om-mirror-test.invalid/simple", "om-pure"), "--retries", "0", "-vv"],
        env=isolated_env(home),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    # pip >= 24 says "proxy connection error"; older pip says "connection error: ... ProxyError(...)"
    assert "Could not fetch URL https://om-mirror-test.invalid/simple/om-pure/: " in output
    assert "proxy connection error" in output or "Caused by ProxyError('Cannot connect to proxy.'" in output


# --- fault injection ---------------------------------------------------------------------------


def test_pip_retries_through_a_500(clean_upstream: Upstream, tmp_path: Path) -> None:
    wheel = "om_dep-1.0-py3-none-any.whl"
    clean_upstream.inject(wheel, fail_times(1, status=500))
    ok(run_pip(clean_upstream, "download", "--no-deps", "om-dep", "-d", str(tmp_path / "d"), home=tmp_path / "h"))
    assert files_in(tmp_path / "d") == [wheel]
    assert clean_upstream.requests.paths("GET").count(f"/files/{wheel}") == 2


def test_fault_fail_times_then_recovers(clean_upstream: Upstream) -> None:
    clean_upstream.inject("/simple/om-dep/", fail_times(2, status=503))
    statuses = [get(clean_upstream, "/simple/om-dep/")[0] for _ in range(3)]
    assert statuses == [503, 503, 200]


def test_fault_wrong_bytes(clean_upstream: Upstream) -> None:
    clean_upstream.inject("om_dep-1.0-py3-none-any.whl", wrong_bytes(b"not a wheel"))
    status, headers, body = get(clean_upstream, "/files/om_dep-1.0-py3-none-any.whl")
    assert (status, body, headers["content-length"]) == (200, b"not a wheel", "11")


def test_fault_drop_after(clean_upstream: Upstream) -> None:
    clean_upstream.inject("om_dep-1.0-py3-none-any.whl", drop_after(100))
    with pytest.raises(http.client.IncompleteRead) as info:
        http_request(clean_upstream.base_url + "/files/om_dep-1.0-py3-none-any.whl")
    assert len(info.value.partial) == 100
    clean_upstream.reset()
    assert get(clean_upstream, "/files/om_dep-1.0-py3-none-any.whl")[0] == 200
