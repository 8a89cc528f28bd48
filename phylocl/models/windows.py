"""Overlapping windows for sequences longer than an encoder's ``max_len``.

A sequence of ``N > W`` residues (``W`` = window) is cut into windows starting at ``0, s, 2s, ...`` (``s`` =
stride, ``W // 2`` by default) with the last one aligned to the end, so every window holds exactly ``W`` residues
and every residue is covered. A sequence of ``N <= W`` residues is one window. The encoder embeds each window,
averages the window embeddings and re-normalises.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from phylocl.data.alphabet import PAD_ID

if TYPE_CHECKING:  # window_starts / overlap_stride are used by the NumPy profile path, which needs no torch
    import torch

__all__ = ["default_stride", "overlap_stride", "window_starts", "window_batch", "DEFAULT_OVERLAP"]

DEFAULT_OVERLAP = 0.5  # fraction of a window shared with the next one (training and ``forward``)


def default_stride(window: int) -> int:
    """Stride used by the encoders: half a window (at least 1)."""
    return max(1, window // 2)


def overlap_stride(window: int, overlap: float) -> int:
    """Stride giving consecutive windows ``overlap`` of a window in common (``0 <= overlap < 1``).

    ``overlap_stride(128, 0.5) == 64`` (the default), ``overlap_stride(128, 0.25) == 96``, ``overlap_stride(128, 0)
    == 128`` (no residue embedded twice, except by the last window, which is aligned to the end).
    """
    if not 0 <= overlap < 1:
        raise ValueError(f"window overlap must be in [0, 1), got {overlap}")
    return max(1, min(window, round(window * (1 - overlap))))


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """0-based start offsets of the windows covering ``length`` residues.

    Example: ``window_starts(10, 4, 2) == [0, 2, 4, 6]``; ``window_starts(11, 4, 2) == [0, 2, 4, 6, 7]``.
    """
    if window < 1 or stride < 1 or stride > window:
        raise ValueError(f"need 1 <= stride <= window, got stride={stride}, window={window}")
    if length <= window:
        return [0]
    n = 1 + math.ceil((length - window) / stride)
    return [min(k * stride, length - window) for k in range(n)]


def window_batch(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, *, window: int, stride: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cut every row of a token batch into windows (vectorised; same windows as :func:`window_starts`).

    Args:
        input_ids: ``(B, L)`` int64, right-padded.
        attention_mask: ``(B, L)`` bool, True on real tokens.
        window, stride: window size and stride in tokens.

    Returns:
        ``(ids (M, W), mask (M, W), owner (M,))``: the windows of all rows (row order, then start order),
        right-padded to ``W = min(window, L)``, and the batch row each window comes from.
    """
    import torch

    if window < 1 or stride < 1 or stride > window:
        raise ValueError(f"need 1 <= stride <= window, got stride={stride}, window={window}")
    b, width = input_ids.shape
    device = input_ids.device
    w = min(window, width)
    lengths = attention_mask.sum(dim=1)  # (B,)
    excess = (lengths - w).clamp(min=0)  # (B,) residues beyond the first window
    n_win = 1 + torch.div(excess + stride - 1, stride, rounding_mode="floor")  # (B,)
    k = torch.arange(int(n_win.max()), device=device)  # (K,)
    starts = torch.minimum(k[None, :] * stride, excess[:, None])  # (B, K)
    valid = k[None, :] < n_win[:, None]  # (B, K)
    owner = torch.arange(b, device=device)[:, None].expand_as(valid)[valid]  # (M,)
    pos = starts[valid][:, None] + torch.arange(w, device=device)[None, :]  # (M, W)
    mask = pos < lengths[owner][:, None]  # (M, W)
    ids = input_ids[owner[:, None], pos.clamp(max=width - 1)].masked_fill(~mask, PAD_ID)  # (M, W)
    return ids, mask, owner
