"""The build cache: never wrong after an edit, safe to delete, and invisible in the output."""

from __future__ import annotations

import marshal
import os
import subprocess
import sys
import zipfile

import pytest
from click.testing import CliRunner

from conftest import DATA, put, seed
from deckbuild import cache
from deckbuild.build import build
from deckbuild.cli import cli
from memohelp import rewrite_memo

NOW = 1_750_000_000


@pytest.fixture
def tree(deck_tree):
    put(deck_tree, "Deck/003.txt", seed("003"))
    put(deck_tree, "Deck/constructs.txt", DATA / "anki" / "constructs.txt")
    put(deck_tree, "Deck/img/diagram.png", DATA / "anki" / "diagram.png")
    build([deck_tree], deck_tree.parent / "first", now=NOW)  # the lock, once
    return deck_tree


def package(tree, name, **options):
    result = build([tree], tree.parent / name, now=NOW + 10, **options)
    return result.packages[0].read_bytes(), result.report


def test_cached_and_uncached_builds_give_the_same_bytes(tree):
    uncached, report = package(tree, "a", use_cache=False)
    assert report.counts["rendered"] == 62
    filling, _ = package(tree, "b")
    cached, report = package(tree, "c")
    assert report.counts["rendered"] == 0, "every card came from the cache"
    assert uncached == filling == cached


def test_helper_processes_give_the_same_bytes(tree, monkeypatch):
    serial, _ = package(tree, "a", use_cache=False, jobs=1)
    helped, _ = package(tree, "b", use_cache=False, jobs=2)
    monkeypatch.setattr("deckbuild.workers.HEAD_START", 0)  # this process takes a share too
    shared, _ = package(tree, "c", use_cache=False, jobs=3)
    assert serial == helped == shared


def test_an_edit_always_reaches_the_package(tree):
    package(tree, "warm")
    source = tree / "Deck" / "003.txt"
    source.write_text(
        source.read_text(encoding="utf-8").replace("query vector (", "query vector, q ("), "utf-8"
    )
    data, report = package(tree, "after")
    assert report.counts["rendered"] == 1
    assert b"query vector, q (" in _collection(data)


def test_an_edited_image_reaches_the_package_though_its_card_did_not_change(tree):
    before, _ = package(tree, "warm")
    (tree / "Deck" / "img" / "diagram.png").write_bytes(b"\x89PNG a different picture")
    after, report = package(tree, "after")
    assert report.counts["rendered"] == 1
    assert after != before


def test_warnings_come_back_from_the_cache_at_the_card_s_current_line(tree):
    source = tree / "Deck" / "003.txt"

    def mojibake(report):
        return [p.line for p in report.problems if "mojibake" in p.message and p.path.endswith("003.txt")]

    _, first = package(tree, "warm")
    assert mojibake(first) == [45]
    source.write_text("\n" + source.read_text(encoding="utf-8"), encoding="utf-8")
    _, second = package(tree, "after")
    assert second.counts["rendered"] == 0 and mojibake(second) == [46]


def test_a_new_version_of_a_renderer_is_a_cache_miss(tree, monkeypatch):
    package(tree, "warm")
    monkeypatch.setattr(cache, "versions", lambda: "markdown=99")
    _, report = package(tree, "upgraded")
    assert report.counts["rendered"] == 62


def test_the_cache_may_be_deleted_or_broken_at_any_time(tree, own_cache):
    clean, _ = package(tree, "a")
    for path in own_cache.iterdir():
        path.unlink()
    deleted, _ = package(tree, "b")
    (own_cache / "cache.sqlite").write_bytes(b"this is not a database")
    broken, _ = package(tree, "c")
    assert clean == deleted == broken


def test_an_unchanged_package_is_not_written_again(tree):
    package(tree, "out")
    target = tree.parent / "out" / "Deck.apkg"
    stamp = target.stat().st_mtime_ns
    _, report = package(tree, "out")
    assert report.counts["unchanged"] == 1 and target.stat().st_mtime_ns == stamp
    target.write_bytes(b"damaged")
    _, report = package(tree, "out")
    assert "unchanged" not in report.counts and target.read_bytes() != b"damaged"


