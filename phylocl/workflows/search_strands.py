"""The minus strand in the prefilter of a DNA search: query the index with each query's reverse complement too.

The DNA embedders do not see strands: ``default-dna`` and ``kmer:K`` count words as they are read (no canonical
k-mers, which would merge a word with its reverse complement), so a relative written on the other strand shares
almost no words with the query and its cosine is that of an unrelated sequence (docs/retrieval.md, "Both strands").
The alignment stage can only align what the prefilter retrieves, so a ``--strand both`` search embeds the reverse
complement of every query as well, searches the index with it, and merges the two candidate lists: per database row
the higher cosine, then the best ``k`` overall (:func:`merge_candidates`). The candidate budget (``--candidates``)
is shared by the two strands, so the alignment work stays one pass of ``k`` candidates per strand; the embedding
and index search of the queries are done twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from phylocl.align.strands import reverse_complement

if TYPE_CHECKING:
    from phylocl.workflows.windows import WindowCut

__all__ = ["merge_candidates", "minus_candidates", "resolve_strand"]


def resolve_strand(strand: str | None, alphabet: str, *, align: bool) -> str:
    """The strand(s) a search uses: ``None`` (not given) means ``both`` for an aligned DNA search and ``plus``
    otherwise (``--no-align`` keeps today's embedding ranking unless ``--strand both`` is given); an explicit
    ``strand`` for protein is refused (``InputError``, one line)."""
    from phylocl.align.strands import check_strand
    from phylocl.errors import InputError

    if strand is None:
        return "both" if alphabet == "dna" and align else "plus"
    try:
        return check_strand(strand, alphabet)
    except ValueError as err:
        raise InputError(str(err)) from None


def minus_candidates(ridx, embedder, seqs: Sequence[str], ids: Sequence[str], k: int, *, batch_size: int,
                     sparse: bool, windows: WindowCut | None = None, self_hits: bool = False,
                     **search_kwargs) -> tuple[np.ndarray, np.ndarray]:
    """``(scores (b, k), rows (b, k))``: the index's ``k`` best rows for the reverse complement of each of the ``b``
    queries ``seqs`` (canonical DNA letters), embedded as the queries are (dense, sparse or windows); a query's own
    id is excluded as in the plus-strand search (kept with ``self_hits``); ``search_kwargs`` go to ``ridx.search`` (a word budget)."""
    from phylocl.workflows.embed_buffers import embed_buffers, sparse_buffers

    records = [(i, reverse_complement(s), None) for i, s in zip(ids, seqs)]
    if windows is not None:
        from phylocl.workflows.windows import window_buffers

        parts = list(window_buffers(records, embedder, windows, batch_size=batch_size, buffer_size=len(records),
                                    progress=None))
    else:
        buffers = sparse_buffers if sparse else embed_buffers
        parts = list(buffers(records, embedder, batch_size=batch_size, buffer_size=len(records)))
    [(x, _, _)] = parts  # one buffer holds them all
    return ridx.search(x, k, exclude_ids=None if self_hits else list(ids), **search_kwargs)


def merge_candidates(scores: np.ndarray, rows: np.ndarray, minus_scores: np.ndarray, minus_rows: np.ndarray,
                     k: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge two ``(b, k)`` candidate lists (``-1`` rows: none): per row the higher score, then the ``k`` best per
    query, best first (ties: the plus strand's list first, each in its own order); ``(scores (b, k), rows (b, k))``
    padded with ``-1`` rows (score ``-inf``) at the end."""
    b = len(rows)
    out_s = np.full((b, k), -np.inf, dtype=np.float32)
    out_r = np.full((b, k), -1, dtype=np.int64)
    for i in range(b):
        r = np.concatenate([rows[i], minus_rows[i]])  # (2k,) plus first
        s = np.concatenate([scores[i], minus_scores[i]]).astype(np.float32)
        ok = r >= 0
        r, s = r[ok], s[ok]
        order = np.argsort(-s, kind="stable")  # best first, plus before minus on ties
        r, s = r[order], s[order]
        _, first = np.unique(r, return_index=True)
        first = np.sort(first)[:k]  # each row once, at its best score
        out_r[i, :len(first)], out_s[i, :len(first)] = r[first], s[first]
    return out_s, out_r
