"""Transformer maths in plain Python, for answers computed at build time. No I/O, no NumPy.

Conventions (as in the seed decks): rows are tokens, weights multiply on the right
(Q = X W^q), heads take contiguous column blocks of Q, K and V, the default scale is
1/sqrt(d_k), and a causal mask lets position i attend to positions j <= i.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

Matrix = list[list[float]]
Vector = list[float]
Step = tuple[str, str]

# Bounds on one calculation, so that no directive or command can take the machine's memory or
# minutes: numbers in any one matrix (inputs, results, intermediates), and multiplications in
# one whole calculation (about a second of pure Python). A card's answer is a few dozen numbers.
MAX_ELEMENTS = 100_000
MAX_PRODUCTS = 2_000_000
# JSON nesting a matrix argument may have; a matrix needs 2 (3 with a head axis, never here).
MAX_DEPTH = 32


class CalcError(ValueError):
    """Inputs the calculator cannot use: wrong shapes, not numbers, nothing to attend to."""


def as_matrix(value: Any, name: str) -> Matrix:
    """Check that `value` is a non-empty rectangular matrix of numbers; return it as floats."""
    if value == []:
        raise CalcError(f"{name} is empty; give its numbers, like [[1, 0], [0, 1]] or one row, like [1, 0]")
    if isinstance(value, list) and not any(isinstance(x, list) for x in value):
        value = [value]  # a single row written as a flat list, checked as a row below
    if not isinstance(value, list) or not all(isinstance(r, list) for r in value):
        raise CalcError(
            f"{name} must be a matrix: a list of rows of numbers, like [[1, 0], [0, 1]], or one row, "
            "like [1, 0]"
        )
    width = len(value[0])
    if width == 0:
        raise CalcError(f"{name} has an empty row")
    _bound(len(value), width, name)
    for i, row in enumerate(value):
        if len(row) != width:
            raise CalcError(
                f"{name} is not rectangular: row 1 has {width} values, row {i + 1} has {len(row)}"
            )
        if not all(_is_number(x) for x in row):
            raise CalcError(f"{name} row {i + 1} {_not_a_number(row)}")
    return [[float(x) for x in row] for row in value]


def as_vector(value: Any, name: str) -> Vector:
    """Check that `value` is a non-empty list of numbers."""
    if not isinstance(value, list) or not value:
        raise CalcError(f"{name} must be a list of numbers, like [1, 0.5]")
    _bound(1, len(value), name)
    if not all(_is_number(x) for x in value):
        raise CalcError(f"{name} {_not_a_number(value)}")
    return [float(x) for x in value]


def as_scalar(value: Any, name: str) -> float:
    """Check that `value` is one finite number."""
    if not _is_number(value):
        raise CalcError(f"{name} must be a finite number, like 0.5")
    return float(value)


def _is_number(x: Any) -> bool:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return False
    try:
        return math.isfinite(x)
    except OverflowError:  # an int too large for a float
        return False


def _not_a_number(values: list[Any]) -> str:
    bad = next(x for x in values if not _is_number(x))
    if isinstance(bad, int | float) and not isinstance(bad, bool):
        return (
            "holds a number too large or not finite (inf, nan); numbers must fit a float, up to about 1e308"
        )
    return "holds something that is not a number"


def _bound(rows: int, cols: int, name: str) -> None:
    if rows * cols > MAX_ELEMENTS:
        raise CalcError(
            f"{name} would hold {rows}×{cols} = {rows * cols:,} numbers; "
            f"the calculator takes at most {MAX_ELEMENTS:,} in one matrix"
        )


def _work(products: int, what: str) -> None:
    if products > MAX_PRODUCTS:
        raise CalcError(
            f"{what} takes {products:,} multiplications; the calculator does at most {MAX_PRODUCTS:,} "
            "in one calculation"
        )


def _finite(m: Matrix, what: str) -> Matrix:
    """Refuse a result that overflowed, instead of answering inf or nan."""
    if not all(math.isfinite(x) for row in m for x in row):
        raise CalcError(f"{what} overflows (a result is inf or nan); use smaller numbers")
    return m


@contextlib.contextmanager
def _overflow(what: str) -> Iterator[None]:
    """Turn float overflow in `what` into a sentence."""
    try:
        yield
    except CalcError:
        raise
    except (OverflowError, ZeroDivisionError, ValueError):
        raise CalcError(f"{what} overflows (a result is inf or nan); use smaller numbers") from None


class _Refused(Exception):
    """A JSON value the calculator refuses, found while decoding."""


def _refuse_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a finite number")


def _int(text: str) -> int | float:
    # Python refuses to convert integers above 4,300 digits, and a float holds about 309.
    if len(text.lstrip("-")) > 309:
        raise _Refused(f"{text[:12]}… is too large for a float (up to about 1e308)")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"{text[:24]} is too large for a float (up to about 1e308)")
    return value


class JsonDecoder(json.JSONDecoder):
    """JSON for calculator inputs: finite numbers only, nested at most MAX_DEPTH deep.

    Its errors are json.JSONDecodeError, so callers report them as they report malformed JSON.
    """

    def __init__(self) -> None:
        super().__init__(parse_constant=_refuse_constant, parse_int=_int, parse_float=_float)

    def raw_decode(self, s: str, idx: int = 0) -> tuple[Any, int]:
        depth = deepest = 0
        in_string = escaped = False
        # The nesting is measured before decoding, so the decoder never recurses too deep.
        for char in itertools.islice(s, idx, None):
            if in_string:
                if escaped:
                    escaped = False
                elif char == "\\":
                    escaped = True
                elif char == '"':
                    in_string = False
                continue
            if char == '"' and depth > 0:
                in_string = True
            elif char in "[{":
                depth += 1
                deepest = max(deepest, depth)
                if deepest > MAX_DEPTH:
                    raise json.JSONDecodeError(f"nested more than {MAX_DEPTH} deep", s, idx)
            elif char in "]}":
                depth -= 1
                if depth <= 0:
                    break
            elif depth == 0 and not char.isspace():
                break
        try:
            return super().raw_decode(s, idx)
        except _Refused as exc:
            raise json.JSONDecodeError(str(exc), s, idx) from None


def shape(m: Matrix) -> tuple[int, int]:
    """Return (rows, columns)."""
    return len(m), len(m[0])


def _dims(m: Matrix) -> str:
    rows, cols = shape(m)
    return f"{rows}×{cols}"


def transpose(m: Matrix) -> Matrix:
    """Swap rows and columns."""
    return [list(col) for col in zip(*m, strict=True)]


def matmul(a: Matrix, b: Matrix, names: tuple[str, str] = ("A", "B")) -> Matrix:
    """Multiply two matrices, with a clear error when their shapes do not fit."""
    (rows, inner), (rows_b, cols) = shape(a), shape(b)
    if inner != rows_b:
        raise CalcError(
            f"cannot multiply {names[0]} ({_dims(a)}) by {names[1]} ({_dims(b)}): "
            f"{names[0]} needs as many columns as {names[1]} has rows"
        )
    product = f"{names[0]} · {names[1]}"
    _bound(rows, cols, product)
    _work(rows * inner * cols, f"{product} ({_dims(a)} by {_dims(b)})")
    tb = transpose(b)
    with _overflow(product):
        out = [[math.fsum(x * y for x, y in zip(row, col, strict=True)) for col in tb] for row in a]
    return _finite(out, product)


def softmax(row: Sequence[float]) -> Vector:
    """Softmax of one row, stable for large values; -inf entries get weight 0."""
    if not row or not all(x == -math.inf or _is_number(x) for x in row):
        raise CalcError("softmax needs a row of finite numbers (or -inf for a masked position)")
    top = max(row)
    if top == -math.inf:
        raise CalcError("softmax of a row where every position is masked: nothing to attend to")
    exps = [math.exp(x - top) for x in row]
    total = math.fsum(exps)
    return [e / total for e in exps]


def softmax_rows(m: Matrix) -> Matrix:
    """Softmax of every row."""
    return [softmax(row) for row in m]


@dataclass(frozen=True)
class Attention:
    """Scaled dot-product attention, with every intermediate step."""

    scores: Matrix
    scale: float
    scaled_scores: Matrix
    weights: Matrix
    output: Matrix
    mask: list[list[bool]] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "scores": self.scores,
            "scale": self.scale,
            "scaled_scores": self.scaled_scores,
            "weights": self.weights,
            "mask": self.mask,
        }


def causal_mask(rows: int, cols: int) -> list[list[bool]]:
    """Allow position i to attend to positions j <= i."""
    return [[j <= i for j in range(cols)] for i in range(rows)]


def as_mask(value: Any, rows: int, cols: int) -> list[list[bool]] | None:
    """Read a mask: None, "causal", or a rows×cols matrix of 1/0 (or true/false), 1 = may attend."""
    if value is None:
        return None
    if value == "causal":
        _bound(rows, cols, "the mask")
        return causal_mask(rows, cols)
    if isinstance(value, list) and value and all(isinstance(r, list) for r in value):
        if len(value) != rows or any(len(r) != cols for r in value):
            raise CalcError(f"the mask must be {rows}×{cols}, one row per query and one column per key")
        if not all(x in (0, 1, True, False) for r in value for x in r):
            raise CalcError(
                "the mask holds 1 (or true) where attention is allowed and 0 (or false) elsewhere"
            )
        return [[bool(x) for x in r] for r in value]
    raise CalcError('the mask must be "causal" or a matrix of 1 and 0')


def attention(query: Any, key: Any, value: Any, mask: Any = None, scale: float | None = None) -> Attention:
    """softmax(Q Kᵀ · scale + mask) V, with scale 1/sqrt(d_k) unless given."""
    q, k, v = as_matrix(query, "Q"), as_matrix(key, "K"), as_matrix(value, "V")
    if shape(q)[1] != shape(k)[1]:
        raise CalcError(
            f"Q ({_dims(q)}) and K ({_dims(k)}) need the same number of columns (d_k) "
            "to compare queries with keys"
        )
    if shape(k)[0] != shape(v)[0]:
        raise CalcError(f"K ({_dims(k)}) and V ({_dims(v)}) need the same number of rows: one value per key")
    (nq, dk), (nk, dv) = shape(q), shape(v)
    _bound(nq, nk, "the scores Q Kᵀ")
    _work(nq * dk * nk + nq * nk * dv, f"attention of {nq} queries over {nk} keys")
    allowed = as_mask(mask, nq, nk)
    if scale is None:
        scale = 1 / math.sqrt(shape(k)[1])
    elif not _is_number(scale):
        raise CalcError("the scale must be a finite number")
    scores = matmul(q, transpose(k), ("Q", "Kᵀ"))
    scaled = _finite([[s * scale for s in row] for row in scores], "scaling the scores")
    masked = (
        scaled
        if allowed is None
        else [
            [s if ok else -math.inf for s, ok in zip(row, oks, strict=True)]
            for row, oks in zip(scaled, allowed, strict=True)
        ]
    )
    weights = softmax_rows(masked)
    return Attention(scores, scale, scaled, weights, matmul(weights, v, ("weights", "V")), allowed)


@dataclass(frozen=True)
class MultiHead:
    """Multi-head attention, with the projections and each head's steps."""

    q: Matrix
    k: Matrix
    v: Matrix
    heads: list[Attention]
    concat: Matrix
    output: Matrix

    def to_json(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "q": self.q,
            "k": self.k,
            "v": self.v,
            "heads": [h.to_json() for h in self.heads],
            "concat": self.concat,
        }


