"""Read `Question;Answer;UUID` files: sections, quoted fields, repeated headers."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator

from deckbuild.cloze import LOOKS_LIKE
from deckbuild.errors import UUID, Report
from deckbuild.readers import RawCard

# How deckbuild.readers recognises this format without importing it: surely by a first line
# that is a header (it starts with a Question column, or names only known columns) or has a
# UUID for a field; likely by a first line holding two semicolons, which a quiz page's marks
# outweigh. Keep it a literal.
DETECT = {
    "what": "a Question;Answer;UUID file",
    "order": 10,
    "first_line": (
        r"^\s*\"?question\"?\s*;"
        r"|^\s*\"?(question|answer|uuid|guid|tags|hint|extra|reverse|notetype)\"?"
        r"(\s*;\s*\"?(question|answer|uuid|guid|tags|hint|extra|reverse|notetype)\"?)+\s*$"
        r"|;\s*\"?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\"?\s*(;|$)"
    ),
    "likely_first_line": r";.*;",
}

HEADER = "Question;Answer;UUID"
# Every column a header may name, in any order and any case, as the messages spell them.
KNOWN = {
    "question": "Question",
    "answer": "Answer",
    "uuid": "UUID",
    "tags": "Tags",
    "hint": "Hint",
    "extra": "Extra",
    "reverse": "Reverse",
}
# A file written by 'deckbuild import' names GUID instead of UUID: the GUIDs the deck had in
# Anki, kept so that learners' notes update in place. A header names one of the two. Its
# Notetype column names the deck's own note type a row keeps (deckbuild.kept).
ALIASES = {"guid": "GUID", "notetype": "Notetype"}
# The columns a header must name; without a UUID column, 'deckbuild ids' adds one.
REQUIRED = ("question", "answer")
# A Reverse column asks for a second card, answer to question, when it says yes.
_YES = frozenset({"yes", "y", "true", "1", "x"})
_NO = frozenset({"", "no", "n", "false", "0"})
# A first line of short words is a header with a typo; anything else is a row without one.
# A row's last field that is a UUID, where the row is one field short of its UUID column: a
# field before it was lost (an answer deleted with its ';', a line broken in two), not its id.
_ENDS_IN_UUID_RE = re.compile(rf"\s*{UUID}\s*")
# An HTML entity such as &lt; or &#36;: its ";" splits a row unless the field is quoted.
_ENTITY_RE = re.compile(r"&(?:[A-Za-z][A-Za-z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});")
_HEADER_WORD = re.compile(r"\"?[A-Za-z_ ]{1,20}\"?")
# Where a field's text ends: (line index, column), to write an id into it.
End = tuple[int, int]
# Asked about each one-line row without quotes before it is made a card: (line number, the line,
# its fields); True when the caller took the row over, so no card is made. One per section,
# given by the caller from the section's columns (None: it takes no row of the section).
Take = Callable[[int, str, list[str]], bool]
Known = Callable[["_Columns"], Take | None]


class _Unbalanced(Exception):
    """A quoted field that never closes."""


def split_record(
    lines: list[str], start: int, ends: list[End] | None = None, stray: list[int] | None = None
) -> tuple[list[str], int]:
    """Split the record starting at lines[start] into fields; return them and the next index.

    A field in double quotes may hold ';', a doubled quote for a quote, and line breaks.
    With `ends`, also record where each field's text ends (inside its closing quote); with
    `stray`, the index of each line where text follows a field's closing quote.
    """
    line = lines[start]
    if '"' not in line:
        plain = line.split(";")
        if ends is not None:
            at = -1
            for value in plain:
                at += len(value) + 1
                ends.append((start, at))
        return plain, start + 1
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
                if ends is not None:
                    ends.append((i, close))
                pos = close + 1
                break
            rest = line.find(";", pos)
            tail = line[pos:] if rest == -1 else line[pos:rest]
            if stray is not None and tail.strip():
                stray.append(i)
            fields.append("".join(buf) + tail)
            if rest == -1:
                return fields, i + 1
            pos = rest + 1
        else:
            rest = line.find(";", pos)
            if ends is not None:
                ends.append((i, len(line) if rest == -1 else rest))
            if rest == -1:
                fields.append(line[pos:])
                return fields, i + 1
            fields.append(line[pos:rest])
            pos = rest + 1


def _names(fields: list[str]) -> list[str]:
    return [f.strip().strip('"').strip().lower() for f in fields]


def _header_order(fields: list[str]) -> list[str] | None:
    names = _names(fields)
    known = all(n in KNOWN or n in ALIASES for n in names) and not {"uuid", "guid"} <= set(names)
    if known and all(c in names for c in REQUIRED) and len(set(names)) == len(names):
        return names
    return None


def id_column(order: list[str]) -> str:
    """Return the column holding a section's ids: GUID when its header names one, else UUID."""
    return "guid" if "guid" in order else "uuid"


