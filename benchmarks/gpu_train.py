"""Large-batch cached (GradCache) training of gmlp-small: MFU, tokens/s, peak memory and the dev recall curve.

Called by ``benchmarks/gpu.sh`` (see there for the GPU machine); three subcommands::

    python benchmarks/gpu_train.py pack                     # CPU side: training + dev sets -> runs/gpu-data/protein.npz
    python benchmarks/gpu_train.py train --out R.json       # the benchmark (needs the pack, or --smoke)
    python benchmarks/gpu_train.py train --smoke --out R.json   # tiny synthetic run on CPU, same JSON keys
    python benchmarks/gpu_train.py score MODEL [MODEL ...]  # dev recall@100/@300 and AUC1 of encoders

**Data.** ``pack`` reads the protein datasets of ``../shared/data`` once (it needs biopython, like every phylocl
reader) and writes one compressed ``.npz``: the training sequences of ``configs/ablation-protein.yaml`` (every
family outside the development split's dev and quarantine families) and each dataset's dev families
(``configs/splits/dev-protein.json``, as ``benchmarks/ablation.py materialize`` writes them), as token ids. The
training side needs only torch, numpy and phylocl's model code: no biopython, no FAISS (the GPU image has neither).

**Training.** One step: ``batch`` training families, distinct, two members each drawn uniformly, each cropped at
random to ``max_len`` residues (no masking or substitution noise, the choices of docs/models.md); InfoNCE
(temperature 0.05) over all ``batch`` pairs through :func:`phylocl.cached_backward` in chunks of ``chunk_size``
sequences, bf16 autocast on CUDA (loss and cached gradients in fp32), gradient clipping at 1.0, AdamW (fused on
CUDA), linear warm-up then cosine decay. The number of steps is fixed after a few calibration steps so that the
training fits ``--train-seconds``.

**Figures.**
    * ``tokens_per_s``: real (unpadded) residues of both views per second of training (evaluations excluded).
    * ``mfu``: model FLOPs per second / the device's peak dense bf16 FLOP/s. Model FLOPs per step = 3 x the forward
      FLOPs of the step's two views (forward + backward, the usual MFU convention; GradCache's extra no-grad
      forward is recomputation and counts only in ``hfu``), counted by ``torch.utils.flop_counter.FlopCounterMode``
      on a real batch (matrix products; elementwise work is not counted). ``hfu`` uses the FLOPs counted on one
      whole cached step. Peak: H100 SXM / H200 989 TFLOP/s, H100 NVL 835, H100 PCIe 756 (dense bf16, NVIDIA data
      sheets), or ``--peak-tflops``; ``null`` with the reason on a CPU or an unknown device.
    * ``memory.peak_mb``: ``torch.cuda.max_memory_allocated`` over the training (CPU: the process's peak RSS).
    * ``curve``: at the untrained start and at evenly spaced steps, recall@100, recall@300 and AUC1 on every dev
      set (family level; SCOPe also superfamily): exact cosine search of each dev set against itself, the query's
      own row excluded, ties broken pessimistically, as ``phylocl evaluate`` scores (tests check it against
      :func:`phylocl.retrieval.evaluation.evaluate_embeddings`).

The JSON file is rewritten (atomically) after every evaluation, so a run that fails or runs out of time still
leaves what finished; ``status`` says ``ok``, ``partial`` or ``failed`` and ``errors`` holds each failure.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PACK = REPO / "runs" / "gpu-data" / "protein.npz"
GROUP_LEVELS = {"scope40-train": ["superfamily"]}
HARD = ("mycoplasma-orthogroups", "scope40-train")  # dev sets off the ceiling (docs/models.md)
PEAK_BF16_TFLOPS = (("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0), ("H200", 989.0),
                    ("A100", 312.0))  # dense bf16 TFLOP/s; first matching substring of the device name
KS = (100, 300)


# ----------------------------------------------------------------------------------------------------- data
def _flat(arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated uint8 token ids and ``(N + 1,)`` offsets."""
    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(a) for a in arrays])
    return np.concatenate(arrays).astype(np.uint8), offsets


