"""``phylocl embed``: sequences in, an embeddings file out, streamed so any FASTA size fits in memory.

Records are read in buffers of ``buffer_size`` (default 8,192); each buffer is sorted by length (longest first,
so similar lengths share a batch and little padding is computed), embedded ``batch_size`` sequences at a time,
put back in input order and appended to a shard file (:mod:`phylocl.workflows.shards`: ``shard_size`` sequences
each, written atomically to ``<out>.shards/``); at the end the shards are streamed into ``out``. Memory held: one
buffer of sequences and its embeddings plus the ids; the output file appears only once every row is in. A failure
or Ctrl-C leaves no output file but keeps the finished shards, which a rerun with the same input and settings
skips (bad input removes them). While a run writes ``out`` it holds the lock ``.<out name>.lock`` beside it
(removed when the run ends): a second run writing the same file is refused at once. The embedding path
(:mod:`phylocl.workflows.embed_buffers`) and the input checks (:mod:`phylocl.workflows.inputs`) are shared with
``search`` and ``evaluate``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from phylocl.errors import InputError
from phylocl.workflows import progress_bar
from phylocl.workflows.embed_buffers import DEFAULT_BUFFER, Item, check_counts, check_sizes
from phylocl.workflows.inputs import (check_dataset_alphabet, check_output_file, fasta_records, letter_notes,
                                      open_fasta, read_labelled)
from phylocl.workflows.model_spec import resolve_device, resolve_model
from phylocl.workflows.run_folder import output_lock
from phylocl.workflows.shards import DEFAULT_SHARD_SIZE, ShardFolder, input_identity, write_shards

__all__ = ["EmbedResult", "WIDE_ROWS", "embed", "open_input", "wide_rows_note"]

log = logging.getLogger("phylocl")
WIDE_ROWS = 4096  # a model with sparse rows this wide gets a note: its embeddings file stores every zero


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
    rank: int = 0  # of a distributed run: only rank 0 merges and counts (the others report n = 0)


def _check_embed_args(fasta, data, labels, *, shard_size: int, devices: int | None, num_nodes: int,
                      device: str | None = None) -> None:
    """One input (``fasta`` or ``data``, ``labels`` only with ``data``), whole sizes >= 1, and on the CPU no more
    processes per node than usable cores, else :class:`InputError`."""
    if (fasta is None) == (data is None):
        raise InputError("give exactly one input: --fasta FILE or --data PATH")
    if labels is not None and data is None:
        raise InputError("--labels goes with --data (a FASTA file plus its labels table)")
    from phylocl.arguments import option

    check_counts(shard_size=shard_size, devices=devices, num_nodes=num_nodes)
    if devices is not None and devices > 1 and resolve_device(device) == "cpu":
        from phylocl.align.workers import usable_cpus

        if devices > usable_cpus():  # each rank is a process: --devices 64 on 2 cores ran 296 s and still more
            raise InputError(f"{option('devices')} {devices} on the CPU starts {devices} processes, and phylocl may "
                             f"use {usable_cpus()} cores here; give {usable_cpus()} or fewer")
    if devices is not None or num_nodes > 1:  # every process reads the whole input: a pipe gives it to one only
        import os
        import stat

        for name, path in (("fasta", fasta), ("data", data), ("labels", labels)):
            try:
                mode = os.stat(path).st_mode if path is not None else None
            except OSError:
                continue  # missing: said by the reader, in the usual words
            if mode is not None and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise InputError(f"{option(name)} is a pipe or device, read once; with {option('devices')}/"
                                 f"{option('num_nodes')} every process reads the whole input: give a file", path=path)


def _shard_settings(embedder, fingerprint: str, source, labels, *, with_labels: bool, shard_size: int,
                    buffer_size: int, batch_size: int, strict: bool) -> dict:
    """What finished shards depend on: a later run resumes them only when every setting is the same."""
    return {"model": fingerprint, "input": input_identity(source),
            "labels": None if labels is None else input_identity(labels), "with_labels": with_labels,
            "shard_size": shard_size, "buffer_size": buffer_size, "batch_size": batch_size,
            "precision": embedder.precision, "overlap": embedder.overlap, "alphabet": embedder.alphabet.name,
            "strict": strict}


def _predict_distributed(embedder, items, out: Path, settings: dict, with_labels: bool, sizes: dict, *, device,
                         devices: int | None, num_nodes: int) -> tuple:
    """Write the shards through Lightning's DDP prediction loop: ``(ShardPredictor, this rank, number of shards)``."""
    from phylocl.workflows.embed_distributed import ShardPredictor, predict_shards

    module = ShardPredictor(embedder=embedder, items=items, out=out, settings=settings, with_labels=with_labels,
                            **sizes)
    rank, n_shards = predict_shards(module, device=device, devices=devices or 1, num_nodes=num_nodes)
    return module, rank, n_shards


