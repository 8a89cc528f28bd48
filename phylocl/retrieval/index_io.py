"""Index bundles on disk and the model-compatibility check.

A bundle is a directory, written atomically as a whole (:func:`phylocl.atomic.atomic_dir`)::

    <path>/index.faiss   the FAISS index (faiss.write_index)
    <path>/rows.npz      ids (N,) str and, when known, labels (N,) str
    <path>/meta.json     {"format": "phylocl-index/1", "kind", "dim", "ntotal", "params", "model"}

A ``sparse`` bundle (posting lists of k-mer profile rows) holds ``.npy`` arrays instead of ``index.faiss`` and is of
format ``phylocl-index/2`` (``/1``: before its ``meta.json`` named the low-rank columns ``dense.npy`` keeps; both
read); see :mod:`phylocl.retrieval.sparse_index`. Both load with :func:`load_index`. Both carry ``checksums.json`` (the SHA-256 of
every file), checked at load for files up to 16 MB and by ``phylocl index --verify`` for all
(:mod:`phylocl.retrieval.index_checks`). A sparse bundle built from a FASTA file also holds the database sequences
(``sequences.bin``, ``sequence_offsets.npy``) for the alignment stage of search: :mod:`phylocl.retrieval.sequence_store`.
A ``sparse-windows`` bundle (``phylocl index --fasta --windows W``) is a sparse bundle over window rows plus
``owners.npy``, loaded as a :class:`~phylocl.retrieval.windowed.WindowedIndex` (hits are sequences).

A bundle that ``phylocl index`` rebuilds in place while it is read is read whole from one version, the old or the
new (:func:`load_index_with`, :func:`verify_bundle`: :func:`phylocl.atomic.read_dir`).
"""

from __future__ import annotations

import math
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from phylocl.atomic import await_replace, read_dir
from phylocl.errors import InputError
from phylocl.retrieval.bundle import FORMAT, FORMATS, SPARSE_FORMAT, save_index
from phylocl.retrieval.npz_mmap import check_member_crc, check_npy_sizes, memmap_member
from phylocl.retrieval.embedding_files import check_model_record
from phylocl.retrieval.index_params import INDEX_KINDS
from phylocl.retrieval.index_checks import (CHECKSUMS_FILE, VERIFY_AT_LOAD_BYTES, check_sparse_arrays, damaged,
                                            scan_postings, verify_at_load, verify_checksums)
from phylocl.retrieval.sparse_index import KIND as SPARSE
from phylocl.retrieval.row_ids import IdArray, RowNumbers, str_list
from phylocl.retrieval.sequence_store import OFFSETS_FILE, SEQUENCES_FILE, open_store
import phylocl.retrieval.sparse_index as sparse_index
from phylocl.retrieval.sparse_index import SparseIndex, check_dense_columns, list_bounds, row_block_edges
from phylocl.retrieval.windowed import KIND as WINDOWS
from phylocl.retrieval.windowed import WindowedIndex, check_owners
from phylocl.safejson import read_json_object

if TYPE_CHECKING:
    from phylocl.retrieval.index import RetrievalIndex

SPARSE_FILES = ("ptr.npy", "rows.npy", "values.npy", "dense.npy", "basis.npy")

__all__ = ["save_index", "load_index", "load_index_with", "verify_bundle", "check_compatible", "FORMAT"]

T = TypeVar("T")


def load_index(path: str | Path, *, mmap: bool | None = False) -> RetrievalIndex | SparseIndex | WindowedIndex:
    """Read a bundle written by :func:`save_index`.

    Args:
        mmap: memory-map the FAISS file instead of reading it (flat / IVF kinds; saves RAM for big indexes). A
            mapped flat index opens at once (docs/performance.md, "Figures behind the code") and is search-only.
            ``None``: where the bundle's kind can be mapped (flat, ivf, ivfpq without re-ranking), as a search does.

    A bundle that ``phylocl index`` replaces while it is read is read whole from the old version or the new one
    (:func:`load_index_with`). Raises :class:`~phylocl.errors.InputError` when the bundle is missing, incomplete or
    inconsistent.
    """
    return load_index_with(path, None, mmap=mmap)[0]


