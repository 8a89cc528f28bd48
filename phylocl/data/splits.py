"""Family-disjoint train / validation / test splits.

A family is never split. With ``group_column`` (a metadata column such as SCOP ``fold`` or ``superfamily``) whole
groups of families move together, so a group never spans two sets. Families can also be placed explicitly with
``holdout={"val": [...], "test": [...]}``; the other families fill the remaining sets by ``fractions``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from phylocl.data.dataset import OrthologDataset
from phylocl.errors import InputError

__all__ = ["split_families", "SPLITS"]

SPLITS = ("train", "val", "test")


def _family_groups(ds: OrthologDataset, group_column: str | None) -> dict[str, str]:
    """Family → group (the family itself when ``group_column`` is ``None``)."""
    if group_column is None:
        return {f: f for f in ds.family_names}
    if group_column not in ds.metadata:
        have = ", ".join(ds.metadata) or "none"
        raise InputError(f"group column {group_column!r} is not in the labels (metadata columns: {have})")
    col = ds.metadata[group_column]
    groups: dict[str, str] = {}
    for fam, idx in ds.family_index.items():
        values = {col[i] for i in idx}
        if len(values) > 1:
            shown = ", ".join(sorted(values)[:3])
            raise InputError(f"column {group_column!r} varies within family {fam!r} ({shown}); "
                             "a grouping column must hold one value per family")
        groups[fam] = values.pop()
    return groups


def split_families(
    ds: OrthologDataset,
    *,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    group_column: str | None = None,
    holdout: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, OrthologDataset]:
    """Split ``ds`` into family-disjoint ``{"train", "val", "test"}`` datasets.

    Args:
        fractions: target share of families (not sequences) per set, summing to 1; a set with fraction 0 stays
            empty unless ``holdout`` names families for it.
        seed: the groups are shuffled with ``numpy.random.default_rng(seed)``; same seed, same split.
        group_column: metadata column whose value groups families (one value per family required).
        holdout: explicit family ids per set (keys among train/val/test); each takes its whole group along.
            Sets named here get exactly these families; the rest are split among the other sets.

    Greedy assignment: groups in shuffled order go to the set furthest below its target count of families.
    """
    fr = np.asarray(fractions, dtype=float)
    if fr.shape != (3,) or (fr < 0).any() or abs(fr.sum() - 1.0) > 1e-6:
        raise InputError(f"split fractions must be three non-negative numbers summing to 1, got {list(fractions)}")
    holdout = dict(holdout or {})
    unknown_sets = sorted(set(holdout) - set(SPLITS))
    if unknown_sets:
        raise InputError(f"holdout keys must be among {list(SPLITS)}, got {unknown_sets}")
    fam_group = _family_groups(ds, group_column)
    group_fams: dict[str, list[str]] = {}
    for fam, g in fam_group.items():
        group_fams.setdefault(g, []).append(fam)

    assigned: dict[str, str] = {}  # group -> split
    for split, fams in holdout.items():
        for fam in fams:
            if fam not in fam_group:
                raise InputError(f"data.holdout {split}: family {fam!r} is not in the dataset (a config's holdout names "
                                 "the families of the data it was written for; for other data add --set "
                                 "'data.holdout={}')")
            g = fam_group[fam]
            if assigned.setdefault(g, split) != split:
                what = f"group {g!r} of family {fam!r}" if group_column else f"family {fam!r}"
                raise InputError(f"{what} is held out for both {assigned[g]} and {split}")

    open_sets = [k for k, s in enumerate(SPLITS) if s not in holdout and fr[k] > 0]
    rest = sorted(g for g in group_fams if g not in assigned)
    order = np.random.default_rng(seed).permutation(len(rest))
    if rest and not open_sets:
        raise InputError(f"{len(rest)} families are left with no set to go to: give some fraction to a set not "
                         "listed in holdout")
    target = fr[open_sets] / fr[open_sets].sum() * sum(len(group_fams[g]) for g in rest) if open_sets else fr
    count = np.zeros(len(open_sets))
    for k in order:
        g = rest[k]
        j = int(np.argmax(target - count))  # ties: the earlier set (train before val before test)
        assigned[g] = SPLITS[open_sets[j]]
        count[j] += len(group_fams[g])

    members = {s: [f for f in ds.family_names if assigned[fam_group[f]] == s] for s in SPLITS}
    return {s: ds.select_families(members[s]) for s in SPLITS}
