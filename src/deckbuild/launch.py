"""Start the command line, with a helper already warming up for the commands that render cards.

Importing pydantic, Markdown and Pygments takes a helper a quarter of a second. Forked here,
before click is even imported, it is ready by the time a rebuild knows which cards changed,
instead of that much later; a command that renders nothing stops it as it exits. Only `os`
(and deckbuild.resources, which imports nothing more) is needed for that here: a build that
nothing changed pays for the fork, not for the helper's code.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import sys

from deckbuild.resources import fork_with_pipes, ran_out

# The commands that validate and render cards (and so take on a helper), by their first argument.
RENDERING = frozenset({"build", "check", "preview", "release", "import"})

# signal.SIGKILL wherever there is fork, without importing the signal module at start-up.
_SIGKILL = 9
# The helper forked at start-up, until deckbuild.workers takes it on: its pid; this process's
# ends of its pipes (to it, from it) and of the pipes kept for its twin (to, from); the
# functions it warms up and prepares with ("module:function"); the process that forked it.
spare: tuple[int, tuple[int, int, int, int], str, str, int] | None = None
# Where a command keeps what it made until the process ends, when it runs as the program
# (`entry`); None when the command line runs inside another program (tests call `main`).
_leftovers: list[object] | None = None


def entry() -> None:
    """Run the command line as the program, and end the process at once when it is done."""
    global _leftovers
    _leftovers = []
    try:
        main()
    except SystemExit as done:
        _end(done)
        raise
    _end(SystemExit(0))


def leftovers() -> list[object] | None:
    """Return where a command may leave what it made for the process's end, or None to free it.

    Python's own ending frees every object one at a time, a build's tens of thousands among them
    (a twentieth of a rebuild); `entry` ends the process with os._exit instead, and the
    operating system takes the memory back at once.
    """
    return _leftovers


def _end(done: SystemExit) -> None:
    """End the process now with `done`'s status, once its output is out and its exit handlers ran.

    Nothing is left to close by then: files, the cache and helpers are closed where they were
    used. Returns, for Python's own ending, when there is a message to print or output that
    cannot be written (that ending says so as it always has), and under a profiler or tracer.
    """
    if done.code is not None and not isinstance(done.code, int):
        return
    if sys.getprofile() is not None or sys.gettrace() is not None:
        return  # a profiler, tracer or coverage run wants to see the end, and report after it
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    atexit._run_exitfuncs()
    with contextlib.suppress(OSError, ValueError):  # what an exit handler printed, if anything
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(done.code or 0)


def main() -> None:
    """Run the command line, forking the first helper early when the command renders cards."""
    _standard_streams()
    try:
        if len(sys.argv) > 1 and sys.argv[1] in RENDERING and (os.cpu_count() or 1) > 1:
            prefork("deckbuild.build:_warm", "deckbuild.build:_warm_packaging")
        # Start-up makes only objects that live as long as the process (modules, functions):
        # the collector would trace them over and over for nothing. The command line turns it
        # back on for every command but a build, which holds it off all along anyway (see
        # deckbuild.record) and so is spared the collection it would run when it ends.
        gc.disable()
        from deckbuild.cli import main as run
    except KeyboardInterrupt:
        # Ctrl-C before the command line is there to say it (click says the same later on).
        sys.stderr.write("Aborted!\n")
        sys.exit(1)
    except Exception as exc:
        # Out of file descriptors, the first import or pipe fails: say so, as the command line would.
        if (message := ran_out(exc)) is None:
            raise
        sys.stderr.write(f"error: {message}\n")
        sys.exit(1)
    run()


def _standard_streams() -> None:
    """Give a closed standard input, output or error the null device instead.

    Run with `2>&-`, Python has no sys.stderr and the next file opened takes descriptor 2, so a
    message meant for the terminal could land in a pipe or a package being written.
    """
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        try:
            os.fstat(fd)
        except OSError:
            os.dup2(opened := os.open(os.devnull, os.O_RDWR), fd)
            if opened != fd:
                os.close(opened)
        if getattr(sys, name) is None:
            # As long as the process: the standard stream Python would have made.
            setattr(sys, name, open(fd, mode, encoding="utf-8", errors="replace", closefd=False))  # noqa: SIM115


def prefork(warm: str, later: str) -> None:
    """Fork one helper now, to import what rendering needs while this process starts up.

    `warm` and `later` name functions, imported in the helper, not here. The first
    `workers.Helpers` made with the same two takes it on. It is forked before any folder lock
    is taken, so it never holds one.
    """
    global spare
    if spare is not None or not hasattr(os, "fork"):
        return
    parent = os.getpid()
    try:
        pid, pipes = fork_with_pipes(4)
    except OSError:
        return  # out of file descriptors or processes: the command goes on without an early helper
    down_read, down_write, up_read, up_write, twin_down_read, twin_down_write, twin_up_read, twin_up_write = (
        pipes
    )
    if pid == 0:  # pragma: no cover - the helper's own side; its results are tested
        # Whatever happens here, the helper never returns into the command it was forked from.
        try:
            for fd in (down_write, up_read, twin_down_write, twin_up_read):
                os.close(fd)
            from deckbuild.workers import serve_spare

            serve_spare(down_read, up_write, (twin_down_read, twin_up_write), warm, later, parent)
        finally:
            os._exit(0)
    for fd in (down_read, up_write, twin_down_read, twin_up_write):
        os.close(fd)
    spare = (pid, (down_write, up_read, twin_down_write, twin_up_read), warm, later, parent)
    atexit.register(stop_spare)


def stop_spare() -> None:
    """End the start-up helper if nothing took it on (it waits for a call that will not come)."""
    global spare
    if spare is not None and spare[4] == os.getpid():
        pid, fds = spare[0], spare[1]
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, _SIGKILL)
            os.waitpid(pid, 0)
    spare = None
