"""mirror.compilereport: what each target still builds from source, and what it needs for that."""

from __future__ import annotations

import hashlib
import json

import pytest

from mirror.compilereport import SYSTEM_PACKAGES, compile_report, render_compile_report
from mirror.manifest import InvalidManifest, Manifest


def _file(filename: str, project: str, version: str, kind: str, *, built_from: str | None = None) -> dict[str, object]:
    return {
        "project": project,
        "version": version,
        "kind": kind,
        "url": None if built_from else f"https://files.example/{filename}",
        "sha256": hashlib.sha256(filename.encode()).hexdigest(),
        "size": 100,
        "requires_python": None,
        "upload_time": None,
        "yanked": False,
        **({"built_from": built_from} if built_from else {}),
    }


def _package(name: str, version: str, files: list[str], role: str = "runtime") -> dict[str, object]:
    return {
        "name": name,
        "version": version,
        "role": role,
        "files": files,
        ("via" if role == "runtime" else "needed_by"): ["mirror.toml packages[0]"],
    }


def _build(
    sdist: str, requires: list[str], pins: list[str], backend: str = "setuptools.build_meta"
) -> dict[str, object]:
    return {
        "for": sdist,
        "requires": requires,
        "static": requires,
        "dynamic": [],
        "backend": backend,
        "error": None,
        "pins": pins,
    }


FILES = {
    "cryptography-42.0.5.tar.gz": _file("cryptography-42.0.5.tar.gz", "cryptography", "42.0.5", "sdist"),
    "docopt-0.6.2.tar.gz": _file("docopt-0.6.2.tar.gz", "docopt", "0.6.2", "sdist"),
    "docopt-0.6.2-py3-none-any.whl": _file(
        "docopt-0.6.2-py3-none-any.whl", "docopt", "0.6.2", "wheel", built_from="docopt-0.6.2.tar.gz"
    ),
    "greenlet-3.0.3.tar.gz": _file("greenlet-3.0.3.tar.gz", "greenlet", "3.0.3", "sdist"),
    "greenlet-3.0.3-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl": _file(
        "greenlet-3.0.3-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl", "greenlet", "3.0.3", "wheel"
    ),
    "hatchy-1.0.tar.gz": _file("hatchy-1.0.tar.gz", "hatchy", "1.0", "sdist"),
    "mysqlclient-2.2.4.tar.gz": _file("mysqlclient-2.2.4.tar.gz", "mysqlclient", "2.2.4", "sdist"),
    "nobuildinfo-1.0.tar.gz": _file("nobuildinfo-1.0.tar.gz", "nobuildinfo", "1.0", "sdist"),
    "om_cext-1.0.tar.gz": _file("om_cext-1.0.tar.gz", "om-cext", "1.0", "sdist"),
    "setuptools-69.0.0-py3-none-any.whl": _file("setuptools-69.0.0-py3-none-any.whl", "setuptools", "69.0.0", "wheel"),
}

MYSQLCLIENT_BUILD = _build(
    "mysqlclient-2.2.4.tar.gz", ["setuptools>=61", "pkgconfig"], ["pkgconfig==1.5.5", "setuptools==69.0.0"]
)

MANIFEST: dict[str, object] = {
    "version": 1,
    "created_by": "offline-mirror 0.1.0",
    "upstream": "https://pypi.org/simple",
    "resolver": "uv",
    "targets": {
        "linux-amd64-cp311": {
            "target": {"name": "linux-amd64-cp311", "platform": "linux/amd64", "python": "3.11", "glibc": "2.28"},
            "packages": [
                _package("mysqlclient", "2.2.4", ["mysqlclient-2.2.4.tar.gz"]),
                _package("docopt", "0.6.2", ["docopt-0.6.2.tar.gz"]),  # built here: not in the report
                _package(
                    "greenlet", "3.0.3", ["greenlet-3.0.3-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl"]
                ),
                _package("hatchy", "1.0", ["hatchy-1.0.tar.gz"]),
                _package("nobuildinfo", "1.0", ["nobuildinfo-1.0.tar.gz"]),
                _package("om-cext", "1.0", ["om_cext-1.0.tar.gz"]),
                _package("om-cext", "1.0", ["om_cext-1.0.tar.gz"], role="build"),
                _package("setuptools", "69.0.0", ["setuptools-69.0.0-py3-none-any.whl"], role="build"),
            ],
            "builds": [
                MYSQLCLIENT_BUILD,
                _build("docopt-0.6.2.tar.gz", ["setuptools>=40.8.0"], ["setuptools==69.0.0"]),
                _build("hatchy-1.0.tar.gz", ["hatchling"], ["hatchling==1.21.0"], backend="hatchling.build"),
                _build("om_cext-1.0.tar.gz", ["setuptools", "Cython>=3"], ["cython==3.0.8", "setuptools==69.0.0"]),
            ],
        },
        "linux-amd64-musl-cp311": {
            "target": {"name": "linux-amd64-musl-cp311", "platform": "linux/amd64/musl", "python": "3.11"},
            "packages": [
                _package("docopt", "0.6.2", ["docopt-0.6.2.tar.gz", "docopt-0.6.2-py3-none-any.whl"]),
                _package("greenlet", "3.0.3", ["greenlet-3.0.3.tar.gz"]),
                _package("mysqlclient", "2.2.4", ["mysqlclient-2.2.4.tar.gz"]),
            ],
            "builds": [
                MYSQLCLIENT_BUILD,
                _build("greenlet-3.0.3.tar.gz", ["setuptools>=40.8.0"], ["setuptools==69.0.0"]),
            ],
        },
        "macos-arm64-cp312": {
            "target": {"name": "macos-arm64-cp312", "platform": "macos/arm64", "python": "3.12"},
            "packages": [_package("cryptography", "42.0.5", ["cryptography-42.0.5.tar.gz"])],
            "builds": [
                _build(
                    "cryptography-42.0.5.tar.gz",
                    ["maturin>=1,<2", "cffi>=1.12"],
                    ["cffi==1.16.0", "maturin==1.5.1"],
                    backend="maturin",
                )
            ],
        },
        "windows-amd64-cp312": {
            "target": {"name": "windows-amd64-cp312", "platform": "windows/amd64", "python": "3.12"},
            "packages": [],
            "builds": [],
        },
    },
    "files": FILES,
}

