"""Running out of file descriptors or memory: one clear line, exit status 1, nothing half-written."""

from __future__ import annotations

import errno
import marshal
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import DATA, DECKS, put
from deckbuild import cli, package, workers
from deckbuild.resources import fork_with_pipes, ran_out
from test_importer import export, make_studied_collection

# A phrase of seed 003's first answer, edited so that a build has a package and the lock to change.
ANSWER = "The general purpose of attention mechanisms"
# A sweep ends once the command has succeeded at this many limits in a row.
SUCCESSES = 2
# However many cores the machine has, a command succeeds well before this many more descriptors.
MOST_ABOVE = 400


def _limited(limit: int) -> Callable[[], None]:
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))


def _python_floor() -> int:
    """Return the fewest open files Python itself starts with (its libraries, site, encodings)."""
    for limit in range(3, 64):
        started = subprocess.run(
            [sys.executable, "-c", "pass"], preexec_fn=_limited(limit), capture_output=True
        )
        if started.returncode == 0:
            return limit
    raise AssertionError("Python does not start with fewer than 64 open files")


def emfile(limit: int) -> str:
    return (
        f"error: too many open files (this process may have {limit} open at once); "
        "raise the limit, for example with 'ulimit -n 4096', and run again\n"
    )


def _deckbuild(args: list[str], cwd: Path, limit: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DECKBUILD_CACHE_DIR": str(cwd / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "deckbuild", *args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=120, preexec_fn=None if limit is None else _limited(limit),
    )  # fmt: skip


def _files(folder: Path, leave_out: tuple[str, ...]) -> dict[str, bytes]:
    """Every file below `folder` (hidden and temporary ones too) by path, with its bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).parts[0] not in leave_out
    }


def _edit(work: Path) -> None:
    (source,) = [p for p in (work / "decks").rglob("003_*.txt")]
    text = source.read_text(encoding="utf-8")
    assert ANSWER in text
    source.write_text(text.replace(ANSWER, "The edited purpose of attention mechanisms", 1), encoding="utf-8")


def _no_uuid(work: Path) -> None:
    (work / "decks" / "Transformers" / "new.txt").write_text(
        "Question;Answer;UUID\nWhat is a key?;A vector;\n"
    )


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeds built once with no limit (a warm cache, good packages and lock), and a release."""
    work = tmp_path_factory.mktemp("good")
    shutil.copytree(DECKS, work / "decks")
    # A second package, with an image to read and package (in a helper, for most cards).
    put(work / "decks", "Deck/constructs.txt", DATA / "anki" / "constructs.txt")
    put(work / "decks", "Deck/img/diagram.png", DATA / "anki" / "diagram.png")
    for args in (
        ["build", "decks", "-o", "dist"],
        ["release", "decks", "-o", "rel", "--release-version", "v1"],
    ):
        assert _deckbuild(args, work).returncode == 0
    return work


# Name: the command's arguments, how its copy of the good tree is changed first, what a failed run
# may leave changed (besides the cache), and whether the cache it starts with is warm.
SWEEPS: dict[str, tuple[list[str], Callable[[Path], None] | None, tuple[str, ...], bool]] = {
    "build, cold cache": (["build", "decks", "-o", "dist"], _edit, (), False),
    "build, warm cache": (["build", "decks", "-o", "dist"], _edit, (), True),
    "build --no-cache": (["build", "decks", "-o", "dist", "--no-cache"], _edit, (), True),
    "check": (["check", "decks"], _edit, (), True),
    "preview": (["preview", "decks", "-o", "preview"], _edit, ("preview",), True),
    "release": (["release", "decks", "-o", "rel", "--release-version", "v2"], None, (), True),
    "import": (["import", "Biology.apkg", "-o", "imported"], None, (), False),
    "ids": (["ids", "decks"], _no_uuid, (), False),
}


@pytest.mark.parametrize("name", list(SWEEPS))
def test_every_limit_on_open_files_ends_in_success_or_one_line(name, good, tmp_path, collection):
    """From the fewest files Python starts with, to where the command succeeds: never a traceback.

    A run that fails prints only the line that says what ran out and what to do, exits with 1,
    and leaves every file it could have changed (packages, lock, sources, release, import
    folder) byte for byte as it was, with no temporary file beside them.
    """
    args, change, may_change, warm = SWEEPS[name]
    if name == "import":
        make_studied_collection(collection, tmp_path)
        package = export(collection, tmp_path / "Biology.apkg")
    leave_out = ("cache", *may_change)
    in_a_row, failed, floor = 0, 0, _python_floor()
    for limit in range(floor, floor + MOST_ABOVE):
        work = tmp_path / str(limit)
        shutil.copytree(good, work, ignore=None if warm else shutil.ignore_patterns("cache"))
        if change is not None:
            change(work)
        if name == "import":
            shutil.copyfile(package, work / package.name)
        before = _files(work, leave_out)
        result = _deckbuild(args, work, limit)
        assert "Traceback" not in result.stderr, (limit, result.stderr)
        if result.returncode == 0:
            in_a_row += 1
            if in_a_row == SUCCESSES:
                break
        else:
            assert (result.returncode, result.stderr) == (1, emfile(limit))
            assert _files(work, leave_out) == before, limit
            in_a_row, failed = 0, failed + 1
        shutil.rmtree(work)
    else:
        pytest.fail(f"{name} never succeeded")
    # Low enough to fail at first (import and ids need only two files at a time beyond Python's own).
    assert failed or args[0] in ("import", "ids")


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (OSError(errno.EMFILE, "Too many open files"), "too many open files (this process may have"),
        (OSError(errno.ENFILE, "Too many open files in system"), "the system has too many files open"),
        (OSError(errno.ENOMEM, "Cannot allocate memory"), "out of memory; "),
        (MemoryError(), "out of memory; "),
        (ImportError("/x/_core.so: failed to map segment from shared object"), "out of memory; "),
        (RuntimeError("can't start new thread"), "cannot start another thread (out of memory, or too many"),
        (ImportError("No module named 'nowhere'"), None),
        (RuntimeError("any other"), None),
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


