"""The pyflakes + compiler lint of a LintSeq state, reusing what did not change since the last state.

Consecutive LintSeq states differ in one or a few top-level statements, but the whole-state lint
(:func:`editlm.data.lintseq.lint.lint_errors`) parses, checks and compiles all of them every time,
so its cost per state grows with the program. Here a state is cut into *segments* (a top-level
statement with the blank lines, comments and ``else``/``except`` clauses after it, decorators
with their ``def``), and three things are reused per segment text:

1. **The tree.** Each segment is parsed alone (its line numbers start at 1) and the trees are cached
   by text. If every segment parses alone, the state parses, and its tree is the segments' trees in
   order: a segment that parses ends outside any string, bracket or backslash continuation (the
   tokenizer would report EOF otherwise), so the next segment, which starts at column 0, is
   tokenized in the state exactly as alone; and a top-level statement followed by one that starts
   a new statement cannot absorb it (only ``else``/``elif``/``except``/``finally`` and a decorator's
   ``def`` continue a statement, and a segment never starts with them). A segment that does not
   parse alone sends the state to the whole-state lint, which reports the syntax error exactly.
2. **The compile check.** A state compiles when each of its segments compiles alone (the compiler's
   own errors stay inside the top-level statement they are in; see ``lint._compile_error_by_statement``
   for the two exceptions, ``from __future__`` and a module-level ``global``, which send the state to
   the whole-state lint). A segment that does not compile alone sends the state there too, for the
   exact error.
3. **The function bodies' pyflakes messages.** pyflakes checks module-level code at once and defers
   function bodies (and string annotations) to the end, when the module scope is complete. A
   segment's deferred work reads the rest of the program only through the module scope; here the
   module scope records, per segment, every name it is asked for (with the binding's kind: its
   class and, for imports, the module and name that ``typing`` checks look at) while the module-level
   code runs (in order) and while the deferred work runs (the names). A segment whose text, module-
   level reads and deferred reads all match a memo entry would do the same deferred work with the
   same results: it is skipped and the memo's messages are used.
4. **A definition's module-level code.** A segment that is one ``def`` or ``class`` whose only
   effect on the module scope was binding its name is not run again when every module-scope read
   it made (recorded in order, all before that binding) finds what it found then: its messages are
   the memo's, and the binding is made as pyflakes makes it. Other module-level code always runs.

What the memo relies on, each checked or excluded: the module scope does not change while deferred
work runs (a write there taints the run: whole-state lint; ``global``/``nonlocal`` write it from
inside functions, so a state whose text contains either word takes the whole-state lint); deferred
work of one segment affects the others only through "used" marks on bindings, which decide warnings
and ``UndefinedLocal``, and ``UndefinedLocal`` only fires on a mark the same function just set; a
``from m import *`` makes every name lookup depend on the whole scope (no memo for that state);
every error is reported on a node of the segment whose work reports it (else: whole-state lint).
pyflakes' internals differ between versions, so this runs only on the pyflakes whose source it was
written against (:data:`ENABLED`); any other gets the whole-state lint.

Output: the same sorted error lines as ``lint_errors(state)`` (``tests/test_lint_incremental.py``
checks it on every state of real programs' edit sequences and on damaged states). Only the lines:
a message's text may name a line of another segment, so ``lint()`` keeps the whole-state path.
"""

from __future__ import annotations
import __future__

import ast
import hashlib
import inspect
import os
import re
import threading
import warnings
from collections import deque

import pyflakes.checker as _pc

from editlm.data.lintseq import lint as _lint

# States the whole-state lint takes: a segment with a ``global``/``nonlocal`` statement (they write
# the module scope from inside functions and withdraw earlier messages; the word is searched for,
# then the segment's tree); ``barry_as_FLUFL`` (a future that changes the parser); "\r" (the parser
# breaks lines there too; here lines are split at "\n" only).
_SCOPE_WORDS = re.compile(r"\b(?:global|nonlocal)\b")
# A line that starts a segment starts at column 0 with none of these: ``)]}`` close a bracket, a
# backslash or form feed cannot start a statement, '#' is a comment.
_NOT_START = frozenset(" \t\f#)]}\\\r")
_CONTINUES = re.compile(r"(else|elif|except|finally)\b")
_QUOTE_TOKENS = re.compile(r"\\.|\"\"\"|'''|\"|'|#")
_ANNOTATIONS = "<from __future__ import annotations>"  # not a name: a pseudo-read in the logs
_STARRED = "<from m import *>"  # the module scope's importStarred, also a pseudo-read
_ALL = object()  # a read of the whole scope (values(), items(), iteration): cannot be validated
_LINE_BUDGET = 15_000  # lines of cached segment trees per thread; past it every cache is cleared (the
# trees are objects the garbage collector walks: a larger cache makes its full collections slow)


