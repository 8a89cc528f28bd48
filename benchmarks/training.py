"""Training throughput of every registered encoder config: tokens/s, sequences/s and, on a GPU, model FLOPs utilisation.

One contrastive training step = embed view a and view b (``--batch`` pairs of random crops, lengths drawn from
``--min-len``..``max_len`` of the config), InfoNCE loss, backward, AdamW step (fused on CUDA), exactly the work of
``ContrastiveModule``'s plain path without Lightning's bookkeeping. Prints one JSON object per config.

FLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode`` on one real step (matmuls, attention, SGU
projections; elementwise work is not counted, as usual for MFU). MFU = counted FLOPs per second / the device's
peak dense bf16 (or fp32) throughput from ``--peak-tflops`` or a small table of known GPUs.

Examples::

    python benchmarks/training.py --threads 2                     # every config, CPU, fp32
    python benchmarks/training.py --device cuda --precision bf16 --compile --models gmlp-base transformer-base
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

from phylocl.data.tokens import pad_batch
from phylocl.losses.infonce import InfoNCE
from phylocl.models.registry import build_encoder, list_models

PEAK_TFLOPS = {  # dense, per GPU: (bf16/fp16 tensor cores, fp32 non-tensor)
    "H100": (989.0, 67.0), "H200": (989.0, 67.0), "A100": (312.0, 19.5), "L4": (121.0, 30.0),
    "A10": (125.0, 31.0), "V100": (125.0, 15.7), "RTX 4090": (165.0, 82.6),
}


def random_batch(n: int, lo: int, hi: int, vocab: int, rng: np.random.Generator) -> dict:
    lengths = rng.integers(lo, hi + 1, size=n)
    return pad_batch([rng.integers(3, vocab, size=int(k)) for k in lengths])


def peak_tflops(device: str, precision: str, override: float | None) -> float | None:
    if override:
        return override
    if not device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name(torch.device(device))
    for key, (half, single) in PEAK_TFLOPS.items():
        if key in name:
            return half if precision in ("bf16", "fp16") else single
    return None


def bench(name: str, *, batch: int, steps: int, min_len: int, device: str, precision: str, compile_: bool,
          seed: int, peak: float | None) -> dict:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    enc = build_encoder(name).to(device).train()
    loss_fn = InfoNCE(temperature=0.1)
    fused = device.startswith("cuda")
    opt = torch.optim.AdamW(enc.parameters(), lr=1e-4, fused=fused or None)
    model = torch.compile(enc) if compile_ else enc
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    hi = enc.max_len
    vocab = len(enc.alphabet.tokens)
    batches = [(random_batch(batch, min(min_len, hi), hi, vocab, rng), random_batch(batch, min(min_len, hi), hi,
                                                                                       vocab, rng))
               for _ in range(2)]
    batches = [tuple({k: v.to(device) for k, v in b.items()} for b in pair) for pair in batches]
    labels = torch.arange(batch, device=device)

    def step(a, b):
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.split(":")[0], dtype=dtype, enabled=dtype is not None):
            z_a, z_b = model(a), model(b)
        loss = loss_fn(z_a.float(), z_b.float(), labels)
        loss.backward()
        opt.step()

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    for a, b in batches:  # warm-up (and compilation)
        step(a, b)
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step(*batches[0])
    flops = counter.get_total_flops()
    tokens = sum(int(b["attention_mask"].sum()) for b in batches[0])
    padded = sum(b["attention_mask"].numel() for b in batches[0])
    sync()
    start = time.perf_counter()
    for i in range(steps):
        step(*batches[i % 2])
    sync()
    sec = (time.perf_counter() - start) / steps
    row = {
        "name": name, "parameters": enc.num_parameters(), "max_len": enc.max_len, "device": device,
        "device_name": torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda")
        else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(), "precision": precision, "compile": compile_, "fused_adamw": fused,
        "pairs_per_step": batch, "steps": steps, "step_s": round(sec, 4),
        "sequences_per_s": round(2 * batch / sec, 1), "tokens_per_s": round(tokens / sec, 0),
        "padding_fraction": round(1 - tokens / padded, 3), "flops_per_step": flops,
        "achieved_tflops": round(flops / sec / 1e12, 3),
    }
    if peak:
        row["peak_tflops"] = peak
        row["mfu"] = round(flops / sec / 1e12 / peak, 3)
    return row


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="*", default=None, help="configs (default: all registered)")
    p.add_argument("--batch", type=int, default=32, help="pairs per step (base configs: --batch-base)")
    p.add_argument("--batch-base", type=int, default=8)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--min-len", type=int, default=50)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32")
    p.add_argument("--compile", action="store_true", help="torch.compile the encoder")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--peak-tflops", type=float, default=None, help="device peak for MFU (default: known GPUs)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    peak = peak_tflops(args.device, args.precision, args.peak_tflops)
    for name in args.models or list_models():
        batch = args.batch_base if name.endswith("-base") else args.batch
        row = bench(name, batch=batch, steps=args.steps, min_len=args.min_len, device=args.device,
                    precision=args.precision, compile_=args.compile, seed=args.seed, peak=peak)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
