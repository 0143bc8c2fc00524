"""Which lines of a Python program carry lint errors: the oracle that LintSeq deletes by.

The default linter runs in process and touches no file: ``ast.parse`` for syntax errors, pyflakes on
the tree for undefined names and the other errors it can tell, and ``compile`` on the same tree for
the errors only the compiler reports (bad ``nonlocal``/``global``, ``await`` outside ``async def``).
That is 20-100 times cheaper per call than the reference, which runs pylint on a temporary file
for every call (the gap is widest on short programs; `benchmarks/lintseq_speed.py`).

Imports of modules that are not installed are not errors by default: the reference treats them as
errors, so its data depends on the machine that made it. ``missing_imports=True`` restores that.
``linter="pylint"`` runs pylint with the reference's exact options and message filter, for ablations.
"""

from __future__ import annotations

import ast
import collections
import functools
import hashlib
import importlib.util
import inspect
import io
import os
import re
import tempfile
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import pyflakes.checker
import pyflakes.messages as _m

LINTERS = ("pyflakes", "pylint")

# pyflakes messages that are errors: the program raises (at compile time or when the line runs).
# Warnings (unused names, redefinitions, `is` with a literal, f-strings without placeholders, ...)
# are left alone, as the reference leaves pylint's W/C/R messages alone. getattr: names differ
# between pyflakes versions.
_ERROR_NAMES = (
    "UndefinedName",
    "UndefinedLocal",
    "UndefinedExport",
    "DuplicateArgument",
    "ImportStarNotPermitted",
    "LateFutureImport",
    "FutureFeatureNotDefined",
    "ReturnOutsideFunction",
    "YieldOutsideFunction",
    "ContinueOutsideLoop",
    "BreakOutsideLoop",
    "DefaultExceptNotLast",
    "TwoStarredExpressions",
    "TooManyExpressionsInStarredAssignment",
    "ForwardAnnotationSyntaxError",
    "InvalidPrintSyntax",
    "PercentFormatInvalidFormat",
    "PercentFormatMixedPositionalAndNamed",
    "PercentFormatUnsupportedFormatCharacter",
    "PercentFormatPositionalCountMismatch",
    "PercentFormatExpectedMapping",
    "PercentFormatExpectedSequence",
    "PercentFormatMissingArgument",
    "PercentFormatStarRequiresSequence",
    "StringDotFormatInvalidFormat",
    "StringDotFormatMissingArgument",
    "StringDotFormatMixingAutomatic",
    "LazyImportNotAtModuleScope",
    "LazyImportStarNotPermitted",
)
ERROR_MESSAGES: tuple[type, ...] = tuple(getattr(_m, n) for n in _ERROR_NAMES if hasattr(_m, n))

_ON_LINE = re.compile(r"on line (\d+)")
# pyflakes 4.1's ``Checker.__init__``, whose body the fast checker below repeats with one change; a
# pyflakes whose constructor differs gets the stock constructor (slower, same messages).
_KNOWN_INIT = "1661c8f3367a524c"
_BUILTIN_NAMES = frozenset(pyflakes.checker.builtin_vars) | pyflakes.checker._custom_builtins()
_per_thread = threading.local()
# CPython 3.11 keeps the AST converter's recursion depth in state shared by all threads, so two
# threads making or compiling trees at once can fail with "SystemError: AST constructor recursion
# depth mismatch" (seen on a Dask worker with two threads). Every lint holds this lock; the work
# is pure Python under the GIL, so threads lose no parallelism by it.
AST_LOCK = threading.RLock()


def _builtin_bindings() -> dict:
    """This thread's Builtin bindings, made once (Dask runs tasks in threads, and checkers mark
    bindings as used, so threads must not share them)."""
    bindings = getattr(_per_thread, "bindings", None)
    if bindings is None:
        bindings = _per_thread.bindings = {name: pyflakes.checker.Builtin(name) for name in _BUILTIN_NAMES}
    return bindings


def _init_fingerprint() -> str:
    try:
        with AST_LOCK:  # getsource parses the file
            source = inspect.getsource(pyflakes.checker.Checker.__init__)
    except (OSError, TypeError):
        return ""
    return hashlib.sha256(source.encode()).hexdigest()[:16]


