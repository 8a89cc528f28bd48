"""Properties shared by InfoNCE and FlatNCE: one definition of negatives, chunking, masking, precision."""

import pytest
import torch
import torch.nn.functional as F

from loss_reference import unit_pairs
from phylocl.losses.flatnce import FlatNCE
from phylocl.losses.infonce import InfoNCE
from phylocl.losses.logits import negative_terms

LOSSES = {
    "infonce": lambda **kw: InfoNCE(temperature=0.2, **kw),
    "infonce-learned": lambda **kw: InfoNCE(temperature=0.2, learn_temperature=True, **kw).double(),
    "flatnce": lambda **kw: FlatNCE(temperature=0.2, **kw),
}


def _run(loss, z_a, z_b, labels=None):
    z_a = z_a.clone().requires_grad_()
    z_b = z_b.clone().requires_grad_()
    value = loss(z_a, z_b, labels)
    value.backward()
    params = [p.grad.clone() for p in loss.parameters()]
    return value.detach(), z_a.grad, z_b.grad, params


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("chunk_size", [1, 3, 7, 10, 64])
@pytest.mark.parametrize("labels", [None, torch.tensor([0, 1, 0, 2, 1, 3, 3, 4, 5, 0])])
def test_chunked_equals_unchunked(name, chunk_size, labels):
    z_a, z_b = unit_pairs(10, 6, seed=10)
    full = _run(LOSSES[name](), z_a, z_b, labels)
    chunked = _run(LOSSES[name](chunk_size=chunk_size), z_a, z_b, labels)
    torch.testing.assert_close(chunked[0], full[0], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(chunked[1], full[1], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(chunked[2], full[2], rtol=1e-12, atol=1e-14)
    for g, r in zip(chunked[3], full[3]):
        torch.testing.assert_close(g, r, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("chunk_size", [1, 3, 7])
@pytest.mark.parametrize("labels", [None, torch.tensor([0, 1, 0, 2, 1, 3, 3, 4, 5, 0])])
def test_chunked_equals_unchunked_without_gradients(name, chunk_size, labels):
    """Under no_grad (validation) the chunks are computed directly, not checkpointed: the same value and logged
    statistics as one unchunked pass (each chunk's anchors against their own positives)."""
    z_a, z_b = unit_pairs(10, 6, seed=13)
    full, chunked = LOSSES[name](), LOSSES[name](chunk_size=chunk_size)
    with torch.no_grad():
        want, got = full(z_a, z_b, labels), chunked(z_a, z_b, labels)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=0)
    for key, value in full.last_stats.items():
        torch.testing.assert_close(chunked.last_stats[key], value, rtol=1e-12, atol=0, msg=key)


@pytest.mark.parametrize("name", list(LOSSES))
def test_chunking_keeps_no_square_matrix_for_backward(name):
    b, chunk = 64, 8
    z_a, z_b = unit_pairs(b, 4, seed=11, dtype=torch.float32)
    z_a.requires_grad_()
    z_b.requires_grad_()
    for chunk_size, bound in [(None, b * b), (chunk, b * 4)]:
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t):
            LOSSES[name](chunk_size=chunk_size).float()(z_a, z_b)
        if chunk_size is None:
            assert max(saved) == bound  # the (B, B) logits are kept for backward
        else:
            assert max(saved) <= bound  # only the (B, D) inputs and per-anchor vectors; chunks are recomputed


@pytest.mark.parametrize("name", list(LOSSES))
def test_symmetric_loss_is_symmetric_in_the_views(name):
    z_a, z_b = unit_pairs(8, 5, seed=12)
    labels = torch.tensor([0, 1, 1, 2, 3, 4, 4, 5])
    v1, ga1, gb1, _ = _run(LOSSES[name](), z_a, z_b, labels)
    v2, ga2, gb2, _ = _run(LOSSES[name](), z_b, z_a, labels)
    torch.testing.assert_close(v1, v2, rtol=1e-12, atol=0)
    torch.testing.assert_close(ga1, gb2, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(gb1, ga2, rtol=1e-12, atol=1e-14)


def test_symmetric_is_mean_of_the_two_directions():
    z_a, z_b = unit_pairs(8, 5, seed=13)
    one = InfoNCE(temperature=0.3, symmetric=False)
    both = InfoNCE(temperature=0.3, symmetric=True)
    expected = (one(z_a, z_b) + one(z_b, z_a)) / 2
    torch.testing.assert_close(both(z_a, z_b), expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("symmetric", [True, False])
def test_same_label_row_never_acts_as_negative(name, symmetric):
    # Labels: rows 0 and 1 share a family. Move b_1 along u, orthogonal to every a_j except a_0: only
    # s(a_0, b_1) changes (and, symmetric, s(b_1, a_0)), which are masked, so the loss must not notice.
    d = 8
    z_a, z_b = unit_pairs(5, d, seed=14)
    others = z_a[1:]  # (4, d)
    q, _ = torch.linalg.qr(others.T, mode="complete")  # (d, d), first 4 columns span the other anchors
    u = q[:, 4:] @ (q[:, 4:].T @ z_a[0])
    u = u / u.norm()
    assert float(u @ z_a[0]) > 0.1 and float((others @ u).abs().max()) < 1e-12
    labels = torch.tensor([0, 0, 1, 2, 3])

    def directional(lab):
        _, _, g_b, _ = _run(LOSSES[name](symmetric=symmetric, normalize=False), z_a, z_b, lab)
        return float(g_b[1] @ u)

    assert abs(directional(labels)) < 1e-12
    assert abs(directional(None)) > 1e-3  # without labels b_1 is a negative of a_0 and it matters
    if name == "infonce":
        loss = LOSSES[name](symmetric=symmetric, normalize=False)
        moved = z_b.clone()
        moved[1] = moved[1] + 0.7 * u
        assert float(loss(z_a, moved, labels)) == pytest.approx(float(loss(z_a, z_b, labels)), rel=1e-12)
        assert float(loss(z_a, moved)) != pytest.approx(float(loss(z_a, z_b)), rel=1e-6)


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("case", ["single-row", "one-family"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_no_negatives_gives_zero_loss_and_zero_finite_gradient(name, case, dtype):
    b = 1 if case == "single-row" else 4
    z_a, z_b = unit_pairs(b, 3, seed=15, dtype=torch.float64)
    z_a, z_b = z_a.to(dtype), z_b.to(dtype)
    labels = None if case == "single-row" else torch.full((b,), 7)
    loss = LOSSES[name]().to(torch.float64)
    value, g_a, g_b, params = _run(loss, z_a, z_b, labels)
    assert float(value) == 0.0
    for g in [g_a, g_b, *params]:
        assert torch.isfinite(g).all() and float(g.abs().max()) == 0.0
    assert all(torch.isfinite(v) for v in loss.last_stats.values())
    assert float(negative_terms(z_a, z_b, 5.0, labels=labels).valid.sum()) == 0


@pytest.mark.parametrize("name", ["infonce", "flatnce"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("temperature", [0.01, 1.0])
def test_half_precision_is_stable_and_close_to_fp32(name, dtype, temperature):
    cls = InfoNCE if name == "infonce" else FlatNCE
    z_a, z_b = unit_pairs(32, 16, seed=16, dtype=torch.float32, noise=1.0)
    ref = _run(cls(temperature=temperature), z_a, z_b)
    half = _run(cls(temperature=temperature), z_a.to(dtype), z_b.to(dtype))
    for t in half[:3]:
        assert torch.isfinite(t).all()
    assert half[0].dtype == torch.float32  # computed in fp32 whatever the embedding dtype
    # Rounding the embeddings to half moves each similarity by ~eps(dtype); at T = 0.01 that is x100 in logits.
    tol = {torch.float16: 1e-3, torch.bfloat16: 1e-2}[dtype] / temperature
    assert float(half[0]) == pytest.approx(float(ref[0]), rel=tol, abs=tol)
    g_half = torch.cat([half[1], half[2]]).float()
    g_ref = torch.cat([ref[1], ref[2]])
    assert float((g_half - g_ref).norm() / g_ref.norm()) < {torch.float16: 1e-2, torch.bfloat16: 1e-1}[dtype]
    # Against fp32 on the same rounded inputs only the final cast of the gradient to half may differ.
    same = _run(cls(temperature=temperature), z_a.to(dtype).float(), z_b.to(dtype).float())
    torch.testing.assert_close(half[0], same[0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(g_half, torch.cat([same[1], same[2]]).to(dtype).float(), rtol=0, atol=0)


@pytest.mark.parametrize("shapes", [((4, 3), (4, 2)), ((4, 3), (5, 3)), ((4,), (4,))])
def test_shape_errors(shapes):
    with pytest.raises(ValueError, match="same shape"):
        InfoNCE()(torch.zeros(shapes[0]), torch.zeros(shapes[1]))


def test_label_shape_error():
    with pytest.raises(ValueError, match="labels"):
        FlatNCE()(torch.zeros(4, 3), torch.zeros(4, 3), torch.zeros(3, dtype=torch.long))


@pytest.mark.parametrize("name", list(LOSSES))
def test_labels_as_lists_arrays_and_strings_equal_the_tensor(name):
    """A list, a NumPy array or strings (``read_dataset(...).families``) mask the same rows as the integer tensor
    (they raised AttributeError); float labels and an empty batch are refused with ValueError."""
    import numpy as np

    z_a, z_b = unit_pairs(6, 5, seed=3)
    codes = torch.tensor([0, 1, 0, 2, 1, 3])
    want = _run(LOSSES[name](), z_a, z_b, codes)
    for labels in (codes.tolist(), codes.numpy(), ["b", "c", "b", "d", "c", "x"], np.array(["f0", "f1", "f0", "f2",
                                                                                               "f1", "f3"])):
        got = _run(LOSSES[name](), z_a, z_b, labels)
        torch.testing.assert_close(got[0], want[0], rtol=0, atol=0)
        torch.testing.assert_close(got[1], want[1], rtol=0, atol=0)
    with pytest.raises(ValueError, match="integer family ids or strings"):
        LOSSES[name]()(z_a, z_b, [0.5, 1, 0, 2, 1, 3])
    with pytest.raises(ValueError, match="empty batch"):
        LOSSES[name]()(z_a[:0], z_b[:0])


def test_gathered_losses_refuse_string_labels():
    z_a, z_b = unit_pairs(4, 5, seed=1)
    with pytest.raises(ValueError, match="integer family ids comparable across ranks"):
        InfoNCE(gather_distributed=True)(z_a, z_b, ["a", "b", "a", "c"])


@pytest.mark.parametrize("name", list(LOSSES))
def test_normalize_makes_foreign_outputs_cosines(name):
    """normalize=True (default): the loss sees cosines, so rescaling rows changes nothing, and its value equals the
    dot-product loss of the normalised rows; normalize=False on raw rows differs."""
    g = torch.Generator().manual_seed(21)
    raw_a = torch.randn(6, 5, generator=g, dtype=torch.float64) * 3.0  # a foreign encoder: rows of any norm
    raw_b = raw_a + torch.randn(6, 5, generator=g, dtype=torch.float64)
    scales = torch.rand(6, 1, generator=g, dtype=torch.float64) * 4 + 0.5
    loss, plain = LOSSES[name](), LOSSES[name](normalize=False)
    assert loss.normalize and not plain.normalize
    value = loss(raw_a, raw_b)
    assert float(loss(raw_a * scales, raw_b)) == pytest.approx(float(value), rel=1e-12)
    unit_a, unit_b = F.normalize(raw_a, dim=1), F.normalize(raw_b, dim=1)
    assert float(plain(unit_a, unit_b)) == pytest.approx(float(value), rel=1e-12)
    if name != "flatnce":  # FlatNCE's value is always 1
        assert float(plain(raw_a, raw_b)) != pytest.approx(float(value), rel=1e-3)


def test_normalize_gradient_matches_finite_differences():
    g = torch.Generator().manual_seed(22)
    raw_a = torch.randn(5, 4, generator=g, dtype=torch.float64) * 2.0
    raw_b = raw_a + torch.randn(5, 4, generator=g, dtype=torch.float64)
    loss = InfoNCE(temperature=0.3)
    _, g_a, g_b, _ = _run(loss, raw_a, raw_b)
    eps = 1e-6
    for z, grad, first in ((raw_a, g_a, True), (raw_b, g_b, False)):
        for idx in [(0, 0), (2, 3), (4, 1)]:
            plus, minus = z.clone(), z.clone()
            plus[idx] += eps
            minus[idx] -= eps
            f = (lambda x: loss(x, raw_b)) if first else (lambda x: loss(raw_a, x))
            fd = (float(f(plus)) - float(f(minus))) / (2 * eps)
            assert float(grad[idx]) == pytest.approx(fd, rel=1e-6, abs=1e-9)
    # the gradient is tangent to each row (the loss does not depend on the row norms)
    assert float((g_a * raw_a).sum(dim=1).abs().max()) < 1e-12


@pytest.mark.parametrize("labels", [None, torch.tensor([0, 1, 0, 2, 1, 3, 3, 4])])
def test_mean_negative_similarity_matches_a_loop(labels):
    from phylocl.losses.logits import mean_negative_similarity

    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    lab = torch.arange(8) if labels is None else labels
    ref = [float(a[i] @ b[j]) for i in range(8) for j in range(8) if lab[i] != lab[j]]  # slow obvious version
    assert float(mean_negative_similarity(a, b, labels)) == pytest.approx(sum(ref) / len(ref), rel=1e-5)
    assert torch.isnan(mean_negative_similarity(a[:2], b[:2], torch.tensor([1, 1])))


@pytest.mark.parametrize("default", [torch.float64, torch.float16, torch.bfloat16])
def test_mean_negative_similarity_under_another_default_dtype(default):
    """``trainer.precision=64-true`` (and 16-true, bf16-true) sets torch's default dtype while training: the batch
    hardness logged every step summed float32 rows into default-dtype zeros, and ``phylocl train`` died in
    index_add_ with a traceback (a listed precision)."""
    from phylocl.losses.logits import mean_negative_similarity

    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    labels = torch.tensor([0, 0, 1, 2, 2, 3])
    expected = float(mean_negative_similarity(a, b, labels))
    previous = torch.get_default_dtype()
    torch.set_default_dtype(default)
    try:
        got = mean_negative_similarity(a.to(default), b.to(default), labels)
    finally:
        torch.set_default_dtype(previous)
    assert float(got) == pytest.approx(expected, rel=2e-2)
