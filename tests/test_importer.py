"""deckbuild import: an Anki deck becomes sources that build back into the same notes, same GUIDs."""

from __future__ import annotations

import html
import re
import time
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
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


@pytest.mark.anki
def test_a_studied_deck_moves_to_deckbuild_and_back_with_every_guid_and_review(
    tmp_path, collection, monkeypatch
):
    guids = make_studied_collection(collection, tmp_path)
    before = card_states(collection)
    original = {cid: shown(collection, cid) for cid in collection.find_cards("")}
    apkg = export(collection, tmp_path / "Biology.apkg")
    monkeypatch.chdir(tmp_path)

    result = run("import", str(apkg), "-o", "decks")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "7 note(s) imported into 2 file(s), 1 image(s)"
    assert "<script> ×1" in result.stderr
    assert (tmp_path / "decks/Biology/Cells/cards.txt").exists()
    built = run("build", "decks", "-o", "dist")
    assert built.exit_code == 0, built.output
    package = tmp_path / "dist/Biology.apkg"

    # A learner who had the deck imports the rebuilt package on top of what they studied.
    log = import_package(collection, package)
    assert (log.new, log.duplicate) == (0, 0)
    assert log.conflicting == 7  # the note type changed: Anki keeps the learner's note as it is
    assert len(notes_by_guid(collection)) == 7
    assert card_states(collection) == before

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
def test_after_changing_the_note_type_once_an_edit_updates_in_place(tmp_path, collection, monkeypatch):
    make_studied_collection(collection, tmp_path)
    apkg = export(collection, tmp_path / "Biology.apkg")
    monkeypatch.chdir(tmp_path)
    assert run("import", str(apkg)).exit_code == 0
    assert run("build", "decks", "-o", "v1").exit_code == 0
    import_package(collection, tmp_path / "v1/Biology.apkg")
    # The learner's one step: Browse, select the deck's notes, Notes > Change Note Type.
    pairs = [("Basic", "deckbuild card"), ("Basic (and reversed card)", "deckbuild card and reversed")]
    for old, new in [*pairs, ("Cloze", "deckbuild cloze")]:
        old_id, new_id = collection.models.id_for_name(old), collection.models.id_for_name(new)
        info = collection.models.change_notetype_info(old_notetype_id=old_id, new_notetype_id=new_id)
        request = info.input
        request.note_ids.extend(collection.models.nids(old_id))
        collection.models.change_notetype_of_notes(request)
    before = card_states(collection)
    source = tmp_path / "decks/Biology/cards.txt"
    source.write_text(
        source.read_text(encoding="utf-8").replace("die Zelle", "die Zelle (f)"), encoding="utf-8"
    )
    # The author's edit comes later than the learner's change of note type (which stamps the notes).
    build([tmp_path / "decks"], tmp_path / "v2", now=int(time.time()) + 60)
    log = import_package(collection, tmp_path / "v2/Biology.apkg")
    assert (log.new, log.conflicting, log.updated, log.duplicate) == (0, 0, 1, 6)  # only the edited note
    assert card_states(collection) == before
    assert any("die Zelle (f)" in n["Back"] for n in notes_by_guid(collection).values() if "Back" in n)


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
        ("a *b* `c` $5 \\d", "a \\*b\\* \\`c\\` \\$5 \\\\d"),
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
