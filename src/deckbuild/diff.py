"""What changed between two releases of a deck: cards added, changed and removed, note types.

Each side is a built .apkg, a folder of them (a downloaded release, dist/), or a deck source
folder, which is built for the comparison without touching its lock file.
"""

from __future__ import annotations

import difflib
import re
import sqlite3
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deckbuild.build import RETIRED_TAG, build
from deckbuild.errors import DeckbuildError
from deckbuild.packaged import NewerFormat, PackageContents, PackagedNote, read_package
from deckbuild.resources import ran_out
from deckbuild.sources import display_path

QUESTION_FIELD = 0
IGNORED_FIELDS = frozenset({"Status"})
_TAG_RE = re.compile(r"<[^>]+>")
# Tags that start a new line or block for the reader; the others (code colours, emphasis) join words.
_BLOCK_RE = re.compile(
    r"</?(?:p|br|div|ul|ol|li|tr|td|th|table|thead|tbody|pre|h[1-6]|hr|blockquote|dl|dt|dd)\b[^>]*>", re.I
)
_ITEM_RE = re.compile(r"<li\b[^>]*>", re.I)
_LETTER_RE = re.compile(r'<span class="db-letter">([^<]*)</span>')
# A word, or one mark of punctuation, with the space before it.
_TOKEN_RE = re.compile(r"\s*(?:\w+|[^\w\s])")
_CONTEXT = 3


@dataclass
class Change:
    """One card that differs, by UUID and question."""

    id: str
    question: str
    fields: list[str] = field(default_factory=list)
    diffs: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "question": self.question}
        if self.fields:
            data["fields"] = self.fields
            data["diff"] = self.diffs
        return data


@dataclass
class Diff:
    """The difference between two sides."""

    added: list[Change] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    removed: list[Change] = field(default_factory=list)
    notetypes: list[str] = field(default_factory=list)
    breaking: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "added": [c.to_json() for c in self.added],
            "changed": [c.to_json() for c in self.changed],
            "removed": [c.to_json() for c in self.removed],
            "notetypes": self.notetypes,
            "breaking": self.breaking,
        }


def visible(markup: str) -> str:
    """The text a learner reads in a field: inline markup joins words, blocks and items part them."""
    import html

    text = _LETTER_RE.sub(r"\1. ", markup)
    text = _ITEM_RE.sub("\n- ", text)
    text = _TAG_RE.sub("", _BLOCK_RE.sub("\n", text))
    return re.sub(r"\s+", " ", html.unescape(text)).strip()


