"""The command line: exit codes and the exact messages a deck author sees."""

from __future__ import annotations

import json
import os
import re
import zipfile

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

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


def _commands(group=cli, prefix=()):
    """Every command and group, as the words an author types."""
    import click

    yield prefix
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))
        else:
            yield (*prefix, name)


COMMANDS = list(_commands())


def test_the_commands_walked_are_all_of_them():
    assert len(COMMANDS) == 16 and ("calc", "softmax") in COMMANDS and ("import",) in COMMANDS


@pytest.mark.parametrize("words", COMMANDS, ids=lambda w: " ".join(w) or "deckbuild")
def test_version_and_help_work_on_every_command(run, words):
    version = run(*words, "--version")
    assert (version.exit_code, version.output) == (0, f"deckbuild, version {__version__}\n")
    for flag in ("--help", "-h"):
        helped = run(*words, flag)
        assert helped.exit_code == 0
        assert helped.output.startswith(f"Usage: {' '.join(('deckbuild', *words))} [OPTIONS]")
        # Summaries are whole sentences (not cut with ...), and every option says what it does.
        body = helped.output.split("\n", 1)[1]
        assert "..." not in body and "…" not in body
        options = helped.output.split("Options:\n")[1].split("\nCommands:")[0]
        flags = [line for line in options.splitlines() if line.startswith("  -")]
        assert all(re.match(r"  \S.*  \S", line) for line in flags), options


def test_release_takes_its_version_as_release_version_so_version_means_one_thing(run, deck_tree):
    put(deck_tree, "Deck/crlf.txt", DATA / "semicolon" / "crlf.txt")
    assert run("build").exit_code == 0
    result = run("release", "-o", "out", "--release-version", "v1")
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(deck_tree.parent / "out" / "Deck.apkg") as z:
        assert b"Version v1" in z.read("collection.anki2")
    assert run("release", "-o", "out", "--version", "v1").output == f"deckbuild, version {__version__}\n"


@pytest.mark.parametrize(
    "words", [("build",), ("cards",), ("check",), ("preview",), ("release", "--release-version", "v1"),
              ("forget", U1)],
)  # fmt: skip
def test_a_missing_default_decks_folder_is_a_usage_error(tmp_path, monkeypatch, words):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, list(words), prog_name="deckbuild")
    assert result.exit_code == 2
    how = "--decks" if words[0] == "forget" else "PATH"
    assert result.stderr.endswith(
        f"Error: no {how} given, and there is no decks/ folder here; name your deck folder, "
        "or run deckbuild where decks/ is\n"
    )
    assert list(tmp_path.iterdir()) == [], "nothing written"


def test_a_path_that_does_not_exist_is_a_usage_error(run):
    for words in (("build", "nope"), ("diff", "nope", "nope"), ("forget", U1, "--decks", "nope")):
        result = run(*words)
        assert result.exit_code == 2 and "'nope' does not exist" in result.stderr


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
            "decks/Deck/misspelt_header.txt:1: header 'Questoin;Answer;UUID' has an unknown column "
            "'Questoin' (did you mean 'Question'?) and no Question column; the known columns are "
            "Question, Answer, UUID, Tags, Hint, Extra and Reverse (each once, in any order and any case)",
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
        (
            "own_tag.txt",
            "decks/Deck/own_tag.txt:2: the tag 'deckbuild::retired' is one deckbuild sets itself "
            "(deckbuild::…, kind::…, source::…): learners' searches and release notes rely on it; rename it",
        ),
        (
            "empty_tag_part.txt",
            "decks/Deck/empty_tag_part.txt:2: invalid tag 'ml::::attention': a part between '::' is empty "
            "(Anki would name it 'blank'); remove the extra '::'",
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


@pytest.mark.parametrize(
    ("where", "out", "shown"), [(".", [], "dist"), ("..", ["-o", "decks/out"], "decks/out")]
)
def test_an_output_folder_inside_the_deck_tree_is_refused_before_anything_is_written(
    run, deck_tree, monkeypatch, where, out, shown
):
    # Its packages would be read as sources by the next build, `check` and `--no-cache`.
    put(deck_tree, "cards.txt", f"Question;Answer;UUID\nQ1;A1;{U1}\n")
    monkeypatch.chdir(deck_tree / where)
    tree = "." if where == "." else "decks"
    result = run("build", tree, *out)
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: the output folder {shown} is inside the deck tree {tree}, where every file is read as a "
        "source; build into a folder outside it (-o ../dist)\n"
    )
    assert sorted(p.name for p in deck_tree.iterdir()) == ["cards.txt"], "no package, no lock"
    assert run("build", tree, "-o", "../elsewhere" if where == "." else "elsewhere").exit_code == 0
    assert run("build", tree, "-o", f"{tree}/.hidden").exit_code == 0, "a hidden folder is never read"
    assert run("check", tree).exit_code == 0


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


