"""Cards from quiz pages get an id on their first build and keep it through edits."""

from __future__ import annotations

import json
import shutil
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import put, seed
from deckbuild.build import build, collect

PAGE = "Attention/000.txt"
FIRST = "What is the main purpose of the self-attention mechanism in neural networks?"


@pytest.fixture
def page(deck_tree):
    return put(deck_tree, PAGE, seed("000"))


def ids(root):
    return {c.card.question: c.card.id for c in collect([root]).cards}


def lock_notes(root):
    return json.loads((root / "deckbuild.lock").read_text(encoding="utf-8"))["notes"]


def test_first_build_gives_every_card_an_id_kept_in_the_lock(deck_tree, page, tmp_path):
    result = build([deck_tree], tmp_path / "out", now=1000)
    assert any(n.endswith("000.txt: 12 new id(s), 0 re-matched id(s)") for n in result.report.notes)
    entries = lock_notes(deck_tree)
    assert len(entries) == 12
    entry = entries[ids(deck_tree)[FIRST]]
    assert (entry["origin"], entry["kind"]) == (PAGE, "recall")


def test_an_unchanged_page_changes_nothing(deck_tree, page, tmp_path):
    build([deck_tree], tmp_path / "a", now=1000)
    lock = (deck_tree / "deckbuild.lock").read_bytes()
    again = build([deck_tree], tmp_path / "b", now=2000)
    assert again.report.notes == [] and again.lock_changed == []
    assert (deck_tree / "deckbuild.lock").read_bytes() == lock


EDITED = "What is the main purpose of self-attention in a neural network?"


def edit_first(root, page, moved, tmp_path):
    """Build, move the page to `moved`, edit its first question, build again: every id holds."""
    build([root], tmp_path / "a", now=1000)
    before = ids(root)
    if moved != page:
        moved.parent.mkdir(exist_ok=True)
        page.rename(moved)
    moved.write_text(moved.read_text(encoding="utf-8").replace(FIRST, EDITED), encoding="utf-8")
    result = build([root], tmp_path / "b", now=2000)
    after = ids(root)
    assert after[EDITED] == before[FIRST]
    assert {q: i for q, i in after.items() if q != EDITED} == {q: i for q, i in before.items() if q != FIRST}
    return result, before


def test_an_edited_question_keeps_its_id_and_others_keep_theirs(deck_tree, page, tmp_path):
    result, before = edit_first(deck_tree, page, page, tmp_path)
    assert any(n.endswith("000.txt: 0 new id(s), 1 re-matched id(s)") for n in result.report.notes)
    assert lock_notes(deck_tree)[before[FIRST]]["key"] == EDITED.lower()


def test_a_new_card_gets_a_new_id_and_no_one_elses(deck_tree, page, tmp_path):
    build([deck_tree], tmp_path / "a", now=1000)
    before = ids(deck_tree)
    added = "beginner\nWhat does softmax return?\nA probability distribution.\nClick to reveal answer\n"
    text = page.read_text(encoding="utf-8").replace(
        "What does the Query vector", added + "What does the Query vector", 1
    )
    page.write_text(text, encoding="utf-8")
    build([deck_tree], tmp_path / "b", now=2000)
    after = ids(deck_tree)
    assert after["What does softmax return?"] not in before.values()
    assert {q: after[q] for q in before} == before


def test_the_same_page_built_fresh_elsewhere_gets_the_same_ids(deck_tree, page, tmp_path):
    other = tmp_path / "other"
    put(other, PAGE, seed("000"))
    assert ids(deck_tree) == ids(other)


def test_a_renamed_and_edited_page_keeps_its_ids_and_the_lock_follows_it(
    deck_tree, page, tmp_path, monkeypatch
):
    monkeypatch.chdir(deck_tree)
    result, _ = edit_first(deck_tree, page, deck_tree / "Elsewhere" / "renamed.txt", tmp_path)
    assert {e["origin"] for e in lock_notes(deck_tree).values()} == {"Elsewhere/renamed.txt"}
    note = f"a renamed or moved {PAGE}, by 11 question(s) in common: its cards keep their ids"
    assert f"Elsewhere/renamed.txt: {note}" in result.report.notes


def test_a_new_page_never_takes_the_ids_of_a_page_that_is_still_there(deck_tree, page, tmp_path):
    build([deck_tree], tmp_path / "a", now=1000)
    before = ids(deck_tree)
    put(deck_tree, "Copy/000.txt", seed("000"))
    cards = collect([deck_tree]).cards
    copies = [c.id for c in cards if c.source.origin == "Copy/000.txt"]
    assert len(copies) == 12 and not set(copies) & set(before.values())


