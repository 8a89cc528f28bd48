"""Cached-embedding gradient accumulation (GradCache, Gao et al. 2021, arXiv:2101.06983).

A contrastive loss needs every embedding of the batch at once, but the encoder's activations need only be
held for a chunk at a time. :func:`cached_backward` splits the step into three named steps:

1. :func:`embed_without_grad` - embed view a then view b chunk by chunk under ``torch.no_grad()``, keeping
   only the ``(n, D)`` embeddings and the RNG state each chunk started from;
2. :func:`loss_and_cache` - concatenate them into leaf tensors, compute the loss in (at least) fp32 and
   back-propagate it to the embeddings only: ``dL/dz`` is the cache (learnable loss parameters, such as
   InfoNCE's temperature, get their gradient here);
3. :func:`replay` - re-run each chunk with gradients from its recorded RNG state (same dropout masks) and
   back-propagate the cached gradient through the surrogate ``sum(z_chunk * dL/dz_chunk)``.

Encoders that record a loss term per call (MoE routers, :mod:`phylocl.training.router_loss`) plug in with two
callbacks: ``after_first_pass()`` runs once both views are embedded (collect the step's routing statistics) and
``replay_term()`` after each replayed call; its scalar is added to that chunk's surrogate.

Afterwards every parameter's ``.grad`` holds (accumulated on top of what was there, like ``backward``) the
gradient of ``loss_fn(encoder(batch_a), encoder(batch_b), labels)``, with peak activation memory of one chunk.
The encoder runs forward twice per chunk: about 4/3 of a plain step's compute (a backward costs ~2 forwards).
Encoders with batch statistics (BatchNorm) would see every chunk twice; phylocl's encoders use LayerNorm.

:class:`~phylocl.training.cached_loss.CachedContrastiveLoss` wraps the same steps as a loss whose ``.backward()``
replays the chunks, for training loops that call ``loss.backward()`` themselves.

Under DDP pass the ``DistributedDataParallel`` module as the encoder and gather inside ``loss_fn`` (see
:mod:`phylocl.training.distributed`): every replay but the very last runs under ``no_sync()``, so gradients are
all-reduced once per step and ranks may have different numbers of chunks. Build DDP with
``broadcast_buffers=False`` if the encoder has buffers, since each forward would otherwise be a collective.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from phylocl.arguments import positive_int
from phylocl.data.tokens import batch_lengths, slice_batch

__all__ = ["RngState", "plan_chunks", "chunk_batches", "cuda_devices_of", "embed_without_grad", "loss_and_cache",
           "replay", "cached_backward", "check_views", "check_encoder", "check_autocast"]

Batch = dict[str, torch.Tensor]
ReplayHook = Callable[[str, int, torch.Tensor, torch.Tensor], None]
BackwardFn = Callable[[torch.Tensor, bool], None]
ReplayTerm = Callable[[], "torch.Tensor | None"]


@dataclass(frozen=True)
class RngState:
    """The CPU generator state and that of each CUDA device a chunk touches (like ``torch.utils.checkpoint``)."""

    cpu: torch.Tensor
    cuda: tuple[tuple[int, torch.Tensor], ...] = ()

    @classmethod
    def capture(cls, cuda_devices: Sequence[int] = ()) -> "RngState":
        return cls(torch.get_rng_state(), tuple((d, torch.cuda.get_rng_state(d)) for d in cuda_devices))

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        for device, state in self.cuda:
            torch.cuda.set_rng_state(state, device)


def cuda_devices_of(encoder: torch.nn.Module, *batches: Batch) -> list[int]:
    """Indices of the CUDA devices holding the encoder's tensors or the batches' (whose RNG a replay restores)."""
    tensors = [*encoder.parameters(), *encoder.buffers(), *(t for b in batches for t in b.values())]
    return sorted({t.device.index or 0 for t in tensors if t.device.type == "cuda"})


def plan_chunks(batch: Batch, *, chunk_size: int | None, token_budget: int | None = None) -> list[slice]:
    """Consecutive row ranges covering ``batch``: at most ``chunk_size`` rows, and at most ``token_budget``
    padded tokens (rows x longest real length in the chunk). A single row over the budget is its own chunk.
    """
    n = batch["input_ids"].shape[0]
    if token_budget is None:
        step = n if chunk_size is None else chunk_size
        return [slice(s, min(s + step, n)) for s in range(0, n, step)]
    lengths = batch_lengths(batch).tolist()
    limit = n if chunk_size is None else chunk_size
    out, start, longest = [], 0, 0
    for i, length in enumerate(lengths):
        wider = max(longest, length)
        if i > start and ((i - start + 1) * wider > token_budget or i - start >= limit):
            out.append(slice(start, i))
            start, wider = i, length
        longest = wider
    out.append(slice(start, n))
    return out


def chunk_batches(batch: Batch, chunks: list[slice]) -> list[Batch]:
    """The sub-batches of ``chunks`` (from :func:`plan_chunks`), each trimmed to its longest row."""
    if len(chunks) == 1:
        return [batch]  # the whole batch as given: the plain call's shapes, hence its random draws
    return [slice_batch(batch, s) for s in chunks]


def _autocast(device_type: str, dtype: torch.dtype | None):
    return contextlib.nullcontext() if dtype is None else torch.autocast(device_type=device_type, dtype=dtype)


def embed_without_grad(encoder, chunks: list[Batch], *, cuda_devices: Sequence[int] = (), device_type: str = "cpu",
                       autocast: torch.dtype | None = None) -> tuple[list[torch.Tensor], list[RngState]]:
    """Step 1: embeddings ``(n_k, D)`` of every chunk, in order, and the RNG state each chunk started from."""
    parts, states = [], []
    with torch.no_grad():
        for batch in chunks:
            states.append(RngState.capture(cuda_devices))
            with _autocast(device_type, autocast):
                parts.append(_checked_output(encoder(batch), batch))
    return parts, states


def _checked_output(z, batch: Batch) -> torch.Tensor:
    """``z``, the encoder's output for ``batch``, if it is a ``(n, D)`` tensor (``TypeError``/``ValueError``)."""
    n = batch["input_ids"].shape[0]
    if not torch.is_tensor(z):
        raise TypeError(f"encoder(batch) must return a tensor of shape (n, D), got {type(z).__name__}")
    if z.dim() != 2 or z.shape[0] != n:
        raise ValueError(f"encoder(batch) must return a tensor of shape (n, D) = ({n}, D) for a batch of {n} rows, "
                         f"got {tuple(z.shape)}")
    return z