def pack(*, config: Path, split: Path, data_root: Path, out: Path) -> dict:
    """Write the training and dev token sets (module docstring); returns their sizes."""
    from phylocl.atomic import atomic_path
    from phylocl.config import load_config
    from phylocl.data.datamodule import OrthologDataModule
    from phylocl.data.layouts import read_dataset

    cfg = load_config(config, ["data.pair_strategy=uniform"])
    dm = OrthologDataModule(config=cfg.data)
    dm.setup()
    train = dm.train_set
    enc = dm.alphabet.encode
    fam_names = sorted(train.pair_families)
    fam_id = {f: i for i, f in enumerate(fam_names)}
    keep = [i for i, f in enumerate(train.families) if f in fam_id]
    arrays = {"train_family": np.array([fam_id[train.families[i]] for i in keep], dtype=np.int32)}
    arrays["train_tokens"], arrays["train_offsets"] = _flat([enc(train.sequences[i]) for i in keep])
    meta = {"config": str(config), "split": str(split), "dev": [], "n_train_families": len(fam_names),
            "n_train_sequences": len(keep)}
    for name, info in json.loads(split.read_text())["datasets"].items():
        ds = read_dataset(data_root / name).select_families(info["val"])
        k = len(meta["dev"])
        arrays[f"dev{k}_tokens"], arrays[f"dev{k}_offsets"] = _flat([enc(s) for s in ds.sequences])
        levels = {"family": list(ds.families)}
        for level in GROUP_LEVELS.get(name, []):
            levels[level] = [str(x) for x in ds.metadata[level]]
        for level, labels in levels.items():
            arrays[f"dev{k}_{level}"] = np.array(labels)
        meta["dev"].append({"dataset": name, "levels": list(levels), "n_sequences": len(ds)})
    arrays["meta"] = np.array(json.dumps(meta))
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return meta


def load_pack(path: Path) -> dict:
    """``{"train": (tokens, offsets, family), "dev": [{"dataset", "arrays", "labels": {level: list}}], "meta"}``."""
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        dev = []
        for k, info in enumerate(meta["dev"]):
            tok, off = z[f"dev{k}_tokens"], z[f"dev{k}_offsets"]
            dev.append({"dataset": info["dataset"], "arrays": [tok[off[i]:off[i + 1]].astype(np.int64)
                                                               for i in range(len(off) - 1)],
                        "labels": {level: [str(x) for x in z[f"dev{k}_{level}"]] for level in info["levels"]}})
        return {"train": (z["train_tokens"], z["train_offsets"], z["train_family"]), "dev": dev, "meta": meta}


def synthetic_pack(*, seed: int = 0, families: int = 48, members: int = 3, letters: int = 20) -> dict:
    """Tiny stand-in for :func:`load_pack` (``--smoke``): families of mutated copies (25% substitutions) of random
    roots of 30-100 residues; two dev sets of 12 fresh families each. Token ids 3.. are letters."""
    rng = np.random.default_rng(seed)

    def family_set(n_fam: int) -> tuple[list[np.ndarray], list[int]]:
        arrays, fams = [], []
        for f in range(n_fam):
            root = rng.integers(3, 3 + letters, size=int(rng.integers(30, 101)))
            for _ in range(members):
                seq = root.copy()
                hit = rng.random(len(seq)) < 0.25
                seq[hit] = rng.integers(3, 3 + letters, size=int(hit.sum()))
                arrays.append(seq)
                fams.append(f)
        return arrays, fams

    arrays, fams = family_set(families)
    tokens, offsets = _flat(arrays)
    dev = []
    for name in ("synthetic-a", "synthetic-b"):
        a, f = family_set(12)
        dev.append({"dataset": name, "arrays": a, "labels": {"family": [f"{name}-{x}" for x in f]}})
    meta = {"config": "synthetic", "n_train_families": families, "n_train_sequences": len(arrays),
            "dev": [{"dataset": d["dataset"], "levels": ["family"], "n_sequences": len(d["arrays"])} for d in dev]}
    return {"train": (tokens, offsets, np.array(fams, dtype=np.int32)), "dev": dev, "meta": meta}


