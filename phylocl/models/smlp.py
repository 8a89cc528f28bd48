"""sMLP backbone: sparse all-MLP with mixture-of-experts routing (Yu et al. 2022, arXiv 2203.06850).

``dense`` ordinary gMLP blocks, then ``depth - dense`` sparse blocks. A sparse block is a gMLP block whose
spatial gating unit is an **sMoE** (:class:`SpatialMoE`) followed by a **tMoE**, a Switch feed-forward sublayer
(:class:`~phylocl.models.moe.MoESublayer`), both top-1 routed with per-row capacity (:mod:`phylocl.models.moe`)::

    x = x + DropPath(Dropout(W_out (u ⊙ sMoE(LN(v)))))        # u, v = split(GELU(W_in LN(x)))
    x = x + DropPath(Dropout(tMoE(LN(x))))                    # tokens routed to feed-forward experts

**sMoE: routing in feature space.** The ``ffn_dim / 2`` gate channels are split into chunks of ``chunk``
channels; each chunk of a row (its ``(L, chunk)`` slice, all positions) is one routed unit. Its router input is
the chunk's channel mean at every position, ``(L,)``, times a position-indexed router weight (the first ``L``
columns for a batch of width ``L``, like the spatial projection); the chosen expert ``e`` applies its own spatial
projection ``W_e[:L, :L] · chunk + b_e[:L]``, scaled by the router probability. A dropped chunk's gate is 0.

**Routing variant, and why.** The paper routes sMoE chunks with deterministic assignment, or with a router that
sees only a prefix of the positions, because a causal language model must not let a chunk's routing (computed
from all positions) leak future tokens into earlier ones. phylocl's encoder is bidirectional: every position may
see every other one anyway (the spatial projection is dense, not triangular). So this module implements the
**learned routing over all positions** (the variant the paper cannot use for language modelling) for the
sMoE, and learned per-token routing for the tMoE. Padding is excluded as everywhere: padded positions are zeroed
before the router and the projections, and never routed in the tMoE.
"""

from __future__ import annotations

import torch
from torch import nn

from phylocl.models.gmlp import GMLPBlock, init_spatial_
from phylocl.models.layers import drop_path_rates
from phylocl.models.moe import MoEOptions, Top1Router

__all__ = ["SpatialMoE", "SMLP"]


