"""Switch auxiliary losses of one optimisation step, exact under GradCache chunking and under DDP.

For router layer ``l`` (``E`` experts) and every unit routed in the step (both views, all chunks, all ranks;
``T`` units, padding never counted)::

    balance_l = E · Σ_e f_e · P_e      f_e = chosen_e / T (no gradient), P_e = Σ_t p_te / T   (Switch eq. 4)
    z_l       = Σ_t logsumexp(logits_t)² / T                                                 (ST-MoE z-loss)
    aux       = balance_weight · mean_l balance_l + z_weight · mean_l z_l

Given the step's counts ``f_e`` and ``T``, ``aux`` is *linear* in the per-call sums ``Σ_t p_te`` and
``Σ_t logsumexp²``, so it splits exactly over encoder calls: :meth:`RouterLoss.surrogate` of any subset of calls is
that subset's share, and the shares of all chunks sum to ``aux`` and to its gradient. The cached path therefore
takes the counts from the no-grad first pass (the router takes the same decisions when a chunk is replayed from
the same RNG state) and adds each replayed chunk's share to that chunk's surrogate. Under DDP the counts and sums
are all-reduced, so every rank sees the global ``f``, ``T`` and loss value, and each rank's share is multiplied
by the world size because DDP averages gradients over ranks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist

from phylocl.models.moe import RouterRecord
from phylocl.training.distributed import is_distributed, world_size

__all__ = ["StepTotals", "RouterLoss"]


@dataclass(frozen=True)
class StepTotals:
    """Per router layer, summed over the step's calls (and ranks), detached: ``chosen``, ``kept``, ``prob``:
    ``(E,)`` each; ``z``, ``units``: ``()``."""

    chosen: list[torch.Tensor]
    kept: list[torch.Tensor]
    prob: list[torch.Tensor]
    z: list[torch.Tensor]
    units: list[torch.Tensor]


class RouterLoss:
    """Load-balancing loss and router z-loss with weights ``balance_weight`` and ``z_weight`` (both ``>= 0``)."""

    def __init__(self, *, balance_weight: float, z_weight: float) -> None:
        for name, w in (("balance_weight", balance_weight), ("z_weight", z_weight)):
            if not w >= 0:
                raise ValueError(f"{name} must be >= 0, got {w}")
        self.balance_weight, self.z_weight = float(balance_weight), float(z_weight)

    @staticmethod
    def totals(records: list[list[RouterRecord]]) -> StepTotals:
        """Sum each layer's records (one flat all-reduce under DDP)."""
        packed = []
        for calls in records:
            if not calls:
                raise ValueError("a router layer has no records: was recording on and the encoder in train mode?")
            packed.append(torch.stack([torch.cat([r.chosen, r.kept, r.prob_sum.detach(), r.z_sum.detach()[None],
                                                  r.units[None]]) for r in calls]).sum(0))  # (3E + 2,)
        sizes = [p.numel() for p in packed]
        flat = torch.cat(packed).double()
        if is_distributed() and world_size() > 1:
            dist.all_reduce(flat)
        out: dict[str, list[torch.Tensor]] = {k: [] for k in ("chosen", "kept", "prob", "z", "units")}
        for p, n in zip(flat.split(sizes), sizes):
            e = (n - 2) // 3
            for key, part in zip(out, (p[:e], p[e:2 * e], p[2 * e:3 * e], p[3 * e], p[3 * e + 1])):
                out[key].append(part)
        return StepTotals(**out)

    def surrogate(self, records: list[list[RouterRecord]], totals: StepTotals) -> torch.Tensor:
        """This process's share of ``aux`` over ``records`` (a subset of the step's calls), with gradient.

        Summed over all the step's calls (and, after DDP's averaging, all ranks) it equals :meth:`value` and has
        the gradient of ``aux``.
        """
        terms = []
        for k, calls in enumerate(records):
            units = totals.units[k]
            f = totals.chosen[k] / units  # (E,)
            prob = torch.stack([r.prob_sum for r in calls]).sum(0)  # (E,)
            z = torch.stack([r.z_sum for r in calls]).sum()
            balance = f.numel() * (f.to(prob.dtype) * prob).sum() / units.to(prob.dtype)
            terms.append(self.balance_weight * balance + self.z_weight * z / units.to(z.dtype))
        return torch.stack(terms).mean() * world_size()

    def value(self, totals: StepTotals) -> dict[str, float]:
        """``{"moe/aux", "moe/balance", "moe/z", "moe/l{k}_dropped", "moe/l{k}_util{e}"}``: the step's loss terms
        (``balance`` is 1 for a perfectly even split), per layer ``k`` the fraction of its units dropped over
        capacity and the fraction each expert processed."""
        out: dict[str, float] = {}
        balances, zs = [], []
        for k, units in enumerate(totals.units):
            f, p = totals.chosen[k] / units, totals.prob[k] / units
            balances.append(float(f.numel() * (f * p).sum()))
            zs.append(float(totals.z[k] / units))
            out[f"moe/l{k}_dropped"] = float(1 - totals.kept[k].sum() / units)
            for e, used in enumerate((totals.kept[k] / units).tolist()):
                out[f"moe/l{k}_util{e}"] = used
        balance, z = sum(balances) / len(balances), sum(zs) / len(zs)
        return {"moe/aux": self.balance_weight * balance + self.z_weight * z, "moe/balance": balance,
                "moe/z": z, **out}
