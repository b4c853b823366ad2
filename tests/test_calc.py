"""The attention calculator: hand-computed cases, properties, shapes, and PyTorch when present."""

from __future__ import annotations

import contextlib
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deckbuild import calc
from deckbuild.calc import CalcError


def close(a, b, tol=1e-9):
    return all(abs(x - y) <= tol for ra, rb in zip(a, b, strict=True) for x, y in zip(ra, rb, strict=True))


def test_matmul_and_transpose_by_hand():
    assert calc.matmul([[1, 2], [3, 4]], [[5], [6]]) == [[17.0], [39.0]]
    assert calc.transpose([[1, 2, 3]]) == [[1], [2], [3]]


def test_softmax_by_hand_and_stable_for_large_values():
    e = math.e
    assert close([calc.softmax([0, 1])], [[1 / (1 + e), e / (1 + e)]])
    assert close([calc.softmax([1000, 1001])], [[1 / (1 + e), e / (1 + e)]])
    assert calc.softmax([-math.inf, 0]) == [0.0, 1.0]


def test_seed_004_problem_1():
    result = calc.attention([[1.0, 0.0, 1.0]], [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]], [[1.0, 2.0], [3.0, 4.0]])
    w = 1 / (1 + math.exp(-2 / math.sqrt(3)))
    assert close(result.weights, [[w, 1 - w]])
    assert close(result.output, [[w + 3 * (1 - w), 2 * w + 4 * (1 - w)]])
    assert calc.fmt(result.output) == "[[1.4793, 2.4793]]"


def test_seed_001_practice_3_unscaled():
    result = calc.attention([[1, 0]], [[1, 0], [-10, 1]], [[10, 20], [30, 40]], scale=1.0)
    w = 1 / (1 + math.exp(-11))
    assert close(result.output, [[10 * w + 30 * (1 - w), 20 * w + 40 * (1 - w)]])
    assert calc.fmt(result.output, 0) == "[[10, 20]]"
    assert calc.fmt([[100.0, -0.00001, 2.5]]) == "[[100, 0, 2.5]]"


def test_causal_mask_by_hand():
    result = calc.attention([[1, 0], [0, 1]], [[1, 0], [0, 1]], [[1, 2], [3, 4]], mask="causal", scale=1.0)
    w = 1 / (1 + math.e)
    assert close(result.weights, [[1, 0], [w, 1 - w]])
    assert result.mask == [[True, False], [True, True]]


def test_explicit_mask_and_fully_masked_row():
    result = calc.attention([[1, 0]], [[1, 0], [0, 1]], [[1, 2], [3, 4]], mask=[[0, 1]])
    assert result.output == [[3.0, 4.0]]
    with pytest.raises(CalcError, match="every position is masked"):
        calc.attention([[1, 0]], [[1, 0]], [[1]], mask=[[0]])


def test_multihead_by_hand():
    result = calc.multihead(
        [[1, 0], [0, 1]], [[1, 0], [0, 1]], [[1, 0], [0, 1]], [[1, 2], [3, 4]], [[1, 0], [0, 1]], heads=2
    )
    # Head 1 sees column 0 of Q, K, V; head 2 column 1. With d_k = 1 per head the scale is 1.
    w = math.e / (math.e + 1)
    assert close(result.heads[0].weights, [[w, 1 - w], [0.5, 0.5]])
    assert close(result.heads[1].weights, [[0.5, 0.5], [1 - w, w]])
    assert close(result.concat, [[w + 3 * (1 - w), 3], [2, 2 * (1 - w) + 4 * w]])
    assert close(result.output, result.concat)


