"""mirror.toml: parsing into frozen dataclasses and exact, key-naming errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mirror.errors import InvalidSpec
from mirror.spec import (
    PYPI_SIMPLE,
    Policy,
    ProjectSource,
    load_spec,
    parse_spec,
    starter_spec,
    write_starter_spec,
)
from mirror.targets import Target, host_target

FULL = """
[mirror]
upstream = "http://127.0.0.1:8080/simple/"
wheelhouse = "out/wheels"
lockfiles = "locks"

[[target]]
platform = "linux/amd64"
python = "3.11"

[[target]]
platform = "linux/arm64"
python = "3.12"
glibc = "2.31"
name = "arm"

[sources]
requirements = ["requirements.txt"]
projects = [{ path = "app", extras = ["Socks"], groups = ["dev"] }, "lib"]
uv-locks = ["uv.lock"]
packages = ["docopt==0.6.2", "requests[socks]>=2; python_version >= '3.8'"]

[policy]
sdists = "always"
build-wheels = false
"""


def test_full_spec(tmp_path: Path) -> None:
    spec = parse_spec(FULL, tmp_path / "mirror.toml")
    assert spec.root == tmp_path
    assert spec.upstream == "http://127.0.0.1:8080/simple"
    assert spec.wheelhouse == tmp_path / "out" / "wheels"
    assert spec.lockfiles == tmp_path / "locks"
    assert [t.name for t in spec.targets] == ["linux-amd64-cp311", "arm"]
    assert spec.targets[1] == Target.create("linux/arm64", "3.12", glibc="2.31", name="arm")
    assert spec.sources.requirements == (tmp_path / "requirements.txt",)
    assert spec.sources.projects == (
        ProjectSource(path=tmp_path / "app", extras=("socks",), groups=("dev",)),
        ProjectSource(path=tmp_path / "lib"),
    )
    assert spec.sources.uv_locks == (tmp_path / "uv.lock",)
    assert spec.sources.packages == ("docopt==0.6.2", "requests[socks]>=2; python_version >= '3.8'")
    assert spec.policy == Policy(sdists="always", build_wheels=False)


def test_defaults(tmp_path: Path) -> None:
    spec = parse_spec('[[target]]\nplatform = "windows/amd64"\npython = "3.12"\n', tmp_path / "mirror.toml")
    assert spec.upstream == PYPI_SIMPLE
    assert spec.wheelhouse == tmp_path / "wheelhouse"
    assert spec.lockfiles == tmp_path / "lockfiles"
    assert spec.sources.is_empty
    assert spec.policy == Policy(sdists="when-needed", build_wheels=True)


def test_spec_is_frozen(tmp_path: Path) -> None:
    spec = parse_spec(FULL, tmp_path / "mirror.toml")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.wheelhouse = Path("x")  # type: ignore[misc]


def test_to_dict_round_trips(tmp_path: Path) -> None:
    import json

    spec = parse_spec(FULL, tmp_path / "mirror.toml")
    again = dataclasses.replace(spec)
    assert again == spec
    as_dict = spec.to_dict()
    assert as_dict["mirror"] == {"wheelhouse": "out/wheels", "lockfiles": "locks"}
    assert as_dict["index"] == [{"name": "upstream", "url": "http://127.0.0.1:8080/simple", "packages": []}]
    json.dumps(as_dict)  # serialisable for the manifest
    rebuilt = type(spec).from_dict(as_dict, path=spec.path)
    assert rebuilt == spec


TARGET = '[[target]]\nplatform = "linux/amd64"\npython = "3.11"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[mirror\n", "mirror.toml: not valid TOML: "),
        (
            TARGET + "[mirrors]\nupstream = 'x'\n",
            "mirror.toml: mirrors: unknown table; expected one of: mirror, index, target, sources, policy",
        ),
        (
            TARGET + "[mirror]\nupstrem = 'x'\n",
            "mirror.toml: mirror.upstrem: unknown key; expected one of: upstream, wheelhouse, lockfiles",
        ),
        (
            TARGET + "[mirror]\nupstream = 'pypi.org'\n",
            "mirror.toml: mirror.upstream: 'pypi.org' is not an index URL; expected http(s)://host/simple or file:///path",
        ),
        (
            TARGET + "[mirror]\nupstream = 'ftp://x/simple'\n",
            "mirror.toml: mirror.upstream: 'ftp://x/simple' is not an index URL",
        ),
        (TARGET + "[mirror]\nwheelhouse = 3\n", "mirror.toml: mirror.wheelhouse: expected a non-empty string, got 3"),
        ("", "mirror.toml: target: no target; add at least one [[target]] with platform and python"),
        ("target = 'linux'\n", "mirror.toml: target: expected an array of tables ([[target]])"),
        (
            TARGET + '[[target]]\nplatform = "linux/amd65"\npython = "3.11"\n',
            "mirror.toml: target[1].platform: 'linux/amd65' is not a known platform; known: linux/amd64, linux/arm64, linux/amd64/musl",
        ),
        (
            TARGET + TARGET,
            "mirror.toml: target[1].name: 'linux-amd64-cp311' is already the name of target[0]; give one of them a distinct name = \"...\"",
        ),
        (
            TARGET + "[sources]\nrequirements = 'r.txt'\n",
            "mirror.toml: sources.requirements: expected an array of strings, got str 'r.txt'",
        ),
        (
            TARGET + "[sources]\nrequirements = ['']\n",
            "mirror.toml: sources.requirements[0]: expected a non-empty string, got ''",
        ),
        (
            TARGET + "[sources]\npackages = ['ok', 'docopt>=>1']\n",
            "mirror.toml: sources.packages[1]: 'docopt>=>1' is not a valid requirement: ",
        ),
        (
            TARGET + "[sources]\nprojects = [{ path = '.', extra = ['x'] }]\n",
            "mirror.toml: sources.projects[0].extra: unknown key; expected one of: path, extras, groups",
        ),
        (
            TARGET + "[sources]\nprojects = [{ path = '.', groups = ['no good'] }]\n",
            "mirror.toml: sources.projects[0].groups[0]: 'no good' is not a valid name (PEP 508)",
        ),
        (
            TARGET + "[sources]\nprojects = [3]\n",
            'mirror.toml: sources.projects[0]: expected a table such as { path = "." } or a path, got 3',
        ),
        (
            TARGET + "[sources]\nwheels = []\n",
            "mirror.toml: sources.wheels: unknown key; expected one of: requirements, projects, locks, uv-locks, packages",
        ),
        (
            TARGET + "[policy]\nsdists = 'sometimes'\n",
            "mirror.toml: policy.sdists: 'sometimes' is not a policy; expected one of: when-needed, always, never",
        ),
        (
            TARGET + "[policy]\nbuild-wheels = 'yes'\n",
            "mirror.toml: policy.build-wheels: expected true or false, got 'yes'",
        ),
        ("policy = 1\n" + TARGET, "mirror.toml: policy: expected a table ([policy]), got int"),
    ],
)
def test_invalid_spec_names_the_key(text: str, message: str) -> None:
    with pytest.raises(InvalidSpec) as info:
        parse_spec(text, Path("mirror.toml"))
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


def test_load_spec_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec, match=r"mirror.toml: no such file; create one with 'mirror init'$"):
        load_spec(tmp_path / "mirror.toml")


def test_load_spec_checks_source_files(tmp_path: Path) -> None:
    (tmp_path / "mirror.toml").write_text(TARGET + "[sources]\nrequirements = ['ok.txt', 'missing.txt']\n")
    (tmp_path / "ok.txt").write_text("requests\n")
    with pytest.raises(InvalidSpec) as info:
        load_spec(tmp_path / "mirror.toml")
    assert str(info.value) == (
        f"{tmp_path / 'mirror.toml'}: sources.requirements[1]: {str(tmp_path / 'missing.txt')!r} does not exist"
    )


def test_load_spec_resolves_relative_to_the_spec_not_the_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "ws"
    work.mkdir()
    (work / "mirror.toml").write_text(TARGET + "[sources]\nrequirements = ['req.txt']\n")
    (work / "req.txt").write_text("requests\n")
    monkeypatch.chdir(tmp_path)
    spec = load_spec(Path("ws/mirror.toml"))
    assert spec.sources.requirements == (work / "req.txt",)
    assert spec.wheelhouse == work / "wheelhouse"


def test_select_targets(tmp_path: Path) -> None:
    spec = parse_spec(FULL, tmp_path / "mirror.toml")
    assert spec.select([]) == spec.targets
    assert [t.name for t in spec.select(["arm"])] == ["arm"]
    with pytest.raises(InvalidSpec, match=r"target: no target named 'x86'; known: linux-amd64-cp311, arm$"):
        spec.select(["x86"])


def test_starter_spec_parses_back(tmp_path: Path) -> None:
    targets = [host_target(), Target.create("linux/arm64", "3.12"), Target.create("macos/arm64", "3.13")]
    text = starter_spec(
        targets,
        requirements=["requirements.txt"],
        projects=["."],
        uv_locks=["uv.lock"],
        packages=['a; os_name == "nt"'],
    )
    spec = parse_spec(text, tmp_path / "mirror.toml")
    assert spec.targets == tuple(targets)
    assert spec.sources.requirements == (tmp_path / "requirements.txt",)
    assert spec.sources.projects == (ProjectSource(path=tmp_path),)
    assert spec.sources.packages == ('a; os_name == "nt"',)
    assert text.startswith("# offline-mirror workspace")


def test_write_starter_spec_refuses_to_overwrite(tmp_path: Path) -> None:
    text = starter_spec([host_target()])
    path = write_starter_spec(tmp_path, text)
    assert path.read_text() == text
    with pytest.raises(InvalidSpec, match="already exists; pass --force to overwrite it"):
        write_starter_spec(tmp_path, "garbage")
    assert path.read_text() == text
    write_starter_spec(tmp_path, text.replace("3.", "3."), force=True)
    assert [p.name for p in tmp_path.iterdir()] == ["mirror.toml"]  # no temporary file left behind
