"""deckbuild import: an Anki deck becomes sources that build back into the same notes, same GUIDs."""

from __future__ import annotations

import functools
import html
import io
import json
import os
import re
import tempfile
import time
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from ankihelp import card_states, import_package, notes_by_guid, study_all
from deckbuild.build import build
from deckbuild.cli import cli
from deckbuild.importer import Row, quote, to_source, write_rows
from deckbuild.readers.semicolon import split_record

DATA = Path(__file__).resolve().parent / "data" / "import"
PNG = (Path(__file__).resolve().parent / "data" / "anki" / "diagram.png").read_bytes()


HOSTILE = 'Hostile <img src="x" onerror="alert(1)"><script>alert(2)</script>?'


def run(*args: str):
    return CliRunner().invoke(cli, list(args), prog_name="deckbuild")


def text_export(
    *rows: str, headers: str = "#separator:tab\n#html:true\n#guid column:1\n#notetype column:2\n"
) -> str:
    """Write an Anki text export of `rows` (tab-separated) into notes.txt here; return its name."""
    Path("notes.txt").write_text(headers + "".join(row + "\n" for row in rows), encoding="utf-8")
    return "notes.txt"


def make_studied_collection(col, tmp_path: Path) -> dict[str, str]:
    """Fill a collection as an author's Anki holds a deck: every kind, tags, a subdeck, an image."""
    image = tmp_path / "cell.png"
    image.write_bytes(PNG)
    stored = col.media.add_file(str(image))
    top, sub = col.decks.id("Biology"), col.decks.id("Biology::Cells")
    notes = [
        (
            "Basic",
            top,
            ["What is <b>osmosis</b>?", "Water moving across a membrane<br>down its gradient"],
            ["bio"],
        ),
        (
            "Basic",
            sub,
            [f'Name this organelle: <img src="{stored}">', "A <i>mitochondrion</i>"],
            ["bio::cells"],
        ),
        ("Basic", sub, ["Price of 2 * 3 items at $5?", "\\(2 \\cdot 3 \\cdot 5 = 30\\) dollars"], []),
        ("Basic (and reversed card)", top, ["cell", "die Zelle"], ["german", "vocab"]),
        ("Basic", top, ["<div>Steps:</div><ul><li>first</li><li>second; then</li></ul>", "done"], []),
        ("Cloze", sub, ["The {{c1::nucleus}} holds {{c2::DNA::molecule}}", "Extra <u>info</u>"], ["bio"]),
        ("Basic", top, [HOSTILE, "safe"], []),
    ]
    guids = {}
    for name, deck, fields, tags in notes:
        note = col.new_note(col.models.by_name(name))
        for n, text in enumerate(fields):
            note.fields[n] = text
        note.tags = tags
        col.add_note(note, deck)
        guids[fields[0]] = note.guid
    study_all(col)
    return guids


def export(col, path: Path, legacy: bool = True) -> Path:
    from anki.collection import DeckIdLimit, ExportAnkiPackageOptions

    options = ExportAnkiPackageOptions(
        with_scheduling=False, with_deck_configs=False, with_media=True, legacy=legacy
    )
    col.export_anki_package(out_path=str(path), options=options, limit=DeckIdLimit(col.decks.id("Biology")))
    return path


def shown(col, card_id: int) -> tuple[str, str]:
    """What a learner sees of a card, normalised: question and answer as text with their formatting."""
    out = col.get_card(card_id).render_output(reload=True)
    return normalise(out.question_text, col), normalise(out.answer_text, col)


def normalise(markup: str, col) -> str:
    """Reduce a card's HTML to what it shows.

    Left out: the note type's own wrapper (the style block, deckbuild's `div`s and `p`s, the
    question repeated above the answer's `<hr id=answer>`), blanks between tags, and an image's
    file name (deckbuild names images by content): images compare by their bytes. Kept: every
    word, line breaks, bold/italic/underline, list items, images, formulas as written.
    """
    markup = re.sub(r"(?s)<style>.*?</style>", "", markup)
    markup = re.sub(r"<hr id=\"?answer\"?>", "\n", markup)
    media = Path(col.media.dir())

    def image(match: re.Match[str]) -> str:
        data = (
            (media / html.unescape(match.group(1))).read_bytes()
            if (media / html.unescape(match.group(1))).exists()
            else b""
        )
        return f"[image {hash(data)}]"

    markup = re.sub(r'<img\b[^>]*\bsrc="([^"]*)"[^>]*>', image, markup)
    markup = re.sub(r"</?(?:b|strong)>", "**", markup)
    markup = re.sub(r"</?(?:i|em)>", "_", markup)
    markup = re.sub(r"</?u>", "__", markup)
    markup = re.sub(r"<li>", "\n• ", markup)
    markup = re.sub(r"<br\s*/?>|</?(?:div|p|ul|ol)\b[^>]*>", "\n", markup)
    markup = re.sub(r"<(?!/?span class=\"cloze)[^>]*>", "", markup)
    text = html.unescape(markup)
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


def note_types(col) -> dict[int, tuple[object, ...]]:
    """Every note type of a collection: what an import could change about it."""
    return {m["id"]: (m["name"], m["mod"], m["flds"], m["tmpls"], m["css"]) for m in col.models.all()}


@pytest.mark.anki
def test_a_studied_deck_moves_to_deckbuild_and_back_with_every_guid_and_review(
    tmp_path, collection, monkeypatch
):
    guids = make_studied_collection(collection, tmp_path)
    before = card_states(collection)
    revlog = collection.db.all("SELECT id, cid, ease, ivl, lastIvl, factor, type FROM revlog ORDER BY id")
    assert len(revlog) == len(before)  # every card answered once
    original = {cid: shown(collection, cid) for cid in collection.find_cards("")}
    apkg = export(collection, tmp_path / "Biology.apkg")
    monkeypatch.chdir(tmp_path)

    result = run("import", str(apkg), "-o", "decks")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "7 note(s) imported into 2 file(s), 1 image(s)"
    assert "<script> ×1" in result.stderr
    assert (tmp_path / "decks/Biology/Cells/cards.txt").exists()
    # Built a minute after the learner's reviews (which stamp their notes): later, as in life.
    build([tmp_path / "decks"], tmp_path / "dist", now=int(time.time()) + 60)
    package = tmp_path / "dist/Biology.apkg"

    # The deck's own note types came along, named in each row's Notetype column.
    kept_types = json.loads((tmp_path / "decks/Biology/notetypes.json").read_text(encoding="utf-8"))
    names = sorted(t["name"] for t in kept_types["notetypes"])
    assert names == ["Basic", "Basic (and reversed card)", "Cloze"]
    assert (
        (tmp_path / "decks/Biology/cards.txt")
        .read_text(encoding="utf-8")
        .startswith("Question;Answer;GUID;Tags;Reverse;Notetype\n")
    )
    learner_types = note_types(collection)

    # A learner who had the deck imports the rebuilt package on top of what they studied: their
    # notes are the same notes on the same note types, so nothing is added, skipped or duplicated.
    log = import_package(collection, package)
    assert (log.new, log.duplicate, log.conflicting) == (0, 0, 0)
    assert len(notes_by_guid(collection)) == 7
    assert card_states(collection) == before
    assert (
        collection.db.all("SELECT id, cid, ease, ivl, lastIvl, factor, type FROM revlog ORDER BY id")
        == revlog
    )
    # Their note types are the ones they had, untouched (not newer), and no other came in.
    assert note_types(collection) == learner_types
    for cid, seen in original.items():
        if collection.get_card(cid).note().guid != guids[HOSTILE]:
            assert shown(collection, cid) == seen

    # Someone new imports it: the same notes (same GUIDs), showing the same cards.
    from anki.collection import Collection

    fresh = Collection(str(tmp_path / "fresh.anki2"))
    try:
        assert import_package(fresh, package).new == 7
        assert sorted(notes_by_guid(fresh)) == sorted(guids.values())
        rebuilt = {}
        for cid in fresh.find_cards(""):
            card = fresh.get_card(cid)
            rebuilt[(card.note().guid, card.ord)] = shown(fresh, cid)
        hostile = guids[HOSTILE]
        for cid, seen in original.items():
            card = collection.get_card(cid)
            if card.note().guid != hostile:
                assert rebuilt[(card.note().guid, card.ord)] == seen, card.note().fields
        # Script, its handler and the image of a file the package lacks are left out; the words stay.
        assert rebuilt[(hostile, 0)] == ("Hostile ?", "Hostile ?\nsafe")
        assert fresh.decks.by_name("Biology::Cells") is not None
        by_guid = notes_by_guid(fresh)
        assert "german" in by_guid[guids["cell"]].tags
        for note in by_guid.values():
            for text in note.fields:
                assert "<script" not in text and "onerror" not in text and "alert(2)" not in text
    finally:
        fresh.close()