def loss_and_cache(
    loss_fn, parts_a: list[torch.Tensor], parts_b: list[torch.Tensor], labels=None, *, scaler=None,
    device_type: str = "cpu",
) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """Step 2: the loss on the concatenated embeddings (fp32 or wider, autocast off) and ``dL/dz`` per chunk.

    With a ``GradScaler`` the cached gradients (and those of the loss's own parameters) are scaled by
    ``scaler.scale``, exactly as ``scaler.scale(loss).backward()`` would scale them. Returns
    ``(loss detached, grads of a-chunks, grads of b-chunks)``.
    """
    dtype = torch.promote_types(parts_a[0].dtype, torch.float32)
    z_a = torch.cat(parts_a).to(dtype).requires_grad_()  # (B, D) leaf
    z_b = torch.cat(parts_b).to(dtype).requires_grad_()  # (B, D) leaf
    with torch.autocast(device_type=device_type, enabled=False):
        loss = loss_fn(z_a, z_b, labels)
    _check_loss_value(loss)
    (loss if scaler is None else scaler.scale(loss)).backward()
    sizes_a, sizes_b = [p.shape[0] for p in parts_a], [p.shape[0] for p in parts_b]
    return loss.detach(), list(z_a.grad.split(sizes_a)), list(z_b.grad.split(sizes_b))


def _check_loss_value(loss) -> None:
    """``loss`` (what ``loss_fn`` returned) is a scalar tensor with a gradient (``TypeError``/``ValueError``)."""
    if not torch.is_tensor(loss):
        raise TypeError(f"loss_fn must return a scalar tensor, got {type(loss).__name__}")
    if loss.numel() != 1:
        raise ValueError(f"loss_fn must return a scalar tensor, got shape {tuple(loss.shape)} (reduce it, e.g. "
                         ".mean())")
    if not loss.requires_grad:
        raise ValueError("loss_fn's value does not depend on the embeddings it was given (no gradient): compute it "
                         "from z_a and z_b")


