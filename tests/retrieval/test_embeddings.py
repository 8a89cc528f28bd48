"""Embedding files: round trips, the streaming writer, atomicity and errors on bad files."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import phylocl.retrieval.embedding_files as emb_mod
from phylocl.errors import InputError
from phylocl.retrieval.embedding_files import EmbeddingWriter, load_embeddings, save_embeddings

MODEL = {"fingerprint": "abc123", "name": "toy", "dim": 4, "alphabet": "protein", "extra": [1, 2]}


def _data(n=5, d=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(np.float32), [f"s{i}" for i in range(n)], [f"f{i % 2}" for i in range(n)]


@pytest.mark.parametrize("with_labels", [True, False])
def test_round_trip(tmp_path, with_labels):
    x, ids, labels = _data()
    path = save_embeddings(tmp_path / "e.npz", x.astype(np.float64), ids, labels if with_labels else None,
                           model=MODEL)
    got = load_embeddings(path)
    assert got.embeddings.dtype == np.float32 and np.array_equal(got.embeddings, x)
    assert got.ids == ids and got.labels == (labels if with_labels else None)
    assert got.model == MODEL and got.dim == 4 and len(got) == 5
    with np.load(path) as raw:  # plain numpy can read it
        assert json.loads(str(raw["model"]))["fingerprint"] == "abc123"
        assert str(raw["format"]) == "phylocl-embeddings/1"


def test_path_without_npz_suffix_is_written_exactly(tmp_path):
    x, ids, _ = _data()
    save_embeddings(tmp_path / "embeddings.bin", x, ids, model=MODEL)
    assert [p.name for p in tmp_path.iterdir()] == ["embeddings.bin"]
    assert load_embeddings(tmp_path / "embeddings.bin").ids == ids


def test_writer_streams_chunks_like_save(tmp_path):
    x, ids, labels = _data(n=11)
    with EmbeddingWriter(tmp_path / "w.npz", model=MODEL, with_labels=True) as w:
        for a in range(0, 11, 4):
            w.append(x[a:a + 4], ids[a:a + 4], labels[a:a + 4])
            assert not (tmp_path / "w.npz").exists()  # nothing visible until closed
        assert len(w) == 11
    save_embeddings(tmp_path / "s.npz", x, ids, labels, model=MODEL)
    a, b = load_embeddings(tmp_path / "w.npz"), load_embeddings(tmp_path / "s.npz")
    assert np.array_equal(a.embeddings, b.embeddings) and a.ids == b.ids and a.labels == b.labels
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.npz", "w.npz"]  # spool removed


def test_writer_error_leaves_old_file_and_no_temporaries(tmp_path):
    x, ids, _ = _data()
    target = tmp_path / "e.npz"
    save_embeddings(target, x, ids, model=MODEL)
    before = target.read_bytes()
    with pytest.raises(RuntimeError):
        with EmbeddingWriter(target, model=MODEL) as w:
            w.append(x[:2] * 0, ["n0", "n1"])
            raise RuntimeError("embedding crashed")
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["e.npz"]


def test_failure_while_writing_archive_is_atomic(tmp_path, monkeypatch):
    x, ids, _ = _data()
    target = tmp_path / "e.npz"
    save_embeddings(target, x, ids, model=MODEL)
    before = target.read_bytes()

    def broken(path, *args):
        path.write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(emb_mod, "_write_archive", broken)
    with pytest.raises(InputError, match="e.npz: cannot write: disk full"):  # names the output (issue 25)
        save_embeddings(target, x[:2], ids[:2], model=MODEL)
    w = EmbeddingWriter(target, model=MODEL)
    w.append(x, ids)
    with pytest.raises(InputError, match="e.npz: cannot write: disk full"):
        w.close()
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["e.npz"]


def test_writer_rejects_inconsistent_chunks(tmp_path):
    x, ids, labels = _data()
    w = EmbeddingWriter(tmp_path / "e.npz", model=MODEL, with_labels=True)
    with pytest.raises(ValueError, match="labels must be given"):
        w.append(x, ids)
    w.append(x[:2], ids[:2], labels[:2])
    with pytest.raises(ValueError, match=r"duplicate sequence id\(s\): \['s1'\]"):
        w.append(x[1:3], ids[1:3], labels[1:3])
    with pytest.raises(ValueError, match="width 3"):
        w.append(x[2:3, :3], ids[2:3], labels[2:3])
    w.abort()
    with pytest.raises(ValueError, match="closed"):
        w.append(x[2:3], ids[2:3], labels[2:3])
    assert list(tmp_path.iterdir()) == []
    empty = EmbeddingWriter(tmp_path / "e.npz", model=MODEL)
    with pytest.raises(ValueError, match="no embeddings"):
        empty.close()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("change, message", [
    (lambda x, ids, m: (x[:, :3], ids, m), "does not match"),
    (lambda x, ids, m: (x, ids[:4], m), "5 embeddings"),
    (lambda x, ids, m: (x, ["a"] * 5, m), "unique"),
    (lambda x, ids, m: (np.where(x > 1, np.nan, x), ids, m), "NaN"),
    (lambda x, ids, m: (x, ids, {"name": "toy", "dim": 4}), "lacks"),
    (lambda x, ids, m: (x, ids, {**m, "bad": object()}), "JSON"),
    (lambda x, ids, m: (x[0], ids, m), "2-D"),
])
def test_save_validates(tmp_path, change, message):
    x, ids, _ = _data()
    x2, ids2, m2 = change(x, ids, MODEL)
    with pytest.raises(ValueError, match=message):
        save_embeddings(tmp_path / "e.npz", x2, ids2, model=m2)
    assert not (tmp_path / "e.npz").exists()


def test_load_errors(tmp_path):
    with pytest.raises(InputError, match="no such embeddings file") as err:
        load_embeddings(tmp_path / "missing.npz")
    assert err.value.path.endswith("missing.npz")
    with pytest.raises(InputError, match="not a file"):
        load_embeddings(tmp_path)
    (tmp_path / "junk.npz").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(InputError, match="not an .npz archive"):
        load_embeddings(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(InputError, match="missing"):
        load_embeddings(tmp_path / "other.npz")
    x, ids, _ = _data()
    np.savez(tmp_path / "badmodel.npz", embeddings=x, ids=np.array(ids), model=np.array("{not json"))
    with pytest.raises(InputError, match="bad model description"):
        load_embeddings(tmp_path / "badmodel.npz")
    np.savez(tmp_path / "dup.npz", embeddings=x, ids=np.array(["a"] * 5), model=np.array(json.dumps(MODEL)))
    with pytest.raises(InputError, match="duplicate"):
        load_embeddings(tmp_path / "dup.npz")
    save_embeddings(tmp_path / "ok.npz", x, ids, model=MODEL)
    (tmp_path / "cut.npz").write_bytes((tmp_path / "ok.npz").read_bytes()[:200])  # truncated download
    with pytest.raises(InputError):
        load_embeddings(tmp_path / "cut.npz")


@pytest.mark.parametrize("case, message", [
    ("npy", "is a bare .npy array, not an embeddings file"),
    ("text", "not an .npz archive"),
    ("empty", "empty"),
    ("format", "embeddings format 'phylocl-embeddings/99' is not"),
    ("nan", "NaN or infinite"),
    ("truncated", "truncated or damaged"),
    ("tab_id", r"sequence id 'a\\tb' is empty or holds whitespace"),  # broke the hits TSV's columns
    ("empty_id", "sequence id '' is empty"),
    ("newline_label", "is empty or holds a tab or line break"),
    ("object_ids", "member ids.npy holds Python objects"),  # was "declares shape ... but holds ... bytes"
    ("no_rows", r"no embeddings to read \(0 rows of width"),
])
def test_foreign_or_damaged_files_are_named_in_one_line(tmp_path, case, message):
    x, ids, _ = _data()
    path = tmp_path / "e.npz"
    if case == "npy":
        np.save(tmp_path / "e.npy", x)
        path = tmp_path / "e.npy"
    elif case == "text":
        path.write_text("q1\t0.1\t0.2\n")
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "format":
        np.savez(path, embeddings=x, ids=np.array(ids), model=np.array(json.dumps(MODEL)),
                 format=np.array("phylocl-embeddings/99"))
    elif case == "nan":
        x = x.copy()
        x[1, 2] = np.nan
        np.savez(path, embeddings=x, ids=np.array(ids), model=np.array(json.dumps(MODEL)))
    elif case in ("tab_id", "empty_id", "object_ids"):
        bad = np.array(ids, dtype="<U8")
        bad[1] = {"tab_id": "a\tb", "empty_id": "", "object_ids": bad[1]}[case]
        np.savez(path, embeddings=x, ids=bad.astype(object) if case == "object_ids" else bad,
                 model=np.array(json.dumps(MODEL)))
    elif case == "newline_label":
        labels = np.array(["A"] * len(ids), dtype="<U4")
        labels[2] = "A\nB"
        np.savez(path, embeddings=x, ids=np.array(ids), labels=labels, model=np.array(json.dumps(MODEL)))
    elif case == "no_rows":
        np.savez(path, embeddings=x[:0], ids=np.array(ids[:0], dtype="<U3"), model=np.array(json.dumps(MODEL)))
    else:
        save_embeddings(tmp_path / "ok.npz", x, ids, model=MODEL)
        data = (tmp_path / "ok.npz").read_bytes()
        path.write_bytes(data[: len(data) - 300])
    with pytest.raises(InputError, match=message) as err:
        load_embeddings(path)
    assert "\n" not in str(err.value) and "pickled" not in str(err.value)


def test_archive_members_are_uncompressed_npy(tmp_path):
    x, ids, labels = _data()
    save_embeddings(tmp_path / "e.npz", x, ids, labels, model=MODEL)
    with zipfile.ZipFile(tmp_path / "e.npz") as zf:
        names = sorted(zf.namelist())
        assert names == ["embeddings.npy", "format.npy", "ids.npy", "labels.npy", "model.npy"]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())


def test_mmap_maps_stored_rows_and_reads_compressed_ones(tmp_path):
    """Stored rows come back as a read-only memory map of the file; a compressed archive is read instead."""
    from phylocl.retrieval.npz_mmap import memmap_member

    x = np.arange(12, dtype=np.float32).reshape(4, 3) + 1
    model = {"fingerprint": "f", "name": "n", "dim": 3, "alphabet": "protein"}
    path = save_embeddings(tmp_path / "e.npz", x, list("abcd"), model=model)
    got = load_embeddings(path, mmap=True)
    assert isinstance(got.embeddings, np.memmap) and not got.embeddings.flags.writeable
    np.testing.assert_array_equal(got.embeddings, x)
    comp = tmp_path / "c.npz"
    np.savez_compressed(comp, embeddings=x, ids=np.array(list("abcd")), model=np.array(json.dumps(model)),
                        format=np.array("phylocl-embeddings/1"))
    with pytest.raises(ValueError, match="compressed"):
        memmap_member(comp, "embeddings.npy")
    back = load_embeddings(comp, mmap=True)
    assert not isinstance(back.embeddings, np.memmap) and np.array_equal(back.embeddings, x)


def test_read_rows_reads_blocks_of_a_map_without_mapping_them(tmp_path):
    """read_rows gives the rows of the map (any block, clipped at the end) as plain arrays; views are sliced."""
    from phylocl.retrieval.index import build_index
    from phylocl.retrieval.npz_mmap import read_rows

    x = np.random.default_rng(0).standard_normal((103, 5)).astype(np.float32)
    model = {"fingerprint": "f", "name": "n", "dim": 5, "alphabet": "protein"}
    m = load_embeddings(save_embeddings(tmp_path / "e.npz", x, [str(i) for i in range(103)], model=model),
                        mmap=True).embeddings
    for lo, hi in [(0, 10), (7, 50), (100, 200), (0, 103)]:
        got = read_rows(m, lo, hi)
        assert not isinstance(got, np.memmap) and got.flags.writeable
        np.testing.assert_array_equal(got, x[lo:hi])
    view = m[40:60]  # a memmap too, but with the map's offset attribute: must be sliced, not read from the file
    np.testing.assert_array_equal(read_rows(view, 5, 9), x[45:49])
    np.testing.assert_array_equal(read_rows(x, 3, 6), x[3:6])
    assert read_rows(m, 50, 50).shape == (0, 5)
    from phylocl.retrieval.npz_mmap import block_rows, row_blocks

    assert block_rows(m, max_bytes=5 * 4 * 10) == 10 and block_rows(m, max_bytes=1) == 1  # 20-byte rows
    assert block_rows(m, max_bytes=1 << 20, max_rows=7) == 7
    blocks = list(row_blocks(m, max_bytes=5 * 4 * 10))
    assert [lo for lo, _ in blocks] == list(range(0, 103, 10)) and len(blocks[-1][1]) == 3
    np.testing.assert_array_equal(np.concatenate([b for _, b in blocks]), x)
    a = build_index(m, kind="flat", batch_rows=16).search(x[:4], 3)
    b = build_index(x, kind="flat").search(x[:4], 3)
    np.testing.assert_array_equal(a[1], b[1])


def test_same_rows_give_the_same_bytes(tmp_path):
    x = np.random.default_rng(0).standard_normal((5, 2)).astype(np.float32)
    model = {"fingerprint": "f", "name": "n", "dim": 2, "alphabet": "protein"}
    a = save_embeddings(tmp_path / "a.npz", x, list("abcde"), model=model).read_bytes()
    import time as _time

    _time.sleep(2.1)  # zip time stamps have 2 s resolution: a write one tick later must not differ
    b = save_embeddings(tmp_path / "b.npz", x, list("abcde"), model=model).read_bytes()
    assert a == b


def test_falling_back_from_memory_mapping_is_said(tmp_path, caplog):
    """Issue 25: a file whose rows cannot be mapped was silently read whole into memory."""
    import logging

    x, ids, _ = _data()
    np.savez_compressed(tmp_path / "c.npz", embeddings=x, ids=np.array(ids), model=np.array(json.dumps(MODEL)))
    with caplog.at_level(logging.WARNING, logger="phylocl"):
        loaded = load_embeddings(tmp_path / "c.npz", mmap=True)
    assert not isinstance(loaded.embeddings, np.memmap)
    assert any("cannot be memory-mapped" in r.getMessage() and "c.npz" in r.getMessage() for r in caplog.records)
    caplog.clear()
    save_embeddings(tmp_path / "u.npz", x, ids=ids, model=MODEL)
    with caplog.at_level(logging.WARNING, logger="phylocl"):
        assert isinstance(load_embeddings(tmp_path / "u.npz", mmap=True).embeddings, np.memmap)
    assert not caplog.records
