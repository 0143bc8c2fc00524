"""The ``editlm`` command line.

Each stage defines its commands in its own module with a ``register(app)`` function, so that the
stages stay apart and ``editlm --help`` imports nothing heavy (torch and friends load inside the
commands that need them).
"""

from __future__ import annotations

import importlib
import sys

import typer

from editlm import __version__

# The module that registers each top-level command (``tests/test_mine_output.py`` checks this against
# what the modules register). ``editlm NAME ...`` imports only NAME's module: the others' imports
# (tokenizers, pydantic, asyncio, ...) cost 0.17 s, more than `editlm mine` spends mining a small
# repository. Anything else (``editlm --help``, a name not here) gets every command.
COMMANDS = {
    "quickstart": "editlm.quickstart",
    "lintseq": "editlm.data.lintseq.cli",
    "data": "editlm.data.lintseq.cli",
    "mine": "editlm.data.mining.cli",
    "bugs": "editlm.data.bugs.cli",
    "bugfix-benchmark": "editlm.data.bugs.cli",
    "directional": "editlm.data.transforms.cli",
    "fim": "editlm.data.transforms.cli",
    "decontaminate": "editlm.data.transforms.cli",
    "train": "editlm.train.cli",
    "codefusion": "editlm.models.codefusion.cli",
    "generate": "editlm.generate.cli",
    "edit": "editlm.generate.cli",
    "evaluate": "editlm.evaluate.cli",
    "report": "editlm.evaluate.cli",
    "benchmarks": "editlm.evaluate.cli",
    "serve": "editlm.serve",
}
COMMAND_MODULES = tuple(dict.fromkeys(COMMANDS.values()))  # each once, in the order of `editlm --help`


def _version(value: bool) -> None:
    if value:
        typer.echo(f"editlm {__version__}")
        raise typer.Exit()


def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Language models that write code as edits."""


def make_app(modules=COMMAND_MODULES) -> typer.Typer:
    """The ``editlm`` command with the commands of ``modules``."""
    made = typer.Typer(
        name="editlm",
        help="Language models that write code as edits: data, training, generation and evaluation.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_show_locals=False,
    )
    made.callback()(_root)
    for name in dict.fromkeys(modules):
        importlib.import_module(name).register(made)
    return made


def __getattr__(name: str):
    if name == "app":  # every command, made on first use: ``from editlm.cli import app``
        globals()["app"] = made = make_app()
        return made
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    module = COMMANDS.get(argv[0]) if argv else None
    make_app([module] if module else COMMAND_MODULES)(args=argv, prog_name="editlm")


if __name__ == "__main__":
    main()
