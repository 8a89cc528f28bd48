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
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from phylocl.data.fasta import FastaRecord, detect_kind, looks_like_protein, nucleotide_fraction, parse_fasta
from phylocl.errors import InputError
from phylocl.progress import Progress
from phylocl.workflows.models import Embedder, resolve_model

__all__ = ["EmbedResult", "embed", "embed_buffers", "embed_all", "fasta_records", "fasta_alphabet", "open_fasta",
           "bind_stream", "read_labelled", "check_dataset_alphabet", "mismatch_error", "check_output_file",
           "letter_notes", "DEFAULT_BUFFER"]

DEFAULT_BUFFER = 8192  # records embedded per buffer
_DETECT_RECORDS = 256  # records looked at to detect a FASTA file's alphabet (as iter_fasta does)
Item = tuple[str, str, "str | None"]  # (id, sequence, label)


@dataclass
class EmbedResult:
    """What :func:`embed` wrote: ``n`` rows of width ``dim`` to ``path`` in ``seconds`` (wall); ``notes``: letters
    read as the unknown token (see :mod:`phylocl.data.letters`)."""

    path: Path
    n: int
    dim: int
    model: dict
    labelled: bool
    seconds: float
    notes: list[str] = field(default_factory=list)


def fasta_alphabet(path: str | Path) -> str:
    """``"protein"`` or ``"dna"``, detected from the first 256 records of ``path`` (``iter_fasta``'s rule)."""
    return detect_kind(r.sequence for r in islice(parse_fasta(path), _DETECT_RECORDS))


def open_fasta(path: str | Path, *, alphabet: str | None = None, strict: bool = False):
    """A :class:`~phylocl.data.layouts.FastaStream` over ``path`` (opened once: pipes work); ``alphabet``
    ``None``/``"auto"`` is detected from the first 256 records."""
    from phylocl.data.layouts import FastaStream

    return FastaStream(path, alphabet=alphabet, strict=strict)


def _looks_like(kind: str, seq: str) -> bool:
    return nucleotide_fraction(seq) >= 0.9 if kind == "dna" else looks_like_protein(seq)


def mismatch_error(kind: str, embedder: Embedder, *, path, record_id: str | None = None,
                   line: int | None = None, index: str | Path | None = None) -> InputError:
    """The error for input of alphabet ``kind`` given to a model of another alphabet (or an index built for one).

    The advice names a model of the input's alphabet that is not the one in use, and ``--alphabet`` in case the
    detection was wrong.
    """
    shown = {"dna": "DNA"}
    data, reads = shown.get(kind, kind), shown.get(embedder.alphabet.name, embedder.alphabet.name)
    what = f"record {record_id!r} looks like {data}" if record_id else f"the sequences are {data}"
    other = f"--alphabet {embedder.alphabet.name} if they are {reads}"
    if index is not None:
        return InputError(f"{what}, but the index {index} was built with model {embedder.name} for {reads} "
                          f"sequences; search it with {reads} queries ({other})", path=path, line=line)
    suggestion = next(m for m in (f"default-{kind}", "kmer:3") if m != embedder.name)
    return InputError(f"{what}, but model {embedder.name} ({embedder.source}) reads {reads} sequences; "
                      f"use a {data} model (e.g. --model {suggestion}), or {other}", path=path, line=line)


def bind_stream(stream, embedder: Embedder, *, index: str | Path | None = None):
    """Check that ``stream``'s alphabet is ``embedder``'s and read it with the model's alphabet from now on.

    Input detected as the other alphabet is refused up front, naming the first record that looks like it and its
    line (``index``: the index the model belongs to, for the advice).
    """
    if stream.kind != embedder.alphabet.name:
        rec = next((r for r in stream.head if _looks_like(stream.kind, r.sequence)), stream.head[0])
        raise mismatch_error(stream.kind, embedder, path=stream.path, record_id=rec.id, line=rec.line, index=index)
    stream.alphabet = embedder.alphabet
    return stream


def fasta_records(source, embedder: Embedder) -> Iterator[FastaRecord]:
    """Stream the records of ``source`` (a path or an unread :func:`open_fasta` stream) checked against
    ``embedder``'s alphabet (letters in canonical form); see :func:`bind_stream`.

    Bad letters, duplicate ids or DNA/protein mixtures further down raise when they are reached.
    """
    from phylocl.data.layouts import FastaStream

    stream = source if isinstance(source, FastaStream) else open_fasta(source)
    return iter(bind_stream(stream, embedder))


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


def check_output_file(path: str | Path, *, inputs=()) -> Path:
    """``path`` as a :class:`Path`, refused when it could not or should not be replaced by a new file.

    See :func:`phylocl.outputs.check_output_file`: a directory, device, pipe or socket there, one of ``inputs``,
    a parent that is a file, a place under ``/proc`` or ``/sys``, an unwritable folder.
    """
    from phylocl.outputs import check_output_file as check

    return check(path, inputs=inputs, example="out.npz")


