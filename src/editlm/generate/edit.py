"""Edits proposed by a diff model for a person's file: the core of ``editlm edit`` and the server.

The prompt is the diff-model format (``<NME> name / <BEF> file / <MSG> message / <DFF>``), with a
hunk header after ``<DFF>`` when the lines to change are given. Each sampled diff goes through the
edit core (:func:`editlm.edits.diff_model.extract_diff`, :func:`editlm.edits.apply_diff_report`):
one that does not apply, or (for Python) whose result does not parse, is kept with its reason,
never applied. The file before is the prediction (the diff's context and ``-`` lines copy it), so
engines that speculate decode it faster with the same output.
"""

from __future__ import annotations

import ast
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from editlm.edits import DiffError, apply_diff_report
from editlm.edits import extract_diff as extract_from_text
from editlm.edits.diff_model import NAME_TAG, DiffSample, FormatError, extract_diff
from editlm.generate.engines import Engine, SamplingParams


class EditRequestError(ValueError):
    """The file, message or line range cannot make a prompt."""


@dataclass
class Proposal:
    diff: str
    program: str | None
    error: str | None
    logprob: float | None
    placements: list[str] = field(default_factory=list)
    trailing: str = ""
    finish: str = "stop"

    @property
    def ok(self) -> bool:
        return self.program is not None


def hunk_header(source: str, lines: tuple[int, int]) -> str:
    """``@@ -A,N +A,N @@`` for lines A..B (1-based, inclusive) of ``source``."""
    first, last = lines
    count = source.count("\n") + (0 if source.endswith("\n") or not source else 1)
    if not 1 <= first <= last or last > max(count, 1):
        raise EditRequestError(f"lines {first}-{last} are not within the file's {count} lines")
    n = last - first + 1
    return f"@@ -{first},{n} +{first},{n} @@"


def parse_lines(spec: str | None) -> tuple[int, int] | None:
    """``"12-30"`` or ``"12"`` -> (12, 30) / (12, 12)."""
    if not spec:
        return None
    first, _, last = spec.partition("-")
    try:
        return int(first), int(last or first)
    except ValueError:
        raise EditRequestError(f"--lines takes A-B (1-based line numbers), not {spec!r}") from None


def edit_prompt(name: str, source: str | None, message: str, header: str | None = None) -> str:
    try:
        return DiffSample(name, source, message.strip().replace("\n", " "), "").prompt(header)
    except FormatError as exc:
        raise EditRequestError(str(exc)) from None


def check_program(name: str, program: str) -> str | None:
    """Why ``program`` cannot be the file ``name`` (a Python file that does not parse), or None."""
    if not name.endswith((".py", ".pyi")):
        return None
    try:
        ast.parse(program)
    except SyntaxError as exc:
        return f"the edited file does not parse: {exc.msg} (line {exc.lineno})"
    except ValueError as exc:  # null bytes
        return f"the edited file does not parse: {exc}"
    return None


def to_proposal(
    name: str, source: str, text: str, header: str | None, logprob=None, finish="stop"
) -> Proposal:
    """One raw completion, made a diff and applied (or refused with its reason)."""
    if header:
        # the prompt ended with the hunk header and a newline: the completion is the hunk body
        body = text.split(NAME_TAG, 1)[0]
        diff = extract_from_text(header + "\n" + body)
    else:
        diff = extract_diff(text)
    try:
        applied = apply_diff_report(source, diff, require_newline=True)
    except DiffError as exc:
        return Proposal(diff, None, str(exc), logprob, finish=finish)
    if applied.text == source:
        return Proposal(diff, None, "the diff changes nothing", logprob, finish=finish)
    problem = check_program(name, applied.text)
    placements = [str(p) for p in applied.placements]
    if problem:
        return Proposal(diff, None, problem, logprob, placements, applied.trailing, finish)
    return Proposal(diff, applied.text, None, logprob, placements, applied.trailing, finish)


@dataclass(frozen=True)
class EditJob:
    """What to ask the engine for one edit request."""

    prompt: str
    header: str | None
    params: SamplingParams


def edit_job(
    name: str,
    source: str | None,
    message: str,
    params: SamplingParams,
    lines: tuple[int, int] | None = None,
    header: str | None = None,
) -> EditJob:
    if lines:
        header = hunk_header(source or "", lines)
    prompt = edit_prompt(name, source, message, header)
    return EditJob(
        prompt, header, SamplingParams(**{**params.__dict__, "stop": tuple(params.stop) or (NAME_TAG,)})
    )


def rank(name: str, source: str, header: str | None, completions) -> list[Proposal]:
    """Completions made proposals: applicable ones first (by logprob), duplicates merged."""
    proposals = [to_proposal(name, source, c.text, header, c.logprob, c.finish) for c in completions]
    seen, unique = set(), []
    for p in proposals:
        key = p.program if p.ok else ("error", p.diff)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    score = lambda p: (p.ok, p.logprob if p.logprob is not None else float("-inf"))  # noqa: E731
    return sorted(unique, key=score, reverse=True)


def propose(
    engine: Engine,
    name: str,
    source: str,
    message: str,
    n: int,
    params: SamplingParams,
    lines: tuple[int, int] | None = None,
) -> list[Proposal]:
    """``n`` sampled edits of ``source``, ranked by :func:`rank`. The file is the prediction."""
    job = edit_job(name, source, message, params, lines)
    completions = engine.sample([job.prompt], n, job.params, predictions=[source])[0]
    return rank(name, source, job.header, completions)


def write_atomically(path: Path, text: str, backup: bool = True) -> Path | None:
    """Replace ``path`` with ``text`` atomically (same directory, same mode); the old file is kept
    as ``PATH.bak`` (``PATH.bak.1`` ... when that exists). Returns the backup's path."""
    path = Path(path)
    saved = None
    if backup and path.exists():
        saved = path.with_name(path.name + ".bak")
        k = 1
        while saved.exists():
            saved = path.with_name(f"{path.name}.bak.{k}")
            k += 1
        saved.write_bytes(path.read_bytes())
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return saved
