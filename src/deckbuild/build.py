"""The build pipeline: read every source, validate every card, render, then write packages.

Everything is gathered and checked before anything is written, so a failing build leaves
the previous packages and the lock file as they were.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import marshal
import os
import re
import sqlite3
import sys
import unicodedata
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, suppress
from dataclasses import dataclass, field
from functools import cached_property, lru_cache, partial
from operator import itemgetter
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from deckbuild import cache
from deckbuild.atomic import (
    cannot_write,
    checkpoint,
    commit,
    discard,
    exclusive,
    recover,
    stage,
)
from deckbuild.errors import BuildFailed, DeckbuildError, LockChanged, Report, field_fault
from deckbuild.lock import Entry, Lock
from deckbuild.memo import LINKED, Memo, Rendered, current_media, signature, signature_of, unpack
from deckbuild.notetype import BY_LABEL, CLOZE_ID, NOTE_TYPE_ID, NOTE_TYPES, NoteType, notetype_of
from deckbuild.progress import QUIET, Progress

# A build's entry, its record and its result live there, so that a build that nothing changed
# is answered without importing this module; named here too, as they always were.
from deckbuild.record import BuildResult as BuildResult
from deckbuild.record import Release as Release
from deckbuild.record import _sha256, kept_files_above
from deckbuild.record import build as build
from deckbuild.record import no_cycle_collection as no_cycle_collection
from deckbuild.resources import ran_out
from deckbuild.sources import (
    LOCK_NAME,
    SourceFile,
    canonical,
    changed_stamp,
    deck_name,
    decode,
    discover,
    display_path,
    find_root,
    read_regular,
    source_of,
)

# Reading, rendering and packaging are imported where a build first needs them: a build that
# nothing changed is answered from its record without them.
if TYPE_CHECKING:
    from deckbuild.models import CardBase
    from deckbuild.package import DeckData, NoteData, Shell
    from deckbuild.readers import RawCard
    from deckbuild.render import Found, Reports
    from deckbuild.workers import Helpers


@dataclass(slots=True)
class Parsed:
    """A card that passed validation: where it came from, its identity, and its rendering."""

    source: SourceFile
    line: int
    id: str
    tags: tuple[str, ...]
    # What the lock keeps beside the card's hash.
    extra: dict[str, str | None]
    sig: str = ""
    # The validated model; None when the memo vouched for the card instead.
    card: CardBase | None = None
    rendered: Rendered | None = None
    images: dict[str, Path] | None = None
    # The note type's fixed id: deckbuild.notetype.NOTE_TYPES.
    notetype: int = NOTE_TYPE_ID
    # The name of a note type kept from an imported deck, and the note's fields laid out on it.
    kept: str | None = None
    kept_fields: list[str] | None = None
    # Whether the id is a GUID kept from Anki (a GUID column): compared with its case, as Anki does.
    anki: bool = False

    @property
    def deck(self) -> str:
        return self.source.deck

    @property
    def where(self) -> str:
        return f"{self.source.display}:{self.line}"

    @property
    def model(self) -> CardBase:
        """Return the validated card (collect without a memo always validates)."""
        if self.card is None:
            raise ValueError(f"{self.where}: card was answered from the memo, not validated")
        return self.card


@dataclass
class Collection:
    """Every card read from the given paths, the locks of their deck trees, and the report."""

    cards: list[Parsed]
    locks: dict[Path, Lock]
    report: Report
    # Images the cards name that were left out: not found, too large, unreadable (`render_all`).
    missing: set[Path] = field(default_factory=set)
    # Images shown through a link or a `..`: each path as named, and the file it led to.
    linked: set[tuple[Path, Path]] = field(default_factory=set)
    # A build of part of a deck tree reads the rest for ids alone (`_rest_of_trees`): per deck
    # root, the ids found there (where a file of it has errors, the first place wrong).
    elsewhere: dict[Path, set[str] | str] = field(default_factory=dict)


def _tags_of(source: SourceFile, kind: str, data: dict[str, Any]) -> list[str]:
    tags = [f"kind::{kind}"]
    level = data.get("level")
    if level:
        tags.append(f"level::{level}")
    tags.append(source.tag)
    if own := data.pop("tags", None):
        # Composed (NFC), as Anki keeps them: a decomposed tag would differ from the learner's.
        tags.extend(
            t if unicodedata.is_normalized("NFC", t) else unicodedata.normalize("NFC", t) for t in own
        )
    return tags


@dataclass(slots=True)
class Pending:
    """A card the memo could not answer: to validate and render, here or in a helper."""

    source: SourceFile
    raw: RawCard
    sig: str


def collect(
    paths: Iterable[Path],
    report: Report | None = None,
    memo: Memo | None = None,
    helpers: Helpers | None = None,
    progress: Progress = QUIET,
    leftovers: list[object] | None = None,
) -> Collection:
    """Read and validate every card below `paths`; record every problem in the report.

    With a memo, a card read exactly as in an earlier run takes that run's rendering; the
    others are validated and rendered at once, by `helpers` when there are any. What was read
    on the way (each card as read, the units sent) goes to `leftovers` when the caller ends its
    process right after (see `_Build.leftovers`): freeing it card by card took a cold build of
    10,000 cards 3 ms between rendering and packaging.
    """
    from deckbuild import ids
    from deckbuild.limits import within_limits

    report = report or Report()
    locks: dict[Path, Lock] = {}
    # Every card in the order read: valid, waiting to be validated, or why it is not (where).
    found: list[Parsed | Pending | tuple[SourceFile, int, str]] = []
    read: list[tuple[SourceFile, list[RawCard], int]] = []
    # Per file read, in order: the cards the memo took over as they were read (by line).
    known: list[list[Parsed]] = []
    takers: list[_Known] = []
    # Each semicolon file's bytes as read, kept whole for the next build (deckbuild.patch).
    files: dict[Path, bytes] = {}
    remembers = memo is not None and memo.keeps
    # Whether any file is a quiz page, whose cards get their ids from the lock by their question.
    pages = False
    progress.stage("reading")
    paths = list(paths)
    listed = discover(paths, report)
    for source, data, lines, fmt in _sources(listed, report, locks):
        if remembers and helpers is not None and memo is not None and memo.holds(source):
            # A rebuild: said before its helper warms up what its few changed cards seldom need.
            helpers.expect_few()
        # Imported when a file needs it: a tree of semicolon files never loads the page reader.
        reader = importlib.import_module(fmt.module)
        # A semicolon file's suspect lines (limits.suspect_lines), once the memo's takeover or the
        # limits ask for them.
        suspect: set[int] | None = None
        if fmt.name == "semicolon" and data is not None:
            files[source.path] = data
        pages = pages or fmt.name != "semicolon"
        if remembers and fmt.name == "semicolon":
            assert memo is not None
            take = _Known(_Recall(source, memo), locks[source.root], lines)
            raws = reader.read(source.display, lines, report, take)
            known.append(take.found)
            takers.append(take)
            suspect = take.suspect
        else:
            raws = reader.read(source.display, lines, report)
            known.append([])
        count = len(raws) + len(known[-1])
        report.count("read", count)
        progress.count("files")
        progress.count("read", count)
        semicolon = fmt.name == "semicolon"
        raws = within_limits(raws, source.display, report, lines if semicolon else None, suspect)
        read.append((source, raws, 0))  # its ids once every file is read, in the tree's order
    # The rest of each deck tree built in part: its files take their own ids too, so that a card
    # read here never takes the id of one that is there, and one moved there is not retired.
    rest = _rest_of_trees(paths, listed, locks)
    aside = {s.path for s in rest.sources}
    # Each file takes its own ids in the order a build of its whole tree takes them: a renamed
    # page takes over the entries of a file that is gone, and the first file to ask gets them.
    everything = sorted([*read, *rest.read], key=_tree_order)
    # What the sources hold, for a UUID whose case alone differs from the lock's (ids.keep_case).
    held = ids.Taken(partial(_held, everything, read, known))
    rematched = {
        source.path: ids.assign(
            source,
            raws,
            locks[source.root],
            rest.report if source.path in aside else report,
            held,
        )
        for source, raws, _ in everything
    }
    read = [(source, raws, rematched[source.path]) for source, raws, _ in read]
    # Once every file took its own ids: a card moved between files keeps its id, others get new ones.
    ids.settle(sorted([*read, *rest.read], key=_tree_order), locks, report, aside)
    _name_lost_uuids([*read, *rest.read], [p.id for taken in known for p in taken], locks, report)
    if rest.report.errors:
        by_shown = {s.display: s.root for s in rest.sources}
        for problem in rest.report.errors:
            rest.failed.setdefault(
                by_shown.get(problem.path, rest.sources[0].root), f"{problem.path}:{problem.line}"
            )
    if helpers is not None:
        # The cards of files the memo holds nothing of (a first build): all go to the helpers.
        # Where it holds some, the memo stage tells first how many it cannot answer.
        helpers.expect(sum(len(raws) for source, raws, _ in read if memo is None or not memo.holds(source)))
    progress.stage("memo")
    # Each card the memo could not answer: where it is in `found`, to settle it in place.
    pending_at: list[int] = []
    pending: list[Pending] = []
    for (source, raws, _), taken in zip(read, known, strict=True):
        if raws:  # a file whose rows the memo all took (a rebuild) never needs the answers
            from deckbuild import answers
        recall = _Recall(source, memo) if memo is not None else None
        # A file the memo holds nothing of (a first build) has every card looked up in vain.
        remembered = memo is not None and memo.holds(source)
        # The cards taken over and those read in full, back in the file's order.
        at = 0
        for raw in raws:
            if taken:
                upto = bisect_left(taken, raw.line, at, key=_line)
                found += taken[at:upto]
                at = upto
            answers.apply(raw, source.display, report)
            if recall is None:
                valid = _validate(source, raw, "")
                found.append(valid if isinstance(valid, Parsed) else (source, raw.line, valid))
                continue
            sig = signature(raw)
            recalled = recall(raw.line, raw.kind, raw.data, sig) if remembered and "id" in raw.data else None
            if recalled is not None:
                found.append(recalled)
            else:
                pending_at.append(len(found))
                pending.append(Pending(source, raw, sig))
                found.append(pending[-1])
        found += taken[at:]
    if memo is not None:
        # The next build tells a file's edited rows by its bytes as read now (deckbuild.patch).
        for path, data in files.items():
            memo.keep_file(path, data)
        progress.stage("rendering")
        units, starts = _units(pending, memo.keeps)
        # The entries of the rows taken over are decoded once the cards to render are on their
        # way: a rebuild after one edit does that while its helper renders the edited card.
        redo: list[tuple[Parsed, RawCard]] = []

        def settle_known() -> None:
            for taker in takers:
                redo.extend(taker.settle())

        outcomes = (
            helpers.stream(units, len(pending), meanwhile=settle_known, idle=_prepare_packaging)
            if helpers is not None
            else _settled_here(units, settle_known)
        )
        rendered = 0
        # Each unit as it comes back, while the helpers render the others.
        for index, value in outcomes:
            start = starts[index]
            unit = pending[start : starts[index + 1]]
            for offset, (item, done) in enumerate(zip(unit, _parsed(unit, value, memo), strict=True)):
                if isinstance(done, Parsed):
                    found[pending_at[start + offset]] = done
                    rendered += 1
                else:
                    found[pending_at[start + offset]] = (item.source, item.raw.line, done)
        if redo:
            rendered += _settle_again(found, redo, memo)
        report.count("rendered", rendered)
        progress.count("memo", len(found) - len(pending) - len(redo))
        progress.count("rendered", rendered)
    if pages:
        _by_content(found, locks)
    cards: list[Parsed] = []
    # Where each id is: a card of this build, or a place elsewhere in its tree (`path:line`).
    # GUID-column ids among the others: a UUID may then share its spelling with one of them.
    mixed = any(p.anki for p in found if type(p) is Parsed) or any(
        raw.data.get("anki_guid") for _, raws, _ in rest.read for raw in raws
    )
    seen = rest.where(mixed)
    for parsed in found:
        if not isinstance(parsed, Parsed):
            assert isinstance(parsed, tuple)
            source, line, why = parsed
            report.error(source.display, line, why)
            report.count("skipped")
            continue
        other = seen.find(parsed.id, parsed.anki)
        if other is not None:
            # A GUID kept from Anki is named as the column that holds it.
            what = "GUID" if parsed.anki else "UUID"
            report.error(
                parsed.source.display,
                parsed.line,
                f"{what} {parsed.id} is used twice: here and at "
                f"{other if isinstance(other, str) else other.where}; give one of the cards a new {what}",
            )
            report.count("skipped")
            continue
        seen.add(parsed.id, parsed.anki, parsed)
        cards.append(parsed)
    if leftovers is not None:
        leftovers.append((read, known, pending, found, files, rest))
    return Collection(cards, locks, report, elsewhere=rest.ids())


def _name_lost_uuids(
    read: list[tuple[SourceFile, list[RawCard], int]],
    taken: list[str],
    locks: dict[Path, Lock],
    report: Report,
) -> None:
    """Name the lock's cards of a file that no row holds now, where rows of it have no UUID.

    A row whose UUID was deleted is such a card: a new UUID (`deckbuild ids`) would give
    learners a second card and retire the one they studied.
    """
    bare: dict[str, list[int]] = {}
    for problem in report.errors:
        if problem.message.startswith(_NO_UUID):
            bare.setdefault(problem.path, []).append(problem.line)
    if not bare:
        return
    # The ids of every row: read in full, or taken over from the memo as they were.
    present = {str(raw.data.get("id")) for _, raws, _ in read for raw in raws} | set(taken)
    for source, _, _ in read:
        if (lines := bare.get(source.display)) is None or source.root not in locks:
            continue
        entries = locks[source.root].by_origin(source.origin)
        lost = [guid for guid, entry in entries.items() if guid not in present and not entry.retired]
        if lost:
            shown = ", ".join(lost[:3]) + (f" and {len(lost) - 3} more" if len(lost) > 3 else "")
            report.warn(
                source.display,
                min(lines),
                f"the lock keeps {len(lost)} card(s) of this file that no row holds now ({shown}): if a "
                "row's UUID was deleted, write that UUID back (git diff shows it), so that learners keep "
                "its reviews; 'deckbuild ids' would make it a new card",
            )


# What the semicolon reader says of a row without a UUID.
_NO_UUID = "no UUID; run 'deckbuild ids'"


@dataclass
class _Rest:
    """The files of deck trees built in part that the build did not name, read for ids alone."""

    sources: list[SourceFile] = field(default_factory=list)
    read: list[tuple[SourceFile, list[RawCard], int]] = field(default_factory=list)
    # The deck roots any of whose files could not be read in full, or has a card that is not valid.
    # (The first place wrong in each, `path:line`.)
    failed: dict[Path, str] = field(default_factory=dict)
    roots: set[Path] = field(default_factory=set)
    # What taking their ids finds wrong there: not this build's to report.
    report: Report = field(default_factory=Report)

    def where(self, mixed: bool = True) -> _Seen:
        """Where each id of these files is: `path:line` (see `_Seen` for `mixed`)."""
        seen = _Seen(mixed)
        for source, raws, _ in self.read:
            for raw in raws:
                seen.add(str(raw.data["id"]), bool(raw.data.get("anki_guid")), f"{source.display}:{raw.line}")
        return seen

    def ids(self) -> dict[Path, set[str] | str]:
        """Each deck root's ids found here; for a root with a file that failed, where it did."""
        found: dict[Path, set[str]] = {root: set() for root in self.roots}
        for source, raws, _ in self.read:
            found[source.root].update(key for raw in raws for key in _raw_keys(raw))
        return {root: self.failed.get(root, ids) for root, ids in found.items()}