def _columns(m: Matrix, start: int, stop: int) -> Matrix:
    return [row[start:stop] for row in m]


def multihead(x: Any, wq: Any, wk: Any, wv: Any, wo: Any, heads: int, mask: Any = None) -> MultiHead:
    """Project X to Q, K, V, split columns into heads, attend per head, concatenate, project by Wᵒ."""
    xm = as_matrix(x, "X")
    wqm, wkm, wvm, wom = (as_matrix(w, n) for w, n in ((wq, "Wq"), (wk, "Wk"), (wv, "Wv"), (wo, "Wo")))
    if not isinstance(heads, int) or isinstance(heads, bool) or heads < 1:
        raise CalcError("the number of heads must be a whole number of at least 1")
    n, d = shape(xm)
    widths = [shape(w)[1] for w in (wqm, wkm, wvm)]
    _bound(n, n, "the scores of a head")
    # Projections, then every head's scores and weighted sum, then the output projection.
    products = n * d * sum(widths) + n * n * (widths[0] + widths[2]) + n * shape(wom)[0] * shape(wom)[1]
    _work(products, f"multi-head attention over {n} tokens")
    q, k, v = (matmul(xm, w, ("X", n)) for w, n in ((wqm, "Wq"), (wkm, "Wk"), (wvm, "Wv")))
    if shape(q)[1] != shape(k)[1]:
        raise CalcError(f"Wq and Wk need the same number of columns, found {shape(q)[1]} and {shape(k)[1]}")
    for name, m in (("Q", q), ("V", v)):
        if shape(m)[1] % heads:
            raise CalcError(f"{name} has {shape(m)[1]} columns, which {heads} heads cannot split evenly")
    dq, dv = shape(q)[1] // heads, shape(v)[1] // heads
    per_head = [
        attention(
            _columns(q, h * dq, (h + 1) * dq),
            _columns(k, h * dq, (h + 1) * dq),
            _columns(v, h * dv, (h + 1) * dv),
            mask,
        )
        for h in range(heads)
    ]
    concat = [[x for head in per_head for x in head.output[i]] for i in range(shape(xm)[0])]
    return MultiHead(q, k, v, per_head, concat, matmul(concat, wom, ("Concat(heads)", "Wo")))


