"""Built packages imported into a real Anki collection, the way a learner's Anki does it."""

from __future__ import annotations

import dataclasses
import re
import time

import pytest

from ankihelp import card_states, import_package, notes_by_guid, study_all, visible_text
from conftest import put, seed
from deckbuild import notetype
from deckbuild.build import build

pytestmark = pytest.mark.anki
NOW = int(time.time()) - 10_000
DECK = "Transformers/Attention and Encoder/003.txt"


@pytest.fixture
def seed_tree(deck_tree):
    put(deck_tree, DECK, seed("003"))
    return deck_tree


def build_tree(root, out, now):
    result = build([root], out, now=now)
    assert len(result.packages) == 1
    return result.packages[0]


def test_seed_003_imports_as_57_notes_with_its_uuids_as_guids(seed_tree, tmp_path, collection):
    apkg = build_tree(seed_tree, tmp_path / "dist", NOW)
    assert apkg.name == "Transformers.apkg"
    log = import_package(collection, apkg)
    assert (log.new, log.conflicting) == (57, 0)

    uuids = re.findall(r";([0-9a-f-]{36})\s*$", seed("003").read_text(encoding="utf-8"), re.M)
    notes = notes_by_guid(collection)
    assert sorted(notes) == sorted(uuids)
    assert collection.decks.by_name("Transformers::Attention and Encoder") is not None

    for cid in collection.find_cards(""):
        out = collection.get_card(cid).render_output(reload=True)
        assert visible_text(out.question_text), f"card {cid} has a blank front"
        assert visible_text(out.answer_text) != visible_text(out.question_text)

    query = notes["d33e3f45-53d6-4d4d-860c-b337569cd772"]
    answer = collection.get_card(query.card_ids()[0]).render_output(reload=True).answer_text
    assert r"\(\mathbf{Q}\)" in answer


def test_an_edited_answer_updates_in_place_and_keeps_every_review(seed_tree, tmp_path, collection):
    import_package(collection, build_tree(seed_tree, tmp_path / "v1", NOW))
    study_all(collection)
    before = card_states(collection)
    assert all(state[6] == 1 for state in before.values()), "every card was reviewed once"

    source = seed_tree / DECK
    text = source.read_text(encoding="utf-8")
    edited = text.replace(
        "It is derived from the input embeddings through a linear transformation.",
        "It is a learned projection of the input embeddings.",
    )
    assert edited != text
    source.write_text(edited, encoding="utf-8")
    log = import_package(collection, build_tree(seed_tree, tmp_path / "v2", NOW + 60))

    assert log.new == 0 and log.conflicting == 0
    notes = notes_by_guid(collection)
    assert len(notes) == 57
    assert "a learned projection" in notes["d33e3f45-53d6-4d4d-860c-b337569cd772"]["Back"]
    assert card_states(collection) == before


def test_an_unchanged_rebuild_changes_nothing_not_even_a_learners_edit(seed_tree, tmp_path, collection):
    import_package(collection, build_tree(seed_tree, tmp_path / "v1", NOW))
    guid = "f6d632ce-926c-455c-afde-01f5b0b41da9"
    note = notes_by_guid(collection)[guid]
    note["Back"] = note["Back"] + "<p>my own mnemonic</p>"
    collection.update_note(note)
    snapshot = {g: (n.mod, n.fields) for g, n in notes_by_guid(collection).items()}

    log = import_package(collection, build_tree(seed_tree, tmp_path / "v2", NOW + 60))

    assert log.new == 0
    assert {g: (n.mod, n.fields) for g, n in notes_by_guid(collection).items()} == snapshot


def test_a_template_change_reaches_the_learner(seed_tree, tmp_path, collection, monkeypatch):
    import_package(collection, build_tree(seed_tree, tmp_path / "v1", NOW))
    changed = dataclasses.replace(notetype.BASIC, css=notetype.CSS + "\n.db-new-rule { color: red; }\n")
    monkeypatch.setitem(notetype.NOTE_TYPES, notetype.NOTE_TYPE_ID, changed)
    import_package(collection, build_tree(seed_tree, tmp_path / "v2", NOW + 60))
    model = collection.models.by_name(notetype.NOTE_TYPE_NAME)
    assert ".db-new-rule" in model["css"]
    assert [f["name"] for f in model["flds"]] == list(notetype.FIELDS)
