"""Training data: reading corpora and prompt/completion rows, tokenizing with loss masks, packing.

Pure functions on strings and token lists; the only I/O is in ``iter_texts`` and ``load_records``.
A *segment* is one sample as ``(input_ids, labels)``; labels are ``-100`` where no loss is taken.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

IGNORE = -100
Segment = tuple[list[int], list[int]]


class DataError(ValueError):
    """Training data that cannot be used as given (empty, missing fields, unreadable)."""


@dataclass
class DataReport:
    """What happened to the samples on their way to training; saved next to the checkpoint."""

    samples: int = 0
    used: int = 0
    skipped_overlong: int = 0
    truncated: int = 0
    skipped_no_loss: int = 0
    tokens: int = 0
    loss_tokens: int = 0
    rows: int = 0
    # Samples whose prompt + completion tokenize with a token across the boundary (a prompt ending in
    # "Answer: " and "def" merging into " def"): generation feeds the prompt's own tokens, so these are
    # trained on the prompt's tokens followed by the completion's (retokenized), or, where the
    # tokenizer cannot split there without changing the text, as one text (boundary_kept).
    boundary_retokenized: int = 0
    boundary_kept: int = 0
    # Counted on the training batches by CountingCollator: positions fed to the model, and real tokens.
    positions: int = 0
    batch_tokens: int = 0

    @property
    def fill(self) -> float:
        """Share of the positions in training batches that held real tokens (1.0: padding-free)."""
        return self.batch_tokens / self.positions if self.positions else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fill": round(self.fill, 4)}


# ----------------------------------------------------------------------------------------- reading


def iter_texts(corpus: str | Path, glob: str = "*.py", text_field: str = "text") -> Iterator[str]:
    """Documents of a corpus: ``stdlib``, a directory (files matching ``glob``), a JSONL/JSON/Parquet
    file (its ``text_field``), or any other file as one document."""
    from editlm.models.tokenizer import read_source, stdlib_texts

    if str(corpus) == "stdlib":
        yield from stdlib_texts(glob)
        return
    path = Path(corpus)
    if not path.exists():
        raise DataError(f"{path}: no such corpus file or directory")
    if path.is_dir():
        for file in sorted(p for p in path.rglob(glob) if p.is_file()):
            yield read_source(file)
    elif path.suffix in (".jsonl", ".json", ".parquet"):
        for record in load_records(path, required=(text_field,)):
            yield record[text_field]
    else:
        yield read_source(path)


def load_records(path: str | Path, required: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Rows of a JSONL/JSON/Parquet file, or of every such file in a directory, checked for ``required``."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such data file or directory")
    files = (
        sorted(p for p in path.rglob("*") if p.suffix in (".jsonl", ".json", ".parquet"))
        if path.is_dir()
        else [path]
    )
    records: list[dict[str, Any]] = []
    for file in files:
        if file.suffix == ".parquet":
            import pyarrow.parquet as pq

            records.extend(pq.read_table(file).to_pylist())
        elif file.suffix in (".jsonl", ".json"):
            with open(file, encoding="utf-8") as fh:
                for number, line in enumerate(fh, 1):
                    if line.strip():
                        try:
                            records.append(json.loads(line))
                        except json.JSONDecodeError as exc:
                            raise DataError(f"{file}:{number}: not a JSON line: {exc}") from exc
        else:
            raise DataError(f"{file}: expected .jsonl, .json or .parquet")
    if not records:
        raise DataError(f"{path}: no rows")
    for field in required:
        missing = sum(1 for r in records if not isinstance(r.get(field), str))
        if missing:
            have = ", ".join(sorted(records[0])) or "none"
            raise DataError(
                f"{path}: {missing} of {len(records)} rows lack a text field {field!r} (fields: {have})"
            )
    return records


def split_eval(items: list, fraction: float, seed: int) -> tuple[list, list]:
    """(train, held out): a seeded random ``fraction`` held out, at least one item when fraction > 0."""
    if fraction <= 0 or len(items) < 2:
        return items, []
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    n_eval = min(len(items) - 1, max(1, round(fraction * len(items))))
    held = set(order[:n_eval])
    return [x for i, x in enumerate(items) if i not in held], [items[i] for i in sorted(held)]


# ----------------------------------------------------------------------------------------- masking


def mask_labels(input_ids: Sequence[int], offsets: Sequence[tuple[int, int]], loss_start: int) -> list[int]:
    """Labels for ``input_ids``: the token id where the token ends after character ``loss_start``
    (so a token straddling the boundary is learned), ``-100`` on the prompt tokens before it.
    The first label is always -100: no token in the sample predicts it (and, packed, the previous
    sample must not)."""
    labels = [tok if end > loss_start else IGNORE for tok, (_, end) in zip(input_ids, offsets, strict=True)]
    if labels:
        labels[0] = IGNORE
    return labels


def sft_loss_start(prompt: str, record: dict[str, Any], full_loss: bool, marker: str = "") -> int:
    """Character offset in ``prompt + completion`` where the loss starts."""
    if full_loss:
        return 0
    own = record.get("loss_start")
    if isinstance(own, int) and not isinstance(own, bool):
        return own
    if marker:
        at = prompt.rfind(marker)
        if at != -1:
            return at
    return len(prompt)


def _ends(tokenizer) -> tuple[list[int], list[int]]:
    """([eos], BOS prefix): every sample ends with EOS and starts as the tokenizer's post-processor starts
    a text (editlm.models.tokens.special_prefix, the same rule generation uses)."""
    from editlm.models.tokens import SpecialTokenError, special_prefix

    if tokenizer.eos_token_id is None:
        raise SpecialTokenError(
            "the tokenizer has no EOS token, so samples would not end; "
            "editlm.models.tokens.ensure_special_tokens adds one"
        )
    return [tokenizer.eos_token_id], special_prefix(tokenizer)


def encode_sft(
    tokenizer,
    records: Iterable[dict[str, Any]],
    *,
    seq_len: int,
    prompt_field: str = "prompt",
    completion_field: str = "completion",
    full_loss: bool = False,
    marker: str = "",
    overlong: str = "skip",
    report: DataReport | None = None,
    batch: int = 512,
) -> list[Segment]:
    """Tokenize prompt/completion rows (plus end-of-text) into loss-masked segments of at most
    ``seq_len`` tokens; overlong samples are skipped or truncated (``overlong``) and counted."""
    if overlong not in ("skip", "truncate"):
        raise ValueError(f"overlong must be 'skip' or 'truncate', not {overlong!r}")
    report = report if report is not None else DataReport()
    eos, prefix = _ends(tokenizer)
    segments: list[Segment] = []
    records = list(records)
    for start in range(0, len(records), batch):
        chunk = records[start : start + batch]
        prompts, texts, starts = [], [], []
        for record in chunk:
            prompt, completion = record[prompt_field], record[completion_field]
            prompts.append(prompt)
            texts.append(prompt + completion)
            starts.append(sft_loss_start(prompt, record, full_loss, marker))
        encoded = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
        heads = tokenizer(prompts, add_special_tokens=False, return_offsets_mapping=True)
        for k, (ids, offsets, loss_start) in enumerate(
            zip(encoded["input_ids"], encoded["offset_mapping"], starts, strict=True)
        ):
            report.samples += 1
            head = {key: heads[key][k] for key in ("input_ids", "offset_mapping")}
            ids, offsets = _at_the_prompt_boundary(
                tokenizer, prompts[k], texts[k], list(ids), list(offsets), head, report
            )
            ids, offsets = prefix + ids, [(0, 0)] * len(prefix) + offsets
            labels = mask_labels(ids, offsets, loss_start) + eos
            ids = ids + eos
            if len(ids) > seq_len:
                if overlong == "skip":
                    report.skipped_overlong += 1
                    continue
                ids, labels = ids[:seq_len], labels[:seq_len]
                report.truncated += 1
            if all(label == IGNORE for label in labels):
                report.skipped_no_loss += 1
                continue
            report.used += 1
            report.tokens += len(ids)
            report.loss_tokens += sum(1 for label in labels if label != IGNORE)
            segments.append((ids, labels))
    return segments


def _at_the_prompt_boundary(
    tokenizer, prompt: str, text: str, ids: list[int], offsets: list, head, report: DataReport
):
    """``text`` (prompt + completion) as generation will see it: the prompt's own tokens first.

    Tokenized as one text, a token can span the boundary (``"<AFT> "`` + ``"def"`` gives ``" def"``),
    or the prompt's end can split otherwise than alone (``"Answer:  "``), so the model would learn to
    continue a prompt that generation never gives it: there the prompt alone ends in a lone ``" "``,
    a sequence it never saw, and the first line comes out garbled (measured: a rename model wrote 0
    of 7 rewrites right, each starting mid-line). Then the prompt's own tokens (``head``: ids and
    offsets of the prompt alone) are used and the completion is tokenized after them, provided the
    ids still decode to ``text`` (tokenizers that add a leading space to a text they start would
    change it: those keep the one tokenization, counted)."""
    cut = len(prompt)
    before = sum(1 for _, b in offsets if b <= cut)  # the joint tokens that end inside the prompt
    straddles = any(a < cut < b for a, b in offsets)
    if not straddles and ids[:before] == list(head["input_ids"]):
        return ids, offsets
    tail = tokenizer(text[cut:], add_special_tokens=False, return_offsets_mapping=True)
    joined = list(head["input_ids"]) + list(tail["input_ids"])
    if tokenizer.decode(joined) != tokenizer.decode(ids):
        report.boundary_kept += 1
        return ids, offsets
    report.boundary_retokenized += 1
    return joined, list(head["offset_mapping"]) + [(a + cut, b + cut) for a, b in tail["offset_mapping"]]


def encode_documents(
    tokenizer, texts: Iterable[str], *, seq_len: int, report: DataReport | None = None, batch: int = 256
) -> list[Segment]:
    """Tokenize documents (plus end-of-text) for pretraining, cut into pieces of at most ``seq_len``."""
    report = report if report is not None else DataReport()
    eos, prefix = _ends(tokenizer)
    segments: list[Segment] = []
    pending: list[str] = []

    def flush() -> None:
        for ids in tokenizer(pending, add_special_tokens=False)["input_ids"]:
            ids = prefix + list(ids) + eos
            report.samples += 1
            report.used += 1
            for at in range(0, len(ids), seq_len):
                piece = ids[at : at + seq_len]
                if len(piece) < 2:
                    continue  # a lone trailing token has nothing to be predicted from
                labels = list(piece)
                labels[0] = IGNORE
                report.tokens += len(piece)
                report.loss_tokens += len(piece) - 1
                segments.append((piece, labels))
        pending.clear()

    for text in texts:
        if text:
            pending.append(text)
        if len(pending) >= batch:
            flush()
    flush()
    return segments


# ----------------------------------------------------------------------------------------- packing


def to_dataset(segments: Sequence[Segment]):
    """Segments as a ``datasets.Dataset`` with ``input_ids`` and ``labels`` (what TRL's SFTTrainer takes
    as already-processed data)."""
    from datasets import Dataset

    return Dataset.from_dict(
        {"input_ids": [list(ids) for ids, _ in segments], "labels": [list(lab) for _, lab in segments]}
    )


def pack_dataset(segments, seq_len: int, report: DataReport | None = None):
    """Best-fit-decreasing packing of segments (a list or a :func:`to_dataset` Dataset) into rows of at most ``seq_len`` tokens: TRL's
    ``pack_dataset(strategy="bfd")`` (the same algorithm editlm had by hand). Each row keeps its
    ``seq_lengths``, from which TRL's padding-free collator makes position ids that restart per sample
    (so no sample attends to another) and sets the first label of every sample to -100."""
    from datasets import Dataset
    from trl.data_utils import pack_dataset as trl_pack

    data = segments if isinstance(segments, Dataset) else to_dataset(segments)
    if len(data) and max(len(ids) for ids in data["input_ids"]) > seq_len:
        raise ValueError("a segment is longer than seq_len; encode with seq_len first")
    packed = trl_pack(data, seq_len, strategy="bfd")
    if report is not None:
        report.rows += len(packed)
    return packed


def pack(segments: Sequence[Segment], seq_len: int, report: DataReport | None = None) -> list[dict]:
    """:func:`pack_dataset` as a list of row dicts (``input_ids``, ``labels``, ``seq_lengths``)."""
    return pack_dataset(segments, seq_len, report).to_list()


def collator(pad_token_id: int, padding_free: bool = True):
    """TRL's collator: padding-free (a batch is one row of its samples end to end, position ids restarting
    per sample, ``cu_seq_lens`` for varlen kernels) or padded with an attention mask."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    return DataCollatorForLanguageModeling(pad_token_id=pad_token_id, padding_free=padding_free)


class CountingCollator:
    """Wraps a collator and counts real tokens and batch positions, so the report's ``fill`` is measured
    on the batches the model saw (padding included), not assumed."""

    def __init__(self, inner, report: DataReport):
        self.inner, self.report = inner, report

    def __call__(self, examples):
        batch = self.inner(examples)
        ids = batch["input_ids"]
        self.report.positions += int(ids.numel())
        mask = batch.get("attention_mask")
        self.report.batch_tokens += (
            int(mask.sum()) if mask is not None else sum(len(e["input_ids"]) for e in examples)
        )
        return batch
