"""Render card text as Anki will show it: Markdown, protected LaTeX, highlighted code, safe HTML."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from deckbuild.errors import Report
from deckbuild.models import CardBase, Option, Step
from deckbuild.notetype import FIELDS

# Private-use characters: Markdown and the sanitizer leave them alone, and authors never type them.
_PH_OPEN, _PH_CLOSE = "\ue000", "\ue001"
_PH_RE = re.compile(f"{_PH_OPEN}(\\d+){_PH_CLOSE}")

ALLOWED_TAGS = frozenset(
    [
        "a",
        "abbr",
        "b",
        "blockquote",
        "br",
        "code",
        "dd",
        "del",
        "div",
        "dl",
        "dt",
        "em",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "img",
        "kbd",
        "li",
        "mark",
        "ol",
        "p",
        "pre",
        "s",
        "small",
        "span",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "u",
        "ul",
    ]
)
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
    {
        "color",
        "background",
        "background-color",
        "font-weight",
        "font-style",
        "text-decoration",
        "line-height",
        "border",
    }
)
URL_SCHEMES = frozenset({"http", "https", "mailto"})

_CODE_RE = re.compile(r"(?ms)^[ \t]*(`{3,}|~{3,})[^\n]*\n.*?^[ \t]*\1[ \t]*$|(`+)(?!`).+?(?<!`)\2(?!`)")
_BR_RE = re.compile(r"[ \t]*<br\s*/?>[ \t]*", re.IGNORECASE)
_UNKNOWN_CMD_RE = re.compile(r"<mi>\\([A-Za-z]+)</mi>")
_STRAY_SPACE_RE = re.compile(r"\\ (text|mathbf|mathrm|frac|sqrt|left|right|cdot|sum|dots)\b")


@dataclass(frozen=True)
class Where:
    """The place a piece of text comes from, for messages."""

    path: str
    line: int


@dataclass(frozen=True)
class Math:
    """A formula found in text, with its delimiters as Anki's MathJax wants them."""

    body: str
    display: bool

    def html(self) -> str:
        # Only < and > are escaped: enough to keep markup out, and & stays as authors wrote it.
        body = self.body.replace("<", "&lt;").replace(">", "&gt;")
        return f"\\[{body}\\]" if self.display else f"\\({body}\\)"


def extract_math(text: str, where: Where, report: Report) -> tuple[str, list[Math]]:
    """Replace every formula outside code with a placeholder; return text and formulas."""
    formulas: list[Math] = []
    out: list[str] = []

    def hold(body: str, display: bool) -> None:
        out.append(f"{_PH_OPEN}{len(formulas)}{_PH_CLOSE}")
        formulas.append(Math(body, display))

    pos = 0
    for code in _CODE_RE.finditer(text):
        _scan_math(text[pos : code.start()], where, report, out, hold)
        out.append(code.group(0))
        pos = code.end()
    _scan_math(text[pos:], where, report, out, hold)
    return "".join(out), formulas


def _scan_math(text: str, where: Where, report: Report, out: list[str], hold: Any) -> None:
    i = 0
    plain_from = 0
    while i < len(text):
        ch = text[i]
        two = text[i : i + 2]
        if two in ("\\(", "\\["):
            closer = "\\)" if two == "\\(" else "\\]"
            end = text.find(closer, i + 2)
            if end == -1:
                report.error(
                    where.path,
                    where.line,
                    f"unbalanced math: {two} without {closer}; close the formula",
                )
                i += 2
                continue
            out.append(text[plain_from:i])
            hold(text[i + 2 : end], two == "\\[")
            i = plain_from = end + 2
            continue
        if two == "\\$":
            out.append(text[plain_from:i] + "&#36;")
            i = plain_from = i + 2
            continue
        if two == "$$":
            end = text.find("$$", i + 2)
            if end == -1:
                report.error(
                    where.path,
                    where.line,
                    "unbalanced math: $$ without a closing $$; close it, or write \\$ for a dollar",
                )
                i += 2
                continue
            out.append(text[plain_from:i])
            hold(text[i + 2 : end], True)
            i = plain_from = end + 2
            continue
        if ch == "$":
            end = _inline_dollar_end(text, i)
            if end != -1:
                out.append(text[plain_from:i])
                hold(text[i + 1 : end], False)
                i = plain_from = end + 1
                continue
        i += 1
    out.append(text[plain_from:])


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


def check_math(formula: Math, where: Where, report: Report) -> None:
    """Check a formula the way MathJax will read it; record what is wrong."""
    body = formula.body
    depth = 0
    i = 0
    while i < len(body):
        if body[i] == "\\":
            i += 2
            continue
        if body[i] == "{":
            depth += 1
        elif body[i] == "}":
            depth -= 1
            if depth < 0:
                break
        i += 1
    shown = formula.html()
    if depth != 0:
        report.error(where.path, where.line, f"unbalanced braces in formula {shown}; match every {{ with }}")
        return
    stray = _STRAY_SPACE_RE.search(body)
    if stray:
        report.warn(
            where.path,
            where.line,
            f"'\\ {stray.group(1)}' in formula {shown} looks like \\{stray.group(1)} "
            "with a stray space; remove the space",
        )
    mathml = _mathml(body, formula.display)
    if mathml is None:
        report.error(
            where.path, where.line, f"malformed formula {shown}; check \\left/\\right pairs and commands"
        )
        return
    for name in sorted(set(_UNKNOWN_CMD_RE.findall(mathml))):
        report.warn(
            where.path, where.line, f"unknown LaTeX command \\{name} in formula {shown}; check its spelling"
        )


