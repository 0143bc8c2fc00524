"""Pretraining and loss-masked fine-tuning with TRL's ``SFTTrainer``.

The trainer (transformers' ``Trainer`` under TRL's) gives exact resume (optimizer, scheduler, RNG and
data position are checkpointed), gradient accumulation with token-level loss averaging, warmup + cosine
decay, bf16 autocast over fp32 master weights, TensorBoard/W&B, DeepSpeed/FSDP and multi-GPU under
``accelerate launch``; TRL adds best-fit packing, padding-free batches and a fused LM head. editlm adds
the data side (loss masks by character offset, the BOS rule shared with generation, overlong policy and
the data report), checks made before any work (context length, special tokens, the output directory),
recipes, JSONL metrics and progress.
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

from editlm.io.tables import new_file_mode
from editlm.train.config import ConfigError, PretrainConfig, SFTConfig, TrainConfig
from editlm.train.data import (
    CountingCollator,
    DataError,
    DataReport,
    encode_documents,
    encode_sft,
    iter_texts,
    load_records,
    pack_dataset,
    split_eval,
    to_dataset,
)

log = logging.getLogger(__name__)
SUMMARY_FILE = "editlm_train.json"
DTYPES = ("auto", "float32", "bfloat16", "float16")
DATA_CACHE = ".editlm-data"


def pretrain(config: PretrainConfig, callbacks: list | None = None) -> Path:
    """Causal LM pretraining on ``config.data`` (a code corpus); returns the checkpoint directory."""
    if not config.data:
        raise DataError("pretraining needs a corpus: set data (a directory, JSONL/Parquet file or 'stdlib')")
    run = _prepare(config, "pretrain")
    tokenizer = run["tokenizer"]

    def encode(report: DataReport, eval_report: DataReport):
        texts = iter_texts(config.data, config.glob, config.text_field)
        docs = [t for t in itertools.islice(texts, config.max_documents or None) if t.strip()]
        if not docs:
            raise DataError(f"{config.data}: the corpus is empty (no non-blank documents)")
        if config.eval_data:
            train_docs, eval_docs = docs, list(iter_texts(config.eval_data, config.glob, config.text_field))
        else:
            train_docs, eval_docs = split_eval(docs, config.eval_fraction, config.seed)
        return (
            encode_documents(tokenizer, train_docs, seq_len=config.seq_len, report=report),
            encode_documents(tokenizer, eval_docs, seq_len=config.seq_len, report=eval_report),
        )

    return _train(config, run, encode, "pretrain", callbacks)


def sft(config: SFTConfig, callbacks: list | None = None) -> Path:
    """Fine-tuning on prompt/completion rows, loss on the completion unless ``full_loss``; returns the checkpoint."""
    if not config.data:
        raise DataError("fine-tuning needs data: a JSONL/Parquet file or directory of prompt/completion rows")
    if config.overlong not in ("skip", "truncate"):
        raise ConfigError(f"overlong must be 'skip' or 'truncate', not {config.overlong!r}")
    run = _prepare(config, "sft")
    tokenizer = run["tokenizer"]
    fields = (config.prompt_field, config.completion_field)

    def encode(report: DataReport, eval_report: DataReport):
        records = load_records(config.data, required=fields)
        if config.eval_data:
            train_records, eval_records = records, load_records(config.eval_data, required=fields)
        else:
            train_records, eval_records = split_eval(records, config.eval_fraction, config.seed)

        def encode_rows(rows: list[dict], rep: DataReport):
            return encode_sft(
                tokenizer, rows, seq_len=config.seq_len, prompt_field=config.prompt_field,
                completion_field=config.completion_field, full_loss=config.full_loss,
                marker=config.loss_from_marker, overlong=config.overlong, report=rep,
            )  # fmt: skip

        segments = encode_rows(train_records, report)
        if report.skipped_overlong:
            log.warning(
                "skipped %d of %d samples longer than seq_len=%d tokens (set overlong='truncate' to keep them)",
                report.skipped_overlong, report.samples, config.seq_len,
            )  # fmt: skip
        if not segments:
            raise DataError(f"{config.data}: no usable samples ({report.as_dict()})")
        return segments, encode_rows(eval_records, eval_report)

    return _train(config, run, encode, "sft", callbacks)


# ----------------------------------------------------------------------------------------- checks


def _prepare(config: TrainConfig, kind: str) -> dict[str, Any]:
    """Everything checked before any data is read or model built: settings, the model's context, the
    tokenizer's special tokens, and whether the output directory holds this run (resume) or another."""
    from editlm.models.loading import load_config
    from editlm.models.presets import PRESETS
    from editlm.models.tokens import check_context, ensure_special_tokens
    from editlm.train.resume import claim_output_dir, run_record

    if config.torch_dtype not in DTYPES:
        raise ConfigError(f"torch_dtype must be one of {', '.join(DTYPES)}, not {config.torch_dtype!r}")
    if config.bf16 not in ("auto", "true", "false"):  # an error now, not after tokenizing
        raise ConfigError(f"bf16 must be 'auto', 'true' or 'false', not {config.bf16!r}")
    if config.model not in PRESETS:
        check_context(load_config(config.model), config.seq_len)
    tokenizer = _tokenizer(config)
    notes = ensure_special_tokens(tokenizer, add=True)
    record = run_record(config, kind)
    resume = claim_output_dir(
        Path(config.output_dir), record, resume=config.resume, overwrite=config.overwrite,
        main_process=_main_process(),
    )  # fmt: skip
    return {"tokenizer": tokenizer, "notes": notes, "resume": resume, "record": record}


