"""Time rendering one field made of a repeated special token, at doubling sizes.

    python benchmarks/linear.py [--tokens '\\(' '[' ...] [--start 500]

First the math scanner alone (`extract`, no limits applied), at sizes far past the field
limit: its ratios must stay near 2. Then, for each token, it renders fields of n, 2n, 4n, …
copies up to the largest field the limits accept (`deckbuild.limits.field_problem`), and one
size beyond, which must be refused. It prints each time and its ratio to the size before:
about 2 is linear, about 4 quadratic. Whatever is quadratic must stay cheap at the limit: the
last column, the time of the largest accepted field, is the most one field can cost, so a
build's time stays linear in its number of fields.
Not a unit test: times vary from machine to machine.
"""

from __future__ import annotations

import argparse
import time

from deckbuild.errors import Report
from deckbuild.limits import MAX_FIELD_CHARS, field_problem
from deckbuild.render import Where, extract, render_text

TOKENS = [
    "\\(", "\\[", "\\\\[", "$", "$$", "$a ", "`", "``", "``a`", "```\n", "~~~\na\n", "a\n```x\n",
    "<", "<a ", "<div>", "<br>", "&", "[", "![", "[a](", "]", "*", "**", "*a ", "_", "> ", ">",
    "- ", "1. ", "    - a\n", "{", "\\left", "\\", "|", "a\n",
]  # fmt: skip


SCANNED = ["\\(", "\\[", "$$", "$", "$a ", "\\", "\\(x\\) $"]


def scan_growth(token: str, sizes: list[int]) -> str:
    """Time the math scanner over `token` repeated to each size; show the ratios."""
    row, previous = [], None
    for n in sizes:
        start = time.perf_counter()
        extract(token * n, Where("bench", 1), Report())
        seconds = time.perf_counter() - start
        row.append(f"{n}:{seconds:.4f}" + (f" ({seconds / previous:.1f}x)" if previous else ""))
        previous = seconds
    return "  ".join(row)


def render_seconds(text: str) -> tuple[float, bool]:
    """Render `text` as one field; return the time it took and whether it was refused."""
    report = Report()
    start = time.perf_counter()
    render_text(text, Where("bench", 1), report)
    elapsed = time.perf_counter() - start
    refused = any("field " in p.message and "; " in p.message for p in report.errors)
    return elapsed, refused


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--tokens", nargs="+", default=TOKENS)
    parser.add_argument("--start", type=int, default=64, help="copies of the token in the smallest field")
    args = parser.parse_args()
    render_seconds("warm *up* [a](b) `c`")  # imports Markdown and Pygments outside the timings
    print("math scanner alone, copies:seconds (ratio to the size before)")
    for token in SCANNED:
        print(f"{token!r:>14}  {scan_growth(token, [20_000, 40_000, 80_000, 160_000])}")
    worst = 0.0
    print(f"{'token':>14}  copies:seconds (ratio to the size before) …   at the limit")
    for token in args.tokens:
        row, previous, n, at_limit = [], None, args.start, 0.0
        while True:
            text = token * n
            seconds, refused = render_seconds(text)
            ratio = f" ({seconds / previous:.1f}x)" if previous and previous > 1e-4 else ""
            row.append(f"{n}:{seconds:.4f}{ratio}{' refused' if refused else ''}")
            if field_problem(text) is not None or len(text) > MAX_FIELD_CHARS:
                break
            at_limit, previous, n = seconds, seconds, n * 2
        worst = max(worst, at_limit)
        print(f"{token!r:>14}  {'  '.join(row)}   {at_limit:.3f} s")
    print(f"slowest accepted field: {worst:.3f} s")


if __name__ == "__main__":
    main()
