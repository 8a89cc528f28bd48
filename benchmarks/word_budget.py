"""Word budget of the sparse index (``phylocl search --word-budget``): recall and time against exact search.

For the queries of a ``benchmarks/scale.py`` work folder (``queries.fasta``; the first ``--queries``) against one of
its sparse index bundles, runs :meth:`SparseIndex.search` with ``k`` = ``--candidates`` (the alignment stage's
candidates, 500 by default) exactly and with each word budget, in ``--passes`` interleaved passes, and prints one
JSON object per budget:

- ``seconds_per_query``: the search's wall time per query (best and all passes; query embedding excluded, the
  index already loaded), on ``--threads`` threads;
- ``postings_read``: the fraction of the exact search's postings the budget reads (mean over queries);
- ``recall_exact``: the fraction of the exact top ``k`` that the budget's top ``k`` holds (mean over queries);
- ``relatives``: the fraction of each query's true relatives (database rows of its family: the id before its last
  ``_``, as ``phylocl simulate`` names them) in the top ``k`` (mean; ``relatives_min``: the worst query).

Example (the work folder of docs/performance.md's 10^5 runs)::

    OMP_NUM_THREADS=1 python benchmarks/word_budget.py --work work \\
        --index work/db-100000-default-protein-sparse.index --model default-protein --budgets 0.1 0.2 0.3 0.5
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.scale import read_fasta  # noqa: E402  (after the sys.path line: run as a script)
from phylocl.retrieval.index_io import load_index  # noqa: E402
from phylocl.retrieval.sparse_index import budget_words  # noqa: E402
from phylocl.workflows.model_spec import resolve_model  # noqa: E402


def family(seq_id: str) -> str:
    """``fam0012_s03`` -> ``fam0012`` (``s1_fam0012_s03`` -> ``s1_fam0012``)."""
    return seq_id.rsplit("_", 1)[0]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, required=True, help="scale.py work folder (queries.fasta)")
    p.add_argument("--index", type=Path, required=True)
    p.add_argument("--model", required=True, help="the index's model (kmer:3, default-protein)")
    p.add_argument("--queries", type=int, default=500)
    p.add_argument("--candidates", type=int, default=500, help="k of every search")
    p.add_argument("--budgets", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.5])
    p.add_argument("--passes", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    idx = load_index(args.index)
    idx.threads = args.threads
    records = list(read_fasta(args.work / "queries.fasta"))[: args.queries]
    q = resolve_model(args.model, alphabet="protein", sparse_only=True).embed_sparse([s for _, s in records])
    fams = np.array([family(i) for i in idx.ids])
    relatives = [set(np.flatnonzero(fams == family(name)).tolist()) for name, _ in records]
    budgets = [None, *args.budgets]
    times: dict = {b: [] for b in budgets}
    found: dict = {}
    for _ in range(args.passes):  # interleaved: every budget once per pass
        for b in budgets:
            t = time.perf_counter()
            _, rows = idx.search(q, args.candidates, budget=b)
            times[b].append((time.perf_counter() - t) / len(q))
            found[b] = rows
    lengths = idx.lengths
    exact = [set(r.tolist()) for r in found[None]]
    for b in budgets:
        read = []
        for i in range(len(q)):
            cols, vals = q.indices[q.indptr[i]:q.indptr[i + 1]], q.values[q.indptr[i]:q.indptr[i + 1]]
            read.append(lengths[cols[budget_words(vals, lengths[cols], b)]].sum() / max(lengths[cols].sum(), 1))
        top = [set(r.tolist()) for r in found[b]]
        rel = [len(t & r) / max(len(r), 1) for t, r in zip(top, relatives)]
        print(json.dumps({
            "index": str(args.index), "model": args.model, "rows": idx.ntotal, "queries": len(q),
            "candidates": args.candidates, "budget": b if b is not None else "exact", "threads": args.threads,
            "seconds_per_query": round(min(times[b]), 5), "passes": [round(s, 5) for s in times[b]],
            "postings_read": round(float(np.mean(read)), 4),
            "recall_exact": round(float(np.mean([len(t & e) / len(e) for t, e in zip(top, exact)])), 4),
            "relatives": round(float(np.mean(rel)), 4), "relatives_min": round(float(np.min(rel)), 4),
            "load": round(os.getloadavg()[0], 2)}), flush=True)


if __name__ == "__main__":
    main()
