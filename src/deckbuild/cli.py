"""The command line: options, one call into the core, and errors turned into messages."""

from __future__ import annotations

import errno
import gc
import json
import math
import os
import sys
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TextIO, TypeVar

import click

from deckbuild import __version__
from deckbuild.errors import BuildFailed, DeckbuildError, Report, printable, printable_json
from deckbuild.progress import STAGES, Progress
from deckbuild.resources import ran_out

DEFAULT_DECKS = Path("decks")
# What writing the output can meet that is no bug of ours: a full disk, a quota, a broken device.
_OUTPUT_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG})
F = TypeVar("F", bound=Callable[..., Any])
# A build shows progress only once it has run this long, so that a quick one never flickers.
PROGRESS_AFTER = 1.0
# Redraw the progress line at most this often, however many files go by.
REDRAW_EVERY = 0.1
# What -v says of each stage whose counts do not say it.
STAGE_LABELS = {
    "start-up": "Python, imports, locks, cache",
    "helpers": "starting the helpers, importing what reading needs",
    "fingerprint": "hashing the inputs, to find an unchanged build",
    "lock": "stamping the cards in the lock",
    "committing": "renaming packages and lock into place",
    "recording": "keeping the build's record, for the next identical build",
}


class ProgressLine(Progress):
    """Time a build's stages, and show its progress on one line of a terminal once it runs long.

    Nothing is drawn unless `stream` is a terminal, `show` is true and `after` seconds have gone
    by since `started`; the line is rewritten in place (carriage return) and wiped by `finish`,
    so that whatever is printed next starts on a clean line.
    """

    def __init__(
        self,
        stream: TextIO,
        clock: Callable[[], float] = time.perf_counter,
        *,
        started: float | None = None,
        after: float = PROGRESS_AFTER,
        show: bool = True,
        columns: int = 80,
    ) -> None:
        self.stream, self.clock, self.after, self.columns = stream, clock, after, columns
        self.show = show and stream.isatty()
        self.started = clock() if started is None else started
        self.current, self.since = "start-up", self.started
        self.seconds: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.shown = ""  # the text on the terminal now
        self.drawn_at: float | None = None

    def stage(self, name: str) -> None:
        now = self._close()
        self.current = name
        self._draw(now, at_once=True)

    def _close(self) -> float:
        """Add the time since the current stage began to its total; return the time now."""
        now = self.clock()
        self.seconds[self.current] = self.seconds.get(self.current, 0.0) + now - self.since
        self.since = now
        return now

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n
        self._draw(self.clock())

    def line(self) -> str:
        """Say where the build is: its stage, cards read, rendered (or to render), packages written."""
        counts, reached = self.counts, STAGES.index(self.current)
        read = counts.get("read", 0)
        parts = [f"{read} card(s) read"]
        if "rendered" in counts:
            parts.append(f"{counts['rendered']} rendered")
        elif reached >= STAGES.index("rendering"):
            parts.append(f"{read - counts.get('memo', 0)} to render")
        if reached >= STAGES.index("packaging"):
            parts.append(f"{counts.get('written', 0)} package(s) written")
        return f"{self.current}: {', '.join(parts)}"

    def _draw(self, now: float, at_once: bool = False) -> None:
        if not self.show or now - self.started < self.after:
            return
        if not at_once and self.drawn_at is not None and now - self.drawn_at < REDRAW_EVERY:
            return
        # One column short of the width: a line that fills it wraps, and \r would not return to it.
        text = self.line()[: max(self.columns - 1, 0)]
        if text != self.shown:
            self._write("\r" + text + " " * (len(self.shown) - len(text)))
            self.shown = text if self.show else ""
        self.drawn_at = now

    def _write(self, text: str) -> None:
        # Progress is only a courtesy: a terminal that went away must not stop the build.
        try:
            self.stream.write(text)
            self.stream.flush()
        except OSError:
            self.show = False

    def finish(self) -> None:
        """End the last stage, and wipe the line so that the next output starts on a clean one."""
        self._close()
        if self.shown:
            self._write("\r" + " " * len(self.shown) + "\r")
            self.shown = ""

    def timings(self) -> list[str]:
        """Say where the time went, stage by stage, with the counts of each."""
        counts, seconds = self.counts, self.seconds
        detail = {
            **STAGE_LABELS,
            "reading": f"{counts.get('read', 0)} card(s) in {counts.get('files', 0)} file(s)",
            "memo": f"{counts.get('memo', 0)} card(s) from the memo",
            "rendering": f"{counts.get('rendered', 0)} card(s) validated and rendered",
            "packaging": f"{counts.get('written', 0)} package(s) written, "
            f"{counts.get('unchanged', 0)} unchanged",
        }
        lines = [f"where the time went ({sum(seconds.values()):.3f} s):"]
        for name in STAGES:
            if name in seconds:
                lines.append(f"  {seconds[name]:7.3f} s  {name:<12} {detail[name]}")
        if "reading" not in seconds and "fingerprint" in seconds:
            lines.append("  nothing changed since the last build: answered from its record")
        if patched := counts.get("patched"):
            lines.append(f"  {patched} row(s) edited in place: patched into the last package(s)")
        return lines


