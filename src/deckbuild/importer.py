"""Bring an Anki deck into deckbuild sources, keeping every note's GUID (`deckbuild import`).

Reads an .apkg or .colpkg (its SQLite collection, with sqlite3) or Anki's "Notes in Plain
Text" export, maps basic, reversed and cloze notes to semicolon rows with a GUID column, turns
their HTML into text deckbuild renders back to the same card, and writes one `cards.txt` per
deck (subdecks as folders) with the images the notes show beside it. The package is not
trusted: every size is bounded, media names never choose where a file goes, and nothing is
written unless everything could be read.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
import shutil
import sqlite3
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from deckbuild import kept
from deckbuild.atomic import TEMP_PREFIX, cannot_write, sync_folder, temp_name
from deckbuild.cloze import LOOKS_LIKE
from deckbuild.errors import ANKI_GUID, UNSAFE_RE, DeckbuildError, Report
from deckbuild.notetype import BY_LABEL, NoteType
from deckbuild.readers.semicolon import own_tag
from deckbuild.render import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, MAX_MEDIA_BYTES
from deckbuild.resources import ran_out
from deckbuild.sources import MAX_SOURCE_BYTES, display_path, file_kind, is_regular

if TYPE_CHECKING:
    from deckbuild.memo import Memo
    from deckbuild.workers import Helpers

# An unpacked collection may be at most this big: far beyond any deck, and a zip bomb stops here.
MAX_COLLECTION_BYTES = 1024 * 1024 * 1024
# All images extracted from one package together (each is at most MAX_MEDIA_BYTES).
MAX_MEDIA_TOTAL = 2 * 1024 * 1024 * 1024
MAX_ENTRIES = 200_000
CARDS_FILE = "cards.txt"
IMAGE_SUFFIXES = frozenset((".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".bmp"))
# What an Anki 2.1.50+ package holds in its old-format collection, for older Annkis to show.
_STUB_TEXT = "please update to the latest anki version"
_GUID_RE = re.compile(ANKI_GUID)
_TODO_PACKAGE = "give an .apkg or .colpkg file exported from Anki, or a text export of its notes"
_NEWER = (
    "a package in Anki's newer format (collection.anki21b), which deckbuild cannot read; "
    "export it again from Anki with 'Support older Anki versions' ticked"
)


@dataclass
class Note:
    """One note as Anki has it: its GUID, note type, fields as HTML, tags and deck."""

    guid: str
    notetype: str
    fields: list[str]
    tags: list[str]
    deck: str
    line: int = 0
    decks: int = 1  # how many decks its cards are in (the first card's is the one kept)


@dataclass
class Row:
    """One row of a written source: question, answer, GUID, tags, and whether it is reversed."""

    question: str
    answer: str
    guid: str
    tags: str
    reverse: bool
    # The note type the note keeps (deckbuild.kept), by name; "": deckbuild's own.
    notetype: str = ""


@dataclass
class Imported:
    """What an import wrote, and what it could not bring along."""

    out: Path
    files: list[Path] = field(default_factory=list)
    notes: int = 0
    media: int = 0
    media_bytes: int = 0
    report: Report = field(default_factory=Report)


# ---------------------------------------------------------------- note types


@dataclass(frozen=True)
class Shape:
    """How a note type's fields map to a row: question, answer, and what makes it reversed."""

    kind: str  # "basic", "reversed" or "cloze"
    question: int
    answer: int | None
    reverse_if: int | None = None  # a field that, when not empty, asks for the reversed card


_FIELD = r"\{\{([^{}#/^:]+)\}\}"
_ANSWER_RE = re.compile(r"\{\{FrontSide\}\}<hr id=answer>" + _FIELD)
_CLOZE_Q_RE = re.compile(r"\{\{cloze:([^{}]+)\}\}")
_CLOZE_A_RE = re.compile(r"\{\{cloze:([^{}]+)\}\}(?:<br>" + _FIELD + ")?")
_OPTIONAL_RE = re.compile(r"\{\{#([^{}]+)\}\}" + _FIELD + r"\{\{/\1\}\}")


def _squeeze(template: str) -> str:
    """Write a template so that blanks and spellings of the same markup compare equal."""
    text = re.sub(r"\s+", " ", template).strip()
    text = re.sub(r"\s*(<[^>]*>)\s*", r"\1", text)
    text = re.sub(r"<hr id=[\"']?answer[\"']?\s*/?>", "<hr id=answer>", text)
    return re.sub(r"<br\s*/?>", "<br>", text)


def shape_of(fields: list[str], templates: list[tuple[str, str]], cloze: bool) -> Shape | str:
    """Tell how a note type maps to deckbuild's rows, or why it cannot."""
    index = {name: n for n, name in enumerate(fields)}
    squeezed = [(_squeeze(q), _squeeze(a)) for q, a in templates]
    if cloze:
        if len(squeezed) == 1 and (q := _CLOZE_Q_RE.fullmatch(squeezed[0][0])):
            a = _CLOZE_A_RE.fullmatch(squeezed[0][1])
            if a and a.group(1) == q.group(1) and q.group(1) in index and (a.group(2) or "") in {"", *index}:
                return Shape("cloze", index[q.group(1)], index.get(a.group(2) or ""))
        return "its templates are not a plain cloze ({{cloze:Text}}, then Extra on the back)"
    if (
        squeezed
        and (q0 := re.fullmatch(_FIELD, squeezed[0][0]))
        and (a0 := _ANSWER_RE.fullmatch(squeezed[0][1]))
    ):
        front, back = q0.group(1), a0.group(1)
        if front in index and back in index and front != back:
            if len(squeezed) == 1:
                return Shape("basic", index[front], index[back])
            if len(squeezed) == 2:
                q1, a1 = squeezed[1]
                if (
                    re.fullmatch(_FIELD, q1)
                    and q1[2:-2] == back
                    and a1 == f"{{{{FrontSide}}}}<hr id=answer>{{{{{front}}}}}"
                ):
                    return Shape("reversed", index[front], index[back])
                optional = _OPTIONAL_RE.fullmatch(q1)
                reversed_back = a1 == f"{{{{FrontSide}}}}<hr id=answer>{{{{{front}}}}}"
                if optional and optional.group(2) == back and optional.group(1) in index and reversed_back:
                    return Shape("reversed", index[front], index[back], index[optional.group(1)])
    return "its templates are not a plain front/back card, reversed or not"


# Anki's stock note types by name, for a text export (which names note types but has no templates).
STOCK = {
    "Basic": Shape("basic", 0, 1),
    "Basic (and reversed card)": Shape("reversed", 0, 1),
    "Basic (optional reversed card)": Shape("reversed", 0, 1, 2),
    "Cloze": Shape("cloze", 0, 1),
}


