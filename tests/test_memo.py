"""The memo: a card read exactly as before is not validated or rendered again; nothing stale leaks."""

from __future__ import annotations

import sqlite3
import zipfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import put, seed
from deckbuild import models
from deckbuild.build import build
from deckbuild.cache import Cache
from deckbuild.errors import Report
from deckbuild.memo import Memo, Rendered, signature
from deckbuild.readers import RawCard
from deckbuild.sources import SourceFile, discover
from memohelp import memo_groups

NOW = 1_750_000_000


@pytest.fixture
def tree(deck_tree):
    put(deck_tree, "Deck/003.txt", seed("003"))
    put(deck_tree, "Deck/quiz.txt", seed("001"))
    build([deck_tree], deck_tree.parent / "first", now=NOW)
    return deck_tree


@pytest.fixture
def validations(monkeypatch):
    seen: list[str] = []
    real = models.make_card

    def counting(data):
        seen.append(data["source"])
        return real(data)

    monkeypatch.setattr(models, "make_card", counting)
    return seen


def _rows(own_cache, tree, name: str) -> int:
    [source] = [s for s in discover([tree], Report()) if s.path.name == name]
    return len(memo_groups(own_cache).get(Memo.group(source), {}))


def _notes(apkg) -> dict[str, str]:
    data = zipfile.ZipFile(apkg).read("collection.anki2")
    path = apkg.parent / "read.anki2"
    path.write_bytes(data)
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT guid, flds FROM notes"))


def test_only_the_edited_card_is_validated_and_rendered_again(tree, validations):
    source = tree / "Deck" / "003.txt"
    source.write_text(source.read_text("utf-8").replace("query vector (", "query vector, q ("), "utf-8")
    result = build([tree], tree.parent / "out", now=NOW + 10, jobs=1)  # counted in this process
    assert len(validations) == 1 and "/Deck/003.txt:" in validations[0]
    assert result.report.counts["rendered"] == 1
    assert any("query vector, q (" in f for f in _notes(result.packages[0]).values())


def test_the_memo_holds_exactly_the_cards_its_file_holds(tree, own_cache):
    before = _rows(own_cache, tree, "003.txt")
    source = tree / "Deck" / "003.txt"
    text = source.read_text("utf-8").rstrip("\n")
    source.write_text(text[: text.rindex("\n")] + "\n", "utf-8")  # the last card leaves
    build([tree], tree.parent / "out", now=NOW + 10)
    assert _rows(own_cache, tree, "003.txt") == before - 1
    assert _rows(own_cache, tree, "quiz.txt") > 0


def test_a_file_moved_to_another_deck_takes_its_new_deck_and_source(tree, validations):
    (tree / "Other").mkdir()
    (tree / "Deck" / "003.txt").rename(tree / "Other" / "003.txt")
    result = build([tree], tree.parent / "out", now=NOW + 10, jobs=1)
    assert len(validations) == 57, "a new file context is a new memo group"
    names = sorted(p.name for p in result.packages)
    assert names == ["Deck.apkg", "Other.apkg"]
    sources = {f.split("\x1f")[13] for f in _notes(tree.parent / "out" / "Other.apkg").values()}
    assert sources == {"Other/003.txt"}


def test_without_the_cache_every_card_is_validated(tree, validations):
    build([tree], tree.parent / "out", now=NOW + 10, use_cache=False, jobs=1)
    assert len(validations) == 72


def test_a_field_holding_anki_s_separator_is_not_remembered(tmp_path):
    class Store:
        db = object()

    memo = Memo(Store())  # type: ignore[arg-type]
    source = SourceFile(tmp_path / "d" / "x.txt", tmp_path / "d", "D", "D")
    memo.remember(source, "sig", Rendered(["a\x1fb"], "h"), {"origin": "x.txt"})
    assert memo._new == {}


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ({"question": "a\x1db", "answer": "c"}, {"question": "a", "answer": "b\x1dc"}),
        ({"question": "a", "answer": "b"}, {"question": "a", "answer": "b", "hint": ""}),
        ({"question": "a", "options": ["b"]}, {"question": "a", "options": "['b']"}),
        ({"question": "a", "answer": "b"}, {"answer": "b", "question": "a"}),
    ],
)
def test_cards_read_differently_have_different_signatures(one, other):
    assert signature(RawCard(1, "quiz", one)) != signature(RawCard(1, "quiz", other))
    assert signature(RawCard(1, "quiz", one)) == signature(RawCard(9, "quiz", dict(one)))


