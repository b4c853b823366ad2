"""Worked solutions for `deckbuild calc softmax` and `layernorm`: every intermediate, no I/O.

The calculator (calc.py) gives answers; these give the steps a learner follows to them, and
answer a list with a list (one row's numbers), a matrix row by row.
"""

from __future__ import annotations

import math
from typing import Any

from deckbuild import calc
from deckbuild.calc import CalcError, Step, fmt


def _like(given: Any, data: dict[str, Any]) -> dict[str, Any]:
    """Give row-wise results as the input came: for a list, one row's numbers, not a 1×n matrix."""
    if isinstance(given, list) and not any(isinstance(v, list) for v in given):
        return {key: value[0] for key, value in data.items()}
    return data


def softmax(values: Any, name: str = "VALUES") -> tuple[dict[str, Any], list[Step]]:
    """Softmax of a list, or of each row of a matrix, with its max, shift, exponentials and sum."""
    rows = calc.as_matrix(values, name)
    output = calc.softmax_rows(rows)
    shifted = [[x - max(row) for x in row] for row in rows]
    if not all(math.isfinite(x) for row in shifted for x in row):
        raise CalcError(
            "the values of a row span more than a float holds (x - max overflows); use smaller numbers"
        )
    exps = [[math.exp(x) for x in row] for row in shifted]
    data = _like(values, {
        "output": output, "max": [max(r) for r in rows], "shifted": shifted, "exp": exps,
        "sum": [math.fsum(r) for r in exps],
    })  # fmt: skip
    return data, [
        ("Step 1: Subtract the maximum (for numerical stability)",
         f"x - {fmt(data['max'])} = {fmt(data['shifted'])}"),
        ("Step 2: Exponentiate", f"exp = {fmt(data['exp'])}"),
        ("Step 3: Divide by the sum", f"sum = {fmt(data['sum'])}; softmax = {fmt(data['output'])}"),
    ]  # fmt: skip


def layer_norm(
    x: Any, gamma: Any = None, beta: Any = None, eps: float = 1e-5
) -> tuple[dict[str, Any], list[Step]]:
    """Layer normalisation with each row's mean, variance and normalised values."""
    output = calc.layer_norm(x, gamma, beta, eps)  # checks shapes, eps and overflow first
    rows = calc.as_matrix(x, "X")
    means = [math.fsum(row) / len(row) for row in rows]
    variances = [math.fsum((v - m) ** 2 for v in row) / len(row) for row, m in zip(rows, means, strict=True)]
    normalized = [
        [(v - m) / math.sqrt(var + eps) for v in row]
        for row, m, var in zip(rows, means, variances, strict=True)
    ]
    data = _like(x, {"output": output, "mean": means, "variance": variances, "normalized": normalized})
    return data, [
        ("Step 1: Mean of each row", f"mean = {fmt(data['mean'])}"),
        ("Step 2: Variance of each row (divided by n)", f"variance = {fmt(data['variance'])}"),
        (f"Step 3: Normalise: (x - mean) / sqrt(variance + {eps:g})", f"x̂ = {fmt(data['normalized'])}"),
        ("Step 4: Scale by gamma and shift by beta", f"y = x̂ · gamma + beta = {fmt(data['output'])}"),
    ]
