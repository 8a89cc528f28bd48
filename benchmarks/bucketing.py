"""Padding and step time of training batches with and without length bucketing, on a real training config.

Builds the config's data module (``data.bucket_by_length`` false / true, everything else as configured), draws the
first ``--batches`` training batches of epoch 0 each way, and reports the padding fraction of both views (padded
positions / all positions), then times ``--steps`` full contrastive steps (two views, InfoNCE, backward, AdamW) of
the config's encoder on the first batches, the two modes interleaved. One JSON object per mode, then a summary::

    OMP_NUM_THREADS=1 python benchmarks/bucketing.py --config configs/default-protein.yaml --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

from phylocl.config import load_config
from phylocl.data.datamodule import OrthologDataModule
from phylocl.losses.infonce import InfoNCE
from phylocl.models.registry import build_encoder


def draw(cfg, bucket: bool, n: int) -> tuple[list[dict], str]:
    """The first ``n`` training batches of epoch 0 and the data's alphabet name."""
    from dataclasses import replace

    dm = OrthologDataModule(config=replace(cfg.data, bucket_by_length=bucket))
    dm.setup()
    out = []
    for batch in dm.train_dataloader():
        out.append(batch)
        if len(out) == n:
            break
    return out, dm.alphabet.name


def padding(batches: list[dict]) -> float:
    real = sum(int(b[v]["attention_mask"].sum()) for b in batches for v in ("a", "b"))
    total = sum(b[v]["attention_mask"].numel() for b in batches for v in ("a", "b"))
    return 1.0 - real / total


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", required=True)
    p.add_argument("--set", action="append", default=[], help="config override, as phylocl train --set")
    p.add_argument("--batches", type=int, default=50, help="batches drawn per mode for the padding fraction")
    p.add_argument("--steps", type=int, default=6, help="timed steps per mode (after one warm-up step); 0: padding only")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config, overrides=args.set)
    drawn = {mode: draw(cfg, mode == "bucketed", args.batches) for mode in ("random", "bucketed")}
    batches = {mode: b for mode, (b, _) in drawn.items()}
    torch.manual_seed(0)
    enc = build_encoder(cfg.model.name, **{"max_len": cfg.data.max_len, **cfg.model.overrides,
                                           "alphabet": drawn["random"][1]})
    opt = torch.optim.AdamW(enc.parameters(), lr=1e-4)
    loss_fn = InfoNCE(temperature=cfg.loss.temperature)

    def step(b):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(enc(b["a"]), enc(b["b"]), b["labels"])
        loss.backward()
        opt.step()

    times = {m: [] for m in batches}
    for m in batches:
        if args.steps:
            step(batches[m][0])  # warm-up
    for i in range(args.steps):
        for m in batches:
            start = time.perf_counter()
            step(batches[m][1 + i % (len(batches[m]) - 1)])
            times[m].append(time.perf_counter() - start)
    rows = {}
    for m, bs in batches.items():
        rows[m] = {"mode": m, "config": args.config, "overrides": args.set, "batches": len(bs),
                   "pairs_per_batch": int(bs[0]["labels"].numel()), "max_len": cfg.data.max_len,
                   "padding_fraction": round(padding(bs), 3),
                   "mean_padded_length": round(statistics.mean(b["a"]["input_ids"].shape[1] for b in bs), 1),
                   "step_s_median": round(statistics.median(times[m]), 3) if times[m] else None,
                   "steps": len(times[m]),
                   "threads": args.threads, "load_avg_1min": os.getloadavg()[0]}
        print(json.dumps(rows[m]), flush=True)
    print(json.dumps({"summary": True, "padding": [rows["random"]["padding_fraction"],
                                                   rows["bucketed"]["padding_fraction"]],
                      "step_speedup": round(rows["random"]["step_s_median"] / rows["bucketed"]["step_s_median"], 2)
                      if args.steps else None}))


if __name__ == "__main__":
    main()
