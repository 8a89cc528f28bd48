"""Embedding throughput of every registered encoder (randomly initialised; speed does not depend on training).

Prints one JSON object per config: name, parameters, device, threads, sequences, residues, batch size, seconds,
sequences/s and residues (tokens)/s of ``encoder.embed`` on random protein sequences whose lengths are drawn
uniformly from ``--min-len``..``--max-len`` (default 50-500, typical of single-domain to multi-domain proteins).
Sequences longer than a config's ``max_len`` are embedded as windows, as in real use.

Example::

    OMP_NUM_THREADS=2 python benchmarks/encoders.py --threads 2 --n 256 --n-base 32
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from phylocl.models.registry import build_encoder, list_models

AMINO = np.array(list("ACDEFGHIKLMNPQRSTVWY"))


def random_proteins(n: int, lo: int, hi: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(lo, hi + 1, size=n)
    return ["".join(rng.choice(AMINO, size=int(k))) for k in lengths]


def bench(name: str, seqs: list[str], *, batch_size: int, device: str, threads: int) -> dict:
    torch.manual_seed(0)
    enc = build_encoder(name).to(device).eval()
    enc.embed(seqs[: min(4, len(seqs))], batch_size=batch_size)  # warm-up (allocator, kernels)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    X = enc.embed(seqs, batch_size=batch_size)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    residues = sum(map(len, seqs))
    assert X.shape == (len(seqs), enc.embed_dim) and np.isfinite(X).all()
    return {
        "name": name,
        "parameters": enc.num_parameters(),
        "max_len": enc.max_len,
        "device": device,
        "threads": threads,
        "sequences": len(seqs),
        "residues": residues,
        "batch_size": batch_size,
        "seconds": round(seconds, 3),
        "sequences_per_s": round(len(seqs) / seconds, 1),
        "tokens_per_s": round(residues / seconds, 0),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="*", default=None, help="configs to run (default: all registered)")
    p.add_argument("--n", type=int, default=256, help="sequences per config")
    p.add_argument("--n-base", type=int, default=32, help="sequences for *-base configs (slow on a CPU)")
    p.add_argument("--min-len", type=int, default=50)
    p.add_argument("--max-len", type=int, default=500)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    for name in args.models or list_models():
        n = args.n_base if name.endswith("-base") else args.n
        seqs = random_proteins(n, args.min_len, args.max_len, args.seed)
        row = bench(name, seqs, batch_size=args.batch_size, device=args.device, threads=args.threads)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
