"""The LintSeq training format (seed 000): an instruction, then the edits that write the program.

``instruction + "\\n<|diff|>" + "\\n<|diff|>".join(diffs)``; ``<|diff|>`` is a token of its own and
the loss is masked on the instruction. Decoding splits on the separator and applies each diff.
"""

from __future__ import annotations

from collections.abc import Sequence

from editlm.edits.diff import DiffError, apply_diff
from editlm.edits.diff_model import FormatError

DIFF_SEPARATOR = "<|diff|>"
_JOIN = "\n" + DIFF_SEPARATOR


def format_edit_sequence(instruction: str, diffs: Sequence[str]) -> str:
    """The training text; :func:`parse_edit_sequence` gives back exactly ``(instruction, diffs)``."""
    for part in (instruction, *diffs):
        if DIFF_SEPARATOR in part:
            raise FormatError(f"{DIFF_SEPARATOR!r} may not occur inside the instruction or an edit")
    return instruction + _JOIN + _JOIN.join(diffs)


def edit_sequence_prompt(instruction: str) -> str:
    """What the model is prompted with: the instruction and the first separator."""
    return instruction + _JOIN


def parse_edit_sequence(text: str) -> tuple[str, list[str]]:
    if _JOIN not in text:
        raise FormatError(f"no {DIFF_SEPARATOR!r} separator")
    instruction, *diffs = text.split(_JOIN)
    return instruction, diffs


def decode_edit_sequence(completion: str, source: str = "") -> tuple[str, list[str]]:
    """Apply the edits of a model completion (text after the prompt) one by one to ``source``.

    Returns the program and the list of errors, one per edit that failed (``"edit 3: ..."``);
    a failed edit is skipped and reported, never inserted as text.
    """
    errors: list[str] = []
    program = source
    body = completion.removeprefix(DIFF_SEPARATOR)
    for number, piece in enumerate(body.split(_JOIN), 1):
        if not piece.strip():
            continue
        try:
            program = apply_diff(program, piece.lstrip("\n"))
        except DiffError as exc:
            errors.append(f"edit {number}: {exc}")
    return program, errors
