"""Training progress on stderr: optimizer steps out of ``max_steps``, rate, ETA and the latest logged figures.

Lightning's own bar counts batches per epoch, which says little when an epoch is one batch (small datasets) or
thousands; this one counts optimizer steps, the unit of ``trainer.max_steps``. On a terminal it rewrites one line;
in a log file it writes a line at most every 30 s (see :class:`phylocl.progress.Progress`).
"""

from __future__ import annotations

import lightning as L

from phylocl.progress import Progress, format_duration

__all__ = ["StepProgress"]

_SHOWN = ("train/loss", "train/infonce", "train/pos_prob", "train/lr", "val/map_r", "val/auc1")


class _StepBar(Progress):
    detail = ""

    def status(self) -> str:
        elapsed = self.elapsed
        line = f"{self.label}: step {self.done:,}/{self.total:,}"
        if self.done and elapsed > 0:
            rate = self.done / elapsed
            line += f", {rate:.2f} steps/s, {format_duration(elapsed)}"
            if self.done < self.total:
                line += f", ETA {format_duration((self.total - self.done) / rate)}"
        return line + (f" | {self.detail}" if self.detail else "")


class StepProgress(L.Callback):
    """Report training progress by optimizer step (rank 0 only)."""

    def __init__(self, *, label: str = "training") -> None:
        super().__init__()
        self.label = label
        self.bar: _StepBar | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            self.bar = _StepBar(label=self.label, total=int(trainer.max_steps), unit="steps")
            self.bar.done = int(trainer.global_step)  # resumed runs start part-way

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.bar is None:
            return
        metrics = trainer.callback_metrics
        parts = []
        for key in _SHOWN:
            if key in metrics:
                value = float(metrics[key])
                parts.append(f"{key.split('/')[1] if key.startswith('train/') else key} "
                             + (f"{value:.2e}" if key == "train/lr" else f"{value:.3f}"))
        self.bar.detail = ", ".join(parts)
        self.bar.update(int(trainer.global_step) - self.bar.done)

    def on_train_end(self, trainer, pl_module) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_exception(self, trainer, pl_module, exception) -> None:
        if self.bar is not None:
            self.bar.__exit__(type(exception), exception, None)
            self.bar = None