def embed(*, out: str | Path, model: str | None = None, fasta: str | Path | None = None,
          data: str | Path | None = None, labels: str | Path | None = None, batch_size: int = 64,
          device: str | None = None, precision: str = "fp32", buffer_size: int = DEFAULT_BUFFER,
          overlap: float | None = None, shard_size: int = DEFAULT_SHARD_SIZE, devices: int | None = None,
          num_nodes: int = 1, progress: bool = True, stream=None, alphabet: str | None = None,
          strict: bool = False) -> EmbedResult:
    """Embed ``fasta`` (streamed) or the labelled dataset ``data`` and write ``out`` (``.npz``) atomically.

    Args:
        out: output embeddings file (see :mod:`phylocl.retrieval.embedding_files` for the format).
        model: a model spec (:func:`~phylocl.workflows.model_spec.resolve_model`); ``None``: the best measured
            method of the input's alphabet (:func:`~phylocl.workflows.model_spec.default_model`).
        fasta: a FASTA file, read in buffers; ids only. Exactly one of ``fasta`` and ``data``.
        data, labels: a labelled dataset (any ``read_dataset`` layout); its family labels are stored.
        batch_size: sequences per model call; buffer_size: sequences read, sorted and embedded together.
        device: ``cpu``, ``cuda`` or ``None`` (GPU when available).
        precision: ``fp32``, ``bf16`` (bfloat16 autocast) or ``int8`` (CPU) for encoders.
        overlap: window overlap of encoders on long sequences (``None``: the encoder's default).
        shard_size: sequences per shard; finished shards survive a kill and are skipped by the next run
            (:mod:`phylocl.workflows.shards`).
        devices, num_nodes: embed with that many processes per node on that many nodes through Lightning's DDP
            prediction loop (:mod:`phylocl.workflows.embed_distributed`); ``None`` and 1: this process alone.
            The file is the same either way; ranks other than 0 return ``n = 0``.
        progress: show a tqdm bar on ``stream`` (default stderr; only on a terminal).
        alphabet: ``None``/``"auto"`` (detected from the first 256 records), ``"protein"`` or ``"dna"``.
        strict: refuse internal stops, rare and ambiguous letters instead of reading them as unknown.
        (A distributed run reads the FASTA once per process: it must be a file, not a pipe.)

    Returns an :class:`EmbedResult`. Raises :class:`InputError` on bad input; ``out`` is then not written.
    """
    start = time.perf_counter()
    _check_embed_args(fasta, data, labels, shard_size=shard_size, devices=devices, num_nodes=num_nodes, device=device)
    check_sizes(batch_size, buffer_size)
    out = check_output_file(out, inputs=[p for p in (fasta, data, labels, model) if p is not None])
    with _claim_output(out, distributed=devices is not None or num_nodes > 1):
        return _embed(start=start, out=out, model=model, fasta=fasta, data=data, labels=labels,
                      batch_size=batch_size, device=device, precision=precision, buffer_size=buffer_size,
                      overlap=overlap, shard_size=shard_size, devices=devices, num_nodes=num_nodes,
                      progress=progress, stream=stream, alphabet=alphabet, strict=strict)


def _claim_output(out: Path, *, distributed: bool):
    """The lock of ``out`` (:func:`~phylocl.workflows.run_folder.output_lock`, ``.<name>.lock`` beside it) for the
    whole run: a second ``phylocl embed`` of the same file is refused at once. In a distributed run rank 0 holds it
    for all ranks (the others, which it or a launcher started, must not refuse their own run's lock)."""
    if distributed:
        from phylocl.workflows.train_checks import launched_rank

        if launched_rank() != 0:
            return contextlib.nullcontext()
    return output_lock(out, command="embed")


