"""Training data for CodeFusion: (utterance, code) pairs and the code-only pre-training corpus.

Continuous paragraph denoising (CPD) masks identifiers and keywords, which Python's ``tokenize`` reports
as NAME tokens; everything else (operators, literals, layout) stays, so E(masked code) keeps the program's
shape and the model learns to fill in the names.
"""

from __future__ import annotations

import ast
import io
import random
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MASK_RATE = 0.3


class CorpusError(ValueError):
    """A training corpus that is empty or lacks the fields asked for."""


@dataclass(frozen=True)
class Span:
    """Characters ``start:end`` of the code, one identifier or keyword."""

    start: int
    end: int
    text: str


def name_spans(code: str) -> list[Span]:
    """Every identifier and keyword (NAME token) of ``code``; [] when it does not tokenize."""
    starts = [0]
    for line in code.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    spans = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type == tokenize.NAME:
                start = starts[tok.start[0] - 1] + tok.start[1]
                spans.append(Span(start, start + len(tok.string), tok.string))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        # A truncated program (unclosed bracket at the end) still yields the names read so far.
        pass
    return spans


def mask_code(code: str, mask_token: str, rate: float = DEFAULT_MASK_RATE, rng: random.Random | None = None):
    """Replace round(rate * n) of the n identifiers/keywords (at least one when n > 0) by ``mask_token``.

    Returns the masked text and the spans that were masked, in order.
    """
    rng = rng or random.Random()
    spans = name_spans(code)
    if not spans:
        return code, []
    count = max(1, round(rate * len(spans)))
    chosen = sorted(rng.sample(range(len(spans)), count))
    parts, last = [], 0
    for index in chosen:
        span = spans[index]
        parts += [code[last : span.start], mask_token]
        last = span.end
    parts.append(code[last:])
    return "".join(parts), [spans[i] for i in chosen]


def read_pairs(path: str | Path, utterance_field: str, code_field: str) -> list[tuple[str, str]]:
    """(utterance, code) pairs of a JSONL/Parquet table; rows with an empty code are skipped."""
    from editlm.io.tables import TableError, read_rows

    try:
        rows = list(read_rows(path, columns=[utterance_field, code_field]))
    except TableError as exc:
        raise CorpusError(str(exc)) from None
    pairs = [
        (str(row[utterance_field] or ""), str(row[code_field]))
        for row in rows
        if row[code_field] is not None and str(row[code_field]).strip()
    ]
    if not pairs:
        raise CorpusError(f"{path}: no rows with a non-empty {code_field!r} field")
    return pairs


def stdlib_pairs(limit: int | None = None, max_chars: int = 400) -> list[tuple[str, str]]:
    """(first docstring paragraph, function without its docstring) pairs from the standard library.

    Functions are unparsed with ``ast.unparse`` (normalised layout, comments dropped) and kept when at most
    ``max_chars`` long, so that they fit a fixed target length.
    """
    from editlm.models.tokenizer import read_source, stdlib_files

    pairs = []
    for path in stdlib_files("*.py"):
        pairs.extend(_function_pairs(read_source(path), max_chars))
        if limit is not None and len(pairs) >= limit:
            return pairs[:limit]
    return pairs


def _function_pairs(source: str, max_chars: int) -> Iterator[tuple[str, str]]:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        doc = ast.get_docstring(node)
        if not doc or len(node.body) < 2:
            continue
        utterance = " ".join(doc.split("\n\n")[0].split())
        node.body = node.body[1:]
        code = ast.unparse(node)
        if utterance and len(code) <= max_chars:
            yield utterance, code


def conala_pairs(
    limit: int | None = None, max_chars: int = 120, max_statements: int = 3, files: int | None = None
) -> list[tuple[str, str]]:
    """CoNaLa-style (intent, snippet) pairs built offline from the standard library: the first line of a
    function's docstring -> its body without the docstring (at most ``max_statements`` statements and
    ``max_chars`` characters, unparsed by ``ast.unparse``, so at indentation 0), one pair per distinct
    body. CodeFusion's Python benchmark (CoNaLa) is not shipped; these are as short and as one-line."""
    from editlm.models.tokenizer import read_source, stdlib_files

    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for path in stdlib_files("*.py")[:files]:
        try:
            tree = ast.parse(read_source(path))
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            doc = ast.get_docstring(node)
            if not doc or not doc.strip() or not 1 <= len(node.body) - 1 <= max_statements:
                continue
            intent = doc.strip().splitlines()[0].strip()
            code = "\n".join(ast.unparse(statement) for statement in node.body[1:])
            if len(intent) < 8 or len(code) > max_chars or code in seen:
                continue
            seen.add(code)
            pairs.append((intent, code))
            if limit is not None and len(pairs) >= limit:
                return pairs
    return pairs


def is_valid_body(code: str) -> bool:
    """Whether ``code`` compiles (never runs) as the body of a function or coroutine (so ``return``,
    ``yield`` and ``await`` are allowed)."""
    body = "".join("    " + line + "\n" for line in code.splitlines()) or "    pass\n"
    import warnings

    for head in ("def _f():\n", "async def _f():\n"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # SyntaxWarnings of generated code are not ours to show
                compile(head + body, "<candidate>", "exec", dont_inherit=True)
            return True
        except (SyntaxError, ValueError):
            continue
    return False