def to_row(note: Note, shape: Shape) -> Row | str:
    """Map one note to a row, or say why it cannot be one."""
    used = {shape.question, shape.answer, shape.reverse_if} - {None}
    # A text export leaves a note's empty last fields out.
    fields = note.fields + [""] * (max(n for n in used if n is not None) + 1 - len(note.fields))
    lost = [n for n, text in enumerate(fields) if n not in used and _visible(text)]
    if lost:
        return "a field the card does not show holds text deckbuild has no column for"
    cloze = shape.kind == "cloze"
    question = to_source(fields[shape.question], cloze)
    answer = (
        to_source(fields[shape.answer], False)
        if shape.answer is not None and shape.answer < len(fields)
        else ""
    )
    if isinstance(question, Unfit) or isinstance(answer, Unfit):
        return str(question if isinstance(question, Unfit) else answer)
    if not question:
        return "its question is empty"
    if cloze and not LOOKS_LIKE.search(question):
        return "a cloze note without a cloze deletion"
    if not cloze and not answer:
        return "its answer is empty"
    reverse = shape.kind == "reversed" and (shape.reverse_if is None or _filled(fields[shape.reverse_if]))
    return Row(question, answer, note.guid, " ".join(note.tags), reverse)


def _visible(text: str) -> bool:
    return bool(re.sub(r"<(?!img)[^>]*>|&nbsp;|\s", "", text))


# What Anki takes for an empty field when it decides which cards a note has: blanks, <br> and
# <div> tags only. `&nbsp;`, a zero-width space or `<b> </b>` fill it (tested against Anki).
_EMPTY_FIELD_RE = re.compile(r"(?:[ \t\n\r\f\v]|</?(?:br|div) ?/?>)*", re.IGNORECASE)


def _filled(text: str) -> bool:
    """Tell whether Anki counts a field as filled, as a conditional card's template asks."""
    return _EMPTY_FIELD_RE.fullmatch(text) is None


# ---------------------------------------------------------------- HTML to source text


class Unfit(str):
    """Why a field cannot be written so that deckbuild renders it the same."""


_TOKEN_RE = re.compile(
    r"<!--.*?(?:-->|$)"
    r"|<(/?)([A-Za-z][A-Za-z0-9]*)((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>"
    r"|\\\([^<]*?\\\)|\\\[[^<]*?\\\]",  # a formula holding a tag is not one: Anki reads the tag first
    re.S,
)
_ATTR_RE = re.compile(r"([A-Za-z_:][-A-Za-z0-9_:.]*)(?:\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s\"'=<>`]+))?")
# Rendered by Markdown as raw HTML blocks: kept as they are, text inside not escaped for Markdown.
_RAW = frozenset(("table", "pre", "blockquote", "dl"))
_LINES = frozenset(("div", "p"))
_LISTS = frozenset(("ul", "ol"))
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
# Their content is never shown as text: a card must not run script, and a stylesheet is not text.
_DROPPED = frozenset(
    ("script", "style", "iframe", "object", "embed", "svg", "math", "template", "noscript", "audio", "video",
     "canvas", "head", "title", "frame", "frameset", "applet", "form", "select", "textarea", "button")
)  # fmt: skip
# Tags that write something (the others are unwrapped: their text stays).
_HANDLED = ALLOWED_TAGS | {"font", "img"}
# Kept as they are in a line: Markdown reads the text inside them (block tags it would not).
_INLINE = frozenset(
    (
        "a",
        "abbr",
        "b",
        "code",
        "del",
        "em",
        "i",
        "img",
        "kbd",
        "mark",
        "s",
        "small",
        "span",
        "strong",
        "sub",
        "sup",
        "u",
    )
)
_VOID = frozenset(("br", "hr", "img", "wbr", "input", "meta", "link", "col", "area", "source", "param"))
_LINK_SYNTAX_RE = re.compile(r"\]\(|\]\[|\]:")
_LINE_START_RE = re.compile(r"^( ?)(#|[-+=~_]|\d+[.)])")


@dataclass
class _Out:
    """The source text being written, and what the position in it needs."""

    parts: list[str] = field(default_factory=list)
    line_start: bool = True
    raw: int = 0
    pre: int = 0
    lists: list[str] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)  # each open list's first number
    items: int = 0  # list items open around the text
    # A list item's marker, written with the item's first text (an empty item writes none, as
    # Markdown would show a lone marker as text); Markdown reads markers after it too.
    pending: str = ""
    in_item: bool = False  # a table or code block inside a list item: its text is Markdown's
    dropped: Counter[str] = field(default_factory=Counter)

    @property
    def item_start(self) -> bool:
        return bool(self.pending)

    def put(self, text: str) -> None:
        if self.pending:
            self.parts.append(self.pending)
            self.pending = ""
        self.parts.append(text)
        self.line_start = False

    def newline(self, blank: bool = False) -> None:
        """End the line with `<br>` (deckbuild reads it as a line break), or leave a blank line."""
        if self.item_start:
            return  # a list item's text starts on its marker's line
        text = "".join(self.parts).rstrip(" \t\n\r\f")  # a no-break space is text
        self.line_start = True
        if not text:
            self.parts = []
            return
        have = len(re.search(r"(?:<br>)*$", text).group()) // 4  # type: ignore[union-attr]
        self.parts = [text + "<br>" * max(0, (2 if blank else 1) - have)]


def to_source(markup: str, cloze: bool) -> str:
    """Write an Anki field (HTML) as source text that deckbuild renders to the same card.

    Markdown's own characters in the text are escaped, line breaks are written as `<br>`,
    lists and headings become Markdown, tables and code blocks stay HTML, tags a card does not
    keep are unwrapped (and script, styles and frames dropped with what they hold).
    """
    out = _Out()
    links = bool(_LINK_SYNTAX_RE.search(markup))
    pos = 0
    skip_until: str | None = None
    stack: list[tuple[str, str]] = []  # open tags as read, and the closing tag written for each
    # Text is written once a token that writes something comes: text around a tag that writes
    # nothing (a comment, an unwrapped or stray tag, a dropped element) is one text, so that
    # `1<o:p></o:p>. a` is escaped as the `1. a` Markdown would see.
    buffer: list[str] = []
    for match in _TOKEN_RE.finditer(markup):
        text = markup[pos : match.start()]
        pos = match.end()
        token = match.group(0)
        if skip_until is not None:
            if match.group(1) and match.group(2).lower() == skip_until:
                skip_until = None
            continue
        buffer.append(text)
        if token.startswith("<!--"):
            continue
        if match.group(2) is None:  # a formula: MathJax reads it, deckbuild passes it through as it is
            if LOOKS_LIKE.search(token) and not cloze:
                return Unfit("a formula holds '{{c', which deckbuild would read as a cloze deletion")
            if "{{calc" in token:
                return Unfit("a formula holds '{{calc', which deckbuild would read as a calculation")
            _text(out, "".join(buffer), links, cloze)
            buffer = []
            if out.line_start and out.items:
                out.put("  " * out.items)
            out.put(token)
            continue
        closing, name, attrs = bool(match.group(1)), match.group(2).lower(), match.group(3)
        if not closing and name in _DROPPED:
            out.dropped[name] += 1
            # One never closed would swallow the rest (a cloze's `}}` too): then only the tag goes.
            if not attrs.rstrip().endswith("/") and re.search(rf"</{name}\b", markup[pos:], re.I):
                skip_until = name
            continue
        if closing and not any(open_name in (name, "~" + name) for open_name, _ in stack):
            continue  # a stray closing tag: browsers ignore it too
        if not closing and name not in _HANDLED and not out.pre:
            if name not in _VOID:
                stack.append(("~" + name, ""))  # unwrapped: its text stays, the tag goes
            continue
        _text(out, "".join(buffer), links, cloze)
        buffer = []
        if closing:
            _close(out, name, stack)
        else:
            _open(out, name, attrs, stack)
    if skip_until is None:
        buffer.append(markup[pos:])
    _text(out, "".join(buffer), links, cloze)
    while stack:
        _close(out, stack[-1][0], stack)
    text = "".join(out.parts)
    text = re.sub(r"^(?:[ \t\n\r\f]|<br>)+|(?:[ \t\n\r\f]|<br>)+$", "", text)
    # Markdown strips blanks at a line's ends, a no-break or ideographic space too: as entities they stay.
    return _EDGE_SPACE_RE.sub(lambda m: "".join(f"&#{ord(c)};" for c in m.group()), text)


