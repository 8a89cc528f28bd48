"""Modules that moved keep their old import paths (thin re-export modules), so code written against them runs."""

from __future__ import annotations

import importlib

import pytest

# (old module, new module, names) for every move
MOVED = [
    ("phylocl.retrieval.kmer", "phylocl.models.kmer", ["KmerEmbedder", "parse_model_spec", "MAX_DIM"]),
    ("phylocl.retrieval", "phylocl.models.kmer", ["KmerEmbedder", "parse_model_spec"]),
]


@pytest.mark.parametrize("old, new, names", MOVED)
def test_old_import_paths_give_the_same_objects(old, new, names):
    old_mod, new_mod = importlib.import_module(old), importlib.import_module(new)
    for name in names:
        assert getattr(old_mod, name) is getattr(new_mod, name), f"{old}.{name}"


def test_workflow_embedder_keeps_its_old_name():
    from phylocl.workflows.models import Embedder, ResolvedModel

    assert Embedder is ResolvedModel


SIMULATOR = ["evolution", "evolved", "evolved_config", "indels", "rates", "simulate", "substitution"]


@pytest.mark.parametrize("name", SIMULATOR)
def test_simulator_modules_import_under_their_old_names_as_the_same_module(name):
    old = importlib.import_module(f"phylocl.data.{name}")
    assert old is importlib.import_module(f"phylocl.data.simulator.{name}")


def test_old_simulator_names_work_with_from_imports_and_monkeypatch(monkeypatch):
    from phylocl.data.simulate import simulate_families  # noqa: F401  (the old spelling still imports)
    import phylocl.data.simulate as old
    import phylocl.data.simulator.simulate as new

    monkeypatch.setattr(old, "yule_tree", "patched")
    assert new.yule_tree == "patched"