class SpatialMoE(nn.Module):
    """sMoE gate: ``z (B, L, F) -> (B, L, F/2)``, ``u ⊙ gate`` with chunks of ``LN(v)`` routed to spatial experts.

    Args:
        ffn_dim: channels of ``z`` (even, ``ffn_dim / 2`` a multiple of ``chunk``).
        seq_len: ``n``, the largest number of positions.
        experts: spatial experts ``E >= 2``, each an ``n × n`` projection plus an ``n`` bias.
        chunk: channels per routed chunk.
        capacity_factor: each expert takes at most ``ceil(capacity_factor · K / E)`` of a row's ``K`` chunks.
        init_eps: ``W_e ~ U(-init_eps / n, init_eps / n)``, ``b_e = 1`` (as the gMLP spatial gating unit).
    """

    def __init__(self, *, ffn_dim: int, seq_len: int, experts: int, chunk: int, capacity_factor: float,
                 init_eps: float = 1e-3) -> None:
        super().__init__()
        if ffn_dim % 2 or (ffn_dim // 2) % chunk:
            raise ValueError(f"ffn_dim / 2 ({ffn_dim / 2}) must be a whole multiple of chunk ({chunk})")
        self.seq_len, self.chunk, self.init_eps = seq_len, chunk, float(init_eps)
        self.norm = nn.LayerNorm(ffn_dim // 2)
        self.router = Top1Router(in_dim=seq_len, experts=experts, capacity_factor=capacity_factor)
        self.weight = nn.Parameter(torch.empty(experts, seq_len, seq_len))  # (E, n, n)
        self.bias = nn.Parameter(torch.empty(experts, seq_len))  # (E, n)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init_spatial_(self.weight, self.bias, init_eps=self.init_eps, seq_len=self.seq_len)

    def forward(self, z: torch.Tensor, mask: torch.Tensor, gate_res: torch.Tensor | None = None) -> torch.Tensor:
        """``z``: ``(B, L, F)``, ``mask``: ``(B, L)`` bool; ``gate_res`` (aMLP) is not supported (must be None)."""
        if gate_res is not None:
            raise ValueError("SpatialMoE takes no tiny-attention gate")
        b, width, _ = z.shape
        if width > self.seq_len:
            raise ValueError(f"sMLP input has {width} positions but the spatial experts hold {self.seq_len}")
        u, v = z.chunk(2, dim=-1)  # (B, L, H) each
        v = self.norm(v).masked_fill(~mask.unsqueeze(-1), 0.0)
        k = v.shape[-1] // self.chunk
        chunks = v.view(b, width, k, self.chunk).permute(0, 2, 1, 3)  # (B, K, L, c)
        r = self.router(chunks.mean(-1), torch.ones(b, k, dtype=torch.bool, device=z.device))  # over (B, K)
        rows, cols = r.keep.nonzero(as_tuple=True)  # kept chunks
        gate = chunks.new_zeros(chunks.shape)  # (B, K, L, c): dropped chunks gate nothing
        for e in range(self.router.experts):
            sel = r.expert[rows, cols] == e
            bi, ki = rows[sel], cols[sel]  # (m,) each, possibly empty
            y = torch.matmul(self.weight[e, :width, :width], chunks[bi, ki])  # (m, L, c)
            y = (y + self.bias[e, :width, None]) * r.gate[bi, ki][:, None, None]
            gate = gate.index_put((bi, ki), y.to(gate.dtype))
        return u * gate.permute(0, 2, 1, 3).reshape(b, width, -1)  # (B, L, H)


class SMLP(nn.Module):
    """``dense`` gMLP blocks then ``depth - dense`` sparse blocks (sMoE + tMoE) and a final LayerNorm.

    Args:
        dim, depth, ffn_dim, seq_len, dropout, drop_path, init_eps: as :class:`~phylocl.models.gmlp.GMLP`.
        dense: number of leading dense blocks (``0 <= dense < depth``).
        experts, chunk, capacity_factor: of both MoE layers of a sparse block (see :class:`SpatialMoE`).
        moe_hidden: hidden width of the tMoE feed-forward experts.

    ``forward(x (B, L, dim), mask (B, L) bool) -> (B, L, dim)`` with ``L <= seq_len``.
    """

    def __init__(self, *, dim: int, depth: int, dense: int, ffn_dim: int, seq_len: int, experts: int, chunk: int,
                 capacity_factor: float, moe_hidden: int, dropout: float = 0.0, drop_path: float = 0.0,
                 init_eps: float = 1e-3) -> None:
        super().__init__()
        if not 0 <= dense < depth:
            raise ValueError(f"dense must be in [0, depth={depth}), got {dense}")
        self.max_positions = seq_len
        tmoe = MoEOptions(experts=experts, every=1, hidden=moe_hidden, capacity_factor=capacity_factor)
        blocks = []
        for i, p in enumerate(drop_path_rates(drop_path, depth)):
            sparse = i >= dense
            smoe = SpatialMoE(ffn_dim=ffn_dim, seq_len=seq_len, experts=experts, chunk=chunk,
                              capacity_factor=capacity_factor, init_eps=init_eps) if sparse else None
            blocks.append(GMLPBlock(
                dim=dim, ffn_dim=ffn_dim, seq_len=seq_len, dropout=dropout, drop_path=p, init_eps=init_eps,
                sgu=smoe, moe=tmoe.sublayer(dim, dropout=dropout, drop_path=p) if sparse else None))
        self.blocks = nn.ModuleList(blocks)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, mask)  # (B, L, D)
        return self.norm(x)
