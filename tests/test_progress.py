"""Progress on long builds, quiet otherwise, and -v saying where the time went."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from conftest import put, seed
from deckbuild.cli import ProgressLine, cli
from deckbuild.progress import STAGES


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class Clock:
    """A clock that moves only when the test says."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _walk(line: ProgressLine, clock: Clock, step: float) -> None:
    """Go through a build's stages and counts, `step` seconds apart."""
    for name, counts in [
        ("fingerprint", {}),
        ("helpers", {}),
        ("reading", {"files": 1, "read": 60}),
        ("memo", {"memo": 59}),
        ("rendering", {"rendered": 1}),
        ("lock", {}),
        ("packaging", {"written": 1}),
        ("committing", {}),
        ("recording", {}),
    ]:
        clock.now += step
        line.stage(name)
        for what, n in counts.items():
            clock.now += step
            line.count(what, n)


def test_a_build_quicker_than_the_threshold_draws_nothing_on_a_terminal():
    term, clock = Terminal(), Clock()
    line = ProgressLine(term, clock, started=100.0, after=1.0)
    _walk(line, clock, 0.07)  # 0.91 s in all
    line.finish()
    assert term.getvalue() == ""


def test_a_long_build_draws_one_line_in_place_and_wipes_it_before_anything_else_is_printed():
    term, clock = Terminal(), Clock()
    line = ProgressLine(term, clock, started=100.0, after=1.0, columns=80)
    clock.now = 100.5
    line.stage("reading")
    line.count("read", 40)  # before the threshold: nothing
    clock.now = 101.2
    line.count("read", 60)
    clock.now = 101.25
    line.count("read", 10)  # within 0.1 s of the last drawing: not drawn again
    clock.now = 101.4
    line.stage("memo")  # a new stage is drawn at once
    line.count("memo", 109)
    clock.now = 101.5
    line.stage("rendering")
    clock.now = 102.0
    line.count("rendered", 1)
    line.stage("lock")
    clock.now = 102.3
    line.stage("packaging")
    line.stage("committing")  # nothing new to say but the stage: drawn
    clock.now = 102.5
    line.count("written")
    line.finish()
    shown = [
        "reading: 100 card(s) read",
        "memo: 110 card(s) read   ",
        "rendering: 110 card(s) read, 1 to render",
        "rendering: 110 card(s) read, 1 rendered ",
        "lock: 110 card(s) read, 1 rendered     ",
        "packaging: 110 card(s) read, 1 rendered, 0 package(s) written",
        "committing: 110 card(s) read, 1 rendered, 0 package(s) written",
        "committing: 110 card(s) read, 1 rendered, 1 package(s) written",
    ]
    width = len(shown[-1])
    assert term.getvalue() == "".join("\r" + s for s in shown) + "\r" + " " * width + "\r"
    assert "\n" not in term.getvalue()


def test_the_line_never_fills_the_terminal_s_width():
    term, clock = Terminal(), Clock()
    line = ProgressLine(term, clock, started=0.0, after=1.0, columns=20)
    line.stage("rendering")
    line.finish()
    assert term.getvalue() == "\rrendering: 0 card(s" + "\r" + " " * 19 + "\r"


@pytest.mark.parametrize("stream, show", [(io.StringIO(), True), (Terminal(), False)], ids=["piped", "quiet"])
def test_no_progress_at_all_when_not_on_a_terminal_or_quiet(stream, show):
    clock = Clock()
    line = ProgressLine(stream, clock, started=0.0, after=0.0, show=show)
    _walk(line, clock, 1.0)
    line.finish()
    assert stream.getvalue() == ""


class GoneTerminal(Terminal):
    """A terminal that went away (a closed ssh session): every write fails."""

    def write(self, text: str) -> int:
        raise OSError(5, "Input/output error")


def test_a_terminal_that_went_away_stops_the_progress_not_the_build():
    clock = Clock()
    line = ProgressLine(GoneTerminal(), clock, started=0.0, after=0.0)
    _walk(line, clock, 1.0)  # no exception
    line.finish()
    assert not line.show and line.shown == ""
    assert line.timings()[4] == "    3.000 s  reading      60 card(s) in 1 file(s)"


