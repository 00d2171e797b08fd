"""Signed bundles: ssh-keygen -Y sign at export, verify and import --trust allowed_signers, and the four refusals
(unsigned, a bad signature, an unknown signer, contents that do not match the signed manifest) — with a key pair
made in the test by ssh-keygen itself."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mirror.bundle.export import ExportOptions
from mirror.workspace import Workspace
from tests.fixtures.env import Cli, synced_workspace
from tests.fixtures.server import Upstream
from tests.test_bundle import _repack, snapshot

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen (openssh-client) is missing")
WHEEL = "wheelhouse/files/om-pure/om_pure-1.0-py3-none-any.whl"


def keypair(directory: Path, name: str) -> tuple[Path, str]:
    """A fresh ed25519 key pair; the private key's path and the public key line."""
    key = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    return key, key.with_suffix(".pub").read_text().strip()


def fingerprint(key: Path) -> str:
    done = subprocess.run(["ssh-keygen", "-l", "-f", str(key)], capture_output=True, text=True, check=True)
    return done.stdout.split()[1]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("keys")
    alice, alice_pub = keypair(root, "alice")
    mallory, _ = keypair(root, "mallory")
    allowed = root / "allowed_signers"
    allowed.write_text(f'release@example.org namespaces="offline-mirror" {alice_pub}\n')
    return {"alice": alice, "mallory": mallory, "allowed": allowed}


