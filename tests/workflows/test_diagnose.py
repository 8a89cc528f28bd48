"""``phylocl diagnose``: JSON keys and values, output folder, k-mer models, exit codes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import phylocl
from phylocl.cli import main
from phylocl.diagnostics.measures import effective_rank
from phylocl.diagnostics.probes import knn_top1

AA = "ACDEFGHIKLMNPQRSTVWY"
KEYS = {"effective_rank", "alignment", "uniformity", "layer_residual", "knn_top1", "linear_probe_accuracy",
        "dim_std", "input_residual", "singular_values", "model", "n_sequences"}


def _write(folder, n_fam=5, members=4, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for f in range(n_fam):
        root = rng.choice(list(AA), size=int(rng.integers(30, 80)))
        for k in range(members):
            s = root.copy()
            hit = rng.random(len(s)) < 0.2
            s[hit] = rng.choice(list(AA), size=int(hit.sum()))
            rows.append((f"fam{f}_{k}", f"fam{f}", "".join(s)))
    folder.mkdir(parents=True)
    (folder / "sequences.fasta").write_text("".join(f">{i}\n{s}\n" for i, _, s in rows))
    (folder / "labels.tsv").write_text("sequence_id\tfamily_id\n" + "".join(f"{i}\t{f}\n" for i, f, _ in rows))
    return folder


@pytest.fixture
def data(tmp_path):
    return _write(tmp_path / "data")


@pytest.fixture
def encoder_path(tmp_path):
    torch.manual_seed(0)
    return phylocl.build_encoder("gmlp-tiny").save(tmp_path / "enc.pt")


def _json(capsys, *args):
    capsys.readouterr()
    assert main(["diagnose", *args, "--json", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    return json.loads(out)


def test_encoder_json_has_one_residual_per_block_and_figures_of_its_embeddings(data, encoder_path, capsys):
    r = _json(capsys, "--model", str(encoder_path), "--data", str(data))
    assert KEYS <= set(r)
    enc = phylocl.load_encoder(encoder_path)
    assert len(r["layer_residual"]) == enc.config.depth and all(0 < v <= 1 for v in r["layer_residual"])
    from phylocl.data.layouts import read_dataset

    ds = read_dataset(data)
    x = enc.embed(list(ds.sequences))
    assert r["effective_rank"] == pytest.approx(effective_rank(x), rel=1e-4)
    assert r["knn_top1"] == pytest.approx(knn_top1(x, ds.families)["knn_top1"])
    assert 0.0 <= r["linear_probe_accuracy"] <= 1.0 and r["probe_folds"] == 4
    assert r["uniformity"] < 0 and r["alignment"] >= 0 and len(r["dim_std"]) == enc.embed_dim


def test_kmer_model_has_no_layers_but_every_other_figure(data, capsys, tmp_path):
    out = tmp_path / "diag"
    r = _json(capsys, "--model", "kmer:2", "--data", str(data), "-o", str(out))
    assert r["layer_residual"] == [] and r["input_residual"] is None
    assert r["knn_top1"] > 0.5 and r["effective_rank"] > 1
    assert json.loads((out / "diagnosis.json").read_text()) == r
    assert {p.name for p in out.iterdir()} == {"diagnosis.json", "spectrum.png", "map.png"}  # no residual plot


def test_output_folder_holds_the_json_and_three_plots(data, encoder_path, capsys, tmp_path):
    out = tmp_path / "diag"
    capsys.readouterr()
    assert main(["diagnose", "--model", str(encoder_path), "--data", str(data), "-o", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "effective rank" in text and "layer residual" in text
    assert {p.name for p in out.iterdir()} == {"diagnosis.json", "residual.png", "spectrum.png", "map.png"}
    assert all((out / n).read_bytes()[:4] == b"\x89PNG" for n in ("residual.png", "spectrum.png", "map.png"))


def test_max_sequences_keeps_whole_families(data, capsys):
    r = _json(capsys, "--model", "kmer:2", "--data", str(data), "--max-sequences", "9")
    assert r["n_sequences"] == 8 and r["n_families"] == 2


@pytest.mark.parametrize("case, message", [
    ("missing", "no such file or directory"),
    ("untrained", "untrained architecture"),
    ("out_is_file", "exists and is not a folder"),
    ("too_few", "--max-sequences must be >= 2"),
    ("one_family", "holds 1 family: every neighbour is in the query's family"),  # reported kNN top-1 1.0 before
    ("one_kept", "--max-sequences 5 keeps 1 whole family of the 5"),  # said 'DATA: holds 1 family' before
    ("negative_seed", "--seed must be a whole number in [0, 4294967295], got -1"),  # a traceback after embedding
    ("huge_seed", "--seed must be a whole number in [0, 4294967295], got 4294967296"),
])
def test_bad_input_exit_2_one_line_no_output(tmp_path, data, capsys, case, message):
    out = tmp_path / "diag"
    args = ["--model", "kmer:2", "--data", str(data), "-o", str(out)]
    if case == "missing":
        args[3] = str(tmp_path / "nothing")
    elif case == "untrained":
        args[1] = "gmlp-tiny"
    elif case == "out_is_file":
        out.write_text("x")
    elif case == "one_family":
        args[3] = str(_write(tmp_path / "one", n_fam=1))
    elif case.endswith("_seed"):
        args += ["--seed", "-1" if case == "negative_seed" else str(2**32)]
    elif case == "one_kept":
        args += ["--max-sequences", "5"]  # families of 4: one fits, two do not
    else:
        args += ["--max-sequences", "1"]
    capsys.readouterr()
    assert main(["diagnose", *args, "--quiet"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("phylocl diagnose: error: ") and message in captured.err
    assert captured.err.count("\n") == 1 and captured.out == ""
    assert (out.is_file() and out.read_text() == "x") if case == "out_is_file" else not out.exists()


@pytest.mark.parametrize("where", ["same", "inside"])
def test_output_into_the_input_dataset_folder_is_refused(data, capsys, where):
    """issue 25, defect 12: ``diagnose -o DIR`` wrote diagnosis.json and plots into its input dataset folder."""
    before = sorted(p.name for p in data.iterdir())
    out = data if where == "same" else data / "plots"
    capsys.readouterr()
    assert main(["diagnose", "--model", "kmer:2", "--data", str(data), "-o", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("phylocl diagnose: error: ") and err.count("\n") == 1 and "input" in err, err
    assert sorted(p.name for p in data.iterdir()) == before


def test_a_users_file_named_as_a_plot_is_never_replaced_but_a_diagnosis_is(data, capsys, tmp_path):
    out = tmp_path / "d"
    out.mkdir()
    (out / "map.png").write_text("mine")
    assert main(["diagnose", "--model", "kmer:2", "--data", str(data), "-o", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "holds map.png, which phylocl diagnose writes" in err and err.count("\n") == 1
    assert (out / "map.png").read_text() == "mine" and sorted(p.name for p in out.iterdir()) == ["map.png"]
    (out / "map.png").unlink()
    for _ in range(2):  # its own outputs are replaced by the next diagnosis
        assert main(["diagnose", "--model", "kmer:2", "--data", str(data), "-o", str(out), "--quiet"]) == 0
    assert {"diagnosis.json", "map.png", "spectrum.png"} <= {p.name for p in out.iterdir()}


def test_window_overlap_reaches_the_encoder_and_a_bad_one_is_refused(data, capsys, tmp_path):
    """``--window-overlap`` was parsed but never passed on: any value (even 7) gave the default's figures."""
    torch.manual_seed(0)
    short = phylocl.build_encoder("gmlp-tiny", max_len=16).save(tmp_path / "short.pt")  # sequences 30-80 long
    runs = {o: _json(capsys, "--model", str(short), "--data", str(data), "--window-overlap", o) for o in ("0", "0.75")}
    from phylocl.data.layouts import read_dataset

    enc, ds = phylocl.load_encoder(short), read_dataset(data)
    for o, r in runs.items():
        x = enc.embed(list(ds.sequences), overlap=float(o))
        assert r["effective_rank"] == pytest.approx(effective_rank(x), rel=1e-4)
    assert runs["0"]["singular_values"] != runs["0.75"]["singular_values"]
    capsys.readouterr()
    assert main(["diagnose", "--model", str(short), "--data", str(data), "--window-overlap", "7", "--quiet"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "phylocl diagnose: error: --window-overlap must be in [0, 1), got 7.0\n"


def test_without_model_the_chosen_default_is_said_on_stderr(data, capsys):
    capsys.readouterr()
    assert main(["diagnose", "--data", str(data), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "no --model given: using default-protein" in captured.err and "default-protein" in captured.out
