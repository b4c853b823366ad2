"""Rendering, checked against golden files: one small input per construct, its HTML beside it.

Set UPDATE_GOLDEN=1 to rewrite the expected files, then read every change before committing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from conftest import DATA, put
from deckbuild.errors import Report
from deckbuild.render import Where, highlight, render_text
from hostile import MATH_COMMANDS

GOLDEN = DATA / "render"
CASES = sorted(p.stem for p in GOLDEN.glob("*.md"))


def render(name: str) -> tuple[str, list[str]]:
    report = Report()
    html = render_text((GOLDEN / f"{name}.md").read_text(encoding="utf-8"), Where(f"{name}.md", 1), report)
    return html, [str(p) for p in report.sorted_problems()]


@pytest.mark.parametrize("name", CASES)
def test_rendered_field_matches_its_golden_file(name):
    html, problems = render(name)
    expected_html, expected_problems = GOLDEN / f"{name}.html", GOLDEN / f"{name}.problems"
    if os.environ.get("UPDATE_GOLDEN"):
        expected_html.write_text(html + "\n", encoding="utf-8")
        if problems:
            expected_problems.write_text("\n".join(problems) + "\n", encoding="utf-8")
        else:
            expected_problems.unlink(missing_ok=True)
    assert html + "\n" == expected_html.read_text(encoding="utf-8")
    want = expected_problems.read_text(encoding="utf-8").splitlines() if expected_problems.exists() else []
    assert problems == want


def test_latex_reaches_the_field_byte_for_byte():
    source = (GOLDEN / "latex_delimiters.md").read_text(encoding="utf-8")
    html, _ = render("latex_delimiters")
    for formula in (r"\(\mathbf{Q}\)", r"\(d_k\)", r"\(x_1 * y_2\)"):
        assert formula in source and formula in html
    display = source[source.index(r"\[") : source.index(r"\]") + 2]
    assert display in html


def test_nothing_that_runs_script_survives():
    html, _ = render("unsafe_html")
    for bad in ("<script", "onerror", "onclick", "javascript:", "<iframe", "position"):
        assert bad not in html.lower()


def test_inline_and_block_code_are_highlighted_with_inline_styles():
    block, _ = render("fenced_code")
    inline, _ = render("inline_code")
    assert "<pre" in block and 'style="color:' in block
    assert inline.count("<code>") == 1 and 'style="color:' in inline
    assert "<code>" in highlight("x", "no-such-language", inline=True)


def media_where(root: Path, folder: Path) -> Where:
    return Where("card.md", 3, folder, root, {})


def test_local_images_are_packaged_under_content_names(deck_tree):
    folder = deck_tree / "Deck"
    put(deck_tree, "Deck/img/x.png", b"first picture")
    put(deck_tree, "Other/img/x.png", b"second picture")
    where = media_where(deck_tree, folder)
    report = Report()
    one = render_text("![a](img/x.png)", where, report)
    two = render_text("![b](../Other/img/x.png)", where, report)
    assert report.problems == []
    names = sorted(where.media)
    assert len(names) == 2 and all(n.startswith("x-") and n.endswith(".png") for n in names)
    assert names[0] in one + two and names[1] in one + two


def test_escaping_images_are_errors_and_a_missing_one_is_left_out_with_a_warning(deck_tree, tmp_path):
    (tmp_path / "secret.png").write_bytes(b"outside")
    folder = deck_tree / "Deck"
    folder.mkdir()
    report = Report()
    where = media_where(deck_tree, folder)
    html = render_text("![m](img/missing.png) ![s](../../secret.png) ![a](/etc/hostname)", where, report)
    assert "missing" not in html and html.count("<img") == 2
    assert where.missing == [(folder / "img" / "missing.png").resolve()]
    assert [str(p) for p in report.problems] == [
        "card.md:3: warning: image img/missing.png not found, left out of the card; "
        "add the file or fix the path",
        "card.md:3: image ../../secret.png is outside the deck folder; move it inside",
        "card.md:3: image /etc/hostname is outside the deck folder; move it inside",
    ]
    assert where.media == {}


CHARACTERS = list("abcXYZ019 .,:;'\"?()-+=/\n*_`#[]!<>&|~\t\u00a0é⋅")
plainish = st.text(alphabet=st.sampled_from(CHARACTERS), max_size=40)


@given(plainish)
@example("`&#0`")  # Markdown adds a ';' to a numeric reference in code
def test_the_plain_text_shortcut_renders_exactly_as_markdown_would(text):
    from deckbuild.render import _markdown_to_html, _plain

    fast = _plain(text)
    if fast is not None:
        assert fast == _markdown_to_html(text)


CODE_AND_LISTS = [*CHARACTERS, "`", "``", "`x`", "` y `", "\n- ", "- ", "1. ", "  "]
listish = st.lists(st.sampled_from(CODE_AND_LISTS), max_size=30).map("".join)


@given(listish)
def test_the_code_and_list_shortcuts_render_exactly_as_markdown_would(text):
    from deckbuild.render import _markdown_to_html, _plain, _plain_list

    for fast in (_plain(text), _plain_list(text)):
        if fast is not None:
            assert fast == _markdown_to_html(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Call `softmax(x, dim=-1)` on <scores>", None),
        ("Call `softmax(x, dim=-1)` on scores", "<p>Call <code>softmax(x, dim=-1)</code> on scores</p>"),
        ("`a < b && c`", "<p><code>a &lt; b &amp;&amp; c</code></p>"),
        ("- Attention: sums to 1.\n- Self-attention: `q·k`\n", None),
    ],
)
def test_code_spans_take_the_shortcut(text, expected):
    from deckbuild.render import _plain

    assert _plain(text) == expected


def test_one_line_lists_take_the_shortcut():
    from deckbuild.render import _plain_list

    text = "- Attention: sums to 1.\n- Self-attention: `q·k`\n"
    expected = "<ul>\n<li>Attention: sums to 1.</li>\n<li>Self-attention: <code>q·k</code></li>\n</ul>"
    assert _plain_list(text) == expected
    assert _plain_list("- a\n\n- b") is None and _plain_list("- a\n  - b") is None
    assert _plain_list("* a") is None and _plain_list("- *a*") is None


def test_the_shortcut_is_taken_for_plain_questions_and_not_for_markup():
    from deckbuild.render import _plain

    expected = "<p>What is the query vector?<br>\nAnd the key?</p>"
    assert _plain("What is the query vector?\nAnd the key?") == expected
    assert _plain("- a list") is None and _plain("1. a list") is None and _plain("**bold**") is None


@pytest.mark.parametrize("name", [*MATH_COMMANDS, "HREF", "Style", "cssid"])
def test_every_mathjax_command_that_links_styles_or_defines_is_refused(name):
    for text in (f"\\(\\{name}{{a}}{{b}}\\)", f"$$x \\{name} {{a}}$$", f"${name[0]}\\{name}%\n{{b}}$"):
        report = Report()
        render_text(text, Where("card.md", 7), report)
        [problem] = report.errors
        assert problem.message.startswith("formula ") and f" uses \\{name}, which MathJax turns into " in str(
            problem
        )
        assert str(problem).startswith("card.md:7: ")


def test_the_previews_mathml_never_carries_markup_a_formula_wrote():
    from deckbuild.render import to_mathml

    hostile = [r"\text{<img/src=x/onerror=alert(1)>}", r"\text{<mrow onclick='x'/>}",
               r"\text{<img src='x' onerror='y'/>}", r"\href{javascript:x}{y}", r"\style{position:fixed}{x}",
               r"\class{a}{b}"]  # fmt: skip
    for body in hostile:
        assert to_mathml(body, False) is None, body
    shown = to_mathml(r"\text{Add\&Norm}(x)", True)
    assert shown is not None and "<mtext>Add\\&amp;Norm</mtext>" in shown


# Line starts and ends with what Markdown reads there: blanks of every kind, markers, digits.
EDGES = [*CHARACTERS, " ", "\u2003", "\u0663", "٣.", "1)", "12.", "-", "+", "=", "\r", "\x0b", "\x1c", "\x85"]
edgy = st.lists(st.sampled_from(EDGES), min_size=1, max_size=12).map("".join)


@given(edgy)
@example("\u0663) x")  # a digit of another script still starts a numbered line
@example("x\u2003")  # as does any blank end it
def test_the_plain_test_finds_exactly_what_its_one_regex_finds(text):
    import re

    from deckbuild.render import _not_plain

    reference = re.compile(r"[*_`#\[\]!<>&\\|~\u00a0\t]|^\s|\s$|^[-+=]|^\d+[.)]", re.M)
    assert _not_plain(text) == (reference.search(text) is not None)


FORMULA = [
    *(f"\\{name}" for name in MATH_COMMANDS),
    "\\frac",
    "\\(",
    "\\)",
    "\\[",
    "\\]",
    "\\\\",
    "\\{",
    "\\é",
    "\\1",
    "a",
    "{",
    "}",
    " ",
    "\\",
]
formulas = st.lists(st.sampled_from(FORMULA), max_size=12).map("".join)


_REFUSABLE = [
    "\\enclose", "\\ENCLOSE", "\\bbox", "\\BBox", "\\Href", "\\CSSId", "\\newCommand", "\\textstyle",
    "{circle}", "[", "]", ":", "=", "red", "{", "}", "\\", "\\\\", "\\(", "\\]", "x", " ",
]  # fmt: skip


@given(formulas | st.lists(st.sampled_from(_REFUSABLE), max_size=10).map("".join))
@example("\\enclose x")  # one of each thing refused
@example("\\bbox[color:red]{x}")
@example("x\\")
@example("a \\( b")
@example("\\Href{x}{y}")
def test_a_formula_with_nothing_to_refuse_found_at_a_look_is_one_that_reading_it_refuses_nothing_of(body):
    # The look for what could be refused finds more than reading the tokens refuses, never less.
    from deckbuild.render import UNSAFE_MATH, _safe_math, _safe_math_read

    assert {"href", "cssid", "newcommand"} <= set(UNSAFE_MATH)

    quick, read = Report(), Report()
    assert _safe_math(body, body, Where("f", 1), quick) == _safe_math_read(body, body, Where("f", 1), read)
    assert quick.problems == read.problems


@given(formulas)
def test_formula_tokens_give_the_delimiters_and_commands_of_one_token_at_a_time(body):
    import re

    from deckbuild.render import _TOKEN_RE

    # Every token as a whole, then its delimiters and control words, as the check read them before.
    whole = [m.group(0) for m in re.finditer(r"\\(?:[A-Za-z]+|.)", body, re.S)]
    tokens = _TOKEN_RE.findall(body)
    assert ["\\" + d for _, d in tokens if d] == [t for t in whole if t in ("\\(", "\\)", "\\[", "\\]")]
    assert [w for w, _ in tokens if w] == [t[1:] for t in whole if t[1:].isalpha() and t[1:].isascii()]


def _balanced_as_counted(body: str) -> bool:
    """The brace check as it was first written: a depth counted brace by brace, escapes skipped."""
    import re

    depth = 0
    for brace in re.findall(r"\\.|[{}]", body, re.S):
        if len(brace) == 1:
            depth += 1 if brace == "{" else -1
            if depth < 0:
                return False
    return depth == 0


@given(formulas | st.text(alphabet="{}\\x \n", max_size=30))
@example("\\{")  # an escaped brace is no brace
@example("\\\\{}")  # an escaped backslash, then two braces
@example("{\\")  # a backslash at the end escapes nothing
@example("}{")
def test_braces_pair_up_as_a_depth_counted_brace_by_brace_says(body):
    from deckbuild.render import _balanced

    assert _balanced(body) == _balanced_as_counted(body)


@given(formulas, st.booleans())
@example("\\href{x}{y} \\foo {", False)  # an error, a warning, unbalanced braces
@example("\\foo{" + "x" * 300, True)  # too long to be remembered: checked each time
def test_a_formula_checked_again_gets_the_problems_a_first_check_finds(body, display):
    from deckbuild.render import Math, _check_math, check_math

    formula, where = Math(body, display), Where("t.txt", 7)
    first, again = Report(), Report()
    _check_math(formula, where, first)
    check_math(formula, Where("other.txt", 1), Report())  # remembered from another card
    check_math(formula, where, again)
    assert again.problems == first.problems


def test_only_formulas_short_enough_are_remembered():
    from deckbuild.render import MAX_REMEMBERED_FORMULA, Math, _math_problems, check_math

    def asked() -> int:
        info = _math_problems.cache_info()
        return info.hits + info.misses

    before = asked()
    check_math(Math("x" * (MAX_REMEMBERED_FORMULA + 1), False), Where("t.txt", 1), Report())
    assert asked() == before
    check_math(Math("x" * MAX_REMEMBERED_FORMULA, False), Where("t.txt", 1), Report())
    assert asked() == before + 1


def test_a_line_prefix_starts_with_a_character_the_one_line_test_names():
    import re

    from deckbuild.limits import _PREFIX_CHARS

    # The class _DEEP_PREFIX_RE repeats, tried on every character: the shortcut for one line
    # asks the first character for it in C.
    prefix = re.compile(r"[ \t>+*\-\d.)]")
    taken = [c for c in map(chr, range(0x110000)) if prefix.match(c)]
    assert taken == [c for c in map(chr, range(0x110000)) if c in _PREFIX_CHARS or c.isdecimal()]


@given(st.lists(st.sampled_from([*" \t>+*-.)1٣x[({\n", "-" * 33, "٣" * 40]), max_size=12).map("".join))
def test_the_nesting_suspicion_is_the_counts_or_the_full_prefix_search(text):
    from deckbuild.limits import _DEEP_PREFIX_RE, MAX_NESTING, _may_nest_too_deeply

    counted = text.count("[") + text.count("(") + text.count("{") > MAX_NESTING
    assert _may_nest_too_deeply(text) == (counted or _DEEP_PREFIX_RE.search(text) is not None)


@given(st.text(alphabet=st.sampled_from("[({ \t>-+*1.)`<~x\n"), max_size=32))
def test_a_field_too_short_to_break_a_limit_is_passed_without_counting(text):
    from deckbuild.limits import MAX_MARKUP_WORK, MAX_NESTING, _may_nest_too_deeply, nesting

    # field_problem passes any text of at most MAX_NESTING characters at once: none can fail.
    assert not (_may_nest_too_deeply(text) and nesting(text) > MAX_NESTING)
    assert sum(map(text.count, "[`<~")) * len(text) <= MAX_MARKUP_WORK


# Text every step of rendering passes through: words, punctuation, blanks, non-ASCII, lines.
QUIET = [*"abcXYZ019 .,:;'\"?()-+=/\n{}é⋅\u2003\ue000", "Ã©", "1.", "  ", "$", "&", "\\(x\\)", "`c`", "<br>"]
quiet = st.lists(st.sampled_from(QUIET), max_size=20).map("".join)


@given(quiet, st.booleans())
@example("x\ue000", False)  # a private-use character may be taken for a placeholder
@example("Ã© and Ã¨", True)  # mojibake is repaired, with a warning
def test_a_field_with_nothing_to_render_takes_the_shortcut_to_what_rendering_gives(text, inline):
    from deckbuild.render import _plain_field, _render_text

    fast = _plain_field(text, inline)
    if fast is not None:
        report = Report()
        assert fast == _render_text(text, Where("t.txt", 1), report, inline)
        assert not report.problems


BREAKY = ["a", " ", "  ", "\t", "\n", "<br>", "<BR/>", "<br \t/>", "<br\n>", "<br", ">", "<", "/", "-", "`"]


@given(st.lists(st.sampled_from(BREAKY), max_size=30).map("".join))
@example("a <br>  <br> <br>\t\tb")
def test_breaks_become_lines_exactly_as_the_full_pattern_makes_them(text):
    from deckbuild.render import _BR_RE, _breaks_as_lines

    assert _breaks_as_lines(text) == _BR_RE.sub("\n", text)


# Lines of lists and of what is near one: items at the margin or indented, fences, text, blanks.
LISTY = ["", "- a", "* b c", "+ ", "1. x", "123456789) y", "1234567890. z", "٣. d", "- ```", "```", "~~~",
         "  - a", " 1. b", "a", " ", "\t", "- \t", "1.x", "-a", "\r", "- a\r"]  # fmt: skip


@given(st.lists(st.sampled_from(LISTY), max_size=8).map("\n".join))
@example("- a\n- b\n")  # a `<br>` list of a one-line format, as its breaks become lines
@example("a\n- b")  # a list right after text: not taken as it is
def test_lines_of_items_at_the_margin_are_left_as_the_list_reading_leaves_them(text):
    from deckbuild.render import _MARGIN_ITEMS_RE, _lists

    if _MARGIN_ITEMS_RE.fullmatch(text):
        assert _lists(text) == text


def test_the_seeds_lists_take_the_shortcut_past_the_list_reading():
    from conftest import seed
    from deckbuild.render import _MARGIN_ITEMS_RE, _breaks_as_lines

    rows = seed("003").read_text(encoding="utf-8").splitlines()[1:]
    lists = [row.split(";")[1] for row in rows if row.count(";") == 2 and row.split(";")[1].startswith("- ")]
    assert len(lists) >= 3 and all(_MARGIN_ITEMS_RE.fullmatch(_breaks_as_lines(a)) for a in lists)


CODEY = ["a", " ", "\n", "`", "``", "```", "```\n", "~~~", "~~~\n", "#!", "#!py x", "\\", "\\(x\\)", "$"]


@given(st.lists(st.sampled_from(CODEY), max_size=25).map("".join))
@example("`#!python print(1)` and $x$")
@example("Run `#!python print(1)`")  # tagged code is highlighted, with no formula in the text
def test_text_with_code_but_no_formula_or_tagged_code_is_taken_out_as_the_full_scan_takes_it(text):
    from deckbuild.render import _extract_code, _Held, extract

    where = Where("t.txt", 1)
    fast_report, full_report, full = Report(), Report(), _Held()
    fast, held = extract(text, where, fast_report)
    assert fast == _extract_code(text, where, full_report, full)
    assert (held.html, held.sources, held.formulas) == (full.html, full.sources, full.formulas)
    assert fast_report.problems == full_report.problems


FORMULAIC = [*CODE_AND_LISTS, "\\(x<y\\)", "\\[a\\]", "$$b$$", "$c$", "\\\\(", "<br>", "\ue000", "&#xE000;"]
formulaic = st.lists(st.sampled_from(FORMULAIC), max_size=20).map("".join)


@given(formulaic)
def test_formulas_go_back_into_a_shortcuts_markup_as_the_full_put_back_puts_them(text):
    from deckbuild.render import _pieces_in, _plain, _plain_list, _put_back, extract

    where = Where("t.txt", 1)
    text, held = extract(text, where, Report())
    markup = _plain(text) or _plain_list(text)
    if markup is not None and "\\" not in markup:
        report = Report()
        assert _pieces_in(markup, held) == _put_back(markup, held, where, report)
        assert not report.problems


def test_the_common_commands_are_all_known_to_latex2mathml():
    from deckbuild.render import COMMON_COMMANDS, _known_commands

    assert COMMON_COMMANDS.issubset(_known_commands())


def test_a_formula_of_common_commands_is_checked_without_loading_latex2mathml():
    import subprocess
    import sys

    def run(formula: str) -> str:
        script = (
            "import sys\n"
            "from deckbuild.errors import Report\n"
            "from deckbuild.render import Where, render_text\n"
            "report = Report()\n"
            f"render_text({formula!r}, Where('t.txt', 1), report)\n"
            "print([p.message for p in report.problems], 'latex2mathml' in sys.modules)\n"
        )
        return subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        ).stdout

    common = "\\(\\frac{\\mathbf{Q}}{\\sqrt{d}}\\)"
    assert run(common) == "[] False\n"
    assert "unknown LaTeX command \\\\nosuch" in run(common + " and \\(\\nosuch\\)")


def test_a_pattern_compiled_on_first_use_is_the_one_written_and_takes_its_name():
    """In a fresh process: deferred until used, then exactly re.compile of what was written."""
    script = """
