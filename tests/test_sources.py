"""Finding sources: deck names from folders, packages per top-level deck, decoding."""

from __future__ import annotations

import os

from conftest import put
from deckbuild.errors import Report
from deckbuild.sources import LOCK_NAME, decode, discover

ROW = "Question;Answer;UUID\nQ;A;11111111-1111-4111-8111-111111111111\n"


def test_deck_names_follow_folders_and_top_folders_make_packages(deck_tree):
    put(deck_tree, "Lang/Spanish/verbs.txt", ROW)
    put(deck_tree, "Lang/nouns.txt", ROW)
    put(deck_tree, "Maths/algebra.txt", ROW)
    put(deck_tree, "Maths/figure.png", b"\x89PNG")
    put(deck_tree, "Maths/.hidden.txt", ROW)
    found = discover([deck_tree], Report())
    assert [(s.origin, s.deck, s.package) for s in found] == [
        ("Lang/Spanish/verbs.txt", "Lang::Spanish", "Lang"),
        ("Lang/nouns.txt", "Lang", "Lang"),
        ("Maths/algebra.txt", "Maths", "Maths"),
    ]


def test_a_subfolder_or_file_keeps_its_full_deck_name_below_the_lock(deck_tree):
    put(deck_tree, LOCK_NAME, '{"deckbuild_lock": 1, "notetypes": {}, "notes": {}}')
    verbs = put(deck_tree, "Lang/Spanish/verbs.txt", ROW)
    (one,) = discover([verbs], Report())
    assert (one.deck, one.package) == ("Lang::Spanish", "Lang-Spanish")
    (sub,) = discover([deck_tree / "Lang" / "Spanish"], Report())
    assert (sub.deck, sub.package) == ("Lang::Spanish", "Lang-Spanish")


def test_a_folder_without_sources_is_an_error(deck_tree, monkeypatch):
    monkeypatch.chdir(deck_tree.parent)
    report = Report()
    assert discover([deck_tree], report) == []
    assert [str(p) for p in report.problems] == [
        "decks: no deck sources in this folder; add a Question;Answer;UUID file or a quiz page"
    ]


def test_decoding_handles_bom_crlf_and_cp1252_with_a_warning(deck_tree, monkeypatch):
    monkeypatch.chdir(deck_tree)
    put(deck_tree, "a.txt", b"\xef\xbb\xbfQuestion;Answer;UUID\r\nQ;caf\xc3\xa9;x\r\n")
    put(deck_tree, "b.txt", b"Question;Answer;UUID\nQ;caf\xe9;x\n")
    report = Report()
    a, b = discover([deck_tree], report)
    assert decode(a, report) == ["Question;Answer;UUID", "Q;café;x", ""]
    assert decode(b, report) == ["Question;Answer;UUID", "Q;café;x", ""]
    assert [str(p) for p in report.problems] == [
        "b.txt:2: warning: not UTF-8; read as Windows-1252 (cp1252); save the file as UTF-8"
    ]


def test_binary_empty_and_looping_files_are_errors(deck_tree, monkeypatch):
    monkeypatch.chdir(deck_tree)
    put(deck_tree, "bin.txt", b"\x00\x01\x02")
    put(deck_tree, "empty.txt", "  \n")
    os.symlink("loop.txt", deck_tree / "loop.txt")
    report = Report()
    for source in discover([deck_tree], report):
        assert decode(source, report) is None
    assert [str(p) for p in report.sorted_problems()] == [
        "bin.txt:1: binary file, not text; move it out of the deck folder",
        "empty.txt:1: empty file; add cards or remove the file",
        "loop.txt:1: cannot read: symbolic link loop; fix or remove the file",
    ]
