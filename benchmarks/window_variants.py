"""Asymmetric and merged windows for late interaction (issue 24): recall and posting-list cost per variant.

Every dev sequence (all protein dev sets) and every decoy is cut into windows of ``W`` residues at stride ``W / 2``
(:func:`~phylocl.retrieval.windowed.window_pieces`) and embedded once (cached under ``--cache``); the stride-``W``
cut (starts ``0, W, 2W, ..`` and the last flush with the end) is a subset of those windows, so every variant below
reads its rows from the same embedding. A variant names the query cut, then the database cut:

- ``half`` windows at stride ``W / 2`` (today's ``--windows W``), ``full`` at stride ``W`` (no overlap but the last
  window's), ``whole`` one row per sequence, ``merge`` stride ``W / 2`` with the last window merged into the one
  before (starts ``0, s, .., (n - 1) s`` with ``n = 1 + (L - W) // s``, the last running to the end: it holds the
  flush window, so no fewer words are covered; embedded on top of the cache).

Each dev set's sequences query that set plus the 16,544 decoys (as ``ablation.py score --decoys --windows W``),
scored exactly by best window pair; one JSON line per (W, variant, dev set, level) with AUC1 / recall@100 / @300,
plus the cost proxies: database rows and stored values, query values, and the posting-list traffic
``sum over query rows of the lengths of its columns' lists`` (what the search reads), each over all dev sets::

    OMP_NUM_THREADS=1 python benchmarks/window_variants.py --widths 200 250 300 --cache /tmp/winvar > variants.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

VARIANTS = ("tile/tile", "half/half", "full/half", "half/full", "full/full", "whole/half", "whole/whole", "merge/merge",
            "full/merge", "merge/full")


def take_rows(rows, keep: np.ndarray):
    """Rows ``keep`` (increasing) of SparseRows ``rows``."""
    from phylocl.sparse_rows import SparseRows

    lens = np.diff(rows.indptr)[keep]
    pos = np.concatenate([np.arange(rows.indptr[i], rows.indptr[i + 1]) for i in keep]) if len(keep) else \
        np.zeros(0, np.int64)
    return SparseRows(indptr=np.r_[0, np.cumsum(lens)].astype(np.int64), indices=rows.indices[pos],
                      values=rows.values[pos], coeffs=rows.coeffs[keep], basis=rows.basis, dim=rows.dim)


def cached_rows(embedder, seqs: list[str], width: int, cache: Path, tag: str, stride: int | None = None):
    """``(rows, owners, starts, ends, seconds)`` of the stride-``width // 2`` (or ``stride``) windows of ``seqs``
    (cached)."""
    from phylocl.models.windows import window_starts
    from phylocl.sparse_rows import SparseRows

    f = cache / (f"{tag}-{width}.npz" if stride is None else f"{tag}-{width}-s{stride}.npz")
    if f.exists():
        z = np.load(f)
        rows = SparseRows(indptr=z["indptr"], indices=z["indices"], values=z["values"], coeffs=z["coeffs"],
                          basis=z["basis"], dim=int(z["dim"]))
        return rows, z["owners"], z["starts"], z["ends"], float(z["seconds"])
    pieces, owners, starts, ends = [], [], [], []
    for i, s in enumerate(seqs):
        for a in window_starts(len(s), width, stride or max(1, width // 2)) if width else [0]:
            b = len(s) if width == 0 else min(a + width, len(s))
            pieces.append(s[a:b])
            owners.append(i)
            starts.append(a)
            ends.append(b)
    t = time.perf_counter()
    rows = embedder.embed_sparse(pieces)
    seconds = time.perf_counter() - t
    np.savez(f, indptr=rows.indptr, indices=rows.indices, values=rows.values, coeffs=rows.coeffs, basis=rows.basis,
             dim=rows.dim, owners=np.asarray(owners), starts=np.asarray(starts), ends=np.asarray(ends),
             seconds=seconds)
    return rows, np.asarray(owners), np.asarray(starts), np.asarray(ends), seconds


def select(cut: str, width: int, owners, starts, ends, lengths) -> np.ndarray:
    """Rows of the stride-``W / 2`` cut that form ``cut`` (``half``, ``full``; ``merge``: the rows kept, the last
    replaced elsewhere)."""
    if cut == "half":
        return np.arange(len(owners))
    if cut == "full":
        flush = starts == lengths[owners] - width
        return np.flatnonzero((starts % width == 0) | flush | (lengths[owners] <= width))
    if cut == "merge":
        s = width // 2
        n = 1 + np.maximum(lengths - width, 0) // s  # windows per sequence
        return np.flatnonzero(starts < (n[owners] - 1) * s)  # all but the merged last
    raise ValueError(cut)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="default-protein")
    p.add_argument("--widths", type=int, nargs="+", default=[200, 250, 300])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS))
    p.add_argument("--cache", type=Path, required=True)
    p.add_argument("--overlap", type=int, default=3,
                   help="residues shared by consecutive windows of the 'tile' cut (stride W - overlap; "
                        "default-protein's words span 4 residues: 3 puts every word whole in a window)")
    args = p.parse_args(argv)
    from ablation import GROUP_LEVELS, decoy_sequences, dev_sets

    from phylocl.retrieval.evaluation import tied_lists
    from phylocl.retrieval.hits import HitLists
    from phylocl.retrieval.metrics import score_hits
    from phylocl.retrieval.windowed import WindowedIndex, WindowRows
    from phylocl.sparse_rows import concat_rows
    from phylocl.workflows.model_spec import resolve_model

    args.cache.mkdir(parents=True, exist_ok=True)
    embedder = resolve_model(args.model, alphabet="protein", device="cpu")
    sets = list(dev_sets("protein"))
    dev = [s for _, ds in sets for s in ds.sequences]
    decoys = decoy_sequences("protein")
    allseq = dev + decoys
    lengths = np.array([len(s) for s in allseq])
    n_dev = len(dev)
    whole, _, _, _, whole_s = cached_rows(embedder, allseq, 0, args.cache, "all")
    for width in args.widths:
        if any(c in ("half", "full", "merge") for v in args.variants for c in v.split("/")):
            rows, owners, starts, ends, secs = cached_rows(embedder, allseq, width, args.cache, "all")
        else:
            rows = owners = starts = ends = secs = None
        s = width // 2
        n = 1 + np.maximum(lengths - width, 0) // s
        last = (n - 1) * s
        extra = None
        need = np.flatnonzero(last + width < lengths)  # sequences whose merged last window is not a cached one
        mf = args.cache / f"merge-{width}.npz"
        if not mf.exists() and any("merge" in v for v in args.variants):
            t = time.perf_counter()
            m = embedder.embed_sparse([allseq[i][last[i]:] for i in need])
            np.savez(mf, indptr=m.indptr, indices=m.indices, values=m.values, coeffs=m.coeffs, seconds=time.perf_counter() - t)
        from phylocl.sparse_rows import SparseRows
        if mf.exists() and rows is not None:
            z = np.load(mf)
            extra = SparseRows(indptr=z["indptr"], indices=z["indices"], values=z["values"], coeffs=z["coeffs"],
                               basis=rows.basis, dim=rows.dim)

        tile = None

        def cut_rows(cut: str, seq_ids: np.ndarray):
            """(SparseRows, owners rebased) of sequences ``seq_ids`` (consecutive) under ``cut``."""
            nonlocal tile
            lo, hi = int(seq_ids[0]), int(seq_ids[-1]) + 1
            if cut == "whole":
                return whole.slice(lo, hi), np.arange(hi - lo)
            if cut == "tile":
                if tile is None:
                    tile = cached_rows(embedder, allseq, width, args.cache, "all", stride=width - args.overlap)
                t_rows, t_own = tile[0], tile[1]
                a, b = np.searchsorted(t_own, [lo, hi])
                return t_rows.slice(int(a), int(b)), t_own[a:b] - lo
            keep = select(cut, width, owners, starts, ends, lengths)
            keep = keep[(owners[keep] >= lo) & (owners[keep] < hi)]
            if cut != "merge":
                return take_rows(rows, keep), owners[keep] - lo
            # merged: the kept rows plus, per sequence, its last window (cached flush one, or the extra row)
            parts, own, where = [], [], {int(i): j for j, i in enumerate(need)}
            flush_row = {}
            for r in np.flatnonzero((owners >= lo) & (owners < hi) & (starts == last[owners])):
                flush_row[int(owners[r])] = r
            kept = {}
            for r in keep:
                kept.setdefault(int(owners[r]), []).append(int(r))
            out_idx = []  # (source, row)
            for i in range(lo, hi):
                out_idx += [("c", r) for r in kept.get(i, [])]
                out_idx.append(("e", where[i]) if i in where else ("c", flush_row[i]))
                own += [i - lo] * (len(kept.get(i, [])) + 1)
            for src, r in out_idx:
                parts.append(rows.slice(r, r + 1) if src == "c" else extra.slice(r, r + 1))
            return concat_rows(parts), np.asarray(own)

        dec_ids = np.arange(n_dev, len(allseq))
        for variant in args.variants:
            qcut, dcut = variant.split("/")
            if (dcut == "whole") != (qcut == "whole") and qcut != "whole" or (variant == "whole/whole"
                                                                             and width != args.widths[0]):
                continue
            d_rows, d_own = cut_rows(dcut, dec_ids)
            lo = 0
            totals = {"db_rows": 0, "db_nnz": 0, "q_rows": 0, "q_nnz": 0, "traffic": 0, "pairs": 0, "seconds": 0.0}
            out = []
            for name, ds in sets:
                ids = np.arange(lo, lo + len(ds))
                q_rows, q_own = cut_rows(qcut, ids)
                s_rows, s_own = cut_rows(dcut, ids)
                index = WindowedIndex(rows=concat_rows([s_rows, d_rows]), owners=np.r_[s_own, d_own + len(ds)])
                t = time.perf_counter()
                sc = index.scores(WindowRows(rows=q_rows, owners=q_own, n=len(ds)))  # (n_set, n_set + n_decoys)
                totals["seconds"] += time.perf_counter() - t
                lens = index.index.lengths
                totals["traffic"] += int(lens[q_rows.indices].sum())
                totals["q_rows"] += len(q_rows)
                totals["pairs"] += len(q_rows) * index.n_rows
                totals["q_nnz"] += int(q_rows.indptr[-1])
                for level in [None, *GROUP_LEVELS.get(name, [])]:
                    rel = list(ds.families if level is None else ds.metadata[level])
                    largest = int(np.unique(rel, return_counts=True)[1].max()) - 1
                    hits = HitLists.from_lists(tied_lists(sc, 0, max(300, largest)))
                    m = score_hits(hits, rel, rel + [None] * len(decoys), ks=(1, 100, 300),
                                   query_rows=np.arange(len(ds)))
                    out.append({"width": width, "variant": variant, "dataset": name, "level": level or "family",
                                "auc1": round(float(m["auc1"]), 4), "recall@100": round(float(m["recall@100"]), 4),
                                "recall@300": round(float(m["recall@300"]), 4)})
                lo += len(ds)
            all_db, all_own = cut_rows(dcut, np.arange(len(allseq)))
            totals["db_rows"], totals["db_nnz"] = len(all_db), int(all_db.indptr[-1])
            for r in out:
                print(json.dumps(r), flush=True)
            print(json.dumps({"width": width, "variant": variant, "cost": totals, "load": os.getloadavg()[0],
                              "embed_seconds": {"half": secs, "whole": whole_s,
                                                **({"tile": tile[4]} if tile is not None else {})}}), flush=True)


if __name__ == "__main__":
    main()
