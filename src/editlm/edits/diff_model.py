"""The diff-model sample format of CarperAI's diff models (seed 001, OpenELM).

``<NME> {filename}\\n<BEF> {file before}\\n<MSG> {commit message}\\n<DFF> {diff}``

The model is prompted with everything up to and including ``<DFF>``; only the diff, ``<DFF>`` tag
included, carries the training loss. A new file has ``ADDFILE`` as its file before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from editlm.edits import extract

NAME_TAG, BEFORE_TAG, MESSAGE_TAG, DIFF_TAG = "<NME>", "<BEF>", "<MSG>", "<DFF>"
ADDFILE = "ADDFILE"
END_TOKENS = ("<|endoftext|>", "</s>", "<eos>")


class FormatError(ValueError):
    """A sample that cannot be written or read in its format without loss."""


@dataclass(frozen=True)
class DiffSample:
    """One changed file. ``before`` is None for a file the commit adds."""

    name: str
    before: str | None
    message: str
    diff: str

    def __post_init__(self) -> None:
        if "\n" in self.name:
            raise FormatError("the file name must be one line")
        for field, value in (("message", self.message), ("diff", self.diff)):
            for tag in (MESSAGE_TAG, DIFF_TAG):
                if f"\n{tag} " in value:
                    raise FormatError(f"the {field} contains a line starting with {tag!r}")
        if self.before == ADDFILE:
            raise FormatError(f"a file whose text is {ADDFILE!r} cannot be told apart from a new file")

    def prompt(self, hunk_header: str | None = None) -> str:
        """Everything up to and including ``<DFF>``; with ``hunk_header`` (``@@ -1,3 +1,9 @@``) the
        model is also told which lines to change."""
        # one f-string: the file before is copied once (head + DIFF_TAG copied it again: 2% of mining)
        name, before, message = self.name, _before(self.before), self.message
        if hunk_header is None:
            return f"{NAME_TAG} {name}\n{BEFORE_TAG} {before}\n{MESSAGE_TAG} {message}\n{DIFF_TAG}"
        return f"{NAME_TAG} {name}\n{BEFORE_TAG} {before}\n{MESSAGE_TAG} {message}\n{DIFF_TAG} {hunk_header.rstrip()}\n"

    def completion(self) -> str:
        """What follows :meth:`prompt` in the training text."""
        return " " + self.diff

    def text(self) -> str:
        return self.prompt() + self.completion()

    @property
    def loss_start(self) -> int:
        """Character offset in :meth:`text` where the loss begins: the ``<DFF>`` tag itself."""
        return len(self.prompt()) - len(DIFF_TAG)


def _before(before: str | None) -> str:
    return ADDFILE if before is None else before


def parse_diff_sample(text: str) -> DiffSample:
    """Inverse of :meth:`DiffSample.text`. The file before may contain anything, so the message and
    diff are found from the end (the builder forbids tag lines inside them)."""
    if not text.startswith(NAME_TAG + " "):
        raise FormatError(f"a diff-model sample starts with {NAME_TAG!r}")
    head, sep, diff = text.rpartition(f"\n{DIFF_TAG} ")
    if not sep:
        if text.endswith(f"\n{DIFF_TAG}"):
            head, diff = text[: -len(DIFF_TAG) - 1], ""
        else:
            raise FormatError(f"no {DIFF_TAG!r} tag")
    head, sep, message = head.rpartition(f"\n{MESSAGE_TAG} ")
    if not sep:
        raise FormatError(f"no {MESSAGE_TAG!r} tag")
    name, sep, before = head[len(NAME_TAG) + 1 :].partition(f"\n{BEFORE_TAG} ")
    if not sep:
        raise FormatError(f"no {BEFORE_TAG!r} tag")
    return DiffSample(name, None if before == ADDFILE else before, message, diff)


def extract_diff(completion: str, stop: Iterable[str] = END_TOKENS) -> str:
    """The diff in a raw model completion of a :meth:`DiffSample.prompt`: up to the next sample
    (``<NME>``) or end token, without the space after ``<DFF>``, then through
    :func:`editlm.edits.extract.extract_diff` (fences, prose, tool headers), like every caller."""
    cut = len(completion)
    for marker in (NAME_TAG, *stop):
        at = completion.find(marker)
        if at != -1:
            cut = min(cut, at)
    body = completion[:cut]
    if body.startswith(" "):
        body = body[1:]
    return extract.extract_diff(body)
