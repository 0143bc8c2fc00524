"""The ``editlm`` command line.

Each stage defines its commands in its own module with a ``register(app)`` function, so that the
stages stay apart and ``editlm --help`` imports nothing heavy (torch and friends load inside the
commands that need them).
"""

from __future__ import annotations

import importlib

import typer

from editlm import __version__

app = typer.Typer(
    name="editlm",
    help="Language models that write code as edits: data, training, generation and evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

COMMAND_MODULES = (
    "editlm.quickstart",
    "editlm.data.lintseq.cli",
    "editlm.data.mining.cli",
    "editlm.data.bugs.cli",
    "editlm.data.transforms.cli",
    "editlm.train.cli",
    "editlm.models.codefusion.cli",
    "editlm.generate.cli",
    "editlm.evaluate.cli",
    "editlm.serve",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"editlm {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Language models that write code as edits."""


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
