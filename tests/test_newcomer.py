"""Issue 25, "a newcomer's path": first steps that used to surprise (each test failed before the change)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
FASTA = ">a\nMKTAYIAKQR\n>b\nMKTAYIAKQK\n>c\nGSHMLEDPVV\n>d\nGSHMLEDPAV\n"


@pytest.mark.parametrize("argv", [["models"], ["simulate", "--help"], ["--help"], ["inspect", "DATA"],
                                  ["simulate", "--families", "2", "--members", "2", "--length", "10", "-o", "OUT"]])
def test_commands_that_need_no_model_import_neither_torch_nor_faiss(argv, tmp_path):
    """`phylocl models` took 3.6 s for the torch import; the commands that load no model now start without it
    (the timing itself is in benchmarks/startup.py)."""
    where = {"DATA": str(REPO / "datasets" / "example-mini-mit" / "protein"), "OUT": str(tmp_path / "sim")}
    argv = [where.get(a, a) for a in argv]
    code = ("import sys\nfrom phylocl.cli import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'faiss', 'lightning') if m in sys.modules]\n"
            "assert not heavy, heavy")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr


def test_importing_the_cli_imports_no_torch():
    proc = subprocess.run([sys.executable, "-c", "import sys, phylocl.cli, phylocl.models, phylocl.retrieval; "
                           "assert 'torch' not in sys.modules"], cwd=REPO, capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("command", ["embed", "index"])
def test_embed_and_index_refuse_stdout(tmp_path, cli, command, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.fa").write_text(FASTA)
    argv = (["embed", "--fasta", "s.fa", "--model", "kmer:2"] if command == "embed"
            else ["index", "--fasta", "s.fa", "--model", "kmer:2"])
    code, _, err = cli(*argv, "-o", "-", "--quiet")
    assert code == 2 and "cannot go to standard output" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.fa"]  # no file named "-"


def test_sentence_transformers_names():
    import phylocl

    enc = phylocl.build_encoder("gmlp-tiny", max_len=32)
    seqs = ["MKTAYIAKQR", "GSHMLEDPVV"]
    x = enc.embed(seqs)
    np.testing.assert_allclose(enc.encode(seqs, batch_size=1, normalize_embeddings=True), x, atol=1e-6)
    np.testing.assert_array_equal(enc.encode(seqs, convert_to_numpy=True), x)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="always return unit rows"):
        enc.encode(seqs, normalize_embeddings=False)


def test_load_encoder_of_an_architecture_name_points_to_build_encoder():
    import phylocl

    with pytest.raises(phylocl.InputError, match=r"phylocl.build_encoder\('gmlp-small'\) builds it untrained"):
        phylocl.load_encoder("gmlp-small")


def test_evaluate_refuses_a_one_family_split(tmp_path, cli):
    """`evaluate --split test` on a one-family split printed MAP@R 1.0 and AUC1 1.0 with no word."""
    import json

    data = tmp_path / "d"
    data.mkdir()
    (data / "sequences.fasta").write_text(FASTA)
    (data / "labels.tsv").write_text("sequence_id\tfamily_id\na\tF1\nb\tF1\nc\tF2\nd\tF2\n")
    (tmp_path / "splits.json").write_text(json.dumps({"train": ["F1"], "val": [], "test": ["F2"]}))
    code, out, err = cli("evaluate", "--data", data, "--model", "kmer:2", "--split", "test", "--split-config",
                         tmp_path / "splits.json", "--quiet")
    assert code == 2 and "holds 1 family" in err and "1.0 whatever the model" in err and out == ""
    assert err.startswith(f"phylocl evaluate: error: {data}: ")  # names the data it refuses
    code, _, err = cli("evaluate", "--data", data, "--model", "kmer:2", "--quiet")  # two families: fine
    assert code == 0, err


def test_shipped_training_configs_validate_and_test_on_the_bundled_data():
    """configs/{gmlp,transformer}-*.yaml gave validation and test one family each on datasets/example-mini-mit."""
    from phylocl.config import load_config
    from phylocl.data.layouts import read_dataset
    from phylocl.data.splits import split_families

    for path in sorted((REPO / "configs").glob("*.yaml")):
        if not path.name.startswith(("gmlp-", "transformer-")):
            continue
        c = load_config(path).data
        assert c.path == "datasets/example-mini-mit/protein", path
        ds = read_dataset(REPO / c.path)
        parts = split_families(ds, fractions=c.fractions, seed=c.seed, group_column=c.group_column,
                               holdout=c.holdout)
        assert len(parts["val"].family_names) >= 2 and len(parts["test"].family_names) >= 2, path


def test_train_says_once_when_the_batch_is_capped_and_a_split_is_too_small(tmp_path, cli):
    data = tmp_path / "d"
    data.mkdir()
    fams = ["MKTAYIAKQRQISFVKSHFSRQ", "GSHMLEDPVVAWLKERTTGHLA", "PLVNNWEDTKKLIGQHRSGYYV", "WWKRLEEHAPSNMTGQCDAF"]
    for f, seq in enumerate(fams):
        (data / f"F{f}.fasta").write_text("".join(f">F{f}_{m}\n{seq[m:] + seq[:m]}\n" for m in range(3)))
    code, _, err = cli("train", "--data", data, "--out", tmp_path / "run", "--set", "model.name=gmlp-tiny",
                       "--set", "data.max_len=32", "--set", "data.batch_size=64", "--set", "trainer.max_steps=2",
                       "--set", "data.fractions=[0.5, 0.25, 0.25]", "--quiet")
    assert code == 0, err
    assert err.count("data.batch_size is 64 but the training split has 2 families") == 1, err
    assert err.count("the validation split has 1 family") == 1 and err.count("the test split has 1 family") == 1


def test_a_shipped_compare_config_runs_on_simulated_data_in_minutes():
    """No shipped compare config ran on bundled or simulated data in reasonable time; compare-quick-simulated does
    (measured 1 min 54 s, docs/flatnce-vs-infonce.md). Checked here: it validates, reads the simulation its header
    writes, and its grid is a handful of short cells."""
    from phylocl.workflows.compare_config import load_compare_config

    path = REPO / "configs" / "compare-quick-simulated.yaml"
    grid, base = load_compare_config(path)
    header = path.read_text()
    assert base.data.path == "runs/sim-quick" and "-o runs/sim-quick" in header
    assert "phylocl compare --config configs/compare-quick-simulated.yaml" in header
    assert len(grid.losses) * len(grid.batch_sizes) * len(grid.seeds) <= 4 and grid.pairs_budget <= 512
    assert "compare-quick-simulated.yaml" in (REPO / "docs" / "flatnce-vs-infonce.md").read_text()
