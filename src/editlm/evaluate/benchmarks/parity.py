"""4-Parity (OpenELM, REFERENCE.md section 3): repair a parity function with 1 to 5 bugs.

Bugs are cumulative: bugs 1-4 rename ``b1``..``b4`` inside ``sum([...])`` to ``c1``..``c4``, bug 5
changes ``% 2`` to ``% 3``. A repair passes when it is right on all 16 inputs in {0,1}^4.
"""

from __future__ import annotations

from editlm.evaluate.benchmarks import Benchmark, Problem

CORRECT = (
    "def parity(b1,b2,b3,b4):\n"
    '    """Return binary parity of a sequence of input bits. Return 0 for even parity, 1 for odd parity."""\n'
    "    bit_sum = sum([b1,b2,b3,b4])\n"
    "    return bit_sum % 2"
)
# Every input, checked against arithmetic rather than against a copy of the reference function.
TEST = """\
def check(candidate):
    for n in range(16):
        bits = [(n >> 3) & 1, (n >> 2) & 1, (n >> 1) & 1, n & 1]
        got = candidate(*bits)
        assert got == sum(bits) % 2, f"parity{tuple(bits)} returned {got!r}"
"""
MAX_BUGS = 5


def buggy(n_bugs: int) -> str:
    """The parity function with the first ``n_bugs`` bugs (OpenELM's ``mutate_code``); no final newline."""
    if not 0 <= n_bugs <= MAX_BUGS:
        raise ValueError(f"n_bugs must be in 0..{MAX_BUGS}")
    names = ["c" if i < n_bugs else "b" for i in range(4)]
    modulus = 3 if n_bugs >= 5 else 2
    return (
        "def parity(b1,b2,b3,b4):\n"
        '    """Return binary parity of a sequence of input bits. Return 0 for even parity, 1 for odd parity."""\n'
        f"    bit_sum = sum([{names[0]}1,{names[1]}2,{names[2]}3,{names[3]}4])\n"
        f"    return bit_sum % {modulus}"
    )


class Parity(Benchmark):
    name = "parity"
    description = "4-Parity: fix 1-5 cumulative bugs in a 4-bit parity function"
    timeout = 3.0
    # OpenELM (REFERENCE.md section 3): % of samples fully correct, mean over 1-5 bugs; diff models
    # prompted with `<MSG> Fixed bugs`, CodeGen with the buggy code and "# Fixed bugs".
    published = {
        "Diff-350M (OpenELM)": {"pass rate": 0.045},
        "Diff-2B (OpenELM)": {"pass rate": 0.142},
        "Diff-6B (OpenELM)": {"pass rate": 0.496},
        "CodeGen-350M (prompted)": {"pass rate": 0.0175},
        "CodeGen-2B (prompted)": {"pass rate": 0.158},
        "CodeGen-6B (prompted)": {"pass rate": 0.596},
    }

    def load_problems(self) -> list[Problem]:
        problems = []
        for n in range(1, MAX_BUGS + 1):
            code = buggy(n)
            problems.append(
                Problem(
                    task_id=f"Parity/{n}",
                    # the plain-model prompt of OpenELM: buggy code, then "# Fixed bugs" and "def"
                    prompt=f"# A buggy implementation\n#!/usr/bin/python3\n{code}\n# Fixed bugs\ndef",
                    test=TEST,
                    entry_point="parity",
                    source=code,
                    filename="parity.py",
                    message="Fixed bugs",
                    instruction=f"Fix the bugs in this function:\n{code}",
                    edit_source=code,
                    canonical=CORRECT,
                    group=f"bugs={n}",
                    meta={"bugs": n},
                )
            )
        return problems
