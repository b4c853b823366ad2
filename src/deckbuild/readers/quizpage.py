"""Read text copied from quiz web pages: recall cards, quizzes, open prompts, Practice, Challenges.

The copied text has no markup, so items are found by the lines the page always prints
("Click to reveal answer", the verdict line, "You got /N concepts.", numbered Practice
questions, a challenge's "level + time remaining" line) and read backwards and forwards
from there. The page's headings ("Recall & Review", "Practice", "Challenge - N Problems",
"Jump into concepts…") start sections, so a second page in the same file starts afresh.
Blank lines carry no meaning (some browsers copy a blank line between every line).

Every input line is accounted for (`Page.uses`): it went into a card, it was page chrome or
blank, or it is named in a warning. Nothing is dropped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import pairwise

from deckbuild.errors import Report
from deckbuild.readers import INVISIBLE, RawCard, visible
from deckbuild.readers.pycode import MAX_RESTORE_CHARS, restore

# How deckbuild.readers recognises a page without importing this module: section and chrome
# lines that only quiz pages carry, any line of the text (stripped). Surely when one is such a
# line whole, likely when one holds such words. Keep it a literal.
DETECT = {
    "what": "a quiz page",
    "order": 20,
    # In any case, and spaced as the reader takes the marks (its regexes below): a page the
    # reader reads is never refused as no deck source.
    "any_line": (
        r"(?i)^(?:Recall\s*&\s*Review|Click\s+to\s+reveal\s+answer|(?:[✗✓✔✘×❌✅✖✕☑❎]\ufe0f?)?\s*(?:In)?correct!?"
        r"|You\s+got\s*\d*\s*/\s*\d+\s*concepts?\.?|Attempts:?|Challenge\s*-\s*\d+\s+Problems?"
        r"|Practice(?:\s+(?:questions?|problems?|exercises?))?"
        r"|(?:beginner|intermediate|advanced|expert)\s*\d{1,2}:\d\d\s*remaining)$"
    ),
    "likely_any_line": (
        r"(?i)Recall & Review|Click to reveal answer|✗ Incorrect|✓ Correct|You got\s*/|Attempts:"
        r"|^Challenge\s*-\s*\d+\s+Problems?$|^Practice$"
    ),
}

LEVELS = ("beginner", "intermediate", "advanced", "expert")
DIFFICULTIES = ("easy", "medium", "hard")
# What one line of the input became (besides "card <line>", the card it went into).
CHROME, BLANK, WARNED = "chrome", "blank", "warning"
# The page prints this many common mistakes; the last Practice item of a section, which no
# next item bounds, keeps as many as the section's other items do, or this many.
USUAL_MISTAKES = 3
# The language of code that names none: the site's code is Python.
DEFAULT_LANGUAGE = "python"

# A recall card's level line: the page's levels, or the difficulties its Practice section uses.
_LEVEL_RE = re.compile(rf"^({'|'.join(LEVELS + DIFFICULTIES)})$", re.IGNORECASE)
_REVEAL_RE = re.compile(r"^click\s+to\s+reveal\s+answer$", re.IGNORECASE)
_VERDICT_RE = re.compile(r"^(?:[✗✓✔✘×❌✅✖✕☑❎]\ufe0f?)?\s*(?:in)?correct!?$", re.IGNORECASE)
_CONCEPTS_RE = re.compile(r"^you\s+got\s*\d*\s*/\s*(\d+)\s*concepts?\.?$", re.IGNORECASE)
# An option's letter and text, as the pages lay them out. Labelled: "A. Text", "A) Text",
# "(A) Text", "[A] Text", "A: Text", "A - Text", the letter in either case ("a) text"; a small
# letter and a dot or colon want a space after them, so that "e.g. this" is no option E).
_LABELLED_OPTION_RE = re.compile(
    r"^(?:[(\[]([A-Fa-f])[)\]]\s*|([A-F])[.):]\s*|([a-f])\)\s*|([a-f])[.:]\s+|([A-Fa-f])\s+[-–—]\s+)(\S.*)$"
)
# Unlabelled: "A Text", or glued "AText" as the quiz's buttons copy, the text starting with a
# capital, a digit or a sign ...
_GLUED_OPTION_RE = re.compile(r"^([A-F])(?:\s+|(?=[A-Z0-9\[(\"'$\\-]))(\S.*)$")
# ... or with a small letter ("Asoftmax"): any word does that ("Attempts:"), so such a line is an
# option only in a run of options from A, and never when it asks or announces ("…?", "…:").
_GLUED_SMALL_RE = re.compile(r"^([A-F])([a-z].*[^?:])$")
_PAGE_START_RE = re.compile(r"^(jump\s+into\s+concepts.*|recall\s*&\s*review)$", re.IGNORECASE)
# The Practice section's heading, as the pages print it or a copy words it ("Practice Questions").
_PRACTICE_RE = re.compile(r"^practice(?:\s+(?:questions?|problems?|exercises?))?$", re.IGNORECASE)
_COUNTER_RE = re.compile(r"^\((\d+)\s*/\s*(\d+)\)$")
_NUMBERED_RE = re.compile(r"^(\d+)\.\s+(.*)$")
_DIFFICULTY_RE = re.compile(r"^(easy|medium|hard)$", re.IGNORECASE)
_STEP_RE = re.compile(r"^step\s+(\d+)\s*:\s*(.*)$", re.IGNORECASE)
_FINAL_RE = re.compile(r"^(.*?)\s*->\s*option\s+([A-F])\.?$", re.IGNORECASE)
_CHALLENGE_RE = re.compile(r"^challenge\s*-\s*(\d+)\s+problems?$", re.IGNORECASE)
_TIMER_RE = re.compile(
    r"^(beginner|intermediate|advanced|expert)\s*(\d{1,2}:\d\d)\s*remaining$", re.IGNORECASE
)
_ATTEMPTS_RE = re.compile(r"^attempts:?$", re.IGNORECASE)
_LEFT_RE = re.compile(r"^(\d+)\s+left$", re.IGNORECASE)
_HINT_RE = re.compile(r"^\W*\s*hint:?$", re.IGNORECASE)
_CATEGORY_RE = re.compile(r"^[A-Za-z][\w+#-]{0,23}$")
# What shows nothing at a line's start (up to its last character that shows nothing and is no
# blank: the blanks after it are the line's indentation), and at its end.
_INVISIBLE_START_RE = re.compile(f"^[\\s{INVISIBLE}]*[{INVISIBLE}]")
_INVISIBLE_END_RE = re.compile(f"[\\s{INVISIBLE}]+$")
_FENCE_RE = re.compile(r"^(`{3,}|~{3,})\s*([\w+#-]*)\s*$")
_OK_RE = re.compile(r"\s*\[ok\]\s*$", re.IGNORECASE)
_ICON_RE = re.compile(r"^[^\w(\[]+")
# A challenge's type without its icon: up to four words, each with a capital ("Predict Output").
_TYPE_NAME_RE = re.compile(r"^[A-Z][\w+#&/-]*(?: [A-Z][\w+#&/-]*){0,3}$")
# A line shaped like a question or a prompt: it ends with "?" or starts like one.
_QUESTION_RE = re.compile(
    r"(\?$)|^(what|why|how|when|where|which|who|whom|whose|"
    r"explain|describe|define|name|list|compare|give|state|outline)\b",
    re.IGNORECASE,
)
# Lines the pages print around the cards; dropped without a word. An explanation or a question
# never runs across one ("Question 2 of 5" heads each question on some pages).
_CHROME_RE = re.compile(
    r"^(jump into concepts.*|or|recommended|test this pattern.*|recall & review|quiz|"
    r"open[- ]ended( questions)?|get all challenges correct.*|test your skills.*|"
    r"question\s+\d+\s*(?:of|/)\s*\d+)$",
    re.IGNORECASE,
)
# A line that asks: it ends in "?", or starts like a question and ends in ":" ("What does this
# print:"). A quiz's question runs from the last such line down to its options (code under it).
_ASKS_RE = re.compile(
    r"\?$|^(what|why|how|when|where|which|who|whom|whose|explain|describe|define|compare|give|state)\b.*:$",
    re.IGNORECASE,
)
# Words of a challenge's category line, or of a fence, that name a language other than Python.
LANGUAGES = {
    "python": "python",
    "py": "python",
    "sql": "sql",
    "mysql": "mysql",
    "postgresql": "postgresql",
    "sqlite": "sql",
    "bash": "bash",
    "shell": "bash",
    "sh": "bash",
    "javascript": "javascript",
    "js": "javascript",
    "typescript": "typescript",
    "ts": "typescript",
    "java": "java",
    "c": "c",
    "cpp": "cpp",
    "c++": "cpp",
    "go": "go",
    "rust": "rust",
    "r": "r",
    "html": "html",
    "css": "css",
    "json": "json",
    "yaml": "yaml",
}
_STOPWORDS = frozenset(
    re.findall(
        r"\w+",
        "a an the to of in on and or is are be by for with into that this it its as at from not only "
        "than then which what how why does do can will used use using their they them each all any "
        "more most very part",
    )
)


@dataclass
class Page:
    """The cards of a page, and what became of each of its lines (`uses[i]` for line i + 1)."""

    cards: list[RawCard]
    uses: list[str]


def read(path: str, lines: list[str], report: Report) -> list[RawCard]:
    """Read every card of a quiz page; warn about incomplete items and stray text."""
    return read_page(path, lines, report).cards


def read_page(path: str, lines: list[str], report: Report) -> Page:
    """Read a page and account for every one of its lines."""
    reader = _Reader(path, lines, report)
    reader.run()
    return Page(reader.cards, reader.uses)


# A page's first line, as the pages print it, glued to the end of the line before it.
_GLUED_START_RE = re.compile(
    r"^(.*\S)(Recall\s*&\s*Review|Jump\s+into\s+concepts\b.*|Challenge\s*-\s*\d+\s+Problems?)$", re.IGNORECASE
)


def _unglued(text: str) -> list[str]:
    """Split a line that ends in a page's first line, glued to it, into the two lines it was."""
    found = _GLUED_START_RE.match(text)
    return [text] if found is None else [found.group(1), found.group(2)]