def load_index_with(path: str | Path, read: Callable[[Path, Any], T] | None, *, mmap: bool | None = False
                    ) -> tuple[RetrievalIndex | SparseIndex | WindowedIndex, T | None]:
    """:func:`load_index`, and ``read(root, index)`` of further members of the bundle (e.g. its stored sequences,
    :func:`~phylocl.retrieval.sequence_store.open_store`) from the same version of it: ``(index, what read
    returned)`` (``None`` without ``read``).

    A rebuild in place (``phylocl index ... -o`` over an existing bundle) swaps folders with two renames, then
    deletes the old one (:func:`~phylocl.atomic.atomic_dir`). The whole load runs under
    :func:`~phylocl.atomic.read_dir`: every member is opened through one open descriptor of the bundle's folder
    (``root``, a path under ``/proc/self/fd`` on Linux), so no member of one version is mixed with members of
    another; a load that raced the deletion of the version it opened (a member missing) or whose version was
    replaced before it ended is made again from the new one, a few times at most; a damaged bundle is reported at
    its first read, as before. ``read`` must open what it needs under ``root`` (mapped files stay readable), and
    name ``path`` in what it keeps (:attr:`SparseIndex.source` is set here).
    """
    path = Path(path)
    await_replace(path)  # a replace killed between its two renames: the old one comes back; a live one: its new one
    if not path.is_dir():
        what = "no such index" if not path.exists() else "not an index bundle (a directory is expected)"
        raise InputError(what, path=path)

    def snapshot(root: Path):
        index = _load_at(root, mmap)
        return index, (read(root, index) if read is not None else None)

    index, extra = read_dir(path, snapshot)
    for part in (index, getattr(index, "index", None)):  # a windowed index and the sparse index of its windows
        if isinstance(part, (SparseIndex, WindowedIndex)):
            part.source = str(path)
    return index, extra


def _load_at(path: Path, mmap: bool | None) -> RetrievalIndex | SparseIndex | WindowedIndex:
    """The load of the bundle at ``path`` (its folder as :func:`~phylocl.atomic.read_dir` opened it)."""
    for name in ("meta.json", "rows.npz"):
        if not (path / name).is_file():
            raise InputError(f"incomplete index bundle: {name} is missing", path=path)
    # flipped bytes in small files (all of them: --verify) and the CRC-32 of mapped ids, checked in threads while
    # the bundle is read (hashlib and zlib release the GIL; 10^6 windowed proteins: 0.03 s of hashing and 0.02 s of
    # CRC beside 0.04 s of reading); a bundle is returned only once they pass, and where reading fails, their
    # failure is the error raised
    with ThreadPoolExecutor(2) as pool:
        checks = [pool.submit(verify_at_load, path)]
        try:
            index = _load_bundle(path, mmap, checksums=(path / CHECKSUMS_FILE).is_file(),
                                 later=lambda check: checks.append(pool.submit(check)))
        except BaseException:
            for check in checks:
                check.result()
            raise
        for check in checks:
            check.result()
    return index


