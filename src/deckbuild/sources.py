"""Find deck sources on disk, decode them, and tell which reader each one needs."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from deckbuild.errors import Report

LOCK_NAME = "deckbuild.lock"
# Files that live in deck folders without being card sources.
MEDIA_SUFFIXES = frozenset(
    [
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".svg",
        ".webp",
        ".bmp",
        ".mp3",
        ".ogg",
        ".wav",
        ".m4a",
        ".mp4",
        ".webm",
    ]
)
NOT_SOURCES = frozenset({LOCK_NAME, "README.md", "README"})


@dataclass(frozen=True, eq=False)
class SourceFile:
    """One source file, where it sits in the deck tree and which package it goes to."""

    path: Path
    root: Path
    deck: str
    # The deck whose package this file goes to: the built folder's deck, or its top-level deck.
    package_deck: str

    @cached_property
    def package(self) -> str:
        return package_slug(self.package_deck)

    @cached_property
    def display(self) -> str:
        return display_path(self.path)

    @cached_property
    def tag(self) -> str:
        """Return the tag naming this file on every card it holds."""
        return "source::" + "_".join(self.path.stem.split())

    @cached_property
    def origin(self) -> str:
        """Return the path relative to the deck root, as the lock file names it."""
        return self.path.relative_to(self.root).as_posix()


def display_path(path: Path) -> str:
    """Show `path` relative to the working directory when it lies below it."""
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return path.as_posix()


def find_root(path: Path) -> Path:
    """Return the deck tree root: the nearest folder upward holding a lock, else PATH's folder."""
    start = path if path.is_dir() else path.parent
    for folder in (start, *start.parents):
        if (folder / LOCK_NAME).is_file():
            return folder
    return start


def deck_name(root: Path, folder: Path) -> str:
    """Name the Anki deck of `folder`: its path below the root, joined with '::'."""
    parts = folder.relative_to(root).parts
    return "::".join(parts) if parts else root.name


def package_slug(deck: str) -> str:
    """Turn a deck name into a file name for its package."""
    slug = re.sub(r"[^\w.\- ]+", "_", deck.replace("::", "-")).strip(" ._")
    return slug or "deck"


def is_source_name(name: str) -> bool:
    """Tell whether a file in a deck folder is meant as a card source."""
    return (
        not name.startswith(".")
        and name not in NOT_SOURCES
        and Path(name).suffix.lower() not in MEDIA_SUFFIXES
    )


def _walk(folder: Path) -> Iterable[Path]:
    # Sorted so that output never depends on directory order; links to folders are not
    # followed, which also keeps a symlink loop from recursing forever.
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(Path(entry.path))
        elif is_source_name(entry.name):
            yield Path(entry.path)


def discover(paths: Iterable[Path], report: Report) -> list[SourceFile]:
    """List every source below `paths`, in a stable order, each once."""
    found: dict[Path, SourceFile] = {}
    for given in paths:
        path = Path(os.path.abspath(given))
        if not path.exists() and not path.is_symlink():
            report.error(display_path(path), 0, "no such file or folder; check the path")
            continue
        root = find_root(path)
        if path.is_dir():
            files = list(_walk(path))
            if not files:
                report.error(
                    display_path(path),
                    0,
                    "no deck sources in this folder; add a Question;Answer;UUID file or a quiz page",
                )
        else:
            files = [path]
        for file in files:
            folder = file.parent
            anchor = path if path.is_dir() else folder
            if anchor == root and folder != root:
                anchor = root / folder.relative_to(root).parts[0]
            found.setdefault(
                file,
                SourceFile(file, root, deck_name(root, folder), deck_name(root, anchor)),
            )
    return [found[p] for p in sorted(found)]


def decode(source: SourceFile, report: Report) -> list[str] | None:
    """Read a source as lines of text, or record why it cannot be read."""
    shown = source.display
    try:
        data = source.path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno == 40:  # ELOOP
            reason = "symbolic link loop"
        report.error(shown, 1, f"cannot read: {reason}; fix or remove the file")
        return None
    for bom, codec in ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if data.startswith(bom):
            try:
                text = data[2:].decode(codec)
            except UnicodeDecodeError:
                break
            report.warn(shown, 1, "UTF-16 text; read as such; save the file as UTF-8")
            return _lines(text, shown, report)
    if b"\x00" in data[:8192]:
        report.error(shown, 1, "binary file, not text; move it out of the deck folder")
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            report.error(shown, line, "not UTF-8 text; save the file as UTF-8")
            return None
        report.warn(shown, line, "not UTF-8; read as Windows-1252 (cp1252); save the file as UTF-8")
    return _lines(text, shown, report)


def _lines(text: str, shown: str, report: Report) -> list[str] | None:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        report.error(shown, 1, "empty file; add cards or remove the file")
        return None
    return text.split("\n")


def detect(lines: list[str]) -> str | None:
    """Tell a file's format by its content: the name of the reader that reads it, or None."""
    from deckbuild.readers import detect as detect_format

    found = detect_format(lines)
    return None if found is None else found.name
