"""Give back Python code whose line breaks or indentation a web page lost."""

from __future__ import annotations

import ast
import re

# Where a flattened line most likely started a new statement.
_STATEMENT_START = re.compile(
    r"(?:import|from|def|class|return|print|for|while|if|elif|else|with|assert|raise|try|except)\b"
    r"|[A-Za-z_][\w.]*(?:\[[^\]]*\])?\s*(?:[-+*/%@]?=)(?!=)"
)
_DEDENT_AFTER = re.compile(r"^(return|raise|break|continue|pass)\b")
_TOP_LEVEL = re.compile(r"^(def|class|import|from|@)\b")
_BRANCHES = frozenset({"if", "elif", "for", "while", "try", "except"})


def parses(code: str) -> bool:
    """Tell whether `code` is valid Python."""
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


def unflatten(flat: str) -> str:
    """Split a one-line copy of a program back into statements and comments."""
    lines: list[str] = []
    current: list[str] = []
    depth = 0
    quote: str | None = None
    in_comment = False
    i = 0
    while i < len(flat):
        ch = flat[i]
        at_boundary = i > 0 and flat[i - 1] == " " and depth == 0 and quote is None
        if at_boundary and current and "".join(current).strip():
            match = _STATEMENT_START.match(flat, i)
            if match and _opens_statement(flat, i, "".join(current), in_comment):
                lines.append("".join(current).rstrip())
                current = []
                in_comment = False
        if in_comment and ch == "#" and at_boundary:
            # A second "#" in a comment began a comment line of its own.
            lines.append("".join(current).rstrip())
            current = []
        if quote:
            if ch == "\\":
                current.append(flat[i : i + 2])
                i += 2
                continue
            if ch == quote:
                quote = None
        elif in_comment:
            pass
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            in_comment = True
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        current.append(ch)
        i += 1
    if "".join(current).strip():
        lines.append("".join(current).rstrip())
    return "\n".join(lines) + "\n"


def _opens_statement(flat: str, i: int, before: str, in_comment: bool) -> bool:
    stripped = before.rstrip()
    # "import torch.nn.functional as F": the name after "as" is part of the import.
    if re.search(r"\b(as|import|from|in|not|and|or|is|lambda)$", stripped) and not in_comment:
        return False
    return not (not in_comment and stripped.endswith(("=", ",", "(", "[", "{", ":", "+", "-", "*", "/")))


def reindent(code: str) -> str:
    """Indent code whose indentation was lost, block by block, after each line ending in ':'."""
    lines = [raw.strip() for raw in code.splitlines()]
    out: list[str] = []
    level = 0
    body_of_def = 0
    openers: list[tuple[str, int]] = []
    for n, line in enumerate(lines):
        if not line:
            out.append("")
            continue
        if _TOP_LEVEL.match(line) and not line.startswith(("import", "from")):
            level = 0
        elif line.startswith(("elif ", "else:", "except", "finally:")):
            # A continuation lines up with the nearest open if/for/while/try at or above it.
            level = next(
                (lv for kw, lv in reversed(openers) if kw in _BRANCHES and lv <= level), max(0, level - 1)
            )
        opened_block = bool(out) and out[-1].rstrip().endswith(":")
        if _DEDENT_AFTER.match(line) and body_of_def and not opened_block:
            following = next((x for x in lines[n + 1 :] if x), None)
            # A return that ends the code, or comes right before a new definition, ends the function.
            if following is None or _TOP_LEVEL.match(following):
                level = body_of_def
        out.append("    " * level + line)
        if line.startswith(("def ", "async def ")):
            body_of_def = level + 1
        if line.endswith(":") and not line.startswith("#"):
            openers.append((line.split()[0].rstrip(":"), level))
            level += 1
        elif _DEDENT_AFTER.match(line):
            level = max(0, level - 1)
    return "\n".join(out).rstrip() + "\n"


def restore(code: str) -> tuple[str, bool]:
    """Return the code as valid Python where it can be restored, and whether it parses."""
    candidates = [code]
    if "\n" not in code.strip():
        candidates.append(unflatten(code.strip()))
    candidates.append(reindent(code))
    candidates.append(reindent(unflatten(code.strip())) if "\n" not in code.strip() else code)
    for candidate in candidates:
        if parses(candidate):
            return candidate.rstrip() + "\n", True
    return code.rstrip() + "\n", False
