"""``editlm codefusion``: train a CodeFusion diffusion model, sample programs, measure denoising curves.

Only typer is imported here; torch loads inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

_MODEL_OPTIONS = (
    "hidden", "embed_dim", "heads", "encoder_layers", "denoiser_layers", "decoder_layers",
    "target_length", "source_length", "diffusion_steps", "dropout", "objective", "tie_head",
    "normalize_embeddings", "self_condition",
)  # fmt: skip


def _steps_list(text: str | None) -> list[int]:
    if not text:
        return []
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated step numbers, not {text!r}") from None


def _read_recipe(path: Path | None) -> dict:
    """Flat TOML keys (``[model]``/``[train]`` tables are flattened) with dashes read as underscores."""
    if path is None:
        return {}
    import tomllib

    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise typer.BadParameter(f"{path}: {exc}", param_hint="--recipe") from None
    flat: dict = {}
    for key, value in data.items():
        items = value.items() if isinstance(value, dict) else [(key, value)]
        flat.update({k.replace("-", "_"): v for k, v in items})
    return flat


def _ablation(name: str | None, clamp: str | None, readout: str) -> tuple[str | None, str]:
    """(clamp, readout) of one of the paper's ablations, or the options as given."""
    if name is None:
        return clamp, readout
    from editlm.models.codefusion.sampling import ABLATIONS

    if name not in ABLATIONS:
        raise typer.BadParameter(
            f"unknown ablation {name!r}; known: {', '.join(ABLATIONS)}", param_hint="--ablation"
        )
    return ABLATIONS[name]


