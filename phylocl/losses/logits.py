"""The one definition of negatives shared by :class:`~phylocl.losses.infonce.InfoNCE` and
:class:`~phylocl.losses.flatnce.FlatNCE`.

Two views ``z_a, z_b`` of shape ``(B, D)``; row ``i`` of ``z_a`` and row ``i`` of ``z_b`` are a positive pair.
Similarities are dot products (of unit vectors with ``normalize=True``, the default: cosines) divided by the
temperature: ``s_ij = <a_i, b_j> / temperature`` (``scale = 1 / temperature``).

Negatives are **cross-view only** (CLIP / open_clip style): anchor ``a_i`` is contrasted with ``b_j`` for
``j != i``; with ``symmetric=True`` anchor ``b_i`` is also contrasted with ``a_j``. Same-view pairs
(``a_i`` vs ``a_j``, as in SimCLR's NT-Xent) are not used: each direction is one ``B x B`` matrix that can be
computed in row chunks, and ``InfoNCE(symmetric=True)`` is the familiar CLIP loss. With ``labels``, every
other row of the anchor's family is masked out: it is neither a positive nor a negative.

Everything both losses need is the per-anchor log-sum-exp of its negatives relative to its positive::

    v_i = logsumexp_{j negative for i} (s_ij - s_ii)          # the positive is NOT inside

from which ``InfoNCE_i = softplus(v_i) = log(1 + sum_j exp(s_ij - s_ii))`` and FlatNCE's surrogate
``exp(v_i - v_i.detach())`` follow. An anchor with no negative at all (``B = 1``, or every row has the same
label) has no defined loss: it is skipped (left out of the mean, zero gradient). Because any row with a
different label is a negative of every anchor, either every anchor has a negative or none has; in the second
case the loss is ``0`` (still attached to the graph, so ``backward`` works and gives zero gradients).
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from phylocl.arguments import positive_int, positive_real
from phylocl.losses.gather import gather_labels, gather_with_grad

__all__ = ["NegativeTerms", "negative_terms", "similarity_terms", "masked_mean", "as_labels", "ContrastiveLoss",
           "check_temperature", "check_flag", "float_dtype", "MIN_TEMPERATURE"]


class NegativeTerms(NamedTuple):
    """Per-anchor terms, all of shape ``(A,)`` with ``A = B`` (one direction) or ``2B`` (symmetric: a then b).

    Attributes:
        v: ``logsumexp_j (s_ij - s_ii)`` over the anchor's negatives (differentiable; finite everywhere).
        valid: whether the anchor has at least one negative.
        gap: ``s_ii - max_j s_ij`` over negatives, in logit units (detached; 0 for invalid anchors).
    """

    v: torch.Tensor
    valid: torch.Tensor
    gap: torch.Tensor


def _rows(queries, keys, scale, labels, start: int):
    """Negative log-sum-exp for anchors ``start .. start + c`` (rows of ``queries``) against all ``keys``."""
    return _terms((queries @ keys.T) * scale, labels, start)  # (c, B) logits


def _terms(s, labels, start: int):
    """:func:`_rows` from the logits ``s`` ``(c, B)`` of anchors ``start .. start + c`` against all keys."""
    c = s.shape[0]
    rows = torch.arange(start, start + c, device=s.device)  # (c,) index of each anchor's positive
    diff = s - s.gather(1, rows[:, None])  # (c, B) s_ij - s_ii
    cols = torch.arange(s.shape[1], device=s.device)
    if labels is None:
        masked = cols[None, :] == rows[:, None]  # (c, B) only the positive itself
    else:
        masked = labels[None, :] == labels[rows][:, None]  # (c, B) positive and its family
    valid = ~masked.all(dim=1)  # (c,)
    diff = diff.masked_fill(masked, float("-inf"))
    # Anchors without a negative would give logsumexp(-inf...) = -inf and NaN gradients: give them a finite
    # dummy row; callers drop them with torch.where, which sends them a zero gradient.
    diff = torch.where(valid[:, None], diff, torch.zeros_like(diff))
    v = torch.logsumexp(diff, dim=1)  # (c,)
    gap = torch.where(valid, -diff.detach().amax(dim=1), torch.zeros_like(v))  # (c,)
    return v, valid, gap


def _direction(queries, keys, scale, labels, chunk_size):
    """All anchors of one direction, optionally in row chunks recomputed in backward (flat memory)."""
    n = queries.shape[0]
    if chunk_size is None or chunk_size >= n:
        return _rows(queries, keys, scale, labels, 0)
    parts = []
    for start in range(0, n, chunk_size):
        q = queries[start : start + chunk_size]
        if torch.is_grad_enabled():
            # Keeps only (q, keys) for backward and rebuilds the (chunk, B) logits there, so peak memory is
            # O(chunk * B) instead of O(B * B). No randomness inside, so no RNG bookkeeping is needed.
            parts.append(checkpoint(_rows, q, keys, scale, labels, start, use_reentrant=False,
                                    preserve_rng_state=False))
        else:
            parts.append(_rows(q, keys, scale, labels, start))
    return tuple(torch.cat(t) for t in zip(*parts))


def as_labels(labels) -> torch.Tensor | None:
    """``labels`` as a tensor of family ids: an integer (or bool) tensor as it is; integers (a list, a NumPy array)
    as int64; strings (e.g. ``read_dataset(...).families``) as the codes of their sorted distinct values, so equal
    strings get equal codes within the call. ``None`` stays ``None``. A single string, floating-point or complex
    values and anything else raise ``ValueError`` (ids are compared for equality: ``0.1 + 0.2`` is not ``0.3``;
    cast with ``.long()`` if the floats are whole numbers)."""
    if labels is None:
        return None
    if torch.is_tensor(labels):
        if labels.is_floating_point() or labels.is_complex():
            raise ValueError(f"labels must be integer family ids or strings, got a {labels.dtype} tensor "
                             "(use labels.long() for whole numbers)")
        return labels
    if isinstance(labels, (str, bytes)):
        raise ValueError(f"labels must hold one family id per row (a list, an array or a tensor), got a single "
                         f"{type(labels).__name__} {labels[:40]!r}")
    arr = np.asarray(labels)
    if arr.dtype.kind in "iub":
        return torch.as_tensor(arr.astype(np.int64))
    if arr.dtype.kind == "U" and arr.ndim == 1 and not isinstance(labels, np.ndarray) and \
            not all(isinstance(x, (str, np.str_)) for x in labels):  # NumPy turned the numbers into strings
        raise ValueError("labels mix strings and other values (e.g. 1 and '1' would be one family): give all as "
                         "strings or all as integers")
    if arr.dtype.kind in "USO" and all(isinstance(x, str) for x in arr.reshape(-1).tolist()):
        _, codes = np.unique(arr.astype(str), return_inverse=True)
        return torch.as_tensor(codes.reshape(arr.shape).astype(np.int64))
    raise ValueError(f"labels must be integer family ids or strings, got {arr.dtype} values")


def _check_batch(z_a: torch.Tensor, z_b: torch.Tensor) -> None:
    """``z_a``, ``z_b``: tensors of one shape ``(B, D)``, ``B, D >= 1``, on one device (``TypeError`` /
    ``ValueError`` naming the argument otherwise)."""
    for name, z in (("z_a", z_a), ("z_b", z_b)):
        if not torch.is_tensor(z):
            raise TypeError(f"{name} must be a torch.Tensor of shape (B, D), got {type(z).__name__} (convert with "
                            "torch.as_tensor)")
        if z.is_complex():  # would reach a NotImplementedError deep in the log-sum-exp
            raise TypeError(f"{name} must hold real numbers, got a {z.dtype} tensor")
    if z_a.dim() != 2 or z_a.shape != z_b.shape:
        raise ValueError(f"z_a and z_b must both be (B, D) with the same shape, got {tuple(z_a.shape)} "
                         f"and {tuple(z_b.shape)}")
    if z_a.shape[0] == 0:
        raise ValueError("an empty batch (B = 0): a contrastive loss needs at least one positive pair")
    if z_a.shape[1] == 0:
        raise ValueError(f"embeddings of width D = 0 ({tuple(z_a.shape)}): there is nothing to compare")
    if z_a.device != z_b.device:
        raise ValueError(f"z_a and z_b must be on one device, got {z_a.device} and {z_b.device}")


def float_dtype(z_a: torch.Tensor, z_b: torch.Tensor) -> torch.dtype:
    """The dtype the loss is computed in: the wider of the two views', at least float32 (half precision is
    upcast; float64 stays float64)."""
    return torch.promote_types(torch.promote_types(z_a.dtype, z_b.dtype), torch.float32)


def negative_terms(z_a: torch.Tensor, z_b: torch.Tensor, scale, *, labels: torch.Tensor | None = None,
                   symmetric: bool = True, chunk_size: int | None = None) -> NegativeTerms:
    """Per-anchor negative log-sum-exp terms of a batch of positive pairs.

    Args:
        z_a, z_b: ``(B, D)`` embeddings of the two views. Half precision is upcast to float32.
        scale: ``1 / temperature`` (float or 0-d tensor, which then receives a gradient).
        labels: optional ``(B,)`` family ids (a tensor, or what :func:`as_labels` reads); same-label rows are
            masked out of the negatives.
        symmetric: also use ``b`` rows as anchors against ``a``.
        chunk_size: compute the logits ``chunk_size`` anchor rows at a time (same value and gradient).

    Returns:
        :class:`NegativeTerms` of length ``B`` (or ``2B`` when symmetric, a-anchors first).
    """
    _check_batch(z_a, z_b)
    labels = as_labels(labels)
    if labels is not None and (labels.dim() != 1 or labels.shape[0] != z_a.shape[0]):
        raise ValueError(f"labels must have shape ({z_a.shape[0]},), got {tuple(labels.shape)}")
    chunk_size = positive_int("chunk_size", chunk_size, optional=True)
    dtype = float_dtype(z_a, z_b)
    a, b = z_a.to(dtype), z_b.to(dtype)
    if labels is not None:
        labels = labels.to(a.device)
    terms = [_direction(a, b, scale, labels, chunk_size)]
    if symmetric:
        terms.append(_direction(b, a, scale, labels, chunk_size))
    return NegativeTerms(*(torch.cat(t) for t in zip(*terms)))


def similarity_terms(s: torch.Tensor, *, labels: torch.Tensor | None = None,
                     symmetric: bool = True) -> NegativeTerms:
    """:func:`negative_terms` from a given ``(B, B)`` logit matrix ``s`` (``s[i, j]``: anchor ``a_i`` against key
    ``b_j``, temperature applied; the ``b`` anchors read its transpose): for similarities that are not one dot
    product per pair, e.g. the best window pair (:mod:`phylocl.losses.late_interaction`)."""
    if s.dim() != 2 or s.shape[0] != s.shape[1] or s.shape[0] == 0:
        raise ValueError(f"the logits must be (B, B) with B >= 1, got {tuple(s.shape)}")
    labels = as_labels(labels)
    if labels is not None and (labels.dim() != 1 or labels.shape[0] != s.shape[0]):
        raise ValueError(f"labels must have shape ({s.shape[0]},), got {tuple(labels.shape)}")
    s = s.to(torch.promote_types(s.dtype, torch.float32))
    if labels is not None:
        labels = labels.to(s.device)
    terms = [_terms(s, labels, 0)] + ([_terms(s.T, labels, 0)] if symmetric else [])
    return NegativeTerms(*(torch.cat(t) for t in zip(*terms)))


def mean_negative_similarity(z_a: torch.Tensor, z_b: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """Mean ``z_a[i] . z_b[j]`` over the pairs ``(i, j)`` of different families (``i != j`` without labels).

    For unit embeddings this is the mean cosine similarity of the in-batch negatives: how hard the batch is.
    Computed from per-label sums in ``O(B D)``, no ``(B, B)`` matrix: ``(sum a) . (sum b) - sum_L S_a(L) . S_b(L)``
    over ``B^2 - sum_L n_L^2`` pairs. Returns a detached 0-d tensor (``nan`` when there is no negative pair).
    """
    with torch.no_grad():
        a, b = z_a.detach().float(), z_b.detach().float()  # (B, D)
        if labels is None:
            labels = torch.arange(a.shape[0], device=a.device)
        _, inverse = torch.unique(labels.to(a.device), return_inverse=True)
        groups = int(inverse.max()) + 1 if inverse.numel() else 0
        # dtype given: under trainer.precision=64-true/16-true Lightning changes torch's default dtype
        s_a = a.new_zeros(groups, a.shape[1]).index_add_(0, inverse, a)  # (G, D)
        s_b = b.new_zeros(groups, b.shape[1]).index_add_(0, inverse, b)  # (G, D)
        counts = torch.bincount(inverse, minlength=groups).float()  # (G,)
        total = a.sum(0) @ b.sum(0) - (s_a * s_b).sum()
        pairs = a.shape[0] ** 2 - (counts ** 2).sum()
        return total / pairs if pairs > 0 else torch.tensor(float("nan"), device=a.device)


def masked_mean(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` over ``valid`` entries; ``0`` (attached to the graph) when there is none."""
    total = torch.where(valid, x, torch.zeros_like(x)).sum()
    return total / valid.sum().clamp(min=1)


