"""Window offsets for long sequences: closed-form examples, coverage, and the vectorised batch version."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from phylocl.data.tokens import pad_batch
from phylocl.models.windows import default_stride, window_batch, window_starts


def test_window_starts_examples():
    assert window_starts(3, 4, 2) == [0]
    assert window_starts(4, 4, 2) == [0]
    assert window_starts(10, 4, 2) == [0, 2, 4, 6]
    assert window_starts(11, 4, 2) == [0, 2, 4, 6, 7]
    assert window_starts(5, 4, 4) == [0, 1]
    assert default_stride(64) == 32 and default_stride(1) == 1


@pytest.mark.parametrize("window,stride", [(4, 2), (5, 2), (8, 3), (1, 1), (6, 6)])
def test_windows_cover_every_residue_with_full_windows(window, stride):
    for length in range(1, 40):
        starts = window_starts(length, window, stride)
        covered = np.zeros(length, dtype=bool)
        for s in starts:
            covered[s : s + window] = True
            assert 0 <= s and (s + window <= length or length <= window)
        assert covered.all()
        assert starts == sorted(set(starts))
        assert all(b - a <= stride for a, b in zip(starts, starts[1:]))


def test_window_starts_rejects_bad_stride():
    with pytest.raises(ValueError, match="stride"):
        window_starts(10, 4, 5)


def test_window_batch_matches_window_starts():
    rng = np.random.default_rng(0)
    lengths = [3, 17, 9, 4, 12]
    arrays = [rng.integers(3, 24, size=n) for n in lengths]
    batch = pad_batch(arrays)
    window, stride = 4, 2
    ids, mask, owner = window_batch(batch["input_ids"], batch["attention_mask"], window=window, stride=stride)
    expected = [(i, s) for i, a in enumerate(arrays) for s in window_starts(len(a), window, stride)]
    assert owner.tolist() == [i for i, _ in expected]
    assert ids.shape == (len(expected), window) and mask.shape == ids.shape
    for row, (i, s) in enumerate(expected):
        piece = arrays[i][s : s + window]
        assert mask[row].sum() == len(piece)
        assert ids[row, : len(piece)].tolist() == piece.tolist()
        assert (ids[row, len(piece) :] == 0).all()


def test_window_batch_narrow_batch_is_unchanged():
    batch = pad_batch([np.array([5, 6, 7]), np.array([8])])
    ids, mask, owner = window_batch(batch["input_ids"], batch["attention_mask"], window=10, stride=5)
    assert torch.equal(ids, batch["input_ids"]) and torch.equal(mask, batch["attention_mask"])
    assert owner.tolist() == [0, 1]


def test_overlap_stride_examples_from_its_docstring():
    """Mutation audit: consecutive windows share ``overlap`` of a window (stride = round(W (1 - overlap)))."""
    from phylocl.models.windows import overlap_stride

    assert [overlap_stride(128, o) for o in (0.5, 0.25, 0.0, 0.75, 0.999)] == [64, 96, 128, 32, 1]
    assert overlap_stride(200, 0.1) == 180
