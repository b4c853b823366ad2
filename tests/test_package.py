"""Packages are reproducible: same sources and lock, same bytes, wherever they are built."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from conftest import put, seed
from deckbuild.build import build
from deckbuild.notetype import FIELDS
from deckbuild.package import DeckData, NoteData, PackageRefused, write_package

NOW = 1_750_000_000


def test_two_builds_give_the_same_bytes(deck_tree, tmp_path):
    put(deck_tree, "Deck/003.txt", seed("003"))
    first = build([deck_tree], tmp_path / "a", now=NOW).packages[0]
    second = build([deck_tree], tmp_path / "b", now=NOW + 999).packages[0]
    assert first.read_bytes() == second.read_bytes()


def test_the_same_tree_elsewhere_gives_the_same_bytes(deck_tree, tmp_path):
    put(deck_tree, "Deck/003.txt", seed("003"))
    first = build([deck_tree], tmp_path / "a", now=NOW).packages[0]
    elsewhere = tmp_path / "elsewhere" / "other-name"
    shutil.copytree(deck_tree, elsewhere)
    second = build([elsewhere], tmp_path / "b", now=NOW + 5).packages[0]
    assert first.read_bytes() == second.read_bytes()


def test_zip_entries_are_fixed_in_time_sorted_and_compressed(deck_tree, tmp_path):
    put(deck_tree, "Deck/003.txt", seed("003"))
    apkg = build([deck_tree], tmp_path / "out", now=NOW).packages[0]
    with zipfile.ZipFile(apkg) as z:
        infos = z.infolist()
    assert [i.filename for i in infos] == ["collection.anki2", "media"]
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in infos)
    assert infos[0].compress_size < infos[0].file_size / 2


def test_the_collection_has_the_schema_and_indexes_genanki_writes(deck_tree, tmp_path):
    import sqlite3

    import genanki

    put(deck_tree, "Deck/003.txt", seed("003"))
    apkg = build([deck_tree], tmp_path / "out", now=NOW).packages[0]
    ours = tmp_path / "ours.anki2"
    ours.write_bytes(zipfile.ZipFile(apkg).read("collection.anki2"))
    reference = sqlite3.connect(":memory:")
    reference.executescript(genanki.apkg_schema.APKG_SCHEMA)
    query = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
    with sqlite3.connect(ours) as db:
        assert db.execute(query).fetchall() == reference.execute(query).fetchall()
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT COUNT(*) FROM notes").fetchone() == (57,)


def test_the_notes_and_cards_are_the_rows_genanki_writes_for_the_same_notes(deck_tree, tmp_path):
    # Built in bulk with what every row shares written into the SQL: genanki's own per-note loop
    # on the same notes (one mod for all in a first build) gives the same rows, ids included.
    import itertools
    import sqlite3

    import genanki

    from deckbuild.notetype import NOTE_TYPES

    put(deck_tree, "Deck/003.txt", seed("003"))
    put(deck_tree, "Deck/More/quiz.txt", seed("001"))
    put(
        deck_tree,
        "Deck/Kinds/cards.txt",
        "Question;Answer;Reverse;UUID\n"
        "Capital of France?;Paris;yes;22222222-2222-4222-8222-222222222222\n"
        "What is softmax?;A normalised exponential;;33333333-3333-4333-8333-333333333333\n"
        "{{c2::Paris}} is in {{c1::France}};;;44444444-4444-4444-8444-444444444444\n",
    )
    apkg = build([deck_tree], tmp_path / "out", now=NOW).packages[0]
    ours = sqlite3.connect(":memory:")
    ours.deserialize(zipfile.ZipFile(apkg).read("collection.anki2"))
    (col_decks,) = ours.execute("SELECT decks FROM col").fetchone()
    names = {int(k): v["name"] for k, v in json.loads(col_decks).items()}
    decks: dict[str, genanki.Deck] = {}
    for guid, mid, flds, tags, did in ours.execute(
        "SELECT guid, mid, flds, tags, (SELECT MIN(did) FROM cards WHERE nid = n.id) FROM notes n ORDER BY id"
    ):
        nt = NOTE_TYPES[mid]
        model = genanki.Model(
            nt.id, nt.name, fields=[{"name": n} for n in nt.fields],
            templates=[dict(t) for t in nt.templates], css=nt.css, sort_field_index=nt.sort_field,
            model_type=genanki.Model.CLOZE if nt.cloze else genanki.Model.FRONT_BACK,
        )  # fmt: skip
        deck = decks.setdefault(names[did], genanki.Deck(did, names[did]))
        deck.add_note(genanki.Note(model=model, fields=flds.split("\x1f"), guid=guid, tags=tags.split()))
    reference = sqlite3.connect(":memory:")
    genanki.Package(list(decks.values())).write_to_db(reference.cursor(), NOW, itertools.count(NOW * 1000))
    for table in ("notes", "cards"):
        rows = f"SELECT * FROM {table} ORDER BY id"
        assert ours.execute(rows).fetchall() == reference.execute(rows).fetchall()
    kinds = ours.execute("SELECT COUNT(*), COUNT(DISTINCT nid), COUNT(DISTINCT ord) FROM cards").fetchone()
    assert kinds[0] > kinds[1] and kinds[2] == 2  # a reversed note and a cloze's second card are there


GUID = "11111111-1111-4111-8111-111111111111"
REFUSED_TAIL = (
    "; Anki would refuse or change these, so nothing was written and the previous package stays (a damaged "
    "cache or lock file can cause this: build again with --no-cache, or check the lock file)"
)


def _note(fields=None, tags=("kind::basic",)):
    return NoteData(
        GUID, fields if fields is not None else ["Q", "A", *[""] * (len(FIELDS) - 2)], tags, 5, "d"
    )


@pytest.mark.parametrize(
    ("deck", "note", "fault"),
    [
        ("D", _note(["Q", "A"]), f"note {GUID} in deck 'D': it has 2 fields, the note type has 15"),
        ("D", _note(["Q", *[""] * 13]), f"note {GUID} in deck 'D': it has 14 fields, the note type has 15"),
        (
            "D",
            _note(["Q\x1fA", *[""] * 14]),
            f"note {GUID} in deck 'D': the field Front holds U+001F (Anki's field separator)",
        ),
        (
            "D",
            _note(["Q", "A\x00", *[""] * 13]),
            f"note {GUID} in deck 'D': the field Back holds the control character U+0000",
        ),
        (
            "D",
            _note(["Q", "A", "\udcff", *[""] * 12]),
            f"note {GUID} in deck 'D': the field Title holds U+DCFF (a lone surrogate, not valid text)",
        ),
        (
            "D",
            _note(tags=("two words",)),
            f"note {GUID} in deck 'D': the tag 'two words' is empty or holds a space or control character",
        ),
        (
            "D",
            _note(tags=("",)),
            f"note {GUID} in deck 'D': the tag '' is empty or holds a space or control character",
        ),
        (
            "D",
            _note(tags=("a\x1fb",)),
            f"note {GUID} in deck 'D': the tag 'a\\x1fb' is empty or holds a space or control character",
        ),
        ("D\x01", _note(), "deck 'D\\x01': the name holds the control character U+0001"),
        ("D::::E", _note(), "deck 'D::::E': the name has an empty part"),
    ],
)
def test_the_gate_refuses_a_note_anki_would_refuse_and_keeps_the_old_package(tmp_path, deck, note, fault):
    target = tmp_path / "Deck.apkg"
    write_package(target, [DeckData("D", [_note()])], 1)
    before = target.read_bytes()
    with pytest.raises(PackageRefused) as info:
        write_package(target, [DeckData(deck, [note])], 1)
    assert str(info.value) == f"Deck.apkg: {fault}{REFUSED_TAIL}"
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["Deck.apkg"], "no temporary file is left behind"


@given(st.lists(st.text(":ab", min_size=1, max_size=7), min_size=1, max_size=3))
@example([":"])
@example(["a:::b", "a:::"])
@example(["a::::b"])
def test_the_gate_passes_a_tag_exactly_when_anki_keeps_it_as_it_is(tags):
    # Anki itself is the judge: the tags it keeps, the gate passes; those it renames (an empty
    # part of the hierarchy becomes "blank"), the gate refuses, and says so.
    import tempfile

    from anki.collection import Collection

    from ankihelp import import_package, notes_by_guid

    tags = list(dict.fromkeys(tags))
    with tempfile.TemporaryDirectory() as temp:
        target = Path(temp) / "Deck.apkg"
        try:
            write_package(target, [DeckData("D", [_note(tags=tuple(tags))])], 1)
        except PackageRefused as refused:
            (bad,) = [t for t in tags if "" in t.split("::")][:1]
            assert f"the tag {bad!r} has an empty part between '::'" in str(refused)
            written = False
        else:
            written = True
        # What Anki makes of the same tags, from a package written without the gate.
        col = Collection(str(Path(temp) / "c.anki2"))
        try:
            note = col.new_note(col.models.by_name("Basic"))
            note["Front"] = "Q"
            note.tags = tags
            col.add_note(note, col.decks.id("D"))
            kept = sorted(col.get_note(note.id).tags) == sorted(tags)
            if written:
                import_package(col, target)
                assert sorted(notes_by_guid(col)[GUID].tags) == sorted(tags)
        finally:
            col.close()
        assert written == kept


def test_the_gate_names_ten_faults_and_counts_the_rest(tmp_path):
    notes = [NoteData(f"g{i}", ["Q"], (), 5, "d") for i in range(12)]
    with pytest.raises(PackageRefused) as info:
        write_package(tmp_path / "Deck.apkg", [DeckData("D", notes)], 1)
    message = str(info.value)
    assert message.count("it has 1 fields") == 10 and "; and 2 more; Anki would refuse" in message


def _zipfile_bytes(entries):
    """The archive zipfile itself writes for `entries`, its deflating done by ISA-L as a package's is."""
    import io

    from isal import isal_zlib

    from deckbuild.package import LEVEL, _add

    def compressor(compress_type, compresslevel=None):
        assert compress_type == zipfile.ZIP_DEFLATED
        return isal_zlib.compressobj(LEVEL, isal_zlib.DEFLATED, -15)

    buffer = io.BytesIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(zipfile, "_get_compressor", compressor)
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as out:
            for name, data in entries:
                _add(out, name, data)
    return buffer.getvalue()


