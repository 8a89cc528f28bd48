"""Diagnostics of the harder training signal (docs/models.md, "Harder training signal on top of `sim32`").

Run from the repository root (shared data under ``../shared/data``); prints JSON::

    python benchmarks/training_signal.py hardness MODEL [--batches 4]   # knn vs random batches, one encoder
    python benchmarks/training_signal.py mined [--evalue 1e-3]          # alignment-guided pairs: who they join

``hardness``: the first ``--batches`` batches of epoch 0 of ``configs/default-protein.yaml`` with 25% evolved
rows, random and ``data.batching=knn`` (initial 3-mer neighbour table); over each batch's real rows, embedded
by MODEL: the mean positive cosine, mean negative cosine, mean of each row's 5 closest negatives, and the
one-directional InfoNCE at temperature 0.05. ``mined``: the pairs ``data.aligned_evalue`` finds on the same
training set, by the datasets of their two families, and the merged components' sizes.
"""

from __future__ import annotations

import argparse
import collections
import json
import time

import numpy as np

CONFIG = "configs/default-protein.yaml"


def _datamodule(overrides: list[str]):
    from phylocl.data.datamodule import OrthologDataModule
    from phylocl.workflows.train import _load

    cfg = _load(CONFIG, overrides, None)
    dm = OrthologDataModule(config=cfg.data)
    dm.setup("fit")
    return dm


def source(family: str) -> str:
    """The dataset of a training family, from its name."""
    if family[1:2] == ".":
        return "scope"
    if family.startswith("OG0"):
        return "mycoplasma"
    return "ecoli-shigella" if family.startswith("OG") else "other"


def cmd_hardness(args) -> None:
    from phylocl.workflows.model_spec import resolve_model

    embedder = resolve_model(args.model, alphabet="protein", device="cpu")
    for batching in ("random", "knn"):
        dm = _datamodule([f"data.batching={batching}", "data.evolved.fraction=0.25"])
        loader = dm.train_dataloader()
        pairs = loader.dataset.real
        for n, keys in enumerate(list(loader.batch_sampler)[: args.batches]):
            items = [pairs[k] for k in keys if k[0] != "evolved"]
            a = embedder.embed([dm.alphabet.decode(x) for x, _, _ in items])  # (B, D)
            b = embedder.embed([dm.alphabet.decode(y) for _, y, _ in items])  # (B, D)
            a /= np.linalg.norm(a, axis=1, keepdims=True)
            b /= np.linalg.norm(b, axis=1, keepdims=True)
            s = a @ b.T  # (B, B) cosines, positives on the diagonal
            m = len(s)
            logits = s / 0.05
            top = logits.max(axis=1, keepdims=True)
            lse = np.log(np.exp(logits - top).sum(axis=1)) + top[:, 0]
            print(json.dumps({"batching": batching, "batch": n, "rows": m, "pos_cos": round(float(np.diag(s).mean()), 4),
                              "neg_cos": round(float((s.sum() - np.trace(s)) / (m * m - m)), 4),
                              "top5_neg_cos": round(float(np.sort(s - 9 * np.eye(m), axis=1)[:, -5:].mean()), 4),
                              "infonce": round(float(np.mean(lse - np.diag(logits))), 4)}), flush=True)


def cmd_mined(args) -> None:
    from phylocl.data.aligned import merged_labels
    from phylocl.workflows.aligned_positives import mine_aligned_pairs

    dm = _datamodule([])
    fams = sorted(dm.train_set.pair_families)
    started = time.perf_counter()
    pairs, stats = mine_aligned_pairs(dm.train_set, fams, evalue=args.evalue, candidates=args.candidates,
                                      members=1, seed=args.seed)
    seconds = time.perf_counter() - started
    f = dm.train_set.families
    merged = merged_labels(dm.labels, [(f[a], f[b]) for a, b in pairs])
    comp = collections.Counter(merged[x] for x in fams)
    largest = comp.most_common(1)[0][0]
    kinds = collections.Counter("-".join(sorted((source(f[a]), source(f[b])))) for a, b in pairs)
    print(json.dumps({**stats, "seconds": round(seconds, 1), "pairs_by_datasets": dict(kinds.most_common()),
                      "component_sizes": {str(k): v for k, v in sorted(collections.Counter(comp.values()).items())},
                      "largest_component": dict(collections.Counter(source(x) for x in fams
                                                                    if merged[x] == largest))}, indent=1))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("hardness")
    h.add_argument("model")
    h.add_argument("--batches", type=int, default=4)
    h.set_defaults(fn=cmd_hardness)
    m = sub.add_parser("mined")
    m.add_argument("--evalue", type=float, default=1e-3)
    m.add_argument("--candidates", type=int, default=32)
    m.add_argument("--seed", type=int, default=0)
    m.set_defaults(fn=cmd_mined)
    args = p.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
