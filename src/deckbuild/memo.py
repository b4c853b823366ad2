"""What a build remembers of each card between runs: its rendering, keyed by its exact source.

A card whose source text, file and context are exactly as in an earlier run, under the same
versions of deckbuild and its renderers, was validated and rendered then; the memo answers it
without running pydantic or Markdown again. Entries live in the cache, one group per source
file, so an edit stores and deletes only the cards it touched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deckbuild import cache

if TYPE_CHECKING:
    from deckbuild.readers import RawCard
    from deckbuild.sources import SourceFile
    from deckbuild.workers import Helpers

# Fields are stored joined, as Anki stores them; a field holding the separator is never stored.
_SEP = "\x1f"


@dataclass(slots=True)
class Rendered:
    """A card rendered: its note fields, content hash, problems, and the images it shows."""

    fields: list[str]
    digest: str
    problems: list[list[str]] = field(default_factory=list)
    # [content name, path relative to the deck root, size, mtime_ns] per image.
    media: list[list[Any]] = field(default_factory=list)


@dataclass(slots=True)
class Remembered:
    """What the memo holds for one card: its rendering and what the lock keeps beside it."""

    rendered: Rendered
    extra: dict[str, str | None]


def signature(raw: RawCard) -> str:
    """Return the exact text of a card as read: equal signatures render equally."""
    try:
        values = "\x1d".join(raw.data.values())
    except TypeError:
        values = "\x1d"  # not all text: told apart by the repr below
    if "\x1d" in values:
        # Readers give str, int, bool, None, lists and dicts, whose repr is exact.
        return repr((raw.kind, raw.data))
    # All text without the separator (most cards): the same, exactly, at a third of the cost.
    return raw.kind + "\x1e" + "\x1d".join(raw.data) + "\x1e" + values


def current_media(media: list[list[Any]], root: Path) -> dict[str, Path] | None:
    """Return the images a remembered card shows, or None when any of them changed since."""
    from deckbuild.render import media_name
    from deckbuild.sources import changed_stamp

    found = {}
    for name, relative, size, mtime in media:
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
        self._loaded: dict[str, dict[str, tuple[str, ...]]] = {}
        self._used: dict[str, set[str]] = {}
        self._new: dict[str, dict[str, tuple[str, ...]]] = {}
        self._groups: dict[Path, str] = {}
        self._origins: dict[Path, dict[str, str | None]] = {}

    @staticmethod
    def group(source: SourceFile) -> str:
        """Name the group of one source file: its place and everything it lends its cards."""
        context = [str(source.path), str(source.root), source.origin, source.deck, source.tag]
        return cache.key("memo", *context)

    def lookup(self, source: SourceFile, sig: str) -> Remembered | None:
        """Return what an earlier run made of this card, if anything."""
        if self.store.db is None:
            return None
        group = self._groups.get(source.path)
        if group is None:
            group = self._groups[source.path] = self.group(source)
            self._loaded[group] = self.store.memo_rows(group)
            self._used[group] = set()
        row = self._loaded[group].get(sig)
        if row is None:
            return None
        self._used[group].add(sig)
        # Shipped without the sanitizer: only a row this cache's key signed is used; any other
        # (damaged, planted, or of another card) is rendered again and replaced.
        *content, seal = row
        if not self.store.sealed(seal, "memo", group, *content):
            return None
        if (decoded := cache.decode_memo(tuple(content))) is None:
            return None  # a damaged row: rendered again, and replaced
        fields, digest, problems, media, extra = decoded
        origin = self._origins.get(source.path)
        if origin is None:
            # Shared by the cards of a file: nothing writes to it.
            origin = self._origins[source.path] = {"origin": source.origin}
        return Remembered(Rendered(fields, digest, problems, media), {**origin, **extra} if extra else origin)

    def remember(
        self, source: SourceFile, sig: str, rendered: Rendered, extra: dict[str, str | None]
    ) -> None:
        """Keep a freshly rendered card for the next run."""
        if self.store.db is None or any(_SEP in f for f in rendered.fields):
            return
        rest = {k: v for k, v in extra.items() if k != "origin"}
        content = (
            sig,
            _SEP.join(rendered.fields),
            rendered.digest,
            json.dumps(rest, ensure_ascii=False, sort_keys=True) if rest else "",
            json.dumps(rendered.problems, ensure_ascii=False) if rendered.problems else "",
            json.dumps(rendered.media, ensure_ascii=False) if rendered.media else "",
        )
        if any("\x00" in part for part in content):
            return  # the seal joins parts with NUL; such a card is simply rendered every time
        group = self._groups.get(source.path) or self.group(source)
        self._new.setdefault(group, {})[sig] = (*content, self.store.seal("memo", group, *content))
        self._used.setdefault(group, set()).add(sig)

    def save(self, helping: Helpers | None = None) -> None:
        """Store the new cards and forget the ones no source holds any more.

        A free helper does the writing while this process goes on; without one, a thread does.
        Either way it is finished when the helpers, and the cache, are closed.
        """
        changes = []
        for group in sorted(self._used.keys() | self._new.keys()):
            stale = sorted(self._loaded.get(group, {}).keys() - self._used.get(group, set()))
            new = list(self._new.get(group, {}).values())
            if stale or new:
                changes.append((group, new, stale))
        self._new.clear()
        if not changes or self.store.path is None or self.store.db is None:
            return
        if helping is not None and helping.free:
            helping.submit(cache.Cache.write_memo, self.store.path, changes)
        else:
            self.store.update_memo(changes)
