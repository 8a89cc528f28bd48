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

**Similar words** (``similar_rank = r > 0``; issue 24): exact words cannot find a homolog that
shares none, so the profile gets a dense, low-rank block beside it. Each word ``u`` has a learned vector ``E_u``
``(r,)``; block ``p`` adds ``g_s / sqrt(P) * normalize(sum_u sqrt(counts_p[u]) w_p[u] E_u)``, ``P r`` columns after
the ``P n^k`` profile columns (``g_s`` a learned gain, starting at :data:`SIMILAR_GAIN`). ``E`` starts as the best
rank-``r`` factor of the BLOSUM62 word kernel ``K(u, v) = prod_i M(u_i, v_i)`` (``M``: the letters' odds ratios
``2^(B / 2)`` scaled to 1 on the diagonal, multiplied over the word), so ``E_u . E_v`` is large for words that score well against each other
(:func:`similar_word_vectors`); training then moves it. For DNA the letter kernel is the K80 odds ratio at
:data:`DNA_SIMILAR_DISTANCE` substitutions per site (transitions closer than transversions). The block is what the sparse path stores as extra low-rank
coefficients (:mod:`phylocl.models.sparse_embed`), so the index keeps its form.
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

__all__ = ["KmerProfile", "seed_patterns", "profile_dim", "similar_word_vectors", "letter_odds", "COMPOSITION_GAIN",
           "SIMILAR_GAIN", "DNA_SIMILAR_DISTANCE"]

COMPOSITION_GAIN = 1e-3  # initial norm of the composition term (each pattern block has norm 1)
SIMILAR_GAIN = 0.3  # initial norm of the similar-word block (the profile blocks together: sqrt(P))
DNA_SIMILAR_DISTANCE = 0.5  # K80 distance (substitutions per site, kappa 2) of the DNA letter kernel


def letter_odds(alphabet: str = "protein") -> np.ndarray:
    """``(n, n)`` letter similarity ``M`` of the similar-word kernel, 1 on the diagonal, letters in canonical order.

    Protein: BLOSUM62 odds ratios ``2^(B62(a, b) / 2)``. DNA (``ACGT``): K80 substitution probabilities at
    :data:`DNA_SIMILAR_DISTANCE` with transition/transversion ratio 2, over the uniform frequency 1/4. Each is then
    scaled to ``M(a, b) / sqrt(M(a, a) M(b, b))``.
    """
    if alphabet == "protein":
        from Bio.Align import substitution_matrices

        from phylocl.data.simulator.substitution import AMINO_ACIDS

        b = substitution_matrices.load("BLOSUM62")
        m = np.array([[2.0 ** (b[x][y] / 2) for y in AMINO_ACIDS] for x in AMINO_ACIDS])  # (20, 20)
    elif alphabet == "dna":
        d, kappa = DNA_SIMILAR_DISTANCE, 2.0
        tv = 0.25 - 0.25 * np.exp(-4 * d / (kappa + 2))  # each of the two transversions
        ts = 0.25 + 0.25 * np.exp(-4 * d / (kappa + 2)) - 0.5 * np.exp(-2 * d * (kappa + 1) / (kappa + 2))
        same = 1.0 - ts - 2 * tv
        m = np.array([[same, tv, ts, tv], [tv, same, tv, ts], [ts, tv, same, tv], [tv, ts, tv, same]]) / 0.25  # ACGT
    else:
        raise ValueError(f"no similar-word kernel for alphabet {alphabet!r}")
    return m / np.sqrt(np.outer(np.diag(m), np.diag(m)))  # every letter similarity 1 to itself (protein W: 45)


def similar_word_vectors(k: int, rank: int, alphabet: str = "protein") -> np.ndarray:
    """``(n^k, rank)`` float32 ``E`` with ``E E^T`` the best rank-``rank`` approximation of the word kernel
    ``K(u, v) = prod_i M(u_i, v_i)`` (``M``: :func:`letter_odds`; for protein
    ``M(a, b) = 2^(B62(a, b) / 2) / sqrt(2^(B62(a, a) / 2) 2^(B62(b, b) / 2))``; words in :class:`KmerProfile`'s
    order), scaled to RMS entry 1.

    ``K`` is the ``k``-fold Kronecker power of the ``n x n`` matrix ``M``, so its eigenpairs are products of
    ``M``'s: the ``rank`` largest products are taken (``M``'s few negative eigenvalues are clipped to 0).
    """
    m = letter_odds(alphabet)  # (n, n)
    lam, u = np.linalg.eigh(m)
    lam = np.clip(lam, 0.0, None)
    vals, vecs = np.ones(1), np.ones((1, 1))
    for _ in range(k):  # Kronecker power, first letter most significant (as word ids)
        vals = np.outer(vals, lam).ravel()
        vecs = np.einsum("ia,jb->ijab", vecs, u).reshape(vecs.shape[0] * len(lam), -1)
    top = np.argsort(-vals, kind="stable")[:rank]
    e = vecs[:, top] * np.sqrt(vals[top])[None, :]  # (n^k, rank)
    return (e / np.sqrt((e**2).mean())).astype(np.float32)


class KmerProfile(nn.Module):
    """See the module docstring. ``forward(ids (B, L), mask (B, L), unigram) -> (B, patterns * n^k)``."""

    takes_ids = True

    def __init__(self, *, alphabet: str, k: int, similar_rank: int = 0, max_rows: int = 65_536) -> None:
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
        self.similar_rank = int(similar_rank)
        if self.similar_rank:
            if alpha.name not in ("protein", "dna") or self.similar_rank < 1 or self.similar_rank > self.n**self.k:
                raise ValueError(f"similar_rank needs protein or DNA words and 1..{self.n ** self.k}, got "
                                 f"{similar_rank} for {alpha.name}")
            self.word_vectors = nn.Parameter(torch.from_numpy(
                similar_word_vectors(self.k, self.similar_rank, alpha.name)))
            self.similar_gain = nn.Parameter(torch.tensor(SIMILAR_GAIN))

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
        weighted = self.counts(ids, mask).sqrt() * self.weights  # (B, P, n^k)
        out = (F.normalize(weighted, dim=-1) * self.gains[:, None]).flatten(1)  # (B, P n^k)
        if self.similar_rank:
            out = torch.cat([out, self.similar_block(weighted).flatten(1)], 1)  # (B, P (n^k + r))
        comp = F.embedding_bag(ids.masked_fill(~mask, PAD_ID), unigram.weight, mode="sum", padding_idx=PAD_ID)
        comp = F.normalize(comp, dim=-1) * self.composition_gain  # (B, D), norm |g_c|
        return out + comp  # (B, D)

    def similar_block(self, weighted: torch.Tensor) -> torch.Tensor:
        """``(B, P, r)``: ``g_s / sqrt(P) * normalize(weighted_p @ E)`` per pattern; ``weighted`` ``(B, P, n^k)``."""
        t = weighted @ self.word_vectors  # (B, P, r)
        return F.normalize(t, dim=-1) * (self.similar_gain / len(self.patterns) ** 0.5)
