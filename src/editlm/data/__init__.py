"""Data: turn code and git history into edit datasets (LintSeq, commits, bugs, DivoT5, FIM)."""