def _load_bundle(path: Path, mmap: bool | None, *, checksums: bool,
                 later: Callable[[Callable[[], None]], None] | None = None) -> RetrievalIndex | SparseIndex | WindowedIndex:
    """:func:`load_index` past its checksums (``checksums``: the bundle has them); ``later``: runs a check of data
    already read (raising :class:`InputError`) beside the reading (:func:`_mapped_ids`); ``mmap``: as
    :func:`load_index` (``None``: where the kind can be mapped)."""
    meta = read_json_object(path / "meta.json", what="the index's metadata")
    try:
        kind, dim, ntotal = meta["kind"], int(meta["dim"]), int(meta["ntotal"])
        params, model = dict(meta["params"]), dict(meta.get("model") or {})
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(f"bad meta.json: {' '.join(str(err).split())}", path=path / "meta.json") from None
    try:
        check_model_record(model)
    except ValueError as err:
        raise InputError(f"bad meta.json: model: {err}", path=path / "meta.json") from None
    if meta.get("format") not in FORMATS or kind not in (*INDEX_KINDS, SPARSE, WINDOWS):
        raise InputError(f"unsupported index format {meta.get('format')!r} / kind {kind!r}", path=path)
    needed = {SPARSE: SPARSE_FILES, WINDOWS: (*SPARSE_FILES, "owners.npy")}.get(kind, ("index.faiss",))
    for name in needed:
        if not (path / name).is_file():
            raise InputError(f"incomplete index bundle: {name} is missing", path=path)
    # the ids a build wrote are unique; flipped bytes in rows.npz fail its zip CRC, so a sparse bundle with checksums
    # is checked for repeated ids by --verify only (a set of 10^6 ids cost ~0.13 s of every search's start)
    verified = checksums and (path / "rows.npz").stat().st_size <= VERIFY_AT_LOAD_BYTES
    ids, labels = _read_rows(path / "rows.npz", unique=not checksums or kind not in (SPARSE, WINDOWS),
                             verified=verified, later=later)
    if kind == SPARSE:
        return _load_sparse(path, dim, ntotal, ids, labels, model, meta)
    if kind == WINDOWS:
        return _load_windowed(path, dim, ntotal, ids, labels, model, meta)
    import faiss  # only FAISS bundles need it (a sparse search starts without it)

    from phylocl.retrieval.index import RetrievalIndex

    if mmap is None:  # decided from this version's meta.json (a search: IVF lists are paged in as probed)
        mmap = kind in ("flat", "ivf") or (kind == "ivfpq" and not params.get("k_factor"))
    flags = 0
    if mmap:  # a flat index maps its vectors in place (MMAP_IFC); plain MMAP would still copy them into RAM
        flags = faiss.IO_FLAG_MMAP_IFC if kind == "flat" else faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY
    try:
        index = faiss.read_index(str(path / "index.faiss"), flags)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else "unreadable"
        raise InputError(f"cannot read FAISS index: {first}", path=path / "index.faiss") from None
    if index is None:  # a few bytes that FAISS reads as "no index"
        raise InputError("cannot read FAISS index: the file holds no index (damaged?)", path=path / "index.faiss")
    if index.d != dim or index.ntotal != ntotal or len(ids) != ntotal:
        raise InputError(f"bundle is inconsistent: meta says {ntotal} x {dim}, index holds {index.ntotal} x "
                         f"{index.d}, rows.npz has {len(ids)} ids", path=path)
    _check_faiss_meta(index, kind, params, model, dim, path / "meta.json")
    return RetrievalIndex(index=index, kind=kind, params=params, ids=ids, labels=labels, model=model,
                          unique_ids=True)  # _read_rows checked them


