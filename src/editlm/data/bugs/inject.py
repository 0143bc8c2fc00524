"""Synthetic bugs injected with libcst, so that only the mutated tokens change and formatting is kept.

Bug classes (REFERENCE.md section 3; He et al. 2022 plus the 4-Parity kinds):

========================  =================================================================
``variable-misuse``       a read of a function-local variable replaced by another local
                          assigned earlier in the same function
``wrong-operator``        a binary operator swapped within its class: arithmetic
                          ``+ - * / // %``, comparison ``== != is is-not < <= > >= in not-in``,
                          boolean ``and``/``or``
``argument-swap``         two positional arguments of a call exchanged
``undefined-name``        a use of a defined name renamed to a name defined nowhere
                          (4-Parity's ``b1`` -> ``c1``)
``wrong-constant``        an integer literal changed by one (4-Parity's ``% 2`` -> ``% 3``)
``off-by-one``            ``<``/``<=`` or ``>``/``>=`` flipped, or a ``range()`` bound moved by one
``missing-logic``         a statement of a block deleted, or one operand of ``and``/``or`` dropped
``excess-logic``          a state-changing statement repeated (``x += 1``, ``xs.append(x)``), or a
                          condition strengthened with another comparison of the same function
``function-misuse``       a call replaced by a similar one (``min``/``max``, ``any``/``all``,
                          ``startswith``/``endswith``, ``upper``/``lower``, ``find``/``rfind``, ...)
``value-misuse``          a value other than an integer changed: ``True``/``False`` swapped, a string
                          literal emptied (or an empty one given a space), a float moved by one
========================  =================================================================

The last four are bug types of HumanEvalFix (people's bugs in HumanEval solutions: value misuse,
missing logic, excess logic, operator misuse, variable misuse, function misuse), so that models trained
on synthetic bugs can be measured on real ones.

A :class:`Program` parses once and lists every *site* (a place where a class can inject a bug, with
its possible mutations); :meth:`Program.inject` picks one site, :meth:`Program.inject_many` picks
several that do not overlap and applies them in one pass. Every returned :class:`Bug` parses,
differs from the original, and its :attr:`Bug.fix` diff applies to the buggy program to give the
original back byte for byte.
"""

from __future__ import annotations

import ast
import builtins
import keyword
import os
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import (
    Assignment,
    ComprehensionScope,
    FunctionScope,
    MetadataWrapper,
    ScopeProvider,
    WhitespaceInclusivePositionProvider,
)

from editlm.edits.diff import apply_diff, make_diff
from editlm.edits.diff_model import DiffSample

# class id -> the words used in the commit message ("Fix {bug_class}")
BUG_CLASSES: dict[str, str] = {
    "variable-misuse": "variable misuse",
    "wrong-operator": "wrong binary operator",
    "argument-swap": "argument swap",
    "undefined-name": "undefined name",
    "wrong-constant": "wrong integer constant",
    "off-by-one": "off-by-one error",
    "missing-logic": "missing logic",
    "excess-logic": "excess logic",
    "function-misuse": "function misuse",
    "value-misuse": "value misuse",
}
DEFAULT_TEMPLATE = "Fix {bug_class}"
_NAME_CLASSES = {"variable-misuse", "undefined-name"}

