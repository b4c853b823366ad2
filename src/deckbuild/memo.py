"""What a build remembers of each card between runs: its rendering, keyed by its exact source.

A card whose source text, file and context are exactly as in an earlier run, under the same
versions of deckbuild and its renderers, was validated and rendered then; the memo answers it
without running pydantic or Markdown again. Entries live in the cache, one row per source file
holding all its cards, signed as a whole, and a signed row per card an edit changed since: a
rebuild reads and checks a file's memo in one go, a file whose cards all read as before is not
written again, and an edit writes a row or two, not the whole file's memo.
"""

from __future__ import annotations

import marshal
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deckbuild import cache

if TYPE_CHECKING:
    from deckbuild.readers import RawCard
    from deckbuild.sources import SourceFile
    from deckbuild.workers import Helpers

# How many edit rows a file's memo gathers before it is written whole again (or one per
# EDIT_SHARE of its cards, when that is more): a lookup reads them all, a rewrite costs the file.
MAX_EDIT_ROWS = 64
EDIT_SHARE = 8
# Fields are stored joined, as Anki stores them; a field holding the separator is never stored.
_SEP = "\x1f"
# The size (and time) of an image entry ["", "path as named\x00file it led to", LINKED, LINKED]:
# an image shown that the path as named reached through a link or a `..` (one left out has -1).
LINKED = -2


@dataclass(slots=True)
class Rendered:
    """A card rendered: its note fields, content hash, problems, and the images it shows."""

    fields: list[str]
    digest: str
    problems: list[list[str]] = field(default_factory=list)
    # [content name, path relative to the deck root, size, mtime_ns] per image.
    media: list[list[Any]] = field(default_factory=list)


def signature(raw: RawCard) -> str:
    """Return the exact text of a card as read: equal signatures render equally."""
    return signature_of(raw.kind, raw.data)


def signature_of(kind: str, data: dict[str, Any]) -> str:
    """Return the signature of a card of this kind with these fields (see `signature`)."""
    try:
        values = "\x1d".join(data.values())
    except TypeError:
        values = None  # not all text: told apart by the repr below
    # Only the separators the join put in: no value holds one, so the text splits back one way.
    if values is None or values.count("\x1d") != len(data) - 1:
        # Readers give str, int, bool, None, lists and dicts, whose repr is exact.
        return repr((kind, data))
    # All text without the separator (most cards): the same, exactly, at a third of the cost.
    # Kinds and field names are the readers' own words: no separator, no "(" to start with.
    return kind + "\x1e" + "\x1d".join(data) + "\x1e" + values


def pack(rendered: Rendered, extra: dict[str, str | None]) -> tuple[Any, bool]:
    """Encode a rendered card as the memo stores it; tell whether the memo may store it.

    Runs where the card was rendered (in a helper, for most): the card travels back to the
    process that keeps it as these bytes alone, and `unpack` makes its rendering of them.
    """
    rest = {k: v for k, v in extra.items() if k != "origin"}
    value = (rendered.fields, rendered.digest, rendered.problems, rendered.media, rest)
    encoded = cache.encode_memo(value)
    if encoded is None:
        return value, False
    # One character: it cannot straddle two fields.
    return encoded, _SEP not in "".join(rendered.fields)


def unpack(packed: Any) -> Rendered:
    """Return the rendering `pack` encoded."""
    fields, digest, problems, media, _ = marshal.loads(packed) if type(packed) is bytes else packed
    return Rendered(fields, digest, problems, media)


def current_media(media: list[list[Any]], root: Path) -> dict[str, Path] | None:
    """Return the images a remembered card shows, or None when any of them changed since."""
    from deckbuild.render import media_name
    from deckbuild.sources import changed_stamp

    found = {}
    for name, relative, size, mtime in media:
        if not name:
            # A path as named that still leads to the file it led to (see LINKED) holds.
            named, _, target = relative.partition("\x00")
            if size == LINKED and target and os.path.realpath(named) == target:
                continue
            return None  # an image left out of the card (not found, too large), or led elsewhere now
        path = root / relative
        try:
            stat = path.stat()
            if (stat.st_size, changed_stamp(stat)) != (size, mtime) and media_name(path) != name:
                return None
        except OSError:  # gone, or no longer a regular file
            return None
        found[name] = path
    return found