def layer_norm(x: Any, gamma: Any = None, beta: Any = None, eps: float = 1e-5) -> Matrix:
    """Normalise each row to mean 0 and variance 1, then scale by gamma and shift by beta."""
    xm = as_matrix(x, "X")
    width = shape(xm)[1]
    g = as_vector(gamma, "gamma") if gamma is not None else [1.0] * width
    b = as_vector(beta, "beta") if beta is not None else [0.0] * width
    if len(g) != width or len(b) != width:
        raise CalcError(f"gamma and beta need {width} values, one per column of X")
    eps = as_scalar(eps, "eps")
    if eps < 0:
        raise CalcError("eps must not be negative: it keeps the variance away from zero")
    out = []
    with _overflow("layer normalisation"):
        for i, row in enumerate(xm, start=1):
            mean = math.fsum(row) / width
            var = math.fsum((v - mean) ** 2 for v in row) / width
            if var + eps == 0:
                raise CalcError(f"row {i} of X has variance 0 and eps is 0: give eps > 0, like 1e-5")
            out.append(
                [(v - mean) / math.sqrt(var + eps) * gi + bi for v, gi, bi in zip(row, g, b, strict=True)]
            )
    return _finite(out, "layer normalisation")


def positional_encoding(length: int, d_model: int) -> Matrix:
    """Sinusoidal encoding: PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(same)."""
    for name, n in (("length", length), ("d_model", d_model)):
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise CalcError(f"{name} must be a whole number of at least 1")
    _bound(length, d_model, "the positional encoding")
    return [
        [
            (math.sin if i % 2 == 0 else math.cos)(pos / 10000 ** ((i - i % 2) / d_model))
            for i in range(d_model)
        ]
        for pos in range(length)
    ]


