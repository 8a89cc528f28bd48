"""Letters outside an alphabet's own, read as aligners read them: as the unknown token, counted.

DIAMOND, MMseqs2 and BLAST read real proteomes whose records carry an internal stop ``*`` (read-through
translations) or rare and ambiguous letters. phylocl does the same: every such letter reads as the alphabet's
unknown token (``X`` for protein, ``N`` for DNA) and is counted by kind in a :class:`LetterReport`, which
``phylocl inspect`` prints (kind, count, file:line of the first such letter). With ``strict=True`` they are refused
instead, naming the file, line and column of the first one.

Kinds (upper or lower case):

============== ================================== ==============================
kind           protein                            DNA
============== ================================== ==============================
internal_stop  ``*`` inside a sequence            (refused: not a nucleotide)
ambiguous      ``B Z J``                          ``R Y S W K M B D H V``
rare           ``U O`` (selenocysteine, pyrrolysine)  -
unknown        ``X``                              ``N X``
============== ================================== ==============================

``unknown`` letters are already the unknown token and pass ``strict``. A trailing ``*`` is dropped when the file
is parsed (:func:`phylocl.data.fasta.parse_fasta`) and never counted; RNA ``U`` reads as ``T`` in DNA. Any other
character (digits, punctuation, protein-only letters in DNA) is refused in both modes.

``keep_ambiguous`` (for the alignment stage of search): DNA's ambiguity codes and protein's ``B J Z U O`` stay in
the sequence, upper case, still counted (protein ``*`` still reads as ``X``); the embedders read them as ``N`` /
``X`` all the same (:class:`~phylocl.data.alphabet.Alphabet` maps them to the unknown letter's token), the aligner
scores them as ``blastn`` / ``blastp`` do (:mod:`phylocl.align.scoring`). :func:`stored_letters` lists the letters
such a sequence holds (an index's stored sequences are checked against them).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from pathlib import Path

from phylocl.arguments import flag, on_command_line, setting
from phylocl.data.alphabet import PROTEIN, Alphabet
from phylocl.errors import InputError

__all__ = ["AMBIGUITY_CODES", "KEPT", "LetterReport", "clean_letters", "letter_place", "protein_option",
           "stored_letters", "KINDS"]

AMBIGUITY_CODES = "RYSWKMBDHV"  # DNA's two- and three-base IUPAC codes
KEPT = {"dna": AMBIGUITY_CODES, "protein": "BJZUO"}  # the letters keep_ambiguous keeps (module doc)
_ALIGNER = {"dna": "blastn", "protein": "blastp"}  # whose scores the alignment stage gives the kept letters
_BY_UNKNOWN = {"N": "dna", "X": "protein"}  # an alphabet by the letter its unknown letters read as

KINDS: dict[str, dict[str, str]] = {
    "protein": {"*": "internal_stop", **dict.fromkeys("BZJ", "ambiguous"), **dict.fromkeys("UO", "rare"),
                "X": "unknown"},
    "dna": {**dict.fromkeys(AMBIGUITY_CODES, "ambiguous"), **dict.fromkeys("NX", "unknown")},
}
_WORDS = {"internal_stop": "internal stop", "ambiguous": "ambiguity code", "rare": "rare residue",
          "unknown": "unknown residue"}
_TABLES: dict[tuple[str, bool], tuple[dict, dict, dict]] = {}
_PROTEIN_LETTERS = PROTEIN.accepted | {"*"}  # letters that name a protein read as DNA


def stored_letters(alphabet: Alphabet) -> str:
    """The letters of a sequence read with ``keep_ambiguous``: the alphabet's, plus :data:`KEPT` (DNA's ambiguity
    codes, protein's ``B J Z U O``)."""
    return alphabet.letters + KEPT.get(alphabet.name, "")


def _tables(alphabet: Alphabet, keep_ambiguous: bool = False) -> tuple[dict, dict, dict]:
    """``(canonical, plain, kinds)``: translate table to canonical letters (the :data:`KEPT` letters to themselves,
    upper case, with ``keep_ambiguous``), table deleting letters that need no counting, and letter → kind (upper and
    lower case). Cached per alphabet."""
    key = (alphabet.name, bool(keep_ambiguous))
    kept = KEPT.get(alphabet.name, "") if keep_ambiguous else ""
    if key not in _TABLES:
        kinds = {c: k for letter, k in KINDS.get(alphabet.name, {}).items() for c in {letter, letter.lower()}}
        canonical = {ord(c): alphabet.normalize(c) for c in alphabet.accepted}
        canonical.update({ord(c): c.upper() if c.upper() in kept else alphabet.unknown for c in kinds})
        plain = {ord(c): None for c in alphabet.accepted if c not in kinds}
        _TABLES[key] = (canonical, plain, kinds)
    return _TABLES[key]


def protein_option() -> str:
    """How a user says that the input is protein: ``--alphabet protein`` (``data.alphabet`` for train) on the
    command line, ``alphabet='protein'`` in Python."""
    return "--alphabet protein (train: --set data.alphabet=protein)" if on_command_line() else "alphabet='protein'"


def letter_place(record_line: int, layout, pos: int) -> tuple[int, int | None]:
    """``(line, column)`` in the file of the letter at 0-based ``pos`` of a record's cleaned sequence, from the
    record's header ``record_line`` and :attr:`~phylocl.data.fasta.FastaRecord.layout` (column ``None`` where
    not exact; the header line itself where the layout is unknown)."""
    if layout is None:
        return record_line, None
    if isinstance(layout, int):
        if layout == 0:
            return record_line + 1, pos + 1
        return record_line + 1 + pos // layout, pos % layout + 1
    return record_line + 1 + bisect_right(layout, pos), None


