"""The training configuration: nested dataclasses, read from YAML once, overridable with ``--set key=value``.

Sections: ``data`` (:class:`phylocl.data.datamodule.DataConfig`), ``model``, ``loss``, ``optim``, ``cache``,
``trainer``, ``eval``. ``phylocl train`` writes the resolved config next to the exported encoder, so every run can be
repeated with ``phylocl train --config DIR/config.yaml``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

from phylocl.configtools import ConfigError, apply_overrides, from_dict, load_yaml, locate, to_dict
from phylocl.data.dataconfig import DataConfig
from phylocl.errors import InputError

__all__ = ["ModelConfig", "LossConfig", "OptimConfig", "CacheConfig", "TrainerConfig", "EvalConfig",
           "TrainConfig", "load_config", "data_overrides"]


@dataclass
class ModelConfig:
    """Which encoder to build: a registered name plus overrides of its fields (``dim``, ``depth``, ``dropout`` ...)."""

    name: str = "gmlp-small"
    overrides: dict[str, Any] = field(default_factory=dict)


_MIN_TEMPERATURE = 1e-30  # phylocl.losses.logits.MIN_TEMPERATURE (not imported: configs load without torch)
_MAX_SCALE = 100.0  # InfoNCE's default max_scale, which phylocl train uses


@dataclass
class LossConfig:
    """Contrastive loss. ``name``: ``infonce`` or ``flatnce``; ``temperature`` divides cosine similarities.

    Encoders with mixture-of-experts layers add ``moe_balance_weight`` × Switch's load-balancing loss and
    ``moe_z_weight`` × the router z-loss (:mod:`phylocl.training.router_loss`); other encoders ignore both.
    """

    name: Literal["infonce", "flatnce"] = "infonce"
    temperature: float = 0.1
    learn_temperature: bool = False
    symmetric: bool = True
    chunk_size: Optional[int] = None  # compute the B×B similarities in row chunks of this size
    moe_balance_weight: float = 0.01  # Switch Transformers' alpha
    moe_z_weight: float = 0.001  # ST-MoE's router z-loss weight
    window: int = 0  # > 0: late interaction, a pair scored by its best pair of windows of this many residues
    # (phylocl.losses.late_interaction: what a windowed search ranks by); 0: one embedding per view
    window_stride: int = 0  # with window: 0 = tiles, as search cuts them (window - word span + 1 for k-mer
    # profile encoders, else window // 2)

    def __post_init__(self) -> None:
        if not self.temperature >= _MIN_TEMPERATURE:  # InfoNCE/FlatNCE refuse it too, with a traceback here
            raise ValueError(f"loss.temperature must be >= {_MIN_TEMPERATURE:g} (1 / temperature overflows the "
                             f"logits below it), got {self.temperature}")
        if self.learn_temperature and self.temperature < 1.0 / _MAX_SCALE:
            raise ValueError(f"loss.temperature must be >= {1.0 / _MAX_SCALE:g} with loss.learn_temperature (the "
                             f"learned temperature is clamped at 1 / max_scale = {1.0 / _MAX_SCALE:g}), got "
                             f"{self.temperature}")
        if self.window < 0 or self.window_stride < 0 or (self.window and self.window_stride > self.window):
            raise ValueError(f"loss.window ({self.window}) and loss.window_stride ({self.window_stride}) must be "
                             f">= 0, the stride at most the window")
        for key in ("moe_balance_weight", "moe_z_weight"):
            if getattr(self, key) < 0:
                raise ValueError(f"loss.{key} must be >= 0, got {getattr(self, key)}")
        if self.learn_temperature and self.name != "infonce":
            raise ValueError("loss.learn_temperature is only supported with loss.name=infonce")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ValueError(f"loss.chunk_size must be >= 1 or null, got {self.chunk_size}")


_FLOAT32_MAX = 3.4028234663852886e38
_FLOAT32_TINY = 1.1754943508222875e-38


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
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"optim.betas must be two numbers in [0, 1), got {list(self.betas)}")
        # AdamW's first step moves a weight by lr / (1 - beta1) and decays it by lr * weight_decay, in float32
        if self.lr / (1 - self.betas[0]) > _FLOAT32_MAX or self.lr * self.weight_decay > _FLOAT32_MAX:
            raise ValueError(f"optim.lr {self.lr:g} is too large: AdamW's step lr / (1 - betas[0]) or its decay "
                             f"lr x weight_decay overflows float32 (max {_FLOAT32_MAX:.3g})")
        if self.weight_decay < 0:  # AdamW takes it without a word and grows every weight
            raise ValueError(f"optim.weight_decay must be >= 0, got {self.weight_decay}")
        if not self.eps >= _FLOAT32_TINY:  # added in float32: smaller is 0 there, and 0 / 0 makes NaN weights
            raise ValueError(f"optim.eps must be >= {_FLOAT32_TINY:.3g} (the smallest normal float32), got {self.eps}")
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


PRECISIONS = ("32-true", "32", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true", "64", "16", "bf16")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")


def _valid_devices(devices) -> bool:
    """What Lightning accepts as ``devices``: ``"auto"``, ``-1``, a count ``>= 1``, indices (list or ``"0,1"``)."""
    if isinstance(devices, bool):
        return False
    if isinstance(devices, int):
        return devices == -1 or devices >= 1
    if isinstance(devices, (list, tuple)):
        return bool(devices) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in devices)
    if isinstance(devices, str):
        text = devices.strip()
        if text in ("auto", "-1"):
            return True
        parts = [p.strip() for p in text.split(",") if p.strip()]
        return bool(parts) and all(p.isdigit() for p in parts) and (len(parts) > 1 or text.endswith(",")
                                                                     or int(parts[0]) >= 1)
    return False


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
    # checkpoints/last.ckpt also every N optimizer steps between validations (a SIGKILL loses at most N); 0/null: off
    checkpoint_every_n_steps: Optional[int] = 50
    progress_bar: bool = True
    deterministic: bool = False

    def __post_init__(self) -> None:
        if self.max_steps < 1:
            raise ValueError(f"trainer.max_steps must be >= 1, got {self.max_steps}")
        if self.val_every_n_steps < 1:
            raise ValueError(f"trainer.val_every_n_steps must be >= 1, got {self.val_every_n_steps}")
        if str(self.precision) not in PRECISIONS:
            raise ValueError(f"trainer.precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if str(self.accelerator).lower() not in ACCELERATORS:
            raise ValueError(f"trainer.accelerator must be one of {', '.join(ACCELERATORS)}, got {self.accelerator!r}")
        if not _valid_devices(self.devices):
            raise ValueError("trainer.devices must be a count >= 1, -1 (all), 'auto', or a list of device indices "
                             f"such as [0, 1], got {self.devices!r}")
        for name in ("num_nodes", "log_every_n_steps"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"trainer.{name} must be an integer >= 1, got {getattr(self, name)!r}")
        every = self.checkpoint_every_n_steps
        if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 0):
            raise ValueError(f"trainer.checkpoint_every_n_steps must be an integer >= 0 (0 or null: off), got "
                             f"{every!r}")
        if not 0 <= self.seed < 2**32:  # what Lightning's seed_everything (numpy's seed) accepts
            raise ValueError(f"trainer.seed must be in [0, 2**32 - 1], got {self.seed}")


@dataclass
class EvalConfig:
    """Retrieval metrics (and effective rank, alignment, uniformity) on the validation families during training;
    ``train_families``: also score a fixed, seeded sample of that many *training* families at each validation
    (logged as ``train_fam/...``), so that learning curves separate learning (dev rises) from memorising (only
    training families rise); 0: off. ``export``: which weights the exported model gets, the validation checkpoint
    best by ``monitor`` (``best``) or those of the last step (``last``: the same weights as a run without
    validation, for recipes compared at a fixed budget)."""

    enabled: bool = True
    ks: list[int] = field(default_factory=lambda: [1, 10, 100, 300])  # recall@100 / @300: the prefilter yardstick
    monitor: str = "map_r"  # checkpoint selection metric (higher is better)
    train_families: int = 200
    export: Literal["best", "last"] = "best"
    # warn once when the validation embeddings' effective rank < this x min(embed_dim, validation families); null: never
    min_effective_rank_fraction: Optional[float] = 0.05

    def __post_init__(self) -> None:
        f = self.min_effective_rank_fraction
        if f is not None and not 0.0 < f <= 1.0:
            raise ValueError(f"eval.min_effective_rank_fraction must be in (0, 1] or null, got {f}")
        if isinstance(self.train_families, bool) or not isinstance(self.train_families, int) \
                or self.train_families < 0:
            raise ValueError(f"eval.train_families must be an integer >= 0 (0: off), got {self.train_families!r}")
        ks = list(self.ks) if isinstance(self.ks, (list, tuple)) else [self.ks]
        if not ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ks):
            raise ValueError(f"eval.ks must be a list of integers >= 1, got {self.ks!r}")
        self.ks = ks
        names = ("top1", "map_r", "auc1", *(f"recall@{k}" for k in ks))
        if self.monitor not in names:
            raise ValueError(f"eval.monitor must be one of {', '.join(names)} (recall@k for k in eval.ks), "
                             f"got {self.monitor!r}")


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        if self.loss.window and self.cache.enabled:
            raise ValueError("loss.window (late interaction) does not work with cache.enabled: turn one off")

    def to_dict(self) -> dict:
        return to_dict(self)


def load_config(config: "TrainConfig | str | Path | None" = None,
                overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Resolve a config: a YAML path (``None`` = all defaults) or a :class:`TrainConfig`, plus ``key=value``
    overrides, validated.

    Raises :class:`InputError` naming the file and line (or the override) on any problem.
    """
    path = None if config is None or isinstance(config, TrainConfig) else config
    data = to_dict(config) if isinstance(config, TrainConfig) else load_yaml(path) if path is not None else {}
    try:
        data = apply_overrides(data, overrides)
    except (ValueError, TypeError) as err:  # a --set that cannot apply: the command line's error, not the file's
        raise InputError(f"invalid config: {err}") from None
    try:
        return from_dict(TrainConfig, data)
    except ConfigError as err:
        raise InputError(f"invalid config: {err}", **locate(err, path, overrides)) from None
    except (ValueError, TypeError) as err:
        raise InputError(f"invalid config: {err}", **({"path": path} if path is not None else {})) from None


def data_overrides(data) -> list[str]:
    """The ``key=value`` overrides of ``--data PATH [PATH ...]``: ``data.path`` the first, ``data.paths`` the
    others, no ``data.labels``. The paths are JSON-quoted: a folder named ``yes``, ``null`` or ``a: b`` stays a
    path (as a YAML scalar it was read as true, null or a mapping), and a quote in a name stays one."""
    return [f"data.path={json.dumps(str(data[0]))}", f"data.paths={json.dumps([str(d) for d in data[1:]])}",
            "data.labels=null"]
