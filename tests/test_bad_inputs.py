"""The bad-input catalogue: one small input per case under tests/data/bad, and the exact
message it must produce. Each runs `deckbuild check --strict` and `deckbuild build --strict`
from the folder above a fresh deck tree: exit status 1, that message, no traceback, nothing
written. Set UPDATE_GOLDEN=1 to rewrite the .expected files, then read every change.
"""

from __future__ import annotations

import os
import shutil

import pytest
from click.testing import CliRunner

from conftest import DATA
from deckbuild.cli import cli

BAD = DATA / "bad"
CASES = sorted(p.name for p in BAD.iterdir() if not p.name.endswith(".expected"))


def place(case: str, decks):
    source = BAD / case
    if source.is_dir():
        shutil.copytree(source, decks, dirs_exist_ok=True)
    else:
        (decks / "Deck").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, decks / "Deck" / case)


def expect(case: str, stderr: str) -> None:
    expected = BAD / f"{case}.expected"
    if os.environ.get("UPDATE_GOLDEN"):
        expected.write_text(stderr, encoding="utf-8")
    assert stderr == expected.read_text(encoding="utf-8")


@pytest.mark.parametrize("command", ["check", "build"])
@pytest.mark.parametrize("case", CASES)
def test_each_bad_input_has_its_exact_message(case, command, deck_tree, monkeypatch):
    place(case, deck_tree)
    monkeypatch.chdir(deck_tree.parent)
    result = CliRunner().invoke(cli, [command, "--strict", "decks"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    expect(case, result.stderr)
    assert not (deck_tree.parent / "dist").exists()
    assert not (deck_tree / "deckbuild.lock").exists()


def test_a_symlink_loop_is_reported_not_followed(deck_tree, monkeypatch):
    (deck_tree / "Deck").mkdir()
    os.symlink("loop.txt", deck_tree / "Deck" / "loop.txt")
    monkeypatch.chdir(deck_tree.parent)
    result = CliRunner().invoke(cli, ["check", "decks"])
    assert result.exit_code == 1
    assert result.stderr == (
        "decks/Deck/loop.txt:1: cannot read: symbolic link loop; fix or remove the file\n"
        "1 error(s), 0 warning(s)\n"
    )


def test_warnings_alone_pass_without_strict(deck_tree, monkeypatch):
    place("latin1.txt", deck_tree)
    monkeypatch.chdir(deck_tree.parent)
    result = CliRunner().invoke(cli, ["check", "decks"])
    assert result.exit_code == 0
    assert result.stderr.endswith("0 error(s), 1 warning(s)\n")


ROW = "Question;Answer;UUID\nWhat is it?;This.;11111111-1111-4111-8111-111111111111\n"


@pytest.mark.parametrize(
    ("folder", "name", "expected"),
    [
        (
            "Deck",
            b"a\x1fb.txt",
            "decks/Deck/a\\x1fb.txt:2: the file path holds U+001F (Anki's field separator) at character "
            "13, which Anki cannot store; rename the file or folder\n",
        ),
        (
            "Deck",
            b"bell\x07.txt",
            "decks/Deck/bell\\x07.txt:2: the tag 2 holds the control character U+0007 at character 13, "
            "which Anki cannot store; rename the file, or delete the character; the file path holds the "
            "control character U+0007 at character 16, which Anki cannot store; rename the file or folder\n",
        ),
        (
            "Deck\x01",
            b"cards.txt",
            "decks/Deck\\x01/cards.txt:2: the deck name holds the control character U+0001 at character 5, "
            "which Anki cannot store; rename the file or folder; the file path holds the control character "
            "U+0001 at character 11, which Anki cannot store; rename the file or folder\n",
        ),
        (
            "Two\nLines",
            b"cards.txt",
            "decks/Two\\nLines/cards.txt:2: the deck name holds the control character U+000A at character 4, "
            "which Anki cannot store; rename the file or folder; the file path holds the control character "
            "U+000A at character 10, which Anki cannot store; rename the file or folder\n",
        ),
        (
            "Deck",
            b"not-utf8-\xff.txt",
            "decks/Deck/not-utf8-\\udcff.txt:2: the tag 2 holds U+DCFF (a lone surrogate, not valid text) at "
            "character 18, which Anki cannot store; rename the file, or delete the character; the file path "
            "holds U+DCFF (a lone surrogate, not valid text) at character 21, which Anki cannot store; "
            "rename the file or folder\n",
        ),
    ],
)
@pytest.mark.parametrize("command", ["check", "build"])
def test_a_control_character_in_a_file_or_folder_name_is_an_error(
    command, folder, name, expected, deck_tree, monkeypatch
):
    target = os.fsencode(deck_tree / folder) + b"/" + name
    os.makedirs(os.path.dirname(target))
    with open(target, "wb") as out:
        out.write(ROW.encode())
    monkeypatch.chdir(deck_tree.parent)
    result = CliRunner().invoke(cli, [command, "decks"])
    assert result.exit_code == 1, result.output
    assert result.stderr == expected + "1 error(s), 0 warning(s)\n"
    assert not (deck_tree.parent / "dist").exists()


def test_a_control_character_in_an_optional_column_or_a_cloze_is_named_where_it_is(deck_tree, monkeypatch):
    # Once let through to rendering, where the message blamed an HTML entity the row did not hold.
    (deck_tree / "Deck").mkdir()
    (deck_tree / "Deck" / "cols.txt").write_text(
        "Question;Answer;UUID;Hint;Extra\n"
        "What?;x;11111111-1111-4111-8111-111111111111;a hint\x01;fine\n"
        "{{c1::Paris}} is the capital\x02;;22222222-2222-4222-8222-222222222222;;\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(deck_tree.parent)
    result = CliRunner().invoke(cli, ["build", "decks"])
    assert result.exit_code == 1, result.output
    assert result.stderr == (
        "decks/Deck/cols.txt:2: the hint holds the control character U+0001 at character 7, which Anki "
        "cannot store; delete it\n"
        "decks/Deck/cols.txt:3: the question holds the control character U+0002 at character 29, which Anki "
        "cannot store; delete it\n"
        "2 error(s), 0 warning(s)\n"
    )
    assert not (deck_tree.parent / "dist").exists()