def test_a_package_written_after_an_edit_is_known_as_unchanged_by_the_next_build(deck_tree):
    # A package holding a note of a new mod is named once it is on its way (no earlier build can
    # have written it): the next build, which changes only the other package, must know it.
    put(deck_tree, "One/cards.txt", "Question;Answer;UUID\nQ1;A1;11111111-1111-4111-8111-111111111111\n")
    put(deck_tree, "Two/cards.txt", "Question;Answer;UUID\nQ2;A2;22222222-2222-4222-8222-222222222222\n")
    out = deck_tree.parent / "out"
    build([deck_tree], out, now=NOW)
    one_row = "Q1;A1 edited;11111111-1111-4111-8111-111111111111"
    put(deck_tree, "One/cards.txt", f"Question;Answer;UUID\n{one_row}\n")
    edited = build([deck_tree], out, now=NOW + 10)
    assert "unchanged" in edited.report.counts  # Two
    one = out / "One.apkg"
    stamp = one.stat().st_mtime_ns
    two_row = "Q2;A2 edited;22222222-2222-4222-8222-222222222222"
    put(deck_tree, "Two/cards.txt", f"Question;Answer;UUID\n{two_row}\n")
    result = build([deck_tree], out, now=NOW + 20)
    assert result.report.counts["unchanged"] == 1 and one.stat().st_mtime_ns == stamp
    assert result.digests[one] == edited.digests[one]


def test_a_package_whose_file_is_gone_is_written_again_and_known_by_the_next_build(deck_tree):
    # A package with no file there is written without looking it up (a cold build into an empty
    # folder), and named once it is on its way: the next build must still know it unchanged.
    put(deck_tree, "One/cards.txt", "Question;Answer;UUID\nQ1;A1;11111111-1111-4111-8111-111111111111\n")
    put(deck_tree, "Two/cards.txt", "Question;Answer;UUID\nQ2;A2;22222222-2222-4222-8222-222222222222\n")
    out = deck_tree.parent / "out"
    first = build([deck_tree], out, now=NOW)
    one = out / "One.apkg"
    one.unlink()
    again = build([deck_tree], out, now=NOW + 10)
    assert again.report.counts["unchanged"] == 1  # Two
    assert again.digests[one] == first.digests[one]
    stamp = one.stat().st_mtime_ns
    edited = "Question;Answer;UUID\nQ2;A2 edited;22222222-2222-4222-8222-222222222222\n"
    put(deck_tree, "Two/cards.txt", edited)
    result = build([deck_tree], out, now=NOW + 20)
    assert result.report.counts["unchanged"] == 1 and one.stat().st_mtime_ns == stamp


