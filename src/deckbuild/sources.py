"""Find deck sources on disk, decode them, and tell which reader each one needs."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from deckbuild.errors import DeckbuildError, Report
from deckbuild.resources import ran_out

LOCK_NAME = "deckbuild.lock"
# The note types kept from an imported deck (deckbuild.kept), in a deck folder or one above it.
KEPT_NAME = "notetypes.json"
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
NOT_SOURCES = frozenset({LOCK_NAME, "README.md", "README", KEPT_NAME})
# The largest source file read: far beyond any real deck file, small enough to hold in memory.
MAX_SOURCE_BYTES = 10 * 1024 * 1024
# Opened without waiting for a writer (a FIFO) and without becoming a terminal's controller.
_OPEN_FLAGS = os.O_RDONLY | sum(getattr(os, flag, 0) for flag in ("O_NONBLOCK", "O_NOCTTY", "O_CLOEXEC"))
_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


@dataclass(frozen=True, eq=False)
class SourceFile:
    """One source file, where it sits in the deck tree and which package it goes to."""

    path: Path
    root: Path
    deck: str
    # The deck whose package this file goes to: the built folder's deck, or its top-level deck.
    package_deck: str
    # Built on its own (a file named on the command line), its package is named after it too:
    # it holds only this file's cards, and must never replace the package of its whole deck.
    alone: bool = False

    @cached_property
    def package(self) -> str:
        slug = package_slug(self.package_deck)
        return f"{slug}-{package_slug(self.path.stem)}" if self.alone else slug

    @cached_property
    def display(self) -> str:
        return display_path(self.path)

    @cached_property
    def tag(self) -> str:
        """Return the tag naming this file on every card it holds."""
        # Composed (NFC), as Anki keeps tags: a name macOS wrote decomposed gives the same tag.
        return unicodedata.normalize("NFC", "source::" + "_".join(self.path.stem.split()))

    @cached_property
    def origin(self) -> str:
        """Return the path relative to the deck root, as the lock file names it."""
        return self.path.relative_to(self.root).as_posix()


class NotRegular(OSError):
    """A path that is not a regular file (a FIFO, a device, a socket…), so it is never read."""

    def __init__(self, kind: str) -> None:
        super().__init__(errno.EINVAL, f"not a regular file ({kind})")
        self.kind = kind

    def __str__(self) -> str:
        return str(self.strerror)


class TooLarge(OSError):
    """A file larger than the most deckbuild reads of it."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(errno.EFBIG, f"larger than {_mib(limit)}")
        self.size = size
        self.limit = limit


def file_kind(mode: int) -> str:
    """Name the kind of file a stat mode describes, as messages show it."""
    return next((name for test, name in _KINDS if test(mode)), "a special file")


