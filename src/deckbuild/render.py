"""Render card text as Anki will show it: Markdown, protected LaTeX, highlighted code, safe HTML."""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, cast
from urllib.parse import unquote

from deckbuild.errors import Report, Severity
from deckbuild.limits import CODE_SCANNED, field_problem
from deckbuild.notetype import notetype_of
from deckbuild.resources import ran_out

if TYPE_CHECKING:
    from collections.abc import Callable

    from deckbuild.models import CardBase, Option, Step


class _Deferred:
    """A pattern compiled on its first use, which then takes its name's place in this module.

    A build whose cards are all remembered renders nothing: compiling every pattern at import
    cost it milliseconds for nothing. A helper that renders compiles them as it warms up.
    """

    __slots__ = ("args", "name")

    def __init__(self, name: str, pattern: str, flags: int) -> None:
        self.name, self.args = name, (pattern, flags)

    def __getattr__(self, attr: str) -> Any:
        return getattr(_compiled(self.name), attr)


def _deferred(name: str, pattern: str, flags: int = 0) -> re.Pattern[str]:
    return cast("re.Pattern[str]", _Deferred(name, pattern, flags))


def _compiled(name: str) -> re.Pattern[str]:
    value = globals()[name]
    if isinstance(value, _Deferred):
        value = globals()[name] = re.compile(*value.args)
    return cast("re.Pattern[str]", value)


def compile_patterns() -> None:
    """Compile every pattern rendering uses, before the first card (as a helper warms up)."""
    for name, value in list(globals().items()):
        if isinstance(value, _Deferred):
            _compiled(name)


# Private-use characters: Markdown and the sanitizer leave them alone. A text that holds them
# gets placeholders made of others it does not hold, so author text is never taken for one.
_PH_OPEN, _PH_CLOSE = "\ue000", "\ue001"
_PH_RE = re.compile(f"{_PH_OPEN}(\\d+){_PH_CLOSE}")
_PRIVATE_RE = _deferred("_PRIVATE_RE", "[\ue000-\uf8ff\U000f0000-\U0010fffd]")
# E000–E003 are the fixed marks below (placeholders, code, <br> in code spans).
_PRIVATE_RANGES = ((0xE004, 0xF900), (0xF0000, 0xFFFFE), (0x100000, 0x10FFFE))

# fmt: off
ALLOWED_TAGS = frozenset("""
    a abbr b blockquote br code dd del div dl dt em h1 h2 h3 h4 h5 h6 hr i img kbd li mark ol p
    pre s small span strong sub sup table tbody td tfoot th thead tr u ul
""".split())  # noqa: SIM905
# fmt: on
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"align", "colspan", "rowspan"},
    "th": {"align", "colspan", "rowspan"},
    "ol": {"start"},
    "div": {"style"},
    "span": {"style"},
    "pre": {"style"},
    "code": {"style"},
}
# Only presentational properties: Pygments' inline colours, nothing that can position or load.
ALLOWED_STYLES = frozenset(
    ("color", "background", "background-color", "font-weight", "font-style", "text-decoration", "line-height")
)
URL_SCHEMES = frozenset(("http", "https", "mailto"))
# A link must say where it goes: a relative one would open a file of Anki's own media server.
_LINK_RE = _deferred("_LINK_RE", r"(?i)^(?:https?://|mailto:)")
_HREF_RE = _deferred("_HREF_RE", r' href="([^"]*)"')
# A style value may hold words, numbers, lengths and #colours: no function such as url() or
# expression(), no escape, no quote; and no colour a reader cannot see.
_STYLE_ATTR_RE = _deferred("_STYLE_ATTR_RE", r' style="([^"]*)"')
_STYLE_VALUE_RE = _deferred("_STYLE_VALUE_RE", r"^[\w\s#.,%-]*$")
_ZERO_RE = _deferred("_ZERO_RE", r"^\s*[0.]+\s*(?:[a-z]+|%)?\s*$", re.I)
_INVISIBLE_RE = _deferred("_INVISIBLE_RE", r"(?i)\btransparent\b|#(?:[0-9a-f]{4}|[0-9a-f]{8})\b")
# A tag as the sanitizer writes it: attribute values always in double quotes, `"` escaped.
_TAG_RE = _deferred("_TAG_RE", r'<(/?)([A-Za-z][A-Za-z0-9]*)(?:[^>"]|"[^"]*")*>')
# Anki plays or loads `[sound:…]` and `[anki:…]` found anywhere in a card's HTML.
_AV_RE = _deferred("_AV_RE", r"(?i)\[(?=sound:|anki:)")
CODE_STYLE = "friendly"

_CODE_RE = _deferred(
    "_CODE_RE", r"(?ms)^[ \t]*(`{3,}|~{3,})[^\n]*\n.*?^[ \t]*\1[ \t]*$|(`+)(?!`)(.+?)(?<!`)\2(?!`)"
)
_INLINE_LANG_RE = _deferred("_INLINE_LANG_RE", r"^#!([\w+-]+)\s+(.+)$", re.S)
# A lone space after a <br> (`a<br> - b`) goes with it; two or more indent the next line. Blanks
# before one are taken from where their run starts (from inside a run, each try rescanned it:
# quadratic), or none right after a <br> that took the lone space (`<br> <br>`).
_BR_RE = _deferred("_BR_RE", r"(?:(?<![ \t])[ \t]*|(?<=[ \t]))<br\s*/?>(?:[ \t](?![ \t]))?", re.IGNORECASE)
# A one- or two-backtick code span on one line that holds a <br>.
_SPAN_BR_RE = _deferred(
    "_SPAN_BR_RE", r"(?<!`)(`{1,2})(?!`)[^\n]*?<br\s*/?>[^\n]*?(?<!`)\1(?!`)", re.IGNORECASE
)
# A list item (unordered, or ordered from 1 as CommonMark lets interrupt text), and a code fence.
_ITEM_LINE_RE = _deferred("_ITEM_LINE_RE", r"(?m)^ *(?:[-*+]|\d{1,9}[.)]) ")
_FENCE_RE = _deferred("_FENCE_RE", r"^ {0,3}(`{3,}|~{3,})")
_COMMAND_RE = _deferred("_COMMAND_RE", r"\\([A-Za-z]+)")
_MATH_START_RE = _deferred("_MATH_START_RE", r"\\.|\$")
# Text that Markdown would leave as it is: no markup characters, no block syntax at a line start.
_NOT_PLAIN_RE = _deferred("_NOT_PLAIN_RE", r"[*_`#\[\]!<>&\\|~\u00a0\t]|^\s|\s$|^[-+=]|^\d+[.)]", re.M)
_MARKUP_CHAR_RE = _deferred("_MARKUP_CHAR_RE", r"[*_`#\[\]!<>&\\|~\u00a0\t]")
_LINE_EDGE_RE = _deferred("_LINE_EDGE_RE", r"^\s|\s$|^[-+=]|^\d+[.)]", re.M)


def _not_plain(text: str) -> bool:
    """Tell whether _NOT_PLAIN_RE finds anything in a non-empty text, at a fraction of its cost.

    Its alternatives tried at every character cost more than a scan for the characters alone;
    on one line, its line starts and ends are the text's first and last characters.
    """
    if _MARKUP_CHAR_RE.search(text):
        return True
    if "\n" in text:
        return _LINE_EDGE_RE.search(text) is not None
    first = text[0]
    if first.isspace() or text[-1].isspace() or first in "-+=":
        return True
    return first.isdecimal() and _LINE_EDGE_RE.match(text) is not None


