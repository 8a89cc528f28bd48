"""KmerProfile: spaced k-mer count profiles with learned per-k-mer weights (a sparse, wide, learned encoder).

A sequence becomes one block per seed pattern: the contiguous ``k``-mers and the two spaced patterns with one
gap (``k = 3``: ``111``, ``1101``, ``1011``; spaced seeds match homologs across a substitution, as in
PatternHunter). Block ``p`` is ``g_p * normalize(sqrt(counts_p) * w_p)`` (``counts_p`` ``(n^k,)`` word counts over
the ``n`` canonical letters, ``w_p`` learned weights ``(n^k,)``, ``g_p`` a learned gain); the blocks are
concatenated, so the output is ``3 * n^k`` wide (protein, ``k = 3``: 24,000) and its cosine is a weighted sum of
per-pattern profile cosines. The encoder's token embedding adds a composition term: the normalised mean residue
embedding times a learned gain ``g_c`` that starts at :data:`COMPOSITION_GAIN` (so an untrained encoder is the
profile to about 1e-3 in cosine, and a sequence without a single word still gets a unit vector); why it is
bounded is measured in docs/models.md.

Training data enter twice: :meth:`KmerProfile.fit_statistics` sets ``w_p`` to the inverse document frequency of
each word over the training sequences (``log((N + 1) / (df + 1)) + 1``: a word found in many proteins says
little; ``phylocl train`` does this unless the encoder config says ``word_weights: uniform``, as ``default-dna``'s
does), and contrastive training then adjusts ``w_p`` and ``g_p``. Untrained (all weights 1) the first block is
the ``kmer:k`` baseline on ``sqrt`` counts. Words touching padding, ``X`` or mask tokens are skipped.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from phylocl.data.alphabet import PAD_ID, get_alphabet
from phylocl.data.words import window_words_torch
from phylocl.models.patterns import profile_dim, seed_patterns  # torch-free home of the pattern rules

__all__ = ["KmerProfile", "seed_patterns", "profile_dim", "COMPOSITION_GAIN"]

COMPOSITION_GAIN = 1e-3  # initial norm of the composition term (each pattern block has norm 1)


class KmerProfile(nn.Module):
    """See the module docstring. ``forward(ids (B, L), mask (B, L), unigram) -> (B, patterns * n^k)``."""

    takes_ids = True

    def __init__(self, *, alphabet: str, k: int, max_rows: int = 65_536) -> None:
        super().__init__()
        alpha = get_alphabet(alphabet)
        self.n, self.k = len(alpha.canonical), int(k)
        if self.k < 1 or self.n**self.k > max_rows:
            raise ValueError(f"k must be >= 1 with {self.n}^k <= {max_rows}, got {k}")
        self.patterns = seed_patterns(self.k)
        self.register_buffer("code", torch.from_numpy(alpha.letter_codes()), persistent=False)  # token id -> letter
        self.weights = nn.Parameter(torch.ones(len(self.patterns), self.n**self.k))  # (P, n^k)
        self.gains = nn.Parameter(torch.ones(len(self.patterns)))  # (P,)
        self.composition_gain = nn.Parameter(torch.tensor(COMPOSITION_GAIN))

    def reset_unigram(self, unigram: nn.Embedding) -> None:
        """Residue embeddings ``N(0, 1)`` per entry (the composition term is normalised, so only directions count)."""
        with torch.no_grad():
            nn.init.normal_(unigram.weight)
            unigram.weight[PAD_ID].zero_()

    def word_ids(self, codes: torch.Tensor, pattern: str) -> torch.Tensor:
        """Word of every start position for ``pattern``: ``(B, L - span + 1)``; invalid ones -> ``n^k``."""
        return window_words_torch(codes, pattern, self.n)  # (B, L - span + 1)

    def counts(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Word counts ``(B, P, n^k)`` float32 (no weights)."""
        codes = self.code[ids].masked_fill(~mask, -1)  # (B, L)
        size = self.n**self.k
        out = codes.new_zeros((ids.shape[0], len(self.patterns), size + 1), dtype=torch.float32)
        for p, pattern in enumerate(self.patterns):
            if codes.shape[1] < len(pattern):
                continue
            words = self.word_ids(codes, pattern)  # (B, W)
            out[:, p].scatter_add_(1, words, torch.ones_like(words, dtype=torch.float32))
        return out[..., :size]

    @torch.no_grad()
    def fit_statistics(self, token_arrays: Sequence[np.ndarray], batch_size: int = 256) -> None:
        """Set the weights to each word's inverse document frequency over ``token_arrays`` (training sequences)."""
        from phylocl.data.tokens import pad_batch

        df = torch.zeros(len(self.patterns), self.n**self.k, dtype=torch.float64)
        for lo in range(0, len(token_arrays), batch_size):
            batch = pad_batch(list(token_arrays[lo:lo + batch_size]))
            c = self.counts(batch["input_ids"].to(self.code.device), batch["attention_mask"].to(self.code.device))
            df += (c > 0).sum(0).double().cpu()
        idf = torch.log((len(token_arrays) + 1) / (df + 1)) + 1
        self.weights.copy_(idf.to(self.weights))

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, unigram: nn.Embedding) -> torch.Tensor:
        """``ids``/``mask``: ``(B, L)``; ``unigram``: the token embedding (composition term). Returns ``(B, P n^k)``."""
        prof = self.counts(ids, mask).sqrt() * self.weights  # (B, P, n^k)
        prof = F.normalize(prof, dim=-1) * self.gains[:, None]  # (B, P, n^k)
        comp = F.embedding_bag(ids.masked_fill(~mask, PAD_ID), unigram.weight, mode="sum", padding_idx=PAD_ID)
        comp = F.normalize(comp, dim=-1) * self.composition_gain  # (B, D), norm |g_c|
        return prof.flatten(1) + comp  # (B, P n^k)
