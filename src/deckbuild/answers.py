"""Numeric answers computed by the calculator at build time, and checks of answers cards state.

A card can write `{{calc attention q=[[1, 0]] k=[[1, 0], [0, 1]] v=[[1, 2], [3, 4]]}}` in any
text field, in either source format: the build puts the result there and adds the worked
steps. Cards that state a numeric answer to a question the calculator can read (Q, K and V
given as matrices, or code that builds the tensors) are recomputed and must agree.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from typing import Any

from deckbuild import calc
from deckbuild.errors import Report
from deckbuild.readers import RawCard

DIRECTIVE_RE = re.compile(r"\{\{calc\s+(\w+)(.*?)\}\}", re.S)
_ARG_RE = re.compile(r"\s*([A-Za-z_]\w*)\s*=\s*")
_GIVEN_RE = {name: re.compile(rf"\b{name}\s*=\s*(?=\[)") for name in ("Q", "K", "V")}
TEXT_FIELDS = ("question", "answer", "explanation", "hint", "code")
DIGITS = 4

Operation = Callable[[dict[str, Any]], tuple[Any, list[calc.Step]]]


def _attention(a: dict[str, Any]) -> tuple[Any, list[calc.Step]]:
    result = calc.attention(a.get("q"), a.get("k"), a.get("v"), a.get("mask"), a.get("scale"))
    return result.output, calc.attention_steps(result, DIGITS)


def _multihead(a: dict[str, Any]) -> tuple[Any, list[calc.Step]]:
    result = calc.multihead(
        a.get("x"), a.get("wq"), a.get("wk"), a.get("wv"), a.get("wo"), a.get("heads", 1), a.get("mask")
    )
    return result.output, calc.multihead_steps(result, DIGITS)


def _softmax(a: dict[str, Any]) -> tuple[Any, list[calc.Step]]:
    rows = calc.softmax_rows(calc.as_matrix(a.get("x"), "x"))
    return rows, [
        ("Step 1: Subtract each row's maximum, exponentiate, divide by the row's sum", calc.fmt(rows, DIGITS))
    ]


def _layernorm(a: dict[str, Any]) -> tuple[Any, list[calc.Step]]:
    out = calc.layer_norm(a.get("x"), a.get("gamma"), a.get("beta"), a.get("eps", 1e-5))
    return out, [("Step 1: (x - mean) / sqrt(variance + eps) · gamma + beta, per row", calc.fmt(out, DIGITS))]


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


def parse_arguments(text: str) -> dict[str, Any]:
    """Read `name=JSON` pairs; a bare word (like `causal`) is a string."""
    args: dict[str, Any] = {}
    pos = 0
    decoder = calc.JsonDecoder()
    while pos < len(text.rstrip()):
        match = _ARG_RE.match(text, pos)
        if not match:
            raise calc.CalcError(f"cannot read {text[pos:].strip()[:30]!r}; write name=value pairs")
        pos = match.end()
        word = re.match(r"[A-Za-z_]\w*", text[pos:])
        if word and word.group(0) not in ("true", "false", "null"):
            args[match.group(1).lower()] = word.group(0)
            pos += word.end()
            continue
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            raise calc.CalcError(f"the value of {match.group(1)} is not valid JSON") from None
        args[match.group(1).lower()] = value
    return args


def run(operation: str, arguments: dict[str, Any]) -> tuple[Any, list[calc.Step]]:
    """Run one operation; raise CalcError with a sentence when its inputs do not fit."""
    if operation not in OPERATIONS:
        raise calc.CalcError(f"unknown operation {operation!r}; use one of {', '.join(OPERATIONS)}")
    return OPERATIONS[operation](arguments)


def compute(operation: str, arguments: str) -> tuple[Any, list[calc.Step]]:
    """Run one directive, its arguments written as `name=JSON` pairs."""
    return run(operation, parse_arguments(arguments))


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
        if not isinstance(value, str) or "{{calc" not in value:
            continue

        def replace(match: re.Match[str]) -> str:
            try:
                output, worked = compute(match.group(1), match.group(2))
            except calc.CalcError as exc:
                report.error(path, raw.line, f"calc {match.group(1)}: {exc}; fix the directive's inputs")
                return match.group(0)
            steps.extend(worked)
            return calc.fmt(output, DIGITS)

        raw.data[name] = DIRECTIVE_RE.sub(replace, value)
    if steps:
        _add_steps(raw, steps)
    _verify(raw, path, report)


def _add_steps(raw: RawCard, steps: list[calc.Step]) -> None:
    if raw.kind in ("practice", "challenge"):
        raw.data.setdefault("solution", _steps_json(steps))
    elif raw.data.get("answer"):
        raw.data["answer"] = f"{raw.data['answer']}\n\n{_steps_markdown(steps)}"


def _literal(text: str, at: int) -> Any:
    try:
        value, _ = json.JSONDecoder().raw_decode(text, at)
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
    if "[" not in str(raw.data.get("question") or "") and "tensor" not in str(raw.data.get("code") or ""):
        return
    given = _given_qkv(raw) or _tensors_in_code(raw)
    if given is None:
        return
    q, k, v, scaled = given
    try:
        result = calc.attention(q, k, v, scale=None if scaled else 1.0)
    except calc.CalcError:
        return  # not an attention question after all: nothing to check
    answer = raw.data.get("answer")
    start = answer.find("[") if isinstance(answer, str) else -1
    if start == -1:
        raw.data["answer"] = calc.fmt(result.output, DIGITS)
        _add_steps(raw, calc.attention_steps(result, DIGITS))
        report.count("computed")
        return
    assert isinstance(answer, str)
    stated = _literal(answer, start)
    digits = _decimals(stated)
    if not _agrees(stated, result.output, digits):
        report.error(
            path,
            raw.line,
            f"the stated answer {answer[start:].split(']]')[0]}]] disagrees with the computed attention "
            f"output {calc.fmt(result.output, max(digits, DIGITS))}; fix the answer or its inputs",
        )
    report.count("verified")


def _given_qkv(raw: RawCard) -> tuple[Any, Any, Any, bool] | None:
    """Q, K and V written as matrices in the question, as Practice questions give them."""
    question = str(raw.data.get("question") or "")
    found = []
    for name in ("Q", "K", "V"):
        match = _GIVEN_RE[name].search(question)
        if match is None:
            return None
        found.append(_literal(question, match.end()))
    if any(f is None for f in found):
        return None
    return found[0], found[1], found[2], "scaled" in question.lower()


def _tensors_in_code(raw: RawCard) -> tuple[Any, Any, Any, bool] | None:
    """Query, key and value tensors that a challenge's code builds from literals."""
    code = raw.data.get("code")
    if not isinstance(code, str) or "softmax" not in code or "matmul" not in code:
        return None
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    tensors: dict[str, Any] = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Call)
            and getattr(node.value.func, "attr", getattr(node.value.func, "id", "")) == "tensor"
            and node.value.args
        ):
            try:
                tensors[node.targets[0].id.lower()] = ast.literal_eval(node.value.args[0])
            except ValueError:
                continue
    names = [next((n for n in (full, full[0]) if n in tensors), None) for full in ("query", "key", "value")]
    if any(n is None for n in names):
        return None
    scaled = "** 0.5" in code or "sqrt" in code
    return tensors[names[0]], tensors[names[1]], tensors[names[2]], scaled  # type: ignore[index]
