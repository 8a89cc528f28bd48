"""``phylocl search --index`` of a sparse index of k-mer profiles never imports torch (start-up: ~1.5 s)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from phylocl.cli import main

AA = "ACDEFGHIKLMNPQRSTVWY"
REPO = Path(__file__).resolve().parents[2]

DRIVER = """
import sys
from phylocl.workflows.search import search
search(query=sys.argv[1], index=sys.argv[2], out=sys.argv[3], model=sys.argv[4] or None, k=3, progress=False)
print("torch" in sys.modules)
"""


@pytest.fixture(scope="module")
def profile_folder(tmp_path_factory):
    from tests.models.helpers import make_encoder

    enc = make_encoder("kmerprofile-small", seed=0, alphabet="protein", depth=3, max_len=32).eval()
    return enc.save_pretrained(tmp_path_factory.mktemp("m") / "profile")


@pytest.mark.parametrize("model", ["kmer:3", "folder", "default-protein"])
def test_sparse_index_search_needs_no_torch_and_matches_the_torch_search(tmp_path, model, profile_folder,
                                                                        monkeypatch):
    rng = np.random.default_rng(0)
    db, q = tmp_path / "db.fasta", tmp_path / "q.fasta"
    db.write_text("".join(f">d{i}\n{''.join(rng.choice(list(AA), 60))}\n" for i in range(30)))
    q.write_text("".join(f">q{i}\n{''.join(rng.choice(list(AA), 50))}\n" for i in range(3)))
    spec = str(profile_folder) if model == "folder" else model
    idx = tmp_path / "idx"
    assert main(["index", "--fasta", str(db), "--model", spec, "-o", str(idx), "--quiet"]) == 0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    out = tmp_path / "hits.tsv"
    named = spec if model == "folder" else ""  # kmer:3 and default-protein: the index names its own model
    run = subprocess.run([sys.executable, "-c", DRIVER, str(q), str(idx), str(out), named], capture_output=True,
                         text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"  # torch was never imported
    ref = tmp_path / "ref.tsv"  # the torch query path, in this process
    from phylocl.models import profile_numpy

    monkeypatch.setattr(profile_numpy, "is_profile_folder", lambda folder: False)
    extra = [] if model == "kmer:3" else ["--model", spec]
    assert main(["search", "--query", str(q), "--index", str(idx), "-k", "3", "-o", str(ref), "--quiet", *extra]) == 0
    got = [line.split("\t") for line in out.read_text().splitlines()]
    want = [line.split("\t") for line in ref.read_text().splitlines()]
    assert [r[:2] for r in got] == [r[:2] for r in want] and len(got) == 10
    assert np.allclose([float(r[2]) for r in got[1:]], [float(r[2]) for r in want[1:]], atol=1e-6)
