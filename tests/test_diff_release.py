"""Releases: a card-level diff, retired cards carried forward, and what a learner's Anki does."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
import time
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from ankihelp import card_states, import_package, notes_by_guid, study_all
from conftest import DATA, put
from deckbuild.build import RETIRED_TAG, build
from deckbuild.cli import cli
from deckbuild.diff import compare, visible, word_diff
from deckbuild.errors import BuildFailed
from deckbuild.packaged import PackageContents, PackagedNote, PackagedNoteType
from deckbuild.packaged import read_package as read_contents

NOW = int(time.time()) - 10_000
KEPT, CHANGED, REMOVED, ADDED = (
    "44444444-4444-4444-8444-444444444444",
    "22222222-2222-4222-8222-222222222222",
    "11111111-1111-4111-8111-111111111111",
    "55555555-5555-4555-8555-555555555555",
)


@pytest.fixture
def tree(deck_tree, monkeypatch):
    source = put(deck_tree, "Deck/cards.txt", DATA / "semicolon" / "two_sections.txt")
    with source.open("a", encoding="utf-8") as handle:
        handle.write(f"What is a key?;An identifier that queries compare against.;{KEPT}\n")
    monkeypatch.chdir(deck_tree.parent)
    return deck_tree


def edit(tree):
    source = tree / "Deck" / "cards.txt"
    text = source.read_text(encoding="utf-8").replace("A square", "The square of x")
    text = text.replace(f"What is 1+1?;2<br>two;{REMOVED}\n", "")
    text += f"What is a value?;The content a query gathers.;{ADDED}\n"
    source.write_text(text, encoding="utf-8")


def run(*args):
    return CliRunner().invoke(cli, list(args), prog_name="deckbuild")


def test_diff_names_exactly_the_added_changed_and_removed_cards(tree, tmp_path):
    build([tree], tmp_path / "v1", now=NOW)
    edit(tree)
    build([tree], tmp_path / "v2", now=NOW + 60, previous=[tmp_path / "v1"])
    result = run("diff", str(tmp_path / "v1"), str(tmp_path / "v2"), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [c["id"] for c in report["added"]] == [ADDED]
    assert [c["id"] for c in report["removed"]] == [REMOVED]
    assert report["changed"] == [
        {"id": CHANGED, "question": "What is \\(x^2\\)?", "fields": ["Back"],
         "diff": {"Back": "«A» → «The» square; The square +«of x»"}},
    ]  # fmt: skip
    assert report["breaking"] == []
    text = run("diff", str(tmp_path / "v1"), str(tmp_path / "v2")).stdout
    assert text.splitlines()[0] == "1 added, 1 changed, 1 removed"
    notes = run("diff", str(tmp_path / "v1"), "decks", "--format", "markdown").stdout
    assert "### Removed\n\n- What is 1+1? (`11111111-1111-4111-8111-111111111111`)" in notes
    assert "search `tag:deckbuild::retired`, select all, and choose Notes → Delete" in notes


def test_a_removed_card_is_retired_and_a_reimport_applies_everything(tree, tmp_path, collection):
    (v1,) = build([tree], tmp_path / "dist", now=NOW).packages
    import_package(collection, v1)
    study_all(collection)
    states = card_states(collection)
    edit(tree)
    result = build([tree], tmp_path / "dist", now=NOW + 60)  # replaces v1, whose notes it reads first
    assert result.report.counts["retired"] == 1
    log = import_package(collection, result.packages[0])

    notes = notes_by_guid(collection)
    assert sorted(notes) == sorted([KEPT, CHANGED, REMOVED, ADDED]), "nothing duplicated or lost"
    assert log.new == 1
    assert RETIRED_TAG in notes[REMOVED].tags
    assert notes[REMOVED]["Status"].startswith("Retired: this card is no longer in the deck.")
    assert notes[REMOVED]["Front"] == "<p>What is 1+1?</p>", "the learner keeps the card's content"
    assert "The square of x" in notes[CHANGED]["Back"]
    assert all(card_states(collection)[cid] == state for cid, state in states.items())
    lock = json.loads((tree / "deckbuild.lock").read_text(encoding="utf-8"))["notes"]
    assert lock[REMOVED]["fields"][0] == "<p>What is 1+1?</p>"


def _cards(col):
    """Each card's deck and queue, by its note's GUID."""
    return {
        (card := col.get_card(cid)).note().guid: (col.decks.name(card.did), card.queue)
        for cid in col.find_cards("")
    }


def test_a_fresh_importer_finds_retired_cards_in_a_retired_subdeck_not_among_new_cards(
    tree, tmp_path, collection
):
    build([tree], tmp_path / "dist", now=NOW)
    edit(tree)
    build([tree], tmp_path / "dist", now=NOW + 60)
    (fresh,) = build([tree], tmp_path / "elsewhere", now=NOW + 120).packages  # no earlier package there
    import_package(collection, fresh)  # Anki's default options: no scheduling imported
    cards = _cards(collection)
    assert cards[REMOVED][0] == "Deck::Retired"
    assert {deck for guid, (deck, _) in cards.items() if guid != REMOVED} == {"Deck"}
    assert collection.find_cards('"deck:Deck" -"deck:Deck::*"') and not collection.find_cards(
        f'"deck:Deck" -"deck:Deck::*" tag:{RETIRED_TAG}'
    ), "studying the deck itself never shows a retired card"
    deck = collection.decks.by_name("Deck::Retired")
    assert "Cards the author removed" in deck["desc"]
    collection.decks.remove([deck["id"]])  # what the deck's description offers
    assert sorted(notes_by_guid(collection)) == sorted([KEPT, CHANGED, ADDED])


def test_a_learner_who_has_a_retired_card_keeps_it_where_it_was_with_its_history(tree, tmp_path, collection):
    (v1,) = build([tree], tmp_path / "dist", now=NOW).packages
    import_package(collection, v1)
    study_all(collection)
    before = _cards(collection)
    edit(tree)
    (v2,) = build([tree], tmp_path / "dist", now=NOW + 60).packages
    import_package(collection, v2)
    after = _cards(collection)
    # Studied once: learning, or (within ten minutes of Anki's 4 am day rollover) learning the next
    # day; either way not new (queue 0), and the same after the import.
    assert before[REMOVED][0] == "Deck" and before[REMOVED][1] != 0
    assert after[REMOVED] == before[REMOVED], "not moved, not reset to new"
    assert RETIRED_TAG in notes_by_guid(collection)[REMOVED].tags


def test_retired_cards_stay_in_every_later_package(tree, tmp_path):
    build([tree], tmp_path / "dist", now=NOW)
    edit(tree)
    build([tree], tmp_path / "dist", now=NOW + 60)
    (later,) = build([tree], tmp_path / "elsewhere", now=NOW + 120).packages
    with zipfile.ZipFile(later) as z:
        (tmp_path / "c.anki2").write_bytes(z.read("collection.anki2"))
    with sqlite3.connect(tmp_path / "c.anki2") as db:
        rows = dict(db.execute("SELECT n.guid, c.queue FROM notes n JOIN cards c ON c.nid = n.id"))
    # Suspended too, for anyone who imports the package with its scheduling.
    assert rows[REMOVED] == -1 and rows[KEPT] == 0


def test_a_card_gone_with_no_earlier_package_is_reported_not_lost(tree, tmp_path):
    build([tree], tmp_path / "v1", now=NOW)
    edit(tree)
    result = run("build", "decks", "-o", str(tmp_path / "v2"))
    assert result.exit_code == 0
    assert (
        f"decks/Deck/cards.txt: warning: card {REMOVED} is gone from the sources, but no earlier package "
        "holds it to retire it; build with --previous pointing at the last release, or, if no learner "
        f"ever had it, run 'deckbuild forget --never-retired {REMOVED}' to drop it"
    ) in result.stderr.splitlines()
    # Forgotten as it is, learners who have it would keep it as a live card.
    refused = run("forget", REMOVED)
    assert (refused.exit_code, refused.stderr) == (
        1,
        f"error: card {REMOVED} was never retired, so learners who have it would keep it as a live "
        "card; build with --previous pointing at the last release to retire it, and forget it once "
        "learners have had a release that retired it (or give --never-retired if no learner ever had "
        "it)\n",
    )
    again = run("build", "decks", "-o", str(tmp_path / "v2"), "--previous", str(tmp_path / "v1"))
    assert again.exit_code == 0 and "1 retired" in again.stdout


def test_forget_in_a_folder_no_build_kept_ids_in_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outside").mkdir()
    result = run("forget", KEPT, "--decks", "outside")
    assert (result.exit_code, result.stderr) == (
        1,
        "error: no deckbuild.lock in outside or a folder above it, so no card to forget; give --decks a "
        "folder or file of a deck tree that was built\n",
    )


def test_forget_drops_a_retired_card_for_good_and_refuses_a_live_one(tree, tmp_path):
    build([tree], tmp_path / "dist", now=NOW)
    edit(tree)
    build([tree], tmp_path / "dist", now=NOW + 60)
    refused = run("forget", KEPT)
    assert refused.exit_code == 1
    assert refused.stderr == f"error: card {KEPT} is still in the sources; remove it there first\n"
    # Whatever the case it is given in, and while no file of the tree fails to read.
    assert (
        run("forget", KEPT.upper()).stderr
        == f"error: card {KEPT.upper()} is still in the sources; remove it there first\n"
    )
    (tree / "Deck" / "broken.txt").write_text('Question;Answer;UUID\nQ;"A"x;' + KEPT + "\n", encoding="utf-8")
    broken = run("forget", REMOVED)
    assert (broken.exit_code, broken.stderr) == (
        1,
        "error: cannot tell which cards are still in the sources while one has an error "
        "(decks/Deck/broken.txt:2: text after a quoted field's closing quote; write a quote inside a "
        "quoted field as \"\", or put the whole field in quotes); run 'deckbuild check', fix it, and "
        "forget then\n",
    )
    # What only rendering finds wrong stops it too.
    (tree / "Deck" / "broken.txt").write_text(
        "Question;Answer;UUID\nQ;\\(\\frac{1}{2\\);" + KEPT.replace("1", "2", 1) + "\n", encoding="utf-8"
    )
    assert run("forget", REMOVED).stderr.startswith(
        "error: cannot tell which cards are still in the sources while one has an error "
        "(decks/Deck/broken.txt:2: "
    )
    (tree / "Deck" / "broken.txt").unlink()
    assert run("forget", REMOVED).stdout == f"forgot {REMOVED}\n"
    result = build([tree], tmp_path / "dist", now=NOW + 120)
    assert "retired" not in result.report.counts
    assert REMOVED not in (tree / "deckbuild.lock").read_text(encoding="utf-8")


def test_a_retired_card_that_comes_back_is_live_again(tree, tmp_path):
    source = tree / "Deck" / "cards.txt"
    original = source.read_text(encoding="utf-8")
    build([tree], tmp_path / "dist", now=NOW)
    edit(tree)
    build([tree], tmp_path / "dist", now=NOW + 60)
    source.write_text(original, encoding="utf-8")
    result = build([tree], tmp_path / "dist", now=NOW + 120)
    lock = json.loads((tree / "deckbuild.lock").read_text(encoding="utf-8"))["notes"]
    assert "fields" not in lock[REMOVED] and lock[REMOVED]["mod"] >= NOW + 120
    assert result.report.counts["retired"] == 1 and "fields" in lock[ADDED], "the added card left again"


ROW = f"What is 1+1?;2<br>two;{REMOVED}\n"


def leave(tree, to=None):
    """Take the row of REMOVED out of Deck/cards.txt, into another file of the tree when `to` is given."""
    source = tree / "Deck" / "cards.txt"
    text = source.read_text(encoding="utf-8")
    assert ROW in text
    source.write_text(text.replace(ROW, ""), encoding="utf-8")
    if to is not None:
        put(tree, to, "Question;Answer;UUID\n" + ROW)


@pytest.mark.parametrize("to", ["Deck/other.txt", "Deck/Sub/other.txt", "Elsewhere/other.txt"])
def test_building_one_file_never_retires_a_card_moved_to_a_file_it_did_not_read(
    tree, tmp_path, collection, to
):
    (v1,) = build([tree], tmp_path / "dist", now=NOW).packages
    import_package(collection, v1)
    study_all(collection)
    states = card_states(collection)
    leave(tree, to)
    one = build([tree / "Deck" / "cards.txt"], tmp_path / "dist", now=NOW + 60)
    assert "retired" not in one.report.counts
    assert one.report.notes == [
        f"decks/Deck/cards.txt: card {REMOVED} moved to a file this build did not read; it stays live there, "
        "and this build's package carries it as last shipped until that file is built"
    ]
    lock = json.loads((tree / "deckbuild.lock").read_text(encoding="utf-8"))["notes"]
    assert "fields" not in lock[REMOVED], "the lock keeps it live"
    import_package(collection, one.packages[0])
    notes = notes_by_guid(collection)
    assert RETIRED_TAG not in notes[REMOVED].tags and notes[REMOVED]["Status"] == ""
    assert card_states(collection) == states
    whole = build([tree], tmp_path / "dist", now=NOW + 120)
    assert "retired" not in whole.report.counts
    assert any(
        n.startswith(f"decks/{to}: 1 card(s) moved here from decks/Deck/cards.txt")
        for n in whole.report.notes
    )


def test_a_card_gone_from_the_file_built_and_from_the_tree_is_retired_after_a_build_that_found_it_moved(
    tree, tmp_path
):
    build([tree], tmp_path / "dist", now=NOW)
    leave(tree, "Deck/other.txt")
    assert (
        "retired" not in build([tree / "Deck" / "cards.txt"], tmp_path / "dist", now=NOW + 60).report.counts
    )
    (tree / "Deck" / "other.txt").unlink()  # the build of the same file, unchanged, must not be replayed
    again = build([tree / "Deck" / "cards.txt"], tmp_path / "dist", now=NOW + 120)
    assert again.report.counts["retired"] == 1
    assert f"decks/Deck/cards.txt: retired card {REMOVED} (What is 1+1?)" in again.report.notes


def test_a_card_moved_then_deleted_before_its_new_file_is_built_is_still_retired(tree, tmp_path):
    # The partial build's package carries it as last shipped: the only copy a later build retires it from.
    (first,) = build([tree], tmp_path / "dist", now=NOW).packages
    shipped = read_contents(first).notes[REMOVED]
    leave(tree, "Other/other.txt")
    (part,) = build([tree / "Deck"], tmp_path / "dist", now=NOW + 60).packages
    assert read_contents(part).notes[REMOVED] == shipped, "carried as it was: learners see no change"
    (tree / "Other" / "other.txt").unlink()
    (tree / "Other").rmdir()
    whole = build([tree], tmp_path / "dist", now=NOW + 120)
    assert whole.report.counts["retired"] == 1
    assert _retired_in(whole.packages) == {REMOVED}


def test_a_card_gone_from_the_file_built_stops_the_build_while_other_files_of_its_tree_have_errors(
    tree, tmp_path
):
    # Not retired, and no package written without it: its last shipped content stays for later.
    build([tree], tmp_path / "dist", now=NOW)
    before = (tmp_path / "dist" / "Deck.apkg").read_bytes()
    leave(tree)
    # The row it was moved to, perhaps, but without its UUID's column: no id can be read there.
    put(tree, "Deck/broken.txt", "Question;Answer;UUID\nWhat is 1+1?;2<br>two\n")
    result = run("build", "decks/Deck/cards.txt", "-o", str(tmp_path / "dist"))
    assert (result.exit_code, result.stderr) == (
        1,
        f"decks/Deck/cards.txt: card {REMOVED} is gone from this file, but a file of the deck tree decks "
        "has errors (first at decks/Deck/broken.txt:2), so it may have moved there; fix them, or build the "
        "whole tree to see them\n"
        "1 error(s), 0 warning(s)\n",
    )
    assert (tmp_path / "dist" / "Deck.apkg").read_bytes() == before
    assert not (tmp_path / "dist" / "Deck-cards.apkg").exists()
    (tree / "Deck" / "broken.txt").unlink()
    assert "1 retired" in run("build", "decks/Deck/cards.txt", "-o", str(tmp_path / "dist")).stdout


FILES = ["Deck/a.txt", "Deck/b.txt", "Deck/Sub/c.txt", "Other/d.txt"]
GUIDS = [f"{n:08x}-0000-4000-8000-{n:012x}" for n in range(1, 9)]


def _write(root, placed):
    """Write each file of FILES with the cards placed in it (a file left with none is removed)."""
    for name in FILES:
        rows = [f"What is card {g[-2:]}?;Card {g[-2:]};{g}\n" for g in GUIDS if placed.get(g) == name]
        if rows:
            put(root, name, "Question;Answer;UUID\n" + "".join(rows))
        elif (root / name).exists():
            (root / name).unlink()
            for folder in (root / name).parents:
                if folder == root or any(folder.iterdir()):
                    break
                folder.rmdir()  # a folder with no source left is gone, as an author would leave it


@given(st.data())
def test_a_partial_build_retires_only_cards_gone_from_the_whole_tree(data):
    before = {g: data.draw(st.sampled_from(FILES), label=f"file of {g[-2:]}") for g in GUIDS}
    after = {
        g: data.draw(st.sampled_from([f, None, *FILES]), label=f"then {g[-2:]}")  # None: deleted
        for g, f in before.items()
    }
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp) / "decks"
        _write(root, before)
        build([root], Path(temp) / "dist", now=NOW)
        _write(root, after)
        present = sorted({f for f in after.values() if f is not None} | {"Deck", "Other", "Deck/Sub"})
        present = [p for p in present if (root / p).exists()]
        built = data.draw(
            st.lists(st.sampled_from(present), min_size=1, max_size=2, unique=True), label="built"
        )
        partial = build([root / b for b in built], Path(temp) / "dist", now=NOW + 60)
        lock = json.loads((root / "deckbuild.lock").read_text(encoding="utf-8"))["notes"]
        retired = {g for g, e in lock.items() if "fields" in e}
        gone = {g for g, f in after.items() if f is None}
        scope = {g for g in gone if any(before[g] == b or before[g].startswith(b + "/") for b in built)}
        assert retired == scope, "only cards gone from the tree, of the files built, are retired"
        assert partial.report.counts.get("retired", 0) == len(scope)
        assert _retired_in(partial.packages) == scope, "a package carries each, even from a folder now empty"
        for apkg in partial.packages:
            for guid, note in read_contents(apkg).notes.items():
                assert (RETIRED_TAG in note.tags) == (guid in gone), f"{guid} in {apkg.name}"
        whole = build([root], Path(temp) / "dist", now=NOW + 120)
        lock = json.loads((root / "deckbuild.lock").read_text(encoding="utf-8"))["notes"]
        assert {g for g, e in lock.items() if "fields" in e} == gone
        assert whole.report.counts.get("retired", 0) == len(gone)
        assert _retired_in(whole.packages) == gone


def _retired_in(packages):
    return {g for apkg in packages for g, n in read_contents(apkg).notes.items() if RETIRED_TAG in n.tags}


def test_a_deck_folder_deleted_whole_ships_its_cards_retired_in_its_own_package(tree, tmp_path, collection):
    put(tree, "Other/cards.txt", "Question;Answer;UUID\n" + ROW.replace(REMOVED, GUIDS[0]))
    first = build([tree], tmp_path / "dist", now=NOW)
    assert sorted(p.name for p in first.packages) == ["Deck.apkg", "Other.apkg"]
    for apkg in first.packages:
        import_package(collection, apkg)
    study_all(collection)
    states = card_states(collection)
    (tree / "Other" / "cards.txt").unlink()
    (tree / "Other").rmdir()
    result = build([tree], tmp_path / "dist", now=NOW + 60)
    assert result.report.counts["retired"] == 1
    assert f"decks/Other/cards.txt: retired card {GUIDS[0]} (What is 1+1?)" in result.report.notes
    other = tmp_path / "dist" / "Other.apkg"
    assert other in result.packages
    import_package(collection, other)
    note = notes_by_guid(collection)[GUIDS[0]]
    assert RETIRED_TAG in note.tags and note["Status"].startswith(
        "Retired: this card is no longer in the deck."
    )
    assert card_states(collection) == states, "the learner keeps its reviews until they delete it"


def test_the_deck_description_shows_the_version_and_notes_link(tree, tmp_path):
    from deckbuild.build import Release

    (apkg,) = build(
        [tree], tmp_path / "d", now=NOW, release=Release("v1.2.0", "https://example.org/n")
    ).packages
    with zipfile.ZipFile(apkg) as z:
        (tmp_path / "c.anki2").write_bytes(z.read("collection.anki2"))
    with sqlite3.connect(tmp_path / "c.anki2") as db:
        (decks,) = db.execute("SELECT decks FROM col").fetchone()
    descriptions = {d["name"]: d["desc"] for d in json.loads(decks).values()}
    assert descriptions["Deck"] == 'Version v1.2.0 · <a href="https://example.org/n">release notes</a>'


def notetype(fields, css="x", mod=1):
    return PackagedNoteType(
        "1", "deckbuild card", tuple(fields), (("Card", "{{Front}}", "{{Back}}"),), css, mod
    )


def side(types, notes):
    return PackageContents({n.guid: n for n in notes}, {t.id: t for t in types})


def note(guid, mid="1", front="Q"):
    return PackagedNote(guid, mid, (front, "A"), (), "Deck", 1)


def test_changed_note_type_fields_and_a_guid_on_another_note_type_are_breaking():
    old = side([notetype(["Front", "Back"])], [note("g1"), note("g2")])
    other = PackagedNoteType("2", "other", ("Front", "Back"), (), "", 1)
    new = side([notetype(["Front", "Back", "Extra"]), other], [note("g1"), note("g2", mid="2")])
    diff = compare(old, new)
    assert diff.breaking == [
        "card g2 moved from note type 1 to 2: Anki refuses that update by default, and with 'merge note "
        "types' empties the note",
        "note type deckbuild card (1) changed its fields from Front, Back to Front, Back, Extra: Anki will "
        "import it as a new note type and skip every existing note as conflicting",
    ]


def test_a_template_change_without_a_newer_mod_is_breaking_and_with_one_is_not():
    old = side([notetype(["Front"], css="a", mod=5)], [])
    assert compare(old, side([notetype(["Front"], css="b", mod=6)], [])).breaking == []
    stale = compare(old, side([notetype(["Front"], css="b", mod=5)], []))
    assert stale.breaking == ["note type deckbuild card changed without a newer mod time"]


def test_release_writes_packages_sums_and_notes_against_the_previous_release(tree, tmp_path):
    assert run("build", "decks").exit_code == 0
    assert run("release", "decks", "-o", "v1", "--release-version", "v1.0.0").exit_code == 0
    edit(tree)
    assert run("build", "decks").exit_code == 0  # dist/ still holds v1's package: the removed card retires
    result = run("release", "decks", "-o", "v2", "--release-version", "v1.1.0", "--previous", "v1")
    assert result.exit_code == 0, result.output
    assert result.stdout == "wrote v2/Deck.apkg\nwrote v2/SHA256SUMS\nwrote v2/RELEASE_NOTES.md\n"
    notes = (tmp_path / "v2" / "RELEASE_NOTES.md").read_text(encoding="utf-8")
    assert notes.startswith("## v1.1.0: what changed\n\n**1 added, 1 changed, 1 removed.**")
    import hashlib

    digest = hashlib.sha256((tmp_path / "v2" / "Deck.apkg").read_bytes()).hexdigest()
    assert (tmp_path / "v2" / "SHA256SUMS").read_text() == f"{digest}  Deck.apkg\n"


def test_release_refuses_a_lock_that_is_not_committed_as_built(tree, tmp_path):
    assert run("build", "decks").exit_code == 0
    result = run("release", "decks", "-o", "out", "--release-version", "v1")
    assert result.exit_code == 0
    edit(tree)
    stale = run("release", "decks", "-o", "out2", "--release-version", "v2")
    assert stale.exit_code == 1
    assert stale.stderr.startswith("error: decks/deckbuild.lock is out of date")


def _wider_note_type(monkeypatch):
    """Make the next packages carry a note type with one more field, as a careless upgrade would."""
    import dataclasses

    from deckbuild import notetype

    wider = dataclasses.replace(notetype.BASIC, fields=(*notetype.FIELDS, "Extra2"))
    wider.__dict__["digest"] = notetype.BASIC.digest  # only the package changes, not the lock
    monkeypatch.setitem(notetype.NOTE_TYPES, notetype.NOTE_TYPE_ID, wider)
    # An upgrade changes deckbuild's code, which the memo's key holds: renderings made before miss.
    monkeypatch.setenv("DECKBUILD_CACHE_DIR", tempfile.mkdtemp(prefix="deckbuild-upgrade-"))


def test_diff_fails_on_breaking_changes_only_when_asked(tree, tmp_path, monkeypatch):
    build([tree], tmp_path / "old", now=NOW)
    _wider_note_type(monkeypatch)
    build([tree], tmp_path / "new", now=NOW, use_cache=False)
    calm = run("diff", str(tmp_path / "old"), str(tmp_path / "new"))
    assert calm.exit_code == 0 and calm.stdout.startswith("BREAKING: note type deckbuild card")
    strict = run("diff", str(tmp_path / "old"), str(tmp_path / "new"), "--fail-on-breaking")
    assert strict.exit_code == 1
    assert "BREAKING: note type deckbuild card" in strict.stderr


def test_release_refuses_a_breaking_release_unless_allowed(tree, tmp_path, monkeypatch):
    assert run("build", "decks").exit_code == 0
    assert run("release", "decks", "-o", "v1", "--release-version", "v1").exit_code == 0
    _wider_note_type(monkeypatch)
    assert run("build", "decks").exit_code == 0  # the author commits the lock the upgrade changed
    refused = run("release", "decks", "-o", "v2", "--release-version", "v2", "--previous", "v1")
    assert refused.exit_code == 1
    assert refused.stderr.endswith(
        "error: this release would break learners' updates; fix it, or pass --allow-breaking\n"
    )
    allowed = run(
        "release", "decks", "-o", "v3", "--release-version", "v2", "--previous", "v1", "--allow-breaking"
    )
    assert allowed.exit_code == 0


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"just text\n", "not a zip file"),
        (b"", "not a zip file"),
        ("zip", "a zip file without collection.anki2"),
        ("badcollection", "its collection cannot be read"),
    ],
)
def test_diff_and_release_refuse_a_file_that_is_not_a_package_with_a_message(tree, tmp_path, content, why):
    fake = tree.parent / "old.apkg"
    if content == "zip":
        with zipfile.ZipFile(fake, "w") as z:
            z.writestr("media", "{}")
    elif content == "badcollection":
        with zipfile.ZipFile(fake, "w") as z:
            z.writestr("collection.anki2", "not sqlite at all, but long enough " * 10)
    else:
        fake.write_bytes(content)
    assert run("build", "decks").exit_code == 0
    expected = (
        f"error: old.apkg: not an Anki package ({why}); "
        "give an .apkg file, a folder of them, or a deck folder\n"
    )
    for words in (("diff", "old.apkg", "decks"), ("diff", "dist", "old.apkg")):
        result = run(*words)
        assert (result.exit_code, result.stderr) == (1, expected), result.output
    released = run("release", "decks", "-o", "out", "--release-version", "v2", "--previous", "old.apkg")
    assert (released.exit_code, released.stderr) == (1, expected)
    assert not (tree.parent / "out").exists(), "nothing written"
    folder = tree.parent / "prev"
    folder.mkdir()
    (folder / "old.apkg").write_bytes(fake.read_bytes())
    in_folder = run("diff", "prev", "decks")
    assert in_folder.exit_code == 1
    assert in_folder.stderr.startswith("error: prev/old.apkg: not an Anki package")


def test_forget_finds_the_deck_root_from_any_path_in_the_tree_as_build_does(tree, tmp_path, monkeypatch):
    own = tree.parent / "my-cards"  # an author's own repository, whose deck root is not called decks/
    tree.rename(own)
    build([own], tmp_path / "dist", now=NOW)
    source = own / "Deck" / "cards.txt"
    source.write_text(source.read_text(encoding="utf-8").replace(f"What is 1+1?;2<br>two;{REMOVED}\n", ""))
    build([own / "Deck"], tmp_path / "dist", now=NOW + 60)  # a subfolder: it finds the lock upward
    assert (own / "deckbuild.lock").is_file() and not (own / "Deck" / "deckbuild.lock").exists()
    for where in ("my-cards/Deck/cards.txt", "my-cards/Deck"):
        refused = run("forget", KEPT, "--decks", where)
        assert (refused.exit_code, refused.stderr) == (
            1, f"error: card {KEPT} is still in the sources; remove it there first\n"
        )  # fmt: skip
    monkeypatch.chdir(own / "Deck")
    assert run("forget", REMOVED, "--decks", ".").stdout == f"forgot {REMOVED}\n"
    assert REMOVED not in (own / "deckbuild.lock").read_text(encoding="utf-8")


def _field(text):
    from deckbuild.errors import Report
    from deckbuild.render import Where, render_text

    report = Report()
    markup = render_text(text, Where("x.txt", 1), report)
    assert report.problems == []
    return markup


@pytest.mark.parametrize(
    ("old", "new", "shown"),
    [
        # A literal dash list that became a real list reads the same: formatting only.
        ("Intro:<br>- a<br>- b", "Intro:\n\n- a\n- b", ""),
        ("`#!python np.zeros(3)`", "`#!python np.ones(3)`", "np.«zeros» → «ones»(3)"),
        ("```python\nx = np.zeros(3)\n```", "```python\nx = np.zeros(4)\n```", ".zeros(«3» → «4»)"),
        ("- keys<br>- values", "- keys<br>- queries", "- keys - «values» → «queries»"),
        ("The **query** vector", "The *query* vector", ""),
        ("a b c d e f g h", "a x c y e z g w",
         "a «b» → «x» c d e; a x c «d» → «y» e f g; c y e «f» → «z» g h (and 1 more)"),
    ],
)  # fmt: skip
def test_a_word_diff_compares_what_the_learner_reads(old, new, shown):
    assert word_diff(_field(old), _field(new)) == shown


@given(
    st.lists(st.sampled_from(["np", ".", "zeros", "(", "3", ")", "the", "query", ",", "key"]), max_size=12),
    st.lists(st.sampled_from(["np", ".", "ones", "(", "3", ")", "a", "query", "-", "key"]), max_size=12),
)
def test_a_word_diff_is_empty_exactly_when_the_words_read_the_same(a, b):
    old, new = " ".join(a), " ".join(b)
    same = visible(old).split() == visible(new).split()
    assert (word_diff(old, new) == "") == same
    assert "<" not in word_diff(f"<p>{old}</p>", f"<ul><li>{new}</li></ul>")


def test_an_author_folder_called_retired_is_warned_about_not_mixed_silently(tree, tmp_path):
    own = "77777777-7777-4777-8777-777777777777"
    put(tree, "Deck/Retired/own.txt", f"Question;Answer;UUID\nMy own retired topic?;Yes.;{own}\n")
    build([tree], tmp_path / "dist", now=NOW)
    edit(tree)
    result = build([tree], tmp_path / "dist", now=NOW + 60)
    assert result.report.counts["retired"] == 1
    assert [p.message for p in result.report.warnings] == [
        "deck Deck::Retired holds cards of the sources and retired cards alike; rename its folder"
    ]


def _edit_collection(package, target, sql, *args):
    """Write `package` again as `target` with its collection changed by `sql`, as a tampered file would be."""
    folder = target.parent / f"{target.stem}-unzipped"
    with zipfile.ZipFile(package) as zipped:
        zipped.extractall(folder)
        names = zipped.namelist()
    db = sqlite3.connect(folder / "collection.anki2")
    with db:
        db.execute(sql, args)
    db.close()
    with zipfile.ZipFile(target, "w") as zipped:
        for name in names:
            zipped.write(folder / name, name)


def _plant(package, guid, fields):
    """Rewrite one note of a built package, as a changed download or a damaged dist/ would."""
    _edit_collection(package, package, "UPDATE notes SET flds = ? WHERE guid = ?", "\x1f".join(fields), guid)


# Each hostile field, and whether it must ship as plain text (with a warning) or can be cleaned.
HOSTILE_FIELDS = [
    ('<p>Q<img src="x" onerror="alert(1)"></p>', False),
    ('<a href="javascript:alert(1)">go</a> [sound:x.mp3] <i style="color:url(//t.co/x)">s</i>', False),
    (r"\(\href{javascript:alert(1)}{x}\) and \(\style{position:fixed}{y}\)", True),
    ("&#92;( \\unicode{x} \\)", True),
]


@pytest.mark.parametrize(("hostile", "as_text"), HOSTILE_FIELDS)
def test_a_retired_card_from_a_planted_package_ships_nothing_active(
    tree, tmp_path, collection, hostile, as_text
):
    from hostile import dangers, formulas, math_dangers

    (v1,) = build([tree], tmp_path / "dist", now=NOW).packages
    fields = list(read_contents(v1).notes[REMOVED].fields)
    fields[0] = fields[1] = hostile
    _plant(v1, REMOVED, fields)
    edit(tree)
    result = build([tree], tmp_path / "dist", now=NOW + 60)
    assert result.report.counts["retired"] == 1
    warned = [p for p in result.report.problems if "retired card's last shipped content" in p.message]
    assert bool(warned) == as_text
    import_package(collection, result.packages[0])
    note = notes_by_guid(collection)[REMOVED]
    for value in note.values():
        assert dangers(value) == [], value
        assert all(math_dangers(f) == [] for f in formulas(value)), value
        assert ("\\(" not in value and "\\[" not in value) or not as_text, value


def test_a_retired_card_as_deckbuild_wrote_it_ships_unchanged(tree, tmp_path):
    (v1,) = build([tree], tmp_path / "dist", now=NOW).packages
    before = read_contents(v1).notes[REMOVED].fields
    edit(tree)
    result = build([tree], tmp_path / "dist", now=NOW + 60)
    after = read_contents(result.packages[0]).notes[REMOVED].fields
    assert after[:-1] == before[:-1], "only the Status field changes when a card retires"
    assert not any("retired card's last shipped content" in p.message for p in result.report.problems)


@pytest.mark.parametrize(
    "sql", ["UPDATE col SET decks = '[]'", "UPDATE col SET models = '[1]'", "DROP TABLE notes"]
)
def test_diff_of_a_package_with_a_mangled_collection_is_a_message(tree, tmp_path, sql):
    (package,) = build([tree], tmp_path / "dist", now=NOW).packages
    bad = tmp_path / "bad.apkg"
    _edit_collection(package, bad, sql)
    result = run("diff", str(bad), str(package))
    assert result.exit_code == 1
    assert "not an Anki package (its collection cannot be read)" in result.stderr
    assert "Traceback" not in result.output


def test_forget_takes_a_uuid_given_twice_once(tree, tmp_path):
    build([tree], tmp_path / "dist", now=NOW)
    edit(tree)
    build([tree], tmp_path / "dist", now=NOW + 60)
    result = run("forget", REMOVED, REMOVED)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"forgot {REMOVED}\n"
    assert REMOVED not in (tree / "deckbuild.lock").read_text(encoding="utf-8")


@pytest.mark.parametrize("odd", ["broken link", "name not UTF-8"])
def test_a_partial_build_beside_an_odd_file_ends_in_a_message_never_a_traceback(tree, tmp_path, odd):
    build([tree], tmp_path / "dist", now=NOW)
    leave(tree)
    if odd == "broken link":
        (tree / "Deck" / "broken.txt").symlink_to("nowhere.txt")
    else:
        (tree / "Deck" / os.fsdecode(b"caf\xe9.txt")).write_text(
            f"Question;Answer;UUID\nQ?;A.;{GUIDS[1]}\n", encoding="utf-8"
        )
    for _ in range(2):  # the second is answered from the record when there is one
        result = run("build", "decks/Deck/cards.txt", "-o", str(tmp_path / "dist"))
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        assert "Traceback" not in result.output


def test_strict_fails_on_a_warning_raised_while_retiring_and_writes_nothing(tree, tmp_path):
    build([tree], tmp_path / "dist", now=NOW)
    before = (tmp_path / "dist" / "Deck.apkg").read_bytes()
    edit(tree)
    # No earlier package for this output folder: the card cannot be retired, and that is a warning.
    result = run("build", "decks", "-o", str(tmp_path / "other"), "--strict")
    assert result.exit_code == 1
    assert (
        f"warning: card {REMOVED} is gone from the sources, but no earlier package holds it" in result.stderr
    )
    assert not (tmp_path / "other").exists()
    assert (tmp_path / "dist" / "Deck.apkg").read_bytes() == before


def test_a_partial_build_refuses_a_uuid_a_file_it_did_not_name_still_uses(tree, tmp_path):
    build([tree], tmp_path / "dist", now=NOW)
    put(tree, "Other/copy.txt", "Question;Answer;UUID\n" + ROW.replace("1+1", "a copy"))
    result = run("build", "decks/Other", "-o", str(tmp_path / "dist"))
    assert (result.exit_code, result.stderr) == (
        1,
        f"decks/Other/copy.txt:2: UUID {REMOVED} is used twice: here and at decks/Deck/cards.txt:2; "
        "give one of the cards a new UUID\n1 error(s), 0 warning(s)\n",
    )
    assert not (tmp_path / "dist" / "Other.apkg").exists()


RECALL = "beginner\n{q}\n{a}\nClick to reveal answer\n"


def test_a_partial_build_never_gives_a_page_card_the_id_a_page_it_did_not_name_keeps(deck_tree, tmp_path):
    # As a full build does: the copied question gets a new id, the original keeps its own.
    put(deck_tree, "P/p.txt", "Recall & Review\n" + RECALL.format(q="What is beta?", a="The second letter."))
    put(deck_tree, "Q/q.txt", "Recall & Review\n" + RECALL.format(q="What is gamma?", a="The third letter."))
    build([deck_tree], tmp_path / "dist", now=NOW)
    before = json.loads((deck_tree / "deckbuild.lock").read_text(encoding="utf-8"))["notes"]
    (original,) = [g for g, e in before.items() if e["key"] == "what is beta?"]
    with (deck_tree / "Q" / "q.txt").open("a", encoding="utf-8") as page:
        page.write(RECALL.format(q="What is beta?", a="A kind of radiation."))
    build([deck_tree / "Q"], tmp_path / "dist", now=NOW + 60)
    build([deck_tree], tmp_path / "dist", now=NOW + 120)
    after = json.loads((deck_tree / "deckbuild.lock").read_text(encoding="utf-8"))["notes"]
    assert after[original]["origin"] == "P/p.txt" and after[original]["mod"] == before[original]["mod"]
    (copy,) = [g for g, e in after.items() if e["key"] == "what is beta?" and g != original]
    assert after[copy]["origin"] == "Q/q.txt"


PAGES = ["P/p.txt", "P/Sub/s.txt", "Q/q.txt"]
QUESTIONS = ["What is alpha?", "What is beta?", "What is gamma?"]


def _pages(root, placed):
    for page in PAGES:
        cards = [RECALL.format(q=q, a=f"{q} ({page}, {n})") for n, q in enumerate(placed.get(page, []))]
        if cards:
            put(root, page, "Recall & Review\n" + "".join(cards))
        elif (root / page).exists():
            (root / page).unlink()


_PLACED = st.fixed_dictionaries({p: st.lists(st.sampled_from(QUESTIONS), max_size=3) for p in PAGES}).filter(
    lambda placed: any(placed.values())
)


@given(_PLACED, _PLACED, st.sampled_from(["P", "P/Sub", "Q", *PAGES]))
def test_a_partial_build_gives_the_cards_it_builds_the_ids_a_full_build_gives_them(before, after, built):
    import shutil

    with tempfile.TemporaryDirectory() as temp:
        one, two = Path(temp) / "one" / "decks", Path(temp) / "two" / "decks"
        _pages(one, before)
        build([one], Path(temp) / "one" / "dist", now=NOW)
        _pages(one, after)
        if not (one / built).exists():
            return
        shutil.copytree(one.parent, two.parent, dirs_exist_ok=True)
        try:
            build([one / built], Path(temp) / "one" / "dist", now=NOW + 60)
        except BuildFailed:
            return  # a card gone while another page has errors: nothing written, said at its line
        build([two], Path(temp) / "two" / "dist", now=NOW + 60)
        scope = [p for p in PAGES if p == built or p.startswith(built + "/")]
        ours, full = (json.loads((r / "deckbuild.lock").read_text())["notes"] for r in (one, two))
        built_here = {g: (e["origin"], e["key"]) for g, e in full.items() if e.get("origin") in scope}
        assert {g: (ours[g]["origin"], ours[g]["key"]) for g in built_here if g in ours} == built_here
        # Any other entry still naming a file built is a card that moved to a file not built.
        for guid, entry in ours.items():
            if entry.get("origin") in scope and guid not in built_here and "fields" not in entry:
                assert full[guid]["origin"] not in scope


def test_tags_come_composed_and_a_retired_cards_old_tags_as_anki_keeps_them(tree, tmp_path, collection):
    # A decomposed tag (as macOS writes file names) is the composed one to Anki; a retired card's
    # tags from an older lock may hold an empty part, which learners' Anki named "blank".
    put(tree, "Deck/cafe\u0301.txt", f"Question;Answer;UUID;Tags\nQ?;A.;{GUIDS[2]};re\u0301sume\u0301\n")
    build([tree], tmp_path / "dist", now=NOW)
    edit(tree)
    build([tree], tmp_path / "dist", now=NOW + 60)
    lock_path = tree / "deckbuild.lock"
    lock = json.loads(lock_path.read_text(encoding="utf-8"))
    lock["notes"][REMOVED]["tags"].append("ml::::x")
    lock_path.write_text(json.dumps(lock, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    result = build([tree], tmp_path / "again", now=NOW + 120)
    (apkg,) = result.packages
    notes = read_contents(apkg).notes
    assert "ml::blank::x" in notes[REMOVED].tags
    assert {"r\u00e9sum\u00e9", "source::caf\u00e9"} <= set(notes[GUIDS[2]].tags)
    import_package(collection, apkg)
    for guid, note in notes_by_guid(collection).items():
        assert sorted(note.tags) == sorted(notes[guid].tags), "Anki keeps every tag as shipped"


def test_a_partial_build_of_two_trees_never_retires_a_card_moved_from_one_to_the_other(tmp_path):
    for tree in ("one", "two"):
        put(tmp_path / tree, "deckbuild.lock", '{"deckbuild_lock": 1, "notetypes": {}, "notes": {}}\n')
    put(tmp_path / "one", "A/a.txt", f"Question;Answer;UUID\nQ1?;A1;{GUIDS[0]}\nQ2?;A2;{GUIDS[1]}\n")
    put(tmp_path / "two", "B/b.txt", f"Question;Answer;UUID\nQ3?;A3;{GUIDS[2]}\n")
    build([tmp_path / "one", tmp_path / "two"], tmp_path / "dist", now=NOW)
    put(tmp_path / "one", "A/a.txt", f"Question;Answer;UUID\nQ1?;A1;{GUIDS[0]}\n")
    put(tmp_path / "two", "B/c.txt", f"Question;Answer;UUID\nQ2?;A2;{GUIDS[1]}\n")
    result = build(
        [tmp_path / "one" / "A" / "a.txt", tmp_path / "two" / "B" / "b.txt"], tmp_path / "dist", now=NOW + 60
    )
    assert "retired" not in result.report.counts
    assert not _retired_in(result.packages)


def _snapshot(tree):
    """What a commit holds of a deck tree: its sources and lock, to check out again later."""
    return {p: p.read_bytes() for p in sorted(tree.rglob("*")) if p.is_file()}


def _check_out(tree, snapshot):
    for path in [p for p in tree.rglob("*") if p.is_file() and p not in snapshot]:
        path.unlink()
    for path, data in snapshot.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def test_an_edit_taken_back_with_the_lock_reaches_learners_who_had_the_edit(tree, tmp_path, collection):
    # A revert takes the lock back too, with its older mod times: learners who imported the
    # edit would keep it, as Anki takes only a newer note, unless the build moves the mod on.
    dist = tmp_path / "dist"
    (package,) = build([tree], dist, now=NOW).packages
    import_package(collection, package)
    study_all(collection)
    reviewed = card_states(collection)
    before = _snapshot(tree)
    edit(tree)
    import_package(collection, build([tree], dist, now=NOW + 60).packages[0])
    assert "The square of x" in notes_by_guid(collection)[CHANGED]["Back"]
    assert RETIRED_TAG in notes_by_guid(collection)[REMOVED].tags
    _check_out(tree, before)  # git revert
    result = build([tree], dist, now=NOW + 120)
    log = import_package(collection, result.packages[0])

    notes = notes_by_guid(collection)
    assert "The square of x" not in notes[CHANGED]["Back"] and "A square" in notes[CHANGED]["Back"]
    assert RETIRED_TAG not in notes[REMOVED].tags and notes[REMOVED]["Status"] == ""
    assert log.updated >= 2 and log.conflicting == 0
    assert {cid: state for cid, state in card_states(collection).items() if cid in reviewed} == reviewed
    assert result.report.notes[-1] == (
        "decks/deckbuild.lock: 2 card(s) differ from the newer notes an earlier package ships (a "
        "revert, or an older commit checked out?): given newer mod times, so that learners who "
        "imported it get them"
    )
    again = build([tree], dist, now=NOW + 180)
    assert not any("earlier package ships" in note for note in again.report.notes), "the lock keeps them"


def test_a_card_taken_back_to_content_an_earlier_package_ships_keeps_its_mod(tree, tmp_path):
    # Learners who have that package have this content: nothing of theirs is overwritten.
    dist = tmp_path / "dist"
    build([tree], dist, now=NOW)
    edited = _snapshot(tree)
    source = tree / "Deck" / "cards.txt"
    source.write_text(source.read_text(encoding="utf-8").replace("A square", "The square"), encoding="utf-8")
    build([tree], tmp_path / "elsewhere", now=NOW + 60)  # not the package this build replaces
    _check_out(tree, edited)
    result = build([tree], dist, now=NOW + 120)
    assert not any("earlier package ships" in note for note in result.report.notes)
    assert {n.mod for n in read_contents(result.packages[0]).notes.values()} == {NOW}


_VERSIONS = ["A square", "The square", "A square of x", "x times x"]


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("edit"), st.sampled_from(_VERSIONS)),
            st.tuples(st.just("remove"), st.just("")),
            st.tuples(st.just("check out"), st.integers(0, 9)),
        ),
        min_size=1,
        max_size=8,
    ),
    st.lists(st.integers(0, 90), min_size=8, max_size=8),
)
def test_a_note_whose_content_differs_from_the_package_it_replaces_always_gets_a_newer_mod(steps, waits):
    # Edits, removals and checkouts of earlier commits (sources and lock together), built one
    # after another into the same folder, with the clock moving on or not at all: each package
    # ships every note whose content differs from the last package's with a newer mod, so a
    # learner who imported each one has the content of the newest.
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        deck = root / "decks"
        source = put(deck, "Deck/cards.txt", DATA / "semicolon" / "two_sections.txt")
        dist = root / "dist"
        now = NOW
        last = read_contents(build([deck], dist, now=now).packages[0]).notes
        commits = [_snapshot(deck)]
        for (step, value), wait in zip(steps, waits, strict=False):
            text = source.read_text(encoding="utf-8")
            if step == "edit":
                source.write_text(
                    "\n".join(
                        line if "x^2" not in line else f"What is \\(x^2\\)?;{value};{CHANGED}"
                        for line in text.split("\n")
                    ),
                    encoding="utf-8",
                )
            elif step == "remove":
                source.write_text(text.replace(ROW, ""), encoding="utf-8")
            else:
                _check_out(deck, commits[value % len(commits)])
            now += wait
            shipped = read_contents(build([deck], dist, now=now).packages[0]).notes
            commits.append(_snapshot(deck))
            for guid, note in shipped.items():
                before = last.get(guid)
                if before is not None and (before.fields, before.tags) != (note.fields, note.tags):
                    assert note.mod > before.mod, (guid, before, note)
            last = shipped


def _released_then_reverted(tree, tmp_path):
    """Build v1, then an edit as v2 (in folders of their own), then take the edit back with the lock."""
    build([tree], tmp_path / "v1", now=NOW)
    before = _snapshot(tree)
    source = tree / "Deck" / "cards.txt"
    source.write_text(source.read_text(encoding="utf-8").replace("A square", "The square"), encoding="utf-8")
    build([tree], tmp_path / "v2", now=NOW + 60)
    _check_out(tree, before)


def test_diff_flags_a_changed_card_without_a_newer_mod_as_breaking(tree, tmp_path):
    # A revert built into a folder without the package it replaces keeps the lock's older mod.
    _released_then_reverted(tree, tmp_path)
    build([tree], tmp_path / "v3", now=NOW + 120)
    result = run("diff", str(tmp_path / "v2"), str(tmp_path / "v3"), "--fail-on-breaking")
    assert result.exit_code == 1
    assert (
        f"BREAKING: card {CHANGED} changed without a newer mod time: learners who have the earlier "
        "package keep its old content (build into the folder that holds it, or with --previous)"
    ) in result.stdout.splitlines()
    assert run("diff", str(tmp_path / "v1"), str(tmp_path / "v2"), "--fail-on-breaking").exit_code == 0


@pytest.mark.parametrize("where", ["dist", "previous"])
def test_a_lost_lock_is_taken_back_from_the_packages_the_build_replaces(tree, tmp_path, collection, where):
    # With no lock, every note got a new mod time (overwriting learners' own edits), a removed
    # card was never retired, and a card could change its note type under learners.
    (v1,) = build([tree], tmp_path / "v1", now=NOW).packages
    import_package(collection, v1)
    study_all(collection)
    reviewed = card_states(collection)
    note = notes_by_guid(collection)[KEPT]
    note["Back"] += "<p>my own mnemonic</p>"
    collection.update_note(note)
    (tree / "deckbuild.lock").unlink()
    source = tree / "Deck" / "cards.txt"
    source.write_text(source.read_text(encoding="utf-8").replace(ROW, ""), encoding="utf-8")
    out = tmp_path / "v1" if where == "dist" else tmp_path / "v2"
    result = build([tree], out, now=NOW + 60, previous=[tmp_path / "v1"] if where == "previous" else [])
    assert result.report.counts["retired"] == 1
    assert (
        "decks/deckbuild.lock: there was no lock file; the mod times and note types of 3 card(s) were "
        "taken from the packages this build replaces, so that learners' notes are updated only where "
        "they changed (commit the lock)"
    ) in result.report.notes
    log = import_package(collection, result.packages[0])
    notes = notes_by_guid(collection)
    assert RETIRED_TAG in notes[REMOVED].tags and log.updated == 1 and log.conflicting == 0
    assert "my own mnemonic" in notes[KEPT]["Back"], "an unchanged note leaves the learner's edit"
    assert card_states(collection) == reviewed
    # A card's note type, as the package has it, stays its own, as the lock keeps it.
    (tree / "deckbuild.lock").unlink()
    put(tree, "Deck/cards.txt", f"Question;Answer;Reverse;UUID\nWhat is a key?;An identifier.;yes;{KEPT}\n")
    with pytest.raises(BuildFailed) as failed:
        build([tree], out, now=NOW + 120, previous=[tmp_path / "v1"] if where == "previous" else [])
    assert "this card was a basic card and is now a reversed card" in str(failed.value.report.errors[0])


def test_a_lock_lost_and_taken_back_from_the_package_is_the_lock_it_was(tree, tmp_path):
    # With nothing changed, the build gives the lock and the package it gave before, byte for
    # byte: no note's or note type's mod time moves, and no learner's edit is overwritten.
    (package,) = build([tree], tmp_path / "dist", now=NOW).packages
    edit(tree)
    build([tree], tmp_path / "dist", now=NOW + 60)  # with a retired card, and a card edited
    lock, shipped = (tree / "deckbuild.lock").read_bytes(), package.read_bytes()
    (tree / "deckbuild.lock").unlink()
    again = build([tree], tmp_path / "dist", now=NOW + 120, use_cache=False)
    assert (tree / "deckbuild.lock").read_bytes() == lock
    assert again.packages[0].read_bytes() == shipped
    # The retired card stays carried when its deck's folder is gone.
    shutil.rmtree(tree / "Deck")
    put(tree, "Other/cards.txt", "Question;Answer;UUID\nQ;A;66666666-6666-4666-8666-666666666666\n")
    later = build([tree], tmp_path / "dist", now=NOW + 180, use_cache=False)
    assert REMOVED in read_contents(tmp_path / "dist" / "Deck.apkg").notes
    assert later.report.counts["retired"] == 4


def test_a_frozen_build_after_a_revert_says_what_to_build_with(tree, tmp_path):
    # The lock a revert took back must move on where the newer release is read: said so.
    _released_then_reverted(tree, tmp_path)
    result = run("build", "decks", "-o", str(tmp_path / "v3"), "--previous", str(tmp_path / "v2"), "--frozen")
    assert (result.exit_code, result.stderr) == (
        1,
        "error: decks/deckbuild.lock is out of date (1 card(s) differ from the newer notes an earlier "
        "package ships: a revert?); run 'deckbuild build' with the same --previous, without --frozen "
        "and commit it\n",
    )
    assert (
        run("build", "decks", "-o", str(tmp_path / "v3"), "--previous", str(tmp_path / "v2")).exit_code == 0
    )
    again = run("build", "decks", "-o", str(tmp_path / "v4"), "--previous", str(tmp_path / "v2"), "--frozen")
    assert again.exit_code == 0, again.stderr


def test_a_lost_lock_takes_nothing_from_another_project_s_package_in_the_output_folder(tree, tmp_path):
    # Another project's package, its top deck named as ours, copied into dist/: its card is
    # neither adopted nor retired into our package.
    other = tmp_path / "friend" / "decks"
    put(other, "Deck/f.txt", "Question;Answer;UUID\nFriend q1?;F.;aaaaaaaa-0000-4000-8000-000000000001\n")
    (friend,) = build([other], tmp_path / "friend" / "dist", now=NOW).packages
    dist = tmp_path / "dist"
    build([tree], dist, now=NOW)
    shutil.copyfile(friend, dist / "Deck-friend.apkg")
    (tree / "deckbuild.lock").unlink()
    result = build([tree], dist, now=NOW + 60, use_cache=False)
    assert "retired" not in result.report.counts
    assert "aaaaaaaa-0000-4000-8000-000000000001" not in (tree / "deckbuild.lock").read_text(encoding="utf-8")


def test_two_trees_sharing_a_uuid_built_into_one_folder_do_not_move_each_other_s_mods(tmp_path):
    # A translated copy keeps the UUIDs: each tree is caught up with its own packages only.
    uuid = "bbbbbbbb-0000-4000-8000-000000000001"
    english, german = tmp_path / "en", tmp_path / "de"
    put(english, "English/c.txt", f"Question;Answer;UUID\nWhat?;This.;{uuid}\n")
    put(german, "Deutsch/c.txt", f"Question;Answer;UUID\nWas?;Das.;{uuid}\n")
    dist = tmp_path / "dist"
    for n in range(3):
        for root in (english, german):
            result = build([root], dist, now=NOW + 60 * n + (root == german), use_cache=False)
            assert not any("earlier package ships" in note for note in result.report.notes)
    assert {
        read_contents(dist / "English.apkg").notes[uuid].mod,
        read_contents(dist / "Deutsch.apkg").notes[uuid].mod,
    } == {
        NOW,
        NOW + 1,
    }


def test_mod_times_and_files_a_package_holds_are_taken_only_as_a_build_writes_them(tree, tmp_path):
    # A package edited by hand (a mod in milliseconds, a Source field naming /etc/passwd): the
    # lock keeps neither, and the next build reads it.
    dist = tmp_path / "dist"
    (package,) = build([tree], dist, now=NOW).packages
    db = tmp_path / "c.anki2"
    with zipfile.ZipFile(package) as archive:
        db.write_bytes(archive.read("collection.anki2"))
    with sqlite3.connect(db) as conn:
        flds = conn.execute("SELECT flds FROM notes WHERE guid = ?", (KEPT,)).fetchone()[0].split("\x1f")
        flds[13] = "/etc/passwd"
        conn.execute("UPDATE notes SET mod = mod * 1000, flds = ? WHERE guid = ?", ("\x1f".join(flds), KEPT))
    with zipfile.ZipFile(package, "w") as archive:
        archive.write(db, "collection.anki2")
        archive.writestr("media", "{}")
    (tree / "deckbuild.lock").unlink()
    build([tree], dist, now=NOW + 60, use_cache=False)
    lock = json.loads((tree / "deckbuild.lock").read_text(encoding="utf-8"))["notes"]
    assert lock[KEPT]["mod"] <= NOW + 60 and lock[KEPT].get("origin") != "/etc/passwd"
    build([tree], dist, now=NOW + 120, use_cache=False)  # the lock reads


def test_a_previous_that_is_no_regular_file_is_refused_at_once(tree, tmp_path):
    fifo = tmp_path / "ff.apkg"
    os.mkfifo(fifo)
    result = run("build", "decks", "--previous", str(fifo))
    assert (result.exit_code, result.stderr) == (
        1,
        "error: ff.apkg: not a regular file; point --previous at the last release's packages\n",
    )


def test_a_revert_of_many_cards_reads_the_package_it_replaces_once(tmp_path, monkeypatch):
    # Each card caught up looked up the newest notes of that package anew: a revert of every
    # card of a large deck took time growing with the square of its cards.
    from deckbuild import build as build_module

    rows = [f"Q{n}?;A{n}.;{n:08x}-0000-4000-8000-000000000000" for n in range(60)]
    source = put(tmp_path / "decks", "Deck/cards.txt", "Question;Answer;UUID\n" + "\n".join(rows) + "\n")
    dist = tmp_path / "dist"
    build([tmp_path / "decks"], dist, now=NOW, use_cache=False)
    before = _snapshot(tmp_path / "decks")
    source.write_text(source.read_text(encoding="utf-8").replace(".;", " edited.;"), encoding="utf-8")
    build([tmp_path / "decks"], dist, now=NOW + 60, use_cache=False)
    _check_out(tmp_path / "decks", before)
    calls = []
    newest = build_module._Build._newest
    monkeypatch.setattr(build_module._Build, "_newest", lambda self, *a: calls.append(a) or newest(self, *a))
    result = build([tmp_path / "decks"], dist, now=NOW + 120, use_cache=False)
    assert any("60 card(s) differ" in note for note in result.report.notes)
    assert len(calls) == 1


def test_a_lock_behind_its_sources_keeps_the_mod_of_a_note_the_package_ships_as_it_is(tree, tmp_path):
    # The lock checked out alone (or one side of a merge taken): a note whose content the
    # package it replaces ships keeps that package's mod time; no learner's edit is overwritten.
    dist = tmp_path / "dist"
    build([tree], dist, now=NOW)
    lock = (tree / "deckbuild.lock").read_bytes()
    source = tree / "Deck" / "cards.txt"
    source.write_text(source.read_text(encoding="utf-8").replace("A square", "The square"), encoding="utf-8")
    (package,) = build([tree], dist, now=NOW + 60).packages
    shipped = read_contents(package).notes[CHANGED].mod
    (tree / "deckbuild.lock").write_bytes(lock)  # git checkout HEAD~1 -- decks/deckbuild.lock
    result = build([tree], dist, now=NOW + 120, use_cache=False)
    assert read_contents(result.packages[0]).notes[CHANGED].mod == shipped == NOW + 60
    again = (tree / "deckbuild.lock").read_bytes()
    build([tree], dist, now=NOW + 180, use_cache=False)
    assert (tree / "deckbuild.lock").read_bytes() == again


def test_diff_of_a_folder_takes_the_newest_of_a_card_two_packages_hold(deck_tree, tmp_path, monkeypatch):
    # A card moved to another top deck and edited: the old deck's package, left in the folder,
    # still ships it as it was, and by name order it hid the change (found by an attack).
    monkeypatch.chdir(deck_tree.parent)
    bio = put(deck_tree, "Bio/a.txt", f"Question;Answer;UUID\nQ1;A1;{KEPT}\n")
    put(deck_tree, "Zoo/z.txt", f"Question;Answer;UUID\nQ2;A2;{CHANGED}\n")
    build([deck_tree], tmp_path / "dist", now=NOW)
    shutil.copytree(tmp_path / "dist", tmp_path / "rel1")
    bio.write_text(f"Question;Answer;UUID\nQ1;A1;{KEPT}\nQ2;A2 edited;{CHANGED}\n", encoding="utf-8")
    shutil.rmtree(deck_tree / "Zoo")
    build([deck_tree], tmp_path / "dist", now=NOW + 60)
    assert (tmp_path / "dist" / "Zoo.apkg").exists()  # the stale package, as a move leaves it
    report = json.loads(run("diff", str(tmp_path / "rel1"), str(tmp_path / "dist"), "--json").stdout)
    assert [c["id"] for c in report["changed"]] == [CHANGED]
    assert report["changed"][0]["diff"]["Back"] == "A2 +«edited»"