@given(
    st.lists(
        st.tuples(
            st.text(min_size=1, max_size=20).filter(lambda n: "\x00" not in n),
            st.one_of(st.binary(max_size=3000), st.binary(max_size=30).map(lambda b: b * 500)),
        ),
        max_size=5,
        unique_by=lambda entry: entry[0],
    )
)
def test_a_package_is_zipped_to_the_bytes_zipfile_writes(entries):
    # The archive is written by hand so that compressing is one call in a thread: any entries of
    # up to a piece (package.PIECE), names (non-ASCII ones are left to zipfile) and data alike,
    # give zipfile's records around the same deflated bytes.
    from deckbuild.package import zip_bytes

    assert zip_bytes(entries) == _zipfile_bytes(entries)


def test_an_archive_of_zip64_size_is_left_to_zipfile_and_zlib(monkeypatch):
    # Past a gigabyte an archive needs ZIP64 records, which deckbuild does not write itself.
    import io

    from deckbuild import package

    entries = [("collection.anki2", b"notes " * 5000), ("media", b"{}"), ("0", b"\x89PNG")]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as out:
        for name, data in entries:
            package._add(out, name, data)
    monkeypatch.setattr(package, "_ZIP64_AT", 1)  # a gigabyte, as far as the test is concerned
    archive = package.zip_bytes(entries)
    assert archive == buffer.getvalue()
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        assert [(info.filename, z.read(info)) for info in z.infolist()] == entries


