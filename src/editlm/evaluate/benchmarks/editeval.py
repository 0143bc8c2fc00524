"""EditEval (InstructCoder; Hu et al. 2023): 194 instruction-driven edits (``input`` + ``instruction``
-> ``output``), most on HumanEval-style functions, each with a test.

Upstream runs ``test`` (a ``def check():`` that reads the program's globals) in the program's own
process, after placing the code into its ``context`` (``{{Code}}`` marks where). Here a test runs
outside the candidate's process, so it must reach the program through one function called with plain
data: a test that names exactly one function of the program, and only to call it, becomes
``check(that_function)`` (HumanEval's form). Tests that read other globals, class instances,
attributes such as ``__doc__``, or the program text cannot be scored that way; they are left out with
the reason (``Benchmark.excluded``), never scored in the candidate's process silently.

Prompt formats: ``diff`` (``<MSG>`` is the instruction, the file is ``input``), ``response`` (the
instruction and the code, for instruction-tuned models; the answer is the edited code), ``completion``
(the original code, the instruction as a comment, then the edited code). Scored by pass@k on the tests
and by exact match with ``output`` (``--metrics``).
"""

from __future__ import annotations

import ast
import builtins
import warnings

from editlm.evaluate.benchmarks import Problem, SampleError, register_benchmark
from editlm.evaluate.benchmarks.shipped import ShippedBenchmark, jsonl

DATA = "edit_eval.jsonl"
SLOT = "{{Code}}"
_BUILTINS = set(dir(builtins))


def wrap(context: str, code: str) -> str:
    """The program a piece of code stands in: ``context`` with ``{{Code}}`` replaced, or the code."""
    return context.replace(SLOT, code) if context and SLOT in context else code


def defined_names(program: str) -> set[str]:
    tree = ast.parse(program)
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


DISPATCH = "_editlm_call"


def dispatcher(functions: list[str]) -> str:
    """The candidate's side of a test that calls several of its functions: one entry point."""
    table = ", ".join(f"{name!r}: {name}" for name in functions)
    return (
        f"\n\n_editlm_functions = {{{table}}}\n\n\n"
        f"def {DISPATCH}(name, args, kwargs):\n"
        "    return _editlm_functions[name](*args, **kwargs)\n"
    )


def channel_test(test: str, program: str) -> tuple[str, str, list[str]]:
    """``(entry_point, test in check(candidate) form, functions called)``; raises ValueError with the
    reason when the test needs more of the program than its functions, called with plain data.

    One function: the test becomes ``check(that_function)``. Several: ``check(_editlm_call)``, each
    name bound inside ``check`` to a call through the dispatcher (:func:`dispatcher`)."""
    try:
        with warnings.catch_warnings():  # upstream strings with invalid escapes warn; they still parse
            warnings.simplefilter("ignore")
            tree = ast.parse(test)
            defined = defined_names(program)
            functions = _functions(program)
    except SyntaxError as exc:
        raise ValueError(f"the reference program or test does not parse ({exc.msg})") from None
    checks = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"]
    if len(checks) != 1 or checks[0].args.args:
        raise ValueError("the test has no `def check():`")
    local = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    local |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    local |= {a.arg for a in ast.walk(tree) if isinstance(a, ast.arg)}
    local |= {n.name for n in ast.walk(tree) if isinstance(n, ast.ExceptHandler) and n.name}
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    local |= {(a.asname or a.name).split(".")[0] for n in imports for a in n.names}
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    from_program = sorted((used - local - _BUILTINS) | (used & defined - local))
    if not from_program:
        raise ValueError("the test reads nothing from the program")
    timing = {"time", "timeit"} & {a.name.split(".")[0] for n in imports for a in n.names}
    if timing:
        raise ValueError(
            "the test times the program against its own code: through the channel every call pays a "
            "round trip, so the comparison would not be fair"
        )
    for name in from_program:
        plain_calls = sum(
            isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == name
            for n in ast.walk(tree)
        )
        uses = sum(isinstance(n, ast.Name) and n.id == name for n in ast.walk(tree))
        if name not in called or plain_calls != uses:
            raise ValueError(f"the test uses {name} other than by calling it (attributes, objects)")
        if name not in functions:
            # a class called for an instance: the instance cannot cross to the tests
            raise ValueError(f"the test calls {name}, which is not a function of the program (a class?)")
    if len(from_program) == 1:
        checks[0].args.args = [ast.arg(from_program[0])]
        return from_program[0], ast.unparse(tree) + "\n", from_program
    checks[0].args.args = [ast.arg(DISPATCH)]
    binds = [
        ast.parse(f"{name} = lambda *args, **kwargs: {DISPATCH}({name!r}, list(args), kwargs)").body[0]
        for name in from_program
    ]
    checks[0].body[:0] = binds
    return DISPATCH, ast.unparse(tree) + "\n", from_program


def _functions(program: str) -> set[str]:
    tree = ast.parse(program)
    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def load() -> tuple[list[Problem], dict[str, str]]:
    problems, left_out = [], {}
    for row in jsonl("editeval", DATA):
        context = row.get("context") or ""
        reference = wrap(context, row["output"])
        try:
            entry, test, functions = channel_test(row["test"], reference)
        except ValueError as exc:
            left_out[row["task_id"]] = str(exc)
            continue
        original = wrap(context, row["input"])
        problems.append(
            Problem(
                task_id=row["task_id"],
                prompt=f"# Original code:\n{original}\n# {row['instruction'].strip()}\n# Edited code:\n",
                test=test,
                entry_point=entry,
                source=row["input"],
                filename=f"{entry}.py",
                message=row["instruction"].strip(),
                instruction=row["instruction"].strip(),
                edit_source=row["input"],
                canonical=reference,
                group="in context" if context else "whole program",
                meta={"context": context, "reference_output": row["output"], "functions": functions},
            )
        )
    return problems, left_out


class EditEval(ShippedBenchmark):
    name = "editeval"
    description = "EditEval (InstructCoder): 194 instruction-driven code edits with tests"
    timeout = 10.0

    def load(self) -> tuple[list[Problem], dict[str, str]]:
        return load()

    def harness(self, problem: Problem) -> str:
        functions = problem.meta.get("functions", [])
        return dispatcher(functions) if len(functions) > 1 else ""

    def response_prompt(self, problem: Problem) -> str:
        return f"{problem.instruction}\n\n```python\n{problem.source}\n```\n"

    def program(self, problem: Problem, sample: dict, *, cut: bool = False) -> str:
        """The edited code placed in its context (a ``completion`` continues a prompt that has it)."""
        program = super().program(problem, sample, cut=cut)
        if sample.get("completion") is not None:
            return program
        context = problem.meta.get("context", "")
        if context and SLOT not in context:
            raise SampleError("the context has no {{Code}} slot")
        return wrap(context, program)


register_benchmark("editeval", EditEval)
