"""How well patchers apply diffs damaged the way model output is: editlm, GNU patch, whatthepatch.

Corpus: real files of the Python standard library with random edits; each diff is made exactly and
then damaged in one way (or all at once): line numbers shifted, wrong ``@@`` counts, no ``---``/``+++``
headers, whitespace drift in context lines, ``@@ @@`` without numbers. For each patcher: the share
applied correctly, the share applied WRONGLY without an error (the dangerous case), the share refused,
and diffs per second. Hunks whose context is not unique in the file are left out, so that "correct"
is well defined.

    python benchmarks/diff_apply.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import Counter
from pathlib import Path

from editlm.edits.diff import DiffError, apply_diff, make_diff, parse_diff, split_lines

DAMAGES = ("clean", "shifted", "wrong_counts", "no_headers", "whitespace", "no_numbers", "all")


def random_edit(text: str, rng: random.Random) -> str:
    lines = split_lines(text)
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(lines) + 1)
        kind = rng.choice(["delete", "insert", "replace"])
        span = rng.randint(1, 4)
        if kind == "delete":
            del lines[at : at + span]
        elif kind == "insert":
            lines[at:at] = [f"    new_line_{rng.randrange(10**9)}()\n" for _ in range(span)]
        else:
            lines[at : at + span] = [f"    changed_{rng.randrange(10**9)} = 1\n"]
    return "".join(lines)


def damage(diff: str, kind: str, rng: random.Random) -> str:
    kinds = DAMAGES[1:-1] if kind == "all" else (kind,)
    out = []
    shift = rng.choice([-1, 1]) * rng.randint(1, 50)
    for row in split_lines(diff):
        if row.startswith(("--- ", "+++ ")) and "no_headers" in kinds:
            continue
        if row.startswith("@@"):
            if "shifted" in kinds:
                row = re.sub(r"([-+])(\d+)", lambda m: f"{m.group(1)}{max(1, int(m.group(2)) + shift)}", row)
            if "wrong_counts" in kinds:
                row = re.sub(r",(\d+)", lambda m: f",{int(m.group(1)) + rng.choice([-2, -1, 1, 2, 3])}", row)
            if "no_numbers" in kinds:
                row = "@@ @@\n"
        elif row.startswith(" ") and "whitespace" in kinds and rng.random() < 0.5:
            row = row.rstrip("\n") + rng.choice(["  ", "\t", " "]) + "\n"
        out.append(row)
    return "".join(out)


def build_corpus(count: int, seed: int) -> list[tuple[str, str, str, str]]:
    rng = random.Random(seed)
    root = Path(sysconfig.get_paths()["stdlib"])
    paths = sorted(
        p for p in root.rglob("*.py") if 1_000 < p.stat().st_size < 80_000 and "test" not in p.parts
    )
    cases = []
    while len(cases) < count:
        before = rng.choice(paths).read_text(encoding="utf-8", errors="replace")
        after = random_edit(before, rng)
        if after == before:
            continue
        diff = make_diff(before, after, 3, fromfile="a/file.py", tofile="b/file.py")
        lines = split_lines(before)
        unique = all(
            sum(lines[i : i + len(h.old_lines)] == h.old_lines for i in range(len(lines))) == 1
            for h in parse_diff(diff)
            if h.old_lines
        )
        if not unique:
            continue
        kind = DAMAGES[len(cases) % len(DAMAGES)]
        cases.append((kind, before, after, damage(diff, kind, rng)))
    return cases


def run_editlm(before: str, diff: str) -> str:
    return apply_diff(before, diff)


def run_whatthepatch(before: str, diff: str) -> str:
    import whatthepatch

    patches = list(whatthepatch.parse_patch(diff))
    if not patches:
        raise ValueError("no patch found")
    lines = before.split("\n")
    for patch in patches:
        lines = whatthepatch.apply_diff(patch, lines)
    return "\n".join(lines)


def run_gnu_patch(before: str, diff: str, workdir: Path) -> str:
    source, out = workdir / "file.py", workdir / "out.py"
    source.write_text(before)
    out.unlink(missing_ok=True)
    proc = subprocess.run(
        ["patch", "-s", "-f", "--no-backup-if-mismatch", "-r", "-", "-o", str(out), str(source)],
        input=diff.encode(),
        capture_output=True,
        timeout=30,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.decode(errors="replace")[:200])
    return out.read_text()


def measure(name: str, fn, cases) -> dict:
    outcome: Counter[tuple[str, str]] = Counter()
    start = time.perf_counter()
    for kind, before, after, diff in cases:
        try:
            result = fn(before, diff)
        except (DiffError, Exception):  # peers raise their own types; any exception is a refusal
            outcome[kind, "refused"] += 1
            continue
        outcome[kind, "correct" if result == after else "wrong"] += 1
    seconds = time.perf_counter() - start
    total = len(cases)
    return {
        "name": name,
        "correct": sum(v for (k, o), v in outcome.items() if o == "correct") / total,
        "wrong": sum(v for (k, o), v in outcome.items() if o == "wrong") / total,
        "refused": sum(v for (k, o), v in outcome.items() if o == "refused") / total,
        "diffs_per_s": total / seconds,
        "by_damage": {
            kind: {o: outcome[kind, o] for o in ("correct", "wrong", "refused")} for kind in DAMAGES
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="70 diffs instead of 700")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cases = build_corpus(70 if args.quick else 700, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        patchers = [run_editlm, lambda b, d: run_gnu_patch(b, d, Path(tmp)), run_whatthepatch]
        names = ["editlm", "GNU patch", "whatthepatch"]
        results = [measure(name, fn, cases) for name, fn in zip(names, patchers, strict=True)]
        # Like for like: speed on the diffs that every patcher applies correctly (the undamaged ones).
        common = [c for c in cases if c[0] in ("clean", "no_headers")]
        common_speed = {
            n: measure(n, fn, common)["diffs_per_s"] for n, fn in zip(names, patchers, strict=True)
        }
    print(f"{len(cases)} diffs of stdlib files, damaged as model output ({', '.join(DAMAGES)})\n")
    print(f"{'patcher':<14}{'correct':>9}{'WRONG':>9}{'refused':>9}{'diffs/s':>10}")
    for r in results:
        print(
            f"{r['name']:<14}{r['correct']:>9.1%}{r['wrong']:>9.1%}{r['refused']:>9.1%}{r['diffs_per_s']:>10.0f}"
        )
    print("\ncorrect / wrong / refused by damage:")
    print(f"{'damage':<14}" + "".join(f"{r['name']:>16}" for r in results))
    for kind in DAMAGES:
        cells = "".join(
            f"{'/'.join(str(r['by_damage'][kind][o]) for o in ('correct', 'wrong', 'refused')):>16}"
            for r in results
        )
        print(f"{kind:<14}{cells}")
    editlm, gnu, wtp = results
    print(
        f"\nspeed on the {len(common)} diffs all three apply: "
        + ", ".join(f"{k} {v:.0f}/s" for k, v in common_speed.items())
    )
    summary = {
        "benchmark": "diff_apply",
        "diffs": len(cases),
        **{
            f"{r['name'].replace(' ', '_').lower()}_{k}": round(r[k], 4)
            for r in results
            for k in ("correct", "wrong")
        },
        "ratio_correct_vs_gnu_patch": round(editlm["correct"] / max(gnu["correct"], 1e-9), 3),
        "speed_ratio_vs_whatthepatch": round(editlm["diffs_per_s"] / wtp["diffs_per_s"], 3),
        "speed_ratio_vs_gnu_patch": round(editlm["diffs_per_s"] / gnu["diffs_per_s"], 3),
        "undamaged_speed_ratio_vs_whatthepatch": round(
            common_speed["editlm"] / common_speed["whatthepatch"], 3
        ),
    }
    sys.stdout.flush()
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
