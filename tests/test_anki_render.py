"""Rendered fields in a real Anki collection: math, code, safe HTML, media, repaired text."""

from __future__ import annotations

import html
import re
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ankihelp import import_package, notes_by_guid
from conftest import DATA, put
from deckbuild.build import build
from deckbuild.errors import BuildFailed

pytestmark = pytest.mark.anki
NOW = int(time.time()) - 10_000
U = "c1111111-1111-4111-8111-111111111111"


@pytest.fixture
def imported(deck_tree, tmp_path, collection):
    put(deck_tree, "Deck/constructs.txt", DATA / "anki" / "constructs.txt")
    put(deck_tree, "Deck/img/diagram.png", DATA / "anki" / "diagram.png")
    (apkg,) = build([deck_tree], tmp_path / "dist", now=NOW).packages
    assert import_package(collection, apkg).new == 5
    return collection, notes_by_guid(collection)


def test_math_survives_and_dollars_become_mathjax(imported):
    _, notes = imported
    assert notes["a1111111-1111-4111-8111-111111111111"]["Front"] == r"<p>What is \(x^2\)?</p>"
    back = notes["a1111111-1111-4111-8111-111111111111"]["Back"]
    assert back == r"<p>It is \(x \cdot x\).<br>" + "\n" + r"Also written \[x^2\], for $5 at most.</p>"


def test_no_field_of_any_note_can_run_script(imported):
    _, notes = imported
    for note in notes.values():
        for value in note.fields:
            lowered = value.lower()
            assert "<script" not in lowered and "onerror" not in lowered
            assert "javascript:" not in lowered and "<iframe" not in lowered
    # The author's words stay, shown as the text they are: a tag a card does not keep is never run.
    assert (
        notes["a3333333-3333-4333-8333-333333333333"]["Front"]
        == "<p>Evil &lt;script&gt;alert(1)&lt;/script&gt; question?</p>"
    )


def test_code_is_highlighted_inside_pre_and_code(imported):
    _, notes = imported
    back = notes["a2222222-2222-4222-8222-222222222222"]["Back"]
    assert "<pre" in back and "<code>" in back and 'style="color:' in back


def test_mojibake_is_repaired(imported):
    _, notes = imported
    assert (
        notes["a4444444-4444-4444-8444-444444444444"]["Front"] == "<p>Why does relevance come from Q⋅K?</p>"
    )


def test_images_reach_the_collection_media_folder(imported):
    col, notes = imported
    back = notes["a5555555-5555-4555-8555-555555555555"]["Back"]
    name = back.split('src="')[1].split('"')[0]
    assert name.startswith("diagram-") and name.endswith(".png")
    media = Path(col.media.dir()) / name
    assert media.read_bytes() == (DATA / "anki" / "diagram.png").read_bytes()


def test_seed_003_br_is_kept_in_anki(deck_tree, tmp_path, collection):
    from conftest import seed

    put(deck_tree, "Deck/003.txt", seed("003"))
    import_package(collection, build([deck_tree], tmp_path / "d", now=NOW).packages[0])
    notes = notes_by_guid(collection)
    assert "<br>" in notes["87863c23-2111-4109-b7aa-c6e04aff3da0"]["Back"]
    assert "(Q⋅K)" in notes["72db265c-41e3-4ecf-be84-e6696a339ddc"]["Back"]
    assert r"\(\mathbf{Q}\)" in notes["d33e3f45-53d6-4d4d-860c-b337569cd772"]["Back"]


# Pieces of text that show something, and pieces that show nothing once rendered.
_SEEN = st.sampled_from(["word", "x", "![](https://example.org/i.png)", "\\(x\\)", "`c`", "&amp;"])
_MISSING = "![](missing.png)"  # left out, with a warning that says what to do
_UNSEEN_PIECES = st.sampled_from(
    ["<!-- note -->", "<span></span>", "&nbsp;", "&#8203;", "&#xFEFF;", "<br>", " ", "<b> </b>", "<p></p>",
     "&lrm;", "\u3164", "<img>", "![](javascript:x)"]
)  # fmt: skip
_CLOZE = st.sampled_from(
    [
        "{{c1::a}}",
        "{{c2::b}}",
        "<!-- {{c3::c}} -->",
        '<span title="{{c4::d}}">t</span>',
        '<b title="{{c1::e}}">u</b>',
    ]
)


