"""Issue 25, defects 9-11: hostile files and numbers end in one line and exit 2 (no traceback, nothing written).

Each case was a traceback (exit 1), a silent truncation or an out-of-memory kill before: damaged index members,
deeply nested or ``null`` JSON, non-integer model records, ``.npy`` headers declaring terabytes, NaN weights, and
numbers out of range for ``simulate``, ``index`` and ``train``.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

FASTA = "".join(f">f{f}_{m}\n{seq}\n" for f, seq in enumerate(["MKTAYIAKQRQISFVKSHFSRQ", "GSHMLEDPVVAWLKERTTGHLA",
                                                                "PLVNNWEDTKKLIGQHRSGYYV"]) for m in range(3))
LABELS = "sequence_id\tfamily_id\n" + "".join(f"f{f}_{m}\tF{f}\n" for f in range(3) for m in range(3))
DEEP = "[" * 20_000 + "]" * 20_000


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A FASTA file, an embeddings file, a flat and a sparse index, and a tiny model folder (all valid)."""
    from phylocl.cli import main
    from phylocl.models.registry import build_encoder

    root = tmp_path_factory.mktemp("built")
    (root / "s.fa").write_text(FASTA)
    (root / "l.tsv").write_text(LABELS)
    assert main(["embed", "--data", str(root / "s.fa"), "--labels", str(root / "l.tsv"), "--model", "kmer:2",
                 "-o", str(root / "e.npz"), "--quiet"]) == 0
    assert main(["index", "--embeddings", str(root / "e.npz"), "-o", str(root / "flat.idx")]) == 0
    assert main(["index", "--fasta", str(root / "s.fa"), "--model", "kmer:2", "-o", str(root / "sparse.idx"),
                 "--quiet"]) == 0
    build_encoder("gmlp-tiny", max_len=32).save_pretrained(root / "tiny")
    return root


def _one_line_exit_2(cli, *argv, needle: str = ""):
    code, out, err = cli(*argv)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert needle in err, err
    return err


def _copy(src: Path, dst: Path) -> Path:
    """A copy of ``src``; an index bundle without its ``checksums.json``, so that the damage below meets the checks
    of each file itself (with the checksums, any edit is refused first, naming the changed file)."""
    shutil.copytree(src, dst) if src.is_dir() else shutil.copy(src, dst)
    if dst.is_dir():
        (dst / "checksums.json").unlink(missing_ok=True)
    return dst


def _rewrite_npz(src: Path, dst: Path, **members) -> Path:
    """``src`` with some members replaced by raw ``.npy`` bytes (``bytes``) or arrays."""
    with zipfile.ZipFile(src) as zf:
        raw = {n: zf.read(n) for n in zf.namelist()}
    for key, value in members.items():
        if isinstance(value, bytes):
            raw[f"{key}.npy"] = value
        else:
            buf = io.BytesIO()
            np.save(buf, value)
            raw[f"{key}.npy"] = buf.getvalue()
    with zipfile.ZipFile(dst, "w") as zf:
        for name, data in raw.items():
            zf.writestr(name, data)
    return dst


def _huge_header(dtype: str, shape: tuple, body: bytes = b"") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue() + body


@pytest.mark.parametrize("member", ["ptr.npy", "rows.npy", "values.npy", "dense.npy", "basis.npy", "meta.json",
                                    "rows.npz"])
@pytest.mark.parametrize("damage", ["zero-bytes", "null"])
def test_damaged_sparse_index_members(tmp_path, cli, built, member, damage):
    idx = _copy(built / "sparse.idx", tmp_path / "idx")
    (idx / member).write_bytes(b"" if damage == "zero-bytes" else b"null")
    _one_line_exit_2(cli, "search", "--query", built / "s.fa", "--index", idx, "-o", tmp_path / "h.tsv", "--quiet")
    assert not (tmp_path / "h.tsv").exists()


@pytest.mark.parametrize("member", ["meta.json", "rows.npz", "index.faiss"])
@pytest.mark.parametrize("damage", ["zero-bytes", "null", "deep"])
def test_damaged_flat_index_members(tmp_path, cli, built, member, damage):
    idx = _copy(built / "flat.idx", tmp_path / "idx")
    (idx / member).write_text({"zero-bytes": "", "null": "null", "deep": DEEP}[damage])
    _one_line_exit_2(cli, "search", "--query", built / "s.fa", "--index", idx, "-o", tmp_path / "h.tsv", "--quiet")