import re
from deckbuild import render
deferred = {n: v for n, v in vars(render).items() if isinstance(v, render._Deferred)}
assert "_CODE_RE" in deferred and "_MOJIBAKE_RE" in deferred, sorted(deferred)
assert render._BR_RE.sub("", "a<br>b") == "ab"
assert type(render._BR_RE) is re.Pattern
render.compile_patterns()
for name, pending in deferred.items():
    assert getattr(render, name) == re.compile(*pending.args), name
print(len(deferred))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= 30


SCHEME = st.from_regex(r"[A-Za-z][A-Za-z0-9+.\-]{0,9}", fullmatch=True)


@given(
    SCHEME,
    st.text("abc/:(1)", max_size=8),
    st.sampled_from(["[x]({url})", '<a href="{url}">x</a>', "<a href='{url}'>x</a>", "<a href={url}>x</a>"]),
)
@example("javascript", "alert(1)", "[x]({url})")
@example("ftp", "//host/f", '<a href="{url}">x</a>')
@example("data", "text/html,x", "<a href={url}>x</a>")
def test_a_link_keeps_its_address_or_the_author_hears_why(scheme, rest, form):
    report = Report()
    url = f"{scheme}:{rest}"
    html = render_text(form.format(url=url), Where("f.md", 4), report)
    if ' href="' in html:
        assert scheme.lower() in ("http", "https", "mailto") and report.problems == []
    elif "<a " in html:  # a link (Markdown reads some of these as text: `[x](a:()`)
        assert [(p.line, p.severity.value) for p in report.problems] == [(4, "warning")], (url, html)
        assert "address" in report.problems[0].message


