"""The in-process linter: which lines carry errors, and only errors."""

import pytest

from editlm.data.lintseq.lint import lint, lint_errors, make_linter, syntax_error


@pytest.mark.parametrize(
    ("source", "lines"),
    [
        ("def f():\n    return x\n", [2]),  # undefined name
        ("def f():\n    print(a)\n    a = 1\n", [2]),  # used before assignment
        ("def f(a, a):\n    pass\n", [1]),  # duplicate argument
        ("x = 1\nreturn x\n", [2]),  # return outside function
        ("yield 1\n", [1]),
        ("x = 1\nbreak\n", [2]),
        ("continue\n", [1]),
        ("def f():\n    await g()\n\n\nasync def g():\n    pass\n", [2]),  # compiler-only error
        ("def f():\n    nonlocal y\n", [2]),
        ("x = 1\n\n\ndef f():\n    x = 2\n    global x\n", [6]),
        ("print('%s %s' % (1,))\n", [1]),
        ("__all__ = ['missing']\n", [1]),
        ("x = (1,\n     2\n", [1]),  # unclosed bracket: the line that opens it
        ("x = 1\nif x:\ny = 2\n", [2]),  # empty block: the header, not the line after it
        ('def f():\n    """doc\n    return 1\n', [2]),  # unterminated string: where it starts
        ("x = 1\n  y = 2\n", [2]),  # unexpected indent
    ],
)
def test_errors_are_mapped_to_the_lines_to_delete(source, lines):
    assert lint_errors(source) == lines


@pytest.mark.parametrize(
    "source",
    [
        "",
        "import os\n",  # unused import: a warning, not an error
        "def f():\n    x = 1\n",  # unused variable
        "x = 1\nx = 2\n",
        "if (1, 2):\n    pass\n",
        "print(f'plain')\n",
        "try:\n    import numpy\nexcept ImportError:\n    numpy = None\n",
        "def f():\n    try:\n        return undefined_thing\n    except NameError:\n        return 0\n",
        "import not_installed_anywhere_xyz\nprint(not_installed_anywhere_xyz)\n",
    ],
)
def test_warnings_and_clean_code_are_not_errors(source):
    assert lint_errors(source) == []


def test_missing_imports_are_errors_only_when_asked():
    source = "import os\nimport not_installed_anywhere_xyz\nfrom . import sibling\n"
    assert lint_errors(source) == []
    assert lint_errors(source, missing_imports=True) == [2, 3]


def test_every_reported_line_exists_in_the_text():
    for source in ["x = (", "def f(:\n", "\x00", "x = 1\n\x00\n", "  x", "'''", "f(\n\n\n"]:
        n_lines = max(1, len(source.split("\n")) - (1 if source.endswith("\n") else 0))
        for error in lint(source):
            assert 1 <= error.line <= n_lines, (source, error)


def test_syntax_error_reports_syntax_and_compile_errors_only():
    assert syntax_error("def f():\n    return x\n") is None
    assert syntax_error("x = (\n").code == "syntax"
    assert syntax_error("def f():\n    nonlocal q\n").code == "compile"


def test_unknown_linter_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown linter"):
        lint("x = 1\n", linter="flake9")
    with pytest.raises(ValueError, match="unknown linter"):
        make_linter("flake9")


def test_pylint_mode_follows_the_reference_filter():
    # E/F messages and bad indentation count; other warnings (unused import) do not.
    assert lint_errors("import os\ndef f():\n    return x\n", linter="pylint") == [3]
    assert lint_errors("if True:\n   x = 1\n", linter="pylint") == [2]  # W0311 bad-indentation
    assert lint_errors("x = 1\nif x:\ny = 2\n", linter="pylint") == [2]
    assert lint_errors("import not_installed_anywhere_xyz\n", linter="pylint") == [1]


def test_compiler_only_errors_are_found_in_every_state() -> None:
    """Each state is compiled on its own: an error only the compiler sees is found even where the
    program it was cut from has none of the constructs that usually cause one (issue 19)."""
    lint = make_linter()
    # a line of a string's contents, left alone by a partial deletion, is a starred expression
    assert lint('x = """\n"""\n* x\n') == [3]
    # the state without 'x = 1': nonlocal has no binding, which only the compiler reports
    state = "def outer():\n    def inner():\n        nonlocal x\n        x += 1\n    return inner\n"
    assert lint(state) == [3]


def _messages(checker) -> list[tuple]:
    return sorted((type(m).__name__, m.lineno, repr(m.message_args)) for m in checker.messages)


def test_fast_checker_reports_exactly_what_stock_pyflakes_reports() -> None:
    """The reused builtin bindings change nothing: same messages as pyflakes on programs and on
    thousands of random line-deletion states of them (undefined names, locals used before
    assignment, ...), run one after another so state left on the bindings would show, in two threads."""
    import ast
    import random
    import threading
    import warnings

    import pyflakes.checker

    from editlm.data.corpus import build_corpus
    from editlm.data.lintseq.lint import _Checker

    assert _Checker._fast, "pyflakes' constructor changed: update _KNOWN_INIT after checking it"
    programs = [row["program"] for row in build_corpus(limit=60, seed=4)]
    programs.append("def f():\n    print(len)\n    len = 3\n\nlen = 1\nprint = print\n")
    rng = random.Random(0)
    states = []
    for program in programs:
        lines = program.splitlines(keepends=True)
        for _ in range(40):
            drop = set(rng.sample(range(len(lines)), k=min(len(lines), rng.choice([1, 2]))))
            states.append("".join(line for i, line in enumerate(lines) if i not in drop))
    trees = []
    for source in programs + states:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                trees.append(ast.parse(source))
        except SyntaxError:
            continue
    assert len(trees) > 1000
    mismatches: list = []

    def compare(chunk):
        for tree in chunk:
            if _messages(_Checker(tree)) != _messages(pyflakes.checker.Checker(tree)):
                mismatches.append(ast.unparse(tree)[:200])

    threads = [threading.Thread(target=compare, args=(trees[k::2],)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert mismatches == []


def test_compiling_by_statement_answers_as_compiling_the_state() -> None:
    """The per-statement compile cache changes no answer: on thousands of line-deletion states of
    real programs (and on constructs with module-wide compiler rules), lint with it equals lint
    with one compile of the whole state."""
    import random

    import editlm.data.lintseq.lint as lint_module
    from editlm.data.lintseq.real_code import real_programs

    programs = [r["program"] for r in real_programs(16, seed=8, max_lines=300)]
    programs += [
        "x = 1; *y\n",
        "x = 1\nglobal x\n",
        "from __future__ import annotations\ndef f(a: undefined_name): pass\n",
        "def f():\n    nonlocal q\n",
        "async def f():\n    pass\nawait f()\n",
    ]
    rng = random.Random(0)
    states = list(programs)
    for program in programs:
        lines = program.split("\n")
        for _ in range(40):
            drop = set(rng.sample(range(len(lines)), k=min(len(lines), rng.choice([1, 2, 3]))))
            states.append("\n".join(line for i, line in enumerate(lines) if i not in drop))
    cached = [lint(s) for s in states]
    original = lint_module._compile_error_by_statement
    lint_module._compile_error_by_statement = lambda tree, source: lint_module._compile_error(tree, source)
    try:
        whole = [lint(s) for s in states]
    finally:
        lint_module._compile_error_by_statement = original
    assert cached == whole
    assert sum(1 for errors in whole if any(e.code == "compile" for e in errors)) >= 3