def _main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _tokenizer(config: TrainConfig):
    from editlm.models.loading import load_tokenizer
    from editlm.models.presets import PRESETS

    source = config.tokenizer or (config.model if config.model not in PRESETS else "")
    if not source:
        raise DataError(f"model preset {config.model!r} needs a tokenizer directory (set tokenizer)")
    return load_tokenizer(source)


def use_bf16(setting: str) -> bool:
    """bf16 autocast on a GPU that has it ("auto" or "true"); fp32 elsewhere ("true" on CPU says so)."""
    import torch

    if setting not in ("auto", "true", "false"):
        raise ConfigError(f"bf16 must be 'auto', 'true' or 'false', not {setting!r}")
    if setting == "false":
        return False
    supported = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if setting == "true" and not supported:
        log.warning("bf16=true, but there is no GPU with bf16 support here: training in float32")
    return supported


def _save_dtype(setting: str, checkpoint_dtype):
    import torch

    return checkpoint_dtype if setting == "auto" else getattr(torch, setting)


def _model(config: TrainConfig, tokenizer, bf16: bool):
    """The model to train, and the dtype to save it in. Full fine-tuning loads fp32 master weights whatever
    the checkpoint's dtype (bf16 weights take updates below their precision as no change at all); LoRA
    keeps a bf16 base frozen in bf16 under bf16 autocast (PEFT keeps the adapters in fp32)."""
    import torch

    from editlm.models.loading import checkpoint_dtype, load_config, load_model
    from editlm.models.presets import PRESETS, init_model

    attn = config.attn_implementation or "sdpa"
    if config.model in PRESETS:
        preset_ctx = PRESETS[config.model]["max_position_embeddings"]
        model = init_model(
            config.model, tokenizer, seed=config.seed, max_position_embeddings=max(preset_ctx, config.seq_len)
        )
        stored = torch.float32
    else:
        stored = checkpoint_dtype(load_config(config.model))
        low = stored in (torch.bfloat16, torch.float16)
        dtype = stored if (config.lora_r > 0 and bf16 and low) else torch.float32
        model = load_model(config.model, dtype=dtype, attn_implementation=attn)
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))
    for name in ("eos_token_id", "pad_token_id"):
        if getattr(model.config, name, None) is None:
            setattr(model.config, name, getattr(tokenizer, name))
    model.config.use_cache = False
    if config.lora_r > 0:
        model = _lora(model, config)
    return model, _save_dtype(config.torch_dtype, stored)


