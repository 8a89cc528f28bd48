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


@pytest.mark.parametrize("seed", range(40))
def test_records_equal_biopythons_simple_parser(tmp_path, seed):
    """The parser is phylocl's own (Bio.SeqIO's import costs a one-query search ~80 ms); on fuzzed files (wrapped and
    blank lines, CRLF, lone CR, spaces, tabs, trailing whitespace, descriptions) it yields Biopython's records and
    the header lines' numbers."""
    import random

    from Bio.SeqIO.FastaIO import SimpleFastaParser

    rng = random.Random(seed)
    eol = rng.choice(["\n", "\r\n"])
    text = []
    for _ in range(rng.randint(0, 3)):
        text.append(rng.choice(["", " ", "\t"]) + eol)
    for r in range(rng.randint(1, 6)):
        desc = rng.choice(["", " some description", "\tdesc  with  spaces ", "  "])
        text.append(f">seq{r}{desc}" + rng.choice(["", " ", "\t"]) + eol)
        for _ in range(rng.randint(1, 4)):
            chunk = "".join(rng.choice("ACDEFGHIKLMNPQRSTVWY -.") for _ in range(rng.randint(1, 30)))
            text.append(chunk + rng.choice(["", " ", "\t", "\r"]) + eol)
            if rng.random() < 0.2:
                text.append(rng.choice(["", "  "]) + eol)
    if rng.random() < 0.5:  # no newline at the end of the file
        text[-1] = text[-1].rstrip("\r\n")
    path = tmp_path / "x.fasta"
    path.write_bytes("".join(text).encode())
    with open(path) as handle:  # universal newlines, as our reader opens files (a lone CR ends a line)
        expected = [(t.split(None, 1), s.replace("-", "").replace(".", "").rstrip("*"))
                    for t, s in SimpleFastaParser(handle)]
    with open(path) as handle:
        headers = [n for n, line in enumerate(handle, 1) if line.startswith(">")]
    got = list(parse_fasta(path))
    expected = [e for e in expected if e[1]]  # an empty sequence is refused below, not yielded
    if len(expected) < len(headers):
        with pytest.raises(InputError, match="empty sequence"):
            list(parse_fasta(path))
        return
    assert [(r.id, r.description, r.sequence) for r in got] == [
        (p[0], p[1] if len(p) > 1 else "", s) for p, s in expected]
    assert [r.line for r in got] == headers


@pytest.mark.parametrize("seed", range(30))
def test_every_letter_is_placed_on_its_own_line(tmp_path, seed):
    """``letter_place`` (the line, and where nothing was removed the column, of a letter of a cleaned sequence)
    finds each letter where it is in the file: wrapped at a fixed width or not, gaps, spaces, blank lines."""
    import random

    from phylocl.data.letters import letter_place

    rng = random.Random(seed)
    raw_lines, expected = [], []
    for r in range(rng.randint(1, 5)):
        raw_lines.append(f">r{r} desc")
        letters = []
        gapped = rng.random() < 0.4
        width = rng.randint(1, 12)
        for _ in range(rng.randint(1, 5)):
            chunk = "".join(rng.choice("ACDEFGHIKLMNPQRSTVWY-. " if gapped else "ACDEFGHIKLMNPQRSTVWY")
                            for _ in range(width if rng.random() < 0.8 else rng.randint(0, 14)))
            raw_lines.append(chunk)
            letters += [(len(raw_lines), col, c) for col, c in enumerate(chunk, 1) if c not in "-. "]
        if rng.random() < 0.3:
            raw_lines.append("")
        if letters:
            expected.append(letters)
        else:
            raw_lines.append("M")
            expected.append([(len(raw_lines), 1, "M")])
    path = tmp_path / "x.fa"
    path.write_text("\n".join(raw_lines) + "\n")
    records = list(parse_fasta(path))
    assert len(records) == len(expected)
    for rec, letters in zip(records, expected):
        assert rec.sequence == "".join(c for _, _, c in letters)
        for pos, (line, col, _) in enumerate(letters):
            got_line, got_col = letter_place(rec.line, rec.layout, pos)
            assert got_line == line and got_col in (col, None), (rec.id, pos)
        if rec.layout is not None and not hasattr(rec.layout, "tobytes"):
            assert all(letter_place(rec.line, rec.layout, pos)[1] == col for pos, (_, col, _) in enumerate(letters))


def test_layout_kinds(tmp_path):
    f = tmp_path / "x.fa"
    f.write_text(">one\nMKTAYIAKQR\n\n>wrapped\nMKTA\nYIAK\nQR\n\n>ragged\nMK\nTAYI\n>gapped\nMK-TA\nYI\n")
    layouts = {r.id: r.layout for r in parse_fasta(f)}
    assert layouts["one"] == 0 and layouts["wrapped"] == 4
    assert list(layouts["ragged"]) == [2, 6] and list(layouts["gapped"]) == [4, 6]


def test_undecodable_bytes_and_control_characters_are_placed(tmp_path):
    f = tmp_path / "x.fa"
    f.write_bytes(b">a\nMKTA\n" * 2000 + b">caf\xe9 b\nMK\n")  # past the decoder's first 8 KB; in the id
    with pytest.raises(InputError, match="undecodable byte 0xe9") as err:
        list(parse_fasta(f))
    assert (err.value.line, err.value.column) == (4001, 5)
    f.write_bytes(b">a\nMKTA\n" * 2000 + b">b Escherichia coli M\xfcller caf\xc3\xa9\nMK\n")  # a Latin-1 description
    assert list(parse_fasta(f))[-1].description == "Escherichia coli M\u00fcller caf\u00e9"  # as BLAST reads it
    f.write_bytes(b">a\nMKTA\n" * 2000 + b">b\nMK\xff\n")
    with pytest.raises(InputError, match="undecodable byte 0xff") as err:
        list(parse_fasta(f))
    assert (err.value.line, err.value.column) == (4002, 3)
    f.write_bytes(b">a\nMKTA\n" * 2000 + b">b\tdesc\x01\nMK\n")  # a tab is fine, \x01 is not
    with pytest.raises(InputError, match="control character") as err:
        list(parse_fasta(f))
    assert (err.value.line, err.value.column) == (4001, 8)