def _looks_like_header(fields: list[str]) -> bool:
    return all(_HEADER_WORD.fullmatch(f.strip()) for f in fields)


def _header_problem(fields: list[str], found: str) -> str:
    """Say every column a header names that is unknown, repeated or missing, and which are known."""
    import difflib

    names = _names(fields)
    wrong = []
    for name, text in zip(names, fields, strict=True):
        if name == "deck":
            wrong.append("a Deck column, which is not needed (a file's folder is its deck)")
        elif name == "guid" and "uuid" in names:
            wrong.append("both UUID and GUID (a GUID column holds ids kept from Anki, in place of UUID)")
        elif name not in KNOWN and name not in ALIASES:
            close = difflib.get_close_matches(name, KNOWN, n=1)
            hint = f" (did you mean {KNOWN[close[0]]!r}?)" if close else ""
            wrong.append(f"an unknown column {text.strip().strip(chr(34)).strip()!r}{hint}")
    wrong += [f"no {KNOWN[c]} column" for c in REQUIRED if c not in names]
    spelled = {**KNOWN, **ALIASES}
    wrong += [
        f"{spelled[n]!r} twice" for n in sorted({n for n in names if n in spelled and names.count(n) > 1})
    ]
    known = ", ".join(list(KNOWN.values())[:-1]) + " and " + list(KNOWN.values())[-1]
    return (
        f"header {found!r} has {' and '.join(wrong)}; "
        f"the known columns are {known} (each once, in any order and any case)"
    )


def _records(lines: list[str], ends: list[End] | None = None) -> Iterator[tuple[int, int, list[str], bool]]:
    """Yield each record: its first line index, the index after it, its fields, and whether a blank
    line (or the start of the file) came before it. Raise _Unbalanced at a quote that never closes."""
    i = 0
    after_blank = True
    while i < len(lines):
        if not lines[i].strip():
            after_blank = True
            i += 1
            continue
        start = i
        try:
            fields, i = split_record(lines, i, ends)
        except _Unbalanced:
            raise _Unbalanced(start) from None
        yield start, i, fields, after_blank
        after_blank = False


