"""The lock file: what each note looked like when it was last built, and since when.

Anki's default import updates a note only when the package's mod time is newer than the
collection's. So each note's mod must move forward exactly when its content changes, and stay
put otherwise. The lock remembers, per GUID, a hash of the content and the mod it was given;
it is committed beside the sources so that every clone builds the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deckbuild.atomic import write_text
from deckbuild.errors import DeckbuildError
from deckbuild.sources import read_regular

LOCK_FORMAT = 1
# Up to this many changed entries, the file as read is patched line by line, not rewritten.
PATCH_MAX = 64
_ROW_RE = re.compile(r'("(?:[^"\\]|\\.)*"): \{.*\},?$')


@dataclass
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

    @classmethod
    def load(cls, path: Path) -> Lock:
        """Read the lock at `path`, or start an empty one if there is none."""
        lock = cls(path)
        if not path.exists():
            return lock
        try:
            text = read_regular(path, limit=None).decode("utf-8")  # a FIFO lock never hangs a build
            data = json.loads(text)
            if data.get("deckbuild_lock") != LOCK_FORMAT:
                raise ValueError(f"unknown lock format {data.get('deckbuild_lock')!r}")
            lock.notes = {k: Entry(**v) for k, v in data["notes"].items()}
            lock.notetypes = {k: Entry(**v) for k, v in data["notetypes"].items()}
            lock.text = text
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DeckbuildError(
                f"{path}:1: cannot read the lock file ({exc}); restore it from git"
            ) from None
        return lock

    def stamp(self, table: str, guid: str, digest: str, now: int, **extra: Any) -> int:
        """Return the mod for `guid` with content `digest`, moving it forward only on change."""
        entries = self.notes if table == "notes" else self.notetypes
        old = entries.get(guid)
        if old is not None and old.hash == digest:
            for name, value in extra.items():
                if getattr(old, name) != value:
                    setattr(old, name, value)
                    self.changed.append(guid)
            return old.mod
        # Strictly newer than before, even when the clock is behind or two builds share a second.
        mod = now if old is None else max(now, old.mod + 1)
        entries[guid] = Entry(digest, mod, **extra)
        self.changed.append(guid)
        return mod

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
            if end == -1:
                return None
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

    def save(self) -> None:
        """Write the lock atomically, so that a killed build never leaves half a file."""
        if self.text and not self.changed:
            return  # exactly as read
        text = self.render()
        if self.path.exists() and self.path.read_text(encoding="utf-8") == text:
            return
        write_text(self.path, text)


def _row(key: str, entry: Entry) -> str:
    return f"{json.dumps(key)}: {json.dumps(entry.to_json(), ensure_ascii=False, sort_keys=True)}"


@contextmanager
def exclusive(root: Path) -> Iterator[None]:
    """Hold a deck tree for one build, so that builds running at once take turns.

    Without it, two builds of different folders of one tree would each read the lock file and
    the last to save would drop the other's entries. The lock lives in the temporary folder,
    keyed by the tree's path, so nothing is written into the sources.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: builds are not serialised
        yield
        return
    key = hashlib.sha256(str(root.resolve()).encode("utf-8")).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"deckbuild-{key}.lock"
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
