"""Resumable sharded ``phylocl embed``: a run killed after shard k, rerun, gives the uninterrupted run's bytes."""

from __future__ import annotations

import os

import numpy as np
import pytest

from phylocl.errors import InputError
from phylocl.retrieval.embedding_files import load_embeddings
from phylocl.workflows import embed as embed_mod
from phylocl.workflows.embed import embed
from phylocl.workflows.shards import ShardFolder, count_rest, shard_chunks

AA = "ACDEFGHIKLMNPQRSTVWY"


class Killed(Exception):
    """Stands for the process being killed."""


def test_shard_chunks_are_lazy_and_complete():
    read = []

    def items():
        for i in range(10):
            read.append(i)
            yield i

    chunks = shard_chunks(items(), 4)
    first = next(chunks)
    assert read == [0]  # nothing read ahead of what is asked for
    assert list(first) == [0, 1, 2, 3]
    assert count_rest(next(chunks)) == 4 and list(next(chunks)) == [8, 9]
    assert list(chunks) == []
    with pytest.raises(ValueError):
        next(shard_chunks([1], 0))


@pytest.fixture
def fasta(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "in.fasta"
    path.write_text("".join(f">s{i}\n{''.join(rng.choice(list(AA), size=int(rng.integers(5, 300))))}\n"
                            for i in range(23)))
    return path


def _kill_after(monkeypatch, k):
    """Make write_shards' (k+1)-th shard write raise, as if the process died there."""
    from phylocl.retrieval import embedding_files

    real = embedding_files.EmbeddingWriter
    opened = []

    class Dying(real):
        def __init__(self, path, **kw):
            if str(path).endswith(".npz") and "shard-" in str(path):
                opened.append(path)
                if len(opened) > k:
                    raise Killed()
            super().__init__(path, **kw)

    monkeypatch.setattr(embedding_files, "EmbeddingWriter", Dying)
    return opened


@pytest.mark.parametrize("model", ["kmer:2", "gmlp-tiny"])
def test_resumed_run_equals_an_uninterrupted_one(tmp_path, fasta, monkeypatch, model):
    if model == "gmlp-tiny":
        from phylocl.models.registry import build_encoder
        import torch

        torch.manual_seed(0)
        model = str(build_encoder("gmlp-tiny", max_len=32).save(tmp_path / "enc.pt"))
    whole = embed(out=tmp_path / "whole.npz", model=model, fasta=fasta, shard_size=5, buffer_size=3,
                  batch_size=2, progress=False)
    out = tmp_path / "resumed.npz"
    with monkeypatch.context() as m:
        _kill_after(m, 2)
        with pytest.raises(Killed):
            embed(out=out, model=model, fasta=fasta, shard_size=5, buffer_size=3, batch_size=2, progress=False)
    folder = ShardFolder(out=out, settings={}, create=False)
    assert not out.exists() and folder.finished() == [0, 1]  # two shards survived the kill
    stamps = {k: folder.path(k).stat().st_mtime_ns for k in (0, 1)}
    written = []
    real = embed_mod.write_shards

    def spy(items, embedder, shards, **kw):
        n = real(items, embedder, shards, **kw)
        written.extend(k for k in range(n) if shards.path(k).stat().st_mtime_ns != stamps.get(k))
        return n

    monkeypatch.setattr(embed_mod, "write_shards", spy)
    res = embed(out=out, model=model, fasta=fasta, shard_size=5, buffer_size=3, batch_size=2, progress=False)
    assert written == [2, 3, 4]  # finished shards were skipped, not embedded again
    assert res.n == whole.n == 23 and out.read_bytes() == whole.path.read_bytes()
    assert not folder.dir.exists()  # merged and cleaned up
    assert load_embeddings(out).ids == [f"s{i}" for i in range(23)]


def test_shards_of_other_settings_are_discarded(tmp_path, fasta, monkeypatch):
    out = tmp_path / "e.npz"
    with monkeypatch.context() as m:
        _kill_after(m, 2)
        with pytest.raises(Killed):
            embed(out=out, model="kmer:2", fasta=fasta, shard_size=5, progress=False)
    embed(out=out, model="kmer:1", fasta=fasta, shard_size=5, progress=False)  # another model: start over
    got = load_embeddings(out)
    assert got.dim == 20 and len(got) == 23


def test_bad_input_removes_the_shards(tmp_path, fasta):
    bad = tmp_path / "bad.fasta"
    bad.write_text(fasta.read_text() + ">s99\nMKV1L\n")  # a bad letter in the last shard
    out = tmp_path / "e.npz"
    with pytest.raises(InputError):
        embed(out=out, model="kmer:2", fasta=bad, shard_size=4, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.fasta", "in.fasta"]


def test_a_pipe_is_never_recognised_again(tmp_path, fasta):
    from phylocl.workflows.shards import input_identity

    before = input_identity(fasta)
    assert input_identity(fasta) == before  # a file: same path -> resumable (each shard's content is checked)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert input_identity(fifo) != input_identity(fifo)  # a pipe's content cannot be recognised


def test_input_edited_in_place_with_same_size_and_mtime_is_not_mixed(tmp_path, fasta, monkeypatch):
    """issue 25, defect 7: resume trusted path, size and mtime; an input edited in place (same size, mtime put
    back) reused the old shards and mixed two inputs. Shards are now recognised by a hash of what each one read."""
    out = tmp_path / "e.npz"
    st = fasta.stat()
    with monkeypatch.context() as m:
        _kill_after(m, 2)
        with pytest.raises(Killed):
            embed(out=out, model="kmer:2", fasta=fasta, shard_size=5, progress=False)
    text = fasta.read_text()
    first = text.index("\n") + 1  # the first sequence: one letter changed, length kept
    edited = text[:first] + ("W" if text[first] != "W" else "Y") + text[first + 1:]
    fasta.write_text(edited)
    os.utime(fasta, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert fasta.stat().st_size == st.st_size and fasta.stat().st_mtime_ns == st.st_mtime_ns
    embed(out=out, model="kmer:2", fasta=fasta, shard_size=5, progress=False)
    fresh = embed(out=tmp_path / "fresh.npz", model="kmer:2", fasta=fasta, shard_size=5, progress=False)
    assert out.read_bytes() == fresh.path.read_bytes()  # the edited input's rows, not the old shard's


def test_unchanged_input_touched_still_resumes(tmp_path, fasta, monkeypatch):
    """The content, not the time stamp, decides: a touched but unchanged input keeps its finished shards."""
    out = tmp_path / "e.npz"
    with monkeypatch.context() as m:
        _kill_after(m, 2)
        with pytest.raises(Killed):
            embed(out=out, model="kmer:2", fasta=fasta, shard_size=5, progress=False)
    os.utime(fasta, ns=(1, 10**18))
    from phylocl.retrieval import embedding_files

    embedded = []

    class Spy(embedding_files.EmbeddingWriter):
        def __init__(self, path, **kw):
            if "shard-" in str(path):
                embedded.append(int(str(path).rsplit("-", 1)[1].split(".")[0]))
            super().__init__(path, **kw)

    monkeypatch.setattr(embedding_files, "EmbeddingWriter", Spy)
    embed(out=out, model="kmer:2", fasta=fasta, shard_size=5, progress=False)
    assert embedded == [2, 3, 4]  # shards 0 and 1 were reused
