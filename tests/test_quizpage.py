"""The quiz-page reader, on the four page seeds as they came and on a page of another topic."""

from __future__ import annotations

import ast
import json
import os
import re
from collections import Counter

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from conftest import DATA, put, seed
from deckbuild.cli import cli
from deckbuild.errors import Report
from deckbuild.readers import quizpage
from deckbuild.readers.pycode import MAX_RESTORE_CHARS


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
    # The third asks "Which of these is NOT a benefit…?": its explanation's words tell no answer.
    assert [q["correct"] for q in quizzes] == ["A", "D", None, "B", "A"]
    assert [q["correct_inferred"] for q in quizzes] == [True, True, False, True, True]
    assert "001_aaf2eeed6736086d.txt: 4 of 5 quiz answers inferred from the explanations" in stderr


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


# -- Pages of other topics, read as they come: golden cards and messages -------------------------

GOLDEN = sorted(p.stem for p in (DATA / "quizpage").glob("*.expected.json"))
PAGES = [DATA / "quizpage" / f"{name.removesuffix('.expected')}.txt" for name in GOLDEN]
SEED_PAGES = [seed(n) for n in ("000", "001", "002", "004")]


def test_there_are_golden_pages_on_at_least_four_other_topics():
    assert len(PAGES) >= 4


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_each_page_gives_exactly_its_expected_cards_and_messages(page, tmp_path, monkeypatch):
    """`deckbuild cards --json` on the page equals NAME.expected.json; its stderr NAME.expected.err.

    DECKBUILD_REGEN=1 rewrites the golden files; read every change before committing it.
    """
    copy = tmp_path / page.name
    copy.write_bytes(page.read_bytes())
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["cards", page.name, "--json"])
    assert result.exit_code == 0, result.output
    expected_json = page.with_suffix(".expected.json")
    expected_err = page.with_suffix(".expected.err")
    if os.environ.get("DECKBUILD_REGEN"):
        expected_json.write_text(result.stdout, encoding="utf-8")
        expected_err.write_text(result.stderr, encoding="utf-8")
    assert result.stdout == expected_json.read_text(encoding="utf-8")
    assert result.stderr == expected_err.read_text(encoding="utf-8")


# -- Every line accounted for ---------------------------------------------------------------------

_CHROME_LINES = re.compile(
    r"^(jump into concepts.*|or|recommended|test this pattern.*|recall & review|practice(?: questions)?|"
    r"\(\d+/\d+\)|"
    r"challenge - \d+ problems?|get all challenges correct.*|test your skills.*|click to reveal answer|"
    r"(?:[✗✓✔✘×❌✅✖✕☑❎]\ufe0f?)?\s*(in)?correct!?|attempts:|(beginner|intermediate|advanced|expert)\d+:\d\dremaining|"
    r"💡 hint|solution|final answer:|quick check:|common mistakes:|```\w*|question \d+ of \d+)$",
    re.IGNORECASE,
)
_WORD = re.compile(r"[a-z0-9]{3,}")
# What a line holds once the whitespace and the characters that show nothing at its ends are gone.
INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"
_EDGES = re.compile(rf"^[\s{INVISIBLE}]+|[\s{INVISIBLE}]+$")
# Words a card keeps as a field's value or name rather than as text.
_FIELD_WORDS = {"you", "got", "step", "option", "remaining", "hint", "left"}


def check_accounting(lines, page, report):
    """Every line is blank, chrome, in a card that holds its words, or named by a warning.

    A warning names the line it is at and the lines after it up to the next card's (an
    incomplete item spans several lines, chrome among them).
    """
    assert len(page.uses) == len(lines)
    cards = {c.line: json.dumps([c.kind, c.data], ensure_ascii=False).lower() for c in page.cards}
    cards = {line: text.replace("\\n", " ") for line, text in cards.items()}
    warned_at = {p.line for p in report.problems}
    run_start = None
    for i, (line, use) in enumerate(zip(lines, page.uses, strict=True)):
        text = _EDGES.sub("", line)
        assert use, f"line {i + 1} {text!r} is not accounted for"
        if use == quizpage.BLANK:
            assert not text
            continue
        if text and use != quizpage.CHROME:
            run_start = run_start if use == quizpage.WARNED else None
        if use == quizpage.WARNED:
            run_start = i + 1 if run_start is None else run_start
            assert run_start in warned_at, f"line {i + 1} {text!r} is in no warning"
            continue
        if use == quizpage.CHROME:
            before = next((_EDGES.sub("", x) for x in reversed(lines[:i]) if _EDGES.sub("", x)), "")
            after_header = re.match(r"^challenge - \d+ problems?$", before, re.I)
            assert _CHROME_LINES.match(text) or after_header, f"line {i + 1} {text!r} dropped as chrome"
            continue
        kind, _, at = use.partition(" ")
        assert kind == "card" and int(at) in cards, use
        words = set(_WORD.findall(cards[int(at)])) | _FIELD_WORDS
        unglued = re.sub(r"^[A-F](?=[A-Za-z])", "", text)  # a glued option letter: AThe -> The
        missing = min((set(_WORD.findall(t.lower())) - words for t in (text, unglued)), key=len)
        assert not missing, f"line {i + 1} {text!r}: {missing} not in its card"


def read_lines(lines, name="page.txt"):
    report = Report()
    return quizpage.read_page(name, lines, report), report


def lines_of(path):
    return path.read_text(encoding="utf-8").split("\n")


ALL_PAGES = SEED_PAGES + sorted((DATA / "quizpage").glob("*.txt")) + [DATA / "answers" / "page_directive.txt"]


@pytest.mark.parametrize("path", ALL_PAGES, ids=lambda p: p.stem)
def test_every_line_of_every_page_is_in_a_card_chrome_or_a_warning(path):
    lines = lines_of(path)
    page, report = read_lines(lines)
    check_accounting(lines, page, report)


def content(cards):
    return [(c.kind, c.data) for c in cards]


