"""Helper processes for the cards the memo could not answer, and other work off the main path.

Helpers are forked before the sources are read, and import pydantic, Markdown and Pygments on
another core while this process reads and looks up cards: a rebuild after one edit pays for
none of those imports itself, and a cold build renders on every core. Cards reach them in
units, a few at a time, the next as each is answered (`Helpers.stream`). Once a helper has
answered a call, or has no unit left, it prepares for what comes later (`later`) unless told
that only a few cards will come, and takes calls until it is closed. Where fork is missing, or
a helper dies, the work is done in this process instead.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import pickle
import select
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from deckbuild.resources import fork_with_pipes

# How many cards a warm helper gets through while this process imports what it needs.
HEAD_START = 700
# Cards in one unit of work handed to a helper, and how many units a helper holds at a time:
# enough that it never waits for the next, few enough that the faster helper takes the rest.
# (250 left one helper rendering a few milliseconds alone at the end of a cold build.)
UNIT = 150
IN_FLIGHT = 2
_SIZE = 8
# How often a helper looks whether the process that forked it is still there.
WATCH_SECONDS = 0.2
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_PR_SET_CHILD_SUBREAPER = 36


@dataclass
class _Helper:
    pid: int
    down: int  # the pipe to it
    up: int  # the pipe from it
    busy: bool = False  # a call whose answer has not been read
    sent: bool = False  # that call reached it whole
    alive: bool = True
    sender: threading.Thread | None = field(default=None, repr=False)
    # This process's ends of the pipes kept for the helper's twin (see `_twin`), until it is made.
    reserve: tuple[int, int] | None = None
    # Where the answer of a call given with `submit` goes, once it is read.
    submitted: list[Any] | None = field(default=None, repr=False)

    def fds(self) -> tuple[int, ...]:
        return (self.down, self.up, *(self.reserve or ()))


# In the helper forked at start-up (deckbuild.launch): its own pipe ends, and the pipe ends kept
# for its twin.
_own: tuple[int, int] = (-1, -1)
_reserve: tuple[int, int] | None = None
# In any helper: the pipe its calls come down, while it serves them (see `work_waiting`), and
# the calls read from it while warming up, served first.
_calls = -1
_early: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
# In any helper: told that only a few cards will come (`Helpers.expect_few`).
_few = False
# A batch this big gets the start-up helper's twin (an already warm copy of it), and this
# process, which has not imported the renderers, takes no share of it.
TWIN_AT = HEAD_START


def _name(func: Callable[..., Any]) -> str:
    return f"{func.__module__}:{func.__qualname__}"


def _resolve(name: str) -> Callable[[], None]:
    module, _, attr = name.partition(":")
    func: Callable[[], None] = getattr(importlib.import_module(module), attr)
    return func


def serve_spare(
    down: int, up: int, reserve: tuple[int, int], warm: str, later: str, parent: int
) -> None:  # pragma: no cover - runs in the helper forked at start-up; its results are tested
    """Be the helper forked at start-up: warm up, then serve calls, keeping pipes for a twin."""
    global _own, _reserve
    _own, _reserve = (down, up), reserve

    def warm_up() -> None:
        _resolve(warm)()
        # Only after warming up: asking Linux costs ctypes (2-3 ms), which would hold up an edited
        # card. Forked before any folder lock is taken, a helper that outlives its build meanwhile
        # holds none, and it ends here or at its pipe's end.
        _die_with(parent)

    _serve(down, up, warm_up, lambda: _resolve(later)())


def _twin() -> int:
    """Fork a copy of this helper, already warm, to serve the pipes kept for it; return its pid.

    Runs in the start-up helper, asked by the process that forked it, which talks to the copy as
    to any helper. The copy ends when this helper ends.
    """
    global _reserve
    if _reserve is None:
        raise RuntimeError("no pipes kept for a twin")
    (down, up), _reserve = _reserve, None
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the twin's own side; its results are tested
        try:  # never back into the helper's loop it was copied from
            for fd in _own:
                os.close(fd)
            _early.clear()  # calls the helper it was copied from read ahead are that helper's
            _die_with(parent)
            # Warm already; the helper it was copied from alone prepares for later (imports genanki).
            _serve(down, up, lambda: None, lambda: None)
        finally:
            os._exit(0)
    os.close(down)
    os.close(up)
    return pid


def _adopt(warm: Callable[[], None], later: Callable[[], None]) -> _Helper | None:
    """Take the helper forked at start-up, if it warms up as asked and belongs to this process."""
    launch = sys.modules.get("deckbuild.launch")
    spare = getattr(launch, "spare", None)
    if spare is None:
        return None
    pid, (down, up, twin_down, twin_up), warm_name, later_name, parent = spare
    if parent != os.getpid() or (warm_name, later_name) != (_name(warm), _name(later)):
        return None
    launch.spare = None  # type: ignore[union-attr]
    return _Helper(pid, down, up, reserve=(twin_down, twin_up))


def _spare_fds() -> tuple[int, ...]:
    """Return this process's pipe ends of a start-up helper nothing took on yet."""
    spare = getattr(sys.modules.get("deckbuild.launch"), "spare", None)
    return spare[1] if spare is not None else ()


