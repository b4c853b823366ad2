"""Write new UUIDs into semicolon files for rows that have none, keeping every other byte.

A deck author adds a row with an empty UUID (or a file with no UUID column at all), and
`deckbuild ids` writes a new UUID4 into it: quoting, line endings and a byte-order mark stay
exactly as they were, no row moves, and the file is replaced in one rename. An editor may have
the file open: the new text goes to a temporary file beside it, and it replaces the file only
if the file is still byte for byte what was read. Builds never write sources.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from deckbuild.errors import DeckbuildError, Report
from deckbuild.readers import detect
from deckbuild.readers.semicolon import _Unbalanced, missing_ids
from deckbuild.resources import ran_out
from deckbuild.sources import decode, discover, utf16_without_bom

BOM = b"\xef\xbb\xbf"
# Exactly the breaks the reader splits lines at.
_BREAK = re.compile(r"\r\n|\r|\n")


class SourceChanged(DeckbuildError):
    """The file changed between reading it and replacing it."""


@dataclass(frozen=True)
class Written:
    """A file that got new ids, and the lines (1-based) of the rows that got them."""

    path: str
    lines: tuple[int, ...]


def new_uuid() -> str:
    """Return a new random UUID, as a deck author would write it."""
    return str(uuid.uuid4())


def with_ids(data: bytes, make: Callable[[], str] = new_uuid) -> tuple[bytes, list[int]]:
    """Return the file's bytes with a new id in every row that lacks one, and those rows' lines.

    Raise UnicodeDecodeError for a file that is not UTF-8, _Unbalanced for an unclosed quote.
    """
    bom = BOM if data.startswith(BOM) else b""
    text = data[len(bom) :].decode("utf-8")
    starts = [0, *(m.end() for m in _BREAK.finditer(text))]
    places = missing_ids(_BREAK.split(text))
    if not places:
        return data, []
    rows: list[int] = []
    inserts: list[tuple[int, str]] = []
    for row, line, column, fixed in places:
        if fixed is None or fixed == ";":
            inserts.append((starts[line] + column, (fixed or "") + make()))
            rows.append(row + 1)
        else:
            inserts.append((starts[line] + column, fixed))
    out = text
    for offset, insert in sorted(inserts, key=lambda i: i[0], reverse=True):
        out = out[:offset] + insert + out[offset:]
    return bom + out.encode("utf-8"), rows


def write_ids(paths: Iterable[Path], report: Report, make: Callable[[], str] = new_uuid) -> list[Written]:
    """Write a new id into every row of the semicolon files below `paths` that has none."""
    written = []
    for source in discover(paths, report):
        shown = source.display
        lines = decode(source, Report())
        found = detect(lines) if lines is not None else None
        if found is None or found.name != "semicolon":
            continue  # quiz pages keep their ids in the lock
        assert lines is not None
        # A row ids cannot write into (too many or too few fields): ids does not say all is done.
        _tell_unfit_rows(shown, lines, report)
        try:
            # A file with no row to write an id into is left alone, whatever its encoding (a
            # Windows-1252 file, which the build reads with a warning, is no error here).
            if not missing_ids(lines):
                continue
        except _Unbalanced:
            pass  # said below, at its line
        path = source.path.resolve()
        try:
            before = path.stat()
            data = path.read_bytes()
            if utf16_without_bom(data):  # it reads as UTF-8, and wrongly
                raise UnicodeDecodeError("utf-8", data, data.index(b"\x00"), len(data), "UTF-16")
            new, rows = with_ids(data, make)
        except UnicodeDecodeError:
            report.error(shown, 1, "not UTF-8; save the file as UTF-8, then run 'deckbuild ids' again")
            continue
        except _Unbalanced as exc:
            message = "unbalanced double quote; fix it, then run 'deckbuild ids' again"
            report.error(shown, exc.args[0] + 1, message)
            continue
        except OSError as exc:
            if ran_out(exc):
                raise
            report.error(shown, 1, f"cannot read: {exc.strerror or exc}; fix the file")
            continue
        if not rows:
            continue
        # The owner's write bit counts even for root: it is how an author marks a file read-only.
        if not os.access(path, os.W_OK) or not before.st_mode & stat.S_IWUSR:
            report.error(
                shown, rows[0], "read-only file: cannot write new ids into it; make it writable and run again"
            )
            continue
        try:
            replace_unchanged(path, data, before, new)
        except SourceChanged:
            report.error(
                shown, rows[0], "the file changed while ids were written; nothing was written; run again"
            )
            continue
        except OSError as exc:
            if ran_out(exc):
                raise
            report.error(shown, rows[0], f"cannot write: {exc.strerror or exc}; nothing was written")
            continue
        written.append(Written(shown, tuple(rows)))
    return written


def _tell_unfit_rows(shown: str, lines: list[str], report: Report) -> None:
    """Report what in a semicolon file keeps ids from giving its rows ids, as a build does.

    Its headers and rows of the wrong width: a row that ends where its UUID would start gets
    one, and is not told unless it sits where no id is written (under a header refused).
    """
    from deckbuild.readers import semicolon

    found = Report()
    semicolon.read(shown, lines, found)
    try:
        filled = {start + 1 for start, *_ in semicolon.missing_ids(lines)}
    except _Unbalanced:
        filled = set()  # said at its line, as ids reads the file
    for problem in found.errors:
        short = "run 'deckbuild ids'" in problem.message and problem.line in filled
        if problem.message.startswith(("expected ", "missing header", "header ")) and not short:
            report.error(problem.path, problem.line, problem.message)


def replace_unchanged(path: Path, old: bytes, before: os.stat_result, new: bytes) -> None:
    """Replace `path` by `new` in one rename, keeping its mode, only if it still holds `old`."""
    fd, tmp = tempfile.mkstemp(prefix=".deckbuild-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(new)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, stat.S_IMODE(before.st_mode))
        # Right before the rename: an editor that saved meanwhile keeps its text.
        now = path.stat()
        if (now.st_mtime_ns, now.st_size) != (before.st_mtime_ns, before.st_size) or path.read_bytes() != old:
            raise SourceChanged(str(path))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
