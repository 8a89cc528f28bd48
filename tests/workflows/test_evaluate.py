"""``phylocl evaluate``: JSON keys, figures equal to ``evaluate_embeddings`` on the same embeddings (family and
group level, with decoys), a hand-checked perfect case, the per-family table, the readable report and bad input."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import phylocl
import phylocl.workflows.evaluate
from phylocl.cli import main
from phylocl.retrieval.embedding_files import load_embeddings
from phylocl.retrieval.evaluation import evaluate_embeddings
from phylocl.models.kmer import KmerEmbedder

AA = "ACDEFGHIKLMNPQRSTVWY"
FIGURES = ("top1", "recall@1", "recall@3", "map_r", "auc1", "n_queries")


def _families(n_fam=6, members=4, seed=0, rate=0.3):
    rng = np.random.default_rng(seed)
    fams = {}
    for f in range(n_fam):
        root = rng.choice(list(AA), size=int(rng.integers(30, 100)))
        fams[f"fam{f}"] = []
        for _ in range(members):
            s = root.copy()
            hit = rng.random(len(s)) < rate
            s[hit] = rng.choice(list(AA), size=int(hit.sum()))
            fams[f"fam{f}"].append("".join(s))
    fams["lonely"] = ["".join(rng.choice(list(AA), size=40))]  # a singleton: a query with nothing to find
    return fams


def _write(folder, fams, groups=None):
    folder.mkdir(parents=True, exist_ok=True)
    rows = [(f"{fam}_{k}", fam, s) for fam, seqs in fams.items() for k, s in enumerate(seqs)]
    (folder / "sequences.fasta").write_text("".join(f">{i}\n{s}\n" for i, _, s in rows))
    head = "sequence_id\tfamily_id" + ("\tsuperfamily" if groups else "")
    lines = [f"{i}\t{fam}" + (f"\t{groups[fam]}" if groups else "") for i, fam, _ in rows]
    (folder / "labels.tsv").write_text("\n".join([head, *lines]) + "\n")
    return folder


GROUPS = {"fam0": "A", "fam1": "A", "fam2": "B", "fam3": "B", "fam4": "C", "fam5": "C", "lonely": "D"}


@pytest.fixture
def data(tmp_path):
    return _write(tmp_path / "data", _families(), GROUPS)


@pytest.fixture
def encoder_path(tmp_path):
    torch.manual_seed(0)
    return phylocl.build_encoder("gmlp-tiny").save(tmp_path / "enc.pt")


def _evaluate_json(capsys, *args):
    capsys.readouterr()
    assert main(["evaluate", *args, "--json", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    return json.loads(out)


@pytest.mark.parametrize("model", ["encoder", "kmer:2"])
def test_json_figures_equal_evaluate_embeddings_on_the_embedded_set(tmp_path, data, encoder_path, capsys, model):
    spec = str(encoder_path) if model == "encoder" else model
    got = _evaluate_json(capsys, "--model", spec, "--data", str(data), "-k", "3", "1")
    assert {"top1", "recall@1", "recall@3", "map_r", "auc1", "n_queries", "n_singleton_queries", "model",
            "wall_seconds", "n_decoys", "ks", "level"} <= set(got)
    assert "recall@10" not in got and got["ks"] == [1, 3] and got["level"] == "family"
    assert main(["embed", "--model", spec, "--data", str(data), "-o", str(tmp_path / "e.npz"), "--quiet"]) == 0
    emb = load_embeddings(tmp_path / "e.npz")
    ref = evaluate_embeddings(emb.embeddings, emb.labels, ids=emb.ids, ks=(1, 3))
    for name in FIGURES:
        assert got[name] == pytest.approx(ref[name], abs=1e-12), name
    assert got["n_queries"] == 24 and got["n_singleton_queries"] == 1 and got["n_decoys"] == 0
    assert got["model"]["fingerprint"] == emb.model["fingerprint"] and got["model"]["name"] == emb.model["name"]


def test_group_column_and_decoys_equal_the_reference(tmp_path, data, capsys):
    decoys = _families(n_fam=3, members=2, seed=7)
    decoy_records = [(f"decoy{f}_{k}", s) for f, seqs in decoys.items() for k, s in enumerate(seqs)]
    dfile = tmp_path / "decoys.fasta"
    dfile.write_text("".join(f">{i}\n{s}\n" for i, s in decoy_records))
    got = _evaluate_json(capsys, "--model", "kmer:2", "--data", str(data), "--group-column", "superfamily",
                         "--db-extra", str(dfile), "-k", "1", "3")
    assert main(["embed", "--model", "kmer:2", "--data", str(data), "-o", str(tmp_path / "e.npz"), "--quiet"]) == 0
    assert main(["embed", "--model", "kmer:2", "--fasta", str(dfile), "-o", str(tmp_path / "d.npz"), "--quiet"]) == 0
    emb, dec = load_embeddings(tmp_path / "e.npz"), load_embeddings(tmp_path / "d.npz")
    groups = [GROUPS[f] for f in emb.labels]
    ref = evaluate_embeddings(emb.embeddings, emb.labels, ids=emb.ids, ks=(1, 3), group_labels=groups,
                              decoy_embeddings=dec.embeddings)
    for name in FIGURES:
        assert got[name] == pytest.approx(ref[name], abs=1e-12), name
    assert got["level"] == "superfamily" and got["n_decoys"] == len(decoy_records) == 7
    assert got["n_queries"] == 24 and got["n_singleton_queries"] == 1  # "lonely" is alone in group D


def test_perfectly_separated_families_score_one_and_decoys_lower_it(tmp_path, capsys):
    """DNA families of pure compositions under kmer:1: every hit of a query's own family has cosine 1 (identical
    base profile), every other family scores lower, so all figures are 1. A decoy with the same profile as family
    AC ties with its members; ties rank non-relevant first, so each AC query has a false positive at rank 1."""
    fams = {"AC": ["ACACACAC", "CACACACACA", "ACACAC"], "GT": ["GTGTGT", "TGTGTGTG"], "AG": ["AGAGAGAG", "GAGA"]}
    data = _write(tmp_path / "dna", fams)
    got = _evaluate_json(capsys, "--model", "kmer:1", "--data", str(data), "-k", "1", "2")
    assert all(got[name] == 1.0 for name in ("top1", "map_r", "auc1", "recall@2"))
    assert got["recall@1"] == pytest.approx((3 * 0.5 + 2 * 1 + 2 * 1) / 7)  # R = 2 for the AC members
    (tmp_path / "decoy.fasta").write_text(">decoy\nCCAACA\n")
    got = _evaluate_json(capsys, "--model", "kmer:1", "--data", str(data), "--db-extra",
                         str(tmp_path / "decoy.fasta"), "-k", "1", "5")  # lists 5 deep: the tied decoy is in
    # AC queries: decoy first (rel 0), then their 2 members: top1 0, MAP@R = (0 + 1/2) / 2, AUC1 0, recall@5 1
    assert got["top1"] == pytest.approx(4 / 7) and got["recall@1"] == pytest.approx(4 / 7)
    assert got["map_r"] == pytest.approx((3 * 0.25 + 4) / 7)
    assert got["auc1"] == pytest.approx(4 / 7) and got["recall@5"] == 1.0 and got["n_decoys"] == 1


def test_per_family_table_and_readable_report(tmp_path, data, capsys):
    table = tmp_path / "per_family.tsv"
    assert main(["evaluate", "--model", "kmer:2", "--data", str(data), "-k", "1", "--per-family", str(table),
                 "--quiet"]) == 0
    text = capsys.readouterr().out
    for word in ("top1", "recall@1", "map_r", "auc1", "kmer:2", "24 scored, 1 alone in their family"):
        assert word in text
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert list(rows[0]) == ["family", "n_queries", "top1", "recall@1", "map_r", "auc1"]
    assert [r["family"] for r in rows] == [f"fam{i}" for i in range(6)] and all(r["n_queries"] == "4" for r in rows)
    got = _evaluate_json(capsys, "--model", "kmer:2", "--data", str(data), "-k", "1")
    mean = np.mean([float(r["map_r"]) for r in rows])  # equal family sizes: mean of families = mean of queries
    assert math.isclose(mean, got["map_r"], abs_tol=1e-6)


def test_dna_for_a_protein_encoder_advises_no_option_evaluate_lacks(tmp_path, encoder_path, capsys):
    dna = _write(tmp_path / "dna", {"a": ["ACGTACGTTGCA" * 4, "ACGTACGTTGCC" * 4], "b": ["TTGACCA" * 6] * 2})
    for argv in (["evaluate", "--model", str(encoder_path), "--data", str(dna)],
                 ["diagnose", "--model", str(encoder_path), "--data", str(dna)]):
        assert main([*argv, "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "looks like DNA, but model" in err and "--alphabet" not in err and err.count("\n") == 1


def test_a_missing_group_column_names_the_labels_file(tmp_path, data, capsys):
    labels = tmp_path / "l.tsv"
    labels.write_text((data / "labels.tsv").read_text())
    argv = ["evaluate", "--model", "kmer:2", "--data", str(data / "sequences.fasta"), "--labels", str(labels),
            "--group-column", "fold", "--quiet"]
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith(f"phylocl evaluate: error: {labels}: no column 'fold'")


@pytest.mark.parametrize("case, message", [
    ("k0", "-k values must be whole numbers >= 1"),
    ("no_column", "no column 'fold' in the labels (columns besides the family: superfamily)"),
    ("all_singletons", "every family has a single sequence"),
    ("decoy_is_labelled", "decoys.fasta:3: decoy 'fam0_0' is also a labelled sequence"),
    ("missing", "no such file or directory"),
    ("per_family_dash", "--per-family - : give a file name"),
])
def test_bad_input_exit_2_one_line(tmp_path, data, capsys, case, message):
    args = ["--model", "kmer:2", "--data", str(data)]
    table = tmp_path / "pf.tsv"
    if case == "k0":
        args += ["-k", "0", "5"]
    elif case == "no_column":
        args += ["--group-column", "fold"]
    elif case == "all_singletons":
        args = ["--model", "kmer:2", "--data", str(_write(tmp_path / "single", {"a": ["MKV"], "b": ["PQR"]}))]
    elif case == "decoy_is_labelled":
        (tmp_path / "decoys.fasta").write_text(">d1\nMKVLAAGI\n>fam0_0\nMKVLAAGI\n")
        args += ["--db-extra", str(tmp_path / "decoys.fasta")]
    elif case == "per_family_dash":
        table = Path("-")
    else:
        args = ["--model", "kmer:2", "--data", str(tmp_path / "nothing")]
    assert main(["evaluate", *args, "--per-family", str(table), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("phylocl evaluate: error: ") and message in err and err.count("\n") == 1
    assert not table.exists()


# ----------------------------------------------------------------------------- --split
def _run_folder(tmp_path, splits):
    """A stand-in for a ``phylocl train`` output folder: encoder.pt, config.yaml, splits.json."""
    run = tmp_path / "run"
    run.mkdir()
    torch.manual_seed(0)
    phylocl.build_encoder("gmlp-tiny").save(run)
    (run / "config.yaml").write_text("model:\n  name: gmlp-tiny\n")
    (run / "splits.json").write_text(json.dumps(splits))
    return run


SPLIT = {"train": ["fam0", "fam1", "fam2", "lonely"], "val": ["fam3"], "test": ["fam4", "fam5", "elsewhere"]}


@pytest.mark.parametrize("where", ["model_folder", "run_folder", "config_yaml", "splits_json"])
def test_split_evaluates_only_that_split_of_the_run(tmp_path, data, capsys, where):
    run = _run_folder(tmp_path, SPLIT)
    args = {"model_folder": [], "run_folder": ["--split-config", str(run)],
            "config_yaml": ["--split-config", str(run / "config.yaml")],
            "splits_json": ["--split-config", str(run / "splits.json")]}[where]
    model = str(run) if where == "model_folder" else "kmer:2"
    got = _evaluate_json(capsys, "--model", model, "--data", str(data), "--split", "test", "-k", "1", *args)
    assert got["split"] == "test" and got["n_sequences"] == 8 and got["n_families"] == 2  # "elsewhere" is absent
    ds = phylocl.read_dataset(data).select_families(["fam4", "fam5"])
    embedder = phylocl.load_encoder(run) if model != "kmer:2" else KmerEmbedder(k=2, alphabet="protein")
    emb = embedder.embed(ds.sequences)
    ref = evaluate_embeddings(emb, ds.families, ks=(1,))
    assert got["map_r"] == pytest.approx(ref["map_r"], abs=1e-6) and got["n_queries"] == 8


def test_split_from_a_training_config_is_re_derived(tmp_path, data, capsys):
    from phylocl.data.splits import split_families

    cfg = tmp_path / "cfg.yaml"
    # 6 families: 2 for validation (a one-family split is refused: every figure would be 1.0, issue 25)
    cfg.write_text(f"data:\n  path: {data}\n  fractions: [0.4, 0.3, 0.3]\n  seed: 3\n")
    got = _evaluate_json(capsys, "--model", "kmer:2", "--data", str(data), "--split", "val", "--split-config",
                         str(cfg), "-k", "1")
    expected = split_families(phylocl.read_dataset(data), fractions=(0.4, 0.3, 0.3), seed=3)["val"]
    assert len(expected.family_names) >= 2
    assert got["n_sequences"] == len(expected) and got["n_families"] == len(expected.family_names)
    other = tmp_path / "other.yaml"
    other.write_text("data:\n  path: somewhere/else\n")
    assert main(["evaluate", "--model", "kmer:2", "--data", str(data), "--split", "val", "--split-config",
                 str(other), "--quiet"]) == 2
    assert "is not --data" in capsys.readouterr().err


@pytest.mark.parametrize("case, message", [
    ("no_source", "--split test needs the training run's splits"),
    ("config_without_split", "--split-config goes with --split"),
    ("no_family_present", "none of the 1 test families of the run is in --data"),
])
def test_split_errors(tmp_path, data, capsys, case, message):
    run = _run_folder(tmp_path, {**SPLIT, "test": ["elsewhere"]})
    args = {"no_source": ["--split", "test"], "config_without_split": ["--split-config", str(run)],
            "no_family_present": ["--split", "test", "--split-config", str(run)]}[case]
    assert main(["evaluate", "--model", "kmer:2", "--data", str(data), *args, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_evaluation_warnings_become_note_lines(data, capsys, monkeypatch):
    import warnings

    import phylocl.retrieval.evaluation as evaluation

    original = evaluation.evaluate_embeddings

    def warning(*a, **kw):
        warnings.warn("hit lists capped at max_depth=2048", UserWarning)
        return original(*a, **kw)

    monkeypatch.setattr(evaluation, "evaluate_embeddings", warning)
    got = _evaluate_json(capsys, "--model", "kmer:2", "--data", str(data))
    assert "notes" not in got and got["n_queries"] == 24
    assert main(["evaluate", "--model", "kmer:2", "--data", str(data), "--quiet"]) == 0
    assert capsys.readouterr().err == "phylocl evaluate: note: hit lists capped at max_depth=2048\n"


@pytest.mark.parametrize("kwargs, message", [
    ({"ks": "10"}, "ks values must be whole numbers >= 1, got '10'"),  # was read as the cut-offs 1 and 0
    ({"ks": [2.5]}, r"ks values must be whole numbers >= 1, got \[2.5\]"),  # was read as 2
    ({"ks": [True]}, r"got \[True\]"),  # was read as 1
    ({"ks": 5}, "got 5"),  # was TypeError: 'int' object is not iterable
    ({"candidates": 2.5, "align": True}, "candidates must be a whole number, got 2.5"),  # was read as 2
    ({"batch_size": 2.5}, "batch_size must be a whole number >= 1, got 2.5"),  # was a TypeError from range()
    ({"batch_size": True}, "batch_size must be a whole number >= 1, got True"),  # was batches of one
])
def test_python_arguments_that_are_not_whole_numbers_are_refused(data, kwargs, message):
    with pytest.raises(phylocl.errors.InputError, match=message):
        phylocl.workflows.evaluate.evaluate(data=data, model="kmer:2", progress=False, **kwargs)
    assert phylocl.workflows.evaluate.evaluate(data=data, model="kmer:2", progress=False,
                                               ks=np.array([3, 1]))["ks"] == [1, 3]  # an array still serves


def test_a_group_column_with_empty_cells_is_refused(tmp_path, data, capsys):
    """Empty cells of --group-column were one group "": every sequence without a group counted as a relevant hit
    of every other, and the command ran."""
    labels = tmp_path / "l.tsv"
    rows = (data / "labels.tsv").read_text().splitlines()
    labels.write_text("\n".join([rows[0], *(r.rsplit("\t", 1)[0] + "\t" if r.startswith(("fam0", "fam2")) else r
                                            for r in rows[1:])]) + "\n")
    assert main(["evaluate", "--model", "kmer:2", "--data", str(data / "sequences.fasta"), "--labels", str(labels),
                 "--group-column", "superfamily", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == (f"phylocl evaluate: error: {labels}: column 'superfamily' is empty for 8 sequence(s) (first "
                   f"'fam0_0' at {data / 'sequences.fasta'}:1); a hit is relevant when it shares the query's "
                   "superfamily, so each sequence needs one\n")


def test_decoys_of_the_other_alphabet_name_the_labelled_sets_alphabet(tmp_path, data, capsys):
    """DNA decoys for a protein set advised 'use a DNA model (e.g. --model default-dna)', which the protein set
    would then be refused by."""
    decoys = tmp_path / "decoys.fa"
    decoys.write_text(">d0\nACGTACGTTGCAACGTAGCTAGCTAGGCTA\n")
    assert main(["evaluate", "--model", "kmer:2", "--data", str(data), "--db-extra", str(decoys), "--quiet"]) == 2
    assert capsys.readouterr().err == (f"phylocl evaluate: error: {decoys}:1: record 'd0' looks like DNA, but the "
                                       f"labelled set {data} is protein: decoys must be protein sequences too\n")


@pytest.mark.parametrize("windows", [0, 30])
def test_the_search_and_scoring_show_progress(data, windows):
    """After the embedding bar, the all-against-all search and scoring ran without a sign of life (65 s of 67 for
    60,000 sequences with kmer:2); a 'searching' bar now counts the queries, then says it is scoring."""
    import io

    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    phylocl.workflows.evaluate.evaluate(data=data, model="kmer:2", stream=out, windows=windows)
    text = out.getvalue()
    assert "searching" in text and "25/25" in text and "queries" in text and "scoring" in text


def test_the_alignment_stage_of_evaluate_align_shows_progress(data):
    """``evaluate --align`` showed nothing while it aligned (minutes on the E. coli DNA set): a bar per phase now
    counts the queries the filter screens and the pairs Smith-Waterman scores; the figures are those without it."""
    import io

    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    shown = phylocl.workflows.evaluate.evaluate(data=data, model="kmer:2", stream=out, align=True, filter_pvalue=0.5)
    text = out.getvalue()
    assert "filtering" in text and "25/25" in text and "aligning" in text and "pairs" in text
    quiet = phylocl.workflows.evaluate.evaluate(data=data, model="kmer:2", progress=False, align=True,
                                                filter_pvalue=0.5)
    strip = ("align_seconds", "embed_seconds", "seconds")
    assert {k: v for k, v in shown["aligned"].items() if k not in strip} == \
        {k: v for k, v in quiet["aligned"].items() if k not in strip}


def test_split_families_missing_from_the_data_are_noted(tmp_path, data):
    """A test family of the run absent from --data ('elsewhere') was dropped in silence: the figures covered 2 of
    the 3 test families and nothing said so."""
    run = _run_folder(tmp_path, SPLIT)
    res = phylocl.workflows.evaluate.evaluate(data=data, model="kmer:2", split="test", split_config=run,
                                              progress=False)
    assert res["n_families"] == 2
    assert (f"1 of the 3 test families of the run are not in {data} (e.g. 'elsewhere'): the figures are over the "
            "other 2") in res["notes"]
    train = phylocl.workflows.evaluate.evaluate(data=data, model="kmer:2", split="train", split_config=run,
                                                progress=False)
    assert not any("families of the run" in n for n in train["notes"])  # all four there: no note
