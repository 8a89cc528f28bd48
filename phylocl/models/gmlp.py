"""gMLP and aMLP backbones (Liu et al. 2021, "Pay Attention to MLPs", arXiv 2105.08050), with padding masks.

A gMLP block is ``x + DropPath(Dropout(W_out · SGU(GELU(W_in · LN(x)))))`` where the Spatial Gating Unit splits
the ``ffn_dim`` channels into halves ``u, v`` and returns ``u ⊙ (W · LN(v) + b)``: ``W`` is an ``n × n`` projection
over positions (``n`` = the backbone's ``seq_len``), ``b`` a per-position bias. ``W`` starts near zero and ``b`` at
one, so at initialisation the gate is ~1 and every block is a plain feed-forward block. aMLP adds a one-head
"tiny attention" computed from the normalised block input to the gate before the multiplication.

Padding: each sample has its own mask. The spatial projection only reads real positions (the columns of padded
positions are zeroed per sample, by zeroing ``LN(v)`` there) and the tiny attention masks padded keys, so nothing
at a padded position ever reaches a real one. A batch of width ``L <= n`` uses the top-left ``L × L`` block of
``W`` and the first ``L`` biases, so a sequence gets the same output alone or batched with longer ones.

The spatial projection is position-specific (not translation invariant): residue ``i`` of the input is always
treated as "position ``i``". A crop or window is therefore seen as if it started at position 0; training on random
crops of ``<= n`` residues and embedding long sequences as windows keep training and inference consistent.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from phylocl.models.layers import DropPath, drop_path_rates
from phylocl.models.moe import MoEOptions

__all__ = ["SpatialGatingUnit", "TinyAttention", "GMLPBlock", "GMLP", "init_spatial_"]


def init_spatial_(weight: torch.Tensor, bias: torch.Tensor, *, init_eps: float, seq_len: int) -> None:
    """gMLP's near-identity start for spatial weights (``(..., n, n)``): ``U(-eps / n, eps / n)``, bias 1."""
    bound = init_eps / seq_len
    nn.init.uniform_(weight, -bound, bound)
    nn.init.ones_(bias)


class SpatialGatingUnit(nn.Module):
    """``SGU(z) = u ⊙ (W[:L, :L] · (LN(v) ⊙ m) + b[:L] [+ gate_res])`` with ``u, v = split(z)``.

    Args:
        ffn_dim: channels of ``z`` (even); the output has ``ffn_dim // 2``.
        seq_len: ``n``, the largest number of positions.
        init_eps: ``W ~ U(-init_eps / n, init_eps / n)``, so ``|Σ_j W_ij x_j| <= init_eps · max|x|``; ``b = 1``.
    """

    def __init__(self, *, ffn_dim: int, seq_len: int, init_eps: float = 1e-3) -> None:
        super().__init__()
        if ffn_dim % 2:
            raise ValueError(f"ffn_dim must be even, got {ffn_dim}")
        if seq_len < 1:
            raise ValueError(f"seq_len must be >= 1, got {seq_len}")
        self.seq_len = seq_len
        self.init_eps = float(init_eps)
        self.norm = nn.LayerNorm(ffn_dim // 2)
        self.weight = nn.Parameter(torch.empty(seq_len, seq_len))  # (n, n): output position i, input position j
        self.bias = nn.Parameter(torch.empty(seq_len))  # (n,)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init_spatial_(self.weight, self.bias, init_eps=self.init_eps, seq_len=self.seq_len)

    def forward(self, z: torch.Tensor, mask: torch.Tensor, gate_res: torch.Tensor | None = None) -> torch.Tensor:
        """``z``: ``(B, L, ffn_dim)``, ``mask``: ``(B, L)`` bool; ``gate_res``: ``(B, L, ffn_dim // 2)`` or None.

        Returns ``(B, L, ffn_dim // 2)``.
        """
        width = z.shape[1]
        if width > self.seq_len:
            raise ValueError(f"gMLP input has {width} positions but the spatial projection holds {self.seq_len}")
        u, v = z.chunk(2, dim=-1)  # (B, L, F/2) each
        v = self.norm(v).masked_fill(~mask.unsqueeze(-1), 0.0)  # padded columns contribute nothing
        w = self.weight[:width, :width]  # (L, L)
        if torch.is_grad_enabled():
            gate = torch.matmul(w, v) + self.bias[:width, None]  # (B, L, F/2)
        else:  # inference: a batched GEMM over the broadcast weight avoids matmul's copies of v (~1.4x on CPU)
            bias = self.bias[:width, None].to(v.dtype).expand(v.shape[0], width, v.shape[2])  # (B, L, F/2)
            gate = torch.baddbmm(bias, w.to(v.dtype).expand(v.shape[0], width, width), v)  # (B, L, F/2)
        if gate_res is not None:
            gate = gate + gate_res
        return u * gate


class TinyAttention(nn.Module):
    """aMLP's one-head attention of size ``attn_dim``: ``(B, L, dim) -> (B, L, out_dim)``, padded keys masked."""

    def __init__(self, *, dim: int, out_dim: int, attn_dim: int) -> None:
        super().__init__()
        self.attn_dim = attn_dim
        self.qkv = nn.Linear(dim, 3 * attn_dim)
        self.out = nn.Linear(attn_dim, out_dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).unsqueeze(1).chunk(3, dim=-1)  # (B, 1, L, a) each
        keys = mask[:, None, None, :]  # (B, 1, 1, L): True = attend
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=keys)  # (B, 1, L, a), scale 1/sqrt(a)
        return self.out(y.squeeze(1))  # (B, L, out_dim)


