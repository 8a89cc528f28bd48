"""``phylocl search --index`` of a sparse index of k-mer profiles never imports torch (start-up: ~1.5 s), nor FAISS,
tqdm (silent bars), scipy.special, scipy.sparse (~0.1 s; phylocl.sparse_ops loads its compiled routines) or
Biopython's SeqIO, Align (BLOSUM62 is a table) and Phylo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from phylocl.cli import main

AA = "ACDEFGHIKLMNPQRSTVWY"
REPO = Path(__file__).resolve().parents[2]

DRIVER = """
import sys
from phylocl.workflows.search import search
for query, index, out, model in zip(*[iter(sys.argv[1:])] * 4):
    search(query=query, index=index, out=out, model=model or None, k=3, progress=False, filter_pvalue=1.0)
print("torch" in sys.modules)
print(sorted(m for m in ("faiss", "tqdm", "scipy.special", "scipy.sparse", "Bio.SeqIO", "Bio.Align", "Bio.Phylo")
            if m in sys.modules))  # start-up a search never needs
"""


def test_sparse_index_searches_need_no_torch_and_match_the_torch_search(tmp_path, monkeypatch):
    """kmer:3, saved profile encoders (folders; one with a similar-word block) and the shipped default-protein, all
    in one fresh process."""
    import torch

    from phylocl.models.kmerprofile import profile_dim
    from phylocl.models.registry import build_encoder

    torch.manual_seed(0)
    folder = build_encoder("kmerprofile-small", alphabet="protein", max_len=32).eval()  # 3-letter words
    folder = folder.save_pretrained(tmp_path / "profile")
    width = profile_dim("protein", 3, 4)
    similar = build_encoder("kmerprofile-small", alphabet="protein", max_len=32, similar_rank=4, dim=width,
                            embed_dim=width, ffn_dim=width).eval()
    with torch.no_grad():
        similar.backbone.similar_gain.fill_(0.8)  # the block weighs in the scores
    similar = similar.save_pretrained(tmp_path / "similar")
    rng = np.random.default_rng(0)
    db, q = tmp_path / "db.fasta", tmp_path / "q.fasta"
    db.write_text("".join(f">d{i}\n{''.join(rng.choice(list(AA), 60))}\n" for i in range(30)))
    q.write_text("".join(f">q{i}\n{''.join(rng.choice(list(AA), 50))}\n" for i in range(3)))
    cases = {"kmer:3": "", str(folder): str(folder), str(similar): str(similar), "default-protein": ""}  # model -> --model of the search
    argv = []
    for i, (spec, named) in enumerate(cases.items()):
        assert main(["index", "--fasta", str(db), "--model", spec, "-o", str(tmp_path / f"idx{i}"), "--quiet"]) == 0
        argv += [str(q), str(tmp_path / f"idx{i}"), str(tmp_path / f"hits{i}.tsv"), named]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-c", DRIVER, *argv], capture_output=True, text=True, env=env,
                         timeout=300, cwd=tmp_path, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["False", "[]"]  # torch (and FAISS, tqdm, scipy.special, Bio) were never imported
    from phylocl.models import profile_numpy

    monkeypatch.setattr(profile_numpy, "is_profile_folder", lambda folder: False)  # the torch query path
    for i, (spec, named) in enumerate(cases.items()):
        ref = tmp_path / f"ref{i}.tsv"
        extra = ["--model", named] if named else []
        assert main(["search", "--query", str(q), "--index", str(tmp_path / f"idx{i}"), "-k", "3",
                     "--filter-pvalue", "1", "-o", str(ref), "--quiet", *extra]) == 0  # random sequences: all kept
        got = [line.split("\t") for line in (tmp_path / f"hits{i}.tsv").read_text().splitlines()]
        want = [line.split("\t") for line in ref.read_text().splitlines()]
        assert [r[:2] for r in got] == [r[:2] for r in want] and len(got) == 10, spec
        assert np.allclose([float(r[2]) for r in got[1:]], [float(r[2]) for r in want[1:]], atol=1e-6), spec