def test_concatenated_pages_give_the_cards_of_each_page_in_turn():
    for paths in (SEED_PAGES, SEED_PAGES[::-1], PAGES, PAGES[::-1] + SEED_PAGES):
        texts = [lines_of(p) for p in paths]
        joined = [line for lines in texts for line in lines]
        page, report = read_lines(joined)
        expected = [card for lines in texts for card in content(read_lines(lines)[0].cards)]
        assert content(page.cards) == expected
        assert len(report.warnings) == sum(len(read_lines(lines)[1].warnings) for lines in texts)
        check_accounting(joined, page, report)


@pytest.mark.parametrize("path", SEED_PAGES + PAGES, ids=lambda p: p.stem)
def test_a_copy_with_a_blank_line_between_every_line_gives_the_same_cards(path):
    lines = lines_of(path)
    for spaced in (
        [x for line in lines for x in (line, "")],
        [x for line in lines for x in ("", line, "  ")],
    ):
        page, report = read_lines(spaced)
        original, original_report = read_lines(lines)
        assert content(page.cards) == content(original.cards)
        assert [p.message for p in report.problems] == [p.message for p in original_report.problems]
        check_accounting(spaced, page, report)


@pytest.mark.parametrize("path", SEED_PAGES + PAGES, ids=lambda p: p.stem)
def test_a_copy_cut_anywhere_keeps_whole_items_and_reports_the_cut_one(path):
    lines = [line for line in lines_of(path) if line.strip()]
    full, _ = read_lines(lines)
    whole = content(full.cards)
    for cut in range(1, len(lines)):
        page, report = read_lines(lines[:cut])
        check_accounting(lines[:cut], page, report)
        got = content(page.cards)
        # Every card but the last is a card of the whole page; the last may end early where
        # nothing marks its end (a list of mistakes, an explanation), but asks the same.
        assert all(card in whole for card in got[:-1]), cut
        if got and got[-1] not in whole:
            assert (got[-1][0], got[-1][1]["question"]) in [(k, d["question"]) for k, d in whole], cut
        for i in range(cut):
            if full.uses[i].startswith("card"):
                assert page.uses[i] != quizpage.CHROME, f"cut after {cut}: line {i + 1} dropped silently"


@pytest.mark.parametrize(
    ("name", "marker", "expected"),
    [
        ("rnn_challenges", "Attempts:", "page.txt:5: warning: challenge 1 is incomplete (no 'N left' after"),
        ("rnn_challenges", "💡 Hint", "page.txt:5: warning: challenge 1 is incomplete (no hint;"),
        (
            "rnn_challenges",
            "Think about repeated",
            "page.txt:52: warning: challenge 4 is incomplete (no verdict",
        ),
        (
            "sql_joins",
            "✗ Incorrect",
            "page.txt:21: warning: quiz question 'What does a CROSS JOIN of a 3-row",
        ),
        ("transformer_challenge", "✗ Incorrect", "page.txt:5: warning: challenge 1 is incomplete (no explan"),
        (
            "layer_norm",
            "Quick Check:",
            "page.txt:54: warning: practice question 1 is incomplete (no Quick Check;",
        ),
        (
            "list_comprehensions",
            "Common Mistakes:",
            "page.txt:23: warning: practice question 1 is incomplete",
        ),
    ],
)
def test_a_copy_cut_inside_an_item_reports_it_incomplete_with_its_line(name, marker, expected):
    lines = lines_of(DATA / "quizpage" / f"{name}.txt")
    cut = next(i for i, line in enumerate(lines) if line.startswith(marker)) + 1
    page, report = read_lines(lines[:cut])
    assert [str(p)[: len(expected)] for p in report.warnings][-1:] == [expected]
    assert "it was not packaged: copy the whole page" in str(report.warnings[-1])
    assert report.counts["incomplete"] == 1
    assert all(c.data.get("answer") or c.data.get("explanation") or c.kind == "open" for c in page.cards)


def test_a_recall_card_without_a_level_reads_its_question_by_its_shape():
    lines = ["Recall & Review", "Share this page", "What is a token?", "A unit of text.", "It maps to an id."]
    page, report = read_lines([*lines, "Click to reveal answer"])
    (card,) = page.cards
    assert card.data == {"question": "What is a token?", "answer": "A unit of text.\nIt maps to an id."}
    assert [str(p) for p in report.problems] == [
        "page.txt:2: warning: unrecognised text 'Share this page' ignored; is it part of a card?"
    ]


def test_long_flattened_code_is_kept_as_copied_with_a_warning():
    code = " ".join(["x = torch.ones(2)"] * 4000)
    lines = lines_of(DATA / "quizpage" / "transformer_challenge.txt")
    at = next(i for i, line in enumerate(lines) if line.startswith("import torch import"))
    page, report = read_lines([*lines[:at], code, *lines[at + 1 :]])
    assert page.cards[0].data["code"] == code + "\n"
    assert [str(p) for p in report.warnings] == [
        f"page.txt:{at + 1}: warning: the code in this challenge is {len(code)} characters long, "
        f"more than the {MAX_RESTORE_CHARS} deckbuild restores; it is kept as copied: check it on the page"
    ]


def test_code_in_another_language_is_not_checked_as_python_and_keeps_its_language(monkeypatch):
    cards, stderr = cards_json(DATA / "quizpage" / "sql_joins.txt", monkeypatch)
    sql = [c for c in cards if c.get("code")]
    assert [c["code_language"] for c in sql] == ["sql", "sql"]
    assert "not valid Python" not in stderr
    result = CliRunner().invoke(cli, ["check", "--strict", "sql_joins.txt"])
    assert result.exit_code == 0, result.output


def test_an_unclosed_formula_in_a_quiz_answer_is_reported_once(tmp_path, monkeypatch):
    page = "Recall & Review\nWhat is x?\nA. The value $$ y\nB. Another\n✗ Incorrect\nOption A: the value y.\n"
    (tmp_path / "p.txt").write_text(page, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["check", "p.txt"])
    assert [line for line in result.stderr.splitlines() if "$$" in line] == [
        "p.txt:2: unbalanced math: $$ without a closing $$; close it, or write \\$ for a dollar"
    ]