@lru_cache(maxsize=4096)
def _mathml(body: str, display: bool) -> str | None:
    from latex2mathml.converter import convert

    try:
        result: str = convert(body, display="block" if display else "inline")
    except Exception:  # latex2mathml raises many unrelated types for malformed input
        return None
    return result


_MOJIBAKE_RE = re.compile(
    r"[\u0080-\u00ff\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192"
    r"\u02c6\u02dc\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030"
    r"\u2039\u203a\u20ac\u2122]{2,}"
)


def _cp1252_bytes(run: str) -> bytes:
    # Bytes cp1252 leaves undefined were read as Latin-1 control characters: map them back.
    return b"".join(
        bytes([ord(ch)]) if ord(ch) < 0x100 and ch.encode("cp1252", "ignore") == b"" else ch.encode("cp1252")
        for ch in run
    )


def _repair_run(match: re.Match[str]) -> str:
    run = match.group(0)
    try:
        fixed = _cp1252_bytes(run).decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return run
    return fixed


def fix_mojibake(text: str, where: Where, report: Report) -> str:
    """Repair UTF-8 text that was once decoded as cp1252 or Latin-1, with a warning."""
    if text.isascii():
        return text
    fixed = _MOJIBAKE_RE.sub(_repair_run, text)
    if fixed != text:
        report.warn(
            where.path,
            where.line,
            "repaired mojibake (UTF-8 once read as Windows-1252); fix the source text",
        )
    return fixed


@lru_cache(maxsize=1)
def _markdown() -> Any:
    import markdown

    return markdown.Markdown(
        extensions=["fenced_code", "tables", "sane_lists", "nl2br", "codehilite"],
        extension_configs={
            # Inline styles, not classes: every Anki client keeps them without our stylesheet.
            "codehilite": {"noclasses": True, "guess_lang": False, "pygments_style": "friendly"},
        },
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
    return result


def render_text(text: str, where: Where, report: Report, inline: bool = False) -> str:
    """Render one field of Markdown with LaTeX to the safe HTML stored in the note."""
    text = fix_mojibake(text, where, report)
    held, formulas = extract_math(text, where, report)
    for formula in formulas:
        check_math(formula, where, report)
    # `<br>` is how one-line formats write a line break; as a real one, Markdown sees lists.
    held = _BR_RE.sub("\n", held)
    md = _markdown()
    md.reset()
    markup = md.convert(held)
    markup = sanitize(markup).strip()
    if inline and markup.startswith("<p>") and markup.endswith("</p>") and markup.count("<p>") == 1:
        markup = markup[3:-4]
    return _PH_RE.sub(lambda m: formulas[int(m.group(1))].html(), markup)


def highlight(code: str, language: str = "python") -> str:
    """Highlight a block of code with inline styles."""
    from pygments import highlight as pyg_highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name

    formatter = HtmlFormatter(noclasses=True, nowrap=False, style="friendly")
    return sanitize(pyg_highlight(code, get_lexer_by_name(language), formatter)).strip()


def escape(text: str) -> str:
    """Escape plain text for HTML."""
    return html.escape(text, quote=True)


def options_html(options: tuple[Option, ...], where: Where, report: Report) -> str:
    """Render lettered options as a list the template can highlight by letter."""
    items = "".join(
        f'<li class="db-opt db-opt-{o.letter}"><span class="db-letter">{o.letter}</span>'
        f"{render_text(o.text, where, report, inline=True)}</li>"
        for o in options
    )
    return f'<ol class="db-opts">{items}</ol>'


def steps_html(steps: tuple[Step, ...], where: Where, report: Report) -> str:
    """Render a worked solution as numbered steps."""
    items = "".join(
        f'<li><span class="db-step-title">{render_text(s.title, where, report, inline=True)}</span>'
        f"{render_text(s.text, where, report)}</li>"
        for s in steps
    )
    return f'<ol class="db-steps">{items}</ol>'


def _labelled(label: str, body: str) -> str:
    return f'<div class="db-label">{label}</div>{body}'


def _title(data: dict[str, Any], where: Where, report: Report) -> str:
    title = render_text(data["title"], where, report, inline=True) if data.get("title") else ""
    kind = data.get("type")
    badge = f'<span class="db-type">{escape(kind)}</span> ' if kind else ""
    return (badge + title).strip()


def note_fields(card: CardBase, origin: str, report: Report) -> list[str]:
    """Render a card into the note type's fields, in their fixed order."""
    where = Where(card.path, card.line)
    data = card.model_dump()

    def text(name: str, inline: bool = False) -> str:
        value = data.get(name)
        return render_text(value, where, report, inline) if value else ""

    extra: list[str] = []
    if data.get("quick_check"):
        extra.append(_labelled("Quick check", text("quick_check")))
    if data.get("mistakes"):
        items = "".join(f"<li>{render_text(m, where, report, inline=True)}</li>" for m in data["mistakes"])
        extra.append(_labelled("Common mistakes", f"<ul>{items}</ul>"))
    if data.get("concepts"):
        extra.append(f"<p>Your answer should cover {data['concepts']} key concepts.</p>")
    options = getattr(card, "options", ())
    steps = getattr(card, "solution", ())
    code = data.get("code")
    values = {
        "Front": text("question"),
        "Back": text("answer"),
        "Title": _title(data, where, report),
        "Options": options_html(options, where, report) if options else "",
        "Correct": data.get("correct") or "",
        "Explanation": text("explanation"),
        "Hint": text("hint"),
        "Solution": steps_html(steps, where, report) if steps else "",
        "Code": highlight(code) if code else "",
        "Extra": "".join(extra),
        "Level": escape(data.get("level") or ""),
        "TimeLimit": escape(data.get("time_limit") or ""),
        "Kind": card.kind,
        "Source": escape(origin),
        "Status": "",
    }
    return [values[name] for name in FIELDS]
