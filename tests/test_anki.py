"""Built packages imported into a real Anki collection, the way a learner's Anki does it."""

from __future__ import annotations

import dataclasses
import json
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


def test_a_template_change_taken_back_with_the_lock_reaches_the_learner(
    seed_tree, tmp_path, collection, monkeypatch
):
    # (No cache: a note type changed in this process is no new version of deckbuild to it.)
    # The lock taken back to before the change has the note type's older mod time: Anki would
    # keep the learner's newer note type, unless the build moves its mod past it.
    dist = tmp_path / "dist"
    import_package(collection, build([seed_tree], dist, now=NOW, use_cache=False).packages[0])
    before = (seed_tree / "deckbuild.lock").read_bytes()
    with monkeypatch.context() as patch:
        changed = dataclasses.replace(notetype.BASIC, css=notetype.CSS + "\n.db-new-rule { color: red; }\n")
        patch.setitem(notetype.NOTE_TYPES, notetype.NOTE_TYPE_ID, changed)
        import_package(collection, build([seed_tree], dist, now=NOW + 60, use_cache=False).packages[0])
    assert ".db-new-rule" in collection.models.by_name(notetype.NOTE_TYPE_NAME)["css"]
    (seed_tree / "deckbuild.lock").write_bytes(before)  # git revert
    reverted = build([seed_tree], dist, now=NOW + 120, use_cache=False)
    assert [n.split(f"{seed_tree.parent}/")[-1] for n in reverted.report.notes if "package ships" in n] == [
        "decks/deckbuild.lock: 1 note type(s) differ from the newer notes an earlier package ships (a "
        "revert, or an older commit checked out?): given newer mod times, so that learners who imported "
        "it get them"
    ]
    import_package(collection, reverted.packages[0])
    collection.models._clear_cache()
    assert ".db-new-rule" not in collection.models.by_name(notetype.NOTE_TYPE_NAME)["css"]
    # And once the lock keeps that, nothing moves on.
    lock = (seed_tree / "deckbuild.lock").read_bytes()
    build([seed_tree], dist, now=NOW + 180, use_cache=False)
    assert (seed_tree / "deckbuild.lock").read_bytes() == lock


MOVED = "Transformers/Moved Here/003.txt"
EDITED_GUID = "d33e3f45-53d6-4d4d-860c-b337569cd772"
LEARNERS_GUID = "f6d632ce-926c-455c-afde-01f5b0b41da9"


def deck_of(col, guid):
    return col.decks.name(col.get_card(notes_by_guid(col)[guid].card_ids()[0]).did)


