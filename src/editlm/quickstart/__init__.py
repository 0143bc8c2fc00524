"""``editlm quickstart``: the whole pipeline, small, on the embedded default data.

``--task diff`` (default): a diff model trained on generic synthetic bug fixes, scored on 4-Parity
beside the published diff models (:mod:`editlm.quickstart.diff_task`). ``--task lintseq``: LintSeq
edit sequences for HumanEval (:mod:`editlm.quickstart.lintseq_task`). Every stage is resumable; the
step counts fit 15 minutes on 2 idle cores, and ``--*-time`` budgets stop training early on a busier
machine. ``recipes/quickstart-*-gpu.toml`` document the same jobs scaled up for a GPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

TASKS = ("diff", "lintseq")


def register(app: typer.Typer) -> None:
    @app.command()
    def quickstart(
        out: Path = typer.Option(Path("runs/quickstart"), "-o", "--out", help="Run directory (resumable)."),
        task: str = typer.Option("diff", "--task", help="diff (a bug-fixing diff model) or lintseq."),
        pretrain_steps: int = typer.Option(None, help="Pretraining steps (diff: 0, lintseq: 300; 0: none)."),
        sft_steps: int = typer.Option(None, help="Fine-tuning steps (diff: 800, lintseq: 300)."),
        pretrain_time: float = typer.Option(None, help="diff: pretraining budget in seconds (150)."),
        sft_time: float = typer.Option(None, help="diff: fine-tuning budget in seconds (540)."),
        parity_n: int = typer.Option(None, help="diff: sampled diffs per 4-Parity bug count (40)."),
        bugfix_problems: int = typer.Option(
            None, help="diff: build the bug-fix benchmark from the first N HumanEval problems (20; 0: skip)."
        ),
        programs: int = typer.Option(400, help="lintseq: programs in the corpus."),
        problems: int = typer.Option(20, help="lintseq: HumanEval problems to sample (164 for all)."),
        n: int = typer.Option(5, "-n", help="lintseq: samples per problem."),
        engine: str = typer.Option("ctranslate2", help="Sampling engine: ctranslate2, transformers or vllm."),
        recipe: str = typer.Option(
            None,
            "--recipe",
            "-r",
            help="diff: a TOML of DiffQuickstart settings (a path or a name under recipes/).",
        ),
        sets: list[str] = typer.Option(
            None, "--set", "-s", help="diff: any DiffQuickstart setting, --set key=value (repeatable)."
        ),
        seed: int = typer.Option(0),
    ) -> None:
        """Run the whole pipeline on the embedded default data with a tiny model."""
        if task not in TASKS:
            raise typer.BadParameter(f"one of {', '.join(TASKS)}", param_hint="--task")
        if task == "lintseq":
            from editlm.quickstart.lintseq_task import run_lintseq_quickstart

            given = {"pretrain_steps": pretrain_steps, "sft_steps": sft_steps}
            summary = run_lintseq_quickstart(
                out, programs=programs, problems=problems, n=n, engine=engine, seed=seed, say=_say,
                **{k: v for k, v in given.items() if v is not None},
            )  # fmt: skip
        else:
            from editlm.quickstart.diff_task import run_diff_quickstart, settings_from

            given = {
                "pretrain_steps": pretrain_steps, "sft_steps": sft_steps, "pretrain_time": pretrain_time,
                "sft_time": sft_time, "parity_n": parity_n, "bugfix_problems": bugfix_problems,
                "engine": engine, "seed": seed,
            }  # fmt: skip
            try:
                values = _recipe(recipe) if recipe else {}
                values.update({k: v for k, v in given.items() if v is not None})
                settings = settings_from(values, sets or [])
            except ValueError as exc:
                raise typer.BadParameter(str(exc), param_hint="--set") from None
            summary = run_diff_quickstart(out, settings, say=_say)
        shown = {k: v for k, v in summary.items() if k not in ("per_task", "groups")}
        typer.echo(json.dumps(shown, indent=2)[:2000])
        typer.echo(f"report: {out / 'report.md'}")


def _recipe(name: str) -> dict:
    """A quickstart recipe's settings (lists become tuples)."""
    import tomllib

    from editlm.train.config import find_recipe

    with open(find_recipe(name), "rb") as fh:
        values = tomllib.load(fh)
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}


def _say(line: str) -> None:
    typer.echo(line)