ALL_LINES = sorted({line for path in ALL_PAGES for line in lines_of(path)})


PAGE_TEXTS = [lines_of(path) for path in ALL_PAGES]


@st.composite
def spliced(draw):
    """Runs of real pages, cut anywhere and joined in any order."""
    out: list[str] = []
    for _ in range(draw(st.integers(1, 4))):
        lines = draw(st.sampled_from(PAGE_TEXTS))
        start = draw(st.integers(0, len(lines) - 1))
        out += lines[start : start + draw(st.integers(1, 60))]
    return out


@given(
    st.one_of(
        spliced(),
        st.lists(st.one_of(st.sampled_from(ALL_LINES), st.text(max_size=30), st.just("")), max_size=80),
    )
)
def test_any_mix_of_page_lines_is_read_with_every_line_accounted_for(lines):
    """Pages spliced, shuffled and mixed with noise: no crash, and never a line dropped silently."""
    lines = [line.replace("\r", "") for line in lines]
    page, report = read_lines(lines)
    check_accounting(lines, page, report)


def test_the_last_practice_item_keeps_three_mistakes_when_no_other_item_shows_how_many():
    lines = lines_of(DATA / "quizpage" / "tokenization_two_pages.txt")
    end = lines.index("Jump into concepts and practice - no test required")
    page, report = read_lines([*lines[:end], "Counting spaces", "Rate this page"])
    practice = next(c for c in page.cards if c.kind == "practice")
    assert practice.data["mistakes"] == [
        "Counting the whole word as one token",
        "Adding an end-of-text token",
        "Counting bytes twice",
    ]
    assert [str(p) for p in report.warnings] == [
        f"page.txt:{end + 1}: warning: unrecognised text 'Counting spaces' ignored; is it part of a card?",
        f"page.txt:{end + 2}: warning: unrecognised text 'Rate this page' ignored; is it part of a card?",
    ]


def test_a_challenge_page_that_holds_fewer_problems_than_it_announces_says_so():
    lines = lines_of(DATA / "quizpage" / "rnn_challenges.txt")
    page, report = read_lines(lines[: lines.index("❓ Hyperparameter")])
    assert len(page.cards) == 2
    assert [str(p) for p in report.warnings] == [
        "page.txt:1: warning: the page announces 4 problems but holds 2; 2 missing: copy the whole page"
    ]
    assert report.counts["missing"] == 2


def test_a_recall_question_not_shaped_like_one_is_the_first_line_even_if_an_answer_line_starts_like_one():
    answer = ["Per token, not per batch.", "Why does that matter? Small batches work.", "So does inference."]
    page, report = read_lines(
        ["Recall & Review", "Layer norm versus batch norm", *answer, "Click to reveal answer"]
    )
    (card,) = page.cards
    assert card.data == {"question": "Layer norm versus batch norm", "answer": "\n".join(answer)}
    assert report.problems == []


def test_a_line_of_only_invisible_characters_is_blank():
    page, report = read_lines(lines_of(DATA / "quizpage" / "invisible_blank_lines.txt"))
    assert content(page.cards) == [
        ("recall", {"question": "What is a hash?", "answer": "A digest of the input.", "level": "beginner"}),
        ("recall", {"question": "What is a salt?", "answer": "Random input mixed into the hash."}),
        (
            "quiz",
            {
                "question": "Which hash is broken?",
                "options": [{"letter": "A", "text": "MD5"}, {"letter": "B", "text": "SHA-256"}],
                "explanation": "Option A: collisions for MD5 are cheap to find.",
                "correct": "A",
                "correct_inferred": True,
                "answer": "MD5",
            },
        ),
        (
            "open",
            {
                "question": "Explain why a salt defeats rainbow tables.",
                "hint": "Think about precomputed tables.",
                "concepts": 2,
            },
        ),
    ]
    assert report.problems == []


@given(st.data())
def test_a_line_of_invisible_characters_reads_as_an_empty_line(data):
    """Zero-width spaces, joiners, byte-order marks and no-break spaces alone on a line are blank."""
    lines = data.draw(st.sampled_from([lines_of(p) for p in SEED_PAGES + PAGES]))
    invisible = st.text(st.sampled_from([*INVISIBLE, "\xa0", " ", "\t"]), min_size=1, max_size=4)
    spaced, empty = list(lines), list(lines)
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(spaced)))
        spaced.insert(at, data.draw(invisible))
        empty.insert(at, "")
    page, report = read_lines(spaced)
    expected, expected_report = read_lines(empty)
    assert content(page.cards) == content(expected.cards)
    assert [str(p) for p in report.problems] == [str(p) for p in expected_report.problems]
    check_accounting(spaced, page, report)


UNREVEALED = (
    "it was copied before its answer was revealed; it was not packaged: "
    "reveal the answer on the page and copy it again"
)


def test_a_recall_card_copied_before_its_answer_was_revealed_is_reported_not_packaged():
    page, report = read_lines(lines_of(DATA / "quizpage" / "unrevealed_recall.txt"))
    assert content(page.cards) == [
        (
            "recall",
            {
                "question": "What is a hash function?",
                "answer": "A function that maps data of any size to a fixed-size digest.",
                "level": "beginner",
            },
        ),
        (
            "recall",
            {"question": "How hard is it to reverse a good hash?", "answer": "Hard", "level": "medium"},
        ),
        (
            "recall",
            {
                "question": "Is SHA-1 still safe for signatures?",
                "answer": "No. Practical collisions exist, so signatures over SHA-1 can be forged.",
                "level": "hard",
            },
        ),
    ]
    assert [str(p) for p in report.warnings] == [
        f"page.txt:6: warning: recall card 'What is a salt?' has no answer: {UNREVEALED}",
        f"page.txt:9: warning: recall card 'What is a pepper?' has no answer: {UNREVEALED}",
        "page.txt:16: warning: recall card of level 'advanced' has no question nor answer: " + UNREVEALED,
        "page.txt:18: warning: unrecognised text 'Share this page' ignored; is it part of a card?",
        "page.txt:19: warning: recall card 'Why are passwords hashed slowly?' has no answer: " + UNREVEALED,
        f"page.txt:21: warning: recall card 'Rainbow tables' has no answer: {UNREVEALED}",
    ]
    assert report.counts["incomplete"] == 5


