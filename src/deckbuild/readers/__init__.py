"""Readers turn the lines of one source file into raw cards, before validation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