@pytest.fixture(scope="module")
def online(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Path:
    return synced_workspace(tmp_path_factory.mktemp("online"), upstream, ["om-pure==1.0"])


def export(online: Path, out: Path, key: Path | None) -> Path:
    options = ExportOptions(format="gz", tool=False, sign=key)
    return Workspace.open(online / "mirror.toml").export_bundle(out, options).path


def test_sign_verify_import(cli: Cli, keys: dict[str, Path], online: Path, tmp_path: Path) -> None:
    result = cli(
        "bundle", "export", str(tmp_path / "b"), "--spec", str(online / "mirror.toml"), "--no-tool",
        "--format", "gz", "--sign", str(keys["alice"]),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    bundle = tmp_path / "b.tar.gz"
    assert f"signed with {keys['alice']}" in result.stdout
    signer = f"release@example.org (ED25519 {fingerprint(keys['alice'])})"

    checked = cli("bundle", "verify", str(bundle), "--trust", str(keys["allowed"]))
    assert checked.exit_code == 0, checked.stderr
    assert checked.stdout.splitlines()[0].endswith(f"; signed by {signer}")
    unchecked = cli("bundle", "verify", str(bundle))
    assert unchecked.stdout.splitlines()[0].endswith("; signed (not checked: give --trust ALLOWED_SIGNERS)")

    imported = cli(
        "bundle", "import", str(bundle), "--into", str(tmp_path / "offline"), "--trust", str(keys["allowed"])
    )
    assert imported.exit_code == 0, imported.stderr
    assert f"bundle {json.loads((tmp_path / 'b.tar.gz.manifest.json').read_text())['id']} signed by {signer}" in (
        imported.stdout
    )
    assert (tmp_path / "offline" / WHEEL).is_file()


def refused(cli: Cli, bundle: Path, allowed: Path, tmp_path: Path) -> str:
    """``verify`` and ``import --trust`` both refuse ``bundle`` with the same one line; nothing is imported."""
    offline = tmp_path / "offline"
    offline.mkdir(exist_ok=True)
    before = snapshot(offline)
    checked = cli("bundle", "verify", str(bundle), "--trust", str(allowed))
    imported = cli("bundle", "import", str(bundle), "--into", str(offline), "--trust", str(allowed))
    assert (checked.exit_code, imported.exit_code) == (1, 1)
    assert checked.stderr == imported.stderr and checked.stderr.count("\n") == 1
    assert snapshot(offline) == before
    return checked.stderr


def test_an_unsigned_bundle_is_refused(cli: Cli, keys: dict[str, Path], online: Path, tmp_path: Path) -> None:
    bundle = export(online, tmp_path / "b.tar.gz", None)
    assert refused(cli, bundle, keys["allowed"], tmp_path) == (
        f"error: {bundle}: not signed, and {keys['allowed']} requires a signature (export it with --sign KEY);"
        " nothing was read\n"
    )


def test_a_bad_signature_is_refused(cli: Cli, keys: dict[str, Path], online: Path, tmp_path: Path) -> None:
    bundle = export(online, tmp_path / "b.tar.gz", keys["alice"])

    def redate(name: str, data: bytes) -> bytes:  # bundle.json still lists every member: only its date changes
        if name != "bundle.json":
            return data
        document = json.loads(data)
        document["created"] = "1999-01-01T00:00:00Z"
        return (json.dumps(document, indent=1) + "\n").encode()

    altered = _repack(bundle, tmp_path / "altered.tar.gz", redate)
    message = refused(cli, altered, keys["allowed"], tmp_path)
    assert message.startswith(f"error: {altered}: bundle.json does not match its signature (one of them was altered)")


def test_an_unknown_signer_is_refused(cli: Cli, keys: dict[str, Path], online: Path, tmp_path: Path) -> None:
    bundle = export(online, tmp_path / "b.tar.gz", keys["mallory"])
    assert refused(cli, bundle, keys["allowed"], tmp_path) == (
        f"error: {bundle}: signed by ED25519 {fingerprint(keys['mallory'])}, a key {keys['allowed']} does not list\n"
    )


def test_contents_that_do_not_match_the_signed_manifest_are_refused(
    cli: Cli, keys: dict[str, Path], online: Path, tmp_path: Path
) -> None:
    bundle = export(online, tmp_path / "b.tar.gz", keys["alice"])

    def swap(name: str, data: bytes) -> bytes:  # the signed bundle.json and its signature are untouched
        return data[:-1] + bytes([data[-1] ^ 1]) if name == WHEEL else data

    swapped = _repack(bundle, tmp_path / "swapped.tar.gz", swap)
    message = refused(cli, swapped, keys["allowed"], tmp_path)
    assert message.startswith(f"error: {swapped}: member '{WHEEL}' has sha256 ")
    assert "bundle.json says" in message and "tampered with; nothing was imported" in message


def test_a_trust_file_pinned_in_mirror_toml_makes_every_import_signed(
    cli: Cli, keys: dict[str, Path], online: Path, tmp_path: Path
) -> None:
    offline = tmp_path / "offline"
    offline.mkdir()
    shutil.copy(keys["allowed"], offline / "allowed_signers")
    signed = export(online, tmp_path / "signed.tar.gz", keys["alice"])
    unsigned = export(online, tmp_path / "unsigned.tar.gz", None)
    # the first import writes the offline mirror.toml; pin the trust file in it
    assert Workspace.at(offline).import_bundle(signed, trust=offline / "allowed_signers").signer is not None
    spec = offline / "mirror.toml"
    spec.write_text(
        spec.read_text().replace('lockfiles = "lockfiles"\n', 'lockfiles = "lockfiles"\ntrust = "allowed_signers"\n')
    )
    result = cli("bundle", "import", str(unsigned), "--into", str(offline))
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {unsigned}: not signed, and {offline / 'allowed_signers'} requires a signature (export it with"
        " --sign KEY); nothing was read\n"
    )
    again = cli("bundle", "import", str(signed), "--into", str(offline))
    assert again.exit_code == 0, again.stderr
    assert 'trust = "' in spec.read_text()  # an import that rewrites the spec keeps the pin


def test_a_missing_key_or_trust_file_is_one_line(cli: Cli, keys: dict[str, Path], online: Path, tmp_path: Path) -> None:
    from mirror.bundle.signing import SignatureError, sign, verify

    with pytest.raises(SignatureError, match=r"no such key file"):
        sign(b"x", tmp_path / "nope")
    with pytest.raises(SignatureError, match=r"no such allowed_signers file"):
        verify(b"x", b"sig", tmp_path / "nope")
