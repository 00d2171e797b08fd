"""The upstream Simple API client: PEP 691 JSON and PEP 503 HTML parsing, hostile entries dropped."""

from __future__ import annotations

import json

import pytest
from packaging.version import Version

from mirror.simple import classify, parse_html_page, parse_json_page

SHA = "ab" * 32
PAGE = "https://index.example/simple/demo/"


@pytest.mark.parametrize(
    ("filename", "project", "expected"),
    [
        ("demo-1.0-py3-none-any.whl", None, ("demo", Version("1.0"), "wheel")),
        ("Demo_Pkg-2.0.tar.gz", None, ("demo-pkg", Version("2.0"), "sdist")),
        ("celery-3.1.26-1.tar.gz", "celery", ("celery", Version("3.1.26.post1"), "sdist")),
        ("cffi-1.0.2-2.tar.gz", "cffi", ("cffi", Version("1.0.2.post2"), "sdist")),
        ("demo-1.0.exe", None, None),
        ("../demo-1.0.tar.gz", None, None),
        ("demo-1.0-py3-none-any.whl/x", None, None),
        (".demo-1.0.tar.gz", None, None),
        ("demo\x00-1.0.tar.gz", None, None),
    ],
)
def test_classify(filename: str, project: str | None, expected: object) -> None:
    assert classify(filename, project) == expected


def test_json_page() -> None:
    body = json.dumps({
        "meta": {"api-version": "1.1"},
        "name": "demo",
        "files": [
            {"filename": "demo-1.0-py3-none-any.whl", "url": "../../files/demo-1.0-py3-none-any.whl",
             "hashes": {"sha256": SHA}, "requires-python": ">=3.8", "yanked": "broken", "size": 12,
             "upload-time": "2024-01-01T00:00:00Z", "core-metadata": {"sha256": SHA}},
            {"filename": "other-1.0.tar.gz", "url": "https://x/other-1.0.tar.gz", "hashes": {}},  # another project
            {"filename": "demo-1.1.tar.gz", "url": "javascript:alert(1)", "hashes": {"sha256": SHA}},  # bad URL
            {"filename": "demo-1.2.tar.gz", "url": "https://x/demo-1.2.tar.gz", "hashes": {"sha256": "zz"}},
        ],
    }).encode()
    page = parse_json_page(body, project="demo", url=PAGE)
    (file,) = page.files
    assert file.url == "https://index.example/files/demo-1.0-py3-none-any.whl"
    assert (file.sha256, file.requires_python, file.yanked, file.yanked_reason) == (SHA, ">=3.8", True, "broken")
    assert (file.size, file.upload_time, file.core_metadata_sha256) == (12, "2024-01-01T00:00:00Z", SHA)


def test_html_page() -> None:
    body = (
        "<html><body>"
        f'<a href="/files/demo-1.0.tar.gz#sha256={SHA}" data-requires-python="&gt;=3.9" data-yanked="">'
        "demo-1.0.tar.gz</a>"
        f'<a href="demo-2.0-py3-none-any.whl#sha256={SHA}" data-core-metadata="sha256={SHA}">'
        "demo-2.0-py3-none-any.whl</a>"
        '<a href="https://x/evil-1.0.tar.gz">evil-1.0.tar.gz</a>'
        "</body></html>"
    ).encode()
    page = parse_html_page(body, project="demo", url=PAGE)
    assert [f.filename for f in page.files] == ["demo-1.0.tar.gz", "demo-2.0-py3-none-any.whl"]
    sdist, wheel = page.files
    assert (sdist.url, sdist.requires_python, sdist.yanked, sdist.yanked_reason) == (
        "https://index.example/files/demo-1.0.tar.gz", ">=3.9", True, None)
    assert (wheel.url, wheel.core_metadata_sha256, wheel.yanked) == (f"{PAGE}demo-2.0-py3-none-any.whl", SHA, False)
    assert [f.filename for f in page.for_version(Version("2.0"))] == ["demo-2.0-py3-none-any.whl"]
