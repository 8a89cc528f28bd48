"""Lightning callback: family-retrieval metrics on the validation families during training (training and retrieval meet here, in workflows).

It collects what the module's ``validation_step`` returns (``{"embeddings": (B, D), "labels": (B,), "index": (B,)}``,
CPU tensors) and, at the end of the validation epoch, scores all-against-all retrieval with
:func:`~phylocl.retrieval.evaluation.evaluate_embeddings`. Nothing passes over the training data again.
Metrics are logged as ``val/top1``, ``val/map_r``, ``val/auc1``, ``val/recall@k``, and the representation health
of the same embeddings (:func:`~phylocl.diagnostics.measures.embedding_health`) as ``val/effective_rank``,
``val/alignment`` (family pairs) and ``val/uniformity``. When the effective rank falls below
``min_rank_fraction`` of ``min(embedding dim, validation families)`` (the rank a healthy set of that many families
can reach) a warning is logged, once per run.
"""

from __future__ import annotations

import logging
from typing import Sequence

import lightning as L
import numpy as np
import torch

from phylocl.diagnostics.measures import embedding_health
from phylocl.retrieval.evaluation import evaluate_embeddings

__all__ = ["RetrievalMetrics", "health_metrics"]

log = logging.getLogger(__name__)


def health_metrics(x: np.ndarray, labels) -> dict[str, float]:
    """``effective_rank``, ``uniformity`` and (when some family has two members) ``alignment`` of ``x`` ``(N, D)``."""
    h = embedding_health(x, labels)
    out = {"effective_rank": h["effective_rank"], "uniformity": h["uniformity"]}
    if h["alignment"] is not None:
        out["alignment"] = h["alignment"]
    return out


class RetrievalMetrics(L.Callback):
    """Score validation embeddings as a family-retrieval task.

    Args:
        ks: cut-offs for ``recall@k``.
        prefix: metric name prefix.
        min_rank_fraction: warn (once) when the effective rank is below this fraction of ``min(dim, families)``;
            ``None``: never.
    """

    def __init__(self, *, ks: Sequence[int] = (1, 10), prefix: str = "val",
                 min_rank_fraction: float | None = None) -> None:
        super().__init__()
        if min_rank_fraction is not None and not 0.0 < min_rank_fraction <= 1.0:
            raise ValueError(f"min_rank_fraction must be in (0, 1] or None, got {min_rank_fraction}")
        self.ks = tuple(int(k) for k in ks)
        self.prefix = prefix
        self.min_rank_fraction = min_rank_fraction
        self.warned = False
        self._parts: list[dict[str, torch.Tensor]] = []
        self.last: dict[str, float] = {}

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._parts = []

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if outputs is not None:
            self._parts.append({k: v.detach().cpu() for k, v in outputs.items()})

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or not self._parts:
            return
        x = torch.cat([p["embeddings"] for p in self._parts]).numpy().astype(np.float32)  # (N, D)
        labels = torch.cat([p["labels"] for p in self._parts]).numpy()  # (N,)
        self._parts = []
        if len(np.unique(labels)) < 2:
            return
        m = evaluate_embeddings(x, [str(v) for v in labels], ks=self.ks)
        self.last = {k: float(m[k]) for k in ("top1", "map_r", "auc1", *(f"recall@{k}" for k in self.ks))}
        self.last.update(health_metrics(x, labels))
        self._check_rank(trainer, x.shape[1], len(np.unique(labels)))
        for name, value in self.last.items():
            # every rank embeds the whole validation set, so every rank logs the same value
            pl_module.log(f"{self.prefix}/{name}", value, prog_bar=name == "map_r", sync_dist=False)

    def _check_rank(self, trainer, dim: int, families: int) -> None:
        if self.min_rank_fraction is None or self.warned:
            return
        ceiling = min(dim, families)
        rank = self.last["effective_rank"]
        if rank < self.min_rank_fraction * ceiling:
            self.warned = True
            log.warning("step %d: effective rank of the validation embeddings is %.2f, below %.2f x min(dim %d, "
                        "%d validation families): the embeddings are collapsing into few directions (warned "
                        "once; eval.min_effective_rank_fraction sets the threshold)", trainer.global_step, rank,
                        self.min_rank_fraction, dim, families)