def _rest_of_trees(paths: list[Path], listed: list[SourceFile], locks: dict[Path, Lock]) -> _Rest:
    """Read the other files of each deck tree some of whose files are built, for their ids alone.

    A build of one file or folder must tell a card moved from it from one removed, and never
    give a card of its own the id a card elsewhere in the tree keeps: nothing there is rendered,
    and what is wrong there is not this build's to report.
    """
    from deckbuild.limits import within_limits

    rest = _Rest()
    named = {s.path for s in listed}
    whole = {p for p in canonical(paths) if find_root(p) == p}
    for root in sorted({s.root for s in listed} - whole):
        rest.roots.add(root)
        aside = Report()
        others = [s for s in discover([root], aside, misnamed=True) if s.path not in named]
        rest.sources += others
        for source, _, lines, fmt in _sources(others, aside, locks):
            raws = importlib.import_module(fmt.module).read(source.display, lines, aside)
            raws = within_limits(raws, source.display, aside, lines if fmt.name == "semicolon" else None)
            rest.read.append((source, raws, 0))
        if aside.errors:
            first = aside.errors[0]
            rest.failed[root] = f"{first.path}:{first.line}"
    return rest


def _tree_order(entry: tuple[SourceFile, list[RawCard], int]) -> tuple[str, tuple[str, ...]]:
    """Order files as a walk of their deck tree lists them: ids are settled in that order."""
    source = entry[0]
    return str(source.root), source.path.relative_to(source.root).parts


def _sources(
    sources: Iterable[SourceFile], report: Report, locks: dict[Path, Lock]
) -> Iterator[tuple[SourceFile, bytes | None, list[str], Any]]:
    """Yield each source with its bytes, lines and format; report those that have none.

    Each deck root's lock is loaded into `locks` as its first source comes.
    """
    from deckbuild.readers import describe_formats
    from deckbuild.readers import detect as detect_format

    for source in sources:
        if source.root not in locks:
            locks[source.root] = Lock.load(source.root / LOCK_NAME)
        try:
            data: bytes | None = read_regular(source.path)
        except OSError:
            data = None  # read again, and told why it cannot be, as a source's lines are
        lines = decode(source, report, data)
        if lines is None:
            continue
        fmt = detect_format(lines)
        if fmt is None:
            report.error(
                source.display,
                1,
                f"not a deck source: neither {describe_formats()}; "
                "fix the file or move it out of the deck folder",
            )
            continue
        yield source, data, lines, fmt


def _held(
    everything: list[tuple[SourceFile, list[RawCard], int]],
    read: list[tuple[SourceFile, list[RawCard], int]],
    known: list[list[Parsed]],
) -> tuple[set[str], dict[Path, set[str]]]:
    """Return every id the sources hold, as written, and per deck root the files keeping GUIDs."""
    present = {str(raw.data["id"]) for _, raws, _ in everything for raw in raws if "id" in raw.data}
    present.update(parsed.id for taken in known for parsed in taken)  # the rows the memo took
    # By origin, as the lock names them.
    anki_files: dict[Path, set[str]] = {}
    for source, raws, _ in everything:
        if any(raw.data.get("anki_guid") for raw in raws):
            anki_files.setdefault(source.root, set()).add(source.origin)
    for (source, _, _), taken in zip(read, known, strict=True):  # the rows the memo took
        if any(parsed.anki for parsed in taken):
            anki_files.setdefault(source.root, set()).add(source.origin)
    return present, anki_files


def _id_keys(guid: str, anki: bool = False) -> tuple[str, ...]:
    """Name an id as it is, and a UUID by its lower case too: two ids sharing a name are one note.

    UUIDs compare without case (one spelling is kept); Anki's own GUIDs (a GUID column) compare
    with it, those of a UUID's length too, so `AAAA…` in a GUID column and `aaaa…` in a UUID
    column are two notes, as in Anki. (NUL, in no id, keeps the two kinds of name apart.)
    """
    return (guid, "\0" + guid.lower()) if len(guid) == 36 and not anki else (guid,)


class _Seen:
    """Where each id is (a card, or `path:line`), found by its names as `_id_keys` gives them.

    Two tables rather than a tuple of names per card: ten thousand cards are looked up at once.
    Unless GUID-column ids are `mixed` in, a UUID is found by its lower case alone.
    """

    __slots__ = ("exact", "folded", "mixed")

    def __init__(self, mixed: bool = True) -> None:
        self.exact: dict[str, Parsed | str] = {}
        self.folded: dict[str, Parsed | str] = {}  # UUIDs alone, by their lower case
        self.mixed = mixed

    def find(self, guid: str, anki: bool) -> Parsed | str | None:
        """Return where an id that shares a name with this one is, or None."""
        if len(guid) == 36 and not anki:
            other = self.folded.get(guid.lower())
            return other if other is not None or not self.mixed else self.exact.get(guid)
        return self.exact.get(guid)

    def add(self, guid: str, anki: bool, where: Parsed | str) -> None:
        if len(guid) == 36 and not anki:
            self.folded.setdefault(guid.lower(), where)
            if not self.mixed:
                return
        self.exact.setdefault(guid, where)


def _raw_keys(raw: RawCard) -> tuple[str, ...]:
    return _id_keys(str(raw.data["id"]), bool(raw.data.get("anki_guid")))


def _line(parsed: Parsed) -> int:
    return parsed.line


def _by_content(found: list[Parsed | Pending | tuple[SourceFile, int, str]], locks: dict[Path, Lock]) -> None:
    """Give the cards of a page that share a question the ids of their content (`ids.by_content`).

    Such cards are rendered here when they are not yet: their content hashes tell them apart.
    """
    from deckbuild import ids

    groups: dict[tuple[Path, str, str, str], list[Parsed]] = {}
    for parsed in found:
        if isinstance(parsed, Parsed) and (key := parsed.extra.get("key")) is not None:
            origin, kind = parsed.extra.get("origin") or "", parsed.extra.get("kind") or ""
            groups.setdefault((parsed.source.root, origin, kind, key), []).append(parsed)
    for (root, origin, kind, key), members in groups.items():
        lock = locks[root]
        left = lock.free_by_key().get((kind, key), [])
        if len(members) + len(left) < 2 or not (left or any(p.id in lock.notes for p in members)):
            continue  # one card of its question, or a first build: nothing to tell apart
        held: list[tuple[str, tuple[str, ...]]] = []
        for parsed in members:
            if parsed.rendered is None:
                _render_here(parsed)
            assert parsed.rendered is not None
            fields = parsed.rendered.fields
            held.append((parsed.id, (parsed.rendered.digest, _whole_hash(fields, parsed.tags))))
        given = ids.by_content(lock, origin, kind, key, held, left)
        for parsed, guid in zip(members, given, strict=True):
            parsed.id = guid
        left[:] = [g for g in left if g not in lock.claimed]


def _settled_here(
    units: list[Unit], meanwhile: Callable[[], None]
) -> Iterator[tuple[int, bytes | list[Settled]]]:
    """Settle units of work here, after `meanwhile`, as `Helpers.stream` does without helpers."""
    meanwhile()
    for index, unit in enumerate(units):
        yield index, _settle_unit(unit)


def _settle_again(
    found: list[Parsed | Pending | tuple[SourceFile, int, str]],
    redo: list[tuple[Parsed, RawCard]],
    memo: Memo,
) -> int:
    """Validate and render here the cards taken over whose entries did not hold; return how many passed.

    Each takes the place of its card in `found`, as if it had been read in full (a damaged entry,
    an image changed since: rare, so never worth a helper).
    """
    at = {id(item): n for n, item in enumerate(found)}
    pending = [Pending(parsed.source, raw, parsed.sig) for parsed, raw in redo]
    units, starts = _units(pending, memo.keeps)
    rendered = 0
    for index, unit in enumerate(units):
        part = pending[starts[index] : starts[index + 1]]
        settled = _parsed(part, _settle_unit(unit), memo)
        for (parsed, _), done in zip(redo[starts[index] : starts[index + 1]], settled, strict=True):
            if isinstance(done, Parsed):
                found[at[id(parsed)]] = done
                rendered += 1
            else:
                found[at[id(parsed)]] = (parsed.source, parsed.line, done)
    return rendered


@lru_cache(maxsize=64)
def _resolved(root: Path) -> Path:
    return root.resolve()


