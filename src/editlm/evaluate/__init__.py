"""Evaluation: sandboxed execution, pass@k, benchmarks, metrics and reports.

    from editlm.evaluate import evaluate_samples
    rows, summary = evaluate_samples(samples, "humaneval", workers=2)

Modules: ``sandbox`` (run untrusted programs contained, on warm fork servers), ``passk`` (the
unbiased estimator), ``benchmarks`` (registry: HumanEval, 4-Parity, bugfix), ``run`` (scoring
samples; the entry point of ``editlm evaluate``), ``metrics`` (exact match, CodeBLEU, edit
distance, validity, diversity), ``report`` (Markdown + PNG).
"""

from __future__ import annotations

from editlm._lazy import lazy_exports

_EXPORTS = {
    "evaluate_samples": "editlm.evaluate.run",
    "evaluate_file": "editlm.evaluate.run",
    "pass_at_k": "editlm.evaluate.passk",
    "run_python": "editlm.evaluate.sandbox",
    "run_many": "editlm.evaluate.sandbox",
    "Sandbox": "editlm.evaluate.sandbox",
    "ExecResult": "editlm.evaluate.sandbox",
    "get_benchmark": "editlm.evaluate.benchmarks",
    "list_benchmarks": "editlm.evaluate.benchmarks",
    "write_report": "editlm.evaluate.report",
}
__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)
