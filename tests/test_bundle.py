"""mirror bundle export / verify / import: full and delta round trips, merging, tampering and hostile archives."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from hypothesis import given, settings
from hypothesis import strategies as st

from mirror.bundle import BundleError, MissingBase, importing, read_bundle, read_manifest
from mirror.bundle import format as bundle_format
from mirror.bundle.export import ExportOptions
from mirror.layout import Layout
from mirror.manifest import load_manifest
from mirror.targets import host_target
from mirror.workspace import Workspace
from tests.fixtures.env import Cli, invoke, synced_workspace
from tests.fixtures.server import Upstream
from tests.test_verify import needs_namespace, verify_json

HOST = host_target()


def ok(*args: str) -> Result:
    result = invoke(*args)
    assert result.exit_code == 0, result.output + (result.stderr if result.stderr_bytes else "")
    return result


def resync(workspace: Path, packages: list[str]) -> None:
    text = (workspace / "mirror.toml").read_text()
    head = text[: text.index("[sources]")]
    (workspace / "mirror.toml").write_text(head + f"[sources]\npackages = {json.dumps(packages)}\n")
    Workspace.open(workspace / "mirror.toml").sync()


def export(
    workspace: Path, out: Path, *, since: Path | None = None, format: str = "auto", url: str | None = None
) -> Path:
    """The workspace exported to ``out`` without the tool (the hermetic upstream lacks its dependencies); the
    archive's path."""
    options = ExportOptions(since=since, format=format, url=url, tool=False)
    return Workspace.open(workspace / "mirror.toml").export_bundle(out, options).path


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def indexed(root: Path) -> dict[str, list[str]]:
    simple = root / "wheelhouse" / "simple"
    return {
        page.parent.name: sorted(f["filename"] for f in json.loads(page.read_text())["files"])
        for page in simple.glob("*/index.json")
    }


