"""Resumable embedding: rows written in shards next to the output, merged into one embeddings file at the end.

``phylocl embed`` cuts its input (in input order) into shards of ``shard_size`` sequences. Shard ``k`` is written
atomically to ``<out>.shards/shard-<k>.npz`` (an ordinary embeddings file) as soon as it is embedded; a run that is
killed leaves the finished shards there, and the next run with the same input and settings skips them (the
records are still read, to reach the next shard, but not embedded). When every shard is in they are streamed, in
order, into ``out`` (:class:`~phylocl.retrieval.embedding_files.EmbeddingWriter`, rows memory-mapped one shard at a
time) and the folder is removed. Since a shard's rows depend only on its records and the settings, and archive
members carry fixed time stamps, the resumed file is byte-identical to an uninterrupted run's.

The folder's ``manifest.json`` (format ``phylocl-embedding-shards/2``) records what the shards were made from: the
model fingerprint, the input file's path, shard size, buffer and batch sizes, precision and window overlap. Shards
made with other settings are discarded. The input is recognised by its content, not its size or time stamp: beside
each shard, ``shard-<k>.sha256`` holds the SHA-256 of the records it read (ids, sequences, labels), and a rerun
reuses shard ``k`` only when the records it reads for it hash the same; otherwise the shard is embedded again (an
input edited in place is never mixed with the old one's rows, whatever its size and mtime). Distributed embedding writes
the same shards from several processes (shard ``k`` by rank ``k mod world size``) into one folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from itertools import chain, islice
from pathlib import Path
from typing import Iterable, Iterator, TypeVar

from phylocl.atomic import atomic_path, short_name

__all__ = ["ShardFolder", "write_shards", "shard_chunks", "count_rest", "input_identity", "SHARD_FORMAT",
           "DEFAULT_SHARD_SIZE"]

SHARD_FORMAT = "phylocl-embedding-shards/2"  # /2: each shard carries the hash of its records
DEFAULT_SHARD_SIZE = 65536  # sequences per shard
_MERGE_ROWS = 16384  # rows copied per step while merging
_MERGE_BYTES = 256 << 20  # and at most this many bytes of them
T = TypeVar("T")


def shard_chunks(items: Iterable[T], shard_size: int) -> Iterator[Iterator[T]]:
    """``items`` as consecutive lazy chunks of ``shard_size`` (the last may be shorter); nothing is read ahead.

    Each chunk must be consumed (or skipped with :func:`count_rest`) before the next is asked for.
    """
    if shard_size < 1:
        raise ValueError(f"shard size must be >= 1, got {shard_size}")
    it = iter(items)
    while True:
        try:
            first = next(it)
        except StopIteration:
            return
        yield chain([first], islice(it, shard_size - 1))


def count_rest(chunk: Iterator) -> int:
    """Consume ``chunk``; return how many items it held."""
    return sum(1 for _ in chunk)


def input_identity(path: str | Path) -> dict:
    """Which input the shards belong to: its resolved path (the content is checked shard by shard, by hash).

    A pipe or other non-regular file is read once, so it gets a fresh random token: its shards are never reused by
    another run.
    """
    path = Path(path).resolve()
    if not path.is_file() and not path.is_dir():
        return {"path": str(path), "unique": uuid.uuid4().hex}
    return {"path": str(path)}


def records_digest(records: Iterable[tuple]) -> str:
    """SHA-256 (hex) of ``(id, sequence, label)`` records, in order: what a shard read."""
    h = hashlib.sha256()
    for rec in records:
        h.update("\x00".join(str(x) for x in rec).encode() + b"\x01")
    return h.hexdigest()


class _Hashing:
    """Iterate ``items`` while hashing them as :func:`records_digest` does (``hexdigest()`` once consumed)."""

    def __init__(self, items: Iterable[tuple]) -> None:
        self.items, self.h = items, hashlib.sha256()

    def __iter__(self) -> Iterator[tuple]:
        for rec in self.items:
            self.h.update("\x00".join(str(x) for x in rec).encode() + b"\x01")
            yield rec

    def hexdigest(self) -> str:
        return self.h.hexdigest()


def shard_folder_name(name: str) -> str:
    """The shard folder of the output named ``name``: ``<name>.shards``, or for a name too long for that (over 248
    bytes; a file name is at most 255) a cut name with a hash of the whole, as its temporaries carry it."""
    if len((name + ".shards").encode()) <= 255:
        return name + ".shards"
    return short_name(name) + ".shards"


class ShardFolder:
    """The shard folder of one ``phylocl embed`` output.

    Args:
        out: the final embeddings file; the folder is ``<out>.shards`` beside it (:func:`shard_folder_name`).
        settings: everything the rows depend on (JSON-serialisable; see the module docstring).
        create: make the folder (and discard shards of other settings); ``False`` only reads.
    """

    def __init__(self, *, out: str | Path, settings: dict, create: bool = True) -> None:
        self.out = Path(out)
        self.dir = self.out.with_name(shard_folder_name(self.out.name))
        self.manifest = {"format": SHARD_FORMAT, **settings}
        json.dumps(self.manifest)  # fails early on a non-serialisable setting
        self.discarded = False
        if create:
            self._prepare()

    def _prepare(self) -> None:
        path = self.dir / "manifest.json"
        if self.dir.is_dir():
            try:
                same = json.loads(path.read_text()) == json.loads(json.dumps(self.manifest))
            except (OSError, ValueError, RecursionError):  # damaged: the shards are redone
                same = False
            if same:
                return
            shutil.rmtree(self.dir)
            self.discarded = True
        self.dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.manifest, indent=2, sort_keys=True) + "\n")

    def path(self, k: int) -> Path:
        return self.dir / f"shard-{k:06d}.npz"

    def digest_path(self, k: int) -> Path:
        return self.dir / f"shard-{k:06d}.sha256"

    def done(self, k: int) -> bool:
        """Whether shard ``k`` was written completely with the hash of its records (both appear atomically, the
        hash after the shard; a shard without its hash counts as not done)."""
        return self.path(k).is_file() and self.digest_path(k).is_file()

    def digest(self, k: int) -> str | None:
        """The recorded hash of shard ``k``'s records (``None`` when unreadable)."""
        try:
            return self.digest_path(k).read_text().strip()
        except OSError:
            return None

    def record_digest(self, k: int, digest: str) -> None:
        with atomic_path(self.digest_path(k)) as tmp:
            tmp.write_text(digest + "\n")

    def finished(self) -> list[int]:
        return sorted(int(p.stem.split("-")[1]) for p in self.dir.glob("shard-*.npz"))

    def merge(self, n_shards: int, *, model: dict, with_labels: bool) -> int:
        """Stream shards ``0 .. n_shards - 1`` into ``out`` (atomically), then remove the folder; returns rows."""
        from phylocl.retrieval.embedding_files import EmbeddingWriter, load_embeddings
        from phylocl.retrieval.npz_mmap import row_blocks

        missing = [k for k in range(n_shards) if not self.done(k)]
        if missing:
            raise RuntimeError(f"shards {missing[:5]} of {n_shards} are missing in {self.dir}")
        with EmbeddingWriter(self.out, model=model, with_labels=with_labels) as writer:
            for k in range(n_shards):
                part = load_embeddings(self.path(k), mmap=True)
                # plain reads (row_blocks): pages of the map would stay resident (a whole shard)
                for lo, rows in row_blocks(part.embeddings, max_bytes=_MERGE_BYTES, max_rows=_MERGE_ROWS):
                    hi = lo + len(rows)
                    writer.append(rows, part.ids[lo:hi], part.labels[lo:hi] if with_labels else None)
                del part
            n = len(writer)
        self.remove()
        return n

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def __repr__(self) -> str:
        return f"ShardFolder({os.fspath(self.dir)!r})"


