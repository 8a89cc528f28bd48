"""The public Python API (``phylocl.__all__`` and the alignment function): every name documented, and the examples
in the docstrings run as written (with tiny stand-ins for the data they leave undefined)."""

from __future__ import annotations

import inspect
import io
import pathlib
import re
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


LONG = "x" * 300  # a file name over the 255 bytes file systems allow


@pytest.mark.parametrize("call, name", [
    (lambda long, real: phylocl.load_encoder(long), "source"),
    (lambda long, real: phylocl.load_encoder(pathlib.Path(long), device="cpu"), "source"),
    (lambda long, real: __import__("phylocl.models.encoder").models.encoder.SequenceEncoder.from_pretrained(long),
     "source"),
    (lambda long, real: phylocl.Searcher(index=long), "index"),
    (lambda long, real: phylocl.read_dataset(long), "path"),
    (lambda long, real: phylocl.read_dataset(real, labels=long), "labels"),
    (lambda long, real: __import__("phylocl.data.layouts").data.layouts.read_datasets([real, long]), "path"),
])
def test_a_path_too_long_for_a_file_name_is_an_input_error_naming_the_argument(tmp_path, call, name):
    """Each raised a bare OSError ('File name too long') from its first stat."""
    real = tmp_path / "s.fa"
    real.write_text(">a\nMKV\n")
    long = str(tmp_path / LONG)
    with pytest.raises(phylocl.InputError) as err:
        call(long, real)
    assert err.value.path == long
    assert err.value.message.startswith(f"{name}: file name too long: one part of it is 300 bytes long"), err.value



@pytest.mark.parametrize("call, name", [
    (lambda index, long: phylocl.Searcher(index=index, model=long), "model"),
    (lambda index, long: phylocl.Searcher(index=index, model=pathlib.Path(long)), "model"),
    (lambda index, long: phylocl.Searcher(index=index).search(pathlib.Path(long)), "queries"),
    (lambda index, long: phylocl.Searcher(index=index).write(pathlib.Path(long), io.StringIO()), "queries"),
])
def test_a_too_long_model_or_queries_path_is_an_input_error_naming_the_argument(index, call, name):
    """model= raised OSError('File name too long: ... -> None') from resolve_model's stat, inside the bundle's
    read; a queries Path raised it from the FASTA reader."""
    long = str(index.parent / LONG)
    with pytest.raises(phylocl.InputError) as err:
        call(index, long)
    assert err.value.path == long
    assert err.value.message.startswith(f"{name}: file name too long: one part of it is 300 bytes long"), err.value


@pytest.fixture
def embeddings_index(tmp_path):
    """An index built from embeddings (no stored sequences) and a FASTA file of its sequences."""
    fasta = tmp_path / "db.fasta"
    fasta.write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(SEQS)))
    assert main(["embed", "--fasta", str(fasta), "--model", "kmer:2", "-o", str(tmp_path / "e.npz"), "--quiet"]) == 0
    assert main(["index", "--embeddings", str(tmp_path / "e.npz"), "-o", str(tmp_path / "dense")]) == 0
    return tmp_path / "dense"


def test_the_refusal_of_an_embeddings_index_points_python_to_what_aligns(embeddings_index):
    """It pointed to `phylocl index --fasta DB.fasta` alone, which refuses the models with dense rows that such
    bundles are built for (docs/retrieval.md); `phylocl search --db` aligns with any model."""
    with pytest.raises(phylocl.InputError) as err:
        phylocl.Searcher(index=embeddings_index)
    assert ("cannot be aligned: open it with align=False, or search the FASTA with `phylocl search --db DB.fasta`, "
            "which aligns") in err.value.message
    assert "--no-align" not in err.value.message


def test_an_untrained_architecture_is_refused_with_the_training_command_whole(index, capsys):
    """The example '(e.g. --set model.name=gmlp-tiny)' followed the baseline's model='kmer:3', as if it were how to
    pass that; it belongs to the training command."""
    with pytest.raises(phylocl.InputError) as err:
        phylocl.Searcher(index=index, model="gmlp-tiny")
    assert ("untrained architecture, not a model with weights; train one with `phylocl train --out DIR --set "
            "model.name=gmlp-tiny` and pass model='DIR', or use the baseline model='kmer:3'; shipped models"
            ) in err.value.message
    (index.parent / "q.fa").write_text(">q\nMKVLAAGIWK\n")
    assert main(["search", "--query", "q.fa", "--index", str(index), "--model", "gmlp-tiny", "-o", "h.tsv"]) == 2
    assert ("train one with `phylocl train --out DIR --set model.name=gmlp-tiny` and pass --model DIR, or use the "
            "baseline --model kmer:3; shipped models") in capsys.readouterr().err


