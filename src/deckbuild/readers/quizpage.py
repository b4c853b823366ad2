"""Read text copied from quiz web pages: recall cards, quizzes, open prompts, Practice, Challenges.

The copied text has no markup, so items are found by the lines the page always prints
("Click to reveal answer", the verdict line, "You got /N concepts.", numbered Practice
questions, a challenge's "level + time remaining" line) and read backwards and forwards
from there. Whatever is left over is reported, never silently dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from deckbuild.errors import Report
from deckbuild.readers import RawCard
from deckbuild.readers.pycode import restore

# How deckbuild.readers recognises a page without importing this module: section and chrome
# lines that only quiz pages carry, any line of the text (stripped). Keep it a literal.
DETECT = {
    "what": "a quiz page",
    "order": 20,
    "any_line": (
        r"Recall & Review|Click to reveal answer|✗ Incorrect|✓ Correct|You got /|Attempts:"
        r"|^Challenge - \d+ Problems?$|^Practice$"
    ),
}

LEVELS = ("beginner", "intermediate", "advanced", "expert")
DIFFICULTIES = ("easy", "medium", "hard")

_LEVEL_RE = re.compile(r"^(beginner|intermediate|advanced|expert)$", re.IGNORECASE)
_REVEAL_RE = re.compile(r"^click to reveal answer$", re.IGNORECASE)
_VERDICT_RE = re.compile(r"^[✗✓✔✘×]?\s*(?:in)?correct!?$", re.IGNORECASE)
_CONCEPTS_RE = re.compile(r"^you got\s*\d*\s*/\s*(\d+)\s*concepts?\.?$", re.IGNORECASE)
_GLUED_OPTION_RE = re.compile(r"^([A-F])(?:[.)]\s*|\s*)(\S.*)$")
_PRACTICE_RE = re.compile(r"^practice$", re.IGNORECASE)
_COUNTER_RE = re.compile(r"^\((\d+)\s*/\s*(\d+)\)$")
_NUMBERED_RE = re.compile(r"^(\d+)\.\s+(.*)$")
_DIFFICULTY_RE = re.compile(r"^(easy|medium|hard)$", re.IGNORECASE)
_OPTION_RE = re.compile(r"^([A-F])[.)]\s+(.*)$")
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
_OK_RE = re.compile(r"\s*\[ok\]\s*$", re.IGNORECASE)
_ICON_RE = re.compile(r"^[^\w(\[]+")
# Lines the pages print around the cards; dropped without a word.
_CHROME_RE = re.compile(
    r"^(jump into concepts.*|or|recommended|test this pattern.*|recall & review|quiz|"
    r"open[- ]ended( questions)?|get all challenges correct.*|test your skills.*)$",
    re.IGNORECASE,
)
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "to",
        "of",
        "in",
        "on",
        "and",
        "or",
        "is",
        "are",
        "be",
        "by",
        "for",
        "with",
        "into",
        "that",
        "this",
        "it",
        "its",
        "as",
        "at",
        "from",
        "not",
        "only",
        "than",
        "then",
        "which",
        "what",
        "how",
        "why",
        "does",
        "do",
        "can",
        "will",
        "used",
        "use",
        "using",
        "their",
        "they",
        "them",
        "each",
        "all",
        "any",
        "more",
        "most",
        "very",
        "part",
    ]
)


@dataclass
class _Item:
    start: int
    end: int  # index after the item's last line
    card: RawCard


def read(path: str, lines: list[str], report: Report) -> list[RawCard]:
    """Read every card of a quiz page; warn about incomplete items and stray text."""
    text = [line.strip() for line in lines]
    practice = next((i for i, t in enumerate(text) if _PRACTICE_RE.match(t)), None)
    challenge = next((i for i, t in enumerate(text) if _CHALLENGE_RE.match(t)), None)
    bounds = sorted(b for b in (practice, challenge, len(text)) if b is not None)

    def region_end(start: int) -> int:
        return next(b for b in bounds if b > start)

    main_end = bounds[0]
    cards = _read_main(path, text, 0, main_end, report)
    if practice is not None:
        cards += _read_practice(path, text, practice, region_end(practice), report)
    if challenge is not None:
        cards += _read_challenges(path, text, challenge, region_end(challenge), report)
    if not cards:
        report.error(path, 1, "no cards found on this quiz page; check that the whole page was copied")
    return cards


# -- Recall & Review, quizzes, open prompts -------------------------------------------------


def _read_main(path: str, text: list[str], start: int, end: int, report: Report) -> list[RawCard]:
    anchors = [i for i in range(start, end) if _is_anchor(text[i])]
    items: list[_Item] = []
    floor = start
    for a in anchors:
        item = _item_at(text, floor, a)
        if item is None:
            report.warn(path, a + 1, f"{text[a]!r} without the question before it; item skipped")
            floor = a + 1
            continue
        if items and items[-1].card.kind == "quiz":
            _finish_quiz(items[-1], text, item.start)
        elif item.start > floor:
            _stray(path, text, floor, item.start, report)
        items.append(item)
        floor = item.end
    if items and items[-1].card.kind == "quiz":
        _finish_quiz(items[-1], text, end)
        floor = max(floor, end)
    if floor < end:
        leftover = [i for i in range(floor, end) if text[i] and not _CHROME_RE.match(text[i])]
        if leftover:
            report.warn(
                path,
                leftover[0] + 1,
                "incomplete item at the end of this section (the copied text stops inside it); "
                "it was not packaged: copy the whole page",
            )
            report.count("incomplete")

    cards = [i.card for i in items]
    quizzes = [c for c in cards if c.kind == "quiz" and c.data.get("options")]
    inferred = sum(1 for c in quizzes if c.data.get("correct_inferred"))
    if quizzes:
        report.notes.append(
            f"{path}: {inferred} of {len(quizzes)} quiz answers inferred from the explanations"
        )
        report.count("inferred", inferred)
    return cards


def _item_at(text: list[str], floor: int, a: int) -> _Item | None:
    anchor = text[a]
    body = [i for i in range(floor, a) if text[i]]
    data: dict[str, object]
    if _REVEAL_RE.match(anchor):
        # level, question, answer line(s); the level line may be missing.
        levels = [k for k, i in enumerate(body) if _LEVEL_RE.match(text[i]) and k <= len(body) - 3]
        first = levels[-1] + 1 if levels else len(body) - 2
        if first < 0 or len(body) - first < 2:
            return None
        rest = body[first:]
        start = body[levels[-1]] if levels else rest[0]
        data = {
            "question": text[rest[0]],
            "answer": "\n".join(text[i] for i in rest[1:]),
        }
        if levels:
            data["level"] = text[body[levels[-1]]].lower()
        return _Item(start, a + 1, RawCard(start + 1, "recall", data))
    if concepts := _CONCEPTS_RE.match(anchor):
        if not body:
            return None
        if len(body) >= 2 and not _is_anchor(text[body[-2]]):
            start, data = body[-2], {"question": text[body[-2]], "hint": text[body[-1]]}
        else:
            start, data = body[-1], {"question": text[body[-1]]}
        data["concepts"] = int(concepts.group(1))
        return _Item(start, a + 1, RawCard(start + 1, "open", data))
    # A verdict: options (if the page kept them) right above it, the question above those.
    options: list[tuple[str, str]] = []
    j = len(body) - 1
    expected = None
    while j >= 0:
        match = _GLUED_OPTION_RE.match(text[body[j]])
        if not match:
            break
        letter = match.group(1)
        if expected is not None and letter != expected:
            break
        options.insert(0, (letter, match.group(2)))
        if letter == "A":
            j -= 1
            break
        expected = chr(ord(letter) - 1)
        j -= 1
    if not options or options[0][0] != "A" or len(options) < 2:
        options, j = [], len(body) - 1
    if j < 0:
        return None
    start = body[j]
    data = {"question": text[start], "options": [{"letter": ltr, "text": t} for ltr, t in options]}
    return _Item(start, a + 1, RawCard(start + 1, "quiz", data))


def _is_anchor(line: str) -> bool:
    return bool(_REVEAL_RE.match(line) or _VERDICT_RE.match(line) or _CONCEPTS_RE.match(line))


def _finish_quiz(item: _Item, text: list[str], until: int) -> None:
    explanation = "\n".join(text[i] for i in range(item.end, until) if text[i])
    data = item.card.data
    if explanation:
        data["explanation"] = explanation
    item.end = until
    options = data["options"]
    if not options:
        # Options lost in copying: the card asks the question and answers with the explanation.
        data.pop("options")
        if explanation:
            data["answer"] = data.pop("explanation")
        return
    letter = infer_correct(explanation, [(o["letter"], o["text"]) for o in options])
    if letter:
        data["correct"] = letter
        data["correct_inferred"] = True
        data["answer"] = next(o["text"] for o in options if o["letter"] == letter)


def _stray(path: str, text: list[str], start: int, end: int, report: Report) -> None:
    for i in range(start, end):
        if text[i] and not _CHROME_RE.match(text[i]):
            report.warn(path, i + 1, f"unrecognised text {text[i][:60]!r} ignored; is it part of a card?")


def _words(text: str) -> set[str]:
    words = set()
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        if word in _STOPWORDS or len(word) < 2:
            continue
        for suffix in ("ing", "ed", "es", "s"):
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                word = word[: -len(suffix)]
                break
        words.add(word)
    return words


def infer_correct(explanation: str, options: list[tuple[str, str]]) -> str | None:
    """Name the option an explanation clearly points to, or None when it is not clear."""
    said = re.search(r"\b(?i:option|answer(?: is)?)\s+([A-F])\b", explanation)
    if said and said.group(1) in {letter for letter, _ in options}:
        return said.group(1)
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
    if best >= 2 and share >= 0.3 and best >= 2 * runner_up:
        return letter
    return None


# -- Practice ---------------------------------------------------------------------------------


def _read_practice(path: str, text: list[str], start: int, end: int, report: Report) -> list[RawCard]:
    announced = None
    i = start + 1
    while i < end and not text[i]:
        i += 1
    if i < end and (counter := _COUNTER_RE.match(text[i])):
        announced = int(counter.group(2))
        i += 1
    starts: list[int] = []
    expected = 1
    for j in range(i, end):
        match = _NUMBERED_RE.match(text[j])
        if match and int(match.group(1)) == expected:
            starts.append(j)
            expected += 1
    cards: list[RawCard] = []
    incomplete = 0
    for n, s in enumerate(starts):
        block_end = starts[n + 1] if n + 1 < len(starts) else end
        card, missing = _practice_item(text, s, block_end)
        if card is None:
            incomplete += 1
            report.warn(
                path,
                s + 1,
                f"practice question {n + 1} is incomplete (no {missing}; the copied text stops "
                "inside it); it was not packaged: copy the whole page",
            )
            report.count("incomplete")
        else:
            cards.append(card)
    if announced is not None and len(starts) < announced:
        report.warn(
            path,
            start + 1,
            f"the page announces {announced} practice questions but holds {len(starts)}; "
            f"{announced - len(starts)} missing: copy the whole page",
        )
        report.count("missing", announced - len(starts))
    return cards


def _practice_item(text: list[str], start: int, end: int) -> tuple[RawCard | None, str]:
    number_match = _NUMBERED_RE.match(text[start])
    assert number_match is not None
    question = [number_match.group(2)]
    i = start + 1
    while i < end and not _DIFFICULTY_RE.match(text[i]):
        question.append(text[i])
        i += 1
    if i >= end:
        return None, "difficulty"
    data: dict[str, object] = {
        "number": int(number_match.group(1)),
        "question": "\n".join(question).strip(),
        "level": text[i].lower(),
    }
    i += 1
    options = []
    while i < end and (opt := _OPTION_RE.match(text[i])):
        options.append({"letter": opt.group(1), "text": opt.group(2)})
        i += 1
    if not options:
        return None, "options"
    data["options"] = options
    sections = _sections(text, i, end)
    if "solution" not in sections:
        return None, "Solution"
    steps, current = [], None
    for line in sections["solution"]:
        step = _STEP_RE.match(line)
        if step:
            current = {"title": f"Step {step.group(1)}: {step.group(2)}", "text": ""}
            steps.append(current)
        elif current is not None:
            current["text"] = (current["text"] + "\n" + line).strip()
    data["solution"] = steps
    final = " ".join(sections.get("final answer", []))
    final_match = _FINAL_RE.match(final)
    if not final_match:
        return None, "Final Answer"
    data["answer"] = final_match.group(1)
    data["correct"] = final_match.group(2).upper()
    if sections.get("quick check"):
        data["quick_check"] = _OK_RE.sub("", " ".join(sections["quick check"]))
    if sections.get("hint"):
        data["hint"] = _OK_RE.sub("", " ".join(sections["hint"]))
    if sections.get("common mistakes"):
        data["mistakes"] = sections["common mistakes"]
    return RawCard(start + 1, "practice", data), ""


def _sections(text: list[str], start: int, end: int) -> dict[str, list[str]]:
    """Split a Practice answer into its labelled parts: Solution, Final Answer, Hint, ..."""
    labels = ("solution", "final answer", "quick check", "hint", "common mistakes")
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for i in range(start, end):
        line = text[i]
        head, _, rest = line.partition(":")
        name = (head if rest or line.endswith(":") else line).strip().lower()
        if name in labels:
            current = found.setdefault(name, [])
            if rest.strip():
                current.append(rest.strip())
        elif current is not None and line:
            current.append(line)
    return found


# -- Challenges -------------------------------------------------------------------------------


def _read_challenges(path: str, text: list[str], start: int, end: int, report: Report) -> list[RawCard]:
    header = _CHALLENGE_RE.match(text[start])
    assert header is not None
    announced = int(header.group(1))
    timers = [i for i in range(start + 1, end) if _TIMER_RE.match(text[i])]
    cards: list[RawCard] = []
    for n, t in enumerate(timers):
        block_end = timers[n + 1] - 1 if n + 1 < len(timers) else end
        card = _challenge(path, text, t, block_end, report)
        if card is None:
            report.warn(
                path,
                t,
                f"challenge {n + 1} is incomplete (the copied text stops inside it); "
                "it was not packaged: copy the whole page",
            )
            report.count("incomplete")
        else:
            cards.append(card)
    if len(timers) < announced:
        report.warn(
            path,
            start + 1,
            f"the page announces {announced} problems but holds {len(timers)}; copy the whole page",
        )
        report.count("missing", announced - len(timers))
    return cards


def _challenge(path: str, text: list[str], t: int, end: int, report: Report) -> RawCard | None:
    timer = _TIMER_RE.match(text[t])
    assert timer is not None
    kind_line = _ICON_RE.sub("", text[t - 1]).strip() if t > 0 else ""
    body = list(range(t + 1, end))
    lines = [text[i] for i in body]
    try:
        attempts_at = next(k for k, line in enumerate(lines) if _ATTEMPTS_RE.match(line))
    except StopIteration:
        return None
    if attempts_at < 2:
        return None
    title, question_part = lines[0], lines[1:attempts_at]
    data: dict[str, object] = {
        "type": kind_line or "Challenge",
        "level": timer.group(1).lower(),
        "time_limit": timer.group(2),
        "title": title,
    }
    tags: list[str] = ["type::" + "_".join(kind_line.split())] if kind_line else []
    question, code = _split_code(question_part, tags)
    data["question"] = question
    if code is not None:
        restored, ok = restore(code)
        data["code"] = restored
        if not ok:
            report.warn(
                path,
                body[1] + 1,
                "code in this challenge is not valid Python even after restoring its lines; "
                "check it on the page",
            )
    rest = lines[attempts_at + 1 :]
    if rest and (left := _LEFT_RE.match(rest[0])):
        data["attempts"] = int(left.group(1))
        rest = rest[1:]
    hint: list[str] = []
    explanation: list[str] = []
    target: list[str] | None = None
    for line in rest:
        if _HINT_RE.match(line):
            target = hint
        elif _VERDICT_RE.match(line):
            target = explanation
        elif target is not None and line:
            target.append(line)
    if hint:
        data["hint"] = "\n".join(hint)
    if explanation:
        data["explanation"] = "\n".join(explanation)
    data["tags"] = tags
    return RawCard(t, "challenge", data)


def _split_code(part: list[str], tags: list[str]) -> tuple[str, str | None]:
    """Separate a challenge's question from its code, and a category word from both."""
    fence = next((k for k, line in enumerate(part) if line.startswith("```")), None)
    if fence is not None:
        close = next((k for k in range(fence + 1, len(part)) if part[k].startswith("```")), len(part))
        return "\n".join(part[:fence]).strip(), "\n".join(part[fence + 1 : close])
    if len(part) >= 3 and _CATEGORY_RE.match(part[1]):
        tags.append("topic::" + part[1])
        return part[0], "\n".join(part[2:])
    if len(part) >= 2:
        code = "\n".join(part[1:])
        if restore(code)[1] and any(ch in code for ch in "=()"):
            return part[0], code
    return "\n".join(part).strip(), None
