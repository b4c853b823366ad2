"""Helpers for tests that import packages into a real Anki collection."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Imported:
    new: int
    updated: int
    duplicate: int
    conflicting: int


def import_package(col: Any, apkg: Path) -> Imported:
    """Import `apkg` with the options the desktop Import page pre-selects."""
    from anki.collection import ImportAnkiPackageRequest

    options = col._backend.get_import_anki_package_presets()
    result = col.import_anki_package(ImportAnkiPackageRequest(package_path=str(apkg), options=options))
    col.models._clear_cache()
    log = result.log
    return Imported(len(log.new), len(log.updated), len(log.duplicate), len(log.conflicting))


def notes_by_guid(col: Any) -> dict[str, Any]:
    """Return every note of the collection, keyed by GUID."""
    return {col.get_note(nid).guid: col.get_note(nid) for nid in col.find_notes("")}


def card_states(col: Any) -> dict[int, tuple[int, ...]]:
    """Return each card's review state: what a learner would lose if an import reset it."""
    states = {}
    for cid in col.find_cards(""):
        c = col.get_card(cid)
        states[cid] = (c.nid, c.type, c.queue, c.due, c.ivl, c.factor, c.reps, c.lapses, c.did)
    return states


def study_all(col: Any, ease: int = 3) -> None:
    """Answer every card once, as a learner would in a review session."""
    for cid in col.find_cards(""):
        card = col.get_card(cid)
        card.start_timer()
        col.sched.answerCard(card, ease)


def visible_text(html: str) -> str:
    """Strip tags and the style block: what a learner reads."""
    html = re.sub(r"(?s)<style>.*?</style>", "", html)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()
