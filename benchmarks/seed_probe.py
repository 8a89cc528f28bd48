"""Could an MMseqs2-style seed stage replace the sparse profile as the candidate stage? A probe, not a search path.

Issue 23's batch targets (10^5-10^6 proteins, 10-500 queries per run, at most 2-3x MMseqs2's time) are missed
by exact scoring of the sparse profile because each query reads millions of posting entries
(docs/performance.md, "A compiled posting-list kernel, measured"). MMseqs2 reads far fewer: its prefilter
matches k-mers over a reduced alphabet (7-mers of 13 letters, plus similar k-mers) and counts matches on the same
diagonal. This probe measures the simplest such stage on a ``benchmarks/scale.py`` set:

- the database's k-mers over a reduced alphabet (``--groups``: letters that share a group are one letter; every
  letter not named, ``X`` included, is one more group), one posting ``(sequence, position)`` per k-mer occurrence;
- per query, the postings of its k-mers, counted per ``(sequence, diagonal)``; a sequence's seed score is the
  count on its best diagonal; the ``C`` sequences of highest score (ties: the lower row) are its candidates;
- ``recall@C``: of each query's relatives in the database (same family, self excluded), the fraction among its
  ``C`` candidates, averaged over queries, for ``C`` = 10, 50, 100, 300, 500; the same figures for the hits of a
  ``phylocl search --no-align -k 500`` file (``--hits``, any number of them: the sparse profile, exact or with
  ``--word-budget``, or another tool's candidate lists written in that form), so the stages compare on the same
  queries; ``--union A B``: the lists of two such files joined (A's, then B's other targets, cut at ``--depth``),
  a candidate stage of two prefilters;
- ``postings_per_query`` (a count, independent of load) and ``ms_per_query`` (numpy, one thread: what a
  pure-Python-and-numpy stage costs; a compiled diagonal counter would cost a few ns per posting).

Families are read from the sequence ids (``famNNNN_sMM``: the part before the first ``_``), as ``scale.py`` writes
them, or from ``--labels`` (a dev set's ``labels.tsv``: ``sequence_id``, ``family_id``), where the queries may be
the database itself (an all-against-all, as the dev-set figures are). Prints one JSON object per ``--k``. Example (docs/performance.md, "A seed stage, probed")::

    phylocl search --query work/queries-100.fasta --index work/db-100000-default-protein-sparse.index --no-align \\
        -k 500 -o work/exact500.tsv
    python benchmarks/seed_probe.py --db work/db-100000.fasta --queries work/queries-100.fasta --k 4 5 6 \\
        --hits work/exact500.tsv
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from phylocl.data.fasta import parse_fasta
from phylocl.data.labels import read_labels

CUTOFFS = (10, 50, 100, 300, 500)
MMSEQS_LIKE = "AST,C,DN,EQ,FY,G,H,IV,KR,LM,P,W"  # 12 groups + one for the rest: 13 letters, as MMseqs2's default
DIAGONAL_SHIFT = 1 << 20  # diagonals are pos - qpos + this, so that (sequence, diagonal) packs into one int64


def read_fasta(path: Path) -> tuple[list[str], list[str]]:
    """``(ids, sequences)`` of a FASTA file, as phylocl reads it (:func:`phylocl.data.fasta.parse_fasta`)."""
    records = list(parse_fasta(path))
    return [r.id for r in records], [r.sequence for r in records]


FAMILIES: dict[str, str] = {}  # sequence id -> family, from --labels; ids not in it: the part before the first "_"


def family(seq_id: str) -> str:
    return FAMILIES.get(seq_id) or seq_id.split("_")[0]


def letter_table(groups: str) -> tuple[np.ndarray, int]:
    """``(256,)`` byte -> reduced letter, and the alphabet size (the named groups plus one for everything else)."""
    names = groups.split(",")
    table = np.full(256, len(names), np.int64)
    for i, group in enumerate(names):
        for c in group:
            table[ord(c)] = table[ord(c.lower())] = i
    return table, len(names) + 1


def kmer_codes(seq: str, table: np.ndarray, size: int, k: int) -> np.ndarray:
    """``(len(seq) - k + 1,)`` int64: the reduced k-mer starting at each position, as a base-``size`` number."""
    letters = table[np.frombuffer(seq.encode(), np.uint8)]
    n = len(letters) - k + 1
    codes = np.zeros(max(n, 0), np.int64)
    for j in range(k):
        codes = codes * size + letters[j:j + max(n, 0)]
    return codes


class SeedIndex:
    """Postings of every reduced k-mer of a database: ``words`` (sorted, distinct) with ``[start, end)`` ranges
    into ``rows`` (sequence) and ``pos`` (position of the k-mer in it)."""

    def __init__(self, *, seqs: list[str], table: np.ndarray, size: int, k: int) -> None:
        codes = [kmer_codes(s, table, size, k) for s in seqs]
        code = np.concatenate(codes) if codes else np.zeros(0, np.int64)
        rows = np.concatenate([np.full(len(c), i, np.int64) for i, c in enumerate(codes)]) if codes else code
        pos = np.concatenate([np.arange(len(c), dtype=np.int64) for c in codes]) if codes else code
        order = np.argsort(code, kind="stable")
        code, self.rows, self.pos = code[order], rows[order], pos[order]
        self.words, self.start = np.unique(code, return_index=True)
        self.end = np.r_[self.start[1:], len(code)].astype(np.int64)
        self.n, self.table, self.size, self.k = len(seqs), table, size, k

    def candidates(self, query: str, depth: int) -> tuple[np.ndarray, int]:
        """The ``depth`` best sequences by best-diagonal count (ties: the lower row; only those with a match), and
        the number of postings read."""
        codes = kmer_codes(query, self.table, self.size, self.k)
        at = np.searchsorted(self.words, codes)
        found = at < len(self.words)
        found[found] = self.words[at[found]] == codes[found]
        qpos, at = np.flatnonzero(found), at[found]
        lengths = self.end[at] - self.start[at]  # (m,)
        total = int(lengths.sum())
        if total == 0:
            return np.zeros(0, np.int64), 0
        first = np.repeat(self.start[at] - np.r_[0, np.cumsum(lengths)[:-1]], lengths) + np.arange(total)
        diagonal = self.pos[first] - np.repeat(qpos, lengths) + DIAGONAL_SHIFT
        pairs, counts = np.unique(self.rows[first] * (2 * DIAGONAL_SHIFT) + diagonal, return_counts=True)
        best = np.zeros(self.n, np.int64)
        np.maximum.at(best, pairs // (2 * DIAGONAL_SHIFT), counts)
        order = np.lexsort((np.arange(self.n), -best))[:depth]
        return order[best[order] > 0], total


def recall(ranked: dict[str, list[str]], fam_size: dict[str, int]) -> dict[str, float]:
    """Mean over the queries with relatives (``fam_size``) of the fraction of them (self excluded) among the first
    ``C`` targets; a query without a ranked list (a stage that returned none) counts 0."""
    out = {}
    for c in CUTOFFS:
        vals = [sum(family(t) == family(q) and t != q for t in ranked.get(q, [])[:c]) / size
                for q, size in fam_size.items() if size]
        out[f"recall@{c}"] = round(float(np.mean(vals)), 4) if vals else None
    return out


def joined(a: dict[str, list[str]], b: dict[str, list[str]], depth: int) -> dict[str, list[str]]:
    """Per query, ``a``'s targets then ``b``'s not already in them, the first ``depth`` (self hits dropped)."""
    out = {}
    for q in {**a, **b}:
        targets = [t for t in dict.fromkeys(a.get(q, []) + b.get(q, [])) if t != q]
        out[q] = targets[:depth]
    return out


def read_hits(path: Path) -> dict[str, list[str]]:
    """Targets per query in file order (a ``phylocl search`` hits TSV)."""
    hits: dict[str, list[str]] = defaultdict(list)
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            hits[row["query"]].append(row["target"])
    return hits


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", type=Path, required=True, help="database FASTA (scale.py's db-N.fasta)")
    ap.add_argument("--queries", type=Path, required=True, help="query FASTA (scale.py's queries-Q.fasta)")
    ap.add_argument("--k", type=int, nargs="+", default=[5], help="k-mer lengths to probe (default 5)")
    ap.add_argument("--groups", default=MMSEQS_LIKE, help=f"reduced alphabet (default {MMSEQS_LIKE})")
    ap.add_argument("--labels", type=Path, help="labels TSV (sequence_id, family_id); default: families from ids")
    ap.add_argument("--hits", type=Path, nargs="*", default=[], help="`phylocl search --no-align -k 500` files")
    ap.add_argument("--union", type=Path, nargs=2, action="append", default=[], metavar=("A", "B"),
                    help="also score two hits files' lists joined: A's list, then B's targets not in it, cut at "
                         "--depth (a candidate stage of two prefilters)")
    ap.add_argument("--depth", type=int, default=300, help="the joined lists' length (default 300)")
    args = ap.parse_args(argv)
    FAMILIES.clear()
    if args.labels:
        FAMILIES.update(read_labels(args.labels).family)
    db_ids, db_seqs = read_fasta(args.db)
    q_ids, q_seqs = read_fasta(args.queries)
    members: dict[str, int] = defaultdict(int)
    for i in db_ids:
        members[family(i)] += 1
    in_db = set(db_ids)
    fam_size = {q: members[family(q)] - (q in in_db) for q in q_ids}
    for path in args.hits:
        print(json.dumps({"stage": str(path), **recall(read_hits(path), fam_size)}))
    for a, b in args.union:
        print(json.dumps({"stage": f"{a} + {b}", "depth": args.depth,
                          **recall(joined(read_hits(a), read_hits(b), args.depth), fam_size)}))
    table, size = letter_table(args.groups)
    for k in args.k:
        t0 = time.perf_counter()
        index = SeedIndex(seqs=db_seqs, table=table, size=size, k=k)
        build = time.perf_counter() - t0
        ranked, postings = {}, 0
        t0 = time.perf_counter()
        for q, s in zip(q_ids, q_seqs):
            rows, read = index.candidates(s, max(CUTOFFS) + 1)
            ranked[q] = [db_ids[r] for r in rows if db_ids[r] != q][:max(CUTOFFS)]
            postings += read
        seconds = time.perf_counter() - t0
        print(json.dumps({"stage": f"seed k={k}", "groups": args.groups, "alphabet": size, "words": len(index.words),
                          "postings": int(index.end[-1]) if len(index.end) else 0, "build_s": round(build, 2),
                          "postings_per_query": round(postings / max(len(q_ids), 1)),
                          "ms_per_query": round(1000 * seconds / max(len(q_ids), 1), 2),
                          **recall(ranked, fam_size)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
