"""EvolvedConfig: the ``data.evolved`` section, families evolved on the fly and mixed into training batches.

No torch here; :mod:`phylocl.data.simulator.evolved` builds the training source from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from phylocl.data.simulator.indels import LENGTH_DISTRIBUTIONS

__all__ = ["EvolvedConfig", "ROOT_SOURCES"]

ROOT_SOURCES = ("train", "random")  # or the path of any FASTA file


@dataclass
class EvolvedConfig:
    """Families evolved along random trees (:class:`~phylocl.data.simulator.evolution.EvolutionModel`), one pair each.

    Attributes:
        fraction: share of every training batch taken by evolved pairs (``0`` = off, ``1`` = evolved only);
            ``round(fraction * batch_size)`` rows per batch.
        roots: where root sequences come from: ``train`` (the training sequences), ``random`` (stationary
            frequencies) or the path of a FASTA file (labelled or not; only the sequences are used).
        random_root_fraction: share of roots drawn at random even when ``roots`` names real sequences.
        random_root_length: ``[min, max]`` length of random roots (uniform).
        members: leaves of each random (Yule) tree; the pair is two different leaves (the default 2 evolves only
            the two branches a pair needs).
        divergence: ``[min, max]`` tree diameter (expected substitutions per site between the two most distant
            leaves), drawn log-uniformly per family: from near-identical to the twilight zone (with
            ``gamma_shape = 1`` a diameter of 3-5 leaves 20-30% identity for protein).
        gamma_shape: discrete-gamma shape of rate heterogeneity across sites (``null`` = equal rates).
        gamma_categories: rate categories of the discrete gamma.
        indel_rate: indel events per substitution per site.
        indel_length: ``zipf`` or ``geometric`` length distribution; ``indel_mean``: its mean (residues);
            ``indel_max_length``: longest indel (``zipf`` only).
        kappa: DNA transition/transversion ratio (K80).
        curriculum_steps: ``0`` = off; ``N > 0``: a divergence curriculum from close to remote, the upper bound of
            ``divergence`` rising linearly from ``curriculum_start`` at global step 0 to ``divergence[1]`` at step
            ``N`` (and staying there); the lower bound stays ``divergence[0]`` (see :meth:`divergence_at`).
        curriculum_start: the upper bound of the divergence at step 0 (substitutions per site), in
            ``[divergence[0], divergence[1]]``.
    """

    fraction: float = 0.0
    roots: str = "train"
    random_root_fraction: float = 0.0
    random_root_length: tuple[int, int] = (100, 500)
    members: int = 2
    divergence: tuple[float, float] = (0.05, 5.0)
    gamma_shape: Optional[float] = 1.0
    gamma_categories: int = 4
    indel_rate: float = 0.05
    indel_length: str = "zipf"
    indel_mean: float = 2.0
    indel_max_length: int = 50
    kappa: float = 2.0
    curriculum_steps: int = 0
    curriculum_start: float = 0.5

    def __post_init__(self) -> None:
        def bad(msg: str) -> None:
            raise ValueError(f"data.evolved.{msg}")

        if not 0.0 <= self.fraction <= 1.0:
            bad(f"fraction must be in [0, 1], got {self.fraction}")
        if not 0.0 <= self.random_root_fraction <= 1.0:
            bad(f"random_root_fraction must be in [0, 1], got {self.random_root_fraction}")
        lo, hi = (int(v) for v in self.random_root_length)
        if not 1 <= lo <= hi:
            bad(f"random_root_length must be [min, max] with 1 <= min <= max, got {list(self.random_root_length)}")
        self.random_root_length = (lo, hi)
        dlo, dhi = (float(v) for v in self.divergence)
        if not 0.0 < dlo <= dhi:
            bad(f"divergence must be [min, max] with 0 < min <= max, got {list(self.divergence)}")
        self.divergence = (dlo, dhi)
        if self.members < 2:
            bad(f"members must be >= 2, got {self.members}")
        if self.gamma_shape is not None and not self.gamma_shape > 0:
            bad(f"gamma_shape must be > 0 or null, got {self.gamma_shape}")
        if self.gamma_categories < 1:
            bad(f"gamma_categories must be >= 1, got {self.gamma_categories}")
        if not self.indel_rate >= 0:
            bad(f"indel_rate must be >= 0, got {self.indel_rate}")
        if self.indel_length not in LENGTH_DISTRIBUTIONS:
            bad(f"indel_length must be one of {list(LENGTH_DISTRIBUTIONS)}, got {self.indel_length!r}")
        if not self.kappa > 0:
            bad(f"kappa must be > 0, got {self.kappa}")
        if self.curriculum_steps < 0:
            bad(f"curriculum_steps must be >= 0 (0: off), got {self.curriculum_steps}")
        if self.curriculum_steps and not dlo <= float(self.curriculum_start) <= dhi:
            bad(f"curriculum_start must be within divergence {list(self.divergence)}, got {self.curriculum_start}")
        try:
            self.indel_model()
        except ValueError as err:
            bad(str(err))

    def divergence_at(self, step: int) -> tuple[float, float]:
        """``(min, max)`` tree diameter (substitutions per site) of the families drawn at global optimizer step
        ``step`` (0-based): ``divergence`` without a curriculum; with one, the upper bound
        ``start + (max - start) * min(1, step / curriculum_steps)``."""
        lo, hi = self.divergence
        if not self.curriculum_steps:
            return lo, hi
        t = min(1.0, max(0, int(step)) / self.curriculum_steps)
        return lo, float(self.curriculum_start) + (hi - float(self.curriculum_start)) * t

    def indel_model(self):
        from phylocl.data.simulator.indels import IndelModel

        return IndelModel(rate=self.indel_rate, mean=self.indel_mean, distribution=self.indel_length,
                          max_length=self.indel_max_length)
