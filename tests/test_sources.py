"""Finding sources: deck names from folders, packages per top-level deck, decoding."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from ankihelp import import_package, notes_by_guid
from conftest import put, seed
from deckbuild.cli import cli
from deckbuild.errors import Report
from deckbuild.render import Where, render_text
from deckbuild.sources import (
    LOCK_NAME,
    MAX_SOURCE_BYTES,
    NotRegular,
    SourceFile,
    TooLarge,
    _tag_named,
    decode,
    digest_regular,
    discover,
    read_regular,
)

ROW = "Question;Answer;UUID\nQ;A;11111111-1111-4111-8111-111111111111\n"


def test_deck_names_follow_folders_and_top_folders_make_packages(deck_tree):
    put(deck_tree, "Lang/Spanish/verbs.txt", ROW)
    put(deck_tree, "Lang/nouns.txt", ROW)
    put(deck_tree, "Maths/algebra.txt", ROW)
    put(deck_tree, "Maths/figure.png", b"\x89PNG")
    put(deck_tree, "Maths/.hidden.txt", ROW)
    found = discover([deck_tree], Report())
    assert [(s.origin, s.deck, s.package) for s in found] == [
        ("Lang/Spanish/verbs.txt", "Lang::Spanish", "Lang"),
        ("Lang/nouns.txt", "Lang", "Lang"),
        ("Maths/algebra.txt", "Maths", "Maths"),
    ]


def test_a_subfolder_or_file_keeps_its_full_deck_name_below_the_lock(deck_tree):
    put(deck_tree, LOCK_NAME, '{"deckbuild_lock": 1, "notetypes": {}, "notes": {}}')
    verbs = put(deck_tree, "Lang/Spanish/verbs.txt", ROW)
    (one,) = discover([verbs], Report())
    # Built alone, a file's package is named after it: it must never replace its deck's package.
    assert (one.deck, one.package) == ("Lang::Spanish", "Lang-Spanish-verbs")
    (sub,) = discover([deck_tree / "Lang" / "Spanish"], Report())
    assert (sub.deck, sub.package) == ("Lang::Spanish", "Lang-Spanish")


def test_a_folder_without_sources_is_an_error(deck_tree, monkeypatch):
    monkeypatch.chdir(deck_tree.parent)
    report = Report()
    assert discover([deck_tree], report) == []
    assert [str(p) for p in report.problems] == [
        "decks: no deck sources in this folder; add a Question;Answer;UUID file or a quiz page"
    ]


def test_decoding_handles_bom_crlf_and_cp1252_with_a_warning(deck_tree, monkeypatch):
    monkeypatch.chdir(deck_tree)
    put(deck_tree, "a.txt", b"\xef\xbb\xbfQuestion;Answer;UUID\r\nQ;caf\xc3\xa9;x\r\n")
    put(deck_tree, "b.txt", b"Question;Answer;UUID\nQ;caf\xe9;x\n")
    report = Report()
    a, b = discover([deck_tree], report)
    assert decode(a, report) == ["Question;Answer;UUID", "Q;café;x", ""]
    assert decode(b, report) == ["Question;Answer;UUID", "Q;café;x", ""]
    assert [str(p) for p in report.problems] == [
        "b.txt:2: warning: not UTF-8; read as Windows-1252 (cp1252); save the file as UTF-8"
    ]


def test_binary_empty_and_looping_files_are_errors(deck_tree, monkeypatch):
    monkeypatch.chdir(deck_tree)
    put(deck_tree, "bin.txt", b"\x00\x01\x02")
    put(deck_tree, "empty.txt", "  \n")
    os.symlink("loop.txt", deck_tree / "loop.txt")
    report = Report()
    for source in discover([deck_tree], report):
        assert decode(source, report) is None
    assert [str(p) for p in report.sorted_problems()] == [
        "bin.txt:1: binary file, not text; move it out of the deck folder",
        "empty.txt:1: empty file; add cards or remove the file",
        "loop.txt:1: cannot read: symbolic link loop; fix or remove the file",
    ]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run deckbuild in its own process: a regression that blocks on a FIFO times out, not hangs."""
    return subprocess.run(
        [sys.executable, "-m", "deckbuild", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_only_regular_files_are_read_and_each_skipped_one_is_named(deck_tree, tmp_path, collection):
    put(deck_tree, "Deck/cards.txt", ROW)
    deck = deck_tree / "Deck"
    for name in ("fifo.txt", ".hidden-fifo", "song.mp3", "README"):
        os.mkfifo(deck / name)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(deck / "socket.txt"))
        os.symlink("/dev/zero", deck / "zero.txt")
        os.symlink("/dev/zero", deck / "zero.mp3")
        os.symlink("fifo.txt", deck / "to-fifo.txt")
        os.symlink(tmp_path, deck / "folder-link")
        outside = put(tmp_path, "outside.txt", ROW.replace("Q;A", "Secret;S"))
        os.symlink(outside, deck / "outside.txt")
        os.symlink("cards.txt", deck / "inside.txt")  # a link within the tree: its target is read where it is
        result = _cli("build", "decks", "-o", "dist", cwd=deck_tree.parent)
    assert result.returncode == 0
    assert result.stderr == (
        "decks/Deck/fifo.txt: warning: not a regular file (a FIFO), skipped; move it out of the deck folder\n"
        "decks/Deck/folder-link: warning: a link to a folder, skipped (links to folders are not "
        "followed); move the folder in\n"
        "decks/Deck/inside.txt: warning: a link to a file of the deck tree (decks/Deck/cards.txt), skipped "
        "(links are not followed; its cards are read where it is); move the file here instead\n"
        f"decks/Deck/outside.txt: warning: a link to a file outside the deck tree ({outside}), skipped; "
        "copy the file into the deck folder\n"
        "decks/Deck/socket.txt: warning: not a regular file (a socket), skipped; "
        "move it out of the deck folder\n"
        "decks/Deck/to-fifo.txt: warning: not a regular file (a FIFO), skipped; "
        "move it out of the deck folder\n"
        "decks/Deck/zero.txt: warning: not a regular file (a character device), skipped; "
        "move it out of the deck folder\n"
        "0 error(s), 7 warning(s)\n"
    )
    os.unlink(deck / "inside.txt")
    result = _cli("build", "decks", "-o", "dist", cwd=deck_tree.parent)
    assert result.returncode == 0, result.stderr
    assert result.stderr.endswith("0 error(s), 6 warning(s)\n")
    # The unchanged rebuild fingerprints the tree without opening the FIFOs or reading /dev/zero.
    again = _cli("build", "decks", "-o", "dist", cwd=deck_tree.parent)
    assert (again.returncode, again.stderr, again.stdout) == (0, result.stderr, result.stdout)
    assert import_package(collection, deck_tree.parent / "dist" / "Deck.apkg").new == 1
    (note,) = notes_by_guid(collection).values()
    assert note["Front"] == "<p>Q</p>", "the outside file (Secret) was never read"


def test_a_fifo_or_device_named_on_the_command_line_is_skipped_with_a_warning(deck_tree, monkeypatch):
    monkeypatch.chdir(deck_tree)
    os.mkfifo(deck_tree / "fifo.txt")
    os.symlink("/dev/null", deck_tree / "null.txt")
    report = Report()
    for source in discover([deck_tree / "fifo.txt", deck_tree / "null.txt"], report):
        assert decode(source, report) is None
    assert [str(p) for p in report.sorted_problems()] == [
        "fifo.txt: warning: not a regular file (a FIFO), skipped; move it out of the deck folder",
        "null.txt: warning: not a regular file (a character device), skipped; move it out of the deck folder",
    ]


def test_a_file_swapped_for_a_fifo_after_listing_is_never_opened_for_reading(deck_tree, monkeypatch):
    monkeypatch.chdir(deck_tree)
    put(deck_tree, "cards.txt", ROW)
    report = Report()
    (source,) = discover([deck_tree], report)
    (deck_tree / "cards.txt").unlink()
    os.mkfifo(deck_tree / "cards.txt")
    assert decode(source, report) is None
    assert [str(p) for p in report.problems] == [
        "cards.txt: warning: not a regular file (a FIFO), skipped; move it out of the deck folder"
    ]


def test_a_source_above_the_size_limit_is_an_error_not_a_memory_error(deck_tree, monkeypatch):
    monkeypatch.chdir(deck_tree)
    big = put(deck_tree, "big.txt", ROW)
    with open(big, "ab") as handle:
        handle.truncate(MAX_SOURCE_BYTES + 1)  # sparse: costs no disk
    put(deck_tree, "fits.txt", ROW.replace("1111-4111", "2222-4222"))
    report = Report()
    assert [decode(s, report) is None for s in discover([deck_tree], report)] == [True, False]
    assert [str(p) for p in report.problems] == [
        "big.txt:1: file too large (10 MiB; a source may have at most 10 MiB); split it into smaller files"
    ]


def test_reading_stops_at_the_limit_even_past_the_size_the_file_had_when_opened():
    # /proc files say they are empty and then give more: as a file that grows while it is read.
    proc = Path("/proc/self/maps")
    if not proc.exists():
        pytest.skip("needs /proc")
    assert os.stat(proc).st_size == 0
    with pytest.raises(TooLarge) as raised:
        read_regular(proc, limit=64)
    assert raised.value.size == 65, "read one byte past the limit, never the rest"
    assert len(read_regular(proc, limit=None)) > 64


@given(size=st.sampled_from([0, 1, (1 << 18) - 1, 1 << 18, (1 << 18) + 1, 3 << 18]) | st.integers(0, 1 << 20))
def test_a_file_is_hashed_piece_by_piece_as_it_is_read_whole(size):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cards.txt"
        path.write_bytes(random.Random(size).randbytes(size))
        assert digest_regular(path) == hashlib.sha256(read_regular(path)).digest()
        if size:
            with pytest.raises(TooLarge):
                digest_regular(path, limit=size - 1)


def test_hashing_refuses_what_reading_refuses(tmp_path):
    os.mkfifo(tmp_path / "fifo.txt")  # opening it to read would wait for a writer forever
    with pytest.raises(NotRegular):
        digest_regular(tmp_path / "fifo.txt")
    with pytest.raises(FileNotFoundError):
        digest_regular(tmp_path / "gone.txt")
    proc = Path("/proc/self/maps")  # says it is empty, then gives more: as a file that grows
    if proc.exists():
        with pytest.raises(TooLarge) as raised:
            digest_regular(proc, limit=64)
        assert raised.value.size > 64


def test_a_file_that_vanished_or_a_broken_link_is_an_error(deck_tree, monkeypatch):
    monkeypatch.chdir(deck_tree)
    put(deck_tree, "gone.txt", ROW)
    os.symlink("missing.txt", deck_tree / "broken.txt")
    report = Report()
    sources = discover([deck_tree], report)
    (deck_tree / "gone.txt").unlink()
    assert [decode(s, report) for s in sources] == [None, None]
    assert [str(p) for p in report.sorted_problems()] == [
        "broken.txt:1: cannot read: broken symbolic link (to missing.txt); fix or remove the file",
        "gone.txt:1: cannot read: the file disappeared while the build ran; fix or remove the file",
    ]


def _problems_reading(decks: Path, user: int | None) -> list[str]:
    """Discover and decode in a forked child, as `user` when given; return the problems found."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's side
        try:
            os.close(read_end)
            if user is not None:
                os.setgid(user)
                os.setuid(user)
            os.chdir(decks.parent)
            report = Report()
            for source in discover([decks], report):
                decode(source, report)
            os.write(write_end, "\n".join(str(p) for p in report.sorted_problems()).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        text = pipe.read().decode()
    os.waitpid(pid, 0)
    return text.split("\n")


def test_unreadable_files_and_folders_are_errors_never_silently_dropped(tmp_path):
    # Root reads through chmod 000, so as root the reading runs as the unprivileged user nobody.
    nobody = 65534 if os.geteuid() == 0 else None
    base = Path(tempfile.mkdtemp(dir="/tmp" if nobody else tmp_path))
    try:
        base.chmod(0o755)
        decks = base / "decks"
        put(decks, "Deck/cards.txt", ROW)
        locked = put(decks, "Deck/locked.txt", ROW.replace("1111-4111", "2222-4222"))
        closed = put(decks, "Closed/inside.txt", ROW.replace("1111-4111", "3333-4333")).parent
        for folder, _, _ in os.walk(base):
            os.chmod(folder, 0o755)
        locked.chmod(0o000)
        closed.chmod(0o000)
        problems = _problems_reading(decks, nobody)
    finally:
        for folder, _, _ in os.walk(base):
            os.chmod(folder, 0o755)
        shutil.rmtree(base)
    assert problems == [
        "decks/Closed: cannot list folder: Permission denied; fix its permissions or remove it",
        "decks/Deck/locked.txt:1: cannot read: Permission denied; fix or remove the file",
    ]


def _zero_link(path: Path) -> None:
    os.symlink("/dev/zero", path)


@pytest.mark.parametrize(("make", "kind"), [(os.mkfifo, "a FIFO"), (_zero_link, "a character device")])
def test_a_lock_file_that_is_a_fifo_or_a_device_is_an_error_not_a_hang(make, kind, deck_tree):
    put(deck_tree, "Deck/cards.txt", ROW)
    make(deck_tree / LOCK_NAME)
    result = _cli("build", "decks", "-o", "dist", cwd=deck_tree.parent)
    assert result.returncode == 1
    assert result.stderr == (
        f"error: decks/{LOCK_NAME}:1: cannot read the lock file: not a regular file ({kind}); "
        f"restore it from git (git -C decks checkout HEAD -- {LOCK_NAME}, then build)\n"
    )
    assert not (deck_tree.parent / "dist").exists()


def test_an_image_that_is_a_fifo_is_never_opened_even_if_swapped_in_after_the_check(deck_tree, monkeypatch):
    os.mkfifo(deck_tree / "pic.png")
    report = Report()
    where = Where("cards.txt", 2, deck_tree, deck_tree)
    assert render_text("![a](pic.png)", where, report) == "<p></p>"
    # As if it became a FIFO between the check and the read: reading it would block forever.
    monkeypatch.setattr(Path, "is_file", lambda self: True)
    assert render_text("![b](pic.png)", where, report) == "<p></p>"
    assert [str(p) for p in report.problems] == [
        "cards.txt:2: warning: image pic.png not found, left out of the card; add the file or fix the path",
        "cards.txt:2: warning: image pic.png cannot be read (not a regular file (a FIFO)), left out of the "
        "card; put the image file there",
    ]
    assert where.media == {}


def test_a_calc_input_file_is_read_bounded_a_pipe_too(tmp_path):
    binary = put(tmp_path, "m.bin", b"\xff\xfe\x00")
    runner = CliRunner()
    for name, reason in (("/dev/zero", "larger than 10 MiB"), (str(binary), "not UTF-8 text")):
        result = runner.invoke(cli, ["calc", "softmax", f"@{name}"])
        assert result.exit_code == 2
        assert result.stderr.endswith(f"Error: Invalid value for 'VALUES': cannot read {name}: {reason}\n")
    read_end, write_end = os.pipe()  # what `@<(…)` in a shell names
    os.write(write_end, b"[1, 2]")
    os.close(write_end)
    try:
        result = runner.invoke(cli, ["calc", "softmax", f"@/dev/fd/{read_end}", "--json"])
    finally:
        os.close(read_end)
    assert result.exit_code == 0, result.output
    assert [round(x, 4) for x in json.loads(result.stdout)["output"]] == [0.2689, 0.7311]


def test_an_image_that_is_a_link_loop_is_an_error_not_a_traceback(deck_tree):
    put(
        deck_tree,
        "D/a.txt",
        "Question;Answer;UUID\nq ![k](img/loop.png);a;aaaaaaaa-1111-4111-8111-111111111111\n",
    )
    (deck_tree / "D" / "img").mkdir()
    os.symlink("loop.png", deck_tree / "D" / "img" / "loop.png")
    result = _cli("build", "decks", "-o", "dist", cwd=deck_tree.parent)
    assert result.returncode == 1
    assert result.stderr == (
        "decks/D/a.txt:2: image img/loop.png is a link in a loop; fix the link\n1 error(s), 0 warning(s)\n"
    )


@pytest.mark.parametrize(
    "link, target, src",
    [
        # `..` after a link is followed from where the link leads, never cut off as text.
        (".lnk", "x/y/z", ".lnk/../../../secret.png"),
        (".lnk", ".sub/e", ".lnk/../secret.png"),
        (".img", "a/b", ".img/../../secret.png"),
    ],
)
def test_an_image_is_the_file_its_path_leads_to_never_one_outside_the_deck(deck_tree, link, target, src):
    inside = b"\x89PNG inside the deck"
    outside = b"\x89PNG outside the deck"
    (deck_tree.parent / "secret.png").write_bytes(outside)  # beside the deck tree
    (deck_tree / "D" / "secret.png").parent.mkdir(parents=True, exist_ok=True)
    (deck_tree / "D" / "secret.png").write_bytes(outside)  # where the text alone would lead
    put(deck_tree, "D/a.txt", f"Question;Answer;UUID\nq ![k]({src});a;aaaaaaaa-1111-4111-8111-111111111111\n")
    (deck_tree / "D" / target).mkdir(parents=True)
    os.symlink(target, deck_tree / "D" / link)
    followed = Path(os.path.realpath(deck_tree / "D" / src))
    followed.write_bytes(inside)
    result = _cli("build", "decks", "-o", "dist", cwd=deck_tree.parent)
    assert (result.returncode, result.stderr) == (0, "")
    with zipfile.ZipFile(deck_tree.parent / "dist" / "D.apkg") as package:
        names = json.loads(package.read("media"))
        assert [package.read(n) for n in names] == [inside]


@pytest.mark.parametrize(
    "src, message",
    [
        ("img/p%00.png", "image img/p%00.png names no file (a NUL character); fix the path"),
        (
            "img/" + "p" * 300 + ".png",
            "warning: image img/" + "p" * 300 + ".png cannot be read (File name too long), "
            "left out of the card; fix the path",
        ),
    ],
)
def test_an_image_path_no_system_takes_is_a_message_not_a_traceback(deck_tree, src, message):
    (deck_tree / "D" / "img").mkdir(parents=True)
    put(deck_tree, "D/a.txt", f"Question;Answer;UUID\nq ![k]({src});a;aaaaaaaa-1111-4111-8111-111111111111\n")
    result = _cli("build", "decks", "-o", "dist", cwd=deck_tree.parent)
    error = "warning" not in message
    assert (result.returncode, result.stderr) == (
        int(error),
        f"decks/D/a.txt:2: {message}\n{int(error)} error(s), {int(not error)} warning(s)\n",
    )


def test_an_image_over_the_size_limit_is_left_out_without_reading_it(deck_tree):
    put(
        deck_tree,
        "D/a.txt",
        "Question;Answer;UUID\nq ![j](img/big.png);a;aaaaaaaa-1111-4111-8111-111111111111\n",
    )
    (deck_tree / "D" / "img").mkdir()
    with (deck_tree / "D" / "img" / "big.png").open("wb") as big:
        big.truncate(3 * 1024**3)  # sparse: 3 GB that take no disk
    result = _cli("build", "decks", "-o", "dist", cwd=deck_tree.parent)
    assert result.returncode == 0
    assert result.stderr == (
        "decks/D/a.txt:2: warning: image img/big.png is larger than 100 MiB, "
        "left out of the card; shrink it\n"
        "0 error(s), 1 warning(s)\n"
    )
    assert (deck_tree.parent / "dist" / "D.apkg").stat().st_size < 1_000_000


@pytest.mark.parametrize("second", ["Alpha", "ALPHA"])
def test_two_deck_trees_with_a_folder_of_one_deck_name_are_refused_by_name(tmp_path, monkeypatch, second):
    monkeypatch.chdir(tmp_path)
    put(tmp_path, "one/Alpha/c.txt", "Question;Answer;UUID\nQ1?;A.;aaaaaaaa-0000-4000-8000-000000000001\n")
    put(
        tmp_path, f"two/{second}/c.txt", "Question;Answer;UUID\nQ2?;A.;aaaaaaaa-0000-4000-8000-000000000002\n"
    )
    for tree in ("one", "two"):
        put(tmp_path, f"{tree}/{LOCK_NAME}", '{"deckbuild_lock": 1, "notetypes": {}, "notes": {}}\n')
    result = CliRunner().invoke(cli, ["build", "one", "two", "-o", "out", "--no-cache"])
    why = (
        "is also the deck of one/Alpha, in another deck tree"
        if second == "Alpha"
        else "is Alpha to Anki, which ignores case"
    )
    assert (result.exit_code, result.output) == (
        1,
        f"two/{second}/c.txt:1: deck {second} {why}; rename one of the two folders\n"
        "1 error(s), 0 warning(s)\n",
    )
    assert not (tmp_path / "out").exists()


def _one_card_each(root: Path, files: list[str]) -> None:
    """Write each file below `root` with one card, the n-th with the UUID that ends in n."""
    for n, file in enumerate(files):
        put(root, file, f"Question;Answer;UUID\nQ{n}?;A.;aaaaaaaa-0000-4000-8000-00000000000{n}\n")


def test_folders_anki_would_merge_or_rename_are_refused(deck_tree, monkeypatch):
    monkeypatch.chdir(deck_tree.parent)
    _one_card_each(deck_tree, [f"{folder}/c.txt" for folder in ["D/A", "D/a", "D/ B ", "D/x::y", "D/x/y"]])
    report = Report()
    discover([deck_tree], report)
    assert [str(p) for p in report.problems] == [
        "decks/D/ B /c.txt:1: folder name ' B ' would not be its own deck in Anki ('::' splits deck names, "
        "blanks around a name are dropped); rename the folder",
        "decks/D/a/c.txt:1: deck D::a is D::A to Anki, which ignores case; rename one of the two folders",
        "decks/D/x::y/c.txt:1: folder name 'x::y' would not be its own deck in Anki ('::' splits deck names, "
        "blanks around a name are dropped); rename the folder",
    ]


def test_a_file_whose_name_would_tag_its_cards_with_an_empty_part_is_named_once(deck_tree, monkeypatch):
    monkeypatch.chdir(deck_tree.parent)
    _one_card_each(deck_tree, [f"D/{name}.txt" for name in ["x::", "::x", "a::::b", "a::b", "a :: b"]])
    result = CliRunner().invoke(cli, ["build", "decks", "-o", "out"])
    assert (result.exit_code, result.stderr) == (
        1,
        "decks/D/::x.txt:1: file name '::x.txt' would tag its cards 'source::::x', with an empty part "
        "between '::' (Anki would name it 'blank'); rename the file\n"
        "decks/D/a::::b.txt:1: file name 'a::::b.txt' would tag its cards 'source::a::::b', with an "
        "empty part between '::' (Anki would name it 'blank'); rename the file\n"
        "decks/D/x::.txt:1: file name 'x::.txt' would tag its cards 'source::x::', with an empty part "
        "between '::' (Anki would name it 'blank'); rename the file\n"
        "3 error(s), 0 warning(s)\n",
    )
    assert not (deck_tree.parent / "out").exists()


def test_a_link_to_a_page_of_the_tree_gives_its_cards_once(deck_tree, monkeypatch):
    # A page has no UUIDs: read through a link too, its cards came twice under other ids.
    monkeypatch.chdir(deck_tree.parent)
    put(deck_tree, "Q/page.txt", seed("003"))
    (deck_tree / "B").mkdir()
    os.symlink("../Q/page.txt", deck_tree / "B" / "page.txt")
    result = CliRunner().invoke(cli, ["build", "decks", "-o", "out"])
    assert result.exit_code == 0
    assert (
        "decks/B/page.txt: warning: a link to a file of the deck tree (decks/Q/page.txt), skipped (links "
        "are not followed; its cards are read where it is); move the file here instead"
    ) in result.stderr.splitlines()
    assert not (deck_tree.parent / "out" / "B.apkg").exists()


@pytest.mark.parametrize("name", [".hidden.txt", "README.md", ".hid/a.txt", "linked.txt"])
def test_a_file_named_on_its_own_is_read_only_as_a_build_of_its_tree_reads_it(deck_tree, tmp_path, name):
    # Its cards entered the lock, and the next whole build said they were gone.
    put(deck_tree, "A/a.txt", ROW)
    outside = put(tmp_path, "outside.txt", ROW.replace("11111111-1111-4111-8111", "22222222-2222-4222-8222"))
    if name == "linked.txt":
        os.symlink(outside, deck_tree / "A" / name)
    else:
        put(deck_tree, f"A/{name}", ROW.replace("11111111-1111-4111-8111", "22222222-2222-4222-8222"))
    put(deck_tree, LOCK_NAME, '{"deckbuild_lock": 1, "notetypes": {}, "notes": {}}\n')
    result = _cli("build", f"decks/A/{name}", "-o", "out", cwd=deck_tree.parent)
    assert result.returncode == 1
    assert result.stderr.startswith(f"decks/A/{name}: ")
    assert "22222222" not in (deck_tree / LOCK_NAME).read_text(encoding="utf-8")


def test_two_decks_whose_packages_would_take_one_name_are_refused(deck_tree, monkeypatch):
    # `A+B` and `A_B` were packaged together as A_B.apkg; `X/Y` built alone replaced X-Y.apkg.
    monkeypatch.chdir(deck_tree.parent)
    _one_card_each(deck_tree, [f"{folder}/f.txt" for folder in ["A+B", "A_B", "X/Y", "X-Y"]])
    whole = CliRunner().invoke(cli, ["build", "decks", "-o", "out"])
    assert (whole.exit_code, whole.stderr) == (
        1,
        "decks/A+B/f.txt:1: its package A_B.apkg is also the package of deck A_B, which it would replace; "
        "rename a folder so that the two differ\n"
        "decks/A_B/f.txt:1: its package A_B.apkg is also the package of deck A+B; rename a folder so that "
        "the two differ\n2 error(s), 0 warning(s)\n",
    )
    shutil.rmtree(deck_tree / "A+B")
    assert CliRunner().invoke(cli, ["build", "decks", "-o", "out"]).exit_code == 0
    part = CliRunner().invoke(cli, ["build", "decks/X/Y", "-o", "out"])
    assert (part.exit_code, part.stderr) == (
        1,
        "decks/X/Y/f.txt:1: its package X-Y.apkg is also the package of deck X-Y, which it would replace; "
        "rename a folder so that the two differ\n1 error(s), 0 warning(s)\n",
    )
    with zipfile.ZipFile(deck_tree.parent / "out" / "X-Y.apkg") as z:
        assert b"Q3?" in z.read("collection.anki2"), "the whole deck's package stands"


def test_a_c1_control_in_a_file_name_is_an_error_and_shown_escaped(deck_tree, monkeypatch):
    # U+009B is a terminal's escape sequence introducer; Anki would keep it in the Source field.
    monkeypatch.chdir(deck_tree.parent)
    put(deck_tree, "D/t\x9bm.txt", "Question;Answer;UUID\nQ?;A.;\n")
    ids = CliRunner().invoke(cli, ["ids", "decks"])
    assert ids.stdout.splitlines()[0] == "decks/D/t\\x9bm.txt: wrote 1 new id(s), line(s) 2"
    result = CliRunner().invoke(cli, ["check", "decks"])
    assert (result.exit_code, result.stderr) == (
        1,
        "decks/D/t\\x9bm.txt:2: the file path holds the control character U+009B at character 10, "
        "which Anki cannot store; rename the file or folder\n1 error(s), 0 warning(s)\n",
    )


def test_a_file_built_alone_hears_of_a_uuid_that_a_misnamed_file_of_its_tree_uses_too(deck_tree, monkeypatch):
    # Read for its ids alone, the misnamed file was left out, and the UUID shipped twice.
    monkeypatch.chdir(deck_tree.parent)
    row = "Question;Answer;UUID\nQ{}?;A.;21111111-1111-4111-8111-111111111111\n"
    put(deck_tree, "D/a::.txt", row.format(1))
    put(deck_tree, "D/b.txt", row.format(2))
    put(deck_tree, "deckbuild.lock", '{"deckbuild_lock": 1, "notetypes": {}, "notes": {}}\n')
    result = CliRunner().invoke(cli, ["build", "decks/D/b.txt", "-o", "out"])
    assert (result.exit_code, result.stderr) == (
        1,
        "decks/D/b.txt:2: UUID 21111111-1111-4111-8111-111111111111 is used twice: here and at "
        "decks/D/a::.txt:2; give one of the cards a new UUID\n1 error(s), 0 warning(s)\n",
    )


@given(st.text(st.sampled_from([":", "a", " ", "é", "-"]), min_size=1, max_size=8))
def test_a_file_name_is_refused_or_gives_its_cards_a_tag_a_card_may_hold(stem):
    # The file-name check and the card's own tag check agree: no card hears of a tag it never wrote.
    from deckbuild.models import _tag

    root = Path("/decks")
    source = SourceFile(root / "D" / f"{stem}.txt", root, "D", "D")
    report = Report()
    if _tag_named(source, report):
        assert _tag(source.tag) == source.tag
    else:
        assert [p.line for p in report.problems] == [1]
        with pytest.raises(ValueError, match="empty"):
            _tag(source.tag)


# Letters whose spellings Anki takes for one: by case, and composed (NFC) or not (NFD).
_NAME = st.lists(st.sampled_from(["a", "A", "\u00e9", "e\u0301", "\u00c9"]), min_size=1, max_size=3).map(
    "".join
)


@given(st.lists(_NAME, min_size=1, max_size=3, unique=True), st.booleans())
def test_folders_are_refused_exactly_when_anki_takes_their_decks_for_one(names, in_root):
    # Anki is the judge: two deck names it gives one id are one deck, whatever deckbuild thinks.
    from anki.collection import Collection

    from deckbuild.sources import discover

    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp) / "decks"
        _one_card_each(root, [f"{name}/c.txt" for name in names])
        decks = list(names)
        if in_root:
            put(root, "r.txt", "Question;Answer;UUID\nR?;A.;aaaaaaaa-0000-4000-8000-00000000000f\n")
            decks.append("decks")
        col = Collection(str(Path(temp) / "c.anki2"))
        try:
            ids = [col.decks.id(name) for name in decks]
        finally:
            col.close()
        report = Report()
        discover([root], report)
        assert bool(report.errors) == (len(set(ids)) < len(ids)), (decks, [p.message for p in report.errors])


def test_the_root_decks_name_and_a_folder_of_it_in_another_case_are_refused(deck_tree, monkeypatch):
    put(deck_tree, "a.txt", "Question;Answer;UUID\nQ1?;A.;aaaaaaaa-0000-4000-8000-000000000001\n")
    put(deck_tree, "Decks/b.txt", "Question;Answer;UUID\nQ2?;A.;aaaaaaaa-0000-4000-8000-000000000002\n")
    put(deck_tree, "Caf\u00e9/c.txt", "Question;Answer;UUID\nQ3?;A.;aaaaaaaa-0000-4000-8000-000000000003\n")
    put(deck_tree, "Cafe\u0301/d.txt", "Question;Answer;UUID\nQ4?;A.;aaaaaaaa-0000-4000-8000-000000000004\n")
    monkeypatch.chdir(deck_tree.parent)
    result = CliRunner().invoke(cli, ["build", "decks"])
    assert (result.exit_code, result.stderr) == (
        1,
        "decks/Caf\u00e9/c.txt:1: deck Caf\u00e9 is Cafe\u0301 to Anki, which keeps accented letters "
        "composed (NFC): one of the two names is written decomposed; rename one of the two folders\n"
        "decks/Decks/b.txt:1: deck Decks is decks to Anki, which ignores case; rename one of the two "
        "folders\n"
        "2 error(s), 0 warning(s)\n",
    )
    assert not (deck_tree.parent / "dist").exists()


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_byte_order_mark_is_read_with_a_warning_not_called_binary(tmp_path, codec):
    from deckbuild.sources import SourceFile, decode

    text = "Question;Answer;UUID\r\nQ?;Café;11111111-1111-4111-8111-111111111111\r\n"
    path = tmp_path / "d" / "u.txt"
    path.parent.mkdir()
    path.write_bytes(text.encode(codec))
    report = Report()
    lines = decode(SourceFile(path, tmp_path, "d", "d"), report)
    assert lines is not None and lines[1] == "Q?;Café;11111111-1111-4111-8111-111111111111"
    assert [p.message for p in report.problems] == [
        "UTF-16 text without a byte-order mark; read as such; save the file as UTF-8"
    ]
    png = tmp_path / "d" / "p.txt"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00")
    assert decode(SourceFile(png, tmp_path, "d", "d"), Report()) is None
