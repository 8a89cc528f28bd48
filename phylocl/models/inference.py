"""Batched inference of a :class:`~phylocl.models.encoder.SequenceEncoder` on sequences of any length.

Each sequence is cut into windows of ``max_len`` residues (:mod:`phylocl.models.windows`); all windows are sorted
by length and run ``batch_size`` at a time (little padding); each sequence's window embeddings are summed in
float64, then the sums are re-normalised. This is the one embedding path: :meth:`SequenceEncoder.embed`, the
``embed``/``search``/``evaluate`` commands and the validation inside ``phylocl train`` all go through
:func:`embed_token_arrays`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from phylocl.data.tokens import pad_batch
from phylocl.models.windows import window_starts

__all__ = ["embed_token_arrays", "PRECISIONS"]

PRECISIONS = ("fp32", "bf16")  # inference precisions


def _windows(arrays: Sequence[np.ndarray], window: int, stride: int) -> tuple[list[tuple[int, int]], np.ndarray]:
    """``(owner, start)`` of every window and the order that runs them shortest first."""
    windows = [(i, s) for i, a in enumerate(arrays) for s in window_starts(len(a), window, stride)]
    lengths = np.array([min(window, len(arrays[i]) - s) for i, s in windows])
    return windows, np.argsort(lengths, kind="stable")


@torch.no_grad()
def embed_token_arrays(encoder, arrays: Sequence[np.ndarray], *, batch_size: int = 64, precision: str = "fp32",
                       show_progress_bar: bool = False) -> np.ndarray:
    """Unit embeddings ``(N, embed_dim)`` float32 of ``N`` token arrays (no CLS, any length), in input order.

    Runs ``encoder`` where its weights are, in eval mode (its previous mode is restored), under bfloat16
    autocast when ``precision="bf16"`` (window sums and the normalisation stay float64).
    ``show_progress_bar`` shows a tqdm bar of sequences on stderr.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    windows, order = _windows(arrays, encoder.max_len, encoder.window_stride)
    sums = np.zeros((len(arrays), encoder.embed_dim), dtype=np.float64)  # (N, E)
    remaining = np.bincount([i for i, _ in windows], minlength=len(arrays))  # windows left per sequence
    was_training = encoder.training
    device_type = next(encoder.parameters()).device.type
    encoder.eval()
    bar = tqdm(total=len(arrays), unit="seq", desc="embedding", disable=not show_progress_bar)
    try:
        for lo in range(0, len(order), batch_size):
            chunk = [windows[j] for j in order[lo : lo + batch_size]]
            batch = pad_batch([arrays[i][s : s + encoder.max_len] for i, s in chunk])
            with torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                z = encoder(batch).float().cpu().numpy()  # (b, E)
            owners = [i for i, _ in chunk]
            np.add.at(sums, owners, z)
            np.subtract.at(remaining, owners, 1)
            bar.update(int(np.sum(remaining[np.unique(owners)] == 0)))
    finally:
        bar.close()
        encoder.train(was_training)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.maximum(norms, 1e-12)).astype(np.float32)
