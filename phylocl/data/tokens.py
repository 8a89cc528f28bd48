"""Padding token arrays into the batch format every encoder reads.

A token batch is ``{"input_ids": LongTensor (B, L), "attention_mask": BoolTensor (B, L)}`` with padding id 0
on the right and ``attention_mask`` True on real tokens. ``L`` is the longest sequence in the batch,
optionally rounded up to a multiple (``pad_to_multiple_of``) for kernel-friendly shapes.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from phylocl.data.alphabet import PAD_ID

__all__ = ["pad_batch", "slice_batch", "batch_lengths"]


def pad_batch(arrays: Sequence[np.ndarray], *, pad_to_multiple_of: int = 1) -> dict[str, torch.Tensor]:
    """Right-pad 1-D token-id arrays into a batch.

    Args:
        arrays: ``B`` int arrays of lengths ``L_i >= 1``.
        pad_to_multiple_of: round the padded length up to a multiple of this.

    Returns:
        ``{"input_ids": (B, L) int64, "attention_mask": (B, L) bool}``.
    """
    if len(arrays) == 0:
        raise ValueError("cannot pad an empty batch")
    lengths = [len(a) for a in arrays]
    width = max(lengths)
    if pad_to_multiple_of > 1:
        width = -(-width // pad_to_multiple_of) * pad_to_multiple_of
    ids = np.full((len(arrays), width), PAD_ID, dtype=np.int64)
    for i, a in enumerate(arrays):
        ids[i, : len(a)] = a
    input_ids = torch.from_numpy(ids)
    mask = torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]  # (B, L)
    return {"input_ids": input_ids, "attention_mask": mask}


def slice_batch(batch: dict[str, torch.Tensor], index) -> dict[str, torch.Tensor]:
    """Rows ``index`` (slice, list or tensor) of every tensor in a token batch, trimmed to the longest kept row."""
    out = {k: v[index] for k, v in batch.items()}
    mask = out["attention_mask"]
    if mask.numel():
        width = int(mask.sum(dim=1).max().item())
        width = max(width, 1)
        out = {k: (v[:, :width] if v.dim() >= 2 and v.shape[1] == mask.shape[1] else v) for k, v in out.items()}
    return out


def batch_lengths(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Number of real tokens per row, shape ``(B,)``."""
    return batch["attention_mask"].sum(dim=1)