def replay(encoder, chunks: list[Batch], grads: list[torch.Tensor], states: list[RngState] | None, *,
           device_type: str = "cpu", autocast: torch.dtype | None = None, cached: list[torch.Tensor] | None = None,
           view: str = "a", hook: ReplayHook | None = None, sync_last: bool = True,
           backward: BackwardFn | None = None, term: ReplayTerm | None = None) -> None:
    """Step 3: re-embed each chunk with gradients (from ``states[k]`` unless ``None``) and back-propagate
    ``grads[k]`` through ``sum(z_k * grads[k])`` computed in fp32. ``hook(view, k, cached[k], z_k)`` is called
    with the first-pass and replayed embeddings (debugging: with restored RNG they are bitwise equal).
    The step's last chunk is the last one here when ``sync_last``: a DDP ``encoder`` runs every other chunk
    under ``encoder.no_sync()``, and ``backward(surrogate, is_last)``, if given, replaces ``surrogate.backward()``.
    ``term()``, if given, is called after each chunk's forward and a returned scalar is added to its surrogate.
    """
    ddp = isinstance(encoder, DistributedDataParallel)
    for k, (batch, grad) in enumerate(zip(chunks, grads)):
        last = sync_last and k == len(chunks) - 1
        with contextlib.nullcontext() if last or not ddp else encoder.no_sync():
            if states is not None:
                states[k].restore()
            with _autocast(device_type, autocast):
                z = encoder(batch)  # (n_k, D)
            if hook is not None:
                hook(view, k, None if cached is None else cached[k], z.detach())
            surrogate = (z.to(grad.dtype) * grad).sum()
            extra = None if term is None else term()
            if extra is not None:
                surrogate = surrogate + extra.to(surrogate.dtype)
            if backward is None:
                surrogate.backward()
            else:
                backward(surrogate, last)


def _scale(term: torch.Tensor | None, scaler) -> torch.Tensor | None:
    return None if term is None else scaler.scale(term)


def _scaled_term(replay_term: ReplayTerm | None, scaler) -> ReplayTerm | None:
    """``replay_term`` scaled by a ``GradScaler`` like the cached gradients (unchanged without a scaler)."""
    if replay_term is None or scaler is None:
        return replay_term
    return lambda: _scale(replay_term(), scaler)


def _token_rows(batch, name: str) -> int:
    """The number of rows of token batch ``batch`` (argument ``name``): a mapping holding ``input_ids`` and
    ``attention_mask`` tensors of one shape ``(n, L)`` (what ``encoder.tokenize`` and
    :func:`~phylocl.data.tokens.pad_batch` return); ``TypeError`` / ``ValueError`` naming it otherwise."""
    if not isinstance(batch, Mapping):
        raise TypeError(f"{name} must be a token batch, a dict with input_ids and attention_mask (e.g. "
                        f"encoder.tokenize(sequences)), got {type(batch).__name__}")
    missing = [k for k in ("input_ids", "attention_mask") if k not in batch]
    if missing:
        raise ValueError(f"{name} has no {' and no '.join(missing)} (keys: {', '.join(map(str, batch))}); a token "
                         "batch is what encoder.tokenize(sequences) returns")
    ids, mask = batch["input_ids"], batch["attention_mask"]
    if not (torch.is_tensor(ids) and torch.is_tensor(mask)) or ids.dim() != 2 or ids.shape != mask.shape:
        shape = lambda t: tuple(t.shape) if torch.is_tensor(t) else type(t).__name__  # noqa: E731
        raise ValueError(f"{name}: input_ids and attention_mask must be tensors of one shape (n, L), got "
                         f"{shape(ids)} and {shape(mask)}")
    return int(ids.shape[0])


def _check_labels(labels, n: int) -> None:
    """``labels`` (``None``, a tensor, a list or an array) holds ``n`` entries in one dimension (``ValueError``)."""
    if labels is None:
        return
    if isinstance(labels, (str, bytes)):
        raise ValueError(f"labels must hold one family id per row, got a single {type(labels).__name__}")
    shape = tuple(labels.shape) if torch.is_tensor(labels) else np.shape(labels)
    if shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {shape}")


