"""Real code nobody here wrote: programs from the installed packages' source, for tests and benchmarks.

Two kinds, as the method meets them: whole files (5 to thousands of lines) and single top-level
definitions cut out of them (with their decorators; names defined elsewhere in the file are then
undefined, which LintSeq must delete first). Files are drawn from every package in site-packages,
stratified by size so that small and large programs both appear, deterministically per seed. Only
programs that parse and tokenize here are kept (a package may ship syntax for a newer Python).
"""

from __future__ import annotations

import ast
import random
import sysconfig
import tokenize
import warnings
from functools import lru_cache
from pathlib import Path

# Upper bounds of the size buckets (lines), for sampling and for reports by size.
BUCKETS = (50, 200, 800, 2000, 10**9)


def bucket_name(lines: int) -> str:
    low = 1
    for high in BUCKETS:
        if lines <= high:
            return f"{low}-{high}" if high < 10**9 else f">{low - 1}"
        low = high + 1
    raise AssertionError


@lru_cache(maxsize=4)
def package_files(root: str | None = None) -> tuple[tuple[str, int], ...]:
    """``(path, bytes)`` of every ``.py`` file under site-packages (``root``), sorted."""
    base = Path(root or sysconfig.get_paths()["purelib"])
    out = []
    for path in base.rglob("*.py"):
        try:
            if path.is_file() and not path.is_symlink():
                out.append((str(path), path.stat().st_size))
        except OSError:
            continue
    return tuple(sorted(out))


def read_program(path: str, raw: bytes | None = None) -> tuple[str, ast.Module] | None:
    """The file's text and tree if this Python parses it, else None."""
    try:
        if raw is None:
            with open(path, "rb") as handle:
                raw = handle.read()
        encoding, _ = tokenize.detect_encoding(iter(raw.splitlines(keepends=True)).__next__)
        text = raw.decode(encoding).replace("\r\n", "\n")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return text, ast.parse(text)
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError, LookupError, RecursionError):
        return None


def _compiles(text: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(text, "<real_code>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError):
        return False
    return True


def _package(path: str, base: str) -> str:
    rel = Path(path).relative_to(base).parts
    return rel[0] if rel else ""


def real_programs(
    count: int,
    seed: int = 0,
    *,
    min_lines: int = 5,
    max_lines: int = 4000,
    functions: float = 0.3,
    root: str | None = None,
) -> list[dict]:
    """``count`` programs from installed packages: rows ``{"program", "source", "lines", "kind"}``.

    The size buckets of :data:`BUCKETS` (within ``min_lines``..``max_lines``) get equal shares;
    about ``functions`` of the rows are single top-level definitions, the rest whole files; at most
    a few programs come from one package, so many styles are represented.
    """
    base = root or sysconfig.get_paths()["purelib"]
    rng = random.Random(seed)
    files = list(package_files(base))
    rng.shuffle(files)
    lows = (1,) + tuple(b + 1 for b in BUCKETS[:-1])
    buckets = [b for b, low in zip(BUCKETS, lows, strict=True) if b >= min_lines and low <= max_lines]
    want = {b: count // len(buckets) + (1 if i < count % len(buckets) else 0) for i, b in enumerate(buckets)}
    per_package: dict[str, int] = {}
    cap = max(2, count // 40)
    rows: list[dict] = []
    seen: set[str] = set()
    for path, size in files:
        if len(rows) >= count:
            break
        if size < 40 or size > 400_000:
            continue
        package = _package(path, base)
        if per_package.get(package, 0) >= cap:
            continue
        try:
            with open(path, "rb") as handle:
                raw = handle.read()
        except OSError:
            continue
        small_wanted = any(want.get(b, 0) > 0 for b in buckets[:2])
        take_functions = small_wanted and rng.random() < functions and raw.count(b"\n") < 3000
        n_file = raw.count(b"\n") + 1
        file_bucket = next((b for b in buckets if n_file <= b), None)
        file_wanted = min_lines <= n_file <= max_lines and want.get(file_bucket, 0) > 0
        if not take_functions and not file_wanted:
            continue  # cheap: no parse for a file whose bucket is full
        parsed = read_program(path, raw)
        if parsed is None:
            continue
        text, tree = parsed
        programs = []
        if take_functions:
            programs += [(p, "function") for p in _definitions(text, tree, rng)]
        programs.append((text, "file"))
        for program, kind in programs:
            n = program.count("\n") + 1
            if not (min_lines <= n <= max_lines) or program in seen:
                continue
            bucket = next(b for b in buckets if n <= b)
            if want.get(bucket, 0) <= 0 or not _compiles(program):
                continue
            want[bucket] -= 1
            seen.add(program)
            per_package[package] = per_package.get(package, 0) + 1
            rows.append(
                {"program": program, "source": str(Path(path).relative_to(base)), "lines": n, "kind": kind}
            )
            break
    return rows


def _definitions(text: str, tree: ast.Module, rng: random.Random) -> list[str]:
    """One or two top-level functions or classes of the file, with their decorators."""
    lines = text.split("\n")
    nodes = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    rng.shuffle(nodes)
    out = []
    for node in nodes[:2]:
        start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
        out.append("\n".join(lines[start : node.end_lineno]) + "\n")
    return out
