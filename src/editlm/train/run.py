"""Pretraining and loss-masked fine-tuning with the transformers ``Trainer``.

The Trainer gives exact resume (optimizer, scheduler, RNG and data position are checkpointed),
gradient accumulation with token-level loss averaging, warmup + cosine decay, bf16, TensorBoard and
multi-GPU under ``accelerate launch``; editlm adds the data side (loss masks, packing without
cross-sample attention), recipes, JSONL metrics and a rich progress bar.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from editlm.train.config import PretrainConfig, SFTConfig, TrainConfig
from editlm.train.data import (
    DataError,
    DataReport,
    PackedCollator,
    chunk_stream,
    encode_documents,
    encode_sft,
    iter_texts,
    load_records,
    pack,
    split_eval,
    unpacked,
)

log = logging.getLogger(__name__)
SUMMARY_FILE = "editlm_train.json"


def pretrain(config: PretrainConfig, callbacks: list | None = None) -> Path:
    """Causal LM pretraining on ``config.data`` (a code corpus); returns the checkpoint directory."""
    tokenizer = _tokenizer(config)
    if not config.data:
        raise DataError("pretraining needs a corpus: set data (a directory, JSONL/Parquet file or 'stdlib')")
    texts = iter_texts(config.data, config.glob, config.text_field)
    docs = [t for t in itertools.islice(texts, config.max_documents or None) if t.strip()]
    if not docs:
        raise DataError(f"{config.data}: the corpus is empty (no non-blank documents)")
    if config.eval_data:
        train_docs, eval_docs = (
            docs,
            [t for t in iter_texts(config.eval_data, config.glob, config.text_field)],
        )
    else:
        train_docs, eval_docs = split_eval(docs, config.eval_fraction, config.seed)
    report, eval_report = DataReport(), DataReport()
    rows = _rows(
        encode_documents(tokenizer, train_docs, seq_len=config.seq_len, report=report),
        config,
        report,
        stream=True,
    )
    eval_rows = _rows(encode_documents(tokenizer, eval_docs, seq_len=config.seq_len, report=eval_report), config,
                      eval_report, stream=True)  # fmt: skip
    return _train(config, tokenizer, rows, eval_rows, report, "pretrain", callbacks)


def sft(config: SFTConfig, callbacks: list | None = None) -> Path:
    """Fine-tuning on prompt/completion rows, loss on the completion unless ``full_loss``; returns the checkpoint."""
    tokenizer = _tokenizer(config)
    if not config.data:
        raise DataError("fine-tuning needs data: a JSONL/Parquet file or directory of prompt/completion rows")
    fields = (config.prompt_field, config.completion_field)
    records = load_records(config.data, required=fields)
    if config.eval_data:
        train_records, eval_records = records, load_records(config.eval_data, required=fields)
    else:
        train_records, eval_records = split_eval(records, config.eval_fraction, config.seed)
    report, eval_report = DataReport(), DataReport()

    def encode(rows: list[dict], rep: DataReport):
        return encode_sft(
            tokenizer, rows, seq_len=config.seq_len, prompt_field=config.prompt_field,
            completion_field=config.completion_field, full_loss=config.full_loss,
            marker=config.loss_from_marker, overlong=config.overlong, report=rep,
        )  # fmt: skip

    segments = encode(train_records, report)
    if report.skipped_overlong:
        log.warning(
            "skipped %d of %d samples longer than seq_len=%d tokens (set overlong='truncate' to keep them)",
            report.skipped_overlong, report.samples, config.seq_len,
        )  # fmt: skip
    if not segments:
        raise DataError(f"{config.data}: no usable samples ({report.as_dict()})")
    rows = _rows(segments, config, report)
    eval_rows = _rows(encode(eval_records, eval_report), config, eval_report)
    return _train(config, tokenizer, rows, eval_rows, report, "sft", callbacks)


# ----------------------------------------------------------------------------------------- helpers


def _tokenizer(config: TrainConfig):
    from editlm.models.loading import load_tokenizer
    from editlm.models.presets import PRESETS

    source = config.tokenizer or (config.model if config.model not in PRESETS else "")
    if not source:
        raise DataError(f"model preset {config.model!r} needs a tokenizer directory (set tokenizer)")
    return load_tokenizer(source)


def _rows(segments, config: TrainConfig, report: DataReport, stream: bool = False) -> list[dict]:
    if not config.packing:
        return unpacked(segments, report)
    return (
        chunk_stream(segments, config.seq_len, report) if stream else pack(segments, config.seq_len, report)
    )


def _model(config: TrainConfig, tokenizer):
    from editlm.models.loading import load_model
    from editlm.models.presets import PRESETS, init_model

    if config.model in PRESETS:
        preset_ctx = PRESETS[config.model]["max_position_embeddings"]
        model = init_model(
            config.model, tokenizer, seed=config.seed, max_position_embeddings=max(preset_ctx, config.seq_len)
        )
    else:
        model = load_model(config.model)
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))
    model.config.use_cache = False
    if config.lora_r > 0:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            model,
            LoraConfig(
                r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                target_modules=list(config.lora_target_modules), task_type="CAUSAL_LM",
            ),
        )  # fmt: skip
    return model


def use_bf16(setting: str) -> bool:
    """bf16 on a GPU that has it ("auto"), never on CPU, whatever the recipe says."""
    import torch

    if setting not in ("auto", "true", "false"):
        raise ValueError(f"bf16 must be 'auto', 'true' or 'false', not {setting!r}")
    if setting == "false" or not torch.cuda.is_available():
        return False
    return torch.cuda.is_bf16_supported()


def training_arguments(config: TrainConfig, has_eval: bool, **extra: Any):
    """The ``TrainingArguments`` for ``config``."""
    import torch
    from transformers import TrainingArguments

    settings: dict[str, Any] = dict(
        output_dir=config.output_dir,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.lr,
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup_steps,
        lr_scheduler_type=config.scheduler,
        max_grad_norm=config.max_grad_norm,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        seed=config.seed,
        data_seed=config.seed,
        bf16=use_bf16(config.bf16),
        logging_steps=config.logging_steps,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=config.eval_steps if has_eval else None,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        report_to=["tensorboard"] if config.tensorboard else [],
        disable_tqdm=True,
        remove_unused_columns=False,
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=config.dataloader_workers,
        dataloader_pin_memory=torch.cuda.is_available(),
        optim="adamw_torch",
    )
    settings.update(extra)
    return TrainingArguments(**settings)


def _train(
    config: TrainConfig, tokenizer, rows, eval_rows, report: DataReport, kind: str, extra_callbacks=None
) -> Path:
    from transformers import PrinterCallback, set_seed
    from transformers.trainer_utils import get_last_checkpoint

    from editlm.train.callbacks import JsonlMetrics, MaxTime, progress_callback
    from editlm.train.trainer import MaskedLMTrainer, use_segment_attention

    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    set_seed(config.seed)
    import torch

    if not torch.cuda.is_available():
        # Tiny weights and Adam updates drift into subnormal floats, which make CPU matmuls many times
        # slower; flushing them to zero costs nothing in accuracy.
        torch.set_flush_denormal(True)
    model = _model(config, tokenizer)
    segments = config.packing and use_segment_attention(model)
    args = training_arguments(config, has_eval=bool(eval_rows))
    callbacks = [JsonlMetrics(out / "metrics.jsonl"), *(extra_callbacks or [])]
    if config.max_time > 0:
        callbacks.append(MaxTime(config.max_time))
    if config.progress:
        callbacks.append(progress_callback(f"{kind} {out.name}", config.max_time))
    trainer = MaskedLMTrainer(
        model=model,
        args=args,
        train_dataset=rows,
        eval_dataset=eval_rows or None,
        data_collator=PackedCollator(tokenizer.pad_token_id),
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)
    last = get_last_checkpoint(str(out)) if config.resume and out.is_dir() else None
    if last:
        log.info("resuming from %s", last)
    result = trainer.train(resume_from_checkpoint=last)
    metrics: dict[str, Any] = dict(result.metrics)
    if eval_rows:
        metrics.update(trainer.evaluate())
    if trainer.is_world_process_zero():
        final = trainer.model
        if config.lora_r > 0:
            final = final.merge_and_unload()
        final.config.use_cache = True
        if segments:
            final.set_attn_implementation("sdpa")
        from editlm.models.loading import save_checkpoint

        save_checkpoint(final, tokenizer, out)
        summary = {"kind": kind, "config": asdict(config), "data": report.as_dict(), "metrics": metrics}
        _write_json(out / SUMMARY_FILE, summary)
    return out


def _write_json(path: Path, value: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(value, fh, indent=2, default=str)
    os.replace(tmp, path)
