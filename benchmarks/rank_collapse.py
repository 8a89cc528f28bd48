"""Rank collapse against depth on protein sequences (docs/rank-collapse.md), after Dong et al. 2021 (arXiv 2103.03404).

Stacks of the same width and depth, differing only in what surrounds self-attention: pure attention (the paper's
SAN), attention + skip connections, attention + MLPs, attention + skips + MLPs (no LayerNorm), phylocl's pre-LN
transformer, phylocl's gMLP and phylocl's sMLP (gMLP blocks then sparse mixture-of-experts blocks). Each stack sits in a phylocl
``SequenceEncoder`` (token embedding -> stack -> mean pooling -> linear head). For every stack the rank-collapse
residual (:mod:`phylocl.diagnostics`, Frobenius norm, padding excluded) is measured after every block on held-out
families:

* at initialisation, with PyTorch's default initialisation (``torch``: embeddings N(0, 1), Linear layers
  Kaiming-uniform), and with phylocl's (``phylocl``: N(0, 0.02^2), what ``phylocl train`` starts from);
* after a short contrastive training (InfoNCE, from phylocl's initialisation).

Run from the repository root (CPU, one thread is enough; ~1-2 min per stack)::

    OMP_NUM_THREADS=1 python benchmarks/rank_collapse.py --out runs/rank-collapse \
        --figure docs/figures/rank-collapse.png
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from phylocl.atomic import atomic_path  # noqa: E402
from phylocl.data.layouts import read_dataset  # noqa: E402
from phylocl.diagnostics.layers import layer_residuals  # noqa: E402
from phylocl.diagnostics.probes import knn_top1  # noqa: E402
from phylocl.losses.infonce import InfoNCE  # noqa: E402
from phylocl.models.attention_stack import AttentionStack  # noqa: E402
from phylocl.models.encoder import SequenceEncoder  # noqa: E402
from phylocl.models.encoder_config import EncoderConfig  # noqa: E402
from phylocl.models.gmlp import GMLP  # noqa: E402
from phylocl.models.smlp import SMLP  # noqa: E402
from phylocl.models.transformer import Transformer  # noqa: E402

VARIANTS = {  # name -> backbone factory(args)
    "attention": lambda a: AttentionStack(dim=a.dim, depth=a.depth, heads=a.heads, ffn_dim=a.ffn),
    "attention+skip": lambda a: AttentionStack(dim=a.dim, depth=a.depth, heads=a.heads, ffn_dim=a.ffn, skip=True),
    "attention+mlp": lambda a: AttentionStack(dim=a.dim, depth=a.depth, heads=a.heads, ffn_dim=a.ffn, mlp=True),
    "attention+skip+mlp": lambda a: AttentionStack(dim=a.dim, depth=a.depth, heads=a.heads, ffn_dim=a.ffn,
                                                   skip=True, mlp=True),
    "transformer": lambda a: Transformer(dim=a.dim, depth=a.depth, heads=a.heads, ffn_dim=a.ffn),
    "gmlp": lambda a: GMLP(dim=a.dim, depth=a.depth, ffn_dim=a.ffn, seq_len=a.max_len),
    # half dense gMLP blocks, half sparse (sMoE + tMoE, 4 experts); the router losses are not trained here
    "smlp": lambda a: SMLP(dim=a.dim, depth=a.depth, dense=a.depth // 2, ffn_dim=a.ffn, seq_len=a.max_len,
                           experts=4, chunk=16, capacity_factor=1.25, moe_hidden=a.ffn),
}


def build(name: str, args, init: str) -> SequenceEncoder:
    cfg = EncoderConfig(backbone="transformer", dim=args.dim, depth=1, heads=args.heads, ffn_dim=args.ffn,
                        max_len=args.max_len, embed_dim=args.dim, head="linear")
    enc = SequenceEncoder(config=cfg)
    enc.backbone = VARIANTS[name](args)
    if init == "phylocl":
        enc._init_weights()  # N(0, 0.02^2) Linear/embedding weights; gMLP spatial weights keep their own init
    else:
        for m in enc.modules():
            if m is not enc and hasattr(m, "reset_parameters"):
                m.reset_parameters()
    return enc


def split(ds, seed: int, eval_fraction: float = 0.2, max_eval: int = 400):
    """Families with >= 2 members, shuffled: the first ``eval_fraction`` are held out for measuring."""
    fams = [f for f, idx in ds.family_index.items() if len(idx) > 1]
    rng = np.random.default_rng(seed)
    fams = [fams[i] for i in rng.permutation(len(fams))]
    n_eval = max(2, int(eval_fraction * len(fams)))
    eval_idx = [i for f in fams[:n_eval] for i in ds.family_index[f]][:max_eval]
    return fams[n_eval:], eval_idx


def crop(seq: str, length: int, rng) -> str:
    if len(seq) <= length:
        return seq
    start = int(rng.integers(0, len(seq) - length + 1))
    return seq[start:start + length]


def train(enc, ds, families, args, seed: int) -> float:
    """InfoNCE on two random members (random crops) of ``batch`` families per step; returns the last loss."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    loss_fn = InfoNCE(temperature=0.1)
    opt = torch.optim.AdamW(enc.parameters(), lr=args.lr, weight_decay=0.05)
    warmup = max(1, args.steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup))
    enc.train()
    losses = []
    for _ in range(args.steps):
        picked = rng.choice(len(families), size=min(args.batch, len(families)), replace=False)
        a, b = [], []
        for k in picked:
            i, j = rng.choice(ds.family_index[families[k]], size=2, replace=False)
            a.append(crop(ds.sequences[i], args.max_len, rng))
            b.append(crop(ds.sequences[j], args.max_len, rng))
        loss = loss_fn(enc(enc.tokenize(a)), enc(enc.tokenize(b)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(enc.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    return float(np.mean(losses[-20:]))


def curve(r: dict) -> list[float]:
    return [r["input_residual"], *r["layer_residual"]]


def run_variant(name, ds, families, eval_seqs, eval_fams, args) -> dict:
    out = {}
    for init in ("torch", "phylocl"):
        torch.manual_seed(args.seed)
        enc = build(name, args, init)
        out[f"init_{init}"] = curve(layer_residuals(enc, eval_seqs))
    t0 = time.perf_counter()
    out["train_loss_last20"] = train(enc, ds, families, args, args.seed)
    out["train_seconds"] = round(time.perf_counter() - t0, 1)
    out["trained"] = curve(layer_residuals(enc, eval_seqs))
    out["knn_top1_trained"] = knn_top1(enc.embed(eval_seqs), eval_fams)["knn_top1"]
    out["parameters"] = enc.num_parameters()
    return out


def plot(results: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("init_torch", "initialisation (PyTorch default)"), ("init_phylocl", "initialisation (phylocl)"),
              ("trained", "after training (from phylocl init)")]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3), sharey=True)
    for ax, (key, label) in zip(axes, panels):
        for name, r in results.items():
            y = np.maximum(np.asarray(r[key], dtype=float), 1e-8)  # exact zeros drawn at the floor
            ax.plot(range(len(y)), y, marker="o", markersize=3, label=name)
        ax.set_yscale("log")
        ax.set_ylim(5e-9, 2)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("depth (blocks; 0 = token embeddings)")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("residual ||X - 1x^T||_F / ||X||_F (floor 1e-8)")
    axes[-1].legend(fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def table(results: dict, depths=(1, 2, 3, 6, 12)) -> str:
    lines = ["| stack | condition | " + " | ".join(f"depth {d}" for d in depths) + " |",
             "|---|---|" + "---:|" * len(depths)]
    for name, r in results.items():
        for key in ("init_torch", "init_phylocl", "trained"):
            vals = [f"{r[key][d]:.2g}" if d < len(r[key]) else "" for d in depths]
            lines.append(f"| {name} | {key} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(REPO / ".." / "shared" / "data" / "mycoplasma-orthogroups"))
    p.add_argument("--out", default="runs/rank-collapse")
    p.add_argument("--figure", default=None)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--depth", type=int, default=12)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--ffn", type=int, default=128)
    p.add_argument("--max-len", type=int, default=64)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", action="store_true", help="keep the stacks already in OUT/results.json (same settings)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    ds = read_dataset(args.data)
    families, eval_idx = split(ds, args.seed)
    eval_seqs = [ds.sequences[i][: args.max_len] for i in eval_idx]
    eval_fams = [ds.families[i] for i in eval_idx]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "results.json"
    results = {}
    if args.keep and saved.exists():  # stacks measured by an earlier run with the same settings are kept
        old = json.loads(saved.read_text())
        same = {k: v for k, v in old["args"].items() if k not in ("variants", "keep", "figure")} == \
            {k: v for k, v in vars(args).items() if k not in ("variants", "keep", "figure")}
        results = old["results"] if same else {}
    for name in args.variants:
        if name in results:
            continue
        results[name] = run_variant(name, ds, families, eval_seqs, eval_fams, args)
        r = results[name]
        print(f"{name}: trained in {r['train_seconds']} s, loss {r['train_loss_last20']:.3f}, kNN top-1 "
              f"{r['knn_top1_trained']}, residual at depth {args.depth}: torch init {r['init_torch'][-1]:.2g}, "
              f"phylocl init {r['init_phylocl'][-1]:.2g}, trained {r['trained'][-1]:.2g}", flush=True)
        with atomic_path(saved) as tmp:
            tmp.write_text(json.dumps({"args": vars(args), "n_eval": len(eval_seqs), "results": results}, indent=1))
    title = (f"rank-collapse residual vs depth: {Path(args.data).name}, {len(eval_seqs)} held-out sequences, "
             f"dim {args.dim}, {args.steps} InfoNCE steps of {args.batch} pairs")
    plot(results, out / "rank-collapse.png", title)
    if args.figure:
        plot(results, Path(args.figure), title)
    (out / "table.md").write_text(table(results, depths=tuple(d for d in (1, 2, 3, 6, 12) if d <= args.depth))
                                  + "\n")
    print(table(results, depths=tuple(d for d in (1, 2, 3, 6, 12) if d <= args.depth)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
