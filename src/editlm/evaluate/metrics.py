"""Text metrics for generated code: exact match, CodeBLEU, edit distance, validity, diversity.

Edit distances use ``rapidfuzz`` (C++ Levenshtein); CodeBLEU the ``codebleu`` package with the
``tree-sitter-python==0.21.0`` grammar (newer grammars raise TypeError inside it). Code is compared
as Python tokens where it tokenizes, so that formatting alone is not counted as a difference.
"""

from __future__ import annotations

import ast
import io
import itertools
import random
import tokenize
import warnings
from collections.abc import Sequence

from rapidfuzz.distance import Levenshtein

_SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
         tokenize.ENCODING, tokenize.ENDMARKER}  # fmt: skip


def code_tokens(code: str) -> list[str]:
    """Python tokens without comments and layout; whitespace split where the code does not tokenize."""
    try:
        return [t.string for t in tokenize.generate_tokens(io.StringIO(code).readline) if t.type not in _SKIP]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return code.split()


def normalize(code: str) -> str:
    """Trailing whitespace and blank lines at either end removed; line endings unified."""
    lines = [line.rstrip() for line in code.replace("\r\n", "\n").split("\n")]
    return "\n".join(lines).strip("\n")


def exact_match(prediction: str, reference: str, *, tokens: bool = False) -> bool:
    """Same text up to trailing whitespace (``tokens=True``: same Python tokens, comments ignored)."""
    if tokens:
        return code_tokens(prediction) == code_tokens(reference)
    return normalize(prediction) == normalize(reference)


def edit_distance(a: str, b: str, *, level: str = "token", normalized: bool = True) -> float:
    """Levenshtein distance between two programs over tokens, characters or lines; normalised by the
    longer length (0 = same, 1 = nothing in common)."""
    if level == "token":
        x, y = code_tokens(a), code_tokens(b)
    elif level == "char":
        x, y = a, b
    elif level == "line":
        x, y = normalize(a).split("\n"), normalize(b).split("\n")
    else:
        raise ValueError("level must be token, char or line")
    if normalized:
        return Levenshtein.normalized_distance(x, y)
    return float(Levenshtein.distance(x, y))


def is_valid_python(code: str) -> bool:
    """Does the program compile (this interpreter's grammar, plus the compiler's checks such as
    ``return`` outside a function)? Compiled only, never run."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(code, "<sample>", "exec", dont_inherit=True)
        return True
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False


def syntactic_validity(programs: Sequence[str]) -> float:
    """Fraction of programs that parse."""
    return sum(map(is_valid_python, programs)) / len(programs) if programs else 0.0


def codebleu(predictions: Sequence[str], references: Sequence[str], lang: str = "python") -> dict[str, float]:
    """Corpus CodeBLEU and its four parts (n-gram, weighted n-gram, syntax, dataflow)."""
    if len(predictions) != len(references):
        raise ValueError("predictions and references differ in length")
    if not predictions:
        raise ValueError("no predictions")
    from codebleu import calc_codebleu

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = calc_codebleu(list(references), list(predictions), lang=lang)
    return {key: float(value) for key, value in scores.items()}


def distinct_ngrams(programs: Sequence[str], n: int = 2) -> float:
    """distinct-n: unique token n-grams over all token n-grams of the set (1 = no repetition)."""
    grams = [
        tuple(toks[i : i + n])
        for p in programs
        for toks in [code_tokens(p)]
        for i in range(len(toks) - n + 1)
    ]
    return len(set(grams)) / len(grams) if grams else 0.0


def _canonical(code: str) -> str:
    try:
        return ast.dump(ast.parse(code))
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return " ".join(code_tokens(code))


def diversity(
    programs: Sequence[str], ns: Sequence[int] = (1, 2, 3, 4), max_pairs: int = 2000
) -> dict[str, float]:
    """How different a set of samples for one problem are from each other.

    ``distinct_programs``: distinct texts; ``distinct_asts``: distinct after parsing (formatting and
    comments ignored); ``mean_pairwise_edit_distance``: normalised token Levenshtein averaged over
    all pairs (over ``max_pairs`` of them drawn with a fixed seed when there are more);
    ``distinct_n``: distinct token n-grams.
    """
    programs = list(programs)
    n_pairs = len(programs) * (len(programs) - 1) // 2
    if n_pairs <= max_pairs:
        pairs = list(itertools.combinations(range(len(programs)), 2))
    else:
        rng = random.Random(0)
        pairs = [tuple(rng.sample(range(len(programs)), 2)) for _ in range(max_pairs)]
    tokens = [code_tokens(p) for p in programs]
    result = {
        "samples": float(len(programs)),
        "distinct_programs": float(len({normalize(p) for p in programs})),
        "distinct_asts": float(len({_canonical(p) for p in programs})),
        "mean_pairwise_edit_distance": (
            sum(Levenshtein.normalized_distance(tokens[i], tokens[j]) for i, j in pairs) / len(pairs)
            if pairs
            else 0.0
        ),
    }
    for n in ns:
        result[f"distinct_{n}"] = distinct_ngrams(programs, n)
    return result


def compare(
    predictions: Sequence[str], references: Sequence[str], *, with_codebleu: bool = True
) -> dict[str, float]:
    """Mean exact match, token edit distance and validity of predictions against references, plus
    corpus CodeBLEU."""
    if len(predictions) != len(references):
        raise ValueError("predictions and references differ in length")
    if not predictions:
        return {}
    n = len(predictions)
    out = {
        "exact_match": sum(exact_match(p, r) for p, r in zip(predictions, references, strict=True)) / n,
        "edit_distance": sum(edit_distance(p, r) for p, r in zip(predictions, references, strict=True)) / n,
        "syntactic_validity": syntactic_validity(predictions),
    }
    if with_codebleu:
        out["codebleu"] = codebleu(predictions, references)["codebleu"]
    return out
