"""Package exports loaded on first use (PEP 562), so that importing a package, and with it
``editlm --help``, costs nothing until a name is used."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[list[str], Callable[[str], object]]:
    """``(__all__, __getattr__)`` for ``package``: ``exports`` maps each public name to the module that
    defines it (absolute, or relative to ``package`` with a leading dot)."""

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name], package), name)

    return sorted(exports), __getattr__
