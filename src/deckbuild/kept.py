"""Note types kept from an imported Anki deck: the `notetypes.json` file, its checks, their fields.

A learner's notes keep the note type they were studied with: Anki never changes a note's type
on import, so a rebuilt note on another type is skipped and no later edit reaches it. The
importer writes the deck's own note types into `notetypes.json`; a row naming one in its
`Notetype` column is built on it, with the same id, fields, templates, CSS and mod time. A
shared deck's templates are not trusted: one that could run script is refused (no I/O but
reading the file).
"""

from __future__ import annotations

import functools
import html
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from deckbuild.errors import Report
from deckbuild.notetype import NOTE_TYPES, NoteType
from deckbuild.resources import ran_out
from deckbuild.sources import KEPT_NAME

FILE_NAME = KEPT_NAME
# The row columns a kept note type's fields may receive, and the deckbuild fields they come from.
COLUMNS = ("Question", "Answer", "Reverse")
# What a Reverse field holds when the row asks for the reversed card (any text makes Anki's card).
REVERSE_MARK = "y"
# deckbuild's own fields that say where a card came from, not what it shows: never carried over.
_META = frozenset(("Kind", "Source", "Status"))
_MAX_BYTES = 4 * 1024 * 1024
# deckbuild's own note types: a kept one never takes their ids.
_OWN_IDS = frozenset(NOTE_TYPES)

# Tags a kept template may hold: what a card's own fields may hold (no image: a template names
# no file deckbuild ships), and the template's layout.
_TAGS = frozenset(
    """a abbr b blockquote br center code dd del div dl dt em font h1 h2 h3 h4 h5 h6 hr i kbd li
    mark ol p pre s small span strong sub sup table tbody td tfoot th thead tr u ul""".split()  # noqa: SIM905
)
_ATTRIBUTES = frozenset(
    "align alt class color colspan dir face height id lang rowspan size start style title width".split()  # noqa: SIM905
)
_TAG_RE = re.compile(r"<\s*(/?)\s*([^\s/>]*)((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>|<", re.S)
_ATTR_RE = re.compile(r"([^\s=\"'/]+)(?:\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s\"'>]+))?")
# In CSS: loading anything (url(, @import, image-set), script in old browsers, escapes that hide
# either, and the end of the <style> block Anki puts it in.
_CSS_RE = re.compile(r"(?i)url\s*\(|@import|image-set|expression\s*\(|behavior|binding|javascript|\\|<|&")


# In a style attribute also what could cover or hide the card, as in a field.
_STYLE_RE = re.compile(_CSS_RE.pattern + r"|position|transparent")
# A mustache tag as Anki's template parser reads it: from "{{" to the first "}}" after it.
_MUSTACHE_RE = re.compile(r"\{\{(.*?)\}\}", re.S)
# What may stay of a template's text once its tags are gone: MathJax typesets it too (a formula's
# commands can make a link) and Anki plays sound in it, so no backslash and no sound or av tag.
_TEXT_RE = re.compile(r"\\|\[sound:|\[anki:", re.I)
# Anki's special fields and filters put text in a card that deckbuild never made safe (tags, deck
# names, a field's text with its tags stripped and its entities decoded): only fields are kept.
_SPECIAL = frozenset(("Tags", "Type", "Deck", "Subdeck", "Card", "CardFlag", "CardID"))
# Anki refuses a package holding half a surrogate pair; control characters hide what a name is.
_CONTROL_TEXT_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_CONTROL_NAME_RE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def _css_fault(css: str, pattern: re.Pattern[str] = _CSS_RE) -> str | None:
    found = pattern.search(css)
    return f"its CSS holds {found.group()!r}, which could load or run something" if found else None


def _is_field(name: str, fields: Sequence[str]) -> bool:
    return name in fields and name not in _SPECIAL and ":" not in name


def _mustache_fault(inside: str, fields: Sequence[str], cloze: bool) -> str | None:
    """Say why one mustache tag's inside may not stay: only its own fields, plainly, are kept."""
    tag = "{{" + inside + "}}"
    name = inside.strip()
    if name[:1] in ("#", "^", "/"):
        if _is_field(name[1:].strip(), fields):
            return None
        return f"it holds {tag!r}, a section over something not one of its fields"
    if _is_field(name, fields) or name == "FrontSide":
        return None
    *filters, field = name.split(":")
    if filters == ["cloze"] and cloze and _is_field(field.strip(), fields):
        return None
    if filters:
        return f"it holds {tag!r}, whose {filters[0].strip()!r} filter a card does not keep"
    return f"it holds {tag!r}, which is not one of its fields"


