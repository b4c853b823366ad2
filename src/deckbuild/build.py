"""The build pipeline: read every source, validate every card, render, then write packages.

Everything is gathered and checked before anything is written, so a failing build leaves
the previous packages and the lock file as they were.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from deckbuild import answers, ids
from deckbuild.errors import BuildFailed, LockChanged, Report
from deckbuild.lock import Lock, exclusive
from deckbuild.models import CardBase, make_card
from deckbuild.notetype import NOTE_TYPE_ID, notetype_hash
from deckbuild.readers import RawCard, quizpage, semicolon
from deckbuild.render import Where, note_fields
from deckbuild.sources import LOCK_NAME, SourceFile, decode, detect, discover, display_path, find_root

READERS = {"semicolon": semicolon.read, "quizpage": quizpage.read}


@dataclass(frozen=True)
class Parsed:
    """A validated card and the source file it came from."""

    source: SourceFile
    card: CardBase


@dataclass
class Collection:
    """Every card read from the given paths, the locks of their deck trees, and the report."""

    cards: list[Parsed]
    locks: dict[Path, Lock]
    report: Report


@dataclass
class BuildResult:
    """What a build wrote and found."""

    packages: list[Path] = field(default_factory=list)
    report: Report = field(default_factory=Report)
    lock_changed: list[Path] = field(default_factory=list)


def _tags(source: SourceFile, raw: RawCard) -> list[str]:
    tags = [f"kind::{raw.kind}"]
    level = raw.data.get("level")
    if level:
        tags.append(f"level::{level}")
    tags.append("source::" + "_".join(Path(source.origin).with_suffix("").name.split()))
    tags.extend(raw.data.pop("tags", ()))
    return tags


def collect(paths: Iterable[Path], report: Report | None = None) -> Collection:
    """Read and validate every card below `paths`; record every problem in the report."""
    report = report or Report()
    locks: dict[Path, Lock] = {}
    cards: list[Parsed] = []
    seen: dict[str, str] = {}
    for source in discover(paths, report):
        if source.root not in locks:
            locks[source.root] = Lock.load(source.root / LOCK_NAME)
        lines = decode(source, report)
        if lines is None:
            continue
        fmt = detect(lines)
        if fmt is None:
            report.error(
                source.display,
                1,
                "not a deck source: neither a Question;Answer;UUID file nor a quiz page; "
                "fix the file or move it out of the deck folder",
            )
            continue
        raws = READERS[fmt](source.display, lines, report)
        ids.assign(source, raws, locks[source.root], report)
        for raw in raws:
            report.count("read")
            answers.apply(raw, source.display, report)
            where = f"{source.display}:{raw.line}"
            data = {**raw.data, "kind": raw.kind, "deck": source.deck, "source": where}
            data["tags"] = _tags(source, raw)
            try:
                card = make_card(data)
            except ValueError as exc:
                report.error(source.display, raw.line, f"{exc}")
                report.count("skipped")
                continue
            key = card.id.lower()
            if key in seen:
                report.error(
                    source.display,
                    raw.line,
                    f"UUID {card.id} is used twice: here and at {seen[key]}; "
                    "give one of the cards a new UUID",
                )
                report.count("skipped")
                continue
            seen[key] = where
            cards.append(Parsed(source, card))
    return Collection(cards, locks, report)


def content_hash(fields: Sequence[str], tags: Sequence[str]) -> str:
    """Hash what Anki stores of a note, so that any visible change moves its mod time."""
    blob = "\x1f".join(fields) + "\x1e" + " ".join(tags)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def render_card(parsed: Parsed, report: Report, media: dict[str, Path]) -> list[str]:
    """Render a card's note fields; images it shows are added to `media`."""
    card, source = parsed.card, parsed.source
    where = Where(card.path, card.line, source.path.parent, source.root, media)
    return note_fields(card, source.origin, report, where)


def check(paths: Iterable[Path], strict: bool = False) -> Report:
    """Parse, validate and render every card without writing anything."""
    collection = collect(paths)
    for parsed in collection.cards:
        render_card(parsed, collection.report, {})
    if collection.report.failed(strict):
        raise BuildFailed(collection.report, strict)
    return collection.report


def build(
    paths: Iterable[Path], outdir: Path, *, now: int, frozen: bool = False, strict: bool = False
) -> BuildResult:
    """Build one .apkg per deck below `paths` into `outdir`, one build per deck tree at a time."""
    paths = list(paths)
    roots = sorted({find_root(Path(os.path.abspath(p))) for p in paths})
    with ExitStack() as held:
        for root in roots:
            held.enter_context(exclusive(root))
        return _build(paths, outdir, now=now, frozen=frozen, strict=strict)


def _build(paths: list[Path], outdir: Path, *, now: int, frozen: bool, strict: bool) -> BuildResult:
    from deckbuild.package import DeckData, NoteData, write_package

    collection = collect(paths)
    report = collection.report
    media: dict[str, dict[str, Path]] = {}
    rendered = [(p, render_card(p, report, media.setdefault(p.source.package, {}))) for p in collection.cards]
    if report.failed(strict):
        raise BuildFailed(report, strict)

    packages: dict[str, dict[str, DeckData]] = {}
    notetype_mods: dict[str, int] = {}
    for parsed, fields in rendered:
        lock = collection.locks[parsed.source.root]
        nt_mod = lock.stamp("notetypes", str(NOTE_TYPE_ID), notetype_hash(), now)
        slug = parsed.source.package
        notetype_mods[slug] = max(notetype_mods.get(slug, 0), nt_mod)
        tags = list(parsed.card.tags)
        mod = lock.stamp(
            "notes",
            parsed.card.id,
            content_hash(fields, tags),
            now,
            **ids.lock_extra(parsed.source, parsed.card),
        )
        decks = packages.setdefault(slug, {})
        deck = decks.setdefault(parsed.card.deck, DeckData(parsed.card.deck))
        deck.notes.append(NoteData(parsed.card.id, fields, tags, mod))
        report.count("packaged")

    changed = [lock.path for lock in collection.locks.values() if lock.changed]
    if frozen and changed:
        names = ", ".join(display_path(p) for p in changed)
        raise LockChanged(f"{names} is out of date; run 'deckbuild build' without --frozen and commit it")
    result = BuildResult(report=report, lock_changed=changed)
    for slug, decks in sorted(packages.items()):
        target = outdir / f"{slug}.apkg"
        files = sorted(media.get(slug, {}).items())
        write_package(target, [decks[name] for name in sorted(decks)], notetype_mods[slug], files)
        result.packages.append(target)
    for lock in collection.locks.values():
        lock.save()
    return result
