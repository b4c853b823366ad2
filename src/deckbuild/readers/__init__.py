"""Readers turn the lines of one source file into raw cards, before validation.

Every module here that declares a `DETECT` literal is a reader: adding a source format is
one new file. The declaration is read from the module's text, not by importing it, so a tree
of semicolon files never pays for importing the page reader.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

# `DETECT = {...}` at the start of a line, up to the first line that is only "}".
_DECLARATION = re.compile(r"^DETECT = (\{.*?^\})", re.MULTILINE | re.DOTALL)
# Whitespace, and the characters a browser copies that show nothing: zero-width space and
# joiners, word joiner, byte-order mark. A line of only these looks blank, so it is blank.
INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"


def visible(line: str) -> str:
    """Strip a line of whitespace and invisible characters at both ends."""
    # str.strip() first, in C: nearly every line has no invisible character at its ends.
    text = line.strip()
    while text and (text[0] in INVISIBLE or text[-1] in INVISIBLE):
        text = text.strip(INVISIBLE).strip()
    return text


@dataclass
class RawCard:
    """A card as read, not yet validated: its line, kind and fields."""

    line: int
    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    # What identifies a card that has no UUID in its source (quiz pages), for the lock file.
    key: str | None = None
    # Where the reader knows them: the input line of each line of a text field, so that a
    # problem inside a field (a broken directive) is reported at its own line.
    field_lines: dict[str, list[int]] = field(default_factory=dict)


# How well a format recognises a text (Format.recognition).
SURE, LIKELY = 2, 1


@dataclass(frozen=True)
class Format:
    """A source format as its reader declares it: how to recognise its text, and where to read it."""

    name: str
    module: str
    # What the format is called in messages ("a Question;Answer;UUID file").
    what: str
    # Readers are asked in this order (then by name); the first that recognises the text reads it,
    # the first that is sure of it (its marks) before the first that finds it likely.
    order: int
    # Sure of the text when the first non-blank line matches, or when any line (stripped) does.
    first_line: re.Pattern[str] | None
    any_line: re.Pattern[str] | None
    # Finds it likely when one of these does: a shape other text may have too (two semicolons).
    likely_first_line: re.Pattern[str] | None = None
    likely_any_line: re.Pattern[str] | None = None

    def recognition(self, lines: list[str], first: str) -> int:
        """How surely text whose first non-blank line is `first` is in this format: SURE, LIKELY or 0."""
        for strength, on_first, on_any in (
            (SURE, self.first_line, self.any_line),
            (LIKELY, self.likely_first_line, self.likely_any_line),
        ):
            if on_first is not None and on_first.search(first):
                return strength
            if on_any is not None and any(on_any.search(visible(line)) for line in lines):
                return strength
        return 0

    def recognises(self, lines: list[str], first: str) -> bool:
        """Tell whether text whose first non-blank line is `first` may be in this format."""
        return self.recognition(lines, first) > 0


@lru_cache(maxsize=1)
def formats() -> tuple[Format, ...]:
    """Return every reader's declared format, in the order they are asked."""
    return scan(Path(__file__).parent, __name__)


def scan(folder: Path, package: str) -> tuple[Format, ...]:
    """Read the format declared by each module in `folder` (the package `package`)."""
    found = []
    for path in sorted(folder.glob("*.py")):
        match = _DECLARATION.search(path.read_text(encoding="utf-8"))
        if match is None:
            continue  # a helper module (pycode), not a reader
        spec = ast.literal_eval(match.group(1))
        found.append(
            Format(
                path.stem,
                f"{package}.{path.stem}",
                spec["what"],
                spec.get("order", 50),
                re.compile(spec["first_line"], re.IGNORECASE) if "first_line" in spec else None,
                re.compile(spec["any_line"]) if "any_line" in spec else None,
                re.compile(spec["likely_first_line"], re.IGNORECASE) if "likely_first_line" in spec else None,
                re.compile(spec["likely_any_line"]) if "likely_any_line" in spec else None,
            )
        )
    return tuple(sorted(found, key=lambda f: (f.order, f.name)))


def detect(lines: list[str]) -> Format | None:
    """Return the format of a file's text, or None when no reader recognises it."""
    first = next((line for line in lines if visible(line)), "")
    # A format sure of the text wins over one that finds it likely: a quiz page whose first line
    # happens to hold two semicolons is a quiz page. The first sure one ends the search: a
    # semicolon file's header, and no other reader reads its thousands of lines.
    likely = None
    for found in formats():
        strength = found.recognition(lines, first)
        if strength == SURE:
            return found
        if strength == LIKELY and likely is None:
            likely = found
    return likely


def describe_formats() -> str:
    """Name every known format for a message: 'a X, a Y nor a Z'."""
    names = [f.what for f in formats()]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " nor " + names[-1]