def _fingerprint() -> str:
    parts = []
    for obj in (
        _pc.Checker.deferFunction,
        _pc.Checker._run_deferred,
        _pc.Checker.report,
        _pc.Checker.handleNode,
        _pc.Checker.handleChildren,
        _pc.Checker.handleNodeLoad,
        _pc.Checker.handleNodeStore,
        _pc.Checker.handleNodeDelete,
        _pc.Checker.addBinding,
        _pc.Checker.GLOBAL,
        _pc.Checker.FUNCTIONDEF,
        _pc.Checker.CLASSDEF,
        _pc.Checker.in_scope,
        _pc.Checker.checkDeadScopes,
        _pc.Checker.futuresAllowed.fget,
        _pc.Scope,
        _pc.ModuleScope,
        _pc._is_typing_helper,
    ):
        try:
            with _lint.AST_LOCK:  # getsource parses the file
                parts.append(inspect.getsource(obj))
        except (OSError, TypeError):
            return ""
    return hashlib.sha256("".join(parts).encode()).hexdigest()[:16]


_KNOWN = "defecd554bfe6c83"
# On only for the pyflakes this was written against, with the fast constructor it extends, and
# without pyflakes' doctest mode (which shifts line numbers of nodes).
ENABLED = _fingerprint() == _KNOWN and _lint._Checker._fast and "PYFLAKES_DOCTEST" not in os.environ


def _sig(binding) -> tuple | type | None:
    """What pyflakes looks at in a binding it finds: its class and, for imports, what the ``typing``
    checks compare (``fullName``, ``module``, ``real_name``)."""
    if binding is None:
        return None
    if not isinstance(binding, _pc.Importation):
        return type(binding)
    return (
        type(binding),
        getattr(binding, "fullName", None),
        getattr(binding, "module", None),
        getattr(binding, "real_name", None),
    )


class _RecordingScope(_pc.ModuleScope):
    """The module scope, telling the checker every name it is asked for; writes while ``frozen``
    (deferred work) taint the run."""

    log = None
    on_write = None
    frozen = False
    tainted = False

    def __contains__(self, key):
        if self.log is not None:
            self.log(key)
        return dict.__contains__(self, key)

    def __getitem__(self, key):
        if self.log is not None:
            self.log(key)
        return dict.__getitem__(self, key)

    def get(self, key, default=None):
        if self.log is not None:
            self.log(key)
        return dict.get(self, key, default)

    def _whole(self):
        if self.log is not None:
            self.log(_ALL)

    def keys(self):
        self._whole()
        return dict.keys(self)

    def values(self):
        self._whole()
        return dict.values(self)

    def items(self):
        self._whole()
        return dict.items(self)

    def __iter__(self):
        self._whole()
        return dict.__iter__(self)

    def _write(self):
        if self.frozen:
            self.tainted = True
        elif self.on_write is not None:
            self.on_write()

    def __setitem__(self, key, value):
        self._write()
        dict.__setitem__(self, key, value)

    def __delitem__(self, key):
        self._write()
        dict.__delitem__(self, key)

    def setdefault(self, key, default=None):
        self._write()
        return dict.setdefault(self, key, default)

    def pop(self, *args):
        self._write()
        return dict.pop(self, *args)

    def popitem(self):
        self._write()
        return dict.popitem(self)

    def update(self, *args, **kwargs):
        self._write()
        dict.update(self, *args, **kwargs)

    def clear(self):
        self._write()
        dict.clear(self)


