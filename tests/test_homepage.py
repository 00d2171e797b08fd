"""The pages for people (mirror.pages, written by mirror index): escaping, the no-script fallback, incremental
writes, what changed, use.html from mirror.config's renderers, and a real headless Chromium over mirror serve."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mirror.bundle.export import ExportOptions
from mirror.config import ClientConfig, render_files
from mirror.errors import MirrorError
from mirror.index import write_index
from mirror.manifest import Manifest
from mirror.pages import (
    PLACEHOLDER_URLS,
    BundleImport,
    LockChange,
    Overview,
    PageFile,
    ProjectSummary,
    overview_html,
    project_page_html,
    use_html,
)
from mirror.serve import serving
from mirror.targets import host_target
from mirror.workspace import Workspace
from tests.fixtures.env import Cli, synced_workspace
from tests.fixtures.server import Upstream

HOST = host_target()
TARGETS = [(HOST.platform, HOST.python), ("windows/amd64", "3.11"), ("linux/arm64", "3.12")]
PACKAGES = ["om-pure==2.0", "om-native", "om-sdistonly", "om-setupreq"]
CHROMIUM = next((p for name in ("chromium", "chromium-browser") if (p := shutil.which(name))), None)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (CI installs it: apt-get install chromium)"
)
HOSTILE = '<script>alert("x")</script>&'


@pytest.fixture(scope="module")
def synced(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three targets; om-setupreq's build closure brings setuptools, wheel and packaging (names without "om-")."""
    return synced_workspace(tmp_path_factory.mktemp("homepage"), upstream, PACKAGES, targets=TARGETS)


@pytest.fixture
def workspace(synced: Path, tmp_path: Path) -> Workspace:
    """A copy of the synced workspace, for a test that changes it."""
    shutil.copytree(synced, tmp_path / "w", symlinks=True)
    return Workspace.open(tmp_path / "w" / "mirror.toml")