class _Recall:
    """Take the cards of one file from the memo that an earlier run read exactly so, images unchanged."""

    __slots__ = ("cards", "memo", "origin", "root", "source", "used")

    def __init__(self, source: SourceFile, memo: Memo) -> None:
        self.source, self.root, self.memo = source, _resolved(source.root), memo
        # Read at the first card: a file without one leaves its memo as it is.
        self.cards: dict[str, bytes] | None = None
        self.used: set[str] = set()
        self.origin: dict[str, str | None] = {}

    def __call__(self, line: int, kind: str, data: dict[str, Any], sig: str) -> Parsed | None:
        """Return the card with an id read at `line` as the memo knows it, or None to validate it."""
        found = self.entry(sig)
        if found is None:
            return None
        rendered, extra, images = found
        tags = tuple(_tags_of(self.source, kind, data))
        nid = notetype_of(kind, data).id
        parsed = Parsed(self.source, line, data["id"], tags, extra, sig, None, rendered, images, nid)
        parsed.kept, parsed.anki = data.get("notetype"), bool(data.get("anki_guid"))
        return parsed

    def entry(self, sig: str) -> tuple[Rendered, dict[str, str | None], dict[str, Path]] | None:
        """Return the rendering, lock extra and images remembered for a signature; None if none holds."""
        stored = self.stored(sig)
        return None if stored is None else self.decoded(stored)

    def stored(self, sig: str) -> bytes | None:
        """Return a signature's entry as the memo stores it, noted as read; None if it has none."""
        if self.cards is None:
            self.cards, self.used, self.origin = self.memo.table(self.source)
        entry = self.cards.get(sig)
        if entry is not None:
            self.used.add(sig)
        return entry

    def decoded(self, entry: bytes) -> tuple[Rendered, dict[str, str | None], dict[str, Path]] | None:
        """Return the rendering, lock extra and images of a stored entry; None if it does not hold."""
        # Shipped without the sanitizer: only a group this cache's key signed was read; an
        # entry of the wrong shape in it is rendered again and replaced.
        if (decoded := cache.decode_memo(entry)) is None:
            return None
        fields, digest, problems, media, extra = decoded
        images = current_media(media, self.root) if media else {}
        if images is None:
            return None
        return (
            Rendered(fields, digest, problems, media),
            {**self.origin, **extra} if extra else self.origin,
            images,
        )


class _Known:
    """Take over the rows of a semicolon file that an earlier run read exactly as they are now.

    Such a row would pass every step between reading and the memo unchanged and unremarked:
    within the limits, its UUID in the lock as spelled, no directive or answer to compute (each
    checked here, cheaply, on its fields as read or its one line). It goes from its fields to
    the memo at once; any other row, or one the memo does not know, is read in full as before.
    A plain row's entry is decoded later (`settle`), once the cards to render are on their way.
    """

    __slots__ = ("found", "later", "lines", "notes", "recall", "suspect")

    def __init__(self, recall: _Recall, lock: Lock, lines: list[str]) -> None:
        self.recall, self.notes, self.lines = recall, lock.notes, lines
        # The lines whose cards may be over the limits (limits.suspect_lines), once a plain section asks.
        self.suspect: set[int] | None = None
        self.found: list[Parsed] = []
        # Plain rows taken, their entries not decoded yet: the card, its entry, question and answer.
        self.later: list[tuple[Parsed, bytes, str, str]] = []

    def settle(self) -> list[tuple[Parsed, RawCard]]:
        """Decode the entries of the plain rows taken; return those that do not hold, as read in full."""
        from deckbuild.readers import RawCard

        decoded, failed = self.recall.decoded, []
        origin, loads, widths = self.recall.origin, marshal.loads, cache.MEMO_WIDTHS
        for parsed, stored, question, answer in self.later:
            # Most entries: text fields and nothing else (no problem, image or lock extra), which
            # `decoded` would take as they are; any other goes through it.
            try:
                fields, digest, found, shown, rest = loads(stored)
                "".join(fields)  # raises TypeError unless every field is text
            except (TypeError, ValueError, EOFError, AttributeError, RecursionError):
                fields = None
            plain = type(fields) is list and type(digest) is str and found == shown == [] and rest == {}
            if plain and len(fields) in widths:
                parsed.rendered, parsed.extra, parsed.images = Rendered(fields, digest, [], []), origin, {}
                continue
            hit = decoded(stored)
            if hit is None:
                # As reading the row in full gives it: every step on the way left it as it is.
                failed.append(
                    (
                        parsed,
                        RawCard(
                            parsed.line, "basic", {"id": parsed.id, "question": question, "answer": answer}
                        ),
                    )
                )
                continue
            parsed.rendered, parsed.extra, parsed.images = hit
        self.later = []
        return failed

    def __call__(self, columns: Any) -> Callable[[int, str, list[str]], bool] | None:
        """Return what takes over the rows of a section with these columns; None when nothing can."""
        if not self.recall.memo.holds(self.recall.source):
            return None  # the memo holds none of this file's cards (a first build, an upgrade)
        if columns.plain is not None:
            return self._plain(*columns.plain)
        # Only here: a rebuild whose every row the plain path takes never imports the answers.
        from deckbuild.answers import leaves_alone
        from deckbuild.limits import card_problem

        return partial(self._row, columns, card_problem, leaves_alone)

    def _row(
        self,
        columns: Any,
        problem: Callable[[dict[str, Any]], str | None],
        alone: Callable[[str, dict[str, Any]], bool],
        line: int,
        text: str,
        fields: list[str],
    ) -> bool:
        """Take over one row when its card is known as it is; False leaves it to be read in full."""
        data = columns.basic(fields)
        # A UUID the lock holds as spelled keeps its case; any other is looked at in full.
        if data is None or data["id"] not in self.notes or not alone(text, data) or problem(data):
            return False
        parsed = self.recall(line, "basic", data, signature_of("basic", data))
        if parsed is None:
            return False
        self.found.append(parsed)
        return True

    def _plain(self, question_at: int, answer_at: int, uuid_at: int) -> Callable[[int, str, list[str]], bool]:
        """Return what takes over a row of Question, Answer and UUID only, straight from its fields.

        What `_Columns.card`, `card_problem`, `keep_case`, `answers.apply`, `signature` and
        `_tags_of` do to such a row, each holds true of it by the checks here, or it is left.
        """
        from deckbuild.limits import joined_within_limits, suspect_lines

        notes, found, stored, source = self.notes, self.found, self.recall.stored, self.recall.source
        later = self.later
        if self.suspect is None:
            self.suspect = suspect_lines(self.lines)
        suspect = self.suspect
        tags, nid = tuple(_tags_of(source, "basic", {})), notetype_of("basic", {}).id

        def take(line: int, text: str, fields: list[str]) -> bool:
            uuid = fields[uuid_at].strip()
            question = fields[question_at].strip()
            # No "{{": no cloze, no directive; no "[" in the question: no answer to check; no
            # "\x1d": the signature below is the one `signature` gives; an empty UUID is no note's.
            if uuid not in notes or "{{" in text or "[" in question or "\x1d" in text:
                return False
            answer = fields[answer_at].strip()
            joined = f"{uuid}\x1d{question}\x1d{answer}"
            # A row is one line: `line` counts from 1.
            if line - 1 in suspect and not joined_within_limits(joined):
                return False
            sig = "basic\x1eid\x1dquestion\x1danswer\x1e" + joined
            entry = stored(sig)
            if entry is None:
                return False
            found.append(parsed := Parsed(source, line, uuid, tags, {}, sig, None, None, None, nid))
            later.append((parsed, entry, question, answer))
            return True

        return take


def _validate(source: SourceFile, raw: RawCard, sig: str) -> Parsed | str:
    """Validate a card; return it, or what is wrong with it."""
    return _validate_row(source, raw.line, raw.kind, raw.data, sig)


def _validate_row(source: SourceFile, line: int, kind: str, raw: dict[str, Any], sig: str) -> Parsed | str:
    """Validate a card read at `line` with these fields; return it, or what is wrong with it."""
    valid = _validated(source, line, kind, raw)
    if isinstance(valid, str):
        return valid
    card, extra, nid = valid
    parsed = Parsed(source, line, card.id, card.tags, extra, sig, card, None, None, nid, raw.get("notetype"))
    parsed.anki = card.anki_guid
    return parsed


def _validated(
    source: SourceFile, line: int, kind: str, raw: dict[str, Any]
) -> tuple[CardBase, dict[str, str | None], int] | str:
    """Validate a card read at `line`; return it, its lock extra and note type, or what is wrong."""
    models, ids = _validating()
    data = {**raw, "kind": kind, "deck": source.deck, "source": f"{source.display}:{line}"}
    data["tags"] = _tags_of(source, kind, raw)
    try:
        card = models.make_card(data)
    except ValueError as exc:
        return str(exc)
    return card, ids.lock_extra(source, card), notetype_of(kind, raw).id


# The modules a card's validation and rendering need, imported once: an import statement run per
# card costs microseconds, and the build module must not import them before a build needs them.
@lru_cache(maxsize=1)
def _validating() -> tuple[ModuleType, ModuleType]:
    from deckbuild import ids, models

    return models, ids


@lru_cache(maxsize=1)
def _rendering() -> ModuleType:
    from deckbuild import render

    return render


# Cards given to a helper at a time: one file's, its cards as marshal packs them (a pickled
# object per card would cost this process more than rendering them costs a helper), and
# whether the memo keeps what they render to.
Unit = tuple[SourceFile, bytes | list[tuple[int, str, dict[str, Any], str]], bool]
# A card settled, as it comes back: its id, tags, lock extra, note type, its rendering as the
# memo stores it (memo.pack: the fields go once) and whether the memo may keep that; or why it
# is invalid.
Settled = tuple[str, tuple[str, ...], dict[str, str | None], int, Any, bool] | str


def _units(pending: list[Pending], keep: bool) -> tuple[list[Unit], list[int]]:
    """Pack cards to settle into units of work, each of one file; return them and where each starts."""
    from deckbuild.workers import UNIT

    units: list[Unit] = []
    starts = [0]
    start = 0
    while start < len(pending):
        source = pending[start].source
        end = start + 1
        while end < len(pending) and end - start < UNIT and pending[end].source is source:
            end += 1
        rows = [(p.raw.line, p.raw.kind, p.raw.data, p.sig) for p in pending[start:end]]
        try:
            units.append((source, marshal.dumps(rows), keep))
        except ValueError:  # a value marshal cannot keep as it is (a subclass of str, say): pickled
            units.append((source, rows, keep))
        starts.append(start := end)
    return units, starts


def _settle_unit(unit: Unit) -> bytes | list[Settled]:
    """Validate and render a unit's cards (in a helper, or here), and encode their memo entries."""
    from deckbuild.memo import pack

    source, payload, keep = unit
    rows: list[tuple[int, str, dict[str, Any], str]] = (
        marshal.loads(payload) if isinstance(payload, bytes) else payload
    )
    # The cards of a unit are of one file: where its images are looked for is worked out once.
    folder = source.path.parent
    out: list[Settled] = []
    for line, kind, data, _ in rows:
        valid = _validated(source, line, kind, data)
        if isinstance(valid, str):
            out.append(valid)
            continue
        card, extra, nid = valid
        packed, keeps = pack(_rendered(source, line, card, nid, folder), extra)
        out.append((card.id, card.tags, extra, nid, packed, keep and keeps))
    try:
        return marshal.dumps(out)
    except ValueError:
        return out


# A card settled while warming up. A rebuild after one edit gives its helper one card, and that
# card would otherwise pay for every first use on its way: importing the package module and
# nh3, pydantic's and Markdown's first calls (milliseconds each, on the build's critical path).
_SAMPLE = {"id": "00000000-0000-4000-8000-000000000000", "question": "Warm?", "answer": "A **card**<br>`x`"}
_WARM_ROOT = Path(os.sep, "deckbuild-warm-up")
_WARM_SOURCE = SourceFile(_WARM_ROOT / "warm.txt", _WARM_ROOT, "Warm", "Warm")


def _warm() -> None:
    """Make ready what validating and rendering a card needs, in the order a card needs it.

    Warming stops as soon as work is waiting (a request to fork the twin is not work: see
    `workers.work_waiting`): the work's first card pays for what is left as it needs it, instead
    of waiting for all of it. Markdown comes late: few cards need it (a card
    without markup is rendered without it), and a rebuild's one edited card seldom does: told
    that a rebuild's few cards will come (`workers.few_expected`), warming stops before it.
    Asked for its twin (`workers.twin_asked`: a first build's many cards come next), it stops
    there too: the twin is forked at once, and each of the two imports Markdown when one of its
    cards needs it, on its own core, rather than both waiting for it here.
    """
    from deckbuild.workers import few_expected, twin_asked, work_waiting

    # Validating the sample builds the basic card's validator (and runs pydantic's plugin
    # look-up), which every card of a semicolon file needs first. Whatever goes wrong in these
    # steps, the build's own first card meets and reports.
    with suppress(Exception):
        _validate_row(_WARM_SOURCE, 1, "basic", dict(_SAMPLE), "")
    for step in (_rendering, _rendering_markdown, _practice):
        # Told that a rebuild's few cards will come, the helper stops before Markdown: importing
        # it takes 15-25 ms, which an edited card that arrives meanwhile waits for in vain.
        if work_waiting() or (step is not _rendering and (few_expected() or twin_asked())):
            return
        with suppress(Exception):
            step()


