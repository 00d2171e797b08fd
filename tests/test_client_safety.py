"""Client safety: no generated configuration ever reaches PyPI or a second index; credentials are written only when
the user passes them, and every file holding them — written, installed or backed up — is mode 0600.

The per-file tables are in tests/test_clients.py; this adds PyPI in disguise, property tests over mirror URLs,
and the install path (placements and backups).
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mirror.config import (
    ClientConfig,
    ClientConfigError,
    InstallScope,
    install,
    install_plan,
    render_files,
    write_files,
)
from tests.fixtures.env import Cli

FORBIDDEN = ("pypi.org", "pythonhosted", "pypi.python.org", "extra-index-url", "extra_index_url", "extra-index")
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    "url",
    [
        "https://PYPI.ORG./simple/",
        "https://pypi.org./simple/",
        "https://pypi.python.org./simple/",
        "https://files.pythonhosted.org./simple/",
        "https://x.pypi.org/simple/",
        "http://user:pw@pypi.org:80/simple/",
    ],
)
def test_pypi_in_disguise_is_refused(url: str) -> None:
    with pytest.raises(ClientConfigError, match=r" is PyPI itself; give the URL of the mirror$"):
        ClientConfig.for_url(url)


labels = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10)
hosts = st.one_of(
    st.lists(labels, min_size=1, max_size=3).map(".".join).filter(lambda h: "pypi" not in h and "pythonhosted" not in h),
    st.sampled_from(["127.0.0.1", "10.0.0.5", "[fd00::2]", "localhost"]),
)
secrets = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=8, max_size=16)


@PROPERTY
@given(
    scheme=st.sampled_from(["http", "https"]),
    host=hosts,
    port=st.one_of(st.none(), st.integers(1, 65535)),
    path=st.sampled_from(["/simple/", "/simple", "/root/mirror/+simple/", "/"]),
    credentials=st.one_of(st.none(), st.tuples(labels, secrets)),
)
def test_any_mirror_url_gives_files_that_reach_only_it(
    tmp_path_factory: pytest.TempPathFactory,
    scheme: str,
    host: str,
    port: int | None,
    path: str,
    credentials: tuple[str, str] | None,
) -> None:
    auth = f"{credentials[0]}:{credentials[1]}@" if credentials else ""
    url = f"{scheme}://{auth}{host}{f':{port}' if port else ''}{path}"
    config = ClientConfig.for_url(url)
    files = render_files(config)
    out = tmp_path_factory.mktemp("cfg")
    write_files(out, files, config)
    for name, text in files.items():
        lower = text.lower()
        assert not any(word in lower for word in FORBIDDEN), (url, name)
        if credentials is None:
            assert "@" + host not in text, (url, name)
        holds = credentials is not None and credentials[1] in text
        assert mode(out / name) == (0o600 if holds else 0o644), (url, name)


def test_the_cli_writes_credentials_only_when_passed(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials in the environment (pip's, a netrc) never leak into files generated for a plain URL."""
    monkeypatch.setenv("PIP_INDEX_URL", "https://ci:envsecret@mirror.example.com/simple/")
    monkeypatch.setenv("UV_INDEX_URL", "https://ci:envsecret@mirror.example.com/simple/")
    (tmp_path / ".netrc").write_text("machine mirror.example.com login ci password netrcsecret\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "mirror.toml").write_text('[[target]]\nplatform = "linux/amd64"\npython = "3.11"\n')
    out = tmp_path / "out"
    result = cli(
        "config", "--spec", str(tmp_path / "mirror.toml"), "--url", "https://mirror.example.com/simple/", "-o", str(out)
    )
    assert result.exit_code == 0, result.stderr
    written = sorted(p for p in out.iterdir() if p.is_file())
    assert written
    for path in written:
        text = path.read_text()
        assert "envsecret" not in text and "netrcsecret" not in text and "ci:" not in text, path.name
        assert mode(path) == 0o644, path.name


def test_installed_files_and_backups_holding_credentials_are_0600(tmp_path: Path) -> None:
    home, xdg = tmp_path / "home", tmp_path / "xdg"
    secret = ClientConfig.for_url("https://ci:hunter2hunter2@mirror.example.com/simple/")
    placements, _ = install_plan(secret, InstallScope(kind="user"), home=home, xdg_config_home=xdg)
    pip_conf = next(p.path for p in placements if p.path.name == "pip.conf")
    pip_conf.parent.mkdir(parents=True)
    pip_conf.write_text("[global]\nindex-url = https://old:oldsecret@old.example/simple/\n")
    pip_conf.chmod(0o600)
    changes = install(placements)
    for placement in placements:
        assert "hunter2hunter2" in placement.path.read_text(), placement.path
        assert mode(placement.path) == 0o600, placement.path
    (backup,) = [c.backup for c in changes if c.backup is not None]
    assert "oldsecret" in backup.read_text() and mode(backup) == 0o600

    # the same places with a plain URL: 0644, and the credentialed file it replaces is kept 0600 as a backup
    plain = ClientConfig.for_url("https://mirror.example.com/simple/")
    placements, _ = install_plan(plain, InstallScope(kind="user"), home=home, xdg_config_home=xdg)
    changes = install(placements)
    for placement in placements:
        assert "hunter2" not in placement.path.read_text() and mode(placement.path) == 0o644, placement.path
    for change in changes:
        assert change.backup is not None and mode(change.backup) == 0o600, change.path