RECALL_PAGES = [
    lines_of(p) for p in SEED_PAGES + PAGES if "Click to reveal answer" in p.read_text(encoding="utf-8")
]


@given(st.data())
def test_recall_cards_whose_answers_were_not_revealed_are_each_reported_and_the_others_kept(data):
    """Take the answers out of any recall cards of a real page: those are warnings, never cards."""
    lines = data.draw(st.sampled_from(RECALL_PAGES))
    whole, whole_report = read_lines(lines)
    recall = [c for c in whole.cards if c.kind == "recall"]
    hidden = data.draw(st.lists(st.sampled_from(recall), min_size=1, unique_by=id))
    gone = {n for c in hidden for n in c.field_lines["answer"]}
    page, report = read_lines([line for n, line in enumerate(lines, 1) if n not in gone])
    assert content(page.cards) == [(c.kind, c.data) for c in whole.cards if c not in hidden]
    assert [p.message for p in report.warnings if UNREVEALED in p.message] == [
        f"recall card {c.data['question'][:60]!r} has no answer: {UNREVEALED}"
        for c in sorted(hidden, key=lambda c: c.line)
    ]
    assert report.counts["incomplete"] == len(hidden) + whole_report.counts.get("incomplete", 0)


def test_an_open_prompt_without_a_hint_takes_no_line_of_the_item_before_it():
    page, report = read_lines(lines_of(DATA / "quizpage" / "open_prompt_without_hint.txt"))
    assert [(c.kind, c.data["question"], c.data.get("hint")) for c in page.cards if c.kind != "recall"] == [
        ("open", "Describe what a hash table stores.", None),
        ("quiz", "Which hash is broken?", None),
        ("open", "Explain why a salt defeats rainbow tables.", None),
        ("quiz", "Which hash is slow on purpose?", None),
        ("open", "What makes a hash function collision resistant?", None),
        (
            "open",
            "Explain how a hash table resolves collisions.",
            "Think about what happens when two keys share a bucket.",
        ),
    ]
    quizzes = [c.data for c in page.cards if c.kind == "quiz"]
    assert [q["explanation"] for q in quizzes] == [
        "Option A: collisions for MD5 are cheap to find.",
        "bcrypt repeats its work many times.\nThat makes guessing passwords expensive.",
    ]
    assert report.problems == []


OPEN_PAGES = [lines_of(p) for p in SEED_PAGES + PAGES if "concepts." in p.read_text(encoding="utf-8")]


@given(st.data())
def test_open_prompts_whose_hints_are_gone_keep_their_prompts_and_every_other_card(data):
    """Take the hints out of any open prompts of a real page: the same cards, those without a hint."""
    lines = data.draw(st.sampled_from(OPEN_PAGES))
    whole, whole_report = read_lines(lines)
    prompts = [c for c in whole.cards if c.kind == "open" and c.data.get("hint")]
    bare = data.draw(st.lists(st.sampled_from(prompts), min_size=1, unique_by=id))
    gone = {n for c in bare for n in c.field_lines["hint"]}
    page, report = read_lines([line for n, line in enumerate(lines, 1) if n not in gone])
    expected = [
        (c.kind, {k: v for k, v in c.data.items() if k != "hint" or c not in bare}) for c in whole.cards
    ]
    assert content(page.cards) == expected
    assert [p.message for p in report.problems] == [p.message for p in whole_report.problems]


def test_options_labelled_any_common_way_each_stay_with_their_own_question():
    page, report = read_lines(lines_of(DATA / "quizpage" / "option_labels.txt"))
    quizzes = [c.data for c in page.cards if c.kind == "quiz"]
    assert [(q["question"], [o["text"] for o in q.get("options", [])]) for q in quizzes] == [
        ("Which function maps scores to probabilities?", ["softmax", "relu", "tanh"]),
        ("Which of these is a loss function?", ["cross-entropy", "dropout", "batch normalization"]),
        ("Which optimizer adapts a learning rate per parameter?", ["Adam", "plain SGD"]),
        (
            "What turns logits into probabilities?",
            ["softmax of the logits", "argmax of the logits", "max pooling"],
        ),
        ("What does this code print?\nprint(sum([1, 2, 3]))", ["6", "123", "an error"]),
        ("Which activation is zero for negative inputs?", ["sigmoid", "ReLU"]),
        ("Which norm works per token?", []),
    ]
    assert [q.get("explanation", q.get("answer")) for q in quizzes] == [
        "Option A: softmax normalises the scores so that they sum to 1.",
        "Cross-entropy is a loss function; the others regularise or normalise.",
        "Adam keeps running moments of each parameter's gradient.",
        "The softmax of the logits turns them into probabilities.",
        "sum adds the numbers, so it prints 6.",
        "ReLU is max(0, x), so it is zero for every negative input.",
        "Layer normalization computes its statistics over each token's own features.",
    ]
    assert [str(p) for p in report.problems] == [
        "page.txt:49: warning: quiz question 'Which layer has no learned weights?': its options could not be "
        "read (lettered B, C, not A, B, … in order); it was not packaged: check its options on the page and "
        "copy it again"
    ]
    assert report.counts["incomplete"] == 1
    (practice,) = [c.data for c in page.cards if c.kind == "practice"]
    assert (practice["options"], practice["correct"]) == (
        [{"letter": "A", "text": "sigmoid"}, {"letter": "B", "text": "ReLU"}],
        "B",
    )


