"""What a browser, Anki and Anki's MathJax would make live from a field's HTML: a checker
written apart from render.py, so that the tests do not trust the code they test."""

from __future__ import annotations

import re
from html.parser import HTMLParser

ACTIVE_TAGS = {"script", "iframe", "frame", "object", "embed", "applet", "svg", "math", "form", "input",
               "button", "textarea", "select", "style", "meta", "base", "link", "details", "audio", "video",
               "source", "track", "template", "noscript"}  # fmt: skip
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "data", "srcdoc", "poster", "background",
                  "xlink:href"}  # fmt: skip
BAD_SCHEMES = ("javascript:", "data:", "vbscript:", "file:")
LINKS = ("http://", "https://", "mailto:")
# MathJax commands that make links, styles, classes, ids, load code or define macros.
MATH_COMMANDS = ["href", "url", "style", "class", "cssId", "data", "unicode", "require", "mmlToken",
                 "setOptions", "csname", "def", "gdef", "edef", "xdef", "let", "futurelet", "global",
                 "newcommand", "renewcommand", "providecommand", "newenvironment", "renewenvironment",
                 "Newextarrow"]  # fmt: skip
_LOWER_COMMANDS = {c.lower() for c in MATH_COMMANDS}
# What Anki's MathJax leaves alone (its defaults): text in these is never typeset.
_SKIPPED = {"code", "pre", "script", "noscript", "style", "textarea", "annotation", "annotation-xml"}
_AV = re.compile(r"(?i)\[(?:sound|anki):")
# Browsers drop tabs and line breaks anywhere in a URL, and control characters and spaces around it.
_URL_NOISE = re.compile(r"[\t\n\r]")
_CONTROL_AND_SPACE = "".join(map(chr, range(0x21)))


class _Field(HTMLParser):
    """Every element, attribute and typeset text run a browser would build from a field."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []
        self.skipped = 0

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, attrs))
        if tag in _SKIPPED:
            self.skipped += 1
        self.text.append("\n" if tag == "br" else "")

    def handle_endtag(self, tag):
        if tag in _SKIPPED:
            self.skipped -= 1

    def handle_data(self, data):
        if self.skipped <= 0:
            self.text.append(data)


def formulas(text: str) -> list[str]:
    """Find the formulas MathJax would typeset in text: its own scan, braces and escapes counted."""
    found = []
    i = 0
    while (start := re.compile(r"\\[(\[]").search(text, i)) is not None:
        close = "\\)" if start.group(0) == "\\(" else "\\]"
        j, braces = start.end(), 0
        while j < len(text):
            if text.startswith(close, j) and braces == 0:
                break
            if text[j] == "\\":
                j += 2
                continue
            braces += {"{": 1, "}": -1 if braces else 0}.get(text[j], 0)
            j += 1
        if j >= len(text):
            i = start.end()
            continue
        found.append(text[start.end() : j])
        i = j + 2
    return found


def math_dangers(formula: str) -> list[str]:
    names = [m.group(1) for m in re.finditer(r"\\([A-Za-z]+)", formula)]
    bad = [f"\\{name}" for name in names if name.lower() in _LOWER_COMMANDS]
    for options in re.finditer(r"(?i)\\(?:bbox|enclose)\s*(?:\{[^{}]*\})?\s*\[([^\]]*)", formula):
        if re.search(r"[:={}\\]", options.group(1)):
            bad.append(f"styled {options.group(0)}")
    return bad


def dangers(markup: str) -> list[str]:
    """List everything in a field that could run script, load, play, hide or escape the card."""
    parser = _Field()
    parser.feed(markup)
    parser.close()
    bad = [f"av tag {m.group(0)}" for m in _AV.finditer(markup)]
    for tag, attrs in parser.found:
        if tag in ACTIVE_TAGS:
            bad.append(f"<{tag}>")
        for name, value in attrs:
            value = value or ""
            url = _URL_NOISE.sub("", value).strip(_CONTROL_AND_SPACE).lower()
            if name.startswith("on"):
                bad.append(f"{tag} {name}")
            if name in URL_ATTRIBUTES and url.startswith(BAD_SCHEMES):
                bad.append(f"{tag} {name}={value}")
            if tag == "a" and name == "href" and not url.startswith(LINKS):
                bad.append(f"a href={value}")
            if name == "style" and re.search(r"(?i)url\(|expression\(|\\|transparent|position", value):
                bad.append(f"{tag} style={value}")
    for formula in formulas("".join(parser.text)):
        bad += math_dangers(formula)
    return bad
