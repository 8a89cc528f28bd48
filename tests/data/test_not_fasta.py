"""A file of another sequence format given where FASTA belongs is refused naming the format its first line shows."""

from __future__ import annotations

import gzip

import pytest

from phylocl.data.fasta import parse_fasta
from phylocl.data.layouts import read_dataset
from phylocl.errors import InputError

CASES = [
    ("@r1\nACGT\n+\nIIII\n", "FASTQ"),
    ("LOCUS       NC_000913  4641652 bp\nDEFINITION  E. coli\n", "GenBank"),
    ("ID   ABC_HUMAN   Reviewed;   100 AA.\n", "EMBL / UniProt flat-file"),
    ("# STOCKHOLM 1.0\na ACGT\n//\n", "Stockholm"),
    ("CLUSTAL W (1.83) multiple sequence alignment\n\na ACGT\n", "Clustal"),
    ("##gff-version 3\n", "GFF"),
    ("#NEXUS\nbegin data;\n", "NEXUS"),
    ("  5  100\na ACGT\n", "PHYLIP"),
    ("@HD\tVN:1.6\tSO:coordinate\n@SQ\tSN:chr1\tLN:100\n", "SAM"),  # was named FASTQ (its '@')
]


@pytest.mark.parametrize("text, name", CASES)
def test_the_reader_names_the_format(tmp_path, text, name):
    path = tmp_path / "x.txt"
    path.write_text(text)
    with pytest.raises(InputError, match=rf"x.txt:1: not a FASTA file.*; it looks like {name} format: convert"):
        list(parse_fasta(path))


@pytest.mark.parametrize("text, name", CASES[:3])
def test_a_single_file_dataset_says_not_fasta_before_asking_for_labels(tmp_path, text, name):
    path = tmp_path / "reads.fq.gz"
    path.write_bytes(gzip.compress(("\n" + text).encode()))  # compressed, a blank first line
    with pytest.raises(InputError, match=rf"reads.fq.gz:2: not a FASTA file.*{name}") as err:
        read_dataset(path)  # was "a single FASTA file needs a labels table"
    assert "labels" not in str(err.value)


def test_fasta_and_unknown_text_keep_their_messages(tmp_path):
    fasta = tmp_path / "ok.fa"
    fasta.write_text(">a\nMKV\n")
    with pytest.raises(InputError, match="needs a labels table"):
        read_dataset(fasta)
    other = tmp_path / "other.txt"
    other.write_text("hello\n")
    with pytest.raises(InputError, match=r"found 'hello'$"):  # no format guessed
        list(parse_fasta(other))
