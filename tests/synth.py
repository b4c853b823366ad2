"""Synthetic decks shaped like the seeds: LaTeX, <br> lists, inline code. For tests and benchmarks."""

from __future__ import annotations

import random
import uuid
from pathlib import Path

HEADER = "Question;Answer;UUID\n"
_SHAPES = (
    "The query vector (\\(\\mathbf{{Q}}_{{{n}}}\\)) is the token's question, with \\(d_k = {m}\\).",
    "- Attention {n}: weights sum to 1.<br> - Self-attention {n}: tokens attend to their sequence.<br>",
    "Scores are \\[ \\frac{{\\mathbf{{Q}} \\mathbf{{K}}^\\top}}{{\\sqrt{{{m}}}}} \\] for head {n}.",
    "Call `softmax(scores_{n}, dim=-1)` to get weights, then multiply by V ({m} columns).",
)


def row(n: int, rnd: random.Random) -> str:
    """One card: a question, an answer in one of the seed shapes, a UUID fixed by `n`."""
    answer = _SHAPES[n % len(_SHAPES)].format(n=n, m=rnd.randint(2, 512))
    guid = uuid.UUID(int=rnd.getrandbits(128), version=4)
    return f"What does step {n} of attention compute?;{answer};{guid}\n"


def write_deck(path: Path, count: int, seed: int = 0) -> Path:
    """Write a semicolon file of `count` cards at `path`."""
    rnd = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join(row(n, rnd) for n in range(count)), encoding="utf-8")
    return path
