"""Index kinds and their parameter defaults, in one place: the rules :func:`default_params` applies and the help
text of ``phylocl index`` (:data:`PARAM_HELP`) are both made from the constants below.

Pure Python (no FAISS import), so the command line can show the defaults without loading FAISS.
"""

from __future__ import annotations

import math
import warnings

__all__ = ["INDEX_KINDS", "PARAM_NAMES", "default_params", "default_nlist", "default_nprobe", "PARAM_HELP",
           "MIN_POINTS_PER_LIST", "TRAIN_BYTES", "TRAIN_POINTS_PER_LIST", "NLIST_PER_SQRT_N", "NPROBE_DIVISOR", "HNSW_DEFAULTS",
           "PQ_DEFAULTS"]

INDEX_KINDS = ("flat", "ivf", "hnsw", "ivfpq")
MIN_POINTS_PER_LIST = 39  # FAISS's own minimum of training points per centroid
TRAIN_BYTES = 1 << 30  # training samples are cut to this many bytes (but keep >= 39 points per list)
TRAIN_POINTS_PER_LIST = 64  # k-means training sample per list (FAISS would subsample at 256)
NLIST_PER_SQRT_N = 4  # nlist = NLIST_PER_SQRT_N * sqrt(N), capped at N / MIN_POINTS_PER_LIST
NPROBE_DIVISOR = 3  # nprobe = ceil(nlist / NPROBE_DIVISOR)
HNSW_DEFAULTS = {"hnsw_m": 32, "ef_construction": 80, "ef_search": 256}
PQ_DEFAULTS = {"pq_nbits": 8, "k_factor": 4, "pq_m_max": 64}  # pq_m: largest divisor of D <= min(64, D / 4)
PARAM_NAMES = {"flat": set(), "ivf": {"nlist", "nprobe"}, "hnsw": set(HNSW_DEFAULTS),
               "ivfpq": {"nlist", "nprobe", "pq_m", "pq_nbits", "k_factor"}}

PARAM_HELP = {
    "nlist": f"ivf/ivfpq: inverted lists (default min({NLIST_PER_SQRT_N} sqrt(N), N/{MIN_POINTS_PER_LIST}))",
    "nprobe": f"ivf/ivfpq: lists visited per query (default ceil(nlist/{NPROBE_DIVISOR}))",
    "ef_search": f"hnsw: search breadth (default {HNSW_DEFAULTS['ef_search']})",
}


def default_nlist(n: int) -> int:
    """Inverted lists for ``n`` vectors: ``min(NLIST_PER_SQRT_N sqrt(n), n // MIN_POINTS_PER_LIST)``."""
    return min(round(NLIST_PER_SQRT_N * math.sqrt(n)), n // MIN_POINTS_PER_LIST)


def default_nprobe(nlist: int) -> int:
    """Lists visited per query: ``ceil(nlist / NPROBE_DIVISOR)``."""
    return math.ceil(nlist / NPROBE_DIVISOR)


def _largest_divisor(d: int, limit: int) -> int:
    return max(m for m in range(1, max(1, limit) + 1) if d % m == 0)


def _ivf_params(kind: str, n: int, dim: int, o: dict) -> dict:
    most = n // MIN_POINTS_PER_LIST
    nlist = int(o.get("nlist", default_nlist(n)))
    if nlist > most:
        warnings.warn(f"nlist={nlist} needs >= {nlist * MIN_POINTS_PER_LIST} vectors; clamped to {most}",
                      stacklevel=4)
        nlist = most
    if nlist < 1:
        raise ValueError(f"nlist must be >= 1, got {nlist}")
    params = {"nlist": nlist, "nprobe": max(1, min(nlist, int(o.get("nprobe", default_nprobe(nlist)))))}
    if kind == "ivfpq":
        params["pq_m"] = int(o.get("pq_m", _largest_divisor(dim, min(PQ_DEFAULTS["pq_m_max"], dim // 4))))
        params["pq_nbits"] = int(o.get("pq_nbits", PQ_DEFAULTS["pq_nbits"]))
        params["k_factor"] = int(o.get("k_factor", PQ_DEFAULTS["k_factor"]))
        if dim % params["pq_m"]:
            raise ValueError(f"pq_m={params['pq_m']} must divide the dimension {dim}")
        if not 1 <= params["pq_nbits"] <= 16 or params["k_factor"] < 0:
            raise ValueError("pq_nbits must be in 1..16 and k_factor >= 0")
    return params


MIN_PQ_NBITS = 4  # the smallest codebooks (16 words) an automatic fallback uses


def default_params(kind: str, n: int, dim: int, **overrides) -> tuple[str, dict]:
    """Resolve ``(kind, params)`` for ``n`` vectors of width ``dim``; ``overrides`` replace defaults.

    Returns the kind actually used (after small-``n`` fallbacks) and its complete parameter dict.
    """
    if kind not in INDEX_KINDS:
        raise ValueError(f"unknown index kind {kind!r}; choose one of {list(INDEX_KINDS)}")
    unknown = set(k for k, v in overrides.items() if v is not None) - PARAM_NAMES[kind]
    if unknown:
        raise ValueError(f"{kind} index does not take {sorted(unknown)}")
    o = {k: v for k, v in overrides.items() if v is not None}
    nbits = o.get("pq_nbits", PQ_DEFAULTS["pq_nbits"])
    if kind == "ivfpq" and n < MIN_POINTS_PER_LIST * 2 ** nbits and "pq_nbits" not in o:
        fit = next((b for b in range(nbits - 1, MIN_PQ_NBITS - 1, -1) if n >= MIN_POINTS_PER_LIST * 2 ** b), None)
        if fit is not None:  # smaller codebooks train on fewer vectors, and the codes stay as small
            warnings.warn(f"ivfpq's {2 ** nbits}-word codebooks need >= {MIN_POINTS_PER_LIST * 2 ** nbits} vectors "
                          f"to train, got {n}: {2 ** fit}-word codebooks (pq_nbits={fit}) instead", stacklevel=3)
            o["pq_nbits"] = nbits = fit
    if kind == "ivfpq" and n < MIN_POINTS_PER_LIST * 2 ** nbits:
        warnings.warn(f"ivfpq needs >= {MIN_POINTS_PER_LIST * 2 ** nbits} vectors to train its "
                      f"codebooks, got {n}; building an ivf index instead, which holds the vectors whole, not as "
                      "codes", stacklevel=3)
        kind, o = "ivf", {k: v for k, v in o.items() if k in PARAM_NAMES["ivf"]}
    if kind in ("ivf", "ivfpq"):
        if n // MIN_POINTS_PER_LIST < 2:
            warnings.warn(f"ivf needs >= {2 * MIN_POINTS_PER_LIST} vectors to train, got {n}; "
                          "building a flat index instead", stacklevel=3)
            return "flat", {}
        return kind, _ivf_params(kind, n, dim, o)
    if kind == "hnsw":
        params = {name: int(o.get(name, value)) for name, value in HNSW_DEFAULTS.items()}
        if min(params.values()) < 1:
            raise ValueError(f"hnsw parameters must be >= 1, got {params}")
        return kind, params
    return kind, {}