def register(app: typer.Typer) -> None:
    cf = typer.Typer(
        name="codefusion",
        help="CodeFusion: diffusion code generation (denoise a whole program, conditioned on an utterance).",
        no_args_is_help=True,
    )
    app.add_typer(cf, name="codefusion")

    @cf.command("train")
    def train_cmd(
        tokenizer: Path = typer.Option(
            ..., "--tokenizer", help="Code tokenizer directory (editlm tokenizer)."
        ),
        output: Path = typer.Option(..., "-o", "--output", help="Checkpoint directory to write."),
        data: Path | None = typer.Option(None, "--data", help="(utterance, code) pairs: .jsonl or .parquet."),
        utterance_field: str | None = typer.Option(None, help="Utterance field (default utterance)."),
        code_field: str | None = typer.Option(None, help="Program field (default code)."),
        stdlib: int | None = typer.Option(None, "--stdlib", help="Add N docstring -> function stdlib pairs."),
        pretrain_data: Path | None = typer.Option(
            None, help="Code-only table for pre-training (its --code-field); default: the pairs' code."
        ),
        encoder: Path | None = typer.Option(
            None, help="Local Hugging Face model whose (pre-trained) encoder becomes E, e.g. CodeT5."
        ),
        recipe: Path | None = typer.Option(None, help="TOML file of these options (command line wins)."),
        size: str | None = typer.Option(None, help="Model size preset: tiny, small (default) or paper."),
        hidden: int | None = typer.Option(None),
        embed_dim: int | None = typer.Option(None, help="Width of the code embedding L (noise space)."),
        heads: int | None = typer.Option(None),
        encoder_layers: int | None = typer.Option(None),
        denoiser_layers: int | None = typer.Option(None),
        decoder_layers: int | None = typer.Option(None),
        target_length: int | None = typer.Option(None, "--length", help="Program length n in tokens."),
        source_length: int | None = typer.Option(None, help="Utterance length in tokens."),
        diffusion_steps: int | None = typer.Option(None, help="Training diffusion steps T (paper: 1200)."),
        dropout: float | None = typer.Option(None),
        objective: str | None = typer.Option(
            None,
            help="x0 (default: ||x0_hat - L(y)||, uniform in t, as GENIE), paper (||eps_hat - eps||) or "
            "interpolate (CDCD: N's token distribution by cross-entropy, x0_hat its expected embedding).",
        ),
        tie_head: bool | None = typer.Option(None, "--tie-head/--untied-head", help="H tied to L (default)."),
        normalize_embeddings: bool | None = typer.Option(
            None, "--normalize-embeddings/--free-embeddings", help="Rows of L at unit RMS (default)."
        ),
        self_condition: bool | None = typer.Option(
            None,
            "--self-condition/--no-self-condition",
            help="N also reads its previous x0_hat (not in the paper; off by default).",
        ),
        encoder_steps: int | None = typer.Option(None, help="Masked-LM steps for the small E first (0)."),
        freeze_encoder: bool | None = typer.Option(
            None, "--freeze-encoder/--train-encoder", help="Freeze E while fine-tuning (default: HF E only)."
        ),
        pretrain_steps: int | None = typer.Option(None, help="Code-only steps (default 0)."),
        finetune_steps: int | None = typer.Option(None, help="(utterance, code) steps (default 1000)."),
        batch_size: int | None = typer.Option(None),
        lr: float | None = typer.Option(None, help="AdamW learning rate (default 5e-4)."),
        warmup_steps: int | None = typer.Option(None),
        mask_rate: float | None = typer.Option(None, help="CPD: share of identifiers/keywords masked (0.3)."),
        seed: int | None = typer.Option(None),
        device: str | None = typer.Option(None, help="cuda or cpu (default: cuda when available)."),
        threads: int | None = typer.Option(
            None, help="CPU threads for torch (1 is fastest for tiny models)."
        ),
    ) -> None:
        """Pre-train on code (unconditional + CPD), fine-tune on pairs, save a checkpoint directory."""
        given = {k: v for k, v in locals().items() if v is not None and k != "recipe"}
        settings = {**_read_recipe(recipe), **given}
        import torch

        from editlm.models.codefusion.config import ConfigError
        from editlm.models.codefusion.pipeline import CodeFusionPipeline
        from editlm.models.codefusion.presets import preset
        from editlm.models.codefusion.tasks import CorpusError, read_pairs, stdlib_pairs
        from editlm.models.codefusion.train import TrainConfig, train
        from editlm.models.loading import NotACausalLMError, load_tokenizer

        if settings.get("threads"):
            torch.set_num_threads(int(settings.get("threads")))
        try:
            sizes = preset(settings.get("size", "small"))
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--size") from None
        sizes.update({k: settings[k] for k in _MODEL_OPTIONS if k in settings})
        try:
            pairs = []
            if settings.get("data"):
                pairs += read_pairs(settings["data"], settings.get("utterance_field", "utterance"),
                                    settings.get("code_field", "code"))  # fmt: skip
            if settings.get("stdlib"):
                pairs += stdlib_pairs(limit=int(settings["stdlib"]))
            if not pairs:
                raise CorpusError("no training pairs: give --data FILE and/or --stdlib N")
            codes = None
            if settings.get("pretrain_data"):
                codes = [c for _, c in read_pairs(settings["pretrain_data"], settings.get("code_field", "code"),
                                                  settings.get("code_field", "code"))]  # fmt: skip
        except CorpusError as exc:
            raise typer.BadParameter(str(exc), param_hint="--data") from None
        try:
            tok = load_tokenizer(settings["tokenizer"])
        except NotACausalLMError as exc:
            raise typer.BadParameter(str(exc), param_hint="--tokenizer") from None
        fields = TrainConfig.__dataclass_fields__
        config = TrainConfig(**{k: settings[k] for k in fields if k in settings})
        try:
            pipe = CodeFusionPipeline.create(
                tok,
                seed=config.seed,
                encoder_dir=settings.get("encoder"),
                device=settings.get("device"),
                **sizes,
            )
        except ConfigError as exc:  # a size or option the model cannot have (--objective eps, ...)
            raise typer.BadParameter(str(exc)) from None
        params = sum(p.numel() for p in pipe.model.parameters())
        typer.echo(f"CodeFusion {params / 1e6:.2f}M parameters on {pipe.device}; {len(pairs)} pairs")
        out = Path(settings["output"])
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "train_log.jsonl", "w") as log:
            history = train(pipe, pairs, config, codes, on_log=lambda r: log.write(json.dumps(r) + "\n"))
        pipe.save_pretrained(out)
        last = history[-1] if history else {}
        typer.echo(f"final loss {last.get('loss', float('nan')):.4f} -> {out}")

    @cf.command("sample")
    def sample_cmd(
        model: Path = typer.Argument(..., help="A CodeFusion checkpoint directory."),
        utterance: str | None = typer.Argument(
            None, help="What the program should do (omit: unconditional)."
        ),
        k: int = typer.Option(1, "-k", help="Programs to return (one noise seed each)."),
        steps: int | None = typer.Option(None, "--steps", help="Denoising steps T (default: training T)."),
        seed: int = typer.Option(0),
        show_steps: str | None = typer.Option(
            None, help="Also print the program after these steps: 1,10,50."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
        clamp: str | None = typer.Option(None, help="Ablation: nearest or decoder clamping of x0_hat."),
        readout: str = typer.Option(
            "decoder", help="decoder (D + H, the paper) or grounding (nearest L row)."
        ),
        ablation: str | None = typer.Option(None, help="The paper's: codefusion, grounding or clamping."),
        device: str | None = typer.Option(None),
    ) -> None:
        """Denoise k programs from Gaussian noise for an utterance and print them."""
        from editlm.models.codefusion.pipeline import CodeFusionPipeline
        from editlm.models.codefusion.sampling import sample, sample_steps

        try:
            pipe = CodeFusionPipeline.from_pretrained(model, device)
        except (FileNotFoundError, ValueError) as exc:
            raise typer.BadParameter(str(exc), param_hint="MODEL") from None
        clamp, readout = _ablation(ablation, clamp, readout)
        try:
            programs = sample(pipe, utterance, k=k, steps=steps, seed=seed, clamp=clamp, readout=readout)
            record = _steps_list(show_steps)
            trajectory = sample_steps(pipe, utterance, record, steps, seed, clamp, readout) if record else []
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        if as_json:
            typer.echo(
                json.dumps(
                    {"programs": programs, "steps": [{"step": s, "program": p} for s, p in trajectory]}
                )
            )
            return
        for step, program in trajectory:
            typer.echo(f"# after step {step} (seed {seed})\n{program}")
        for rank, program in enumerate(programs, 1):
            typer.echo(f"# {rank} (seed {seed + rank - 1})\n{program}")

    @cf.command("curve")
    def curve_cmd(
        model: Path = typer.Argument(..., help="A CodeFusion checkpoint directory."),
        data: Path = typer.Option(..., "--data", help="(utterance, code) pairs to measure against."),
        record: str = typer.Option(..., help="Step numbers, e.g. 1,10,50,100."),
        utterance_field: str = typer.Option("utterance"),
        code_field: str = typer.Option("code"),
        steps: int | None = typer.Option(None, "--steps"),
        limit: int | None = typer.Option(None, help="Only the first N pairs."),
        seed: int = typer.Option(0),
        clamp: str | None = typer.Option(None, help="Ablation: nearest or decoder clamping of x0_hat."),
        readout: str = typer.Option(
            "decoder", help="decoder (D + H, the paper) or grounding (nearest L row)."
        ),
        ablation: str | None = typer.Option(None, help="The paper's: codefusion, grounding or clamping."),
        as_json: bool = typer.Option(False, "--json", help="One JSON object per step (with length buckets)."),
        device: str | None = typer.Option(None),
    ) -> None:
        """After each recorded denoising step: mean normalised edit distance to the answer, token accuracy
        (content, position by position), mean length against the answers', exact match."""
        from editlm.models.codefusion.metrics import trajectory
        from editlm.models.codefusion.pipeline import CodeFusionPipeline
        from editlm.models.codefusion.tasks import CorpusError, read_pairs

        clamp, readout = _ablation(ablation, clamp, readout)
        try:
            pairs = read_pairs(data, utterance_field, code_field)[:limit]
        except CorpusError as exc:
            raise typer.BadParameter(str(exc), param_hint="--data") from None
        try:
            pipe = CodeFusionPipeline.from_pretrained(model, device)
        except (FileNotFoundError, ValueError) as exc:
            raise typer.BadParameter(str(exc), param_hint="MODEL") from None
        try:
            rows = trajectory(pipe, pairs, _steps_list(record), steps, seed, clamp=clamp, readout=readout)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--record") from None
        if not as_json:
            typer.echo("step\tedit_distance\ttoken_accuracy\tlength\treference_length\texact")
        for row in rows:
            if as_json:
                typer.echo(json.dumps(row))
            else:
                typer.echo(f"{row['step']}\t{row['edit_distance']:.4f}\t{row['token_accuracy']:.4f}\t"
                           f"{row['length']:.1f}\t{row['reference_length']:.1f}\t{row['exact']:.3f}")  # fmt: skip