def _check_faiss_meta(index, kind: str, params: dict, model: dict, dim: int, meta: Path) -> None:
    """``meta.json`` against the FAISS index it describes: its ``kind`` is the index's structure, its search
    parameters are ones that index takes (``nprobe`` for IVF, ``ef_search`` for HNSW: integers >= 1; ``k_factor``
    >= 1 for a re-ranked IVF-PQ) and its model's ``dim`` is the index's. A hand-edited or damaged value was a FAISS
    assertion, an OverflowError or an AttributeError at the first search."""
    import faiss

    from phylocl.retrieval.index import base_index

    base = base_index(index)
    ivf, hnsw = faiss.try_extract_index_ivf(base) is not None, hasattr(base, "hnsw")
    structure = {"flat": not ivf and not hnsw, "ivf": ivf, "ivfpq": ivf, "hnsw": hnsw}.get(kind, False)
    if not structure:
        raise InputError(f"says kind {kind!r}, but index.faiss holds an index of type {type(base).__name__}: the "
                         "bundle is damaged", path=meta)
    for key, takes in (("nprobe", ivf), ("ef_search", hnsw), ("k_factor", isinstance(index, faiss.IndexRefine))):
        if key not in params:
            continue
        value = params[key]
        number = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
        whole = number and (key == "k_factor" or float(value).is_integer())
        if not takes or not whole or value < 1 or value > 2**31 - 1:
            raise InputError(f"search parameter {key}={value!r} does not fit this {kind} index (an integer >= 1"
                             f"{'' if takes else '; this kind takes none'}): the bundle is damaged", path=meta)
    if model.get("dim") is not None and model.get("dim") != dim:
        raise InputError(f"its model record says dim {model.get('dim')}, the index holds {dim}: the bundle is "
                         "damaged", path=meta)


def _load_sparse(path: Path, dim: int, ntotal: int, ids: list[str], labels, model: dict,
                 meta: dict) -> SparseIndex:
    """The posting lists of a sparse bundle, memory-mapped (only the lists a query needs are read), after the
    structure checks of :func:`~phylocl.retrieval.index_checks.check_sparse_arrays`."""
    if len(ids) != ntotal:
        raise InputError(f"bundle is inconsistent: meta says {ntotal} rows, rows.npz has {len(ids)} ids", path=path)
    try:
        for name in SPARSE_FILES:
            check_npy_sizes(path / name)
        arrays = {name: np.load(path / f"{name}.npy", mmap_mode="r", allow_pickle=False)
                  for name in ("ptr", "rows", "values", "dense")}
        arrays["basis"] = np.load(path / "basis.npy", allow_pickle=False)
        nnz = int(meta["nnz"]) if "nnz" in meta else None
        rank = int(meta["rank"]) if "rank" in meta else None
    except (OSError, ValueError, TypeError, EOFError) as err:
        raise InputError(f"damaged sparse index: {' '.join(str(err).split())[:200]}", path=path) from None
    columns = _dense_columns(path, meta, arrays["basis"])
    check_sparse_arrays(path, **arrays, ntotal=ntotal, dim=dim, nnz=nnz, rank=rank, columns=len(columns))
    bounds = _block_bounds(path, meta, arrays["ptr"], ntotal)
    try:
        index = SparseIndex(**arrays, ids=ids, labels=labels, model=model, dense_columns=columns, bounds=bounds)
    except (OSError, ValueError, EOFError) as err:
        raise InputError(f"damaged sparse index: {' '.join(str(err).split())[:200]}", path=path) from None
    index.source = str(path)  # named by the checks of the posting lists a query reads
    return index


def _block_bounds(path: Path, meta: dict, ptr: np.ndarray, n: int) -> np.ndarray | None:
    """``blocks.npy`` (every posting list's bounds in the row blocks of a search,
    :func:`~phylocl.retrieval.sparse_index.list_bounds`) when the bundle has one for this version's block size
    (``meta["row_block"]``), after checking that it fits the lists: one row per list, from its start to its end,
    non-decreasing. ``None`` otherwise: the bounds are then found as the lists are read. Wrong interior bounds that
    pass these checks cannot misplace a value (each entry still lies in exactly one block) and are caught by the
    bundle's checksums (the file is hashed at load) or ``--verify``."""
    if "row_block" not in meta:
        return None
    try:
        if int(meta["row_block"]) != sparse_index.ROW_BLOCK or not (path / "blocks.npy").is_file():
            return None  # another block size (or an older phylocl's bundle): found as read
        check_npy_sizes(path / "blocks.npy")
        bounds = np.load(path / "blocks.npy", allow_pickle=False)
    except (OSError, ValueError, TypeError, EOFError) as err:
        raise InputError(f"damaged sparse index: blocks.npy: {' '.join(str(err).split())[:200]}", path=path) from None
    edges = row_block_edges(n)
    p = np.asarray(ptr, dtype=np.int64)
    if (bounds.dtype != np.int64 or bounds.shape != (len(p) - 1, len(edges)) or (bounds[:, 0] != p[:-1]).any()
            or (bounds[:, -1] != p[1:]).any() or (np.diff(bounds, axis=1) < 0).any()):
        raise damaged(f"blocks.npy {bounds.shape} {bounds.dtype} does not bound the {len(p) - 1} posting lists in "
                      f"{len(edges) - 1} blocks of rows", path)
    return bounds