# How pages label a quiz's options; {L} the letter, {l} in small, {T} the text with a capital.
OPTION_STYLES = [
    "{L}. {t}",
    "{L}) {t}",
    "({L}) {t}",
    "{l}) {t}",
    "({l}) {t}",
    "{l}. {t}",
    "[{L}] {t}",
    "{L}: {t}",
    "{L} - {t}",
    "{L} {t}",
    "{L}{T}",
    "{L}{t}",
]
_TERMS = [
    "softmax",
    "relu",
    "adam",
    "dropout",
    "pooling",
    "attention",
    "embedding",
    "gradient",
    "token",
    "layer",
]
_CODE = [
    "print(x)",
    "x = [1, 2, 3]",
    "y = f(x) * 2",
    "for i in x:",
    "total += i",
    "def f(x):",
    "return x + 1",
]


@st.composite
def quiz_pages(draw, styles=OPTION_STYLES):
    """A section of quizzes whose options are labelled one way: its lines, each quiz as written,
    and the lines of each quiz's options."""
    style = draw(st.sampled_from(styles))
    words = st.lists(st.sampled_from(_TERMS), min_size=1, max_size=3).map(" ".join)
    lines, quizzes, option_lines = ["Recall & Review"], [], []
    count = draw(st.integers(1, 5))
    # The last explanation, which nothing bounds, is read as long as the others.
    explained = draw(st.integers(1, 2)) if count > 1 else 1
    for number in range(1, count + 1):
        if draw(st.booleans()):
            lines.append(f"Question {number} of {count}")
        question = [f"Which {draw(words)} is meant?", *draw(st.lists(st.sampled_from(_CODE), max_size=3))]
        texts = draw(
            st.sampled_from([0, 2, 3, 4, 5, 6]).flatmap(lambda n: st.lists(words, min_size=n, max_size=n))
        )
        capital = "{T}" in style
        options = [
            (letter, text[0].upper() + text[1:] if capital else text)
            for letter, text in zip("ABCDEF", texts, strict=False)
        ]
        explanation = [f"The {draw(words)} is meant, not the {draw(words)}." for _ in range(explained)]
        lines += question
        option_lines.append(list(range(len(lines), len(lines) + len(options))))
        lines += [style.format(L=ltr, l=ltr.lower(), t=x, T=x) for ltr, x in options]
        lines += [draw(st.sampled_from(VERDICTS)), *explanation]
        quizzes.append(("\n".join(question), options, "\n".join(explanation)))
    return lines, quizzes, option_lines


# A verdict as pages print it: each mark (an emoji one with or without its variation selector).
VERDICTS = [
    f"{mark}{selector}{space}{word}"
    for mark in ("✗", "✓", "✔", "✘", "×", "❌", "✅", "✖", "✕", "☑", "❎")
    for selector in ("", "\ufe0f")
    for space in (" ", "")
    for word in ("Incorrect", "Correct")
]


def read_quizzes(cards):
    return [
        (
            c.data["question"],
            [(o["letter"], o["text"]) for o in c.data.get("options", [])],
            c.data.get("explanation", c.data.get("answer")),
        )
        for c in cards
    ]


@given(quiz_pages())
def test_quizzes_are_read_whatever_labels_their_options_carry(page):
    lines, quizzes, _ = page
    got, report = read_lines(lines)
    assert read_quizzes(got.cards) == quizzes
    assert report.problems == []
    check_accounting(lines, got, report)


# A lost option leaves lines that still read as options from A, or as words, with a small letter glued.
@given(quiz_pages([s for s in OPTION_STYLES if s != "{L}{t}"]), st.data())
def test_a_quiz_that_lost_an_option_before_its_last_is_reported_and_its_neighbours_kept(page, data):
    """Its options are not A, B, … in order: that quiz is a warning, no line of it goes to another."""
    lines, quizzes, option_lines = page
    hurt = [n for n, at in enumerate(option_lines) if len(at) >= 3]
    if not hurt:
        return
    n = data.draw(st.sampled_from(hurt))
    gone = data.draw(st.sampled_from(option_lines[n][:-1]))
    cut = lines[:gone] + lines[gone + 1 :]
    got, report = read_lines(cut)
    assert read_quizzes(got.cards) == quizzes[:n] + quizzes[n + 1 :]
    (problem,) = report.warnings
    assert problem.message.startswith(
        f"quiz question {quizzes[n][0].splitlines()[0]!r}: its options could not be read"
    )
    assert report.counts["incomplete"] == 1
    check_accounting(cut, got, report)


def test_a_practice_part_labelled_again_is_no_text_of_the_part_before_it():
    """A spliced copy: 'Quick Check:' then a second 'Final Answer:'. The item lacks its Quick Check."""
    lines = lines_of(DATA / "quizpage" / "practice_repeated_label.txt")
    page, report = read_lines(lines)
    assert page.cards == []
    assert str(report.warnings[0]).startswith(
        "page.txt:3: warning: practice question 1 is incomplete (no Quick Check;"
    )
    check_accounting(lines, page, report)


def test_numbered_lists_inside_a_practice_question_stay_in_it():
    page, report = read_lines(lines_of(DATA / "quizpage" / "practice_numbered_lists.txt"))
    first, second, third = (c.data for c in page.cards)
    assert [first["number"], second["number"], third["number"]] == [1, 2, 3]
    assert first["solution"][0]["text"] == "1. Multiply first: 3 * 4 = 12\n2. Then add: 2 + 12 = 14"
    assert second["question"].splitlines() == [
        "Which of these statements are true?",
        "1. Addition is commutative",
        "2. Subtraction is commutative",
        "3. Multiplication is associative",
    ]
    assert second["mistakes"] == [
        "1. Thinking subtraction commutes",
        "2. Confusing associative with commutative",
        "3. Picking all three",
    ]
    assert third["question"] == "What is 10 - 4?"
    assert report.problems == []


PRACTICE_PAGES = [lines_of(p) for p in SEED_PAGES + PAGES if "\nPractice\n" in p.read_text(encoding="utf-8")]