def template_fault(text: str, fields: Sequence[str], cloze: bool = False) -> str | None:
    """Say what in a card template could run script or load something, if anything."""
    for match in _MUSTACHE_RE.finditer(text):
        if fault := _mustache_fault(match.group(1), fields, cloze):
            return fault
    bare = _MUSTACHE_RE.sub("", text)
    for brace in ("{{", "}}"):
        if brace in bare:
            return f"it holds a {brace!r} that makes no whole field tag"
    # Checked once the tags are gone and the entities decoded, as the browser and MathJax see it.
    for shown in (bare, html.unescape(bare)):
        if found := _TEXT_RE.search(shown):
            return f"it holds {found.group()!r}, which a card's template does not keep"
    for shown in (text, bare):
        if fault := _tags_fault(shown):
            return fault
    return None


def _tags_fault(text: str) -> str | None:
    for match in _TAG_RE.finditer(text):
        if match.group(0) == "<":
            return "it holds a '<' that starts no plain tag"
        closing, name, attrs = match.group(1), match.group(2).lower(), match.group(3)
        if name not in _TAGS:
            return f"it holds a <{name}> tag, which a card does not keep"
        if "{{" in attrs or "}}" in attrs:
            return f"a field is written inside the <{name}> tag, where its text could become script"
        if "<" in attrs:
            return f"the <{name}> tag holds a '<', as if a tag were hidden inside it"
        if closing:
            continue
        for attr in _ATTR_RE.finditer(attrs):
            key = attr.group(1).lower()
            value = html.unescape((attr.group(2) or "").strip("\"'"))
            if key == "style":
                if fault := _css_fault(value, _STYLE_RE):
                    return f"a style attribute: {fault.removeprefix('its CSS holds ')}"
            elif key not in _ATTRIBUTES:
                return f"the <{name}> tag has a {key!r} attribute, which a card does not keep"
    return None


def notetype_fault(nt: NoteType) -> str | None:
    """Say why a note type may not reach a card, if it may not."""
    for template in nt.templates:
        for side in ("qfmt", "afmt"):
            if fault := template_fault(template[side], nt.fields, nt.cloze):
                return f"template {template['name']!r}: {fault}"
    return _css_fault(nt.css)


def to_json(nt: NoteType) -> dict[str, Any]:
    """Write a kept note type as its entry in `notetypes.json`."""
    return {
        "name": nt.name,
        "id": nt.id,
        "mod": nt.mod,
        "type": "cloze" if nt.cloze else "standard",
        "sort field": nt.fields[nt.sort_field],
        "fields": list(nt.fields),
        "columns": dict(nt.columns),
        "templates": [dict(t) for t in nt.templates],
        "css": nt.css,
        "imported": nt.imported,
    }


def dumps(types: Sequence[NoteType]) -> str:
    """Write `notetypes.json`: every kept note type, by name, one field a line."""
    entries = [to_json(nt) for nt in sorted(types, key=lambda t: t.name)]
    return json.dumps({"notetypes": entries}, indent=2, ensure_ascii=False) + "\n"


def _line_of(text: str, needle: str) -> int:
    at = text.find(needle)
    return text.count("\n", 0, at) + 1 if at >= 0 else 1


