"""Output is atomic: a killed build leaves the previous package whole; builds at once take turns."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile

import pytest

from conftest import put, seed
from deckbuild.build import build
from synth import write_deck


def run_build(cwd, *args, env=None):
    # Output goes to a file: a pipe nobody reads would block a chatty build.
    log = open(cwd / f"build-{len(list(cwd.glob('build-*.log')))}.log", "w")  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, "-m", "deckbuild", "build", *args],
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )


def test_a_build_killed_while_writing_leaves_the_old_package_and_lock(deck_tree):
    put(deck_tree, "Deck/003.txt", seed("003"))
    out = deck_tree.parent / "dist"
    (good,) = build([deck_tree], out, now=1_700_000_000).packages
    before, lock_before = good.read_bytes(), (deck_tree / "deckbuild.lock").read_bytes()
    write_deck(deck_tree / "Deck" / "big.txt", 6000)

    proc = run_build(deck_tree.parent, "decks")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if any(p.name.startswith(".deckbuild-") for p in out.iterdir()):
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.001)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the build should have been killed while writing"

    assert good.read_bytes() == before
    assert (deck_tree / "deckbuild.lock").read_bytes() == lock_before
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["Deck.apkg"]


def test_two_builds_at_once_keep_both_sets_of_lock_entries(deck_tree):
    write_deck(deck_tree / "A" / "a.txt", 2500, seed=1)
    write_deck(deck_tree / "B" / "b.txt", 2500, seed=2)
    (deck_tree / "deckbuild.lock").write_text(
        '{"deckbuild_lock": 1, "notetypes": {}, "notes": {}}\n', encoding="utf-8"
    )
    procs = []
    for name in ("A", "B"):
        # Each with a temporary folder of its own: the tree itself is what they take turns on.
        tmp = deck_tree.parent / f"tmp{name}"
        tmp.mkdir()
        env = {**os.environ, "TMPDIR": str(tmp)}
        procs.append(run_build(deck_tree.parent, f"decks/{name}", "-o", f"out{name}", env=env))
    for proc in procs:
        assert proc.wait(timeout=300) == 0, [p.read_text() for p in deck_tree.parent.glob("build-*.log")]
    notes = json.loads((deck_tree / "deckbuild.lock").read_text(encoding="utf-8"))["notes"]
    assert len(notes) == 5000
    for name in ("A", "B"):
        with zipfile.ZipFile(deck_tree.parent / f"out{name}" / f"{name}.apkg") as z:
            assert z.testzip() is None


T1, T2 = 1_700_000_000, 1_700_000_100
DECKS = ("A", "B", "C")
# Where a build can die: after its first package, with everything staged, once the
# journal is written, between renames, after the lock's rename, and after it all.
KILL_POINTS = ["package-1", "staged", "journal", "moved-1", "moved-4", "committed"]
RUNNER = (
    "import sys; from pathlib import Path; from deckbuild.build import build; "
    "build([Path(sys.argv[1])], Path(sys.argv[2]), now=int(sys.argv[3]))"
)


@pytest.fixture(scope="module")
def edited_tree(tmp_path_factory):
    """A tree of three packages built at T1, one card edited in each deck; and its clean build at T2."""
    base = tmp_path_factory.mktemp("three")
    root = base / "decks"
    for n, name in enumerate(DECKS):
        write_deck(root / name / f"{name.lower()}.txt", 40, seed=n)
    build([root], base / "dist", now=T1, use_cache=False)
    for name in DECKS:
        edit(root / name / f"{name.lower()}.txt", "step 3 of", f"edited {name}: step 3 of")
    clean = tmp_path_factory.mktemp("clean")
    shutil.copytree(base, clean, dirs_exist_ok=True)
    build([clean / "decks"], clean / "dist", now=T2, use_cache=False)
    return base, state(clean / "decks", clean / "dist")


@pytest.fixture
def three_decks(tmp_path, edited_tree):
    """A copy of the edited three-package tree: root, output folder, and what a clean build gives."""
    base, expected = edited_tree
    shutil.copytree(base, tmp_path, dirs_exist_ok=True)
    return tmp_path / "decks", tmp_path / "dist", expected


def edit(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def killed_build(root, out, now, point):
    env = {**os.environ, "DECKBUILD_TEST_KILL_AT": point}
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(root), str(out), str(now)], env=env, check=False)
    assert proc.returncode == -signal.SIGKILL, f"the build should have died at {point}"


def state(root, out):
    """Every file a build leaves: packages, lock, and anything else (temporary files, journals)."""
    files = {f"dist/{p.name}": p.read_bytes() if p.is_file() else b"<folder>" for p in sorted(out.iterdir())}
    files |= {p.name: p.read_bytes() for p in sorted(root.iterdir()) if p.is_file()}
    return files


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_build_killed_anywhere_is_repaired_by_the_next_one_byte_for_byte(three_decks, point):
    root, out, expected = three_decks

    killed_build(root, out, T2, point)
    result = build([root], out, now=T2)
    assert state(root, out) == expected
    assert sorted(expected) == ["deckbuild.lock", "dist/A.apkg", "dist/B.apkg", "dist/C.apkg"]
    if point not in ("moved-4", "committed"):  # every rename was done: nothing to finish
        assert any("interrupted" in note for note in result.report.notes), result.report.notes


def test_a_build_killed_after_one_package_of_three_leaves_the_old_packages_and_lock(three_decks):
    root, out, _ = three_decks
    before = state(root, out)
    killed_build(root, out, T2, "package-1")
    after = {name: data for name, data in state(root, out).items() if not name.startswith("dist/.")}
    assert after == before


@pytest.mark.anki
def test_an_edit_shipped_by_a_killed_build_is_never_shadowed_by_a_later_one(three_decks, collection):
    from ankihelp import import_package, notes_by_guid

    root, out, _ = three_decks
    import_package(collection, out / "A.apkg")  # the learner has the first release
    source = root / "A" / "a.txt"
    (line,) = [x for x in source.read_text(encoding="utf-8").splitlines() if "edited A:" in x]
    guid = line.rsplit(";", 1)[1]

    killed_build(root, out, T2, "moved-1")  # A.apkg is in place, the lock is not
    import_package(collection, out / "A.apkg")
    assert notes_by_guid(collection)[guid]["Front"].startswith("<p>What does edited A:")

    edit(source, "edited A:", "edited again:")
    build([root], out, now=T2)  # the same second as the killed build
    import_package(collection, out / "A.apkg")
    assert notes_by_guid(collection)[guid]["Front"].startswith("<p>What does edited again:")
    assert len(collection.find_notes("")) == 40


def cli_build(*args):
    """Run `deckbuild build decks` in the working folder, as a user would."""
    from click.testing import CliRunner

    from deckbuild.cli import cli

    return CliRunner().invoke(cli, ["build", "decks", *args])


def strays(*folders):
    return [p.name for f in folders for p in f.iterdir() if p.name.startswith(".deckbuild")]


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_every_file_is_written_with_the_users_umask(tmp_path, mask):
    from deckbuild.atomic import write_text

    root = tmp_path / "decks"
    write_deck(root / "A" / "a.txt", 5)
    old = os.umask(mask)
    try:
        (package,) = build([root], tmp_path / "dist", now=T1).packages
        write_text(tmp_path / "notes.md", "x")
    finally:
        os.umask(old)
    for path in (package, root / "deckbuild.lock", tmp_path / "notes.md"):
        assert path.stat().st_mode & 0o777 == 0o666 & ~mask, path


def test_a_disk_that_fills_while_the_lock_is_written_leaves_everything_and_says_what_to_do(
    tmp_path, three_decks, monkeypatch
):
    root, out, _ = three_decks
    before = state(root, out)
    real_fsync = os.fsync

    def full(fd):
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(root)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full)
    monkeypatch.chdir(tmp_path)
    result = cli_build("-o", "dist", "--no-cache")
    assert isinstance(result.exception, SystemExit) and result.exit_code == 1
    assert result.stderr == (
        "error: decks/deckbuild.lock: cannot write (No space left on device); "
        "free some space on that disk and run again\n"
    )
    assert state(root, out) == before and not strays(root, out)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert cli_build("-o", "dist").exit_code == 0
    assert not strays(root, out)


@pytest.fixture
def small_disk(tmp_path):
    """A real 200 KiB file system (tmpfs), when this machine lets the tests mount one."""
    disk = tmp_path / "disk"
    disk.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(disk)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def remount(disk, options):
    subprocess.run(["mount", "-o", f"remount,{options}", str(disk)], check=True)


def test_a_full_disk_under_the_packages_fails_cleanly_and_the_next_build_is_right(
    tmp_path, small_disk, monkeypatch
):
    root, out = tmp_path / "decks", small_disk / "dist"
    write_deck(root / "A" / "a.txt", 40, seed=1)
    write_deck(root / "B" / "b.txt", 3000, seed=2)  # its package does not fit in 200 KiB
    (root / "deckbuild.lock").write_text(
        '{"deckbuild_lock": 1, "notetypes": {}, "notes": {}}\n', encoding="utf-8"
    )
    lock_before = (root / "deckbuild.lock").read_bytes()
    monkeypatch.chdir(tmp_path)
    result = cli_build("-o", str(out), "--no-cache")
    assert isinstance(result.exception, SystemExit) and result.exit_code == 1, result.output
    # SQLite says "database or disk is full", zip writing "No space left on device".
    assert result.stderr.startswith("error: disk/dist/B.apkg: cannot write ("), result.stderr
    assert result.stderr.endswith("free some space on that disk and run again\n"), result.stderr
    assert (root / "deckbuild.lock").read_bytes() == lock_before
    assert list(small_disk.iterdir()) == [], "nothing half-written is left on the full disk"

    remount(small_disk, "size=20m")
    clean = tmp_path / "clean"
    shutil.copytree(root, clean / "decks")
    build([clean / "decks"], clean / "dist", now=T1, use_cache=False)
    build([root], out, now=T1)
    assert state(root, out) == state(clean / "decks", clean / "dist")


def test_a_read_only_output_folder_is_a_message(tmp_path, small_disk, monkeypatch):
    root, out = tmp_path / "decks", small_disk / "dist"
    write_deck(root / "A" / "a.txt", 5)
    build([root], out, now=T1)
    before = state(root, out)
    edit(root / "A" / "a.txt", "step 3 of", "edited: step 3 of")
    remount(small_disk, "ro")
    monkeypatch.chdir(tmp_path)
    result = cli_build("-o", str(out))
    assert isinstance(result.exception, SystemExit) and result.exit_code == 1, result.output
    assert result.stderr == (
        "error: disk/dist/A.apkg: cannot write (Read-only file system); "
        "make the folder writable (or choose another one) and run again\n"
    )
    assert state(root, out) == before


def test_a_full_disk_under_the_lock_fails_cleanly_and_the_next_build_is_right(
    tmp_path, small_disk, monkeypatch
):
    root, out = small_disk / "decks", tmp_path / "dist"
    write_deck(root / "A" / "a.txt", 30)
    build([root], out, now=T1)
    edit(root / "A" / "a.txt", "step 3 of", "edited: step 3 of")
    before = state(root, out)
    filler = small_disk / "filler"
    with open(filler, "wb", buffering=0) as handle, pytest.raises(OSError):
        while True:  # fill the disk to the last byte
            handle.write(b"\0" * 4096)
    monkeypatch.chdir(small_disk)
    result = cli_build("-o", str(out), "--no-cache")
    assert isinstance(result.exception, SystemExit) and result.exit_code == 1, result.output
    assert result.stderr == (
        "error: decks/deckbuild.lock: cannot write (No space left on device); "
        "free some space on that disk and run again\n"
    )
    assert state(root, out) == before and not strays(root, out)

    filler.unlink()
    clean = tmp_path / "clean"
    shutil.copytree(root, clean / "decks")
    shutil.copytree(out, clean / "dist")
    build([clean / "decks"], clean / "dist", now=T2, use_cache=False)
    build([root], out, now=T2)
    assert state(root, out) == state(clean / "decks", clean / "dist")


@pytest.mark.parametrize("failing", range(1, 7))
def test_a_write_failing_at_any_rename_is_an_error_and_the_next_build_is_right(
    three_decks, monkeypatch, failing
):
    from deckbuild.errors import DeckbuildError

    root, out, expected = three_decks
    real_replace, calls = os.replace, []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == failing:  # the journal's copies, the packages and the lock: 6 renames
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(DeckbuildError, match=r": cannot write \(No space left on device\); free some space"):
        build([root], out, now=T2)
    monkeypatch.setattr(os, "replace", real_replace)
    build([root], out, now=T2)
    assert state(root, out) == expected


@pytest.mark.parametrize("delay", [0.3, 0.6, 0.9, 1.2, 1.5])
def test_a_build_killed_from_outside_at_any_moment_is_repaired_by_the_next_one(three_decks, delay):
    root, out, expected = three_decks
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, str(root), str(out), str(T2)])
    time.sleep(delay)
    proc.kill()
    proc.wait()
    build([root], out, now=T2)
    assert state(root, out) == expected


@pytest.mark.parametrize("refused", [1, 2, 3])
def test_a_package_refused_while_another_is_compressed_leaves_everything_as_it_was(
    three_decks, monkeypatch, refused
):
    # Each package is compressed in a thread while the next one is built and gated: a refusal
    # of any of them, the first, one in the middle or the last, must leave no package changed,
    # no lock, and no temporary file behind.
    import deckbuild.package as package

    root, out, _ = three_decks
    before = state(root, out)
    gated = []
    clean = package._clean

    def refuse_one(*args):
        gated.append(1)
        return clean(*args) and len(gated) != refused

    monkeypatch.setattr(package, "_clean", refuse_one)
    with pytest.raises(package.PackageRefused, match="Anki would refuse or change these"):
        build([root], out, now=T2)
    assert len(gated) == refused
    assert state(root, out) == before
