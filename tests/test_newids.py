"""Ids written for you: `deckbuild ids` fills empty UUIDs in place, keeping every other byte."""

from __future__ import annotations

import itertools
import os
import stat

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from ankihelp import card_states, import_package, notes_by_guid, study_all
from conftest import put
from deckbuild.build import build
from deckbuild.cli import cli
from deckbuild.errors import Report
from deckbuild.models import UUID_RE
from deckbuild.newids import SourceChanged, replace_unchanged, with_ids
from deckbuild.readers.semicolon import read

NOW = 1_700_000_000
KNOWN_ID = "d33e3f45-53d6-4d4d-860c-b337569cd772"


def counter():
    """Ids that are easy to find again in the output."""
    numbers = itertools.count(1)
    return lambda: f"00000000-0000-4000-8000-{next(numbers):012d}"


# --- Hypothesis: never a row reordered or lost, every other byte kept --------------------------

_text = st.text(alphabet=st.sampled_from('ab ;"\n\txé'), min_size=1, max_size=8).filter(lambda s: s.strip())
_break = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def semicolon_files(draw, uuid_column: bool = True):
    """Files with quoting, mixed line endings, a BOM or not, empty ids, blank lines, sections."""
    drawn = iter(draw(st.lists(_break, min_size=120, max_size=120)))
    last = [""]

    def next_break() -> str:
        # A lone "\r" and a "\n" after it would read as one CRLF break.
        brk = next(drawn)
        brk = "\r" if last[0] == "\r" and brk.startswith("\n") else brk
        last[0] = brk
        return brk

    breaks = iter(next_break, None)
    sections = draw(st.integers(1, 3))
    out: list[str] = []
    expected: list[tuple[str, str, str | None]] = []  # question, answer, id kept (None: new)
    for n in range(sections):
        names = ["question", "answer", "uuid"] if uuid_column else ["question", "answer"]
        columns = draw(st.permutations(names))
        header = ";".join(c.capitalize() if c != "uuid" else "UUID" for c in columns)
        if n:
            out.append(next(breaks) * draw(st.integers(1, 2)))
        out.append(header + next(breaks))
        for _ in range(draw(st.integers(1, 4))):
            question, answer = draw(_text), draw(_text)
            own = KNOWN_ID.replace("d3", f"{len(expected):02d}", 1)
            kept = draw(st.sampled_from([None, own])) if uuid_column else None
            uuid_text = kept or draw(st.sampled_from(["", "  "]))
            values = {"question": question, "answer": answer, "uuid": uuid_text}
            cells = []
            for c in columns:
                value = values[c]
                quote = any(ch in value for ch in ';"\n') or draw(st.booleans())
                if quote:
                    value = '"' + value.replace('"', '""').replace("\n", next(breaks)) + '"'
                cells.append(value)
            out.append(";".join(cells) + next(breaks))
            expected.append((question.strip(), answer.strip(), kept))
    bom = draw(st.booleans())
    return (b"\xef\xbb\xbf" if bom else b"") + "".join(out).encode("utf-8"), expected


def _read(data: bytes):
    text = data.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
    report = Report()
    return read("x.txt", text.split("\n"), report), report


def _check(data: bytes, expected, strip: list[tuple[bytes, bytes]]):
    new, rows = with_ids(data, counter())
    cards, report = _read(new)
    assert not report.problems
    # Every row, in order, with its text; kept ids kept, the others new and valid.
    assert [(c.data["question"].replace("\n", ""), c.data["answer"].replace("\n", "")) for c in cards] == [
        (q.replace("\n", ""), a.replace("\n", "")) for q, a, _ in expected
    ]
    for card, (_, _, kept) in zip(cards, expected, strict=True):
        assert UUID_RE.match(card.data["id"])
        assert card.data["id"] == (kept or card.data["id"])
    assert len(rows) == sum(kept is None for _, _, kept in expected)
    # Every other byte kept: take out what was written and the file is as it was.
    back = new
    for old, replacement in strip:
        back = back.replace(old, replacement)
    for n in range(1, len(rows) + 1):
        back = back.replace(f"00000000-0000-4000-8000-{n:012d}".encode(), b"")
    assert back == data
    # Writing again finds nothing to do.
    assert with_ids(new, counter()) == (new, [])


