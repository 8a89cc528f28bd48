"""Inference settings of SequenceEncoder.embed: int8 copies (cached, rebuilt after a weight change), window overlap."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from phylocl.models.inference import inference_module
from phylocl.models.windows import overlap_stride, window_starts

from .helpers import make_encoder, random_protein


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_overlap_stride_closed_form():
    assert overlap_stride(128, 0.5) == 64 and overlap_stride(128, 0.25) == 96 and overlap_stride(128, 0) == 128
    assert overlap_stride(1, 0.9) == 1
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="overlap"):
            overlap_stride(8, bad)


@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5])
def test_embed_overlap_is_the_mean_of_its_windows(overlap, rng):
    """Slow reference: embed each window alone, average the unit vectors, re-normalise."""
    enc = make_encoder("gmlp-tiny").eval()
    seq = random_protein(101, rng)  # max_len 32: several windows
    starts = window_starts(len(seq), enc.max_len, overlap_stride(enc.max_len, overlap))
    z = enc.embed([seq[s:s + enc.max_len] for s in starts]).astype(np.float64).sum(axis=0)
    np.testing.assert_allclose(enc.embed([seq], overlap=overlap)[0], z / np.linalg.norm(z), atol=1e-5)
    assert enc.embed([seq], overlap=None).tolist() == enc.embed([seq], overlap=0.5).tolist()


def test_int8_copy_is_cached_close_and_rebuilt_after_a_weight_change(rng):
    enc = make_encoder("gmlp-small").eval()
    seqs = [random_protein(n, rng) for n in (30, 3, 70, 12)]
    first = inference_module(enc, "int8")
    assert first is not enc and inference_module(enc, "int8") is first  # cached
    assert inference_module(enc, "fp32") is enc and inference_module(enc, "bf16") is enc
    assert any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in first.modules())
    x8, x32 = enc.embed(seqs, precision="int8"), enc.embed(seqs)
    assert not np.array_equal(x8, x32) and (x8 * x32).sum(axis=1).min() > 0.98
    assert "_phylocl_inference" not in enc.state_dict()  # not saved with the weights
    with torch.no_grad():
        next(enc.head.parameters()).mul_(0.5)
    assert inference_module(enc, "int8") is not first  # an in-place update invalidates the copy
    with pytest.raises(ValueError, match="precision"):
        inference_module(enc, "fp16")
