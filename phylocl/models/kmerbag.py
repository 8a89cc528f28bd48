"""KmerBag: a fastText-style backbone, the mean of learned k-mer embeddings of orders ``1..k``.

A sequence becomes, for every order ``j`` in ``1..k``, the mean of the embeddings of its overlapping ``j``-mers,
and the orders are summed with learned gains::

    pooled = sum_j  g_j * mean_{i} E_j[kmer_j(i)]          # (B, D)

``E_1`` is the encoder's token embedding (so single residues, including ``X``/mask tokens, are 1-mers like any
token); ``E_j`` for ``j >= 2`` are tables of ``n^j`` rows over the alphabet's ``n`` canonical letters (20 amino
acids, 4 nucleotides), indexed exactly like :class:`~phylocl.models.kmer.KmerEmbedder` columns. A ``j``-mer
that touches padding or an unknown/mask token is skipped (it has no row), so padding never leaks.

Why: the cosine of two sums of nearly orthogonal random vectors approximates the cosine of the k-mer count
profiles, so at initialisation this is close to the ``kmer:k`` baseline; training moves similar k-mers together
(a learned, BLOSUM-like smoothing of exact k-mer matching) and re-weights informative k-mers. Lower orders start
with gain ``LOWER_ORDER_GAIN``: residue and dipeptide composition is shared by most proteins and would otherwise
dominate the profile. Cost is one ``embedding_bag`` per order (no ``(B, L, D)`` tensor for ``j >= 2``), so
full-length sequences are cheap.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from phylocl.data.alphabet import PAD_ID, get_alphabet
from phylocl.data.words import window_words_torch

__all__ = ["KmerBag", "MAX_ROWS", "LOWER_ORDER_GAIN"]

MAX_ROWS = 65_536  # largest k-mer table (protein: k <= 3, 8000 rows; DNA: k <= 8)
LOWER_ORDER_GAIN = 0.1


class KmerBag(nn.Module):
    """Mean k-mer embeddings of orders ``1..k``; see the module docstring.

    Args:
        alphabet: ``"protein"`` or ``"dna"``.
        dim: embedding width ``D``.
        k: longest k-mer; ``n^k`` (``n`` canonical letters) must not exceed :data:`MAX_ROWS`.
        init_std: standard deviation of the initial k-mer embeddings.

    ``forward(ids (B, L), mask (B, L), unigram: nn.Embedding) -> (B, D)``.
    """

    takes_ids = True  # SequenceEncoder passes token ids, not embedded tokens

    def __init__(self, *, alphabet: str, dim: int, k: int, init_std: float = 0.02) -> None:
        super().__init__()
        alpha = get_alphabet(alphabet)
        n = len(alpha.canonical)  # canonical letters without the unknown one
        if k < 1 or n**k > MAX_ROWS:
            raise ValueError(f"k-mer length must be >= 1 with {n}^k <= {MAX_ROWS} rows, got k={k}")
        self.k, self.n = int(k), n
        code = torch.from_numpy(alpha.letter_codes())  # token id -> letter code, -1 = no k-mer
        self.register_buffer("code", code, persistent=False)
        # order j >= 2: n^j rows plus one all-zero padding row (index n^j) for invalid k-mers
        self.tables = nn.ParameterList(
            [nn.Parameter(torch.randn(n**j + 1, dim) * init_std) for j in range(2, self.k + 1)])
        with torch.no_grad():
            for t in self.tables:
                t[-1].zero_()
        gains = [LOWER_ORDER_GAIN] * (self.k - 1) + [1.0]
        self.gains = nn.Parameter(torch.tensor(gains))

    def kmer_ids(self, ids: torch.Tensor, mask: torch.Tensor, j: int) -> torch.Tensor:
        """Row of every ``j``-mer ending at positions ``j-1 .. L-1``: ``(B, L - j + 1)``; invalid ones -> ``n^j``."""
        c = self.code[ids].masked_fill(~mask, -1)  # (B, L)
        return window_words_torch(c, j, self.n)  # (B, L - j + 1)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, unigram: nn.Embedding) -> torch.Tensor:
        """``ids``/``mask``: ``(B, L)``; ``unigram``: the token embedding (order 1). Returns ``(B, D)``."""
        one = F.embedding_bag(ids.masked_fill(~mask, PAD_ID), unigram.weight, mode="sum", padding_idx=PAD_ID)
        count = mask.sum(1, keepdim=True).clamp(min=1)  # (B, 1)
        out = self.gains[0] * one / count.to(one.dtype)  # (B, D)
        for j, table in enumerate(self.tables, start=2):
            if ids.shape[1] < j:
                continue
            rows = self.kmer_ids(ids, mask, j)  # (B, L - j + 1)
            total = F.embedding_bag(rows, table, mode="sum", padding_idx=self.n**j)  # (B, D)
            valid = (rows < self.n**j).sum(1, keepdim=True).clamp(min=1)  # (B, 1)
            out = out + self.gains[j - 1] * total / valid.to(total.dtype)
        return out
