"""The LintSeq training format (seed 000), exactly as the authors' fine-tuning script builds it.

``instruction + "\\n<|diff|>" + "\\n<|diff|>".join(diffs) + "\\n<|diff|>\\n<|diff|>"`` then the tokenizer's
end-of-text: the authors join ``[""] + diffs + ["", ""]`` with ``"\\n<|diff|>"`` (two empty edits
close the sequence), and mask the loss on the tokens of the instruction alone, so the first
``"\\n<|diff|>"`` is learned (``lintseq finetune.py``, ``encode_edit_seq_with_coding_completion_format``).
:func:`training_split` gives that split as ``prompt``/``completion`` for ``editlm train sft``, which
appends end-of-text. At evaluation the model is prompted with the instruction and the first
separator (:func:`edit_sequence_prompt`, as the authors' ``run_eval.py``), the edits of the
completion are applied in order (:func:`decode_edits`) and a fenced ```` ```python ```` block is
unwrapped as their ``evaluation.py`` does (:func:`unwrap_fenced`).

Decoding never turns a cut completion into a wrong program: a hunk cut off before its line counts
are met is refused (``editlm.edits.diff``), and with ``require_end=True`` a completion that does not
end with the closing separators has its last edit refused as truncated (the only way to tell an edit
cut inside its last line from a finished one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from editlm.edits.diff import DiffError, DiffParseError, apply_diff
from editlm.edits.diff_model import FormatError

DIFF_SEPARATOR = "<|diff|>"
SEPARATOR = "\n" + DIFF_SEPARATOR
CLOSING = SEPARATOR + SEPARATOR  # the two empty edits that end every sequence
EOS_TEXT = "<|endoftext|>"


def _check(instruction: str, diffs: Sequence[str]) -> None:
    for part in (instruction, *diffs):
        if DIFF_SEPARATOR in part:
            raise FormatError(f"{DIFF_SEPARATOR!r} may not occur inside the instruction or an edit")
    if any(not d for d in diffs):
        raise FormatError("an edit may not be empty (an empty edit ends the sequence)")


def format_edit_sequence(instruction: str, diffs: Sequence[str], *, closing: bool = True) -> str:
    """The training text (without end-of-text, which the trainer's tokenizer adds).

    ``closing=False`` leaves out the two closing separators (editlm's format before issue 19).
    :func:`parse_edit_sequence` gives back exactly ``(instruction, diffs)`` for both.
    """
    _check(instruction, diffs)
    if closing:
        # The authors' ``("\n" + DIFF_TOKEN).join([""] + edit_path + [""] + [""])``; their rule that
        # adds "\n" between an instruction and an edit path not starting with whitespace never
        # fires, since the path starts with "\n".
        return instruction + SEPARATOR.join(["", *diffs, "", ""])
    return instruction + SEPARATOR + SEPARATOR.join(diffs)


def training_split(instruction: str, diffs: Sequence[str], *, closing: bool = True) -> tuple[str, str]:
    """``(prompt, completion)`` with the loss on the completion: the prompt is the instruction
    alone, so the first separator is learned, as in the authors' loss mask."""
    text = format_edit_sequence(instruction, diffs, closing=closing)
    return instruction, text[len(instruction) :]


def edit_sequence_prompt(instruction: str) -> str:
    """What the model is prompted with at evaluation: the instruction and the first separator."""
    return instruction + SEPARATOR


def parse_edit_sequence(text: str) -> tuple[str, list[str]]:
    """``(instruction, diffs)`` of a training text, with or without the closing separators."""
    if SEPARATOR not in text:
        raise FormatError(f"no {DIFF_SEPARATOR!r} separator")
    instruction, *diffs = text.removesuffix(EOS_TEXT).split(SEPARATOR)
    if len(diffs) >= 3 and diffs[-1] == "" and diffs[-2] == "":
        diffs = diffs[:-2]
    elif diffs == ["", ""]:
        diffs = []
    return instruction, diffs


def unwrap_fenced(text: str, language: str = "python") -> str:
    """The authors' evaluation (``strip_markdown``): the text after the first ```` ```python ````
    fence, up to the next ```` ``` ````; text without fences is returned as it is."""
    fence = "```" + language
    if fence in text:
        text = text[text.find(fence) + len(fence) :]
    if "```" in text:
        text = text[: text.find("```")]
    return text


def fenced_code(text: str, language: str = "python") -> str:
    """The authors' generator's input cleaning (``strip_chain_of_thought``): every ```` ```python ````
    block of a markdown response, joined by newlines and stripped; text without one as it is."""
    fence = "```" + language
    chunks, rest = [], text
    while fence in rest:
        rest = rest[rest.find(fence) + len(fence) :]
        end = rest.find("```")
        chunks.append(rest if end == -1 else rest[:end])
        rest = "" if end == -1 else rest[end + 3 :]
    return "\n".join(chunks).strip() if chunks else text


@dataclass
class DecodedEdits:
    """What a completion's edits give: the program, one error per refused edit (``"edit 3: ..."``),
    whether the last edit was refused as cut off, and whether the completion closed its sequence."""

    program: str
    errors: list[str] = field(default_factory=list)
    truncated: bool = False
    closed: bool = False


def decode_edits(
    completion: str, source: str = "", *, require_end: bool = False, unwrap: bool = True
) -> DecodedEdits:
    """Apply the edits of a model completion (the text after :func:`edit_sequence_prompt`) in order.

    A failed edit is skipped and reported, never inserted as text. The closing separators end the
    sequence (what follows is ignored, like text after end-of-text); empty edits are skipped as
    the authors' decoder skips them. The last edit of a completion without the closing is refused
    as truncated when its hunk was cut off, or always with ``require_end=True``. ``unwrap`` applies
    :func:`unwrap_fenced` to the result, as the authors' evaluation does.
    """
    body = completion.removeprefix(DIFF_SEPARATOR)
    cut = body.find(EOS_TEXT)
    ended_by_eos = cut != -1
    if ended_by_eos:
        body = body[:cut]
    at = body.find(CLOSING)
    closed = at != -1
    if closed:
        body = body[:at]
    pieces = body.split(SEPARATOR)
    out = DecodedEdits(source, closed=closed)
    last = max((i for i, p in enumerate(pieces) if p.strip()), default=-1)
    open_end = not closed and not ended_by_eos  # the completion may have been cut inside its last edit
    for number, piece in enumerate(pieces, 1):
        if not piece.strip():
            continue
        at_end = number - 1 == last and open_end
        if at_end and require_end:
            out.errors.append(f"edit {number}: truncated: the completion ends without {CLOSING!r}")
            out.truncated = True
            continue
        try:
            out.program = apply_diff(out.program, piece.lstrip("\n"))
        except DiffParseError as exc:
            out.truncated = out.truncated or at_end
            out.errors.append(f"edit {number}: {'truncated: ' if at_end else ''}{exc}")
        except DiffError as exc:
            out.errors.append(f"edit {number}: {exc}")
    if unwrap:
        out.program = unwrap_fenced(out.program)
    return out


def decode_edit_sequence(completion: str, source: str = "", **options) -> tuple[str, list[str]]:
    """:func:`decode_edits` as ``(program, errors)``."""
    decoded = decode_edits(completion, source, **options)
    return decoded.program, decoded.errors