_ARITHMETIC = (cst.Add, cst.Subtract, cst.Multiply, cst.Divide, cst.FloorDivide, cst.Modulo)
_COMPARISON = (
    cst.Equal,
    cst.NotEqual,
    cst.Is,
    cst.IsNot,
    cst.LessThan,
    cst.LessThanEqual,
    cst.GreaterThan,
    cst.GreaterThanEqual,
    cst.In,
    cst.NotIn,
)
_BOOLEAN = (cst.And, cst.Or)
_WORD_OPERATORS = (cst.Is, cst.IsNot, cst.In, cst.NotIn, cst.And, cst.Or)
_OFF_BY_ONE = {
    cst.LessThan: cst.LessThanEqual,
    cst.LessThanEqual: cst.LessThan,
    cst.GreaterThan: cst.GreaterThanEqual,
    cst.GreaterThanEqual: cst.GreaterThan,
}
# Calls and methods that are easily confused with one another (function misuse); only pairs whose
# results differ on ordinary inputs (``split``/``rsplit`` without a limit would not be a bug).
_SIMILAR_FUNCTIONS = {
    "min": ("max",), "max": ("min",), "any": ("all",), "all": ("any",), "sum": ("len", "max"),
    "len": ("sum",), "int": ("round", "float"), "round": ("int",), "float": ("int",), "sorted": ("reversed",),
    "reversed": ("sorted",), "set": ("list",), "floor": ("ceil",), "ceil": ("floor",),
}  # fmt: skip
_SIMILAR_METHODS = {
    "upper": ("lower",), "lower": ("upper",), "isupper": ("islower",), "islower": ("isupper",),
    "startswith": ("endswith",), "endswith": ("startswith",), "find": ("rfind",), "rfind": ("find",),
    "index": ("rindex",), "rindex": ("index",), "strip": ("lstrip", "rstrip"), "lstrip": ("rstrip", "strip"),
    "rstrip": ("lstrip", "strip"), "isdigit": ("isalpha",), "isalpha": ("isdigit",), "append": ("extend",),
    "keys": ("values",), "values": ("keys",), "remove": ("discard",), "capitalize": ("title",),
    "title": ("capitalize",), "sort": ("reverse",), "reverse": ("sort",),
}  # fmt: skip
# Statements whose repetition changes state (excess logic): augmented assignments and these methods.
_MUTATORS = {"append", "extend", "insert", "add", "update", "pop", "remove", "discard", "sort", "reverse"}
# Expressions that stay one operand when ``+ 1`` is appended (anything else gets parentheses).
_TIGHT = (cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.Integer)
_ADDITIVE_OR_TIGHTER = (*_ARITHMETIC, cst.Power, cst.MatrixMultiply)


class BugError(ValueError):
    """A program that bugs cannot be injected into (not valid Python), or an unknown bug class."""


@dataclass(frozen=True)
class Variant:
    """One way to mutate a site: ``text()`` is libcst's printout of the buggy node (or, for a site
    without ``expected``, the literal text that replaces the span)."""

    description: str
    text: Callable[[], str]


@dataclass(frozen=True)
class Site:
    """A place where ``kind`` can inject a bug: the node at characters ``start:end`` of the source
    (from line ``line``). ``expected()`` is libcst's printout of that node, None for raw text sites."""

    kind: str
    start: int
    end: int
    line: int
    variants: tuple[Variant, ...]
    expected: Callable[[], str] | None

    def overlaps(self, other: Site) -> bool:
        return self.start < other.end and other.start < self.end

    def edit(self, source: str, variant: Variant) -> tuple[int, int, str] | None:
        """The splice ``(start, end, text)`` for ``variant``, or None where it cannot be placed exactly.

        libcst prints a node without its block's indentation, so inside a multi-line node the
        printout and the source differ after each newline. Only the part that changes is spliced,
        found by stripping what the old and new printouts share and anchoring it at the node's start
        (or end) through text free of newlines; the source must hold exactly the old part there.
        """
        new = variant.text()
        if self.expected is None:
            return self.start, self.end, new
        old = self.expected()
        p = len(os.path.commonprefix([old, new]))
        q = len(os.path.commonprefix([old[p:][::-1], new[p:][::-1]]))
        old_mid, new_mid = old[p : len(old) - q], new[p : len(new) - q]
        if "\n" not in old[:p]:
            at = self.start + p
        elif "\n" not in old[len(old) - q :]:
            at = self.end - q - len(old_mid)
        else:
            return None
        if source[at : at + len(old_mid)] != old_mid:
            return None
        return at, at + len(old_mid), new_mid


@dataclass(frozen=True)
class Bug:
    """A buggy version of ``original``: ``kinds`` and ``details`` have one entry per injected change."""

    original: str
    buggy: str
    kinds: tuple[str, ...]
    details: tuple[str, ...]

    @property
    def fix(self) -> str:
        """The fix as a header-less unified diff (diff-model format), buggy -> original."""
        return make_diff(self.buggy, self.original, context=3, headers=False)

    def message(self, template: str = DEFAULT_TEMPLATE) -> str:
        """The commit message, ``template`` filled with the bug classes' words and their count."""
        words = list(dict.fromkeys(BUG_CLASSES[k] for k in self.kinds))
        return template.format(bug_class=", ".join(words), n=len(self.kinds), bugs=len(self.kinds))

    def sample(self, name: str, template: str = DEFAULT_TEMPLATE) -> DiffSample:
        return DiffSample(name, self.buggy, self.message(template), self.fix)


