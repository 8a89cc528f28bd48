"""The one path from sequences to embedding rows: buffers sorted by length, embedded a batch at a time.

Records are read in buffers of ``buffer_size`` (default 8,192); each buffer is sorted by length (longest first,
so similar lengths share a batch, little padding is computed and an out-of-memory shows up at once), embedded
``batch_size`` sequences at a time by a :class:`~phylocl.workflows.model_spec.ResolvedModel` and put back in input
order. Used by ``embed``, ``search`` and ``evaluate``.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence, TypeVar

import numpy as np
from phylocl.errors import InputError
from phylocl.sparse_rows import SparseRows, concat_rows
from phylocl.workflows.model_spec import ResolvedModel

if TYPE_CHECKING:  # a type only: the bar itself comes from phylocl.workflows.progress_bar
    from tqdm import tqdm

__all__ = ["embed_buffers", "sparse_buffers", "embed_all", "embed_workers", "parallel_buffers", "DEFAULT_BUFFER",
           "Item", "MIN_PARALLEL_RESIDUES", "check_sizes", "check_counts"]

DEFAULT_BUFFER = 8192  # records embedded per buffer
Item = tuple[str, str, "str | None"]  # (id, sequence, label)
MIN_PARALLEL_RESIDUES = 500_000  # a first buffer of fewer residues is embedded in this process (~0.5 s of
# default-protein's NumPy rows; forking two workers costs 15-60 ms, a 3-sequence search ~0.3 s in all)
T = TypeVar("T")


def _embed_buffer(buf: list[Item], embedder: ResolvedModel, batch_size: int, progress: tqdm | None):
    seqs = [s for _, s, _ in buf]
    order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))  # longest first: OOM shows up at once
    x = np.empty((len(seqs), embedder.dim), dtype=np.float32)  # (B, D), input order
    for lo in range(0, len(order), batch_size):
        rows = order[lo:lo + batch_size]
        z = embedder.embed([seqs[i] for i in rows], batch_size=batch_size)  # (b, D)
        if z.shape != (len(rows), embedder.dim):
            raise RuntimeError(f"{embedder.name} returned shape {z.shape} for {len(rows)} sequences")
        x[rows] = z
        if progress is not None:
            progress.update(len(rows))
    return x, [i for i, _, _ in buf], [lab for _, _, lab in buf]


def check_sizes(batch_size: int, buffer_size: int) -> None:
    """Raise :class:`InputError` naming the argument (``--batch-size`` on the command line) unless both the batch
    size and the buffer size are whole numbers >= 1 (not a bool, not 2.5)."""
    check_counts(batch_size=batch_size, buffer_size=buffer_size)


def check_counts(**counts) -> None:
    """Raise :class:`InputError` naming the first argument (as :func:`~phylocl.arguments.option` names it) that is
    not a whole number >= 1; ``None`` values are skipped."""
    from phylocl.arguments import is_whole, option

    for name, value in counts.items():
        if value is not None and (not is_whole(value) or value < 1):
            raise InputError(f"{option(name)} must be a whole number >= 1, got {value!r}")


def _chunks(items: Iterable[Item], batch_size: int, buffer_size: int) -> Iterator[list[Item]]:
    """``items`` in lists of ``buffer_size`` (the last may be shorter); sizes checked before the first is read."""
    check_sizes(batch_size, buffer_size)
    buf: list[Item] = []
    for item in items:
        buf.append(item)
        if len(buf) == buffer_size:
            yield buf
            buf = []
    if buf:
        yield buf


def embed_buffers(items: Iterable[Item], embedder: ResolvedModel, *, batch_size: int = 64,
                  buffer_size: int = DEFAULT_BUFFER, progress: tqdm | None = None
                  ) -> Iterator[tuple[np.ndarray, list[str], list]]:
    """Embed ``(id, sequence, label)`` items buffer by buffer.

    Yields ``(x (B, D) float32, ids (B,), labels (B,))`` per buffer of at most ``buffer_size`` items, rows in
    input order. ``progress`` (if given) is advanced after every batch.
    """
    for buf in _chunks(items, batch_size, buffer_size):
        yield _embed_buffer(buf, embedder, batch_size, progress)


def sparse_buffers(items: Iterable[Item], embedder: ResolvedModel, *, batch_size: int = 64,
                   buffer_size: int = DEFAULT_BUFFER, progress: tqdm | None = None, workers: int = 1
                   ) -> Iterator[tuple[SparseRows, list[str], list]]:
    """As :func:`embed_buffers`, in the sparse form of :meth:`ResolvedModel.embed_sparse`: ``(rows, ids, labels)``
    per buffer, input order (the encoder path sorts its windows by length itself); ``workers``: processes that
    embed parts of each buffer (:func:`parallel_buffers`; the same rows)."""
    def embed(buf: list[Item]) -> SparseRows:
        return embedder.embed_sparse([s for _, s, _ in buf], batch_size=batch_size)

    for buf, rows in parallel_buffers(_chunks(items, batch_size, buffer_size), embed, concat_rows,
                                      workers if not embedder.is_encoder else 1):
        if progress is not None:
            progress.update(len(buf))
        yield rows, [i for i, _, _ in buf], [lab for _, _, lab in buf]


def embed_workers(threads: int | None) -> int:
    """Processes that embed a database's sparse rows for a command's ``--threads``: ``threads``; ``None``: all cores
    (``OMP_NUM_THREADS`` when set)."""
    from phylocl.retrieval.sparse_index import default_threads

    from phylocl.align.workers import usable_cpus

    check_counts(threads=threads)  # threads=0 or 2.5 ran as 0 / 2 workers
    return default_threads() if threads is None else min(int(threads), usable_cpus())  # more only queue up


def parallel_buffers(buffers: Iterable[list[Item]], embed: Callable[[list[Item]], T],
                     combine: Callable[[list[T]], T], workers: int) -> Iterator[tuple[list[Item], T]]:
    """``(buf, embed(buf))`` for each buffer, in order. With ``workers > 1`` each buffer is cut into ``workers``
    consecutive parts embedded in forked processes (:class:`~phylocl.align.workers.OrderedPool`) and the results
    joined by ``combine``; the next buffer's parts are handed out before a buffer is returned, so the workers embed
    while the caller writes. ``embed`` must give each sequence's rows whatever sequences it is called with (true of
    the NumPy k-mer paths: the same bytes, tested), and must not use torch, which does not survive a fork: callers
    pass ``workers=1`` for encoders with weights. A first buffer under :data:`MIN_PARALLEL_RESIDUES` residues keeps
    everything in this process (a small database; a fork would cost more than it saves)."""
    buffers = iter(buffers)
    first = next(buffers, None)
    if first is None:
        return
    if workers <= 1 or sum(len(s) for _, s, _ in first) < MIN_PARALLEL_RESIDUES:
        for buf in _chain(first, buffers):
            yield buf, embed(buf)
        return
    from phylocl.align.workers import OrderedPool

    with OrderedPool(embed, workers=workers) as pool:
        pending: deque = deque()
        for buf in _chain(first, buffers):
            step = -(-len(buf) // workers)
            pending.append((buf, [pool.submit(buf[lo:lo + step]) for lo in range(0, len(buf), step)]))
            if len(pending) > 1:
                done, handles = pending.popleft()
                yield done, combine([h.get() for h in handles])
        while pending:
            done, handles = pending.popleft()
            yield done, combine([h.get() for h in handles])


def _chain(first: list[Item], rest: Iterator[list[Item]]) -> Iterator[list[Item]]:
    yield first
    yield from rest


def embed_all(items: Sequence[Item] | Iterable[Item], embedder: ResolvedModel, *, batch_size: int = 64,
              buffer_size: int = DEFAULT_BUFFER, progress: tqdm | None = None) -> tuple[np.ndarray, list[str]]:
    """Embed every item into memory: ``(x (N, D) float32, ids (N,))``."""
    parts, ids = [], []
    for x, chunk_ids, _ in embed_buffers(items, embedder, batch_size=batch_size, buffer_size=buffer_size,
                                         progress=progress):
        parts.append(x)
        ids.extend(chunk_ids)
    x = np.concatenate(parts) if parts else np.zeros((0, embedder.dim), dtype=np.float32)
    return x, ids