@given(
    st.one_of(st.binary(max_size=5000), st.binary(min_size=1, max_size=40).map(lambda b: b * 400)),
    st.integers(1, 2000),
)
def test_an_entry_deflated_in_pieces_inflates_to_itself_the_same_bytes_on_any_number_of_cores(data, piece):
    import zlib

    from isal import isal_zlib

    from deckbuild import package

    packed = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(package, "PIECE", piece)
        for cores in (1, 2, 3, 16):
            patch.setattr(package.os, "cpu_count", lambda cores=cores: cores)
            packed.append(package.deflate(data))
    assert len(set(packed)) == 1
    inflating = zlib.decompressobj(-15)  # one stream, ended where the bytes end
    assert inflating.decompress(packed[0]) + inflating.flush() == data
    assert inflating.eof and inflating.unused_data == b""
    if len(data) <= piece:  # one piece: one stream, as ISA-L writes it
        assert packed[0] == isal_zlib.compress(data, package.LEVEL, -15)


def test_anki_imports_a_collection_deflated_in_pieces(collection, tmp_path, monkeypatch):
    from ankihelp import import_package, notes_by_guid
    from deckbuild import package

    monkeypatch.setattr(package, "PIECE", 16 * 1024)
    notes = [_note([f"Question {n} " * 8, f"Answer {n} " * 8, *[""] * (len(FIELDS) - 2)]) for n in range(400)]
    notes = [note._replace(guid=f"guid{n}") for n, note in enumerate(notes)]
    apkg = tmp_path / "Deck.apkg"
    write_package(apkg, [DeckData("Deck", notes)], 1)
    with zipfile.ZipFile(apkg) as z:
        assert z.getinfo("collection.anki2").file_size > 8 * package.PIECE
    assert import_package(collection, apkg).new == 400
    found = notes_by_guid(collection)
    assert {guid: list(note.fields[:2]) for guid, note in found.items()} == {
        note.guid: list(note.fields[:2]) for note in notes
    }


