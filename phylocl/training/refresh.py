"""Lightning callback: re-embed family centroids with the current encoder and refresh hard-negative batches.

Every ``every`` optimizer steps (ANCE-style), the bounded per-family sample of
:class:`~phylocl.data.hardbatches.HardNegatives` (``data.refresh_members`` sequences per family, deterministic
crops) is embedded in eval mode without gradients, the centroids' nearest neighbours are recomputed, and the live
batch sampler draws its next batches from the new table. Under DDP rank 0's embeddings are broadcast so every rank
holds the same table (batches stay disjoint across ranks). Logs ``train/neighbours_changed`` (fraction of
neighbour-list entries replaced) and ``train/refresh_s`` (seconds spent).

The table in force is saved in checkpoints (the datamodule's state, :meth:`HardNegatives.state_dict
<phylocl.data.hardbatches.HardNegatives.state_dict>`), so a resumed run draws the batches of an uninterrupted one. A
checkpoint without it (phylocl 0.5.0 and earlier) taken after a refresh resumes with the table recomputed at once
by the checkpoint's encoder, with a note: its batches differ from the uninterrupted run's from there on.
"""

from __future__ import annotations

import logging
import time

import lightning as L
import numpy as np
import torch

__all__ = ["NeighbourRefresh", "embed_dataset"]


def embed_dataset(encoder, loader, n: int) -> np.ndarray:
    """``(n, D)`` float32 embeddings of an evaluation loader's items (``{"tokens", "index"}`` batches), in item
    order, computed in eval mode without gradients (the encoder's mode is restored)."""
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    x = np.empty((n, encoder.embed_dim), dtype=np.float32)
    with torch.no_grad():
        for batch in loader:
            tokens = {k: v.to(device) for k, v in batch["tokens"].items()}
            x[batch["index"].numpy()] = encoder(tokens).float().cpu().numpy()  # (B, D)
    encoder.train(was_training)
    return x


class NeighbourRefresh(L.Callback):
    """Refresh the datamodule's hard-negative neighbours every ``every`` steps (see module doc)."""

    def __init__(self, *, every: int) -> None:
        super().__init__()
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every = int(every)
        self._done_at = -1
        self.history: list[tuple[int, float]] = []  # (step, fraction of neighbours changed)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        step = trainer.global_step
        dm = trainer.datamodule
        hard = getattr(dm, "hard", None)
        if hard is None or step == self._done_at:
            return
        due = step > 0 and step % self.every == 0
        if getattr(dm, "hard_state_missing", False):  # resumed from a checkpoint of phylocl 0.5.0 or earlier: no table
            dm.hard_state_missing = False
            if step > self.every:  # refreshes came before it: recompute the table now
                due = True
                if trainer.is_global_zero:
                    logging.getLogger("phylocl").warning(
                        "note: the checkpoint holds no hard-negative neighbour table (an earlier phylocl): "
                        "recomputed with its encoder at step %d; the batches from here on differ from an "
                        "uninterrupted run's", step)
        if not due:
            return
        self._done_at = step
        started = time.perf_counter()
        sample = dm.train_set.subset(hard.rows)
        x = embed_dataset(pl_module.encoder, dm.eval_dataloader(sample), len(sample))
        if trainer.world_size > 1:
            x = trainer.strategy.broadcast(x, src=0)
        changed = hard.refresh(x, step=step)
        self.history.append((step, changed))
        if trainer.logger is not None:  # straight to the logger: one row at this step (rank 0 writes)
            trainer.logger.log_metrics({"train/neighbours_changed": changed,
                                        "train/refresh_s": time.perf_counter() - started}, step=step)
