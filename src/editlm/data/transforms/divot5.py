"""DivoT5's own data form (seed 000): snippet-level versions, one noising task per edit, task tokens.

What the released DivoT5 code (``data_preprocess/c1_get_diff.py``, ``c2_diffusion.py`` and
``pretraining/src/pre_training/{pretrain_vbase300,mask_diff_utils}.py``) does, and this module does:

- an edit is cut into ``@@`` segments: the groups of changes that ``difflib.unified_diff`` prints with 3
  lines of context (``SequenceMatcher.get_grouped_opcodes(3)``), ``@@`` header dropped. The *snippet*
  before/after is the concatenation of the segments' old/new sides, so the model reads the changed
  hunks only, not the whole file;
- intermediate version t = new side of segments 1..t + old side of segments t+1..n, for t = 0 and up to
  3 random t in 1..n-1; each becomes a ``<dif>`` row: ``<dif> <msg> MESSAGE <lang> VERSION`` ->
  ``<updated_code> NEW``;
- besides, each edit yields *one* noised row, its task drawn with the released mix (``<ksm>`` 0.33,
  ``<ade>`` 0.44, ``<etg>`` 0.23): ``<ksm>`` span-masks ~30% of the tokens the edit keeps (and ~20% of a
  message longer than 5 tokens), ``<ade>`` deletes tokens and inserts sentinels, ``<etg>`` span-masks
  ~20% of message and code (each when longer than 5 tokens); mean span 2.5 tokens as released;
- sentinels are ``<extra_id_0>`` .. ``<extra_id_99>`` (T5 and CodeT5 vocabularies stop there), numbered
  in input order (message, then code); spans past the cap stay unmasked.

Where editlm departs from the released code, on purpose:

- **Reference bug 1** (``c2_diffusion.get_old_new``, single-segment edits): a ``-`` line is appended to
  the old side and then, falling into the ``else`` of ``if line.startswith('+')``, appended to the old
  side again *and* to the new side, so the "old" code has removed lines twice and the target keeps them.
  Here a segment's sides come from difflib's opcodes, once each.
- **Reference bug 2** (``mask_diff_utils.get_keep_span_mask``, the ``<ksm>`` task): the code is masked,
  then the whole input is passed through ``get_span_mask_from_mask`` a second time against the
  *unmasked* tokens; the masked code holds no ``<mask>`` left and its positions no longer line up, so the
  original code tokens come back: ``<ksm>`` masks the message only, never the code. Here the code's
  unchanged tokens are masked.
- Layout is kept: the released code joins sub-tokens with spaces; here tokens are masked in place and
  whitespace stays, so a target is runnable code.
- A literal ``<extra_id_`` in code or message is escaped (:func:`escape`, one backslash added:
  ``<\\extra_id_``; :func:`unescape` inverts it), so a sentinel in an input is always one of ours.
- ``<ade>``: the released ``corrupt_code`` draws per token delete (p 0.495) or insert (p 0.215) while it
  mutates the list it iterates (its replace branch is unreachable), which makes the rates hard to
  state; here ~15% of the tokens are deleted and a sentinel is inserted before ~15% (REFERENCE.md
  section 2), independently.
"""

from __future__ import annotations

import difflib
import random
import re
from dataclasses import dataclass
from pathlib import PurePath

from editlm.data.transforms.directional import _choose_spans
from editlm.edits.diff import split_lines

TASKS = ("dif", "ksm", "ade", "etg")
NOISE_TASKS = ("ksm", "ade", "etg")
MIX = (0.33, 0.44, 0.23)  # ksm, ade, etg: the released "random() < 0.33, then random() < 0.66"
MSG_TOKEN = "<msg>"
TARGET_PREFIX = "<updated_code>"
MAX_SENTINEL = 99
CONTEXT_LINES = 3
MEAN_SPAN = 2.5
LANGUAGES = {
    ".py": "python", ".java": "java", ".js": "javascript", ".ts": "typescript", ".go": "go", ".rb": "ruby",
    ".php": "php", ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".hpp": "cpp", ".cs": "c_sharp",
    ".rs": "rust", ".sh": "bash", ".kt": "kotlin", ".scala": "scala", ".swift": "swift",
}  # fmt: skip
DEFAULT_LANGUAGE = "python"

# an escaped literal ``<\extra_id_`` is one piece, so that no noising can take its backslash away
_PIECES = re.compile(r"<\\+extra_id_|\s+|[A-Za-z_]\w*|\d+|\S")
_LITERAL = re.compile(r"<(\\*)extra_id_")
_ESCAPED = re.compile(r"<\\(\\*)extra_id_")
_SENTINEL = "<extra_id_{}>"


