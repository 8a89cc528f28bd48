"""Summary tables and plots of a ``phylocl compare`` study, computed from its result rows only.

* :func:`summarize`: mean and sample standard deviation (``ddof=1``; ``None`` for a single seed) of every numeric
  column per (loss, batch size, reference), and the FlatNCE - InfoNCE difference paired by seed (same seed: same
  initialisation, pair draws and crops).
* :func:`read_curves`: a cell's training curves (gradient norm, positive-pair probability, InfoNCE) from its log.
* :func:`format_summary`: ``summary.md``; :func:`plot_compare` (``compare.png``); :func:`plot_dynamics`
  (``dynamics.png``); :func:`write_report` writes all of them plus ``summary.json``.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from phylocl.atomic import atomic_path

__all__ = ["summarize", "format_summary", "plot_compare", "plot_dynamics", "write_report", "read_curves",
           "SUMMARY_COLUMNS", "DYNAMICS"]

DYNAMICS = ("grad_norm", "pos_prob", "infonce")  # training curves summarised per cell (first / last fraction)

SUMMARY_COLUMNS = ("map_r", "auc1", "top1", "recall@1", "recall@10", "val_map_r", "grad_norm_first",
                   "grad_norm_last", "pos_prob_first", "pos_prob_last", "infonce_first", "infonce_last",
                   "wall_seconds", "effective_rank", "alignment", "uniformity")
LABELS = {"map_r": "MAP@R", "auc1": "AUC1", "top1": "top-1", "recall@1": "recall@1", "recall@10": "recall@10",
          "val_map_r": "val MAP@R", "wall_seconds": "wall (s)", "effective_rank": "effective rank",
          "alignment": "alignment", "uniformity": "uniformity"}


def read_curves(log_csv: Path) -> dict[str, list[tuple[int, float]]]:
    """``(step, value)`` series of ``train/grad_norm``, ``train/pos_prob`` and ``train/infonce`` from a run's
    ``logs/metrics.csv`` (missing file: empty series)."""
    curves: dict[str, list[tuple[int, float]]] = {name: [] for name in DYNAMICS}
    if not log_csv.exists():
        return curves
    with open(log_csv, newline="") as fh:
        for row in csv.DictReader(fh):
            for name in DYNAMICS:
                value = row.get(f"train/{name}")
                if value not in (None, ""):
                    curves[name].append((int(row["step"]), float(value)))
    return curves


def _number(v) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def _stats(values: Sequence[float]) -> dict[str, Any]:
    n = len(values)
    if n == 0:
        return {"n": 0, "mean": None, "std": None}
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return {"n": n, "mean": mean, "std": std}


def summarize(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] = SUMMARY_COLUMNS) -> dict:
    """Group the ``status == "ok"`` rows by (reference, loss, batch size) and pair losses by seed.

    Returns ``{"groups": [{"loss", "batch_size", "reference", "n", "steps", "seeds", "stats": {col: {"n", "mean",
    "std"}}}], "paired": [{"batch_size", "seeds", "stats": {col: ...}}]}``; ``paired`` holds, per batch size,
    statistics of ``flatnce - infonce`` over the seeds where both finished.
    """
    ok = [r for r in rows if r.get("status") == "ok"]
    keys = sorted({(int(r["reference"]), r["loss"], int(r["batch_size"])) for r in ok})
    groups = []
    for ref, loss, b in keys:
        members = [r for r in ok if (int(r["reference"]), r["loss"], int(r["batch_size"])) == (ref, loss, b)]
        stats = {c: _stats([x for x in (_number(r.get(c)) for r in members) if x is not None]) for c in columns}
        groups.append({"loss": loss, "batch_size": b, "reference": bool(ref), "n": len(members),
                       "steps": int(members[0]["steps"]), "seeds": sorted(int(r["seed"]) for r in members),
                       "stats": stats})
    paired = []
    grid = [r for r in ok if not int(r["reference"])]
    for b in sorted({int(r["batch_size"]) for r in grid}):
        by = {(r["loss"], int(r["seed"])): r for r in grid if int(r["batch_size"]) == b}
        seeds = sorted(s for (loss, s) in by if loss == "flatnce" and ("infonce", s) in by)
        if not seeds:
            continue
        stats = {}
        for c in columns:
            diffs = [_number(by["flatnce", s].get(c)) - _number(by["infonce", s].get(c)) for s in seeds
                     if _number(by["flatnce", s].get(c)) is not None and _number(by["infonce", s].get(c)) is not None]
            stats[c] = _stats(diffs)
        paired.append({"batch_size": b, "seeds": seeds, "stats": stats})
    return {"groups": groups, "paired": paired}


def _pm(s: Mapping[str, Any], digits: int = 3, signed: bool = False) -> str:
    if s["mean"] is None:
        return "–"
    fmt = f"{{:{'+' if signed else ''}.{digits}f}}"
    return fmt.format(s["mean"]) + (f" ± {s['std']:.{digits}f}" if s["std"] is not None else "")


def format_summary(summary: Mapping[str, Any], *, title: str = "phylocl compare", notes: Sequence[str] = (),
                   metrics: Sequence[str] = ("map_r", "auc1", "top1", "recall@10")) -> str:
    """Markdown tables of :func:`summarize`'s output: metrics, paired differences, training dynamics."""
    lines = [f"# {title}", "", *[f"- {n}" for n in notes], ""] if notes else [f"# {title}", ""]
    groups = summary["groups"]
    lines += ["Test-family retrieval, mean ± sample std over seeds (n = seeds).", "",
              "| loss | batch | steps | n | " + " | ".join(LABELS.get(m, m) for m in metrics) + " | wall (s) |",
              "|---|---:|---:|---:|" + "---:|" * (len(metrics) + 1)]
    for g in sorted(groups, key=lambda g: (g["reference"], g["loss"], g["batch_size"])):
        loss = f"{g['loss']} (reference, cached)" if g["reference"] else g["loss"]
        cells = [_pm(g["stats"][m]) for m in metrics] + [_pm(g["stats"]["wall_seconds"], 0)]
        lines.append(f"| {loss} | {g['batch_size']} | {g['steps']} | {g['n']} | " + " | ".join(cells) + " |")
    if summary["paired"]:
        lines += ["", "FlatNCE − InfoNCE, paired by seed (same initialisation, pairs and crops): mean ± std of the "
                  "per-seed differences.", "",
                  "| batch | seeds | " + " | ".join(f"Δ {LABELS.get(m, m)}" for m in metrics) + " |",
                  "|---:|---:|" + "---:|" * len(metrics)]
        for p in summary["paired"]:
            lines.append(f"| {p['batch_size']} | {len(p['seeds'])} | "
                         + " | ".join(_pm(p["stats"][m], signed=True) for m in metrics) + " |")
    lines += ["", "Training dynamics: mean over the first / last part of training of the gradient norm (before "
              "clipping) and of the softmax probability of the positive pair.", "",
              "| loss | batch | grad norm, first | grad norm, last | pos prob, first | pos prob, last |",
              "|---|---:|---:|---:|---:|---:|"]
    for g in sorted(groups, key=lambda g: (g["reference"], g["loss"], g["batch_size"])):
        s = g["stats"]
        loss = f"{g['loss']} (reference)" if g["reference"] else g["loss"]
        lines.append(f"| {loss} | {g['batch_size']} | {_pm(s['grad_norm_first'])} | {_pm(s['grad_norm_last'])} | "
                     f"{_pm(s['pos_prob_first'])} | {_pm(s['pos_prob_last'])} |")
    lines += _health_table(groups)
    return "\n".join(lines) + "\n"


