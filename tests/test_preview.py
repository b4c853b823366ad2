"""The HTML preview: every card, front and back, with formulas typeset and no script."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from conftest import DATA, put, seed
from deckbuild.cli import cli
from deckbuild.preview import fill, write_preview

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--virtual-time-budget=3000",
]  # fmt: skip


@pytest.fixture
def preview(deck_tree, tmp_path):
    put(deck_tree, "Attention/003.txt", seed("003"))
    put(deck_tree, "Attention/Pages/001.txt", seed("001"))
    return write_preview([deck_tree], tmp_path / "preview")


def test_fill_follows_anki_template_rules():
    fields = {"Front": "Q", "Hint": "H", "Empty": ""}
    template = "{{#Empty}}gone{{/Empty}}{{#Front}}[{{Front}}]{{/Front}}{{hint:Hint}}|{{FrontSide}}"
    assert fill(template, fields, "F") == '[Q]<details class="hint"><summary>Hint</summary>H</details>|F'


def test_every_card_is_shown_front_and_back_with_formulas_as_mathml(preview):
    assert preview.cards == 57 + 15
    page = preview.pages[0].read_text(encoding="utf-8")
    assert page.count('class="preview-card"') == 72
    assert page.count('class="label">front') == page.count('class="label">back') == 72
    assert "<math" in page and r"\(" not in page and r"\[" not in page
    assert "<script" not in page.lower()
    night = preview.pages[1].read_text(encoding="utf-8")
    assert '<body class="night_mode">' in night and "card nightMode" in night


def test_preview_command_says_what_it_wrote(deck_tree, monkeypatch):
    put(deck_tree, "Deck/003.txt", seed("003"))
    monkeypatch.chdir(deck_tree.parent)
    result = CliRunner().invoke(cli, ["preview", "decks", "-o", "out"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "wrote out/index.html\nwrote out/night.html\n57 card(s) previewed\n"


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_preview_renders_in_headless_chromium_with_formulas_typeset(preview, tmp_path):
    page = preview.pages[0]
    # Measure in the browser: a test-only copy, since the preview itself carries no script.
    probe = page.with_name("probe.html")
    probe.write_text(
        page.read_text(encoding="utf-8").replace(
            "</body>",
            "<script>const m=[...document.querySelectorAll('math')];"
            "document.body.dataset.math=m.length;"
            "document.body.dataset.typeset=m.filter(e=>{const r=e.getBoundingClientRect();"
            "return r.width>0&&r.height>0}).length;</script></body>",
        ),
        encoding="utf-8",
    )
    profile = str(tmp_path / "profile")
    dom = subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    found = re.search(r'data-math="(\d+)" data-typeset="(\d+)"', dom)
    assert found, dom[:500]
    total, typeset = map(int, found.groups())
    assert total == page.read_text(encoding="utf-8").count("<math ") > 0
    assert typeset == total, "every formula is laid out by the browser"

    shot = tmp_path / "preview.png"
    subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1280,2400",
         f"--screenshot={shot}", page.as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(data[16:20], "big") == 1280
    assert len(data) > 50_000, "a page of cards, not a blank screenshot"


@pytest.fixture
def demo(deck_tree, tmp_path):
    """A deck with a long code line, a matrix and a fenced fraction, and a subdeck."""
    put(deck_tree, "Demo/Sub/sub.txt", DATA / "preview" / "subdeck.txt")
    put(deck_tree, "Demo/main.txt", DATA / "preview" / "long_code_and_matrix.txt")
    return write_preview([deck_tree], tmp_path / "preview")


def test_a_deck_comes_before_its_subdecks(demo):
    page = demo.pages[0].read_text(encoding="utf-8")
    assert re.findall(r"<h2>(.*?)</h2>", page) == ["Demo", "Demo::Sub"]


def test_matrix_brackets_are_marked_to_stretch_like_left_and_right(demo):
    page = demo.pages[0].read_text(encoding="utf-8")
    fences = re.findall(r'<mo stretchy="true" fence="true" form="(\w+)">([^<]*)</mo>', page)
    assert fences.count(("prefix", "&#x00028;")) == 2 and fences.count(("postfix", "&#x00029;")) == 2
    assert not re.search(r"<mo>[^<]*</mo><mtable|</mtable><mo>", page), "no matrix bracket left plain"


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_long_code_lines_wrap_and_brackets_grow_in_the_browser(demo, tmp_path):
    page = demo.pages[0]
    probe = page.with_name("probe.html")
    probe.write_text(
        page.read_text(encoding="utf-8").replace(
            "</body>",
            "<script>const pre=[...document.querySelectorAll('.preview-side pre')];"
            "document.body.dataset.clipped=pre.filter(e=>e.scrollWidth>e.clientWidth+1).length;"
            "document.body.dataset.pre=pre.length;"
            "const mo=[...document.querySelectorAll('mo[fence]')].map(e=>e.getBoundingClientRect().height);"
            "const mi=document.querySelector('mi').getBoundingClientRect().height;"
            "document.body.dataset.ratio=(Math.min(...mo)/mi).toFixed(2);</script></body>",
        ),
        encoding="utf-8",
    )
    dom = subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    found = re.search(r'data-clipped="(\d+)" data-pre="(\d+)" data-ratio="([\d.]+)"', dom)
    assert found, dom[:500]
    clipped, blocks, ratio = int(found.group(1)), int(found.group(2)), float(found.group(3))
    assert blocks == 2 and clipped == 0, "every code line is shown whole"
    assert ratio > 1.5, "the brackets grow with the fraction and the matrix they hold"