@pytest.fixture(scope="module")
def online(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Path:
    return synced_workspace(tmp_path_factory.mktemp("online"), upstream, ["om-pure==1.0"])


# --- round trips ---------------------------------------------------------------------------------------------


def test_full_then_delta_into_an_empty_directory(tmp_path: Path, upstream: Upstream) -> None:
    online = synced_workspace((tmp_path / "online"), upstream, ["om-pure==1.0"])
    full = export(online, tmp_path / "week1.tar.gz")
    full_manifest = read_manifest(full)
    assert full_manifest.base is None
    assert Path(f"{full}.manifest.json").is_file()
    assert read_manifest(Path(f"{full}.manifest.json")) == full_manifest

    resync(online, ["om-pure==2.0", "om-native"])
    delta = export(online, tmp_path / "week2.tar.zst", since=Path(f"{full}.manifest.json"))
    delta_manifest = read_manifest(delta)
    assert delta_manifest.base == full_manifest.id
    carried = {m.path for m in delta_manifest.members}
    unchanged = {(m.path, m.sha256) for m in full_manifest.contents} & {
        (m.path, m.sha256) for m in delta_manifest.contents
    }
    assert unchanged, "the two bundles share files"
    assert not carried & {path for path, _ in unchanged}, "a delta carries only what its base lacks"
    assert any(p.startswith("wheelhouse/files/om-native/") for p in carried)

    offline = tmp_path / "offline"
    out = ok("bundle", "import", str(full), "--into", str(offline)).output
    assert f"imported full bundle {full_manifest.id}" in out
    assert indexed(offline) == {"om-pure": ["om_pure-1.0-py3-none-any.whl"]}
    out = ok("bundle", "import", str(delta), "--into", str(offline)).output
    assert f"imported delta bundle {delta_manifest.id}" in out
    pages = indexed(offline)
    assert "om_pure-1.0-py3-none-any.whl" in pages["om-pure"], "files of earlier bundles stay served"
    assert "om_pure-2.0-py3-none-any.whl" in pages["om-pure"]
    assert "om-native" in pages
    # the offline workspace is whole: its lock is the delta's, every locked file verifies
    assert load_manifest(offline / "lockfiles").target(HOST.name).runtime
    checked = ok("check", "--spec", str(offline / "mirror.toml")).output
    assert checked.endswith(" ok, 0 missing, 0 corrupt\n")

    # the same pair into a mirror that was there before: merged, its own spec and files kept
    existing = synced_workspace((tmp_path / "existing"), upstream, ["om-dep"])
    ok("bundle", "import", str(full), "--into", str(existing))
    ok("bundle", "import", str(delta), "--into", str(existing))
    pages = indexed(existing)
    assert set(pages) == {"om-dep", *indexed(offline)}
    assert pages["om-pure"] == indexed(offline)["om-pure"]
    assert ok("check", "--spec", str(existing / "mirror.toml")).output.endswith(" ok, 0 missing, 0 corrupt\n")

    before = snapshot(offline)
    again = ok("bundle", "import", str(delta), "--into", str(offline)).output
    assert "already imported" in again and "nothing changed" in again
    assert snapshot(offline) == before


def test_import_merges_into_an_existing_mirror(tmp_path: Path, online: Path, upstream: Upstream) -> None:
    full = export(online, tmp_path / "b.tar.gz")
    existing = synced_workspace((tmp_path / "existing"), upstream, ["om-dep"])
    spec_before = (existing / "mirror.toml").read_text()
    out = ok("bundle", "import", str(full), "--into", str(existing)).output
    assert "is your own spec: left as it is" in out
    assert (existing / "mirror.toml").read_text() == spec_before
    pages = indexed(existing)
    assert pages["om-dep"] and pages["om-pure"] == ["om_pure-1.0-py3-none-any.whl"]
    lock = load_manifest(existing / "lockfiles")
    assert {"om_pure-1.0-py3-none-any.whl"} <= set(lock.files) and any(f.startswith("om_dep-") for f in lock.files)


def test_export_refuses_a_wheelhouse_with_missing_files(tmp_path: Path, upstream: Upstream) -> None:
    workspace = synced_workspace((tmp_path / "ws"), upstream, ["om-pure==1.0"])
    wheel = next((workspace / "wheelhouse" / "files").rglob("om_pure-1.0-*.whl"))
    wheel.unlink()
    missing = re.escape("1 locked files are missing or do not match the lock (om_pure-1.0-py3-none-any.whl)")
    with pytest.raises(BundleError, match=missing):
        export(workspace, tmp_path / "b")
    assert not list(tmp_path.glob("b*")), "nothing half-written"


def test_export_name_and_format_must_agree(tmp_path: Path, online: Path) -> None:
    with pytest.raises(BundleError, match=re.escape("the name says .gz, --format says zst")):
        export(online, tmp_path / "b.tar.gz", format="zst")
    assert export(online, tmp_path / "plain", format="gz") == tmp_path / "plain.tar.gz"
    assert (tmp_path / "plain.tar.gz").is_file()


def test_export_refuses_credentials_in_the_client_url(tmp_path: Path, online: Path) -> None:
    with pytest.raises(BundleError, match="--url: holds credentials"):
        export(online, tmp_path / "b", url="https://user:secret@mirror.internal/simple/")


def test_client_configs_travel_with_the_bundle(tmp_path: Path, online: Path) -> None:
    full = export(online, tmp_path / "b.tar.gz", url="http://mirror.internal:8080/simple/")
    offline = tmp_path / "offline"
    Workspace.at(offline).import_bundle(full)
    pip_conf = (offline / "client-config" / "pip.conf").read_text()
    assert "index-url = http://mirror.internal:8080/simple/" in pip_conf
    assert (offline / "client-config" / "uv.toml").is_file()


# --- refusals: nothing becomes visible -----------------------------------------------------------------------


def test_a_delta_whose_base_is_missing_is_refused(cli: Cli, tmp_path: Path, online: Path) -> None:
    full = export(online, tmp_path / "full.tar.gz")
    delta = export(online, tmp_path / "delta.tar.gz", since=full)
    base = read_manifest(full).id
    offline = tmp_path / "offline"
    with pytest.raises(MissingBase) as caught:
        Workspace.at(offline).import_bundle(delta)
    assert caught.value.base == base
    assert f"a delta of bundle {base}, which was never imported here" in str(caught.value)
    assert snapshot(offline) == {}
    result = cli("bundle", "import", str(delta), "--into", str(offline))
    assert result.exit_code == 1 and base in result.output


def test_a_published_file_is_never_replaced(tmp_path: Path, online: Path) -> None:
    full = export(online, tmp_path / "b.tar.gz")
    offline = tmp_path / "offline"
    Workspace.at(offline).import_bundle(full)
    wheel = next((offline / "wheelhouse" / "files").rglob("om_pure-1.0-*.whl"))
    wheel.write_bytes(b"other bytes under the same name")
    before = snapshot(offline)
    with pytest.raises(BundleError, match="A published file never changes: refusing to replace it"):
        Workspace.at(offline).import_bundle(full)
    assert snapshot(offline) == before


def _repack(source: Path, out: Path, change: Callable[[str, bytes], bytes | None]) -> Path:
    """Copy a .tar.gz bundle member by member; ``change(name, data)`` returns new bytes, or None to drop it."""
    with tarfile.open(source, "r:gz") as tar, tarfile.open(out, "w:gz") as dest:
        for info in tar:
            handle = tar.extractfile(info)
            assert handle is not None
            data = change(info.name, handle.read())
            if data is None:
                continue
            info.size = len(data)
            dest.addfile(info, io.BytesIO(data))
    return out


def test_a_tampered_member_is_refused_before_anything_is_visible(cli: Cli, tmp_path: Path, online: Path) -> None:
    full = export(online, tmp_path / "b.tar.gz")
    target = "wheelhouse/files/om-pure/om_pure-1.0-py3-none-any.whl"

    def flip(name: str, data: bytes) -> bytes:
        return data[:-1] + bytes([data[-1] ^ 1]) if name == target else data

    tampered = _repack(full, tmp_path / "tampered.tar.gz", flip)
    with pytest.raises(BundleError, match=f"member '{target}' has sha256 .* the bundle is damaged or was tampered"):
        read_bundle(tampered)
    result = cli("bundle", "verify", str(tampered))
    assert result.exit_code == 1 and "tampered" in result.output
    offline = tmp_path / "offline"
    with pytest.raises(BundleError, match="tampered"):
        Workspace.at(offline).import_bundle(tampered)
    assert snapshot(offline) == {}
    assert ok("bundle", "verify", str(full)).output.startswith(f"{full}: ok")


def test_a_dropped_member_is_named(tmp_path: Path, online: Path) -> None:
    full = export(online, tmp_path / "b.tar.gz")
    target = "wheelhouse/files/om-pure/om_pure-1.0-py3-none-any.whl"
    short = _repack(full, tmp_path / "short.tar.gz", lambda name, data: None if name == target else data)
    with pytest.raises(BundleError, match=f"1 members listed in bundle.json are missing: {target}"):
        read_bundle(short)


def test_a_truncated_archive_is_refused(tmp_path: Path, online: Path) -> None:
    full = export(online, tmp_path / "b.tar.zst")
    data = full.read_bytes()
    cut = tmp_path / "cut.tar.zst"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match=r"damaged or truncated|missing"):
        read_bundle(cut)
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive at all")
    with pytest.raises(BundleError, match="not a bundle"):
        read_bundle(junk)


