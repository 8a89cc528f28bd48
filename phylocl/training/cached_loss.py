"""CachedContrastiveLoss: GradCache as a loss whose ``.backward()`` does the work, for any training loop.

The pattern of sentence-transformers' ``CachedMultipleNegativesRankingLoss``, built on the named steps of
:mod:`phylocl.training.gradcache`::

    cached = phylocl.CachedContrastiveLoss(encoder, phylocl.InfoNCE(temperature=0.07), chunk_size=32)
    loss = cached(batch_a, batch_b, labels)   # a scalar tensor; encoder activations are NOT kept
    loss.backward()                           # encoder grads = those of loss_fn(encoder(a), encoder(b), labels)
    optimizer.step()

Forward: every view is embedded chunk by chunk without gradients, keeping only the ``(B, D)`` embeddings and the
RNG state each chunk started from. The embeddings enter the autograd graph through :class:`_Replay`, a
``torch.autograd.Function`` whose forward returns them unchanged; the loss is computed on them with gradients as
usual (its own parameters, such as a learnable temperature, are ordinary graph leaves). Backward: when autograd
reaches :class:`_Replay` with ``dL/dz``, it re-runs each chunk with gradients from its recorded RNG state (same
dropout masks) and back-propagates ``dL/dz_chunk`` into the encoder, one chunk of activations at a time. So
anything done to the loss before ``backward`` (scaling, ``GradScaler``, adding other terms) is honoured, and a
loss that is never back-propagated costs no replay.

The global RNG state is restored after the replay, so ``backward`` leaves it where a plain backward would.
DDP: the replay runs inside autograd's backward, where DDP's gradient hooks do not expect a second forward;
under DDP use :func:`~phylocl.training.gradcache.cached_backward` (or ``phylocl train``'s ``grad_cache``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from phylocl.arguments import positive_int
from phylocl.training.gradcache import (Batch, RngState, check_autocast, check_encoder, check_views, chunk_batches,
                                        cuda_devices_of, embed_without_grad, plan_chunks, replay)

__all__ = ["CachedContrastiveLoss"]


@dataclass
class _FirstPass:
    """What the replay needs: the encoder, each view's chunks, RNG states and row counts, where it runs."""

    encoder: torch.nn.Module
    chunks: dict[str, list[Batch]]
    states: dict[str, list[RngState]]
    sizes: dict[str, list[int]]
    devices: list[int]
    device_type: str
    autocast: torch.dtype | None


class _Replay(torch.autograd.Function):
    """Identity on the cached embeddings ``(B, D)`` of both views; backward replays the encoder chunk by chunk."""

    @staticmethod
    def forward(ctx, anchor, z_a, z_b, first: _FirstPass):
        ctx.first = first
        return z_a.clone(), z_b.clone()

    @staticmethod
    def backward(ctx, grad_a, grad_b):
        first = ctx.first
        resume = RngState.capture(first.devices)
        try:
            with torch.enable_grad():
                for name, grad in (("a", grad_a), ("b", grad_b)):
                    if grad is not None:
                        replay(first.encoder, first.chunks[name], list(grad.split(first.sizes[name])),
                               first.states[name], device_type=first.device_type, autocast=first.autocast)
        finally:
            resume.restore()
        # ctx.first is kept (token ids and RNG states, no activations; freed with the graph): a second backward
        # through a graph retained with retain_graph=True replays again, as a plain graph back-propagates again
        return None, None, None, None


