"""Inputs a demanding user hands the readers: each is read sensibly or refused as one InputError naming the file
and line (the CLI's exit 2)."""

from __future__ import annotations

import pytest

from phylocl.data.labels import read_labels
from phylocl.errors import InputError


def test_labels_columns_without_a_name_are_dropped_when_empty(tmp_path):
    path = tmp_path / "labels.tsv"  # a trailing tab, as spreadsheets export; a row may end before it
    path.write_text("sequence_id\tfamily_id\t\t\na\tF1\t\t\nb\tF1\n")
    table = read_labels(path)
    assert table.family == {"a": "F1", "b": "F1"} and table.metadata == {}


def test_labels_value_under_a_column_without_a_name_is_refused_at_its_line(tmp_path):
    path = tmp_path / "labels.tsv"
    path.write_text("sequence_id\tfamily_id\t\na\tF1\t\nb\tF1\thuman\n")
    with pytest.raises(InputError, match="column 3 holds 'human' but has no name") as err:
        read_labels(path)
    assert (err.value.path, err.value.line) == (str(path), 3)


def test_labels_repeated_column_is_named(tmp_path):
    path = tmp_path / "labels.tsv"
    path.write_text("sequence_id\tfamily_id\tspecies\tspecies\na\tF1\tx\ty\n")
    with pytest.raises(InputError, match="repeated column name.s. species$") as err:
        read_labels(path)
    assert err.value.line == 1