def read_labelled(data: str | Path, labels: str | Path | None, *, alphabet: str | None = None,
                  strict: bool = False):
    """Read a labelled dataset (any ``read_dataset`` layout)."""
    from phylocl.data.layouts import read_dataset

    return read_dataset(data, labels=labels, alphabet=alphabet, strict=strict)


def letter_notes(report) -> list[str]:
    """Notes for stderr about the letters a :class:`~phylocl.data.letters.LetterReport` (or a dataset summary's
    ``unknown_letters``) saw read as the unknown token."""
    from phylocl.data.letters import LetterReport

    if isinstance(report, dict):
        filled = LetterReport()
        filled.kinds = {k: dict(v) for k, v in report.items()}
        report = filled
    return report.lines()


def check_dataset_alphabet(ds, embedder: Embedder, path) -> None:
    """Refuse a dataset whose detected alphabet is not the model's, naming its first record of that kind."""
    kind = ds.alphabet.name
    if kind != embedder.alphabet.name:
        rid = next((i for i, s in zip(ds.ids, ds.sequences) if _looks_like(kind, s)), ds.ids[0])
        raise mismatch_error(kind, embedder, path=path, record_id=rid)


def embed(*, out: str | Path, model: str | None = None, fasta: str | Path | None = None,
          data: str | Path | None = None, labels: str | Path | None = None, batch_size: int = 64,
          device: str | None = None, precision: str = "fp32", buffer_size: int = DEFAULT_BUFFER,
          progress: bool = True, stream=None, alphabet: str | None = None, strict: bool = False) -> EmbedResult:
    """Embed ``fasta`` (streamed) or the labelled dataset ``data`` and write ``out`` (``.npz``) atomically.

    Args:
        out: output embeddings file (see :mod:`phylocl.retrieval.embeddings` for the format).
        model: a model spec (:func:`~phylocl.workflows.models.resolve_model`); ``None``: ``default-<alphabet>``.
        fasta: a FASTA file, read in buffers; ids only. Exactly one of ``fasta`` and ``data``.
        data, labels: a labelled dataset (any ``read_dataset`` layout); its family labels are stored.
        batch_size: sequences per model call; buffer_size: sequences read, sorted and embedded together.
        device: ``cpu``, ``cuda`` or ``None`` (GPU when available).
        precision: ``fp32`` or ``bf16`` (bfloat16 autocast, faster on GPUs and CPUs with AVX-512 BF16) for encoders.
        progress: show progress on ``stream`` (default stderr).
        alphabet: ``None``/``"auto"`` (detected from the first 256 records), ``"protein"`` or ``"dna"``.
        strict: refuse internal stops, rare and ambiguous letters instead of reading them as unknown.

    Returns an :class:`EmbedResult`. Raises :class:`InputError` on bad input; ``out`` is then not written.
    """
    from phylocl.retrieval.embeddings import EmbeddingWriter

    start = time.perf_counter()
    if (fasta is None) == (data is None):
        raise InputError("give exactly one input: --fasta FILE or --data PATH")
    if labels is not None and data is None:
        raise InputError("--labels goes with --data (a FASTA file plus its labels table)")
    out = check_output_file(out, inputs=[p for p in (fasta, data, labels) if p is not None])
    if fasta is not None:
        source = open_fasta(fasta, alphabet=alphabet, strict=strict)
        embedder = resolve_model(model, alphabet=source.kind, device=device, precision=precision)
        items: Iterable[Item] = ((r.id, r.sequence, None) for r in fasta_records(source, embedder))
        total, with_labels, letters = None, False, source.letters
    else:
        ds = read_labelled(data, labels, alphabet=alphabet, strict=strict)
        embedder = resolve_model(model, alphabet=ds.alphabet, device=device, precision=precision)
        check_dataset_alphabet(ds, embedder, data)
        items = zip(ds.ids, ds.sequences, ds.families)
        total, with_labels, letters = len(ds), True, ds.source.get("unknown_letters", {})
    info = embedder.model_info()
    bar = Progress(label="embedding", total=total, unit="sequences", enabled=progress, stream=stream)
    with bar, EmbeddingWriter(out, model=info, with_labels=with_labels) as writer:
        for x, ids, labs in embed_buffers(items, embedder, batch_size=batch_size, buffer_size=buffer_size,
                                          progress=bar):
            writer.append(x, ids, labs if with_labels else None)
        n = len(writer)
    return EmbedResult(path=out, n=n, dim=embedder.dim, model=info, labelled=with_labels,
                       seconds=time.perf_counter() - start, notes=letter_notes(letters))


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
