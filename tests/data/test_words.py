"""Letter codes and k-mer words against slow references written from the definitions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from phylocl.data.alphabet import DNA, FIRST_LETTER_ID, PROTEIN
from phylocl.data.words import pattern_offsets, window_words, window_words_torch, word_powers


def _slow_word(letters: str, canonical: str) -> int:
    """Base-n number of a k-mer, first letter most significant; -1 if a letter is not canonical."""
    if any(c not in canonical for c in letters):
        return -1
    value = 0
    for c in letters:
        value = value * len(canonical) + canonical.index(c)
    return value


@pytest.mark.parametrize("alpha", [PROTEIN, DNA], ids=["protein", "dna"])
def test_letter_codes_map_each_token_to_its_canonical_letter(alpha):
    code = alpha.letter_codes()
    assert code.shape == (alpha.vocab_size,) and alpha.canonical == alpha.letters.replace(alpha.unknown, "")
    for tid, tok in enumerate(alpha.tokens):
        want = alpha.canonical.index(tok) if tok in alpha.canonical else -1
        assert code[tid] == want, tok
    assert (code[len(alpha.tokens):] == -1).all()  # spare ids
    assert alpha.encode(alpha.letters[0])[0] == FIRST_LETTER_ID


@pytest.mark.parametrize("alpha, k", [(PROTEIN, 1), (PROTEIN, 3), (DNA, 2), (DNA, 5)], ids=str)
def test_window_words_equal_the_slow_reference(alpha, k):
    rng = np.random.default_rng(k)
    for length in (0, k - 1, k, 30):
        seq = "".join(rng.choice(list(alpha.letters), size=length))
        got = window_words(alpha.letter_codes()[alpha.encode(seq)], k, len(alpha.canonical))
        want = [_slow_word(seq[i:i + k], alpha.canonical) for i in range(len(seq) - k + 1)]
        assert got.tolist() == want


def test_words_of_one_length_are_dense_and_ordered():
    words = [_slow_word(a + b, "ACGT") for a in "ACGT" for b in "ACGT"]
    assert words == list(range(16)) and word_powers(4, 2).tolist() == [4, 1]
    assert window_words(np.array([[0, 1, 2], [3, -1, 3]]), 2, 4).tolist() == [[1, 6], [-1, -1]]  # batched rows


@pytest.mark.parametrize("pattern", ["111", "1101", "1011", "1", 2])
def test_torch_words_of_a_seed_pattern_equal_the_reference(pattern):
    rng = np.random.default_rng(0)
    alpha = PROTEIN
    seqs = ["".join(rng.choice(list(alpha.letters), size=12)) for _ in range(3)]
    codes = torch.from_numpy(np.stack([alpha.letter_codes()[alpha.encode(s)] for s in seqs]))  # (3, 12)
    got = window_words_torch(codes, pattern, 20)
    offsets = pattern_offsets(pattern)
    span, k = offsets[-1] + 1, len(offsets)
    for b, s in enumerate(seqs):
        want = [_slow_word("".join(s[i + o] for o in offsets), alpha.canonical) for i in range(len(s) - span + 1)]
        assert got[b].tolist() == [w if w >= 0 else 20**k for w in want]


def test_bad_seed_patterns_are_refused():
    for bad in ("", "0110", "1201"):
        with pytest.raises(ValueError, match="seed pattern"):
            pattern_offsets(bad)


def test_family_distance_codes_are_those_of_the_former_formula():
    from phylocl.data.distances import kmer_codes

    seq, k = "MKVLXAGIVGLLAWKVLA", 3
    letters = PROTEIN.encode(seq) - FIRST_LETTER_ID  # the formula kmer_codes used before the shared helper
    win = np.lib.stride_tricks.sliding_window_view(letters, k)
    old = win @ (21 ** np.arange(k - 1, -1, -1))
    old = np.unique(old[~(win == PROTEIN.letters.index("X")).any(axis=1)])
    np.testing.assert_array_equal(kmer_codes(seq, PROTEIN, k), old)