class Program:
    """A parsed program and its bug sites, by class (only ``kinds``, when given: the scope analysis
    that the name classes need is most of the cost, and is skipped when they are not wanted)."""

    def __init__(self, source: str, kinds: Iterable[str] | None = None):
        wanted = set(BUG_CLASSES if kinds is None else _check_kinds(kinds))
        try:
            ast.parse(source)
            module = cst.parse_module(source)
        except (SyntaxError, ValueError, cst.ParserSyntaxError, RecursionError, MemoryError) as exc:
            raise BugError(f"not valid Python: {str(exc).splitlines()[0] if str(exc) else exc!r}") from None
        self.source = source
        finder = _SiteFinder(module, source, names=bool(wanted & _NAME_CLASSES))
        module.visit(finder)
        self.sites: dict[str, list[Site]] = {kind: [] for kind in BUG_CLASSES}
        for site in finder.sites:
            if site.kind in wanted:
                self.sites[site.kind].append(site)

    def kinds(self) -> list[str]:
        """The classes that have at least one site in this program."""
        return [kind for kind, sites in self.sites.items() if sites]

    def inject(self, kind: str, rng: random.Random) -> Bug | None:
        """One bug of class ``kind``; None when the program offers no site for it."""
        _check_kinds([kind])
        return self.inject_many(1, rng, [kind])

    def _draw(self, n: int, rng: random.Random, kinds: list[str]) -> list[tuple[Site, Variant]] | None:
        pool = {kind: list(self.sites[kind]) for kind in kinds if self.sites[kind]}
        chosen: list[tuple[Site, Variant]] = []
        while len(chosen) < n:
            pool = {k: [s for s in v if not any(s.overlaps(c) for c, _ in chosen)] for k, v in pool.items()}
            pool = {k: v for k, v in pool.items() if v}
            if not pool:
                return None
            kind = rng.choice(sorted(pool))
            site = rng.choice(pool[kind])
            chosen.append((site, rng.choice(site.variants)))
        return chosen

    def inject_many(self, n: int, rng: random.Random, kinds: Iterable[str] | None = None) -> Bug | None:
        """``n`` bugs at non-overlapping sites, each of a class drawn uniformly from ``kinds`` (all by
        default) among those with sites left; None when fewer than ``n`` sites can be used."""
        if n < 1:
            raise ValueError("n must be >= 1")
        kinds = list(BUG_CLASSES) if kinds is None else _check_kinds(kinds)
        # Sites are drawn greedily; one that spans a whole statement can crowd out the rest, so a
        # draw that runs out of room is retried a few times before ``n`` bugs are said not to fit.
        for _ in range(8):
            chosen = self._draw(n, rng, kinds)
            if chosen is not None:
                break
        else:
            return None
        chosen.sort(key=lambda pair: pair[0].start)
        edits = [site.edit(self.source, variant) for site, variant in chosen]
        if None in edits:
            return None  # a change that cannot be placed exactly is never guessed at
        buggy = _splice(self.source, edits)
        if buggy == self.source:
            return None
        try:
            ast.parse(buggy)
        except SyntaxError:  # a mutation libcst can print but Python cannot read: never emit it
            return None
        return Bug(
            self.source,
            buggy,
            tuple(site.kind for site, _ in chosen),
            tuple(f"line {site.line}: {variant.description}" for site, variant in chosen),
        )


def inject_bug(source: str, kind: str, seed: int | str = 0) -> Bug | None:
    """One bug of class ``kind`` in ``source`` (None when there is no site for it)."""
    return Program(source).inject(kind, random.Random(seed))


def inject_bugs(source: str, n: int, seed: int | str = 0, kinds: Iterable[str] | None = None) -> Bug | None:
    """``n`` bugs at once (4-Parity style), at non-overlapping sites."""
    return Program(source).inject_many(n, random.Random(seed), kinds)