# One-backtick code spans on one line; what Markdown would treat differently stays with Markdown.
_SPAN_RE = _deferred("_SPAN_RE", r"`([^`\n]+)`")
# (`&#0` too: Markdown ends a numeric reference in code with a ';' it adds, `&amp;#0;`.)
_CODE_UNSAFE_RE = _deferred("_CODE_UNSAFE_RE", r"[\t\u00a0\x00-\x08\x0b-\x1f\x7f]|&#")
_CODE_MARK = "\ue002"
# An escape (two characters, skipped whole) or any character but a brace: what `_balanced` drops.
_NOT_BRACE_RE = _deferred("_NOT_BRACE_RE", r"\\.?|[^{}\\]+", re.S)
# Commands that come in pairs: (opener, closer, a pattern for each).
_PAIRS = tuple(
    (f"\\{a}", f"\\{b}", re.compile(rf"\\{a}(?![A-Za-z])"), re.compile(rf"\\{b}(?![A-Za-z])"))
    for a, b in (("left", "right"), ("begin", "end"))
)
# A TeX token as MathJax reads one: a control word, a control symbol, or one character.
_TOKEN_RE = _deferred("_TOKEN_RE", r"\\(?:([A-Za-z]+)|([()\[\]])|.)", re.S)
_MORE = "a macro, which can build any command out of harmless pieces"
# What MathJax in Anki would make of commands its "safe" extension exists to filter (Anki does
# not load it): refused outright, whatever their case. Each with what it does and what to do.
UNSAFE_MATH = {
    "href": ("a link that can run script", "write the link outside the formula as [text](https://…)"),
    "url": ("a link", "write the link outside the formula as [text](https://…)"),
    "class": ("an element with any CSS class", "remove it"),
    "cssid": ("an element with any id", "remove it"),
    "style": ("an element with any CSS style, even one covering the screen", "remove it; use \\color"),
    "data": ("an element with any data attributes", "remove it"),
    "unicode": ("a character in any font", "write the character itself"),
    "require": ("a MathJax extension loaded while the card shows", "remove it"),
    "mmltoken": ("a MathML element with any attributes", "remove it"),
    "setoptions": ("changed MathJax settings", "remove it"),
    "csname": ("a command named by text", "write the command itself"),
    **dict.fromkeys(
        ("def", "gdef", "edef", "xdef", "let", "futurelet", "global", "newcommand", "renewcommand",
         "providecommand", "newenvironment", "renewenvironment", "newextarrow"),
        (_MORE, "write the formula out in full"),
    ),
}  # fmt: skip
# What `_safe_math` could refuse, found by a look for text it needs (more than it refuses: a
# command's name as a longer word's start, a delimiter after an escaped backslash): a formula
# with none of it, nearly every one, is passed without reading its tokens.
_MAY_BE_UNSAFE_RE = _deferred(
    "_MAY_BE_UNSAFE_RE",
    r"\\[()\[\]]|\\\Z|(?i:\\(?:" + "|".join([*UNSAFE_MATH, "bbox", "enclose"]) + "))",
)
# \bbox[…] and \enclose{…}[…] take options; a style (`:`) or an attribute (`=`) is refused.
_OPTIONS_RE = _deferred(
    "_OPTIONS_RE", r"\\(bbox|enclose)(?![A-Za-z])\s*(\{[^{}\\]*\}\s*)?(\[[^\]:=;{}\\]*\])?(.?)", re.S | re.I
)
# fmt: off
_MATHML_TAGS = frozenset("""
    math semantics annotation mrow mi mn mo ms mtext mspace msub msup msubsup mfrac msqrt mroot mstyle
    merror mpadded mphantom mfenced menclose munder mover munderover mtable mtr mtd mlabeledtr
    mmultiscripts mprescripts none maction
""".split())  # noqa: SIM905
# fmt: on
_BARE_AMP_RE = _deferred("_BARE_AMP_RE", r"&(?!#?\w+;)")
_MATHML_UNSAFE = frozenset(("href", "style", "class", "id", "src", "actiontype"))
_STRAY_SPACE_RE = _deferred(
    "_STRAY_SPACE_RE", r"\\ (text|mathbf|mathrm|frac|sqrt|left|right|cdot|sum|dots)\b"
)
_IMG_SRC_RE = _deferred("_IMG_SRC_RE", r'(<img\b[^>]*?\bsrc=")([^"]*)(")')
_IMG_TAG_RE = _deferred("_IMG_TAG_RE", r"<img\b[^>]*>")
# Characters of a formula quoted in a message.
MAX_SHOWN_FORMULA = 120
# The largest image a card may show (AnkiWeb syncs no media file over 100 MB).
MAX_MEDIA_BYTES = 100 * 1024 * 1024
_MOJIBAKE_RE = _deferred(
    "_MOJIBAKE_RE",
    "[\u0080-\u00ff\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013\u2014"
    "\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]{2,}",
)


@dataclass(slots=True)
class Where:
    """Where a piece of text comes from: for messages, and to find the images it names."""

    path: str
    line: int
    folder: Path | None = None
    root: Path | None = None
    media: dict[str, Path] = field(default_factory=dict, compare=False, hash=False)
    # Local images named but left out (not found, too large, unreadable), as named (through any
    # link): the memo renders their cards again, and no record or patch answers once one is there.
    missing: list[Path] = field(default_factory=list, compare=False, hash=False)
    # Images shown that their path as named reaches only through a link or a `..`, with the file
    # it reached: a link retargeted since leads elsewhere, and the memo and the record look again.
    linked: list[tuple[Path, Path]] = field(default_factory=list, compare=False, hash=False)


class Math(NamedTuple):
    """A formula found in text, with its delimiters as Anki's MathJax wants them."""

    body: str
    display: bool

    def html(self) -> str:
        # Only < and > are escaped: enough to keep markup out, and & stays as authors wrote it.
        body = self.body.replace("<", "&lt;").replace(">", "&gt;")
        return f"\\[{body}\\]" if self.display else f"\\({body}\\)"


@dataclass(slots=True)
class _Held:
    """Pieces taken out of the text before Markdown and put back, as HTML, after sanitizing."""

    html: list[str] = field(default_factory=list)
    # What each piece was in the source: put back, escaped, where a piece lands inside a tag.
    sources: list[str] = field(default_factory=list)
    formulas: list[Math] = field(default_factory=list)
    opener: str = _PH_OPEN
    closer: str = _PH_CLOSE
    pattern: re.Pattern[str] = _PH_RE

    @classmethod
    def for_text(cls, text: str, where: Where, report: Reports) -> tuple[str, _Held]:
        """Make placeholders from private-use characters the text does not hold, even as `&#xE000;`."""
        # The sanitizer writes character references out as the characters they stand for.
        seen = html.unescape(text) if "&" in text else text
        if seen.isascii() or not _PRIVATE_RE.search(seen):
            return text, cls()
        used = set(_PRIVATE_RE.findall(seen))
        free = (chr(c) for low, high in _PRIVATE_RANGES for c in range(low, high) if chr(c) not in used)
        opener, closer = next(free, None), next(free, None)
        if opener is None or closer is None:
            report.error(where.path, where.line, "too many private-use characters; remove them")
            return _PRIVATE_RE.sub("\ufffd", text), cls()
        return text, cls(opener=opener, closer=closer, pattern=re.compile(f"{opener}(\\d+){closer}"))

    def hold(self, markup: str, source: str) -> str:
        self.html.append(markup)
        self.sources.append(source)
        return f"{self.opener}{len(self.html) - 1}{self.closer}"

    def math(self, body: str, display: bool) -> str:
        formula = Math(body, display)
        self.formulas.append(formula)
        # Written back as \( \) or \[ \]: inside a tag it can never start a URL scheme.
        source = f"\\[{body}\\]" if display else f"\\({body}\\)"
        return self.hold(formula.html(), source)


def extract(text: str, where: Where, report: Reports) -> tuple[str, _Held]:
    """Take formulas (outside code) and language-tagged inline code out of the text."""
    text, held = _Held.for_text(text, where, report)
    if "`" not in text and "~~~" not in text:
        return _scan_math(text, where, report, held), held
    if "#!" not in text and "\\" not in text and "$" not in text:
        # No formula to take out and no code tagged with a language: nothing the code pattern
        # finds would change, and it is tried at every character.
        return text, held
    return _extract_code(text, where, report, held), held


def _extract_code(text: str, where: Where, report: Reports, held: _Held) -> str:
    """Take formulas out of the text between code spans and fences, and hold tagged inline code."""
    out: list[str] = []
    pos = 0
    for code in _CODE_RE.finditer(text):
        out.append(_scan_math(text[pos : code.start()], where, report, held))
        inline = code.group(3)
        tagged = _INLINE_LANG_RE.match(inline) if inline is not None else None
        out.append(
            held.hold(highlight(tagged.group(2), tagged.group(1), inline=True), code.group(0))
            if tagged
            else code.group(0)
        )
        pos = code.end()
    out.append(_scan_math(text[pos:], where, report, held))
    return "".join(out)


def _scan_math(text: str, where: Where, report: Reports, held: _Held) -> str:
    if "\\" not in text and "$" not in text:
        return text
    out: list[str] = []
    i = plain_from = 0
    closers = _Closers(text)
    while (found := _MATH_START_RE.search(text, i)) is not None:
        i = found.start()
        two = text[i : i + 2]
        if two in ("\\(", "\\["):
            closer = "\\)" if two == "\\(" else "\\]"
            end = closers.find(closer, i + 2)
            if end == -1:
                if closers.first_miss(closer):  # once: every later opener of its kind lacks one too
                    report.error(
                        where.path, where.line, f"unbalanced math: {two} without {closer}; close the formula"
                    )
                i += 2
                continue
            out.append(text[plain_from:i] + held.math(text[i + 2 : end], two == "\\["))
            i = plain_from = end + 2
        elif two == "\\$":
            out.append(text[plain_from:i] + "&#36;")
            i = plain_from = i + 2
        elif two.startswith("\\"):
            i += 2  # another escape: \\ or \x, never the start of a formula
        elif two == "$$":
            end = closers.find("$$", i + 2)
            if end == -1:
                if closers.first_miss("$$"):
                    report.error(
                        where.path,
                        where.line,
                        "unbalanced math: $$ without a closing $$; close it, or write \\$ for a dollar",
                    )
                i += 2
                continue
            out.append(text[plain_from:i] + held.math(text[i + 2 : end], True))
            i = plain_from = end + 2
        elif (end := _inline_dollar_end(text, i)) != -1:
            out.append(text[plain_from:i] + held.math(text[i + 1 : end], False))
            i = plain_from = end + 1
        else:
            i += 1
    out.append(text[plain_from:])
    return "".join(out)


