"""Signed bundles: an OpenSSH signature over ``bundle.json``, checked against an ``allowed_signers`` file.

``bundle.json`` lists the size and sha256 of every other member, and :func:`~mirror.bundle.format.read_bundle`
checks each member against it; so a signature over the exact bytes of ``bundle.json`` covers the whole bundle. It
travels as the archive's second member, ``bundle.json.sig``, written by ``mirror bundle export --sign KEY``.

The format is OpenSSH's own (``ssh-keygen -Y sign``, SSHSIG, namespace ``offline-mirror``): operators already have
the keys (a user's ``~/.ssh/id_ed25519``, or one in ssh-agent: give its ``.pub``), the tool (every Linux host has
``ssh-keygen``) and the trust file format (``allowed_signers``, as git's SSH signing uses it). No cryptography is
written here: ``ssh-keygen`` signs and verifies, run through an injectable runner. A check is three steps, each
its own refusal:

1. ``ssh-keygen -Y check-novalidate``: is this a valid signature of these bytes at all? (else the bundle, or its
   signature, was altered);
2. ``ssh-keygen -Y find-principals``: does ``allowed_signers`` name the key that made it? (else: an unknown signer,
   named by its key fingerprint);
3. ``ssh-keygen -Y verify -I <principal>``: the full check, namespace and validity dates included.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mirror._process import Runner, clean_environment, log_tail, run_command
from mirror.bundle.format import BundleError

NAMESPACE = "offline-mirror"
SIGNATURE_MEMBER = "bundle.json.sig"
MAX_SIGNATURE_BYTES = 64 * 1024
_FINGERPRINT = re.compile(r"(\S+) key (SHA256:\S+)")


class SignatureError(BundleError):
    """A bundle could not be signed, or its signature does not establish a trusted signer."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Signer:
    """Who signed a bundle: the principal ``allowed_signers`` names, and the key."""

    principal: str
    key: str  # "ED25519 SHA256:…"

    def describe(self) -> str:
        return f"{self.principal} ({self.key})"


def _ssh_keygen(runner: Runner, args: Sequence[str], *, stdin: Path | None = None) -> tuple[int, str]:
    """Run ``ssh-keygen ARGS`` (with ``stdin`` as its standard input: ``-Y verify`` reads the message there)."""
    command = ["ssh-keygen", *args]
    if stdin is not None:
        command = ["sh", "-c", 'exec ssh-keygen "$@" < "$0"', str(stdin), *args]
    try:
        done = runner(command, clean_environment())  # SSH_AUTH_SOCK is kept: a key in ssh-agent signs
    except FileNotFoundError:
        raise SignatureError("ssh-keygen is not installed (the openssh-client package provides it)") from None
    if done.returncode == 127:
        raise SignatureError("ssh-keygen is not installed (the openssh-client package provides it)")
    return done.returncode, f"{done.stdout}\n{done.stderr}"


def sign(data: bytes, key: Path, *, runner: Runner = run_command) -> bytes:
    """The OpenSSH signature of ``data`` with the private key ``key`` (or the ssh-agent key whose public half
    ``key`` is)."""
    if not key.is_file():
        raise SignatureError(f"{key}: no such key file (give a private key, or the .pub of a key in ssh-agent)")
    with tempfile.TemporaryDirectory(prefix="mirror-sign-") as tmp:
        message = Path(tmp) / "bundle.json"
        message.write_bytes(data)
        code, output = _ssh_keygen(runner, ["-Y", "sign", "-f", str(key), "-n", NAMESPACE, str(message)])
        signature = message.with_name("bundle.json.sig")
        if code != 0 or not signature.is_file():
            raise SignatureError(f"{key}: ssh-keygen could not sign: {log_tail(output)}")
        return signature.read_bytes()


def verify(data: bytes, signature: bytes, allowed_signers: Path, *, runner: Runner = run_command) -> Signer:
    """The signer of ``data`` if ``signature`` is theirs and ``allowed_signers`` trusts their key for bundles;
    :class:`SignatureError` saying which of the three checks failed otherwise."""
    if not allowed_signers.is_file():
        raise SignatureError(f"{allowed_signers}: no such allowed_signers file")
    with tempfile.TemporaryDirectory(prefix="mirror-verify-") as tmp:
        message, sig = Path(tmp) / "bundle.json", Path(tmp) / "bundle.json.sig"
        message.write_bytes(data)
        sig.write_bytes(signature)
        code, output = _ssh_keygen(runner, ["-Y", "check-novalidate", "-n", NAMESPACE, "-s", str(sig)], stdin=message)
        if code != 0:
            raise SignatureError(
                f"bundle.json does not match its signature (one of them was altered): {log_tail(output)}"
            )
        found = _FINGERPRINT.search(output)
        key = f"{found[1]} {found[2]}" if found else "an unknown key"
        code, output = _ssh_keygen(runner, ["-Y", "find-principals", "-s", str(sig), "-f", str(allowed_signers)])
        principals = [line.strip() for line in output.splitlines() if line.strip() and code == 0]
        if code != 0 or not principals:
            raise SignatureError(f"signed by {key}, a key {allowed_signers} does not list")
        principal = principals[0]
        code, output = _ssh_keygen(
            runner,
            ["-Y", "verify", "-f", str(allowed_signers), "-I", principal, "-n", NAMESPACE, "-s", str(sig)],
            stdin=message,
        )
        if code != 0:
            raise SignatureError(f"signed by {principal} ({key}), but {allowed_signers} refuses it: {log_tail(output)}")
    return Signer(principal=principal, key=key)


def trusted_by(allowed_signers: Path, *, runner: Runner = run_command) -> Callable[[bytes, bytes | None], str]:
    """The check :func:`~mirror.bundle.format.read_bundle` runs before reading any member: a signature is required
    and must verify against ``allowed_signers``; it returns who signed."""

    def check(manifest: bytes, signature: bytes | None) -> str:
        if signature is None:
            raise SignatureError(
                f"not signed, and {allowed_signers} requires a signature (export it with --sign KEY); nothing was read"
            )
        return verify(manifest, signature, allowed_signers, runner=runner).describe()

    return check
