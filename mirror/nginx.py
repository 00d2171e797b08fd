"""mirror nginx-config: an nginx configuration that serves the static tree written by ``mirror index``.

:func:`render_nginx_config` is pure: a wheelhouse path, a listen address and a server name in, the text of a
drop-in for ``/etc/nginx/conf.d/`` out — the ``map`` blocks (which must live at ``http`` level) and one
``server`` block. :func:`write_nginx_config` is the file edge. What the server does, and why:

* ``/simple/`` and ``/simple/<project>/`` choose ``index.json`` (PEP 691,
  ``application/vnd.pypi.simple.v1+json``) or ``index.html`` (PEP 503, ``text/html; charset=utf-8``) from the
  ``Accept`` header, with ``Vary: Accept``; ``?format=<media type>`` overrides ``Accept`` (as on PyPI).
  nginx cannot compare q-values, so the ``map`` approximates PEP 691 negotiation: JSON when a JSON type
  (``v1`` or ``latest``) is listed, unless its q is 0, or it has an explicit q below 1 while an HTML type is
  listed at q 1. Anything else — no header, ``*/*``, a browser — gets HTML; nothing ever gets 406.
* ``/simple/<Name_With.Separators>/`` answers 301 to the name with every run of ``-_.`` turned into ``-``.
  Upper case is not folded: core nginx cannot lowercase (it takes njs or perl), so ``/simple/Foo/`` is 404.
  pip and uv always request normalized names.
* ``/files/<project>/<file>`` serves wheels, sdists and PEP 658 ``.metadata`` with explicit MIME types and
  a year-long ``immutable`` cache lifetime (a file name never changes content: it is locked by sha256);
  index pages are cached for five minutes, so a new ``mirror sync`` shows within that time.
* Only ``/``, ``/index.html``, ``/use.html``, ``/projects/<project>.html`` (the pages for people, normalized names),
  ``/simple/…`` and ``/files/<project>/<file>`` exist; everything else — dotfiles
  (``.state.json``, ``.verified.json``, ``.*.part``, ``.cache/``), ``built-wheels.json``,
  ``compile-report.json``, directory listings — is 404. Methods other than GET and HEAD are 405.

Checked first: there is no maintained generator of nginx configuration for a PEP 503/691 tree to reuse
(``pypiserver`` and ``devpi`` document hand-written proxy configs for their own servers, not a static tree).
"""

from __future__ import annotations

import re
from pathlib import Path

from mirror import __version__, _atomic
from mirror.errors import MirrorError

__all__ = [
    "DEFAULT_LISTEN",
    "DEFAULT_SERVER_NAME",
    "NginxConfigError",
    "render_nginx_config",
    "write_nginx_config",
]

# Loopback, so a config dropped in unchanged exposes nothing; a port of its own, so Debian's default site
# (``listen 80 default_server``) does not take the requests. For an intranet: ``--listen 80`` (or
# ``0.0.0.0:80``) with ``--server-name`` set to the name clients use.
DEFAULT_LISTEN = "127.0.0.1:8080"
DEFAULT_SERVER_NAME = "_"  # matches no real host name: the server answers as the port's only/default server

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
PAGE_CACHE = "public, max-age=300"
FILE_CACHE = "public, max-age=31536000, immutable"

_LISTEN = re.compile(r"(?:(?P<host>\*|\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):)?(?P<port>[0-9]{1,5})")
_SERVER_NAME = re.compile(r"[A-Za-z0-9_.*-]+(?: [A-Za-z0-9_.*-]+)*")
_UNSAFE_IN_PATH = re.compile(r'["\\$\x00-\x1f\x7f]')


class NginxConfigError(MirrorError):
    """The nginx configuration cannot be rendered or written."""


