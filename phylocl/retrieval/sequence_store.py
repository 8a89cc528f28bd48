"""The database sequences of an index bundle, so that ``phylocl search --index`` can align its candidates.

Two members, written while the index is built (letters as the data layer reads them: upper case, unknown letters
``X``/``N``; DNA ambiguity codes ``R Y S W K M B D H V`` kept for the aligner, where an index built by 0.3.1 or
earlier stored ``N``, and protein ``B J Z U O``, where an index built by 0.5.0 or earlier stored ``X``; an
older reader refuses such a store as damaged)::

    <bundle>/sequences.bin          all sequences concatenated, one byte per residue (ASCII)
    <bundle>/sequence_offsets.npy   (N + 1,) int64: row i is sequences.bin[offsets[i]:offsets[i + 1]]

``meta.json`` gains ``"sequences": {"residues": R, "file": "sequences.bin"}``. At search time the bytes are
memory-mapped, so a candidate is read by its row without touching the rest (or the FASTA file again). A bundle
without them (built before this existed, or from an embeddings file) cannot be aligned: :func:`open_store` says
to rebuild it or to search with ``--no-align``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from phylocl.arguments import setting
from phylocl.atomic import publish_mode, shown_as, temp_prefix
from phylocl.errors import InputError, os_error_message

__all__ = ["OFFSETS_FILE", "SEQUENCES_FILE", "SequenceStore", "SequenceStoreWriter", "open_store"]

SEQUENCES_FILE = "sequences.bin"
OFFSETS_FILE = "sequence_offsets.npy"


class SequenceStoreWriter:
    """Appends sequences to a spool file next to ``destination`` (the bundle being built; missing parent folders are
    made); :meth:`finish` moves the two members into the bundle's temporary folder, with the permissions a plain
    ``open`` would give them. Memory: the offsets only (8 bytes per sequence).

    The spool is named as :mod:`phylocl.atomic` names temporaries (``.<bundle>.<pid>.<random>.spool``), so that a
    killed build's spool is swept by the next write of that folder."""

    def __init__(self, *, destination: str | Path) -> None:
        import tempfile

        destination = Path(destination)
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=temp_prefix(destination), suffix=".spool", dir=destination.parent)
        except OSError as err:
            raise InputError(f"cannot write: {os_error_message(err)}", path=destination) from None
        self._file = os.fdopen(fd, "wb")
        self._path = Path(name)
        self._offsets = [0]

    def append(self, sequences: Iterable[str]) -> None:
        for s in sequences:
            data = s.encode("ascii")
            self._file.write(data)
            self._offsets.append(self._offsets[-1] + len(data))

    @property
    def n(self) -> int:
        return len(self._offsets) - 1

    def finish(self, folder: Path) -> dict:
        """Move the members into ``folder``; returns the ``meta.json`` record."""
        self._file.close()
        publish_mode(self._path, directory=False)  # mkstemp made it 0600
        os.replace(self._path, folder / SEQUENCES_FILE)
        np.save(folder / OFFSETS_FILE, np.asarray(self._offsets, dtype=np.int64))
        return {"residues": int(self._offsets[-1]), "file": SEQUENCES_FILE}

    def abort(self) -> None:
        self._file.close()
        self._path.unlink(missing_ok=True)


