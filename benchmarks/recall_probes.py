"""Untrained probes of issue 24: which change to the k-mer profile raises dev recall@K before any training?

Every probe starts from one k-mer profile encoder (default: the untrained IDF start of ``default-protein``, saved
by ``python benchmarks/kmerprofile.py idf``) and scores the materialised protein dev sets
(``python benchmarks/ablation.py materialize protein``) all against all, self hits excluded, with the metric code
of ``phylocl evaluate`` (:func:`~phylocl.retrieval.metrics.score_hits`: recall@k, MAP@R, AUC1). Probes:

``base``            the encoder's own profile (its ``sqrt`` counts times word weights, blocks normalised, the
                    composition term left out: it is 1e-3 of the norm), with its similar-word block if it has one
                    (``similar_rank``; its score adds ``g_s^2 t_q . t_d``, as the encoder's cosine does up to the
                    final normalisation);
``simT``            similar words: each word also counts, with weight ``beta``, every word of the same pattern
                    whose BLOSUM62 score against it is ``>= T`` (MMseqs2's neighbours without its diagonal rule);
                    both sides expanded (``sim``) or only the query side (``qsimT``: the database rows, and so an
                    index, stay as they are);
``lrRgG``           plus the similar-word block of ``similar_rank = R`` at initialisation with gain ``G``
                    (its window-pair score adds ``G * t_q . t_d``, ``t`` the unit block of each side);
``winW``            windows of ``W`` residues (stride ``W / 2``) embedded separately; a pair scores its best
                    window pair (late interaction); sequences shorter than ``W`` are one window.

Prints one JSON object per (probe, dev set) and writes them all to ``--out``::

    OMP_NUM_THREADS=1 python benchmarks/recall_probes.py --model /work/scratch/kmerprofile-idf \\
        --probes base sim11 sim12 sim13 qsim12 win100 win200 win400 --out runs/recall-probes.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

REPO = Path(__file__).resolve().parents[1]
DEV = {"mycoplasma-orthogroups": None, "scope40-train": "superfamily", "ecoli-shigella-protein": None,
       "phykit-protein": None, "pfam-seed-examples": None}
KS = (1, 10, 100, 300)


def blosum_word_scores(letters: str, k: int) -> np.ndarray:
    """``(n^k, n^k)`` int: BLOSUM62 score of word ``u`` against word ``v`` (sum over the ``k`` positions)."""
    from Bio.Align import substitution_matrices

    b = substitution_matrices.load("BLOSUM62")
    m = np.array([[b[x][y] for y in letters] for x in letters], dtype=np.int32)  # (n, n)
    out = np.zeros((1, 1), dtype=np.int32)
    for _ in range(k):
        out = (out[:, None, :, None] + m[None, :, None, :]).reshape(out.shape[0] * len(letters), -1)
    return out


def neighbour_matrix(letters: str, k: int, threshold: int, beta: float) -> sp.csr_matrix:
    """``I + beta * N`` with ``N[u, v] = 1`` for ``u != v`` scoring ``>= threshold`` (``(n^k, n^k)`` sparse)."""
    s = blosum_word_scores(letters, k)
    near = (s >= threshold)
    np.fill_diagonal(near, False)
    return (sp.identity(len(s), format="csr") + beta * sp.csr_matrix(near.astype(np.float32))).tocsr()


def window_counts(encoder, sequences: list[str], width: int | None) -> tuple[list[sp.csr_matrix], np.ndarray]:
    """Per pattern ``(rows, n^k)`` word counts of each window and the owner sequence of each row."""
    import torch

    from phylocl.data.tokens import pad_batch

    arrays = [encoder._token_array(i, s) for i, s in enumerate(sequences)]
    pieces, owners = [], []
    for i, a in enumerate(arrays):
        if width is None or len(a) <= width:
            pieces.append(a)
            owners.append(i)
            continue
        stride = width // 2
        starts = list(range(0, len(a) - width + 1, stride))
        if starts[-1] + width < len(a):
            starts.append(len(a) - width)
        for s in starts:
            pieces.append(a[s:s + width])
            owners.append(i)
    bb = encoder.backbone
    blocks: list[list] = [[] for _ in bb.patterns]
    with torch.no_grad():
        for lo in range(0, len(pieces), 64):
            batch = pad_batch(pieces[lo:lo + 64])
            c = bb.counts(batch["input_ids"], batch["attention_mask"]).numpy()  # (b, P, n^k)
            for p in range(len(bb.patterns)):
                blocks[p].append(sp.csr_matrix(c[:, p]))
    return [sp.vstack(b).tocsr() for b in blocks], np.asarray(owners)


def profile(counts: list[sp.csr_matrix], weights: np.ndarray, gains: np.ndarray, expand=None) -> sp.csr_matrix:
    """Rows ``concat_p g_p * normalize(sqrt(counts_p [@ expand]) * w_p)`` as a sparse matrix."""
    out = []
    for p, c in enumerate(counts):
        c = c @ expand if expand is not None else c
        c = c.sqrt().multiply(weights[p][None, :]).tocsr()
        norms = np.sqrt(np.asarray(c.multiply(c).sum(1))).ravel()
        c = sp.diags(gains[p] / np.maximum(norms, 1e-12)) @ c
        out.append(c)
    return sp.hstack(out).tocsr()


def lowrank_words(letters: str, k: int, rank: int) -> np.ndarray:
    """``(n^k, rank)``: the similar-word vectors of the encoder's ``similar_rank`` block at initialisation
    (:func:`~phylocl.models.kmerprofile.similar_word_vectors`, the BLOSUM62 word kernel's top eigenpairs)."""
    from phylocl.models.kmerprofile import similar_word_vectors

    return similar_word_vectors(k, rank).astype(np.float64)


def dense_term(counts: list[sp.csr_matrix], weights: np.ndarray, words: np.ndarray) -> np.ndarray:
    """``(rows, P * rank)``: per pattern ``normalize((sqrt(counts_p) * w_p) @ E)``, blocks concatenated and scaled
    to norm 1 overall."""
    out = []
    for p, c in enumerate(counts):
        t = np.asarray(c.sqrt().multiply(weights[p][None, :]).tocsr() @ words)  # (rows, rank)
        out.append(t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12))
    t = np.hstack(out)
    return t / np.sqrt(len(counts))


