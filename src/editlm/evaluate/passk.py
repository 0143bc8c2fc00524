"""pass@k, the unbiased estimator of Chen et al. (2021), and the tables built from it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

DEFAULT_KS = (1, 5, 10, 20, 50, 100)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of ``k`` samples drawn without replacement from ``n`` (``c``
    correct) is correct: ``1 - C(n-c, k) / C(n, k)``, computed as a product so that it stays exact
    in floating point for large ``n`` (binomials of n = 10^4 overflow)."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def pass_at_k_table(
    counts: Mapping[str, tuple[int, int]], ks: Iterable[int] = DEFAULT_KS
) -> dict[str, float]:
    """Mean pass@k over problems, ``counts[task] = (n, c)``. A k is reported only where every
    problem has ``n >= k`` (a mean over a subset would not be pass@k of the benchmark)."""
    if not counts:
        return {}
    n_min = min(n for n, _ in counts.values())
    table = {}
    for k in sorted(set(ks)):
        if k <= n_min:
            table[f"pass@{k}"] = sum(pass_at_k(n, c, k) for n, c in counts.values()) / len(counts)
    return table


def counts_from_results(rows: Sequence[Mapping]) -> dict[str, tuple[int, int]]:
    """``{task_id: (n, c)}`` from result rows with ``task_id`` and ``passed``."""
    counts: dict[str, list[int]] = {}
    for row in rows:
        entry = counts.setdefault(row["task_id"], [0, 0])
        entry[0] += 1
        entry[1] += bool(row["passed"])
    return {task: (n, c) for task, (n, c) in counts.items()}
