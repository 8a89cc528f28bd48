"""Labels tables: a TSV with a header holding ``sequence_id`` and ``family_id``; other columns are metadata.

Every problem is an :class:`~phylocl.errors.InputError` naming the table and the line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from phylocl.data.textio import read_lines
from phylocl.errors import InputError

__all__ = ["Labels", "read_labels", "match_labels", "REQUIRED_COLUMNS"]

REQUIRED_COLUMNS = ("sequence_id", "family_id")


@dataclass
class Labels:
    """Rows of a labels table: ``family[id]``, ``metadata[column][id]`` and ``line[id]`` (1-based)."""

    path: Path
    family: dict[str, str]
    metadata: dict[str, dict[str, str]]
    line: dict[str, int]


def read_labels(path: str | Path) -> Labels:
    """Read a labels TSV (tab-separated, header line first; ``.gz`` allowed)."""
    path = Path(path)
    lines = read_lines(path, what="a labels table")
    header = lines[0].split("\t")
    header = [h.strip() for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing and header[0].startswith(">"):
        raise InputError("this is a FASTA file, not a labels table (a TSV with sequence_id and family_id columns); "
                         "are the sequences and the labels swapped?", path=path, line=1)
    if missing:
        raise InputError(
            f"labels table lacks column(s) {', '.join(missing)} (header has: {', '.join(header) or 'nothing'}; "
            "columns must be tab-separated)", path=path, line=1)
    repeated = sorted({c for c in header if c and header.count(c) > 1})
    if repeated:
        raise InputError(f"labels table has repeated column name(s) {', '.join(repeated)}", path=path, line=1)
    # columns without a name (a trailing tab, as spreadsheets export) are read only if they are empty
    unnamed = [j for j, c in enumerate(header) if not c]
    named = max(j for j, c in enumerate(header) if c) + 1  # a row may end before the unnamed columns after this
    i_id, i_fam = header.index("sequence_id"), header.index("family_id")
    extra = [(j, c) for j, c in enumerate(header) if c and j not in (i_id, i_fam)]
    family: dict[str, str] = {}
    where: dict[str, int] = {}
    meta: dict[str, dict[str, str]] = {c: {} for _, c in extra}
    for n, text in enumerate(lines[1:], 2):
        if not text.strip():
            continue
        cells = text.split("\t")
        if not named <= len(cells) <= len(header):
            want = len(header) if named == len(header) else f"{named} to {len(header)}"
            raise InputError(f"expected {want} tab-separated columns, found {len(cells)}", path=path, line=n)
        filled = next((j for j in unnamed if j < len(cells) and cells[j].strip()), None)
        if filled is not None:
            raise InputError(f"column {filled + 1} holds {cells[filled].strip()[:40]!r} but has no name in the header "
                             "(line 1)", path=path, line=n)
        sid, fam = cells[i_id].strip(), cells[i_fam].strip()
        if not sid or not fam:
            raise InputError("empty sequence_id or family_id", path=path, line=n)
        if sid in family:
            raise InputError(f"sequence id {sid!r} is listed twice (lines {where[sid]} and {n})", path=path, line=n)
        family[sid] = fam
        where[sid] = n
        for j, c in extra:
            meta[c][sid] = cells[j].strip()
    if not family:
        raise InputError("labels table has a header but no rows", path=path)
    return Labels(path=path, family=family, metadata=meta, line=where)


def match_labels(labels: Labels, ids: Sequence[str], *, fasta: str | Path, lines: Sequence[int] | None = None) -> None:
    """Raise :class:`InputError` unless the labelled ids are exactly the FASTA ids (saying how many differ).

    The error names the labels table's line of the first id missing from the FASTA; when every labelled id is
    there, the FASTA file and header line (``lines``, one per id) of the first record without a label.
    """
    id_set = set(ids)
    not_in_fasta = [i for i in labels.family if i not in id_set]
    unlabelled = [k for k, i in enumerate(ids) if i not in labels.family]
    if not (not_in_fasta or unlabelled):
        return
    parts = []
    if not_in_fasta:
        eg = ", ".join(repr(i) for i in not_in_fasta[:3])
        parts.append(f"{len(not_in_fasta)} id(s) in the labels are not in {Path(fasta).name} (e.g. {eg})")
    if unlabelled:
        eg = ", ".join(repr(ids[k]) for k in unlabelled[:3])
        parts.append(f"{len(unlabelled)} FASTA id(s) have no label in {labels.path.name} (e.g. {eg})")
    message = "labels do not match the FASTA: " + "; ".join(parts)
    if not_in_fasta or lines is None:
        first = not_in_fasta[0] if not_in_fasta else None
        raise InputError(message, path=labels.path, line=labels.line[first] if first else None)
    raise InputError(message, path=fasta, line=lines[unlabelled[0]])
