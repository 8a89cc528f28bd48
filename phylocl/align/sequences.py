"""Sequences as the aligner reads them: upper case, the letters the scoring system scores.

The same reading as the data layer gives the alignment stage (:mod:`phylocl.data.letters`, with
``keep_ambiguous``): protein ``B J Z U O`` kept (scored as ``blastp`` scores them), ``*`` -> ``X``; DNA ``U`` -> ``T``,
``X`` -> ``N``, and the IUPAC codes ``R Y S W K M B D H V`` kept (scored as ``blastn`` scores them;
:mod:`phylocl.align.scoring`). Any other letter cannot be scored and is refused.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from phylocl.align.scoring import ScoringSystem

__all__ = ["clean_sequence", "string_ranks"]

_ALIASES = {"protein": {"*": "X"},
            "dna": {"U": "T", "X": "N"}}
_TABLES: dict[str, dict[int, int]] = {}


def _table(alphabet: str) -> dict[int, int]:
    if alphabet not in _TABLES:
        table = {ord(c.lower()): ord(c) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}
        for src, dst in _ALIASES[alphabet].items():
            table[ord(src)] = table[ord(src.lower())] = ord(dst)
        _TABLES[alphabet] = table
    return _TABLES[alphabet]


_DELETE: dict[str, dict[int, None]] = {}


def _allowed(letters: str) -> dict[int, None]:
    """A ``str.translate`` table deleting ``letters`` (a C-speed check that nothing else is left)."""
    if letters not in _DELETE:
        _DELETE[letters] = dict.fromkeys(map(ord, letters))
    return _DELETE[letters]


def clean_sequence(seq: str | bytes, scoring: ScoringSystem, *, what: str = "sequence") -> str:
    """``seq`` in the letters of ``scoring`` (upper case, aliases resolved).

    Raises ``ValueError`` naming ``what`` and the first letter the scoring system cannot score.
    """
    if isinstance(seq, (bytes, bytearray, memoryview)):
        seq = bytes(seq).decode("latin-1")
    out = seq.translate(_table(scoring.alphabet))
    if out.translate(_allowed(scoring.letters)):  # what is left once the scorable letters are deleted
        bad = set(out) - set(scoring.letters)
        letter = min(bad, key=out.index)
        raise ValueError(f"{what}: letter {letter!r} (position {out.index(letter) + 1}) cannot be scored by "
                         f"{scoring.matrix_name} ({scoring.alphabet} letters {scoring.letters})")
    return out


def string_ranks(strings: Sequence[str]) -> np.ndarray:
    """``(S,)`` int64 ranks of ``strings`` in sorted order, equal strings sharing one (so ``rank[a] <= rank[b]``
    exactly when ``strings[a] <= strings[b]``)."""
    order = sorted(range(len(strings)), key=strings.__getitem__)
    rank = np.zeros(len(strings), dtype=np.int64)
    r, last = -1, None
    for i in order:
        if strings[i] != last:
            r, last = r + 1, strings[i]
        rank[i] = r
    return rank
