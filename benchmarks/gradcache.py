"""Peak memory and step time of cached (GradCache) vs plain contrastive training as the batch grows.

Prints one JSON object per (mode, batch) measurement on stdout. Every measurement runs in a fresh Python
process, so an out-of-memory plain step (or one killed by the OS) is reported as ``"status": "oom"`` and the
sweep continues.

What is measured:
    * ``step_s``: median wall time of ``--steps`` optimiser steps (zero_grad, forward/backward, AdamW step)
      after one untimed step.
    * ``peak_mem_mb``: on CUDA, ``torch.cuda.max_memory_allocated`` during the first step minus what was
      allocated before it (tensors only). On CPU, the process's peak resident set size (``ru_maxrss``) after
      the first step minus its resident size just before it: everything the step made the process hold at
      its peak (activations, gradients, optimiser state, allocator slack), not only live tensors.

Example (CPU, a few minutes)::

    python benchmarks/gradcache.py --model gmlp-small --batches 64,256,1024 --chunk-size 64 --len 24,48

On a shared CPU machine add ``--mem-limit-gb 8`` so a plain step too large for memory fails alone (``"oom"``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

DEFAULT_BATCHES = "64,128,256,512,1024,2048,4096"


def _rss_mb() -> float:
    """Current resident set size of this process (Linux /proc), MiB."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _batches(n: int, lengths: tuple[int, int], vocab: tuple[int, int], seed: int):
    import numpy as np

    from phylocl.data.tokens import pad_batch

    rng = np.random.default_rng(seed)
    views = []
    for _ in range(2):
        arrays = [rng.integers(vocab[0], vocab[1], size=int(rng.integers(lengths[0], lengths[1] + 1)))
                  for _ in range(n)]
        views.append(pad_batch(arrays))
    return views


def measure(args) -> dict:
    """One measurement in this process (called in the child)."""
    import torch

    import phylocl
    from phylocl.training.gradcache import cached_backward

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    encoder = phylocl.build_encoder(args.model).to(device).train()
    loss_fn = phylocl.InfoNCE(temperature=0.07, chunk_size=args.loss_chunk_size or None)
    opt = torch.optim.AdamW(encoder.parameters(), lr=1e-4)
    specials = 3  # pad, cls, mask ids precede the letters
    vocab = (specials, specials + len(encoder.alphabet.letters))
    a, b = (
        {k: v.to(device) for k, v in view.items()}
        for view in _batches(args.batch, args.len, vocab, seed=args.batch)
    )
    labels = torch.arange(args.batch, device=device)

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        if args.mode == "cached":
            loss = cached_backward(encoder, a, b, loss_fn, args.chunk_size, labels)
        else:
            loss = loss_fn(encoder(a), encoder(b), labels)
            loss.backward()
        opt.step()
        return float(loss)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    else:
        before = _rss_mb()
    t0 = time.perf_counter()
    loss = step()
    sync()
    first = time.perf_counter() - t0
    if device.type == "cuda":
        peak = (torch.cuda.max_memory_allocated(device) - before) / 2**20
        metric = "cuda max_memory_allocated growth during the first step"
    else:
        peak = _peak_rss_mb() - before
        metric = "cpu peak RSS growth during the first step"
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    tokens = int(a["attention_mask"].sum() + b["attention_mask"].sum())
    return {"status": "ok", "peak_mem_mb": round(peak, 1), "mem_metric": metric,
            "step_s": round(statistics.median(times), 4) if times else None, "first_step_s": round(first, 4),
            "tokens_per_step": tokens, "loss": round(loss, 4)}


def _child_argv(args, mode: str, batch: int) -> list[str]:
    return [sys.executable, os.path.abspath(__file__), "--_child", "--model", args.model, "--device", args.device,
            "--chunk-size", str(args.chunk_size), "--loss-chunk-size", str(args.loss_chunk_size),
            "--len", f"{args.len[0]},{args.len[1]}",
            "--steps", str(args.steps), "--threads", str(args.threads), "--_mode", mode, "--_batch", str(batch),
            *(["--mem-limit-gb", str(args.mem_limit_gb)] if args.mem_limit_gb else [])]


def run_one(args, mode: str, batch: int) -> dict:
    """Run one measurement in a fresh process; map crashes and timeouts to a status."""
    head = {"model": args.model, "device": args.device, "mode": mode, "batch": batch,
            "chunk_size": args.chunk_size if mode == "cached" else None, "loss_chunk_size": args.loss_chunk_size}
    if mode == "plain" and args.max_plain_batch is not None and batch > args.max_plain_batch:
        return {**head, "status": "skipped", "reason": f"batch > --max-plain-batch {args.max_plain_batch}"}
    try:
        proc = subprocess.run(_child_argv(args, mode, batch), capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {**head, "status": "timeout", "reason": f"> {args.timeout} s"}
    if proc.returncode == 0:
        return {**head, **json.loads(proc.stdout.strip().splitlines()[-1])}
    err = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit code {proc.returncode}"
    text = proc.stderr.lower()
    oom = proc.returncode in (-9, 137) or any(m in text for m in ("out of memory", "memoryerror", "can't allocate"))
    return {**head, "status": "oom" if oom else "error", "reason": err[:300]}


def _pair(text: str) -> tuple[int, int]:
    lo, hi = (int(x) for x in text.split(","))
    if not 1 <= lo <= hi:
        raise argparse.ArgumentTypeError(f"--len needs 1 <= min <= max, got {text}")
    return lo, hi


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="gmlp-small", help="registered encoder config (phylocl models)")
    p.add_argument("--batches", default=DEFAULT_BATCHES, help="comma-separated effective batch sizes")
    p.add_argument("--chunk-size", type=int, default=64, help="rows per encoder call on the cached path")
    p.add_argument("--loss-chunk-size", type=int, default=256,
                   help="InfoNCE logits computed this many rows at a time (both modes; 0: the whole B x B at once)")
    p.add_argument("--len", type=_pair, default=(24, 48), help="min,max residues per sequence (uniform)")
    p.add_argument("--steps", type=int, default=2, help="timed steps after the first one")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu or cuda")
    p.add_argument("--threads", type=int, default=max(1, os.cpu_count() or 1), help="torch CPU threads")
    p.add_argument("--modes", default="plain,cached")
    p.add_argument("--max-plain-batch", type=int, default=None, help="skip the plain path above this batch")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per measurement before giving up")
    p.add_argument("--mem-limit-gb", type=float, default=None,
                   help="cap each measurement's address space (RLIMIT_AS; CPU): a step that needs more fails as "
                        "'oom' instead of exhausting a shared machine")
    p.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--_mode", help=argparse.SUPPRESS)
    p.add_argument("--_batch", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.device == "auto":
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args._child:
        args.mode, args.batch = args._mode, args._batch
        if args.mem_limit_gb:
            limit = int(args.mem_limit_gb * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        print(json.dumps(measure(args)))
        return 0
    for batch in (int(x) for x in args.batches.split(",")):
        for mode in args.modes.split(","):
            print(json.dumps(run_one(args, mode, batch)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