def test_only_the_best_matching_gone_page_is_taken_over(deck_tree, page, tmp_path):
    put(deck_tree, "Other/002.txt", seed("002"))
    build([deck_tree], tmp_path / "a", now=1000)
    before = {c.id: c.source.origin for c in collect([deck_tree]).cards}
    page.rename(deck_tree / "Attention" / "new.txt")
    (deck_tree / "Other" / "002.txt").rename(deck_tree / "Other" / "two.txt")
    after = {c.id: c.source.origin for c in collect([deck_tree]).cards}
    assert sorted(after) == sorted(before)
    renamed = {PAGE: "Attention/new.txt", "Other/002.txt": "Other/two.txt"}
    assert all(after[guid] == renamed[origin] for guid, origin in before.items())


def test_a_renamed_file_gives_the_package_a_clean_build_gives(deck_tree, tmp_path):
    put(deck_tree, "Deck/003.txt", seed("003"))
    out = tmp_path / "out"
    build([deck_tree], out, now=1000)
    (deck_tree / "Deck" / "003.txt").rename(deck_tree / "Deck" / "renamed.txt")
    lock = (deck_tree / "deckbuild.lock").read_bytes()
    clean = tmp_path / "clean"
    shutil.copytree(deck_tree, clean)
    (package,) = build([deck_tree], out, now=2000).packages
    (expected,) = build([clean], tmp_path / "clean-out", now=2000, use_cache=False).packages
    assert package.read_bytes() == expected.read_bytes()
    assert b"source::renamed" in collection_db(package)
    mods = {e["mod"] for e in lock_notes(deck_tree).values()}
    assert mods == {1000} and lock != (deck_tree / "deckbuild.lock").read_bytes()


def collection_db(package):
    with zipfile.ZipFile(package) as archive:
        return archive.read("collection.anki2")


@pytest.mark.parametrize("target", ["Attention/recall.txt", "Elsewhere/recall.txt"])
def test_a_page_split_in_two_keeps_every_card_its_id_and_its_reviews(
    deck_tree, page, tmp_path, collection, target
):
    from ankihelp import card_states, import_package, notes_by_guid, study_all

    (first,) = build([deck_tree], tmp_path / "one", now=1000).packages
    import_package(collection, first)
    study_all(collection)
    states = card_states(collection)
    before = ids(deck_tree)
    lines = page.read_text(encoding="utf-8").splitlines(keepends=True)
    # The Recall & Review section moves, byte for byte, to a file of its own.
    put(deck_tree, target, "".join(lines[:21]))
    page.write_text("".join(lines[21:]), encoding="utf-8")
    result = build([deck_tree], tmp_path / "two", now=2000)
    assert ids(deck_tree) == before, "every card keeps its id, in whichever file it now stands"
    assert "retired" not in result.report.counts
    assert any(
        n.endswith("recall.txt: 5 card(s) moved here from another file keep their ids")
        for n in result.report.notes
    )
    for package in result.packages:
        import_package(collection, package)
    assert sorted(notes_by_guid(collection)) == sorted(before.values()), "no duplicate, nothing lost"
    assert all(card_states(collection)[cid][:8] == state[:8] for cid, state in states.items())


def test_a_copied_section_gets_new_ids_and_the_original_keeps_its_own(deck_tree, page, tmp_path):
    build([deck_tree], tmp_path / "one", now=1000)
    before = ids(deck_tree)
    put(
        deck_tree,
        "Attention/recall.txt",
        "".join(page.read_text(encoding="utf-8").splitlines(keepends=True)[:21]),
    )
    cards = collect([deck_tree]).cards
    original = {c.card.question: c.id for c in cards if c.source.origin == PAGE}
    copies = [c.id for c in cards if c.source.origin == "Attention/recall.txt"]
    assert original == before and len(copies) == 5 and not set(copies) & set(before.values())


def _recall_page(questions):
    return "Recall & Review\n" + "".join(f"{q}\nIt is.\nClick to reveal answer\n" for q in questions)


def test_a_page_repeating_one_question_makes_each_id_once(deck_tree, monkeypatch):
    from deckbuild import ids as ids_module

    calls = []
    real = ids_module.uuid.uuid5
    monkeypatch.setattr(ids_module.uuid, "uuid5", lambda ns, name: calls.append(name) or real(ns, name))
    put(deck_tree, "D/a.txt", _recall_page(["What is x?"] * 300))
    cards = collect([deck_tree]).cards
    assert len({c.id for c in cards}) == 300
    assert len(calls) == 300, "one uuid5 per card: numbering goes on where it stopped, never from 0"


