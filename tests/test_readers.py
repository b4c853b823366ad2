"""The reader registry: every reader declares its format in its own file, read without importing it."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap

from hypothesis import given
from hypothesis import strategies as st

from conftest import DATA, seed
from deckbuild.readers import describe_formats, detect, formats, scan
from deckbuild.sources import detect as detect_name

QUIZ_PAGES = [
    p.read_text(encoding="utf-8").splitlines()
    for p in [seed(n) for n in ("000", "001", "002", "004")] + sorted((DATA / "quizpage").glob("*.txt"))
]


def test_every_reader_declares_a_format_and_its_declaration_is_the_modules_own():
    names = [f.name for f in formats()]
    assert names == ["semicolon", "quizpage"]  # asked in their declared order
    for fmt in formats():
        module = importlib.import_module(fmt.module)
        assert callable(module.read)
        # What the registry read from the text is exactly what the module holds.
        assert module.DETECT["what"] == fmt.what
        assert module.DETECT["order"] == fmt.order
    assert "pycode" not in names  # a helper module declares nothing


def test_detection_by_content_through_the_registry():
    assert detect(["", "Question;Answer;UUID", "q;a;u"]).name == "semicolon"
    assert detect(["  Practice  ", "1. What?"]).name == "quizpage"
    assert detect(["Challenge - 3 Problems"]).name == "quizpage"
    assert detect(["Practice makes perfect"]) is None
    # What a browser copies around a heading that shows nothing is not part of it.
    assert detect(["\u200b", "\ufeffPractice\u200b", "1. What?"]).name == "quizpage"
    assert detect_name(["a;b;c"]) == "semicolon"
    assert describe_formats() == "a Question;Answer;UUID file nor a quiz page"


UUID = "d33e3f45-53d6-4d4d-860c-b337569cd772"


def test_two_semicolons_in_a_first_line_yield_to_a_quiz_pages_marks_but_a_header_or_uuid_does_not():
    page = ["Hashing; salts; peppers", "What is a salt?", "Random input.", "Click to reveal answer"]
    assert detect(page).name == "quizpage"
    assert detect(["a;b;c", "d;e;f"]).name == "semicolon"
    # Words a page prints, inside a row rather than a line of their own, are no page's mark.
    assert (
        detect(["What does 'Attempts: 2' mean?;Two tries;", "Is ✓ Correct a verdict?;Yes;"]).name
        == "semicolon"
    )
    # A header, in any order of its columns, or a UUID for a field makes the file sure.
    assert detect(["Answer;Question;UUID", "Click to reveal answer"]).name == "semicolon"
    assert detect([f"What is a salt?;Random input;{UUID}", "Practice"]).name == "semicolon"
    assert detect([f'"What; is a salt?";"Random; input";"{UUID}"', "Practice"]).name == "semicolon"


@given(
    st.sampled_from(QUIZ_PAGES), st.lists(st.text(alphabet="ab ;,.?!", max_size=12), min_size=3, max_size=6)
)
def test_a_quiz_page_is_a_quiz_page_whatever_its_first_line_holds(page, pieces):
    first = ";".join(pieces)
    assert detect([first, *page]).name == "quizpage"


def test_a_new_format_is_one_new_file(tmp_path, monkeypatch):
    package = tmp_path / "morereaders"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helper.py").write_text("X = 1\n")
    (package / "pipes.py").write_text(
        textwrap.dedent(
            """
            from deckbuild.readers import RawCard

            DETECT = {
                "what": "a pipe table",
                "order": 5,
                "first_line": r"^front\\s*\\|",
            }


            def read(path, lines, report):
                return [RawCard(n + 1, "basic", dict(zip(("question", "answer"), l.split("|"))))
                        for n, l in enumerate(lines[1:], 1) if l]
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    found = scan(package, "morereaders")
    assert [(f.name, f.module, f.what) for f in found] == [("pipes", "morereaders.pipes", "a pipe table")]
    assert found[0].recognises(["Front | Back", "q | a"], "Front | Back")
    module = importlib.import_module(found[0].module)
    assert module.read("x", ["Front|Back", "q|a"], None)[0].data == {"question": "q", "answer": "a"}


def test_a_tree_of_semicolon_files_never_imports_the_page_reader(tmp_path):
    decks = tmp_path / "decks" / "Deck"
    decks.mkdir(parents=True)
    (decks / "cards.txt").write_text("Question;Answer;UUID\nq;a;d33e3f45-53d6-4d4d-860c-b337569cd772\n")
    code = (
        "import sys\nfrom deckbuild.build import check\nfrom pathlib import Path\n"
        f"check([Path({str(tmp_path / 'decks')!r})], use_cache=False)\n"
        "print(sorted(m for m in sys.modules if m.startswith('deckbuild.readers')))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip().splitlines()[-1] == "['deckbuild.readers', 'deckbuild.readers.semicolon']"


_MARKS = [
    "Recall & Review", "Click to reveal answer", "✗ Incorrect", "✓ Correct", "Incorrect", "correct!",
    "You got /4 concepts.", "You got 2 / 4 concepts", "Attempts:", "Challenge - 3 Problems",
    "Challenge-1 Problem", "Practice", "beginner1:30remaining", "expert 12:00 remaining",
]  # fmt: skip


@given(st.sampled_from(_MARKS), st.lists(st.booleans(), min_size=40, max_size=40))
def test_a_page_the_reader_reads_by_a_mark_in_any_case_is_recognised_by_it(mark, upper):
    # Detection finds a page by the same marks the reader reads it by: in any case, as spaced.
    from deckbuild.readers import quizpage

    varied = "".join(c.upper() if up else c.lower() for c, up in zip(mark, upper * 2, strict=False))
    marks = [
        quizpage._REVEAL_RE, quizpage._VERDICT_RE, quizpage._CONCEPTS_RE, quizpage._PAGE_START_RE,
        quizpage._PRACTICE_RE, quizpage._CHALLENGE_RE, quizpage._TIMER_RE, quizpage._ATTEMPTS_RE,
    ]  # fmt: skip
    assert any(regex.match(varied) for regex in marks), varied
    found = detect(["Some text", varied, "more text"])
    assert found is not None and found.name == "quizpage", varied
