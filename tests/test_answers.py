"""Answers computed at build time, in both source formats, and stated answers checked."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from hypothesis import example, given
from hypothesis import strategies as st

from conftest import DATA, put, seed
from deckbuild import answers
from deckbuild.cli import cli
from deckbuild.errors import Report
from deckbuild.readers import RawCard


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
    assert second["answer"].startswith("[0.5, 0.5]\n\n1. Subtract the maximum")


_NUMBERS = st.lists(st.integers(-9, 9), min_size=1, max_size=4)


@given(
    st.sampled_from(["softmax", "layernorm"]),
    st.one_of(_NUMBERS, _NUMBERS.flatmap(lambda row: st.lists(st.just(row), min_size=1, max_size=3))),
)
@example("softmax", [1, 2, 3])
@example("layernorm", [[1, 2], [3, 5]])
def test_a_directive_answers_as_deckbuild_calc_does(operation, values):
    # A list in gives a list out, a matrix a matrix, with the same steps, whichever way it is asked.
    raw = RawCard(2, "basic", {"question": "Q?", "answer": f"{{{{calc {operation} x={values}}}}}"})
    answers.apply(raw, "f.txt", Report())
    flag = [json.dumps(values)] if operation == "softmax" else ["--input", json.dumps(values)]
    shown = CliRunner().invoke(cli, ["calc", operation, *flag]).stdout.splitlines()
    assert raw.data["answer"].split("\n")[0] == shown[-1].removeprefix("Answer: ")
    steps = raw.data["answer"].split("\n")[2:]
    worked = [
        f"{t.removeprefix('Step ')}: {line.strip()}"
        for t, line in zip(shown[:-1:2], shown[1:-1:2], strict=True)
    ]
    assert steps == [w.replace(": ", ". ", 1) for w in worked]


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
        "output [[10.0084, 20.0084]]; fix the answer or its inputs\n"
        "decks/Deck/practice.txt: 1 new id(s), 0 re-matched id(s)\n"
        "1 error(s), 0 warning(s)\n"
    )


def test_an_answer_in_words_to_a_question_giving_q_k_and_v_is_the_author_s(run, deck_tree):
    # It asks for the output's shape, not the output: neither replaced nor checked as a matrix.
    put(deck_tree, "Deck/page.txt", DATA / "answers" / "answer_in_words.txt")
    (card,) = cards(run, "decks")
    assert card["answer"] == "One row and two columns: 1 x 2."
    result = run("check", "decks")
    assert result.exit_code == 0, result.output


def test_seed_001_practice_3_is_verified_and_seed_004_problem_1_computed(run, deck_tree):
    put(deck_tree, "A/001.txt", seed("001"))
    put(deck_tree, "B/004.txt", seed("004"))
    result = run("check", "decks")
    assert result.exit_code == 0
    assert result.stdout == "ok: 20 card(s) checked; 1 answer(s) computed, 1 stated answer(s) verified\n"
    challenge = next(c for c in cards(run, "decks/B") if c["type"] == "Predict Output")
    assert challenge["answer"] == "[[1.4793, 2.4793]]"
    assert [s["title"] for s in challenge["solution"]][-1] == "Step 4: Weighted sum of values"


def semicolon(*rows):
    uuids = (f"e{n}eeeeee-eeee-4eee-8eee-eeeeeeeeeeee" for n in range(1, 10))
    return "Question;Answer;UUID\n" + "".join(
        f'"{q}";"{a}";{u}\n' for (q, a), u in zip(rows, uuids, strict=False)
    )


QKV = "Q = [[1, 0]], K = [[1, 0], [0, 1]] and V = [[1, 2], [3, 4]]"
DIRECTIVE = "{{calc attention q=[[1, 0]] k=[[1, 0], [0, 1]] v=[[1, 2], [3, 4]]}}"


def test_the_checker_and_a_directive_share_one_convention_scaled_by_default(run, deck_tree):
    scaled = CliRunner().invoke(
        cli, ["calc", "attention", "-q", "[[1,0]]", "-k", "[[1,0],[0,1]]", "-v", "[[1,2],[3,4]]"]
    )
    assert scaled.stdout.splitlines()[-1] == "Answer: [[1.6605, 2.6605]]"
    put(
        deck_tree,
        "Deck/convention.txt",
        semicolon(
            (f"Attention output for {QKV}?", DIRECTIVE),
            (f"Attention output for {QKV}?", "[[1.6605, 2.6605]]"),
            (f"Unscaled attention output for {QKV}?", "[[1.5379, 2.5379]]"),
            (f"Attention output without scaling for {QKV}?", "[[1.5379, 2.5379]]"),
            (f"Attention output with scale 1 for {QKV}?", "[[1.5379, 2.5379]]"),
            (f"Attention output for {QKV}, scaled by 0.5?", DIRECTIVE.replace("}}", " scale=0.5}}")),
        ),
    )
    result = run("check", "--strict", "decks")
    assert result.exit_code == 0, result.output
    assert result.stdout == "ok: 6 card(s) checked; 2 answer(s) computed, 4 stated answer(s) verified\n"
    assert cards(run, "decks")[0]["answer"].startswith("[[1.6605, 2.6605]]\n\n1. Scores S = Q Kᵀ")


def test_every_directive_counts_as_a_computed_answer(run, deck_tree):
    put(
        deck_tree,
        "Deck/two.txt",
        semicolon(("Softmax?", "{{calc softmax x=[0, 0]}} and {{calc softmax x=[1, 1]}}")),
    )
    result = run("check", "decks")
    assert result.stdout == "ok: 1 card(s) checked; 2 answer(s) computed, 0 stated answer(s) verified\n"


def challenge_page(program):
    """A quiz page of one Predict Output challenge whose code is `program`."""
    return (
        "Challenge - 1 Problems\nBadge\n❓ Predict Output\nintermediate2:00remaining\nAttention by hand\n"
        f"What does this print?\n```python\n{program}\n```\nAttempts:\n2 left\n💡 Hint\nSoftmax the scores.\n"
        "✗ Incorrect\nThe first value gets more weight.\n"
    )


@pytest.mark.parametrize(
    ("code", "answer"),
    [
        # torch.matmul, divided by sqrt(d_k): scaled (seed 004's form)
        ("scores = torch.matmul(q, k.T) / math.sqrt(2)", "[[1.6605, 2.6605]]"),
        # the @ operator and no division: recognised as unscaled from the code itself
        ("scores = q @ k.T", "[[1.5379, 2.5379]]"),
        ("scores = q.matmul(k.transpose(0, 1))", "[[1.5379, 2.5379]]"),
        # scaled in a later statement, by a number the code gives
        ("scores = q @ k.T\nscores = scores / 2", "[[1.7551, 2.7551]]"),
        ("scores = torch.matmul(q, k.t()) * 0.5", "[[1.7551, 2.7551]]"),
        ("d_k = k.shape[-1]\nscores = (q @ k.T) / d_k ** 0.5", "[[1.6605, 2.6605]]"),
    ],
)
def test_challenge_code_is_computed_with_the_scale_it_uses(run, deck_tree, code, answer):
    program = (
        "import math\nimport torch\nimport torch.nn.functional as F\n"
        "q = torch.tensor([[1.0, 0.0]])\nk = torch.tensor([[1.0, 0.0], [0.0, 1.0]])\n"
        f"v = torch.tensor([[1.0, 2.0], [3.0, 4.0]])\n{code}\n"
        "w = F.softmax(scores, dim=-1)\nprint(w @ v)"
    )
    put(deck_tree, "Deck/page.txt", challenge_page(program))
    (card,) = cards(run, "decks")
    assert card["answer"] == answer


def test_a_stated_answer_is_checked_against_the_value_its_question_asks_for(run, deck_tree):
    # Weights, unscaled scores, or the output after prose in brackets: each checked as what it is.
    put(deck_tree, "Deck/asked.txt", DATA / "answers" / "asked_values.txt")
    result = run("check", "decks")
    assert (result.exit_code, result.stderr) == (
        1,
        "decks/Deck/asked.txt:5: the stated answer [[0.5, 0.5]] disagrees with the computed attention "
        "weights [[0.6698, 0.3302]]; fix the answer or its inputs\n1 error(s), 0 warning(s)\n",
    )
    assert "3 stated answer(s) verified" not in result.stdout  # a failed check prints no summary


PRINTS = {
    "print(w @ v)": "output",
    "out = w @ v\nprint(w)": "weights",
    "out = w @ v\nprint(out.round())": "output",
    "out = w @ v\nprint(scores)": "scores",
    "out = w @ v\nreturn w": "weights",
}


@pytest.mark.parametrize("shown", sorted(PRINTS))
def test_challenge_code_gets_the_output_as_its_answer_only_when_it_prints_the_output(run, deck_tree, shown):
    # The steps end with the output: code printing the weights or the scores asks for something else.
    program = (
        "import math\nimport torch\nq = torch.tensor([[1.0, 0.0]])\n"
        "k = torch.tensor([[1.0, 0.0], [0.0, 1.0]])\nv = torch.tensor([[1.0, 2.0], [3.0, 4.0]])\n"
        "scores = q @ k.T / math.sqrt(2)\n"
        f"w = torch.softmax(scores, dim=-1)\n{shown}"
    )
    if "return" in shown:
        program = "def f():\n" + "\n".join("    " + line for line in program.splitlines())
    put(deck_tree, "Deck/page.txt", challenge_page(program))
    (card,) = cards(run, "decks")
    assert card.get("answer") == ("[[1.6605, 2.6605]]" if PRINTS[shown] == "output" else None)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            "{{calc softmax x=[1, 2]",
            "calc softmax: the directive has no closing '}}'; close it",
        ),
        (
            "{{ calc softmax x=[1, 2] }}",
            "calc: '{{ calc' is not a calculator directive as written; write "
            "{{calc OPERATION name=value …}}: lower case, no space after the braces",
        ),
        (
            "{{Calc softmax x=[1, 2]}}",
            "calc: '{{Calc' is not a calculator directive as written; write "
            "{{calc OPERATION name=value …}}: lower case, no space after the braces",
        ),
        (
            "{{calc}}",
            "calc: a directive without an operation; write one of attention, multihead, softmax, "
            "layernorm, posenc",
        ),
        (
            "{{calc cosine x=[1]}}",
            "calc: unknown operation 'cosine'; use one of attention, multihead, softmax, layernorm, posenc",
        ),
        (
            "{{calc softmax y=[1, 2]}}",
            "calc softmax: unknown argument 'y'; softmax takes x; fix the directive's inputs",
        ),
        (
            "{{calc softmax x=[1] x=[2]}}",
            "calc softmax: the argument 'x' is given twice; keep one; fix the directive's inputs",
        ),
        (
            "{{calc attention q=[[1]] k=[[1]]}}",
            "calc attention: attention needs q, k, v; missing v; fix the directive's inputs",
        ),
        (
            "{{calc softmax x=" + "[" * 9 + "1" + "]" * 9 + "}}",
            "calc softmax: the value of x is nested more than 8 brackets deep; write a matrix as a list "
            "of rows; fix the directive's inputs",
        ),
        (
            "{{calc softmax x=" + "[" * 9 + "}}",
            "calc softmax: the value of x is nested more than 8 brackets deep; write a matrix as a list "
            "of rows; fix the directive's inputs",
        ),
        (
            "{{calc softmax x=[1, 2}}",
            "calc softmax: the value of x is not valid JSON; fix the directive's inputs",
        ),
    ],
)
def test_a_broken_or_near_directive_is_an_error_at_its_line(run, deck_tree, answer, message):
    put(
        deck_tree,
        "Deck/broken.txt",
        semicolon(("A good one?", "{{calc softmax x=[0]}}"), ("Broken?", answer)),
    )
    result = run("check", "--strict", "decks")
    assert result.exit_code == 1
    assert result.stderr == f"decks/Deck/broken.txt:3: {message}\n1 error(s), 0 warning(s)\n"
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "value", ["[" * 10_000 + "1" + "]" * 10_000, "[" * 10_000, '["' + "[" * 10_000 + '"]']
)
def test_brackets_ten_thousand_deep_are_a_clear_error_not_a_recursion_error(value):
    raw = RawCard(2, "basic", {"question": "Deep?", "answer": f"{{{{calc softmax x={value}}}}}"})
    report = Report()
    answers.apply(raw, "deep.txt", report)
    if value.startswith('["'):
        # brackets inside a string are text, not nesting: this one fails on its shape instead
        assert [str(p) for p in report.problems] == [
            "deep.txt:2: calc softmax: x row 1 holds something that is not a number; "
            "fix the directive's inputs"
        ]
        return
    assert [str(p) for p in report.problems] == [
        "deep.txt:2: calc softmax: the value of x is nested more than 8 brackets deep; write a matrix as a "
        "list of rows; fix the directive's inputs"
    ]


PIECES = [
    "{{",
    "}}",
    "calc",
    "Calc",
    " ",
    "attention",
    "softmax",
    "posenc",
    "cosine",
    "x=",
    "q=",
    "k=",
    "v=",
    "eps=",
    "scale=",
    "heads=",
    "length=",
    "[1, 2]",
    "[[1, 0]]",
    "[",
    "]",
    '"',
    "causal",
    "1e999",
    "-1",
    "0",
]


@given(st.lists(st.sampled_from(PIECES), max_size=14))
def test_any_directive_text_gives_a_result_or_an_error_at_its_line_never_a_crash(pieces):
    text = "".join(pieces)
    raw = RawCard(3, "basic", {"question": "Q?", "answer": text})
    report = Report()
    answers.apply(raw, "any.txt", report)
    for problem in report.problems:
        assert str(problem).startswith("any.txt:3: calc")
    if not report.problems:
        assert not re.search(r"\{\{\s*calc", raw.data["answer"], re.IGNORECASE), (
            "a directive that reached the card as text must have been reported"
        )


@pytest.mark.parametrize("spaced", [False, True])
def test_a_broken_directive_on_a_page_is_reported_at_its_own_line(run, deck_tree, spaced):
    lines = [
        "Recall & Review",
        "advanced",
        "What is softmax of [1, 2]?",
        "It is {{calc softmax x=[1, 2]}},",
        "not {{calc softmax x=[1, 2}}.",
        "Click to reveal answer",
    ]
    text = "\n\n".join(lines) if spaced else "\n".join(lines)
    put(deck_tree, "Deck/page.txt", text + "\n")
    result = run("check", "decks")
    line = 9 if spaced else 5
    assert result.stderr.splitlines()[0] == (
        f"decks/Deck/page.txt:{line}: calc softmax: the value of x is not valid JSON; "
        "fix the directive's inputs"
    )


_CODE = (
    "import torch\nq = torch.tensor([[1.0, 0.0]])\nk = torch.tensor([[1.0, 0.0]])\n"
    "v = torch.tensor([[1.0, 2.0]])\nw = torch.softmax(q @ k.T, dim=-1)\nout = w @ v"
)
_PIECES = [
    "a", " ", "[", "]", "{{", "}}", "{{calc softmax x=[[1, 2]]}}", "{{ calc softmax x=[[1]]}}",
    "Q=[[1, 0]] K=[[1, 0]] V=[[1, 2]]", "[[0.5]]", "tensor", "softmax", "unscaled", _CODE,
]  # fmt: skip
_TEXT = st.lists(st.sampled_from(_PIECES), max_size=4).map("".join)


@given(st.dictionaries(st.sampled_from(["question", "answer", "hint", "code", "explanation", "id"]), _TEXT))
@example({"question": "What does this print?", "code": _CODE, "answer": ""})
@example({"question": "Q=[[1, 0]] K=[[1, 0]] V=[[1, 2]]", "answer": "[[9.0]]"})
@example({"question": "x", "answer": "{{calc softmax x=[[1, 2]]}}"})
def test_a_card_that_apply_leaves_alone_is_left_as_it_is_and_nothing_is_said(data):
    line = ";".join(data.values())  # every text of the card is part of its line
    raw = RawCard(1, "basic", dict(data))
    report = Report()
    answers.apply(raw, "x.txt", report)
    if answers.leaves_alone(line, data):
        assert raw.data == data and report.problems == [] and not report.counts


GIVEN = "Given Q=[[1,0]], K=[[1,0],[0,1]], V=[[1,2],[3,4]],"


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        (f"{GIVEN} what is the output with the usual scale 1/sqrt(d_k)?", "[[1.6605, 2.6605]]"),
        (f"{GIVEN} what is the output with a scale of 1/√2?", "[[1.6605, 2.6605]]"),
        (f"{GIVEN} what are the attention scores after softmax?", "[[0.6698, 0.3302]]"),
        (f"{GIVEN} what is the output of softmax(QKᵀ/√d_k)?", "[[0.6698, 0.3302]]"),
        (f"{GIVEN} what is the attention distribution?", "[[0.6698, 0.3302]]"),
    ],
)
def test_a_right_answer_to_what_is_asked_is_never_refused(run, deck_tree, question, answer):
    put(deck_tree, "Deck/q.txt", semicolon((question, answer)))
    result = run("check", "decks")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "question",
    [
        f"{GIVEN} compute softmax(QK^T/sqrt(d_k)).",
        f"{GIVEN} what is the attention matrix?",
        f"{GIVEN} what now?",
    ],
)
def test_an_empty_answer_is_filled_only_when_the_output_is_asked_for(run, deck_tree, question):
    put(deck_tree, "Deck/q.txt", semicolon((question, "")))
    result = run("check", "decks")
    assert result.exit_code == 1 and "the answer is empty" in result.stderr


@pytest.mark.parametrize("printed", ["output.shape", "output.sum()", "output[0, 1]", "output.argmax(dim=-1)"])
def test_challenge_code_printing_something_made_from_the_output_gets_no_answer(run, deck_tree, printed):
    program = (
        "import math\nimport torch\nq = torch.tensor([[1.0, 0.0]])\n"
        "k = torch.tensor([[1.0, 0.0], [0.0, 1.0]])\nv = torch.tensor([[1.0, 2.0], [3.0, 4.0]])\n"
        "scores = q @ k.T / math.sqrt(2)\nw = torch.softmax(scores, dim=-1)\n"
        f"output = w @ v\nprint({printed})"
    )
    put(deck_tree, "Deck/page.txt", challenge_page(program))
    (card,) = cards(run, "decks")
    assert card.get("answer") is None


def scaled_attention(steps):
    """Challenge code with literal tensors and scores scaled by sqrt(d_k), then `steps`."""
    return (
        "import math\nimport torch\nimport torch.nn.functional as F\nq = torch.tensor([[1.0, 0.0]])\n"
        "k = torch.tensor([[1.0, 0.0], [0.0, 1.0]])\nv = torch.tensor([[1.0, 2.0], [3.0, 4.0]])\n"
        f"scores = q @ k.T / math.sqrt(2)\n{steps}"
    )


@pytest.mark.parametrize(
    "steps",
    [
        # Softmax over another axis than the calculator's, or over one PyTorch picks by shape.
        "w = F.softmax(scores, dim=0)\nout = w @ v",
        "w = F.softmax(scores, 0)\nout = w @ v",
        "w = F.softmax(scores)\nout = w @ v",
        # The output changed after it was computed, or the weights before they are used.
        "w = F.softmax(scores, dim=-1)\nout = w @ v\nout = out * 2",
        "w = F.softmax(scores, dim=-1)\nout = w @ v\nout += 1",
        "w = F.softmax(scores, dim=-1)\nw = w * 0\nout = w @ v",
        # Scaled twice: once by sqrt(d_k), once more in the call.
        "w = F.softmax(scores / 0.1, dim=1)\nout = w @ v",
    ],
)
def test_challenge_code_that_is_not_plain_attention_gets_no_computed_answer(run, deck_tree, steps):
    # Each one was given the plain attention output as its answer, stated as fact (found by an attack).
    put(deck_tree, "Deck/page.txt", challenge_page(scaled_attention(f"{steps}\nprint(out)")))
    (card,) = cards(run, "decks")
    assert card.get("answer") is None


@pytest.mark.parametrize("axis", ["dim=-1", "dim=1", "-1", "axis=-1"])
def test_challenge_code_over_the_last_axis_still_gets_its_answer(run, deck_tree, axis):
    put(
        deck_tree,
        "Deck/page.txt",
        challenge_page(scaled_attention(f"w = F.softmax(scores, {axis})\nprint(w @ v)")),
    )
    (card,) = cards(run, "decks")
    assert card["answer"] == "[[1.6605, 2.6605]]"
