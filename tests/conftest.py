"""Shared fixtures: the repository's decks, throwaway deck trees, and real Anki collections."""

from __future__ import annotations

import gc
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# `make test` runs a bounded number of examples; `make fuzz` (HYPOTHESIS_PROFILE=fuzz) many more.
settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz", max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ROOT = Path(__file__).resolve().parent.parent
DECKS = ROOT / "decks"
DATA = Path(__file__).resolve().parent / "data"


def seed(name: str) -> Path:
    """Return the copy of a seed kept in decks/, by its number prefix (e.g. '003')."""
    found = sorted(DECKS.rglob(f"{name}_*.txt"))
    assert len(found) == 1, f"seed {name} should be in decks/ exactly once"
    return found[0]


@pytest.fixture
def deck_tree(tmp_path: Path) -> Iterator[Path]:
    """An empty deck tree root in a temporary folder."""
    root = tmp_path / "decks"
    root.mkdir()
    yield root


def put(root: Path, relative: str, source: Path | str | bytes) -> Path:
    """Place a file in a deck tree: a copy of `source`, or the given text or bytes."""
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(source, Path):
        shutil.copyfile(source, target)
    elif isinstance(source, bytes):
        target.write_bytes(source)
    else:
        target.write_text(source, encoding="utf-8")
    return target


@pytest.fixture
def collection(tmp_path: Path) -> Iterator[object]:
    """A fresh, throwaway Anki collection (Anki's own backend)."""
    from anki.collection import Collection

    col = Collection(str(tmp_path / "collection.anki2"))
    try:
        yield col
    finally:
        col.close()


@pytest.fixture(autouse=True)
def own_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Give every test a cache of its own, never the user's."""
    directory = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("DECKBUILD_CACHE_DIR", str(directory))
    return directory


@pytest.fixture(autouse=True)
def collector_as_it_was() -> Iterator[None]:
    """Put the cycle collector back as it was after each test."""
    # Start-up (deckbuild.launch) turns it off, and the command line on again: a test that runs
    # start-up without the command line would leave it off for the tests after it.
    enabled = gc.isenabled()
    yield
    if enabled:
        gc.enable()
    else:
        gc.disable()
