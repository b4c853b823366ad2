"""Read back what a package holds: its notes and note types, as Anki would import them.

For `deckbuild diff`, releases and retiring cards from an earlier release; a build that only
writes packages never imports this.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class PackagedNote:
    """A note as a package holds it."""

    guid: str
    notetype: str
    fields: tuple[str, ...]
    tags: tuple[str, ...]
    deck: str
    mod: int


@dataclass(frozen=True)
class PackagedNoteType:
    """A note type as a package holds it."""

    id: str
    name: str
    fields: tuple[str, ...]
    templates: tuple[tuple[str, str, str], ...]
    css: str
    mod: int


@dataclass
class PackageContents:
    """What a package holds: its notes and note types."""

    notes: dict[str, PackagedNote] = field(default_factory=dict)
    notetypes: dict[str, PackagedNoteType] = field(default_factory=dict)


def usable_mod(mod: object) -> bool:
    """Tell whether a mod time read from a package is one a lock can keep (whole seconds, to 9999).

    A package may come from anywhere (a download, an edit): a build takes no other from it.
    """
    from deckbuild.lock import MAX_MOD

    return type(mod) is int and 0 <= mod <= MAX_MOD


class NewerFormat(ValueError):
    """A package in Anki's newer format (collection.anki21b), whose notes deckbuild cannot read."""


def read_package(path: Path) -> PackageContents:
    """Read the notes and note types of an .apkg (any package Anki can import from genanki)."""
    import tempfile
    import zipfile

    contents = PackageContents()
    with tempfile.TemporaryDirectory(prefix=".deckbuild-") as tmp, zipfile.ZipFile(path) as archive:
        if "collection.anki21b" in archive.namelist():
            # Its collection.anki2 is a stub for older Ankis: reading it would find no note.
            raise NewerFormat(path)
        db_path = Path(tmp) / "collection.anki2"
        db_path.write_bytes(archive.read("collection.anki2"))
        conn = sqlite3.connect(db_path)
        try:
            models_json, decks_json = conn.execute("SELECT models, decks FROM col").fetchone()
            deck_names = {str(k): v["name"] for k, v in json.loads(decks_json).items()}
            for key, model in json.loads(models_json).items():
                contents.notetypes[str(key)] = PackagedNoteType(
                    str(key),
                    model["name"],
                    tuple(f["name"] for f in sorted(model["flds"], key=lambda f: f["ord"])),
                    tuple(
                        (t["name"], t["qfmt"], t["afmt"])
                        for t in sorted(model["tmpls"], key=lambda t: t["ord"])
                    ),
                    model.get("css", ""),
                    int(model.get("mod", 0)),
                )
            rows = conn.execute(
                "SELECT n.guid, n.mid, n.flds, n.tags, n.mod, MIN(c.did) FROM notes n "
                "LEFT JOIN cards c ON c.nid = n.id GROUP BY n.id ORDER BY n.id"
            )
            for guid, mid, flds, tags, mod, did in rows:
                contents.notes[guid] = PackagedNote(
                    guid,
                    str(mid),
                    tuple(flds.split("\x1f")),
                    tuple(tags.split()),
                    deck_names.get(str(did), ""),
                    mod,
                )
        finally:
            conn.close()
    return contents


def read_mods(path: Path) -> tuple[dict[str, int], dict[str, int]]:
    """Read the mod time of each note (by GUID) and note type (by id) of an .apkg, and nothing else."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        data = archive.read("collection.anki2")
    conn = sqlite3.connect(":memory:")
    try:
        conn.deserialize(data)
        mods: dict[str, int] = {}
        for guid, mod in conn.execute("SELECT guid, mod FROM notes"):
            if type(guid) is str and usable_mod(mod) and mod > mods.get(guid, -1):
                mods[guid] = mod
        (models,) = conn.execute("SELECT models FROM col").fetchone()
        types = {
            str(key): model["mod"]
            for key, model in json.loads(models).items()
            if isinstance(model, dict) and usable_mod(model.get("mod"))
        }
        return mods, types
    finally:
        conn.close()