def _shown(markup: str) -> bool:
    """Tell whether a card Anki rendered shows anything but its own layout: text or an image."""
    import unicodedata

    body = re.sub(r"(?s)<style>.*?</style>", "", markup)
    if re.search(r'<img [^>]*src="[^"]+"', body):
        return True
    text = html.unescape(re.sub(r"<[^>]+>", "", body))
    return any(not c.isspace() and c != "\u3164" and unicodedata.category(c) != "Cf" for c in text)


@given(st.lists(st.one_of(_SEEN, _UNSEEN_PIECES, st.just(_MISSING)), min_size=1, max_size=4), st.booleans())
@example(["<!-- note -->"], False)
@example([_MISSING, "&nbsp;"], True)
@example(["x"], True)
@example(["&#8203;"], True)
def test_a_card_that_would_show_nothing_is_refused_at_its_line(pieces, reverse):
    # Anki is the judge: each card of every note it imports shows its learner something.
    question = "".join(pieces)
    front, back = ("What?", question) if reverse else (question, "An answer")
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp) / "decks"
        row = f'"{front}";"{back}";{"yes" if reverse else ""};{U}'
        put(root, "Deck/cards.txt", f"Question;Answer;Reverse;UUID\n{row}\n")
        try:
            built = build([root], Path(temp) / "dist", now=NOW)
        except BuildFailed as failed:
            said = [
                (p.line, "shows nothing" in p.message or "is empty" in p.message)
                for p in failed.report.errors
            ]
            assert said == [(2, True)]
            return
        from anki.collection import Collection

        col = Collection(str(Path(temp) / "c.anki2"))
        try:
            import_package(col, built.packages[0])
            (note,) = notes_by_guid(col).values()
            # A blank side only where the author was told of the image left out, at the card's line.
            warned = [p.line for p in built.report.problems if "missing.png not found" in p.message]
            for card in note.cards():
                assert _shown(card.question()) or warned == [2], (question, card.question())
        finally:
            col.close()


@given(
    st.lists(st.one_of(_SEEN, _CLOZE), min_size=1, max_size=4).filter(lambda p: any("{{c" in x for x in p))
)
@example(["x", "<!-- {{c3::c}} -->", "{{c1::a}}"])
@example(['<span title="{{c4::d}}">t</span>', "{{c1::a}}"])
@example(['<b title="{{c1::e}}">u</b>', "{{c1::a}}"])
def test_every_cloze_of_the_sources_is_a_card_or_an_error_at_its_line(pieces):
    text = "".join(pieces)
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp) / "decks"
        put(root, "Deck/cards.txt", f'Question;Answer;UUID\n"{text.replace(chr(34), chr(34) * 2)}";;{U}\n')
        try:
            (apkg,) = build([root], Path(temp) / "dist", now=NOW).packages
        except BuildFailed as failed:
            assert [(p.line, "the cloze" in p.message) for p in failed.report.errors] == [(2, True)], text
            return
        from anki.collection import Collection

        col = Collection(str(Path(temp) / "c.anki2"))
        try:
            import_package(col, apkg)
            (note,) = notes_by_guid(col).values()
            wanted = sorted({int(n) for n in re.findall(r"\{\{c(\d+)::", text)})
            assert sorted(c.ord + 1 for c in note.cards()) == wanted
            for card in note.cards():
                assert 'class="cloze"' in card.question() and "{{c" not in card.question()
                assert '="<span' not in card.question(), "a cloze inside an attribute breaks the card"
        finally:
            col.close()
