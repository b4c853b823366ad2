"""Helper processes for the cards the memo could not answer: validating and rendering them.

Helpers are forked before the sources are read, and import pydantic, Markdown and Pygments on
another core while this process reads and looks up cards: a rebuild after one edit pays for
none of those imports itself, and a cold build renders on every core. Where fork is missing,
or a helper dies, the work is done in this process instead.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import threading
from collections.abc import Callable
from typing import Any

# How many cards a warm helper gets through while this process imports what it needs.
HEAD_START = 1000
_SIZE = 8


class Helpers:
    """Forked processes that each run `task` over one batch of items, once."""

    def __init__(self, count: int, warm: Callable[[], None], task: Callable[[list[Any]], list[Any]]) -> None:
        self.task = task
        self._helpers: list[tuple[int, int, int]] = []  # pid, pipe to it, pipe from it
        if count < 1 or not hasattr(os, "fork"):
            return
        for _ in range(count):
            down_read, down_write = os.pipe()
            up_read, up_write = os.pipe()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the helper's own side; its results are tested
                os.close(down_write)
                os.close(up_read)
                _serve(down_read, up_write, warm, task)
            os.close(down_read)
            os.close(up_write)
            self._helpers.append((pid, down_write, up_read))

    def __enter__(self) -> Helpers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, items: list[Any]) -> list[Any]:
        """Run the task over `items`, shared among the helpers and this process; keep the order."""
        helpers, self._helpers = self._helpers, []
        if not helpers or not items:
            self._stop(helpers)
            return self.task(items) if items else []
        # This process starts cold, so it takes less: nothing at all for a handful of cards.
        mine = max(0, (len(items) - HEAD_START * len(helpers)) // (len(helpers) + 1))
        rest = items[mine:]
        size = -(-len(rest) // len(helpers))
        batches = [rest[i : i + size] for i in range(0, len(rest), size)]
        senders = []
        for (_, down, _), batch in zip(helpers, batches, strict=False):
            # A helper still importing reads late: sending from a thread keeps this one working.
            sender = threading.Thread(target=_send_quietly, args=(down, batch), daemon=True)
            sender.start()
            senders.append(sender)
        results = self.task(items[:mine])
        for n, batch in enumerate(batches):
            senders[n].join()
            results.extend(self._collect(helpers[n], batch))
        self._stop(helpers)
        return results

    def _collect(self, helper: tuple[int, int, int], batch: list[Any]) -> list[Any]:
        try:
            status, value = _receive(helper[2])
        except (EOFError, OSError, pickle.UnpicklingError):
            status, value = "lost", None
        if status == "ok" and isinstance(value, list) and len(value) == len(batch):
            return value
        return self.task(batch)

    def close(self) -> None:
        """Stop every helper that was not given work."""
        helpers, self._helpers = self._helpers, []
        self._stop(helpers)

    @staticmethod
    def _stop(helpers: list[tuple[int, int, int]]) -> None:
        for pid, down, up in helpers:
            for fd in (down, up):
                with contextlib.suppress(OSError):
                    os.close(fd)
            # A helper that finished has exited; one still importing is not waited for.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def _serve(
    down: int, up: int, warm: Callable[[], None], task: Callable[[list[Any]], list[Any]]
) -> None:  # pragma: no cover - runs in the helper
    try:
        warm()
        batch = _receive(down)
        try:
            reply: tuple[str, Any] = ("ok", task(batch))
        except Exception as exc:
            reply = ("failed", repr(exc))
        _send(up, reply)
    except BaseException:
        pass
    finally:
        os._exit(0)


def _send_quietly(fd: int, value: Any) -> None:
    # A helper that is gone has its batch done here instead.
    with contextlib.suppress(OSError):
        _send(fd, value)


def _send(fd: int, value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(len(data).to_bytes(_SIZE, "big") + data)
    while view:
        view = view[os.write(fd, view) :]


def _receive(fd: int) -> Any:
    size = int.from_bytes(_read(fd, _SIZE), "big")
    return pickle.loads(_read(fd, size))


def _read(fd: int, size: int) -> bytes:
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)
