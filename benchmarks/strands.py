"""Both strands of DNA: what a search finds when half of the relatives are written on the other strand.

``materialize`` writes a copy of each DNA dev set (``runs/dev/dna/<set>``, from ``python benchmarks/ablation.py
materialize dna``) in which a seeded random half of the sequences is replaced by its reverse complement (ids and
labels unchanged). ``score`` runs ``phylocl evaluate --align`` on each set with ``--strand plus`` and ``--strand
both`` (the default), and both strands aligned over the plus strand's candidates only (``both-align-only``: no
reverse-complement query in the prefilter), in the same process, interleaved; one JSON object per (set, variant): the embedding's
AUC1 and prefilter recall (plus strand; the embedders count words as read, so a reverse-complemented relative looks
unrelated), the aligned AUC1 / MAP@R, and the seconds::

    python benchmarks/strands.py materialize --dev runs/dev/dna --out runs/dev/dna-rc
    OMP_NUM_THREADS=1 python benchmarks/strands.py score --dev runs/dev/dna-rc --threads 2
    OMP_NUM_THREADS=1 python benchmarks/strands.py score --dev runs/dev/dna --threads 2   # all on the plus strand
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

SETS = ["rfam5-seed", "phykit-dna", "nucleotide-families", "ecoli-shigella-cds"]


def materialize(dev: Path, out: Path, sets: list[str], seed: int, fraction: float) -> None:
    from phylocl.align.strands import reverse_complement
    from phylocl.data.layouts import read_dataset

    for name in sets:
        ds = read_dataset(dev / name)
        flip = np.random.default_rng(seed).random(len(ds)) < fraction
        (out / name).mkdir(parents=True, exist_ok=True)
        with open(out / name / "sequences.fasta", "w") as f:
            for i, s, r in zip(ds.ids, ds.sequences, flip):
                f.write(f">{i}\n{reverse_complement(s) if r else s}\n")
        (out / name / "labels.tsv").write_text((dev / name / "labels.tsv").read_text())
        print(json.dumps({"set": name, "n": len(ds), "reverse_complemented": int(flip.sum())}), flush=True)


def score(dev: Path, sets: list[str], threads: int, candidates: int | None) -> None:
    from phylocl.workflows.evaluate import evaluate

    import phylocl.workflows.evaluate_align as ea

    real = ea.minus_hits
    for name in sets:
        for variant in ("plus", "both", "both-align-only"):
            strand = variant.split("-")[0]
            # both-align-only: both strands aligned, the plus strand's candidates only (no reverse-complement query)
            ea.minus_hits = real if variant == "both" else (lambda *a, **kw: None)
            start = time.perf_counter()
            r = evaluate(data=dev / name, model="default-dna", ks=(1, 10), align=True, strand=strand,
                         threads=threads, candidates=candidates, progress=False)
            a = r["aligned"]
            print(json.dumps({"set": name, "variant": variant, "n_queries": r["n_queries"],
                              "embedding_auc1": r["auc1"], "prefilter_recall": r["prefilter_recall"],
                              "aligned_auc1": a["auc1"], "aligned_map_r": a["map_r"], "aligned_top1": a["top1"],
                              "candidates": a["candidates"], "align_seconds": a["align_seconds"],
                              "wall_seconds": round(time.perf_counter() - start, 1),
                              "load_avg_1min": round(os.getloadavg()[0], 2)}), flush=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=["materialize", "score"])
    p.add_argument("--dev", type=Path, default=Path("runs/dev/dna"), help="DNA dev sets (folders)")
    p.add_argument("--out", type=Path, default=Path("runs/dev/dna-rc"), help="materialize: where to write")
    p.add_argument("--sets", nargs="*", default=SETS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fraction", type=float, default=0.5, help="share of sequences reverse-complemented")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--candidates", type=int, help="default: phylocl search's")
    args = p.parse_args(argv)
    if args.command == "materialize":
        materialize(args.dev, args.out, args.sets, args.seed, args.fraction)
    else:
        score(args.dev, args.sets, args.threads, args.candidates)


if __name__ == "__main__":
    main()
