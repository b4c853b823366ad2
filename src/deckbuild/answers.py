"""Numeric answers computed by the calculator at build time, and checks of answers cards state.

A card can write `{{calc attention q=[[1, 0]] k=[[1, 0], [0, 1]] v=[[1, 2], [3, 4]]}}` in any
text field, in either source format: the build puts the result there and adds the worked
steps. Cards that state a numeric answer to a question the calculator can read (Q, K and V
given as matrices, or code that builds the tensors) are recomputed and must agree.

One convention for both: attention is scaled dot-product attention, scores times
1/sqrt(d_k), unless a directive says `scale=…`, a question says it is unscaled, or the
card's code computes the scores without dividing them (then it is unscaled, or scaled by the
number the code uses).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from typing import Any

from deckbuild import calc, worked
from deckbuild.errors import Report
from deckbuild.readers import RawCard

DIRECTIVE = "{{calc"
# Anything a writer may have meant as a directive: any case, spaces after the braces.
_NEAR_RE = re.compile(r"\{\{\s*calc", re.IGNORECASE)
_ARG_RE = re.compile(r"\s*([A-Za-z_]\w*)\s*=\s*")
_OPERATION_RE = re.compile(r"\s+(\w+)")
_GIVEN_RE = {name: re.compile(rf"\b{name}\s*=\s*(?=\[)") for name in ("Q", "K", "V")}
_UNSCALED_RE = re.compile(
    r"\b(unscaled|without scaling|no scaling|not scaled|scale\s*(?:=|of)?\s*1(?![\d.]|\s*/|\s*÷))",
    re.IGNORECASE,
)
TEXT_FIELDS = ("question", "answer", "explanation", "hint", "code")
DIGITS = 4
# Deeper brackets than any matrix needs: refused before JSON parsing recurses into them.
MAX_NESTING = 8


class Malformed(calc.CalcError):
    """A directive that cannot run, with the whole message: what is wrong and what to do."""


Operation = Callable[[dict[str, Any]], tuple[Any, list[calc.Step]]]


def _attention(a: dict[str, Any]) -> tuple[Any, list[calc.Step]]:
    result = calc.attention(a.get("q"), a.get("k"), a.get("v"), a.get("mask"), a.get("scale"))
    return result.output, calc.attention_steps(result, DIGITS)


def _multihead(a: dict[str, Any]) -> tuple[Any, list[calc.Step]]:
    result = calc.multihead(
        a.get("x"), a.get("wq"), a.get("wk"), a.get("wv"), a.get("wo"), a.get("heads", 1), a.get("mask")
    )
    return result.output, calc.multihead_steps(result, DIGITS)


# As `deckbuild calc` works them: a list in gives a list out, with the same steps.
def _softmax(a: dict[str, Any]) -> tuple[Any, list[calc.Step]]:
    data, steps = worked.softmax(a.get("x"), "x")
    return data["output"], steps


def _layernorm(a: dict[str, Any]) -> tuple[Any, list[calc.Step]]:
    data, steps = worked.layer_norm(a.get("x"), a.get("gamma"), a.get("beta"), a.get("eps", 1e-5))
    return data["output"], steps


def _posenc(a: dict[str, Any]) -> tuple[Any, list[calc.Step]]:
    out = calc.positional_encoding(a.get("length", 0), a.get("d_model", 0))
    return out, [
        (
            "Step 1: PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(p / 10000^(2i/d))",
            calc.fmt(out, DIGITS),
        )
    ]


OPERATIONS: dict[str, Operation] = {
    "attention": _attention,
    "multihead": _multihead,
    "softmax": _softmax,
    "layernorm": _layernorm,
    "posenc": _posenc,
}


# Each operation's arguments: those it needs, then those it may take.
ARGUMENTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "attention": (("q", "k", "v"), ("mask", "scale")),
    "multihead": (("x", "wq", "wk", "wv", "wo"), ("heads", "mask")),
    "softmax": (("x",), ()),
    "layernorm": (("x",), ("gamma", "beta", "eps")),
    "posenc": (("length", "d_model"), ()),
}


def parse_arguments(text: str, pos: int = 0, operation: str | None = None) -> tuple[dict[str, Any], int]:
    """Read `name=JSON` pairs up to the closing `}}`; a bare word (like `causal`) is a string.

    Return the arguments and the index after `}}`; raise CalcError for anything else.
    """
    args: dict[str, Any] = {}
    decoder = calc.JsonDecoder()
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if text.startswith("}}", pos):
            break
        if pos >= len(text):
            raise Malformed(f"calc {operation}: the directive has no closing '}}}}'; close it")
        match = _ARG_RE.match(text, pos)
        if not match:
            raise calc.CalcError(f"cannot read {text[pos:].strip()[:30]!r}; write name=value pairs")
        name = match.group(1).lower()
        if operation in ARGUMENTS and name not in sum(ARGUMENTS[operation], ()):
            takes = ", ".join(sum(ARGUMENTS[operation], ()))
            raise calc.CalcError(f"unknown argument {match.group(1)!r}; {operation} takes {takes}")
        if name in args:
            raise calc.CalcError(f"the argument {match.group(1)!r} is given twice; keep one")
        pos = match.end()
        word = re.match(r"[A-Za-z_]\w*", text[pos:])
        if word and word.group(0) not in ("true", "false", "null"):
            args[name] = word.group(0)
            pos += word.end()
            continue
        _check_nesting(text, pos, match.group(1))
        try:
            args[name], pos = decoder.raw_decode(text, pos)
        except (json.JSONDecodeError, RecursionError):
            raise calc.CalcError(f"the value of {match.group(1)} is not valid JSON") from None
    return args, pos + 2


def _check_nesting(text: str, pos: int, name: str) -> None:
    """Refuse a value nested deeper than MAX_NESTING, in one pass, before it is parsed."""
    depth = 0
    in_string = False
    i = pos
    while i < len(text):
        ch = text[i]
        if in_string:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_NESTING:
                raise calc.CalcError(
                    f"the value of {name} is nested more than {MAX_NESTING} brackets deep; "
                    "write a matrix as a list of rows"
                )
        elif ch in "]}":
            depth -= 1
            if depth <= 0:
                return
        elif depth == 0 and (ch.isspace() or ch == "}"):
            return
        i += 1


def run(operation: str, arguments: dict[str, Any]) -> tuple[Any, list[calc.Step]]:
    """Run one operation; raise CalcError with a sentence when its inputs do not fit."""
    if operation not in OPERATIONS:
        raise calc.CalcError(f"unknown operation {operation!r}; use one of {', '.join(OPERATIONS)}")
    return OPERATIONS[operation](arguments)


def directive(text: str, start: int) -> tuple[int, Any, list[calc.Step]]:
    """Run the directive that starts at `start`; return where it ends, its result and steps.

    Raise CalcError, with the operation's name in front, for anything that is not a whole,
    well-formed directive: a near miss (`{{ calc`, `{{Calc`), no operation, an unknown one,
    unknown, missing or repeated arguments, no closing braces, or inputs that do not fit.
    """
    near = _NEAR_RE.match(text, start)
    if near is None or near.group(0) != DIRECTIVE:
        written = near.group(0) if near else text[start : start + len(DIRECTIVE)]
        raise Malformed(
            f"calc: {written!r} is not a calculator directive as written; write "
            "{{calc OPERATION name=value …}}: lower case, no space after the braces"
        )
    op = _OPERATION_RE.match(text, start + len(DIRECTIVE))
    if op is None:
        raise Malformed(f"calc: a directive without an operation; write one of {', '.join(OPERATIONS)}")
    name = op.group(1)
    if name not in OPERATIONS:
        raise Malformed(f"calc: unknown operation {name!r}; use one of {', '.join(OPERATIONS)}")
    try:
        args, end = parse_arguments(text, op.end(), name)
        missing = [a for a in ARGUMENTS[name][0] if a not in args]
        if missing:
            raise calc.CalcError(
                f"{name} needs {', '.join(ARGUMENTS[name][0])}; missing {', '.join(missing)}"
            )
        for number in ("scale", "eps"):
            if number in args and not _is_number(args[number]):
                raise calc.CalcError(f"{number} must be a number, like {number}=0.5")
        output, steps = run(name, args)
    except Malformed:
        raise
    except (calc.CalcError, TypeError, OverflowError, ZeroDivisionError) as exc:
        raise Malformed(f"calc {name}: {exc}; fix the directive's inputs") from None
    return end, output, steps


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _steps_json(steps: list[calc.Step]) -> list[dict[str, str]]:
    return [{"title": title, "text": text} for title, text in steps]


_STEP_PREFIX = re.compile(r"^Step \d+: ")


def _steps_markdown(steps: list[calc.Step]) -> str:
    lines = (f"{n}. {_STEP_PREFIX.sub('', title)}: {text}" for n, (title, text) in enumerate(steps, start=1))
    return "\n".join(lines)


def apply(raw: RawCard, path: str, report: Report) -> None:
    """Fill in every calculator directive of a card and check any answer it states."""
    steps: list[calc.Step] = []
    for name in TEXT_FIELDS:
        value = raw.data.get(name)
        if isinstance(value, str) and "{{" in value:
            where = raw.field_lines.get(name) or [raw.line]
            raw.data[name] = _expand(value, steps, path, where, report)
    if steps:
        # The directive is the card's answer, with its own stated inputs: nothing to check.
        _add_steps(raw, steps)
        return
    _verify(raw, path, report)


def leaves_alone(line: str, data: dict[str, Any]) -> bool:
    """Tell whether `apply` leaves a card whose every text is a part of `line` as it is, saying nothing.

    No "{{" in the line: no directive in any field; no "[" in the question and no code: nothing
    that `_verify` reads. False means only that `apply` must look.
    """
    return "{{" not in line and "code" not in data and "[" not in str(data.get("question") or "")


def _expand(text: str, steps: list[calc.Step], path: str, lines: list[int], report: Report) -> str:
    """Replace every directive in `text` by its result; report each one at its line.

    `lines` holds the input line of each line of the text, where the reader knows them, else
    only the card's line.
    """
    out: list[str] = []
    pos = 0
    for match in _NEAR_RE.finditer(text):
        if match.start() < pos:
            continue  # inside a directive already read
        out.append(text[pos : match.start()])
        try:
            end, output, worked = directive(text, match.start())
        except Malformed as exc:
            at = text.count("\n", 0, match.start())
            report.error(path, lines[at] if at < len(lines) else lines[0], str(exc))
            out.append(match.group(0))
            pos = match.end()
            continue
        out.append(calc.fmt(output, DIGITS))
        steps.extend(worked)
        report.count("computed")
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _add_steps(raw: RawCard, steps: list[calc.Step]) -> None:
    if raw.kind in ("practice", "challenge"):
        raw.data.setdefault("solution", _steps_json(steps))
    elif raw.data.get("answer"):
        raw.data["answer"] = f"{raw.data['answer']}\n\n{_steps_markdown(steps)}"


def _literal(text: str, at: int) -> Any:
    try:
        value, _ = calc.JsonDecoder().raw_decode(text, at)
    except json.JSONDecodeError:
        return None
    return value


def _decimals(stated: Any) -> int:
    if isinstance(stated, list):
        return max((_decimals(x) for x in stated), default=0)
    text = repr(stated)
    return len(text.split(".")[1]) if isinstance(stated, float) and "." in text else 0


def _agrees(stated: Any, computed: Any, digits: int) -> bool:
    try:
        flat_s = [x for row in calc.as_matrix(stated, "answer") for x in row]
    except calc.CalcError:
        return False
    flat_c = [x for row in computed for x in row]
    return len(flat_s) == len(flat_c) and all(
        abs(s - c) <= 0.5 * 10**-digits + 1e-9 for s, c in zip(flat_s, flat_c, strict=True)
    )


def _verify(raw: RawCard, path: str, report: Report) -> None:
    question = str(raw.data.get("question") or "")
    if "[" not in question and "tensor" not in str(raw.data.get("code") or ""):
        return
    given = _given_qkv(question) or _tensors_in_code(raw.data.get("code"))
    if given is None:
        return
    q, k, v, scale, asked = given
    if _UNSCALED_RE.search(question):
        scale = 1.0
    try:
        result = calc.attention(q, k, v, scale=scale)
    except calc.CalcError:
        return  # not an attention question after all: nothing to check
    # What the question (or the code, by what it prints) asks for: one of these, or any of them.
    asked = asked or _asked_in(question)
    if asked == "something else":
        return  # the code prints another value (a shape, a sum): the author's to state
    wanted = {
        "output": [("output", result.output)],
        "weights": [("weights", result.weights)],
        "scores": [("scores", result.scores), ("scaled scores", result.scaled_scores)],
    }
    candidates = wanted[asked] if asked else [c for each in wanted.values() for c in each]
    answer = raw.data.get("answer")
    found = _stated(answer) if isinstance(answer, str) else None
    if found is None and isinstance(answer, str) and answer.strip():
        return  # an answer in words (the output's shape, say): the author's, never replaced
    if found is None:
        if asked != "output":
            return  # only an answer asked for as the output (the steps end with it) is filled in
        raw.data["answer"] = calc.fmt(result.output, DIGITS)
        _add_steps(raw, calc.attention_steps(result, DIGITS))
        report.count("computed")
        return
    shown, stated = found
    digits = _decimals(stated)
    if not any(_agrees(stated, value, digits) for _, value in candidates):
        computed = "; ".join(f"{name} {calc.fmt(value, max(digits, DIGITS))}" for name, value in candidates)
        report.error(
            path,
            raw.line,
            f"the stated answer {shown} disagrees with the computed attention {computed}; "
            "fix the answer or its inputs",
        )
    report.count("verified")


# What a question asks for, by the words it uses: exactly one of them, or it is not told.
_ASKED_RE = {
    "output": re.compile(r"\boutputs?\b", re.IGNORECASE),
    # The weights go by several names: after softmax, its output, the attention distribution.
    "weights": re.compile(
        r"\bweights?\b|\b(?:after|of|from)\s+(?:the\s+)?softmax\b|\bsoftmax\s*\(|"
        r"\battention\s+(?:distribution|matrix|probabilit)",
        re.IGNORECASE,
    ),
    "scores": re.compile(r"\bscores?\b", re.IGNORECASE),
}


def _asked_in(question: str) -> str | None:
    """Tell which attention value a question asks for, when it names exactly one."""
    named = [kind for kind, pattern in _ASKED_RE.items() if pattern.search(question)]
    return named[0] if len(named) == 1 else None


def _stated(answer: str) -> tuple[str, Any] | None:
    """The first matrix or row of numbers an answer states, as written and as read; None if none."""
    start = answer.find("[")
    while start != -1:
        value = _literal(answer, start)
        if isinstance(value, list) and value:
            try:
                calc.as_matrix(value, "answer")
            except calc.CalcError:
                pass
            else:
                _, end = calc.JsonDecoder().raw_decode(answer, start)
                return answer[start:end], value
        start = answer.find("[", start + 1)  # prose in brackets first: "[see the steps]"
    return None


# Query, key and value, the scale (None: 1/sqrt(d_k)), and what is asked for, when it is told.
Given = tuple[Any, Any, Any, "float | None", "str | None"]


def _given_qkv(question: str) -> Given | None:
    """Q, K and V written as matrices in the question, as Practice questions give them."""
    found = []
    for name in ("Q", "K", "V"):
        match = _GIVEN_RE[name].search(question)
        if match is None:
            return None
        found.append(_literal(question, match.end()))
    if any(f is None for f in found):
        return None
    return found[0], found[1], found[2], None, None


_TENSOR_CALLS = frozenset({"tensor", "Tensor", "FloatTensor", "array", "asarray"})
_MATMUL_CALLS = frozenset({"matmul", "mm", "bmm"})


def _called(node: ast.AST) -> str:
    """The name a call calls: `torch.matmul(…)` -> "matmul"."""
    if not isinstance(node, ast.Call):
        return ""
    return str(getattr(node.func, "attr", getattr(node.func, "id", "")))


def _tensors_in_code(code: Any) -> Given | None:
    """Query, key and value tensors a challenge's code builds from literals, the scale, what it prints.

    The scores are what the code passes to softmax, traced back through its assignments: the
    matrix product in them names the query and key (`q @ k.T`, `torch.matmul(q, k.T)`), the
    product of the weights names the value. Scores divided or multiplied by a number are scaled
    by it; by anything else (`math.sqrt(d_k)`), by 1/sqrt(d_k); not at all, not scaled.
    """
    if not isinstance(code, str) or "softmax" not in code:
        return None
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    literals: dict[str, Any] = {}
    assigned: dict[str, list[ast.AST]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            assigned.setdefault(name, []).append(node.value)
            if _called(node.value) in _TENSOR_CALLS and node.value.args:  # type: ignore[attr-defined]
                try:
                    literals[name] = ast.literal_eval(node.value.args[0])  # type: ignore[attr-defined]
                except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
                    continue
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            assigned.setdefault(node.target.id, []).append(
                ast.BinOp(ast.Name(node.target.id), node.op, node.value)
            )
    softmax = next((n for n in ast.walk(tree) if _called(n) == "softmax" and n.args), None)  # type: ignore[attr-defined]
    if softmax is None:
        return None
    chain = _trace(softmax.args[0], assigned, literals)  # type: ignore[attr-defined]
    product = next((n for n in chain if _operands(n)), None)
    if product is None:
        return None
    left, right = _operands(product)  # type: ignore[misc]
    query, key = _tensor_name(left), _tensor_name(right, transposed=True)
    weights = {name for name, values in assigned.items() if any(softmax in ast.walk(v) for v in values)}
    value = next(
        (
            _tensor_name(_operands(n)[1])  # type: ignore[index]
            for n in ast.walk(tree)
            if _operands(n) and _uses(_operands(n)[0], weights, softmax)  # type: ignore[index]
        ),
        None,
    )
    if not (query in literals and key in literals and value in literals):
        return None
    # Only attention as the calculator computes it: softmax over the scores' last axis, the
    # scores scaled once at most. Over another axis, or scaled twice, the output is another.
    scalings = [n for n in chain if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div | ast.Mult)]
    if len(scalings) > 1 or not _over_last_axis(softmax, _depth(literals[query])):
        return None
    return (
        literals[query],
        literals[key],
        literals[value],
        _scale(chain),
        _printed(tree, assigned, softmax, chain),
    )


def _depth(value: Any) -> int:
    """How many axes a nested list of numbers has."""
    depth = 0
    while isinstance(value, list | tuple) and value:
        depth, value = depth + 1, value[0]
    return depth


def _over_last_axis(softmax: ast.AST, axes: int) -> bool:
    """Tell whether a softmax call names the last of `axes` axes (`dim=-1`, `dim=1` of two)."""
    assert isinstance(softmax, ast.Call)
    named = [k.value for k in softmax.keywords if k.arg in ("dim", "axis")]
    given = named or softmax.args[1:2]
    if len(given) != 1:
        return False  # none given (PyTorch then picks one by the shape, with a warning), or two
    try:
        axis = ast.literal_eval(given[0])
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        return False
    return type(axis) is int and axis in (-1, axes - 1)


def _printed(
    tree: ast.AST, assigned: dict[str, list[ast.AST]], softmax: ast.AST, chain: list[ast.AST]
) -> str | None:
    """Tell which attention value the code prints or returns: the output, the weights or the scores."""
    weights = {name for name, values in assigned.items() if any(softmax in ast.walk(v) for v in values)}
    products = [n for n in ast.walk(tree) if _operands(n) and _uses(_operands(n)[0], weights, softmax)]  # type: ignore[index]
    outputs = {
        name for name, values in assigned.items() if any(p in ast.walk(v) for v in values for p in products)
    }
    scores = {n.id for n in chain if isinstance(n, ast.Name)} - weights - outputs
    if any(len(assigned[name]) > 1 for name in weights | outputs):
        return "something else"  # changed after it was computed (`output = output * 2`)
    shown = [n.args[0] for n in ast.walk(tree) if _called(n) == "print" and n.args]  # type: ignore[attr-defined]
    shown += [n.value for n in ast.walk(tree) if isinstance(n, ast.Return) and n.value is not None]
    kinds = set()
    for expr in shown:
        # The value itself, or through a method that keeps its numbers (`out.round(4)`); its
        # shape, sum or one element is another value, which nothing here computes.
        while _called(expr) in _KEEPS_VALUES and isinstance(expr.func, ast.Attribute):
            expr = expr.func.value
        if expr in products or (isinstance(expr, ast.Name) and expr.id in outputs):
            kinds.add("output")
        elif expr is softmax or (isinstance(expr, ast.Name) and expr.id in weights):
            kinds.add("weights")
        elif isinstance(expr, ast.Name) and expr.id in scores:
            kinds.add("scores")
        else:
            kinds.add("something else")
    if not kinds:
        return None
    return kinds.pop() if len(kinds) == 1 else "something else"


_KEEPS_VALUES = frozenset({"round", "detach", "numpy", "tolist", "cpu", "clone", "float", "double"})


def _trace(start: ast.AST, assigned: dict[str, list[ast.AST]], literals: dict[str, Any]) -> list[ast.AST]:
    """Every expression the scores are computed from, through assignments to plain names."""
    seen: set[str] = set()
    out: list[ast.AST] = []
    todo = [start]
    while todo:
        expr = todo.pop()
        for node in ast.walk(expr):
            out.append(node)
            if isinstance(node, ast.Name) and node.id not in seen and node.id not in literals:
                seen.add(node.id)
                todo.extend(assigned.get(node.id, []))
    return out


def _operands(node: ast.AST) -> tuple[ast.AST, ast.AST] | None:
    """The two sides of a matrix product: `a @ b`, `torch.matmul(a, b)`, `a.matmul(b)`."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
        return node.left, node.right
    if _called(node) in _MATMUL_CALLS:
        assert isinstance(node, ast.Call)
        if len(node.args) == 2:
            return node.args[0], node.args[1]
        if len(node.args) == 1 and isinstance(node.func, ast.Attribute) and not _is_module(node.func.value):
            return node.func.value, node.args[0]
    return None


