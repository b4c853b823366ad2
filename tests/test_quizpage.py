"""The quiz-page reader, on the four page seeds as they came and on a page of another topic."""

from __future__ import annotations

import ast
import json
from collections import Counter

import pytest
from click.testing import CliRunner

from conftest import DATA, put, seed
from deckbuild.cli import cli
from deckbuild.errors import Report
from deckbuild.readers import quizpage


def read(path):
    report = Report()
    lines = path.read_text(encoding="utf-8").split("\n")
    return quizpage.read(path.name, lines, report), report


def cards_json(path, monkeypatch):
    monkeypatch.chdir(path.parent)
    result = CliRunner().invoke(cli, ["cards", path.name, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.stderr


@pytest.mark.parametrize(
    ("name", "kinds"),
    [
        ("000", {"recall": 5, "quiz": 5, "open": 2}),
        ("001", {"recall": 5, "quiz": 5, "open": 2, "practice": 3}),
        ("002", {"recall": 5, "quiz": 5, "open": 2}),
        ("004", {"challenge": 5}),
    ],
)
def test_cards_json_gives_every_card_of_each_seed(name, kinds, monkeypatch):
    cards, _ = cards_json(seed(name), monkeypatch)
    assert Counter(c["kind"] for c in cards) == kinds
    assert len({c["id"] for c in cards}) == len(cards)
    assert all(c["source"].startswith(f"{seed(name).name}:") for c in cards)


def test_seed_001_quizzes_keep_four_options_and_infer_only_clear_answers(monkeypatch):
    cards, stderr = cards_json(seed("001"), monkeypatch)
    quizzes = [c for c in cards if c["kind"] == "quiz"]
    assert [len(q["options"]) for q in quizzes] == [4, 4, 4, 4, 4]
    assert quizzes[0]["options"][0] == {"letter": "A", "text": "The information used to compare with keys"}
    assert [q["correct"] for q in quizzes] == ["A", "D", "C", "B", "A"]
    assert all(q["correct_inferred"] for q in quizzes)
    assert "001_aaf2eeed6736086d.txt: 5 of 5 quiz answers inferred from the explanations" in stderr


def test_seed_001_practice_has_steps_answers_and_reports_the_truncated_item(monkeypatch):
    cards, stderr = cards_json(seed("001"), monkeypatch)
    practice = [c for c in cards if c["kind"] == "practice"]
    assert [p["correct"] for p in practice] == ["C", "A", "A"]
    assert [p["level"] for p in practice] == ["easy", "easy", "medium"]
    third = practice[2]
    assert third["answer"] == "[[10, 20]]"
    assert third["solution"][0]["title"] == "Step 1: Calculate dot products Q x K^T"
    assert third["hint"] == "Calculate dot, softmax, then weighted sum of values"
    assert third["mistakes"][0] == "Skipping softmax normalization"
    assert stderr.splitlines()[:2] == [
        "001_aaf2eeed6736086d.txt:67: warning: the page announces 5 practice questions but holds 4; "
        "1 missing: copy the whole page",
        "001_aaf2eeed6736086d.txt:133: warning: practice question 4 is incomplete (no difficulty; the "
        "copied text stops inside it); it was not packaged: copy the whole page",
    ]


def test_lost_options_make_a_question_to_explanation_card(monkeypatch):
    cards, _ = cards_json(seed("000"), monkeypatch)
    quiz = next(c for c in cards if c["kind"] == "quiz")
    assert quiz["options"] == [] and quiz["correct"] is None
    assert quiz["answer"] == "The Query vector represents what the model is trying to focus on in the input."


def test_recall_and_open_cards_drop_the_page_chrome(monkeypatch):
    cards, _ = cards_json(seed("001"), monkeypatch)
    recall = cards[0]
    assert (recall["kind"], recall["level"], recall["source"]) == (
        "recall",
        "beginner",
        "001_aaf2eeed6736086d.txt:6",
    )
    assert "level::beginner" in recall["tags"]
    texts = json.dumps(cards)
    for chrome in ("Click to reveal answer", "Jump into concepts", "Test this pattern", "✗ Incorrect"):
        assert chrome not in texts
    opened = [c for c in cards if c["kind"] == "open"]
    assert opened[0]["concepts"] == 5
    assert opened[0]["hint"] == "Think about how the model decides what to focus on."


def test_seed_004_challenges_have_valid_python_and_a_category_tag(monkeypatch):
    cards, _ = cards_json(seed("004"), monkeypatch)
    assert [c["type"] for c in cards] == [
        "Predict Output",
        "Conceptual",
        "Hyperparameter",
        "Metrics",
        "Debug",
    ]
    assert (cards[0]["level"], cards[0]["time_limit"]) == ("intermediate", "2:00")
    first, last = cards[0], cards[4]
    assert "topic::NLP" in first["tags"] and "NLP" not in first["code"]
    assert first["code"].splitlines()[:3] == [
        "import torch",
        "import torch.nn.functional as F",
        "query = torch.tensor([[1.0, 0.0, 1.0]]) # shape (1, 3)",
    ]
    assert "    return output" in last["code"].splitlines()
    for card in (first, last):
        ast.parse(card["code"])
    assert all(c["attempts"] == 2 and c["hint"] and c["explanation"] for c in cards)
    assert all("code" not in c or c["code"] is None for c in cards[1:4])


def test_a_page_of_another_topic_reads_by_the_same_rules():
    cards, report = read(DATA / "quizpage" / "other_topic.txt")
    assert [c.kind for c in cards] == [
        "recall",
        "recall",
        "quiz",
        "quiz",
        "open",
        "practice",
        "practice",
        "challenge",
    ]
    assert "level" not in cards[1].data
    explicit, unclear = cards[2].data, cards[3].data
    assert (explicit["correct"], explicit["answer"]) == (
        "A",
        "The target, if present, lies between lo and hi",
    )
    assert "correct" not in unclear, "an explanation that names no option must not invent one"
    assert [c.data["correct"] for c in cards[5:7]] == ["C", "B"]
    challenge = cards[7].data
    assert challenge["code"].splitlines()[-1] == "    return lo"
    assert report.problems == []
    assert report.notes == ["other_topic.txt: 1 of 2 quiz answers inferred from the explanations"]


def test_a_page_cut_inside_an_item_warns_and_keeps_the_complete_ones():
    cards, report = read(DATA / "quizpage" / "truncated_recall.txt")
    assert [c.data["question"] for c in cards] == ["What is a hash table?"]
    assert [str(p) for p in report.problems] == [
        "truncated_recall.txt:6: warning: incomplete item at the end of this section (the copied "
        "text stops inside it); it was not packaged: copy the whole page"
    ]
    assert report.counts["incomplete"] == 1


def test_text_that_belongs_to_no_card_is_reported_not_dropped():
    cards, report = read(DATA / "quizpage" / "stray_text.txt")
    assert len(cards) == 2
    assert [str(p) for p in report.problems] == [
        "stray_text.txt:6: warning: unrecognised text 'Share this page with a friend' ignored; "
        "is it part of a card?"
    ]


def test_build_reports_the_truncated_item_in_its_counts(deck_tree, tmp_path, monkeypatch):
    put(deck_tree, "Attention/001.txt", seed("001"))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["build", "decks"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "15 card(s) read, 15 packaged, 0 skipped, 1 incomplete"
