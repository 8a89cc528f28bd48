"""``--windows W`` of ``index``, ``search`` and ``evaluate``: sequences embedded as windows of ``W`` residues.

Each sequence is cut by :func:`~phylocl.retrieval.windowed.window_pieces` into **tiles**: windows of ``W`` residues
at stride ``W - span + 1`` (``span``: the residues one of the model's words spans), so consecutive windows share
exactly the ``span - 1`` residues that put every word of the sequence whole in one window, and the last window is
flush with the end. Every window is embedded by the model's sparse path as a sequence of its own; a database
sequence then scores its best window pair with the query (:class:`~phylocl.retrieval.windowed.WindowedIndex`).
Only models with sparse rows (``kmer:K``, k-mer profile encoders at fp32) take windows, and ``W`` must be at least
twice the model's word span. ``--windows 0`` is one row per sequence.

A model may name its own default width: ``search.json`` ``{"windows": W}`` in its folder (the shipped
``default-protein``: 200, measured in docs/retrieval.md), read by
:func:`~phylocl.models.model_files.default_windows`; ``index --fasta``,
``search --db`` and ``evaluate`` then use windows of ``W`` unless given ``--windows`` (``0``: whole rows); a
``--word-budget`` applies to windows as to whole rows. Bundles record their cut (``params`` ``{"window", "stride"}``) and are
searched with it: a bundle from before tiles (stride ``W // 2``) keeps its cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Iterator

from phylocl.errors import InputError
from phylocl.workflows.embed_buffers import DEFAULT_BUFFER, Item, _chunks, parallel_buffers

if TYPE_CHECKING:
    from phylocl.retrieval.windowed import WindowRows
    from phylocl.workflows.model_spec import ResolvedModel

__all__ = ["WindowCut", "word_span", "check_windows", "resolve_windows", "window_buffers", "embed_windows",
           "index_windows"]


@dataclass(frozen=True)
class WindowCut:
    """Windows of ``width`` residues at ``stride`` (the last flush with the sequence's end)."""

    width: int
    stride: int

    def params(self) -> dict:
        """The ``params`` record of a windowed index: ``{"window": W, "stride": S}``."""
        return {"window": self.width, "stride": self.stride}


def word_span(embedder: ResolvedModel) -> int:
    """Residues one word of the model spans: ``k`` for ``kmer:K``, the longest seed pattern of a k-mer profile
    encoder (``k + 1`` with its one-gap patterns); ``1`` when the model says neither
    (:func:`phylocl.models.patterns.word_span`)."""
    from phylocl.models.patterns import word_span as span_of

    return max(1, span_of(embedder.model))


def check_windows(width, embedder: ResolvedModel) -> WindowCut | None:
    """The tiles of ``width`` for ``embedder`` after checking they suit it (``0``: ``None``, one row per sequence);
    raises :class:`InputError` (one line) otherwise."""
    from phylocl.arguments import is_whole, option

    if not is_whole(width) or width < 0:  # numpy's integers too
        raise InputError(f"{option('windows')} must be a positive number of residues (0: one row per sequence), got "
                         f"{width!r}")
    width = int(width)
    if width == 0:
        return None
    if not embedder.sparse:
        raise InputError(f"--windows needs a model with sparse rows (kmer:K or a k-mer profile encoder such as "
                         f"default-protein, at fp32); {embedder.name} gives dense rows")
    span = word_span(embedder)
    if width < max(2, 2 * span):
        raise InputError(f"--windows {width} is too small for {embedder.name}, whose words span {span} residues: "
                         f"use at least {max(2, 2 * span)}, so that every word lies whole in a window")
    from phylocl.retrieval.windowed import window_stride  # the retrieval layer: only when windows are asked for

    return WindowCut(width=width, stride=window_stride(width, span))


def resolve_windows(width: int | None, embedder: ResolvedModel) -> WindowCut | None:
    """The cut a run builds from sequences: ``width`` if given (``0``: none), else the model's default
    (``embedder.default_windows``, from :func:`~phylocl.models.model_files.default_windows`). A model whose default
    windows its precision cannot cut (``default-protein`` at bf16: no sparse rows) is refused, naming ``--windows 0``:
    it was embedded as whole rows without a word, other figures and hits than its default's."""
    if width is None:
        width = embedder.default_windows
        if width is None:
            return None
        if not embedder.sparse:
            from phylocl.arguments import setting

            raise InputError(f"{embedder.name} is used as windows of {width} residues, which need its sparse rows "
                             f"at fp32; drop {setting('precision', embedder.precision)}, or give "
                             f"{setting('windows', 0)} to embed whole sequences at {embedder.precision}")
    return check_windows(width, embedder)


def window_buffers(items: Iterable[Item], embedder: ResolvedModel, cut: WindowCut, *, batch_size: int = 64,
                   buffer_size: int = DEFAULT_BUFFER, progress=None,
                   workers: int = 1) -> Iterator[tuple["WindowRows", list[str], list]]:
    """As :func:`~phylocl.workflows.embed_buffers.sparse_buffers`, one :class:`WindowRows` per buffer of
    ``buffer_size`` sequences cut by ``cut``: ``(windows, ids, labels)`` (one id and label per sequence, input
    order); ``workers``: processes that embed parts of each buffer (the same rows)."""
    from phylocl.retrieval.windowed import WindowRows, concat_windows, window_pieces

    def embed(buf: list[Item]) -> WindowRows:
        pieces, owners = window_pieces([s for _, s, _ in buf], cut.width, cut.stride)
        rows = embedder.embed_sparse(pieces, batch_size=batch_size)  # (W,) window rows
        return WindowRows(rows=rows, owners=owners, n=len(buf))

    for buf, rows in parallel_buffers(_chunks(items, batch_size, buffer_size), embed, concat_windows,
                                      workers if not embedder.is_encoder else 1):
        if progress is not None:
            progress.update(len(buf))
        yield rows, [i for i, _, _ in buf], [lab for _, _, lab in buf]


def embed_windows(items: Iterable[Item], embedder: ResolvedModel, cut: WindowCut, *, batch_size: int = 64,
                  buffer_size: int = DEFAULT_BUFFER, progress=None,
                  workers: int = 1) -> tuple["WindowRows | None", list[str]]:
    """Every item's windows in memory: ``(windows, ids)`` (``None`` for no items)."""
    from phylocl.retrieval.windowed import concat_windows

    parts, ids = [], []
    for rows, chunk_ids, _ in window_buffers(items, embedder, cut, batch_size=batch_size, buffer_size=buffer_size,
                                             progress=progress, workers=workers):
        parts.append(rows)
        ids.extend(chunk_ids)
    return (concat_windows(parts) if parts else None), ids


def index_windows(index, windows: int | None, *, path) -> WindowCut | None:
    """The cut a search of ``index`` uses: the bundle's own (``None`` for whole-sequence rows; a bundle without a
    recorded stride: ``W // 2``); refuses a ``windows`` that differs from it (``0``: whole rows)."""
    own = index.params.get("window") if getattr(index, "n_rows", None) is not None else None
    if windows and own is None:
        raise InputError(f"--windows {windows}: this index holds one row per sequence; rebuild it with "
                         f"`phylocl index --fasta DB --windows {windows}` (or drop --windows)", path=path)
    if windows is not None and own is not None and windows != own:
        raise InputError(f"--windows {windows}: this index was built with windows of {own} residues; drop "
                         "--windows (the index's own width is used) or rebuild the index", path=path)
    if own is None:
        return None
    from phylocl.retrieval.windowed import window_stride

    return WindowCut(width=int(own), stride=int(index.params.get("stride", window_stride(int(own)))))