def _check_stored_bounds(index: SparseIndex, path: Path) -> None:
    """``--verify``: the bounds a bundle's ``blocks.npy`` gave ``index`` are those of its posting lists."""
    if len(index._edges) <= 2 or (index._bounds[:, 0] < 0).any():  # one block, or no blocks.npy: found as read
        return
    found = list_bounds(index.postings.indptr, np.asarray(index.postings.indices), np.arange(index.dim), index._edges)
    if not np.array_equal(found, index._bounds):
        raise damaged("blocks.npy does not match the posting lists", path)


def _dense_columns(path: Path, meta: dict, basis: np.ndarray) -> np.ndarray:
    """The low-rank columns ``dense.npy`` holds: ``meta["dense_columns"]`` (format ``phylocl-index/2``), all ``2r``
    for the format before it."""
    width = 2 * basis.shape[0] if basis.ndim == 2 else 0
    if meta.get("format") == FORMAT:
        return check_dense_columns(None, width)
    try:
        columns = meta["dense_columns"]
        if not isinstance(columns, list) or not all(type(c) is int for c in columns):
            raise ValueError("not a list of integers")
        return check_dense_columns(np.array(columns, dtype=np.int64), width)
    except (KeyError, ValueError) as err:
        raise InputError(f"bad meta.json: dense_columns: {' '.join(str(err).split())[:120]}",
                         path=path / "meta.json") from None


def _load_windowed(path: Path, dim: int, ntotal: int, ids: list[str], labels, model: dict,
                   meta: dict) -> WindowedIndex:
    """A ``sparse-windows`` bundle: the sparse index of its ``meta["rows"]`` window rows (:func:`_load_sparse`),
    ``owners.npy`` mapping them to the ``ntotal`` sequences of ``rows.npz``, and ``params`` ``{"window", "stride"}``."""
    if len(ids) != ntotal:
        raise InputError(f"bundle is inconsistent: meta says {ntotal} sequences, rows.npz has {len(ids)} ids",
                         path=path)
    try:
        n_rows, params = int(meta["rows"]), dict(meta["params"])
        width, stride = int(params["window"]), int(params["stride"])
        if width < 2 or not 1 <= stride <= width:
            raise ValueError(f"window {width} / stride {stride}")
    except (ValueError, KeyError, TypeError) as err:
        raise InputError(f"bad meta.json: a windowed index needs rows and params window/stride ({err})",
                         path=path / "meta.json") from None
    rows = _load_sparse(path, dim, n_rows, RowNumbers(n_rows), None, model, meta)
    try:
        check_npy_sizes(path / "owners.npy")
        owners = check_owners(np.load(path / "owners.npy", allow_pickle=False), ntotal)
        if len(owners) != n_rows:
            raise ValueError(f"{len(owners)} owners for {n_rows} window rows")
    except (OSError, ValueError, TypeError, EOFError) as err:
        raise InputError(f"damaged windowed index: owners.npy: {' '.join(str(err).split())[:200]}",
                         path=path) from None
    index = WindowedIndex(owners=owners, index=rows, ids=ids, labels=labels, model=model,
                          window={"window": width, "stride": stride})
    index.source = str(path)
    return index


