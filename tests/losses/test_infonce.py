import math

import pytest
import torch

from loss_reference import infonce_reference, logit_gap_reference, pos_prob_reference, unit_pairs, value_and_grads
from phylocl.losses.infonce import InfoNCE

LABELS = torch.tensor([0, 1, 0, 2, 1, 3, 3, 4])


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("labels", [None, LABELS])
@pytest.mark.parametrize("temperature", [0.2, 1.0])
def test_matches_loop_reference(symmetric, labels, temperature):
    z_a, z_b = unit_pairs(8, 5, seed=1)
    loss = InfoNCE(temperature=temperature, symmetric=symmetric, normalize=False)  # the dot-product formula
    got = value_and_grads(lambda a, b: loss(a, b, labels), z_a, z_b)
    ref = value_and_grads(lambda a, b: infonce_reference(a, b, temperature, labels, symmetric), z_a, z_b)
    for g, r in zip(got, ref):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)


def test_stats_match_reference():
    z_a, z_b = unit_pairs(8, 5, seed=2)
    loss = InfoNCE(temperature=0.3)
    value = loss(z_a, z_b, LABELS)
    st = loss.last_stats
    assert float(st["infonce"]) == pytest.approx(float(value), rel=1e-12)
    assert float(st["temperature"]) == pytest.approx(0.3)
    assert float(st["pos_prob"]) == pytest.approx(float(pos_prob_reference(z_a, z_b, 0.3, LABELS)), rel=1e-10)
    assert float(st["logit_gap"]) == pytest.approx(logit_gap_reference(z_a, z_b, 0.3, LABELS), rel=1e-10)
    assert all(not v.requires_grad for v in st.values())


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("b", [2, 5, 16])
def test_identical_embeddings_closed_form(symmetric, b):
    # Every similarity equals every other: each anchor is softmax over 1 positive + (B - 1) equal negatives.
    z = torch.nn.functional.normalize(torch.ones(b, 4, dtype=torch.float64), dim=1)
    assert float(InfoNCE(temperature=0.07, symmetric=symmetric)(z, z)) == pytest.approx(math.log(b), rel=1e-12)


def test_identical_embeddings_closed_form_with_labels():
    # 3 families of sizes 2, 3, 1 (B = 6): anchor of a family of size K has B - K negatives.
    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    z = torch.nn.functional.normalize(torch.ones(6, 3, dtype=torch.float64), dim=1)
    expected = (2 * math.log(1 + 4) + 3 * math.log(1 + 3) + math.log(1 + 5)) / 6
    assert float(InfoNCE(temperature=0.5)(z, z, labels)) == pytest.approx(expected, rel=1e-12)


def test_learnable_temperature_gets_gradient_matching_finite_differences():
    z_a, z_b = unit_pairs(6, 4, seed=3)
    loss = InfoNCE(temperature=0.2, learn_temperature=True).double()
    assert isinstance(loss.logit_scale, torch.nn.Parameter)
    assert loss.logit_scale.item() == pytest.approx(math.log(5.0))
    loss(z_a, z_b).backward()
    grad = float(loss.logit_scale.grad)
    eps = 1e-6

    def at(x):
        with torch.no_grad():
            loss.logit_scale.fill_(x)
            return float(loss(z_a, z_b))

    x0 = math.log(5.0)
    fd = (at(x0 + eps) - at(x0 - eps)) / (2 * eps)
    assert grad != 0.0
    assert grad == pytest.approx(fd, rel=1e-6)


def test_learnable_temperature_is_clamped():
    z_a, z_b = unit_pairs(6, 4, seed=4)
    loss = InfoNCE(temperature=0.1, learn_temperature=True, max_scale=20.0)
    with torch.no_grad():
        loss.logit_scale.fill_(math.log(1000.0))  # e.g. after an optimiser step overshoots
    assert loss.temperature == pytest.approx(1 / 20.0)
    value = loss(z_a.float(), z_b.float())
    assert value.item() == pytest.approx(float(InfoNCE(temperature=1 / 20.0)(z_a.float(), z_b.float())), rel=1e-6)
    value.backward()
    assert float(loss.logit_scale.grad) == 0.0  # beyond the clamp the scale cannot grow further
    assert float(loss.last_stats["temperature"]) == pytest.approx(1 / 20.0)


def test_fixed_temperature_has_no_parameters():
    assert list(InfoNCE(temperature=0.1).parameters()) == []
    assert len(list(InfoNCE(learn_temperature=True).parameters())) == 1


@pytest.mark.parametrize("kwargs", [dict(temperature=0.0), dict(temperature=-1.0), dict(temperature=float("nan")),
                                    dict(max_scale=0.0), dict(chunk_size=0),
                                    dict(temperature=0.001, learn_temperature=True, max_scale=100.0)])
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        InfoNCE(**kwargs)


def test_gradient_vanishes_when_positive_dominates():
    # Positives identical, negatives orthogonal, low temperature: p(positive) -> 1 and InfoNCE's gradient -> 0.
    z = torch.eye(4, dtype=torch.float64)
    loss = InfoNCE(temperature=0.02)
    _, g_a, g_b = value_and_grads(lambda a, b: loss(a, b), z, z)
    assert float(loss.last_stats["pos_prob"]) > 1 - 1e-15
    assert g_a.abs().max() < 1e-15 and g_b.abs().max() < 1e-15
