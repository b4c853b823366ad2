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


@pytest.mark.parametrize("changes", [1, 5, 64, 65])
def test_a_few_changes_patch_the_file_exactly_as_a_full_rewrite_would(tmp_path, changes):
    path = tmp_path / "deckbuild.lock"
    lock = Lock(path)
    guids = [f"{n:08x}-0000-4000-8000-000000000000" for n in range(200)]
    lock.stamp("notetypes", "1573912204", "nt", 100)
    for n, guid in enumerate(guids):
        lock.stamp("notes", guid, f"h{n}", 100, origin="a/b.txt")
    lock.save()
    again = Lock.load(path)
    for guid in guids[::3][:changes]:
        again.stamp("notes", guid, "edited", 200, origin="a/b.txt")
    patched = again._patched()
    assert (patched is not None) == (changes <= 64)
    assert again.render() == again._render_all()
    assert json.loads(again.render())["notes"][guids[0]] == {
        "hash": "edited",
        "mod": 200,
        "origin": "a/b.txt",
    }


def test_a_new_or_forgotten_entry_rewrites_the_whole_file(tmp_path):
    path = tmp_path / "deckbuild.lock"
    lock = Lock(path)
    lock.stamp("notes", "11111111-1111-4111-8111-111111111111", "h", 100)
    lock.save()
    again = Lock.load(path)
    again.stamp("notes", "22222222-2222-4222-8222-222222222222", "h", 100)
    assert again._patched() is None
    assert list(json.loads(again.render())["notes"]) == [
        "11111111-1111-4111-8111-111111111111",
        "22222222-2222-4222-8222-222222222222",
    ]
