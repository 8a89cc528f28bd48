"""A sparse bundle keeps only the low-rank columns that are not zero in every row (format ``phylocl-index/2``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import phylocl.retrieval.sparse_build as sparse_build
from phylocl.cli import main
from phylocl.errors import InputError
from phylocl.retrieval.index_checks import write_checksums
from phylocl.retrieval.index_io import load_index
from phylocl.retrieval.sparse_build import sparse_index_in_memory, write_sparse_index
from phylocl.retrieval.sparse_index import SparseIndex, check_dense_columns
from phylocl.retrieval.windowed import window_pieces
from phylocl.workflows.model_spec import resolve_model

LETTERS = list("ACDEFGHIKLMNPQRSTVWY")


def _sequences(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(LETTERS, int(m))) for m in rng.integers(20, 300, size=n)]


@pytest.fixture(scope="module")
def rows():
    """Rows of the shipped ``default-protein`` (NumPy path): its similar-word block's basis rows make columns of the
    low-rank part zero in every row."""
    return resolve_model("default-protein").embed_sparse(_sequences(600))  # over 2^16 / 139 rows: BLAS products


def _full_reference(rows) -> SparseIndex:
    """The same rows with every low-rank column kept (what a bundle of format ``phylocl-index/1`` holds)."""
    ix = sparse_index_in_memory(rows, ids=[f"s{i}" for i in range(len(rows))])
    full = sparse_build._dense_part(rows)  # (N, 2r)
    return SparseIndex(ptr=ix.postings.indptr, rows=ix.postings.indices, values=ix.postings.data, dense=full,
                       basis=rows.basis, ids=ix.ids)


def test_the_bundle_keeps_the_nonzero_columns_and_scores_bit_for_bit_as_with_all(tmp_path, rows, monkeypatch):
    monkeypatch.setattr(sparse_build, "READ_VALUES", 5000)  # dense.npy written in many blocks of rows
    ids = [f"s{i}" for i in range(len(rows))]
    blocks = [(rows.slice(lo, min(lo + 90, len(rows))), ids[lo:lo + 90], None) for lo in range(0, len(rows), 90)]
    meta = write_sparse_index(tmp_path / "ix", blocks, model={})
    full = sparse_build._dense_part(rows)  # (N, 2r)
    zero = ~(full != 0).any(axis=0)
    assert meta["format"] == "phylocl-index/2" and meta["dense_columns"] == np.flatnonzero(~zero).tolist()
    assert zero.sum() >= rows.rank // 2  # the similar-word block's columns of a (and unused tokens)
    index = load_index(tmp_path / "ix")
    np.testing.assert_array_equal(np.load(tmp_path / "ix" / "dense.npy"), full[:, ~zero])
    ref = _full_reference(rows)
    q = rows.slice(3, 40)
    np.testing.assert_array_equal(index.scores(q), ref.scores(q))  # BLAS: a zero column adds exactly nothing
    small = sparse_index_in_memory(rows.slice(0, 200), ids=ids[:200])  # einsum (matmul_rows' small products):
    np.testing.assert_allclose(small.scores(q), ref.scores(q)[:, :200], atol=3e-7)  # summed in other groups
    for k in (1, 10):
        got, want = index.search(q, k, exclude_ids=ids[3:40]), ref.search(q, k, exclude_ids=ids[3:40])
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[0], want[0])
    got, want = index.search(q, 10, budget=0.3), ref.search(q, 10, budget=0.3)  # einsum on gathered rows
    np.testing.assert_allclose(got[0], want[0], atol=1e-6)
    in_memory = sparse_index_in_memory(rows, ids=ids)  # `search --db`: the same columns
    np.testing.assert_array_equal(in_memory.dense_columns, meta["dense_columns"])
    np.testing.assert_array_equal(in_memory.scores(q), ref.scores(q))


def _as_format_1(bundle, rows) -> None:
    """Rewrite ``bundle`` as phylocl before dense_columns wrote it: every low-rank column, format /1."""
    np.save(bundle / "dense.npy", sparse_build._dense_part(rows))
    meta = json.loads((bundle / "meta.json").read_text())
    del meta["dense_columns"]
    meta["format"] = "phylocl-index/1"
    (bundle / "meta.json").write_text(json.dumps(meta))
    (bundle / "checksums.json").unlink()
    write_checksums(bundle)


def test_a_format_1_bundle_with_every_column_reads_as_before(tmp_path, rows):
    ids = [f"s{i}" for i in range(len(rows))]
    write_sparse_index(tmp_path / "new", [(rows, ids, None)], model={})
    write_sparse_index(tmp_path / "old", [(rows, ids, None)], model={})
    _as_format_1(tmp_path / "old", rows)
    old, new = load_index(tmp_path / "old"), load_index(tmp_path / "new")
    assert old.dense.shape[1] == 2 * rows.rank > new.dense.shape[1]
    q = rows.slice(0, 30)
    np.testing.assert_array_equal(old.scores(q), new.scores(q))
    for a, b in zip(old.search(q, 5), new.search(q, 5)):
        np.testing.assert_array_equal(a, b)


def test_windowed_bundle_search_is_the_same_with_every_column(tmp_path):
    """`phylocl index` of windows, then search: same hits and scores as the bundle rewritten in format /1."""
    from phylocl.retrieval.windowed import WindowRows

    embedder = resolve_model("default-protein")
    seqs = _sequences(250, seed=3)  # ~750 windows
    pieces, owners = window_pieces(seqs, 60, 60)
    win = WindowRows(rows=embedder.embed_sparse(pieces), owners=owners, n=len(seqs))
    ids = [f"s{i}" for i in range(len(seqs))]
    for name in ("new", "old"):
        write_sparse_index(tmp_path / name, [(win, ids, None)], model={}, window={"window": 60, "stride": 60})
    _as_format_1(tmp_path / "old", win.rows)
    old, new = load_index(tmp_path / "old"), load_index(tmp_path / "new")
    assert new.index.ntotal * len(new.index.dense_columns) > 1 << 16  # BLAS products
    q = win.slice(0, 12)
    for a, b in zip(old.search(q, 6, exclude_ids=ids[:12]), new.search(q, 6, exclude_ids=ids[:12])):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("columns,message", [
    ("missing", "dense_columns"), ([0, 0, 1], "increase strictly"), ([-1, 3], "increase strictly"),
    ([1, 100000], "increase strictly"), ("[1, 2]", "list of integers"), ([1.5, 2], "list of integers"),
    ("fewer", "dense.npy"),
])
def test_bad_dense_columns_are_refused_in_one_line(tmp_path, rows, capsys, columns, message):
    ids = [f"s{i}" for i in range(len(rows))]
    write_sparse_index(tmp_path / "ix", [(rows, ids, None)], model={})
    meta = json.loads((tmp_path / "ix" / "meta.json").read_text())
    if columns == "missing":
        del meta["dense_columns"]
    elif columns == "fewer":  # a valid list that does not fit dense.npy's width
        meta["dense_columns"] = meta["dense_columns"][:-1]
    else:
        meta["dense_columns"] = columns
    (tmp_path / "ix" / "meta.json").write_text(json.dumps(meta))
    (tmp_path / "ix" / "checksums.json").unlink()
    write_checksums(tmp_path / "ix")  # a bundle written so (not flipped bytes, which the checksums catch)
    with pytest.raises(InputError, match=message):
        load_index(tmp_path / "ix")
    fasta = tmp_path / "q.fasta"
    fasta.write_text(">q\nMKVLAAGIWDEKLRT\n")
    out = tmp_path / "hits.tsv"
    assert main(["search", "--query", str(fasta), "--index", str(tmp_path / "ix"), "-o", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and not out.exists()


def test_check_dense_columns():
    np.testing.assert_array_equal(check_dense_columns(None, 4), [0, 1, 2, 3])
    np.testing.assert_array_equal(check_dense_columns(np.array([1, 3]), 4), [1, 3])
    assert len(check_dense_columns(np.zeros(0, np.int64), 0)) == 0
    for bad in ([3, 1], [4], [[1, 2]]):
        with pytest.raises(ValueError):
            check_dense_columns(np.array(bad), 4)
