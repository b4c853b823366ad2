"""Stable ids for cards whose source carries none (quiz pages), kept in the lock file.

A card keeps its id while it is recognisably the same card: first by the exact text of its
question, then by the most similar question among the cards of the same file that lost
theirs in this edit. A file the lock does not know takes the ids of a file that is gone (a
renamed or moved page), matched by its questions. Only a card with no match at all gets a new id.
"""

from __future__ import annotations

import re
import uuid
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deckbuild.errors import Report
from deckbuild.lock import Entry, Lock
from deckbuild.readers import RawCard
from deckbuild.sources import SourceFile

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping

    from deckbuild.models import CardBase

# Fixed namespace: a page built for the first time, anywhere, gets the same ids.
ID_NAMESPACE = uuid.UUID("6c1b9a52-3f0e-4d8a-9b7e-2a4f8e61c0d3")
# How alike two questions must be (difflib ratio) to count as the same card, edited.
SIMILARITY = 0.6
KEY_LENGTH = 160
# How many (edited, lost) question pairs one file's build compares at most: see `assign`.
MAX_SIMILARITY_PAIRS = 250_000


def key_of(kind: str, data: dict[str, Any]) -> str:
    """Return what identifies a card among its file's cards: its normalised question."""
    text = " ".join(str(data.get(part) or "") for part in ("title", "question"))
    return re.sub(r"\s+", " ", text).strip().lower()[:KEY_LENGTH]


def lock_extra(source: SourceFile, card: CardBase) -> dict[str, str | None]:
    """Return what the lock keeps beside a card's hash: its file, and what identifies a page card."""
    if _needs_ids(card):
        return {"origin": source.origin, "kind": card.kind, "key": key_of(card.kind, card.model_dump())}
    return {"origin": source.origin}


def _needs_ids(card: CardBase) -> bool:
    return card.kind not in ("basic", "cloze")  # these carry their UUID in the source


class Taken:
    """What the sources of a build hold, for `keep_case`: no spelling of these is a UUID's earlier one.

    `find` gives every id the sources hold, as written (a GUID column's `AAAA…` is another note
    than a UUID `aaaa…`, as in Anki), and per deck root the files that keep GUIDs from Anki, by
    origin (a card deleted from there was no UUID's). Asked for only when a UUID's case alone
    differs from the lock's, which few builds ever meet: most never pay for it.
    """

    def __init__(self, find: Callable[[], tuple[Collection[str], Mapping[Path, Collection[str]]]]) -> None:
        self._find = find
        self._found: tuple[Collection[str], Mapping[Path, Collection[str]]] | None = None

    def held(self, root: Path) -> tuple[Collection[str], Collection[str]]:
        """Return the ids the sources hold, and the files of the tree at `root` that keep GUIDs."""
        if self._found is None:
            self._found = self._find()
        ids, anki_files = self._found
        return ids, anki_files.get(root, ())


NOTHING_TAKEN = Taken(lambda: ((), {}))


def keep_case(
    source: SourceFile, raws: list[RawCard], lock: Lock, report: Report, taken: Taken = NOTHING_TAKEN
) -> None:
    """Keep the spelling learners have of a UUID whose case alone changed in the source.

    Anki's GUIDs are case-sensitive: another spelling would be a new note beside the studied one.
    A spelling that is `taken` is never given: another card's, or a card's kept from Anki.
    """
    notes = lock.notes
    for raw in raws:
        guid = raw.data.get("id")
        if not isinstance(guid, str) or guid in notes or raw.data.get("anki_guid"):
            continue  # a GUID kept from Anki is case-sensitive: another case is another note
        spellings = lock.spellings().get(guid.lower(), ())
        if not spellings:
            continue
        present, kept_from_anki = taken.held(source.root)
        known = next(
            (s for s in spellings if s not in present and notes[s].origin not in kept_from_anki), None
        )
        if known is not None:
            report.warn(source.display, raw.line, case_kept(guid, known))
            raw.data["id"] = known


def case_kept(guid: str, known: str) -> str:
    """Say that a UUID keeps the spelling learners have, not the one the source gives it."""
    return (
        f"UUID {guid} differs only in case from {known}, the id learners already have "
        f"(Anki would make it a second card); kept {known}: write it that way in the source"
    )