class PairSampler:
    """Batches of ``(view a, view b)``: distinct families, two distinct members each (uniform), random crops.

    ``sample(batch)`` returns two token batches ``{"input_ids": (B, L) int64, "attention_mask": (B, L) bool}``
    with ``L <= max_len`` the longest crop, built without a Python loop over rows.
    """

    def __init__(self, *, tokens: np.ndarray, offsets: np.ndarray, family: np.ndarray, max_len: int, seed: int):
        self.tokens = torch.from_numpy(np.ascontiguousarray(tokens).astype(np.int64))
        self.starts, self.lengths = offsets[:-1], np.diff(offsets)
        order = np.argsort(family, kind="stable")
        _, first, counts = np.unique(family[order], return_index=True, return_counts=True)
        ok = counts >= 2
        self.members, self.first, self.count = order, first[ok], counts[ok]
        self.max_len = int(max_len)
        self.rng = np.random.default_rng(seed)

    @property
    def num_families(self) -> int:
        return len(self.count)

    def _view(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        length = self.lengths[rows]
        take = np.minimum(length, self.max_len)
        offset = self.starts[rows] + (self.rng.random(len(rows)) * (length - take + 1)).astype(np.int64)
        width = int(take.max())
        pos = np.arange(width)
        mask = pos[None, :] < take[:, None]  # (B, L)
        index = torch.from_numpy(np.where(mask, offset[:, None] + pos[None, :], 0))
        ids = torch.where(torch.from_numpy(mask), self.tokens[index], 0)  # (B, L), padding id 0
        return {"input_ids": ids, "attention_mask": torch.from_numpy(mask)}

    def sample(self, batch: int) -> tuple[dict, dict]:
        fam = self.rng.choice(self.num_families, size=batch, replace=False)
        n = self.count[fam]
        i = (self.rng.random(batch) * n).astype(np.int64)
        j = (i + 1 + (self.rng.random(batch) * (n - 1)).astype(np.int64)) % n  # another member
        base = self.first[fam]
        return self._view(self.members[base + i]), self._view(self.members[base + j])


# ----------------------------------------------------------------------------------------------------- metrics
def retrieval_figures(x: torch.Tensor, labels: list[str], ks=KS) -> dict:
    """Mean ``recall@k``, ``auc1`` and ``top1`` of every row of ``x`` (``(N, D)`` unit rows) searching all others.

    The similarities and the full ranking are computed where ``x`` is (the GPU); the figures by
    :func:`phylocl.retrieval.metrics.score_hits`, as ``phylocl evaluate`` scores them (NumPy only, no FAISS): the
    query's own row excluded, ties ranked pessimistically, queries with no other member of their label skipped.
    """
    from phylocl.retrieval.hits import hits_from_search
    from phylocl.retrieval.metrics import score_hits

    sim = x.float() @ x.float().T  # (N, N)
    scores, order = torch.sort(sim, dim=1, descending=True, stable=True)  # (N, N) every row ranked
    hits = hits_from_search(scores.double().cpu().numpy(), order.cpu().numpy())
    m = score_hits(hits, labels, labels, ks=ks, query_rows=range(x.shape[0]))
    return {"n_queries": m["n_queries"], **{f"recall@{k}": m[f"recall@{k}"] for k in ks}, "auc1": m["auc1"],
            "top1": m["top1"]}


def dev_figures(encoder, dev: list[dict], *, batch_size: int, embed=None) -> dict:
    """Every dev set (and level) scored; ``rows`` plus means over rows and over the hard ones.

    ``encoder`` embeds the token arrays where its weights are; or ``embed(arrays) -> (N, E)`` does (``score``).
    """
    from phylocl.models.inference import embed_token_arrays

    if embed is None:
        def embed(arrays):
            x = embed_token_arrays(encoder, arrays, batch_size=batch_size)  # (N, E)
            return torch.from_numpy(x).to(next(encoder.parameters()).device)

    rows = []
    for d in dev:
        x = embed(d["arrays"])  # (N, E)
        for level, labels in d["labels"].items():
            rows.append({"dataset": d["dataset"], "level": level, "n_sequences": len(labels),
                         **retrieval_figures(x, labels)})
    hard = [r for r in rows if r["dataset"] in HARD] or rows
    summary = {f"mean_{m}": float(np.mean([r[m] for r in rows])) for m in (*(f"recall@{k}" for k in KS), "auc1")}
    summary.update({f"hard_mean_{m}": float(np.mean([r[m] for r in hard]))
                    for m in (*(f"recall@{k}" for k in KS), "auc1")})
    return {**summary, "rows": rows}


# ----------------------------------------------------------------------------------------------------- device
def device_info(device: torch.device) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "device": str(device),
            "cpu_threads": torch.get_num_threads(), "cuda": torch.version.cuda}
    info["device_name"] = (torch.cuda.get_device_name(device) if device.type == "cuda"
                           else platform.processor() or platform.machine())
    return info


