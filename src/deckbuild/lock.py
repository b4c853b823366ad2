"""The lock file: what each note looked like when it was last built, and since when.

Anki's default import updates a note only when the package's mod time is newer than the
collection's. So each note's mod must move forward exactly when its content changes, and stay
put otherwise. The lock remembers, per GUID, a hash of the content and the mod it was given;
it is committed beside the sources so that every clone builds the same bytes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deckbuild.atomic import write_text
from deckbuild.errors import ANKI_GUID, UUID, DeckbuildError
from deckbuild.notetype import BY_LABEL
from deckbuild.resources import ran_out
from deckbuild.sources import read_regular

LOCK_FORMAT = 1
# What a lock file holds: its format, and its two tables.
_TABLES = frozenset(("deckbuild_lock", "notetypes", "notes"))
# A mod is a time in whole seconds; past the year 9999 it is damage, not a time.
MAX_MOD = 253_402_300_799
_TEXT_KEYS = ("origin", "kind", "key", "deck")
# The kinds of card whose id the lock keeps beside their question (a page's, without a UUID).
PAGE_KINDS = frozenset(("recall", "quiz", "open", "practice", "challenge"))
# A note's id is a card's UUID (either case: Anki keeps the spelling), or a GUID kept from Anki.
_UUID_RE = re.compile(UUID)
_GUID = rf"{UUID}|{ANKI_GUID}"
_GUID_RE = re.compile(_GUID)
# Every key at once, one a line: a single pass in C instead of one match per note. Each line is
# an atomic group: a UUID is a GUID too, and backtracking into that choice for every line before
# a bad key took time doubling with each line (a hand-edited key hung the build).
_GUIDS_RE = re.compile(f"(?>(?:{_GUID})\n)*")
# Up to this many changed entries, the file as read is patched line by line, not rewritten.
PATCH_MAX = 64
_ROW_RE = re.compile(r'("(?:[^"\\]|\\.)*"): \{.*\},?$')


@dataclass(slots=True)  # ten thousand of them are made at every build: slots make that cheaper
class Entry:
    """What the lock holds for one note (or note type)."""

    hash: str
    mod: int
    # The source file, relative to the deck root: a card gone from a built file is retired.
    origin: str | None = None
    # Only for cards whose source carries no UUID: what identifies them on their page.
    kind: str | None = None
    key: str | None = None
    # Only for retired cards, whose content no source holds any more: the note as last shipped.
    deck: str | None = None
    fields: list[str] | None = None
    tags: list[str] | None = None
    # The note type, when it is not the basic one ("reversed", "cloze"): a card keeps its type.
    notetype: str | None = None

    @property
    def retired(self) -> bool:
        return self.fields is not None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"hash": self.hash, "mod": self.mod}
        for name in ("origin", "kind", "key", "deck", "fields", "tags", "notetype"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        return data


@dataclass
class Lock:
    """The lock file of one deck tree, and what this run changed in it."""

    path: Path
    notes: dict[str, Entry] = field(default_factory=dict)
    notetypes: dict[str, Entry] = field(default_factory=dict)
    changed: list[str] = field(default_factory=list)
    # The file as read, so that an unchanged entry is written back as it was, not re-encoded.
    text: str = field(default="", repr=False)
    # Ids given to cards in this run, which no other file may take over.
    claimed: set[str] = field(default_factory=set, repr=False)
    _spellings: dict[str, list[str]] | None = field(default=None, repr=False)
    _free: dict[tuple[str | None, str | None], list[str]] | None = field(default=None, repr=False)
    _by_origin: dict[str | None, dict[str, Entry]] | None = field(default=None, repr=False)

    def spellings(self) -> dict[str, list[str]]:
        """Return the note ids by their lower case, in order (Anki's GUIDs are case-sensitive, UUIDs not)."""
        if self._spellings is None:
            found: dict[str, list[str]] = {}
            for guid in sorted(self.notes):
                found.setdefault(guid.lower(), []).append(guid)
            self._spellings = found
        return self._spellings

    @classmethod
    def load(cls, path: Path) -> Lock:
        """Read the lock at `path`, or start an empty one if there is none."""
        lock = cls(path)
        if not path.exists():
            return lock
        try:
            raw = read_regular(path, limit=None)  # a FIFO lock never hangs a build
        except OSError as exc:
            if ran_out(exc):
                raise
            raise _damaged(path, 1, str(exc.strerror or exc), fix="") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _damaged(path, raw.count(b"\n", 0, exc.start) + 1, "not UTF-8 text") from None
        # orjson reads a lock in a third of the time Python's parser takes, and where both read
        # a lock, they read the same. Anything orjson refuses, that fails a check after it (an
        # integer past 64 bits is a float to orjson), or that no check looks at (a key of its
        # own, which may be nested deeper than Python's parser goes) is read again by Python's
        # parser, whose reading and messages decide. Imported here: a build that nothing
        # changed reads no lock.
        import orjson

        try:
            data = orjson.loads(raw)
            if type(data) is dict and data.keys() <= _TABLES:
                return cls._filled(path, text, data)
        except (orjson.JSONDecodeError, DeckbuildError):
            pass
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, a number too long, too deep
            line = getattr(exc, "lineno", 1)
            conflict = " (an unresolved merge conflict?)" if "\n<<<<<<< " in "\n" + text else ""
            raise _damaged(path, line, f"not valid JSON{conflict}: {getattr(exc, 'msg', exc)}") from None
        return cls._filled(path, text, data)

    @classmethod
    def _filled(cls, path: Path, text: str, data: Any) -> Lock:
        """Make the lock of `text`, read as `data`, or raise what is wrong with it."""
        lock = cls(path)
        if not isinstance(data, dict):
            raise _damaged(path, 1, f"not a lock file: the file holds {_shape(data)}, not an object")
        if data.get("deckbuild_lock") != LOCK_FORMAT:
            found = data.get("deckbuild_lock")
            what = f"unknown lock format {found!r}, expected {LOCK_FORMAT}"
            raise _damaged(path, _line_of(text, "deckbuild_lock"), what)
        for table in ("notetypes", "notes"):
            entries = data.get(table)
            if not isinstance(entries, dict):
                raise _damaged(path, _line_of(text, table), f'"{table}" is {_shape(entries)}, not an object')
            target = lock.notes if table == "notes" else lock.notetypes
            keys_ok = table != "notes" or _GUIDS_RE.fullmatch("\n".join(entries) + "\n" if entries else "")
            for key, value in entries.items():
                entry = _entry(value)
                if type(entry) is Entry and entry.kind is None and keys_ok:
                    target[key] = entry  # most rows: nothing more to check
                    continue
                if not keys_ok and not _GUID_RE.fullmatch(key):
                    entry = "not a UUID or GUID"
                elif isinstance(entry, Entry) and entry.kind is not None and not _UUID_RE.fullmatch(key):
                    # Only a semicolon file's GUID column keeps Anki's GUIDs; a page card always has a UUID.
                    entry = "not a UUID, as a page card's id always is"
                if isinstance(entry, str):
                    raise _damaged(path, _line_of(text, key), f"{table[:-1]} {key!r}: {entry}")
                target[key] = entry
        lock.text = text
        return lock

    def by_origin(self, origin: str) -> dict[str, Entry]:
        """Return the entries of the cards of one file, in id order.

        Indexed once: a build reading every file of a large tree would otherwise scan the whole
        lock once per file.
        """
        if self._by_origin is None:
            index: dict[str | None, dict[str, Entry]] = {}
            for guid, entry in sorted(self.notes.items()):
                index.setdefault(entry.origin, {})[guid] = entry
            self._by_origin = index
        return dict(self._by_origin.get(origin, {}))

    def free_by_key(self) -> dict[tuple[str | None, str | None], list[str]]:
        """Return `unclaimed_by_key` as first asked for once every file took its own ids.

        Made once per lock: those who take an id from it pop it from its list.
        """
        if self._free is None:
            self._free = self.unclaimed_by_key()
        return self._free

    def unclaimed_by_key(self) -> dict[tuple[str | None, str | None], list[str]]:
        """Return the page cards' ids no card of this build has claimed, by kind and question."""
        free: dict[tuple[str | None, str | None], list[str]] = {}
        for guid, entry in sorted(self.notes.items()):
            if entry.key is not None and guid not in self.claimed:
                free.setdefault((entry.kind, entry.key), []).append(guid)
        return free

    def stamp(self, table: str, guid: str, digest: str, now: int, **extra: Any) -> int:
        """Return the mod for `guid` with content `digest`, moving it forward only on change."""
        entries = self.notes if table == "notes" else self.notetypes
        old = entries.get(guid)
        if old is not None and old.hash == digest:
            for name, value in extra.items():
                if getattr(old, name) != value:
                    setattr(old, name, value)
                    self.changed.append(guid)
                    self._by_origin = None
            return old.mod
        # Strictly newer than before, even when the clock is behind or two builds share a second.
        mod = now if old is None else max(now, old.mod + 1)
        entries[guid] = Entry(digest, mod, **extra)
        self._by_origin = None
        self.changed.append(guid)
        return mod

    def advance(self, table: str, guid: str, mod: int) -> None:
        """Give an entry a newer mod time, its content as it is."""
        entries = self.notes if table == "notes" else self.notetypes
        entries[guid].mod = mod
        self.changed.append(guid)

    def render(self) -> str:
        """Return the lock as text: JSON with one sorted entry a line, so diffs stay small."""
        patched = self._patched()
        return patched if patched is not None else self._render_all()

    def _patched(self) -> str | None:
        """Replace only the changed lines of the file as read, when each of them is there."""
        keys = sorted(set(self.changed))
        if not self.text or len(keys) > PATCH_MAX:
            return None
        text = self.text
        for key in keys:
            entries = self.notes if key in self.notes else self.notetypes
            anchor = f"\n{json.dumps(key)}: {{"
            start = text.find(anchor) + 1
            if key not in entries or start == 0 or text.find(anchor, start) != -1:
                return None  # added, forgotten, or written by hand: render it all
            end = text.find("\n", start)
            if end == -1 or not _ROW_RE.match(text, start, end):
                return None  # not one entry a line: render it all
            comma = "," if text[end - 1] == "," else ""
            text = text[:start] + _row(key, entries[key]) + comma + text[end:]
        return text

    def _render_all(self) -> str:
        out = ["{", f'"deckbuild_lock": {LOCK_FORMAT},']
        written = self.rows()
        changed = set(self.changed)
        for table, entries, last in (
            ("notetypes", self.notetypes, False),
            ("notes", self.notes, True),
        ):
            out.append(f'"{table}": {{')
            rows = [
                written[k] if k in written and k not in changed else _row(k, v)
                for k, v in sorted(entries.items())
            ]
            out.append(",\n".join(rows))
            out.append("}" if last else "},")
        out.append("}")
        return "\n".join(line for line in out if line) + "\n"

    def rows(self) -> dict[str, str]:
        """Return the entry lines of the file as read, by key."""
        found = {}
        for line in self.text.split("\n"):
            match = _ROW_RE.match(line)
            if match:
                key = match.group(1)
                found[key[1:-1] if "\\" not in key else json.loads(key)] = match.group(0).rstrip(",")
        return found

    def pending(self) -> str | None:
        """Return the text to write back, or None when the file as read is already it."""
        if self.text and not self.changed:
            return None  # exactly as read
        text = self.render()
        return None if text == self.text else text

    def save(self) -> None:
        """Write the lock atomically, so that a killed build never leaves half a file."""
        text = self.pending()
        if text is not None:
            write_text(self.path, text)


def _row(key: str, entry: Entry) -> str:
    """Write an entry's line: its key as `json.dumps` writes it, its values sorted by name, unescaped."""
    if type(entry.mod) is not int:
        return _row_as_json(key, entry)
    # As `_row_as_json` writes it, field by field in the order of their names: a build writes
    # ten thousand lines, and json.dumps makes an encoder for each (three times the time).
    try:
        parts = [] if entry.deck is None else [f'"deck": {_text(entry.deck)}']
        if entry.fields is not None:
            parts.append(f'"fields": {_values(entry.fields)}')
        parts.append(f'"hash": {_text(entry.hash)}')
        if entry.key is not None:
            parts.append(f'"key": {_text(entry.key)}')
        if entry.kind is not None:
            parts.append(f'"kind": {_text(entry.kind)}')
        parts.append(f'"mod": {entry.mod}')
        if entry.notetype is not None:
            parts.append(f'"notetype": {_text(entry.notetype)}')
        if entry.origin is not None:
            parts.append(f'"origin": {_text(entry.origin)}')
        if entry.tags is not None:
            parts.append(f'"tags": {_values(entry.tags)}')
    except TypeError:  # a value that is not text where text belongs: json.dumps says how it is written
        return _row_as_json(key, entry)
    return f"{_key(key)}: {{{', '.join(parts)}}}"


def _row_as_json(key: str, entry: Entry) -> str:
    """Write an entry's line with `json.dumps`: the rule `_row` keeps."""
    return f"{json.dumps(key)}: {json.dumps(entry.to_json(), ensure_ascii=False, sort_keys=True)}"


# The string encoders `json.dumps` itself uses (keys ASCII-escaped, values not), and its list encoder.
_key = json.encoder.encode_basestring_ascii
_text = json.encoder.encode_basestring
_values = json.JSONEncoder(ensure_ascii=False).encode


def _damaged(path: Path, line: int, what: str, fix: str = " or fix that line") -> DeckbuildError:
    import shlex

    from deckbuild.sources import display_path

    # With HEAD, git restores a path a merge left unmerged too; the build then brings it up to date.
    # Run in the lock's own folder (-C), from wherever the build was run: in or out of the repository.
    shown = display_path(path)
    folder = shlex.quote(display_path(path.parent))
    return DeckbuildError(
        f"{shown}:{line}: cannot read the lock file: {what}; restore it from git "
        f"(git -C {folder} checkout HEAD -- {path.name}, then build){fix}"
    )


def _shape(value: Any) -> str:
    if value is None:
        return "null"
    names = {dict: "an object", list: "a list", str: "a string", bool: "true or false"}
    return names.get(type(value), "a number")


def _line_of(text: str, key: str) -> int:
    """Return the line of the row for `key` (one entry a line), or 1 for a file written by hand."""
    at = text.find(f"\n{json.dumps(key)}:")
    if at == -1:
        at = text.find(f"\n{json.dumps(key, ensure_ascii=False)}:")
    return 1 if at == -1 else text.count("\n", 0, at) + 2


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


def _entry(value: Any) -> Entry | str:
    """Make an entry of one row, or say what is wrong with it."""
    if type(value) is dict:
        # Most rows: a live card, with its hash, mod, file, and what identifies it on a page.
        digest, mod, origin = value.get("hash"), value.get("mod"), value.get("origin")
        if type(digest) is not str or not digest or type(mod) is not int or not 0 <= mod <= MAX_MOD:
            pass  # told below
        elif len(value) == 3 and type(origin) is str:
            return Entry(digest, mod, origin)  # a semicolon file's card: the commonest by far
        kind, key = value.get("kind"), value.get("key")
        if (
            type(digest) is str
            and digest
            and type(mod) is int
            and 0 <= mod <= MAX_MOD
            and len(value) == 2 + (origin is not None) + (kind is not None) + (key is not None)
            and (origin is None or type(origin) is str)
            and (kind is None or (type(kind) is str and kind in PAGE_KINDS))
            and (key is None or (type(key) is str and origin is not None and kind is not None))
        ):
            return Entry(digest, mod, origin, kind, key)
    return _checked(value)


def _checked(value: Any) -> Entry | str:
    """Make an entry of any row, checked key by key: the rule the quick paths above must keep."""
    if not isinstance(value, dict):
        return f"the entry is {_shape(value)}, not an object"
    unknown = sorted(value.keys() - {"hash", "mod", "fields", "tags", "notetype", *_TEXT_KEYS})
    if unknown:
        return f"unknown key {unknown[0]!r}"
    digest, mod = value.get("hash"), value.get("mod")
    if not isinstance(digest, str) or not digest:
        return '"hash" must be a non-empty string'
    if type(mod) is not int or not 0 <= mod <= MAX_MOD:
        return f'"mod" must be a time in whole seconds from 0 to {MAX_MOD}, not {json.dumps(mod)[:40]}'
    for name in _TEXT_KEYS:
        if value.get(name) is not None and not isinstance(value[name], str):
            return f'"{name}" must be a string'
    if value.get("kind") is not None and value["kind"] not in PAGE_KINDS:
        return f'"kind" must be one of {", ".join(sorted(PAGE_KINDS))}, not {json.dumps(value["kind"])[:40]}'
    if value.get("key") is not None and (value.get("origin") is None or value.get("kind") is None):
        return 'a page card\'s entry needs its "origin" and "kind" beside its "key"'
    fields, tags = value.get("fields"), value.get("tags")
    if fields is not None or tags is not None or value.get("deck") is not None:
        # A retired card: its last shipped note, whole.
        if not isinstance(value.get("deck"), str):
            return 'a retired card needs its "deck" as a string'
        widths = sorted({len(nt.fields) for nt in BY_LABEL.values()})
        if not (isinstance(fields, list) and len(fields) in widths and all(map(_is_text, fields))):
            shown = " or ".join(map(str, widths))
            return f'a retired card needs "fields": a list of {shown} strings'
        if not (isinstance(tags, list) and all(map(_is_text, tags))):
            return 'a retired card needs "tags": a list of strings'
    notetype = value.get("notetype")
    labels = sorted(label for label in BY_LABEL if label != "basic")
    # A note type kept from an imported deck is named by its Anki id (never for a retired card).
    kept = isinstance(notetype, str) and fields is None and re.fullmatch(r"anki:[1-9][0-9]{0,15}", notetype)
    if notetype is not None and notetype not in labels and not kept:
        return f'"notetype" must be one of {", ".join(labels)} (none for a basic card)'
    origin, kind, key, deck = (value.get(name) for name in _TEXT_KEYS)
    return Entry(digest, mod, origin, kind, key, deck, fields, tags, notetype)
