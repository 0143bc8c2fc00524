"""Synthetic bug injection: editlm (libcst, only the mutated tokens change) against the common
parse-and-reprint approach (``ast`` + ``ast.unparse``), one wrong-operator bug at a time.

On standard-library modules: lines changed per bug (1 means only the mutated line), the share of
one-line diffs, the share of bugs that keep every comment, and bugs per second. A bug-fix sample
whose "fix" rewrites the whole file teaches a diff model nothing about fixing bugs.

    python benchmarks/bug_injection.py [--quick]
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import statistics
import sysconfig
import time
from pathlib import Path

from editlm.data.bugs.inject import Program
from editlm.edits.diff import make_diff

OPERATORS = [ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod]
BUGS_PER_FILE = 6


def lines_changed(before: str, after: str) -> int:
    return sum(
        line.startswith("-") for line in make_diff(before, after, context=0, headers=False).splitlines()
    )


def editlm_bugs(source: str, rng: random.Random) -> list[str]:
    program = Program(source, ["wrong-operator"])
    bugs = (program.inject("wrong-operator", rng) for _ in range(BUGS_PER_FILE))
    return [bug.buggy for bug in bugs if bug]


def reprint_bugs(source: str, rng: random.Random) -> list[str]:
    out = []
    for _ in range(BUGS_PER_FILE):
        tree = ast.parse(source)
        sites = [n for n in ast.walk(tree) if isinstance(n, ast.BinOp) and type(n.op) in OPERATORS]
        if not sites:
            return out
        node = rng.choice(sites)
        node.op = rng.choice([op for op in OPERATORS if op is not type(node.op)])()
        out.append(ast.unparse(tree))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 files instead of 40")
    args = parser.parse_args()
    root = Path(sysconfig.get_paths()["stdlib"])
    files = [p for p in sorted(root.glob("*.py")) if p.stat().st_size < 30_000][: 10 if args.quick else 40]
    injectors = {"editlm": editlm_bugs, "ast.unparse": reprint_bugs}
    figures = {}
    for name, inject in injectors.items():
        changed, kept, seconds = [], 0, 0.0
        for path in files:
            source = path.read_text(encoding="utf-8", errors="replace")
            start = time.perf_counter()
            bugs = inject(source, random.Random(path.name))
            seconds += time.perf_counter() - start
            changed += [lines_changed(source, bug) for bug in bugs]
            kept += sum(bug.count("#") == source.count("#") for bug in bugs)
        figures[name] = {
            "bugs": len(changed),
            "median_lines_changed": statistics.median(changed),
            "one_line_share": round(sum(c == 1 for c in changed) / len(changed), 3),
            "comments_kept_share": round(kept / len(changed), 3),
            "bugs_per_s": round(len(changed) / seconds, 1),
        }
    print(f"{len(files)} standard-library modules, {BUGS_PER_FILE} wrong-operator bugs each\n")
    print(
        f"{'injector':<12}{'bugs':>6}{'median lines changed':>22}{'one-line diffs':>16}{'comments kept':>15}{'bugs/s':>9}"
    )
    for name, f in figures.items():
        print(f"{name:<12}{f['bugs']:>6}{f['median_lines_changed']:>22}{f['one_line_share']:>16.1%}"
              f"{f['comments_kept_share']:>15.1%}{f['bugs_per_s']:>9.1f}")  # fmt: skip
    speed = figures["editlm"]["bugs_per_s"] / figures["ast.unparse"]["bugs_per_s"]
    print(
        json.dumps(
            {"benchmark": "bug_injection", "files": len(files), **figures, "speed_ratio": round(speed, 3)}
        )
    )


if __name__ == "__main__":
    main()
