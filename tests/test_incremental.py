"""A build after an edit, with a warm cache, gives exactly the bytes a cold build of the same sources gives.

Each step: the sources are edited; a cold build (an empty cache, a fresh output folder, the last
packages given as --previous) and an incremental one (the cache and output folder of the builds
before) start from the same lock at the same time, and must leave byte-identical packages and
lock files.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import DATA, put, seed
from deckbuild.build import build
from deckbuild.sources import LOCK_NAME

NOW = 1_750_000_000
HEADER = "Question;Answer;Tags;UUID"
NAMESPACE = uuid.UUID("0b6f3c8e-5a1d-4e27-9c40-7d2e8f1a6b93")


def _rows(first: int, count: int, image: bool = False) -> str:
    rows = [HEADER]
    for i in range(first, first + count):
        picture = " ![diagram](img/diagram.png)" if image and i == first else ""
        answer = f"Item {i} is \\( x_{i} \\) in *bold*.{picture}"
        rows.append(f"What is item {i}?;{answer};topic::t{i % 3} core;{uuid.uuid5(NAMESPACE, str(i))}")
    return "\n".join(rows) + "\n"


def make_tree(root: Path, with_seed: bool = True) -> None:
    """A deck tree with every kind of source an edit can touch."""
    put(root, "Deck/cards.txt", _rows(0, 4, image=True))
    put(root, "Deck/Sub/more.txt", _rows(10, 3))
    put(root, "Deck/page.txt", DATA / "quizpage" / "other_topic.txt")
    put(root, "Deck/img/diagram.png", b"\x89PNG first picture")
    if with_seed:
        put(root, "Deck/003.txt", seed("003"))


def _semicolon(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.txt") if p.read_text("utf-8").startswith(HEADER))


def _lines(path: Path) -> list[str]:
    return path.read_text("utf-8").splitlines()


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n", "utf-8")


def _pick(root: Path, n: int) -> tuple[Path, list[str], int]:
    """Pick a semicolon file and one of its rows (never the header, nor a blank line) by `n`."""
    files = _semicolon(root)
    path = files[n % len(files)]
    lines = _lines(path)
    rows = [i for i in range(1, len(lines)) if lines[i].strip()]  # reordering may add a blank
    return path, lines, rows[n % len(rows)]


def edit_field(root: Path, n: int, word: str) -> None:
    path, lines, row = _pick(root, n)
    question, answer, tags, guid = lines[row].split(";")
    lines[row] = f"{question};{answer} {word};{tags};{guid}"
    _write(path, lines)


def edit_tag(root: Path, n: int, word: str) -> None:
    path, lines, row = _pick(root, n)
    question, answer, _, guid = lines[row].split(";")
    lines[row] = f"{question};{answer};topic::{word} core;{guid}"
    _write(path, lines)


def add_card(root: Path, n: int, word: str) -> None:
    path, lines, _ = _pick(root, n)
    guid = uuid.uuid5(NAMESPACE, "".join(p.read_text("utf-8") for p in _semicolon(root)) + word)
    _write(path, [*lines, f"What is {word}?;{word} is new.;new;{guid}"])


def remove_card(root: Path, n: int, word: str) -> None:
    path, lines, row = _pick(root, n)
    if len(lines) > 2:  # a header with no rows is an error, not an edit
        _write(path, lines[:row] + lines[row + 1 :])
        with (root.parent / "removed").open("a", encoding="utf-8") as removed:  # outside the tree
            removed.write(lines[row] + "\n")


def restore_card(root: Path, n: int, word: str) -> None:
    """Put back the card removed last (retired by then): it is live again."""
    removed = root.parent / "removed"
    rows = _lines(removed) if removed.exists() else []
    if not rows:
        return remove_card(root, n, word)  # something to restore next time
    path, lines, _ = _pick(root, n)
    _write(path, [*lines, rows.pop()])
    removed.write_text("".join(r + "\n" for r in rows), "utf-8")


def reorder_rows(root: Path, n: int, word: str) -> None:
    path, lines, _ = _pick(root, n)
    _write(path, [lines[0], *reversed(lines[1:])] if n % 2 else [lines[0], "", *lines[1:]])


def rename_file(root: Path, n: int, word: str) -> None:
    sources = sorted(root.rglob("*.txt"))  # a quiz page too: its cards keep their ids
    path = sources[n % len(sources)]
    target = path.with_name(f"{word}.txt")
    if not target.exists() and target.name.lower() != path.name.lower():
        path.rename(target)


def move_card(root: Path, n: int, word: str) -> None:
    files = _semicolon(root)
    path, lines, row = _pick(root, n)
    other = files[(files.index(path) + 1) % len(files)]
    if other != path and len(lines) > 2:
        _write(other, [*_lines(other), lines[row]])
        _write(path, lines[:row] + lines[row + 1 :])


def edit_page(root: Path, n: int, word: str) -> None:
    page = next((p for p in sorted(root.rglob("*.txt")) if "Recall & Review" in p.read_text("utf-8")), None)
    if page is None:
        return
    text = page.read_text("utf-8")
    if n % 3 == 1:  # an answer
        text = text.replace("The input must be sorted.", f"The input must be sorted, {word}.", 1)
    elif n % 3 == 2:  # an item taken out: its card is retired
        text = text.replace("O(log n), because each step halves the range.\nClick to reveal answer\n", "", 1)
        text = text.replace("What is the time complexity of binary search?\n", "", 1)
    else:  # a question, still like the one before: it keeps its id
        text = text.replace("of binary search?", f"of binary search {word}?", 1)
    page.write_text(text, "utf-8")


def change_image(root: Path, n: int, word: str) -> None:
    image = root / "Deck" / "img" / "diagram.png"
    old = image.read_bytes()
    new = (b"\x89PNG " + word.encode() * 20)[: len(old)] if n % 2 else b"\x89PNG " + word.encode()
    image.write_bytes(new if new != old else old + b"!")  # sometimes the same size, always other bytes


def swap_image_keeping_time(root: Path, n: int, word: str) -> None:
    """Put other bytes of the same size in the image and set its time back, as `cp -p` of an old copy does."""
    image = root / "Deck" / "img" / "diagram.png"
    before, old = image.stat(), image.read_bytes()
    new = (b"\x89PNG " + f"{word}{n}".encode() * 20)[: len(old)]
    image.write_bytes(new if new != old else old[::-1])
    os.utime(image, ns=(before.st_atime_ns, before.st_mtime_ns))


def rename_folder(root: Path, n: int, word: str) -> None:
    folders = sorted(p for p in (root / "Deck").iterdir() if p.is_dir() and p.name != "img")
    if folders:
        target = root / "Deck" / f"Sub{word}"
        if not any(p.name.lower() == target.name.lower() for p in (root / "Deck").iterdir()):
            folders[n % len(folders)].rename(target)


EDITS: dict[str, Callable[[Path, int, str], None]] = {
    "field": edit_field,
    "tag": edit_tag,
    "added card": add_card,
    "removed card": remove_card,
    "restored card": restore_card,
    "reordered rows": reorder_rows,
    "renamed file": rename_file,
    "moved card": move_card,
    "page": edit_page,
    "image": change_image,
    "image with its old time": swap_image_keeping_time,
    "renamed folder": rename_folder,
}


@contextmanager
def _cache_at(folder: Path) -> Iterator[None]:
    """Build with the cache in `folder` (the test's own cache is put back after)."""
    was = os.environ.get("DECKBUILD_CACHE_DIR")
    os.environ["DECKBUILD_CACHE_DIR"] = str(folder)
    try:
        yield
    finally:
        if was is None:
            del os.environ["DECKBUILD_CACHE_DIR"]
        else:
            os.environ["DECKBUILD_CACHE_DIR"] = was


class Builds:
    """A deck tree built incrementally, step by step, each step checked against a cold build."""

    def __init__(self, work: Path, with_seed: bool = True) -> None:
        self.work, self.root, self.step = work, work / "decks", 0
        make_tree(self.root, with_seed)
        self.warm_out, self.warm_cache = work / "dist", work / "cache"
        with _cache_at(self.warm_cache):
            build([self.root], self.warm_out, now=NOW)

    def _build(self, out: Path, cache: Path, previous: list[Path]) -> tuple[dict[str, bytes], bytes]:
        with _cache_at(cache):
            result = build([self.root], out, now=NOW + 60 * self.step, previous=previous)
        assert not result.report.errors
        return {p.name: p.read_bytes() for p in result.packages}, (self.root / LOCK_NAME).read_bytes()

    def edit(self, kind: str, n: int = 1, word: str = "edited") -> None:
        """Edit the sources, then build them cold and incrementally; the bytes must be the same."""
        self.step += 1
        lock = (self.root / LOCK_NAME).read_bytes()
        before = self.work / f"before-{self.step}"
        shutil.copytree(self.warm_out, before)
        sources = {p: p.read_bytes() for p in self.root.rglob("*") if p.is_file() and p.name != LOCK_NAME}
        EDITS[kind](self.root, n, word)
        cold = self._build(self.work / f"cold-{self.step}", self.work / f"cold-cache-{self.step}", [before])
        (self.root / LOCK_NAME).write_bytes(lock)  # the incremental build starts where the last one left
        warm = self._build(self.warm_out, self.warm_cache, [])
        assert warm[0] == cold[0], f"after {kind}: the packages differ from a cold build's"
        assert warm[1] == cold[1], f"after {kind}: the lock differs from a cold build's"
        self.changed = sources != {
            p: p.read_bytes() for p in self.root.rglob("*") if p.is_file() and p.name != LOCK_NAME
        }
        shutil.rmtree(before)


# Each kind, and the variants an edit picks by its number: a page's question, answer or item
# taken out; a quiz page renamed (3) besides a semicolon file (1); an image of the same size (1);
# rows reversed (1), or moved down a line (0).
CASES = [(kind, 1) for kind in EDITS] + [
    ("page", 0),
    ("page", 2),
    ("renamed file", 3),
    ("image", 0),
    ("reordered rows", 0),
]


@pytest.mark.parametrize("kind, n", CASES, ids=[f"{kind}-{n}" for kind, n in CASES])
def test_an_incremental_build_after_each_kind_of_edit_is_a_cold_build_byte_for_byte(kind, n, tmp_path):
    builds = Builds(tmp_path)
    if kind == "restored card":
        builds.edit("removed card", n)  # retired first
    first = {p.name: p.read_bytes() for p in builds.warm_out.iterdir()}
    builds.edit(kind, n)
    assert builds.changed, f"the {kind} edit changed no source"
    after = {p.name: p.read_bytes() for p in builds.warm_out.iterdir()}
    # Rows moved down a line show nowhere in a package: it stays as it was. Every other edit shows.
    assert (after != first) is ((kind, n) != ("reordered rows", 0))


EDIT_STEPS = st.lists(
    st.tuples(
        st.sampled_from(list(EDITS)),
        st.integers(0, 50),
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6),
    ),
    min_size=1,
    max_size=4,
)


# Two builds a step: a sixth of the profile's examples keeps `make test` within its time.
@settings(max_examples=max(5, settings.default.max_examples // 6))
@given(EDIT_STEPS)
def test_any_sequence_of_edits_builds_incrementally_to_the_bytes_of_cold_builds(steps):
    with tempfile.TemporaryDirectory() as work:
        builds = Builds(Path(work), with_seed=False)
        for kind, n, word in steps:
            builds.edit(kind, n, word)