class _SegmentChecker(_lint._Checker):
    """pyflakes on a module made of segment trees, skipping the deferred work of memoized segments.

    ``found`` holds ``(segment, line in the segment, deferred?)`` for every error message.
    """

    def __init__(
        self, tree: ast.Module, top: dict[int, int], texts: list[str], memo: dict, replay: bool = True
    ):
        # _Checker's fast constructor (pyflakes 4.1's, builtins bound once per thread), with the
        # recording module scope and the memo consulted between the module-level and deferred work.
        self._nodeHandlers = {}
        self._parents = {}
        self._node_depths = {}
        self._deferred = deque()
        self.deadScopes = []
        self.messages = []
        self.filename = "<lintseq>"
        self.builtIns = _lint._BUILTIN_NAMES
        self.withDoctest = False
        self.exceptHandlers = [()]
        self.root = tree
        self.scopeStack = []
        self._running_deferred = False
        n = len(texts)
        self._top = top
        self._segment: int | None = None
        self._phase = 1  # 1 module-level code, 2 deferred work, 3 dead scopes
        self._imm_reads: list[list] = [[] for _ in range(n)]
        self._def_reads: list[set] = [set() for _ in range(n)]
        self._defers = [False] * n
        self.found: list[tuple[int, int, int]] = []  # (segment, line in it, phase)
        self.tainted = False
        self.skipped: dict[int, tuple] = {}
        self.replayed: set[int] = set()
        self._writes = [0] * n  # module-scope writes of each segment's module-level code
        with self.in_scope(_RecordingScope):
            module = self._module = self.scope
            bindings = _lint._builtin_bindings()
            for binding in bindings.values():
                binding.used = False
            dict.update(module, bindings)
            module.log = self._log_read
            module.on_write = self._log_write
            for node in tree.body:  # = handleChildren(tree): a Module's children are its body
                segment = top[id(node)]
                if segment != self._segment:
                    # the module attributes (not names) that later code reads: they decide which
                    # annotations are deferred and whether an unknown name is an error
                    self._imm_reads[segment].append((_ANNOTATIONS, module._annotations_future_enabled))
                    self._imm_reads[segment].append((_STARRED, module.importStarred))
                    self._segment = segment
                    if replay and self._replay(segment, node, tree, memo.get(texts[segment])):
                        continue
                self.handleNode(node, tree)
            self._segment = None
            module.on_write = None
            starred = module.importStarred
            if starred and self.replayed:
                self.tainted = "replay"
            if not starred:
                self.skipped = self._consult(texts, memo)
            if any(k not in self.skipped for k in self.replayed):
                self.tainted = "replay"  # its function bodies must run after all: run the state again
            module.frozen = True
            self._phase = 2
            self._run_tagged()
            module.log = None
        self._phase = 3
        self.checkDeadScopes()
        self.tainted = self.tainted or (module.tainted and "module scope written by deferred work")
        if not (self.tainted or starred):
            self._store(texts, memo, tree)

    def _log_read(self, key) -> None:
        segment = self._segment
        if segment is None:
            self.tainted = "read outside a segment"
        elif self._phase == 1:
            found = None if key is _ALL else dict.get(self._module, key)
            self._imm_reads[segment].append((key, _sig(found)))
        else:
            self._def_reads[segment].add(key)

    def _log_write(self) -> None:
        if self._segment is not None:
            self._writes[self._segment] += 1

    def _replay(self, k: int, node: ast.stmt, tree: ast.Module, entry: tuple | None) -> bool:
        """Skip the module-level code of segment ``k`` when it is one ``def`` or ``class`` whose only
        effect on the module scope was binding its name, and every module-scope read it made
        (recorded in order, each before that binding) finds what it found then: its run would be the
        same, so its messages are the memo's and its effect is the binding, made here. Its function
        bodies are then skipped too; if their memo turns out stale the state is run again."""
        if entry is None or not entry[5]:
            return False
        module = self._module
        for key, sig in entry[0]:
            if key is _ANNOTATIONS:
                ok = sig == module._annotations_future_enabled
            elif key is _STARRED:
                ok = sig == module.importStarred
            else:
                ok = key is not _ALL and _sig(dict.get(module, key)) == sig
            if not ok:
                return False
        # what handleNode(node, tree) does around the handler, then the handler's binding
        if self.futuresAllowed and not self.isDocstring(node):
            self.futuresAllowed = False
        self._node_depths[node] = 1
        self._parents[node] = tree
        kind = _pc.ClassDefinition if isinstance(node, ast.ClassDef) else _pc.FunctionDefinition
        self.addBinding(node, kind(node.name, node))
        self.found += [(k, line, 1) for line in entry[4]]
        self._defers[k] = True
        self.replayed.add(k)
        return True

    def _consult(self, texts: list[str], memo: dict) -> dict[int, tuple]:
        module, skip = self._module, {}
        for k, text in enumerate(texts):
            entry = memo.get(text)
            if entry is None or not self._defers[k]:
                continue
            imm, deferred_reads, annotations, messages = entry[:4]
            if annotations != module._annotations_future_enabled:
                continue
            if k not in self.replayed and tuple(self._imm_reads[k]) != imm:
                continue
            if all(_sig(dict.get(module, name)) == sig for name, sig in deferred_reads):
                skip[k] = messages
        return skip

    def _store(self, texts: list[str], memo: dict, tree: ast.Module) -> None:
        module = self._module
        starts = {}
        for node in tree.body:
            starts.setdefault(self._top[id(node)], []).append(node)
        for k, text in enumerate(texts):
            if k in self.skipped or not self._defers[k]:
                continue
            imm, reads = self._imm_reads[k], self._def_reads[k]
            if _ALL in reads or any(key is _ALL for key, _ in imm):
                continue
            nodes = starts.get(k, [])
            replayable = (
                len(nodes) == 1
                and isinstance(nodes[0], ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                and self._writes[k] == 1
            )
            memo[text] = (
                tuple(imm),
                tuple((name, _sig(dict.get(module, name))) for name in reads),
                module._annotations_future_enabled,
                tuple(line for seg, line, phase in self.found if seg == k and phase == 2),
                tuple(line for seg, line, phase in self.found if seg == k and phase == 1),
                replayable,
            )

    def deferFunction(self, callable):
        if self._segment is None:
            self.tainted = "deferred outside a segment"
        else:
            self._defers[self._segment] = True
        self._deferred.append((callable, self.scopeStack[:], self.offset, self._segment))

    def GLOBAL(self, node):
        # pyflakes withdraws earlier UndefinedName messages of the name, from every segment: not
        # reproducible per segment (states with the word never get here; this is the safety net)
        self.tainted = "global"

    NONLOCAL = GLOBAL

    def _run_tagged(self) -> None:
        """pyflakes' ``_run_deferred``, skipping the work of memoized segments."""
        self._running_deferred = True
        orig = (self.scopeStack, self.offset)
        skipped = self.skipped
        while self._deferred:
            handler, scope, offset, segment = self._deferred.popleft()
            if segment in skipped:
                continue
            self.scopeStack, self.offset, self._segment = scope, offset, segment
            handler()
        self.scopeStack, self.offset = orig
        self._segment = None

    def report(self, messageClass, *args, **kwargs):
        # Only errors are kept: warnings decide nothing here (pyflakes reads its messages back only
        # in GLOBAL, and a state with ``global`` never gets here).
        if not issubclass(messageClass, _lint.ERROR_MESSAGES):
            return
        message = messageClass(self.filename, *args, **kwargs)
        segment = self._segment_of(args[0])
        if segment is None and self._phase != 3:
            # a node not handled yet (an augmented assignment's target is loaded before it is
            # visited): a child of the statement being checked, so of the current segment
            segment = self._segment
        if segment is None or (self._phase != 3 and segment != self._segment):
            self.tainted = "message outside its segment"
            return
        self.found.append((segment, message.lineno, self._phase))

    def _segment_of(self, node) -> int | None:
        top, parents = self._top, self._parents
        while node is not None:
            segment = top.get(id(node))
            if segment is not None:
                return segment
            node = parents.get(node)
        return None


class _Caches(threading.local):
    def __init__(self):
        self.trees: dict[str, ast.Module | None] = {}
        self.compiled: set[tuple[str, int]] = set()
        self.declares: set[str] = set()  # segment texts with a global or nonlocal statement
        self.memo: dict[str, tuple] = {}
        self.lines = 0
        self.stats = {"states": 0, "whole": 0, "segments": 0, "parsed": 0, "skipped": 0}

    def clear(self):
        self.trees.clear()
        self.compiled.clear()
        self.declares.clear()
        self.memo.clear()
        self.lines = 0


_caches = _Caches()


def stats() -> dict[str, int]:
    """This thread's counts: states linted, states sent to the whole-state lint, segments seen,
    segments parsed (not found in the cache), segments whose deferred work was skipped."""
    return dict(_caches.stats)


def segment_starts(lines: list[str]) -> list[int]:
    """0-based indices of the lines that start a segment (the first is 0). Only a line at column 0
    that starts code outside a triple-quoted string can start one; not ``else``/``elif``/``except``/
    ``finally``, not the line after a decorator or a backslash. This guess only decides where the
    state is cut; whether the cut is right is decided by parsing each segment alone."""
    starts = [0]
    quote = None  # the triple quote a string is open with, at the start of the line
    decorated = False
    continued = False
    code = False  # a statement started before this line
    for i, line in enumerate(lines):
        if (
            code
            and quote is None
            and not continued
            and not decorated
            and line
            and line[0] not in _NOT_START
            and not _CONTINUES.match(line)
        ):
            starts.append(i)
        if line and line[0] not in _NOT_START and quote is None:
            decorated = line[0] == "@"
            code = True
        if quote is not None or '"""' in line or "'''" in line:
            quote = _scan_quotes(line, quote)
        continued = line.endswith("\\")
    return starts


def _scan_quotes(line: str, quote: str | None) -> str | None:
    """The triple quote still open at the end of ``line``, given the one open at its start."""
    single = None
    for match in _QUOTE_TOKENS.finditer(line):
        token = match.group()
        if quote is not None:
            if token == quote:
                quote = None
        elif single is not None:
            if token == single:
                single = None
        elif token == "#":
            break
        elif token in ('"""', "'''"):
            quote = token
        elif token in ('"', "'"):
            single = token
    return quote


def _parse(text: str) -> ast.Module | None:
    try:
        return _lint.parse(text)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None


def lint_errors(source: str) -> list[int]:
    """``lint.lint_errors(source)`` (pyflakes + compiler, no missing-import check): the sorted
    1-based lines with errors, computed from the segments that changed since the states before."""
    with _lint.AST_LOCK:  # see AST_LOCK: trees are made and compiled one thread at a time
        return _lint_errors(source)


def _lint_errors(source: str) -> list[int]:
    caches = _caches
    caches.stats["states"] += 1
    if not ENABLED or "\r" in source or "barry_as_FLUFL" in source:
        return _whole(source, "excluded")
    lines = source.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    starts = segment_starts(lines)
    if len(starts) == 1:  # one top-level statement (a lone function): nothing to reuse
        return _whole(source, "one_segment")
    bounds = starts[1:] + [len(lines)]
    texts = ["".join(line + "\n" for line in lines[a:b]) for a, b in zip(starts, bounds, strict=True)]
    if caches.lines > _LINE_BUDGET:
        caches.clear()
    trees, body, top, used = caches.trees, [], {}, set()
    caches.stats["segments"] += len(texts)
    for k, text in enumerate(texts):
        tree = trees.get(text, False)
        if tree is False or id(tree) in used:  # a text twice in one state gets its own nodes
            tree = _parse(text)
            caches.stats["parsed"] += 1
            if text not in trees:
                trees[text] = tree
                caches.lines += text.count("\n")
                if tree is not None and _SCOPE_WORDS.search(text) and _declares(tree):
                    caches.declares.add(text)
        if tree is None:
            return _whole(source, "unparsed")
        if text in caches.declares:
            return _whole(source, "global")
        used.add(id(tree))
        for node in tree.body:
            top[id(node)] = k
        body += tree.body
    flags = 0
    if "__future__" in source:
        flags = _future_flags(body)
        if flags is None:
            return _whole(source, "late_future")
    module = ast.Module(body=body, type_ignores=[])
    checker = _SegmentChecker(module, top, texts, caches.memo)
    if checker.tainted == "replay":
        caches.stats["replay_again"] = caches.stats.get("replay_again", 0) + 1
        checker = _SegmentChecker(module, top, texts, caches.memo, replay=False)
    if checker.tainted:
        return _whole(source, "tainted: " + checker.tainted)
    caches.stats["skipped"] += len(checker.skipped)
    caches.stats["replayed"] = caches.stats.get("replayed", 0) + len(checker.replayed)
    found = {starts[seg] + line for seg, line, _ in checker.found}
    for seg, messages in checker.skipped.items():
        found.update(starts[seg] + line for line in messages)
    if not found:
        for text in texts:
            if (text, flags) in caches.compiled:
                continue
            if not _compiles(trees.get(text) or _parse(text), flags):
                return _whole(source, "uncompiled")
            caches.compiled.add((text, flags))
        return []
    last = max(1, len(lines))
    return sorted({min(max(line, 1), last) for line in found})


def _declares(tree: ast.Module) -> bool:
    return any(isinstance(node, ast.Global | ast.Nonlocal) for node in ast.walk(tree))


def _future_flags(body: list[ast.stmt]) -> int | None:
    """The compiler flags of the state's ``from __future__`` imports, or None when one is not in
    the leading docstring-and-futures prefix (the compiler rejects it there: whole-state lint)."""
    flags, i = 0, 0
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        i = int(isinstance(body[0].value.value, str))
    while i < len(body) and isinstance(body[i], ast.ImportFrom) and body[i].module == "__future__":
        for alias in body[i].names:
            feature = getattr(__future__, alias.name, None)
            if isinstance(feature, __future__._Feature):
                flags |= feature.compiler_flag
        i += 1
    if any(isinstance(node, ast.ImportFrom) and node.module == "__future__" for node in body[i:]):
        return None
    return flags


def _compiles(tree: ast.Module | None, flags: int = 0) -> bool:
    """Whether the segment compiles alone, with the state's future features."""
    if tree is None:
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(tree, "<lintseq>", "exec", flags=flags, dont_inherit=True)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return True


def _whole(source: str, reason: str) -> list[int]:
    _caches.stats["whole"] += 1
    _caches.stats[reason] = _caches.stats.get(reason, 0) + 1
    return _lint.lint_errors(source)
