"""OrthoFinder results: ``Orthogroups/Orthogroups.tsv`` plus the proteome FASTA files it was run on.

OrthoFinder is run as ``orthofinder -f <proteomes>`` and writes ``<proteomes>/OrthoFinder/Results_<date>/``
(OrthoFinder 2; version 1 wrote ``<proteomes>/Results_<date>/`` with ``Orthogroups.csv``, also tab-separated).
``Orthogroups.tsv`` has a header ``Orthogroup<TAB><species 1><TAB>...`` where each species is a proteome file name
without its extension, and one row per orthogroup whose cells list that species' genes separated by ``", "``.
A gene is named by the first word of its FASTA header (or by the whole header when the first words are not unique
within a species), with ``: , ( )`` replaced by ``_``; both spellings are looked up here.

Family = orthogroup; metadata column ``species`` = proteome name. Genes OrthoFinder left unassigned
(``Orthogroups_UnassignedGenes.tsv``) are not read. Gene ids shared by two proteomes are prefixed ``<species>|``.
"""

from __future__ import annotations

from pathlib import Path

from phylocl.data.alphabet import Alphabet
from phylocl.data.dataset import OrthologDataset
from phylocl.data.formats import FASTA_SUFFIXES, build_dataset, uncompressed_name
from phylocl.data.fasta import FastaRecord, parse_fasta
from phylocl.data.textio import read_lines
from phylocl.errors import InputError

__all__ = ["find_orthofinder_results", "read_orthofinder"]

_TABLE_NAMES = ("Orthogroups/Orthogroups.tsv", "Orthogroups.tsv", "Orthogroups.csv")
_PROTEOME_SUFFIXES = FASTA_SUFFIXES + (".fas", ".pep")
_SANITIZE = str.maketrans({":": "_", ",": "_", "(": "_", ")": "_"})


def _table_in(directory: Path) -> Path | None:
    return next((directory / n for n in _TABLE_NAMES if (directory / n).is_file()), None)


def find_orthofinder_results(path: Path) -> Path | None:
    """The ``Orthogroups.tsv`` of an OrthoFinder run found from ``path``, or ``None``.

    ``path`` may be the table itself, a ``Results_*`` directory, its ``Orthogroups/`` folder, the ``OrthoFinder/``
    directory or the proteome directory holding it; with several ``Results_*`` runs the choice is refused.
    """
    if path.is_file():
        return path if path.name in ("Orthogroups.tsv", "Orthogroups.csv") else None
    table = _table_in(path)
    if table is not None:
        return table
    for base in (path / "OrthoFinder", path):
        runs = sorted(p for p in base.glob("Results_*") if p.is_dir() and _table_in(p) is not None)
        if len(runs) == 1:
            return _table_in(runs[0])
        if len(runs) > 1:
            names = ", ".join(r.name for r in runs)
            raise InputError(f"several OrthoFinder runs found ({names}); point at one Results_* directory", path=base)
    return None


def _proteome_dir(table: Path) -> Path:
    results = table.parent.parent if table.parent.name == "Orthogroups" else table.parent
    # OrthoFinder 2: <proteomes>/OrthoFinder/Results_x ; OrthoFinder 1: <proteomes>/Results_x
    return results.parent.parent if results.parent.name == "OrthoFinder" else results.parent


