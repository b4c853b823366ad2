"""Rows the memo takes over as they are read: exactly what reading every row in full gives.

`collect` hands a semicolon row straight to the memo when its cheap checks show that limits,
UUID case, answers and signature would all leave it as read. These tests run `collect` with
that fast path and without it (every row read in full) on generated files and locks, and
require the same cards, signatures, problems, counts and memo entries read.
"""

from __future__ import annotations

import json
import marshal
import tempfile
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from conftest import put, seed
from deckbuild import build as build_module
from deckbuild import cache
from deckbuild.build import build, collect
from deckbuild.errors import Report
from deckbuild.limits import MAX_FIELD_CHARS, MAX_NESTING, card_problem, joined_within_limits, suspect_lines
from deckbuild.lock import LOCK_FORMAT
from deckbuild.memo import Memo, signature_of
from deckbuild.notetype import NOTE_TYPE_ID, NOTE_TYPES
from memohelp import memo_groups

# As UUIDs mostly are: a letter among their first digits (33 digits or dashes in a row start a
# prefix too deep to take over, a card the fast path leaves).
IDS = [str(uuid.UUID(int=(n + 1) * 0xA1B2C3D4E5F6A7B8C9D0E1F2A3B4C5D6 % 2**128, version=4)) for n in range(6)]
# Pieces that each step between reading and the memo looks for, and text around them.
PIECES = [
    "a", "b c", " ", "\t", ";", '"', '""', "{{", "}}", "{{c1::x}}", "{{calc softmax x=[[1, 2]]}}",
    "{{ calc softmax x=[[1]]}}", "[", "]", "(", "{", "Q=[[1, 0]] K=[[1, 0]] V=[[1, 2]]", "[[0.5]]",
    "\x1d", "\x1e", "\x0c", "\r", "\u00a0", "\u0663", "-" * 33, "1" * 40, "> " * 20, "- " * 20, "1." * 17,
    "(" * 33, "x" * 300, '"a\n{{c1::b}}"', '"\n' + "> " * 40 + '"', "yes", "no", "maybe", "tag1 tag2", "İ",
    *IDS, IDS[0].upper(), IDS[1][:-1] + "X",
    str(uuid.UUID(int=1)),
]  # fmt: skip
COLUMNS = ["Tags", "Hint", "Extra", "Reverse", "Notetype"]
# Half of them plain text, so that many rows are taken over (and their columns' cells vary).
PLAIN = ["a", "What is x?", " padded\t", "tag1 tag2", "yes", "no", "", "x" * 300, "1. a", "(b)"]
cell = st.one_of(st.sampled_from(PLAIN), st.lists(st.sampled_from(PIECES), max_size=5).map("".join))


_WIDTH = len(NOTE_TYPES[NOTE_TYPE_ID].fields)


class _KnowsAll:
    """A memo's entries that hold a rendering for every signature: every row is a memo hit.

    The entries of cards whose signature holds one of `failing` do not hold once decoded: some
    are damaged, some show an image that is gone. Those cards are rendered again.
    """

    entry = cache.encode_memo(([f"f{n}" for n in range(_WIDTH)], "d", [], [], {}))
    # Entries that hold but are not plain (a problem told, a lock extra kept): a signature that
    # holds "b" or "x" takes one of these.
    HOLDING = (
        cache.encode_memo(([f"f{n}" for n in range(_WIDTH)], "d", [["warning", "a problem"]], [], {})),
        cache.encode_memo(([f"f{n}" for n in range(_WIDTH)], "d", [], [], {"deck": "Other"})),
    )
    FAILING = (
        cache.encode_memo((["f"], "d", [], [], {})),  # as many fields as no note type has
        b"\x00damaged",
        cache.encode_memo(([f"f{n}" for n in range(_WIDTH)], "d", [], [["gone.png", "gone.png", 1, 1]], {})),
        cache.encode_memo(([f"f{n}" for n in range(_WIDTH)], "d", [["a problem, wrongly shaped"]], [], {})),
    )

    def __init__(self, failing: tuple[str, ...] = ()) -> None:
        self.failing = failing

    def get(self, sig: str) -> bytes | None:
        for n, part in enumerate(self.failing):
            if part in sig:
                return self.FAILING[n % len(self.FAILING)]
        for n, part in enumerate(("b", "x")):
            if part in sig.rsplit("\x1e", 1)[-1]:
                return self.HOLDING[n]
        return self.entry


