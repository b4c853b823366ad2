"""The floor: the plainest genanki script, a Basic note type (Front, Back) and the same rows, as a process.

Fields as they are (no rendering), fixed GUIDs, `write_to_file`: what a user would compare with.
"""

from __future__ import annotations

import sys
from pathlib import Path

import genanki

MODEL = genanki.Model(
    1_607_392_319,
    "floor",
    fields=[{"name": "Front"}, {"name": "Back"}],
    templates=[{"name": "Card", "qfmt": "{{Front}}", "afmt": "{{FrontSide}}<hr id=answer>{{Back}}"}],
)


def main(out: Path, sources: list[Path]) -> None:
    deck = genanki.Deck(2_059_400_110, "floor")
    for source in sources:
        for line in source.read_text(encoding="utf-8").splitlines()[1:]:
            question, answer, guid = line.rsplit(";", 2)
            deck.add_note(genanki.Note(model=MODEL, fields=[question, answer], guid=guid))
    genanki.Package(deck).write_to_file(out, timestamp=1_700_000_000)


if __name__ == "__main__":
    main(Path(sys.argv[1]), [Path(a) for a in sys.argv[2:]])