def _short(text: str, limit: int = 70) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def word_diff(old: str, new: str, hunks: int = 3) -> str:
    """Describe how `new` differs from `old`, word by word, with a little context around each change.

    Punctuation is a word of its own, so code reads as code: `np.«zeros» → «ones»(3)`.
    """
    a, b = _TOKEN_RE.findall(visible(old)), _TOKEN_RE.findall(visible(new))
    parts = []
    matcher = difflib.SequenceMatcher(None, [t.strip() for t in a], [t.strip() for t in b], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        # Context: what the new text says before the change, and the old text after it.
        before = "".join(b[max(0, j1 - _CONTEXT) : j1]).strip()
        after = "".join(a[i2 : i2 + _CONTEXT]).rstrip()
        gone, came = _short("".join(a[i1:i2]).strip(), 40), _short("".join(b[j1:j2]).strip(), 40)
        change = f"«{gone}» → «{came}»" if gone and came else f"+«{came}»" if came else f"-«{gone}»"
        gap = " " if (b[j1:j2] or a[i1:i2] or [" "])[0][:1].isspace() else ""
        tail = " " if after[:1].isspace() else ""
        parts.append(f"{before}{gap}{change}{tail}{after.strip()}".strip())
    extra = f" (and {len(parts) - hunks} more)" if len(parts) > hunks else ""
    return "; ".join(parts[:hunks]) + extra


def read(path: Path) -> PackageContents:
    """Read one .apkg; anything else is a clear error, not a traceback."""
    try:
        return read_package(path)
    except NewerFormat:
        raise DeckbuildError(
            f"{display_path(path)}: a package in Anki's newer format (collection.anki21b), which "
            "deckbuild cannot read; export it again from Anki with 'Support older Anki versions' ticked"
        ) from None
    except zipfile.BadZipFile:
        why = "not a zip file"
    except KeyError:
        why = "a zip file without collection.anki2"
    except (sqlite3.Error, ValueError, TypeError, AttributeError, IndexError) as exc:
        if ran_out(exc):
            raise
        why = "its collection cannot be read"
    except OSError as exc:
        if ran_out(exc):
            raise
        why = exc.strerror or str(exc)
    raise DeckbuildError(
        f"{display_path(path)}: not an Anki package ({why}); "
        "give an .apkg file, a folder of them, or a deck folder"
    )


def load(path: Path) -> PackageContents:
    """Read one side: an .apkg, a folder of .apkg files, or a deck source folder."""
    if path.is_file():
        return read(path)
    packages = sorted(path.glob("*.apkg")) if path.is_dir() else []
    if not packages and path.is_dir():
        with tempfile.TemporaryDirectory(prefix="deckbuild-diff-") as tmp:
            result = build([path], Path(tmp), now=0, dry_run=True)
            return _merge([read(p) for p in result.packages])
    if not packages:
        raise DeckbuildError(f"{path}: not an .apkg, a folder of them, or a deck folder")
    return _merge([read(p) for p in packages])


def _merge(parts: list[PackageContents]) -> PackageContents:
    """Merge a folder's packages: a note several of them hold is the newest one, as Anki keeps it.

    A package a move left behind (`Old.apkg`, beside the `New.apkg` the card moved to) still
    ships the card as it was; taken by name order, it hid the change.
    """
    merged = PackageContents()
    for part in parts:
        for guid, note in part.notes.items():
            known = merged.notes.get(guid)
            if known is None or note.mod >= known.mod:
                merged.notes[guid] = note
        merged.notetypes.update(part.notetypes)
    return merged


def _active(note: PackagedNote) -> bool:
    return RETIRED_TAG not in note.tags


def compare(old: PackageContents, new: PackageContents) -> Diff:
    """List what a learner's collection gains, loses and sees change between `old` and `new`."""
    diff = Diff()
    names = {k: t.fields for k, t in {**old.notetypes, **new.notetypes}.items()}
    for guid in sorted(set(old.notes) | set(new.notes), key=lambda g: _order(g, old, new)):
        before, after = old.notes.get(guid), new.notes.get(guid)
        was = before is not None and _active(before)
        now = after is not None and _active(after)
        note = after or before
        assert note is not None
        question = _short(visible(note.fields[QUESTION_FIELD]))
        if now and not was:
            diff.added.append(Change(guid, question))
        elif was and not now:
            diff.removed.append(Change(guid, question))
        elif was and now and before is not None and after is not None:
            if before.notetype != after.notetype:
                diff.breaking.append(
                    f"card {guid} moved from note type {before.notetype} to {after.notetype}: Anki refuses "
                    "that update by default, and with 'merge note types' empties the note"
                )
            change = Change(guid, question)
            labels = names.get(after.notetype, ())
            for n, (x, y) in enumerate(zip(before.fields, after.fields, strict=False)):
                label = labels[n] if n < len(labels) else f"field {n + 1}"
                if x != y and label not in IGNORED_FIELDS:
                    change.fields.append(label)
                    change.diffs[label] = word_diff(x, y) or "formatting only"
            if sorted(before.tags) != sorted(after.tags):
                change.fields.append("tags")
                change.diffs["tags"] = word_diff(" ".join(sorted(before.tags)), " ".join(sorted(after.tags)))
            if change.fields:
                diff.changed.append(change)
                if after.mod <= before.mod:
                    diff.breaking.append(
                        f"card {guid} changed without a newer mod time: learners who have the "
                        "earlier package keep its old content (build into the folder that holds it, "
                        "or with --previous)"
                    )
    _compare_notetypes(old, new, diff)
    return diff


def _order(guid: str, old: PackageContents, new: PackageContents) -> tuple[str, int, str]:
    note = new.notes.get(guid) or old.notes[guid]
    return (note.deck, note.mod, guid)


def _compare_notetypes(old: PackageContents, new: PackageContents, diff: Diff) -> None:
    for key in sorted(set(old.notetypes) | set(new.notetypes)):
        before, after = old.notetypes.get(key), new.notetypes.get(key)
        if before is None or after is None:
            if before is not None and any(n.notetype == key for n in new.notes.values()):
                continue
            which = after or before
            assert which is not None
            diff.notetypes.append(
                f"note type {which.name} ({key}) {'added' if before is None else 'removed'}"
            )
            continue
        if before.fields != after.fields:
            diff.breaking.append(
                f"note type {after.name} ({key}) changed its fields from {', '.join(before.fields)} to "
                f"{', '.join(after.fields)}: Anki will import it as a new note type and skip every "
                "existing note as conflicting"
            )
        if before.templates != after.templates or before.css != after.css:
            what = " and ".join(
                w
                for w, d in (
                    ("templates", before.templates != after.templates),
                    ("CSS", before.css != after.css),
                )
                if d
            )
            newer = (
                "newer, so learners get it"
                if after.mod > before.mod
                else "NOT newer: learners will not get it"
            )
            diff.notetypes.append(f"note type {after.name}: {what} changed ({newer})")
            if after.mod <= before.mod:
                diff.breaking.append(f"note type {after.name} changed without a newer mod time")


def to_text(diff: Diff) -> str:
    """A plain report, one card a line."""
    lines = [f"BREAKING: {b}" for b in diff.breaking]
    lines.append(f"{len(diff.added)} added, {len(diff.changed)} changed, {len(diff.removed)} removed")
    lines += [f"+ {c.id}  {c.question}" for c in diff.added]
    for c in diff.changed:
        lines.append(f"~ {c.id}  {c.question}")
        lines += [f"    {name}: {c.diffs[name]}" for name in c.fields]
    lines += [f"- {c.id}  {c.question}" for c in diff.removed]
    lines += [f"* {n}" for n in diff.notetypes]
    return "\n".join(lines) + "\n"


def to_markdown(diff: Diff, title: str = "What changed") -> str:
    """Release notes: what changed, and how learners apply it."""
    out = [f"## {title}", ""]
    if diff.breaking:
        out += ["> [!WARNING]", "> This release breaks learners' updates:"]
        out += [f"> - {b}" for b in diff.breaking]
        out.append("")
    out += [f"**{len(diff.added)} added, {len(diff.changed)} changed, {len(diff.removed)} removed.**", ""]
    for heading, changes in (("Added", diff.added), ("Changed", diff.changed), ("Removed", diff.removed)):
        if not changes:
            continue
        out += [f"### {heading}", ""]
        for c in changes:
            detail = "; ".join(f"{n}: {c.diffs[n]}" for n in c.fields)
            out.append(f"- {_md(c.question)} (`{c.id}`)" + (f" — {_md(detail)}" if detail else ""))
        out.append("")
    if diff.notetypes:
        out += ["### Card layout", "", *[f"- {_md(n)}" for n in diff.notetypes], ""]
    out += [
        "### Updating in Anki",
        "",
        "Import the new `.apkg` over the old one (File → Import) with the default options: notes "
        "update in place and your review history is kept.",
    ]
    if diff.removed:
        out += [
            "",
            f"Removed cards stay in your collection, tagged `{RETIRED_TAG}` and marked retired on the "
            "back. To delete them: open Browse, search `tag:deckbuild::retired`, select all, and "
            "choose Notes → Delete. If you import this deck for the first time, they are in its "
            "`Retired` subdeck: delete that subdeck.",
        ]
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return re.sub(r"([\\`*_\[\]<>|])", r"\\\1", text)