def _process_start(clock: Callable[[], float] = time.perf_counter) -> float:
    """Return when this process started on `clock`, so that start-up counts Python's own; else now."""
    now = clock()
    try:
        # Field 22 of /proc/self/stat: the start, in clock ticks after boot (Linux only).
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return now
    # Bounded: clocks that disagree must not make start-up look like minutes.
    return now - min(max(age, 0.0), 60.0)


def _progress_after() -> float:
    """Return after how many seconds a build shows progress: DECKBUILD_PROGRESS_AFTER, else 1."""
    value = os.environ.get("DECKBUILD_PROGRESS_AFTER")
    if value is None:
        return PROGRESS_AFTER
    try:
        after = float(value)
    except ValueError:
        after = math.nan
    if not after >= 0:  # nan compares false: it is no number of seconds either
        raise click.UsageError(f"DECKBUILD_PROGRESS_AFTER={value!r} is not a number of seconds") from None
    return after


def _progress_line(show: bool) -> ProgressLine:
    """Return the progress line of a build run from this command line, on stderr."""
    try:
        columns = os.get_terminal_size(sys.stderr.fileno()).columns or 80  # 0: a terminal of no set size
    except (OSError, ValueError, AttributeError):
        columns = 80
    # Read only when progress may show: --quiet never looks at the setting.
    start, after = _process_start(), _progress_after() if show else PROGRESS_AFTER
    return ProgressLine(sys.stderr, started=start, after=after, show=show, columns=columns)


def _print_report(report: Report, strict: bool = False) -> None:
    for problem in report.sorted_problems():
        click.echo(str(problem), err=True)
    for note in report.notes:
        click.echo(printable(note), err=True)  # a file name must not move the terminal's cursor
    errors, warnings = len(report.errors), len(report.warnings)
    if errors or warnings:
        why = " (--strict: warnings fail the run)" if strict and warnings and not errors else ""
        click.echo(f"{errors} error(s), {warnings} warning(s){why}", err=True)


def _calc_error() -> type[Exception]:
    """Return the calculator's error, importing the calculator only once something went wrong."""
    from deckbuild.calc import CalcError

    return CalcError


def _reports_errors(func: F) -> F:
    """Turn deckbuild's own errors into messages and exit status 1, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BuildFailed as exc:
            _print_report(exc.report, exc.strict)
            sys.exit(1)
        except (DeckbuildError, _calc_error()) as exc:  # evaluated only when something was raised
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def _one_line(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Accept only printable text on one line: it is shown in every deck's description."""
    if value is not None and (not value.strip() or not value.isprintable()):
        raise click.BadParameter(f"{value!r} is not one line of printable text; give a tag such as v1.2.0")
    return value


