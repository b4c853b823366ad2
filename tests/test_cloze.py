"""Cloze notes: one card per number, markers kept through Markdown and the sanitizer, and
edits that update in place with every review kept (checked in Anki's own backend)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from ankihelp import card_states, import_package, notes_by_guid, study_all, visible_text
from conftest import put
from deckbuild.build import build
from deckbuild.cli import cli
from deckbuild.cloze import card_text, numbers, problem, render

NOW = 1_700_000_000
U1 = "11111111-1111-4111-8111-111111111111"
U2 = "22222222-2222-4222-8222-222222222222"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a {{c1::b}} c", None),
        ("{{c1::a {{c2::b}} c}}", None),
        ("{{c2::Paris::city}} and {{c1::x}}", None),
        (r"{{c1::\frac{1}{2} }}", None),
        ("{{c1::open", "the cloze '{{c1::open' never closes; end it with }}"),
        (
            "{{c1:x}}",
            "a cloze with no deletion ('{{c1:x}}'); write a deletion as {{c1::text}} or {{c1::text::hint}}",
        ),
        ("{{c0::x}}", "cloze numbers start at 1, found {{c0::; write {{c1::…}}"),
        (
            r"{{c1::\frac{1}{2}}}",
            "the cloze '{{c1::\\frac{1}{2}}' ends at the first }}, inside its formula; put a space before "
            "the cloze's own closing }} (as Anki's manual says: {{c1::\\frac{1}{2} }})",
        ),
    ],
)
def test_cloze_problems_are_named(text, expected):
    assert problem(text) == expected


def test_markers_survive_whatever_the_renderer_does_around_them():
    assert numbers("{{c3::a}} {{c1::b {{c2::c}} }}") == [1, 2, 3]
    assert render("**{{c1::x::hint}}** {{c2::y}}", lambda t: "<b>" + t.replace("**", "") + "</b>") == (
        "<b>{{c1::x::hint}} {{c2::y}}</b>"
    )


def _cloze_file(deck_tree, text: str, tags: str = "geo"):
    return put(
        deck_tree,
        "Deck/cloze.txt",
        f'Question;Answer;Tags;UUID\n"{text}";Seen on the back;{tags};{U1}\nA plain one?;Yes;;{U2}\n',
    )


def test_a_cloze_note_gives_one_card_per_number_with_the_right_blanks(deck_tree, tmp_path, collection):
    _cloze_file(deck_tree, r"**{{c1::Paris::city}}** is the capital of {{c2::France}}; \( {{c3::x^2}} \)")
    result = build([deck_tree], tmp_path / "dist", now=NOW)
    assert import_package(collection, result.packages[0]).new == 2
    note = notes_by_guid(collection)[U1]
    assert note.note_type()["name"] == "deckbuild cloze"
    assert note["Text"].startswith("<p><strong>{{c1::Paris::city}}</strong>")
    assert r"\( {{c3::x^2}} \)" in note["Text"]
    cards = sorted(note.cards(), key=lambda c: c.ord)
    assert [c.ord for c in cards] == [0, 1, 2]
    first, second, third = (visible_text(c.question()) for c in cards)
    assert "[city]" in first and "Paris" not in first and "France" in first
    assert "[...]" in second and "France" not in second and "Paris" in second
    assert "x^2" not in third
    back = visible_text(cards[0].answer())
    assert "Paris" in back and "Seen on the back" in back
    assert len(notes_by_guid(collection)[U2].cards()) == 1


def test_editing_a_cloze_adding_a_number_and_changing_tags_keep_every_review(deck_tree, tmp_path, collection):
    _cloze_file(deck_tree, "{{c1::Paris}} is in France")
    import_package(collection, build([deck_tree], tmp_path / "one", now=NOW).packages[0])
    study_all(collection)
    before = card_states(collection)
    _cloze_file(deck_tree, "{{c1::Paris}} is on the {{c2::Seine}}", tags="geo europe")
    result = import_package(collection, build([deck_tree], tmp_path / "two", now=NOW + 100).packages[0])
    assert (result.new, result.updated, result.conflicting) == (0, 1, 0)
    note = notes_by_guid(collection)[U1]
    assert "Seine" in note["Text"] and "europe" in note.tags
    after = card_states(collection)
    assert {cid: after[cid] for cid in before} == before  # every review kept
    assert len(note.cards()) == 2  # the new number is a new card
    new_card = next(c for c in note.cards() if c.ord == 1)
    assert "Seine" not in visible_text(new_card.question())


def test_anki_itself_ends_a_cloze_at_the_first_double_brace(collection):
    # Why a formula ending in }} inside a cloze is an error: Anki ends the cloze there, in a
    # formula too, and the front shows a stray brace (outside a formula, both sides break).
    model = collection.models.by_name("Cloze")
    shown = {}
    for text in (r"\( {{c1::\frac{1}{2}}} \)", r"\( {{c1::\frac{1}{2} }} \)", r"{{c1::\frac{1}{2}}}"):
        note = collection.new_note(model)
        note["Text"] = text
        collection.add_note(note, collection.decks.id("Default"))
        card = note.cards()[0]
        shown[text] = (visible_text(card.question()), visible_text(card.answer()))
    assert shown[r"\( {{c1::\frac{1}{2}}} \)"][0] == r"\( [...]} \)"
    assert shown[r"\( {{c1::\frac{1}{2} }} \)"] == (r"\( [...] \)", r"\( \frac{1}{2} \)")
    assert shown[r"{{c1::\frac{1}{2}}}"] == ("[...] }", r"\frac{1}{2 }")  # the cloze holds \frac{1}{2
    assert problem(r"\( {{c1::\frac{1}{2}}} \)") and problem(r"{{c1::\frac{1}{2}}}")
    assert problem(r"\( {{c1::\frac{1}{2} }} \)") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "{{c1::Paris is the capital",
            "the cloze '{{c1::Paris is the capital' never closes; end it with }}",
        ),
        (
            "{{c1:Paris}} is the capital",
            "a cloze with no deletion ('{{c1:Paris}} is the capital'); write a deletion as {{c1::text}} or "
            "{{c1::text::hint}}",
        ),
    ],
)
def test_a_malformed_cloze_is_an_error_at_its_line(text, message, deck_tree, monkeypatch):
    monkeypatch.chdir(deck_tree.parent)
    _cloze_file(deck_tree, text)
    result = CliRunner().invoke(cli, ["build", "decks"])
    assert result.exit_code == 1
    assert result.stderr == f"decks/Deck/cloze.txt:2: {message}\n1 error(s), 0 warning(s)\n"
    assert not (deck_tree.parent / "dist").exists()


def test_a_basic_card_turned_cloze_is_refused_until_it_gets_a_new_uuid(deck_tree, monkeypatch):
    monkeypatch.chdir(deck_tree.parent)
    put(deck_tree, "Deck/cloze.txt", f"Question;Answer;UUID\nParis is in France;Yes;{U1}\n")
    assert CliRunner().invoke(cli, ["build", "decks"]).exit_code == 0
    put(deck_tree, "Deck/cloze.txt", f"Question;Answer;UUID\n{{{{c1::Paris}}}} is in France;;{U1}\n")
    result = CliRunner().invoke(cli, ["build", "decks"])
    assert result.exit_code == 1
    assert "decks/Deck/cloze.txt:2: this card was a basic card and is now a cloze card" in result.stderr


def test_the_preview_shows_each_cloze_card(deck_tree, tmp_path):
    from deckbuild.preview import write_preview

    _cloze_file(deck_tree, "{{c1::Paris::city}} is in {{c2::France}}")
    write_preview([deck_tree], tmp_path / "preview")
    page = (tmp_path / "preview" / "index.html").read_text()
    assert page.count(f'id="{U1}"') == 2
    assert '<span class="cloze">[city]</span> is in France' in page
    assert 'Paris is in <span class="cloze">[...]</span>' in page
    assert 'Paris is in <span class="cloze">France</span>' in page
    assert "{{" not in page


_CLOZE_TEXT = st.lists(
    st.sampled_from(["{{c1::", "{{c2::", "{{c12::", "}}", "::", "{", "}", "a", " ", "\\(", "\\)", "{{c:"]),
    max_size=14,
).map("".join)


@given(_CLOZE_TEXT)
def test_any_text_is_either_a_valid_cloze_or_a_named_problem_and_markers_round_trip(text):
    found = problem(text)
    assert found is None or isinstance(found, str)
    # Whatever the text, the markers come back exactly: a renderer that changes nothing changes nothing.
    assert render(text, lambda t: t) == text
    if found is None:
        for n in numbers(text):
            assert "{{c" not in card_text(text, n, answer=False)


def test_a_malformed_opener_beside_good_clozes_is_named():
    assert problem("{{c1::a}} and {{c2:b}}") == ("a malformed cloze ('{{c2:b}}'); write it as {{c1::text}}")


def test_a_removed_cloze_card_is_retired_in_its_own_note_type(deck_tree, tmp_path, collection, monkeypatch):
    monkeypatch.chdir(deck_tree.parent)
    _cloze_file(deck_tree, "{{c1::Paris}} is in {{c2::France}}")
    assert CliRunner().invoke(cli, ["build", "decks"]).exit_code == 0
    import_package(collection, deck_tree.parent / "dist" / "Deck.apkg")
    study_all(collection)
    before = card_states(collection)
    put(deck_tree, "Deck/cloze.txt", f"Question;Answer;UUID\nA plain one?;Yes;{U2}\n")
    result = CliRunner().invoke(cli, ["build", "decks"])
    assert result.exit_code == 0, result.output
    assert f"retired card {U1} (" in result.stderr
    imported = import_package(collection, deck_tree.parent / "dist" / "Deck.apkg")
    assert imported.conflicting == 0
    note = notes_by_guid(collection)[U1]
    assert note.note_type()["name"] == "deckbuild cloze" and "deckbuild::retired" in note.tags
    assert "Retired" in note["Status"] and "{{c1::Paris}}" in note["Text"]
    assert {cid: card_states(collection)[cid] for cid in before} == before
    # The next build carries it from the lock alone, byte for byte the same.
    first = (deck_tree.parent / "dist" / "Deck.apkg").read_bytes()
    assert CliRunner().invoke(cli, ["build", "decks", "--no-cache"]).exit_code == 0
    assert (deck_tree.parent / "dist" / "Deck.apkg").read_bytes() == first


def test_diff_names_a_cloze_notes_own_fields(deck_tree, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _cloze_file(deck_tree, "{{c1::Paris}} is in France")
    build([deck_tree], tmp_path / "old", now=NOW)
    _cloze_file(deck_tree, "{{c1::Paris}} is on the {{c2::Seine}}")
    build([deck_tree], tmp_path / "new", now=NOW + 100)
    result = CliRunner().invoke(cli, ["diff", "old", "new", "--json"])
    assert result.exit_code == 0, result.output
    assert "BREAKING" not in result.output
    data = json.loads(result.stdout)
    (changed,) = data["changed"]
    assert changed["id"] == U1 and "Text" in changed["fields"]


@pytest.mark.anki
def test_a_cloze_number_taken_out_is_told_with_what_learners_must_do(
    deck_tree, tmp_path, collection, monkeypatch
):
    # Anki never deletes a card on import: the learner keeps c2's card, which now shows an error.
    monkeypatch.chdir(deck_tree.parent)
    _cloze_file(deck_tree, "{{c1::Paris}} is in {{c2::France}}")
    import_package(collection, build([deck_tree], tmp_path / "dist", now=NOW).packages[0])
    _cloze_file(deck_tree, "{{c1::Paris}} is in France")
    result = build([deck_tree], tmp_path / "dist", now=NOW + 60)
    assert result.report.notes == [
        f"{deck_tree.name}/Deck/cloze.txt:2: cloze c2 left this note; learners who have its card keep "
        "it, shown as 'No cloze 2 found on card', until they run Tools → Empty Cards in Anki: tell "
        "them in the release notes"
    ]
    import_package(collection, result.packages[0])
    shown = [visible_text(collection.get_card(c).render_output(reload=True).question_text) for c in
             collection.find_cards("")]  # fmt: skip
    # Anki isolates the number in direction marks.
    shown = [text.replace("\u2068", "").replace("\u2069", "") for text in shown]
    assert any("No cloze 2 found on card" in text for text in shown), "what the note says happens"
    _cloze_file(deck_tree, "{{c1::Paris}} is in {{c1::France}}")  # c1 kept: nothing to tell
    assert build([deck_tree], tmp_path / "dist", now=NOW + 120).report.notes == []
