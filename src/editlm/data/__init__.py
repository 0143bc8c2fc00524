"""Data: turn code and git history into edit datasets, one folder a stage.

``corpus`` (default programs: self-contained standard-library functions), ``lintseq/`` (LintSeq edit
sequences), ``mining/`` (git history -> diff-model records), ``bugs/`` (synthetic bug-fix samples and
the bug-fix benchmark), ``transforms/`` (DivoT5 directional versions, FIM, decontamination).
Table I/O and the parallel map the stages share live below them, in :mod:`editlm.io`.
"""
