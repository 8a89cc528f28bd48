"""Lightning callback: family-retrieval metrics on the validation families during training (training and retrieval meet here, in workflows).

It collects what the module's ``validation_step`` returns (``{"embeddings": (B, D), "labels": (B,), "index": (B,)}``,
CPU tensors) and, at the end of the validation epoch, scores all-against-all retrieval with
:func:`~phylocl.retrieval.evaluation.evaluate_embeddings`. Nothing passes over the training data again.
Metrics are logged as ``val/top1``, ``val/map_r``, ``val/auc1``, ``val/recall@k``.
"""

from __future__ import annotations

from typing import Sequence

import lightning as L
import numpy as np
import torch

from phylocl.retrieval.evaluation import evaluate_embeddings

__all__ = ["RetrievalMetrics"]


class RetrievalMetrics(L.Callback):
    """Score validation embeddings as a family-retrieval task.

    Args:
        ks: cut-offs for ``recall@k``.
        prefix: metric name prefix.
    """

    def __init__(self, *, ks: Sequence[int] = (1, 10), prefix: str = "val") -> None:
        super().__init__()
        self.ks = tuple(int(k) for k in ks)
        self.prefix = prefix
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
        for name, value in self.last.items():
            # every rank embeds the whole validation set, so every rank logs the same value
            pl_module.log(f"{self.prefix}/{name}", value, prog_bar=name == "map_r", sync_dist=False)
