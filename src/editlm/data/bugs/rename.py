"""Consistent random renaming of a program's local names: the same program under other names.

A small model trained on bug fixes of a few hundred functions learns the fixed functions by heart
and writes their lines back, instead of copying the lines of the file in front of it (what every
correct diff needs: its ``-`` lines and most ``+`` lines are copies). Giving each sample the program
under fresh local names makes recall useless and copying pay.

What is renamed: inside each top-level function, its parameters and the names it binds (assignments,
loop and ``with`` targets, comprehension variables, nested functions' parameters), every use of
them, consistently within the function. Not renamed: module-level names (other functions use them),
attributes and keyword-argument names (not names in Python's sense), ``self`` and ``cls``, dunders,
and any function that declares ``global``/``nonlocal`` names for them, holds a class body (its
names are attributes), or calls ``locals``/``vars``/``eval``/``exec`` (names are data there).
Docstrings and comments keep the old names. Parameters are renamed too, so the function means the
same for positional calls; a caller passing a renamed parameter by keyword would no longer match.
The result is checked: it must parse to the same tree as the original with the names mapped back,
or the original is returned unchanged.

Written with :mod:`ast` positions rather than libcst: libcst's scope analysis costs about 6 ms per
short program here, and a renamed copy is made per training sample.
"""

from __future__ import annotations

import ast
import builtins
import keyword
import random
import re

_RESERVED = set(keyword.kwlist) | set(keyword.softkwlist) | set(dir(builtins)) | {"self", "cls"}
_DYNAMIC = {"locals", "vars", "eval", "exec", "globals"}
# Short names as code uses them (loop indices, maths, numbered arguments)
_SHORT = [c for c in "abcdefghijkmnpqrstuvwxyz"] + [f"{c}{d}" for c in "abcnpqrsxyz" for d in range(1, 5)]


def local_names(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """The names ``function`` binds locally (see the module), or an empty set when renaming is unsafe."""
    names: set[str] = set()
    declared: set[str] = set()
    for node in ast.walk(function):
        if isinstance(node, ast.ClassDef):
            return set()
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            declared.update(node.names)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _DYNAMIC:
            return set()
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        # names bound as plain strings (not Name nodes) are left alone wherever they appear
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            declared.add(node.name)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            declared.add(node.name)
        elif isinstance(node, ast.alias):
            declared.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            declared.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            declared.add(node.rest)
    return {n for n in names - declared if n not in _RESERVED and not n.startswith("__")}


def _spans(function: ast.AST, mapping: dict[str, str]) -> list[tuple[int, int, int, str]]:
    """(line, start byte, end byte, new name) of every occurrence to rename inside ``function``."""
    spans = []
    for node in ast.walk(function):
        if isinstance(node, ast.Name) and node.id in mapping:
            spans.append(
                (node.lineno, node.col_offset, node.col_offset + len(node.id.encode()), mapping[node.id])
            )
        elif isinstance(node, ast.arg) and node.arg in mapping:
            spans.append(
                (node.lineno, node.col_offset, node.col_offset + len(node.arg.encode()), mapping[node.arg])
            )
    return spans


def rename_locals(source: str, rng: random.Random, pool: list[str] | None = None, share: float = 1.0) -> str:
    """``source`` with the local names of its top-level functions renamed at random (each with
    probability ``share``) to names drawn from ``pool`` and short names that the program does
    not use; ``source`` itself when nothing can be renamed safely."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return source
    taken = set(re.findall(r"[A-Za-z_]\w*", source)) | _RESERVED
    choices = list(dict.fromkeys([*(pool or ()), *_SHORT]))
    mapping_all: dict[str, str] = {}
    spans = []
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        mapping: dict[str, str] = {}
        for name in sorted(local_names(node)):
            if rng.random() >= share:
                continue
            free = [c for c in rng.sample(choices, min(len(choices), 16)) if c not in taken]
            if not free:
                continue
            mapping[name] = free[0]
            taken.add(free[0])
        # the parameters' names and the body; decorators, defaults and annotations are evaluated
        # outside the function (``def f(x=x)``: the default is the module's ``x``), so they stay
        for arg in ast.walk(node.args):
            if isinstance(arg, ast.arg) and arg.arg in mapping:
                spans.append(
                    (arg.lineno, arg.col_offset, arg.col_offset + len(arg.arg.encode()), mapping[arg.arg])
                )
        for part in node.body:
            spans += _spans(part, mapping)
        mapping_all.update({new: old for old, new in mapping.items()})
    if not spans:
        return source
    lines = source.splitlines(keepends=True)
    encoded = [line.encode() for line in lines]
    for line, start, end, new in sorted(spans, reverse=True):
        text = encoded[line - 1]
        encoded[line - 1] = text[:start] + new.encode() + text[end:]
    renamed = b"".join(encoded).decode()
    if not _same_tree(source, renamed, mapping_all):
        return source
    return renamed


def _same_tree(original: str, renamed: str, back: dict[str, str]) -> bool:
    """Whether ``renamed`` parses to ``original``'s tree once its new names are mapped back."""
    try:
        tree = ast.parse(renamed)
    except (SyntaxError, ValueError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in back:
            node.id = back[node.id]
        elif isinstance(node, ast.arg) and node.arg in back:
            node.arg = back[node.arg]
    return ast.dump(tree) == ast.dump(ast.parse(original))


def name_pool(sources, limit: int = 2000) -> list[str]:
    """Local names as the given programs use them, most common first: a natural pool to draw from."""
    counts: dict[str, int] = {}
    for source in sources:
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for name in local_names(node):
                    counts[name] = counts.get(name, 0) + 1
    return sorted(counts, key=lambda n: (-counts[n], n))[:limit]