class Rows(HTMLParser):
    """The ``<tr data-name>`` rows of an overview: name -> hidden."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.rows: dict[str, bool] = {}
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "tr" and "data-name" in found:
            self.rows[str(found["data-name"])] = "hidden" in found


def script_json(text: str, element_id: str) -> object:
    match = re.search(f'<script type="application/json" id="{element_id}">(.*?)</script>', text, re.DOTALL)
    assert match is not None
    return json.loads(match.group(1))


# --- escaping and the no-script fallback (pure renderers) -----------------------------------------------------


def test_overview_escapes_names_and_embeds_json_no_name_can_end() -> None:
    summary = ProjectSummary(
        name=HOSTILE, versions=("1.0<b>",), files=1, size=10, targets=("t<x>",), sources=("idx&<i>",)
    )
    text = overview_html(
        Overview(
            projects=(summary,),
            targets=(("t<x>", "linux <b>"),),
            indexes=(("idx&<i>", "http://h/<s>"),),
            locked_files=1,
            missing=0,
            bundles=(BundleImport(id="<id>", file="<f>.tar.gz"),),
            changes=(LockChange(at="2026-12-01T09:00:00Z", projects=((HOSTILE, (), ("1.0<b>",)),)),),
        )
    )
    for raw in ("<script>alert", "1.0<b>", "t<x>", "linux <b>", "idx&<i>", "http://h/<s>", "<id>", "<f>"):
        assert raw not in text
    assert html.escape(HOSTILE) in text and "<td>&lt;f&gt;.tar.gz</td><td><code>&lt;id&gt;</code>" in text
    # the script element holding the data is closed only by its own end tag: the name's </script> is escaped
    assert text.count("</script>") == 2
    assert script_json(text, "projects-data") == [{"name": HOSTILE, "versions": ["1.0<b>"]}]
    assert Rows(text).rows == {HOSTILE: False}


def test_project_page_escapes_every_field_and_links_the_file() -> None:
    file = PageFile(
        filename="a_b-1.0-py3-none-any.whl",
        project="a-b",
        version="1.0",
        kind="wheel",
        size=2048,
        sha256="0" * 64,
        requires_python=">=3.9,<4",
        upload_time="2024-01-01T00:00:00Z",
        yanked="broken <b>",
        index="idx<i>",
        targets=("t<x>",),
    )
    text = project_page_html("a-b", [file], [("t<x>", "desc <b>"), ("other", "o")])
    assert "<b>" not in text and "<i>" not in text and "t<x>" not in text
    assert "&gt;=3.9,&lt;4" in text and "yanked: broken &lt;b&gt;" in text and "idx&lt;i&gt;" in text
    assert '<a href="../files/a-b/a_b-1.0-py3-none-any.whl">a_b-1.0-py3-none-any.whl</a>' in text
    assert '<th title="desc &lt;b&gt;">t&lt;x&gt;</th><th title="o">other</th>' in text
    assert '<span class="tag">py3-none-any</span>' in text and '<span title="2024-01-01 00:00 UTC">2024-01-01</span>' in text
    assert "<script" not in text  # a project page needs none


def test_overview_without_script_is_a_plain_table_of_every_project(synced: Path) -> None:
    text = (synced / "wheelhouse" / "index.html").read_text()
    names = sorted(p.name for p in (synced / "wheelhouse" / "simple").iterdir() if p.is_dir())
    assert {"om-pure", "om-native", "setuptools", "wheel"} <= set(names)
    assert Rows(text).rows == dict.fromkeys(names, False)  # every row visible before any script runs
    assert '<p id="search-box" hidden>' in text  # the search box appears only with the script
    for name in names:
        assert f'<a href="projects/{name}.html">{name}</a>' in text
    for target in Workspace.open(synced / "mirror.toml").manifest().targets:
        assert f"<li><code>{target.name}</code>: {html.escape(target.target.describe())}</li>" in text


def test_use_page_is_what_mirror_config_renders_for_the_url() -> None:
    url = "http://pypi.internal:3141/simple/"
    text = use_html(url)
    files = render_files(ClientConfig.for_url(url))
    for name in ("pip.conf", "uv.toml", "poetry.txt", "pdm.toml", "pipenv.txt", "Dockerfile.snippet",
                 "k8s-configmap.yaml"):  # fmt: skip
        assert f'<code data-snippet="{name}">{html.escape(files[name])}</code>' in text
    assert "trusted-host = pypi.internal:3141" in text
    assert "<script" not in text  # the URL is known: nothing to fill in


def test_use_page_without_url_has_a_placeholder_and_variants_for_the_script() -> None:
    text = use_html(None)
    placeholder = PLACEHOLDER_URLS["http"]
    pip_conf = render_files(ClientConfig.for_url(placeholder))["pip.conf"]
    assert f'<code data-snippet="pip.conf">{html.escape(pip_conf)}</code>' in text
    variants = script_json(text, "snippet-variants")
    assert isinstance(variants, dict) and set(variants) == {"http", "https", "loopback"}
    for kind, url in PLACEHOLDER_URLS.items():
        assert variants[kind]["files"] == render_files(ClientConfig.for_url(url))
    assert "trusted-host" in variants["http"]["files"]["pip.conf"]
    assert "trusted-host" not in variants["https"]["files"]["pip.conf"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://user:token@pypi.internal/simple/", "--url: 'http://pypi.internal/simple/' with a user name or"
         " password: the pages are for everyone; give the URL without credentials (clients that need them: mirror"
         " config --url)"),
        ("ftp://pypi.internal/simple/", "--url: 'ftp://pypi.internal/simple/' is not an http:// or https:// URL"),
        ("http://host/<simple>/", "--url: 'http://host/<simple>/' contains '<'; percent-encode it or choose another"),
        ("http://pypi.internal:3141/", "--url: 'http://pypi.internal:3141/' is not the tree's Simple API root: give"
         " the URL ending in /simple/"),
    ],
)  # fmt: skip
def test_a_bad_url_is_refused_before_anything_is_written(workspace: Workspace, url: str, message: str) -> None:
    wheelhouse = workspace.layout.wheelhouse
    before = {p: p.read_bytes() for p in wheelhouse.rglob("*.html")}
    with pytest.raises(MirrorError) as excinfo:
        workspace.index(url=url)
    assert str(excinfo.value) == message
    assert {p: p.read_bytes() for p in wheelhouse.rglob("*.html")} == before


# --- written with the index -----------------------------------------------------------------------------------


def _stamps(wheelhouse: Path) -> dict[str, tuple[int, int]]:
    pages = [wheelhouse / "index.html", wheelhouse / "use.html", *(wheelhouse / "projects").glob("*.html")]
    return {str(p.relative_to(wheelhouse)): (p.stat().st_ino, p.stat().st_mtime_ns) for p in pages}


def test_pages_are_not_rewritten_when_nothing_changed(workspace: Workspace) -> None:
    wheelhouse = workspace.layout.wheelhouse
    before = _stamps(wheelhouse)
    assert "projects/om-native.html" in before and "projects/setuptools.html" in before
    history = (wheelhouse / ".changes.json").read_bytes()
    workspace.index()
    assert _stamps(wheelhouse) == before
    assert (wheelhouse / ".changes.json").read_bytes() == history
    (wheelhouse / "projects" / "om-dep.html").unlink()  # a page gone: written again, alone
    workspace.index()
    after = _stamps(wheelhouse)
    assert sorted(page for page in before if after[page] != before[page]) == ["projects/om-dep.html"]


def test_only_the_changed_project_page_is_rewritten(workspace: Workspace) -> None:
    wheelhouse = workspace.layout.wheelhouse
    before = _stamps(wheelhouse)
    manifest = workspace.manifest()
    wheel = next(name for name in manifest.files if name.startswith("om_dep-"))
    moved = replace(manifest, files={**manifest.files, wheel: replace(manifest.files[wheel], index="internal")})
    write_index(moved, wheelhouse)
    after = _stamps(wheelhouse)
    changed = sorted(page for page in before if after[page] != before[page])
    assert changed == ["index.html", "projects/om-dep.html"]  # its "from" column, on the overview and its page
    assert "<td>internal</td>" in (wheelhouse / "projects" / "om-dep.html").read_text()


def test_a_change_of_the_lock_is_shown_with_when_it_was_seen(workspace: Workspace) -> None:
    wheelhouse = workspace.layout.wheelhouse
    manifest = workspace.manifest()
    dropped = _without(manifest, "om-winhelper")
    write_index(dropped, wheelhouse, clock=lambda: "2026-12-01T09:00:00Z")
    text = (wheelhouse / "index.html").read_text()
    assert "<h3>Last change of the lock: 2026-12-01 09:00 UTC</h3>" in text
    assert "<tr><td>om-winhelper</td><td>1.0</td><td>removed</td></tr>" in text
    assert "<h3>Before that: " in text  # the first run's change (everything new) is kept below
    assert not (wheelhouse / "projects" / "om-winhelper.html").exists()
    assert not (wheelhouse / "simple" / "om-winhelper").exists()
    write_index(manifest, wheelhouse, clock=lambda: "2026-12-01T10:30:00Z")
    text = (wheelhouse / "index.html").read_text()
    assert "<h3>Last change of the lock: 2026-12-01 10:30 UTC</h3>" in text
    assert "<tr><td>om-winhelper</td><td>—</td><td>1.0</td></tr>" in text
    assert text.index("10:30 UTC") < text.index("09:00 UTC")
    assert (wheelhouse / "projects" / "om-winhelper.html").is_file()


def _without(manifest: Manifest, project: str) -> Manifest:
    """The lock with no version of ``project`` (as a lock that no longer needs it)."""
    targets = tuple(replace(t, packages=tuple(p for p in t.packages if p.name != project)) for t in manifest.targets)
    files = {name: file for name, file in manifest.files.items() if file.project != project}
    return replace(manifest, targets=targets, files=files)


def test_imported_bundles_are_listed_newest_first(workspace: Workspace) -> None:
    record = {
        "bundles": [
            {"id": "b-1", "base": None, "created": "2026-11-01T10:00:00Z", "file": "full.tar.gz",
             "imported": "2026-11-02T08:00:00Z"},
            {"id": "b-2", "base": "b-1", "created": "2026-11-20T10:00:00Z", "file": "delta.tar.gz"},
        ]
    }  # fmt: skip
    workspace.layout.imported_bundles.write_text(json.dumps(record))
    workspace.index()
    text = (workspace.layout.wheelhouse / "index.html").read_text()
    first = "<tr><td>—</td><td>delta.tar.gz</td><td><code>b-2</code></td><td>2026-11-20 10:00 UTC</td><td>delta on b-1</td></tr>"
    second = "<tr><td>2026-11-02 08:00 UTC</td><td>full.tar.gz</td><td><code>b-1</code></td><td>2026-11-01 10:00 UTC</td><td>full</td></tr>"
    assert first in text and second in text and text.index(first) < text.index(second)


def test_a_bundle_import_lists_the_bundle_with_when_it_was_imported(synced: Path, tmp_path: Path) -> None:
    bundle = Workspace.open(synced / "mirror.toml").export_bundle(tmp_path / "week1.tar.gz", ExportOptions(tool=False))
    offline = Workspace.at(tmp_path / "offline")
    result = offline.import_bundle(bundle.path)
    wheelhouse = offline.layout.wheelhouse
    text = (wheelhouse / "index.html").read_text()
    [entry] = json.loads(offline.layout.imported_bundles.read_text())["bundles"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", entry["imported"])
    imported = entry["imported"].replace("T", " ")[:16] + " UTC"
    assert f"<tr><td>{imported}</td><td>week1.tar.gz</td><td><code>{result.manifest.id}</code></td>" in text
    assert sorted(p.name for p in (wheelhouse / "projects").iterdir()) == sorted(
        p.name for p in (synced / "wheelhouse" / "projects").iterdir()
    )


def test_index_url_option_writes_use_html_and_is_kept(cli: Cli, workspace: Workspace) -> None:
    spec = str(workspace.spec.path)
    use = workspace.layout.wheelhouse / "use.html"
    url = "https://pypi.example.internal/simple/"
    result = cli("index", "--spec", spec, "--url", url)
    assert result.exit_code == 0, result.output
    pip_conf = render_files(ClientConfig.for_url(url))["pip.conf"]
    assert f'<code data-snippet="pip.conf">{html.escape(pip_conf)}</code>' in use.read_text()
    stamp = use.stat().st_mtime_ns
    assert cli("index", "--spec", spec).exit_code == 0  # later runs (sync, bundle import) keep the URL
    assert use.stat().st_mtime_ns == stamp
    result = cli("index", "--spec", spec, "--url", "http://me:secret@pypi.internal/simple/")
    assert (result.exit_code, result.stdout) == (1, "")
    assert "secret" not in result.stderr and result.stderr.startswith("error: --url: 'http://pypi.internal/simple/'")
    assert "secret" not in use.read_text()


# --- in a real browser ------------------------------------------------------------------------------------------


def chromium(url: str, tmp_path: Path, *extra: str) -> str:
    """Headless Chromium's DOM of ``url`` after its scripts ran; nothing but 127.0.0.1 resolves or is contacted."""
    assert CHROMIUM is not None
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
        "--disable-background-networking", "--disable-component-update", "--disable-default-apps",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=2000", "--hide-scrollbars", *extra, "--dump-dom", url,
    ]  # fmt: skip
    env = {**os.environ, "HOME": str(tmp_path / "home")}
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@needs_chromium
def test_search_narrows_the_list_in_a_browser(synced: Path, tmp_path: Path) -> None:
    with serving(synced / "wheelhouse") as server:
        dom = chromium(f"{server.url}?q=om-", tmp_path, "--window-size=1200,900", f"--screenshot={tmp_path / 'page.png'}")
        rows = Rows(dom).rows
        assert {"setuptools", "wheel", "packaging"} <= set(rows)
        assert {name for name, hidden in rows.items() if not hidden} == {n for n in rows if n.startswith("om-")}
        assert '<p id="search-box">' in dom  # the script showed the search box
        shown = sum(1 for name in rows if name.startswith("om-"))
        assert f'<span id="shown" class="muted">{shown} of {len(rows)} projects match</span>' in dom
        narrower = Rows(chromium(f"{server.url}index.html?q=om_n", tmp_path)).rows
        assert [name for name, hidden in narrower.items() if not hidden] == ["om-native"]  # om_n normalized
    assert (tmp_path / "page.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_chromium
def test_search_works_from_a_file_url(synced: Path, tmp_path: Path) -> None:
    dom = chromium((synced / "wheelhouse" / "index.html").as_uri() + "?q=Om-D", tmp_path)
    assert [name for name, hidden in Rows(dom).rows.items() if not hidden] == ["om-dep", "om-dynamic"]
    use = chromium((synced / "wheelhouse" / "use.html").as_uri(), tmp_path)
    assert f'<code id="mirror-url">{PLACEHOLDER_URLS["http"]}</code>' in use  # nothing to name: the placeholder


@needs_chromium
def test_project_page_shows_every_target_in_a_browser(synced: Path, tmp_path: Path) -> None:
    manifest = Workspace.open(synced / "mirror.toml").manifest()
    with serving(synced / "wheelhouse") as server:
        shot = f"--screenshot={tmp_path / 'project.png'}"
        dom = chromium(f"{server.url}projects/om-native.html", tmp_path, "--window-size=1200,900", shot)
    assert (tmp_path / "project.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    header = re.search(r'<table id="matrix">\s*<thead><tr>(.*?)</tr>', dom, re.DOTALL)
    assert header is not None
    assert re.findall(r"<th[^>]*>([^<]*)</th>", header.group(1)) == ["version", *(t.name for t in manifest.targets)]
    for name in (n for n in manifest.files if n.startswith("om_native-")):
        if any(name in p.files for t in manifest.targets for p in t.packages):
            assert f'<a href="../files/om-native/{name}">{name}</a>' in dom


@needs_chromium
def test_use_page_names_the_address_it_was_loaded_from_in_a_browser(synced: Path, tmp_path: Path) -> None:
    with serving(synced / "wheelhouse") as server:
        dom = chromium(f"{server.url}use.html", tmp_path)
        index_url = server.index_url.replace("localhost", "127.0.0.1")
    expected = render_files(ClientConfig.for_url(index_url))
    for name in ("pip.conf", "uv.toml", "Dockerfile.snippet", "k8s-configmap.yaml"):  # a DOM's text: no &quot;
        assert f'<code data-snippet="{name}">{html.escape(expected[name], quote=False)}</code>' in dom
    assert f'<code id="mirror-url">{index_url}</code>' in dom
    assert "MIRROR-HOST" not in dom.split('id="snippet-variants"')[0]
