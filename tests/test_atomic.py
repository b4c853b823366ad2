"""Output is atomic: a killed build leaves the previous package whole; builds at once take turns."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile

from conftest import put, seed
from deckbuild.build import build
from synth import write_deck


def run_build(cwd, *args):
    # Output goes to a file: a pipe nobody reads would block a chatty build.
    log = open(cwd / f"build-{len(list(cwd.glob('build-*.log')))}.log", "w")  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, "-m", "deckbuild", "build", *args], cwd=cwd, stdout=log, stderr=subprocess.STDOUT
    )


def test_a_build_killed_while_writing_leaves_the_old_package_and_lock(deck_tree):
    put(deck_tree, "Deck/003.txt", seed("003"))
    out = deck_tree.parent / "dist"
    (good,) = build([deck_tree], out, now=1_700_000_000).packages
    before, lock_before = good.read_bytes(), (deck_tree / "deckbuild.lock").read_bytes()
    write_deck(deck_tree / "Deck" / "big.txt", 6000)

    proc = run_build(deck_tree.parent, "decks")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if any(p.name.startswith(".deckbuild-") for p in out.iterdir()):
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.001)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the build should have been killed while writing"

    assert good.read_bytes() == before
    assert (deck_tree / "deckbuild.lock").read_bytes() == lock_before
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["Deck.apkg"]


def test_two_builds_at_once_keep_both_sets_of_lock_entries(deck_tree):
    write_deck(deck_tree / "A" / "a.txt", 2500, seed=1)
    write_deck(deck_tree / "B" / "b.txt", 2500, seed=2)
    (deck_tree / "deckbuild.lock").write_text(
        '{"deckbuild_lock": 1, "notetypes": {}, "notes": {}}\n', encoding="utf-8"
    )
    procs = [run_build(deck_tree.parent, f"decks/{name}", "-o", f"out{name}") for name in ("A", "B")]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, [p.read_text() for p in deck_tree.parent.glob("build-*.log")]
    notes = json.loads((deck_tree / "deckbuild.lock").read_text(encoding="utf-8"))["notes"]
    assert len(notes) == 5000
    for name in ("A", "B"):
        with zipfile.ZipFile(deck_tree.parent / f"out{name}" / f"{name}.apkg") as z:
            assert z.testzip() is None
