"""Cost of every registered encoder: FLOPs per token, embedding and training throughput (random initialisation).

Prints one JSON object per config: name, parameters, device, threads, sequences, residues, batch size, seconds,
sequences/s and residues (tokens)/s of ``encoder.embed`` on random protein sequences whose lengths are drawn
uniformly from ``--min-len``..``--max-len`` (default 50-500, typical of single-domain to multi-domain proteins).
Sequences longer than a config's ``max_len`` are embedded as windows, as in real use.

``flops_per_token``: forward FLOPs (``torch.utils.flop_counter.FlopCounterMode``: matrix products and attention,
a multiply-add counted as 2; attention through the math kernel so it is counted) of one batch of full windows (``--flops-len`` residues, default the config's
``max_len``), divided by its residues.
Mixture-of-experts layers only compute the experts a token was routed to, so their count depends on the routing;
``flops_per_token_nodrop`` is the same count with a capacity factor large enough that no token is dropped (the
top-1 bound). ``train_tokens_per_s``: residues per second of ``--train-steps`` plain training steps (two views of
``--train-batch`` random ``--train-len``-residue sequences, InfoNCE, router losses, backward, AdamW), after one
warm-up step; ``--train-steps 0`` skips it. ``*_per_cpu_s`` divide by this process's CPU time instead of wall time,
which other jobs on a shared machine disturb much less.

Example::

    OMP_NUM_THREADS=2 python benchmarks/encoders.py --threads 2 --n 256 --n-base 32
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from phylocl.models.registry import build_encoder, get_config, list_models

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
    start, cpu0 = time.perf_counter(), time.process_time()
    X = enc.embed(seqs, batch_size=batch_size)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu0
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
        "cpu_seconds": round(cpu, 3),
        "tokens_per_cpu_s": round(residues / cpu, 0),  # CPU time of this process: robust to other jobs' load
    }


def flops_per_token(name: str, *, length: int, batch: int = 4, **overrides) -> float:
    """Forward FLOPs per residue of ``batch`` random sequences of ``length`` residues (eval mode)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    enc = build_encoder(name, **overrides).eval()
    tokens = enc.tokenize(random_proteins(batch, length, length, seed=1))
    # the math attention kernel is made of counted matrix products (the fused CPU kernel counts as 0)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        enc(tokens)
    return counter.get_total_flops() / (batch * length)


def train_throughput(name: str, *, steps: int, batch: int, length: int) -> tuple[float, float]:
    """Residues per second and per CPU second of plain training steps (both views, InfoNCE + router losses,
    backward, AdamW)."""
    from phylocl.losses.infonce import InfoNCE
    from phylocl.models.moe import pop_router_records, record_routing
    from phylocl.training.router_loss import RouterLoss

    torch.manual_seed(0)
    enc = build_encoder(name, max_len=length).train()
    record_routing(enc)
    loss_fn, router_loss = InfoNCE(temperature=0.05), RouterLoss(balance_weight=0.01, z_weight=0.001)
    opt = torch.optim.AdamW(enc.parameters(), lr=1e-4)
    views = [enc.tokenize(random_proteins(batch, length // 2, length, seed=s)) for s in (2, 3)]
    residues = int(sum(v["attention_mask"].sum() for v in views))
    start = cpu0 = 0.0
    for step in range(steps + 1):  # step 0 is a warm-up
        if step == 1:
            start, cpu0 = time.perf_counter(), time.process_time()
        loss = loss_fn(enc(views[0]), enc(views[1]))
        records = pop_router_records(enc)
        if records:
            loss = loss + router_loss.surrogate(records, router_loss.totals(records))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return residues * steps / (time.perf_counter() - start), residues * steps / (time.process_time() - cpu0)


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
    p.add_argument("--flops-len", type=int, default=None, help="residues per window for flops_per_token "
                   "(default: the config's max_len)")
    p.add_argument("--train-steps", type=int, default=0, help="timed training steps (0: skip; not for *-base)")
    p.add_argument("--train-batch", type=int, default=16)
    p.add_argument("--train-len", type=int, default=128, help="most residues per training sequence (and max_len)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    for name in args.models or list_models():
        n = args.n_base if name.endswith("-base") else args.n
        seqs = random_proteins(n, args.min_len, args.max_len, args.seed)
        row = bench(name, seqs, batch_size=args.batch_size, device=args.device, threads=args.threads)
        length = min(args.flops_len or row["max_len"], row["max_len"])
        row["flops_per_token"] = round(flops_per_token(name, length=length))
        if get_config(name).moe_experts:
            row["flops_per_token_nodrop"] = round(flops_per_token(name, length=length, moe_capacity_factor=64.0))
        if args.train_steps and not name.endswith("-base"):
            wall, cpu = train_throughput(name, steps=args.train_steps, batch=args.train_batch, length=args.train_len)
            row["train_tokens_per_s"], row["train_tokens_per_cpu_s"] = round(wall), round(cpu)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
