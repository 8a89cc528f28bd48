"""Views: random / deterministic crops, masking and substitution noise (BLOSUM62-weighted for protein)."""

from __future__ import annotations

import numpy as np
import pytest

from phylocl.data.alphabet import DNA, MASK_ID, PROTEIN
from phylocl.data.substitution import AMINO_ACIDS, blosum62_model
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
