"""Resuming only the run that was started: an output directory records the settings and data it was
trained with (``editlm_run.json``), and a rerun into it resumes only when both match.

Pure functions build the record; :func:`claim_output_dir` is the only I/O (read, compare, write).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from editlm.io.tables import new_file_mode

RUN_FILE = "editlm_run.json"
# Settings that do not change what is trained: they may differ between a run and its resumption.
NOT_COMPARED = frozenset(
    {"output_dir", "progress", "resume", "overwrite", "logging_steps", "save_steps", "save_total_limit",
     "eval_steps", "dataloader_workers", "tensorboard"}
)  # fmt: skip
# Trainer settings that do not change what is trained.
TRAINER_NOT_COMPARED = frozenset(
    {"report_to", "run_name", "logging_dir", "disable_tqdm", "push_to_hub", "hub_model_id"}
)
# What a run leaves in its output directory (deleted by overwrite).
RUN_OUTPUTS = ("metrics.jsonl", "editlm_train.json", RUN_FILE, "runs", ".editlm-data")


class RunMismatchError(ValueError):
    """The output directory holds another run (other settings or data): resuming it would mix the two."""


def data_digest(path: str) -> str:
    """A content hash of a data file or directory (every file under it, names included); ``stdlib`` is the
    interpreter's version (its standard library is the corpus)."""
    if not path:
        return ""
    if path == "stdlib":
        return f"stdlib:{sys.version}"
    root = Path(path)
    if not root.exists():
        return "missing"
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(root) if root.is_dir() else file.name).encode() + b"\0")
        with open(file, "rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def run_record(config, kind: str) -> dict[str, Any]:
    """What identifies a run: its kind, the settings that shape training, and its data's content."""
    settings = {k: v for k, v in asdict(config).items() if k not in NOT_COMPARED}
    settings["trainer"] = {
        k: v for k, v in settings.get("trainer", {}).items() if k not in TRAINER_NOT_COMPARED
    }
    data = {"data": data_digest(config.data), "eval_data": data_digest(getattr(config, "eval_data", ""))}
    for field in ("model", "tokenizer"):
        value = getattr(config, field, "")
        if value and Path(value).is_dir():
            data[field] = _dir_digest(Path(value))
    return {"kind": kind, "settings": settings, "inputs": data}


def _dir_digest(path: Path) -> str:
    """A cheap identity of a model or tokenizer directory: names, sizes and modification times."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.iterdir() if p.is_file()):
        stat = file.stat()
        digest.update(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()


def differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """The keys whose values differ between two records, as ``name: old -> new`` lines."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(differences(a, b, f"{prefix}{key}."))
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out


def holds_run(out: Path) -> bool:
    """Whether ``out`` holds a run's checkpoints, final model or record."""
    if not out.is_dir():
        return False
    return any(out.glob("checkpoint-*")) or (out / RUN_FILE).exists() or (out / "config.json").exists()


def claim_output_dir(
    out: Path, record: dict, *, resume: bool, overwrite: bool, main_process: bool = True
) -> bool:
    """Make ``out`` this run's directory; True when training should resume from its checkpoints.

    An empty or new directory is claimed (the record written); one holding the same run resumes (when
    ``resume``); one holding another run, or a run that was not recorded, is a :class:`RunMismatchError`
    unless ``overwrite``, which deletes the old run's checkpoints and outputs first."""
    if not holds_run(out):
        if main_process:
            _write(out / RUN_FILE, record)
        return False
    if overwrite:
        if main_process:
            for path in [*out.glob("checkpoint-*"), *(out / name for name in RUN_OUTPUTS)]:
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
            _write(out / RUN_FILE, record)
        return False
    try:
        old = json.loads((out / RUN_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        raise RunMismatchError(
            f"{out} already holds a run that editlm did not record (no readable {RUN_FILE}); "
            "choose another output directory or pass --overwrite (--set overwrite=true) to start afresh"
        ) from None
    changed = differences(old, json.loads(json.dumps(record, default=str)))
    if changed:
        raise RunMismatchError(
            f"{out} holds a run with other settings or data, so it cannot be resumed:\n  "
            + "\n  ".join(changed[:20])
            + "\nchoose another output directory, or pass --overwrite (--set overwrite=true) to start afresh"
        )
    if not resume:
        raise RunMismatchError(
            f"{out} holds this run's checkpoints and resume is off; pass --overwrite to start afresh"
        )
    return True


def _write(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(value, fh, indent=2, default=str)
    os.chmod(tmp, new_file_mode())
    os.replace(tmp, path)
