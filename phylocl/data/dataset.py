"""OrthologDataset: sequences grouped into families, plus what the rest of the pipeline needs to know about them.

No torch here: this is plain Python lists (one entry per sequence, all in the same order) and small dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

from phylocl.data.alphabet import Alphabet
from phylocl.data.fasta import looks_like
from phylocl.errors import InputError

__all__ = ["OrthologDataset", "Origins", "concat_datasets", "MIN_PAIR_FAMILY_SIZE"]

MIN_PAIR_FAMILY_SIZE = 2  # a positive pair needs two different members


@dataclass(frozen=True, eq=False, kw_only=True)
class Origins:
    """Where each sequence of a dataset was read: ``files[file[i]]``, header line ``line[i]`` (12 bytes a sequence),
    so that a check made after reading (the model's alphabet, two inputs of different alphabets) can name a record's
    file and line."""

    files: tuple[str, ...]
    file: np.ndarray  # int32 index into files, one per sequence
    line: np.ndarray  # int64 1-based header line, one per sequence

    @classmethod
    def of(cls, paths: Sequence[str | Path], lines: Sequence[int]) -> "Origins":
        """From one path and one header line per sequence."""
        index: dict[str, int] = {}
        file = np.fromiter((index.setdefault(str(p), len(index)) for p in paths), dtype=np.int32, count=len(paths))
        return cls(files=tuple(index), file=file, line=np.asarray(lines, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.line)

    def where(self, i: int) -> tuple[str, int]:
        """``(file, header line)`` of sequence ``i``."""
        return self.files[int(self.file[i])], int(self.line[i])

    def take(self, idx: Sequence[int]) -> "Origins":
        """The origins of sequences ``idx``, in that order."""
        idx = np.asarray(idx, dtype=np.int64)
        return Origins(files=self.files, file=self.file[idx], line=self.line[idx])

    @staticmethod
    def concat(parts: Sequence["Origins | None"]) -> "Origins | None":
        """The origins of concatenated datasets (``None`` unless every part has them)."""
        if any(p is None for p in parts):
            return None
        files: list[str] = []
        offsets = []
        for p in parts:
            offsets.append(len(files))
            files += p.files
        return Origins(files=tuple(files), file=np.concatenate([p.file + o for p, o in zip(parts, offsets)]),
                       line=np.concatenate([p.line for p in parts]))


@dataclass(eq=False)
class OrthologDataset:
    """Sequences with their family labels.

    Attributes:
        ids: sequence ids (unique).
        sequences: canonical upper-case letters of ``alphabet`` (gaps removed).
        families: family id of each sequence.
        alphabet: the :class:`~phylocl.data.alphabet.Alphabet` every sequence is written in.
        metadata: extra per-sequence label columns (``species``, ``fold`` ...), each a list of ``len(ids)`` strings.
        trees: family → Newick file whose leaves are named by sequence id, where one was found.
        source: how the data was read (``format``, ``path``, ...), for :meth:`summary`.
        origins: the file and header line of every sequence (:class:`Origins`), where it was read from files.

    Derived (read-only): ``family_index`` (family → sequence indices, families in order of first appearance),
    ``skipped`` (families left out of pair sampling, with the reason).
    """

    ids: list[str]
    sequences: list[str]
    families: list[str]
    alphabet: Alphabet
    metadata: dict[str, list[str]] = field(default_factory=dict)
    trees: dict[str, Path] = field(default_factory=dict)
    source: dict = field(default_factory=dict)
    origins: Optional[Origins] = None

    def __post_init__(self) -> None:
        n = len(self.ids)
        if self.origins is not None and len(self.origins) != n:
            raise ValueError(f"origins has {len(self.origins)} entries for {n} sequences")
        if len(self.sequences) != n or len(self.families) != n:
            raise ValueError(f"ids, sequences and families differ in length: {n}, {len(self.sequences)}, "
                             f"{len(self.families)}")
        for col, values in self.metadata.items():
            if len(values) != n:
                raise ValueError(f"metadata column {col!r} has {len(values)} values for {n} sequences")
        index: dict[str, list[int]] = {}
        for i, fam in enumerate(self.families):
            index.setdefault(fam, []).append(i)
        self._family_index = index
        self.trees = {f: Path(p) for f, p in self.trees.items() if f in index}

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def family_index(self) -> dict[str, list[int]]:
        """Family → indices of its sequences (families in order of first appearance)."""
        return self._family_index

    @property
    def family_names(self) -> list[str]:
        """Family ids in order of first appearance."""
        return list(self._family_index)

    @property
    def pair_families(self) -> list[str]:
        """Families with at least two members: the ones that can give a positive pair."""
        return [f for f, idx in self._family_index.items() if len(idx) >= MIN_PAIR_FAMILY_SIZE]

    @property
    def skipped(self) -> list[dict]:
        """Families left out of pair sampling and why (they stay in the dataset as negatives / distractors)."""
        return [
            {"family": f, "sequences": len(idx),
             "reason": f"fewer than {MIN_PAIR_FAMILY_SIZE} sequences: no positive pair (kept as a distractor)"}
            for f, idx in self._family_index.items() if len(idx) < MIN_PAIR_FAMILY_SIZE
        ]

    def lengths(self) -> np.ndarray:
        """Sequence lengths in residues, shape ``(N,)`` int64."""
        return np.fromiter((len(s) for s in self.sequences), dtype=np.int64, count=len(self.sequences))

    def subset(self, indices: Iterable[int]) -> "OrthologDataset":
        """A new dataset holding sequences ``indices`` (in that order); trees and source are kept."""
        idx = [int(i) for i in indices]
        return OrthologDataset(
            ids=[self.ids[i] for i in idx],
            sequences=[self.sequences[i] for i in idx],
            families=[self.families[i] for i in idx],
            alphabet=self.alphabet,
            metadata={c: [v[i] for i in idx] for c, v in self.metadata.items()},
            trees=dict(self.trees),
            source=dict(self.source),
            origins=self.origins.take(idx) if self.origins is not None else None,
        )

    def where(self, i: int) -> tuple[str | None, int | None]:
        """``(file, header line)`` of sequence ``i``, or ``(None, None)`` where the dataset was not read from files."""
        return self.origins.where(i) if self.origins is not None else (None, None)

    def shows(self, kind: str) -> int:
        """Index of the first sequence that clearly reads as ``kind`` (``"dna"``/``"protein"``; the first one if
        none does): the record to name when the dataset's alphabet is refused."""
        return next((i for i, s in enumerate(self.sequences) if looks_like(kind, s)), 0)

    def select_families(self, families: Iterable[str]) -> "OrthologDataset":
        """A new dataset with every sequence of ``families`` (in dataset order)."""
        keep = set(families)
        return self.subset(i for i, f in enumerate(self.families) if f in keep)

    def summary(self) -> dict:
        """Counts for ``phylocl inspect --json``.

        Keys: ``path``, ``format``, ``alphabet``, ``families``, ``sequences``, ``pair_families`` (families with >= 2
        sequences), ``min/median/max_family_size``, ``min/median/max_length`` (residues), ``total_residues``,
        ``trees`` (families with a Newick tree), ``metadata_columns``, ``skipped`` (number of families left out of
        pair sampling), ``skipped_examples`` (up to 5 of them) and any other ``source`` entries.
        """
        sizes = np.array([len(v) for v in self._family_index.values()], dtype=np.int64)
        lengths = self.lengths()
        skipped = self.skipped

        def stat(fn, a):
            return fn(a).item() if a.size else 0

        out = {k: (str(v) if isinstance(v, Path) else v) for k, v in self.source.items()}
        out.update(
            alphabet=self.alphabet.name,
            families=len(sizes),
            sequences=len(self),
            pair_families=int((sizes >= MIN_PAIR_FAMILY_SIZE).sum()),
            min_family_size=stat(np.min, sizes),
            median_family_size=float(np.median(sizes)) if sizes.size else 0.0,
            max_family_size=stat(np.max, sizes),
            min_length=stat(np.min, lengths),
            median_length=float(np.median(lengths)) if lengths.size else 0.0,
            max_length=stat(np.max, lengths),
            total_residues=int(lengths.sum()),
            trees=len(self.trees),
            metadata_columns=list(self.metadata),
            skipped=len(skipped),
            skipped_examples=[s["family"] for s in skipped[:5]],
        )
        return out


def _rename_clashes(names_per_part: Sequence[Sequence[str]], prefixes: Sequence[str]) -> list[dict[str, str]]:
    """For each part, a map name → ``"<prefix>/<name>"`` for the names that occur in more than one part."""
    seen: dict[str, int] = {}
    for names in names_per_part:
        for name in set(names):
            seen[name] = seen.get(name, 0) + 1
    return [{n: f"{p}/{n}" for n in set(names) if seen[n] > 1} for names, p in zip(names_per_part, prefixes)]


def concat_datasets(datasets: Sequence[OrthologDataset], names: Sequence[str]) -> OrthologDataset:
    """Concatenate datasets that share an alphabet.

    Family ids (and sequence ids) that occur in more than one dataset are prefixed with that dataset's name
    (``"<name>/<family>"``), so families never merge by accident. Metadata columns are united; a dataset without
    a column gets ``""`` there. A family whose sequence ids had to be renamed loses its tree (leaves are ids).
    """
    if len(datasets) != len(names):
        raise ValueError("one name per dataset is needed")
    if len(set(names)) != len(names):
        raise ValueError(f"dataset names must be unique, got {list(names)}")
    if len(datasets) == 1:
        return datasets[0]
    alpha = {d.alphabet.name for d in datasets}
    if len(alpha) > 1:
        kinds = ", ".join(f"{n}: {d.alphabet.name}" for n, d in zip(names, datasets))
        first = datasets[0].alphabet.name
        k = next(k for k, d in enumerate(datasets) if d.alphabet.name != first)
        other = datasets[k]
        i = other.shows(other.alphabet.name)
        path, line = other.where(i)
        shown = {"dna": "DNA"}
        raise InputError(f"datasets to combine must share an alphabet ({kinds}): record {other.ids[i]!r} of "
                         f"{names[k]} looks like {shown.get(other.alphabet.name, other.alphabet.name)}, but "
                         f"{names[0]} reads as {shown.get(first, first)}", path=path, line=line)
    fam_maps = _rename_clashes([d.family_names for d in datasets], names)
    id_maps = _rename_clashes([d.ids for d in datasets], names)
    columns = list(dict.fromkeys(c for d in datasets for c in d.metadata))
    ids, seqs, fams, trees = [], [], [], {}
    meta: dict[str, list[str]] = {c: [] for c in columns}
    for d, fmap, imap in zip(datasets, fam_maps, id_maps):
        ids += [imap.get(i, i) for i in d.ids]
        seqs += d.sequences
        fams += [fmap.get(f, f) for f in d.families]
        for c in columns:
            meta[c] += d.metadata.get(c, [""] * len(d))
        renamed_fams = {f for i, f in zip(d.ids, d.families) if i in imap}  # tree leaves keep the old ids
        trees.update({fmap.get(f, f): p for f, p in d.trees.items() if f not in renamed_fams})
    source = {"format": "concatenated", "path": [str(d.source.get("path", n)) for n, d in zip(names, datasets)]}
    return OrthologDataset(ids=ids, sequences=seqs, families=fams, alphabet=datasets[0].alphabet, metadata=meta,
                           trees=trees, source=source, origins=Origins.concat([d.origins for d in datasets]))