def _fork(warm: Callable[[], None], later: Callable[[], None], others: list[_Helper]) -> _Helper:
    """Fork a helper that warms up, then serves calls; `others` are helpers whose pipe ends it closes."""
    parent = os.getpid()
    pid, pipes = fork_with_pipes(2)
    down_read, down_write, up_read, up_write = pipes
    if pid == 0:  # pragma: no cover - the helper's own side; its results are tested
        try:  # never back into the build it was forked from
            # Only this helper's own ends stay open, so that its pipe ends with this process.
            for fd in (down_write, up_read, *_spare_fds(), *(f for h in others for f in h.fds())):
                os.close(fd)
            _die_with(parent)
            _serve(down_read, up_write, warm, later)
        finally:
            os._exit(0)
    os.close(down_read)
    os.close(up_write)
    return _Helper(pid, down_write, up_read)


def _stop(helper: _Helper, reap: bool = True) -> None:
    """Close a helper's pipes and end it (an idle one waits for a call that will not come).

    Unless `reap`, it is not waited for: its exit (tens of MB to let go of) goes on meanwhile.
    """
    for fd in helper.fds():
        with contextlib.suppress(OSError):
            os.close(fd)
    with contextlib.suppress(ProcessLookupError):
        os.kill(helper.pid, signal.SIGKILL)
    if reap:
        _reap(helper.pid)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