def sample_bugs(
    program: Program,
    rng: random.Random,
    counts: Sequence[int] = (1,),
    per_count: int = 1,
    kinds: Iterable[str] | None = None,
    attempts: int = 4,
) -> list[Bug]:
    """Up to ``per_count`` distinct bugs for each number of bugs in ``counts``."""
    kinds = list(BUG_CLASSES) if kinds is None else _check_kinds(kinds)
    out: list[Bug] = []
    seen: set[str] = set()
    for n in counts:
        found = 0
        for _ in range(per_count * attempts):
            if found == per_count:
                break
            bug = program.inject_many(n, rng, kinds)
            if bug is None:
                break  # not enough sites for n bugs: more tries will not find them
            if bug.buggy in seen:
                continue
            seen.add(bug.buggy)
            out.append(bug)
            found += 1
    return out


def check_bug(bug: Bug) -> None:
    """Raise AssertionError unless the bug parses, differs and its fix restores the original."""
    ast.parse(bug.buggy)
    assert bug.buggy != bug.original, "the bug changes nothing"
    assert apply_diff(bug.buggy, bug.fix) == bug.original, "the fix does not restore the original"


def _check_kinds(kinds: Iterable[str]) -> list[str]:
    kinds = list(kinds)
    unknown = [k for k in kinds if k not in BUG_CLASSES]
    if unknown:
        raise BugError(f"unknown bug classes {unknown}; known: {', '.join(BUG_CLASSES)}")
    return kinds


# --------------------------------------------------------------------------- applying


def _splice(source: str, edits: list[tuple[int, int, str]]) -> str:
    """Apply sorted, non-overlapping ``(start, end, text)`` edits.

    Text splicing rather than a libcst transformer pass: the spans come from libcst and are checked
    against its printout, and a splice costs nothing where a pass over a large module costs ~0.1 s.
    """
    out, at = [], 0
    for start, end, text in edits:
        out += [source[at:start], text]
        at = end
    out.append(source[at:])
    return "".join(out)


# --------------------------------------------------------------------------- finding sites


def _words(source: str) -> set[str]:
    """Every identifier-like word in the source (names, attributes, strings): a new name must be none."""
    return set(re.findall(r"[A-Za-z_]\w*", source))


_RESERVED = set(keyword.kwlist) | set(keyword.softkwlist) | set(dir(builtins))


def _typo_names(name: str, taken: set[str]) -> list[str]:
    """Undefined look-alikes of ``name``: next letter first (``b1`` -> ``c1``, as in 4-Parity), then
    the last letter, a dropped or doubled character, two characters swapped."""
    out: list[str] = []

    def bump(ch: str) -> str:
        if not ch.isalpha() or not ch.isascii():
            return ch
        base = ord("a") if ch.islower() else ord("A")
        return chr(base + (ord(ch) - base + 1) % 26)

    out.append(bump(name[0]) + name[1:])
    out.append(name[:-1] + bump(name[-1]))
    if len(name) > 1:
        out += [name[:i] + name[i + 1 :] for i in range(len(name))]
    out += [name[: i + 1] + name[i] + name[i + 1 :] for i in range(len(name))]
    out += [name[:i] + name[i + 1] + name[i] + name[i + 2 :] for i in range(len(name) - 1)]
    good = []
    for candidate in dict.fromkeys(out):
        if (
            candidate != name
            and candidate.isidentifier()
            and candidate not in taken
            and candidate not in _RESERVED
        ):
            good.append(candidate)
    return good


def _operator_like(op: cst.CSTNode, new_type: type) -> cst.CSTNode:
    """An operator of ``new_type`` with the whitespace of ``op``; word operators get the spaces they need."""
    before, after = op.whitespace_before, op.whitespace_after
    if new_type in _WORD_OPERATORS:
        if isinstance(before, cst.SimpleWhitespace) and not before.value:
            before = cst.SimpleWhitespace(" ")
        if isinstance(after, cst.SimpleWhitespace) and not after.value:
            after = cst.SimpleWhitespace(" ")
    return new_type(whitespace_before=before, whitespace_after=after)


_SYMBOL = {
    cst.Add: "+",
    cst.Subtract: "-",
    cst.Multiply: "*",
    cst.Divide: "/",
    cst.FloorDivide: "//",
    cst.Modulo: "%",
    cst.Equal: "==",
    cst.NotEqual: "!=",
    cst.Is: "is",
    cst.IsNot: "is not",
    cst.LessThan: "<",
    cst.LessThanEqual: "<=",
    cst.GreaterThan: ">",
    cst.GreaterThanEqual: ">=",
    cst.In: "in",
    cst.NotIn: "not in",
    cst.And: "and",
    cst.Or: "or",
}


