"""Per-block token representations of an encoder, reduced on the fly to the rank-collapse residual.

A backbone is a stack ``blocks`` (an ``nn.ModuleList``) whose blocks are called as ``block(x (B, L, D), mask
(B, L))`` (phylocl's gMLP and transformer, and any stack built the same way). :class:`BlockRecorder` puts a forward
hook on every block; each hook reads the block's output and the padding mask it was given, and adds the
per-sequence residual (:func:`~phylocl.diagnostics.measures.masked_residual`, padding excluded) to a running
mean. Nothing but those sums is kept, so any number of sequences fits in memory.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from phylocl.diagnostics.measures import masked_residual

__all__ = ["BlockRecorder", "find_blocks", "layer_residuals"]


def find_blocks(model) -> nn.ModuleList | None:
    """The block stack of ``model`` (``model.backbone.blocks`` or ``model.blocks``), or None (e.g. k-mer counts)."""
    for owner in (getattr(model, "backbone", None), model):
        blocks = getattr(owner, "blocks", None)
        if isinstance(blocks, nn.ModuleList) and len(blocks) > 0:
            return blocks
    return None


class BlockRecorder:
    """Context manager: mean residual of each block's output (and of the first block's input) over sequences.

    Example::

        with BlockRecorder(blocks=encoder.backbone.blocks) as rec:
            encoder(tokens)
        rec.input_residual, rec.residuals  # float, [float] * depth
    """

    def __init__(self, *, blocks: nn.ModuleList) -> None:
        if not isinstance(blocks, nn.ModuleList) or len(blocks) == 0:
            raise ValueError("blocks must be a non-empty nn.ModuleList")
        self.blocks = blocks
        self._sums = [0.0] * (len(blocks) + 1)  # index 0: input of block 0
        self._count = 0
        self._handles: list = []

    def _hook(self, index: int):
        def hook(module, args, output):
            if len(args) < 2:
                raise RuntimeError(f"block {index} was not called as block(x, mask)")
            x, mask = args[0], args[1].to(torch.bool)  # (B, L, D), (B, L)
            if index == 0:
                self._sums[0] += float(masked_residual(x.detach(), mask).sum())
                self._count += int(x.shape[0])
            self._sums[index + 1] += float(masked_residual(output.detach(), mask).sum())
        return hook

    def __enter__(self) -> "BlockRecorder":
        self._handles = [b.register_forward_hook(self._hook(i)) for i, b in enumerate(self.blocks)]
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    @property
    def count(self) -> int:
        """Sequences seen (windows, when a forward cut sequences into windows)."""
        return self._count

    @property
    def input_residual(self) -> float:
        return self._sums[0] / max(self._count, 1)

    @property
    def residuals(self) -> list[float]:
        """Mean residual of each block's output, ``depth`` floats."""
        return [s / max(self._count, 1) for s in self._sums[1:]]


@torch.no_grad()
def layer_residuals(encoder, sequences: Sequence[str], *, batch_size: int = 32) -> dict:
    """Mean rank-collapse residual after every block of ``encoder`` over ``sequences`` (eval mode, no gradient).

    Sequences longer than ``encoder.max_len`` are cut to their first ``max_len`` residues (one window each, so every
    sequence counts once). Returns ``{"input_residual": float or None, "layer_residual": [float] * depth}``;
    a model without blocks gives ``{"input_residual": None, "layer_residual": []}``.
    """
    blocks = find_blocks(encoder)
    if blocks is None or not sequences:
        return {"input_residual": None, "layer_residual": []}
    was_training = encoder.training
    encoder.eval()
    try:
        with BlockRecorder(blocks=blocks) as rec:
            for lo in range(0, len(sequences), batch_size):
                chunk = [s[: encoder.max_len] for s in sequences[lo:lo + batch_size]]
                encoder(encoder.tokenize(chunk))
    finally:
        encoder.train(was_training)
    return {"input_residual": rec.input_residual, "layer_residual": rec.residuals}
