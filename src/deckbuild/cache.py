"""A cache of rendered cards and written packages, so that a rebuild does only what changed.

Entries are keyed by content and by the versions of deckbuild and of every renderer, so an
edit or an upgrade can never be answered with stale output. The cache is one SQLite file in
DECKBUILD_CACHE_DIR (default: $XDG_CACHE_HOME/deckbuild or ~/.cache/deckbuild); it may be
deleted at any time, and SQLite's own locking keeps builds running at once from corrupting it.

Nothing read back is trusted: every row carries a keyed hash (BLAKE2b) under a secret kept
beside the database, readable by its owner only, and a row that does not match is not used. A
damaged cache, or one planted by someone without that key, can only cost a build its time.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import marshal
import os
import sqlite3
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from deckbuild.notetype import NOTE_TYPES

CACHE_FORMAT = 7
# SQLite's largest page. A file's memo row is megabytes, written and read as one blob: in pages
# sixteen times fewer than the default's, a 10,000-card file's row is stored in 6-15 ms instead
# of 30-40, and the write-ahead log reaches the size at which SQLite folds it into the database
# (1,000 pages, with a flush to disk) a dozen times less often.
PAGE_SIZE = 65536
SECRET = "secret"
_SECRET_SIZE = 32
RENDERERS = ("markdown", "pygments", "nh3", "latex2mathml", "webcolors", "genanki")
_CHUNK = 500
# How long, in seconds, a step waits for the cache while another process holds it (another build
# storing its rows takes a moment). Past that the step goes on without the cache: a process that
# holds it longer (a build stopped with Ctrl-Z, a tool left in a transaction) never stalls a build.
BUSY_TIMEOUT = 2.0
# SQLite's result codes for a database another connection holds (the low byte of extended codes).
_HELD = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED


def held(exc: BaseException) -> bool:
    """Tell whether an SQLite error is the database being held by another connection."""
    return (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF in _HELD


def cache_dir() -> Path:
    """Return where the cache lives."""
    if configured := os.environ.get("DECKBUILD_CACHE_DIR"):
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "deckbuild"


@lru_cache(maxsize=1)
def versions() -> str:
    """Name every version that can change what a card renders to or how a package is written."""
    from deckbuild import __version__

    # The code itself, too: an edited checkout between releases must not meet its old output.
    # os.walk, not Path.rglob: rglob's first call alone costs a few milliseconds of every build.
    code = hashlib.sha256()
    files: list[str] = []
    for folder, _, names in os.walk(os.path.dirname(__file__)):
        files += [os.path.join(folder, n) for n in names if n.endswith(".py")]
    for path in sorted(files):
        with open(path, "rb") as file:
            code.update(file.read())
    found = [f"deckbuild={__version__}+{code.hexdigest()[:16]}", f"format={CACHE_FORMAT}"]
    found.append("python=" + ".".join(map(str, sys.version_info[:3])))
    installed = _installed()
    found += [f"{name}={installed.get(name, '?')}" for name in RENDERERS]
    return ";".join(found)


def _installed() -> dict[str, str]:
    """Read installed versions off the .dist-info folders on sys.path, first found wins.

    importlib.metadata does the same but costs more start-up than a whole cached rebuild can spare.
    """
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info") and "-" in name:
                project, _, release = name[: -len(".dist-info")].partition("-")
                found.setdefault(project.lower().replace("-", "_").replace(".", "_"), release)
    return found


# What an entry must look like to be used. A type is a value of that type; [shape] a list of
# such values; [a, b, …] a list of exactly those; {str: shape} a mapping; {"k": shape, …} an
# object with at least those keys; a function, a test. Anything else is a miss: a damaged
# cache costs a rebuild, never a traceback.
Shape = Any


def _base64(value: Any) -> bool:
    import base64  # only a kept empty collection is checked with it: not a build nothing changed
    import binascii

    try:
        base64.b64decode(value, validate=True)
    except (TypeError, ValueError, binascii.Error):
        return False
    return isinstance(value, str)


BUILD_RECORD: Shape = {
    "packages": [[str, str]],
    "inputs": [[str, int, int]],
    "missing": [str],
    "linked": [[str, str]],
    "problems": [[str, int, str, str]],
    "notes": [str],
    "counts": {str: int},
}
PACKAGE_RECORD: Shape = {"sha256": str}
# "req": genanki's card rules per note type id (none for a cloze note type).
SHELL_RECORD: Shape = {"db": _base64, "req": {str: [[int, str, [int]]]}}


def conforms(value: Any, shape: Shape) -> bool:
    """Tell whether a decoded entry has the shape its reader relies on."""
    if isinstance(shape, type):
        return isinstance(value, shape) and not (shape is int and isinstance(value, bool))
    if isinstance(shape, list):
        if not isinstance(value, list):
            return False
        if len(shape) == 1:
            return all(conforms(v, shape[0]) for v in value)
        return len(value) == len(shape) and all(conforms(v, s) for v, s in zip(value, shape, strict=True))
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return False
        if list(shape) == [str]:
            return all(isinstance(k, str) and conforms(v, shape[str]) for k, v in value.items())
        return all(k in value and conforms(value[k], s) for k, s in shape.items())
    test: Callable[[Any], bool] = shape
    return test(value)


# A memo entry decoded: fields, content hash, problems, images shown, what the lock keeps.
MemoEntry = tuple[list[str], str, list[list[str]], list[list[Any]], dict[str, str | None]]
_PROBLEMS: Shape = [[str, str]]
_MEDIA: Shape = [[str, str, int, int]]
# A note has as many fields as one of the note types.
MEMO_WIDTHS = frozenset(len(nt.fields) for nt in NOTE_TYPES.values())


# A group's memo to store: the group; its one row, all its cards as marshal wrote them (b"":
# none left, the group goes), or None to add to that row instead; then the entries to add and
# the signatures it no longer holds.
MemoChange = tuple[str, bytes | None, dict[str, bytes], list[str]]


def _memo_cards(row: bytes) -> dict[str, bytes]:
    """Decode a memo row whose seal was checked: its entries by signature; empty when damaged."""
    try:
        # Signed by this cache's key, so written by deckbuild itself: marshal's format changes
        # only with Python's version, which is part of every group's key.
        found = marshal.loads(row)
    except (ValueError, EOFError, TypeError):
        return {}
    return found if type(found) is dict else {}


# Signed apart from whole rows, so that neither kind of row can pass for the other.
_EDIT = b"memo-edit"
# And a source file kept whole, apart from both.
_FILE = b"file"


def _edit_label(group: str, sig: str) -> str:
    # A group is hexadecimal, of one length: the signature after it cannot be read another way.
    return f"{group}\x00{sig}"


def _edit_body(entry: Any) -> Any:
    # A card gone (NULL) is signed as such: an entry is never empty, so b"" cannot be one.
    if entry is None:
        return b""
    return entry if type(entry) is bytes and entry else None


def _text_or_none(value: Any) -> bool:
    return value is None or type(value) is str


def encode_memo(entry: MemoEntry) -> bytes | None:
    """Encode one card's memo entry; None when it holds something marshal cannot store as it is."""
    try:
        return marshal.dumps(entry)
    except ValueError:  # a subclass of str, list or dict, say: not stored, rendered every time
        return None