def _swap_operator(new_type: type) -> Callable[[cst.CSTNode], cst.CSTNode]:
    return lambda node: _operator_like(node, new_type)


def _shift(expr: cst.BaseExpression, delta: int) -> tuple[str, cst.BaseExpression]:
    """``expr`` moved by ``delta`` (+-1), written the way a programmer would get it wrong."""
    if isinstance(expr, cst.Integer):
        value = _integer_like(expr.value, int(expr.value, 0) + delta)
        return f"{expr.value} -> {value}", expr.with_changes(value=value)
    sign = "+" if delta > 0 else "-"
    if isinstance(expr, cst.BinaryOperation) and not expr.lpar:
        right = expr.right
        if isinstance(right, cst.Integer) and right.value == "1" and not right.lpar:
            # ``n - 1`` -> ``n`` (delta +1) and ``n + 1`` -> ``n`` (delta -1): drop the correction
            if isinstance(expr.operator, cst.Subtract if delta > 0 else cst.Add):
                return f"drop `{_SYMBOL[type(expr.operator)]} 1`", expr.left
    operand = expr
    tight = isinstance(expr, _TIGHT) or (
        isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, _ADDITIVE_OR_TIGHTER)
    )
    if not tight and not expr.lpar:
        operand = expr.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    operator = cst.Add() if delta > 0 else cst.Subtract()
    return f"append `{sign} 1`", cst.BinaryOperation(left=operand, operator=operator, right=cst.Integer("1"))