def peak_tflops(device: torch.device, override: float | None) -> tuple[float | None, str]:
    """Peak dense bf16 TFLOP/s assumed for MFU and where it comes from (``None`` with the reason if unknown)."""
    if override:
        return override, "--peak-tflops"
    if device.type != "cuda":
        return None, "no MFU on a CPU: no peak bf16 figure is assumed for it"
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_BF16_TFLOPS:
        if key in name:
            return value, f"dense bf16 peak of '{key}' (NVIDIA data sheet) for device '{name}'"
    return None, f"unknown device '{name}': pass --peak-tflops"


def peak_memory_mb(device: torch.device) -> tuple[float, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "torch.cuda.max_memory_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process peak RSS (ru_maxrss), CPU"


def count_flops(fn) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return int(counter.get_total_flops())


# ----------------------------------------------------------------------------------------------------- training
class Report:
    """The result JSON, rewritten atomically on every :meth:`save`."""

    KEYS = ("benchmark", "status", "errors", "smoke", "command", "started_utc", "finished_utc", "environment",
            "config", "model", "throughput", "mfu", "hfu", "mfu_reason", "peak_tflops_assumed", "memory",
            "curve", "loss_curve", "final")

    def __init__(self, path: Path, argv: list[str], smoke: bool):
        self.path = path
        self.data = {k: None for k in self.KEYS}
        self.data.update(benchmark="gpu_train", status="running", errors=[], smoke=smoke, command=argv,
                         started_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), curve=[], loss_curve=[])

    def error(self, phase: str, err: BaseException) -> None:
        self.data["errors"].append({"phase": phase, "error": f"{type(err).__name__}: {err}"[:500]})
        traceback.print_exc(file=sys.stderr)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp{os.getpid()}")
        tmp.write_text(json.dumps(self.data, indent=1) + "\n")
        os.replace(tmp, self.path)


def _autocast_dtype(precision: str, device: torch.device):
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    return precision, (torch.bfloat16 if precision == "bf16" else None)