@dataclass(frozen=True)
class _Unreadable:
    """Why an item that is all there cannot be packaged as it reads (its options, say), and what to do."""

    why: str
    fix: str


@dataclass
class _Item:
    start: int  # index into the significant lines
    end: int  # index after the item's last line
    card: RawCard
    explanation: list[int] = field(default_factory=list)
    # Why the item cannot be packaged (a recall card copied before its answer was revealed).
    problem: str = ""


class _Reader:
    """One page being read: its non-blank lines, and what became of each input line."""

    def __init__(self, path: str, lines: list[str], report: Report) -> None:
        self.path = path
        self.lines = lines
        self.report = report
        # A line of only a zero-width space or a byte-order mark is as blank as an empty one.
        shown = [visible(line) for line in lines]
        # Significant lines, each with the input line it is on: a page's first line glued to the
        # line before it (two pages joined by `cat`, the first with no line break at its end) is
        # two lines on one.
        self.at = []
        self.t = []
        for i, text in enumerate(shown):
            for part in _unglued(text) if text else ():
                self.at.append(i)
                self.t.append(part)
        self.uses = [BLANK if not text else "" for text in shown]
        # A copy with a blank line between every line: blank lines mean nothing, even in code.
        rows = sorted(set(self.at))
        self.double_spaced = len(rows) > 1 and all(b - a >= 2 for a, b in pairwise(rows))
        self.cards: list[RawCard] = []
        self.quizzes = 0
        self.inferred = 0

    # -- accounting ---------------------------------------------------------------------------

    def line(self, k: int) -> int:
        """The 1-based input line of significant line `k`."""
        return self.at[k] + 1

    def lines_at(self, ks: range | list[int]) -> list[int]:
        """The 1-based input lines of significant lines `ks`."""
        return [self.at[k] + 1 for k in ks]

    def use(self, ks: range | list[int], what: str) -> None:
        """Record what became of lines `ks`, where nothing else has been recorded yet."""
        for k in ks:
            if not self.uses[self.at[k]]:
                self.uses[self.at[k]] = what

    def used(self, k: int) -> bool:
        """Tell whether line `k` is accounted for."""
        return bool(self.uses[self.at[k]])

    def add(self, card: RawCard, ks: range | list[int]) -> None:
        """Keep a card, made of lines `ks`."""
        self.cards.append(card)
        self.use(ks, f"card {card.line}")

    def warn(self, k: int, message: str, ks: range | list[int] | None = None) -> None:
        """Warn at line `k` about lines `ks` (or only `k`)."""
        self.report.warn(self.path, self.line(k), message)
        self.use(ks if ks is not None else [k], WARNED)

    def stray(self, start: int, end: int) -> None:
        """Report every line in [start, end) not yet accounted for: chrome, or text of no card."""
        for k in range(start, end):
            if self.used(k):
                continue
            if _CHROME_RE.match(self.t[k]):
                self.use([k], CHROME)
            else:
                self.warn(k, f"unrecognised text {self.t[k][:60]!r} ignored; is it part of a card?")

    def incomplete(self, k: int, what: str, ks: range | list[int], missing: str = "") -> None:
        """Warn that the item of lines `ks` is cut off, and count it."""
        why = "the copied text stops inside it"
        why = f"no {missing}; {why}" if missing else why
        self.warn(k, f"{what} ({why}); it was not packaged: copy the whole page", ks)
        self.report.count("incomplete")

    def announced(self, k: int, announced: int, held: int, what: str) -> None:
        """Say so when a section holds fewer items than its heading announces."""
        if held < announced:
            self.report.warn(
                self.path,
                self.line(k),
                f"the page announces {announced} {what} but holds {held}; "
                f"{announced - held} missing: copy the whole page",
            )
            self.report.count("missing", announced - held)

    # -- sections -----------------------------------------------------------------------------

    def run(self) -> None:
        starts = [k for k in range(len(self.t)) if k == 0 or self._heading_at(k)]
        for n, start in enumerate(starts):
            end = starts[n + 1] if n + 1 < len(starts) else len(self.t)
            if _PRACTICE_RE.match(self.t[start]):
                self.practice(start, end)
            elif _CHALLENGE_RE.match(self.t[start]):
                self.challenges(start, end)
            else:
                self.main(start, end)
        # Whatever no section took is still reported, never left out silently.
        self.stray(0, len(self.t))
        if self.quizzes:
            self.report.notes.append(
                f"{self.path}: {self.inferred} of {self.quizzes} quiz answers inferred from the explanations"
            )
            self.report.count("inferred", self.inferred)
        if not self.cards:
            self.report.error(
                self.path, 1, "no cards found on this quiz page; check that the whole page was copied"
            )

    def _answer_word(self, a: int, floor: int, end: int) -> bool:
        """Tell whether a bare `Correct` or `Incorrect` line is a recall card's answer, no verdict.

        A page prints a verdict with its mark (`✓ Correct`); one that lost it in copying is still
        a verdict, unless the line starts a recall card's answer: a level line and a question above
        it, and the card's `Click to reveal answer` the next line of its kind below it.
        """
        t = self.t
        if (
            not _VERDICT_RE.match(t[a])
            or t[a][:1] in "✗✓✔✘×❌✅✖✕☑❎"
            or a - 2 < floor
            or not _LEVEL_RE.match(t[a - 2])
        ):
            return False
        after = next((k for k in range(a + 1, end) if _is_anchor(t[k]) or _LEVEL_RE.match(t[k])), None)
        return after is not None and bool(_REVEAL_RE.match(t[after]))

    def _heading_at(self, k: int) -> bool:
        """Tell whether line `k` starts a section: a Practice heading only above its first question.

        `Practice exercises` may be a line of an answer as well as the heading a copy gave.
        """
        line = self.t[k]
        if _PAGE_START_RE.match(line) or _CHALLENGE_RE.match(line):
            return True
        if not _PRACTICE_RE.match(line):
            return False
        after = self.t[k + 1] if k + 1 < len(self.t) else ""
        first = _NUMBERED_RE.match(after)
        return bool(_COUNTER_RE.match(after) or (first and first.group(1) == "1"))

    # -- Recall & Review, quizzes, open prompts --------------------------------------------------

    def main(self, start: int, end: int) -> None:
        t = self.t
        items: list[_Item] = []
        floor = start
        while floor < end and _CHROME_RE.match(t[floor]):
            self.use([floor], CHROME)
            floor += 1
        waiting: _Item | None = None  # a quiz whose explanation runs up to the next item
        for a in range(floor, end):
            if not _is_anchor(t[a]) or self._answer_word(a, floor, end):
                continue
            # A quiz's explanation is at least a line: the next item never starts on it.
            reserve = 1 if waiting is not None else 0
            item = self._item_at(floor, a, reserve)
            if waiting is not None:
                stop = min(a, floor + reserve) if item is None else item.start
                waiting.explanation = self._explanation(waiting.end, stop)
                waiting.end = floor = waiting.end + len(waiting.explanation)
                waiting = None
            if item is None:
                self.stray(floor, a)
                self.warn(a, f"{t[a]!r} without the question before it; item skipped")
                floor = a + 1
                continue
            self.stray(floor, item.start)
            items.append(item)
            floor = item.end
            if item.card.kind == "quiz":
                waiting = item
        if waiting is not None:
            # Nothing bounds the last explanation: it is as long as the section's others.
            longest = max((len(i.explanation) for i in items[:-1] if i.card.kind == "quiz"), default=1)
            waiting.explanation = self._explanation(waiting.end, min(end, waiting.end + max(1, longest)))
            waiting.end = floor = waiting.end + len(waiting.explanation)
        for item in items:
            if item.problem:
                self.warn(item.start, item.problem, range(item.start, item.end))
                self.report.count("incomplete")
                continue
            if item.card.kind == "quiz" and not self._finish_quiz(item):
                continue
            # A quiz's "Question 2 of 5" may sit between its question and its options.
            chrome = _CHROME_RE if item.card.kind == "quiz" else _REVEAL_RE
            marks = [
                k
                for k in range(item.start, item.end)
                if _REVEAL_RE.match(t[k]) or _VERDICT_RE.match(t[k]) or chrome.match(t[k])
            ]
            self.use(marks, CHROME)
            self.add(item.card, range(item.start, item.end))
        self._tail(floor, end)

    def _explanation(self, start: int, stop: int) -> list[int]:
        """The lines of a quiz's explanation in [start, stop): up to page chrome, if any."""
        return list(range(start, next((k for k in range(start, stop) if _CHROME_RE.match(self.t[k])), stop)))

    def _tail(self, start: int, end: int) -> None:
        """Text after a section's last item: an item the copy stops inside, or text of no card."""
        self.use([k for k in range(start, end) if _CHROME_RE.match(self.t[k])], CHROME)
        rest = [k for k in range(start, end) if not self.used(k)]
        if rest and any(_LEVEL_RE.match(self.t[k]) or _QUESTION_RE.search(self.t[k]) for k in rest):
            self.incomplete(rest[0], "incomplete item at the end of this section", rest)
            return
        self.stray(start, end)

    def _item_at(self, floor: int, a: int, reserve: int = 0) -> _Item | None:
        """The item anchored at line `a`, read back to `floor`; the first `reserve` lines are not its."""
        t = self.t
        anchor = t[a]
        body = list(range(floor + reserve, a))
        data: dict[str, object]
        if _REVEAL_RE.match(anchor):
            return self._recall(body, a)
        if concepts := _CONCEPTS_RE.match(anchor):
            if not body:
                return None
            # A prompt asks ("Explain…", "…?"); a hint does not ("Think about…"): a last line that
            # asks after one that does not is a prompt without a hint.
            asks = [bool(_QUESTION_RE.search(t[k])) for k in body[-2:]]
            if len(body) >= 2 and asks != [False, True]:
                start, data = body[-2], {"question": t[body[-2]], "hint": t[body[-1]]}
            else:
                start, data = body[-1], {"question": t[body[-1]]}
            data["concepts"] = int(concepts.group(1))
            card = RawCard(self.line(start), "open", data)
            card.field_lines = {
                "question": self.lines_at([start]),
                "hint": self.lines_at(range(start + 1, a)),
            }
            return _Item(start, a + 1, card)
        # A verdict: options (if the page kept them) right above it, the question above those.
        options, cut, readable = self._options(body)
        asked = self._question_start(body[:cut])
        if not readable:
            # Options, but not A, B, … in order: the block cannot be read, and is reported whole
            # rather than read as a question or as another item's explanation.
            start = body[cut] if asked is None else asked
            letters = ", ".join(found[0] for k in body[cut:] if (found := _option(t[k])))
            problem = (
                f"quiz question {t[start][:60]!r}: its options could not be read (lettered {letters}, "
                "not A, B, … in order); it was not packaged: check its options on the page and copy it again"
            )
            card = RawCard(self.line(start), "quiz", {"question": t[start]})
            return _Item(start, a + 1, card, problem=problem)
        if asked is None:
            return None
        start = asked
        question = [k for k in body[body.index(start) : cut] if not _CHROME_RE.match(t[k])]
        data = {
            "question": self.joined(question),
            "options": [{"letter": ltr, "text": x} for ltr, x in options],
        }
        card = RawCard(self.line(start), "quiz", data)
        card.field_lines = {"question": self.lines_at(question)}
        return _Item(start, a + 1, card)

    def _options(self, body: list[int]) -> tuple[list[tuple[str, str]], int, bool]:
        """The options right above a verdict, A first; where they start in `body`; whether readable.

        Without options (the copy lost them) this gives none, starting at the verdict.
        """
        t = self.t
        run: list[tuple[str, str]] = []
        for k in reversed(body):
            found = _option(t[k]) or _glued_small(t[k])
            if found is None or (run and found[0] != chr(ord(run[0][0]) - 1)):
                break
            run.insert(0, found)
            if found[0] == "A":
                break
        if len(run) >= 2 and run[0][0] == "A":
            return run, len(body) - len(run), True
        # Lines shaped as options right above the verdict, in order but not a run from A: some
        # were lost. So is a line labelled as one ("B. …", "(c) …"). A lone glued line may be a
        # word ("DNA…"), and one that asks is the question (the page lost its options).
        cut, below = len(body), "~"  # "~" sorts after every letter
        while cut and (found := _option(t[body[cut - 1]])) and not t[body[cut - 1]].endswith("?"):
            if found[0] >= below:
                break  # letters go down the page: this line is above the options
            cut, below = cut - 1, found[0]
        shaped = len(body) - cut
        readable = shaped == 0 or (shaped == 1 and not _labelled(t[body[-1]]))
        return [], len(body) if readable else cut, readable

    def _question_start(self, lines: list[int]) -> int | None:
        """Where a quiz's question starts in `lines`, which end where its options (or verdict) start.

        The question is the last line, or, when that line does not ask, the last line that does and
        the lines under it (code the question shows). It never reaches above page chrome.
        """
        t = self.t
        lines = list(lines)
        while lines and _CHROME_RE.match(t[lines[-1]]):
            lines.pop()  # "Question 2 of 5" between the question and its options
        chrome = [i for i, k in enumerate(lines) if _CHROME_RE.match(t[k])]
        if chrome:
            lines = lines[chrome[-1] + 1 :]
        if not lines:
            return None
        if _ASKS_RE.search(t[lines[-1]]):
            return lines[-1]
        return next((k for k in reversed(lines) if _ASKS_RE.search(t[k])), lines[-1])

    def _recall(self, body: list[int], a: int) -> _Item | None:
        """Level (optional), question, answer lines: told apart by the level line, else by shape."""
        t = self.t
        levels = [k for k in body[:-2] if _LEVEL_RE.match(t[k])]
        if not levels and (unrevealed := self._unrevealed(body, a)):
            return unrevealed
        if levels:
            first, question = levels[-1], levels[-1] + 1
        else:
            if len(body) < 2:
                return None
            # The question comes first, unless the first line is not shaped like a question
            # and a later one ends in "?" with an answer after it: then the lines before that
            # belong to no card.
            asked = [k for k in body[1:-1] if t[k].endswith("?")]
            first = question = asked[0] if asked and not _QUESTION_RE.search(t[body[0]]) else body[0]
        if a - question < 2:
            return None
        data: dict[str, object] = {
            "question": t[question],
            "answer": self.joined(range(question + 1, a)),
        }
        if levels:
            data["level"] = t[first].lower()
        card = RawCard(self.line(first), "recall", data)
        card.field_lines = {
            "question": self.lines_at([question]),
            "answer": self.lines_at(range(question + 1, a)),
        }
        return _Item(first, a + 1, card)

    def _unrevealed(self, body: list[int], a: int) -> _Item | None:
        """A recall card copied before its answer was shown: a level, then at most its question.

        Without a level, a lone line is such a question (the page always shows the question, the
        answer only once revealed), and so is a last line that asks ("…?") after none that does.
        """
        t = self.t
        if not body:
            return None
        level = next((k for k in reversed(body[-2:]) if _LEVEL_RE.match(t[k])), None)
        asked = t[body[-1]].endswith("?") and not any(_QUESTION_RE.search(t[k]) for k in body[:-1])
        if level is None and not (asked or len(body) == 1):
            return None
        if level == body[-1] and len(body) >= 2 and _QUESTION_RE.search(t[body[-2]]):
            return None  # a question answered in one word that names a level ("Easy")
        first = body[-1] if level is None else level
        if first == a - 1 and level is not None:
            what = f"recall card of level {t[first]!r} has no question nor answer"
        else:
            what = f"recall card {t[a - 1][:60]!r} has no answer"
        card = RawCard(self.line(first), "recall", {"question": t[a - 1]})
        problem = (
            f"{what}: it was copied before its answer was revealed; it was not packaged: "
            "reveal the answer on the page and copy it again"
        )
        return _Item(first, a + 1, card, problem=problem)

    def _finish_quiz(self, item: _Item) -> bool:
        """Give a quiz its explanation and answer; an item with neither is incomplete."""
        explanation = self.joined(item.explanation)
        data = item.card.data
        item.card.field_lines["explanation"] = self.lines_at(item.explanation)
        if not explanation:
            self.incomplete(
                item.start,
                f"quiz question {data['question'][:60]!r} is incomplete",
                range(item.start, item.end),
                "explanation after its verdict",
            )
            return False
        options = data["options"]
        if not options:
            # Options lost in copying: the card asks the question and answers with the explanation.
            data.pop("options")
            data["answer"] = explanation
            item.card.field_lines["answer"] = item.card.field_lines.pop("explanation")
            return True
        data["explanation"] = explanation
        self.quizzes += 1
        letter = infer_correct(explanation, [(o["letter"], o["text"]) for o in options], data["question"])
        if letter:
            self.inferred += 1
            data["correct"] = letter
            data["correct_inferred"] = True
            data["answer"] = next(o["text"] for o in options if o["letter"] == letter)
        return True

    # -- Practice -----------------------------------------------------------------------------

    def practice(self, start: int, end: int) -> None:
        t = self.t
        self.use([start], CHROME)
        announced = None
        i = start + 1
        if i < end and (counter := _COUNTER_RE.match(t[i])):
            announced = int(counter.group(2))
            self.use([i], CHROME)
            i += 1
        starts = self._numbered_questions(i, end)
        self.stray(i, starts[0] if starts else end)
        mistakes: list[int] = []
        for n, s in enumerate(starts):
            last = n + 1 == len(starts)
            limit = (max(mistakes) if mistakes else USUAL_MISTAKES) if last else None
            block_end = end if last else starts[n + 1]
            done = self._practice_item(s, block_end, limit)
            if isinstance(done, _Unreadable):
                message = f"practice question {n + 1}: {done.why}; it was not packaged: {done.fix}"
                self.warn(s, message, range(s, block_end))
                self.report.count("incomplete")
            elif isinstance(done, str):
                self.incomplete(s, f"practice question {n + 1} is incomplete", range(s, block_end), done)
            else:
                mistakes.append(len(done.data.get("mistakes", ())))
        if announced is not None:
            self.announced(start, announced, len(starts), "practice questions")

    def _numbered_questions(self, start: int, end: int) -> list[int]:
        """The lines that start Practice questions 1, 2, …, not a numbered list inside one.

        A question runs to its difficulty line, and a list goes on from the line before ("2."
        under "1."). In a question's options or Solution, the next number starts a question
        only if a difficulty line follows it before any label, option or numbered line.
        """
        t = self.t
        starts: list[int] = []
        part = ""  # the part of the current question a line is in: a label's name, or these two
        for j in range(start, end):
            number = _NUMBERED_RE.match(t[j])
            if number and int(number.group(1)) == len(starts) + 1:
                before = _NUMBERED_RE.match(t[j - 1]) if starts and j - 1 != starts[-1] else None
                goes_on = before is not None and int(before.group(1)) == len(starts)
                answered = part not in ("question", "options", "solution")
                asks = part != "question" and self._difficulty_follows(j, end)
                if not goes_on and (answered or asks):
                    starts.append(j)
                    part = "question"
                    continue
            label = _label(t[j])
            if label:
                part = label[0]
            elif part == "question" and _DIFFICULTY_RE.match(t[j]):
                part = "options"
        return starts

    def _difficulty_follows(self, k: int, end: int) -> bool:
        """Tell whether line `k` is a question's first line: its difficulty comes before its parts."""
        for j in range(k + 1, end):
            if _DIFFICULTY_RE.match(self.t[j]):
                return True
            if _label(self.t[j]) or _labelled(self.t[j]) or _NUMBERED_RE.match(self.t[j]):
                return False
        return False

    def _practice_item(self, start: int, end: int, mistakes_limit: int | None) -> RawCard | str | _Unreadable:
        """Read one Practice item; return what is missing when the copy stops inside it."""
        t = self.t
        number_match = _NUMBERED_RE.match(t[start])
        assert number_match is not None
        i = start + 1
        while i < end and not _DIFFICULTY_RE.match(t[i]):
            i += 1
        if i >= end:
            return "difficulty"
        question_end = i
        data: dict[str, object] = {
            "number": int(number_match.group(1)),
            "question": "\n".join([number_match.group(2), *t[start + 1 : i]]).strip(),
            "level": t[i].lower(),
        }
        i += 1
        options = []
        while i < end and (found := _labelled(t[i])):
            options.append({"letter": found[0], "text": found[1]})
            i += 1
        if not options:
            return "options"
        data["options"] = options
        sections, labels, loose = _sections(t, i, end)
        for name in ("final answer", "quick check", "hint"):
            # The page prints each of these on one line: more is text of no card.
            loose += sections.get(name, [])[1:]
            sections[name] = sections.get(name, [])[:1]
        if sections.get("common mistakes") and mistakes_limit is not None:
            kept = sections["common mistakes"][:mistakes_limit]
            loose += sections["common mistakes"][mistakes_limit:]
            sections["common mistakes"] = kept
        for name in ("solution", "final answer", "quick check", "hint", "common mistakes"):
            if not sections.get(name):
                return _LABELS[name]
        steps: list[dict[str, str]] = []
        for k in sections["solution"]:
            step = _STEP_RE.match(t[k])
            if step:
                steps.append({"title": f"Step {step.group(1)}: {step.group(2)}", "text": ""})
            elif steps:
                steps[-1]["text"] = (steps[-1]["text"] + "\n" + t[k]).strip()
            else:
                steps.append({"title": "", "text": t[k]})
        data["solution"] = steps
        final = " ".join(_part(t, k) for k in sections["final answer"])
        final_match = _FINAL_RE.match(final)
        if not final_match:
            return "Final Answer ending in '-> Option X'"
        data["answer"] = final_match.group(1)
        data["correct"] = final_match.group(2).upper()
        letters = [option["letter"] for option in options]
        if letters != list("ABCDEF"[: len(letters)]):
            return _Unreadable(
                f"its options could not be read (lettered {', '.join(letters)}, not A, B, … in order)",
                "check its options on the page and copy it again",
            )
        if data["correct"] not in letters:
            return _Unreadable(
                f"its final answer is option {data['correct']}, which it does not have "
                f"(options {', '.join(letters)})",
                "check the question on the page and copy it again",
            )
        data["quick_check"] = _OK_RE.sub("", " ".join(_part(t, k) for k in sections["quick check"]))
        data["hint"] = _OK_RE.sub("", " ".join(_part(t, k) for k in sections["hint"]))
        data["mistakes"] = [t[k] for k in sections["common mistakes"]]
        card = RawCard(self.line(start), "practice", data)
        card.field_lines = {
            "question": self.lines_at(range(start, question_end)),
            "answer": self.lines_at(sections["final answer"]),
            "hint": self.lines_at(sections["hint"]),
        }
        self.use(labels, CHROME)
        stray = set(loose)
        self.add(card, [k for k in range(start, end) if k not in stray])
        self.stray(start, end)
        return card

    # -- Challenges ---------------------------------------------------------------------------

    def challenges(self, start: int, end: int) -> None:
        t = self.t
        header = _CHALLENGE_RE.match(t[start])
        assert header is not None
        announced = int(header.group(1))
        self.use([start], CHROME)
        timers = [k for k in range(start + 1, end) if _TIMER_RE.match(t[k])]
        # Where each challenge starts: its type line, if the line above its timer is one.
        heads = [timer - 1 if self._typed(start, timer) else timer for timer in timers]
        first = heads[0] if heads else end
        if start + 1 < first:
            self.use([start + 1], CHROME)  # the badge's name
        self.stray(start + 1, first)
        explained: list[int] = []
        for n, (head, timer) in enumerate(zip(heads, timers, strict=True)):
            last = n + 1 == len(timers)
            block_end = end if last else heads[n + 1]
            limit = max(max(explained, default=1), 1) if last else None
            done = self._challenge(head, timer, block_end, limit)
            if isinstance(done, str):
                self.incomplete(head, f"challenge {n + 1} is incomplete", range(head, block_end), done)
            else:
                explained.append(len(done.data["explanation"].splitlines()))
        self.announced(start, announced, len(timers), "problems")

    def _typed(self, start: int, timer: int) -> bool:
        """Tell whether the line above a challenge's timer is its type, not the challenge before it.

        A type is a short name after an icon ("🔧 Debug"), or in capitals ("Predict Output") but
        for the badge's name right under the heading; the last line of an explanation is a sentence.
        """
        if timer - 1 <= start or _CHROME_RE.match(self.t[timer - 1]):
            return False
        line = self.t[timer - 1]
        name = _ICON_RE.sub("", line).strip()
        if ord(line[0]) > 127 and not line[0].isalnum():
            return len(name.split()) <= 4 and name[-1:].isalnum()
        return timer - 1 > start + 1 and bool(_TYPE_NAME_RE.match(line))

    def _challenge(self, head: int, timer_k: int, end: int, explanation_limit: int | None) -> RawCard | str:
        """Read one challenge from `head` (its type line, or its timer); say what is missing if cut."""
        t = self.t
        timer = _TIMER_RE.match(t[timer_k])
        assert timer is not None
        kind_line = _ICON_RE.sub("", t[head]).strip() if head < timer_k else ""
        attempts_at = next((k for k in range(timer_k + 1, end) if _ATTEMPTS_RE.match(t[k])), None)
        if attempts_at is None or attempts_at - timer_k < 3:
            return "'Attempts:' after its title and question"
        left = _LEFT_RE.match(t[attempts_at + 1]) if attempts_at + 1 < end else None
        if left is None:
            return "'N left' after 'Attempts:'"
        hint_at = next((k for k in range(attempts_at + 2, end) if _HINT_RE.match(t[k])), None)
        if hint_at is None or hint_at + 1 >= end or _VERDICT_RE.match(t[hint_at + 1]):
            return "hint"
        verdict_at = next((k for k in range(hint_at + 2, end) if _VERDICT_RE.match(t[k])), None)
        if verdict_at is None:
            return "verdict after its hint"
        explanation_end = end
        if explanation_limit is not None:
            explanation_end = min(end, verdict_at + 1 + explanation_limit)
        if explanation_end <= verdict_at + 1:
            return "explanation after its verdict"
        tags: list[str] = ["type::" + "_".join(kind_line.split())] if kind_line else []
        data: dict[str, object] = {
            "type": kind_line or "Challenge",
            "level": timer.group(1).lower(),
            "time_limit": timer.group(2),
            "title": t[timer_k + 1],
            "attempts": int(left.group(1)),
            "hint": "\n".join(t[hint_at + 1 : verdict_at]),
            "explanation": "\n".join(t[verdict_at + 1 : explanation_end]),
        }
        card = RawCard(self.line(head), "challenge", data)
        card.field_lines = {
            "hint": self.lines_at(range(hint_at + 1, verdict_at)),
            "explanation": self.lines_at(range(verdict_at + 1, explanation_end)),
        }
        question, code, code_at = self._split_code(timer_k + 2, attempts_at, tags, data)
        data["question"] = question
        if code is not None:
            self._code(code, data, self.line(code_at))
        data["tags"] = tags
        self.use([timer_k, attempts_at, hint_at, verdict_at], CHROME)
        used = [head, *range(timer_k + 1, attempts_at + 2), *range(hint_at + 1, verdict_at)]
        self.add(card, used + list(range(verdict_at + 1, explanation_end)))
        self.stray(head, end)
        return card

    def _split_code(
        self, start: int, end: int, tags: list[str], data: dict[str, object]
    ) -> tuple[str, str | None, int]:
        """Separate a challenge's question from its code, and a category word from both."""
        t = self.t
        fence = next((k for k in range(start, end) if _FENCE_RE.match(t[k])), None)
        part = t[start:end]
        if fence is not None:
            word = _FENCE_RE.match(t[fence])
            assert word is not None
            # Closed by its own fence, as the card renders it: an inner ```python opens no end.
            close = next((k for k in range(fence + 1, end) if t[k] == word.group(1)), end)
            language = word.group(2).lower() or DEFAULT_LANGUAGE
            data["code_language"] = LANGUAGES.get(language, language)
            markers = [fence] + ([close] if close < end else [])
            self.use(markers, CHROME)
            question = "\n".join(t[start:fence] + t[close + 1 : end]).strip()
            return question, self._fenced(fence, close), fence + 1
        if len(part) >= 3 and _CATEGORY_RE.match(part[1]):
            tags.append("topic::" + part[1])
            data["code_language"] = LANGUAGES.get(part[1].lower(), DEFAULT_LANGUAGE)
            return part[0], "\n".join(part[2:]), start + 2
        if len(part) >= 2:
            code = "\n".join(part[1:])
            if len(code) <= MAX_RESTORE_CHARS and restore(code)[1] and any(ch in code for ch in "=()"):
                data["code_language"] = DEFAULT_LANGUAGE
                return part[0], code, start + 1
        return "\n".join(part).strip(), None, start

    def joined(self, ks: range | list[int]) -> str:
        """The text of significant lines `ks`, as a card holds it: fenced code as copied, indented."""
        t, ks = self.t, list(ks)
        out: list[str] = []
        n = 0
        while n < len(ks):
            fence = _FENCE_RE.match(t[ks[n]])
            close = None
            if fence:
                close = next((m for m in range(n + 1, len(ks)) if t[ks[m]] == fence.group(1)), None)
            if close is None:
                out.append(t[ks[n]])
                n += 1
                continue
            out += [t[ks[n]], self._fenced(ks[n], ks[close]), t[ks[close]]]
            n = close + 1
        return "\n".join(out)

    def _fenced(self, fence: int, close: int) -> str:
        """The lines between a fence's markers as copied, blank lines kept unless double-spaced."""
        first = self.at[fence] + 1
        last = self.at[close] if close < len(self.at) else self.at[-1] + 1
        # Characters that show nothing at a line's ends are no part of it (as elsewhere on the
        # page); its indentation is.
        raw = [
            _INVISIBLE_START_RE.sub("", _INVISIBLE_END_RE.sub("", line)) if visible(line) else ""
            for line in self.lines[first:last]
        ]
        if self.double_spaced:
            raw = [line for line in raw if line]
        indents = [len(line) - len(line.lstrip()) for line in raw if line]
        cut = min(indents, default=0)
        return "\n".join(line[cut:] for line in raw).strip("\n")

    def _code(self, code: str, data: dict[str, object], line: int) -> None:
        if data.get("code_language") != "python":
            data["code"] = code.rstrip() + "\n"
            return
        if len(code) > MAX_RESTORE_CHARS:
            data["code"] = code.rstrip() + "\n"
            self.report.warn(
                self.path,
                line,
                f"the code in this challenge is {len(code)} characters long, more than the "
                f"{MAX_RESTORE_CHARS} deckbuild restores; it is kept as copied: check it on the page",
            )
            return
        restored, ok = restore(code)
        data["code"] = restored
        if not ok:
            self.report.warn(
                self.path,
                line,
                "code in this challenge is not valid Python even after restoring its lines; "
                "check it on the page",
            )