class _SiteFinder(cst.CSTVisitor):
    """Collects the sites of every class in one pass over a module (plus libcst's scope analysis)."""

    def __init__(self, module: cst.Module, source: str, names: bool = True):
        super().__init__()
        wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
        providers = [WhitespaceInclusivePositionProvider] + ([ScopeProvider] if names else [])
        metadata = wrapper.resolve_many(providers)  # one pass for both
        self.module = module
        self.source = source
        self.positions = metadata[WhitespaceInclusivePositionProvider]
        self.scopes = metadata.get(ScopeProvider, {})
        self.words = _words(source)
        starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", source)]
        self._offset = lambda pos: starts[pos.line - 1] + pos.column
        self.sites: list[Site] = []
        self.defined = _defined_names(module)
        self._name_sites()
        self._statement_sites()

    def _code(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node)

    def _span(self, node: cst.CSTNode) -> tuple[int, int, int] | None:
        """(start, end, line) of ``node`` in the source (checked against its printout only when a
        bug is made there: printing every candidate node is most of the cost on large files)."""
        where = self.positions.get(node)
        if where is None:
            return None
        return self._offset(where.start), self._offset(where.end), where.start.line

    def _variant(self, description: str, node: cst.CSTNode, change: Callable) -> Variant:
        return Variant(description, lambda: self._code(change(node)))

    def _add(self, kind: str, node: cst.CSTNode, variants: list[Variant]) -> None:
        span = self._span(node) if variants else None
        if span is not None:
            self.sites.append(Site(kind, *span, tuple(variants), lambda: self._code(node)))

    # -- names: variable misuse and undefined names, from libcst's scope analysis

    def _name_sites(self) -> None:
        seen: set[int] = set()
        for scope in dict.fromkeys(self.scopes.values()):
            if scope is None:
                continue
            for access in scope.accesses:
                node = access.node
                if not isinstance(node, cst.Name) or id(node) in seen or node not in self.positions:
                    continue
                seen.add(id(node))
                referents = list(access.referents)
                if not referents or not all(isinstance(r, Assignment) for r in referents):
                    continue  # builtins and unresolved names are not ours to rename
                rename = [
                    self._variant(f"`{node.value}` -> `{new}` (undefined)", node, _rename(new))
                    for new in _typo_names(node.value, self.words)
                ]
                self._add("undefined-name", node, rename)
                home = _function_scope(access.scope)
                if home is not None and all(r.scope in (home, access.scope) for r in referents):
                    line = self.positions[node].start.line
                    others = sorted(_locals_before(home, access.scope, line, self.positions) - {node.value})
                    misuse = [
                        self._variant(f"`{node.value}` -> `{new}`", node, _rename(new)) for new in others
                    ]
                    self._add("variable-misuse", node, misuse)

    # -- operators

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if isinstance(node.operator, _ARITHMETIC):
            self._operator_site(node.operator, _ARITHMETIC)

    def visit_BooleanOperation(self, node: cst.BooleanOperation) -> None:
        self._operator_site(node.operator, _BOOLEAN)
        span = self._span(node)
        if span is None or "\n" in self.source[span[0] : span[1]]:
            return  # an operand dropped from a condition over several lines cannot be placed exactly
        word = _SYMBOL[type(node.operator)]
        left, right = self._code(node.left).strip(), self._code(node.right).strip()
        # missing logic: one condition of the pair dropped (the remaining one keeps the parentheses)
        self._add(
            "missing-logic",
            node,
            [
                self._variant(f"`{left} {word} {right}` -> `{left}`", node, _keep(node.left, node)),
                self._variant(f"`{left} {word} {right}` -> `{right}`", node, _keep(node.right, node)),
            ],
        )

    def visit_ComparisonTarget(self, node: cst.ComparisonTarget) -> None:
        op = node.operator
        self._operator_site(op, _COMPARISON)
        flipped = _OFF_BY_ONE.get(type(op))
        if flipped is not None:
            description = f"`{_SYMBOL[type(op)]}` -> `{_SYMBOL[flipped]}`"
            self._add("off-by-one", op, [self._variant(description, op, _swap_operator(flipped))])

    def _operator_site(self, op: cst.CSTNode, family: tuple[type, ...]) -> None:
        variants = [
            self._variant(f"`{_SYMBOL[type(op)]}` -> `{_SYMBOL[new]}`", op, _swap_operator(new))
            for new in family
            if new is not type(op)
        ]
        self._add("wrong-operator", op, variants)

    # -- calls: argument swaps and range bounds

    def visit_Call(self, node: cst.Call) -> None:
        positional = [i for i, arg in enumerate(node.args) if arg.keyword is None and not arg.star]
        spans = {i: self._span(node.args[i].value) for i in positional}
        positional = [i for i in positional if spans[i] is not None]
        for a_index, i in enumerate(positional):
            for j in positional[a_index + 1 :]:
                (a_start, a_end, line), (b_start, b_end, _) = spans[i], spans[j]
                first, second = self.source[a_start:a_end], self.source[b_start:b_end]
                if first == second:
                    continue
                middle = self.source[a_end:b_start]
                text = second + middle + first
                func = self._span(node.func)
                name = self.source[func[0] : func[1]].strip() if func else "call"
                variant = Variant(
                    f"swap arguments {i + 1} and {j + 1} of `{name}(...)`", lambda text=text: text
                )
                # raw source text swapped: exact by construction, whatever the layout
                self.sites.append(Site("argument-swap", a_start, b_end, line, (variant,), None))
        self._function_misuse(node)
        if isinstance(node.func, cst.Name) and node.func.value == "range" and 1 <= len(positional) <= 3:
            for i in positional[:2]:
                value = node.args[i].value
                variants = []
                for delta in (1, -1):
                    if isinstance(value, cst.Integer) and int(value.value, 0) + delta < 0:
                        continue
                    description, _ = _shift(value, delta)
                    variants.append(self._variant(f"`range` bound: {description}", value, _shift_by(delta)))
                self._add("off-by-one", value, variants)

    def _function_misuse(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Name) and func.value in _SIMILAR_FUNCTIONS and func.value not in self.defined:
            target, names = func, _SIMILAR_FUNCTIONS[func.value]
        elif isinstance(func, cst.Attribute) and func.attr.value in _SIMILAR_METHODS:
            target, names = func.attr, _SIMILAR_METHODS[func.attr.value]
        else:
            return
        variants = [
            self._variant(f"`{target.value}(...)` -> `{new}(...)`", target, _rename(new)) for new in names
        ]
        self._add("function-misuse", target, variants)

    # -- values other than integers

    def visit_Name(self, node: cst.Name) -> None:
        if node.value in ("True", "False"):
            new = "False" if node.value == "True" else "True"
            self._add("value-misuse", node, [self._variant(f"`{node.value}` -> `{new}`", node, _rename(new))])

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        if "b" in node.prefix.lower() or len(node.quote) == 3:
            return  # bytes and triple-quoted blocks (docstrings): not the values logic depends on
        body = node.value[len(node.prefix) + 1 : -1]
        new = f"{node.prefix}{node.quote}{' ' if not body else ''}{node.quote}"
        self._add("value-misuse", node, [self._variant(f"`{node.value}` -> `{new}`", node, _set_value(new))])

    def visit_Float(self, node: cst.Float) -> None:
        try:
            value = float(node.value)
        except ValueError:
            return
        new = repr(value + 1.0)
        self._add("value-misuse", node, [self._variant(f"`{node.value}` -> `{new}`", node, _set_value(new))])

    # -- statements: missing and excess logic (from the ast: whole lines, spliced as raw text)

    def _statement_sites(self) -> None:
        tree = ast.parse(self.source)
        lines = self.source.splitlines(keepends=True)
        starts = [0]
        for line in lines:
            starts.append(starts[-1] + len(line))
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            compares = _single_line_compares(function, self.source)
            for block in _blocks(function):
                for statement in block:
                    if not _alone_on_lines(statement, block, lines):
                        continue
                    start, end = starts[statement.lineno - 1], starts[statement.end_lineno]
                    text = self.source[start:end]
                    if not text.endswith(("\n", "\r")):
                        continue  # the last line of a file without a final newline: not spliced
                    first = text.strip().splitlines()[0]
                    if (
                        len(block) > 1
                        and not _is_docstring(statement)
                        and not isinstance(statement, ast.Pass)
                    ):
                        delete = Variant(f"statement deleted: `{first}`", lambda: "")
                        self.sites.append(
                            Site("missing-logic", start, end, statement.lineno, (delete,), None)
                        )
                    if _mutates(statement):
                        repeat = Variant(f"statement repeated: `{first}`", lambda text=text: text + text)
                        self.sites.append(Site("excess-logic", start, end, statement.lineno, (repeat,), None))
            for node in ast.walk(function):
                if isinstance(node, (ast.If, ast.While)) and node.test.lineno == node.test.end_lineno:
                    self._stronger_condition(node.test, compares, lines, starts)

    def _stronger_condition(self, test: ast.expr, compares: list[str], lines, starts) -> None:
        line = lines[test.lineno - 1]
        head = line.encode("utf-8")
        start = starts[test.lineno - 1] + len(head[: test.col_offset].decode("utf-8", "replace"))
        end = starts[test.lineno - 1] + len(head[: test.end_col_offset].decode("utf-8", "replace"))
        old = self.source[start:end]
        if ast.get_source_segment(self.source, test) != old:
            return
        loose = isinstance(test, (ast.IfExp, ast.Lambda, ast.NamedExpr)) or (
            isinstance(test, ast.BoolOp) and isinstance(test.op, ast.Or)
        )
        own = f"({old})" if loose else old
        variants = tuple(
            Variant(f"condition `{old}` -> `{own} and {other}`", lambda other=other: f"{own} and {other}")
            for other in compares
            if other != old and other not in old
        )[:3]
        if variants:
            self.sites.append(Site("excess-logic", start, end, test.lineno, variants, None))

    # -- integer constants

    def visit_Integer(self, node: cst.Integer) -> None:
        try:
            value = int(node.value, 0)
        except ValueError:
            return
        variants = [
            self._variant(f"`{node.value}` -> `{_integer_like(node.value, new)}`", node, _set_integer(new))
            for new in (value + 1, value - 1)
            if new >= 0
        ]
        self._add("wrong-constant", node, variants)


