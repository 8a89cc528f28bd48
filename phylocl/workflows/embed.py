"""``phylocl embed``: sequences in, an embeddings file out, streamed so any FASTA size fits in memory.

Records are read in buffers of ``buffer_size`` (default 8,192); each buffer is sorted by length (longest first,
so similar lengths share a batch and little padding is computed), embedded ``batch_size`` sequences at a time,
put back in input order and appended to an :class:`~phylocl.retrieval.embeddings.EmbeddingWriter`. Memory held:
one buffer of sequences and its embeddings plus the ids; the output file appears only once every row is in
(a failure or Ctrl-C leaves no file). :func:`fasta_records` and :func:`embed_buffers` are shared with
``search`` and ``evaluate``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from phylocl.data.fasta import FastaRecord, detect_kind, looks_like_protein, nucleotide_fraction, parse_fasta
from phylocl.errors import InputError
from phylocl.progress import Progress
from phylocl.workflows.models import Embedder, resolve_model

__all__ = ["EmbedResult", "embed", "embed_buffers", "embed_all", "fasta_records", "fasta_alphabet",
           "read_labelled", "check_dataset_alphabet", "mismatch_error", "check_output_file", "DEFAULT_BUFFER"]

DEFAULT_BUFFER = 8192  # records embedded per buffer
_DETECT_RECORDS = 256  # records looked at to detect a FASTA file's alphabet (as iter_fasta does)
Item = tuple[str, str, "str | None"]  # (id, sequence, label)


@dataclass
class EmbedResult:
    """What :func:`embed` wrote: ``n`` rows of width ``dim`` to ``path`` in ``seconds`` (wall)."""

    path: Path
    n: int
    dim: int
    model: dict
    labelled: bool
    seconds: float


def fasta_alphabet(path: str | Path) -> str:
    """``"protein"`` or ``"dna"``, detected from the first 256 records of ``path`` (``iter_fasta``'s rule)."""
    return detect_kind(r.sequence for r in islice(parse_fasta(path), _DETECT_RECORDS))


def _looks_like(kind: str, seq: str) -> bool:
    return nucleotide_fraction(seq) >= 0.9 if kind == "dna" else looks_like_protein(seq)


def mismatch_error(kind: str, embedder: Embedder, *, path, record_id: str | None = None,
                   line: int | None = None) -> InputError:
    """The error for input of alphabet ``kind`` given to a model of another alphabet."""
    shown = {"dna": "DNA"}
    data, reads = shown.get(kind, kind), shown.get(embedder.alphabet.name, embedder.alphabet.name)
    what = f"record {record_id!r} looks like {data}" if record_id else f"the sequences are {data}"
    return InputError(f"{what}, but model {embedder.name} ({embedder.source}) reads {reads} sequences; "
                      f"use a {data} model (e.g. --model kmer:3)", path=path, line=line)


def fasta_records(path: str | Path, embedder: Embedder) -> Iterator[FastaRecord]:
    """Stream the records of ``path`` checked against ``embedder``'s alphabet (letters in canonical form).

    Input detected as the other alphabet is refused up front, naming the first record that looks like it and its
    line; bad letters, duplicate ids or DNA/protein mixtures further down raise when they are reached.
    """
    from phylocl.data.layouts import iter_fasta

    path = Path(path)
    kind = fasta_alphabet(path)
    if kind != embedder.alphabet.name:
        head = list(islice(parse_fasta(path), _DETECT_RECORDS))
        rec = next((r for r in head if _looks_like(kind, r.sequence)), head[0])
        raise mismatch_error(kind, embedder, path=path, record_id=rec.id, line=rec.line)
    return iter_fasta(path, alphabet=embedder.alphabet)


def _embed_buffer(buf: list[Item], embedder: Embedder, batch_size: int, progress: Progress | None):
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


def embed_buffers(items: Iterable[Item], embedder: Embedder, *, batch_size: int = 64,
                  buffer_size: int = DEFAULT_BUFFER, progress: Progress | None = None
                  ) -> Iterator[tuple[np.ndarray, list[str], list]]:
    """Embed ``(id, sequence, label)`` items buffer by buffer.

    Yields ``(x (B, D) float32, ids (B,), labels (B,))`` per buffer of at most ``buffer_size`` items, rows in
    input order. ``progress`` (if given) is advanced after every batch.
    """
    if batch_size < 1 or buffer_size < 1:
        raise InputError(f"batch size and buffer size must be >= 1, got {batch_size} and {buffer_size}")
    buf: list[Item] = []
    for item in items:
        buf.append(item)
        if len(buf) == buffer_size:
            yield _embed_buffer(buf, embedder, batch_size, progress)
            buf = []
    if buf:
        yield _embed_buffer(buf, embedder, batch_size, progress)


def check_output_file(path: str | Path) -> Path:
    """``path`` as a :class:`Path`; an existing directory there is an InputError (it would not be replaced)."""
    path = Path(path)
    if path.is_dir():
        raise InputError("output is a directory; give a file name such as out.npz", path=path)
    return path


def read_labelled(data: str | Path, labels: str | Path | None):
    """Read a labelled dataset (any ``read_dataset`` layout)."""
    from phylocl.data.layouts import read_dataset

    return read_dataset(data, labels=labels)


def check_dataset_alphabet(ds, embedder: Embedder, path) -> None:
    """Refuse a dataset whose detected alphabet is not the model's, naming its first record of that kind."""
    kind = ds.alphabet.name
    if kind != embedder.alphabet.name:
        rid = next((i for i, s in zip(ds.ids, ds.sequences) if _looks_like(kind, s)), ds.ids[0])
        raise mismatch_error(kind, embedder, path=path, record_id=rid)


def embed(*, out: str | Path, model: str | None = None, fasta: str | Path | None = None,
          data: str | Path | None = None, labels: str | Path | None = None, batch_size: int = 64,
          device: str | None = None, precision: str = "fp32", buffer_size: int = DEFAULT_BUFFER,
          progress: bool = True, stream=None) -> EmbedResult:
    """Embed ``fasta`` (streamed) or the labelled dataset ``data`` and write ``out`` (``.npz``) atomically.

    Args:
        out: output embeddings file (see :mod:`phylocl.retrieval.embeddings` for the format).
        model: a model spec (:func:`~phylocl.workflows.models.resolve_model`); ``None``: the best measured method of the
            input's alphabet (:func:`~phylocl.workflows.models.default_model`).
        fasta: a FASTA file, read in buffers; ids only. Exactly one of ``fasta`` and ``data``.
        data, labels: a labelled dataset (any ``read_dataset`` layout); its family labels are stored.
        batch_size: sequences per model call; buffer_size: sequences read, sorted and embedded together.
        device: ``cpu``, ``cuda`` or ``None`` (GPU when available).
        precision: ``fp32`` or ``bf16`` (bfloat16 autocast, faster on GPUs and CPUs with AVX-512 BF16) for encoders.
        progress: show progress on ``stream`` (default stderr).

    Returns an :class:`EmbedResult`. Raises :class:`InputError` on bad input; ``out`` is then not written.
    """
    from phylocl.retrieval.embeddings import EmbeddingWriter

    start = time.perf_counter()
    if (fasta is None) == (data is None):
        raise InputError("give exactly one input: --fasta FILE or --data PATH")
    if labels is not None and data is None:
        raise InputError("--labels goes with --data (a FASTA file plus its labels table)")
    out = check_output_file(out)
    if fasta is not None:
        embedder = resolve_model(model, alphabet=fasta_alphabet(fasta), device=device, precision=precision)
        items: Iterable[Item] = ((r.id, r.sequence, None) for r in fasta_records(fasta, embedder))
        total, with_labels = None, False
    else:
        ds = read_labelled(data, labels)
        embedder = resolve_model(model, alphabet=ds.alphabet, device=device, precision=precision)
        check_dataset_alphabet(ds, embedder, data)
        items = zip(ds.ids, ds.sequences, ds.families)
        total, with_labels = len(ds), True
    info = embedder.model_info()
    bar = Progress(label="embedding", total=total, unit="sequences", enabled=progress, stream=stream)
    with bar, EmbeddingWriter(out, model=info, with_labels=with_labels) as writer:
        for x, ids, labs in embed_buffers(items, embedder, batch_size=batch_size, buffer_size=buffer_size,
                                          progress=bar):
            writer.append(x, ids, labs if with_labels else None)
        n = len(writer)
    return EmbedResult(path=out, n=n, dim=embedder.dim, model=info, labelled=with_labels,
                       seconds=time.perf_counter() - start)


def embed_all(items: Sequence[Item] | Iterable[Item], embedder: Embedder, *, batch_size: int = 64,
              buffer_size: int = DEFAULT_BUFFER, progress: Progress | None = None) -> tuple[np.ndarray, list[str]]:
    """Embed every item into memory: ``(x (N, D) float32, ids (N,))``."""
    parts, ids = [], []
    for x, chunk_ids, _ in embed_buffers(items, embedder, batch_size=batch_size, buffer_size=buffer_size,
                                         progress=progress):
        parts.append(x)
        ids.extend(chunk_ids)
    x = np.concatenate(parts) if parts else np.zeros((0, embedder.dim), dtype=np.float32)
    return x, ids