def _health_table(groups) -> list[str]:
    """Effective rank, alignment and uniformity of the test embeddings (empty when no cell measured them)."""
    if not any(g["stats"].get("effective_rank", {}).get("mean") is not None for g in groups):
        return []
    lines = ["", "Representation health of the test embeddings (`phylocl diagnose`'s measures): effective rank "
             "(of the embedding dimension), alignment of family pairs (lower = tighter families), uniformity "
             "(lower = more spread).", "",
             "| loss | batch | effective rank | alignment | uniformity |", "|---|---:|---:|---:|---:|"]
    for g in sorted(groups, key=lambda g: (g["reference"], g["loss"], g["batch_size"])):
        s = g["stats"]
        loss = f"{g['loss']} (reference)" if g["reference"] else g["loss"]
        lines.append(f"| {loss} | {g['batch_size']} | {_pm(s['effective_rank'], 1)} | {_pm(s['alignment'])} | "
                     f"{_pm(s['uniformity'])} |")
    return lines


def plot_compare(summary: Mapping[str, Any], path: Path, *, metrics=("map_r", "auc1"), title: str = "") -> None:
    """Metric vs batch size (log2 axis), one line per loss with ± std error bars; the reference as a horizontal
    line with a ± std band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 4.0), squeeze=False)
    groups = summary["groups"]
    batches = sorted({g["batch_size"] for g in groups if not g["reference"]})
    for ax, m in zip(axes[0], metrics):
        for k, loss in enumerate(sorted({g["loss"] for g in groups if not g["reference"]})):
            gs = sorted((g for g in groups if g["loss"] == loss and not g["reference"]
                         and g["stats"][m]["mean"] is not None), key=lambda g: g["batch_size"])
            x = [g["batch_size"] * (1.0 + 0.03 * (k - 0.5)) for g in gs]  # nudge apart so error bars stay visible
            y = [g["stats"][m]["mean"] for g in gs]
            err = [g["stats"][m]["std"] or 0.0 for g in gs]
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=loss)
        for g in (g for g in groups if g["reference"] and g["stats"][m]["mean"] is not None):
            mean, std = g["stats"][m]["mean"], g["stats"][m]["std"] or 0.0
            line = ax.axhline(mean, linestyle="--", color="gray", label=f"{g['loss']}, batch {g['batch_size']} "
                                                                       "(cached reference)")
            if std:
                ax.axhspan(mean - std, mean + std, color=line.get_color(), alpha=0.15)
        ax.set_xscale("log", base=2)
        if batches:
            ax.set_xticks(batches, [str(b) for b in batches])
        ax.set_xlabel("batch size (pairs per step; equal pairs seen per run)")
        ax.set_ylabel(f"test {LABELS.get(m, m)}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def _smooth(values: list[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_dynamics(curves: Mapping[tuple[str, int], Mapping[str, list]], path: Path, *, title: str = "") -> None:
    """Gradient norm and positive-pair probability vs step; ``curves[(loss, batch)]`` holds ``read_curves`` series.
    One column per batch size, one line per loss (trailing mean over ~5% of the points)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batches = sorted({b for _, b in curves})
    fig, axes = plt.subplots(2, len(batches), figsize=(5.0 * len(batches), 6.5), squeeze=False)
    for j, b in enumerate(batches):
        for loss in sorted({loss for loss, bb in curves if bb == b}):
            for i, name in enumerate(("grad_norm", "pos_prob")):
                series = curves[loss, b][name]
                if not series:
                    continue
                steps, values = zip(*series)
                axes[i][j].plot(steps, _smooth(list(values), max(1, len(values) // 20)), label=loss)
        axes[0][j].set_title(f"batch {b}")
        axes[0][j].set_ylabel("gradient norm (before clipping)")
        axes[1][j].set_ylabel("p(positive) in the softmax")
        axes[1][j].set_xlabel("step")
        for i in range(2):
            axes[i][j].grid(alpha=0.3)
            axes[i][j].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def write_report(out: Path, rows: Sequence[Mapping[str, Any]], *, grid, base, split: Mapping[str, Any],
                 cell_dirs: Mapping[str, Path], plots: bool = True) -> dict:
    """Write ``summary.json``, ``summary.md`` and, with ``plots`` (once a cell finished), ``compare.png`` and
    ``dynamics.png``.

    ``dynamics.png`` shows, at the smallest and the largest batch size that finished, each loss's first seed that
    finished there.
    """

    ks = list(base.eval.ks)
    columns = ["map_r", "auc1", "top1", *(f"recall@{k}" for k in ks), *SUMMARY_COLUMNS[5:]]
    summary = summarize(rows, columns)
    ok = [r for r in rows if r.get("status") == "ok"]
    inputs = [p for p in [base.data.path, *base.data.paths] if p]  # data.paths alone: no empty first input
    data, name = ", ".join(inputs), Path(inputs[0]).name if inputs else ""
    done = sum(float(r["wall_seconds"]) for r in ok if _number(r.get("wall_seconds")) is not None)
    devices = sorted({r.get("device", "") for r in ok if r.get("device")})
    notes = [f"data: {data} ({split.get('alphabet')}); families train/val/test {split.get('train_families')}/"
             f"{split.get('val_families')}/{split.get('test_families')}, test sequences "
             f"{split.get('test_sequences')}" + (f", split by {base.data.group_column}" if base.data.group_column
                                                else ""),
             f"model: {base.model.name}{' ' + json.dumps(base.model.overrides) if base.model.overrides else ''}; crops of "
             f"{base.data.max_len}; temperature {base.loss.temperature}; lr {base.optim.lr}",
             f"pairs per run: {grid.pairs_budget}; checkpoint: "
             + (f"best of {grid.evaluations} validations" if grid.evaluations else "last step (no selection)"),
             f"cells: {len(ok)} ok, {sum(r.get('status') == 'failed' for r in rows)} failed, "
             f"{sum(r.get('status') == 'skipped' for r in rows)} skipped, "
             f"{sum(r.get('status') not in ('ok', 'failed', 'skipped') for r in rows)} pending; training wall time "
             f"{done / 3600:.2f} h on {'; '.join(devices) or '-'}"]
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    with atomic_path(out / "summary.md") as tmp:
        tmp.write_text(format_summary(summary, title=f"FlatNCE vs InfoNCE: {name}",
                                      notes=notes, metrics=["map_r", "auc1", "top1", f"recall@{max(ks)}"]))
    grid_ok = [r for r in ok if not int(r["reference"])]
    if grid_ok and plots:
        plot_compare(summary, out / "compare.png", title=f"{name}: {grid.pairs_budget} pairs per run")
        batches = sorted({int(r["batch_size"]) for r in grid_ok})
        first: dict[tuple[str, int], Mapping[str, Any]] = {}  # (loss, batch) -> its finished row of the lowest seed
        for r in sorted(grid_ok, key=lambda r: int(r["seed"])):
            if int(r["batch_size"]) in (batches[0], batches[-1]):
                first.setdefault((r["loss"], int(r["batch_size"])), r)
        curves = {key: read_curves(cell_dirs[r["cell"]] / "logs" / "metrics.csv") for key, r in first.items()}
        seeds = sorted({int(r["seed"]) for r in first.values()})
        plot_dynamics(curves, out / "dynamics.png", title=f"{name}: seed {seeds[0]}" if len(seeds) == 1 else
                      f"{name}: first finished seed of each ({', '.join(map(str, seeds))})")
    return summary