# --- hostile archives -------------------------------------------------------------------------------------------


def _member(name: str, data: bytes = b"x", **attributes: object) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in attributes.items():
        setattr(info, key, value)
    return info, data


def _hostile(path: Path, members: list[tuple[tarfile.TarInfo, bytes]], listed: list[tuple[str, bytes]]) -> Path:
    """A .tar.gz whose bundle.json lists ``listed`` (path, bytes) and that then holds ``members``."""
    entries = [{"path": p, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for p, d in listed]
    contents = [bundle_format.Member(path=p, size=len(d), sha256=hashlib.sha256(d).hexdigest()) for p, d in listed]
    manifest = {
        "format": "offline-mirror-bundle",
        "version": 1,
        "id": bundle_format.bundle_id(contents, None),
        "base": None,
        "created": "",
        "tool": {"name": "offline-mirror", "version": "0"},
        "compression": "gz",
        "targets": [],
        "tool_targets": [],
        "members": entries,
        "contents": entries,
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        head = json.dumps(manifest).encode()
        info = tarfile.TarInfo("bundle.json")
        info.size = len(head)
        tar.addfile(info, io.BytesIO(head))
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    path.write_bytes(gzip.compress(raw.getvalue()))
    return path


HOSTILE = {
    "absolute path": ([_member("/tmp/evil")], [], "is absolute"),
    "dot-dot": ([_member("wheelhouse/../../evil")], [], "has an empty, '.' or '..' component"),
    "symlink out": (
        [_member("wheelhouse/files/x/link", b"", type=tarfile.SYMTYPE, linkname="/etc/passwd")],
        [],
        "is a link \\(to '/etc/passwd'\\)",
    ),
    "hard link": (
        [_member("wheelhouse/files/x/hard", b"", type=tarfile.LNKTYPE, linkname="../../../etc/passwd")],
        [],
        "is a link",
    ),
    "character device": (
        [_member("wheelhouse/dev", b"", type=tarfile.CHRTYPE, devmajor=1, devminor=3)],
        [],
        "is not a regular file",
    ),
    "fifo": ([_member("wheelhouse/fifo", b"", type=tarfile.FIFOTYPE)], [], "is not a regular file"),
    # tarfile cuts a name at NUL when it reads it: the cut name is then not the listed one
    "NUL in the name": ([_member("wheelhouse/a\x00b")], [], "member 'wheelhouse/a' is not listed"),
    "control character": ([_member("wheelhouse/a\nb")], [], "control character"),
    "backslash": ([_member("wheelhouse\\..\\evil")], [], "backslash"),
    "unlisted member": ([_member("wheelhouse/extra")], [], "is not listed in bundle.json"),
    "listed twice": (
        [_member("install.sh"), _member("install.sh")],
        [("install.sh", b"x")],
        "appears twice",
    ),
    "size disagrees": ([_member("install.sh", b"xy")], [("install.sh", b"x")], "is 2 bytes; bundle.json says 1"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_members_are_refused(cli: Cli, tmp_path: Path, case: str) -> None:
    members, listed, message = HOSTILE[case]
    path = _hostile(tmp_path / "hostile.tar.gz", members, listed)
    with pytest.raises(BundleError, match=message):
        read_bundle(path)
    offline = tmp_path / "offline"
    with pytest.raises(BundleError, match=message):
        Workspace.at(offline).import_bundle(path)
    assert snapshot(offline) == {}
    assert not (tmp_path / "evil").exists() and not Path("/tmp/evil").exists()
    result = cli("bundle", "import", str(path), "--into", str(offline))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "zip"}, "format: expected 'offline-mirror-bundle'"),
        ({"id": "../x"}, "id: expected 32 lowercase hex digits"),
        ({"members": [{"path": "../x", "size": 1, "sha256": "0" * 64}]}, r"members\[0\].path: '../x': has an empty"),
        ({"members": [{"path": "install.sh", "size": -1, "sha256": "0" * 64}]}, r"members\[0\].size: expected a non-ne"),
        ({"members": [{"path": "install.sh", "size": 1, "sha256": "XYZ"}]}, r"members\[0\].sha256: expected a lowerc"),
        ({"members": [{"path": "install.sh", "size": 1, "sha256": "0" * 64}]}, "members: 'install.sh' is not in contents"),
        ({"id": "1" * 32}, "id: 1{32} is not the id of the contents listed \\(the manifest was altered\\)"),
    ],
)
def test_a_bad_manifest_is_named(change: dict[str, object], message: str) -> None:
    data: dict[str, object] = {
        "format": "offline-mirror-bundle",
        "version": 1,
        "id": bundle_format.bundle_id([], None),
        "base": None,
        "tool": {"version": "0"},
        "compression": "gz",
        "targets": [],
        "tool_targets": [],
        "members": [],
        "contents": [],
        **change,
    }
    with pytest.raises(BundleError, match=message):
        bundle_format.BundleManifest.from_dict(data, "b.tar.gz: bundle.json")


