"""A rebuild after rows were edited in place patches the last package: the same bytes as a full build.

Each step edits the sources, then builds them twice from the same lock at the same time: with
the cache and output folder of the builds before (which may patch), and cold (an empty cache, a
fresh folder: always the full pipeline). The packages and lock files must be byte-identical; a
spy tells whether the warm build patched.
"""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ankihelp import card_states, import_package, notes_by_guid, study_all
from conftest import DECKS, put
from deckbuild import cache, package, patch, record
from deckbuild.errors import BuildFailed, LockChanged
from deckbuild.record import BuildResult, build
from deckbuild.sources import LOCK_NAME
from test_incremental import _cache_at

NOW = 1_750_000_000
HEADER = "Question;Answer;UUID"
NAMESPACE = uuid.UUID("5d0f2b8e-1c3a-4e6f-9a7b-2c4d6e8f0a1b")


def _rows(first: int, count: int) -> str:
    rows = [HEADER]
    for i in range(first, first + count):
        rows.append(f"What is item {i}?;Item {i} is \\( x_{i} \\) in *bold*.;{uuid.uuid5(NAMESPACE, str(i))}")
    return "\n".join(rows) + "\n"


PAGE = (
    "Recall & Review\nbeginner\nWhat is a hash table?\n"
    "A structure that maps keys to values through a hash function.\nClick to reveal answer\n"
    "intermediate\nWhat is a collision?\nTwo keys that hash to one slot.\nClick to reveal answer\n"
)


def make_tree(root: Path) -> None:
    """Two decks, so two packages, of plain rows, and a quiz page (whose cards have no UUIDs)."""
    put(root, "Alpha/cards.txt", _rows(0, 6))
    put(root, "Alpha/more.txt", _rows(10, 3))
    put(root, "Beta/cards.txt", _rows(20, 4))
    put(root, "Beta/page.txt", PAGE)


