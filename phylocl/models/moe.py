"""Switch-style mixture of experts (Fedus et al. 2021, "Switch Transformers", arXiv 2101.03961): top-1 routing.

A router maps each routed *unit* (a token for the feed-forward experts, a channel chunk for sMLP's spatial experts,
see :mod:`phylocl.models.smlp`) to logits over ``E`` experts; the unit goes to its arg-max expert and that expert's
output is multiplied by the router probability, so the router learns through the task loss.

**Capacity, per sequence.** Each expert takes at most ``ceil(capacity_factor * n / E)`` units of a row, ``n`` being
the row's routed units (its real tokens). Capacity is per row, not per batch as in Switch, so that a sequence's
embedding depends on that sequence only: it is the same alone or in any batch, under any GradCache chunking and on
any DDP rank (a search embedding must not depend on its batch-mates). Within a row an over-full expert keeps the
units with the highest router probability (ties: earlier position). A dropped unit gets a zero expert output, so
it passes unchanged through the block's residual connection; every drop is counted (:class:`RouterRecord`).

**Padding** is never routed: padded positions get a zero output and count nowhere (capacity, balance, z-loss).

**Records.** While recording is on (:func:`record_routing`; the training module turns it on) every routed call
in training mode appends a :class:`RouterRecord` to its router's ``records``; the
training loop pops them (:func:`pop_router_records`) to add the auxiliary losses (Switch's load-balancing loss,
their eq. 4, and the router z-loss of ST-MoE, arXiv 2202.08906) to the contrastive loss, see
:mod:`phylocl.training.router_loss`. Eval mode, or recording off (the default), records nothing, so plain use
never accumulates records (which would hold on to autograd graphs).

Every expert runs on every call, on an empty selection when no unit chose it: its parameters then get a zero
(not a missing) gradient, which DDP's reducer requires.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from phylocl.models.layers import DropPath

__all__ = ["RouterRecord", "Routing", "Top1Router", "SwitchFFN", "MoESublayer", "MoEOptions", "pop_router_records",
           "record_routing", "capacity"]


@dataclass(frozen=True)
class RouterRecord:
    """One routed call of one router. ``prob_sum`` and ``z_sum`` carry gradients; the rest are counts.

    Attributes:
        prob_sum: ``(E,)`` router probabilities summed over the routed units.
        z_sum: ``()`` sum over routed units of ``logsumexp(logits)²``.
        chosen: ``(E,)`` units whose top-1 expert is ``e`` (before capacity).
        kept: ``(E,)`` units expert ``e`` processed (after capacity).
        units: ``()`` routed units (real tokens or chunks).
    """

    prob_sum: torch.Tensor
    z_sum: torch.Tensor
    chosen: torch.Tensor
    kept: torch.Tensor
    units: torch.Tensor


@dataclass(frozen=True)
class Routing:
    """Top-1 decisions for ``(B, U)`` units: ``expert`` (int64), ``gate`` (router probability of it) and ``keep``
    (bool; False for padding and for units over their expert's capacity)."""

    expert: torch.Tensor
    gate: torch.Tensor
    keep: torch.Tensor


def _within_capacity(chosen: torch.Tensor, gate: torch.Tensor, valid: torch.Tensor, capacity_factor: float):
    """``(B, U, E)`` bool: unit routed to expert ``e`` and among its row's ``ceil(cf * n / E)`` most confident."""
    b, u, e = chosen.shape
    capacity = torch.ceil(capacity_factor * valid.sum(1).float() / e).clamp(min=1)  # (B,)
    score = torch.where(chosen, gate.detach()[..., None], torch.full_like(chosen, -1.0, dtype=gate.dtype))
    order = score.argsort(dim=1, descending=True, stable=True)  # (B, U, E): unit indices, most confident first
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(u, device=order.device)[None, :, None]
                                            .expand(b, u, e).contiguous())  # (B, U, E) rank within (row, expert)
    return chosen & (rank < capacity[:, None, None])


