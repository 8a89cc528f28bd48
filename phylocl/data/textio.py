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

__all__ = ["open_text", "read_lines", "undecodable", "missing_message", "PrefixedStream", "READ_ERRORS",
           "os_error_message"]

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


def missing_message(path: str | Path) -> str:
    """The message for a path that does not exist (``-`` is not read as standard input: ``/dev/stdin`` is)."""
    if str(path) == "-":
        return "no such file (to read standard input, give /dev/stdin or a process substitution <(...))"
    return "no such file or directory"


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


def open_text(path: str | Path, *, what: str = "a FASTA file", errors: str = "strict") -> io.TextIOBase:
    """Open ``path`` once for reading text (gzip detected from the magic bytes, universal newlines, UTF-8, BOM ok).

    Compressed input (gzip, bzip2, xz) is recognised by its magic bytes. Raises :class:`InputError` when the path is
    missing, a directory, unreadable, empty, binary (not text), UTF-16, or compressed in a format not read here.
    ``what`` names the expected content in the directory message. ``errors``: the decoding error handler;
    ``"surrogateescape"`` lets the reader find the line of a byte that is not UTF-8 (see :func:`undecodable`)
    where ``"strict"`` fails on the whole 8 KB chunk that holds it.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(missing_message(path), path=path)
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
        if unsupported == "zip archive" and path.suffix.lower() == ".npz":  # NumPy's format is a zip archive
            raise InputError(f"not {what}: a NumPy .npz archive (embeddings, an index part?), not text", path=path)
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
        at = head.index(b"\x00")
        line_start = head.rfind(b"\n", 0, at) + 1
        if line_start and _is_utf8(head[:line_start]):  # text, then a NUL byte: where it is
            raise InputError(f"not {what} (binary content: a NUL byte)", path=path,
                             line=head.count(b"\n", 0, at) + 1, column=at - line_start + 1)
        raise InputError(f"not {what} (binary content)", path=path)
    return io.TextIOWrapper(io.BufferedReader(binary), encoding="utf-8-sig", errors=errors, newline=None)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def undecodable(line: str, *, path: str | Path, line_number: int, what: str) -> None:
    """:class:`InputError` at ``line_number`` and the column of the first byte of ``line`` (read with
    ``errors="surrogateescape"``) that was not UTF-8; nothing when there is none."""
    if line.isascii():
        return
    try:
        line.encode("utf-8")
    except UnicodeEncodeError as err:
        byte = ord(line[err.start]) - 0xDC00
        raise InputError(f"not {what} (undecodable byte 0x{byte:02x}, not UTF-8 text; save it as UTF-8)",
                         path=path, line=line_number, column=err.start + 1) from None


def read_lines(path: str | Path, *, what: str) -> list[str]:
    """All lines of a small text table (``open_text`` rules); undecodable (named by line and column) or unreadable
    content is an InputError."""
    with open_text(path, what=what, errors="surrogateescape") as handle:
        try:
            # the handle's universal newlines made every line end "\n": split there only (str.splitlines would
            # also split at form feeds, \x1c-\x1e, \x85 and U+2028 inside a cell, and shift the line numbers)
            lines = handle.read().split("\n")
        except READ_ERRORS as err:
            raise InputError(f"read failed ({err})", path=path) from None
    if lines and lines[-1] == "":
        lines.pop()
    for n, line in enumerate(lines, 1):
        undecodable(line, path=path, line_number=n, what=what)
        if "\x00" in line:  # past the first 4 KB that open_text looks at
            raise InputError(f"not {what} (binary content: a NUL byte)", path=path, line=n,
                             column=line.index("\x00") + 1)
    return lines
