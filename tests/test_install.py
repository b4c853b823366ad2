"""Installing deckbuild for a deck repository of one's own: a wheel in a fresh venv, for real."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ankihelp import import_package, notes_by_guid
from conftest import ROOT

U1 = "11111111-1111-4111-8111-111111111111"


@pytest.mark.slow
@pytest.mark.anki
def test_a_built_wheel_installed_in_a_fresh_venv_builds_an_authors_own_repository(tmp_path, collection):
    def run(*args, cwd=tmp_path, ok=True):
        result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)
        assert (result.returncode == 0) == ok, result.stdout + result.stderr
        return result

    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "wheels"), str(ROOT))
    (wheel,) = (tmp_path / "wheels").glob("deckbuild-*.whl")
    # A venv without pip of its own, filled by this pip: the same install, without ensurepip's time.
    run(sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv"))
    venv = tmp_path / "venv" / "bin"
    run(sys.executable, "-m", "pip", "--python", str(venv / "python"), "install", "-q", "--no-compile",
        "--disable-pip-version-check", str(wheel))  # fmt: skip
    where = run(str(venv / "python"), "-c", "import deckbuild; print(deckbuild.__file__)").stdout
    assert where.startswith(str(tmp_path / "venv")), "the installed copy, not the source tree"

    repo = tmp_path / "my-cards"  # a deck repository of one's own: its deck root is not decks/
    (repo / "cards" / "Basics").mkdir(parents=True)
    (repo / "cards" / "Basics" / "intro.txt").write_text(
        f"Question;Answer;UUID\nWhat is a *query*?;What a token looks for: \\(q = x W^q\\);{U1}\n",
        encoding="utf-8",
    )
    deckbuild = str(venv / "deckbuild")
    missing = run(deckbuild, "build", cwd=repo, ok=False)
    assert missing.returncode == 2 and "there is no decks/ folder here" in missing.stderr
    built = run(deckbuild, "build", "cards", cwd=repo)
    assert built.stdout == "wrote dist/Basics.apkg\n1 card(s) read, 1 packaged, 0 skipped, 0 incomplete\n"
    assert (repo / "cards" / "deckbuild.lock").is_file()
    assert run(deckbuild, "build", "--frozen", "cards", cwd=repo).returncode == 0
    checked = run(deckbuild, "check", "--strict", "cards/Basics/intro.txt", cwd=repo)
    assert checked.stdout.startswith("ok: 1 card(s) checked")

    assert import_package(collection, repo / "dist" / "Basics.apkg").new == 1
    note = notes_by_guid(collection)[U1]
    assert note["Front"] == "<p>What is a <em>query</em>?</p>" and r"\(q = x W^q\)" in note["Back"]
