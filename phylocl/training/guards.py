"""Checks that stop a training run which can only produce a broken model, naming the step.

* :func:`check_finite`: a NaN or infinite loss or gradient norm (divergence: too high a learning rate, no
  gradient clipping) stops training before the optimizer applies it, so the weights stay finite and nothing is
  exported;
* :func:`check_batch`: a global batch of fewer than two families has no negatives; InfoNCE/FlatNCE give loss 0 and
  gradient 0, so the model would not learn and training would still "succeed".

Both raise :class:`TrainingStopped`, an :class:`~phylocl.errors.InputError` (the cause is a config or data
setting), which the CLI prints as one line with exit code 2.
"""

from __future__ import annotations

import math

from phylocl.errors import InputError

__all__ = ["TrainingStopped", "check_finite", "check_batch"]


class TrainingStopped(InputError):
    """Training stopped at ``step`` (1-based optimizer step) because it could only produce a broken model."""

    def __init__(self, message: str, *, step: int) -> None:
        self.step = step
        super().__init__(f"training stopped at step {step}: {message}; no encoder was exported")


def check_finite(what: str, value: float, *, step: int) -> None:
    """Raise :class:`TrainingStopped` when ``value`` (a loss or gradient norm, as a Python float) is NaN or inf."""
    if not math.isfinite(value):
        raise TrainingStopped(f"the {what} is {value} (training diverged; lower optim.lr, set optim.grad_clip or "
                              "use trainer.precision=32-true)", step=step)


def check_batch(rows: int, world_size: int, *, step: int) -> None:
    """Raise :class:`TrainingStopped` when the global batch holds fewer than two families (one pair each)."""
    if rows * world_size < 2:
        raise TrainingStopped(f"a batch of {rows * world_size} family has no negatives (loss 0, gradient 0); give "
                              "data.batch_size >= 2 (and data.token_budget >= 2 x data.max_len) and at least 2 "
                              "training families with two or more sequences",
                              step=step)