class Memo:
    """The remembered cards of every source file a run reads, and what the run adds to them."""

    def __init__(self, store: cache.Cache) -> None:
        self.store = store
        # Per group: its entries as stored (encoded), the signatures this run read, its new entries.
        self._loaded: dict[str, dict[str, bytes]] = {}
        self._edits: dict[str, int] = {}
        self._used: dict[str, set[str]] = {}
        self._new: dict[str, dict[str, bytes]] = {}
        self._groups: dict[Path, str] = {}
        # Source files kept whole, by group (`keep_file`).
        self._files: dict[str, bytes] = {}
        self._saved = False

    @staticmethod
    def group(source: SourceFile) -> str:
        """Name the group of one source file: its place and everything it lends its cards."""
        context = [str(source.path), str(source.root), source.origin, source.deck, source.tag]
        return cache.key("memo", *context)

    def _group(self, source: SourceFile) -> str:
        """Return a source file's group, reading its entries the first time it is asked for."""
        group = self._read(source)
        if group not in self._used:
            self._used[group] = set()
        return group

    def _read(self, source: SourceFile) -> str:
        group = self._groups.get(source.path)
        if group is None:
            group = self._groups[source.path] = self.group(source)
            self._loaded[group], self._edits[group] = self.store.memo_cards(group)
        return group

    def holds(self, source: SourceFile) -> bool:
        """Tell whether the memo holds any card of a source file; `save` takes no notice of asking."""
        return self.store.db is not None and bool(self._loaded[self._read(source)])

    def table(self, source: SourceFile) -> tuple[dict[str, bytes], set[str], dict[str, str | None]]:
        """Return a file's entries as stored by signature, where to note those read, and its origin.

        An entry is decoded with `cache.decode_memo` (a damaged one is a miss); one taken is added
        to the set, so that `save` keeps it. Nothing writes to the origin: the cards of a file share it.
        """
        if self.store.db is None:
            return {}, set(), {"origin": source.origin}
        group = self._group(source)
        return self._loaded[group], self._used[group], {"origin": source.origin}

    def remember(
        self, source: SourceFile, sig: str, rendered: Rendered, extra: dict[str, str | None]
    ) -> None:
        """Keep a freshly rendered card for the next run."""
        packed, keeps = pack(rendered, extra)
        if keeps:
            self.keep(source, {sig: packed})

    @property
    def keeps(self) -> bool:
        """Tell whether this memo stores what is rendered (not so with --no-cache)."""
        return self.store.db is not None

    def keep(self, source: SourceFile, entries: dict[str, bytes | None]) -> None:
        """Keep freshly rendered cards of one file, by signature, as `pack` encoded them."""
        kept = {sig: encoded for sig, encoded in entries.items() if encoded is not None}
        if self.store.db is None or not kept:
            return
        group = self._group(source)
        self._new.setdefault(group, {}).update(kept)
        self._used[group].update(kept)

    @staticmethod
    def file_group(path: Path) -> str:
        """Name the group a source file is kept whole in (deckbuild.patch reads it back)."""
        return cache.key("file", str(path))

    def keep_file(self, path: Path, data: bytes) -> None:
        """Keep a source file's bytes as read, for the next build to tell its edited rows by."""
        if self.store.db is not None:
            self._files[self.file_group(path)] = data

    def save(self, helping: Helpers | None = None) -> None:
        """Store what changed in each group: as edit rows while they are few, else the group whole.

        A free helper does the writing while this process goes on; without one, a thread does.
        Either way it is finished when the helpers, and the cache, are closed. Only the first
        call of a run stores anything: what the run read is stored once.
        """
        if self._saved:
            return
        self._saved = True
        changes: list[cache.MemoChange] = []
        for group in sorted(self._used):
            loaded, used, new = self._loaded[group], self._used[group], self._new.get(group, {})
            if not new and len(used) == len(loaded):
                continue  # every card as it was: the group is stored already
            dropped = [sig for sig in loaded if sig not in used]
            edits = self._edits[group] + len(new) + len(dropped)
            if loaded and edits <= max(MAX_EDIT_ROWS, len(loaded) // EDIT_SHARE):
                # A few cards changed: their rows are added, the file's row stays as it is.
                changes.append((group, None, new, dropped))
            else:
                whole = {sig: entry for sig, entry in loaded.items() if sig in used}
                whole.update(new)
                # Encoded here: the helper given it only seals and stores it.
                changes.append((group, marshal.dumps(whole) if whole else b"", {}, []))
        self._new.clear()
        files = sorted(self._files.items())
        if not (changes or files) or self.store.path is None or self.store.db is None:
            return
        if helping is not None and helping.free:
            # The large bytes go to the helper as they are, not copied into the call's pickle.
            shipped = [(g, whole and pickle.PickleBuffer(whole), new, out) for g, whole, new, out in changes]
            whole_files = [(group, pickle.PickleBuffer(data)) for group, data in files]
            args = (self.store.path, self.store.secret, shipped, self.store.timeout, whole_files)
            self.store.written(helping.submit(cache.Cache.write_memo, *args))
        else:
            self.store.update_memo(changes, files)
