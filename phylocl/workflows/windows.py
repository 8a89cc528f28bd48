"""``--windows W`` of ``index``, ``search`` and ``evaluate``: sequences embedded as windows of ``W`` residues.

Each sequence is cut by :func:`~phylocl.retrieval.windowed.window_pieces` (stride ``W // 2``) and every window is
embedded by the model's sparse path as a sequence of its own; a database sequence then scores its best window pair
with the query (:class:`~phylocl.retrieval.windowed.WindowedIndex`). Only models with sparse rows (``kmer:K``,
k-mer profile encoders at fp32) take windows, and ``W`` must be at least twice the model's word span, so that
every word of a sequence lies whole in one of its windows (consecutive windows share ``W - W // 2`` residues).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Iterator

from phylocl.errors import InputError
from phylocl.workflows.embed_buffers import DEFAULT_BUFFER, Item, _chunks
from phylocl.workflows.model_spec import ResolvedModel

if TYPE_CHECKING:
    from phylocl.retrieval.windowed import WindowRows

__all__ = ["word_span", "check_windows", "window_params", "window_buffers", "embed_windows"]


def word_span(embedder: ResolvedModel) -> int:
    """Residues one word of the model spans: ``k`` for ``kmer:K``, the longest seed pattern of a k-mer profile
    encoder (``k + 1`` with its one-gap patterns); ``1`` when the model says neither."""
    model = embedder.model
    for holder in (model, getattr(model, "backbone", None)):
        patterns = getattr(holder, "patterns", None)
        if patterns:
            return max(len(p) for p in patterns)
    for holder in (model, getattr(model, "backbone", None)):
        if isinstance(getattr(holder, "k", None), int):
            return int(holder.k)
    return 1


def check_windows(width, embedder: ResolvedModel) -> int:
    """``width`` as an int after checking it suits ``embedder``; raises :class:`InputError` (one line) otherwise."""
    if isinstance(width, bool) or not isinstance(width, int) or width <= 0:
        raise InputError(f"--windows must be a positive number of residues, got {width}")
    if not embedder.sparse:
        raise InputError(f"--windows needs a model with sparse rows (kmer:K or a k-mer profile encoder such as "
                         f"default-protein, at fp32); {embedder.name} gives dense rows")
    span = word_span(embedder)
    if width < max(2, 2 * span):
        raise InputError(f"--windows {width} is too small for {embedder.name}, whose words span {span} residues: "
                         f"use at least {max(2, 2 * span)}, so that every word lies whole in a window")
    return width


def window_params(width: int) -> dict:
    """The ``params`` record of a windowed index: ``{"window": W, "stride": W // 2}``."""
    from phylocl.retrieval.windowed import window_stride  # imports FAISS: only when windows are asked for

    return {"window": int(width), "stride": window_stride(width)}


def window_buffers(items: Iterable[Item], embedder: ResolvedModel, width: int, *, batch_size: int = 64,
                   buffer_size: int = DEFAULT_BUFFER, progress=None) -> Iterator[tuple["WindowRows", list[str], list]]:
    """As :func:`~phylocl.workflows.embed_buffers.sparse_buffers`, one :class:`WindowRows` per buffer of
    ``buffer_size`` sequences: ``(windows, ids, labels)`` (one id and label per sequence, input order)."""
    from phylocl.retrieval.windowed import WindowRows, window_pieces

    for buf in _chunks(items, batch_size, buffer_size):
        pieces, owners = window_pieces([s for _, s, _ in buf], width)
        rows = embedder.embed_sparse(pieces, batch_size=batch_size)  # (W,) window rows
        if progress is not None:
            progress.update(len(buf))
        yield WindowRows(rows=rows, owners=owners, n=len(buf)), [i for i, _, _ in buf], [lab for _, _, lab in buf]


def embed_windows(items: Iterable[Item], embedder: ResolvedModel, width: int, *, batch_size: int = 64,
                  buffer_size: int = DEFAULT_BUFFER, progress=None) -> tuple["WindowRows | None", list[str]]:
    """Every item's windows in memory: ``(windows, ids)`` (``None`` for no items)."""
    from phylocl.retrieval.windowed import concat_windows

    parts, ids = [], []
    for rows, chunk_ids, _ in window_buffers(items, embedder, width, batch_size=batch_size, buffer_size=buffer_size,
                                             progress=progress):
        parts.append(rows)
        ids.extend(chunk_ids)
    return (concat_windows(parts) if parts else None), ids


def index_windows(index, windows: int | None, *, path) -> int | None:
    """The window width a search of ``index`` uses: the bundle's own (``None`` for whole-sequence rows); refuses a
    ``windows`` that differs from it, and ``windows`` for a bundle of whole-sequence rows."""
    own = index.params.get("window") if getattr(index, "n_rows", None) is not None else None
    if windows is not None and own is None:
        raise InputError(f"--windows {windows}: this index holds one row per sequence; rebuild it with "
                         f"`phylocl index --fasta DB --windows {windows}` (or drop --windows)", path=path)
    if windows is not None and windows != own:
        raise InputError(f"--windows {windows}: this index was built with windows of {own} residues; drop "
                         "--windows (the index's own width is used) or rebuild the index", path=path)
    return own