def is_regular(path: Path) -> bool:
    """Tell whether `path` (after links) is a regular file: safe to open and read to its end."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def changed_stamp(status: os.stat_result) -> int:
    """Sum up when a file last changed, in a way no copy or tool can set back.

    The modification time alone can be set back (`cp -p`, `touch -d`, a checkout keeping times),
    so an older image of the same size would look unchanged; the status-change time cannot be
    set, and it moves with every write.
    """
    return hash((status.st_mtime_ns, status.st_ctime_ns, status.st_ino, status.st_dev)) & (2**62 - 1)


def read_regular(path: Path, limit: int | None = MAX_SOURCE_BYTES) -> bytes:
    """Read a regular file, at most `limit` bytes; raise NotRegular or TooLarge instead of hanging.

    The kind is checked before opening (a device is never opened) and again on the open file,
    so a file swapped for a FIFO in between is caught; the read stops past `limit` however
    much the file grows meanwhile.
    """
    fd, _ = _open_regular(path, limit)
    try:
        chunks: list[bytes] = []
        total = 0
        while chunk := os.read(fd, 1 << 20 if limit is None else min(1 << 20, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if limit is not None and total > limit:
                raise TooLarge(total, limit)
        return b"".join(chunks)
    finally:
        os.close(fd)


def digest_regular(path: Path, limit: int = MAX_SOURCE_BYTES) -> bytes:
    """Return the SHA-256 of what read_regular would read, raising as it does, a piece at a time.

    Never holding the whole file spares the memory it would take (and the time to map it).
    """
    fd, size = _open_regular(path, limit)
    try:
        digest, total = hashlib.sha256(), 0
        buffer = bytearray(min(size + 1, 1 << 18))
        view = memoryview(buffer)
        while got := os.readv(fd, [buffer]):
            total += got
            if total > limit:
                raise TooLarge(total, limit)
            digest.update(view[:got])
        return digest.digest()
    finally:
        os.close(fd)


def _open_regular(path: Path, limit: int | None) -> tuple[int, int]:
    """Open a regular file of at most `limit` bytes to read, checked before and after opening.

    Return its descriptor and its size when opened.
    """
    before = os.stat(path).st_mode
    if not stat.S_ISREG(before):
        raise NotRegular(file_kind(before))
    fd = os.open(path, _OPEN_FLAGS)
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            raise NotRegular(file_kind(opened.st_mode))
        if limit is not None and opened.st_size > limit:
            raise TooLarge(opened.st_size, limit)
    except BaseException:
        os.close(fd)
        raise
    return fd, opened.st_size


def read_at_most(path: Path, limit: int = MAX_SOURCE_BYTES) -> bytes:
    """Read whatever `path` is (a pipe too, as `<(…)` gives), but never more than `limit` bytes."""
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(len(data), limit)
    return data


def skip_reason(path: Path, root: Path) -> str | None:
    """Say why a file in a deck tree is not read as a source, or None when it is read.

    Only regular files inside the deck tree are read; a broken link or a loop is left to
    reading, which reports it as an error.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if not stat.S_ISREG(mode):
        kind = file_kind(mode)
        if stat.S_ISDIR(mode):
            return "a link to a folder, skipped (links to folders are not followed); move the folder in"
        return f"not a regular file ({kind}), skipped; move it out of the deck folder"
    if path.is_symlink():
        target = path.resolve()
        if not target.is_relative_to(root.resolve()):
            return (
                f"a link to a file outside the deck tree ({target.as_posix()}), skipped; "
                "copy the file into the deck folder"
            )
        # A source of the tree is read where it is: here its cards would come a second time
        # (under other ids, on a page). One kept where no build looks (a hidden folder) is read
        # through its link alone.
        inside = target.relative_to(root.resolve()).parts
        if is_source_name(target.name) and not any(part.startswith(".") for part in inside):
            return (
                f"a link to a file of the deck tree ({display_path(target)}), skipped (links are not "
                "followed; its cards are read where it is); move the file here instead"
            )
    return None


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


def canonical(paths: Iterable[Path]) -> list[Path]:
    """Return the paths given, absolute, each deck tree in them spelled one way.

    A path through a link to a folder of a deck tree is read as part of that tree: along the
    link alone no lock is found, and the link's folder became a second root (a lock inside the
    tree, a deck named after the link). One tree named two ways at once (`decks/A`, and `alias/B`
    where `alias` links to `decks`) is spelled as the first of the ways in sorted order, not read
    as two trees holding every card twice.
    """
    found: list[tuple[Path, Path]] = []
    for given in paths:
        # A `..` goes up from where the links before it lead, as the system takes it.
        path = (
            _real(Path(os.path.join(os.getcwd(), given)))
            if ".." in Path(given).parts
            else Path(os.path.abspath(given))
        )
        root = find_root(path)
        if not (root / LOCK_NAME).is_file():
            # A link to a folder on the way, or the path a link to a file: the tree it leads into.
            for real in (_real(path), Path(os.path.realpath(path))):
                if real != path and ((real_root := find_root(real)) / LOCK_NAME).is_file():
                    path, root = real, real_root
                    break
        found.append((path, root))
    spellings: dict[Path, Path] = {}
    for _, root in found:
        key = root.resolve()
        spellings[key] = min(spellings.get(key, root), root)
    return [spellings[root.resolve()] / path.relative_to(root) for path, root in found]


def _real(path: Path) -> Path:
    """Return a path with every link to a folder on the way followed (a link to a file kept)."""
    if path.is_dir():
        return Path(os.path.realpath(path))
    return Path(os.path.realpath(path.parent)) / path.name


def check_outdir(outdir: Path, roots: Iterable[Path]) -> None:
    """Refuse an output folder a deck tree would read: its packages would be taken for sources."""
    where = Path(os.path.realpath(outdir))  # a `..` after a link goes up from where it leads
    for root in roots:
        top = root.resolve()
        if where.is_relative_to(top) and not any(p.startswith(".") for p in where.relative_to(top).parts):
            raise DeckbuildError(
                f"the output folder {display_path(outdir)} is inside the deck tree {display_path(root)}, "
                "where every file is read as a source; build into a folder outside it (-o ../dist)"
            )


def source_of(given: Path, root: Path, file: Path) -> SourceFile:
    """Describe a file of the deck tree at `root` as found below `given`, a path built."""
    folder = file.parent
    anchor = given if given.is_dir() else folder
    if anchor == root and folder != root:
        anchor = root / folder.relative_to(root).parts[0]
    return SourceFile(file, root, deck_name(root, folder), deck_name(root, anchor), not given.is_dir())


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


