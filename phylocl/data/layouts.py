"""Reading ortholog families: :func:`read_dataset` (any supported layout) and :func:`iter_fasta` (streaming).

Layouts, detected from ``path``:

- a FASTA file plus ``labels`` (TSV with ``sequence_id``, ``family_id`` and optional metadata columns);
- a directory with ``sequences.fasta`` + ``labels.tsv`` (the layout of ``datasets/`` and ``shared/data``);
- an OrthoFinder run: ``Orthogroups.tsv``, a ``Results_*`` directory, or the proteome directory above it;
- a directory of FASTA files, one per family (``.fa .fasta .faa .fna .ffn``, optionally ``.gz .bz2 .xz``).

Sequences come back in canonical upper-case letters (gaps and a trailing ``*`` removed); the alphabet is detected
unless given. Every defect in the input is an :class:`~phylocl.errors.InputError` naming the file (and line).

Example::

    ds = read_dataset("datasets/example-mini-mit/protein")
    ds.summary()["families"]            # 10
"""

from __future__ import annotations

import logging
import os
from itertools import chain, islice
from pathlib import Path
from typing import Iterator

from phylocl.arguments import on_command_line, option, usable_path
from phylocl.data.alphabet import Alphabet
from phylocl.data.dataset import OrthologDataset, concat_datasets
from phylocl.data.formats import (PAIR_FASTA_NAMES, fasta_stem, find_pair_files, read_family_dir,
                                  read_fasta_with_labels, refuse_broken_links, resolve_alphabet)
from phylocl.data.orthofinder import find_orthofinder_results, read_orthofinder
from phylocl.data.fasta import FastaRecord, MixCheck, first_line_refusal, parse_fasta
from phylocl.data.letters import LetterReport
from phylocl.data.textio import missing_message
from phylocl.data.trees import TREE_SUFFIXES
from phylocl.errors import InputError

__all__ = ["read_dataset", "read_datasets", "iter_fasta", "FastaStream", "OrthologDataset", "FastaRecord",
           "concat_datasets"]

_DETECT_RECORDS = 256  # records looked at to detect the alphabet of a stream


def read_dataset(path: str | Path, *, labels: str | Path | None = None,
                 alphabet: str | Alphabet | None = None, strict: bool = False,
                 keep_ambiguous: bool = False) -> OrthologDataset:
    """Read ortholog families from ``path`` (layout detected, see module doc).

    Args:
        path: FASTA file (needs ``labels``), dataset directory, OrthoFinder results, or per-family FASTA directory.
        labels: labels TSV for a FASTA file.
        alphabet: ``None``/``"auto"`` (detected), ``"protein"`` or ``"dna"``.
        strict: refuse internal stops, rare and ambiguous letters instead of reading them as the unknown token
            (counted in ``summary()["unknown_letters"]``; see :mod:`phylocl.data.letters`).
        keep_ambiguous: DNA ambiguity codes and protein B J Z U O stay in the sequences (upper case, still counted), for an alignment stage
            that scores them as ``blastn`` does (``phylocl evaluate --align``); the embedders read them as ``N``.

    Returns:
        :class:`OrthologDataset`; ``summary()`` tells which layout was read.

    ``path`` and ``labels`` are a str or a ``Path`` (``~`` is expanded); anything else is a ``TypeError`` naming the
    argument (several inputs: :func:`read_datasets`). Problems in the files (missing, a name too long for a file,
    no labels for some records, bad letters...) are :class:`~phylocl.errors.InputError`.
    """
    path = _as_path("path", path)
    if not path.exists():
        raise InputError(missing_message(path), path=path)
    if labels is not None:
        labels = _as_path("labels", labels)
        if path.is_dir():
            raise InputError(f"{option('labels')} needs a FASTA file, not a directory", path=path)
        return read_fasta_with_labels(path, labels, alphabet=alphabet, strict=strict,
                                      keep_ambiguous=keep_ambiguous)
    table = find_orthofinder_results(path) if path.is_dir() or path.is_file() else None
    if table is not None:
        return read_orthofinder(table, alphabet=alphabet, strict=strict, keep_ambiguous=keep_ambiguous)
    if not path.is_dir():  # a file, a named pipe, <(...)
        refusal = first_line_refusal(path)  # a FASTQ or GenBank file: say so, not that it lacks labels
        if refusal is not None:
            raise refusal
        how = ("--labels for inspect, embed and evaluate; --set data.labels=TSV for train" if on_command_line() else
               "labels=TSV")
        raise InputError(f"a single FASTA file needs a labels table, a TSV with sequence_id and family_id ({how}), "
                         "or pass a folder with sequences.fasta + labels.tsv or one FASTA file per family", path=path)
    refuse_broken_links(path, pair=True)
    pair = find_pair_files(path)
    if pair is not None:
        has_trees = (path / "trees").is_dir() or any(p.suffix in TREE_SUFFIXES for p in path.iterdir())
        others = sorted(p.name for p in path.iterdir()
                        if p.is_file() and p != pair[0] and fasta_stem(p.name) and not p.name.startswith("."))
        if others:  # one FASTA per family beside the pair: the pair is what is read
            logging.getLogger("phylocl").warning(
                "note: %s: read as sequences.fasta + labels.tsv; the other FASTA file(s) there are not read: %s",
                path, ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else ""))
        return read_fasta_with_labels(*pair, alphabet=alphabet, strict=strict, tree_dir=path if has_trees else None,
                                      directory=path, keep_ambiguous=keep_ambiguous)
    lone = next((path / n for n in PAIR_FASTA_NAMES if (path / n).is_file()), None)
    if lone is not None:  # read as one family named "sequences" before
        raise InputError(f"holds {lone.name} but no labels.tsv: a dataset folder needs both (sequence_id and "
                         "family_id per line), or hold one FASTA file per family", path=path)
    refuse_broken_links(path)
    return read_family_dir(path, alphabet=alphabet, strict=strict, keep_ambiguous=keep_ambiguous)


