"""lockfiles/<target>.cdx.json: a CycloneDX 1.6 SBOM per target (purls, every served file's sha256, declared
licenses, the build closure marked build-only), valid under the library's strict validator, carried by bundles."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mirror import sbom
from mirror.bundle import read_bundle
from mirror.bundle.export import ExportOptions
from mirror.sbom import Declared
from mirror.workspace import Workspace
from tests.conftest import MakeUpstream
from tests.fixtures.dists import DEFAULT_RELEASES, BackendSdist, Release
from tests.fixtures.env import write_workspace

TARGET = "linux-amd64-cp311"
RELEASES = (
    *DEFAULT_RELEASES,
    Release(name="om-app", version="1.0", requires_dist=("om-lib",), headers=("License-Expression: MIT",)),
    Release(
        name="om_lib",
        version="2.1",
        headers=("Classifier: License :: OSI Approved :: Apache Software License",),
    ),
    Release(
        name="om-src",
        version="1.0",
        wheel_tags=(),
        sdist=BackendSdist(build_requires=("om-backend", "om-tool")),
        headers=("License: BSD-3-Clause",),
    ),
    Release(name="om-tool", version="3.0", headers=("License-Expression: Apache-2.0 OR MIT",)),
)


def licenses_of(declared: Declared) -> list[dict[str, object]]:
    return [json.loads(json.dumps(_as_json(lic))) for lic in sbom.licenses(declared)]


def _as_json(lic: object) -> dict[str, object]:
    from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression

    if isinstance(lic, LicenseExpression):
        return {"expression": lic.value}
    assert isinstance(lic, DisjunctiveLicense)
    return {"id": lic.id, "name": lic.name, "text": lic.text.content if lic.text else None}


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        (Declared(expression="MIT OR Apache-2.0"), [{"expression": "MIT OR Apache-2.0"}]),
        (Declared(expression="MIT", license="GPL"), [{"expression": "MIT"}]),  # PEP 639 wins
        (Declared(license="BSD-3-Clause"), [{"id": "BSD-3-Clause", "name": None, "text": None}]),
        (Declared(license="Apache 2.0 license"), [{"id": None, "name": "Apache 2.0 license", "text": None}]),
        (  # not an SPDX id: the classifier says it better
            Declared(license="Apache 2.0", classifiers=("License :: OSI Approved :: Apache Software License",)),
            [{"id": "Apache-2.0", "name": None, "text": None}],
        ),
        (
            Declared(classifiers=("License :: OSI Approved :: MIT License", "License :: Free To Use But Restricted")),
            [
                {"id": "MIT", "name": None, "text": None},
                {"id": None, "name": "Free To Use But Restricted", "text": None},
            ],
        ),
        (
            Declared(license="Copyright (c) 2024 Om\n\nPermission is hereby granted..."),
            [
                {
                    "id": None,
                    "name": "Copyright (c) 2024 Om",
                    "text": "Copyright (c) 2024 Om\n\nPermission is hereby granted...",
                }
            ],
        ),
        (
            Declared(
                license="Copyright (c) 2024 Om\n\nPermission...",
                classifiers=("License :: OSI Approved :: ISC License (ISCL)",),
            ),
            [{"id": "ISC", "name": None, "text": None}],  # a license text: the classifier names it better
        ),
        (Declared(), []),
    ],
)
def test_declared_licenses(declared: Declared, expected: list[dict[str, object]]) -> None:
    assert licenses_of(declared) == expected


@pytest.fixture
def synced(make_upstream: MakeUpstream, tmp_path: Path) -> Path:
    """om-app (-> om_lib) from wheels and om-src from its sdist (built on the target: build-wheels off), whose build
    needs om-backend and om-tool, for one linux/amd64 3.11 target; synced."""
    upstream = make_upstream(RELEASES)
    root = write_workspace(
        tmp_path / "online", upstream, ["om-app", "om-src"], targets=[("linux/amd64", "3.11")], build_wheels=False
    )
    outcome = Workspace.open(root / "mirror.toml").sync().fetch
    assert outcome.sbom is not None and outcome.sbom.written == (root / "lockfiles" / f"{TARGET}.cdx.json",)
    return root


def test_an_sbom_per_target_validates_and_lists_the_build_closure(synced: Path) -> None:
    text = (synced / "lockfiles" / f"{TARGET}.cdx.json").read_text()
    sbom.validate(text)
    document = json.loads(text)
    assert document["bomFormat"] == "CycloneDX" and document["specVersion"] == "1.6"
    assert document["metadata"]["component"]["name"] == TARGET
    assert [t["name"] for t in document["metadata"]["tools"]["components"]] == ["offline-mirror"]
    components = {c["purl"]: c for c in document["components"]}
    assert sorted(components) == [
        "pkg:pypi/om-app@1.0",
        "pkg:pypi/om-backend@1.0",
        "pkg:pypi/om-lib@2.1",
        "pkg:pypi/om-src@1.0",
        "pkg:pypi/om-tool@3.0",
    ]

    def role(purl: str) -> tuple[str, str]:
        component = components[purl]
        props = {p["name"]: p["value"] for p in component["properties"] if p["name"] == sbom.ROLE_PROPERTY}
        return component["scope"], props[sbom.ROLE_PROPERTY]

    assert role("pkg:pypi/om-app@1.0") == ("required", "runtime")
    assert role("pkg:pypi/om-src@1.0") == ("required", "runtime")
    assert role("pkg:pypi/om-tool@3.0") == ("excluded", "build")
    assert role("pkg:pypi/om-backend@1.0") == ("excluded", "build")
    assert components["pkg:pypi/om-app@1.0"]["licenses"] == [{"expression": "MIT", "acknowledgement": "declared"}]
    assert components["pkg:pypi/om-lib@2.1"]["licenses"] == [
        {"license": {"id": "Apache-2.0", "acknowledgement": "declared"}}
    ]
    assert components["pkg:pypi/om-src@1.0"]["licenses"] == [
        {"license": {"id": "BSD-3-Clause", "acknowledgement": "declared"}}
    ]
    assert components["pkg:pypi/om-backend@1.0"].get("licenses") is None  # it declares none
    # every file served to the target, with its own sha256
    files = synced / "wheelhouse" / "files"
    src = files / "om-src" / "om_src-1.0.tar.gz"
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    assert components["pkg:pypi/om-src@1.0"]["hashes"] == [{"alg": "SHA-256", "content": digest}]
    [reference] = components["pkg:pypi/om-src@1.0"]["externalReferences"]
    assert reference["type"] == "distribution" and reference["url"].endswith("/om_src-1.0.tar.gz")
    assert reference["hashes"] == [{"alg": "SHA-256", "content": digest}]
    # the runtime graph: the target asks for om-app and om-src; om-app needs om_lib
    graph = {d["ref"]: d.get("dependsOn", []) for d in document["dependencies"]}
    assert graph[f"target:{TARGET}"] == ["pkg:pypi/om-app@1.0", "pkg:pypi/om-src@1.0"]
    assert graph["pkg:pypi/om-app@1.0"] == ["pkg:pypi/om-lib@2.1"]


def test_an_sbom_that_would_change_only_its_timestamp_is_kept(synced: Path) -> None:
    path = synced / "lockfiles" / f"{TARGET}.cdx.json"
    before = path.read_text()
    result = Workspace.open(synced / "mirror.toml").sbom()
    assert result.written == () and result.unchanged == (path,)
    assert path.read_text() == before
    assert sbom.same_bom(
        before, before.replace(json.loads(before)["metadata"]["timestamp"], "2020-01-01T00:00:00+00:00")
    )


def test_no_sbom_for_a_target_whose_files_are_missing(synced: Path) -> None:
    (synced / "wheelhouse" / "files" / "om-tool" / "om_tool-3.0-py3-none-any.whl").unlink()
    (synced / "lockfiles" / f"{TARGET}.cdx.json").unlink()
    result = Workspace.open(synced / "mirror.toml").sbom()
    assert result.incomplete == (TARGET,) and result.written == ()
    assert result.render() == [f"no SBOM for {TARGET}: locked files are missing"]


def test_a_bundle_carries_the_sboms_and_verify_summarizes_them(synced: Path, tmp_path: Path) -> None:
    (synced / "lockfiles" / f"{TARGET}.cdx.json").unlink()  # export writes it again from the files here
    out = Workspace.open(synced / "mirror.toml").export_bundle(tmp_path / "b.tar.gz", ExportOptions(tool=False)).path
    result = read_bundle(out)
    assert f"lockfiles/{TARGET}.cdx.json" in {m.path for m in result.manifest.members}
    assert result.render(out).splitlines()[1] == (
        f"  SBOM {TARGET}: 5 components (3 runtime, 2 build-only), 4 with a declared license;"
        " by offline-mirror "
        + json.loads((synced / "lockfiles" / f"{TARGET}.cdx.json").read_text())["metadata"]["tools"]["components"][0][
            "version"
        ]
    )
    offline = tmp_path / "offline"
    Workspace.at(offline).import_bundle(out)
    assert (offline / "lockfiles" / f"{TARGET}.cdx.json").read_bytes() == (
        synced / "lockfiles" / f"{TARGET}.cdx.json"
    ).read_bytes()


def test_a_damaged_sbom_member_is_named(tmp_path: Path) -> None:
    with pytest.raises(sbom.SbomError, match=r"^b.tar.gz: lockfiles/x.cdx.json: not a CycloneDX JSON SBOM"):
        sbom.summarize(b'{"bomFormat": "SPDX"}', "b.tar.gz: lockfiles/x.cdx.json")
