"""FASTA parsing details: Biopython-compatible records, header line numbers, cleaning, located errors."""

from __future__ import annotations

import gzip

import pytest

from phylocl.data.alphabet import DNA, PROTEIN
from phylocl.data.fasta import MixCheck, clean_letters, detect_kind, parse_fasta
from phylocl.errors import InputError


def test_wrapped_lines_descriptions_gaps_stop_and_line_numbers(tmp_path):
    f = tmp_path / "x.fa"
    f.write_text("\n>a first protein\nMK-TA\nLV..S*\n>b\nmkta\n\n>c  desc with  spaces\nAC\nDE\nFG\n")
    recs = list(parse_fasta(f))
    assert [r.id for r in recs] == ["a", "b", "c"]
    assert [r.sequence for r in recs] == ["MKTALVS", "mkta", "ACDEFG"]
    assert [r.line for r in recs] == [2, 5, 8]
    assert recs[0].description == "first protein"


def test_crlf_and_gzip_by_magic_bytes(tmp_path):
    text = ">a\r\nACGT\r\nAC\r\n>b\r\nGG\r\n"
    plain = tmp_path / "p.fasta"
    plain.write_bytes(text.encode())
    zipped = tmp_path / "z.fa.gz"
    zipped.write_bytes(gzip.compress(text.encode()))
    misnamed = tmp_path / "gz_without_suffix.fa"
    misnamed.write_bytes(gzip.compress(text.encode()))
    for f in (plain, zipped, misnamed):
        recs = list(parse_fasta(f))
        assert [(r.id, r.sequence, r.line) for r in recs] == [("a", "ACGTAC", 1), ("b", "GG", 4)]


@pytest.mark.parametrize(
    "content, message, line",
    [
        ("", "empty file", None),
        ("   \n\n", "empty file", None),
        ("sequence_id\tfamily_id\nx\tF\n", "not a FASTA file", 1),
        ("\n\nhello\n>a\nAC\n", "not a FASTA file", 3),
        (">a\nAC\n>\nGG\n", "record without an id", 3),
        (">a\nAC\n>b\n--*\n>c\nA\n", "record 'b' has an empty sequence", 3),
    ],
)
def test_bad_files_name_file_and_line(tmp_path, content, message, line):
    f = tmp_path / "bad.fa"
    f.write_text(content)
    with pytest.raises(InputError) as err:
        list(parse_fasta(f))
    assert message in str(err.value)
    assert err.value.path == str(f)
    assert err.value.line == line


def test_binary_and_missing(tmp_path):
    f = tmp_path / "bin.fa"
    f.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    with pytest.raises(InputError, match="binary"):
        list(parse_fasta(f))
    with pytest.raises(InputError, match="no such file"):
        list(parse_fasta(tmp_path / "nope.fa"))
    latin = tmp_path / "latin.fa"
    latin.write_bytes(b">a\nAC\n>b\xe9\xff\nGG\n")
    with pytest.raises(InputError, match="not UTF-8"):
        list(parse_fasta(latin))


def test_clean_letters_canonical_and_located_errors():
    assert clean_letters("acgtuRyn", DNA, path="f", line=1, record_id="r") == "ACGTTNNN"
    assert clean_letters("ACxX", DNA, path="f", line=1, record_id="r") == "ACNN"  # X is an unknown base in DNA
    assert clean_letters("mkbzjuo", PROTEIN, path="f", line=1, record_id="r") == "MKXXXXX"  # U, O read as X
    for seq in ("mkbzjuo", "ACDEFGHIKLMNPQRSTVWY"):
        assert clean_letters(seq, PROTEIN, path="f", line=1, record_id="r") == PROTEIN.normalize(seq)
    with pytest.raises(InputError) as err:
        clean_letters("ACGTEF1", DNA, path="f.fa", line=7, record_id="r9")
    msg = str(err.value)
    assert msg.startswith("f.fa:7: ") and "'r9'" in msg and "'1EF'" in msg and "position 5" in msg


def test_detect_kind_and_mix_check():
    assert detect_kind(["ACGTACGTNN", "acgu"]) == "dna"
    assert detect_kind(["MKTAYIAKQR", "ACGT"]) == "protein"
    mix = MixCheck()
    from phylocl.data.fasta import FastaRecord

    mix.add(FastaRecord("short", "GATTACA", 2), "f.fa")  # too short to count as DNA
    mix.add(FastaRecord("p", "MKTAYIAKQRQISFVKSHFSRQ", 4), "f.fa")
    with pytest.raises(InputError) as err:
        mix.add(FastaRecord("d", "ACGTACGTACGTACGTACGTACGT", 9), "g.fa")
    msg = str(err.value)
    assert msg.startswith("g.fa:9: mix of DNA and protein") and "'d'" in msg and "'p' (f.fa:4)" in msg
