"""Packages are reproducible: same sources and lock, same bytes, wherever they are built."""

from __future__ import annotations

import shutil
import zipfile

from conftest import put, seed
from deckbuild.build import build

NOW = 1_750_000_000


def test_two_builds_give_the_same_bytes(deck_tree, tmp_path):
    put(deck_tree, "Deck/003.txt", seed("003"))
    first = build([deck_tree], tmp_path / "a", now=NOW).packages[0]
    second = build([deck_tree], tmp_path / "b", now=NOW + 999).packages[0]
    assert first.read_bytes() == second.read_bytes()


def test_the_same_tree_elsewhere_gives_the_same_bytes(deck_tree, tmp_path):
    put(deck_tree, "Deck/003.txt", seed("003"))
    first = build([deck_tree], tmp_path / "a", now=NOW).packages[0]
    elsewhere = tmp_path / "elsewhere" / "other-name"
    shutil.copytree(deck_tree, elsewhere)
    second = build([elsewhere], tmp_path / "b", now=NOW + 5).packages[0]
    assert first.read_bytes() == second.read_bytes()


def test_zip_entries_are_fixed_in_time_sorted_and_compressed(deck_tree, tmp_path):
    put(deck_tree, "Deck/003.txt", seed("003"))
    apkg = build([deck_tree], tmp_path / "out", now=NOW).packages[0]
    with zipfile.ZipFile(apkg) as z:
        infos = z.infolist()
    assert [i.filename for i in infos] == ["collection.anki2", "media"]
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in infos)
    assert infos[0].compress_size < infos[0].file_size / 2


def test_the_collection_has_the_schema_and_indexes_genanki_writes(deck_tree, tmp_path):
    import sqlite3

    import genanki

    put(deck_tree, "Deck/003.txt", seed("003"))
    apkg = build([deck_tree], tmp_path / "out", now=NOW).packages[0]
    ours = tmp_path / "ours.anki2"
    ours.write_bytes(zipfile.ZipFile(apkg).read("collection.anki2"))
    reference = sqlite3.connect(":memory:")
    reference.executescript(genanki.apkg_schema.APKG_SCHEMA)
    query = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
    with sqlite3.connect(ours) as db:
        assert db.execute(query).fetchall() == reference.execute(query).fetchall()
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT COUNT(*) FROM notes").fetchone() == (57,)