class Top1Router(nn.Module):
    """Logits ``x · W[:, :in]ᵀ`` (fp32) over ``experts``, top-1 choice, per-row capacity.

    Args:
        in_dim: the largest feature size of a unit (a shorter input uses the first columns of ``W``, as sMLP's
            position-indexed router does for narrower batches).
        experts: ``E >= 2``.
        capacity_factor: ``> 0``; each expert takes at most ``ceil(capacity_factor * n / E)`` units of a row.
    """

    def __init__(self, *, in_dim: int, experts: int, capacity_factor: float) -> None:
        super().__init__()
        if experts < 2:
            raise ValueError(f"a router needs >= 2 experts, got {experts}")
        if not capacity_factor > 0:
            raise ValueError(f"capacity_factor must be > 0, got {capacity_factor}")
        self.experts = experts
        self.capacity_factor = float(capacity_factor)
        self.weight = nn.Parameter(torch.empty(experts, in_dim))  # (E, in)
        nn.init.trunc_normal_(self.weight, std=0.02)
        self.records: list[RouterRecord] = []
        self.recording = False

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> Routing:
        """``x``: ``(B, U, in')`` with ``in' <= in_dim``; ``valid``: ``(B, U)`` bool (False: padding, not routed)."""
        with torch.autocast(x.device.type, enabled=False):
            logits = x.float() @ self.weight[:, : x.shape[-1]].float().t()  # (B, U, E), fp32 as in Switch
        probs = logits.softmax(dim=-1)  # (B, U, E)
        gate, expert = probs.max(dim=-1)  # (B, U)
        chosen = F.one_hot(expert, self.experts).bool() & valid[..., None]  # (B, U, E)
        kept = _within_capacity(chosen, gate, valid, self.capacity_factor)  # (B, U, E)
        if self.training and self.recording:
            real = valid[..., None].to(probs.dtype)
            self.records.append(RouterRecord(
                prob_sum=(probs * real).sum((0, 1)),
                z_sum=(torch.logsumexp(logits, -1).square() * real[..., 0]).sum(),
                chosen=chosen.sum((0, 1)).float().detach(), kept=kept.sum((0, 1)).float().detach(),
                units=valid.sum().float().detach()))
        return Routing(expert=expert, gate=gate, keep=kept.any(-1))


def record_routing(module: nn.Module, on: bool = True) -> int:
    """Turn recording on (or off, clearing the records) for every router in ``module``; returns how many."""
    routers = [m for m in module.modules() if isinstance(m, Top1Router)]
    for m in routers:
        m.recording = on
        if not on:
            m.records = []
    return len(routers)


def pop_router_records(module: nn.Module) -> list[list[RouterRecord]]:
    """The records of every router in ``module`` (module order), emptied; ``[]`` for a model without routers."""
    out = []
    for m in module.modules():
        if isinstance(m, Top1Router):
            out.append(m.records)
            m.records = []
    return out


class SwitchFFN(nn.Module):
    """Top-1 mixture of GELU feed-forward experts: ``(B, L, dim) -> (B, L, dim)``, zero at padded/dropped tokens.

    Expert ``e``: ``Linear(dim, hidden) -> GELU -> Linear(hidden, dim)``; a kept token's output is the gate
    (router probability) times its expert's output.
    """

    def __init__(self, *, dim: int, hidden: int, experts: int, capacity_factor: float) -> None:
        super().__init__()
        self.router = Top1Router(in_dim=dim, experts=experts, capacity_factor=capacity_factor)
        self.experts = nn.ModuleList(
            nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)) for _ in range(experts))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, length, dim = x.shape
        r = self.router(x, mask)
        flat = x.reshape(b * length, dim)  # (B·L, D)
        expert, gate, keep = r.expert.reshape(-1), r.gate.reshape(-1), r.keep.reshape(-1)  # (B·L,)
        out = flat.new_zeros(flat.shape)
        for e, ffn in enumerate(self.experts):
            idx = (keep & (expert == e)).nonzero().squeeze(1)  # (m,), possibly empty
            y = ffn(flat.index_select(0, idx)) * gate.index_select(0, idx)[:, None]  # (m, D)
            out = out.index_add(0, idx, y.to(out.dtype))
        return out.view(b, length, dim)


class MoESublayer(nn.Module):
    """Pre-LN residual Switch feed-forward: ``x + DropPath(Dropout(SwitchFFN(LN(x))))``; ``(B, L, D)`` both ways."""

    def __init__(self, *, dim: int, hidden: int, experts: int, capacity_factor: float, dropout: float = 0.0,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.ffn = SwitchFFN(dim=dim, hidden=hidden, experts=experts, capacity_factor=capacity_factor)
        self.dropout = nn.Dropout(dropout)
        self.drop_path = DropPath(p=drop_path)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return x + self.drop_path(self.dropout(self.ffn(self.norm(x), mask)))


@dataclass(frozen=True)
class MoEOptions:
    """Where and how a backbone uses Switch feed-forward layers: every ``every``-th block (the 2nd, 4th, ... for
    ``every=2``, as in Switch) gets ``experts`` experts of hidden width ``hidden``."""

    experts: int
    every: int
    hidden: int
    capacity_factor: float

    def at(self, block: int) -> bool:
        """Whether block ``block`` (0-based) is a MoE block."""
        return (block + 1) % self.every == 0

    def switch_ffn(self, dim: int) -> SwitchFFN:
        return SwitchFFN(dim=dim, hidden=self.hidden, experts=self.experts, capacity_factor=self.capacity_factor)

    def sublayer(self, dim: int, *, dropout: float, drop_path: float) -> MoESublayer:
        return MoESublayer(dim=dim, hidden=self.hidden, experts=self.experts, capacity_factor=self.capacity_factor,
                           dropout=dropout, drop_path=drop_path)


def capacity(units: int, experts: int, capacity_factor: float) -> int:
    """Most units one expert takes from a row of ``units`` routed units: ``ceil(capacity_factor * units / E)``."""
    return max(1, math.ceil(capacity_factor * units / experts))