def _rename(new: str) -> Callable[[cst.CSTNode], cst.CSTNode]:
    return lambda node: node.with_changes(value=new)


def _set_value(value: str) -> Callable[[cst.CSTNode], cst.CSTNode]:
    return lambda node: node.with_changes(value=value)


def _keep(part: cst.BaseExpression, whole: cst.BooleanOperation) -> Callable[[cst.CSTNode], cst.CSTNode]:
    """``whole`` replaced by one of its operands, with the whole's parentheses kept around it."""
    return lambda node: part.with_changes(
        lpar=list(whole.lpar) + list(part.lpar), rpar=list(part.rpar) + list(whole.rpar)
    )


def _defined_names(module: cst.Module) -> set[str]:
    """Names the module binds anywhere (a local ``max`` is not the builtin)."""
    tree = ast.parse(module.code)
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    names |= {
        n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    }
    names |= {a.arg for a in ast.walk(tree) if isinstance(a, ast.arg)}
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    return names | {(a.asname or a.name).split(".")[0] for n in imports for a in n.names}


def _blocks(function: ast.AST) -> Iterable[list[ast.stmt]]:
    """Every statement list inside ``function`` (its body, branches, loops, handlers, cases), but not
    those of nested functions or classes (they are visited on their own)."""
    stack = [function]
    while stack:
        node = stack.pop()
        blocks = [getattr(node, name, None) for name in ("body", "orelse", "finalbody")]
        blocks += [h.body for h in getattr(node, "handlers", [])] + [
            c.body for c in getattr(node, "cases", [])
        ]
        for block in blocks:
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                yield block
                stack += [
                    s
                    for s in block
                    if not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                ]


