"""Time the two traceback implementations of phylocl.align on the hits a search wrote; prints JSON.

    phylocl search --query SET.fasta --db SET.fasta --format blast6 -k 2800 -o hits.m8
    OMP_NUM_THREADS=1 python benchmarks/tracebacks.py --fasta SET.fasta --hits hits.m8 --queries 700

For ``--queries`` queries drawn at random (``--seed``) from the hits file, one thread each, interleaved ``--repeats``
times: ``reference`` is :func:`~phylocl.align.describe_alignments` (pyopal's full mode, one call per query, as
``phylocl search`` did before); ``fast`` is :func:`~phylocl.align.traceback.trace_alignment` once per hit;
``fast_once`` once per unordered pair and grouped by the sequence traced first, as the search's alignment stage
does in an all-against-all buffer (a pair of two drawn queries traced once, mirrored for the other; one score
profile per first sequence). Each hit's local score (pyopal, score mode) is passed to
the fast path as the stage passes it. Also reported: hits whose twelve columns (the score for the twelfth) are the
same in both implementations, and score disagreements (must be 0). ``load_avg_1min``: the machine's load at the
start (other jobs slow every timing).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time


from phylocl.align import clean_sequence, describe_alignments, scoring_system
from phylocl.align.traceback import canonical_first, trace_alignment, trace_alignments


def read_fasta(path: str) -> dict[str, str]:
    seqs: dict[str, list[str]] = {}
    name = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith(">"):
                name = line[1:].split()[0]
                seqs[name] = []
            elif name is not None:
                seqs[name].append(line)
    return {k: "".join(v) for k, v in seqs.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fasta", required=True, help="the sequences the search used (query = database)")
    ap.add_argument("--hits", required=True, help="its --format blast6 output")
    ap.add_argument("--queries", type=int, default=700)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    import pyopal

    load = os.getloadavg()[0]
    scoring = scoring_system("protein")
    seqs = {k: clean_sequence(v, scoring, what=k) for k, v in read_fasta(args.fasta).items()}
    hits: dict[str, list[str]] = {}
    with open(args.hits) as f:
        for line in f:
            q, t = line.split("\t", 2)[:2]
            hits.setdefault(q, []).append(t)
    names = sorted(hits)
    random.Random(args.seed).shuffle(names)
    chosen = names[:args.queries]
    drawn = set(chosen)
    aligner = scoring.aligner()
    scores = {}
    for q in chosen:  # each hit's local score, as the alignment stage knows it
        db = pyopal.Database([seqs[t] for t in hits[q]], alphabet=aligner.alphabet)
        for t, r in zip(hits[q], aligner.align(seqs[q], db, mode="score", overflow="simple")):
            scores[q, t] = int(r.score)

    def reference():
        return {q: describe_alignments(seqs[q], [seqs[t] for t in hits[q]], scoring) for q in chosen}

    def fast():
        return {q: [trace_alignment(seqs[q], seqs[t], scoring, scores[q, t]) for t in hits[q]] for q in chosen}

    def fast_once():
        jobs = {}
        for q in chosen:
            for t in hits[q]:
                key = (min(q, t), max(q, t)) if t in drawn else (q, t)
                x, y = (q, t) if canonical_first(seqs[q], seqs[t], scoring) else (t, q)
                jobs.setdefault(key, (x, y, scores[q, t]))
        groups: dict[str, list] = {}
        for x, y, s in jobs.values():
            groups.setdefault(x, []).append((y, s))
        return [a for x, ys in groups.items()
                for a in trace_alignments(seqs[x], [seqs[y] for y, _ in ys], scoring, [s for _, s in ys])]

    times: dict[str, list[float]] = {"reference": [], "fast": [], "fast_once": []}
    out = {}
    for _ in range(args.repeats):
        for name, fn in (("reference", reference), ("fast", fast), ("fast_once", fast_once)):
            t0 = time.perf_counter()
            out[name] = fn()
            times[name].append(round(time.perf_counter() - t0, 3))
    same = mismatched = 0
    for q in chosen:
        for a, b in zip(out["reference"][q], out["fast"][q]):
            same += a == b
            mismatched += a.score != b.score
    n_hits = sum(len(hits[q]) for q in chosen)
    print(json.dumps({
        "fasta": args.fasta, "hits": args.hits, "queries": len(chosen), "n_hits": n_hits,
        "unique_pairs": len(out["fast_once"]), "seconds": times,
        "min_seconds": {k: min(v) for k, v in times.items()},
        "speedup_vs_reference": {k: round(min(times["reference"]) / min(v), 2) for k, v in times.items()},
        "same_columns": round(same / n_hits, 4), "score_mismatches": mismatched,
        "load_avg_1min": round(load, 2), "threads": 1,
    }))
    return 0 if mismatched == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
