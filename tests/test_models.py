"""Card models: frozen, strict, and readable when they refuse something."""

from __future__ import annotations

import pydantic
import pytest

from deckbuild.models import BasicCard, card_json, make_card

UUID = "faac118b-14d2-4225-82ce-5a1c2b22f894"


def basic(**over):
    data = {"kind": "basic", "id": UUID, "deck": "D", "question": "Q", "answer": "A", "source": "f.txt:3"}
    data.update(over)
    return data


def test_a_valid_card_keeps_its_uuid_verbatim():
    card = make_card(basic(id=UUID.upper()))
    assert isinstance(card, BasicCard)
    assert card.id == UUID.upper()
    assert (card.path, card.line) == ("f.txt", 3)


def test_cards_are_frozen_and_refuse_extra_fields():
    card = make_card(basic())
    with pytest.raises(pydantic.ValidationError):
        card.question = "changed"  # type: ignore[misc]
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        make_card(basic(colour="red"))


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"id": "not-a-uuid"}, "invalid UUID 'not-a-uuid'; write it as 8-4-4-4-12 hex digits"),
        ({"id": "{" + UUID + "}"}, "invalid UUID '{" + UUID + "}'; write it as 8-4-4-4-12 hex digits"),
        ({"question": "  "}, "the question is empty; write it, or remove the card"),
        ({"answer": ""}, "the answer is empty; write it, or remove the card"),
        ({"tags": ["two words"]}, "invalid tag 'two words'; tags are non-empty and have no spaces"),
    ],
)
def test_invalid_cards_are_refused_with_a_sentence(over, message):
    with pytest.raises(ValueError) as info:
        make_card(basic(**over))
    assert str(info.value) == message


def test_json_puts_the_common_keys_first():
    data = card_json(make_card(basic(tags=["kind::basic"])))
    assert list(data)[:7] == ["id", "deck", "kind", "question", "answer", "tags", "source"]
    assert data["source"] == "f.txt:3"
