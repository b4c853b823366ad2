"""Running out of file descriptors or memory: one clear line, exit status 1, nothing half-written."""

from __future__ import annotations

import errno
import os
import resource
import sqlite3

import pytest

from deckbuild import cli
from deckbuild.resources import ran_out


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (OSError(errno.EMFILE, "Too many open files"), "too many open files (this process may have"),
        (OSError(errno.ENFILE, "Too many open files in system"), "the system has too many files open"),
        (OSError(errno.ENOMEM, "Cannot allocate memory"), "out of memory; "),
        (MemoryError(), "out of memory; "),
        (OSError(errno.ENOENT, "No such file"), None),
        (OSError(errno.ENOSPC, "No space left on device"), None),
        (ValueError("not a system error"), None),
    ],
)
def test_ran_out_names_only_what_the_system_ran_out_of(exc, expected):
    said = ran_out(exc)
    assert said == expected if expected is None else said is not None and said.startswith(expected)


def test_sqlite_that_cannot_open_a_file_ran_out_only_when_no_descriptor_is_left(tmp_path):
    """SQLite gives no errno: a file it cannot open is running out only if none can be opened now."""
    try:
        sqlite3.connect(tmp_path / "missing" / "x.sqlite").execute("SELECT 1")
    except sqlite3.OperationalError as exc:
        cannot_open = exc
    assert ran_out(cannot_open) is None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    held = []
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
        with pytest.raises(OSError):
            while True:
                held.append(os.open(os.devnull, os.O_RDONLY))
        assert (ran_out(cannot_open) or "").startswith("too many open files (this process may have 64 open")
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.parametrize("exc", [MemoryError(), OSError(errno.EMFILE, "Too many open files")])
def test_the_command_line_says_what_ran_out_in_one_line(exc, monkeypatch, capsys):
    def run_out() -> None:
        raise exc

    monkeypatch.setattr(cli, "cli", run_out)
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 1
    assert capsys.readouterr().err == f"error: {ran_out(exc)}\n"


def test_any_other_system_error_is_a_bug_and_shows(monkeypatch):
    def fail() -> None:
        raise OSError(errno.EBADF, "Bad file descriptor")

    monkeypatch.setattr(cli, "cli", fail)
    with pytest.raises(OSError, match="Bad file descriptor"):
        cli.main()
