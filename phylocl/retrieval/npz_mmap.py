"""Memory-map an array stored inside an uncompressed ``.npz`` (zip) archive, without reading it.

Embeddings files (:mod:`phylocl.retrieval.embedding_files`) store their members uncompressed, so the bytes of
``embeddings.npy`` lie contiguously inside the ``.npz``: :func:`memmap_member` finds them through the zip
directory and maps them with ``numpy.memmap``. The rows are then paged in by the OS as they are touched, so
``phylocl index`` and the shard merge of ``phylocl embed`` hold one batch of rows at a time, whatever the size.

Pages of a memory map that were read stay resident (and count in the process's RSS) until the kernel needs them
back; :func:`read_rows` reads a block of rows of a map with a plain file read instead, so a pass over a 4 GB
file holds one block, not the whole file (peak memory of ``phylocl index`` in docs/performance.md).
"""

from __future__ import annotations

import io
import mmap
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Iterator

import numpy as np

__all__ = ["memmap_member", "check_member_crc", "read_rows", "block_rows", "row_blocks", "check_npy_sizes"]

_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")  # zip local file header: 30 bytes, name and extra lengths last
_CRC_BLOCK = 8 << 20  # bytes read per step of a CRC-32 check


def memmap_member(path: str | Path, name: str) -> np.ndarray:
    """The ``.npy`` member ``name`` of the (uncompressed) zip archive ``path`` as a read-only ``np.memmap``.

    Raises ``ValueError`` when the member is compressed or not a plain ``.npy`` array.
    """
    path = Path(path)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
    if info.compress_type != zipfile.ZIP_STORED:
        raise ValueError(f"{name} is compressed; only stored members can be memory-mapped")
    with open(path, "rb") as f:
        _seek_data(f, info, ValueError)
        version = np.lib.format.read_magic(f)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = reader(f)
        offset = f.tell()
    if dtype.hasobject:
        raise ValueError(f"{name} holds Python objects")
    if int(np.prod(shape)) == 0:
        return np.zeros(shape, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=shape, offset=offset, order="F" if fortran else "C")


def _seek_data(f, info: zipfile.ZipInfo, error: type[Exception]) -> None:
    """Move ``f`` (the archive, binary) to the first byte of member ``info``'s stored bytes, past its local header
    (whose name and extra fields may differ in length from the central directory's); raises ``error`` when no local
    header is there."""
    f.seek(info.header_offset)
    fields = _LOCAL_HEADER.unpack(f.read(_LOCAL_HEADER.size))
    if fields[0] != b"PK\x03\x04":
        raise error(f"bad local header for {info.filename}")
    f.seek(info.header_offset + _LOCAL_HEADER.size + fields[9] + fields[10])


def check_member_crc(path: str | Path, name: str) -> None:
    """Raise ``zipfile.BadZipFile`` unless the stored (uncompressed) member ``name`` of the archive ``path`` matches
    the CRC-32 its zip directory records: the check the zip reader makes when it reads a member whole, for members
    memory-mapped instead (:func:`memmap_member`). Reads the member's bytes once, in blocks."""
    path = Path(path)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
    with open(path, "rb") as f:
        _seek_data(f, info, zipfile.BadZipFile)
        crc, left = 0, info.compress_size
        while left > 0:
            block = f.read(min(left, _CRC_BLOCK))
            if not block:
                raise zipfile.BadZipFile(f"{name} is truncated")
            crc, left = zlib.crc32(block, crc), left - len(block)
    if crc != info.CRC:
        raise zipfile.BadZipFile(f"Bad CRC-32 for file {name!r}")


class PickledMember(ValueError):
    """An ``.npy`` (member) holding Python objects: NumPy would unpickle it, which phylocl never does."""


def _declared_bytes(f, name: str = "") -> tuple[tuple[int, ...], int]:
    """``(shape, bytes)`` an ``.npy`` header at the position of ``f`` declares (Python ints: no overflow); raises
    :class:`PickledMember` for an object array (``name``: for the message)."""
    version = np.lib.format.read_magic(f)
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = reader(f)
    if dtype.hasobject:
        raise PickledMember(f"{name or 'the array'} holds Python objects (an object array), which phylocl does not "
                            "read (NumPy would unpickle them): save it as a plain array of strings or numbers")
    n = 1
    for s in shape:
        n *= int(s)
    return tuple(shape), n * dtype.itemsize


def check_npy_sizes(path: str | Path) -> None:
    """Raise ``ValueError`` when an ``.npy`` file, or a member of an ``.npz`` archive, declares a shape larger than
    the bytes it holds (a damaged or crafted header would otherwise make NumPy allocate its size: terabytes).

    Only headers are read. An object array raises :class:`PickledMember` (a ``ValueError``).
    """
    path = Path(path)
    with open(path, "rb") as f:
        is_zip = f.read(4) == b"PK\x03\x04"
    if not is_zip:
        with open(path, "rb") as f:
            try:
                shape, nbytes = _declared_bytes(f, path.name)
            except PickledMember:
                raise
            except (EOFError, ValueError) as err:
                raise ValueError(f"{path.name}: not a .npy array ({' '.join(str(err).split())})") from None
            held = path.stat().st_size - f.tell()
        if nbytes > held:
            raise ValueError(f"{path.name} declares shape {shape} ({nbytes:,} bytes) but holds {held:,} bytes")
        return
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with zf.open(info) as f:
                head = f.read(1 << 16)
            buf = io.BytesIO(head)
            shape, nbytes = _declared_bytes(buf, f"member {info.filename}")
            held = info.file_size - buf.tell()
            if nbytes > held:
                raise ValueError(f"member {info.filename} declares shape {shape} ({nbytes:,} bytes) but holds "
                                 f"{held:,} bytes")


def read_rows(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Rows ``lo:hi`` of ``x`` ``(N, ...)`` as an ordinary array.

    For a C-ordered :class:`numpy.memmap` of a file (as :func:`memmap_member` returns) the bytes are read with
    ``numpy.fromfile``, so the map's pages are not left resident; any other array (a view of a map included) is
    sliced and copied.
    """
    lo, hi = max(0, lo), min(len(x), hi)
    filename = getattr(x, "filename", None)
    # only the map itself: a view of it (x[a:b]) is also a memmap but keeps the map's offset attribute
    if not isinstance(x, np.memmap) or not isinstance(x.base, mmap.mmap) or not filename \
            or not x.flags.c_contiguous or hi <= lo:
        return np.array(x[lo:hi])
    row = int(np.prod(x.shape[1:], dtype=np.int64))
    out = np.fromfile(filename, dtype=x.dtype, count=(hi - lo) * row, offset=x.offset + lo * row * x.itemsize)
    return out.reshape((hi - lo, *x.shape[1:]))


def block_rows(x: np.ndarray, *, max_bytes: int, max_rows: int | None = None) -> int:
    """Rows of ``x`` ``(N, ...)`` per block: as many as fit in ``max_bytes`` (at most ``max_rows``), at least one."""
    row_bytes = x.itemsize * int(np.prod(x.shape[1:], dtype=np.int64))
    rows = max_bytes // max(1, row_bytes)
    return max(1, rows if max_rows is None else min(rows, max_rows))


def row_blocks(x: np.ndarray, *, max_bytes: int, max_rows: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """``(first row, rows)`` of consecutive blocks of ``x`` (:func:`block_rows` each), read with :func:`read_rows`."""
    step = block_rows(x, max_bytes=max_bytes, max_rows=max_rows)
    for lo in range(0, len(x), step):
        yield lo, read_rows(x, lo, lo + step)
