"""Helper processes: results in order, shared with this process, and never lost with a helper."""

from __future__ import annotations

import os

import pytest

from deckbuild import workers
from deckbuild.workers import Helpers

PARENT = os.getpid()


def square_with_pid(items):
    return [(x * x, os.getpid()) for x in items]


def die_in_a_helper(items):
    if os.getpid() != PARENT:
        os._exit(3)
    return [x + 1 for x in items]


def nothing():
    pass


@pytest.mark.parametrize("count", [1, 2])
def test_results_come_back_in_order_from_helpers_and_this_process(count, monkeypatch):
    monkeypatch.setattr(workers, "HEAD_START", 10)
    items = list(range(100))
    with Helpers(count, nothing, square_with_pid) as helpers:
        results = helpers.run(items)
    assert [r for r, _ in results] == [x * x for x in items]
    pids = [pid for _, pid in results]
    assert pids[0] == PARENT, "this process took the first share"
    assert len(set(pids)) == count + 1 and pids.count(PARENT) == (100 - 10 * count) // (count + 1)


def test_a_few_items_go_to_the_warm_helper_only():
    with Helpers(1, nothing, square_with_pid) as helpers:
        results = helpers.run([1, 2, 3])
    assert [r for r, _ in results] == [1, 4, 9] and PARENT not in {pid for _, pid in results}


def test_a_helper_that_dies_has_its_batch_done_here():
    with Helpers(2, nothing, die_in_a_helper) as helpers:
        assert helpers.run(list(range(50))) == list(range(1, 51))


def test_helpers_given_nothing_are_stopped_and_reaped():
    helpers = Helpers(2, nothing, square_with_pid)
    pids = [helper.pid for helper in helpers._helpers]
    helpers.close()
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


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


def test_a_helper_prepares_for_later_once_it_has_answered(tmp_path):
    marker = tmp_path / "later"

    def later():
        marker.write_text("ready")

    with Helpers(1, nothing, square_with_pid, later=later) as helpers:
        helpers.run([1, 2])
        assert helpers.call(marker.read_text) == "ready"


def test_work_that_cannot_be_sent_is_done_here_without_waiting():
    def local_only(items):  # a closure: it cannot be pickled for a helper
        return [(x, os.getpid()) for x in items]

    with Helpers(1, nothing, local_only) as helpers:
        assert helpers.run([1, 2]) == [(1, PARENT), (2, PARENT)]
        assert helpers.call(lambda: os.getpid()) == PARENT
