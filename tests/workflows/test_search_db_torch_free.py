"""``phylocl search --db`` with a k-mer profile encoder (default-protein) never imports torch, and its hits equal
those of the torch path."""

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
query, db, out, align = sys.argv[1:]
search(query=query, db=db, out=out, k=5, progress=False, align=align == "1", candidates=20)
print("torch" in sys.modules)
"""


def test_db_search_of_a_profile_model_needs_no_torch_and_matches_the_torch_path(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    base = ["".join(rng.choice(list(AA), 80)) for _ in range(6)]
    mutate = lambda s: "".join(c if rng.random() > 0.2 else rng.choice(list(AA)) for c in s)  # noqa: E731
    db, q = tmp_path / "db.fasta", tmp_path / "q.fasta"
    db.write_text("".join(f">d{i}\n{mutate(base[i % 6])}\n" for i in range(24)))
    q.write_text("".join(f">q{i}\n{mutate(base[i])}\n" for i in range(3)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    from phylocl.models import profile_numpy

    monkeypatch.setattr(profile_numpy, "is_profile_folder", lambda folder: False)  # the reference: torch
    for align in ("0", "1"):
        got = tmp_path / f"hits{align}.tsv"
        run = subprocess.run([sys.executable, "-c", DRIVER, str(q), str(db), str(got), align], capture_output=True,
                             text=True, env=env, timeout=300, cwd=tmp_path, check=False)
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == "False"  # torch was never imported
        ref = tmp_path / f"ref{align}.tsv"
        flags = [] if align == "1" else ["--no-align"]
        assert main(["search", "--query", str(q), "--db", str(db), "-k", "5", "--candidates", "20", "-o", str(ref),
                     "--quiet", *flags]) == 0
        g = [r.split("\t") for r in got.read_text().splitlines()]
        w = [r.split("\t") for r in ref.read_text().splitlines()]
        assert len(g) == len(w) >= 1 + 3 * 4 and [r[:2] for r in g] == [r[:2] for r in w]  # 4 relatives each
        assert np.allclose([float(r[2]) for r in g[1:]], [float(r[2]) for r in w[1:]], atol=1e-6)
        if align == "1":
            assert [r[4:] for r in g] == [r[4:] for r in w]  # bit scores and E-values
