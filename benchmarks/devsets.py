"""Dev-set figures of inference settings: does a faster setting keep AUC1 / MAP@R on every dev set?

Scores each model spec (and, for encoders, each ``PRECISION:OVERLAP`` variant) on the materialised dev sets of
docs/models.md (``python benchmarks/ablation.py materialize protein`` -> ``runs/dev/protein/<dataset>``) with
``phylocl evaluate``'s metric code (exact all-against-all search, self hits excluded, family level). Prints one
JSON object per (model, variant) with AUC1 and MAP@R per dev set and the embedding seconds.

Example (issue 17)::

    OMP_NUM_THREADS=1 python benchmarks/devsets.py --model default-protein \\
        --variants fp32:0.5 bf16:0.5 int8:0.5 fp32:0.25 fp32:0
    OMP_NUM_THREADS=1 python benchmarks/devsets.py --model kmer:3 kmer:3:1024 kmer:3:512 kmer:3:256
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

DEV = ["mycoplasma-orthogroups", "ecoli-shigella-protein", "scope40-train", "phykit-protein", "pfam-seed-examples"]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", nargs="+", required=True, help="model specs (kmer:K[:D], shipped names, files)")
    p.add_argument("--variants", nargs="*", default=["fp32:0.5"], metavar="PRECISION:OVERLAP",
                   help="encoder inference settings (ignored by kmer:K)")
    p.add_argument("--dev", type=Path, default=Path("runs/dev/protein"), help="materialised dev sets")
    p.add_argument("--sets", nargs="*", default=DEV)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    import torch

    from phylocl.data.layouts import read_dataset
    from phylocl.retrieval.evaluation import evaluate_embeddings
    from phylocl.workflows.embed_buffers import embed_all
    from phylocl.workflows.model_spec import resolve_model

    torch.set_num_threads(args.threads)
    data = {s: read_dataset(args.dev / s) for s in args.sets}
    for spec in args.model:
        variants = ["fp32:0.5"] if spec.startswith("kmer") else args.variants
        for v in variants:
            precision, _, overlap = v.partition(":")
            row, seconds = {"model": spec, "precision": precision, "overlap": float(overlap or 0.5)}, 0.0
            for name, ds in data.items():
                embedder = resolve_model(spec, alphabet=ds.alphabet, device="cpu", precision=precision,
                                         overlap=float(overlap or 0.5))
                start = time.perf_counter()
                x, _ = embed_all(zip(ds.ids, ds.sequences, ds.families), embedder)
                seconds += time.perf_counter() - start
                m = evaluate_embeddings(x, ds.families, ids=ds.ids, ks=(1,))
                row[name] = {"auc1": round(m["auc1"], 4), "map_r": round(m["map_r"], 4)}
            print(json.dumps({**row, "embed_seconds": round(seconds, 1)}), flush=True)


if __name__ == "__main__":
    main()
