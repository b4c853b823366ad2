"""A cache another process holds: the build goes on without it, says so once, and never waits long."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import DATA, put, seed
from deckbuild import cache
from deckbuild.build import build
from deckbuild.cli import cli

NOW = 1_750_000_000
# Holds the cache until its standard input is closed: only the test lets it go, after the build.
# "writes": a write transaction, as a build stopped in mid-write holds it (readers still read, in
# WAL mode); "everything": SQLite's exclusive locking mode, which keeps readers out too.
HOLDER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
if sys.argv[2] == "everything":
    db.execute("PRAGMA locking_mode=EXCLUSIVE")
db.execute("BEGIN EXCLUSIVE")
db.execute("CREATE TABLE IF NOT EXISTS held (x)")
print("held", flush=True)
sys.stdin.read()
db.execute("ROLLBACK")
"""


def note(own_cache: Path) -> str:
    return (
        f"note: the cache {own_cache / 'cache.sqlite'} is held by another process; this run went on "
        "without it (same result; the next run may take longer); if no other deckbuild is running, end "
        "the one holding it (a build stopped with Ctrl-Z: 'fg' or kill it) or delete the file\n"
    )


@pytest.fixture
def tree(deck_tree: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Seeds and an image, built once (the lock, a warm cache), then one answer edited."""
    put(deck_tree, "Deck/003.txt", seed("003"))
    put(deck_tree, "Deck/constructs.txt", DATA / "anki" / "constructs.txt")
    put(deck_tree, "Deck/img/diagram.png", DATA / "anki" / "diagram.png")
    build([deck_tree], deck_tree.parent / "first", now=NOW)
    source = deck_tree / "Deck" / "003.txt"
    source.write_text(source.read_text(encoding="utf-8").replace("general purpose", "main purpose", 1))
    # The command line stamps changed cards with the time: the same second for every build here.
    monkeypatch.setattr(time, "time", lambda: NOW + 10.0)
    # Any step waits this long for the cache at most (a few builds' brief writes, not a holder).
    monkeypatch.setattr(cache, "BUSY_TIMEOUT", 0.05)
    return deck_tree


def run(*args: str):
    return CliRunner().invoke(cli, list(args), prog_name="deckbuild")


def still_held(path: Path) -> bool:
    """Tell whether another process holds the cache now (a write cannot start without waiting)."""
    db = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        return True
    finally:
        db.close()
    return False


def holding(own_cache: Path, kind: str) -> Iterator[subprocess.Popen[str]]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(own_cache / "cache.sqlite"), kind],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        yield holder
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)


def without_hold(tree: Path, tmp_path: Path, *args: str) -> bytes:
    """Build a copy of the tree as it is now, with no cache at all: the bytes a held build must give."""
    copy = tmp_path / "copy" / tree.name
    shutil.copytree(tree, copy)
    assert run("build", str(copy), "-o", str(tmp_path / "expected"), "--no-cache", *args).exit_code == 0
    return (tmp_path / "expected" / "Deck.apkg").read_bytes()


@pytest.mark.parametrize("kind", ["writes", "everything"])
def test_a_held_cache_never_holds_up_a_build_and_is_told_once(tree, own_cache, tmp_path, kind):
    expected = without_hold(tree, tmp_path)
    out = tmp_path / "dist"
    for holder in holding(own_cache, kind):
        result = run("build", str(tree), "-o", str(out))
        # Nothing waited for the holder: it lets go only once the build is over.
        assert holder.poll() is None and still_held(own_cache / "cache.sqlite")
    assert result.exit_code == 0, result.output
    assert result.stderr.count("note: the cache") == 1
    assert note(own_cache) in result.stderr
    assert (out / "Deck.apkg").read_bytes() == expected
    # Once the cache is free again, the next build is quiet; the note was never kept in a record.
    again = run("build", str(tree), "-o", str(out))
    assert again.exit_code == 0 and "note: the cache" not in again.stderr
    assert (out / "Deck.apkg").read_bytes() == expected


@pytest.mark.parametrize("kind", ["writes", "everything"])
@pytest.mark.parametrize("command", ["check", "preview"])
def test_check_and_preview_go_on_without_a_held_cache_and_say_so_once(
    tree, own_cache, tmp_path, kind, command
):
    args = [command, str(tree)] + (["-o", str(tmp_path / "preview")] if command == "preview" else [])
    for holder in holding(own_cache, kind):
        result = run(*args)
        assert holder.poll() is None and still_held(own_cache / "cache.sqlite")
    assert result.exit_code == 0, result.output
    assert result.stderr.count("note: the cache") == 1 and note(own_cache) in result.stderr


def test_strict_does_not_fail_on_a_held_cache(deck_tree, own_cache, tmp_path, monkeypatch):
    """The note is no warning: the cache is not a source, and --strict is about the sources."""
    put(
        deck_tree,
        "Deck/cards.txt",
        "Question;Answer;UUID\nWhat?;That.;0cd84c0a-2434-41c5-941f-d3e47a46f00e\n",
    )
    build([deck_tree], tmp_path / "first", now=NOW)
    (deck_tree / "Deck" / "cards.txt").write_text(
        "Question;Answer;UUID\nWhat?;This.;0cd84c0a-2434-41c5-941f-d3e47a46f00e\n"
    )
    monkeypatch.setattr(cache, "BUSY_TIMEOUT", 0.05)
    for _ in holding(own_cache, "writes"):
        result = run("build", str(deck_tree), "-o", str(tmp_path / "dist"), "--strict")
    assert result.exit_code == 0, result.output
    assert result.stderr == note(own_cache)


def test_no_cache_neither_waits_nor_tells(tree, own_cache, tmp_path):
    for holder in holding(own_cache, "everything"):
        result = run("build", str(tree), "-o", str(tmp_path / "dist"), "--no-cache")
        assert holder.poll() is None
    assert result.exit_code == 0 and "note: the cache" not in result.stderr


def test_once_a_step_found_the_cache_held_no_later_step_waits(tree, own_cache):
    """At most one step waits its BUSY_TIMEOUT: after it, every step tries once and goes on."""
    store = cache.Cache(own_cache)
    try:
        assert store.db is not None and store.timeout == cache.BUSY_TIMEOUT
        for _ in holding(own_cache, "writes"):
            store.put_many({"k": {"sha256": "x"}})
        assert store.busy and store.timeout == 0
        assert store.db.execute("PRAGMA busy_timeout").fetchone()[0] == 0
        assert store.note() == note(own_cache).rstrip("\n")
    finally:
        store.close()


def test_a_release_goes_on_without_a_held_cache_and_says_so_once(tree, own_cache, tmp_path):
    assert run("build", str(tree), "-o", str(tmp_path / "dist")).exit_code == 0  # the lock, committed
    for holder in holding(own_cache, "writes"):
        result = run("release", str(tree), "-o", str(tmp_path / "rel"), "--release-version", "v1")
        assert holder.poll() is None and still_held(own_cache / "cache.sqlite")
    assert result.exit_code == 0, result.output
    assert result.stderr.count("note: the cache") == 1 and note(own_cache) in result.stderr