def read(path: str, lines: list[str], report: Report, known: Known | None = None) -> list[RawCard]:
    """Read every row of a semicolon file; record bad rows in `report`.

    A row that `known` takes over (a card an earlier run read as it is) is left to it.
    """
    cards: list[RawCard] = []
    rows = 0
    order: list[str] | None = None
    columns: _Columns | None = None
    take: Take | None = None
    i = 0
    after_blank = True
    while i < len(lines):
        line = lines[i]
        plain = '"' not in line
        if not plain:
            start = i
            stray: list[int] = []
            try:
                fields, i = split_record(lines, i, stray=stray)
            except _Unbalanced:
                report.error(
                    path,
                    start + 1,
                    "unbalanced double quote: this field opens a quote that never closes; "
                    'close it, or write a quote inside a quoted field as ""',
                )
                return cards
            if stray:
                # `"a "b" c"` would quietly read as `a b" c"`: the author meant a quote inside.
                report.error(
                    path,
                    stray[0] + 1,
                    "text after a quoted field's closing quote; write a quote inside a quoted field "
                    'as "", or put the whole field in quotes',
                )
                if order is None:
                    return cards  # the first line, where the header belongs: nothing reads without one
                after_blank = False
                rows += 1  # a row all the same: the file is no header alone
                continue
        elif not line or line.isspace():
            after_blank = True
            i += 1
            continue
        else:
            # Most rows: one line, no quotes.
            start = i
            fields = line.split(";")
            i += 1
        lineno = start + 1
        if after_blank:
            after_blank = False
            header = _header_order(fields)
            if header is not None:
                order, columns = header, _Columns(header)
                take = None if known is None else known(columns)
                continue
            looks_like_header = _looks_like_header(fields)
            if order is None or (looks_like_header and "question" in _names(fields)):
                found = lines[start].strip()
                if looks_like_header:
                    report.error(path, lineno, _header_problem(fields, found))
                else:
                    report.error(path, lineno, f"missing header; make the first line {HEADER}")
                if order is None:
                    return cards
                continue
        assert order is not None and columns is not None
        rows += 1
        if len(fields) != len(order):
            shown = ";".join({**KNOWN, **ALIASES}[c] for c in order)
            entity = _ENTITY_RE.search(lines[lineno - 1]) if len(fields) > len(order) else None
            why = f' (the ";" of the HTML entity {entity.group(0)} counts too)' if entity else ""
            if len(fields) > len(order):
                fix = 'put a field that contains ";" in double quotes'
            elif _lost_a_field(fields, order):
                fix = (
                    "its last field is its UUID, so another field is missing (deleted with its ';'?): "
                    "write it back before the UUID"
                )
            elif len(fields) == len(order) - 1 and order[-1] == id_column(order):
                fix = "run 'deckbuild ids' to write its UUID after a ';', or write the missing field"
            else:
                fix = "write the missing field(s), each after a ';'"
            found = f"expected {len(order)} fields ({shown}), found {len(fields)}{why}"
            report.error(path, lineno, f"{found}; {fix}")
            continue
        if plain and take is not None and take(lineno, line, fields):
            continue
        card = columns.card(fields, path, lineno, report)
        if card is not None:
            cards.append(card)
    if order is not None and rows == 0:
        report.error(path, 1, "only a header, no cards; add rows or remove the file")
    return cards


# Tags deckbuild gives cards itself, in any case (Anki compares tags without it): an author's
# `deckbuild::retired` would tell learners to delete a live card, and `source::` is left out of
# a card's content hash, so an edit of one would never reach them.
OWN_TAGS = ("deckbuild::", "kind::", "source::")


def own_tag(tag: str) -> bool:
    """Tell whether a tag is one deckbuild sets itself, which a source may not hold."""
    # Folded as Anki compares tags, and then some: `ſource::` and `Kind::` (a Kelvin sign) too.
    return unicodedata.normalize("NFKC", tag).casefold().startswith(OWN_TAGS)


