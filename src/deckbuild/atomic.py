"""Write files so that a reader sees the old content or the new, never half of either.

A build changes several files at once (one package per deck, and the lock), in different
folders. Each is written to a temporary file beside its target first; then a journal naming
every rename is written into each of those folders, the renames are done, and the journal is
deleted. A build killed at any point leaves either the old files (no complete journal: the
temporary files are swept away) or a journal from which the next build completes every rename.
Runs at once take turns: each holds the folders it reads and writes (`exclusive`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from deckbuild.errors import DeckbuildError
from deckbuild.resources import ran_out

# shutil and signal are imported where they are used: a build that nothing changed
# runs only `recover` from here, and importing them would cost it more than that does.

# Every temporary file or folder deckbuild makes beside its output starts with this.
TEMP_PREFIX = ".deckbuild-"
JOURNAL_NAME = ".deckbuild.journal"
JOURNAL_FORMAT = 1
# Tests name a point here to have the process kill itself there, as a crash would.
KILL_AT = "DECKBUILD_TEST_KILL_AT"


def checkpoint(name: str) -> None:
    """Die at once, without cleaning up, when a test asked for it at this point."""
    if os.environ.get(KILL_AT) == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def cannot_write(path: Path, exc: Exception) -> Exception:
    """Turn a failed write (OSError, or SQLite's own error) into a message that says what to do.

    Running out of file descriptors or memory is not the folder's fault: that error is given back
    as it is, for the command line to say what ran out.
    """
    from deckbuild.sources import display_path

    if ran_out(exc):
        return exc
    code = getattr(exc, "errno", None)
    if code in (errno.ENOSPC, errno.EDQUOT) or "full" in str(exc):
        todo = "free some space on that disk and run again"
    elif code in (errno.EEXIST, errno.ENOTDIR):
        todo = "a file stands where a folder is needed: choose another output folder"
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS) or "readonly" in str(exc):
        todo = "make the folder writable (or choose another one) and run again"
    else:
        todo = "check the folder and run again"
    reason = getattr(exc, "strerror", None) or str(exc)
    return DeckbuildError(f"{display_path(path)}: cannot write ({reason}); {todo}")


def temp_name(folder: Path, suffix: str = "") -> Path:
    """Name a temporary file in `folder` that does not exist yet."""
    # What secrets.token_hex(8) returns, without importing secrets (and random) for it.
    return folder / f"{TEMP_PREFIX}{os.urandom(8).hex()}{suffix}"


def stage(folder: Path, data: bytes) -> Path:
    """Write `data` durably to a new temporary file in `folder`, and return its path.

    The file is created with the mode the user's umask gives any new file (not mkstemp's 0600).
    """
    while True:
        tmp = temp_name(folder)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
        break
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        discard([tmp])
        raise
    return tmp


def sync(path: Path) -> None:
    """Flush a file to disk: a disk that fills late says so here."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_folder(path: Path) -> None:
    """Flush a folder to disk, so that a rename in it survives a crash."""
    # Some file systems cannot sync a folder; the rename is atomic all the same.
    with contextlib.suppress(OSError):
        sync(path)


