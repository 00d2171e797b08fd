"""mirror audit: the lock against an OSV export of PyPI (zip or directory), the schema's evaluation, the CLI, and
the export carried by a bundle (bundle export --osv → import → audit with no --osv)."""

from __future__ import annotations

import copy
import json
import zipfile
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

import pytest
from packaging.version import Version

from mirror.audit import Advisory, AuditError, InvalidRecord, load_osv, zip_records
from mirror.bundle import format as bundle_format
from mirror.bundle import read_manifest
from mirror.bundle.export import ExportOptions
from mirror.workspace import Workspace
from tests.fixtures.env import Cli, synced_workspace
from tests.fixtures.server import Upstream

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
AMD64, ARM64 = "linux-amd64-cp311", "linux-arm64-cp312"
BOTH = f"{AMD64}, {ARM64}"
Record = Mapping[str, object]


def record(
    id: str,
    name: str,
    *,
    ranges: list[dict[str, object]] | None = None,
    versions: list[str] | None = None,
    ecosystem: str = "PyPI",
    aliases: tuple[str, ...] = (),
    modified: str = "2026-11-20T08:00:00Z",
    **extra: object,
) -> dict[str, object]:
    """An OSV record shaped as osv.dev exports PyPI's (PYSEC-/GHSA- records: schema_version, dates, references)."""
    affected: dict[str, object] = {"package": {"ecosystem": ecosystem, "name": name, "purl": f"pkg:pypi/{name}"}}
    if ranges is not None:
        affected["ranges"] = ranges
    if versions is not None:
        affected["versions"] = versions
    return {
        "schema_version": "1.6.0",
        "id": id,
        "modified": modified,
        "published": "2026-11-01T00:00:00Z",
        "aliases": list(aliases),
        "summary": f"{name}: a fixture vulnerability",
        "details": "Modelled on a real record; the package is a fixture of this test suite.",
        "affected": [affected],
        "references": [{"type": "ADVISORY", "url": f"https://example.invalid/{id}"}],
        **extra,
    }


def ecosystem(*events: dict[str, str], type: str = "ECOSYSTEM") -> dict[str, object]:
    return {"type": type, "events": list(events)}


# The fixture lock (both targets): runtime om-pure 1.0, om-sdistonly 1.0; build-only om-backend, om-buildhelper,
# om-dynamic 1.0 (what om-sdistonly's build needs).
RECORDS: dict[str, dict[str, object]] = {
    # an ECOSYSTEM range from the beginning, fixed in 2.0, with the versions list osv.dev adds (PYSEC style)
    "PYSEC-2026-101": record(
        "PYSEC-2026-101",
        "om-pure",
        ranges=[ecosystem({"introduced": "0"}, {"fixed": "2.0"})],
        versions=["0.9", "1.0"],
        aliases=("CVE-2026-0101", "GHSA-aaaa-bbbb-cccc"),
    ),
    # fixed in 1.0: the locked 1.0 is not affected
    "GHSA-fixd-fixd-fixd": record(
        "GHSA-fixd-fixd-fixd",
        "om-pure",
        ranges=[ecosystem({"introduced": "0.5"}, {"fixed": "1.0"})],
        aliases=("CVE-2026-0102",),
        database_specific={"severity": "CRITICAL", "github_reviewed": True},
    ),
    # last_affected 1.0 (inclusive), no fix known; a build requirement (GHSA style, with a severity)
    "GHSA-last-last-last": record(
        "GHSA-last-last-last",
        "om-backend",
        ranges=[ecosystem({"introduced": "0.5"}, {"last_affected": "1.0"})],
        aliases=("CVE-2026-0103",),
        modified="2026-11-28T09:30:00.123456Z",  # the newest: the export's date
        database_specific={"severity": "HIGH", "github_reviewed": True},
    ),
    # only an explicit versions list
    "PYSEC-2026-104": record("PYSEC-2026-104", "om-dynamic", versions=["0.9", "1.0"]),
    # withdrawn: never reported
    "PYSEC-2026-105": record(
        "PYSEC-2026-105",
        "om-sdistonly",
        ranges=[ecosystem({"introduced": "0"})],
        withdrawn="2026-11-10T00:00:00Z",
    ),
    # another ecosystem's package of the same name
    "MAL-2026-106": record("MAL-2026-106", "om-pure", ecosystem="npm", ranges=[ecosystem({"introduced": "0"})]),
    # the name as its author spells it; two ranges (the events unsorted): the smallest fix above 1.0 is 1.1
    "GHSA-norm-norm-norm": record(
        "GHSA-norm-norm-norm",
        "Om_SdistOnly",
        ranges=[ecosystem({"fixed": "1.5"}, {"introduced": "1.3"}, {"fixed": "1.1"}, {"introduced": "0"})],
    ),
    # a GIT range needs the repository: ignored
    "OSV-2026-107": record(
        "OSV-2026-107",
        "om-buildhelper",
        ranges=[{"type": "GIT", "repo": "https://example.invalid/om", "events": [{"introduced": "0"}]}],
    ),
}

