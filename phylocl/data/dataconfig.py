"""DataConfig: every data setting of a training run, validated on construction (no torch, no Lightning here)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

from phylocl.data.simulator.evolved_config import EvolvedConfig
from phylocl.data.views import CROP_MODES

__all__ = ["DataConfig"]


@dataclass
class DataConfig:
    """Data settings (the ``data:`` section of a training config).

    Inputs: ``path`` (+ ``labels`` when it is a FASTA file) and/or ``paths`` (more inputs, each a directory or
    OrthoFinder result); all are concatenated (clashing family ids prefixed with the input's name) and then split.
    ``extra_train_paths`` are added to the training set only (after the split; never to val/test). All inputs
    share one alphabet (``alphabet``: ``None`` = detect, ``"protein"``, ``"dna"``). ``strict``: refuse internal stops,
rare and ambiguous letters instead of reading them as the unknown token (:mod:`phylocl.data.letters`).

    Split: ``fractions`` (train, val, test) of families, ``seed``, optional ``group_column`` (metadata column such
    as ``fold``: a group never spans two sets) and ``holdout`` (``{"val": [families], "test": [...]}``).

    Pairs: ``pair_strategy`` ``uniform`` | ``distant`` (probability ∝ distance^``alpha``) | ``hardest``;
    distances from trees or k-mers (``distance``: ``auto`` | ``tree`` | ``kmer``; ``kmer_size``: default 5 protein,
    11 DNA; ``distance_cache_dir``: optional on-disk cache).

    Views: crop to ``max_len`` residues (``crop``: ``random`` = independent windows of the two members,
    ``matched`` = the same relative position in both, see :mod:`phylocl.data.views`); ``mask_prob`` /
    ``substitution_prob`` noise (``blosum_substitutions`` for protein).

    Batches: ``batch_size`` families per batch (one pair each), optional ``token_budget`` (max rows x longest
    view per batch), ``bucket_by_length`` (default on: fixed-size batches of families of similar median length,
    cut from length-sorted windows of ``bucket_window`` batches; less padding, see docs/performance.md),
    ``pairs_per_family_per_epoch`` rounds per epoch or a fixed ``steps_per_epoch``,
    ``drop_last``, ``num_workers``, ``pad_to_multiple_of``. Evaluation batches: ``eval_batch_size`` (default
    ``batch_size``) over every val/test sequence.

    Hard negatives (:mod:`phylocl.data.hardbatches`): ``batching`` ``random`` (default) | ``knn`` (each batch the
    neighbourhood of a random anchor family among family centroids) | ``group`` (the anchor's ``group_by`` group
    first, e.g. ``superfamily``, then its neighbours); ``hard_pool`` neighbours per family (default 2 x
    ``batch_size``); centroids start from k-mer profiles (``centroid_kmer``: default 3 protein, 5 DNA) of
    ``refresh_members`` sampled members per family and are re-embedded with the current encoder every
    ``refresh_every`` steps (0: never). Length bucketing does not apply to hard-negative batches.

    Evolved families: ``evolved`` (:class:`~phylocl.data.simulator.evolved_config.EvolvedConfig`) mixes pairs of families
    evolved on the fly into every training batch (``evolved.fraction`` of its rows; off by default); with
    hard-negative batching the real rows form the hard batch and the evolved rows are appended as usual.

    Alignment-guided positives (:mod:`phylocl.data.aligned`; off by default): ``aligned_evalue > 0`` aligns
    ``aligned_members`` sampled members of each training family with those of its ``aligned_candidates`` nearest
    families (IDF-weighted 3-mer profiles) before training; pairs across families with an E-value below it join
    their families' loss labels (``aligned_mode`` ``merge``: never each other's negatives) and, with ``pairs``
    (default), are also extra positive pairs. Random batching only.
    """

    path: Optional[str] = None
    labels: Optional[str] = None
    paths: list[str] = field(default_factory=list)
    extra_train_paths: list[str] = field(default_factory=list)
    alphabet: Optional[str] = None
    strict: bool = False
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    group_column: Optional[str] = None
    holdout: dict[str, list[str]] = field(default_factory=dict)
    pair_strategy: Literal["uniform", "distant", "hardest"] = "uniform"
    alpha: float = 1.0
    distance: Literal["auto", "tree", "kmer"] = "auto"
    kmer_size: Optional[int] = None
    distance_cache_dir: Optional[str] = None
    max_len: int = 512
    crop: Literal["random", "matched"] = "random"
    mask_prob: float = 0.0
    substitution_prob: float = 0.0
    blosum_substitutions: bool = True
    batch_size: int = 64
    eval_batch_size: Optional[int] = None
    token_budget: Optional[int] = None
    bucket_by_length: bool = True
    bucket_window: int = 8
    pairs_per_family_per_epoch: int = 1
    steps_per_epoch: Optional[int] = None
    drop_last: bool = True
    batching: Literal["random", "knn", "group"] = "random"
    group_by: Optional[str] = None
    hard_pool: Optional[int] = None
    refresh_every: int = 50
    refresh_members: int = 2
    centroid_kmer: Optional[int] = None
    num_workers: int = 0
    pad_to_multiple_of: int = 1
    evolved: EvolvedConfig = field(default_factory=EvolvedConfig)
    aligned_evalue: float = 0.0
    aligned_mode: Literal["merge", "pairs"] = "pairs"
    aligned_candidates: int = 32
    aligned_members: int = 1

    def __post_init__(self) -> None:
        self._normalise_inputs()
        self._check_pair_options()
        self._check_batch_options()

    def _normalise_inputs(self) -> None:
        """Paths as strings, ``evolved`` as :class:`EvolvedConfig`, fractions as a float triple; checks them."""
        if isinstance(self.evolved, dict):  # built directly in Python rather than from YAML
            unknown = sorted(set(self.evolved) - set(EvolvedConfig.__dataclass_fields__))
            if unknown:
                raise ValueError(f"unknown data.evolved key(s) {unknown}")
            self.evolved = EvolvedConfig(**self.evolved)
        if self.evolved.fraction >= 1 and self.batching != "random":
            raise ValueError("data.evolved.fraction = 1 leaves no real rows for data.batching="
                             f"{self.batching} (hard-negative batches are drawn among real families)")
        self.paths = [str(p) for p in self.paths]
        self.extra_train_paths = [str(p) for p in self.extra_train_paths]
        if self.path is not None:
            self.path = str(self.path)
        if self.labels is not None and self.path is None:
            raise ValueError("data.labels needs data.path (the FASTA file it labels)")
        if self.alphabet is not None and self.alphabet.lower() not in ("auto", "protein", "dna"):
            raise ValueError(f"data.alphabet must be protein, dna or null (auto), got {self.alphabet!r}")
        fr = tuple(float(f) for f in self.fractions)
        if len(fr) != 3 or min(fr) < 0 or abs(sum(fr) - 1.0) > 1e-6:
            raise ValueError(f"data.fractions must be 3 non-negative numbers summing to 1, got {list(fr)}")
        self.fractions = fr
        bad_keys = sorted(set(self.holdout) - {"train", "val", "test"})
        if bad_keys:
            raise ValueError(f"data.holdout keys must be train/val/test, got {bad_keys}")

    def _check_pair_options(self) -> None:
        """Cropping, pair choice, distances and the positive sizes (``max_len``, ``batch_size``...)."""
        if self.crop not in CROP_MODES:
            raise ValueError(f"data.crop must be {' or '.join(CROP_MODES)}, got {self.crop!r}")
        if self.pair_strategy not in ("uniform", "distant", "hardest"):
            raise ValueError(f"data.pair_strategy must be uniform, distant or hardest, got {self.pair_strategy!r}")
        if self.distance not in ("auto", "tree", "kmer"):
            raise ValueError(f"data.distance must be auto, tree or kmer, got {self.distance!r}")
        if not self.alpha >= 0:
            raise ValueError(f"data.alpha must be >= 0, got {self.alpha}")
        if not isinstance(self.bucket_by_length, bool):
            raise ValueError(f"data.bucket_by_length must be true or false, got {self.bucket_by_length!r}")
        if self.batch_size == 1:
            raise ValueError("data.batch_size must be >= 2: a batch of one family has no negatives (loss 0, "
                             "gradient 0)")
        for name in ("max_len", "batch_size", "pairs_per_family_per_epoch", "pad_to_multiple_of", "bucket_window"):
            if getattr(self, name) < 1:
                raise ValueError(f"data.{name} must be >= 1, got {getattr(self, name)}")

    def _check_batch_options(self) -> None:
        """Batching strategy, hard-negative refresh, optional sizes, view noise, token budget and workers."""
        if self.seed < 0:  # numpy's generators take non-negative seeds only
            raise ValueError(f"data.seed must be >= 0, got {self.seed}")
        if self.batching not in ("random", "knn", "group"):
            raise ValueError(f"data.batching must be random, knn or group, got {self.batching!r}")
        if (self.batching == "group") != (self.group_by is not None):
            raise ValueError("data.batching=group needs data.group_by (a labels column such as superfamily), and "
                             "data.group_by is only used with data.batching=group")
        if self.batching != "random" and self.token_budget is not None:
            raise ValueError("data.token_budget goes with data.batching=random (hard-negative batches have a fixed "
                             "size)")
        if self.aligned_evalue < 0 or self.aligned_candidates < 1 or self.aligned_members < 1:
            raise ValueError("data.aligned_evalue must be >= 0 (0: off), aligned_candidates and aligned_members >= 1")
        if self.aligned_mode not in ("merge", "pairs"):
            raise ValueError(f"data.aligned_mode must be merge or pairs, got {self.aligned_mode!r}")
        if self.aligned_evalue > 0 and self.batching != "random":
            raise ValueError("data.aligned_evalue > 0 works with data.batching=random only")
        if self.refresh_every < 0:
            raise ValueError(f"data.refresh_every must be >= 0 (0: never), got {self.refresh_every}")
        if self.refresh_members < 1:
            raise ValueError(f"data.refresh_members must be >= 1, got {self.refresh_members}")
        for name in ("kmer_size", "eval_batch_size", "steps_per_epoch", "hard_pool", "centroid_kmer"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"data.{name} must be >= 1 or null, got {value}")
        for name in ("mask_prob", "substitution_prob"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"data.{name} must be in [0, 1), got {getattr(self, name)}")
        if self.mask_prob + self.substitution_prob >= 1.0:
            raise ValueError("data.mask_prob + data.substitution_prob must be < 1")
        if self.token_budget is not None and self.token_budget < 2 * self.max_len:
            raise ValueError(f"data.token_budget ({self.token_budget}) must be >= 2 x data.max_len ({self.max_len}) "
                             "so that every batch holds at least two families (one family has no negatives)")
        if self.num_workers < 0:
            raise ValueError(f"data.num_workers must be >= 0, got {self.num_workers}")

    def inputs(self) -> list[tuple[Path, Optional[Path]]]:
        """``(path, labels)`` of every input to split, ``path`` first; raises ``ValueError`` when there is none."""
        items = [(Path(self.path), Path(self.labels) if self.labels else None)] if self.path else []
        items += [(Path(p), None) for p in self.paths]
        if not items:
            raise ValueError("no data given: set data.path (or data.paths)")
        seen: dict[str, Path] = {}
        for path, _ in items:  # one input twice: its families would land in two splits (train and test) at once
            key = os.path.realpath(path)
            if key in seen:
                also = f" (also as {seen[key]})" if str(seen[key]) != str(path) else ""
                raise ValueError(f"the input {path} is given twice{also}: each of its families would be read twice, "
                                 "so a copy could fall in the test split of its own training twin")
            seen[key] = path
        return items
