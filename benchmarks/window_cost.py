"""Cost of late interaction over windows (issue 24): embedding time and index size, whole rows vs windows.

Embeds the same sequences (the first ``--n`` training sequences of the protein dev split's decoy set, see
``benchmarks/ablation.py decoy_sequences``) as whole-sequence sparse rows and as windows of ``--width`` residues,
alternating ``--repeats`` times in one process, and prints one JSON object: median seconds of each, the rows, stored
nonzeros and sparse-index bytes (8 bytes per value + 8 per row for the low-rank part's two coefficients per basis
row), and the 1-minute load average::

    OMP_NUM_THREADS=1 python benchmarks/window_cost.py --model default-protein --n 2000 --width 200
    OMP_NUM_THREADS=1 python benchmarks/window_cost.py --other runs/sim32-evo50-s0   # and another model's whole rows
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="default-protein")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--width", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--other", help="also time another model's whole rows (e.g. a candidate encoder), alternating")
    args = p.parse_args(argv)
    from ablation import decoy_sequences

    from phylocl.retrieval.windowed import window_pieces
    from phylocl.workflows.model_spec import resolve_model

    embedder = resolve_model(args.model, alphabet="protein", device="cpu")
    other = resolve_model(args.other, alphabet="protein", device="cpu") if args.other else None
    seqs = decoy_sequences("protein")[: args.n]
    pieces, _ = window_pieces(seqs, args.width)
    times: dict[str, list[float]] = {"whole": [], "windows": []}
    rows = {}
    for _ in range(args.repeats):
        runs = [("whole", embedder, seqs), ("windows", embedder, pieces)] + ([("other", other, seqs)] if other else [])
        for name, model, items in runs:
            t0 = time.perf_counter()
            rows[name] = model.embed_sparse(items, batch_size=args.batch_size)
            times.setdefault(name, []).append(time.perf_counter() - t0)
    from phylocl.retrieval.sparse_build import sparse_index_in_memory

    search: dict[str, list[float]] = {}
    for _ in range(args.repeats):  # all sequences query the index of all whole rows (exact cosine, 1 thread)
        for name in [n for n in ("whole", "other") if n in rows]:
            index = sparse_index_in_memory(rows[name], ids=[str(i) for i in range(len(rows[name]))])
            t0 = time.perf_counter()
            index.search(rows[name], 10)
            search.setdefault(name, []).append(time.perf_counter() - t0)
    out = {"model": args.model, "n_sequences": len(seqs), "residues": sum(map(len, seqs)), "width": args.width,
           "load_avg_1min": os.getloadavg()[0]}
    for name, r in rows.items():
        out[name] = {"rows": len(r), "nnz": int(r.indptr[-1]), "rank": r.rank,
                     "index_bytes": int(r.indptr[-1]) * 8 + len(r) * 2 * r.rank * 4,
                     "seconds_median": round(statistics.median(times[name]), 3),
                     **({"search_seconds_median": round(statistics.median(search[name]), 3)} if name in search else {}),
                     "seconds": [round(t, 3) for t in times[name]]}
    for name in [n for n in ("windows", "other") if n in out]:
        out[f"{name}_over_whole"] = {k: round(out[name][k] / out["whole"][k], 2)
                                     for k in ("nnz", "index_bytes", "seconds_median", "search_seconds_median")
                                     if k in out[name]}
    if other:
        out["other"]["model"] = args.other
    print(json.dumps(out))


if __name__ == "__main__":
    main()