def _proteome_files(directory: Path, species: list[str], table: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for p in sorted(directory.iterdir()) if directory.is_dir() else []:
        base = uncompressed_name(p.name)
        stem, dot, sfx = base.rpartition(".")
        if p.is_file() and dot and f".{sfx.lower()}" in _PROTEOME_SUFFIXES and stem in species:
            found.setdefault(stem, p)
    missing = [s for s in species if s not in found]
    if missing:
        raise InputError(
            f"proteome FASTA file(s) for {len(missing)} species of {table.name} not found in {directory} "
            f"(e.g. {', '.join(repr(m) for m in missing[:3])}; looked for <species>{'|'.join(_PROTEOME_SUFFIXES)})",
            path=table)
    return found


def _index_proteome(path: Path) -> dict[str, FastaRecord]:
    """Gene name → record, under both names OrthoFinder may use (first word, whole header; sanitized)."""
    index: dict[str, FastaRecord] = {}
    for rec in parse_fasta(path):
        full = f"{rec.id} {rec.description}".strip()
        for name in (rec.id.translate(_SANITIZE), full.translate(_SANITIZE), rec.id):
            index.setdefault(name, rec)
    return index


def read_orthofinder(table: Path, *, alphabet: str | Alphabet | None = None, strict: bool = False,
                     keep_ambiguous: bool = False) -> OrthologDataset:
    """Read the orthogroups of ``table`` with their sequences from the proteomes OrthoFinder was run on.

    ``strict``: refuse internal stops, rare and ambiguous letters (see :mod:`phylocl.data.letters`);
    ``keep_ambiguous``: DNA ambiguity codes and protein ``B J Z U O`` stay in the sequences (:func:`~phylocl.data.formats.build_dataset`)."""
    lines = read_lines(table, what="an OrthoFinder orthogroups table")
    header = lines[0].split("\t")
    if len(header) < 2 or header[0].strip() != "Orthogroup":
        raise InputError("not an OrthoFinder orthogroups table (header must start with 'Orthogroup<TAB>')",
                         path=table, line=1)
    species = [h.strip() for h in header[1:]]
    unnamed = next((j for j, name in enumerate(species, 2) if not name), None)
    if unnamed is not None:
        raise InputError(f"column {unnamed} of the header has no species name", path=table, line=1)
    repeated = sorted({name for name in species if species.count(name) > 1})
    if repeated:
        raise InputError(f"species column(s) {', '.join(repeated)} appear twice in the header", path=table, line=1)
    proteome_dir = _proteome_dir(table)
    files = _proteome_files(proteome_dir, species, table)
    indexes = {s: _index_proteome(files[s]) for s in species}
    records, paths, families, spp = [], [], [], []
    seen: dict[tuple[str, str], int] = {}
    groups: dict[str, int] = {}  # orthogroup -> its line
    for n, text in enumerate(lines[1:], 2):
        if not text.strip():
            continue
        cells = text.split("\t")
        if len(cells) > len(header):
            raise InputError(f"expected at most {len(header)} columns, found {len(cells)}", path=table, line=n)
        og = cells[0].strip()
        if not og:
            raise InputError("row without an orthogroup id (first column empty)", path=table, line=n)
        if og in groups:
            raise InputError(f"orthogroup {og!r} is listed twice (lines {groups[og]} and {n})", path=table, line=n)
        groups[og] = n
        for sp, cell in zip(species, cells[1:]):
            for gene in (g.strip() for g in cell.split(",")):
                if not gene:
                    continue
                rec = indexes[sp].get(gene)
                if rec is None:
                    raise InputError(f"gene {gene!r} of {og} is not in the {sp} proteome ({files[sp]})",
                                     path=table, line=n)
                if (sp, gene) in seen:
                    where = (f"listed twice in {og}" if seen[sp, gene] == n else
                             f"in two orthogroups (lines {seen[sp, gene]} and {n})")
                    raise InputError(f"gene {gene!r} ({sp}) is {where}", path=table, line=n)
                seen[sp, gene] = n
                records.append(rec._replace(id=gene))
                paths.append(files[sp])
                families.append(og)
                spp.append(sp)
    if not records:
        raise InputError("no orthogroups with genes in table", path=table)
    owners: dict[str, set[str]] = {}
    for rec, sp in zip(records, spp):
        owners.setdefault(rec.id, set()).add(sp)
    records = [r._replace(id=f"{sp}|{r.id}") if len(owners[r.id]) > 1 else r for r, sp in zip(records, spp)]
    return build_dataset(records, paths, families, alphabet=alphabet, strict=strict, keep_ambiguous=keep_ambiguous,
                         metadata={"species": spp},
                         source={"format": "orthofinder", "path": str(table), "proteomes": str(proteome_dir)})