_EDGE_SPACE_RE = re.compile(
    r"^[^\S \t\n\r\f]+|[^\S \t\n\r\f]+$|(?<=<br>)[^\S \t\n\r\f]+|[^\S \t\n\r\f]+(?=<br>)"
)


def dropped_tags(markup: str) -> Counter[str]:
    """Count the elements `to_source` leaves out of a field, with everything inside them."""
    return Counter(
        m.group(2).lower()
        for m in _TOKEN_RE.finditer(markup)
        if m.group(2) and not m.group(1) and m.group(2).lower() in _DROPPED
    )


def _open(out: _Out, name: str, attrs: str, stack: list[tuple[str, str]]) -> None:
    if out.pre and name not in _INLINE and name != "br":
        if name not in _VOID:
            stack.append(("~" + name, ""))  # code keeps its text; a block inside it is unwrapped
        return
    if name == "br":
        if out.item_start:
            return  # a break first thing in a list item: the item's text still starts on its line
        if out.raw:
            out.put("<br>")
        else:
            out.parts.append("<br>")
            out.line_start = True
        return
    if name == "hr":
        out.newline(blank=True)
        out.put("<hr>")
        out.newline(blank=True)
        return
    if name in _LINES:
        if out.raw:
            out.put("<br>")
        else:
            out.newline()
        style = _attributes("span", attrs)
        stack.append((name, "</span>" if style else ""))
        if style:
            out.put(f"<span{style}>")
        return
    if name in _LISTS and not out.raw:
        if not out.lists:
            out.newline(blank=False)
        else:
            out.newline()
        out.lists.append(name)
        start = dict(_parse_attrs(attrs)).get("start", "").strip()
        # Markdown numbers a list from its first marker: `<ol start="5">` starts at 5.
        out.starts.append(int(start) if name == "ol" and start.isdigit() and len(start) < 9 else 1)
        stack.append((name, ""))
        return
    if name == "li" and out.lists and not out.raw:
        innermost = max((k for k, (n, _) in enumerate(stack) if n in _LISTS), default=-1)
        if any(n == "li" for n, _ in stack[innermost + 1 :]):
            _close(out, "li", stack)  # an item ends where the next one starts, as in HTML
        out.newline()
        marker = f"{out.starts[-1]}." if out.lists[-1] == "ol" else "-"
        out.starts[-1] = 1  # the items after the first take their numbers from it
        out.pending = "  " * out.items + marker + " "  # nested by the items it lies in, as a learner sees it
        out.items += 1
        stack.append((name, ""))
        return
    if name in _HEADINGS and not out.raw and not out.lists:
        out.newline()
        out.put("#" * _HEADINGS[name] + " ")
        stack.append((name, "\n"))
        return
    if name in _RAW:
        if not out.raw and out.items:
            out.in_item = True  # inside a list item Markdown reads it as inline HTML, text and all
        elif not out.raw:
            out.newline(blank=True)
        out.raw += 1
        out.pre += name == "pre"
        out.put(f"<{name}{_attributes(name, attrs)}>")
        stack.append((name, f"</{name}>"))
        return
    if name == "font":
        colour = dict(_parse_attrs(attrs)).get("color")
        if colour and re.fullmatch(r"#?[\w]+", colour):
            out.put(f'<span style="color:{colour}">')
            stack.append((name, "</span>"))
        else:
            stack.append(("~" + name, ""))
        return
    if name in ALLOWED_TAGS and name not in _INLINE and not out.raw:
        name = "div"  # a block out of its place (an <li> without a list): a line of its own
        _open(out, name, "", stack)
        return
    if name in ALLOWED_TAGS or name == "img":
        if out.line_start and out.lists and not out.raw:
            out.put("  " * out.items)
        out.put(f"<{name}{_attributes(name, attrs)}>")
        if name not in _VOID:
            stack.append((name, f"</{name}>"))
        return
    if name not in _VOID:
        stack.append(("~" + name, ""))  # unwrapped: its text stays, the tag goes


def _close(out: _Out, name: str, stack: list[tuple[str, str]]) -> None:
    if not any(open_name in (name, "~" + name) for open_name, _ in stack):
        return  # a stray closing tag: browsers ignore it too
    while stack:
        open_name, closer = stack.pop()
        if open_name == "li" and out.lists and not out.raw:
            out.pending = ""
            out.items = max(0, out.items - 1)
        if closer == "\n":
            out.newline()
        elif closer:
            out.put(closer)
        if open_name in _RAW:
            out.raw -= 1
            out.pre -= open_name == "pre"
            if not out.raw and not out.in_item:
                out.newline(blank=True)
            out.in_item = out.in_item and out.raw > 0
        elif open_name in _LISTS and not out.raw and out.lists:
            out.lists.pop()
            out.starts.pop()
            out.newline(blank=not out.lists)
        elif open_name in _LINES and not out.raw:
            out.newline()
        if open_name in (name, "~" + name):  # "~": an unwrapped tag, which changed nothing around it
            return


def _parse_attrs(attrs: str) -> list[tuple[str, str]]:
    found = []
    for match in _ATTR_RE.finditer(attrs):
        value = match.group(2) or ""
        if value[:1] in "\"'":
            value = value[1:-1]
        found.append((match.group(1).lower(), html.unescape(value)))
    return found


def _attributes(name: str, attrs: str) -> str:
    """Write the attributes a card keeps of this tag (the others would be dropped by the build)."""
    allowed = ALLOWED_ATTRIBUTES.get(name, set())
    kept = [(k, v) for k, v in _parse_attrs(attrs) if k in allowed]
    return "".join(f' {k}="{html.escape(v, quote=True)}"' for k, v in kept)