@pytest.mark.parametrize("what", ["config-deep", "config-null", "config-list"])
def test_damaged_model_config(tmp_path, cli, built, what):
    model = _copy(built / "tiny", tmp_path / "m")
    (model / "config.json").write_text({"config-deep": DEEP, "config-null": "null", "config-list": "[1, 2]"}[what])
    _one_line_exit_2(cli, "embed", "--fasta", built / "s.fa", "--model", model, "-o", tmp_path / "e.npz", "--quiet",
                     needle="config.json")
    assert not (tmp_path / "e.npz").exists() and not (tmp_path / "e.npz.shards").exists()
    _one_line_exit_2(cli, "search", "--query", built / "s.fa", "--db", built / "s.fa", "--model", model,
                     "-o", tmp_path / "h.tsv", "--quiet", needle="config.json")  # search's torch-free check too


def test_nan_weights_in_a_model_folder(tmp_path, cli, built):
    from safetensors.torch import load_file, save_file

    model = _copy(built / "tiny", tmp_path / "m")
    state = load_file(str(model / "model.safetensors"))
    key = sorted(state)[0]
    state[key] = state[key] * float("nan")
    save_file(state, str(model / "model.safetensors"), metadata={"format": "pt", "model_type": "phylocl-encoder"})
    for argv in (["embed", "--fasta", built / "s.fa", "-o", tmp_path / "e.npz"],
                 ["search", "--query", built / "s.fa", "--db", built / "s.fa", "-o", tmp_path / "h.tsv"]):
        _one_line_exit_2(cli, *argv, "--model", model, "--quiet", needle="NaN or infinite")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no e.npz, no e.npz.shards/, no hits


@pytest.mark.parametrize("record", ["deep", "null", "k-float", "k-text", "dim-text"])
def test_damaged_model_record_in_embeddings(tmp_path, cli, built, record):
    model = json.loads(str(np.load(built / "e.npz")["model"]))
    text = {"deep": DEEP, "null": "null", "k-float": json.dumps({**model, "k": 2.5}),
            "k-text": json.dumps({**model, "k": "x"}), "dim-text": json.dumps({**model, "dim": "400"})}[record]
    bad = _rewrite_npz(built / "e.npz", tmp_path / "bad.npz", model=np.array(text))
    _one_line_exit_2(cli, "index", "--embeddings", bad, "-o", tmp_path / "i", needle="bad.npz")
    assert not (tmp_path / "i").exists()


def test_non_integer_k_in_an_index_is_refused_not_truncated(tmp_path, cli, built):
    idx = _copy(built / "flat.idx", tmp_path / "idx")
    meta = json.loads((idx / "meta.json").read_text())
    meta["model"]["k"] = 2.5  # was read as kmer:2 and searched
    (idx / "meta.json").write_text(json.dumps(meta))
    _one_line_exit_2(cli, "search", "--query", built / "s.fa", "--index", idx, "-o", tmp_path / "h.tsv", "--quiet",
                     needle="k must be a positive integer")


@pytest.mark.parametrize("where", ["embeddings", "rows", "sparse-ptr", "sparse-dense"])
def test_npy_header_declaring_terabytes(tmp_path, cli, built, where):
    if where == "embeddings":
        bad = _rewrite_npz(built / "e.npz", tmp_path / "bad.npz", embeddings=_huge_header("<f4", (10**13, 400)))
        argv = ["index", "--embeddings", bad, "-o", tmp_path / "i"]
    elif where == "rows":
        idx = _copy(built / "flat.idx", tmp_path / "idx")
        _rewrite_npz(built / "flat.idx" / "rows.npz", idx / "rows.npz", ids=_huge_header("<U8", (10**13,), b"x" * 64))
        argv = ["search", "--query", built / "s.fa", "--index", idx, "-o", tmp_path / "h.tsv", "--quiet"]
    else:
        idx = _copy(built / "sparse.idx", tmp_path / "idx")
        name = where.split("-")[1]
        shape = (10**13,) if name == "ptr" else (10**7, 10**7)
        (idx / f"{name}.npy").write_bytes(_huge_header("<f4" if name == "dense" else "<i8", shape, b"\0" * 64))
        argv = ["search", "--query", built / "s.fa", "--index", idx, "-o", tmp_path / "h.tsv", "--quiet"]
    _one_line_exit_2(cli, *argv, needle="declares shape")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0"])
def test_index_memory_gb_must_be_a_positive_number(tmp_path, cli, built, value):
    _one_line_exit_2(cli, "index", "--embeddings", built / "e.npz", "-o", tmp_path / "i", f"--memory-gb={value}",
                     needle="--memory-gb")
    assert not (tmp_path / "i").exists()


