"""Input layouts of ortholog families, and the checks every layout shares.

- a directory of FASTA files, one per family (family id = file name without extension), as OrthoFinder writes
  ``Orthogroup_Sequences/``; Newick trees next to them or in ``trees/`` are picked up;
- one FASTA file plus a labels TSV (``sequence_id``, ``family_id``, metadata columns), or a directory holding
  ``sequences.fasta`` + ``labels.tsv`` (trees in its ``trees/`` folder).

OrthoFinder results directories are read by :mod:`phylocl.data.orthofinder`; :func:`phylocl.data.layouts.read_dataset`
picks the layout.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from phylocl.data.alphabet import Alphabet, get_alphabet
from phylocl.data.dataset import Origins, OrthologDataset
from phylocl.data.labels import match_labels, read_labels
from phylocl.data.fasta import FastaRecord, MixCheck, detect_kind, parse_fasta
from phylocl.data.letters import LetterReport
from phylocl.data.trees import check_tree_leaves, find_tree, read_tree
from phylocl.errors import InputError

__all__ = ["FASTA_SUFFIXES", "COMPRESSED_SUFFIXES", "uncompressed_name", "fasta_stem", "resolve_alphabet",
           "check_unique_ids", "build_dataset", "read_family_dir", "read_fasta_with_labels", "find_pair_files",
           "refuse_broken_links"]

FASTA_SUFFIXES = (".fa", ".fasta", ".faa", ".fna", ".ffn")
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz")  # read by phylocl.data.textio (recognised by their magic bytes)
PAIR_FASTA_NAMES = tuple(f"sequences{s}{z}" for s in FASTA_SUFFIXES for z in ("", *COMPRESSED_SUFFIXES))
PAIR_LABEL_NAMES = tuple(f"labels.tsv{z}" for z in ("", *COMPRESSED_SUFFIXES))


def uncompressed_name(name: str) -> str:
    """``name`` without a compression suffix (``OG1.fa.xz`` → ``OG1.fa``)."""
    lower = name.lower()
    return next((name[:-len(z)] for z in COMPRESSED_SUFFIXES if lower.endswith(z)), name)


def fasta_stem(name: str) -> str | None:
    """File name without its FASTA suffix (``OG1.fa.gz`` → ``OG1``), or ``None`` if it is not a FASTA name."""
    base = uncompressed_name(name)
    for sfx in FASTA_SUFFIXES:
        if base.lower().endswith(sfx) and len(base) > len(sfx):
            return base[: -len(sfx)]
    return None


def resolve_alphabet(alphabet: str | Alphabet | None, sequences) -> Alphabet:
    """``alphabet`` by name (``None``/``"auto"``: detected from ``sequences``), as an :class:`Alphabet`."""
    if _detected(alphabet):
        return get_alphabet(detect_kind(sequences))
    try:
        return get_alphabet(alphabet)
    except ValueError as err:
        raise InputError(str(err)) from None


def _detected(alphabet: str | Alphabet | None) -> bool:
    """Whether ``alphabet`` (as :func:`resolve_alphabet` takes it) leaves the alphabet to be detected."""
    return alphabet is None or (isinstance(alphabet, str) and alphabet.lower() == "auto")


def check_unique_ids(records: Sequence[FastaRecord], paths: Sequence[Path]) -> None:
    """:class:`InputError` at the second occurrence of a repeated id, naming the first one's file and line."""
    first: dict[str, int] = {}
    for k, rec in enumerate(records):
        j = first.setdefault(rec.id, k)
        if j != k:
            raise InputError(f"duplicate sequence id {rec.id!r} (first at {paths[j]}:{records[j].line})",
                             path=paths[k], line=rec.line)


def build_dataset(
    records: Sequence[FastaRecord],
    paths: Sequence[Path],
    families: Sequence[str],
    *,
    alphabet: str | Alphabet | None,
    strict: bool = False,
    keep_ambiguous: bool = False,
    metadata: dict[str, list[str]] | None = None,
    trees: dict[str, Path] | None = None,
    source: dict,
) -> OrthologDataset:
    """Check and clean records read from ``paths`` (one path per record) into an :class:`OrthologDataset`.

    Checks, each an :class:`InputError` with file and line: duplicate ids (both places named), a mix of DNA and
    protein, letters outside the alphabet, trees lacking leaves for their family's sequences. Letters read as the
    unknown token are counted into ``source["unknown_letters"]`` (refused when ``strict``, see
    :mod:`phylocl.data.letters`); ``keep_ambiguous``: DNA ambiguity codes and protein ``B J Z U O`` stay in the sequences, for an alignment
    stage (the embedders read them as ``N``).
    """
    check_unique_ids(records, paths)
    mix = MixCheck(given=alphabet)
    for rec, path in zip(records, paths):
        mix.add(rec, path)
    alpha = resolve_alphabet(alphabet, (r.sequence for r in records))
    report = LetterReport(strict=strict, keep_ambiguous=keep_ambiguous, detected=_detected(alphabet))
    seqs = [report.clean(r.sequence, alpha, path=p, line=r.line, record_id=r.id, layout=r.layout)
            for r, p in zip(records, paths)]
    if report:
        source = {**source, "unknown_letters": report.to_dict()}
    ds = OrthologDataset(ids=[r.id for r in records], sequences=seqs, families=list(families), alphabet=alpha,
                         metadata=metadata or {}, trees=trees or {}, source=source,
                         origins=Origins.of(paths, [r.line for r in records]))
    for fam, tree_path in ds.trees.items():
        names = [ds.ids[i] for i in ds.family_index[fam]]
        check_tree_leaves(read_tree(tree_path), names, path=tree_path, family=fam)
    return ds