def train(args, report: Report) -> None:
    from phylocl.losses.infonce import InfoNCE
    from phylocl.models.registry import build_encoder
    from phylocl.training.gradcache import cached_backward
    from phylocl.training.schedule import warmup_cosine

    t_start = time.perf_counter()
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    precision, dtype = _autocast_dtype(args.precision, device)
    report.data["environment"] = device_info(device)
    data = synthetic_pack(seed=args.seed) if args.smoke else load_pack(Path(args.data))
    torch.manual_seed(args.seed)
    sampler = PairSampler(tokens=data["train"][0], offsets=data["train"][1], family=data["train"][2],
                          max_len=args.max_len, seed=args.seed)
    batch = min(args.batch, sampler.num_families)
    encoder = build_encoder(args.model, max_len=args.max_len, alphabet="protein").to(device).train()
    loss_fn = InfoNCE(temperature=args.temperature, chunk_size=args.loss_chunk_size or None)
    opt = torch.optim.AdamW(encoder.parameters(), lr=args.lr, weight_decay=args.weight_decay,
                            fused=True if device.type == "cuda" else None)
    peak, peak_source = peak_tflops(device, args.peak_tflops)
    report.data["config"] = {
        "model": args.model, "max_len": args.max_len, "batch_pairs": batch, "batch_pairs_requested": args.batch,
        "chunk_size": args.chunk_size, "loss_chunk_size": args.loss_chunk_size, "temperature": args.temperature,
        "lr": args.lr, "weight_decay": args.weight_decay, "warmup_fraction": args.warmup_fraction,
        "min_lr_ratio": args.min_lr_ratio, "clip_grad_norm": 1.0, "precision": precision, "seed": args.seed,
        "train_seconds_budget": args.train_seconds, "max_steps": args.max_steps, "evals": args.evals,
        "data": "synthetic" if args.smoke else str(args.data), "pair_sampling": "uniform, distinct families",
        "n_train_families": sampler.num_families, "n_train_sequences": int(len(data["train"][1]) - 1),
        "dev_sets": [d["dataset"] for d in data["dev"]]}
    report.data.update(peak_tflops_assumed=peak, mfu_reason=peak_source)
    labels = torch.arange(batch, device=device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def to_device(view):
        return {k: v.to(device, non_blocking=True) for k, v in view.items()}

    def step(a, b, lr_mult: float) -> float:
        for g in opt.param_groups:
            g["lr"] = args.lr * lr_mult
        opt.zero_grad(set_to_none=True)
        loss = cached_backward(encoder, a, b, loss_fn, args.chunk_size, labels, autocast=dtype)
        torch.nn.utils.clip_grad_norm_(encoder.parameters(), 1.0)
        opt.step()
        return float(loss)

    def evaluate(step_no: int, pairs: int, seconds: float, loss: float | None) -> None:
        t0 = time.perf_counter()
        try:
            figs = dev_figures(encoder, data["dev"], batch_size=args.eval_batch_size)
        except Exception as err:  # noqa: BLE001 - keep the training figures even if scoring breaks
            report.error(f"evaluate step {step_no}", err)
            return
        finally:
            encoder.train()
        report.data["curve"].append({"step": step_no, "pairs_seen": pairs, "train_seconds": round(seconds, 2),
                                     "loss": loss, "eval_seconds": round(time.perf_counter() - t0, 2), **figs})
        report.data["final"] = report.data["curve"][-1]
        short = {k: round(v, 4) for k, v in figs.items() if k.startswith(("mean", "hard"))}
        print(f"step {step_no}: {json.dumps(short)}", file=sys.stderr, flush=True)
        report.save()

    # FLOPs: the model's forward on one real batch (x 3 for MFU) and one whole cached step (for HFU)
    a, b = (to_device(v) for v in sampler.sample(batch))
    tokens0 = int(a["attention_mask"].sum() + b["attention_mask"].sum())
    with torch.no_grad(), torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        fwd = count_flops(lambda: (encoder(a), encoder(b)))
    evaluate(0, 0, 0.0, None)  # the untrained start
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    # calibration at lr 0 (weights unchanged; AdamW's moments see these gradients): the FLOP count, then timing
    hw = count_flops(lambda: step(a, b, 0.0))
    calib = []
    for _ in range(max(1, args.calibration_steps)):
        a, b = (to_device(v) for v in sampler.sample(batch))
        sync()
        t0 = time.perf_counter()
        step(a, b, 0.0)
        sync()
        calib.append(time.perf_counter() - t0)
    per_step = float(np.median(calib[1:] or calib))
    total = max(1, int(args.train_seconds / per_step))
    total = min(total, args.max_steps) if args.max_steps else total
    marks = sorted({max(1, round(total * (i + 1) / args.evals)) for i in range(args.evals)})
    warmup = max(1, round(args.warmup_fraction * total))
    report.data["model"] = {"name": args.model, "parameters": encoder.num_parameters(),
                            "forward_flops_per_token": fwd / tokens0, "model_flops_per_token": 3 * fwd / tokens0,
                            "cached_step_flops_per_token": hw / tokens0,
                            "flops_counted_on": f"{batch} pairs, {tokens0} real tokens, FlopCounterMode"}
    report.data["config"].update(steps_planned=total, warmup_steps=warmup, calibration_step_s=calib,
                                 calibration_note="calibration steps run at lr 0 and are not counted")
    report.save()
    train_s, tokens, padded, times, done = 0.0, 0, 0, [], 0
    losses = report.data["loss_curve"]
    deadline = t_start + args.deadline_seconds
    for done in range(1, total + 1):
        if time.perf_counter() > deadline:
            done -= 1
            report.data["errors"].append({"phase": "train", "error": f"--deadline-seconds {args.deadline_seconds} "
                                          f"reached after {done} of {total} steps"})
            break
        a, b = (to_device(v) for v in sampler.sample(batch))
        mult = warmup_cosine(done - 1, warmup_steps=warmup, total_steps=total, min_ratio=args.min_lr_ratio)
        sync()
        t0 = time.perf_counter()
        loss = step(a, b, mult)  # float(loss) synchronises
        sync()
        times.append(time.perf_counter() - t0)
        train_s += times[-1]
        tokens += int(a["attention_mask"].sum() + b["attention_mask"].sum())
        padded += a["attention_mask"].numel() + b["attention_mask"].numel()
        if not math.isfinite(loss):
            raise FloatingPointError(f"loss is {loss} at step {done}")
        if done % max(1, args.log_every) == 0 or done == 1:
            losses.append([done, round(loss, 4)])
        if done in marks:
            _throughput(report, done=done, train_s=train_s, tokens=tokens, padded=padded, times=times,
                        batch=batch, peak=peak, device=device)
            evaluate(done, done * batch, train_s, loss)
    _throughput(report, done=done, train_s=train_s, tokens=tokens, padded=padded, times=times, batch=batch,
                peak=peak, device=device)
    if report.data["curve"][-1]["step"] != done:
        evaluate(done, done * batch, train_s, losses[-1][1] if losses else None)


def _throughput(report: Report, *, done, train_s, tokens, padded, times, batch, peak, device) -> None:
    """Fill ``throughput``, ``mfu``, ``hfu`` and ``memory`` from the timed steps so far."""
    if not times:
        return
    tps = tokens / train_s
    model = report.data["model"]
    report.data["throughput"] = {
        "timed_steps": len(times), "steps_done": done, "train_seconds": round(train_s, 3), "tokens_per_s": tps,
        "pairs_per_s": batch * len(times) / train_s, "step_s_median": float(np.median(times)),
        "padding_fraction": 1 - tokens / padded, "achieved_model_tflops": model["model_flops_per_token"] * tps / 1e12}
    if peak:
        report.data["mfu"] = model["model_flops_per_token"] * tps / (peak * 1e12)
        report.data["hfu"] = model["cached_step_flops_per_token"] * tps / (peak * 1e12)
    mb, metric = peak_memory_mb(device)
    report.data["memory"] = {"peak_mb": round(mb, 1), "metric": metric}


def cmd_train(args) -> int:
    for key, value in TRAIN_DEFAULTS.items():  # unset options: the smoke sizes or the benchmark's
        if getattr(args, key) is None:
            setattr(args, key, SMOKE.get(key, value) if args.smoke else value)
    if not args.smoke and not Path(args.data).exists():
        print(f"gpu_train: {args.data}: no data pack; make it where ../shared/data and biopython are "
              f"(python benchmarks/gpu_train.py pack) and carry it, or use --smoke", file=sys.stderr)
        return 2
    out = Path(args.out or REPO / "runs" / "gpu" / f"gpu-{time.strftime('%Y%m%dT%H%M%S')}.json")
    report = Report(out, sys.argv, args.smoke)
    try:
        train(args, report)
    except BaseException as err:  # noqa: BLE001 - the JSON records whatever finished, then the error
        report.error("train", err)
        if isinstance(err, KeyboardInterrupt):
            report.data["errors"][-1]["error"] = "interrupted"
    measured = bool(report.data["curve"])  # at least the untrained start was scored
    report.data["status"] = "ok" if not report.data["errors"] else "partial" if measured else "failed"
    report.data["finished_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    report.save()
    print(json.dumps({k: report.data[k] for k in ("status", "mfu", "peak_tflops_assumed")}
                     | {"tokens_per_s": (report.data["throughput"] or {}).get("tokens_per_s"),
                        "peak_mb": (report.data["memory"] or {}).get("peak_mb"), "out": str(out)}))
    return 0 if report.data["status"] == "ok" else 1


def cmd_pack(args) -> int:
    paths = {k: Path(getattr(args, k)).resolve() for k in ("config", "split", "data_root", "out")}
    os.chdir(REPO)  # the config's data paths (../shared/data/...) are relative to the repository root
    meta = pack(**paths)
    print(json.dumps({"out": str(args.out), "bytes": Path(args.out).stat().st_size, **meta}))
    return 0


def cmd_score(args) -> int:
    """Dev figures (recall@100/@300, AUC1) of models on the pack's dev sets: one JSON line each.

    ``untrained:CONFIG`` is a registered config at step 0 (built as ``phylocl train`` builds it, seed ``--seed``);
    anything else is a ``phylocl`` model spec (run folder, encoder file, shipped name, ``kmer:K``) embedded as
    ``phylocl evaluate`` embeds (CPU machine: needs phylocl's full dependencies).
    """
    from phylocl.data.alphabet import get_alphabet
    from phylocl.models.registry import build_encoder
    from phylocl.workflows.embed_buffers import embed_all
    from phylocl.workflows.model_spec import resolve_model

    data = load_pack(Path(args.data))
    letters = np.array(get_alphabet("protein").tokens)
    for model in args.models:
        embed, encoder = None, None
        if model.startswith("untrained:"):
            torch.manual_seed(args.seed)
            encoder = build_encoder(model.split(":", 1)[1], max_len=args.max_len, alphabet="protein").eval()
        else:
            embedder = resolve_model(model, alphabet="protein", device="cpu")

            def embed(arrays, embedder=embedder):
                items = [(str(i), "".join(letters[a]), None) for i, a in enumerate(arrays)]
                return torch.from_numpy(embed_all(items, embedder, batch_size=args.eval_batch_size)[0])

        figs = dev_figures(encoder, data["dev"], batch_size=args.eval_batch_size, embed=embed)
        print(json.dumps({"model": model, **figs}), flush=True)
    return 0


TRAIN_DEFAULTS = {"model": "gmlp-small", "max_len": 128, "batch": 1024, "chunk_size": 512, "loss_chunk_size": 0,
                  "train_seconds": 300.0, "deadline_seconds": 480.0, "evals": 5, "max_steps": 0,
                  "calibration_steps": 5, "eval_batch_size": 512, "log_every": 10}
SMOKE = {"model": "gmlp-tiny", "max_len": 48, "batch": 16, "chunk_size": 8, "train_seconds": 3.0,
         "deadline_seconds": 60.0, "evals": 2, "max_steps": 6, "calibration_steps": 2, "eval_batch_size": 64,
         "log_every": 1}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="the benchmark (writes one JSON file)")
    t.add_argument("--out", help="result JSON (default runs/gpu/gpu-<time>.json)")
    t.add_argument("--data", default=str(DEFAULT_PACK), help="data pack from `pack`")
    t.add_argument("--smoke", action="store_true", help="tiny synthetic run (CPU, seconds), same JSON keys")
    t.add_argument("--model", help="registered encoder config")
    t.add_argument("--max-len", type=int, help="crop length (residues) and the encoder's window")
    t.add_argument("--batch", type=int, help="pairs per step (at most the number of training families)")
    t.add_argument("--chunk-size", type=int, help="sequences per encoder call (GradCache chunks)")
    t.add_argument("--loss-chunk-size", type=int, help="InfoNCE logits rows per block (0: all at once)")
    t.add_argument("--train-seconds", type=float, help="training time to plan the step count for")
    t.add_argument("--deadline-seconds", type=float, help="stop training this long after the start, whatever")
    t.add_argument("--max-steps", type=int, help="cap on the step count (0: only the time budget)")
    t.add_argument("--evals", type=int, help="dev evaluations after the start (evenly spaced)")
    t.add_argument("--calibration-steps", type=int, help="steps timed before the step count is fixed")
    t.add_argument("--eval-batch-size", type=int, help="windows per call when embedding the dev sets")
    t.add_argument("--log-every", type=int, help="loss recorded every this many steps")
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--weight-decay", type=float, default=0.05)
    t.add_argument("--temperature", type=float, default=0.05)
    t.add_argument("--warmup-fraction", type=float, default=0.05)
    t.add_argument("--min-lr-ratio", type=float, default=0.05)
    t.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto", help="auto: bf16 on CUDA")
    t.add_argument("--device", default="auto")
    t.add_argument("--peak-tflops", type=float, help="device peak dense bf16 TFLOP/s for MFU")
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(fn=cmd_train)
    k = sub.add_parser("pack", help="write the training and dev token sets (CPU side, needs biopython)")
    k.add_argument("--config", default=str(REPO / "configs" / "ablation-protein.yaml"))
    k.add_argument("--split", default=str(REPO / "configs" / "splits" / "dev-protein.json"))
    k.add_argument("--data-root", default=str(REPO / ".." / "shared" / "data"))
    k.add_argument("--out", default=str(DEFAULT_PACK))
    k.set_defaults(fn=cmd_pack)
    s = sub.add_parser("score", help="dev recall@100/@300 and AUC1 of trained encoders")
    s.add_argument("models", nargs="+", help="encoder files, model folders, shipped names, or untrained:CONFIG "
                   "(a registered config at step 0: seed --seed, windows of --max-len)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--max-len", type=int, default=128)
    s.add_argument("--data", default=str(DEFAULT_PACK))
    s.add_argument("--eval-batch-size", type=int, default=64)
    s.set_defaults(fn=cmd_score)
    args = p.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
