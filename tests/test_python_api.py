"""The public Python API (``phylocl.__all__`` and the alignment function): every name documented, and the examples
in the docstrings run as written (with tiny stand-ins for the data they leave undefined)."""

from __future__ import annotations

import inspect
import textwrap

import pytest
import torch

import phylocl
from phylocl.cli import main

SEQS = ["MKVLAAGIWKLLSTAQ", "MKVLSAGIWKLLSTAE", "MSTQPLEDAGKWLRVT", "MSTQPLEEAGKWLRVS"]


def _examples(doc: str) -> list[str]:
    """The indented code blocks that follow a line ending in ``::`` in ``doc``."""
    lines, out, block, indent = doc.splitlines(), [], None, None
    for line in lines + [""]:
        if block is not None:
            if not line.strip():
                if block:
                    block.append("")
                continue
            width = len(line) - len(line.lstrip())
            if indent is None:
                indent = width
            if width >= indent:
                block.append(line)
                continue
            out.append(textwrap.dedent("\n".join(block)))
            block, indent = None, None
        if line.rstrip().endswith("::"):
            block = []
    if block:
        out.append(textwrap.dedent("\n".join(block)))
    return out


def _run(code: str, namespace: dict, skip: tuple[str, ...] = ()) -> dict:
    kept = "\n".join(line for line in code.splitlines() if not any(s in line for s in skip))
    exec(compile(kept, "<docstring example>", "exec"), namespace)  # noqa: S102 - the project's own examples
    return namespace


@pytest.fixture
def batches():
    enc = phylocl.build_encoder("gmlp-tiny", max_len=32)
    return {"batch_a": enc.tokenize(SEQS), "batch_b": enc.tokenize([s[::-1] for s in SEQS]),
            "labels": torch.tensor([0, 0, 1, 1]), "sequences": SEQS}


@pytest.fixture
def index(tmp_path, monkeypatch):
    """db.index (kmer:3, sequences stored) in the working directory, as the examples name it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "db.fasta").write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(SEQS * 2)))
    assert main(["index", "--fasta", "db.fasta", "--model", "kmer:3", "-o", "db.index", "--quiet"]) == 0
    return tmp_path / "db.index"


def test_every_public_name_is_documented():
    for name in phylocl.__all__:
        obj = getattr(phylocl, name)
        assert inspect.getdoc(obj) and len(inspect.getdoc(obj)) > 40, name
    from phylocl.align import align_candidates

    assert "Args:" in align_candidates.__doc__ and "Raises" in align_candidates.__doc__


def test_the_package_example_runs(batches, index):
    ns = _run(_examples(phylocl.__doc__)[0], {**batches})
    assert ns["X"].shape == (4, ns["enc"].dim) and isinstance(ns["hits"], list)


def test_the_registry_and_persistence_examples_run(tmp_path, monkeypatch):
    import phylocl.models.persistence as persistence
    import phylocl.models.registry as registry

    monkeypatch.chdir(tmp_path)
    ns = _run(_examples(registry.__doc__)[0], {"phylocl": phylocl})
    assert ns["enc2"].fingerprint() == ns["enc"].fingerprint() and ns["enc"].config.alphabet == "dna"
    ns = _run(_examples(persistence.load_encoder.__doc__)[0], {"phylocl": phylocl}, skip=("runs/r1",))
    assert not ns["enc"].training


def test_the_encoder_example_runs():
    from phylocl.models.encoder import SequenceEncoder
    from phylocl.models.encoder_config import EncoderConfig

    ns = _run(_examples(SequenceEncoder.__doc__)[0], {"SequenceEncoder": SequenceEncoder,
                                                      "EncoderConfig": EncoderConfig})
    assert ns["z"].shape == (2, 16) and ns["X"].shape == (2, 16)


def test_the_loss_examples_run(batches):
    enc = phylocl.build_encoder("gmlp-tiny", max_len=32)
    ns = _run(_examples(phylocl.InfoNCE.__doc__)[0], {"InfoNCE": phylocl.InfoNCE, "encoder": enc,
                                                      "view_a": batches["batch_a"], "view_b": batches["batch_b"],
                                                      "family_ids": batches["labels"]})
    assert ns["value"].dim() == 0
    import phylocl.training.cached_loss as cached_loss

    optimizer = torch.optim.SGD(enc.parameters(), lr=0.1)
    ns = _run(_examples(cached_loss.__doc__)[0], {"phylocl": phylocl, "encoder": enc, "optimizer": optimizer,
                                                  **batches})
    assert ns["loss"].dim() == 0


def test_the_searcher_example_runs(index):
    import io

    import phylocl.workflows.searcher as searcher

    ns = _run(_examples(searcher.__doc__)[0], {"queries": [("q3", SEQS[0])], "f": io.StringIO()})
    assert isinstance(ns["hits"], list) and ns["f"].getvalue().startswith("q3\t")


def test_the_dataset_and_alignment_examples_run():
    import phylocl.align as align
    import phylocl.align.aligner as aligner
    import phylocl.data.layouts as layouts

    ns = _run(_examples(layouts.__doc__)[0], {"read_dataset": phylocl.read_dataset})
    assert ns["ds"].summary()["families"] == 10
    ns = _run(_examples(aligner.__doc__)[0], {})
    assert ns["hits"].query(0)[0].tolist() == [0]
    ns = _run(_examples(align.__doc__)[0], {"queries": ["MKVLAAGIWK"], "targets": ["MKLLAAGIWR", "MSSTQPLE"],
                                            "candidates": [[0, 1]]})
    assert ns["targets_of_q0"].tolist() == [0]
