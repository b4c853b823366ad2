"""More than one note type: reversed cards, and a card that keeps its note type for life."""

from __future__ import annotations

import json

from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from ankihelp import card_states, import_package, notes_by_guid, study_all, visible_text
from conftest import put
from deckbuild.build import build
from deckbuild.cli import cli
from deckbuild.notetype import BASIC, BY_LABEL, NOTE_TYPES, REVERSED

NOW = 1_700_000_000
U1 = "11111111-1111-4111-8111-111111111111"
U2 = "22222222-2222-4222-8222-222222222222"
CHANGED_TYPE = (
    "decks/Deck/cards.txt:3: this card was a basic card and is now a reversed card: Anki cannot change "
    "a note's type on import and would skip it, keeping the old one; to change it, empty its UUID "
    "and run 'deckbuild ids' (the old card is then retired)\n1 error(s), 0 warning(s)\n"
)


def test_note_types_have_fixed_distinct_ids_and_the_basic_one_is_as_shipped():
    assert BASIC.id == 1_573_912_204 and BASIC.name == "deckbuild card"
    # The note type learners have: a change to it is deliberate, as it moves its mod time in every
    # lock (the night-mode highlight of options E and F changed it last).
    assert BASIC.digest == "c413399a0b8f5085"
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
    assert result.stderr == CHANGED_TYPE
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


def test_a_retired_card_back_on_another_note_type_is_refused(deck_tree, tmp_path, collection, monkeypatch):
    monkeypatch.chdir(deck_tree.parent)
    path = _tree(deck_tree, reverse_second="")
    text = path.read_text()
    assert CliRunner().invoke(cli, ["build", "decks"]).exit_code == 0
    import_package(collection, deck_tree.parent / "dist" / "Deck.apkg")
    path.write_text(text.replace(f"Capital of France?;Paris;;{U2}\n", ""))
    assert f"retired card {U2}" in CliRunner().invoke(cli, ["build", "decks"]).stderr
    import_package(collection, deck_tree.parent / "dist" / "Deck.apkg")
    lock = (deck_tree / "deckbuild.lock").read_bytes()
    path.write_text(text.replace(f";;{U2}", f";yes;{U2}"))
    result = CliRunner().invoke(cli, ["build", "decks"])
    assert result.exit_code == 1
    assert result.stderr == CHANGED_TYPE
    assert (deck_tree / "deckbuild.lock").read_bytes() == lock
    # What it stops: without the lock's word, Anki would skip the note and the learner keep it retired.
    (deck_tree / "deckbuild.lock").unlink()
    assert CliRunner().invoke(cli, ["build", "decks", "-o", str(tmp_path / "unlocked")]).exit_code == 0
    assert import_package(collection, tmp_path / "unlocked" / "Deck.apkg").conflicting == 1
    assert "deckbuild::retired" in notes_by_guid(collection)[U2].tags


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


def _changed_type_reference(cards, locks):
    """Which cards the note type check refuses, by its rule written out whole for every card."""
    from deckbuild.notetype import BY_LABEL as by_label

    refused = []
    for parsed in cards:
        entry = locks[parsed.source.root].notes.get(parsed.id)
        if entry is None or (parsed.kept and parsed.kept_fields is None):
            continue
        if (entry.notetype or "basic") != NOTE_TYPES[parsed.notetype].label:
            assert (entry.notetype or "basic") in by_label or entry.notetype.startswith("anki:")
            refused.append(parsed.line)
    return refused


def _typed_cards(rows):
    """Cards of the given note types in three files, and a lock naming each as the row says."""
    from pathlib import Path

    from deckbuild.build import Parsed
    from deckbuild.lock import Entry, Lock
    from deckbuild.memo import Rendered
    from deckbuild.sources import SourceFile

    root = Path("/tmp/deck-root")
    files = [SourceFile(root / f"{n}.txt", root, "Deck", "Deck") for n in range(3)]
    lock = Lock(root / "deckbuild.lock")
    cards = []
    for line, (nid, label, kept, file, same) in enumerate(rows, 2):
        guid = f"{line:08d}-1111-4111-8111-111111111111"
        if label == "retired":
            lock.notes[guid] = Entry("h", 1, deck="Deck", fields=[""] * 15, tags=[])
        elif label != "missing":
            # The lock names the basic note type by no label; "basic" written out means it too.
            named = {"basic": None, "written basic": "basic"}.get(label, label)
            lock.notes[guid] = Entry("h", 1, origin=f"{file}.txt", notetype=named)
        parsed = Parsed(files[file], line, guid, (), {"origin": f"{file}.txt"}, notetype=nid)
        parsed.rendered = Rendered([""] * len(NOTE_TYPES[nid].fields), "h" if same else "changed")
        parsed.kept = "Kept" if kept else None
        cards.append(parsed)
    return cards, {root: lock}


@given(
    st.lists(
        st.tuples(
            st.sampled_from(sorted(NOTE_TYPES)),
            st.sampled_from(["missing", "retired", "written basic", *sorted(BY_LABEL), "anki:123"]),
            st.booleans(),
            st.integers(0, 2),
            st.booleans(),
        ),
        max_size=12,
    )
)
def test_the_note_type_check_skips_per_card_work_only_where_the_full_rule_passes(rows):
    # Each card is checked against its lock entry only when the label there differs from its own
    # note type's, on its own or on the way as the cards are stamped: the rule written out whole
    # for every card must refuse exactly the same cards, with the same messages either way.
    from pathlib import Path

    from deckbuild.build import Collection, _Build
    from deckbuild.errors import Report
    from deckbuild.record import Release

    found = []
    for check in (_Build.check_notetypes, _Build.add_all):
        cards, locks = _typed_cards(rows)
        report = Report()
        check(
            _Build(list(locks), Path("/tmp/out"), NOW, (), Release(), report=report),
            Collection(cards, locks, report),
        )
        found.append(report.problems)
        assert [p.line for p in report.problems] == _changed_type_reference(*_typed_cards(rows))
    assert found[0] == found[1]


def test_check_refuses_a_changed_note_type_as_build_does(deck_tree, monkeypatch):
    monkeypatch.chdir(deck_tree.parent)
    path = _tree(deck_tree, reverse_second="")
    assert CliRunner().invoke(cli, ["build", "decks"]).exit_code == 0
    path.write_text(path.read_text().replace(f";;{U2}", f";yes;{U2}"))
    result = CliRunner().invoke(cli, ["check", "decks"])
    assert (result.exit_code, result.stderr) == (1, CHANGED_TYPE)


def test_the_right_option_is_highlighted_for_every_letter_in_either_night_mode():
    # AnkiDroid and older desktops mark night mode `.night_mode`, newer ones `.nightMode`.
    from deckbuild.notetype import NOTE_TYPE_ID, NOTE_TYPES

    css = NOTE_TYPES[NOTE_TYPE_ID].css
    for mode in (".nightMode", ".night_mode"):
        for letter in "ABCDEF":
            assert f"{mode} .db-correct-{letter} .db-opt-{letter}" in css, (mode, letter)
    day = css.split(".nightMode .db-correct-A")[0]
    for letter in "ABCDEF":
        assert f".db-correct-{letter} .db-opt-{letter}" in day, letter
