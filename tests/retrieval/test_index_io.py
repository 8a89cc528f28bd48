"""Index bundles: round trips for every kind, atomic replacement, errors, and the model-compatibility check."""

from __future__ import annotations

import json

import faiss
import numpy as np
import pytest

from phylocl.errors import InputError
from phylocl.retrieval.index import build_index
from phylocl.retrieval.index_io import check_compatible, load_index, save_index

MODEL = {"fingerprint": "f00d", "name": "gmlp-small", "dim": 16, "alphabet": "protein"}


def _data(n):
    rng = np.random.default_rng(0)
    c = rng.standard_normal((n // 20, 16))
    return (c[rng.integers(0, len(c), n)] + 0.3 * rng.standard_normal((n, 16))).astype(np.float32)


@pytest.mark.parametrize("kind, n, mmap", [("flat", 300, False), ("flat", 300, True), ("ivf", 3000, False),
                                           ("ivf", 3000, True), ("hnsw", 300, False), ("ivfpq", 10000, False)])
def test_round_trip_searches_the_same(tmp_path, kind, n, mmap):
    x = _data(n)
    ids, labels = [f"s{i}" for i in range(n)], [f"f{i % 7}" for i in range(n)]
    index = build_index(x, kind=kind, ids=ids, labels=labels, model=MODEL, nprobe=5 if "ivf" in kind else None)
    index.save(tmp_path / "db.index")
    got = load_index(tmp_path / "db.index", mmap=mmap)
    assert got.kind == kind and got.ids == ids and got.labels == labels and got.model == MODEL
    assert got.params == index.params and got.ntotal == n and got.dim == 16
    a, b = index.search(x[:30], 5), got.search(x[:30], 5)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_allclose(a[0], b[0], atol=1e-6)
    meta = json.loads((tmp_path / "db.index" / "meta.json").read_text())
    assert meta["format"] == "phylocl-index/1" and meta["ntotal"] == n


def test_saving_replaces_whole_bundle_or_nothing(tmp_path, monkeypatch):
    x = _data(200)
    path = tmp_path / "db.index"
    save_index(build_index(x, model=MODEL), path)
    save_index(build_index(x[:50], labels=["a"] * 50), path)
    assert load_index(path).ntotal == 50 and load_index(path).labels == ["a"] * 50

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(faiss, "write_index", crash)  # bundle.py imports faiss when it saves
    with pytest.raises(InputError, match="db.index: cannot write: disk full"):  # names the bundle (issue 25)
        save_index(build_index(x), path)
    assert load_index(path).ntotal == 50  # the old bundle is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db.index"]  # no temporaries left


def test_load_errors(tmp_path):
    with pytest.raises(InputError, match="no such index"):
        load_index(tmp_path / "missing")
    (tmp_path / "file.index").write_text("x")
    with pytest.raises(InputError, match="directory is expected"):
        load_index(tmp_path / "file.index")
    path = tmp_path / "db.index"
    save_index(build_index(_data(100), model=MODEL), path)
    (path / "index.faiss").write_bytes(b"not a faiss index")
    with pytest.raises(InputError, match="index.faiss holds 17 bytes"):  # the checksums see it first (issue 25)
        load_index(path)
    (path / "checksums.json").unlink()  # as an earlier phylocl wrote bundles: the structure checks see it
    with pytest.raises(InputError, match="cannot read FAISS index") as err:
        load_index(path)
    assert err.value.path.endswith("index.faiss")
    save_index(build_index(_data(100), model=MODEL), path)
    meta = json.loads((path / "meta.json").read_text())
    (path / "meta.json").write_text(json.dumps({**meta, "ntotal": 99}))
    (path / "checksums.json").unlink()
    with pytest.raises(InputError, match="inconsistent"):
        load_index(path)
    (path / "meta.json").write_text("{broken")
    with pytest.raises(InputError, match="meta.json: the index.s metadata is not valid JSON") as err:
        load_index(path)
    assert str(err.value).count("meta.json") == 1  # named once, by its path
    (path / "rows.npz").unlink()
    with pytest.raises(InputError, match="rows.npz is missing"):
        load_index(path)


def test_check_compatible_messages():
    index = build_index(_data(100), model=MODEL)
    check_compatible(index, dict(MODEL))  # same model: fine
    check_compatible(build_index(_data(100)), {"name": "x", "dim": 16})  # no fingerprints: dimension only
    other = {"fingerprint": "beef", "name": "transformer-base", "dim": 16, "alphabet": "protein"}
    with pytest.raises(InputError) as err:
        check_compatible(index, other)
    msg = str(err.value)
    assert "index was built with model gmlp-small (fingerprint f00d, dim 16, protein)" in msg
    assert "you are searching with model transformer-base (fingerprint beef, dim 16, protein)" in msg
    with pytest.raises(InputError, match="dim 32"):
        check_compatible(index, {**MODEL, "dim": 32})


@pytest.mark.parametrize("case, message", [
    ("truncated", "cannot read row ids (truncated or damaged?)"),
    ("duplicate", "duplicate row id 's0'"),
    ("labels", "3 labels for 100 ids"),
    ("text", "cannot read row ids"),
])
def test_damaged_rows_npz_is_one_located_line(tmp_path, case, message):
    path = tmp_path / "db.index"
    save_index(build_index(_data(100), ids=[f"s{i}" for i in range(100)], model=MODEL), path)
    (path / "checksums.json").unlink()  # the row checks themselves (with checksums, those would see it first)
    rows = path / "rows.npz"
    if case == "truncated":
        rows.write_bytes(rows.read_bytes()[:150])
    elif case == "duplicate":
        np.savez(rows, ids=np.array(["s0"] * 100))
    elif case == "labels":
        np.savez(rows, ids=np.array([f"s{i}" for i in range(100)]), labels=np.array(["a", "b", "c"]))
    else:
        rows.write_text("s0\ns1\n")
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")) as err:
        load_index(path)
    assert err.value.path == str(rows) and "\n" not in str(err.value)


@pytest.mark.parametrize("kind, edit, message", [
    ("ivf", {"params": {"nprobe": 0}}, "nprobe=0 does not fit this ivf index"),
    ("ivf", {"params": {"nprobe": -3}}, "nprobe=-3 does not fit"),
    ("ivf", {"params": {"nprobe": "x"}}, "nprobe='x' does not fit"),
    ("ivf", {"params": {"ef_search": 5}}, "ef_search=5 does not fit this ivf index .*takes none"),
    ("hnsw", {"params": {"ef_search": 0}}, "ef_search=0 does not fit"),
    ("ivf", {"kind": "hnsw"}, "says kind 'hnsw', but index.faiss holds an index of type IndexIVFFlat"),
    ("flat", {"kind": "ivf"}, "says kind 'ivf'"),
    ("flat", {"model": {**MODEL, "dim": 12}}, "model record says dim 12"),
])
def test_meta_json_that_does_not_fit_its_faiss_index_is_one_line(tmp_path, kind, edit, message):
    """A hand-edited or damaged meta.json of a bundle without checksums (an earlier phylocl's) was a FAISS
    assertion, OverflowError or AttributeError at the first search, and passed --verify."""
    path = tmp_path / "db.index"
    save_index(build_index(_data(2_000), model=MODEL, kind=kind), path)
    meta = json.loads((path / "meta.json").read_text())
    params = {**meta["params"], **edit.get("params", {})}
    (path / "meta.json").write_text(json.dumps({**meta, **edit, "params": params}))
    (path / "checksums.json").unlink()
    with pytest.raises(InputError, match=message) as err:
        load_index(path)
    assert err.value.path.endswith("meta.json")


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_verify_finds_a_vector_that_is_not_finite(tmp_path, kind):
    """A NaN row is never returned by a FAISS search, so it silently dropped out of every result, and a bundle
    without checksums passed --verify; the vectors are now scanned (decoded by row)."""
    from phylocl.retrieval.index_io import verify_bundle

    built = build_index(_data(2_000), model=MODEL, kind=kind)
    nan = np.full(16, np.nan, dtype=np.float32)
    if kind == "flat":
        codes = faiss.vector_to_array(built.index.codes).view(np.float32).reshape(-1, 16)
        codes[5] = nan
        faiss.copy_array_to_vector(codes.view(np.uint8).ravel(), built.index.codes)
    else:
        ivf = faiss.extract_index_ivf(built.index)
        lst = next(i for i in range(ivf.nlist) if ivf.invlists.list_size(i))
        row = int(faiss.rev_swig_ptr(ivf.invlists.get_ids(lst), 1)[0])
        ivf.invlists.update_entry(lst, 0, row, faiss.swig_ptr(nan.view(np.uint8)))
    path = tmp_path / "db.index"
    save_index(built, path)
    (path / "checksums.json").unlink()
    with pytest.raises(InputError, match="holds a vector that is not finite"):
        verify_bundle(path)