class _Store:
    db = object()


class _Memo(Memo):
    """A memo that knows every card, and remembers which signatures were read."""

    def __init__(self, failing: tuple[str, ...] = ()) -> None:
        super().__init__(_Store())  # type: ignore[arg-type]
        self.read: dict[str, set[str]] = {}
        self.failing = failing
        # The entries of cards rendered again, by file: what the memo would store of them.
        self.kept: dict[str, dict[str, bytes | None]] = {}

    def table(self, source: Any) -> tuple[Any, set[str], dict[str, str | None]]:
        return _KnowsAll(self.failing), self.read.setdefault(source.display, set()), {"origin": source.origin}

    def keep(self, source: Any, entries: dict[str, bytes | None]) -> None:
        self.kept.setdefault(source.display, {}).update(entries)

    def holds(self, source: Any) -> bool:
        return True


@st.composite
def files(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    """A semicolon file (sections, odd rows and all), and the lock's notes by id."""
    sections = []
    for _ in range(draw(st.integers(1, 2))):
        names = ["Question", "Answer", draw(st.sampled_from(["UUID", "GUID", "uuid"]))]
        names += draw(st.lists(st.sampled_from(COLUMNS), unique=True, max_size=2))
        order = draw(st.permutations(names))
        id_at = next(n for n, name in enumerate(order) if name.lower() in ("uuid", "guid"))
        rows = []
        for _ in range(draw(st.integers(0, 6))):
            cells = [draw(cell) for _ in order]
            cells[id_at] = draw(st.sampled_from([*IDS, IDS[2].upper(), "", " " + IDS[3], cells[id_at]]))
            rows.append(";".join(cells))
        blank = draw(st.sampled_from(["\n", "\n\n"]))
        sections.append(";".join(order) + "\n" + blank.join(rows))
    text = "\n\n".join(sections) + "\n"
    known = draw(st.lists(st.sampled_from([*IDS, IDS[4].upper()]), unique=True))
    return text, {guid: draw(st.sampled_from(["D/a.txt", "D/b.txt"])) for guid in known}


def _outcome(root: Path, fast: bool, monkeypatch: pytest.MonkeyPatch, failing: tuple[str, ...] = ()) -> Any:
    with monkeypatch.context() as patch:
        if not fast:
            patch.setattr(build_module._Known, "__call__", lambda self, columns: lambda *row: False)
        memo = _Memo(failing)
        collection = collect([root], Report(), memo)
    cards = [
        (p.source.display, p.line, p.id, p.tags, p.extra, p.sig, p.rendered, p.images,
         p.notetype, p.kept, p.card)
        for p in collection.cards
    ]  # fmt: skip
    report = collection.report
    locks = {path: (sorted(lock.notes), sorted(lock.claimed)) for path, lock in collection.locks.items()}
    return cards, report.problems, report.counts, report.notes, locks, memo.read, memo.kept


def _tree(root: Path, text: str, notes: dict[str, str]) -> None:
    put(root, "D/a.txt", text)
    put(root, "D/b.txt", text.replace("\n", "\n\n", 1))
    lock = {"deckbuild_lock": LOCK_FORMAT, "notetypes": {}}
    lock["notes"] = {guid: {"hash": "0" * 16, "mod": 1, "origin": origin} for guid, origin in notes.items()}
    put(root, "deckbuild.lock", json.dumps(lock))


# A row each step between reading and the memo changes, or speaks about, in a plain section.
EACH_STEP = [
    "Q=[[1, 0]] K=[[1, 0]] V=[[1, 2]];",  # the answer is computed
    "Q=[[1, 0]] K=[[1, 0]] V=[[1, 2]];[[9.0]]",  # the stated answer disagrees
    "{{c1::x}};",  # a cloze
    "x;{{calc softmax x=[[1, 2]]}}",  # a directive
    "x;{{ calc softmax x=[[1]]}}",  # a near miss
    "x;a\x1db",  # a signature of another shape
    "x;" + "(" * (MAX_NESTING + 1),  # over the limits
    "x;" + "> " * (MAX_NESTING + 1),
    "> " * (MAX_NESTING + 1) + ";x",
    'x;"a\n{{calc softmax x=[[1, 2]]}}"',  # quoted over two lines: a directive on the second
    'x;"a\n' + "> " * (MAX_NESTING + 1) + '"',  # and too deep on the second
    "x;" + "y" * MAX_FIELD_CHARS,
]


@given(files())
@example((f"Question;Answer;UUID\nq;a;{IDS[0]}\nq2 [x];a;{IDS[1]}\n", {IDS[0]: "D/a.txt", IDS[1]: "D/a.txt"}))
@example(("".join(f"Question;Answer;UUID\n{row};{IDS[0]}\n\n" for row in EACH_STEP), {IDS[0]: "D/a.txt"}))
@example((f"Question;Answer;UUID\nq;a;{IDS[0].upper()}\nr;b;{IDS[1]}\n", {IDS[0]: "D/a.txt"}))
@example((f"Question;Answer;GUID\nq;a;{IDS[0]}\n", {IDS[0]: "D/a.txt"}))
@example((f"Question;Answer;UUID;Reverse\nq;a;{IDS[0]};maybe\nr;b;{IDS[1]};yes\n", {IDS[0]: "D/a.txt"}))
@example((f"Question;Answer;UUID\nq;a;{IDS[0]}\nr;b;{IDS[0]}\n", {IDS[0]: "D/a.txt"}))
@example((f"Question;Answer;UUID\nq;a; \nr;b;{IDS[0]}\n", {IDS[0]: "D/a.txt"}))
def test_rows_taken_over_give_what_reading_them_in_full_gives(generated):
    text, notes = generated
    with pytest.MonkeyPatch.context() as monkeypatch, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "decks"
        _tree(root, text, notes)
        assert _outcome(root, True, monkeypatch) == _outcome(root, False, monkeypatch)


# What a failing entry's signature holds: a card's UUID, or its question is "q" or "a" (all of them).
FAILING = [*IDS, "\x1dq\x1d", "a"]
TWO_ROWS = f"Question;Answer;UUID\nq;a;{IDS[0]}\nr;b;{IDS[1]}\n"


@given(files(), st.lists(st.sampled_from(FAILING), unique=True, min_size=1, max_size=4).map(tuple))
@example((TWO_ROWS + f"q;a;{IDS[0]}\n", {IDS[0]: "D/a.txt"}), (IDS[0],))
@example((TWO_ROWS.replace(";a;", ";;"), {IDS[0]: "D/a.txt", IDS[1]: "D/a.txt"}), ("\x1dq\x1d",))
@example((TWO_ROWS, {IDS[0]: "D/a.txt", IDS[1]: "D/b.txt"}), ("a",))
@example((TWO_ROWS, {IDS[0]: "D/a.txt", IDS[1]: "D/a.txt"}), (IDS[5], IDS[4], IDS[3], "a"))
def test_rows_taken_over_whose_entries_do_not_hold_give_what_reading_them_in_full_gives(generated, failing):
    """Damaged, or showing an image gone: such a card is validated and rendered, as if read in full."""
    text, notes = generated
    with pytest.MonkeyPatch.context() as monkeypatch, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "decks"
        _tree(root, text, notes)
        fast = _outcome(root, True, monkeypatch, failing)
        assert fast == _outcome(root, False, monkeypatch, failing)


def test_the_fast_path_takes_the_plain_rows_of_a_seed(deck_tree, monkeypatch):
    """Not vacuous: most rows of a seed are taken over, and the result is the same."""
    put(deck_tree, "D/003.txt", seed("003"))
    build([deck_tree], deck_tree.parent / "out", now=1_750_000_000)
    taken = []
    real = build_module._Known.__call__

    def spy(self, columns):
        take = real(self, columns)

        def row(*args):
            taken.append(take(*args))
            return taken[-1]

        return row

    monkeypatch.setattr(build_module._Known, "__call__", spy)
    fast = _outcome(deck_tree, True, monkeypatch)
    assert sum(taken) > len(taken) // 2
    assert fast == _outcome(deck_tree, False, monkeypatch)


texts = st.lists(st.sampled_from([*PIECES[:31], "\n"]), max_size=8).map("".join)


@given(st.lists(texts, min_size=1, max_size=4))
@example(["a", "\u0663" * 33])
@example(["x" * (MAX_FIELD_CHARS - 2), "ab"])
@example(["(" * MAX_NESTING, "a"])
def test_texts_within_limits_by_their_joined_text_are_within_them(values):
    """Where the joined check passes, the full check finds nothing (never the other way round)."""
    values = [v for v in values if "\x1d" not in v and "\n" not in v]
    joined = "\x1d".join(values)
    data = {f"k{n}": v for n, v in enumerate(values)}
    if joined_within_limits(joined):
        assert card_problem(data) is None


# Entries as a damaged or planted memo row could hold them (a row signed by this cache's key
# holds only what `pack` wrote; these are what the decoder must still answer safely).
_WIDTHS = sorted({len(nt.fields) for nt in NOTE_TYPES.values()})
_texts = st.text(max_size=4)
_fields = st.one_of(
    st.sampled_from(_WIDTHS).flatmap(lambda n: st.lists(_texts, min_size=n, max_size=n)),
    st.lists(st.one_of(_texts, st.integers(), st.none()), max_size=_WIDTH + 1),
    _texts,
    st.tuples(*[_texts] * _WIDTH),
)
_small = st.sampled_from([[], (), {}, frozenset(), None, "", 0, 1])
_entries = st.one_of(
    st.tuples(
        _fields,
        st.one_of(_texts, st.binary(max_size=2), st.none()),
        st.one_of(_small, st.just([["warning", "a"]]), st.just([["bad"]])),
        st.one_of(_small, st.just([["a.png", "a.png", 1, 1]])),
        st.one_of(_small, st.just({"deck": "x"}), st.just({1: "x"}), st.just({"deck": 1})),
    ).map(marshal.dumps),
    st.lists(st.one_of(_fields, _texts), min_size=5, max_size=5).map(marshal.dumps),
    st.binary(max_size=12),
)


@settings(max_examples=400)
@given(st.lists(_entries, max_size=6))
@example([_KnowsAll.entry])  # plain: the shortcut's own case
def test_settling_an_entry_gives_what_the_full_decoder_gives_for_any_bytes(stored):
    """The plain-entry shortcut in `_Known.settle`: the same rendering, extras and images, or a miss."""
    recall = object.__new__(build_module._Recall)
    recall.origin, recall.root = {"origin": "D/a.txt"}, Path("/nonexistent")
    known = object.__new__(build_module._Known)
    known.recall = recall
    cards = [SimpleNamespace(line=1, id="u") for _ in stored]
    known.later = [(card, entry, "q", "a") for card, entry in zip(cards, stored, strict=True)]
    failed = {id(card) for card, _ in known.settle()}
    for card, entry in zip(cards, stored, strict=True):
        hit = recall.decoded(entry)
        assert (id(card) in failed) == (hit is None)
        if hit is not None:
            assert (card.rendered, card.extra, card.images) == hit
            assert [type(f) for f in card.rendered.fields] == [type(f) for f in hit[0].fields]


# Lines of a semicolon file as the fast path meets them: fields with brackets, prefix runs after
# any whitespace, other scripts' digits, lengths at the limit.
line_texts = st.lists(
    st.sampled_from([*PIECES[:31], "\u3000", "\u2003", "٣" * 11, "x" * (MAX_FIELD_CHARS // 3), "(a) " * 11]),
    max_size=10,
).map("".join)


@given(st.lists(line_texts, max_size=6))
@example(["a;b;" + "(" * MAX_NESTING, "(" * (MAX_NESTING + 1)])
@example(["\u00a0" + "\u0663" * (MAX_NESTING + 1) + ";a;b", "a;" + "> " * (MAX_NESTING // 2 + 1) + ";b"])
@example(["x" * MAX_FIELD_CHARS + ";;", "x" * MAX_FIELD_CHARS + ";", ";" + "x" * (MAX_FIELD_CHARS - 1)])
@example(["a;" + "\t>" * (MAX_NESTING // 2 + 1) + ";b", "a;b;" + "1." * (MAX_NESTING // 2 + 1) + ")"])
def test_a_line_outside_the_suspect_lines_holds_only_cards_within_the_limits(lines):
    """Every card made of a line's fields that `joined_within_limits` refuses is on a suspect line.

    All of a line's fields joined have every length, bracket and field start any of its cards has.
    """
    lines = [piece for line in lines for piece in line.split("\n")]  # as the file's lines
    suspect = suspect_lines(lines)
    for n, line in enumerate(lines):
        joined = "\x1d".join(field.strip() for field in line.split(";"))
        if "\x1d" not in line and not joined_within_limits(joined):
            assert n in suspect, line


@settings(max_examples=300)
@given(files(), st.lists(line_texts, max_size=3))
@example(("Question;Answer;UUID\n" + "x" * MAX_FIELD_CHARS + ";a;" + IDS[0] + "\n", {}), [])
@example(("Question;Answer;UUID\nq;" + "(" * (MAX_NESTING + 1) + ";" + IDS[0] + "\n", {}), [])
@example(("Question;Answer;UUID\nq;a;" + IDS[0] + "\n", {}), ["q;" + "> " * (MAX_NESTING // 2 + 1) + ";u"])
def test_a_first_build_skips_the_check_of_cards_on_lines_outside_the_suspect_ones_alike(generated, more):
    """Cards read in full from a semicolon file: kept and reported as the check of every card has it."""
    from deckbuild.limits import within_limits
    from deckbuild.readers import semicolon

    text, _ = generated
    lines = (text + "\n".join(f"{line};{IDS[5]}" for line in more)).split("\n")
    if more:
        lines.insert(len(lines) - len(more), "")  # a section of their own, under the first header
        lines.insert(len(lines) - len(more), lines[0])
    raws = semicolon.read("D/a.txt", lines, Report())
    fast, full = Report(), Report()
    assert within_limits(raws, "D/a.txt", fast, lines) == within_limits(raws, "D/a.txt", full)
    assert (fast.problems, fast.counts) == (full.problems, full.counts)


@given(texts, texts, texts)
def test_the_plain_signature_is_the_signature(uuid_, question, answer):
    if "\x1d" in uuid_ + question + answer:
        return
    plain = "basic\x1eid\x1dquestion\x1danswer\x1e" + f"{uuid_}\x1d{question}\x1d{answer}"
    assert plain == signature_of("basic", {"id": uuid_, "question": question, "answer": answer})


REBUILT_IN_A_FRESH_PROCESS = """
import sys
from pathlib import Path
from deckbuild.build import build
build([Path(sys.argv[1])], Path(sys.argv[2]), now=1_750_000_100, jobs=1)
print("deckbuild.answers" in sys.modules, "deckbuild.calc" in sys.modules)
"""


def test_a_rebuild_that_reads_no_row_in_full_never_imports_the_answers(deck_tree, own_cache):
    # A card removed: every other row is taken from the memo as it was read, and nothing is
    # left for the answers module (and the calculator) to look at.
    import subprocess
    import sys

    from synth import write_deck

    path = write_deck(deck_tree / "D" / "cards.txt", 20)  # rows the plain path takes, all of them
    build([deck_tree], deck_tree.parent / "out", now=1_750_000_000)
    text = path.read_text("utf-8").rstrip("\n")
    path.write_text(text[: text.rindex("\n")] + "\n", "utf-8")
    done = subprocess.run(
        [sys.executable, "-c", REBUILT_IN_A_FRESH_PROCESS, str(deck_tree), str(deck_tree.parent / "out")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.split() == ["False", "False"]


EDITED_IN_A_FRESH_PROCESS = """
import sys
from pathlib import Path
from deckbuild.build import build
done = build([Path(sys.argv[1])], Path(sys.argv[2]), now=1_750_000_100, jobs=2)
unneeded = ("deckbuild.render", "html", "markdown", "deckbuild.packaged", "genanki")
print(done.report.counts["rendered"], *(name in sys.modules for name in unneeded))
"""


def test_a_rebuild_checks_its_edited_card_against_the_limits_without_importing_the_renderers(
    deck_tree, own_cache
):
    # Its helper renders the edited card; this process only checks it against the field limits
    # (and writes the package from the empty collection kept in the cache, never reading one back).
    import subprocess
    import sys

    from synth import write_deck

    path = write_deck(deck_tree / "D" / "cards.txt", 20)
    build([deck_tree], deck_tree.parent / "out", now=1_750_000_000)
    path.write_text(path.read_text("utf-8").replace("step 3 of", "step three of"), "utf-8")
    done = subprocess.run(
        [sys.executable, "-c", EDITED_IN_A_FRESH_PROCESS, str(deck_tree), str(deck_tree.parent / "out")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.split() == ["1", "False", "False", "False", "False", "False"]


def test_an_edited_card_still_reaches_the_package_and_the_rest_come_from_the_memo(deck_tree, own_cache):
    path = put(deck_tree, "D/003.txt", seed("003"))
    build([deck_tree], deck_tree.parent / "out", now=1_750_000_000)
    lines = path.read_text("utf-8").split("\n")
    question, rest = lines[2].split(";", 1)
    lines[2] = f"{question} edited;{rest}"
    path.write_text("\n".join(lines), "utf-8")
    result = build([deck_tree], deck_tree.parent / "out", now=1_750_000_100)
    assert result.report.counts["rendered"] == 1
    memo = Memo(cache.Cache(own_cache))
    [source] = [s for s in build_module.discover([deck_tree], Report())]
    assert any(f"{question} edited" in sig for sig in memo.table(source)[0])


def test_a_file_the_memo_holds_nothing_of_is_read_in_full_at_no_cost(deck_tree, monkeypatch):
    put(deck_tree, "D/003.txt", seed("003"))
    asked = []
    real = build_module._Known.__call__

    def spy(self, columns):
        asked.append(real(self, columns))
        return asked[-1]

    monkeypatch.setattr(build_module._Known, "__call__", spy)
    build([deck_tree], deck_tree.parent / "out", now=1_750_000_000)
    first = len(asked)
    assert first and asked == [None] * first  # no row-taker: a first build's memo holds nothing
    build([deck_tree], deck_tree.parent / "out", now=1_750_000_100)
    assert None not in asked[first:]


def test_asking_whether_the_memo_holds_a_file_leaves_what_it_stores_as_it_was(deck_tree, own_cache):
    put(deck_tree, "D/003.txt", seed("003"))
    build([deck_tree], deck_tree.parent / "out", now=1_750_000_000)
    before = memo_groups(own_cache)
    store = cache.Cache(own_cache)
    memo = Memo(store)
    [source] = build_module.discover([deck_tree], Report())
    assert memo.holds(source)
    memo.save()
    store.close()
    assert memo_groups(own_cache) == before