def test_a_moved_file_restamps_no_unchanged_note_and_anki_keeps_the_old_deck(
    seed_tree, tmp_path, collection, monkeypatch
):
    monkeypatch.chdir(seed_tree)
    import_package(collection, build_tree(seed_tree, tmp_path / "v1", NOW))
    study_all(collection)
    note = notes_by_guid(collection)[LEARNERS_GUID]
    note["Back"] = note["Back"] + "<p>my own mnemonic</p>"
    note.add_tag("mine")
    collection.update_note(note)
    lock_before = json.loads((seed_tree / "deckbuild.lock").read_text(encoding="utf-8"))["notes"]
    states = card_states(collection)

    # Move the file to another folder (another deck), and edit one card on the way.
    (seed_tree / MOVED).parent.mkdir(parents=True)
    (seed_tree / DECK).rename(seed_tree / MOVED)
    text = (seed_tree / MOVED).read_text(encoding="utf-8")
    (seed_tree / MOVED).write_text(
        text.replace("through a linear transformation.", "through a learned projection."), encoding="utf-8"
    )
    result = build([seed_tree], tmp_path / "v2", now=NOW + 60)
    lock_after = json.loads((seed_tree / "deckbuild.lock").read_text(encoding="utf-8"))["notes"]
    restamped = {g for g in lock_after if lock_after[g]["mod"] != lock_before[g]["mod"]}
    assert restamped == {EDITED_GUID}, "only the edited card's mod moves"
    assert all(e["origin"] == MOVED for e in lock_after.values())
    moved = [n for n in result.report.notes if "moved" in n]
    old, new = "Transformers::Attention and Encoder", "Transformers::Moved Here"
    assert moved == [
        f"{MOVED}: 57 card(s) moved here from {DECK}; they keep their ids, reviews and mod times (only the "
        "Source field and source:: tag differ, which learners get with the next change to each card)",
        f'{MOVED}: these 57 card(s) moved from deck "{old}" to "{new}", but Anki keeps cards it already has '
        f'in their old deck: tell learners to search deck:"{old}" -deck:"{old}::*" in the Browser, select '
        f'the cards and use Change Deck to move them to "{new}" (new learners get the new deck)',
    ]
    log = import_package(collection, result.packages[0])

    assert log.new == 0 and log.conflicting == 0
    notes = notes_by_guid(collection)
    assert len(notes) == 57
    assert (
        notes[LEARNERS_GUID]["Back"].endswith("<p>my own mnemonic</p>")
        and "mine" in notes[LEARNERS_GUID].tags
    )
    assert "learned projection" in notes[EDITED_GUID]["Back"]
    # What Anki does with decks: an import never moves a card it has, updated or not.
    assert (
        deck_of(collection, EDITED_GUID)
        == deck_of(collection, LEARNERS_GUID)
        == ("Transformers::Attention and Encoder")
    )
    assert card_states(collection) == states
    # A new learner gets the new deck.
    from anki.collection import Collection

    fresh = Collection(str(tmp_path / "fresh.anki2"))
    try:
        import_package(fresh, result.packages[0])
        assert deck_of(fresh, LEARNERS_GUID) == "Transformers::Moved Here"
    finally:
        fresh.close()
    # The search the note gives selects the moved cards, and no card of a deck below theirs.
    below = collection.new_note(collection.models.by_name("Basic"))
    below["Front"] = "a card of a subdeck"
    collection.add_note(below, collection.decks.id(f"{old}::Below"))
    assert len(collection.find_cards(f'deck:"{old}"')) == 58
    assert len(collection.find_cards(f'deck:"{old}" -deck:"{old}::*"')) == 57


@pytest.mark.parametrize("lock_lost", [False, True])
def test_a_uuid_whose_case_changed_keeps_the_spelling_learners_have(
    seed_tree, tmp_path, collection, monkeypatch, lock_lost
):
    # With the lock lost too, the last release's package (--previous) still has the spelling.
    monkeypatch.chdir(seed_tree)
    import_package(collection, build_tree(seed_tree, tmp_path / "v1", NOW))
    study_all(collection)
    states = card_states(collection)
    source = seed_tree / DECK
    source.write_text(
        source.read_text(encoding="utf-8").replace(LEARNERS_GUID, LEARNERS_GUID.upper()), encoding="utf-8"
    )
    if lock_lost:
        (seed_tree / "deckbuild.lock").unlink()
    result = build(
        [seed_tree], tmp_path / "v2", now=NOW + 60, previous=[tmp_path / "v1"] if lock_lost else []
    )
    warnings = [str(p) for p in result.report.warnings if "case" in p.message]
    line = next(
        n
        for n, x in enumerate(source.read_text(encoding="utf-8").splitlines(), 1)
        if LEARNERS_GUID.upper() in x
    )
    assert warnings == [
        f"{DECK}:{line}: warning: UUID {LEARNERS_GUID.upper()} differs only in case from {LEARNERS_GUID}, "
        "the id learners already have (Anki would make it a second card); kept "
        f"{LEARNERS_GUID}: write it that way in the source"
    ]
    log = import_package(collection, result.packages[0])
    assert log.new == 0
    assert sorted(notes_by_guid(collection)) == sorted(
        json.loads((seed_tree / "deckbuild.lock").read_text())["notes"]
    )
    assert not collection.find_notes("tag:deckbuild::retired")
    assert card_states(collection) == states


PAGE = "Transformers/Self-Attention/000.txt"


