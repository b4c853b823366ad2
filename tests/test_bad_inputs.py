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
