"""Cloze deletions as Anki reads them: `{{c1::answer}}`, `{{c1::answer::hint}}`, several
numbers, and clozes nested in clozes. No I/O: checks and markers only.

Anki's parser closes the innermost open cloze at the first `}}`, even inside a formula: in
`{{c1::\\frac{1}{2}}}` the cloze ends after `{2`, and both the formula and the cloze break. The
cure Anki's manual gives is a space before the cloze's own `}}`: `{{c1::\\frac{1}{2} }}`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# What the reader takes for a cloze: anything that starts like one, even malformed.
LOOKS_LIKE = re.compile(r"\{\{c\d*:")
_VALID_OPEN = re.compile(r"\{\{c\d+::")
_TOKEN = re.compile(r"\{\{c(\d+)::|\}\}")
# Markers stand in for the cloze syntax while Markdown and the sanitizer run: letters and
# digits only, which neither changes.
_OPEN_MARK = "zqclozeopen{}zq"
_HINT_MARK = "zqclozehintzq"
_CLOSE_MARK = "zqclozeclosezq"
_MARK_RE = re.compile(r"zqclozeopen(\d+)zq|zqclozehintzq|zqclozeclosezq")


def problem(text: str) -> str | None:
    """Say what is wrong with the clozes of `text` (one sentence with what to do), or None."""
    stack: list[tuple[int, int]] = []  # (number, where its text starts)
    found = False
    for match in _TOKEN.finditer(text):
        if match.group(1) is not None:
            number = int(match.group(1))
            if number == 0:
                return "cloze numbers start at 1, found {{c0::; write {{c1::…}}"
            stack.append((number, match.end()))
            found = True
        elif stack:
            number, start = stack.pop()
            inside = text[start : match.start()]
            if inside.count("{") > inside.count("}"):
                shown = _short(text[start - len(f"{{{{c{number}::") : match.end()])
                return (
                    f"the cloze {shown} ends at the first }}}}, inside its formula; put a space "
                    "before the cloze's own closing }} (as Anki's manual says: {{c1::\\frac{1}{2} }})"
                )
    if stack:
        number, start = stack[-1]
        shown = _short(text[start - len(f"{{{{c{number}::") :])
        return f"the cloze {shown} never closes; end it with }}}}"
    for opener in LOOKS_LIKE.finditer(text):
        if found and not _VALID_OPEN.match(text, opener.start()):
            return f"a malformed cloze ({_short(text[opener.start() :])}); write it as {{{{c1::text}}}}"
    if not found:
        first = LOOKS_LIKE.search(text)
        shown = _short(text[first.start() :]) if first else ""
        return (
            f"a cloze with no deletion ({shown}); "
            "write a deletion as {{c1::text}} or {{c1::text::hint}}"
        )
    return None


def _short(text: str) -> str:
    return "'" + (text if len(text) <= 40 else text[:37] + "...") + "'"


def numbers(text: str) -> list[int]:
    """Return the cloze numbers of `text`, each once, in order: one card each."""
    return sorted({int(n) for n in re.findall(r"\{\{c(\d+)::", text)})


def render(text: str, render_text: Callable[[str], str]) -> str:
    """Render Markdown and LaTeX around and inside clozes, keeping the cloze syntax intact."""
    out: list[str] = []
    depth: list[bool] = []  # per open cloze: whether its hint separator was seen
    pos = 0
    for match in _TOKEN.finditer(text):
        between = text[pos : match.start()]
        if depth and not depth[-1] and "::" in between:
            between = between.replace("::", _HINT_MARK, 1)
            depth[-1] = True
        out.append(between)
        if match.group(1) is not None:
            out.append(_OPEN_MARK.format(match.group(1)))
            depth.append(False)
        elif depth:
            out.append(_CLOSE_MARK)
            depth.pop()
        else:
            out.append(match.group(0))
        pos = match.end()
    out.append(text[pos:])
    html = render_text("".join(out))
    return _MARK_RE.sub(_unmark, html)


def unmarked(text: str) -> str:
    """Write the markers `render` put in for the cloze syntax back as that syntax."""
    return _MARK_RE.sub(_unmark, text) if "zqcloze" in text else text


def _unmark(match: re.Match[str]) -> str:
    if match.group(1) is not None:
        return "{{c" + match.group(1) + "::"
    return "::" if match.group(0) == _HINT_MARK else "}}"


_INNERMOST = re.compile(r"\{\{c(\d+)::((?:(?!\{\{c\d+::).)*?)\}\}", re.S)


def card_text(text: str, number: int, answer: bool) -> str:
    """Show `text` as card `number` shows it: its clozes blanked on the front, marked on the back."""

    def one(match: re.Match[str]) -> str:
        content, _, hint = match.group(2).partition("::")
        if int(match.group(1)) != number:
            return content
        shown = content if answer else f"[{hint or '...'}]"
        return f'<span class="cloze">{shown}</span>'

    while True:
        text, count = _INNERMOST.subn(one, text)
        if not count:
            return text