def test_a_build_compresses_the_seeds_to_the_bytes_zipfile_writes(deck_tree, tmp_path):
    put(deck_tree, "Deck/003.txt", seed("003"))
    put(deck_tree, "Deck/More/quiz.txt", seed("001"))
    apkg = build([deck_tree], tmp_path / "out", now=NOW).packages[0]
    with zipfile.ZipFile(apkg) as z:
        entries = [(info.filename, z.read(info)) for info in z.infolist()]
    assert apkg.read_bytes() == _zipfile_bytes(entries)


def test_packaging_gives_back_the_switch_interval_it_lowers_while_it_compresses(tmp_path):
    import sys

    before = sys.getswitchinterval()
    write_package(tmp_path / "Deck.apkg", [DeckData("D", [_note()])], 1)
    assert sys.getswitchinterval() == before
    with pytest.raises(PackageRefused):
        write_package(tmp_path / "Deck.apkg", [DeckData("D", [_note(["Q\x00", *[""] * 14])])], 1)
    assert sys.getswitchinterval() == before


def test_a_failure_while_compressing_reaches_whoever_waits_for_the_bytes():
    import sys

    from deckbuild.package import _Zipping

    before = sys.getswitchinterval()
    zipping = _Zipping(lambda: [("collection.anki2", "not bytes")])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        zipping.result()
    assert sys.getswitchinterval() == before


