"""Start a build: hold its folders, finish what a killed one left, and answer it from its record.

A build whose every input is as the last build left it (every file below its paths, the locks,
the kept note types, earlier packages, its options and deckbuild's versions) replays that
build's report, as long as every package it wrote still has its recorded SHA-256. The pipeline
(deckbuild.build) and what it reads, renders and packages with are imported only when that
fails: this module and what it imports are all a build that nothing changed pays for.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, closing, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deckbuild import cache
from deckbuild.atomic import cannot_write, exclusive, recover
from deckbuild.errors import DeckbuildError, Report
from deckbuild.progress import QUIET, Progress
from deckbuild.resources import ran_out
from deckbuild.sources import (
    KEPT_NAME,
    LOCK_NAME,
    TooLarge,
    canonical,
    changed_stamp,
    check_outdir,
    digest_regular,
    display_path,
    find_root,
    is_regular,
)


@dataclass
class BuildResult:
    """What a build wrote and found."""

    packages: list[Path] = field(default_factory=list)
    report: Report = field(default_factory=Report)
    lock_changed: list[Path] = field(default_factory=list)
    # Files read besides the sources (images), for the record of an unchanged build.
    inputs: list[Path] = field(default_factory=list)
    # Images the cards name that were left out: once one is there, no record or patch answers.
    missing: list[Path] = field(default_factory=list)
    # Images shown through a link or a `..`: each path as named and the file it led to. Once one
    # leads elsewhere (a link retargeted), no record or patch answers.
    linked: list[tuple[Path, Path]] = field(default_factory=list)
    # The SHA-256 of each package as the build wrote or found it, so the record hashes none again.
    digests: dict[Path, str] = field(default_factory=dict)
    # What the cache knows each package's empty collection by, for the next build to patch it.
    shells: dict[Path, str] = field(default_factory=dict)
    # The packages that were there already as this build would write them: left as they were.
    unchanged: list[Path] = field(default_factory=list)


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Hold off Python's cycle collector while a build runs (helpers forked meanwhile too).

    A build makes little cyclic garbage, but tens of thousands of live objects that every
    collection traced again: a tenth of a rebuild's time. Reference counting still frees the rest.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass(frozen=True)
class Release:
    """What a published build says about itself in the deck description."""

    version: str | None = None
    notes_url: str | None = None

    def description(self) -> str:
        if not self.version:
            return "Built with deckbuild."  # every build but a release's: no need to import html
        import html

        link = f' · <a href="{html.escape(self.notes_url)}">release notes</a>' if self.notes_url else ""
        return f"Version {html.escape(self.version)}{link}"


def build(
    paths: Iterable[Path],
    outdir: Path,
    *,
    now: int,
    frozen: bool = False,
    strict: bool = False,
    previous: Sequence[Path] = (),
    release: Release = Release(),
    dry_run: bool = False,
    use_cache: bool = True,
    jobs: int | None = None,
    progress: Progress = QUIET,
    leftovers: list[object] | None = None,
) -> BuildResult:
    """Build one .apkg per deck below `paths` into `outdir`, one build per deck tree at a time.

    A dry run writes the packages but leaves the lock file as it is. `progress` hears each
    stage as it starts, and the counts as they grow. A caller that ends its process right after
    gives `leftovers`, a list it keeps until then: what the build made goes there, for the
    operating system to take back at once, rather than freed object by object (tens of
    thousands of them, a twentieth of a rebuild).
    """
    paths = canonical(paths)
    roots = sorted({find_root(p) for p in paths})
    check_outdir(outdir, roots)
    _check_previous(previous)
    # Made now, to hold it while building; a failing build removes it again (nothing written).
    made = [d for d in (outdir, *outdir.parents) if not d.exists()]
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise cannot_write(outdir, exc) from None
    try:
        with no_cycle_collection():
            return _build_held(
                paths, roots, outdir, now, frozen, strict, previous, release, dry_run, use_cache, jobs,
                progress, leftovers,
            )  # fmt: skip
    except BaseException:
        for folder in made:
            with suppress(OSError):
                folder.rmdir()
        raise


def _build_held(
    paths: list[Path],
    roots: list[Path],
    outdir: Path,
    now: int,
    frozen: bool,
    strict: bool,
    previous: Sequence[Path],
    release: Release,
    dry_run: bool,
    use_cache: bool,
    jobs: int | None,
    progress: Progress = QUIET,
    leftovers: list[object] | None = None,
) -> BuildResult:
    """Build with every deck tree and the output folder held, after repairing what a kill left."""
    with ExitStack() as held:
        # Every tree and the output folder, in one order for every build, so none waits in a circle.
        folders = sorted({*(r.resolve() for r in roots), outdir.resolve()})
        for folder in folders:
            held.enter_context(exclusive(folder))
        # What a killed build left: finished if it got as far as its journal, else swept away.
        repaired = recover(folders)
        store = held.enter_context(closing(cache.Cache(cache.cache_dir() if use_cache else None)))
        # The working directory too: the report names files relative to it (`display_path`).
        options = [frozen, strict, str(outdir.resolve()), release.version, release.notes_url, os.getcwd()]
        record = store.db is not None and not dry_run
        progress.stage("fingerprint")
        before: dict[Path, bytes] = {}
        if record and (done := _replay(store, _fingerprint(paths, roots, previous, options, before, outdir))):
            done.report.notes[:0] = repaired
            return done
        from deckbuild import patch

        workers = jobs or os.cpu_count() or 1
        report = Report(notes=repaired)
        # Said once, whether the build fails or not, and never kept in its record.
        held.callback(_note_busy, store, report)
        base = patch.base_key(paths, options)
        # A few rows edited in place since the last clean build: that build's packages are patched.
        # A build of part of a deck tree reads the rest of it too, which a patch would not.
        whole = all(find_root(p) == p for p in paths)
        result = (
            patch.rebuild(store, base, paths, now, before, workers, report, progress)
            if record and not frozen and not previous and not repaired and whole
            else None
        )
        if result is None:
            # Only now the pipeline, and what it reads, renders and packages with.
            from deckbuild.build import _Build

            job = _Build(
                paths, outdir, now, previous, release, report=report, store=store, jobs=workers,
                progress=progress, leftovers=leftovers,
            )  # fmt: skip
            result = job.run(frozen, strict, dry_run)
            if leftovers is not None:
                leftovers.append(job)
        if record:
            progress.stage("recording")
            after: dict[Path, bytes] = {}
            # Keyed by the state the build leaves behind, so that the next identical build finds it.
            key = _fingerprint(paths, roots, previous, options, after, outdir)
            # But only when what it read is what is there now: a file saved while it ran (an
            # editor, a watcher) was read before or after the save, and the record would vouch
            # for text the packages may not hold. The next build then builds it for real.
            wrote = {*(r / LOCK_NAME for r in roots), *(Path(os.path.abspath(p)) for p in result.packages)}
            if _read_alike(before, after, wrote):
                try:
                    kept = _record(result)
                    # A patch looks at every note of the build it patches, what it changed too.
                    told = {**kept, "notes": list(result.report.notes)}
                    store.put_many({key: kept, base: patch.state(after, result, told)})
                except (OSError, UnicodeError) as exc:
                    # A file read that is gone already (a broken link), or named in bytes no text
                    # holds: no record, and the next build builds for real. The packages stand.
                    if isinstance(exc, OSError) and ran_out(exc):
                        raise
        return result


def _note_busy(store: cache.Cache, report: Report) -> None:
    """Tell in the report that the build went on without a cache another process held."""
    if note := store.note():
        report.notes.append(note)


def _read_alike(before: dict[Path, bytes], after: dict[Path, bytes], wrote: set[Path]) -> bool:
    """Tell whether two fingerprints saw the same files with the same bytes, but for those written."""
    return {p: d for p, d in before.items() if p not in wrote} == {
        p: d for p, d in after.items() if p not in wrote
    }


def _check_previous(previous: Sequence[Path]) -> None:
    """Refuse an earlier release that is not one, before anything is read or written.

    Retiring a card takes its content from there; a wrong file would quietly retire nothing.
    """
    for path in previous:
        from deckbuild.diff import read

        files = sorted(path.glob("*.apkg")) if path.is_dir() else [path]
        if not files:
            raise DeckbuildError(
                f"{display_path(path)}: holds no .apkg file; point --previous at the last release's packages"
            )
        for file in files:
            if not is_regular(file):  # a FIFO or a device is never opened: reading it could wait forever
                why = "not a regular file; point --previous at the last release's packages"
                raise DeckbuildError(f"{display_path(file)}: {why}")
            read(file)


def _fingerprint(
    paths: list[Path],
    roots: list[Path],
    previous: Sequence[Path],
    options: list[Any],
    seen: dict[Path, bytes] | None = None,
    outdir: Path | None = None,
) -> str:
    """Hash everything a build reads: every file below the paths, the locks, earlier packages.

    `seen` gets what was hashed of each file, to tell afterwards which of them changed meanwhile.
    The packages in `outdir` count by their size and time: a build compares its notes' mod times
    with theirs, and one another build wrote there since is read anew.
    """
    digest = hashlib.sha256(json.dumps([str(p) for p in paths] + options).encode("utf-8"))
    if outdir is not None and outdir.is_dir():
        for package in sorted(outdir.glob("*.apkg")):
            with suppress(OSError):
                stat = package.stat()
                digest.update(f"\x05{package.name}\x00{stat.st_size}:{stat.st_mtime_ns}".encode())
    files = [r / LOCK_NAME for r in roots]
    # The note types kept from an imported deck, read from a folder above the paths too.
    files += sorted({f for p in paths for f in kept_files_above(p, find_root(p))})
    # Each whole deck tree, not only the paths: a build of part of one reads the rest for ids.
    for path in [*roots, *previous]:
        if path.is_dir():
            for folder, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                files += [Path(folder) / n for n in sorted(names)]
                # A link to a folder is not followed, but a build warns of it: one made (or
                # pointed elsewhere) since the record changes what a build says.
                files += [Path(folder) / d for d in dirs if os.path.islink(os.path.join(folder, d))]
        else:
            files.append(path)
    for file in files:
        digest.update(b"\x00" + os.fsencode(file) + b"\x00")
        if os.path.islink(file) and os.path.isdir(file):
            own = b"\x04" + os.fsencode(os.readlink(file))
            digest.update(own)
            if seen is not None:
                seen[file] = own
            continue
        try:
            # Each file's own hash, of one length: no content can pass for a path and the next file.
            own = b"\x03" + digest_regular(file)  # never a FIFO or device: it could hang
        except TooLarge:
            # Past what any source may be (a large image, say): its size and time, never its bytes.
            stat = file.stat()
            own = f"\x02{stat.st_size}:{changed_stamp(stat)}".encode()
        except OSError as exc:
            if ran_out(exc):
                raise
            own = b"\x01missing"
        digest.update(own)
        if seen is not None:
            seen[file] = own
    return cache.key("build", digest.hexdigest())


def _record(result: BuildResult) -> dict[str, Any]:
    report = result.report
    return {
        "packages": [[str(p), result.digests.get(p) or _sha256(p)] for p in result.packages],
        "inputs": [[str(p), *_stat(p)] for p in result.inputs],
        "missing": [str(p) for p in result.missing],
        "linked": [[str(named), str(target)] for named, target in result.linked],
        "problems": [[p.path, p.line, p.severity.value, p.message] for p in report.problems],
        "notes": [note for note in report.notes if note not in report.changes],
        "counts": report.counts,
    }


def _stat(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, changed_stamp(stat)


def _replay(store: cache.Cache, fingerprint: str) -> BuildResult | None:
    """Answer a build whose every input is as the last build left it, if its outputs are too."""
    record = store.get_many({fingerprint: cache.BUILD_RECORD}).get(fingerprint)
    if record is None:
        return None
    try:
        if any(_stat(Path(p)) != (size, mtime) for p, size, mtime in record["inputs"]):
            return None
        if any(_sha256(Path(p)) != digest for p, digest in record["packages"]):
            return None
    except OSError:
        return None
    # An image named but not found then, there now (perhaps where no fingerprint looks: a hidden
    # folder, a deck tree not built): the cards that name it show it now.
    if any(os.path.lexists(p) for p in record["missing"]) or not still_linked(record["linked"]):
        return None
    report = Report(
        notes=list(record["notes"]), counts={**record["counts"], "unchanged": len(record["packages"])}
    )
    for path, line, severity, message in record["problems"]:
        (report.error if severity == "error" else report.warn)(path, line, message)
    done = BuildResult([Path(p) for p, _ in record["packages"]], report)
    done.unchanged = list(done.packages)
    done.missing = [Path(p) for p in record["missing"]]
    done.linked = [(Path(named), Path(target)) for named, target in record["linked"]]
    return done


def still_linked(linked: list[list[str]]) -> bool:
    """Tell whether each image path as named, reached through a link or a `..`, leads where it did."""
    return all(os.path.realpath(named) == target for named, target in linked)


def kept_files_above(path: Path, root: Path) -> list[Path]:
    """List the note type files of kept note types from `path`'s folder up to its deck root."""
    folder = path if path.is_dir() else path.parent
    found = []
    for above in (folder, *folder.parents):
        if (above / KEPT_NAME).is_file():
            found.append(above / KEPT_NAME)
        if above == root or not above.is_relative_to(root):
            break
    return found


def _sha256(path: Path) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()
