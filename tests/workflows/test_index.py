"""``phylocl index``: bundle contents (model fingerprint, dimension, ids, labels), exact search, fallbacks, refusals."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import phylocl
from phylocl.cli import main
from phylocl.retrieval.embedding_files import save_embeddings
from phylocl.retrieval.index_io import load_index

MODEL = {"fingerprint": "0123456789abcdef", "name": "toy", "dim": 8, "alphabet": "protein"}


def _embeddings(folder, n=30, d=8, labels=True, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = [f"s{i}" for i in range(n)]
    labs = [f"f{i % 4}" for i in range(n)] if labels else None
    path = save_embeddings(folder / "e.npz", x, ids, labs, model=MODEL)
    return path, x, ids, labs


def test_flat_index_records_model_and_rows_and_searches_exactly(tmp_path, capsys):
    path, x, ids, labels = _embeddings(tmp_path)
    out = tmp_path / "idx"
    assert main(["index", "--embeddings", str(path), "-o", str(out)]) == 0
    assert f"wrote index {out}: flat, 30 vectors of dim 8, model toy" in capsys.readouterr().out
    meta = json.loads((out / "meta.json").read_text())
    assert meta["model"]["fingerprint"] == MODEL["fingerprint"] and meta["dim"] == 8 and meta["kind"] == "flat"
    index = load_index(out)
    assert index.ids == ids and index.labels == labels
    scores, rows = index.search(x[:5], 3)
    sims = x[:5] @ x.T  # (5, 30) brute-force cosine similarities
    ref = np.argsort(-sims, axis=1, kind="stable")[:, :3]
    assert np.array_equal(rows, ref) and np.allclose(scores, np.take_along_axis(sims, ref, axis=1), atol=1e-6)


def test_index_of_unlabelled_embeddings_from_embed(tmp_path):
    fasta = tmp_path / "q.fasta"
    fasta.write_text(">a\nMKVLAAGIV\n>b\nMKVLAAGIW\n>c\nPQRSTPQRST\n")
    torch.manual_seed(0)
    enc = phylocl.build_encoder("gmlp-tiny")
    enc.save(tmp_path / "enc.pt")
    assert main(["embed", "--model", str(tmp_path / "enc.pt"), "--fasta", str(fasta), "-o", str(tmp_path / "e.npz"),
                 "--quiet"]) == 0
    assert main(["index", "--embeddings", str(tmp_path / "e.npz"), "-o", str(tmp_path / "idx"), "--type", "hnsw"]) == 0
    index = load_index(tmp_path / "idx")
    assert index.kind == "hnsw" and index.labels is None and index.ids == ["a", "b", "c"]
    assert index.model["fingerprint"] == enc.fingerprint() and index.dim == enc.embed_dim


def test_ivf_on_too_few_vectors_falls_back_to_flat_with_a_note(tmp_path, capsys):
    path, *_ = _embeddings(tmp_path, n=30)
    assert main(["index", "--embeddings", str(path), "-o", str(tmp_path / "idx"), "--type", "ivf"]) == 0
    cap = capsys.readouterr()
    assert "phylocl index: note: ivf needs >= 78 vectors" in cap.err and ": flat, 30 vectors" in cap.out
    assert load_index(tmp_path / "idx").kind == "flat"


def test_ivf_parameters_are_recorded(tmp_path):
    path, x, *_ = _embeddings(tmp_path, n=200)
    assert main(["index", "--embeddings", str(path), "-o", str(tmp_path / "idx"), "--type", "ivf", "--nlist", "4",
                 "--nprobe", "4", "--threads", "1"]) == 0
    index = load_index(tmp_path / "idx")
    assert index.kind == "ivf" and index.params == {"nlist": 4, "nprobe": 4}
    _, rows = index.search(x[:10], 1)  # nprobe = nlist: exact
    assert np.array_equal(rows[:, 0], np.arange(10))


def test_an_earlier_index_is_replaced(tmp_path):
    path, *_ = _embeddings(tmp_path, n=30)
    out = tmp_path / "idx"
    assert main(["index", "--embeddings", str(path), "-o", str(out)]) == 0
    (tmp_path / "second").mkdir()
    path2, *_ = _embeddings(tmp_path / "second", n=12, seed=1)
    assert main(["index", "--embeddings", str(path2), "-o", str(out)]) == 0
    assert load_index(out).ntotal == 12


def test_an_index_at_a_symbolic_link_is_written_into_the_folder_it_links_to(tmp_path):
    """`-o db.idx` with db.idx -> /big/disk/db.idx: the new bundle replaced the link with a folder beside it (on
    the link's disk) and the bundle at the target stayed the previous one."""
    path, *_ = _embeddings(tmp_path, n=30)
    (tmp_path / "disk").mkdir()
    target = tmp_path / "disk" / "db.idx"
    assert main(["index", "--embeddings", str(path), "-o", str(target)]) == 0
    os.symlink(target, tmp_path / "db.idx")
    (tmp_path / "second").mkdir()
    path2, *_ = _embeddings(tmp_path / "second", n=12, seed=1)
    assert main(["index", "--embeddings", str(path2), "-o", str(tmp_path / "db.idx")]) == 0
    assert (tmp_path / "db.idx").is_symlink() and os.readlink(tmp_path / "db.idx") == str(target)
    assert load_index(target).ntotal == 12 and os.listdir(tmp_path / "disk") == ["db.idx"]


@pytest.mark.parametrize("case, message", [
    ("missing", "no such embeddings file"),
    ("not_npz", "not an .npz archive"),
    ("nprobe_negative", "--nprobe must be >= 1, got -1"),
    ("nlist_zero", "--nlist must be >= 1, got 0"),
    ("dest_is_fifo", "is not a folder (a device, pipe or socket)"),
    ("dest_under_proc", "under /proc"),
    ("dest_is_file", "exists and is a file"),
    ("dest_is_other_dir", "is not a phylocl index folder"),
    ("param_for_flat", "flat index does not take"),
    ("threads", "--threads must be >= 1"),
])
def test_bad_input_exit_2_one_line_nothing_written(tmp_path, capsys, case, message):
    path, *_ = _embeddings(tmp_path)
    out, extra = tmp_path / "idx", []
    if case == "missing":
        path = tmp_path / "none.npz"
    elif case == "not_npz":
        path = tmp_path / "bad.npz"
        path.write_text("not a zip")
    elif case == "dest_is_file":
        out.write_text("keep me")
    elif case == "dest_is_other_dir":
        out.mkdir()
        (out / "precious.txt").write_text("keep me")
    elif case == "param_for_flat":
        extra = ["--nlist", "4"]
    elif case == "nprobe_negative":
        extra = ["--type", "ivf", "--nprobe", "-1"]
    elif case == "nlist_zero":
        extra = ["--type", "ivf", "--nlist", "0"]
    elif case == "dest_is_fifo":
        os.mkfifo(out)
    elif case == "dest_under_proc":
        out = Path("/proc/phylocl-index")
    else:
        extra = ["--threads", "0"]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["index", "--embeddings", str(path), "-o", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("phylocl index: error: ") and message in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no index, no temporary folder
    if case == "dest_is_file":
        assert out.read_text() == "keep me"
    if case == "dest_is_other_dir":
        assert (out / "precious.txt").read_text() == "keep me"


@pytest.mark.parametrize("n", [100, 5_000, 1_000_000])
def test_index_help_states_the_defaults_the_code_uses(capsys, n):
    """The --nlist / --nprobe / --ef-search help is made from the code's defaults: the formulas it prints, evaluated
    here, give what default_params picks."""
    import math
    import re

    from phylocl.retrieval.index import default_params

    with pytest.raises(SystemExit):
        main(["index", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    a, b = map(int, re.search(r"default min\((\d+) sqrt\(N\), N/(\d+)\)", text).groups())
    div = int(re.search(r"default ceil\(nlist/(\d+)\)", text).group(1))
    ef = int(re.search(r"search breadth \(default (\d+)\)", text).group(1))
    _, p = default_params("ivf", n, 16)
    assert p["nlist"] == min(round(a * math.sqrt(n)), n // b)
    assert p["nprobe"] == math.ceil(p["nlist"] / div)
    assert default_params("hnsw", n, 16)[1]["ef_search"] == ef


def test_auto_kind_is_the_default_and_says_why(tmp_path, capsys, monkeypatch):
    from phylocl.retrieval import index_choice

    path = _embeddings(tmp_path, n=200)[0]
    assert main(["index", "--embeddings", str(path), "-o", str(tmp_path / "a")]) == 0
    assert "chose flat: 200 vectors" in capsys.readouterr().err
    monkeypatch.setattr(index_choice, "FLAT_MAX", 100)
    assert main(["index", "--embeddings", str(path), "-o", str(tmp_path / "b")]) == 0
    assert "chose hnsw" in capsys.readouterr().err and load_index(tmp_path / "b").kind == "hnsw"
    # over the memory budget (200 x 8 floats = 6.4 kB > 1e-6 GB): product-quantised codes; too few to train
    # them, so FAISS's fallback applies and says so
    assert main(["index", "--embeddings", str(path), "-o", str(tmp_path / "c"), "--memory-gb", "1e-6"]) == 0
    err = capsys.readouterr().err
    assert "chose ivfpq" in err and "building an ivf index instead" in err
    assert main(["index", "--embeddings", str(path), "-o", str(tmp_path / "d"), "--kind", "flat"]) == 0
    assert "chose" not in capsys.readouterr().err and load_index(tmp_path / "d").kind == "flat"


def test_rebuilding_an_index_refuses_naming_files_phylocl_did_not_write(tmp_path, capsys):
    """issue 25, defect 5: ``index -o EXISTING.idx`` replaced the whole folder, deleting the user's files in it."""
    path, *_ = _embeddings(tmp_path)
    out = tmp_path / "idx"
    assert main(["index", "--embeddings", str(path), "-o", str(out)]) == 0
    (out / "README.txt").write_text("keep me")
    capsys.readouterr()
    assert main(["index", "--embeddings", str(path), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "README.txt" in err and err.count("\n") == 1
    assert (out / "README.txt").read_text() == "keep me"
    (out / "README.txt").unlink()
    assert main(["index", "--embeddings", str(path), "-o", str(out)]) == 0  # only ours: replaced


def test_sparse_index_threads_zero_is_refused(tmp_path, capsys):
    """issue 25, defect 13: ``index --fasta ... --threads 0`` was accepted (and ignored)."""
    fasta = tmp_path / "db.fasta"
    fasta.write_text(">a\nMKVLAAGIVG\n>b\nMSTAPQRWPL\n")
    assert main(["index", "--fasta", str(fasta), "--model", "kmer:3", "-o", str(tmp_path / "idx"),
                 "--threads", "0", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--threads must be >= 1" in err and err.count("\n") == 1 and not (tmp_path / "idx").exists()


def test_killed_builds_temporaries_are_swept_at_the_next_build(tmp_path, capsys):
    """issue 25, defect 13: a killed build's ``.NAME.PID.*.tmp`` folder stayed until the next write to that name."""
    import subprocess
    import sys

    pid = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                             text=True).stdout)
    stale = tmp_path / f".killed.idx.{pid}.k2j4h5g6.tmp"
    stale.mkdir()
    (stale / "_cols.bin").write_bytes(b"\0" * 64)
    fasta = tmp_path / "db.fasta"
    fasta.write_text(">a\nMKVLAAGIVG\n>b\nMSTAPQRWPL\n")
    assert main(["index", "--fasta", str(fasta), "--model", "kmer:3", "-o", str(tmp_path / "other.idx"),
                 "--quiet"]) == 0
    assert not stale.exists() and (tmp_path / "other.idx" / "meta.json").is_file()


@pytest.mark.parametrize("model", [["--model", "default-protein"], []])
def test_sparse_index_at_bf16_is_refused_for_the_right_reason(tmp_path, capsys, model):
    """issue 25, defect 13: ``index --fasta --precision bf16`` said the model "gives dense rows" (with --model
    default-protein) or silently fell back to kmer:3 (without --model); the reason is the precision."""
    fasta = tmp_path / "db.fasta"
    fasta.write_text(">a\nMKVLAAGIVG\n>b\nMSTAPQRWPL\n")
    out = tmp_path / "idx"
    assert main(["index", "--fasta", str(fasta), *model, "--precision", "bf16", "-o", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fp32" in err and "--precision bf16" in err and "dense rows" not in err, err
    assert not out.exists()


def test_a_sparse_bundle_is_replaced_by_indexing_again(tmp_path, monkeypatch, capsys):
    """``phylocl index --fasta`` into its own earlier bundle (stored sequences, row-block bounds and all) replaces
    it; a file of the user's in that folder is still refused, named."""
    import phylocl.retrieval.sparse_index as sparse_index

    monkeypatch.setattr(sparse_index, "ROW_BLOCK", 2)  # several row blocks: blocks.npy is written
    fasta = tmp_path / "db.fasta"
    fasta.write_text("".join(f">s{i}\nMKTAYIAKQRQISFVKSHFSRQ{'AC'[i % 2] * (i + 1)}\n" for i in range(6)))
    out = tmp_path / "ix"
    assert main(["index", "--fasta", str(fasta), "--model", "kmer:3", "-o", str(out), "--quiet"]) == 0
    assert {"blocks.npy", "sequences.bin", "sequence_offsets.npy"} <= {p.name for p in out.iterdir()}
    fasta.write_text("".join(f">t{i}\nMKTAYIAKQRQISFV{'GW'[i % 2] * (i + 2)}\n" for i in range(5)))
    assert main(["index", "--fasta", str(fasta), "--model", "kmer:3", "-o", str(out), "--quiet"]) == 0
    assert load_index(out).ntotal == 5
    (out / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert main(["index", "--fasta", str(fasta), "--model", "kmer:3", "-o", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds files phylocl did not write (notes.txt)" in err


@pytest.mark.parametrize("argv, message", [
    (["--embeddings", "E", "-o", "OUT", "--model", "kmer:3"], "--embeddings (the file names the model of its rows) "
                                                              "does not use --model"),
    (["--verify", "IDX", "-o", "OUT", "--kind", "ivf", "--nlist", "3"], "does not use -o, --kind, --nlist; drop them"),
    (["--fasta", "FA", "-o", "OUT", "--nprobe", "2"], "--fasta (a sparse index, exact) does not use --nprobe"),
])
def test_options_a_mode_does_not_use_are_refused(tmp_path, capsys, argv, message):
    """They were silently ignored (a kmer:2 index built under --model kmer:3; --verify ignoring -o and --kind)."""
    from phylocl.cli import main

    fa = tmp_path / "s.fa"
    fa.write_text(">a\nMKVLAAGIW\n>b\nMKVLAAGIY\n")
    assert main(["embed", "--model", "kmer:2", "--fasta", str(fa), "-o", str(tmp_path / "e.npz"), "--quiet"]) == 0
    assert main(["index", "--embeddings", str(tmp_path / "e.npz"), "-o", str(tmp_path / "idx")]) == 0
    names = {"E": tmp_path / "e.npz", "OUT": tmp_path / "new", "IDX": tmp_path / "idx", "FA": fa}
    capsys.readouterr()
    assert main(["index", *[str(names.get(a, a)) for a in argv]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and not (tmp_path / "new").exists()


@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "ivf", "nlist": 2.5}, "nlist must be a whole number >= 1, got 2.5"),  # was taken
    ({"kind": "ivf", "nlist": "3"}, "nlist must be a whole number >= 1, got '3'"),  # was a TypeError
    ({"threads": True}, "threads must be a whole number >= 1, got True"),
])
def test_python_index_options_that_are_not_whole_numbers_are_refused(tmp_path, kwargs, message):
    from phylocl.errors import InputError
    from phylocl.workflows.index_command import build_index_file

    path, *_ = _embeddings(tmp_path, n=12)
    with pytest.raises(InputError, match=message):
        build_index_file(embeddings=path, out=tmp_path / "idx", **kwargs)
    assert not (tmp_path / "idx").exists()


@pytest.mark.parametrize("kwargs, message", [
    ({"threads": 0}, "threads must be a whole number >= 1, got 0"),  # ran as 0 workers
    ({"threads": 2.5}, "threads must be a whole number >= 1, got 2.5"),  # ran as 2
    ({"windows": -1}, r"^windows must be a positive number of residues"),  # named --windows to a Python caller
])
def test_python_sparse_index_options_are_checked(tmp_path, kwargs, message):
    from phylocl.errors import InputError
    from phylocl.workflows.sparse_index_command import build_sparse_index_file

    fasta = tmp_path / "db.fa"
    fasta.write_text(">a\nMKVLAAGIVG\n>b\nMKVLSAGIVG\n")
    with pytest.raises(InputError, match=message):
        build_sparse_index_file(fasta=fasta, out=tmp_path / "idx", model="kmer:3", progress=False, **kwargs)
    assert not (tmp_path / "idx").exists()
    ok = build_sparse_index_file(fasta=fasta, out=tmp_path / "w", model="kmer:3", progress=False,
                                 windows=np.int64(6))  # a NumPy integer is a width ("got 6" before)
    assert ok.kind == "sparse-windows" and ok.params["window"] == 6


def test_an_index_built_with_threads_leaves_the_process_thread_count_as_it_was(tmp_path):
    """``build_index_file(threads=1)`` set FAISS's OpenMP threads for good, and OpenMP's count is the process's:
    torch's CPU kernels ran on one thread afterwards (a later training summed in another order)."""
    import faiss
    import torch

    from phylocl.workflows.index_command import build_index_file

    before = (faiss.omp_get_max_threads(), torch.get_num_threads())
    target = 1 if before[0] > 1 else 2
    path, *_ = _embeddings(tmp_path, n=12)
    build_index_file(embeddings=path, out=tmp_path / "idx", threads=target)
    assert (faiss.omp_get_max_threads(), torch.get_num_threads()) == before
