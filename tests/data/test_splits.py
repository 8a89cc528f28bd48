"""Family-disjoint splits: disjointness, determinism, fractions, grouping, explicit holdout."""

from __future__ import annotations

import pytest

from phylocl.errors import InputError
from phylocl.data.splits import split_families


@pytest.fixture
def ds(make_dataset):
    fams = {f"F{i:02d}": ["MKTAYIAKQR"] * (1 + i % 3) for i in range(40)}
    groups = {f"F{i:02d}": f"fold{i // 4}" for i in range(40)}  # 10 folds of 4 families
    d = make_dataset(fams)
    d.metadata["fold"] = [groups[f] for f in d.families]
    d.metadata["varies"] = [str(i) for i in range(len(d))]
    return d


def fams(split):
    return set(split.family_names)


def test_disjoint_complete_and_never_splits_a_family(ds):
    out = split_families(ds, fractions=(0.6, 0.2, 0.2), seed=3)
    parts = [fams(out[s]) for s in ("train", "val", "test")]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert parts[0] | parts[1] | parts[2] == set(ds.family_names)
    assert sum(len(out[s]) for s in out) == len(ds)
    for s in out.values():
        for f, idx in s.family_index.items():
            assert len(idx) == len(ds.family_index[f])
    assert [len(p) for p in parts] == [24, 8, 8]


def test_deterministic_per_seed(ds):
    a = split_families(ds, seed=7)
    b = split_families(ds, seed=7)
    c = split_families(ds, seed=8)
    assert all(a[s].ids == b[s].ids for s in a)
    assert any(a[s].ids != c[s].ids for s in a)


def test_group_column_keeps_groups_together(ds):
    for seed in range(5):
        out = split_families(ds, fractions=(0.6, 0.2, 0.2), seed=seed, group_column="fold")
        where = {}
        for s, part in out.items():
            for g in part.metadata["fold"]:
                assert where.setdefault(g, s) == s, f"group {g} spans {where[g]} and {s}"
        assert all(len(out[s]) for s in out)
    with pytest.raises(InputError, match="varies within family"):
        split_families(ds, group_column="varies")
    with pytest.raises(InputError, match="not in the labels"):
        split_families(ds, group_column="nope")


def test_holdout_lists(ds):
    out = split_families(ds, fractions=(0.9, 0.1, 0.0), holdout={"test": ["F00", "F05"]}, seed=1)
    assert fams(out["test"]) == {"F00", "F05"}
    assert len(fams(out["val"])) == 4 and len(fams(out["train"])) == 34
    grouped = split_families(ds, holdout={"val": ["F00"], "test": ["F39"]}, group_column="fold")
    assert fams(grouped["val"]) == {"F00", "F01", "F02", "F03"}  # the whole fold follows F00
    assert fams(grouped["test"]) == {"F36", "F37", "F38", "F39"}
    with pytest.raises(InputError, match=r"not in the dataset .*--set 'data.holdout=\{\}'"):
        split_families(ds, holdout={"val": ["nope"]})
    with pytest.raises(InputError, match="held out for both"):
        split_families(ds, holdout={"val": ["F00"], "test": ["F01"]}, group_column="fold")


def test_bad_fractions(ds):
    for bad in [(0.5, 0.5, 0.5), (1.2, -0.1, -0.1), (0.5, 0.5)]:
        with pytest.raises(InputError, match="fractions"):
            split_families(ds, fractions=bad)


@pytest.mark.parametrize("fractions", [(0.8, 0.1, 0.05), (0.8, 0.1, 0.11), (0.7, 0.2, 0.2)])
def test_fractions_that_do_not_sum_to_one_are_refused(ds, fractions):
    """Mutation audit: fractions summing to 0.95, 1.01 or 1.1 are refused (not silently renormalised)."""
    with pytest.raises(InputError, match="summing to 1"):
        split_families(ds, fractions=fractions)