@pytest.mark.anki
def test_a_later_edit_in_the_sources_updates_the_learners_note_in_place(tmp_path, collection, monkeypatch):
    guids = make_studied_collection(collection, tmp_path)
    apkg = export(collection, tmp_path / "Biology.apkg")
    monkeypatch.chdir(tmp_path)
    assert run("import", str(apkg)).exit_code == 0
    build([tmp_path / "decks"], tmp_path / "v1", now=int(time.time()) + 60)
    import_package(collection, tmp_path / "v1/Biology.apkg")
    before = card_states(collection)
    source = tmp_path / "decks/Biology/cards.txt"
    source.write_text(
        source.read_text(encoding="utf-8").replace("die Zelle", "die Zelle (f)"), encoding="utf-8"
    )
    build([tmp_path / "decks"], tmp_path / "v2", now=int(time.time()) + 120)
    log = import_package(collection, tmp_path / "v2/Biology.apkg")
    # Nothing for the learner to do: the edited note is updated, the others are as they were.
    assert (log.new, log.conflicting, log.updated, log.duplicate) == (0, 0, 1, 6)
    assert card_states(collection) == before
    note = notes_by_guid(collection)[guids["cell"]]
    assert note.note_type()["name"] == "Basic (and reversed card)"
    assert "die Zelle (f)" in note["Back"]
    assert [shown(collection, card.id)[1] for card in sorted(note.cards(), key=lambda c: c.ord)] == [
        "cell\ndie Zelle (f)",
        "die Zelle (f)\ncell",
    ]


def test_guids_with_semicolons_and_quotes_are_written_so_they_read_back():
    rows = [Row("q", "a", 'a;B"c', "", False), Row("q2", "a;b", "x`{}~", "t1 t2", True)]
    text = write_rows(rows)
    assert text.splitlines()[0] == "Question;Answer;GUID;Tags;Reverse"
    lines = text.split("\n")
    assert split_record(lines, 1)[0] == ["q", "a", 'a;B"c', "", ""]
    assert split_record(lines, 2)[0] == ["q2", "a;b", "x`{}~", "t1 t2", "yes"]


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r")))
def test_any_field_text_reads_back_as_written(text):
    text = text.strip()
    lines = (quote(text) + ";" + quote(text) + ";g").split("\n")
    fields, after = split_record(lines, 0)
    assert after == len(lines)
    assert [f.strip() for f in fields] == [text, text, "g"]


@pytest.mark.parametrize(
    ("field", "source"),
    [
        ("a *b* `c` $5 \\d", "a \\*b\\* &#96;c&#96; \\$5 \\\\d"),
        ("<div>1. one</div><div>- two</div>", "1\\. one<br>\\- two"),
        ("x &lt;y&gt; &amp; z", "x &lt;y&gt; &amp; z"),
        ("see [x](y)", "see &#91;x](y)"),
        ("<font color=red>r</font>", '<span style="color:red">r</span>'),
        ("a<br>\n<br>b", "a<br><br>b"),
        ("{{c1::x}}", "{\\{c1::x}}"),
        ("<ul><li>a<ul><li>b</li></ul></li></ul>after", "- a<br>  - b<br><br>after"),
    ],
)
def test_html_becomes_text_deckbuild_renders_the_same(field, source):
    assert to_source(field, cloze=False) == source


def test_a_cloze_keeps_its_deletions():
    assert (
        to_source("{{c1::Paris::city}} is *big* {{calc x}}", cloze=True)
        == "{{c1::Paris::city}} is \\*big\\* {\\{calc x}}"
    )


# ---------------------------------------------------------------- bad input


def test_a_file_that_is_not_an_anki_package_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("deck.apkg").write_bytes(b"hello")
    result = run("import", "deck.apkg")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: deck.apkg: not an Anki package (not a zip file); "
        "give an .apkg or .colpkg file exported from Anki, or a text export of its notes\n"
    )
    assert not Path("decks").exists()


def test_a_zip_without_a_collection_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with zipfile.ZipFile("deck.apkg", "w") as archive:
        archive.writestr("readme.txt", "hi")
    result = run("import", "deck.apkg")
    assert (result.exit_code, result.stderr) == (
        1,
        "error: deck.apkg: not an Anki package (a zip file without a collection in it); "
        "give an .apkg or .colpkg file exported from Anki, or a text export of its notes\n",
    )


@pytest.mark.anki
def test_a_package_in_the_newer_format_is_refused(tmp_path, collection, monkeypatch):
    make_studied_collection(collection, tmp_path)
    export(collection, tmp_path / "new.apkg", legacy=False)
    monkeypatch.chdir(tmp_path)
    result = run("import", "new.apkg")
    assert (result.exit_code, result.stderr) == (
        1,
        "error: new.apkg: a package in Anki's newer format (collection.anki21b), "
        "which deckbuild cannot read; export it again from Anki with 'Support older Anki versions' ticked\n",
    )
    assert not Path("decks").exists()
    # Given as an earlier release, or to diff, it is refused the same way: its old-format
    # collection is a stub for older Ankis, which would hold none of its notes.
    put_semicolon = Path("decks/D/cards.txt")
    put_semicolon.parent.mkdir(parents=True)
    put_semicolon.write_text(
        "Question;Answer;UUID\nQ;A;11111111-1111-4111-8111-111111111111\n", encoding="utf-8"
    )
    newer = (
        "error: new.apkg: a package in Anki's newer format (collection.anki21b), which deckbuild "
        "cannot read; export it again from Anki with 'Support older Anki versions' ticked\n"
    )
    assert (
        run("build", "decks", "--previous", "new.apkg").stderr,
        run("diff", "new.apkg", "decks").stderr,
    ) == (
        newer,
        newer,
    )


@pytest.mark.anki
def test_a_package_with_no_notes_is_refused(tmp_path, collection, monkeypatch):
    collection.decks.id("Biology")
    export(collection, tmp_path / "empty.apkg")
    monkeypatch.chdir(tmp_path)
    result = run("import", "empty.apkg")
    assert (result.exit_code, result.stderr) == (
        1,
        "error: empty.apkg: holds no notes; export the deck with its notes\n",
    )
    assert not Path("decks").exists()


def test_an_output_folder_after_a_link_and_dot_dot_is_where_the_system_takes_it(tmp_path, monkeypatch):
    # `sub/../imp` with `sub` a link into decks/A is decks/imp: taken off as text, it was ./imp.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "decks" / "A").mkdir(parents=True)
    os.symlink("decks/A", tmp_path / "sub")
    source = text_export("g1\tBasic\tQ?\tA.")
    result = run("import", source, "-o", "sub/../imp")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "decks" / "imp").is_dir() and not (tmp_path / "imp").exists()
    assert all(line.startswith("wrote decks/imp/") for line in result.stdout.splitlines()[:-1])


def test_an_output_folder_with_files_is_never_written_over(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("decks").mkdir()
    Path("decks/mine.txt").write_text("keep", encoding="utf-8")
    result = run("import", str(DATA / "basic.txt"))
    assert (result.exit_code, result.stderr) == (
        1,
        "error: decks: already holds files, which an import never writes over; "
        "give a new or empty folder with -o\n",
    )
    assert Path("decks/mine.txt").read_text(encoding="utf-8") == "keep"


# ---------------------------------------------------------------- note types, text exports, media


@pytest.mark.anki
def test_a_note_type_deckbuild_cannot_represent_is_named_with_its_count(tmp_path, collection, monkeypatch):
    make_studied_collection(collection, tmp_path)
    typed = collection.models.by_name("Basic (type in the answer)")
    for word in ("one", "two"):
        note = collection.new_note(typed)
        note.fields[0], note.fields[1] = f"Type {word}", word
        collection.add_note(note, collection.decks.id("Biology"))
    apkg = export(collection, tmp_path / "Biology.apkg")
    monkeypatch.chdir(tmp_path)
    result = run("import", str(apkg))
    assert result.exit_code == 0
    assert (
        "Biology.apkg: warning: note type 'Basic (type in the answer)': 2 note(s) not imported: "
        "its templates are not a plain front/back card, reversed or not"
    ) in result.stderr.splitlines()
    assert result.stdout.splitlines()[-1] == "7 note(s) imported into 2 file(s), 1 image(s)"


@pytest.mark.anki
def test_a_text_export_round_trips_with_its_guids(tmp_path, collection, monkeypatch):
    from anki.collection import Collection, DeckIdLimit

    guids = make_studied_collection(collection, tmp_path)
    original = {cid: shown(collection, cid) for cid in collection.find_cards("")}
    export_path = tmp_path / "notes.txt"
    collection.export_note_csv(
        out_path=str(export_path), limit=DeckIdLimit(collection.decks.id("Biology")), with_html=True,
        with_tags=True, with_deck=True, with_notetype=True, with_guid=True,
    )  # fmt: skip
    monkeypatch.chdir(tmp_path)
    result = run("import", str(export_path))
    assert result.exit_code == 0, result.output
    assert run("build", "decks", "-o", "dist").exit_code == 0
    fresh = Collection(str(tmp_path / "fresh.anki2"))
    try:
        assert import_package(fresh, tmp_path / "dist/Biology.apkg").new == 7
        rebuilt = {}
        for cid in fresh.find_cards(""):
            card = fresh.get_card(cid)
            rebuilt[(card.note().guid, card.ord)] = shown(fresh, cid)
        # A text export carries no media: the image and the hostile note's missing file are left out.
        skip = {guids[HOSTILE], guids[next(k for k in guids if "organelle" in k)]}
        for cid, seen in original.items():
            card = collection.get_card(cid)
            if card.note().guid not in skip:
                assert rebuilt[(card.note().guid, card.ord)] == seen
    finally:
        fresh.close()


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        (
            "#separator:tab\n#html:true\n",
            "no '#guid column:' header, so learners' notes could not be matched; "
            "export the notes from Anki again with 'Include unique identifier' ticked",
        ),
        (
            "#separator:tab\n#html:true\n#guid column:1\n",
            "no '#notetype column:' header, so reversed and type-in notes could not be told from basic "
            "ones; export the notes from Anki again with 'Include notetype name' ticked",
        ),
    ],
)
def test_a_text_export_without_guids_or_note_types_is_refused(tmp_path, monkeypatch, headers, message):
    monkeypatch.chdir(tmp_path)
    Path("notes.txt").write_text(headers + "g1\tcell\tZelle\n", encoding="utf-8")
    result = run("import", "notes.txt")
    assert (result.exit_code, result.stderr) == (1, f"error: notes.txt:1: {message}\n")
    assert not Path("decks").exists()