def check_views(batch_a, batch_b, labels) -> int:
    """The number ``B`` of pairs of the two token batches ``batch_a``, ``batch_b`` (``B >= 1`` rows each) with
    ``labels`` (``None`` or ``(B,)``); ``TypeError`` / ``ValueError`` naming the bad argument otherwise."""
    n, m = _token_rows(batch_a, "batch_a"), _token_rows(batch_b, "batch_b")
    if n == 0 or m != n:
        raise ValueError(f"both views need the same number (> 0) of rows, got {n} and {m}")
    _check_labels(labels, n)
    return n


def check_encoder(encoder) -> None:
    """``encoder`` is a ``torch.nn.Module`` (its parameters and buffers tell the device and the RNGs to replay)."""
    if not isinstance(encoder, torch.nn.Module):
        raise TypeError(f"encoder must be a torch.nn.Module called as encoder(batch) -> (n, D), got "
                        f"{type(encoder).__name__}")


def check_autocast(autocast) -> torch.dtype | None:
    """``autocast``: ``None`` or the dtype ``torch.autocast`` runs the encoder in (``torch.bfloat16``,
    ``torch.float16``); ``TypeError`` naming the argument otherwise (a string such as ``"bf16"`` failed inside torch
    at the first forward, after its warning that autocast was disabled)."""
    if autocast is None or autocast in (torch.bfloat16, torch.float16):
        return autocast
    raise TypeError(f"autocast must be None, torch.bfloat16 or torch.float16, got {autocast!r}")


def _check_step_args(batch_a: Batch, batch_b: Batch, labels: torch.Tensor | None, chunk_size: int | None,
                     token_budget: int | None) -> tuple[int | None, int | None]:
    """Validate :func:`cached_backward`'s arguments (``ValueError`` / ``TypeError`` naming the bad one); returns
    ``chunk_size`` and ``token_budget`` as ints (NumPy integers accepted)."""
    chunk_size = positive_int("chunk_size", chunk_size, optional=True)
    token_budget = positive_int("token_budget", token_budget, optional=True)
    check_views(batch_a, batch_b, labels)
    return chunk_size, token_budget


def _plan_step(encoder, batch_a: Batch, batch_b: Batch, labels: torch.Tensor | None, chunk_size: int | None,
               token_budget: int | None) -> tuple[str, list[int], dict[str, list[Batch]]]:
    """Checked arguments -> ``(device_type, CUDA devices whose RNG to replay, {"a": chunks, "b": chunks})``."""
    check_encoder(encoder)
    chunk_size, token_budget = _check_step_args(batch_a, batch_b, labels, chunk_size, token_budget)
    param = next(iter(encoder.parameters()), None)
    device_type = (param if param is not None else batch_a["input_ids"]).device.type
    devices = cuda_devices_of(encoder, batch_a, batch_b)
    views = {}
    for name, batch in (("a", batch_a), ("b", batch_b)):
        views[name] = chunk_batches(batch, plan_chunks(batch, chunk_size=chunk_size, token_budget=token_budget))
    return device_type, devices, views