def _check(root: Path, listen: str, server_name: str) -> None:
    if not root.is_absolute():
        raise NginxConfigError(f"root: {str(root)!r} is not an absolute path")
    if _UNSAFE_IN_PATH.search(str(root)):
        raise NginxConfigError(f"root: {str(root)!r} contains a quote, backslash, '$' or control character")
    match = _LISTEN.fullmatch(listen)
    if not match or not 1 <= int(match["port"]) <= 65535:
        raise NginxConfigError(f"listen: {listen!r} is not [HOST:]PORT (e.g. 127.0.0.1:8080, [::1]:8080, 80)")
    if not _SERVER_NAME.fullmatch(server_name):
        raise NginxConfigError(
            f"server_name: {server_name!r} is not a space-separated list of host names (letters, digits, '.-_*')"
        )


# The Accept map: nginx tries regular expressions in order and takes the first match (``~*``: ignoring case).
_JSON_TYPES = r"application/vnd\.pypi\.simple\.(v1|latest)\+json"
_HTML_TYPES = r"(text/html|application/vnd\.pypi\.simple\.(v1|latest)\+html)"
_Q_ZERO = r"[^,]*;\s*q\s*=\s*0(\.0*)?\s*(,|;|$)"  # this media range's parameters include q=0
_Q_BELOW_ONE = r"[^,]*;\s*q\s*=\s*0\."
_Q_ONE = r"\s*(;\s*q\s*=\s*1(\.0*)?\s*)?(,|$)"  # no parameters, or only q=1
_ACCEPT_RULES = (
    (f"~*{_JSON_TYPES}{_Q_ZERO}", "html"),
    (f"~*^(?=.*{_JSON_TYPES}{_Q_BELOW_ONE})(?=(.*,)?\\s*{_HTML_TYPES}{_Q_ONE})", "html"),
    (f"~*{_JSON_TYPES}", "json"),
)
# ?format= is matched raw (nginx does not decode arguments): "/" and "+" may come as %2F and %2B.
_FORMAT_RULES = (
    (r"~*^application(/|%2F)vnd\.pypi\.simple\.(v1|latest)(\+|%2B)json$", "json"),
    (r"~*^application(/|%2F)vnd\.pypi\.simple\.(v1|latest)(\+|%2B)html$", "html"),
    (r"~*^text(/|%2F)html$", "html"),
)

# One run of [-_.] that PEP 503 normalization changes ("_", ".", or "--" and longer), with the name around it.
# Each rewrite replaces one run; eight in a row normalize any reasonable name in one redirect (longer ones
# take a second redirect through the same location).
_NORMALIZE_ONE = r'"^(/simple/[^/]*?)[-_.]*(?:[_.]|--)[-_.]*([^/]*?)/?$"'
_NORMALIZE_REWRITES = 8


