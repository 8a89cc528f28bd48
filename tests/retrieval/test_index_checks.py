"""A damaged index bundle never crashes and never lies (issue 25, defect 3): structure checked at every load,
checksums of every file written at build time (small files verified at load, all with ``phylocl index --verify``),
posting lists checked as a query reads them, never a NaN score."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import phylocl.retrieval.index_checks as checks
from phylocl.cli import main
from phylocl.errors import InputError
from phylocl.retrieval.index_io import load_index
from phylocl.retrieval.kmer import KmerEmbedder
from phylocl.retrieval.sparse_build import write_sparse_index
from phylocl.sparse_rows import SparseRows

REPO = Path(__file__).resolve().parents[2]
LETTERS = list("ACDEFGHIKLMNPQRSTVWY")


def _rows(n=40, rank=2, seed=0) -> tuple[SparseRows, list[str]]:
    rng = np.random.default_rng(seed)
    seqs = ["".join(rng.choice(LETTERS, rng.integers(8, 40))) for _ in range(n)]
    rows = KmerEmbedder(k=2).embed_sparse(seqs)
    if rank:
        rows = SparseRows(indptr=rows.indptr, indices=rows.indices, values=rows.values,
                          coeffs=(0.05 * rng.standard_normal((n, rank))).astype(np.float32),
                          basis=rng.standard_normal((rank, rows.dim)).astype(np.float32), dim=rows.dim)
    return rows, seqs


@pytest.fixture
def bundle(tmp_path) -> Path:
    rows, _ = _rows()
    ids = [f"s{i}" for i in range(len(rows))]
    write_sparse_index(tmp_path / "ix", [(rows, ids, None)], model={"name": "m", "dim": rows.dim})
    return tmp_path / "ix"


def _search(path: Path):
    rows, _ = _rows()
    index = load_index(path)
    return index.search(rows.slice(0, 5), 3)


def _npy_data(path: Path, name: str) -> tuple[np.ndarray, int]:
    """``(array, byte offset of its data)`` of ``path/name`` (to damage the data, not the header)."""
    arr = np.load(path / name, allow_pickle=False)
    return arr, os.path.getsize(path / name) - arr.nbytes


def _poke(path: Path, name: str, index: int, value) -> None:
    """Overwrite element ``index`` of the .npy file's data in place with ``value`` (same dtype)."""
    arr, off = _npy_data(path, name)
    with open(path / name, "r+b") as f:
        f.seek(off + index * arr.dtype.itemsize)
        f.write(np.array([value], dtype=arr.dtype).tobytes())


def test_build_writes_checksums_of_every_file_and_a_clean_bundle_verifies(bundle, capsys):
    record = json.loads((bundle / "checksums.json").read_text())
    assert set(record["files"]) == {p.name for p in bundle.iterdir()} - {"checksums.json"}
    assert main(["index", "--verify", str(bundle)]) == 0
    assert "ok" in capsys.readouterr().out
    scores, idx = _search(bundle)
    assert np.isfinite(scores).all() and (idx >= 0).all()


def test_flipped_bytes_are_caught_by_the_checksums_at_load(bundle):
    arr, off = _npy_data(bundle, "values.npy")
    with open(bundle / "values.npy", "r+b") as f:  # a finite value changed: only a checksum can tell
        f.seek(off + 5)
        byte = f.read(1)
        f.seek(off + 5)
        f.write(bytes([byte[0] ^ 0x01]))
    with pytest.raises(InputError, match="values.npy.*checksum"):
        load_index(bundle)


def test_a_checksum_mismatch_is_the_error_even_where_reading_fails_first(bundle, monkeypatch):
    """The small files are hashed while the bundle is read: a damaged ``ptr.npy`` that the structure checks refuse
    is still reported as a checksum mismatch (the error a damaged bundle with checksums gets), however the two
    finish; a sound bundle is returned only after its hashes matched."""
    import threading

    import phylocl.retrieval.index_io as index_io

    ptr, _ = _npy_data(bundle, "ptr.npy")
    j = int(np.flatnonzero(np.diff(ptr) > 0)[0]) + 1
    _poke(bundle, "ptr.npy", j, ptr[j] - 1 if ptr[j] > 0 else 10**6)
    _poke(bundle, "ptr.npy", j - 1, ptr[j] + 5)
    real = checks.verify_checksums
    hashed = threading.Event()

    def slow(*a, **kw):  # the hashes finish after the reading has failed
        threading.Event().wait(0.2)
        try:
            return real(*a, **kw)
        finally:
            hashed.set()

    monkeypatch.setattr(index_io, "verify_at_load", lambda path: slow(path, max_bytes=checks.VERIFY_AT_LOAD_BYTES))
    with pytest.raises(InputError, match="ptr.npy does not match the checksum"):
        load_index(bundle)
    assert hashed.is_set()
    (bundle / "checksums.json").unlink()
    with pytest.raises(InputError, match="ptr.npy is not non-decreasing"):  # the structure check, without checksums
        load_index(bundle)


