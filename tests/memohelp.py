"""Helpers for tests that read or tamper with the memo in a cache: one signed row per source file."""

from __future__ import annotations

import marshal
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deckbuild.cache import Cache


def memo_groups(cache_dir: Path) -> dict[str, dict[str, Any]]:
    """Return every group's entries, decoded, by signature, with its edit rows (nothing checked)."""
    with sqlite3.connect(cache_dir / "cache.sqlite") as db:
        rows = db.execute("SELECT grp, cards FROM memo ORDER BY grp").fetchall()
        edits = db.execute("SELECT grp, sig, entry FROM memo_delta ORDER BY grp, sig").fetchall()
    groups = {grp: {s: marshal.loads(e) for s, e in marshal.loads(cards).items()} for grp, cards in rows}
    for grp, sig, entry in edits:
        if entry is None:
            groups.get(grp, {}).pop(sig, None)
        else:
            groups.setdefault(grp, {})[sig] = marshal.loads(entry)
    return groups


def memo_fields(cache_dir: Path) -> list[str]:
    """Return the note fields of every remembered card, joined as Anki stores them."""
    return ["\x1f".join(entry[0]) for cards in memo_groups(cache_dir).values() for entry in cards.values()]


def rewrite_memo(cache_dir: Path, change: Callable[[Any], Any], key: bytes | None = None) -> int:
    """Replace every entry by `change(entry)` (bytes are stored as they are, anything else encoded).

    The rows (whole and edit rows) are signed again with `key`, by default the cache's own: as
    if deckbuild wrote them. Return how many entries changed.
    """
    signer = Cache(cache_dir)
    secret = signer.secret if key is None else key
    signer.close()
    changed = 0
    with sqlite3.connect(cache_dir / "cache.sqlite") as db:
        for grp, cards in db.execute("SELECT grp, cards FROM memo").fetchall():
            new = {}
            for sig, entry in marshal.loads(cards).items():
                value = change(marshal.loads(entry))
                new[sig] = value if isinstance(value, bytes) else marshal.dumps(value)
                changed += new[sig] != entry
            blob = marshal.dumps(new)
            seal = Cache.seal_cards(secret, grp, blob)
            db.execute("UPDATE memo SET cards = ?, seal = ? WHERE grp = ?", (blob, seal, grp))
        edits = db.execute("SELECT grp, sig, entry FROM memo_delta WHERE entry IS NOT NULL").fetchall()
        for grp, sig, entry in edits:
            value = change(marshal.loads(entry))
            blob = value if isinstance(value, bytes) else marshal.dumps(value)
            changed += blob != entry
            seal = Cache.seal_cards(secret, f"{grp}\x00{sig}", blob, b"memo-edit")
            change_edit = "UPDATE memo_delta SET entry = ?, seal = ? WHERE grp = ? AND sig = ?"
            db.execute(change_edit, (blob, seal, grp, sig))
    db.close()
    return changed