@given(st.data())
def test_a_numbered_list_in_a_practice_question_or_solution_is_part_of_it(data):
    """Numbered lines (1., 2., … as the questions are) added to a question or its last step."""
    lines = data.draw(st.sampled_from(PRACTICE_PAGES))
    whole, whole_report = read_lines(lines)
    practice = [c for c in whole.cards if c.kind == "practice"]
    card = data.draw(st.sampled_from(practice))
    where = data.draw(st.sampled_from(["question", "solution"]))
    ends = re.compile(r"^(easy|medium|hard)$" if where == "question" else r"^Final Answer:", re.IGNORECASE)
    at = next(k for k in range(card.line, len(lines)) if ends.match(lines[k].strip()))
    first = data.draw(st.integers(1, 4))
    listed = [
        f"{n}. {data.draw(st.sampled_from(_TERMS))} comes next"
        for n in range(first, first + data.draw(st.integers(1, 4)))
    ]
    page, report = read_lines(lines[:at] + listed + lines[at:])
    expected = content(whole.cards)
    data_ = expected[whole.cards.index(card)][1]
    if where == "question":
        data_["question"] = "\n".join([data_["question"], *listed])
    else:
        data_["solution"][-1]["text"] = "\n".join([data_["solution"][-1]["text"], *listed])
    assert content(page.cards) == expected
    assert [p.message for p in report.problems] == [p.message for p in whole_report.problems]


def test_a_challenge_without_its_type_line_takes_no_line_of_the_challenge_before_it():
    page, report = read_lines(lines_of(DATA / "quizpage" / "challenge_without_type.txt"))
    assert [(c.line, c.data["type"], c.data["title"], c.data["explanation"]) for c in page.cards] == [
        (5, "Challenge", "Length of a digest", "It has 64: 32 bytes, two hex characters each."),
        (
            14,
            "Debug",
            "A salt reused",
            "Equal passwords get equal hashes, so one cracked hash cracks them all.",
        ),
        (
            24,
            "Challenge",
            "Slow on purpose",
            "Each guess costs an attacker as much time as it costs the server once.",
        ),
    ]
    assert report.problems == []


CHALLENGE_PAGES = [lines_of(p) for p in SEED_PAGES + PAGES if "remaining\n" in p.read_text(encoding="utf-8")]


@given(st.data())
def test_challenges_whose_type_lines_are_gone_are_read_as_before_with_no_type(data):
    """Take the type lines out of any challenges of a real page: the same challenges, untyped."""
    lines = data.draw(st.sampled_from(CHALLENGE_PAGES))
    whole, whole_report = read_lines(lines)
    challenges = [c for c in whole.cards if c.kind == "challenge"]
    untyped = data.draw(st.lists(st.sampled_from(challenges), min_size=1, unique_by=id))
    gone = {c.line for c in untyped}  # a challenge's line is its type line's
    page, report = read_lines([line for n, line in enumerate(lines, 1) if n not in gone])
    expected = content(whole.cards)
    for c in untyped:
        fields = expected[whole.cards.index(c)][1]
        fields["type"] = "Challenge"
        fields["tags"] = [t for t in fields["tags"] if not t.startswith("type::")]
    assert content(page.cards) == expected
    assert [p.message for p in report.problems] == [p.message for p in whole_report.problems]


def test_an_option_named_only_to_be_denied_is_never_inferred_the_answer():
    page, report = read_lines(lines_of(DATA / "quizpage" / "infer_negated.txt"))
    assert [c.data.get("correct") for c in page.cards] == ["A", None, "B", None, "B"]
    assert report.notes == ["page.txt: 3 of 5 quiz answers inferred from the explanations"]


_SAYS = [
    "Option {x} is correct.",
    "The answer is {x}.",
    "Option {x}: {w}.",
    "Answer: ({x}).",
    "So option {x} it is.",
]
# Naming an option without saying it is the answer (once read as saying it, found by an attack).
_DENIES = [
    "Option {y}: incorrect.",
    "Option {y}? No.",
    "Option {y} is a common mistake; {w}.",
    "Many pick option {y}, but {w}.",
    "Option {y} is incorrect.",
    "Option {y} is wrong because {w}.",
    "It is not option {y}.",
    "Unlike option {y}, {w} holds.",
    "Option {y} does not {w}.",
    "Option {y} isn't right: {w}.",
    "{w}, rather than option {y}.",
    "Options {y} and {z} are both wrong.",
]


@given(st.data())
def test_the_answer_is_inferred_from_the_one_option_named_without_denial(data):
    """Explanations that name options: one said and none denied is the answer; otherwise none."""
    letters = "ABCD"
    options = [(ltr, f"{ltr.lower()} {data.draw(st.sampled_from(_TERMS))}") for ltr in letters]
    words = st.lists(st.sampled_from(_TERMS), min_size=1, max_size=3).map(" ".join)
    said = data.draw(st.lists(st.sampled_from(letters), max_size=2, unique=True))
    denied = data.draw(st.lists(st.sampled_from([x for x in letters if x not in said]), max_size=3))
    sentences = [data.draw(st.sampled_from(_SAYS)).format(x=x, w=data.draw(words)) for x in said]
    for y in denied:
        z = data.draw(st.sampled_from([x for x in letters if x not in said]))
        sentences.append(data.draw(st.sampled_from(_DENIES)).format(y=y, z=z, w=data.draw(words)))
    if not sentences:
        return
    explanation = " ".join(data.draw(st.permutations(sentences)))
    expected = said[0] if len(said) == 1 else None
    assert quizpage.infer_correct(explanation, options) == expected, explanation


def test_a_page_whose_first_line_holds_two_semicolons_is_read_as_a_page(monkeypatch):
    cards, stderr = cards_json(DATA / "quizpage" / "semicolons_first_line.txt", monkeypatch)
    assert [(c["kind"], c["question"]) for c in cards] == [
        ("recall", "What is a hash function?"),
        ("quiz", "Which hash is broken?"),
    ]
    assert stderr.splitlines()[0] == (
        "semicolons_first_line.txt:1: warning: unrecognised text 'Hashing; salts; peppers' ignored; "
        "is it part of a card?"
    )


