"""Encoder-decoder (T5-shaped) training on input -> target rows: the DivoT5 pre-training end to end.

``editlm directional`` writes rows whose ``input`` carries DivoT5's task tokens (``<dif>``, ``<ksm>``,
``<ade>``, ``<etg>``, ``<msg>``, a language token, sentinels up to ``<extra_id_99>``) and whose ``target``
starts with ``<updated_code>``; ``editlm train seq2seq`` trains a T5 on them with the transformers
``Trainer`` (the same arguments, callbacks and resume as ``pretrain``/``sft``). The model is either a
fresh preset built from transformers' own ``T5Config`` (``t5-small`` is ``T5Config()``'s defaults, the
60M shape DivoT5-small starts from, trained here from scratch) or any local seq2seq checkpoint, such as
a CodeT5 directory; nothing is downloaded.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from editlm.train.config import TrainConfig
from editlm.train.data import DataError, load_records, split_eval

log = logging.getLogger(__name__)

T5_PRESETS: dict[str, dict[str, Any]] = {
    # T5Config()'s own defaults, i.e. google's t5-small (60M with its 32k vocabulary).
    "t5-small": dict(d_model=512, d_ff=2048, d_kv=64, num_layers=6, num_decoder_layers=6, num_heads=8),
    # Test-sized: trains in seconds.
    "t5-test": dict(d_model=64, d_ff=128, d_kv=16, num_layers=2, num_decoder_layers=2, num_heads=4),
}


@dataclass
class Seq2SeqConfig(TrainConfig):
    """Training an encoder-decoder on ``input_field`` -> ``target_field`` rows."""

    model: str = "t5-small"
    input_field: str = "input"
    target_field: str = "target"
    # Tokens; longer inputs/targets are cut (counted in the summary), as the released DivoT5 code does.
    source_len: int = 512
    target_len: int = 256
    # Add DivoT5's task, language and sentinel tokens to the tokenizer when it lacks them.
    divot5_tokens: bool = True
    packing: bool = False
    lr: float = 5e-4
    weight_decay: float = 0.01


def prepare_tokenizer(tokenizer, divot5_tokens: bool = True):
    """The tokenizer with DivoT5's tokens (kept whole) and an end-of-sequence and pad token."""
    if divot5_tokens:
        from editlm.data.transforms.divot5 import special_tokens

        vocab = tokenizer.get_vocab()
        missing = [t for t in special_tokens() if t not in vocab]
        if missing:
            tokenizer.add_special_tokens(
                {"additional_special_tokens": missing}, replace_extra_special_tokens=False
            )
    if tokenizer.eos_token is None:
        raise DataError("the tokenizer has no end-of-sequence token (targets must end with one)")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def init_t5(name: str, tokenizer, seed: int = 0, **overrides: Any):
    """A freshly initialised (seeded) ``T5ForConditionalGeneration`` of preset ``name`` for ``tokenizer``."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    if name not in T5_PRESETS:
        raise DataError(f"unknown seq2seq preset {name!r}; presets: {', '.join(T5_PRESETS)}")
    config = T5Config(
        vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id, **{**T5_PRESETS[name], **overrides},
    )  # fmt: skip
    torch.manual_seed(seed)
    return T5ForConditionalGeneration(config)


def load_seq2seq(path: str | Path):
    """A local encoder-decoder checkpoint (CodeT5, T5, BART...); DataError when it is not one."""
    from transformers import AutoConfig, AutoModelForSeq2SeqLM

    path = Path(path)
    if not (path / "config.json").is_file():
        raise DataError(f"{path}: neither a seq2seq preset ({', '.join(T5_PRESETS)}) nor a model directory")
    config = AutoConfig.from_pretrained(path, local_files_only=True)
    if not getattr(config, "is_encoder_decoder", False):
        raise DataError(f"{path}: model type {config.model_type!r} is not an encoder-decoder")
    return AutoModelForSeq2SeqLM.from_pretrained(path, local_files_only=True)


def encode_pairs(tokenizer, rows: list[dict], config: Seq2SeqConfig) -> tuple[list[dict], dict]:
    """Token ids of each row (target + eos as labels) and counts of what was cut or skipped."""
    report = {"rows": len(rows), "skipped_empty": 0, "cut_inputs": 0, "cut_targets": 0}
    sources = [str(r[config.input_field] or "") for r in rows]
    targets = [str(r[config.target_field] or "") for r in rows]
    src = tokenizer(sources, add_special_tokens=False)["input_ids"]
    tgt = tokenizer(targets, add_special_tokens=False)["input_ids"]
    out = []
    for s, t in zip(src, tgt, strict=True):
        if not s or not t:
            report["skipped_empty"] += 1
            continue
        report["cut_inputs"] += len(s) > config.source_len
        report["cut_targets"] += len(t) + 1 > config.target_len
        labels = (t[: config.target_len - 1]) + [tokenizer.eos_token_id]
        out.append({"input_ids": s[: config.source_len], "labels": labels})
    return out, report


def seq2seq(config: Seq2SeqConfig, callbacks: list | None = None) -> Path:
    """Train on ``config.data`` (JSONL/Parquet rows with input and target); returns the checkpoint."""
    from transformers import DataCollatorForSeq2Seq, PrinterCallback, Trainer, set_seed
    from transformers.trainer_utils import get_last_checkpoint

    from editlm.models.loading import load_tokenizer, save_checkpoint
    from editlm.train.callbacks import JsonlMetrics, RichProgress
    from editlm.train.run import _write_json, sft_arguments, use_bf16

    if not config.data:
        raise DataError("seq2seq training needs data: JSONL/Parquet rows (e.g. from editlm directional)")
    preset = config.model in T5_PRESETS
    source = config.tokenizer or ("" if preset else config.model)
    if not source:
        raise DataError(f"model preset {config.model!r} needs a tokenizer directory (set tokenizer)")
    tokenizer = prepare_tokenizer(load_tokenizer(source), config.divot5_tokens)
    fields = (config.input_field, config.target_field)
    records = load_records(config.data, required=fields)
    if config.eval_data:
        train_records, eval_records = records, load_records(config.eval_data, required=fields)
    else:
        train_records, eval_records = split_eval(records, config.eval_fraction, config.seed)
    rows, report = encode_pairs(tokenizer, train_records, config)
    eval_rows, _ = encode_pairs(tokenizer, eval_records, config) if eval_records else ([], {})
    if not rows:
        raise DataError(f"{config.data}: no usable rows ({report})")
    set_seed(config.seed)
    import torch

    if not torch.cuda.is_available():
        torch.set_flush_denormal(True)  # as run._train: subnormal weights make CPU matmuls crawl
    model = init_t5(config.model, tokenizer, config.seed) if preset else load_seq2seq(config.model)
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    extra = [JsonlMetrics(out / "metrics.jsonl"), *(callbacks or [])]
    if config.progress:
        extra.append(RichProgress(f"seq2seq {out.name}"))
    trainer = Trainer(
        model=model,
        # the trainer's arguments as every editlm job builds them (TRL's SFTConfig is a
        # TrainingArguments; its SFT-only fields are not read by the plain Trainer)
        args=sft_arguments(
            config, has_eval=bool(eval_rows), bf16=use_bf16(config.bf16), include_num_input_tokens_seen="no"
        ),
        train_dataset=rows,
        eval_dataset=eval_rows or None,
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100),
        processing_class=tokenizer,
        callbacks=extra,
    )
    trainer.remove_callback(PrinterCallback)
    last = get_last_checkpoint(str(out)) if config.resume and out.is_dir() else None
    result = trainer.train(resume_from_checkpoint=last)
    metrics: dict[str, Any] = dict(result.metrics)
    if eval_rows:
        metrics.update(trainer.evaluate())
    if trainer.is_world_process_zero():
        save_checkpoint(trainer.model, tokenizer, out)
        summary = {"kind": "seq2seq", "config": asdict(config), "data": report, "metrics": metrics}
        _write_json(out / "editlm_train.json", summary)
    return out