TABLE = [
    "package       version  advisory             aliases                             fixed in  role        targets",
    f"om-backend    1.0      GHSA-last-last-last  CVE-2026-0103                       no fix    build-only  {BOTH}",
    f"om-dynamic    1.0      PYSEC-2026-104       -                                   no fix    build-only  {BOTH}",
    f"om-pure       1.0      PYSEC-2026-101       CVE-2026-0101, GHSA-aaaa-bbbb-cccc  2.0       runtime     {BOTH}",
    f"om-sdistonly  1.0      GHSA-norm-norm-norm  -                                   1.1       runtime     {BOTH}",
    "4 advisories affect 4 of the 5 locked packages of 2 targets",
]


def write_dir(directory: Path, records: Mapping[str, Record], extra: Mapping[str, str] | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for key, value in records.items():
        (directory / f"{key}.json").write_text(json.dumps(value, indent=2))
    for name, text in (extra or {}).items():
        (directory / name).write_text(text)
    return directory


def write_zip(path: Path, records: Mapping[str, Record], extra: Mapping[str, str] | None = None) -> Path:
    """As osv.dev's all.zip: one <ID>.json per record at the root."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, value in records.items():
            archive.writestr(f"{key}.json", json.dumps(value))
        for name, text in (extra or {}).items():
            archive.writestr(name, text)
    return path


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Path:
    """A workspace locked and fetched for two targets: om-pure 1.0 and om-sdistonly (whose build needs om-backend,
    om-buildhelper and om-dynamic)."""
    return synced_workspace(
        tmp_path_factory.mktemp("audit"),
        upstream,
        ["om-pure==1.0", "om-sdistonly"],
        targets=[("linux/amd64", "3.11"), ("linux/arm64", "3.12")],
        build_wheels=False,
    )


def spec(root: Path) -> str:
    return str(root / "mirror.toml")


# --- the schema's evaluation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "version", "affected"),
    [
        ([{"introduced": "0"}], "0.0.1.dev0", True),  # "0" is before every version, a dev release of 0 too
        ([{"introduced": "0"}, {"fixed": "2.0"}], "1.9.9", True),
        ([{"introduced": "0"}, {"fixed": "2.0"}], "2.0", False),  # fixed is exclusive
        ([{"introduced": "0"}, {"fixed": "2.0"}], "2.0rc1", True),  # a pre-release sorts before its release
        ([{"introduced": "1.0"}, {"fixed": "2.0"}], "0.9", False),
        ([{"introduced": "1.0"}, {"fixed": "2.0"}], "1.0", True),  # introduced is inclusive
        ([{"introduced": "1.0"}, {"last_affected": "1.4"}], "1.4", True),  # last_affected is inclusive
        ([{"introduced": "1.0"}, {"last_affected": "1.4"}], "1.4.post1", False),
        ([{"introduced": "1.0"}, {"fixed": "1.2"}, {"introduced": "1.5"}, {"fixed": "1.7"}], "1.3", False),
        ([{"introduced": "1.0"}, {"fixed": "1.2"}, {"introduced": "1.5"}, {"fixed": "1.7"}], "1.6", True),
        ([{"fixed": "1.7"}, {"introduced": "1.5"}, {"fixed": "1.2"}, {"introduced": "1.0"}], "1.6", True),  # sorted
        ([{"introduced": "0"}, {"limit": "1.5"}], "1.5", False),  # a limit is an exclusive ceiling
        ([{"introduced": "0"}, {"limit": "1.5"}], "1.4", True),
        ([{"introduced": "0"}, {"limit": "*"}], "99", True),
        ([{"introduced": "1.0"}, {"fixed": "1.0"}], "1.0", False),  # at one version: introduced, then fixed
        ([{"introduced": "01.0"}, {"fixed": "2"}], "1.0", True),  # compared as versions, not strings
        ([{"introduced": "not a version"}, {"fixed": "2.0"}], "1.0", False),  # the range is skipped
    ],
)
def test_ranges_follow_the_schema(events: list[dict[str, str]], version: str, affected: bool) -> None:
    advisory = Advisory.from_dict(record("X-1", "om-pure", ranges=[ecosystem(*events)]))
    assert advisory.affects("om-pure", Version(version)) is affected


def test_a_bad_range_does_not_hide_a_good_one_nor_a_bad_listed_version_a_good_one() -> None:
    advisory = Advisory.from_dict(
        record(
            "X-1",
            "om-pure",
            ranges=[ecosystem({"introduced": "v1!?"}), ecosystem({"introduced": "3.0"}, {"fixed": "3.1"})],
            versions=["not-a-version", "1.0"],
        )
    )
    assert advisory.affects("om-pure", Version("1.0"))  # listed
    assert advisory.affects("om-pure", Version("3.0.5"))  # the good range
    assert not advisory.affects("om-pure", Version("2.0"))
    assert advisory.fixed_in("om-pure", Version("3.0.5")) == "3.1"


@pytest.mark.parametrize("type", ["SEMVER", "ECOSYSTEM"])
def test_semver_ranges_are_evaluated_git_ranges_are_not(type: str) -> None:
    ranges = [ecosystem({"introduced": "1.0.0-rc.1"}, {"fixed": "1.0.2"}, type=type)]
    advisory = Advisory.from_dict(record("X-1", "om-pure", ranges=ranges))
    assert advisory.affects("om-pure", Version("1.0.1"))
    assert not advisory.affects("om-pure", Version("1.0.0b9"))
    git = Advisory.from_dict(
        record("X-2", "om-pure", ranges=[{"type": "GIT", "repo": "r", "events": ranges[0]["events"]}])
    )
    assert not git.affects("om-pure", Version("1.0.1"))


@pytest.mark.parametrize(
    ("spelled", "ecosystem_name", "affected"),
    [("Foo_Bar", "PyPI", True), ("foo.bar", "PyPI", True), ("FOO--bar", "PyPI", True), ("foo-bar", "npm", False),
     ("foo-bar", "pypi", False), ("foo-baz", "PyPI", False)],
)  # fmt: skip
def test_names_are_compared_normalised_and_only_in_pypi(spelled: str, ecosystem_name: str, affected: bool) -> None:
    advisory = Advisory.from_dict(
        record("X-1", spelled, ecosystem=ecosystem_name, ranges=[ecosystem({"introduced": "0"})])
    )
    assert advisory.affects("foo-bar", Version("1.0")) is affected


def test_an_entry_naming_no_package_is_not_about_one() -> None:
    raw = record("OSV-1", "om-pure", ranges=[ecosystem({"introduced": "0"})])
    raw["affected"] = [{"ranges": [{"type": "GIT", "repo": "r", "events": [{"introduced": "0"}]}]}, *raw["affected"]]  # type: ignore[misc]
    advisory = Advisory.from_dict(raw)
    assert [entry.name for entry in advisory.affected] == ["om-pure"]
    assert advisory.affects("om-pure", Version("1.0"))


def test_the_export_date_reads_any_fraction_of_a_second(tmp_path: Path) -> None:
    records = {
        "A-1": record("A-1", "om-pure", modified="2026-11-29T10:00:00.123456789Z"),
        "A-2": record("A-2", "om-pure", modified="2026-11-29T09:59:59.5+00:00"),
        "A-3": record("A-3", "om-pure", modified="yesterday"),
    }
    assert load_osv(write_dir(tmp_path / "osv", records)).newest == "2026-11-29T10:00:00Z"


def test_a_withdrawn_record_affects_nothing() -> None:
    raw = record("X-1", "om-pure", ranges=[ecosystem({"introduced": "0"})], withdrawn="2026-11-10T00:00:00Z")
    assert not Advisory.from_dict(raw).affects("om-pure", Version("1.0"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": 7}, "id: expected a non-empty string, got 7"),
        ({"affected": {}}, "affected: expected an array, got {}"),
        ({"affected": [{"package": "om-pure"}]}, "affected[0].package: expected an object with ecosystem and name, got 'om-pure'"),
        ({"affected": [{"package": {"ecosystem": "PyPI", "name": "om-pure"}, "ranges": [{"type": "ECOSYSTEM",
          "events": [{"introduced": "0", "fixed": "1"}]}]}]},
         "affected[0].ranges[0].events[0]: expected one of introduced, fixed, last_affected, limit"),
        ({"aliases": "CVE-1"}, "aliases: expected an array of strings, got 'CVE-1'"),
    ],
)  # fmt: skip
def test_an_invalid_record_names_the_field(change: dict[str, object], message: str) -> None:
    raw = {**record("X-1", "om-pure", ranges=[ecosystem({"introduced": "0"})]), **change}
    with pytest.raises(InvalidRecord) as caught:
        Advisory.from_dict(raw)
    assert str(caught.value) == message


# --- reading an export -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["zip", "directory"])
def test_an_export_is_read_from_a_zip_or_a_directory(tmp_path: Path, kind: str) -> None:
    bad = {"GHSA-bad1.json": "{not json", "PYSEC-bad2.json": "[1, 2]", "README.txt": "not a record"}
    path = write_zip(tmp_path / "all.zip", RECORDS, bad) if kind == "zip" else write_dir(tmp_path / "osv", RECORDS, bad)
    export = load_osv(path, ["om-pure"])
    assert export.records == len(RECORDS) + 2  # README.txt is not a record file
    assert sorted(a.id for a in export.advisories) == ["GHSA-fixd-fixd-fixd", "PYSEC-2026-101"]  # npm's: not asked
    assert {s.name: s.reason.split(":")[0] for s in export.skipped} == {
        "GHSA-bad1.json": "not JSON",
        "PYSEC-bad2.json": "expected a JSON object with an 'id' (an OSV record)",
    }
    assert export.newest == "2026-11-28T09:30:00Z"  # of every record, not only those about om-pure


def test_only_the_records_about_the_names_asked_for_are_parsed(tmp_path: Path) -> None:
    broken = record("PYSEC-2026-900", "om-other", ranges="not a list")  # type: ignore[arg-type]
    export = load_osv(write_dir(tmp_path / "osv", {**RECORDS, "PYSEC-2026-900": broken}), ["om-pure"])
    assert sorted(a.id for a in export.advisories) == ["GHSA-fixd-fixd-fixd", "PYSEC-2026-101"]
    assert export.skipped == ()
    everything = load_osv(tmp_path / "osv")
    assert [(s.name, s.reason) for s in everything.skipped] == [
        ("PYSEC-2026-900.json", "affected[0].ranges: expected an array, got 'not a list'")
    ]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "nothing-here.zip", "nothing-here.zip: no such file or directory (expected osv.dev's PyPI"),
        (lambda p: p / "mirror.lock.json", "mirror.lock.json: not an OSV export (expected osv.dev's PyPI all.zip or"),
        (lambda p: p / "empty", "empty: no OSV records (*.json) in it (expected osv.dev's PyPI all.zip or"),
        (lambda p: p / "empty.zip", "empty.zip: no OSV records (*.json) in it"),
    ],
)
def test_a_wrong_export_is_one_error(tmp_path: Path, make: object, message: str) -> None:
    (tmp_path / "mirror.lock.json").write_text("{}")
    (tmp_path / "empty").mkdir()
    write_zip(tmp_path / "empty.zip", {}, {"README": "x"})
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(AuditError) as caught:
        load_osv(path)
    assert str(caught.value).startswith(f"{tmp_path}/{message}")


def test_a_directory_zips_to_the_same_bytes_every_time(tmp_path: Path) -> None:
    first = zip_records(write_dir(tmp_path / "a", RECORDS))
    second = zip_records(write_dir(tmp_path / "b", dict(reversed(list(RECORDS.items())))))
    assert first == second
    (tmp_path / "a.zip").write_bytes(first)
    assert sorted(zipfile.ZipFile(tmp_path / "a.zip").namelist()) == sorted(f"{k}.json" for k in RECORDS)


# --- the audit of a workspace ----------------------------------------------------------------------------------


def test_the_audit_of_a_lock(tmp_path: Path, locked: Path) -> None:
    result = Workspace.open(locked / "mirror.toml").audit(write_zip(tmp_path / "all.zip", RECORDS), now=NOW)
    assert result.affected and result.packages == 5 and result.targets == (AMD64, ARM64)
    lines = result.render()
    assert lines[0] == (
        f"advisories: {tmp_path}/all.zip: {len(RECORDS)} OSV records, newest modified 2026-11-28T09:30:00Z"
        " (3 days before this audit)"
    )
    assert lines[1:] == TABLE
    assert result.warnings() == []
    finding = next(f for f in result.findings if f.name == "om-backend")
    assert finding.advisory.severity == "HIGH" and finding.fixed_in is None


def test_one_target_and_a_clean_audit(tmp_path: Path, locked: Path) -> None:
    clean = {k: v for k, v in RECORDS.items() if k in ("GHSA-fixd-fixd-fixd", "PYSEC-2026-105", "MAL-2026-106")}
    workspace = Workspace.open(locked / "mirror.toml")
    result = workspace.audit(write_dir(tmp_path / "osv", clean), [ARM64], now=NOW)
    assert not result.affected and result.targets == (ARM64,)
    assert result.render()[1:] == [
        "no known advisory affects the 5 locked packages of 1 targets (as of 2026-11-20T08:00:00Z)"
    ]


def test_cli_exit_codes_and_json(cli: Cli, tmp_path: Path, locked: Path) -> None:
    zipped = write_zip(tmp_path / "all.zip", RECORDS, {"GHSA-bad1.json": "{not json"})
    result = cli("audit", "--spec", spec(locked), "--osv", str(zipped))
    assert result.exit_code == 1
    assert result.stdout.splitlines()[1:] == TABLE
    assert result.stderr.startswith(f"warning: {zipped}: GHSA-bad1.json: skipped: not JSON: ")

    result = cli("audit", "--spec", spec(locked), "--osv", str(zipped), "--json", "-t", AMD64)
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["affected"] is True and data["targets"] == [AMD64] and data["packages"] == 5
    assert data["advisories"]["records"] == len(RECORDS) + 1
    assert data["advisories"]["newest_modified"] == "2026-11-28T09:30:00Z"
    assert [s["name"] for s in data["advisories"]["skipped"]] == ["GHSA-bad1.json"]
    pure = next(f for f in data["findings"] if f["name"] == "om-pure")
    assert pure == {
        "name": "om-pure",
        "version": "1.0",
        "id": "PYSEC-2026-101",
        "aliases": ["CVE-2026-0101", "GHSA-aaaa-bbbb-cccc"],
        "summary": "om-pure: a fixture vulnerability",
        "severity": None,
        "modified": "2026-11-20T08:00:00Z",
        "fixed_in": "2.0",
        "role": "runtime",
        "targets": [{"target": AMD64, "role": "runtime"}],
    }
    assert [f["role"] for f in data["findings"]] == ["build-only", "build-only", "runtime", "runtime"]

    clean = write_dir(tmp_path / "clean", {"MAL-2026-106": RECORDS["MAL-2026-106"]})
    result = cli("audit", "--spec", spec(locked), "--osv", str(clean))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].startswith("no known advisory affects the 5 locked packages of 2 targets")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "error: no OSV export to audit with: give --osv PATH (osv.dev's PyPI all.zip or a directory of its"
             " records), or import a bundle exported with --osv (it goes to {root}/advisories/osv-pypi.zip)"),
        (("--osv", "{root}/mirror.toml"), "error: {root}/mirror.toml: not an OSV export (expected osv.dev's PyPI"
                                          " all.zip or a directory of its *.json records): File is not a zip file"),
        (("--osv", "{root}/missing"), "error: {root}/missing: no such file or directory (expected osv.dev's PyPI"
                                      " all.zip or a directory of it)"),
        (("--osv", "{osv}", "-t", "nope"), f"error: mirror.lock.json: no target named 'nope'; known: {BOTH}"),
    ],
)  # fmt: skip
def test_cli_bad_input_is_one_line(cli: Cli, tmp_path: Path, locked: Path, args: tuple[str, ...], message: str) -> None:
    osv = write_dir(tmp_path / "osv", {"MAL-2026-106": RECORDS["MAL-2026-106"]})
    args = tuple(a.replace("{osv}", str(osv)) for a in args)
    result = cli("audit", "--spec", spec(locked), *(a.format(root=locked) for a in args))
    assert result.exit_code == 1
    assert result.output == message.format(root=locked) + "\n"


# --- across the air gap ----------------------------------------------------------------------------------------


def test_the_advisories_member_is_a_place_a_bundle_fills() -> None:
    assert bundle_format.misplaced("advisories/osv-pypi.zip") is None
    problem = bundle_format.misplaced("advisories/other.zip")
    assert problem is not None and problem.startswith("is not a place a bundle fills")


@pytest.mark.parametrize("kind", ["zip", "directory"])
def test_bundle_export_osv_then_import_then_audit(cli: Cli, tmp_path: Path, locked: Path, kind: str) -> None:
    records = copy.deepcopy(RECORDS)
    osv = write_zip(tmp_path / "all.zip", records) if kind == "zip" else write_dir(tmp_path / "osv", records)
    options = ExportOptions(tool=False, format="gz", osv=osv)
    exported = Workspace.open(locked / "mirror.toml").export_bundle(tmp_path / "b.tar.gz", options)
    member = next(m for m in read_manifest(exported.path).members if m.path == "advisories/osv-pypi.zip")
    if kind == "zip":
        assert member.size == osv.stat().st_size  # carried as it is
    assert f"advisories: {osv}: {len(RECORDS)} OSV records, newest modified 2026-11-28T09:30:00Z" in "\n".join(
        exported.render()
    )

    offline = tmp_path / "offline"
    imported = cli("bundle", "import", str(exported.path), "--into", str(offline))
    assert imported.exit_code == 0, imported.output
    assert f"advisories: {offline}/advisories/osv-pypi.zip (mirror audit reads it)" in imported.stdout
    assert (offline / "advisories" / "osv-pypi.zip").is_file()

    result = cli("audit", "--spec", str(offline / "mirror.toml"))
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(
        f"advisories: {offline}/advisories/osv-pypi.zip: {len(RECORDS)} OSV records, newest modified"
        " 2026-11-28T09:30:00Z ("
    )
    assert lines[1:] == TABLE


def test_bundle_export_refuses_a_wrong_osv_file(cli: Cli, tmp_path: Path, locked: Path) -> None:
    result = cli(
        "bundle", "export", str(tmp_path / "b.tar.gz"), "--spec", spec(locked), "--no-tool", "--osv", spec(locked)
    )
    assert result.exit_code == 1
    assert result.output.startswith(f"error: {locked}/mirror.toml: not an OSV export")
    assert not list(tmp_path.glob("b*")), "nothing half-written"


def test_a_delta_carries_the_export_only_when_it_changed(tmp_path: Path, locked: Path) -> None:
    workspace = Workspace.open(locked / "mirror.toml")
    osv = write_dir(tmp_path / "osv", RECORDS)
    full = workspace.export_bundle(tmp_path / "w1.tar.gz", ExportOptions(tool=False, osv=osv))
    same = workspace.export_bundle(tmp_path / "w2.tar.gz", ExportOptions(tool=False, since=full.sidecar, osv=osv))
    assert "advisories/osv-pypi.zip" not in {m.path for m in same.manifest.members}  # zipped to the same bytes
    assert "advisories/osv-pypi.zip" in {m.path for m in same.manifest.contents}
    write_dir(osv, {"PYSEC-2026-200": record("PYSEC-2026-200", "om-dep", versions=["1.0"])})
    newer = workspace.export_bundle(tmp_path / "w3.tar.gz", ExportOptions(tool=False, since=full.sidecar, osv=osv))
    assert [m.path for m in newer.manifest.members] == ["advisories/osv-pypi.zip"]
