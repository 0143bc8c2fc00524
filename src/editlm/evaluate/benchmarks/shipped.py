"""Benchmark data shipped inside the package, read only after its sha256 pin is checked.

``assets/`` beside this module holds three public, MIT-licensed edit benchmarks copied unchanged
from upstream with their LICENSE files (``assets/SOURCES.md`` names the repository and commit of
each). A copy that differs from the pinned one (a file changed, added or removed) raises
:class:`AssetError` instead of silently scoring other data.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib import resources

from editlm.evaluate.benchmarks import Benchmark, BenchmarkError, Problem

# sha256 over the sorted "path\0sha256(file)\n" lines of each folder (see :func:`digest`).
PINS = {
    "humanevalfix": "5c007f10b4b928b44c3d427d0deff78c5535ecc690df2cf9e05affbc4d6ec421",
    "quixbugs": "bf66db4c01a981637b5103d85a6982e7c42447d9607217cc07ace3249d80b763",
    "editeval": "cc074282fa712443b701dea29c0ed1e9829bcd69a946966e1a846ed186b2acb6",
}
EXCLUSIONS_FILE = "exclusions.json"


class AssetError(BenchmarkError):
    """Shipped benchmark data that is missing or differs from its pin."""


def _root():
    return resources.files("editlm.evaluate.benchmarks") / "assets"


def _walk(folder, prefix: str = ""):
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name == "__pycache__" or entry.name.endswith(".pyc"):
            continue
        path = f"{prefix}{entry.name}"
        if entry.is_dir():
            yield from _walk(entry, path + "/")
        else:
            yield path, entry.read_bytes()


def digest(files: dict[str, bytes]) -> str:
    lines = "".join(f"{path}\0{hashlib.sha256(data).hexdigest()}\n" for path, data in sorted(files.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


@cache
def files(name: str) -> dict[str, bytes]:
    """Every file of the shipped benchmark ``name`` (path relative to its folder -> bytes), checked."""
    folder = _root() / name
    if name not in PINS or not folder.is_dir():
        raise AssetError(f"no shipped benchmark data named {name!r}")
    return verified(name, dict(_walk(folder)))


def verified(name: str, found: dict[str, bytes]) -> dict[str, bytes]:
    """``found`` if its digest is the pin of ``name``; else :class:`AssetError`."""
    got = digest(found)
    if got != PINS[name]:
        raise AssetError(
            f"the shipped {name} data does not match its sha256 pin ({got[:12]}... != {PINS[name][:12]}...): "
            "reinstall editlm; the files must be the upstream ones, unchanged"
        )
    return found


def text(name: str, path: str) -> str:
    try:
        return files(name)[path].decode("utf-8")
    except KeyError:
        raise AssetError(f"{name}: no file {path!r} in the shipped data") from None


def jsonl(name: str, path: str) -> list[dict]:
    return [json.loads(line) for line in text(name, path).splitlines() if line.strip()]


@cache
def exclusions(name: str) -> dict[str, str]:
    """Items of ``name`` left out of scoring, with the reason each is left out (task id -> reason).

    Written by ``editlm benchmarks check`` (every reference must pass and every buggy input fail,
    and every test must be runnable through the trusted channel); shipped beside the data.
    """
    path = _root() / EXCLUSIONS_FILE
    if not path.is_file():
        return {}
    return dict(json.loads(path.read_text(encoding="utf-8")).get(name, {}))


class ShippedBenchmark(Benchmark):
    """A benchmark read from the shipped data. Subclasses implement :meth:`load`; what is not scored
    (named in the exclusions file, or left out by a rule of ``load``) is in ``excluded`` with its reason."""

    def load(self) -> tuple[list[Problem], dict[str, str]]:
        """``(problems, {task_id: reason})``: every upstream item, and those a rule leaves out."""
        raise NotImplementedError

    def load_problems(self) -> list[Problem]:
        problems, left_out = self.load()
        self.excluded = {**exclusions(self.name), **left_out}
        return [p for p in problems if p.task_id not in self.excluded]