# Text made of the separators a signature uses, and of what starts a repr.
_TEXT = st.text(alphabet="ab(\x1d\x1e'", max_size=6)
_VALUE = st.one_of(_TEXT, _TEXT, st.none(), st.booleans(), st.lists(_TEXT, max_size=2))
_CARD = st.tuples(
    st.sampled_from(["basic", "cloze", "quiz"]),
    st.dictionaries(st.sampled_from(["id", "question", "answer", "hint", "options"]), _VALUE, max_size=4),
)


@given(_CARD, _CARD)
def test_signatures_are_equal_exactly_when_the_cards_are_read_alike(one, other):
    (kind, data), (other_kind, other_data) = one, other
    alike = kind == other_kind and list(data.items()) == list(other_data.items())
    assert (signature(RawCard(1, kind, data)) == signature(RawCard(2, other_kind, other_data))) == alike
    assert signature(RawCard(1, kind, data)) == signature(RawCard(3, kind, dict(data)))


@pytest.fixture
def memo_writes(monkeypatch) -> list[list[str]]:
    """The groups of each memo write a build hands to a thread of its own (as with jobs=1)."""
    written: list[list[str]] = []
    real = Cache.update_memo

    def recording(self, changes, files=()):
        written.append([change[0] for change in changes])  # the memo's groups (files kept whole aside)
        return real(self, changes, files)

    monkeypatch.setattr(Cache, "update_memo", recording)
    return written


def test_only_the_file_whose_cards_changed_has_its_memo_written_again(tree, memo_writes):
    written = memo_writes
    put(tree, "Deck/new.txt", "Question;Answer;UUID\nQ?;A.;d1111111-1111-4111-8111-111111111111\n")
    build([tree], tree.parent / "added", now=NOW + 5, jobs=1)
    source = tree / "Deck" / "003.txt"
    source.write_text(source.read_text("utf-8").replace("query vector (", "query vector, q ("), "utf-8")
    build([tree], tree.parent / "out", now=NOW + 10, jobs=1)
    group = {s.path.name: Memo.group(s) for s in discover([tree], Report())}
    assert written == [[group["new.txt"]], [group["003.txt"]]], "the files left as they were are not written"


def test_a_run_stores_its_memo_once_however_often_it_is_saved(tmp_path, memo_writes):
    """A build saves while it waits for a helper, and again on its way out: the second writes nothing."""
    store = Cache(tmp_path / "cache")
    memo = Memo(store)
    source = SourceFile(tmp_path / "d" / "x.txt", tmp_path / "d", "D", "D")
    memo.remember(source, "sig", Rendered(["a", "b"], "h"), {"origin": "x.txt"})
    memo.save()
    memo.save()
    store.close()
    assert memo_writes == [[Memo.group(source)]]
    assert list(memo_groups(tmp_path / "cache")[Memo.group(source)]) == ["sig"]


def test_the_memo_is_stored_while_a_helper_makes_the_empty_collection_else_beside_the_package(
    deck_tree, monkeypatch
):
    """A cold build waits for a helper to make the empty collection: the memo goes out then."""
    from deckbuild import build as build_module

    order: list[str] = []
    real_save, real_start = Memo.save, build_module._Build.start

    def save(self, helping=None):
        order.append("save")
        return real_save(self, helping)

    def start(self, plan):
        order.append("package")
        return real_start(self, plan)

    monkeypatch.setattr(Memo, "save", save)
    monkeypatch.setattr(build_module._Build, "start", start)
    row = "Q1;A1;11111111-1111-4111-8111-111111111111"
    source = put(deck_tree, "Deck/a.txt", f"Question;Answer;UUID\n{row}\n")
    build([deck_tree], deck_tree.parent / "out", now=NOW, jobs=2)
    assert order[:2] == ["save", "package"], "no empty collection in the cache yet"
    order.clear()
    source.write_text(source.read_text("utf-8").replace("A1", "A1 edited"), "utf-8")
    build([deck_tree], deck_tree.parent / "out", now=NOW + 10, jobs=2)
    assert order[:2] == ["package", "save"], "the empty collection comes from the cache"