def test_each_link_without_an_address_is_named_by_its_text():
    # Two on one line were one warning naming neither; one written without an address at all was
    # said to have lost it.
    report = Report()
    field = '<a href="javascript:x()">run</a>, [the \\(x^2\\) file](file:///etc/passwd) and <a>plain</a>'
    render_text(field, Where("f.md", 3), report)
    assert [str(p) for p in report.problems] == [
        f"f.md:3: warning: the link {text!r} has no web or mail address, so it shows as text (one not "
        "written in full, like javascript:, data: or ftp:, is removed); write its address in full "
        "(https://…), or write it as text"
        for text in ("run", "the \\(x^2\\) file", "plain")
    ]


# Pieces of a formula MathJax draws as nothing, and atoms it draws.
_UNDRAWN = [
    " ",
    "\\,",
    "\\;",
    "\\:",
    "\\!",
    "\\>",
    "\\ ",
    "~",
    "\\quad",
    "\\qquad",
    "\\thinspace",
    "\\enspace",
    "\\hspace{1em}",
    "\\hspace*{2pt}",
    "\\mspace{3mu}",
    "\\kern1em",
    "\\mkern18mu",
    "\\hskip-.5em",
    "\\mathstrut",
    "\\strut",
    "\\displaystyle",
    "\\\\",
    "{}",
    "\\text{ }",
    "\\mathrm{}",
    "\\mathbf{\\quad}",
    "\\phantom{x}",
    "\\hphantom{\\text{Hi}}",
    "\\vphantom{\\frac{a}{b}}",
    "&nbsp;",
    "\\&gt;",
    "\\color{red}",
    "\\textcolor{blue}{}",
    "\\mathord{}",
    "\\left.\\right.",
    "\\begin{matrix}\\end{matrix}",
]
# Drawn, among them what a text-mode group shows as text (MathJax's default set-up has no text macros).
_DRAWN = ["x", "1", "-", "\\alpha", "\\cdot", "\\text{a}", "\\mathbf{v}", "\\frac{1}{2}", "\\kern ab"]
_DRAWN += ["\\text{\\quad}", "\\text{~}", "\\sqrt{}", "\\vec{}", "|", "\\{\\}", "\\left(\\right."]


