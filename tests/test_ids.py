"""Cards from quiz pages get an id on their first build and keep it through edits."""

from __future__ import annotations

import json

import pytest

from conftest import put, seed
from deckbuild.build import build, collect

PAGE = "Attention/000.txt"
FIRST = "What is the main purpose of the self-attention mechanism in neural networks?"


@pytest.fixture
def page(deck_tree):
    return put(deck_tree, PAGE, seed("000"))


def ids(root):
    return {c.card.question: c.card.id for c in collect([root]).cards}


def lock_notes(root):
    return json.loads((root / "deckbuild.lock").read_text(encoding="utf-8"))["notes"]


def test_first_build_gives_every_card_an_id_kept_in_the_lock(deck_tree, page, tmp_path):
    result = build([deck_tree], tmp_path / "out", now=1000)
    assert any(n.endswith("000.txt: 12 new id(s), 0 re-matched id(s)") for n in result.report.notes)
    entries = lock_notes(deck_tree)
    assert len(entries) == 12
    entry = entries[ids(deck_tree)[FIRST]]
    assert (entry["origin"], entry["kind"]) == (PAGE, "recall")


def test_an_unchanged_page_changes_nothing(deck_tree, page, tmp_path):
    build([deck_tree], tmp_path / "a", now=1000)
    lock = (deck_tree / "deckbuild.lock").read_bytes()
    again = build([deck_tree], tmp_path / "b", now=2000)
    assert again.report.notes == [] and again.lock_changed == []
    assert (deck_tree / "deckbuild.lock").read_bytes() == lock


def test_an_edited_question_keeps_its_id_and_others_keep_theirs(deck_tree, page, tmp_path):
    build([deck_tree], tmp_path / "a", now=1000)
    before = ids(deck_tree)
    edited = "What is the main purpose of self-attention in a neural network?"
    page.write_text(page.read_text(encoding="utf-8").replace(FIRST, edited), encoding="utf-8")
    result = build([deck_tree], tmp_path / "b", now=2000)
    after = ids(deck_tree)
    assert after[edited] == before[FIRST]
    assert {q: i for q, i in after.items() if q != edited} == {q: i for q, i in before.items() if q != FIRST}
    assert any(n.endswith("000.txt: 0 new id(s), 1 re-matched id(s)") for n in result.report.notes)
    assert lock_notes(deck_tree)[before[FIRST]]["key"] == edited.lower()


def test_a_new_card_gets_a_new_id_and_no_one_elses(deck_tree, page, tmp_path):
    build([deck_tree], tmp_path / "a", now=1000)
    before = ids(deck_tree)
    added = "beginner\nWhat does softmax return?\nA probability distribution.\nClick to reveal answer\n"
    text = page.read_text(encoding="utf-8").replace(
        "What does the Query vector", added + "What does the Query vector", 1
    )
    page.write_text(text, encoding="utf-8")
    build([deck_tree], tmp_path / "b", now=2000)
    after = ids(deck_tree)
    assert after["What does softmax return?"] not in before.values()
    assert {q: after[q] for q in before} == before


def test_the_same_page_built_fresh_elsewhere_gets_the_same_ids(deck_tree, page, tmp_path):
    other = tmp_path / "other"
    put(other, PAGE, seed("000"))
    assert ids(deck_tree) == ids(other)
