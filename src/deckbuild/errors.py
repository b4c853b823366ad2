"""Problems found in deck sources, and the few exceptions that carry them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

# Compiled on first use (by the module's __getattr__ below): a build that nothing changed
# prints no problem, and compiling these classes of characters would cost it a millisecond.
_PATTERNS = {
    # What Anki cannot keep in a note: U+001F is its field separator (a field holding one makes
    # Anki refuse the whole package), the other C0 controls and DEL it drops without a word, and
    # a lone surrogate is not text that UTF-8 can store. Tab, line feed and carriage return are text.
    "UNSAFE_RE": r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]",
    # In names (decks, tags, paths) no control character belongs at all. Also escaped in messages:
    # a file name must not move the terminal's cursor, and a surrogate cannot be printed.
    "UNSAFE_NAME_RE": r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]",
    # What `printable` escapes besides: C1 controls (a terminal may take \x9b for an escape
    # sequence), line and paragraph separators, and the bidirectional controls that would show
    # a path or a message in another order than it is written.
    "UNSHOWN_RE": r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
    r"\ud800-\udfff]",
}
# A GUID kept from an Anki deck (a `GUID` column, written by 'deckbuild import'): Anki's own are
# ten characters of letters, digits and punctuation (`;` and `"` included); any printable ASCII
# without a blank is kept, as the learners' notes are matched by it byte for byte.
ANKI_GUID = r"[!-~]{1,100}"
# A card's UUID as written in a source: hex digits 8-4-4-4-12, in either case.
UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


# The C0 controls and DEL that Anki drops from a note's fields, tags and deck names without a word.
DROPPED = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x1F), 0x7F])


def field_fault(fields: Sequence[str], names: Sequence[str]) -> str | None:
    """Name a character Anki cannot keep in a note's fields, if any (in C when there is none)."""
    try:
        data = "\n".join(fields).encode("utf-8")
        if len(data.translate(None, DROPPED + b"\x1f")) == len(data):
            return None
    except UnicodeEncodeError:
        pass
    unsafe = __getattr__("UNSAFE_RE")
    for name, text in zip(names, fields, strict=False):
        if found := unsafe.search(text):
            return f"the field {name} holds {unsafe_character(found.group())}"
    return None


def unsafe_character(char: str) -> str:
    """Name a character Anki cannot keep, for a message."""
    code = f"U+{ord(char):04X}"
    if char == "\x1f":
        return f"{code} (Anki's field separator)"
    if "\ud800" <= char <= "\udfff":
        return f"{code} (a lone surrogate, not valid text)"
    return f"the control character {code}"


def __getattr__(name: str) -> re.Pattern[str]:
    """Compile UNSAFE_RE, UNSAFE_NAME_RE or UNSHOWN_RE the first time it is asked for."""
    if name not in _PATTERNS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    pattern = globals()[name] = re.compile(_PATTERNS[name])
    return pattern


def printable(text: str) -> str:
    """Escape control characters, line separators, bidirectional controls and lone surrogates."""
    unsafe = __getattr__("UNSHOWN_RE")  # after the first, found in re's own cache
    return unsafe.sub(lambda m: m.group().encode("unicode_escape", "backslashreplace").decode(), text)


def printable_json(text: str) -> str:
    """Escape in JSON text what `printable` escapes, as JSON's own \\uNNNN: the values stay the same."""
    unshown = __getattr__("UNSHOWN_RE")
    # A tab or line break is the layout between values: inside a string json.dumps escapes it.
    return unshown.sub(lambda m: m.group() if m.group() in "\t\n\r" else f"\\u{ord(m.group()):04x}", text)


class Severity(StrEnum):
    """How bad a problem is: errors stop a build, warnings only under --strict."""

    ERROR = "error"
    WARNING = "warning"


# A tuple: ordered, hashable and immutable as a frozen dataclass with order would be, and
# made at start-up without compiling eight methods (a millisecond of every build).
class Problem(NamedTuple):
    """One thing wrong at `path:line`, with what to do about it."""

    path: str
    line: int
    message: str
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        prefix = "" if self.severity is Severity.ERROR else "warning: "
        # Line 0 marks a problem with a whole folder, which has no lines.
        where = f"{self.path}:{self.line}" if self.line else self.path
        return printable(f"{where}: {prefix}{self.message}")


@dataclass
class Report:
    """Everything a run found: problems, and the counts that must reconcile."""

    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    _seen: set[Problem] = field(default_factory=set, repr=False, compare=False)
    # The notes that tell what this run changed (ids given, cards moved or retired): a build
    # answered from its record changed nothing, and does not tell them again.
    changes: set[str] = field(default_factory=set, repr=False, compare=False)

    def change(self, note: str) -> None:
        """Tell, in the notes, something this run changed."""
        self.notes.append(note)
        self.changes.add(note)

    def error(self, path: str, line: int, message: str) -> None:
        """Record an error at `path:line`."""
        self._add(Problem(path, line, message, Severity.ERROR))

    def warn(self, path: str, line: int, message: str) -> None:
        """Record a warning at `path:line`."""
        self._add(Problem(path, line, message, Severity.WARNING))

    def _add(self, problem: Problem) -> None:
        # The same text checked twice (a quiz option that is also the card's answer) is one problem.
        if problem not in self._seen:
            self._seen.add(problem)
            self.problems.append(problem)

    def count(self, key: str, n: int = 1) -> None:
        """Add `n` to the counter `key`."""
        self.counts[key] = self.counts.get(key, 0) + n

    @property
    def errors(self) -> list[Problem]:
        return sorted(p for p in self.problems if p.severity is Severity.ERROR)

    @property
    def warnings(self) -> list[Problem]:
        return sorted(p for p in self.problems if p.severity is Severity.WARNING)

    def sorted_problems(self) -> list[Problem]:
        """Return every problem, sorted by file and line."""
        return sorted(self.problems, key=lambda p: (p.path, p.line, p.severity, p.message))

    def failed(self, strict: bool = False) -> bool:
        """Tell whether this run must fail."""
        return bool(self.errors) or (strict and bool(self.warnings))


class DeckbuildError(Exception):
    """Base of every error deckbuild reports to a user instead of a traceback."""


class BuildFailed(DeckbuildError):
    """A run that found errors (or warnings under --strict); the report has them all."""

    def __init__(self, report: Report, strict: bool = False) -> None:
        super().__init__(f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)")
        self.report = report
        self.strict = strict


class LockChanged(DeckbuildError):
    """A --frozen build would have changed the lock file."""