class _Columns:
    """Where a section's header puts each column: a row becomes a card without a dict per row."""

    def __init__(self, order: list[str]) -> None:
        self.question = order.index("question")
        self.answer = order.index("answer")
        column = id_column(order)
        self.id = order.index(column) if column in order else None
        self.guid = "guid" in order
        self.tags = order.index("tags") if "tags" in order else None
        self.optional = [(name, order.index(name)) for name in ("hint", "extra", "notetype") if name in order]
        self.reverse = order.index("reverse") if "reverse" in order else None
        # Where the question, answer and UUID are when a section has only these three columns.
        plain = len(order) == 3 and not self.guid
        self.plain = (self.question, self.answer, self.id) if plain and self.id is not None else None

    def card(self, fields: list[str], path: str, lineno: int, report: Report) -> RawCard | None:
        """Make a row's card, or report what is wrong with it and return None."""
        if self.plain is not None:
            # Only a question, an answer and a UUID (most files): the card below, made at once.
            at_question, at_answer, at_id = self.plain
            uuid = fields[at_id].strip()
            question = fields[at_question].strip()
            if uuid and "{{c" not in question:
                return RawCard(
                    lineno, "basic", {"id": uuid, "question": question, "answer": fields[at_answer].strip()}
                )
        uuid = "" if self.id is None else fields[self.id].strip()
        if not uuid:
            report.error(path, lineno, "no UUID; run 'deckbuild ids' to write a new one into the file")
            return None
        question = fields[self.question].strip()
        data = self._data(uuid, question, fields)
        tags = fields[self.tags].split() if self.tags is not None else None
        if tags and (own := next((t for t in tags if own_tag(t)), None)):
            report.error(
                path, lineno,
                f"the tag {own!r} is one deckbuild sets itself (deckbuild::…, kind::…, source::…): "
                "learners' searches and release notes rely on it; rename it",
            )  # fmt: skip
            return None
        if self.reverse is not None:
            cell = fields[self.reverse].strip()
            reverse = cell.lower()
            if reverse in _YES:
                data["reverse"] = True
            elif reverse not in _NO:
                report.error(path, lineno, f"Reverse must be yes or no (or empty), found {cell!r}; fix it")
                return None
        # A question that starts a cloze anywhere is a cloze note, checked as one.
        kind = "cloze" if "{{c" in question and LOOKS_LIKE.search(question) else "basic"
        if kind == "cloze" and not data["answer"]:
            del data["answer"]
        if kind == "cloze" and data.pop("reverse", False):
            report.error(path, lineno, "a cloze card cannot be reversed; empty its Reverse cell")
            return None
        return RawCard(lineno, kind, data)

    def _data(self, uuid: str, question: str, fields: list[str]) -> dict[str, object]:
        data: dict[str, object] = {"id": uuid, "question": question}
        if self.guid:
            data["anki_guid"] = True
        data["answer"] = fields[self.answer].strip()
        if self.tags is not None and (tags := fields[self.tags].strip()):
            data["tags"] = tags.split()
        for name, at in self.optional:
            if value := fields[at].strip():
                data[name] = value
        return data

    def basic(self, fields: list[str]) -> dict[str, object] | None:
        """Return the fields of a row that `card` makes a basic card without a word; else None.

        The same card's fields, as `card` has them: a row without a UUID, with a cloze or a Reverse
        cell that is neither yes nor no has something to say, and is left to it.
        """
        uuid = "" if self.id is None else fields[self.id].strip()
        question = fields[self.question].strip()
        if not uuid or "{{c" in question:
            return None
        data = self._data(uuid, question, fields)
        if self.reverse is not None:
            reverse = fields[self.reverse].strip().lower()
            if reverse in _YES:
                data["reverse"] = True
            elif reverse not in _NO:
                return None
        return data


def _lost_a_field(fields: list[str], order: list[str]) -> bool:
    """Tell whether a row one field short of its section's last column, the UUID, ends in one."""
    return (
        len(fields) == len(order) - 1
        and order[-1] == "uuid"
        and bool(fields)
        and _ENDS_IN_UUID_RE.fullmatch(fields[-1]) is not None
    )


def missing_ids(lines: list[str]) -> list[tuple[int, int, int, str | None]]:
    """Return where a file needs text written so that every row has a UUID.

    Each place is (the row's first line index, line index, column, text); text None is a new id:
    into an empty UUID field, or after the row as a new last field (";" + id) when its section
    has no UUID column, whose header then gains ";UUID". Rows with the wrong number of fields
    are left for the build to report. Raise _Unbalanced where a quote never closes.
    """
    out: list[tuple[int, int, int, str | None]] = []
    order: list[str] | None = None
    ends: list[End] = []
    # Under a header the build refuses (a misspelt column), no row is written into: its columns
    # are not known, and an id written by the section's old ones would land in another column.
    refused = False
    for start, after, fields, after_blank in _records(lines, ends):
        record_ends = ends[-len(fields) :]
        if after_blank and (header := _header_order(fields)) is not None:
            order, refused = header, False
            if id_column(order) not in order:
                out.append((start, after - 1, len(lines[after - 1]), ";UUID"))
            continue
        if order is None:
            return []
        if after_blank and _looks_like_header(fields) and "question" in _names(fields):
            refused = True  # as the build reads it: a header it reports, not a row
            continue
        column = id_column(order)
        # A row that ends where its UUID would start (`Question;Answer`) gets one as a last field.
        short = len(fields) == len(order) - 1 and order[-1] == column
        if refused or (len(fields) != len(order) and not short):
            continue
        if _lost_a_field(fields, order):
            # Its UUID is there, a field before it lost: a new id in this file (here, or in the
            # other half of a line broken in two) would ship a second card and retire the studied one.
            return []
        if column not in order or short:
            out.append((start, after - 1, len(lines[after - 1]), ";"))
        elif not fields[order.index(column)].strip():
            out.append((start, *record_ends[order.index(column)], None))
    return out