def test_a_missing_image_in_web_text_is_a_warning_the_card_kept_and_an_error_under_strict(run, deck_tree):
    from deckbuild.packaged import read_package

    web = "Look:<img src=plot.png onerror=alert(1)> here"  # as copied from a page, its file left behind
    put(deck_tree, "Deck/web.txt", f"Question;Answer;UUID\n{web};A;{U1}\n")
    result = run("build")
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "decks/Deck/web.txt:2: warning: image plot.png not found, left out of the card; "
        "add the file or fix the path\n"
        "0 error(s), 1 warning(s)\n"
    )
    package = deck_tree.parent / "dist" / "Deck.apkg"
    assert read_package(package).notes[U1].fields[0] == "<p>Look: here</p>"
    before = package.read_bytes()
    strict = run("build", "--strict")
    assert strict.exit_code == 1 and "(--strict: warnings fail the run)" in strict.stderr
    assert package.read_bytes() == before, "a failed build writes nothing"
    # The file arrives: the card, remembered from the first build, is rendered again with it.
    put(deck_tree, "Deck/plot.png", (DATA / "anki" / "diagram.png").read_bytes())
    again = run("build", "--strict")
    assert again.exit_code == 0 and again.stderr == "", again.output
    (note,) = read_package(package).notes.values()
    assert re.fullmatch(r'<p>Look:<img src="plot-[0-9a-f]{10}.png"> here</p>', note.fields[0]), note.fields[0]


def _one_card(deck_tree):
    put(deck_tree, "Deck/cards.txt", f"Question;Answer;UUID\nQ?;A.;{U1}\n")


@pytest.mark.parametrize(
    ("content", "why"),
    [(b"garbage", "not a zip file"), (b"", "not a zip file")],
)
def test_build_refuses_a_previous_release_that_is_not_one_before_writing(run, deck_tree, content, why):
    _one_card(deck_tree)
    put(deck_tree.parent, "old.apkg", content)
    result = run("build", "decks", "--previous", "old.apkg")
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: old.apkg: not an Anki package ({why}); "
        "give an .apkg file, a folder of them, or a deck folder\n"
    )
    assert not (deck_tree.parent / "dist").exists()


def test_build_refuses_a_previous_folder_with_no_package(run, deck_tree):
    _one_card(deck_tree)
    (deck_tree.parent / "empty").mkdir()
    result = run("build", "decks", "--previous", "empty")
    assert result.exit_code == 1
    assert (
        result.stderr
        == "error: empty: holds no .apkg file; point --previous at the last release's packages\n"
    )


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,x", "//host/x", "notes.md"])
@pytest.mark.parametrize(
    "command", [("build", "decks"), ("release", "decks", "-o", "r", "--release-version", "v1")]
)
def test_a_notes_url_that_is_not_a_web_address_is_a_usage_error(run, deck_tree, url, command):
    _one_card(deck_tree)
    result = run(*command, "--notes-url", url)
    assert result.exit_code == 2
    assert (
        f"Invalid value for '--notes-url': {url!r} is not a web address; give one that starts with https://"
        in (result.stderr)
    )


@pytest.mark.parametrize("target", ["/dev/null", "a-file", "a-file/sub"])
@pytest.mark.parametrize(
    "command", [("preview", "decks"), ("build", "decks"), ("release", "decks", "--release-version", "v1")]
)
def test_output_into_a_file_is_a_message_not_a_traceback(run, deck_tree, target, command):
    _one_card(deck_tree)
    put(deck_tree.parent, "a-file", "not a folder")
    result = run(*command, "-o", target)
    assert result.exit_code == 1
    reason = "Not a directory" if target.endswith("/sub") else "File exists"
    assert result.stderr == (
        f"error: {target}: cannot write ({reason}); a file stands where a folder is needed: "
        "choose another output folder\n"
    )


@pytest.mark.parametrize("command", [("cards", "decks", "--json"), ("check", "decks"), ("build", "decks")])
def test_output_that_cannot_be_written_is_a_message_not_a_traceback(deck_tree, command):
    import subprocess
    import sys

    _one_card(deck_tree)
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [sys.executable, "-m", "deckbuild", *command],
            cwd=deck_tree.parent, stdout=full, stderr=subprocess.PIPE, text=True, timeout=120,
        )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == "error: cannot write the output (No space left on device); check where it goes\n"