class _Closers:
    """Find formula closers in one text, each stretch searched once: linear in the text.

    Searching afresh from every opener made `\\(` repeated without a closer quadratic.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.searches = 0  # how many times the text was searched: a test bounds it
        self._known: dict[str, tuple[int, int]] = {}  # closer: (searched from, found at or -1)
        self._reported: set[str] = set()

    def find(self, closer: str, start: int) -> int:
        """Return where `closer` next occurs at or after `start`, or -1."""
        known = self._known.get(closer)
        # A search from `origin` found nothing before `found`: nor will one from a later start.
        if known is not None and known[0] <= start and (known[1] == -1 or start <= known[1]):
            return known[1]
        self.searches += 1
        found = self.text.find(closer, start)
        self._known[closer] = (start, found)
        return found

    def first_miss(self, closer: str) -> bool:
        """Tell whether this is the first opener found without `closer`: it is reported once."""
        first = closer not in self._reported
        self._reported.add(closer)
        return first


def _inline_dollar_end(text: str, start: int) -> int:
    """Find the `$` closing inline math at `start`, by pandoc's rules, or -1 (a price, say)."""
    if start + 1 >= len(text) or text[start + 1].isspace():
        return -1
    j = start + 1
    while j < len(text):
        if text[j] == "\\":
            j += 2
            continue
        if text[j] == "\n" and text[j - 1] == "\n":
            return -1
        if text[j] == "$":
            if text[j - 1].isspace() or (j + 1 < len(text) and text[j + 1].isdigit()):
                return -1
            return j
        j += 1
    return -1


def check_math(formula: Math, where: Where, report: Reports) -> None:
    """Check a formula the way MathJax will read it; record what is wrong."""
    # What is wrong with a formula depends on the formula alone: one that cards repeat (`\(x\)`,
    # `\(d_k\)`) is checked once per process. A long one is seldom repeated: not kept in memory.
    if len(formula.body) > MAX_REMEMBERED_FORMULA:
        _check_math(formula, where, report)
        return
    for severity, message in _math_problems(formula):
        add = report.error if severity is Severity.ERROR else report.warn
        add(where.path, where.line, message)


MAX_REMEMBERED_FORMULA = 200  # characters: the 4096 formulas remembered hold a few MiB at most


@lru_cache(maxsize=4096)
def _math_problems(formula: Math) -> tuple[tuple[Severity, str], ...]:
    """Return what `_check_math` finds wrong with a formula, in order."""
    found = Found()
    _check_math(formula, _NOWHERE, found)
    return tuple(found.problems)


class Reports(Protocol):
    """Where problems go: a Report, or only what a check finds (`Found`)."""

    def error(self, path: str, line: int, message: str) -> None: ...

    def warn(self, path: str, line: int, message: str) -> None: ...


class Found:
    """The problems one piece of work finds at one place, in order, each once.

    A Report's `error` and `warn`, no more: a card rendered, or a formula checked, makes one,
    at a fifth of a Report's cost.
    """

    __slots__ = ("problems",)

    def __init__(self) -> None:
        self.problems: list[tuple[Severity, str]] = []

    def error(self, path: str, line: int, message: str) -> None:
        self._add((Severity.ERROR, message))

    def warn(self, path: str, line: int, message: str) -> None:
        self._add((Severity.WARNING, message))

    def _add(self, problem: tuple[Severity, str]) -> None:
        if problem not in self.problems:
            self.problems.append(problem)


_NOWHERE = Where("", 0)  # a formula's problems are its own: told where it is, later


def _check_math(formula: Math, where: Where, report: Reports) -> None:
    """Check a formula the way MathJax will read it; record what is wrong."""
    # MathJax reads the text a browser makes of the field: character references decoded.
    body, shown = html.unescape(formula.body) if "&" in formula.body else formula.body, formula.html()
    if len(shown) > MAX_SHOWN_FORMULA:
        # One warning per unknown command, each quoting a long formula whole, grew quadratically.
        shown = shown[: MAX_SHOWN_FORMULA - 3] + "…" + shown[-2:]
    if "\\" in body and not _safe_math(body, shown, where, report):
        return
    if not _balanced(body):
        report.error(where.path, where.line, f"unbalanced braces in formula {shown}; match every {{ with }}")
        return
    if "\\ " in body and (stray := _STRAY_SPACE_RE.search(body)):
        report.warn(
            where.path,
            where.line,
            f"'\\ {stray.group(1)}' in formula {shown} looks like \\{stray.group(1)} "
            "with a stray space; remove the space",
        )
    for opener, closer, opens, closes in _PAIRS:
        if (opener in body or closer in body) and len(opens.findall(body)) != len(closes.findall(body)):
            message = f"malformed formula {shown}; check \\left/\\right pairs and commands"
            report.error(where.path, where.line, message)
            return
    names = set(_COMMAND_RE.findall(body))
    if names <= COMMON_COMMANDS:
        return  # all known: latex2mathml's tables need not be loaded
    for name in sorted(names.difference(_known_commands())):
        report.warn(
            where.path,
            where.line,
            f"unknown LaTeX command \\{name} in formula {shown}; check its spelling",
        )


def _balanced(body: str) -> bool:
    """Tell whether a formula's braces (not escaped ones, like \\{) pair up, each } after its {."""
    # Its braces alone, in order: they pair up when taking out each adjacent "{}" leaves nothing.
    braces = _NOT_BRACE_RE.sub("", body) if "{" in body or "}" in body else ""
    for _ in range(_SHALLOW):
        if "{}" not in braces:
            return not braces
        braces = braces.replace("{}", "")
    # Nested deeper (braces written as &#123; pass the field's own nesting limit): counted in
    # one pass, not taken out a level at a time.
    depth = 0
    for brace in braces:
        depth += 1 if brace == "{" else -1
        if depth < 0:
            return False
    return depth == 0


_SHALLOW = 8  # levels of braces taken out at once, before they are counted one by one


def _safe_math(body: str, shown: str, where: Where, report: Reports) -> bool:
    """Refuse what MathJax would turn into links, styles, ids or macros; False when refused."""
    return not _MAY_BE_UNSAFE_RE.search(body) or _safe_math_read(body, shown, where, report)


def _safe_math_read(body: str, shown: str, where: Where, report: Reports) -> bool:
    """Do what `_safe_math` does, reading the formula's tokens."""
    refused = False
    # Per token: (its control word, the delimiter it is), both empty for another control symbol.
    tokens = _TOKEN_RE.findall(body)
    # A delimiter inside would make MathJax split the formula where we did not, and read text
    # after it (never checked) as a formula.
    if delimiter := next((d for _, d in tokens if d), None):
        report.error(
            where.path,
            where.line,
            f"formula {shown} holds \\{delimiter}, where MathJax would start or end a formula; remove it",
        )
        refused = True
    words = [word for word, _ in tokens if word]
    # Nearly every formula uses none of them: each name is looked at only when one is there.
    unsafe_named = words and not UNSAFE_MATH.keys().isdisjoint([word.lower() for word in words])
    for name in dict.fromkeys(words) if unsafe_named else ():
        if (unsafe := UNSAFE_MATH.get(name.lower())) is not None:
            what, fix = unsafe
            message = f"formula {shown} uses \\{name}, which MathJax turns into {what}; {fix}"
            report.error(where.path, where.line, message)
            refused = True
    for options in _OPTIONS_RE.finditer(body):
        bracket = options.group(3) is None and options.group(4) == "["
        if bracket or (options.group(1).lower() == "enclose" and options.group(2) is None):
            report.error(
                where.path,
                where.line,
                f"formula {shown} gives \\{options.group(1)} a style or attributes; "
                "keep to colours and sizes, like \\bbox[yellow,5px]",
            )
            refused = True
            break
    if (len(body) - len(body.rstrip("\\"))) % 2:
        report.error(
            where.path,
            where.line,
            f"formula {shown} ends in a backslash, so MathJax would read on past its end; remove it",
        )
        refused = True
    return not refused


