"""Write a static HTML preview of every card, front and back, as a learner will see them.

The page uses the note type's own template and CSS, and typesets formulas as MathML, so it
needs no network and no script.
"""

from __future__ import annotations

import html
import os
import re
import shutil
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from deckbuild import cache
from deckbuild.atomic import cannot_write, write_text
from deckbuild.build import collect, render_all, start_helpers
from deckbuild.errors import BuildFailed, Report
from deckbuild.memo import Memo
from deckbuild.notetype import CSS, NOTE_TYPES, NoteType
from deckbuild.render import MATH_IN_FIELD_RE, to_mathml
from deckbuild.sources import canonical, check_outdir, find_root

_SECTION_RE = re.compile(r"\{\{#(\w+)\}\}(.*?)\{\{/\1\}\}", re.S)

PAGE_CSS = """
body { margin: 0; font-family: system-ui, sans-serif; background: #f3f4f6; }
header { padding: 1em 2em; }
header a { margin-left: 1em; }
h2 { margin: 1.5em 2em 0.5em; font-size: 1.1em; }
.preview-card { display: grid; grid-template-columns: 1fr 1fr; gap: 1em; margin: 0 2em 1.5em; }
.preview-side {
  border-radius: 0.5em; box-shadow: 0 1px 3px rgba(0,0,0,.2); overflow: hidden; background: #fff;
}
.night_mode .preview-side { background: #1e1f22; }
.preview-side > .label { font: 12px monospace; padding: 0.3em 1em; background: #e5e7eb; color: #374151; }
.preview-side > .card { padding: 1em 1.2em; min-height: 4em; }
.hint summary { cursor: pointer; color: #0969da; }
.math-error { color: #cf222e; }
/* Long code lines wrap here, so that the page shows all of them (in Anki they scroll). */
.preview-side pre { white-space: pre-wrap; overflow-wrap: anywhere; }
/* A font with an OpenType MATH table: without one, browsers cannot stretch brackets. */
math { font-family: "STIX Two Math", "Latin Modern Math", "DejaVu Math TeX Gyre", "Cambria Math", math; }
"""
# The brackets latex2mathml writes around a matrix (pmatrix, bmatrix, …) as plain operators.
_MATRIX_FENCE_RE = re.compile(r"<mo>([^<]{1,12})</mo>(?=<mtable)|(?<=</mtable>)<mo>([^<]{1,12})</mo>")


@dataclass(frozen=True)
class PreviewResult:
    """What a preview wrote."""

    pages: list[Path]
    cards: int
    report: Report


def fill(template: str, fields: dict[str, str], front_side: str = "") -> str:
    """Fill an Anki card template: sections, {{hint:Field}}, {{FrontSide}} and {{Field}}."""
    out = _SECTION_RE.sub(
        lambda m: fill(m.group(2), fields, front_side) if fields.get(m.group(1)) else "", template
    )
    out = re.sub(
        r"\{\{hint:(\w+)\}\}",
        lambda m: f'<details class="hint"><summary>Hint</summary>{fields.get(m.group(1), "")}</details>',
        out,
    )
    out = out.replace("{{FrontSide}}", front_side)
    return re.sub(r"\{\{(\w+)\}\}", lambda m: fields.get(m.group(1), ""), out)


def card_sides(notetype: NoteType, fields: dict[str, str]) -> list[tuple[str, str, str]]:
    """Return each card a note gives, as (label prefix, front, back), through its note type's templates."""
    out = []
    if notetype.cloze:
        from deckbuild.cloze import card_text, numbers

        (template,) = notetype.templates
        qfmt, afmt = (template[side].replace("{{cloze:Text}}", "{{Text}}") for side in ("qfmt", "afmt"))
        for n in numbers(fields["Text"]):
            front = fill(qfmt, {**fields, "Text": card_text(fields["Text"], n, answer=False)})
            back = fill(afmt, {**fields, "Text": card_text(fields["Text"], n, answer=True)}, front)
            out.append((f"c{n} ", front, back))
        return out
    for template in notetype.templates:
        name = "" if len(notetype.templates) == 1 else f"{template['name'].lower()} "
        front = fill(template["qfmt"], fields)
        out.append((name, front, fill(template["afmt"], fields, front)))
    return out


