"""Alphabets: the letters a model understands and how raw sequence letters map onto them.

Token ids: ``0`` padding, ``1`` CLS, ``2`` mask, then one id per canonical letter. The vocabulary size is
padded up to a multiple of 8 (tensor-core friendly embedding tables); the spare ids are never produced.

Protein: the 20 standard amino acids plus ``X``. Ambiguity codes (``B`` = D/N, ``Z`` = E/Q, ``J`` = I/L) and
the rare residues selenocysteine ``U`` and pyrrolysine ``O`` read as ``X`` (the alignment stage of search keeps them
and scores them as blastp does: :mod:`phylocl.data.letters`, ``keep_ambiguous``). DNA:
``A C G T`` plus ``N``; RNA ``U`` reads as ``T``; the IUPAC ambiguity codes ``R Y S W K M B D H V`` and ``X``
read as ``N``. Input is case-insensitive. :mod:`phylocl.data.letters` counts the letters read as unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Alphabet", "PROTEIN", "DNA", "get_alphabet", "ALPHABETS", "looks_like_dna", "detect_alphabet",
           "PAD_ID", "CLS_ID", "MASK_ID", "FIRST_LETTER_ID"]

PAD_ID = 0
CLS_ID = 1
MASK_ID = 2
_SPECIALS = ("<pad>", "<cls>", "<mask>")
FIRST_LETTER_ID = len(_SPECIALS)  # token id of letters[0]: letter i has id FIRST_LETTER_ID + i


@dataclass(frozen=True)
class Alphabet:
    """A named alphabet.

    Attributes:
        name: ``"protein"`` or ``"dna"``.
        letters: canonical letters in token order (ids start at 3).
        aliases: extra accepted letters and the canonical letter each reads as.
        unknown: the canonical "any residue" letter (``X`` / ``N``), used for masking noise targets.
    """

    name: str
    letters: str
    aliases: dict[str, str] = field(default_factory=dict)
    unknown: str = "X"

    def __post_init__(self) -> None:
        table = np.full(256, -1, dtype=np.int64)
        for i, ch in enumerate(self.letters):
            table[ord(ch)] = table[ord(ch.lower())] = len(_SPECIALS) + i
        for src, dst in self.aliases.items():
            tid = table[ord(dst)]
            table[ord(src)] = table[ord(src.lower())] = tid
        object.__setattr__(self, "_table", table)

    @property
    def canonical(self) -> str:
        """The letters k-mer words are made of: :attr:`letters` without :attr:`unknown` (20 amino acids,
        ``ACGT``), in token order."""
        return self.letters.replace(self.unknown, "")

    def letter_codes(self) -> np.ndarray:
        """``(vocab_size,)`` int64 lookup: token id -> position of its letter in :attr:`canonical` (``0..n-1``),
        ``-1`` for the specials, the unknown letter and the spare ids. ``letter_codes()[encode(seq)]`` are the
        letter codes of ``seq`` that :mod:`phylocl.data.words` turns into k-mer words."""
        code = np.full(self.vocab_size, -1, dtype=np.int64)
        for i, ch in enumerate(self.letters):
            if ch != self.unknown:
                code[FIRST_LETTER_ID + i] = self.canonical.index(ch)
        return code

    @property
    def tokens(self) -> tuple[str, ...]:
        """All token strings, index = id (specials first, no spare padding ids)."""
        return _SPECIALS + tuple(self.letters)

    @property
    def vocab_size(self) -> int:
        """Embedding-table size: number of tokens rounded up to a multiple of 8."""
        n = len(self.tokens)
        return (n + 7) // 8 * 8

    @property
    def pad_id(self) -> int:
        return PAD_ID

    @property
    def cls_id(self) -> int:
        return CLS_ID

    @property
    def mask_id(self) -> int:
        return MASK_ID

    @property
    def accepted(self) -> frozenset[str]:
        """Every letter (both cases) that :meth:`encode` accepts."""
        return frozenset(chr(i) for i in np.flatnonzero(self._table >= 0))

    def invalid_positions(self, seq: str) -> list[tuple[int, str]]:
        """0-based positions and letters of ``seq`` outside this alphabet (empty list when valid)."""
        codes = np.frombuffer(seq.encode("latin-1", errors="replace"), dtype=np.uint8)
        bad = np.flatnonzero(self._table[codes] < 0)
        return [(int(i), seq[i]) for i in bad]

    def encode(self, seq: str) -> np.ndarray:
        """Token ids of ``seq``, shape ``(len(seq),)``, int64. Raises ``ValueError`` on letters outside the alphabet."""
        try:
            codes = np.frombuffer(seq.encode("ascii"), dtype=np.uint8)
        except UnicodeEncodeError:
            codes = None
        ids = None if codes is None else self._table[codes]
        if ids is None or (ids < 0).any():
            bad = self.invalid_positions(seq)
            letters = "".join(sorted({c for _, c in bad}))
            raise ValueError(
                f"letter(s) {letters!r} not in the {self.name} alphabet (first at position {bad[0][0] + 1})"
            )
        return ids

    def decode(self, ids: np.ndarray) -> str:
        """Canonical letters for token ids (specials are dropped)."""
        toks = self.tokens
        return "".join(toks[i] for i in np.asarray(ids).tolist() if i >= len(_SPECIALS))

    def normalize(self, seq: str) -> str:
        """``seq`` in canonical upper-case letters (aliases resolved)."""
        return self.decode(self.encode(seq))


PROTEIN = Alphabet(
    name="protein",
    letters="ACDEFGHIKLMNPQRSTVWYX",
    aliases={c: "X" for c in "BZJUO"},
    unknown="X",
)
DNA = Alphabet(
    name="dna",
    letters="ACGTN",
    aliases={"U": "T", **{c: "N" for c in "RYSWKMBDHVX"}},
    unknown="N",
)
ALPHABETS: dict[str, Alphabet] = {"protein": PROTEIN, "dna": DNA}


def get_alphabet(name: str | Alphabet) -> Alphabet:
    """Look up an alphabet by name (``"protein"``, ``"dna"``; ``"rna"``/``"nucleotide"`` read as DNA)."""
    if isinstance(name, Alphabet):
        return name
    key = str(name).lower()
    key = {"rna": "dna", "nucleotide": "dna", "aa": "protein", "prot": "protein"}.get(key, key)
    if key not in ALPHABETS:
        raise ValueError(f"unknown alphabet {name!r}; choose one of {sorted(ALPHABETS)}")
    return ALPHABETS[key]


_NUC = frozenset("ACGTUNacgtun")


def looks_like_dna(seq: str, *, threshold: float = 0.9) -> bool:
    """True if at least ``threshold`` of the letters of ``seq`` are A, C, G, T, U or N (any case).

    Proteins practically never reach 90% of these letters; nucleotide sequences with a few ambiguity codes do.
    """
    if not seq:
        return False
    n = sum(1 for c in seq if c in _NUC)
    return n >= threshold * len(seq)


def detect_alphabet(sequences) -> str:
    """``"dna"`` if most residues across ``sequences`` look like nucleotides, else ``"protein"``."""
    total = nuc = 0
    for s in sequences:
        total += len(s)
        nuc += sum(1 for c in s if c in _NUC)
    return "dna" if total and nuc >= 0.9 * total else "protein"
