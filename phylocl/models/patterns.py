"""Seed patterns of the k-mer profile encoders and the width they give (no torch: used by the NumPy query path,
the backbone configs and :mod:`phylocl.models.kmerprofile`)."""

from __future__ import annotations

from phylocl.data.alphabet import get_alphabet

__all__ = ["seed_patterns", "profile_dim", "word_span"]


def seed_patterns(k: int) -> list[str]:
    """``"1" * k`` plus the one-gap patterns ``1..101`` and ``101..1`` (``k = 3``: ``111``, ``1101``, ``1011``)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    out = ["1" * k]
    for p in ("1" * (k - 1) + "01", "10" + "1" * (k - 1)):
        if k >= 2 and p not in out:
            out.append(p)
    return out


def profile_dim(alphabet: str, k: int, similar_rank: int = 0) -> int:
    """Output width of a k-mer profile encoder: patterns x (``n^k`` + ``similar_rank``), ``n`` canonical letters
    (each pattern's exact-word block, then its low-rank similar-word block)."""
    n = len(get_alphabet(alphabet).canonical)
    return len(seed_patterns(k)) * (n**k + similar_rank)


def word_span(model) -> int:
    """Residues one word of ``model`` spans: the longest seed pattern of a k-mer profile encoder (on the model or its
    ``backbone``), else its ``k`` (``kmer:K``); ``0`` when the model has neither (a sequence model)."""
    holders = (model, getattr(model, "backbone", None))
    for holder in holders:
        patterns = getattr(holder, "patterns", None)
        if patterns:
            return max(len(p) for p in patterns)
    for holder in holders:
        if isinstance(getattr(holder, "k", None), int):
            return int(holder.k)
    return 0
