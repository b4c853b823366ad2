"""Read `Question;Answer;UUID` files: sections, quoted fields, repeated headers."""

from __future__ import annotations

import re

from deckbuild.errors import Report
from deckbuild.readers import RawCard

# How deckbuild.readers recognises this format without importing it: a first line that
# starts with a Question column, or holds two semicolons. Keep it a literal.
DETECT = {
    "what": "a Question;Answer;UUID file",
    "order": 10,
    "first_line": r"^\s*\"?question\"?\s*;|;.*;",
}

COLUMNS = ("question", "answer", "uuid")
HEADER = "Question;Answer;UUID"
# A first line of short words is a header with a typo; anything else is a row without one.
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
                    report.error(
                        path,
                        lineno,
                        f"header must name the columns {HEADER} (in any order), found "
                        f"{found!r}; fix the spelling",
                    )
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
            report.error(
                path,
                lineno,
                f"expected 3 fields ({HEADER}), found {len(fields)}; "
                'put a field that contains ";" in double quotes',
            )
            continue
        question, answer, uuid = (fields[order.index(c)].strip() for c in COLUMNS)
        cards.append(RawCard(lineno, "basic", {"id": uuid, "question": question, "answer": answer}))
    if order is not None and rows == 0:
        report.error(path, 1, "only a header, no cards; add rows or remove the file")
    return cards
