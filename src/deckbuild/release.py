"""Release files: packages built from the committed lock, their SHA-256 sums, and release notes."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from deckbuild.atomic import write_text
from deckbuild.build import Release, build
from deckbuild.diff import compare, load, to_markdown
from deckbuild.errors import Report
from deckbuild.packaged import PackageContents, read_package

SUMS = "SHA256SUMS"
NOTES = "RELEASE_NOTES.md"


@dataclass(frozen=True)
class ReleaseResult:
    """What a release wrote."""

    files: list[Path]
    report: Report
    breaking: list[str]


def make_release(
    paths: Sequence[Path],
    outdir: Path,
    version: str,
    previous: Path | None = None,
    notes_url: str | None = None,
) -> ReleaseResult:
    """Build with --frozen, then write the sums and the notes against the previous release."""
    # Read first: a previous release that is not one is an error before anything is written.
    old = load(previous) if previous else PackageContents()
    result = build(
        paths, outdir, now=0, frozen=True, previous=[previous] if previous else [],
        release=Release(version, notes_url),
    )  # fmt: skip
    sums = "".join(
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n" for p in sorted(result.packages)
    )
    write_text(outdir / SUMS, sums)
    new = PackageContents()
    for package in result.packages:
        contents = read_package(package)
        new.notes.update(contents.notes)
        new.notetypes.update(contents.notetypes)
    diff = compare(old, new)
    title = f"{version}: what changed" if previous else f"{version}: first release"
    write_text(outdir / NOTES, to_markdown(diff, title))
    return ReleaseResult(
        [*sorted(result.packages), outdir / SUMS, outdir / NOTES], result.report, diff.breaking
    )