def read_family_dir(directory: Path, *, alphabet: str | Alphabet | None = None, strict: bool = False,
                    keep_ambiguous: bool = False) -> OrthologDataset:
    """One FASTA file per family in ``directory`` (not recursive); trees next to them or in ``trees/``.

    Hidden files are not read: macOS leaves a binary ``._OG1.fa`` beside ``OG1.fa`` on other file systems and in
    archives."""
    files = sorted(p for p in directory.iterdir()
                   if p.is_file() and not p.name.startswith(".") and fasta_stem(p.name) is not None)
    if not files:
        subdirs = sorted(p.name for p in directory.iterdir() if p.is_dir() and find_pair_files(p) is not None)
        hint = f"; its sub-directories {', '.join(subdirs)} are datasets: point at one" if subdirs else ""
        raise InputError(
            "no FASTA files (" + " ".join(FASTA_SUFFIXES) + ", optionally .gz, .bz2 or .xz), no sequences.fasta + labels.tsv "
            "and no OrthoFinder results in this directory" + hint, path=directory)
    family_file: dict[str, Path] = {}
    records: list[FastaRecord] = []
    paths: list[Path] = []
    families: list[str] = []
    trees: dict[str, Path] = {}
    for f in files:
        fam = fasta_stem(f.name)
        if fam in family_file:
            raise InputError(f"two files for family {fam!r}: {family_file[fam].name} and {f.name}", path=f)
        family_file[fam] = f
        for rec in parse_fasta(f):
            records.append(rec)
            paths.append(f)
            families.append(fam)
        tree = find_tree(directory, fam, f.name)
        if tree is not None:
            trees[fam] = tree
    return build_dataset(records, paths, families, alphabet=alphabet, strict=strict, keep_ambiguous=keep_ambiguous,
                         trees=trees,
                         source={"format": "family-fasta-directory", "path": str(directory), "files": len(files)})


def read_fasta_with_labels(fasta: Path, labels: Path, *, alphabet: str | Alphabet | None = None,
                           strict: bool = False, tree_dir: Path | None = None, directory: Path | None = None,
                           keep_ambiguous: bool = False) -> OrthologDataset:
    """One FASTA file whose families come from a labels TSV; trees (optional) in ``tree_dir/<family>.nwk``.

    ``directory``: the dataset folder the pair was found in (recorded as the source path).
    """
    table = read_labels(labels)
    records = list(parse_fasta(fasta))
    check_unique_ids(records, [fasta] * len(records))
    match_labels(table, [r.id for r in records], fasta=fasta, lines=[r.line for r in records])
    families = [table.family[r.id] for r in records]
    metadata = {c: [col[r.id] for r in records] for c, col in table.metadata.items()}
    trees = {}
    if tree_dir is not None:
        for fam in dict.fromkeys(families):
            tree = find_tree(tree_dir, fam)
            if tree is not None:
                trees[fam] = tree
    return build_dataset(records, [fasta] * len(records), families, alphabet=alphabet, strict=strict,
                         keep_ambiguous=keep_ambiguous, metadata=metadata,
                         trees=trees, source={"format": "dataset-directory" if directory else "fasta+labels",
                                              "path": str(directory or fasta), "fasta": str(fasta),
                                              "labels": str(labels)})


def refuse_broken_links(directory: Path, *, pair: bool = False) -> None:
    """:class:`InputError` for a symbolic link in ``directory`` named as an input whose target is missing (it was
    skipped, and its family with it, or the pair was not found): ``sequences.fasta`` or ``labels.tsv`` with
    ``pair``, else any FASTA file."""
    names = set(PAIR_FASTA_NAMES + PAIR_LABEL_NAMES) if pair else None
    with os.scandir(directory) as entries:  # is_symlink from the listing: no system call per file
        broken = sorted(e.path for e in entries if e.is_symlink() and not e.name.startswith(".")
                        and (e.name in names if pair else fasta_stem(e.name)) and not os.path.exists(e.path))
    if broken:
        raise InputError(f"a broken symbolic link: its target {os.readlink(broken[0])} does not exist",
                         path=broken[0])


def find_pair_files(directory: Path) -> tuple[Path, Path] | None:
    """``(sequences.fasta, labels.tsv)`` inside ``directory`` if both exist (FASTA suffix variants and compressed names allowed)."""
    fasta = next((directory / n for n in PAIR_FASTA_NAMES if (directory / n).is_file()), None)
    labels = next((directory / n for n in PAIR_LABEL_NAMES if (directory / n).is_file()), None)
    if fasta is None or labels is None:
        return None
    return fasta, labels