class _Checker(pyflakes.checker.Checker):
    """pyflakes' checker with its ~160 builtin bindings made once per thread, not once per run.

    Stock pyflakes builds a ``Builtin`` binding for every builtin on every run and sends each through
    ``addBinding``'s redefinition checks: a fixed cost that is about an eighth of LintSeq's time. Here
    the bindings are reused and put into the module scope in one ``dict.update``; the only state a
    run leaves on them, their ``used`` mark, is reset first. ``tests/test_lint.py`` checks that the
    messages equal stock pyflakes' on thousands of programs.
    """

    _fast = _init_fingerprint() == _KNOWN_INIT

    def __init__(self, tree, filename="(none)"):
        if not self._fast:
            super().__init__(tree, filename=filename)
            return
        self._nodeHandlers = {}
        self._parents = {}
        self._node_depths = {}
        self._deferred = collections.deque()
        self.deadScopes = []
        self.messages = []
        self.filename = filename
        self.builtIns = _BUILTIN_NAMES
        self.withDoctest = "PYFLAKES_DOCTEST" in os.environ
        self.exceptHandlers = [()]
        self.root = tree
        self.scopeStack = []
        self._running_deferred = False
        scope_tp = pyflakes.checker.Checker._ast_node_scope[type(tree)]
        with self.in_scope(scope_tp):
            bindings = _builtin_bindings()
            for binding in bindings.values():
                binding.used = False
            self.scope.update(bindings)
            self.handleChildren(tree)
            self._run_deferred()
        self.checkDeadScopes()


@dataclass(frozen=True)
class LintError:
    """One error: its 1-based line, a short code (``syntax``, ``compile``, a pyflakes message class,
    ``missing-import`` or a pylint message id) and the message."""

    line: int
    code: str
    message: str


def lint(
    source: str, *, linter: str = "pyflakes", missing_imports: bool = False, compile_check: bool = True
) -> list[LintError]:
    """All lint errors of ``source``, each on a line that exists in it (1..number of lines).
    ``compile_check=False`` skips the compiler's own checks (bad ``nonlocal``, ``await`` outside
    ``async def``, a starred expression alone, ...): LintSeq never does, because whether a state
    has such an error depends on that state, not on the program it was cut from."""
    if linter == "pyflakes":
        with AST_LOCK:
            errors = _pyflakes_errors(source, missing_imports, compile_check)
    elif linter == "pylint":
        with AST_LOCK:
            errors = _pylint_errors(source)
    else:
        raise ValueError(f"unknown linter {linter!r}; choose from {LINTERS}")
    last = max(1, source.count("\n") + (0 if source.endswith("\n") else 1))
    return [LintError(min(max(e.line, 1), last), e.code, e.message) for e in errors]


def lint_errors(
    source: str, *, linter: str = "pyflakes", missing_imports: bool = False, compile_check: bool = True
) -> list[int]:
    """The sorted 1-based lines that carry lint errors (the lines LintSeq deletes)."""
    errors = lint(source, linter=linter, missing_imports=missing_imports, compile_check=compile_check)
    return sorted({e.line for e in errors})


def syntax_error(source: str) -> LintError | None:
    """The syntax or compile error of ``source``, or None when it compiles."""
    with AST_LOCK:
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError) as exc:
            return _syntax(exc, source, "syntax")
        return _compile_error(tree, source)


def make_linter(linter: str = "pyflakes", missing_imports: bool = False) -> Callable[[str], list[int]]:
    """``lint_errors`` with its options bound: the function the sampler calls on every state, with
    the compiler's checks always on (each state is judged on its own text). The default (pyflakes,
    no missing-import check) is :func:`editlm.data.lintseq.incremental.lint_errors`: the same
    lines, reusing the parse, compile and function-body checks of unchanged top-level statements."""
    if linter not in LINTERS:
        raise ValueError(f"unknown linter {linter!r}; choose from {LINTERS}")
    if linter == "pyflakes" and not missing_imports:
        # the same lines, from the top-level segments that changed since the last state
        from editlm.data.lintseq import incremental

        if incremental.ENABLED:
            return incremental.lint_errors
    return functools.partial(lint_errors, linter=linter, missing_imports=missing_imports)


# --------------------------------------------------------------------------- pyflakes + compile


