"""More than one note type: reversed cards, and a card that keeps its note type for life."""

from __future__ import annotations

import json

from click.testing import CliRunner

from ankihelp import card_states, import_package, notes_by_guid, study_all, visible_text
from conftest import put
from deckbuild.build import build
from deckbuild.cli import cli
from deckbuild.notetype import BASIC, NOTE_TYPES, REVERSED

NOW = 1_700_000_000
U1 = "11111111-1111-4111-8111-111111111111"
U2 = "22222222-2222-4222-8222-222222222222"


def test_note_types_have_fixed_distinct_ids_and_the_basic_one_is_as_shipped():
    assert BASIC.id == 1_573_912_204 and BASIC.name == "deckbuild card"
    assert BASIC.digest == "3f4af9587d314eab"  # the note type learners have: never changes
    assert len({nt.id for nt in NOTE_TYPES.values()}) == len(NOTE_TYPES)
    assert REVERSED.fields == BASIC.fields and REVERSED.templates[0] == BASIC.templates[0]


def _tree(deck_tree, reverse_second: str = "yes"):
    return put(
        deck_tree,
        "Deck/cards.txt",
        f"Question;Answer;Reverse;UUID\nWhat is softmax?;A normalised exponential;;{U1}\n"
        f"Capital of France?;Paris;{reverse_second};{U2}\n",
    )


def test_a_reversed_row_gives_both_directions_and_updates_in_place(deck_tree, tmp_path, collection):
    path = _tree(deck_tree)
    first = build([deck_tree], tmp_path / "dist", now=NOW)
    assert import_package(collection, first.packages[0]).new == 2
    notes = notes_by_guid(collection)
    assert notes[U1].note_type()["name"] == "deckbuild card" and len(notes[U1].cards()) == 1
    reversed_note = notes[U2]
    assert reversed_note.note_type()["name"] == "deckbuild card and reversed"
    forward, backward = sorted(reversed_note.cards(), key=lambda c: c.ord)
    assert "Capital of France?" in visible_text(forward.question())
    assert "Paris" in visible_text(backward.question()) and "Capital" not in visible_text(backward.question())
    assert "Capital of France?" in visible_text(backward.answer())
    lock = json.loads((deck_tree / "deckbuild.lock").read_text())
    assert lock["notes"][U2]["notetype"] == "reversed" and "notetype" not in lock["notes"][U1]
    assert set(lock["notetypes"]) == {str(BASIC.id), str(REVERSED.id)}
    study_all(collection)
    before = card_states(collection)
    path.write_text(path.read_text().replace("Paris", "Paris, on the Seine"))
    second = build([deck_tree], tmp_path / "dist", now=NOW + 100)
    result = import_package(collection, second.packages[0])
    assert (result.new, result.updated, result.conflicting) == (0, 1, 0)
    assert "Seine" in notes_by_guid(collection)[U2]["Back"]
    assert card_states(collection) == before


def test_anki_skips_a_note_whose_type_changed_so_deckbuild_refuses_it(deck_tree, tmp_path, collection):
    _tree(deck_tree, reverse_second="")
    import_package(collection, build([deck_tree], tmp_path / "one", now=NOW).packages[0])
    # Without the lock (which remembers each card's note type) nothing stops the change: Anki
    # then skips the note as conflicting, and the learner silently keeps the old card.
    (deck_tree / "deckbuild.lock").unlink()
    _tree(deck_tree, reverse_second="yes")
    result = import_package(collection, build([deck_tree], tmp_path / "two", now=NOW + 100).packages[0])
    assert result.conflicting == 1
    assert notes_by_guid(collection)[U2].note_type()["name"] == "deckbuild card"


