"""Ungapped filter before Smith-Waterman: HMMER's MSV filter (pyhmmer), as MMseqs2 and HMMER filter before aligning.

Most of a query's embedding candidates are unrelated, and a full Smith-Waterman score of each costs
``len(query) x len(target)`` cells. HMMER's first filter, MSV (multiple ungapped segments, SIMD, 8-bit), scores a
target against a profile of the query several times faster than the gapped alignment, and its P-value is
calibrated (a Gumbel fit on random sequences, HMMER's own). The alignment stage aligns only the candidates whose
MSV P-value is at most ``pvalue`` (default 0.02: HMMER's ``--F1``, which ``phmmer`` uses); the rest are dropped as
if their E-value were above the threshold.

The query's profile is what ``phmmer`` builds from one sequence (:class:`pyhmmer.plan7.Builder`: the scoring
system's matrix when pyhmmer has it, else BLOSUM62, phmmer's gap probabilities), calibrated for MSV only (50 random
sequences of 200 residues; HMMER uses 200, which moved Gumbel ``mu`` by 0.05 bits at 3x the cost; the Viterbi and Forward calibrations, which the filter never uses, on 4
short sequences, 10 residues long where their fit succeeds and 50 where it does not: MSV's own calibration
comes first, so its parameters are the same either way). Per target the profile is configured for the target's length, as ``hmmsearch`` does, and the MSV
score is turned into bits against HMMER's null model (``Background.null1``) and then into a P-value with the profile's Gumbel ``mu`` and
``lambda``. The decision for a pair depends only on the query, the target and the seed of the calibration (fixed),
so results do not depend on threads or on the order of the candidates. Protein ``B J Z U O`` reach it as written
(Easel's amino alphabet reads ``U`` as ``C``, ``O`` as ``K``, ``B J Z`` as mixtures of their residues; the aligner
scores ``O`` as ``X``: docs/retrieval.md, "Rare protein letters").

Measured on the dev split (docs/retrieval.md, "Ungapped filter"): at P <= 0.02 it keeps 6-14% of the candidates
and leaves the aligned AUC1 unchanged to the third decimal.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

import numpy as np

from phylocl.align.scoring import ScoringSystem

__all__ = ["DEFAULT_FILTER_PVALUE", "MsvFilter", "default_filter_pvalue", "msv_gumbel", "msv_pvalues"]

DEFAULT_FILTER_PVALUE = 0.02  # HMMER's F1 (phmmer, hmmsearch): the MSV filter's P-value threshold
CACHE_RESIDUES = 200_000_000  # targets' digital forms kept for reuse (about 1 byte per residue)
DNA_FILTER_PVALUE = 1.0  # off: on the DNA dev sets it changed aligned AUC1 by -0.002..+0.001 and cost time
_PYHMMER_MATRICES = ("BLOSUM45", "BLOSUM50", "BLOSUM62", "BLOSUM80", "BLOSUM90", "PAM30", "PAM70", "PAM120", "PAM240")
_LN2 = math.log(2.0)
# The quick builder: HMMER calibrates MSV first, then Viterbi and Forward, from one random stream reseeded per
# profile, so shorter Viterbi / Forward calibrations (which the filter never reads) leave MSV's mu and lambda as
# they are (the same on all 2,800 Mycoplasma queries) at 0.77x the build time; where their Gumbel fit fails
# (a few queries at 2 sequences, none at 4 of 10 residues), the profile is built again as documented.
# Its MSV calibration is cut to QUICK_EMN sequences of QUICK_EML residues (the fewest HMMER's fit takes), and MSV's
# mu is computed here as HMMER computes it (msv_gumbel): the same random sequences (MSV_EMN of MSV_EML residues,
# the reseeded stream's first draws, generated once) and the same arithmetic, so the same float parameters
QUICK_EVN, QUICK_EVL = 4, 10
QUICK_EMN, QUICK_EML = 2, 1
MSV_EMN, MSV_EML, MSV_SEED = 50, 200, 42  # the documented MSV calibration (Builder EmN, EmL, seed)


def default_filter_pvalue(alphabet: str) -> float:
    """The filter's default threshold: :data:`DEFAULT_FILTER_PVALUE` for protein; off (1) for DNA, where the dev
    sets showed no gain (docs/retrieval.md, "Ungapped filter")."""
    return DNA_FILTER_PVALUE if alphabet == "dna" else DEFAULT_FILTER_PVALUE


class MsvFilter:
    """Per-thread MSV filtering of one query's candidates (module doc).

    Args:
        scoring: the alignment's scoring system (its alphabet and, where pyhmmer knows it, its matrix).
        pvalue: keep candidates whose MSV P-value is at most this (``>= 1``: keep all).
    """

    def __init__(self, *, scoring: ScoringSystem, pvalue: float = DEFAULT_FILTER_PVALUE,
                 cache_residues: int = CACHE_RESIDUES) -> None:
        if not pvalue > 0:
            raise ValueError(f"the filter's P-value threshold must be > 0, got {pvalue}")
        self.scoring = scoring
        self.pvalue = float(pvalue)
        self._local = threading.local()
        self._digital: dict[int, object] = {}  # target key -> pyhmmer DigitalSequence, up to cache_residues
        self._cache_left = int(cache_residues)

    @property
    def enabled(self) -> bool:
        return self.pvalue < 1

    def _tools(self):
        tools = getattr(self._local, "tools", None)
        if tools is None:
            from pyhmmer.easel import Alphabet
            from pyhmmer.plan7 import Background, Builder

            dna = self.scoring.alphabet == "dna"
            alphabet = Alphabet.dna() if dna else Alphabet.amino()
            matrix = self.scoring.matrix_name.upper()
            options = {} if dna else {"score_matrix": matrix if matrix in _PYHMMER_MATRICES else "BLOSUM62"}
            builder = Builder(alphabet, seed=MSV_SEED, EmN=MSV_EMN, EmL=MSV_EML, EvN=4, EvL=50, EfN=4, EfL=50,
                              **options)
            quick = Builder(alphabet, seed=MSV_SEED, EmN=QUICK_EMN, EmL=QUICK_EML, EvN=QUICK_EVN, EvL=QUICK_EVL,
                            EfN=QUICK_EVN, EfL=QUICK_EVL, **options)
            background = Background(alphabet)
            tools = self._local.tools = (alphabet, background, builder, quick, calibration_set(background))
        return tools

    def pvalues(self, query: str, targets: Sequence[str], keys: Sequence[int] | None = None) -> np.ndarray:
        """``(c,)`` MSV P-values of ``targets`` (cleaned sequences) against the profile of ``query``; ``keys``
        (e.g. database rows) let a target's digital form be kept for the next query that has it (an all-against-all
        search meets each sequence hundreds of times)."""
        tools = self._tools()
        digital = None
        if keys is not None:
            alphabet = tools[0]
            digital = []
            for key, target in zip(keys, targets):
                d = self._digital.get(key)
                if d is None:
                    d = _digitize(target, alphabet)
                    if self._cache_left >= len(target):
                        self._cache_left -= len(target)
                        self._digital[key] = d
                digital.append(d)
        return msv_pvalues(query, targets, tools=tools, digital=digital)

    def keep(self, query: str, targets: Sequence[str], keys: Sequence[int] | None = None) -> np.ndarray:
        """``(c,)`` bool: which targets the Smith-Waterman stage aligns."""
        if not self.enabled or not len(targets):
            return np.ones(len(targets), dtype=bool)
        return self.pvalues(query, targets, keys) <= self.pvalue


_DRAWN: dict[tuple[float, ...], tuple[tuple[bytes, ...], np.float32]] = {}  # frequencies -> codes, null score
_DRAWN_LOCK = threading.Lock()


def calibration_set(background) -> tuple:
    """``(sequences, null score)`` of HMMER's MSV calibration for ``background`` (:func:`_calibration_set`), as new
    ``DigitalSequence`` objects of this thread: the residues are drawn once per process and background (~6 ms in
    Python; each search of a held-open :class:`~phylocl.Searcher` runs its alignment in new threads, which drew
    them again for every query)."""
    from pyhmmer.easel import DigitalSequence

    key = tuple(float(v) for v in background.residue_frequencies)
    with _DRAWN_LOCK:
        drawn = _DRAWN.get(key)
        if drawn is None:
            seqs, null = _calibration_set(background)
            drawn = _DRAWN[key] = (tuple(bytes(s.sequence) for s in seqs), null)
    codes, null = drawn
    return tuple(DigitalSequence(background.alphabet, sequence=bytearray(c)) for c in codes), null


def _calibration_set(background) -> tuple:
    """``(sequences, null score)`` of HMMER's MSV calibration (``p7_MSVMu`` in a builder of seed :data:`MSV_SEED`):
    :data:`MSV_EMN` sequences of :data:`MSV_EML` residues drawn i.i.d. from the background frequencies by the
    builder's random stream (Easel's fast generator, reseeded per profile, so the same sequences for every profile;
    ``esl_rnd_FChoose``'s double-precision rule per residue), and their null score (``p7_bg_NullOne`` at that
    length, a float)."""
    from pyhmmer.easel import DigitalSequence, Randomness

    freqs = list(background.residue_frequencies)  # (K,) float32 values
    norm = 0.0
    for v in freqs:
        norm += v
    cdf, total = [], 0.0
    for v in freqs:
        total += v
        cdf.append(total / norm)
    rng = Randomness(MSV_SEED, fast=True)
    seqs = []
    for _ in range(MSV_EMN):
        codes = bytearray(MSV_EML)
        for x in range(MSV_EML):
            roll = rng.random()
            codes[x] = next(i for i, c in enumerate(cdf) if roll < c)
        seqs.append(DigitalSequence(background.alphabet, sequence=codes))
    p1 = np.float32(MSV_EML) / np.float32(MSV_EML + 1)
    null = np.float32(MSV_EML * math.log(float(p1)) + math.log(1.0 - float(p1)))
    return tuple(seqs), null


def msv_gumbel(hmm, profile, background, calibration: tuple) -> tuple[float, float]:
    """MSV's Gumbel ``(mu, lambda)`` (bits) of a profile as HMMER's ``p7_Calibrate`` sets them: ``lambda`` from the
    mean match relative entropy ``H`` (``p7_Lambda``: ``ln 2 + 1.44 / (M H)``), ``mu`` fitted with it to the MSV
    scores of the calibration sequences (``p7_MSVMu``, ``esl_gumbel_FitCompleteLoc``), each step in HMMER's
    precision (float scores, double sums in order), both rounded to float as HMMER stores them. Leaves the
    profile configured for :data:`MSV_EML` residues. ``background``: the builder's null model; ``calibration``:
    :func:`_calibration_set`'s."""
    seqs, null = calibration
    lam = _LN2 + 1.44 / (float(hmm.M) * hmm.mean_match_relative_entropy(background))
    profile.L = MSV_EML
    overflow = np.float32((255 - profile.base_b) / profile.scale_b)  # p7_MSVMu's score where MSV overflows
    total = 0.0
    for d in seqs:
        sc = profile.msv_filter(d)
        sc = np.float32(sc) if math.isfinite(sc) else overflow
        total += math.exp(-lam * (float(np.float32(sc - null)) / _LN2))
    mu = -math.log(total / len(seqs)) / lam
    return float(np.float32(mu)), float(np.float32(lam))