def escape(text: str) -> str:
    """``<extra_id_`` (after any backslashes) gets one more backslash: never read as a sentinel."""
    return _LITERAL.sub(lambda m: "<\\" + m.group(1) + "extra_id_", text)


def unescape(text: str) -> str:
    """The inverse of :func:`escape` (for model outputs in this form)."""
    return _ESCAPED.sub(lambda m: "<" + m.group(1) + "extra_id_", text)


def language_token(name: str | None) -> str:
    """``<python>`` etc. from a file name's extension (python when unknown)."""
    suffix = PurePath(name or "").suffix.lower()
    return f"<{LANGUAGES.get(suffix, DEFAULT_LANGUAGE)}>"


def special_tokens() -> list[str]:
    """Every token this form writes that a tokenizer must keep whole (add them as special tokens)."""
    langs = sorted({f"<{v}>" for v in LANGUAGES.values()} | {f"<{DEFAULT_LANGUAGE}>"})
    return (
        [f"<{t}>" for t in TASKS]
        + [MSG_TOKEN, TARGET_PREFIX, *langs]
        + [_SENTINEL.format(i) for i in range(MAX_SENTINEL + 1)]
    )


# --------------------------------------------------------------------------- @@ segments and versions


@dataclass(frozen=True)
class Segment:
    """One ``@@`` hunk of a unified diff with its context lines: the old side and the new side."""

    old: str
    new: str


def segments(before: str, after: str, context: int = CONTEXT_LINES) -> list[Segment]:
    """The hunks ``difflib.unified_diff(..., n=context)`` would print, as (old side, new side)."""
    a, b = split_lines(before), split_lines(after)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    out = []
    for group in matcher.get_grouped_opcodes(context):
        if all(tag == "equal" for tag, *_ in group):
            continue
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        out.append(Segment("".join(a[i1:i2]), "".join(b[j1:j2])))
    return out


def version(parts: list[Segment], t: int) -> str:
    """Snippet version t: the new side of the first ``t`` segments, the old side of the rest."""
    if not 0 <= t <= len(parts):
        raise ValueError(f"t must be in 0..{len(parts)}")
    return "".join(s.new for s in parts[:t]) + "".join(s.old for s in parts[t:])


def steps(n_segments: int, rng: random.Random, max_steps: int = 3) -> list[int]:
    """t = 0 and up to ``max_steps`` distinct random t in 1..n-1, ascending (as ``c2_diffusion``)."""
    inner = list(range(1, n_segments))
    return [0] + sorted(rng.sample(inner, min(max_steps, len(inner))))


# --------------------------------------------------------------------------- noising


def _pieces(text: str) -> list[str]:
    return _PIECES.findall(text)


def _tokens(pieces: list[str]) -> list[int]:
    return [i for i, p in enumerate(pieces) if not p.isspace()]


class _Numbering:
    """Sentinel numbers in input order, capped at ``<extra_id_99>``."""

    def __init__(self) -> None:
        self.next = 0

    def take(self) -> str | None:
        if self.next > MAX_SENTINEL:
            return None
        self.next += 1
        return _SENTINEL.format(self.next - 1)


def _render_masked(pieces: list[str], masked: set[int], numbering: _Numbering) -> str:
    """Each run of masked tokens (whitespace inside the run included) becomes one sentinel; once the
    numbers run out, the tokens of later runs are left as they are."""
    out: list[str] = []
    span: list[str] | None = None  # the pieces of the open run (None: not in a run)
    pending = ""  # whitespace after a masked token: inside the run if the next token is masked too
    for i, piece in enumerate(pieces):
        if piece.isspace():
            if span is not None:
                pending += piece
            else:
                out.append(piece)
            continue
        if i in masked:
            if span is None:
                span = []
            span += [pending, piece]
            pending = ""
            continue
        if span is not None:
            out.append(_close(span, numbering))
            span = None
        out += [pending, piece]
        pending = ""
    if span is not None:
        out.append(_close(span, numbering))
    out.append(pending)
    return "".join(out)


def _close(span: list[str], numbering: _Numbering) -> str:
    sentinel = numbering.take()
    return sentinel if sentinel is not None else "".join(span)