BUILT = {"linux-amd64-cp311": {"docopt-0.6.2.tar.gz"}}


def _entry(name: str, version: str, sdist: str, **fields: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "name": name,
        "version": version,
        "sdist": sdist,
        "roles": ["runtime"],
        "compiles": "unknown",
        "reason": "",
        "build_backend": "setuptools.build_meta",
        "build_requires": [],
        "build_pins": [],
        "build_error": None,
        "package_manager": "apt",
        "system_packages": [],
        "note": "",
        "built_here": None,
    }
    entry.update(fields)
    return entry


MYSQLCLIENT_APT = _entry(
    "mysqlclient",
    "2.2.4",
    "mysqlclient-2.2.4.tar.gz",
    compiles="yes",
    reason="C extension linking the MySQL/MariaDB client library",
    build_requires=["setuptools>=61", "pkgconfig"],
    build_pins=["pkgconfig==1.5.5", "setuptools==69.0.0"],
    system_packages=["default-libmysqlclient-dev", "pkg-config", "build-essential"],
    note=SYSTEM_PACKAGES["mysqlclient"].note,
)


def test_compile_report() -> None:
    report = compile_report(MANIFEST, built=BUILT)
    assert list(report) == ["linux-amd64-cp311", "linux-amd64-musl-cp311", "macos-arm64-cp312", "windows-amd64-cp312"]
    assert report["linux-amd64-cp311"] == [
        _entry(
            "hatchy",
            "1.0",
            "hatchy-1.0.tar.gz",
            reason="no build requirement drives a compiler, but a hatchling.build build hook still could",
            build_backend="hatchling.build",
            build_requires=["hatchling"],
            build_pins=["hatchling==1.21.0"],
        ),
        MYSQLCLIENT_APT,
        _entry(
            "nobuildinfo",
            "1.0",
            "nobuildinfo-1.0.tar.gz",
            reason="the lock has no build information for it",
            build_backend=None,
        ),
        _entry(
            "om-cext",
            "1.0",
            "om_cext-1.0.tar.gz",
            roles=["build", "runtime"],
            compiles="yes",
            reason="build requirement cython (C)",
            build_requires=["setuptools", "Cython>=3"],
            build_pins=["cython==3.0.8", "setuptools==69.0.0"],
            system_packages=["build-essential"],
        ),
    ]
    assert report["linux-amd64-musl-cp311"] == [
        _entry(
            "greenlet",
            "3.0.3",
            "greenlet-3.0.3.tar.gz",
            compiles="yes",
            reason="C++ extension",
            build_requires=["setuptools>=40.8.0"],
            build_pins=["setuptools==69.0.0"],
            package_manager="apk",
            system_packages=["build-base", "python3-dev"],
        ),
        {
            **MYSQLCLIENT_APT,
            "package_manager": "apk",
            "system_packages": ["mariadb-dev", "pkgconf", "build-base"],
        },
    ]
    assert report["macos-arm64-cp312"] == [
        _entry(
            "cryptography",
            "42.0.5",
            "cryptography-42.0.5.tar.gz",
            compiles="yes",
            reason=SYSTEM_PACKAGES["cryptography"].what,
            build_backend="maturin",
            build_requires=["maturin>=1,<2", "cffi>=1.12"],
            build_pins=["cffi==1.16.0", "maturin==1.5.1"],
            package_manager=None,
            note="a C compiler toolchain: the Xcode Command Line Tools (xcode-select --install), and Rust (rustup);"
            " it needs a recent Rust: the distribution's rustc is often too old (rustup is the usual fix)",
        )
    ]
    assert report["windows-amd64-cp312"] == []