def best_pairs(q, d, q_owner: np.ndarray, d_owner: np.ndarray, n_q: int, n_d: int, extra=None,
               chunk: int = 256) -> np.ndarray:
    """``(n_q, n_d)`` float32: best window-pair score per (query, database) sequence pair; owners are
    non-decreasing (a sequence's windows are consecutive). ``extra = (tq, td, weight)`` adds ``weight * tq @ td.T``
    (a dense term) to every window pair's score."""
    d_starts = np.flatnonzero(np.r_[True, d_owner[1:] != d_owner[:-1]])
    out = np.full((n_q, n_d), -np.inf, dtype=np.float32)
    for lo in range(0, q.shape[0], chunk):
        hi = min(lo + chunk, q.shape[0])
        s = (q[lo:hi] @ d.T).toarray().astype(np.float32)  # (c, windows)
        if extra is not None:
            s += extra[2] * (extra[0][lo:hi] @ extra[1].T).astype(np.float32)
        s = np.maximum.reduceat(s, d_starts, axis=1)  # (c, n_d)
        np.maximum.at(out, q_owner[lo:hi], s)
    return out


def evaluate(best: np.ndarray, families: list[str], groups, n_decoys: int) -> dict:
    """Score ``best`` ``(n, n + n_decoys)``: dev rows first (self excluded), decoys never relevant."""
    from phylocl.retrieval.hits import HitLists
    from phylocl.retrieval.metrics import score_hits

    n = len(best)
    depth = min(best.shape[1] - 1, max(KS[-1], 2 * n))
    lists = []
    for i in range(n):
        row = best[i].astype(np.float64)
        row[i] = -np.inf
        top = np.argpartition(-row, depth - 1)[:depth]
        keep = np.flatnonzero(row >= row[top].min())
        lists.append((keep, row[keep]))
    rel = list(families if groups is None else groups)
    m = score_hits(HitLists.from_lists(lists), rel, rel + [None] * n_decoys, ks=KS, query_rows=np.arange(n))
    return {k: round(float(m[k]), 4) for k in ("top1", *(f"recall@{k}" for k in KS), "map_r", "auc1")}