def test_changing_a_cards_note_type_is_an_error_at_its_line(deck_tree, monkeypatch):
    monkeypatch.chdir(deck_tree.parent)
    path = _tree(deck_tree, reverse_second="")
    assert CliRunner().invoke(cli, ["build", "decks"]).exit_code == 0
    lock = (deck_tree / "deckbuild.lock").read_bytes()
    path.write_text(path.read_text().replace(f";;{U2}", f";yes;{U2}"))
    result = CliRunner().invoke(cli, ["build", "decks"])
    assert result.exit_code == 1
    assert result.stderr == (
        "decks/Deck/cards.txt:3: this card was a basic card and is now a reversed card: Anki cannot change "
        "a note's type on import and would skip it, keeping the old one; to change it, empty its UUID "
        "and run 'deckbuild ids' (the old card is then retired)\n1 error(s), 0 warning(s)\n"
    )
    assert (deck_tree / "deckbuild.lock").read_bytes() == lock


def test_a_new_uuid_retires_the_old_card_and_ships_the_new_type(deck_tree, tmp_path, collection, monkeypatch):
    monkeypatch.chdir(deck_tree.parent)
    path = _tree(deck_tree, reverse_second="")
    assert CliRunner().invoke(cli, ["build", "decks"]).exit_code == 0
    import_package(collection, deck_tree.parent / "dist" / "Deck.apkg")
    path.write_text(path.read_text().replace(f";;{U2}", ";yes;"))
    assert CliRunner().invoke(cli, ["ids", "decks"]).exit_code == 0
    result = CliRunner().invoke(cli, ["build", "decks"])
    assert result.exit_code == 0, result.output
    assert f"retired card {U2}" in result.stderr
    imported = import_package(collection, deck_tree.parent / "dist" / "Deck.apkg")
    assert (imported.new, imported.conflicting) == (1, 0)
    notes = notes_by_guid(collection)
    assert "deckbuild::retired" in notes[U2].tags
    (new,) = [n for g, n in notes.items() if g not in (U1, U2)]
    assert new.note_type()["name"] == "deckbuild card and reversed" and len(new.cards()) == 2


def test_a_bad_reverse_value_is_named(deck_tree, monkeypatch):
    monkeypatch.chdir(deck_tree.parent)
    _tree(deck_tree, reverse_second="maybe")
    result = CliRunner().invoke(cli, ["check", "decks"])
    assert result.exit_code == 1
    assert result.stderr == (
        "decks/Deck/cards.txt:3: Reverse must be yes or no (or empty), found 'maybe'; fix it\n"
        "1 error(s), 0 warning(s)\n"
    )


def test_the_preview_shows_both_directions_of_a_reversed_card(deck_tree, tmp_path):
    from deckbuild.preview import write_preview

    _tree(deck_tree)
    assert write_preview([deck_tree], tmp_path / "preview").cards == 2
    page = (tmp_path / "preview" / "index.html").read_text()
    assert page.count(f'id="{U2}"') == 2 and page.count(f'id="{U1}"') == 1
    assert "reversed front · " in page and "card front · " in page


def test_a_template_added_to_the_basic_note_type_would_make_anki_skip_learners_notes(
    deck_tree, tmp_path, collection, monkeypatch
):
    """Why reversed cards have a note type of their own, shown in Anki."""
    import dataclasses

    from deckbuild import notetype

    _tree(deck_tree, reverse_second="")
    import_package(collection, build([deck_tree], tmp_path / "one", now=NOW).packages[0])
    widened = dataclasses.replace(notetype.BASIC, templates=REVERSED.templates)
    monkeypatch.setitem(notetype.NOTE_TYPES, notetype.NOTE_TYPE_ID, widened)
    (deck_tree / "Deck" / "cards.txt").write_text(
        (deck_tree / "Deck" / "cards.txt").read_text().replace("Paris", "Paris, France")
    )
    result = import_package(collection, build([deck_tree], tmp_path / "two", now=NOW + 100).packages[0])
    assert (result.conflicting, result.updated) == (2, 0)  # every note of that type skipped
    assert "France" not in notes_by_guid(collection)[U2]["Back"]
