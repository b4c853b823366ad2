"""`deckbuild calc` at the command line: worked steps, --json, and its exit statuses."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from deckbuild.cli import cli

Q, K, V = "[[1,0,1]]", "[[1,0,1],[0,1,0]]", "[[1,2],[3,4]]"


def run(*args):
    return CliRunner().invoke(cli, ["calc", *args], prog_name="deckbuild")


def test_attention_prints_the_worked_solution():
    result = run("attention", "--query", Q, "--key", K, "--value", V)
    assert result.exit_code == 0
    assert result.stdout == (
        "Step 1: Scores S = Q Kᵀ\n  S = [[2, 0]]\n"
        "Step 2: Scale by 0.5774\n  S · 0.5774 = [[1.1547, 0]]\n"
        "Step 3: Softmax of each row\n  weights = [[0.7604, 0.2396]]\n"
        "Step 4: Weighted sum of values\n  output = weights · V = [[1.4793, 2.4793]]\n"
        "Answer: [[1.4793, 2.4793]]\n"
    )


def test_attention_json_carries_every_intermediate(tmp_path):
    (tmp_path / "k.json").write_text(K, encoding="utf-8")
    result = run("attention", "-q", "[[1,0],[0,1]]", "-k", "[[1,0],[0,1]]", "-v", V,
                 "--mask", "causal", "--scale", "1", "--json")  # fmt: skip
    data = json.loads(result.stdout)
    assert list(data) == ["output", "scores", "scale", "scaled_scores", "weights", "mask"]
    assert data["weights"][0] == [1.0, 0.0] and data["mask"] == [[True, False], [True, True]]
    from_file = run("attention", "-q", Q, "-k", f"@{tmp_path / 'k.json'}", "-v", V, "--json")
    (row,) = json.loads(from_file.stdout)["output"]
    assert row == pytest.approx([1.4792631, 2.4792631])


def test_multihead_softmax_layernorm_and_posenc():
    multi = run("multihead", "-x", "[[1,0],[0,1]]", "--wq", "[[1,0],[0,1]]", "--wk", "[[1,0],[0,1]]",
                "--wv", V, "--wo", "[[1,0],[0,1]]", "--heads", "2", "--json")  # fmt: skip
    data = json.loads(multi.stdout)
    assert len(data["heads"]) == 2 and data["concat"] == data["output"]
    assert json.loads(run("softmax", "[[0, 0]]", "--json").stdout)["output"] == [[0.5, 0.5]]
    assert run("layernorm", "-x", "[[1, 3]]", "--eps", "0").stdout.splitlines()[-1] == "Answer: [[-1, 1]]"
    assert run("posenc", "--length", "1", "--d-model", "2").stdout.splitlines()[-1] == "Answer: [[0, 1]]"


def test_wrong_shapes_exit_1_and_bad_json_exits_2():
    shapes = run("attention", "-q", "[[1,0]]", "-k", "[[1,0,1]]", "-v", "[[1]]")
    assert shapes.exit_code == 1
    assert shapes.stderr == (
        "error: Q (1×2) and K (1×3) need the same number of columns (d_k) to compare queries with keys\n"
    )
    bad = run("attention", "-q", "[[1,0", "-k", K, "-v", V)
    assert bad.exit_code == 2
    assert (
        "Invalid value for '--query' / '-q': not valid JSON (Expecting ',' delimiter at character 6)"
        in bad.stderr
    )


def test_softmax_of_a_vector_is_a_vector_with_its_steps():
    result = run("softmax", "[1,2,3]")
    assert result.exit_code == 0
    assert result.stdout == (
        "Step 1: Subtract the maximum (for numerical stability)\n  x - 3 = [-2, -1, 0]\n"
        "Step 2: Exponentiate\n  exp = [0.1353, 0.3679, 1]\n"
        "Step 3: Divide by the sum\n  sum = 1.5032; softmax = [0.09, 0.2447, 0.6652]\n"
        "Answer: [0.09, 0.2447, 0.6652]\n"
    )
    data = json.loads(run("softmax", "[0, 0]", "--json").stdout)
    assert data == {"output": [0.5, 0.5], "max": 0.0, "shifted": [0.0, 0.0], "exp": [1.0, 1.0], "sum": 2.0}
    rows = json.loads(run("softmax", "[[0, 0], [1000, 0]]", "--json").stdout)
    assert rows["max"] == [0.0, 1000.0] and rows["output"][1] == pytest.approx([1.0, 0.0])


def test_layernorm_shows_the_mean_and_variance_of_each_row():
    result = run("layernorm", "-x", "[[1, 3], [2, 6]]", "--gamma", "[2, 1]", "--beta", "[0, 1]", "--eps", "0")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[:4] == [
        "Step 1: Mean of each row", "  mean = [2, 4]",
        "Step 2: Variance of each row (divided by n)", "  variance = [1, 4]",
    ]  # fmt: skip
    data = json.loads(run("layernorm", "-x", "[1, 3]", "--eps", "0", "--json").stdout)
    assert data == {"output": [-1.0, 1.0], "mean": 2.0, "variance": 1.0, "normalized": [-1.0, 1.0]}
    assert result.stdout.splitlines()[-1] == "Answer: [[-2, 2], [-2, 2]]"


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["softmax", "[Infinity, 1]"], 2, "not valid JSON (Infinity is not a finite number at character 1)"),
        (["softmax", "[1, NaN]"], 2, "not valid JSON (NaN is not a finite number at character 1)"),
        (["softmax", "[1e400]"], 2,
         "not valid JSON (1e400 is too large for a float (up to about 1e308) at character 1)"),
        (["softmax", "[" * 10_000 + "1" + "]" * 10_000], 2,
         "not valid JSON (nested more than 32 deep at character 1)"),
        (["layernorm", "-x", "[[1, 1]]", "--eps", "0"], 1,
         "error: row 1 of X has variance 0 and eps is 0: give eps > 0, like 1e-5"),
        (["layernorm", "-x", "[[1, 2]]", "--eps", "-1"], 1,
         "error: eps must not be negative: it keeps the variance away from zero"),
        (["layernorm", "-x", "[[1, 2]]", "--eps", "nan"], 1, "error: eps must be a finite number, like 0.5"),
        (["layernorm", "-x", "[[1e308, -1e308]]"], 1,
         "error: layer normalisation overflows (a result is inf or nan); use smaller numbers"),
        (["attention", "-q", "[[1e308]]", "-k", "[[1e308]]", "-v", "[[1]]"], 1,
         "error: Q · Kᵀ overflows (a result is inf or nan); use smaller numbers"),
        (["attention", "-q", "[[1]]", "-k", "[[1]]", "-v", "[[1]]", "--scale", "inf"], 1,
         "error: the scale must be a finite number"),
        (["posenc", "--length", "100000", "--d-model", "2000"], 1,
         "error: the positional encoding would hold 100000×2000 = 200,000,000 numbers; "
         "the calculator takes at most 100,000 in one matrix"),
    ],
)  # fmt: skip
def test_numbers_no_calculation_can_use_are_refused_never_a_traceback(args, status, message):
    result = run(*args)
    assert result.exit_code == status
    assert message in result.stderr
    assert "Traceback" not in result.output and "nan" not in result.stdout and "inf" not in result.stdout


def test_softmax_steps_never_show_inf():
    result = run("softmax", "[1e308, -1e308]", "--json")
    assert result.exit_code == 1 and "inf" not in result.stdout.lower()
    assert result.stderr == (
        "error: the values of a row span more than a float holds (x - max overflows); use smaller numbers\n"
    )


def test_a_mask_that_is_neither_causal_nor_json_is_told_both():
    from click.testing import CliRunner

    from deckbuild.cli import cli

    result = CliRunner().invoke(cli, ["calc", "attention", "[[1]]", "[[1]]", "[[1]]", "--mask", "foo"])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "Error: Invalid value for '--mask': not valid JSON (Expecting value at character 1); give "
        "causal, or a matrix of 1 (attend) and 0 as JSON"
    )