def parse(source: str) -> ast.Module:
    """``ast.parse`` without warnings (invalid escape sequences and the like are not errors)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(source)


def _pyflakes_errors(source: str, missing_imports: bool, compile_check: bool = True) -> list[LintError]:
    try:
        tree = parse(source)
    except (SyntaxError, ValueError) as exc:  # ValueError: NUL bytes on some Python versions
        return [_syntax(exc, source, "syntax")]
    return tree_errors(tree, missing_imports, source, compile_check)


def tree_errors(
    tree: ast.Module, missing_imports: bool = False, source: str = "", compile_check: bool = True
) -> list[LintError]:
    """The errors of a parsed program (pyflakes, then the compiler); lines as in the tree."""
    checker = _Checker(tree, filename="<lintseq>")
    errors = [
        LintError(m.lineno, type(m).__name__, m.message % m.message_args)
        for m in checker.messages
        if isinstance(m, ERROR_MESSAGES)
    ]
    if missing_imports:
        errors += _missing_imports(tree)
    if not errors and compile_check:
        # Only the compiler sees some errors (nonlocal without binding, await outside async, ...).
        # Compiling the tree we already have costs a fraction of a parse; skip it when pyflakes
        # already found lines to delete (they are deleted and the rest is linted again anyway).
        error = _compile_error(tree, source) if not source else _compile_error_by_statement(tree, source)
        if error is not None:
            errors.append(error)
    return errors


_compiled_ok = threading.local()  # per thread: top-level statement text -> it compiles alone
_CACHE_SIZE = 8192


def _compile_error_by_statement(tree: ast.Module, source: str) -> LintError | None:
    """:func:`_compile_error`'s answer, compiling only the top-level statements not seen before.

    Consecutive LintSeq states differ in one or a few top-level statements, and the compiler's own
    errors (symtable and code generation) are confined to the top-level statement they are in, with
    two exceptions that make the whole module compile as before: ``from __future__`` (it changes how
    every statement compiles) and a module-level ``global``/``nonlocal``. So: each statement's text
    is looked up in a per-thread cache of statements that compiled alone; the others are compiled
    alone; if every one compiles, so does the module. If one does not, the whole module is compiled
    to report exactly the error (and line) the compiler reports for the state. The answer is the
    same as compiling the state (``tests/test_lint.py`` checks it on states of real code); the cost
    per state falls from the whole program to what changed.
    """
    body = tree.body
    if any(
        isinstance(node, ast.Global | ast.Nonlocal)
        or (isinstance(node, ast.ImportFrom) and node.module == "__future__")
        for node in body
    ):
        return _compile_error(tree, source)
    cache = getattr(_compiled_ok, "texts", None)
    if cache is None:
        cache = _compiled_ok.texts = {}
    lines = source.split("\n")
    for node in body:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", ())])
        # the text with the statement's columns: two statements on one line (``a; b``) differ
        text = ("\n".join(lines[first - 1 : node.end_lineno]), node.col_offset, node.end_col_offset)
        if text in cache:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                compile(ast.Module(body=[node], type_ignores=[]), "<lintseq>", "exec", dont_inherit=True)
        except (SyntaxError, ValueError):
            return _compile_error(tree, source)
        if len(cache) >= _CACHE_SIZE:
            cache.clear()
        cache[text] = True
    return None


def _compile_error(tree: ast.Module, source: str) -> LintError | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(tree, "<lintseq>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        return _syntax(exc, source, "compile")
    return None


def _syntax(exc: Exception, source: str, code: str) -> LintError:
    """The line to delete for a syntax error: the line named in "... on line N" when there is one
    (an empty block is reported on the line after its header), else the error's own line."""
    message = str(getattr(exc, "msg", exc))
    named = _ON_LINE.search(message)
    if named:
        line = int(named.group(1))
    elif isinstance(exc, SyntaxError) and exc.lineno:
        line = exc.lineno
    elif "\x00" in source:
        line = source[: source.index("\x00")].count("\n") + 1
    else:
        line = source.count("\n") + 1
    return LintError(line, code, message)


def _missing_imports(tree: ast.Module) -> list[LintError]:
    """Imports whose top-level module is not installed here (pylint's E0401, as in the reference)."""
    errors = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # a relative import has no package to resolve against in a lone program
                errors.append(LintError(node.lineno, "missing-import", "relative import outside a package"))
                continue
            names = [node.module or ""]
        else:
            continue
        for name in names:
            if name != "__future__" and not _installed(name.split(".")[0]):
                errors.append(LintError(node.lineno, "missing-import", f"unable to import {name!r}"))
    return errors


@functools.lru_cache(maxsize=4096)
def _installed(top: str) -> bool:
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


# --------------------------------------------------------------------------- pylint (reference mode)

_PYLINT_ARGS = (
    "--disable=C,R",
    "--reports=n",
    "--score=n",
    "--unsafe-load-any-extension=y",
    "--generated-members=cv2.*",
    "--msg-template={C}|{msg_id}|{line}|{column}|{msg}",
)


def _pylint_errors(source: str) -> list[LintError]:
    """The reference's ``file_linter``: pylint on a file, E and F messages plus W0311 and W0231."""
    import contextlib

    from pylint.lint import Run

    try:
        from astroid import MANAGER
    except ImportError:  # pragma: no cover - astroid ships with pylint
        MANAGER = None
    fd, path = tempfile.mkstemp(suffix=".py", prefix="lintseq_")
    out = io.StringIO()
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(source)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            try:
                Run([*_PYLINT_ARGS, path], exit=False)
            except Exception:  # the reference swallows pylint crashes too; the output so far counts
                pass
    finally:
        os.unlink(path)
        if MANAGER is not None:  # the reference grows by one cached module per call; we do not
            name = os.path.splitext(os.path.basename(path))[0]
            MANAGER.astroid_cache.pop(name, None)
    errors = []
    for row in out.getvalue().split("\n"):
        parts = row.split("|")
        if len(parts) != 5:
            continue
        category, msg_id, line, _column, message = parts
        if category == "W" and msg_id not in ("W0311", "W0231"):
            continue  # everything else that is printed counts, as in the reference (C, R are disabled)
        if msg_id == "E0001" and "on line" in message:
            line = message[: message.rfind("(")].rstrip().split(" ")[-1]
        try:
            errors.append(LintError(int(line), msg_id, message))
        except ValueError:
            continue
    return errors
