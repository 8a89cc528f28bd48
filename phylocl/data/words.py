"""K-mer words: the integer code of every window of ``k`` letter codes, written once for all k-mer models.

Letter codes come from :meth:`~phylocl.data.alphabet.Alphabet.letter_codes` (``0..n-1`` for the ``n`` canonical
letters, ``-1`` for anything else: padding, the unknown letter, a separator). The word of a window
``c_0 .. c_{k-1}`` is the base-``n`` number ``sum_i c_i * n^(k-1-i)`` (first letter most significant), so words
of one length are ``0 .. n^k - 1`` and ``n = 20, k = 3`` gives ``AAA = 0``, ``AAC = 1``, ... ``YYY = 7999``. A
window holding a ``-1`` code has no word.

:func:`window_words` works on NumPy arrays (the ``kmer:K`` baselines, family distances, centroids);
:func:`window_words_torch` on token batches (the k-mer backbones), with gapped seed patterns (``1101``). Neither
imports torch.
"""

from __future__ import annotations

import numpy as np

__all__ = ["word_powers", "window_words", "window_words_torch", "pattern_offsets"]


def word_powers(base: int, k: int) -> np.ndarray:
    """``(k,)`` int64 place values ``base^(k-1) .. base^0`` (first letter most significant)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return base ** np.arange(k - 1, -1, -1, dtype=np.int64)


def pattern_offsets(pattern: str | int) -> list[int]:
    """Positions read by a seed ``pattern`` (``"1101"`` -> ``[0, 1, 3]``); an int ``k`` is ``"1" * k``."""
    pattern = "1" * pattern if isinstance(pattern, int) else pattern
    if not pattern or set(pattern) - {"0", "1"} or pattern[0] != "1" or pattern[-1] != "1":
        raise ValueError(f"a seed pattern is 0s and 1s starting and ending with 1, got {pattern!r}")
    return [i for i, c in enumerate(pattern) if c == "1"]


def window_words(codes: np.ndarray, k: int, base: int) -> np.ndarray:
    """Word of each window of ``k`` consecutive letter codes along the last axis of ``codes`` (``(..., L)``).

    Returns ``(..., max(L - k + 1, 0))`` int64: the base-``base`` word of window ``i`` (letters ``i .. i+k-1``),
    or ``-1`` where the window holds a negative code.
    """
    codes = np.asarray(codes, dtype=np.int64)
    if codes.shape[-1] < k:
        return np.zeros(codes.shape[:-1] + (0,), dtype=np.int64)
    win = np.lib.stride_tricks.sliding_window_view(codes, k, axis=-1)  # (..., L - k + 1, k)
    words = win @ word_powers(base, k)  # (..., L - k + 1)
    return np.where((win >= 0).all(axis=-1), words, -1)


def window_words_torch(codes, pattern: str | int, base: int):
    """Word of each start position of a seed ``pattern`` in a torch batch of letter codes ``(B, L)``.

    Returns ``(B, L - len(pattern) + 1)`` int64 on the device of ``codes``; a window reading a negative code gets
    ``base^k`` (``k`` = ones in the pattern), one past the last word, so it can index a padding row or be cut off.
    """
    offsets = pattern_offsets(pattern)
    win = codes.unfold(1, offsets[-1] + 1, 1)[..., offsets]  # (B, W, k)
    powers = codes.new_tensor(word_powers(base, len(offsets)))  # (k,)
    words = (win.clamp(min=0) * powers).sum(-1)  # (B, W)
    return words.masked_fill((win < 0).any(-1), base ** len(offsets))