def test_layer_norm_and_positional_encoding_and_ffn_by_hand():
    (row,) = calc.layer_norm([[1, 2, 3]], eps=0.0)
    assert close([row], [[-math.sqrt(1.5), 0, math.sqrt(1.5)]])
    pe = calc.positional_encoding(2, 4)
    assert close(pe, [[0, 1, 0, 1], [math.sin(1), math.cos(1), math.sin(0.01), math.cos(0.01)]])
    assert calc.feed_forward([[1, -1]], [[1, 0], [0, 1]], [0, 0], [[1], [1]], [0.5]) == [[1.5]]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: calc.attention([[1, 0]], [[1, 0, 1]], [[1]]),
         "Q (1×2) and K (1×3) need the same number of columns (d_k) to compare queries with keys"),
        (lambda: calc.attention([[1, 0]], [[1, 0]], [[1], [2]]),
         "K (1×2) and V (2×1) need the same number of rows: one value per key"),
        (lambda: calc.attention([[1, 0], [1]], [[1, 0]], [[1]]),
         "Q is not rectangular: row 1 has 2 values, row 2 has 1"),
        (lambda: calc.attention("x", [[1]], [[1]]),
         "Q must be a matrix: a list of rows of numbers, like [[1, 0], [0, 1]], or one row, like [1, 0]"),
        (lambda: calc.attention([], [[1]], [[1]]),
         "Q is empty; give its numbers, like [[1, 0], [0, 1]] or one row, like [1, 0]"),
        (lambda: calc.attention([True], [[1]], [[1]]), "Q row 1 holds something that is not a number"),
        (lambda: calc.attention([[1]], [[1], [2]], [[1], [2]], mask=[[1]]),
         "the mask must be 1×2, one row per query and one column per key"),
        (lambda: calc.multihead([[1, 0]], [[1, 0, 0], [0, 1, 0]], [[1, 0, 0], [0, 1, 0]], [[1, 0], [0, 1]],
                                [[1], [1]], heads=2),
         "Q has 3 columns, which 2 heads cannot split evenly"),
        (lambda: calc.matmul([[1, 2]], [[1, 2]], ("X", "W")),
         "cannot multiply X (1×2) by W (1×2): X needs as many columns as W has rows"),
    ],
)  # fmt: skip
def test_shape_errors_are_sentences(call, message):
    with pytest.raises(CalcError) as info:
        call()
    assert str(info.value) == message


numbers = st.floats(min_value=-20, max_value=20, allow_nan=False)


def matrices(rows, cols):
    return st.lists(st.lists(numbers, min_size=cols, max_size=cols), min_size=rows, max_size=rows)


qkv = st.tuples(st.integers(1, 4), st.integers(1, 5), st.integers(1, 3), st.integers(1, 3)).flatmap(
    lambda d: st.tuples(matrices(d[0], d[2]), matrices(d[1], d[2]), matrices(d[1], d[3]), st.randoms())
)


@settings(max_examples=60, deadline=None)
@given(st.lists(numbers, min_size=1, max_size=8))
def test_softmax_rows_sum_to_one(row):
    weights = calc.softmax(row)
    assert math.isclose(math.fsum(weights), 1.0, rel_tol=1e-12)
    assert all(0 <= w <= 1 for w in weights)


@settings(max_examples=60, deadline=None)
@given(qkv)
def test_permuting_keys_and_values_together_changes_nothing(case):
    q, k, v, rnd = case
    order = list(range(len(k)))
    rnd.shuffle(order)
    before = calc.attention(q, k, v).output
    after = calc.attention(q, [k[i] for i in order], [v[i] for i in order]).output
    assert close(before, after, 1e-9)


@settings(max_examples=60, deadline=None)
@given(qkv)
def test_a_causal_mask_ignores_the_future(case):
    q, k, v, rnd = case
    n = min(len(q), len(k))
    q, k, v = q[:n], k[:n], v[:n]
    before = calc.attention(q, k, v, mask="causal").output
    changed = n - 1
    k2 = [row if i != changed else [rnd.uniform(-20, 20) for _ in row] for i, row in enumerate(k)]
    v2 = [row if i != changed else [rnd.uniform(-20, 20) for _ in row] for i, row in enumerate(v)]
    after = calc.attention(q, k2, v2, mask="causal").output
    assert close(before[:changed], after[:changed], 1e-9)


