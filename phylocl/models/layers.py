"""Small building blocks shared by the backbones and the encoder: stochastic depth, masked pooling, heads."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DropPath", "drop_path_rates", "masked_mean", "ProjectionHead"]


class DropPath(nn.Module):
    """Stochastic depth: in training, zero a residual branch for a random subset of samples.

    Each sample keeps its branch with probability ``1 - p``; kept branches are scaled by ``1 / (1 - p)`` so the
    expectation is unchanged. Identity in eval mode or when ``p == 0``.
    """

    def __init__(self, *, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop-path rate must be in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(B, ...)`` branch output; returns the same shape."""
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.dim() - 1)
        mask = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(keep)  # (B, 1, ...)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


def drop_path_rates(rate: float, depth: int) -> list[float]:
    """Per-block stochastic-depth rates growing linearly from 0 (first block) to ``rate`` (last block)."""
    if depth == 1:
        return [rate]
    return [rate * i / (depth - 1) for i in range(depth)]


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` over the positions where ``mask`` is True.

    Args:
        x: ``(B, L, D)`` token representations.
        mask: ``(B, L)`` bool, True on real tokens (at least one per row).

    Returns:
        ``(B, D)``. Padded positions contribute nothing, whatever their values (even inf/NaN).
    """
    m = mask.unsqueeze(-1)  # (B, L, 1)
    total = x.masked_fill(~m, 0.0).sum(dim=1)  # (B, D)
    count = m.sum(dim=1).clamp(min=1).to(x.dtype)  # (B, 1)
    return total / count


class ProjectionHead(nn.Module):
    """Maps pooled representations ``(B, dim)`` to ``(B, out_dim)`` (not normalised).

    ``kind="linear"``: one Linear. ``kind="mlp"``: Linear(dim, dim), GELU, dropout, Linear(dim, out_dim)
    (the SimCLR-style head). ``kind="none"``: the identity (``out_dim == dim``).
    """

    def __init__(self, *, dim: int, out_dim: int, kind: str, dropout: float = 0.0) -> None:
        super().__init__()
        if kind == "linear":
            self.net = nn.Linear(dim, out_dim)
        elif kind == "mlp":
            self.net = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(dim, out_dim))
        elif kind == "none":
            if out_dim != dim:
                raise ValueError(f"head 'none' needs out_dim == dim, got {out_dim} and {dim}")
            self.net = nn.Identity()
        else:
            raise ValueError(f"head kind must be 'linear', 'mlp' or 'none', got {kind!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, out_dim)
