"""Benchmark whole processes side by side: bare genanki (the floor) against deckbuild builds.

    python benchmarks/bench.py [--sizes 1000 10000 100000] [--repeat 3]

For each size it writes a synthetic deck shaped like the seeds (LaTeX, `<br>` lists, code
spans), then times, as separate processes: the floor, the plainest genanki script a user would
compare with (benchmarks/floor.py: a Basic note type with Front and Back, the same rows with
fields as they are, fixed GUIDs, `write_to_file`); the same script on deckbuild's own note type
(`floor-own`, the floor this bench once had, shown for comparison); deckbuild cold (empty
cache); deckbuild after editing one card; deckbuild with nothing changed. It prints medians,
ratios to the plain floor, each process's peak memory, and time per card across sizes.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from synth import HEADER, row  # noqa: E402

PYTHON = sys.executable
# A source file may hold at most 10 MiB: bigger decks are split into files of this many cards.
PER_FILE = 10_000
# Issue #16: against the plain Basic floor, at 10,000 cards.
TARGETS = {"cold": 2.0, "edit": 1.0, "unchanged": 0.3}


def run(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Run one process; return its wall time in seconds and its peak memory in MiB."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{' '.join(args)} failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    return elapsed, usage.ru_maxrss / 1024


def write_decks(folder: Path, size: int) -> list[Path]:
    """Write `size` seed-shaped cards into files of at most PER_FILE cards each."""
    rnd = random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for start in range(0, size, PER_FILE):
        path = folder / f"cards-{start // PER_FILE:03d}.txt"
        rows = "".join(row(n, rnd) for n in range(start, min(size, start + PER_FILE)))
        path.write_text(HEADER + rows, encoding="utf-8")
        files.append(path)
    return files


def edit_one(deck: Path, n: int) -> None:
    lines = deck.read_text(encoding="utf-8").split("\n")
    row = 1 + len(lines) // 2
    question, rest = lines[row].split(";", 1)
    lines[row] = f"{question.split(' (edit')[0]} (edit {n});{rest}"
    deck.write_text("\n".join(lines), encoding="utf-8")


def measure(size: int, repeat: int) -> dict[str, tuple[float, float]]:
    with tempfile.TemporaryDirectory(prefix="deckbuild-bench-") as tmp:
        root = Path(tmp)
        files = write_decks(root / "decks" / "Synth", size)
        cache = root / "cache"
        env = {**os.environ, "DECKBUILD_CACHE_DIR": str(cache)}
        # Measured as installed: with bytecode cached, as genanki's is in site-packages.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        build = [PYTHON, "-m", "deckbuild", "build", "decks", "-o", "dist"]
        floor = [PYTHON, str(HERE / "floor.py"), str(root / "floor.apkg"), *map(str, files)]
        own = [*floor, "--deckbuild-notetype"]
        results: dict[str, list[tuple[float, float]]] = {
            k: [] for k in ("floor", "floor-own", "cold", "edit", "unchanged")
        }
        run(build, env, root)  # writes the lock, so that every run below starts from the same state
        for n in range(repeat):
            results["floor"].append(run(floor, env, root))
            results["floor-own"].append(run(own, env, root))
            shutil.rmtree(cache, ignore_errors=True)
            shutil.rmtree(root / "dist", ignore_errors=True)
            results["cold"].append(run(build, env, root))
            edit_one(files[len(files) // 2], n)
            results["edit"].append(run(build, env, root))
            results["unchanged"].append(run(build, env, root))
        return {k: (statistics.median(t for t, _ in v), max(m for _, m in v)) for k, v in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (medians)")
    args = parser.parse_args()
    print(f"{'cards':>7} {'what':<10} {'median s':>9} {'× floor':>8} {'peak MiB':>9}")
    per_card: dict[str, list[tuple[int, float]]] = {}
    for size in args.sizes:
        repeat = args.repeat if size <= 10_000 else 1
        found = measure(size, repeat)
        floor = found["floor"][0]
        for what, (seconds, peak) in found.items():
            ratio = seconds / floor
            target = TARGETS.get(what)
            mark = "" if target is None else (" ok" if ratio <= target else f" (target {target}×)")
            print(f"{size:>7} {what:<10} {seconds:>9.2f} {ratio:>8.2f} {peak:>9.0f}{mark}")
            per_card.setdefault(what, []).append((size, seconds / size * 1e6))
        sys.stdout.flush()
    print("\nmicroseconds per card (flat or falling means time grows no worse than linearly):")
    for what, points in per_card.items():
        print(f"  {what:<10} " + "  ".join(f"{size}: {us:.0f}" for size, us in points))


if __name__ == "__main__":
    main()
