"""Rendered fields in a real Anki collection: math, code, safe HTML, media, repaired text."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ankihelp import import_package, notes_by_guid
from conftest import DATA, put
from deckbuild.build import build

pytestmark = pytest.mark.anki
NOW = int(time.time()) - 10_000


@pytest.fixture
def imported(deck_tree, tmp_path, collection):
    put(deck_tree, "Deck/constructs.txt", DATA / "anki" / "constructs.txt")
    put(deck_tree, "Deck/img/diagram.png", DATA / "anki" / "diagram.png")
    (apkg,) = build([deck_tree], tmp_path / "dist", now=NOW).packages
    assert import_package(collection, apkg).new == 5
    return collection, notes_by_guid(collection)


def test_math_survives_and_dollars_become_mathjax(imported):
    _, notes = imported
    assert notes["a1111111-1111-4111-8111-111111111111"]["Front"] == r"<p>What is \(x^2\)?</p>"
    back = notes["a1111111-1111-4111-8111-111111111111"]["Back"]
    assert back == r"<p>It is \(x \cdot x\).<br>" + "\n" + r"Also written \[x^2\], for $5 at most.</p>"


def test_no_field_of_any_note_can_run_script(imported):
    _, notes = imported
    for note in notes.values():
        for value in note.fields:
            lowered = value.lower()
            assert "<script" not in lowered and "onerror" not in lowered
            assert "javascript:" not in lowered and "<iframe" not in lowered
    # The author's words stay, shown as the text they are: a tag a card does not keep is never run.
    assert (
        notes["a3333333-3333-4333-8333-333333333333"]["Front"]
        == "<p>Evil &lt;script&gt;alert(1)&lt;/script&gt; question?</p>"
    )


def test_code_is_highlighted_inside_pre_and_code(imported):
    _, notes = imported
    back = notes["a2222222-2222-4222-8222-222222222222"]["Back"]
    assert "<pre" in back and "<code>" in back and 'style="color:' in back


def test_mojibake_is_repaired(imported):
    _, notes = imported
    assert (
        notes["a4444444-4444-4444-8444-444444444444"]["Front"] == "<p>Why does relevance come from Q⋅K?</p>"
    )


def test_images_reach_the_collection_media_folder(imported):
    col, notes = imported
    back = notes["a5555555-5555-4555-8555-555555555555"]["Back"]
    name = back.split('src="')[1].split('"')[0]
    assert name.startswith("diagram-") and name.endswith(".png")
    media = Path(col.media.dir()) / name
    assert media.read_bytes() == (DATA / "anki" / "diagram.png").read_bytes()


def test_seed_003_br_is_kept_in_anki(deck_tree, tmp_path, collection):
    from conftest import seed

    put(deck_tree, "Deck/003.txt", seed("003"))
    import_package(collection, build([deck_tree], tmp_path / "d", now=NOW).packages[0])
    notes = notes_by_guid(collection)
    assert "<br>" in notes["87863c23-2111-4109-b7aa-c6e04aff3da0"]["Back"]
    assert "(Q⋅K)" in notes["72db265c-41e3-4ecf-be84-e6696a339ddc"]["Back"]
    assert r"\(\mathbf{Q}\)" in notes["d33e3f45-53d6-4d4d-860c-b337569cd772"]["Back"]
