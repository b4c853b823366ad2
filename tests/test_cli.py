"""The command line: exit codes and the exact messages a deck author sees."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from conftest import DATA, put, seed
from deckbuild import __version__
from deckbuild.cli import cli

U1 = "11111111-1111-4111-8111-111111111111"
U2 = "22222222-2222-4222-8222-222222222222"


@pytest.fixture
def run(deck_tree, monkeypatch):
    """Run deckbuild in the folder above a fresh deck tree, as an author would."""
    monkeypatch.chdir(deck_tree.parent)

    def invoke(*args):
        return CliRunner().invoke(cli, list(args), prog_name="deckbuild")

    return invoke


def bad(deck_tree, name):
    put(deck_tree, f"Deck/{name}", DATA / "semicolon" / name)


def test_version_and_help_on_every_command(run):
    assert run("--version").output == f"deckbuild, version {__version__}\n"
    for command in ("build", "cards", "check"):
        result = run(command, "--help")
        assert result.exit_code == 0
        assert result.output.startswith(f"Usage: deckbuild {command} [OPTIONS] [PATHS]...")


def test_build_writes_one_package_per_deck_and_a_lock(run, deck_tree):
    put(deck_tree, "Transformers/Q&A/003.txt", seed("003"))
    result = run("build", "decks")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "wrote dist/Transformers.apkg\n57 card(s) read, 57 packaged, 0 skipped, 0 incomplete\n"
    )
    assert (deck_tree.parent / "dist" / "Transformers.apkg").is_file()
    assert (deck_tree / "deckbuild.lock").is_file()


def test_build_defaults_to_decks_and_dist(run, deck_tree):
    put(deck_tree, "Deck/crlf.txt", DATA / "semicolon" / "crlf.txt")
    result = run("build")
    assert result.exit_code == 0, result.output
    assert (deck_tree.parent / "dist" / "Deck.apkg").is_file()


def test_cards_json_lists_every_card_with_its_source(run, deck_tree):
    put(deck_tree, "Deck/003.txt", seed("003"))
    result = run("cards", "decks", "--json")
    assert result.exit_code == 0
    cards = json.loads(result.stdout)
    assert len(cards) == 57
    first = cards[0]
    assert first["id"] == "faac118b-14d2-4225-82ce-5a1c2b22f894"
    assert (first["deck"], first["kind"], first["source"]) == ("Deck", "basic", "decks/Deck/003.txt:2")
    assert first["tags"] == ["kind::basic", "source::003"]
    assert first["question"] == "What is the general purpose of attention mechanisms?"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "bad_field_count.txt",
            "decks/Deck/bad_field_count.txt:3: expected 3 fields (Question;Answer;UUID), found 4; "
            'put a field that contains ";" in double quotes',
        ),
        (
            "bad_uuid.txt",
            "decks/Deck/bad_uuid.txt:2: invalid UUID 'not-a-uuid'; write it as 8-4-4-4-12 hex digits",
        ),
        (
            "duplicate_uuid.txt",
            f"decks/Deck/duplicate_uuid.txt:3: UUID {U1.upper()} is used twice: here and at "
            "decks/Deck/duplicate_uuid.txt:2; give one of the cards a new UUID",
        ),
        (
            "missing_header.txt",
            "decks/Deck/missing_header.txt:1: missing header; make the first line Question;Answer;UUID",
        ),
        (
            "misspelt_header.txt",
            "decks/Deck/misspelt_header.txt:1: unknown column 'Questoin' in the header "
            "'Questoin;Answer;UUID'; did you mean 'Question'? the known columns are "
            "Question, Answer, UUID, Tags, Hint, Extra, in any order",
        ),
        (
            "unbalanced_quote.txt",
            "decks/Deck/unbalanced_quote.txt:2: unbalanced double quote: this field opens a quote that "
            'never closes; close it, or write a quote inside a quoted field as ""',
        ),
        (
            "empty_answer.txt",
            "decks/Deck/empty_answer.txt:2: the answer is empty; write it, or remove the card",
        ),
        (
            "only_header.txt",
            "decks/Deck/only_header.txt:1: only a header, no cards; add rows or remove the file",
        ),
    ],
)
@pytest.mark.parametrize("command", ["check", "build", "cards"])
def test_bad_input_is_one_line_with_file_and_line_and_exit_1(run, deck_tree, command, name, message):
    bad(deck_tree, name)
    result = run(command, "decks")
    assert result.exit_code == 1
    assert result.stderr == f"{message}\n1 error(s), 0 warning(s)\n"
    assert "Traceback" not in result.output
    assert not (deck_tree.parent / "dist").exists()


def test_a_uuid_used_in_two_decks_names_both_places(run, deck_tree):
    put(deck_tree, "A/one.txt", f"Question;Answer;UUID\nQ1;A1;{U1}\n")
    put(deck_tree, "B/two.txt", f"Question;Answer;UUID\nQ2;A2;{U2}\nQ3;A3;{U1}\n")
    result = run("check", "decks")
    assert result.exit_code == 1
    assert result.stderr == (
        f"decks/B/two.txt:3: UUID {U1} is used twice: here and at decks/A/one.txt:2; "
        "give one of the cards a new UUID\n1 error(s), 0 warning(s)\n"
    )


def test_every_problem_is_reported_together_sorted_by_file_and_line(run, deck_tree):
    for name in ("empty_answer.txt", "bad_uuid.txt", "bad_field_count.txt"):
        bad(deck_tree, name)
    result = run("check", "decks")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == [
        "decks/Deck/bad_field_count.txt",
        "decks/Deck/bad_uuid.txt",
        "decks/Deck/empty_answer.txt",
    ]
    assert lines[-1] == "3 error(s), 0 warning(s)"


def test_a_file_in_no_known_format_is_an_error(run, deck_tree):
    put(deck_tree, "Deck/notes.txt", "just some notes\n")
    result = run("check", "decks")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        "decks/Deck/notes.txt:1: not a deck source: neither a Question;Answer;UUID file nor a "
        "quiz page; fix the file or move it out of the deck folder"
    )


def test_a_missing_path_is_a_usage_error(run):
    result = run("build", "nowhere")
    assert result.exit_code == 2
    assert "Path 'nowhere' does not exist." in result.stderr


def test_a_failing_build_leaves_the_good_package_and_lock_alone(run, deck_tree):
    source = put(deck_tree, "Deck/cards.txt", DATA / "semicolon" / "two_sections.txt")
    assert run("build", "decks").exit_code == 0
    apkg = deck_tree.parent / "dist" / "Deck.apkg"
    good, lock = apkg.read_bytes(), (deck_tree / "deckbuild.lock").read_bytes()
    source.write_text(source.read_text(encoding="utf-8") + "broken;row\n", encoding="utf-8")
    result = run("build", "decks")
    assert result.exit_code == 1
    assert apkg.read_bytes() == good
    assert (deck_tree / "deckbuild.lock").read_bytes() == lock


def test_frozen_fails_instead_of_changing_the_lock(run, deck_tree):
    source = put(deck_tree, "Deck/cards.txt", DATA / "semicolon" / "two_sections.txt")
    assert run("build", "decks").exit_code == 0
    assert run("build", "decks", "--frozen").exit_code == 0
    source.write_text(source.read_text(encoding="utf-8").replace("A square", "Squared"), encoding="utf-8")
    result = run("build", "decks", "--frozen")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: decks/deckbuild.lock is out of date; run 'deckbuild build' without --frozen and commit it\n"
    )


def test_strict_turns_warnings_into_failure(run, deck_tree):
    put(deck_tree, "Deck/cards.txt", f"Question;Answer;UUID\nQ;\\( \\ text{{x}} \\);{U1}\n")
    assert run("check", "decks").exit_code == 0
    result = run("check", "decks", "--strict")
    assert result.exit_code == 1
    assert result.stderr.endswith("0 error(s), 1 warning(s) (--strict: warnings fail the run)\n")