def _as_path(name: str, value) -> Path:
    """``value`` (a str or an ``os.PathLike``) as a ``Path`` with ``~`` expanded; ``TypeError`` naming ``name``, or
    :class:`InputError` naming it for a name too long for a file (:func:`~phylocl.arguments.usable_path`)."""
    if isinstance(value, (str, os.PathLike)):  # bytes are neither
        if isinstance(value, str) and not value:  # Path("") is ".": the working folder would be read
            raise InputError(f"{option(name) if name == 'labels' else name} is an empty string, not a path (an unset "
                             "shell variable?)")
        return usable_path(name, value)
    hint = ""
    if name == "path" and isinstance(value, (list, tuple)):
        hint = "; several inputs are read by read_datasets"
    elif name == "labels" and (isinstance(value, (list, tuple, dict))
                               or type(value).__name__ in ("ndarray", "Series")):
        hint = "; labels is the path of a TSV with sequence_id and family_id columns"
    raise TypeError(f"{name} must be a str or a Path, got {type(value).__name__}{hint}")


def read_datasets(paths, *, labels=None, alphabet: str | Alphabet | None = None,
                  strict: bool = False) -> OrthologDataset:
    """Read several inputs and concatenate them (see :func:`~phylocl.data.dataset.concat_datasets`).

    ``labels`` is ``None`` or one entry (possibly ``None``) per path. Dataset names, used to prefix clashing family
    ids, are the path names (made unique with ``-2``, ``-3`` ...).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]  # one input
    paths = [_as_path("path", p) for p in paths]
    if not paths:
        raise InputError("no input paths given")
    labels = list(labels) if labels is not None else [None] * len(paths)
    if len(labels) != len(paths):
        raise InputError(f"{len(labels)} labels files for {len(paths)} inputs")
    parts = [read_dataset(p, labels=lab, alphabet=alphabet, strict=strict) for p, lab in zip(paths, labels)]
    names: list[str] = []
    for p in paths:
        base = (fasta_stem(p.name) if p.is_file() else None) or p.name
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return concat_datasets(parts, names)


class FastaStream:
    """One pass over one FASTA file (a named pipe works): records cleaned and checked like :func:`read_dataset`.

    The first 256 records are read on construction to detect the alphabet (:attr:`kind`, or the one given:
    :attr:`given`); :attr:`head` holds them. Set :attr:`alphabet` before iterating to read the records with another
    alphabet (a model's). Iterating yields every record once, in file order, never holding more than the head; duplicate
    ids and DNA/protein mixtures are refused when reached. Letters read as unknown are counted in :attr:`letters`.
    ``keep_ambiguous``: DNA ambiguity codes and protein ``B J Z U O`` stay in the sequences (upper case; the embedders read them as ``N``), for
    the alignment stage, which scores them as ``blastn`` does (:mod:`phylocl.data.letters`).
    """

    def __init__(self, path: str | Path, *, alphabet: str | Alphabet | None = None, strict: bool = False,
                 keep_ambiguous: bool = False) -> None:
        self.path = Path(path)
        self._records = parse_fasta(self.path)
        self.head = list(islice(self._records, _DETECT_RECORDS))
        self.alphabet = resolve_alphabet(alphabet, (r.sequence for r in self.head))
        self.given = alphabet not in (None, "auto")  # the alphabet was asked for (--alphabet), not detected
        self.letters = LetterReport(strict=strict, keep_ambiguous=keep_ambiguous, detected=not self.given)
        self._used = False

    @property
    def kind(self) -> str:
        """``"protein"`` or ``"dna"``: the alphabet the records are read with."""
        return self.alphabet.name

    def __iter__(self) -> Iterator[FastaRecord]:
        if self._used:
            raise RuntimeError(f"{self.path} was already read (a FastaStream is read once)")
        self._used = True
        seen: dict[str, int] = {}
        mix = MixCheck(given=self.alphabet if self.given else None)
        path, alpha = self.path, self.alphabet
        for rec in chain(self.head, self._records):
            if rec.id in seen:
                raise InputError(f"duplicate sequence id {rec.id!r} (first at line {seen[rec.id]})", path=path,
                                 line=rec.line)
            seen[rec.id] = rec.line
            mix.add(rec, path)
            seq = self.letters.clean(rec.sequence, alpha, path=path, line=rec.line, record_id=rec.id,
                                     layout=rec.layout)
            yield rec._replace(sequence=seq)


def iter_fasta(path: str | Path, *, alphabet: str | Alphabet | None = None,
               strict: bool = False) -> Iterator[FastaRecord]:
    """Stream the records of one FASTA file, cleaned and checked like :func:`read_dataset` does, in file order.

    Never holds more than a few hundred records: with ``alphabet=None`` the alphabet is detected from the first
    256 records. Duplicate ids are refused (only the ids are kept in memory). See :class:`FastaStream`.

    Yields:
        :class:`FastaRecord` ``(id, sequence, line, description)`` with canonical letters.
    """
    yield from FastaStream(path, alphabet=alphabet, strict=strict)
