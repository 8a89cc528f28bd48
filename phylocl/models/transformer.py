"""Pre-LayerNorm transformer encoder with rotary position embeddings (RoPE) and SDPA attention.

Block: ``x = x + DropPath(Dropout(Attn(LN(x))))``, then ``x = x + DropPath(Dropout(MLP(LN(x))))`` with a GELU MLP.
Attention is :func:`torch.nn.functional.scaled_dot_product_attention` with a key padding mask, so padded positions
never influence real ones. Rotary embeddings rotate queries and keys by position-dependent angles; attention
scores then depend only on relative positions, and any length works (no learned position table).

Options: ``attention="deberta"`` replaces rotary attention by DeBERTa's disentangled attention with bucketed
relative positions (:mod:`phylocl.models.deberta`; one relative-position table shared by the blocks), and ``moe``
replaces the MLP of every ``moe.every``-th block by a Switch mixture of experts (:mod:`phylocl.models.moe`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from phylocl.models.deberta import DisentangledAttention, RelativePositions
from phylocl.models.encoder_config import ATTENTIONS
from phylocl.models.layers import DropPath, drop_path_rates
from phylocl.models.moe import MoEOptions, SwitchFFN

__all__ = ["rotary_angles", "apply_rotary", "SelfAttention", "TransformerBlock", "Transformer", "ATTENTIONS"]


def rotary_angles(length: int, head_dim: int, *, base: float = 10000.0, device=None) -> tuple[torch.Tensor, ...]:
    """``cos, sin`` of the rotary angles ``pos · base^(-2i / head_dim)``, each ``(length, head_dim)`` float32.

    The ``head_dim / 2`` frequencies are repeated twice (the "rotate half" layout of GPT-NeoX / LLaMA).
    """
    inv_freq = base ** (-torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim)  # (hd/2,)
    pos = torch.arange(length, device=device, dtype=torch.float32)
    ang = torch.outer(pos, inv_freq)  # (L, hd/2)
    ang = torch.cat([ang, ang], dim=-1)  # (L, hd)
    return ang.cos(), ang.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` ``(..., L, hd)`` pairwise: channel ``i`` with ``i + hd/2`` by the angle of position ``l``."""
    x1, x2 = x.chunk(2, dim=-1)
    rotated = torch.cat([-x2, x1], dim=-1)
    return (x * cos + rotated * sin).to(x.dtype)


class SelfAttention(nn.Module):
    """Multi-head self-attention with rotary positions and a key padding mask; ``(B, L, D) -> (B, L, D)``."""

    def __init__(self, *, dim: int, heads: int, dropout: float = 0.0, rope_base: float = 10000.0) -> None:
        super().__init__()
        if dim % heads or (dim // heads) % 2:
            raise ValueError(f"dim ({dim}) must split into {heads} heads of even size")
        self.heads = heads
        self.head_dim = dim // heads
        self.rope_base = rope_base
        self.dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, length, dim = x.shape
        qkv = self.qkv(x).view(b, length, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # (3, B, H, L, hd)
        q, k, v = qkv.unbind(0)  # (B, H, L, hd) each
        cos, sin = rotary_angles(length, self.head_dim, base=self.rope_base, device=x.device)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        keys = mask[:, None, None, :]  # (B, 1, 1, L): True = attend
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=keys, dropout_p=p)  # (B, H, L, hd)
        y = y.transpose(1, 2).reshape(b, length, dim)  # (B, L, D)
        return self.out(y)


class TransformerBlock(nn.Module):
    """Pre-LN transformer block; ``(B, L, dim) -> (B, L, dim)``.

    ``attention``: ``"rope"`` or ``"deberta"`` (then ``forward`` needs ``positions``, the shared table and bucket
    index of :class:`~phylocl.models.deberta.RelativePositions`). ``moe``: a Switch FFN replaces the MLP.
    """

    def __init__(
        self, *, dim: int, heads: int, ffn_dim: int, dropout: float = 0.0, drop_path: float = 0.0,
        rope_base: float = 10000.0, attention: str = "rope", moe: SwitchFFN | None = None,
    ) -> None:
        super().__init__()
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {attention!r}")
        self.norm1 = nn.LayerNorm(dim)
        if attention == "rope":
            self.attn = SelfAttention(dim=dim, heads=heads, dropout=dropout, rope_base=rope_base)
        else:
            self.attn = DisentangledAttention(dim=dim, heads=heads, dropout=dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = moe if moe is not None else nn.Sequential(nn.Linear(dim, ffn_dim), nn.GELU(),
                                                              nn.Linear(ffn_dim, dim))
        self.dropout = nn.Dropout(dropout)
        self.drop_path = DropPath(p=drop_path)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, positions: tuple | None = None) -> torch.Tensor:
        y = self.norm1(x)
        y = self.attn(y, mask) if positions is None else self.attn(y, mask, *positions)
        x = x + self.drop_path(self.dropout(y))  # (B, L, D)
        y = self.norm2(x)
        y = self.mlp(y, mask) if isinstance(self.mlp, SwitchFFN) else self.mlp(y)
        return x + self.drop_path(self.dropout(y))


class Transformer(nn.Module):
    """A stack of pre-LN transformer blocks and a final LayerNorm.

    ``forward(x (B, L, dim), mask (B, L) bool) -> (B, L, dim)``; any ``L`` (relative positions only).
    ``rel_buckets`` / ``max_distance``: DeBERTa's relative buckets per sign and the offset where they saturate.
    """

    def __init__(
        self, *, dim: int, depth: int, heads: int, ffn_dim: int, dropout: float = 0.0, drop_path: float = 0.0,
        rope_base: float = 10000.0, attention: str = "rope", rel_buckets: int = 32, max_distance: int = 256,
        moe: MoEOptions | None = None,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.max_positions = None  # no absolute position table: any length works
        self.positions = (RelativePositions(dim=dim, buckets=rel_buckets, max_distance=max_distance)
                          if attention == "deberta" else None)
        self.blocks = nn.ModuleList(
            TransformerBlock(dim=dim, heads=heads, ffn_dim=ffn_dim, dropout=dropout, drop_path=p, rope_base=rope_base,
                             attention=attention, moe=moe.switch_ffn(dim) if moe is not None and moe.at(i) else None)
            for i, p in enumerate(drop_path_rates(drop_path, depth))
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        positions = None if self.positions is None else self.positions(x.shape[1])
        for block in self.blocks:
            x = block(x, mask, positions)  # (B, L, D)
        return self.norm(x)