@given(
    st.lists(st.sampled_from(_UNDRAWN), max_size=5), st.sampled_from(_DRAWN), st.integers(0, 5), st.booleans()
)
def test_a_formula_of_spacing_alone_shows_nothing_and_one_drawn_atom_is_something(pieces, atom, at, display):
    from deckbuild.render import _shows_something

    opener, closer = ("\\[", "\\]") if display else ("\\(", "\\)")
    assert not _shows_something(opener + "".join(pieces) + closer)
    pieces.insert(min(at, len(pieces)), atom)
    assert _shows_something(opener + "".join(pieces) + closer)


def test_a_link_without_an_address_is_named_by_its_text_or_its_image(tmp_path):
    (tmp_path / "x.png").write_bytes(b"\x89PNG picture")
    report = Report()
    field = '[my text]() <a href=" ">u</a> [![a plot](x.png)](javascript:1) [](javascript:2)'
    render_text(field, Where("f.md", 3, tmp_path, tmp_path), report)
    assert [p.message.split(" has no ")[0] for p in report.problems] == [
        "the link 'my text'",
        "the link 'u'",
        "the link around the image 'a plot'",
        "the link with no text",
    ]


@pytest.mark.parametrize("found", [True, False])
def test_a_cloze_holding_only_an_image_is_kept_or_warned_of_as_a_question_would_be(tmp_path, found):
    from deckbuild.models import make_card
    from deckbuild.render import note_fields

    if found:
        (tmp_path / "map.png").write_bytes(b"\x89PNG a map")
    question = "Paris is {{c1::<img src='map.png'>}}"
    card = make_card(
        {"id": "11111111-1111-4111-8111-111111111111", "kind": "cloze", "deck": "D", "source": "f.md:3",
         "question": question}
    )  # fmt: skip
    report = Report()
    note_fields(card, "f.md", report, Where("f.md", 3, tmp_path, tmp_path))
    expected = (
        []
        if found
        else ["warning: image map.png not found, left out of the card; add the file or fix the path"]
    )
    assert [str(p).split(": ", 1)[1] for p in report.problems] == expected


