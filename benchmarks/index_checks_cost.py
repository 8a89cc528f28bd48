"""Share of a sparse index's scoring time spent checking the posting lists a query reads (damaged-index checks).

Usage (what docs/retrieval.md reports)::

    phylocl simulate --families 5000 --members 10 --length 300 --seed 3 -o runs/bench-sim
    cat runs/bench-sim/*.fasta > runs/bench-db.fasta
    phylocl index --fasta runs/bench-db.fasta --model kmer:3 -o runs/bench-db.idx
    OMP_NUM_THREADS=1 python benchmarks/index_checks_cost.py runs/bench-db.idx runs/bench-db.fasta

A windowed ``default-protein`` index (``phylocl index --fasta DB.fasta -o IDX``, windows of 200): the queries are
cut and embedded as a search does and the window rows' index is timed (``... IDX QUERIES.fasta 10``; the third
argument is the number of queries, default 50).

Prints one JSON line: the scoring time of 50 queries (one thread) per repeat, the time inside the checks, their
share in the first repeat (each posting list is checked the first time a query reads it) and in the later ones,
and the load average.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

from phylocl.retrieval import index_checks, sparse_index
from phylocl.retrieval.index_io import load_index
from phylocl.retrieval.kmer import KmerEmbedder


def _queries(index, seqs: list[str]):
    """``(sparse index, query rows)``: the index's own rows for a ``kmer:3`` index, the window rows otherwise."""
    if getattr(index, "kind", "") != "sparse-windows":
        return index, KmerEmbedder(k=3).embed_sparse(seqs)
    from phylocl.models.profile_numpy import NumpyProfileEncoder
    from phylocl.models.model_files import PRETRAINED_DIR
    from phylocl.retrieval.windowed import window_pieces

    pieces, _ = window_pieces(seqs, int(index.params["window"]), int(index.params["stride"]))
    return index.index, NumpyProfileEncoder(folder=PRETRAINED_DIR / "default-protein").embed_sparse(pieces)


def main(index_path: str, fasta: str, queries: int = 50, repeats: int = 3) -> dict:
    from phylocl.data.fasta import parse_fasta

    seqs = [r.sequence for r in parse_fasta(fasta)][:queries]
    index, q = _queries(load_index(index_path), seqs)
    index.threads = 1
    spent = [0.0]
    real = {name: getattr(index_checks, name) for name in ("fresh_lists", "check_scored")}

    def timed(fn):
        def run(*args):
            t = time.perf_counter()
            out = fn(*args)
            spent[0] += time.perf_counter() - t
            return out
        return run

    for name, fn in real.items():
        setattr(sparse_index, name, timed(fn))
    runs = []
    try:
        for _ in range(repeats):
            spent[0] = 0.0
            t = time.perf_counter()
            index.scores(q)
            runs.append((time.perf_counter() - t, spent[0]))
    finally:
        for name, fn in real.items():
            setattr(sparse_index, name, fn)
    return {"database": index.ntotal, "stored_values": index.nnz, "queries": len(seqs),
            "scores_s": [round(a, 3) for a, _ in runs], "checks_s": [round(b, 3) for _, b in runs],
            "share_first": round(runs[0][1] / runs[0][0], 4),  # every list checked for the first time
            "share_later": round(float(np.median([b / a for a, b in runs[1:]])), 4),  # lists already checked
            "load_average": os.getloadavg()[0]}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], *map(int, sys.argv[3:4]))))
