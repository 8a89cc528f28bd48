"""Masked mean pooling, stochastic depth and projection heads."""

from __future__ import annotations

import pytest
import torch

from phylocl.models.layers import DropPath, ProjectionHead, drop_path_rates, masked_mean


def test_masked_mean_matches_loop_and_ignores_nonfinite_padding():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 4)
    lengths = [5, 2, 1]
    mask = torch.arange(5)[None] < torch.tensor(lengths)[:, None]
    x[~mask] = float("nan")
    got = masked_mean(x, mask)
    for b, n in enumerate(lengths):
        want = sum(x[b, i] for i in range(n)) / n
        torch.testing.assert_close(got[b], want)


def test_drop_path_identity_in_eval_and_per_sample_in_train():
    torch.manual_seed(1)
    dp = DropPath(p=0.5)
    x = torch.ones(2000, 3, 4)
    assert torch.equal(dp.eval()(x), x)
    y = dp.train()(x)
    per_sample = y.flatten(1)
    # each sample is either dropped entirely or kept and scaled by 1 / (1 - p)
    assert ((per_sample == 0).all(1) | (per_sample == 2.0).all(1)).all()
    kept = (per_sample[:, 0] > 0).float().mean().item()
    assert 0.45 < kept < 0.55
    assert abs(y.mean().item() - 1.0) < 0.1  # expectation preserved
    with pytest.raises(ValueError, match="drop-path"):
        DropPath(p=1.0)


def test_drop_path_rates_ramp():
    assert drop_path_rates(0.1, 1) == [0.1]
    assert drop_path_rates(0.3, 4) == pytest.approx([0.0, 0.1, 0.2, 0.3])


@pytest.mark.parametrize("kind,n_linear", [("linear", 1), ("mlp", 2)])
def test_projection_head_shapes(kind, n_linear):
    head = ProjectionHead(dim=8, out_dim=3, kind=kind)
    assert head(torch.randn(5, 8)).shape == (5, 3)
    assert sum(isinstance(m, torch.nn.Linear) for m in head.modules()) == n_linear
    with pytest.raises(ValueError, match="head kind"):
        ProjectionHead(dim=8, out_dim=3, kind="conv")