def _lora(model, config: TrainConfig):
    from peft import LoraConfig, get_peft_model

    targets = list(config.lora_target_modules)
    target: str | list[str] = "all-linear" if targets == ["all-linear"] else targets
    try:
        return get_peft_model(
            model,
            LoraConfig(
                r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                target_modules=target, task_type="CAUSAL_LM",
            ),
        )  # fmt: skip
    except ValueError as exc:
        linear = sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                         if type(module).__name__ in ("Linear", "Conv1D")})  # fmt: skip
        raise ConfigError(
            f"lora_target_modules={targets} match no layer of this {model.config.model_type} model ({exc}); "
            f"its linear layers are: {', '.join(linear)} (or use all-linear)"
        ) from None


def sft_arguments(config: TrainConfig, has_eval: bool, bf16: bool, **extra: Any):
    """The ``trl.SFTConfig`` (TrainingArguments) for ``config``: editlm's settings, then ``config.trainer``."""
    import torch
    from trl import SFTConfig as TrlSFTConfig

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
        bf16=bf16,
        fp16=False,
        activation_checkpointing=False,  # on with --set gradient_checkpointing=true
        gradient_checkpointing=None,
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
        # editlm's rows are tokenized, masked, cut and packed already; TRL takes them as they are.
        dataset_kwargs={"skip_prepare_dataset": True},
        packing=config.packing,
        padding_free=config.packing,
        max_length=config.seq_len,
        completion_only_loss=None,
        model_init_kwargs=None,
    )
    trainer = dict(config.trainer)
    for old, new in (("gradient_checkpointing", "activation_checkpointing"),
                     ("gradient_checkpointing_kwargs", "activation_checkpointing_kwargs")):  # fmt: skip
        if old in trainer:  # transformers 5's new names; the old ones are what users (and TRL's docs) say
            trainer[new] = trainer.pop(old)
    settings.update(trainer)
    settings.update(extra)
    if settings["padding_free"] and not settings["packing"]:
        settings["max_length"] = None  # samples are cut at seq_len already; TRL refuses a length here
    try:
        return TrlSFTConfig(**settings)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"trainer settings rejected by trl.SFTConfig: {exc}") from exc


def training_arguments(config: TrainConfig, has_eval: bool, **extra: Any):
    """Plain transformers ``TrainingArguments`` with the same settings, for trainers other than SFT
    (``editlm train seq2seq``): the SFT-only fields are left out."""
    import dataclasses

    from transformers import TrainingArguments

    sft = sft_arguments(config, has_eval, bf16=use_bf16(config.bf16), **extra)
    names = {f.name for f in dataclasses.fields(TrainingArguments) if f.init}
    values = {f.name: getattr(sft, f.name) for f in dataclasses.fields(sft) if f.init and f.name in names}
    values["gradient_checkpointing"] = values["gradient_checkpointing_kwargs"] = (
        None  # the new names hold them
    )
    try:
        return TrainingArguments(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"trainer settings rejected by TrainingArguments: {exc}") from exc


# ----------------------------------------------------------------------------------------- training