def _web_address(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Accept only an http(s) address: the deck description is HTML that Anki shows as it is."""
    if value is not None and not value.lower().startswith(("https://", "http://")):
        raise click.BadParameter(f"{value!r} is not a web address; give one that starts with https://")
    if value is not None and value.split() != [value]:
        raise click.BadParameter(f"{value!r} is not a web address: it holds a blank; leave the blanks out")
    return _one_line(ctx, param, value)


paths_argument = click.argument("paths", nargs=-1, type=click.Path(path_type=Path, exists=True))


def _paths(paths: tuple[Path, ...], how: str = "PATH") -> tuple[Path, ...]:
    """Return the paths given, else decks/; its absence is a usage error (exit 2)."""
    if paths:
        return paths
    if not DEFAULT_DECKS.exists():
        raise click.UsageError(
            f"no {how} given, and there is no {DEFAULT_DECKS}/ folder here; "
            f"name your deck folder, or run deckbuild where {DEFAULT_DECKS}/ is"
        )
    return (DEFAULT_DECKS,)


def output_option(default: Path, help_text: str) -> Callable[[F], F]:
    """Return the -o/--output option with its own default folder."""
    return click.option(
        "-o",
        "--output",
        "outdir",
        # Not click's own check: an output that is a file is a message with exit status 1, like /dev/null.
        type=click.Path(path_type=Path),
        default=default,
        show_default=True,
        help=help_text,
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="deckbuild")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Keep flashcards as text and ship them to Anki."""
    # deckbuild.launch starts the process with the cycle collector off; a build keeps it off to
    # the end (the process ends with it), every other command runs as Python would.
    if ctx.invoked_subcommand != "build":
        gc.enable()


version_option = click.version_option(__version__, prog_name="deckbuild")


@cli.command()
@paths_argument
@output_option(Path("dist"), "Folder for the .apkg files.")
@click.option("--frozen", is_flag=True, help="Fail instead of changing the lock file (for CI).")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@click.option(
    "--previous",
    multiple=True,
    type=click.Path(path_type=Path, exists=True),
    help="An earlier .apkg (or folder of them) that holds cards removed since: they are retired.",
)
@click.option("--no-cache", is_flag=True, help="Render every card again; neither read nor write the cache.")
@click.option(
    "--deck-version", default=None, callback=_one_line, help="Version shown in the deck description."
)
@click.option(
    "--notes-url",
    default=None,
    callback=_web_address,
    help="Link to the release notes, in the deck description.",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only problems: no progress, no summary.")
@click.option("-v", "--verbose", is_flag=True, help="Also say where the time went, stage by stage.")
@_reports_errors
def build(
    paths: tuple[Path, ...],
    outdir: Path,
    frozen: bool,
    strict: bool,
    previous: tuple[Path, ...],
    no_cache: bool,
    deck_version: str | None,
    notes_url: str | None,
    quiet: bool,
    verbose: bool,
) -> None:
    """Build one .apkg per deck.

    PATHS are deck folders or source files (default: decks/). A build that runs longer than a
    second shows its progress on a terminal.
    """
    if quiet and verbose:
        raise click.UsageError("--quiet and --verbose ask for opposite things; give one of them")
    progress = _progress_line(show=not quiet)
    from deckbuild.launch import leftovers
    from deckbuild.record import Release
    from deckbuild.record import build as run

    try:
        result = run(
            _paths(paths), outdir, now=int(time.time()), frozen=frozen, strict=strict, previous=previous,
            release=Release(deck_version, notes_url), use_cache=not no_cache, progress=progress,
            leftovers=leftovers(),
        )  # fmt: skip
    finally:
        progress.finish()  # before any problem is printed
    _print_report(result.report)
    if quiet:
        return
    for path in result.packages:
        click.echo(printable(f"{'unchanged' if path in result.unchanged else 'wrote'} {path}"))
    counts = result.report.counts
    retired = f", {counts['retired']} retired" if counts.get("retired") else ""
    click.echo(
        f"{counts.get('read', 0)} card(s) read, {counts.get('packaged', 0)} packaged, "
        f"{counts.get('skipped', 0)} skipped, {counts.get('incomplete', 0)} incomplete{retired}"
    )
    if verbose:
        click.echo("\n".join(progress.timings()), err=True)


@cli.command()
@paths_argument
@_reports_errors
def ids(paths: tuple[Path, ...]) -> None:
    """Write new UUIDs into sources.

    Every row of PATHS (default: decks/) that has no UUID gets one, written into its file; the
    only command that edits sources.
    """
    from deckbuild.newids import write_ids

    report = Report()
    written = write_ids(_paths(paths), report)
    for item in written:
        rows = ", ".join(map(str, item.lines))
        click.echo(printable(f"{item.path}: wrote {len(item.lines)} new id(s), line(s) {rows}"))
    if report.problems:
        raise BuildFailed(report)
    click.echo(f"{sum(len(w.lines) for w in written)} new id(s) written into {len(written)} file(s)")


@cli.command()
@paths_argument
@click.option("--json", "as_json", is_flag=True, help="Print the cards as a JSON array.")
@_reports_errors
def cards(paths: tuple[Path, ...], as_json: bool) -> None:
    """Print the parsed, validated cards of PATHS."""
    from deckbuild.build import collect
    from deckbuild.models import card_json

    collection = collect(_paths(paths))
    if collection.report.errors:
        raise BuildFailed(collection.report)
    _print_report(collection.report)
    if as_json:
        # The id each card takes (cards sharing a question take theirs by content, after validation).
        data = [{**card_json(p.model), "id": p.id} for p in collection.cards]
        click.echo(printable_json(json.dumps(data, indent=2, ensure_ascii=False)))
    else:
        for parsed in collection.cards:
            card = parsed.model
            shown = (card.source, card.kind, parsed.id, card.question.splitlines()[0])
            click.echo("\t".join(map(printable, shown)))


@cli.command()
@paths_argument
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@click.option("--no-cache", is_flag=True, help="Render every card again; neither read nor write the cache.")
@_reports_errors
def check(paths: tuple[Path, ...], strict: bool, no_cache: bool) -> None:
    """Parse, validate and render PATHS; write nothing."""
    from deckbuild.build import check as run

    report = run(_paths(paths), strict=strict, use_cache=not no_cache)
    _print_report(report)
    counts = report.counts
    click.echo(
        f"ok: {counts.get('read', 0)} card(s) checked; {counts.get('computed', 0)} answer(s) computed, "
        f"{counts.get('verified', 0)} stated answer(s) verified"
    )


@cli.command()
@paths_argument
@output_option(Path("preview"), "Folder for the HTML pages.")
@_reports_errors
def preview(paths: tuple[Path, ...], outdir: Path) -> None:
    """Write an HTML page of every card.

    Every card of PATHS, front and back, as learners will see them.
    """
    from deckbuild.preview import write_preview

    result = write_preview(_paths(paths), outdir)
    _print_report(result.report)
    for page in result.pages:
        click.echo(printable(f"wrote {page}"))
    click.echo(f"{result.cards} card(s) previewed")


@cli.command()
@click.argument("old", type=click.Path(path_type=Path, exists=True))
@click.argument("new", type=click.Path(path_type=Path, exists=True))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown"]),
    default="text",
    show_default=True,
    help="text: one card a line; markdown: release notes.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--fail-on-breaking", is_flag=True, help="Exit 1 when learners' updates would break.")
@_reports_errors
def diff(old: Path, new: Path, fmt: str, as_json: bool, fail_on_breaking: bool) -> None:
    """List cards added, changed and removed.

    OLD and NEW are .apkg files, folders of them, or deck folders.
    """
    from deckbuild import diff as d

    result = d.compare(d.load(old), d.load(new))
    if as_json:
        click.echo(printable_json(json.dumps(result.to_json(), indent=2, ensure_ascii=False)))
    else:
        click.echo(d.to_markdown(result) if fmt == "markdown" else d.to_text(result), nl=False)
    for problem in result.breaking:
        click.echo(f"BREAKING: {problem}", err=True)
    if fail_on_breaking and result.breaking:
        sys.exit(1)


@cli.command("import")
@click.argument("source", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@output_option(DEFAULT_DECKS, "A new or empty folder for the sources: a deck root, one folder a deck.")
@_reports_errors
def import_(source: Path, outdir: Path) -> None:
    """Turn an Anki deck into sources that keep every note's GUID.

    SOURCE is an .apkg or .colpkg, or Anki's text export of notes (with their GUIDs).
    """
    from deckbuild.importer import ImportRefused, import_deck

    try:
        result = import_deck(source, outdir)
    except ImportRefused as exc:
        for problem in exc.report.sorted_problems():  # what was left out says why nothing was
            click.echo(str(problem), err=True)
        raise
    _print_report(result.report)
    from deckbuild.sources import display_path

    for path in result.files:
        click.echo(printable(f"wrote {display_path(path)}"))
    click.echo(f"{result.notes} note(s) imported into {len(result.files)} file(s), {result.media} image(s)")


@cli.command()
@click.argument("uuids", nargs=-1, required=True)
@click.option("--decks", "root", type=click.Path(path_type=Path, exists=True), default=None,
              help="A folder or file of the deck tree whose lock to change [default: decks].")  # fmt: skip
@click.option("--never-retired", is_flag=True,
              help="Forget cards no build retired too (only if no learner ever had them).")  # fmt: skip
@_reports_errors
def forget(uuids: tuple[str, ...], root: Path | None, never_retired: bool) -> None:
    """Stop carrying retired cards for good.

    Later packages no longer hold the retired cards UUIDS. The deck root is found as build
    finds it: the nearest folder upward from --decks that holds deckbuild.lock.
    """
    from deckbuild.build import forget as run

    (path,) = _paths((root,) if root else (), "--decks")
    for guid in run(path, uuids, never_retired):
        click.echo(f"forgot {guid}")


@cli.command()
@paths_argument
@output_option(Path("dist"), "Folder for the release files.")
@click.option(
    "--release-version",
    "release_version",
    required=True,
    callback=_one_line,
    metavar="V",
    help="The release's version, e.g. the git tag.",
)
@click.option(
    "--previous",
    type=click.Path(path_type=Path, exists=True),
    default=None,
    help="The previous release's .apkg files (a file or a folder), for notes and retiring.",
)
@click.option(
    "--notes-url",
    default=None,
    callback=_web_address,
    help="Link to the release notes, in the deck description.",
)
@click.option("--allow-breaking", is_flag=True, help="Release even when learners' updates would break.")
@_reports_errors
def release(
    paths: tuple[Path, ...],
    outdir: Path,
    release_version: str,
    previous: Path | None,
    notes_url: str | None,
    allow_breaking: bool,
) -> None:
    """Build the release files.

    Packages (built --frozen), SHA256SUMS and RELEASE_NOTES.md.
    """
    from deckbuild.release import make_release

    result = make_release(_paths(paths), outdir, release_version, previous, notes_url)
    _print_report(result.report)
    for path in result.files:
        click.echo(printable(f"wrote {path}"))
    for problem in result.breaking:
        click.echo(f"BREAKING: {problem}", err=True)
    if result.breaking and not allow_breaking:
        click.echo(
            "error: this release would break learners' updates; fix it, or pass --allow-breaking", err=True
        )
        sys.exit(1)


class JsonValue(click.ParamType):  # type: ignore[type-arg]
    """A JSON value on the command line, or @FILE to read it from a file."""

    name = "JSON"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        text = value
        if value.startswith("@"):
            from deckbuild.sources import read_at_most

            try:
                # Bounded: @/dev/zero must end in a message, not in all the memory there is.
                text = read_at_most(Path(value[1:])).decode("utf-8")
            except OSError as exc:
                self.fail(f"cannot read {value[1:]}: {exc.strerror}", param, ctx)
            except UnicodeDecodeError:
                self.fail(f"cannot read {value[1:]}: not UTF-8 text", param, ctx)
        from deckbuild.calc import JsonDecoder

        try:
            return JsonDecoder().decode(text)
        except json.JSONDecodeError as exc:
            self.fail(f"not valid JSON ({exc.msg} at character {exc.pos + 1})", param, ctx)


class MaskValue(JsonValue):
    """'causal', or a JSON matrix of 1 and 0."""

    name = "causal|JSON"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value == "causal" or not isinstance(value, str):
            return value
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter as exc:
            # What else the mask may be, beside a matrix written as JSON.
            self.fail(f"{exc.message}; give causal, or a matrix of 1 (attend) and 0 as JSON", param, ctx)


JSON = JsonValue()
json_flag = click.option("--json", "as_json", is_flag=True, help="Print a JSON object with every step.")


def _show(result: Any, steps: list[tuple[str, str]], as_json: bool) -> None:
    from deckbuild.calc import fmt

    if as_json:
        data = result if isinstance(result, dict) else {"output": result}
        click.echo(json.dumps(data, indent=2))
        return
    for title, text in steps:
        click.echo(title)
        click.echo(f"  {text}")
    output = result["output"] if isinstance(result, dict) else result
    click.echo(f"Answer: {fmt(output)}")


@cli.group()
def calc() -> None:
    """Compute attention maths, step by step.

    Worked steps, or --json with every intermediate.
    """


@calc.command("attention")
@click.option("--query", "-q", type=JSON, required=True, help="Q: one row per query token.")
@click.option("--key", "-k", type=JSON, required=True, help="K: one row per key token.")
@click.option("--value", "-v", type=JSON, required=True, help="V: one row per key token.")
@click.option("--mask", type=MaskValue(), default=None, help="causal, or a matrix of 1 (attend) and 0.")
@click.option("--scale", type=float, default=None, help="Scale of the scores [default: 1/sqrt(d_k)].")
@json_flag
@_reports_errors
def calc_attention(query: Any, key: Any, value: Any, mask: Any, scale: float | None, as_json: bool) -> None:
    """Scaled dot-product attention: softmax(Q Kᵀ · scale + mask) V."""
    from deckbuild import calc as c

    result = c.attention(query, key, value, mask, scale)
    _show(result.to_json(), c.attention_steps(result), as_json)


@calc.command("multihead")
@click.option("--input", "-x", "x", type=JSON, required=True, help="X: one row per token.")
@click.option("--wq", type=JSON, required=True, help="Wq, so that Q = X Wq.")
@click.option("--wk", type=JSON, required=True, help="Wk, so that K = X Wk.")
@click.option("--wv", type=JSON, required=True, help="Wv, so that V = X Wv.")
@click.option("--wo", type=JSON, required=True, help="Wo, the output projection.")
@click.option("--heads", type=click.IntRange(min=1), required=True, help="Number of heads.")
@click.option("--mask", type=MaskValue(), default=None, help="causal, or a matrix of 1 (attend) and 0.")
@json_flag
@_reports_errors
def calc_multihead(x: Any, wq: Any, wk: Any, wv: Any, wo: Any, heads: int, mask: Any, as_json: bool) -> None:
    """Multi-head attention.

    Project, split into heads, attend, concatenate, project.
    """
    from deckbuild import calc as c

    result = c.multihead(x, wq, wk, wv, wo, heads, mask)
    _show(result.to_json(), c.multihead_steps(result), as_json)


@calc.command("softmax")
@click.argument("values", type=JSON)
@json_flag
@_reports_errors
def calc_softmax(values: Any, as_json: bool) -> None:
    """Softmax of VALUES (a list), or of each row (a matrix)."""
    from deckbuild import worked

    _show(*worked.softmax(values), as_json)


@calc.command("layernorm")
@click.option("--input", "-x", "x", type=JSON, required=True, help="X: one row per token.")
@click.option("--gamma", type=JSON, default=None, help="Scale per column [default: 1].")
@click.option("--beta", type=JSON, default=None, help="Shift per column [default: 0].")
@click.option("--eps", type=float, default=1e-5, show_default=True, help="Added to the variance.")
@json_flag
@_reports_errors
def calc_layernorm(x: Any, gamma: Any, beta: Any, eps: float, as_json: bool) -> None:
    """Layer normalisation of each row."""
    from deckbuild import worked

    _show(*worked.layer_norm(x, gamma, beta, eps), as_json)


@calc.command("posenc")
@click.option("--length", type=click.IntRange(min=1), required=True, help="Number of positions.")
@click.option("--d-model", type=click.IntRange(min=1), required=True, help="Width of the encoding.")
@json_flag
@_reports_errors
def calc_posenc(length: int, d_model: int, as_json: bool) -> None:
    """Sinusoidal positional encoding."""
    from deckbuild.answers import run

    _show(*run("posenc", {"length": length, "d_model": d_model}), as_json)


def _version_everywhere(group: click.Group) -> None:
    """Give every subcommand --version too, so that it works wherever an author types it."""
    for command in group.commands.values():
        version_option(command)
        if isinstance(command, click.Group):
            _version_everywhere(command)


_version_everywhere(cli)


def main() -> None:
    """Run the command line."""
    try:
        cli()
    except BrokenPipeError:
        # `deckbuild cards --json | head`: the reader has gone; nothing is wrong with the cards.
        sys.stderr.close()
        sys.exit(1)
    except Exception as exc:
        # Out of file descriptors or memory, anywhere: one line that says so. Whatever was half
        # made is in temporary files only; the packages and the lock are as they were. Anything
        # else is raised again as it was.
        if (message := ran_out(exc)) is not None:
            sys.stderr.write(f"error: {message}\n")
            sys.exit(1)
        # What is printed could not be written (`> /dev/full`); whatever was built stays built.
        # Any other OSError reaching here is a bug of ours: it must show, not pass for this one.
        if not isinstance(exc, OSError) or exc.errno not in _OUTPUT_ERRORS:
            raise
        sys.stderr.write(f"error: cannot write the output ({exc.strerror or exc}); check where it goes\n")
        sys.exit(1)
    finally:
        # Spare the process the cycle collection Python runs as it exits, which would trace every
        # object the run made (a twentieth of a build that nothing changed): all that needs closing
        # is closed by now, files, cache and helpers alike, and the exit still flushes and cleans up.
        gc.freeze()
        gc.enable()  # off since start-up (deckbuild.launch): back on, with nothing of the run to trace
