"""Per-query latency of an index held open (:class:`phylocl.Searcher`) against one ``phylocl search`` run per query.

    python benchmarks/searcher.py --index work/db-100000-default-protein-sparse.index --queries work/queries-10.fasta \\
        --threads 2 --rounds 3

Opens the index once, then searches each query of ``--queries`` alone, ``--rounds`` times over (the first round
reads each query's posting lists into memory for the first time), with the search defaults (aligned, ``-k 10``).
Prints one JSON object: the seconds to open, every single-query search's seconds by round (wall, ``perf_counter``),
their median over the rounds after the first, and whether the hits equal those of one search of all queries at
once (they must).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path


def read_fasta(path: Path) -> list[tuple[str, str]]:
    out, name, seq = [], None, []
    for line in open(path):
        if line.startswith(">"):
            if name is not None:
                out.append((name, "".join(seq)))
            name, seq = line[1:].split()[0], []
        else:
            seq.append(line.strip())
    if name is not None:
        out.append((name, "".join(seq)))
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--index", type=Path, required=True)
    p.add_argument("--queries", type=Path, required=True, help="FASTA; each record is searched alone")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    start = time.perf_counter()
    from phylocl import Searcher

    searcher = Searcher(index=args.index, k=args.k, threads=args.threads)
    opened = time.perf_counter() - start
    queries = read_fasta(args.queries)
    rounds, hits = [], []
    for _ in range(args.rounds):
        times, hits = [], []
        for q in queries:
            t = time.perf_counter()
            hits += searcher.search([q])
            times.append(round(time.perf_counter() - t, 4))
        rounds.append(times)
    warm = [t for r in rounds[1:] for t in r] or rounds[0]
    print(json.dumps({"index": str(args.index), "queries": len(queries), "threads": args.threads,
                      "load_avg_1min": round(os.getloadavg()[0], 2), "open_seconds": round(opened, 3),
                      "seconds_by_round": rounds, "median_warm_seconds": round(statistics.median(warm), 4),
                      "same_hits_as_one_batch": hits == searcher.search(queries)}))


if __name__ == "__main__":
    main()
