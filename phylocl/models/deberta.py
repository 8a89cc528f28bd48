"""Disentangled attention with bucketed relative positions (He et al. 2021, DeBERTa, arXiv 2006.03654).

Each token has a content vector; positions enter only through a table ``P`` of relative-position embeddings
(``2k`` buckets, shared by all blocks and normalised by a LayerNorm). For query ``i``, key ``j`` and relative
bucket ``δ(i, j)`` the score of a head is (DeBERTa eq. 4, scaled by ``1 / sqrt(3d)``)::

    A_ij = q_i · k_j            content-to-content
         + q_i · K^r_δ(i,j)     content-to-position   (K^r = P W_k,r)
         + k_j · Q^r_δ(j,i)     position-to-content   (Q^r = P W_q,r)

Buckets (:func:`relative_buckets`): offsets ``|i - j| < k / 2`` each get their own bucket; larger ones share
log-spaced buckets up to ``max_distance``, beyond which all fall in the last bucket of their sign (as in
DeBERTa-v2's ``make_log_bucket_position``, written from the formula). Scores depend on relative positions only,
so any length works, and a window embeds like a sequence that starts there. The padding mask removes padded keys;
the two position terms are passed to :func:`torch.nn.functional.scaled_dot_product_attention` as an additive
bias. DeBERTa's enhanced mask decoder (absolute positions for masked-token prediction) has no use in a
contrastive encoder and is left out.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["relative_buckets", "RelativePositions", "DisentangledAttention"]


def relative_buckets(length: int, buckets: int, max_distance: int, device=None) -> torch.Tensor:
    """``(L, L)`` int64 bucket of offset ``i - j`` in ``[0, 2 * buckets)``, ``buckets`` (``k``, even) per sign.

    Offsets with ``|d| < k / 2`` map to ``d + k``; larger ones to ``sign(d) · (k/2 + ⌈log(|d| / (k/2)) /
    log((max_distance - 1) / (k/2)) · (k/2 - 1)⌉)`` clipped to ``k - 1``, plus ``k``.
    """
    pos = torch.arange(length, device=device)
    d = pos[:, None] - pos[None, :]  # (L, L): query minus key
    half = buckets // 2
    mag = d.abs().clamp(min=1).double()
    span = max(max_distance - 1, half + 1) / half
    log_pos = half + torch.ceil(torch.log(mag / half) / math.log(span) * (half - 1)).long()
    far = torch.sign(d) * log_pos.clamp(max=buckets - 1)
    return torch.where(d.abs() < half, d, far) + buckets


class RelativePositions(nn.Module):
    """The shared table ``LN(P)``, ``(2k, dim)``, and the bucket index of a width ``L``."""

    def __init__(self, *, dim: int, buckets: int, max_distance: int) -> None:
        super().__init__()
        if buckets < 2 or buckets % 2:
            raise ValueError(f"relative position buckets must be even and >= 2, got {buckets}")
        self.buckets, self.max_distance = buckets, max_distance
        self.embedding = nn.Embedding(2 * buckets, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(table (2k, dim), index (L, L))``."""
        device = self.embedding.weight.device
        index = relative_buckets(length, self.buckets, self.max_distance, device=device)
        return self.norm(self.embedding.weight), index


class DisentangledAttention(nn.Module):
    """Multi-head disentangled self-attention; ``(B, L, D) -> (B, L, D)`` given the table and bucket index."""

    def __init__(self, *, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim ({dim}) must split into {heads} heads")
        self.heads, self.head_dim, self.dropout = heads, dim // heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.pos_qk = nn.Linear(dim, 2 * dim)  # W_q,r and W_k,r of this block
        self.out = nn.Linear(dim, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(*x.shape[:-1], self.heads, self.head_dim).transpose(-3, -2)  # (..., H, N, hd)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        b, length, dim = x.shape
        q, k, v = (self._split(t) for t in self.qkv(x).chunk(3, dim=-1))  # (B, H, L, hd) each
        qr, kr = (self._split(t) for t in self.pos_qk(table.to(x.dtype)).chunk(2, dim=-1))  # (H, 2k, hd) each
        scale = 1.0 / math.sqrt(3 * self.head_dim)
        c2p = torch.matmul(q, kr.transpose(-1, -2))  # (B, H, L, 2k): q_i · K^r_b
        c2p = torch.gather(c2p, -1, index.expand(b, self.heads, length, length))  # [i, j] = q_i · K^r_δ(i,j)
        p2c = torch.matmul(k, qr.transpose(-1, -2))  # (B, H, L, 2k): k_j · Q^r_b
        p2c = torch.gather(p2c, -1, index.expand(b, self.heads, length, length))  # [j, i] = k_j · Q^r_δ(j,i)
        p2c = p2c.transpose(-1, -2)  # [i, j]
        bias = (c2p + p2c) * scale  # (B, H, L, L)
        bias = bias.masked_fill(~mask[:, None, None, :], float("-inf"))  # padded keys
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype), dropout_p=p, scale=scale)
        return self.out(y.transpose(1, 2).reshape(b, length, dim))  # (B, L, D)
