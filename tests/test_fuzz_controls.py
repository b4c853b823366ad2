"""Anki never refuses a package deckbuild wrote: card texts, file names and folder names full of
control characters, U+001F, NUL, lone surrogates, noncharacters and BOMs give either a clear
`path:line` error with exit status 1 and the old package untouched, or a package that real Anki
imports with every note's fields intact. `make fuzz` runs these with many more examples."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ankihelp import import_package, notes_by_guid
from conftest import DATA
from deckbuild.cli import cli
from deckbuild.notetype import FIELDS

# Each example builds twice and imports into a fresh collection: far fewer than the text fuzzers.
EXAMPLES = 300 if os.environ.get("HYPOTHESIS_PROFILE") == "fuzz" else 6
fuzz = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))

# Every C0 control, DEL, a C1 control, the BOM, the noncharacters U+FFFE and U+FFFF, and a line
# separator: what a copied page or a careless editor can put in a file.
CONTROLS = [chr(c) for c in range(0x20)] + ["\x7f", "\x85", "\ufeff", "\ufffe", "\uffff", "\u2028"]
hostile_char = st.sampled_from(CONTROLS) | st.sampled_from(list('ab ;"é∑')) | st.characters()
# HTML entities too: valid source text that renders to a control character.
entity = st.sampled_from(["&#31;", "&#x1F;", "&#0;", "&#7;", "&#127;", "&#xFFFE;", "&#xD800;"])
hostile_text = st.lists(hostile_char | entity, min_size=1, max_size=12).map("".join)
# File and folder names as bytes: anything but "/" and NUL, so undecodable bytes (lone
# surrogates once Python reads the name) come too. Names starting with "." are hidden.
name_byte = st.sampled_from(
    [bytes([c]) for c in range(1, 0x20)] + [b"\x7f", b"\xff", b"\xc3", b"\xed\xa0\x80"]
)
hostile_name = st.lists(
    name_byte | st.sampled_from([b"a", b"b", b" ", b";", b"\xc3\xa9"]), min_size=1, max_size=8
).map(lambda parts: b"n" + b"".join(parts))

GOOD = "Question;Answer;UUID\nWhat stays?;The old package.;00000000-0000-4000-8000-000000000001\n"
PROBLEM_RE = re.compile(r"^\S.*?:\d+: ")
SUMMARY_RE = re.compile(r"^(\d+) error\(s\), \d+ warning\(s\)")


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _row(question: str, answer: str, n: int) -> str:
    return f"{_quoted(question)};{_quoted(answer)};{n:08d}-0000-4000-8000-000000000002\n"


def _build(root: Path, out: Path) -> object:
    return CliRunner().invoke(cli, ["build", str(root), "-o", str(out), "--no-cache"])


_OLD: list[bytes] = []


def _old_package() -> bytes:
    """The package learners have: the good deck, built once."""
    if not _OLD:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "decks"
            (root / "Deck").mkdir(parents=True)
            (root / "Deck" / "good.txt").write_text(GOOD, encoding="utf-8")
            assert _build(root, Path(tmp) / "dist").exit_code == 0
            _OLD.append((Path(tmp) / "dist" / "Deck.apkg").read_bytes())
    return _OLD[0]


def _either_a_clear_error_or_a_package_anki_takes(tmp: Path, place) -> None:
    """Add hostile input with `place` to a good deck, build over its package, judge the outcome."""
    root = tmp / "decks"
    (root / "Deck").mkdir(parents=True)
    (root / "Deck" / "good.txt").write_text(GOOD, encoding="utf-8")
    package = tmp / "dist" / "Deck.apkg"
    package.parent.mkdir()
    package.write_bytes(before := _old_package())
    place(root)
    result = _build(root, package.parent)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if result.exit_code != 0:
        assert result.exit_code == 1, result.output
        lines = result.stderr.splitlines()
        summary = SUMMARY_RE.match(lines[-1]) if lines else None
        assert summary, result.stderr
        # Every error names its file and line (notes and warnings may come between them).
        errors = [line for line in lines if PROBLEM_RE.match(line) and ": warning: " not in line]
        assert len(errors) == int(summary.group(1)) > 0, result.stderr
        assert package.read_bytes() == before, "a failed build left the old package as it was"
        return
    _imports_whole(tmp, sorted(package.parent.glob("*.apkg")))


def _imports_whole(tmp: Path, packages: list[Path]) -> None:
    """Import every package into a fresh Anki collection: every note arrives with all its fields."""
    from anki.collection import Collection

    col = Collection(str(tmp / "collection.anki2"))
    try:
        for apkg in packages:
            import_package(col, apkg)
        notes = notes_by_guid(col)
        assert notes, "the packages hold notes"
        for note in notes.values():
            assert len(note.fields) == len(FIELDS)
            assert not any("\x1f" in f for f in note.fields)
    finally:
        col.close()


@fuzz
@given(st.lists(st.tuples(hostile_text, hostile_text), min_size=1, max_size=3))
def test_control_characters_in_card_text_never_make_a_package_anki_refuses(cards):
    def place(root: Path) -> None:
        rows = "".join(_row(q, a, n) for n, (q, a) in enumerate(cards, start=1))
        # surrogatepass: a lone surrogate reaches the file as the bytes an editor would write.
        data = ("Question;Answer;UUID\n" + rows).encode("utf-8", "surrogatepass")
        (root / "Deck" / "hostile.txt").write_bytes(data)

    with tempfile.TemporaryDirectory() as tmp:
        _either_a_clear_error_or_a_package_anki_takes(Path(tmp), place)


PAGE = (DATA / "quizpage" / "other_topic.txt").read_text(encoding="utf-8")


@fuzz
@given(st.lists(st.tuples(st.integers(0, len(PAGE)), hostile_text), min_size=1, max_size=4))
def test_control_characters_in_a_quiz_page_never_make_a_package_anki_refuses(insertions):
    page = PAGE
    for at, text in sorted(insertions, reverse=True):
        page = page[:at] + text + page[at:]

    def place(root: Path) -> None:
        (root / "Deck" / "page.txt").write_bytes(page.encode("utf-8", "surrogatepass"))

    with tempfile.TemporaryDirectory() as tmp:
        _either_a_clear_error_or_a_package_anki_takes(Path(tmp), place)


@fuzz
@given(hostile_name, hostile_name, st.booleans())
def test_control_characters_in_file_and_folder_names_never_make_a_package_anki_refuses(folder, name, page):
    # A quiz page too: its cards' ids are made from the file's name.
    content = (
        PAGE.encode()
        if page
        else b"Question;Answer;UUID\nWhat is new?;A card.;00000000-0000-4000-8000-000000000003\n"
    )

    def place(root: Path) -> None:
        target = os.path.join(os.fsencode(root / "Deck"), folder, name + b".txt")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as out:
            out.write(content)

    with tempfile.TemporaryDirectory() as tmp:
        _either_a_clear_error_or_a_package_anki_takes(Path(tmp), place)


def test_text_anki_keeps_arrives_byte_for_byte(deck_tree, tmp_path, collection):
    # (A tab becomes a space in Markdown, as it always did; that is rendering, not Anki.)
    kept = "BOM \ufeff, U+FFFE \ufffe, U+FFFF \uffff, NEL \x85 and LS \u2028 here"
    (deck_tree / "Deck; odd ∑ name").mkdir()
    (deck_tree / "Deck; odd ∑ name" / "ok é.txt").write_text(
        f"Question;Answer;UUID\nWhat arrives?;{kept};00000000-0000-4000-8000-000000000004\n", encoding="utf-8"
    )
    result = _build(deck_tree, tmp_path / "dist")
    assert result.exit_code == 0, result.output
    import_package(collection, next((tmp_path / "dist").glob("*.apkg")))
    (note,) = notes_by_guid(collection).values()
    assert len(note.fields) == len(FIELDS)
    assert kept in note["Back"]
    assert note["Source"] == "Deck; odd ∑ name/ok é.txt"
    assert "source::ok_é" in note.tags
    assert "Deck; odd ∑ name" in [d.name for d in collection.decks.all_names_and_ids()]


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x1f", "\x7f"])
def test_each_control_character_the_sources_cannot_hold_stops_the_build_at_its_line(
    char, deck_tree, tmp_path
):
    (deck_tree / "Deck").mkdir()
    (deck_tree / "Deck" / "good.txt").write_text(GOOD, encoding="utf-8")
    out = tmp_path / "dist"
    assert _build(deck_tree, out).exit_code == 0
    before = (out / "Deck.apkg").read_bytes()
    padding = "x" * 9000  # past the first 8 KiB, where a NUL would mark a binary file
    (deck_tree / "Deck" / "bad.txt").write_text(
        f"Question;Answer;UUID\nPadding;{padding};00000000-0000-4000-8000-000000000005\n"
        f"Which?;this{char}one;00000000-0000-4000-8000-000000000006\n",
        encoding="utf-8",
    )
    result = _build(deck_tree, out)
    assert result.exit_code == 1
    assert "bad.txt:3: the answer holds " in result.stderr
    assert f"U+{ord(char):04X}" in result.stderr
    assert (out / "Deck.apkg").read_bytes() == before


def test_a_retired_note_from_a_damaged_lock_stops_at_the_gate_and_the_old_package_stays(deck_tree, tmp_path):
    import json

    (deck_tree / "Deck").mkdir()
    source = deck_tree / "Deck" / "cards.txt"
    source.write_text(GOOD + "Gone soon?;Yes.;00000000-0000-4000-8000-000000000007\n", encoding="utf-8")
    (deck_tree / "deckbuild.lock").write_text('{"deckbuild_lock": 1, "notetypes": {}, "notes": {}}\n')
    out = tmp_path / "dist"
    assert _build(deck_tree, out).exit_code == 0
    source.write_text(GOOD, encoding="utf-8")
    assert _build(deck_tree, out).exit_code == 0  # the card is retired: the lock keeps its fields
    before = (out / "Deck.apkg").read_bytes()
    lock = deck_tree / "deckbuild.lock"
    text = lock.read_text(encoding="utf-8")
    entry = next(line for line in text.splitlines() if "00000000-0000-4000-8000-000000000007" in line)
    damaged = entry.replace(json.dumps("Yes.")[1:-1], "Yes.\\u001fno", 1)
    assert damaged != entry
    lock.write_text(text.replace(entry, damaged), encoding="utf-8")
    result = _build(deck_tree, out)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert (out / "Deck.apkg").read_bytes() == before


def test_controls_python_counts_as_whitespace_are_trimmed_with_it_at_the_ends_of_a_field(
    deck_tree, tmp_path, collection
):
    (deck_tree / "Deck").mkdir()
    (deck_tree / "Deck" / "cards.txt").write_text(
        "Question;Answer;UUID\n"
        "\x1cWhat is trimmed?\x0b;The ends\x1f\x1e\x1d\x0c;00000000-0000-4000-8000-000000000008\n",
        encoding="utf-8",
    )
    result = _build(deck_tree, tmp_path / "dist")
    assert result.exit_code == 0, result.output
    import_package(collection, tmp_path / "dist" / "Deck.apkg")
    (note,) = notes_by_guid(collection).values()
    assert (note["Front"], note["Back"]) == ("<p>What is trimmed?</p>", "<p>The ends</p>")


def test_a_quiz_page_whose_name_is_not_utf8_or_holds_an_escape_is_refused_and_printed_escaped(deck_tree):
    (deck_tree / "Deck").mkdir()
    with open(os.fsencode(deck_tree / "Deck") + b"/page\x1b[2J\xff.txt", "wb") as out:
        out.write(PAGE.encode())
    result = _build(deck_tree, deck_tree.parent / "dist")
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "\x1b" not in result.stderr
    shown = f"{deck_tree}/Deck/page\\x1b[2J\\udcff.txt"
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"{shown}:")
    assert f"{shown}: 8 new id(s), 0 re-matched id(s)" in lines