def _walk(folder: Path, report: Report, top: bool = True) -> Iterable[Path]:
    # Sorted so that output never depends on directory order; links to folders are not
    # followed, which also keeps a symlink loop from recursing forever.
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError as exc:
        if ran_out(exc):
            raise
        # Its sources would go missing without a word, and their cards be retired.
        reason = exc.strerror or str(exc)
        message = f"cannot list folder: {reason}; fix its permissions or remove it"
        report.error(display_path(folder), 0, message)
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(Path(entry.path), report, top=False)
        elif is_source_name(entry.name):
            yield Path(entry.path)
        elif entry.name == LOCK_NAME and not top:
            # A deck root of its own inside this tree (a build of one of its files made it):
            # its cards would take other ids here, and learners get them twice.
            report.error(
                display_path(Path(entry.path)), 0,
                f"a lock inside the deck tree: {display_path(folder)} was built as a deck tree of its own; "
                "build it alone, or delete this lock (its cards then get the ids of the larger tree)",
            )  # fmt: skip


def discover(paths: Iterable[Path], report: Report, misnamed: bool = False) -> list[SourceFile]:
    """List every source below `paths`, in a stable order, each once.

    A file whose name would tag its cards with an empty part is left out, with an error, unless
    `misnamed`: read for its ids alone, its cards' tags do not matter.
    """
    found: dict[Path, SourceFile] = {}
    # The widest path first: a file under two of them goes to the package of the wider one,
    # whichever order they were given in (a package of part of a deck never replaces the whole).
    for path in sorted(canonical(paths), key=lambda p: len(p.parts)):
        if not path.exists() and not path.is_symlink():
            report.error(display_path(path), 0, "no such file or folder; check the path")
            continue
        root = find_root(path)
        if path.is_dir():
            files = []
            for file in _walk(path, report):
                if reason := skip_reason(file, root):
                    report.warn(display_path(file), 0, reason)
                else:
                    files.append(file)
            if not files:
                report.error(
                    display_path(path),
                    0,
                    "no deck sources in this folder; add a Question;Answer;UUID file or a quiz page",
                )
        elif (why := _unread(path, root)) is not None:
            # Named on its own, a file is read only as a build of its tree would read it.
            report.error(display_path(path), 0, why)
            files = []
        else:
            files = [path]
        for file in files:
            found.setdefault(
                file,
                source_of(path, root, file),
            )
    sources = [found[p] for p in sorted(found)]
    _check_deck_names(sources, report)
    _check_package_names(sources, report)
    return [source for source in sources if misnamed or _tag_named(source, report)]


def _unread(path: Path, root: Path) -> str | None:
    """Say why a build of its deck tree would not read a file given on its own, or None."""
    inside = path.relative_to(root).parts if path.is_relative_to(root) else (path.name,)
    if any(part.startswith(".") for part in inside) or not is_source_name(path.name):
        return (
            "not read as a deck source (hidden files and folders, README files, images and the lock "
            "never are); rename it, or build its folder"
        )
    if not path.is_symlink() or not path.is_file():
        return None  # a FIFO or a device is told of as it is read (sources.decode)
    reason = skip_reason(path, root)
    return None if reason is None else reason.replace(", skipped", ", not read")


def _check_package_names(sources: list[SourceFile], report: Report) -> None:
    """Refuse two decks whose packages would take one file name: one would replace the other.

    A package's name keeps only letters, digits, `.`, `-` and blanks of its deck's name, so
    `A+B` and `A_B`, or the subfolder `X/Y` built alone and the top-level folder `X-Y`, could meet.
    """
    taken: dict[str, tuple[str, str]] = {}  # package name: the deck it holds, and the file built alone
    tops: dict[Path, dict[str, str]] = {}  # per deck root: the package name of each top-level deck
    for source in sources:
        own = (source.package_deck, source.path.name if source.alone else "")
        # (Names differing in case alone are decks Anki takes for one: told by _check_deck_names.)
        other = taken.setdefault(source.package, own)
        if other[0] != own[0]:
            why = f"the package of deck {other[0]}"
        else:
            if source.root not in tops:
                tops[source.root] = {package_slug(deck): deck for deck in _top_decks(source.root)}
            deck = tops[source.root].get(source.package)
            if deck is None or deck == source.package_deck:
                continue
            why = f"the package of deck {deck}, which it would replace"
        report.error(
            source.display, 1,
            f"its package {source.package}.apkg is also {why}; rename a folder so that the two differ",
        )  # fmt: skip