def _digitize(seq: str, alphabet):
    from pyhmmer.easel import TextSequence

    return TextSequence(sequence=seq).digitize(alphabet)


def msv_pvalues(query: str, targets: Sequence[str], *, tools, digital: Sequence | None = None) -> np.ndarray:
    """MSV P-values of ``targets`` against a single-sequence profile of ``query`` (``tools``: alphabet, background,
    builder and, optionally, the quick builder and the calibration sequences, as :class:`MsvFilter` holds them per
    thread; ``digital``: the targets already digitized). A target or query the profile cannot score (empty, or a
    query of unknown residues only) gets P = 0, so it is aligned rather than silently dropped."""
    from pyhmmer.easel import TextSequence

    alphabet, background, builder = tools[:3]
    out = np.zeros(len(targets), dtype=np.float64)
    if not query.strip("N" if alphabet.is_nucleotide() else "X"):  # all X (N): the profile's relative entropy is
        return out  # 0, its MSV lambda infinite, and the calibration overflowed (a traceback from `search`)
    digital_query = TextSequence(name=b"query", sequence=query).digitize(alphabet)
    profile = None
    if len(tools) > 4:  # the quick builder: MSV's parameters computed here, shorter Viterbi / Forward calibrations
        try:
            hmm, _, profile = tools[3].build(digital_query, background)
        except Exception:  # noqa: BLE001 (a Gumbel fit on its few short sequences failed: build as documented)
            profile = None
        else:
            mu, lam = msv_gumbel(hmm, profile, background, tools[4])
    if profile is None:
        profile = builder.build(digital_query, background)[2]
        mu, lam = list(profile.evalue_parameters.as_vector())[:2]  # MSV's Gumbel location and scale (bits)
    nats = np.full(len(targets), np.nan)  # (c,) MSV scores; NaN: not scored (empty target)
    for j, target in enumerate(targets):
        n = len(target)
        if n:
            profile.L = n  # the length model of hmmsearch: configured per target
            nats[j] = profile.msv_filter(digital[j] if digital is not None else _digitize(target, alphabet))
    n = np.fromiter(map(len, targets), dtype=np.float64, count=len(targets))  # (c,)
    scored = np.isfinite(nats)  # not an empty target, not an 8-bit overflow (a very high score): those keep P = 0
    n, nats = n[scored], nats[scored]
    null = n * np.log(n / (n + 1.0)) - np.log(n + 1.0)  # HMMER's null model (p7_bg_NullOne), p1 = L / (L + 1)
    bits = (nats - null) / _LN2
    out[scored] = -np.expm1(-np.exp(-lam * (bits - mu)))  # Gumbel survival
    return out
