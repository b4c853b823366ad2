"""The lock file: mod times that move exactly when content changes, in a diff-friendly file."""

from __future__ import annotations

import json

import pytest

from deckbuild.errors import DeckbuildError
from deckbuild.lock import Lock


def test_mod_moves_only_when_the_hash_changes(tmp_path):
    lock = Lock(tmp_path / "deckbuild.lock")
    assert lock.stamp("notes", "g", "h1", now=100) == 100
    assert lock.stamp("notes", "g", "h1", now=500) == 100
    assert lock.stamp("notes", "g", "h2", now=500) == 500


def test_mod_moves_forward_even_when_the_clock_does_not(tmp_path):
    lock = Lock(tmp_path / "deckbuild.lock")
    lock.stamp("notes", "g", "h1", now=100)
    assert lock.stamp("notes", "g", "h2", now=100) == 101
    assert lock.stamp("notes", "g", "h3", now=50) == 102


def test_saved_lock_is_sorted_json_one_entry_a_line(tmp_path):
    lock = Lock(tmp_path / "deckbuild.lock")
    lock.stamp("notes", "b", "h", now=1)
    lock.stamp("notes", "a", "h", now=1, origin="p.txt", kind="quiz", key="q")
    lock.stamp("notetypes", "1", "t", now=1)
    lock.save()
    text = lock.path.read_text(encoding="utf-8")
    assert json.loads(text)["notes"]["a"] == {
        "hash": "h",
        "mod": 1,
        "origin": "p.txt",
        "kind": "quiz",
        "key": "q",
    }
    lines = text.splitlines()
    assert lines.index(
        '"a": {"hash": "h", "key": "q", "kind": "quiz", "mod": 1, "origin": "p.txt"},'
    ) < lines.index('"b": {"hash": "h", "mod": 1}')
    reloaded = Lock.load(lock.path)
    assert reloaded.render() == text
    assert reloaded.changed == []


def test_a_damaged_lock_is_an_error_not_a_traceback(tmp_path):
    path = tmp_path / "deckbuild.lock"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(DeckbuildError, match="cannot read the lock file"):
        Lock.load(path)