def _alone_on_lines(statement: ast.stmt, block: list[ast.stmt], lines: list[str]) -> bool:
    """A simple statement that has its lines to itself (no ``;``, nothing before or after it)."""
    if not isinstance(statement, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.Return, ast.Pass)):
        return False
    index = block.index(statement)
    if index and block[index - 1].end_lineno >= statement.lineno:
        return False
    if index + 1 < len(block) and block[index + 1].lineno <= statement.end_lineno:
        return False
    line = lines[statement.lineno - 1]
    if line.encode("utf-8")[: statement.col_offset].strip():
        return False
    tail = (
        lines[statement.end_lineno - 1].encode("utf-8")[statement.end_col_offset :].decode("utf-8", "replace")
    )
    return not tail.strip() or tail.strip().startswith("#")


def _is_docstring(statement: ast.stmt) -> bool:
    value = getattr(statement, "value", None)
    return (
        isinstance(statement, ast.Expr) and isinstance(value, ast.Constant) and isinstance(value.value, str)
    )


def _mutates(statement: ast.stmt) -> bool:
    if isinstance(statement, ast.AugAssign):
        return True
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
        func = statement.value.func
        return isinstance(func, ast.Attribute) and func.attr in _MUTATORS
    return False


def _single_line_compares(function: ast.AST, source: str) -> list[str]:
    """The distinct one-line comparisons written in ``function`` (material for a stronger condition)."""
    found: list[str] = []
    for node in ast.walk(function):
        if isinstance(node, ast.Compare) and node.lineno == node.end_lineno:
            text = ast.get_source_segment(source, node)
            if text and text not in found:
                found.append(text)
    return found


def _set_integer(value: int) -> Callable[[cst.CSTNode], cst.CSTNode]:
    return lambda node: node.with_changes(value=_integer_like(node.value, value))


def _integer_like(text: str, value: int) -> str:
    """``value`` written in the base of the literal ``text`` (``0x10`` -> ``0x11``, not ``17``)."""
    prefix = text[:2]
    base = {"0x": "x", "0o": "o", "0b": "b"}.get(prefix.lower())
    if base is None:
        return str(value)
    digits = format(value, base)
    return prefix + (digits.upper() if any(c.isupper() for c in text[2:]) else digits)


def _shift_by(delta: int) -> Callable[[cst.CSTNode], cst.CSTNode]:
    return lambda node: _shift(node, delta)[1]


def _function_scope(scope):
    """The function a scope belongs to (a comprehension inside a function belongs to it)."""
    while isinstance(scope, ComprehensionScope):
        scope = scope.parent
    return scope if isinstance(scope, FunctionScope) else None


def _locals_before(home, inner, line: int, positions) -> set[str]:
    """Variables of ``home`` assigned before ``line``: its parameters and names assigned on an
    earlier line (not the same statement), plus the targets of a comprehension ``inner``."""
    names: set[str] = set()
    for scope in dict.fromkeys((home, inner)):
        for assignment in scope.assignments:
            node = assignment.node
            if not isinstance(assignment, Assignment) or node not in positions:
                continue
            if isinstance(node, cst.Param) or (
                isinstance(node, cst.Name) and (scope is not home or positions[node].start.line < line)
            ):
                names.add(assignment.name)
    return names
