"""OrthologDataModule: wiring of reader, split, pair strategy, views, samplers and collation (no logic of its own).

``train_dataloader()`` yields ``{"a": token_batch, "b": token_batch, "labels": (B,)}`` (one pair per family,
families distinct within a batch and, under DDP, across ranks); ``val_dataloader()`` / ``test_dataloader()`` yield
``{"tokens": token_batch, "labels": (B,), "index": (B,)}`` over every sequence of the val/test families
(whole sequences, windowed by the encoder as ``phylocl evaluate`` does; length-sorted), where ``index`` points into ``dm.val_set`` / ``dm.test_set``.

With several processes, build the Trainer with ``use_distributed_sampler=False``: the batch sampler slices batches
per rank itself (from ``trainer.world_size`` / ``trainer.global_rank``).
"""

from __future__ import annotations

import random

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from phylocl.data.aligned import AlignedPairs, merged_labels
from phylocl.data.collate import PairCollator, SequenceCollator
from phylocl.data.dataconfig import DataConfig
from phylocl.data.dataset import OrthologDataset, concat_datasets
from phylocl.data.distances import DEFAULT_K, FamilyDistances
from phylocl.data.simulator.evolved import EvolvedPairs, MixedBatchSampler, MixedPairs, evolved_rows
from phylocl.data.families import FamilyPairDataset, SequenceDataset, family_label_map
from phylocl.data.hardbatches import HardNegatives
from phylocl.data.layouts import iter_fasta, read_datasets
from phylocl.data.pairs import get_pair_strategy
from phylocl.data.samplers import FamilyBatchSampler, LengthSortedBatchSampler, ResumableBatches
from phylocl.data.splits import split_families
from phylocl.data.views import SequenceView
from phylocl.errors import InputError

__all__ = ["DataConfig", "OrthologDataModule", "seed_worker"]


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: seed numpy and ``random`` in each worker from torch's per-worker seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)



def _check_distance_settings(train: OrthologDataset, c: DataConfig) -> None:
    """``data.distance=tree`` with training families that have no tree, or a ``data.kmer_size`` whose words
    overflow the k-mer codes of the families measured by k-mers: one InputError naming the setting (a ValueError
    traceback from the distance computation before)."""
    bare = [f for f in train.pair_families if f not in train.trees]
    if c.distance == "tree" and bare:
        raise InputError(f"data.distance=tree, but {len(bare)} training famil{'y has' if len(bare) == 1 else 'ies have'}"
                         f" no tree (e.g. {', '.join(bare[:3])}): add Newick trees for them, or use data.distance=auto "
                         "(k-mer distances where a tree is missing)")
    base = len(train.alphabet.letters)
    if c.kmer_size is not None and (bare or c.distance == "kmer") and base ** c.kmer_size >= 2**62:
        largest = int(np.log(2.0**62) / np.log(base))
        largest -= base ** largest >= 2**62
        raise InputError(f"data.kmer_size={c.kmer_size} is too large for the {train.alphabet.name} alphabet "
                         f"(at most {largest}; the default is {DEFAULT_K[train.alphabet.name]})")

