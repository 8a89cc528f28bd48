"""Dev-set figures of the k-mer profile encoder's parts, without contrastive training (docs/models.md).

Each variant is ``kmerprofile-small`` built as ``phylocl train`` builds it from a config (default
``configs/default-protein-idf.yaml``, the recipe that was ``default-protein`` before the similar-word block: the
figures of docs/models.md were made with it), with some of its parts switched off:

- ``uniform``: every word weight 1 (no statistics): the untrained encoder, ``sqrt`` counts of 3 seed patterns;
- ``idf``: weights = inverse document frequencies over the training sequences (``fit_statistics``), as training
  starts;
- ``idf-contiguous``: ``idf`` with the two spaced patterns' gains set to 0 (contiguous 3-mers only);
- ``uniform-contiguous``: weights 1 and contiguous 3-mers only (``kmer:3`` on ``sqrt`` counts).

A config that already names ``kmerprofile-small`` (``configs/kmerprofile-dna.yaml``: 5-letter DNA words) is used as
it is; any other config lends only its data and split. Dev sets: ``runs/dev/<alphabet>/`` (``ablation.py
materialize``).

Run from the repository root after ``python benchmarks/ablation.py materialize protein``::

    python benchmarks/kmerprofile.py [--config configs/default-protein-idf.yaml] [--out runs/kmerprofile-parts.json]
    python benchmarks/kmerprofile.py idf --config configs/kmerprofile-dna.yaml --out runs/kmerprofile-dna.json
    python benchmarks/kmerprofile.py idf --set "model.overrides={dropout: 0.0, drop_path: 0.0, similar_rank: 32, \
        dim: 24096, embed_dim: 24096}" --out runs/sim32-start/parts.json     # a recipe's untrained start
    python benchmarks/kmerprofile.py idf --config configs/default-protein.yaml --out runs/start.json  # the same
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from ablation import REPO, score  # benchmarks/ablation.py, beside this script

VARIANTS = {"uniform": (False, False), "uniform-contiguous": (False, True), "idf": (True, False),
            "idf-contiguous": (True, True)}  # name -> (fit statistics, contiguous pattern only)


def build(config: str, fit: bool, contiguous: bool, sets: list[str] = ()):
    from phylocl.config import load_config
    from phylocl.data.datamodule import OrthologDataModule
    from phylocl.models.registry import build_encoder

    cfg = load_config(config, list(sets))
    if cfg.model.name != "kmerprofile-small":  # e.g. the gMLP recipe's data and split
        cfg = load_config(config, ["model.name=kmerprofile-small", "model.overrides={dropout: 0.0}",
                                   "data.max_len=4096", *sets])
    dm = OrthologDataModule(config=cfg.data)
    dm.setup("fit")
    torch.manual_seed(cfg.trainer.seed)
    enc = build_encoder(cfg.model.name, **{**cfg.model.overrides, "max_len": cfg.data.max_len,
                                           "alphabet": dm.alphabet.name})
    if fit:
        enc.backbone.fit_statistics([dm.alphabet.encode(s) for s in dm.train_set.sequences])
    if contiguous:
        with torch.no_grad():
            enc.backbone.gains[1:] = 0.0
    return enc.eval()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default=str(REPO / "configs" / "default-protein-idf.yaml"))
    p.add_argument("--out", default=str(REPO / "runs" / "kmerprofile-parts.json"))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config overrides, as phylocl train --set (e.g. a recipe's model.overrides)")
    p.add_argument("variants", nargs="*", default=list(VARIANTS))
    args = p.parse_args(argv)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    for name in args.variants:
        path = out.parent / f"kmerprofile-{name}"
        enc = build(args.config, *VARIANTS[name], args.set)
        enc.save_pretrained(path)
        results[name] = score(str(path), enc.config.alphabet)
        out.write_text(json.dumps(results, indent=1) + "\n")
        row = {f"{r['dataset']} {r['level']}": round(r["auc1"], 3) for r in results[name]}
        print(name, json.dumps(row), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
