"""kill -9 a ``mirror sync`` at 20 random moments; after each, nothing unverified has a final name, the index names
only present and verified files, and a re-run completes with ``mirror check`` clean.

The moments are uniform over the measured duration of one sync (a seeded RNG: ``MIRROR_CRASH_SEED`` replays a
run; the seed is in every failure message). Half the rounds start from an empty workspace, half from a synced one
whose spec grew (so an old index is on disk while the new lock, files and pages are written). The upstream sends
files in throttled chunks to widen the window in which a download is under way.
"""

from __future__ import annotations

import html.parser
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from mirror._verified import sha256_file
from mirror.errors import MirrorError
from mirror.fetch import check, stray_partials
from mirror.index import extract_metadata
from mirror.manifest import MANIFEST, InvalidManifest, load_manifest
from mirror.workspace import Workspace
from tests.fixtures.env import MakeWorkspace, isolated_env
from tests.fixtures.server import Upstream, throttle

ROUNDS = 20
SMALL = ["om-pure==2.0"]
BIG = ["om-pure==2.0", "om-native", "setuptools", "wheel", "packaging"]  # setuptools: ~1 MB, throttled


def slow_files(upstream: Upstream) -> None:
    for f in upstream.index.files():
        upstream.inject(f.filename, throttle(16384, 0.008))


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs += [v for k, v in attrs if k == "href" and v]


def index_problems(wheelhouse: Path) -> list[str]:
    """Every link of every project page (JSON and HTML) must name a present file with the hash the page gives."""
    problems = []
    simple = wheelhouse / "simple"
    for page in sorted(simple.glob("*/index.json")):
        for item in json.loads(page.read_text())["files"]:
            problems += _link_problem(page, item["url"], item["hashes"]["sha256"])
            if isinstance(item["core-metadata"], dict):  # PEP 658: the .metadata file next to the wheel
                problems += _link_problem(page, item["url"] + ".metadata", item["core-metadata"]["sha256"])
    for page in sorted(simple.glob("*/index.html")):
        parser = _Links()
        parser.feed(page.read_text())
        for href in parser.hrefs:
            url, _, fragment = href.partition("#sha256=")
            problems += _link_problem(page, url, fragment)
    return problems


def _link_problem(page: Path, url: str, sha256: str) -> list[str]:
    path = (page.parent / url).resolve()
    if not path.is_file():
        return [f"{page}: names missing {url}"]
    if sha256_file(path) != sha256:
        return [f"{page}: names {url} whose content does not have sha256 {sha256}"]
    return []


def final_name_problems(workspace: Path, upstream: Upstream | None = None) -> list[str]:
    """Every file under a final name in files/ has the content the lock on disk names — or, for an sdist that
    ``mirror lock`` itself downloaded to read its build system before writing the new lock, the sha256 the
    upstream page gave (what lock verified it against)."""
    files_dir = workspace / "wheelhouse" / "files"
    present = [p for p in files_dir.rglob("*") if p.is_file() and not p.name.startswith(".")]
    try:
        locked = {name: f.sha256 for name, f in load_manifest(workspace / "lockfiles").files.items()}
    except InvalidManifest:
        locked = {}
    published = {f.filename: f.sha256 for f in upstream.index.files()} if upstream is not None else {}
    problems = []
    for path in present:
        if path.name.endswith(".metadata"):  # PEP 658, written by the index: the wheel's own METADATA
            wheel = path.with_name(path.name.removesuffix(".metadata"))
            if not wheel.is_file() or extract_metadata(wheel) != path.read_bytes():
                problems.append(f"{path}: not the METADATA of {wheel.name}")
            continue
        expected = locked.get(path.name) or published.get(path.name)
        if expected is None or sha256_file(path) != expected:
            problems.append(f"{path}: not the locked content")
    return problems


def phase(workspace: Path, old_lock: bytes | None) -> str:
    """Where the sync was when it was killed, read from what it left."""
    lock = workspace / "lockfiles" / MANIFEST
    if not lock.is_file() or lock.read_bytes() == old_lock:
        return "lock"
    manifest = load_manifest(workspace / "lockfiles")
    result = check(manifest, workspace / "wheelhouse" / "files")
    if result.missing:
        return "fetch"
    indexed = {p.parent.name for p in (workspace / "wheelhouse" / "simple").glob("*/index.json")}
    if indexed != {f.project for f in manifest.files.values()} or not (workspace / "wheelhouse" / "index.html").is_file():
        return "index"
    return "done"