class OrthologDataModule(L.LightningDataModule):
    """Reads and splits the data once (:meth:`setup`), then serves pair batches and evaluation batches.

    Attributes after ``setup()``: ``train_set``, ``val_set``, ``test_set`` (:class:`OrthologDataset`),
    ``alphabet``, ``labels`` (family → int, shared by all splits), ``distances`` (when the pair strategy needs
    them; precomputed for the training families so workers inherit them).
    """

    def __init__(self, *, config: DataConfig, train_eval_families: int = 0) -> None:
        super().__init__()
        self.train_eval_families = int(train_eval_families)  # > 0: a second validation loader (train_eval_set)
        if not isinstance(config, DataConfig):
            raise TypeError(f"config must be a DataConfig, got {type(config).__name__}")
        self.config = config
        self.train_set: OrthologDataset | None = None
        self.val_set: OrthologDataset | None = None
        self.test_set: OrthologDataset | None = None
        self.alphabet = None
        self.labels: dict[str, int] = {}
        self.distances: FamilyDistances | None = None
        self.hard: HardNegatives | None = None  # hard-negative state (data.batching knn/group), after setup()
        self.aligned_pairs: np.ndarray | None = None  # (P, 2) cross-family training pairs (data.aligned_evalue)
        self.strategy = get_pair_strategy(config.pair_strategy, alpha=config.alpha)
        self._batches: ResumableBatches | None = None  # the training loader's batches (their place in the epoch)
        self._resume: dict | None = None  # that place as a checkpoint recorded it (load_state_dict)
        self._resume_hard: dict | None = None  # the hard-negative table and draw a checkpoint recorded
        self.hard_state_missing = False  # resumed from a checkpoint without them (phylocl 0.5.0 or earlier)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        c = self.config
        try:
            inputs = c.inputs()
        except ValueError as err:
            raise InputError(str(err)) from None
        full = read_datasets([p for p, _ in inputs], labels=[lab for _, lab in inputs], alphabet=c.alphabet,
                             strict=c.strict)
        splits = split_families(full, fractions=c.fractions, seed=c.seed, group_column=c.group_column,
                                holdout=c.holdout)
        train = splits["train"]
        if c.extra_train_paths:
            extra = read_datasets(c.extra_train_paths, alphabet=c.alphabet, strict=c.strict)
            held = set(splits["val"].family_names) | set(splits["test"].family_names)
            leak = [f for f in extra.family_names if f in held]
            if leak:
                raise InputError(f"extra training data holds {len(leak)} families of the val/test sets "
                                 f"(e.g. {', '.join(leak[:3])}); remove them or change the split")
            train = concat_datasets([train, extra], ["train", "extra"])
        self.train_set, self.val_set, self.test_set = train, splits["val"], splits["test"]
        self.alphabet = full.alphabet
        self.labels = family_label_map(train, splits["val"], splits["test"])
        if c.group_by is not None and c.group_by not in train.metadata:
            raise InputError(f"data.group_by: no labels column {c.group_by!r} (columns: "
                             f"{', '.join(sorted(train.metadata)) or 'none'})")
        if self.strategy.needs_distances:
            _check_distance_settings(train, c)
            self.distances = FamilyDistances(dataset=train, method=c.distance, k=c.kmer_size, seed=c.seed,
                                             cache_dir=c.distance_cache_dir)
            self.distances.precompute()

    def _view(self) -> SequenceView:
        c = self.config
        return SequenceView(alphabet=self.alphabet, max_len=c.max_len, mask_prob=c.mask_prob,
                            substitution_prob=c.substitution_prob, blosum=c.blosum_substitutions, crop=c.crop)

    def _loader_kwargs(self) -> dict:
        c = self.config
        return dict(num_workers=c.num_workers, worker_init_fn=seed_worker if c.num_workers else None,
                    generator=torch.Generator().manual_seed(c.seed), persistent_workers=False)

    def _require_setup(self) -> None:
        if self.train_set is None:
            raise RuntimeError("call setup() first")

    def set_aligned_pairs(self, pairs: np.ndarray) -> None:
        """Cross-family pairs ``(P, 2)`` of training sequence indices (found by the alignment stage before
        training) used as ``data.aligned_mode`` says (:mod:`phylocl.data.aligned`)."""
        self._require_setup()
        pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        if len(pairs) and (pairs.min() < 0 or pairs.max() >= len(self.train_set)):
            raise ValueError("aligned pair indices out of the training set")
        self.aligned_pairs = pairs

    def train_pairs(self) -> FamilyPairDataset | AlignedPairs:
        """The training pair dataset (one item per training family with >= 2 members; with aligned pairs, loss
        labels merged over them and, in ``pairs`` mode, one more item per pair)."""
        self._require_setup()
        labels, aligned = self.labels, self.aligned_pairs
        if aligned is not None and len(aligned):
            fams = self.train_set.families
            labels = merged_labels(self.labels, [(fams[a], fams[b]) for a, b in aligned])
        pairs = FamilyPairDataset(dataset=self.train_set, strategy=self.strategy, view=self._view(),
                                  labels=labels, distances=self.distances, seed=self.config.seed)
        if len(pairs) == 0:
            raise InputError("no training family has two or more sequences: nothing to pair")
        if aligned is not None and len(aligned) and self.config.aligned_mode == "pairs":
            return AlignedPairs(real=pairs, pairs=aligned)
        return pairs

    def evolved_pairs(self, *, steps_per_epoch: int | None = None) -> EvolvedPairs:
        """The evolved-family source of ``data.evolved`` (roots: training sequences, random, or a FASTA file);
        ``steps_per_epoch``: batches per epoch of the training loader (for a divergence curriculum)."""
        self._require_setup()
        e = self.config.evolved
        if e.roots == "train":
            roots = list(self.train_set.sequences)
        elif e.roots == "random":
            roots = []
        else:
            roots = [r.sequence for r in iter_fasta(e.roots, alphabet=self.alphabet)]
            if not roots:
                raise InputError("data.evolved.roots: no sequence in the FASTA file", path=e.roots)
        return EvolvedPairs(config=e, alphabet=self.alphabet.name, view=self._view(), roots=roots,
                            label_offset=len(self.labels), seed=self.config.seed,
                            steps_per_epoch=steps_per_epoch)

    def train_dataloader(self) -> DataLoader:
        c = self.config
        pairs = self.train_pairs()
        trainer = self.trainer
        replicas, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        n_evolved = evolved_rows(c.evolved, c.batch_size)  # evolved families per batch (data.evolved)
        if c.batching != "random":  # hard-negative batches of real families; evolved rows (if any) appended at random
            if self.hard is None:
                self.hard = HardNegatives(config=c, dataset=self.train_set, families=pairs.families)
            if self._resume_hard is not None:
                self.hard.load_state_dict(self._resume_hard)
                self._resume_hard = None
            sampler = self.hard.make_sampler(num_replicas=replicas, rank=rank,
                                             batch_size=max(1, c.batch_size - n_evolved))
        else:
            bucket = c.bucket_by_length and not c.token_budget
            lengths = (pairs.family_lengths() if c.token_budget else pairs.family_lengths(typical=True) if bucket
                       else None)
            sampler = FamilyBatchSampler(
                num_families=len(pairs), batch_size=max(1, c.batch_size - n_evolved), token_budget=c.token_budget,
                lengths=lengths, shuffle=True, drop_last=c.drop_last, rounds=c.pairs_per_family_per_epoch,
                num_batches=c.steps_per_epoch, seed=c.seed, num_replicas=replicas, rank=rank, bucket=bucket,
                sort_window=c.bucket_window if bucket else 50)
        if n_evolved:
            pairs = MixedPairs(pairs, self.evolved_pairs(steps_per_epoch=len(sampler)))
            sampler = MixedBatchSampler(sampler, evolved_per_batch=n_evolved, keep_real=n_evolved < c.batch_size,
                                        rank=rank)
        sampler = ResumableBatches(sampler, steps=lambda: int(getattr(self.trainer, "global_step", 0)))
        if self._resume:
            sampler.resume_at(**self._resume)
        self._batches = sampler
        return DataLoader(pairs, batch_sampler=sampler, collate_fn=PairCollator(c.pad_to_multiple_of),
                          **self._loader_kwargs())

    def state_dict(self) -> dict:
        """Where training is in the current epoch (``{"epoch", "batches"}``), saved in Lightning checkpoints, so
        that a resumed run continues the epoch with the batches it had not trained on yet; with hard-negative
        batches also ``"hard"``: the neighbour table in force and the sampler's draw
        (:meth:`~phylocl.data.hardbatches.HardNegatives.state_dict`), which the batches still to come depend on."""
        state = self._batches.position() if self._batches is not None else {}
        if state and self.hard is not None:
            state["hard"] = self.hard.state_dict(step=int(getattr(self.trainer, "global_step", 0)),
                                                 epoch=state["epoch"], keep_from=state["batches"])
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        if isinstance(state_dict, dict) and {"epoch", "batches"} <= set(state_dict):
            self._resume = {"epoch": int(state_dict["epoch"]), "batches": int(state_dict["batches"])}
            if self.config.batching != "random":
                hard = state_dict.get("hard")
                self._resume_hard = hard if isinstance(hard, dict) else None
                self.hard_state_missing = not isinstance(hard, dict)

    def eval_dataloader(self, dataset: OrthologDataset) -> DataLoader | list:
        """Length-sorted batches over every whole sequence of ``dataset`` (``[]`` when it is empty); the encoder
        embeds rows longer than ``max_len`` as windows, as ``phylocl evaluate`` does."""
        self._require_setup()
        if len(dataset) == 0:
            return []
        c = self.config
        seqs = SequenceDataset(dataset=dataset, view=self._view(), labels=self.labels, crop=False)
        sampler = LengthSortedBatchSampler(lengths=seqs.lengths(), batch_size=c.eval_batch_size or c.batch_size,
                                           token_budget=c.token_budget)
        return DataLoader(seqs, batch_sampler=sampler, collate_fn=SequenceCollator(c.pad_to_multiple_of),
                          **self._loader_kwargs())

    def train_eval_set(self) -> OrthologDataset:
        """A fixed sample of ``train_eval_families`` training families (seeded by ``data.seed``; every member),
        scored beside the dev families to tell learning from memorising."""
        self._require_setup()
        names = sorted(self.train_set.pair_families)
        rng = np.random.default_rng([self.config.seed, 13])
        pick = rng.choice(len(names), size=min(self.train_eval_families, len(names)), replace=False)
        return self.train_set.select_families([names[i] for i in sorted(pick)])

    def val_dataloader(self) -> DataLoader | list:
        """The dev families' loader; with ``train_eval_families``, ``[dev, training sample]``."""
        self._require_setup()
        loader = self.eval_dataloader(self.val_set)
        if self.train_eval_families and loader != [] and len(self.train_set.pair_families) > 1:
            return [loader, self.eval_dataloader(self.train_eval_set())]
        return loader

    def test_dataloader(self) -> DataLoader | list:
        self._require_setup()
        return self.eval_dataloader(self.test_set)
