"""Lightning callback: family-retrieval metrics on the validation families during training (training and retrieval meet here, in workflows).

It collects what the module's ``validation_step`` returns (``{"embeddings": (B, D), "labels": (B,), "index": (B,)}``,
CPU tensors) and, at the end of the validation epoch, scores all-against-all retrieval with
:func:`~phylocl.retrieval.evaluation.evaluate_embeddings`. Nothing passes over the training data again.
Metrics are logged as ``val/top1``, ``val/map_r``, ``val/auc1``, ``val/recall@k``, and the representation health
of the same embeddings (:func:`~phylocl.diagnostics.measures.embedding_health`) as ``val/effective_rank``,
``val/alignment`` (family pairs) and ``val/uniformity``. When the effective rank falls below
``min_rank_fraction`` of ``min(embedding dim, validation families)`` (the rank a healthy set of that many families
can reach) a warning is logged, once per run.
A second validation loader (``OrthologDataModule(train_eval_families=N)``: a fixed sample of training families)
is scored the same way (retrieval figures only) and logged under ``train_fam/``; ``val/pairs_seen`` (optimizer
steps x pairs per step) is the x axis of the learning curves (:mod:`phylocl.workflows.curves`).

:class:`StepProgress` shows training progress as a tqdm bar of optimizer steps (the unit of ``max_steps``).
"""

from __future__ import annotations

import logging
import time
from typing import Sequence

import lightning as L
import numpy as np
import torch

from phylocl.diagnostics.measures import embedding_health
from phylocl.retrieval.evaluation import evaluate_embeddings

__all__ = ["RetrievalMetrics", "StepProgress", "health_metrics"]

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
        prefix: metric name prefix of the first loader (the dev families); ``train_prefix`` that of the second.
        min_rank_fraction: warn (once) when the effective rank is below this fraction of ``min(dim, families)``;
            ``None``: never.
        pairs_per_step: training pairs per optimizer step and rank (``data.batch_size``; nominal with a token
            budget), times the world size for ``<prefix>/pairs_seen``; 0: not logged.
    """

    def __init__(self, *, ks: Sequence[int] = (1, 10, 100, 300), prefix: str = "val", train_prefix: str = "train_fam",
                 min_rank_fraction: float | None = None, pairs_per_step: int = 0) -> None:
        super().__init__()
        if min_rank_fraction is not None and not 0.0 < min_rank_fraction <= 1.0:
            raise ValueError(f"min_rank_fraction must be in (0, 1] or None, got {min_rank_fraction}")
        self.ks = tuple(int(k) for k in ks)
        self.prefixes = (prefix, train_prefix)
        self.pairs_per_step = int(pairs_per_step)
        self.min_rank_fraction = min_rank_fraction
        self.warned = False
        self._parts: list[dict[str, torch.Tensor]] = []
        self.last: dict[str, float] = {}  # the dev figures of the last validation
        self.history: list[dict[str, float]] = []  # every validation: step, pairs_seen and both loaders' figures

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._parts = []

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if outputs is not None:
            self._parts.append({k: v.detach().cpu() for k, v in outputs.items()})

    def _score(self, parts: list[dict[str, torch.Tensor]], *, health: bool, trainer=None) -> dict[str, float]:
        x = torch.cat([p["embeddings"] for p in parts]).numpy().astype(np.float32)  # (N, D)
        labels = torch.cat([p["labels"] for p in parts]).numpy()  # (N,)
        if len(np.unique(labels)) < 2:
            return {}
        m = evaluate_embeddings(x, [str(v) for v in labels], ks=self.ks)
        out = {k: float(m[k]) for k in ("top1", "map_r", "auc1", *(f"recall@{k}" for k in self.ks))}
        if health:  # the dev families: representation health and the collapse warning
            out.update(health_metrics(x, labels))
            self.last = out
            self._check_rank(trainer, x.shape[1], len(np.unique(labels)))
        return out

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or not self._parts:
            return
        # each part is one batch of one loader: 0 = dev families, 1 = the training-family sample
        by_loader = [[p for p in self._parts if int(p["loader"][0]) == i] if "loader" in self._parts[0]
                     else (self._parts if i == 0 else []) for i in (0, 1)]
        self._parts = []
        seen = trainer.global_step * self.pairs_per_step * getattr(trainer, "world_size", 1)
        record = {"step": float(trainer.global_step), "pairs_seen": float(seen)}
        self.last = {}
        for prefix, parts in zip(self.prefixes, by_loader):
            dev = prefix == self.prefixes[0]
            figures = self._score(parts, health=dev, trainer=trainer) if parts else {}
            for name, value in figures.items():
                # every rank embeds the whole validation set, so every rank logs the same value
                pl_module.log(f"{prefix}/{name}", value, prog_bar=name == "map_r" and prefix == self.prefixes[0],
                              sync_dist=False)
                record[f"{prefix}/{name}"] = value
        if self.pairs_per_step and self.last:
            pl_module.log(f"{self.prefixes[0]}/pairs_seen", record["pairs_seen"], sync_dist=False)
        self.history.append(record)

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


_SHOWN = ("train/loss", "train/infonce", "train/pos_prob", "train/lr", "val/map_r", "val/auc1")


class StepProgress(L.Callback):
    """A tqdm bar of optimizer steps out of ``max_steps`` (rate, ETA, the latest logged figures), on rank 0.

    Lightning's own bar counts batches per epoch, which says little when an epoch is one batch (small datasets)
    or thousands. Like every phylocl bar it is silent when stderr is not a terminal; there (a batch job's log
    file) a plain line is logged instead every ``interval`` seconds (default 30) and at the last step:
    ``step 120/1000 (12%), 3.1 steps/s, about 4.7 min left, loss 2.310, ...``.
    """

    def __init__(self, *, label: str = "training", stream=None, interval: float = 30.0) -> None:
        super().__init__()
        self.label, self.stream, self.interval = label, stream, interval
        self.bar = None
        self._last_line = self._start = 0.0
        self._start_step = 0

    def on_train_start(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            from phylocl.workflows import progress_bar

            self.bar = progress_bar(self.label, total=int(trainer.max_steps), unit="step", stream=self.stream)
            self.bar.update(int(trainer.global_step))  # resumed runs start part-way
            self._last_line = self._start = time.monotonic()
            self._start_step = int(trainer.global_step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.bar is None:
            return
        metrics = trainer.callback_metrics
        parts = []
        for key in _SHOWN:
            if key in metrics:
                value = float(metrics[key])
                name = key.split("/")[1] if key.startswith("train/") else key
                parts.append(f"{name} " + (f"{value:.2e}" if key == "train/lr" else f"{value:.3f}"))
        self.bar.set_postfix_str(", ".join(parts), refresh=False)
        self.bar.update(int(trainer.global_step) - self.bar.n)
        if self.bar.disable:
            self._line(int(trainer.global_step), int(trainer.max_steps), parts)

    def _line(self, step: int, total: int, parts: list[str]) -> None:
        """The progress line of a run without a terminal, when ``interval`` seconds have passed (or at the end)."""
        now = time.monotonic()
        if now - self._last_line < self.interval and step < total:
            return
        self._last_line = now
        rate = (step - self._start_step) / max(now - self._start, 1e-9)
        left = f", about {(total - step) / rate / 60:.1f} min left" if rate > 0 and step < total else ""
        log.info("%s: step %d/%d (%d%%), %.2f steps/s%s%s", self.label, step, total, 100 * step // max(total, 1),
                  rate, left, (", " + ", ".join(parts)) if parts else "")

    def on_train_end(self, trainer, pl_module) -> None:
        self._close()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._close()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
