"""FAISS indexes over unit vectors: build, search in batches, drop self hits.

Every index scores by inner product on L2-normalised vectors, i.e. cosine similarity in ``[-1, 1]``, higher is
better. Vectors (database and queries) are normalised on the way in; zero vectors stay zero and score 0 against
everything. Kinds and their defaults (the constants of :mod:`phylocl.retrieval.index_params`; ``N`` database
vectors of width ``D``):

``flat``   exact search (``IndexFlatIP``).
``ivf``    inverted lists (``IndexIVFFlat``): ``nlist = min(4 sqrt(N), N / 39)``, ``nprobe = ceil(nlist / 3)``.
``hnsw``   graph (``IndexHNSWFlat``): ``M = 32``, ``efConstruction = 80``, ``efSearch = 256``.
``ivfpq``  inverted lists of product-quantised codes (``IndexIVFPQ``) re-ranked exactly (``IndexRefineFlat``):
           IVF defaults, ``pq_m`` = the largest divisor of ``D`` that is ``<= min(64, D / 4)``, 8 bits per code,
           ``k_factor = 4`` (``k_factor = 0``: no re-ranking, codes only).

``auto`` picks one of them from ``N``, ``D`` and a memory budget (:mod:`phylocl.retrieval.index_choice`).
Vectors are normalised and added in batches, so building from a memory-mapped file holds one batch at a time.

IVF kinds need training: with too few vectors (fewer than 78 for ``ivf``, 9,984 for ``ivfpq``) they fall back
(to ``flat`` / ``ivf``) with a warning; an explicit ``nlist`` above ``N / 39`` is clamped with a warning.
Persistence and compatibility checks live in :mod:`phylocl.retrieval.index_io`.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import faiss
import numpy as np

from phylocl.retrieval.bundle import save_index
from phylocl.retrieval.hits import drop_self_hits, own_rows  # noqa: F401  (their home before hits.py)
from phylocl.retrieval.index_choice import DEFAULT_MEMORY_BUDGET, choose_kind
from phylocl.retrieval.index_params import (INDEX_KINDS, MIN_POINTS_PER_LIST, PARAM_NAMES, TRAIN_BYTES,
                                           TRAIN_POINTS_PER_LIST, default_params)
from phylocl.retrieval.npz_mmap import block_rows, row_blocks

__all__ = ["RetrievalIndex", "build_index", "default_params", "drop_self_hits", "set_num_threads", "threads_within",
           "normalize_rows", "own_rows", "INDEX_KINDS"]

ADD_BATCH = 65536  # rows normalised and added per step (fewer for wide rows: ADD_BYTES)
ADD_BYTES = 256 << 20  # most bytes of float32 rows read and normalised per step
BLAS_THRESHOLD = 1  # FAISS's cut-over to matrix-product (BLAS) search; see use_blas_search


def use_blas_search(threshold: int = BLAS_THRESHOLD) -> None:
    """Make FAISS's exact search (flat indexes, IVF coarse assignment) use one matrix product per database block.

    Below ``faiss.cvar.distance_compute_blas_threshold`` (128,000 in faiss 1.15, compared with queries x width)
    FAISS scans the whole database once per query; with the matrix product every query count is faster and the
    hits are the same (measured in docs/retrieval.md). Set once, on import.
    """
    faiss.cvar.distance_compute_blas_threshold = int(threshold)


use_blas_search()

def set_num_threads(n: int) -> None:
    """Number of OpenMP threads FAISS uses for building and searching."""
    if int(n) < 1:
        raise ValueError(f"number of threads must be >= 1, got {n}")
    faiss.omp_set_num_threads(int(n))


@contextlib.contextmanager
def threads_within(n: int | None) -> Iterator[None]:
    """FAISS's OpenMP threads set to ``n`` inside the block (``None``: unchanged) and put back after it: the count is
    the process's own (torch's CPU kernels read the same OpenMP setting), so a library call must not keep it."""
    if n is None:
        yield
        return
    previous = faiss.omp_get_max_threads()
    set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def normalize_rows(x) -> np.ndarray:
    """``x`` ``(N, D)`` as C-contiguous float32 rows of unit L2 norm (zero rows stay zero); no copy if already so."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D array (N, D), got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)  # (N, 1)
    if np.all((np.abs(norms - 1) < 1e-5) | (norms == 0)):
        return x
    if not np.isfinite(norms).all():
        raise ValueError("vectors contain NaN or infinite values")
    return x / np.where(norms > 0, norms, 1).astype(np.float32)


def _new_index(kind: str, dim: int, p: dict) -> faiss.Index:
    ip = faiss.METRIC_INNER_PRODUCT
    if kind == "flat":
        return faiss.IndexFlatIP(dim)
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, p["hnsw_m"], ip)
        index.hnsw.efConstruction = p["ef_construction"]
        return index
    quantizer = faiss.IndexFlatIP(dim)
    if kind == "ivf":
        index = faiss.IndexIVFFlat(quantizer, dim, p["nlist"], ip)
    else:
        index = faiss.IndexIVFPQ(quantizer, dim, p["nlist"], p["pq_m"], p["pq_nbits"], ip)
    index.own_fields = True  # C++ owns the sub-indexes, so they live exactly as long as the outer index
    quantizer.this.disown()
    if kind == "ivfpq" and p["k_factor"] > 0:
        refine = faiss.IndexRefineFlat(index)
        refine.own_fields = True
        index.this.disown()
        return refine
    return index


