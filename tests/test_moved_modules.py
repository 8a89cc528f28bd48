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
    from phylocl.workflows.model_spec import ResolvedModel
    from phylocl.workflows.models import Embedder  # the old module and the old class name together

    assert Embedder is ResolvedModel


# (old, new) module names renamed so that each name says its layer (issue 26)
RENAMED = [
    ("phylocl.workflows.models", "phylocl.workflows.model_spec"),
    ("phylocl.workflows.index", "phylocl.workflows.index_command"),
    ("phylocl.workflows.sparse_index", "phylocl.workflows.sparse_index_command"),
    ("phylocl.workflows.embedding", "phylocl.workflows.embed_buffers"),
    ("phylocl.retrieval.embeddings", "phylocl.retrieval.embedding_files"),
]


@pytest.mark.parametrize("old, new", RENAMED)
def test_renamed_modules_import_under_their_old_names_as_the_same_module(old, new):
    assert importlib.import_module(old) is importlib.import_module(new)


def test_renamed_modules_work_with_from_imports_and_dotted_monkeypatch(monkeypatch):
    from phylocl.retrieval.embeddings import load_embeddings
    from phylocl.workflows import models
    from phylocl.workflows.index import build_index_file
    import phylocl.retrieval.embedding_files as embedding_files
    import phylocl.workflows.index_command as index_command
    import phylocl.workflows.model_spec as model_spec

    assert models is model_spec and build_index_file is index_command.build_index_file
    assert load_embeddings is embedding_files.load_embeddings
    monkeypatch.setattr("phylocl.workflows.models.resolve_device", "patched")  # a string in an old test or script
    assert model_spec.resolve_device == "patched"


def test_a_module_imported_first_under_its_old_name_keeps_its_own_name_and_spec():
    import subprocess
    import sys

    code = ("import importlib, phylocl.retrieval.embeddings as old, phylocl.retrieval.embedding_files as new; "
            "assert old is new and new.__name__ == new.__spec__.name == 'phylocl.retrieval.embedding_files', "
            "new.__spec__; assert importlib.reload(new) is new; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


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