def _top_decks(root: Path) -> list[str]:
    """Return the decks of a tree that each make a package of their own: its top-level folders."""
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return []
    return [name for name in names if not name.startswith(".") and (root / name).is_dir()]


def _tag_named(source: SourceFile, report: Report) -> bool:
    """Refuse a file whose name would tag its cards with an empty part, as `x::.txt` would.

    Anki names an empty part of a tag "blank": its cards are not read, and the file is named
    once, rather than each of its cards told to take a '::' out of a tag it does not hold.
    """
    if "" not in source.tag.split("::"):
        return True
    report.error(
        source.display, 1,
        f"file name {source.path.name!r} would tag its cards {source.tag!r}, with an empty part "
        "between '::' (Anki would name it 'blank'); rename the file",
    )  # fmt: skip
    return False


def _check_deck_names(sources: list[SourceFile], report: Report) -> None:
    """Refuse folders whose deck names Anki would merge or rename on import.

    Anki compares deck names without case and trims the blanks around each part, and `::`
    separates parts: `A` and `a`, ` A ` and `A`, `x::y` and `x/y` would all become one deck.
    """
    seen: dict[str, tuple[Path, Path]] = {}
    first: dict[Path, SourceFile] = {}
    for s in sources:
        first.setdefault(s.path.parent, s)
    for folder, source in sorted(first.items()):
        # Files right in the root are the deck named after it, which a folder may match too.
        parts = folder.relative_to(source.root).parts or (source.root.name,)
        bad = next((p for p in parts if "::" in p or p != p.strip() or not p.strip()), None)
        if bad is not None:
            report.error(
                source.display, 1,
                f"folder name {bad!r} would not be its own deck in Anki ('::' splits deck names, blanks "
                "around a name are dropped); rename the folder",
            )  # fmt: skip
            continue
        # Anki keeps text in Unicode's composed form (NFC): a name written decomposed (as macOS
        # writes file names) is the same deck as one written composed.
        key = unicodedata.normalize("NFC", "::".join(parts)).casefold()
        root, other = seen.setdefault(key, (source.root, folder))
        if other != folder:
            # Two deck trees built at once may each hold a folder of the same name.
            name = deck_name(root, other)
            why = (
                f"is also the deck of {display_path(other)}, in another deck tree"
                if name == source.deck
                else f"is {name} to Anki, which ignores case"
                if unicodedata.normalize("NFC", name) != unicodedata.normalize("NFC", source.deck)
                else f"is {name} to Anki, which keeps accented letters composed (NFC): one of the two "
                "names is written decomposed"
            )
            report.error(source.display, 1, f"deck {source.deck} {why}; rename one of the two folders")


def decode(source: SourceFile, report: Report, data: bytes | None = None) -> list[str] | None:
    """Read a source as lines of text, or record why it cannot be read; `data`: its bytes, read already."""
    shown = source.display
    try:
        if data is None:
            data = read_regular(source.path)
    except NotRegular as exc:
        # Named on the command line, or swapped in after the folder was listed.
        report.warn(shown, 0, f"not a regular file ({exc.kind}), skipped; move it out of the deck folder")
        return None
    except TooLarge as exc:
        report.error(
            shown,
            1,
            f"file too large ({_mib(exc.size)}; a source may have at most {_mib(exc.limit)}); "
            "split it into smaller files",
        )
        return None
    except OSError as exc:
        if ran_out(exc):
            raise
        report.error(shown, 1, f"cannot read: {_reason(source.path, exc)}; fix or remove the file")
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
        if (wide := utf16_without_bom(data)) is not None:
            try:
                text = data.decode(wide)
            except UnicodeDecodeError:
                pass
            else:
                report.warn(
                    shown, 1, "UTF-16 text without a byte-order mark; read as such; save the file as UTF-8"
                )
                return _lines(text, shown, report)
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


def utf16_without_bom(data: bytes) -> str | None:
    """Name the UTF-16 a text of mostly Latin letters is in, told by where its zero bytes fall."""
    head = data[:8192]
    if len(data) % 2:
        return None
    high, low = head[1::2].count(0), head[0::2].count(0)
    if high * 2 >= len(head) // 2 and not low:
        return "utf-16-le"
    if low * 2 >= len(head) // 2 and not high:
        return "utf-16-be"
    return None


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB".replace(".0 MiB", " MiB")


def _reason(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symbolic link loop"
    if exc.errno == errno.ENOENT:
        if path.is_symlink():
            return f"broken symbolic link (to {os.readlink(path)})"
        return "the file disappeared while the build ran"
    return exc.strerror or str(exc)


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