def assign(
    source: SourceFile, raws: list[RawCard], lock: Lock, report: Report, held: Taken = NOTHING_TAKEN
) -> int:
    """Give the raw cards without an id the one their file's cards had before; return how many re-matched.

    The cards still without one are settled by `settle`, once every file has taken its own.
    `held` is what `keep_case` takes as taken.
    """
    keep_case(source, raws, lock, report, held)
    pending = [r for r in raws if "id" not in r.data]
    if not pending:
        return 0
    for raw in pending:
        raw.key = key_of(raw.kind, raw.data)
    known = lock.by_origin(source.origin)
    if not any(e.key is not None for e in known.values()):
        known = _moved_from(source, pending, lock, report) or known
    taken: set[str] = set()
    unmatched: list[RawCard] = []
    # Indexed by kind and question: matching stays linear in the number of cards.
    by_key: dict[tuple[str | None, str | None], list[str]] = {}
    for guid, entry in known.items():
        by_key.setdefault((entry.kind, entry.key), []).append(guid)
    for raw in pending:
        free = by_key.get((raw.kind, raw.key))
        if free:
            guid = free.pop(0)
            raw.data["id"] = guid
            taken.add(guid)
        else:
            unmatched.append(raw)
    candidates = [(g, e) for g, e in known.items() if g not in taken]
    if not unmatched or not candidates:
        pairs: list[tuple[float, int, str]] = []
    elif len(unmatched) * len(candidates) > MAX_SIMILARITY_PAIRS:
        # Comparing every edited question with every lost one grows with their product.
        pairs = []
        report.warn(
            source.display,
            unmatched[0].line,
            f"{len(unmatched)} questions changed and {len(candidates)} lost their match in one build: "
            f"too many to pair by similarity (at most {MAX_SIMILARITY_PAIRS:,} pairs), so they get new ids "
            "and learners lose their reviews; edit fewer questions between builds",
        )
    else:
        pairs = _similar_pairs(unmatched, candidates)
    rematched = 0
    for negative_ratio, n, guid in pairs:
        raw = unmatched[n]
        if -negative_ratio < SIMILARITY or "id" in raw.data or guid in taken:
            continue
        raw.data["id"] = guid
        taken.add(guid)
        rematched += 1
    lock.claimed.update(str(r.data["id"]) for r in raws if "id" in r.data)
    return rematched


def _similar_pairs(
    unmatched: list[RawCard], candidates: list[tuple[str, Entry]]
) -> list[tuple[float, int, str]]:
    """Pair edited questions with lost ones at least SIMILARITY alike, best pairs first.

    Best first, so that two edited cards never swap ids.
    """
    from difflib import SequenceMatcher

    pairs = []
    for n, raw in enumerate(unmatched):
        matcher = SequenceMatcher(None, raw.key or "", "")
        for guid, entry in candidates:
            if entry.kind != raw.kind:
                continue
            matcher.set_seq2(entry.key or "")
            # The cheap upper bounds first: most pairs are far apart.
            if matcher.real_quick_ratio() >= SIMILARITY and matcher.quick_ratio() >= SIMILARITY:
                pairs.append((-matcher.ratio(), n, guid))
    return sorted(pairs)


def _alike(pending: list[RawCard], entries: list[tuple[str, Entry]]) -> int:
    """Count the cards of a new page with a question alike one of a gone page's."""
    return len({n for _, n, _ in _similar_pairs(pending, entries)})


def settle(
    read: list[tuple[SourceFile, list[RawCard], int]],
    lock_of: dict[Path, Lock],
    report: Report,
    aside: set[Path] | frozenset[Path] = frozenset(),
) -> None:
    """Give the cards no file's own lock entries matched an id: a moved card's, else a new one.

    The files in `aside` (read for their ids alone, not built) take ids as any other, unreported.

    Runs once every file has taken its own entries, so that a card moved to another file (a
    page split in two) keeps its id and reviews, while a copied card never takes the id its
    original still holds.
    """
    moved_of: dict[str, int] = {}
    for source, raws, _ in read:
        lock = lock_of[source.root]
        for raw in raws:
            if "id" in raw.data:
                continue
            # Once per lock, as every file has claimed its own by now: popped as cards take them.
            found = lock.free_by_key().get((raw.kind, raw.key))
            if found:
                raw.data["id"] = found.pop(0)
                lock.claimed.add(raw.data["id"])
                moved_of[source.display] = moved_of.get(source.display, 0) + 1
    for source, raws, rematched in read:
        lock = lock_of[source.root]
        new = 0
        # Made when a card first needs a new id: most files give every card its own.
        used: set[str] | None = None
        # Where each question's numbering goes on: a page repeating one question stays linear.
        next_n: dict[tuple[str, str | None], int] = {}
        for raw in raws:
            if "id" in raw.data:
                continue
            if used is None:
                used = set(lock.notes) | {str(r.data["id"]) for r in raws if "id" in r.data}
            n = next_n.get((raw.kind, raw.key), 0)
            while True:
                # backslashreplace: a file name that is not UTF-8 gets an id too (its cards are refused).
                name = f"{source.origin}\n{raw.kind}\n{raw.key}\n{n}"
                name = name.encode("utf-8", "backslashreplace").decode()
                candidate = str(uuid.uuid5(ID_NAMESPACE, name))
                if candidate not in used:
                    break
                n += 1
            raw.data["id"] = candidate
            next_n[(raw.kind, raw.key)] = n + 1
            used.add(candidate)
            lock.claimed.add(candidate)
            new += 1
        if source.path in aside:
            continue
        moved = moved_of.get(source.display, 0)
        report.count("ids_new", new)
        report.count("ids_rematched", rematched)
        if new or rematched:
            report.change(f"{source.display}: {new} new id(s), {rematched} re-matched id(s)")
        if moved:
            report.change(f"{source.display}: {moved} card(s) moved here from another file keep their ids")


