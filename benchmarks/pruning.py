"""How much of a sparse index's posting volume could dynamic top-k pruning skip, exactly or approximately?

Measures, for the queries of a ``benchmarks/scale.py`` work folder against one of its sparse index bundles
(``phylocl index --fasta``), what the pruning methods of Lucene and PISA could save on these vectors, without
timing anything (the figures are counts, so a loaded machine does not change them):

- ``theta``: the exact ``k``-th best score of each query (``k`` = 10 and 300), from the exact scoring;
- ``maxscore_essential``: MaxScore (Turtle & Flood; PISA's ``maxscore``): a query's words sorted by their upper
  bound ``q_j * max_j`` (``max_j`` the largest value in word ``j``'s list, stored at build time); the words whose
  bounds sum to less than ``theta`` minus the largest low-rank term of any row are non-essential, and only rows
  found in the essential lists need scoring. The figure is the fraction of the query's posting volume in the
  essential lists, with the exact ``theta`` known in advance (the best case: a real run learns ``theta`` as it
  goes). WAND's pivoting skips no more than this bound allows on term-at-a-time volume;
- ``blockmax_blocks``: block-max bounds (BMW, BMP): rows cut into blocks of ``B`` consecutive row numbers, each
  block's bound ``sum_j q_j * max over the block of word j`` plus the block's largest low-rank term; the fraction
  of blocks whose bound reaches ``theta`` (those must be scored), for ``B`` = 8, 32, 128, in the index's row order
  (families are consecutive in the scale set, the best case for block bounds: a real database needs reordering);
- ``partial_recall``: a non-exact candidate stage: score only the query's shortest lists up to a fraction ``f`` of
  its posting volume, keep the best ``M`` rows, score those exactly; recall of the exact top ``k``.

Prints one JSON object per index. Example::

    python benchmarks/pruning.py --work work --index work/db-100000-kmer_3-sparse.index --model kmer:3 --queries 100
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.scale import read_fasta  # noqa: E402  (after the sys.path line: run as a script)
from phylocl.retrieval.index_io import load_index  # noqa: E402
from phylocl.workflows.model_spec import resolve_model  # noqa: E402


def low_rank_scores(idx, q) -> np.ndarray:
    """``(Q, N)`` low-rank part of every score (zeros for rank 0)."""
    if not q.rank:
        return np.zeros((len(q), idx.ntotal), np.float32)
    qs = sp.csr_matrix((q.values, q.indices, q.indptr), shape=(len(q), idx.dim))
    u = np.hstack([q.coeffs, np.asarray(qs @ idx.basis.T) + q.coeffs @ idx.gram]).astype(np.float32)
    return u @ idx.dense.T


def list_bounds(postings) -> tuple[np.ndarray, np.ndarray]:
    """Largest and smallest value of every list, ``(D,)`` each (0 for empty lists)."""
    lens = np.diff(postings.indptr)
    hi, lo = np.zeros(len(lens), np.float32), np.zeros(len(lens), np.float32)
    nz = lens > 0
    hi[nz] = np.maximum.reduceat(postings.data, postings.indptr[:-1][nz])
    lo[nz] = np.minimum.reduceat(postings.data, postings.indptr[:-1][nz])
    return hi, lo


def word_bounds(vals: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Upper bound of ``q_j * x_j`` over rows (a row without the word contributes 0)."""
    return np.maximum(0, np.maximum(vals * hi, vals * lo))


