"""Write Anki packages: the only module that knows genanki."""

from __future__ import annotations

import io
import json
import os
import re
import sqlite3
import struct
import sys
import threading
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from itertools import chain, repeat
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from isal import isal_zlib

from deckbuild.atomic import discard, stage
from deckbuild.errors import DROPPED, UNSAFE_NAME_RE, DeckbuildError, field_fault, printable, unsafe_character
from deckbuild.notetype import NOTE_TYPE_ID, NOTE_TYPES, NoteType, deck_id

# zipfile and tempfile (shutil, bz2, lzma, random) cost a build 6 ms to import: a package is
# written without them; only reading one, the empty collection and ZIP64 archives need them.
if TYPE_CHECKING:
    import zipfile

# Zip entries carry this time instead of "now", so the same notes give the same bytes.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)

# The gate every note passes before a package is written. Anki refuses a whole package when a
# note's field count is off (a U+001F inside a field adds one), and silently drops the other
# C0 controls and DEL from fields, tags and deck names. A note has its note type's field count.
# How many refused notes a message names, and how many rows the gate checks at a time.
_SHOWN = 10
_CHUNK = 1000
# The rows genanki writes: what every note and card has alike is written here, not bound per row
# (a note: usn -1, no checksum, flags or data; a card: usn -1, new, never due or reviewed).
NOTES_SQL = "INSERT INTO notes VALUES(?,?,?,?,-1,?,?,?,0,0,'')"
CARDS_SQL = "INSERT INTO cards VALUES(?,?,?,?,?,-1,0,?,0,0,0,0,0,0,0,0,0,'')"
# The same rows for a deck whose every note has one card, its first template's, and one queue:
# made from the notes rows by SQLite itself, in the same order (the same bytes; a test checks).
SPAN_SQL = (
    "INSERT INTO cards SELECT id + 1, id, ?, ?, mod, -1, 0, ?, 0, 0, 0, 0, 0, 0, 0, 0, 0, '' "
    "FROM notes WHERE id BETWEEN ? AND ? ORDER BY id"
)


class PackageRefused(DeckbuildError):
    """Notes Anki would refuse or change on import: the package is not written."""


class NoteData(NamedTuple):
    """One note ready to write: GUID, fields in note-type order, tags, and its own mod time."""

    guid: str
    fields: Sequence[str]
    tags: Sequence[str]
    mod: int
    # A hash of the fields and tags, so that a caller can tell two packages apart cheaply.
    digest: str
    # Retired notes arrive suspended for a learner who does not have them yet.
    suspended: bool = False
    # The note type's fixed id (deckbuild.notetype.NOTE_TYPES).
    notetype: int = NOTE_TYPE_ID


# A note's parts, picked in C for every note of a package at once.
_MOD = itemgetter(NoteData._fields.index("mod"))
_TAGS = itemgetter(NoteData._fields.index("tags"))
_GUID = itemgetter(NoteData._fields.index("guid"))
_FIELDS = itemgetter(NoteData._fields.index("fields"))
_SUSPENDED = itemgetter(NoteData._fields.index("suspended"))
_NOTETYPE = itemgetter(NoteData._fields.index("notetype"))
_FIRST = itemgetter(0)


@dataclass
class DeckData:
    """One Anki deck in a package."""

    name: str
    notes: list[NoteData] = field(default_factory=list)
    description: str = ""


# genanki's card rule per template: (ord, "any" or "all", indices of the fields it needs).
Rule = tuple[int, str, list[int]]


class Shell(NamedTuple):
    """A collection with no notes yet (schema, note types, decks), and which cards a note gets."""

    db: bytes
    # Per note type id (as text, so it survives JSON): genanki's card rules; none for cloze.
    req: dict[str, list[Rule]]


def notetype_mods_key(notetype_mods: dict[int, int]) -> str:
    """Name the note types of a package and their mod times, for cache keys."""
    return ",".join(f"{nid}:{mod}" for nid, mod in sorted(notetype_mods.items()))


