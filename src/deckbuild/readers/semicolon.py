"""Read `Question;Answer;UUID` files: sections, quoted fields, repeated headers."""

from __future__ import annotations

import re

from deckbuild.errors import Report
from deckbuild.readers import RawCard

COLUMNS = ("question", "answer", "uuid")
HEADER = "Question;Answer;UUID"
# A first line of short words is a header with a typo; anything else is a row without one.
# An HTML entity such as &lt; or &#36;: its ";" splits a row unless the field is quoted.
_ENTITY_RE = re.compile(r"&(?:[A-Za-z][A-Za-z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});")
_HEADER_WORD = re.compile(r"\"?[A-Za-z_ ]{1,20}\"?")


class _Unbalanced(Exception):
    """A quoted field that never closes."""


def split_record(lines: list[str], start: int) -> tuple[list[str], int]:
    """Split the record starting at lines[start] into fields; return them and the next index.

    A field in double quotes may hold ';', a doubled quote for a quote, and line breaks.
    """
    line = lines[start]
    if '"' not in line:
        return line.split(";"), start + 1
    fields: list[str] = []
    i = start
    pos = 0
    while True:
        # Leading spaces before an opening quote still make a quoted field.
        probe = pos
        while probe < len(line) and line[probe] in " \t":
            probe += 1
        if probe < len(line) and line[probe] == '"':
            pos = probe + 1
            buf: list[str] = []
            while True:
                close = line.find('"', pos)
                if close == -1:
                    buf.append(line[pos:])
                    i += 1
                    if i >= len(lines):
                        raise _Unbalanced
                    buf.append("\n")
                    line, pos = lines[i], 0
                    continue
                if line.startswith('""', close):
                    buf.append(line[pos:close] + '"')
                    pos = close + 2
                    continue
                buf.append(line[pos:close])
                pos = close + 1
                break
            rest = line.find(";", pos)
            tail = line[pos:] if rest == -1 else line[pos:rest]
            fields.append("".join(buf) + tail)
            if rest == -1:
                return fields, i + 1
            pos = rest + 1
        else:
            rest = line.find(";", pos)
            if rest == -1:
                fields.append(line[pos:])
                return fields, i + 1
            fields.append(line[pos:rest])
            pos = rest + 1


def _header_problem(fields: list[str], found: str) -> str:
    """Say which columns a header names that are unknown, and which it lacks."""
    names = [f.strip().strip('"').strip() for f in fields]
    unknown = [n for n in names if n.lower() not in COLUMNS]
    missing = [c for c in COLUMNS if c not in {n.lower() for n in names}]
    titles = dict(zip(COLUMNS, HEADER.split(";"), strict=True))
    wrong = [f"an unknown column {n!r}" for n in unknown]
    wrong += [f"no {titles[c]} column" for c in missing]
    twice = sorted({n for n in names if [m.lower() for m in names].count(n.lower()) > 1})
    wrong += [f"{n!r} twice" for n in twice]
    return (
        f"header {found!r} has {' and '.join(wrong)}; the known columns are Question, Answer and UUID "
        "(each once, in any order and any case)"
    )


def _header_order(fields: list[str]) -> list[str] | None:
    names = [f.strip().strip('"').strip().lower() for f in fields]
    return names if sorted(names) == sorted(COLUMNS) else None


def read(path: str, lines: list[str], report: Report) -> list[RawCard]:
    """Read every row of a semicolon file; record bad rows in `report`."""
    cards: list[RawCard] = []
    rows = 0
    order: list[str] | None = None
    i = 0
    after_blank = True
    while i < len(lines):
        if not lines[i].strip():
            after_blank = True
            i += 1
            continue
        lineno = i + 1
        try:
            fields, i = split_record(lines, i)
        except _Unbalanced:
            report.error(
                path,
                lineno,
                "unbalanced double quote: this field opens a quote that never closes; "
                'close it, or write a quote inside a quoted field as ""',
            )
            return cards
        if after_blank:
            after_blank = False
            header = _header_order(fields)
            if header is not None:
                order = header
                continue
            if order is None:
                found = lines[lineno - 1].strip()
                if all(_HEADER_WORD.fullmatch(f.strip()) for f in fields):
                    report.error(path, lineno, _header_problem(fields, found))
                else:
                    report.error(
                        path,
                        lineno,
                        f"missing header; make the first line {HEADER}",
                    )
                return cards
        assert order is not None
        rows += 1
        if len(fields) != len(COLUMNS):
            entity = _ENTITY_RE.search(lines[lineno - 1]) if len(fields) > len(COLUMNS) else None
            why = f' (the ";" of the HTML entity {entity.group(0)} counts too)' if entity else ""
            report.error(
                path,
                lineno,
                f"expected 3 fields ({HEADER}), found {len(fields)}{why}; "
                'put a field that contains ";" in double quotes',
            )
            continue
        question, answer, uuid = (fields[order.index(c)].strip() for c in COLUMNS)
        cards.append(RawCard(lineno, "basic", {"id": uuid, "question": question, "answer": answer}))
    if order is not None and rows == 0:
        report.error(path, 1, "only a header, no cards; add rows or remove the file")
    return cards
