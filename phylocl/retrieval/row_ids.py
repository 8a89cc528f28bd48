"""The ids of an index's rows, made when read: a windowed index's window rows are numbered, not named
(:class:`RowNumbers`), and a bundle's ids stay in its memory-mapped ``rows.npz`` (:class:`IdArray`); a search reads
the ids of its hits only."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["IdArray", "RowNumbers", "row_ids", "str_list"]


class RowNumbers(Sequence):
    """``"0", "1", .., str(n - 1)``: the ids of rows that have no names of their own (a windowed index's window
    rows), made when read instead of as ``n`` strings at load (199,000 window rows: ~50 ms of a search's start)."""

    def __init__(self, n: int) -> None:
        self._n = int(n)

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [str(j) for j in range(*i.indices(self._n))]
        j = int(i) + self._n if int(i) < 0 else int(i)
        if not 0 <= j < self._n:
            raise IndexError(f"row {i} outside 0..{self._n - 1}")
        return str(j)


class IdArray(Sequence):
    """Row ids kept as a NumPy string array (``rows.npz``'s ``ids`` memory-mapped by the bundle loader), each made a
    ``str`` when read: 10^6 ids read whole and copied into a list cost ~0.1 s of every search's start, and a search
    reads the ids of its hits only. Compares equal to any sequence of the same strings."""

    _CHUNK = 1 << 16  # ids converted per step when iterating

    def __init__(self, values: np.ndarray) -> None:
        if values.ndim != 1 or values.dtype.kind != "U":
            raise ValueError(f"ids must be a 1-d string array, got {values.dtype} {values.shape}")
        self._values = values

    def __len__(self) -> int:
        return len(self._values)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self._values[i].tolist()
        return str(self._values[i])

    def __iter__(self):
        for lo in range(0, len(self._values), self._CHUNK):
            yield from self._values[lo:lo + self._CHUNK].tolist()

    def __eq__(self, other) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str) or len(other) != len(self):
            return False
        return all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return np.array(self._values, dtype=dtype)


def row_ids(ids: Sequence) -> Sequence[str]:
    """An index's ``ids``: :class:`RowNumbers` and :class:`IdArray` as they are (made when read), anything else as
    a new list of ``str`` (:func:`str_list`)."""
    return ids if isinstance(ids, (RowNumbers, IdArray)) else str_list(ids)


def str_list(values: Sequence) -> list[str]:
    """``values`` as a new list of ``str``; a list of ``str`` already (a bundle's ids read by ``tolist()``) is copied
    as it is (``str()`` of each of 10^6 ids cost ~70 ms of a search's start)."""
    if isinstance(values, list) and set(map(type, values)) <= {str}:
        return list(values)
    return [str(v) for v in values]