def _text(out: _Out, text: str, links: bool, cloze: bool) -> None:
    """Write text that lies between tags, escaped for where it is."""
    if not text:
        return
    if out.pre:
        escape = _escape_raw(text) if not out.in_item else _escape_markdown(text, links, cloze)
        out.put(escape.replace("\r\n", "\n").replace("\n", "<br>"))
        return
    text = re.sub(r"[ \t\n\r\f]+", " ", text)  # HTML's blanks only: a no-break space is text
    if out.line_start:
        text = text.lstrip(" ")
        if not text:
            return
    if out.raw and not out.in_item:
        out.put(_escape_raw(text))
        return
    if out.item_start:
        text = text.lstrip(" ")
        if not text:
            return
    escaped = _escape_markdown(text, links, cloze)
    if out.item_start:
        escaped = _LINE_START_RE.sub(_defuse_line_start, escaped)
    elif out.line_start:
        escaped = "  " * out.items + _LINE_START_RE.sub(_defuse_line_start, escaped)
    out.put(escaped)


_MD_CHARS = {
    "\\": "\\\\",
    "`": "&#96;",
    "#": "\\#",
    "*": "\\*",
    "$": "\\$",
    "<": "&lt;",
    ">": "&gt;",
    "|": "\\|",
}
_MD_RE = re.compile(r"[\\`*$<>|#]")


def _escape_markdown(text: str, links: bool, cloze: bool) -> str:
    text = _MD_RE.sub(lambda m: _MD_CHARS[m.group()], text)
    if links:
        text = text.replace("[", "&#91;")
    return _defuse_braces(text, cloze)


