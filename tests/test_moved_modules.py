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