def _rendering_markdown() -> None:
    """Make Markdown ready, and compile every pattern rendering uses."""
    from deckbuild.render import _markdown, compile_patterns

    _markdown()
    compile_patterns()


def _practice() -> bytes | list[Settled]:
    """Settle the sample card as a helper settles a build's cards."""
    return _settle_unit((_WARM_SOURCE, [(1, "basic", dict(_SAMPLE), "")], False))


def start_helpers(jobs: int) -> Helpers:
    """Start the helpers a run on `jobs` cores can use: one fewer than the cores."""
    from deckbuild.workers import Helpers

    return Helpers(jobs - 1, _warm, _settle_unit, later=_warm_packaging)


def _prepare_packaging() -> None:
    """Import what writing packages needs here, while this process waits for its helpers anyway."""
    import base64  # noqa: F401

    import deckbuild.package  # noqa: F401


def _warm_packaging() -> None:
    """Import genanki in a helper that is done rendering, for the empty collection asked next."""
    import genanki  # noqa: F401


def _parsed(pending: list[Pending], value: bytes | list[Settled], memo: Memo) -> list[Parsed | str]:
    """Take a unit's settled cards back: each card, or why it is invalid; keep their memo entries."""
    settled: list[Settled] = marshal.loads(value) if isinstance(value, bytes) else value
    if not pending:
        return []
    source = pending[0].source
    root = _resolved(source.root)
    out: list[Parsed | str] = []
    entries: dict[str, bytes | None] = {}
    for item, done in zip(pending, settled, strict=True):
        if isinstance(done, str):
            out.append(done)
            continue
        card_id, tags, extra, nid, packed, keeps = done
        if keeps:
            entries[item.sig] = packed
        rendered = unpack(packed)
        media = rendered.media
        images = {name: root / relative for name, relative, _, _ in media if name} if media else {}
        parsed = Parsed(source, item.raw.line, card_id, tags, extra, item.sig, None, rendered, images, nid)
        parsed.kept, parsed.anki = item.raw.data.get("notetype"), bool(item.raw.data.get("anki_guid"))
        out.append(parsed)
    memo.keep(source, entries)
    return out


SOURCE_FIELD = NOTE_TYPES[NOTE_TYPE_ID].index("Source")
SOURCE_TAG = "source::"


def source_at(notetype: int) -> int | None:
    """Return where a note type keeps the Source field (a kept note type has none)."""
    fields = NOTE_TYPES[notetype].fields
    return fields.index("Source") if "Source" in fields else None


def content_hash(fields: Sequence[str], tags: Sequence[str], source_field: int | None = SOURCE_FIELD) -> str:
    """Hash what a learner studies in a note, so that any change to it moves its mod time.

    Where the card is written down (the Source field, the `source::` tag) is left out: renaming
    or moving a file must not overwrite what learners changed in notes whose content is the same.
    """
    learned = list(fields)
    if source_field is not None:
        if 0 <= source_field < len(learned):
            learned[source_field] = ""
        else:
            learned = [*fields[:source_field], "", *fields[source_field + 1 :]]
    # The cards of a file share their tags: each such tuple is joined once.
    shown = _shown_tags(tags) if type(tags) is tuple else _shown(tags)
    blob = "\x1f".join(learned) + shown
    return hashlib.sha256(blob.encode("utf-8")).digest()[:8].hex()


def _shown(tags: Sequence[str]) -> str:
    return "\x1e" + " ".join([t for t in tags if not t.startswith(SOURCE_TAG)])


_shown_tags = lru_cache(maxsize=256)(_shown)


def _whole_hash(fields: Sequence[str], tags: Sequence[str]) -> str:
    """Hash every field and tag: what lock files written before the content hash had."""
    blob = "\x1f".join(fields) + "\x1e" + " ".join(tags)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def render_card(
    source: SourceFile,
    line: int,
    card: CardBase,
    report: Reports,
    media: dict[str, Path],
    missing: list[Path] | None = None,
    folder: Path | None = None,
    linked: list[tuple[Path, Path]] | None = None,
) -> list[str]:
    """Render the note fields of a card read at `line` of `source`; images it shows go to `media`.

    Those not found go to `missing`. `folder` is the one its source file is in, when the caller
    knows it already; images shown through a link or a `..` go to `linked` too, as named and as found.
    """
    render = _rendering()
    where = render.Where(
        source.display,
        line,
        source.path.parent if folder is None else folder,
        source.root,
        media,
        [] if missing is None else missing,
        [] if linked is None else linked,
    )
    fields: list[str] = render.note_fields(card, source.origin, report, where)
    return fields


def _render_one(parsed: Parsed, folder: Path | None = None) -> Rendered:
    """Render one card into what the memo keeps: fields, hash, problems, images it shows."""
    return _rendered(parsed.source, parsed.line, parsed.model, parsed.notetype, folder)


def _rendered(
    source: SourceFile, line: int, card: CardBase, notetype: int, folder: Path | None = None
) -> Rendered:
    """Render a card read at `line` of `source` as `_render_one` does."""
    report: Found = _rendering().Found()
    media: dict[str, Path] = {}
    missing: list[Path] = []
    linked: list[tuple[Path, Path]] = []
    fields = render_card(source, line, card, report, media, missing, folder, linked)
    if fault := field_fault(fields, NOTE_TYPES[notetype].fields):
        # Valid source text can still render to one, through an HTML entity such as &#31;.
        report.error(
            source.display,
            line,
            f"{fault} once rendered, from an HTML entity such as &#31; in the source; remove it",
        )
    deps: list[list[Any]] = []
    if media or missing:
        root = _resolved(source.root)
        for name, path in sorted(media.items()):
            stat = path.stat()
            deps.append([name, path.relative_to(root).as_posix(), stat.st_size, changed_stamp(stat)])
        # A path as named that reached its image through a link or a `..`, and the file it led to
        # (joined by NUL, which no path holds): the memo renders the card again once it leads elsewhere.
        for named, target in sorted(set(linked)):
            deps.append(["", f"{named.absolute()}\x00{target}", LINKED, LINKED])
        # An image left out, named "": the memo renders the card again. Kept as the card names it,
        # absolute but with any `..` left for the system to follow through links as it did (the
        # root joined to it is then ignored); never a file read.
        deps += [["", str(path.absolute()), -1, -1] for path in sorted(set(missing))]
    problems = [[severity.value, message] for severity, message in report.problems] if report.problems else []
    return Rendered(fields, content_hash(fields, card.tags, source_at(notetype)), problems, deps)


def _render_here(parsed: Parsed) -> None:
    """Render a card in this process, with the images it shows."""
    parsed.rendered = _render_one(parsed)
    root = _resolved(parsed.source.root)
    parsed.images = {name: root / relative for name, relative, _, _ in parsed.rendered.media if name}


def render_all(collection: Collection, media: dict[str, dict[str, Path]]) -> list[list[str]]:
    """Render the cards not rendered yet, record every card's problems, gather its images."""
    cards, report = collection.cards, collection.report
    misses = [p for p in cards if p.rendered is None]
    for parsed in misses:
        _render_here(parsed)
    if misses:
        report.count("rendered", len(misses))
    out = []
    for parsed in cards:
        assert parsed.rendered is not None and parsed.images is not None
        for severity, message in parsed.rendered.problems:
            add = report.error if severity == "error" else report.warn
            add(parsed.source.display, parsed.line, message)
        if parsed.images:
            media.setdefault(parsed.source.package, {}).update(parsed.images)
        if parsed.rendered.media and len(parsed.images) < len(parsed.rendered.media):
            root, deps = _resolved(parsed.source.root), parsed.rendered.media
            for name, named, size, _ in deps:
                if name:
                    continue
                if size == LINKED:
                    named, _, target = named.partition("\x00")
                    collection.linked.add((Path(named), Path(target)))
                else:
                    collection.missing.add(root / named)
        out.append(parsed.rendered.fields)
    return out


def vet(paths: Iterable[Path], report: Report, memo: Memo, helpers: Helpers) -> Collection:
    """Read, validate and render every card below `paths` as a build does, writing nothing."""
    collection = collect(paths, report, memo=memo, helpers=helpers)
    render_all(collection, {})
    keep_types(collection)  # each row fits the note type it names
    return collection


def check(paths: Iterable[Path], strict: bool = False, use_cache: bool = True) -> Report:
    """Parse, validate and render every card without writing anything."""
    store = cache.Cache(cache.cache_dir() if use_cache else None)
    with no_cycle_collection(), closing(store), start_helpers(os.cpu_count() or 1) as helping:
        memo = Memo(store)
        collection = vet(paths, Report(), memo, helping)
        memo.save(helping)
    # A card whose note type changed, live or retired, as a build refuses it.
    _Build(list(paths), Path(), 0, (), Release(), report=collection.report).check_notetypes(collection)
    if note := store.note():
        collection.report.notes.append(note)
    if collection.report.failed(strict):
        raise BuildFailed(collection.report, strict)
    return collection.report


RETIRED_TAG = "deckbuild::retired"
# Retired cards go to this subdeck of their package's deck. Anki keeps a card in its deck when an
# import updates its note, so only someone importing the package fresh finds them there, and can
# delete the subdeck; a learner who has the cards keeps them where they were.
RETIRED_DECK = "Retired"
RETIRED_DECK_DESCRIPTION = (
    "Cards the author removed from this deck. You can delete this subdeck with its cards, "
    f"or search <code>tag:{RETIRED_TAG}</code> in the browser."
)
RETIRED_STATUS = (
    "Retired: this card is no longer in the deck. To delete retired cards, search "
    f"<code>tag:{RETIRED_TAG}</code> in the browser, select all, and delete the notes."
)


