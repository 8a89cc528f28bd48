"""The ``compare:`` section of a ``phylocl compare`` config: which grid of losses x batch sizes x seeds to train.

A compare config is a training config (``data``, ``model``, ``loss``, ``optim``, ``cache``, ``trainer``, ``eval``;
``extends:`` works) plus one more top-level section::

    compare:
      losses: [infonce, flatnce]
      batch_sizes: [8, 16, 32, 64, 128]
      seeds: [0, 1, 2]
      pairs_budget: 16384        # training pairs per cell; steps = pairs_budget // batch_size
      warmup_fraction: 0.05      # optim.warmup_steps = round(warmup_fraction * steps) in every cell
      evaluations: 0             # validation passes per cell for checkpoint selection (0: export the last step)
      reference: {loss: infonce, batch_size: 1024, chunk_size: 64}

Every cell shares the base training config; :mod:`phylocl.workflows.compare` sets the per-cell fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Optional

from phylocl.config import TrainConfig, data_overrides
from phylocl.configtools import ConfigError, apply_overrides, from_dict, load_yaml, locate, to_dict
from phylocl.errors import InputError

__all__ = ["CompareConfig", "ReferenceConfig", "load_compare_config", "resolved_dict"]

LossName = Literal["infonce", "flatnce"]


def _unique(name: str, values: list) -> None:
    if not values:
        raise ValueError(f"compare.{name} must not be empty")
    if len(set(values)) != len(values):
        raise ValueError(f"compare.{name} has repeated values: {values}")


@dataclass
class ReferenceConfig:
    """The large-batch reference cell: ``loss`` at ``batch_size`` pairs per step (capped at the number of training
    families) through cached-embedding gradients in chunks of ``chunk_size``; ``seeds``: default the grid's."""

    enabled: bool = True
    loss: LossName = "infonce"
    batch_size: int = 1024
    chunk_size: int = 64
    seeds: Optional[list[int]] = None

    def __post_init__(self) -> None:
        if self.batch_size < 2:
            raise ValueError(f"compare.reference.batch_size must be >= 2, got {self.batch_size}")
        if self.chunk_size < 1:
            raise ValueError(f"compare.reference.chunk_size must be >= 1, got {self.chunk_size}")
        if self.seeds is not None:
            _unique("reference.seeds", self.seeds)


@dataclass
class CompareConfig:
    """The grid of a comparison (see the module docstring). Validated on construction (``ValueError``)."""

    losses: list[LossName] = field(default_factory=lambda: ["infonce", "flatnce"])
    batch_sizes: list[int] = field(default_factory=lambda: [8, 16, 32, 64, 128])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    pairs_budget: int = 16384
    warmup_fraction: float = 0.05
    evaluations: int = 0
    log_points: int = 100
    dynamics_fraction: float = 0.2
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)

    def __post_init__(self) -> None:
        _unique("losses", self.losses)
        _unique("batch_sizes", self.batch_sizes)
        _unique("seeds", self.seeds)
        if min(self.batch_sizes) < 2:
            raise ValueError(f"compare.batch_sizes must all be >= 2 (a batch needs negatives), got {self.batch_sizes}")
        if min(self.seeds) < 0:
            raise ValueError(f"compare.seeds must be >= 0, got {self.seeds}")
        if self.pairs_budget < max(self.batch_sizes):
            raise ValueError(f"compare.pairs_budget ({self.pairs_budget}) must be at least the largest batch size "
                             f"({max(self.batch_sizes)})")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ValueError(f"compare.warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        if self.evaluations < 0:
            raise ValueError(f"compare.evaluations must be >= 0, got {self.evaluations}")
        if self.log_points < 1:
            raise ValueError(f"compare.log_points must be >= 1, got {self.log_points}")
        if not 0.0 < self.dynamics_fraction <= 0.5:
            raise ValueError(f"compare.dynamics_fraction must be in (0, 0.5], got {self.dynamics_fraction}")

    @property
    def reference_seeds(self) -> list[int]:
        return list(self.seeds if self.reference.seeds is None else self.reference.seeds)


def load_compare_config(config: str | Path | Mapping[str, Any], overrides=(),
                        data: list[str] | None = None) -> tuple[CompareConfig, TrainConfig]:
    """Read a compare config (YAML path or the same mapping), apply ``key=value`` overrides (``compare.seeds=[0]``,
    ``optim.lr=3e-4`` ...) and ``data`` paths (replacing ``data.path``), and validate both parts.

    Returns ``(compare, base)``: the grid and the training config every cell starts from.
    Raises :class:`InputError` naming the file on any problem.
    """
    path = None if isinstance(config, Mapping) else config
    raw, where = (dict(config), {}) if path is None else (load_yaml(path), {"path": path})
    overrides = list(overrides)
    if data:
        overrides += data_overrides(data)
    try:
        raw = apply_overrides(raw, overrides)
        section = raw.pop("compare", None)
        if section is None:
            raise ValueError("no compare: section (losses, batch_sizes, seeds, pairs_budget, reference)")
        grid = from_dict(CompareConfig, section, prefix="compare.")
        base = from_dict(TrainConfig, raw)
    except ConfigError as err:
        raise InputError(f"invalid compare config: {err}", **locate(err, path, overrides)) from None
    except (ValueError, TypeError) as err:
        raise InputError(f"invalid compare config: {err}", **where) from None
    if not base.eval.enabled:
        raise InputError("invalid compare config: eval.enabled must be true (cells are scored on the test families)",
                         **where)
    return grid, base


def resolved_dict(grid: CompareConfig, base: TrainConfig) -> dict:
    """The whole resolved config as plain YAML-safe data (``compare`` first)."""
    return {"compare": to_dict(grid), **to_dict(base)}