def by_content(
    lock: Lock,
    origin: str,
    kind: str,
    key: str,
    members: list[tuple[str, tuple[str, ...]]],
    left: list[str],
) -> list[str]:
    """Return the ids the cards of one page that share a question take: each the one of its content.

    A question says which ids such cards may have, not which is whose. `members` are the cards'
    ids as `assign` and `settle` gave them, with the hashes their content may have in the lock
    (the content hash, and the whole-note hash of older locks), in the page's order; `left` are
    the ids of cards with that question no card claimed (one deleted, say). A card whose content a
    lock entry has takes that entry's id; each other one takes the first id left that the page
    first numbered after the card before it (an edited card, its own). Neither a deleted card nor
    a rebuild moves reviews between them.
    """
    ids = [guid for guid, _ in members]
    origins = {origin}
    origins.update(entry.origin for g in ids if (entry := lock.notes.get(g)) is not None and entry.origin)
    pool = list(dict.fromkeys([*ids, *(g for g in left if lock.notes[g].origin in origins)]))
    if len(pool) < 2 or not any(g in lock.notes for g in pool):
        return ids  # nothing to tell them apart by (a first build)
    # The order `settle` numbered them in, where their ids say it (others after, as sorted).
    numbered: dict[str, int] = {}
    for place in sorted(origins):
        for n in range(len(pool) + 8):
            name = f"{place}\n{kind}\n{key}\n{n}".encode("utf-8", "backslashreplace").decode()
            numbered.setdefault(str(uuid.uuid5(ID_NAMESPACE, name)), n)
    order = sorted(pool, key=lambda g: (g not in numbered, numbered.get(g, 0), g))
    by_hash: dict[str, deque[str]] = {}
    for guid in order:
        if (entry := lock.notes.get(guid)) is not None:
            by_hash.setdefault(entry.hash, deque()).append(guid)
    given: list[str | None] = []
    used: set[str] = set()
    for _, hashes in members:
        found = None
        for digest in hashes:
            same = by_hash.get(digest)
            while same and same[0] in used:
                same.popleft()
            if same:
                found = same.popleft()
                used.add(found)
                break
        given.append(found)
    # A card edited in place takes the first id left after the card before it: its own.
    rank = {guid: at for at, guid in enumerate(order)}
    rest = [g for g in order if g not in used]
    out: list[str] = []
    for found in given:
        if found is None:
            after = rank[out[-1]] if out else -1
            found = next((g for g in rest if rank[g] > after), rest[0])
            rest.remove(found)
        out.append(found)
    lock.claimed.difference_update(ids)
    lock.claimed.update(out)
    return out


def _moved_from(source: SourceFile, pending: list[RawCard], lock: Lock, report: Report) -> dict[str, Entry]:
    """Find the file that is gone whose cards this new file holds, and return its entries."""
    keys = {(r.kind, r.key) for r in pending}
    gone: dict[str, dict[str, Entry]] = {}
    exists: dict[str, bool] = {}
    for guid, entry in sorted(lock.notes.items()):
        origin = entry.origin
        if origin is None or entry.key is None or guid in lock.claimed:
            continue
        if origin not in exists:
            exists[origin] = (source.root / origin).is_file()
        if not exists[origin]:
            gone.setdefault(origin, {})[guid] = entry
    matches = {o: sum((e.kind, e.key) in keys for e in entries.values()) for o, entries in gone.items()}
    within = len(pending) * sum(map(len, gone.values())) <= MAX_SIMILARITY_PAIRS
    if gone and within and not any(matches.values()):
        # Renamed and edited at once: count the questions that are still alike instead.
        matches = {o: _alike(pending, list(entries.items())) for o, entries in gone.items()}
    best = max(sorted(matches), key=lambda o: matches[o], default=None)
    if best is None or matches[best] == 0:
        return {}
    from deckbuild.sources import display_path

    report.change(
        f"{source.display}: a renamed or moved {display_path(source.root / best)}, "
        f"by {matches[best]} question(s) in common: its cards keep their ids"
    )
    return gone[best]
