"""Bounds on one field, so that a build's time stays linear in its input.

Checked as soon as a card is read, before anything parses its text: in this process on every
build (the renderers are imported only where cards are rendered), and in the renderers again.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

    from deckbuild.errors import Report
    from deckbuild.readers import RawCard

# Python-Markdown scans from every `[`, backtick, `<` and `~` onwards (quadratic in their number),
# and recurses once per level of lists, quotes and brackets; JSON and Python parsers recurse on
# brackets too.
MAX_FIELD_CHARS = 20_000
MAX_NESTING = 32
MAX_MARKUP_WORK = 400_000  # markup characters times field length, as far as Markdown may scan
_MARKUP_FREE = int(MAX_MARKUP_WORK**0.5)
_SCANNED = "[`<~"
# What Markdown scans from in code: only the backticks and tildes that may end it.
CODE_SCANNED = "`~"
# Containers a line opens: quotes and list markers, with the indentation between them.
_CONTAINERS_RE = re.compile(r"^(?:[ \t]*+(?:>|(?:[-+*]|\d{1,9}[.)])(?=[ \t]|$)))*+[ \t]*+", re.M)
_MARKER_RE = re.compile(r">|[-+*]|\d{1,9}[.)]")
# Every container level takes at least one character of a line's prefix.
_DEEP_PREFIX_RE = re.compile(rf"^[ \t>+*\-\d.)]{{{MAX_NESTING + 1},}}", re.M)
_PREFIX_CHARS = " \t>+*-.)"  # and any decimal digit (\d)
# The same, searched for in text with a line break put in front: a literal first, which the
# regex engine finds by scanning for it, where "^" is tried at every character.
_DEEP_LINE_RE = re.compile(rf"\n[ \t>+*\-\d.)]{{{MAX_NESTING + 1}}}")
_BRACKET_RE = re.compile(r"\\.|[\[\](){}]", re.S)  # an escape, like \( or \{, nests nothing


def field_problem(text: str, scanned: str = _SCANNED, name: str = "field") -> str | None:
    """Say why a field is too long or too deeply nested to handle in bounded time, or None."""
    if len(text) <= MAX_NESTING:
        return None  # too short to nest deeper than the limit, or to hold too much markup
    if len(text) > MAX_FIELD_CHARS:
        return f"{name} too long ({len(text):,} characters, at most {MAX_FIELD_CHARS:,}); shorten or split it"
    if _may_nest_too_deeply(text) and (depth := nesting(text)) > MAX_NESTING:
        return (
            f"{name} nested too deeply ({depth} levels of lists, quotes or brackets, at most {MAX_NESTING}); "
            "flatten it"
        )
    # At most len(text) markup characters: a text of at most _MARKUP_FREE characters is within it.
    if (
        scanned
        and len(text) > _MARKUP_FREE
        and (markup := sum(map(text.count, scanned))) * len(text) > MAX_MARKUP_WORK
    ):
        return (
            f"{name} has too much markup for Markdown ({markup} of {' '.join(scanned)} in {len(text):,} "
            f"characters; the two multiplied may be at most {MAX_MARKUP_WORK:,}); shorten or split it"
        )
    return None


def within_limits(
    raws: list[RawCard],
    path: str,
    report: Report,
    lines: list[str] | None = None,
    suspect: set[int] | None = None,
) -> list[RawCard]:
    """Keep the cards whose every field is within the limits; report (and count) the others skipped.

    Checked as soon as a card is read: matching ids, computing answers (JSON) and parsing code
    would otherwise meet the same input unbounded. `lines` are the file's, when each card was
    read from the fields of the line it starts at unless that line holds a quote (a semicolon
    file): a card of such a line outside `suspect_lines` (worked out here unless `suspect`
    gives them) is within the limits without a check.
    """
    if lines is None or not raws:
        suspect = None
    elif suspect is None:
        suspect = suspect_lines(lines)
    text = lines or []
    kept = []
    for raw in raws:
        # The fields of a card read from one line are parts of it, as `suspect_lines` has it.
        sure = suspect is not None and raw.line - 1 not in suspect and '"' not in text[raw.line - 1]
        if sure or (problem := card_problem(raw.data)) is None:
            kept.append(raw)
        else:
            report.error(path, raw.line, problem)
            report.count("skipped")
    return kept


def card_problem(data: dict[str, Any]) -> str | None:
    """Say what the first field of a card as read that is over a limit is wrong with, or None."""
    # Every card passes here on every build: the cheap checks in C clear almost every card at
    # once. Joined by newlines, every field starts a line, so a deep prefix anywhere is found; the
    # joined text has at least every field's brackets and length, so it is suspect when any field is.
    try:
        joined = "\n" + "\n".join(data.values())
    except TypeError:  # not all text: checked field by field
        return _fields_problem(data)
    if (
        len(joined) <= MAX_FIELD_CHARS + 1
        and joined.count("[") + joined.count("(") + joined.count("{") <= MAX_NESTING
        and _DEEP_LINE_RE.search(joined) is None
    ):
        return None
    return _fields_problem(data)


# As _DEEP_LINE_RE, for texts joined by "\x1d" (as a memo signature holds them) in place of "\n".
_DEEP_JOINED_RE = re.compile(rf"\x1d[ \t>+*\-\d.)]{{{MAX_NESTING + 1}}}")
# More opening brackets than MAX_NESTING, found in one pass (three counts take longer).
_BRACKETS_OVER_RE = re.compile(rf"(?:[^\[({{]*+[\[({{]){{{MAX_NESTING + 1}}}")


# For `suspect_lines`, per byte of UTF-8: the brackets that open (all else deleted but line
# breaks); and "x" for what a deep prefix is made of, any non-ASCII byte too (\d takes in every
# script's digits), "_" for anything else.
_OPENING = bytes(b for b in range(256) if b not in b"[({\n")
_PREFIX_MARKS = bytes(
    ord("\n") if b == ord("\n") else ord("x") if b in b" \t>+*-0123456789.)" or b >= 0x80 else ord("_")
    for b in range(256)
)
_DEEP_RUN = b"x" * (MAX_NESTING + 1)


def suspect_lines(lines: list[str]) -> set[int]:
    """Return the indexes of the lines a card read from one line may be over the limits in.

    `joined_within_limits` holds for every card whose fields are all on a line outside this set:
    such a card has at most the line's length and brackets, and a deep prefix at the start of a
    field is a run of prefix characters in the line. Worked out for a whole file in a few passes
    in C, not a check per card.
    """
    found: set[int] = set()
    if max(map(len, lines), default=0) > MAX_FIELD_CHARS:
        found.update(n for n, line in enumerate(lines) if len(line) > MAX_FIELD_CHARS)
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    opening = data.translate(None, _OPENING).split(b"\n")
    if max(map(len, opening)) > MAX_NESTING:
        found.update(n for n, part in enumerate(opening) if len(part) > MAX_NESTING)
    marks = data.translate(_PREFIX_MARKS)
    if _DEEP_RUN in marks:
        found.update(n for n, part in enumerate(marks.split(b"\n")) if _DEEP_RUN in part)
    return found


def joined_within_limits(joined: str) -> bool:
    """Tell whether a card whose texts, joined by "\x1d", are `joined` is surely within the limits.

    For texts that hold neither "\x1d" nor a line break, these are the checks `card_problem`
    clears most cards with: when this says True, it finds nothing. False means only: ask it.
    """
    return (
        len(joined) <= MAX_FIELD_CHARS
        and _BRACKETS_OVER_RE.match(joined) is None
        and _DEEP_JOINED_RE.search("\x1d" + joined) is None
    )


def _fields_problem(data: dict[str, Any]) -> str | None:
    """Say what the first field over a limit is wrong with, checking field by field."""
    for key, value in data.items():
        for text in (value,) if isinstance(value, str) else [t for _, t in _texts(value)]:
            suspect = len(text) > MAX_NESTING and (len(text) > MAX_FIELD_CHARS or _may_nest_too_deeply(text))
            if suspect and (problem := field_problem(text, "", f"{key} field")):
                return problem
    return None


def _texts(value: object, key: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from _texts(item, key or str(name))
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _texts(item, key)


def _may_nest_too_deeply(text: str) -> bool:
    # Cheap, in C: deeper than the limit takes more opening brackets, or a longer line prefix.
    if text.count("[") + text.count("(") + text.count("{") > MAX_NESTING:
        return True
    if "\n" in text:
        return _DEEP_PREFIX_RE.search(text) is not None
    # One line (most fields): a deep prefix starts at its first character, so one of its kind.
    first = text[:1]
    return (first in _PREFIX_CHARS or first.isdecimal()) and _DEEP_PREFIX_RE.match(text) is not None


def nesting(text: str) -> int:
    """Return how deep a field nests: containers (lists, quotes, indentation) or brackets."""
    deepest = 0
    for prefix in _CONTAINERS_RE.findall(text):
        if prefix:
            markers = _MARKER_RE.findall(prefix)
            # Indentation nests too, a level per 4 columns beyond the space each marker needs.
            spaces = len(prefix.expandtabs(4)) - sum(map(len, markers)) - len(markers)
            deepest = max(deepest, len(markers) + max(0, spaces) // 4)
    depth = 0
    for found in _BRACKET_RE.finditer(text):
        char = found.group(0)
        if char in "[({":
            depth += 1
            deepest = max(deepest, depth)
        elif len(char) == 1:
            depth = max(0, depth - 1)
    return deepest