def cached_backward(encoder, batch_a: Batch, batch_b: Batch, loss_fn, chunk_size: int | None,
                    labels: torch.Tensor | None = None, *, token_budget: int | None = None, scaler=None,
                    autocast: torch.dtype | None = None, replay_rng: bool = True,
                    replay_hook: ReplayHook | None = None, backward: BackwardFn | None = None,
                    after_first_pass: Callable[[], None] | None = None,
                    replay_term: ReplayTerm | None = None) -> torch.Tensor:
    """Accumulate into ``.grad`` the gradient of ``loss_fn(encoder(batch_a), encoder(batch_b), labels)``,
    holding activations for one chunk at a time.

    Args:
        encoder: called as ``encoder(batch) -> (n, D)`` on token batches ``{"input_ids", "attention_mask"}``.
        batch_a, batch_b: token batches of the two views, ``B`` rows each (row i of a and b are a pair).
        loss_fn: called as ``loss_fn(z_a, z_b, labels)`` on ``(B, D)`` embeddings; returns a scalar.
        chunk_size: most rows per encoder call (``None``: no row limit).
        labels: optional ``(B,)`` family ids handed to ``loss_fn``.
        token_budget: most padded tokens (rows x longest real length) per encoder call; chunks are trimmed to
            their longest row with :func:`~phylocl.data.tokens.slice_batch`.
        scaler: optional ``torch.amp.GradScaler``; gradients come out scaled as with ``scaler.scale(loss)``.
        autocast: dtype to run the encoder under ``torch.autocast`` (e.g. ``torch.bfloat16``); the loss and
            the surrogate products are always computed in fp32.
        replay_rng: replay each chunk from its recorded RNG state (same dropout masks as the first pass).
            Turning it off gives a different, wrong gradient whenever the encoder draws random numbers.
        replay_hook: debugging callback ``hook(view, chunk_index, first_pass_z, replayed_z)``.
        backward: called as ``backward(surrogate, is_last)`` instead of ``surrogate.backward()`` for each
            replayed chunk; ``is_last`` is True once, for the step's final chunk (e.g. to route only that one
            through a trainer's gradient synchronisation). The loss's own backward (step 2) stays plain.
        after_first_pass: called once after both views were embedded without gradients (before the loss).
        replay_term: called after each replayed encoder call; a returned scalar (with gradient) is added to that
            chunk's surrogate, e.g. the chunk's share of MoE router losses (:mod:`phylocl.training.router_loss`).

    Returns:
        The loss value (detached scalar, unscaled).

    With one chunk per view the random draws are exactly those of the plain call, and afterwards the global RNG
    is where the plain call leaves it (it is restored to the end of the first pass after replaying). A
    ``chunk_size`` at least ``B`` is one chunk; one that does not divide ``B`` leaves a smaller last chunk (same
    gradient). Dropout and other randomness are replayed from torch's global generators (the CPU one and those of
    the CUDA devices holding the encoder's tensors or the batches); an encoder drawing from a ``torch.Generator``
    of its own would get other masks in the replay, a wrong gradient. The encoder should return unit rows or the
    loss should normalise them (phylocl's losses do by default); either way the gradient is the plain call's.

    Raises ``TypeError`` / ``ValueError`` naming the argument for a non-module encoder, batches that are not token
    batches of the same ``B >= 1`` rows, ``labels`` of another length, a ``chunk_size`` or ``token_budget`` that
    is not an int >= 1, an encoder output that is not ``(n, D)``, a ``loss_fn`` that is not callable or whose value
    is not a scalar with a gradient. An exception from ``encoder`` or ``loss_fn`` propagates as it is; ``.grad`` may then hold part of
    the step's gradient (zero it before retrying); after a failure in the replay the global RNG state is restored
    as after a full step.
    """
    if not torch.is_grad_enabled():
        raise RuntimeError("cached_backward computes gradients: it was called with gradients disabled (inside "
                           "torch.no_grad() or torch.inference_mode())")
    if not callable(loss_fn):  # found only after the first pass, as "'str' object is not callable"
        raise TypeError(f"loss_fn must be called as loss_fn(z_a, z_b, labels) -> scalar tensor (e.g. an InfoNCE), "
                        f"got {type(loss_fn).__name__}")
    check_autocast(autocast)
    device_type, devices, views = _plan_step(encoder, batch_a, batch_b, labels, chunk_size, token_budget)
    parts, states = {}, {}
    for name in ("a", "b"):  # step 1: embed without gradients, recording each chunk's RNG state
        parts[name], states[name] = embed_without_grad(encoder, views[name], cuda_devices=devices,
                                                       device_type=device_type, autocast=autocast)
    end_of_first_pass = RngState.capture(devices)
    if after_first_pass is not None:
        after_first_pass()
    replay_term = _scaled_term(replay_term, scaler)
    loss, grads_a, grads_b = loss_and_cache(loss_fn, parts["a"], parts["b"], labels, scaler=scaler,
                                            device_type=device_type)  # step 2: loss and dL/dz cache
    try:
        for name, grads in (("a", grads_a), ("b", grads_b)):  # step 3: replay with gradients
            replay(encoder, views[name], grads, states[name] if replay_rng else None, device_type=device_type,
                   autocast=autocast, cached=parts[name], view=name, hook=replay_hook, sync_last=name == "b",
                   backward=backward, term=replay_term)
    finally:
        if replay_rng:
            end_of_first_pass.restore()
    return loss
