"""Which index kind to build for a database of ``N`` vectors of width ``D`` (``phylocl index --kind auto``).

The rule, from the measurements in docs/retrieval.md and docs/performance.md (2 CPU cores, family-like data):

1. the raw vectors (``4 N D`` bytes) do not fit in ``memory_budget`` (default 4 GiB): ``ivfpq`` without
   re-ranking (``k_factor = 0``: codes only, ``pq_m`` bytes per vector), the only kind that does not keep them;
2. ``N <= 50,000``, or rows at least :data:`WIDE_DIM` wide: ``flat``, exact. Wide rows (k-mer sketches such as
   ``kmer:3:1024``) gain little from an approximate index (docs/performance.md, "Figures behind the code");
3. ``N <= 2,000,000``: ``hnsw``: many times flat's queries per second at high recall; its long build is paid once;
4. larger: ``ivf`` (a build in minutes rather than hours; ``nprobe`` a third of the lists).

``--kind`` overrides the choice; :func:`choose_kind` returns the reason with the kind so the CLI can say it.
"""

from __future__ import annotations

import math

from phylocl.resources import human_bytes
from phylocl.retrieval.index_params import MIN_POINTS_PER_LIST, TRAIN_BYTES

__all__ = ["choose_kind", "FLAT_MAX", "WIDE_DIM", "HNSW_MAX", "DEFAULT_MEMORY_BUDGET"]

FLAT_MAX = 50_000
WIDE_DIM = 512  # rows at least this wide stay flat while they fit the budget
HNSW_MAX = 2_000_000
DEFAULT_MEMORY_BUDGET = 4 << 30  # bytes of raw float32 vectors an index may hold
HNSW_BYTES_PER_LINK = 4  # int32 neighbour ids: 2 M links per vector on level 0


def index_bytes(kind: str, n: int, dim: int, hnsw_m: int = 32) -> int:
    """Approximate memory of an index of ``kind`` over ``n`` vectors of width ``dim``, in bytes."""
    raw = 4 * n * dim
    if kind == "hnsw":
        return raw + n * 2 * hnsw_m * HNSW_BYTES_PER_LINK
    if kind == "ivfpq":
        return n * (min(64, max(1, dim // 4)) + 8)
    return raw + (8 * n if kind == "ivf" else 0)


def choose_kind(n: int, dim: int, *, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> tuple[str, dict, str]:
    """``(kind, params, reason)`` for ``n`` vectors of width ``dim``; ``params`` are overrides of the defaults."""
    if n < 1 or dim < 1:
        raise ValueError(f"need n >= 1 and dim >= 1, got {n}, {dim}")
    if memory_budget < 1:
        raise ValueError(f"memory budget must be positive, got {memory_budget}")
    size = human_bytes(index_bytes("flat", n, dim))
    if index_bytes("flat", n, dim) > memory_budget:
        params = {"k_factor": 0}
        most = TRAIN_BYTES // (4 * dim * MIN_POINTS_PER_LIST)  # lists whose training sample fits TRAIN_BYTES
        if most < min(round(4 * math.sqrt(n)), n // MIN_POINTS_PER_LIST):
            params["nlist"] = max(1, most)
        return "ivfpq", params, (f"{n:,} x {dim} vectors take {size}, over the {human_bytes(memory_budget)} budget: "
                                 "product-quantised codes")
    if n <= FLAT_MAX:
        return "flat", {}, f"{n:,} vectors (<= {FLAT_MAX:,}): exact search"
    if dim >= WIDE_DIM:
        return "flat", {}, (f"{dim}-wide vectors (>= {WIDE_DIM}): exact search; approximate indexes save little "
                            "on wide rows and lose recall on k-mer vectors")
    if n <= HNSW_MAX and index_bytes("hnsw", n, dim) <= memory_budget:
        return "hnsw", {}, f"{n:,} vectors (<= {HNSW_MAX:,}): graph search, slow build, fast queries"
    why = (f" (an hnsw graph would take {human_bytes(index_bytes('hnsw', n, dim))}, over the "
           f"{human_bytes(memory_budget)} budget)" if n <= HNSW_MAX else "")
    return "ivf", {}, f"{n:,} vectors: inverted lists (build in minutes){why}"
