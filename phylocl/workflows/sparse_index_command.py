"""``phylocl index --fasta``: sequences in, a sparse (inverted) index bundle out, for k-mer profile models.

Full ``kmer:K`` profiles and the k-mer profile encoders (``default-protein``) give rows that are a few percent
non-zero: their database is indexed as posting lists (:mod:`phylocl.retrieval.sparse_index`), built straight
from the FASTA (no dense embeddings file, which for ``default-protein`` would take 96 KB per protein). Search is
exact, like a ``flat`` index over the dense rows.
"""

from __future__ import annotations

import time
from pathlib import Path

from phylocl.errors import InputError
from phylocl.workflows import progress_bar
from phylocl.workflows.embed_buffers import DEFAULT_BUFFER, embed_workers, sparse_buffers
from phylocl.workflows.index_command import IndexResult, check_index_destination, index_lock
from phylocl.workflows.inputs import bind_stream, letter_notes, open_fasta
from phylocl.workflows.model_spec import resolve_model

__all__ = ["build_sparse_index_file"]


def _sparse_at_fp32(embedder) -> bool:
    """Whether the encoder behind ``embedder`` gives sparse rows at fp32 (a k-mer profile encoder)."""
    from phylocl.models.sparse_embed import supports_sparse

    return supports_sparse(embedder.model)


def build_sparse_index_file(*, fasta: str | Path, out: str | Path, model: str | None = None, batch_size: int = 64,
                            buffer_size: int = DEFAULT_BUFFER, device: str | None = None, precision: str = "fp32",
                            overlap: float | None = None, progress: bool = True,
                            alphabet: str | None = None, strict: bool = False, stream=None,
                            windows: int | None = None, threads: int | None = None) -> IndexResult:
    """Embed the records of ``fasta`` with ``model`` in sparse form and write a ``sparse`` index bundle at ``out``.

    Args:
        model: a model spec giving sparse rows (``kmer:K`` without a sketch width, a k-mer profile encoder);
            ``None``: the alphabet's default if it is one, else ``kmer:3`` (protein) / ``kmer:5`` (DNA).
        batch_size, buffer_size, device, precision, overlap, progress, alphabet, strict, stream: as for
            ``phylocl embed`` (sparse rows are computed at fp32 only).
        windows: cut each sequence into windows of this many residues (tiles: :mod:`phylocl.workflows.windows`),
            one row per window, searched by best window pair; ``None``: the model's default width
            (``default-protein``: 200, other models none), ``0``: one row per sequence.
        threads: processes that embed the rows (NumPy models: k-mer profile encoders and ``kmer:K``; the same
            bundle, byte for byte); ``None``: all cores (``OMP_NUM_THREADS`` when set).

    Raises :class:`InputError` (nothing written) on bad input or a model without sparse rows.
    """
    start = time.perf_counter()
    out = check_index_destination(out)
    with index_lock(out):
        return _build_sparse(start, fasta=fasta, out=out, model=model, batch_size=batch_size,
                             buffer_size=buffer_size, device=device, precision=precision, overlap=overlap,
                             progress=progress, alphabet=alphabet, strict=strict, stream=stream, windows=windows,
                             threads=threads)


def _build_sparse(start: float, *, fasta, out: Path, model, batch_size, buffer_size, device, precision, overlap,
                  progress, alphabet, strict, stream, windows, threads) -> IndexResult:
    """:func:`build_sparse_index_file` once ``out`` is checked and locked."""
    records = open_fasta(fasta, alphabet=alphabet, strict=strict, keep_ambiguous=True)  # DNA codes, protein B J Z U O stored
    embedder = resolve_model(model, alphabet=records.kind, device=device, precision=precision, overlap=overlap,
                             sparse_only=True)  # a k-mer profile encoder's rows with NumPy: no torch start-up
    if embedder.is_encoder and embedder.precision != "fp32" and _sparse_at_fp32(embedder):
        raise InputError(f"a sparse index of {embedder.name} is built at fp32 only (its rows are stored exactly); "
                         f"drop --precision {embedder.precision}")
    if not embedder.sparse and model is None:
        embedder = resolve_model("kmer:3" if records.kind == "protein" else "kmer:5", alphabet=records.kind)
    if not embedder.sparse:
        raise InputError(f"model {embedder.name} gives dense rows; a sparse index needs full k-mer profiles "
                         "(kmer:K) or a k-mer profile encoder such as default-protein, at fp32. For other models run "
                         "`phylocl embed` and `phylocl index --embeddings`")
    from phylocl.workflows.windows import resolve_windows

    windows = resolve_windows(windows, embedder)  # the model's default width (search.json), 0: whole rows
    bind_stream(records, embedder)
    from phylocl.retrieval.sequence_store import SequenceStoreWriter
    from phylocl.retrieval.sparse_build import write_sparse_index

    bar = progress_bar("indexing", enabled=progress, stream=stream)
    store = SequenceStoreWriter(destination=out)  # the sequences, for the alignment stage of search

    def items():
        for r in records:
            store.append([r.sequence])
            yield r.id, r.sequence, None

    def finish(folder):
        return {"sequences": store.finish(folder)}

    workers = embed_workers(threads)
    window = None
    if windows is None:
        buffers = sparse_buffers(items(), embedder, batch_size=batch_size, buffer_size=buffer_size, progress=bar,
                                 workers=workers)
    else:
        from phylocl.workflows.windows import window_buffers

        window = windows.params()
        buffers = window_buffers(items(), embedder, windows, batch_size=batch_size, buffer_size=buffer_size,
                                 progress=bar, workers=workers)
    with bar:
        blocks = ((rows, ids, None) for rows, ids, _ in buffers)
        try:
            meta = write_sparse_index(out, blocks, model=embedder.model_info(), finish=finish, window=window)
        except InputError:
            raise
        except ValueError as err:
            raise InputError(f"cannot build a sparse index: {err}", path=fasta) from None
        finally:
            store.abort()  # removes the spool if finish() did not move it
    notes = letter_notes(records.letters)
    n_rows = meta.get("rows", meta["ntotal"])
    if window is not None:
        notes.append(f"{meta['ntotal']:,} sequences as {n_rows:,} windows of {window['window']} residues "
                     f"(stride {window['stride']})")
    notes.append(f"{meta['nnz']:,} stored values ({meta['nnz'] / meta['ntotal']:.0f} per sequence, "
                 f"{meta['nnz'] / n_rows / meta['dim']:.1%} of the columns)")
    return IndexResult(path=out, kind=meta["kind"], n=meta["ntotal"], dim=meta["dim"], params=meta["params"],
                       model=meta["model"], seconds=time.perf_counter() - start, notes=notes)