def _escape_raw(text: str) -> str:
    # Markdown leaves a raw HTML block alone, but deckbuild still reads `$` as math in it.
    text = text.replace("$", "&#36;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"\{\{(?=c)", "{&#123;", text)


def _defuse_braces(text: str, cloze: bool) -> str:
    """Keep `{{c…` from reading as a cloze or a calculation where the note has none."""
    if cloze:
        return re.sub(r"\{\{(?=calc|c(?!\d*::))", r"{\\{", text)
    return re.sub(r"\{\{(?=c)", r"{\\{", text)


def _defuse_line_start(match: re.Match[str]) -> str:
    mark = match.group(2)
    if mark[-1] in ".)":
        return match.group(1) + mark[:-1] + ("\\." if mark[-1] == "." else "&#41;")
    return (
        match.group(1) + {"#": "\\#", "-": "\\-", "+": "\\+", "=": "&#61;", "~": "&#126;", "_": "\\_"}[mark]
    )


# ---------------------------------------------------------------- reading packages


@dataclass
class Package:
    """What a package holds that an import needs: notes, note types by name, media by name."""

    notes: list[Note] = field(default_factory=list)
    shapes: dict[str, Shape | str] = field(default_factory=dict)
    media: dict[str, str] = field(default_factory=dict)  # name -> zip entry
    archive: Path | None = None
    # The note types whose notes keep them, by name; and why others are not kept.
    kept_types: dict[str, NoteType] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)


# The names of deckbuild's own note types, which only its own packages hold notes of.
_DECKBUILDS = frozenset(nt.name for nt in BY_LABEL.values())


def _refuse(path: Path, why: str, todo: str = _TODO_PACKAGE) -> DeckbuildError:
    return DeckbuildError(f"{display_path(path)}: {why}; {todo}")


def _newer(path: Path) -> DeckbuildError:
    return DeckbuildError(f"{display_path(path)}: {_NEWER}")


def read_package(path: Path, tmp: Path) -> Package:
    """Read an .apkg or .colpkg: notes, note types and the media map."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        if ran_out(exc):
            raise
        why = (
            "not a zip file" if isinstance(exc, zipfile.BadZipFile | ValueError) else str(exc.strerror or exc)
        )
        raise _refuse(path, f"not an Anki package ({why})") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ENTRIES:
            raise _refuse(path, f"not an Anki package (a zip of {len(infos):,} files)")
        names = {info.filename: info for info in infos}
        entry = names.get("collection.anki21") or names.get("collection.anki2")
        if entry is None:
            if "collection.anki21b" in names:
                raise _newer(path)
            raise _refuse(path, "not an Anki package (a zip file without a collection in it)")
        if entry.filename == "collection.anki2" and "collection.anki21b" in names:
            raise _newer(path)
        db = tmp / "collection.sqlite"
        _extract(archive, entry, db, MAX_COLLECTION_BYTES, path)
        package = _read_collection(db, path)
        package.media = _media_map(archive, names, path)
    package.archive = path
    return package


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, limit: int, path: Path) -> int:
    """Copy one entry out of the zip, refusing one larger than `limit` however it claims to be."""
    if info.file_size > limit:
        raise _refuse(path, f"{info.filename} is too large ({info.file_size:,} bytes, at most {limit:,})")
    written = 0
    try:
        with archive.open(info) as source, open(target, "xb") as sink:
            while chunk := source.read(1 << 20):
                written += len(chunk)
                if written > limit:
                    raise _refuse(path, f"{info.filename} is too large (more than {limit:,} bytes)")
                sink.write(chunk)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, zipfile.BadZipFile):
            raise cannot_write(target, exc) from None
        raise _refuse(path, f"not an Anki package ({info.filename} cannot be unpacked: {exc})") from None
    return written


def _media_map(archive: zipfile.ZipFile, names: dict[str, zipfile.ZipInfo], path: Path) -> dict[str, str]:
    info = names.get("media")
    if info is None:
        return {}
    if info.file_size > MAX_SOURCE_BYTES:
        raise _refuse(path, f"its media list is too large ({info.file_size:,} bytes)")
    raw = archive.read(info)
    try:
        mapping = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        if raw[:4] == b"\x28\xb5\x2f\xfd":  # zstd: the newer format's media list
            raise _newer(path) from None
        raise _refuse(path, "not an Anki package (its media list is not JSON)") from None
    if not isinstance(mapping, dict):
        raise _refuse(path, "not an Anki package (its media list is not a JSON object)")
    media: dict[str, str] = {}
    for entry, name in sorted(mapping.items()):
        if isinstance(name, str) and isinstance(entry, str) and entry in names and name not in media:
            media[name] = entry
    return media


def _keep(
    package: Package, nid: int, name: str, model: dict[str, object], fields: list[str], shape: Shape
) -> None:
    """Keep a note type its notes can stay on, unless it could run script (then say why)."""
    columns = {"Question": fields[shape.question]}
    if shape.answer is not None:
        columns["Answer"] = fields[shape.answer]
    if shape.reverse_if is not None:
        columns["Reverse"] = fields[shape.reverse_if]
    tmpls = model.get("tmpls")
    templates = sorted(tmpls, key=lambda t: t["ord"]) if isinstance(tmpls, list) else []
    sort_field = model.get("sortf", 0)
    sort_name = fields[sort_field] if isinstance(sort_field, int) and 0 <= sort_field < len(fields) else ""
    entry = {
        "name": name,
        "id": nid,
        "mod": model.get("mod"),
        "type": "cloze" if model.get("type") == 1 else "standard",
        "sort field": sort_name,
        "fields": fields,
        "columns": columns,
        "templates": [{key: t.get(key) for key in ("name", "qfmt", "afmt")} for t in templates],
        "css": model.get("css", ""),
    }
    why: list[str] = []
    nt = kept.from_json(entry, why.append)
    if nt is None:
        package.refused[name] = why[0].removeprefix(f"note type {name!r}: ").split("; ")[0]
    else:
        # Stamped as it came: until a lock knows it, the build checks changes against this.
        package.kept_types[name] = replace(nt, imported=nt.locked)


def _read_collection(db: Path, path: Path) -> Package:
    package = Package()
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error as exc:
        if ran_out(exc):
            raise
        raise _refuse(path, "not an Anki package (its collection cannot be read)") from None
    try:
        # Everything read from the collection is converted here, where a hostile value is a message.
        row = conn.execute("SELECT models, decks FROM col").fetchone()
        models, decks = json.loads(row[0] or "{}"), json.loads(row[1] or "{}")
        deck_names = {int(k): str(v["name"]) for k, v in decks.items()}
        named = Counter(str(model["name"]) for model in models.values())
        shapes: dict[int, tuple[str, Shape | str]] = {}
        for key, model in sorted(models.items()):
            fields = [str(f["name"]) for f in sorted(model["flds"], key=lambda f: f["ord"])]
            templates = [
                (str(t["qfmt"]), str(t["afmt"])) for t in sorted(model["tmpls"], key=lambda t: t["ord"])
            ]
            # Note types are told apart by id: two may share a name, with other fields or templates.
            name = str(model["name"]) if named[str(model["name"])] == 1 else f"{model['name']} (id {key})"
            shape = shape_of(fields, templates, model.get("type") == 1)
            shapes[int(key)] = (name, shape)
            if isinstance(shape, Shape):
                _keep(package, int(key), name, model, fields, shape)
        rows = conn.execute(
            "SELECT n.guid, n.mid, n.flds, n.tags, "
            "(SELECT CASE WHEN c.odid != 0 THEN c.odid ELSE c.did END FROM cards c "
            " WHERE c.nid = n.id ORDER BY c.ord, c.id LIMIT 1), "
            "(SELECT COUNT(DISTINCT CASE WHEN c.odid != 0 THEN c.odid ELSE c.did END) FROM cards c "
            " WHERE c.nid = n.id) "
            "FROM notes n ORDER BY n.id, n.guid"
        ).fetchall()
        for guid, mid, flds, tags, did, in_decks in rows:
            name, shape = shapes.get(int(mid), (f"#{mid}", "its note type is missing from the package"))
            package.shapes[name] = shape
            deck = deck_names.get(did, "Default")
            note = Note(str(guid), name, str(flds).split("\x1f"), str(tags).split(), deck)
            note.decks = int(in_decks or 1)
            package.notes.append(note)
    except (
        sqlite3.Error,
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        IndexError,
        RecursionError,
        OverflowError,
    ) as exc:
        if ran_out(exc):
            raise
        raise _refuse(path, "not an Anki package (its collection cannot be read)") from None
    finally:
        conn.close()
    if len(package.notes) == 1 and _STUB_TEXT in package.notes[0].fields[0].lower():
        raise _newer(path)
    return package


# ---------------------------------------------------------------- reading text exports

_SEPARATORS = {"tab": "\t", "comma": ",", "semicolon": ";", "space": " ", "pipe": "|", "colon": ":"}


def read_text_export(path: Path) -> Package:
    """Read Anki's "Notes in Plain Text" export, with its `#key:value` header lines."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_SOURCE_BYTES + 1)
    except OSError as exc:
        if ran_out(exc):
            raise
        raise _refuse(path, f"cannot read it ({exc.strerror or exc})", "check the path") from None
    shown = display_path(path)
    if len(data) > MAX_SOURCE_BYTES:
        raise DeckbuildError(
            f"{shown}: file too large (at most {MAX_SOURCE_BYTES // 1024 // 1024} MiB); split it"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _refuse(path, "neither an Anki package nor a text export (not UTF-8 text)") from None
    if "\x00" in text:
        raise _refuse(path, "neither an Anki package nor a text export (a binary file)")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    headers: dict[str, str] = {}
    body_start = 0
    for n, header in enumerate(lines):
        if not header.startswith("#"):
            break
        key, colon, value = header[1:].partition(":")
        if colon:
            headers[key.strip().lower()] = value.strip()
        body_start = n + 1
    sep = headers.get("separator", "tab")
    sep = _SEPARATORS.get(sep.lower(), sep)
    if len(sep) != 1:
        raise DeckbuildError(
            f"{shown}:1: unknown separator {headers['separator']!r}; use tab, comma or semicolon"
        )

    def column(key: str) -> int | None:
        value = headers.get(f"{key} column")
        if value is None:
            return None
        if not value.isdigit() or int(value) < 1:
            raise DeckbuildError(f"{shown}:1: '#{key} column:{value}' is not a column number; fix that line")
        return int(value) - 1

    guid_col = column("guid")
    if guid_col is None:
        raise DeckbuildError(
            f"{shown}:1: no '#guid column:' header, so learners' notes could not be matched; "
            "export the notes from Anki again with 'Include unique identifier' ticked"
        )
    type_col, deck_col, tags_col = column("notetype"), column("deck"), column("tags")
    if type_col is None and not headers.get("notetype"):
        # Without it a reversed or type-in note reads as a basic one: its other cards would go.
        raise DeckbuildError(
            f"{shown}:1: no '#notetype column:' header, so reversed and type-in notes could not be "
            "told from basic ones; export the notes from Anki again with 'Include notetype name' ticked"
        )
    as_html = headers.get("html", "false").lower() == "true"
    package = Package()
    reader = csv.reader(
        [line + "\n" for line in lines[body_start:]], delimiter=sep, quotechar='"', strict=False
    )
    fixed_type, fixed_deck = headers.get("notetype"), headers.get("deck", path.stem)
    try:
        ended = 0
        for values in reader:
            line, ended = body_start + ended + 1, reader.line_num  # a row's first line, for messages
            if not any(v.strip() for v in values):
                continue
            if guid_col >= len(values) or not values[guid_col].strip():
                raise DeckbuildError(
                    f"{shown}:{line}: no GUID in column {guid_col + 1}; export the notes again"
                )
            special = {c for c in (guid_col, type_col, deck_col, tags_col) if c is not None}
            fields = [v for n, v in enumerate(values) if n not in special]
            while len(fields) > 2 and not fields[-1]:
                fields.pop()
            if not as_html:
                fields = [html.escape(f, quote=False).replace("\n", "<br>") for f in fields]
            notetype = values[type_col] if type_col is not None and type_col < len(values) else fixed_type
            notetype = notetype or "(none)"
            deck = values[deck_col] if deck_col is not None and deck_col < len(values) else fixed_deck
            tags = values[tags_col].split() if tags_col is not None and tags_col < len(values) else []
            tags += headers.get("tags", "").split()
            package.notes.append(Note(values[guid_col].strip(), notetype, fields, tags, deck, line))
            package.shapes.setdefault(
                notetype,
                STOCK.get(notetype, "deckbuild knows only Anki's stock note types by name in a text export"),
            )
            # Named, never held: notes with the same GUIDs in a collection keep their own note
            # type, which Anki will not change on import (it skips them as conflicting).
            package.refused.setdefault(notetype, "a text export names its note types but does not hold them")
    except csv.Error as exc:
        raise DeckbuildError(
            f"{shown}:{body_start + reader.line_num}: cannot read this row ({exc}); fix it"
        ) from None
    return package


# ---------------------------------------------------------------- writing sources


class ImportRefused(DeckbuildError):
    """An import that wrote nothing, with the warnings found on the way (which say why)."""

    def __init__(self, message: str, report: Report) -> None:
        super().__init__(message)
        self.report = report


def import_deck(path: Path, out: Path) -> Imported:
    """Read the Anki deck at `path` and write its sources into the new or empty folder `out`."""
    # A `..` after a link goes up from where it leads; the folder itself may not be a link.
    given = Path(out)
    if given.name in ("", ".", ".."):
        out = Path(os.path.realpath(given))
    else:
        out = Path(os.path.realpath(given.parent)) / given.name
    result = Imported(out)
    _check_output(out)
    if not is_regular(path):  # a FIFO or a device is never opened: reading it could wait forever
        try:
            why = f"not a regular file but {file_kind(os.stat(path).st_mode)}"
        except OSError as exc:
            why = str(exc.strerror or exc)
        raise _refuse(path, f"cannot read it ({why})", "give the file Anki exported")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        unpacked = tempfile.TemporaryDirectory(prefix=TEMP_PREFIX, dir=out if out.exists() else out.parent)
    except OSError as exc:
        raise cannot_write(out, exc) from None
    try:
        with unpacked as tmp:
            package = (
                read_package(path, Path(tmp))
                if zipfile.is_zipfile(path) or path.suffix.lower() in (".apkg", ".colpkg")
                else read_text_export(path)
            )
            if not package.notes:
                raise _refuse(path, "holds no notes", "export the deck with its notes")
            if all(note.notetype in _DECKBUILDS for note in package.notes):
                raise _refuse(
                    path,
                    "a package deckbuild built, whose cards' sources are the files it was built from",
                    "build from those (kept in git); import only decks made in Anki",
                )
            files = _plan(package, path, result.report)
            result.notes = sum(len(rows) for rows, _ in files.values())
            if not result.notes:
                why = "holds no note deckbuild can represent (the warnings say why)"
                raise _refuse(path, why, "nothing was written")
            _write(files, package, out, result)
    except DeckbuildError as exc:
        if result.report.problems and not isinstance(exc, ImportRefused):
            raise ImportRefused(str(exc), result.report) from None
        raise
    return result


def _plan(
    package: Package, path: Path, report: Report
) -> dict[tuple[str, ...], tuple[list[Row], list[Note]]]:
    """Group the rows by deck folder; report every note that cannot come along, by note type."""
    shown = display_path(path)
    files: dict[tuple[str, ...], tuple[list[Row], list[Note]]] = {}
    unfit: Counter[tuple[str, str]] = Counter()
    dropped: Counter[str] = Counter()
    sound = controls = 0
    seen: dict[str, int] = {}
    owned: Counter[str] = Counter()
    for note in package.notes:
        where = f"{shown}:{note.line}" if note.line else shown
        if not _GUID_RE.fullmatch(note.guid):
            report.warn(
                where,
                0,
                f"note {note.guid!r} has a GUID deckbuild cannot keep; not imported",
            )
            continue
        if note.guid in seen:
            report.warn(where, 0, f"GUID {note.guid} appears twice; only its first note is imported")
            continue
        seen[note.guid] = 1
        shape = package.shapes.get(note.notetype)
        if not isinstance(shape, Shape):
            unfit[(note.notetype, shape or "unknown note type")] += 1
            continue
        if any(UNSAFE_RE.search(text) for text in note.fields):
            # Anki drops these itself on import; deckbuild refuses them in a source.
            note.fields = [UNSAFE_RE.sub("", text) for text in note.fields]
            controls += 1
        row = to_row(note, shape)
        if isinstance(row, str):
            unfit[(note.notetype, row)] += 1
            continue
        if note.notetype in package.kept_types:
            row.notetype = note.notetype
        if row.tags and (own := [t for t in row.tags.split() if own_tag(t)]):
            # The build refuses them in a source (it sets them itself): the note comes along without.
            row.tags = " ".join(t for t in row.tags.split() if not own_tag(t))
            owned.update(own)
        for text in note.fields:
            dropped.update(dropped_tags(text))
            sound += "[sound:" in text
        if note.decks > 1:
            # A reversed note's cards may sit in two decks; a row has one, so its cards move.
            report.warn(
                shown, 0, f"note {note.guid}: its cards are in {note.decks} decks; all go to {note.deck!r}"
            )
        folder = deck_folders(note.deck)
        if folder not in files and "::".join(folder) != note.deck:
            # A deck name no folder can carry as it is: new learners get the folders' name.
            report.warn(shown, 0, f"deck {note.deck!r} is written as folder {'/'.join(folder)!r}{_NEW_DECK}")
        files.setdefault(folder, ([], []))[0].append(row)
        files[folder][1].append(note)
    for (notetype, why), count in sorted(unfit.items()):
        report.warn(shown, 0, f"note type {notetype!r}: {count} note(s) not imported: {why}")
    used = {note.notetype for rows, notes in files.values() for note in notes}
    for notetype, why in sorted(package.refused.items()):
        if notetype in used:
            report.warn(
                shown,
                0,
                f"note type {notetype!r} is not kept ({why}): its notes get deckbuild's note types, "
                "which learners who have them change once by hand",
            )
    if dropped:
        names = ", ".join(f"<{name}> ×{n}" for name, n in sorted(dropped.items()))
        report.warn(
            shown,
            0,
            f"left out of the fields, with what they held: {names} (cards run no script)",
        )
    if owned:
        names = ", ".join(f"{tag} ×{n}" for tag, n in sorted(owned.items()))
        report.warn(
            shown, 0,
            f"tags deckbuild sets itself left out of the Tags column: {names}; each card gets its own "
            "kind:: and source:: tags (rename yours in Anki first to keep them)",
        )  # fmt: skip
    if controls:
        report.warn(shown, 0, f"{controls} note(s) held control characters Anki does not keep; removed")
    if sound:
        report.warn(
            shown,
            0,
            f"{sound} note(s) play sound ([sound:…]), which deckbuild does not package; it stays as text",
        )
    return files


# Anki keeps a studied card in its deck when an import updates its note: the renamed deck is new.
_NEW_DECK = "; learners who studied it keep their cards where they are and get a new, empty deck of that name"
_BAD_PART_RE = re.compile(r"[\x00-\x1f\x7f/\\]")


def deck_folders(deck: str) -> tuple[str, ...]:
    """Turn an Anki deck name into folder names, one a level, that deckbuild reads back as it."""
    parts = []
    for part in deck.split("::"):
        name = _BAD_PART_RE.sub("_", part).strip()
        if not name or name.startswith(".") or name in (".", ".."):
            name = "_" + name
        parts.append(name)
    return tuple(parts)


def _check_output(out: Path) -> None:
    if out.is_symlink():
        raise DeckbuildError(f"{display_path(out)}: is a symbolic link; give a new or empty folder with -o")
    if out.exists():
        if not out.is_dir():
            raise DeckbuildError(f"{display_path(out)}: is a file; give a new or empty folder with -o")
        if any(out.iterdir()):
            raise DeckbuildError(
                f"{display_path(out)}: already holds files, which an import never writes over; "
                "give a new or empty folder with -o"
            )


def _write(
    files: dict[tuple[str, ...], tuple[list[Row], list[Note]]], package: Package, out: Path, result: Imported
) -> None:
    """Write every file into a temporary folder beside `out`, check it builds, then move it into place."""
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        # An existing (empty) folder may be the working directory: fill it rather than replace it.
        staging = temp_name(out if out.exists() else parent).absolute()
        staging.mkdir()
    except OSError as exc:
        raise cannot_write(out, exc) from None
    try:
        folders = _unique_folders(sorted(files), result.report, display_path(package.archive or out))
        taken: dict[Path, set[str]] = {}
        _write_kept(files, package, folders, staging)
        for deck in sorted(files):
            # Every deck folder first: an image is never given the name a subdeck's folder needs.
            staging.joinpath(*folders[deck]).mkdir(parents=True, exist_ok=True)
        written: dict[tuple[str, ...], list[Row]] = {}
        for deck in sorted(files):
            rows, notes = files[deck]
            folder = staging.joinpath(*folders[deck])
            names = taken.setdefault(folder, {CARDS_FILE, *(p.name.lower() for p in folder.iterdir())})
            images = _images_of(rows, notes, package, folder, names, result)
            written[deck] = [_with_images(r, images) for r in rows]
        _vet(written, folders, staging, result)
        for deck in sorted(written):
            for name, _ in _split(written[deck]):
                result.files.append(out.joinpath(*folders[deck], name))
        for path in sorted(staging.rglob("*")):
            if path.is_dir():
                sync_folder(path)
        if out.exists():
            for path in sorted(staging.iterdir()):
                os.rename(path, out / path.name)
            staging.rmdir()
            sync_folder(out)
        else:
            os.rename(staging, out)
        sync_folder(parent)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise cannot_write(out, exc) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _write_kept(
    files: dict[tuple[str, ...], tuple[list[Row], list[Note]]],
    package: Package,
    folders: dict[tuple[str, ...], tuple[str, ...]],
    staging: Path,
) -> None:
    """Write the note types each top deck's rows keep into its folder's notetypes.json."""
    used: dict[str, set[str]] = {}
    for deck, (rows, _) in files.items():
        used.setdefault(folders[deck][0], set()).update(r.notetype for r in rows if r.notetype)
    for top, names in sorted(used.items()):
        if names:
            (staging / top).mkdir(parents=True, exist_ok=True)
            text = kept.dumps([package.kept_types[name] for name in sorted(names)])
            (staging / top / kept.FILE_NAME).write_bytes(text.encode("utf-8"))


_HELPED_ROWS = 2000
# A source stays this far below the build's limit on a file, so that a row never tips it over.
_FILE_BUDGET = MAX_SOURCE_BYTES - 64 * 1024
_CARDS_NAME_RE = re.compile(r"cards(?:-\d+)?\.txt", re.I)


def _split(rows: list[Row]) -> list[tuple[str, list[Row]]]:
    """Share a deck's rows among cards.txt, cards-2.txt, … so that none passes the size limit."""
    header = len("Question;Answer;GUID;Tags;Reverse\n")  # the most a header takes
    chunks: list[list[Row]] = [[]]
    size = header
    for row in rows:
        grows = _row_bytes(row)
        if chunks[-1] and size + grows > _FILE_BUDGET:
            chunks.append([])
            size = header
        chunks[-1].append(row)
        size += grows
    return [
        (CARDS_FILE if n == 0 else f"cards-{n + 1}.txt", chunk) for n, chunk in enumerate(chunks) if chunk
    ]


def _row_bytes(row: Row) -> int:
    """Tell the most a row takes in a file (with an empty Tags and Reverse cell its file may need)."""
    return len(write_rows([row]).split("\n", 1)[1].encode("utf-8")) + 2


def _write_sources(folder: Path, rows: list[Row]) -> dict[tuple[str, int], str]:
    """Write a deck's rows into its folder; return each row's GUID by (file, first line)."""
    for stale in folder.iterdir():
        if _CARDS_NAME_RE.fullmatch(stale.name) and stale.is_file():
            stale.unlink()
    where: dict[tuple[str, int], str] = {}
    for name, chunk in _split(rows):
        path = folder / name
        text, lines = write_rows(chunk), 2
        for row in chunk:
            where[(display_path(path), lines)] = row.guid
            lines += write_rows([row]).count("\n") - 1
        path.write_bytes(text.encode("utf-8"))
    return where


def _vet(
    written: dict[tuple[str, ...], list[Row]],
    folders: dict[tuple[str, ...], tuple[str, ...]],
    staging: Path,
    result: Imported,
) -> None:
    """Run the build's own checks on the written sources; leave out, and report, every note it refuses.

    Leaving a row out never breaks another, so this ends once no error is left.
    """
    from deckbuild import cache
    from deckbuild.build import no_cycle_collection, start_helpers
    from deckbuild.memo import Memo

    # As `deckbuild check` does it: helpers render on every core; a memo kept in memory only
    # spares the rounds after the first rendering a row again.
    rows = sum(len(r) for r in written.values())
    # Helpers pay off on a large deck only: starting them costs more than a few hundred rows.
    with (
        no_cycle_collection(),
        start_helpers((os.cpu_count() or 1) if rows > _HELPED_ROWS else 1) as helping,
    ):
        _vet_rounds(written, folders, staging, result, Memo(cache.Cache(None)), helping)


def _vet_rounds(
    written: dict[tuple[str, ...], list[Row]],
    folders: dict[tuple[str, ...], tuple[str, ...]],
    staging: Path,
    result: Imported,
    memo: Memo,
    helping: Helpers,
) -> None:
    from deckbuild.build import vet

    shown = display_path(result.out)
    left_out = 0
    for deck, rows in sorted(written.items()):
        for row in rows:
            if _row_bytes(row) > _FILE_BUDGET:
                result.report.warn(shown, 0, f"note {row.guid} left out: too large for one source file")
                left_out += 1
        written[deck] = [row for row in rows if _row_bytes(row) <= _FILE_BUDGET]
    while any(written.values()):
        where: dict[tuple[str, int], tuple[tuple[str, ...], str]] = {}
        for deck in sorted(written):
            for key, guid in _write_sources(staging.joinpath(*folders[deck]), written[deck]).items():
                where[key] = (deck, guid)
        report = Report()
        vet([staging], report, memo, helping)
        refused: dict[tuple[str, ...], dict[str, str]] = {}
        for problem in report.errors:
            found = where.get((problem.path, problem.line))
            if found is None:
                raise DeckbuildError(
                    f"{shown}: the sources written would not build ({problem.message}); nothing was written"
                )
            refused.setdefault(found[0], {}).setdefault(found[1], problem.message)
        if not refused:
            break
        for deck, guids in sorted(refused.items()):
            for guid, why in sorted(guids.items()):
                result.report.warn(shown, 0, f"note {guid} left out: the build refuses it: {why}")
            left_out += len(guids)
            written[deck] = [row for row in written[deck] if row.guid not in guids]
    for deck in [d for d, rows in written.items() if not rows]:
        _write_sources(staging.joinpath(*folders[deck]), [])
        del written[deck]
    if left_out:
        result.report.warn(shown, 0, f"{left_out} note(s) left out, as the build would refuse them")
    result.notes -= left_out
    if not result.notes:
        raise DeckbuildError(f"{shown}: no note could be written so that it builds (the warnings say why)")


def _unique_folders(
    decks: list[tuple[str, ...]], report: Report, shown: str
) -> dict[tuple[str, ...], tuple[str, ...]]:
    """Give every deck a folder; two that one file system could not tell apart get numbered."""
    chosen: dict[tuple[str, ...], tuple[str, ...]] = {}
    used: dict[tuple[str, ...], set[str]] = {}
    for deck in decks:
        path: tuple[str, ...] = ()
        for n, part in enumerate(deck):
            prefix = deck[: n + 1]
            if prefix in chosen:
                path = chosen[prefix]
                continue
            siblings = used.setdefault(path, {CARDS_FILE})
            name, k = part, 1
            while name.lower() in siblings or _CARDS_NAME_RE.fullmatch(name):  # a split deck's file
                k += 1
                name = f"{part} {k}"
            if name != part:
                report.warn(
                    shown,
                    0,
                    f"deck {'::'.join(prefix)!r} is written as folder {name!r}, as {part!r} was taken"
                    + _NEW_DECK,
                )
            siblings.add(name.lower())
            path = (*path, name)
            chosen[prefix] = path
    return chosen


_IMG_SRC_RE = re.compile(r'(<img\b[^>]*?\bsrc=")([^"]*)(")')


def _images_of(
    rows: list[Row], notes: list[Note], package: Package, folder: Path, names: set[str], result: Imported
) -> dict[str, str]:
    """Extract the images this deck's rows show into its folder; return their new names by old name."""
    wanted = sorted(
        {
            html.unescape(m.group(2))
            for r in rows
            for t in (r.question, r.answer)
            for m in _IMG_SRC_RE.finditer(t)
        }
    )
    placed: dict[str, str] = {}
    if package.archive is None:
        return placed
    shown = display_path(package.archive)
    # Fields lost their control characters (`_plan`); media names keep them until made safe here.
    by_clean = {UNSAFE_RE.sub("", name): name for name in sorted(package.media, reverse=True)}
    with zipfile.ZipFile(package.archive) as archive:
        for reference in wanted:
            original = reference if reference in package.media else by_clean.get(reference, reference)
            entry = package.media.get(original)
            if entry is None:
                continue  # a web address, or a file the package lacks: the build says so
            suffix = Path(original).suffix.lower()
            if suffix not in IMAGE_SUFFIXES:
                result.report.warn(
                    shown,
                    0,
                    f"media file {original!r} is not an image deckbuild packages; not extracted",
                )
                # Left pointing at no file (the build warns of a missing image), never at one of ours.
                placed[reference] = "not-extracted-" + _safe_media_name(original, suffix)
                continue
            name = _safe_media_name(original, suffix)
            stem, k = name[: -len(suffix)] if suffix else name, 1
            while name.lower() in names:
                k += 1
                name = f"{stem}-{k}{suffix}"
            if name != original:
                result.report.warn(
                    shown,
                    0,
                    f"media file {original!r} is written as {name!r} (a safe, free name)",
                )
            info = archive.getinfo(entry)
            if info.file_size > MAX_MEDIA_BYTES or result.media_bytes + info.file_size > MAX_MEDIA_TOTAL:
                result.report.warn(
                    shown,
                    0,
                    f"media file {original!r} is too large ({info.file_size:,} bytes); left out",
                )
                placed[reference] = "not-extracted-" + name
                continue
            result.media_bytes += _extract(archive, info, folder / name, MAX_MEDIA_BYTES, package.archive)
            names.add(name.lower())
            placed[reference] = name
            result.media += 1
    return placed


def _safe_media_name(name: str, suffix: str) -> str:
    """Make a media name one plain file name: no folders, no control characters, not hidden."""
    base = re.sub(r"[\x00-\x1f\x7f/\\:*?\"<>|]", "_", name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]).strip()
    if base.startswith("."):
        base = "_" + base.lstrip(".")
    if base in ("", "_") or base == "_" + suffix.lstrip("."):
        base = "media" + suffix
    return base[-120:] if len(base) > 120 else base


def _with_images(row: Row, images: dict[str, str]) -> Row:
    if not images:
        return row

    def swap(match: re.Match[str]) -> str:
        new = images.get(html.unescape(match.group(2)))
        return (
            match.group(0) if new is None else match.group(1) + html.escape(new, quote=True) + match.group(3)
        )

    return Row(
        _IMG_SRC_RE.sub(swap, row.question),
        _IMG_SRC_RE.sub(swap, row.answer),
        row.guid,
        row.tags,
        row.reverse,
        row.notetype,
    )


# ---------------------------------------------------------------- the semicolon writer


def quote(value: str) -> str:
    """Write one field so that the semicolon reader reads it back exactly."""
    if value and not re.search(r'[;"\n\r]', value):
        return value
    return '"' + value.replace('"', '""') + '"' if value else ""


def write_rows(rows: list[Row]) -> str:
    """Write rows as a semicolon file with a GUID column, and the optional columns some row needs."""
    columns = ["Question", "Answer", "GUID"]
    tags = any(r.tags for r in rows)
    reverse = any(r.reverse for r in rows)
    notetype = any(r.notetype for r in rows)
    columns += ["Tags"] * tags + ["Reverse"] * reverse + ["Notetype"] * notetype
    lines = [";".join(columns)]
    for row in rows:
        cells = [quote(row.question), quote(row.answer), quote(row.guid)]
        if tags:
            cells.append(quote(row.tags))
        if reverse:
            cells.append("yes" if row.reverse else "")
        if notetype:
            cells.append(quote(row.notetype))
        lines.append(";".join(cells))
    return "\n".join(lines) + "\n"
