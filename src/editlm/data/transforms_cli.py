"""Placeholder until this stage's commands land; replaced by the stage's owner."""

import typer


def register(app: typer.Typer) -> None:
    """Add this stage's commands to ``app``."""