def shell(decks: Sequence[DeckData], notetype_mods: dict[int, int], kept: Sequence[NoteType] = ()) -> Shell:
    """Have genanki write an empty collection with these note types (id: mod) and decks.

    `kept` are the note types kept from an imported deck that these ids name: a helper process
    that runs this has only deckbuild's own.
    """
    import tempfile

    import genanki

    types = {**NOTE_TYPES, **{nt.id: nt for nt in kept}}

    def model(nid: int, notetype_mod: int) -> Any:
        class Model(genanki.Model):  # type: ignore[misc]
            # The note type's mod moves only when its templates or CSS change, never with the clock.
            def to_json(self, timestamp: float, deck_id: int) -> dict[str, Any]:
                data: dict[str, Any] = super().to_json(notetype_mod, deck_id)
                return data

        nt = types[nid]
        return Model(
            nt.id,
            nt.name,
            fields=[{"name": name} for name in nt.fields],
            templates=[dict(t) for t in nt.templates],
            css=nt.css,
            sort_field_index=nt.sort_field,
            model_type=genanki.Model.CLOZE if nt.cloze else genanki.Model.FRONT_BACK,
        )

    models = [model(nid, mod) for nid, mod in sorted(notetype_mods.items())]
    gdecks = []
    for deck in decks:
        gdeck = genanki.Deck(deck_id(deck.name), deck.name, deck.description)
        for m in models:
            gdeck.add_model(m)
        gdecks.append(gdeck)
    with tempfile.TemporaryDirectory(prefix=".deckbuild-") as tmp:
        db_path = Path(tmp) / "collection.anki2"
        conn = sqlite3.connect(db_path)
        try:
            # A file thrown away once read: flushing it to disk at each commit cost a cold build
            # 40-150 ms of waiting on a busy disk. The bytes are the same (a test compares them).
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("PRAGMA journal_mode=MEMORY")
            # No note is written here, so neither the clock nor the id counter is read.
            genanki.Package(gdecks).write_to_db(conn.cursor(), 0, iter(()))
            conn.commit()
        finally:
            conn.close()
        req: dict[str, list[Rule]] = {}
        for m in models:
            cloze = types[m.model_id].cloze
            req[str(m.model_id)] = [] if cloze else [(o, mode, list(need)) for o, mode, need in m._req]
        return Shell(db_path.read_bytes(), req)