MIN_TEMPERATURE = 1e-30  # below it 1 / temperature overflows float32 logits into inf - inf = NaN


def check_temperature(value, name: str = "temperature") -> float:
    """``value`` as a float: a real number (Python or NumPy, not a bool or a tensor), finite, at least
    :data:`MIN_TEMPERATURE`; ``ValueError`` naming ``name`` and the value otherwise."""
    t = positive_real(name, value)
    if t < MIN_TEMPERATURE:
        raise ValueError(f"{name} must be >= {MIN_TEMPERATURE:g} (1 / {name} would overflow the logits), "
                         f"got {value!r}")
    return t


def check_flag(name: str, value) -> bool:
    """``value`` as a bool: ``True``/``False`` (or NumPy's, or the ints 0 and 1); ``TypeError`` for anything else,
    e.g. the string ``"False"``, which ``bool()`` would read as true."""
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, numbers.Integral) and value in (0, 1)):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {value!r}")


class ContrastiveLoss(torch.nn.Module):
    """Shared base: temperature, symmetric option, chunking, normalisation, gathering, ``last_stats`` for logging.

    ``normalize=True`` L2-normalises both views first (a no-op for phylocl's encoders, which return unit rows, but
    any other encoder's outputs then give cosines); ``gather_distributed=True`` all-gathers both views (and the
    labels) from every data-parallel rank with gradient (:mod:`phylocl.losses.gather`), so every rank contrasts
    against the global batch; labels must then be comparable across ranks
    (:func:`phylocl.training.distributed.offset_labels` for batch-local ids). Without a process group it does nothing.

    Subclasses implement :meth:`row_loss` mapping ``v`` (see module docstring) to per-anchor losses.
    After each call ``last_stats`` holds detached 0-d tensors (means over anchors that have a negative):
    ``infonce`` (InfoNCE value), ``temperature``, ``pos_prob`` (softmax probability of the positive) and
    ``logit_gap`` (positive logit minus the largest negative logit, in logit units = similarity / temperature).
    """

    def __init__(self, *, temperature: float, symmetric: bool, chunk_size: int | None, normalize: bool = True,
                 gather_distributed: bool = False) -> None:
        super().__init__()
        temperature = check_temperature(temperature)
        self.symmetric = check_flag("symmetric", symmetric)
        self.chunk_size = positive_int("chunk_size", chunk_size, optional=True)
        self.normalize = check_flag("normalize", normalize)
        self.gather_distributed = check_flag("gather_distributed", gather_distributed)
        self._temperature = float(temperature)
        self.last_stats: dict[str, torch.Tensor] = {}

    def scale(self):
        """``1 / temperature`` used in the logits (a float, or a tensor when learnable)."""
        return 1.0 / self._temperature

    @property
    def temperature(self) -> float:
        """The temperature currently in effect."""
        scale = self.scale()
        return 1.0 / float(scale.detach() if torch.is_tensor(scale) else scale)

    def row_loss(self, v: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _labels(self, labels) -> torch.Tensor | None:
        """:func:`as_labels`, refusing strings where labels are gathered from other ranks (their codes are local)."""
        if self.gather_distributed and labels is not None and not torch.is_tensor(labels) and \
                np.asarray(labels).dtype.kind not in "iub":
            raise ValueError("gather_distributed needs integer family ids comparable across ranks, not strings "
                             "(phylocl.training.distributed.offset_labels)")
        return as_labels(labels)

    def _prepare(self, z_a: torch.Tensor, z_b: torch.Tensor, labels: torch.Tensor | None):
        """Normalised (if ``normalize``) and gathered (if ``gather_distributed``) views and labels."""
        if self.normalize:
            dtype = float_dtype(z_a, z_b)
            z_a, z_b = F.normalize(z_a.to(dtype), dim=-1), F.normalize(z_b.to(dtype), dim=-1)  # (B, D) each
        if self.gather_distributed:
            z_a, z_b = gather_with_grad(z_a), gather_with_grad(z_b)  # (N, D) each, N = global batch
            labels = None if labels is None else gather_labels(labels)  # (N,)
        return z_a, z_b, labels

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Scalar loss for ``B`` positive pairs ``(z_a[i], z_b[i])``.

        Args:
            z_a, z_b: ``(B, D)`` tensors on one device, ``B, D >= 1``, any float dtype (float16/bfloat16 are
                computed in float32, float64 in float64: the result has that dtype); any strides.
            labels: optional ``(B,)`` family ids (:func:`as_labels`: an integer tensor on any device, a list or an
                array of integers or of strings); rows of one family are not each other's negatives.

        Returns a 0-d tensor (attached to the graph of the inputs and of a learnable temperature). Edge cases, by
        design (module docstring): ``B = 1`` or one label for every row leaves no negative, and the loss is ``0``
        with zero (finite) gradients; non-finite embeddings give a NaN loss (not checked here, which would cost a
        device synchronisation per call); with ``normalize``, an all-zero row stays zero (cosine 0 with every
        other row; its gradient through the normalisation is scaled by 1 / 1e-12). Raises ``TypeError`` /
        ``ValueError`` naming the argument for non-tensors, views of different shapes or devices, an empty batch,
        or labels of the wrong length or type."""
        _check_batch(z_a, z_b)
        labels = self._labels(labels)
        z_a, z_b, labels = self._prepare(z_a, z_b, labels)
        scale = self.scale()
        t = negative_terms(z_a, z_b, scale, labels=labels, symmetric=self.symmetric, chunk_size=self.chunk_size)
        return self.finish(t, scale)

    def finish(self, t: NegativeTerms, scale) -> torch.Tensor:
        """The loss (mean of :meth:`row_loss` over anchors with a negative) from the terms, and ``last_stats``."""
        loss = masked_mean(self.row_loss(t.v), t.valid)
        with torch.no_grad():  # 0-d tensors: no device sync until a logger reads them
            v = t.v.detach()
            self.last_stats = {
                "infonce": masked_mean(F.softplus(v), t.valid),
                "temperature": 1.0 / torch.as_tensor(scale, dtype=v.dtype, device=v.device).detach(),
                "pos_prob": masked_mean(torch.sigmoid(-v), t.valid),  # softmax probability of the positive
                "logit_gap": masked_mean(t.gap, t.valid),
            }
        return loss