def test_the_first_member_must_be_the_manifest(tmp_path: Path) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info, data = _member("install.sh")
        tar.addfile(info, io.BytesIO(data))
    path = tmp_path / "b.tar.gz"
    path.write_bytes(gzip.compress(raw.getvalue()))
    with pytest.raises(BundleError, match=r"the first member is not bundle\.json"):
        read_bundle(path)


def test_a_bad_lock_inside_a_verified_bundle_is_refused(tmp_path: Path) -> None:
    lock = json.dumps({"version": 1, "files": {"../../evil.whl": {}}, "targets": {}}).encode()
    path = _hostile(tmp_path / "b.tar.gz", [_member("lockfiles/mirror.lock.json", lock)],
                    [("lockfiles/mirror.lock.json", lock)])  # fmt: skip
    assert read_bundle(path).files == 1  # every hash matches ...
    with pytest.raises(BundleError, match=r"lockfiles/mirror\.lock\.json: .*not a safe wheel or sdist filename"):
        Workspace.at(tmp_path / "offline").import_bundle(path)  # ... but the lock it brings is checked too
    assert snapshot(tmp_path / "offline") == {}


@pytest.mark.parametrize("path", ["", "/a", "a/../b", "a//b", "./a", "a\\b", "a\x00", "bundle.json", "x" * 2000])
def test_unsafe_paths(path: str) -> None:
    assert bundle_format.unsafe_path(path) is not None


