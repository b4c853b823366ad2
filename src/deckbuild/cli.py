"""The command line: options, one call into the core, and errors turned into messages."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from deckbuild import __version__
from deckbuild.errors import BuildFailed, DeckbuildError, Report

DEFAULT_DECKS = Path("decks")
F = TypeVar("F", bound=Callable[..., Any])


def _print_report(report: Report, strict: bool = False) -> None:
    for problem in report.sorted_problems():
        click.echo(str(problem), err=True)
    for note in report.notes:
        click.echo(note, err=True)
    errors, warnings = len(report.errors), len(report.warnings)
    if errors or warnings:
        click.echo(f"{errors} error(s), {warnings} warning(s)", err=True)


def _reports_errors(func: F) -> F:
    """Turn deckbuild's own errors into messages and exit status 1, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BuildFailed as exc:
            _print_report(exc.report)
            sys.exit(1)
        except DeckbuildError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


paths_argument = click.argument("paths", nargs=-1, type=click.Path(path_type=Path, exists=True))


def output_option(default: Path, help_text: str) -> Callable[[F], F]:
    """Return the -o/--output option with its own default folder."""
    return click.option(
        "-o",
        "--output",
        "outdir",
        type=click.Path(path_type=Path, file_okay=False),
        default=default,
        show_default=True,
        help=help_text,
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="deckbuild")
def cli() -> None:
    """Keep flashcards as text and ship them to Anki."""


@cli.command()
@paths_argument
@output_option(Path("dist"), "Folder for the .apkg files.")
@click.option("--frozen", is_flag=True, help="Fail instead of changing the lock file (for CI).")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@_reports_errors
def build(paths: tuple[Path, ...], outdir: Path, frozen: bool, strict: bool) -> None:
    """Build one .apkg per deck from PATHS (deck folders or files; default: decks/)."""
    from deckbuild.build import build as run

    result = run(paths or (DEFAULT_DECKS,), outdir, now=int(time.time()), frozen=frozen, strict=strict)
    _print_report(result.report)
    for path in result.packages:
        click.echo(f"wrote {path}")
    counts = result.report.counts
    click.echo(
        f"{counts.get('read', 0)} card(s) read, {counts.get('packaged', 0)} packaged, "
        f"{counts.get('skipped', 0)} skipped, {counts.get('incomplete', 0)} incomplete"
    )


@cli.command()
@paths_argument
@click.option("--json", "as_json", is_flag=True, help="Print the cards as a JSON array.")
@_reports_errors
def cards(paths: tuple[Path, ...], as_json: bool) -> None:
    """Print the parsed, validated cards of PATHS."""
    from deckbuild.build import collect
    from deckbuild.models import card_json

    collection = collect(paths or (DEFAULT_DECKS,))
    if collection.report.errors:
        raise BuildFailed(collection.report)
    _print_report(collection.report)
    if as_json:
        data = [card_json(p.card) for p in collection.cards]
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        for parsed in collection.cards:
            card = parsed.card
            click.echo(f"{card.source}\t{card.kind}\t{card.id}\t{card.question.splitlines()[0]}")


@cli.command()
@paths_argument
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@_reports_errors
def check(paths: tuple[Path, ...], strict: bool) -> None:
    """Parse and validate PATHS without writing anything."""
    from deckbuild.build import check as run

    report = run(paths or (DEFAULT_DECKS,), strict=strict)
    _print_report(report)
    click.echo(f"ok: {report.counts.get('read', 0)} card(s) checked")


@cli.command()
@paths_argument
@output_option(Path("preview"), "Folder for the HTML pages.")
@_reports_errors
def preview(paths: tuple[Path, ...], outdir: Path) -> None:
    """Write an HTML page showing every card of PATHS, front and back, as learners see them."""
    from deckbuild.preview import write_preview

    result = write_preview(paths or (DEFAULT_DECKS,), outdir)
    _print_report(result.report)
    for page in result.pages:
        click.echo(f"wrote {page}")
    click.echo(f"{result.cards} card(s) previewed")


def main() -> None:
    """Run the command line."""
    cli()