def block_max(postings, n: int, size: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """``(D, n_blocks)`` largest and smallest value of each list within each block of ``size`` rows."""
    nb = -(-n // size)
    word = np.repeat(np.arange(postings.shape[0]), np.diff(postings.indptr))
    key = word.astype(np.int64) * nb + postings.indices // size  # sorted: lists in order, rows increasing
    starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
    k = key[starts]
    hi = np.maximum.reduceat(postings.data, starts)
    lo = np.minimum.reduceat(postings.data, starts)
    shape = (postings.shape[0], nb)
    return (sp.csr_matrix((hi, (k // nb, k % nb)), shape=shape), sp.csr_matrix((lo, (k // nb, k % nb)), shape=shape))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, required=True, help="scale.py work folder (queries.fasta)")
    p.add_argument("--index", type=Path, required=True)
    p.add_argument("--model", required=True, help="the index's model (kmer:3, default-protein)")
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--ks", type=int, nargs="+", default=[10, 300])
    p.add_argument("--blocks", type=int, nargs="+", default=[8, 32, 128])
    args = p.parse_args(argv)
    idx = load_index(args.index)
    seqs = [s for _, s in read_fasta(args.work / "queries.fasta")][: args.queries]
    q = resolve_model(args.model, alphabet="protein").embed_sparse(seqs)
    post = idx.postings
    lens = np.diff(post.indptr).astype(np.int64)
    exact = idx.scores(q)  # (Q, N)
    dense = low_rank_scores(idx, q)  # (Q, N)
    hi, lo = list_bounds(post)
    out: dict = {"index": str(args.index), "model": args.model, "queries": len(q), "rows": idx.ntotal,
                 "values_per_row": round(idx.nnz / idx.ntotal, 1), "negative_values": float((post.data < 0).mean()),
                 "low_rank_spread": [float(np.percentile(dense, 1)), float(np.percentile(dense, 99))]}
    thetas = {k: -np.sort(-exact, axis=1)[:, k - 1] for k in args.ks}
    out["theta"] = {k: round(float(t.mean()), 4) for k, t in thetas.items()}
    ess = {k: [] for k in args.ks}
    for i in range(len(q)):
        cols, vals = q.indices[q.indptr[i]:q.indptr[i + 1]], q.values[q.indptr[i]:q.indptr[i + 1]]
        ub = word_bounds(vals, hi[cols], lo[cols])
        order = np.argsort(ub)
        cum = np.cumsum(ub[order])
        for k in args.ks:
            m = int(np.searchsorted(cum, thetas[k][i] - dense[i].max()))  # words whose bounds sum below theta
            ess[k].append(lens[cols[order[m:]]].sum() / max(lens[cols].sum(), 1))
    out["maxscore_essential"] = {k: round(float(np.mean(v)), 4) for k, v in ess.items()}
    out["blockmax_blocks"] = {}
    qs = sp.csr_matrix((q.values, q.indices, q.indptr), shape=(len(q), idx.dim))
    qpos, qneg = qs.maximum(0), qs.minimum(0)
    for size in args.blocks:
        bhi, blo = block_max(post, idx.ntotal, size)
        nb = bhi.shape[1]
        ub = np.asarray((qpos @ bhi.maximum(0)).todense() + (qneg @ blo.minimum(0)).todense())  # (Q, nb)
        pad = np.full((len(q), nb * size), -np.inf, np.float32)
        pad[:, :idx.ntotal] = dense
        ub += pad.reshape(len(q), nb, size).max(2)
        out["blockmax_blocks"][size] = {k: round(float((ub >= thetas[k][:, None]).mean()), 4) for k in args.ks}
    out["partial_recall"] = {}
    fwd = post.T.tocsr()  # (N, D): rows for the exact scoring of candidates
    for frac in (0.25, 0.5):
        for m in (1000, 3000):
            rec = {k: [] for k in args.ks}
            for i in range(len(q)):
                cols, vals = q.indices[q.indptr[i]:q.indptr[i + 1]], q.values[q.indptr[i]:q.indptr[i + 1]]
                order = np.argsort(lens[cols], kind="stable")
                cum = np.cumsum(lens[cols[order]])
                take = order[: int(np.searchsorted(cum, frac * cum[-1])) + 1]
                partial = post[cols[take]].T @ vals[take] + dense[i]
                cand = np.argpartition(-partial, m - 1)[:m]
                qd = np.zeros(idx.dim, np.float32)
                qd[cols] = vals
                full = fwd[cand] @ qd + dense[i][cand]
                for k in args.ks:
                    top = set(cand[np.argsort(-full)[:k]].tolist())
                    true = set(np.argpartition(-exact[i], k - 1)[:k].tolist())
                    rec[k].append(len(top & true) / k)
            out["partial_recall"][f"f={frac},M={m}"] = {k: round(float(np.mean(v)), 4) for k, v in rec.items()}
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
