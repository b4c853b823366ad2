"""Helper processes: results in order, shared with this process, and never lost with a helper."""

from __future__ import annotations

import contextlib
import marshal
import os
import signal
import subprocess
import sys
import time
from collections import deque
from pathlib import Path
from types import ModuleType

import pytest

from ankihelp import import_package
from conftest import put
from deckbuild import build, launch, workers
from deckbuild.sources import LOCK_NAME
from deckbuild.workers import Helpers

ROWS = (
    "Question;Answer;UUID\n"
    "Q1;A1;11111111-1111-4111-8111-111111111111\n"
    "Q2;A2;22222222-2222-4222-8222-222222222222\n"
)

PARENT = os.getpid()


def square_with_pid(items):
    return [(x * x, os.getpid()) for x in items]


def die_in_a_helper(items):
    if os.getpid() != PARENT:
        os._exit(3)
    return [x + 1 for x in items]


def nothing():
    pass


def warm_until_work_comes():
    """Warm up as a helper does, a step at a time, until work reaches it (or a few seconds pass)."""
    deadline = time.monotonic() + 5
    while not workers.work_waiting() and time.monotonic() < deadline:
        time.sleep(0.001)


@pytest.mark.parametrize("count", [1, 2])
def test_results_come_back_in_order_from_helpers_and_this_process(count, monkeypatch):
    monkeypatch.setattr(workers, "HEAD_START", 10)
    monkeypatch.setattr(workers, "UNIT", 5)
    items = list(range(100))
    with Helpers(count, nothing, square_with_pid) as helpers:
        results = helpers.run(items)
    assert [r for r, _ in results] == [x * x for x in items]
    pids = [pid for _, pid in results]
    assert pids[0] == PARENT, "this process took the first share"
    # Its share in whole units of work: 20 units of 5 items.
    share = 5 * (20 * ((100 - 10 * count) // (count + 1)) // 100)
    assert len(set(pids)) == count + 1 and pids.count(PARENT) == share


def test_a_few_items_go_to_the_warm_helper_only():
    with Helpers(1, nothing, square_with_pid) as helpers:
        results = helpers.run([1, 2, 3])
    assert [r for r, _ in results] == [1, 4, 9] and PARENT not in {pid for _, pid in results}


def test_a_helper_that_dies_has_its_batch_done_here():
    with Helpers(2, nothing, die_in_a_helper) as helpers:
        assert helpers.run(list(range(50))) == list(range(1, 51))


def die_on_37(items):
    if os.getpid() != PARENT and 37 in items:
        os._exit(3)
    return [(x, os.getpid()) for x in items]


def test_a_unit_that_kills_every_helper_it_reaches_is_done_here_without_a_trace(monkeypatch, capfd):
    monkeypatch.setattr(workers, "UNIT", 5)
    with Helpers(2, nothing, die_on_37) as helpers:
        pids = [h.pid for h in helpers._helpers]
        results = helpers.run(list(range(100)))
    assert [x for x, _ in results] == list(range(100))
    assert results[37][1] == PARENT, "the unit that killed its helpers was done here"
    assert not capfd.readouterr().err, "no traceback, no message"
    for pid in pids:  # both reaped: no zombie left
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


GATE = "DECKBUILD_TEST_GATE"


def held_until_the_last(items):
    """Hold one helper until the other has taken the last item: the free one takes the rest."""
    gate = Path(os.environ[GATE])
    if os.getpid() == int(gate.with_suffix(".pid").read_text()):
        while not gate.exists():
            time.sleep(0.01)
    if 19 in items:
        gate.touch()
    return [(x, os.getpid()) for x in items]


def test_a_helper_that_is_held_up_takes_no_more_units_while_another_is_free(monkeypatch, tmp_path):
    monkeypatch.setattr(workers, "UNIT", 1)
    monkeypatch.setenv(GATE, str(tmp_path / "gate"))
    with Helpers(2, nothing, held_until_the_last) as helpers:
        held, free = (h.pid for h in helpers._helpers)
        (tmp_path / "gate.pid").write_text(str(held))
        results = helpers.run(list(range(20)))
    assert [x for x, _ in results] == list(range(20)), "in order, however they came back"
    pids = [pid for _, pid in results]
    assert pids == [held] * workers.IN_FLIGHT + [free] * (20 - workers.IN_FLIGHT)


def slow_length(items):
    time.sleep(0.2)
    return [len(x) for x in items]


def test_idle_work_runs_once_while_this_process_waits_for_its_helpers(monkeypatch):
    monkeypatch.setattr(workers, "UNIT", 1)
    seen: list[object] = []
    with Helpers(1, nothing, slow_length) as helpers:
        units = [["ab"], ["c"], ["def"]]
        for index, value in helpers.stream(units, 3, idle=lambda: seen.append("idle")):
            seen.append((index, value))
    # Before the first answer (a helper takes 0.2 s a unit), never again; the answers unchanged.
    assert seen == ["idle", (0, [2]), (1, [1]), (2, [3])]


def warm_slowly():
    time.sleep(0.3)


def test_idle_work_runs_once_while_this_process_waits_for_a_twin_asked_ahead():
    # A first build's stream begins by taking on the twin it asked for, which waits for the
    # start-up helper to warm up: the idle work is done in that wait, once.
    launch.prefork("test_workers:warm_slowly", "test_workers:nothing")
    seen: list[object] = []
    items = list(range(workers.TWIN_AT + 1))
    units = [items[i : i + workers.UNIT] for i in range(0, len(items), workers.UNIT)]
    with Helpers(1, warm_slowly, square_with_pid, later=nothing) as helpers:
        helpers.expect(len(items))
        idle = lambda: seen.append(f"idle with {len(helpers._helpers)}")  # noqa: E731
        for index, _ in helpers.stream(units, len(items), idle=idle):
            seen.append(index)
        assert len(helpers._helpers) == 2, "the twin was taken on"
    assert seen[0] == "idle with 1", "while the twin was not there yet"
    assert sorted(seen[1:]) == list(range(len(units))), "once, and the answers all there"


def test_a_stream_left_midway_is_closed_without_waiting_for_its_helpers(monkeypatch):
    import threading

    monkeypatch.setattr(workers, "UNIT", 1)
    helpers = Helpers(1, nothing, slow_length)
    pid = helpers._helpers[0].pid
    assert helpers.call(pid_and, 1) == (pid, 1), "it answered a call before"
    # Units bigger than a pipe holds: one is still being written when the first result comes.
    units = [[b"x" * (1 << 20)] for _ in range(4)]
    stream = helpers.stream(units, 4)
    assert next(stream) == (0, [1 << 20])
    closing = threading.Thread(target=helpers.close, daemon=True)
    closing.start()
    closing.join(60)
    assert not closing.is_alive(), "closing waited for an answer that could not come"
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_helpers_given_nothing_are_stopped_and_reaped():
    helpers = Helpers(2, nothing, square_with_pid)
    pids = [helper.pid for helper in helpers._helpers]
    helpers.close()
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def test_helpers_stopped_first_finish_what_they_were_given_and_are_reaped_on_close(tmp_path):
    # A build ends its helpers before its commit and reaps them after it: stopping waits for
    # work already handed over (the memo being stored), and only close waits for the exits.
    helpers = Helpers(2, nothing, square_with_pid)
    pids = [helper.pid for helper in helpers._helpers]
    done = tmp_path / "done"
    helpers.submit(slow_touch, done)
    helpers.stop()
    assert done.exists(), "the submitted call ran to its end first"
    assert _wait_for(lambda: all(_gone(pid) for pid in pids), 30), "every helper ended"
    helpers.close()
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def slow_touch(path):
    time.sleep(0.2)
    path.touch()


def test_without_helpers_everything_is_done_here():
    with Helpers(0, nothing, square_with_pid) as helpers:
        assert helpers.run([2, 3]) == [(4, PARENT), (9, PARENT)]


def pid_and(value):
    return os.getpid(), value


def touch(path):
    path.write_text(str(os.getpid()))


def test_calls_run_in_a_free_helper_and_submitted_work_is_finished_by_close(tmp_path):
    marker = tmp_path / "done"
    with Helpers(1, nothing, square_with_pid) as helpers:
        pid, value = helpers.call(pid_and, "x")
        assert value == "x" and pid != PARENT
        helpers.submit(touch, marker)
        assert not helpers.free, "the helper is busy until its work is read"
        assert helpers.call(pid_and, "y") == (PARENT, "y"), "with no free helper, calls run here"
    assert marker.read_text() == str(pid)


def test_a_question_asked_runs_in_a_free_helper_while_this_process_goes_on_or_here_once_answered():
    with Helpers(1, nothing, square_with_pid) as helpers:
        answer = helpers.ask(pid_and, "x")
        assert not helpers.free, "the helper is busy until its answer is read"
        assert helpers.call(pid_and, "y") == (PARENT, "y")  # meanwhile: this process
        pid, value = answer()
        assert value == "x" and pid != PARENT
        os.kill(pid, signal.SIGKILL)  # a helper lost: the question is answered here
        os.waitpid(pid, 0)
        assert helpers.ask(pid_and, "z")() == (PARENT, "z")
    with Helpers(0, nothing, square_with_pid) as none:
        assert none.ask(pid_and, "w")() == (PARENT, "w")


def test_a_helper_prepares_for_later_once_it_has_answered_and_nothing_waits(tmp_path):
    marker = tmp_path / "later"

    def later():
        # Written whole before it shows: the test may look between the file's creation and its text.
        partial = marker.with_suffix(".partial")
        partial.write_text(str(os.getpid()))
        os.replace(partial, marker)

    with Helpers(1, nothing, square_with_pid, later=later) as helpers:
        ((_, pid),) = helpers.run([1])
        assert _wait_for(marker.exists, 30), "it never prepared"
        assert marker.read_text() == str(pid)


def test_a_helper_told_that_few_cards_will_come_never_prepares_for_later(tmp_path):
    # A rebuild's helper imported genanki after its one card, on a core the build was using.
    marker = tmp_path / "later"

    def later():
        marker.write_text("prepared")

    with Helpers(1, nothing, square_with_pid, later=later) as helpers:
        helpers.expect_few()
        assert [r for r, _ in helpers.run([1])] == [1]
        # The helper prepares before it reads its next call: answered, this one shows whether it did.
        assert [r for r, _ in helpers.call(square_with_pid, [2])] == [4]
        assert not marker.exists()


def with_gate_open(items):
    return [(x, Path(os.environ[GATE]).exists()) for x in items]


def test_a_helper_given_more_units_prepares_only_once_they_are_done(monkeypatch, tmp_path):
    marker = tmp_path / "later"
    monkeypatch.setenv(GATE, str(marker))

    def later():
        marker.write_text("ready")

    monkeypatch.setattr(workers, "UNIT", 1)
    with Helpers(1, nothing, with_gate_open, later=later) as helpers:
        # A unit already waits whenever one is answered: it prepares after the last.
        assert helpers.run([1, 2, 3]) == [(1, False), (2, False), (3, False)]
        assert _wait_for(marker.exists, 30)


def test_work_that_cannot_be_sent_is_done_here_without_waiting():
    def local_only(items):  # a closure: it cannot be pickled for a helper
        return [(x, os.getpid()) for x in items]

    with Helpers(1, nothing, local_only) as helpers:
        assert helpers.run([1, 2]) == [(1, PARENT), (2, PARENT)]
        assert helpers.call(lambda: os.getpid()) == PARENT


# A build stalled once its helpers started, and helpers busy (not reading their pipes), to be killed.
STALLED_BUILD = """
import sys, time
from pathlib import Path
from deckbuild import build, launch, workers
decks, out, pid_file, fallback = sys.argv[1:]
if fallback == "fallback":
    workers.set_death_signal = lambda: False  # as where prctl is missing: the watcher must do
def stalled(paths, report=None, memo=None, helpers=None, progress=None, leftovers=None):
    Path(pid_file).write_text(" ".join(str(h.pid) for h in helpers._helpers))
    time.sleep(600)
build.collect = stalled
build._warm = lambda: time.sleep(600)  # busy helpers, which read no pipe to see it close
build.build([Path(decks)], Path(out), now=1_700_000_000, jobs=3)
"""


def _gone(pid: int) -> bool:
    """Tell whether a process has ended (a zombie nobody reaped yet has ended too)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _kill_and_see_helpers_end(build: subprocess.Popen, helpers: list[int]) -> None:
    """Kill a build with SIGKILL, then check that every helper it had ends too."""
    build.kill()
    build.wait()
    try:
        assert _wait_for(lambda: all(_gone(pid) for pid in helpers), 30), "a helper outlived its build"
    finally:
        for pid in helpers:  # whatever the outcome, leave no process behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
@pytest.mark.parametrize("way", ["death-signal", "fallback"])
def test_helpers_die_with_a_killed_build_and_free_its_lock(way, deck_tree, tmp_path, collection):
    put(deck_tree, "Deck/cards.txt", ROWS)
    put(deck_tree, LOCK_NAME, '{"deckbuild_lock": 1, "notetypes": {}, "notes": {}}')
    pid_file = tmp_path / "helpers"
    stalled = subprocess.Popen(
        [sys.executable, "-c", STALLED_BUILD, str(deck_tree), str(tmp_path / "dist"), str(pid_file), way]
    )
    helpers: list[int] = []
    try:
        assert _wait_for(lambda: pid_file.exists() and pid_file.read_text(), 60), "the build never stalled"
        helpers = [int(pid) for pid in pid_file.read_text().split()]
        assert len(helpers) == 2 and not any(_gone(pid) for pid in helpers)
    finally:
        _kill_and_see_helpers_end(stalled, helpers)
    # The tree's build lock is free again: a new build takes it and finishes.
    result = subprocess.run(
        [sys.executable, "-m", "deckbuild", "build", str(deck_tree), "-o", str(tmp_path / "dist")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert import_package(collection, tmp_path / "dist" / "Deck.apkg").new == 2


def test_a_helper_forked_at_start_up_is_the_one_a_build_takes_on():
    launch.prefork("test_workers:nothing", "test_workers:nothing")
    assert launch.spare is not None
    spare = launch.spare[0]
    with Helpers(1, nothing, square_with_pid, later=nothing) as helpers:
        assert launch.spare is None, "taken on"
        assert [h.pid for h in helpers._helpers] == [spare], "no second helper was forked"
        assert helpers.run([1, 2, 3]) == [(1, spare), (4, spare), (9, spare)]
    with pytest.raises(ChildProcessError):
        os.waitpid(spare, os.WNOHANG)  # stopped and reaped with the others


def test_a_spare_that_warms_up_otherwise_is_left_and_stopped_at_exit():
    launch.prefork("test_workers:nothing", "test_workers:nothing")
    assert launch.spare is not None
    spare = launch.spare[0]
    try:
        with Helpers(1, nothing, square_with_pid) as helpers:  # another `later`: not this spare
            pids = {pid for _, pid in helpers.run([1, 2])}
            assert pids and spare not in pids and PARENT not in pids
        assert launch.spare is not None and not _gone(spare)
    finally:
        launch.stop_spare()
    assert launch.spare is None
    with pytest.raises(ChildProcessError):
        os.waitpid(spare, os.WNOHANG)


# A command that forked a helper at start-up and then needs none: the helper must not outlive it.
UNUSED_SPARE = """
import sys
sys.argv = ["deckbuild", "build", "--help"]
from deckbuild import launch
try:
    launch.main()
except SystemExit:
    pass
print(launch.spare[0])
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_a_helper_forked_at_start_up_ends_with_a_command_that_needs_none():
    result = subprocess.run([sys.executable, "-c", UNUSED_SPARE], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Usage: deckbuild build" in result.stdout
    spare = int(result.stdout.split()[-1])
    assert _wait_for(lambda: _gone(spare), 10), "the spare outlived its command"


@pytest.mark.parametrize("argv", [["--help"], ["ids", "decks"], ["cards", "--json"], []])
def test_commands_that_render_nothing_fork_no_helper_at_start_up(argv, monkeypatch):
    from deckbuild import cli

    monkeypatch.setattr(sys, "argv", ["deckbuild", *argv])
    monkeypatch.setattr(cli, "main", lambda: None)
    launch.main()
    assert launch.spare is None


@pytest.mark.parametrize("command", sorted(__import__("deckbuild.launch").launch.RENDERING))
def test_commands_that_render_cards_fork_their_first_helper_at_start_up(command, monkeypatch):
    from deckbuild import cli

    seen = []
    monkeypatch.setattr(sys, "argv", ["deckbuild", command])
    monkeypatch.setattr(cli, "main", lambda: seen.append(launch.spare))
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    try:
        launch.main()
        spare = seen[0]
        assert spare is not None and spare[4] == os.getpid()
        assert (spare[2], spare[3]) == (workers._name(build._warm), workers._name(build._warm_packaging))
    finally:
        launch.stop_spare()


def test_one_core_forks_no_helper_at_start_up(monkeypatch):
    from deckbuild import cli

    monkeypatch.setattr(sys, "argv", ["deckbuild", "build"])
    monkeypatch.setattr(cli, "main", lambda: None)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    launch.main()
    assert launch.spare is None


@pytest.mark.parametrize("ahead", [False, True], ids=["asked-with-the-batch", "asked-ahead"])
def test_a_big_batch_is_shared_by_the_start_up_helper_and_its_warm_twin(ahead):
    # Asked for ahead (`expect`, as a first build does), the twin is forked while this process goes
    # on, and taken on when the batch comes.
    launch.prefork("test_workers:nothing", "test_workers:nothing")
    assert launch.spare is not None
    spare = launch.spare[0]
    items = list(range(workers.TWIN_AT + 1))
    with Helpers(1, nothing, square_with_pid, later=nothing) as helpers:
        if ahead:
            helpers.expect(len(items))
            assert len(helpers._helpers) == 1 and helpers._twinning is not None
        results = helpers.run(items)
        pids = [pid for _, pid in results]
        twin = next(pid for pid in pids if pid != spare)
        assert [r for r, _ in results] == [x * x for x in items]
        assert pids[0] == spare and twin != PARENT, "the twin took a share"
        assert PARENT not in pids, "this process, cold, took no share"
        assert len(helpers._helpers) == 2 and helpers._twinning is None
        assert helpers.call(pid_and, "x")[0] in (spare, twin), "both take calls afterwards"
    # Ended and reaped, both: the twin too, though the start-up helper forked it (no zombie is
    # left for a first process that never reaps, as in a container).
    if Path("/proc/self/stat").exists():
        assert not Path(f"/proc/{twin}").exists() and not Path(f"/proc/{spare}").exists()


def test_a_twin_asked_for_while_its_helper_warms_up_takes_no_call_its_helper_read_ahead():
    # Warming up, the start-up helper reads ahead the twin's call and any call after it, and then
    # serves them in order: the twin, forked meanwhile, must not serve those calls a second time.
    launch.prefork("test_workers:warm_until_work_comes", "test_workers:nothing")
    assert launch.spare is not None
    spare = launch.spare[0]
    with Helpers(1, warm_until_work_comes, square_with_pid, later=nothing) as helpers:
        helpers.expect(workers.TWIN_AT + 1)
        first = helpers._helpers[0]
        assert first.sender is not None
        first.sender.join()  # the twin's call is written whole: this one comes after it
        workers._write(first.down, workers._frame((pid_and, ("early",))))
        asked, helpers._twinning = helpers._twinning, None
        assert asked is not None and (twin := asked()) is not None
        assert workers._receive(first.up) == ("ok", (spare, "early"))
        one, other = helpers.ask(pid_and, "x"), helpers.ask(pid_and, "y")
        assert {one(), other()} == {(spare, "x"), (twin.pid, "y")}


UNREADABLE_CALL_WHILE_WARMING_UP = """
import os, sys
sys.path.insert(0, sys.argv[1])
from deckbuild import launch, workers
from test_workers import nothing, square_with_pid, warm_until_work_comes
launch.prefork("test_workers:warm_until_work_comes", "test_workers:nothing")
helpers = workers.Helpers(1, warm_until_work_comes, square_with_pid, later=nothing)
first = helpers._helpers[0]
workers._write(first.down, (7).to_bytes(workers._SIZE, "big") + b"garbage")  # no pickle
results = helpers.run(list(range(10)))
assert [r for r, _ in results] == [x * x for x in range(10)], results
print({pid for _, pid in results} == {os.getpid()})
helpers.close()
"""


def test_a_call_a_warming_helper_cannot_read_ends_it_and_the_work_is_done_here():
    # Read ahead while warming up, it must end the helper as reading it in the serving loop
    # does: the process that sent it then never waits for an answer that cannot come.
    tests = str(Path(__file__).parent)
    done = subprocess.run(
        [sys.executable, "-c", UNREADABLE_CALL_WHILE_WARMING_UP, tests],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert done.stdout.split() == ["True"]


def test_a_twin_asked_for_a_batch_that_never_comes_is_ended_with_the_others():
    launch.prefork("test_workers:nothing", "test_workers:nothing")
    helpers = Helpers(1, nothing, square_with_pid, later=nothing)
    helpers.expect(workers.TWIN_AT + 1)
    helpers.stop()
    ending = list(helpers._ending)
    helpers.close()
    assert len(ending) == 2, "the start-up helper and the twin it forked"
    if Path("/proc/self/stat").exists():
        assert not any(Path(f"/proc/{pid}").exists() for pid in ending), "both ended and reaped"
    alone = Helpers(0, nothing, square_with_pid)
    alone.expect(workers.TWIN_AT + 1)  # no start-up helper to fork one
    assert alone._twinning is not None and alone._twinning() is None


def warm_until_told_few(marker):
    """Warm up until told that only a few cards will come (or a few seconds pass); say which."""

    def warm():
        deadline = time.monotonic() + 5
        while not workers.few_expected() and time.monotonic() < deadline:
            time.sleep(0.001)
        Path(marker).write_text(str(workers.few_expected()))

    return warm


def test_a_helper_warming_up_is_told_that_only_a_few_cards_will_come(tmp_path):
    marker = tmp_path / "few"
    with Helpers(1, warm_until_told_few(marker), square_with_pid) as helpers:
        helpers.expect_few()
        helpers.expect_few()  # said once
        # No answer comes for it, and it is no call: the next call's answer is its own.
        assert [r for r, _ in helpers.call(square_with_pid, [3])] == [9]
        assert helpers.call(workers.few_expected) is True
        streamed = sorted((i, [r for r, _ in unit]) for i, unit in helpers.stream([[2], [4]], 2))
        assert streamed == [(0, [4]), (1, [16])]
    assert marker.read_text() == "True"
    assert workers.few_expected() is False  # outside a helper
    # A helper done warming up takes no notice of it.
    with Helpers(1, nothing, square_with_pid) as helpers:
        assert [r for r, _ in helpers.call(square_with_pid, [2])] == [4]
        helpers.expect_few()
        assert [r for r, _ in helpers.call(square_with_pid, [5])] == [25]


def _warming_steps(monkeypatch: pytest.MonkeyPatch) -> tuple[ModuleType, list[str]]:
    """Have each step of a helper's warming up say its name in the list returned, and do nothing."""
    from deckbuild import build as build_module

    steps: list[str] = []
    monkeypatch.setattr(build_module, "_validate_row", lambda *args: steps.append("validate"))
    for name in ("_rendering", "_rendering_markdown", "_practice"):
        monkeypatch.setattr(build_module, name, lambda name=name: steps.append(name))
    monkeypatch.setattr(workers, "_early", deque())
    monkeypatch.setattr(workers, "_few", False)
    return build_module, steps


def test_a_helper_told_that_a_few_cards_will_come_warms_up_what_any_card_needs_and_stops(monkeypatch):
    # Markdown's import (15-25 ms) came before a rebuild's edited card, which seldom needs it.
    build_module, steps = _warming_steps(monkeypatch)
    read, write = os.pipe()
    try:
        monkeypatch.setattr(workers, "_calls", read)
        build_module._warm()
        assert steps == ["validate", "_rendering", "_rendering_markdown", "_practice"]
        steps.clear()
        os.write(write, workers._frame((workers._few_coming, ())))
        build_module._warm()
        assert steps == ["validate", "_rendering"]
        # The word is no call to serve, and no work that would stop warming up.
        assert not workers._early and not workers.work_waiting() and workers.few_expected()
    finally:
        os.close(read)
        os.close(write)


def test_only_a_rebuild_tells_its_helpers_that_few_cards_will_come(deck_tree, tmp_path, monkeypatch):
    from synth import write_deck

    told: list[int] = []
    real = Helpers.expect_few
    monkeypatch.setattr(Helpers, "expect_few", lambda self: (told.append(len(told)), real(self))[1])
    monkeypatch.setenv("DECKBUILD_CACHE_DIR", str(tmp_path / "cache"))
    source = write_deck(deck_tree / "Deck" / "cards.txt", 40)
    build.build([deck_tree], tmp_path / "out", now=1_700_000_000, jobs=2)
    assert told == []
    source.write_text(source.read_text("utf-8").replace("step 3 of", "step three of"), "utf-8")
    # Into another folder: a rebuild into the same one would patch its package (deckbuild.patch).
    again = build.build([deck_tree], tmp_path / "out2", now=1_700_000_100, jobs=2)
    assert told and again.report.counts["rendered"] == 1
    # Without a cache there is no memo to hold anything: nothing is said.
    told.clear()
    build.build([deck_tree], tmp_path / "out2", now=1_700_000_200, jobs=2, use_cache=False)
    assert told == []


def test_a_build_expects_a_batch_only_of_files_the_memo_holds_nothing_of(deck_tree, tmp_path, monkeypatch):
    # A first build's cards all go to the helpers; a rebuild's memo answers most of them.
    from synth import write_deck

    expected: list[int] = []
    real = Helpers.expect
    monkeypatch.setattr(Helpers, "expect", lambda self, cards: (expected.append(cards), real(self, cards))[1])
    monkeypatch.setenv("DECKBUILD_CACHE_DIR", str(tmp_path / "cache"))
    source = write_deck(deck_tree / "Deck" / "cards.txt", workers.TWIN_AT + 100)
    first = build.build([deck_tree], tmp_path / "out", now=1_700_000_000, jobs=2)
    source.write_text(source.read_text("utf-8").replace("step 3 of", "step three of"), "utf-8")
    # Into another folder: a rebuild into the same one would patch its package (deckbuild.patch).
    again = build.build([deck_tree], tmp_path / "out2", now=1_700_000_100, jobs=2)
    assert expected == [workers.TWIN_AT + 100, 0]
    assert first.report.counts["rendered"] == workers.TWIN_AT + 100 and again.report.counts["rendered"] == 1


def test_a_small_batch_makes_no_twin():
    launch.prefork("test_workers:nothing", "test_workers:nothing")
    with Helpers(1, nothing, square_with_pid, later=nothing) as helpers:
        assert {pid for _, pid in helpers.run(list(range(workers.TWIN_AT)))} == {helpers._helpers[0].pid}
        assert len(helpers._helpers) == 1


TWINNED_THEN_KILLED = """
import sys, time
sys.path.insert(0, sys.argv[1])
from deckbuild import launch, workers
from test_workers import nothing, square_with_pid
launch.prefork("test_workers:nothing", "test_workers:nothing")
helpers = workers.Helpers(1, nothing, square_with_pid, later=nothing)
pids = {pid for _, pid in helpers.run(list(range(workers.TWIN_AT + 1)))}
print(" ".join(map(str, sorted(pids))), flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_the_twin_dies_with_a_killed_build():
    tests = str(Path(__file__).parent)
    build = subprocess.Popen(
        [sys.executable, "-c", TWINNED_THEN_KILLED, tests], stdout=subprocess.PIPE, text=True
    )
    pids: list[int] = []
    try:
        assert build.stdout is not None
        pids = [int(pid) for pid in build.stdout.readline().split()]
        assert len(pids) == 2 and not any(_gone(pid) for pid in pids)
    finally:
        _kill_and_see_helpers_end(build, pids)


def test_a_cold_build_through_the_entry_point_gives_the_bytes_of_one_process(
    deck_tree, tmp_path, monkeypatch
):
    """The start-up helper and its twin render a batch big enough for both: same bytes as no helper."""
    from synth import write_deck

    write_deck(deck_tree / "Deck" / "cards.txt", workers.TWIN_AT + 100)
    build.build([deck_tree], tmp_path / "first", now=1_700_000_000)  # the lock: mod times from here on
    alone = build.build([deck_tree], tmp_path / "alone", now=1_700_000_100, use_cache=False, jobs=1)
    env = {**os.environ, "DECKBUILD_CACHE_DIR": str(tmp_path / "empty-cache")}
    result = subprocess.run(
        [sys.executable, "-m", "deckbuild", "build", str(deck_tree), "-o", str(tmp_path / "helped")],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "helped" / "Deck.apkg").read_bytes() == alone.packages[0].read_bytes()
    # The memo entries the helpers made answer the next build, every card of it, with the same bytes.
    monkeypatch.setenv("DECKBUILD_CACHE_DIR", env["DECKBUILD_CACHE_DIR"])
    again = build.build([deck_tree], tmp_path / "again", now=1_700_000_200)
    counts = again.report.counts
    assert counts.get("rendered", 0) == 0 and counts["packaged"] == workers.TWIN_AT + 100
    assert again.packages[0].read_bytes() == alone.packages[0].read_bytes()


# A build that nothing changed, through the entry point: the helper forked for it costs a fork.
REPLAYED = """
import sys
decks, out = sys.argv[1:]
sys.argv = ["deckbuild", "build", decks, "-o", out, "-q"]
from deckbuild import launch
try:
    launch.main()
except SystemExit:
    pass
print(sorted(m for m in ("deckbuild.workers", "pickle", "signal") if m in sys.modules))
"""


def test_a_build_answered_from_its_record_loads_no_helper_code(deck_tree, tmp_path):
    put(deck_tree, "Deck/cards.txt", ROWS)
    env = {**os.environ, "DECKBUILD_CACHE_DIR": str(tmp_path / "cache")}
    command = [sys.executable, "-c", REPLAYED, str(deck_tree), str(tmp_path / "dist")]
    for _ in range(2):  # the first builds and keeps its record; the second is answered from it
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
        assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[-2] == "[]"


# A start-up helper whose warming up fails: it must end quietly, never run on in the command.
BROKEN_SPARE = """
import sys
sys.path.insert(0, sys.argv[1])
from deckbuild import launch, workers
from test_workers import square_with_pid
launch.prefork("no_such_module:warm", "test_workers:nothing")
print("once", flush=True)
def broken():
    pass
broken.__module__, broken.__qualname__ = "no_such_module", "warm"
with workers.Helpers(1, broken, square_with_pid, later=__import__("test_workers").nothing) as helpers:
    print(sorted({value for value, _ in helpers.run([1, 2, 3])}), flush=True)
"""


def test_a_start_up_helper_that_cannot_warm_up_ends_quietly_and_its_work_is_done_here():
    tests = str(Path(__file__).parent)
    result = subprocess.run(
        [sys.executable, "-c", BROKEN_SPARE, tests], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["once", "[1, 4, 9]"], "the helper ran on in the command"
    assert result.stderr == "", "no traceback from the helper"


def test_closing_after_an_interrupt_between_making_and_starting_a_send_raises_nothing():
    import threading

    with Helpers(1, nothing, square_with_pid) as helpers:
        helper = helpers._helpers[0]
        # As Ctrl-C leaves it when it lands between creating the sending thread and starting it.
        helper.busy, helper.sender = True, threading.Thread(target=lambda: None)
    assert helper.pid and _wait_for(lambda: _gone(helper.pid), 10)


def test_ctrl_c_while_the_command_line_starts_is_aborted_not_a_traceback(monkeypatch, capsys):
    def interrupted(warm, later):
        raise KeyboardInterrupt

    monkeypatch.setattr(sys, "argv", ["deckbuild", "build"])
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(launch, "prefork", interrupted)
    with pytest.raises(SystemExit) as exit_:
        launch.main()
    assert exit_.value.code == 1 and capsys.readouterr().err == "Aborted!\n"


class Text(str):
    """Text that marshal cannot keep as it is (a subclass of str)."""


def test_cards_marshal_cannot_pack_are_pickled_and_settle_alike(tmp_path):
    from deckbuild.build import Pending, _settle_unit, _units
    from deckbuild.readers import RawCard
    from deckbuild.sources import SourceFile

    source = SourceFile(tmp_path / "Deck" / "cards.txt", tmp_path, "Deck", "Deck")
    data = {"question": "Q", "answer": "A \\(x^2\\)", "id": "11111111-1111-4111-8111-111111111111"}
    plain = [Pending(source, RawCard(3, "basic", dict(data)), "sig")]
    odd = [Pending(source, RawCard(3, "basic", {k: Text(v) for k, v in data.items()}), "sig")]
    (packed,), _ = _units(plain, True)
    (pickled,), _ = _units(odd, True)
    assert isinstance(packed[1], bytes) and isinstance(pickled[1], list)
    assert _settle_unit(packed) == _settle_unit(pickled)


def test_units_hold_at_most_unit_cards_of_one_file_each_in_order(tmp_path, monkeypatch):
    from deckbuild.build import Pending, _units
    from deckbuild.readers import RawCard
    from deckbuild.sources import SourceFile

    monkeypatch.setattr(workers, "UNIT", 3)
    one, other = (SourceFile(tmp_path / "Deck" / n, tmp_path, "Deck", "Deck") for n in ("a.txt", "b.txt"))
    pending = [Pending(one, RawCard(n, "basic", {"question": str(n)}), str(n)) for n in range(5)]
    pending += [Pending(other, RawCard(n, "basic", {"question": str(n)}), str(n)) for n in range(5, 7)]
    units, starts = _units(pending, False)
    assert starts == [0, 3, 5, 7]
    assert [unit[0] for unit in units] == [one, one, other]
    assert [[row[0] for row in marshal.loads(unit[1])] for unit in units] == [[0, 1, 2], [3, 4], [5, 6]]


FIRST_CARDS_AFTER_WARMING_UP = """
import marshal, random, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from synth import row
from deckbuild import build
from deckbuild.sources import SourceFile

build._warm()
before = set(sys.modules)
root = Path(sys.argv[2])
rows = []
for n in range(24):
    question, answer, uuid = row(n, random.Random(n)).rstrip("\\n").split(";")
    rows.append((n + 2, "basic", {"id": uuid, "question": question, "answer": answer}, ""))
settled = marshal.loads(build._settle_unit((SourceFile(root / "a.txt", root, "A", "A"), rows, False)))
assert all(not isinstance(card, str) for card in settled), settled
print(" ".join(sorted(set(sys.modules) - before)))
"""


WARMING_UP_WITH_WORK_WAITING = """
import marshal, random, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from synth import row
from deckbuild import build, workers
from deckbuild.sources import SourceFile

workers.work_waiting = lambda: True
build._warm()
warmed = "markdown" in sys.modules
root = Path(sys.argv[2])
rows = []
for n in range(8):
    question, answer, uuid = row(n, random.Random(n)).rstrip("\\n").split(";")
    rows.append((n + 2, "basic", {"id": uuid, "question": question, "answer": answer}, ""))
source = SourceFile(root / "a.txt", root, "A", "A")
settled = marshal.loads(build._settle_unit((source, rows, False)))
assert all(not isinstance(card, str) for card in settled), settled
plain = "markdown" in sys.modules
packaging = "deckbuild.package" in sys.modules
bold = [(20, "basic", {"id": build._SAMPLE["id"], "question": "Q?", "answer": "A **bold** word"}, "")]
(card,) = marshal.loads(build._settle_unit((source, bold, False)))
print(warmed, plain, packaging, "<strong>bold</strong>" in str(card[4]))
"""


def _printed_by_a_fresh_process(script: str, tmp_path: Path) -> list[str]:
    """Run `script` in an interpreter of its own (given the tests' folder, `tmp_path`); return its words."""
    tests = str(Path(__file__).parent)
    done = subprocess.run(
        [sys.executable, "-c", script, tests, str(tmp_path)], capture_output=True, text=True, check=True
    )
    return done.stdout.split()


def test_warming_up_stops_once_work_waits_and_markdown_comes_when_a_card_needs_it(tmp_path):
    # A rebuild's one edited card waited for Markdown's import, which it seldom needs, and for
    # the package module's, which rendering a card never needs.
    printed = _printed_by_a_fresh_process(WARMING_UP_WITH_WORK_WAITING, tmp_path)
    assert printed == ["False", "False", "False", "True"]


def test_warming_up_settles_a_valid_sample_card():
    (settled,) = marshal.loads(build._practice())
    assert not isinstance(settled, str), settled
    assert settled[0] == build._SAMPLE["id"]


def test_cards_settled_after_warming_up_import_nothing_more(tmp_path):
    # A rebuild after one edit waits for its helper's first card: every import it would still
    # need (Markdown's, nh3, the package module) is paid for while warming up instead.
    assert _printed_by_a_fresh_process(FIRST_CARDS_AFTER_WARMING_UP, tmp_path) == []


def touch_then_square(job):
    marker, items = job
    Path(marker).touch()
    return [x * x for x in items]


def test_work_meanwhile_runs_once_while_the_helper_already_has_its_unit(tmp_path):
    # A rebuild decodes the cards it took from the memo while its helper renders the edited one.
    marker = tmp_path / "started"
    seen = []

    def meanwhile():
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        seen.append(marker.exists())

    with Helpers(1, nothing, touch_then_square) as helpers:
        stream = helpers.stream([(str(marker), [1, 2, 3])], 3, meanwhile=meanwhile)
        assert seen == []
        assert list(stream) == [(0, [1, 4, 9])]
    assert seen == [True], "the helper had its unit before this process went on"


def test_work_meanwhile_runs_once_without_helpers_or_units():
    seen = []
    with Helpers(0, nothing, square_with_pid) as helpers:
        assert list(helpers.stream([[2]], 1, meanwhile=lambda: seen.append(1))) == [(0, [(4, PARENT)])]
    with Helpers(1, nothing, square_with_pid) as helpers:
        assert list(helpers.stream([], 0, meanwhile=lambda: seen.append(2))) == []
    assert seen == [1, 2]


def test_a_helper_warms_up_without_the_cycle_collector_then_has_it_as_it_was(tmp_path):
    import gc

    from deckbuild.record import no_cycle_collection

    during = tmp_path / "during"

    def warm():
        during.write_text(str(gc.isenabled()))

    assert gc.isenabled()
    with Helpers(1, warm, square_with_pid) as helpers:
        after = helpers.call(gc.isenabled)
    assert (during.read_text(), after) == ("False", True)
    # Forked while a build holds the collector off, it stays off there too.
    with no_cycle_collection(), Helpers(1, warm, square_with_pid) as helpers:
        assert helpers.call(gc.isenabled) is False


def test_a_helper_warming_up_skips_its_sample_card_when_work_has_come_already(monkeypatch):
    # The sample card only pays first calls ahead of the work: work already waiting pays them itself.
    from deckbuild import build as build_module

    practiced: list[bool] = []
    monkeypatch.setattr(build_module, "_practice", lambda: practiced.append(True))
    monkeypatch.setattr(workers, "_early", deque())
    assert not workers.work_waiting()  # outside a helper, nothing ever waits
    read, write = os.pipe()
    try:
        monkeypatch.setattr(workers, "_calls", read)
        build_module._warm()
        assert practiced == [True] and not workers.work_waiting()
        os.write(write, workers._frame((pid_and, ("x",))))
        assert workers.work_waiting()
        build_module._warm()
        assert practiced == [True], "work was waiting: no sample card"
        assert [func for func, _ in workers._early] == [pid_and]
    finally:
        os.close(read)
        os.close(write)


def test_a_helper_asked_for_its_twin_stops_warming_before_markdown(monkeypatch):
    # A first build asks for the twin ahead of its many cards: the twin is forked at once, not
    # after Markdown's import (15-25 ms), which each of the two makes when a card needs it.
    build_module, steps = _warming_steps(monkeypatch)
    assert not workers.twin_asked()  # outside a helper, nobody asks
    read, write = os.pipe()
    try:
        monkeypatch.setattr(workers, "_calls", read)
        os.write(write, workers._frame((workers._twin, ())))
        build_module._warm()
        assert steps == ["validate", "_rendering"]
        # The request is no work that stops warming before the renderers, and is served first.
        assert not workers.work_waiting() and workers.twin_asked()
        os.write(write, workers._frame((pid_and, ("x",))))
        assert workers.work_waiting()
        # Both calls read while warming up are served first, in the order they came.
        assert [func for func, _ in workers._early] == [workers._twin, pid_and]
    finally:
        os.close(read)
        os.close(write)