def test_a_link_in_a_cloze_is_named_once_as_its_author_wrote_it():
    from deckbuild.models import make_card
    from deckbuild.render import note_fields

    card = make_card(
        {
            "id": "11111111-1111-4111-8111-111111111111",
            "kind": "cloze",
            "deck": "D",
            "source": "f.md:3",
            "question": "[x {{c1::y}}](javascript:1)",
        }
    )
    report = Report()
    note_fields(card, "f.md", report, Where("f.md", 3))
    assert [p.message.split(" has no ")[0] for p in report.problems] == ["the link 'x {{c1::y}}'"]


_FIELD_PIECES = [
    "<p>",
    "</p>",
    "<b>",
    "&nbsp;",
    "&amp;",
    "&#8203;",
    "\u200b",
    " ",
    "x",
    "<br>",
    "\u00ad",
    "&",
    ">",
]
_FIELD_PIECES += ["&lrm;", "\u3164", "\u0301", "é", "<img>", '<img src="a.png">', "\U000e0041", "\u2800"]
_FIELD_PIECES += ["\u06dd"]  # a format character that is drawn: the end of ayah
# Formulas as a rendered field holds them, some drawn as nothing; images of no size.
_FIELD_PIECES += ["\\(", "\\)", "\\[", "\\]", "\\,", "\\quad", "\\phantom{x}", '<img src="b.png" width="0">']


