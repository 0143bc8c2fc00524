"""Evaluation: sandboxed execution, pass@k, benchmarks, metrics and reports."""