def test_a_word_budget_on_a_dense_index_names_what_each_caller_can_use(embeddings_index, capsys):
    """Python callers were told 'or db with a k-mer profile model': a Searcher has no db."""
    with pytest.raises(phylocl.InputError) as err:
        phylocl.Searcher(index=embeddings_index, word_budget=0.5, align=False)
    assert err.value.message.endswith("word_budget needs a sparse index of k-mer profile rows (an index of "
                                      "`phylocl index --fasta`)")
    fasta = embeddings_index.parent / "db.fasta"
    assert main(["search", "--query", str(fasta), "--index", str(embeddings_index), "--word-budget", "0.5",
                 "--no-align", "-o", str(embeddings_index.parent / "h.tsv")]) == 2
    assert ("--word-budget needs a sparse index of k-mer profile rows (`phylocl index --fasta`, or --db with a "
            "k-mer profile model)") in capsys.readouterr().err


def _message(call) -> str:
    with pytest.raises((phylocl.InputError, ValueError)) as err:
        call()
    return getattr(err.value, "message", str(err.value))


def test_messages_name_the_python_keywords_and_the_options_on_the_command_line(tmp_path, index,
                                                                             embeddings_index):
    """Messages of the library said -k, --threads, --evalue ... to Python callers; they name the keywords there and
    the options only when `phylocl` runs a command (arguments.command_line_names)."""
    import errno

    from phylocl.align.workers import _start_error
    from phylocl.arguments import command_line_names

    (tmp_path / "dir").mkdir()
    fasta, labels = tmp_path / "f.fa", tmp_path / "l.tsv"
    fasta.write_text(">a\nMKVUW\n")
    labels.write_text("sequence_id\tfamily_id\na\tF1\n")
    cases = [  # (call, the Python caller's words, the command line's words)
        (lambda: phylocl.Searcher(index=index, evalue=0), "evalue must be > 0, got 0", "--evalue must be > 0"),
        (lambda: phylocl.Searcher(index=index, filter_pvalue=0), "filter_pvalue must be > 0",
         "--filter-pvalue must be > 0"),
        (lambda: phylocl.Searcher(index=index, out_format="m8"), "out_format: the output format must be tsv, blast6",
         "--format: the output format must be tsv, blast6"),
        (lambda: phylocl.Searcher(index=index, align=False, out_format="blast6"),
         "out_format='blast6' needs the alignment stage; drop align=False",
         "--format blast6 needs the alignment stage; drop --no-align"),
        (lambda: phylocl.Searcher(index=index, word_budget=2), "word_budget must be in (0, 1]",
         "--word-budget must be in (0, 1]"),
        (lambda: phylocl.Searcher(index=index, overlap=1.5), "overlap must be in [0, 1), got 1.5",
         "--window-overlap must be in [0, 1)"),
        (lambda: phylocl.Searcher(index=embeddings_index), "cannot be aligned: open it with align=False",
         "cannot be aligned: search the FASTA with --db DB.fasta (which aligns), or this index with --no-align"),
        (lambda: phylocl.read_dataset(tmp_path / "dir", labels=labels), "labels needs a FASTA file",
         "--labels needs a FASTA file"),
        (lambda: phylocl.read_dataset(fasta), "(labels=TSV)", "(--labels for inspect, embed and evaluate"),
        (lambda: phylocl.read_dataset(fasta, labels=labels, strict=True),
         "refused by strict=True (first at position 4); without strict=True they read as X",
         "refused by --strict (first at position 4); without --strict"),
        (lambda: phylocl.Searcher(index=index, model="no-such-model"),
         "pass model='DIR', or use the baseline model='kmer:3'", "pass --model DIR, or use the baseline --model kmer:3"),
        (lambda: (_ for _ in ()).throw(_start_error(OSError(errno.EMFILE, "Too many open files"), 4)),
         "or use fewer threads (1: no worker processes)", "or use fewer --threads (1: no worker processes)"),
    ]
    for call, python, cli in cases:
        said = _message(call)
        assert python in said and "--" not in re.sub("`phylocl [^`]*`", "", said), said  # (commands quoted whole)
        with command_line_names():
            assert cli in _message(call)


def test_scoring_and_strand_messages_name_python_arguments():
    # the CLI's wording (--strand, --matrix, --gap-open) is pinned in tests/align/test_strands.py and
    # tests/workflows/test_search_align.py; a Python caller reads its own keywords
    from phylocl.align import scoring_system
    from phylocl.align.strands import check_strand
    from phylocl.arguments import command_line_names
    from phylocl.errors import InputError

    with pytest.raises(InputError, match=r"^matrix BLOSUM62 is for protein.*\(matrix is not used\)$"):
        scoring_system("dna", matrix="BLOSUM62")
    with pytest.raises(InputError, match=r"^gap costs must be gap_open >= 0 and gap_extend >= 1, got -1 and 1$"):
        scoring_system("protein", gap_open=-1)
    with pytest.raises(ValueError, match=r"^strand must be one of plus, both, got 'minus'$"):
        check_strand("minus", "dna")
    with pytest.raises(ValueError, match=r"^strand is for DNA searches"):
        check_strand("both", "protein")
    with command_line_names(), pytest.raises(InputError, match=r"^gap costs must be --gap-open >= 0 and --gap-extend"):
        scoring_system("protein", gap_open=-1)