junk = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats() | st.text(max_size=2),
    lambda inner: st.lists(inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(junk, junk, junk, st.one_of(st.none(), st.just("causal"), junk))
def test_any_input_gives_a_result_or_a_calc_error_never_a_crash(q, k, v, mask):
    with contextlib.suppress(CalcError):
        calc.attention(q, k, v, mask)


def test_matches_pytorch_on_random_inputs():
    torch = pytest.importorskip("torch")
    rnd = random.Random(7)
    for _ in range(20):
        n, m, d, dv = (rnd.randint(1, 5) for _ in range(4))
        q = [[rnd.uniform(-3, 3) for _ in range(d)] for _ in range(n)]
        k = [[rnd.uniform(-3, 3) for _ in range(d)] for _ in range(m)]
        v = [[rnd.uniform(-3, 3) for _ in range(dv)] for _ in range(m)]
        causal = n == m and rnd.random() < 0.5
        ours = calc.attention(q, k, v, "causal" if causal else None).output
        theirs = torch.nn.functional.scaled_dot_product_attention(
            *(torch.tensor(x, dtype=torch.float64) for x in (q, k, v)), is_causal=causal
        )
        assert close(ours, theirs.tolist(), 1e-9)


def test_multihead_matches_pytorch_with_its_weights_copied():
    torch = pytest.importorskip("torch")
    torch.manual_seed(3)
    embed, heads, length = 6, 3, 4
    mha = torch.nn.MultiheadAttention(embed, heads, bias=False, batch_first=True, dtype=torch.float64)
    x = torch.randn(1, length, embed, dtype=torch.float64)
    theirs, _ = mha(x, x, x, need_weights=False)
    wq, wk, wv = mha.in_proj_weight.detach().chunk(3)
    # torch computes x Wᵀ; ours multiplies on the right, so its weights go in transposed.
    ours = calc.multihead(
        x[0].tolist(),
        wq.T.tolist(),
        wk.T.tolist(),
        wv.T.tolist(),
        mha.out_proj.weight.detach().T.tolist(),
        heads,
    )
    assert close(ours.output, theirs[0].tolist(), 1e-9)


# -- Never a traceback, never inf or nan -----------------------------------------------------------

# Numbers at the edges: huge, tiny, infinite, not a number, integers a float cannot hold, booleans.
extreme = st.one_of(
    st.floats(),
    st.sampled_from([1e308, -1e308, 1.7976931348623157e308, 5e-324, 0.0, -0.0, math.inf, -math.inf]),
    st.integers(-(10**400), 10**400),
    st.sampled_from([10**400, -(10**400), 2**1024]),
    st.booleans(),
)
anything = st.recursive(
    st.none() | extreme | st.integers(-3, 3) | st.text(max_size=2) | st.sampled_from(["causal", [], [[]]]),
    lambda inner: st.lists(inner, max_size=3),
    max_leaves=12,
)
# Well-formed matrices of extreme numbers, so that the arithmetic itself is attacked too.
edge = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([1e308, -1e308, 1e154, 0.0])
)


def edge_matrices(rows, cols):
    return st.lists(st.lists(edge, min_size=cols, max_size=cols), min_size=rows, max_size=rows)


def finite(value):
    """Every number in a result, however nested, is finite."""
    if isinstance(value, list | tuple):
        return all(finite(v) for v in value)
    if isinstance(value, dict):
        return all(finite(v) for v in value.values())
    if isinstance(value, float):
        return math.isfinite(value)
    return True


def answers_or_refuses(call):
    """Run a calculation: a finite result, or a CalcError with a sentence; nothing else."""
    try:
        result = call()
    except CalcError as exc:
        message = str(exc)
        assert message and "Traceback" not in message and message[0].isalnum()
        return None
    data = result.to_json() if hasattr(result, "to_json") else result
    assert finite(data), data
    return data