def test_a_practice_question_whose_answer_or_options_cannot_be_right_is_reported_not_packaged():
    # An answer naming an option the question lacks, or two options lettered alike, would mark
    # no option, or two, as the right one.
    cards, report = read(DATA / "quizpage" / "practice_letters.txt")
    assert cards == []
    assert [str(p) for p in report.problems] == [
        "practice_letters.txt:3: warning: practice question 1: its final answer is option E, which it "
        "does not have (options A, B, C, D); it was not packaged: check the question on the page and "
        "copy it again",
        "practice_letters.txt:21: warning: practice question 2: its options could not be read (lettered "
        "A, A, C, not A, B, … in order); it was not packaged: check its options on the page and copy it "
        "again",
        "practice_letters.txt:1: no cards found on this quiz page; check that the whole page was copied",
    ]
    assert report.counts["incomplete"] == 2


@given(st.data())
def test_an_option_the_explanation_only_denies_is_never_inferred(data):
    # "Softmax does not just select the maximum value; it normalizes the scores": the words of
    # the option about the maximum value are there, in a clause that denies them.
    terms = data.draw(st.lists(st.sampled_from(_TERMS), min_size=8, max_size=8, unique=True))
    options = [(letter, f"To {terms[2 * n]} the {terms[2 * n + 1]} only") for n, letter in enumerate("ABCD")]
    denied = data.draw(st.sampled_from("ABCD"))
    said = data.draw(st.sampled_from([x for x in "ABCD" if x != denied] + [None]))
    text = dict(options)
    denial = data.draw(
        st.sampled_from(
            [
                "does not just",
                "never",
                "is unlike what would",
                "works without",
                "would rather not",
                # A confusion named is a denial too (once inferred as the answer, found by an attack).
                "is often confused with what would",
                "is a common misconception to",
                "should not be mixed up with what would",
            ]
        )
    )
    sentence = f"It {denial} {text[denied][3:-5]}"
    if said is not None:
        sentence += data.draw(st.sampled_from(["; it ", ", but it ", ". Instead it "])) + text[said][3:-5]
    assert quizpage.infer_correct(sentence + ".", options) in (said, None), sentence
    # Asked with a negation, the explanation may deny its answer or affirm it: it tells none.
    for question in ("Which is NOT true?", "Why doesn't it work?", "All of these EXCEPT?", "Which is false?"):
        assert quizpage.infer_correct(sentence + ".", options, question) is None, (question, sentence)


def test_the_answer_an_explanation_rejects_is_not_inferred_for_a_page(monkeypatch):
    cards, _ = cards_json(DATA / "quizpage" / "inferred_wrong.txt", monkeypatch)
    # Its words point to A ("To select the maximum value only") more than to D, in a clause that
    # denies them: no answer is clear.
    assert [(c["kind"], c.get("correct")) for c in cards] == [("quiz", None)]


@given(
    st.sampled_from(["Practice", "Practice Questions", "PRACTICE PROBLEMS", "practice exercises"]),
    st.lists(st.sampled_from([" ", "\u00a0", "\t", "  "]), min_size=8, max_size=8),
)
def test_a_page_reads_the_same_whatever_blanks_its_marks_and_practice_heading_were_copied_with(
    heading, blanks
):
    # A copy may put a no-break space or a tab between a mark's words, or word the heading so.
    page = (DATA / "quizpage" / "practice_heading_variant.txt").read_text(encoding="utf-8")
    page += "\nRecall & Review\nWhat does attention weigh?\nExplain the weights.\nYou got /4 concepts.\n"
    expected, _ = quizpage.read("p.txt", page.split("\n"), Report()), None
    varied = page.replace("Practice Questions", heading)
    marks = ["Click to reveal answer", "You got /4 concepts.", "Recall & Review"]
    for n, mark in enumerate(marks):
        words = mark.split(" ")
        spaced = "".join(b + w for b, w in zip(blanks[n * 3 :], words[1:], strict=False))
        varied = varied.replace(mark, words[0] + spaced)
    report = Report()
    cards = quizpage.read("p.txt", varied.split("\n"), report)
    assert [(c.kind, c.data.get("question")) for c in cards] == [
        (c.kind, c.data.get("question")) for c in expected
    ]
    assert [c.kind for c in cards] == ["recall", "practice", "open"]
    assert report.counts.get("incomplete", 0) == 0


@given(
    st.sampled_from(["```", "~~~"]),
    st.lists(st.sampled_from(["", "\u200b", "\ufeff", "\u200b\u200d", " \u200b"]), min_size=12, max_size=12),
)
def test_fenced_challenge_code_is_the_same_whatever_fence_and_invisible_line_ends_it_was_copied_with(
    fence, ends
):
    # Characters that show nothing at either end of a line are no part of it, in code too.
    page = (DATA / "quizpage" / "fenced_challenge.txt").read_text(encoding="utf-8")
    (expected,) = quizpage.read("p.txt", page.split("\n"), Report())
    lines = page.replace("```", fence).split("\n")
    start = next(n for n, line in enumerate(lines) if line.startswith(fence)) + 1
    stop = next(n for n in range(start, len(lines)) if lines[n].startswith(fence))
    for n in range(start, stop):
        lines[n] = ends[n % 12] + lines[n] + ends[(n + 5) % 12] if lines[n].strip() else lines[n]
    report = Report()
    (card,) = quizpage.read("p.txt", lines, report)
    assert card.data["code"] == expected.data["code"] == "for i in range(3):\n    if i:\n        print(i)\n"
    assert report.problems == []


@pytest.mark.parametrize("fence", ["```", "~~~"])
def test_fenced_code_in_a_recall_answer_keeps_its_indentation_on_the_card(tmp_path, fence):
    # The reader takes a page's lines without their blanks at either end; code is indented.
    import html as html_module

    from deckbuild.build import build
    from deckbuild.packaged import read_package

    page = (DATA / "quizpage" / "recall_fenced_code.txt").read_text(encoding="utf-8").replace("```", fence)
    (card,) = quizpage.read("p.txt", page.split("\n"), Report())
    code = "for i in range(3):\n    if i:\n        print(i)\n"
    assert card.data["answer"] == f"{fence}python\n{code}{fence}\nIt prints 1 and 2."
    put(tmp_path / "decks", "D/page.txt", page)
    (package,) = build([tmp_path / "decks"], tmp_path / "dist", now=1_700_000_000).packages
    (note,) = read_package(package).notes.values()
    assert code in html_module.unescape(re.sub(r"<[^>]+>", "", note.fields[1]))


