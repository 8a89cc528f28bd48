"""``phylocl search``: the ``k`` nearest database sequences of every query, as a TSV of ranked hits.

Output (written atomically; tab-separated, one header line)::

    query   target   score   rank
    q1      t7       0.93127  1

``score`` is the cosine similarity of the two embeddings (higher = closer), ``rank`` counts from 1 per query.
A hit of a query on the database row with its own id is left out (searching a set against itself), and the next
hit takes its place, so each query still gets ``k`` hits when the database has them.

The database is an index bundle (``--index``, from ``phylocl index``; queries must be embedded by the same model,
which the bundle's fingerprint checks) or a FASTA file (``--db``) embedded on the fly into an exact in-memory
index. Queries are streamed: embedded, searched and written one buffer at a time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, TextIO

import numpy as np

from phylocl.atomic import atomic_path
from phylocl.errors import InputError
from phylocl.outputs import same_file
from phylocl.workflows import progress_bar
from phylocl.sparse_rows import SparseRows
from phylocl.workflows.embedding import DEFAULT_BUFFER, embed_all, embed_buffers, sparse_buffers
from phylocl.workflows.inputs import bind_stream, check_output_file, letter_notes, open_fasta
from phylocl.workflows.models import resolve_model, shipped_models

__all__ = ["SearchResult", "search", "write_hit_rows", "HEADER"]

HEADER = "query\ttarget\tscore\trank\n"


@dataclass
class SearchResult:
    """What :func:`search` wrote: ``n_hits`` rows for ``n_queries`` queries against ``db_size`` sequences."""

    path: Path
    n_queries: int
    n_hits: int
    k: int
    db_size: int
    model: dict
    seconds: float
    notes: list[str] = field(default_factory=list)


def write_hit_rows(f: TextIO, query_ids, db_ids, scores: np.ndarray, indices: np.ndarray) -> int:
    """Write ``query target score rank`` lines for ``(Q, k)`` search results; ``-1`` rows (no hit) are skipped.

    Returns the number of lines written. Scores are printed with 9 significant digits (float32 exact).
    """
    n = 0
    for qid, row_s, row_i in zip(query_ids, scores.tolist(), indices.tolist()):
        rank = 0
        for s, i in zip(row_s, row_i):
            if i < 0:
                continue
            rank += 1
            f.write(f"{qid}\t{db_ids[i]}\t{s:.9g}\t{rank}\n")
        n += rank
    return n


def _model_for_index(model: str | None, index) -> str | None:
    """Without ``--model``, an index names its own embedder when it can: ``kmer:K`` for k-mer profiles, the
    shipped encoder's name for one built with a shipped encoder (else the alphabet's default is tried)."""
    if model is None and index.model.get("kind") == "kmer" and "k" in index.model:
        sketch = index.model.get("sketch_dim")
        return f"kmer:{int(index.model['k'])}" + (f":{int(sketch)}" if sketch else "")
    if model is None and index.model.get("name") in shipped_models():
        return str(index.model["name"])
    return model


def mappable(path) -> bool:
    """Whether the bundle at ``path`` holds a kind FAISS can memory-map (flat, ivf, ivfpq without re-ranking)."""
    import json

    try:
        meta = json.loads((Path(path) / "meta.json").read_text())
    except (OSError, ValueError):
        return False  # load_index names the problem
    return meta.get("kind") in ("flat", "ivf") or (meta.get("kind") == "ivfpq"
                                                  and not meta.get("params", {}).get("k_factor"))


def _embed_database(database, embedder, *, batch_size: int, buffer_size: int, progress: bool, stream):
    """An exact in-memory index over the records of ``database`` (a bound stream): ``(index, x, letters)``; ``x`` is
    ``(N, D)`` rows, or :class:`~phylocl.sparse_rows.SparseRows` and a sparse index for models with sparse rows
    (k-mer profiles: the same hits, a few percent of the memory, and the encoder's sparse path is faster)."""
    from phylocl.retrieval.index import build_index
    from phylocl.retrieval.sparse_build import sparse_index_in_memory
    from phylocl.sparse_rows import concat_rows

    items = ((r.id, r.sequence, None) for r in database)
    with progress_bar("embedding database", enabled=progress, stream=stream) as bar:
        if embedder.sparse:
            parts = list(sparse_buffers(items, embedder, batch_size=batch_size, buffer_size=buffer_size, progress=bar))
            if not parts:
                raise InputError("the database holds no sequences", path=database.path)
            db_x, db_ids = concat_rows([p[0] for p in parts]), [i for p in parts for i in p[1]]
            return sparse_index_in_memory(db_x, ids=db_ids, model=embedder.model_info()), db_x, database.letters
        db_x, db_ids = embed_all(items, embedder, batch_size=batch_size, buffer_size=buffer_size, progress=bar)
    return build_index(db_x, kind="flat", ids=db_ids, model=embedder.model_info()), db_x, database.letters


def _open_index(index, model: str | None, queries, *, device, precision, overlap) -> tuple:
    """Load the index bundle and the model matching it, checked compatible: ``(index, embedder)``."""
    from phylocl.retrieval.index_io import check_compatible, load_index

    ridx = load_index(index, mmap=mappable(index))  # IVF lists are paged in as probed
    # the index's alphabet: kmer:K then matches the index, and queries of the other alphabet are named
    kind = ridx.model.get("alphabet") if ridx.model.get("alphabet") in ("protein", "dna") else queries.kind
    embedder = resolve_model(_model_for_index(model, ridx), alphabet=kind, device=device, precision=precision,
                             overlap=overlap, sparse_only=ridx.kind == "sparse")  # sparse: no torch for profiles
    check_compatible(ridx, embedder.model_info())
    bind_stream(queries, embedder, index=index)
    return ridx, embedder


def _query_chunks(queries, embedder, db_ids, db_x: np.ndarray | None, *, batch_size: int, buffer_size: int,
                  bar, sparse: bool = False) -> Iterator[tuple[np.ndarray | SparseRows, list[str]]]:
    """``((b, D) query embeddings, b ids)`` per buffer; ``db_x`` given: the database holds the queries already;
    ``sparse``: the embeddings as :class:`~phylocl.sparse_rows.SparseRows`."""
    if db_x is not None:  # the database already holds the queries' embeddings
        for lo in range(0, len(db_x), buffer_size):
            hi = min(lo + buffer_size, len(db_x))
            bar.update(hi - lo)
            yield db_x.slice(lo, hi) if sparse else db_x[lo:hi], db_ids[lo:hi]
        return
    records = ((r.id, r.sequence, None) for r in queries)
    buffers = sparse_buffers if sparse else embed_buffers  # a sparse index takes the rows in sparse form
    for x, ids, _ in buffers(records, embedder, batch_size=batch_size, buffer_size=buffer_size, progress=bar):
        yield x, ids


def search(*, query: str | Path, out: str | Path, model: str | None = None, db: str | Path | None = None,
           index: str | Path | None = None, k: int = 50, batch_size: int = 64, device: str | None = None,
           precision: str = "fp32", overlap: float | None = None, buffer_size: int = DEFAULT_BUFFER,
           progress: bool = True, stream=None, alphabet: str | None = None, strict: bool = False) -> SearchResult:
    """Search the queries of FASTA ``query`` against ``db`` (FASTA) or ``index`` (bundle) and write ``out``.

    Args:
        model: model spec; ``None``: the index's own ``kmer:K`` if it was built on k-mers, else
            the best measured method of the alphabet. With ``index``, ``kmer:K`` and the default use the index's alphabet.
        k: hits per query (``>= 1``; more than the database holds gives every database row).
        alphabet: of the query (and ``db``) FASTA: ``None``/``"auto"`` (detected), ``"protein"`` or ``"dna"``.
        strict: refuse internal stops, rare and ambiguous letters instead of reading them as unknown.
        batch_size, buffer_size, device, precision, overlap, progress, stream: as in
            :func:`~phylocl.workflows.embed.embed`.

    Returns a :class:`SearchResult`. Raises :class:`InputError` (and writes nothing) on bad input, including an
    index built with another model.
    """
    start = time.perf_counter()
    if k < 1:
        raise InputError(f"-k must be >= 1, got {k}")
    if (db is None) == (index is None):
        raise InputError("give exactly one database: --db FASTA or --index INDEX")
    out = check_output_file(out, inputs=[p for p in (query, db, index, model) if p is not None])
    same = db is not None and same_file(query, db)
    queries = open_fasta(query, alphabet=alphabet, strict=strict)  # each input is opened once: pipes work
    db_x = letters = None
    if index is not None:
        ridx, embedder = _open_index(index, model, queries, device=device, precision=precision, overlap=overlap)
    else:
        embedder = resolve_model(model, alphabet=queries.kind, device=device, precision=precision, overlap=overlap)
        database = bind_stream(queries if same else open_fasta(db, alphabet=alphabet, strict=strict), embedder)
        bind_stream(queries, embedder)
        ridx, db_x, letters = _embed_database(database, embedder, batch_size=batch_size, buffer_size=buffer_size,
                                              progress=progress, stream=stream)
    k_eff = max(1, min(k, ridx.ntotal))  # memory follows the database, not -k
    n_queries = n_hits = 0
    bar = progress_bar("searching", unit="queries", enabled=progress, stream=stream)
    with bar, atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(HEADER)
        chunks = _query_chunks(queries, embedder, ridx.ids, db_x if same else None, batch_size=batch_size,
                               buffer_size=buffer_size, bar=bar, sparse=ridx.kind == "sparse")
        for x, ids in chunks:
            scores, rows = ridx.search(x, k_eff, exclude_ids=ids)  # (b, k) each
            n_hits += write_hit_rows(f, ids, ridx.ids, scores, rows)
            n_queries += len(ids)
    notes = letter_notes(queries.letters) + (letter_notes(letters) if letters is not None and not same else [])
    return SearchResult(path=out, n_queries=n_queries, n_hits=n_hits, k=k, db_size=ridx.ntotal,
                        model=embedder.model_info(), seconds=time.perf_counter() - start, notes=notes)
