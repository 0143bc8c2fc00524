"""``editlm report RUN_DIR``: a Markdown report with tables and PNG plots from evaluation runs.

RUN_DIR is one ``editlm evaluate`` output directory or a folder of them (any ``summary.json`` up to
two levels down is a run, named by its folder). An optional ``curves.json`` beside them,
``{"label": [value per step, ...]}`` or ``{"label": {"steps": [...], "values": [...]}}``, adds an
edit distance curve plot (e.g. edit distance to the answer across diffusion denoising steps).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

REPORT_FILE = "report.md"


def find_runs(run_dir: Path) -> dict[str, dict]:
    """``{name: summary}`` for every ``summary.json`` in ``run_dir`` or up to two levels below."""
    runs = {}
    for path in sorted(
        [*run_dir.glob("summary.json"), *run_dir.glob("*/summary.json"), *run_dir.glob("*/*/summary.json")]
    ):
        name = str(path.parent.relative_to(run_dir)) if path.parent != run_dir else run_dir.name
        try:
            summary = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read {path}: {exc}") from None
        if isinstance(summary, dict) and "benchmark" in summary and "pass@k" in summary:
            runs[name] = summary  # other stages' summary.json files are not evaluation runs
    return runs


def load_curves(run_dir: Path) -> dict[str, tuple[list[float], list[float]]]:
    path = run_dir / "curves.json"
    if not path.exists():
        return {}
    curves = {}
    for label, value in json.loads(path.read_text()).items():
        if isinstance(value, dict):
            steps, values = list(value["steps"]), list(value["values"])
        else:
            steps, values = list(range(len(value))), list(value)
        if len(steps) != len(values):
            raise ValueError(f"curve {label!r}: {len(steps)} steps but {len(values)} values")
        curves[label] = (steps, values)
    return curves


def _k(key: str) -> int:
    return int(key.split("@")[1])


def _fmt(x) -> str:
    return f"{100 * x:.1f}" if isinstance(x, float) else str(x)


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return lines


def _line_plot(
    series: dict[str, list[tuple[float, float]]],
    path: Path,
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    percent: bool = False,
    log_x: bool = False,
    xticks: list | None = None,
) -> bool:
    """One PNG of labelled lines (``series``: label -> (x, y) points); False when there is nothing to draw."""
    series = {label: points for label, points in series.items() if points}
    if not series:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, points in series.items():
        ax.plot([x for x, _ in points], [y for _, y in points], marker="o" if percent else None, label=label)
    if log_x:
        ax.set_xscale("log")
    if percent:
        ax.set_ylim(0, 100)
    if xticks:
        ax.set_xticks(xticks)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def plot_pass_at_k(runs: dict[str, dict], path: Path) -> bool:
    series = {
        name: sorted((_k(key), 100 * value) for key, value in summary.get("pass@k", {}).items())
        for name, summary in runs.items()
    }
    return _line_plot(series, path, xlabel="k", ylabel="pass@k (%)", title="pass@k", percent=True, log_x=True)


def _bug_counts(summary: dict, prefix: str) -> list[int]:
    tails = [g[len(prefix) :] for g in summary.get("groups", {}) if g.startswith(prefix)]
    return [int(t) for t in tails if t.isdigit()]


def plot_groups(runs: dict[str, dict], path: Path, prefix: str = "bugs=") -> bool:
    series = {}
    for name, summary in runs.items():
        rates = {n: summary["groups"][f"{prefix}{n}"].get("pass_rate") for n in _bug_counts(summary, prefix)}
        series[name] = sorted((n, 100 * r) for n, r in rates.items() if isinstance(r, int | float))
    ticks = sorted({n for s in runs.values() for n in _bug_counts(s, prefix)})
    return _line_plot(
        series,
        path,
        xlabel="number of bugs",
        ylabel="samples fully correct (%)",
        title="4-Parity: pass rate against bug count",
        percent=True,
        xticks=ticks,
    )


def plot_curves(curves: dict[str, tuple[list[float], list[float]]], path: Path) -> bool:
    series = {label: list(zip(steps, values, strict=True)) for label, (steps, values) in curves.items()}
    return _line_plot(
        series,
        path,
        xlabel="step",
        ylabel="normalised edit distance to the answer",
        title="Edit distance curves",
    )


def published_rows(runs: dict[str, dict]) -> list[list]:
    """``[benchmark, model, metric, published, this run, run]`` for every benchmark of ``runs`` that
    has published reference results (``Benchmark.published``), the run's own value beside each."""
    from editlm.evaluate.benchmarks import BenchmarkError, get_benchmark

    rows = []
    for name, summary in runs.items():
        try:
            published = get_benchmark(summary.get("benchmark", "")).published
        except BenchmarkError:
            continue
        for model, metrics in published.items():
            for metric, value in metrics.items():
                own = (
                    summary.get("pass_rate")
                    if metric == "pass rate"
                    else summary.get("pass@k", {}).get(metric)
                )
                rows.append([summary["benchmark"], model, metric, value, "-" if own is None else own, name])
    return rows


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``report.md`` and its PNGs into ``out`` (default: ``run_dir``); returns the report path."""
    run_dir = Path(run_dir)
    out = Path(out) if out else run_dir
    out.mkdir(parents=True, exist_ok=True)
    runs = find_runs(run_dir)
    curves = load_curves(run_dir)
    if not runs and not curves:
        raise FileNotFoundError(f"no summary.json or curves.json in {run_dir}")
    lines = [f"# Evaluation report: {run_dir.name}", ""]
    if runs:
        ks = sorted({_k(key) for s in runs.values() for key in s.get("pass@k", {})})
        lines += ["## pass@k (%)", ""]
        header = ["run", "benchmark", "samples", "problems", "pass rate", *[f"pass@{k}" for k in ks]]
        rows = [
            [name, s.get("benchmark", "?"), s.get("samples", 0), f"{s.get('problems_attempted', 0)}/{s.get('problems', 0)}",
             s.get("pass_rate", 0.0), *[s.get("pass@k", {}).get(f"pass@{k}", "-") for k in ks]]
            for name, s in runs.items()
        ]  # fmt: skip
        lines += _table(header, rows) + [""]
        reference = published_rows(runs)
        if reference:
            lines += ["## Published results beside this run's (%)", ""]
            lines += _table(
                ["benchmark", "published model", "metric", "published", "this run", "run"], reference
            )
            lines += [""]
        notes = [f"- {name}: {s['note']}" for name, s in runs.items() if s.get("note")]
        lines += (["Notes:", *notes, ""] if notes else []) + [
            "A k is shown only where every problem has at least k samples (unbiased estimator).",
            "",
        ]
        if plot_pass_at_k(runs, out / "pass_at_k.png"):
            lines += ["![pass@k](pass_at_k.png)", ""]
        for name, s in runs.items():
            if s.get("groups"):
                gks = sorted({_k(key) for g in s["groups"].values() for key in g.get("pass@k", {})})
                lines += [f"## {name}: by group", ""]
                rows = [[g, v.get("samples", "-"), v.get("pass_rate", "-"),
                         *[v.get("pass@k", {}).get(f"pass@{k}", "-") for k in gks]]
                        for g, v in s["groups"].items()]  # fmt: skip
                lines += _table(["group", "samples", "pass rate", *[f"pass@{k}" for k in gks]], rows) + [""]
        if plot_groups(runs, out / "parity_bugs.png"):
            lines += ["![4-Parity pass rate against bug count](parity_bugs.png)", ""]
        lines += ["## Outcomes", ""]
        statuses = sorted({st for s in runs.values() for st in s.get("statuses", {})})
        rows = [[name, *[s.get("statuses", {}).get(st, 0) for st in statuses]] for name, s in runs.items()]
        lines += _table(["run", *statuses], rows) + [""]
        for name, s in runs.items():
            if s.get("top_failure_reasons"):
                lines += [f"Most common failures in {name}:", ""]
                lines += [f"- {count} x `{reason}`" for reason, count in s["top_failure_reasons"].items()] + [
                    ""
                ]
        metric_runs = {name: s["metrics"] for name, s in runs.items() if s.get("metrics")}
        if metric_runs:
            keys = sorted({k for m in metric_runs.values() for k in m})
            lines += ["## Text metrics", ""]
            rows = [
                [name, *[f"{m.get(k, float('nan')):.3f}" for k in keys]] for name, m in metric_runs.items()
            ]
            lines += _table(["run", *keys], rows) + [""]
    if plot_curves(curves, out / "edit_distance.png"):
        lines += ["## Edit distance curves", "", "![edit distance curves](edit_distance.png)", ""]
    report = out / REPORT_FILE
    tmp = out / f".{REPORT_FILE}.{os.getpid()}.tmp"
    tmp.write_text("\n".join(lines), encoding="utf-8")
    os.replace(tmp, report)
    return report