class CachedContrastiveLoss(torch.nn.Module):
    """A contrastive loss over ``encoder`` outputs that holds encoder activations for one chunk at a time.

    Args:
        encoder: called as ``encoder(batch) -> (n, D)`` on token batches ``{"input_ids", "attention_mask"}``.
        loss: called as ``loss(z_a, z_b, labels)`` on ``(B, D)`` embeddings (e.g. :class:`~phylocl.InfoNCE`).
        chunk_size: most rows per encoder call (``None``: no row limit).
        token_budget: most padded tokens (rows x longest length) per encoder call (``None``: no limit).
        autocast: dtype to run the encoder under ``torch.autocast`` (the loss stays fp32).

    ``cached(batch_a, batch_b, labels=None)`` returns the loss (a scalar tensor); after ``.backward()`` the
    encoder's and the loss's gradients equal those of ``loss(encoder(batch_a), encoder(batch_b), labels)``
    (with dropout: the masks of the chunked first pass, replayed exactly; with one chunk per view, the plain
    call's own masks). Without gradients enabled it just computes the loss (one encoder call per view).

    A ``chunk_size`` at least ``B`` is one chunk, one that does not divide ``B`` leaves a smaller last chunk (same
    gradient). Randomness is replayed from torch's global CPU and CUDA generators (a ``torch.Generator`` of the
    encoder's own is not; see :func:`~phylocl.training.gradcache.cached_backward`). ``backward`` may be called
    again on a graph kept with ``retain_graph=True``: it replays again and the gradients accumulate, as for a
    plain loss. An exception raised by the encoder during the replay propagates from ``backward`` (the global RNG
    state restored; ``.grad`` may hold part of the gradient). Raises ``TypeError`` / ``ValueError`` naming the
    argument for a non-module encoder, a non-callable loss, a ``chunk_size``/``token_budget`` that is not an int
    >= 1, batches that are not token batches of the same ``B >= 1`` rows, ``labels`` of another length, or an
    encoder output that is not ``(n, D)``.
    """

    def __init__(self, encoder: torch.nn.Module, loss: torch.nn.Module, *, chunk_size: int | None = 32,
                 token_budget: int | None = None, autocast: torch.dtype | None = None) -> None:
        super().__init__()
        check_encoder(encoder)
        chunk_size = positive_int("chunk_size", chunk_size, optional=True)
        token_budget = positive_int("token_budget", token_budget, optional=True)
        if not callable(loss):
            raise ValueError(f"loss must be callable as loss(z_a, z_b, labels), got {type(loss).__name__}")
        self.encoder, self.loss = encoder, loss
        self.chunk_size, self.token_budget, self.autocast = chunk_size, token_budget, check_autocast(autocast)

    def forward(self, batch_a: Batch, batch_b: Batch, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The loss of the ``B`` pairs (row ``i`` of ``batch_a`` and ``batch_b``); see the class docstring."""
        check_views(batch_a, batch_b, labels)
        if not torch.is_grad_enabled():
            return self.loss(self.encoder(batch_a), self.encoder(batch_b), labels)
        param = next(iter(self.encoder.parameters()), None)
        device_type = (param if param is not None else batch_a["input_ids"]).device.type
        first = _FirstPass(self.encoder, {}, {}, {}, cuda_devices_of(self.encoder, batch_a, batch_b), device_type,
                           self.autocast)
        parts = {}
        for name, batch in (("a", batch_a), ("b", batch_b)):
            plan = plan_chunks(batch, chunk_size=self.chunk_size, token_budget=self.token_budget)
            first.chunks[name] = chunk_batches(batch, plan)
            parts[name], first.states[name] = embed_without_grad(self.encoder, first.chunks[name],
                                                                 cuda_devices=first.devices,
                                                                 device_type=device_type, autocast=self.autocast)
            first.sizes[name] = [p.shape[0] for p in parts[name]]
        dtype = torch.promote_types(parts["a"][0].dtype, torch.float32)
        z_a, z_b = (torch.cat(parts[v]).to(dtype) for v in ("a", "b"))  # (B, D) each, no graph
        anchor = torch.empty(0, requires_grad=True)  # puts _Replay in the graph although z_a, z_b need no grad
        z_a, z_b = _Replay.apply(anchor, z_a, z_b, first)
        with torch.autocast(device_type=device_type, enabled=False):
            return self.loss(z_a, z_b, labels)

    def cached(self, batch_a: Batch, batch_b: Batch, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Same as calling the module: the loss tensor whose ``.backward()`` replays the encoder chunk by chunk."""
        return self(batch_a, batch_b, labels)
