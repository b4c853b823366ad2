"""Restoring Python that a web page flattened or un-indented."""

from __future__ import annotations

from deckbuild.readers.pycode import parses, reindent, restore, unflatten


def test_a_flattened_program_is_split_back_into_statements():
    flat = "import torch import torch.nn.functional as F x = torch.ones(2) # a comment y = x * 2 print(y)"
    assert unflatten(flat) == (
        "import torch\nimport torch.nn.functional as F\nx = torch.ones(2) # a comment\ny = x * 2\nprint(y)\n"
    )


def test_keyword_arguments_inside_calls_are_not_split():
    assert (
        unflatten("w = F.softmax(s, dim=1) out = f(a, b=2)") == "w = F.softmax(s, dim=1)\nout = f(a, b=2)\n"
    )


def test_lost_indentation_is_restored_block_by_block():
    code = "def f(x):\nif x:\nreturn 1\nelse:\nreturn 2\n"
    assert reindent(code) == "def f(x):\n    if x:\n        return 1\n    else:\n        return 2\n"
    loop = "for i in range(3):\nif i:\na = i\nelse:\na = 0\nprint(a)\n"
    assert reindent(loop) == (
        "for i in range(3):\n    if i:\n        a = i\n    else:\n        a = 0\n        print(a)\n"
    ), "without a return, a block runs on: the last line stays in it"


def test_restore_reports_code_it_cannot_make_valid():
    code, ok = restore("this is ( not python")
    assert not ok and code == "this is ( not python\n"
    good, ok = restore("x = 1")
    assert ok and parses(good)