def _labelled(line: str) -> tuple[str, str] | None:
    """The letter (upper case) and text of an option line with a label ("A.", "(b)")."""
    found = _LABELLED_OPTION_RE.match(line)
    if found is None:
        return None
    *letters, text = found.groups()
    return next(x for x in letters if x).upper(), text


def _option(line: str) -> tuple[str, str] | None:
    """The letter and text of an option line, labelled or glued to a capital."""
    if found := _labelled(line):
        return found
    glued = _GLUED_OPTION_RE.match(line)
    return (glued.group(1), glued.group(2)) if glued else None


def _glued_small(line: str) -> tuple[str, str] | None:
    """The letter and text of a line that may be an option glued to a small letter ("Asoftmax")."""
    found = _GLUED_SMALL_RE.match(line)
    return (found.group(1), found.group(2)) if found else None


def _is_anchor(line: str) -> bool:
    return bool(_REVEAL_RE.match(line) or _VERDICT_RE.match(line) or _CONCEPTS_RE.match(line))


# A Practice item's parts, as the page labels them.
_LABELS = {
    "solution": "Solution",
    "final answer": "Final Answer",
    "quick check": "Quick Check",
    "hint": "Hint",
    "common mistakes": "Common Mistakes",
}


def _label(line: str) -> tuple[str, str] | None:
    head, colon, rest = line.partition(":")
    name = (head if colon else line).strip().lower()
    return (name, rest.strip()) if name in _LABELS else None