def test_timings_give_each_stage_its_time_and_counts():
    clock = Clock()
    line = ProgressLine(io.StringIO(), clock, started=99.75)
    _walk(line, clock, 0.125)
    clock.now += 0.25
    line.finish()
    assert line.timings() == [
        "where the time went (2.250 s):",
        "    0.375 s  start-up     Python, imports, locks, cache",
        "    0.125 s  fingerprint  hashing the inputs, to find an unchanged build",
        "    0.125 s  helpers      starting the helpers, importing what reading needs",
        "    0.375 s  reading      60 card(s) in 1 file(s)",
        "    0.250 s  memo         59 card(s) from the memo",
        "    0.250 s  rendering    1 card(s) validated and rendered",
        "    0.125 s  lock         stamping the cards in the lock",
        "    0.250 s  packaging    1 package(s) written, 0 unchanged",
        "    0.125 s  committing   renaming packages and lock into place",
        "    0.250 s  recording    keeping the build's record, for the next identical build",
    ]


def test_timings_of_a_build_answered_from_its_record_say_so():
    clock = Clock()
    line = ProgressLine(io.StringIO(), clock, started=99.5)
    line.stage("fingerprint")
    clock.now = 100.25
    line.finish()
    assert line.timings() == [
        "where the time went (0.750 s):",
        "    0.500 s  start-up     Python, imports, locks, cache",
        "    0.250 s  fingerprint  hashing the inputs, to find an unchanged build",
        "  nothing changed since the last build: answered from its record",
    ]


@pytest.fixture
def run(deck_tree, monkeypatch):
    """Run `deckbuild build` above a deck tree holding seed 003, progress asked for at once."""
    put(deck_tree, "Deck/003.txt", seed("003"))
    monkeypatch.chdir(deck_tree.parent)
    monkeypatch.setenv("DECKBUILD_PROGRESS_AFTER", "0")
    return lambda *args: CliRunner().invoke(cli, ["build", "decks", *args], prog_name="deckbuild")


def _cards(result) -> int:
    return int(re.search(r"^(\d+) card\(s\) read", result.stdout, re.M).group(1))


def test_a_build_whose_stderr_is_not_a_terminal_prints_no_progress(run):
    result = run()
    assert result.exit_code == 0
    assert "\r" not in result.stderr and "card(s) read" not in result.stderr
    n = _cards(result)
    assert result.stdout == f"wrote dist/Deck.apkg\n{n} card(s) read, {n} packaged, 0 skipped, 0 incomplete\n"


def test_quiet_prints_only_the_problems(run, deck_tree):
    loud = run("-o", "loud")
    quiet = run("-o", "quiet", "--quiet")
    assert quiet.exit_code == 0 and quiet.stdout == ""
    assert quiet.stderr == loud.stderr and "warning:" in quiet.stderr
    out = deck_tree.parent
    assert (out / "quiet" / "Deck.apkg").read_bytes() == (out / "loud" / "Deck.apkg").read_bytes()
    put(deck_tree, "Clean/cards.txt", "Question;Answer;UUID\nQ;A;11111111-1111-4111-8111-111111111111\n")
    clean = CliRunner().invoke(cli, ["build", "decks/Clean", "-q"])
    assert (clean.exit_code, clean.stdout, clean.stderr) == (0, "", "")


def _stages(stderr: str) -> dict[str, str]:
    """Return what -v says of each stage, its time left out."""
    rows = re.findall(r"^ +\d+\.\d{3} s  (\S+) +(.*)$", stderr, re.M)
    return dict(rows)


def test_verbose_names_every_stage_and_counts_the_cards_from_the_memo_and_rendered(run, deck_tree):
    cards = _cards(run())
    source = deck_tree / "Deck" / "003.txt"
    source.write_text(source.read_text("utf-8").replace("query vector (", "query vector, q ("), "utf-8")
    result = run("-v")
    assert result.exit_code == 0 and "\r" not in result.stderr
    said = _stages(result.stderr)
    assert list(said) == list(STAGES) and len(STAGES) == 10  # every stage, each once, in order
    assert said["reading"] == f"{cards} card(s) in 1 file(s)"
    assert said["memo"] == f"{cards - 1} card(s) from the memo"
    assert said["rendering"] == "1 card(s) validated and rendered"
    assert said["packaging"] == "1 package(s) written, 0 unchanged"
    # After the summary, which is on stdout; the problems come first on stderr.
    assert result.stderr.index("0 error(s), 2 warning(s)") < result.stderr.index("where the time went")


def test_verbose_says_when_nothing_changed(run):
    run()
    result = run("--verbose")
    assert list(_stages(result.stderr)) == ["start-up", "fingerprint"]
    assert result.stderr.endswith("  nothing changed since the last build: answered from its record\n")


def test_quiet_and_verbose_together_are_a_usage_error(run):
    result = run("-q", "-v")
    assert result.exit_code == 2
    assert result.stderr.endswith("Error: --quiet and --verbose ask for opposite things; give one of them\n")


