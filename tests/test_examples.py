"""The README's examples in examples/decks/ build as committed (frozen) and reach Anki as described."""

from __future__ import annotations

import shutil

from ankihelp import import_package, notes_by_guid
from conftest import ROOT
from deckbuild.build import build

EXAMPLES = ROOT / "examples" / "decks"
NOW = 1_700_000_000


def test_every_example_builds_frozen_and_imports(tmp_path, collection):
    tree = tmp_path / "examples"
    shutil.copytree(EXAMPLES, tree)
    result = build([tree], tmp_path / "dist", now=NOW, frozen=True, strict=True, use_cache=False)
    assert not result.report.problems
    assert result.report.counts["read"] == result.report.counts["packaged"]
    for package in result.packages:
        import_package(collection, package)
    notes = notes_by_guid(collection)
    assert len(notes) == result.report.counts["packaged"]
    tagged = notes["5d0e3c2a-8f41-4b7e-9a65-2c1f3e7d9b10"]
    assert {"attention::qkv", "core"} <= set(tagged.tags)
    assert "search engine" in tagged["Hint"] and "2017" in tagged["Extra"]
    nested = notes["c4e8f1a2-3b5d-4c6e-8f9a-1b2c3d4e5f60"]
    assert nested.note_type()["name"] == "deckbuild cloze" and len(nested.cards()) == 3
    both = notes["7e9d8c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"]
    assert both.note_type()["name"] == "deckbuild card and reversed" and len(both.cards()) == 2
