"""read_dataset / read_datasets called as a user of the Python API would: str or Path alike, ``~`` expanded, a
value of the wrong kind is a TypeError naming the argument, a missing label an InputError naming the record."""

from __future__ import annotations

from pathlib import Path

import pytest

import phylocl
from phylocl.data.layouts import read_datasets
from phylocl.errors import InputError


def _write(folder: Path, labelled: int = 4) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    seqs = {"a1": "MKVLAAGIW", "a2": "MKVLSAGIW", "b1": "MSTQPLEDA", "b2": "MSTQPLEEA"}
    fasta = folder / "seqs.fasta"
    fasta.write_text("".join(f">{k}\n{v}\n" for k, v in seqs.items()))
    labels = folder / "labels.tsv"
    labels.write_text("sequence_id\tfamily_id\n" + "".join(f"{k}\t{k[0]}\n" for k in list(seqs)[:labelled]))
    return fasta, labels


def test_str_and_path_read_the_same(tmp_path):
    fasta, labels = _write(tmp_path)
    a = phylocl.read_dataset(str(fasta), labels=str(labels))
    b = phylocl.read_dataset(fasta, labels=labels)
    assert a.ids == b.ids and a.families == b.families and a.summary()["families"] == 2


def test_home_is_expanded(tmp_path, monkeypatch):
    _write(tmp_path / "home" / "data")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    ds = phylocl.read_dataset("~/data/seqs.fasta", labels="~/data/labels.tsv")  # was "no such file or directory"
    assert len(ds.ids) == 4


@pytest.mark.parametrize("kwargs, message", [
    (dict(path=None), "path must be a str or a Path, got NoneType"),  # "expected str, bytes or os.PathLike ..."
    (dict(path=3), "path must be a str or a Path, got int"),
    (dict(path=["a.fasta", "b.fasta"]), "got list; several inputs are read by read_datasets"),
    (dict(path=b"seqs.fasta"), "path must be a str or a Path, got bytes"),
    (dict(labels=["a", "a", "b", "b"]), "labels must be a str or a Path, got list; labels is the path of a TSV"),
    (dict(labels={"a1": "a"}), "labels must be a str or a Path, got dict"),
])
def test_values_of_the_wrong_kind_are_type_errors_naming_the_argument(tmp_path, kwargs, message):
    fasta, labels = _write(tmp_path)
    with pytest.raises(TypeError, match=message):
        phylocl.read_dataset(**{"path": fasta, "labels": labels, **kwargs})


def test_missing_labels_and_a_lone_fasta_are_input_errors(tmp_path):
    fasta, labels = _write(tmp_path, labelled=3)
    with pytest.raises(InputError, match="1 FASTA id.*no label.*'b2'"):
        phylocl.read_dataset(fasta, labels=labels)
    with pytest.raises(InputError, match="needs a labels table"):
        phylocl.read_dataset(fasta)
    with pytest.raises(InputError, match=": labels needs a FASTA file, not a directory"):  # the keyword (--labels: CLI)
        phylocl.read_dataset(tmp_path, labels=labels)


def test_read_datasets_takes_one_path_as_one_input(tmp_path):
    folder = tmp_path / "ds"
    fasta, labels = _write(folder)
    fasta.rename(folder / "sequences.fasta")
    ds = read_datasets(str(folder))  # a str was read character by character: "d: no such file"
    assert len(ds.ids) == 4


@pytest.mark.parametrize("name, value", [("strict", "no"), ("strict", None), ("strict", 2), ("keep_ambiguous", "no")])
def test_a_flag_that_is_not_a_bool_is_a_type_error_naming_it(tmp_path, name, value):
    """``strict="no"`` was read as ``bool("no")``, True: a B in a record was then refused 'by strict=True'."""
    fasta, labels = _write(tmp_path)
    with pytest.raises(TypeError, match=f"^{name} must be True or False, got {value!r}$"):
        phylocl.read_dataset(fasta, labels=labels, **{name: value})
    assert len(phylocl.read_dataset(fasta, labels=labels, strict=0)) == 4  # 0 and 1 still read as False and True