@st.composite
def _keyed_notes(draw):
    from deckbuild.notetype import NOTE_TYPES

    nids = sorted(NOTE_TYPES)
    # Where each note type keeps its Source field, or none (a kept note type has none).
    at = {nid: draw(st.sampled_from([None, *range(len(NOTE_TYPES[nid].fields))])) for nid in nids}
    one = draw(st.sampled_from([None, *nids]))  # every note of one note type, or of any
    notes = []
    for _ in range(draw(st.integers(0, 6))):
        nid = one if one is not None else draw(st.sampled_from(nids))
        width = len(NOTE_TYPES[nid].fields)
        fields = draw(st.lists(st.text(max_size=5), min_size=width, max_size=width))
        guid, mod, digest = draw(st.text(max_size=8)), draw(st.integers(0, 2**40)), draw(st.text(max_size=8))
        notes.append(NoteData(guid, fields, (), mod, digest, draw(st.booleans()), nid))
    return notes, at


@given(_keyed_notes())
def test_a_packages_key_names_its_notes_as_a_note_at_a_time_would(keyed):
    # Made a column at a time for speed: the text must be the one written note by note, so that
    # a package's key (and whether it is written again) is what it always was.
    from deckbuild.build import _field, _note_keys

    notes, at = keyed
    one_by_one = "".join(
        f"\x1c{n.guid}\x1e{n.mod}\x1e{n.suspended:d}\x1e{n.digest}\x1e{_field(n.fields, at[n.notetype])}"
        for n in notes
    )
    assert _note_keys(notes, at) == one_by_one


def test_the_empty_collection_is_what_genanki_writes_with_sqlite_s_own_settings(monkeypatch):
    """Its throwaway file is never flushed to disk, and holds the same bytes for it."""
    import sqlite3

    from deckbuild import package
    from deckbuild.notetype import CLOZE_ID, NOTE_TYPE_ID, REVERSED_ID

    decks = [DeckData("Deck"), DeckData("Deck::Sub", description="Sub-deck <b>here</b>")]
    mods = {NOTE_TYPE_ID: NOW, REVERSED_ID: NOW + 1, CLOZE_ID: NOW + 2}
    fast = package.shell(decks, mods)
    pragmas: list[str] = []

    class Defaults(sqlite3.Connection):
        """A connection that leaves out every PRAGMA, as genanki's own writing does."""

        def execute(self, sql: str, *args: object) -> sqlite3.Cursor:  # type: ignore[override]
            if sql.lstrip().upper().startswith("PRAGMA"):
                pragmas.append(sql)
                return self.cursor()
            return super().execute(sql, *args)  # type: ignore[arg-type]

    connect = sqlite3.connect
    monkeypatch.setattr(package.sqlite3, "connect", lambda path: connect(path, factory=Defaults))
    plain = package.shell(decks, mods)
    assert pragmas, "the shell set its pragmas through execute"
    assert plain.db == fast.db and plain.req == fast.req


@st.composite
def _decks(draw):
    from deckbuild.notetype import BY_LABEL

    decks = []
    for d in range(draw(st.integers(1, 3))):
        one = draw(st.sampled_from([None, *sorted(BY_LABEL)]))  # every note of one note type, or of any
        suspended = draw(st.sampled_from([None, False, True]))  # one queue for the deck, or mixed
        notes = []
        for n in range(draw(st.integers(0, 8))):
            nt = BY_LABEL[one if one is not None else draw(st.sampled_from(sorted(BY_LABEL)))]
            # Empty fields or not: a note may get no card of a template, or none at all.
            text = st.sampled_from(["", "x", "{{c1::a}}", "{{c2::b}} {{c1::a}}"])
            fields = draw(st.lists(text, min_size=len(nt.fields), max_size=len(nt.fields)))
            flag = draw(st.booleans()) if suspended is None else suspended
            tags = draw(st.sampled_from([("t",), ("a", "b::c"), ()]))
            notes.append(NoteData(f"g{d}-{n}", fields, tags, draw(st.integers(1, 2**31)), "h", flag, nt.id))
        decks.append(DeckData(f"Deck{d}", notes))
    return decks


def _spelled(notes, cards):
    """Each deck's cards rows, a span (package._Span) written out row by row as SPAN_SQL makes them."""
    from deckbuild import package

    spelled = []
    for part in cards:
        if isinstance(part, package._Span):
            did, ord_, queue, first, last = part
            part = [(n[0] + 1, n[0], did, ord_, n[3], queue) for n in notes if first <= n[0] <= last]
        spelled.append(part)
    return spelled