def _is_module(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id in ("torch", "np", "numpy", "tf", "jnp")


def _tensor_name(node: ast.AST, transposed: bool = False) -> str | None:
    """The variable a product's operand names, through `.T`, `.t()` or `.transpose(…)` for the key."""
    if transposed:
        if isinstance(node, ast.Attribute) and node.attr in ("T", "mT"):
            node = node.value
        elif _called(node) in ("t", "transpose") and isinstance(node, ast.Call):
            func = node.func
            node = node.args[0] if _is_module(getattr(func, "value", None) or func) else func.value  # type: ignore[attr-defined]
        else:
            return None
    return node.id if isinstance(node, ast.Name) else None


def _uses(node: ast.AST, weights: set[str], softmax: ast.AST) -> bool:
    return node is softmax or (isinstance(node, ast.Name) and node.id in weights)


def _scale(chain: list[ast.AST]) -> float | None:
    """The scale the code applies to its scores: a number it uses, 1/sqrt(d_k), or none (1)."""
    scaling = [n for n in chain if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div | ast.Mult)]
    if not scaling:
        return 1.0
    if len(scaling) == 1 and isinstance(scaling[0], ast.BinOp):
        op, factor = scaling[0].op, scaling[0].right
        if isinstance(factor, ast.Constant) and isinstance(factor.value, int | float) and factor.value:
            return 1 / factor.value if isinstance(op, ast.Div) else float(factor.value)
    return None
