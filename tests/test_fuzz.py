"""Fuzzing: arbitrary text and mutated seeds never crash a reader or the pipeline, and valid
cards round-trip through `deckbuild cards --json` unchanged."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from html import unescape
from pathlib import Path

from click.testing import CliRunner
from hypothesis import example, given
from hypothesis import strategies as st

from conftest import DECKS, seed
from deckbuild.build import collect, render_card
from deckbuild.cli import cli
from deckbuild.errors import DeckbuildError, Report
from deckbuild.readers import quizpage, semicolon
from deckbuild.render import Where, render_text
from hostile import MATH_COMMANDS, dangers

SEEDS = [seed(n).read_text(encoding="utf-8").split("\n") for n in ("000", "001", "002", "003", "004")]
PAGE_WORDS = [
    "Recall & Review", "beginner", "advanced", "Click to reveal answer", "✗ Incorrect", "✓ Correct",
    "You got /4 concepts.", "Practice", "(1/5)", "1. Q?", "2. Q?", "easy", "A. x", "B. y", "AText",
    "Solution", "Step 1: a", "Final Answer:", "x -> Option A", "Quick Check:", "Hint: h",
    "Common Mistakes:", "Challenge - 2 Problems", "❓ Predict Output", "expert1:00remaining",
    "Attempts:", "2 left", "💡 Hint", "```python", "```", "NLP", "import torch x = 1 print(x)",
    "Question;Answer;UUID", '"', ";", "{{calc attention q=[[1]] k=[[1]] v=[[1]]}}",
]  # fmt: skip
lines = st.lists(st.one_of(st.text(max_size=40), st.sampled_from(PAGE_WORDS)), max_size=40)


@given(lines)
@example(['"', '"0', "0"])  # text after a quoted first line's quote, and no header: a row read without one
def test_the_readers_never_raise_on_any_text(text):
    for reader in (semicolon.read, quizpage.read):
        reader("fuzz.txt", text, Report())


@st.composite
def mutated_seed(draw):
    original = list(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        if not original:
            break
        i = draw(st.integers(0, len(original) - 1))
        action = draw(st.sampled_from(["drop", "dup", "swap", "cut", "garble", "truncate"]))
        if action == "drop":
            del original[i]
        elif action == "dup":
            original.insert(i, original[i])
        elif action == "swap":
            j = draw(st.integers(0, len(original) - 1))
            original[i], original[j] = original[j], original[i]
        elif action == "cut":
            original[i] = original[i][: draw(st.integers(0, len(original[i])))]
        elif action == "garble":
            original[i] = original[i] + draw(st.text(max_size=10))
        else:
            del original[i:]
    return "\n".join(original)


@given(mutated_seed())
def test_mutated_seeds_give_cards_or_our_own_errors_never_a_crash(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "decks" / "Deck" / "page.txt"
        path.parent.mkdir(parents=True)
        path.write_text(text, encoding="utf-8")
        try:
            collection = collect([path.parent.parent])
            for parsed in collection.cards:
                render_card(parsed.source, parsed.line, parsed.model, collection.report, {})
        except DeckbuildError:
            pass


@given(st.text(max_size=200))
def test_rendering_any_text_never_raises_or_lets_script_through(text):
    report = Report()
    html = render_text(text, Where("fuzz.txt", 1), report)
    assert "<script" not in html.lower() and "javascript:" not in html.lower()
    assert dangers(html) == [] or report.failed(strict=False), html


field_text = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Cc", "Zl", "Zp"),
        blacklist_characters="\ufeff",
        whitelist_characters="\n",
    ),
    min_size=1, max_size=60,
).filter(lambda s: s.strip() == s and s.strip() and "{{calc" not in s)  # fmt: skip
cards = st.lists(st.tuples(field_text, field_text, st.uuids(version=4)), min_size=1, max_size=8,
                 unique_by=lambda c: c[2])  # fmt: skip


def quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


@given(cards)
def test_valid_cards_round_trip_through_cards_json(rows):
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "Deck" / "cards.txt"
        source.parent.mkdir()
        body = "".join(f"{quoted(q)};{quoted(a)};{u}\n" for q, a, u in rows)
        source.write_text("Question;Answer;UUID\n" + body, encoding="utf-8")
        result = CliRunner().invoke(cli, ["cards", str(source.parent), "--json"])
        assert result.exit_code == 0, result.output
        got = [(c["question"], c["answer"], c["id"]) for c in json.loads(result.stdout)]
        assert got == [(q, a, str(u)) for q, a, u in rows]


def test_the_repository_decks_survive_a_copy_and_rebuild(tmp_path):
    shutil.copytree(DECKS, tmp_path / "decks")
    assert len(collect([tmp_path / "decks"]).cards) == 101


# Untrusted markup, by class: placeholders that author text might forge, and MathJax commands
# that would make links, styles or macros, in every spelling a page might carry.
PRIVATE = st.sampled_from(["\ue000", "\ue001", "\ue002", "\ue003", "\uf8ff", "\U000f0000"])
SMALL_TEXT = st.text(alphabet=st.sampled_from("ab 0123\"'<>=&;:/\\()[]{}$`*_"), max_size=8)
BREAKOUTS = st.sampled_from(['" onerror="alert(1)', "' onmouseover='alert(2)", '" style="position:fixed',
                             '"><img src=x onerror=alert(3)>', '" href="javascript:alert(4)'])  # fmt: skip
BODY = st.one_of(SMALL_TEXT, BREAKOUTS, st.tuples(SMALL_TEXT, BREAKOUTS).map("".join))


@st.composite
def formula(draw, body=BODY):
    opener, closer = draw(st.sampled_from([("\\(", "\\)"), ("\\[", "\\]"), ("$", "$"), ("$$", "$$")]))
    return opener + draw(body) + closer


@st.composite
def forged(draw):
    """Text shaped like a placeholder: private-use characters around a number, or references to them."""
    ends = st.one_of(PRIVATE, PRIVATE.map(lambda c: f"&#x{ord(c):X};"), PRIVATE.map(lambda c: f"&#{ord(c)};"))
    return draw(ends) + str(draw(st.integers(0, 3))) + draw(ends)


@st.composite
def placeholder_text(draw):
    value = st.one_of(formula(), forged(), BREAKOUTS.map(lambda b: f"`#!python {b}`"))
    pieces = st.one_of(
        st.lists(st.one_of(PRIVATE, forged(), st.sampled_from("0123456789 ")), max_size=6).map("".join),
        formula(),
        BODY.map(lambda s: f"`#!python {s}`" if s.strip("` ") else "x"),
        st.tuples(st.sampled_from(["alt", "title", "src", "href"]), value).map(
            lambda a: (
                f'<img src="https://example.org/a.png" {a[0]}="{a[1]}"> '
                f'<a href="https://example.org/" {a[0]}="{a[1]}">l</a>'
            )
        ),
        value.map(lambda f: f"![{f}](https://example.org/b.png)"),
        value.map(lambda f: f'[{f}](https://example.org/ "{f}")'),
        BREAKOUTS,
        SMALL_TEXT,
    )
    return "".join(draw(st.lists(pieces, min_size=1, max_size=8)))


@given(placeholder_text())
@example('<img src="https://example.org/a.png" alt="\\(" onerror="alert(1)" title="\\)">')
@example('<img src="https://example.org/a.png" alt="\ue0000\ue001"> \\(" onerror="alert(2)\\)')
def test_placeholders_never_let_author_text_change_the_html(text):
    report = Report()
    html = render_text(text, Where("fuzz.txt", 1), report)
    assert dangers(html) == [] or report.failed(strict=False), html
    for char in ("\ue000", "\ue001", "\ue002"):
        assert html.count(char) <= unescape(text).count(char), (char, html)


@given(
    st.lists(
        st.one_of(forged(), st.just("\\(x\\)"), st.sampled_from(["a ", "\n", "**b** ", "- "])), max_size=12
    )
)
def test_author_text_is_never_taken_for_a_placeholder(pieces):
    text = "".join(pieces)
    html = render_text(text, Where("fuzz.txt", 1), Report())
    # Every private-use character stays, as written or as the character a reference names,
    # and every formula appears exactly once.
    for char in {c for c in unescape(text) if "\ue000" <= c <= "\uf8ff" or c >= "\U000f0000"}:
        assert html.count(char) == unescape(text).count(char), (char, html)
    assert html.count("\\(x\\)") == pieces.count("\\(x\\)"), html


def spelled(draw, name: str) -> str:
    """Write a command name as a page might: any case, a letter as a character reference."""
    letters = [c.swapcase() if draw(st.booleans()) and draw(st.booleans()) else c for c in name]
    if draw(st.booleans()):
        i = draw(st.integers(0, len(letters) - 1))
        letters[i] = f"&#{ord(letters[i])};"
    return "".join(letters)


@st.composite
def hostile_math(draw):
    name = draw(st.sampled_from([*MATH_COMMANDS, "bbox", "enclose"]))
    gap = st.sampled_from(["", " ", "\n", "%x\n", "{}", " \t"])
    argument = st.sampled_from(["{javascript:alert(1)}", "{position:fixed}", "[border:1px]", "{mjx-x}",
                                '[href="javascript:x"]', "#1{#1ref}", "\\a", '{box}[style="x:y"]',
                                ""])  # fmt: skip
    command = "\\" + spelled(draw, name) + draw(gap) + draw(argument) + draw(gap) + draw(argument)
    plain = draw(st.text(alphabet="ab 01+^_", max_size=4))
    delimiters = [("\\(", "\\)"), ("\\[", "\\]"), ("$", "$"), ("$$", "$$"), ("\\\\(", "\\\\)"),
                  ("&#92;(", "&#92;)"), ("&#x5c;[", "&#x5C;]")]  # fmt: skip
    opener, closer = draw(st.sampled_from(delimiters))
    before = draw(st.sampled_from(["", "text ", "- ", "**b** ", "<span>", "<b>x</b>\n\n"]))
    if draw(st.booleans()):
        return before + opener + plain + command + closer
    # Or a delimiter inside the formula, that MathJax would split it at, and the command after it,
    # where MathJax might read a formula that a later delimiter closes.
    tokens = st.sampled_from(["\\(", "\\)", "\\[", "\\]", "&#92;(", "&#x5c;]"])
    inside = "".join(draw(st.lists(tokens, min_size=1, max_size=3)))
    later = draw(st.sampled_from(["\\\\)", "\\\\]", "&#92;)", "&#92;]", "\\)", "\\]"]))
    return before + opener + plain + inside + closer + " " + command + " " + later


@given(hostile_math())
@example(r"$$a\]\($$ \href{javascript:alert(1)}{x} \\)")
@example(r"$a\)\[$ \href{javascript:alert(1)} \\]")
def test_no_mathjax_command_that_links_styles_or_defines_reaches_a_card_unrefused(text):
    report = Report()
    html = render_text(text, Where("fuzz.txt", 1), report)
    assert dangers(html) == [] or report.failed(strict=False), (text, html)


HOSTILE_PIECES = st.sampled_from([
    '<span style="background:url(https://example.org/t.png)">a</span>', '<b style="color:transparent">b</b>',
    '<div style="color:u\\72l(x);position:fixed">c</div>', "[sound:x.mp3]", "&#91;sound:y.mp3]",
    "[anki:tts]z[/anki:tts]", "[up](../x)", '<a href="/etc/passwd">p</a>', "[f](#top)", "`[sound:c.mp3]`",
    '<a href="//example.org">h</a>', "<svg onload=alert(1)>", "<img src=x onerror=alert(2)>",
    '<math><mi href="javascript:x">m</mi></math>', '<a href="java&#x09;script:alert(3)">t</a>', "**", "\n\n",
    "- ", "> ", " ", "text",
])  # fmt: skip


@given(st.lists(HOSTILE_PIECES, min_size=1, max_size=10).map("".join))
def test_no_style_link_or_sound_tag_that_loads_plays_or_hides_reaches_a_card(text):
    report = Report()
    html = render_text(text, Where("fuzz.txt", 1), report)
    assert dangers(html) == [] or report.failed(strict=False), html


_TAG_NAMES = st.sampled_from(
    ["y", "script", "style", "svg", "iframe", "x-y", "SCRIPT", "Style", "math", "b", "i"]
)
_WORDS = st.from_regex(r"[a-z]{3,8}", fullmatch=True)
_TAG_LIKE = st.builds(
    lambda slash, name, rest: f"<{slash}{name}{rest}>",
    st.sampled_from(["", "/"]),
    _TAG_NAMES,
    st.sampled_from(["", " and y", " src=x onerror=alert(1)", "/onload=alert(1)", ' a="b"']),
)


@given(st.lists(st.one_of(_WORDS, _TAG_LIKE, st.sampled_from(["<", ">", "&", " < ", "x<y"])), min_size=1))
def test_no_word_of_the_author_is_cut_by_a_tag_it_sits_in_or_after(pieces):
    text = " ".join(pieces)
    report = Report()
    markup = render_text(text, Where("t.txt", 1), report)
    shown = unescape(re.sub(r"<[^>]*>", " ", markup))
    for word in (p for p in pieces if p.isalpha() and p.islower()):
        assert word in shown, (text, markup)
    assert dangers(markup) == [], markup