# Commands that formulas use most, every one in latex2mathml's tables (a test holds them to it):
# a formula of only these is checked without loading those tables (~20 ms, in every process).
# fmt: off
COMMON_COMMANDS = frozenset("""
    alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi pi
    varpi rho varrho sigma varsigma tau upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi
    Pi Sigma Upsilon Phi Psi Omega frac dfrac tfrac sqrt sum prod int oint lim limsup liminf max min
    sup inf argmax argmin exp log ln sin cos tan sec csc cot arcsin arccos arctan sinh cosh tanh det
    dim ker Pr gcd deg hom cdot cdots ldots dots vdots ddots times div pm mp ast star circ bullet leq
    le geq ge neq ne approx equiv sim simeq cong propto ll gg subset subseteq supset supseteq in notin
    ni cup cap setminus emptyset varnothing forall exists nexists neg land lor wedge vee oplus otimes
    odot to rightarrow leftarrow Rightarrow Leftarrow leftrightarrow Leftrightarrow mapsto implies
    iff uparrow downarrow longrightarrow longleftarrow infty partial nabla prime hbar ell Re Im aleph
    mathbf mathrm mathit mathcal mathbb mathsf mathtt mathfrak boldsymbol text textbf textit
    operatorname hat bar tilde vec dot ddot overline underline widehat widetilde overbrace underbrace
    overrightarrow left right big Big bigg Bigg langle rangle lfloor rfloor lceil rceil lvert rvert
    lVert rVert vert Vert mid quad qquad top bot perp parallel angle triangle square displaystyle
    textstyle scriptstyle limits nolimits binom begin end color
""".split())  # noqa: SIM905
# fmt: on


@lru_cache(maxsize=1)
def _known_commands() -> frozenset[str]:
    """The commands latex2mathml (and so MathJax, far more) understands, read off its own tables."""
    import latex2mathml.commands as commands
    from latex2mathml.symbols_parser import SYMBOLS

    names: set[str] = set()

    def gather(value: object) -> None:
        if isinstance(value, str):
            if value.startswith("\\") and value[1:].isalpha():
                names.add(value[1:])
        elif isinstance(value, dict):
            for key in value:
                gather(key)
        elif isinstance(value, list | tuple | set | frozenset):
            for item in value:
                gather(item)

    for attribute in dir(commands):
        if attribute.isupper():
            gather(getattr(commands, attribute))
    gather(list(SYMBOLS))
    return frozenset(names)


@lru_cache(maxsize=4096)
def to_mathml(body: str, display: bool) -> str | None:
    """Convert a formula to MathML, or None when it is malformed."""
    from latex2mathml.converter import convert

    try:
        result: str = convert(body, display="block" if display else "inline")
    except Exception:  # latex2mathml raises many unrelated types for malformed input
        return None
    # A bare `&` (from `\text{A\&B}`) is written as the text it shows; anything else not plain is refused.
    result = _BARE_AMP_RE.sub("&amp;", result)
    return result if _plain_mathml(result) else None


def _plain_mathml(markup: str) -> bool:
    """Tell whether MathML is well-formed, of MathML elements only, with no link, style or handler.

    latex2mathml writes `\\text{<img/src=x/onerror=…>}` out as raw markup: never put that in a page.
    """
    from xml.etree import ElementTree

    try:
        tree = ElementTree.fromstring(markup)
    except ElementTree.ParseError:
        return False
    for element in tree.iter():
        if element.tag.rpartition("}")[2] not in _MATHML_TAGS:
            return False
        if any(":" in name or name.startswith("on") or name in _MATHML_UNSAFE for name in element.attrib):
            return False
    return True


def _cp1252_bytes(run: str) -> bytes:
    # Bytes cp1252 leaves undefined were read as Latin-1 control characters: map them back.
    return b"".join(
        bytes([ord(ch)]) if ord(ch) < 0x100 and not ch.encode("cp1252", "ignore") else ch.encode("cp1252")
        for ch in run
    )


def _repair_run(match: re.Match[str]) -> str:
    try:
        return _cp1252_bytes(match.group(0)).decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return match.group(0)


def fix_mojibake(text: str, where: Where, report: Reports) -> str:
    """Repair UTF-8 text that was once decoded as cp1252 or Latin-1, with a warning."""
    if text.isascii():
        return text
    fixed = _MOJIBAKE_RE.sub(_repair_run, text)
    if fixed != text:
        report.warn(
            where.path, where.line, "repaired mojibake (UTF-8 once read as Windows-1252); fix the source text"
        )
    return fixed


@lru_cache(maxsize=1)
def _markdown() -> Any:
    import markdown
    from markdown.extensions import Extension

    class LiteralUnderscores(Extension):  # type: ignore[misc]
        """Leave `_` to mean itself: `__init__` and `snake_case` are code words, not emphasis."""

        def extendMarkdown(self, md: Any) -> None:
            if getattr(md, "delimiters", None) is not None:  # Python-Markdown 3.11 and later
                md.delimiters.remove("_")
            elif "em_strong2" in md.inlinePatterns:
                md.inlinePatterns.deregister("em_strong2")

    from markdown.extensions.codehilite import CodeHiliteExtension
    from markdown.extensions.fenced_code import FencedCodeExtension
    from markdown.extensions.nl2br import Nl2BrExtension
    from markdown.extensions.sane_lists import SaneListExtension
    from markdown.extensions.tables import TableExtension

    # The extensions themselves, not their names: a name is looked up among every installed
    # package's entry points first, which reads the metadata of each.
    return markdown.Markdown(
        extensions=[
            FencedCodeExtension(),
            TableExtension(),
            SaneListExtension(),
            Nl2BrExtension(),
            # Inline styles, not classes: every Anki client keeps them without our stylesheet.
            CodeHiliteExtension(noclasses=True, guess_lang=False, pygments_style=CODE_STYLE),
            LiteralUnderscores(),
        ],
        output_format="html",
    )


def sanitize(markup: str) -> str:
    """Keep only the HTML a card needs; nothing that runs script survives."""
    import nh3

    result: str = nh3.clean(
        markup,
        tags=set(ALLOWED_TAGS),
        attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        filter_style_properties=set(ALLOWED_STYLES),
        link_rel="noopener noreferrer",
    )
    return _STYLE_ATTR_RE.sub(_safe_style, result) if ' style="' in result else result


def _safe_style(match: re.Match[str]) -> str:
    """Keep the declarations of a style attribute that only colour or weight text."""
    kept = []
    for declaration in match.group(1).split(";"):
        name, colon, value = declaration.partition(":")
        if not colon or not _STYLE_VALUE_RE.match(value) or _INVISIBLE_RE.search(value):
            continue
        if name.strip().lower() == "line-height" and _ZERO_RE.match(value):
            continue  # lines of no height: the text is there, but unreadable
        kept.append(declaration)
    values = {d.partition(":")[0].strip().lower(): d.partition(":")[2].strip().lower() for d in kept}
    ground = values.get("background-color") or values.get("background")
    if ground is not None and "color" in values and _unreadable(values["color"], ground):
        # Text the colour of its background is hidden: the colour goes, the background stays.
        kept = [d for d in kept if d.partition(":")[0].strip().lower() != "color"]
    return f' style="{";".join(kept)}"' if kept else ""


# Below this contrast (WCAG's ratio, 1 for equal colours, 21 for black on white) text cannot be
# read: WCAG asks 3 even for large text, and the near-equal pairs that hide text sit under 1.1.
MIN_CONTRAST = 1.5


def _unreadable(colour: str, background: str) -> bool:
    """Tell whether text of `colour` on `background` is too faint to read, however each is spelled."""
    text = _rgb(colour)
    # A shorthand `background` may hold more than its colour (`white no-repeat`).
    ground = next((rgb for rgb in map(_rgb, background.split()) if rgb is not None), None)
    if text is None or ground is None:
        return colour == background
    light, dark = sorted((_luminance(text), _luminance(ground)), reverse=True)
    return (light + 0.05) / (dark + 0.05) < MIN_CONTRAST


def _rgb(value: str) -> tuple[int, int, int] | None:
    """Read a CSS colour written as a name or in hex; None for anything else."""
    import webcolors

    value = value.strip().lower()
    try:
        rgb = webcolors.hex_to_rgb(value) if value.startswith("#") else webcolors.name_to_rgb(value)
        return (rgb.red, rgb.green, rgb.blue)
    except ValueError:
        return None