def _embed(*, start, out, model, fasta, data, labels, batch_size, device, precision, buffer_size, overlap,
           shard_size, devices, num_nodes, progress, stream, alphabet, strict) -> EmbedResult:
    """:func:`embed` once its arguments are checked and ``out`` is locked."""
    embedder, items, total, with_labels, letters = open_input(
        model=model, fasta=fasta, data=data, labels=labels, device=device, precision=precision, overlap=overlap,
        alphabet=alphabet, strict=strict)
    wide = wide_rows_note(embedder.name, embedder.dim, total) if embedder.sparse and embedder.dim >= WIDE_ROWS else None
    if wide and progress:  # before the work when the run shows progress; with the other notes at the end otherwise
        log.warning(f"note: {wide}")
    info = embedder.model_info()
    settings = _shard_settings(embedder, info["fingerprint"], fasta if fasta is not None else data, labels,
                               with_labels=with_labels, shard_size=shard_size, buffer_size=buffer_size,
                               batch_size=batch_size, strict=strict)
    sizes = {"shard_size": shard_size, "buffer_size": buffer_size, "batch_size": batch_size}
    try:
        if devices is None and num_nodes == 1:
            shards = ShardFolder(out=out, settings=settings)
            with progress_bar("embedding", total=total, enabled=progress, stream=stream) as bar:
                n_shards = write_shards(items(), embedder, shards, with_labels=with_labels, progress=bar, **sizes)
        else:
            module, rank, n_shards = _predict_distributed(embedder, items, out, settings, with_labels, sizes,
                                                          device=device, devices=devices, num_nodes=num_nodes)
            if rank != 0:  # rank 0 merges
                return EmbedResult(path=out, n=0, dim=embedder.dim, model=info, labelled=with_labels,
                                   seconds=time.perf_counter() - start, rank=rank)
            shards = module.shards
        n = shards.merge(n_shards, model=info, with_labels=with_labels)
    except BaseException as err:  # bad input, or an input read once (a pipe): nothing to resume from
        distributed = devices is not None or num_nodes > 1  # the other ranks may still be writing their shards
        if not distributed and (isinstance(err, InputError) or "unique" in settings["input"]):
            ShardFolder(out=out, settings=settings, create=False).remove()
        raise
    return EmbedResult(path=out, n=n, dim=embedder.dim, model=info, labelled=with_labels,
                       seconds=time.perf_counter() - start,
                       notes=letter_notes(letters) + ([wide] if wide and not progress else []))


def wide_rows_note(name: str, dim: int, total: int | None) -> str:
    """The note ``embed`` gives for a model whose rows are sparse and ``dim`` wide (``total``: sequences, if known):
    the embeddings file stores them dense, ``4 dim`` bytes a sequence, where a sparse index keeps about a tenth.
    Given before the work when the run shows progress, else after it with the other notes (so that a failing
    quiet run prints its one error line only)."""
    from phylocl.resources import human_bytes

    size = f", {human_bytes(4 * dim * total)} for these {total:,}" if total else ""
    return (f"{name} gives sparse rows {dim:,} wide, which an embeddings file stores dense ({4 * dim / 1024:,.0f} "
            f"KB a sequence{size}); for nearest-neighbour search `phylocl index --fasta` stores them as a sparse "
            "index, about a tenth of that (docs/retrieval.md, \"Sparse index\")")


def open_input(*, model, fasta, data, labels, device, precision, overlap, alphabet, strict):
    """``(embedder, items, total, with_labels, letters)`` for a FASTA file (streamed once, ``total=None``) or a
    dataset; ``items()`` returns the iterator of ``(id, sequence, label)`` over the whole input (call it once),
    ``letters`` what was read as the unknown letter (filled as the FASTA is read)."""
    if fasta is not None:
        source = open_fasta(fasta, alphabet=alphabet, strict=strict)
        embedder = resolve_model(model, alphabet=source.kind, device=device, precision=precision, overlap=overlap)

        def records() -> Iterable[Item]:
            return ((r.id, r.sequence, None) for r in fasta_records(source, embedder))

        return embedder, records, None, False, source.letters
    ds = read_labelled(data, labels, alphabet=alphabet, strict=strict)
    embedder = resolve_model(model, alphabet=ds.alphabet, device=device, precision=precision, overlap=overlap)
    check_dataset_alphabet(ds, embedder, data)
    items = lambda: zip(ds.ids, ds.sequences, ds.families)  # noqa: E731
    return embedder, items, len(ds), True, ds.source.get("unknown_letters", {})
