"""Rebuild after rows were edited in place: patch the last build's packages, not remake them.

A rebuild whose only changes since the last clean build are rows of `Question;Answer;UUID`
sections edited in place (each row on its line, with its UUID, in the same file) renders just
those rows, and writes each package they are in by copying every other note and card row from
the one the last build wrote, ids moved on, in SQLite itself. The last build's warnings about
files not edited are told again. Anything else (a row added, removed or moved, a header, a new
file, any other problem or note in the last build, the lock or a package changed since) is built
in full: `rebuild` answers None and has written nothing. The bytes are those a full build
writes; tests hold the two paths to it, edit by edit.
"""

from __future__ import annotations

import base64
import hashlib
import json
import marshal
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deckbuild import cache
from deckbuild.errors import DeckbuildError, Report
from deckbuild.lock import Entry, Lock
from deckbuild.progress import QUIET, Progress
from deckbuild.record import BuildResult, _sha256, _stat, still_linked
from deckbuild.sources import LOCK_NAME, SourceFile, decode, discover, read_regular

if TYPE_CHECKING:
    from deckbuild.package import NoteData, Shell
    from deckbuild.workers import Helpers

# What the last clean build leaves for the next one to patch from (`state`): its record, and more.
_BASE: cache.Shape = {
    # Every file its fingerprint hashed, as it left them, and how (record._fingerprint).
    "files": [[str, str]],
    # Each package: where, its SHA-256, what the cache knows its empty collection by.
    "packages": [[str, str, str]],
    "inputs": [[str, int, int]],
    "missing": [str],
    "linked": [[str, str]],
    "counts": {str: int},
    "problems": [[str, int, str, str]],
    "notes": [str],
}
# At most this many rows edited, in at most this many files: past that, a build is built in full.
MAX_ROWS = 64
MAX_FILES = 8
# The one note told of a file as it reads (`readers.quizpage`), whatever else a build did.
_INFERRED = re.compile(r"(.+): \d+ of \d+ quiz answers inferred from the explanations")
# A row edited: its file, line, UUID, question and answer, and its signature before and now.
_Row = tuple[SourceFile, int, str, str, str, str, str]


class _NotAnEdit(Exception):
    """What this build changed is more than rows edited in place: build it in full."""


def base_key(paths: list[Path], options: list[Any]) -> str:
    """Name what the next build of these paths with these options patches from."""
    return cache.key("patch", json.dumps([str(p) for p in paths] + options))


def state(seen: dict[Path, bytes], result: BuildResult, record: dict[str, Any]) -> dict[str, Any]:
    """Return what the next build needs to patch this one's packages: its `record`, and more.

    `seen` is how its fingerprint hashed each file it read; each package gains its empty
    collection's key.
    """
    packages = [[p, digest, result.shells.get(Path(p), "")] for p, digest in record["packages"]]
    return {**record, "files": [[str(p), own.hex()] for p, own in seen.items()], "packages": packages}


def rebuild(
    store: cache.Cache,
    base: str,
    paths: list[Path],
    now: int,
    seen: dict[Path, bytes],
    jobs: int,
    report: Report,
    progress: Progress = QUIET,
) -> BuildResult | None:
    """Build by patching the last clean build's packages, when only rows were edited in place.

    `seen` is what the build's fingerprint hashed of each file. Return None, having written
    nothing, for any build that is not such an edit.
    """
    state = store.get_many({base: _BASE}).get(base)
    if state is None:
        return None
    try:
        return _Edit(store, state, paths, now, seen, report, progress).run(jobs)
    except _NotAnEdit:
        return None


