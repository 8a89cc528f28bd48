"""Late interaction: best-window-pair similarities through the plain losses' negatives."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from phylocl.losses.flatnce import FlatNCE
from phylocl.losses.infonce import InfoNCE
from phylocl.losses.late_interaction import LateInteraction, window_similarity


def _windows(n: int, most: int, d: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    counts = torch.randint(1, most + 1, (n,), generator=g)
    owners = torch.repeat_interleave(torch.arange(n), counts)  # (W,) rows 0..n-1, each at least once
    return torch.randn(len(owners), d, generator=g, dtype=torch.float64), owners


def test_window_similarity_is_the_best_window_pair():
    z_a, o_a = _windows(5, 4, 6, 0)
    z_b, o_b = _windows(5, 3, 6, 1)
    got = window_similarity(z_a, o_a, z_b, o_b, 5)
    for i in range(5):
        for j in range(5):
            want = max(float(z_a[u] @ z_b[w]) for u in range(len(o_a)) for w in range(len(o_b))
                       if o_a[u] == i and o_b[w] == j)
            assert got[i, j].item() == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("base", [InfoNCE(temperature=0.1), InfoNCE(temperature=0.05, symmetric=False),
                                  FlatNCE(temperature=0.1)])
def test_one_window_per_sequence_is_the_plain_loss_value_and_gradient(base):
    g = torch.Generator().manual_seed(3)
    z_a = torch.randn(7, 5, generator=g, dtype=torch.float64, requires_grad=True)
    z_b = torch.randn(7, 5, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 1, 1, 2, 3, 3, 4])
    plain = base(z_a, z_b, labels)
    ga, gb = torch.autograd.grad(plain, (z_a, z_b))
    rows = torch.arange(7)
    late = LateInteraction(loss=base)(z_a, rows, z_b, rows, labels)
    la, lb = torch.autograd.grad(late, (z_a, z_b))
    assert late.item() == pytest.approx(plain.item(), abs=1e-12)
    torch.testing.assert_close(la, ga)
    torch.testing.assert_close(lb, gb)


def test_gradient_equals_finite_differences_and_reaches_only_the_best_windows():
    z_a, o_a = _windows(4, 3, 5, 4)
    z_b, o_b = _windows(4, 3, 5, 5)
    z_a.requires_grad_(True)
    z_b.requires_grad_(True)
    loss = LateInteraction(loss=InfoNCE(temperature=0.2))
    labels = torch.tensor([0, 1, 2, 2])
    assert torch.autograd.gradcheck(lambda a, b: loss(a, o_a, b, o_b, labels), (z_a, z_b))
    ga, = torch.autograd.grad(loss(z_a, o_a, z_b, o_b, labels), (z_a,))
    s = window_similarity(F.normalize(z_a, dim=-1), o_a, F.normalize(z_b, dim=-1), o_b, 4)
    cos = F.normalize(z_a, dim=-1) @ F.normalize(z_b, dim=-1).T  # (Wa, Wb)
    used = torch.zeros(len(o_a), dtype=torch.bool)  # windows of a that attain some S_ij
    for i in range(4):
        for j in range(4):
            block = cos[o_a == i][:, o_b == j]
            at = (block == s[i, j]).any(dim=1)
            used[torch.nonzero(o_a == i).flatten()[at]] = True
    assert (ga[~used] == 0).all() and (ga[used].abs().sum(dim=1) > 0).all()


def test_window_order_does_not_matter():
    z_a, o_a = _windows(6, 3, 4, 6)
    z_b, o_b = _windows(6, 3, 4, 7)
    loss = LateInteraction(loss=InfoNCE(temperature=0.1))
    labels = torch.arange(6)
    p = torch.randperm(len(o_a), generator=torch.Generator().manual_seed(0))
    assert loss(z_a[p], o_a[p], z_b, o_b, labels).item() == pytest.approx(loss(z_a, o_a, z_b, o_b, labels).item(),
                                                                         abs=1e-12)


def test_bad_owners_and_gathered_losses_are_refused():
    z, o = _windows(3, 2, 4, 8)
    with pytest.raises(ValueError, match="at least one window"):
        window_similarity(z, o, z, o, 4)  # row 3 owns nothing
    with pytest.raises(ValueError, match="at least one window"):
        window_similarity(z, o + 1, z, o, 3)
    with pytest.raises(ValueError, match="one owner per window"):
        window_similarity(z, o[:-1], z, o, 3)
    with pytest.raises(ValueError, match="gather"):
        LateInteraction(loss=InfoNCE(gather_distributed=True))
