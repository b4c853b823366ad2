"""The rendering surprises authors trip on with Python-Markdown's defaults, decided and held."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ankihelp import import_package
from conftest import put
from deckbuild.build import build
from deckbuild.errors import Report
from deckbuild.render import Where, render_text

NOW = int(time.time()) - 10_000

words = st.text(alphabet="abcdefghij XYZ", min_size=1, max_size=12).map(str.strip).filter(bool)
names = st.from_regex(r"_{0,2}[a-z]{1,6}(_[a-z0-9]{1,4}){0,3}_{0,2}", fullmatch=True)


def render(text: str) -> str:
    report = Report()
    html = render_text(text, Where("x.txt", 1), report)
    assert not report.errors
    return html


@given(words, st.lists(words, min_size=1, max_size=5), st.sampled_from(["<br>", "<br> ", "\n", "<br/>"]))
def test_a_list_right_after_a_line_of_text_is_a_list(intro, items, br):
    html = render(intro + br + br.join(f"- {item}" for item in items))
    assert re.findall(r"<li>(.*?)</li>", html) == items
    assert "- " not in html.replace("<li>", "")


@given(st.lists(names, min_size=1, max_size=4))
def test_underscores_never_make_emphasis(identifiers):
    text = "Call " + " and ".join(identifiers)
    html = render(text)
    assert "<em>" not in html and "<strong>" not in html
    assert html == f"<p>{text}</p>"


code_lines = st.text(alphabet="abc xyz=()", min_size=1, max_size=8).filter(lambda s: s.strip())


@given(st.lists(code_lines, min_size=2, max_size=4))
def test_a_br_inside_a_code_span_stays_a_line_break(lines):
    html = render("Code: `" + "<br>".join(lines) + "`")
    (code,) = re.findall(r"<code>(.*?)</code>", html, re.S)
    assert [part.strip() for part in code.split("<br>")] == [line.strip() for line in lines]


@given(
    st.integers(min_value=1, max_value=4),
    st.integers(min_value=1, max_value=3),
    st.sampled_from(["\n", "<br>"]),
)
def test_a_list_nested_by_any_indentation_is_nested(indent, depth, br):
    if br == "<br>":
        indent = max(indent, 2)  # a lone space after <br> is a separator, two or more indent
    lines = [" " * (indent * level) + f"- item{level}" for level in range(depth + 1)]
    html = render(br.join(lines))
    assert html.count("<ul>") == depth + 1
    assert re.findall(r"<li>(item\d)", html) == [f"item{level}" for level in range(depth + 1)]


def test_fenced_code_keeps_its_dashes_and_indentation():
    html = render("Config:<br>```yaml<br>keys:<br>  - a<br>  - b<br>```")
    assert "<li>" not in html and "  - a" in re.sub(r"<[^>]+>", "", html)


@given(st.text(alphabet="\ue000\ue001\ue002\ue003\uf8ff0123 ", max_size=10))
@example("   ")  # four blanks would start a code block: the text starts with a word
def test_a_code_span_break_is_held_like_any_piece_so_forged_private_use_text_stays_text(forged):
    html = render(f"Say{forged} `a<br>b` {forged}")
    assert "<code>a<br>b</code>" in html
    assert html.count("<br>") == 1
    assert "".join(c for c in html if "\ue000" <= c <= "\uf8ff") == "".join(
        c for c in forged + forged if "\ue000" <= c <= "\uf8ff"
    )


@pytest.mark.anki
def test_a_learner_sees_each_decision_in_anki(deck_tree, tmp_path, collection):
    uuid = "a1111111-1111-4111-8111-111111111111"
    answer = "Intro:<br>- a<br>  - nested<br>- b<br><br>Call `f(x)<br>g(x)` in __init__ of my_class."
    put(deck_tree, "Deck/cards.txt", f"Question;Answer;UUID\nWhat shows?;{answer};{uuid}\n")
    (apkg,) = build([deck_tree], tmp_path / "dist", now=NOW).packages
    import_package(collection, apkg)
    (cid,) = collection.find_cards("")
    shown = collection.get_card(cid).render_output(reload=True).answer_text
    assert "<p>Intro:</p>\n<ul>\n<li>a<ul>\n<li>nested</li>\n</ul>\n</li>\n<li>b</li>\n</ul>" in shown
    assert "<code>f(x)<br>g(x)</code> in __init__ of my_class." in shown
    assert "<strong>" not in shown and "<em>" not in shown