def run_probe(encoder, name: str, dev, decoys, letters: str, cache: dict):
    """``(best (n, n + n_decoys), database nonzeros per sequence)`` of probe ``name``."""
    bb = encoder.backbone
    w = bb.weights.detach().numpy().astype(np.float64)
    g = bb.gains.detach().numpy().astype(np.float64)
    win = re.fullmatch(r"win(\d+)", name)
    sim = re.fullmatch(r"(q?)sim(\d+)(?:b([0-9.]+))?", name)
    low = re.fullmatch(r"lr(\d+)g([0-9.]+)", name)
    width = int(win.group(1)) if win else None
    key = ("dev", id(dev), width)
    if key not in cache:
        cache[key] = window_counts(encoder, dev, width)
    if ("decoys", width) not in cache:
        cache[("decoys", width)] = window_counts(encoder, decoys, width) if decoys else None
    qc, q_owner = cache[key]
    dd = cache[("decoys", width)]
    dc = [sp.vstack([a, b]).tocsr() for a, b in zip(qc, dd[0])] if dd else qc
    d_owner = np.r_[q_owner, dd[1] + len(dev)] if dd else q_owner
    n_d = len(dev) + len(decoys)
    extra = None
    if sim:
        expand = cache.setdefault(("sim", sim.group(2), sim.group(3)), neighbour_matrix(
            letters, bb.k, int(sim.group(2)), float(sim.group(3) or 1.0)))
        q = profile(qc, w, g, expand)
        d = profile(dc, w, g, None if sim.group(1) else expand)
    elif name == "base" or win or low:
        q, d = profile(qc, w, g), profile(dc, w, g)
        if bb.similar_rank and not low:  # the encoder's own (learned) similar-word block
            words = bb.word_vectors.detach().numpy().astype(np.float64)
            gain = float(bb.similar_gain.detach()) ** 2
            extra = (dense_term(qc, w, words), dense_term(dc, w, words), gain)
        if low:
            words = cache.setdefault(("lr", low.group(1)), lowrank_words(letters, bb.k, int(low.group(1))))
            extra = (dense_term(qc, w, words), dense_term(dc, w, words), float(low.group(2)))
    else:
        raise SystemExit(f"unknown probe {name!r}")
    return best_pairs(q, d, q_owner, d_owner, len(dev), n_d, extra), round(d.nnz / n_d, 1)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="a k-mer profile encoder (folder, file or shipped name)")
    p.add_argument("--probes", nargs="+", default=["base", "sim12", "qsim12", "win200"])
    p.add_argument("--dev", type=Path, default=REPO / "runs" / "dev" / "protein")
    p.add_argument("--sets", nargs="*", default=list(DEV))
    p.add_argument("--decoys", action="store_true",
                   help="add the training sequences as decoys (benchmarks/ablation.py score --decoys)")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    import phylocl
    from phylocl.data.layouts import read_dataset

    encoder = phylocl.load_encoder(args.model).eval()
    letters = "ACDEFGHIKLMNPQRSTVWY"
    if encoder.config.alphabet != "protein":
        raise SystemExit("the probes expect the 20-letter protein alphabet")
    decoys = []
    if args.decoys:
        sys.path.insert(0, str(REPO / "benchmarks"))
        from ablation import decoy_sequences

        decoys = decoy_sequences("protein")
    results = json.loads(args.out.read_text()) if args.out and args.out.exists() else []
    cache: dict = {}
    for ds_name in args.sets:
        ds = read_dataset(args.dev / ds_name)
        for probe in args.probes:
            t0 = time.perf_counter()
            best, nnz = run_probe(encoder, probe, ds.sequences, decoys, letters, cache)
            for level in ["family", *([DEV[ds_name]] if DEV.get(ds_name) else [])]:
                groups = None if level == "family" else ds.metadata[level]
                row = {"probe": probe, "dataset": ds_name, "level": level, "n": len(ds), "n_decoys": len(decoys),
                       "db_nnz_per_sequence": nnz, **evaluate(best, ds.families, groups, len(decoys)),
                       "seconds": round(time.perf_counter() - t0, 1)}
                key = (probe, ds_name, level, len(decoys))
                results = [r for r in results if (r["probe"], r["dataset"], r["level"], r.get("n_decoys", 0)) != key]
                results.append(row)
                print(json.dumps(row), flush=True)
            if args.out:
                args.out.write_text(json.dumps(results, indent=1) + "\n")
        cache = {k: v for k, v in cache.items() if k[0] != "dev"}


if __name__ == "__main__":
    sys.exit(main())
