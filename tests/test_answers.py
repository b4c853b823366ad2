"""Answers computed at build time, in both source formats, and stated answers checked."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from conftest import DATA, put, seed
from deckbuild.cli import cli


@pytest.fixture
def run(deck_tree, monkeypatch):
    monkeypatch.chdir(deck_tree.parent)
    return lambda *args: CliRunner().invoke(cli, list(args), prog_name="deckbuild")


def cards(run, *paths):
    result = run("cards", *paths, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_directive_in_a_semicolon_file_becomes_the_answer_with_its_steps(run, deck_tree):
    put(deck_tree, "Deck/directive.txt", DATA / "answers" / "directive.txt")
    first, second = cards(run, "decks")
    assert first["answer"].startswith("[[1.5379, 2.5379]]\n\n1. Scores S = Q Kᵀ: S = [[1, 0]]\n")
    assert "4. Weighted sum of values: output = weights · V = [[1.5379, 2.5379]]" in first["answer"]
    assert second["answer"].startswith("[[0.5, 0.5]]")


def test_a_directive_on_a_quiz_page_works_the_same(run, deck_tree):
    put(deck_tree, "Deck/page.txt", DATA / "answers" / "page_directive.txt")
    (card,) = cards(run, "decks")
    assert card["answer"].startswith("[[1, 2], [2.4621, 3.4621]]\n\n1. Scores S = Q Kᵀ")
    assert "3. Mask: positions marked 0 in [[1, 0], [1, 1]] get weight 0" in card["answer"]


def test_a_directive_with_wrong_shapes_is_an_error_at_its_line(run, deck_tree):
    put(deck_tree, "Deck/bad.txt", DATA / "answers" / "bad_shapes.txt")
    result = run("check", "decks")
    assert result.exit_code == 1
    assert result.stderr == (
        "decks/Deck/bad.txt:2: calc attention: Q (1×2) and K (1×3) need the same number of columns (d_k) "
        "to compare queries with keys; fix the directive's inputs\n1 error(s), 0 warning(s)\n"
    )


def test_a_stated_answer_that_disagrees_is_reported(run, deck_tree):
    put(deck_tree, "Deck/practice.txt", DATA / "answers" / "wrong_practice.txt")
    result = run("check", "decks")
    assert result.exit_code == 1
    assert result.stderr == (
        "decks/Deck/practice.txt:3: the stated answer [[20, 30]] disagrees with the computed attention "
        "output [[10.0003, 20.0003]]; fix the answer or its inputs\n"
        "decks/Deck/practice.txt: 1 new id(s), 0 re-matched id(s)\n"
        "1 error(s), 0 warning(s)\n"
    )


def test_seed_001_practice_3_is_verified_and_seed_004_problem_1_computed(run, deck_tree):
    put(deck_tree, "A/001.txt", seed("001"))
    put(deck_tree, "B/004.txt", seed("004"))
    result = run("check", "decks")
    assert result.exit_code == 0
    assert result.stdout == "ok: 20 card(s) checked; 1 answer(s) computed, 1 stated answer(s) verified\n"
    challenge = next(c for c in cards(run, "decks/B") if c["type"] == "Predict Output")
    assert challenge["answer"] == "[[1.4793, 2.4793]]"
    assert [s["title"] for s in challenge["solution"]][-1] == "Step 4: Weighted sum of values"
