"""What a run can run out of (open files, memory), and the one line that says so.

The entry point imports this before anything else, and it imports nothing that opens a file
(errno is built in): once file descriptors have run out, importing a module is the first thing
that fails, and the message must still be made.
"""

from __future__ import annotations

import errno
import os

# SQLite's result code for a file it could not open (its memory errors are MemoryError).
_SQLITE_CANTOPEN = 14
# What the dynamic loader says when there is no memory to map a compiled module into.
_NO_ROOM_TO_LOAD = ("failed to map segment from shared object", "cannot allocate memory")


def ran_out(exc: BaseException) -> str | None:
    """Say what ran out and what to do, when `exc` is the system running out; else None.

    Running out is no fault of the sources nor of deckbuild: every command stops with this
    one line (and exit status 1) instead of a message about the file it was reading or writing.
    """
    if isinstance(exc, MemoryError):
        return _OUT_OF_MEMORY
    if isinstance(exc, ImportError) and any(words in str(exc) for words in _NO_ROOM_TO_LOAD):
        return _OUT_OF_MEMORY  # a compiled module that could not be mapped into memory
    if isinstance(exc, RuntimeError) and str(exc) == "can't start new thread":
        return (
            "cannot start another thread (out of memory, or too many processes: 'ulimit -u'); "
            "close some programs and run again"
        )
    code = getattr(exc, "errno", None)
    if code is None and getattr(exc, "sqlite_errorcode", None) == _SQLITE_CANTOPEN:
        # SQLite says only that it could not open a file; if no descriptor is left, that is why.
        code = _probe()
    if code == errno.EMFILE:
        limit = _open_files_limit()
        allowed = f" (this process may have {limit} open at once)" if limit else ""
        return (
            f"too many open files{allowed}; raise the limit, for example with 'ulimit -n 4096', and run again"
        )
    if code == errno.ENFILE:
        return (
            "the system has too many files open (its file table is full); close some programs and run again"
        )
    if code == errno.ENOMEM:
        return _OUT_OF_MEMORY
    return None


_OUT_OF_MEMORY = "out of memory; close some programs (or raise the limit 'ulimit -v') and run again"


def fork_with_pipes(count: int) -> tuple[int, list[int]]:
    """Make `count` pipes, then fork; return the pid (0 in the child) and both ends of each pipe.

    Should descriptors or processes run out on the way, the pipes made are closed again and the
    error raised: the caller goes on with fewer helpers, or says what ran out.
    """
    pipes: list[int] = []
    try:
        for _ in range(count):
            pipes += os.pipe()
        return os.fork(), pipes
    except OSError:
        for fd in pipes:
            os.close(fd)
        raise


def _probe() -> int | None:
    """Return the errno of opening one more file now (EMFILE, ENFILE), or None when it opens."""
    try:
        os.close(os.open(os.devnull, os.O_RDONLY))
    except OSError as exc:
        return exc.errno
    return None


def _open_files_limit() -> int | None:
    """Return how many files this process may have open, without importing `resource`."""
    try:
        limit = os.sysconf("SC_OPEN_MAX")
    except (ValueError, OSError, AttributeError):
        return None
    return limit if limit > 0 else None
