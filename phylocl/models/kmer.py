"""K-mer count baseline: each sequence becomes the L2-normalised vector of its overlapping k-mer counts.

Only canonical letters take part (20 amino acids or ``A C G T``); a k-mer containing the unknown letter
(``X`` / ``N``, which ambiguity codes also map to) is skipped. Vectors are dense, ``20^k`` (protein) or ``4^k``
(DNA) wide, so ``k`` is limited to 3 for protein (8000 dimensions) and 6 for DNA (4096). Inner products between
these vectors are cosine similarities of k-mer profiles, so they go straight into the same FAISS indexes and
metrics as learned embeddings.

``kmer:K:D`` sketches the profile into ``D`` dimensions (signed feature hashing, a count sketch): k-mer ``j`` adds
``sign[j]`` to column ``bucket[j]``, both fixed by a seeded generator, so inner products of sketches are unbiased
estimates of inner products of the full profiles (error about ``1 / sqrt(D)`` of the norms). ``kmer:3:512`` keeps
protein 3-mer profiles searchable at 10^6 sequences (2 GB of float32 rows instead of 32 GB).
"""

from __future__ import annotations

import hashlib
import json
from typing import Sequence

import numpy as np

from phylocl.data.alphabet import Alphabet, get_alphabet
from phylocl.data.words import window_words, word_powers
from phylocl.errors import InputError
from phylocl.sparse_rows import SparseRows, concat_rows

__all__ = ["KmerEmbedder", "parse_model_spec", "MAX_DIM"]

SKETCH_SEED = 0  # fixes the sketch's buckets and signs (part of the fingerprint)
MIN_SPARSE_BATCH = 1024  # sequences per NumPy step of embed_sparse at least
MAX_DIM = 8192  # widest dense k-mer vector accepted (protein k=3: 8000; DNA k=6: 4096)


def parse_model_spec(spec: str) -> tuple[str, int, int | None] | None:
    """``"kmer:3"`` -> ``("kmer", 3, None)``, ``"kmer:3:512"`` -> ``("kmer", 3, 512)`` (sketched to 512 columns);
    any spec not starting with ``kmer`` -> ``None`` (a model name or path).

    Raises :class:`~phylocl.errors.InputError` for a malformed k-mer spec such as ``"kmer"`` or ``"kmer:x"``.
    """
    head, sep, tail = str(spec).partition(":")
    if head.strip().lower() != "kmer":
        return None
    parts = tail.split(":")
    if not sep or len(parts) > 2 or not all(p.strip().isdigit() and int(p) >= 1 for p in parts):
        raise InputError(f"bad k-mer model spec {spec!r}: write kmer:K with a positive integer K, e.g. kmer:3, "
                         "or kmer:K:D to sketch the profile into D dimensions, e.g. kmer:3:512")
    return "kmer", int(parts[0]), int(parts[1]) if len(parts) == 2 else None


