"""Note types kept from an imported deck: the notetypes.json file, its checks, and building on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from ankihelp import import_package, notes_by_guid
from deckbuild import kept
from deckbuild.build import build
from deckbuild.cli import cli
from deckbuild.importer import quote
from deckbuild.notetype import NoteType
from deckbuild.packaged import read_package
from hostile import dangers

NOW = 1_800_000_000
BASIC = NoteType(
    1_700_000_000_123,
    "Basic",
    ("Front", "Back"),
    ({"name": "Card 1", "qfmt": "{{Front}}", "afmt": "{{FrontSide}}\n\n<hr id=answer>\n\n{{Back}}"},),
    ".card { font-family: arial; }\n",
    label="anki:1700000000123",
    mod=1_700_000_000,
    columns=(("Answer", "Back"), ("Question", "Front")),
)


def run(*args: str):
    return CliRunner().invoke(cli, list(args), prog_name="deckbuild")


def deck(
    tmp_path: Path, rows: str, types: str | None = None, header: str = "Question;Answer;GUID;Notetype"
) -> Path:
    """Write decks/Bio with `rows` under a header naming a Notetype, and its notetypes.json."""
    folder = tmp_path / "decks/Bio"
    folder.mkdir(parents=True)
    (folder / "cards.txt").write_text(f"{header}\n{rows}", encoding="utf-8")
    (folder / "notetypes.json").write_text(kept.dumps([BASIC]) if types is None else types, encoding="utf-8")
    return tmp_path / "decks"


def failed_build(tmp_path: Path, monkeypatch, check: bool = True) -> str:
    """Build (and check) the deck, which fails; return what the build said."""
    monkeypatch.chdir(tmp_path)
    result = run("build", "decks", "-o", "dist", "--no-cache")
    assert result.exit_code == 1, result.output
    assert not (tmp_path / "dist").exists()
    if check:  # 'deckbuild check' finds it too (it reads no lock: a change of type is the build's)
        checked = run("check", "decks", "--no-cache")
        assert checked.exit_code == 1
        assert result.stderr.splitlines()[0] in checked.stderr.splitlines()
    return result.stderr


def edited(change) -> str:
    """Write the file as an import of the changed note type would: its stamp is of that one."""
    entry = kept.to_json(BASIC)
    del entry["imported"]
    change(entry)
    nt = kept.from_json(entry, lambda _: None)
    if nt is not None:
        entry["imported"] = nt.locked
    return json.dumps({"notetypes": [entry]}, indent=2)


def test_a_row_is_built_on_the_note_type_it_names_with_its_id_templates_and_mod(tmp_path):
    decks = deck(tmp_path, "What is *osmosis*?;Water moving;g1;Basic\n2+2;4;g2;\n")
    build([decks], tmp_path / "dist", now=NOW, use_cache=False)
    contents = read_package(tmp_path / "dist/Bio.apkg")
    model = contents.notetypes[str(BASIC.id)]
    assert (model.name, model.fields, model.css, model.mod) == ("Basic", BASIC.fields, BASIC.css, BASIC.mod)
    assert model.templates == (("Card 1", BASIC.templates[0]["qfmt"], BASIC.templates[0]["afmt"]),)
    assert contents.notes["g1"].fields == ("<p>What is <em>osmosis</em>?</p>", "<p>Water moving</p>")
    assert contents.notes["g1"].notetype == str(BASIC.id)
    # A row naming none stays on deckbuild's own note type, as before.
    assert contents.notes["g2"].notetype == "1573912204"
    lock = json.loads((decks / "deckbuild.lock").read_text(encoding="utf-8"))
    assert lock["notes"]["g1"]["notetype"] == f"anki:{BASIC.id}"


def test_a_later_build_in_the_same_process_forgets_the_note_types_kept_before(tmp_path):
    from deckbuild.notetype import NOTE_TYPES

    build([deck(tmp_path / "kept", "q;a;g1;Basic\n")], tmp_path / "one", now=NOW, use_cache=False)
    assert BASIC.id in NOTE_TYPES
    plain = tmp_path / "plain/decks/Bio"
    plain.mkdir(parents=True)
    (plain / "cards.txt").write_text(f"Question;Answer;UUID\nq;a;{'0' * 8}-0000-4000-8000-{'0' * 12}\n")
    build([plain.parent], tmp_path / "two", now=NOW, use_cache=False)
    assert BASIC.id not in NOTE_TYPES


def test_the_same_sources_give_the_same_bytes(tmp_path):
    decks = deck(tmp_path, "q;a;g1;Basic\n")
    build([decks], tmp_path / "one", now=NOW, use_cache=False)
    build([decks], tmp_path / "two", now=NOW + 50, use_cache=False)
    assert (tmp_path / "one/Bio.apkg").read_bytes() == (tmp_path / "two/Bio.apkg").read_bytes()


def test_a_changed_template_is_never_answered_from_the_cache_and_moves_the_mod(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    decks = deck(tmp_path, "q;a;g1;Basic\n")
    build([decks], tmp_path / "dist", now=NOW)
    types = decks / "Bio/notetypes.json"
    types.write_text(types.read_text(encoding="utf-8").replace("{{Front}}", "<b>{{Front}}</b>"), "utf-8")
    build([decks], tmp_path / "dist", now=NOW + 10)
    model = read_package(tmp_path / "dist/Bio.apkg").notetypes[str(BASIC.id)]
    assert model.templates[0][1] == "<b>{{Front}}</b>"
    assert model.mod > BASIC.mod  # newer, so that Anki takes the new template over


def test_a_changed_column_is_never_answered_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    decks = deck(tmp_path, "q;a;g1;Basic\n")
    build([decks], tmp_path / "dist", now=NOW)
    types = decks / "Bio/notetypes.json"
    text = types.read_text(encoding="utf-8")
    types.write_text(
        text.replace('"Answer": "Back"', '"Answer": "Front"').replace(
            '"Question": "Front"', '"Question": "Back"'
        ),
        "utf-8",
    )
    build([decks], tmp_path / "dist", now=NOW + 10)
    note = read_package(tmp_path / "dist/Bio.apkg").notes["g1"]
    assert note.fields == ("<p>a</p>", "<p>q</p>")
    assert note.mod == NOW + 10  # moved on: learners get the note as it is now


@pytest.mark.parametrize(
    ("types", "expected"),
    [
        (
            '{"notetypes": [\n  {"name": "Basic",\n   "id": 12,,\n',
            "decks/Bio/notetypes.json:3: not valid JSON (Expecting property name enclosed in double quotes);"
            " fix it, or import the deck again",
        ),
        (
            edited(lambda e: e["columns"].update(Answer="Rückseite")),
            "decks/Bio/notetypes.json:4: note type 'Basic': the Answer goes to the field 'Rückseite', "
            "which is not one of its fields",
        ),
        (
            edited(lambda e: e["columns"].pop("Question")),
            "decks/Bio/notetypes.json:4: note type 'Basic': \"columns\" names no field for the Question; "
            'add "Question": "<field>"',
        ),
        (
            edited(lambda e: e["templates"][0].update(afmt="{{Back}}<script>alert(1)</script>")),
            "decks/Bio/notetypes.json:4: note type 'Basic': template 'Card 1': it holds a <script> tag, "
            "which a card does not keep; remove it from the template, or the note type from the file",
        ),
        (
            edited(lambda e: e.update(css='@import "https://example.com/x.css";')),
            "decks/Bio/notetypes.json:4: note type 'Basic': its CSS holds '@import', which could load or "
            "run something; remove it from the template, or the note type from the file",
        ),
        (
            edited(lambda e: e.update(css=".card { color: red; }\ud800")),
            "decks/Bio/notetypes.json:4: note type 'Basic': its CSS holds U+D800, a control character or "
            "half a surrogate pair; remove it, or import the deck again",
        ),
        (
            edited(lambda e: e["templates"][0].update(qfmt="{{Front}}\x1b")),
            "decks/Bio/notetypes.json:4: note type 'Basic': template 'Card 1' holds U+001B, a control "
            "character or half a surrogate pair; remove it, or import the deck again",
        ),
        (
            "[" * 100_000 + "]" * 100_000,
            "decks/Bio/notetypes.json:1: nested too deeply to read; import the deck again",
        ),
        (
            edited(lambda e: e.update(id=0)).replace('"id": 0', '"id": ' + "9" * 5000),
            "decks/Bio/notetypes.json:5: a number too long to read; import the deck again",
        ),
        (
            edited(lambda e: e.update(id=1 << 63)),
            "decks/Bio/notetypes.json:4: note type 'Basic': \"id\" must be the note type's Anki id, a whole "
            "number; import the deck again",
        ),
    ],
)
def test_a_bad_note_type_file_is_named_at_its_line(tmp_path, monkeypatch, types, expected):
    deck(tmp_path, "q;a;g1;Basic\n", types)
    stderr = failed_build(tmp_path, monkeypatch)
    assert f"{expected}\n" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (
            "q;a;g1;Basik;\n",
            "decks/Bio/cards.txt:2: no note type 'Basik' in decks/Bio/notetypes.json; write one of its note "
            "types, or empty the Notetype cell",
        ),
        (
            "The {{c1::nucleus}};;g1;Basic;\n",
            "decks/Bio/cards.txt:2: the note type 'Basic' is not a cloze note type; this row is a cloze: fix "
            "the Question or the Notetype",
        ),
        (
            "q;a;g1;Basic;a hint\n",  # a column the note type has no field for: an error, never dropped
            "decks/Bio/cards.txt:2: the note type 'Basic' has no field for its Hint; remove it, "
            "or the Notetype",
        ),
    ],
)
def test_a_row_that_does_not_fit_its_note_type_is_named_at_its_line(tmp_path, monkeypatch, rows, expected):
    deck(tmp_path, rows, header="Question;Answer;GUID;Notetype;Hint")
    assert f"{expected}\n" in failed_build(tmp_path, monkeypatch)


def test_a_card_that_leaves_its_kept_note_type_is_refused_as_any_type_change(tmp_path, monkeypatch):
    decks = deck(tmp_path, "q;a;g1;Basic\n")
    build([decks], tmp_path / "dist", now=NOW, use_cache=False)
    (decks / "Bio/cards.txt").write_text("Question;Answer;GUID;Notetype\nq;a;g1;\n", encoding="utf-8")
    (tmp_path / "dist").rename(tmp_path / "old")
    assert (
        "decks/Bio/cards.txt:2: this card was on the kept note type 'Basic' and is now a basic card: Anki "
        "cannot change a note's type on import and would skip it; name its note type in the Notetype column "
        "again\n"
    ) in failed_build(tmp_path, monkeypatch, check=False)


@pytest.mark.parametrize("cell", ["Basik", "basic"])
def test_a_misspelt_note_type_of_a_built_card_is_one_error_with_one_way_out(tmp_path, monkeypatch, cell):
    """Never the advice to give it a new UUID: a kept card is not retired, so that would add a note."""
    decks = deck(tmp_path, "q;a;g1;Basic\n")
    build([decks], tmp_path / "dist", now=NOW, use_cache=False)
    (decks / "Bio/cards.txt").write_text(f"Question;Answer;GUID;Notetype\nq;a;g1;{cell}\n", encoding="utf-8")
    (tmp_path / "dist").rename(tmp_path / "old")
    stderr = failed_build(tmp_path, monkeypatch, check=False)
    assert f"decks/Bio/cards.txt:2: no note type {cell!r} in decks/Bio/notetypes.json" in stderr
    assert "UUID" not in stderr and "1 error(s)" in stderr


def test_a_kept_card_removed_from_the_sources_is_not_retired_but_named_until_forgotten(tmp_path, monkeypatch):
    decks = deck(tmp_path, "q;a;g1;Basic\nq2;a2;g2;Basic\n")
    build([decks], tmp_path / "dist", now=NOW, use_cache=False)
    (decks / "Bio/cards.txt").write_text("Question;Answer;GUID;Notetype\nq2;a2;g2;Basic\n", encoding="utf-8")
    result = build([decks], tmp_path / "dist", now=NOW + 10, use_cache=False)
    assert [p.message for p in result.report.problems] == [
        "card g1 is gone from the sources, but its note type, kept from Anki, has no Status field to "
        "retire it with; tell learners to delete it, and run 'deckbuild forget g1'"
    ]
    assert sorted(read_package(tmp_path / "dist/Bio.apkg").notes) == ["g2"]
    monkeypatch.chdir(tmp_path)
    assert run("forget", "g1", "--decks", "decks").exit_code == 0
    assert build([decks], tmp_path / "dist", now=NOW + 20, use_cache=False).report.problems == []


BENIGN = ["{{Front}}", "{{FrontSide}}", "<hr id=answer>", "<div class=\"q\">", "</div>", "<br>", "text ",
          "{{#Back}}", "{{/Back}}", '<span style="color: red">', "</span>", "<b>", "</b>", "\n"]  # fmt: skip
HOSTILE = [
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", '<a href="javascript:alert(1)">x</a>',
    "<div onclick=alert(1)>", "<iframe src=//example.com>", "<svg onload=alert(1)>", "<DIV ONMOUSEOVER=x>",
    '<span style="background:url(javascript:1)">', "<scr<script>ipt>", "<div\nonclick=x>", "<div/onclick=x>",
    "<img/src=x/onerror=y>", "\\(\\href{javascript:x}{y}\\)", "<a href=&#106;avascript:x>", "<!-- -->",
    '<div title="a>b" onclick=x>', "<div title='>' onclick=x>", '<span style="position:fixed">',
    "<object data=x>", "<embed src=x>", '<span class="{{Front}}">', "<form action=x>",
    "<style>@import 'x';</style>", "<base href=//x>",
]  # fmt: skip


@given(st.lists(st.sampled_from(BENIGN + HOSTILE) | st.text("<>/=\"' onclickscript:{}\\(ahref", max_size=8)))
def test_a_template_kept_holds_nothing_a_browser_would_make_live(pieces):
    template = "".join(pieces)
    if kept.template_fault(template, BASIC.fields) is None:
        assert [d for d in dangers(template) if not d.startswith("av tag")] == []


@pytest.mark.parametrize("piece", HOSTILE)
def test_every_hostile_piece_anywhere_in_a_template_is_refused(piece):
    template = "{{FrontSide}}<hr id=answer>{{Back}}"
    for at in range(len(template) + 1):
        assert kept.template_fault(template[:at] + piece + template[at:], BASIC.fields) is not None


@pytest.mark.anki
def test_two_basic_note_types_each_keep_their_notes(tmp_path, collection, monkeypatch):
    vocab = collection.models.copy(collection.models.by_name("Basic"))
    vocab["name"] = "Vocab"
    collection.models.update_dict(vocab)
    guids = {}
    for name in ("Basic", "Vocab"):
        note = collection.new_note(collection.models.by_name(name))
        note.fields[0], note.fields[1] = f"{name} question", "answer"
        collection.add_note(note, collection.decks.id("Bio"))
        guids[name] = note.guid
    apkg = export_deck(collection, tmp_path)
    monkeypatch.chdir(tmp_path)
    assert run("import", str(apkg)).exit_code == 0
    assert Path("decks/Bio/cards.txt").read_text(encoding="utf-8") == (
        f"Question;Answer;GUID;Notetype\nBasic question;answer;{quote(guids['Basic'])};Basic\n"
        f"Vocab question;answer;{quote(guids['Vocab'])};Vocab\n"
    )
    build([tmp_path / "decks"], tmp_path / "dist", now=NOW * 2)
    log = import_package(collection, tmp_path / "dist/Bio.apkg")
    assert (log.new, log.duplicate, log.conflicting, log.updated) == (0, 0, 0, 2)
    notes = notes_by_guid(collection)
    assert {name: notes[guid].note_type()["name"] for name, guid in guids.items()} == {
        "Basic": "Basic",
        "Vocab": "Vocab",
    }


def export_deck(collection, tmp_path: Path) -> Path:
    from anki.collection import DeckIdLimit, ExportAnkiPackageOptions

    path = tmp_path / "Bio.apkg"
    options = ExportAnkiPackageOptions(
        with_scheduling=False, with_deck_configs=False, with_media=True, legacy=True
    )
    collection.export_anki_package(
        out_path=str(path), options=options, limit=DeckIdLimit(collection.decks.id("Bio"))
    )
    return path


def test_an_optional_reversed_note_type_gets_its_reverse_field_from_the_reverse_column(tmp_path):
    optional = NoteType(
        1_700_000_000_456,
        "Basic (optional reversed card)",
        ("Front", "Back", "Add Reverse"),
        (
            {"name": "Card 1", "qfmt": "{{Front}}", "afmt": "{{FrontSide}}<hr id=answer>{{Back}}"},
            {"name": "Card 2", "qfmt": "{{#Add Reverse}}{{Back}}{{/Add Reverse}}", "afmt": "{{Front}}"},
        ),
        "",
        label="anki:1700000000456",
        mod=1_700_000_000,
        columns=(("Answer", "Back"), ("Question", "Front"), ("Reverse", "Add Reverse")),
    )
    folder = deck(tmp_path, "", kept.dumps([optional])) / "Bio"
    (folder / "cards.txt").write_text(
        "Question;Answer;GUID;Reverse;Notetype\n"
        "cell;Zelle;g1;yes;Basic (optional reversed card)\n"
        "dog;Hund;g2;;Basic (optional reversed card)\n",
        encoding="utf-8",
    )
    build([tmp_path / "decks"], tmp_path / "dist", now=NOW, use_cache=False)
    notes = read_package(tmp_path / "dist/Bio.apkg").notes
    assert [notes[g].fields[2] for g in ("g1", "g2")] == [kept.REVERSE_MARK, ""]


BAD_CHARS = st.sampled_from(["\x00", "\x01", "\x1b", "\x7f", "\ud800", "\udfff", "\udc00"])


@given(BAD_CHARS, st.sampled_from(["field", "template name", "qfmt", "afmt", "css"]), st.integers(0, 9))
def test_a_control_character_or_half_a_surrogate_pair_anywhere_is_refused(char, where, at):
    entry = kept.to_json(BASIC)
    template = entry["templates"][0]
    if where == "field":
        entry["fields"][1] = entry["columns"]["Answer"] = "Back"[:at] + char + "Back"[at:]
        template["afmt"] = "{{FrontSide}}"
    elif where == "css":
        entry["css"] = entry["css"][:at] + char + entry["css"][at:]
    else:
        key = "name" if where == "template name" else where
        template[key] = template[key][:at] + char + template[key][at:]
    problems: list[str] = []
    assert kept.from_json(entry, problems.append) is None
    assert len(problems) == 1
    assert f" holds U+{ord(char):04X}, a control character or half a surrogate pair; " in problems[0]


# Anki's own filters and special fields: each puts text in a card that deckbuild never made safe.
FILTERS = ["text", "kana", "kanji", "furigana", "type", "hint", "tts en_US", "cloze-only", "nc", "Text"]
SPECIAL = ["Tags", "Deck", "Subdeck", "Card", "CardFlag", "Type", "CardID", "Nope", "front", "=<% %>=",
           "&Front", "!a comment", ">partial", "tts en_US:Front", ""]  # fmt: skip


@given(st.sampled_from(FILTERS), st.sampled_from(["Front", "Back", "Tags"]), st.sampled_from(["", " "]))
def test_every_filter_but_cloze_is_refused_naming_it(name, field, space):
    tag = "{{" + space + name + ":" + field + space + "}}"
    assert kept.template_fault(f"<div>{tag}</div>", BASIC.fields, cloze=True) == (
        f"it holds {tag!r}, whose {name!r} filter a card does not keep"
    )


@given(st.sampled_from(SPECIAL), st.sampled_from(["", "#", "^", "/"]))
def test_every_special_field_or_mustache_form_is_refused_naming_it(name, section):
    tag = "{{" + section + name + "}}"
    fields = (*BASIC.fields, "Tags", "Deck")  # a field named like a special one is still refused
    fault = kept.template_fault(f"{{{{Front}}}}<hr id=answer>{tag}", fields)
    assert fault is not None
    assert fault.startswith(f"it holds {tag!r}, "), fault


def test_a_triple_mustache_is_refused_naming_it():
    fault = kept.template_fault("{{{Front}}}", BASIC.fields)
    assert fault == "it holds '{{{Front}}', which is not one of its fields"


def test_cloze_is_kept_only_on_a_cloze_note_type_and_over_its_own_field():
    assert kept.template_fault("{{cloze:Front}}", BASIC.fields, cloze=True) is None
    assert kept.template_fault("{{cloze:Front}}", BASIC.fields) == (
        "it holds '{{cloze:Front}}', whose 'cloze' filter a card does not keep"
    )
    assert kept.template_fault("{{cloze:Tags}}", (*BASIC.fields, "Tags"), cloze=True) == (
        "it holds '{{cloze:Tags}}', whose 'cloze' filter a card does not keep"
    )


@pytest.mark.anki
def test_anki_stock_note_types_are_kept(collection):
    names = ["Basic", "Basic (and reversed card)", "Basic (optional reversed card)", "Cloze"]
    for name in names:
        model = collection.models.by_name(name)
        fields = [f["name"] for f in model["flds"]]
        for template in model["tmpls"]:
            for side in ("qfmt", "afmt"):
                assert kept.template_fault(template[side], fields, cloze=model["type"] == 1) is None, name


# A backslash (a formula), a sound or av tag: hidden behind entities or split by mustache tags.
HIDDEN = ["\\", "&#92;", "&#x5c;", "&bsol;", "[sound:", "[anki:", "&#91;sound:", "[SOUND:"]
SPLITS = ["", "{{#Front}}{{/Front}}", "{{^Back}}{{/Back}}", "{{Front}}"]


@given(st.sampled_from(HIDDEN), st.data())
def test_no_backslash_or_sound_survives_entities_or_mustache_splits(piece, data):
    splits = data.draw(st.lists(st.sampled_from(SPLITS), min_size=len(piece), max_size=len(piece)))
    split = "".join(char + cut for char, cut in zip(piece, splits, strict=True))
    template = "<div>" + split + "(\\href{javascript:alert(3)}{c3})</div>"
    fault = kept.template_fault(template, BASIC.fields)
    assert fault is not None
    assert fault.endswith("which a card's template does not keep")


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("&#92;(x&#92;)", "it holds '\\\\', which a card's template does not keep"),
        ("\\{{#Front}}{{/Front}}(x)", "it holds '\\\\', which a card's template does not keep"),
        ("[sound:x.mp3]", "it holds '[sound:', which a card's template does not keep"),
        ("[anki:play:q:0]", "it holds '[anki:', which a card's template does not keep"),
        ("<img>", "it holds a <img> tag, which a card does not keep"),
        ("{{Front", "it holds a '{{' that makes no whole field tag"),
    ],
)
def test_a_formula_a_sound_or_an_image_in_a_template_is_refused(template, expected):
    assert kept.template_fault(template, BASIC.fields) == expected


RENAMED = (
    "the note type 'Basic' has other field or card template names or another sort field than when it was "
    "last built: Anki would take it for another note type or skip later edits of every learner's note; put "
    "them back as they were, in their order (a template's text and the CSS may change)"
)


@pytest.mark.parametrize("sort", ["Back", "Front"])
def test_a_changed_sort_field_is_refused_as_anki_would_stamp_every_note_newer(tmp_path, monkeypatch, sort):
    # Anki re-sorts every note and stamps it with the import time: later packages look older.
    decks = deck(tmp_path, "q;a;g1;Basic\n", edited(lambda e: e.update({"sort field": sort})))
    build([decks], tmp_path / "dist", now=NOW, use_cache=False)
    other = "Front" if sort == "Back" else "Back"
    changed = edited(lambda e: e.update({"sort field": other}))
    (decks / "Bio/notetypes.json").write_text(changed, encoding="utf-8")
    (tmp_path / "dist").rename(tmp_path / "old")
    assert f"decks/Bio/cards.txt:2: {RENAMED}\n" in failed_build(tmp_path, monkeypatch, check=False)


@pytest.mark.anki
@pytest.mark.parametrize(
    "change", ['"name": "Card 1"|"name": "Forward"', "Back|Answer"], ids=["template name", "field name"]
)
def test_renaming_a_field_or_template_is_refused_as_anki_would_skip_every_note(
    tmp_path, collection, monkeypatch, change
):
    note = collection.new_note(collection.models.by_name("Basic"))
    note.fields[0], note.fields[1] = "der Hund", "the dog"
    collection.add_note(note, collection.decks.id("Bio"))
    monkeypatch.chdir(tmp_path)
    assert run("import", str(export_deck(collection, tmp_path))).exit_code == 0
    build([tmp_path / "decks"], tmp_path / "v1", now=NOW * 2)
    assert import_package(collection, tmp_path / "v1/Bio.apkg").conflicting == 0
    types = tmp_path / "decks/Bio/notetypes.json"
    types.write_text(types.read_text(encoding="utf-8").replace(*change.split("|")), encoding="utf-8")
    result = run("build", "decks", "-o", "v2", "--no-cache")
    assert result.exit_code == 1
    assert (f"decks/Bio/cards.txt:2: {RENAMED}\n") in result.stderr
    # Why: built anyway (the lock and the import's stamp gone), the learner's note is skipped and
    # no edit reaches it again.
    (tmp_path / "decks/deckbuild.lock").unlink()
    entries = json.loads(types.read_text(encoding="utf-8"))
    for entry in entries["notetypes"]:
        del entry["imported"]
    types.write_text(json.dumps(entries), encoding="utf-8")
    build([tmp_path / "decks"], tmp_path / "v3", now=NOW * 2 + 10)
    log = import_package(collection, tmp_path / "v3/Bio.apkg")
    assert (log.new, log.updated, log.conflicting) == (0, 0, 1)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


@given(st.data())
def test_any_note_type_entry_gives_a_note_type_or_a_message_never_a_crash(data):
    entry = kept.to_json(BASIC)
    for key in data.draw(st.lists(st.sampled_from(sorted(entry)), max_size=3)):
        entry[key] = data.draw(JSON)
    problems: list[str] = []
    nt = kept.from_json(entry, problems.append)
    assert (nt is None) == bool(problems)
    if nt is not None:
        assert kept.notetype_fault(nt) is None
        assert kept.from_json(kept.to_json(nt), problems.append) == nt  # what is written reads back


@pytest.mark.anki
@pytest.mark.parametrize(
    "change", ['"name": "Card 1"|"name": "Forward"', "Back|Answer"], ids=["template name", "field name"]
)
def test_a_rename_before_the_first_build_is_refused_too(tmp_path, collection, monkeypatch, change):
    """No lock knows the note type yet: the stamp the import wrote is what the build checks against."""
    types = _import_one_basic_note(collection, tmp_path, monkeypatch)
    types.write_text(types.read_text(encoding="utf-8").replace(*change.split("|")), encoding="utf-8")
    result = run("build", "decks", "-o", "v1")
    assert result.exit_code == 1
    said = "decks/Bio/cards.txt:2: the note type 'Basic' has other field or card template names"
    assert said in result.stderr
    assert not (tmp_path / "v1").exists()


@pytest.mark.anki
def test_a_template_changed_before_the_first_build_reaches_learners(tmp_path, collection, monkeypatch):
    types = _import_one_basic_note(collection, tmp_path, monkeypatch)
    entries = json.loads(types.read_text(encoding="utf-8"))
    imported_mod = entries["notetypes"][0]["mod"]
    entries["notetypes"][0]["css"] += "\n.card { color: navy; }"
    types.write_text(json.dumps(entries), encoding="utf-8")
    build([tmp_path / "decks"], tmp_path / "v1", now=NOW * 2)
    log = import_package(collection, tmp_path / "v1/Bio.apkg")
    assert (log.new, log.conflicting) == (0, 0)
    collection.models._clear_cache()
    basic = collection.models.by_name("Basic")
    assert basic["mod"] > imported_mod and ".card { color: navy; }" in basic["css"]


def _import_one_basic_note(collection, tmp_path: Path, monkeypatch) -> Path:
    """Import a deck 'Bio' of one Basic note into decks/; return its notetypes.json."""
    note = collection.new_note(collection.models.by_name("Basic"))
    note.fields[0], note.fields[1] = "der Hund", "the dog"
    collection.add_note(note, collection.decks.id("Bio"))
    monkeypatch.chdir(tmp_path)
    assert run("import", str(export_deck(collection, tmp_path))).exit_code == 0
    return tmp_path / "decks/Bio/notetypes.json"


def test_a_file_moved_away_from_its_note_types_is_told_where_they_are(tmp_path, monkeypatch):
    # `git mv decks/Bio/Cells decks/Cells`: its rows name a note type of decks/Bio/notetypes.json.
    decks = deck(tmp_path, "q;a;g1;Basic\n")
    moved = decks / "Cells"
    moved.mkdir()
    (decks / "Bio/cards.txt").rename(moved / "cards.txt")
    stderr = failed_build(tmp_path, monkeypatch)
    assert (
        "decks/Cells/cards.txt:2: no note type 'Basic' (no notetypes.json above this file); "
        "decks/Bio/notetypes.json has it: move or copy that file to a folder above this one (a folder's "
        "note types serve the files below it)\n"
    ) in stderr
    (decks / "Bio/notetypes.json").rename(moved / "notetypes.json")  # as the message says
    assert run("build", "decks", "-o", "dist").exit_code == 0


def test_a_kept_note_type_changed_reaches_a_learner_who_imported_it_later(tmp_path, collection, monkeypatch):
    # Anki gives a note type it imports the time of the import: a change shipped with the
    # imported mod, moved on by a second, was older than the learner's copy, and dropped.
    import time

    from anki.collection import Collection

    types = _import_one_basic_note(collection, tmp_path, monkeypatch)
    build([tmp_path / "decks"], tmp_path / "dist", now=int(time.time()) - 100)
    learner = Collection(str(tmp_path / "learner.anki2"))
    try:
        import_package(learner, tmp_path / "dist/Bio.apkg")
        entries = json.loads(types.read_text(encoding="utf-8"))
        entries["notetypes"][0]["css"] += "\n.card { color: navy; }"
        types.write_text(json.dumps(entries), encoding="utf-8")
        build([tmp_path / "decks"], tmp_path / "dist", now=int(time.time()) + 5)
        import_package(learner, tmp_path / "dist/Bio.apkg")
        learner.models._clear_cache()
        # The learner's collection has a Basic of its own: theirs from the deck is by its id.
        kept_type = learner.models.get(entries["notetypes"][0]["id"])
        assert kept_type is not None and ".card { color: navy; }" in kept_type["css"]
    finally:
        learner.close()


def test_a_forget_command_a_message_gives_is_one_a_shell_runs_as_written():
    # A GUID from Anki may hold `>`, `;` or `&`: pasted unquoted, the shell would run another command.
    import shlex

    from deckbuild.build import _said

    for guid in ("g1", "wcZO>kDWa", "a;b&c", "it's"):
        said = _said("deckbuild", "forget", guid)
        assert shlex.split(said[1:-1]) == ["deckbuild", "forget", guid]


def test_a_lost_lock_of_a_deck_imported_from_anki_comes_back_from_its_package(
    tmp_path, collection, monkeypatch
):
    # Its notes keep Anki's note type, which has no Source field: the package names no file.
    _import_one_basic_note(collection, tmp_path, monkeypatch)
    build([tmp_path / "decks"], tmp_path / "dist", now=NOW)
    lock = (tmp_path / "decks/deckbuild.lock").read_bytes()
    (tmp_path / "decks/deckbuild.lock").unlink()
    result = build([tmp_path / "decks"], tmp_path / "dist", now=NOW + 60, use_cache=False)
    assert (tmp_path / "decks/deckbuild.lock").read_bytes() == lock
    assert any("there was no lock file" in note for note in result.report.notes)