@pytest.mark.parametrize(
    "exc",
    [
        MemoryError(),
        OSError(errno.EMFILE, "Too many open files"),
        ImportError("/x/_core.so: failed to map segment from shared object"),
        RuntimeError("can't start new thread"),
    ],
)
def test_the_command_line_says_what_ran_out_in_one_line(exc, monkeypatch, capsys):
    def run_out() -> None:
        raise exc

    monkeypatch.setattr(cli, "cli", run_out)
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 1
    assert capsys.readouterr().err == f"error: {ran_out(exc)}\n"


@pytest.mark.parametrize(
    "exc",
    [OSError(errno.EBADF, "Bad file descriptor"), ImportError("No module named 'x'"), RuntimeError("x")],
)
def test_any_other_error_of_these_kinds_is_a_bug_and_shows(exc, monkeypatch):
    def fail() -> None:
        raise exc

    monkeypatch.setattr(cli, "cli", fail)
    with pytest.raises(type(exc)) as raised:
        cli.main()
    assert raised.value is exc


def _doubled(unit: list[int]) -> list[int]:
    return [2 * n for n in unit]


def test_helpers_that_cannot_be_forked_leave_their_share_to_fewer(monkeypatch):
    """Out of descriptors or processes, a command starts fewer helpers, and the work is all done."""
    forked: list[int] = []

    def scarce(count: int) -> tuple[int, list[int]]:
        if forked:
            raise OSError(errno.EMFILE, "Too many open files")
        forked.append(count)
        return fork_with_pipes(count)

    monkeypatch.setattr(workers, "fork_with_pipes", scarce)
    with workers.Helpers(3, lambda: None, _doubled) as helping:
        assert len(helping._helpers) == 1
        assert helping.run(list(range(2000))) == [2 * n for n in range(2000)]


def test_pipes_made_before_the_descriptors_ran_out_are_closed_again():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    held: list[int] = []

    def fill() -> int:
        """Open descriptors until none is left; return how many that took."""
        before = len(held)
        with pytest.raises(OSError):
            while True:
                held.append(os.open(os.devnull, os.O_RDONLY))
        return len(held) - before

    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        fill()
        for _ in range(4):  # room for two pipes, not for the third
            os.close(held.pop())
        with pytest.raises(OSError) as raised:
            fork_with_pipes(3)
        assert raised.value.errno == errno.EMFILE
        assert fill() == 4  # the two pipes made were closed again
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.parametrize("code", [errno.EACCES, errno.EMFILE])
def test_a_package_whose_empty_collection_cannot_be_made_is_a_message_unless_files_ran_out(
    code, deck_tree, tmp_path, monkeypatch
):
    """genanki's empty collection is made in a temporary file: failing that was once a traceback."""
    put(
        deck_tree,
        "Deck/cards.txt",
        "Question;Answer;UUID\nWhat?;That.;0cd84c0a-2434-41c5-941f-d3e47a46f00e\n",
    )

    def cannot(*args: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(package, "shell", cannot)
    result = CliRunner().invoke(cli.cli, ["build", str(deck_tree), "-o", str(tmp_path / "dist")])
    if code == errno.EMFILE:  # left to the command line's one line (see above)
        assert isinstance(result.exception, OSError) and result.exception.errno == errno.EMFILE
    else:
        assert result.exit_code == 1
        assert result.stderr.endswith(
            "Deck.apkg: cannot write (Permission denied); make the folder writable (or choose another one) "
            "and run again\n"
        )
    assert not (tmp_path / "dist" / "Deck.apkg").exists()


def test_a_memo_writer_thread_that_cannot_start_leaves_the_cache_closable(own_cache, monkeypatch):
    """Out of memory for a thread's stack: that is what is raised, not a join of a thread never started."""
    from deckbuild import cache

    store = cache.Cache(own_cache)

    def no_thread(self: object) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(cache.threading.Thread, "start", no_thread)
    with pytest.raises(RuntimeError) as raised:
        store.update_memo([("g" * 64, marshal.dumps({"sig": b"entry"}), {}, [])])
    assert ran_out(raised.value) is not None
    store.close()
