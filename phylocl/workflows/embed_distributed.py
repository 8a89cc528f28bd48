"""Embedding on several devices or nodes through Lightning's prediction loop (``phylocl embed --devices/--num-nodes``).

Every process (rank) of a ``Trainer(strategy="ddp", devices=N, num_nodes=M)`` reads the whole input and embeds
the shards ``k`` with ``k % world_size == rank`` (:func:`~phylocl.workflows.shards.write_shards`) into the one
shard folder ``<out>.shards`` (on a file system all nodes share); after a barrier rank 0 merges the shards into
``out``. The shards are the ones a single process writes, so the file is the same whatever the number of
processes, and a rerun skips the shards any rank finished. A rank that fails (a bad record, which every rank meets)
waits for the others at the end of its shards; every rank stops there and rank 0 reports the failure, once
(:mod:`~phylocl.workflows.rank_failures`).

Processes: with ``devices > 1`` on one machine Lightning starts the other ranks itself (it re-runs the same
command); under ``torchrun``, SLURM or any launcher that sets ``LOCAL_RANK`` / ``NODE_RANK`` / ``WORLD_SIZE``, each
launched process runs the command once. Rank 0's :class:`~phylocl.workflows.embed.EmbedResult` counts the rows;
the other ranks return ``n = 0``.
"""

from __future__ import annotations

from typing import Callable, Iterable

import lightning as L
import torch

from phylocl.workflows.rank_failures import raise_together
from phylocl.workflows.shards import ShardFolder, write_shards

__all__ = ["ShardPredictor", "predict_shards"]


class ShardPredictor(L.LightningModule):
    """One prediction step per rank: embed this rank's shards of ``items()`` into the shard folder.

    Args:
        embedder: a :class:`~phylocl.workflows.model_spec.ResolvedModel` (its encoder is moved to the rank's device).
        items: a function returning a fresh iterator of ``(id, sequence, label)`` items (the whole input).
        out, settings: the output file and the shard settings (see :class:`~phylocl.workflows.shards.ShardFolder`).
        shard_size, buffer_size, batch_size, with_labels: as in :func:`~phylocl.workflows.embed.embed`.
    """

    def __init__(self, *, embedder, items: Callable[[], Iterable], out, settings: dict, shard_size: int,
                 buffer_size: int, batch_size: int, with_labels: bool) -> None:
        super().__init__()
        self.embedder, self.items, self.out, self.settings = embedder, items, out, settings
        self.sizes = {"shard_size": shard_size, "buffer_size": buffer_size, "batch_size": batch_size}
        self.with_labels = with_labels
        self.shards: ShardFolder | None = None
        self.n_shards = 0

    def setup(self, stage: str) -> None:
        if self.embedder.is_encoder:
            self.embedder.model.to(self.device)
            self.embedder.device = str(self.device)
        error = None
        if self.trainer.global_rank == 0:  # rank 0 alone discards stale shards, the others wait for it
            try:
                ShardFolder(out=self.out, settings=self.settings)
            except Exception as err:
                error = err
        raise_together(error)  # (the barrier: every rank stops, one reports, when rank 0 could not make the folder)
        self.shards = ShardFolder(out=self.out, settings=self.settings, create=False)

    def predict_dataloader(self):
        return torch.utils.data.DataLoader([0], batch_size=None)  # one step: this rank's shards

    def predict_step(self, batch, batch_idx: int) -> None:
        error = None
        try:
            self.n_shards = write_shards(self.items(), self.embedder, self.shards, with_labels=self.with_labels,
                                         rank=self.trainer.global_rank, world_size=self.trainer.world_size,
                                         **self.sizes)
        except Exception as err:  # a bad record (met by every rank: each reads the whole input), a full disk
            error = err
        raise_together(error)  # every rank stops on it, rank 0 reports it once


def predict_shards(module: ShardPredictor, *, device: str | None, devices: int, num_nodes: int) -> tuple[int, int]:
    """Run ``module`` on ``devices`` x ``num_nodes`` processes; returns ``(rank, number of shards)`` after all
    ranks finished writing (a barrier)."""
    from phylocl.workflows.train_checks import lightning_errors

    accelerator = {"cpu": "cpu", None: "auto"}.get(device, "gpu")
    with lightning_errors("--devices/--num-nodes"):  # more GPUs than the machine has: one line, not a traceback
        trainer = L.Trainer(accelerator=accelerator, devices=devices, num_nodes=num_nodes,
                            strategy="ddp" if devices * num_nodes > 1 else "auto", logger=False,
                            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                            use_distributed_sampler=False)
    try:
        trainer.predict(module, return_predictions=False)
    except SystemExit:  # Lightning exits with status 1 after its own handling of Ctrl-C / SIGTERM
        if trainer.interrupted:
            from phylocl.workflows.train_checks import interruption_kind

            raise interruption_kind(trainer)("embedding stopped; the same command continues from the shards "
                                             "written") from None
        raise
    trainer.strategy.barrier("phylocl-shards-written")
    return trainer.global_rank, module.n_shards
