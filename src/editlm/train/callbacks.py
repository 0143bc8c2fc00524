"""Trainer callbacks: metrics as JSONL, a rich progress bar or plain progress lines, a wall-clock budget."""

from __future__ import annotations

import json
import time
from pathlib import Path

from transformers import TrainerCallback


class JsonlMetrics(TrainerCallback):
    """Appends every log (train loss, eval loss, learning rate, tokens seen) to a JSONL file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"step": state.global_step, "epoch": state.epoch, **logs}) + "\n")


class RichProgress(TrainerCallback):
    """A rich progress bar showing the last loss and non-padding tokens per second."""

    def __init__(self, description: str = "training"):
        self.description = description
        self.progress = None
        self.task = None
        self.loss = float("nan")
        self.eval_loss = None

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  eval {task.fields[eval]}  {task.fields[tps]} tok/s"),
            TimeRemainingColumn(),
        )
        self.progress.start()
        self.task = self.progress.add_task(
            self.description, total=state.max_steps, completed=state.global_step, loss="-", eval="-", tps="-"
        )
        self._t0, self._tokens0 = time.perf_counter(), state.num_input_tokens_seen

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress is None:
            return
        elapsed = max(time.perf_counter() - self._t0, 1e-9)
        tps = (state.num_input_tokens_seen - self._tokens0) / elapsed
        self.progress.update(self.task, completed=state.global_step, tps=f"{tps:,.0f}")

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.progress is None or not logs:
            return
        if "loss" in logs:
            self.progress.update(self.task, loss=f"{logs['loss']:.4f}")
        if "eval_loss" in logs:
            self.progress.update(self.task, eval=f"{logs['eval_loss']:.4f}")

    def on_train_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def format_seconds(seconds: float) -> str:
    """``75`` -> ``1m15s``; ``3700`` -> ``1h01m``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


class PlainProgress(TrainerCallback):
    """One plain line per log (step, loss, eval loss, tokens/s, ETA) for output that is not a
    terminal, where a progress bar shows nothing until the run ends (a redirect, a CI log)."""

    def __init__(self, description: str = "training", stream=None, max_time: float = 0.0):
        self.description = description
        self.stream = stream
        self.max_time = max_time

    def on_train_begin(self, args, state, control, **kwargs):
        self._t0, self._tokens0, self._step0 = (
            time.perf_counter(),
            state.num_input_tokens_seen,
            state.global_step,
        )
        if state.is_world_process_zero:
            budget = f", at most {format_seconds(self.max_time)}" if self.max_time else ""
            self._say(f"{self.description}: {state.max_steps} steps{budget}")

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        if "loss" not in logs and "eval_loss" not in logs:
            return
        elapsed = max(time.perf_counter() - self._t0, 1e-9)
        tps = (state.num_input_tokens_seen - self._tokens0) / elapsed
        done = state.global_step - self._step0
        left = state.max_steps - state.global_step
        eta = elapsed / done * left if done else float("nan")
        if self.max_time:
            eta = min(eta, max(self.max_time - elapsed, 0.0))
        parts = [f"{self.description} step {state.global_step}/{state.max_steps}"]
        if "loss" in logs:
            parts.append(f"loss {logs['loss']:.4f}")
        if "eval_loss" in logs:
            parts.append(f"eval_loss {logs['eval_loss']:.4f}")
        parts += [f"{tps:,.0f} tok/s", f"elapsed {format_seconds(elapsed)}"]
        parts.append(f"ETA {format_seconds(eta)}" if eta == eta else "ETA -")
        self._say("  ".join(parts))

    def _say(self, line: str) -> None:
        import sys

        print(line, file=self.stream or sys.stderr, flush=True)


def progress_callback(description: str, max_time: float = 0.0) -> TrainerCallback:
    """A rich bar on a terminal, plain lines otherwise."""
    import sys

    return RichProgress(description) if sys.stderr.isatty() else PlainProgress(description, max_time=max_time)


ELAPSED_FILE = "editlm_elapsed.json"


class MaxTime(TrainerCallback):
    """A wall-clock budget for training: the learning rate decays to zero at ``max_time`` seconds
    (or at the last step, whichever comes first) and training stops there with a checkpoint.

    The schedule's own factor is kept where it is lower (warmup, or a step count reached first),
    else a cosine over the share of the budget spent: ``min(schedule(step), cos_decay(t / max_time))``.
    The time already spent is saved with every checkpoint, so a resumed run spends only what is left.
    """

    def __init__(self, max_time: float):
        if max_time <= 0:
            raise ValueError("max_time must be > 0 seconds")
        self.max_time = float(max_time)
        self.spent_before = 0.0
        self._t0: float | None = None
        self.stopped_early = False

    def elapsed(self) -> float:
        return self.spent_before + (0.0 if self._t0 is None else time.perf_counter() - self._t0)

    def time_factor(self) -> float:
        import math

        share = min(self.elapsed() / self.max_time, 1.0)
        return 0.5 * (1.0 + math.cos(math.pi * share))

    def on_train_begin(self, args, state, control, lr_scheduler=None, **kwargs):
        saved = Path(args.output_dir) / f"checkpoint-{state.global_step}" / ELAPSED_FILE
        if state.global_step and saved.exists():
            self.spent_before = float(json.loads(saved.read_text())["elapsed"])
        self._t0 = time.perf_counter()
        lambdas = getattr(lr_scheduler, "lr_lambdas", None)
        # (the mark lives on the functions, which a scheduler's state_dict never saves, so a resumed
        # scheduler is wrapped again)
        if lambdas is not None and not any(getattr(f, "_editlm_max_time", False) for f in lambdas):
            lr_scheduler.lr_lambdas = [self._wrap(f) for f in lambdas]

    def _wrap(self, schedule):
        def factor(step: int) -> float:
            return min(schedule(step), self.time_factor())

        factor._editlm_max_time = True
        return factor

    def on_step_end(self, args, state, control, **kwargs):
        if self.elapsed() >= self.max_time:
            self.stopped_early = state.global_step < state.max_steps
            control.should_training_stop = True
            control.should_save = True
        return control

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir() and state.is_world_process_zero:
            (folder / ELAPSED_FILE).write_text(json.dumps({"elapsed": self.elapsed()}))