@pytest.mark.parametrize(
    "path",
    [
        "install.sh",
        "mirror.toml",
        "lockfiles/mirror.lock.json",
        "wheelhouse/files/om-pure/om_pure-1.0-py3-none-any.whl",
        "wheelhouse/files/om-pure/om_pure-1.0.tar.gz",
        "client-config/pip.conf",
        "tool/targets.json",
        "tool/linux-amd64-cp312.txt",
        "tool/wheels/uv-0.13.9-py3-none-manylinux_2_17_x86_64.whl",
    ],
)
def test_the_places_a_bundle_fills(path: str) -> None:
    assert bundle_format.unsafe_path(path) is None
    assert bundle_format.misplaced(path) is None


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("wheelhouse/simple/om-pure/index.html", "is not a place a bundle fills"),  # the index is generated here
        ("wheelhouse/files/.verified.json", "names a hidden file"),  # the verified-files record
        ("wheelhouse/.bundles.json", "names a hidden file"),
        (".bashrc", "names a hidden file"),
        ("etc/passwd", "is not a place a bundle fills"),
        ("lockfiles/sub/x.txt", "is not a place a bundle fills"),
        ("wheelhouse/files/om-pure/om_dep-1.0-py3-none-any.whl", "is not a distribution file of project 'om-pure'"),
        ("wheelhouse/files/om-pure/notes.txt", "is not a distribution file of project 'om-pure'"),
        ("tool/wheels/evil.sh", "is not a place a bundle fills"),
    ],
)
def test_places_a_bundle_may_not_write(path: str, message: str) -> None:
    assert bundle_format.unsafe_path(path) is None
    problem = bundle_format.misplaced(path)
    assert problem is not None and problem.startswith(message)


def test_a_manifest_naming_the_index_is_refused(tmp_path: Path) -> None:
    page = b"<a href='https://evil.example/x.whl'>x</a>"
    path = _hostile(tmp_path / "b.tar.gz", [_member("wheelhouse/simple/om-pure/index.html", page)],
                    [("wheelhouse/simple/om-pure/index.html", page)])  # fmt: skip
    with pytest.raises(BundleError, match=r"members\[0\]\.path: 'wheelhouse/simple/om-pure/index\.html': is not a"):
        Workspace.at(tmp_path / "offline").import_bundle(path)
    assert snapshot(tmp_path / "offline") == {}


def test_an_upstream_without_the_tools_dependencies_says_so(cli: Cli, tmp_path: Path, online: Path) -> None:
    result = cli("bundle", "export", str(tmp_path / "b"), "--spec", str(online / "mirror.toml"))
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("error: offline-mirror's own dependencies from http://127.0.0.1:")
    assert last.endswith("(leave the tool out with --no-tool)")
    assert not list(tmp_path.glob("b*"))


