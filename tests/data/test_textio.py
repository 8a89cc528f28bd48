"""Input files opened once: byte-order marks, named pipes, process substitution, truncated gzip, unreadable."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading

import pytest

from phylocl.data.fasta import parse_fasta
from phylocl.data.labels import read_labels
from phylocl.data.layouts import FastaStream, read_dataset
from phylocl.data.textio import open_text
from phylocl.errors import InputError

BOM = b"\xef\xbb\xbf"


def test_byte_order_mark_in_fasta_and_labels(tmp_path):
    fa = tmp_path / "s.fa"
    fa.write_bytes(BOM + b">a\nMKTA\n>b\nMKTV\n")
    labels = tmp_path / "l.tsv"
    labels.write_bytes(BOM + b"sequence_id\tfamily_id\na\tF\nb\tF\n")
    assert [r.id for r in parse_fasta(fa)] == ["a", "b"]
    assert read_labels(labels).family == {"a": "F", "b": "F"}
    assert read_dataset(fa, labels=labels).ids == ["a", "b"]
    gz = tmp_path / "s.fa.gz"
    gz.write_bytes(gzip.compress(BOM + b">a\nMK\n"))
    assert [r.id for r in parse_fasta(gz)] == ["a"]


def test_bom_only_file_is_empty(tmp_path):
    f = tmp_path / "e.fa"
    f.write_bytes(BOM + b"\n")
    with pytest.raises(InputError, match="empty file"):
        list(parse_fasta(f))


def _fifo_with_writer(tmp_path, data: bytes, name="pipe.fa"):
    fifo = tmp_path / name
    os.mkfifo(fifo)

    def write():
        with open(fifo, "wb") as f:  # blocks until the reader opens the pipe
            f.write(data)

    t = threading.Thread(target=write, daemon=True)
    t.start()
    return fifo, t


@pytest.mark.parametrize("compress", [False, True])
def test_named_pipe_is_read_once(tmp_path, compress):
    text = "".join(f">s{i}\n{'MKTAYIAKQR' * 50}\n" for i in range(300)).encode()  # > one pipe buffer
    fifo, writer = _fifo_with_writer(tmp_path, gzip.compress(text) if compress else text)
    stream = FastaStream(fifo)
    assert stream.kind == "protein" and len(stream.head) == 256
    assert [r.id for r in stream] == [f"s{i}" for i in range(300)]
    writer.join(timeout=10)
    assert not writer.is_alive()


def test_process_substitution_reads_all_records(tmp_path):
    fa = tmp_path / "s.fa"
    fa.write_text(">a\nMKTA\n>b\nMKTV\n")
    code = "from phylocl.data.layouts import iter_fasta; import sys; print(len(list(iter_fasta(sys.argv[1]))))"
    out = subprocess.run(["bash", "-c", f'"{sys.executable}" -c "{code}" <(cat "{fa}")'],
                         capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2"


def test_truncated_gzip_is_one_located_error(tmp_path):
    data = gzip.compress("".join(f">s{i}\n{'ACGT' * 200}\n" for i in range(200)).encode())
    f = tmp_path / "t.fa.gz"
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=rf"{f}: read failed after line \d+"):
        list(parse_fasta(f))
    labels = tmp_path / "l.tsv.gz"
    labels.write_bytes(gzip.compress(b"sequence_id\tfamily_id\n" + b"a\tF\n" * 5000)[:200])
    with pytest.raises(InputError, match=str(labels)):
        read_labels(labels)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files without read permission")
def test_unreadable_file_is_one_line(tmp_path):
    f = tmp_path / "locked.fa"
    f.write_text(">a\nMK\n")
    f.chmod(0)
    with pytest.raises(InputError, match=rf"{f}: cannot read: permission denied"):
        open_text(f)


def test_permission_denied_is_one_line_even_as_root(tmp_path, monkeypatch):
    import phylocl.data.textio as textio

    f = tmp_path / "locked.fa"
    f.write_text(">a\nMK\n")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(textio, "open", denied, raising=False)
    with pytest.raises(InputError, match=rf"{f}: cannot read: permission denied"):
        list(parse_fasta(f))


@pytest.mark.parametrize("compress", ["bz2", "xz"])
def test_bzip2_and_xz_are_read_by_magic_bytes(tmp_path, compress):
    import bz2
    import lzma

    data = b">a\nMKTA\n>b\nMKTV\n"
    f = tmp_path / "s.fa"
    f.write_bytes(bz2.compress(data) if compress == "bz2" else lzma.compress(data))
    assert [r.sequence for r in parse_fasta(f)] == ["MKTA", "MKTV"]


@pytest.mark.parametrize("magic, name", [(b"\x28\xb5\x2f\xfd", "zstd-compressed"), (b"PK\x03\x04", "zip archive")])
def test_unsupported_compression_is_named(tmp_path, magic, name):
    f = tmp_path / "s.fa"
    f.write_bytes(magic + b"rest of the archive")
    with pytest.raises(InputError, match=f"not a FASTA file: a {name} file"):
        list(parse_fasta(f))


def test_an_npz_given_as_fasta_is_named_as_numpys_not_as_something_to_decompress(tmp_path):
    import numpy as np

    f = tmp_path / "emb.npz"
    np.savez(f, x=np.zeros(3))
    with pytest.raises(InputError, match="not a FASTA file: a NumPy .npz archive") as err:
        list(parse_fasta(f))
    assert "decompress" not in str(err.value)


def test_labels_keep_metadata_columns_strip_cells_and_skip_blank_lines(tmp_path):
    """Metadata columns hold their own cells (by id), cells are stripped of spaces, blank lines are skipped and
    every id keeps the number of its own line."""
    labels = tmp_path / "l.tsv"
    labels.write_text("species\tsequence_id\tfamily_id\tclade\n"
                      "human\ta \t F1 \tmammal\n\n"
                      " yeast\tb\tF2\tfungus \n")
    got = read_labels(labels)
    assert got.family == {"a": "F1", "b": "F2"}
    assert got.metadata == {"species": {"a": "human", "b": "yeast"}, "clade": {"a": "mammal", "b": "fungus"}}
    assert got.line == {"a": 2, "b": 4}
