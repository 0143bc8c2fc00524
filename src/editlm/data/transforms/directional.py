"""Directional intermediate versions and noising tasks (DivoT5, REFERENCE.md section 2).

Two forms. ``divot5`` (the default of ``editlm directional``) is the released DivoT5 code's form:
snippet-level versions, one noising task per edit, task tokens; it lives in :mod:`.divot5`, which also
names the two bugs of the released code that editlm leaves behind. ``whole-file`` is described here.

From one edit (code before, code after, message), every task asks for the code *after*, so the
model learns the direction of evolution:

- ``intermediate``: split the change into hunks D1..Dn (difflib, line level); version t has the
  new side of the first t hunks and the old side of the rest (t = 0 is the old code, t = n the new
  code). Pairs (version t + message) -> new code for t = 0 and up to ``max_steps`` random t in 1..n-1;
  these rows also carry a diff-model ``text`` (file before = version t, diff = the remaining hunks).
- ``mask-unchanged``: span-mask ~30% of the tokens of unchanged lines of the old code and ~20% of
  the message;
- ``delete``: delete ~15% of the old code's tokens (the model must find where);
- ``insert``: insert a sentinel at ~15% of the token boundaries (noise the model must ignore);
- ``mask``: span-mask ~20% of the tokens of both message and old code.

Spans are replaced by numbered sentinels (``<extra_id_0>``, ... as in T5, whose tokenizer has them),
numbered through the code and then the message. Tokens are words, numbers and single punctuation
characters; whitespace is kept as it was, so a masked program keeps its layout.
"""

from __future__ import annotations

import difflib
import random
import re
from dataclasses import dataclass

from editlm.edits.diff import make_diff, split_lines
from editlm.edits.diff_model import DiffSample, FormatError

TASKS = ("intermediate", "mask-unchanged", "delete", "insert", "mask")
SENTINEL = "<extra_id_{}>"
MAX_SENTINEL = 99  # T5 and CodeT5 vocabularies stop at <extra_id_99>
FORMS = ("divot5", "whole-file")
_PIECES = re.compile(r"\s+|[A-Za-z_]\w*|\d+|\S")


@dataclass(frozen=True)
class NoiseRates:
    """Fractions of tokens noised by each task (defaults from REFERENCE.md section 2)."""

    unchanged_code: float = 0.30
    unchanged_message: float = 0.20
    delete: float = 0.15
    insert: float = 0.15
    mask: float = 0.20
    mean_span: float = 3.0


@dataclass(frozen=True)
class Example:
    """One training pair: the model reads :meth:`input` (``code`` and ``message``) and writes ``target``."""

    task: str
    code: str
    message: str
    target: str
    step: int | None = None
    n_hunks: int | None = None

    def input(self) -> str:
        return format_input(self.code, self.message)


def format_input(code: str, message: str) -> str:
    """The model input: code then message, with the diff-model tags."""
    return f"<BEF> {code}\n<MSG> {message}"


# --------------------------------------------------------------------------- intermediate versions


