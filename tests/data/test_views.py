"""Views: random / deterministic crops, masking and substitution noise (BLOSUM62-weighted for protein)."""

from __future__ import annotations

import numpy as np
import pytest

from phylocl.data.alphabet import DNA, MASK_ID, PROTEIN
from phylocl.data.simulator.substitution import AMINO_ACIDS, blosum62_model
from phylocl.data.views import SequenceView, random_crop


def test_crop_keeps_short_sequences_and_windows_long_ones_uniformly():
    rng = np.random.default_rng(0)
    assert random_crop("MKTA", 10, rng) == "MKTA"
    seq = "".join(AMINO_ACIDS)  # 20 distinct letters: the window start is readable from the first letter
    starts = np.zeros(20 - 8 + 1)
    for _ in range(6000):
        w = random_crop(seq, 8, rng)
        assert len(w) == 8 and w in seq
        starts[seq.index(w)] += 1
    assert np.abs(starts / 6000 - 1 / 13).max() < 0.02
    view = SequenceView(alphabet=PROTEIN, max_len=8)
    assert PROTEIN.decode(view.eval(seq)) == seq[:8]
    assert PROTEIN.decode(view.eval("mkt")) == "MKT"


def test_masking_rate_and_untouched_rest():
    rng = np.random.default_rng(1)
    seq = "ACDEFGHIKLMNPQRSTVWY" * 100
    view = SequenceView(alphabet=PROTEIN, max_len=2000, mask_prob=0.15)
    out = view(seq, rng)
    clean = PROTEIN.encode(seq)
    masked = out == MASK_ID
    assert masked.mean() == pytest.approx(0.15, abs=0.03)
    assert np.array_equal(out[~masked], clean[~masked])


def test_substitutions_change_the_letter_at_the_requested_rate():
    rng = np.random.default_rng(2)
    seq = "ACGT" * 1000
    view = SequenceView(alphabet=DNA, max_len=4000, substitution_prob=0.2)
    out, clean = view(seq, rng), DNA.encode(seq)
    changed = out != clean
    assert changed.mean() == pytest.approx(0.2, abs=0.02)
    assert set(DNA.decode(out[changed])) <= set("ACGT")
    # uniform over the three other bases
    all_a = DNA.encode("A" * 20_000)
    noisy = view.add_noise(all_a, rng)
    from_a = noisy[noisy != all_a]  # about 4000 replacements
    counts = np.array([(from_a == DNA.encode(c)[0]).sum() for c in "CGT"]) / len(from_a)
    assert np.abs(counts - 1 / 3).max() < 0.03
    unknown = view.add_noise(DNA.encode("N" * 2000), rng)
    assert set(DNA.decode(unknown[unknown != DNA.encode("N")[0]])) <= set("ACGT")


def test_blosum_weighted_replacements_follow_blosum62():
    rng = np.random.default_rng(3)
    view = SequenceView(alphabet=PROTEIN, max_len=50_000, substitution_prob=0.5, blosum=True)
    clean = PROTEIN.encode("I" * 50_000)
    out = view.add_noise(clean, rng)
    got = out[out != clean]
    letters = [c for c in AMINO_ACIDS if c != "I"]
    freq = np.array([(got == PROTEIN.encode(c)[0]).sum() for c in letters]) / len(got)
    _, p = blosum62_model()
    expected = np.array([p[AMINO_ACIDS.index("I"), AMINO_ACIDS.index(c)] for c in letters])
    expected /= expected.sum()
    assert np.abs(freq - expected).max() < 0.01
    assert freq[letters.index("V")] > 5 * freq[letters.index("D")]


def test_deterministic_given_generator_and_validation():
    view = SequenceView(alphabet=PROTEIN, max_len=30, mask_prob=0.1, substitution_prob=0.1)
    seq = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVV"
    a = view(seq, np.random.default_rng(4))
    b = view(seq, np.random.default_rng(4))
    assert np.array_equal(a, b) and len(a) == 30
    for kwargs in ({"max_len": 0}, {"max_len": 5, "mask_prob": 1.0}, {"max_len": 5, "substitution_prob": -0.1}):
        with pytest.raises(ValueError):
            SequenceView(alphabet=PROTEIN, **kwargs)


def test_matched_crops_take_the_same_relative_position_of_both_members():
    seq_a = "".join(AMINO_ACIDS)            # 20 letters: 13 starts for an 8-window
    seq_b = "".join(AMINO_ACIDS[::-1]) * 2  # 40 letters: 33 starts
    view = SequenceView(alphabet=PROTEIN, max_len=8, crop="matched")
    rng = np.random.default_rng(5)
    starts_a = []
    for _ in range(3000):
        a, b = (PROTEIN.decode(x) for x in view.pair(seq_a, seq_b, rng))
        sa = seq_a.index(a)
        starts_a.append(sa)
        # the same fraction u of the way through: floor(u * 13) == sa and floor(u * 33) == sb for one u
        # (seq_b repeats with period 20, so its window may sit at either of two starts)
        assert any(max(sa / 13, sb / 33) < min((sa + 1) / 13, (sb + 1) / 33)
                   for sb in (i for i in range(33) if seq_b[i:i + 8] == b)), (sa, b)
    counts = np.bincount(starts_a, minlength=13)
    assert np.abs(counts / 3000 - 1 / 13).max() < 0.02  # still uniform over the starts of each member
    # a member not longer than the window is kept whole; the other is still cropped
    a, b = view.pair("MKT", seq_b, rng)
    assert PROTEIN.decode(a) == "MKT" and len(b) == 8


def test_random_crop_pairs_are_independent_and_unchanged_by_the_option():
    seq = "".join(AMINO_ACIDS)
    view = SequenceView(alphabet=PROTEIN, max_len=8)  # default crop="random"
    rng = np.random.default_rng(6)
    same = 0
    for _ in range(2000):
        a, b = (PROTEIN.decode(x) for x in view.pair(seq, seq, rng))
        same += seq.index(a) == seq.index(b)
    assert same / 2000 == pytest.approx(1 / 13, abs=0.02)  # independent starts agree 1 time in 13
    # pair() with random crops draws exactly what two calls of the view draw (shipped configs reproduce)
    r1, r2 = np.random.default_rng(7), np.random.default_rng(7)
    a, b = view.pair(seq, seq[::-1], r1)
    assert np.array_equal(a, view(seq, r2)) and np.array_equal(b, view(seq[::-1], r2))
    with pytest.raises(ValueError, match="crop"):
        SequenceView(alphabet=PROTEIN, max_len=8, crop="aligned")
