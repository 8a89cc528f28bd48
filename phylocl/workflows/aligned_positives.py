"""Mine alignment-guided positives before training: cross-family pairs with a significant Smith-Waterman E-value.

For ``data.aligned_evalue > 0`` (:mod:`phylocl.data.aligned` says how the pairs are used):

1. representatives: ``aligned_members`` members of each training family
   (:func:`~phylocl.data.neighbours.centroid_sample`, seeded by ``data.seed``);
2. candidates: each representative's ``aligned_candidates`` nearest representatives of *other* families by cosine
   of IDF-weighted 3-mer count profiles (protein; 5-mers for DNA), the cheap prefilter;
3. the alignment stage (:func:`phylocl.align.align_candidates`, BLOSUM62 11/1 for protein) scores each
   representative against its candidates with E-values over the representatives as the database; pairs with an
   E-value below ``aligned_evalue`` are kept, once per unordered pair.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["mine_aligned_pairs", "profile_candidates"]


def profile_candidates(sequences: list[str], owner: np.ndarray, alphabet, *, k: int, width: int) -> np.ndarray:
    """``(N, width)`` indices of each sequence's nearest sequences of another owner (``-1`` padding), by cosine of
    IDF-weighted k-mer count profiles (``idf = log(N / document frequency)``); ties broken by index."""
    code = alphabet.letter_codes()
    base = len(alphabet.canonical)
    from phylocl.data.words import window_words

    rows, cols = [], []
    for n, s in enumerate(sequences):
        w = window_words(code[alphabet.encode(s)], k, base)
        w = w[w >= 0]
        rows.append(np.full(len(w), n))
        cols.append(w)
    n = len(sequences)
    counts = sp.csr_matrix((np.ones(sum(map(len, cols)), dtype=np.float64),
                            (np.concatenate(rows or [np.zeros(0, int)]), np.concatenate(cols or [np.zeros(0, int)]))),
                           shape=(n, base ** k))
    counts.sum_duplicates()
    df = np.bincount(counts.indices, minlength=base ** k)
    idf = np.log(n / np.maximum(df, 1))
    x = counts @ sp.diags(idf)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    x = sp.diags(1.0 / np.maximum(norms, 1e-12)) @ x
    owner = np.asarray(owner)
    out = np.full((n, width), -1, dtype=np.int64)
    for start in range(0, n, 512):
        sim = (x[start:start + 512] @ x.T).toarray()  # (b, N)
        sim[owner[start:start + 512, None] == owner[None, :]] = -np.inf  # no candidate of the same family
        for j, row in enumerate(sim):
            order = np.lexsort((np.arange(n), -row))[:width]
            order = order[np.isfinite(row[order])]
            out[start + j, :len(order)] = order
    return out


def mine_aligned_pairs(dataset, families: list[str], *, evalue: float, candidates: int = 32, members: int = 1,
                       seed: int = 0, threads: int = 1) -> tuple[np.ndarray, dict]:
    """Cross-family pairs of ``dataset`` (training sequences) with a Smith-Waterman E-value below ``evalue``.

    Returns ``(pairs (P, 2) int64 sequence indices, smaller first, sorted; stats dict)``; the stats count the
    representatives, alignments, pairs and families joined.
    """
    from phylocl.align import align_candidates, scoring_system
    from phylocl.data.neighbours import centroid_sample

    rows, owner = centroid_sample(dataset, families, members=members, seed=seed)
    seqs = [dataset.sequences[r] for r in rows]
    protein = dataset.alphabet.name == "protein"
    cands = profile_candidates(seqs, owner, dataset.alphabet, k=3 if protein else 5,
                               width=min(candidates, max(len(seqs) - 1, 1)))
    scoring = scoring_system("protein" if protein else "dna")
    hits = align_candidates(seqs, seqs, [c[c >= 0] for c in cands], scoring=scoring, evalue=evalue,
                            threads=threads, query_rows=np.arange(len(seqs)))
    found = set()
    for q in range(len(seqs)):
        targets, _, _, ev = hits.query(q)
        for t, e in zip(targets, ev):
            if e < evalue and owner[q] != owner[t]:
                a, b = int(rows[q]), int(rows[t])
                found.add((min(a, b), max(a, b)))
    pairs = np.array(sorted(found), dtype=np.int64).reshape(-1, 2)
    fams = {dataset.families[i] for i in pairs.ravel()}
    stats = {"representatives": len(seqs), "alignments": int(sum((c >= 0).sum() for c in cands)),
             "pairs": len(pairs), "families_joined": len(fams)}
    return pairs, stats
