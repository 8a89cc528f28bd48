import pytest
import torch

from loss_reference import flat_objective_reference, infonce_reference, unit_pairs, value_and_grads
from phylocl.losses.flatnce import FlatNCE
from phylocl.losses.infonce import InfoNCE

LABELS = torch.tensor([0, 1, 0, 2, 1, 3, 3, 4])


def _finite_difference(fn, z_a, z_b, eps=1e-6):
    """Central differences of scalar fn(z_a, z_b) w.r.t. every entry of z_a and z_b (float64)."""
    grads = []
    for which in range(2):
        z = (z_a, z_b)[which]
        g = torch.zeros_like(z)
        for idx in torch.cartesian_prod(*(torch.arange(n) for n in z.shape)):
            idx = tuple(idx.tolist())
            plus, minus = z.clone(), z.clone()
            plus[idx] += eps
            minus[idx] -= eps
            args_p = (plus, z_b) if which == 0 else (z_a, plus)
            args_m = (minus, z_b) if which == 0 else (z_a, minus)
            g[idx] = (float(fn(*args_p)) - float(fn(*args_m))) / (2 * eps)
        grads.append(g)
    return grads


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("labels", [None, LABELS])
def test_gradient_matches_finite_differences_of_negative_logsumexp(symmetric, labels):
    z_a, z_b = unit_pairs(8, 3, seed=5)
    loss = FlatNCE(temperature=0.25, symmetric=symmetric, normalize=False)  # gradient w.r.t. free vectors
    value, g_a, g_b = value_and_grads(lambda a, b: loss(a, b, labels), z_a, z_b)
    assert float(value) == 1.0  # exp(v - v.detach()) is exactly 1 for every anchor
    with torch.no_grad():
        fd_a, fd_b = _finite_difference(
            lambda a, b: flat_objective_reference(a, b, 0.25, labels, symmetric), z_a, z_b)
    torch.testing.assert_close(g_a, fd_a, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(g_b, fd_b, rtol=1e-6, atol=1e-8)


def test_gradient_matches_autograd_of_loop_reference():
    z_a, z_b = unit_pairs(8, 5, seed=6)
    _, g_a, g_b = value_and_grads(lambda a, b: FlatNCE(temperature=0.1, normalize=False)(a, b, LABELS), z_a, z_b)
    _, r_a, r_b = value_and_grads(lambda a, b: flat_objective_reference(a, b, 0.1, LABELS), z_a, z_b)
    torch.testing.assert_close(g_a, r_a, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(g_b, r_b, rtol=1e-10, atol=1e-12)


def test_positive_is_not_inside_the_logsumexp():
    # B = 2, one direction: each anchor has exactly one negative, so v_0 = s_01 - s_00 and v_1 = s_10 - s_11
    # and L = (v_0 + v_1) / 2 is linear in the similarities: its gradient has unit weights. With the positive
    # inside the log-sum-exp (InfoNCE in disguise) every term would carry a softmax weight < 1 instead.
    z_a, z_b = unit_pairs(2, 4, seed=7)
    t = 0.5
    _, g_a, g_b = value_and_grads(lambda a, b: FlatNCE(temperature=t, symmetric=False, normalize=False)(a, b), z_a, z_b)
    torch.testing.assert_close(g_b, torch.stack([z_a[1] - z_a[0], z_a[0] - z_a[1]]) / (2 * t), rtol=1e-12, atol=0)
    torch.testing.assert_close(g_a, torch.stack([z_b[1] - z_b[0], z_b[0] - z_b[1]]) / (2 * t), rtol=1e-12, atol=0)
    # and it is not the positive-inside gradient
    _, i_a, i_b = value_and_grads(lambda a, b: infonce_reference(a, b, t, symmetric=False), z_a, z_b)
    assert not torch.allclose(g_b, i_b, rtol=1e-3)


def test_gradient_differs_from_infonce():
    z_a, z_b = unit_pairs(8, 5, seed=8)
    _, f_a, _ = value_and_grads(lambda a, b: FlatNCE(temperature=0.2)(a, b), z_a, z_b)
    _, i_a, _ = value_and_grads(lambda a, b: InfoNCE(temperature=0.2)(a, b), z_a, z_b)
    cos = torch.nn.functional.cosine_similarity(f_a.flatten(), i_a.flatten(), dim=0)
    assert float(cos) < 0.999  # not merely a rescaled InfoNCE gradient
    assert not torch.allclose(f_a, i_a, rtol=1e-2)


def test_gradient_does_not_vanish_when_positive_dominates():
    # Positives identical, negatives orthogonal, low temperature: the positive has softmax probability ~1.
    z = torch.eye(4, dtype=torch.float64)
    flat, info = FlatNCE(temperature=0.02, normalize=False), InfoNCE(temperature=0.02, normalize=False)
    _, f_a, f_b = value_and_grads(lambda a, b: flat(a, b), z, z)
    _, i_a, i_b = value_and_grads(lambda a, b: info(a, b), z, z)
    assert float(flat.last_stats["pos_prob"]) > 1 - 1e-15
    i_norm = torch.cat([i_a, i_b]).norm()
    f_norm = torch.cat([f_a, f_b]).norm()
    assert i_norm < 1e-15
    assert f_norm > 1.0  # d v = d(s_ij - s_ii) ~ 1 / T per entry: it keeps pushing negatives away
    # Exact for orthonormal rows: the negatives get equal softmax weight 1/3 inside v_i, and z_a[i] appears
    # as an anchor (a->b) and as a key (b->a) with the same gradient, so over the 2B anchors:
    # dL/da_i = 2 * (mean_{j != i} b_j - b_i) / (T * 2B).
    b = z
    expected = torch.stack([(b.sum(0) - b[i]) / 3 - b[i] for i in range(4)]) / (0.02 * 4)
    torch.testing.assert_close(f_a, expected, rtol=1e-10, atol=1e-12)


def test_reports_infonce_value():
    z_a, z_b = unit_pairs(8, 5, seed=9)
    flat = FlatNCE(temperature=0.3)
    flat(z_a, z_b, LABELS)
    expected = InfoNCE(temperature=0.3)(z_a, z_b, LABELS)
    assert float(flat.last_stats["infonce"]) == pytest.approx(float(expected), rel=1e-12)
    assert float(flat.last_stats["temperature"]) == pytest.approx(0.3)


@pytest.mark.parametrize("kwargs", [dict(temperature=0.0), dict(temperature=float("inf")), dict(chunk_size=-2)])
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        FlatNCE(**kwargs)
