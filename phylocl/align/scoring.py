"""Scoring systems of the alignment stage: a substitution matrix, affine gap costs, Karlin-Altschul parameters.

Gap costs follow BLAST's convention: ``gap_open`` 11, ``gap_extend`` 1 means a gap of length ``L`` costs
``11 + L * 1``. (pyopal, parasail and Biopython charge ``open + (L - 1) * extend``, so the aligner is given
``gap_open + gap_extend`` as its opening cost; :meth:`ScoringSystem.aligner`.)

Protein: NCBI's matrices, the ones ``blastp`` scores with (:mod:`~phylocl.align.ncbi_matrices`; default
``BLOSUM62``, gaps 11/1, what BLASTP, DIAMOND and MMseqs2 use). Statistics exist only for the (matrix, gap costs)
pairs BLAST tabulates (:data:`PROTEIN_PARAMS`, copied from NCBI BLAST's published tables and checked against
``blastp``'s printed ``Lambda K H`` in ``tests/align/test_blast_reference.py``); other pairs, and Biopython's other
matrices, are refused, as ``blastp`` refuses them.

DNA: BLASTN's ``-task blastn`` scheme, match +2, mismatch -3, gaps 5/2 (MMseqs2's nucleotide default gaps are
also 5/2); odd scores count as the even score below them in E-values, as in ``blastn``
(:attr:`KarlinAltschul.round_down`). Both strands are searched by default, as ``blastn`` does
(:mod:`phylocl.align.strands`). The IUPAC codes (:data:`DNA_BASES`: ``R Y S W K M B D H V N``) score as ``blastn``
scores them (its matrix rule, ``BlastScoreBlkNuclMatrixCreate``): two letters with no base in common score the
mismatch, -3; two that share a base score the rounded (half away from zero) mean of the scores of one shared base
against each of the ``d`` bases of the more ambiguous letter, ``(reward + (d - 1) penalty) / d``: -1 for a two- or
three-base code against a base or code it shares one with (``R``-``A``, ``R``-``R``, ``B``-``S``), -2 for ``N``
against anything (measured: ``blastn -task blastn -dust no`` on 81-nt pairs with one code against each letter,
both strands, ``-db`` and ``-subject``, gapped and ``-ungapped``: ``tests/align/test_iupac.py``). Lambda and K
are those of ``+2/-3`` (blastn's table: they do not depend on these scores).

Protein letters (:data:`PROTEIN_LETTERS`) as ``blastp`` 2.12 scores them: the 20 amino acids, ``B`` ``J`` ``Z``
by their own rows of NCBI's files (BLOSUM62 ``B``-``N`` 4, ``J``-``L`` 3), selenocysteine ``U`` as ``C`` (``U``-``U``
and ``U``-``C`` 9; a ``U``-``C`` column is a mismatch and a positive), pyrrolysine ``O`` as ``X``, and ``X`` -1
against every letter and itself (measured: ``blastp -comp_based_stats 0 -seg no``, ``-db`` and ``-subject``, on
401-residue pairs with one site of ``B J Z U O X *`` against each of the 27 letters, all six matrices then (BLOSUM45 and BLOSUM50 since, in the same tests): every score
equals these tables, ``tests/align/test_rare_letters.py``). Sequences are upper-cased and read as the data layer
reads them for the alignment stage (``*`` -> ``X``, unlike blastp's ``*`` row; DNA ``U`` -> ``T``, ``X`` -> ``N``).
A matrix without ``X`` or without one of the 20 amino acids is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from phylocl.arguments import is_whole, option
from phylocl.errors import InputError

__all__ = [
    "DNA_BASES",
    "DNA_LETTERS",
    "DNA_PARAMS",
    "PROTEIN_LETTERS",
    "PROTEIN_PARAMS",
    "KarlinAltschul",
    "ScoringSystem",
    "scoring_system",
]

STANDARD_LETTERS = "ACDEFGHIKLMNPQRSTVWYX"  # the 20 amino acids and X: what a matrix must have
# the letters protein sequences are aligned in: the 20, blastp's rare letters (B J Z U O), X last (the unknown letter)
PROTEIN_LETTERS = "ACDEFGHIKLMNPQRSTVWYBJZUOX"
# the bases each DNA letter stands for (IUPAC), in blastn's (BLASTNA) order: bases, two-base codes, three-base codes, N
DNA_BASES = {"A": "A", "C": "C", "G": "G", "T": "T", "R": "AG", "Y": "CT", "M": "AC", "K": "GT", "W": "AT", "S": "CG",
             "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG", "N": "ACGT"}
DNA_LETTERS = "".join(DNA_BASES)  # ACGTRYMKWSBDHVN: the unknown letter N last
DNA_REWARD, DNA_PENALTY = 2, -3


@dataclass(frozen=True)
class KarlinAltschul:
    """Gapped Karlin-Altschul parameters of a scoring system (BLAST's tables).

    ``lam`` (lambda, per score unit) and ``K`` give bit scores ``(lam S - ln K) / ln 2``; ``H`` (nats per aligned
    pair), ``alpha`` and ``beta`` give BLAST's length adjustment (:mod:`phylocl.align.statistics`). ``gumbel``:
    ``(alpha_v, sigma, a_ungapped, alpha_v_ungapped, G)`` of Spouge's finite-size correction where BLAST tabulates
    them (every tabulated protein system; ``None`` for DNA), ``G = gap_open + gap_extend``. ``round_down``: odd raw scores count as the even score below
    them in E-values, as BLAST+ does for its ``2/-3`` nucleotide scheme (its score block's ``round_down`` flag for
    even rewards): ``blastn -task blastn`` prints an odd raw score and the bit score of that score, but the E-value
    of the even score below it (measured: ``tests/align/test_strands.py``; bit scores are left unrounded).
    """

    lam: float
    K: float
    H: float
    alpha: float
    beta: float
    gumbel: tuple[float, float, float, float, int] | None = None
    round_down: bool = False

    @property
    def log_k(self) -> float:
        return math.log(self.K)


# (matrix, gap_open, gap_extend) -> (lambda, K, H, alpha, beta): NCBI BLAST's gapped tables (blast_stat.c),
# BLAST gap convention; the published parameters of each system, checked against blastp's output in the tests.
PROTEIN_PARAMS: dict[tuple[str, int, int], tuple[float, float, float, float, float]] = {
    ("BLOSUM45", 13, 3): (0.207, 0.049, 0.14, 1.5, -22),
    ("BLOSUM45", 12, 3): (0.199, 0.039, 0.11, 1.8, -34),
    ("BLOSUM45", 11, 3): (0.19, 0.031, 0.095, 2.0, -38),
    ("BLOSUM45", 10, 3): (0.179, 0.023, 0.075, 2.4, -51),
    ("BLOSUM45", 16, 2): (0.21, 0.051, 0.14, 1.5, -24),
    ("BLOSUM45", 15, 2): (0.203, 0.041, 0.12, 1.7, -31),
    ("BLOSUM45", 14, 2): (0.195, 0.032, 0.1, 1.9, -36),
    ("BLOSUM45", 13, 2): (0.185, 0.024, 0.084, 2.2, -45),
    ("BLOSUM45", 12, 2): (0.171, 0.016, 0.061, 2.8, -65),
    ("BLOSUM45", 19, 1): (0.205, 0.04, 0.11, 1.9, -43),
    ("BLOSUM45", 18, 1): (0.198, 0.032, 0.1, 2.0, -43),
    ("BLOSUM45", 17, 1): (0.189, 0.024, 0.079, 2.4, -57),
    ("BLOSUM45", 16, 1): (0.176, 0.016, 0.063, 2.8, -67),
    ("BLOSUM50", 13, 3): (0.212, 0.063, 0.19, 1.1, -16),
    ("BLOSUM50", 12, 3): (0.206, 0.055, 0.17, 1.2, -18),
    ("BLOSUM50", 11, 3): (0.197, 0.042, 0.14, 1.4, -25),
    ("BLOSUM50", 10, 3): (0.186, 0.031, 0.11, 1.7, -34),
    ("BLOSUM50", 9, 3): (0.172, 0.022, 0.082, 2.1, -48),
    ("BLOSUM50", 16, 2): (0.215, 0.066, 0.2, 1.05, -15),
    ("BLOSUM50", 15, 2): (0.21, 0.058, 0.17, 1.2, -20),
    ("BLOSUM50", 14, 2): (0.202, 0.045, 0.14, 1.4, -27),
    ("BLOSUM50", 13, 2): (0.193, 0.035, 0.12, 1.6, -32),
    ("BLOSUM50", 12, 2): (0.181, 0.025, 0.095, 1.9, -41),
    ("BLOSUM50", 19, 1): (0.212, 0.057, 0.18, 1.2, -21),
    ("BLOSUM50", 18, 1): (0.207, 0.05, 0.15, 1.4, -28),
    ("BLOSUM50", 17, 1): (0.198, 0.037, 0.12, 1.6, -33),
    ("BLOSUM50", 16, 1): (0.186, 0.025, 0.1, 1.9, -42),
    ("BLOSUM50", 15, 1): (0.171, 0.015, 0.063, 2.7, -76),
    ("BLOSUM62", 11, 2): (0.297, 0.082, 0.27, 1.1, -10),
    ("BLOSUM62", 10, 2): (0.291, 0.075, 0.23, 1.3, -15),
    ("BLOSUM62", 9, 2): (0.279, 0.058, 0.19, 1.5, -19),
    ("BLOSUM62", 8, 2): (0.264, 0.045, 0.15, 1.8, -26),
    ("BLOSUM62", 7, 2): (0.239, 0.027, 0.10, 2.5, -46),
    ("BLOSUM62", 6, 2): (0.201, 0.012, 0.061, 3.3, -58),
    ("BLOSUM62", 13, 1): (0.292, 0.071, 0.23, 1.2, -11),
    ("BLOSUM62", 12, 1): (0.283, 0.059, 0.19, 1.5, -19),
    ("BLOSUM62", 11, 1): (0.267, 0.041, 0.14, 1.9, -30),
    ("BLOSUM62", 10, 1): (0.243, 0.024, 0.10, 2.5, -44),
    ("BLOSUM62", 9, 1): (0.206, 0.010, 0.052, 4.0, -87),
    ("BLOSUM80", 25, 2): (0.342, 0.17, 0.66, 0.52, -1.6),
    ("BLOSUM80", 13, 2): (0.336, 0.15, 0.57, 0.59, -3),
    ("BLOSUM80", 9, 2): (0.319, 0.11, 0.42, 0.76, -6),
    ("BLOSUM80", 8, 2): (0.308, 0.090, 0.35, 0.89, -9),
    ("BLOSUM80", 7, 2): (0.293, 0.070, 0.27, 1.1, -14),
    ("BLOSUM80", 6, 2): (0.268, 0.045, 0.19, 1.4, -19),
    ("BLOSUM80", 11, 1): (0.314, 0.095, 0.35, 0.90, -9),
    ("BLOSUM80", 10, 1): (0.299, 0.071, 0.27, 1.1, -14),
    ("BLOSUM80", 9, 1): (0.279, 0.048, 0.20, 1.4, -19),
    ("BLOSUM90", 9, 2): (0.310, 0.12, 0.46, 0.67, -6),
    ("BLOSUM90", 8, 2): (0.300, 0.099, 0.39, 0.76, -7),
    ("BLOSUM90", 7, 2): (0.283, 0.072, 0.30, 0.93, -11),
    ("BLOSUM90", 6, 2): (0.259, 0.048, 0.22, 1.2, -16),
    ("BLOSUM90", 11, 1): (0.302, 0.093, 0.39, 0.78, -8),
    ("BLOSUM90", 10, 1): (0.290, 0.075, 0.28, 1.04, -15),
    ("BLOSUM90", 9, 1): (0.265, 0.044, 0.20, 1.3, -19),
    ("PAM30", 7, 2): (0.305, 0.15, 0.87, 0.35, -3),
    ("PAM30", 6, 2): (0.287, 0.11, 0.68, 0.42, -4),
    ("PAM30", 5, 2): (0.264, 0.079, 0.45, 0.59, -7),
    ("PAM30", 10, 1): (0.309, 0.15, 0.88, 0.35, -3),
    ("PAM30", 9, 1): (0.294, 0.11, 0.61, 0.48, -6),
    ("PAM30", 8, 1): (0.270, 0.072, 0.40, 0.68, -10),
    ("PAM70", 8, 2): (0.301, 0.12, 0.54, 0.56, -5),
    ("PAM70", 7, 2): (0.286, 0.093, 0.43, 0.67, -7),
    ("PAM70", 6, 2): (0.264, 0.064, 0.29, 0.90, -12),
    ("PAM70", 11, 1): (0.305, 0.12, 0.52, 0.59, -6),
    ("PAM70", 10, 1): (0.291, 0.091, 0.41, 0.71, -9),
    ("PAM70", 9, 1): (0.270, 0.060, 0.28, 0.97, -14),
    ("PAM250", 15, 3): (0.205, 0.049, 0.13, 1.6, -23),
    ("PAM250", 14, 3): (0.200, 0.043, 0.12, 1.7, -26),
    ("PAM250", 13, 3): (0.194, 0.036, 0.10, 1.9, -31),
    ("PAM250", 12, 3): (0.186, 0.029, 0.085, 2.2, -41),
    ("PAM250", 11, 3): (0.174, 0.020, 0.070, 2.5, -48),
    ("PAM250", 17, 2): (0.204, 0.047, 0.12, 1.7, -28),
    ("PAM250", 16, 2): (0.198, 0.038, 0.11, 1.8, -29),
    ("PAM250", 15, 2): (0.191, 0.031, 0.087, 2.2, -44),
    ("PAM250", 14, 2): (0.182, 0.024, 0.073, 2.5, -53),
    ("PAM250", 13, 2): (0.171, 0.017, 0.059, 2.9, -64),
    ("PAM250", 21, 1): (0.205, 0.045, 0.11, 1.8, -34),
    ("PAM250", 20, 1): (0.199, 0.037, 0.10, 1.9, -35),
    ("PAM250", 19, 1): (0.192, 0.029, 0.083, 2.3, -52),
    ("PAM250", 18, 1): (0.183, 0.021, 0.070, 2.6, -60),
    ("PAM250", 17, 1): (0.171, 0.014, 0.052, 3.3, -86),
}
# BLASTN -task blastn: reward 2, penalty -3, gaps 5/2 (blastn prints Lambda 0.625 K 0.410 H 0.780)
# Spouge's finite-size correction (Park et al. 2012), BLOSUM62 only, as BLAST+ tabulates it:
# (gap_open, gap_extend) -> (alpha_v, sigma); ungapped row (a, alpha_v) = (0.7916, 4.96466)
BLOSUM62_GUMBEL: dict[tuple[int, int], tuple[float, float]] = {
    (11, 2): (12.6738, 12.7576), (10, 2): (16.474, 16.6026), (9, 2): (22.7519, 22.95), (8, 2): (35.4838, 35.8213),
    (7, 2): (61.2383, 61.886), (6, 2): (140.417, 141.882), (13, 1): (19.5063, 19.8931), (12, 1): (27.8562, 28.4699),
    (11, 1): (42.6028, 43.6362), (10, 1): (83.1787, 85.0656), (9, 1): (210.333, 214.842),
}
BLOSUM62_UNGAPPED = (0.7916, 4.96466)
# The same correction for the other matrices, as BLAST+ tabulates it (blast_stat.c, the same columns as BLOSUM62's:
# (alpha_v, sigma) per gap cost, the ungapped row's (a, alpha_v)); blastp applies it to every matrix it tabulates.
# Until 2026-12-08 these were blastp's printed 3-digit values, which put E-values 1-3% off blastp's (tests/align)
TABLED_GUMBEL: dict[tuple[str, int, int], tuple[float, float]] = {
    ("BLOSUM45", 13, 3): (35.8559, 35.9639),
    ("BLOSUM45", 12, 3): (45.6936, 45.8517),
    ("BLOSUM45", 11, 3): (62.8741, 63.1037),
    ("BLOSUM45", 10, 3): (88.2868, 88.6391),
    ("BLOSUM45", 16, 2): (36.2798, 36.4524),
    ("BLOSUM45", 15, 2): (44.8257, 45.0604),
    ("BLOSUM45", 14, 2): (60.7362, 61.1023),
    ("BLOSUM45", 13, 2): (85.1481, 85.6894),
    ("BLOSUM45", 12, 2): (127.758, 128.582),
    ("BLOSUM45", 19, 1): (53.0714, 53.8282),
    ("BLOSUM45", 18, 1): (72.3424, 73.4039),
    ("BLOSUM45", 17, 1): (103.055, 104.721),
    ("BLOSUM45", 16, 1): (170.1, 173.003),
    ("BLOSUM50", 13, 3): (18.1138, 18.2028),
    ("BLOSUM50", 12, 3): (22.6546, 22.7777),
    ("BLOSUM50", 11, 3): (29.8611, 30.0457),
    ("BLOSUM50", 10, 3): (42.3938, 42.674),
    ("BLOSUM50", 9, 3): (66.0696, 66.5164),
    ("BLOSUM50", 16, 2): (17.9518, 18.0921),
    ("BLOSUM50", 15, 2): (21.9401, 22.1418),
    ("BLOSUM50", 14, 2): (28.6812, 28.9619),
    ("BLOSUM50", 13, 2): (42.0595, 42.4716),
    ("BLOSUM50", 12, 2): (63.7476, 64.3973),
    ("BLOSUM50", 19, 1): (26.3112, 26.9233),
    ("BLOSUM50", 18, 1): (34.9037, 35.7348),
    ("BLOSUM50", 17, 1): (48.8958, 50.1486),
    ("BLOSUM50", 16, 1): (76.4691, 78.443),
    ("BLOSUM50", 15, 1): (140.053, 144.16),
    ("BLOSUM80", 25, 2): (1.731, 1.7313), ("BLOSUM80", 13, 2): (2.67347, 2.6923), ("BLOSUM80", 9, 2): (5.57609, 5.66786),
    ("BLOSUM80", 8, 2): (7.53695, 7.68623), ("BLOSUM80", 7, 2): (11.5866, 11.8404), ("BLOSUM80", 6, 2): (19.9581, 20.4412),
    ("BLOSUM80", 11, 1): (8.80861, 9.22332), ("BLOSUM80", 10, 1): (13.8338, 14.5334), ("BLOSUM80", 9, 1): (24.252, 25.4904),
    ("BLOSUM90", 9, 2): (4.23229, 4.33417), ("BLOSUM90", 8, 2): (5.79702, 5.96142), ("BLOSUM90", 7, 2): (9.04088, 9.3216),
    ("BLOSUM90", 6, 2): (16.0244, 16.5316), ("BLOSUM90", 11, 1): (7.14325, 7.61919), ("BLOSUM90", 10, 1): (11.4839, 12.2698),
    ("BLOSUM90", 9, 1): (21.4083, 22.8409),
    ("PAM250", 15, 3): (34.5784, 34.928), ("PAM250", 14, 3): (43.353, 43.4438), ("PAM250", 13, 3): (50.9485, 51.0817),
    ("PAM250", 12, 3): (69.6065, 69.7936), ("PAM250", 11, 3): (98.6535, 98.9271), ("PAM250", 17, 2): (41.5838, 41.7358),
    ("PAM250", 16, 2): (51.6352, 51.8439), ("PAM250", 15, 2): (67.2567, 67.5585), ("PAM250", 14, 2): (96.3151, 96.7568),
    ("PAM250", 13, 2): (135.653, 136.339), ("PAM250", 21, 1): (48.7282, 49.2188), ("PAM250", 20, 1): (60.832, 61.5141),
    ("PAM250", 19, 1): (84.0197, 84.9856), ("PAM250", 18, 1): (113.829, 115.184), ("PAM250", 17, 1): (175.071, 177.196),
    ("PAM30", 7, 2): (1.01401, 1.16273), ("PAM30", 6, 2): (1.68806, 1.95143), ("PAM30", 5, 2): (3.37701, 3.87195),
    ("PAM30", 10, 1): (1.37205, 1.78877), ("PAM30", 9, 1): (2.46392, 3.18615), ("PAM30", 8, 1): (5.36813, 6.76348),
    ("PAM70", 8, 2): (2.88165, 3.02571), ("PAM70", 7, 2): (4.53454, 4.78578), ("PAM70", 6, 2): (7.94263, 8.40272),
    ("PAM70", 11, 1): (3.6814, 4.10802), ("PAM70", 10, 1): (6.00297, 6.71657), ("PAM70", 9, 1): (11.3608, 12.6367),
}
TABLED_UNGAPPED: dict[str, tuple[float, float]] = {"BLOSUM45": (0.9113, 9.61106), "BLOSUM50": (0.6895, 5.38831),
                                                   "BLOSUM80": (0.5222, 1.91813), "BLOSUM90": (0.4434, 1.37776),
                                                   "PAM250": (0.98, 11.7543), "PAM30": (0.1938, 0.161818),
                                                   "PAM70": (0.325, 0.633439)}
# Every system's finite-size parameters in one table: (matrix, gap_open, gap_extend) -> (alpha_v, sigma), and
# matrix -> ungapped (a, alpha_v)
_GUMBEL = {("BLOSUM62", o, e): v for (o, e), v in BLOSUM62_GUMBEL.items()} | TABLED_GUMBEL
_UNGAPPED = {"BLOSUM62": BLOSUM62_UNGAPPED} | TABLED_UNGAPPED
# The gap costs blastn accepts with reward 2 / penalty -3 (Lambda, K, H as blastn prints them for each; alpha =
# Lambda / H; tests/align check them and the E-values against blastn's)
DNA_PARAMS: dict[tuple[str, int, int], tuple[float, float, float, float, float]] = {
    ("BLASTN-2-3", 5, 2): (0.625, 0.41, 0.78, 0.8, -2),
    ("BLASTN-2-3", 4, 4): (0.63, 0.42, 0.84, 0.75, -2),
    ("BLASTN-2-3", 2, 4): (0.615, 0.37, 0.72, 0.85, -3),
    ("BLASTN-2-3", 0, 4): (0.55, 0.21, 0.46, 1.2, -5),
    ("BLASTN-2-3", 3, 3): (0.615, 0.37, 0.68, 0.9, -3),
    ("BLASTN-2-3", 6, 2): (0.63, 0.42, 0.84, 0.75, -2),
    ("BLASTN-2-3", 4, 2): (0.61, 0.35, 0.68, 0.9, -3),
    ("BLASTN-2-3", 2, 2): (0.515, 0.14, 0.33, 1.55, -9),
}
DEFAULTS = {"protein": ("BLOSUM62", 11, 1), "dna": ("BLASTN-2-3", 5, 2)}

# blastp's reading of the letters outside NCBI's matrix files (measured: module docstring): selenocysteine U scores
# as C, pyrrolysine O as X; a letter a Biopython matrix lacks (J: Biopython has none) scores as X
RARE_AS = {"U": "C", "O": "X"}


@dataclass(frozen=True)
class ScoringSystem:
    """An integer substitution matrix over ``letters``, BLAST-convention gap costs and their statistics.

    Attributes:
        alphabet: ``"protein"`` or ``"dna"``.
        matrix_name: ``BLOSUM62``, ``BLASTN-2-3`` ...
        letters: the letters sequences are written in (upper case; the last is the unknown letter).
        scores: ``len(letters) x len(letters)`` integer scores, row/column order of ``letters``.
        gap_open, gap_extend: a gap of length ``L`` costs ``gap_open + L * gap_extend``.
        stats: gapped Karlin-Altschul parameters.
    """

    alphabet: str
    matrix_name: str
    letters: str
    scores: tuple[tuple[int, ...], ...]
    gap_open: int
    gap_extend: int
    stats: KarlinAltschul
    _cache: dict = field(default_factory=dict, compare=False, repr=False, hash=False)

    def aligner(self):
        """A ``pyopal.Aligner`` of this system (cached; pyopal's gap opening cost includes the first extension)."""
        if "aligner" not in self._cache:
            import pyopal
            from scoring_matrices import ScoringMatrix

            matrix = ScoringMatrix([list(r) for r in self.scores], alphabet=self.letters, name=self.matrix_name)
            self._cache["aligner"] = pyopal.Aligner(matrix, gap_open=self.gap_open + self.gap_extend,
                                                    gap_extend=self.gap_extend)
        return self._cache["aligner"]

    def parasail(self):
        """``(matrix, gap_open, gap_extend)`` for parasail (cached; its opening cost includes the first extension,
        as pyopal's does)."""
        if "parasail" not in self._cache:
            from phylocl.align.parasail_calls import CMatrix, parasail_calls

            matrix = CMatrix(parasail_calls(), self.letters, self.scores)
            self._cache["parasail"] = (matrix, self.gap_open + self.gap_extend, self.gap_extend)
        return self._cache["parasail"]

    @property
    def symmetric(self) -> bool:
        """Whether the matrix scores ``(a, b)`` as ``(b, a)`` (then a local alignment of two sequences is the same
        in both orders; cached)."""
        if "symmetric" not in self._cache:
            n = len(self.letters)
            self._cache["symmetric"] = all(self.scores[i][j] == self.scores[j][i] for i in range(n) for j in range(i))
        return self._cache["symmetric"]

    def score_of(self, a: str, b: str) -> int:
        """Substitution score of two letters of :attr:`letters`."""
        return self.scores[self.letters.index(a)][self.letters.index(b)]

    def byte_scores(self):
        """``(256, 256)`` int32 NumPy table: the substitution score of two letters of :attr:`letters` by their ASCII
        codes, ``-1`` for bytes outside the matrix (cached; read-only)."""
        if "byte_scores" not in self._cache:
            import numpy as np

            table = np.full((256, 256), -1, dtype=np.int32)
            codes = np.frombuffer(self.letters.encode("ascii"), dtype=np.uint8)
            table[codes[:, None], codes[None, :]] = np.asarray(self.scores, dtype=np.int32)
            table.flags.writeable = False
            self._cache["byte_scores"] = table
        return self._cache["byte_scores"]

    def positive_table(self):
        """``(256, 256)`` bool NumPy table: the substitutions that BLAST's tabular ``positive`` column counts, by the
        letters' ASCII codes: those scoring above 0, except protein ``J`` against another letter, which blastp 2.12
        never counts (measured for the six matrices of 2026-12-07: ``J``-``L`` scores 3 in BLOSUM62 and is no positive; its
        formatter's matrix has no ``J``). Cached; read-only."""
        if "positive_table" not in self._cache:
            table = self.byte_scores() > 0
            if self.alphabet == "protein":
                table[[ord("J")], :] = table[:, [ord("J")]] = False
            table.flags.writeable = False
            self._cache["positive_table"] = table
        return self._cache["positive_table"]

    def record(self) -> dict:
        """JSON-friendly description (matrix, gaps, lambda, K)."""
        return {"matrix": self.matrix_name, "gap_open": self.gap_open, "gap_extend": self.gap_extend,
                "lambda": self.stats.lam, "K": self.stats.K}


def _protein_matrix(name: str) -> tuple[str, tuple[tuple[int, ...], ...]]:
    """``(name as tabulated, scores)``: the matrix over :data:`PROTEIN_LETTERS`, NCBI's (:mod:`~phylocl.align.ncbi_matrices`)
    for the eight with statistics, Biopython's for any other (its ``X`` row set to -1; the scoring system refuses
    those for want of statistics)."""
    from phylocl.align.ncbi_matrices import NCBI_MATRICES, ncbi_scores

    key = next((n for n in NCBI_MATRICES if n == name.upper()), None)
    if key is not None:
        table = ncbi_scores(key)
    else:
        from Bio.Align import substitution_matrices

        available = substitution_matrices.load()
        key = next((n for n in available if n.upper() == name.upper()), None)
        if key is None:
            with_stats = ", ".join(sorted({m for m, _, _ in PROTEIN_PARAMS}))
            raise InputError(f"unknown substitution matrix {name!r}; matrices with statistics: {with_stats}")
        m = substitution_matrices.load(key)
        missing = [c for c in STANDARD_LETTERS if c not in m.alphabet]
        if missing:
            raise InputError(f"matrix {key} lacks the letter(s) {''.join(missing)}; it cannot score protein sequences "
                             "(the 20 amino acids and X)")
        table = {(a, b): -1.0 if "X" in (a, b) else float(m[a][b]) for a in m.alphabet for b in m.alphabet}
        if any(v != int(v) for v in table.values()):
            raise InputError(f"matrix {key} has non-integer scores; the aligner needs an integer matrix")

    def read(c: str) -> str:  # the row a letter is scored by
        c = RARE_AS.get(c, c)
        return c if (c, c) in table else "X"

    return key, tuple(tuple(int(table[read(a), read(b)]) for b in PROTEIN_LETTERS) for a in PROTEIN_LETTERS)


def _dna_score(a: str, b: str) -> int:
    """blastn's score of DNA letters ``a`` and ``b`` (module docstring): the mismatch unless they share a base, else
    ``(reward + (d - 1) penalty) / d`` for the ``d`` bases of the more ambiguous one, rounded half away from zero."""
    x, y = DNA_BASES[a], DNA_BASES[b]
    if not set(x) & set(y):
        return DNA_PENALTY
    d = max(len(x), len(y))
    mean = (DNA_REWARD + (d - 1) * DNA_PENALTY) / d
    return int(mean + (0.5 if mean >= 0 else -0.5))  # int() truncates toward zero: half away from zero


def _dna_matrix() -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(_dna_score(a, b) for b in DNA_LETTERS) for a in DNA_LETTERS)


def scoring_system(alphabet: str = "protein", *, matrix: str | None = None, gap_open: int | None = None,
                   gap_extend: int | None = None) -> ScoringSystem:
    """The scoring system of ``alphabet`` with optional overrides (``None`` = the default of the module docstring).

    Raises :class:`~phylocl.errors.InputError` for an unknown matrix, a matrix lacking letters, negative gap costs
    and (matrix, gap costs) pairs without tabulated statistics (the message lists the supported ones).
    """
    if alphabet not in DEFAULTS:
        raise InputError(f"unknown alphabet {alphabet!r}; choose protein or dna")
    d_matrix, d_open, d_extend = DEFAULTS[alphabet]
    for name, value in (("gap_open", gap_open), ("gap_extend", gap_extend), ("matrix", matrix)):
        if value is not None and not (isinstance(value, str) if name == "matrix" else is_whole(value)):
            kind = "a matrix name (a str)" if name == "matrix" else "a whole number"  # int(11.5) was 11, "11" 11
            raise InputError(f"{option(name)} must be {kind}, got {type(value).__name__} {value!r}")
    gap_open = d_open if gap_open is None else int(gap_open)
    gap_extend = d_extend if gap_extend is None else int(gap_extend)
    if gap_open < 0 or gap_extend < 1:
        raise InputError(f"gap costs must be {option('gap_open')} >= 0 and {option('gap_extend')} >= 1, got {gap_open} "
                         f"and {gap_extend}")
    if alphabet == "dna":
        if matrix is not None and matrix.upper() not in ("BLASTN-2-3", "BLASTN"):
            raise InputError(f"{option('matrix')} {matrix} is for protein; DNA is scored with BLASTN's +2/-3 "
                             f"({option('matrix')} is not used)")
        name, letters, scores, table = d_matrix, DNA_LETTERS, _dna_matrix(), DNA_PARAMS
    else:
        name, scores = _protein_matrix(matrix or d_matrix)
        letters, table = PROTEIN_LETTERS, PROTEIN_PARAMS
    params = table.get((name, gap_open, gap_extend))
    if params is None:
        supported = ", ".join(f"{o}/{e}" for (m, o, e) in table if m == name)
        hint = (f"supported gap costs (open/extend) for {name}: {supported}" if supported
                else f"matrices with statistics: {', '.join(sorted({m for m, _, _ in table}))}")
        raise InputError(f"phylocl has no Karlin-Altschul statistics for {name} with gaps {gap_open}/{gap_extend}; "
                         f"{hint}")
    gapped = _GUMBEL.get((name, gap_open, gap_extend))
    gumbel = None if gapped is None else (*gapped, *_UNGAPPED[name], gap_open + gap_extend)
    return ScoringSystem(alphabet=alphabet, matrix_name=name, letters=letters, scores=scores, gap_open=gap_open,
                         gap_extend=gap_extend, stats=KarlinAltschul(*map(float, params), gumbel=gumbel,
                                                                     round_down=alphabet == "dna"))
