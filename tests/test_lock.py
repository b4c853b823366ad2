"""The lock file: mod times that move exactly when content changes, in a diff-friendly file."""

from __future__ import annotations

import json

import pytest

from conftest import put, seed
from deckbuild.build import _whole_hash, build
from deckbuild.errors import DeckbuildError
from deckbuild.lock import Lock
from deckbuild.packaged import read_package


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
    a, b = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
    lock.stamp("notes", b, "h", now=1)
    lock.stamp("notes", a, "h", now=1, origin="p.txt", kind="quiz", key="q")
    lock.stamp("notetypes", "1", "t", now=1)
    lock.save()
    text = lock.path.read_text(encoding="utf-8")
    assert json.loads(text)["notes"][a] == {
        "hash": "h",
        "mod": 1,
        "origin": "p.txt",
        "kind": "quiz",
        "key": "q",
    }
    lines = text.splitlines()
    assert lines.index(
        f'"{a}": {{"hash": "h", "key": "q", "kind": "quiz", "mod": 1, "origin": "p.txt"}},'
    ) < lines.index(f'"{b}": {{"hash": "h", "mod": 1}}')
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


GOOD_ROW = '"11111111-1111-4111-8111-111111111111": {"hash": "h", "mod": 100}'


A = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"


def entry(body: str) -> str:
    """A lock whose second note (line 7) is `body`."""
    return lock_text(GOOD_ROW, f'"{A}": {body}')


def lock_text(*rows: str) -> str:
    return '{\n"deckbuild_lock": 1,\n"notetypes": {\n},\n"notes": {\n' + ",\n".join(rows) + "\n}\n}\n"


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("[]", 1, "not a lock file: the file holds a list, not an object"),
        ("null", 1, "not a lock file: the file holds null, not an object"),
        ('"notes"', 1, "not a lock file: the file holds a string, not an object"),
        ('{"deckbuild_lock": 1, "notetypes": {}, "notes": []}', 1, '"notes" is a list, not an object'),
        ('{\n"deckbuild_lock": 1,\n"notetypes": {},\n"notes": null\n}', 4, '"notes" is null, not an object'),
        ('{\n"deckbuild_lock": 7,\n"notetypes": {},\n"notes": {}\n}', 2, "unknown lock format 7, expected 1"),
        (entry('{"hash": "h", "mod": "100"}'), 7, '"mod" must be a time in'),
        (entry('{"hash": "h", "mod": 1000000000000000000000000000000}'), 7, '"mod" must be a time'),
        (entry('{"hash": "h", "mod": -5}'), 7, 'not -5'),
        (entry('{"hash": "h", "mod": 1.5}'), 7, 'not 1.5'),
        (entry('{"hash": "h", "mod": true}'), 7, 'not true'),
        (entry('{"hash": 3, "mod": 1}'), 7, '"hash" must be a non-empty string'),
        (entry('{"hash": "h", "mod": 1, "colour": "red"}'), 7, "unknown key 'colour'"),
        (entry('[1, 2]'), 7, "the entry is a list, not an object"),
        (entry('{"hash": "h", "mod": 1, "deck": "D", "fields": ["x"], "tags": []}'), 7,
         'a retired card needs "fields": a list of 6 or 15 strings'),
        (entry('{"hash": "h", "mod": 1, "deck": "D", "fields": ' + json.dumps([""] * 15) + ', "tags": 3}'),
         7, 'a retired card needs "tags": a list of strings'),
        (entry('{"hash": "h", "mod": 1, "fields": ' + json.dumps([""] * 15) + ', "tags": []}'), 7,
         'a retired card needs its "deck" as a string'),
        (entry('{"hash": "h", "mod": 1, "origin": 5}'), 7, '"origin" must be a string'),
        # A page card's kind or origin edited by hand would retire it and make a new one.
        (entry('{"hash": "h", "mod": 1, "origin": "p.txt", "kind": "Recall", "key": "q"}'), 7,
         '"kind" must be one of challenge, open, practice, quiz, recall, not "Recall"'),
        (entry('{"hash": "h", "mod": 1, "origin": "p.txt", "kind": "evil", "key": "q"}'), 7, 'not "evil"'),
        (entry('{"hash": "h", "mod": 1, "origin": null, "kind": "recall", "key": "q"}'), 7,
         'a page card\'s entry needs its "origin" and "kind" beside its "key"'),
        (entry('{"hash": "h", "mod": 1, "origin": "p.txt", "key": "q"}'), 7,
         'a page card\'s entry needs its "origin" and "kind" beside its "key"'),
        (lock_text(GOOD_ROW, '"0123 x": {"hash": "h", "mod": 1}'), 7, "note '0123 x': not a UUID or GUID"),
        # A GUID from Anki is kept only for a semicolon row: a page card's id mangled into one is damage.
        (lock_text(GOOD_ROW, '"0aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa": {"hash": "h", "mod": 1, '
                   '"origin": "p.txt", "kind": "recall", "key": "q"}'), 7,
         "note '0aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa': not a UUID, as a page card's id always is"),
        ('{\n"deckbuild_lock": 1,\n<<<<<<< HEAD\n', 3, "not valid JSON (an unresolved merge conflict?)"),
        ('{\n"deckbuild_lock": 1,\n"notes": {\n', 4, "not valid JSON"),
    ],
)  # fmt: skip
def test_a_damaged_lock_names_its_line_and_what_to_do(tmp_path, monkeypatch, text, line, what):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deckbuild.lock").write_text(text, encoding="utf-8")
    with pytest.raises(DeckbuildError) as caught:
        Lock.load(tmp_path / "deckbuild.lock")
    message = str(caught.value)
    assert message.startswith(f"deckbuild.lock:{line}: cannot read the lock file: "), message
    assert what in message
    assert message.endswith(
        "; restore it from git (git -C . checkout HEAD -- deckbuild.lock, then build) or fix that line"
    )


