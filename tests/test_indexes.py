"""[[index]] in mirror.toml, routing by name, and credentials: pure tests (no server)."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from mirror._process import clean_environment
from mirror.credentials import Credentials, CredentialsError, IndexAuth, find_credentials
from mirror.errors import InvalidSpec
from mirror.indexes import PYPI_SIMPLE, Index, Routing, RoutingError, normalize_pattern, same_url
from mirror.spec import parse_spec

TARGET = '[[target]]\nplatform = "linux/amd64"\npython = "3.11"\n'
INTERNAL = "https://pypi.internal.example/simple"


def spec_of(text: str) -> tuple[Index, ...]:
    return parse_spec(TARGET + text, Path("/w/mirror.toml")).indexes


def test_pypi_is_the_default_index_when_none_is_declared() -> None:
    assert spec_of("") == (Index(name="pypi", url=PYPI_SIMPLE),)
    assert parse_spec(TARGET, Path("/w/mirror.toml")).upstream == PYPI_SIMPLE


def test_upstream_is_the_short_form_of_one_default_index() -> None:
    assert spec_of('[mirror]\nupstream = "https://nexus.example/pypi/simple/"\n') == (
        Index(name="upstream", url="https://nexus.example/pypi/simple"),
    )
    assert spec_of('[mirror]\nupstream = "https://pypi.org/simple/"\n') == (Index(name="pypi", url=PYPI_SIMPLE),)


def test_index_tables_route_normalized_names_and_patterns() -> None:
    indexes = spec_of(
        f'[[index]]\nname = "internal"\nurl = "{INTERNAL}/"\npackages = ["Acme_*", "Billing.Core"]\n'
        '[[index]]\nname = "mirror"\nurl = "https://nexus.example/simple"\n'
    )
    assert indexes == (
        Index(name="internal", url=INTERNAL, packages=("acme-*", "billing-core")),
        Index(name="mirror", url="https://nexus.example/simple"),
    )
    routing = Routing(indexes=indexes)
    assert routing.default.name == "mirror"
    assert [
        routing.source_of(n) for n in ("acme-auth", "ACME.Utils", "billing_core", "billing-core-x", "requests")
    ] == [
        "internal",
        "internal",
        "internal",
        "mirror",
        "mirror",
    ]


def test_pypi_follows_the_routed_indexes_when_every_index_has_packages() -> None:
    indexes = spec_of(f'[[index]]\nname = "internal"\nurl = "{INTERNAL}"\npackages = ["acme-*"]\n')
    assert [i.name for i in indexes] == ["internal", "pypi"]
    assert Routing(indexes=indexes).default.url == PYPI_SIMPLE


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[index]]\nurl = "https://x/simple"\n', "index[0].name: missing"),
        ('[[index]]\nname = "x"\n', "index[0].url: missing"),
        ('[[index]]\nname = "a b"\nurl = "https://x/simple"\n', "index[0].name: 'a b' is not an index name"),
        ('[[index]]\nname = "find-links"\nurl = "https://x/simple"\n', "'find-links' names the [sources] find-links"),
        ('[[index]]\nname = "x"\nurl = "ftp://x/simple"\n', "index[0].url: 'ftp://x/simple' is not an index URL"),
        (
            '[[index]]\nname = "x"\nurl = "https://x/simple"\n[[index]]\nname = "x"\nurl = "https://y/simple"\n',
            "index[1].name: index[0] already has this name",
        ),
        (
            '[mirror]\nupstream = "https://x/simple"\n[[index]]\nname = "y"\nurl = "https://X/simple/"\n',
            "index[0].url: mirror.upstream already has this url",
        ),
        ('[[index]]\nname = "x"\nurl = "https://x/simple"\npackages = ["a/b"]\n', "index[0].packages[0]: 'a/b' is not"),
        (
            '[[index]]\nname = "x"\nurl = "https://x/s"\npackages = ["acme-*"]\n'
            '[[index]]\nname = "y"\nurl = "https://y/s"\npackages = ["ACME_*"]\n',
            "index[1].packages[0]: 'ACME_*' is already routed to index 'x'",
        ),
        (
            '[[index]]\nname = "pypi"\nurl = "https://x/s"\npackages = ["acme-*"]\n',
            "index[0].name: 'pypi' is the default index's name when every index has packages",
        ),
        ('[index]\nname = "x"\n', "index: expected an array of tables ([[index]]), got dict"),
    ],
)
def test_index_errors_name_the_key(text: str, message: str) -> None:
    with pytest.raises(InvalidSpec) as info:
        spec_of(text)
    assert message in str(info.value)


@pytest.mark.parametrize("key", ["[mirror]\nupstream", '[[index]]\nname = "internal"\nurl'])
def test_credentials_in_an_index_url_are_refused_and_never_shown(key: str) -> None:
    with pytest.raises(InvalidSpec) as info:
        spec_of(f'{key} = "https://ci:s3cret@pypi.internal.example/simple"\n')
    message = str(info.value)
    assert "s3cret" not in message and "ci:" not in message
    assert "'https://***@pypi.internal.example/simple' holds credentials, which never belong in mirror.toml" in message
    assert "MIRROR_INDEX_<NAME>_USERNAME and _PASSWORD, or _TOKEN" in message


@pytest.mark.parametrize(
    ("value", "pattern"),
    [("Acme_Auth", "acme-auth"), ("acme-*", "acme-*"), ("*.Plugins", "*-plugins"), ("a b", None), ("", None)],
)
def test_normalize_pattern(value: str, pattern: str | None) -> None:
    assert normalize_pattern(value) == pattern


def test_same_url_ignores_a_trailing_slash_case_and_default_port() -> None:
    assert same_url("https://PyPI.org:443/simple/", PYPI_SIMPLE)
    assert not same_url("https://pypi.org/other", PYPI_SIMPLE)


def routing() -> Routing:
    return Routing(
        indexes=(
            Index(name="internal", url=INTERNAL, packages=("acme-*",)),
            Index(name="pypi", url=PYPI_SIMPLE),
            Index(name="gitlab", url="https://gitlab.example/api/v4/projects/1/packages/pypi/simple"),
        )
    )


def test_routes_from_locks_route_exact_names() -> None:
    routed = routing().with_routes([("Team_Lib", "gitlab", "uv.lock: team-lib")])
    assert routed.source_of("team-lib") == "gitlab"
    assert routed.source_of("acme-auth") == "internal"
    assert routed.declared("https://pypi.org/simple/") is routed.index("pypi")
    assert routed.declared("https://pypi.org/simple") is not None


def test_pypi_in_a_lock_stands_for_the_default_index() -> None:
    nexus = Routing(indexes=(Index(name="nexus", url="https://nexus.example/simple"),))
    assert nexus.declared("https://pypi.org/simple/") == nexus.default
    assert nexus.declared("https://elsewhere.example/simple") is None


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        (
            [("acme-auth", "pypi", "uv.lock: acme-auth")],
            "acme-auth: claimed by more than one index (pypi by uv.lock: acme-auth; internal by [[index]] 'internal'"
            " packages 'acme-*'); a name comes from one index only",
        ),
        (
            [("lib", "gitlab", "a/uv.lock: lib"), ("lib", "pypi", "b/poetry.lock: lib")],
            "lib: b/poetry.lock: lib says index 'pypi', a/uv.lock: lib says 'gitlab'; a name comes from one index only",
        ),
    ],
)
def test_a_name_claimed_twice_is_refused(routes: list[tuple[str, str, str]], message: str) -> None:
    with pytest.raises(RoutingError) as info:
        routing().with_routes(routes)
    assert str(info.value) == message


def test_overlapping_patterns_of_two_indexes_are_refused_by_name() -> None:
    two = Routing(
        indexes=(
            Index(name="a", url="https://a/simple", packages=("acme-*",)),
            Index(name="b", url="https://b/simple", packages=("acme-auth",)),
            Index(name="pypi", url=PYPI_SIMPLE),
        )
    )
    assert two.source_of("acme-core") == "a"
    with pytest.raises(RoutingError, match="acme-auth: claimed by more than one index"):
        two.source_of("acme-auth")


# -- credentials ---------------------------------------------------------------------------------------------

INDEX = Index(name="internal.ci", url=INTERNAL, packages=("acme-*",))


def no_keyring(url: str, username: str | None) -> tuple[str, str] | None:
    return None


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"MIRROR_INDEX_INTERNAL_CI_USERNAME": "ci", "MIRROR_INDEX_INTERNAL_CI_PASSWORD": "pw"},
            Credentials(username="ci", password="pw", source="MIRROR_INDEX_INTERNAL_CI_*"),
        ),
        (
            {"MIRROR_INDEX_INTERNAL_CI_TOKEN": "tok"},
            Credentials(username="__token__", password="tok", source="MIRROR_INDEX_INTERNAL_CI_*"),
        ),
        (
            {"MIRROR_INDEX_INTERNAL_CI_TOKEN": "tok", "MIRROR_INDEX_INTERNAL_CI_USERNAME": "deploy"},
            Credentials(username="deploy", password="tok", source="MIRROR_INDEX_INTERNAL_CI_*"),
        ),
        ({}, None),
    ],
)
def test_credentials_from_the_environment(environ: dict[str, str], expected: Credentials | None) -> None:
    assert find_credentials(INDEX, environ=environ, keyring=no_keyring) == expected


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"MIRROR_INDEX_INTERNAL_CI_USERNAME": "ci"}, "_USERNAME is set but neither"),
        ({"MIRROR_INDEX_INTERNAL_CI_PASSWORD": "pw"}, "_PASSWORD is set but MIRROR_INDEX_INTERNAL_CI_USERNAME is not"),
        ({"MIRROR_INDEX_INTERNAL_CI_PASSWORD": "pw", "MIRROR_INDEX_INTERNAL_CI_TOKEN": "t"}, "not both"),
    ],
)
def test_half_credentials_are_an_error_without_the_secret(environ: dict[str, str], message: str) -> None:
    with pytest.raises(CredentialsError) as info:
        find_credentials(INDEX, environ=environ, keyring=no_keyring)
    assert message in str(info.value)
    assert str(info.value).startswith(f"index 'internal.ci' ({INTERNAL}): ")
    assert "pw" not in str(info.value).replace("_PASSWORD", "")


def test_the_password_is_never_in_a_repr() -> None:
    assert "pw" not in repr(Credentials(username="ci", password="pw", source="x"))


def test_credentials_from_netrc_then_keyring(tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine pypi.internal.example login ci password from-netrc\n")
    netrc.chmod(0o600)
    found = find_credentials(INDEX, environ={"NETRC": str(netrc)}, keyring=no_keyring)
    assert found == Credentials(username="ci", password="from-netrc", source=str(netrc))

    asked: list[tuple[str, str | None]] = []

    def keyring(url: str, username: str | None) -> tuple[str, str] | None:
        asked.append((url, username))
        return ("kr", "from-keyring")

    found = find_credentials(INDEX, environ={"HOME": str(tmp_path)}, keyring=keyring)
    assert found == Credentials(username="kr", password="from-keyring", source="keyring")
    assert asked == [(INTERNAL, None)]
    # PyPI itself is read without credentials: the keyring is not asked for it
    assert find_credentials(Index(name="pypi", url=PYPI_SIMPLE), environ={}, keyring=keyring) is None
    assert len(asked) == 1


def test_a_broken_netrc_is_named(tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine\n")
    with pytest.raises(CredentialsError, match=f"^{netrc}: cannot read it for the credentials of index 'internal.ci'"):
        find_credentials(INDEX, environ={"NETRC": str(netrc)}, keyring=no_keyring)


def prepared(url: str, auth: IndexAuth) -> requests.PreparedRequest:
    return requests.Request("GET", url, auth=auth).prepare()


def test_index_auth_sends_each_index_its_own_credentials_only() -> None:
    a = Index(name="a", url="https://repo.example/api/pypi/a/simple")
    b = Index(name="b", url="https://repo.example/api/pypi/b/simple")
    auth = IndexAuth(
        [
            (a, Credentials(username="ua", password="pa", source="x")),
            (b, Credentials(username="ub", password="pb", source="y")),
        ]
    )
    assert prepared("https://repo.example/api/pypi/b/simple/x/", auth).headers["Authorization"] == "Basic dWI6cGI="
    assert prepared("https://repo.example/api/pypi/a/simple/", auth).headers["Authorization"] == "Basic dWE6cGE="
    # a file on the same host, outside both index paths: that host's first index
    assert "Authorization" in prepared("https://repo.example/files/x.whl", auth).headers
    for other in ("https://pypi.org/simple/x/", "http://repo.example/api/pypi/a/simple/", "https://repo.example:8443/"):
        assert "Authorization" not in prepared(other, auth).headers


def test_subprocesses_never_see_index_credentials() -> None:
    env = clean_environment({"MIRROR_INDEX_INTERNAL_PASSWORD": "pw", "MIRROR_INDEX_X_TOKEN": "t", "HOME": "/h"})
    assert not [key for key in env if key.startswith("MIRROR_INDEX_")]
    assert env["HOME"] == "/h"


def test_the_router_is_never_reached_through_a_proxy() -> None:
    env = clean_environment({"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": ".corp"})
    assert env["NO_PROXY"] == ".corp,127.0.0.1,localhost,::1"
    assert "NO_PROXY" not in clean_environment({"HOME": "/h"})
