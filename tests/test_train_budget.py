"""The training frictions of a shared machine: a wall-clock budget the schedule decays to, and
progress lines when the output is not a terminal."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import pytest
import torch
from transformers import TrainerControl, get_scheduler

from editlm.train import callbacks
from editlm.train.callbacks import ELAPSED_FILE, MaxTime, PlainProgress, format_seconds


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _scheduler(steps=100, warmup=10):
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=1.0)
    return optimizer, get_scheduler("cosine", optimizer, num_warmup_steps=warmup, num_training_steps=steps)


def test_max_time_decays_the_schedule_to_zero_at_the_budget_and_stops(monkeypatch, tmp_path):
    clock = Clock()
    monkeypatch.setattr(callbacks.time, "perf_counter", clock)
    optimizer, scheduler = _scheduler()
    budget = MaxTime(60)
    args, state, control = (
        SimpleNamespace(output_dir=str(tmp_path)),
        SimpleNamespace(global_step=0, max_steps=100),
        TrainerControl(),
    )
    budget.on_train_begin(args, state, control, lr_scheduler=scheduler)
    own = [f for f in scheduler.lr_lambdas]
    assert own[0](5) == pytest.approx(0.5)  # warmup is the schedule's own (time factor is 1 at t=0)
    clock.now += 30  # half the budget spent at step 20 of 100: time is further along than steps
    assert scheduler.lr_lambdas[0](20) == pytest.approx(0.5)  # cos decay at half the budget
    clock.now += 15
    assert scheduler.lr_lambdas[0](21) == pytest.approx(
        0.5 * (1 + torch.cos(torch.tensor(0.75 * torch.pi)).item())
    )
    budget.on_step_end(args, state, control)
    assert not control.should_training_stop
    clock.now += 15
    state.global_step = 30
    budget.on_step_end(args, state, control)
    assert control.should_training_stop and control.should_save and budget.stopped_early
    assert scheduler.lr_lambdas[0](30) == pytest.approx(0.0, abs=1e-12)
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    assert scheduler.get_last_lr()[0] == pytest.approx(0.0, abs=1e-12)


def test_max_time_keeps_the_step_schedule_where_it_is_further_along(monkeypatch, tmp_path):
    clock = Clock()
    monkeypatch.setattr(callbacks.time, "perf_counter", clock)
    _, scheduler = _scheduler(steps=100, warmup=0)
    budget = MaxTime(3600)
    budget.on_train_begin(SimpleNamespace(output_dir=str(tmp_path)), SimpleNamespace(global_step=0, max_steps=100),
                          TrainerControl(), lr_scheduler=scheduler)  # fmt: skip
    clock.now += 1
    assert scheduler.lr_lambdas[0](99) < 0.01  # the steps run out first: the cosine over steps wins


def test_max_time_resumes_with_the_time_already_spent(monkeypatch, tmp_path):
    clock = Clock()
    monkeypatch.setattr(callbacks.time, "perf_counter", clock)
    checkpoint = tmp_path / "checkpoint-40"
    checkpoint.mkdir()
    args, state = (
        SimpleNamespace(output_dir=str(tmp_path)),
        SimpleNamespace(global_step=40, max_steps=100, is_world_process_zero=True),
    )
    first = MaxTime(100)
    first.on_train_begin(args, SimpleNamespace(global_step=0, max_steps=100), TrainerControl())
    clock.now += 70
    first.on_save(args, state, TrainerControl())
    assert json.loads((checkpoint / ELAPSED_FILE).read_text())["elapsed"] == pytest.approx(70)
    resumed = MaxTime(100)
    resumed.on_train_begin(args, state, TrainerControl())
    control = TrainerControl()
    clock.now += 31
    resumed.on_step_end(args, state, control)
    assert control.should_training_stop  # 70 s before the resume + 31 s after > 100 s


def test_max_time_refuses_a_non_positive_budget():
    with pytest.raises(ValueError):
        MaxTime(0)


def test_plain_progress_prints_step_loss_speed_and_eta(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(callbacks.time, "perf_counter", clock)
    stream = io.StringIO()
    progress = PlainProgress("sft run", stream=stream)
    state = SimpleNamespace(global_step=0, max_steps=100, num_input_tokens_seen=0, is_world_process_zero=True)
    progress.on_train_begin(None, state, None)
    clock.now += 20
    state.global_step, state.num_input_tokens_seen = 10, 40_000
    progress.on_log(None, state, None, logs={"loss": 1.23456, "learning_rate": 1e-3})
    progress.on_log(None, state, None, logs={"train_runtime": 5.0})  # not a progress log: no line
    lines = stream.getvalue().splitlines()
    assert lines[0] == "sft run: 100 steps"
    assert lines[1] == "sft run step 10/100  loss 1.2346  2,000 tok/s  elapsed 20s  ETA 3m00s"
    assert len(lines) == 2


def test_progress_is_plain_lines_when_stderr_is_not_a_terminal(monkeypatch):
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert isinstance(callbacks.progress_callback("x"), PlainProgress)


def test_format_seconds():
    assert [format_seconds(s) for s in (0, 59.4, 75, 3700)] == ["0s", "59s", "1m15s", "1h01m"]


def test_a_training_run_stops_at_its_budget_with_a_checkpoint(
    tmp_path, one_torch_thread, small_tokenizer_dir
):
    from editlm.train.config import SFTConfig
    from editlm.train.run import sft

    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "".join(
            json.dumps({"prompt": f"x = {i}\n", "completion": f"y = {i + 1}\n"}) + "\n" for i in range(40)
        )
    )
    out = tmp_path / "model"
    sft(SFTConfig(output_dir=str(out), model="test", tokenizer=str(small_tokenizer_dir), data=str(rows),
                  seq_len=64, batch_size=2, max_steps=100_000, max_time=1.0, warmup_steps=0, tensorboard=False,
                  progress=False, save_steps=10**9, eval_steps=10**9, logging_steps=1))  # fmt: skip
    summary = json.loads((out / "editlm_train.json").read_text())
    assert (out / "model.safetensors").exists()
    checkpoints = sorted(out.glob("checkpoint-*"))
    assert checkpoints and (checkpoints[-1] / ELAPSED_FILE).exists()
    steps = int(checkpoints[-1].name.split("-")[1])
    assert 1 <= steps < 100_000 and summary["config"]["max_time"] == 1.0


def test_a_resumed_scheduler_is_budgeted_again(monkeypatch, tmp_path):
    clock = Clock()
    monkeypatch.setattr(callbacks.time, "perf_counter", clock)
    args, state = SimpleNamespace(output_dir=str(tmp_path)), SimpleNamespace(global_step=0, max_steps=100)
    _, first = _scheduler(warmup=0)
    MaxTime(10).on_train_begin(args, state, TrainerControl(), lr_scheduler=first)
    _, resumed = _scheduler(warmup=0)
    resumed.load_state_dict(first.state_dict())  # what the Trainer does on resume
    MaxTime(10).on_train_begin(args, state, TrainerControl(), lr_scheduler=resumed)
    clock.now += 10
    assert resumed.lr_lambdas[0](1) == pytest.approx(0.0, abs=1e-12)
