"""Untrusted text: nothing that can run script reaches any field of any card, from any format."""

from __future__ import annotations

import time
from html.parser import HTMLParser

import pytest

from ankihelp import import_package, notes_by_guid
from conftest import DATA, put
from deckbuild.build import build

pytestmark = pytest.mark.anki
ACTIVE_TAGS = {"script", "iframe", "object", "embed", "svg", "math", "form", "input", "style", "meta",
               "base", "link", "details"}  # fmt: skip
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "data", "srcdoc"}


class Elements(HTMLParser):
    """Every element and attribute a browser would build from a field."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, attrs))


def dangers(markup: str) -> list[str]:
    parser = Elements()
    parser.feed(markup)
    bad = []
    for tag, attrs in parser.found:
        if tag in ACTIVE_TAGS:
            bad.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                bad.append(f"{tag} {name}")
            if (
                name in URL_ATTRIBUTES
                and value
                and value.strip().lower().startswith(("javascript:", "data:"))
            ):
                bad.append(f"{tag} {name}={value}")
    return bad


def test_the_checker_sees_what_it_must():
    assert dangers('<p onclick="x">a</p><script></script><a href=" JavaScript:x">b</a>') == [
        "p onclick", "<script>", "a href= JavaScript:x",
    ]  # fmt: skip


def test_no_field_of_any_card_from_a_hostile_page_or_file_can_run_script(deck_tree, tmp_path, collection):
    put(deck_tree, "Hostile/page.txt", DATA / "security" / "hostile_page.txt")
    put(deck_tree, "Hostile/constructs.txt", DATA / "anki" / "constructs.txt")
    put(deck_tree, "Hostile/img/diagram.png", DATA / "anki" / "diagram.png")
    (apkg,) = build([deck_tree], tmp_path / "dist", now=int(time.time()) - 100).packages
    log = import_package(collection, apkg)
    notes = notes_by_guid(collection)
    kinds = {n["Kind"] for n in notes.values()}
    assert kinds == {"basic", "recall", "quiz", "open", "practice", "challenge"}
    assert log.new == len(notes) == 10
    for guid, note in notes.items():
        for name, value in note.items():
            assert dangers(value) == [], f"{guid} {name}: {value}"
    challenge = next(n for n in notes.values() if n["Kind"] == "challenge")
    assert "&lt;script&gt;" in challenge["Code"], "code shows the script as text"