@given(anything, anything, anything, anything, anything)
def test_any_input_to_any_calculation_gives_a_finite_result_or_a_calc_error(a, b, c, d, e):
    answers_or_refuses(lambda: calc.attention(a, b, c, d, e if e is None or _scalar(e) else None))
    answers_or_refuses(lambda: calc.attention(a, b, c, None, e))
    answers_or_refuses(lambda: calc.multihead(a, b, c, d, e, 1))
    answers_or_refuses(lambda: calc.multihead(a, a, a, a, a, e))
    answers_or_refuses(lambda: calc.layer_norm(a, b, c, e))
    answers_or_refuses(lambda: calc.positional_encoding(a, b))
    answers_or_refuses(lambda: calc.feed_forward(a, b, c, d, e))
    answers_or_refuses(lambda: calc.softmax(a if isinstance(a, list) else [a]))
    answers_or_refuses(lambda: calc.as_mask(a, 2, 2))


def _scalar(x):
    return isinstance(x, int | float)


dims = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3))


@given(dims.flatmap(lambda d: st.tuples(*(edge_matrices(d[0], d[1]) for _ in range(3)), st.just(d))), extreme)
def test_huge_numbers_in_well_formed_inputs_never_answer_inf_or_nan(case, number):
    x, y, z, (_, cols, _, _) = case
    square = [row[:1] * 1 for row in y]
    answers_or_refuses(lambda: calc.attention(x, y, z))
    answers_or_refuses(lambda: calc.attention(x, y, z, "causal", number))
    answers_or_refuses(lambda: calc.layer_norm(x, eps=number))
    answers_or_refuses(lambda: calc.layer_norm(x, x[0], y[0]))
    answers_or_refuses(
        lambda: calc.multihead(x, [[number] * cols] * cols, y[:1] * cols, z[:1] * cols, square, 1)
    )
    answers_or_refuses(
        lambda: calc.feed_forward(x, [[number] * 2] * cols, [number, 0], [[1e308], [1e308]], [0])
    )
    answers_or_refuses(lambda: calc.softmax([number, *x[0]]))


TOO_LARGE = (
    "X row 1 holds a number too large or not finite (inf, nan); numbers must fit a float, up to about 1e308"
)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: calc.layer_norm([[1, 1]], eps=0),
         "row 1 of X has variance 0 and eps is 0: give eps > 0, like 1e-5"),
        (lambda: calc.layer_norm([[1, 2]], eps=-1),
         "eps must not be negative: it keeps the variance away from zero"),
        (lambda: calc.layer_norm([[1, 2]], eps=math.nan), "eps must be a finite number, like 0.5"),
        (lambda: calc.layer_norm([[1e308, -1e308]]),
         "layer normalisation overflows (a result is inf or nan); use smaller numbers"),
        (lambda: calc.attention([[1e308]], [[1e308]], [[1]]),
         "Q · Kᵀ overflows (a result is inf or nan); use smaller numbers"),
        (lambda: calc.attention([[1e200]], [[1e100]], [[1]], scale=1e10),
         "scaling the scores overflows (a result is inf or nan); use smaller numbers"),
        (lambda: calc.attention([[1]], [[1]], [[1]], scale=math.inf), "the scale must be a finite number"),
        (lambda: calc.softmax([math.nan, 1]),
         "softmax needs a row of finite numbers (or -inf for a masked position)"),
        (lambda: calc.softmax([]), "softmax needs a row of finite numbers (or -inf for a masked position)"),
        (lambda: calc.as_matrix([[1, math.inf]], "X"),
         TOO_LARGE),
        (lambda: calc.as_matrix([[1, 10**400]], "X"),
         TOO_LARGE),
        (lambda: calc.as_matrix([[True, 1]], "X"), "X row 1 holds something that is not a number"),
        (lambda: calc.as_vector([1, None], "gamma"), "gamma holds something that is not a number"),
        (lambda: calc.positional_encoding(0, 4), "length must be a whole number of at least 1"),
        (lambda: calc.positional_encoding(-3, 4), "length must be a whole number of at least 1"),
        (lambda: calc.positional_encoding(2.0, 4), "length must be a whole number of at least 1"),
        (lambda: calc.positional_encoding(4, True), "d_model must be a whole number of at least 1"),
        (lambda: calc.positional_encoding(100_000, 2000),
         "the positional encoding would hold 100000×2000 = 200,000,000 numbers; "
         "the calculator takes at most 100,000 in one matrix"),
        (lambda: calc.as_matrix([[0.0] * 1000] * 101, "X"),
         "X would hold 101×1000 = 101,000 numbers; the calculator takes at most 100,000 in one matrix"),
        (lambda: calc.attention([[0.0]] * 400, [[0.0]] * 400, [[0.0]] * 400, "causal"),
         "the scores Q Kᵀ would hold 400×400 = 160,000 numbers; "
         "the calculator takes at most 100,000 in one matrix"),
        (lambda: calc.attention([[0.0] * 1000] * 100, [[0.0] * 1000] * 100, [[0.0] * 1000] * 100),
         "attention of 100 queries over 100 keys takes 20,000,000 multiplications; "
         "the calculator does at most 2,000,000 in one calculation"),
        (lambda: calc.matmul([[0.0] * 300] * 300, [[0.0] * 300] * 300),
         "A · B (300×300 by 300×300) takes 27,000,000 multiplications; "
         "the calculator does at most 2,000,000 in one calculation"),
    ],
)  # fmt: skip
def test_numbers_out_of_range_and_sizes_over_the_bounds_are_sentences(call, message):
    with pytest.raises(CalcError) as info:
        call()
    assert str(info.value) == message