class _Edit:
    """One build that patches: its edited rows, their lock entries, the packages they are in."""

    def __init__(
        self,
        store: cache.Cache,
        state: dict[str, Any],
        paths: list[Path],
        now: int,
        seen: dict[Path, bytes],
        report: Report,
        progress: Progress,
    ) -> None:
        self.store, self.state, self.paths, self.now, self.seen = store, state, paths, now, seen
        self.report, self.progress = report, progress
        # Every file as the last build left it (its fingerprint); each file edited, as read now.
        self.before = {Path(p): bytes.fromhex(own) for p, own in state["files"]}
        self.files: dict[Path, bytes] = {}

    def run(self, jobs: int) -> BuildResult:
        from deckbuild.build import start_helpers

        self.progress.stage("reading")
        rows = [row for source in self.changed_files() for row in self.edited_rows(source)]
        if not rows or len(rows) > MAX_ROWS:
            raise _NotAnEdit
        self.progress.stage("rendering")
        with start_helpers(jobs) as helping:
            helping.expect_few()
            return self.finish(rows, helping)

    def changed_files(self) -> list[SourceFile]:
        """Return the files changed since the last build; raise unless all else is as it left it."""
        if list(self.before) != list(self.seen):
            raise _NotAnEdit  # a file added, removed or renamed
        changed = [p for p, own in self.seen.items() if self.before[p] != own]
        if not changed or len(changed) > MAX_FILES:
            raise _NotAnEdit
        try:
            if any(_sha256(Path(p)) != digest for p, digest, _ in self.state["packages"]):
                raise _NotAnEdit
            if any(_stat(Path(p)) != (size, mtime) for p, size, mtime in self.state["inputs"]):
                raise _NotAnEdit
        except OSError:
            raise _NotAnEdit from None
        if any(os.path.lexists(p) for p in self.state["missing"]):
            raise _NotAnEdit  # an image the last build did not find: the cards naming it show it now
        if not still_linked(self.state["linked"]):
            raise _NotAnEdit  # a link retargeted: the cards showing an image through it show another
        found = Report()
        sources = {source.path: source for source in discover(self.paths, found)}
        if found.problems or any(p not in sources for p in changed):
            raise _NotAnEdit  # a lock, a note type file, an image: only sources are edited
        self.tell_again({s.display for p, s in sources.items() if p not in changed})
        return [sources[p] for p in changed]

    def tell_again(self, unchanged: set[str]) -> None:
        """Raise unless a full build would tell the last build's warnings and notes again.

        Those a full build tells again are the ones its reading and rendering find in a file it
        reads as it was: a warning at a line of such a file, a note that answers were inferred
        on such a page. Any other (an error, a file edited now, new ids, a move, a retired
        card, a skipped file) tells of this build's changes or of more than one file.
        """
        for path, line, severity, _ in self.state["problems"]:
            if severity != "warning" or line < 1 or path not in unchanged:
                raise _NotAnEdit
        for note in self.state["notes"]:
            told = _INFERRED.fullmatch(note)
            if told is None or told[1] not in unchanged:
                raise _NotAnEdit

    def edited_rows(self, source: SourceFile) -> list[_Row]:
        """Return the rows of a file edited in place; raise if anything else in it changed."""
        from deckbuild.memo import Memo

        # The file as the last build read it, kept whole (`Memo.keep_file`): the one its
        # fingerprint hashed, or nothing is patched.
        kept = self.store.stored_file(Memo.file_group(source.path))
        if kept is None or b"\x03" + hashlib.sha256(kept).digest() != self.before[source.path]:
            raise _NotAnEdit
        try:
            data = read_regular(source.path)
        except OSError:
            raise _NotAnEdit from None
        if b"\x03" + hashlib.sha256(data).digest() != self.seen[source.path]:
            raise _NotAnEdit  # saved again since the build began
        found = Report()
        lines, old = decode(source, found, data), decode(source, found, kept)
        if lines is None or old is None or found.problems or len(lines) != len(old):
            raise _NotAnEdit
        self.files[source.path] = data
        at = [n for n, (was, now) in enumerate(zip(old, lines, strict=True)) if was != now]
        if len(at) > MAX_ROWS:
            raise _NotAnEdit
        # Only rows on lines that no blank line comes just before: a header is read only after
        # one, so the file's sections (and its quoted fields, with no quote in a changed line)
        # stay as they were, and an edited row is read in the columns it was read in before.
        for n in at:
            then, now = old[n], lines[n]
            if (
                n == 0
                or not old[n - 1].strip()
                or not lines[n - 1].strip()
                or not then.strip()
                or not now.strip()
            ):
                raise _NotAnEdit
            if '"' in then or '"' in now or then.count(";") != now.count(";"):
                raise _NotAnEdit
        plain = _plain_rows(source, lines)
        out: list[_Row] = []
        for n in at:
            if n + 1 not in plain:
                raise _NotAnEdit
            (question_at, answer_at, uuid_at), fields = plain[n + 1]
            was = old[n].split(";")
            uuid, question, answer = (fields[i].strip() for i in (uuid_at, question_at, answer_at))
            if uuid != was[uuid_at].strip() or not _read_alone(lines[n], uuid, question, answer):
                raise _NotAnEdit
            sig = _signature(uuid, was[question_at].strip(), was[answer_at].strip())
            out.append((source, n + 1, uuid, question, answer, sig, _signature(uuid, question, answer)))
        return out

    def finish(self, rows: list[_Row], helping: Helpers) -> BuildResult:
        """Render the edited rows, stamp them in their locks, patch their packages, commit."""
        from deckbuild.atomic import checkpoint, commit, discard
        from deckbuild.build import Pending, _stage, _tags_of, _units, _whole_hash
        from deckbuild.memo import Memo, unpack
        from deckbuild.notetype import NOTE_TYPE_ID
        from deckbuild.package import NoteData, patch_package
        from deckbuild.readers import RawCard

        pending = [
            Pending(source, RawCard(line, "basic", {"id": uuid, "question": q, "answer": a}), sig)
            for source, line, uuid, q, a, _, sig in rows
        ]
        units, starts = _units(pending, True)
        locks: dict[Path, Lock] = {}
        previous: dict[str, tuple[list[tuple[str, bytes]], Shell]] = {}

        def meanwhile() -> None:
            # While the helper renders: the locks, the packages to patch and their empty collections.
            for source in dict.fromkeys(p.source for p in pending):
                if source.root not in locks:
                    locks[source.root] = Lock.load(source.root / LOCK_NAME)
                if source.package not in previous:
                    previous[source.package] = self.previous(source.package)

        settled: list[Any] = [None] * len(pending)
        try:
            for index, value in helping.stream(units, len(pending), meanwhile=meanwhile):
                settled[starts[index] : starts[index + 1]] = (
                    marshal.loads(value) if type(value) is bytes else value
                )
        except DeckbuildError:  # a lock that cannot be read: the full build tells why
            raise _NotAnEdit from None
        notes: dict[str, list[NoteData]] = {}
        memo: dict[str, tuple[dict[str, bytes], list[str]]] = {}
        for (source, _, uuid, _, _, then, sig), done in zip(rows, settled, strict=True):
            if isinstance(done, str):
                raise _NotAnEdit  # invalid: the full build tells why
            card_id, card_tags, extra, nid, packed, keeps = done
            rendered, tags = unpack(packed), tuple(_tags_of(source, "basic", {}))
            if (card_id, tuple(card_tags), extra, nid) != (
                uuid,
                tags,
                {"origin": source.origin},
                NOTE_TYPE_ID,
            ):
                raise _NotAnEdit
            if rendered.problems or rendered.media:
                raise _NotAnEdit  # a problem the full build tells (and tells again every build)
            lock = locks[source.root]
            mod = self.stamp(lock, uuid, source.origin, rendered.fields, rendered.digest, tags, _whole_hash)
            notes.setdefault(source.package, []).append(
                NoteData(uuid, rendered.fields, tags, mod, rendered.digest, False, NOTE_TYPE_ID)
            )
            # The memo as a full build leaves it: the edited card's entry in, the row's old one out.
            new, dropped = memo.setdefault(Memo.group(source), ({}, []))
            if keeps:
                new[sig] = packed
            if then != sig:
                dropped.append(then)
        self.progress.stage("packaging")
        written: dict[Path, bytes] = {}
        for slug, changes in sorted(notes.items()):
            made = patch_package(*previous[slug], changes)
            if made is None:
                raise _NotAnEdit
            written[self.target(slug)] = made
        self.save(helping, memo)
        result = BuildResult(report=self.report)
        for target, digest, shell in self.state["packages"]:
            path = Path(target)
            result.packages.append(path)
            result.shells[path] = shell
            result.digests[path] = hashlib.sha256(written[path]).hexdigest() if path in written else digest
        result.inputs = [Path(p) for p, _, _ in self.state["inputs"]]
        result.missing = [Path(p) for p in self.state["missing"]]
        result.linked = [(Path(named), Path(target)) for named, target in self.state["linked"]]
        # Told only now that nothing can turn this into a build in full, which tells its own.
        for path, line, _, message in self.state["problems"]:
            self.report.warn(path, line, message)
        self.report.notes.extend(self.state["notes"])
        # What this build did, for -v and the progress line: the edited rows alone were read.
        for what, n in (
            ("files", len({row[0].path for row in rows})),
            ("read", len(rows)),
            ("rendered", len(rows)),
            ("written", len(written)),
            ("unchanged", len(self.state["packages"]) - len(written)),
            ("patched", len(rows)),
        ):
            self.progress.count(what, n)
        result.lock_changed = [lock.path for lock in locks.values() if lock.changed]
        counts = {**self.state["counts"], "rendered": len(rows)}
        counts.pop("unchanged", None)
        if unchanged := len(result.packages) - len(written):
            counts["unchanged"] = unchanged
        self.report.counts.update(counts)
        staged: list[tuple[Path, Path]] = []
        try:
            for path, data in written.items():
                staged.append((_stage(path, data), path))
            for lock in sorted(locks.values(), key=lambda k: k.path):
                text = lock.pending()
                if text is not None:
                    staged.append((_stage(lock.path, text.encode("utf-8")), lock.path))
            checkpoint("staged")
        except BaseException:
            discard([tmp for tmp, _ in staged])
            raise
        helping.stop()
        self.progress.stage("committing")
        commit(staged)
        checkpoint("committed")
        return result

    def save(self, helping: Helpers, memo: dict[str, tuple[dict[str, bytes], list[str]]]) -> None:
        """Store the edited cards' memo entries and the edited files, as `Memo.save` does."""
        from deckbuild.memo import Memo

        changes: list[cache.MemoChange] = [
            (g, None, new, dropped) for g, (new, dropped) in sorted(memo.items())
        ]
        files = [(Memo.file_group(path), data) for path, data in sorted(self.files.items())]
        if self.store.path is None or self.store.db is None:
            return
        if helping.free:  # stored by a helper while this process writes the packages
            args = (self.store.path, self.store.secret, changes, self.store.timeout, files)
            self.store.written(helping.submit(cache.Cache.write_memo, *args))
        else:
            self.store.update_memo(changes, files)

    def target(self, slug: str) -> Path:
        """Return where the last build wrote the package `slug`."""
        for target, _, _ in self.state["packages"]:
            if Path(target).name == f"{slug}.apkg":
                return Path(target)
        raise _NotAnEdit

    def previous(self, slug: str) -> tuple[list[tuple[str, bytes]], Shell]:
        """Return the entries of the package the last build wrote for `slug`, and its empty collection."""
        from deckbuild.package import Shell, read_entries

        target = self.target(slug)
        digest, shell = next((d, s) for t, d, s in self.state["packages"] if Path(t) == target)
        try:
            data = target.read_bytes()
        except OSError:
            raise _NotAnEdit from None
        stored = self.store.get_many({shell: cache.SHELL_RECORD}).get(shell) if shell else None
        entries = read_entries(data)
        if hashlib.sha256(data).hexdigest() != digest or stored is None or entries is None:
            raise _NotAnEdit
        return entries, Shell(base64.b64decode(stored["db"]), stored["req"])

    def stamp(
        self,
        lock: Lock,
        uuid: str,
        origin: str,
        fields: list[str],
        digest: str,
        tags: tuple[str, ...],
        whole: Any,
    ) -> int:
        """Stamp an edited card in its lock as a full build does (`_Build.add_all`); return its mod."""
        known: Entry | None = lock.notes.get(uuid)
        if (
            known is None
            or known.origin != origin
            or known.notetype is not None
            or known.retired
            or known.kind
        ):
            raise _NotAnEdit
        if known.hash != digest and known.hash == whole(fields, tags):
            known.hash = digest  # hashed the old way: taken over, its mod kept (`_Build.rehash`)
            lock.changed.append(uuid)
        if known.hash == digest:
            return known.mod
        return lock.stamp("notes", uuid, digest, self.now, origin=origin, notetype=None)


