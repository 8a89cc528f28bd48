"""Which Smith-Waterman library scores the candidates of ``phylocl search``: pyopal, parasail or pyhmmer.

The workload of the alignment stage: each query against its own ~300 candidates (local alignment scores, BLOSUM62,
BLAST's gaps "open 11, extend 1", i.e. a gap of length ``L`` costs ``11 + L``), on real proteins. Prints one JSON
object per (library, threads) with the wall time, and one with the score agreement between the libraries and a
reference (Biopython's ``PairwiseAligner`` in local mode, a plain C dynamic programme) on a sample of pairs::

    OMP_NUM_THREADS=1 python benchmarks/aligners.py --data ../shared/data/scope40-train --queries 300

Gap conventions: parasail, pyopal (Opal) and Biopython all charge ``open + (L - 1) * extend`` for a gap of length
``L`` (checked here: pyopal's docstring does not say it), so BLAST's 11/1 is ``open=12, extend=1`` for parasail and
pyopal, ``open_gap_score=-12, extend_gap_score=-1`` for Biopython. pyhmmer is not a
Smith-Waterman aligner: its ``phmmer`` scores a single-sequence profile HMM (bit scores with filters), so only its
time is comparable; it is measured because it is the third library the issue names.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from concurrent.futures import ThreadPoolExecutor

from Bio import SeqIO
from Bio.Align import PairwiseAligner, substitution_matrices


def read_proteins(path: str) -> list[str]:
    seqs = []
    for rec in SeqIO.parse(os.path.join(path, "sequences.fasta"), "fasta"):
        s = str(rec.seq).upper().rstrip("*").replace("*", "X")
        seqs.append("".join(c if c in "ARNDCQEGHILKMFPSTWYVBZX" else "X" for c in s))
    return seqs


def workload(seqs: list[str], n_queries: int, n_candidates: int, seed: int) -> list[tuple[str, list[str]]]:
    rng = random.Random(seed)
    return [(rng.choice(seqs), rng.sample(seqs, n_candidates)) for _ in range(n_queries)]


def run_pyopal(work, threads: int) -> list[list[int]]:
    import pyopal

    aligner = pyopal.Aligner("BLOSUM62", gap_open=12, gap_extend=1)

    def one(item):
        q, cands = item
        return [r.score for r in aligner.align(q, pyopal.Database(cands), mode="score", algorithm="sw")]

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, work))


def run_pyopal_simple(work, threads: int) -> list[list[int]]:
    """pyopal with ``overflow="simple"`` (8-bit lanes for all targets first), what phylocl.align uses."""
    import pyopal

    aligner = pyopal.Aligner("BLOSUM62", gap_open=12, gap_extend=1)

    def one(item):
        q, cands = item
        db = pyopal.Database(cands)
        return [r.score for r in aligner.align(q, db, mode="score", algorithm="sw", overflow="simple")]

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, work))


def run_parasail(work, threads: int) -> list[list[int]]:
    import parasail

    def one(item):
        q, cands = item
        prof = parasail.profile_create_16(q, parasail.blosum62)
        return [parasail.sw_striped_profile_16(prof, c, 12, 1).score for c in cands]

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, work))


def run_parasail_sat(work, threads: int) -> list[list[int]]:
    import parasail

    def one(item):
        q, cands = item
        prof = parasail.profile_create_sat(q, parasail.blosum62)
        return [parasail.sw_striped_profile_sat(prof, c, 12, 1).score for c in cands]

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, work))


def run_pyhmmer(work, threads: int) -> list[list[float]]:
    import pyhmmer

    alphabet = pyhmmer.easel.Alphabet.amino()

    def one(item):
        q, cands = item
        query = pyhmmer.easel.TextSequence(name=b"q", sequence=q).digitize(alphabet)
        block = pyhmmer.easel.DigitalSequenceBlock(alphabet, [
            pyhmmer.easel.TextSequence(name=str(i).encode(), sequence=c).digitize(alphabet)
            for i, c in enumerate(cands)])
        hits = next(pyhmmer.hmmer.phmmer([query], block, cpus=1, E=1e9))  # phmmer's own filters
        return [h.score for h in hits]

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, work))


def reference_scores(pairs) -> list[int]:
    a = PairwiseAligner(mode="local", substitution_matrix=substitution_matrices.load("BLOSUM62"),
                        open_gap_score=-12, extend_gap_score=-1)
    return [int(a.score(q, t)) for q, t in pairs]


RUNNERS = {"pyopal": run_pyopal, "pyopal-simple": run_pyopal_simple, "parasail": run_parasail, "parasail-sat": run_parasail_sat,
           "pyhmmer-phmmer": run_pyhmmer}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="../shared/data/scope40-train")
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--candidates", type=int, default=300)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--check-pairs", type=int, default=300, help="pairs checked against the reference")
    p.add_argument("--libraries", default=",".join(RUNNERS))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    seqs = read_proteins(args.data)
    work = workload(seqs, args.queries, args.candidates, args.seed)
    residues = sum(len(q) * sum(len(c) for c in cands) for q, cands in work)
    base = {"data": args.data, "queries": args.queries, "candidates": args.candidates, "cpus": os.cpu_count(),
            "machine": platform.processor() or platform.machine()}
    results = {}
    for threads in args.threads:  # interleaved: every library at 1 thread, then every library at 2
        for name in args.libraries.split(","):
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            results[name] = RUNNERS[name](work, threads)
            sec = time.perf_counter() - t0
            print(json.dumps({**base, "library": name, "threads": threads, "seconds": round(sec, 3),
                              "gcups": round(residues / sec / 1e9, 3), "load_avg_1min": load}), flush=True)
    # correctness on a sample of pairs: every SW library against Biopython's local aligner
    rng = random.Random(args.seed + 1)
    picks = [(rng.randrange(len(work)), rng.randrange(args.candidates)) for _ in range(args.check_pairs)]
    ref = reference_scores([(work[i][0], work[i][1][j]) for i, j in picks])
    check = {"check_pairs": len(picks), "reference": "Bio.Align.PairwiseAligner local, open -12 extend -1"}
    for name, got in results.items():
        if name.startswith("pyhmmer"):
            continue
        diffs = sum(int(got[i][j]) != r for (i, j), r in zip(picks, ref))
        check[f"{name}_mismatches"] = diffs
    for name in ("pyopal", "pyopal-simple"):
        if name in results and "parasail" in results:
            check[f"{name}_vs_parasail_all_pairs_mismatches"] = sum(
                a != b for x, y in zip(results[name], results["parasail"]) for a, b in zip(x, y))
    print(json.dumps({**base, **check}), flush=True)


if __name__ == "__main__":
    main()