def decode_memo(data: Any) -> MemoEntry | None:
    """Decode one card's entry from `memo_cards`; None when it is damaged, which is a cache miss."""
    # Every unchanged card comes through here on a rebuild: the common shapes are checked inline,
    # and what is empty (most cards' problems, images and lock extras) is not looked into.
    try:
        fields, digest, found, shown, rest = marshal.loads(data)
        if (
            type(fields) is not list
            or type(digest) is not str
            or type(found) is not list
            or type(shown) is not list
            or type(rest) is not dict
            or len(fields) not in MEMO_WIDTHS
        ):
            return None
        "".join(fields)  # raises TypeError unless every field is text
    except (TypeError, ValueError, EOFError, AttributeError, RecursionError):
        return None
    # What the lock keeps: text keys, text or null values.
    if rest and not all(type(k) is str and _text_or_none(v) for k, v in rest.items()):
        return None
    if (found and not conforms(found, _PROBLEMS)) or (shown and not conforms(shown, _MEDIA)):
        return None
    return fields, digest, found, shown, rest


def key(*parts: str) -> str:
    """Hash the parts of a cache key, with the versions, into one key."""
    digest = hashlib.sha256(versions().encode("utf-8"))
    for part in parts:
        # surrogatepass: a file name that is not UTF-8 is still a key (its cards are refused later).
        digest.update(b"\x00" + part.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def secret(directory: Path) -> bytes:
    """Return the cache's key, made on first use; a key others could read or write is replaced."""
    path = directory / SECRET
    for _ in range(3):
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            _make_secret(path)
            continue
        with os.fdopen(fd, "rb") as file:
            stat = os.fstat(file.fileno())
            data = file.read(_SECRET_SIZE + 1)
        private = os.name == "nt" or (stat.st_mode & 0o077 == 0 and stat.st_uid == os.getuid())
        if private and len(data) == _SECRET_SIZE:
            return data
        path.unlink()
    raise OSError(f"{path}: no private key for the cache")


def _make_secret(path: Path) -> None:
    """Write a new key where none is; of two builds at once, the first one's is kept."""
    draft = path.with_name(f".{SECRET}-{os.getpid()}-{threading.get_ident()}")
    draft.unlink(missing_ok=True)  # left by a process that died, whose id this one now has
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(os.urandom(_SECRET_SIZE))
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
    finally:
        draft.unlink()


def private(path: Path) -> None:
    """Make the database at `path` (created empty if need be) and its journals readable by its owner alone.

    Created before SQLite opens it, which gives the journals it makes the database's own mode; one
    an earlier version made readable by others is made private by its path (closing a descriptor
    of it would let go of the locks any connection of this process holds on it).
    """
    if os.name == "nt":
        return
    for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            found = os.stat(name)
        except FileNotFoundError:
            if name == path:
                with contextlib.suppress(FileExistsError):
                    os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            continue
        if found.st_mode & 0o077 and found.st_uid == os.getuid():
            os.chmod(name, found.st_mode & 0o7700)


class Cache:
    """The cache, or a stand-in that remembers nothing (--no-cache, or an unusable cache)."""

    def __init__(self, directory: Path | None) -> None:
        self.db: sqlite3.Connection | None = None
        self.path: Path | None = None
        self.secret = b""
        self._saving: threading.Thread | None = None
        # Whether a step found the cache held by another process and went on without it; and
        # what else may find out later (the memo written elsewhere: a thread's or a helper's answer).
        self.busy = False
        self._written: list[Callable[[], Any]] = []
        if directory is None:
            return
        try:
            # The cache holds every card's rendering and each semicolon source whole: only its
            # owner may read it, as only its owner may read the sources' own folders, perhaps.
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.secret = secret(directory)
            self.path = directory / "cache.sqlite"
            private(self.path)
            self.db = self._connect(self.path)
            self._create(self.db)
        except (OSError, sqlite3.Error) as exc:
            # A cache that cannot be opened only costs time; the build itself must not fail.
            if self.db is not None:
                self.db.close()
            self.db = None
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        """Note a step that found the cache held, so that no later step waits for it again."""
        if not held(exc):
            return
        self.busy = True
        if self.db is not None:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("PRAGMA busy_timeout = 0")

    def note(self) -> str | None:
        """Say that the build went on without the cache for some steps, and what to do; else None."""
        self.wait()
        if not self.busy and not any(answer() is True for answer in self._written):
            return None
        return (
            f"note: the cache {self.path} is held by another process; this run went on without it "
            "(same result; the next run may take longer); if no other deckbuild is running, end the "
            "one holding it (a build stopped with Ctrl-Z: 'fg' or kill it) or delete the file"
        )

    @staticmethod
    def _create(db: sqlite3.Connection) -> None:
        """Make the tables, replacing those of an older format (rows without a seal)."""
        if db.execute("PRAGMA user_version").fetchone()[0] == CACHE_FORMAT:
            return
        db.execute("BEGIN IMMEDIATE")
        if db.execute("PRAGMA user_version").fetchone()[0] != CACHE_FORMAT:
            db.execute("DROP TABLE IF EXISTS entries")
            db.execute("DROP TABLE IF EXISTS memo")
            db.execute("DROP TABLE IF EXISTS memo_delta")
            db.execute("DROP TABLE IF EXISTS files")
            db.execute("CREATE TABLE entries (key TEXT PRIMARY KEY, value TEXT NOT NULL, seal TEXT NOT NULL)")
            # One row per source file: its cards' entries by signature, signed as a whole.
            db.execute("CREATE TABLE memo (grp TEXT PRIMARY KEY, cards BLOB NOT NULL, seal TEXT NOT NULL)")
            # What edits changed since: a card's new entry, or NULL for a card the file no longer
            # holds, each signed. A few edits write a few rows, not the file's whole memo again.
            db.execute(
                "CREATE TABLE memo_delta (grp TEXT NOT NULL, sig TEXT NOT NULL, entry BLOB, "
                "seal TEXT NOT NULL, PRIMARY KEY (grp, sig)) WITHOUT ROWID"
            )
            # Each semicolon source as the last build read it, whole and signed (deckbuild.patch).
            db.execute("CREATE TABLE files (grp TEXT PRIMARY KEY, data BLOB NOT NULL, seal TEXT NOT NULL)")
            db.execute(f"PRAGMA user_version = {CACHE_FORMAT}")
        db.execute("COMMIT")
        if db.execute("PRAGMA page_size").fetchone()[0] != PAGE_SIZE:
            # A cache of an older format, empty now: made over in the larger pages, unless another
            # process has it open (it then keeps its pages, and works as well, only slower).
            with contextlib.suppress(sqlite3.Error):
                db.execute("PRAGMA journal_mode=DELETE")
                db.execute(f"PRAGMA page_size = {PAGE_SIZE}")
                db.execute("VACUUM")
            db.execute("PRAGMA journal_mode=WAL")

    def seal(self, *parts: str) -> str:
        """Sign a row with the cache's key: only this user's builds can make a row that passes.

        Parts never hold NUL (JSON escapes it; memo rows holding one are not stored), so
        joining them with NUL can be split back only one way.
        """
        text = "\x00".join(parts).encode("utf-8", "surrogatepass")
        return hashlib.blake2b(text, key=self.secret, digest_size=16).hexdigest()

    @staticmethod
    def seal_cards(secret: bytes, label: str, body: bytes, kind: bytes = b"memo") -> str:
        """Sign a group's memo row (or, of kind _EDIT, one card's edit row) with the cache's key.

        HMAC-SHA256, not keyed BLAKE2b: a rebuild checks megabytes of rows, and SHA-256 runs in
        the processor's own instructions where it has them (twice as fast here; the same length).
        """
        digest = hmac.new(secret, kind + b"\x00" + label.encode("utf-8", "surrogatepass") + b"\x00", "sha256")
        digest.update(body)
        return digest.hexdigest()[:32]

    def sealed(self, seal: str, *parts: str) -> bool:
        """Tell whether a row read back is one this cache's key signed."""
        # A damaged row can hold anything SQLite stores: a blob, a number, a non-ASCII seal.
        if type(seal) is not str or not seal.isascii() or not all(type(p) is str for p in parts):
            return False
        return hmac.compare_digest(seal, self.seal(*parts))

    def get_many(self, shapes: Mapping[str, Shape]) -> dict[str, Any]:
        """Return the entries that exist among the keys of `shapes`, each of its shape."""
        if self.db is None:
            return {}
        wanted = list(shapes)
        found: dict[str, Any] = {}
        try:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                for k, value, seal in self.db.execute(
                    f"SELECT key, value, seal FROM entries WHERE key IN ({marks})", chunk
                ):
                    if not self.sealed(seal, "entry", k, value):
                        continue
                    with contextlib.suppress(TypeError, ValueError, RecursionError):
                        if conforms(decoded := json.loads(value), shapes[k]):
                            found[k] = decoded
        except sqlite3.Error as exc:
            self._failed(exc)
            return {}
        return found

    def put_many(self, items: dict[str, Any]) -> None:
        """Store entries; a failure to store only means the next build does the work again."""
        if self.db is None or not items:
            return
        texts = [(k, json.dumps(v, ensure_ascii=False)) for k, v in items.items()]
        rows = [(k, text, self.seal("entry", k, text)) for k, text in texts]
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("INSERT OR REPLACE INTO entries (key, value, seal) VALUES (?, ?, ?)", rows)
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")
            self._failed(exc)

    def memo_cards(self, group: str) -> tuple[dict[str, bytes], int]:
        """Return the remembered cards of one group (one source file), and how many edit rows it has.

        The cards are entries by signature. Only rows this cache's key signed are decoded at
        all; any other is left out, a miss.
        """
        db = self.db
        if db is None:
            return {}, 0
        try:
            # The row and its edits from one snapshot. The row's bytes are read as a blob: SQLite
            # then copies them from the file at once, in a third of the time a SELECT takes.
            owned = not db.in_transaction
            if owned:
                db.execute("BEGIN")
            try:
                row = None
                found = db.execute("SELECT rowid, seal, typeof(cards) FROM memo WHERE grp = ?", (group,))
                for rowid, seal, kind in found.fetchall():
                    if kind == "blob":  # any other was never written by a build: left out
                        with db.blobopen("memo", "cards", rowid, readonly=True) as blob:
                            row = (blob.read(), seal)
                edits = db.execute(
                    "SELECT sig, entry, seal FROM memo_delta WHERE grp = ?", (group,)
                ).fetchall()
            finally:
                if owned:
                    db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._failed(exc)
            return {}, 0
        cards: dict[str, bytes] = {}
        if row is not None and self._signed(row[1], group, row[0]):
            cards = _memo_cards(row[0])
        for sig, entry, seal in edits:
            # An edit row left out only leaves the card's older entry, made from the same text.
            if type(sig) is str and self._signed(seal, _edit_label(group, sig), _edit_body(entry), _EDIT):
                if entry is None:
                    cards.pop(sig, None)
                else:
                    cards[sig] = entry
        return cards, len(edits)

    def stored_file(self, group: str) -> bytes | None:
        """Return a source file's bytes as `Memo.keep_file` kept them, if this cache's key signed them."""
        db = self.db
        if db is None:
            return None
        try:
            found = db.execute("SELECT rowid, seal, typeof(data) FROM files WHERE grp = ?", (group,))
            for rowid, seal, kind in found.fetchall():
                if kind == "blob":
                    with db.blobopen("files", "data", rowid, readonly=True) as blob:
                        data = blob.read()
                    return data if self._signed(seal, group, data, _FILE) else None
        except sqlite3.Error as exc:
            self._failed(exc)
        return None

    def _signed(self, seal: Any, label: str, body: Any, kind: bytes = b"memo") -> bool:
        # A damaged row can hold anything SQLite stores: text, a number, a non-ASCII seal.
        if type(body) is not bytes or type(seal) is not str or not seal.isascii():
            return False
        return hmac.compare_digest(seal, self.seal_cards(self.secret, label, body, kind))

    @staticmethod
    def _connect(path: Path, timeout: float | None = None) -> sqlite3.Connection:
        # The module's value at the time of the call: a test sets it small.
        db = sqlite3.connect(path, timeout=BUSY_TIMEOUT if timeout is None else timeout, isolation_level=None)
        db.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # for a new file: one made keeps its own
        db.execute("PRAGMA journal_mode=WAL")
        # Safe from corruption in WAL mode; a crash may only lose the last entries of a cache.
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def update_memo(self, changes: list[MemoChange], files: Sequence[tuple[str, bytes]] = ()) -> None:
        """Store memo changes (edit rows, groups written whole or dropped), while the build goes on.

        The writing happens on its own connection in a thread (SQLite and the hash let go of the
        GIL) and is finished by `close`.
        """
        if self.db is None or self.path is None or not (changes or files):
            return
        self.wait()
        answer: list[bool] = []
        args = (self.path, self.secret, changes, self.timeout, files)
        saving = threading.Thread(target=lambda: answer.append(self.write_memo(*args)))
        saving.start()  # before it is kept: one that could not start is never waited for
        self._saving = saving
        self.written(lambda: bool(answer and answer[0]))

    @property
    def timeout(self) -> float:
        """Return how long the next step may wait for the cache: not at all once it was found held."""
        return 0.0 if self.busy else BUSY_TIMEOUT

    def written(self, answer: Callable[[], Any]) -> None:
        """Take the answer of a memo write done elsewhere (True: the cache was held), read by `note`."""
        self._written.append(answer)

    @classmethod
    def write_memo(
        cls,
        path: Path,
        secret: bytes,
        changes: list[MemoChange],
        timeout: float | None = None,
        files: Sequence[tuple[str, bytes]] = (),
    ) -> bool:
        """Apply memo changes, and keep source files whole, on a connection of its own.

        Run from a thread or another process. Return whether the cache was held by another
        process, so that nothing was stored.
        """
        kept = [(group, data, cls.seal_cards(secret, group, data, _FILE)) for group, data in files]
        rows, emptied, edits = [], [], []
        for group, whole, new, dropped in changes:
            if whole is None:
                for sig, entry in [*new.items(), *((sig, None) for sig in dropped)]:
                    seal = cls.seal_cards(secret, _edit_label(group, sig), _edit_body(entry), _EDIT)
                    edits.append((group, sig, entry, seal))
            elif whole:
                rows.append((group, whole, cls.seal_cards(secret, group, whole)))
            else:
                emptied.append((group,))
        try:
            db = cls._connect(path, timeout)
        except sqlite3.Error as exc:
            return held(exc)
        try:
            db.execute("BEGIN IMMEDIATE")
            # A group written whole holds its edits: its edit rows go.
            db.executemany("DELETE FROM memo_delta WHERE grp = ?", [*emptied, *((g,) for g, _, _ in rows)])
            db.executemany("DELETE FROM memo WHERE grp = ?", emptied)
            db.executemany("INSERT OR REPLACE INTO memo (grp, cards, seal) VALUES (?, ?, ?)", rows)
            db.executemany("INSERT OR REPLACE INTO memo_delta VALUES (?, ?, ?, ?)", edits)
            db.executemany("INSERT OR REPLACE INTO files (grp, data, seal) VALUES (?, ?, ?)", kept)
            db.execute("COMMIT")
            if rows or kept:
                # A file's memo row is folded into the database here, beside the build, not by
                # the build's own connection as the last to close (12 ms of its end for 5 MB).
                # Stored either way: whatever stops it leaves that to the next connection.
                with contextlib.suppress(sqlite3.Error):
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            return held(exc)
        finally:
            db.close()
        return False

    def wait(self) -> None:
        """Finish storing what `update_memo` was given."""
        if self._saving is not None:
            self._saving.join()
            self._saving = None

    def close(self) -> None:
        self.wait()
        if self.db is not None:
            self.db.close()
            self.db = None
