"""The pages for people: what the mirror holds, each project's files, how to use the mirror, what changed.

``mirror index`` writes them beside the Simple index, as static HTML with inline CSS and JavaScript only (no
external asset), so they work from ``mirror serve``, behind nginx and from ``file://`` alike::

    index.html                 the overview: search box, totals, targets, indexes, projects, what changed
    projects/<project>.html    one project: versions x targets, and every file (size, tags, requires-python,
                               upload time, index, built here, link)
    use.html                   "use this mirror": pip, uv, Poetry, PDM, Pipenv, Docker, Kubernetes

Every renderer here is pure (data in, text out); :mod:`mirror.index` decides which pages to write. The snippets of
``use.html`` are :mod:`mirror.config`'s own renderers for the mirror's URL — ``mirror index --url URL``, or, when
none was given, for a placeholder that the page's script replaces with the address it was loaded from (over http
or https; from ``file://`` the placeholder stays, and the page says so). A URL with credentials is refused: the
pages are for everyone. Everything a page shows is HTML-escaped; the JSON a script reads is embedded with ``<``,
``>`` and ``&`` escaped, so no name can end the ``<script>`` element.

Checked first: ``dumb-pypi`` generates a browsable static site (a package list, a page per package) but is a
whole index generator of its own, fed its own package list and Jinja templates, knowing nothing of targets, of the
index a file came from, of wheels built here or of client configuration; ``simple503`` and ``pypiserver`` write or
serve the Simple API's link lists only. So the pages are rendered here, with :mod:`html` escaping.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from mirror._units import human_size
from mirror.errors import MirrorError
from mirror.layout import HOME_PAGE, PROJECT_PAGES, SIMPLE, USE_PAGE

__all__ = [
    "PLACEHOLDER_URLS",
    "BundleImport",
    "LockChange",
    "Overview",
    "PageError",
    "PageFile",
    "ProjectSummary",
    "check_url",
    "overview_html",
    "project_page_html",
    "use_html",
    "wheel_tags",
]

# With no URL given, use.html is rendered for each of these and its script picks the one matching how the page
# was loaded (pip needs trusted-host for plain http off loopback, and must not get it for https), then replaces
# the placeholder's scheme://host:port/ with the page's own address.
PLACEHOLDER_URLS: dict[str, str] = {
    "http": "http://MIRROR-HOST:3141/simple/",
    "https": "https://MIRROR-HOST:3141/simple/",
    "loopback": "http://127.0.0.1:3141/simple/",
}
SHOWN_CHANGES = 20  # rows of one lock change shown on the overview; the rest is counted

# File name (as mirror.config renders it) -> (heading, how to use it). The texts themselves come from mirror.config.
_SNIPPETS: tuple[tuple[str, str, str], ...] = (
    ("pip.conf", "pip", "Save as /etc/pip.conf, ~/.config/pip/pip.conf or $VIRTUAL_ENV/pip.conf."),
    ("uv.toml", "uv", "Save as /etc/uv/uv.toml or ~/.config/uv/uv.toml (uv ignores pip.conf)."),
    ("poetry.txt", "Poetry", "In the project directory."),
    ("pdm.toml", "PDM", "Save as pdm.toml next to pyproject.toml."),
    ("pipenv.txt", "Pipenv", "In the project directory, with mirror.env (below) beside it."),
    ("mirror.env", "Environment variables", "For docker run --env-file, systemd EnvironmentFile= or sh."),
    ("pydistutils.cfg", "setuptools (legacy setup_requires)", "Save as ~/.pydistutils.cfg."),
    (
        "Dockerfile.snippet",
        "Docker",
        "Paste into the Dockerfile; client-config/ is what `mirror config --url URL -o client-config` writes.",
    ),
    ("k8s-configmap.yaml", "Kubernetes", "kubectl apply -f the first document; merge the second into the pod."),
)

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:0;color:#1d1d1f;background:#fff}"
    "header{background:#24476b;color:#fff;padding:.8em 2em}header a{color:#fff;margin-right:1.2em}"
    "header strong{margin-right:2em;font-size:1.15em}main{padding:1em 2em 3em;max-width:80em}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{padding:.25em .7em;text-align:left;vertical-align:top;"
    "border-bottom:1px solid #e3e3e3}th{background:#f2f4f7}tr:hover td{background:#fafbfd}"
    "code,pre{background:#f2f4f7;border-radius:3px}code{padding:0 .25em}pre{padding:.7em 1em;overflow-x:auto}"
    "input[type=search]{font-size:1.1em;padding:.35em .6em;width:22em;margin:.3em 0}"
    ".muted{color:#666}.tag{display:inline-block;background:#e8eef6;border-radius:3px;padding:0 .35em;"
    "margin:.1em .2em .1em 0;font-size:.9em}.built{background:#e6f4e6}.yanked{background:#fbe3e3}"
    ".totals{font-size:1.1em}.nowrap{white-space:nowrap}[hidden]{display:none!important}"
)


_NOWRAP = '<td class="nowrap">'


class PageError(MirrorError):
    """A page for people cannot be made as asked (its URL)."""


# --- the data the pages show ------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class PageFile:
    """One file as a project page shows it."""

    filename: str
    project: str
    version: str
    kind: str  # "wheel" or "sdist"
    size: int
    sha256: str
    requires_python: str | None = None
    upload_time: str | None = None
    yanked: bool | str = False
    index: str | None = None  # the index it came from; None: upstream with no name, or built here
    built_from: str | None = None  # the sdist a wheel built here came from
    targets: tuple[str, ...] = ()  # the targets whose lock uses it


def wheel_tags(filename: str) -> tuple[str, ...]:
    """A wheel's tags from its filename (``packaging.utils.parse_wheel_filename``), sorted; none for an sdist."""
    if not filename.endswith(".whl"):
        return ()
    try:
        return tuple(sorted(str(tag) for tag in parse_wheel_filename(filename)[3]))
    except InvalidWheelFilename:
        return ()