def feed_forward(x: Any, w1: Any, b1: Any, w2: Any, b2: Any) -> Matrix:
    """Position-wise FFN: max(0, X W1 + b1) W2 + b2."""
    xm, w1m, w2m = as_matrix(x, "X"), as_matrix(w1, "W1"), as_matrix(w2, "W2")
    b1v, b2v = as_vector(b1, "b1"), as_vector(b2, "b2")
    n, hidden_width = shape(xm)[0], shape(w1m)[1]
    _work(n * shape(xm)[1] * hidden_width + n * hidden_width * shape(w2m)[1], "the feed-forward network")
    hidden = matmul(xm, w1m, ("X", "W1"))
    if len(b1v) != shape(hidden)[1]:
        raise CalcError(f"b1 needs {shape(hidden)[1]} values, one per column of W1")
    hidden = _finite(
        [[max(0.0, h + b) for h, b in zip(row, b1v, strict=True)] for row in hidden], "X W1 + b1"
    )
    out = matmul(hidden, w2m, ("ReLU(X W1 + b1)", "W2"))
    if len(b2v) != shape(out)[1]:
        raise CalcError(f"b2 needs {shape(out)[1]} values, one per column of W2")
    return _finite([[o + b for o, b in zip(row, b2v, strict=True)] for row in out], "the feed-forward output")