def test_a_text_export_row_without_its_guid_is_named_by_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("notes.txt").write_text(
        '#separator:tab\n#guid column:1\n#notetype:Basic\nabc\t"two\nlines"\tx\n\tq\ta\n', encoding="utf-8"
    )
    result = run("import", "notes.txt")
    assert (result.exit_code, result.stderr) == (
        1,
        "error: notes.txt:6: no GUID in column 1; export the notes again\n",
    )


def test_plain_text_fields_are_escaped_as_html(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("notes.txt").write_text(
        "#separator:semicolon\n#html:false\n#guid column:3\n#notetype:Basic\n#deck:Plain\n"
        'a <b> & c;"x\ny";g1\n',
        encoding="utf-8",
    )
    assert run("import", "notes.txt").exit_code == 0
    assert Path("decks/Plain/cards.txt").read_text(encoding="utf-8") == (
        'Question;Answer;GUID\n"a &lt;b&gt; &amp; c";x<br>y;g1\n'
    )


def repack(apkg: Path, out: Path, media: dict[str, bytes], front: str) -> Path:
    """Rewrite an exported package: every note's first field, and the media it carries."""
    import sqlite3

    with zipfile.ZipFile(apkg) as archive:
        collection = archive.read("collection.anki21")
    db = out.with_suffix(".db")
    db.write_bytes(collection)
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT id, flds FROM notes").fetchall()
    for nid, flds in rows:
        conn.execute(
            "UPDATE notes SET flds = ? WHERE id = ?", (front + "\x1f" + flds.split("\x1f", 1)[1], nid)
        )
    conn.commit()
    conn.close()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("collection.anki21", db.read_bytes())
        archive.writestr("media", json.dumps({str(n): name for n, name in enumerate(media)}))
        for n, data in enumerate(media.values()):
            archive.writestr(str(n), data)
    return out


HOSTILE_NAMES = [
    "../../evil.png",
    "/tmp/abs.png",
    "a\x00b.png",
    "Same.png",
    "same.png",
    ".hidden.png",
    "cards.txt",
]


@pytest.mark.anki
def test_media_names_never_choose_where_a_file_goes(tmp_path, collection, monkeypatch):
    collection.decks.id("Biology")
    note = collection.new_note(collection.models.by_name("Basic"))
    note.fields[0], note.fields[1] = "q", "a"
    collection.add_note(note, collection.decks.id("Biology"))
    base = export(collection, tmp_path / "base.apkg")
    images = "".join(f'<img src="{html.escape(name)}">' for name in HOSTILE_NAMES)
    apkg = repack(base, tmp_path / "hostile.apkg", {name: PNG for name in HOSTILE_NAMES}, "Look: " + images)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    result = run("import", str(apkg), "-o", "out/decks")
    assert result.exit_code == 0, result.output
    written = sorted(p.relative_to(work).as_posix() for p in work.rglob("*") if p.is_file())
    assert written == [
        "out/decks/Biology/Same.png", "out/decks/Biology/_hidden.png", "out/decks/Biology/a_b.png",
        "out/decks/Biology/abs.png", "out/decks/Biology/cards.txt", "out/decks/Biology/evil.png",
        "out/decks/Biology/notetypes.json", "out/decks/Biology/same-2.png",
    ]  # fmt: skip
    assert not (tmp_path / "evil.png").exists() and not (work / "evil.png").exists()
    assert "media file 'a\\x00b.png' is written as 'a_b.png' (a safe, free name)" in result.stderr
    assert "media file 'cards.txt' is not an image deckbuild packages; not extracted" in result.stderr
    assert run("build", "out/decks", "-o", "dist").exit_code == 0
    again = import_package(collection, work / "dist/Biology.apkg")
    assert (again.new, again.conflicting) == (0, 0)  # the same note, on the note type it had


@pytest.mark.anki
def test_a_media_file_or_collection_over_the_limit_is_not_unpacked(tmp_path, collection, monkeypatch):
    from deckbuild import importer

    note = collection.new_note(collection.models.by_name("Basic"))
    note.fields[0], note.fields[1] = "q", "a"
    collection.add_note(note, collection.decks.id("Biology"))
    base = export(collection, tmp_path / "base.apkg")
    repack(base, tmp_path / "big.apkg", {"big.png": b"\0" * 100}, '<img src="big.png">')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(importer, "MAX_MEDIA_BYTES", 10)
    result = run("import", "big.apkg")
    assert result.exit_code == 0, result.stderr
    assert "big.apkg: warning: media file 'big.png' is too large (100 bytes); left out" in result.stderr
    assert sorted(p.name for p in Path("decks/Biology").iterdir()) == ["cards.txt", "notetypes.json"]
    monkeypatch.setattr(importer, "MAX_COLLECTION_BYTES", 1000)
    size = zipfile.ZipFile("big.apkg").getinfo("collection.anki21").file_size
    result = run("import", "big.apkg", "-o", "other")
    assert (result.exit_code, result.stderr) == (
        1,
        f"error: big.apkg: collection.anki21 is too large ({size:,} bytes, at most 1,000); "
        "give an .apkg or .colpkg file exported from Anki, or a text export of its notes\n",
    )
    assert not Path("other").exists()


def test_an_output_folder_that_is_a_link_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("elsewhere").mkdir()
    Path("decks").symlink_to("elsewhere")
    result = run("import", str(DATA / "basic.txt"))
    assert (result.exit_code, result.stderr) == (
        1,
        "error: decks: is a symbolic link; give a new or empty folder with -o\n",
    )
    assert not any(Path("elsewhere").iterdir())


# ---------------------------------------------------------------- the GUID column


def test_a_guid_column_keeps_anki_guids_and_a_uuid_column_stays_strict(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    deck = Path("decks/Deck")
    deck.mkdir(parents=True)
    (deck / "a.txt").write_text(
        'Question;Answer;GUID\nQ1;A1;"x;B""c"\nQ2;A2;aBcDeFgHiJ\nQ3;A3;abcdefghij\nQ4;A4;has space\n',
        encoding="utf-8",
    )
    (deck / "b.txt").write_text("Question;Answer;UUID\nQ5;A5;aBcDeFgHiK\n", encoding="utf-8")
    result = run("check", "decks")
    assert (result.exit_code, result.stderr) == (
        1,
        "decks/Deck/a.txt:5: invalid GUID 'has space'; a GUID is 1 to 100 printable ASCII characters "
        "without blanks\n"
        "decks/Deck/b.txt:2: invalid UUID 'aBcDeFgHiK'; write it as 8-4-4-4-12 hex digits\n"
        "2 error(s), 0 warning(s)\n",
    )


@pytest.mark.anki
def test_guids_differing_only_in_case_are_two_notes_in_anki(tmp_path, collection, monkeypatch):
    monkeypatch.chdir(tmp_path)
    deck = Path("decks/Deck")
    deck.mkdir(parents=True)
    (deck / "a.txt").write_text(
        'Question;Answer;GUID\nQ1;A1;"x;B""c"\nQ2;A2;aBcDeFgHiJ\nQ3;A3;abcdefghij\nQ4;A4;\n', encoding="utf-8"
    )
    ids = run("ids", "decks")
    assert ids.exit_code == 0
    lines = (deck / "a.txt").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "Question;Answer;GUID" and re.fullmatch(r"Q4;A4;[0-9a-f-]{36}", lines[4])
    assert run("build", "decks", "-o", "dist").exit_code == 0
    assert import_package(collection, tmp_path / "dist/Deck.apkg").new == 4
    assert {"aBcDeFgHiJ", "abcdefghij", 'x;B"c'} < set(notes_by_guid(collection))
    assert run("build", "decks", "-o", "dist", "--frozen").exit_code == 0


# A GUID (or UUID) of a UUID's length, in two cases.
UPPER, LOWER = "AAAAAAAA-AAAA-4AAA-8AAA-AAAAAAAAAAAA", "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"


def _deck_of(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **files: str) -> Path:
    """Make decks/D below `tmp_path`, the working folder, holding these files (`a="…"` is a.txt)."""
    monkeypatch.chdir(tmp_path)
    deck = Path("decks/D")
    deck.mkdir(parents=True)
    for name, text in files.items():
        (deck / f"{name}.txt").write_text(text, encoding="utf-8")
    return deck


@pytest.mark.anki
def test_guids_of_a_uuid_s_length_differing_only_in_case_are_two_notes(tmp_path, collection, monkeypatch):
    # A deck another tool built with UUIDs for GUIDs: Anki tells them apart by case, and so does
    # a GUID column, in one file or two, built once or again with the lock.
    monkeypatch.chdir(tmp_path)
    deck = Path("decks/Deck")
    deck.mkdir(parents=True)
    upper, lower = "6BAA9455-E3E7-4682-8209-4CAC629F6FBE", "6baa9455-e3e7-4682-8209-4cac629f6fbe"
    (deck / "a.txt").write_text(f"Question;Answer;GUID\nQ1;A1;{upper}\n", encoding="utf-8")
    (deck / "b.txt").write_text(f"Question;Answer;GUID\nQ2;A2;{lower}\n", encoding="utf-8")
    first = run("build", "decks", "-o", "dist")
    assert (first.exit_code, first.stderr) == (0, "")
    (deck / "a.txt").write_text(f"Question;Answer;GUID\nQ1;A1 again;{upper}\n", encoding="utf-8")
    again = run("build", "decks", "-o", "dist")
    assert (again.exit_code, again.stderr) == (0, "")
    alone = run("build", "decks/Deck/b.txt", "-o", "dist")  # a.txt read for its ids alone
    assert (alone.exit_code, alone.stderr) == (0, "")
    assert import_package(collection, tmp_path / "dist/Deck.apkg").new == 2
    notes = notes_by_guid(collection)
    assert {upper, lower} <= set(notes)
    assert (notes[upper]["Back"], notes[lower]["Back"]) == ("<p>A1 again</p>", "<p>A2</p>")


@pytest.mark.anki
@pytest.mark.parametrize("lock", ["kept", "lost"])
def test_a_uuid_never_takes_the_spelling_of_a_guid_column_s_card(tmp_path, collection, monkeypatch, lock):
    # The UUID `aaaa…` took the spelling `AAAA…` of another card's GUID, from the lock or the
    # package: the two shipped as one note, and the studied one was overwritten.
    upper, lower = UPPER, LOWER
    deck = _deck_of(tmp_path, monkeypatch, a=f"Question;Answer;GUID\nQA;AA;{upper}\n")
    assert run("build", "decks", "-o", "dist").exit_code == 0
    assert import_package(collection, tmp_path / "dist/D.apkg").new == 1
    (deck / "b.txt").write_text(f"Question;Answer;UUID\nQB;AB;{lower}\n", encoding="utf-8")
    if lock == "lost":
        Path("decks/deckbuild.lock").unlink()
    result = run("build", "decks", "-o", "dist")
    taken = (
        "decks/deckbuild.lock: there was no lock file; the mod times and note types of 1 card(s) were "
        "taken from the packages this build replaces, so that learners' notes are updated only where "
        "they changed (commit the lock)\n"
    )
    assert (result.exit_code, result.stderr) == (0, taken if lock == "lost" else "")
    assert import_package(collection, tmp_path / "dist/D.apkg").new == 1
    notes = notes_by_guid(collection)
    assert (notes[upper]["Front"], notes[lower]["Front"]) == ("<p>QA</p>", "<p>QB</p>")


@pytest.mark.anki
def test_a_uuid_added_as_a_guid_of_its_letters_is_deleted_is_a_note_of_its_own(
    tmp_path, collection, monkeypatch
):
    # In one edit: the GUID-column card `AAAA…` deleted, a UUID `aaaa…` added. No card holds the
    # GUID's spelling any more, yet it is not the UUID's earlier spelling: its file keeps GUIDs.
    deck = _deck_of(tmp_path, monkeypatch, g=f"Question;Answer;GUID\nQG;AG;{UPPER}\nQX;AX;xY\n")
    assert run("build", "decks", "-o", "dist").exit_code == 0
    assert import_package(collection, tmp_path / "dist/D.apkg").new == 2
    (deck / "g.txt").write_text("Question;Answer;GUID\nQX;AX;xY\n", encoding="utf-8")
    (deck / "u.txt").write_text(f"Question;Answer;UUID\nQU;AU;{LOWER}\n", encoding="utf-8")
    result = run("build", "decks", "-o", "dist")
    assert (result.exit_code, result.stderr) == (0, f"decks/D/g.txt: retired card {UPPER} (QG)\n")
    assert import_package(collection, tmp_path / "dist/D.apkg").new == 1
    notes = notes_by_guid(collection)
    assert (notes[UPPER]["Front"], notes[LOWER]["Front"]) == ("<p>QG</p>", "<p>QU</p>")


def test_a_guid_used_twice_is_named_as_a_guid(tmp_path, monkeypatch):
    _deck_of(tmp_path, monkeypatch, a="Question;Answer;GUID\nQ1;A1;xY\nQ2;A2;xY\n")
    result = run("check", "decks")
    assert (result.exit_code, result.stderr) == (
        1,
        "decks/D/a.txt:3: GUID xY is used twice: here and at decks/D/a.txt:2; give one of the cards a new "
        "GUID\n1 error(s), 0 warning(s)\n",
    )


def test_a_uuid_and_a_guid_differing_only_in_case_are_two_cards(tmp_path, monkeypatch):
    _deck_of(
        tmp_path,
        monkeypatch,
        a=f"Question;Answer;GUID\nQA;AA;{LOWER}\n",
        b=f"Question;Answer;UUID\nQB;AB;{UPPER}\n",
    )
    result = run("build", "decks", "-o", "dist")
    assert (result.exit_code, result.stderr) == (0, "")
    assert "2 card(s) read, 2 packaged" in result.stdout


def test_a_guid_removed_while_another_differing_only_in_case_stays_is_retired(tmp_path, monkeypatch):
    # Built alone, the file that lost it took the other file's `aaaa…` for the card moved there.
    upper = UPPER
    deck = _deck_of(
        tmp_path,
        monkeypatch,
        a=f"Question;Answer;GUID\nQA;AA;{upper}\nQX;AX;xY\n",
        b=f"Question;Answer;GUID\nQB;AB;{LOWER}\n",
    )
    assert run("build", "decks", "-o", "dist").exit_code == 0
    (deck / "a.txt").write_text("Question;Answer;GUID\nQX;AX;xY\n", encoding="utf-8")
    result = run("build", "decks/D/a.txt", "-o", "dist")
    assert result.exit_code == 0
    assert f"decks/D/a.txt: retired card {upper} (QA)" in result.stderr.splitlines()


def test_a_retired_guid_is_forgotten_though_a_uuid_differing_only_in_case_lives_on(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    upper, lower = UPPER, LOWER
    Path("decks/G").mkdir(parents=True)
    Path("decks/U").mkdir(parents=True)
    Path("decks/G/g.txt").write_text(f"Question;Answer;GUID\nQG;AG;{upper}\nQX;AX;xY\n", encoding="utf-8")
    Path("decks/U/u.txt").write_text(f"Question;Answer;UUID\nQU;AU;{lower}\n", encoding="utf-8")
    assert run("build", "decks", "-o", "dist").exit_code == 0
    Path("decks/G/g.txt").write_text("Question;Answer;GUID\nQX;AX;xY\n", encoding="utf-8")
    assert run("build", "decks", "-o", "dist").exit_code == 0
    live = run("forget", lower.upper().replace("A", "a", 1))  # the live UUID, in another case
    assert live.stderr.endswith("is still in the sources; remove it there first\n")
    forgotten = run("forget", upper)
    assert (forgotten.exit_code, forgotten.stdout) == (0, f"forgot {upper}\n")


def test_a_header_naming_both_uuid_and_guid_is_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("decks/Deck").mkdir(parents=True)
    Path("decks/Deck/a.txt").write_text("Question;Answer;UUID;GUID\nq;a;x;y\n", encoding="utf-8")
    result = run("check", "decks")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "decks/Deck/a.txt:1: header 'Question;Answer;UUID;GUID' has both UUID and GUID "
        "(a GUID column holds ids kept from Anki, in place of UUID); the known columns are"
    )


@pytest.mark.anki
def test_anki_stock_note_types_map_by_their_templates_whatever_their_name(collection):
    from deckbuild.importer import Shape, shape_of

    def shape(name: str) -> Shape | str:
        model = collection.models.by_name(name)
        fields = [f["name"] for f in model["flds"]]
        templates = [(t["qfmt"], t["afmt"]) for t in model["tmpls"]]
        return shape_of(fields, templates, model["type"] == 1)

    assert shape("Basic") == Shape("basic", 0, 1)
    assert shape("Basic (and reversed card)") == Shape("reversed", 0, 1)
    assert shape("Basic (optional reversed card)") == Shape("reversed", 0, 1, 2)
    assert shape("Cloze") == Shape("cloze", 0, 1)
    assert isinstance(shape("Basic (type in the answer)"), str)
    assert isinstance(shape("Image Occlusion"), str)


def test_an_import_writes_the_same_bytes_every_time_and_warns_of_sound(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text_export(
        "g1\tBasic\tA::B\tHear [sound:x.mp3]\tit",
        "g2\tBasic (optional reversed card)\tA\tone\ttwo\ty",
        "g3\tBasic (optional reversed card)\tA\tthree\tfour\t",
        headers="#separator:tab\n#html:true\n#guid column:1\n#notetype column:2\n#deck column:3\n",
    )
    first = run("import", "notes.txt", "-o", "one")
    assert first.exit_code == 0
    assert (
        "notes.txt: warning: 1 note(s) play sound ([sound:…]), which deckbuild does not package; "
        "it stays as text"
    ) in first.stderr.splitlines()
    assert run("import", "notes.txt", "-o", "two").exit_code == 0
    files = sorted(p.relative_to("one") for p in Path("one").rglob("*") if p.is_file())
    assert [p.as_posix() for p in files] == ["A/B/cards.txt", "A/cards.txt"]
    for path in files:
        assert (Path("one") / path).read_bytes() == (Path("two") / path).read_bytes()
    assert Path("one/A/cards.txt").read_text(encoding="utf-8") == (
        "Question;Answer;GUID;Reverse\none;two;g2;yes\nthree;four;g3;\n"
    )


FIELD_PIECES = [
    *'ab<>/"\'=;\\$*`[]()#-1.{}c: \n\t&', "<br>", "<div>", "</div>", "<ul>", "<li>", "</ul>", "<ol>", "<pre>",
    "</pre>", "<table>", "<script>", "</script>", "\\(", "\\)", "{{c1::", "}}", '<img src="x.png">',
    "<font color=red>", "<!--",
]  # fmt: skip
EXPORT_PIECES = [
    *'ab\t;",\n#:', "#separator:", "#guid column:", "1", "2", "#html:true", "#notetype column:",
    "#deck column:", "#tags column:", "Cloze", "{{c1::x}}",
]  # fmt: skip
TEXT_PIECES = [
    *"ab*_`$\\#-+=~|[]()!>.1:{} ", "<br>", "<b>", "</b>", "&lt;", "&amp;", "1. ", "- ", "# ",
    "<div>", "</div>", "](", "{{c", "&nbsp;", "    ", "<ul>", "<ol>", "<li>", "</li>", "</ul>", "<h2>",
    "</h2>", "<i>", "</i>", "<pre>", "</pre>", "<table><tr><td>", "</td></tr></table>", "\\(x\\)",
    '<span style="color:red">', "</span>", "<font color=blue>", "</font>", "<u>",
]  # fmt: skip


@given(st.lists(st.sampled_from(FIELD_PIECES), max_size=40).map("".join))
def test_any_field_gives_source_text_or_a_reason(markup):
    for cloze in (False, True):
        text = to_source(markup, cloze)
        assert isinstance(text, str)
        assert "<script" not in text.lower()


@given(st.lists(st.sampled_from(EXPORT_PIECES), max_size=60).map("".join))
def test_any_text_export_gives_sources_or_a_message(tmp_path_factory, text):
    from deckbuild.errors import DeckbuildError
    from deckbuild.importer import import_deck

    folder = tmp_path_factory.mktemp("export")
    (folder / "notes.txt").write_text(text, encoding="utf-8")
    try:
        result = import_deck(folder / "notes.txt", folder / "out")
    except DeckbuildError:
        assert not (folder / "out").exists()
    else:
        assert result.notes == sum(len(p.read_text(encoding="utf-8").splitlines()) - 1 for p in result.files)


def _words(markup: str) -> str:
    """The words a card shows, line by line: tags out, entities read, blanks squeezed."""
    markup = re.sub(r"<br\s*/?>|</?(?:p|div|li|ul|ol|h\d)\b[^>]*>", "\n", markup)
    text = html.unescape(re.sub(r"<[^>]*>", "", markup))
    return "\n".join(" ".join(line.split()) for line in text.split("\n") if line.strip())


@given(st.lists(st.sampled_from(TEXT_PIECES), max_size=30).map("".join))
def test_imported_text_renders_to_the_words_anki_showed(markup):
    from deckbuild.errors import Report
    from deckbuild.render import Where, render_text

    source = to_source(markup, cloze=False)
    report = Report()
    rendered = render_text(source, Where("x.txt", 1), report)
    if report.errors:  # a formula-like slip deckbuild refuses with a message: never a silent change
        return
    # Every character, in order (line breaks and blanks aside: a stray </div> breaks no line).
    assert "".join(_words(rendered).split()) == "".join(_words(markup).split())


@pytest.mark.anki
def test_a_note_type_that_could_load_something_is_not_kept_and_learners_change_it_once(
    tmp_path, collection, monkeypatch
):
    basic = collection.models.by_name("Basic")
    basic["css"] += '@import url("https://example.com/track.css");\n'
    collection.models.update_dict(basic)
    note = collection.new_note(collection.models.by_name("Basic"))
    note.fields[0], note.fields[1] = "der Hund", "the dog"
    collection.add_note(note, collection.decks.id("Biology"))
    study_all(collection)
    apkg = export(collection, tmp_path / "Biology.apkg")
    monkeypatch.chdir(tmp_path)
    result = run("import", str(apkg))
    assert result.exit_code == 0, result.output
    assert (
        "Biology.apkg: warning: note type 'Basic' is not kept (its CSS holds '@import', which could "
        "load or run something): its notes get deckbuild's note types, which learners who have them "
        "change once by hand"
    ) in result.stderr
    assert not Path("decks/Biology/notetypes.json").exists()
    assert Path("decks/Biology/cards.txt").read_text(encoding="utf-8").startswith("Question;Answer;GUID\n")
    build([tmp_path / "decks"], tmp_path / "v1", now=int(time.time()) + 60)
    log = import_package(collection, tmp_path / "v1/Biology.apkg")
    assert (log.new, log.duplicate, log.conflicting) == (0, 0, 1)  # kept as it was, reviews and all
    # The learner's one step: Browse, select the deck's notes, Notes > Change Note Type.
    old_id, new_id = collection.models.id_for_name("Basic"), collection.models.id_for_name("deckbuild card")
    request = collection.models.change_notetype_info(old_notetype_id=old_id, new_notetype_id=new_id).input
    request.note_ids.extend(collection.models.nids(old_id))
    collection.models.change_notetype_of_notes(request)
    before = card_states(collection)
    source = tmp_path / "decks/Biology/cards.txt"
    source.write_text(source.read_text(encoding="utf-8").replace("the dog", "the dog (m)"), encoding="utf-8")
    build([tmp_path / "decks"], tmp_path / "v2", now=int(time.time()) + 120)
    log = import_package(collection, tmp_path / "v2/Biology.apkg")
    assert (log.new, log.conflicting, log.updated) == (0, 0, 1)
    assert card_states(collection) == before
    assert "the dog (m)" in notes_by_guid(collection)[note.guid]["Back"]


# A text export holds no note types: a collection that has its notes keeps their own types.
TEXT_EXPORT_TYPES = (
    "{name}: warning: note type 'Basic' is not kept (a text export names its note types but does not "
    "hold them): its notes get deckbuild's note types, which learners who have them change once by hand"
)


def test_notes_whose_text_would_be_lost_are_not_imported_but_counted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text_export("g1\tBasic\tq\ta\tstray text", "g2\tBasic\tq2\t", "g3\tBasic\tq3\ta3")
    result = run("import", "notes.txt", "-o", "out")
    assert result.exit_code == 0
    assert result.stderr.splitlines()[:3] == [
        TEXT_EXPORT_TYPES.format(name="notes.txt"),
        "notes.txt: warning: note type 'Basic': 1 note(s) not imported: a field the card does not show "
        "holds text deckbuild has no column for",
        "notes.txt: warning: note type 'Basic': 1 note(s) not imported: its answer is empty",
    ]
    assert Path("out/notes/cards.txt").read_text(encoding="utf-8") == "Question;Answer;GUID\nq3;a3;g3\n"
    assert not list(Path(".").glob(".deckbuild-*"))


@pytest.mark.anki
def test_a_collection_package_imports_every_deck(tmp_path, collection, monkeypatch):
    guids = make_studied_collection(collection, tmp_path)
    colpkg = tmp_path / "all.colpkg"
    collection.export_collection_package(str(colpkg), include_media=True, legacy=True)
    monkeypatch.chdir(tmp_path)
    result = run("import", str(colpkg))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "7 note(s) imported into 2 file(s), 1 image(s)"
    text = Path("decks/Biology/cards.txt").read_text(encoding="utf-8")
    assert guids["cell"] in text


def test_an_old_format_stub_alone_is_the_newer_format(tmp_path, monkeypatch):
    import sqlite3

    monkeypatch.chdir(tmp_path)
    db = tmp_path / "stub.anki2"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE col (models TEXT, decks TEXT)")
    conn.execute("CREATE TABLE notes (id INTEGER, guid TEXT, mid INTEGER, flds TEXT, tags TEXT)")
    conn.execute("CREATE TABLE cards (id INTEGER, nid INTEGER, did INTEGER, odid INTEGER, ord INTEGER)")
    conn.execute("INSERT INTO col VALUES ('{}', '{}')")
    stub = "Please update to the latest Anki version, then import the .colpkg/.apkg file again.\x1f"
    conn.execute("INSERT INTO notes VALUES (1, 'g', 1, ?, '')", (stub,))
    conn.commit()
    conn.close()
    with zipfile.ZipFile("stub.apkg", "w") as archive:
        archive.write(db, "collection.anki2")
    result = run("import", "stub.apkg")
    assert (result.exit_code, result.stderr) == (
        1,
        "error: stub.apkg: a package in Anki's newer format (collection.anki21b), "
        "which deckbuild cannot read; export it again from Anki with 'Support older Anki versions' ticked\n",
    )


@pytest.mark.parametrize("collection_bytes", [b"not a database", b"SQLite format 3\x00" + b"\x00" * 200])
def test_a_package_whose_collection_cannot_be_read_is_refused(tmp_path, monkeypatch, collection_bytes):
    monkeypatch.chdir(tmp_path)
    with zipfile.ZipFile("deck.apkg", "w") as archive:
        archive.writestr("collection.anki21", collection_bytes)
    result = run("import", "deck.apkg")
    assert (result.exit_code, result.stderr) == (
        1,
        "error: deck.apkg: not an Anki package (its collection cannot be read); "
        "give an .apkg or .colpkg file exported from Anki, or a text export of its notes\n",
    )
    assert not Path("decks").exists()


NEW_DECK = "; learners who studied it keep their cards where they are and get a new, empty deck of that name"


def test_a_deck_name_no_folder_can_carry_is_renamed_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = text_export(
        "g1\tBasic\t.hidden:: a/b ::\tq1\ta1",
        "g2\tBasic\tCtl\x01here\tq2\ta2",
        headers="#separator:tab\n#html:true\n#guid column:1\n#notetype column:2\n#deck column:3\n",
    )
    result = run("import", name)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[:2] == [
        "notes.txt: warning: deck '.hidden:: a/b ::' is written as folder '_.hidden/a_b/_'" + NEW_DECK,
        "notes.txt: warning: deck 'Ctl\\x01here' is written as folder 'Ctl_here'" + NEW_DECK,
    ]
    assert run("build", "decks", "-o", "dist").exit_code == 0


def test_control_characters_are_removed_and_no_break_spaces_kept(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("import", text_export("g1\tBasic\tq\x02x\ta", "g2\tBasic\tq2\ta\xa0\xa0b\u2028c"))
    assert result.exit_code == 0
    assert (
        "notes.txt: warning: 1 note(s) held control characters Anki does not keep; removed" in result.stderr
    )
    assert Path("decks/notes/cards.txt").read_text(encoding="utf-8") == (
        "Question;Answer;GUID\nqx;a;g1\nq2;a\xa0\xa0b\u2028c;g2\n"
    )
    assert run("build", "decks", "-o", "dist").exit_code == 0


# Pieces of fields Anki shows but deckbuild's build has refused: markup past its limits, formulas
# it does not allow, clozes a dropped tag breaks, characters it will not keep, images outside a deck.
HOSTILE_PIECES = [
    "word ", "<b>w</b> " * 40, '<span style="color:red">w</span> ' * 30, "<table><tr><td>x</td></tr></table>",
    "\\(\\def\\R{\\mathbb{R}}\\R\\)", "\\(\\newcommand{\\x}{1}\\)", "\\(\\href{x}{y}\\)", "\\(\\frac{a}{b\\)",
    "\\(\\left( x\\)", "\\\\(x\\\\)", "<b>\\(x</b>\\)", "<pre>\\(\\d+</pre>",
    "<table><tr><td>\\(</td></tr></table>",
    "\x08", "\x1b", "[" * 40, "{{c1::", "}}", "<script>", "<svg>", "<style>", '<img src="/etc/x.png">',
    '<img src="deep/../../x.png">', "\\(", "\\)", "$", "<br>", "word " * 900,
]  # fmt: skip
# Mostly text any card holds, so that most notes come through and some do not.
FIELD_MIX = [
    "word ",
    "{{c1::word}} ",
    "<i>x</i> ",
    "\\(x^2\\) ",
    "<br>",
    "a; b ",
    "<div>line</div>",
] * 6 + HOSTILE_PIECES


def _packaged_guids(dist: Path) -> set[str]:
    import sqlite3

    guids: set[str] = set()
    for package in sorted(dist.glob("*.apkg")):
        with zipfile.ZipFile(package) as archive:
            name = next(n for n in ("collection.anki21", "collection.anki2") if n in archive.namelist())
            db = dist / f"{package.stem}.sqlite"
            db.write_bytes(archive.read(name))
        with sqlite3.connect(db) as conn:
            guids.update(g for (g,) in conn.execute("SELECT guid FROM notes"))
    return guids


@settings(max_examples=max(1, settings.default.max_examples // 2))  # each example imports and builds
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["Basic", "Cloze"]),
            st.lists(st.sampled_from(FIELD_MIX), min_size=1, max_size=8).map("".join),
            st.lists(st.sampled_from(FIELD_MIX), max_size=4).map("".join),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_an_import_never_writes_a_deck_the_build_refuses(tmp_path_factory, notes):
    folder = tmp_path_factory.mktemp("hostile")
    rows = "".join(
        f"g{n}\t{kind}\tD\t" + "\t".join('"' + f.replace('"', '""') + '"' for f in fields) + "\n"
        for n, (kind, *fields) in enumerate(notes)
    )
    headers = "#separator:tab\n#html:true\n#guid column:1\n#notetype column:2\n#deck column:3\n"
    (folder / "notes.txt").write_text(headers + rows, encoding="utf-8")
    imported = run("import", str(folder / "notes.txt"), "-o", str(folder / "decks"))
    reported = set(re.findall(r"note (g\d+) left out", imported.stderr))
    counted = sum(int(n) for n in re.findall(r"(\d+) note\(s\) not imported", imported.stderr))
    if imported.exit_code:
        assert not (folder / "decks").exists()
        assert not list(folder.glob(".deckbuild-*"))
        assert re.search(
            r"no note (could be written so that it builds|deckbuild can represent)", imported.stderr
        )
        assert len(reported) + counted == len(notes), imported.stderr
        return
    built = run("build", str(folder / "decks"), "-o", str(folder / "dist"))
    assert built.exit_code == 0, (imported.stderr, built.stderr)
    packaged = _packaged_guids(folder / "dist")
    assert not packaged & reported
    assert len(packaged) + len(reported) + counted == len(notes), imported.stderr


@pytest.mark.parametrize("tag", ["script", "style", "svg"])
def test_an_unclosed_dropped_tag_leaves_out_only_itself(tag):
    assert to_source(f"The {{{{c1::cell<{tag}> wall}}}} holds", cloze=True) == "The {{c1::cell wall}} holds"
    assert to_source(f"<{tag}>x</{tag}>kept", cloze=False) == "kept"


def test_a_deck_past_the_source_size_limit_is_split_into_numbered_files(tmp_path, monkeypatch):
    import deckbuild.importer

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(deckbuild.importer, "_FILE_BUDGET", 100)  # the 10 MiB limit, scaled down
    name = text_export(*(f"g{n}\tBasic\tquestion {n}\tanswer {n}" for n in range(12)))
    result = run("import", name)
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in Path("decks/notes").iterdir())
    assert files == sorted(["cards.txt", *(f"cards-{k}.txt" for k in range(2, 7))])  # two rows each
    assert all(len(Path("decks/notes", f).read_bytes()) <= 100 for f in files)
    assert run("build", "decks", "-o", "dist").exit_code == 0
    assert _packaged_guids(Path("dist")) == {f"g{n}" for n in range(12)}


def test_notes_the_build_refuses_are_left_out_by_guid_with_its_reason(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = text_export(
        "g1\tBasic\tWeb text\t" + "<b>w</b> " * 150,
        "g2\tBasic\tq\t\\(\\def\\R{x}\\R\\)",
        "g3\tBasic\tfine\tkept",
    )
    result = run("import", name)
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "decks: warning: 2 note(s) left out, as the build would refuse them\n"
        "decks: warning: note g1 left out: the build refuses it: field has too much markup for Markdown "
        "(300 of [ ` < ~ in 1,349 characters; the two multiplied may be at most 400,000); "
        "shorten or split it\n"
        "decks: warning: note g2 left out: the build refuses it: formula \\(\\def\\R{x}\\R\\) uses \\def, "
        "which MathJax turns into a macro, which can build any command out of harmless pieces; "
        "write the formula out in full\n"
        f"{TEXT_EXPORT_TYPES.format(name=name)}\n"
        "0 error(s), 4 warning(s)\n"
    )
    assert result.stdout.endswith("1 note(s) imported into 1 file(s), 0 image(s)\n")
    assert run("build", "decks", "-o", "dist").exit_code == 0


@functools.cache
def _small_package() -> bytes:
    """A real package of a few notes: a text export imported, then built."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "notes.txt").write_text(
            "#separator:tab\n#html:true\n#guid column:1\n#notetype column:2\n#deck column:3\n"
            "g1\tBasic\tTop\tq1\ta1\ng2\tCloze\tTop::Sub\t{{c1::x}} y\textra\n",
            encoding="utf-8",
        )
        assert run("import", str(folder / "notes.txt"), "-o", str(folder / "decks")).exit_code == 0
        assert run("build", str(folder / "decks"), "-o", str(folder / "dist")).exit_code == 0
        return next((folder / "dist").glob("*.apkg")).read_bytes()


MANGLED = st.one_of(
    st.just("[" * 100_000 + "]" * 100_000),
    st.just('{"1": ' * 50_000 + "1" + "}" * 50_000),
    st.sampled_from(["abc", "", "null", "1", "[]", '{"x": 1}', '{"1": {"name": []}}', "\x00", "9" * 5000]),
    st.recursive(
        st.none() | st.integers() | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
        max_leaves=8,
    ).map(json.dumps),
)


@given(
    st.sampled_from(["col.models", "col.decks", "notes.mid", "notes.flds", "notes.guid", "media"]), MANGLED
)
def test_a_mangled_collection_is_not_an_anki_package_never_a_traceback(tmp_path_factory, where, value):
    import sqlite3

    folder = tmp_path_factory.mktemp("mangled")
    with zipfile.ZipFile(io.BytesIO(_small_package())) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    name = next(n for n in ("collection.anki21", "collection.anki2") if n in entries)
    if where == "media":
        entries["media"] = value.encode("utf-8")
    else:
        (folder / "c.db").write_bytes(entries[name])
        table, column = where.split(".")
        with sqlite3.connect(folder / "c.db") as conn:
            conn.execute(f"UPDATE {table} SET {column} = ?", (value,))
        conn.close()
        entries[name] = (folder / "c.db").read_bytes()
    with zipfile.ZipFile(folder / "deck.apkg", "w") as archive:
        for entry, data in entries.items():
            archive.writestr(entry, data)
    result = run("import", str(folder / "deck.apkg"), "-o", str(folder / "decks"))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    if result.exit_code:
        assert result.stderr.splitlines()[-1].startswith("error: "), result.stderr
        assert not (folder / "decks").exists()


def add_note(col, kind: str, deck: str, *fields: str):
    """Add a note of note type `kind` with `fields` to `deck` (made if new); return it."""
    note = col.new_note(col.models.by_name(kind))
    for n, text in enumerate(fields):
        note.fields[n] = text
    col.add_note(note, col.decks.id(deck))
    return note


def _rename_note_type(apkg: Path, old: str, new: str) -> None:
    """Rename a note type inside a package's collection, as another Anki or a tool may have."""
    import sqlite3

    with zipfile.ZipFile(apkg) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    name = next(n for n in ("collection.anki21", "collection.anki2") if n in entries)
    db = apkg.with_suffix(".db")
    db.write_bytes(entries[name])
    with sqlite3.connect(db) as conn:
        models = json.loads(conn.execute("SELECT models FROM col").fetchone()[0])
        for model in models.values():
            if model["name"] == old:
                model["name"] = new
        conn.execute("UPDATE col SET models = ?", (json.dumps(models),))
    conn.close()
    entries[name] = db.read_bytes()
    with zipfile.ZipFile(apkg, "w") as archive:
        for entry, data in entries.items():
            archive.writestr(entry, data)


@pytest.mark.anki
def test_note_types_sharing_a_name_are_told_apart_by_id(tmp_path, collection, monkeypatch):
    models = collection.models
    swapped = models.copy(models.by_name("Basic"), add=False)
    swapped["name"] = "Swapped"
    models.add(swapped)
    swapped = models.by_name("Swapped")
    models.reposition_field(swapped, swapped["flds"][1], 0)  # Back first: the question is field 2
    models.save(swapped)
    typed = models.copy(models.by_name("Basic (type in the answer)"), add=False)
    typed["name"] = "Typed"
    models.add(typed)
    deck = collection.decks.id("Biology")
    for kind, fields in [
        ("Basic", ["Q-stock", "A-stock"]),
        ("Swapped", ["A-two", "Q-two"]),
        ("Typed", ["q", "a"]),
    ]:
        note = collection.new_note(models.by_name(kind))
        note.fields[0], note.fields[1] = fields
        collection.add_note(note, deck)
    apkg = export(collection, tmp_path / "Biology.apkg")
    _rename_note_type(apkg, "Swapped", "Basic")
    _rename_note_type(apkg, "Typed", "Basic")
    monkeypatch.chdir(tmp_path)
    result = run("import", str(apkg))
    assert result.exit_code == 0, result.output
    rows = Path("decks/Biology/cards.txt").read_text(encoding="utf-8").splitlines()
    assert [split_record([r], 0)[0][:2] for r in rows[1:]] == [["Q-stock", "A-stock"], ["Q-two", "A-two"]]
    typed_id = models.by_name("Typed")["id"]
    assert (
        f"Biology.apkg: warning: note type 'Basic (id {typed_id})': 1 note(s) not imported: "
        "its templates are not a plain front/back card, reversed or not"
    ) in result.stderr.splitlines()


@pytest.mark.anki
def test_a_reversed_note_with_cards_in_two_decks_goes_to_its_first_cards_deck(
    tmp_path, collection, monkeypatch
):
    note = add_note(collection, "Basic (and reversed card)", "Biology", "cell", "die Zelle")
    reverse = next(c for c in note.cards() if c.ord == 1)
    collection.set_deck([reverse.id], collection.decks.id("Biology::Cells"))
    add_note(collection, "Basic", "Biology::Cells", "q", "a")
    apkg = export(collection, tmp_path / "Biology.apkg")
    monkeypatch.chdir(tmp_path)
    result = run("import", str(apkg))
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"Biology.apkg: warning: note {note.guid}: its cards are in 2 decks; all go to 'Biology'\n"
        "0 error(s), 1 warning(s)\n"
    )
    assert "cell;die Zelle" in Path("decks/Biology/cards.txt").read_text(encoding="utf-8")


def test_a_fifo_or_device_is_refused_never_opened(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.mkfifo("f.apkg")  # opening it to read would wait for a writer forever
    for path, kind in [("f.apkg", "a FIFO"), ("/dev/zero", "a character device")]:
        result = run("import", path)
        assert (result.exit_code, result.stderr) == (
            1,
            f"error: {path}: cannot read it (not a regular file but {kind}); give the file Anki exported\n",
        )
    assert not Path("decks").exists()


def test_an_empty_working_folder_takes_the_import(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = text_export("g1\tBasic\tq\ta")
    Path("here").mkdir()
    monkeypatch.chdir("here")
    result = run("import", f"../{name}", "-o", ".")
    assert result.exit_code == 0, result.output
    assert sorted(p.as_posix() for p in Path().rglob("*")) == ["notes", "notes/cards.txt"]
    assert Path.cwd().is_dir() and Path.cwd() == tmp_path / "here"
    assert run("build", ".", "-o", "../dist").exit_code == 0


def test_an_import_unpacks_beside_its_output_and_leaves_nothing_there(tmp_path, monkeypatch):
    import deckbuild.importer

    monkeypatch.chdir(tmp_path)
    seen = []
    real = deckbuild.importer.read_text_export

    def spy(path):
        seen.extend(p.name for p in Path("out").iterdir() if p.name.startswith(".deckbuild-"))
        return real(path)

    monkeypatch.setattr(deckbuild.importer, "read_text_export", spy)
    Path("out").mkdir()
    assert run("import", text_export("g1\tBasic\tq\ta"), "-o", "out/decks").exit_code == 0
    assert len(seen) == 1  # the unpacking folder sits beside the output, not in /tmp
    assert sorted(p.name for p in Path("out").iterdir()) == ["decks"]


@pytest.mark.anki
def test_a_subdeck_named_like_an_image_beside_it_gets_its_folder(tmp_path, collection, monkeypatch):
    image = tmp_path / "x.png"
    image.write_bytes(PNG)
    stored = collection.media.add_file(str(image))
    for deck, front in [("Biology", f'Look: <img src="{stored}">'), ("Biology::x.png", "sub")]:
        add_note(collection, "Basic", deck, front, "back")
    apkg = export(collection, tmp_path / "Biology.apkg")
    monkeypatch.chdir(tmp_path)
    result = run("import", str(apkg))
    assert result.exit_code == 0, result.output
    assert f"Biology.apkg: warning: media file {stored!r} is written as 'x-2.png' (a safe, free name)" in (
        result.stderr.splitlines()
    )
    assert Path("decks/Biology/x.png/cards.txt").is_file()
    assert Path("decks/Biology/x-2.png").read_bytes() == PNG
    assert run("build", "decks", "-o", "dist").exit_code == 0


SPACE_PIECES = [
    "\u00a0",
    "\u3000",
    "\u2003",
    "&nbsp;",
    "x",
    " ",
    "<br>",
    "<div>",
    "</div>",
    "<b>",
    "</b>",
    "<li>",
]


@given(st.lists(st.sampled_from(SPACE_PIECES), max_size=20).map("".join))
def test_no_break_and_ideographic_spaces_survive_wherever_they_stand(markup):
    from deckbuild.errors import Report
    from deckbuild.render import Where, render_text

    source = to_source(markup, cloze=False)
    rendered = html.unescape(render_text(source, Where("x.txt", 1), Report()))
    shown = html.unescape(re.sub(r"<[^>]*>", "", markup))
    for space in "\u00a0\u3000\u2003":
        assert rendered.count(space) == shown.count(space), (source, rendered)


@pytest.mark.parametrize(
    ("markup", "items"),
    [
        ('<ol start="5"><li>x</li><li>y</li></ol>', '<ol start="5">'),
        ("<ol><li>a<ol start=3><li>b</li></ol></li></ol>", '<ol start="3">'),
    ],
)
def test_an_ordered_list_keeps_its_first_number(markup, items):
    from deckbuild.errors import Report
    from deckbuild.render import Where, render_text

    assert items in render_text(to_source(markup, cloze=False), Where("x.txt", 1), Report())


@pytest.mark.anki
def test_a_renamed_deck_leaves_learners_cards_where_they_were_beside_a_new_empty_deck(
    tmp_path, collection, monkeypatch
):
    add_note(collection, "Basic", "Biology::a/b", "q", "a")
    study_all(collection)
    apkg = export(collection, tmp_path / "Biology.apkg")
    monkeypatch.chdir(tmp_path)
    result = run("import", str(apkg))
    assert "Biology.apkg: warning: deck 'Biology::a/b' is written as folder 'Biology/a_b'" + NEW_DECK in (
        result.stderr.splitlines()
    )
    assert run("build", "decks", "-o", "dist").exit_code == 0
    before = card_states(collection)
    import_package(collection, tmp_path / "dist/Biology.apkg")
    assert card_states(collection) == before  # the studied card stays in 'Biology::a/b'
    renamed = collection.decks.by_name("Biology::a_b")
    assert renamed is not None and not collection.find_cards(f"did:{renamed['id']}")


TYPE_IN = "notes.txt: warning: note type 'Basic (type in the answer)': 1 note(s) not imported: "
STOCK_ONLY = "deckbuild knows only Anki's stock note types by name in a text export\n"


@pytest.mark.parametrize(
    ("rows", "warnings"),
    [
        (
            ["g1\tImage Occlusion\tq\ta", "g2\tImage Occlusion\tq2\ta2"],
            "notes.txt: warning: note type 'Image Occlusion': 2 note(s) not imported: " + STOCK_ONLY,
        ),
        (
            ["g1\tBasic (type in the answer)\tq\ta", "g2\tBasic\t\t"],
            TYPE_IN
            + STOCK_ONLY
            + "notes.txt: warning: note type 'Basic': 1 note(s) not imported: its question is empty\n",
        ),
    ],
)
def test_an_export_with_no_note_deckbuild_can_represent_says_why_and_writes_nothing(
    tmp_path, monkeypatch, rows, warnings
):
    monkeypatch.chdir(tmp_path)
    result = run("import", text_export(*rows))
    assert (result.exit_code, result.stderr) == (
        1,
        warnings + "error: notes.txt: holds no note deckbuild can represent (the warnings say why); "
        "nothing was written\n",
    )
    assert not Path("decks").exists()
    assert not list(Path().glob(".deckbuild-*"))  # nor anything unpacked beside it


_FIELD_PIECES = st.sampled_from(
    [" ", "\t", "\n", "<br>", "<BR/>", "<br />", "<div>", "</div>", "<DIV>", "&nbsp;", "\u200b", "\xa0",
     "<b> </b>", "<p></p>", "\u3000", "x", "<img src=a.png>", "<span></span>"]
)  # fmt: skip


@functools.lru_cache(maxsize=1)
def _optional_reversed():
    from anki.collection import Collection

    col = Collection(os.path.join(tempfile.mkdtemp(), "judge.anki2"))
    return col, col.models.by_name("Basic (optional reversed card)")


@given(st.lists(_FIELD_PIECES, max_size=4).map("".join))
def test_an_add_reverse_field_gives_a_reverse_card_exactly_when_anki_makes_one(value):
    # Anki is the judge: the note it makes has a second card exactly when the import writes Reverse.
    from deckbuild.importer import _filled

    col, model = _optional_reversed()
    note = col.new_note(model)
    note["Front"], note["Back"], note["Add Reverse"] = "f", "b", value
    col.add_note(note, col.decks.id("Default"))
    assert _filled(value) == (len(note.cards()) == 2), repr(value)


def test_a_package_deckbuild_built_is_not_read_back_into_sources(tmp_path, monkeypatch):
    from conftest import put

    put(
        tmp_path / "decks",
        "Deck/cards.txt",
        "Question;Answer;UUID\nQ?;A.;aaaaaaaa-0000-4000-8000-000000000001\n",
    )
    monkeypatch.chdir(tmp_path)
    assert run("build", "decks", "-o", "dist").exit_code == 0
    result = run("import", "dist/Deck.apkg", "-o", "again")
    assert (result.exit_code, result.stderr) == (
        1,
        "error: dist/Deck.apkg: a package deckbuild built, whose cards' sources are the files it was "
        "built from; build from those (kept in git); import only decks made in Anki\n",
    )
    assert not Path("again").exists()


def test_a_tag_deckbuild_sets_itself_is_left_out_and_its_note_comes_along(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    headers = "#separator:tab\n#html:true\n#guid column:1\n#notetype column:2\n#tags column:5\n"
    text_export("g1\tBasic\tCell?\tA unit of life.\tbio source::textbook Kind::x", headers=headers)
    result = run("import", "notes.txt", "-o", "out")
    assert result.exit_code == 0, result.output
    assert (
        "notes.txt: warning: tags deckbuild sets itself left out of the Tags column: Kind::x ×1, "
        "source::textbook ×1; each card gets its own kind:: and source:: tags (rename yours in Anki "
        "first to keep them)"
    ) in result.stderr.splitlines()
    assert (
        Path("out/notes/cards.txt").read_text(encoding="utf-8").splitlines()[1]
        == "Cell?;A unit of life.;g1;bio"
    )
    assert run("build", "out", "-o", "dist").exit_code == 0
