"""Card models: every card is validated here before anything is rendered or written."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
)
from pydantic_core import PydanticCustomError

from deckbuild.errors import ANKI_GUID, UNSAFE_NAME_RE, UNSAFE_RE, UUID, unsafe_character

UUID_RE = re.compile(f"^{UUID}$")
GUID_RE = re.compile(ANKI_GUID)
LETTERS = ("A", "B", "C", "D", "E", "F")


def _uuid(value: str, info: ValidationInfo) -> str:
    # Kept verbatim (not normalised) because it becomes the Anki GUID as written.
    if info.data.get("anki_guid"):
        # Only a GUID column holds another deck's GUIDs: a UUID column stays strict, so that a
        # hand-written id there ('1234') is caught rather than shared with some other deck.
        if not GUID_RE.fullmatch(value):
            raise ValueError(
                f"invalid GUID {value!r}; a GUID is 1 to 100 printable ASCII characters without blanks"
            )
    elif not UUID_RE.match(value):
        raise ValueError(f"invalid UUID {value!r}; write it as 8-4-4-4-12 hex digits")
    return value


def _checked(pattern: re.Pattern[str], advice: str) -> Any:
    # `pattern` finds only characters str.isprintable() refuses (tests/test_models.py tries every
    # character): printable text, nearly all of it, is passed in C without a search.
    def check(value: str) -> str:
        if value.isprintable() or (found := pattern.search(value)) is None:
            return value
        raise PydanticCustomError(
            "unsafe_character",
            "holds {what} at character {at}, which Anki cannot store; {advice}",
            {"what": unsafe_character(found.group()), "at": found.start() + 1, "advice": advice},
        )

    return AfterValidator(check)


_PLAIN = _checked(UNSAFE_RE, "delete it")
_NAME = _checked(UNSAFE_NAME_RE, "rename the file or folder")


def _text(value: str, info: ValidationInfo) -> str:
    if not value.strip():
        raise ValueError(f"the {info.field_name} is empty; write it, or remove the card")
    return value


_SPACE_RE = re.compile(r"\s")


def _tag(value: str) -> str:
    # No blank but " " is printable (a test tries every character): printable text needs no search.
    if not value or (" " in value if value.isprintable() else _SPACE_RE.search(value)):
        raise ValueError(f"invalid tag {value!r}; tags are non-empty and have no spaces")
    if "::" in value and "" in value.split("::"):
        # Anki names an empty part of a tag's hierarchy "blank": the learner's tag would differ.
        why = "a part between '::' is empty (Anki would name it 'blank'); remove the extra '::'"
        raise ValueError(f"invalid tag {value!r}: {why}")
    return value


Uuid = Annotated[str, AfterValidator(_uuid)]
# Every text field is one of these, so no reader can bring in a character Anki cannot keep.
Plain = Annotated[str, _PLAIN]
Text = Annotated[str, _PLAIN, AfterValidator(_text)]
Tag = Annotated[str, _checked(UNSAFE_RE, "rename the file, or delete the character"), AfterValidator(_tag)]
Letter = Literal["A", "B", "C", "D", "E", "F"]
Level = Literal["beginner", "intermediate", "advanced", "expert", "easy", "medium", "hard"]


class _Frozen(BaseModel):
    # Each kind's validator is built when a card of that kind is first validated: a rebuild
    # validates a card or two of one kind, and its helper waited for all of them to be built.
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class Option(_Frozen):
    """One lettered choice of a quiz or practice question."""

    letter: Letter
    text: Text


class Step(_Frozen):
    """One step of a worked solution."""

    title: Plain
    text: Plain


class CardBase(_Frozen):
    """What every card has: identity, place, question and answer."""

    # Set by a GUID column (a deck moved from Anki): `id` is then that deck's GUID, not a UUID.
    anki_guid: bool = Field(default=False, exclude=True)
    id: Uuid
    kind: str
    deck: Annotated[str, _NAME, AfterValidator(_text)]
    question: Text
    answer: Plain | None = None
    tags: tuple[Tag, ...] = ()
    source: Annotated[str, _NAME, Field(pattern=r".+:\d+$")]

    @property
    def path(self) -> str:
        return self.source.rsplit(":", 1)[0]

    @property
    def line(self) -> int:
        return int(self.source.rsplit(":", 1)[1])


class BasicCard(CardBase):
    """A question and its answer, as in a `Question;Answer;UUID` file."""

    kind: Literal["basic"] = "basic"
    answer: Text
    # Optional columns of a semicolon file: a hint behind Anki's link, and extra text on the back.
    hint: Plain | None = None
    extra: Plain | None = None
    # A second card, answer to question (the "reversed" note type).
    reverse: bool = False
    # The name of a note type kept from an imported deck (deckbuild.kept); none: deckbuild's own.
    notetype: Plain | None = None


class RecallCard(CardBase):
    """A Recall & Review flashcard with its level."""

    kind: Literal["recall"] = "recall"
    answer: Text
    level: Level | None = None


class QuizCard(CardBase):
    """A multiple-choice question; options may have been lost in copying."""

    kind: Literal["quiz"] = "quiz"
    options: tuple[Option, ...] = ()
    correct: Letter | None = None
    correct_inferred: bool = False
    explanation: Plain | None = None


class OpenCard(CardBase):
    """An open prompt with a hint and the number of concepts expected."""

    kind: Literal["open"] = "open"
    hint: Plain | None = None
    concepts: int | None = None


class PracticeCard(CardBase):
    """A worked Practice problem: options, solution steps, final answer."""

    kind: Literal["practice"] = "practice"
    number: int
    level: Level | None = None
    options: tuple[Option, ...] = ()
    correct: Letter | None = None
    solution: tuple[Step, ...] = ()
    quick_check: Plain | None = None
    hint: Plain | None = None
    mistakes: tuple[Plain, ...] = ()


class ChallengeCard(CardBase):
    """A timed Challenge problem, possibly with code."""

    kind: Literal["challenge"] = "challenge"
    type: Plain
    level: Level | None = None
    time_limit: Annotated[str, Field(pattern=r"^\d+:\d\d$")] | None = None
    title: Plain | None = None
    code: Plain | None = None
    code_language: Annotated[str, Field(pattern=r"^[\w+#-]{1,24}$")] | None = None
    attempts: int | None = None
    hint: Plain | None = None
    explanation: Plain | None = None
    solution: tuple[Step, ...] = ()


def _cloze_text(value: str) -> str:
    from deckbuild.cloze import problem

    if found := problem(value):
        raise ValueError(found)
    return value


class ClozeCard(CardBase):
    """A text with cloze deletions ({{c1::…}}): one card per cloze number; the answer is extra."""

    kind: Literal["cloze"] = "cloze"
    question: Annotated[str, _PLAIN, AfterValidator(_text), AfterValidator(_cloze_text)]
    hint: Plain | None = None
    extra: Plain | None = None
    notetype: Plain | None = None


Card = Annotated[
    BasicCard | RecallCard | QuizCard | OpenCard | PracticeCard | ChallengeCard | ClozeCard,
    Field(discriminator="kind"),
]
KINDS = ("basic", "recall", "quiz", "open", "practice", "challenge", "cloze")
# Each kind's model, by the kind `Card` tells them apart by.
_MODELS: dict[str, type[CardBase]] = {
    model.model_fields["kind"].default: model
    for model in (BasicCard, RecallCard, QuizCard, OpenCard, PracticeCard, ChallengeCard, ClozeCard)
}


@lru_cache(maxsize=1)
def _card() -> TypeAdapter[Any]:
    """Return the validator of any card, built once a card of no known kind asks for it."""
    return TypeAdapter(Card)


def make_card(data: dict[str, Any]) -> CardBase:
    """Validate `data` as a card; raise ValueError with a readable message."""
    kind = data.get("kind")
    model = _MODELS.get(kind) if type(kind) is str else None
    try:
        # What `Card` does with a card of a known kind: its kind's model validates it, as
        # `model_validate` has it done, without that method's own checks of its arguments (a
        # fifth of the call). A validator not built yet is built at this first use.
        validator = _card() if model is None else model.__pydantic_validator__
        card: CardBase = validator.validate_python(data)
    except ValidationError as exc:
        # Located as `Card` locates it, below the kind.
        raise ValueError(describe(exc, () if model is None else (kind,))) from None
    return card


def describe(exc: ValidationError, within: tuple[Any, ...] = ()) -> str:
    """Turn a pydantic error into one short line a deck author understands."""
    parts = []
    for err in exc.errors():
        loc = (*within, *err["loc"])
        if err["type"] == "unsafe_character":
            parts.append(f"{_place(loc)} {err['msg']}")
            continue
        if err["type"] == "value_error":
            # Our validators write whole sentences.
            parts.append(str(err["ctx"]["error"]))
            continue
        # The discriminator's own name is noise in the location.
        where = ".".join(str(p) for p in loc[1:] or loc)
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


_PLACES = {
    "deck": "deck name",
    "source": "file path",
    "tags": "tag",
    "options": "option",
    "mistakes": "mistake",
}


def _place(loc: tuple[int | str, ...]) -> str:
    """Name a field for a message: `the question`, `the option 2 text`, `the tag 3`."""
    words: list[str] = []
    # The first item is the card kind, the discriminator's noise.
    for part in loc[1:]:
        if isinstance(part, int) and words:
            words[-1] += f" {part + 1}"
        else:
            words.append(_PLACES.get(str(part), str(part).replace("_", " ")))
    return "the " + " ".join(words)


def card_json(card: CardBase) -> dict[str, Any]:
    """Return the card as the plain JSON object `deckbuild cards --json` prints."""
    data: dict[str, Any] = card.model_dump(mode="json")
    if data.get("notetype") is None:
        data.pop("notetype", None)  # deckbuild's own note type, as for every card before
    ordered = {k: data.pop(k) for k in ("id", "deck", "kind", "question", "answer", "tags", "source")}
    ordered.update(sorted(data.items()))
    return ordered
