"""Give back Python code whose line breaks or indentation a web page lost.

Both passes are linear in the length of the code, and code longer than MAX_RESTORE_CHARS
is not restored at all (the reader says so): a page's snippet is a few hundred characters.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

MAX_RESTORE_CHARS = 20_000

# Where a flattened line most likely started a new statement. Bounded, so each try is O(1).
_STATEMENT_START = re.compile(
    r"(?:import|from|def|class|return|print|for|while|if|elif|else|with|assert|raise|try|except|"
    r"finally|async|yield|pass|break|continue|@)\b"
    r"|[A-Za-z_][\w.]{0,80}(?:\[[^\]]{0,80}\])?\s{0,8}(?:[-+*/%@]?=)(?!=)"
)
_COMPOUND = re.compile(r"(def|class|if|elif|else|for|while|with|try|except|finally|async)\b")
_GLUED_WORD = re.compile(r"\b(as|import|from|in|not|and|or|is|lambda|if|else|return|yield|await)$")
_ENDS_BLOCK = re.compile(r"^(return|raise|break|continue|pass)\b")
_DEF_RE = re.compile(r"^(?:async\s+)?def\s+(\w+)\s*\(\s*(\w*)")
_STAYS_AFTER_RETURN = re.compile(r"^(return|raise|elif|else|except|finally)\b")
_RETURNS_NAME = re.compile(r"^return\s+(\w+)\b")
_METHOD_DECORATORS = re.compile(r"^@(staticmethod|classmethod|property|\w+\.setter|\w+\.deleter)\b")
# Which block a continuation line (else, elif, except, finally) continues.
_CONTINUES = {
    "elif": ("if", "elif"),
    "else": ("if", "elif", "for", "while", "try", "except"),
    "except": ("try", "except"),
    "finally": ("try", "except", "else"),
}


def parses(code: str) -> bool:
    """Tell whether `code` is valid Python: compiled (never run), not only parsed.

    Parsing alone takes code the compiler refuses, such as `return` outside a function, which a
    restoring that put a line at the wrong level gives.
    """
    # What the compiler warns of (`"is" with a literal`) is no problem of the card's: never printed.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(code, "<card>", "exec", dont_inherit=True)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return False
    return True


def unflatten(flat: str) -> str:
    """Split a one-line copy of a program back into statements and comments, in linear time."""
    lines: list[str] = []
    current: list[str] = []
    has_text = False  # whether `current` holds anything but spaces
    depth = 0
    quote: str | None = None
    in_comment = False
    i = 0
    while i < len(flat):
        ch = flat[i]
        at_boundary = i > 0 and flat[i - 1] == " " and depth == 0 and quote is None
        if at_boundary and has_text:
            # Only the end of the line so far matters, so look at a bounded tail of it.
            tail = "".join(current[-12:]).rstrip()
            head = "".join(current[:12]).lstrip()
            header_ended = tail.endswith(":") and bool(_COMPOUND.match(head)) and not in_comment
            if (header_ended or _STATEMENT_START.match(flat, i)) and _opens_statement(tail, in_comment, head):
                lines.append("".join(current).rstrip())
                current, has_text = [], False
                in_comment = False
        if in_comment and ch == "#" and at_boundary and has_text:
            # A second "#" in a comment began a comment line of its own.
            lines.append("".join(current).rstrip())
            current, has_text = [], False
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
        has_text = has_text or ch != " "
        i += 1
    if has_text:
        lines.append("".join(current).rstrip())
    return "\n".join(lines) + "\n"


def _opens_statement(tail: str, in_comment: bool, head: str) -> bool:
    if in_comment:
        return True
    # "import torch.nn.functional as F": the name after "as" is part of the import.
    if _GLUED_WORD.search(tail):
        return False
    if tail.endswith(":"):
        # A block's header ends there; a colon elsewhere (lambda, annotation) does not end a line.
        return bool(_COMPOUND.match(head))
    return not tail.endswith(("=", ",", "(", "[", "{", "+", "-", "*", "/", "\\"))


@dataclass
class _Block:
    keyword: str
    level: int
    is_def: bool = False
    in_class: bool = False  # a method: its def sits directly in a class


def reindent(code: str) -> str:
    """Indent code whose indentation was lost, block by block, after each line ending in ':'.

    Blocks are kept on a stack: a method (`def f(self…)`, or one after `@staticmethod`) goes
    back into the nearest class; a `def` directly after a block's header, or one whose name
    a later `return` gives back, is nested; any other `def` or `class` starts at column 0.
    `return`, `raise`, `break`, `continue` and `pass` close the innermost block; `else`,
    `elif`, `except` and `finally` line up with the block they continue. Where a block could
    end in two places (a loop followed by a statement) the statement stays in the block.
    """
    lines = [raw.strip() for raw in code.splitlines()]
    returned = {m.group(1) for line in lines if (m := _RETURNS_NAME.match(line))}
    following = [-1] * len(lines)  # index of the next non-blank line
    nxt = -1
    for n in range(len(lines) - 1, -1, -1):
        following[n] = nxt
        if lines[n]:
            nxt = n
    out: list[str] = []
    stack: list[_Block] = []
    closed: list[_Block] = []  # blocks a return or pass just closed, which an else may continue
    previous_opened = False
    decorators: list[int] = []  # indexes in `out` of decorator lines waiting for their def
    for n, line in enumerate(lines):
        if not line:
            out.append("")
            continue
        if line.startswith("#"):
            out.append("    " * _level(stack) + line)
            continue
        keyword = re.split(r"[\s:(]", line, maxsplit=1)[0]
        if line.startswith("@"):
            decorators.append(len(out))
            out.append(line)
            continue
        if keyword in _CONTINUES:
            level = _continue(stack, closed, keyword)
        elif (definition := _DEF_RE.match(line)) or keyword == "class":
            method = bool(definition) and (
                (definition.group(2) in ("self", "cls") if definition else False)
                or any(_METHOD_DECORATORS.match(out[d]) for d in decorators)
            )
            classes = [k for k, b in enumerate(stack) if b.keyword == "class"]
            if method and classes:
                del stack[classes[-1] + 1 :]
            elif previous_opened or (definition and definition.group(1) in returned and _inside_def(stack)):
                pass  # nested in the block it follows
            else:
                stack.clear()
            level = _level(stack)
        else:
            method_ended = closed and closed[-1].is_def and closed[-1].in_class
            if method_ended and stack and stack[-1].keyword == "class":
                stack.pop()  # a statement after a class's last method leaves the class
            level = _level(stack)
        if _ENDS_BLOCK.match(line) and not previous_opened and line.split()[0] == "return":
            after = following[n]
            if after == -1 or not _STAYS_AFTER_RETURN.match(lines[after]):
                # A return after other statements of its block ends its function, unless what
                # follows can only be in that function (another return, an else, ...).
                defs = [k for k, b in enumerate(stack) if b.is_def]
                if defs:
                    del stack[defs[-1] + 1 :]
                    level = _level(stack)
        for d in decorators:
            out[d] = "    " * level + out[d]
        decorators = []
        out.append("    " * level + line)
        previous_opened = line.endswith(":")
        if previous_opened:
            in_class = bool(stack) and stack[-1].keyword == "class"
            stack.append(_Block(keyword, level, keyword in ("def", "async"), in_class))
            closed = []
        elif _ENDS_BLOCK.match(line):
            closed = [stack.pop()] if stack else []
        elif _COMPOUND.match(keyword) and ":" in line:
            closed = [_Block(keyword, level)]  # a one-line block, like "if x: y = 1"
        elif keyword not in _CONTINUES:
            closed = []
    return "\n".join(out).rstrip() + "\n"


def _level(stack: list[_Block]) -> int:
    return stack[-1].level + 1 if stack else 0


def _inside_def(stack: list[_Block]) -> bool:
    return any(b.is_def for b in stack)


def _continue(stack: list[_Block], closed: list[_Block], keyword: str) -> int:
    """Line up `else`/`elif`/`except`/`finally` with the nearest block it can continue."""
    allowed = _CONTINUES[keyword]
    for block in reversed(closed):
        if block.keyword in allowed:
            while stack and stack[-1].level >= block.level:
                stack.pop()
            return block.level
    for k in range(len(stack) - 1, -1, -1):
        if stack[k].keyword in allowed:
            level = stack[k].level
            del stack[k:]
            return level
    return max(0, _level(stack) - 1)


def restore(code: str) -> tuple[str, bool]:
    """Return the code as valid Python where it can be restored, and whether it parses."""
    if len(code) > MAX_RESTORE_CHARS:
        return code.rstrip() + "\n", parses(code)
    one_line = "\n" not in code.strip()
    candidates = [code]
    if one_line:
        candidates += [unflatten(code.strip()), reindent(unflatten(code.strip()))]
    else:
        candidates.append(reindent(code))
    for candidate in candidates:
        if parses(candidate):
            return candidate.rstrip() + "\n", True
    return code.rstrip() + "\n", False
