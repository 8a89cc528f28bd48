"""Both strands of DNA: align the query and its reverse complement with each candidate, keep the better strand.

``blastn`` searches both strands by default (``-strand both``): a gene annotated on the other strand of its
relative is found as a *minus-strand* hit. :func:`align_strands` does the same for the alignment stage with one extra
scoring pass per query: the reverse complement of the query against the same candidates (scoring ``rc(q)`` against
``t`` is scoring ``q`` against ``rc(t)``; the DNA matrix is symmetric under complementing both letters). Per target
the better strand is kept (the plus strand on a tie, which is what ``blastn -max_hsps 1`` reports first).

**E-values of the two strands.** BLAST+ gives each query strand its own *context* (``BlastContextInfo``,
``blast_query_info.h``) with its own effective search space (``eff_searchsp``, set per context in
``BLAST_CalcEffLengths``, ``blast_setup.c``), computed from that strand's length, which is the query's length. So a
minus-strand hit has the E-value a plus-strand hit of the same raw score would have, and searching both strands
neither doubles the search space nor changes plus-strand E-values: checked with ``blastn -task blastn -dust no``
(``-strand both`` and ``-strand plus`` print the same E-value for every plus-strand hit, and the minus-strand hits'
E-values follow the single-strand space; ``tests/align/test_strands.py``). We do the same.

**Coordinates** (:func:`minus_coordinates`), as ``blastn -outfmt 6`` writes a minus-strand hit: the query on its plus
strand (``qstart < qend``), the target reversed (``sstart > send``: ``sstart`` is the target position aligned with
``qstart``). The traceback of ``rc(q)`` against ``t`` covering ``rc(q)[a..b]`` and ``t[c..d]`` (1-based) is written
as ``qstart = m - b + 1``, ``qend = m - a + 1``, ``sstart = d``, ``send = c`` for a query of ``m`` letters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from phylocl.align.aligner import HIT_DTYPES, AlignedHits, align_candidates, stack_hits
from phylocl.align.scoring import DNA_BASES, DNA_LETTERS, ScoringSystem
from phylocl.align.sequences import clean_sequence
from phylocl.align.traceback import AlignmentSummary
from phylocl.arguments import option

__all__ = ["STRANDS", "StrandedHits", "align_strands", "check_strand", "minus_coordinates", "reverse_complement"]

STRANDS = ("plus", "both")
_PAIRED = str.maketrans("ACGT", "TGCA")
_BY_BASES = {"".join(sorted(bases)): letter for letter, bases in DNA_BASES.items()}
# each letter's complement: the letter of the complementary bases (R <-> Y, K <-> M, B <-> V, D <-> H; S W N self)
_COMPLEMENT = str.maketrans(DNA_LETTERS, "".join(_BY_BASES["".join(sorted(DNA_BASES[c].translate(_PAIRED)))]
                                                 for c in DNA_LETTERS))


def reverse_complement(seq: str) -> str:
    """Reverse complement of a clean DNA sequence (letters of :data:`~phylocl.align.scoring.DNA_LETTERS`: each IUPAC
    code becomes the code of the complementary bases, ``R`` <-> ``Y``, ``K`` <-> ``M``, ``B`` <-> ``V``, ``D`` <->
    ``H``; ``S``, ``W``, ``N`` stay)."""
    return seq.translate(_COMPLEMENT)[::-1]


def check_strand(strand: str, alphabet: str, *, explicit: bool = True) -> str:
    """``strand`` checked for ``alphabet`` (``ValueError``, one line): ``plus`` or ``both``; protein has one strand,
    so an explicit ``strand`` is refused there."""
    if strand not in STRANDS:
        raise ValueError(f"{option('strand')} must be one of {', '.join(STRANDS)}, got {strand!r}")
    if alphabet != "dna" and explicit:
        raise ValueError(f"{option('strand')} is for DNA searches; {alphabet} sequences have one strand (drop "
                         f"{option('strand')})")
    return strand if alphabet == "dna" else "plus"


@dataclass(frozen=True)
class StrandedHits(AlignedHits):
    """:class:`~phylocl.align.aligner.AlignedHits` plus ``minus`` ``(H,)`` bool: the hit is on the target's minus
    strand (the query's reverse complement aligned with the target)."""

    minus: np.ndarray | None = None


def align_strands(queries: Sequence[str], targets: Sequence[str] | Callable[[int], str],
                  candidates: Sequence[Sequence[int]], *, scoring: ScoringSystem, strand: str = "both",
                  evalue: float = 10.0, max_hits: int | None = None, clean: bool = True, **kwargs) -> StrandedHits:
    """:func:`~phylocl.align.aligner.align_candidates` on ``strand`` (``plus``, or ``both`` for DNA).

    Each strand is scored by ``align_candidates`` (same arguments, ``kwargs`` passed on: ``db_residues``,
    ``db_sequences``, ``threads``, ``query_rows``, ``filter_pvalue``, ``progress``: its phases named with the
    strand); per target the better strand is kept, then
    hits above ``evalue`` are dropped and the rest ranked by raw score, ties by candidate order, at most ``max_hits``
    per query. ``plus`` gives ``align_candidates``'s own result (``minus`` all ``False``).
    """
    if strand == "plus":
        hits = align_candidates(queries, targets, candidates, scoring=scoring, evalue=evalue, max_hits=max_hits,
                                clean=clean, **kwargs)
        return StrandedHits(**vars(hits), minus=np.zeros(len(hits.targets), dtype=bool))
    if strand != "both" or scoring.alphabet != "dna":
        raise ValueError(f"strand must be plus, or both for DNA; got {strand!r} for {scoring.alphabet}")
    if clean:
        queries = [clean_sequence(q, scoring, what=f"query {i}") for i, q in enumerate(queries)]
    progress = kwargs.pop("progress", None)
    everything = dict(scoring=scoring, evalue=np.inf, max_hits=None, clean=clean, **kwargs)

    def told(name: str):  # each strand's phases named as such
        return None if progress is None else lambda phase, done, total: progress(f"{phase}, {name}", done, total)

    plus = align_candidates(queries, targets, candidates, progress=told("plus strand"), **everything)
    # rc(q_i) against q_j scores as rc(q_j) against q_i, so align_candidates's reuse of query pairs stays exact
    minus = align_candidates([reverse_complement(q) for q in queries], targets, candidates,
                             progress=told("minus strand"), **everything)
    # the rows the scoring passes traced (trace_whole): both strands' in one table, minus's numbered after plus's
    traced = None if plus.traced is None else np.concatenate([plus.traced, minus.traced])  # (T, 9)
    at = [np.full(len(h.targets), -1, np.int64) if h.traced_at is None else h.traced_at for h in (plus, minus)]
    at[1] = np.where(at[1] >= 0, at[1] + (0 if plus.traced is None else len(plus.traced)), -1)
    parts = [_better_strand(plus, minus, i, evalue, max_hits, at) for i in range(len(queries))]
    offsets, (targets_, raw, bits, evs, cand_rank, end_a, end_b, on_minus, traced_at) = stack_hits(
        parts, (*HIT_DTYPES, bool, np.int64))
    return StrandedHits(offsets=offsets, targets=targets_, raw=raw, bits=bits, evalues=evs, cand_rank=cand_rank,
                        minus=on_minus, n_candidates=plus.n_candidates + minus.n_candidates,
                        n_aligned=plus.n_aligned + minus.n_aligned,  # each strand's candidate pairs count
                        ends=np.stack([end_a, end_b], axis=1), traced=traced,
                        traced_at=traced_at if traced is not None else None)


def _better_strand(plus: AlignedHits, minus: AlignedHits, i: int, evalue: float, max_hits: int | None,
                   traced_at: Sequence[np.ndarray]):
    """Query ``i``'s hits, the better strand per target: ``(targets, raw, bits, evalues, cand_rank, end in the
    first sequence, end in the second, minus, row in the traced table)`` (``traced_at``: plus's and minus's
    ``(H,)`` rows in the table of both strands, ``-1``: none)."""
    a, b = slice(plus.offsets[i], plus.offsets[i + 1]), slice(minus.offsets[i], minus.offsets[i + 1])
    t = np.concatenate([plus.targets[a], minus.targets[b]])  # (h,) plus hits first
    raw = np.concatenate([plus.raw[a], minus.raw[b]])
    bits = np.concatenate([plus.bits[a], minus.bits[b]])
    ev = np.concatenate([plus.evalues[a], minus.evalues[b]])
    cand = np.concatenate([plus.cand_rank[a], minus.cand_rank[b]])
    ends = np.concatenate([plus.ends[a], minus.ends[b]])  # (h, 2)
    is_minus = np.concatenate([np.zeros(a.stop - a.start, bool), np.ones(b.stop - b.start, bool)])
    at = np.concatenate([traced_at[0][a], traced_at[1][b]])
    order = np.lexsort((is_minus, -raw, t))  # per target: best raw first, plus before minus on a tie
    first = np.ones(len(order), dtype=bool)
    first[1:] = t[order][1:] != t[order][:-1]
    best = order[first]  # (u,) one row per target
    best = best[ev[best] <= evalue]
    best = best[np.lexsort((cand[best], -raw[best]))][:max_hits]  # bit score descending, then candidate order
    return t[best], raw[best], bits[best], ev[best], cand[best], ends[best, 0], ends[best, 1], is_minus[best], at[best]


def minus_coordinates(aln: AlignmentSummary, query_length: int) -> AlignmentSummary:
    """The summary of ``rc(query)`` aligned with a target, in ``blastn``'s coordinates of a minus-strand hit (module
    docstring): query positions on its plus strand, ``sstart > send``."""
    if not aln.length:
        return aln
    m = query_length
    return replace(aln, qstart=m - aln.qend + 1, qend=m - aln.qstart + 1, sstart=aln.send, send=aln.sstart)
