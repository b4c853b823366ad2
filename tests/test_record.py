"""The record of a build: any change to what a build reads must miss it, however small."""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import put
from deckbuild.record import _fingerprint
from deckbuild.sources import LOCK_NAME, find_root

# Larger than the piece the inputs are hashed by (256 KiB), so that a byte in any piece counts.
BIG = 3 * (1 << 18) + 7
OPTIONS = [False, False, "/out", None, None]


@pytest.fixture(scope="module")
def inputs() -> Iterator[Path]:
    """A deck tree holding every kind of file a build reads: sources, lock, kept note types, images."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "decks"
        rnd = random.Random(0)
        put(root, LOCK_NAME, '{"deckbuild_lock": 1, "notetypes": {}, "notes": {}}\n')
        put(root, "notetypes.json", "{}\n")  # above the folder built: read all the same
        put(root, "Deck/cards.txt", rnd.randbytes(BIG))
        put(root, "Deck/small.txt", "Question;Answer;UUID\n")
        put(root, "Deck/empty.txt", b"")
        put(root, "Deck/img/x.png", rnd.randbytes(1 << 18))
        yield root


def fingerprint(root: Path) -> str:
    deck = root / "Deck"
    return _fingerprint([deck], [find_root(deck)], (), OPTIONS)


def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@given(data=st.data())
def test_changing_any_byte_of_any_input_changes_the_fingerprint(inputs, data):
    before = fingerprint(inputs)
    path = data.draw(st.sampled_from(files(inputs)), label="file")
    original = path.read_bytes()
    how = data.draw(st.sampled_from(["byte", "append", "truncate"] if original else ["append"]), label="how")
    changed = bytearray(original)
    if how == "byte":
        at = data.draw(st.integers(0, len(original) - 1), label="at")
        changed[at] = data.draw(st.integers(0, 255).filter(lambda b: b != original[at]), label="to")
    elif how == "append":
        changed += bytes([data.draw(st.integers(0, 255), label="appended")])
    else:
        del changed[-1]
    try:
        path.write_bytes(changed)
        assert fingerprint(inputs) != before
    finally:
        path.write_bytes(original)
    assert fingerprint(inputs) == before, "the same bytes again: the same fingerprint"


def test_adding_renaming_or_removing_a_file_changes_the_fingerprint(inputs):
    before = fingerprint(inputs)
    extra = put(inputs, "Deck/more.txt", b"")
    assert fingerprint(inputs) != before
    extra.unlink()
    os.rename(inputs / "Deck/small.txt", inputs / "Deck/smal.txt")
    try:
        assert fingerprint(inputs) != before
    finally:
        os.rename(inputs / "Deck/smal.txt", inputs / "Deck/small.txt")
    assert fingerprint(inputs) == before


def test_a_link_to_a_folder_made_or_pointed_elsewhere_changes_the_fingerprint(inputs, tmp_path):
    # Not followed, but warned of: a build answered from its record did not warn of a new one.
    before = fingerprint(inputs)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    os.symlink(tmp_path / "one", inputs / "Deck" / "linked")
    made = fingerprint(inputs)
    assert made != before
    (inputs / "Deck" / "linked").unlink()
    os.symlink(tmp_path / "two", inputs / "Deck" / "linked")
    assert fingerprint(inputs) not in (before, made)
    (inputs / "Deck" / "linked").unlink()
    assert fingerprint(inputs) == before


def test_bytes_moved_from_one_file_to_the_next_change_the_fingerprint(tmp_path):
    # Each file is hashed on its own: its content can never pass for the next file's name and bytes.
    a, b = put(tmp_path, "Deck/a.txt", b"x"), put(tmp_path, "Deck/b.txt", b"y")
    root = tmp_path
    before = fingerprint(root)
    a.write_bytes(b"x" + b"\x00" + os.fsencode(b) + b"\x00" + b"y")
    b.unlink()
    assert fingerprint(root) != before


@pytest.mark.parametrize("edited", [False, True], ids=["unchanged", "a row edited"])
def test_a_build_from_another_folder_names_the_files_from_there(tmp_path, monkeypatch, edited):
    from deckbuild.record import build

    row = "Question;Answer;UUID\nQ?;{};aaaaaaaa-0000-4000-8000-00000000000{}\n"
    put(tmp_path, "decks/A/c.txt", row.format("See ![p](p.png).", 1))
    put(tmp_path, "decks/B/c.txt", row.format("A.", 2))
    put(tmp_path, f"decks/{LOCK_NAME}", '{"deckbuild_lock": 1, "notetypes": {}, "notes": {}}\n')
    monkeypatch.chdir(tmp_path)
    for now in (1_700_000_000, 1_700_000_060):  # the second with nothing new to note
        first = build([tmp_path / "decks"], tmp_path / "out", now=now)
    assert [p.path for p in first.report.problems] == ["decks/A/c.txt"]
    if edited:
        b = tmp_path / "decks" / "B" / "c.txt"
        b.write_text(b.read_text("utf-8").replace(";A.;", ";B.;"), "utf-8")
    monkeypatch.chdir(tmp_path / "decks")
    again = build([tmp_path / "decks"], tmp_path / "out", now=1_700_000_120)
    assert [p.path for p in again.report.problems] == ["A/c.txt"]


def test_a_package_another_build_wrote_into_the_output_folder_is_read_anew(tmp_path, monkeypatch):
    # A build of one file writes its own package, with an edit's newer mod time; the edit taken
    # back, the whole tree's build would have been answered from its record, and the edit's
    # card never moved past that newer mod.
    from deckbuild.build import build
    from deckbuild.packaged import read_package

    monkeypatch.setenv("DECKBUILD_CACHE_DIR", str(tmp_path / "cache"))
    uuid = "11111111-1111-4111-8111-111111111111"
    source = put(tmp_path / "decks", "A/one.txt", f"Question;Answer;UUID\nQ1;A1;{uuid}\n")
    lock = tmp_path / "decks" / LOCK_NAME
    build([tmp_path / "decks"], tmp_path / "dist", now=1_700_000_000)
    before = (source.read_bytes(), lock.read_bytes())
    source.write_text(f"Question;Answer;UUID\nQ1;A1 edited;{uuid}\n", encoding="utf-8")
    (one,) = build([source], tmp_path / "dist", now=1_700_000_060).packages
    assert one.name != "A.apkg" and read_package(one).notes[uuid].mod == 1_700_000_060
    source.write_bytes(before[0])  # git checkout decks
    lock.write_bytes(before[1])
    result = build([tmp_path / "decks"], tmp_path / "dist", now=1_700_000_120)
    assert read_package(tmp_path / "dist" / "A.apkg").notes[uuid].mod == 1_700_000_120
    assert any("earlier package ships" in note for note in result.report.notes)
