"""Ids of index rows made when read: numbered window rows, and ids kept in a NumPy string array."""

from __future__ import annotations

import numpy as np
import pytest

from phylocl.retrieval.row_ids import IdArray, RowNumbers, row_ids, str_list


def test_row_numbers_read_as_the_list_of_row_number_strings():
    names = RowNumbers(5)
    assert len(names) == 5 and list(names) == ["0", "1", "2", "3", "4"]
    assert names[-1] == "4" and names[1:4] == ["1", "2", "3"] and names[::2] == ["0", "2", "4"]
    with pytest.raises(IndexError):
        names[5]
    with pytest.raises(IndexError):
        names[-6]


def test_id_array_reads_as_the_list_of_its_strings():
    ids = [f"seq{i}" for i in range(300)]
    got = IdArray(np.array(ids))
    IdArray._CHUNK, chunk = 7, IdArray._CHUNK  # iteration in several steps
    try:
        assert list(got) == ids and got == ids and got == tuple(ids)
    finally:
        IdArray._CHUNK = chunk
    assert got != ids[::-1] and got != ids[:-1] and got != "seq0" and got != 3
    assert type(got[5]) is str and got[5] == "seq5" and got[-1] == "seq299" and got[2:5] == ids[2:5]
    assert len(got) == 300 and np.array_equal(np.asarray(got), np.array(ids))
    with pytest.raises(IndexError):
        got[300]
    with pytest.raises(ValueError, match="1-d string array"):
        IdArray(np.arange(3))


def test_row_ids_keeps_lazy_ids_and_copies_the_rest():
    lazy, numbered, plain = IdArray(np.array(["a", "b"])), RowNumbers(2), ["a", "b"]
    assert row_ids(lazy) is lazy and row_ids(numbered) is numbered
    copied = row_ids(plain)
    assert copied == plain and copied is not plain
    assert str_list(np.array([3, 4])) == ["3", "4"]
