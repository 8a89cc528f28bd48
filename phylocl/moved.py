"""Old import paths of modules that moved, kept working without a file at the old place.

``alias_modules({"phylocl.data.simulate": "phylocl.data.simulator.simulate"})`` makes ``import
phylocl.data.simulate`` give the module ``phylocl.data.simulator.simulate`` itself (the same object, so its
private names, and monkeypatching, behave as before), imported only when the old name is first used. The package
that held a moved module calls this from its ``__init__``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys

__all__ = ["alias_modules", "MOVED"]

MOVED: dict[str, str] = {}  # old module name -> new module name, for every alias registered


class _Aliases(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old module name and loads it as the module it moved to (consulted after the normal finders)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def __init__(self) -> None:
        self._specs: dict[str, importlib.machinery.ModuleSpec] = {}  # old name -> the module's own spec

    def create_module(self, spec):
        module = importlib.import_module(MOVED[spec.name])
        self._specs[spec.name] = module.__spec__  # the import system sets __spec__ to the alias's next
        return module

    def exec_module(self, module) -> None:
        # already executed under its new name; give it back its own spec (reload, pickling and tools read it)
        module.__spec__ = self._specs.pop(module.__spec__.name)


_FINDER = _Aliases()


def alias_modules(moves: dict[str, str]) -> None:
    """Register ``{old name: new name}``; see the module docstring."""
    MOVED.update(moves)
    if _FINDER not in sys.meta_path:
        sys.meta_path.append(_FINDER)