def _luminance(rgb: tuple[int, int, int]) -> float:
    """Return a colour's relative luminance, as WCAG defines it."""
    linear = [c / 255 / 12.92 if c <= 10 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def media_name(path: Path) -> str:
    """Name a media file by its content, so that two different files never share a name."""
    from deckbuild.sources import read_regular

    # Never a FIFO or a device that replaced the file: reading one could hang or never end.
    digest = hashlib.sha256(read_regular(path, limit=MAX_MEDIA_BYTES)).hexdigest()[:10]
    return f"{path.stem}-{digest}{path.suffix.lower()}"


def _images(markup: str, where: Where, report: Reports) -> str:
    """Package every local image a field shows, under its content name; refuse what is unsafe.

    A missing image is a warning, as in mkdocs: web text often carries `<img>` tags whose files
    never came along. The tag is dropped and the card kept; `--strict` makes it an error.
    """

    from deckbuild.sources import TooLarge

    def replace(tag: re.Match[str]) -> str:
        match = _IMG_SRC_RE.match(tag.group(0))
        if match is None:
            return tag.group(0)
        src = html.unescape(match.group(2))
        if re.match(r"^[a-z][a-z0-9+.-]*:", src, re.I) or src.startswith("//"):
            report.warn(
                where.path, where.line, f"remote image {src} will not show offline; put it in the deck folder"
            )
            return tag.group(0)
        if where.folder is None or where.root is None:
            return tag.group(0)
        relative = unquote(src)
        if "\x00" in relative:  # no system takes it in a file name
            report.error(where.path, where.line, f"image {src} names no file (a NUL character); fix the path")
            return ""
        named = where.folder / relative
        try:
            target = named.resolve()
        except (OSError, RuntimeError):  # a link loop (RuntimeError before Python 3.13)
            report.error(where.path, where.line, f"image {src} is a link in a loop; fix the link")
            return ""
        if not target.is_relative_to(where.root.resolve()):
            report.error(where.path, where.line, f"image {src} is outside the deck folder; move it inside")
            return match.group(1) + match.group(3) + tag.group(0)[match.end() :]

        def left_out(why: str, fix: str = "fix the path") -> str:
            report.warn(where.path, where.line, f"image {src} {why}, left out of the card; {fix}")
            where.missing.append(named)
            return ""

        try:
            found = target.is_file()
        except OSError as exc:  # a name longer than the system takes
            if ran_out(exc):
                raise
            return left_out(f"cannot be read ({exc.strerror})")
        if not found:
            return left_out("not found", "add the file or fix the path")
        try:
            name = media_name(target)
        except TooLarge:
            return left_out(f"is larger than {MAX_MEDIA_BYTES >> 20} MiB", "shrink it")
        except OSError as exc:  # swapped for a FIFO or a device since, or removed: never read
            if ran_out(exc):
                raise
            return left_out(f"cannot be read ({exc})", "put the image file there")
        where.media[name] = target  # the file checked to be inside the deck folder is the one packaged
        if str(named.absolute()) != str(target):
            where.linked.append((named, target))
        return match.group(1) + html.escape(name) + match.group(3) + tag.group(0)[match.end() :]

    # Whole tags, so that a missing image leaves no broken <img> behind.
    return _IMG_TAG_RE.sub(replace, markup)


def render_text(text: str, where: Where, report: Reports, inline: bool = False, literal: bool = False) -> str:
    """Render one field of Markdown with LaTeX to the safe HTML stored in the note.

    `literal`: the text has no markup (copied from a page), so every character of it shows as
    copied; only its formulas and fenced code render as in any field (see `_render_literal`).
    """
    plain = _plain_field(text, inline)
    if plain is not None:
        return plain
    render = _render_literal if literal else _render_text
    return render(text, where, report, inline)


# A block of fenced code, whole: a page shows code as code, and copies it with its fences. It
# closes with its own fence exactly, as it opens (its language a word, if any).
_FENCED_RE = re.compile(
    r"^[^\S\n]*(`{3,}|~{3,})[^\S\n]*([\w+#-]*)[^\S\n]*\n(.*?)^[^\S\n]*\1[^\S\n]*$", re.M | re.S
)
# A line of only blanks, between paragraphs.
_PARAGRAPH_BREAK_RE = re.compile(r"\n[ \t]*\n[\s]*")


# Text left outside every formula that MathJax would still start or end one at.
_STRAY_DELIMITER = (
    "text that becomes \\( or \\[ (like \\\\( or &#92;() would be typeset by Anki's MathJax "
    "unchecked; write the formula as \\( … \\), or put the text in `code`"
)


def _render_literal(text: str, where: Where, report: Reports, inline: bool) -> str:
    """Render text copied from a page as the characters it holds, with its formulas and fenced code.

    A page's text was shown as text: a `*`, `#`, `>`, `-`, `_`, backslash or `<b>` in it is what
    the page showed, not Markdown or HTML for a card to interpret. Lines stay lines and blank
    lines part paragraphs, as text with nothing for Markdown to do renders (`_plain_field`).
    """
    parts: list[str] = []
    start = 0
    for block in _FENCED_RE.finditer(text):
        parts.append(_literal_run(text[start : block.start()], where, report, inline))
        # Highlighted as code, never read as Markdown or HTML.
        code = block.group(3)[:-1] if block.group(3).endswith("\n") else block.group(3)
        parts.append(_defuse(highlight(code, block.group(2).lower() or "text")))
        start = block.end()
    parts.append(_literal_run(text[start:], where, report, inline))
    return "\n".join(part for part in parts if part)


def _literal_run(text: str, where: Where, report: Reports, inline: bool) -> str:
    """Render a run of page text without fenced code: escaped, with its formulas (`_render_literal`)."""
    if not text.strip():
        return ""
    if problem := field_problem(text, scanned=CODE_SCANNED):
        report.error(where.path, where.line, problem)
        return escape(text)
    text = fix_mojibake(text, where, report)
    text, held = _Held.for_text(text, where, report)
    text = _scan_math(text, where, report, held)
    for formula in held.formulas:
        check_math(formula, where, report)
    if "\\(" in text or "\\[" in text:
        report.error(where.path, where.line, _STRAY_DELIMITER)
    paragraphs = [
        "<br>\n".join(html.escape(line.strip(" \t"), quote=False) for line in paragraph.split("\n"))
        for paragraph in _PARAGRAPH_BREAK_RE.split(text.strip("\n"))
    ]
    if inline:
        markup = "<br>\n".join(paragraphs)
    else:
        markup = "\n".join(f"<p>{paragraph}</p>" for paragraph in paragraphs)
    return _defuse(_pieces_in(markup, held))


def _plain_field(text: str, inline: bool) -> str | None:
    """Render a field with nothing for any step of render_text to do, as it would; else None.

    No markup, formula, entity or blank at a line's edge (_not_plain), no `$`, no private-use
    character or mojibake, within the limits: each step passes such a text through unchanged,
    and _plain writes its lines as paragraph lines.
    """
    if not text or "$" in text or _not_plain(text) or field_problem(text, scanned=CODE_SCANNED):
        return None
    if not text.isascii() and (_PRIVATE_RE.search(text) or _MOJIBAKE_RE.search(text)):
        return None
    lines = "<br>\n".join(text.split("\n"))
    return lines if inline else f"<p>{lines}</p>"


def _render_text(text: str, where: Where, report: Reports, inline: bool) -> str:
    # Code spans and fences are found (by one regex) before the formulas are taken out.
    if problem := field_problem(text, scanned=CODE_SCANNED):
        report.error(where.path, where.line, problem)
        return escape(text)
    text = fix_mojibake(text, where, report)
    text, held = extract(text, where, report)
    for formula in held.formulas:
        check_math(formula, where, report)
    # `<br>` is how one-line formats write a line break; as a real one, Markdown sees lists.
    if "<" in text:
        if "`" in text:
            # Inside a code span a newline would read as a space: hold the break, put back as <br>
            # like any held piece, so no text of the author's can pose as one.
            text = _SPAN_BR_RE.sub(
                lambda m: _BR_RE.sub(lambda _: held.hold("<br>", "<br>"), m.group(0)), text
            )
        text = _breaks_as_lines(text)
    if "\n" in text and _ITEM_LINE_RE.search(text) and not _MARGIN_ITEMS_RE.fullmatch(text):
        text = _lists(text)
    markup = _plain(text) or _plain_list(text)
    # The shortcuts' own tags hold no placeholder and no link, and no formula is left in text.
    built = markup is not None
    if markup is None:
        # What Markdown would take quadratic time over is refused (its formulas are out already).
        if problem := field_problem(text):
            report.error(where.path, where.line, problem)
            return escape(text)
        markup = _markdown_to_html(text)
    if "<img" in markup:
        markup = _images(markup, where, report)
    if inline and markup.startswith("<p>") and markup.endswith("</p>") and markup.count("<p>") == 1:
        markup = markup[3:-4]
    if held.html or "\\" in markup or "<a " in markup:
        markup = (
            _pieces_in(markup, held)
            if built and "\\" not in markup
            else _put_back(markup, held, where, report)
        )
    return _defuse(markup)


# A <br> and the lone blank after it, found by its `<`: _BR_RE is tried at every character.
_BR_TAG_RE = re.compile(r"<br\s*/?>(?:[ \t](?![ \t]))?", re.IGNORECASE)


def _breaks_as_lines(text: str) -> str:
    """Write every `<br>` as a line break, as `_BR_RE.sub("\\n", text)` does, several times faster.

    The blanks _BR_RE takes before a <br> are those ending the text before it: a lone blank the
    <br> before took is never followed by another, so it never leaves blanks to start that text.
    """
    parts = _BR_TAG_RE.split(text)
    last = parts.pop()
    return "\n".join([part.rstrip(" \t") for part in parts] + [last])


def _defuse(markup: str) -> str:
    """Write `[sound:…]` and `[anki:…]` so that Anki shows them instead of playing them."""
    return _AV_RE.sub("&#91;", markup) if "[" in markup else markup


def _put_back(markup: str, held: _Held, where: Where, report: Reports) -> str:
    """Put held pieces back into sanitized HTML, each as its context needs; check links and text.

    A piece in text goes back as the HTML it is (formulas keep `<` escaped; code was
    sanitized on its own); one inside a tag goes back as its source, escaped for an attribute.
    """
    out: list[str] = []
    pos = code = 0
    stray = False
    for tag in _TAG_RE.finditer(markup):
        text = markup[pos : tag.start()]
        # Anki's MathJax typesets every \( and \[ in text outside code; only ours may be there.
        stray = stray or (code == 0 and ("\\(" in text or "\\[" in text))
        out.append(_pieces_in(text, held))
        closing, name, markup_tag = tag.group(1), tag.group(2).lower(), tag.group(0)
        if name in ("code", "pre"):
            code += -1 if closing else 1
        if held.html and held.opener in markup_tag:
            markup_tag = held.pattern.sub(lambda m: escape(_piece(held.sources, m)), markup_tag)
        if name == "a" and not closing:
            end = tag.end()
            if ' href="' in markup_tag:
                named = partial(_link_name, markup, end, held)
                markup_tag = _HREF_RE.sub(partial(_link, where=where, report=report, named=named), markup_tag)
            else:
                # No address: none was written, or the sanitizer took one it does not keep
                # (javascript:, data:, ftp:). Named by its text: two on one line are two warnings.
                report.warn(where.path, where.line, f"the link {_link_name(markup, end, held)} {_NO_ADDRESS}")
        out.append(markup_tag)
        pos = tag.end()
    text = markup[pos:]
    stray = stray or (code == 0 and ("\\(" in text or "\\[" in text))
    out.append(_pieces_in(text, held))
    if stray:
        report.error(where.path, where.line, _STRAY_DELIMITER)
    return "".join(out)


# A formula as it stands in a rendered field: formulas are put back as \( … \) and \[ … \].
MATH_IN_FIELD_RE = re.compile(r"\\\((.*?)\\\)|\\\[(.*?)\\\]", re.S)


def vet_shipped(markup: str, where: Where, report: Reports) -> str:
    """Make a field read back from an earlier package or the lock as safe as one rendered now.

    Retired cards ship what a package once held; that file (a downloaded release, `dist/`) or
    the lock may have been changed since. The field passes the sanitizer, the link and sound
    rules and the MathJax checks again; one that fails any of them ships as plain text.
    """
    found = Report()
    clean = sanitize(markup)
    if "<a " in clean:
        clean = _HREF_RE.sub(lambda m: _link(m, where, found), clean)
    for formula in MATH_IN_FIELD_RE.finditer(clean):
        body = formula.group(1) if formula.group(1) is not None else formula.group(2)
        _safe_math(html.unescape(body), "in the retired card", where, found)
    outside = MATH_IN_FIELD_RE.sub("", clean)
    if any(delimiter in outside for delimiter in ("\\(", "\\)", "\\[", "\\]")):
        found.error(where.path, where.line, "a stray MathJax delimiter")
    if not found.problems:
        return _defuse(clean)
    report.warn(
        where.path,
        where.line,
        "a retired card's last shipped content holds what a card must not (script, a link, a "
        "MathJax command); it ships as plain text: check the earlier package or the lock",
    )
    text = html.unescape(re.sub(r"<[^>]*>", " ", clean))
    # As text, with every backslash a look-alike: MathJax finds no delimiter in it.
    return _defuse(escape(text).replace("\\", "\u2216"))


def _pieces_in(text: str, held: _Held) -> str:
    """Put the held pieces back into a run of text between tags."""
    if not held.html or held.opener not in text:
        return text
    return held.pattern.sub(lambda m: _piece(held.html, m), text)


def _piece(pieces: list[str], match: re.Match[str]) -> str:
    index = int(match.group(1))
    return pieces[index] if index < len(pieces) else ""


_NO_ADDRESS = (
    "has no web or mail address, so it shows as text (one not written in full, like javascript:, "
    "data: or ftp:, is removed); write its address in full (https://…), or write it as text"
)
_LINK_TEXT_SHOWN = 40  # characters of a link's text quoted in a message


def _link_name(markup: str, start: int, held: _Held) -> str:
    """Name a sanitized link whose text starts at `start` for a message: by its text, as written."""
    from deckbuild.cloze import unmarked

    end = markup.find("</a>", start)
    inside = markup[start : len(markup) if end == -1 else end]
    text = html.unescape(_ANY_TAG_RE.sub("", inside))
    if held.html and held.opener in text:
        text = held.pattern.sub(lambda m: _piece(held.sources, m), text)
    text = " ".join(unmarked(text).split())
    if not text:  # an image alone, or nothing at all
        alt = _ALT_RE.search(inside)
        return f"around the image {html.unescape(alt.group(1))!r}" if alt else "with no text"
    return repr(text if len(text) <= _LINK_TEXT_SHOWN else text[: _LINK_TEXT_SHOWN - 1] + "…")


_ALT_RE = _deferred("_ALT_RE", r'<img\b[^>]*\salt="([^"]+)"')


def _link(match: re.Match[str], where: Where, report: Reports, named: Callable[[], str] | None = None) -> str:
    """Keep a link that says where it goes; drop any other, with a warning.

    A link with an empty address is named by `named` (by its text), where the caller can.
    """
    target = html.unescape(match.group(1))
    if _LINK_RE.match(target):
        return match.group(0)
    if not target.strip() and named is not None:
        report.warn(where.path, where.line, f"the link {named()} {_NO_ADDRESS}")
        return ""
    report.warn(
        where.path,
        where.line,
        f"link {target} is not a web or mail address, so it was removed; write it in full (https://…)",
    )
    return ""


# Lines that are each empty or an item at the margin (the `<br>` lists of one-line formats): no
# list follows text and none is indented, so _lists would leave them as they are.
_MARGIN_ITEM = r"(?:[-*+]|\d{1,9}[.)]) [^\n]*"
_MARGIN_ITEMS_RE = _deferred("_MARGIN_ITEMS_RE", rf"(?:{_MARGIN_ITEM})?(?:\n(?:{_MARGIN_ITEM})?)*")


def _lists(text: str) -> str:
    """Read lists as authors mean them, where Python-Markdown would not.

    A list right after a line of text starts a list (Python-Markdown wants a blank line first, and
    shows `Intro:<br>- a` with a literal dash), and a list nested by any indentation is nested
    (Python-Markdown wants 4 spaces a level): each indentation its items use becomes a level of
    4 spaces. Fenced code is left alone.
    """
    out: list[str] = []
    block: list[str] = []  # the lines of the list being read
    state, fence = "blank", ""

    def close() -> None:
        levels = sorted({len(line) - len(line.lstrip(" ")) for line in block if _ITEM_LINE_RE.match(line)})
        for line in block:
            width = len(line) - len(line.lstrip(" "))
            out.append(" " * (4 * sum(0 < level <= width for level in levels)) + line[width:])
        block.clear()

    for line in text.split("\n"):
        if fence:
            fence = "" if line.lstrip().startswith(fence) else fence
            out.append(line)
            continue
        opening = _FENCE_RE.match(line)
        if opening or not line.strip():
            close()
            state, fence = "blank", opening.group(1) if opening else ""
            out.append(line)
        elif state == "list":
            block.append(line)
        elif _ITEM_LINE_RE.match(line) and not line.startswith(" "):
            if state == "text":
                out.append("")
            state = "list"
            block.append(line)
        else:
            state = "text"
            out.append(line)
    close()
    return "\n".join(out)


def _plain(text: str) -> str | None:
    """Render text with nothing for Markdown to do but `code` spans, as Markdown would."""
    if not text:
        return None
    codes: list[str] = []
    if "`" in text:
        # A run of backticks opens or closes only a span of its own length: leave those to Markdown.
        if _CODE_MARK in text or "``" in text:
            return None
        text = _SPAN_RE.sub(lambda m: _hold_code(m, codes), text)
        if "`" in text:
            return None
    if _not_plain(text):
        return None
    markup = "<p>" + "<br>\n".join(text.split("\n")) + "</p>"
    if codes:
        pieces = markup.split(_CODE_MARK)
        markup = pieces[0] + "".join(
            f"<code>{c}</code>{rest}" for c, rest in zip(codes, pieces[1:], strict=True)
        )
    return markup


def _hold_code(match: re.Match[str], codes: list[str]) -> str:
    body = match.group(1).strip()
    if not body or _CODE_UNSAFE_RE.search(body):
        return "`"  # left for Markdown
    codes.append(body.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
    return _CODE_MARK


def _plain_list(text: str) -> str | None:
    """Render a list of plain items, one a line (the `<br>` lists of one-line formats)."""
    lines = text.rstrip("\n").split("\n")
    items = []
    for line in lines:
        item = _plain(line[2:]) if line.startswith("- ") else None
        if item is None:
            return None
        items.append(f"<li>{item[3:-4]}</li>")
    return "<ul>\n" + "\n".join(items) + "\n</ul>"


def _markdown_to_html(text: str) -> str:
    md = _markdown()
    md.reset()
    return sanitize(_tags_as_text(md.convert(text))).strip()


# A tag's start: `<` then a name, as an HTML parser reads one.
_TAG_START_RE = _deferred("_TAG_START_RE", r"<(?=/?([A-Za-z][A-Za-z0-9-]*))")


def _tags_as_text(markup: str) -> str:
    """Show a tag a card does not keep as the text it is, instead of letting the sanitizer cut it.

    Markdown writes only kept tags; any other (`x<y and y>z`, a `<script>` an explanation
    mentions) is the author's text, and stripping it would silently cut the card's words.
    """
    if "<" not in markup:
        return markup
    return _TAG_START_RE.sub(lambda m: "<" if m.group(1).lower() in ALLOWED_TAGS else "&lt;", markup)


def highlight(code: str, language: str = "python", inline: bool = False) -> str:
    """Highlight code with inline styles: a block, or a run of text for inline code."""
    from pygments import highlight as pyg_highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        lexer = get_lexer_by_name(language)
    except ClassNotFound:
        lexer = get_lexer_by_name("text")
    formatter = HtmlFormatter(noclasses=True, nowrap=inline, style=CODE_STYLE)
    markup = pyg_highlight(code, lexer, formatter).strip()
    return sanitize(f"<code>{markup}</code>" if inline else markup)


def escape(text: str) -> str:
    """Escape plain text for HTML."""
    return html.escape(text, quote=True)


def options_html(options: tuple[Option, ...], where: Where, report: Reports, literal: bool = False) -> str:
    """Render lettered options as a list the template can highlight by letter."""
    items = "".join(
        f'<li class="db-opt db-opt-{o.letter}"><span class="db-letter">{o.letter}</span>'
        f"{render_text(o.text, where, report, inline=True, literal=literal)}</li>"
        for o in options
    )
    return f'<ol class="db-opts">{items}</ol>'


def steps_html(steps: tuple[Step, ...], where: Where, report: Reports, literal: bool = False) -> str:
    """Render a worked solution as numbered steps."""
    items = "".join(
        f'<li><span class="db-step-title">{render_text(s.title, where, report, True, literal)}</span>'
        f"{render_text(s.text, where, report, literal=literal)}</li>"
        for s in steps
    )
    return f'<ol class="db-steps">{items}</ol>'


def _title(data: dict[str, Any], where: Where, report: Reports, literal: bool = False) -> str:
    title = render_text(data["title"], where, report, True, literal) if data.get("title") else ""
    kind = data.get("type")
    badge = f'<span class="db-type">{escape(kind)}</span> ' if kind else ""
    return (badge + title).strip()


# The kinds of card read from quiz pages, whose text has no markup.
PAGE_KINDS = frozenset({"recall", "quiz", "open", "practice", "challenge"})


def note_fields(card: CardBase, origin: str, report: Reports, where: Where | None = None) -> list[str]:
    """Render a card into the note type's fields, in their fixed order."""
    where = where or Where(card.path, card.line)
    # The model's own values, as model_dump gives them at the top level (nested options and steps
    # stay models, read below as attributes): no copy made per card.
    data = card.__dict__
    if card.kind == "basic" and not (data.get("hint") or data.get("extra") or data.get("reverse")):
        return _question_and_answer(data, origin, report, where)
    return _any_fields(card, origin, report, where)


def _any_fields(card: CardBase, origin: str, report: Reports, where: Where) -> list[str]:
    """Render a card of any kind into its note type's fields, for `note_fields`."""
    data = card.__dict__
    get = data.get
    # A quiz page's text has no markup: its cards show every character as copied.
    literal = card.kind in PAGE_KINDS

    # Only the fields a card has are rendered and set (the rest stay ""), in the order they
    # always were, so that problems are reported in it: most cards have two or three of sixteen.
    def text(name: str, inline: bool = False) -> str:
        value = get(name)
        return render_text(value, where, report, inline, literal) if value else ""

    extra: list[str] = [text("extra")] if get("extra") else []
    if get("quick_check"):
        extra.append(f'<div class="db-label">Quick check</div>{text("quick_check")}')
    if mistakes := get("mistakes"):
        items = "".join(f"<li>{render_text(m, where, report, True, literal)}</li>" for m in mistakes)
        extra.append(f'<div class="db-label">Common mistakes</div><ul>{items}</ul>')
    if concepts := get("concepts"):
        extra.append(f"<p>Your answer should cover {concepts} key concepts.</p>")
    # Whether a side's image was left out (not found, too large): its warning says what to do.
    missing = where.missing
    before = len(missing)
    # A cloze note has no Front: its question is rendered once, as its Text (below), so that
    # each of its problems is told once.
    front = text("question") if card.kind != "cloze" else ""
    between = len(missing)
    values = {"Front": front, "Back": text("answer")}
    if get("title") or get("type"):
        values["Title"] = _title(data, where, report, literal)
    # Looked up only where the kind has them: a missing attribute is slow on a pydantic model.
    if "options" in data and (options := card.options):  # type: ignore[attr-defined]
        values["Options"] = options_html(options, where, report, literal)
    if correct := get("correct"):
        values["Correct"] = correct
    if get("explanation"):
        values["Explanation"] = text("explanation")
    if get("hint"):
        values["Hint"] = text("hint")
    if "solution" in data and (steps := card.solution):  # type: ignore[attr-defined]
        values["Solution"] = steps_html(steps, where, report, literal)
    if code := get("code"):
        values["Code"] = highlight(code, get("code_language") or "python")
    if extra:
        values["Extra"] = "".join(extra)
    level, kind_type = get("level"), get("type")
    if level:
        values["Level"] = escape(level)
    if time_limit := get("time_limit"):
        values["TimeLimit"] = escape(time_limit)
    values["Kind"] = card.kind
    values["Source"] = _escaped_origin(origin)
    # Fields written as plain text: MathJax would still typeset a \( or \[ in them, unchecked.
    for name, value in (("level", level), ("type", kind_type), ("source", origin)):
        if value and ("\\(" in value or "\\[" in value):
            report.error(where.path, where.line, f"{name} {value} holds \\( or \\[; remove it")
    notetype = notetype_of(card.kind, data)
    if card.kind == "cloze":
        from deckbuild.cloze import render as render_cloze

        values["Text"] = render_cloze(data["question"], lambda t: render_text(t, where, report))
        # An image left out of the text (not found, too large) has its warning already.
        left_out = len(missing) > before
        values["Extra"] = text("answer") + values.get("Extra", "")
        _check_clozes(data["question"], values["Text"], where, report, left_out)
    else:
        # What each card of the note shows first: nothing there is a blank card for learners.
        if between == before and not _shows_something(front):
            report.error(where.path, where.line, f"the question {_SHOWS_NOTHING}")
        if notetype.label == "reversed" and len(missing) == between and not _shows_something(values["Back"]):
            report.error(
                where.path, where.line, f"the answer (the front of its reversed card) {_SHOWS_NOTHING}"
            )
    # The card's note type lays the values out: its own fields, in its own order.
    slots = _slots(notetype.fields)
    fields = [""] * len(slots)
    for name, value in values.items():
        if (at := slots.get(name)) is not None:
            fields[at] = value if "[" not in value else _defuse(value)
    return fields


def _question_and_answer(data: dict[str, Any], origin: str, report: Reports, where: Where) -> list[str]:
    """Render a basic card of a question and an answer alone, as `note_fields` does, in fewer steps.

    Most cards of a semicolon file are one: of the sixteen things `note_fields` looks for, they
    have two. The same fields and problems, in the same order (a Hypothesis test holds the two
    ways to each other).
    """
    question, answer = data["question"], data["answer"]
    missing = where.missing
    before = len(missing)
    front = render_text(question, where, report) if question else ""
    between = len(missing)
    back = render_text(answer, where, report) if answer else ""
    if "\\(" in origin or "\\[" in origin:
        report.error(where.path, where.line, f"source {origin} holds \\( or \\[; remove it")
    if between == before and not _shows_something(front):
        report.error(where.path, where.line, f"the question {_SHOWS_NOTHING}")
    count, *places = _basic_places(notetype_of("basic", data).fields)
    fields = [""] * count
    for at, value in zip(places, (front, back, "basic", _escaped_origin(origin)), strict=True):
        if at is not None:
            fields[at] = value if "[" not in value else _defuse(value)
    return fields


@lru_cache(maxsize=16)
def _basic_places(fields: tuple[str, ...]) -> tuple[int, int | None, int | None, int | None, int | None]:
    """Count a note type's fields, and find its Front, Back, Kind and Source (None where it has none)."""
    slots = _slots(fields)
    return len(slots), slots.get("Front"), slots.get("Back"), slots.get("Kind"), slots.get("Source")


_SHOWS_NOTHING = (
    "shows nothing once rendered (only an HTML comment, a tag a card does not keep, blanks, a "
    "formula of blanks, or an image of no size); write it as text"
)
# Characters that show nothing, beyond blanks and format characters (Unicode's Cf: zero-width
# spaces, direction marks, the BOM, tag characters): fillers drawn as empty space.
_UNSEEN = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u180e\u2800\u3164\uffa0")
_ANY_TAG_RE = _deferred("_ANY_TAG_RE", r"<[^>]*>")
# An image that names a file (the sanitizer leaves `<img>` without a `src` it refused), whole.
_IMAGE_RE = _deferred("_IMAGE_RE", r'<img\b[^>]*\ssrc="[^"]+"[^>]*>')
# A width or height of nothing, as a browser reads the number it starts with: no room at all.
_NO_SIZE_RE = _deferred("_NO_SIZE_RE", r'\s(?:width|height)="\s*\+?(?:0+(?:\.0*)?|\.0+)(?![0-9.])[^"]*"')
# What MathJax draws as nothing: blanks, spacing, struts, style switches, empty groups, a
# phantom of anything, and a font command (what it holds decides). A formula of these alone
# (\( \), \(\quad\), \(\hspace{1em}\), \(\text{ }\), \(\phantom{\text{Hi}}\)) shows nothing.
_UNDRAWN_RE = _deferred(
    "_UNDRAWN_RE",
    r"""\\[hv]?phantom\s*\{(?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*\}
    |\\(?:hspace|vspace|mspace)\*?\s*\{[^{}]*\}
    |\\(?:kern|mkern|hskip|mskip|vskip|hspace|vspace)(?![A-Za-z])(?:\s*-?[\d.]+\s*[a-z]{2}(?![A-Za-z]))?
    |\\(?:quad|qquad|thinspace|medspace|thickspace|enspace|enskip|negthinspace|negmedspace
        |negthickspace|displaystyle|textstyle|scriptstyle|scriptscriptstyle|mathstrut|strut
        |nonumber|notag|relax|smash|mathrm|mathbf|mathit|mathsf|mathtt|mathcal|mathbb
        |mathfrak|mathscr|boldsymbol|bm|pmb|operatorname|mathord|mathop|mathrel|mathbin
        |mathpunct|mathinner|mathopen|mathclose
        )\*?(?![A-Za-z])
    |\\(?:color|textcolor)\s*\{[^{}]*\}
    |\\(?:left|right|middle|[Bb]igg?[lr]?)\s*\.
    |\\(?:begin|end)\s*\{(?:matrix|smallmatrix|aligned|gathered|split)\}
    |%[^\n]*
    |\\(?:[,;:!>\s]|&gt;)|\\\\(?:\[[^\]]*\])?|&nbsp;|&\#160;|~|[\s{}]""",
    re.X,
)
# A group read in text mode: its words are drawn as they are (a `\quad` there is text to
# MathJax's default set-up), so it draws nothing only when it holds only blanks.
_TEXT_GROUP_RE = _deferred(
    "_TEXT_GROUP_RE",
    r"\\(?:text|mbox|hbox|textbf|textit|textrm|textsf|texttt|textnormal|emph)\*?\s*"
    r"\{((?:[^{}]|\{[^{}]*\})*)\}",
)
# A printable ASCII character in text between tags (not an entity: the slow path reads those).
_SEEN_RE = _deferred("_SEEN_RE", "(?:^|>)[^<&]*?[!-%'-;=?-~]")


def _shows_something(markup: str) -> bool:
    """Tell whether rendered HTML shows a learner anything: an image, or a character that is seen."""
    if ("\\(" in markup or "\\[" in markup) and "<code" not in markup and "<pre" not in markup:
        # A formula drawn as nothing is nothing (MathJax typesets none in code, which shows it).
        markup = MATH_IN_FIELD_RE.sub(_drawn_formula, markup)
    if _SEEN_RE.search(markup):
        return True  # nearly every card, at once
    if "<img" in markup and any(not _NO_SIZE_RE.search(image) for image in _IMAGE_RE.findall(markup)):
        return True
    text = html.unescape(_ANY_TAG_RE.sub("", markup)) if "<" in markup or "&" in markup else markup
    return any(_seen(c) for c in text)


def _drawn_formula(formula: re.Match[str]) -> str:
    """Keep a formula found in a field that MathJax draws as something; drop one it draws as nothing."""
    body = formula.group(1) if formula.group(1) is not None else formula.group(2)
    if "\\" in body and _TEXT_GROUP_RE.search(body):
        body = _TEXT_GROUP_RE.sub(lambda group: "x" if group.group(1).strip() else "", body)
    return formula.group(0) if _UNDRAWN_RE.sub("", body) else ""


def _seen(char: str) -> bool:
    """Tell whether a character is drawn: not a blank, a format character, a lone mark or a filler."""
    import unicodedata

    if char in _DRAWN_FORMAT:
        return True
    return not (char.isspace() or char in _UNSEEN or unicodedata.category(char) in ("Cf", "Mn", "Me", "Cc"))


# Format characters that are drawn all the same: Arabic number signs, the end of ayah, and kin.
_DRAWN_FORMAT = frozenset(
    "\u0600\u0601\u0602\u0603\u0604\u0605\u06dd\u070f\u0890\u0891\u08e2\U000110bd\U000110cd"
)


# An innermost cloze: its number, and its text up to its closing braces (a hint after "::").
_INNERMOST_RE = _deferred("_INNERMOST_RE", r"\{\{c(\d+)::((?:(?!\{\{c\d+::).)*?)\}\}", re.S)


def _hides_nothing(text: str) -> bool:
    """Tell whether a cloze's text (before any hint) shows nothing: its card would ask for nothing."""
    return not _shows_something(text.split("::", 1)[0])


def _cloze_openers(numbers: list[int]) -> str:
    return ", ".join(f"{{{{c{n}::" for n in numbers)


def _check_clozes(source: str, rendered: str, where: Where, report: Reports, left_out: bool = False) -> None:
    """Report a cloze the rendering hid: Anki would make no card of it, or break the card's HTML.

    With an image `left_out` of the text, a cloze that hides nothing may have held it: its
    warning says what to do, as for a question that is only such an image.
    """
    from deckbuild.cloze import numbers

    inside = sorted({n for tag in _ANY_TAG_RE.findall(rendered) for n in numbers(tag)})
    if inside:
        # Anki puts its cloze markup wherever the cloze is, even inside an attribute.
        shown = _cloze_openers(inside)
        report.error(
            where.path, where.line,
            f"the cloze {shown} is inside an HTML tag (an image's alt, a link's address or title), "
            "where Anki's cloze would break the card; put it in the text",
        )  # fmt: skip
    elif not left_out and (
        empty := sorted(
            {int(m.group(1)) for m in _INNERMOST_RE.finditer(rendered) if _hides_nothing(m.group(2))}
        )
    ):
        shown = _cloze_openers(empty)
        report.error(
            where.path, where.line,
            f"the cloze {shown} hides nothing once rendered (empty, or only a comment or blanks); "
            "write what it hides",
        )  # fmt: skip
    elif lost := sorted(set(numbers(source)) - set(numbers(_ANY_TAG_RE.sub("", rendered)))):
        shown = _cloze_openers(lost)
        report.error(
            where.path, where.line,
            f"the cloze {shown} is inside an HTML comment or a tag a card does not keep, so Anki "
            "would make no card of it; put it in the text",
        )  # fmt: skip


@lru_cache(maxsize=16)
def _slots(fields: tuple[str, ...]) -> dict[str, int]:
    """Map each field of a note type to its place: a card sets a few, the rest stay empty."""
    return {name: at for at, name in enumerate(fields)}


@lru_cache(maxsize=256)
def _escaped_origin(origin: str) -> str:
    # One per source file, where each of its cards escaped it again.
    return escape(origin)
