"""Names a package exports but imports only on first use (PEP 562), so ``import phylocl`` and the command line's
argument parsing stay fast and ``kmer:K`` never pays for torch::

    _LAZY = {"build_encoder": "phylocl.models.registry", ...}   # name -> module that defines it
    __getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY, __all__)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, namespace: dict[str, Any], lazy: Mapping[str, str],
                 exported: Sequence[str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package``: a name of ``lazy`` is imported from its
    module when first asked for and then kept in ``namespace`` (the package's ``globals()``)."""

    def __getattr__(name: str):
        if name in lazy:
            value = getattr(importlib.import_module(lazy[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exported))

    return __getattr__, __dir__