@pytest.fixture
def patched(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the packages written by patching."""
    made: list[int] = []
    real = package.patch_package

    def spy(*args: object) -> bytes | None:
        data = real(*args)  # type: ignore[arg-type]
        if data is not None:
            made.append(1)
        return data

    monkeypatch.setattr(package, "patch_package", spy)
    return made


class Builds:
    """A deck tree built step by step with a warm cache, each step checked against a cold build."""

    def __init__(self, work: Path) -> None:
        self.work, self.root, self.step = work, work / "decks", 0
        make_tree(self.root)
        self.out, self.cache = work / "dist", work / "cache"
        self.last: BuildResult | None = None
        with _cache_at(self.cache):
            result = build([self.root], self.out, now=NOW)
        assert not result.report.problems
        # The page's cards got new ids, which the report noted: the next build is a full one,
        # and leaves nothing to note (each step after it may patch).
        assert result.report.notes
        self.build(edit("Alpha/more.txt", 1, answer="Warm."))
        self.step = 0

    def build(self, edit: Callable[[Path], None]) -> None:
        """Edit the sources; the warm build must write what a cold one writes, byte for byte."""
        self.step += 1
        lock = (self.root / LOCK_NAME).read_bytes()
        # The cold build retires a removed card from the last packages, as the warm one does.
        before = self.work / f"before-{self.step}"
        shutil.copytree(self.out, before)
        edit(self.root)
        now = NOW + 60 * self.step
        with _cache_at(self.work / f"cold-cache-{self.step}"):
            try:
                cold = build([self.root], self.work / f"cold-{self.step}", now=now, previous=[before])
            except BuildFailed as failed:
                cold = failed
        cold_lock = (self.root / LOCK_NAME).read_bytes()
        (self.root / LOCK_NAME).write_bytes(lock)  # the warm build starts where the last one left
        written = {p: p.read_bytes() for p in self.out.iterdir()}
        with _cache_at(self.cache):
            try:
                warm = build([self.root], self.out, now=now)
            except BuildFailed as failed:
                # Failing alike: for the same problems, writing nothing.
                assert isinstance(cold, BuildFailed), f"step {self.step}: only the warm build failed"
                # As told (sorted): which of two files' problems is found first depends on the cache.
                assert failed.report.sorted_problems() == cold.report.sorted_problems()
                assert (self.root / LOCK_NAME).read_bytes() == lock == cold_lock
                assert {p: p.read_bytes() for p in self.out.iterdir()} == written
                shutil.rmtree(before)
                return
        assert not isinstance(cold, BuildFailed), f"step {self.step}: only the cold build failed"
        self.last = warm
        assert [p.name for p in warm.packages] == [p.name for p in cold.packages]
        for mine, theirs in zip(warm.packages, cold.packages, strict=True):
            assert mine.read_bytes() == theirs.read_bytes(), f"step {self.step}: {mine.name} differs"
        assert (self.root / LOCK_NAME).read_bytes() == cold_lock, f"step {self.step}: the lock differs"
        told = warm.report.sorted_problems(), warm.report.notes
        assert told == (cold.report.sorted_problems(), cold.report.notes)
        # All but what the cache spared: cards rendered, packages found as they were.
        spared = ("rendered", "unchanged")
        assert {k: v for k, v in warm.report.counts.items() if k not in spared} == {
            k: v for k, v in cold.report.counts.items() if k not in spared
        }
        shutil.rmtree(self.work / f"cold-{self.step}")
        shutil.rmtree(before)


def _line(path: Path, n: int, change: Callable[[list[str]], list[str]]) -> None:
    """Change the fields of row `n` of a file."""
    lines = path.read_text("utf-8").split("\n")
    lines[n] = ";".join(change(lines[n].split(";")))
    path.write_text("\n".join(lines), "utf-8")


def edit(file: str, n: int, question: str | None = None, answer: str | None = None) -> Callable[[Path], None]:
    def run(root: Path) -> None:
        def change(fields: list[str]) -> list[str]:
            return [
                question if question is not None else fields[0],
                answer if answer is not None else fields[1],
                fields[2],
            ]

        _line(root / file, n, change)

    return run


def both(*edits: Callable[[Path], None]) -> Callable[[Path], None]:
    def run(root: Path) -> None:
        for one in edits:
            one(root)

    return run


# Edits in place that a rebuild patches.
PATCHED = {
    "an answer": edit("Alpha/cards.txt", 3, answer="A new answer with **markup** and \\( y^2 \\)."),
    "a question": edit("Alpha/cards.txt", 1, question="Which item comes first?"),
    "the first row": edit("Alpha/cards.txt", 1, answer="First."),
    "the last row": edit("Alpha/cards.txt", 6, answer="Last."),
    "spaces only": edit("Alpha/cards.txt", 2, question="  What is item 1?  "),
    "two rows of a file": both(
        edit("Alpha/cards.txt", 2, answer="Two."), edit("Alpha/cards.txt", 5, answer="Five.")
    ),
    "two packages": both(
        edit("Alpha/more.txt", 1, answer="More."), edit("Beta/cards.txt", 2, answer="Beta.")
    ),
    "html": edit("Beta/cards.txt", 3, answer="<b>bold</b> and <i>it</i><br>a line"),
}


def _append(file: str, line: str) -> Callable[[Path], None]:
    def run(root: Path) -> None:
        path = root / file
        path.write_text(path.read_text("utf-8") + line + "\n", "utf-8")

    return run


def _replace(file: str, old: str, new: str) -> Callable[[Path], None]:
    def run(root: Path) -> None:
        path = root / file
        text = path.read_text("utf-8")
        assert old in text
        path.write_text(text.replace(old, new, 1), "utf-8")

    return run


def _blank_before(root: Path) -> None:
    _replace("Alpha/cards.txt", "\nWhat is item 3?", "\n\nWhat is item 3?")(root)


# Anything else is built in full.
FULL = {
    "an added row": _append("Alpha/cards.txt", f"New?;New.;{uuid.uuid5(NAMESPACE, 'new')}"),
    "a removed row": _replace("Alpha/cards.txt", "What is item 2?", "\n"),
    "a new UUID": _replace(
        "Alpha/cards.txt", str(uuid.uuid5(NAMESPACE, "1")), str(uuid.uuid5(NAMESPACE, "x"))
    ),
    "an answer to check": edit("Alpha/cards.txt", 2, question="What is [2+3]?", answer="5"),
    "a cloze": edit("Alpha/cards.txt", 2, question="The {{c1::answer}} is here."),
    "a quote": edit("Alpha/cards.txt", 2, answer='He said "hi".'),
    "a blank line": _blank_before,
    "the header": _replace("Alpha/cards.txt", HEADER, "Answer;Question;UUID"),
    "a page": _replace("Beta/page.txt", "one slot", "the same slot"),
    "a new file": lambda root: put(root, "Alpha/new.txt", _rows(40, 2)),
    "a renamed file": lambda root: (root / "Alpha/more.txt").rename(root / "Alpha/renamed.txt"),
    "an invalid row": edit("Alpha/cards.txt", 2, answer=" "),
    # Script taken out, with a warning: every build tells it, so no build after it patches.
    "script": edit(
        "Beta/cards.txt", 3, answer="<b>bold</b> <script>alert(1)</script> <img src=x onerror=alert(1)>"
    ),
    "an edit and a new row": both(
        edit("Alpha/cards.txt", 2, answer="Two."),
        _append("Beta/cards.txt", f"N?;N.;{uuid.uuid5(NAMESPACE, 'n')}"),
    ),
}


@pytest.mark.parametrize("kind", list(PATCHED))
def test_a_row_edited_in_place_is_patched_into_the_package_byte_for_byte(kind, tmp_path, patched):
    builds = Builds(tmp_path)
    builds.build(PATCHED[kind])
    assert patched, f"{kind}: the package was not patched"


@pytest.mark.parametrize("kind", list(FULL))
def test_any_other_change_is_built_in_full_byte_for_byte(kind, tmp_path, patched):
    builds = Builds(tmp_path)
    builds.build(FULL[kind])
    assert not patched, f"{kind}: the package was patched"


def test_edits_one_after_another_keep_patching_and_each_is_a_full_build(tmp_path, patched):
    builds = Builds(tmp_path)
    for step in range(4):
        builds.build(edit("Alpha/cards.txt", 1 + step % 3, answer=f"Answer {step}."))
    # Back to a text an earlier step had: the memo knows it, the patch still makes it anew.
    builds.build(edit("Alpha/cards.txt", 1, answer="Answer 0."))
    assert len(patched) == 5


def test_a_changed_package_or_lock_is_built_in_full(tmp_path, patched):
    builds = Builds(tmp_path)

    def package_and_row(root: Path) -> None:
        (builds.out / "Alpha.apkg").write_bytes(b"not the package the last build wrote")
        edit("Alpha/cards.txt", 1, answer="One.")(root)

    builds.build(package_and_row)
    assert not patched

    lock = builds.root / LOCK_NAME
    lock.write_text(lock.read_text("utf-8").replace('"mod": ', '"mod":  ', 1), "utf-8")
    builds.build(edit("Alpha/cards.txt", 2, answer="Two."))
    assert not patched


Damage = Callable[[cache.Cache, sqlite3.Connection], object]


def _files(builds: Builds, change: Damage) -> None:
    signer = cache.Cache(builds.cache)
    assert signer.db is not None
    with signer.db:
        assert signer.db.execute("SELECT COUNT(*) FROM files").fetchone()[0] == 3, "each semicolon file kept"
        change(signer, signer.db)
    signer.close()


def _resigned(kind: bytes, body: Callable[[bytes], bytes]) -> Damage:
    """Write every kept file's row anew, signed with the cache's own key."""

    def run(signer: cache.Cache, db: sqlite3.Connection) -> None:
        for grp, data in db.execute("SELECT grp, data FROM files").fetchall():
            new = body(data)
            seal = signer.seal_cards(signer.secret, grp, new, kind)
            db.execute("UPDATE files SET data = ?, seal = ? WHERE grp = ?", (new, seal, grp))

    return run


def _rotate(db: sqlite3.Connection) -> None:
    """Give each kept file the row (bytes and seal) of the next."""
    rows = db.execute("SELECT grp, data, seal FROM files ORDER BY grp").fetchall()
    for (grp, _, _), (_, data, seal) in zip(rows, rows[1:] + rows[:1], strict=True):
        db.execute("UPDATE files SET data = ?, seal = ? WHERE grp = ?", (data, seal, grp))


@pytest.mark.parametrize(
    "damage",
    [
        lambda signer, db: db.execute("DELETE FROM files"),
        lambda signer, db: db.execute("UPDATE files SET data = substr(data, 1, length(data) - 3)"),
        lambda signer, db: db.execute("UPDATE files SET seal = 'é'"),
        lambda signer, db: db.execute("UPDATE files SET data = 'text, not bytes'"),
        # Rows of one file under another's name: each is signed with its own file's name.
        lambda signer, db: _rotate(db),
        # Signed as a memo row, not as a file: one kind of row never passes for another.
        _resigned(b"memo", lambda data: data),
        # Signed with the cache's key, as if deckbuild had kept the wrong bytes.
        _resigned(b"file", lambda data: data.replace(b"Item", b"Itam", 1)),
    ],
)
def test_a_kept_file_the_cache_cannot_vouch_for_means_a_full_build(damage, tmp_path, patched):
    builds = Builds(tmp_path)
    _files(builds, damage)
    builds.build(edit("Alpha/cards.txt", 2, answer="Two."))
    assert not patched
    # That build kept the files again: the next edit patches.
    builds.build(edit("Alpha/cards.txt", 3, answer="Three."))
    assert patched


SEED_PAGE = DECKS / "Transformers" / "Attention Mechanism" / "001_aaf2eeed6736086d.txt"


def test_after_a_build_that_gave_new_ids_an_edit_is_built_in_full(tmp_path, patched):
    builds = Builds(tmp_path)
    # A seed page: its warnings and its inferred answers are told by every build that reads it.
    builds.build(lambda root: put(root, "Beta/quiz.txt", SEED_PAGE))
    builds.build(edit("Alpha/cards.txt", 2, answer="Two."))
    assert not patched
    builds.build(edit("Alpha/cards.txt", 3, answer="Three."))
    assert patched
    page = str(builds.root / "Beta" / "quiz.txt")
    assert builds.last is not None
    assert builds.last.report.notes == [f"{page}: 4 of 5 quiz answers inferred from the explanations"]
    assert [(p.path, p.line) for p in builds.last.report.sorted_problems()] == [(page, 67), (page, 133)]


@pytest.mark.parametrize("kind", list(FULL))
def test_a_build_in_full_after_a_page_s_notes_and_warnings_tells_them_once(kind, tmp_path, patched):
    builds = Builds(tmp_path)
    builds.build(lambda root: put(root, "Beta/quiz.txt", SEED_PAGE))
    builds.build(edit("Alpha/more.txt", 1, answer="No new ids now."))
    # Past the point where a patch would tell them, it finds that it cannot: told once, as cold.
    builds.build(FULL[kind])
    assert not patched


def _image(root: Path) -> None:
    (root / "Alpha" / ".img").mkdir()
    (root / "Alpha" / ".img" / "p.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))


@pytest.mark.parametrize("then", [edit("Beta/cards.txt", 2, answer="Two."), lambda root: None])
def test_an_image_not_found_then_there_now_is_shown_though_no_fingerprint_sees_it(then, tmp_path, patched):
    builds = Builds(tmp_path)
    builds.build(edit("Alpha/cards.txt", 1, answer="See ![p](.img/p.png)."))
    assert builds.last is not None and builds.last.report.problems
    # In a hidden folder, which the fingerprint of a build does not hash.
    builds.build(both(_image, then))
    assert not patched
    assert builds.last.report.problems == []


PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


def _big(folder: str) -> Callable[[Path], None]:
    def run(root: Path) -> None:
        (root / "Alpha" / folder).mkdir(exist_ok=True)
        with (root / "Alpha" / folder / "p.png").open("wb") as big:
            big.truncate(101 * 1024**2)  # sparse: over the limit, taking no disk

    return run


def _shrunk(folder: str) -> Callable[[Path], None]:
    return lambda root: (root / "Alpha" / folder / "p.png").write_bytes(PNG)


@pytest.mark.parametrize("folder", ["img", ".img"])
@pytest.mark.parametrize("then", [edit("Beta/cards.txt", 2, answer="Two."), lambda root: None])
def test_an_image_left_out_as_too_large_then_shrunk_is_shown(folder, then, tmp_path, patched):
    builds = Builds(tmp_path)
    builds.build(both(_big(folder), edit("Alpha/cards.txt", 1, answer=f"See ![p]({folder}/p.png).")))
    assert builds.last is not None and "larger than" in builds.last.report.problems[0].message
    # Shrunk (in a hidden folder, where no fingerprint looks): the memo, a record or a patch
    # that answered with the card as it was would leave the image out.
    builds.build(both(_shrunk(folder), then))
    assert not patched
    assert builds.last.report.problems == []


def _linked(target: str) -> Callable[[Path], None]:
    def run(root: Path) -> None:
        link = root / "Alpha" / ".img"
        (root / "Alpha" / target).mkdir(exist_ok=True)
        if link.is_symlink():
            link.unlink()
        link.symlink_to(target)

    return run


@pytest.mark.parametrize("then", [edit("Beta/cards.txt", 2, answer="Two."), lambda root: None])
def test_an_image_not_found_through_a_link_is_shown_once_the_link_leads_to_it(then, tmp_path, patched):
    builds = Builds(tmp_path)
    builds.build(both(_linked(".empty"), edit("Alpha/cards.txt", 1, answer="See ![p](.img/p.png).")))
    assert builds.last is not None and "not found" in builds.last.report.problems[0].message

    def full(root: Path) -> None:
        (root / "Alpha" / ".full").mkdir()
        (root / "Alpha" / ".full" / "p.png").write_bytes(PNG)
        _linked(".full")(root)

    builds.build(both(full, then))
    assert not patched
    assert builds.last.report.problems == []


@pytest.mark.parametrize("then", [edit("Beta/cards.txt", 2, answer="Two."), lambda root: None])
def test_an_image_not_found_past_a_link_and_dotdot_is_shown_once_there(then, tmp_path, patched):
    builds = Builds(tmp_path)

    def linked(root: Path) -> None:
        (root / "Alpha" / ".h" / "e").mkdir(parents=True)
        (root / "Alpha" / ".lnk").symlink_to(".h/e")

    # `.lnk/..` is `.h`, where the link leads, not the folder the text alone would say.
    builds.build(both(linked, edit("Alpha/cards.txt", 1, answer="See ![q](.lnk/../q.png).")))
    assert builds.last is not None and "not found" in builds.last.report.problems[0].message
    builds.build(both(lambda root: (root / "Alpha" / ".h" / "q.png").write_bytes(PNG), then))
    assert not patched
    assert builds.last.report.problems == []


def _image_in(folder: str, shade: int) -> Callable[[Path], None]:
    def run(root: Path) -> None:
        (root / "Alpha" / folder).mkdir(parents=True, exist_ok=True)
        (root / "Alpha" / folder / "p.png").write_bytes(PNG + bytes([shade]))

    return run


THEN = [
    lambda root: None,  # the link alone: a record would answer
    edit("Beta/cards.txt", 2, answer="Two."),  # and a row elsewhere: a patch would
    edit("Alpha/cards.txt", 2, answer="Also."),  # a row beside the card: the memo would
]


@pytest.mark.parametrize("then", THEN)
def test_an_image_shown_through_a_link_retargeted_since_is_the_one_it_leads_to_now(then, tmp_path, patched):
    builds = Builds(tmp_path)
    first = both(_image_in(".one", 1), _image_in(".two", 2), _linked(".one"))
    builds.build(both(first, edit("Alpha/cards.txt", 1, answer="See ![p](.img/p.png).")))
    assert builds.last is not None and builds.last.report.problems == []
    # The same name in another folder, another image: the card shows that one now, as cold.
    builds.build(both(_linked(".two"), then))
    assert not patched
    builds.build(both(_linked(".one"), then))
    assert not patched


@pytest.mark.parametrize("then", THEN)
def test_an_image_shown_past_a_link_and_dotdot_retargeted_since_is_the_one_it_leads_to_now(
    then, tmp_path, patched
):
    builds = Builds(tmp_path)

    def linked(target: str) -> Callable[[Path], None]:
        def run(root: Path) -> None:
            link = root / "Alpha" / ".lnk"
            if link.is_symlink():
                link.unlink()
            link.symlink_to(target)

        return run

    # `.lnk/../p.png` is the p.png beside the folder the link leads to.
    first = both(_image_in(".a/in", 1), _image_in(".b/in", 2), _image_in(".a", 3), _image_in(".b", 4))
    builds.build(both(first, linked(".a/in"), edit("Alpha/cards.txt", 1, answer="See ![q](.lnk/../p.png).")))
    assert builds.last is not None and builds.last.report.problems == []
    builds.build(both(linked(".b/in"), then))
    assert not patched


def test_an_image_shown_through_a_link_that_still_leads_there_is_answered_from_the_record(
    tmp_path, patched, monkeypatch
):
    answered: list[bool] = []
    real = record._replay

    def spy(*args: Any) -> BuildResult | None:
        done = real(*args)
        answered.append(done is not None)
        return done

    monkeypatch.setattr(record, "_replay", spy)
    builds = Builds(tmp_path)
    first = both(_image_in(".one", 1), _linked(".one"))
    builds.build(both(first, edit("Alpha/cards.txt", 1, answer="See ![p](.img/p.png).")))
    answered.clear()
    builds.build(lambda root: None)
    assert answered[-1] is True  # the warm build, after the cold one
    builds.build(edit("Beta/cards.txt", 2, answer="Two."))
    assert patched


def test_a_warning_in_a_file_not_edited_is_told_again_by_a_patch(tmp_path, patched):
    builds = Builds(tmp_path)
    builds.build(edit("Alpha/cards.txt", 1, answer="See ![missing](nowhere.png)."))
    builds.build(edit("Beta/cards.txt", 4, answer="See ![gone](gone.png)."))
    assert not patched
    # Alpha's file, and Beta's, were last built with a warning: an edit to either is built in full.
    builds.build(edit("Alpha/cards.txt", 2, answer="Two."))
    builds.build(edit("Beta/cards.txt", 2, answer="Two."))
    assert not patched
    builds.build(edit("Alpha/more.txt", 2, answer="More."))
    assert patched
    assert builds.last is not None
    told = builds.last.report.sorted_problems()
    assert [(p.path.removeprefix(str(builds.root)), p.line) for p in told] == [
        ("/Alpha/cards.txt", 2),
        ("/Beta/cards.txt", 5),
    ]


# Text a row's question or answer may hold: no ";", no quote, no line break (the row stays one
# line of three fields), but markup, LaTeX, HTML, brackets, braces and any other character.
FIELD = st.text(
    alphabet=st.characters(blacklist_characters=';"\n\r', blacklist_categories=("Cs",)),
    min_size=1,
    max_size=40,
) | st.sampled_from(
    ["**bold**", "\\( x^2 \\)", "`code`", "<i>it</i>", "a<br>b", "[x]", "{{c1::y}}", "&#31;", " "]
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["Alpha/cards.txt", "Beta/cards.txt"]), st.integers(1, 4), FIELD, st.booleans()
        ),
        min_size=1,
        max_size=3,
    )
)
def test_any_text_edited_into_a_row_builds_as_a_full_build_would(tmp_path_factory, steps):
    builds = Builds(tmp_path_factory.mktemp("patch"))
    for file, row, text, is_answer in steps:
        builds.build(edit(file, row, answer=text) if is_answer else edit(file, row, question=text))


def test_an_edit_patched_into_the_package_updates_anki_in_place_and_keeps_every_review(
    tmp_path, patched, collection
):
    builds = Builds(tmp_path)
    import_package(collection, builds.out / "Alpha.apkg")
    study_all(collection)
    before = card_states(collection)
    guid = str(uuid.uuid5(NAMESPACE, "2"))

    builds.build(edit("Alpha/cards.txt", 3, answer="A learned projection."))
    assert patched
    log = import_package(collection, builds.out / "Alpha.apkg")

    assert (log.new, log.updated, log.conflicting) == (0, 1, 0)
    notes = notes_by_guid(collection)
    assert len(notes) == 9
    assert "A learned projection." in notes[guid]["Back"]
    assert card_states(collection) == before


def _warm(builds: Builds, **options: object) -> None:
    with _cache_at(builds.cache):
        build([builds.root], builds.out, now=NOW + 3600, **options)  # type: ignore[arg-type]


def test_a_build_with_previous_releases_or_another_option_is_built_in_full(tmp_path, patched):
    builds = Builds(tmp_path)
    shutil.copytree(builds.out, tmp_path / "release")
    edit("Alpha/cards.txt", 2, answer="Two.")(builds.root)
    _warm(builds, previous=[tmp_path / "release"])
    edit("Alpha/cards.txt", 3, answer="Three.")(builds.root)
    _warm(builds, dry_run=True)
    _warm(builds, strict=True)
    assert not patched
    # The next build with the same options patches what the last one wrote.
    edit("Alpha/cards.txt", 4, answer="Four.")(builds.root)
    _warm(builds, strict=True)
    assert patched


def test_a_frozen_build_is_built_in_full_and_refuses_to_change_the_lock(tmp_path, patched):
    builds = Builds(tmp_path)
    lock = (builds.root / LOCK_NAME).read_bytes()
    edit("Alpha/cards.txt", 2, answer="Two.")(builds.root)
    with pytest.raises(LockChanged):
        _warm(builds, frozen=True)
    assert not patched
    assert (builds.root / LOCK_NAME).read_bytes() == lock


def test_more_rows_or_files_edited_than_a_patch_takes_are_built_in_full(tmp_path, patched, monkeypatch):
    monkeypatch.setattr(patch, "MAX_ROWS", 2)
    monkeypatch.setattr(patch, "MAX_FILES", 1)
    builds = Builds(tmp_path)
    rows = [edit("Alpha/cards.txt", n, answer=f"Row {n}.") for n in (1, 2, 3)]
    builds.build(both(*rows))
    builds.build(both(edit("Alpha/cards.txt", 1, answer="One."), edit("Beta/cards.txt", 1, answer="One.")))
    assert not patched
    # As many as it takes, in one file: patched.
    builds.build(both(edit("Alpha/cards.txt", 1, answer="A."), edit("Alpha/cards.txt", 2, answer="B.")))
    assert patched


def test_the_base_key_names_the_paths_and_options() -> None:
    one = patch.base_key([Path("/a")], [False, False, "/out", None, None])
    assert one != patch.base_key([Path("/b")], [False, False, "/out", None, None])
    assert one != patch.base_key([Path("/a")], [False, False, "/other", None, None])


def test_read_entries_reads_what_zip_bytes_writes_and_nothing_else() -> None:
    entries = [("collection.anki2", b"x" * 5000 + bytes(range(256))), ("media", b"{}"), ("0", b"")]
    data = package.zip_bytes(entries)
    assert package.read_entries(data) == entries
    assert package.read_entries(data[:-30]) is None
    assert package.read_entries(b"PK\x03\x04" + data[4:40]) is None
    assert package.read_entries(b"") is None
