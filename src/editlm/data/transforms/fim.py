"""A code corpus as fill-in-the-middle training text (Bavarian et al. 2022).

With probability ``rate`` a document is cut at two random character positions
(:func:`editlm.edits.fim.split_fim`) and written as PSM or, with probability ``spm_rate``, as SPM;
otherwise it stays plain left-to-right text. The paper found a FIM rate of 0.5-0.9 costs nothing
on left-to-right ability; 0.5 is the default, and SPM half of the time (StarCoder's choice).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from editlm.edits.diff_model import FormatError
from editlm.edits.fim import SENTINELS, split_fim


@dataclass(frozen=True)
class FimJob:
    rate: float = 0.5
    spm_rate: float = 0.5
    seed: int = 0
    max_chars: int = 1_000_000
    decontaminate: bool = True
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not (0 <= self.rate <= 1 and 0 <= self.spm_rate <= 1):
            raise ValueError("rate and spm_rate must be in [0, 1]")


def fim_row(document: str, rng: random.Random, rate: float = 0.5, spm_rate: float = 0.5) -> dict:
    """``{"text", "fim", "order"}`` for one document; raises FormatError if it holds a sentinel."""
    if any(token in document for token in SENTINELS):
        raise FormatError("the document contains a FIM sentinel token")
    if rng.random() >= rate:
        return {"text": document, "fim": False, "order": None}
    order = "spm" if rng.random() < spm_rate else "psm"
    return {"text": split_fim(document, rng).text(order), "fim": True, "order": order}


def fim_rows(key, document, job: FimJob) -> tuple[list[dict], str | None]:
    """The row of one document, or ``([], reason)``; deterministic in (seed, key)."""
    if not isinstance(document, str) or not document:
        return [], "empty or not text"
    if len(document) > job.max_chars:
        return [], "too large"
    if job.decontaminate:
        from editlm.data.transforms.contamination import default_index

        if default_index(job.exclude).is_contaminated(document):
            return [], "benchmark program (contamination)"
    try:
        row = fim_row(document, random.Random(f"{job.seed}:{key}"), job.rate, job.spm_rate)
    except FormatError:
        return [], "contains a FIM sentinel"
    return [{"id": str(key), **row}], None


def fim_worker(item: tuple) -> tuple:
    """Top-level for process pools: ``(key, document, job)`` -> ``(key, rows, skip reason)``."""
    key, document, job = item
    rows, reason = fim_rows(key, document, job)
    return key, rows, reason
