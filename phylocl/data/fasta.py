"""FASTA records: parsing as Biopython parses, header line numbers, sequence cleaning and alphabet checks.

Parsing follows :func:`Bio.SeqIO.FastaIO.SimpleFastaParser` record for record (wrapped or unwrapped lines, CRLF,
descriptions after the id; tests/data compare the two on fuzzed files) in one pass of its own, because importing
``Bio.SeqIO`` costs ~80 ms, a sixth of a one-query ``phylocl search``; this module adds what a user needs when
something is wrong: the 1-based line of every record header, and
:class:`~phylocl.errors.InputError` naming file and line for empty files, non-FASTA text, binary files, records
without an id and empty sequences. Files are opened as gzip when they start with the gzip magic bytes, whatever
their name.

Files are opened once (:func:`~phylocl.data.textio.open_text`), so named pipes and ``<(...)`` work; a UTF-8
byte-order mark is accepted. Parsing removes alignment gaps ``-`` and ``.`` and drops a trailing stop ``*``;
:func:`~phylocl.data.letters.clean_letters` then maps letters onto the alphabet (internal stops, rare and
ambiguous letters read as the unknown token and are counted, see :mod:`phylocl.data.letters`).
"""

from __future__ import annotations

import re
from array import array
from itertools import accumulate
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, NamedTuple

from phylocl.data.letters import clean_letters, protein_option
from phylocl.data.textio import READ_ERRORS, open_text, os_error_message, undecodable
from phylocl.errors import InputError

if TYPE_CHECKING:
    from phylocl.data.alphabet import Alphabet

__all__ = ["FastaRecord", "open_text", "parse_fasta", "not_fasta_message", "first_line_refusal", "clean_letters",
           "nucleotide_fraction", "looks_like_protein",
           "looks_like", "detect_kind", "MixCheck", "DNA_THRESHOLD", "strip_gaps"]

DNA_THRESHOLD = 0.9  # same rule as phylocl.data.alphabet.looks_like_dna / detect_alphabet
_NUC = "ACGTUNacgtun"
_PROTEIN_ONLY = "EFILPQefilpq"  # letters that are neither nucleotides nor IUPAC nucleotide codes
_IUPAC_ONLY = "RYSWKMBDHVXryswkmbdhvx"  # nucleotide ambiguity codes (and X) beyond A C G T U N
_GAPS = str.maketrans("", "", "-.")
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f]")  # control characters but tab


def strip_gaps(seq: str) -> str:
    """``seq`` without alignment gaps (``-``, ``.``) and a trailing stop ``*``, as records are read."""
    return seq.translate(_GAPS).rstrip("*")


class FastaRecord(NamedTuple):
    """One FASTA record. ``sequence`` is cleaned (see module doc); ``line`` is the 1-based header line.

    ``layout`` places the sequence's letters on the file's lines, for errors about one letter (see
    :func:`~phylocl.data.letters.letter_place`): ``None`` unknown (a record not read from a file), an ``int``
    ``W`` when the sequence lines follow the header and hold ``W`` letters each (the last one up to ``W``; ``0``:
    all on one line) with nothing removed from them, so line and column are exact; otherwise an ``array('I')`` of
    the cumulative letter counts of the sequence lines (gaps, spaces removed), so the line is exact.
    """

    id: str
    sequence: str
    line: int
    description: str = ""
    layout: "int | array | None" = None


def _layout(lines: list[str], raw: str, cleaned: str):
    """:attr:`FastaRecord.layout` of a record's sequence ``lines`` (``raw`` their join, ``cleaned`` it without
    spaces and gaps)."""
    n = len(lines)
    if len(cleaned) == len(raw):  # nothing removed: letters sit where they are in the lines
        if n == 1:
            return 0
        while n > 1 and not lines[n - 1]:  # blank lines between records hold no letters
            n -= 1
        width, last = len(lines[0]), len(lines[n - 1])
        # every line but the last as wide as the first (their total and the widest line say so), the last no wider
        if width and last <= width and len(raw) - last == width * (n - 1) and max(map(len, lines)) == width:
            return width if n > 1 else 0
    return array("I", accumulate(len(_letters(line)) for line in lines))