def _signature(uuid: str, question: str, answer: str) -> str:
    # `memo.signature` of such a row's card, as `build._Known._plain` builds it too.
    return f"basic\x1eid\x1dquestion\x1danswer\x1e{uuid}\x1d{question}\x1d{answer}"


def _read_alone(line: str, uuid: str, question: str, answer: str) -> bool:
    """Tell whether a row's card is its three fields alone: the checks of `build._Known._plain`.

    No directive, cloze or answer to work out, a UUID, a signature `_signature` spells, and
    within the limits: the card a full build makes of the row, and the helper renders here.
    """
    from deckbuild.limits import joined_within_limits, suspect_lines

    if not uuid or "{{" in line or "[" in question or "\x1d" in line:
        return False
    return not suspect_lines([line]) or joined_within_limits(f"{uuid}\x1d{question}\x1d{answer}")


def _plain_rows(source: SourceFile, lines: list[str]) -> dict[int, tuple[tuple[int, int, int], list[str]]]:
    """Return every row of a file in a Question;Answer;UUID section, by line: its columns and fields.

    Empty when reading the file finds a problem: no row of it is patched.
    """
    from deckbuild.readers import semicolon

    rows: dict[int, tuple[tuple[int, int, int], list[str]]] = {}

    def known(columns: Any) -> Any:
        if columns.plain is None:
            return None
        plain = tuple(columns.plain)

        def take(line: int, text: str, fields: list[str]) -> bool:
            rows[line] = (plain, fields)
            return True

        return take

    found = Report()
    semicolon.read(source.display, lines, found, known)
    return {} if found.problems else rows