def _read_rows(path: Path, *, unique: bool = True, verified: bool = False,
               later: Callable[[Callable[[], None]], None] | None = None) -> tuple[Sequence[str], list[str] | None]:
    """Row ids and labels (one per id, or ``None``) of a bundle's ``rows.npz``; ``unique``: check that no id repeats
    (:func:`_check_unique`); ``verified``, ``later``: as :func:`_mapped_ids`."""
    try:
        check_npy_sizes(path)
        ids = _mapped_ids(path, verified, later)
        with np.load(path, allow_pickle=False) as rows:
            if ids is None:
                raw = np.asarray(rows["ids"]).reshape(-1)
                ids = raw.tolist() if raw.dtype.kind == "U" else [str(i) for i in raw.tolist()]  # "U": already str
            labels = rows["labels"].reshape(-1).tolist() if "labels" in rows.files else None
    except (OSError, ValueError, KeyError, AttributeError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise InputError(f"cannot read row ids (truncated or damaged?): {' '.join(str(err).split())}",
                         path=path) from None
    if unique:
        _check_unique(ids, path)
    if labels is not None and len(labels) != len(ids):
        raise InputError(f"{len(labels)} labels for {len(ids)} ids: the bundle is damaged", path=path)
    return ids, None if labels is None else str_list(labels)


def _mapped_ids(path: Path, verified: bool, later: Callable[[Callable[[], None]], None] | None = None
                ) -> IdArray | None:
    """The ids of ``rows.npz`` memory-mapped in place (:class:`~phylocl.retrieval.row_ids.IdArray`) when the
    archive stores them uncompressed as strings (what builds write), else ``None`` (read whole). Mapped, they skip
    the zip reader's CRC-32 check, so it is made here (~20 ms for 10^6 ids; handed to ``later`` when given, which
    must run it before the ids are used) unless the file's SHA-256 was compared at this load (``verified``)."""
    try:
        raw = memmap_member(path, "ids.npy")
    except (KeyError, ValueError):  # no such member, compressed, or not a plain array: the zip reader decides
        return None
    if raw.ndim != 1 or raw.dtype.kind != "U":
        return None
    if not verified:
        (later or (lambda check: check()))(lambda: _check_ids_crc(path))
    return IdArray(raw)


def _check_ids_crc(path: Path) -> None:
    try:
        check_member_crc(path, "ids.npy")
    except (OSError, KeyError, zipfile.BadZipFile) as err:
        raise InputError(f"cannot read row ids (truncated or damaged?): {' '.join(str(err).split())}",
                         path=path) from None


def _check_unique(ids: Sequence[str], path: Path) -> None:
    if len(set(ids)) != len(ids):
        dup = next(i for i, n in Counter(ids).items() if n > 1)
        raise InputError(f"duplicate row id {dup!r}: the bundle is damaged; rebuild it with phylocl index", path=path)


def _describe(model: dict, dim: int) -> str:
    name = model.get("name", "<unnamed>")
    alphabet = f", {model['alphabet']}" if model.get("alphabet") else ""
    return f"model {name} (fingerprint {model.get('fingerprint', 'unknown')}, dim {dim}{alphabet})"


def check_compatible(index: RetrievalIndex, model_info: dict, *, what: str = "searching with") -> None:
    """Raise :class:`~phylocl.errors.InputError` unless ``model_info`` matches the model the index was built with.

    The dimensions must agree; fingerprints must agree when both sides record one.
    ``model_info`` is an embedder description (``EmbeddingSet.model``, ``KmerEmbedder.model_info()``, ...).
    """
    dim = int(model_info.get("dim", -1))
    fp_index, fp_query = index.model.get("fingerprint"), model_info.get("fingerprint")
    if dim != index.dim or (fp_index is not None and fp_query is not None and fp_index != fp_query):
        raise InputError(
            f"index was built with {_describe(index.model, index.dim)}, you are {what} "
            f"{_describe(model_info, dim)}; embed the queries with the index's model or rebuild the index"
        )


def _scan_vectors(index, path: Path, block: int = 65_536) -> None:
    """Every vector a FAISS index holds (decoded, for IVF-PQ), finite (``--verify``): a NaN row is never returned
    by a search, so it would silently drop out of every result."""
    import faiss

    from phylocl.retrieval.index import base_index

    base = base_index(index)
    ivf = faiss.try_extract_index_ivf(base)
    if ivf is not None:
        ivf.make_direct_map()  # reconstruct by row (this in-memory copy only)
    for lo in range(0, base.ntotal, block):
        rows = base.reconstruct_n(lo, min(block, base.ntotal - lo))  # (b, d)
        if not np.isfinite(rows).all():
            at = lo + int(np.flatnonzero(~np.isfinite(rows).all(axis=1))[0])
            raise damaged(f"index.faiss holds a vector that is not finite (NaN or inf) in row {at}", path.parent)


def _format(path: Path) -> str | None:
    meta = read_json_object(path / "meta.json")  # load_index has read it already
    return meta.get("format")


def verify_bundle(path: str | Path) -> str:
    """Everything :func:`load_index` checks, plus the checksums of every file (required of a ``phylocl-index/2``
    bundle: every build of that format wrote them) and, for a sparse bundle, every posting list and every stored
    sequence's letters (``phylocl index --verify``); returns one line saying what was checked. Raises
    :class:`~phylocl.errors.InputError` naming what is damaged. A bundle replaced while it is checked is checked
    whole in one version (:func:`~phylocl.atomic.read_dir`)."""
    path = Path(path)
    await_replace(path)
    if not path.is_dir():
        load_index(path)  # raises: no such index, or not a directory
    return read_dir(path, lambda root: _verify_at(root, path))


def _verify_at(root: Path, path: Path) -> str:
    """:func:`verify_bundle` of the bundle at ``path``, its members opened under ``root``."""
    hashed = verify_checksums(root)
    index = _load_at(root, False)
    if hashed is not None and index.kind in (SPARSE, WINDOWS):  # the one case load_index leaves to --verify
        _check_unique(index.ids, root / "rows.npz")
    rows_index = index.index if index.kind == WINDOWS else index if index.kind == SPARSE else None
    if rows_index is not None:
        scan_postings(rows_index, path)
        _check_stored_bounds(rows_index, path)
    else:
        _scan_vectors(index.index, path / "index.faiss")
    stored = ""
    if (root / SEQUENCES_FILE).is_file() or (root / OFFSETS_FILE).is_file():  # the sequences of the alignment stage
        from phylocl.data.alphabet import get_alphabet
        from phylocl.data.letters import stored_letters

        alphabet = index.model.get("alphabet")
        letters = stored_letters(get_alphabet(alphabet)) if alphabet in ("protein", "dna") else None
        store = open_store(root, ntotal=index.ntotal, letters=letters, name=path)
        store.check_all()
        stored = f", {store.residues:,} stored residues" + (f" of {alphabet}" if letters else "")
    # every build of format /2 wrote checksums: checked last, so that a damaged file is named first
    if hashed is None and _format(root) == SPARSE_FORMAT:
        raise damaged(f"{CHECKSUMS_FILE} is missing (every {SPARSE_FORMAT} bundle has one)", path)
    sums = (f"{hashed} files match their checksums" if hashed is not None
            else "no checksums (built by an earlier phylocl): structure only")
    what = (f"{index.ntotal:,} sequences as {index.n_rows:,} windows of {index.params['window']} residues "
            f"(stride {index.params['stride']}), dim {index.dim}" if index.kind == WINDOWS
            else f"{index.ntotal:,} rows of dim {index.dim}")
    return f"{path}: ok ({index.kind}, {what}{stored}; {sums})"