def hunks(before: str, after: str) -> list[tuple[int, int, int, int]]:
    """The changed line ranges ``(i1, i2, j1, j2)`` from before to after, in order."""
    matcher = difflib.SequenceMatcher(None, split_lines(before), split_lines(after), autojunk=False)
    return [(i1, i2, j1, j2) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"]


def intermediate(before: str, after: str, t: int, changes: list | None = None) -> str:
    """Version t: the first ``t`` hunks applied, the others not (0 <= t <= number of hunks)."""
    changes = hunks(before, after) if changes is None else changes
    if not 0 <= t <= len(changes):
        raise ValueError(f"t must be in 0..{len(changes)}")
    old, new = split_lines(before), split_lines(after)
    out: list[str] = []
    at = 0
    for number, (i1, i2, j1, j2) in enumerate(changes):
        out += old[at:i1]
        out += new[j1:j2] if number < t else old[i1:i2]
        at = i2
    out += old[at:]
    return "".join(out)


def intermediate_versions(before: str, after: str) -> list[str]:
    """All versions, from the old code (index 0) to the new code (last)."""
    changes = hunks(before, after)
    return [intermediate(before, after, t, changes) for t in range(len(changes) + 1)]


def intermediate_steps(n_hunks: int, rng: random.Random, max_steps: int = 3) -> list[int]:
    """t = 0 and up to ``max_steps`` distinct random t in 1..n-1, ascending."""
    inner = list(range(1, n_hunks))
    return [0] + sorted(rng.sample(inner, min(max_steps, len(inner))))


# --------------------------------------------------------------------------- noising


def _pieces(text: str) -> list[str]:
    return _PIECES.findall(text)


def _choose_spans(count: int, rate: float, mean_span: float, rng: random.Random) -> set[int]:
    """Indices (of ``count`` tokens) covered by random non-overlapping spans totalling ~``rate``."""
    if count == 0 or rate <= 0:
        return set()
    n_masked = min(count, max(1, round(count * rate)))  # a noising task always noises something
    free = count - n_masked
    # spans need an unmasked token between them, so at most free + 1 of them
    n_spans = max(1, min(n_masked, round(n_masked / mean_span), free + 1))
    cuts = sorted(rng.sample(range(1, n_masked), n_spans - 1))
    lengths = [b - a for a, b in zip([0, *cuts], [*cuts, n_masked], strict=True)]
    gaps = [0] + [1] * (n_spans - 1) + [0]
    for _ in range(free - (n_spans - 1)):
        gaps[rng.randrange(n_spans + 1)] += 1
    covered: set[int] = set()
    at = 0
    for gap, length in zip(gaps, lengths, strict=False):
        at += gap
        covered.update(range(at, at + length))
        at += length
    return covered


def _render(pieces: list[str], masked: set[int], sentinel: str, first: int) -> tuple[str, int]:
    """Pieces with each run of masked pieces (whitespace inside a run included) as one sentinel.

    Numbers stop at ``MAX_SENTINEL`` (T5/CodeT5 vocabularies end at ``<extra_id_99>``); the tokens of
    runs past it are left unmasked."""
    out: list[str] = []
    number = first
    run: list[str] | None = None
    pending = ""
    for i, piece in enumerate(pieces):
        if piece.isspace():
            if run is not None:
                pending += piece
            else:
                out.append(piece)
            continue
        if i in masked:
            run = [] if run is None else run
            run += [pending, piece]
            pending = ""
            continue
        if run is not None:
            out.append(sentinel.format(number) if number <= MAX_SENTINEL else "".join(run))
            number += number <= MAX_SENTINEL
            run = None
        out += [pending, piece]
        pending = ""
    if run is not None:
        out.append(sentinel.format(number) if number <= MAX_SENTINEL else "".join(run))
        number += number <= MAX_SENTINEL
    out.append(pending)
    return "".join(out), number


def span_mask(
    text: str,
    rate: float,
    rng: random.Random,
    *,
    maskable: set[int] | None = None,
    mean_span: float = 3.0,
    sentinel: str = SENTINEL,
    first: int = 0,
) -> tuple[str, int]:
    """Mask ~``rate`` of the tokens (only those whose piece index is in ``maskable``, when given) in
    spans of mean length ``mean_span``; returns the text and the next sentinel number."""
    pieces = _pieces(text)
    candidates = [i for i, p in enumerate(pieces) if not p.isspace() and (maskable is None or i in maskable)]
    chosen = _choose_spans(len(candidates), rate, mean_span, rng)
    return _render(pieces, {candidates[k] for k in chosen}, sentinel, first)


def delete_tokens(text: str, rate: float, rng: random.Random) -> str:
    """Delete ~``rate`` of the tokens (whitespace kept)."""
    pieces = _pieces(text)
    tokens = [i for i, p in enumerate(pieces) if not p.isspace()]
    drop = set(rng.sample(tokens, round(len(tokens) * rate))) if tokens else set()
    return "".join(p for i, p in enumerate(pieces) if i not in drop)


def insert_sentinels(text: str, rate: float, rng: random.Random, sentinel: str = SENTINEL) -> str:
    """Insert numbered sentinels before ~``rate`` of the tokens."""
    pieces = _pieces(text)
    tokens = [i for i, p in enumerate(pieces) if not p.isspace()]
    at = set(rng.sample(tokens, round(len(tokens) * rate))) if tokens else set()
    out, number = [], 0
    for i, piece in enumerate(pieces):
        if i in at and number <= MAX_SENTINEL:
            out.append(sentinel.format(number))
            number += 1
        out.append(piece)
    return "".join(out)


def unchanged_pieces(before: str, after: str) -> set[int]:
    """Indices of the pieces of ``before`` that lie on lines the edit leaves unchanged."""
    changed_lines: set[int] = set()
    for i1, i2, _, _ in hunks(before, after):
        changed_lines.update(range(i1, i2))
    out: set[int] = set()
    line = 0
    for i, piece in enumerate(_pieces(before)):
        if line not in changed_lines:
            out.add(i)
        line += piece.count("\n")
    return out


# --------------------------------------------------------------------------- all tasks of one edit


def directional_examples(
    before: str,
    after: str,
    message: str,
    rng: random.Random,
    *,
    tasks: tuple[str, ...] = TASKS,
    max_steps: int = 3,
    rates: NoiseRates = NoiseRates(),
    sentinel: str = SENTINEL,
) -> list[Example]:
    """The training pairs of one edit; empty when before == after."""
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown tasks {unknown}; known: {', '.join(TASKS)}")
    if before == after:
        return []
    out: list[Example] = []
    changes = hunks(before, after)
    if "intermediate" in tasks:
        for t in intermediate_steps(len(changes), rng, max_steps):
            code = intermediate(before, after, t, changes)
            out.append(Example("intermediate", code, message, after, step=t, n_hunks=len(changes)))
    span = rates.mean_span
    if "mask-unchanged" in tasks:
        code, next_id = span_mask(
            before, rates.unchanged_code, rng, maskable=unchanged_pieces(before, after), mean_span=span,
            sentinel=sentinel,
        )  # fmt: skip
        msg, _ = span_mask(
            message, rates.unchanged_message, rng, mean_span=span, sentinel=sentinel, first=next_id
        )
        out.append(Example("mask-unchanged", code, msg, after))
    if "delete" in tasks:
        out.append(Example("delete", delete_tokens(before, rates.delete, rng), message, after))
    if "insert" in tasks:
        out.append(Example("insert", insert_sentinels(before, rates.insert, rng, sentinel), message, after))
    if "mask" in tasks:
        code, next_id = span_mask(before, rates.mask, rng, mean_span=span, sentinel=sentinel)
        msg, _ = span_mask(message, rates.mask, rng, mean_span=span, sentinel=sentinel, first=next_id)
        out.append(Example("mask", code, msg, after))
    return out


def diff_text(example: Example, name: str) -> str | None:
    """The diff-model text of an intermediate example (version t -> new code), None for the others
    or when the format cannot carry the files."""
    if example.task != "intermediate":
        return None
    try:
        return DiffSample(
            name, example.code, example.message, make_diff(example.code, example.target, headers=False)
        ).text()
    except FormatError:
        return None


# --------------------------------------------------------------------------- the job behind the command


@dataclass(frozen=True)
class DirectionalJob:
    """Settings of one ``editlm directional`` run (small and picklable)."""

    tasks: tuple[str, ...] | None = None  # None: all tasks of the form
    max_steps: int = 3
    rates: NoiseRates = NoiseRates()
    sentinel: str = SENTINEL
    seed: int = 0
    form: str = "divot5"  # or "whole-file"
    context: int = 3  # divot5: context lines around each @@ segment
    mix: tuple[float, float, float] = (0.33, 0.44, 0.23)  # divot5: ksm, ade, etg
    max_chars: int = 100_000
    decontaminate: bool = True
    exclude: tuple[str, ...] = ()


def directional_rows(
    key, before, after, message, name: str, job: DirectionalJob, diff: str | None = None
) -> tuple[list[dict], str | None]:
    """The examples of one edit as rows, or ``([], reason)``. ``after`` may be None when ``diff``
    (before -> after) is given instead. Deterministic in (seed, key)."""
    from editlm.edits.diff import DiffError, apply_diff

    if after is None and isinstance(diff, str) and not diff.strip():
        after = before  # an empty diff changes nothing
    elif after is None and diff is not None:
        try:
            after = apply_diff(before or "", diff)
        except DiffError:
            return [], "diff does not apply"
    before = before or ""  # a new file starts from nothing
    if not all(isinstance(v, str) for v in (before, after, message)):
        return [], "missing field"
    if len(before) + len(after) > job.max_chars:
        return [], "too large"
    if before == after:
        return [], "no change"
    if job.decontaminate:
        from editlm.data.transforms.contamination import default_index

        if default_index(job.exclude).is_contaminated(before, after):
            return [], "benchmark program (contamination)"
    rng = random.Random(f"{job.seed}:{key}")
    if job.form == "divot5":
        return _divot5_rows(key, before, after, message, name, job, rng), None
    if job.form != "whole-file":
        raise ValueError(f"unknown form {job.form!r}; known: {', '.join(FORMS)}")
    examples = directional_examples(
        before, after, message, rng, tasks=job.tasks or TASKS, max_steps=job.max_steps, rates=job.rates,
        sentinel=job.sentinel,
    )  # fmt: skip
    rows = [
        {
            "id": f"{key}/{number}",
            "source_id": str(key),
            "task": ex.task,
            "step": ex.step,
            "n_hunks": ex.n_hunks,
            "input": ex.input(),
            "target": ex.target,
            "code": ex.code,
            "message": ex.message,
            "text": diff_text(ex, name),
        }
        for number, ex in enumerate(examples)
    ]
    return rows, None


def _divot5_rows(key, before, after, message, name, job: DirectionalJob, rng: random.Random) -> list[dict]:
    from editlm.data.transforms import divot5

    examples = divot5.divot5_examples(
        before, after, message, rng, language=divot5.language_token(name), tasks=job.tasks or divot5.TASKS,
        max_steps=job.max_steps, context=job.context, mix=job.mix,
        rates=(job.rates.unchanged_code, job.rates.unchanged_message, job.rates.mask),
    )  # fmt: skip
    rows = []
    for number, ex in enumerate(examples):
        text = None
        if ex.task == "dif":
            new = divot5.unescape(ex.target[len(divot5.TARGET_PREFIX) + 1 :])
            text = diff_text(
                Example("intermediate", divot5.unescape(ex.code), divot5.unescape(ex.message), new), name
            )
        rows.append({
            "id": f"{key}/{number}", "source_id": str(key), "task": ex.task, "step": ex.step,
            "n_hunks": ex.n_hunks, "input": ex.input, "target": ex.target, "code": ex.code,
            "message": ex.message, "text": text,
        })  # fmt: skip
    return rows


def directional_worker(item: tuple) -> tuple:
    """Top-level for process pools: ``(key, before, after, message, name, diff, job)`` ->
    ``(key, rows, skip reason)``."""
    key, before, after, message, name, diff, job = item
    rows, reason = directional_rows(key, before, after, message, name, job, diff)
    return key, rows, reason