def test_editing_every_question_of_a_long_page_is_bounded_and_said(deck_tree, tmp_path):
    questions = [f"What is the meaning of term number {n} in this long glossary?" for n in range(600)]
    source = put(deck_tree, "D/a.txt", _recall_page(questions))
    build([deck_tree], tmp_path / "one", now=1000)
    source.write_text(_recall_page([q.replace("What is", "What was") for q in questions]), encoding="utf-8")
    report = collect([deck_tree]).report
    (warning,) = [p for p in report.problems if "too many to pair by similarity" in p.message]
    assert (warning.line, warning.message) == (
        2,
        "600 questions changed and 600 lost their match in one build: too many to pair "
        "by similarity (at most 250,000 pairs), so they get new ids and learners lose their reviews; "
        "edit fewer questions between builds",
    )


def test_a_few_edits_on_a_long_page_still_keep_their_ids(deck_tree, tmp_path):
    questions = [f"What is the meaning of term number {n} in this long glossary?" for n in range(600)]
    source = put(deck_tree, "D/a.txt", _recall_page(questions))
    build([deck_tree], tmp_path / "one", now=1000)
    before = ids(deck_tree)
    edited = [q.replace("What is", "What was") if n % 100 == 0 else q for n, q in enumerate(questions)]
    source.write_text(_recall_page(edited), encoding="utf-8")
    after = ids(deck_tree)
    assert sorted(after.values()) == sorted(before.values())
    assert after[edited[100]] == before[questions[100]]


def test_a_page_renamed_and_edited_in_one_go_keeps_its_ids(deck_tree, tmp_path):
    questions = [f"What does step {n} of the attention computation produce?" for n in range(6)]
    old = put(deck_tree, "Attention/page.txt", _recall_page(questions))
    build([deck_tree], tmp_path / "one", now=1000)
    before = ids(deck_tree)
    # Every question touched (a typo fixed everywhere), and the page renamed, in one commit.
    old.unlink()
    put(
        deck_tree,
        "Attention/renamed.txt",
        _recall_page([q.replace("What does", "What do") for q in questions]),
    )
    after = ids(deck_tree)
    assert sorted(after.values()) == sorted(before.values()), "every card kept its id"


def test_ids_free_for_moved_cards_are_indexed_once_per_lock_however_many_files(deck_tree, monkeypatch):
    from deckbuild.lock import Lock

    calls = []
    real = Lock.unclaimed_by_key
    monkeypatch.setattr(Lock, "unclaimed_by_key", lambda self: calls.append(1) or real(self))
    for n in range(20):
        put(deck_tree, f"D/page{n}.txt", _recall_page([f"What is item {n}?"]))
    assert len(collect([deck_tree]).cards) == 20
    assert len(calls) == 1


def _repeated_page(answers):
    """A recall page whose cards all ask one question, each with its own answer."""
    return "Recall & Review\n" + "".join(
        f"beginner\nWhat does this term mean?\n{a}\nClick to reveal answer\n" for a in answers
    )


TERMS = [f"Term {n}: what it means, in {n} words." for n in range(6)]


def _ids_by_answer(root):
    return {c.card.answer: c.id for c in collect([root]).cards}


def test_an_unchanged_page_repeating_a_question_keeps_every_id_and_the_lock(deck_tree, tmp_path):
    put(deck_tree, "D/page.txt", _repeated_page(TERMS))
    build([deck_tree], tmp_path / "a", now=1000, use_cache=False)
    lock = (deck_tree / "deckbuild.lock").read_bytes()
    first = _ids_by_answer(deck_tree)
    again = build([deck_tree], tmp_path / "b", now=2000, use_cache=False)
    assert again.lock_changed == [] and (deck_tree / "deckbuild.lock").read_bytes() == lock
    assert _ids_by_answer(deck_tree) == first
    assert (tmp_path / "a" / "D.apkg").read_bytes() == (tmp_path / "b" / "D.apkg").read_bytes()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kept=st.lists(st.sampled_from(range(len(TERMS))), unique=True, min_size=1), edit=st.integers(-1, 5))
