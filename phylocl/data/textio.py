"""Opening input text files once: plain, gzip, bzip2 or xz, UTF-8 with or without a byte-order mark, files or pipes.

A named pipe or a shell process substitution (``<(zcat x.fa.gz)``, read as ``/dev/fd/63``) can be read only once,
so :func:`open_text` opens the path a single time: the first bytes are read to sniff gzip and binary content and
then handed back in front of the rest of the stream (:class:`PrefixedStream`).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib
from pathlib import Path

from phylocl.errors import InputError, os_error_message

__all__ = ["open_text", "read_lines", "PrefixedStream", "READ_ERRORS", "os_error_message"]

_HEAD = 4096  # bytes sniffed for gzip magic, emptiness and binary content
_GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"
READ_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError)  # truncated or corrupt compressed streams raise these
_DECOMPRESSORS = {  # magic bytes -> opener of a binary file object; recognised whatever the file's name
    _GZIP_MAGIC: lambda f: gzip.GzipFile(fileobj=f, mode="rb"),
    b"BZh": lambda f: bz2.BZ2File(f, mode="rb"),
    b"\xfd7zXZ\x00": lambda f: lzma.LZMAFile(f, mode="rb"),
}
_UNSUPPORTED = {b"\x28\xb5\x2f\xfd": "zstd-compressed", b"PK\x03\x04": "zip archive",
                b"\x04\x22\x4d\x18": "lz4-compressed"}


class PrefixedStream(io.RawIOBase):
    """A read-only binary stream giving ``head`` first, then the rest of ``stream`` (which it closes)."""

    def __init__(self, head: bytes, stream) -> None:
        super().__init__()
        self._head = head
        self._stream = stream
        # what is there now, not a full buffer: a pipe's reader must not wait for bytes the writer has not sent
        self._read = getattr(stream, "read1", stream.read)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
        super().close()


def _read_head(stream, path: Path, *, compressed: bool) -> bytes:
    """The first ``_HEAD`` bytes of ``stream`` (fewer only at its end)."""
    read = getattr(stream, "read1", stream.read)
    head = b""
    try:
        while len(head) < _HEAD:
            chunk = read(_HEAD - len(head))
            if not chunk:
                break
            head += chunk
        return head
    except READ_ERRORS as err:
        if compressed:
            raise InputError(f"corrupt compressed file ({err})", path=path) from None
        raise InputError(f"cannot read: {os_error_message(err)}", path=path) from None


def open_text(path: str | Path, *, what: str = "a FASTA file") -> io.TextIOBase:
    """Open ``path`` once for reading text (gzip detected from the magic bytes, universal newlines, UTF-8, BOM ok).

    Compressed input (gzip, bzip2, xz) is recognised by its magic bytes. Raises :class:`InputError` when the path is
    missing, a directory, unreadable, empty, binary (not text), UTF-16, or compressed in a format not read here.
    ``what`` names the expected content in the directory message.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("no such file or directory", path=path)
    if path.is_dir():
        raise InputError(f"is a directory, expected {what}", path=path)
    try:
        raw = open(path, "rb", buffering=0)  # unbuffered: reads return what a pipe holds now
    except OSError as err:
        raise InputError(f"cannot read: {os_error_message(err)}", path=path) from None
    head = _read_head(raw, path, compressed=False)
    binary: io.RawIOBase = PrefixedStream(head, raw)
    opener = next((o for magic, o in _DECOMPRESSORS.items() if head.startswith(magic)), None)
    if opener is not None:
        unzipped = opener(io.BufferedReader(binary))
        head = _read_head(unzipped, path, compressed=True)
        binary = PrefixedStream(head, unzipped)
    unsupported = next((name for magic, name in _UNSUPPORTED.items() if head.startswith(magic)), None)
    if unsupported:
        binary.close()
        raise InputError(f"not {what}: a {unsupported} file (decompress it first; phylocl reads plain text, gzip, "
                         "bzip2 and xz)", path=path)
    if not head.removeprefix(_BOM).strip():
        binary.close()
        raise InputError("empty file", path=path)
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        binary.close()
        raise InputError(f"not {what}: UTF-16 text (save it as UTF-8)", path=path)
    if b"\x00" in head:
        binary.close()
        raise InputError(f"not {what} (binary content)", path=path)
    return io.TextIOWrapper(io.BufferedReader(binary), encoding="utf-8-sig", newline=None)


def read_lines(path: str | Path, *, what: str) -> list[str]:
    """All lines of a small text table (``open_text`` rules); undecodable or unreadable content is an InputError."""
    with open_text(path, what=what) as handle:
        try:
            return handle.read().splitlines()
        except UnicodeDecodeError:
            raise InputError(f"not {what} (undecodable bytes, not UTF-8 text)", path=path) from None
        except READ_ERRORS as err:
            raise InputError(f"read failed ({err})", path=path) from None
