"""Private packages: an internal index next to the public one, find-links folders, credentials, and no
dependency confusion — against two fixture indexes on 127.0.0.1.

The public index also carries ``acme-auth`` and ``acme-core``, at 9.9 (wheels that exit on import, and an sdist whose
build would run its code): the lock, the wheelhouse and the served index must hold the internal
1.0 files alone, and the public index must never even be asked for an ``acme-*`` page or file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from uv import find_uv_bin

from mirror.credentials import Credentials, IndexAuth
from mirror.errors import MirrorError
from mirror.indexes import Index, Routing, RoutingError
from mirror.manifest import Manifest
from mirror.router import Router, serve_router
from mirror.workspace import Workspace
from tests.conftest import MakeUpstream
from tests.fixtures.dists import DEFAULT_RELEASES, BackendSdist, Release, build_release
from tests.fixtures.env import Cli, isolated_env
from tests.fixtures.offline import URL, offline
from tests.fixtures.server import Upstream, free_port
from tests.test_verify import needs_namespace

HOST_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
INTERNAL = (
    Release(name="acme-auth", version="1.0", requires_dist=("acme-core", "om-dep")),
    Release(name="acme-core", version="1.0"),
)
EVIL = b"raise SystemExit('the public acme package was installed')\n"
PUBLIC = (
    Release(name="acme-auth", version="9.9", files={"acme_auth/__init__.py": EVIL}),
    Release(name="acme-core", version="9.9", files={"acme_core/__init__.py": EVIL}, sdist=BackendSdist()),
    *(r for r in DEFAULT_RELEASES if r.name in ("om-dep", "om-backend")),
)
ACME_FILES = ["acme_auth-1.0-py3-none-any.whl", "acme_core-1.0-py3-none-any.whl"]
USER, PASSWORD = "ci-bot", "s3cret-Pa55"


def spec_text(public: Upstream, internal: Upstream | None, sources: str, *, packages: str = '["acme-*"]') -> str:
    index = f'[[index]]\nname = "internal"\nurl = "{internal.url}"\npackages = {packages}\n\n' if internal else ""
    return (
        f'[mirror]\nupstream = "{public.url}"\n\n{index}'
        f'[[target]]\nplatform = "linux/amd64"\npython = "{HOST_PYTHON}"\n\n'
        f"[sources]\n{sources}\n\n[policy]\nbuild-wheels = false\n"
    )


@pytest.fixture
def public(make_upstream: MakeUpstream) -> Upstream:
    return make_upstream(PUBLIC)


@pytest.fixture
def internal(make_upstream: MakeUpstream) -> Upstream:
    return make_upstream(INTERNAL)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def uv_lock(project: Path, public: Upstream) -> None:
    env = isolated_env(project.parent / "uv-home", extra={"UV_NO_CONFIG": "1", "UV_PYTHON_DOWNLOADS": "never"})
    done = subprocess.run(
        [find_uv_bin(), "lock", "--no-cache", "--default-index", public.url, "--python", sys.executable],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def uv_project(
    root: Path, internal: Upstream, dependencies: list[str], pinned: list[str], *, package: bool = False
) -> Path:
    """A uv project whose ``pinned`` dependencies come from the explicit index "internal" (tool.uv.sources); a
    ``package`` builds with om-backend."""
    project = root / "app"
    project.mkdir(parents=True)
    sources = "".join(f'{name} = {{ index = "internal" }}\n' for name in pinned)
    build = '[build-system]\nrequires = ["om-backend"]\nbuild-backend = "om_backend"\n' if package else ""
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "app"\nversion = "0.1.0"\nrequires-python = ">={HOST_PYTHON}"\n'
        f"dependencies = {json.dumps(dependencies)}\n\n{build}[tool.uv]\npackage = {str(package).lower()}\n\n"
        f"[tool.uv.sources]\n{sources}\n"
        f'[[tool.uv.index]]\nname = "internal"\nurl = "{internal.url}"\nexplicit = true\n'
    )
    return project


def source_files(kind: str, root: Path, public: Upstream, internal: Upstream) -> str:
    """The [sources] of a workspace asking for acme-auth, as a requirements file, a project or a uv.lock."""
    if kind == "requirements":
        (root / "requirements.txt").write_text("acme-auth\n")
        return 'requirements = ["requirements.txt"]'
    if kind == "project":
        (root / "app").mkdir()
        (root / "app" / "pyproject.toml").write_text(
            '[project]\nname = "app"\nversion = "0.1.0"\ndependencies = ["acme-auth>=1"]\n\n'
            '[build-system]\nrequires = ["om-backend"]\nbuild-backend = "om_backend"\n'
        )
        return 'projects = ["app"]'
    project = uv_project(root, internal, ["acme-auth", "acme-core"], ["acme-auth", "acme-core"])
    uv_lock(project, public)
    return 'locks = ["app/uv.lock"]'


def assert_internal_only(root: Path, manifest: Manifest, public: Upstream, internal: Upstream) -> None:
    acme = {name: f for name, f in manifest.files.items() if f.project.startswith("acme-")}
    assert sorted(acme) == ACME_FILES
    for file in acme.values():
        assert (file.index, file.version) == ("internal", "1.0")
        assert file.sha256 == sha256(internal.files_dir / file.filename)
        assert file.url is not None and file.url.startswith(internal.base_url)
    assert manifest.files["om_dep-1.0-py3-none-any.whl"].index == "upstream"
    assert manifest.indexes == {"upstream": public.url, "internal": internal.url}
    held = sorted(p.name for p in (root / "wheelhouse" / "files").glob("acme-*/*") if p.suffix == ".whl")
    assert held == ACME_FILES
    for project, filename in [("acme-auth", ACME_FILES[0]), ("acme-core", ACME_FILES[1])]:
        page = json.loads((root / "wheelhouse" / "simple" / project / "index.json").read_text())
        assert [(f["filename"], f["hashes"]["sha256"]) for f in page["files"]] == [
            (filename, sha256(internal.files_dir / filename))
        ]
    lockfile = (root / "lockfiles" / f"linux-amd64-cp{HOST_PYTHON.replace('.', '')}.txt").read_text()
    assert "acme-auth==1.0" in lockfile and "9.9" not in lockfile
    assert [p for p in public.requests.paths() if "acme" in p] == []


@pytest.mark.parametrize("kind", ["requirements", "project", "uv.lock"])
def test_a_public_package_never_stands_in_for_a_private_one(
    kind: str, public: Upstream, internal: Upstream, tmp_path: Path
) -> None:
    (tmp_path / "mirror.toml").write_text(spec_text(public, internal, source_files(kind, tmp_path, public, internal)))
    public.requests.clear()
    result = Workspace.open(tmp_path / "mirror.toml").sync()
    assert_internal_only(tmp_path, result.lock.manifest, public, internal)


def test_a_uv_lock_that_took_a_routed_name_from_the_public_index_is_refused(
    public: Upstream, internal: Upstream, tmp_path: Path
) -> None:
    # uv's explicit index pins direct dependencies only: the transitive acme-core came from the public index
    project = uv_project(tmp_path, internal, ["acme-auth"], ["acme-auth"])
    uv_lock(project, public)
    assert (
        f'name = "acme-core"\nversion = "9.9"\nsource = {{ registry = "{public.url}" }}'
        in (project / "uv.lock").read_text()
    )
    (tmp_path / "mirror.toml").write_text(spec_text(public, internal, 'locks = ["app/uv.lock"]'))
    with pytest.raises(RoutingError) as info:
        Workspace.open(tmp_path / "mirror.toml").lock()
    assert str(info.value) == (
        f"acme-core: claimed by more than one index (upstream by app/uv.lock: acme-core (index {public.url});"
        " internal by [[index]] 'internal' packages 'acme-*'); a name comes from one index only"
    )
    assert not (tmp_path / "lockfiles").exists()


def test_a_uv_lock_registry_the_spec_does_not_declare_is_refused(
    cli: Cli, public: Upstream, internal: Upstream, tmp_path: Path
) -> None:
    project = uv_project(tmp_path, internal, ["acme-auth", "acme-core"], ["acme-auth", "acme-core"])
    uv_lock(project, public)
    (tmp_path / "mirror.toml").write_text(spec_text(public, None, 'locks = ["app/uv.lock"]'))
    result = cli("lock", "--spec", str(tmp_path / "mirror.toml"))
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"error: app/uv.lock: acme-auth: index {internal.url} is not declared in mirror.toml (declared: upstream"
        f' ({public.url})); add [[index]] name = "internal" url = "{internal.url}"\n'
    )
    assert not (tmp_path / "lockfiles").exists()


def test_a_project_index_named_in_tool_uv_sources_routes_the_name(
    public: Upstream, internal: Upstream, tmp_path: Path
) -> None:
    # no packages pattern: the project's own [tool.uv.sources] says where acme-auth comes from; acme-core, reached
    # only through it, is routed by the pattern of the second test below
    uv_project(tmp_path, internal, ["acme-auth"], ["acme-auth"], package=True)
    (tmp_path / "mirror.toml").write_text(spec_text(public, internal, 'projects = ["app"]', packages='["acme-core"]'))
    result = Workspace.open(tmp_path / "mirror.toml").sync()
    assert_internal_only(tmp_path, result.lock.manifest, public, internal)


def test_unrouted_names_come_from_the_default_index_alone(public: Upstream, internal: Upstream, tmp_path: Path) -> None:
    (tmp_path / "mirror.toml").write_text(spec_text(public, internal, 'packages = ["om-dep"]'))
    internal.requests.clear()
    manifest = Workspace.open(tmp_path / "mirror.toml").lock().manifest
    assert [f.index for f in manifest.files.values()] == ["upstream"]
    assert [p for p in internal.requests.paths() if p.startswith("/simple/om")] == []


@pytest.mark.parametrize("down", ["refused", "401"])
def test_a_private_index_that_fails_is_named_and_never_replaced(
    down: str, cli: Cli, public: Upstream, internal: Upstream, tmp_path: Path
) -> None:
    if down == "refused":
        url = f"http://127.0.0.1:{free_port()}/simple"
        spec = spec_text(public, internal, 'packages = ["acme-auth"]').replace(internal.url, url)
        expected = f"error: index 'internal' ({url}): cannot connect: [Errno 111] Connection refused\n"
    else:
        internal.auth = (USER, PASSWORD)
        spec = spec_text(public, internal, 'packages = ["acme-auth"]')
        expected = (
            f"error: index 'internal' ({internal.url}): answered HTTP 401 (no credentials sent: set"
            " MIRROR_INDEX_INTERNAL_USERNAME and MIRROR_INDEX_INTERNAL_PASSWORD, or MIRROR_INDEX_INTERNAL_TOKEN;"
            " or add the host to ~/.netrc)\n"
        )
    (tmp_path / "mirror.toml").write_text(spec)
    public.requests.clear()
    result = cli("sync", "--spec", str(tmp_path / "mirror.toml"), env={"HOME": str(tmp_path)})
    assert (result.exit_code, result.stderr) == (1, expected)
    assert not (tmp_path / "lockfiles").exists() and not (tmp_path / "wheelhouse" / "simple").exists()
    assert [p for p in public.requests.paths() if "acme" in p] == []


def test_credentials_from_the_environment_reach_their_index_only_and_are_written_nowhere(
    cli: Cli, public: Upstream, internal: Upstream, tmp_path: Path
) -> None:
    internal.auth = (USER, PASSWORD)
    (tmp_path / "mirror.toml").write_text(spec_text(public, internal, 'packages = ["acme-auth"]'))
    env = {"HOME": str(tmp_path), "MIRROR_INDEX_INTERNAL_USERNAME": USER, "MIRROR_INDEX_INTERNAL_PASSWORD": "wrong"}
    refused = cli("lock", "--spec", str(tmp_path / "mirror.toml"), env=env)
    assert refused.exit_code == 1
    assert refused.stderr.endswith("answered HTTP 401 (the credentials from MIRROR_INDEX_INTERNAL_* were refused)\n")

    env["MIRROR_INDEX_INTERNAL_PASSWORD"] = PASSWORD
    internal.requests.clear()
    outputs = [cli("-vv", "sync", "--spec", str(tmp_path / "mirror.toml"), env=env)]
    outputs.append(
        cli(
            "bundle",
            "export",
            str(tmp_path / "out" / "b"),
            "--no-tool",
            "--spec",
            str(tmp_path / "mirror.toml"),
            env=env,
        )
    )
    for result in outputs:
        assert result.exit_code == 0, result.stderr
    assert "files by index: internal 2, upstream 1\n" in outputs[0].stdout
    assert_internal_only(tmp_path, Workspace.open(tmp_path / "mirror.toml").manifest(), public, internal)
    # the internal index got every request with the credentials, the public one none of them
    assert {r.authorization for r in internal.requests} == {
        "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    }
    assert {r.authorization for r in public.requests} == {None}
    secrets = [PASSWORD.encode(), base64.b64encode(f"{USER}:{PASSWORD}".encode())]
    written = [p for p in tmp_path.rglob("*") if p.is_file() and "uv-home" not in p.parts]
    assert len(written) > 10
    for path in written:
        data = path.read_bytes()
        assert not [s for s in secrets if s in data], path
    for result in outputs:
        assert PASSWORD not in result.output


def test_find_links_folders_take_part_and_their_projects_come_from_them_alone(public: Upstream, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    for release in (
        *INTERNAL,
        Release(name="acme-tool", version="1.0", wheel_tags=(), sdist=BackendSdist()),
    ):
        build_release(release, dist)
    (tmp_path / "mirror.toml").write_text(
        spec_text(public, None, 'packages = ["acme-auth", "acme-tool"]\nfind-links = ["dist"]')
    )
    public.requests.clear()
    result = Workspace.open(tmp_path / "mirror.toml").sync()
    manifest = result.lock.manifest
    found = {n: f for n, f in manifest.files.items() if f.project.startswith("acme-")}
    assert sorted(found) == [*ACME_FILES, "acme_tool-1.0.tar.gz"]
    for name, file in found.items():
        assert file.index == "find-links"
        assert file.url == (dist / name).as_uri()
        assert sha256(tmp_path / "wheelhouse" / "files" / file.project / name) == sha256(dist / name) == file.sha256
    # acme-tool's sdist builds with om-backend, from the default index
    (entry,) = manifest.targets
    assert [p.pin for p in entry.build()] == ["om-backend==1.0"]
    served = json.loads((tmp_path / "wheelhouse" / "simple" / "acme-tool" / "index.json").read_text())
    assert [f["filename"] for f in served["files"]] == ["acme_tool-1.0.tar.gz"]
    assert [p for p in public.requests.paths() if "acme" in p] == []
    home = (tmp_path / "wheelhouse" / "index.html").read_text()
    assert "find-links" in home


def test_a_find_links_project_claimed_by_an_index_is_refused(
    public: Upstream, internal: Upstream, tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    build_release(INTERNAL[0], dist)
    (tmp_path / "mirror.toml").write_text(
        spec_text(public, internal, 'packages = ["acme-auth"]\nfind-links = ["dist"]')
    )
    with pytest.raises(RoutingError) as info:
        Workspace.open(tmp_path / "mirror.toml").lock()
    assert str(info.value) == (
        f"acme-auth: claimed by more than one index (find-links by find-links {dist / ACME_FILES[0]}; internal by"
        " [[index]] 'internal' packages 'acme-*'); a name comes from one index only"
    )


def test_a_routed_name_its_index_lacks_is_not_looked_for_elsewhere(
    public: Upstream, make_upstream: MakeUpstream, tmp_path: Path
) -> None:
    empty = make_upstream([INTERNAL[1]])  # acme-core only: acme-auth is missing there
    (tmp_path / "mirror.toml").write_text(spec_text(public, empty, 'packages = ["acme-auth"]'))
    public.requests.clear()
    with pytest.raises(MirrorError) as info:  # the resolver's error, explained
        Workspace.open(tmp_path / "mirror.toml").lock()
    assert f"acme-auth comes only from index 'internal' ({empty.url})" in str(info.value)
    assert [p for p in public.requests.paths() if "acme" in p] == []


def test_the_page_for_people_says_which_index_each_project_came_from(
    public: Upstream, internal: Upstream, tmp_path: Path
) -> None:
    (tmp_path / "mirror.toml").write_text(spec_text(public, internal, 'packages = ["acme-auth"]'))
    Workspace.open(tmp_path / "mirror.toml").sync()
    home = (tmp_path / "wheelhouse" / "index.html").read_text()
    assert f"<li><code>internal</code>: {internal.url}</li>" in home
    assert '<a href="projects/acme-auth.html">acme-auth</a></td><td>1.0</td><td>1</td>' in home
    assert "<td>internal</td>" in home and "<td>upstream</td>" in home
    project = (tmp_path / "wheelhouse" / "projects" / "acme-auth.html").read_text()
    assert project.count("<td>internal</td>") == 1  # its one file, from the internal index


@needs_namespace
def test_a_uv_project_with_an_internal_index_syncs_frozen_and_runs_offline(
    cli: Cli, public: Upstream, internal: Upstream, tmp_path: Path
) -> None:
    project = uv_project(tmp_path, internal, ["acme-auth", "acme-core"], ["acme-auth", "acme-core"])
    uv_lock(project, public)
    spec = tmp_path / "mirror.toml"
    spec.write_text(spec_text(public, internal, 'locks = ["app/uv.lock"]'))
    Workspace.open(spec).sync()
    relocation = cli("relocate-uv-lock", str(project / "uv.lock"), "--url", f"{URL}/", "--spec", str(spec))
    assert relocation.exit_code == 0, relocation.stderr
    relocated = (project / "uv.lock").read_text()
    for upstream in (public, internal):  # ([package.metadata] keeps the project's input, index names and all)
        assert f'registry = "{upstream.url}"' not in relocated and f'"{upstream.base_url}/files/' not in relocated
    assert relocated.count(f'source = {{ registry = "{URL}/simple" }}') == 3  # acme-auth, acme-core, om-dep

    uv = find_uv_bin()
    script = (
        f"cd {project}\n"
        f"{uv} sync --frozen --no-cache --python {sys.executable}\n"
        f"{uv} run --frozen --no-cache python -c 'import acme_auth, acme_core, om_dep;"
        " print(acme_auth.VERSION, acme_core.VERSION, om_dep.VERSION)'\n"
    )
    (tmp_path / "home").mkdir()
    done = offline(spec, tmp_path / "home", script, UV_NO_CONFIG="1", UV_PYTHON_DOWNLOADS="never")
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert done.stdout.splitlines()[-1] == "1.0 1.0 1.0"


def test_the_router_serves_each_name_from_its_one_index(public: Upstream, internal: Upstream) -> None:
    internal.auth = (USER, PASSWORD)
    routing = Routing(
        indexes=(Index(name="internal", url=internal.url, packages=("acme-*",)), Index(name="upstream", url=public.url))
    )
    session = requests.Session()
    session.auth = IndexAuth([(routing.index("internal"), Credentials(username=USER, password=PASSWORD, source="t"))])
    client = requests.Session()
    client.trust_env = False  # straight to 127.0.0.1
    with serve_router(Router(routing, session)) as url:
        base = url.removesuffix("/simple")
        page = client.get(f"{url}/acme-auth/").json()
        assert [f["filename"] for f in page["files"]] == ["acme_auth-1.0-py3-none-any.whl"]
        # a file behind credentials is served by the router, which holds them; the resolver never sees them
        assert page["files"][0]["url"] == f"{base}/files/acme-auth/acme_auth-1.0-py3-none-any.whl"
        wheel = client.get(page["files"][0]["url"])
        assert wheel.content == (internal.files_dir / "acme_auth-1.0-py3-none-any.whl").read_bytes()
        # a public file keeps its own URL
        (dep,) = client.get(f"{url}/om-dep/").json()["files"]
        assert dep["url"] == f"{public.base_url}/files/om_dep-1.0-py3-none-any.whl"
        # only what a routed page lists, and only under the run's random prefix
        assert client.get(f"{base}/files/acme-auth/acme_auth-9.9-py3-none-any.whl").status_code == 404
        assert client.get(url.rsplit("/", 2)[0] + "/simple/acme-auth/").status_code == 404
        assert client.get(f"{url}/nothing-here/").status_code == 404
    assert {r.authorization is not None for r in internal.requests} == {True}
    assert {r.authorization for r in public.requests} == {None}
    assert [p for p in public.requests.paths() if "acme" in p] == []
