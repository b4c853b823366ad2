"""Restoring Python that a web page flattened or un-indented."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deckbuild.readers import pycode
from deckbuild.readers.pycode import MAX_RESTORE_CHARS, parses, reindent, restore, unflatten


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


def flat(code: str) -> str:
    """Code as a page that lost its indentation shows it."""
    return "\n".join(line.strip() for line in code.strip("\n").splitlines()) + "\n"


# Programs whose structure the lines alone tell: each must come back exactly, indentation included.
PROGRAMS = {
    "module with methods": """
import torch.nn as nn
class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.fc = nn.Linear(d, d)
    def forward(self, x):
        if self.training:
            x = x + 0.1
        return self.fc(self.norm(x))
model = Block(4)
print(model)
""",
    "nested function returned": """
def make_counter(start):
    count = start
    def step(by):
        return count + by
    return step
print(make_counter(1)(2))
""",
    "decorated methods": """
class Circle:
    def __init__(self, r):
        self.r = r
    @property
    def area(self):
        return 3.14 * self.r ** 2
    @staticmethod
    def unit():
        return Circle(1)
print(Circle.unit().area)
""",
    "if/else inside a loop, in a function": """
def parity(xs):
    out = []
    for x in xs:
        if x % 2 == 0:
            out.append("even")
        elif x < 0:
            out.append("negative")
        else:
            out.append("odd")
    return out
print(parity([1, 2]))
""",
    "try/except in a loop": """
def total(lines):
    s = 0
    for line in lines:
        try:
            value = int(line)
        except ValueError:
            continue
        s += value
    return s
print(total(["1", "x"]))
""",
    "try/finally with a return": """
def read(path):
    try:
        f = open(path)
    except OSError:
        return None
    finally:
        print("tried")
    return f
""",
    "while with break, then code": """
def first_negative(xs):
    i = 0
    while i < len(xs):
        if xs[i] < 0:
            break
        i += 1
    return i
""",
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_lost_indentation_comes_back_for_classes_nested_functions_and_branches(name):
    program = PROGRAMS[name].strip("\n") + "\n"
    assert reindent(flat(program)) == program
    assert restore(flat(program)) == (program, True)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_a_program_flattened_onto_one_line_parses_again(name):
    one_line = " ".join(flat(PROGRAMS[name]).split("\n")).strip()
    code, ok = restore(one_line)
    assert ok and parses(code)
    assert [line.strip() for line in code.splitlines()] == flat(PROGRAMS[name]).split("\n")[:-1]


def test_code_longer_than_the_limit_is_not_restored():
    long_line = "x = 1 " * (MAX_RESTORE_CHARS // 6 + 1)
    assert len(long_line) > MAX_RESTORE_CHARS
    assert restore(long_line) == (long_line.rstrip() + "\n", False)


def test_unflatten_tries_a_bounded_match_per_character(monkeypatch):
    """Linear: the work per character is bounded, however long the line (no timing involved)."""
    calls = []
    real = pycode._opens_statement
    monkeypatch.setattr(
        pycode,
        "_opens_statement",
        lambda tail, c, head: calls.append(len(tail) + len(head)) or real(tail, c, head),
    )
    for n in (100, 1000):
        calls.clear()
        pycode.unflatten("a = b " * n)
        assert len(calls) <= 2 * n and max(calls) <= 24


@st.composite
def block(draw, depth, in_loop, in_def):
    """Statements at one level; each nested block ends in a statement that closes it."""
    lines: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["simple", "if", "ifelse", "for", "try"] if depth < 3 else ["simple"]))
        if kind == "simple":
            lines.append(draw(st.sampled_from(["x = 1", "y = x + 2", "print(x)", "total += y"])))
            continue
        loop = in_loop or kind == "for"
        closer = draw(st.sampled_from(["continue", "break", "pass"] if loop else ["pass"]))
        inner = [f"    {line}" for line in draw(block(depth + 1, loop, in_def))]
        head = {"if": "if x > 0:", "ifelse": "if x > 0:", "for": "for x in items:", "try": "try:"}[kind]
        lines += [head, *inner, f"    {closer}"]
        if kind == "ifelse":
            lines += [
                "else:",
                *[f"    {line}" for line in draw(block(depth + 1, loop, in_def))],
                f"    {closer}",
            ]
        if kind == "try":
            lines += ["except ValueError:", "    pass"]
    return lines


@st.composite
def program(draw):
    """A module of functions, classes with methods and top-level statements."""
    out: list[str] = []
    for n in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["def", "class", "stmt"]))
        if kind == "stmt":
            out.append(f"result = f{n}(3)" if out else "items = [1, 2]")
        elif kind == "def":
            out += [f"def f{n}(items):", *[f"    {x}" for x in draw(block(1, False, True))], "    return x"]
        else:
            out.append(f"class C{n}:")
            for m in range(draw(st.integers(1, 3))):
                out += [f"    def m{m}(self, items):", *[f"        {x}" for x in draw(block(2, False, True))]]
                out.append("        return x")
    return "\n".join(out) + "\n"


@given(program())
def test_any_program_whose_blocks_are_closed_comes_back_exactly(code):
    assert parses(code)
    assert reindent(flat(code)) == code


@given(program())
def test_any_such_program_flattened_onto_one_line_comes_back_exactly(code):
    one_line = " ".join(flat(code).split("\n")).strip()
    assert restore(one_line) == (code, True)


def test_code_the_compiler_refuses_does_not_count_as_restored():
    # Parsing alone takes `return` at the top level; a restoring that left a line there is wrong.
    assert not parses("return 1\n") and not parses("for i in x:\n    pass\nbreak\n")
    flat = "def f(n):     total = 0     for i in range(n):         total += i     return total print(f(3))"
    code, ok = restore(flat)
    assert ok and code == (
        "def f(n):\n    total = 0\n    for i in range(n):\n        total += i\n"
        "    return total\nprint(f(3))\n"
    )