def _part(t: list[str], k: int) -> str:
    """A section's line without its label ("Hint: …" keeps only "…")."""
    found = _label(t[k])
    return found[1] if found else t[k]


def _sections(t: list[str], start: int, end: int) -> tuple[dict[str, list[int]], list[int], list[int]]:
    """Split a Practice answer into its labelled parts; also return label lines and loose lines."""
    found: dict[str, list[int]] = {}
    labels: list[int] = []
    loose: list[int] = []
    current: list[int] | None = None
    for k in range(start, end):
        label = _label(t[k])
        if label and label[0] not in found:
            current = found.setdefault(label[0], [])
            if label[1]:
                current.append(k)
            else:
                labels.append(k)
        elif label:
            # A part the item has had already: what follows, up to a new part, is of no part (a
            # spliced copy), never the text of the part before it.
            current = None
            loose.append(k)
        elif current is not None:
            current.append(k)
        else:
            loose.append(k)
    return found, labels, loose


def _words(text: str) -> set[str]:
    words = set()
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        if word in _STOPWORDS or len(word) < 2:
            continue
        for suffix in ("ing", "ed", "es", "s"):
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                word = word[: -len(suffix)]
                break
        # "normalize", "normalizes", "normalized" and "normalizing" are one word.
        if word.endswith("e") and len(word) >= 4:
            word = word[:-1]
        words.add(word)
    return words


