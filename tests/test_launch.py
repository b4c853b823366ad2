"""The program ends at once when a command is done, with its status, its output and its exit handlers."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from conftest import put
from deckbuild import launch
from deckbuild.cli import cli
from deckbuild.readers import RawCard

U = "00000000-0000-4000-8000-{:012d}"


def _program(*args: str, cwd, code: str = "") -> subprocess.CompletedProcess[str]:
    """Run the command line as the program runs it (`python -m deckbuild` ends through launch.entry)."""
    run = [sys.executable, "-m", "deckbuild", *args]
    if code:
        argv = f"import sys\nsys.argv = ['deckbuild', *{list(args)!r}]"
        run = [sys.executable, "-c", f"{argv}\n{code}\nfrom deckbuild.launch import entry\nentry()\n"]
    return subprocess.run(run, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_program_ends_with_all_its_output_and_the_command_s_status(deck_tree):
    # More than a pipe holds: what is still buffered when the command is done reaches the reader.
    rows = "".join(f"Question {n} {'x' * 200}?;Answer {n}.;{U.format(n)}\n" for n in range(600))
    put(deck_tree, "D/a.txt", "Question;Answer;UUID\n" + rows)
    shown = _program("cards", "decks", "--json", cwd=deck_tree.parent)
    assert shown.returncode == 0, shown.stderr
    assert len(json.loads(shown.stdout)) == 600
    built = _program("build", "decks", cwd=deck_tree.parent)
    assert (built.returncode, built.stderr) == (0, "")
    assert built.stdout == "wrote dist/D.apkg\n600 card(s) read, 600 packaged, 0 skipped, 0 incomplete\n"
    put(deck_tree, "D/b.txt", "Question;Answer\nQ?;A.\n")
    failed = _program("build", "decks", cwd=deck_tree.parent)
    assert failed.returncode == 1
    assert failed.stderr == (
        "decks/D/b.txt:2: no UUID; run 'deckbuild ids' to write a new one into the file\n"
        "1 error(s), 0 warning(s)\n"
    )
    usage = _program("build", "--no-such-option", cwd=deck_tree.parent)
    assert usage.returncode == 2
    assert usage.stderr.endswith("Error: No such option '--no-such-option'.\n")


def test_the_program_runs_its_exit_handlers_and_says_what_they_print(tmp_path):
    ran = _program(
        "--version", cwd=tmp_path, code="import atexit\natexit.register(lambda: print('the handler ran'))"
    )
    assert ran.returncode == 0
    assert ran.stdout.endswith("the handler ran\n")


def test_an_exit_with_a_message_or_with_output_that_cannot_be_written_is_left_to_python(monkeypatch):
    # Each of these returns instead of ending the process (which would end this test run too).
    assert launch._end(SystemExit("a message for Python to print")) is None

    class Closed:
        def flush(self) -> None:
            raise ValueError("I/O operation on closed file")

    monkeypatch.setattr(sys, "stdout", Closed())
    assert launch._end(SystemExit(0)) is None


def test_a_build_run_as_the_program_leaves_what_it_made_for_the_end_and_inside_a_program_nothing(
    deck_tree, monkeypatch
):
    put(deck_tree, "D/a.txt", f"Question;Answer;UUID\nQ?;A.;{U.format(1)}\n")
    monkeypatch.chdir(deck_tree.parent)
    assert launch.leftovers() is None  # a test runs the command line inside a program
    assert CliRunner().invoke(cli, ["build", "decks", "-q"]).exit_code == 0
    kept: list[object] = []
    monkeypatch.setattr(launch, "_leftovers", kept)
    put(deck_tree, "D/a.txt", f"Question;Answer;UUID\nQ?;Another answer.;{U.format(1)}\n")
    assert CliRunner().invoke(cli, ["build", "decks", "-q"]).exit_code == 0
    assert kept, "the build's collection, memo and packages are kept for the process's end"
    # A build in full keeps the cards as read too (freeing them one by one delayed its packaging).
    kept.clear()
    put(deck_tree, "D/b.txt", f"Question;Answer;UUID\nQ2?;A.;{U.format(2)}\n")
    assert CliRunner().invoke(cli, ["build", "decks", "-q", "--no-cache"]).exit_code == 0
    assert {raw.data["question"] for raw in _raw_cards(kept)} == {"Q?", "Q2?"}


def _raw_cards(value: object) -> list[RawCard]:
    """Every card as read held in `value`, through lists, tuples and dicts."""
    if isinstance(value, RawCard):
        return [value]
    if isinstance(value, list | tuple):
        return [raw for item in value for raw in _raw_cards(item)]
    if isinstance(value, dict):
        return [raw for item in value.values() for raw in _raw_cards(item)]
    return []


@pytest.mark.parametrize("command", [["build", "decks"], ["build", "decks", "-v"], ["--version"]])
def test_the_program_s_status_and_output_are_what_python_s_own_ending_gives(deck_tree, tmp_path, command):
    put(deck_tree, "D/a.txt", f"Question;Answer;UUID\nQ?;A.;{U.format(1)}\n")
    other = tmp_path / "other"
    shutil.copytree(deck_tree.parent, other)
    fast = _program(*command, cwd=deck_tree.parent)
    slow = _program(
        *command, cwd=other, code="import deckbuild.launch\ndeckbuild.launch._end = lambda done: None"
    )
    assert fast.returncode == slow.returncode == 0
    assert fast.stdout == slow.stdout
    # -v says how long each stage took: the same stages, in the same order.
    assert re.sub(r"\d+\.\d+ s", "_ s", fast.stderr) == re.sub(r"\d+\.\d+ s", "_ s", slow.stderr)


# Programs that run the module in their own process: a profiler (the README's speed section
# profiles builds so), and runpy as any program may. Each must go on after the command.
_EMBEDDERS = {
    "cProfile": ["-m", "cProfile", "-m", "deckbuild", "--version"],
    "runpy": [
        "-c",
        "import runpy, sys\nsys.argv = ['deckbuild', '--version']\ntry:\n"
        "    runpy.run_module('deckbuild', run_name='__main__')\nexcept SystemExit as done:\n"
        "    print('the program goes on after status', done.code)",
    ],
    # The program itself, run under a tracer (as coverage runs it): Python's own ending.
    "tracer": [
        "-c",
        "import sys\nsys.settrace(lambda *args: None)\nsys.argv = ['deckbuild', '--version']\n"
        "from deckbuild.launch import entry\ntry:\n    entry()\nexcept SystemExit as done:\n"
        "    print('the program goes on after status', done.code)",
    ],
}


@pytest.mark.parametrize("embedder", sorted(_EMBEDDERS))
def test_a_program_that_runs_the_module_in_its_own_process_is_not_ended_by_it(tmp_path, embedder):
    ran = subprocess.run(
        [sys.executable, *_EMBEDDERS[embedder]], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("deckbuild, version ")
    assert ("function calls" in ran.stdout) if embedder == "cProfile" else ran.stdout.endswith("status 0\n")
