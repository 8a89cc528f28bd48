"""FASTA records: Biopython parsing plus header line numbers, sequence cleaning and alphabet checks.

Parsing is :func:`Bio.SeqIO.FastaIO.SimpleFastaParser` (wrapped or unwrapped lines, CRLF, descriptions after the
id); this module adds what a user needs when something is wrong: the 1-based line of every record header, and
:class:`~phylocl.errors.InputError` naming file and line for empty files, non-FASTA text, binary files, records
without an id and empty sequences. Files are opened as gzip when they start with the gzip magic bytes, whatever
their name.

Cleaning (:func:`clean_letters`): alignment gaps ``-`` and ``.`` are removed and a trailing stop ``*`` is dropped;
letters are then upper-cased and mapped to the canonical letters of the alphabet (``Alphabet.normalize``
semantics, done with ``str.translate`` for speed). In nucleotide data ``X`` reads as ``N`` (some alignment tools
write ``X`` for an unknown base).
"""

from __future__ import annotations

import gzip
import io
from collections import deque
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

from Bio.SeqIO.FastaIO import SimpleFastaParser

from phylocl.data.alphabet import DNA, Alphabet
from phylocl.errors import InputError

__all__ = ["FastaRecord", "open_text", "parse_fasta", "clean_letters", "nucleotide_fraction", "looks_like_protein",
           "detect_kind", "MixCheck", "DNA_THRESHOLD"]

DNA_THRESHOLD = 0.9  # same rule as phylocl.data.alphabet.looks_like_dna / detect_alphabet
_NUC = "ACGTUNacgtun"
_PROTEIN_ONLY = "EFILPQefilpq"  # letters that are neither nucleotides nor IUPAC nucleotide codes
_GAPS = str.maketrans("", "", "-.")


class FastaRecord(NamedTuple):
    """One FASTA record. ``sequence`` is cleaned (see module doc); ``line`` is the 1-based header line."""

    id: str
    sequence: str
    line: int
    description: str = ""


def open_text(path: str | Path) -> io.TextIOBase:
    """Open ``path`` for reading text (gzip detected from the magic bytes, universal newlines, UTF-8).

    Raises :class:`InputError` when the path is missing, a directory, empty, or binary (not text).
    """
    path = Path(path)
    if not path.exists():
        raise InputError("no such file or directory", path=path)
    if path.is_dir():
        raise InputError("is a directory, expected a FASTA file", path=path)
    with open(path, "rb") as raw:
        magic = raw.read(2)
    if magic == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as z:
                head = z.read(4096)
        except (OSError, EOFError) as err:
            raise InputError(f"corrupt gzip file ({err})", path=path) from None
        handle = io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline=None)
    else:
        with open(path, "rb") as raw:
            head = raw.read(4096)
        handle = open(path, encoding="utf-8", newline=None)
    if not head.strip():
        handle.close()
        raise InputError("empty file", path=path)
    if b"\x00" in head:
        handle.close()
        raise InputError("not a FASTA file (binary content)", path=path)
    return handle


def _numbered_lines(handle, path: Path, headers: deque) -> Iterator[str]:
    """Yield the lines of ``handle``, pushing the number of each header line onto ``headers``.

    The text before the first header may hold only blank lines (Biopython would skip anything there; a TSV or a
    log file would then read as "no records", so it is refused here with its line number).
    """
    n = 0
    seen_header = False
    try:
        for n, line in enumerate(handle, 1):
            if line.startswith(">"):
                seen_header = True
                headers.append(n)
            elif not seen_header and line.strip():
                shown = line.strip()[:40]
                raise InputError(f"not a FASTA file: expected a '>' header line, found {shown!r}", path=path, line=n)
            yield line
    except UnicodeDecodeError:
        raise InputError("not a FASTA file (undecodable bytes, not UTF-8 text)", path=path, line=n + 1) from None