def _titled_records(handle, path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """``(header line, title, sequence lines)`` of every record of ``handle``: the title is the header without
    ``>`` and trailing whitespace, the lines have trailing whitespace removed; joined without spaces and carriage
    returns (:func:`_letters` then also removes gaps) they are the sequence
    :func:`Bio.SeqIO.FastaIO.SimpleFastaParser` gives.

    The text before the first header may hold only blank lines (Biopython would skip anything there; a TSV or a
    log file would then read as "no records", so it is refused here with its line number). The handle decodes
    with ``surrogateescape``: :func:`parse_fasta` refuses a record's line that was not UTF-8 by its number.
    """
    n = 0
    title: str | None = None
    start = 0
    lines: list[str] = []
    try:
        for n, line in enumerate(handle, 1):
            if line[0] == "\ufeff":  # a byte-order mark inside: files each saved with one, joined with `cat`
                line = line[1:] or "\n"
            if line[0] == ">":
                if title is not None:
                    yield start, title, lines
                title, start, lines = line[1:].rstrip(), n, []
            elif title is not None:
                lines.append(line.rstrip())
            elif line.strip():
                if line.lstrip()[:1] == ">":
                    _indented_header(line, path=path, line_number=n)
                undecodable(line, path=path, line_number=n, what="a FASTA file")
                raise InputError(not_fasta_message(line), path=path, line=n)
    except UnicodeDecodeError:  # a handle opened without surrogateescape
        raise InputError("not a FASTA file (undecodable bytes, not UTF-8 text)", path=path, line=n + 1) from None
    except READ_ERRORS as err:  # a truncated gzip stream, a vanished network file
        raise InputError(f"read failed after line {n} ({os_error_message(err) if isinstance(err, OSError) else err})",
                         path=path) from None
    if title is not None:
        yield start, title, lines


_ESCAPED = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8, as surrogateescape reads them
_ID = re.compile(r"(\S*)(\s*)(.*)", re.S)  # a header: the id, the space after it, the description


def _latin1_bytes(text: str) -> str:
    """``text`` read with ``surrogateescape``, each byte that was not UTF-8 taken as its Latin-1 letter."""
    return _ESCAPED.sub(lambda m: chr(ord(m.group()) - 0xDC00), text)


_OTHER_FORMATS = (  # (how a file of the format starts, its name): files users give where FASTA belongs
    (re.compile(r"@(HD|SQ|RG|PG|CO)\t"), "SAM"),  # its header lines; before FASTQ's '@'
    (re.compile(r"@\S"), "FASTQ"),
    (re.compile(r"LOCUS\s"), "GenBank"),
    (re.compile(r"ID {3}"), "EMBL / UniProt flat-file"),
    (re.compile(r"# ?STOCKHOLM", re.I), "Stockholm"),
    (re.compile(r"CLUSTAL|MUSCLE \(", re.I), "Clustal"),
    (re.compile(r"##gff-version", re.I), "GFF"),
    (re.compile(r"#NEXUS", re.I), "NEXUS"),
    (re.compile(r"\s*\d+\s+\d+\s*$"), "PHYLIP"),
    (re.compile(r"[\[{]"), "JSON"),
)


def not_fasta_message(line: str) -> str:
    """The refusal of a file whose first non-blank ``line`` is not a FASTA header, naming the format it looks like
    (FASTQ, GenBank, Stockholm, ...) where its first line tells."""
    shown = line.strip()[:40]
    found = next((name for pattern, name in _OTHER_FORMATS if pattern.match(line.lstrip("\ufeff"))), None)
    like = f"; it looks like {found} format: convert it to FASTA first" if found else ""
    return f"not a FASTA file: expected a '>' header line, found {shown!r}{like}"


def first_line_refusal(path: Path) -> InputError | None:
    """The refusal (:func:`not_fasta_message`, at its line) of the regular file ``path`` when its first non-blank line
    is not a FASTA header (compressed files read through :func:`open_text`), else ``None`` (a FASTA file, a pipe, an
    unreadable file: their readers say what is wrong)."""
    if not path.is_file():
        return None
    try:
        with open_text(path) as handle:
            for n, line in enumerate(handle, 1):
                if line.strip():
                    text = line.lstrip("\ufeff")
                    if text.lstrip()[:1] == ">":
                        return None
                    return InputError(not_fasta_message(text), path=path, line=n)
    except (OSError, UnicodeDecodeError, InputError, EOFError, ValueError):
        return None
    return None


def _indented_header(text: str, *, path: Path, line_number: int) -> None:
    """:class:`InputError` at ``line_number`` if ``text`` is a header line with whitespace before its ``>``."""
    if text[:1] in (" ", "\t") and text.lstrip()[:1] == ">":
        raise InputError("indented header line: '>' must be the line's first character", path=path,
                         line=line_number, column=len(text) - len(text.lstrip()) + 1)


def _letters(text: str) -> str:
    """The letters of a record's sequence text (a line, or its lines joined): spaces and carriage returns removed
    (as Biopython joins the lines), and alignment gaps."""
    return text.replace(" ", "").replace("\r", "").translate(_GAPS)


def _control_character(text: str) -> int | None:
    """0-based index of the first control character (other than tab) of ``text``, or ``None``."""
    if text.isprintable():
        return None
    found = _CONTROL.search(text)
    return found.start() if found else None


def parse_fasta(path: str | Path) -> Iterator[FastaRecord]:
    """Stream the records of ``path`` with gaps and trailing ``*`` removed (letters not yet checked).

    Raises :class:`InputError` (with ``path`` and ``line``) for unreadable/empty/non-FASTA files, headers without
    an id or holding control characters (a NUL byte: binary content) and sequences that are empty after cleaning.
    """
    path = Path(path)
    count = 0
    with open_text(path, errors="surrogateescape") as handle:
        for line, title, lines in _titled_records(handle, path):
            raw = "".join(lines)
            if ">" in raw:  # one search per record; a sequence line can hold '>' only as a bad letter or this
                for k, text in enumerate(lines, 1):
                    _indented_header(text, path=path, line_number=line + k)
            if not (title.isascii() and raw.isascii()):  # O(1) checks; only then look for bytes that were not UTF-8
                # the id and the letters must be UTF-8; a description's other bytes (Latin-1 names of old files:
                # 'M\xfcller') are read as Latin-1 letters, as BLAST and DIAMOND take them
                head, space, rest = _ID.match(title).groups()
                title = head + space + _latin1_bytes(rest)
                for k, text in enumerate([">" + head, *lines]):
                    undecodable(text, path=path, line_number=line + k, what="a FASTA file")
            parts = title.split(None, 1)
            if not parts:
                raise InputError("record without an id (empty '>' line)", path=path, line=line)
            bad = _control_character(title)
            if bad is not None:
                raise InputError(f"header holds the control character {title[bad]!r} (binary content?)", path=path,
                                 line=line, column=bad + 2)
            cleaned = _letters(raw)
            seq = cleaned.rstrip("*")
            if not seq:
                raise InputError(f"record {parts[0]!r} has an empty sequence", path=path, line=line)
            count += 1
            yield FastaRecord(parts[0], seq, line, parts[1] if len(parts) > 1 else "", _layout(lines, raw, cleaned))
    if count == 0:
        raise InputError("no FASTA records found", path=path)


def nucleotide_fraction(seq: str) -> float:
    """Fraction of ``seq`` that is A, C, G, T, U or N (any case)."""
    return sum(seq.count(c) for c in _NUC) / max(len(seq), 1)


def looks_like_protein(seq: str) -> bool:
    """True if ``seq`` is clearly a protein: below the DNA threshold and holding a protein-only letter (E F I L P Q)."""
    return nucleotide_fraction(seq) < DNA_THRESHOLD and any(c in seq for c in _PROTEIN_ONLY)


def looks_like(kind: str, seq: str) -> bool:
    """True if ``seq`` clearly reads as ``kind`` (``"dna"``: at least 90% nucleotides; ``"protein"``:
    :func:`looks_like_protein`); used to name the record that shows a dataset's alphabet."""
    return nucleotide_fraction(seq) >= DNA_THRESHOLD if kind == "dna" else looks_like_protein(seq)


def detect_kind(sequences: Iterable[str]) -> str:
    """``"dna"`` or ``"protein"`` for a set of sequences.

    DNA when at least 90% of all residues are nucleotides (A C G T U N), or when at least half are and the rest
    are IUPAC nucleotide codes with no protein-only letter (E F I L P Q; proteins hold about 35% of these), so
    DNA with ~20% ambiguity codes reads as DNA.
    """
    seqs = list(sequences)
    total = sum(len(s) for s in seqs)
    nuc = sum(s.count(c) for s in seqs for c in _NUC)
    if not total:
        return "protein"
    if nuc >= DNA_THRESHOLD * total:
        return "dna"
    if nuc < 0.5 * total:
        return "protein"
    iupac = sum(s.count(c) for s in seqs for c in _IUPAC_ONLY)  # only for the rare in-between case
    return "dna" if nuc + iupac >= 0.99 * total else "protein"


class MixCheck:
    """Refuses a dataset that mixes DNA and protein sequences; feed it every record with :meth:`add`.

    A record counts as DNA when at least 90% of it is A/C/G/T/U/N and it is at least :attr:`min_dna_length`
    long (short peptides such as ``GATTACA`` are valid protein), and as protein when :func:`looks_like_protein`.
    ``given``: the alphabet the caller asked for (``--alphabet``); when it is protein nothing is refused, since
    a protein record may be mostly A, C, G, T and N (poly-Ala, poly-Asn stretches) and DNA letters are protein
    letters. Asked for DNA, a protein record is still refused (its letters are not DNA's).
    """

    min_dna_length = 20

    def __init__(self, *, given: str | Alphabet | None = None) -> None:
        self.first: dict[str, tuple[str, Path, int]] = {}
        name = getattr(given, "name", given)
        self.off = name == "protein"
        self.detected = name is None or str(name).lower() == "auto"  # a refusal then says how to ask for protein

    def add(self, record: FastaRecord, path: str | Path) -> None:
        if self.off:
            return
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
            hint = (f", or, if every record is protein (poly-Ala and poly-Asn stretches look like DNA), give "
                    f"{protein_option()}") if self.detected else ""
            raise InputError(
                f"mix of DNA and protein sequences: record {record.id!r} looks like {kind} but record {oid!r} "
                f"({opath}:{oline}) looks like {other}; use one alphabet per dataset{hint}",
                path=path, line=record.line,
            )
