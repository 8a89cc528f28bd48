"""A search index held open: its model, posting lists and alignment stage loaded once, searched again and again.

``phylocl search --index`` loads the bundle, checks it, loads the model and imports the aligners in every run, and
the first query of a process pays for reading its posting lists into memory: at 99,500 proteins (the windowed
``default-protein`` index) a one-query run takes ~0.35-0.5 s, of which ~0.05 s is the query's own prefilter and
~0.01 s its alignment. A notebook, a pipeline step that searches in a loop, or a service keeps a :class:`Searcher`
instead and pays that once (docs/retrieval.md, "From Python, an index held open")::

    from phylocl.workflows.searcher import Searcher       # also phylocl.Searcher
    searcher = Searcher(index="db.index", k=10)             # the options of `phylocl search --index`
    hits = searcher.search([("q1", "MKVLAAGIW..."), ("q2", "MSTAPQ")])  # one dict per hit, each query's best first
    searcher.write(queries, f)                              # the lines `phylocl search` writes, without the header

Each query's hits are those ``phylocl search --index`` writes for it with the same options, whatever other
queries it is searched with (the searches do not depend on the batch: tested). Queries are ``(id, sequence)``
pairs (or a ``{id: sequence}`` dict, or a FASTA file given as a ``pathlib.Path``), read as FASTA records are
(letters upper-cased, alignment gaps and a final ``*`` removed, rare and ambiguous letters and internal stops as
the unknown letter, DNA ambiguity codes kept for the aligner, which scores them as ``blastn`` does;
``strict=True`` refuses them); a query whose id is a database id does not get that sequence
as a hit (a set searched against itself), as in ``phylocl search``, unless ``self_hits=True``. Bad queries raise
:class:`~phylocl.errors.InputError` naming the query, before anything is searched.

A searcher holds caches of the lists it has read; calls from several threads are safe and run one at a time (a
lock; each search already uses ``threads`` workers). :meth:`close` (or a ``with`` block) drops the index, model
and caches; a closed searcher refuses to search (``ValueError``). Pickling a searcher (``multiprocessing``) does
not copy the open index: the copy re-opens the bundle from its path with the same options, so it searches the
version on disk when it is unpickled. It searches the version of the bundle it opened (index and stored
sequences read from one version, even while ``phylocl index`` rebuilds the bundle in place:
:func:`~phylocl.retrieval.index_io.load_index_with`); a searcher opened after a rebuild searches the new one.

In a long-lived process, set ``OPENBLAS_THREAD_TIMEOUT=4`` in the environment before NumPy is first imported (the
``phylocl`` command sets it for itself): NumPy's OpenBLAS threads otherwise spin ~0.1 s after each product and hold
the cores the next steps' threads need (a held-open query: 0.26 -> 0.23 s at 10^6 windowed proteins, 0.034 ->
0.030 s at 10^5; docs/performance.md, "Ids mapped in place, row blocks shared by threads").
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from phylocl.arguments import existing_path, flag, positive_int, usable_path
from phylocl.data.fasta import parse_fasta
from phylocl.data.letters import LetterReport
from phylocl.errors import InputError
from phylocl.workflows.embed_buffers import DEFAULT_BUFFER, check_sizes

__all__ = ["Searcher", "COLUMNS"]

QUERIES = "<queries>"  # the name a bad query's message gives its input (no file)

COLUMNS = {  # the TSV formats -> the columns of a hit and their types, as `phylocl search` writes them
    "tsv": (("query", str), ("target", str), ("score", float), ("rank", int), ("bitscore", float),
            ("evalue", float)),
    "no-align": (("query", str), ("target", str), ("score", float), ("rank", int)),
}


def _columns(out_format: str) -> tuple[tuple[str, type], ...]:
    """The columns of a hit and their types for ``out_format`` (checked), as :data:`COLUMNS` or BLAST tabular
    (``blast6``, or the columns a ``"6 COLUMN ..."`` format names; their types: :data:`phylocl.align.blast6.FIELDS`)."""
    if out_format in COLUMNS:
        return COLUMNS[out_format]
    from phylocl.align.blast6 import FIELDS, parse_format

    kind, names = parse_format(out_format)
    if kind == "tsv":  # " tsv" or "tsv," as parse_format reads them: the columns of tsv, not none
        return COLUMNS["tsv"]
    return tuple((name, FIELDS[name]) for name in names)


@dataclass(frozen=True)
class _Record:
    id: str
    sequence: str


class Searcher:
    """An index bundle opened for searching (module docstring).

    Args (keyword-only; as :func:`phylocl.workflows.search.search` with ``index``):
        index: the bundle (``phylocl index``); model: ``None`` for the index's own model where the bundle names
            one phylocl can load (``kmer:K``, a shipped model); an index of an encoder of your own needs its path.
        k: hits per query; align: the alignment stage (``False``: the embedding ranking, ``--no-align``);
        candidates, evalue, matrix, gap_open, gap_extend, filter_pvalue, out_format, threads, word_budget, strand,
        batch_size, device, precision, overlap: as ``phylocl search``. strict: refuse rare letters.
        self_hits: keep the hit on the database sequence with the query's own id (``--self-hits``).
        sensitivity: ``fast``, ``default``, ``sensitive`` or ``very-sensitive`` (``--sensitivity``): values of
            ``candidates`` and ``word_budget`` that those arguments, when given, override
            (:mod:`phylocl.workflows.sensitivity`);
            :attr:`sensitivity`, :attr:`candidates` and :attr:`word_budget` hold what the searcher uses, and
            :attr:`notes` says where a preset's part was left out (its word budget, for an index that is not sparse),
            and when ``k`` is more than the candidates aligned per query (at most that many hits per query).

    Raises :class:`~phylocl.errors.InputError` (one line) on a missing or damaged bundle, an ``index`` or ``model``
    path too long for a file name (a queries ``Path`` too, when searched), a bundle without stored sequences when aligning, or options no search can use (``k``
    larger than the database is fine: every sequence is a candidate); ``TypeError`` for an ``index`` that is not
    a path, ``ValueError`` for ``k``, ``candidates``, ``threads``, ``batch_size`` or ``buffer_size`` that are
    not whole numbers >= 1.

    Columns of a hit (:attr:`columns`): ``query``, ``target`` (ids); ``score``: the prefilter's embedding score,
    a cosine similarity (of whole rows, or of the best pair of windows for a windowed index; docs/retrieval.md);
    ``rank``: from 1 within each query; ``bitscore``: the Smith-Waterman score in bits; ``evalue``: the number of
    hits at least as good expected by chance in a database of this size; ``out_format="blast6"``: BLAST's 12
    columns (``pident`` in percent, positions 1-based); ``out_format="6 qseqid sseqid qlen qcovhsp"``: those
    columns (:mod:`phylocl.align.blast6`).
    """

    def __init__(self, *, index: str | Path, model: str | None = None, k: int = 50, align: bool = True,
                 candidates: int | None = None, evalue: float = 10.0, matrix: str | None = None,
                 gap_open: int | None = None, gap_extend: int | None = None, out_format: str = "tsv",
                 threads: int | None = None, filter_pvalue: float | None = None, word_budget: float | None = None,
                 strand: str | None = None, batch_size: int = 64, buffer_size: int = DEFAULT_BUFFER,
                 device: str | None = None, precision: str = "fp32", overlap: float | None = None,
                 strict: bool = False, self_hits: bool = False, sensitivity: str | None = None) -> None:
        from phylocl.workflows.search import (SPARSE_KINDS, check_align_options, check_word_budget, k_notes,
                                              open_index)
        from phylocl.workflows.sensitivity import resolve_sensitivity

        self._lock = threading.RLock()  # re-entrant: a queries generator may itself search
        self._closed = True  # until opened: close() and __repr__ work on a half-built searcher
        if not isinstance(index, (str, os.PathLike)):  # bytes are neither
            raise TypeError(f"index must be the path of an index bundle (phylocl index), a str or a Path, got "
                            f"{type(index).__name__} {index!r}")
        usable_path("index", index)  # a name too long for a file: InputError naming index, not OSError
        k = positive_int("k", k)  # whole numbers >= 1 (the shared checks below name the keywords too: option())
        candidates = positive_int("candidates", candidates, optional=True)
        threads = positive_int("threads", threads, optional=True)
        batch_size, buffer_size = positive_int("batch_size", batch_size), positive_int("buffer_size", buffer_size)
        align, strict, self_hits = flag("align", align), flag("strict", strict), flag("self_hits", self_hits)
        if existing_path(model):  # a model folder or file
            model = str(Path(model).expanduser().absolute())  # absolute in the options: the same from elsewhere
        self._options = dict(  # what a pickled copy re-opens with (__reduce__)
            index=Path(index).expanduser().absolute(), model=model, k=k, align=align, candidates=candidates,
            evalue=evalue, matrix=matrix, gap_open=gap_open, gap_extend=gap_extend, out_format=out_format,
            threads=threads, filter_pvalue=filter_pvalue, word_budget=word_budget, strand=strand,
            batch_size=batch_size, buffer_size=buffer_size, device=device, precision=precision, overlap=overlap,
            strict=strict, self_hits=self_hits, sensitivity=sensitivity)
        check_sizes(batch_size, buffer_size)
        sens = resolve_sensitivity(sensitivity, candidates=candidates, word_budget=word_budget,
                                   filter_pvalue=filter_pvalue)
        candidates, word_budget = sens.candidates_for(None), sens.word_budget  # candidates: again below
        check_align_options(align=align, candidates=candidates, evalue=evalue, out_format=out_format,
                            threads=threads, filter_pvalue=filter_pvalue)
        check_word_budget(word_budget)
        self.ridx, self.embedder, self.windows, self.strand, self.stage, word_budget = open_index(
            index, model, None, windows=None, word_budget=word_budget, strand=strand, align=align, device=device,
            precision=precision, overlap=overlap, preset_budget=sens.preset_budget, k=k, candidates=candidates, evalue=evalue, matrix=matrix,
            gap_open=gap_open, gap_extend=gap_extend, out_format=out_format, threads=threads,
            filter_pvalue=filter_pvalue)
        self.k, self.word_budget, self.strict, self.self_hits = k, word_budget, strict, bool(self_hits)
        candidates = sens.candidates_for(self.embedder.alphabet.name)  # a preset's may depend on the alphabet
        self.sensitivity, self.candidates = sens.name, candidates
        self.notes = [*sens.budget_for(sparse=self.ridx.kind in SPARSE_KINDS)[1],  # e.g. a preset's budget left out
                      *k_notes(k, candidates=candidates, align=align, db_size=self.ridx.ntotal)]  # as search's
        self.batch_size, self.buffer_size = batch_size, buffer_size
        self.k_eff = max(1, min(candidates if align else k, self.ridx.ntotal))
        self.columns = _columns(out_format if align else "no-align")
        self._db_size = int(self.ridx.ntotal)
        self._closed = False

    @property
    def db_size(self) -> int:
        """Sequences in the database."""
        return self._db_size

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Drop the index, the model, the alignment stage and their caches (memory maps are released once no
        other reference holds them). Further searches raise ``ValueError``; closing again does nothing."""
        with self._lock:
            self._closed = True
            self.ridx = self.embedder = self.stage = None

    def __enter__(self) -> "Searcher":
        self._check_open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        opts = getattr(self, "_options", {})
        state = "closed" if self._closed else f"db_size={self._db_size}"
        return (f"Searcher(index={str(opts.get('index', '?'))!r}, k={opts.get('k')!r}, align={opts.get('align')!r}, "
                f"out_format={opts.get('out_format')!r}, {state})")

    def __reduce__(self):
        """Pickled as its options: unpickling re-opens the bundle (module docstring)."""
        if getattr(self, "_options", None) is None:
            raise TypeError("a Searcher that failed to open cannot be pickled")
        return (_reopen, (type(self), self._options))

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"search on a closed Searcher ({self._options['index']}); open a new one")

    def write(self, queries: Iterable[tuple[str, str]], f: TextIO) -> int:
        """Search ``queries`` (``(id, sequence)`` pairs, a ``{id: sequence}`` dict or a FASTA ``Path``) and write
        their hits to ``f`` (an open text file, ``f.write``) as ``phylocl search`` writes them (its header left
        out); returns the number of hits written."""
        if not callable(getattr(f, "write", None)) or isinstance(f, (io.RawIOBase, io.BufferedIOBase)):
            raise TypeError(f"f must be a file open for writing text (with a write method), got "
                            f"{type(f).__name__} {f!r}; open a path with open(path, 'w')")
        with self._lock:
            self._check_open()
            return self._write(queries, f)

    def _write(self, queries, f: TextIO) -> int:
        from phylocl.workflows import progress_bar
        from phylocl.workflows.search import SPARSE_KINDS, query_chunks, search_chunk

        records = self._records(queries)
        n = 0
        with progress_bar("searching", enabled=False) as bar:
            for x, ids, seqs in query_chunks(records, self.embedder, self.ridx.ids, None, batch_size=self.batch_size,
                                             buffer_size=self.buffer_size, bar=bar,
                                             sparse=self.ridx.kind in SPARSE_KINDS, windows=self.windows):
                n += search_chunk(f, self.ridx, self.embedder, self.stage, x, ids, seqs, k_eff=self.k_eff,
                                  word_budget=self.word_budget, strand=self.strand, windows=self.windows,
                                  batch_size=self.batch_size, self_hits=self.self_hits)
        return n

    def search(self, queries: Iterable[tuple[str, str]]) -> list[dict]:
        """The hits of ``queries`` (as :meth:`write` takes them) as dicts keyed by :attr:`columns`' names
        (``query``/``qseqid`` first; units in the class docstring), each query's best first, in the order of the
        queries; the numbers are those written (as printed). A query may have fewer than ``k`` hits (E-value
        cut-off, or a database smaller than ``k``), or none; no queries, no hits (``[]``)."""
        buf = io.StringIO()
        self.write(queries, buf)
        names = [n for n, _ in self.columns]
        kinds = [t for _, t in self.columns]
        return [{n: t(v) for n, t, v in zip(names, kinds, line.split("\t"))}
                for line in buf.getvalue().splitlines()]

    def _records(self, queries: Iterable[tuple[str, str]]) -> list[_Record]:
        """The queries checked (ids unique and without whitespace, sequences non-empty and of the index's
        alphabet) and cleaned as FASTA records are."""
        from phylocl.data.fasta import MixCheck, looks_like_protein, nucleotide_fraction, strip_gaps

        alphabet, report = self.embedder.alphabet, LetterReport(strict=self.strict,
                                                                 keep_ambiguous=self.stage is not None)
        out, seen = [], set()
        source = _source(queries)  # a FASTA Path: its records' (line, layout), so that errors name file:line
        for n, pair in enumerate(_pairs(queries), start=1):
            where, line, layout = QUERIES, n, None
            if source is not None:
                pair, (where, line, layout) = pair[:2], pair[2]
            if isinstance(pair, (str, bytes)):  # a 2-letter string would unpack as an id and a 1-letter sequence
                raise InputError(f"query {n}: expected an (id, sequence) pair, got {type(pair).__name__} "
                                 f"{pair[:20]!r}; give ids, e.g. list(enumerate(sequences)) or {{id: sequence}}",
                                 path=where)
            try:
                qid, seq = pair
            except (TypeError, ValueError):
                raise InputError(f"query {n}: expected an (id, sequence) pair, got {type(pair).__name__}",
                                 path=where) from None
            if not isinstance(seq, str):  # str(None) would be the protein "NONE", str(b"MKV") "b'MKV'"
                raise InputError(f"query {n}: the sequence is a {type(seq).__name__}, not a str", path=where)
            qid = str(qid)
            if not qid or qid.split() != [qid]:
                raise InputError(f"query {n}: the id {qid!r} is empty or holds whitespace", path=where)
            if qid in seen:
                raise InputError(f"duplicate query id {qid!r}", path=where, line=line if source is not None else None)
            seen.add(qid)
            seq = strip_gaps("".join(seq.split()))  # as FASTA records are cleaned
            if not seq:
                raise InputError(f"query {qid!r} has no sequence", path=where, line=line if source is not None else None)
            # DNA as a FASTA file's record counts as DNA (MixCheck): short peptides such as GATTACA are protein
            if alphabet.name == "protein" and len(seq) >= MixCheck.min_dna_length and nucleotide_fraction(seq) >= 0.9 \
                    or alphabet.name == "dna" and looks_like_protein(seq):
                other, mine = ("DNA", "protein") if alphabet.name == "protein" else ("protein", "DNA")
                raise InputError(f"query {qid!r} looks like {other}, but the index was built for {mine} sequences",
                                 path=where, line=line if source is not None else None)
            out.append(_Record(qid, report.clean(seq, alphabet, path=where, line=line, record_id=qid,
                                                 layout=layout)))
        return out


