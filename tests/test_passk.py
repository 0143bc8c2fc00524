"""pass@k against brute-force enumeration, exact rationals for large n, and the table rule."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from editlm.evaluate.passk import counts_from_results, pass_at_k, pass_at_k_table


def brute_force(n: int, c: int, k: int) -> float:
    """Fraction of all k-subsets of n samples (the first c correct) holding a correct one."""
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(i < c for i in subset) for subset in subsets) / len(subsets)


@given(st.integers(1, 9).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_matches_enumeration(nck):
    n, c, k = nck
    assert pass_at_k(n, c, k) == pytest.approx(brute_force(n, c, k), abs=1e-12)


@pytest.mark.parametrize(
    ("n", "c", "k"), [(10000, 1, 1), (10000, 37, 100), (5000, 4990, 5), (20000, 3, 1000)]
)
def test_stable_for_large_n(n, c, k):
    exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
    assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-9, abs=1e-12)


def test_edges_and_errors():
    assert pass_at_k(5, 0, 3) == 0.0
    assert pass_at_k(5, 3, 3) == 1.0  # n - c < k
    assert pass_at_k(10, 1, 1) == pytest.approx(0.1)
    for bad in [(5, 6, 1), (5, -1, 1), (5, 2, 0), (5, 2, 6)]:
        with pytest.raises(ValueError):
            pass_at_k(*bad)


def test_table_reports_only_ks_every_problem_supports():
    counts = {"a": (10, 5), "b": (3, 0)}
    table = pass_at_k_table(counts, ks=(1, 3, 5, 10))
    assert set(table) == {"pass@1", "pass@3"}
    assert table["pass@1"] == pytest.approx((0.5 + 0.0) / 2)
    assert pass_at_k_table({}, ks=(1,)) == {}


def test_counts_from_results():
    rows = [
        {"task_id": "a", "passed": True},
        {"task_id": "a", "passed": False},
        {"task_id": "b", "passed": False},
    ]
    assert counts_from_results(rows) == {"a": (2, 1), "b": (1, 0)}