def test_big_files_are_verified_on_request(bundle, monkeypatch, capsys):
    """Files above the load-time limit are checked by ``phylocl index --verify`` only (reading them all would slow
    every search of a large index)."""
    monkeypatch.setattr(checks, "VERIFY_AT_LOAD_BYTES", 0)
    _poke(bundle, "values.npy", 3, np.float32(0.123))
    load_index(bundle)  # structure is sound; the changed value is found only by a full verification
    assert main(["index", "--verify", str(bundle)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "values.npy" in err and "checksum" in err


def _without_checksums(bundle: Path) -> Path:
    (bundle / "checksums.json").unlink()  # as an earlier phylocl wrote it: structure checks only
    return bundle


def test_non_increasing_ptr_is_refused_at_load(bundle):
    ptr, _ = _npy_data(_without_checksums(bundle), "ptr.npy")
    j = int(np.flatnonzero(np.diff(ptr) > 0)[0]) + 1
    _poke(bundle, "ptr.npy", j, ptr[j] - 1 if ptr[j] > 0 else 10**6)
    _poke(bundle, "ptr.npy", j - 1, ptr[j] + 5)
    with pytest.raises(InputError, match="ptr"):
        load_index(bundle)


def test_nan_in_the_basis_is_refused_at_load(bundle):
    _poke(_without_checksums(bundle), "basis.npy", 1, np.float32("nan"))
    with pytest.raises(InputError, match="basis.npy.*not finite"):
        load_index(bundle)


@pytest.mark.parametrize("value", [np.float32("nan"), np.float32("inf"), np.float32("-inf")])
@pytest.mark.parametrize("budget", [None, 0.5])
def test_a_value_of_the_low_rank_part_that_is_not_finite_is_refused_where_a_search_reads_it(bundle, capsys, value,
                                                                                            budget):
    """``dense.npy`` is not scanned at load (1.9 GB at 10^6 windowed proteins): the products a search computes with
    its rows are checked, exact and budgeted, and ``--verify`` scans it whole."""
    dense, _ = _npy_data(_without_checksums(bundle), "dense.npy")
    for row in range(len(dense)):  # one coefficient of every row: whichever rows a search reads, it reads one
        _poke(bundle, "dense.npy", row * dense.shape[1] + 1 + row % 3, value)
    index = load_index(bundle)  # no scan of the low-rank part at load
    rows, _ = _rows()
    with pytest.raises(InputError, match="dense.npy.*not finite"):
        index.search(rows.slice(0, 5), 3, budget=budget)
    assert main(["index", "--verify", str(bundle)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dense.npy" in err and "not finite" in err


@pytest.mark.parametrize("budget", [None, 0.5])
def test_a_windowed_search_refuses_a_low_rank_part_that_is_not_finite(budget):
    from phylocl.retrieval.windowed import WindowedIndex, WindowRows

    rows, _ = _rows(n=12)
    owners = np.repeat(np.arange(6), 2)  # 6 sequences of 2 windows
    index = WindowedIndex(owners=owners, rows=rows)
    queries = WindowRows(rows=rows.slice(0, 4), owners=np.array([0, 0, 1, 1]), n=2)
    clean, _ = index.search(queries, 3, budget=budget)
    assert np.isfinite(clean).all()
    index.index.dense[:, 2] = np.float32("nan")
    with pytest.raises(InputError, match="dense.npy.*not finite"):
        index.search(queries, 3, budget=budget)


def test_swapped_dense_and_basis_are_refused(bundle):
    _without_checksums(bundle)
    os.replace(bundle / "dense.npy", bundle / "tmp.npy")
    os.replace(bundle / "basis.npy", bundle / "dense.npy")
    os.replace(bundle / "tmp.npy", bundle / "basis.npy")
    with pytest.raises(InputError, match="dense"):
        load_index(bundle)


def test_nan_value_in_a_posting_list_never_gives_a_nan_score(bundle):
    values, _ = _npy_data(_without_checksums(bundle), "values.npy")
    _poke(bundle, "values.npy", 0, np.float32("nan"))
    _poke(bundle, "values.npy", len(values) - 1, np.float32("inf"))
    with pytest.raises(InputError, match="not finite"):
        _search(bundle)


_SEARCH = """
import sys
from phylocl.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("value", [10**6, -3])
def test_row_id_out_of_range_is_one_line_not_a_segfault(tmp_path, value):
    """Out-of-range row ids (flipped bytes in rows.npy) made scipy write out of bounds: a segmentation fault. Run in
    a child process so that a crash is a failed test, not a crashed test run."""
    _, seqs = _rows(rank=0)
    db = tmp_path / "db.fasta"
    db.write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(seqs)))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    run = lambda *a: subprocess.run([sys.executable, "-c", _SEARCH, *map(str, a)], env=env,  # noqa: E731
                                    capture_output=True, text=True, timeout=120)
    idx = tmp_path / "db.idx"
    assert run("index", "--fasta", db, "--model", "kmer:2", "-o", idx, "--quiet").returncode == 0
    (idx / "checksums.json").unlink()
    rows, _ = _npy_data(idx, "rows.npy")
    for at in range(0, len(rows), 7):
        _poke(idx, "rows.npy", at, value)
    proc = run("search", "--index", idx, "--query", db, "--model", "kmer:2", "-o", tmp_path / "hits.tsv", "--quiet")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.count("\n") == 1 and "rows.npy" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "hits.tsv").exists()


def test_repeated_ids_of_a_sparse_bundle_with_checksums_are_found_by_verify(bundle, capsys):
    """A build writes unique ids and flipped bytes in ``rows.npz`` fail its zip CRC, so a sparse bundle with checksums
    is not checked for repeated ids at load (10^6 ids: ~0.13 s of every search); ``--verify`` checks them, and a
    bundle without checksums (an earlier phylocl's) is checked at load."""
    ids = [f"s{i}" for i in range(40)]
    ids[7] = "s3"
    np.savez(bundle / "rows.npz", ids=np.array(ids))
    checks.write_checksums(bundle)  # rewritten as a whole, checksums included: only the id check can tell
    assert load_index(bundle).ids[7] == "s3"
    assert main(["index", "--verify", str(bundle)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "duplicate row id 's3'" in err and "rows.npz" in err
    with pytest.raises(InputError, match="duplicate row id 's3'"):
        load_index(_without_checksums(bundle))


def _flip_id(bundle: Path, old: str, new: str) -> None:
    """Rewrite id ``old`` as ``new`` (same length) inside ``rows.npz``'s stored bytes, leaving the zip's CRC as it
    was: a valid array holding a wrong id."""
    data = (bundle / "rows.npz").read_bytes()
    at = data.index(old.encode("utf-32-le"))
    (bundle / "rows.npz").write_bytes(data[:at] + new.encode("utf-32-le") + data[at + 4 * len(old):])


def test_ids_are_mapped_in_place_and_read_as_str(bundle):
    """A sparse bundle's ids are memory-mapped from ``rows.npz`` (:class:`~phylocl.retrieval.row_ids.IdArray`), not copied into a list at load
    (10^6 ids: ~0.1 s of every search's start), and read as the ids the build wrote."""
    from phylocl.retrieval.row_ids import IdArray

    ids = [f"s{i}" for i in range(40)]
    got = load_index(bundle).ids
    assert isinstance(got, IdArray) and isinstance(got._values, np.memmap)
    assert got == ids and got != ids[:-1] and got != "s0" and list(got) == ids and len(got) == 40
    assert type(got[3]) is str and got[3] == "s3" and got[-1] == "s39" and got[5:8] == ["s5", "s6", "s7"]
    assert np.array_equal(np.asarray(got), np.array(ids))
    with pytest.raises(IndexError):
        got[40]


@pytest.mark.parametrize("with_checksums", [False, True])
def test_a_changed_id_fails_the_zip_crc_of_mapped_ids(tmp_path, monkeypatch, with_checksums):
    """Mapped ids skip the zip reader's CRC-32, so the loader checks it: a changed id (a valid array, the CRC left as
    it was) is one located line, exit 2, whether the bundle has no checksums (an earlier phylocl's) or ``rows.npz`` is
    over the size whose SHA-256 is compared at load; without the check it would load and print the wrong id. (Ids of
    ~1,800 bytes each: the members' header checks read only a member's first 64 KB, which holds all of a small one.)"""
    import phylocl.retrieval.index_io as index_io

    rows, _ = _rows()
    ids = [f"s{i}_" + "x" * 450 for i in range(len(rows))]
    bundle = tmp_path / "ix"
    write_sparse_index(bundle, [(rows, ids, None)], model={"name": "m", "dim": rows.dim})
    if with_checksums:  # rows.npz as large as 10^6 ids: not hashed at load
        monkeypatch.setattr(checks, "VERIFY_AT_LOAD_BYTES", 0)
        monkeypatch.setattr(index_io, "VERIFY_AT_LOAD_BYTES", 0)
    else:
        _without_checksums(bundle)
    _flip_id(bundle, "s37_", "t37_")
    with pytest.raises(InputError, match=r"cannot read row ids \(truncated or damaged\?\): Bad CRC-32") as err:
        load_index(bundle)
    assert err.value.path == str(bundle / "rows.npz") and "\n" not in str(err.value)
    monkeypatch.setattr(index_io, "check_member_crc", lambda *a: None)  # the check it makes
    assert load_index(bundle).ids[37].startswith("t37_")