@given(_decks())
def test_each_deck_s_cards_are_genanki_s_rule_note_by_note_spans_or_rows(decks):
    # Written out plainly: each note takes the next id, then each of its cards one more, as
    # genanki's loop gives them; a deck's cards as _rows gives them (a span spelled out) match.
    from deckbuild import package
    from deckbuild.notetype import NOTE_TYPES, deck_id

    mods = {nid: 1 for nid in NOTE_TYPES if not NOTE_TYPES[nid].columns}
    req = package.shell(decks, mods).req
    notes, cards, _ = package._rows(decks, req, 1000, "x")
    given_rows = _spelled(notes, cards)
    expected, next_id = [], 1000
    for deck in decks:
        rows = []
        for note in deck.notes:
            nt, nid = NOTE_TYPES[note.notetype], next_id
            if nt.cloze:
                ords = package.cloze_ords(note.fields[0])
            else:
                rules = req[str(nt.id)]
                test = {"any": any, "all": all}
                ords = [o for o, mode, need in rules if test[mode](note.fields[i] for i in need)]
            for ord_ in ords:
                next_id += 1
                rows.append((next_id, nid, deck_id(deck.name), ord_, note.mod, -1 if note.suspended else 0))
            next_id += 1
        if rows:
            expected.append(rows)
    assert given_rows == expected


@given(_decks())
def test_the_rows_of_decks_whose_notes_get_one_card_alike_are_those_the_loop_makes(decks):
    # Such a deck's notes rows are made in C (package._one_card_each); with that turned off,
    # the loop over its notes makes them: every row, card and field count is the same.
    from deckbuild import package
    from deckbuild.notetype import NOTE_TYPES

    mods = {nid: 1 for nid in NOTE_TYPES if not NOTE_TYPES[nid].columns}
    req = package.shell(decks, mods).req
    notes, cards, widths = package._rows(decks, req, 1000, "x")
    fast = package._one_card_each
    package._one_card_each = lambda *args: None
    try:
        looped = package._rows(decks, req, 1000, "x")
    finally:
        package._one_card_each = fast
    assert (notes, _spelled(notes, cards), widths) == (looped[0], _spelled(*looped[:2]), looped[2])
    expected = [
        (n[0], note.guid, note.notetype, note.mod, f" {' '.join(note.tags)} ", "\x1f".join(note.fields))
        for n, note in zip(notes, (note for deck in decks for note in deck.notes), strict=True)
    ]
    assert [row[:6] for row in notes] == expected
    assert [row[6] for row in notes] == [note.fields[0] for deck in decks for note in deck.notes]


@given(_decks())
def test_cards_made_by_sqlite_from_the_notes_are_the_bytes_of_cards_written_row_by_row(decks):
    # A deck whose notes have one card each, alike, has its cards made by one INSERT ... SELECT:
    # the package must be the one that writing each card's row itself gives.
    from deckbuild import package
    from deckbuild.notetype import NOTE_TYPES

    mods = {nid: 1 for nid in NOTE_TYPES if not NOTE_TYPES[nid].columns}
    rows = package._rows

    def row_by_row(*args):
        notes, cards, widths = rows(*args)
        return notes, _spelled(notes, cards), widths

    fast = package.package_bytes(decks, mods, [], None, "x")
    package._rows = row_by_row
    try:
        assert package.package_bytes(decks, mods, [], None, "x") == fast
    finally:
        package._rows = rows


def test_deflating_in_pieces_with_no_thread_to_be_had_gives_the_same_bytes(monkeypatch):
    import threading

    from deckbuild import package

    data = bytes(range(256)) * 20_000  # five pieces
    both = package.deflate(data)

    def refuse(self):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(package.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(threading.Thread, "start", refuse)
    assert package.deflate(data) == both