class SequenceStore:
    """Read-only sequences by row: ``store[i] -> str``; ``len(store)``; ``residues`` in total.

    ``letters`` (the index's alphabet's, :func:`~phylocl.data.letters.stored_letters`, e.g. ``"ACGTNRYSWKMBDHV"``,
    protein ``"ACDEFGHIKLMNPQRSTVWYXBJZUO"``):
    each row's bytes are checked to be these letters the first time the row is read (a few hundred nanoseconds; a
    bit per row remembers it), so that a damaged store is an :class:`~phylocl.errors.InputError` naming ``path``
    instead of bytes handed to an aligner; ``None``: unchecked.
    """

    def __init__(self, data: np.ndarray, offsets: np.ndarray, *, letters: str | None = None,
                 path: str | Path | None = None) -> None:
        self._data, self._offsets = data, offsets
        self._bytes = memoryview(np.ascontiguousarray(data, dtype=np.uint8))  # slices decode without a numpy copy
        self._letters = letters.encode("ascii") if letters else None
        self._checked = bytearray(len(offsets) - 1) if letters else None  # 1: the row's letters were checked
        self._path = path

    def __len__(self) -> int:
        return len(self._offsets) - 1

    @property
    def residues(self) -> int:
        return int(self._offsets[-1])

    def __getitem__(self, i: int) -> str:
        a, b = self._offsets[i:i + 2].tolist() if i >= 0 else (int(self._offsets[i - 1]), int(self._offsets[i]))
        raw = self._bytes[a:b]
        if self._checked is not None and not self._checked[i]:
            if bytes(raw).translate(None, self._letters):
                row = i % len(self)
                raise InputError(f"damaged index: stored sequence {row} holds bytes that are not its alphabet's "
                                 f"letters ({self._letters.decode()}); rebuild the index", path=self._path)
            self._checked[i] = 1
        return str(raw, "ascii")  # 3x faster than slicing the memory map (an alignment reads 10^5)

    def check_all(self, chunk: int = 1 << 26) -> None:
        """Check every row's letters at once (``phylocl index --verify``), in chunks of ``chunk`` bytes; raises the
        :class:`~phylocl.errors.InputError` of ``store[i]`` for the first row holding another byte."""
        if self._checked is None:
            return
        for lo in range(0, len(self._bytes), chunk):
            part = bytes(self._bytes[lo:lo + chunk])
            rest = part.translate(None, self._letters)
            if rest:
                at = lo + part.index(rest[:1])
                self[int(np.searchsorted(self._offsets, at, side="right")) - 1]  # raises, naming the row
        self._checked[:] = b"\x01" * len(self._checked)

    def length(self, i: int) -> int:
        return int(self._offsets[i + 1] - self._offsets[i])

    def with_letters(self, letters: str | None) -> "SequenceStore":
        """The same sequences (the same memory map, no copy), each row checked against ``letters`` when first read
        (a store opened before the alphabet was known: with its bundle, :func:`open_store`)."""
        return SequenceStore(self._data, self._offsets, letters=letters, path=self._path)


def open_store(bundle: str | Path, *, ntotal: int, letters: str | None = None,
               name: str | Path | None = None) -> SequenceStore:
    """The sequences of the index at ``bundle`` (``ntotal`` rows), memory-mapped; ``letters``: the alphabet's, each
    row checked against them when first read (:class:`SequenceStore`); ``name``: the bundle as messages name it
    (default ``bundle``; for a bundle opened through a folder descriptor, :func:`phylocl.atomic.read_dir`).

    Raises :class:`~phylocl.errors.InputError` when the bundle has none (one line: rebuild, or ``--no-align``) or
    when they do not match its rows (damaged).
    """
    bundle = Path(bundle)
    shown = bundle if name is None else Path(name)
    seq_path, off_path = bundle / SEQUENCES_FILE, bundle / OFFSETS_FILE
    if not seq_path.is_file() or not off_path.is_file():
        raise InputError("this index holds no database sequences, so its hits cannot be aligned; rebuild it with "
                         f"`phylocl index --fasta DB.fasta` (which stores them), or search with "
                         f"{setting('align', False)}", path=shown)
    try:
        offsets = np.load(off_path, allow_pickle=False)
        size = seq_path.stat().st_size
        data = np.memmap(seq_path, dtype=np.uint8, mode="r") if size else np.zeros(0, np.uint8)
    except (OSError, ValueError) as err:
        text = shown_as(" ".join(str(err).split()), bundle, shown)
        raise InputError(f"damaged sequence store: {text}", path=shown) from None
    if (offsets.ndim != 1 or len(offsets) != ntotal + 1 or int(offsets[0]) != 0 or int(offsets[-1]) != size
            or np.any(np.diff(offsets) < 0)):
        raise InputError(f"the stored sequences do not match the index ({len(offsets) - 1} sequences, "
                         f"{size:,} bytes, for {ntotal} rows): the bundle is damaged; rebuild it", path=shown)
    return SequenceStore(data, offsets, letters=letters, path=shown / SEQUENCES_FILE)
