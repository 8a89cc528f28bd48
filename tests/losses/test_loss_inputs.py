"""InfoNCE / FlatNCE called as a user of the Python API would: wrong types, devices, dtypes, labels and options are
refused with a ValueError / TypeError naming the argument; documented edge cases behave as documented."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import phylocl

LOSSES = {"infonce": phylocl.InfoNCE, "flatnce": phylocl.FlatNCE}


def _pairs(b=6, d=5, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, d, generator=g).to(dtype), torch.randn(b, d, generator=g).to(dtype)


@pytest.mark.parametrize("name", list(LOSSES))
def test_arrays_and_lists_are_refused_naming_the_view(name):
    z_a, z_b = _pairs()
    with pytest.raises(TypeError, match="z_a must be a torch.Tensor.*ndarray"):  # was AttributeError: no .dim
        LOSSES[name]()(z_a.numpy(), z_b.numpy())
    with pytest.raises(TypeError, match="z_b must be a torch.Tensor.*list"):
        LOSSES[name]()(z_a, z_b.tolist())


@pytest.mark.parametrize("name", list(LOSSES))
def test_views_on_two_devices_and_zero_width_are_refused(name):
    z_a, z_b = _pairs()
    with pytest.raises(ValueError, match="one device"):  # was a RuntimeError deep in the matmul
        LOSSES[name]()(z_a, z_b.to("meta"))
    with pytest.raises(ValueError, match="width D = 0"):  # was log(B), as if every row were equal
        LOSSES[name]()(torch.zeros(4, 0), torch.zeros(4, 0))


@pytest.mark.parametrize("name", list(LOSSES))
def test_float_and_complex_label_tensors_are_refused_like_float_lists(name):
    z_a, z_b = _pairs(4)
    for labels in (torch.tensor([0.0, 0.5, 0.0, 1.0]), torch.tensor([1j, 2j, 1j, 3j])):  # were read as ids
        with pytest.raises(ValueError, match="integer family ids or strings.*tensor"):
            LOSSES[name]()(z_a, z_b, labels)
    ints = LOSSES[name]()(z_a, z_b, torch.tensor([0, 1, 0, 1], dtype=torch.int32))
    assert float(ints) == float(LOSSES[name]()(z_a, z_b, [0, 1, 0, 1]))


@pytest.mark.parametrize("name", list(LOSSES))
def test_a_single_string_and_mixed_labels_are_refused(name):
    z_a, z_b = _pairs(4)
    with pytest.raises(ValueError, match="single str 'abcd'"):
        LOSSES[name]()(z_a, z_b, "abcd")
    with pytest.raises(ValueError, match="mix strings and other values"):  # 1 and '1' were one family
        LOSSES[name]()(z_a, z_b, [1, "1", "a", 2])
    with pytest.raises(ValueError, match=r"labels must have shape \(4,\), got \(4, 1\)"):
        LOSSES[name]()(z_a, z_b, torch.zeros(4, 1, dtype=torch.long))


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("temperature", [True, 0, -1.0, float("nan"), float("inf"), "0.1", 1e-40])
def test_bad_temperatures_are_refused(name, temperature):
    # True was read as 1.0 and 1e-40 gave a NaN loss (1 / temperature overflows float32 logits)
    with pytest.raises(ValueError, match="temperature must be"):
        LOSSES[name](temperature=temperature)


@pytest.mark.parametrize("name", list(LOSSES))
def test_numpy_numbers_are_accepted_where_python_numbers_are(name):
    z_a, z_b = _pairs()
    want = LOSSES[name](temperature=0.25, chunk_size=2)(z_a, z_b)
    got = LOSSES[name](temperature=np.float32(0.25), chunk_size=np.int64(2))(z_a, z_b)  # both were refused
    assert float(got) == pytest.approx(float(want), rel=1e-6)
    with pytest.raises(ValueError, match="chunk_size must be an int >= 1"):  # True was chunk_size=1
        LOSSES[name](chunk_size=True)


@pytest.mark.parametrize("flag", ["symmetric", "normalize", "gather_distributed"])
def test_option_flags_must_be_booleans(flag):
    with pytest.raises(TypeError, match=f"{flag} must be True or False, got 'no'"):  # bool('no') was True
        phylocl.InfoNCE(**{flag: "no"})
    assert getattr(phylocl.FlatNCE(**{flag: np.bool_(False)}), flag) is False


def test_infonce_max_scale_and_learn_temperature_are_checked():
    with pytest.raises(ValueError, match="max_scale must be a finite number > 0, got '100'"):  # was a TypeError
        phylocl.InfoNCE(max_scale="100")
    with pytest.raises(TypeError, match="learn_temperature must be True or False"):
        phylocl.InfoNCE(learn_temperature="yes")


@pytest.mark.parametrize("name", list(LOSSES))
def test_mixed_precisions_are_computed_in_the_wider_dtype(name):
    z_a, z_b = _pairs(dtype=torch.float64)
    for normalize in (True, False):
        loss = LOSSES[name](normalize=normalize)
        ref = loss(z_a, z_b)
        assert ref.dtype == torch.float64
        for a, b in ((z_a.half(), z_b), (z_a, z_b.half())):  # z_b was cast down to float32 without normalize
            got = loss(a, b)
            assert got.dtype == torch.float64
            assert float(got) == pytest.approx(float(loss(a.double(), b.double())), rel=1e-12)


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_low_and_high_precision_inputs_give_finite_gradients_in_their_dtype(name, dtype):
    z_a, z_b = (z.requires_grad_() for z in _pairs(dtype=dtype))
    value = LOSSES[name]()(z_a, z_b, [0, 1, 0, 2, 1, 3])
    value.backward()
    assert value.dtype == torch.promote_types(dtype, torch.float32)
    assert z_a.grad.dtype == dtype and bool(torch.isfinite(z_a.grad.float()).all())


@pytest.mark.parametrize("name", list(LOSSES))
def test_non_contiguous_views_equal_contiguous_ones(name):
    z_a, z_b = _pairs(6, 5)
    t_a, t_b = z_a.T.contiguous().T, z_b[:, [4, 3, 2, 1, 0]][:, [4, 3, 2, 1, 0]]
    assert not t_a.is_contiguous()
    assert float(LOSSES[name]()(t_a, t_b)) == pytest.approx(float(LOSSES[name]()(z_a, z_b)), rel=1e-6)


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("case", ["one pair", "one family"])
def test_no_negative_gives_zero_with_zero_finite_gradients_as_documented(name, case):
    z_a, z_b = _pairs(1 if case == "one pair" else 4)
    z_a.requires_grad_()
    labels = None if case == "one pair" else ["f"] * 4
    value = LOSSES[name]()(z_a, z_b, labels)
    value.backward()
    assert float(value.detach()) == 0.0 and value.requires_grad
    assert bool((z_a.grad == 0).all())


def test_non_finite_embeddings_give_nan_as_documented():
    z_a, z_b = _pairs(4)
    z_a[0, 0] = float("nan")
    assert torch.isnan(phylocl.InfoNCE()(z_a, z_b))
    assert "NaN loss" in phylocl.InfoNCE.forward.__doc__


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("normalize", [True, False])
def test_complex_views_are_refused_naming_the_view(name, normalize):
    z_a, z_b = _pairs()
    with pytest.raises(TypeError, match=r"^z_b must hold real numbers, got a torch.complex64 tensor$"):
        LOSSES[name](normalize=normalize)(z_a, z_b.to(torch.complex64))  # was NotImplementedError (max_values_cpu)