def _platforms(tags: Sequence[str]) -> str:
    """What a matrix cell shows of a file: its wheel's platform tags (``any`` for a pure wheel), or ``sdist``."""
    return ", ".join(sorted({tag.rpartition("-")[2] for tag in tags})) if tags else "sdist"


@dataclass(frozen=True, kw_only=True, slots=True)
class ProjectSummary:
    """One row of the overview."""

    name: str
    versions: tuple[str, ...]
    files: int
    size: int
    targets: tuple[str, ...]
    sources: tuple[str, ...]  # index names, "built here"


@dataclass(frozen=True, kw_only=True, slots=True)
class LockChange:
    """What one index run found changed in the lock: per project, the versions before and after."""

    at: str  # RFC 3339, UTC
    projects: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]  # (name, before, after), by name

    def to_dict(self) -> dict[str, object]:
        return {"at": self.at, "projects": [[name, list(old), list(new)] for name, old, new in self.projects]}

    @classmethod
    def from_dict(cls, data: object) -> LockChange | None:
        """One entry of the index state, or None if it is not one (the state is a cache: never an error)."""
        if not isinstance(data, dict) or not isinstance(data.get("at"), str):
            return None
        rows = data.get("projects")
        if not isinstance(rows, list):
            return None
        projects = []
        for row in rows:
            if not (isinstance(row, list) and len(row) == 3 and isinstance(row[0], str)):
                return None
            old, new = row[1], row[2]
            if not (isinstance(old, list) and isinstance(new, list)):
                return None
            projects.append((row[0], tuple(str(v) for v in old), tuple(str(v) for v in new)))
        return cls(at=data["at"], projects=tuple(projects))

    @classmethod
    def between(
        cls, before: Mapping[str, Sequence[str]], after: Mapping[str, Sequence[str]], *, at: str
    ) -> LockChange | None:
        """The change from one lock's project versions to another's; None when they are the same."""
        rows = []
        for name in sorted(set(before) | set(after)):
            old, new = before.get(name, ()), after.get(name, ())
            if set(old) != set(new):
                rows.append((name, tuple(sorted(old, key=_version_key)), tuple(sorted(new, key=_version_key))))
        return cls(at=at, projects=tuple(rows)) if rows else None