@dataclass
class _Build:
    """One build: collect, render, stamp, retire what left the sources, write."""

    paths: list[Path]
    outdir: Path
    now: int
    previous: Sequence[Path]
    release: Release
    report: Report
    packages: dict[str, dict[str, DeckData]] = field(default_factory=dict)
    anchors: dict[str, str] = field(default_factory=dict)
    # Per package: the mod time of each note type its notes use, by note type id.
    notetype_mods: dict[str, dict[int, int]] = field(default_factory=dict)
    stamped: set[tuple[str, Path, int]] = field(default_factory=set)
    # Packages holding a note given a new mod in this build: no earlier build wrote one of them.
    fresh: set[str] = field(default_factory=set)
    # Notes given a mod past the newer one an earlier package ships them with (`catch_up`), by lock.
    caught_up: dict[Path, list[str]] = field(default_factory=dict)
    # What the earlier packages hold, read once a build: each file's mods and notes, and the
    # newest of each for a set of files (`mods_of`, `contents_of`, `newest_notes`).
    _mods_read: dict[Path, tuple[dict[str, int], dict[str, int]]] = field(default_factory=dict)
    _mods_merged: dict[tuple[Path, ...], tuple[dict[str, int], dict[str, int]]] = field(default_factory=dict)
    _contents_read: dict[Path, Any] = field(default_factory=dict)
    _newest_read: dict[tuple[Path, ...], dict[str, Any]] = field(default_factory=dict)
    # Cards whose lock entry names another file: (deck root, old origin, new source) -> ids.
    moved: dict[tuple[Path, str, SourceFile], list[str]] = field(default_factory=dict)
    store: cache.Cache = field(default_factory=lambda: cache.Cache(None))
    jobs: int = 1
    warned: set[str] = field(default_factory=set)
    # The ids of the rest of each deck tree built in part, as `collect` found them (`lives_on`).
    elsewhere: dict[Path, set[str] | str] = field(default_factory=dict)
    progress: Progress = QUIET
    # Where what the build made goes once it is done, when the caller ends its process right
    # after (record.build's `leftovers`); None: freed as usual.
    leftovers: list[object] | None = None

    def run(self, frozen: bool, strict: bool, dry_run: bool = False) -> BuildResult:
        self.progress.stage("helpers")
        with start_helpers(self.jobs) as helping:
            memo = Memo(self.store)
            collection = collect(
                self.paths, self.report, memo, helping, progress=self.progress, leftovers=self.leftovers
            )
            media: dict[str, dict[str, Path]] = {}
            render_all(collection, media)
            keep_types(collection)
            self.progress.stage("lock")
            if self.report.failed(strict):
                self.check_notetypes(collection)  # its problems are told too
                raise BuildFailed(self.report, strict)
            self.keep_shipped_case(collection)
            self.adopt_shipped(collection)
            self.add_all(collection)  # which refuses a card whose note type changed, as that does
            if self.report.failed(strict):
                raise BuildFailed(self.report, strict)
            current = {p.id for p in collection.cards}
            self.elsewhere = collection.elsewhere
            for root, lock in sorted(collection.locks.items()):
                self.retire(root, lock, current)
            for path, keys in sorted(self.caught_up.items()):
                self.report.change(
                    f"{display_path(path)}: {_counted(keys)} differ from the newer notes an earlier "
                    "package ships (a revert, or an older commit checked out?): given newer mod times, "
                    "so that learners who imported it get them"
                )
            if self.report.failed(strict):
                raise BuildFailed(self.report, strict)  # retiring warns too: --strict hears it

            changed = [lock.path for lock in collection.locks.values() if lock.changed]
            if frozen and changed:
                names = ", ".join(display_path(p) for p in changed)
                # A change taken back (a revert) is caught up with only where that package is read.
                given = "with the same --previous" if self.previous else "into the same folder"
                why = (
                    f" ({_counted([k for keys in self.caught_up.values() for k in keys])} differ from the "
                    f"newer notes an earlier package ships: a revert?); run 'deckbuild build' {given}, "
                    "without --frozen"
                    if self.caught_up
                    else "; run 'deckbuild build' without --frozen"
                )
                raise LockChanged(f"{names} is out of date{why} and commit it")
            result = BuildResult(report=self.report, lock_changed=changed)
            result.inputs = sorted({p for files in media.values() for p in files.values()})
            result.missing = sorted(collection.missing)
            result.linked = sorted(collection.linked)
            self.report_moves(collection)
            self.progress.stage("packaging")
            # The memo goes to a helper while this process would wait for another to make an
            # empty collection (as in a cold build), else while the last package is compressed.
            save = partial(memo.save, helping)
            plans = [self.plan(slug, media, helping, save) for slug in sorted(self.packages)]
            staged: list[tuple[Path, Path]] = []
            locks: list[tuple[Path, Path]] = []
            try:
                # Each package is finished and compressed in a thread while this one builds the
                # next package's database, and the last one while the memo and lock files are.
                compressing: list[tuple[_Plan, Callable[[], bytes]]] = []
                try:
                    for plan in plans:
                        started = self.start(plan)
                        self.progress.count("unchanged" if started is None else "written")
                        result.packages.append(plan.target)
                        if started is None:
                            result.unchanged.append(plan.target)
                        result.shells[plan.target] = plan.shell
                        if plan.sha256 is not None:
                            result.digests[plan.target] = plan.sha256
                        if started is not None:
                            if compressing:
                                self.stage_package(*compressing.pop(), staged, result.digests)
                            compressing.append((plan, started))
                except DeckbuildError:  # a package refused or not written: its cards stay rendered
                    memo.save(helping)
                    raise
                # Unless stored already: what this process sends a helper takes none of its time
                # while the last package is finished in its thread.
                memo.save(helping)
                # Packages and locks change together: all of them, or (killed before the journal) none.
                for lock in [] if dry_run else sorted(collection.locks.values(), key=lambda k: k.path):
                    text = lock.pending()
                    if text is not None:
                        locks.append((_stage(lock.path, text.encode("utf-8")), lock.path))
                if compressing:
                    self.stage_package(*compressing.pop(), staged, result.digests)
                staged += locks
                checkpoint("staged")
            except BaseException:
                discard([tmp for tmp, _ in [*staged, *locks]])
                raise
            # Ended before the commit and reaped after it: each helper's exit, which lets go of
            # all it imported, runs on another core meanwhile instead of before the commit.
            helping.stop()
            self.progress.stage("committing")
            commit(staged)
            checkpoint("committed")
            if self.leftovers is not None:
                self.leftovers.append((collection, memo, media, plans))
        return result

    def plan(
        self,
        slug: str,
        media: dict[str, dict[str, Path]],
        helping: Helpers,
        meanwhile: Callable[[], None] = lambda: None,
    ) -> _Plan:
        """Name a package by what it holds, and fetch its empty collection unless it is unchanged.

        `meanwhile` runs before waiting for a helper to make that collection.
        """
        import base64

        from deckbuild.package import DeckData, Shell, notetype_mods_key, shell

        decks = [self.packages[slug][name] for name in sorted(self.packages[slug])]
        files = sorted(media.get(slug, {}).items())
        notetype_mods = self.notetype_mods[slug]
        mods = notetype_mods_key(notetype_mods)
        target = self.outdir / f"{slug}.apkg"
        names = [[deck.name, deck.description] for deck in decks]
        shapes = ",".join(NOTE_TYPES[nid].digest for nid in sorted(notetype_mods))
        shell_key = cache.key("shell", shapes, mods, json.dumps(names))
        stored = self.store.get_many({shell_key: cache.SHELL_RECORD}).get(shell_key)
        if stored is None:
            # genanki is imported by a helper that is done rendering, not here; it makes the
            # empty collection while this process names the package.
            bare = [DeckData(deck.name, description=deck.description) for deck in decks]  # names suffice
            kept = [NOTE_TYPES[nid] for nid in sorted(notetype_mods) if NOTE_TYPES[nid].columns]
            made = helping.ask(shell, bare, notetype_mods, kept)
        # A package with a note of a new mod was never written before, and one with no file there
        # has to be written: its key is worked out while it is compressed (`stage_package`), not
        # looked up first.
        written = slug not in self.fresh and target.is_file()
        key = _package_key(decks, notetype_mods, files) if written else None
        known = None if key is None else self.store.get_many({key: cache.PACKAGE_RECORD}).get(key)
        if known is not None and target.is_file() and _sha256(target) == known["sha256"]:
            # Unchanged: an empty collection asked for is never taken (closing the helpers reads it).
            return _Plan(target, key, decks, notetype_mods, files, None, known["sha256"], shell_key)
        if stored is not None:
            empty = Shell(base64.b64decode(stored["db"]), stored["req"])
        else:
            meanwhile()
            try:
                empty = Shell(*made())
            except (OSError, sqlite3.Error) as exc:  # its temporary collection could not be made
                raise cannot_write(target, exc) from None
            self.store.put_many({shell_key: {"db": base64.b64encode(empty.db).decode(), "req": empty.req}})
        return _Plan(target, key, decks, notetype_mods, files, empty, None, shell_key)

    def start(self, plan: _Plan) -> Callable[[], bytes] | None:
        """Start writing a planned package, unless the file there is already it.

        Return what waits for its bytes (they are compressed meanwhile), for `stage_package`.
        """
        from deckbuild.package import start_package

        if plan.empty is None:
            self.report.count("unchanged")
            return None
        try:
            return start_package(plan.decks, plan.notetype_mods, plan.files, plan.empty, plan.target.name)
        except (OSError, sqlite3.Error) as exc:
            raise cannot_write(plan.target, exc) from None

    def stage_package(
        self, plan: _Plan, started: Callable[[], bytes], staged: _Moves, digests: dict[Path, str]
    ) -> None:
        """Write a started package beside its target, for `commit` to rename into place with the others.

        Its SHA-256 goes into `digests` too, for the build's record.
        """
        key = plan.key or _package_key(plan.decks, plan.notetype_mods, plan.files)
        try:
            data = started()
        except (OSError, sqlite3.Error) as exc:  # the collection is finished while it is compressed
            raise cannot_write(plan.target, exc) from None
        staged.append((_stage(plan.target, data), plan.target))
        digests[plan.target] = hashlib.sha256(data).hexdigest()
        self.store.put_many({key: {"sha256": digests[plan.target]}})
        checkpoint(f"package-{len(staged)}")

    def deck(self, slug: str, name: str) -> DeckData:
        from deckbuild.package import DeckData

        decks = self.packages.setdefault(slug, {})
        if name not in decks:
            decks[name] = DeckData(name, description=self.release.description())
        return decks[name]

    def retired_deck(self, slug: str) -> DeckData:
        """The package's subdeck for retired cards, which only fresh importers see them in."""
        from deckbuild.package import DeckData

        decks = self.packages.setdefault(slug, {})
        name = f"{self.anchors[slug]}::{RETIRED_DECK}"
        if name not in decks:
            decks[name] = DeckData(name, description=RETIRED_DECK_DESCRIPTION)
        elif decks[name].description != RETIRED_DECK_DESCRIPTION and name not in self.warned:
            self.warned.add(name)
            self.report.warn(
                display_path(self.outdir / f"{slug}.apkg"), 0,
                f"deck {name} holds cards of the sources and retired cards alike; rename its folder",
            )  # fmt: skip
        return decks[name]

    def keep_shipped_case(self, collection: Collection) -> None:
        """Spell a UUID as an earlier package does, when only its case differs and there is no lock.

        As `ids.keep_case` does from the lock: a lock lost or reset still leaves the spelling
        learners have in the packages this build replaces (or `--previous`).
        """
        spelled: dict[str, str] | None = None
        source, notes = None, {}
        for parsed in collection.cards:
            if parsed.source is not source:  # a file's cards come together: one lock look-up each
                source = parsed.source
                notes = collection.locks[source.root].notes
            # Only a lock lost (or never kept) holds nothing: a card merely new to a lock never
            # costs a read of the packages this build replaces.
            if notes or len(parsed.id) != 36:
                continue
            if parsed.anki:
                continue  # a GUID kept from Anki is case-sensitive: another case is another note
            if spelled is None:
                # A spelling a card of this build holds as it is is that card's (see ids.keep_case).
                present = {p.id for p in collection.cards}
                spelled = {}
                for guid in sorted(self.shipped):
                    if len(guid) == 36 and guid not in present:
                        spelled.setdefault(guid.lower(), guid)
            known = spelled.get(parsed.id.lower())
            if known is not None and known != parsed.id:
                from deckbuild.ids import case_kept

                self.report.warn(parsed.source.display, parsed.line, case_kept(parsed.id, known))
                parsed.id = known

    def adopt_shipped(self, collection: Collection) -> None:
        """Take a lost lock's entries back from the packages this build replaces, and `--previous`.

        With no lock file, every note would get a new mod time (overwriting what learners
        changed in it), a card removed would never be retired, and a card's note type could
        change under learners. Their notes in those packages (the decks of this tree) stand in
        for the lock: a note's content hash, mod time and note type, and a retired one whole.
        """
        for root, lock in sorted(collection.locks.items()):
            if lock.text or lock.notes or lock.path.exists():
                continue  # a lock is there, even one with no card yet
            mine = [p.source for p in collection.cards if p.source.root == root]
            tops = {source.package_deck for source in mine}
            # A package names files of this tree as this root does, if it is this tree's: one
            # naming none of them (another project's, or the tree's when only a file of it is
            # built, whose root is then that file's folder) is not taken.
            names = {source.origin for source in mine}
            files = [
                f
                for f in sorted({f for top in tops for f in self.replaced(top, top)})
                if (contents := self.contents_of(f)) is not None and _names_ours(contents, names)
            ]
            entries: dict[str, Entry] = {}
            for guid, note in sorted(self.newest_notes(files).items()):
                nid = int(note.notetype) if note.notetype.isdigit() else None
                if note.deck.split("::")[0] not in tops or nid not in NOTE_TYPES:
                    continue
                notetype = NOTE_TYPES[nid]
                if len(note.fields) != len(notetype.fields):
                    continue
                label = None if nid == NOTE_TYPE_ID else notetype.label
                digest = content_hash(note.fields, note.tags, source_at(nid))
                origin = _shipped_origin(note)  # relative to the deck root, as its Source field names it
                if RETIRED_TAG in note.tags and "Status" in notetype.fields:
                    fields, tags = list(note.fields), sorted(note.tags)
                    # Its deck as its card had it, not the Retired subdeck fresh importers get it in.
                    deck = note.deck.removesuffix(f"::{RETIRED_DECK}")
                    entry = Entry(
                        digest, note.mod, origin, deck=deck, fields=fields, tags=tags, notetype=label
                    )
                else:
                    entry = Entry(digest, note.mod, origin, notetype=label)
                entries[guid] = entry
            lock.notes.update(entries)
            lock.changed += list(entries)
            # Each note type as the packages ship it, where it is what this build ships: its mod
            # time stays, and what a learner changed in it stays theirs.
            for nid, shipped_type in self.newest_types(files).items():
                nt = NOTE_TYPES.get(nid)
                if nt is not None and str(nid) not in lock.notetypes and not self.type_differs(nt, files):
                    lock.notetypes[str(nid)] = Entry(nt.locked, shipped_type.mod)
                    lock.changed.append(str(nid))
            if entries:
                self.report.change(
                    f"{display_path(lock.path)}: there was no lock file; the mod times and note types of "
                    f"{len(entries)} card(s) were taken from the packages this build replaces, "
                    "so that learners' notes are updated only where they changed (commit the lock)"
                )

    def add_all(self, collection: Collection) -> None:
        """Stamp every card in its lock and put it in its deck's notes.

        Each card's note type is checked on the way, as `check_notetypes` does (before its lock
        entry or its note type's is stamped): a build that fails for it writes nothing.
        """
        from deckbuild.package import NoteData

        # What the lock names each note type by (None for the basic one), kept types included.
        labels = {nid: None if nid == NOTE_TYPE_ID else nt.label for nid, nt in NOTE_TYPES.items()}
        now, source, stamped = self.now, None, set[int]()
        checked: set[tuple[Path, int]] = set()
        new_note = partial(tuple.__new__, NoteData)  # made in C from a tuple, all seven fields
        shipped_mods: dict[str, int] = {}
        for parsed in collection.cards:
            rendered = parsed.rendered
            assert rendered is not None
            if parsed.source is not source:
                # A file's cards come together: its lock, package and deck are looked up once.
                source = parsed.source
                lock = collection.locks[source.root]
                slug, origin = source.package, source.origin
                notes = self.deck(slug, source.deck).notes
                stamped = set()
                replaced = self.replaced(slug, source.package_deck)
                shipped_mods = self.mods_of(replaced)[0] if replaced else {}
            if parsed.notetype not in stamped:
                stamped.add(parsed.notetype)
                if (lock.path, parsed.notetype) not in checked:
                    checked.add((lock.path, parsed.notetype))
                    self.check_schema(parsed, lock)
                if (slug, lock.path, parsed.notetype) not in self.stamped:
                    self.anchors[slug] = source.package_deck
                    self.stamp_notetype(slug, lock, parsed.notetype)
            known = lock.notes.get(parsed.id)
            if known is not None:
                if known.origin != origin and known.origin is not None:
                    self.moved.setdefault((lock.path.parent, known.origin, source), []).append(parsed.id)
                if known.hash != rendered.digest and not parsed.kept and not known.retired:
                    self.rehash(lock, parsed, known)
            fields, digest = rendered.fields, rendered.digest
            if parsed.kept_fields is not None:
                # Laid out on a kept note type: the hash is of what the note holds there.
                fields, digest = parsed.kept_fields, content_hash(parsed.kept_fields, parsed.tags, None)
            label, extra = labels[parsed.notetype], parsed.extra
            if (
                known is not None
                and known.hash == digest
                and known.notetype == label
                and len(extra) == 1
                and known.origin == extra.get("origin", ...)
            ):
                mod = known.mod  # the common case, as `stamp` answers it: nothing to change
            else:
                if known is not None and known.notetype != label:
                    self.check_type(parsed, known)
                stamp = now
                shipped = shipped_mods.get(parsed.id) if shipped_mods else None
                if shipped is not None and (known is None or shipped > known.mod):
                    # A lock behind its sources (checked out alone, one side of a merge taken):
                    # a note the package it replaces ships as it is now keeps that package's mod.
                    stamp = self.shipped_as(parsed.id, digest, parsed.notetype, replaced) or now
                mod = lock.stamp("notes", parsed.id, digest, stamp, **extra, notetype=label)
                if known is None or mod != known.mod:
                    self.fresh.add(slug)
            if shipped_mods and (newer := shipped_mods.get(parsed.id)) is not None and newer > mod:
                mod = self.catch_up(lock, parsed.id, mod, newer, digest, parsed.notetype, slug)
                self.fresh.add(slug)
            if parsed.notetype == CLOZE_ID and known is not None and known.hash != digest:
                self.tell_lost_clozes(parsed, fields, replaced)
            notes.append(new_note((parsed.id, fields, parsed.tags, mod, digest, False, parsed.notetype)))
        self.report.count("packaged", len(collection.cards))

    def tell_lost_clozes(self, parsed: Parsed, fields: Sequence[str], files: Sequence[Path]) -> None:
        """Tell the author when a cloze number an earlier package ships left an edited cloze note.

        An import never deletes a card: learners who have that cloze's card keep it, and Anki
        shows it as an error until they delete it with its Empty Cards tool.
        """
        from deckbuild.package import cloze_ords

        shipped = self.newest_notes(files).get(parsed.id)
        if shipped is None or shipped.notetype != str(CLOZE_ID) or not shipped.fields:
            return
        gone = sorted(set(cloze_ords(shipped.fields[0])) - set(cloze_ords(fields[0])))
        if gone:
            names = ", ".join(f"c{n + 1}" for n in gone)
            self.report.change(
                f"{parsed.source.display}:{parsed.line}: cloze {names} left this note; learners who have "
                f"its card keep it, shown as 'No cloze {gone[0] + 1} found on card', until they run "
                "Tools → Empty Cards in Anki: tell them in the release notes"
            )

    def newest_types(self, files: Sequence[Path]) -> dict[int, Any]:
        """Each note type `files` hold, as the newest of them has it, by id."""
        from deckbuild.packaged import usable_mod

        newest: dict[int, Any] = {}
        for contents in [c for f in files if (c := self.contents_of(f)) is not None]:
            for key, found in contents.notetypes.items():
                if not (key.isdigit() and usable_mod(found.mod)):
                    continue
                if int(key) not in newest or found.mod > newest[int(key)].mod:
                    newest[int(key)] = found
        return newest

    def type_differs(self, nt: NoteType, files: Sequence[Path]) -> bool:
        """Tell whether the newest of `files` holding a note type has it otherwise than now."""
        shipped = self.newest_types(files).get(nt.id)
        if shipped is None:
            return True
        templates = tuple((t["name"], t["qfmt"], t["afmt"]) for t in nt.templates)
        return (shipped.name, shipped.fields, shipped.templates, shipped.css) != (
            nt.name, nt.fields, templates, nt.css,
        )  # fmt: skip

    def shipped_as(self, guid: str, digest: str, nid: int, files: Sequence[Path]) -> int | None:
        """Return the mod time the newest of `files` ships a note with, if it holds this content."""
        shipped = self.newest_notes(files).get(guid)
        if shipped is None or shipped.notetype != str(nid):
            return None
        fields_at = source_at(nid) if nid in NOTE_TYPES else None
        return int(shipped.mod) if content_hash(shipped.fields, shipped.tags, fields_at) == digest else None

    def catch_up(self, lock: Lock, guid: str, mod: int, newer: int, digest: str, nid: int, slug: str) -> int:
        """Return the mod a note ships with when an earlier package ships it with a newer one.

        The lock moves a note's mod on when its content changes. Taken back with the sources (a
        revert, a checkout of an older commit), it moves the mod back too, and learners who
        imported the newer package would keep that content: Anki takes only a newer note. Unless
        that package holds this content, the note gets a mod past it, kept in the lock.
        """
        if self.shipped_as(guid, digest, nid, self.replaced(slug)) == newer:
            return mod  # learners have this content already
        mod = max(self.now, newer + 1)
        lock.advance("notes", guid, mod)
        self.caught_up.setdefault(lock.path, []).append(guid)
        return mod

    def stamp_notetype(self, slug: str, lock: Lock, nid: int) -> None:
        """Stamp a note type in the lock once per package, and keep its mod for the package."""
        self.stamped.add((slug, lock.path, nid))
        nt = NOTE_TYPES[nid]
        # A kept note type ships with the mod time Anki gave it, so that learners' copy is the same
        # note type, not a newer one; a later change to it moves its mod on from there.
        if nt.imported and str(nid) not in lock.notetypes:
            # First built since the import: a change made to it since then moves its mod on too.
            lock.notetypes[str(nid)] = Entry(nt.imported, nt.mod)
            lock.changed.append(str(nid))
        # A kept note type keeps Anki's mod until it changes; a change takes the build's time, as
        # learners who imported it have it with the time of their import.
        first = nt.columns and str(nid) not in lock.notetypes
        mod = lock.stamp("notetypes", str(nid), nt.locked, nt.mod if first else self.now)
        files = self.replaced(slug)
        newer = self.mods_of(files)[1].get(str(nid)) if files else None
        if newer is not None and newer > mod and self.type_differs(nt, files):
            # As for notes (`catch_up`): a change taken back with the lock reaches learners too.
            mod = max(self.now, newer + 1)
            lock.advance("notetypes", str(nid), mod)
            self.caught_up.setdefault(lock.path, []).append(f"{_NOTE_TYPE_KEY}{nid}")
        mods = self.notetype_mods.setdefault(slug, {})
        mods[nid] = max(mods.get(nid, 0), mod)

    def check_notetypes(self, collection: Collection) -> None:
        """Refuse a card whose note type changed: Anki skips such a note on import, silently."""
        checked: set[tuple[Path, int]] = set()
        # What the lock names each note type by (None for the basic one), as `add_all` writes it.
        labels = {nid: None if nid == NOTE_TYPE_ID else nt.label for nid, nt in NOTE_TYPES.items()}
        source, lock, types = None, None, set[int]()
        for parsed in collection.cards:
            if parsed.source is not source:  # a file's cards come together: one lock look-up each
                source = parsed.source
                lock = collection.locks[source.root]
                types = set()
            assert lock is not None
            nid = parsed.notetype
            if nid not in types:  # each note type once per file, not once per card
                types.add(nid)
                if (lock.path, nid) not in checked:
                    checked.add((lock.path, nid))
                    self.check_schema(parsed, lock)
            entry = lock.notes.get(parsed.id)
            # The common case: a card new to the lock, or of the note type the lock names.
            if entry is not None and entry.notetype != labels[nid]:
                self.check_type(parsed, entry)

    def check_schema(self, parsed: Parsed, lock: Lock) -> None:
        """Refuse a kept note type whose fields, templates or sort field changed since it was built."""
        nt = NOTE_TYPES[parsed.notetype]
        if not nt.columns:
            return
        entry = lock.notetypes.get(str(nt.id))
        old = entry.hash if entry is not None else nt.imported
        if "." in old and old.partition(".")[0] != nt.schema:
            self.report.error(
                parsed.source.display, parsed.line,
                f"the note type {nt.title} has other field or card template names or another "
                "sort field than when it was last built: Anki would take it for another note type "
                "or skip later edits of every learner's note; put them back as they were, in "
                "their order (a template's text and the CSS may change)",
            )  # fmt: skip

    def check_type(self, parsed: Parsed, entry: Entry) -> None:
        """Refuse a card whose note type is not the one its lock entry names, retired or not.

        Learners keep a retired card's note as it was: one that comes back on another note type
        would be skipped by their Anki, and stay marked for deletion.
        """
        if parsed.kept and parsed.kept_fields is None:
            return  # its note type could not be read: that error says what to do
        label = entry.notetype or "basic"
        now = NOTE_TYPES[parsed.notetype]
        if label == now.label:
            return
        was = BY_LABEL.get(label) or next((nt for nt in NOTE_TYPES.values() if nt.label == label), None)
        shown = was.title if was is not None else f"note type {label}"
        if label.startswith("anki:"):
            # A kept note type's card is never retired (no Status field): a new UUID would add
            # a second note beside the learner's, so the only way out is back.
            why = (
                f"this card was on the kept note type {shown} and is now a {now.title} card: Anki "
                "cannot change a note's type on import and would skip it; name its note type in "
                "the Notetype column again"
            )
        else:
            why = (
                f"this card was a {shown} card and is now a {now.title} card: Anki cannot change "
                "a note's type on import and would skip it, keeping the old one; to change it, empty "
                "its UUID and run 'deckbuild ids' (the old card is then retired)"
            )
        self.report.error(parsed.source.display, parsed.line, why)

    @staticmethod
    def rehash(lock: Lock, parsed: Parsed, known: Entry) -> None:
        """Take a lock entry hashed the old way (the whole note) over, without moving its mod."""
        assert parsed.rendered is not None
        if known.hash == _whole_hash(parsed.rendered.fields, parsed.tags):
            known.hash = parsed.rendered.digest
            lock.changed.append(parsed.id)

    def report_moves(self, collection: Collection) -> None:
        """Tell the author which cards changed file, and what learners must do when decks moved."""
        order = sorted(self.moved, key=lambda m: (m[0], m[1], m[2].origin))
        for root, old, source in order:
            guids = self.moved[(root, old, source)]
            was = display_path(root / old)
            self.report.change(
                f"{source.display}: {len(guids)} card(s) moved here from {was}; they keep their ids, "
                "reviews and mod times (only the Source field and source:: tag differ, which "
                "learners get with the next change to each card)"
            )
            old_deck = deck_name(root, (root / old).parent)
            if old_deck.casefold() == source.deck.casefold() and old_deck != source.deck:
                # Anki tells decks apart without case: learners keep theirs, as they spell it.
                self.report.change(
                    f'{source.display}: deck "{old_deck}" is now spelled "{source.deck}"; Anki takes '
                    "them for one deck, so learners keep theirs as they spell it (they may rename it)"
                )
            elif old_deck != source.deck:
                # The deck alone, not its subdecks: `deck:"A"` would select the cards of A::B too.
                old_name = _searched(old_deck)
                # A blank other than a space (a no-break space) no search of Anki's finds as it is.
                find = (
                    f'click deck "{old_deck}" in the Browser\'s sidebar'
                    if any(c.isspace() and c != " " for c in old_deck)
                    else f'search deck:"{old_name}" -deck:"{old_name}::*" in the Browser'
                )
                self.report.change(
                    f'{source.display}: these {len(guids)} card(s) moved from deck "{old_deck}" to '
                    f'"{source.deck}", but Anki keeps cards it already has in their old deck: tell '
                    f"learners to {find}, select the cards and use Change Deck to move them to "
                    f'"{source.deck}" (new learners get the new deck)'
                )

    def in_scope(self, root: Path, origin: str | None) -> bool:
        """Tell whether this build read the file a lock entry came from."""
        return any(_covers(root, path, origin) for path in self.paths)

    def home(self, root: Path, entry: Entry) -> str | None:
        """Name the package of a retired card whose deck no card of this build opened one for.

        Its deck's folder lost its last card (or went): the package is the one that folder's
        cards went to, or learners would never hear that the card left.
        """
        if entry.origin is None:
            return None
        for path in self.paths:
            if _covers(root, path, entry.origin):
                source = source_of(path, root, root / entry.origin)
                self.anchors.setdefault(source.package, source.package_deck)
                return source.package
        return None

    def lives_on(self, root: Path, guid: str, entry: Entry) -> bool:
        """Tell whether a card gone from the files built is still in its deck tree (or may be).

        A build of some files of a tree cannot tell a card removed from one moved to a file it
        did not read: that tree is read (not rendered), and nothing is retired when it fails.
        """
        where = _origin_shown(root, entry)
        # Moved to a file not built, in its own tree or in another built in part at once.
        # (As it is, and in lower case: the lock does not say which column a GUID came from.)
        keys = _id_keys(guid)
        if any(isinstance(ids, set) and not ids.isdisjoint(keys) for ids in self.elsewhere.values()):
            self.report.notes.append(
                f"{where}: card {guid} moved to a file this build did not read; it stays live there, "
                "and this build's package carries it as last shipped until that file is built"
            )
            return True
        if root not in self.elsewhere:
            return False  # the whole tree was read
        ids = self.elsewhere[root]
        if isinstance(ids, str):
            # An error: this build's package would no longer hold the card, the only copy of its
            # last shipped content that a later build could retire it with.
            self.report.error(
                where, 0,
                f"card {guid} is gone from this file, but a file of the deck tree {display_path(root)} has "
                f"errors (first at {ids}), so it may have moved there; fix them, or build the whole "
                "tree to see them",
            )  # fmt: skip
            return True
        return False

    def carry(self, root: Path, lock: Lock, guid: str, entry: Entry) -> None:
        """Keep a card that moved to a file not built in its package, as it was last shipped.

        That package holds its last shipped content: were the card removed from its new file
        before that file is built, a later build could not retire it otherwise.
        """
        from deckbuild.package import NoteData
        from deckbuild.render import Where, vet_shipped

        shipped = self.shipped.get(guid)
        if shipped is None:
            return
        slug = self.package_of(shipped.deck) or self.home(root, entry)
        if slug is None:
            return
        nid = int(shipped.notetype)
        if (slug, lock.path, nid) not in self.stamped:
            self.stamp_notetype(slug, lock, nid)
        where = Where(_origin_shown(root, entry), 0)
        fields = [vet_shipped(f, where, self.report) if f else f for f in shipped.fields]
        source_at = NOTE_TYPES[nid].index("Source") if "Source" in NOTE_TYPES[nid].fields else None
        digest = content_hash(fields, shipped.tags, source_at)
        self.deck(slug, shipped.deck).notes.append(
            NoteData(guid, fields, _as_anki_keeps(shipped.tags), shipped.mod, digest, False, nid)
        )

    def package_of(self, deck: str) -> str | None:
        """Name the package this build makes that holds a deck, if any."""
        return next(
            (s for s, a in sorted(self.anchors.items()) if deck == a or deck.startswith(a + "::")), None
        )

    def retire(self, root: Path, lock: Lock, current: set[str]) -> None:
        """Carry every card that left the sources into its package, marked retired."""
        from deckbuild.package import NoteData

        for guid in sorted(lock.notes.keys() - current):
            entry = lock.notes[guid]
            if not entry.retired:
                if not self.in_scope(root, entry.origin):
                    continue
                if self.lives_on(root, guid, entry):
                    self.carry(root, lock, guid, entry)
                    continue
                if not self.mark_retired(root, lock, guid, entry):
                    continue
                entry = lock.notes[guid]
            assert entry.deck is not None and entry.fields is not None and entry.tags is not None
            slug = self.package_of(entry.deck)
            if slug is None and (slug := self.home(root, entry)) is None:
                continue
            nid = BY_LABEL[entry.notetype or "basic"].id
            if (slug, lock.path, nid) not in self.stamped:
                self.stamp_notetype(slug, lock, nid)
            mod = entry.mod
            if (newer := self.mods_of(self.replaced(slug))[0].get(guid)) is not None and newer > mod:
                mod = self.catch_up(lock, guid, mod, newer, entry.hash, nid, slug)
                self.fresh.add(slug)
            self.retired_deck(slug).notes.append(
                NoteData(
                    guid, self.vetted(root, entry), _as_anki_keeps(entry.tags), mod, entry.hash, True, nid
                )
            )
            self.report.count("retired")

    def vetted(self, root: Path, entry: Entry) -> list[str]:
        """Return a retired card's fields made safe: they come from files, not from the sources."""
        from deckbuild.render import Where, vet_shipped

        assert entry.fields is not None
        where = Where(_origin_shown(root, entry), 0)
        return [vet_shipped(f, where, self.report) if f else f for f in entry.fields]

    def mark_retired(self, root: Path, lock: Lock, guid: str, entry: Entry) -> bool:
        """Record a card that just left the sources as retired, with its last shipped content."""
        shipped = self.shipped.get(guid)
        where = _origin_shown(root, entry)
        if _kept_label(entry.notetype):
            self.report.warn(
                where, 0,
                f"card {guid} is gone from the sources, but its note type, kept from Anki, has no Status "
                "field to retire it with; tell learners to delete it, and run "
                + _said("deckbuild", "forget", guid),
            )  # fmt: skip
            return False
        if shipped is None:
            self.report.warn(
                where, 0,
                f"card {guid} is gone from the sources, but no earlier package holds it to retire it; "
                "build with --previous pointing at the last release, or, if no learner ever had it, run "
                f"{_said('deckbuild', 'forget', '--never-retired', guid)} to drop it",
            )  # fmt: skip
            return False
        notetype = NOTE_TYPES[int(shipped.notetype)]
        fields = list(shipped.fields)
        fields[notetype.index("Status")] = RETIRED_STATUS
        tags = sorted({*shipped.tags, RETIRED_TAG})
        lock.stamp(
            "notes", guid, content_hash(fields, tags, notetype.index("Source")), self.now,
            origin=entry.origin, kind=entry.kind, key=entry.key, deck=shipped.deck, fields=fields, tags=tags,
            notetype=None if notetype.id == NOTE_TYPE_ID else notetype.label,
        )  # fmt: skip
        self.report.change(f"{where}: retired card {guid} ({_first_text(fields[0])})")
        return True

    @cached_property
    def earlier(self) -> list[Path]:
        """Every package in the output folder, and `--previous`: what `replaced` picks from."""
        candidates = [*self.previous, self.outdir]
        return [
            f for c in candidates for f in (sorted(c.glob("*.apkg")) if c.is_dir() else [c]) if f.is_file()
        ]

    def replaced(self, slug: str, top: str | None = None) -> list[Path]:
        """The earlier packages a package of this build replaces, and `--previous`.

        In the output folder, those of its top deck (`top`, else the one it was anchored to):
        its own, and one a build of one of its files wrote (`Deck-file.apkg`). Another deck's
        package is not one, nor another project's with other names: their notes neither
        stand in for a lost lock nor move this build's mod times on.
        """
        from deckbuild.sources import package_slug

        top = top or self.anchors.get(slug)
        family = package_slug(top) if top else slug
        return [
            f
            for f in self.earlier
            if f.parent != self.outdir or f.name == f"{family}.apkg" or f.name.startswith(f"{family}-")
        ]

    def mods_of(self, files: Sequence[Path]) -> tuple[dict[str, int], dict[str, int]]:
        """The newest mod time `files` ship each note (by GUID) and note type (by id) with.

        Worked out once for each set of files: every retired card of a package asks.
        """
        key = tuple(files)
        if key in self._mods_merged:
            return self._mods_merged[key]
        notes: dict[str, int] = {}
        types: dict[str, int] = {}
        for file in files:
            for found, mods in zip((notes, types), self._mods_in(file), strict=True):
                for guid, mod in mods.items():
                    if mod > found.get(guid, -1):
                        found[guid] = mod
        self._mods_merged[key] = notes, types
        return notes, types

    def _mods_in(self, file: Path) -> tuple[dict[str, int], dict[str, int]]:
        import zipfile

        from deckbuild.packaged import read_mods

        if file not in self._mods_read:
            try:
                self._mods_read[file] = read_mods(file)
            except (
                OSError,
                KeyError,
                ValueError,
                TypeError,
                AttributeError,
                zipfile.BadZipFile,
                sqlite3.Error,
            ) as exc:
                if ran_out(exc):
                    raise
                self._mods_read[file] = ({}, {})  # told of once its notes are read, if they are
        return self._mods_read[file]

    def contents_of(self, file: Path) -> Any:
        """What an earlier package holds, or None when it cannot be read (said once)."""
        import zipfile

        from deckbuild.packaged import NewerFormat, read_package

        if file not in self._contents_read:
            try:
                self._contents_read[file] = read_package(file)
            except NewerFormat:
                self._contents_read[file] = None
                self.report.warn(
                    display_path(file), 0,
                    "a package in Anki's newer format (collection.anki21b), which deckbuild cannot "
                    "read; ignored",
                )  # fmt: skip
            except (OSError, KeyError, ValueError, zipfile.BadZipFile, sqlite3.Error) as exc:
                if ran_out(exc):
                    raise
                self._contents_read[file] = None
                self.report.warn(display_path(file), 0, "not a readable Anki package; ignored")
        return self._contents_read[file]

    def newest_notes(self, files: Sequence[Path]) -> dict[str, Any]:
        """Every note `files` hold, the newest of each (worked out once for each set of files)."""
        key = tuple(files)
        if key not in self._newest_read:
            self._newest_read[key] = self._newest(lambda note: True, files)
        return self._newest_read[key]

    def _newest(self, keep: Callable[[Any], bool], files: Sequence[Path] | None = None) -> dict[str, Any]:
        """The newest note of each GUID the earlier packages (or `files`) hold, of those `keep` takes.

        A note whose mod time no lock could keep (a package edited by hand) is not taken.
        """
        from deckbuild.packaged import usable_mod

        found: dict[str, Any] = {}
        chosen = self.earlier if files is None else files
        for contents in [c for f in chosen if (c := self.contents_of(f)) is not None]:
            for guid, note in contents.notes.items():
                if usable_mod(note.mod) and keep(note) and (guid not in found or note.mod > found[guid].mod):
                    found[guid] = note
        return found

    @cached_property
    def shipped(self) -> dict[str, Any]:
        """Every note of ours that an earlier package holds, the newest of each."""
        # deckbuild's own note types: a kept one's note is not retired (it has no Status field).
        return self._newest(_ours)


