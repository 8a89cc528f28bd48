"""How big an encoder would be, before it is built: refuse configs that cannot fit in memory, with the estimate.

``model.overrides.depth=1e8`` would otherwise build 10^8 blocks (minutes, then the kernel kills the process) and
``dim=1e6`` or ``max_len=1e8`` (gMLP's spatial gating holds ``max_len^2`` weights) ask for terabytes. The count is
exact for small models (built on PyTorch's ``meta`` device, which allocates nothing); for deep stacks it is
extrapolated from two shallow ones (every block of a stack has the same size)::

    check_fits(config, copies=4)     # training: weights, gradients and AdamW's two moments
"""

from __future__ import annotations

import dataclasses

from phylocl.errors import InputError
from phylocl.models.encoder_config import EncoderConfig
from phylocl.resources import available_memory, human_bytes

__all__ = ["estimate_elements", "check_fits"]

_STACKS = ("gmlp", "transformer", "smlp")  # backbones whose size grows by one equal block per unit of depth
_MAX_WORD_LETTERS = 16  # k-mer backbones: depth is the word length, and sizes grow as letters^depth


def _count(config: EncoderConfig) -> int:
    import torch

    from phylocl.models.encoder import SequenceEncoder

    with torch.device("meta"):
        model = SequenceEncoder(config=config)
    return sum(t.numel() for t in model.parameters()) + sum(t.numel() for t in model.buffers())


def estimate_elements(config: EncoderConfig) -> int:
    """Parameters plus buffers of the encoder ``config`` describes (numbers, not bytes)."""
    if config.backbone not in _STACKS:
        if config.depth > _MAX_WORD_LETTERS:
            raise InputError(f"model {config.name}: depth (letters per word) {config.depth} is more than "
                             f"{_MAX_WORD_LETTERS}; the vocabulary grows as letters^depth")
        return _count(config)
    step = 2 * max(1, config.moe_every if config.moe_experts else 1)
    if config.depth <= 2 * step:
        return _count(config)
    probe = {"smlp_dense": None} if config.backbone == "smlp" else {}
    a = _count(dataclasses.replace(config, depth=step, **probe))
    b = _count(dataclasses.replace(config, depth=2 * step, **probe))
    return a + (config.depth - step) * (b - a) // step


def check_fits(config: EncoderConfig, *, copies: int = 1, bytes_per_element: int = 4) -> None:
    """Raise :class:`~phylocl.errors.InputError` when ``copies`` float32 copies of the encoder's parameters and
    buffers exceed the memory available now (``copies=4`` for training with AdamW)."""
    have = available_memory()
    if have is None:
        return
    n = estimate_elements(config)
    need = n * bytes_per_element * copies
    if need > have:
        what = "to train (weights, gradients, 2 optimiser moments)" if copies > 1 else "to hold"
        raise InputError(f"model {config.name} (backbone {config.backbone}, dim {config.dim}, depth {config.depth}, "
                         f"max_len {config.max_len}) has about {n:,} parameters and buffers: {human_bytes(need)} "
                         f"{what}, more than the {human_bytes(have)} of memory available")