# -- Worked solutions --------------------------------------------------------------------------


def fmt(value: float | Matrix | Vector, digits: int = 4) -> str:
    """Format numbers rounded to `digits` decimals, without trailing zeros."""
    if isinstance(value, list):
        return "[" + ", ".join(fmt(v, digits) for v in value) + "]"
    rounded = round(value, digits) + 0.0  # + 0.0 turns -0.0 into 0.0
    text = f"{rounded:.{digits}f}"
    if digits > 0:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def attention_steps(result: Attention, digits: int = 4) -> list[Step]:
    """Explain an attention computation step by step, as a Practice solution does."""
    steps = [
        ("Step 1: Scores S = Q Kᵀ", f"S = {fmt(result.scores, digits)}"),
        (
            f"Step 2: Scale by {fmt(result.scale, digits)}",
            f"S · {fmt(result.scale, digits)} = {fmt(result.scaled_scores, digits)}",
        ),
    ]
    if result.mask is not None:
        shown = [[1 if ok else 0 for ok in row] for row in result.mask]
        steps.append(("Step 3: Mask", f"positions marked 0 in {shown} get weight 0"))
    steps.append((f"Step {len(steps) + 1}: Softmax of each row", f"weights = {fmt(result.weights, digits)}"))
    steps.append(
        (
            f"Step {len(steps) + 1}: Weighted sum of values",
            f"output = weights · V = {fmt(result.output, digits)}",
        )
    )
    return steps


def multihead_steps(result: MultiHead, digits: int = 4) -> list[Step]:
    """Explain a multi-head computation step by step."""
    projections = ", ".join(
        f"{name} = X W{name.lower()} = {fmt(m, digits)}"
        for name, m in (("Q", result.q), ("K", result.k), ("V", result.v))
    )
    steps = [("Step 1: Project the input", projections)]
    for h, head in enumerate(result.heads, start=1):
        steps.append(
            (
                f"Step {len(steps) + 1}: Head {h}",
                f"weights = {fmt(head.weights, digits)}, output = {fmt(head.output, digits)}",
            )
        )
    steps.append((f"Step {len(steps) + 1}: Concatenate the heads", f"{fmt(result.concat, digits)}"))
    steps.append((f"Step {len(steps) + 1}: Project by Wo", f"output = {fmt(result.output, digits)}"))
    return steps