@pytest.mark.parametrize("flags, needle", [
    (["--seed", "-1"], "seed must be >= 0"),
    (["--indel-rate", "inf"], "indel_rate must be a finite number"),
    (["--indel-rate", "0.1", "--indel-mean", "1e12"], "indel_mean"),
    (["--divergence", "1", "inf"], "divergence must be a finite number"),
    (["--divergence", "0.1", "nan"], "divergence must be a finite number"),
    (["--rate", "inf"], "rate must be a finite number"),
    (["--kappa", "inf", "--alphabet", "dna"], "kappa must be a finite number"),
    (["--gamma-shape", "inf"], "gamma_shape must be a finite number"),
    (["--gamma-shape", "0"], "gamma shape (--gamma-shape) must be > 0"),
])
def test_simulate_numbers_out_of_range(tmp_path, cli, flags, needle):
    _one_line_exit_2(cli, "simulate", "--families", 2, "--members", 2, "--length", 20, "-o", tmp_path / "s", *flags,
                     needle=needle)
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("setting, needle", [
    ("data.max_len=100000000", "parameters and buffers"),  # gMLP's spatial gating: max_len^2 weights per block
    ("model.overrides.dim=1000000", "parameters and buffers"),
    ("model.overrides.depth=100000000", "parameters and buffers"),  # was minutes of building, then a kill
    ("optim.lr=1e38", "overflows float32"),  # AdamW's first step lr / (1 - beta1) = 1e39
])
def test_train_sizes_that_cannot_fit_are_refused_with_an_estimate(tmp_path, cli, built, setting, needle):
    out = tmp_path / "run"
    _one_line_exit_2(cli, "train", "--data", built / "s.fa", "--set", f"data.labels={built / 'l.tsv'}",
                     "--set", "model.name=gmlp-tiny", "--set", "data.batch_size=2", "--set", "trainer.max_steps=1",
                     "--set", setting, "--out", out, "--quiet", needle=needle)
    assert not out.exists()


@pytest.mark.parametrize("spec", ["kmer:1000000000", "kmer:1000000000:512", "kmer:4"])
def test_kmer_models_too_wide_are_refused_at_once(tmp_path, cli, built, spec):
    """kmer:1000000000 computed 20^(10^9) before refusing (it never finished)."""
    import time

    start = time.perf_counter()
    _one_line_exit_2(cli, "search", "--query", built / "s.fa", "--db", built / "s.fa", "--model", spec,
                     "-o", tmp_path / "h.tsv", "--quiet", needle="dense k-mer vectors are limited")
    assert time.perf_counter() - start < 10


@pytest.mark.parametrize("where", ["config-file", "set-value", "compare-config"])
def test_deeply_nested_yaml_is_one_line(tmp_path, cli, built, where):
    """Siblings of the deep-JSON cases: PyYAML recursed into a RecursionError (thousands of traceback lines)."""
    deep = tmp_path / "deep.yaml"
    deep.write_text("data: " + "[" * 5000 + "]" * 5000 + "\n")
    ok = tmp_path / "ok.yaml"
    ok.write_text(f"data:\n  path: {built / 's.fa'}\n  labels: {built / 'l.tsv'}\nmodel:\n  name: gmlp-tiny\n")
    argv = {"config-file": ["train", "--config", deep, "--out", tmp_path / "run"],
            "set-value": ["train", "--config", ok, "--set", "data.paths=" + "[" * 5000 + "]" * 5000,
                          "--out", tmp_path / "run"],
            "compare-config": ["compare", "--config", deep, "--out", tmp_path / "run"]}[where]
    _one_line_exit_2(cli, *argv, "--quiet", needle="nests deeper")
    assert not (tmp_path / "run").exists()


def test_resuming_from_a_checkpoint_of_another_architecture_is_one_line(tmp_path, cli, built):
    """Defect 11's sibling: PyTorch's mismatch was a line per key; and the failed resume used to save an
    interrupted.ckpt of the untrained model, from which the next --resume silently continued."""
    common = ["--data", built / "s.fa", "--set", f"data.labels={built / 'l.tsv'}", "--set", "model.name=gmlp-tiny",
              "--set", "data.batch_size=2", "--set", "data.max_len=32", "--set", "eval.enabled=false",
              "--set", "trainer.max_steps=2", "--set", "trainer.val_every_n_steps=1", "--quiet"]
    assert cli("train", *common, "--out", tmp_path / "a")[0] == 0
    assert cli("train", *common, "--set", "model.overrides.dim=48", "--out", tmp_path / "b")[0] == 0
    b = tmp_path / "b"
    for p in b.iterdir():  # leave run b unfinished, holding run a's checkpoint
        if p.name.startswith("encoder"):
            p.unlink()
    shutil.copy(tmp_path / "a" / "checkpoints" / "last.ckpt", b / "checkpoints" / "last.ckpt")
    err = _one_line_exit_2(cli, "train", "--resume", "--out", b, "--set", "trainer.max_steps=4", "--quiet",
                           needle="does not fit the model of config.yaml")
    assert "size mismatch" in err and "[24, 32] in the checkpoint, [24, 48] in the model" in err
    assert not (b / "checkpoints" / "interrupted.ckpt").exists()


