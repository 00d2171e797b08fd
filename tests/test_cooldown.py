"""[policy] exclude-newer: a release cooldown that moves a pin back, reports a team's lock that breaks it, is
recorded in the lock and checked again at fetch."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from mirror import cooldown
from mirror.errors import InvalidSpec
from mirror.fetch import FetchError
from mirror.lock import LockError, LockOptions
from mirror.spec import parse_spec
from mirror.workspace import Workspace
from tests.conftest import Hash, MakeUpstream
from tests.fixtures.dists import Release
from tests.fixtures.env import MakeWorkspace, write_workspace
from tests.test_locks import FORMATS, locked_workspace

NOW = datetime(2026, 12, 1, 15, 30, tzinfo=timezone.utc)
LATE = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)  # om-pure 2.0's upload: three days before NOW
RELEASES = (
    Release(name="om-pure", version="1.0"),  # uploaded 2024-01-01
    Release(name="om-pure", version="2.0", upload_time=LATE),
)


@pytest.mark.parametrize(
    ("value", "moment"),
    [
        ("2026-11-01T00:00:00Z", "2026-11-01T00:00:00Z"),
        ("2026-11-01T02:00:00+02:00", "2026-11-01T00:00:00Z"),
        ("2026-11-01", "2026-11-01T00:00:00Z"),
        ("7d", "2026-11-24T00:00:00Z"),  # counted back from NOW, to the start of that UTC day
        ("2w", "2026-11-17T00:00:00Z"),
        ("24h", "2026-11-30T15:00:00Z"),
    ],
)
def test_cutoffs(value: str, moment: str) -> None:
    assert cooldown.valid(value)
    assert cooldown.stamp(cooldown.cutoff(value, NOW)) == moment


@pytest.mark.parametrize("value", ['"yesterday"', '"2026-11-01T00:00:00"', "7", '"7 months"', '""'])
def test_a_bad_cutoff_is_named(value: str) -> None:
    with pytest.raises(InvalidSpec, match=r"policy.exclude-newer: .* is not an RFC 3339 timestamp"):
        parse_spec(
            f'[[target]]\nplatform = "linux/amd64"\npython = "3.11"\n[policy]\nexclude-newer = {value}\n',
            Path("/w/mirror.toml"),
        )


def test_a_file_without_an_upload_time_is_never_proven_older() -> None:
    limit = cooldown.cutoff("2026-11-01", NOW)
    assert cooldown.too_new(None, limit)
    assert cooldown.too_new("2026-11-02T00:00:00.000000Z", limit)
    assert not cooldown.too_new("2026-10-31T23:59:59.999999Z", limit)


def workspace(tmp_path: Path, make_upstream: MakeUpstream, value: str | None) -> Path:
    upstream = make_upstream(RELEASES)
    policy = f'[policy]\nbuild-wheels = false\nexclude-newer = "{value}"\n' if value else ""
    root = write_workspace(tmp_path / "ws", upstream, ["om-pure"], targets=[("linux/amd64", "3.11")], extra=policy)
    if value:  # write_workspace adds its own [policy] table without build-wheels: keep one table only
        text = (root / "mirror.toml").read_text().replace("[policy]\nbuild-wheels = false\n[policy]\n", "[policy]\n")
        (root / "mirror.toml").write_text(text)
    return root


@pytest.mark.parametrize(
    ("value", "pin"), [(None, "om-pure==2.0"), ("2026-11-01", "om-pure==1.0"), ("7d", "om-pure==1.0")]
)
def test_a_cooldown_moves_a_pin_back(value: str | None, pin: str, make_upstream: MakeUpstream, tmp_path: Path) -> None:
    root = workspace(tmp_path, make_upstream, value)
    manifest = Workspace.open(root / "mirror.toml").lock(LockOptions(now=NOW)).manifest
    assert [p.pin for p in manifest.targets[0].runtime()] == [pin]
    header = (root / "lockfiles" / "linux-amd64-cp311.txt").read_text()
    if value is None:
        assert manifest.exclude_newer is None and "exclude-newer" not in header
    else:
        cut = cooldown.stamp(cooldown.cutoff(value, NOW))
        assert manifest.exclude_newer == cut
        assert f"# no file uploaded after {cut} (policy.exclude-newer)\n" in header
        assert json.loads((root / "lockfiles" / "mirror.lock.json").read_text())["exclude_newer"] == cut


def test_relocking_within_the_day_writes_the_same_lock(make_upstream: MakeUpstream, tmp_path: Path) -> None:
    root = workspace(tmp_path, make_upstream, "7d")
    Workspace.open(root / "mirror.toml").lock(LockOptions(now=NOW))
    later = NOW.replace(hour=23, minute=59)
    assert Workspace.open(root / "mirror.toml").lock(LockOptions(now=later)).changed == ()


def test_fetch_checks_the_cutoff_again(make_upstream: MakeUpstream, tmp_path: Path) -> None:
    root = workspace(tmp_path, make_upstream, "2026-11-01")
    Workspace.open(root / "mirror.toml").lock(LockOptions(now=NOW))
    lock = root / "lockfiles" / "mirror.lock.json"
    document = json.loads(lock.read_text())
    document["exclude_newer"] = "2023-06-01T00:00:00Z"  # a lock edited (or made elsewhere) after the fact
    lock.write_text(json.dumps(document))
    with pytest.raises(FetchError) as info:
        Workspace.open(root / "mirror.toml").fetch()
    assert str(info.value) == (
        "om_pure-1.0-py3-none-any.whl was uploaded 2024-01-01T00:00:00.000000Z, after the lock's exclude-newer"
        " 2023-06-01T00:00:00Z; run mirror lock"
    )
    assert not (root / "wheelhouse" / "files").exists()


@pytest.mark.parametrize("name", ["poetry.lock", "pylock.toml"])
def test_a_team_lock_pin_newer_than_the_cutoff_is_reported(
    name: str, make_workspace: MakeWorkspace, sha256: Hash
) -> None:
    render, _ = FORMATS[name]
    root = locked_workspace(make_workspace, name, render(sha256))
    with (root / "mirror.toml").open("a") as spec:
        spec.write('[policy]\nexclude-newer = "2023-06-01"\n')  # every fixture file was uploaded 2024-01-01
    with pytest.raises(LockError) as info:
        Workspace.open(root / "mirror.toml").lock()
    assert str(info.value) == (
        f"app/{name}: om-native 1.0 was uploaded 2024-01-01T00:00:00.000000Z, after policy.exclude-newer"
        " (2023-06-01T00:00:00Z, '2023-06-01'); lock it again under the cooldown, or wait"
    )
    assert not (root / "lockfiles").exists()
