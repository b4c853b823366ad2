"""The floor: the plainest genanki script, a Basic note type (Front, Back) and the same rows, as a process.

Fields as they are (no rendering), fixed GUIDs, `write_to_file`: what a user would compare with.
With `--deckbuild-notetype`, the same notes on deckbuild's own note type (its fifteen fields,
templates and CSS) instead: the floor the bench once used, shown beside the plain one.
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


def deckbuild_model() -> tuple[genanki.Model, int]:
    """Return deckbuild's own note type as a genanki model, and how many fields it has."""
    from deckbuild.notetype import NOTE_TYPE_ID, NOTE_TYPES

    nt = NOTE_TYPES[NOTE_TYPE_ID]
    model = genanki.Model(
        nt.id,
        nt.name,
        fields=[{"name": name} for name in nt.fields],
        templates=[dict(t) for t in nt.templates],
        css=nt.css,
        sort_field_index=nt.sort_field,
    )
    return model, len(nt.fields)


def main(out: Path, sources: list[Path], own: bool = False) -> None:
    model, width = deckbuild_model() if own else (MODEL, 2)
    deck = genanki.Deck(2_059_400_110, "floor")
    for source in sources:
        for line in source.read_text(encoding="utf-8").splitlines()[1:]:
            question, answer, guid = line.rsplit(";", 2)
            fields = [question, answer] + [""] * (width - 2)
            deck.add_note(genanki.Note(model=model, fields=fields, guid=guid))
    genanki.Package(deck).write_to_file(out, timestamp=1_700_000_000)


if __name__ == "__main__":
    own = "--deckbuild-notetype" in sys.argv[1:]
    args = [a for a in sys.argv[1:] if a != "--deckbuild-notetype"]
    main(Path(args[0]), [Path(a) for a in args[1:]], own)