def load(path: Path, shown: str, report: Report) -> dict[str, NoteType]:
    """Read a `notetypes.json` file: its note types by name; report every problem at path:line."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        if ran_out(exc):
            raise
        report.error(shown, 0, f"cannot read it ({exc.strerror or exc}); check the file")
        return {}
    if len(data) > _MAX_BYTES:
        report.error(shown, 0, f"file too large (at most {_MAX_BYTES // 1024 // 1024} MiB)")
        return {}
    try:
        text = data.decode("utf-8")
        parsed = json.loads(text)
    except UnicodeDecodeError:
        report.error(shown, 1, "not UTF-8 text; write the file as UTF-8")
        return {}
    except json.JSONDecodeError as exc:
        report.error(shown, exc.lineno, f"not valid JSON ({exc.msg}); fix it, or import the deck again")
        return {}
    except RecursionError:
        report.error(shown, 1, "nested too deeply to read; import the deck again")
        return {}
    except ValueError:  # an int longer than Python reads
        long = re.search(r"[0-9]{1000,}", text)
        line = text.count("\n", 0, long.start()) + 1 if long else 1
        report.error(shown, line, "a number too long to read; import the deck again")
        return {}
    entries = parsed.get("notetypes") if isinstance(parsed, dict) else None
    if not isinstance(entries, list):
        report.error(shown, 1, 'expected {"notetypes": [...]}; import the deck again to write it')
        return {}
    found: dict[str, NoteType] = {}
    for entry in entries:
        name = entry.get("name") if isinstance(entry, dict) else None
        line = _line_of(text, json.dumps(name, ensure_ascii=False)) if isinstance(name, str) else 1
        nt = from_json(entry, functools.partial(report.error, shown, line))
        if nt is None:
            continue
        if nt.name in found:
            report.error(shown, line, f"note type {nt.name!r} is written twice; keep one")
            continue
        found[nt.name] = nt
    return found


_KEYS = frozenset(
    ("name", "id", "mod", "type", "sort field", "fields", "columns", "templates", "css", "imported")
)


def _is_template(value: Any) -> bool:
    keys = {"name", "qfmt", "afmt"}
    return isinstance(value, dict) and set(value) == keys and all(isinstance(v, str) for v in value.values())


def _text_fault(
    fields: list[str], columns: dict[str, str], templates: list[dict[str, str]], css: str
) -> str | None:
    """Say which text holds a control character or a lone surrogate (Anki refuses the package)."""
    texts = [("a field name", f, _CONTROL_NAME_RE) for f in [*fields, *columns]]
    for t in templates:
        texts.append(("a template name", t["name"], _CONTROL_NAME_RE))
        texts += [(f"template {t['name']!r}", t[side], _CONTROL_TEXT_RE) for side in ("qfmt", "afmt")]
    for where, text, pattern in [*texts, ("its CSS", css, _CONTROL_TEXT_RE)]:
        if found := pattern.search(text):
            return f"{where} holds U+{ord(found.group()):04X}, a control character or half a surrogate pair"
    return None


def from_json(entry: Any, fail: Callable[[str], object]) -> NoteType | None:
    """Check one entry of the file and make its note type; call `fail` with what is wrong."""
    name = entry.get("name") if isinstance(entry, dict) else None
    if not isinstance(name, str) or not name or name != name.strip() or _CONTROL_NAME_RE.search(name):
        fail('a note type needs a "name": text without control characters or blanks around it')
        return None
    name = entry["name"]
    what = f"note type {name!r}"
    nid, mod = entry.get("id"), entry.get("mod")
    if type(nid) is not int or not 0 < nid < 1 << 53 or nid in _OWN_IDS:
        fail(f'{what}: "id" must be the note type\'s Anki id, a whole number; import the deck again')
        return None
    if type(mod) is not int or not 0 <= mod < 1 << 40:
        fail(f'{what}: "mod" must be a whole number of seconds; import the deck again')
        return None
    fields = entry.get("fields")
    if not (isinstance(fields, list) and fields and all(isinstance(f, str) and f for f in fields)):
        fail(f'{what}: "fields" must be a list of field names')
        return None
    if len(set(fields)) != len(fields):
        fail(f'{what}: a field name is written twice in "fields"')
        return None
    columns = entry.get("columns")
    if not isinstance(columns, dict):
        fail(f'{what}: "columns" must say which field takes the Question and the Answer')
        return None
    for column, field in columns.items():
        if column not in COLUMNS:
            fail(f'{what}: unknown column {column!r} in "columns"; the columns are {", ".join(COLUMNS)}')
            return None
        if field not in fields:
            fail(f"{what}: the {column} goes to the field {field!r}, which is not one of its fields")
            return None
    if "Question" not in columns:
        fail(f'{what}: "columns" names no field for the Question; add "Question": "<field>"')
        return None
    if len(set(columns.values())) != len(columns):
        fail(f'{what}: two columns go to one field in "columns"')
        return None
    kind = entry.get("type")
    if kind not in ("standard", "cloze"):
        fail(f'{what}: "type" must be "standard" or "cloze"')
        return None
    templates = entry.get("templates")
    keys = {"name", "qfmt", "afmt"}
    if not (
        isinstance(templates, list)
        and templates
        and all(
            isinstance(t, dict) and set(t) == keys and all(isinstance(v, str) for v in t.values())
            for t in templates
        )
    ):
        fail(f'{what}: "templates" must be a list of {{"name", "qfmt", "afmt"}}')
        return None
    if kind == "cloze" and len(templates) != 1:
        fail(f"{what}: a cloze note type has one template")
        return None
    css, sort_field = entry.get("css"), entry.get("sort field")
    if not isinstance(css, str):
        fail(f'{what}: "css" must be text')
        return None
    if sort_field not in fields:
        fail(f'{what}: "sort field" must be one of its fields')
        return None
    imported = entry.get("imported", "")
    if not isinstance(imported, str) or not re.fullmatch(r"(?:[0-9a-f]{8}\.[0-9a-f]{16})?", imported):
        fail(f'{what}: "imported" must be the note type\'s stamp as imported; import the deck again')
        return None
    unknown = sorted(
        set(entry)
        - {"name", "id", "mod", "type", "sort field", "fields", "columns", "templates", "css", "imported"}
    )
    if unknown:
        fail(f"{what}: unknown key {unknown[0]!r}")
        return None
    if fault := _text_fault(fields, columns, templates, css):
        fail(f"{what}: {fault}; remove it, or import the deck again")
        return None
    nt = NoteType(
        nid,
        name,
        tuple(fields),
        tuple({"name": t["name"], "qfmt": t["qfmt"], "afmt": t["afmt"]} for t in templates),
        css,
        cloze=kind == "cloze",
        label=f"anki:{nid}",
        mod=mod,
        sort_field=fields.index(sort_field),
        columns=tuple(sorted(columns.items())),
        imported=imported,
    )
    if fault := notetype_fault(nt):
        fail(f"{what}: {fault}; remove it from the template, or the note type from the file")
        return None
    return nt


def kept_ids() -> set[int]:
    """Return the ids of the kept note types registered now."""
    return {nid for nid, nt in NOTE_TYPES.items() if nt.columns}


def register(types: Sequence[NoteType]) -> None:
    """Make these the kept note types of this build, in place of any registered before."""
    for nid in kept_ids():
        del NOTE_TYPES[nid]
    for nt in types:
        NOTE_TYPES[nt.id] = nt


def fill(kept: NoteType, base: NoteType, rendered: Sequence[str]) -> list[str] | str:
    """Lay a card rendered on deckbuild's note type `base` out on the kept note type's fields.

    Return the fields, or why the card does not fit the kept note type (no text is dropped).
    """
    if kept.cloze != base.cloze:
        return (
            f"the note type {kept.name!r} is {'a cloze' if kept.cloze else 'not a cloze'} note type; "
            f"this row is {'a cloze' if base.cloze else 'not a cloze'}: fix the Question or the Notetype"
        )
    columns = dict(kept.columns)
    values = dict(zip(base.fields, rendered, strict=True))
    question, answer = ("Text", "Extra") if base.cloze else ("Front", "Back")
    reversed_ = base.label == "reversed"
    for name, text in values.items():
        if text and name not in _META and name not in (question, answer):
            return f"the note type {kept.name!r} has no field for its {name}; remove it, or the Notetype"
    if values[answer] and "Answer" not in columns:
        return f"the note type {kept.name!r} has no field for the Answer; empty it, or the Notetype"
    if reversed_ and "Reverse" not in columns and len(kept.templates) < 2:
        return f"the note type {kept.name!r} makes no reversed card; empty the Reverse cell, or the Notetype"
    if not reversed_ and "Reverse" not in columns and len(kept.templates) > 1 and not kept.cloze:
        return f"the note type {kept.name!r} always makes a reversed card; write yes in the Reverse cell"
    out = dict.fromkeys(kept.fields, "")
    out[columns["Question"]] = values[question]
    if "Answer" in columns:
        out[columns["Answer"]] = values[answer]
    if "Reverse" in columns:
        out[columns["Reverse"]] = REVERSE_MARK if reversed_ else ""
    return list(out.values())