def test_the_report_is_json_and_deterministic() -> None:
    report = compile_report(MANIFEST, built=BUILT)
    assert json.loads(json.dumps(report)) == report
    assert compile_report(Manifest.from_dict(MANIFEST), built=BUILT) == report


def test_an_sdist_built_here_is_left_out_and_one_not_built_is_in() -> None:
    assert [e["name"] for e in compile_report(MANIFEST, built={})["linux-amd64-cp311"]] == [
        "docopt",
        "hatchy",
        "mysqlclient",
        "nobuildinfo",
        "om-cext",
    ]
    built_all = {"linux-amd64-cp311": {f for f in FILES if f.endswith(".tar.gz")}}
    assert compile_report(MANIFEST, built=built_all)["linux-amd64-cp311"] == []


def test_render() -> None:
    lines = render_compile_report(compile_report(MANIFEST, built=BUILT))
    assert lines == [
        "linux-amd64-cp311: 4 sdists to build on the target",
        "  hatchy 1.0 (hatchy-1.0.tar.gz): compiles: unknown",
        "    why: no build requirement drives a compiler, but a hatchling.build build hook still could",
        "    build requirements: hatchling (locked: hatchling==1.21.0)",
        "  mysqlclient 2.2.4 (mysqlclient-2.2.4.tar.gz): compiles: yes",
        "    why: C extension linking the MySQL/MariaDB client library",
        "    build requirements: setuptools>=61, pkgconfig (locked: pkgconfig==1.5.5, setuptools==69.0.0)",
        "    system packages (apt): default-libmysqlclient-dev pkg-config build-essential",
        f"    note: {SYSTEM_PACKAGES['mysqlclient'].note}",
        "  nobuildinfo 1.0 (nobuildinfo-1.0.tar.gz): compiles: unknown",
        "    why: the lock has no build information for it",
        "    build requirements: none recorded",
        "  om-cext 1.0 (om_cext-1.0.tar.gz): compiles: yes",
        "    why: build requirement cython (C)",
        "    build requirements: setuptools, Cython>=3 (locked: cython==3.0.8, setuptools==69.0.0)",
        "    system packages (apt): build-essential",
        "  before building: apt-get install --no-install-recommends build-essential default-libmysqlclient-dev pkg-config",
        "linux-amd64-musl-cp311: 2 sdists to build on the target",
        "  greenlet 3.0.3 (greenlet-3.0.3.tar.gz): compiles: yes",
        "    why: C++ extension",
        "    build requirements: setuptools>=40.8.0 (locked: setuptools==69.0.0)",
        "    system packages (apk): build-base python3-dev",
        "  mysqlclient 2.2.4 (mysqlclient-2.2.4.tar.gz): compiles: yes",
        "    why: C extension linking the MySQL/MariaDB client library",
        "    build requirements: setuptools>=61, pkgconfig (locked: pkgconfig==1.5.5, setuptools==69.0.0)",
        "    system packages (apk): mariadb-dev pkgconf build-base",
        f"    note: {SYSTEM_PACKAGES['mysqlclient'].note}",
        "  before building: apk add build-base mariadb-dev pkgconf python3-dev",
        "  (python3-dev only for the distribution's Python: python images ship the headers)",
        "macos-arm64-cp312: 1 sdist to build on the target",
        "  cryptography 42.0.5 (cryptography-42.0.5.tar.gz): compiles: yes",
        f"    why: {SYSTEM_PACKAGES['cryptography'].what}",
        "    build requirements: maturin>=1,<2, cffi>=1.12 (locked: cffi==1.16.0, maturin==1.5.1)",
        "    note: a C compiler toolchain: the Xcode Command Line Tools (xcode-select --install), and Rust (rustup);"
        " it needs a recent Rust: the distribution's rustc is often too old (rustup is the usual fix)",
        "windows-amd64-cp312: nothing to build on the target",
    ]


@pytest.mark.parametrize("name", sorted(SYSTEM_PACKAGES))
def test_every_table_entry_is_complete(name: str) -> None:
    entry = SYSTEM_PACKAGES[name]
    assert entry.apt and entry.apk and entry.what
    assert len(set(entry.apt)) == len(entry.apt) and len(set(entry.apk)) == len(entry.apk)


@pytest.mark.parametrize(
    "name",
    [
        "mysqlclient",
        "psycopg2",
        "uwsgi",
        "lxml",
        "cryptography",
        "cffi",
        "pillow",
        "greenlet",
        "gevent",
        "python-ldap",
        "pyodbc",
        "pycurl",
        "pyyaml",
        "numpy",
        "scipy",
    ],
)
def test_the_table_covers_the_usual_suspects(name: str) -> None:
    assert name in SYSTEM_PACKAGES


def test_a_malformed_manifest_is_named() -> None:
    broken = {**MANIFEST, "targets": {"x": {"target": {"name": "x", "platform": "linux/amd64", "python": "3.11"}}}}
    with pytest.raises(InvalidManifest, match=r"^mirror.lock.json: targets.x.packages: expected an array$"):
        compile_report(broken, built={})