def test_a_lock_that_is_not_utf8_names_the_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deckbuild.lock").write_bytes(entry('{"hash": "\xff"}').encode("latin-1"))
    with pytest.raises(
        DeckbuildError, match=r"^deckbuild\.lock:7: cannot read the lock file: not UTF-8 text;"
    ):
        Lock.load(tmp_path / "deckbuild.lock")


def test_a_retired_entry_as_written_loads_back(tmp_path):
    row = {"hash": "h", "mod": 5, "origin": "a.txt", "deck": "D", "fields": ["f"] * 15, "tags": ["t"]}
    (tmp_path / "deckbuild.lock").write_text(entry(json.dumps(row)), encoding="utf-8")
    loaded = Lock.load(tmp_path / "deckbuild.lock").notes[A]
    assert loaded.retired and loaded.to_json() == row


def test_a_lock_formatted_by_hand_is_rewritten_whole_not_patched_into_broken_json(tmp_path):
    guid = "11111111-1111-4111-8111-111111111111"
    path = tmp_path / "deckbuild.lock"
    data = {"deckbuild_lock": 1, "notetypes": {}, "notes": {guid: {"hash": "h", "mod": 100}}}
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    lock = Lock.load(path)
    lock.stamp("notes", guid, "edited", 200)
    lock.save()
    assert json.loads(path.read_text(encoding="utf-8"))["notes"][guid] == {"hash": "edited", "mod": 200}


def test_a_lock_hashed_the_old_way_is_taken_over_without_moving_a_mod(deck_tree, tmp_path):
    put(deck_tree, "Deck/003.txt", seed("003"))
    (package,) = build([deck_tree], tmp_path / "a", now=1000).packages
    path = deck_tree / "deckbuild.lock"
    data = json.loads(path.read_text(encoding="utf-8"))
    new_hashes = {guid: entry["hash"] for guid, entry in data["notes"].items()}
    for guid, note in read_package(package).notes.items():
        # As an earlier deckbuild wrote it: the whole note hashed, the Source field included.
        data["notes"][guid] = {
            "hash": _whole_hash(note.fields, note.tags),
            "mod": 500,
            "origin": "Deck/003.txt",
        }
    path.write_text(json.dumps(data), encoding="utf-8")

    build([deck_tree], tmp_path / "b", now=2000)
    notes = json.loads(path.read_text(encoding="utf-8"))["notes"]
    assert {guid: (e["hash"], e["mod"]) for guid, e in notes.items()} == {
        g: (h, 500) for g, h in new_hashes.items()
    }


# A lock of many good keys and one bad one, loaded in a process of its own: a hang would be a
# timeout here, not a test run that never ends.
ONE_BAD_KEY = """
import json, sys, uuid
from pathlib import Path
from deckbuild.errors import DeckbuildError
from deckbuild.lock import Lock
path, at = Path(sys.argv[1]), int(sys.argv[2])
keys = [str(uuid.UUID(int=n + 1)) for n in range(200)]
keys.insert(at, "not a key")
entry = {"hash": "0123456789abcdef", "mod": 1700000000}
lock = {"deckbuild_lock": 1, "notetypes": {}, "notes": {k: entry for k in keys}}
path.write_text(json.dumps(lock, indent=1))
try:
    Lock.load(path)
except DeckbuildError as exc:
    print(exc)
"""


@pytest.mark.parametrize("at", [0, 100, 200])
def test_one_bad_key_among_many_is_named_at_once_wherever_it_is(tmp_path, at):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", ONE_BAD_KEY, str(tmp_path / "deckbuild.lock"), str(at)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "note 'not a key': not a UUID or GUID" in result.stdout
