"""deckbuild: keep flashcards as text and ship them to Anki."""

from __future__ import annotations

__version__ = "0.1.0"