@pytest.mark.parametrize(
    ("first", "second"), [("000", "002"), ("002", "001"), ("001", "004"), ("004", "000")]
)
def test_two_seed_pages_joined_by_cat_give_the_cards_each_gives_alone(first, second):
    # `cat a.txt b.txt` glues b's first line to a's last when a does not end in a line break.
    a, b = (seed(n).read_text(encoding="utf-8") for n in (first, second))
    alone = [c.data.get("question") for c in quizpage.read("a", a.split("\n"), Report())]
    alone += [c.data.get("question") for c in quizpage.read("b", b.split("\n"), Report())]
    report = Report()
    joined = quizpage.read("ab", (a.rstrip("\n") + b).split("\n"), report)
    assert [c.data.get("question") for c in joined] == alone
    assert not [p for p in report.problems if "unrecognised" in p.message or "ignored" in p.message]


@pytest.mark.parametrize("word", ["Correct", "Incorrect", "correct!", "INCORRECT"])
def test_a_recall_answer_that_starts_with_a_verdict_word_stays_the_answer(word):
    # A bare `Correct` under a recall card's level and question is its answer, not a verdict
    # whose mark was lost; one after a quiz's question still is a verdict.
    page = (
        (DATA / "quizpage" / "verdict_word_answer.txt")
        .read_text(encoding="utf-8")
        .replace("\nCorrect\n", f"\n{word}\n")
    )
    report = Report()
    cards = quizpage.read("p.txt", page.split("\n"), report)
    assert [(c.kind, c.data["answer"]) for c in cards] == [
        ("recall", f"{word}\nEach row of softmax output sums to one."),
        ("recall", "The vector matched against queries."),
    ]
    assert report.problems == []
    quiz = "Recall & Review\nWhat does softmax output?\nIncorrect\nProbabilities that sum to one.\n"
    (card,) = quizpage.read("q.txt", quiz.split("\n"), Report())
    assert card.kind == "quiz" and card.data["answer"] == "Probabilities that sum to one."


@pytest.mark.parametrize(
    "line", ["Practice", "Practice exercises", "PRACTICE PROBLEMS", "Practice questions"]
)
def test_a_practice_line_in_an_answer_starts_no_section(line):
    # Only above a Practice section's counter or first question is it the section's heading.
    page = (
        "Recall & Review\nintermediate\nWhat are three ways to learn attention?\nReading papers\n"
        f"{line}\nTeaching others\nClick to reveal answer\nbeginner\nWhat is a key?\n"
        "The vector matched against queries.\nClick to reveal answer\n"
    )
    report = Report()
    cards = quizpage.read("p.txt", page.split("\n"), report)
    assert [c.data["answer"] for c in cards] == [
        f"Reading papers\n{line}\nTeaching others",
        "The vector matched against queries.",
    ]
    assert report.problems == []


@pytest.mark.parametrize(
    "heading", ["Recall & Review", "RECALL & REVIEW", "Recall\u00a0&\u00a0Review", "recall  & review"]
)
def test_a_page_glued_to_the_one_before_is_split_whatever_its_heading_s_case_and_blanks(heading):
    first = "Recall & Review\nWhat does attention weigh?\nExplain the weights.\nYou got /4 concepts."
    second = f"{heading}\nbeginner\nWhat is a key?\nA key.\nClick to reveal answer\n"
    report = Report()
    cards = quizpage.read("p.txt", (first + second).split("\n"), report)
    assert [c.kind for c in cards] == ["open", "recall"]
    assert report.problems == []


def test_what_the_compiler_warns_of_in_restored_code_is_never_printed():
    import warnings

    from deckbuild.readers.pycode import parses

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert parses('x = 1 is 1\nassert (1, "x")\n')
    assert seen == []


@pytest.mark.parametrize("fence", ["````", "~~~~", "`````"])
def test_a_longer_fence_holding_a_fenced_example_keeps_every_line_s_indentation(tmp_path, fence):
    # A fence closes only at its own fence, in the reader as on the card: an inner ```python
    # is text of the example, and every line keeps its blanks.
    import html as html_module

    from deckbuild.build import build
    from deckbuild.packaged import read_package

    inner = "  ```python\n  def f():\n      return 1\n  ```"
    answer = f"{fence}markdown\nExample:\n{inner}\n{fence}"
    page = f"Recall & Review\nbeginner\nHow is code shown?\n{answer}\nClick to reveal answer\n"
    (card,) = quizpage.read("p.txt", page.split("\n"), Report())
    assert card.data["answer"] == f"{fence}markdown\nExample:\n{inner}\n{fence}"
    put(tmp_path / "decks", "D/page.txt", page)
    (package,) = build([tmp_path / "decks"], tmp_path / "dist", now=1_700_000_000).packages
    (note,) = read_package(package).notes.values()
    shown = html_module.unescape(re.sub(r"<[^>]+>", "", note.fields[1]))
    assert f"Example:\n{inner}" in shown and fence not in shown


def test_a_fence_with_a_no_break_space_before_its_language_is_code_on_the_card(tmp_path):
    # The reader took it for a fence and the card did not: the code lost its indentation.
    import html as html_module

    from deckbuild.build import build
    from deckbuild.packaged import read_package

    page = (DATA / "quizpage" / "recall_fenced_code.txt").read_text(encoding="utf-8")
    put(tmp_path / "decks", "D/page.txt", page.replace("```python", "```\u00a0python"))
    (package,) = build([tmp_path / "decks"], tmp_path / "dist", now=1_700_000_000).packages
    (note,) = read_package(package).notes.values()
    shown = html_module.unescape(re.sub(r"<[^>]+>", "", note.fields[1]))
    assert "for i in range(3):\n    if i:\n        print(i)\n" in shown and "```" not in shown
