"""Worked solutions for softmax and layer normalisation: steps that lead to the calculator's answer."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deckbuild import calc, worked

numbers = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False)
rows = st.lists(numbers, min_size=2, max_size=6)


@given(rows)
def test_a_list_gives_one_row_of_numbers_and_steps_that_reach_the_answer(row):
    data, steps = worked.softmax(row)
    assert data["output"] == calc.softmax_rows([row])[0]
    assert data["max"] == max(row) and max(data["shifted"]) == 0
    assert [e / data["sum"] for e in data["exp"]] == pytest.approx(data["output"])
    assert steps[-1][1].endswith(calc.fmt(data["output"]))
    matrix, _ = worked.softmax([row, row])
    assert matrix["output"] == [data["output"], data["output"]] and matrix["sum"] == [data["sum"]] * 2


@given(rows.filter(lambda r: max(r) - min(r) > 1e-3))
def test_layer_norm_steps_show_the_mean_and_variance_the_answer_uses(row):
    data, steps = worked.layer_norm(row, eps=0)
    assert data["mean"] == pytest.approx(math.fsum(row) / len(row))
    assert data["variance"] == pytest.approx(sum((v - data["mean"]) ** 2 for v in row) / len(row))
    assert data["normalized"] == pytest.approx(data["output"])  # gamma 1, beta 0
    assert [title.split(":")[0] for title, _ in steps] == ["Step 1", "Step 2", "Step 3", "Step 4"]
