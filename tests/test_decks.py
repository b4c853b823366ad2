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
