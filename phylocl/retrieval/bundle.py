"""Writing a dense index bundle (the on-disk layout is described in :mod:`phylocl.retrieval.index_io`, which
reads it back). Kept apart from the reader so that :class:`~phylocl.retrieval.index.RetrievalIndex` can save itself
without an import loop: this module imports no other retrieval module but the leaf
:mod:`phylocl.retrieval.index_checks` (checksums).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from phylocl.atomic import atomic_dir
from phylocl.retrieval.index_checks import write_checksums

if TYPE_CHECKING:
    from phylocl.retrieval.index import RetrievalIndex

__all__ = ["save_index", "FORMAT", "SPARSE_FORMAT", "FORMATS"]

FORMAT = "phylocl-index/1"  # FAISS bundles (this module) and sparse bundles written before 2026-12-07
SPARSE_FORMAT = "phylocl-index/2"  # sparse bundles whose meta.json names the low-rank columns dense.npy keeps
FORMATS = (FORMAT, SPARSE_FORMAT)  # what phylocl.retrieval.index_io reads


def save_index(index: "RetrievalIndex", path: str | Path) -> Path:
    """Write ``index`` as a bundle directory at ``path`` (replacing an existing one only once complete)."""
    import faiss  # here, not at the top: reading a sparse bundle never needs it

    path = Path(path)
    meta = {"format": FORMAT, "kind": index.kind, "dim": index.dim, "ntotal": index.ntotal,
            "params": index.params, "model": index.model}
    with atomic_dir(path) as tmp:
        faiss.write_index(index.index, str(tmp / "index.faiss"))
        rows = {"ids": np.array(index.ids, dtype=str)}
        if index.labels is not None:
            rows["labels"] = np.array(index.labels, dtype=str)
        with open(tmp / "rows.npz", "wb") as f:
            np.savez(f, **rows)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        write_checksums(tmp)  # last: the SHA-256 of every file (checked when loaded)
    return path
