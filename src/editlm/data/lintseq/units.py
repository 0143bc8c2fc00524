"""Which physical lines of a program belong together: the units LintSeq deletes whole.

A line-based sampler goes wrong exactly where one statement spans several lines: the contents of a
triple-quoted string become code when the line that opens the string is deleted, a backslash
continuation needs the line after it (even a blank one), a bracket spans lines, a decorator without
its ``def`` is a syntax error. Here the tokenizer decides: a unit is one logical line (everything up
to its ``NEWLINE`` token, so the lines inside strings, brackets and continuations go with the line
that starts them), and a run of decorators goes with the ``def`` or ``class`` they decorate. Blank
and comment-only lines are units of their own. ``match`` and ``case`` headers are logical lines
like any other, so a ``case`` clause is deleted with its block and a ``match`` left without cases
is a syntax error that the linter reports on the header.

The tokenizer (not ``ast``) is used because it knows the physical extent of every logical line,
comments and blank lines included, which the tree does not record.
"""

from __future__ import annotations

import io
import tokenize
from collections.abc import Sequence

_SKIP = {tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}


class UnitError(ValueError):
    """The tokenizer cannot split the program (it parses, but ``tokenize`` disagrees)."""


def line_units(lines: Sequence[str]) -> list[int]:
    """The unit of every line (0-based line index -> unit number, increasing with the line).

    ``lines`` are the program's lines without their newlines. Raises :class:`UnitError` when the
    tokenizer fails (a program that ``ast.parse`` accepts but ``tokenize`` does not).
    """
    n = len(lines)
    source = "".join(line + "\n" for line in lines)
    unit = list(range(n))  # every line its own unit until a logical line joins it with others
    starts_decorator: dict[int, bool] = {}  # first line of a logical line -> does it start with '@'
    first: int | None = None
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            kind = token.type
            if kind in _SKIP:
                continue
            row = token.start[0] - 1
            if first is None:
                first = row
                starts_decorator[row] = token.string == "@"
            if kind == tokenize.NEWLINE:
                last = min(token.start[0] - 1, n - 1)
                for i in range(first, last + 1):
                    unit[i] = first
                first = None
    except (tokenize.TokenError, SyntaxError) as exc:  # IndentationError is a SyntaxError
        raise UnitError(f"tokenize: {exc}") from None
    # decorators: join each run of '@' logical lines (and the comments between) with the next one
    i = 0
    while i < n:
        if unit[i] == i and starts_decorator.get(i):
            j = i
            while j < n and (unit[j] != j or starts_decorator.get(j) or j not in starts_decorator):
                j += 1  # continuation lines, more decorators, blank and comment lines
            stop = j
            while stop + 1 < n and unit[stop + 1] == j:
                stop += 1  # the decorated header's own continuation lines
            for k in range(i, min(stop, n - 1) + 1):
                unit[k] = i
            i = stop + 1
            continue
        i += 1
    # renumber 0..k-1 in line order
    out, seen = [], {}
    for u in unit:
        out.append(seen.setdefault(u, len(seen)))
    return out


def unit_spans(units: Sequence[int]) -> list[range]:
    """The lines of each unit, as ranges (units are contiguous)."""
    spans: list[range] = []
    start = 0
    for i in range(1, len(units) + 1):
        if i == len(units) or units[i] != units[start]:
            spans.append(range(start, i))
            start = i
    return spans
