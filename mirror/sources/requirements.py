"""pip requirements files: :func:`parse_requirements` (pure) and :func:`read_requirements`, which follows ``-r`` and
``-c`` includes relative to the including file."""

from __future__ import annotations

import logging
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mirror.sources.inputs import (
    VCS_OR_URL_RE,
    Inputs,
    InvalidSource,
    RootRequirement,
    location_advice,
    not_mirrorable,
    parse_requirement,
    shown,
)

log = logging.getLogger(__name__)

# -- requirements files ---------------------------------------------------------------------------------------
#
# No well-kept library parses pip requirements files as a public API: pip's parser (pip._internal.req.req_file)
# is internal, and pip-requirements-parser is a vendored copy of those internals. This follows pip's rules for
# what it reads: line continuations are joined first, then comments are stripped, then a line is either
# options or a requirement followed by per-requirement options.

_COMMENT_RE = re.compile(r"(^|\s+)#.*$")
_ALIASES = {"-r": "--requirement", "-c": "--constraint", "-e": "--editable", "-i": "--index-url", "-f": "--find-links"}
_INCLUDE_OPTIONS = ("--requirement", "--constraint")
_INDEX_OPTIONS = ("--index-url", "--extra-index-url", "--no-index", "--find-links", "--trusted-host")
_RESOLVER_OPTIONS = ("--pre", "--prefer-binary", "--only-binary", "--no-binary", "--require-hashes", "--use-feature")
_PER_REQUIREMENT_OPTIONS = ("--hash", "--config-settings", "--global-option", "--install-option")
_KNOWN_OPTIONS = (*_INCLUDE_OPTIONS, "--editable", *_INDEX_OPTIONS, *_RESOLVER_OPTIONS, *_PER_REQUIREMENT_OPTIONS)
_FLAGS = ("--no-index", "--pre", "--prefer-binary", "--require-hashes")


@dataclass(frozen=True, kw_only=True, slots=True)
class Include:
    """A ``-r`` or ``-c`` line: another file to read."""

    path: Path  # resolved against the including file's directory
    written: str  # as written on the line
    constraint: bool  # -c: its requirements are constraints
    origin: str  # "requirements.txt:3"


@dataclass(frozen=True, kw_only=True, slots=True)
class RequirementsFile:
    """One parsed requirements file; its includes are not followed (see :func:`read_requirements`)."""

    requirements: tuple[RootRequirement, ...] = ()
    constraints: tuple[RootRequirement, ...] = ()
    includes: tuple[Include, ...] = ()


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """``(first physical line number, line)`` with continuations joined, as pip's ``join_lines`` does."""
    joined: list[str] = []
    first = 0
    number = 0
    for number, line in enumerate(text.splitlines(), 1):
        if not line.endswith("\\") or _COMMENT_RE.match(line):
            if _COMMENT_RE.match(line):
                line = " " + line  # a comment line ends a continuation and is stripped below
            if joined:
                joined.append(line)
                yield first, "".join(joined)
                joined = []
            else:
                yield number, line
        else:
            if not joined:
                first = number
            joined.append(line[:-1])
    if joined:
        yield first, "".join(joined)


def _options(text: str, where: str) -> list[tuple[str, str, str | None]]:
    """``(option as written, canonical long name, value)`` for each option in ``text``."""
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise InvalidSource(where, f"cannot split {text!r} into options: {exc}") from None
    options: list[tuple[str, str, str | None]] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        value: str | None
        if token.startswith("--"):
            written, equals, rest = token.partition("=")
            value = rest if equals else None
        elif token.startswith("-") and len(token) > 1:
            written, value = token[:2], token[2:] or None
        else:
            raise InvalidSource(where, f"{token!r} is neither an option nor part of a requirement")
        name = _ALIASES.get(written, written)
        if name not in _KNOWN_OPTIONS:
            raise InvalidSource(where, f"unknown option {written!r}")
        if name in _FLAGS:
            if value is not None:
                raise InvalidSource(where, f"option {written} takes no value")
        elif value is None:
            if i >= len(tokens):
                raise InvalidSource(where, f"option {written} needs a value")
            value = tokens[i]
            i += 1
        options.append((written, name, value))
    return options


def _split_requirement(line: str) -> tuple[str, str]:
    """Split a line into its requirement and its options at the first word starting with '-' (pip's rule)."""
    words = line.split()
    for i, word in enumerate(words):
        if word.startswith("-"):
            return " ".join(words[:i]), " ".join(words[i:])
    return " ".join(words), ""


