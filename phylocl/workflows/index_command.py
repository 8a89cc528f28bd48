"""``phylocl index``: an embeddings file in, a FAISS index bundle out (inner product = cosine similarity).

The bundle (:mod:`phylocl.retrieval.index_io`) records the embedding model (fingerprint, name, dimension), the
row ids and, when the embeddings were labelled, the family labels; ``phylocl search --index`` refuses queries
embedded by any other model.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from phylocl.errors import InputError
from phylocl.retrieval.sequence_store import OFFSETS_FILE, SEQUENCES_FILE

__all__ = ["IndexResult", "build_index_file", "check_index_destination", "index_lock"]


@dataclass
class IndexResult:
    """What :func:`build_index_file` wrote: an index of ``kind`` over ``n`` vectors of width ``dim``."""

    path: Path
    kind: str
    n: int
    dim: int
    params: dict
    model: dict
    seconds: float
    notes: list[str] = field(default_factory=list)


def check_index_destination(path: str | Path) -> Path:
    """Refuse to replace anything at ``path`` that is not an earlier index bundle (a file, a non-index folder).

    Temporaries that killed index builds left in the same folder (any name, writer dead) are swept first.
    """
    from phylocl.atomic import sweep_stale_in
    from phylocl.outputs import check_output_dir, refuse_foreign_files

    path = Path(path)
    sweep_stale_in(path.parent if str(path.parent) else Path("."))
    if path.is_file():
        raise InputError("exists and is a file; an index is a folder (choose another name)", path=path)
    check_output_dir(path)  # not a device or pipe, not under /proc, parent a writable folder
    if path.is_dir() and any(path.iterdir()) and not (path / "meta.json").is_file():
        raise InputError("exists and is not a phylocl index folder; refusing to replace it", path=path)
    if path.is_dir():
        refuse_foreign_files(path, _BUNDLE_FILES, what="an index bundle")
    return path


# every name an index bundle of phylocl holds (FAISS and sparse kinds, windows, row-block bounds, the stored
# sequences, checksums): the rest is the user's
_BUNDLE_FILES = frozenset({"meta.json", "rows.npz", "index.faiss", "ptr.npy", "rows.npy", "values.npy", "dense.npy",
                           "basis.npy", "checksums.json", "owners.npy", "blocks.npy", SEQUENCES_FILE, OFFSETS_FILE})



def build_index_file(*, embeddings: str | Path, out: str | Path, kind: str = "auto", seed: int = 0,
                     threads: int | None = None, memory_budget: int | None = None, **params) -> IndexResult:
    """Build an index of ``kind`` over the embeddings file and save it as a bundle folder at ``out``.

    The rows are memory-mapped and added in batches, so memory is about the index's own size.

    Args:
        embeddings: an ``.npz`` written by ``phylocl embed``.
        kind: ``auto`` (from the size: :mod:`phylocl.retrieval.index_choice`), ``flat``, ``ivf``, ``hnsw`` or
            ``ivfpq`` (see :mod:`phylocl.retrieval.index`). memory_budget: bytes of raw vectors ``auto`` allows.
        seed: seed of the IVF / PQ training; threads: FAISS threads (default: FAISS's own).
        params: index parameters (``nlist``, ``nprobe``, ``ef_search`` ...), ``None`` = default.

    Returns an :class:`IndexResult`; ``notes`` holds the reason of an ``auto`` choice and FAISS fallbacks (too few
    vectors for ``ivf`` ...).
    """
    from phylocl.retrieval.index import INDEX_KINDS

    start = time.perf_counter()
    if kind not in (*INDEX_KINDS, "auto"):
        raise InputError(f"unknown index type {kind!r}; choose auto or one of {', '.join(INDEX_KINDS)}")
    if memory_budget is not None and memory_budget <= 0:
        raise InputError(f"the memory budget must be positive, got {memory_budget}")
    from phylocl.arguments import is_whole, option

    for name, value in params.items():
        if value is not None and (not is_whole(value) or value < 1):  # nlist=2.5 was taken, '3' a TypeError
            raise InputError(f"{option(name)} must be {'' if is_whole(value) else 'a whole number '}>= 1, got "
                             f"{value!r}")
    out = check_index_destination(out)
    with index_lock(out):
        return _build_index_file(start, embeddings=embeddings, out=out, kind=kind, seed=seed, threads=threads,
                                 memory_budget=memory_budget, **params)


def index_lock(out: Path):
    """The lock of the index folder ``out`` (``.<name>.lock`` beside it) while a build writes it: a second
    ``phylocl index -o`` of the same folder is refused at once (both builds reported success, the folder holding
    whichever finished last)."""
    from phylocl.workflows.run_folder import output_lock

    return output_lock(out, command="index")


def _build_index_file(start: float, *, embeddings, out: Path, kind: str, seed: int, threads, memory_budget,
                      **params) -> IndexResult:
    """:func:`build_index_file` once its options are checked and ``out`` is locked."""
    from phylocl.arguments import is_whole, option
    from phylocl.retrieval.embedding_files import load_embeddings
    from phylocl.retrieval.index import build_index, threads_within

    emb = load_embeddings(embeddings, mmap=True)
    if threads is not None:
        if not is_whole(threads) or threads < 1:
            raise InputError(f"{option('threads')} must be {'' if is_whole(threads) else 'a whole number '}>= 1, "
                             f"got {threads!r}")
    with threads_within(threads), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            index = build_index(emb.embeddings, kind=kind, ids=emb.ids, labels=emb.labels, model=emb.model,
                                seed=seed, memory_budget=memory_budget, **params)
        except ValueError as err:
            if kind == "auto":
                raise InputError(f"cannot build the index: {err} (--kind auto chose that kind for these "
                                 f"{len(emb.ids):,} vectors; give --kind to choose one that takes these options)"
                                 ) from None
            raise InputError(f"cannot build the {kind} index: {err}") from None
    index.save(out)
    notes = ([f"chose {index.reason}"] if index.reason else []) + [str(w.message) for w in caught]
    return IndexResult(path=out, kind=index.kind, n=index.ntotal, dim=index.dim, params=index.params,
                       model=index.model, seconds=time.perf_counter() - start, notes=notes)
