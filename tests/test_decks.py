"""The repository's own decks: the seeds as they came, built against the committed lock."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import DECKS, ROOT
from deckbuild.build import build

SEEDS = ROOT.parent / "shared" / "seeds"


def test_decks_hold_the_seeds_unchanged():
    if not SEEDS.is_dir():
        pytest.skip("shared/seeds is not beside this checkout")
    for original in sorted(SEEDS.glob("0*.txt")):
        (copy,) = DECKS.rglob(original.name)
        assert copy.read_bytes() == original.read_bytes(), original.name


def test_decks_build_frozen_against_the_committed_lock(tmp_path: Path):
    lock = (DECKS / "deckbuild.lock").read_bytes()
    result = build([DECKS], tmp_path, now=2_000_000_000, frozen=True)
    assert [p.name for p in result.packages] == ["Transformers.apkg"]
    assert (DECKS / "deckbuild.lock").read_bytes() == lock


def test_every_card_of_every_deck_is_packaged_or_reported(tmp_path: Path):
    import sqlite3
    import zipfile

    from deckbuild.build import collect

    result = build([DECKS], tmp_path, now=2_000_000_000, frozen=True)
    counts = result.report.counts
    assert counts["read"] == counts["packaged"] + counts.get("skipped", 0)
    incomplete = [p for p in result.report.problems if "incomplete" in p.message]
    assert counts.get("incomplete", 0) == len(incomplete) == 1

    guids = set()
    for apkg in result.packages:
        with zipfile.ZipFile(apkg) as z:
            (tmp_path / "c.anki2").write_bytes(z.read("collection.anki2"))
        with sqlite3.connect(tmp_path / "c.anki2") as db:
            guids |= {g for (g,) in db.execute("SELECT guid FROM notes")}
    assert len(guids) == counts["packaged"]
    assert guids == {p.card.id for p in collect([DECKS]).cards}


def test_the_seed_pages_show_their_asterisks_as_copied(tmp_path: Path):
    # A page's text has no markup: `1*1+0*0` on the page is not Markdown emphasis on a card.
    from deckbuild.packaged import read_package

    (package,) = build([DECKS], tmp_path, now=2_000_000_000, frozen=True).packages
    notes = read_package(package).notes.values()
    solutions = [n.fields for n in notes if "dot products: [1" in "".join(n.fields)]
    assert len(solutions) == 1
    assert "dot products: [1*1+0*0=1, 1*(-10)+0*1=-10]" in "".join(solutions[0])
    assert "<em>" not in "".join(solutions[0])
