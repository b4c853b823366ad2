"""The quiz-page decks in a real Anki collection: what a learner sees on each kind of card."""

from __future__ import annotations

import html
import json
import re
import time

import pytest

from ankihelp import card_states, import_package, notes_by_guid, study_all, visible_text
from conftest import DATA, put, seed
from deckbuild.build import build, collect

pytestmark = pytest.mark.anki
NOW = int(time.time()) - 10_000


@pytest.fixture
def pages(deck_tree):
    for number, deck in (("000", "Self"), ("001", "Mechanism"), ("002", "Multi"), ("004", "Challenges")):
        put(deck_tree, f"Attention/{deck}/{number}.txt", seed(number))
    return deck_tree


def rendered(col, guid):
    note = notes_by_guid(col)[guid]
    out = col.get_card(note.card_ids()[0]).render_output(reload=True)
    return note, out.question_text, out.answer_text


def code_text(html_text):
    """The text of a card's code block as a learner sees it, indentation included."""
    block = re.search(r"<pre[^>]*>(.*?)</pre>", html_text, re.S)
    assert block, "the card shows a code block"
    return html.unescape(re.sub(r"<[^>]+>", "", block.group(1)))


def by_kind(root, kind):
    return [p.card for p in collect([root]).cards if p.card.kind == kind]


def test_every_page_card_renders_with_what_its_kind_needs(pages, tmp_path, collection):
    (apkg,) = build([pages], tmp_path / "dist", now=NOW).packages
    log = import_package(collection, apkg)
    assert log.new == 5 + 5 + 2 + 5 + 5 + 2 + 3 + 5 + 5 + 2 + 5

    for cid in collection.find_cards(""):
        out = collection.get_card(cid).render_output(reload=True)
        assert visible_text(out.question_text)
        assert len(visible_text(out.answer_text)) > len(visible_text(out.question_text))

    quiz = next(q for q in by_kind(pages, "quiz") if q.question.startswith("What does the 'Query'"))
    _, front, back = rendered(collection, quiz.id)
    assert all(o.text in visible_text(front) for o in quiz.options)
    assert 'class="db-correct-A"' in back and 'class="db-opt db-opt-A"' in back
    assert quiz.explanation and quiz.explanation in visible_text(back)
    assert quiz.explanation not in visible_text(front)

    practice = next(p for p in by_kind(pages, "practice") if p.number == 3)
    _, front, back = rendered(collection, practice.id)
    assert "Step 1: Calculate dot products Q x K^T" in visible_text(back)
    assert "Step 1" not in visible_text(front)
    assert 'class="db-correct-A"' in back

    challenge = next(c for c in by_kind(pages, "challenge") if c.type == "Debug")
    _, front, _ = rendered(collection, challenge.id)
    assert "⏱ 2:30" in front and "<pre" in front
    assert "return output" in visible_text(front)


def test_editing_a_page_question_keeps_its_note_and_reviews(pages, tmp_path, collection):
    import_package(collection, build([pages], tmp_path / "v1", now=NOW).packages[0])
    study_all(collection)
    before = card_states(collection)
    page = pages / "Attention" / "Multi" / "002.txt"
    old = "What is the main idea behind multi-head attention?"
    new = "What is the main idea behind multi-head attention in transformers?"
    guid = next(c.id for c in by_kind(pages, "recall") if c.question == old)
    page.write_text(page.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")

    log = import_package(collection, build([pages], tmp_path / "v2", now=NOW + 60).packages[0])

    assert log.new == 0
    note = notes_by_guid(collection)[guid]
    assert "in transformers?" in note["Front"]
    assert card_states(collection) == before


OTHER_TOPICS = (
    "layer_norm",
    "tokenization_two_pages",
    "rnn_challenges",
    "sql_joins",
    "list_comprehensions",
    "transformer_challenge",
)


def test_pages_of_other_topics_build_and_import_with_every_card(deck_tree, tmp_path, collection):
    expected = {}
    for name in OTHER_TOPICS:
        put(deck_tree, f"Topics/{name}/{name}.txt", DATA / "quizpage" / f"{name}.txt")
        expected[name] = len(
            json.loads((DATA / "quizpage" / f"{name}.expected.json").read_text(encoding="utf-8"))
        )
    assert expected == {
        "layer_norm": 12,
        "tokenization_two_pages": 11,
        "rnn_challenges": 4,
        "sql_joins": 9,
        "list_comprehensions": 8,
        "transformer_challenge": 3,
    }
    (apkg,) = build([deck_tree], tmp_path / "dist", now=NOW).packages
    log = import_package(collection, apkg)
    assert log.new == sum(expected.values())
    for name, count in expected.items():
        assert len(collection.find_cards(f'"deck:Topics::{name}"')) == count

    cards = {c.title: c for c in by_kind(deck_tree, "challenge")}
    _, front, _ = rendered(collection, cards["Shape of a hand-rolled RNN's state"].id)
    assert "\n    def forward(self, xs):\n        h = " in code_text(front), "methods sit inside their class"
    sql = cards["A filter that undoes the outer join"]
    _, front, _ = rendered(collection, sql.id)
    assert sql.code_language == "sql" and "\nLEFT JOIN orders o ON" in code_text(front)
    assert re.search(r'<span style="[^"]*">LEFT</span>', front), "SQL keywords are highlighted as SQL"
    _, _, back = rendered(collection, cards["Attention without the scale"].id)
    assert "[[1.5379, 2.5379]]" in visible_text(back) and "Scale by 1" in visible_text(back)