def write_shards(items: Iterable, embedder, shards: "ShardFolder", *, batch_size: int, buffer_size: int,
                 shard_size: int, with_labels: bool, progress=None, rank: int = 0,
                 world_size: int = 1) -> int:
    """Embed the shards of ``items`` not yet in ``shards`` whose number ``k`` has ``k % world_size == rank``.

    Each shard is written atomically as soon as it is complete, then the hash of its records. A finished shard is
    reused only when the records read for it now hash the same (they are held in memory, one shard, to embed them
    again when not). Returns the number of shards of the input.
    """
    from phylocl.retrieval import embedding_files
    from phylocl.workflows.embed_buffers import embed_buffers

    n = 0
    for k, chunk in enumerate(shard_chunks(items, shard_size)):
        n += 1
        if k % world_size != rank:
            count_rest(chunk)  # read past it: the next shard starts after it
            continue
        if shards.done(k):
            records = list(chunk)
            if records_digest(records) == shards.digest(k):
                if progress is not None:
                    progress.update(len(records))
                continue
            chunk = iter(records)  # the input changed under this shard: embed it again
        hashing = _Hashing(chunk)
        with embedding_files.EmbeddingWriter(shards.path(k), model=embedder.model_info(),
                                        with_labels=with_labels) as writer:
            for x, ids, labs in embed_buffers(iter(hashing), embedder, batch_size=batch_size,
                                              buffer_size=buffer_size, progress=progress):
                writer.append(x, ids, labs if with_labels else None)
        shards.record_digest(k, hashing.hexdigest())
    return n