@given(st.lists(st.sampled_from([*_FIELD_PIECES, '<span title="a>b">', "\n"]), max_size=6).map("".join))
def test_a_field_shows_something_exactly_when_its_text_holds_a_seen_character(markup):
    # The quick look at the markup gives the answer reading its text in full would.
    import html as html_module
    import re
    import unicodedata

    from deckbuild.render import _shows_something

    # A formula MathJax draws as nothing (blanks and spacing between its delimiters) is nothing.
    spacing = r"(?:\s|&nbsp;|\\,|\\quad|\\phantom\{x\})*"
    drawn = re.sub(rf"\\\({spacing}\\\)|\\\[{spacing}\\\]", "", markup)
    text = html_module.unescape(re.sub(r"<[^>]*>", "", drawn))
    fillers = "\u034f\u115f\u1160\u17b4\u17b5\u180e\u2800\u3164\uffa0"
    unseen = [
        c != "\u06dd" and (c.isspace() or c in fillers or unicodedata.category(c) in ("Cf", "Mn", "Me", "Cc"))
        for c in text
    ]
    assert _shows_something(markup) == (not all(unseen) or '<img src="a.png">' in drawn)


# Pieces of a question or answer: Markdown, formulas (some unsafe, unbalanced or drawn as
# nothing), HTML a page may carry, sound tags, images (found or not), links, code and blanks.
_CARD_PIECES = [
    "x", " ", "\n", "**b**", "`c`", "- i", "1. i", "# h", "<br>", "[x](https://a.b)", "[y](javascript:1)",
    "\\(x^2\\)", "\\[\\frac{a}{b}\\]", "\\(\\href{x}{y}\\)", "\\(", "\\]", "\\(\\quad\\)", "$x$", "{", "}",
    "<script>alert(1)</script>", "<b>", "&nbsp;", "&#31;", "[sound:a.mp3]", "![p](pic.png)",
    "![m](missing.png)", "<img src='pic.png'>", "<!-- c -->", "\u200b", "é", "Ã©", "\ue000", "[", "]",
]  # fmt: skip
_card_text = st.lists(st.sampled_from(_CARD_PIECES), max_size=6).map("".join)


