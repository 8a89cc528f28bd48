"""Reading the inputs of ``embed``/``search``/``evaluate`` and checking them against the model that will embed them.

A FASTA file is streamed with its alphabet detected from the first records; input of the other alphabet than the
model's is refused up front with one line naming the first record that shows it (file and line).
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Iterator

from phylocl.data.fasta import FastaRecord, detect_kind, looks_like_protein, nucleotide_fraction, parse_fasta
from phylocl.errors import InputError
from phylocl.workflows.models import Embedder

__all__ = ["fasta_records", "fasta_alphabet", "read_labelled", "check_dataset_alphabet", "mismatch_error",
           "check_output_file"]

_DETECT_RECORDS = 256  # records looked at to detect a FASTA file's alphabet (as iter_fasta does)


def fasta_alphabet(path: str | Path) -> str:
    """``"protein"`` or ``"dna"``, detected from the first 256 records of ``path`` (``iter_fasta``'s rule)."""
    return detect_kind(r.sequence for r in islice(parse_fasta(path), _DETECT_RECORDS))


def _looks_like(kind: str, seq: str) -> bool:
    return nucleotide_fraction(seq) >= 0.9 if kind == "dna" else looks_like_protein(seq)


def mismatch_error(kind: str, embedder: Embedder, *, path, record_id: str | None = None,
                   line: int | None = None) -> InputError:
    """The error for input of alphabet ``kind`` given to a model of another alphabet."""
    shown = {"dna": "DNA"}
    data, reads = shown.get(kind, kind), shown.get(embedder.alphabet.name, embedder.alphabet.name)
    what = f"record {record_id!r} looks like {data}" if record_id else f"the sequences are {data}"
    return InputError(f"{what}, but model {embedder.name} ({embedder.source}) reads {reads} sequences; "
                      f"use a {data} model (e.g. --model kmer:3)", path=path, line=line)


def fasta_records(path: str | Path, embedder: Embedder) -> Iterator[FastaRecord]:
    """Stream the records of ``path`` checked against ``embedder``'s alphabet (letters in canonical form).

    Input detected as the other alphabet is refused up front, naming the first record that looks like it and its
    line; bad letters, duplicate ids or DNA/protein mixtures further down raise when they are reached.
    """
    from phylocl.data.layouts import iter_fasta

    path = Path(path)
    kind = fasta_alphabet(path)
    if kind != embedder.alphabet.name:
        head = list(islice(parse_fasta(path), _DETECT_RECORDS))
        rec = next((r for r in head if _looks_like(kind, r.sequence)), head[0])
        raise mismatch_error(kind, embedder, path=path, record_id=rec.id, line=rec.line)
    return iter_fasta(path, alphabet=embedder.alphabet)


def check_output_file(path: str | Path) -> Path:
    """``path`` as a :class:`Path`; an existing directory there is an InputError (it would not be replaced)."""
    path = Path(path)
    if path.is_dir():
        raise InputError("output is a directory; give a file name such as out.npz", path=path)
    return path


def read_labelled(data: str | Path, labels: str | Path | None):
    """Read a labelled dataset (any ``read_dataset`` layout)."""
    from phylocl.data.layouts import read_dataset

    return read_dataset(data, labels=labels)


def check_dataset_alphabet(ds, embedder: Embedder, path) -> None:
    """Refuse a dataset whose detected alphabet is not the model's, naming its first record of that kind."""
    kind = ds.alphabet.name
    if kind != embedder.alphabet.name:
        rid = next((i for i, s in zip(ds.ids, ds.sequences) if _looks_like(kind, s)), ds.ids[0])
        raise mismatch_error(kind, embedder, path=path, record_id=rid)