@given(semicolon_files())
def test_ids_written_into_empty_uuid_fields_keep_every_row_and_byte(case):
    data, expected = case
    _check(data, expected, [])


@given(semicolon_files(uuid_column=False))
def test_a_file_without_uuid_column_gains_one_for_every_section(case):
    data, expected = case
    strip = [(b"Question;Answer;UUID", b"Question;Answer"), (b"Answer;Question;UUID", b"Answer;Question")]
    strip += [(f";00000000-0000-4000-8000-{n:012d}".encode(), b"") for n in range(1, 40)]
    _check(data, expected, strip)


def test_rows_with_wrong_field_counts_and_files_without_header_are_left_alone():
    assert with_ids(b"Question;Answer;UUID\nq\n", counter()) == (b"Question;Answer;UUID\nq\n", [])
    assert with_ids(b"Question;Answer;UUID\nq;a;b;c\n", counter()) == (b"Question;Answer;UUID\nq;a;b;c\n", [])
    assert with_ids(b"q;a;\n", counter()) == (b"q;a;\n", [])


def test_a_row_that_ends_where_its_uuid_would_start_gets_one():
    # `Question;Answer` under a header that ends in UUID: the row has none, and gets one.
    written = b"Question;Answer;UUID\r\nq;a;00000000-0000-4000-8000-000000000001\r\n"
    assert with_ids(b"Question;Answer;UUID\r\nq;a\r\n", counter()) == (written, [2])
    quoted = b'Question;Answer;UUID\n"q";"a\nb"\n'
    assert with_ids(quoted, counter()) == (quoted[:-1] + b";00000000-0000-4000-8000-000000000001\n", [2])


# --- The command ---------------------------------------------------------------------------------


