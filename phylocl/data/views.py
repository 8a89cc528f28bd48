"""Views of a sequence for contrastive training: random crop plus optional masking / substitution noise.

A training view of ``seq`` (``SequenceView.__call__``):

1. crop: a window of ``max_len`` residues at a uniformly random start (a shorter sequence is kept whole). For a
   positive pair (:meth:`SequenceView.pair`) with ``crop="matched"`` both members are cropped at the *same
   relative position*: one fraction ``u ~ U[0, 1)`` is drawn and each member starts at ``floor(u * (len - max_len
   + 1))``, so that two orthologs of similar length show roughly the same (homologous) region instead of two
   independent windows that may not overlap at all;
2. masking: each position becomes the mask id with probability ``mask_prob``;
3. substitution: each remaining position becomes a different letter with probability ``substitution_prob``:
   for protein with ``blosum=True`` drawn from the BLOSUM62 replacement probabilities ``P(b | a), b != a``
   (:mod:`phylocl.data.simulator.substitution`), otherwise uniformly among the other standard letters; unknown letters
   (``X`` / ``N``) are replaced by a standard letter (BLOSUM62 background or uniform).

Everything random comes from the ``numpy.random.Generator`` passed in. :meth:`SequenceView.eval` is the
deterministic view for evaluation: the first ``max_len`` residues, no noise.
"""

from __future__ import annotations

import numpy as np

from phylocl.data.alphabet import FIRST_LETTER_ID, MASK_ID, Alphabet
from phylocl.data.simulator.substitution import AMINO_ACIDS, blosum62_model

__all__ = ["SequenceView", "random_crop", "matched_crop", "deterministic_crop", "CROP_MODES"]

CROP_MODES = ("random", "matched")



def random_crop(seq: str, max_len: int, rng: np.random.Generator) -> str:
    """A ``max_len`` window of ``seq`` at a uniform random start; ``seq`` itself when not longer."""
    if len(seq) <= max_len:
        return seq
    start = int(rng.integers(len(seq) - max_len + 1))
    return seq[start:start + max_len]


def matched_crop(seq: str, max_len: int, fraction: float) -> str:
    """A ``max_len`` window of ``seq`` starting ``fraction`` (in ``[0, 1)``) of the way through the possible starts."""
    if len(seq) <= max_len:
        return seq
    n_starts = len(seq) - max_len + 1
    start = min(int(fraction * n_starts), n_starts - 1)
    return seq[start:start + max_len]


def deterministic_crop(seq: str, max_len: int) -> str:
    """The first ``max_len`` residues of ``seq``."""
    return seq[:max_len]


def _replacement_cdf(alphabet: Alphabet, blosum: bool) -> np.ndarray:
    """Cumulative replacement probabilities ``(n_ids, n_standard)``: row = old token id, column = new standard letter.

    Standard letters are the alphabet's letters without its unknown letter; a row never puts mass on its own letter.
    """
    standard = [c for c in alphabet.letters if c != alphabet.unknown]
    n_ids = FIRST_LETTER_ID + len(alphabet.letters)
    probs = np.zeros((n_ids, len(standard)))
    if blosum and alphabet.name == "protein":
        pi, p = blosum62_model()
        order = [AMINO_ACIDS.index(c) for c in standard]
        pi, p = pi[order], p[np.ix_(order, order)]
    else:
        pi = np.full(len(standard), 1.0 / len(standard))
        p = np.ones((len(standard), len(standard)))
    for tid in range(FIRST_LETTER_ID, n_ids):
        letter = alphabet.letters[tid - FIRST_LETTER_ID]
        if letter in standard:
            k = standard.index(letter)
            row = p[k].copy()
            row[k] = 0.0
        else:
            row = pi.copy()
        probs[tid] = row
    cdf = np.cumsum(probs, axis=1)
    return cdf / np.where(cdf[:, -1:] > 0, cdf[:, -1:], 1.0)  # last column exactly 1 (no rounding past the end)


class SequenceView:
    """Random crops with optional noise, as token ids (see module doc).

    Args:
        alphabet: encodes the letters.
        max_len: crop length in residues (>= 1).
        mask_prob: probability that a position is replaced by the mask id, in ``[0, 1)``.
        substitution_prob: probability that a (non-masked) position gets a different letter, in ``[0, 1)``.
        blosum: protein substitutions weighted by BLOSUM62 (ignored for DNA).
        crop: how :meth:`pair` crops the two members: ``"random"`` (independent windows) or ``"matched"`` (the
            same relative position in both).
    """

    def __init__(self, *, alphabet: Alphabet, max_len: int, mask_prob: float = 0.0, substitution_prob: float = 0.0,
                 blosum: bool = True, crop: str = "random") -> None:
        if max_len < 1:
            raise ValueError(f"max_len must be >= 1, got {max_len}")
        for name, p in (("mask_prob", mask_prob), ("substitution_prob", substitution_prob)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {p}")
        if crop not in CROP_MODES:
            raise ValueError(f"crop must be one of {', '.join(CROP_MODES)}, got {crop!r}")
        self.alphabet, self.max_len, self.crop = alphabet, int(max_len), crop
        self.mask_prob, self.substitution_prob, self.blosum = float(mask_prob), float(substitution_prob), blosum
        self._cdf = _replacement_cdf(alphabet, blosum) if substitution_prob > 0 else None
        standard = [alphabet.letters.index(c) + FIRST_LETTER_ID for c in alphabet.letters if c != alphabet.unknown]
        self._standard_ids = np.array(standard, dtype=np.int64)

    def __call__(self, seq: str, rng: np.random.Generator) -> np.ndarray:
        """Training view of ``seq``: token ids ``(min(len(seq), max_len),)`` int64."""
        ids = self.alphabet.encode(random_crop(seq, self.max_len, rng))
        return self.add_noise(ids, rng)

    def pair(self, seq_a: str, seq_b: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Training views of a positive pair, cropped per :attr:`crop`; each ``(min(len, max_len),)`` int64."""
        if self.crop == "random":
            return self(seq_a, rng), self(seq_b, rng)
        u = float(rng.random())
        a = self.add_noise(self.alphabet.encode(matched_crop(seq_a, self.max_len, u)), rng)
        b = self.add_noise(self.alphabet.encode(matched_crop(seq_b, self.max_len, u)), rng)
        return a, b

    def eval(self, seq: str) -> np.ndarray:
        """Evaluation view: ids of the first ``max_len`` residues, ``(min(len(seq), max_len),)`` int64."""
        return self.alphabet.encode(deterministic_crop(seq, self.max_len))

    def add_noise(self, ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Masking then substitution noise on token ids (a new array; ``ids`` is left alone)."""
        out = np.array(ids, dtype=np.int64, copy=True)
        if self.mask_prob > 0:
            masked = rng.random(len(out)) < self.mask_prob
            out[masked] = MASK_ID
        else:
            masked = np.zeros(len(out), dtype=bool)
        if self._cdf is not None:
            sub = (rng.random(len(out)) < self.substitution_prob) & ~masked
            where = np.flatnonzero(sub)
            if where.size:
                cdf = self._cdf[out[where]]  # (m, n_standard)
                u = rng.random(where.size)[:, None]
                pick = np.minimum((u > cdf).sum(axis=1), cdf.shape[1] - 1)
                out[where] = self._standard_ids[pick]
        return out