@pytest.mark.parametrize("closed", ["<&-", ">&-", "2>&-", "<&- >&- 2>&-"])
def test_a_closed_standard_stream_changes_nothing_a_build_writes(deck_tree, closed):
    import subprocess
    import sys

    _one_card(deck_tree)
    script = f'exec "$0" -m deckbuild build decks {closed}'
    result = subprocess.run(
        ["sh", "-c", script, sys.executable],
        cwd=deck_tree.parent, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (deck_tree.parent / "dist").is_dir() and list((deck_tree.parent / "dist").glob("*.apkg"))


def test_building_one_file_never_replaces_the_package_of_its_whole_deck(run, deck_tree):
    put(deck_tree, "D/a.txt", f"Question;Answer;UUID\nA?;a.;{U1}\n")
    put(deck_tree, "D/b.txt", f"Question;Answer;UUID\nB?;b.;{U2}\n")
    assert run("build", "decks").exit_code == 0
    whole = (deck_tree.parent / "dist" / "D.apkg").read_bytes()
    result = run("build", "decks/D/a.txt")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == "wrote dist/D-a.apkg"
    assert (deck_tree.parent / "dist" / "D.apkg").read_bytes() == whole


@given(
    text=st.text(min_size=1, max_size=12).filter(lambda t: not t.isprintable() or not t.strip()),
    case=st.sampled_from(
        [
            (("build", "decks"), "--deck-version"),
            (("build", "decks"), "--notes-url"),
            (("release", "decks", "-o", "r", "--release-version", "v1"), "--notes-url"),
            (("release", "decks", "-o", "r"), "--release-version"),
        ]
    ),
)
@example(text=" ", case=(("build", "decks"), "--notes-url"))  # a trailing blank, found by Hypothesis
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40)
def test_a_version_or_link_that_is_not_one_printable_line_is_a_usage_error(run, deck_tree, text, case):
    """Control characters, line breaks or blanks never reach a deck description or the release notes."""
    command, option = case
    _one_card(deck_tree)
    value = f"https://x/{text}" if option == "--notes-url" else text
    result = run(*command, option, value)
    assert result.exit_code == 2
    message = f"{value!r} is not one line of printable text; give a tag such as v1.2.0"
    if option == "--notes-url" and value.split() != [value]:
        message = f"{value!r} is not a web address: it holds a blank; leave the blanks out"
    assert " ".join(message.split()) in " ".join(result.stderr.split())
    assert not (deck_tree.parent / "dist").exists() and not (deck_tree.parent / "r").exists()


def test_a_preview_inside_the_deck_tree_is_refused_as_a_build_is(run, deck_tree, monkeypatch):
    put(deck_tree, "cards.txt", f"Question;Answer;UUID\nQ1;A1;{U1}\n")
    monkeypatch.chdir(deck_tree)
    result = run("preview", ".")
    assert (result.exit_code, result.stderr) == (
        1,
        "error: the output folder preview is inside the deck tree ., where every file is read as a "
        "source; build into a folder outside it (-o ../dist)\n",
    )
    assert sorted(p.name for p in deck_tree.iterdir()) == ["cards.txt"]


@pytest.mark.parametrize(
    "order", [("decks/A/Sub", "decks/A"), ("decks/A", "decks/A/Sub"), ("decks/A/a.txt", "decks")]
)
def test_paths_given_together_make_the_same_packages_in_any_order(run, deck_tree, order):
    put(deck_tree, "A/a.txt", f"Question;Answer;UUID\nQ1;A1;{U1}\n")
    put(deck_tree, "A/Sub/s.txt", f"Question;Answer;UUID\nQ2;A2;{U2}\n")
    assert run("build", "decks", "-o", "first").exit_code == 0  # its lock makes decks the deck root
    result = run("build", *order, "-o", "out")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (deck_tree.parent / "out").iterdir()) == ["A.apkg"]
    with zipfile.ZipFile(deck_tree.parent / "out" / "A.apkg") as z:
        assert z.read("collection.anki2").count(b"kind::basic") == 2