@needs_namespace
def test_the_imported_mirror_passes_verify_with_no_route_out(tmp_path: Path, upstream: Upstream) -> None:
    online = synced_workspace((tmp_path / "online"), upstream, ["om-pure==2.0", "om-sdistonly"])
    full = export(online, tmp_path / "b.tar.gz")
    offline = tmp_path / "offline"
    Workspace.at(offline).import_bundle(full)
    code, report = verify_json(offline / "mirror.toml")
    assert code == 0 and report["ok"], json.dumps(report, indent=1)[:3000]
    done = {(s["step"], s["target"]) for s in report["steps"]}  # type: ignore[union-attr]
    for name in ("pip install", "uv pip install", "imports", "sdist builds"):
        assert (name, HOST.name) in done


_PARTS = st.sampled_from(["wheelhouse", "files", "simple", "lockfiles", "tool", "wheels", "client-config", "om-pure",
                          "om_pure-1.0-py3-none-any.whl", "om_pure-1.0.tar.gz", "mirror.toml", "install.sh", "..",
                          ".", "", ".verified.json", "x", "/", "\\", "\x00", "a\nb", "é"])  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.lists(_PARTS, min_size=1, max_size=5).map("/".join), st.text(max_size=40)))
def test_an_accepted_member_path_lands_inside_the_workspace_and_outside_the_index(path: str) -> None:
    if bundle_format.unsafe_path(path) is not None or bundle_format.misplaced(path) is not None:
        return
    root = Path("/srv/offline")
    destination = importing.destination(Layout.default(root), path)
    resolved = Path(os.path.normpath(destination))
    assert resolved == destination and resolved.is_relative_to(root)
    assert not resolved.is_relative_to(root / "wheelhouse" / "simple")
    assert not any(part.startswith(".") for part in resolved.relative_to(root).parts)


@needs_namespace
def test_install_sh_installs_the_tool_with_no_route_out(
    tmp_path: Path, make_upstream: Callable[..., Upstream], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tool's real dependencies are not all pure (uv, charset-normalizer), so the hermetic upstream carries the
    # pure ones its `--version` and `bundle import` need, repacked from this environment; the network test
    # (tests/test_bundle_network.py) does the same with every real dependency from PyPI.
    old_python = sys.version_info < (3, 11)  # tomllib arrived in 3.11; before it the tool needs tomli
    upstream = make_upstream(repack=("click", "packaging", "tomli-w", *(["tomli"] if old_python else [])))
    online = synced_workspace((tmp_path / "online"), upstream, ["om-pure==2.0"])
    needed = ["click", "packaging", "tomli-w", 'tomli>=1.1; python_version < "3.11"']
    monkeypatch.setattr("mirror.selfinstall.requirements", lambda extra=(): needed)
    out = tmp_path / "carry" / "b.tar.gz"
    ok("bundle", "export", str(out), "--spec", str(online / "mirror.toml"))
    listed = {m.path for m in read_manifest(out).members}
    assert {"install.sh", "tool/targets.json", f"tool/{HOST.name}.txt"} <= listed
    assert {p.split("/")[-1].split("-")[0] for p in listed if p.startswith("tool/wheels/")} == {
        "click", "offline_mirror", "packaging", "tomli_w", *(["tomli"] if old_python else [])}  # fmt: skip
    script = f"""
set -eu
cd {tmp_path}/carry
{sys.executable} -m tarfile -e b.tar.gz extracted
PYTHON={sys.executable} HOME={tmp_path}/home sh extracted/install.sh {tmp_path}/tool
{tmp_path}/tool/bin/mirror bundle import b.tar.gz --into {tmp_path}/offline
"""
    result = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--net", "sh", "-c", script],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"installing offline-mirror for {HOST.name}.txt into {tmp_path}/tool" in result.stdout
    assert "offline-mirror, version" in result.stdout
    assert "imported full bundle" in result.stdout
    assert indexed(tmp_path / "offline") == {
        "om-dep": ["om_dep-1.0-py3-none-any.whl"],
        "om-pure": ["om_pure-2.0-py3-none-any.whl"],
    }
