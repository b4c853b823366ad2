"""The one Anki note type every card kind uses: fields, template, CSS and fixed ids.

Anki refuses or damages updates when a note type's fields change or a GUID moves to another
note type, so all card kinds share this note type and its field list never shrinks or
reorders. A field a kind does not use stays empty, and the template hides it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

NOTE_TYPE_ID = 1_573_912_204
NOTE_TYPE_NAME = "deckbuild card"
# Deck ids only have to be fixed: Anki matches decks by name and replaces the id on import.
DECK_ID_BASE = 1 << 31

FIELDS = (
    "Front",
    "Back",
    "Title",
    "Options",
    "Correct",
    "Explanation",
    "Hint",
    "Solution",
    "Code",
    "Extra",
    "Level",
    "TimeLimit",
    "Kind",
    "Source",
    "Status",
)

FRONT = """\
<div class="db db-{{Kind}}">
{{#Title}}<div class="db-title">{{Title}}</div>{{/Title}}
{{#Level}}<span class="db-level">{{Level}}</span>{{/Level}}\
{{#TimeLimit}}<span class="db-time">⏱ {{TimeLimit}}</span>{{/TimeLimit}}
<div class="db-question">{{Front}}</div>
{{#Code}}<div class="db-code">{{Code}}</div>{{/Code}}
{{#Options}}<div class="db-options">{{Options}}</div>{{/Options}}
{{#Hint}}<div class="db-hint">{{hint:Hint}}</div>{{/Hint}}
</div>"""

BACK = """\
<div class="db-correct-{{Correct}}">{{FrontSide}}</div>
<hr id="answer">
<div class="db db-answer">
{{#Back}}<div class="db-back">{{Back}}</div>{{/Back}}
{{#Explanation}}<div class="db-explanation">{{Explanation}}</div>{{/Explanation}}
{{#Solution}}<div class="db-solution">{{Solution}}</div>{{/Solution}}
{{#Extra}}<div class="db-extra">{{Extra}}</div>{{/Extra}}
{{#Status}}<div class="db-status">{{Status}}</div>{{/Status}}
</div>"""

TEMPLATES = ({"name": "Card", "qfmt": FRONT, "afmt": BACK},)

CSS = """\
.card {
  font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  font-size: 20px; line-height: 1.5; text-align: left;
  color: #1f2328; background-color: #ffffff;
}
.card.nightMode, .nightMode .card, .night_mode .card { color: #e6e6e6; background-color: #1e1f22; }
.db { max-width: 44em; margin: 0 auto; }
.db p { margin: 0.4em 0; }
.db-title { font-weight: 600; font-size: 1.1em; margin-bottom: 0.3em; }
.db-type {
  display: inline-block; font-size: 0.65em; font-weight: 600; text-transform: uppercase;
  letter-spacing: 0.04em; padding: 0.15em 0.6em; margin-right: 0.4em; border-radius: 0.3em;
  background: #ddf4ff; color: #0550ae; vertical-align: middle;
}
.nightMode .db-type, .night_mode .db-type { background: #0c2d6b; color: #a5d6ff; }
.db-level, .db-time {
  display: inline-block; font-size: 0.7em; padding: 0.1em 0.6em; margin: 0 0.4em 0.4em 0;
  border-radius: 1em; background: #eef1f5; color: #3b4350;
}
.nightMode .db-level, .nightMode .db-time, .night_mode .db-level, .night_mode .db-time {
  background: #34373d; color: #d0d4da;
}
.db-options ol { list-style: none; padding: 0; }
.db-opt {
  margin: 0.3em 0; padding: 0.3em 0.6em; border: 1px solid #d0d7de; border-radius: 0.4em;
}
.db-letter { font-weight: 600; margin-right: 0.5em; }
.nightMode .db-opt, .night_mode .db-opt { border-color: #4a4f57; }
.db-correct-A .db-opt-A, .db-correct-B .db-opt-B, .db-correct-C .db-opt-C,
.db-correct-D .db-opt-D, .db-correct-E .db-opt-E, .db-correct-F .db-opt-F {
  border-color: #1a7f37; background: #dafbe1; color: #0b3d1a;
}
.nightMode .db-correct-A .db-opt-A, .nightMode .db-correct-B .db-opt-B,
.nightMode .db-correct-C .db-opt-C, .nightMode .db-correct-D .db-opt-D,
.nightMode .db-correct-E .db-opt-E, .nightMode .db-correct-F .db-opt-F,
.night_mode .db-correct-A .db-opt-A, .night_mode .db-correct-B .db-opt-B,
.night_mode .db-correct-C .db-opt-C, .night_mode .db-correct-D .db-opt-D,
.night_mode .db-correct-E .db-opt-E, .night_mode .db-correct-F .db-opt-F {
  border-color: #3fb950; background: #12361f; color: #c9f7d4;
}
.db-hint { margin-top: 0.6em; font-size: 0.85em; }
.db-explanation, .db-solution, .db-extra { margin-top: 0.6em; }
.db-explanation { border-left: 3px solid #8c959f; padding-left: 0.6em; }
.db-solution ol { padding-left: 1.4em; }
.db-step-title { font-weight: 600; }
.db-extra { font-size: 0.9em; color: #57606a; }
.nightMode .db-extra, .night_mode .db-extra { color: #aab1ba; }
.db-status { margin-top: 0.8em; font-weight: 600; color: #9a6700; }
code, pre { font-family: "JetBrains Mono", Menlo, Consolas, "DejaVu Sans Mono", monospace; }
code { font-size: 0.9em; padding: 0.05em 0.3em; border-radius: 0.3em; background: #eef1f5; }
.nightMode code, .night_mode code { background: #2d3036; }
.db-code pre, .db pre {
  font-size: 0.8em; padding: 0.6em 0.8em; border-radius: 0.4em; overflow-x: auto;
  background: #f6f8fa; color: #1f2328; line-height: 1.4;
}
.db pre code { background: none; padding: 0; }
/* Highlighting colours are inline (every client keeps them); keep their light ground at night. */
.nightMode .db pre, .night_mode .db pre { background: #f6f8fa; color: #1f2328; }
table { border-collapse: collapse; }
th, td { border: 1px solid #d0d7de; padding: 0.2em 0.5em; }
img { max-width: 100%; }
"""


def deck_id(name: str) -> int:
    """Return the fixed id of the deck called `name`."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return DECK_ID_BASE + int.from_bytes(digest[:4], "big") % (1 << 30)


@dataclass(frozen=True)
class NoteType:
    """One Anki note type: a fixed id and name, its fields, card templates and CSS.

    Anki matches note types by id and refuses to move a note to another type on import, so a
    note type once shipped never changes its fields, and a card never changes its note type.
    """

    id: int
    name: str
    fields: tuple[str, ...]
    templates: tuple[dict[str, str], ...]
    css: str
    # A cloze note type: one card per cloze number, not one per template.
    cloze: bool = False
    # How the author and the lock call it ("basic", "reversed", "cloze"; "anki:<id>" when kept).
    label: str = "basic"
    # Only for a note type kept from an imported deck (deckbuild.kept): its mod time as Anki had
    # it, its sort field, and which of its fields take a row's columns (Question, Answer, Reverse).
    mod: int = 0
    sort_field: int = 0
    columns: tuple[tuple[str, str], ...] = ()
    # What the lock would have kept of it when it was imported (`locked`): the baseline a first
    # build checks a kept note type against, before any lock has an entry for it.
    imported: str = ""

    @cached_property
    def digest(self) -> str:
        """Hash everything about the note type that Anki must be told about when it changes."""
        shape: dict[str, Any] = {"name": self.name, "fields": self.fields, "templates": self.templates}
        shape["css"] = self.css
        if self.cloze:
            shape["type"] = "cloze"
        if self.columns:
            shape["columns"], shape["sort"] = self.columns, self.sort_field
        blob = json.dumps(shape, sort_keys=True)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]

    @cached_property
    def schema(self) -> str:
        """Hash what Anki matches a note type by on import, beside its id: field and template names.

        When they change, Anki takes the note type for another one and skips learners' notes; when
        the sort field changes, Anki re-sorts every note and stamps it newer than later packages.
        """
        shape: list[Any] = [self.fields, [t["name"] for t in self.templates], self.cloze]
        if self.sort_field:  # only then, so that hashes locked before it was hashed stay the same
            shape.append(self.sort_field)
        return hashlib.sha256(json.dumps(shape).encode("utf-8")).hexdigest()[:8]

    @property
    def locked(self) -> str:
        """Return what the lock keeps of the note type: for a kept one, what Anki matches it by first."""
        return f"{self.schema}.{self.digest}" if self.columns else self.digest

    @property
    def title(self) -> str:
        """Name the note type in a message: deckbuild's by kind, a kept one by its own name."""
        return f"{self.name!r}" if self.columns else self.label

    def index(self, field: str) -> int:
        """Return the position of `field` among this note type's fields."""
        return self.fields.index(field)


# Every card kind of the pages and plain question/answer rows: learners have these notes, so
# its id, name, fields, template and CSS stay exactly as first shipped.
BASIC = NoteType(NOTE_TYPE_ID, NOTE_TYPE_NAME, FIELDS, TEMPLATES, CSS)

# Both directions: a note type of its own, because adding a template to BASIC would change the
# note type every learner has (Anki then imports it as a new one and skips their notes).
REVERSED_ID = 1_573_912_205
REVERSE_FRONT = """\
<div class="db db-{{Kind}} db-reverse">
<div class="db-question">{{Back}}</div>
</div>"""
REVERSE_BACK = """\
{{FrontSide}}
<hr id="answer">
<div class="db db-answer">
<div class="db-back">{{Front}}</div>
{{#Extra}}<div class="db-extra">{{Extra}}</div>{{/Extra}}
{{#Status}}<div class="db-status">{{Status}}</div>{{/Status}}
</div>"""
REVERSED = NoteType(
    REVERSED_ID,
    "deckbuild card and reversed",
    FIELDS,
    (*TEMPLATES, {"name": "Reversed", "qfmt": REVERSE_FRONT, "afmt": REVERSE_BACK}),
    CSS,
    label="reversed",
)

# Cloze deletions: Anki makes one card per cloze number of the Text field. Its fields and ids
# are fixed from the start, like the others'.
CLOZE_ID = 1_573_912_206
CLOZE_FIELDS = ("Text", "Extra", "Hint", "Kind", "Source", "Status")
CLOZE_FRONT = """\
<div class="db db-cloze">
<div class="db-question">{{cloze:Text}}</div>
{{#Hint}}<div class="db-hint">{{hint:Hint}}</div>{{/Hint}}
</div>"""
CLOZE_BACK = """\
<div class="db db-cloze">
<div class="db-question">{{cloze:Text}}</div>
</div>
<hr id="answer">
<div class="db db-answer">
{{#Extra}}<div class="db-extra">{{Extra}}</div>{{/Extra}}
{{#Status}}<div class="db-status">{{Status}}</div>{{/Status}}
</div>"""
CLOZE_CSS = (
    CSS
    + """\
.cloze { font-weight: 600; color: #0550ae; }
.nightMode .cloze, .night_mode .cloze { color: #79c0ff; }
"""
)
CLOZE = NoteType(
    CLOZE_ID,
    "deckbuild cloze",
    CLOZE_FIELDS,
    ({"name": "Cloze", "qfmt": CLOZE_FRONT, "afmt": CLOZE_BACK},),
    CLOZE_CSS,
    cloze=True,
    label="cloze",
)

NOTE_TYPES = {nt.id: nt for nt in (BASIC, REVERSED, CLOZE)}
BY_LABEL = {nt.label: nt for nt in NOTE_TYPES.values()}


def notetype_of(kind: str, data: dict[str, Any]) -> NoteType:
    """Return the note type of a card from its kind and fields as read (no validation needed)."""
    # Looked up by id, so that a test can stand in a changed note type everywhere at once.
    if kind == "cloze":
        return NOTE_TYPES[CLOZE_ID]
    if data.get("reverse"):
        return NOTE_TYPES[REVERSED_ID]
    return NOTE_TYPES[NOTE_TYPE_ID]