def _ignored(where: str, written: str) -> None:
    name = _ALIASES.get(written, written)
    if name in _INDEX_OPTIONS:
        why = "packages come from mirror.toml's indexes ([mirror] upstream, [[index]], [sources] find-links)"
    elif name in _RESOLVER_OPTIONS:
        why = "the lock resolves with its own options"
    else:
        why = "build options are not part of a lock"
    log.warning("%s: %s is ignored: %s", where, written, why)


def parse_requirements(
    text: str, *, path: Path, label: str | None = None, constraint: bool = False
) -> RequirementsFile:
    """Parse the pip requirements ``text`` of the file at ``path`` (shown as ``label``; includes not followed).

    With ``constraint`` (a file included with ``-c``) its requirement lines are constraints. Index and resolver
    options (``--index-url``, ``--pre``, ...) are ignored with a logged warning: mirror.toml's upstream and the
    lock's own options decide. ``--hash`` options are allowed and ignored (the lock records its own hashes).
    """
    shown = label if label is not None else str(path)
    requirements: list[RootRequirement] = []
    constraints: list[RootRequirement] = []
    includes: list[Include] = []
    for number, raw in _logical_lines(text):
        line = _COMMENT_RE.sub("", raw).strip()
        if not line:
            continue
        where = f"{shown}:{number}"
        requirement_text, options_text = _split_requirement(line)
        options = _options(options_text, where)
        if not requirement_text:
            for written, name, value in options:
                assert value is not None or name in _FLAGS
                if name in _INCLUDE_OPTIONS:
                    assert value is not None
                    if VCS_OR_URL_RE.match(value):
                        raise InvalidSource(where, f"cannot include {value!r}: only local files can be included")
                    includes.append(
                        Include(
                            path=path.parent / value,
                            written=value,
                            constraint=name == "--constraint",
                            origin=where,
                        )
                    )
                elif name == "--editable":
                    assert value is not None
                    raise InvalidSource(where, not_mirrorable(line, location_advice(value)))
                elif name in _PER_REQUIREMENT_OPTIONS:
                    raise InvalidSource(where, f"option {written} must follow a requirement on the same line")
                else:
                    _ignored(where, written)
            continue
        for written, name, _ in options:
            if name not in _PER_REQUIREMENT_OPTIONS:
                raise InvalidSource(where, f"option {written} cannot follow a requirement; only --hash can")
            if name != "--hash":
                _ignored(where, written)
        requirement = parse_requirement(requirement_text, where)
        if constraint and requirement.extras:
            log.warning("%s: extras of constraint %r are ignored: constraints cannot have extras", where, line)
            requirement.extras = set()
        (constraints if constraint else requirements).append(RootRequirement(requirement=requirement, origin=where))
    return RequirementsFile(requirements=tuple(requirements), constraints=tuple(constraints), includes=tuple(includes))


def read_requirements(path: Path, *, root: Path, constraint: bool = False) -> Inputs:
    """Read the requirements file at ``path`` and every file it includes, recursively.

    Includes resolve against the including file's directory; as in pip, ``-r`` inside a constraints file
    still names requirements and ``-c`` always names constraints. A file's own lines come first, then its
    includes, depth first. Origins show paths relative to ``root``.
    """
    requirements: list[RootRequirement] = []
    constraints: list[RootRequirement] = []

    def read(file: Path, as_constraint: bool, stack: tuple[Path, ...], where: str, written: str) -> None:
        key = file.resolve()
        if key in stack:
            chain = " -> ".join(shown(p, root) for p in (*stack[stack.index(key) :], key))
            raise InvalidSource(where, f"cannot include {written!r}: include cycle {chain}")
        try:
            text = file.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            message = "no such file" if not where else f"cannot include {written!r}: no such file"
            raise InvalidSource(where or shown(file, root), message) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidSource(shown(file, root), f"cannot read: {exc}") from None
        parsed = parse_requirements(text, path=file, label=shown(file, root), constraint=as_constraint)
        requirements.extend(parsed.requirements)
        constraints.extend(parsed.constraints)
        for include in parsed.includes:
            read(include.path, include.constraint, (*stack, key), include.origin, include.written)

    read(path, constraint, (), "", str(path))
    return Inputs(requirements=tuple(requirements), constraints=tuple(constraints))