def test_ids_command_writes_reports_and_then_builds_byte_identically(deck_tree, monkeypatch, tmp_path):
    monkeypatch.chdir(deck_tree.parent)
    path = put(deck_tree, "Deck/cards.txt", f"Question;Answer;UUID\r\nOld?;Yes;{KNOWN_ID}\r\nNew?;Also;\r\n")
    os.chmod(path, 0o640)
    result = CliRunner().invoke(cli, ["build", "decks"])
    assert result.exit_code == 1
    message = "decks/Deck/cards.txt:3: no UUID; run 'deckbuild ids' to write a new one into the file"
    assert message in result.stderr
    result = CliRunner().invoke(cli, ["ids", "decks"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "decks/Deck/cards.txt: wrote 1 new id(s), line(s) 3"
    data = path.read_bytes()
    new_id = data.split(b";")[-1].strip().decode()
    assert UUID_RE.match(new_id)
    assert data == f"Question;Answer;UUID\r\nOld?;Yes;{KNOWN_ID}\r\nNew?;Also;{new_id}\r\n".encode()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in path.parent.iterdir()] == ["cards.txt"]  # no temporary file left
    first = build([deck_tree], tmp_path / "a", now=NOW)
    again = CliRunner().invoke(cli, ["ids", "decks"])
    assert again.stdout == "0 new id(s) written into 0 file(s)\n"
    second = build([deck_tree], tmp_path / "b", now=NOW + 50, use_cache=False)
    assert first.packages[0].read_bytes() == second.packages[0].read_bytes()


def test_ids_command_refuses_a_read_only_file(deck_tree, monkeypatch):
    monkeypatch.chdir(deck_tree.parent)
    text = "Question;Answer;UUID\nq;a;\n"
    path = put(deck_tree, "Deck/cards.txt", text)
    os.chmod(path, 0o444)  # read-only, even for root: the author's own mark
    result = CliRunner().invoke(cli, ["ids", "decks"])
    assert result.exit_code == 1
    assert result.stderr == (
        "decks/Deck/cards.txt:2: read-only file: cannot write new ids into it; "
        "make it writable and run again\n"
        "1 error(s), 0 warning(s)\n"
    )
    assert path.read_text() == text


def test_a_file_an_editor_saved_meanwhile_is_not_overwritten(tmp_path):
    path = tmp_path / "cards.txt"
    path.write_bytes(b"Question;Answer;UUID\nq;a;\n")
    before, old = path.stat(), path.read_bytes()
    new, _ = with_ids(old, counter())
    path.write_bytes(b"Question;Answer;UUID\nq;edited;\n")  # the editor saves
    with pytest.raises(SourceChanged):
        replace_unchanged(path, old, before, new)
    assert path.read_bytes() == b"Question;Answer;UUID\nq;edited;\n"
    assert [p.name for p in tmp_path.iterdir()] == ["cards.txt"]


def test_a_linked_source_is_written_through_its_link(tmp_path, monkeypatch):
    decks = tmp_path / "decks" / "Deck"
    decks.mkdir(parents=True)
    (tmp_path / "decks" / ".shared").mkdir()
    real = tmp_path / "decks" / ".shared" / "real.txt"
    real.write_text("Question;Answer;UUID\nq;a;\n")
    (decks / "cards.txt").symlink_to(real)
    monkeypatch.chdir(tmp_path)
    assert CliRunner().invoke(cli, ["ids", "decks"]).exit_code == 0
    assert (decks / "cards.txt").is_symlink()
    assert UUID_RE.match(real.read_text().splitlines()[1].split(";")[2])


# --- Optional columns ----------------------------------------------------------------------------


KNOWN = "Question, Answer, UUID, Tags, Hint, Extra and Reverse (each once, in any order and any case)"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            "Question;Answer;UUID;Colour",
            "header 'Question;Answer;UUID;Colour' has an unknown column 'Colour'; "
            f"the known columns are {KNOWN}",
        ),
        (
            "Question;Answer;UUID;Deck",
            "header 'Question;Answer;UUID;Deck' has a Deck column, which is not needed (a file's folder is "
            f"its deck); the known columns are {KNOWN}",
        ),
        (
            "Question;Answer;Answer",
            f"header 'Question;Answer;Answer' has 'Answer' twice; the known columns are {KNOWN}",
        ),
    ],
)
def test_a_bad_column_is_named_with_the_known_ones(header, message, deck_tree, monkeypatch):
    monkeypatch.chdir(deck_tree.parent)
    put(deck_tree, "Deck/cards.txt", f"{header}\nq;a;{KNOWN_ID};x\n")
    result = CliRunner().invoke(cli, ["check", "decks"])
    assert result.exit_code == 1
    assert result.stderr == f"decks/Deck/cards.txt:1: {message}\n1 error(s), 0 warning(s)\n"


def test_tags_hint_and_extra_reach_anki_and_update_in_place(deck_tree, tmp_path, collection):
    path = put(
        deck_tree,
        "Deck/cards.txt",
        f"Tags;UUID;Question;Hint;Answer;Extra\nml::attention  core;{KNOWN_ID};What is Q?;Think of a query;"
        "The query;See *Vaswani*\n",
    )
    first = build([deck_tree], tmp_path / "one", now=NOW)
    assert import_package(collection, first.packages[0]).new == 1
    note = notes_by_guid(collection)[KNOWN_ID]
    assert {"ml::attention", "core", "kind::basic", "source::cards"} <= set(note.tags)
    assert note["Hint"] == "<p>Think of a query</p>"
    assert note["Extra"] == "<p>See <em>Vaswani</em></p>"
    card = note.cards()[0]
    assert "Vaswani" in card.answer() and "Vaswani" not in card.question()
    study_all(collection)
    before = card_states(collection)
    path.write_text(path.read_text().replace("ml::attention  core", "ml::attention review"))
    second = build([deck_tree], tmp_path / "two", now=NOW + 100)
    result = import_package(collection, second.packages[0])
    assert (result.new, result.updated) == (0, 1)
    note = notes_by_guid(collection)[KNOWN_ID]
    assert "review" in note.tags and "core" not in note.tags
    assert card_states(collection) == before