def write_package(
    path: Path,
    decks: Sequence[DeckData],
    notetype_mods: dict[int, int] | int,
    media: Sequence[tuple[str, Path]] = (),
    empty: Shell | None = None,
    shown: str | None = None,
) -> None:
    """Write `decks` to the .apkg at `path`, atomically and byte-for-byte reproducibly.

    `empty` is what `shell` returns for these decks, when the caller kept it from before;
    `shown` names the package in messages when `path` is a temporary file standing in for it.
    """
    data = package_bytes(decks, notetype_mods, media, empty, shown or path.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written beside `path` and flushed, then renamed: a failed or killed build leaves the
    # previous package whole.
    tmp = stage(path.parent, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        discard([tmp])
        raise


def package_bytes(
    decks: Sequence[DeckData],
    notetype_mods: dict[int, int] | int,
    media: Sequence[tuple[str, Path]],
    empty: Shell | None,
    shown: str,
) -> bytes:
    """Return the .apkg of `decks`, byte-for-byte reproducibly; `shown` names it in messages."""
    return start_package(decks, notetype_mods, media, empty, shown)()


def start_package(
    decks: Sequence[DeckData],
    notetype_mods: dict[int, int] | int,
    media: Sequence[tuple[str, Path]],
    empty: Shell | None,
    shown: str,
) -> Callable[[], bytes]:
    """Start the database of `decks` and gate its notes; return what waits for the .apkg's bytes.

    The notes rows are inserted here; the cards rows, Anki's indexes and the compressing then go
    on in a thread (SQLite and ISA-L let go of the GIL) while this one gates the notes, and then
    does whatever the caller does before it asks for the bytes.
    """
    if isinstance(notetype_mods, int):  # only the basic note type
        notetype_mods = {NOTE_TYPE_ID: notetype_mods}
    empty = empty or shell(decks, notetype_mods)
    mods = chain.from_iterable(map(_MOD, deck.notes) for deck in decks)
    stamp = max([*notetype_mods.values(), *mods])
    notes, cards, widths = _rows(decks, empty.req, stamp * 1000, shown)
    # In memory, not a file written and read back: the same pages SQLite would write to disk.
    # Handed to the thread once the notes are in: never used by two threads at once.
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    try:
        conn.deserialize(empty.db)
        # The rows genanki's per-note loop writes, in the same order and with the same ids,
        # about ten times faster. The database is thrown away if anything fails: no journal.
        conn.execute("PRAGMA journal_mode=OFF")
        # Indexes built once after the rows, not kept up to date row by row.
        indexes = _drop_indexes(conn)
        try:
            conn.executemany(NOTES_SQL, notes)
        except UnicodeEncodeError:  # a lone surrogate: the gate, which runs later, says where
            raise _refused(decks, shown) from None
    except BaseException:
        conn.close()
        raise

    # The thread's own from here: let go of once inserted, for a lower peak of memory.
    rest = [cards]
    del cards

    def entries() -> list[tuple[str, bytes]]:
        """Finish the database in the thread, and return the archive's entries."""
        try:
            for part in rest.pop():
                if isinstance(part, _Span):
                    conn.execute(SPAN_SQL, part)
                else:
                    conn.executemany(CARDS_SQL, part)
            for _, sql in indexes:
                conn.execute(sql)
            conn.commit()
            db = conn.serialize()
        finally:
            conn.close()
        names = {str(i): name for i, (name, _) in enumerate(media)}
        found = [("collection.anki2", db), ("media", json.dumps(names, sort_keys=True).encode("utf-8"))]
        return found + [(str(i), media_path.read_bytes()) for i, (_, media_path) in enumerate(media)]

    zipping = _Zipping(entries)
    # The gate, while the package is finished and compressed: a note Anki would refuse means no bytes.
    tags = list(chain.from_iterable(chain.from_iterable(map(_TAGS, deck.notes) for deck in decks)))
    clean = _clean(notes, widths, tags)
    del notes
    if not clean or any(_deck_fault(deck.name) for deck in decks):
        with suppress(Exception):
            zipping.result()
        raise _refused(decks, shown)
    return zipping.result


class _Zipping:
    """A zip archive made and compressed in a thread; `result` waits for its bytes.

    `entries` makes the archive's entries there. ISA-L lets go of the GIL while it compresses, but
    takes it back a few times (its output grows in blocks): while any archive is compressed, a
    thread waiting for the GIL gets it sooner.
    """

    live = 0
    interval = 0.0
    guard = threading.Lock()

    def __init__(self, entries: Callable[[], list[tuple[str, bytes]]]) -> None:
        self.data = b""
        self.error: BaseException | None = None
        with _Zipping.guard:
            if _Zipping.live == 0:
                _Zipping.interval = sys.getswitchinterval()
                sys.setswitchinterval(min(_Zipping.interval, _SWITCH))
            _Zipping.live += 1
        self.thread = threading.Thread(target=self._run, args=(entries,), daemon=True)
        try:
            self.thread.start()
        except BaseException:
            self._done()
            raise

    def _run(self, entries: Callable[[], list[tuple[str, bytes]]]) -> None:
        try:
            self.data = zip_bytes(entries())
        except BaseException as exc:  # handed to whoever waits for the bytes
            self.error = exc
        finally:
            self._done()

    @staticmethod
    def _done() -> None:
        with _Zipping.guard:
            _Zipping.live -= 1
            if _Zipping.live == 0:
                sys.setswitchinterval(_Zipping.interval)

    def result(self) -> bytes:
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.data


# The GIL switch interval while a package is compressed (Python's default is 5 ms).
_SWITCH = 0.0002
# The zip records as zipfile writes them (its structFileHeader, structCentralDir, structEndArchive).
_LOCAL = struct.Struct("<4s2B4HL2L2H")
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_END = struct.Struct("<4s4H2LH")
# zipfile's version fields (DEFAULT_VERSION), its ZIP_DEFLATED, and the Unix system its
# external attributes mean.
_VERSION = 20
_DEFLATED = 8
_UNIX = 3
_MODE = 0o644 << 16
_UTF8 = 0x800
# Past this, zipfile adds ZIP64 records: such archives are left to it.
_ZIP64_AT = 1 << 30


def _drop_indexes(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """Drop the notes' and cards' indexes, to be built once after the rows; return them."""
    indexes: list[tuple[str, str]] = conn.execute(
        "SELECT name, sql FROM main.sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
        "AND tbl_name IN ('notes', 'cards') ORDER BY name"
    ).fetchall()
    for index, _ in indexes:
        conn.execute(f'DROP INDEX main."{index}"')
    return indexes


def zip_bytes(entries: Sequence[tuple[str, bytes]]) -> bytes:
    """Return a zip archive of `entries`, deflated by ISA-L (`deflate`).

    Written here rather than by zipfile so that compressing is one call that lets go of the GIL,
    not several that each wait to take it back from a busy thread, and by ISA-L rather than zlib.
    The records are those zipfile writes with `_add`. Archives of a gigabyte or more, which need
    ZIP64 records, are left to zipfile and zlib.
    """
    if sum(len(data) for _, data in entries) >= _ZIP64_AT:
        import zipfile

        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as out:
            for name, data in entries:
                _add(out, name, data)
        return buffer.getvalue()
    year, month, day, hour, minute, second = ZIP_EPOCH
    date, time = (year - 1980) << 9 | month << 5 | day, hour << 11 | minute << 5 | second // 2
    parts: list[bytes] = []
    central: list[bytes] = []
    offset = 0
    for name, data in entries:
        packed = deflate(data)
        crc, raw = isal_zlib.crc32(data), name.encode("utf-8")
        flags = 0 if name.isascii() else _UTF8  # as zipfile marks a name that is not ASCII
        sizes = (crc, len(packed), len(data), len(raw))
        header = _LOCAL.pack(b"PK\x03\x04", _VERSION, 0, flags, _DEFLATED, time, date, *sizes, 0)
        entry = (_VERSION, _UNIX, _VERSION, 0, flags, _DEFLATED, time, date, *sizes, 0, 0, 0, 0, _MODE)
        central.append(_CENTRAL.pack(b"PK\x01\x02", *entry, offset) + raw)
        parts += (header, raw, packed)
        offset += len(header) + len(raw) + len(packed)
    size = sum(map(len, central))
    parts += (*central, _END.pack(b"PK\x05\x06", 0, 0, len(entries), len(entries), size, offset, 0))
    return b"".join(parts)


# What inflating damaged data raises (isal's stub types it as an instance, not the class it is).
_INFLATE_FAILED = cast("type[Exception]", isal_zlib.error)


def read_entries(data: bytes) -> list[tuple[str, bytes]] | None:
    """Return the entries of an archive `zip_bytes` wrote, in order; None for any other archive.

    Read by the records `zip_bytes` writes, not by zipfile: a package this build wrote itself
    (its SHA-256 recorded) is read back in the time inflating it takes.
    """
    entries: list[tuple[str, bytes]] = []
    at = 0
    try:
        while data.startswith(b"PK\x03\x04", at):
            _, _, _, flags, method, _, _, crc, packed, size, length, extra = _LOCAL.unpack_from(data, at)
            start = at + _LOCAL.size + length + extra
            name = data[at + _LOCAL.size : start - extra].decode("utf-8")
            if method != _DEFLATED or flags & ~_UTF8 or start + packed > len(data):
                return None
            raw = isal_zlib.decompress(data[start : start + packed], -15)
            if len(raw) != size or isal_zlib.crc32(raw) != crc:
                return None
            entries.append((name, raw))
            at = start + packed
    except (struct.error, UnicodeDecodeError, _INFLATE_FAILED):
        return None
    # Then the central directory, and the end record that counts the entries.
    end = len(data) - _END.size
    if not entries or not data.startswith(b"PK\x01\x02", at) or not data.startswith(b"PK\x05\x06", end):
        return None
    return entries if _END.unpack_from(data, end)[4] == len(entries) else None


# Every note of the earlier collection between two ids, its id moved on (deckbuild.patch).
_COPY_NOTES = (
    "INSERT INTO main.notes SELECT id + ?, guid, mid, mod, usn, tags, flds, sfld, csum, flags, data "
    "FROM old.notes WHERE id > ? AND id < ? ORDER BY id"
)
# Every card of the earlier collection, its ids moved on, with its note's mod as written now.
_COPY_CARDS = (
    "INSERT INTO main.cards SELECT c.id + ?1, c.nid + ?1, c.did, c.ord, n.mod, c.usn, c.type, c.queue, "
    "c.due, c.ivl, c.factor, c.reps, c.lapses, c.left, c.odue, c.odid, c.flags, c.data "
    "FROM old.cards AS c JOIN main.notes AS n ON n.id = c.nid + ?1 ORDER BY c.id"
)


def patch_package(
    entries: list[tuple[str, bytes]], empty: Shell, changes: Sequence[NoteData]
) -> bytes | None:
    """Return the .apkg of `entries` (`read_entries`) with these notes changed in place; None if it cannot.

    The bytes are those `package_bytes` writes from every note (a test holds the two to it):
    the same empty collection, the same rows inserted in the same order and transactions, the
    same indexes. Only notes of the basic note type with one card each are changed so, each
    keeping its GUID, tags and place, and only their mods may move on. None: the caller writes
    the package whole instead.
    """
    if not entries or entries[0][0] != "collection.anki2" or not changes:
        return None
    by_guid = {note.guid: note for note in changes}
    if len(by_guid) != len(changes) or any(
        note.notetype != NOTE_TYPE_ID
        or note.suspended
        or len(note.fields) != len(NOTE_TYPES[NOTE_TYPE_ID].fields)
        for note in changes
    ):
        return None
    conn = sqlite3.connect(":memory:")
    try:
        conn.deserialize(empty.db)
        conn.execute("ATTACH DATABASE ':memory:' AS old")
        conn.deserialize(entries[0][1], name="old")
        first, count = conn.execute("SELECT min(id), count(*) FROM old.notes").fetchone()
        marks = ",".join("?" * len(by_guid))
        found = conn.execute(
            f"SELECT id, guid, mid, tags FROM old.notes WHERE guid IN ({marks})", list(by_guid)
        )
        rows = sorted(found.fetchall())
        if not count or first % 1000 or len(rows) != len(by_guid):
            return None
        # The stamp the package was written with (`start_package`: its note types' and notes'
        # latest mod) is its first note's id over a thousand; a note's mod only moves on.
        stamp = max(first // 1000, *(note.mod for note in changes))
        found = conn.execute(
            f"SELECT nid, count(*) FROM old.cards WHERE nid IN ({marks}) GROUP BY nid", [r[0] for r in rows]
        )
        cards = dict(found.fetchall())
        # The basic note type's one template, and the fields its card needs (`_rows`' rule).
        rules = empty.req.get(str(NOTE_TYPE_ID), [])
        if len(rules) != 1:
            return None
        _, mode, need = rules[0]
        test, needed = (any if mode == "any" else all), _getter(need)
        out: list[tuple[Any, ...]] = []
        for nid, guid, mid, tags in rows:
            note = by_guid[guid]
            # One card before and after, with the tags the note had.
            if mid != NOTE_TYPE_ID or cards.get(nid) != 1 or tags != f" {' '.join(note.tags)} ":
                return None
            if not test(needed(note.fields)):
                return None
            # The note's row as `_rows` makes it.
            out.append((nid, guid, mid, note.mod, tags, "\x1f".join(note.fields), note.fields[0]))
        widths = [len(NOTE_TYPES[NOTE_TYPE_ID].fields)] * len(out)
        if not _clean(out, widths, [tag for row in out for tag in by_guid[row[1]].tags]):
            return None
        delta = stamp * 1000 - first
        conn.execute("PRAGMA journal_mode=OFF")
        indexes = _drop_indexes(conn)
        after = first - 1
        for row in out:
            conn.execute(_COPY_NOTES, (delta, after, row[0]))
            conn.execute(NOTES_SQL, (row[0] + delta, *row[1:]))
            after = row[0]
        conn.execute(_COPY_NOTES, (delta, after, 1 << 62))
        conn.execute(_COPY_CARDS, (delta,))
        for _, sql in indexes:
            conn.execute(sql)
        conn.commit()
        conn.execute("DETACH DATABASE old")
        db = conn.serialize()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return zip_bytes([("collection.anki2", db), *entries[1:]])


# A large entry is deflated in pieces of this many bytes, side by side on every core, each piece
# primed with the 32 KiB before it (as pigz does): the same bytes whatever the number of cores,
# and within a thousandth of the size of one stream.
PIECE = 1 << 20
_WINDOW = 1 << 15
# ISA-L's level 2 (its default): four times as fast as zlib's fastest, to the same size. Its bytes
# are fixed by the isal release pyproject.toml admits, as zlib's are by the zlib Python links.
LEVEL = 2


def deflate(data: bytes) -> bytes:
    """Return `data` raw-deflated by ISA-L at `LEVEL`, a piece at a time on every core."""
    view = memoryview(data)
    starts = range(0, len(data), PIECE)
    packed: list[bytes] = [b""] * len(starts)
    taken = iter(range(len(starts)))  # each piece to the first thread free (next() is atomic)
    failed: list[BaseException] = []

    def pack() -> None:
        try:
            for n in taken:
                start = starts[n]
                window = view[max(0, start - _WINDOW) : start]
                packer = (
                    isal_zlib.compressobj(LEVEL, isal_zlib.DEFLATED, -15, zdict=window)
                    if start
                    else isal_zlib.compressobj(LEVEL, isal_zlib.DEFLATED, -15)
                )
                # A piece but the last ends byte-aligned and not final, for the next to follow on.
                end = isal_zlib.Z_FINISH if n == len(starts) - 1 else isal_zlib.Z_SYNC_FLUSH
                packed[n] = packer.compress(view[start : start + PIECE]) + packer.flush(end)
        except BaseException as exc:  # handed to the thread that waits
            failed.append(exc)

    if len(starts) > 1:
        helpers: list[threading.Thread] = []
        for _ in range(min(os.cpu_count() or 1, len(starts)) - 1):
            try:
                helpers.append(thread := threading.Thread(target=pack))
                thread.start()
            except RuntimeError:  # no thread to be had: fewer share the pieces, the same bytes
                helpers.pop()
                break
        pack()
        for thread in helpers:
            thread.join()
        if failed:
            raise failed[0]
        return b"".join(packed)
    packer = isal_zlib.compressobj(LEVEL, isal_zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


class _Span(NamedTuple):
    """The cards of a deck whose notes have one card each, alike (SPAN_SQL's parameters)."""

    did: int
    ord: int
    queue: int
    first: int  # the deck's first and last note id
    last: int


# A note type's field count, whether it is a cloze, and its card rule per template.
_Kind = tuple[int, bool, list[tuple[int, Callable[..., bool], Callable[..., Any]]]]


def _rows(
    decks: Sequence[DeckData], req: dict[str, list[Rule]], first_id: int, shown: str
) -> tuple[list[tuple[Any, ...]], list[list[tuple[Any, ...]] | _Span], list[int]]:
    """Make the notes and cards rows, and each note's field count, for the gate (`_clean`).

    A row holds only what differs from note to note (NOTES_SQL and CARDS_SQL fill in the rest):
    a note's id, GUID, note type, mod, tags, fields and sort field; a card's id, note, deck,
    template, mod and queue. Notes and their cards take ids from one counter, in order. The
    cards come per deck, in order: their rows, or a `_Span` when each note has one card alike.
    """
    notes: list[tuple[Any, ...]] = []
    cards: list[list[tuple[Any, ...]] | _Span] = []
    # Per note type: its field count (the gate counts separators by it), whether it is a cloze,
    # and genanki's card rule per template (Note._front_back_cards): which give a note a card.
    kinds: dict[int, _Kind] = {}

    def kind_of(nid: int) -> _Kind:
        kind = kinds.get(nid)
        if kind is None:
            notetype = NOTE_TYPES.get(nid)
            if notetype is None:
                raise _refused(decks, shown)
            rules = [] if notetype.cloze else req[str(nid)]
            kind = kinds[nid] = (
                len(notetype.fields),
                notetype.cloze,
                [(o, any if mode == "any" else all, _getter(need)) for o, mode, need in rules],
            )
        return kind

    widths: list[int] = []
    next_id = first_id
    add_note, add_width = notes.append, widths.append
    # The notes of a file share their tags: each tuple of them is written out once.
    shown_tags: dict[tuple[str, ...], str] = {}

    def tag_text(note_tags: Sequence[str]) -> str:
        tags = shown_tags.get(note_tags) if type(note_tags) is tuple else None
        if tags is None:
            tags = f" {' '.join(note_tags)} "
            if type(note_tags) is tuple:
                shown_tags[note_tags] = tags
        return tags

    for deck in decks:
        did = deck_id(deck.name)
        each = _one_card_each(deck.notes, kind_of, tag_text, next_id)
        if each is not None:
            rows, width, ord_, queue = each
            cards.append(_Span(did, ord_, queue, rows[0][0], rows[-1][0]))
            notes += rows
            widths += [width] * len(rows)
            next_id = rows[-1][0] + 2
            continue
        deck_cards: list[tuple[Any, ...]] = []
        add_card, first_note = deck_cards.append, len(notes)
        for note in deck.notes:
            fields = note.fields
            width, cloze, tests = kind_of(note.notetype)
            if len(fields) != width:
                raise _refused(decks, shown)
            tags = tag_text(note.tags)
            nid, mod = next_id, note.mod
            add_note((nid, note.guid, note.notetype, mod, tags, "\x1f".join(fields), fields[0]))
            add_width(width)
            queue = -1 if note.suspended else 0
            if cloze:
                for ord_ in cloze_ords(fields[0]):
                    next_id += 1
                    add_card((next_id, nid, did, ord_, mod, queue))
            else:
                for ord_, test, need in tests:
                    if test(need(fields)):
                        next_id += 1
                        add_card((next_id, nid, did, ord_, mod, queue))
            next_id += 1
        count = len(notes) - first_note
        # As many cards as notes, each with the id after its note's: one card a note. Of one
        # template and queue, each card is its note's row with the deck, template and queue.
        alike = {(card[0] - card[1], card[3], card[5]) for card in deck_cards}
        if count and len(deck_cards) == count and len(alike) == 1 and (one := alike.pop())[0] == 1:
            cards.append(_Span(did, one[1], one[2], notes[first_note][0], notes[-1][0]))
        elif deck_cards:
            cards.append(deck_cards)
    return notes, cards, widths


def _one_card_each(
    notes: Sequence[NoteData],
    kind_of: Callable[[int], _Kind],
    tag_text: Callable[[Sequence[str]], str],
    first: int,
) -> tuple[list[tuple[Any, ...]], int, int, int] | None:
    """Make a deck's notes rows in C when each note gets one card alike, as `_rows`' loop would.

    That is: notes of one note type that is no cloze and has one template, each with all its
    fields and that template's card, all suspended or none. Return the rows, the field count,
    the card's template and queue; None for any other deck, which the loop makes instead.
    """
    if not notes:
        return None
    nid, suspended = notes[0].notetype, notes[0].suspended
    if set(map(_NOTETYPE, notes)) != {nid} or set(map(_SUSPENDED, notes)) != {suspended}:
        return None
    width, cloze, tests = kind_of(nid)
    fields = list(map(_FIELDS, notes))
    if cloze or len(tests) != 1 or set(map(len, fields)) != {width}:
        return None
    ord_, test, need = tests[0]
    if not all(map(test, map(need, fields))):
        return None
    ids = range(first, first + 2 * len(notes), 2)
    guids, mods, tags = map(_GUID, notes), map(_MOD, notes), map(tag_text, map(_TAGS, notes))
    rows = list(zip(ids, guids, repeat(nid), mods, tags, map("\x1f".join, fields), map(_FIRST, fields)))
    return rows, width, ord_, -1 if suspended else 0


_CLOZE_NUMBER = re.compile(r"\{\{c(\d+)::")


def cloze_ords(text: str) -> list[int]:
    """Return the cards of a cloze note: one per cloze number in its text, as Anki makes them."""
    return sorted({int(n) - 1 for n in _CLOZE_NUMBER.findall(text) if int(n) > 0})


def _clean(notes: list[tuple[Any, ...]], widths: list[int], tags: list[str]) -> bool:
    """Tell whether every note row is one Anki takes as it is: the gate's fast path.

    The rows' text is checked in chunks, in C: every field count was checked already, so each
    note has exactly its separators unless a field holds U+001F; UTF-8 refuses lone surrogates.
    """
    found: list[str] = []
    for start in range(0, len(notes), _CHUNK):
        chunk = notes[start : start + _CHUNK]
        try:
            data = "\n".join([row[5] for row in chunk]).encode("utf-8")
            tag_text = "".join([row[4] for row in chunk])
            tag_data = tag_text.encode("utf-8")
        except UnicodeEncodeError:
            return False
        if data.count(b"\x1f") != sum(widths[start : start + _CHUNK]) - len(chunk):
            return False
        if not (_kept(data) and _kept(tag_data)):
            return False
        # Splitting finds empty tags and whitespace inside one (tab and U+001F included).
        found += tag_text.split()
        # A part of a tag's hierarchy left empty, which Anki renames "blank": each row's tags
        # are " a b ", so these three find every one (and a few tags that have none, told apart).
        if (" ::" in tag_text or ":: " in tag_text or "::::" in tag_text) and any(
            _empty_part(t) for t in tag_text.split()
        ):
            return False
    return found == tags


def _empty_part(tag: str) -> bool:
    """Tell whether a tag has an empty part between '::', which Anki would rename 'blank'."""
    return "::" in tag and "" in tag.split("::")


def _kept(data: bytes) -> bool:
    """Tell whether UTF-8 text holds none of the control characters Anki drops."""
    return len(data.translate(None, DROPPED)) == len(data)


def _refused(decks: Sequence[DeckData], name: str) -> PackageRefused:
    """Say which notes and decks the gate refuses (the slow path: only when there are some)."""
    refused = [f"deck {deck.name!r}: {fault}" for deck in decks if (fault := _deck_fault(deck.name))]
    for deck in decks:
        for note in deck.notes:
            if fault := _note_fault(note.fields, note.tags, NOTE_TYPES.get(note.notetype)):
                refused.append(f"note {note.guid} in deck {deck.name!r}: {fault}")
    more = f"; and {len(refused) - _SHOWN} more" if len(refused) > _SHOWN else ""
    return PackageRefused(
        f"{printable(name)}: "
        + "; ".join(printable(r) for r in refused[:_SHOWN])
        + more
        + "; Anki would refuse or change these, so nothing was written and the previous package "
        "stays (a damaged cache or lock file can cause this: build again with --no-cache, or "
        "check the lock file)"
    )


def _deck_fault(name: str) -> str | None:
    """Tell what makes a deck name one Anki would change, if anything."""
    if found := UNSAFE_NAME_RE.search(name):
        return f"the name holds {unsafe_character(found.group())}"
    if any(not part.strip() for part in name.split("::")):
        return "the name has an empty part"
    return None


def _note_fault(fields: Sequence[str], tags: Sequence[str], notetype: NoteType | None) -> str | None:
    """Say what the gate finds wrong with a note, if anything."""
    if notetype is None:
        return "its note type is not one of deckbuild's"
    if len(fields) != len(notetype.fields):
        return f"it has {len(fields)} fields, the note type has {len(notetype.fields)}"
    if fault := field_fault(fields, notetype.fields):
        return fault
    for tag in tags:
        if not tag or tag.split() != [tag] or UNSAFE_NAME_RE.search(tag):
            return f"the tag {tag!r} is empty or holds a space or control character"
        if _empty_part(tag):
            return f"the tag {tag!r} has an empty part between '::', which Anki would rename 'blank'"
    return None


def _getter(indices: list[int]) -> Callable[[Sequence[str]], tuple[str, ...]]:
    """Pick fields by index as a tuple; itemgetter returns a bare item for one index, so pad it."""
    if not indices:
        return lambda fields: ()
    return itemgetter(*indices, indices[0])


def _add(out: zipfile.ZipFile, name: str, data: bytes) -> None:
    import zipfile

    info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3
    info.external_attr = 0o644 << 16
    # zlib's fastest level, for archives of ZIP64 size only (see `zip_bytes`).
    out.writestr(info, data, compresslevel=1)