class GMLPBlock(nn.Module):
    """One gMLP (or aMLP, with ``attn_dim``) block with a residual connection; ``(B, L, dim) -> (B, L, dim)``.

    ``sgu`` replaces the spatial gating unit (sMLP's spatial experts, :class:`~phylocl.models.smlp.SpatialMoE`);
    ``moe`` (a :class:`~phylocl.models.moe.MoESublayer`, residual inside) runs after the block.
    """

    def __init__(
        self,
        *,
        dim: int,
        ffn_dim: int,
        seq_len: int,
        attn_dim: int | None = None,
        dropout: float = 0.0,
        drop_path: float = 0.0,
        init_eps: float = 1e-3,
        sgu: nn.Module | None = None,
        moe: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.proj_in = nn.Linear(dim, ffn_dim)
        self.attn = None if attn_dim is None else TinyAttention(dim=dim, out_dim=ffn_dim // 2, attn_dim=attn_dim)
        self.sgu = sgu if sgu is not None else SpatialGatingUnit(ffn_dim=ffn_dim, seq_len=seq_len, init_eps=init_eps)
        self.proj_out = nn.Linear(ffn_dim // 2, dim)
        self.dropout = nn.Dropout(dropout)
        self.drop_path = DropPath(p=drop_path)
        self.moe = moe

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        y = self.norm(x)  # (B, L, D)
        gate_res = None if self.attn is None else self.attn(y, mask)  # (B, L, F/2)
        z = F.gelu(self.proj_in(y))  # (B, L, F)
        z = self.sgu(z, mask, gate_res)  # (B, L, F/2)
        z = self.dropout(self.proj_out(z))  # (B, L, D)
        x = x + self.drop_path(z)
        return x if self.moe is None else self.moe(x, mask)  # Switch feed-forward sublayer (residual inside)


class GMLP(nn.Module):
    """A stack of gMLP/aMLP blocks and a final LayerNorm.

    Args:
        dim, depth, ffn_dim: width, number of blocks, channel-MLP width (even).
        seq_len: most positions per input (``n`` of the spatial projections).
        attn_dim: tiny-attention size for aMLP; ``None`` for gMLP.
        dropout: dropout on each block's output; drop_path: stochastic depth of the last block (linear ramp).
        init_eps: spatial-weight init scale (see :class:`SpatialGatingUnit`).
        moe: Switch feed-forward sublayers after the blocks :meth:`MoEOptions.at` selects (``None``: none).

    ``forward(x (B, L, dim), mask (B, L) bool) -> (B, L, dim)`` with ``L <= seq_len``.
    """

    def __init__(
        self,
        *,
        dim: int,
        depth: int,
        ffn_dim: int,
        seq_len: int,
        attn_dim: int | None = None,
        dropout: float = 0.0,
        drop_path: float = 0.0,
        init_eps: float = 1e-3,
        moe: MoEOptions | None = None,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.max_positions = seq_len
        self.blocks = nn.ModuleList(
            GMLPBlock(
                dim=dim, ffn_dim=ffn_dim, seq_len=seq_len, attn_dim=attn_dim,
                dropout=dropout, drop_path=p, init_eps=init_eps,
                moe=moe.sublayer(dim, dropout=dropout, drop_path=p) if moe is not None and moe.at(i) else None,
            )
            for i, p in enumerate(drop_path_rates(drop_path, depth))
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, mask)  # (B, L, D)
        return self.norm(x)