def test_ids_are_written_only_into_utf8_files(deck_tree, monkeypatch):
    monkeypatch.chdir(deck_tree.parent)
    data = "Question;Answer;UUID\nCafé?;Oui;\n".encode("cp1252")
    path = put(deck_tree, "Deck/cards.txt", data)
    result = CliRunner().invoke(cli, ["ids", "decks"])
    assert result.exit_code == 1
    assert result.stderr == (
        "decks/Deck/cards.txt:1: not UTF-8; save the file as UTF-8, then run 'deckbuild ids' again\n"
        "1 error(s), 0 warning(s)\n"
    )
    assert path.read_bytes() == data


_CELL = st.text(alphabet=st.sampled_from("ab :é-"), min_size=1, max_size=6).filter(lambda s: s.strip())


@given(
    st.permutations(["Question", "Answer", "UUID", "Tags", "Hint", "Extra", "Reverse"]),
    st.lists(st.tuples(_CELL, _CELL, _CELL, _CELL, _CELL, st.sampled_from(["", "yes", "no"])), max_size=4),
)
def test_columns_in_any_order_read_the_same(columns, rows):
    lines = [";".join(c if n % 2 else c.lower() for n, c in enumerate(columns))]
    for k, (question, answer, tags, hint, extra, reverse) in enumerate(rows):
        values = {
            "Question": question, "Answer": answer, "UUID": f"00000000-0000-4000-8000-{k:012d}",
            "Tags": tags, "Hint": hint, "Extra": extra, "Reverse": reverse,
        }  # fmt: skip
        lines.append(";".join(values[c] for c in columns))
    report = Report()
    cards = read("x.txt", [*lines, ""], report)
    if not rows:
        (only,) = report.problems
        assert only.message == "only a header, no cards; add rows or remove the file"
        return
    assert not report.problems
    for card, (question, answer, tags, hint, extra, reverse) in zip(cards, rows, strict=True):
        assert card.data["question"] == question.strip() and card.data["answer"] == answer.strip()
        assert card.data["tags"] == tags.split()
        assert card.data["hint"] == hint.strip() and card.data["extra"] == extra.strip()
        assert card.data.get("reverse", False) == (reverse == "yes")


def test_a_file_in_another_encoding_with_every_id_is_left_alone_by_ids(deck_tree, monkeypatch):
    # The build reads a Windows-1252 file with a warning: ids has nothing to write into it.
    monkeypatch.chdir(deck_tree.parent)
    put(deck_tree, "Deck/a.txt", "Question;Answer;UUID\nNew?;Yes;\n")
    windows = deck_tree / "Deck" / "w.txt"
    windows.write_bytes(f"Question;Answer;UUID\nCafé?;Ja;{KNOWN_ID}\n".encode("cp1252"))
    before = windows.read_bytes()
    result = CliRunner().invoke(cli, ["ids"], prog_name="deckbuild")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.endswith("1 new id(s) written into 1 file(s)\n")
    assert windows.read_bytes() == before


def test_ids_reports_the_rows_and_files_it_cannot_write_an_id_into(deck_tree, monkeypatch):
    # It said "0 new id(s) written" and exited 0 while the build still refused those rows.
    monkeypatch.chdir(deck_tree.parent)
    put(deck_tree, "Deck/a.txt", "Question;Answer;UUID;Tags\nQ6?;A6\nQ7?;A7;;t\n")
    wide = deck_tree / "Deck" / "u16.txt"
    wide.write_bytes("Question;Answer;UUID\nWhat is a cat?;An animal;\n".encode("utf-16-le"))
    result = CliRunner().invoke(cli, ["ids"], prog_name="deckbuild")
    assert result.exit_code == 1
    assert result.stderr == (
        "decks/Deck/a.txt:2: expected 4 fields (Question;Answer;UUID;Tags), found 2; write the missing "
        "field(s), each after a ';'\n"
        "decks/Deck/u16.txt:1: not UTF-8; save the file as UTF-8, then run 'deckbuild ids' again\n"
        "2 error(s), 0 warning(s)\n"
    )
    assert result.stdout == "decks/Deck/a.txt: wrote 1 new id(s), line(s) 3\n"


