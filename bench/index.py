"""Benchmark ``mirror index`` on 10,000 synthetic wheels: a full build, a no-change rebuild, one project added.

Run from the repository root (the venv must have offline-mirror installed)::

    .venv/bin/python bench/index.py [--runs 5] [--projects 1000] [--workdir DIR] [--keep] [--no-anchor]

The input is made once per run of the script (untimed), through the files ``mirror index`` reads and the
library's own types, never by writing its output or its state:

* ``--projects`` projects (default 1,000) x 5 versions x 2 platforms = 10,000 real wheels in
  ``wheelhouse/files/<project>/`` -- small valid zip files with ``<dist>/__init__.py`` and a ``.dist-info``
  holding ``METADATA`` (``Requires-Python``, a few ``Requires-Dist``), ``WHEEL`` and ``RECORD`` (sha256 of each
  member), tagged ``cp39-abi3-manylinux_2_17_{x86_64,aarch64}``;
* ``lockfiles/mirror.lock.json`` written with :class:`mirror.manifest.Manifest` for 10 targets (linux/amd64 and
  linux/arm64 x CPython 3.9-3.13): target k pins version k of every project, so each wheel is locked by
  exactly one target and the manifest lists all 10,000;
* the verified-files record (``files/.verified.json``) written by ``mirror fetch --offline``, which hashes every
  file present and downloads nothing -- the state after a ``mirror fetch`` or a ``bundle import``.

Timed variants, each ``python -m mirror index`` as a subprocess (interpreter start-up and imports included):

* **full build (cold)**: ``wheelhouse/simple``, ``wheelhouse/index.html`` and every extracted ``<wheel>.metadata``
  removed first, so every page is written and every wheel's METADATA extracted (goal: <= 5 s);
* **no-change rebuild**: the same again with nothing changed;
* **add one project**: a new project with 4 wheels (2 versions x 2 platforms) added to the files, the manifest and
  the verified record (``mirror fetch --offline``, untimed), then ``mirror index`` (goal: <= 0.5 s). The project is
  removed again (untimed) before the next round.

The same three are also timed in-process (``Workspace.open(spec).index()``: the spec, the lock, ``write_index``;
imports excluded) to show what the interpreter start-up costs. The anchor, unless ``--no-anchor``: ``simple503``
(a static PEP 503 generator with PEP 658 metadata, installed in its own venv in the work directory) over the same
10,000 wheels, from scratch, into its own output directory. It writes HTML only (no PEP 691 JSON, no people's
page), so it does less; the goals are absolute and the anchor is context.

One untimed warm-up round runs every variant; then ``--runs`` rounds (order rotated per round); median and minimum
wall time. The files stay in the page cache (the machine is not asked to drop caches), so the cold build measures
the index's own work, not the disk. Every ``PIP_*`` / ``UV_*`` variable is removed from the subprocesses,
``PIP_CONFIG_FILE=/dev/null``, ``UV_NO_CONFIG=1``. Nothing is served and nothing leaves the machine (the anchor's
install from PyPI aside).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from _common import StepFailed, load_average, run

VERSIONS = ("1.0", "1.1", "2.0", "2.1", "3.0")
ARCHES = (("linux/amd64", "x86_64"), ("linux/arm64", "aarch64"))
PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13")
ADDED_VERSIONS = VERSIONS[:2]
GOAL_FULL = 5.0
GOAL_ADD = 0.5
_INDEXED = re.compile(r"^index: (\d+) projects, (\d+) files", re.MULTILINE)
_DATE = (2024, 1, 1, 0, 0, 0)


# -- the synthetic wheelhouse ------------------------------------------------------------------------------------


def project_name(i: int) -> str:
    return f"bench-pkg-{i:05d}"


def wheel_bytes(project: str, version: str, tag: str) -> bytes:
    """A small valid wheel: a module, METADATA, WHEEL and a RECORD with every member's sha256."""
    dist = project.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    module = f'"""{project} {version}: synthetic, for bench/index.py."""\n\n__version__ = "{version}"\n'
    module += "".join(f"\n\ndef f{i}(x: int) -> int:\n    return x * {i} + {len(project)}\n" for i in range(20))
    metadata = (
        f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n"
        f"Summary: Synthetic project {project} for the index benchmark\nRequires-Python: >=3.9\n"
        "Requires-Dist: packaging>=23\nRequires-Dist: click>=8; extra == 'cli'\nProvides-Extra: cli\n\n"
        f"# {project}\n\nA long description, as real packages have.\n" + "Lorem ipsum dolor sit amet. " * 30 + "\n"
    )
    wheel = f"Wheel-Version: 1.0\nGenerator: bench/index.py\nRoot-Is-Purelib: false\nTag: {tag}\n"
    members = [(f"{dist}/__init__.py", module), (f"{info}/METADATA", metadata), (f"{info}/WHEEL", wheel)]
    record = []
    for name, text in members:
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    members.append((f"{info}/RECORD", "\n".join(record) + "\n"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, text in members:
            archive.writestr(zipfile.ZipInfo(name, _DATE), text)
    return buffer.getvalue()


def wheel_filename(project: str, version: str, arch: str) -> str:
    return f"{project.replace('-', '_')}-{version}-cp39-abi3-manylinux_2_17_{arch}.whl"


@dataclass(frozen=True)
class Paths:
    root: Path

    @property
    def spec(self) -> Path:
        return self.root / "mirror.toml"

    @property
    def wheelhouse(self) -> Path:
        return self.root / "wheelhouse"

    @property
    def files(self) -> Path:
        return self.wheelhouse / "files"

    @property
    def lockfiles(self) -> Path:
        return self.root / "lockfiles"


def write_project(ws: Paths, project: str, versions: Sequence[str]) -> dict[tuple[str, str], tuple[str, str]]:
    """Write the project's wheels; {(version, arch): (filename, sha256)}."""
    out = {}
    directory = ws.files / project
    directory.mkdir(parents=True, exist_ok=True)
    for version in versions:
        for _, arch in ARCHES:
            name = wheel_filename(project, version, arch)
            data = wheel_bytes(project, version, f"cp39-abi3-manylinux_2_17_{arch}")
            (directory / name).write_bytes(data)
            out[(version, arch)] = (name, hashlib.sha256(data).hexdigest())
    return out


def build_manifest(ws: Paths, projects: dict[str, dict[tuple[str, str], tuple[str, str]]]) -> object:
    """The lock manifest of ``projects``, built with mirror's own types: target k pins version k of each project."""
    from mirror.manifest import FileEntry, Manifest, PackageEntry, TargetEntry
    from mirror.targets import Target

    files: dict[str, FileEntry] = {}
    packages: dict[str, list[PackageEntry]] = {}
    targets = [(Target.create(plat, py), k, arch) for plat, arch in ARCHES for k, py in enumerate(PYTHONS)]
    for project, wheels in projects.items():
        for (version, _arch), (name, sha256) in wheels.items():
            files[name] = FileEntry(
                filename=name,
                project=project,
                version=version,
                kind="wheel",
                url=(ws.files / project / name).as_uri(),
                sha256=sha256,
                size=(ws.files / project / name).stat().st_size,
                requires_python=">=3.9",
                upload_time="2024-01-01T00:00:00.000000Z",
            )
        for target, k, arch in targets:
            version = VERSIONS[k]
            if (version, arch) in wheels:
                packages.setdefault(target.name, []).append(
                    PackageEntry(
                        name=project,
                        version=version,
                        role="runtime",
                        files=(wheels[(version, arch)][0],),
                        via=("-r requirements.txt",),
                    )
                )
    entries = tuple(TargetEntry(target=t, packages=tuple(packages.get(t.name, ()))) for t, _, _ in targets)
    return Manifest(
        upstream="http://127.0.0.1:9/simple", resolver="uv", created_by="bench/index.py", targets=entries, files=files
    )


def save_manifest(ws: Paths, manifest: object) -> None:
    from mirror.manifest import MANIFEST, Manifest, load_manifest

    assert isinstance(manifest, Manifest)
    ws.lockfiles.mkdir(parents=True, exist_ok=True)
    (ws.lockfiles / MANIFEST).write_text(manifest.dumps(), encoding="utf-8")
    load_manifest(ws.lockfiles)  # it must read back as mirror wrote it


def make_workspace(ws: Paths, count: int) -> tuple[object, int]:
    """Wheels, manifest and spec for ``count`` projects; (the manifest, bytes of wheels)."""
    ws.root.mkdir(parents=True, exist_ok=True)
    lines = ["[mirror]", 'upstream = "http://127.0.0.1:9/simple"']
    for plat, _ in ARCHES:
        for py in PYTHONS:
            lines += ["", "[[target]]", f'platform = "{plat}"', f'python = "{py}"']
    lines += ["", "[sources]", 'packages = ["bench-pkg-00000"]', ""]
    ws.spec.write_text("\n".join(lines), encoding="utf-8")
    projects = {project_name(i): write_project(ws, project_name(i), VERSIONS) for i in range(count)}
    manifest = build_manifest(ws, projects)
    save_manifest(ws, manifest)
    nbytes = sum(p.stat().st_size for p in ws.files.glob("*/*.whl"))
    return manifest, nbytes


def clear_index(ws: Paths, trash: Path) -> None:
    """Move away everything ``mirror index`` writes: the tree, the people's page and the extracted metadata.

    Moved, not deleted: ext4 without a journal (this machine's root filesystem) skips recently deleted inodes when
    it allocates new ones (fs/ext4/ialloc.c ``recently_deleted``: for 60 s, or 300 s more while the inode table
    block is dirty), and deleting 12,000 files just before creating 12,000 makes each creation scan past them --
    up to 0.5 ms of kernel time per file, a cost a real first index (after a fetch, which deletes nothing) does
    not pay. The trash is deleted when the benchmark ends.
    """
    trash.mkdir(parents=True)
    if (ws.wheelhouse / "simple").exists():
        os.rename(ws.wheelhouse / "simple", trash / "simple")
    if (ws.wheelhouse / "index.html").exists():
        os.rename(ws.wheelhouse / "index.html", trash / "index.html")
    (trash / "metadata").mkdir()
    for i, path in enumerate(ws.files.glob("*/*.whl.metadata")):
        os.rename(path, trash / "metadata" / str(i))


# -- variants ------------------------------------------------------------------------------------------------------


@dataclass
class Variant:
    label: str
    prepare: Callable[[], None]  # untimed
    execute: Callable[[], float]
    cleanup: Callable[[], None] = lambda: None
    goal: float | None = None
    times: list[float] = field(default_factory=list)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5, help="timed rounds after the warm-up (default 5)")
    parser.add_argument("--projects", type=int, default=1000, help="projects, 10 wheels each (default 1000)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds allowed per subprocess (default 300)")
    parser.add_argument("--python", default=sys.executable, help="interpreter with offline-mirror")
    parser.add_argument("--workdir", type=Path, help="work directory (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--no-anchor", action="store_true", help="skip simple503")
    parser.add_argument("--no-in-process", action="store_true", help="skip the in-process figures")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if not 1 <= args.projects <= 10_000:
        parser.error("--projects must be between 1 and 10000")

    from mirror.manifest import Manifest
    from mirror.workspace import Workspace

    load_start = load_average()
    work = (args.workdir or Path(tempfile.mkdtemp(prefix="bench-index-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    log = work / "bench.log"
    ws = Paths(work / "workspace")
    trash = work / "trash"
    trashed = iter(range(1_000_000))
    py = args.python
    timeout = args.timeout
    mirror = [py, "-m", "mirror"]
    spec = ["--spec", str(ws.spec)]
    failed = False

    try:
        print("# bench/index.py — mirror index on synthetic wheels", flush=True)
        print(f"setup: writing {args.projects * 10:,} wheels into {ws.files} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        shutil.rmtree(ws.root, ignore_errors=True)
        base, nbytes = make_workspace(ws, args.projects)
        assert isinstance(base, Manifest)
        setup_write = time.perf_counter() - started
        seconds, _ = run([*mirror, "fetch", "--offline", *spec], timeout=timeout, log=log)
        print(f"setup: {setup_write:.1f}s to write; mirror fetch --offline {seconds:.1f}s", file=sys.stderr)
        expected = (args.projects, len(base.files))
        mirror_version = run([*mirror, "--version"], timeout=60, log=log)[1].strip()

        def index_cli() -> tuple[float, tuple[int, int]]:
            seconds, text = run([*mirror, "index", *spec], timeout=timeout, log=log)
            match = _INDEXED.search(text)
            if match is None:
                raise StepFailed(f"no 'index: N projects, M files' line in: {text.strip()[-300:]}")
            return seconds, (int(match[1]), int(match[2]))

        def index_in_process() -> float:
            start = time.perf_counter()
            result = Workspace.open(ws.spec).index()  # the spec, the lock with built wheels, the index
            elapsed = time.perf_counter() - start
            if result.skipped:
                raise StepFailed(f"{len(result.skipped)} files not indexed, e.g. {result.skipped[0]}")
            return elapsed

        def checked(counts: tuple[int, int], want: tuple[int, int]) -> None:
            if counts != want:
                raise StepFailed(f"indexed {counts[0]} projects, {counts[1]} files; expected {want[0]}, {want[1]}")

        def built() -> None:  # precondition: the index of the base manifest is up to date
            if not (ws.wheelhouse / "simple" / "index.html").is_file():
                checked(index_cli()[1], expected)

        added_name = "bench-added"

        def add_project() -> None:
            built()
            wheels = write_project(ws, added_name, ADDED_VERSIONS)
            grown = build_manifest(ws, {added_name: wheels})
            assert isinstance(grown, Manifest)
            merged = replace(
                base,
                targets=tuple(
                    replace(t, packages=t.packages + g.packages)
                    for t, g in zip(base.targets, grown.targets, strict=True)
                ),
                files={**base.files, **grown.files},
            )
            save_manifest(ws, merged)
            run([*mirror, "fetch", "--offline", *spec], timeout=timeout, log=log)

        def remove_project() -> None:
            save_manifest(ws, base)
            shutil.rmtree(ws.files / added_name, ignore_errors=True)
            checked(index_cli()[1], expected)

        added_expected = (expected[0] + 1, expected[1] + len(ADDED_VERSIONS) * len(ARCHES))

        def cli_cold() -> float:
            seconds, counts = index_cli()
            checked(counts, expected)
            return seconds

        def cli_add() -> float:
            seconds, counts = index_cli()
            checked(counts, added_expected)
            return seconds

        variants = [
            Variant(
                "mirror index: full build (cold)",
                lambda: clear_index(ws, trash / str(next(trashed))),
                cli_cold,
                goal=GOAL_FULL,
            ),
            Variant("mirror index: no-change rebuild", built, cli_cold),
            Variant("mirror index: add one project (4 wheels)", add_project, cli_add, remove_project, GOAL_ADD),
        ]
        if not args.no_in_process:
            variants += [
                Variant(
                    "in-process write_index: full build (cold)",
                    lambda: clear_index(ws, trash / str(next(trashed))),
                    index_in_process,
                ),
                Variant("in-process write_index: no-change rebuild", built, index_in_process),
                Variant("in-process write_index: add one project", add_project, index_in_process, remove_project),
            ]
        anchor_version = ""
        if not args.no_anchor:
            try:
                anchor_bin = make_anchor_venv(work / "venvs" / "simple503", log, timeout)
                anchor_version = run([anchor_bin / "python", "-m", "pip", "show", "simple503"], timeout=60, log=log)[1]
                anchor_version = "simple503 " + re.findall(r"^Version: (\S+)", anchor_version, re.MULTILINE)[0]
                tree = work / "simple503-tree"  # the same wheels (hard links); simple503 indexes it in place
                shutil.rmtree(tree, ignore_errors=True)
                shutil.copytree(ws.files, tree, copy_function=os.link, ignore=shutil.ignore_patterns(".*"))
                variants.append(
                    Variant(
                        "anchor: simple503, from scratch (HTML only)",
                        lambda: clear_simple503(tree, trash / str(next(trashed))),
                        lambda: simple503_once(anchor_bin, tree, timeout, log),
                    )
                )
            except (StepFailed, OSError, IndexError) as exc:
                print(f"skipped the anchor (simple503): {exc}", file=sys.stderr)

        print(f"command:  {' '.join([Path(sys.executable).name, *sys.argv])}")
        print(f"machine:  {platform.platform()}, nproc {os.cpu_count()}, load average {load_start} at the start")
        print(
            f"python:   {platform.python_version()} ({py}); {mirror_version}"
            + (f"; {anchor_version}" if anchor_version else "")
        )
        print(
            f"input:    {expected[0]:,} projects x {len(VERSIONS)} versions x {len(ARCHES)} platforms ="
            f" {expected[1]:,} wheels, {nbytes / 1e6:.1f} MB; 10 targets; verified by mirror fetch --offline"
        )
        print(f"runs:     1 warm-up + {args.runs} timed rounds, order rotated per round", flush=True)

        for round_no in range(args.runs + 1):
            name = "warm-up" if round_no == 0 else f"round {round_no}/{args.runs}"
            shift = round_no % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                variant.prepare()
                seconds = variant.execute()
                variant.cleanup()
                if round_no > 0:
                    variant.times.append(seconds)
                print(f"  {name}: {variant.label}: {seconds:.3f}s", file=sys.stderr, flush=True)
    except (StepFailed, OSError) as exc:
        print(f"failed: {exc}", file=sys.stderr)
        print(f"work directory kept: {work}")
        return 1

    width = max(len(v.label) for v in variants)
    print()
    print(f"| {'variant':<{width}} | median s |  min s | runs | goal |")
    print(f"| {'-' * width} | -------: | -----: | ---: | ---- |")
    for v in variants:
        median = statistics.median(v.times)
        goal = "" if v.goal is None else f"<= {v.goal:g} s: {'met' if median <= v.goal else 'MISSED'}"
        print(f"| {v.label:<{width}} | {median:8.3f} | {min(v.times):6.3f} | {len(v.times):>4} | {goal} |")
    print()
    by_label = {v.label: statistics.median(v.times) for v in variants}
    full = by_label["mirror index: full build (cold)"]
    for v in variants:
        if v.label.startswith("anchor"):
            print(f"mirror index full build / {v.label}: {full / statistics.median(v.times):.2f}x")
    for v in variants:
        if v.goal is not None:
            median = statistics.median(v.times)
            verdict = "met" if median <= v.goal else "MISSED"
            print(
                f"goal ({v.label} <= {v.goal:g} s): {verdict} ({median:.3f}s median, {median / v.goal:.2f}x the goal)"
            )
    print(f"load average at the end: {load_average()}")
    if args.keep or args.workdir is not None or failed:
        print(f"work directory kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


def make_anchor_venv(directory: Path, log: Path, timeout: float) -> Path:
    bin_dir = directory / "bin"
    if not (bin_dir / "simple503").exists():
        run([sys.executable, "-m", "venv", "--clear", directory], timeout=timeout, log=log)
        run([bin_dir / "python", "-m", "pip", "install", "--quiet", "simple503"], timeout=timeout, log=log)
    return bin_dir


def clear_simple503(tree: Path, trash: Path) -> None:
    """Move away what simple503 writes: every index.html and every extracted .metadata (see clear_index)."""
    trash.mkdir(parents=True)
    for i, path in enumerate([*tree.glob("index.html"), *tree.glob("*/index.html"), *tree.glob("*/*.whl.metadata")]):
        os.rename(path, trash / str(i))


def simple503_once(bin_dir: Path, tree: Path, timeout: float, log: Path) -> float:
    """simple503 in place (ORIGIN = TARGET, so it neither moves nor copies a wheel), PEP 658 metadata on."""
    seconds, _ = run([bin_dir / "simple503", "--extract-metadata", str(tree), str(tree)], timeout=timeout, log=log)
    if not (tree / "index.html").is_file():
        raise StepFailed(f"simple503 wrote no {tree / 'index.html'}")
    return seconds


if __name__ == "__main__":
    sys.exit(main())
