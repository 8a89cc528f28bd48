"""``phylocl embed``: sequences in, an embeddings file out, streamed so any FASTA size fits in memory.

Records are read in buffers of ``buffer_size`` (default 8,192); each buffer is sorted by length (longest first,
so similar lengths share a batch and little padding is computed), embedded ``batch_size`` sequences at a time,
put back in input order and appended to an :class:`~phylocl.retrieval.embeddings.EmbeddingWriter`. Memory held:
one buffer of sequences and its embeddings plus the ids; the output file appears only once every row is in
(a failure or Ctrl-C leaves no file). The embedding path (:mod:`phylocl.workflows.embedding`) and the input
checks (:mod:`phylocl.workflows.inputs`) are shared with ``search`` and ``evaluate``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from phylocl.errors import InputError
from phylocl.workflows import progress_bar
from phylocl.workflows.embedding import DEFAULT_BUFFER, Item, embed_buffers
from phylocl.workflows.inputs import (check_dataset_alphabet, check_output_file, fasta_records, letter_notes,
                                      open_fasta, read_labelled)
from phylocl.workflows.models import resolve_model

__all__ = ["EmbedResult", "embed"]


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


def embed(*, out: str | Path, model: str | None = None, fasta: str | Path | None = None,
          data: str | Path | None = None, labels: str | Path | None = None, batch_size: int = 64,
          device: str | None = None, precision: str = "fp32", buffer_size: int = DEFAULT_BUFFER,
          progress: bool = True, stream=None, alphabet: str | None = None, strict: bool = False) -> EmbedResult:
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
        progress: show a tqdm bar on ``stream`` (default stderr; only on a terminal).
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
    out = check_output_file(out, inputs=[p for p in (fasta, data, labels, model) if p is not None])
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
    bar = progress_bar("embedding", total=total, enabled=progress, stream=stream)
    with bar, EmbeddingWriter(out, model=info, with_labels=with_labels) as writer:
        for x, ids, labs in embed_buffers(items, embedder, batch_size=batch_size, buffer_size=buffer_size,
                                          progress=bar):
            writer.append(x, ids, labs if with_labels else None)
        n = len(writer)
    return EmbedResult(path=out, n=n, dim=embedder.dim, model=info, labelled=with_labels,
                       seconds=time.perf_counter() - start, notes=letter_notes(letters))