def parse_fasta(path: str | Path) -> Iterator[FastaRecord]:
    """Stream the records of ``path`` with gaps and trailing ``*`` removed (letters not yet checked).

    Raises :class:`InputError` (with ``path`` and ``line``) for unreadable/empty/non-FASTA files, headers without
    an id and sequences that are empty after cleaning.
    """
    path = Path(path)
    headers: deque[int] = deque()
    count = 0
    with open_text(path) as handle:
        for title, seq in SimpleFastaParser(_numbered_lines(handle, path, headers)):
            line = headers.popleft()
            parts = title.split(None, 1)
            if not parts:
                raise InputError("record without an id (empty '>' line)", path=path, line=line)
            seq = seq.translate(_GAPS).rstrip("*")
            if not seq:
                raise InputError(f"record {parts[0]!r} has an empty sequence", path=path, line=line)
            count += 1
            yield FastaRecord(parts[0], seq, line, parts[1] if len(parts) > 1 else "")
    if count == 0:
        raise InputError("no FASTA records found", path=path)


_TABLES: dict[str, dict[int, str]] = {}


def _canonical_table(alphabet: Alphabet) -> dict[int, str]:
    """``str.translate`` table: every accepted letter → its canonical upper-case letter (cached per alphabet)."""
    if alphabet.name in _TABLES:
        return _TABLES[alphabet.name]
    table = {ord(c): alphabet.normalize(c) for c in alphabet.accepted}
    _TABLES[alphabet.name] = table
    return table


def clean_letters(seq: str, alphabet: Alphabet, *, path: str | Path, line: int, record_id: str) -> str:
    """``seq`` in canonical letters of ``alphabet``; :class:`InputError` naming the record and line otherwise."""
    if alphabet.name == DNA.name and ("X" in seq or "x" in seq):
        seq = seq.replace("X", "N").replace("x", "N")
    bad = alphabet.invalid_positions(seq)
    if bad:
        letters = "".join(sorted({c for _, c in bad}))
        raise InputError(
            f"record {record_id!r}: letter(s) {letters!r} not in the {alphabet.name} alphabet "
            f"(first at position {bad[0][0] + 1})",
            path=path, line=line,
        )
    return seq.translate(_canonical_table(alphabet))


def nucleotide_fraction(seq: str) -> float:
    """Fraction of ``seq`` that is A, C, G, T, U or N (any case)."""
    return sum(seq.count(c) for c in _NUC) / max(len(seq), 1)


def looks_like_protein(seq: str) -> bool:
    """True if ``seq`` is clearly a protein: below the DNA threshold and holding a protein-only letter (E F I L P Q)."""
    return nucleotide_fraction(seq) < DNA_THRESHOLD and any(c in seq for c in _PROTEIN_ONLY)


def detect_kind(sequences: Iterable[str]) -> str:
    """``"dna"`` if at least 90% of all residues are nucleotides, else ``"protein"`` (``detect_alphabet``'s rule)."""
    total = nuc = 0
    for s in sequences:
        total += len(s)
        nuc += sum(s.count(c) for c in _NUC)
    return "dna" if total and nuc >= DNA_THRESHOLD * total else "protein"


class MixCheck:
    """Refuses a dataset that mixes DNA and protein sequences; feed it every record with :meth:`add`.

    A record counts as DNA when at least 90% of it is A/C/G/T/U/N and it is at least :attr:`min_dna_length`
    long (short peptides such as ``GATTACA`` are valid protein), and as protein when :func:`looks_like_protein`.
    """

    min_dna_length = 20

    def __init__(self) -> None:
        self.first: dict[str, tuple[str, Path, int]] = {}

    def add(self, record: FastaRecord, path: str | Path) -> None:
        seq = record.sequence
        if len(seq) >= self.min_dna_length and nucleotide_fraction(seq) >= DNA_THRESHOLD:
            kind = "DNA"
        elif looks_like_protein(seq):
            kind = "protein"
        else:
            return
        if kind in self.first:
            return
        self.first[kind] = (record.id, Path(path), record.line)
        if len(self.first) == 2:
            other = "protein" if kind == "DNA" else "DNA"
            oid, opath, oline = self.first[other]
            raise InputError(
                f"mix of DNA and protein sequences: record {record.id!r} looks like {kind} but record {oid!r} "
                f"({opath}:{oline}) looks like {other}; use one alphabet per dataset",
                path=path, line=record.line,
            )