def test_a_matrix_nested_ten_thousand_deep_is_a_calc_error_not_a_recursion_error():
    deep: list = [1.0]
    for _ in range(10_000):
        deep = [deep]
    for call in (
        lambda: calc.as_matrix(deep, "X"),
        lambda: calc.attention(deep, deep, deep, deep),
        lambda: calc.layer_norm([[1.0]], deep, deep),
        lambda: calc.multihead(deep, deep, deep, deep, deep, 1),
    ):
        with pytest.raises(CalcError):
            call()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[NaN]", "NaN is not a finite number"),
        ("[[1, Infinity]]", "Infinity is not a finite number"),
        ("[-Infinity]", "-Infinity is not a finite number"),
        ("[1e400]", "1e400 is too large for a float (up to about 1e308)"),
        ("[" + "9" * 400 + "]", "999999999999… is too large for a float (up to about 1e308)"),
        ("[" * 10_000 + "]" * 10_000, "nested more than 32 deep"),
    ],
)
def test_calculator_json_refuses_what_no_calculation_can_use(text, message):
    import json

    with pytest.raises(json.JSONDecodeError) as info:
        calc.JsonDecoder().decode(text)
    assert info.value.msg == message


@given(st.text(alphabet='[]{}",:0123456789.eE+-INaftrueslnul ', max_size=60))
def test_calculator_json_decodes_or_says_why(text):
    import json

    with contextlib.suppress(json.JSONDecodeError):
        calc.JsonDecoder().decode(text)


def test_a_scale_of_zero_or_below_is_allowed():
    assert calc.attention([[1, 0]], [[1, 0], [0, 1]], [[1, 2], [3, 4]], scale=0).weights == [[0.5, 0.5]]
    w = 1 / (1 + math.e)
    assert close(calc.attention([[1, 0]], [[1, 0], [0, 1]], [[1, 2], [3, 4]], scale=-1).weights, [[w, 1 - w]])


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        (
            "Given Q = " + "[" * 10_000 + "1" + "]" * 10_000 + ", K = [[1]], V = [[1]], what is the output?",
            "[[1]]",
        ),
        ("Given Q = [[1" + "0" * 5000 + "]], K = [[1]], V = [[1]], what is the output?", "[[1]]"),
        ("Given Q = [[1e400]], K = [[1]], V = [[1]], what is the output?", "[[1]]"),
        ("Given Q = [[1]], K = [[1]], V = [[1]], what is the output?", "[" * 10_000 + "]" * 10_000),
    ],
)
def test_stated_matrices_are_read_with_the_calculator_s_json_never_a_recursion_error(question, answer):
    from deckbuild.answers import apply
    from deckbuild.errors import Report
    from deckbuild.readers import RawCard

    raw = RawCard(2, "basic", {"question": question, "answer": answer})
    report = Report()
    apply(raw, "f.txt", report)  # a check that cannot read the matrices has nothing to say
    assert all(p.line == 2 for p in report.problems)