_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "compare-small-batch.yaml"
_PATH_OPTIONS = {  # every path a command takes (cli.py's argparse definitions): LONG stands for the path to refuse
    "inspect path": ["inspect", "LONG"],
    "inspect --labels": ["inspect", "s.fa", "--labels", "LONG"],
    "simulate -o": ["simulate", "--families", "2", "--members", "2", "--length", "5", "-o", "LONG"],
    "train --config": ["train", "--config", "LONG", "--data", "s.fa", "--out", "t"],
    "train --data": ["train", "--data", "LONG", "--out", "t"],
    "train --out": ["train", "--data", "s.fa", "--out", "LONG"],
    "compare --config": ["compare", "--config", "LONG", "--out", "c"],
    "compare --out": ["compare", "--config", str(_CONFIG), "--out", "LONG"],
    "compare --data": ["compare", "--config", str(_CONFIG), "--out", "c", "--data", "LONG"],
    "embed --fasta": ["embed", "--fasta", "LONG", "--model", "kmer:2", "-o", "e2.npz"],
    "embed --data": ["embed", "--data", "LONG", "--model", "kmer:2", "-o", "e2.npz"],
    "embed --labels": ["embed", "--data", "s.fa", "--labels", "LONG", "--model", "kmer:2", "-o", "e2.npz"],
    "embed -o": ["embed", "--fasta", "s.fa", "--model", "kmer:2", "-o", "LONG"],
    "embed --model": ["embed", "--fasta", "s.fa", "--model", "LONG", "-o", "e2.npz"],
    "index --embeddings": ["index", "--embeddings", "LONG", "-o", "i2"],
    "index --fasta": ["index", "--fasta", "LONG", "--model", "kmer:2", "-o", "i2"],
    "index --verify": ["index", "--verify", "LONG"],
    "index -o": ["index", "--embeddings", "e.npz", "-o", "LONG"],
    "index --model": ["index", "--fasta", "s.fa", "--model", "LONG", "-o", "i2"],
    "search --query": ["search", "--query", "LONG", "--index", "flat.idx", "-o", "h.tsv"],
    "search --db": ["search", "--query", "s.fa", "--db", "LONG", "--model", "kmer:2", "-o", "h.tsv"],
    "search --index": ["search", "--query", "s.fa", "--index", "LONG", "-o", "h.tsv"],
    "search -o": ["search", "--query", "s.fa", "--index", "flat.idx", "-o", "LONG"],
    "search --model": ["search", "--query", "s.fa", "--db", "s.fa", "--model", "LONG", "-o", "h.tsv"],
    "evaluate --data": ["evaluate", "--data", "LONG", "--model", "kmer:2"],
    "evaluate --labels": ["evaluate", "--data", "s.fa", "--labels", "LONG", "--model", "kmer:2"],
    "evaluate --db-extra": ["evaluate", "--data", "s.fa", "--labels", "l.tsv", "--db-extra", "LONG", "--model",
                            "kmer:2"],
    "evaluate --per-family": ["evaluate", "--data", "s.fa", "--labels", "l.tsv", "--per-family", "LONG", "--model",
                              "kmer:2"],
    "evaluate --split-config": ["evaluate", "--data", "s.fa", "--labels", "l.tsv", "--split", "val",
                                "--split-config", "LONG", "--model", "kmer:2"],
    "evaluate --model": ["evaluate", "--data", "s.fa", "--labels", "l.tsv", "--model", "LONG"],
    "diagnose --data": ["diagnose", "--data", "LONG", "--model", "tiny"],
    "diagnose --labels": ["diagnose", "--data", "s.fa", "--labels", "LONG", "--model", "tiny"],
    "diagnose -o": ["diagnose", "--data", "s.fa", "--labels", "l.tsv", "-o", "LONG", "--model", "tiny"],
    "diagnose --model": ["diagnose", "--data", "s.fa", "--labels", "l.tsv", "--model", "LONG"],
}


@pytest.mark.parametrize("case", list(_PATH_OPTIONS))
def test_a_path_too_long_for_a_file_name_is_one_line(tmp_path, cli, built, monkeypatch, case):
    """A path with a part over 255 bytes given to any path option: one line naming the path, exit 2, no traceback
    (the Python API raised a bare OSError for some; test_python_api.py), nothing written."""
    monkeypatch.chdir(built)
    long = str(tmp_path / ("x" * 300))
    argv = [long if a == "LONG" else a for a in _PATH_OPTIONS[case]]
    if argv[0] not in ("inspect", "simulate", "index") or "--fasta" in argv:
        argv.append("--quiet")
    before = sorted(p.name for p in built.iterdir())
    err = _one_line_exit_2(cli, *argv, needle="file name too long")
    assert err.startswith(f"phylocl {argv[0]}: error: {long}") and "Traceback" not in err, err
    assert sorted(p.name for p in built.iterdir()) == before and list(tmp_path.iterdir()) == []