def render_nginx_config(root: Path, *, listen: str, server_name: str) -> str:
    """The text of an nginx drop-in (``map`` blocks + one ``server``) serving the wheelhouse at ``root``."""
    _check(root, listen, server_name)
    rewrites = "\n".join(f"        rewrite {_NORMALIZE_ONE} $1-$2;" for _ in range(_NORMALIZE_REWRITES))
    accept_rules = "\n".join(f'    "{pattern}" {variant};' for pattern, variant in _ACCEPT_RULES)
    format_rules = "\n".join(f'    "{pattern}" {variant};' for pattern, variant in _FORMAT_RULES)
    return f"""\
# offline-mirror {__version__}: nginx configuration serving the static package index in
#   {root}
# Written by `mirror nginx-config`; regenerate it rather than edit it.
#
# A complete drop-in for /etc/nginx/conf.d/: the `map` blocks below must be at `http` level, and Debian's
# nginx.conf includes conf.d/*.conf inside `http {{ }}`. Elsewhere, include this file inside `http {{ }}`.
# The maps are identical in every file this command writes, so several such files may be included together.
# The nginx workers (user www-data on Debian) need read access to the wheelhouse and every directory above it.
#
#   /simple/, /simple/<project>/  index.json (PEP 691) or index.html (PEP 503), chosen by Accept or ?format=
#   /files/<project>/<file>       wheels, sdists, PEP 658 .metadata; cached for a year (immutable)
#   /, /index.html, /use.html     the pages for people: the overview, "use this mirror"
#   /projects/<project>.html      a project's page for people
# Everything else (dotfiles, internal JSON files, directory listings) is 404; methods other than GET/HEAD, 405.
# Project names are redirected to their normalized form for -_. runs only: nginx cannot lowercase.

# JSON when a PEP 691 JSON type is listed, unless with q=0, or with q<1 while an HTML type is listed at q=1.
map $http_accept $offline_mirror_accept {{
    default html;
{accept_rules}
}}

# ?format=<media type> overrides Accept; an unknown value is ignored.
map $arg_format $offline_mirror_format {{
    default "";
{format_rules}
}}

map $offline_mirror_format $offline_mirror_variant {{
    "" $offline_mirror_accept;
    default $offline_mirror_format;
}}

server {{
    listen {listen};
    server_name {server_name};
    root "{root}";

    # Only what the tree holds: explicit types, so the result does not depend on the http-level mime.types.
    types {{
        text/html                           html;
        {JSON_TYPE} json;
        application/octet-stream            whl;
        text/plain                          metadata;
        application/gzip                    gz;
        application/zip                     zip;
    }}
    default_type application/octet-stream;
    charset utf-8;

    sendfile on;
    tcp_nopush on;
    autoindex off;
    server_tokens off;
    absolute_redirect off;
    gzip on;
    gzip_types {JSON_TYPE};
    gzip_vary on;

    add_header Allow "GET, HEAD" always;  # for the 405 below (locations with add_header of their own drop it)
    if ($request_method !~ ^(GET|HEAD)$) {{
        return 405;
    }}

    location = / {{
        try_files /index.html =404;
        add_header Cache-Control "{PAGE_CACHE}";
    }}

    location = /index.html {{
        add_header Cache-Control "{PAGE_CACHE}";
    }}

    location = /use.html {{
        add_header Cache-Control "{PAGE_CACHE}";
    }}

    location = /simple {{
        return 301 /simple/$is_args$args;
    }}

    # Regular-expression locations are tried in this order; the first that matches wins.

    # Dotfiles anywhere: .state.json, .verified.json, .<file>.part, .cache/
    location ~ "(^|/)\\." {{
        return 404;
    }}

    # A project's page for people (normalized names: lowercase letters, digits, single hyphens).
    location ~ "^/projects/[a-z0-9]+(-[a-z0-9]+)*\\.html$" {{
        try_files $uri =404;
        add_header Cache-Control "{PAGE_CACHE}";
    }}

    # The pages themselves, by name (no negotiation).
    location ~ "^/simple/([^/]+/)?index\\.(json|html)$" {{
        try_files $uri =404;
        add_header Cache-Control "{PAGE_CACHE}";
    }}

    # PEP 503 normalization of separators: /simple/Zope_Interface.x/ -> 301 /simple/Zope-Interface-x/
    location ~ "^/simple/[^/]*([_.]|--)[^/]*/?$" {{
{rewrites}
        return 301 $uri/$is_args$args;
    }}

    # /simple/ and /simple/<project>/: index.json or index.html by Accept (or ?format=).
    location ~ "^/simple/([^/]+/)?$" {{
        try_files ${{uri}}index.$offline_mirror_variant =404;
        add_header Vary Accept;
        add_header Cache-Control "{PAGE_CACHE}";
    }}

    location ~ "^/simple/[^/]+$" {{
        return 301 $uri/$is_args$args;
    }}

    # Wheels, sdists and PEP 658 metadata: locked by sha256, never change under a name.
    location ~ "^/files/[^/]+/[^/]+$" {{
        try_files $uri =404;
        add_header Cache-Control "{FILE_CACHE}";
    }}

    # Nothing else exists: built-wheels.json, compile-report.json, directories.
    location / {{
        return 404;
    }}
}}
"""


def write_nginx_config(path: Path, text: str) -> None:
    """Write a rendered configuration to ``path`` atomically."""
    try:
        _atomic.write_text(path, text)
    except OSError as exc:
        raise NginxConfigError(f"{path}: cannot write the nginx configuration: {exc.strerror or exc}") from None