class LetterReport:
    """Counts of the letters read as the unknown token, by kind (see module doc); ``strict`` refuses them.

    :meth:`clean` is the single entry point; :meth:`to_dict` gives ``{kind: {"count": letters, "records":
    records, "letters": "BZ", "reads_as": "X", "first": "file:line"}}`` for the kinds seen.
    """

    def __init__(self, *, strict: bool = False, keep_ambiguous: bool = False, detected: bool = False) -> None:
        self.strict = flag("strict", strict)  # bool() would read strict="no" as True
        self.keep_ambiguous = flag("keep_ambiguous", keep_ambiguous)  # KEPT letters stay (module doc)
        self.detected = detected  # the alphabet was detected from the letters, not given: a refusal says so
        self.kinds: dict[str, dict] = {}

    def clean(self, seq: str, alphabet: Alphabet, *, path: str | Path, line: int, record_id: str,
              layout=None) -> str:
        """``seq`` in canonical letters of ``alphabet``; :class:`InputError` naming the record and the line (and
        column) of the first character the alphabet cannot read (or, when strict, of the first ambiguous, rare or
        internal-stop letter).

        ``line`` is the record's header line and ``layout`` its :attr:`~phylocl.data.fasta.FastaRecord.layout`
        (``None``: the letters' lines are unknown, ``line`` is named)."""
        canonical, plain, kinds = _tables(alphabet, self.keep_ambiguous)
        rest = seq.translate(plain)
        if rest:
            self._note(rest, seq, alphabet, kinds, path=path, line=line, record_id=record_id, layout=layout)
        return seq.translate(canonical)

    def _note(self, rest: str, seq: str, alphabet: Alphabet, kinds: dict, *, path, line, record_id, layout) -> None:
        counts = Counter(rest)
        bad = sorted(c for c in counts if c not in kinds)
        refused = bad or (sorted(c for c in counts if kinds[c] != "unknown") if self.strict else [])
        if refused:
            pos = min(seq.index(c) for c in refused)
            at, column = letter_place(line, layout, pos)
            letters = "".join(refused)
            if bad:
                msg = f"letter(s) {letters!r} not in the {alphabet.name} alphabet (first at position {pos + 1})"
                if self.detected and alphabet.name == "dna" and all(c in _PROTEIN_LETTERS for c in bad):
                    msg += ("; the input was detected as DNA from its first records: if it is protein, give "
                            f"{protein_option()}")
            else:
                strict = setting("strict", True)  # --strict, or strict=True
                how = f"read as {alphabet.unknown}"
                kept = [c for c in letters if self.keep_ambiguous and c.upper() in KEPT.get(alphabet.name, "")]
                scored = f"scored as {_ALIGNER.get(alphabet.name)} scores them by the alignment"  # kept (module doc)
                if kept and len(kept) == len(letters):
                    how += f" by the embedding and are {scored}"
                elif kept:  # protein * with B J Z U O: * reads as X for both
                    how += f", and {''.join(kept)!r} are {scored}"
                msg = (f"letter(s) {letters!r} refused by {strict} (first at position {pos + 1}); without {strict} "
                       f"they {how}")
            raise InputError(f"record {record_id!r}: {msg}", path=path, line=at, column=column)
        for kind in {kinds[c] for c in counts}:
            mine = [c for c in counts if kinds[c] == kind]
            entry = self.kinds.get(kind)
            if entry is None:  # the first letter of this kind: its own line
                at, _ = letter_place(line, layout, min(seq.index(c) for c in mine))
                entry = self.kinds[kind] = {"count": 0, "records": 0, "letters": "", "reads_as": alphabet.unknown,
                                            "first": f"{path}:{at}"}
            entry["count"] += sum(counts[c] for c in mine)
            entry["records"] += 1
            entry["letters"] = "".join(sorted(set(entry["letters"]) | {c.upper() for c in mine}))

    def __bool__(self) -> bool:
        return bool(self.kinds)

    def to_dict(self) -> dict[str, dict]:
        """Kind → ``count`` (letters), ``records``, ``letters``, ``reads_as``, ``first`` (file:line)."""
        return {k: dict(v) for k, v in sorted(self.kinds.items())}

    def lines(self) -> list[str]:
        """One readable line per kind seen, e.g. ``2 internal stops (*) in 2 records read as X; first at f.fa:17``."""
        out = []
        for kind, e in sorted(self.kinds.items()):
            word = _WORDS[kind] + ("s" if e["count"] != 1 else "")
            recs = f"{e['records']} record{'s' if e['records'] != 1 else ''}"
            how = f"read as {e['reads_as']}"
            name = _BY_UNKNOWN.get(e["reads_as"], "")
            if self.keep_ambiguous and set(e["letters"]) & set(KEPT.get(name, "")):  # kept letters (module doc)
                how += f" by the embedding, scored as {_ALIGNER[name]} scores them by the alignment"
            out.append(f"{e['count']:,} {word} ({e['letters']}) in {recs} {how}; first at {e['first']}")
        return out


def clean_letters(seq: str, alphabet: Alphabet, *, path: str | Path, line: int, record_id: str,
                  report: LetterReport | None = None, layout=None) -> str:
    """``seq`` in canonical letters of ``alphabet`` (see :class:`LetterReport`; a throwaway lenient one if none)."""
    report = report if report is not None else LetterReport()
    return report.clean(seq, alphabet, path=path, line=line, record_id=record_id, layout=layout)