def _source(queries) -> Path | None:
    """The FASTA file ``queries`` names (a ``Path``), else ``None``."""
    return Path(queries) if isinstance(queries, os.PathLike) else None


def _pairs(queries):
    """``queries`` as an iterable of ``(id, sequence)`` pairs: a mapping's items, a FASTA file's records (a
    ``Path``), else the iterable itself; a bare string (a sequence? a path?) is an :class:`InputError`."""
    if isinstance(queries, (str, bytes)):
        hint = (f"; to search the FASTA file {queries!r}, pass pathlib.Path({queries!r})"
                if isinstance(queries, str) and existing_path(queries, file=True) else
                "; one query is [(id, sequence)]")
        raise InputError(f"queries must be (id, sequence) pairs, a {{id: sequence}} dict or a FASTA file's Path, got "
                         f"a {type(queries).__name__}{hint}", path=QUERIES)
    if isinstance(queries, Mapping):
        return queries.items()
    if isinstance(queries, os.PathLike):
        path = usable_path("queries", queries)  # a name too long for a file: InputError, not OSError
        return ((r.id, r.sequence, (path, r.line, r.layout)) for r in parse_fasta(path))
    if not isinstance(queries, Iterable):
        raise InputError(f"queries must be (id, sequence) pairs, a {{id: sequence}} dict or a FASTA file's Path, got "
                         f"{type(queries).__name__}", path=QUERIES)
    return queries


def _reopen(cls: type, options: dict) -> Searcher:
    """A ``cls`` (a :class:`Searcher`) opened with ``options`` (unpickling)."""
    return cls(**options)
