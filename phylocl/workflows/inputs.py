"""Reading the inputs of ``embed``/``search``/``evaluate`` and checking them against the model that will embed them.

A FASTA file is opened once (named pipes and ``<(...)`` work) and streamed with its alphabet detected from the
first records (or given); input of the other alphabet than the model's is refused up front with one line naming
the first record that shows it (file and line). Letters read as the unknown token are reported as notes.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Iterator

from phylocl.data.fasta import FastaRecord, detect_kind, looks_like, parse_fasta
from phylocl.errors import InputError
from phylocl.workflows.model_spec import ResolvedModel

__all__ = ["fasta_records", "fasta_alphabet", "open_fasta", "bind_stream", "read_labelled", "check_dataset_alphabet",
           "mismatch_error", "check_output_file", "letter_notes"]

_DETECT_RECORDS = 256  # records looked at to detect a FASTA file's alphabet (as iter_fasta does)


def fasta_alphabet(path: str | Path) -> str:
    """``"protein"`` or ``"dna"``, detected from the first 256 records of ``path`` (``iter_fasta``'s rule)."""
    return detect_kind(r.sequence for r in islice(parse_fasta(path), _DETECT_RECORDS))


def open_fasta(path: str | Path, *, alphabet: str | None = None, strict: bool = False, keep_ambiguous: bool = False):
    """A :class:`~phylocl.data.layouts.FastaStream` over ``path`` (opened once: pipes work); ``alphabet``
    ``None``/``"auto"`` is detected from the first 256 records; ``keep_ambiguous``: DNA ambiguity codes and protein ``B J Z U O`` stay in the
    sequences, for the alignment stage (the embedders read them as ``N``)."""
    from phylocl.data.layouts import FastaStream

    return FastaStream(path, alphabet=alphabet, strict=strict, keep_ambiguous=keep_ambiguous)


def mismatch_error(kind: str, embedder: ResolvedModel, *, path, record_id: str | None = None,
                   line: int | None = None, index: str | Path | None = None, given: bool = False,
                   alphabet_option: bool = True) -> InputError:
    """The error for input of alphabet ``kind`` given to a model of another alphabet (or an index built for one).

    The advice names a model of the input's alphabet that is not the one in use, and ``--alphabet`` in case the
    detection was wrong (``alphabet_option``: the command has that option); ``given``: the input is read as
    ``kind`` because ``--alphabet`` said so (not detected).
    """
    shown = {"dna": "DNA"}
    data, reads = shown.get(kind, kind), shown.get(embedder.alphabet.name, embedder.alphabet.name)
    what = f"record {record_id!r} looks like {data}" if record_id else f"the sequences are {data}"
    other = f"--alphabet {embedder.alphabet.name} if they are {reads}"
    if given:
        what, other = f"the sequences are read as {data} (--alphabet {kind})", f"drop --alphabet {kind}"
    if index is not None:
        return InputError(f"{what}, but the index {index} was built with model {embedder.name} for {reads} "
                          f"sequences; search it with {reads} queries ({other})", path=path, line=line)
    suggestion = next(m for m in (f"default-{kind}", "kmer:3") if m != embedder.name)
    tail = f", or {other}" if alphabet_option or given else ""
    return InputError(f"{what}, but model {embedder.name} ({embedder.source}) reads {reads} sequences; "
                      f"use a {data} model (e.g. --model {suggestion}){tail}", path=path, line=line)


def bind_stream(stream, embedder: ResolvedModel, *, index: str | Path | None = None, alphabet_option: bool = True):
    """Check that ``stream``'s alphabet is ``embedder``'s and read it with the model's alphabet from now on.

    Input detected as the other alphabet is refused up front, naming the first record that looks like it and its
    line (``index``: the index the model belongs to, for the advice).
    """
    if stream.kind != embedder.alphabet.name:
        given = getattr(stream, "given", False)
        rec = next((r for r in stream.head if looks_like(stream.kind, r.sequence)), stream.head[0])
        raise mismatch_error(stream.kind, embedder, path=stream.path, record_id=None if given else rec.id,
                             line=None if given else rec.line, index=index, given=given,
                             alphabet_option=alphabet_option)
    stream.alphabet = embedder.alphabet
    return stream


def fasta_records(source, embedder: ResolvedModel, *, alphabet_option: bool = True) -> Iterator[FastaRecord]:
    """Stream the records of ``source`` (a path or an unread :func:`open_fasta` stream) checked against
    ``embedder``'s alphabet (letters in canonical form); see :func:`bind_stream`.

    Bad letters, duplicate ids or DNA/protein mixtures further down raise when they are reached.
    """
    from phylocl.data.layouts import FastaStream

    stream = source if isinstance(source, FastaStream) else open_fasta(source)
    return iter(bind_stream(stream, embedder, alphabet_option=alphabet_option))


def check_output_file(path: str | Path, *, inputs=(), example: str = "out.npz") -> Path:
    """``path`` as a :class:`Path`, refused when it could not or should not be replaced by a new file.

    See :func:`phylocl.outputs.check_output_file`: a directory, device, pipe or socket there, one of ``inputs``,
    a parent that is a file, a place under ``/proc`` or ``/sys``, an unwritable folder.
    """
    from phylocl.outputs import check_output_file as check

    return check(path, inputs=inputs, example=example)


def read_labelled(data: str | Path, labels: str | Path | None, *, alphabet: str | None = None,
                  strict: bool = False, keep_ambiguous: bool = False):
    """Read a labelled dataset (any ``read_dataset`` layout); ``keep_ambiguous`` as in :func:`open_fasta`."""
    from phylocl.data.layouts import read_dataset

    return read_dataset(data, labels=labels, alphabet=alphabet, strict=strict, keep_ambiguous=keep_ambiguous)


def letter_notes(report, *, keep_ambiguous: bool = False) -> list[str]:
    """Notes for stderr about the letters a :class:`~phylocl.data.letters.LetterReport` (or a dataset summary's
    ``unknown_letters``, read with ``keep_ambiguous`` or not) saw read as the unknown token."""
    from phylocl.data.letters import LetterReport

    if isinstance(report, dict):
        filled = LetterReport(keep_ambiguous=keep_ambiguous)
        filled.kinds = {k: dict(v) for k, v in report.items()}
        report = filled
    return report.lines()


def check_dataset_alphabet(ds, embedder: ResolvedModel, path, *, alphabet_option: bool = True) -> None:
    """Refuse a dataset whose detected alphabet is not the model's, naming its first record of that kind by file
    and header line (``path``, the dataset, where the dataset does not know where its records were read;
    ``alphabet_option``: whether the command has ``--alphabet`` to advise)."""
    kind = ds.alphabet.name
    if kind != embedder.alphabet.name:
        i = ds.shows(kind)
        file, line = ds.where(i)
        raise mismatch_error(kind, embedder, path=file or path, line=line, record_id=ds.ids[i],
                             alphabet_option=alphabet_option)