def _told_and_denied(explanation: str) -> tuple[set[str], set[str]]:
    """The words of an explanation's clauses that say something, and of those that deny it.

    "Softmax does not just select the maximum value; it normalizes the scores" points away from
    an option about the maximum value, though it shares its words.
    """
    told: set[str] = set()
    denied: set[str] = set()
    for clause in _CLAUSE_END_RE.split(explanation):
        (denied if _DENIES_RE.search(clause) else told).update(_words(clause))
    return told, denied


# An explanation naming options: "Option B", "option (C)", "the answer is C", "Answer: C",
# "Options A and C", "options A, B or D".
_LETTER = r"\(?[A-F]\)?"
_NAMED_RE = re.compile(
    rf"\b(?i:options?|choices?|answers?)(?:\s+is|\s*:)?\s+({_LETTER}(?:\s*(?:,|/|&|\band\b|\bor\b|\bnor\b)\s*{_LETTER})*)"
    r"(?![\w-])"
)
# Where the clause around a named option ends: punctuation, or a word that starts another clause
# ("and" does not: "Options A and C are wrong" denies both).
_CLAUSE_END_RE = re.compile(r"[.;:!?,()]|\b(?:but|while|whereas|because|since|although)\b", re.IGNORECASE)
_NEGATION = r"not|never|neither|nor|incorrect|wrong|false|invalid|mistaken|mistake|cannot|fails?|\w+n't"
# Words that deny what a clause says of the option it names: "Option A is incorrect", "is not
# option A", "rather than option A".
_DENIED_AFTER_RE = re.compile(rf"\b(?:{_NEGATION})\b", re.IGNORECASE)
_DENIED_BEFORE_RE = re.compile(
    rf"\b(?:{_NEGATION}|unlike|than|instead of|except|rule out|rules out|eliminates?)\s+(?:\w+\s+){{0,2}}$",
    re.IGNORECASE,
)


