"""Embedding throughput: length-sorted batching (``SequenceEncoder.embed``) vs batches in input order.

Lengths follow a realistic protein distribution: those of ``../shared/data/mycoplasma-orthogroups`` when present
(median 316, max 3,326 residues), else a log-normal fitted to typical proteomes (median ~300). Both modes embed the
same sequences with the same batch size; sequences longer than the model's ``max_len`` are cut into windows in both.
Prints one JSON object per (model, mode), then one per model with the speed-up of sorting, measured in one run.

On a shared machine wall time follows the load; ``cpu_seconds`` (process CPU time, best of the repeats) is the
steadier measure of the work done, and with ``--threads 1`` its ratio is the speed-up one core would see.

``--variants`` instead compares inference settings ``PRECISION:OVERLAP`` (``fp32``/``bf16``/``int8``, window
overlap 0..0.5) of one model against ``today``: the encoder as it was before the inference work (fp32, overlap 0.5,
the spatial projection through ``torch.matmul``), interleaved in the same run; ``--models`` then takes model
files or shipped names such as ``default-protein``.

Example::

    python benchmarks/embedding.py --models gmlp-small transformer-small --n 512 --threads 2
    python benchmarks/embedding.py --models default-protein --threads 2 --n 256 \
        --variants fp32:0.5 bf16:0.5 int8:0.5 bf16:0 int8:0
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from phylocl.data.tokens import pad_batch
from phylocl.models.registry import build_encoder
from phylocl.models.windows import window_starts

AMINO = np.array(list("ACDEFGHIKLMNPQRSTVWY"))
SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mycoplasma-orthogroups" / "sequences.fasta"


def realistic_lengths(n: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    if SHARED.exists():
        from phylocl.data.layouts import iter_fasta

        lengths = np.array([len(r.sequence) for r in iter_fasta(SHARED)])
        return rng.choice(lengths, size=n, replace=True), "mycoplasma-orthogroups lengths"
    return np.clip(rng.lognormal(np.log(300), 0.6, size=n), 30, 5000).astype(int), "log-normal(median 300)"


def input_order_embed(enc, seqs: list[str], batch_size: int) -> np.ndarray:
    """The naive way: windows in input order, ``batch_size`` at a time, no sorting."""
    arrays = [enc.alphabet.encode(s) for s in seqs]
    windows = [(i, s) for i, a in enumerate(arrays) for s in window_starts(len(a), enc.max_len, enc.window_stride)]
    sums = np.zeros((len(seqs), enc.embed_dim))
    with torch.no_grad():
        for lo in range(0, len(windows), batch_size):
            chunk = windows[lo: lo + batch_size]
            z = enc(pad_batch([arrays[i][s: s + enc.max_len] for i, s in chunk])).numpy()
            np.add.at(sums, [i for i, _ in chunk], z)
    return (sums / np.linalg.norm(sums, axis=1, keepdims=True)).astype(np.float32)


def padding_fractions(enc, seqs: list[str], batch_size: int) -> dict[str, float]:
    """Fraction of padded positions in the batches each mode builds."""
    lens = [min(enc.max_len, len(s) - st) for s in seqs for st in window_starts(len(s), enc.max_len, enc.window_stride)]
    out = {}
    for mode, order in (("sorted", sorted(lens)), ("input_order", lens)):
        padded = sum(max(order[i: i + batch_size]) * len(order[i: i + batch_size])
                     for i in range(0, len(order), batch_size))
        out[mode] = round(1 - sum(lens) / padded, 3)
    return out


def today_sgu_forward(self, z, mask, gate_res=None):
    """``SpatialGatingUnit.forward`` as it was before the inference work (``torch.matmul`` in every mode)."""
    u, v = z.chunk(2, dim=-1)
    v = self.norm(v).masked_fill(~mask.unsqueeze(-1), 0.0)
    width = z.shape[1]
    gate = torch.matmul(self.weight[:width, :width], v) + self.bias[:width, None]
    return u * (gate if gate_res is None else gate + gate_res)


def load_model(name: str, max_len: int | None):
    """A registry architecture (random weights, seed 0) or a trained model (file, directory, shipped name)."""
    from phylocl.models.registry import list_models

    torch.manual_seed(0)
    if name in list_models():
        return build_encoder(name, **({"max_len": max_len} if max_len else {})).eval()
    from phylocl.workflows.model_spec import resolve_model

    return resolve_model(name, device="cpu").model.eval()


def run_variants(name: str, seqs: list[str], args, meta: dict) -> None:
    """Interleave ``today`` and each ``PRECISION:OVERLAP`` variant; print residues/s and the speed-up over today."""
    from phylocl.models import gmlp

    enc = load_model(name, args.max_len)
    current = gmlp.SpatialGatingUnit.forward

    def today():
        gmlp.SpatialGatingUnit.forward = today_sgu_forward
        try:
            return enc.embed(seqs, batch_size=args.batch_size)
        finally:
            gmlp.SpatialGatingUnit.forward = current

    modes = {"today": today}
    for v in args.variants:
        precision, _, overlap = v.partition(":")
        modes[v] = (lambda p=precision, o=float(overlap or 0.5):
                    enc.embed(seqs, batch_size=args.batch_size, precision=p, overlap=o))
    best, cpu, outputs = {}, {}, {}
    for _ in range(args.repeats):
        for mode, fn in modes.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            outputs[mode] = fn()
            best[mode] = min(best.get(mode, float("inf")), time.perf_counter() - start)
            cpu[mode] = min(cpu.get(mode, float("inf")), time.process_time() - start_cpu)
    for mode, sec in best.items():
        cos = float(np.min(np.sum(outputs[mode] * outputs["today"], axis=1)))
        print(json.dumps({"model": name, "variant": mode, **meta, "max_len": enc.max_len, "seconds": round(sec, 3),
                          "cpu_seconds": round(cpu[mode], 3), "sequences_per_s": round(len(seqs) / sec, 1),
                          "residues_per_s": round(meta["residues"] / sec),
                          "residues_per_cpu_s": round(meta["residues"] / cpu[mode]),
                          "speedup_vs_today": round(best["today"] / sec, 2),
                          "cpu_speedup_vs_today": round(cpu["today"] / cpu[mode], 2),
                          "min_cosine_to_today": round(cos, 4)}), flush=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="*", default=["gmlp-small", "transformer-small"])
    p.add_argument("--n", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--repeats", type=int, default=2, help="alternate the two modes this many times; best time kept")
    p.add_argument("--max-len", type=int, default=None,
                   help="override the models' window (default: their config; with 256 most proteins become "
                        "full-length windows and sorting has little padding to remove)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variants", nargs="*", metavar="PRECISION:OVERLAP",
                   help="compare these inference settings against today's encoder instead of sorting modes")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    lengths, source = realistic_lengths(args.n, rng)
    seqs = ["".join(rng.choice(AMINO, size=int(k))) for k in lengths]
    residues = int(lengths.sum())
    if args.variants:
        meta = {"device": "cpu", "cpu": platform.processor() or platform.machine(), "threads": args.threads,
                "sequences": len(seqs), "residues": residues, "lengths": source, "batch_size": args.batch_size}
        for name in args.models:
            run_variants(name, seqs, args, meta)
        return
    for name in args.models:
        torch.manual_seed(0)
        enc = build_encoder(name, **({"max_len": args.max_len} if args.max_len else {})).eval()
        pad = padding_fractions(enc, seqs, args.batch_size)
        modes = {"sorted": lambda: enc.embed(seqs, batch_size=args.batch_size),
                 "input_order": lambda: input_order_embed(enc, seqs, args.batch_size)}
        best, outputs = {}, {}
        for _ in range(args.repeats):  # interleaved, so load changes hit both modes alike
            for mode, fn in modes.items():
                start = time.perf_counter()
                outputs[mode] = fn()
                best[mode] = min(best.get(mode, float("inf")), time.perf_counter() - start)
        assert np.allclose(outputs["sorted"], outputs["input_order"], atol=1e-4)
        for mode, sec in best.items():
            print(json.dumps({"model": name, "mode": mode, "device": "cpu", "cpu": platform.processor() or
                              platform.machine(), "threads": args.threads, "sequences": len(seqs),
                              "residues": residues, "lengths": source, "batch_size": args.batch_size,
                              "max_len": enc.max_len, "padding_fraction": pad[mode],
                              "seconds": round(sec, 3), "sequences_per_s": round(len(seqs) / sec, 1),
                              "tokens_per_s": round(residues / sec)}), flush=True)
        print(json.dumps({"model": name, "speedup_sorted_vs_input_order":
                          round(best["input_order"] / best["sorted"], 2)}), flush=True)


if __name__ == "__main__":
    main()