def _encoded(config: TrainConfig, run: dict, encode) -> tuple[Any, Any, DataReport]:
    """The tokenized train and eval sets, built once per run and kept in ``OUTPUT/.editlm-data``: a resumed
    run, and every process but the first under ``accelerate launch``, load them instead of reading and
    tokenizing the data again (the main process builds them first)."""
    import hashlib

    from accelerate import PartialState
    from datasets import load_from_disk

    key = hashlib.sha256(json.dumps(run["record"], sort_keys=True, default=str).encode()).hexdigest()[:16]
    cache = Path(config.output_dir) / DATA_CACHE / key
    with PartialState().main_process_first():
        if not (cache / "report.json").is_file():
            report, eval_report = DataReport(), DataReport()
            segments, eval_segments = encode(report, eval_report)
            tmp = cache.with_name(f".{key}-{os.getpid()}")
            to_dataset(segments).save_to_disk(tmp / "train")
            if eval_segments:
                to_dataset(eval_segments).save_to_disk(tmp / "eval")
            _write_json(tmp / "report.json", asdict(report))
            if cache.exists():  # another process finished first
                import shutil

                shutil.rmtree(tmp)
            else:
                os.replace(tmp, cache)
        report = DataReport(**json.loads((cache / "report.json").read_text()))
        train = load_from_disk(str(cache / "train"))
        held = load_from_disk(str(cache / "eval")) if (cache / "eval").is_dir() else None
    return train, held, report


def _datasets(config: TrainConfig, train, held, report: DataReport):
    if config.packing:
        return pack_dataset(train, config.seq_len, report), (
            pack_dataset(held, config.seq_len) if held is not None else None
        )
    return train, held


def _train(config: TrainConfig, run: dict, encode, kind: str, extra_callbacks=None) -> Path:
    from transformers import PrinterCallback, set_seed
    from transformers.trainer_utils import get_last_checkpoint

    from editlm.train.callbacks import JsonlMetrics, MaxTime, progress_callback
    from editlm.train.trainer import EditlmTrainer, use_segment_attention

    tokenizer = run["tokenizer"]
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    set_seed(config.seed)
    import torch

    if not torch.cuda.is_available():
        # Tiny weights and Adam updates drift into subnormal floats, which make CPU matmuls many times
        # slower; flushing them to zero costs nothing in accuracy.
        torch.set_flush_denormal(True)
    train, held, report = _encoded(config, run, encode)
    train_ds, eval_ds = _datasets(config, train, held, report)
    bf16 = use_bf16(config.bf16)
    model, save_dtype = _model(config, tokenizer, bf16)
    segmented = config.packing and not config.attn_implementation and use_segment_attention(model)
    args = sft_arguments(config, has_eval=eval_ds is not None, bf16=bf16)
    callbacks = [JsonlMetrics(out / "metrics.jsonl"), *(extra_callbacks or [])]
    if config.max_time > 0:
        callbacks.append(MaxTime(config.max_time))
    if config.progress:
        callbacks.append(progress_callback(f"{kind} {out.name}", config.max_time))
    trainer = EditlmTrainer(
        model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds, processing_class=tokenizer,
        callbacks=callbacks,
    )  # fmt: skip
    trainer.data_collator = CountingCollator(trainer.data_collator, report)
    trainer.remove_callback(PrinterCallback)
    last = get_last_checkpoint(str(out)) if run["resume"] else None
    if last:
        log.info("resuming from %s", last)
    result = trainer.train(resume_from_checkpoint=last)
    metrics: dict[str, Any] = dict(result.metrics)
    if eval_ds is not None:
        metrics.update(trainer.evaluate())
    if trainer.is_world_process_zero():
        final = trainer.model
        if config.lora_r > 0:
            final = final.merge_and_unload()
        final.config.use_cache = True
        if segmented:
            final.set_attn_implementation("sdpa")
        final = final.to(save_dtype)
        from editlm.models.loading import save_checkpoint

        save_checkpoint(final, tokenizer, out)
        summary = {
            "kind": kind, "config": asdict(config), "data": report.as_dict(), "metrics": metrics,
            "notes": run["notes"], "attention": "editlm segments" if segmented else final.config._attn_implementation,
            "saved_dtype": str(save_dtype).removeprefix("torch."),
        }  # fmt: skip
        _write_json(out / SUMMARY_FILE, summary)
        import shutil

        shutil.rmtree(
            out / DATA_CACHE, ignore_errors=True
        )  # the finished model directory holds the model only
    return out


def _write_json(path: Path, value: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(value, fh, indent=2, default=str)
    os.chmod(tmp, new_file_mode())
    os.replace(tmp, path)
