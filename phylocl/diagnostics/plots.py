"""Figures of ``phylocl diagnose -o DIR``: residual against depth, singular-value spectrum, 2-D map by family.

Each function writes one PNG atomically (matplotlib, Agg backend).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np

from phylocl.atomic import atomic_path

__all__ = ["plot_residuals", "plot_spectrum", "plot_family_map"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    _pyplot().close(fig)


def plot_residuals(curves: dict[str, Sequence[float]], path: Path, *, title: str = "") -> None:
    """Residual against depth, one line per entry of ``curves`` (``depth + 1`` values each: input, then blocks);
    linear axis from 0 to 1, or logarithmic when some value is below 0.01."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    for name, values in curves.items():
        ax.plot(range(len(values)), values, marker="o", markersize=3, label=name)
    ax.set_xlabel("depth (0 = block input: token embeddings)")
    ax.set_ylabel("rank-collapse residual ||X - 1x^T||_F / ||X||_F")
    low = min((v for values in curves.values() for v in values), default=1.0)
    if low < 0.01:  # values spanning decades (a collapsing stack): log axis, exact zeros at a floor
        ax.set_yscale("log")
        ax.set_ylim(bottom=max(low, 1e-9))
    else:
        ax.set_ylim(0.0, 1.05)
    ax.grid(alpha=0.3, which="both")
    if len(curves) > 1:
        ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def plot_spectrum(singular: np.ndarray, path: Path, *, title: str = "") -> None:
    """Singular values of the embedding matrix, normalised to sum 1, against their rank (log scale)."""
    plt = _pyplot()
    s = np.asarray(singular, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    ax.plot(np.arange(1, len(s) + 1), s / max(s.sum(), 1e-300), marker=".")
    ax.set_yscale("log")
    ax.set_xlabel("rank")
    ax.set_ylabel("normalised singular value")
    ax.grid(alpha=0.3, which="both")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def plot_family_map(z: np.ndarray, labels: Sequence[str], path: Path, *, top: int = 12, title: str = "") -> None:
    """First two principal components of ``z``; the ``top`` largest families in colour, the others grey."""
    from sklearn.decomposition import PCA

    plt = _pyplot()
    z = np.asarray(z, dtype=np.float64)
    xy = PCA(n_components=2, random_state=0).fit_transform(z) if min(z.shape) >= 2 else np.zeros((len(z), 2))
    labels = [str(v) for v in labels]
    shown = [f for f, _ in Counter(labels).most_common(top)]
    fig, ax = plt.subplots(figsize=(6.0, 5.0))
    rest = np.array([lab not in shown for lab in labels])
    ax.scatter(xy[rest, 0], xy[rest, 1], s=4, c="lightgray", label="other families" if rest.any() else None)
    cmap = plt.get_cmap("tab20")
    for k, fam in enumerate(shown):
        sel = np.array([lab == fam for lab in labels])
        ax.scatter(xy[sel, 0], xy[sel, 1], s=10, color=cmap(k % 20), label=fam[:24])
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.legend(fontsize=6, markerscale=1.5, loc="best")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)