# A clause that denies what it says: a negation, or a contrast ("instead of", "rather than").
_DENIES_RE = re.compile(
    rf"\b(?:{_NEGATION}|instead|rather|unlike|without|opposed|no|neither|nor|confus\w*|misconceptions?"
    r"|mix(?:es|ed)?\s+up|misread\w*|pitfalls?)\b",
    re.IGNORECASE,
)
# A question asking for the odd one out: "all of these EXCEPT", "which is the exception".
_ASKS_EXCEPT_RE = re.compile(r"\b(?:except|exception|least|false|untrue)\b", re.IGNORECASE)


def _named(explanation: str) -> tuple[set[str], set[str]]:
    """The letters an explanation names as the answer, and those it names only to deny them.

    What is said of a named option is its clause, which stops at another named option too.
    """
    said: set[str] = set()
    denied: set[str] = set()
    named = list(_NAMED_RE.finditer(explanation))
    for n, found in enumerate(named):
        after = explanation[found.end() : named[n + 1].start() if n + 1 < len(named) else None]
        stop = _CLAUSE_END_RE.search(after)
        after = after[: stop.start()] if stop else after
        before = explanation[named[n - 1].end() if n else 0 : found.start()]
        starts = [m.end() for m in _CLAUSE_END_RE.finditer(before)]
        before = before[starts[-1] :] if starts else before
        letters = set(re.findall(r"[A-F]", found.group(1)))
        if (
            _DENIED_AFTER_RE.search(after)
            or _DENIED_BEFORE_RE.search(before)
            or not _says(explanation, found)
        ):
            denied |= letters
        else:
            said |= letters
    return said, denied


