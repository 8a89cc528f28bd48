"""The training configuration: nested dataclasses, read from YAML once, overridable with ``--set key=value``.

Sections: ``data`` (:class:`phylocl.data.datamodule.DataConfig`), ``model``, ``loss``, ``optim``, ``cache``,
``trainer``, ``eval``. ``phylocl train`` writes the resolved config next to the exported encoder, so every run can be
repeated with ``phylocl train --config DIR/config.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

from phylocl.configtools import apply_overrides, from_dict, load_yaml, to_dict
from phylocl.data.dataconfig import DataConfig
from phylocl.errors import InputError

__all__ = ["ModelConfig", "LossConfig", "OptimConfig", "CacheConfig", "TrainerConfig", "EvalConfig",
           "TrainConfig", "load_config"]


@dataclass
class ModelConfig:
    """Which encoder to build: a registered name plus overrides of its fields (``dim``, ``depth``, ``dropout`` ...)."""

    name: str = "gmlp-small"
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class LossConfig:
    """Contrastive loss. ``name``: ``infonce`` or ``flatnce``; ``temperature`` divides cosine similarities."""

    name: Literal["infonce", "flatnce"] = "infonce"
    temperature: float = 0.1
    learn_temperature: bool = False
    symmetric: bool = True
    chunk_size: Optional[int] = None  # compute the B×B similarities in row chunks of this size

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError(f"loss.temperature must be > 0, got {self.temperature}")
        if self.learn_temperature and self.name != "infonce":
            raise ValueError("loss.learn_temperature is only supported with loss.name=infonce")


@dataclass
class OptimConfig:
    """AdamW with linear warm-up then cosine decay to ``lr * min_lr_ratio``; gradient-norm clipping."""

    lr: float = 1e-3
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-8
    warmup_steps: int = 100
    min_lr_ratio: float = 0.05
    grad_clip: Optional[float] = 1.0

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"optim.lr must be > 0, got {self.lr}")
        if self.warmup_steps < 0:
            raise ValueError(f"optim.warmup_steps must be >= 0, got {self.warmup_steps}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"optim.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"optim.grad_clip must be > 0 or null, got {self.grad_clip}")


@dataclass
class CacheConfig:
    """Cached-embedding gradient accumulation (GradCache). Off: one forward/backward over the whole batch."""

    enabled: bool = False
    chunk_size: int = 64
    token_budget: Optional[int] = None

    def __post_init__(self) -> None:
        if self.chunk_size < 1:
            raise ValueError(f"cache.chunk_size must be >= 1, got {self.chunk_size}")
        if self.token_budget is not None and self.token_budget < 1:
            raise ValueError(f"cache.token_budget must be >= 1 or null, got {self.token_budget}")


@dataclass
class TrainerConfig:
    """Lightning Trainer settings (``devices``/``num_nodes`` > 1 run DDP)."""

    max_steps: int = 1000
    precision: str = "32-true"
    accelerator: str = "auto"
    devices: Any = 1
    num_nodes: int = 1
    strategy: str = "auto"
    seed: int = 0
    log_every_n_steps: int = 10
    val_every_n_steps: int = 200
    progress_bar: bool = True
    deterministic: bool = False

    def __post_init__(self) -> None:
        if self.max_steps < 1:
            raise ValueError(f"trainer.max_steps must be >= 1, got {self.max_steps}")
        if self.val_every_n_steps < 1:
            raise ValueError(f"trainer.val_every_n_steps must be >= 1, got {self.val_every_n_steps}")


@dataclass
class EvalConfig:
    """Retrieval metrics on the validation families during training; ``train_families``: also score a fixed,
    seeded sample of that many *training* families at each validation (logged as ``train_fam/...``), so that
    learning curves separate learning (dev rises) from memorising (only training families rise); 0: off."""

    enabled: bool = True
    ks: list[int] = field(default_factory=lambda: [1, 10])
    monitor: str = "map_r"  # checkpoint selection metric (higher is better)
    train_families: int = 200

    def __post_init__(self) -> None:
        if self.train_families < 0:
            raise ValueError(f"eval.train_families must be >= 0 (0: off), got {self.train_families}")


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict:
        return to_dict(self)


def load_config(config: "TrainConfig | str | Path | None" = None,
                overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Resolve a config: a YAML path (``None`` = all defaults) or a :class:`TrainConfig`, plus ``key=value``
    overrides, validated.

    Raises :class:`InputError` naming the file (or the override) on any problem.
    """
    if isinstance(config, TrainConfig):
        data, where = to_dict(config), {}
    elif config is not None:
        data, where = load_yaml(config), {"path": config}
    else:
        data, where = {}, {}
    try:
        data = apply_overrides(data, overrides)
        return from_dict(TrainConfig, data)
    except (ValueError, TypeError) as err:
        raise InputError(f"invalid config: {err}", **where) from None
