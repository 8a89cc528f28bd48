"""Collation into the batch dicts the training and evaluation loops read.

Pairs: ``{"a": token_batch, "b": token_batch, "labels": LongTensor (B,)}``; sequences:
``{"tokens": token_batch, "labels": LongTensor (B,), "index": LongTensor (B,)}``. A token batch is
:func:`phylocl.data.tokens.pad_batch`'s ``{"input_ids": (B, L) int64, "attention_mask": (B, L) bool}``, padding id
0 on the right, no CLS token (encoders add their own).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from phylocl.data.tokens import pad_batch

__all__ = ["PairCollator", "SequenceCollator"]


@dataclass(frozen=True)
class PairCollator:
    """Collate ``(tokens_a, tokens_b, label)`` items; ``pad_to_multiple_of`` rounds ``L`` up (both views)."""

    pad_to_multiple_of: int = 1

    def __call__(self, items) -> dict:
        a, b, labels = zip(*items)
        return {
            "a": pad_batch(a, pad_to_multiple_of=self.pad_to_multiple_of),
            "b": pad_batch(b, pad_to_multiple_of=self.pad_to_multiple_of),
            "labels": torch.tensor(labels, dtype=torch.long),
        }


@dataclass(frozen=True)
class SequenceCollator:
    """Collate ``(tokens, label, index)`` items."""

    pad_to_multiple_of: int = 1

    def __call__(self, items) -> dict:
        tokens, labels, index = zip(*items)
        return {
            "tokens": pad_batch(tokens, pad_to_multiple_of=self.pad_to_multiple_of),
            "labels": torch.tensor(labels, dtype=torch.long),
            "index": torch.tensor(index, dtype=torch.long),
        }
