"""FAISS index kinds side by side: build time, memory, queries/s and recall@k against exact search.

Prints one JSON object per measurement (one per index kind and search setting), e.g.::

    python benchmarks/search.py --n 100000 --dim 128 --threads 2
    python benchmarks/search.py --n 100000 --data clustered --nprobe 16 64 --ef-search 64 256

``--data uniform`` (default) draws unit vectors uniformly on the sphere: no structure at all, the worst case for
approximate search. ``--data clustered`` draws them around ``N / 20`` random centres (like families of related
sequences), which is closer to real embeddings. Recall@k is the fraction of the exact (flat) top-k that an
approximate index returns, averaged over queries.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import tempfile
import time

import faiss
import numpy as np

from phylocl.retrieval.index import build_index, set_num_threads


def rss_bytes() -> int:
    """Resident set size of this process (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def make_data(n: int, q: int, dim: int, kind: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(n, dim)`` database and ``(q, dim)`` queries, float32 unit rows."""
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        db = rng.standard_normal((n, dim), dtype=np.float32)
        queries = rng.standard_normal((q, dim), dtype=np.float32)
    else:
        centres = rng.standard_normal((max(1, n // 20), dim), dtype=np.float32)
        db = centres[rng.integers(0, len(centres), n)]
        db += rng.standard_normal((n, dim), dtype=np.float32)
        queries = centres[rng.integers(0, len(centres), q)] + rng.standard_normal((q, dim), dtype=np.float32)
    db /= np.linalg.norm(db, axis=1, keepdims=True)  # numpy, not FAISS: no OpenMP threads before fork()
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return db, queries


def index_bytes(index) -> int:
    """Size of the serialised FAISS index (what ``faiss.write_index`` writes)."""
    fd, name = tempfile.mkstemp(suffix=".faiss")
    os.close(fd)
    try:
        faiss.write_index(index.index, name)
        return os.path.getsize(name)
    finally:
        os.unlink(name)


def timed_search(index, queries: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    index.search(queries[:10], k)  # warm-up
    start = time.perf_counter()
    _, found = index.search(queries, k)
    return found, len(queries) / (time.perf_counter() - start)


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(found, truth)]))


def measure_kind(kind: str, db: np.ndarray, queries: np.ndarray, truth, args) -> list[dict]:
    """Build one index and time its searches (default settings, then each extra setting)."""
    rss0 = rss_bytes()
    start = time.perf_counter()
    extra = {"k_factor": args.k_factor} if kind == "ivfpq" else {}
    index = build_index(db, kind=kind, seed=args.seed, **extra)
    build_s = time.perf_counter() - start
    base = {"n": len(db), "dim": db.shape[1], "data": args.data, "threads": args.threads, "kind": index.kind,
            "build_s": round(build_s, 2), "index_bytes": index_bytes(index), "rss_delta_bytes": rss_bytes() - rss0}
    settings = [{}]
    if index.kind in ("ivf", "ivfpq"):
        settings += [{"nprobe": v} for v in args.nprobe]
    if index.kind == "hnsw":
        settings += [{"ef_search": v} for v in args.ef_search]
    defaults = {key: index.params[key] for key in ("nprobe", "ef_search") if key in index.params}
    rows = []
    for setting in settings:
        index.set_search_params(**(setting or defaults))
        found, qps = timed_search(index, queries, args.k)
        row = {**base, "params": dict(index.params), "default": not setting, "qps": round(qps, 1)}
        row[f"recall@{args.k}"] = 1.0 if truth is None else round(recall_at(found, truth), 4)
        rows.append((row, found))
    return rows


def _in_child(conn, kind, db, queries, truth, args) -> None:
    set_num_threads(args.threads)
    rows = measure_kind(kind, db, queries, truth, args)
    conn.send([(row, found if truth is None else None) for row, found in rows])
    conn.close()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, nargs="+", default=[100_000], help="database sizes")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--kinds", default="flat,ivf,hnsw,ivfpq", help="comma-separated; flat first (ground truth)")
    p.add_argument("--data", choices=["uniform", "clustered"], default="uniform")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nprobe", type=int, nargs="*", default=[], help="extra nprobe values to measure (ivf kinds)")
    p.add_argument("--ef-search", type=int, nargs="*", default=[], help="extra efSearch values to measure (hnsw)")
    p.add_argument("--k-factor", type=int, default=None, help="ivfpq re-ranking factor (0: codes only)")
    args = p.parse_args(argv)
    kinds = args.kinds.split(",")
    if kinds[0] != "flat":
        kinds.insert(0, "flat")  # exact results are the reference for recall
    # Each index is built in a fresh forked child: clean RSS deltas, memory returned after. The parent never runs
    # FAISS (OpenMP) code, which would make fork() unsafe.
    ctx = mp.get_context("fork")
    for n in args.n:
        db, queries = make_data(n, args.queries, args.dim, args.data, args.seed)
        truth = None
        for kind in kinds:
            recv, send = ctx.Pipe(duplex=False)
            child = ctx.Process(target=_in_child, args=(send, kind, db, queries, truth, args))
            child.start()
            send.close()
            results = recv.recv()
            child.join()
            for row, found in results:
                if truth is None and kind == "flat":
                    truth = found
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