@pytest.mark.parametrize(
    "new_name", ["Transformers/Self-Attention/self attention quiz.txt", "Elsewhere/000.txt"]
)
def test_a_renamed_or_moved_quiz_page_keeps_every_guid_and_review(deck_tree, tmp_path, collection, new_name):
    put(deck_tree, PAGE, seed("000"))
    put(deck_tree, DECK, seed("003"))
    for apkg in build([deck_tree], tmp_path / "v1", now=NOW).packages:
        import_package(collection, apkg)
    study_all(collection)
    states, guids = card_states(collection), sorted(notes_by_guid(collection))

    (deck_tree / new_name).parent.mkdir(parents=True, exist_ok=True)
    (deck_tree / PAGE).rename(deck_tree / new_name)
    result = build([deck_tree], tmp_path / "v2", now=NOW + 60)
    assert any("a renamed or moved" in n and "12 question(s) in common" in n for n in result.report.notes)
    assert "retired" not in result.report.counts
    for apkg in result.packages:
        log = import_package(collection, apkg)
        assert log.new == 0 and log.conflicting == 0
    assert sorted(notes_by_guid(collection)) == guids
    assert not collection.find_notes("tag:deckbuild::retired")
    assert card_states(collection) == states


def test_a_deck_folder_renamed_in_case_only_leaves_learners_their_deck(seed_tree, tmp_path, collection):
    # Anki tells decks apart without case: no card is to be moved, and no deck appears.
    import_package(collection, build_tree(seed_tree, tmp_path / "v1", NOW))
    decks_before = sorted(d.name for d in collection.decks.all_names_and_ids())
    folder = seed_tree / "Transformers" / "Attention and Encoder"
    folder.rename(folder.with_name("attention and encoder"))
    result = build([seed_tree], tmp_path / "v2", now=NOW + 60)
    spelled = [
        n.split(f"{seed_tree}/")[-1] for n in result.report.notes if "spelled" in n or "Change Deck" in n
    ]
    assert spelled == [
        'Transformers/attention and encoder/003.txt: deck "Transformers::Attention and Encoder" is now '
        'spelled "Transformers::attention and encoder"; Anki takes them for one deck, so learners keep '
        "theirs as they spell it (they may rename it)"
    ]
    import_package(collection, result.packages[0])
    assert sorted(d.name for d in collection.decks.all_names_and_ids()) == decks_before


@pytest.mark.parametrize("name", ["Old_1", "Old*", 'Say "hi"', "Back\\slash"])
def test_the_search_for_a_moved_deck_selects_that_deck_alone_whatever_its_name(collection, name):
    # In Anki's search `_` and `*` are wildcards: deck:"T::Old_1" would select T::Old21 too.
    from deckbuild.build import _searched

    for deck in (f"T::{name}", "T::Old21", "T::OldX", f"T::{name}::Below"):
        note = collection.new_note(collection.models.by_name("Basic"))
        note["Front"] = deck
        collection.add_note(note, collection.decks.id(deck))
    found = collection.find_cards(f'deck:"T::{_searched(name)}" -deck:"T::{_searched(name)}::*"')
    assert [collection.get_card(c).note()["Front"] for c in found] == [f"T::{name}"]


def test_a_deck_whose_name_no_search_finds_is_to_be_clicked_in_the_sidebar(seed_tree, tmp_path):
    # Anki's search finds no deck by a no-break space in its name.
    old = seed_tree / "Transformers" / "Ol\u00a0d"
    old.mkdir()
    put(
        seed_tree,
        "Transformers/Ol\u00a0d/x.txt",
        "Question;Answer;UUID\nQ?;A.;aaaaaaaa-0000-4000-8000-0000000000aa\n",
    )
    build_tree(seed_tree, tmp_path / "v1", NOW)
    (old / "x.txt").rename(seed_tree / "Transformers" / "Attention and Encoder" / "x.txt")
    notes = build([seed_tree], tmp_path / "v2", now=NOW + 60).report.notes
    assert any('click deck "Transformers::Ol\u00a0d" in the Browser\'s sidebar' in note for note in notes), (
        notes
    )