def test_ids_reports_a_file_of_rows_with_no_header(deck_tree, monkeypatch):
    monkeypatch.chdir(deck_tree.parent)
    put(deck_tree, "Deck/a.txt", "q1;a1;\n")
    result = CliRunner().invoke(cli, ["ids"], prog_name="deckbuild")
    assert (result.exit_code, result.stderr) == (
        1,
        "decks/Deck/a.txt:1: missing header; make the first line Question;Answer;UUID\n"
        "1 error(s), 0 warning(s)\n",
    )


def test_ids_writes_no_id_under_a_header_the_build_refuses_and_fills_a_short_row_that_looks_like_one(
    deck_tree, monkeypatch
):
    # Under 'Question;Answer;Tgs' an id written by the section above's columns would land in
    # Tags once the typo is fixed; 'Cat;Dog' after a blank line is a row, as the build reads it.
    monkeypatch.chdir(deck_tree.parent)
    path = put(
        deck_tree, "Deck/a.txt", f"Question;Answer;UUID\nq1;a1;{KNOWN_ID}\n\nQuestion;Answer;Tgs\nq2;a2;\n"
    )
    before = path.read_bytes()
    result = CliRunner().invoke(cli, ["ids"], prog_name="deckbuild")
    assert result.exit_code == 1 and path.read_bytes() == before
    assert result.stderr.startswith(
        "decks/Deck/a.txt:4: header 'Question;Answer;Tgs' has an unknown column 'Tgs'"
    )
    path.write_text("Question;Answer;UUID\nq1;a1;\n\nCat;Dog\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["ids"], prog_name="deckbuild")
    assert (result.exit_code, result.stdout.splitlines()[0]) == (
        0,
        "decks/Deck/a.txt: wrote 2 new id(s), line(s) 2, 4",
    )
    assert CliRunner().invoke(cli, ["check"], prog_name="deckbuild").exit_code == 0


def test_a_utf8_file_with_a_nul_byte_is_not_called_another_encoding_by_ids(deck_tree, monkeypatch):
    monkeypatch.chdir(deck_tree.parent)
    rows = "".join(f"q{n};a{n};{KNOWN_ID[:-3]}{n:03d}\n" for n in range(200))
    put(deck_tree, "Deck/a.txt", "Question;Answer;UUID\n" + rows + "qz;a\x00z;\n")
    result = CliRunner().invoke(cli, ["ids"], prog_name="deckbuild")
    assert "not UTF-8" not in result.stderr and result.stdout.startswith(
        "decks/Deck/a.txt: wrote 1 new id(s)"
    )


@pytest.mark.parametrize(
    ("rows", "lines"),
    [
        # The answer deleted with its ';': the UUID is where the answer was.
        (f"q1;{KNOWN_ID}\n", (2,)),
        (f"q1; {KNOWN_ID.upper()} \nq2;a2;\n", (2,)),
        # A lone CR broke a row in two: its first half looks like a row without its UUID.
        (f"q1;a1 \r more;{KNOWN_ID}\n", (2, 3)),
    ],
)
def test_ids_writes_nothing_into_a_file_whose_short_row_ends_in_its_uuid(rows, lines, deck_tree, monkeypatch):
    # An id written there (or into the other half of a broken line) shipped a card whose answer
    # was the old UUID, and retired the card learners had studied.
    monkeypatch.chdir(deck_tree.parent)
    path = put(deck_tree, "Deck/a.txt", "Question;Answer;UUID\n" + rows)
    before = path.read_bytes()
    result = CliRunner().invoke(cli, ["ids"], prog_name="deckbuild")
    assert result.exit_code == 1 and path.read_bytes() == before
    lost = (
        "expected 3 fields (Question;Answer;UUID), found 2; its last field is its UUID, so another field is "
        "missing (deleted with its ';'?): write it back before the UUID"
    )
    assert f"decks/Deck/a.txt:{lines[-1]}: {lost}\n" in result.stderr
    built = CliRunner().invoke(cli, ["build"], prog_name="deckbuild")
    assert built.exit_code == 1 and f"decks/Deck/a.txt:{lines[-1]}: {lost}\n" in built.stderr
