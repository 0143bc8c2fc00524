"""Resumable stages with wall and CPU time: the skeleton every quickstart task runs on.

A stage is skipped when its output already exists, so an interrupted run resumes where it stopped.
Each finished stage's wall time and CPU time (this process and its children: sandbox workers,
tokenizer threads) is kept in ``timings.json``, which survives resumes, so a report can say what
each stage costs and how busy the machine was (CPU seconds / wall seconds).
"""

from __future__ import annotations

import json
import os
import resource
import time
from collections.abc import Callable
from pathlib import Path

TIMINGS_FILE = "timings.json"


def cpu_seconds() -> float:
    """User + system CPU time of this process and of its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class Stages:
    """Runs named stages into ``out``; ``say`` gets one plain line per event (never a progress bar)."""

    def __init__(self, out: Path, say: Callable[[str], None] = print):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.say = say
        path = self.out / TIMINGS_FILE
        self.timings: dict[str, dict] = json.loads(path.read_text()) if path.exists() else {}

    def run(self, name: str, done: Path, work: Callable[[], object]) -> None:
        if done.exists():
            self.say(f"[skip] {name}: {done} exists")
            return
        self.say(f"[....] {name}")
        wall0, cpu0 = time.perf_counter(), cpu_seconds()
        work()
        wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
        self.timings[name] = {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}
        self._save()
        self.say(f"[done] {name} in {wall:.1f}s wall, {cpu:.1f}s CPU")

    def _save(self) -> None:
        path = self.out / TIMINGS_FILE
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.timings, indent=2) + "\n")
        os.replace(tmp, path)


def write_json(path: Path, value) -> None:
    """Atomic JSON write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value, indent=2, default=str) + "\n")
    os.replace(tmp, path)