def mask_spans(
    text: str, rate: float, rng: random.Random, numbering: _Numbering, maskable: set[int] | None = None,
    min_tokens: int = 0,
) -> str:  # fmt: skip
    """Span-mask ~``rate`` of the tokens (of those whose piece index is in ``maskable``); texts of at most
    ``min_tokens`` tokens are left alone (the released ``get_nl_mask`` masks only past 5 tokens)."""
    pieces = _pieces(text)
    candidates = [i for i in _tokens(pieces) if maskable is None or i in maskable]
    if len(candidates) <= min_tokens:
        return text
    chosen = _choose_spans(len(candidates), rate, MEAN_SPAN, rng)
    return _render_masked(pieces, {candidates[k] for k in chosen}, numbering)


def kept_pieces(old: str, new: str) -> set[int]:
    """Indices of the pieces of ``old`` that a token-level diff to ``new`` keeps (``<KEEP>`` tokens)."""
    a, b = _pieces(old), _pieces(new)
    ta, tb = _tokens(a), _tokens(b)
    matcher = difflib.SequenceMatcher(None, [a[i] for i in ta], [b[i] for i in tb], autojunk=False)
    kept: set[int] = set()
    for block in matcher.get_matching_blocks():
        kept.update(ta[block.a : block.a + block.size])
    return kept


def corrupt(
    text: str, rng: random.Random, numbering: _Numbering, delete: float = 0.15, insert: float = 0.15
) -> str:
    """``<ade>``: delete ~``delete`` of the tokens and insert a sentinel before ~``insert`` of them."""
    pieces = _pieces(text)
    tokens = _tokens(pieces)
    dropped = set(rng.sample(tokens, round(len(tokens) * delete))) if tokens else set()
    before = set(rng.sample(tokens, round(len(tokens) * insert))) if tokens else set()
    out = []
    for i, piece in enumerate(pieces):
        if i in before:
            sentinel = numbering.take()
            if sentinel is not None:
                out.append(sentinel)
        if i not in dropped:
            out.append(piece)
    return "".join(out)


# --------------------------------------------------------------------------- rows of one edit


@dataclass(frozen=True)
class Example:
    """One row: ``input`` -> ``target`` (both with the task tokens), and what it was made from."""

    task: str
    code: str
    message: str
    input: str
    target: str
    step: int | None = None
    n_hunks: int | None = None


def format_input(task: str, message: str, language: str, code: str) -> str:
    return f"<{task}> {MSG_TOKEN} {message} {language} {code}"


def format_target(code: str) -> str:
    return f"{TARGET_PREFIX} {code}"


def choose_task(rng: random.Random, allowed: tuple[str, ...], mix: tuple[float, ...] = MIX) -> str | None:
    """One noising task drawn with ``mix`` (ksm, ade, etg) renormalised over ``allowed``."""
    weights = [(t, w) for t, w in zip(NOISE_TASKS, mix, strict=True) if t in allowed and w > 0]
    if not weights:
        return None
    return rng.choices([t for t, _ in weights], [w for _, w in weights])[0]


def divot5_examples(
    before: str,
    after: str,
    message: str,
    rng: random.Random,
    *,
    language: str = f"<{DEFAULT_LANGUAGE}>",
    tasks: tuple[str, ...] = TASKS,
    max_steps: int = 3,
    context: int = CONTEXT_LINES,
    mix: tuple[float, ...] = MIX,
    rates: tuple[float, float, float] = (0.30, 0.20, 0.20),
) -> list[Example]:
    """The rows of one edit: ``<dif>`` rows (one per sampled t) and one noised row; [] when unchanged.

    ``rates``: ksm's share of kept code tokens, the message share (ksm and etg), etg's code share."""
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown tasks {unknown}; known: {', '.join(TASKS)}")
    parts = segments(escape(before), escape(after), context)
    if not parts:
        return []
    message = escape(message)
    new = version(parts, len(parts))
    target = format_target(new)
    out: list[Example] = []
    if "dif" in tasks:
        for t in steps(len(parts), rng, max_steps):
            code = version(parts, t)
            out.append(Example("dif", code, message, format_input("dif", message, language, code), target, t,
                               len(parts)))  # fmt: skip
    task = choose_task(rng, tasks, mix)
    if task is None:
        return out
    old = version(parts, 0)
    numbering = _Numbering()
    code_rate, msg_rate, etg_rate = rates
    if task == "ksm":
        msg = mask_spans(message, msg_rate, rng, numbering, min_tokens=5)
        code = mask_spans(old, code_rate, rng, numbering, maskable=kept_pieces(old, new))
    elif task == "etg":
        msg = mask_spans(message, msg_rate, rng, numbering, min_tokens=5)
        code = mask_spans(old, etg_rate, rng, numbering, min_tokens=5)
    else:
        msg, code = message, corrupt(old, rng, numbering)
    out.append(Example(task, code, msg, format_input(task, msg, language, code), target, None, len(parts)))
    return out