# What follows an option named and at once cut off: "Option B: …", "Option B? …", "Option B, but …".
_CUT_RE = re.compile(r"\s*([:?,])")
_CONTRAST_RE = re.compile(r"\s*(?:but|however|yet|though|although|whereas|while)\b", re.IGNORECASE)


def _says(explanation: str, found: re.Match[str]) -> bool:
    """Tell whether what comes right after a named option may say it is the answer.

    "Option B: incorrect", "Option B? No", "Many pick option B, but …" cut the clause at once,
    and what comes next decides: a denial or a contrast there names no answer.
    """
    rest = explanation[found.end() :]
    cut = _CUT_RE.match(rest)
    if cut is None:
        return True
    after = rest[cut.end() :]
    if cut.group(1) == ",":
        return _CONTRAST_RE.match(after) is None
    stop = re.search(r"[.;!?\n]", after)
    comment = after[: stop.start()] if stop else after
    return _DENIES_RE.search(comment) is None


def infer_correct(explanation: str, options: list[tuple[str, str]], question: str = "") -> str | None:
    """Name the option an explanation clearly points to, or None when it is not clear.

    Only ever fewer answers than the words shared say, never another: a question worded with a
    negation ("Which is NOT a benefit…?", "Why doesn't…?") may have an explanation that denies
    its answer or affirms it, so its words tell none; and the option most words point to is not
    the answer when the explanation says them in a clause that denies them ("…does not just
    select the maximum value…", "…instead of selecting the maximum value").
    """
    letters = {letter for letter, _ in options}
    said, denied = _named(explanation)
    if said or denied:
        # An explanation that names options tells the answer only by naming one, and no other,
        # without denying it: "Option A is incorrect" names no answer, and words it shares
        # with option A would point there.
        named = said & letters
        return named.pop() if len(named) == 1 and not named & denied and said <= letters else None
    if _DENIED_AFTER_RE.search(question) or _ASKS_EXCEPT_RE.search(question):
        return None
    told = _words(explanation)
    scores = sorted(
        (
            (len(_words(t) & told), len(_words(t) & told) / max(1, len(_words(t))), letter)
            for letter, t in options
        ),
        reverse=True,
    )
    (best, share, letter), runner_up = scores[0], scores[1][0] if len(scores) > 1 else 0
    # Unambiguous only: enough shared words, and clearly more than any other option.
    if best < 2 or share < 0.3 or best < 2 * runner_up:
        return None
    said_words, denied_words = _told_and_denied(explanation)
    words = _words(dict(options)[letter])
    return None if len(words & denied_words) >= len(words & said_words) else letter
