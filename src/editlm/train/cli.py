"""``editlm train ...``: tokenizer, pretrain, sft, presets, convert.

Module-level imports stay light (typer, stdlib) so that ``editlm --help`` is fast.
"""

from __future__ import annotations

from pathlib import Path

import typer

RECIPE = typer.Option(None, "--recipe", "-r", help="A TOML recipe: a path or a name under recipes/.")
SETS = typer.Option(None, "--set", "-s", help="Override any recipe setting: --set key=value (repeatable).")
OUTPUT = typer.Option(None, "--output", "-o", help="Checkpoint directory (output_dir).")
MODEL = typer.Option(None, "--model", "-m", help="A preset (editlm train presets) or a local checkpoint.")
TOKENIZER = typer.Option(None, "--tokenizer", "-t", help="Tokenizer directory (default: the model's).")
DATA = typer.Option(None, "--data", "-d", help="Training data.")
MAX_STEPS = typer.Option(None, "--max-steps", help="Optimizer steps (overrides epochs).")
SEQ_LEN = typer.Option(None, "--seq-len", help="Context length of a training row in tokens.")
BATCH = typer.Option(None, "--batch-size", help="Rows per device per step.")
LR = typer.Option(None, "--lr", help="Peak learning rate.")
SEED = typer.Option(None, "--seed", help="Seed for initialisation, data order and held-out split.")
MAX_TIME = typer.Option(
    None,
    "--max-time",
    help="Wall-clock budget in seconds: the learning rate decays to zero there, then a checkpoint.",
)
GRAD_ACCUM = typer.Option(None, "--grad-accum", help="Batches accumulated per optimizer step.")
WARMUP = typer.Option(None, "--warmup", help="Learning-rate warmup steps.")
OVERWRITE = typer.Option(
    None, "--overwrite", help="Start afresh in an output directory that holds another run."
)


def _fail(exc: Exception) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(2)


def _known_errors() -> tuple[type[Exception], ...]:
    from editlm.models.loading import NotACausalLMError
    from editlm.models.tokenizer import EmptyCorpusError
    from editlm.models.tokens import ContextLengthError, SpecialTokenError
    from editlm.train.config import ConfigError
    from editlm.train.data import DataError
    from editlm.train.resume import RunMismatchError

    return (NotACausalLMError, EmptyCorpusError, ConfigError, DataError, ContextLengthError, SpecialTokenError,
            RunMismatchError)  # fmt: skip


DECONTAMINATE = typer.Option(
    False,
    "--decontaminate",
    help="Drop training rows that contain a benchmark program (otherwise they are only counted and warned about).",
)


def _benchmark_overlap(cfg, fields: list[str], drop: bool):
    """Every training command checks its data against every registered benchmark (n-gram overlap):
    a warning with the counts, or with ``--decontaminate`` a clean copy in the output directory that
    training then reads."""
    import dataclasses

    from rich.console import Console

    from editlm.data.transforms.contamination import check_training_data

    if not cfg.data:
        return cfg
    drop_to = Path(cfg.output_dir) / "train-decontaminated.jsonl" if drop else None
    report = check_training_data(cfg.data, fields, glob=getattr(cfg, "glob", "*.py"), drop_to=drop_to)
    console = Console(stderr=True)
    if report["contaminated"]:
        where = ", ".join(f"{name} {count}" for name, count in sorted(report["by_benchmark"].items()))
        verb = "dropped" if drop else "kept (use --decontaminate to drop them)"
        console.print(
            f"[bold yellow]warning:[/] {report['contaminated']} of {report['documents']} training rows contain "
            f"a benchmark program ({where}); {verb}"
        )
    if drop:
        return dataclasses.replace(cfg, data=report["written"])
    return cfg


def _explicit(**options) -> dict:
    names = {"output": "output_dir"}
    return {names.get(k, k): v for k, v in options.items() if v is not None}


