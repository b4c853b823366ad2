"""Untrusted text: nothing that can run script reaches any field of any card, from any format."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from ankihelp import import_package, notes_by_guid
from conftest import DATA, put
from deckbuild.build import build
from deckbuild.cache import SHELL_RECORD, Cache
from deckbuild.cli import cli
from deckbuild.notetype import FIELDS
from hostile import dangers
from memohelp import memo_fields, memo_groups, rewrite_memo

pytestmark = pytest.mark.anki
REFUSED = DATA / "security" / "refused"
CASES = sorted(p.name for p in REFUSED.glob("*.txt"))
NOW = 1_750_000_000


def test_the_checker_sees_what_it_must():
    assert dangers('<p onclick="x">a</p><script></script><a href=" JavaScript:x">b</a>') == [
        "p onclick", "<script>", "a href= JavaScript:x", "a href= JavaScript:x",
    ]  # fmt: skip
    field = (
        r'<p>\(\hr&#101;f{x}{y}\) <code>\(\href{a}{b}\)</code> [sound:a.mp3] <a href="../x">r</a> '
        r'<span style="color:transparent">h</span> \(\bbox[border:1px]{x}\) \(a \\) \Class{j}{k}\)</p>'
    )
    assert dangers(field) == [
        "av tag [sound:", "a href=../x", "span style=color:transparent", "\\href", "styled \\bbox[border:1px",
        "\\Class",
    ]  # fmt: skip


def test_no_field_of_any_card_from_a_hostile_page_or_file_can_run_script(deck_tree, tmp_path, collection):
    put(deck_tree, "Hostile/page.txt", DATA / "security" / "hostile_page.txt")
    put(deck_tree, "Hostile/constructs.txt", DATA / "anki" / "constructs.txt")
    put(deck_tree, "Hostile/img/diagram.png", DATA / "anki" / "diagram.png")
    put(deck_tree, "Hostile/markup.txt", DATA / "security" / "hostile_markup.txt")
    (apkg,) = build([deck_tree], tmp_path / "dist", now=int(time.time()) - 100).packages
    log = import_package(collection, apkg)
    notes = notes_by_guid(collection)
    kinds = {n["Kind"] for n in notes.values()}
    assert kinds == {"basic", "recall", "quiz", "open", "practice", "challenge"}
    assert log.new == len(notes) == 16
    for guid, note in notes.items():
        for name, value in note.items():
            assert dangers(value) == [], f"{guid} {name}: {value}"
    challenge = next(n for n in notes.values() if n["Kind"] == "challenge")
    assert "&lt;script&gt;" in challenge["Code"], "code shows the script as text"


def test_hostile_markup_reaches_anki_as_harmless_text(deck_tree, tmp_path, collection):
    put(deck_tree, "Hostile/markup.txt", DATA / "security" / "hostile_markup.txt")
    result = build([deck_tree], tmp_path / "dist", now=int(time.time()) - 100)
    import_package(collection, result.packages[0])
    notes = {guid[:2]: note for guid, note in notes_by_guid(collection).items()}
    for note in notes.values():
        for name, value in note.items():
            assert dangers(value) == [], f"{name}: {value}"
    # A formula inside an attribute goes back as its source, escaped: no way out of the quotes.
    assert 'alt="\\(&quot; onerror=&quot;alert(1)&quot; title=&quot;\\)"' in notes["b1"]["Front"]
    assert 'alt="\\(&quot; onerror=&quot;alert(2)\\)"' in notes["b1"]["Back"]
    # Private-use characters the author wrote stay as written, never taken for placeholders.
    front = notes["b2"]["Front"]
    assert "\ue0000\ue001 and \ue0001\ue001 beside \\(x^2\\)" in front and front.count("x^2") == 1
    assert "<code>\ue0020\ue002</code>" in notes["b2"]["Back"] and "\uf0e7" in notes["b2"]["Back"]
    assert '<span style="color:red">tracked</span> <span>hidden</span>' in notes["b3"]["Front"]
    assert notes["b4"]["Front"].count("<a rel") == 5 and notes["b4"]["Back"].count("href") == 2
    assert notes["b5"]["Front"].count("&#91;sound:") == 3 and "&#91;anki:tts" in notes["b5"]["Front"]
    assert "&#91;SOUND:u.mp3]" in notes["b5"]["Back"]
    # What Anki itself would play or load from the rendered cards: nothing.
    for card_id in collection.find_cards(""):
        card = collection.get_card(card_id)
        card.render_output(reload=True)
        assert card.question_av_tags() == [] and card.answer_av_tags() == []
    # The same text left as written would be played: the check above can fail.
    note = notes["b5"]
    note["Front"] = note["Front"].replace("&#91;", "[")
    collection.update_note(note)
    card = note.cards()[0]
    card.render_output(reload=True)
    assert [getattr(tag, "filename", "tts") for tag in card.question_av_tags()] == [
        "x.mp3",
        "y.mp3",
        "z.mp3",
        "tts",
    ]
    warnings = [p.message for p in result.report.problems]
    assert warnings.count("link ../collection.media/x.html is not a web or mail address, so it was removed; "
                          "write it in full (https://…)") == 1  # fmt: skip


def expect(case: str, stderr: str) -> None:
    expected = REFUSED / f"{case}.expected"
    if os.environ.get("UPDATE_GOLDEN"):
        expected.write_text(stderr, encoding="utf-8")
    assert stderr == expected.read_text(encoding="utf-8")


@pytest.mark.parametrize("case", CASES)
def test_each_refused_formula_has_its_exact_message_and_writes_nothing(case, deck_tree, monkeypatch):
    put(deck_tree, f"Deck/{case}", REFUSED / case)
    monkeypatch.chdir(deck_tree.parent)
    result = CliRunner().invoke(cli, ["build", "decks"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.stdout == ""
    expect(case, result.stderr)
    assert not (deck_tree.parent / "dist").exists()


def test_a_file_name_that_mathjax_would_typeset_is_refused(deck_tree, monkeypatch):
    name = r"x\(\href{javascript:alert(1)}{y}\).txt"
    put(deck_tree, f"Deck/{name}", "Question;Answer;UUID\nQ;A;d1111111-1111-4111-8111-111111111111\n")
    monkeypatch.chdir(deck_tree.parent)
    result = CliRunner().invoke(cli, ["build", "decks"])
    assert result.exit_code == 1
    assert f"decks/Deck/{name}:2: source Deck/{name} holds \\( or \\[; remove it" in result.stderr


@pytest.mark.parametrize("seal", ["old", "foreign key"])
def test_a_planted_memo_row_never_reaches_a_package(deck_tree, tmp_path, own_cache, collection, seal):
    put(deck_tree, "Deck/cards.txt", DATA / "anki" / "constructs.txt")
    put(deck_tree, "Deck/img/diagram.png", DATA / "anki" / "diagram.png")
    first = build([deck_tree], tmp_path / "one", now=NOW)
    cards = first.report.counts["packaged"]
    assert sum(map(len, memo_groups(own_cache).values())) == cards
    attack = '<img src="x" onerror="alert(9)"><script>alert(9)</script>'
    with sqlite3.connect(own_cache / "cache.sqlite") as db:
        (old,) = db.execute("SELECT seal FROM memo").fetchone()
    # Every card planted, signed with a key that is not the cache's, or under the old seal.
    rewrite_memo(own_cache, lambda e: ([attack] + [""] * (len(FIELDS) - 1), *e[1:]), key=b"k" * 32)
    if seal == "old":
        with sqlite3.connect(own_cache / "cache.sqlite") as db:
            db.execute("UPDATE memo SET seal = ?", (old,))
    assert all(attack in f for f in memo_fields(own_cache))
    second = build([deck_tree], tmp_path / "two", now=NOW, jobs=1)
    assert second.report.counts["rendered"] == cards, "every planted row is rendered again"
    (apkg,) = second.packages
    assert apkg.read_bytes() == first.packages[0].read_bytes()
    import_package(collection, apkg)
    for note in notes_by_guid(collection).values():
        for name, value in note.items():
            # The source mentions <script>alert(1)</script> as text; only the planted alert(9) must not show.
            assert dangers(value) == [] and "alert(9)" not in value, f"{name}: {value}"
    assert not any(attack in f for f in memo_fields(own_cache)), "the planted rows were replaced"
    third = build([deck_tree], tmp_path / "three", now=NOW, jobs=1)
    assert third.report.counts.get("rendered", 0) == 0, "rows it signed itself are used again"


def test_a_planted_cache_entry_is_not_used(own_cache):
    store = Cache(own_cache)
    shell = {"db": "c2FmZQ==", "req": {"1573912204": [[0, "all", [0]]]}}
    store.put_many({"shell": shell})
    assert store.get_many({"shell": SHELL_RECORD}) == {"shell": shell}
    assert store.db is not None
    planted = '{"db": "cGxhbnRlZA==", "req": {"1573912204": [[0, "all", [0]]]}}'
    store.db.execute("UPDATE entries SET value = ?", (planted,))
    assert store.get_many({"shell": SHELL_RECORD}) == {}
    for seal, value in ((7, '{"a": 1}'), ("é", '{"a": 1}'), (b"x", '{"a": 1}'), ("0" * 32, b"{}")):
        store.db.execute("UPDATE entries SET seal = ?, value = ?", (seal, value))
        assert store.get_many({"shell": SHELL_RECORD}) == {}
    store.close()


def test_a_memo_row_of_the_wrong_types_is_rendered_again(deck_tree, tmp_path, own_cache):
    put(deck_tree, "Deck/cards.txt", DATA / "anki" / "constructs.txt")
    put(deck_tree, "Deck/img/diagram.png", DATA / "anki" / "diagram.png")
    first = build([deck_tree], tmp_path / "one", now=NOW)
    with sqlite3.connect(own_cache / "cache.sqlite") as db:
        db.execute("UPDATE memo SET cards = '<script>', seal = 12")
    second = build([deck_tree], tmp_path / "two", now=NOW, jobs=1)
    assert second.report.counts["rendered"] == first.report.counts["packaged"]
    assert second.packages[0].read_bytes() == first.packages[0].read_bytes()


def test_the_cache_key_is_private_and_one_others_could_touch_is_replaced(own_cache):
    Cache(own_cache).close()
    key = own_cache / "secret"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_bytes()) == 32
    first = key.read_bytes()
    assert Cache(own_cache).secret == first
    key.chmod(0o644)
    store = Cache(own_cache)
    assert store.db is not None and store.secret != first
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    store.close()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_cache_is_readable_by_its_owner_alone_whatever_the_umask(deck_tree, tmp_path, monkeypatch):
    put(deck_tree, "Deck/cards.txt", DATA / "anki" / "constructs.txt")
    folder = tmp_path / "fresh" / "deckbuild"
    monkeypatch.setenv("DECKBUILD_CACHE_DIR", str(folder))
    old = os.umask(0)
    try:
        result = build([deck_tree], tmp_path / "dist", now=NOW)
        store = Cache(folder)  # open, as a build's is, while its journals are there
        try:
            journals = sorted(p.name for p in folder.iterdir() if p.name.startswith("cache.sqlite-"))
            assert journals == ["cache.sqlite-shm", "cache.sqlite-wal"]
            made = {p.name: _mode(p) for p in folder.iterdir()}
        finally:
            store.close()
    finally:
        os.umask(old)
    assert result.report.counts["packaged"] > 0
    assert _mode(folder) == 0o700
    assert made == dict.fromkeys(("secret", "cache.sqlite", "cache.sqlite-wal", "cache.sqlite-shm"), 0o600)


def test_a_cache_an_earlier_version_left_readable_is_made_private(own_cache):
    Cache(own_cache).close()
    database = own_cache / "cache.sqlite"
    journals = [own_cache / "cache.sqlite-wal", own_cache / "cache.sqlite-shm"]
    for path in (database, *journals):
        path.touch()
        path.chmod(0o664)
    store = Cache(own_cache)
    try:
        assert store.db is not None
        assert [_mode(p) for p in (database, *journals)] == [0o600, 0o600, 0o600]
    finally:
        store.close()


def test_making_the_cache_private_keeps_the_locks_of_an_open_connection(own_cache):
    # Closing any descriptor of a file lets go of every POSIX lock this process holds on it: a
    # second cache opened in the process must not free the first one's lock for other processes.
    first = Cache(own_cache)
    try:
        assert first.db is not None
        first.db.execute("BEGIN IMMEDIATE")
        for name in ("cache.sqlite", "cache.sqlite-wal", "cache.sqlite-shm"):
            (own_cache / name).chmod(0o644)
        Cache(own_cache).close()
        probe = (
            "import sqlite3, sys\n"
            "db = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)\n"
            "try:\n    db.execute('BEGIN IMMEDIATE')\n"
            "except sqlite3.OperationalError as exc:\n    print(exc)\n"
            "else:\n    print('taken')\n"
        )
        where = str(own_cache / "cache.sqlite")
        found = subprocess.run([sys.executable, "-c", probe, where], capture_output=True, text=True)
        assert found.stdout.strip() == "database is locked"
        first.db.execute("COMMIT")
    finally:
        first.close()


@pytest.mark.parametrize(
    ("style", "kept"),
    [
        ("color:white;background:white", "background:white"),
        ("color:#FFF;background-color:#fff", "background-color:#fff"),
        ("line-height:0", None),
        ("line-height:0.0em;color:red", "color:red"),
        ("line-height: 0%", None),
        ("color:red;background:white", "color:red;background:white"),
        ("color:white;background:#fff", "background:#fff"),
        ("color:#fefefe;background-color:White", "background-color:White"),
        ("color:black;background:#000000 no-repeat", "background:#000000 no-repeat"),
        ("color:navy;background:black", "background:black"),
        ("color:#333;background:white", "color:#333;background:white"),
        ("color:white;background:inherit", "color:white;background:inherit"),
        ("line-height:1.5", "line-height:1.5"),
    ],
)
def test_text_hidden_by_its_own_style_loses_that_style(style, kept):
    from deckbuild.render import sanitize

    expected = f'<span style="{kept}">t</span>' if kept else "<span>t</span>"
    assert sanitize(f'<span style="{style}">t</span>') == expected


_SPELLINGS = {
    (255, 255, 255): ["white", "WHITE", "#fff", "#FFFFFF", "#ffffff"],
    (0, 0, 0): ["black", "#000", "#000000"],
    (255, 0, 0): ["red", "#f00", "#FF0000"],
    (255, 255, 0): ["yellow", "#ff0", "#ffff00"],
}


@given(
    st.sampled_from(sorted(_SPELLINGS)),
    st.data(),
    st.sampled_from(["background", "background-color"]),
)
def test_text_the_colour_of_its_background_is_never_kept_however_spelled(rgb, data, ground):
    """Any two spellings of one colour, or of two colours a shade apart, hide the text: it goes."""
    from deckbuild.render import sanitize

    text = data.draw(st.sampled_from(_SPELLINGS[rgb]))
    nudge = data.draw(st.integers(-3, 3))
    near = "#" + "".join(f"{min(255, max(0, c + nudge)):02x}" for c in rgb)
    back = data.draw(st.sampled_from([*_SPELLINGS[rgb], near]))
    out = sanitize(f'<span style="color:{text};{ground}:{back}">t</span>')
    assert out == f'<span style="{ground}:{back}">t</span>'
