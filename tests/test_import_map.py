"""The import map of phylocl/ (every import, including those inside functions) has no loops, and every import
points to the module's own layer or a lower one (benchmarks/import_map.py; docs/architecture.md)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "import_map.py"


@pytest.fixture(scope="module")
def imap():
    spec = importlib.util.spec_from_file_location("import_map_tool", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclass-free, but keep the usual module bookkeeping
    spec.loader.exec_module(module)
    return module


def test_no_import_loops(imap):
    assert imap.find_cycles(imap.import_graph()) == []


def test_imports_point_down_the_layers(imap):
    assert imap.upward_imports(imap.import_graph()) == []


def test_every_module_has_a_layer(imap):
    graph = imap.import_graph()
    assert len(graph) > 100 and {imap.layer_of(m) for m in graph} <= set(imap.LAYERS)
    assert imap.layer_of("phylocl.errors") == "base" and imap.layer_of("phylocl.cli") == "cli"
    assert imap.layer_of("phylocl.config") == "training" and imap.layer_of("phylocl.models.kmer") == "models"


def test_the_walk_sees_imports_in_function_bodies_and_finds_loops(imap, tmp_path):
    pkg = tmp_path / "phylocl"
    (pkg / "data").mkdir(parents=True)
    (pkg / "models").mkdir()
    for init in (pkg, pkg / "data", pkg / "models"):
        (init / "__init__.py").write_text("")
    (pkg / "data" / "a.py").write_text("def f():\n    from phylocl.models import b\n")  # upward, in a function
    (pkg / "models" / "b.py").write_text("from phylocl.data.a import f\n")
    (pkg / "models" / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                          "    from phylocl.models import b\nfrom . import b as bb\n")
    graph = imap.import_graph(pkg)
    assert graph["phylocl.data.a"] == {"phylocl.models.b": 2}
    assert graph["phylocl.models.c"] == {"phylocl.models.b": 4}  # relative import seen, TYPE_CHECKING skipped
    assert imap.find_cycles(graph) == [["phylocl.data.a", "phylocl.models.b"]]
    assert len(imap.upward_imports(graph)) == 1