@pytest.mark.parametrize(
    "paths",
    [
        ("decks/A/a.txt", "alias/B/b.txt"),  # one tree named two ways at once
        ("alias/B/b.txt", "decks/A/a.txt"),
        ("alias/A", "decks/A/a.txt"),
        ("sub",),  # a link from outside the tree to one of its folders, read along the link alone
        ("sub/a.txt",),
        ("alias",),
        ("sub/../B",),  # up from where the link leads: decks/B
        ("file.txt",),  # a link to a file of the tree
        ("outside/file.txt", "decks/B"),
    ],
)
def test_a_path_through_a_link_builds_the_tree_it_leads_into(run, deck_tree, paths):
    # Read along the link alone, a folder of the tree became a second root (a lock inside the
    # tree, a deck named after the link); named two ways, the tree held every card twice.
    put(deck_tree, "A/a.txt", f"Question;Answer;UUID\nQ1;A1;{U1}\n")
    put(deck_tree, "B/b.txt", f"Question;Answer;UUID\nQ2;A2;{U2}\n")
    assert run("build", "decks", "-o", "first").exit_code == 0
    os.symlink("decks", deck_tree.parent / "alias")
    os.symlink("decks/A", deck_tree.parent / "sub")
    os.symlink("decks/A/a.txt", deck_tree.parent / "file.txt")
    (deck_tree.parent / "outside").mkdir()
    os.symlink("../decks/A/a.txt", deck_tree.parent / "outside" / "file.txt")
    (deck_tree.parent / "B").mkdir()  # where `sub/../B` would lead if `..` were taken off as text
    renamed = {"alias": "decks", "sub/../B": "decks/B", "sub": "decks/A", "outside/file.txt": "decks/A/a.txt"}
    direct = [renamed.get(p, "decks/A/a.txt" if p == "file.txt" else p) for p in paths]
    direct = [
        p if p in renamed.values() else p.replace("alias", "decks").replace("sub", "decks/A") for p in direct
    ]
    expected = run("build", *direct, "-o", "direct")
    result = run("build", *paths, "-o", "out")
    assert (result.exit_code, result.stderr) == (expected.exit_code, expected.stderr) == (0, "")
    assert sorted(p.name for p in (deck_tree.parent / "out").iterdir()) == sorted(
        p.name for p in (deck_tree.parent / "direct").iterdir()
    )
    assert sorted(str(p.relative_to(deck_tree)) for p in deck_tree.rglob("deckbuild.lock")) == [
        "deckbuild.lock"
    ]


@pytest.mark.parametrize("command", ["build", "preview"])
def test_an_output_folder_reached_up_from_a_link_into_the_tree_is_refused(run, deck_tree, command):
    # `sub/../out` is decks/out, where `sub` leads into decks/A: taken off as text, it was ./out.
    put(deck_tree, "A/a.txt", f"Question;Answer;UUID\nQ1;A1;{U1}\n")
    assert run("build", "decks", "-o", "first").exit_code == 0
    os.symlink("decks/A", deck_tree.parent / "sub")
    result = run(command, "decks", "-o", "sub/../out")
    assert (result.exit_code, result.stderr) == (
        1,
        "error: the output folder sub/../out is inside the deck tree decks, where every file is read as a "
        "source; build into a folder outside it (-o ../dist)\n",
    )
    assert not (deck_tree / "out").exists()


def test_a_lock_inside_a_deck_tree_is_refused_rather_than_giving_its_cards_other_ids(run, deck_tree):
    # A first build of one file, with no lock anywhere, makes that file's folder a deck root.
    page = "Recall & Review\nbeginner\nWhat is a key?\nThe vector matched.\nClick to reveal answer\n"
    put(deck_tree, "Basics/intro.txt", page)
    assert run("build", "decks/Basics/intro.txt", "-o", "one").exit_code == 0
    result = run("build", "decks", "-o", "two")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        "decks/Basics/deckbuild.lock: a lock inside the deck tree: decks/Basics was built as a deck tree "
        "of its own; build it alone, or delete this lock (its cards then get the ids of the larger tree)"
    )
    assert not (deck_tree.parent / "two").exists()


def test_a_build_says_which_packages_it_wrote_and_which_it_left_as_they_were(run, deck_tree):
    put(deck_tree, "A/cards.txt", "Question;Answer;UUID\nQA;AA;11111111-1111-4111-8111-111111111111\n")
    b = put(deck_tree, "B/cards.txt", "Question;Answer;UUID\nQB;AB;22222222-2222-4222-8222-222222222222\n")
    assert run("build", "decks").stdout.splitlines()[:2] == ["wrote dist/A.apkg", "wrote dist/B.apkg"]
    b.write_text(b.read_text(encoding="utf-8").replace("AB", "AB edited"), encoding="utf-8")
    first = (deck_tree.parent / "dist/A.apkg").stat().st_mtime_ns
    result = run("build", "decks")
    assert result.stdout.splitlines()[:2] == ["unchanged dist/A.apkg", "wrote dist/B.apkg"]
    assert (deck_tree.parent / "dist/A.apkg").stat().st_mtime_ns == first
    assert run("build", "decks").stdout.splitlines()[:2] == ["unchanged dist/A.apkg", "unchanged dist/B.apkg"]