def typeset(markup: str) -> str:
    """Replace MathJax delimiters with MathML, which browsers typeset without any script."""

    def convert(match: re.Match[str]) -> str:
        display = match.group(2) is not None
        body = html.unescape(match.group(2) if display else match.group(1))
        mathml = to_mathml(body, display)
        if mathml is None:
            return f'<span class="math-error">{match.group(0)}</span>'
        return _MATRIX_FENCE_RE.sub(_stretch, mathml) if "<mtable" in mathml else mathml

    return MATH_IN_FIELD_RE.sub(convert, markup)


def _stretch(match: re.Match[str]) -> str:
    """Make a matrix's bracket grow with it, as \\left( … \\right) already does."""
    opening = match.group(1) is not None
    form = "prefix" if opening else "postfix"
    return f'<mo stretchy="true" fence="true" form="{form}">{match.group(1 if opening else 2)}</mo>'


def _page(title: str, body: list[str], night: bool, other: str) -> str:
    mode = "night" if night else "day"
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(title)} ({mode})</title>",
            f"<style>{CSS}{PAGE_CSS}</style></head>",
            f'<body class="{"night_mode" if night else ""}">',
            f'<header><strong>{html.escape(title)}</strong><a href="{other}">'
            f"{'day' if night else 'night'} mode</a></header>",
            *body,
            "</body></html>",
            "",
        ]
    )


def write_preview(paths: Iterable[Path], outdir: Path) -> PreviewResult:
    """Render every card below `paths` into `outdir/index.html` (and `night.html`)."""
    paths = list(paths)
    check_outdir(outdir, {find_root(p) for p in canonical(paths)})
    by_package: dict[str, dict[str, Path]] = {}
    with closing(cache.Cache(cache.cache_dir())) as store, start_helpers(os.cpu_count() or 1) as helping:
        memo = Memo(store)
        collection = collect(paths, memo=memo, helpers=helping)
        values = render_all(collection, by_package)
        memo.save(helping)
    report = collection.report
    if note := store.note():
        report.notes.append(note)
    rendered = [
        (p, dict(zip(NOTE_TYPES[p.notetype].fields, f, strict=True)))
        for p, f in zip(collection.cards, values, strict=True)
    ]
    media = {name: path for files in by_package.values() for name, path in files.items()}
    if report.errors:
        raise BuildFailed(report)
    pages: dict[bool, list[str]] = {False: [], True: []}
    deck = None
    # A deck before its subdecks, as Anki lists them; cards keep their source order within a deck.
    for parsed, fields in sorted(rendered, key=lambda card: card[0].deck.split("::")):
        if parsed.deck != deck:
            deck = parsed.deck
            for body in pages.values():
                body.append(f"<h2>{html.escape(deck)}</h2>")
        for name, front, back in card_sides(NOTE_TYPES[parsed.notetype], fields):
            for night, body in pages.items():
                card_class = "card nightMode" if night else "card"
                sides = "".join(
                    f'<div class="preview-side"><div class="label">{label} · {html.escape(parsed.where)}'
                    f'</div><div class="{card_class}">{typeset(side)}</div></div>'
                    for label, side in ((f"{name}front", front), (f"{name}back", back))
                )
                body.append(f'<section class="preview-card" id="{parsed.id}">{sides}</section>')

    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise cannot_write(outdir, exc) from None
    written = []
    for night, name, other in ((False, "index.html", "night.html"), (True, "night.html", "index.html")):
        target = outdir / name
        write_text(target, _page("deckbuild preview", pages[night], night, other))
        written.append(target)
    for name, source in sorted(media.items()):
        try:
            shutil.copyfile(source, outdir / name)
        except OSError as exc:
            raise cannot_write(outdir / name, exc) from None
    return PreviewResult(written, len(rendered), report)