def base_index(index: faiss.Index) -> faiss.Index:
    """The index a re-ranked IVF-PQ (``IndexRefine``) wraps, else ``index`` itself."""
    return faiss.downcast_index(index.base_index) if isinstance(index, faiss.IndexRefine) else index


def apply_search_params(index: faiss.Index, params: dict) -> None:
    """Set the search-time knobs (``nprobe``, ``ef_search``, ``k_factor``) from ``params`` on a FAISS index."""
    base = base_index(index)
    if isinstance(index, faiss.IndexRefine):
        index.k_factor = float(params["k_factor"])
    if "nprobe" in params:
        faiss.extract_index_ivf(base).nprobe = int(params["nprobe"])
    if "ef_search" in params:
        base.hnsw.efSearch = int(params["ef_search"])


class RetrievalIndex:
    """A FAISS index plus the ids, labels and model description of its rows.

    Args:
        index: a trained, filled FAISS index (inner product).
        kind: one of :data:`INDEX_KINDS`.
        params: the resolved parameters (see :func:`default_params`).
        ids: ``ntotal`` unique row ids; labels: ``ntotal`` labels or ``None``; model: embedder description.
        unique_ids: the caller has already checked that ``ids`` are unique (a loaded bundle): skip the check.
    """

    def __init__(self, *, index: faiss.Index, kind: str, params: dict, ids: Sequence[str],
                 labels: Sequence[str] | None = None, model: dict | None = None, unique_ids: bool = False) -> None:
        if kind not in INDEX_KINDS:
            raise ValueError(f"unknown index kind {kind!r}")
        if len(ids) != index.ntotal or (labels is not None and len(labels) != index.ntotal):
            raise ValueError(f"{len(ids)} ids / labels for an index of {index.ntotal} vectors")
        self.index, self.kind, self.params = index, kind, dict(params)
        self.ids = [str(i) for i in ids]
        self.labels = None if labels is None else [str(s) for s in labels]
        self.model = dict(model or {})
        self.reason: str | None = None  # why build_index(kind="auto") chose this kind
        self._row: dict[str, int] | None = None  # id -> row, built when first needed (1.5 s at 10^6 rows)
        if not unique_ids and len(set(self.ids)) != len(self.ids):
            raise ValueError("row ids must be unique")
        apply_search_params(index, self.params)

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def positions(self, ids: Sequence[str]) -> np.ndarray:
        """Row of each id, ``-1`` for ids not in the index. ``(len(ids),)`` int64."""
        if self._row is None:
            self._row = {i: r for r, i in enumerate(self.ids)}
        return np.array([self._row.get(str(i), -1) for i in ids], dtype=np.int64)

    def set_search_params(self, **params) -> None:
        """Change ``nprobe`` / ``ef_search`` / ``k_factor`` (only those the kind has) for later searches."""
        bad = set(params) - (PARAM_NAMES[self.kind] & {"nprobe", "ef_search", "k_factor"})
        if bad:
            raise ValueError(f"{self.kind} index has no search parameter(s) {sorted(bad)}")
        if self.kind == "ivfpq" and "k_factor" in params and (params["k_factor"] > 0) != (self.params["k_factor"] > 0):
            raise ValueError("k_factor can change but not be switched on or off after building")
        self.params.update({k: int(v) for k, v in params.items()})
        apply_search_params(self.index, self.params)

    def search(self, queries, k: int, *, batch_size: int = 4096,
               exclude_ids: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best rows for each query.

        Args:
            queries: ``(Q, D)`` float array (normalised here).
            k: hits per query, ``>= 1``.
            batch_size: queries per FAISS call.
            exclude_ids: ``Q`` query ids; a hit on the row with the query's own id is dropped (``k + 1`` are
                searched, so ``k`` remain).

        Returns:
            ``scores`` ``(Q, k)`` float32 cosine similarities, best first, and ``indices`` ``(Q, k)`` int64 rows;
            when fewer than ``k`` rows are found the tail holds ``-inf`` / ``-1``.
        """
        from phylocl.arguments import positive_int

        k, batch_size = positive_int("k", k), positive_int("batch_size", batch_size)  # k=True searched 1, 2.5 a TypeError
        q = normalize_rows(queries)  # (Q, D)
        if q.shape[1] != self.dim:
            raise ValueError(f"queries have dimension {q.shape[1]}, the index has {self.dim}")
        if exclude_ids is not None and len(exclude_ids) != len(q):
            raise ValueError(f"{len(exclude_ids)} exclude_ids for {len(q)} queries")
        depth = k + (exclude_ids is not None)
        scores = np.empty((len(q), k), dtype=np.float32)
        indices = np.empty((len(q), k), dtype=np.int64)
        for start in range(0, len(q), batch_size):
            s, i = self.index.search(q[start:start + batch_size], depth)  # (b, depth)
            if exclude_ids is not None:  # the query's own row, found among its hits by id (no id -> row map)
                s, i = drop_self_hits(s, i, own_rows(self.ids, i, exclude_ids[start:start + batch_size]), k)
            scores[start:start + len(s)], indices[start:start + len(s)] = s, i
        scores[indices < 0] = -np.inf
        return scores, indices

    def save(self, path) -> None:
        """Write the index bundle (directory) atomically; see :func:`phylocl.retrieval.index_io.save_index`."""
        save_index(self, path)


def build_index(embeddings, *, kind: str = "flat", ids: Sequence[str] | None = None,
                labels: Sequence[str] | None = None, model: dict | None = None, seed: int = 0,
                batch_rows: int = ADD_BATCH, memory_budget: int | None = None, **params) -> RetrievalIndex:
    """Build a :class:`RetrievalIndex` over ``embeddings`` ``(N, D)`` (an array or a read-only memory map).

    Memory: the index itself plus one batch. Rows are normalised and added ``batch_rows`` at a time (at most
    :data:`ADD_BYTES` of them), IVF/PQ
    training reads a seeded sample (at most ``TRAIN_POINTS_PER_LIST * nlist`` rows and :data:`TRAIN_BYTES`), so
    a memory-mapped file is never copied whole.

    Args:
        kind: ``flat``, ``ivf``, ``hnsw``, ``ivfpq`` or ``auto`` (:func:`~phylocl.retrieval.index_choice.choose_kind`
            from ``N``, ``D`` and ``memory_budget`` bytes, default 4 GiB; ``index.reason`` says what and why).
        ids: row ids (default ``"0"``, ``"1"``, ...); labels: row labels or ``None``; model: embedder description.
        seed: seed of the k-means / PQ training and of the training sample.
        params: overrides of :func:`default_params` (``nlist``, ``nprobe``, ``hnsw_m``, ``ef_construction``,
            ``ef_search``, ``pq_m``, ``pq_nbits``, ``k_factor``); ``None`` values mean default.
    """
    if getattr(embeddings, "ndim", 2) != 2:
        raise ValueError(f"expected a 2-D array (N, D), got shape {np.shape(embeddings)}")
    n, dim = embeddings.shape
    if n == 0:
        raise ValueError("cannot index zero vectors")
    reason = None
    if kind == "auto":
        kind, auto, why = choose_kind(n, dim, memory_budget=memory_budget or DEFAULT_MEMORY_BUDGET)
        reason = f"{kind}: {why}"  # the kind chosen (a FAISS fallback may still build another, with a warning)
        params = {**auto, **{k: v for k, v in params.items() if v is not None}}
    kind, p = default_params(kind, n, dim, **params)
    index = _new_index(kind, dim, p)
    if not index.is_trained:
        _train(index, embeddings, kind, p, seed)
    _reserve_codes(index, n)
    for _, rows in row_blocks(embeddings, max_bytes=ADD_BYTES, max_rows=batch_rows):  # 24,000-d: 2,796 rows
        index.add(normalize_rows(rows))  # (b, D)
    out = RetrievalIndex(index=index, kind=kind, params=p, ids=ids if ids is not None else [str(i) for i in range(n)],
                         labels=labels, model=model)
    out.reason = reason
    return out


def _reserve_codes(index: faiss.Index, n: int) -> None:
    """Allocate a flat (or HNSW's flat storage) code array for ``n`` vectors before adding them.

    Grown batch by batch, the array doubles its capacity and copies itself, so the peak memory of a build nearly
    doubles (docs/performance.md, "Figures behind the code"). Resizing to the final size and back to 0 keeps the capacity.
    """
    flat = faiss.downcast_index(index.storage) if isinstance(index, faiss.IndexHNSW) else index
    codes, size = getattr(flat, "codes", None), getattr(flat, "code_size", None)
    if codes is None or size is None or flat.ntotal:
        return
    codes.resize(int(n) * int(size))
    codes.resize(0)


def _train(index: faiss.Index, x, kind: str, p: dict, seed: int) -> None:
    """Train IVF centroids (and PQ codebooks) on a seeded sample of ``x``'s rows, read in sorted order."""
    n, dim = x.shape
    ivf = faiss.extract_index_ivf(index)
    ivf.cp.seed = seed
    if kind == "ivfpq":
        faiss.downcast_index(ivf).pq.cp.seed = seed
    least = MIN_POINTS_PER_LIST * max(p["nlist"], 2 ** p.get("pq_nbits", 0))
    size = min(n, max(least, min(TRAIN_POINTS_PER_LIST * p["nlist"], TRAIN_BYTES // (4 * dim))))
    rows = np.arange(n) if size == n else np.sort(np.random.default_rng(seed).choice(n, size, replace=False))
    step = block_rows(x, max_bytes=ADD_BYTES, max_rows=ADD_BATCH)
    sample = np.concatenate([normalize_rows(x[rows[lo:lo + step]]) for lo in range(0, size, step)])
    index.train(sample)  # (size, D)
