"""Bounded work: every field is checked against named limits before anything slow or recursive
meets it, and the math scanner is linear. No timings: the tests count work and check messages.
`make fuzz` runs the generators here with many more examples.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from ankihelp import import_package, notes_by_guid
from conftest import put
from deckbuild import limits, render
from deckbuild.build import collect, render_all
from deckbuild.cli import cli
from deckbuild.errors import Report
from deckbuild.limits import MAX_FIELD_CHARS, MAX_MARKUP_WORK, MAX_NESTING, field_problem, nesting
from deckbuild.models import Option, Step
from deckbuild.render import MAX_SHOWN_FORMULA, Where, extract, options_html, render_text, steps_html

WHERE = Where("deck.txt", 3)
# Every token with a meaning to Markdown, LaTeX or HTML, and runs of them that scanners start on.
TOKENS = [
    "\\(", "\\)", "\\[", "\\]", "\\\\[", "$", "$$", "$a ", "`", "``", "``a`", "```\n", "~~~\na\n",
    "<", "<a ", "<div>", "<br>", "&", "[", "![", "[a](", "]", "*", "**", "*a ", "_", "_a ", ">", "> ",
    "-", "- ", "1.", "1. ", "{", "}", "\\left", "\\right", "\\", "|", "\n", "\n\n", "    ", "a",
]  # fmt: skip
# Ways of nesting one level deeper, as (opening, closing) around the level inside.
NESTERS = [
    ("- ", ""), ("1. ", ""), ("> ", ""), ("*", "*"), ("**", "**"), ("_", "_"), ("[", "]"), ("(", ")"),
    ("{", "}"), ("<div>", "</div>"), ("<b>", "</b>"), ("![", "](x.png)"), ("\\(\\frac{", "}{2}\\)"),
]  # fmt: skip


def problems(text: str) -> list[str]:
    report = Report()
    render_text(text, WHERE, report)
    return [str(p) for p in report.problems]


def markdown_inputs(text: str) -> list[str]:
    """Render `text`; return every text that reached Python-Markdown."""
    seen: list[str] = []
    real = render._markdown_to_html

    def spy(text: str) -> str:
        seen.append(text)
        return real(text)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(render, "_markdown_to_html", spy)
        render_text(text, WHERE, Report())
    return seen


@given(
    token=st.sampled_from(TOKENS),
    copies=st.integers(1, 2 * MAX_FIELD_CHARS),
    around=st.sampled_from(["", "x ", "\\(x\\) ", "`c` "]),
    then=st.sampled_from(["", "<", "<br>", "`", "\\)", "$"]),
)
def test_any_run_of_special_tokens_renders_or_meets_a_limit_never_a_crash(token, copies, around, then):
    text = (around + token * copies)[: 2 * MAX_FIELD_CHARS] + then
    report = Report()
    render_text(text, WHERE, report)
    problem = field_problem(text, "`~")  # checked before the code spans are found
    if problem is not None:
        assert [str(p) for p in report.problems] == [f"deck.txt:3: {problem}"]


@given(token=st.sampled_from(TOKENS), copies=st.integers(1, MAX_FIELD_CHARS))
def test_markdown_never_gets_a_text_above_its_limits(token, copies):
    for text in markdown_inputs(token * copies):
        assert field_problem(text) is None


def test_the_markdown_guard_passes_what_is_within_the_limits_and_stops_what_is_not():
    assert markdown_inputs("[a] " * 300) == ["[a] " * 300]
    assert markdown_inputs("[a] " * 400) == []
    assert markdown_inputs("- " * (MAX_NESTING + 1) + "x") == []


@st.composite
def nested(draw: st.DrawFn) -> tuple[str, int]:
    """Text nested `depth` levels deep, mixing every way of nesting, and its depth."""
    depth = draw(st.integers(1, 4 * MAX_NESTING))
    kinds = draw(st.lists(st.sampled_from(NESTERS), min_size=1, max_size=3))
    text = "x"
    for level in range(depth):
        opening, closing = kinds[level % len(kinds)]
        text = opening + text + closing
    if draw(st.booleans()):
        depth = min(depth, 90)  # deeper, the indentation alone makes the field too long
        text = "\n".join("    " * i + "- item" for i in range(depth))
    return text, depth


@given(nested())
def test_nesting_at_any_depth_renders_or_is_refused_with_its_depth(case):
    text, depth = case
    found = problems(text)  # never a RecursionError
    assert nesting(text) <= depth + 1
    if nesting(text) > MAX_NESTING:
        assert found == [
            f"deck.txt:3: field nested too deeply ({nesting(text)} levels of lists, quotes or brackets, "
            f"at most {MAX_NESTING}); flatten it"
        ]


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("- a\n    - b\n        - c", 3),
        ("1. 1. 1. x", 3),
        (">>> x", 3),
        ("> > - x", 3),
        ("[[(x)]]", 3),
        ("\\(\\{\\{x\\}\\}\\)", 0),  # escaped braces and math delimiters nest nothing
        ("a [b] (c) {d}", 1),
        ("1.5 is -3 or *4*", 0),
    ],
)
def test_nesting_counts_lists_quotes_indentation_and_brackets(text, depth):
    assert nesting(text) == depth


def test_each_limit_has_its_message_and_what_to_do():
    assert problems("a" * (MAX_FIELD_CHARS + 1)) == [
        "deck.txt:3: field too long (20,001 characters, at most 20,000); shorten or split it"
    ]
    assert problems("- " * (MAX_NESTING + 1) + "x") == [
        "deck.txt:3: field nested too deeply (33 levels of lists, quotes or brackets, at most 32); flatten it"
    ]
    assert problems("- " * MAX_NESTING + "x") == []
    heavy = "[a] " * 400  # matched, shallow, short: only their number times the length is too much
    assert problems(heavy) == [
        "deck.txt:3: field has too much markup for Markdown (400 of [ ` < ~ in 1,600 characters; "
        "the two multiplied may be at most 400,000); shorten or split it"
    ]
    assert len(heavy) * heavy.count("[") > MAX_MARKUP_WORK > len(heavy[:1200]) * heavy[:1200].count("[")
    assert problems(heavy[:1200]) == []


def test_formulas_are_held_out_before_the_markup_is_counted():
    formulas = "\\(a_{[i]} < b\\) " * 300  # 300 [ and < inside formulas: Markdown never sees them
    assert problems(formulas) == []


class CountingClosers(render._Closers):
    made: ClassVar[list[render._Closers]] = []

    def __init__(self, text: str) -> None:
        super().__init__(text)
        CountingClosers.made.append(self)


@pytest.mark.parametrize(("opener", "missing"), [("\\(", 1), ("\\[", 1), ("\\(\\[", 2), ("x$$", 1)])
def test_the_scanner_searches_for_a_missing_closer_once_not_once_per_opener(opener, missing, monkeypatch):
    monkeypatch.setattr(render, "_Closers", CountingClosers)
    CountingClosers.made = []
    report = Report()
    text = opener * 80_000 if opener != "x$$" else "$$" + "\\(x\\)" * 80_000
    _, held = extract(text, WHERE, report)
    assert len(report.problems) == missing, "one error per kind of closer missing, not 80,000"
    assert sum(c.searches for c in CountingClosers.made) <= missing + len(held.formulas)


def test_the_math_scanner_searches_once_per_formula(monkeypatch):
    monkeypatch.setattr(render, "_Closers", CountingClosers)
    CountingClosers.made = []
    _, held = extract("\\(x\\) \\[y\\] $$z$$ " * 1000 + "\\(" * 1000, WHERE, Report())
    assert len(held.formulas) == 3000
    assert sum(c.searches for c in CountingClosers.made) <= 3000 + 3


def test_options_and_steps_are_bounded_like_any_field():
    report = Report()
    options_html((Option(letter="A", text="[" * (MAX_NESTING + 1)),), WHERE, report)
    # One level deeper than the option: the report keeps a problem repeated at one line only once.
    steps_html((Step(title="t", text="> " * (MAX_NESTING + 2)),), WHERE, report)
    assert [p.message.split(" (")[0] for p in report.problems] == ["field nested too deeply"] * 2


def test_a_card_too_deep_is_skipped_with_its_line_and_the_rest_is_built(deck_tree, monkeypatch, collection):
    put(
        deck_tree,
        "Deck/cards.txt",
        "Question;Answer;UUID\n"
        "Good?;Yes;11111111-1111-4111-8111-111111111111\n"
        f"Deep?;{'1. ' * 40}x;22222222-2222-4222-8222-222222222222\n"
        "{{calc softmax x=" + "[" * 40 + "1" + "]" * 40 + "}};A;33333333-3333-4333-8333-333333333333\n",
    )
    monkeypatch.chdir(deck_tree.parent)
    failed = CliRunner().invoke(cli, ["build", "decks"])
    assert failed.exit_code == 1
    assert failed.stderr == (
        "decks/Deck/cards.txt:3: answer field nested too deeply (40 levels of lists, quotes or brackets, "
        "at most 32); flatten it\n"
        "decks/Deck/cards.txt:4: question field nested too deeply (42 levels of lists, quotes or brackets, "
        "at most 32); flatten it\n"
        "2 error(s), 0 warning(s)\n"
    )
    assert not (deck_tree.parent / "dist").exists()
    # Flattened to the limit, the same cards build and import.
    put(
        deck_tree,
        "Deck/cards.txt",
        "Question;Answer;UUID\n"
        "Good?;Yes;11111111-1111-4111-8111-111111111111\n"
        f"Deep?;{'1. ' * MAX_NESTING}x;22222222-2222-4222-8222-222222222222\n",
    )
    built = CliRunner().invoke(cli, ["build", "decks"])
    assert built.exit_code == 0, built.output
    assert "2 card(s) read, 2 packaged, 0 skipped" in built.stdout
    assert import_package(collection, deck_tree.parent / "dist" / "Deck.apkg").new == 2
    deep = notes_by_guid(collection)["22222222-2222-4222-8222-222222222222"]
    assert deep["Back"].count("<ol>") == MAX_NESTING


def test_messages_quote_a_long_formula_shortened_so_the_output_stays_linear():
    commands = "".join(f"\\zz{chr(97 + i // 26)}{chr(97 + i % 26)} " for i in range(600))
    report = Report()
    render_text(f"\\({commands}\\)", WHERE, report)
    assert len(report.problems) == 600
    assert max(len(p.message) for p in report.problems) < MAX_SHOWN_FORMULA + 80
    assert report.problems[0].message == (
        f"unknown LaTeX command \\zzaa in formula \\({commands[: MAX_SHOWN_FORMULA - 5]}…\\); "
        "check its spelling"
    )


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


@given(
    token=st.sampled_from(TOKENS),
    copies=st.integers(1, MAX_FIELD_CHARS // 2),
    where=st.sampled_from(["question", "answer", "both"]),
)
def test_every_card_through_the_whole_pipeline_is_read_or_reported_never_a_crash(token, copies, where):
    field = token * copies
    question = field if where != "answer" else "Q?"
    answer = field if where != "question" else "A."
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "decks" / "Deck" / "cards.txt"
        path.parent.mkdir(parents=True)
        row = f"{_quoted(question)};{_quoted(answer)};11111111-1111-4111-8111-111111111111"
        path.write_text(f"Question;Answer;UUID\n{row}\n", encoding="utf-8")
        collection = collect([path.parent.parent])
        render_all(collection, {})
    fields = (("question", question), ("answer", answer))
    found = (field_problem(text.strip(), "", f"{name} field") for name, text in fields)
    expected = next(filter(None, found), None)
    messages = [p.message for p in collection.report.errors]
    if expected is not None:
        assert expected in messages and collection.cards == []


# The <br> pattern as first written: right, but quadratic in a run of blanks without a <br> after it.
_BR_AS_WRITTEN = re.compile(r"[ \t]*<br\s*/?>(?:[ \t](?![ \t]))?", re.IGNORECASE)


@given(st.lists(st.sampled_from([" ", "\t", "<br>", "<BR/>", "<br />", "a", "-", "\n"]), max_size=30))
def test_line_breaks_are_found_exactly_as_the_first_pattern_found_them(pieces):
    text = "".join(pieces)
    assert render._BR_RE.sub("|", text) == _BR_AS_WRITTEN.sub("|", text)


def test_finding_line_breaks_tries_each_run_of_blanks_once():
    # A lookbehind keeps the pattern from starting inside a run of blanks, so it cannot rescan one.
    assert render._BR_RE.pattern.startswith("(?:(?<![ \\t])[ \\t]*|(?<=[ \\t]))<br")
    assert render._BR_RE.sub("|", "a<br> <br>b" + " " * 50_000 + "<") == "a||b" + " " * 50_000 + "<"


# Pieces that reach every limit the card check applies: brackets, list and quote prefixes at line
# starts, long runs; fields of text or not (options and steps are lists and dicts).
_LIMIT_PIECES = ["[", "(", "{", "\\(", ">", "- ", "1.", " ", "\t", "\n", "a", "x" * 40, "(" * MAX_NESTING]
_LIMIT_TEXT = st.lists(st.sampled_from(_LIMIT_PIECES), max_size=60).map("".join)


@given(
    st.dictionaries(
        st.sampled_from(["question", "answer", "hint", "extra", "options"]),
        _LIMIT_TEXT | st.lists(_LIMIT_TEXT, max_size=3) | st.none(),
        max_size=5,
    ),
    st.integers(0, 2),
)
def test_the_whole_card_check_finds_exactly_what_the_field_by_field_check_finds(data, longer):
    # The fast check runs once over the joined card; any field it lets through must be fine alone.
    if longer and data:
        first = next(iter(data))
        data[first] = "y" * (MAX_FIELD_CHARS // 2 * longer + 1)
    assert limits.card_problem(data) == limits._fields_problem(data)


@given(_LIMIT_TEXT)
def test_the_deep_prefix_is_found_after_a_line_break_exactly_where_it_starts_a_line(text):
    found = limits._DEEP_PREFIX_RE.search(text) is not None
    assert (limits._DEEP_LINE_RE.search("\n" + text) is not None) == found