def register(app: typer.Typer) -> None:
    """Add ``editlm train`` and its commands to ``app``."""
    train = typer.Typer(
        help="Train tokenizers and models: pretraining and loss-masked fine-tuning.", no_args_is_help=True
    )
    app.add_typer(train, name="train")

    @train.command("tokenizer")
    def tokenizer_cmd(
        corpus: list[str] = typer.Argument(
            None, help="Files, directories, JSONL/Parquet files or 'stdlib' (default: the Python stdlib)."
        ),
        output: Path = typer.Option(..., "--output", "-o", help="Tokenizer directory."),
        vocab_size: int = typer.Option(8192, help="Vocabulary size, special and whitespace tokens included."),
        glob: str = typer.Option("*.py", help="Files taken from corpus directories."),
        text_field: str = typer.Option("text", help="Text column of JSONL/Parquet corpora."),
        min_frequency: int = typer.Option(2, help="Least count of a merge."),
    ) -> None:
        """Train a byte-level BPE code tokenizer (whitespace runs, <|diff|>, FIM sentinels)."""
        from editlm.models.tokenizer import train_tokenizer
        from editlm.train.data import iter_texts

        def texts():
            for source in corpus or ["stdlib"]:
                yield from iter_texts(source, glob, text_field)

        try:
            tok = train_tokenizer(texts(), output, vocab_size=vocab_size, min_frequency=min_frequency)
        except _known_errors() as exc:
            _fail(exc)
        typer.echo(f"tokenizer with {len(tok)} tokens saved to {output}")

    @train.command("pretrain")
    def pretrain_cmd(
        recipe: str = RECIPE, sets: list[str] = SETS, output: str = OUTPUT, model: str = MODEL,
        tokenizer: str = TOKENIZER, data: str = DATA, max_steps: int = MAX_STEPS, seq_len: int = SEQ_LEN,
        batch_size: int = BATCH, lr: float = LR, seed: int = SEED, max_time: float = MAX_TIME,
        grad_accum: int = GRAD_ACCUM, warmup: int = WARMUP, decontaminate: bool = DECONTAMINATE,
        overwrite: bool = OVERWRITE,
    ) -> None:  # fmt: skip
        """Causal LM pretraining on a code corpus (packed rows, warmup + cosine, held-out loss)."""
        from editlm.train.config import PretrainConfig, load_config
        from editlm.train.run import pretrain

        try:
            overrides = _explicit(output=output, model=model, tokenizer=tokenizer, data=data,
                                  max_steps=max_steps, seq_len=seq_len, batch_size=batch_size, lr=lr, seed=seed,
                                  max_time=max_time, grad_accum=grad_accum, warmup_steps=warmup,
                                  overwrite=overwrite)  # fmt: skip
            cfg = load_config(PretrainConfig, recipe, overrides, sets)
            out = pretrain(_benchmark_overlap(cfg, [cfg.text_field], decontaminate))
        except _known_errors() as exc:
            _fail(exc)
        typer.echo(f"model saved to {out}")

    @train.command("sft")
    def sft_cmd(
        recipe: str = RECIPE, sets: list[str] = SETS, output: str = OUTPUT, model: str = MODEL,
        tokenizer: str = TOKENIZER, data: str = DATA, max_steps: int = MAX_STEPS, seq_len: int = SEQ_LEN,
        batch_size: int = BATCH, lr: float = LR, seed: int = SEED, max_time: float = MAX_TIME,
        grad_accum: int = GRAD_ACCUM, warmup: int = WARMUP, overwrite: bool = OVERWRITE,
        full_loss: bool = typer.Option(
            None, "--full-loss/--completion-loss", help="Loss on every token (ablation) or on the completion only."
        ),
        lora_r: int = typer.Option(None, "--lora-r", help="Train LoRA adapters of this rank (merged at the end)."),
        decontaminate: bool = DECONTAMINATE,
    ) -> None:  # fmt: skip
        """Fine-tune on prompt/completion rows with the loss on the completion only (by default)."""
        from editlm.train.config import SFTConfig, load_config
        from editlm.train.run import sft

        try:
            overrides = _explicit(output=output, model=model, tokenizer=tokenizer, data=data,
                                  max_steps=max_steps, seq_len=seq_len, batch_size=batch_size, lr=lr, seed=seed,
                                  full_loss=full_loss, lora_r=lora_r, max_time=max_time, grad_accum=grad_accum,
                                  warmup_steps=warmup, overwrite=overwrite)  # fmt: skip
            cfg = load_config(SFTConfig, recipe, overrides, sets)
            out = sft(_benchmark_overlap(cfg, [cfg.prompt_field, cfg.completion_field], decontaminate))
        except _known_errors() as exc:
            _fail(exc)
        typer.echo(f"model saved to {out}")

    @train.command("seq2seq")
    def seq2seq_cmd(
        recipe: str = RECIPE, sets: list[str] = SETS, output: str = OUTPUT, tokenizer: str = TOKENIZER,
        data: str = DATA, max_steps: int = MAX_STEPS, batch_size: int = BATCH, lr: float = LR, seed: int = SEED,
        model: str = typer.Option(None, "--model", "-m", help="t5-small, t5-test or a local seq2seq checkpoint (CodeT5)."),
    ) -> None:  # fmt: skip
        """Encoder-decoder (T5) training on input -> target rows, e.g. editlm directional's DivoT5 rows."""
        from editlm.train.config import load_config
        from editlm.train.seq2seq import Seq2SeqConfig, seq2seq

        try:
            overrides = _explicit(output=output, model=model, tokenizer=tokenizer, data=data,
                                  max_steps=max_steps, batch_size=batch_size, lr=lr, seed=seed)  # fmt: skip
            out = seq2seq(load_config(Seq2SeqConfig, recipe, overrides, sets))
        except _known_errors() as exc:
            _fail(exc)
        typer.echo(f"model saved to {out}")

    @train.command("presets")
    def presets_cmd() -> None:
        """List the model presets and their shapes."""
        from editlm.models.presets import PRESETS

        for name, shape in PRESETS.items():
            typer.echo(f"{name:18} " + " ".join(f"{k}={v}" for k, v in shape.items()))

    @train.command("convert")
    def convert_cmd(
        model: Path = typer.Argument(..., help="A local causal LM checkpoint."),
        output: Path = typer.Option(..., "--output", "-o", help="CTranslate2 model directory."),
        quantization: str = typer.Option("int8", help="int8, int8_float32, float16, bfloat16 or float32."),
    ) -> None:
        """Convert a checkpoint to CTranslate2 for fast CPU/GPU inference."""
        from editlm.models.convert import to_ctranslate2

        try:
            out = to_ctranslate2(model, output, quantization)
        except _known_errors() as exc:
            _fail(exc)
        typer.echo(f"CTranslate2 model saved to {out}")
