"""``benchmarks/search_ab.py``: both checkouts' searches run and time, and their hits are compared byte for byte."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

DB = {f"s{i}": s for i, s in enumerate(["MKVLAAGIVLLLAAGKKWPQR", "MKVLAAGIVLLFAAGKKWPQR", "MSTNPKPQRKTKRNTNRRPQD",
                                          "MSTNPKPQRKTKRNTNRRPQE", "MAHHHHHHSSGVDLGTENLYF", "MAHHHHHHSSGVDLGTENLYW"])}


def test_search_ab_times_both_sides_and_compares_their_hits(tmp_path):
    db = tmp_path / "db.fasta"
    db.write_text("".join(f">{k}\n{v}\n" for k, v in DB.items()))
    (tmp_path / "q-2.fasta").write_text(">q0\nMKVLAAGIVLLLAAGKKWPQ\n>q1\nMSTNPKPQRKTKRNTNRRPQ\n")
    index = tmp_path / "db.index"
    subprocess.run([sys.executable, "-m", "phylocl.cli", "index", "--fasta", str(db), "--model", "kmer:3", "-o",
                    str(index), "--quiet"], cwd=ROOT, check=True, capture_output=True)
    base = tmp_path / "base"  # another checkout: here a copy of this one's package
    shutil.copytree(ROOT / "phylocl", base / "phylocl", ignore=shutil.ignore_patterns("__pycache__"))
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "search_ab.py"), "--base", str(base),
                          "--index", str(index), "--queries", str(tmp_path / "q-{n}.fasta"), "--counts", "2",
                          "--passes", "2", "--threads", "1", "--out", str(tmp_path / "hits")],
                         capture_output=True, text=True, check=True).stdout
    rows = [json.loads(line) for line in out.splitlines()]
    runs = [r for r in rows if "side" in r]
    assert [(r["pass"], r["side"]) for r in runs] == [(1, "base"), (1, "new"), (2, "base"), (2, "new")]
    assert all(r["wall_s"] > 0 and r["peak_rss_mb"] > 10 for r in runs)
    assert rows[-1] == {"queries": 2, "same_bytes": True}
    hits = (tmp_path / "hits" / "new-2.tsv").read_text().splitlines()
    assert hits[0].startswith("query\ttarget") and {h.split("\t")[1] for h in hits[1:] if h.startswith("q0")} >= {"s0"}
    other = tmp_path / "other.fasta"  # a base side that finds other hits must be reported as such
    other.write_text("".join(f">{k}\n{v[::-1]}\n" for k, v in DB.items()))
    subprocess.run([sys.executable, "-m", "phylocl.cli", "index", "--fasta", str(other), "--model", "kmer:3", "-o",
                    str(tmp_path / "other.index"), "--quiet"], cwd=ROOT, check=True, capture_output=True)
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "search_ab.py"), "--base", str(base),
                          "--base-index", str(tmp_path / "other.index"), "--index", str(index), "--queries",
                          str(tmp_path / "q-{n}.fasta"), "--counts", "2", "--passes", "1", "--threads", "1",
                          "--out", str(tmp_path / "hits2")], capture_output=True, text=True, check=True).stdout
    assert json.loads(out.splitlines()[-1]) == {"queries": 2, "same_bytes": False}