@pytest.mark.parametrize("value", ["soon", "", "nan", "-1"])
def test_a_threshold_that_is_not_a_number_is_a_usage_error(run, monkeypatch, value):
    monkeypatch.setenv("DECKBUILD_PROGRESS_AFTER", value)
    result = run()
    assert result.exit_code == 2
    assert result.stderr.endswith(f"Error: DECKBUILD_PROGRESS_AFTER={value!r} is not a number of seconds\n")


def test_quiet_never_reads_the_threshold(run, monkeypatch):
    monkeypatch.setenv("DECKBUILD_PROGRESS_AFTER", "soon")
    result = run("-q")
    assert result.exit_code == 0, result.stderr


def _deckbuild(args: list[str], stderr: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "DECKBUILD_PROGRESS_AFTER": "0"}
    return subprocess.Popen(
        [sys.executable, "-m", "deckbuild", *args], stdout=subprocess.PIPE, stderr=stderr, env=env
    )


def _on_terminal(args: list[str]) -> tuple[int, str, bytes]:
    """Run deckbuild with stderr on a pseudo-terminal; return its status, the terminal's text, stdout."""
    leader, follower = pty.openpty()
    process = _deckbuild(args, follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal's last writer has gone
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.stdout is not None
    out = process.stdout.read()
    return process.wait(), b"".join(chunks).decode("utf-8"), out


@pytest.mark.parametrize(
    "bad, status, stages",
    [(False, 0, ["reading", "rendering", "packaging", "committing"]), (True, 1, ["reading", "rendering"])],
    ids=["good", "failing"],
)
def test_a_real_build_shows_progress_on_a_terminal_and_none_through_a_pipe(
    deck_tree, monkeypatch, bad, status, stages
):
    put(deck_tree, "Deck/003.txt", seed("003"))
    if bad:
        put(deck_tree, "Deck/bad.txt", "Question;Answer;UUID\nQ;A;not-a-uuid\n")
    monkeypatch.chdir(deck_tree.parent)
    piped = _deckbuild(["build", "decks", "-o", "piped"], subprocess.PIPE)
    out, err = piped.communicate()
    assert piped.returncode == status and b"\r" not in err and b"warning:" in err

    code, on_terminal, shown_out = _on_terminal(["build", "decks", "-o", "shown"])
    assert code == status and on_terminal.startswith("\r")
    for stage in stages:
        assert f"\r{stage}: " in on_terminal
    assert ("1 package(s) written" in on_terminal) is not bad
    # The line is wiped before problems are printed, which then read as they do through a pipe.
    wiped = re.search(r"\r +\r", on_terminal)
    assert wiped is not None and "\n" not in on_terminal[: wiped.end()]
    assert on_terminal[wiped.end() :].replace("\r\n", "\n") == err.decode("utf-8")
    assert shown_out == out.replace(b"piped", b"shown")


def test_start_up_counts_from_when_the_process_started_not_from_when_deckbuild_was_imported():
    code = (
        "import time\ntime.sleep(0.3)\nfrom deckbuild.cli import _process_start\n"
        "print(time.perf_counter() - _process_start())"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert 0.3 <= float(out.stdout) < 60  # the sleep came before the import: a lower bound, not a speed


def test_verbose_says_when_rows_edited_in_place_were_patched(deck_tree, monkeypatch):
    rows = [f"Q{i}?;A{i}.;aaaaaaaa-0000-4000-8000-{i:012d}" for i in range(5)]
    source = put(deck_tree, "Plain/cards.txt", "Question;Answer;UUID\n" + "\n".join(rows) + "\n")
    monkeypatch.chdir(deck_tree.parent)
    build = ["build", "decks/Plain", "-v"]
    assert CliRunner().invoke(cli, build).exit_code == 0
    source.write_text(source.read_text("utf-8").replace("A2.", "Two."), "utf-8")
    result = CliRunner().invoke(cli, build)
    assert result.exit_code == 0
    said = _stages(result.stderr)
    # No memo and no lock stage of their own: the edited rows are stamped as they are rendered.
    patched = ["start-up", "fingerprint", "reading", "rendering", "packaging", "committing", "recording"]
    assert list(said) == patched
    assert said["reading"] == "1 card(s) in 1 file(s)"
    assert said["rendering"] == "1 card(s) validated and rendered"
    assert said["packaging"] == "1 package(s) written, 0 unchanged"
    assert result.stderr.endswith("  1 row(s) edited in place: patched into the last package(s)\n")
    assert result.stdout == "wrote dist/Plain.apkg\n5 card(s) read, 5 packaged, 0 skipped, 0 incomplete\n"
