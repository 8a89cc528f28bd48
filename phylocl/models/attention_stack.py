"""Ablated self-attention stacks for rank-collapse experiments (Dong et al. 2021, arXiv 2103.03404).

:class:`AttentionStack` is a stack of :class:`AttentionBlock` s in which skip connections, MLPs and LayerNorms can
each be switched off; with all three on it is phylocl's pre-LN transformer block. The pure self-attention network
of the paper (SAN) is ``skip=False, mlp=False, norm=False``: ``x <- Attn(x)``, whose output converges to a rank-one
matrix (every token the same vector) doubly exponentially with depth. These stacks are for studying that effect;
they are not registered encoders. ``forward(x (B, L, dim), mask (B, L)) -> (B, L, dim)``, no final norm.
"""

from __future__ import annotations

import torch
from torch import nn

from phylocl.models.transformer import SelfAttention

__all__ = ["AttentionBlock", "AttentionStack"]


class AttentionBlock(nn.Module):
    """``x <- [x +] Attn([LN](x))``, then, with ``mlp``, ``x <- [x +] MLP([LN](x))``; ``(B, L, D) -> (B, L, D)``."""

    def __init__(self, *, dim: int, heads: int, ffn_dim: int, skip: bool, mlp: bool, norm: bool) -> None:
        super().__init__()
        self.skip = bool(skip)
        self.attn = SelfAttention(dim=dim, heads=heads)
        self.norm1 = nn.LayerNorm(dim) if norm else nn.Identity()
        self.mlp = nn.Sequential(nn.Linear(dim, ffn_dim), nn.GELU(), nn.Linear(ffn_dim, dim)) if mlp else None
        self.norm2 = nn.LayerNorm(dim) if (norm and mlp) else nn.Identity()

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.attn(self.norm1(x), mask)  # (B, L, D)
        x = x + h if self.skip else h
        if self.mlp is not None:
            h = self.mlp(self.norm2(x))  # (B, L, D)
            x = x + h if self.skip else h
        return x


class AttentionStack(nn.Module):
    """``depth`` :class:`AttentionBlock` s with the same switches.

    Args:
        dim, depth, heads, ffn_dim: width, blocks, attention heads (``dim / heads`` even), MLP width.
        skip, mlp, norm: residual connections, MLP sub-blocks, pre-LayerNorms.
    """

    def __init__(self, *, dim: int, depth: int, heads: int, ffn_dim: int, skip: bool = False, mlp: bool = False,
                 norm: bool = False) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if ffn_dim < 1:
            raise ValueError(f"ffn_dim must be >= 1, got {ffn_dim}")
        self.max_positions = None
        self.blocks = nn.ModuleList(AttentionBlock(dim=dim, heads=heads, ffn_dim=ffn_dim, skip=skip, mlp=mlp,
                                                   norm=norm) for _ in range(depth))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, mask)  # (B, L, D)
        return x