class KmerEmbedder:
    """Dense, L2-normalised k-mer count vectors; an :class:`~phylocl.models.embedder.Embedder` (sparse form too).

    Args:
        k: k-mer length, ``>= 1``; ``alphabet size ** k`` must not exceed :data:`MAX_DIM`.
        alphabet: ``"protein"``, ``"dna"`` or an :class:`~phylocl.data.alphabet.Alphabet`.
        dim: sketch width (``1 <= dim < alphabet size ** k``), or ``None`` for the full profile.

    Example::

        emb = KmerEmbedder(k=3, alphabet="protein")
        x = emb.embed(["MKV...", "MRV..."])   # (2, 8000) float32, rows of norm 1
    """

    def __init__(self, *, k: int, alphabet: str | Alphabet = "protein", dim: int | None = None) -> None:
        self.alphabet = get_alphabet(alphabet)
        self.letters = self.alphabet.canonical
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        self.k = int(k)
        size = len(self.letters)
        largest = max(k for k in range(1, 64) if size**k <= MAX_DIM)
        if self.k > largest:  # compared before raising size to the power k: kmer:1000000000 would never finish
            words = f"{size**self.k}" if self.k <= 64 else f"{size}^{self.k}"
            raise ValueError(
                f"k={self.k} gives {words} dimensions for {self.alphabet.name}; dense k-mer vectors are "
                f"limited to {MAX_DIM} (use k <= {largest} for {self.alphabet.name})"
            )
        self._code = self.alphabet.letter_codes()  # token id -> letter code 0..size-1, or -1 (specials, unknown)
        self._powers = word_powers(size, self.k)  # (k,) most significant first
        self.sketch_dim = None if dim is None else int(dim)
        if self.sketch_dim is not None:
            if not 1 <= self.sketch_dim < size**self.k:
                raise ValueError(f"sketch dimension must be in 1..{size**self.k - 1}, got {dim}")
            rng = np.random.default_rng(SKETCH_SEED)
            self._bucket = rng.integers(0, self.sketch_dim, size**self.k)  # (size^k,) column of each k-mer
            self._sign = rng.choice(np.array([-1.0, 1.0]), size**self.k)  # (size^k,)

    @property
    def name(self) -> str:
        return f"kmer:{self.k}" + (f":{self.sketch_dim}" if self.sketch_dim else "")

    @property
    def embed_dim(self) -> int:
        return self.sketch_dim or len(self.letters) ** self.k

    @property
    def dim(self) -> int:
        """Width of the rows (:class:`~phylocl.models.embedder.Embedder`); same as :attr:`embed_dim`."""
        return self.embed_dim

    @property
    def sparse(self) -> bool:
        """Whether :meth:`embed_sparse` works: full profiles yes, sketches (dense) no."""
        return self.sketch_dim is None

    def kmer_index(self, kmer: str) -> int:
        """Column of ``kmer`` (canonical letters, length ``k``) in the embedding: base-``size`` number."""
        if len(kmer) != self.k or any(c not in self.letters for c in kmer.upper()):
            raise ValueError(f"{kmer!r} is not a {self.k}-mer over {self.letters}")
        return int(sum(self.letters.index(c) * int(p) for c, p in zip(kmer.upper(), self._powers)))

    def fingerprint(self) -> str:
        """Stable 16-hex-digit id of this embedder's output space (same k and alphabet -> same fingerprint)."""
        desc = {"kind": "kmer", "k": self.k, "alphabet": self.alphabet.name, "letters": self.letters,
                "normalize": "l2", "version": 1}
        if self.sketch_dim:
            desc.update(sketch_dim=self.sketch_dim, sketch_seed=SKETCH_SEED)
        return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()[:16]

    def model_info(self) -> dict:
        """The ``model`` record stored with embeddings and indexes."""
        return {"fingerprint": self.fingerprint(), "name": self.name, "dim": self.embed_dim,
                "alphabet": self.alphabet.name, "kind": "kmer", "k": self.k,
                **({"sketch_dim": self.sketch_dim} if self.sketch_dim else {})}

    def _hits(self, sequences: Sequence[str], offset: int) -> tuple[np.ndarray, np.ndarray | None]:
        """``(flat, weights)``: ``row * embed_dim + column`` of every valid k-mer occurrence (rows from 0 within
        ``sequences``) and its sign (sketch) or ``None`` (count 1 each)."""
        codes = []
        for i, seq in enumerate(sequences):
            try:
                codes.append(self._code[self.alphabet.encode(seq)])
            except ValueError as err:
                raise ValueError(f"sequence {offset + i}: {err}") from None
            codes.append(np.array([-1]))  # separator: no k-mer spans two sequences
        cat = np.concatenate(codes)  # (T,) with T = sum(L_i + 1)
        if cat.size < self.k:
            return np.zeros(0, dtype=np.int64), None
        lengths = np.array([len(c) for c in codes[::2]]) + 1
        row = np.repeat(np.arange(len(sequences)), lengths)  # (T,) sequence of each position
        words = window_words(cat, self.k, len(self.letters))  # (T - k + 1,), -1 across a separator or X
        valid = words >= 0
        kmers = words[valid]  # (V,)
        if self.sketch_dim:
            return row[: len(words)][valid] * self.embed_dim + self._bucket[kmers], self._sign[kmers]
        return row[: len(words)][valid] * self.embed_dim + kmers, None

    def _counts(self, sequences: Sequence[str], offset: int) -> np.ndarray:
        dim = self.embed_dim
        flat, weights = self._hits(sequences, offset)
        return np.bincount(flat, weights=weights, minlength=len(sequences) * dim).reshape(len(sequences), dim)

    def embed_sparse(self, sequences: Sequence[str], *, batch_size: int = 1024) -> SparseRows:
        """The rows of :meth:`embed` in sparse form (full profiles only: a sketch is not sparse).

        ``batch_size`` sequences are counted per NumPy step, at least :data:`MIN_SPARSE_BATCH` (smaller steps only
        add overhead; the rows do not depend on it).

        A protein 3-mer profile of a 300-residue sequence holds about 290 of its 8,000 columns, so a database of
        them is ~30x smaller as :class:`~phylocl.sparse_rows.SparseRows` (no low-rank term: ``rank`` 0).
        """
        if self.sketch_dim:
            raise ValueError(f"{self.name} is a sketch (dense); sparse rows need the full profile kmer:{self.k}")
        if isinstance(sequences, str):
            raise TypeError("embed_sparse takes a list of sequences, not a single string")
        parts = []
        batch_size = max(int(batch_size), MIN_SPARSE_BATCH)
        for start in range(0, len(sequences), batch_size):
            batch = sequences[start:start + batch_size]
            flat, counts = np.unique(self._hits(batch, start)[0], return_counts=True)  # sorted by row, column
            parts.append(self._profile_rows(*np.divmod(flat, self.embed_dim), counts.astype(np.float64), len(batch)))
        return concat_rows(parts) if parts else self._profile_rows(np.zeros(0, np.int64), np.zeros(0, np.int64),
                                                                   np.zeros(0), 0)

    def _profile_rows(self, row: np.ndarray, col: np.ndarray, counts: np.ndarray, n: int) -> SparseRows:
        """``n`` unit rows from the entries ``row, col, counts`` (sorted by row, then column); rank 0."""
        norms = np.sqrt(np.bincount(row, weights=counts**2, minlength=n))  # (n,)
        indptr = np.concatenate([[0], np.cumsum(np.bincount(row, minlength=n))]).astype(np.int64)
        return SparseRows(indptr=indptr, indices=col.astype(np.int32), values=(counts / norms[row]).astype(np.float32),
                          coeffs=np.zeros((n, 0), np.float32), basis=np.zeros((0, self.embed_dim), np.float32),
                          dim=self.embed_dim)

    def embed(self, sequences: Sequence[str], *, batch_size: int = 256) -> np.ndarray:
        """Embed ``N`` sequences -> ``(N, embed_dim)`` float32 with unit L2 norm per row.

        A sequence without a single valid k-mer (shorter than ``k`` or all ``X``) gets the zero vector.
        Raises ``ValueError`` naming the sequence index on letters outside the alphabet.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if isinstance(sequences, str):
            raise TypeError("embed takes a list of sequences, not a single string")
        out = np.zeros((len(sequences), self.embed_dim), dtype=np.float32)
        for start in range(0, len(sequences), batch_size):
            counts = self._counts(sequences[start:start + batch_size], start)  # (B, dim)
            norms = np.linalg.norm(counts, axis=1, keepdims=True)
            out[start:start + len(counts)] = counts / np.where(norms > 0, norms, 1.0)
        return out