def run_sync(workspace: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "mirror", "sync", "--spec", str(workspace / "mirror.toml"), "--jobs", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )


def test_kill_9_at_random_moments(make_workspace: MakeWorkspace, clean_upstream: Upstream, tmp_path: Path) -> None:
    upstream = clean_upstream
    seed = int(os.environ.get("MIRROR_CRASH_SEED", str(time.time_ns() % 1_000_000)))
    rng = random.Random(seed)
    env = isolated_env(tmp_path / "home")
    started = time.monotonic()

    # templates: an empty workspace, and one synced with SMALL whose spec then grew to BIG
    fresh = make_workspace(BIG, upstream=upstream, build_wheels=False, directory=tmp_path / "fresh")
    grown = make_workspace(SMALL, upstream=upstream, build_wheels=False, directory=tmp_path / "grown")
    Workspace.open(grown / "mirror.toml").sync()
    make_workspace(BIG, upstream=upstream, build_wheels=False, directory=grown)
    grown_lock = (grown / "lockfiles" / MANIFEST).read_bytes()

    # one uninterrupted sync, throttled, measures the window
    slow_files(upstream)
    measure = tmp_path / "measure"
    shutil.copytree(fresh, measure)
    t0 = time.monotonic()
    assert run_sync(measure, env).wait(60) == 0
    duration = time.monotonic() - t0

    phases: Counter[str] = Counter()
    for i in range(ROUNDS):
        kind = rng.choice(["fresh", "grown"])
        workspace = tmp_path / f"round-{i}"
        shutil.copytree(fresh if kind == "fresh" else grown, workspace)
        at = rng.uniform(0.0, duration)
        where = f"seed {seed} (MIRROR_CRASH_SEED={seed} replays it), round {i} ({kind}), kill -9 at {at:.3f}s"
        slow_files(upstream)
        process = run_sync(workspace, env)
        time.sleep(at)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait(30)
        phases[phase(workspace, grown_lock if kind == "grown" else None)] += 1

        assert final_name_problems(workspace, upstream) == [], where
        assert index_problems(workspace / "wheelhouse") == [], where

        upstream.faults.clear()  # the re-run at full speed
        try:
            Workspace.open(workspace / "mirror.toml").sync()
        except (MirrorError, OSError) as exc:  # what the command would print as `error: …`
            pytest.fail(f"{where}: the re-run failed: {exc}")
        files_dir = workspace / "wheelhouse" / "files"
        manifest = load_manifest(workspace / "lockfiles")
        outcome = check(manifest, files_dir)
        assert (outcome.missing, outcome.corrupt) == ((), ()), where
        assert stray_partials(files_dir) == [], where
        assert index_problems(workspace / "wheelhouse") == [], where
        indexed = {p.parent.name for p in (workspace / "wheelhouse" / "simple").glob("*/index.json")}
        assert indexed == {f.project for f in manifest.files.values()}, where
        shutil.rmtree(workspace)

    elapsed = time.monotonic() - started
    # figures for docs/reliability.md (shown with pytest -s)
    print(f"\ncrash: seed {seed}, {ROUNDS} kills over a {duration:.2f}s sync, killed during {dict(sorted(phases.items()))}, "
          f"{elapsed:.1f}s in all")
    assert elapsed < 120, f"seed {seed}: the crash test took {elapsed:.0f}s"


@pytest.mark.parametrize("missing", ["lock", "page"])
def test_index_problems_finds_what_it_should(
    make_workspace: MakeWorkspace, clean_upstream: Upstream, missing: str
) -> None:
    """The checker itself: a page naming a missing or altered file is reported."""
    workspace = make_workspace(SMALL, upstream=clean_upstream, build_wheels=False)
    Workspace.open(workspace / "mirror.toml").sync()
    assert index_problems(workspace / "wheelhouse") == []
    wheel = next((workspace / "wheelhouse" / "files" / "om-dep").glob("*.whl"))
    if missing == "lock":
        wheel.unlink()
    else:
        wheel.write_bytes(b"altered")
    assert len(index_problems(workspace / "wheelhouse")) == 2  # the JSON and the HTML page
    metadata = f"{wheel}.metadata: not the METADATA of {wheel.name}"
    assert final_name_problems(workspace) == [metadata] if missing == "lock" else [f"{wheel}: not the locked content"]