@given(_card_text, _card_text, st.sampled_from(["f.md", "a\\(b.txt", "[sound:x].txt"]))
@example("\\(\\quad\\)", "x", "f.md")  # a question drawn as nothing
@example("![m](missing.png)", "x", "f.md")  # a question of an image left out alone
def test_a_question_and_answer_alone_render_as_any_card_does(tmp_path_factory, question, answer, origin):
    # The shortcut for a basic card of a question and an answer gives the fields and problems,
    # in order, that the way every card takes gives.
    from deckbuild.models import make_card
    from deckbuild.render import _any_fields, note_fields

    root = tmp_path_factory.getbasetemp() / "question-and-answer"
    root.mkdir(exist_ok=True)
    (root / "pic.png").write_bytes(b"\x89PNG a picture")
    data = {"id": "11111111-1111-4111-8111-111111111111", "kind": "basic", "deck": "D", "source": "f.md:3"}
    try:
        card = make_card({**data, "question": question, "answer": answer})
    except ValueError:
        return  # blank or unsafe: never rendered
    seen = []
    for render in (note_fields, _any_fields):
        report, where = Report(), Where("f.md", 3, root, root)
        fields = render(card, origin, report, where)
        seen.append((fields, [str(p) for p in report.problems], where.media, where.missing, where.linked))
    assert seen[0] == seen[1]


