"""mirror nginx-config: the rendered drop-in, run by a real nginx over a synced fixture wheelhouse."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import pytest
import uv

from mirror.nginx import DEFAULT_LISTEN, NginxConfigError, render_nginx_config
from mirror.targets import host_target
from tests.fixtures.env import Cli, invoke, isolated_env, pip_command, synced_workspace
from tests.fixtures.server import Upstream, free_port

HOST = host_target()
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(p, os.X_OK)), None)
needs_nginx = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (CI installs it: apt-get install nginx)")

JSON = "application/vnd.pypi.simple.v1+json"
HTML = "text/html; charset=utf-8"
INSTALLED = ["om_dep-1.0.dist-info", "om_native-1.0.dist-info", "om_pure-2.0.dist-info", "om_sdistonly-1.0.dist-info"]


# --- the renderer --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("root", "listen", "server_name", "message"),
    [
        ("wheelhouse", "80", "_", "root: 'wheelhouse' is not an absolute path"),
        ("/srv/$wh", "80", "_", "root: '/srv/$wh' contains a quote, backslash, '$' or control character"),
        ('/srv/"wh', "80", "_", "root: '/srv/\"wh' contains a quote, backslash, '$' or control character"),
        ("/srv/wh", "80; evil", "_", "listen: '80; evil' is not [HOST:]PORT (e.g. 127.0.0.1:8080, [::1]:8080, 80)"),
        ("/srv/wh", "host:0", "_", "listen: 'host:0' is not [HOST:]PORT (e.g. 127.0.0.1:8080, [::1]:8080, 80)"),
        ("/srv/wh", "80", "a;b", "server_name: 'a;b' is not a space-separated list of host names (letters, digits, '.-_*')"),
        ("/srv/wh", "80", "", "server_name: '' is not a space-separated list of host names (letters, digits, '.-_*')"),
    ],
)
def test_render_rejects_what_would_break_the_config(root: str, listen: str, server_name: str, message: str) -> None:
    with pytest.raises(NginxConfigError) as excinfo:
        render_nginx_config(Path(root), listen=listen, server_name=server_name)
    assert str(excinfo.value) == message


@pytest.mark.parametrize("listen", ["80", "127.0.0.1:8080", "[::1]:3141", "*:80", "pypi.internal:443"])
def test_render_accepts_listen_forms(listen: str) -> None:
    text = render_nginx_config(Path("/srv/wh"), listen=listen, server_name="pypi.internal pypi")
    assert f'\n    listen {listen};\n    server_name pypi.internal pypi;\n    root "/srv/wh";\n' in text


def test_render_is_a_conf_d_drop_in_with_maps_and_one_server() -> None:
    text = render_nginx_config(Path("/srv/wh"), listen=DEFAULT_LISTEN, server_name="_")
    assert text.startswith("# offline-mirror ")
    assert "A complete drop-in for /etc/nginx/conf.d/" in text
    assert [line for line in text.splitlines() if line and not line.startswith((" ", "#"))] == [
        "map $http_accept $offline_mirror_accept {",
        "}",
        "map $arg_format $offline_mirror_format {",
        "}",
        "map $offline_mirror_format $offline_mirror_variant {",
        "}",
        "server {",
        "}",
    ]
    assert "listen 127.0.0.1:8080;" in text
    assert text == render_nginx_config(Path("/srv/wh"), listen=DEFAULT_LISTEN, server_name="_")


# --- a synced wheelhouse behind a real nginx -----------------------------------------------------------------


@pytest.fixture(scope="module")
def synced(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synced_workspace(tmp_path_factory.mktemp("nginx-workspace"), upstream, ["om-pure==2.0", "om-native", "om-sdistonly"])



def _nginx_conf(prefix: Path, dropin: Path) -> Path:
    """A minimal complete nginx.conf around the rendered drop-in: everything nginx writes stays in ``prefix``."""
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must read the 0700 pytest tmp dirs
    temp = "".join(f"    {kind}_temp_path {prefix / kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {prefix / 'nginx.pid'};\nerror_log {prefix / 'error.log'};\n"
        "events {}\n"
        f"http {{\n    include /etc/nginx/mime.types;\n    access_log {prefix / 'access.log'};\n{temp}"
        f"    include {dropin};\n}}\n"
    )
    return conf


@dataclass(frozen=True, kw_only=True, slots=True)
class Nginx:
    url: str  # http://127.0.0.1:PORT
    prefix: Path
    conf: Path
    wheelhouse: Path
    lockfile: Path

    def access_log(self) -> str:
        return (self.prefix / "access.log").read_text()


@dataclass(frozen=True, kw_only=True, slots=True)
class Response:
    status: int
    headers: Message
    body: bytes


def get(
    server: Nginx, path: str, *, accept: str | None = None, method: str = "GET", agent: str = "test-nginx"
) -> Response:
    """One request, no redirects followed; every header kept (``Vary`` may come twice)."""
    port = int(server.url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"User-Agent": agent, **({"Accept": accept} if accept is not None else {})}
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        return Response(status=response.status, headers=response.msg, body=response.read())
    finally:
        conn.close()


@pytest.fixture(scope="module")
def nginx(synced: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    if NGINX is None:
        pytest.skip("nginx is not installed (CI installs it: apt-get install nginx)")
    prefix = tmp_path_factory.mktemp("nginx")
    port = free_port()
    dropin = prefix / "offline-mirror.conf"
    result = invoke(
        "nginx-config", "--spec", str(synced / "mirror.toml"), "--listen", f"127.0.0.1:{port}", "-o", str(dropin)
    )
    assert result.exit_code == 0, result.stderr
    conf = _nginx_conf(prefix, dropin)
    process = subprocess.Popen(
        [NGINX, "-e", str(prefix / "error.log"), "-p", str(prefix), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                pytest.fail(f"nginx exited with {process.returncode}: {(prefix / 'error.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"nginx does not answer on 127.0.0.1:{port}")
                time.sleep(0.05)
        yield Nginx(
            url=f"http://127.0.0.1:{port}",
            prefix=prefix,
            conf=conf,
            wheelhouse=synced / "wheelhouse",
            lockfile=synced / "lockfiles" / f"{HOST.name}.txt",
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@needs_nginx
def test_nginx_t_accepts_the_rendered_config_without_warnings(nginx: Nginx) -> None:
    assert NGINX is not None
    done = subprocess.run(
        [NGINX, "-t", "-e", str(nginx.prefix / "error.log"), "-p", str(nginx.prefix), "-c", str(nginx.conf)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        f"nginx: the configuration file {nginx.conf} syntax is ok",
        f"nginx: configuration file {nginx.conf} test is successful",
    ]


@needs_nginx
def test_two_drop_ins_load_together(nginx: Nginx, tmp_path: Path) -> None:
    """The maps are identical in every rendered file, so two wheelhouses can be served by one nginx."""
    assert NGINX is not None
    (tmp_path / "conf.d").mkdir()
    for name, port in (("a.conf", 8081), ("b.conf", 8082)):
        dropin = tmp_path / "conf.d" / name
        dropin.write_text(render_nginx_config(tmp_path / name, listen=f"127.0.0.1:{port}", server_name="_"))
    conf = _nginx_conf(tmp_path, tmp_path / "conf.d" / "*.conf")
    done = subprocess.run(
        [NGINX, "-t", "-e", str(tmp_path / "error.log"), "-p", str(tmp_path), "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert "[warn]" not in done.stderr and "[emerg]" not in done.stderr


@needs_nginx
def test_pip_installs_with_require_hashes_through_nginx(nginx: Nginx, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    done = subprocess.run(
        pip_command(
            "install", f"{nginx.url}/simple/", "--require-hashes", "--target", str(tmp_path / "site"),
            "-r", str(nginx.lockfile),
        ),
        env=isolated_env(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "site").iterdir() if p.name.endswith(".dist-info")) == INSTALLED
    pip_lines = [line for line in nginx.access_log().splitlines() if '"pip/' in line]
    assert any('"GET /simple/om-pure/ HTTP/1.1" 200 ' in line for line in pip_lines)
    assert any('"GET /files/om-pure/om_pure-2.0-py3-none-any.whl HTTP/1.1" 200 ' in line for line in pip_lines)


@needs_nginx
def test_uv_installs_with_require_hashes_through_nginx(nginx: Nginx, tmp_path: Path) -> None:
    env = isolated_env(tmp_path / "home", extra={"UV_NO_CONFIG": "1", "UV_PYTHON_DOWNLOADS": "never"})
    uv_bin = uv.find_uv_bin()
    venv = tmp_path / "venv"
    subprocess.run(
        [uv_bin, "venv", "--no-cache", "--python", sys.executable, str(venv)],
        env=env, check=True, capture_output=True, timeout=60,
    )
    done = subprocess.run(
        [uv_bin, "pip", "install", "--no-cache", "--python", str(venv / "bin" / "python"),
         "--index-url", f"{nginx.url}/simple/", "--require-hashes", "-r", str(nginx.lockfile)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    site = next((venv / "lib").glob("python*/site-packages"))
    assert sorted(p.name for p in site.iterdir() if p.name.startswith("om_") and p.name.endswith(".dist-info")) == INSTALLED
    uv_lines = [line for line in nginx.access_log().splitlines() if '"uv/' in line]
    assert any('"GET /simple/om-native/ HTTP/1.1" 200 ' in line for line in uv_lines)


PIP_ACCEPT = f"{JSON}, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"


@needs_nginx
@pytest.mark.parametrize(
    ("accept", "query", "variant"),
    [
        (None, "", "html"),
        ("*/*", "", "html"),
        ("text/html", "", "html"),
        ("application/vnd.pypi.simple.v1+html", "", "html"),
        (JSON, "", "json"),
        ("application/vnd.pypi.simple.latest+json", "", "json"),
        ("APPLICATION/VND.PYPI.SIMPLE.V1+JSON", "", "json"),
        (PIP_ACCEPT, "", "json"),
        (f"{JSON};q=0.05", "", "json"),
        (f"{JSON};q=0", "", "html"),
        (f"{JSON}; q=0.000, text/html", "", "html"),
        (f"text/html, {JSON};q=0.5", "", "html"),
        (f"{JSON};q=0.5, application/vnd.pypi.simple.v1+html;q=1.0", "", "html"),
        (f"{JSON};q=0.5, text/html;q=0.4", "", "json"),
        # the approximation: an HTML type below q=1 never outranks a listed JSON type
        (f"text/html;q=0.9, {JSON};q=0.01", "", "json"),
        ("text/html", "?format=application/vnd.pypi.simple.v1%2Bjson", "json"),
        ("text/html", "?format=application/vnd.pypi.simple.v1+json", "json"),
        ("text/html", "?format=application/vnd.pypi.simple.latest+json", "json"),
        (JSON, "?format=text/html", "html"),
        (JSON, "?format=application%2Fvnd.pypi.simple.v1%2Bhtml", "html"),
        (JSON, "?format=bogus", "json"),
    ],
)
@pytest.mark.parametrize("page", ["/simple/", "/simple/om-pure/"])
def test_content_negotiation(nginx: Nginx, page: str, accept: str | None, query: str, variant: str) -> None:
    response = get(nginx, page + query, accept=accept)
    assert response.status == 200
    assert response.headers["Content-Type"] == (JSON if variant == "json" else HTML)
    assert "Accept" in response.headers.get_all("Vary", [])
    assert response.headers["Cache-Control"] == "public, max-age=300"
    on_disk = nginx.wheelhouse / page.lstrip("/") / f"index.{variant}"
    assert response.body == on_disk.read_bytes()
    if variant == "json":
        assert json.loads(response.body)["meta"] == {"api-version": "1.1"}


@needs_nginx
@pytest.mark.parametrize(
    ("path", "status", "content_type", "cache"),
    [
        ("/", 200, HTML, "public, max-age=300"),
        ("/index.html", 200, HTML, "public, max-age=300"),
        ("/use.html", 200, HTML, "public, max-age=300"),
        ("/projects/om-pure.html", 200, HTML, "public, max-age=300"),
        ("/projects/om-sdistonly.html", 200, HTML, "public, max-age=300"),
        ("/simple/om-pure/index.json", 200, JSON, "public, max-age=300"),
        ("/simple/om-pure/index.html", 200, HTML, "public, max-age=300"),
        ("/files/om-pure/om_pure-2.0-py3-none-any.whl", 200, "application/octet-stream", "public, max-age=31536000, immutable"),
        ("/files/om-pure/om_pure-2.0-py3-none-any.whl.metadata", 200, "text/plain; charset=utf-8", "public, max-age=31536000, immutable"),
        ("/files/om-sdistonly/om_sdistonly-1.0.tar.gz", 200, "application/gzip", "public, max-age=31536000, immutable"),
    ],
)
def test_files_and_pages(nginx: Nginx, path: str, status: int, content_type: str, cache: str) -> None:
    response = get(nginx, path)
    assert (response.status, response.headers["Content-Type"], response.headers["Cache-Control"]) == (
        status,
        content_type,
        cache,
    )
    on_disk = nginx.wheelhouse / ("index.html" if path == "/" else path.lstrip("/"))
    assert response.body == on_disk.read_bytes()
    head = get(nginx, path, method="HEAD")
    assert (head.status, head.body, head.headers["Content-Length"]) == (200, b"", str(on_disk.stat().st_size))


@needs_nginx
@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/simple", "/simple/"),
        ("/simple/om-pure", "/simple/om-pure/"),
        ("/simple/om_pure/", "/simple/om-pure/"),
        ("/simple/om.pure", "/simple/om-pure/"),
        ("/simple/om_-.pure/?format=text/html", "/simple/om-pure/?format=text/html"),
        ("/simple/a_b.c--d__e/", "/simple/a-b-c-d-e/"),
    ],
)
def test_redirects_to_the_normalized_page(nginx: Nginx, path: str, location: str) -> None:
    response = get(nginx, path)
    assert (response.status, response.headers["Location"]) == (301, location)


@needs_nginx
@pytest.mark.parametrize(
    "path",
    [
        "/simple/.state.json",
        "/files/.verified.json",
        "/built-wheels.json",
        "/compile-report.json",
        "/files/",
        "/files/om-pure/",
        "/files/om-pure",
        "/simple/Om-Pure/",  # nginx cannot lowercase: documented
        "/simple/no-such-project/",
        "/lockfiles/",
        "/.cache/",
        "/.changes.json",
        "/projects/",
        "/projects/om_pure.html",  # only normalized names
        "/projects/om-pure",
        "/projects/no-such-project.html",
    ],
)
def test_internal_and_missing_paths_are_404(nginx: Nginx, path: str) -> None:
    assert get(nginx, path).status == 404


@needs_nginx
def test_internal_files_exist_but_are_hidden(nginx: Nginx) -> None:
    # the 404s above hide real files, not absent ones
    assert (nginx.wheelhouse / "simple" / ".state.json").is_file()
    assert (nginx.wheelhouse / "files" / ".verified.json").is_file()
    assert (nginx.wheelhouse / "compile-report.json").is_file()
    assert (nginx.wheelhouse / ".changes.json").is_file()


@needs_nginx
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
@pytest.mark.parametrize("path", ["/simple/", "/files/om-pure/om_pure-2.0-py3-none-any.whl"])
def test_only_get_and_head(nginx: Nginx, method: str, path: str) -> None:
    response = get(nginx, path, method=method)
    assert (response.status, response.headers["Allow"]) == (405, "GET, HEAD")


@needs_nginx
def test_access_log_records_the_requests(nginx: Nginx) -> None:
    get(nginx, "/simple/om-dep/", accept=JSON, agent="access-log-probe")
    get(nginx, "/simple/.state.json", agent="access-log-probe")
    get(nginx, "/simple/", method="POST", agent="access-log-probe")
    lines = [line for line in nginx.access_log().splitlines() if line.endswith('"access-log-probe"')]
    assert [line.split('"')[1] + line.split('"')[2].split()[0].rjust(4) for line in lines] == [
        "GET /simple/om-dep/ HTTP/1.1 200",
        "GET /simple/.state.json HTTP/1.1 404",
        "POST /simple/ HTTP/1.1 405",
    ]


# --- the command ---------------------------------------------------------------------------------------------


def test_cli_prints_the_config_for_the_spec_wheelhouse(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "mirror.toml").write_text(
        f'[[target]]\nplatform = "{HOST.platform}"\npython = "{HOST.python}"\n[sources]\npackages = ["x"]\n'
    )
    result = cli("nginx-config", "--spec", str(tmp_path / "mirror.toml"))
    assert result.exit_code == 0
    wheelhouse = (tmp_path / "wheelhouse").resolve()
    assert result.stdout == render_nginx_config(wheelhouse, listen="127.0.0.1:8080", server_name="_")
    assert result.stderr == f"warning: {wheelhouse / 'simple' / 'index.html'} does not exist yet (run mirror index)\n"


def test_cli_writes_with_root_and_needs_no_spec(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "wh" / "simple").mkdir(parents=True)
    (tmp_path / "wh" / "simple" / "index.html").write_text("")
    monkeypatch.chdir(tmp_path)
    result = cli("nginx-config", "--root", "wh", "--listen", "80", "--server-name", "pypi.internal", "-o", "n.conf")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "wrote n.conf\n", "")
    expected = render_nginx_config(tmp_path.resolve() / "wh", listen="80", server_name="pypi.internal")
    assert (tmp_path / "n.conf").read_text() == expected


def test_cli_error_is_one_line_and_writes_nothing(cli: Cli, tmp_path: Path) -> None:
    result = cli("nginx-config", "--root", str(tmp_path), "--listen", "80;", "-o", str(tmp_path / "n.conf"))
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == "error: listen: '80;' is not [HOST:]PORT (e.g. 127.0.0.1:8080, [::1]:8080, 80)\n"
    assert not (tmp_path / "n.conf").exists()