def test_cards_sharing_a_question_keep_their_ids_whichever_are_deleted_or_moved(tmp_path_factory, kept, edit):
    root = tmp_path_factory.mktemp("tree") / "decks"
    out = root.parent / "out"
    put(root, "D/page.txt", _repeated_page(TERMS))
    build([root], out, now=1000, use_cache=False)
    before = _ids_by_answer(root)
    answers = [TERMS[n] for n in kept]  # some deleted, the rest in any order
    edited = edit if 0 <= edit < len(kept) and kept == sorted(kept) else None  # edited in place
    if edited is not None:
        answers[edited] += " Edited."
    put(root, "D/page.txt", _repeated_page(answers))
    build([root], out, now=2000, use_cache=False, previous=[out])
    after, lock = _ids_by_answer(root), lock_notes(root)
    for at, n in enumerate(kept):
        if at != edited:
            assert after[answers[at]] == before[TERMS[n]], f"{answers[at]!r} changed id"
            assert lock[before[TERMS[n]]]["mod"] == 1000, "an unchanged card's note moved"
    if edited is not None:
        # Its own id, unless a card deleted beside it could as well have been the one edited.
        low = kept[edited - 1] if edited else -1
        high = kept[edited + 1] if edited + 1 < len(kept) else len(TERMS)
        own = before[TERMS[kept[edited]]]
        if all(n in kept for n in range(low + 1, high)):
            assert after[answers[edited]] == own
        else:
            assert after[answers[edited]] in {own} | {before[TERMS[n]] for n in range(low + 1, high)}
    retired = {g for g, e in lock.items() if "fields" in e}
    assert retired == set(before.values()) - set(after.values())  # the deleted cards' ids


def test_in_anki_repeated_questions_keep_their_reviews_through_rebuilds(deck_tree, tmp_path, collection):
    from ankihelp import card_states, import_package, notes_by_guid, study_all

    put(deck_tree, "D/page.txt", _repeated_page(TERMS))
    build([deck_tree], tmp_path / "a", now=1000, use_cache=False)
    import_package(collection, tmp_path / "a" / "D.apkg")
    study_all(collection)
    studied = {n.fields[1]: (guid, n.id) for guid, n in notes_by_guid(collection).items()}
    states = card_states(collection)
    # Built again unchanged (no cache), then with the first card deleted: each note keeps its text.
    build([deck_tree], tmp_path / "b", now=2000, use_cache=False)
    put(deck_tree, "D/page.txt", _repeated_page(TERMS[1:]))
    build([deck_tree], tmp_path / "c", now=3000, use_cache=False, previous=[tmp_path / "b"])
    for step in ("b", "c"):
        import_package(collection, tmp_path / step / "D.apkg")
        assert {n.fields[1]: (guid, n.id) for guid, n in notes_by_guid(collection).items()} == studied
        assert card_states(collection) == states  # every review kept, on the card it was made on


def test_cards_names_the_ids_the_package_gives_cards_sharing_a_question(deck_tree, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from deckbuild.cli import cli
    from deckbuild.packaged import read_package

    card = "beginner\nWhat does this term mean?\n{}\nClick to reveal answer\n"
    put(
        deck_tree,
        "A/r.txt",
        "Recall & Review\n" + card.format("Alpha: the first") + card.format("Beta: the second"),
    )
    (apkg,) = build([deck_tree], tmp_path / "dist", now=1_750_000_000).packages
    shipped = {note.fields[1]: guid for guid, note in read_package(apkg).notes.items()}
    monkeypatch.chdir(deck_tree.parent)
    listed = json.loads(CliRunner().invoke(cli, ["cards", "decks", "--json"]).stdout)
    assert {shipped[f"<p>{c['answer']}</p>"]: c["id"] for c in listed} == {g: g for g in shipped.values()}


def test_a_row_whose_uuid_was_deleted_is_told_which_uuids_the_lock_lost_from_its_file(deck_tree, tmp_path):
    # A new UUID would give learners a second card and retire the one they studied.
    one, two, three = (f"{n}{n}{n}{n}{n}{n}{n}{n}-{n}{n}{n}{n}-4{n}{n}{n}-8{n}{n}{n}-{n * 12}" for n in "123")
    rows = f"What is a key?;A key.;{one}\nWhat is a value?;A value.;{two}\nWhat is a query?;Q.;{three}\n"
    put(deck_tree, "Deck/cards.txt", "Question;Answer;UUID\n" + rows)
    build([deck_tree], tmp_path / "dist", now=1_700_000_000)
    put(deck_tree, "Deck/cards.txt", "Question;Answer;UUID\n" + rows.replace(two, "").replace(three, ""))
    report = collect([deck_tree]).report
    shown = "Deck/cards.txt"
    assert [str(p).split(f"{deck_tree}/")[-1] for p in report.problems] == [
        f"{shown}:3: no UUID; run 'deckbuild ids' to write a new one into the file",
        f"{shown}:4: no UUID; run 'deckbuild ids' to write a new one into the file",
        f"{shown}:3: warning: the lock keeps 2 card(s) of this file that no row holds now ({two}, {three}): "
        "if a row's UUID was deleted, write that UUID back (git diff shows it), so that learners keep "
        "its reviews; 'deckbuild ids' would make it a new card",
    ]