@dataclass(frozen=True, kw_only=True, slots=True)
class BundleImport:
    """One bundle imported into this mirror (``<wheelhouse>/.bundles.json``)."""

    id: str
    file: str
    created: str | None = None
    imported: str | None = None  # absent in records written before imports were timed
    base: str | None = None  # a delta's base bundle

    @classmethod
    def from_entry(cls, entry: Mapping[str, object]) -> BundleImport:
        def text(key: str) -> str | None:
            value = entry.get(key)
            return value if isinstance(value, str) else None

        return cls(
            id=str(entry.get("id")),
            file=text("file") or "",
            created=text("created"),
            imported=text("imported"),
            base=text("base"),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Overview:
    """Everything ``index.html`` shows."""

    projects: tuple[ProjectSummary, ...]
    targets: tuple[tuple[str, str], ...]  # (name, description)
    indexes: tuple[tuple[str, str], ...]  # (name, URL)
    locked_files: int  # files the lock names
    missing: int  # locked files not indexed: missing or unverified
    changes: tuple[LockChange, ...] = ()  # newest first
    bundles: tuple[BundleImport, ...] = ()  # in import order


# --- shared pieces ----------------------------------------------------------------------------------------------


def _e(text: object) -> str:
    return html.escape(str(text))


def _script_json(value: object) -> str:
    """JSON to embed in a ``<script type="application/json">``: nothing in it can close the element."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _page(title: str, body: Iterable[str], *, up: str = "") -> str:
    """A whole page: ``up`` is the relative path from the page's directory to the wheelhouse root."""
    nav = (
        f'  <header><strong>offline-mirror</strong><a href="{up}{HOME_PAGE}">Projects</a>'
        f'<a href="{up}{USE_PAGE}">Use this mirror</a><a href="{up}{SIMPLE}/{HOME_PAGE}">Simple index</a></header>'
    )
    return (
        "\n".join(
            [
                "<!DOCTYPE html>",
                '<html lang="en">',
                "<head>",
                '  <meta charset="utf-8">',
                '  <meta name="viewport" content="width=device-width, initial-scale=1">',
                f"  <title>{_e(title)}</title>",
                f"  <style>{_STYLE}</style>",
                "</head>",
                "<body>",
                nav,
                "  <main>",
                *body,
                "  </main>",
                "</body>",
                "</html>",
            ]
        )
        + "\n"
    )


def _version_key(text: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(text))
    except InvalidVersion:
        return (0, text)


def _when(moment: str | None) -> str:
    """An RFC 3339 moment for a person: ``2026-12-01 08:30 UTC``; as it is if it is not one."""
    if not moment:
        return "—"
    text = moment.replace("T", " ")
    if text.endswith(("Z", "+00:00")) and len(text) >= 16:
        return text[:16] + " UTC"
    return text


def project_href(name: str) -> str:
    """The link to a project's page, relative to the wheelhouse root."""
    return f"{PROJECT_PAGES}/{quote(name)}.html"


# --- the overview -----------------------------------------------------------------------------------------------

_SEARCH_SCRIPT = """\
(function () {
  var data = JSON.parse(document.getElementById("projects-data").textContent);
  var box = document.getElementById("search");
  var rows = document.querySelectorAll("#projects tbody tr");
  var shown = document.getElementById("shown");
  function norm(text) { return text.toLowerCase().replace(/[-_.]+/g, "-"); }
  function filter() {
    var query = norm(box.value.trim()), count = 0;
    for (var i = 0; i < rows.length; i++) {
      var hit = query === "" || data[i].name.indexOf(query) >= 0 || data[i].versions.indexOf(query) >= 0;
      rows[i].hidden = !hit;
      if (hit) count++;
    }
    shown.textContent = query === "" ? "" : count + " of " + rows.length + " projects match";
  }
  var params = new URLSearchParams(location.search);
  if (params.has("q")) box.value = params.get("q");
  box.addEventListener("input", function () {
    filter();
    var url = new URL(location.href);
    if (box.value) url.searchParams.set("q", box.value); else url.searchParams.delete("q");
    try { history.replaceState(null, "", url.href); } catch (e) { /* file:// may refuse */ }
  });
  document.getElementById("search-box").hidden = false;
  filter();
})();"""


def overview_html(overview: Overview) -> str:
    """``index.html``: totals, a search box over the projects (a plain table without the script), targets,
    indexes, what changed."""
    projects = overview.projects
    total_files = sum(p.files for p in projects)
    total_size = sum(p.size for p in projects)
    body = [
        "    <h1>Python packages on this mirror</h1>",
        f'    <p class="totals"><b>{len(projects)}</b> projects, <b>{total_files}</b> files, '
        f"<b>{human_size(total_size)}</b>, for <b>{len(overview.targets)}</b> targets. "
        f'<a href="{USE_PAGE}">How to use this mirror</a> (pip, uv, Poetry, PDM, Pipenv, Docker, Kubernetes).</p>',
    ]
    if overview.missing:
        body.append(
            f'    <p class="muted">{overview.missing} of {overview.locked_files} locked files are missing or unverified'
            " and not served (run <code>mirror fetch</code>).</p>"
        )
    body += [
        "    <h2>Projects</h2>",
        '    <p id="search-box" hidden><label>Search: <input type="search" id="search" name="q"'
        ' placeholder="project name" autocomplete="off" autofocus></label> <span id="shown" class="muted"></span></p>',
        '    <table id="projects">',
        "      <thead><tr><th>project</th><th>versions</th><th>files</th><th>size</th><th>targets</th>"
        "<th>from</th></tr></thead>",
        "      <tbody>",
    ]
    for p in projects:
        body.append(
            f'        <tr data-name="{_e(p.name)}"><td><a href="{_e(project_href(p.name))}">{_e(p.name)}</a></td>'
            f"<td>{_e(', '.join(p.versions))}</td><td>{p.files}</td>{_NOWRAP}{human_size(p.size)}</td>"
            f"<td>{_e(', '.join(p.targets))}</td><td>{_e(', '.join(p.sources))}</td></tr>"
        )
    data = [{"name": p.name, "versions": list(p.versions)} for p in projects]
    body += [
        "      </tbody>",
        "    </table>",
        f'    <script type="application/json" id="projects-data">{_script_json(data)}</script>',
        f"    <script>\n{_SEARCH_SCRIPT}\n    </script>",
        "    <h2>Targets</h2>",
        "    <ul>",
        *(f"      <li><code>{_e(name)}</code>: {_e(description)}</li>" for name, description in overview.targets),
        "    </ul>",
    ]
    if overview.indexes:
        body += [
            "    <h2>Indexes</h2>",
            "    <p>Where the files were downloaded from (the <i>from</i> column).</p>",
            "    <ul>",
            *(f"      <li><code>{_e(name)}</code>: {_e(url)}</li>" for name, url in overview.indexes),
            "    </ul>",
        ]
    body += _changes(overview.changes, overview.bundles)
    return _page("offline-mirror: packages", body)


def _changes(changes: Sequence[LockChange], bundles: Sequence[BundleImport]) -> list[str]:
    body = ['    <h2 id="changes">What changed</h2>']
    if not changes:
        body.append('    <p class="muted">No change of the lock recorded yet.</p>')
    for number, change in enumerate(changes):
        label = "Last change of the lock" if number == 0 else "Before that"
        body.append(f"    <h3>{label}: {_e(_when(change.at))}</h3>")
        body.append("    <table><thead><tr><th>project</th><th>before</th><th>after</th></tr></thead><tbody>")
        for name, old, new in change.projects[:SHOWN_CHANGES]:
            body.append(
                f"      <tr><td>{_e(name)}</td><td>{_e(', '.join(old)) or '—'}</td>"
                f"<td>{_e(', '.join(new)) or 'removed'}</td></tr>"
            )
        body.append("    </tbody></table>")
        if len(change.projects) > SHOWN_CHANGES:
            body.append(f'    <p class="muted">and {len(change.projects) - SHOWN_CHANGES} more projects</p>')
    body.append("    <h3>Bundles imported</h3>")
    if not bundles:
        body.append('    <p class="muted">None: this mirror was synced here, not imported.</p>')
        return body
    body.append(
        "    <table><thead><tr><th>imported</th><th>bundle</th><th>id</th><th>created</th><th>kind</th></tr></thead>"
        "<tbody>"
    )
    for bundle in reversed(bundles):
        kind = f"delta on {_e(bundle.base)}" if bundle.base else "full"
        body.append(
            f"      <tr><td>{_e(_when(bundle.imported))}</td><td>{_e(bundle.file)}</td><td><code>{_e(bundle.id)}</code>"
            f"</td><td>{_e(_when(bundle.created))}</td><td>{kind}</td></tr>"
        )
    body.append("    </tbody></table>")
    return body


# --- one project ------------------------------------------------------------------------------------------------


def project_page_html(name: str, files: Sequence[PageFile], targets: Sequence[tuple[str, str]]) -> str:
    """``projects/<name>.html``: a versions x targets matrix (every target of the mirror a column) and every file."""
    up = "../"
    versions = sorted({f.version for f in files}, key=_version_key, reverse=True)
    ordered = sorted(files, key=lambda f: (_version_key(f.version), f.filename), reverse=True)
    tags = {f.filename: wheel_tags(f.filename) for f in files}
    of_version: dict[str, list[PageFile]] = {v: [] for v in versions}
    for f in ordered:
        of_version[f.version].append(f)
    body = [
        f"    <h1>{_e(name)}</h1>",
        f"    <p>{_count(len(versions), 'version')}, {_count(len(files), 'file')},"
        f" {human_size(sum(f.size for f in files))}. "
        f"Install with <code>pip install {_e(name)}</code> once your client uses this mirror "
        f'(<a href="{up}{USE_PAGE}">how</a>); Simple API page: '
        f'<a href="{up}{SIMPLE}/{_e(quote(name))}/{HOME_PAGE}">{SIMPLE}/{_e(name)}/</a>.</p>',
        "    <h2>Versions and targets</h2>",
        "    <p>Which files each target installs (a dash: this version is not locked for that target).</p>",
        '    <table id="matrix">',
        "      <thead><tr><th>version</th>"
        + "".join(f'<th title="{_e(description)}">{_e(target)}</th>' for target, description in targets)
        + "</tr></thead>",
        "      <tbody>",
    ]
    for version in versions:
        cells = []
        for target, _ in targets:
            used = [f for f in of_version[version] if target in f.targets]
            if not used:
                cells.append('<td class="muted">—</td>')
                continue
            links = "".join(
                f'<a class="tag{" built" if f.built_from else ""}" href="#{_e(_anchor(f.filename))}"'
                f' title="{_e(f.filename)}">{_e(_platforms(tags[f.filename]))}</a>'
                for f in used
            )
            cells.append(f"<td>{links}</td>")
        body.append(f"        <tr><th>{_e(version)}</th>{''.join(cells)}</tr>")
    body += [
        "      </tbody>",
        "    </table>",
        "    <h2>Files</h2>",
        '    <table id="files">',
        "      <thead><tr><th>file</th><th>size</th><th>tags</th><th>requires-python</th><th>uploaded</th>"
        "<th>from</th><th>targets</th></tr></thead>",
        "      <tbody>",
    ]
    for f in ordered:
        body.append(_file_row(f, tags[f.filename], up))
    body += ["      </tbody>", "    </table>"]
    return _page(f"{name}: offline-mirror", body, up=up)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _anchor(filename: str) -> str:
    return "file-" + filename


def _file_row(f: PageFile, tags: Sequence[str], up: str) -> str:
    uploaded = f'<span title="{_e(_when(f.upload_time))}">{_e(f.upload_time[:10])}</span>' if f.upload_time else ""
    href = f"{up}files/{quote(f.project)}/{quote(f.filename)}"
    yanked = ""
    if f.yanked is not False:
        reason = f": {f.yanked}" if isinstance(f.yanked, str) and f.yanked else ""
        yanked = f' <span class="tag yanked">yanked{_e(reason)}</span>'
    shown_tags = "".join(f'<span class="tag">{_e(tag)}</span>' for tag in tags) or '<span class="tag">sdist</span>'
    if f.built_from is not None:  # auditwheel's tag is the wheel's platform tag: a wheel built here is renamed to it
        source = (
            f'<span class="tag built">built here</span> from {_e(f.built_from)}; auditwheel: '
            f"<code>{_e(_platforms(tags))}</code>"
        )
    else:
        source = _e(f.index or "upstream")
    return (
        f'        <tr id="{_e(_anchor(f.filename))}"><td><a href="{_e(href)}">{_e(f.filename)}</a>{yanked}'
        f'<br><code class="muted" title="sha256">{_e(f.sha256[:16])}…</code></td>{_NOWRAP}{human_size(f.size)}</td>'
        f"<td>{shown_tags}</td><td>{_e(f.requires_python or '')}</td>{_NOWRAP}{uploaded}</td>"
        f"<td>{source}</td><td>{'<br>'.join(_e(t) for t in f.targets) or '—'}</td></tr>"
    )


# --- use this mirror --------------------------------------------------------------------------------------------


def check_url(url: str) -> str:
    """The URL the pages name (``mirror index --url``): a mirror's Simple API root, checked as ``mirror config``
    checks it, and never one holding credentials (the pages are read by everyone)."""
    from mirror.config import ClientConfig  # the client configuration, only when use.html is written

    config = ClientConfig.for_url(url)
    if config.has_credentials:
        raise PageError(
            f"--url: {config.public_url!r} with a user name or password: the pages are for everyone; give the URL"
            " without credentials (clients that need them: mirror config --url)"
        )
    if config.files_root is None:  # the tree's Simple API root is always <root>/simple/
        raise PageError(f"--url: {url!r} is not the tree's Simple API root: give the URL ending in /{SIMPLE}/")
    return url


_USE_SCRIPT = """\
(function () {
  if (location.protocol !== "http:" && location.protocol !== "https:") return;
  var variants = JSON.parse(document.getElementById("snippet-variants").textContent);
  var host = location.hostname;
  var loopback = host === "localhost" || /^127\\./.test(host) || host === "[::1]";
  var kind = location.protocol === "https:" ? "https" : (loopback ? "loopback" : "http");
  var chosen = variants[kind];
  var base = location.origin + location.pathname.replace(/[^\\/]*$/, "");
  function here(text) { return text.split(chosen.prefix).join(base).split(chosen.host).join(location.host); }
  var codes = document.querySelectorAll("[data-snippet]");
  for (var i = 0; i < codes.length; i++) codes[i].textContent = here(chosen.files[codes[i].dataset.snippet]);
  document.getElementById("mirror-url").textContent = here(chosen.url);
  document.getElementById("url-note").textContent = "The address this page was loaded from.";
})();"""


def _rendered(url: str) -> dict[str, str]:
    """What ``mirror config --url URL`` writes (every client), file name -> text."""
    from mirror.config import ClientConfig, render_files

    return render_files(ClientConfig.for_url(url))


def use_html(url: str | None) -> str:
    """``use.html``: the client configuration ``mirror config --url URL`` writes, for this mirror's ``url`` (its
    Simple API root); ``None``: for the address the page is loaded from (by its script), else a placeholder."""
    shown_url = url if url is not None else PLACEHOLDER_URLS["http"]
    files = _rendered(shown_url)
    if url is not None:
        note = "Written by <code>mirror index --url</code>."
    else:
        note = (
            "A placeholder: this page was written without <code>mirror index --url URL</code>, and opened from a"
            " file (or without JavaScript). Replace <code>http://MIRROR-HOST:3141</code> with the mirror's address"
            " (<code>mirror serve</code> prints it)."
        )
    body = [
        "    <h1>Use this mirror</h1>",
        f'    <p>Index URL (the Simple API root): <code id="mirror-url">{_e(shown_url)}</code>'
        f' <span id="url-note" class="muted">{note}</span></p>',
        "    <p>Point every installer and build frontend at this index, and only at it: a second index reopens"
        " dependency confusion and the way back to PyPI. These are the files <code>mirror config --url URL</code>"
        " writes (add <code>--target NAME</code> to pin builds to a target's build lock, and"
        " <code>--cert PATH</code> for a private CA).</p>",
        "    <ul>",
        *(f'      <li><a href="#{_e(name)}">{_e(title)}</a></li>' for name, title, _ in _SNIPPETS if name in files),
        "    </ul>",
    ]
    for name, title, how in _SNIPPETS:
        if name not in files:
            continue
        body += [
            f'    <h2 id="{_e(name)}">{_e(title)}: <code>{_e(name)}</code></h2>',
            f"    <p>{_e(how)}</p>",
            f'    <pre><code data-snippet="{_e(name)}">{_e(files[name])}</code></pre>',
        ]
    if url is None:
        variants = {}
        for kind, placeholder in PLACEHOLDER_URLS.items():
            netloc = placeholder.split("/")[2]
            variants[kind] = {
                "prefix": placeholder.removesuffix(f"{SIMPLE}/"),
                "host": netloc,
                "url": placeholder,
                "files": _rendered(placeholder),
            }
        body += [
            f'    <script type="application/json" id="snippet-variants">{_script_json(variants)}</script>',
            f"    <script>\n{_USE_SCRIPT}\n    </script>",
        ]
    return _page("offline-mirror: use this mirror", body)