class Helpers:
    """Forked processes that run `task` over shares of a batch, and then take single calls."""

    def __init__(
        self,
        count: int,
        warm: Callable[[], None],
        task: Callable[[Any], Any],
        later: Callable[[], None] = lambda: None,
    ) -> None:
        self.task = task
        self._helpers: list[_Helper] = []
        self._ending: list[int] = []  # stopped, not reaped yet
        # The twin asked for ahead of its batch (`expect`): what takes it on once it is there.
        self._twinning: Callable[..., _Helper | None] | None = None
        self._few_told = False
        if count < 1 or not hasattr(os, "fork"):
            return
        if (spare := _adopt(warm, later)) is not None:
            self._helpers.append(spare)
        while len(self._helpers) < count:
            try:
                self._helpers.append(_fork(warm, later, self._helpers))
            except OSError:
                break  # out of file descriptors or processes: fewer helpers, the rest done here

    def __enter__(self) -> Helpers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, items: list[Any]) -> list[Any]:
        """Run the task over `items`, shared among the helpers and this process; keep the order."""
        units = [items[i : i + UNIT] for i in range(0, len(items), UNIT)]
        results: list[Any] = [None] * len(units)
        for index, value in self.stream(units, len(items)):
            results[index] = value
        return [x for value in results for x in value]

    def stream(
        self,
        units: list[Any],
        cards: int,
        meanwhile: Callable[[], None] = lambda: None,
        idle: Callable[[], None] | None = None,
    ) -> Iterator[tuple[int, Any]]:
        """Run the task on each unit of work; yield its index and result as each one is done.

        `cards` is how much work the units hold in all. A helper holds IN_FLIGHT units at a
        time and is given the next as it answers, so that one slowed down (by another process
        on its core) takes fewer, and this process can use each result while the rest are
        rendered. A unit a helper could not answer is done here. `meanwhile` runs here once
        the helpers have their first units, before anything is yielded; `idle` runs here once,
        when this process would first wait for a helper's answer (not at all if it never would).
        """
        # A twin asked for ahead of the batch joins the helpers here (and its maker is free again);
        # while it is not there yet, the idle work is done.
        asked, self._twinning = self._twinning, None
        twin = None
        if asked is not None:
            idled: list[bool] = []

            def wait() -> None:
                if idle is not None:
                    idled.append(True)
                    idle()

            twin = asked(wait)
            idle = None if idled else idle
        helpers = [h for h in self._helpers if h.alive and not h.busy]
        if not helpers or not units:
            meanwhile()
            for index, unit in enumerate(units):
                yield index, self.task(unit)
            return
        if asked is None and cards > TWIN_AT and (twin := self._twin()) is not None:
            helpers.append(twin)
        # This process starts cold, so it takes less: nothing at all for a handful of cards, and
        # nothing when a warm twin takes its share instead.
        mine = 0 if twin else max(0, (cards - HEAD_START * len(helpers)) // (len(helpers) + 1))
        mine = len(units) * mine // cards
        streaming = _Stream(helpers, units, mine, self.task, idle)
        try:
            streaming.start()
            meanwhile()
            for index in range(mine):
                yield index, self.task(units[index])
            yield from streaming.answers()
        finally:
            streaming.finish()
        for index in streaming.lost:
            yield index, self.task(units[index])

    def expect(self, cards: int) -> None:
        """Make ready now for a batch of about this many cards that `stream` will be given later.

        A batch big enough for the start-up helper's warm twin has it forked meanwhile, not
        when the batch comes: the units then go out to both at once.
        """
        if cards > TWIN_AT and self._twinning is None:
            self._twinning = self._ask_twin()

    def expect_few(self) -> None:
        """Tell the helpers that only a few cards will come (a rebuild): see `few_expected`.

        Said once, ahead of the cards, and answered by no word. A helper so told warms up only
        what any card needs, and never prepares for later (`later`): a rebuild's empty
        collection is almost always in the cache, and genanki's import would only take a core
        from this process meanwhile.
        """
        if self._few_told:
            return
        self._few_told = True
        for helper in self._helpers:
            if helper.alive and not helper.busy:
                with contextlib.suppress(OSError):  # a few bytes into an empty pipe never block
                    _write(helper.down, _frame((_few_coming, ())))

    def _twin(self) -> _Helper | None:
        """Have the start-up helper fork its warm twin, and take the twin on; None if it cannot."""
        return self._ask_twin()()

    def _ask_twin(self) -> Callable[..., _Helper | None]:
        """Ask the start-up helper to fork its warm twin; return what takes the twin on (None if none).

        That takes a function to run first when the twin is not there yet (this process would wait).
        """
        helper = next((h for h in self._helpers if h.reserve and h.alive and not h.busy), None)
        if helper is None or helper.reserve is None:
            return lambda meanwhile=None: None
        reserve, helper.reserve = helper.reserve, None
        _become_subreaper()  # where there is no prctl, init reaps the twin
        self._send(helper, _twin, ())

        def take(meanwhile: Callable[[], None] | None = None) -> _Helper | None:
            if meanwhile is not None and not _ready(helper.up):
                meanwhile()
            pid = self._answer(helper)
            if not isinstance(pid, int):
                for fd in reserve:
                    os.close(fd)
                return None
            twin = _Helper(pid, *reserve)
            self._helpers.append(twin)
            return twin

        return take

    @property
    def free(self) -> bool:
        """Tell whether a helper is there to take a call."""
        return any(h.alive and not h.busy for h in self._helpers)

    def call(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run `func(*args)` in a free helper, or here; return what it returns."""
        return self.ask(func, *args)()

    def ask(self, func: Callable[..., Any], *args: Any) -> Callable[[], Any]:
        """Start `func(*args)` in a free helper; return what waits for what it returns.

        Without a free helper, or when the helper is lost, it runs here once asked for.
        """
        helper = next((h for h in self._helpers if h.alive and not h.busy), None)
        if helper is not None:
            self._send(helper, func, args)

        def answer() -> Any:
            if helper is not None:
                value = self._answer(helper)
                if value is not _LOST:
                    return value
            return func(*args)

        return answer

    def submit(self, func: Callable[..., Any], *args: Any) -> Callable[[], Any]:
        """Start `func(*args)` in a free helper without waiting (or run it here); close waits.

        Return what gives its answer once the helpers are closed (None until then, or if lost).
        """
        helper = next((h for h in self._helpers if h.alive and not h.busy), None)
        if helper is not None:
            self._send(helper, func, args)
            if helper.sender is not None:
                answer: list[Any] = []
                helper.submitted = answer
                return lambda: answer[0] if answer else None
            helper.busy = False
        value = func(*args)
        return lambda: value

    def _send(self, helper: _Helper, func: Callable[..., Any], args: tuple[Any, ...]) -> None:
        helper.busy = True
        helper.sent = False
        try:
            parts = _frame_parts((func, args))
        except Exception:  # not picklable: the caller's fallback does the work here
            helper.sender = None
            return

        def send() -> None:
            with contextlib.suppress(OSError):
                for part in parts:
                    _write(helper.down, part)
                helper.sent = True

        # A helper still importing reads late: sending from a thread keeps this one working.
        helper.sender = threading.Thread(target=send, daemon=True)
        helper.sender.start()

    def _answer(self, helper: _Helper) -> Any:
        # Not started when an interrupt came between making the thread and starting it.
        if helper.sender is not None and helper.sender.ident is not None:
            helper.sender.join()
        helper.busy = False
        if not helper.sent:
            # Nothing (or not all of it) reached the helper: never wait for an answer.
            helper.alive = False
            return _LOST
        try:
            status, value = _receive(helper.up)
        except (EOFError, OSError, pickle.UnpicklingError):
            helper.alive = False
            return _LOST
        return value if status == "ok" else _LOST

    def stop(self) -> None:
        """Wait for submitted work, then end every helper without waiting for it to exit."""
        asked, self._twinning = self._twinning, None
        if asked is not None:  # a twin no batch came for: taken on, to be ended with the others
            asked()
        helpers, self._helpers = self._helpers, []
        for helper in helpers:
            if helper.busy and helper.alive:
                value = self._answer(helper)
                if helper.submitted is not None and value is not _LOST:
                    helper.submitted.append(value)
            _stop(helper, reap=False)
            self._ending.append(helper.pid)

    def close(self) -> None:
        """Stop every helper (after its submitted work), and reap them all."""
        self.stop()
        ending, self._ending = self._ending, []
        for pid in ending:
            _reap(pid)


_LOST = object()


def _unit(task: Callable[[Any], Any], unit: Any) -> Any:
    """Run a task on one unit of a stream (a helper prepares for later only once told)."""
    return task(unit)


def _prepare() -> None:  # pragma: no cover - never called: it tells a helper the stream is over
    """Stand for the word that tells a helper to prepare for later; it sends no answer."""


def _few_coming() -> None:  # pragma: no cover - never called: a helper reads it as a flag
    """Stand for the word that tells a helper only a few cards will come; it sends no answer."""


class _Stream:
    """Units of work handed to helpers a few at a time, and their answers read as they come."""

    def __init__(
        self,
        helpers: list[_Helper],
        units: list[Any],
        start: int,
        task: Callable[[Any], Any],
        idle: Callable[[], None] | None = None,
    ) -> None:
        self.units, self.task, self.idle = units, task, idle
        self.queue = deque(range(start, len(units)))
        self.helpers = helpers
        # Per helper (by its pipe from it): the units it was given and has not answered, in order;
        # the bytes still to write to it; what it wrote back so far.
        self.given: dict[int, deque[int]] = {h.up: deque() for h in helpers}
        self.out: dict[int, bytearray] = {h.up: bytearray() for h in helpers}
        self.back: dict[int, bytearray] = {h.up: bytearray() for h in helpers}
        self.lost: list[int] = []
        self.blocking: dict[int, bool] = {}
        self.prepared: list[_Helper] = []

    def start(self) -> None:
        for helper in self.helpers:
            # Written a piece at a time, as the helper reads: a helper still warming up must
            # not hold this process up, nor one that died make it wait.
            self.blocking[helper.down] = os.get_blocking(helper.down)
            os.set_blocking(helper.down, False)
            # Busy with no call of its own: should this stream be left midway (an interrupt while
            # its results are used), closing ends the helper instead of waiting for an answer.
            helper.busy, helper.sent = True, False
            for _ in range(IN_FLIGHT):
                self._give(helper)
            # What the pipe takes now: the helper starts on it while this process goes on.
            if self.out[helper.up]:
                self._write(helper)

    def _give(self, helper: _Helper) -> None:
        if not self.queue:
            return
        index = self.queue.popleft()
        try:
            frame = _frame((_unit, (self.task, self.units[index])))
        except Exception:  # not picklable: done here
            self.lost.append(index)
            return
        self.given[helper.up].append(index)
        self.out[helper.up] += frame

    def _lose(self, helper: _Helper) -> None:
        helper.alive = False
        # Another helper takes its units, or this process at the end.
        self.queue.extendleft(reversed(self.given[helper.up]))
        self.given[helper.up].clear()
        self.out[helper.up].clear()

    def answers(self) -> Iterator[tuple[int, Any]]:
        while True:
            working = [h for h in self.helpers if h.alive and self.given[h.up]]
            if not working:
                break
            writing = [h.down for h in working if self.out[h.up]]
            # Only a look while there is `idle` work: it is done when nothing is ready, not after.
            waiting = [h.up for h in working]
            readable, writable, _ = select.select(waiting, writing, [], None if self.idle is None else 0)
            if self.idle is not None and not readable and not writable:
                idle, self.idle = self.idle, None
                idle()
                continue
            for helper in working:
                if helper.down in writable:
                    self._write(helper)
                if helper.up in readable and helper.alive:
                    yield from self._read(helper)
        self.lost += self.queue
        self.queue.clear()
        for helper in self.helpers:
            self._done(helper)

    def _done(self, helper: _Helper) -> None:
        """Tell a helper with nothing left to do that it may prepare for what comes later."""
        if helper.alive and helper not in self.prepared:
            self.prepared.append(helper)
            with contextlib.suppress(OSError):  # its pipe is empty: the few bytes never block
                _write(helper.down, _frame((_prepare, ())))

    def _write(self, helper: _Helper) -> None:
        out = self.out[helper.up]
        try:
            del out[: os.write(helper.down, out)]
        except BlockingIOError:
            pass
        except OSError:  # it died
            self._lose(helper)

    def _read(self, helper: _Helper) -> Iterator[tuple[int, Any]]:
        back = self.back[helper.up]
        try:
            chunk = os.read(helper.up, 1 << 20)
        except OSError:
            chunk = b""
        if not chunk:
            self._lose(helper)
            return
        back += chunk
        while len(back) >= _SIZE and len(back) >= _SIZE + (size := int.from_bytes(back[:_SIZE], "big")):
            frame = bytes(back[_SIZE : _SIZE + size])
            del back[: _SIZE + size]
            index = self.given[helper.up].popleft()
            try:
                status, value = pickle.loads(frame)
            except (pickle.UnpicklingError, EOFError, ValueError):
                status, value = "failed", None
            self._give(helper)
            if not self.given[helper.up] and not self.queue:
                self._done(helper)  # while the others finish theirs
            if status == "ok":
                yield index, value
            else:
                self.lost.append(index)

    def finish(self) -> None:
        """Leave each helper as calls expect it: idle, blocking pipes; one left mid-unit is lost."""
        for helper in self.helpers:
            if self.given[helper.up] or self.back[helper.up]:
                helper.alive = False  # an answer still coming would be taken for the next call's
            helper.busy = False
            with contextlib.suppress(OSError):
                os.set_blocking(helper.down, self.blocking.get(helper.down, True))


def _die_with(parent: int) -> None:  # pragma: no cover - runs in the helper; tested by killing
    """End this helper when the process that forked it ends, however it ends (even SIGKILL).

    A helper left behind would keep the deck tree's build lock, which it inherited, and
    every later build would wait for it.
    """
    if sys.platform.startswith("linux"):
        set_death_signal()
    if os.getppid() != parent:  # it died before the signal was asked for
        os._exit(0)
    # Everywhere else (and should the signal fail): a helper is handed to another parent.
    threading.Thread(target=_watch, args=(parent,), daemon=True, name="deckbuild-watch").start()


def set_death_signal() -> bool:
    """Ask Linux to SIGKILL this process when its parent ends; tell whether it agreed."""
    return _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _become_subreaper() -> bool:
    """Ask Linux to make this process the parent of its descendants orphaned from now on.

    A twin is the start-up helper's child: stopped after it, it would be left to init to reap,
    and where nothing reaps (a container's first process) every cold build left one behind.
    Adopted here instead, it is reaped with the others.
    """
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def _prctl(option: int, value: int) -> bool:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int) -> None:  # pragma: no cover - runs in the helper
    while os.getppid() == parent:
        time.sleep(WATCH_SECONDS)
    os._exit(0)


def _ready(fd: int) -> bool:
    """Tell whether a pipe has something to read now."""
    try:
        return bool(select.select([fd], [], [], 0)[0])
    except (OSError, ValueError):
        return True  # reading finds out what is wrong at once


def work_waiting() -> bool:
    """Tell whether work has reached this helper and waits for it (False outside a helper).

    A call to fork the twin is not such work: a first build asks for it ahead of its cards, and
    the twin is a copy of this helper as warm as it gets. Calls read here are served first.
    """
    global _few
    if _calls < 0:
        return False
    if any(func is not _twin for func, _ in _early):
        return True
    while _ready(_calls):
        # A pipe or a call that cannot be read ends the helper here, as serving it would: the
        # process that sent it then does that work itself, never waits for an answer.
        call = _receive(_calls)
        if call[0] is _few_coming:
            _few = True
            continue
        _early.append(call)
        if call[0] is not _twin:
            return True
    return False


def few_expected() -> bool:
    """Tell whether this helper was told that only a few cards will come (False outside a helper).

    A rebuild says so as soon as it finds the memo holds its files: warming up need not go on to
    what most cards need but a rebuild's few edited ones seldom do (Markdown, say).
    """
    work_waiting()  # reads that word, if it came meanwhile
    return _few


def twin_asked() -> bool:
    """Tell whether this helper was asked to fork its twin and has not yet (False outside a helper)."""
    work_waiting()  # reads that call, if it came meanwhile
    return any(func is _twin for func, _ in _early)


def _serve(
    down: int, up: int, warm: Callable[[], None], later: Callable[[], None]
) -> None:  # pragma: no cover
    global _calls, _few
    _calls = down
    try:
        # Importing makes objects by the hundred thousand and next to no garbage: the cycle
        # collector, run again and again as they are made, only slowed warming up (by a tenth).
        collecting = gc.isenabled()
        gc.disable()
        warm()
        # What warming up imported lives as long as the helper: the cycle collector need not
        # trace it again and again while cards are rendered (nor copy its pages into a twin).
        gc.freeze()
        if collecting:
            gc.enable()
        answered = False
        while True:
            func, args = _early.popleft() if _early else _receive(down)
            if func is _few_coming:
                _few = True
                continue
            if func is not _prepare:
                try:
                    reply: tuple[str, Any] = ("ok", func(*args))
                except Exception as exc:
                    reply = ("failed", repr(exc))
                _send(up, reply)
            # Once it has answered a call, or a stream of units is over (the next would wait);
            # never for a few cards (a rebuild), which seldom need it and would only share a core
            # with the process that waits for them.
            if not answered and func is not _twin and func is not _unit:
                answered = True
                if not _few:
                    later()
    except BaseException:
        pass
    finally:
        os._exit(0)


def _send(fd: int, value: Any) -> None:
    _write(fd, _frame(value))


def _frame(value: Any) -> bytes:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return len(data).to_bytes(_SIZE, "big") + data


def _frame_parts(value: Any) -> list[bytes | memoryview]:
    """Frame a call for a helper as `_frame` does, but for the buffers `value` wraps in a PickleBuffer.

    Those are written to the pipe as they are, after the rest: a memo of 10,000 cards, 6 MB, was
    copied twice on its way (into the pickle, then into the frame), 5 ms of a first build's end.
    Such a frame's size has `_OUT_OF_BAND` set, with the count of buffers; their sizes follow.
    """
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL, buffer_callback=buffers.append)
    if not buffers:
        return [len(data).to_bytes(_SIZE, "big") + data]
    views = [buffer.raw() for buffer in buffers]
    sizes = [_OUT_OF_BAND | len(views), len(data), *(view.nbytes for view in views)]
    return [b"".join(size.to_bytes(_SIZE, "big") for size in sizes), data, *views]


# Set in a frame's size when buffers follow it out of band (see `_frame_parts`).
_OUT_OF_BAND = 1 << (8 * _SIZE - 1)


def _write(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _receive(fd: int) -> Any:
    size = int.from_bytes(_read(fd, _SIZE), "big")
    if not size & _OUT_OF_BAND:
        return pickle.loads(_read(fd, size))
    sizes = [int.from_bytes(_read(fd, _SIZE), "big") for _ in range(1 + size - _OUT_OF_BAND)]
    data = _read(fd, sizes[0])
    return pickle.loads(data, buffers=[_read(fd, each) for each in sizes[1:]])


def _read(fd: int, size: int) -> bytes:
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)