# Staged files and the targets they are renamed over.
_Moves = list[tuple[Path, Path]]


def _ours(note: Any) -> bool:
    """Tell whether a packaged note is on one of deckbuild's own note types, as it has them now."""
    ours = note.notetype.isdigit() and int(note.notetype) in _OWN_TYPES
    return ours and len(note.fields) == len(NOTE_TYPES[int(note.notetype)].fields)


def _as_anki_keeps(tags: Sequence[str]) -> list[str]:
    """Write tags read from a lock or package as learners' Anki keeps them: composed, no empty part.

    An earlier version let a tag with an empty part (`ml::::x`) through, which Anki named
    `ml::blank::x` on import: shipping that spelling changes nothing for them, and passes the gate.
    """
    out = []
    for tag in tags:
        tag = unicodedata.normalize("NFC", tag)
        out.append("::".join(part or "blank" for part in tag.split("::")) if "::" in tag else tag)
    return out


def _origin_shown(root: Path, entry: Entry) -> str:
    """Show the file a lock entry came from, or its deck root when the lock does not say."""
    return display_path(root / entry.origin) if entry.origin else display_path(root)


def _covers(root: Path, path: Path, origin: str | None) -> bool:
    """Tell whether a build of `path` reads the file of the deck root `root` named by `origin`."""
    if not path.is_relative_to(root):
        return False
    rel = path.relative_to(root).as_posix()
    return rel == "." or (origin is not None and (origin == rel or origin.startswith(rel + "/")))