def write_text(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it over `path`."""
    try:
        tmp = stage(path.parent, text.encode("utf-8"))
        try:
            os.replace(tmp, path)
        except BaseException:
            discard([tmp])
            raise
        sync_folder(path.parent)
    except OSError as exc:
        raise cannot_write(path, exc) from None


def commit(moves: Sequence[tuple[Path, Path]]) -> None:
    """Rename every staged file over its target, all or (after a kill) none until recovered.

    With more than one rename, a journal in each folder involved lists them all first, so that
    the next run completes them (`recover`) if this one is killed halfway.
    """
    if not moves:
        return
    folders = sorted({target.parent for _, target in moves})
    copies = [folder / JOURNAL_NAME for folder in folders]
    where, journaled, committed = moves[0][1], len(moves) > 1, False
    try:
        if journaled:
            body = {
                "deckbuild_journal": JOURNAL_FORMAT,
                "moves": [[str(tmp), str(target)] for tmp, target in moves],
                "copies": [str(c) for c in copies],
            }
            data = (json.dumps(body, ensure_ascii=False, indent=1) + "\n").encode("utf-8")
            # The journal counts only once every copy is there: the last copy written commits.
            for where in copies:
                os.replace(stage(where.parent, data), where)
                sync_folder(where.parent)
            committed = True
            checkpoint("journal")
        for n, (tmp, where) in enumerate(moves, 1):
            os.replace(tmp, where)
            committed = True
            checkpoint(f"moved-{n}")
        for folder in folders:
            sync_folder(folder)
        if journaled:
            _remove(copies)
    except OSError as exc:
        if not committed:
            # Nothing was renamed yet: leave no trace (after the commit, the next run finishes).
            discard([*(tmp for tmp, _ in moves), *copies])
        raise cannot_write(where, exc) from None


def discard(paths: Sequence[Path]) -> None:
    """Remove staged files that will not be committed."""
    for path in paths:
        with contextlib.suppress(OSError):  # else swept by the next run
            path.unlink(missing_ok=True)


def _remove(copies: Sequence[Path]) -> None:
    # Once one copy is gone the journal no longer counts, so every rename must be done by now.
    for copy in reversed(copies):
        copy.unlink(missing_ok=True)
    for folder in sorted({c.parent for c in copies}):
        sync_folder(folder)


def recover(folders: Sequence[Path]) -> list[str]:
    """Finish what a killed run left in `folders`, and sweep its temporary files; say what was done."""
    from deckbuild.sources import display_path

    done: list[str] = []
    for folder in folders:
        journal = folder / JOURNAL_NAME
        if not journal.exists():
            continue
        try:
            body = json.loads(journal.read_text(encoding="utf-8"))
            moves = [(Path(tmp), Path(target)) for tmp, target in body["moves"]]
            copies = [Path(c) for c in body["copies"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            if ran_out(exc):
                raise
            raise DeckbuildError(
                f"{display_path(journal)}:1: cannot read the journal of an interrupted build ({exc}); "
                "delete it, restore the lock file from git and build again"
            ) from None
        try:
            if all(c.exists() for c in copies):
                finished = []
                for tmp, target in moves:
                    if tmp.exists():
                        os.replace(tmp, target)
                        finished.append(display_path(target))
                for parent in sorted({target.parent for _, target in moves}):
                    sync_folder(parent)
                if finished:
                    names = ", ".join(finished)
                    done.append(f"finished an interrupted build: renamed its new {names} into place")
            _remove(copies)
        except OSError as exc:
            raise cannot_write(Path(exc.filename or journal), exc) from None
    for folder in folders:
        swept = sweep(folder)
        if swept:
            done.append(f"{display_path(folder)}: removed {swept} temporary file(s) of an interrupted run")
    return done


def sweep(folder: Path) -> int:
    """Remove the temporary files and folders a killed run left in `folder`; return how many."""
    try:
        strays = sorted(p for p in folder.iterdir() if p.name.startswith(TEMP_PREFIX))
    except OSError:
        return 0
    swept = 0
    for stray in strays:
        if stray.is_dir() and not stray.is_symlink():
            import shutil

            shutil.rmtree(stray, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):  # a read-only folder: left for a later run
                stray.unlink()
        swept += not stray.exists()
    return swept


@contextlib.contextmanager
def exclusive(folder: Path) -> Iterator[None]:
    """Hold a folder (a deck tree, an output folder) for one run, so that runs at once take turns.

    Without it, two builds of different folders of one tree would each read the lock file and
    the last to save would drop the other's entries. The lock is taken on the folder itself,
    so every build of it takes turns whatever its temporary folder, and nothing is written.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: builds are not serialised
        yield
        return
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as exc:
        if ran_out(exc):
            raise
        from deckbuild.sources import display_path

        shown = display_path(folder)
        raise DeckbuildError(f"{shown}: cannot open the folder ({exc.strerror}); check it") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # which lets go of the lock