# What text copied from a page may hold that Markdown or HTML would take for markup.
_PAGE_PIECES = [
    "x", "word", " ", "\t", "\n", "\n\n", "*", "**", "_", "__", "#", "# ", "> ", "- ", "+ ", "1. ", "---",
    "===", "\\", "\\d", "\\.", "<b>", "</b>", "<script>alert(1)</script>", "&", "&amp;", "&#31;", "[x](y)",
    "![i](p.png)", "`", "``", "|", "~", "!", "[sound:a.mp3]", "<!--", "-->", "    ", "é", "2017.",
]  # fmt: skip


@given(st.lists(st.sampled_from(_PAGE_PIECES), max_size=10).map("".join), st.booleans())
@example("1*1+0*0=1, 1*(-10)+0*1=-10", False)  # seed 001's worked solution
@example("The header line\n---\nis what separates it.", False)  # no heading made of a line
def test_page_text_shows_every_character_as_copied(text, inline):
    # A quiz page's text was shown as text: each character of it shows on the card as copied,
    # line by line, with blank lines parting paragraphs. Nothing becomes markup or a tag.
    import html as html_module
    import re

    report = Report()
    markup = render_text(text, Where("p.txt", 1), report, inline=inline, literal=True)
    assert re.fullmatch(r"(?:<p>|</p>|<br>|[^<])*", markup), markup
    paragraphs = [
        "\n".join(line.strip(" \t") for line in paragraph.split("\n"))
        for paragraph in re.split(r"\n[ \t]*\n\s*", text.strip("\n"))
    ]
    expected = "" if not text.strip() else "\n\n".join(paragraphs)
    shown = markup.replace("<br>\n", "\n").replace("</p>\n<p>", "\n\n").replace("<p>", "").replace("</p>", "")
    if inline:
        expected = expected.replace("\n\n", "\n")
    assert html_module.unescape(shown) == expected
    if "\\" not in text:
        assert report.problems == []


_FENCE_PIECES = ["```", "````", "~~~", "~~~~", "```py", "~~~python extra", "\n", "\n", " "]


@given(st.lists(st.sampled_from(_PAGE_PIECES + _FENCE_PIECES), max_size=16).map("".join))
@example('```\n<span style="color:red">red</span> **strong** ![d](p.png) <h1>Big</h1>\n````')  # ends unlike
@example("~~~~\n<u>x</u> [a](https://example.org)\n~~~")
def test_page_text_with_fences_of_any_kind_gives_no_tag_but_paragraphs_breaks_and_highlighted_code(text):
    # A fence that closes as it opens is code, highlighted; any other is text as copied: never
    # Markdown or HTML of the page's reaching the card.
    import re

    markup = render_text(text, Where("p.txt", 1), Report(), literal=True)
    tags = set(re.findall(r"</?([a-zA-Z0-9]+)", markup))
    assert tags <= {"p", "br", "div", "pre", "code", "span"}, markup
    assert not re.search(r"<[^>]*\s(?:href|src|on\w+)\s*=", markup), markup
    assert all(attribute.startswith("style=") for attribute in re.findall(r"<\w+\s+([^>]*)>", markup)), markup