@dataclass(frozen=True)
class _Plan:
    """One package to write: where, what, and its empty collection (None: it is unchanged)."""

    target: Path
    # What the cache knows the package by; None until it is written, for a package never written before.
    key: str | None
    decks: list[DeckData]
    notetype_mods: dict[int, int]
    files: list[tuple[str, Path]]
    empty: Shell | None
    # The SHA-256 of the package already there, when it is unchanged.
    sha256: str | None
    # What the cache knows its empty collection by, for the next build to patch it (deckbuild.patch).
    shell: str = ""


_OWN_TYPES = frozenset(nt.id for nt in BY_LABEL.values())


def _package_key(
    decks: Sequence[DeckData], notetype_mods: dict[int, int], files: Sequence[tuple[str, Path]]
) -> str:
    """Return what the cache knows a package by: its note types' mods, media names, decks and notes."""
    from deckbuild.package import notetype_mods_key

    digest = hashlib.sha256()
    at = {nid: source_at(nid) for nid in notetype_mods}
    for deck in decks:
        digest.update(f"\x1d{deck.name}\x1e{deck.description}".encode())
        digest.update(_note_keys(deck.notes, at).encode())
    names = "\x1f".join(name for name, _ in files)
    return cache.key("package", notetype_mods_key(notetype_mods), names, digest.hexdigest())


