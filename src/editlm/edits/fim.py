"""Fill-in-the-middle (Bavarian et al. 2022): move a span to the end so a left-to-right model infills.

PSM: ``<fim_prefix>{prefix}<fim_suffix>{suffix}<fim_middle>{middle}``
SPM: ``<fim_prefix><fim_suffix>{suffix}<fim_middle>{prefix}{middle}`` (the paper's SPM variant that
StarCoder uses, whose prefix and middle stay contiguous).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from editlm.edits.diff_model import FormatError

FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE = "<fim_prefix>", "<fim_suffix>", "<fim_middle>"
SENTINELS = (FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE)
Order = Literal["psm", "spm"]


@dataclass(frozen=True)
class FimSample:
    prefix: str
    middle: str
    suffix: str

    def __post_init__(self) -> None:
        for part in (self.prefix, self.middle, self.suffix):
            if any(token in part for token in SENTINELS):
                raise FormatError("a FIM part contains a sentinel token")

    def prompt(self, order: Order = "psm") -> str:
        if order == "psm":
            return f"{FIM_PREFIX}{self.prefix}{FIM_SUFFIX}{self.suffix}{FIM_MIDDLE}"
        if order == "spm":
            return f"{FIM_PREFIX}{FIM_SUFFIX}{self.suffix}{FIM_MIDDLE}{self.prefix}"
        raise ValueError(f"order must be 'psm' or 'spm', not {order!r}")

    def text(self, order: Order = "psm") -> str:
        return self.prompt(order) + self.middle

    @property
    def document(self) -> str:
        return self.prefix + self.middle + self.suffix


def split_fim(document: str, rng: random.Random) -> FimSample:
    """Cut ``document`` at two uniformly random character positions (as in the paper)."""
    a, b = sorted(rng.randint(0, len(document)) for _ in range(2))
    return FimSample(document[:a], document[a:b], document[b:])


def parse_fim(text: str, order: Order = "psm") -> FimSample:
    """Inverse of :meth:`FimSample.text`. The order must be given: a PSM sample with an empty prefix
    reads exactly like an SPM one. In SPM the prefix and middle are one run of text whose split is
    not in the text, so they come back together as the middle of an empty-prefix sample."""
    if order == "spm":
        head = FIM_PREFIX + FIM_SUFFIX
        suffix, sep, rest = text.removeprefix(head).partition(FIM_MIDDLE)
        if not text.startswith(head) or not sep:
            raise FormatError(f"an SPM sample starts with {head!r} and has {FIM_MIDDLE!r}")
        return FimSample("", rest, suffix)
    if order != "psm":
        raise ValueError(f"order must be 'psm' or 'spm', not {order!r}")
    prefix, sep, rest = text.removeprefix(FIM_PREFIX).partition(FIM_SUFFIX)
    suffix, sep2, middle = rest.partition(FIM_MIDDLE)
    if not (text.startswith(FIM_PREFIX) and sep and sep2):
        raise FormatError("a PSM sample needs all three sentinels, in order")
    return FimSample(prefix, middle, suffix)