def test_the_cache_lives_where_deckbuild_cache_dir_says_and_no_cache_skips_it(tree, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    monkeypatch.setenv("DECKBUILD_CACHE_DIR", str(elsewhere))
    monkeypatch.chdir(tree.parent)
    assert CliRunner().invoke(cli, ["build", "decks", "--no-cache"]).exit_code == 0
    assert not elsewhere.exists()
    assert CliRunner().invoke(cli, ["build", "decks"]).exit_code == 0
    assert (elsewhere / "cache.sqlite").is_file()


def test_renderer_versions_are_read_as_importlib_metadata_reads_them():
    from importlib.metadata import version

    assert {name: cache._installed()[name] for name in cache.RENDERERS} == {
        name: version(name) for name in cache.RENDERERS
    }


def test_help_does_not_import_the_heavy_libraries():
    code = (
        "import sys\nfrom deckbuild.cli import cli\ntry:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = {'genanki', 'markdown', 'pygments', 'nh3', 'pydantic', 'latex2mathml'}\n"
        # Of deckbuild's own, only the command line and what it names in its signatures, and the
        # one line for running out (which the entry point has imported already, as it must).
        "ours = {'deckbuild', 'deckbuild.cli', 'deckbuild.errors', 'deckbuild.progress',\n"
        "        'deckbuild.resources'}\n"
        "mine = [m for m in sys.modules if m.split('.')[0] in heavy or m.startswith('deckbuild')]\n"
        "print(sorted(m for m in mine if m not in ours))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_a_build_that_nothing_changed_imports_no_reading_rendering_or_packaging(tree):
    # The record answers it: importing what a real build needs would cost more than the answer.
    out = tree.parent / "out"
    build([tree], out, now=NOW)
    code = (
        "import sys\nfrom deckbuild.cli import cli\ntry:\n"
        f"    cli(['build', {str(tree)!r}, '-o', {str(out)!r}])\nexcept SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "heavy = {'genanki', 'markdown', 'pygments', 'nh3', 'pydantic', 'latex2mathml', 'zipfile'}\n"
        # What only writing, sweeping, checking a kept collection or printing a problem needs.
        "heavy |= {'secrets', 'shutil', 'signal', 'base64', 'html'}\n"
        "ours = ('answers', 'build', 'calc', 'ids', 'kept', 'lock', 'memo', 'models', 'package', 'readers',"
        " 'render', 'workers')\n"
        "heavy |= {f'deckbuild.{m}' for m in ours}\n"
        "print(sorted(m for m in sys.modules if m in heavy or m.split('.')[0] in heavy))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert "62 packaged" in shown.stdout
    assert shown.stdout.strip().splitlines()[-1] == "[]"


def test_a_build_runs_no_cycle_collection_and_leaves_the_collector_on(tree):
    import gc

    runs = []

    def count(phase, info):
        if phase == "start":
            runs.append(info["generation"])

    gc.collect()
    gc.callbacks.append(count)
    try:
        cold = build([tree], tree.parent / "cold", now=NOW, use_cache=False)
        again = build([tree], tree.parent / "again", now=NOW)
    finally:
        gc.callbacks.remove(count)
    assert runs == [] and gc.isenabled()
    assert cold.packages[0].read_bytes() == again.packages[0].read_bytes()


def test_the_command_line_leaves_python_no_cycle_collection_to_run_as_it_exits(tree):
    # That last collection would trace every object the run made: main() freezes them first.
    out = tree.parent / "out"
    code = (
        "import gc, sys\nfrom deckbuild.cli import main\n"
        f"sys.argv = ['deckbuild', 'build', {str(tree)!r}, '-o', {str(out)!r}, '-q']\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
        "print(gc.get_freeze_count() > 10_000, gc.isenabled())"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert shown.stdout.split() == ["True", "True"]
    assert (out / "Deck.apkg").is_file()


# Counts the collections of a whole command run from its start, and says whether the collector
# was on while the command read its cards.
_LAUNCHED = """
import gc, sys
runs = []
gc.callbacks.append(lambda phase, info: runs.append(info["generation"]) if phase == "start" else None)
import deckbuild.build
collect = deckbuild.build.collect
seen = []
def watched(*args, **kwargs):
    seen.append(gc.isenabled())
    return collect(*args, **kwargs)
deckbuild.build.collect = watched
from deckbuild.launch import main
sys.argv = ["deckbuild", *sys.argv[1:]]
runs.clear()  # what importing the pipeline here ran is not the command's
try:
    main()
except SystemExit as exc:
    assert exc.code == 0, exc.code
print(len(runs), seen, gc.isenabled())
"""


@pytest.mark.parametrize("command", ["build", "cards"])
def test_a_build_from_the_command_line_runs_no_cycle_collection_from_start_up_on(tree, command):
    # Start-up would trace its modules again and again, and a build's end every object it made;
    # any other command runs with the collector on, as Python has it.
    args = [command, str(tree), *(["-o", str(tree.parent / "out"), "-q"] if command == "build" else [])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    shown = subprocess.run(
        [sys.executable, "-c", _LAUNCHED, *args], capture_output=True, text=True, env=env, check=True
    )
    runs, seen, enabled = shown.stdout.splitlines()[-1].split()
    if command == "build":
        assert runs == "0", "no collection at all, start-up and build alike"
        assert (seen, enabled) == ("[False]", "True"), "on again once the run is over"
    else:
        assert int(runs) > 0 and (seen, enabled) == ("[True]", "True")


def _collection(apkg: bytes) -> bytes:
    import io
    import zipfile

    return zipfile.ZipFile(io.BytesIO(apkg)).read("collection.anki2")


def test_an_identical_build_is_answered_from_its_record_with_the_same_report(tree):
    out = tree.parent / "out"
    first = build([tree], out, now=NOW + 10)
    second = build([tree], out, now=NOW + 20)
    assert second.report.counts["unchanged"] == 1
    assert {k: v for k, v in second.report.counts.items() if k != "unchanged"} == first.report.counts
    problems = [str(p) for p in first.report.sorted_problems()]
    assert [str(p) for p in second.report.sorted_problems()] == problems
    assert second.report.notes == first.report.notes
    assert second.packages == first.packages


def test_a_build_answered_from_its_record_tells_nothing_it_did_not_change(deck_tree):
    # The build it replays gave ids, moved and retired cards: telling that again said it had
    # done so twice. Its report is what building for real would tell now.
    uuid = "11111111-1111-4111-8111-11111111111{}"
    put(deck_tree, "Deck/a.txt", f"Question;Answer;UUID\nQ1;A1;{uuid.format(1)}\nQ2;A2;{uuid.format(2)}\n")
    put(deck_tree, "Deck/page.txt", seed("003"))
    out = deck_tree.parent / "out"
    build([deck_tree], out, now=NOW)
    put(deck_tree, "Other/b.txt", f"Question;Answer;UUID\nQ1;A1;{uuid.format(1)}\n")
    (deck_tree / "Deck" / "a.txt").unlink()  # one card moved to another deck, one gone
    changed = build([deck_tree], out, now=NOW + 10)
    told = " ".join(changed.report.notes)
    assert "retired card" in told and "moved here from" in told and "moved from deck" in told
    replayed = build([deck_tree], out, now=NOW + 20)
    assert replayed.report.counts["unchanged"] == 2
    real = build([deck_tree], out, now=NOW + 30, use_cache=False)
    assert replayed.report.notes == real.report.notes == []


@pytest.mark.parametrize("change", ["source", "lock", "image", "package"])
def test_any_change_to_what_a_build_reads_or_wrote_means_a_real_build(deck_tree, change):
    row = "![x](../img/x.png);11111111-1111-4111-8111-111111111111\n"
    put(deck_tree, "Deck/cards.txt", f"Question;Answer;UUID\nQ;{row}")
    image = put(deck_tree, "img/x.png", b"picture one")
    put(deck_tree, "deckbuild.lock", '{"deckbuild_lock": 1, "notetypes": {}, "notes": {}}\n')
    out = deck_tree.parent / "out"
    build([deck_tree / "Deck"], out, now=NOW)
    build([deck_tree / "Deck"], out, now=NOW)  # recorded
    if change == "source":
        (deck_tree / "Deck" / "cards.txt").write_text(f"Question;Answer;UUID\nQ?;{row}", encoding="utf-8")
    elif change == "lock":
        lock = deck_tree / "deckbuild.lock"
        lock.write_text(lock.read_text(encoding="utf-8").replace('"mod": ', '"mod": 1'), encoding="utf-8")
    elif change == "image":
        image.write_bytes(b"picture two, outside the folder that was built")
    else:
        (out / "Deck.apkg").write_bytes(b"tampered")
    result = build([deck_tree / "Deck"], out, now=NOW + 60)
    assert "unchanged" not in result.report.counts
    assert (out / "Deck.apkg").read_bytes() != b"tampered"


def _tamper(own_cache, sql, *args):
    import sqlite3

    db = sqlite3.connect(own_cache / "cache.sqlite")
    with db:
        changed = db.execute(sql, args).rowcount
    db.close()
    assert changed > 0, "the test damaged something"


def _builds_the_same_after(tree, own_cache, damage, clean):
    """Damage the cache (SQL, or a function of the cache folder), then build: exit 0, `clean` bytes."""
    if callable(damage):
        assert damage(own_cache) > 0, "the test damaged something"
    else:
        _tamper(own_cache, *damage)
    result = CliRunner().invoke(cli, ["build", str(tree), "-o", str(tree.parent / "after")])
    assert result.exit_code == 0, result.output
    assert (tree.parent / "after" / "Deck.apkg").read_bytes() == clean


def _entry_damage(change):
    return lambda own_cache: rewrite_memo(own_cache, change)


@pytest.mark.parametrize(
    "damage",
    [
        # Not signed by the cache's key: the whole file's memo is a miss.
        ("UPDATE memo SET cards = substr(cards, 1, length(cards) - 9)",),
        ("UPDATE memo SET cards = 'not marshal'",),
        ("UPDATE memo SET cards = x'00ff'",),
        ("UPDATE memo SET seal = 12",),
        ("UPDATE memo SET seal = 'é'",),
        # Signed with the cache's key, as if deckbuild itself had written them damaged.
        # A row missing a separator once shipped a 14-field note that Anki refused.
        _entry_damage(lambda e: (e[0][:-1], *e[1:])),
        _entry_damage(lambda e: (e[0] + [""], *e[1:])),
        _entry_damage(lambda e: ([*e[0][:-1], 5], *e[1:])),
        _entry_damage(lambda e: ("\x1f".join(e[0]), *e[1:])),
        _entry_damage(lambda e: (e[0], 5, *e[2:])),
        _entry_damage(lambda e: (*e[:2], "not a list", *e[3:])),
        _entry_damage(lambda e: (*e[:2], {"a": 1}, *e[3:])),
        _entry_damage(lambda e: (*e[:3], [[1, 2]], e[4])),
        _entry_damage(lambda e: (*e[:4], [1, 2])),
        _entry_damage(lambda e: (*e[:4], {"key": 5})),
        _entry_damage(lambda e: e[:4]),
        _entry_damage(lambda e: b"\x00\xff"),
        _entry_damage(lambda e: marshal.dumps(e)[:-3]),
        _entry_damage(lambda e: 7),
        ("UPDATE entries SET value = '{}'",),
        ("UPDATE entries SET value = 'not json'",),
        ("UPDATE entries SET value = '[]'",),
        ("UPDATE entries SET value = ?", '{"db": "!!not base64!!", "req": [], "sha256": 5}'),
    ],
)
def test_a_damaged_cache_row_is_a_miss_never_a_traceback_or_a_bad_package(tree, own_cache, damage):
    clean, _ = package(tree, "a", use_cache=False)
    package(tree, "warm")
    _builds_the_same_after(tree, own_cache, damage, clean)


def test_a_memo_signed_as_a_whole_but_not_a_mapping_is_a_miss(tree, own_cache):
    clean, _ = package(tree, "a", use_cache=False)
    package(tree, "warm")
    signer = cache.Cache(own_cache)
    assert signer.db is not None
    blob = marshal.dumps([1, 2])
    with signer.db:
        for (grp,) in signer.db.execute("SELECT grp FROM memo").fetchall():
            seal = signer.seal_cards(signer.secret, grp, blob)
            signer.db.execute("UPDATE memo SET cards = ?, seal = ? WHERE grp = ?", (blob, seal, grp))
    signer.close()
    data, report = package(tree, "after")
    assert data == clean and report.counts["rendered"] > 0


def _edit(tree, n):
    import re

    source = tree / "Deck" / "003.txt"
    text = source.read_text(encoding="utf-8")
    source.write_text(re.sub(r"query vector (\d+ )?\(", f"query vector {n} (", text, count=1), "utf-8")


def _edit_rows(own_cache):
    import sqlite3

    with sqlite3.connect(own_cache / "cache.sqlite") as db:
        return db.execute("SELECT COUNT(*), COUNT(entry) FROM memo_delta").fetchone()


@pytest.mark.parametrize(
    "damage",
    [
        ("UPDATE memo_delta SET entry = x'00ff'",),
        ("UPDATE memo_delta SET seal = 'é'",),
        ("UPDATE memo_delta SET entry = NULL",),
        _entry_damage(lambda e: (e[0][:-1], *e[1:])),
        _entry_damage(lambda e: (*e[:4], {"key": 5})),
        _entry_damage(lambda e: marshal.dumps(e)[:-3]),
    ],
)
def test_an_edit_stores_a_few_signed_rows_and_a_damaged_one_is_a_miss(tree, own_cache, damage):
    package(tree, "warm")
    _edit(tree, 1)
    clean, _ = package(tree, "a", use_cache=False)
    edited, report = package(tree, "edited")
    assert edited == clean and report.counts["rendered"] == 1
    assert _edit_rows(own_cache) == (2, 1), "the edited card's new entry, and its old one gone"
    again, report = package(tree, "again")
    assert again == clean and report.counts.get("rendered", 0) == 0, "the edit row answers the card"
    _builds_the_same_after(tree, own_cache, damage, clean)


def test_edit_rows_are_folded_into_the_file_s_row_before_they_grow_many(tree, own_cache, monkeypatch):
    monkeypatch.setattr("deckbuild.memo.MAX_EDIT_ROWS", 3)
    monkeypatch.setattr("deckbuild.memo.EDIT_SHARE", 1000)
    package(tree, "warm")
    _edit(tree, 1)
    package(tree, "one")
    assert _edit_rows(own_cache) == (2, 1)
    _edit(tree, 2)
    data, report = package(tree, "two")
    assert _edit_rows(own_cache) == (0, 0), "written whole again: four edit rows would be more than three"
    clean, _ = package(tree, "clean", use_cache=False)
    again, report = package(tree, "again")
    assert data == clean == again and report.counts.get("rendered", 0) == 0


def test_a_cached_row_anki_would_refuse_stops_at_the_gate_and_the_old_package_stays(tree, own_cache):
    package(tree, "warm")
    # The right number of fields, one of them holding a control character Anki would drop,
    # signed with the cache's own key: as if our own renderer had let it through.
    rewrite_memo(own_cache, lambda e: (["\x07" + e[0][0], *e[0][1:]], *e[1:]))
    out = tree.parent / "out"
    before = put(out, "Deck.apkg", b"the package learners have now")
    result = CliRunner().invoke(cli, ["build", str(tree), "-o", str(out)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: Deck.apkg: note ")
    assert "the field Front holds the control character U+0007" in result.stderr
    assert "Traceback" not in result.output
    assert before.read_bytes() == b"the package learners have now"


@pytest.mark.parametrize("saved", ["source", "image"])
def test_an_edit_saved_while_a_build_runs_reaches_the_next_build(tree, saved, monkeypatch):
    """A save while a build runs: the build read the file before it; its record must not vouch for after."""
    from deckbuild import build as pipeline

    out = tree.parent / "out"
    build([tree], out, now=NOW + 10)
    source, image = tree / "Deck" / "003.txt", tree / "Deck" / "img" / "diagram.png"
    original = source.read_text(encoding="utf-8")
    source.write_text(original.replace("query vector (", "query vector, first save ("), "utf-8")
    run = pipeline._Build.run

    def saved_meanwhile(self, *args, **kwargs):
        result = run(self, *args, **kwargs)  # everything read and written; the record comes next
        if saved == "source":
            source.write_text(original.replace("query vector (", "query vector, second save ("), "utf-8")
        else:
            image.write_bytes(image.read_bytes() + b"saved while the build ran")
        return result

    monkeypatch.setattr(pipeline._Build, "run", saved_meanwhile)
    build([tree], out, now=NOW + 20)
    monkeypatch.setattr(pipeline._Build, "run", run)
    result = build([tree], out, now=NOW + 30)
    assert "unchanged" not in result.report.counts, "answered from a record of the files before the save"
    with zipfile.ZipFile(out / "Deck.apkg") as apkg:
        shipped = [apkg.read(name) for name in apkg.namelist()]
    if saved == "source":
        assert b"query vector, second save (" in _collection((out / "Deck.apkg").read_bytes())
    else:
        assert image.read_bytes() in shipped


def test_a_memo_read_inside_a_transaction_finds_its_cards_and_leaves_the_transaction_open(tree, own_cache):
    store = cache.Cache(own_cache)
    assert store.db is not None
    groups = [grp for (grp,) in store.db.execute("SELECT grp FROM memo ORDER BY grp")]
    expected = [store.memo_cards(grp) for grp in groups]
    assert groups and all(cards for cards, _ in expected)
    store.db.execute("BEGIN")
    assert [store.memo_cards(grp) for grp in groups] == expected
    assert store.db.in_transaction
    store.db.execute("COMMIT")
    store.close()


def _old_cache(folder) -> None:
    """Write a cache as the format before this one left it: default pages, a row in a table."""
    import sqlite3

    folder.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(folder / "cache.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE entries (key TEXT PRIMARY KEY, value TEXT NOT NULL, seal TEXT NOT NULL)")
    db.execute("INSERT INTO entries VALUES ('k', '{}', 'old')")
    db.execute(f"PRAGMA user_version = {cache.CACHE_FORMAT - 1}")
    db.close()


def _pages(store: cache.Cache) -> tuple[int, str]:
    assert store.db is not None
    db = store.db
    return db.execute("PRAGMA page_size").fetchone()[0], db.execute("PRAGMA journal_mode").fetchone()[0]


def test_a_new_cache_and_one_of_an_older_format_get_the_large_pages(tmp_path):
    fresh = cache.Cache(tmp_path / "fresh")
    assert _pages(fresh) == (cache.PAGE_SIZE, "wal")
    fresh.close()
    _old_cache(tmp_path / "old")
    store = cache.Cache(tmp_path / "old")
    assert _pages(store) == (cache.PAGE_SIZE, "wal")
    store.put_many({"key": {"sha256": "x"}})
    assert store.get_many({"key": cache.PACKAGE_RECORD}) == {"key": {"sha256": "x"}}
    store.close()


def test_an_older_cache_another_process_has_open_keeps_its_pages_and_still_works(tmp_path):
    import sqlite3

    _old_cache(tmp_path / "old")
    other = sqlite3.connect(tmp_path / "old" / "cache.sqlite", isolation_level=None)
    other.execute("BEGIN")
    other.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # a reader, mid-transaction
    try:
        store = cache.Cache(tmp_path / "old")
        assert _pages(store) == (4096, "wal")
        store.put_many({"key": {"sha256": "x"}})
        assert store.get_many({"key": cache.PACKAGE_RECORD}) == {"key": {"sha256": "x"}}
        store.close()
    finally:
        other.close()