def _field(fields: Sequence[str], at: int | None) -> str:
    return "" if at is None else fields[at]


def _note_keys(notes: Sequence[NoteData], at: dict[int, int | None]) -> str:
    """Name a deck's notes for its package's key: each by GUID, mod, suspended, hash, Source field.

    Each note by its content hash (as the lock keeps it), not its whole text again; the hash
    leaves out the source file, which the Source field (and source:: tag) names. Made a column
    at a time, in C: the same text as `\x1c{guid}\x1e{mod}\x1e{suspended:d}\x1e{digest}\x1e{source}`
    for each note in turn.
    """
    if not notes:
        return ""
    guids, fields, _, mods, digests, suspended, types = zip(*notes, strict=True)
    places = {at[nid] for nid in set(types)}
    if len(places) == 1 and None not in places:  # one place for every note: the common case
        sources: Iterable[str] = map(itemgetter(places.pop()), fields)
    else:
        sources = map(_field, fields, map(at.__getitem__, types))
    rows = zip(guids, map(str, mods), map(("0", "1").__getitem__, suspended), digests, sources, strict=True)
    return "\x1c" + "\x1c".join(map("\x1e".join, rows))


def keep_types(collection: Collection) -> None:
    """Put every row that names a kept note type on it, with its fields laid out there.

    A row's note type is the one of that name in the nearest `notetypes.json` from its folder up
    to its deck root. Every such file found there is checked, used or not.
    """
    report = collection.report
    files: dict[Path, list[Path]] = {}
    # Each source file once (a file's cards come together), not a path made and hashed per card.
    last = None
    for parsed in collection.cards:
        if parsed.source is not last:
            last = parsed.source
            folder = last.path.parent
            if folder not in files:
                files[folder] = kept_files_above(folder, last.root)
    found_files = sorted({f for found in files.values() for f in found})
    if not found_files and not any(parsed.kept for parsed in collection.cards):
        # Nothing kept here. The module (3 ms to import) is needed only to forget the kept note
        # types of an earlier build in this process, and there are some only if it ran.
        if (kept_module := sys.modules.get("deckbuild.kept")) is not None:
            kept_module.register([])
        return
    from deckbuild import kept

    loaded: dict[Path, dict[str, Any]] = {}
    by_id: dict[int, tuple[Any, Path]] = {}
    for path in found_files:
        loaded[path] = kept.load(path, display_path(path), report)
        for nt in loaded[path].values():
            other = by_id.setdefault(nt.id, (nt, path))
            if other[0].digest != nt.digest:
                report.error(
                    display_path(path), 0,
                    f"note type {nt.name!r} has the id {nt.id} of another note type in "
                    f"{display_path(other[1])}; one id is one note type: give it its own",
                )  # fmt: skip
    kept.register([nt for nt, _ in by_id.values()])
    for parsed in collection.cards:
        if not parsed.kept:
            continue
        chain = files[parsed.source.path.parent]
        nt = next((loaded[f][parsed.kept] for f in chain if parsed.kept in loaded[f]), None)
        if nt is None:
            where = f"in {display_path(chain[0])}" if chain else f"(no {kept.FILE_NAME} above this file)"
            # A file moved away from its note types (a folder moved out of the one holding them).
            elsewhere = _holding(parsed.source.root, parsed.kept, loaded)
            fix = (
                "write one of its note types, or empty the Notetype cell"
                if elsewhere is None
                else f"{display_path(elsewhere)} has it: move or copy that file to a folder above this "
                "one (a folder's note types serve the files below it)"
            )
            report.error(parsed.source.display, parsed.line, f"no note type {parsed.kept!r} {where}; {fix}")
            continue
        assert parsed.rendered is not None
        fields = kept.fill(nt, NOTE_TYPES[parsed.notetype], parsed.rendered.fields)
        if isinstance(fields, str):
            report.error(parsed.source.display, parsed.line, fields)
            continue
        parsed.notetype, parsed.kept_fields = nt.id, fields


def _holding(root: Path, name: str, loaded: dict[Path, dict[str, Any]]) -> Path | None:
    """Find a note types file of a deck tree that has the note type `name`, read or not yet."""
    from deckbuild import kept

    for path in sorted(root.rglob(kept.FILE_NAME)):
        if path not in loaded:
            loaded[path] = kept.load(path, display_path(path), Report())  # its problems are not this build's
        if name in loaded[path]:
            return path
    return None


def _stage(path: Path, data: bytes) -> Path:
    """Write `data` to a temporary file beside `path`, for `commit` to rename into place."""
    try:
        return stage(path.parent, data)
    except OSError as exc:
        raise cannot_write(path, exc) from None


def _first_text(markup: str) -> str:
    text = re.sub(r"<[^>]+>", "", markup).strip()
    return text if len(text) <= 60 else text[:57] + "..."


# How a note type caught up is kept among the GUIDs of notes caught up (`_counted`).
_NOTE_TYPE_KEY = "\x00notetype:"


def _counted(keys: Sequence[str]) -> str:
    """Say how many cards and note types a build caught up (`_Build.caught_up`)."""
    types = sum(1 for key in keys if key.startswith(_NOTE_TYPE_KEY))
    said = f"{len(keys) - types} card(s)" if len(keys) > types else ""
    return " and ".join(part for part in (said, f"{types} note type(s)" if types else "") if part)


def _names_ours(contents: Any, names: set[str]) -> bool:
    """Tell whether a package names files of a tree as it names them, where its notes name any.

    A deck imported from Anki keeps its note types, which have no Source field: its package
    names no file, and is taken as its top deck's.
    """
    origins = [_shipped_origin(note) for note in contents.notes.values()]
    return any(origin in names for origin in origins) or not any(origins)


def _shipped_origin(note: Any) -> str | None:
    """Read the file a packaged note of one of deckbuild's note types came from (`_origin_of`)."""
    nid = int(note.notetype) if note.notetype.isdigit() else None
    at = source_at(nid) if nid in NOTE_TYPES else None
    return _origin_of(note.fields[at]) if at is not None and at < len(note.fields) else None


def _origin_of(shown: str) -> str | None:
    """Read the file a packaged note's Source field names, or None for one no build wrote.

    A package may come from anywhere: a path escaped otherwise, absolute, or going up (`..`)
    names no file of the tree.
    """
    from html import escape, unescape
    from pathlib import PurePosixPath

    origin = unescape(shown)
    if not origin or escape(origin) != shown or origin.startswith("/"):
        return None
    return None if any(part in ("..", ".") for part in PurePosixPath(origin).parts) else origin


def _said(*command: str) -> str:
    """Quote a command for a message, as a shell takes it: a GUID from Anki may hold `>` or `;`."""
    import shlex

    line = shlex.join(command)
    return f'"{line}"' if "'" in line else f"'{line}'"


def _searched(deck: str) -> str:
    """Write a deck's name for Anki's search, where `_` and `*` are wildcards and `\\` escapes."""
    return re.sub(r'([\\*_"])', r"\\\1", deck)


def _kept_label(label: str | None) -> bool:
    """Tell whether a lock entry's note type is one kept from Anki (no Status field: never retired)."""
    return label is not None and label.startswith("anki:")


def forget(path: Path, guids: Sequence[str], never_retired: bool = False) -> list[str]:
    """Drop retired cards from the lock for good, so that no later package carries them.

    A card gone from the sources but never retired (no package was at hand to retire it from)
    is refused unless `never_retired`: learners who have it would keep it as a live card.
    """
    (root,) = {find_root(p) for p in canonical([path])}
    if not (root / LOCK_NAME).is_file():
        raise DeckbuildError(
            f"no {LOCK_NAME} in {display_path(root)} or a folder above it, so no card to forget; give "
            "--decks a folder or file of a deck tree that was built"
        )
    guids = list(dict.fromkeys(guids))  # a UUID given twice is forgotten once
    with exclusive(root):
        recover([root])  # a killed build's lock first, or this change would be undone by it
        lock = Lock.load(root / LOCK_NAME)
        sources = collect([root])
        render_all(sources, {})  # what only rendering finds wrong is wrong all the same
        if errors := sources.report.errors:
            # A card of a file that cannot be read in full may be one of these: still live.
            raise DeckbuildError(
                f"cannot tell which cards are still in the sources while one has an error ({errors[0]}); "
                "run 'deckbuild check', fix it, and forget then"
            )
        present = {p.id for p in sources.cards}
        current = {key for p in sources.cards for key in _id_keys(p.id, p.anki)}
        problems = []
        for guid in guids:
            # A card of the sources keeps the spelling its lock entry has; one in another case is
            # that card only when the lock has no entry of this spelling (a UUID given in another case).
            if guid in present or (guid not in lock.notes and not current.isdisjoint(_id_keys(guid))):
                problems.append(f"card {guid} is still in the sources; remove it there first")
            elif guid not in lock.notes:
                problems.append(f"card {guid} is not in {display_path(lock.path)}")
            elif not (never_retired or lock.notes[guid].retired or _kept_label(lock.notes[guid].notetype)):
                problems.append(
                    f"card {guid} was never retired, so learners who have it would keep it as a live "
                    "card; build with --previous pointing at the last release to retire it, and forget "
                    "it once learners have had a release that retired it (or give --never-retired if "
                    "no learner ever had it)"
                )
        if problems:
            raise DeckbuildError("; ".join(problems))
        for guid in guids:
            del lock.notes[guid]
            lock.changed.append(guid)
        lock.save()
    return list(guids)
