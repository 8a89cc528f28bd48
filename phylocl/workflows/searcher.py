"""A search index held open: its model, posting lists and alignment stage loaded once, searched again and again.

``phylocl search --index`` loads the bundle, checks it, loads the model and imports the aligners in every run, and
the first query of a process pays for reading its posting lists into memory: at 99,500 proteins (the windowed
``default-protein`` index) a one-query run takes ~0.35-0.5 s, of which ~0.05 s is the query's own prefilter and
~0.01 s its alignment. A notebook, a pipeline step that searches in a loop, or a service keeps a :class:`Searcher`
instead and pays that once (docs/retrieval.md, "A search index held open")::

    from phylocl.workflows.searcher import Searcher       # also phylocl.Searcher
    searcher = Searcher(index="db.index", k=10)             # the options of `phylocl search --index`
    hits = searcher.search([("q1", "MKVLAAGIW..."), ("q2", "...")])   # one dict per hit, each query's best first
    searcher.write(queries, f)                              # the lines `phylocl search` writes, without the header

Each query's hits are those ``phylocl search --index`` writes for it with the same options, whatever other
queries it is searched with (the searches do not depend on the batch: tested). Queries are ``(id, sequence)``
pairs, read as FASTA records are (letters upper-cased, rare and ambiguous letters and internal stops as the
unknown letter; ``strict=True`` refuses them); a query whose id is a database id does not get that sequence as a
hit (a set searched against itself), as in ``phylocl search``. Bad queries raise
:class:`~phylocl.errors.InputError` naming the query, before anything is searched. A searcher holds caches of the
lists it has read: use one from one thread at a time. It searches the version of the bundle it opened (index and
stored sequences read from one version, even while ``phylocl index`` rebuilds the bundle in place:
:func:`~phylocl.retrieval.index_io.load_index_with`); a searcher opened after a rebuild searches the new one.

In a long-lived process, set ``OPENBLAS_THREAD_TIMEOUT=4`` in the environment before NumPy is first imported (the
``phylocl`` command sets it for itself): NumPy's OpenBLAS threads otherwise spin ~0.1 s after each product and hold
the cores the next steps' threads need (a held-open query: 0.26 -> 0.23 s at 10^6 windowed proteins, 0.034 ->
0.030 s at 10^5; docs/performance.md, "Ids mapped in place, row blocks shared by threads").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from phylocl.data.letters import LetterReport
from phylocl.errors import InputError
from phylocl.workflows.embed_buffers import DEFAULT_BUFFER, check_sizes

__all__ = ["Searcher", "COLUMNS"]

QUERIES = "<queries>"  # the name a bad query's message gives its input (no file)

COLUMNS = {  # out_format (aligned) -> the columns of a hit and their types, as `phylocl search` writes them
    "tsv": (("query", str), ("target", str), ("score", float), ("rank", int), ("bitscore", float),
            ("evalue", float)),
    "blast6": (("qseqid", str), ("sseqid", str), ("pident", float), ("length", int), ("mismatch", int),
               ("gapopen", int), ("qstart", int), ("qend", int), ("sstart", int), ("send", int), ("evalue", float),
               ("bitscore", float)),
    "no-align": (("query", str), ("target", str), ("score", float), ("rank", int)),
}


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

    Raises :class:`~phylocl.errors.InputError` (one line) on a missing or damaged bundle, a bundle without stored
    sequences when aligning, or options no search can use.
    """

    def __init__(self, *, index: str | Path, model: str | None = None, k: int = 50, align: bool = True,
                 candidates: int | None = None, evalue: float = 10.0, matrix: str | None = None,
                 gap_open: int | None = None, gap_extend: int | None = None, out_format: str = "tsv",
                 threads: int | None = None, filter_pvalue: float | None = None, word_budget: float | None = None,
                 strand: str | None = None, batch_size: int = 64, buffer_size: int = DEFAULT_BUFFER,
                 device: str | None = None, precision: str = "fp32", overlap: float | None = None,
                 strict: bool = False) -> None:
        from phylocl.workflows.search import DEFAULT_CANDIDATES, check_align_options, check_word_budget, open_index

        if k < 1:
            raise InputError(f"-k must be >= 1, got {k}")
        check_sizes(batch_size, buffer_size)
        candidates = DEFAULT_CANDIDATES if candidates is None else int(candidates)
        check_align_options(align=align, candidates=candidates, evalue=evalue, out_format=out_format,
                            threads=threads, filter_pvalue=filter_pvalue)
        check_word_budget(word_budget)
        self.ridx, self.embedder, self.windows, self.strand, self.stage = open_index(
            index, model, None, windows=None, word_budget=word_budget, strand=strand, align=align, device=device,
            precision=precision, overlap=overlap, k=k, candidates=candidates, evalue=evalue, matrix=matrix,
            gap_open=gap_open, gap_extend=gap_extend, out_format=out_format, threads=threads,
            filter_pvalue=filter_pvalue)
        self.k, self.word_budget, self.strict = k, word_budget, strict
        self.batch_size, self.buffer_size = batch_size, buffer_size
        self.k_eff = max(1, min(candidates if align else k, self.ridx.ntotal))
        self.columns = COLUMNS[out_format if align else "no-align"]

    @property
    def db_size(self) -> int:
        """Sequences in the database."""
        return int(self.ridx.ntotal)

    def write(self, queries: Iterable[tuple[str, str]], f: TextIO) -> int:
        """Search ``queries`` (``(id, sequence)`` pairs) and write their hits to ``f`` as ``phylocl search`` writes
        them (its header left out); returns the number of hits written."""
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
                                  batch_size=self.batch_size)
        return n

    def search(self, queries: Iterable[tuple[str, str]]) -> list[dict]:
        """The hits of ``queries`` as dicts keyed by :attr:`columns`' names (``query``/``qseqid`` first), each
        query's best first, in the order of the queries; the numbers are those written (as printed)."""
        import io

        buf = io.StringIO()
        self.write(queries, buf)
        names = [n for n, _ in self.columns]
        kinds = [t for _, t in self.columns]
        return [{n: t(v) for n, t, v in zip(names, kinds, line.split("\t"))}
                for line in buf.getvalue().splitlines()]

    def _records(self, queries: Iterable[tuple[str, str]]) -> list[_Record]:
        """The queries checked (ids unique and without whitespace, sequences non-empty and of the index's
        alphabet) and cleaned as FASTA records are."""
        from phylocl.data.fasta import looks_like_protein, nucleotide_fraction, strip_gaps

        alphabet, report = self.embedder.alphabet, LetterReport(strict=self.strict)
        out, seen = [], set()
        for n, pair in enumerate(queries, start=1):
            try:
                qid, seq = pair
            except (TypeError, ValueError):
                raise InputError(f"query {n}: expected an (id, sequence) pair, got {type(pair).__name__}",
                                 path=QUERIES) from None
            if not isinstance(seq, str):  # str(None) would be the protein "NONE", str(b"MKV") "b'MKV'"
                raise InputError(f"query {n}: the sequence is a {type(seq).__name__}, not a str", path=QUERIES)
            qid = str(qid)
            if not qid or qid.split() != [qid]:
                raise InputError(f"query {n}: the id {qid!r} is empty or holds whitespace", path=QUERIES)
            if qid in seen:
                raise InputError(f"duplicate query id {qid!r}", path=QUERIES)
            seen.add(qid)
            seq = strip_gaps("".join(seq.split()))  # as FASTA records are cleaned
            if not seq:
                raise InputError(f"query {qid!r} has no sequence", path=QUERIES)
            if alphabet.name == "protein" and nucleotide_fraction(seq) >= 0.9 or (
                    alphabet.name == "dna" and looks_like_protein(seq)):
                other, mine = ("DNA", "protein") if alphabet.name == "protein" else ("protein", "DNA")
                raise InputError(f"query {qid!r} looks like {other}, but the index was built for {mine} sequences",
                                 path=QUERIES)
            out.append(_Record(qid, report.clean(seq, alphabet, path=QUERIES, line=n, record_id=qid)))
        return out
