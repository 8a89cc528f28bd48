"""``phylocl search``: the ``k`` best database hits of every query, as a TSV (or BLAST tabular) of ranked hits.

By default (``align=True``) the embedding (or sparse index) retrieves ``candidates`` database sequences per query,
which are aligned (Smith-Waterman, :mod:`phylocl.workflows.search_align`); hits are ranked by bit score, filtered
by E-value, and written with ``bitscore`` and ``evalue`` columns. With ``align=False`` (``--no-align``) the output
is the embedding ranking alone (written atomically; tab-separated, one header line)::

    query   target   score   rank
    q1      t7       0.93127  1

``score`` is the cosine similarity of the two embeddings (higher = closer), ``rank`` counts from 1 per query.
A hit of a query on the database row with its own id is left out (searching a set against itself), and the next
hit takes its place, so each query still gets ``k`` hits when the database has them.

The database is an index bundle (``--index``, from ``phylocl index``; queries must be embedded by the same model,
which the bundle's fingerprint checks) or a FASTA file (``--db``) embedded on the fly into an exact in-memory
index. Queries are streamed: embedded, searched and written one buffer at a time. To align, a ``--db`` search keeps
the database sequences in memory (one byte per residue, refused above ``memory_budget``) and an ``--index`` search
reads them from the bundle (:mod:`phylocl.retrieval.sequence_store`). ``out="-"`` writes the hits to stdout, once
the search has finished (nothing is written on failure).
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, TextIO

import numpy as np

from phylocl.arguments import is_real, on_command_line, option, setting, whole
from phylocl.atomic import atomic_path
from phylocl.errors import InputError
from phylocl.outputs import same_file
from phylocl.retrieval.hits import drop_self_hits
from phylocl.workflows import progress_bar
from phylocl.sparse_rows import SparseRows
from phylocl.workflows.embed_buffers import DEFAULT_BUFFER, embed_all, embed_buffers, embed_workers, sparse_buffers
from phylocl.workflows.inputs import bind_stream, check_output_file, letter_notes, open_fasta
from phylocl.workflows.model_spec import resolve_model, shipped_models
from phylocl.workflows.search_strands import merge_candidates, minus_candidates, resolve_strand
from phylocl.workflows.sensitivity import DEFAULT_CANDIDATES, resolve_sensitivity
from phylocl.workflows.windows import WindowCut, index_windows, resolve_windows

__all__ = ["SearchResult", "search", "write_hit_rows", "check_align_options", "HEADER", "DEFAULT_CANDIDATES",
           "DEFAULT_MEMORY_BUDGET"]

HEADER = "query\ttarget\tscore\trank\n"
DEFAULT_MEMORY_BUDGET = 4 << 30  # bytes of database sequence a --db search may hold for the alignment stage
SPARSE_KINDS = ("sparse", "sparse-windows")  # indexes whose queries are sparse rows (windows: phylocl.workflows.windows)


@dataclass
class SearchResult:
    """What :func:`search` wrote: ``n_hits`` rows for ``n_queries`` queries against ``db_size`` sequences
    (``aligned``: with the alignment stage, its ``scoring`` record and ``candidates`` per query)."""

    path: Path
    n_queries: int
    n_hits: int
    k: int
    db_size: int
    model: dict
    seconds: float
    notes: list[str] = field(default_factory=list)
    aligned: bool = False
    scoring: dict | None = None
    candidates: int | None = None
    word_budget: float | None = None
    strand: str = "plus"
    sensitivity: str | None = None  # the --sensitivity preset, when not the default


def write_hit_rows(f: TextIO, query_ids, db_ids, scores: np.ndarray, indices: np.ndarray) -> int:
    """Write ``query target score rank`` lines for ``(Q, k)`` search results; ``-1`` rows (no hit) are skipped.

    Returns the number of lines written. Scores are printed with 9 significant digits (float32 exact).
    """
    n = 0
    scores = np.clip(scores, -1.0, 1.0)  # cosines: float32 sums can pass 1 by an ulp (1.00000012)
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


def _kept(database, keep: list | None, budget: int):
    """The records of ``database`` as embedding items; ``keep`` (a list) also collects their sequences, refusing
    a database of more than ``budget`` residues."""
    total = 0
    for r in database:
        if keep is not None:
            total += len(r.sequence)
            if total > budget:
                raise InputError(f"the database holds more than {budget / 2**30:.3g} GB of sequence, the memory "
                                 "budget of a --db search that aligns; build an index (`phylocl index --fasta`, "
                                 "which stores the sequences on disk) and search it with --index, or use --no-align",
                                 path=database.path)
            keep.append(r.sequence)
        yield r.id, r.sequence, None


def _embed_database(database, embedder, *, batch_size: int, buffer_size: int, progress: bool, stream,
                    keep: list | None = None, budget: int = DEFAULT_MEMORY_BUDGET, windows: WindowCut | None = None,
                    workers: int = 1):
    """An exact in-memory index over the records of ``database`` (a bound stream): ``(index, x, letters)``; ``x`` is
    ``(N, D)`` rows, or :class:`~phylocl.sparse_rows.SparseRows` and a sparse index for models with sparse rows
    (k-mer profiles: the same hits, a few percent of the memory, and the encoder's sparse path is faster), or
    with ``windows`` the :class:`~phylocl.retrieval.windowed.WindowRows` and a windowed index.
    ``keep``: a list that receives the database sequences (row order), at most ``budget`` residues; ``workers``:
    processes embedding the sparse rows (NumPy models; the same rows)."""
    from phylocl.retrieval.index import build_index
    from phylocl.retrieval.sparse_build import sparse_index_in_memory
    from phylocl.sparse_rows import concat_rows

    items = _kept(database, keep, budget)
    with progress_bar("embedding database", enabled=progress, stream=stream) as bar:
        if windows is not None:
            from phylocl.retrieval.windowed import WindowedIndex
            from phylocl.workflows.windows import embed_windows

            db_x, db_ids = embed_windows(items, embedder, windows, batch_size=batch_size, buffer_size=buffer_size,
                                         progress=bar, workers=workers)
            if db_x is None:
                raise InputError("the database holds no sequences", path=database.path)
            return WindowedIndex(rows=db_x.rows, owners=db_x.owners, ids=db_ids, model=embedder.model_info(),
                                 window=windows.params()), db_x, database.letters
        if embedder.sparse:
            parts = list(sparse_buffers(items, embedder, batch_size=batch_size, buffer_size=buffer_size, progress=bar,
                                        workers=workers))
            if not parts:
                raise InputError("the database holds no sequences", path=database.path)
            db_x, db_ids = concat_rows([p[0] for p in parts]), [i for p in parts for i in p[1]]
            return sparse_index_in_memory(db_x, ids=db_ids, model=embedder.model_info()), db_x, database.letters
        db_x, db_ids = embed_all(items, embedder, batch_size=batch_size, buffer_size=buffer_size, progress=bar)
    return build_index(db_x, kind="flat", ids=db_ids, model=embedder.model_info()), db_x, database.letters


def open_index(index, model: str | None, alphabet: str | None, *, windows: int | None, word_budget: float | None,
               strand: str | None, align: bool, device=None, precision: str = "fp32", overlap: float | None = None,
               bind=None, preset_budget: bool = False, **stage) -> tuple:
    """Open the index bundle for searching: ``(index, embedder, windows, strand, stage, word_budget)``.

    Loads the bundle and the model matching it (checked compatible; ``alphabet``: the queries', used when the index
    does not record its own), calls ``bind(embedder)`` (the query stream's alphabet check) when given, then settles
    the cut (the bundle's own; a different ``windows`` is refused), the word budget (``preset_budget``: it is a
    ``--sensitivity`` preset's, left out (``None`` returned) for an index that is not sparse, where a budget given
    explicitly is refused), the strand and, with ``align``,
    the alignment stage (:func:`align_stage` with ``stage``: ``k``, ``candidates``, ``evalue``, ``matrix``,
    ``gap_open``, ``gap_extend``, ``out_format``, ``threads``, ``filter_pvalue``), so that a bundle without
    sequences or bad scoring options are refused before any query is embedded, in that order. Shared by
    :func:`search` and :class:`~phylocl.workflows.searcher.Searcher`."""
    from phylocl.retrieval.index_io import load_index_with

    embedders = {}  # a load made again (it raced a rebuild of the bundle) resolves the same model once

    def settle(root: Path, ridx) -> tuple:
        """Everything checked against this version of the bundle (``ridx``, its folder opened as ``root``), each
        check raising where it finds a problem; the stored sequences, read from the same version (a rebuild in
        place replacing it meanwhile included: :func:`~phylocl.retrieval.index_io.load_index_with`), come last."""
        embedder = _index_model(index, ridx, model, alphabet, embedders, device=device, precision=precision,
                                overlap=overlap)
        if bind is not None:
            bind(embedder)
        cut = index_windows(ridx, windows, path=index)
        sparse = ridx.kind in SPARSE_KINDS
        budget = None if preset_budget and not sparse else word_budget
        check_word_budget(budget, sparse=sparse, path=index)
        chosen = resolve_strand(strand, embedder.alphabet.name, align=align)
        aligner = None
        if align:
            aligner = align_stage(embedder=embedder, index=index, ridx=ridx, db_seqs=None, strand=chosen, root=root,
                                  **stage)
        return embedder, cut, chosen, aligner, budget

    # kinds FAISS can map are mapped (IVF lists are paged in as probed)
    ridx, (embedder, windows, strand, aligner, budget) = load_index_with(index, settle, mmap=None)
    return ridx, embedder, windows, strand, aligner, budget


def _index_model(index, ridx, model: str | None, alphabet: str | None, resolved: dict, **options):
    """The model that embeds the queries of the index ``ridx`` (the bundle ``index``): ``model``, or the one the
    index names (:func:`_model_for_index`), checked compatible with the index; ``resolved``: models already
    resolved, by what resolved them."""
    from phylocl.retrieval.index_io import check_compatible

    # the index's alphabet: kmer:K then matches the index, and queries of the other alphabet are named
    kind = ridx.model.get("alphabet") if ridx.model.get("alphabet") in ("protein", "dna") else alphabet
    spec = _model_for_index(model, ridx)
    key = (spec, kind, ridx.kind in SPARSE_KINDS)
    if key not in resolved:
        resolved[key] = resolve_model(spec, alphabet=kind, sparse_only=key[2], **options)  # no torch for profiles
    embedder = resolved[key]
    try:
        check_compatible(ridx, embedder.model_info())
    except InputError as err:
        if spec is not None:  # the model asked for is not the index's: name the index
            raise InputError(err.message, path=index) from None
        name = ridx.model.get("name", "<unnamed>")  # an encoder of the user's own: the bundle cannot load it
        raise InputError(f"the index was built with model {name}, which is neither kmer:K nor a shipped model, so "
                         f"it cannot be loaded from the index; give the encoder it was built with "
                         f"({setting('model', 'PATH')})", path=index) from None
    return embedder


def _open_bundle_store(bundle: Path, ridx, *, name, letters: str | None = None):
    """The sequence store of the index bundle at ``bundle`` (``name``: as messages name it), or the one-line refusal
    of a bundle without one."""
    from phylocl.retrieval.sequence_store import SEQUENCES_FILE, open_store

    if ridx.kind not in SPARSE_KINDS and not (Path(bundle) / SEQUENCES_FILE).is_file():
        way = ("search the FASTA with --db DB.fasta (which aligns), or this index with --no-align" if on_command_line()
               else "open it with align=False, or search the FASTA with `phylocl search --db DB.fasta`, which aligns "
               "(`phylocl index --fasta` stores the sequences, for kmer:K and k-mer profile models only)")  # a
        # Searcher has no db; `index --fasta` refuses models with dense rows (gMLP, transformer, sketches)
        raise InputError("this index was built from embeddings (`phylocl index --embeddings`), which hold no "
                         f"sequences, so its hits cannot be aligned: {way}", path=name)
    return open_store(bundle, ntotal=ridx.ntotal, letters=letters, name=name)


def search_chunk(f: TextIO, ridx, embedder, stage, x, ids: list[str], seqs: list, *, k_eff: int,
                 word_budget: float | None, strand: str, windows: WindowCut | None, batch_size: int,
                 query_rows: range | None = None, self_hits: bool = False) -> int:
    """Search one buffer of queries (``x``: their embeddings, rows or windows; ``ids``, ``seqs``) in ``ridx`` and
    write their hits to ``f``: the ``k_eff`` best rows of each (its own id left out unless ``self_hits``), both strands' candidates
    merged when ``strand`` is ``both``, aligned by ``stage`` (``None``: the embedding ranking). ``query_rows``: the
    database rows of the queries when they are the database's own sequences. Returns the hits written."""
    budget = {} if word_budget is None else {"budget": word_budget}  # only sparse indexes take one
    if self_hits:
        scores, rows = ridx.search(x, k_eff, **budget)  # (b, k) each
    elif stage is None:  # each query's own id, left out of its hits (the index finds it among them)
        scores, rows = ridx.search(x, k_eff, exclude_ids=ids, **budget)
    else:  # the same, where that row holds the query's own sequence: two files' ids may collide (PROKKA_00001)
        depth = min(k_eff + 1, ridx.ntotal)  # one more, as the index searches to exclude one: memory follows the db
        scores, rows = ridx.search(x, depth, **budget)  # (b, depth)
        if depth == k_eff:  # the whole database: the column past its end, as the index pads it
            scores = np.concatenate([scores, np.full((len(scores), 1), -np.inf, scores.dtype)], axis=1)
            rows = np.concatenate([rows, np.full((len(rows), 1), -1, rows.dtype)], axis=1)
        scores, rows = drop_self_hits(scores, rows, stage.self_rows(rows, ids, seqs), k_eff)
    if strand == "both":  # the reverse complements' candidates too (the embedding sees one strand)
        minus = minus_candidates(ridx, embedder, seqs, ids, k_eff, batch_size=batch_size,
                                 sparse=ridx.kind in SPARSE_KINDS, windows=windows, self_hits=self_hits, **budget)
        scores, rows = merge_candidates(scores, rows, *minus, k_eff)
    if stage is None:
        return write_hit_rows(f, ids, ridx.ids, scores, rows)
    return stage.write(f, ids, seqs, scores, rows, query_rows=query_rows)


def query_chunks(queries, embedder, db_ids, db_x: np.ndarray | None, *, batch_size: int, buffer_size: int,
                 bar, sparse: bool = False, db_seqs: list | None = None, windows: WindowCut | None = None
                 ) -> Iterator[tuple[np.ndarray | SparseRows, list[str], list[str]]]:
    """``((b, D) query embeddings, b ids, b sequences)`` per buffer; ``db_x`` given: the database holds the queries
    already (their sequences: ``db_seqs``, if kept); ``sparse``: the embeddings as
    :class:`~phylocl.sparse_rows.SparseRows`; ``windows``: as the :class:`~phylocl.retrieval.windowed.WindowRows`
    of windows of that cut."""
    if db_x is not None:  # the database already holds the queries' embeddings
        for lo in range(0, len(db_x), buffer_size):
            hi = min(lo + buffer_size, len(db_x))
            bar.update(hi - lo)
            seqs = db_seqs[lo:hi] if db_seqs is not None else [None] * (hi - lo)
            yield db_x.slice(lo, hi) if sparse else db_x[lo:hi], db_ids[lo:hi], seqs
        return
    records = ((r.id, r.sequence, r.sequence) for r in queries)  # the sequence rides in the label slot
    if windows is not None:
        from phylocl.workflows.windows import window_buffers

        yield from window_buffers(records, embedder, windows, batch_size=batch_size, buffer_size=buffer_size,
                                  progress=bar)
        return
    buffers = sparse_buffers if sparse else embed_buffers  # a sparse index takes the rows in sparse form
    for x, ids, seqs in buffers(records, embedder, batch_size=batch_size, buffer_size=buffer_size, progress=bar):
        yield x, ids, seqs


def check_align_options(*, align: bool, candidates: int, evalue: float, out_format: str,
                        threads: int | None, filter_pvalue: float | None = None) -> None:
    """Refuse (:class:`InputError`, one line) alignment-stage options no run can use, naming them as the caller
    does (:func:`~phylocl.arguments.option`: ``evalue`` or ``--evalue``); shared by ``search``, ``evaluate --align``
    and :class:`~phylocl.workflows.searcher.Searcher`."""
    from phylocl.align.blast6 import parse_format

    try:
        kind, _ = parse_format(out_format)
    except ValueError as err:
        raise InputError(f"{option('out_format')}: {err}") from None
    if not align:
        if kind != "tsv":
            raise InputError(f"{setting('out_format', out_format)} needs the alignment stage; drop "
                             f"{setting('align', False)}")
        return
    if candidates < 1:
        raise InputError(f"{option('candidates')} must be >= 1, got {candidates}")
    for name, value in (("evalue", evalue), ("filter_pvalue", filter_pvalue)):
        if not is_real(value) and not (name == "filter_pvalue" and value is None):  # "1" < 0 raised a TypeError
            raise InputError(f"{option(name)} must be a number > 0, got {type(value).__name__} {value!r}")
    if not evalue > 0:
        raise InputError(f"{option('evalue')} must be > 0, got {evalue}")
    if threads is not None and threads < 1:
        raise InputError(f"{option('threads')} must be >= 1, got {threads}")
    if filter_pvalue is not None and not filter_pvalue > 0:
        raise InputError(f"{option('filter_pvalue')} must be > 0 (1 aligns every candidate), got {filter_pvalue}")


def align_stage(*, embedder, index, ridx, db_seqs, k, candidates, evalue, matrix, gap_open, gap_extend,
                out_format, threads, filter_pvalue=None, strand="plus", root: Path | None = None):
    """The :class:`~phylocl.workflows.search_align.AlignStage` of this search: the scoring system checked, then the
    database sequences, from ``db_seqs`` or the index bundle's store (opened under ``root``, the bundle's folder as
    :func:`open_index` reads it, default ``index``; a bundle without one, or a damaged one, is refused here)."""
    from phylocl.align import default_threads, scoring_system
    from phylocl.align.msv import default_filter_pvalue
    from phylocl.data.letters import stored_letters
    from phylocl.workflows.search_align import AlignStage

    scoring = scoring_system(embedder.alphabet.name, matrix=matrix, gap_open=gap_open, gap_extend=gap_extend)
    if db_seqs is not None:
        fetch, residues = db_seqs.__getitem__, sum(map(len, db_seqs))
    else:
        store = _open_bundle_store(index if root is None else root, ridx, name=index)
        store = store.with_letters(stored_letters(embedder.alphabet))  # an older index's: ACGTN only
        fetch, residues = store.__getitem__, store.residues
    return AlignStage(scoring=scoring, fetch=fetch, db_ids=ridx.ids, db_residues=residues,
                      db_sequences=ridx.ntotal, k=k, evalue=evalue, out_format=out_format,
                      threads=default_threads() if threads is None else threads,
                      filter_pvalue=default_filter_pvalue(scoring.alphabet) if filter_pvalue is None else filter_pvalue,
                      strand=strand)


def search(*, query: str | Path, out: str | Path, model: str | None = None, db: str | Path | None = None,
           index: str | Path | None = None, k: int = 50, batch_size: int = 64, device: str | None = None,
           precision: str = "fp32", overlap: float | None = None, buffer_size: int = DEFAULT_BUFFER,
           progress: bool = True, stream=None, alphabet: str | None = None, strict: bool = False,
           align: bool = True, candidates: int | None = None, evalue: float = 10.0, matrix: str | None = None,
           gap_open: int | None = None, gap_extend: int | None = None, out_format: str = "tsv",
           threads: int | None = None, memory_budget: int = DEFAULT_MEMORY_BUDGET,
           stdout: TextIO | None = None, filter_pvalue: float | None = None,
           windows: int | None = None, word_budget: float | None = None,
           strand: str | None = None, self_hits: bool = False, sensitivity: str | None = None) -> SearchResult:
    """Search the queries of FASTA ``query`` against ``db`` (FASTA) or ``index`` (bundle) and write ``out``.

    Args:
        out: output file, or ``"-"`` for ``stdout`` (default ``sys.stdout``), written once the search is done.
        model: model spec; ``None``: the index's own ``kmer:K`` if it was built on k-mers, else
            the best measured method of the alphabet. With ``index``, ``kmer:K`` and the default use the index's alphabet.
        k: hits per query (``>= 1``; more than the database holds gives every database row).
        alphabet: of the query (and ``db``) FASTA: ``None``/``"auto"`` (detected), ``"protein"`` or ``"dna"``.
        strict: refuse internal stops, rare and ambiguous letters instead of reading them as unknown.
        align: align each query's ``candidates`` embedding hits and rank by bit score (``False``: the embedding
            ranking alone, today's output). evalue: keep aligned hits with an E-value ``<=`` this.
        matrix, gap_open, gap_extend: the scoring system (:func:`phylocl.align.scoring_system`; default BLOSUM62
            11/1, DNA BLASTN's +2/-3 5/2). out_format: ``tsv``, ``blast6`` or ``"6 COLUMN ..."`` (BLAST
            tabular with those columns, :mod:`phylocl.align.blast6`; aligned only). threads: aligner threads
            (default: all cores). memory_budget: most residues (bytes) of a ``--db`` database kept for aligning.
        filter_pvalue: align only candidates whose ungapped (MSV) P-value is at most this (:mod:`phylocl.align.msv`;
            ``None``: protein 0.02, HMMER's F1, DNA off; ``>= 1``: every candidate).
        batch_size, buffer_size, device, precision, overlap, progress, stream: as in
            :func:`~phylocl.workflows.embed.embed`.
        windows: with ``db``, embed database and queries as windows of this many residues and rank database
            sequences by their best window pair (:mod:`phylocl.workflows.windows`); ``None``: the model's default
            width (``default-protein``: 200), ``0``: one row per sequence. An ``index``
            is searched with its own cut (a different ``windows`` is refused).
        word_budget: with a sparse index (k-mer profiles, whole rows or windows), read only each query's words of most weight per
            posting, up to this fraction ``(0, 1]`` of its posting volume: a faster, non-exact candidate stage (recall measured in
            docs/retrieval.md, "Word budget"; :mod:`phylocl.retrieval.sparse_index`); ``None`` or 1: exact.
        strand: DNA only, ``plus`` or ``both`` (``None``: ``both`` when aligning, else ``plus``): ``both`` also
            queries the index with each query's reverse complement (:mod:`phylocl.workflows.search_strands`) and
            aligns both strands (:mod:`phylocl.align.strands`); an explicit ``strand`` for protein is refused.
        self_hits: keep a hit on the database sequence with the query's own id, as BLAST, DIAMOND and MMseqs2
            report it (it takes one of the ``k``); ``False`` (default): left out, so that a set searched against
            itself gives each query its ``k`` best *other* sequences.
        sensitivity: a speed/sensitivity preset, ``fast``, ``default`` (``None``: the options' own defaults),
            ``sensitive`` or ``very-sensitive`` (:data:`~phylocl.workflows.sensitivity.PRESETS`): values for
            ``candidates`` and ``word_budget`` that those arguments, when given, override; a preset's word budget is
            left out (a note says so) where the index is not sparse (docs/retrieval.md, "Speed/sensitivity
            presets").

    Returns a :class:`SearchResult`. Raises :class:`InputError` (and writes nothing) on bad input, including an
    index built with another model, or one without stored sequences when aligning.
    """
    start = time.perf_counter()
    # whole numbers (a Python caller's 2.5 was cut to 2, or failed deep inside): ValueError naming the keyword;
    # the ranges are checked below, in the messages the command line shows
    k, batch_size, buffer_size = whole("k", k), whole("batch_size", batch_size), whole("buffer_size", buffer_size)
    candidates, threads = (None if v is None else whole(n, v) for n, v in (("candidates", candidates),
                                                                            ("threads", threads)))
    if k < 1:
        raise InputError(f"{option('k')} must be >= 1, got {k}")
    if (db is None) == (index is None):
        raise InputError("give exactly one database: --db FASTA or --index INDEX")
    sens = resolve_sensitivity(sensitivity, candidates=candidates, word_budget=word_budget,
                               filter_pvalue=filter_pvalue)
    candidates, word_budget = sens.candidates_for(None), sens.word_budget  # candidates: again once the alphabet is known
    check_align_options(align=align, candidates=candidates, evalue=evalue, out_format=out_format, threads=threads,
                        filter_pvalue=filter_pvalue)
    check_word_budget(word_budget)
    to_stdout = str(out) == "-"
    if not to_stdout:
        out = check_output_file(out, inputs=[p for p in (query, db, index, model) if p is not None],
                                example="hits.tsv")
    elif stdout is None and sys.stdout is None:  # `phylocl search ... -o - >&-`: Python then has no sys.stdout
        raise InputError("-o -: standard output is closed; give an output file instead")
    same = db is not None and same_file(query, db)
    # each input is opened once (pipes work); DNA ambiguity codes stay for the aligner (the embedding reads N;
    # without alignment they are read as N, which ranks the same, and the note says so)
    queries = open_fasta(query, alphabet=alphabet, strict=strict, keep_ambiguous=align)
    db_x = letters = db_seqs = stage = None
    if index is not None:
        ridx, embedder, windows, strand, stage, word_budget = open_index(
            index, model, queries.kind, windows=windows, word_budget=word_budget, strand=strand, align=align,
            device=device, precision=precision, overlap=overlap, preset_budget=sens.preset_budget,
            bind=lambda e: bind_stream(queries, e, index=index), k=k, candidates=candidates, evalue=evalue,
            matrix=matrix, gap_open=gap_open, gap_extend=gap_extend, out_format=out_format, threads=threads,
            filter_pvalue=filter_pvalue)
    else:
        # a k-mer profile encoder embeds through its sparse rows only: read with NumPy, torch is never imported
        embedder = resolve_model(model, alphabet=queries.kind, device=device, precision=precision, overlap=overlap,
                                 sparse_only=True)
        windows = resolve_windows(windows, embedder)  # the model's default, or None
        word_budget = sens.budget_for(sparse=embedder.sparse)[0]
        check_word_budget(word_budget, sparse=embedder.sparse)
        strand = resolve_strand(strand, embedder.alphabet.name, align=align)
        database = bind_stream(queries if same else open_fasta(db, alphabet=alphabet, strict=strict,
                                                                keep_ambiguous=align), embedder)
        bind_stream(queries, embedder)
        if align:  # refuse bad scoring options before the database is embedded
            from phylocl.align import scoring_system

            scoring_system(embedder.alphabet.name, matrix=matrix, gap_open=gap_open, gap_extend=gap_extend)
        if align or strand == "both":  # the sequences to align, or to reverse-complement
            db_seqs = []
        ridx, db_x, letters = _embed_database(database, embedder, batch_size=batch_size, buffer_size=buffer_size,
                                              progress=progress, stream=stream, keep=db_seqs, budget=memory_budget,
                                              windows=windows, workers=embed_workers(threads))
    candidates = sens.candidates_for(embedder.alphabet.name)  # a preset's may depend on the alphabet
    if align and db is not None:
        stage = align_stage(embedder=embedder, index=index, ridx=ridx, db_seqs=db_seqs, k=k, candidates=candidates,
                            evalue=evalue, matrix=matrix, gap_open=gap_open, gap_extend=gap_extend,
                            out_format=out_format, threads=threads, filter_pvalue=filter_pvalue, strand=strand)
    depth = candidates if align else k
    k_eff = max(1, min(depth, ridx.ntotal))  # memory follows the database, not -k
    n_queries = n_hits = 0
    bar = progress_bar("searching", unit="queries", enabled=progress, stream=stream)
    with bar, _destination(out, to_stdout, stdout) as f:
        f.write(stage.header() if stage else HEADER)
        chunks = query_chunks(queries, embedder, ridx.ids, db_x if same else None, batch_size=batch_size,
                              buffer_size=buffer_size, bar=bar, sparse=ridx.kind in SPARSE_KINDS, db_seqs=db_seqs,
                              windows=windows)
        for x, ids, seqs in chunks:
            # querying a set against itself: rows n_queries.. are the queries (pairs aligned once)
            own = range(n_queries, n_queries + len(ids)) if same and stage is not None else None
            n_hits += search_chunk(f, ridx, embedder, stage, x, ids, seqs, k_eff=k_eff, word_budget=word_budget,
                                   strand=strand, windows=windows, batch_size=batch_size, query_rows=own,
                                   self_hits=self_hits)
            n_queries += len(ids)
    notes = letter_notes(queries.letters) + (letter_notes(letters) if letters is not None and not same else [])
    notes += sens.budget_for(sparse=ridx.kind in SPARSE_KINDS)[1]
    notes += k_notes(k, candidates=candidates, align=align, db_size=ridx.ntotal)
    return SearchResult(path=Path("-") if to_stdout else out, n_queries=n_queries, n_hits=n_hits, k=k,
                        db_size=ridx.ntotal, model=embedder.model_info(), seconds=time.perf_counter() - start,
                        notes=notes, aligned=align, scoring=stage.scoring.record() if stage else None,
                        candidates=candidates if align else None, word_budget=word_budget,
                        strand=strand, sensitivity=sens.name if sens.named else None)


def k_notes(k: int, *, candidates: int, align: bool, db_size: int) -> list[str]:
    """A note when ``k`` is more than the candidates aligned per query: the alignment stage writes its candidates'
    hits only, so at most ``candidates`` hits per query."""
    if not (align and k > candidates and candidates < db_size):
        return []
    return [f"{setting('k', k)} is more than the {candidates} candidates aligned per query: at most {candidates} hits "
            f"per query are written ({setting('candidates', min(k, db_size))} aligns more)"]


def check_word_budget(budget: float | None, *, sparse: bool = True, path=None) -> None:
    """Refuse (:class:`InputError`, one line) a word budget outside ``(0, 1]``, or one for an index that is not a
    sparse index (``sparse=False``)."""
    from phylocl.retrieval.sparse_index import check_budget

    if budget is None:
        return
    try:
        if not is_real(budget):  # "0.5" was refused as out of range, "got 0.5"
            raise ValueError
        check_budget(budget)
    except ValueError:
        shown = budget if is_real(budget) else repr(budget)
        raise InputError(f"{option('word_budget')} must be in (0, 1] (1: exact search), got {shown}") from None
    if not sparse:
        way = "`phylocl index --fasta`, or --db with a k-mer profile model" if on_command_line() else \
            "an index of `phylocl index --fasta`"  # a Searcher has no db
        raise InputError(f"{option('word_budget')} needs a sparse index of k-mer profile rows ({way})", path=path)


@contextlib.contextmanager
def _destination(out, to_stdout: bool, stdout: TextIO | None):
    """A text file to write the hits into: ``out`` atomically, or a spool copied to stdout once complete."""
    if not to_stdout:
        with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8") as f:
            yield f
        return
    import shutil
    import tempfile

    with tempfile.TemporaryFile("w+", encoding="utf-8") as spool:
        yield spool
        spool.seek(0)
        target = stdout if stdout is not None else sys.stdout
        shutil.copyfileobj(spool, target)
        target.flush()
