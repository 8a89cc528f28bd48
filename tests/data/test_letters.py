"""Letters read as aligners read them: internal stops, rare and ambiguous letters become the unknown token,
counted by kind with the first file:line; ``strict`` refuses them; other characters are always refused."""

from __future__ import annotations

import re

import pytest

from phylocl.data.alphabet import DNA, PROTEIN
from phylocl.data.fasta import detect_kind
from phylocl.data.layouts import iter_fasta, read_dataset
from phylocl.data.letters import LetterReport
from phylocl.errors import InputError

CASES = [  # alphabet, raw, cleaned, kinds seen
    (PROTEIN, "MK*LV", "MKXLV", {"internal_stop": 1}),
    (PROTEIN, "MKBZJ", "MKXXX", {"ambiguous": 3}),
    (PROTEIN, "mkuo", "MKXX", {"rare": 2}),
    (PROTEIN, "MKXx", "MKXX", {"unknown": 2}),
    (PROTEIN, "M*B*UX", "MXXXXX", {"internal_stop": 2, "ambiguous": 1, "rare": 1, "unknown": 1}),
    (PROTEIN, "ACDEFGHIKLMNPQRSTVWY", "ACDEFGHIKLMNPQRSTVWY", {}),
    (DNA, "ACGTRYSWKMBDHV", "ACGTNNNNNNNNNN", {"ambiguous": 10}),
    (DNA, "acgunx", "ACGTNN", {"unknown": 2}),  # RNA U is T, not counted
]


@pytest.mark.parametrize("alphabet, raw, cleaned, kinds", CASES)
def test_lenient_reads_unknown_and_counts_by_kind(alphabet, raw, cleaned, kinds):
    report = LetterReport()
    assert report.clean(raw, alphabet, path="f.fa", line=3, record_id="r") == cleaned
    assert {k: v["count"] for k, v in report.to_dict().items()} == kinds
    for entry in report.to_dict().values():
        assert entry["first"] == "f.fa:3" and entry["reads_as"] == alphabet.unknown and entry["records"] == 1


def test_keep_ambiguous_keeps_dna_codes_for_the_aligner():
    report = LetterReport(keep_ambiguous=True)
    assert report.clean("acgtryswkmbdhvnxu", DNA, path="f.fa", line=3, record_id="r") == "ACGTRYSWKMBDHVNNT"
    # protein: B Z J (and U O) kept too, * read as X (tests/data/test_kept_protein_letters.py)
    assert report.clean("MKBZJ*", PROTEIN, path="f.fa", line=5, record_id="p") == "MKBZJX"
    assert {k: v["count"] for k, v in report.to_dict().items()} == {"ambiguous": 13, "unknown": 2,
                                                                     "internal_stop": 1}
    assert DNA.encode("ACGTRYSWKMBDHVN").tolist() == DNA.encode("ACGTNNNNNNNNNNN").tolist()  # the embedders read N
    dna = LetterReport(keep_ambiguous=True)
    dna.clean("ACGR", DNA, path="f.fa", line=1, record_id="r")
    assert dna.lines() == ["1 ambiguity code (R) in 1 record read as N by the embedding, scored as blastn scores "
                           "them by the alignment; first at f.fa:1"]
    with pytest.raises(InputError, match=r"refused by strict=True .*without strict=True they read as N"):
        LetterReport(strict=True, keep_ambiguous=True).clean("ACGR", DNA, path="f.fa", line=1, record_id="r")


@pytest.mark.parametrize("alphabet, raw, cleaned, kinds", CASES)
def test_strict_refuses_all_but_the_unknown_letter(alphabet, raw, cleaned, kinds):
    report = LetterReport(strict=True)
    if set(kinds) - {"unknown"}:
        with pytest.raises(InputError, match=r"f.fa:3: record 'r': .*refused by strict=True"):
            report.clean(raw, alphabet, path="f.fa", line=3, record_id="r")
    else:
        assert report.clean(raw, alphabet, path="f.fa", line=3, record_id="r") == cleaned


@pytest.mark.parametrize("alphabet, raw, bad", [(PROTEIN, "MK1L", "1"), (PROTEIN, "MK?", "?"), (DNA, "ACGTE", "E"),
                                                (DNA, "AC*GT", "*"), (PROTEIN, "MKé", "é")])
@pytest.mark.parametrize("strict", [False, True])
def test_other_characters_always_refused_with_position(alphabet, raw, bad, strict):
    with pytest.raises(InputError, match=rf"x.fa:9: record 'r': letter\(s\) '{re.escape(bad)}' not in the .* position"):
        LetterReport(strict=strict).clean(raw, alphabet, path="x.fa", line=9, record_id="r")


def test_counts_accumulate_over_records_and_keep_the_first_place():
    report = LetterReport()
    report.clean("MK*L", PROTEIN, path="a.fa", line=5, record_id="r1")
    report.clean("M**L", PROTEIN, path="a.fa", line=9, record_id="r2")
    stop = report.to_dict()["internal_stop"]
    assert (stop["count"], stop["records"], stop["first"]) == (3, 2, "a.fa:5")
    assert report.lines() == ["3 internal stops (*) in 2 records read as X; first at a.fa:5"]


def _proteome(tmp_path):
    """An Ensembl-like proteome: read-through translations with internal stops, selenoproteins, trailing stops."""
    fa = tmp_path / "seqs.fa"
    fa.write_text(">p1\nMKTAYIAKQR*\n>p2\nMKTA*YIAKQR*\n>p3\nMKUAYIAKQR\n>p4\nMKTAYIAKQB\n")
    labels = tmp_path / "labels.tsv"
    labels.write_text("sequence_id\tfamily_id\np1\tF1\np2\tF1\np3\tF2\np4\tF2\n")
    return fa, labels


def test_dataset_summary_reports_unknown_letters_and_strict_refuses(tmp_path):
    fa, labels = _proteome(tmp_path)
    ds = read_dataset(fa, labels=labels)
    assert ds.sequences[:2] == ["MKTAYIAKQR", "MKTAXYIAKQR"]  # trailing * dropped, internal * read as X
    got = ds.summary()["unknown_letters"]
    # "first": the line that holds the first such letter (the header is one line above)
    assert got["internal_stop"] == {"count": 1, "records": 1, "letters": "*", "reads_as": "X", "first": f"{fa}:4"}
    assert got["rare"]["first"] == f"{fa}:6" and got["ambiguous"]["first"] == f"{fa}:8"
    with pytest.raises(InputError, match=rf"{fa}:4:5: record 'p2'.*'\*' refused by strict=True"):
        read_dataset(fa, labels=labels, strict=True)


def test_iter_fasta_strict_and_lenient(tmp_path):
    fa, _ = _proteome(tmp_path)
    assert [r.sequence for r in iter_fasta(fa)][1] == "MKTAXYIAKQR"
    with pytest.raises(InputError, match="refused by strict=True"):  # Python's words (--strict: the CLI's)
        list(iter_fasta(fa, strict=True))


def test_dna_with_a_fifth_ambiguity_codes_is_detected_as_dna():
    import random

    rng = random.Random(0)
    seqs = ["".join(rng.choice("ACGT") if rng.random() > 0.2 else rng.choice("RYSWKMBDHVN") for _ in range(300))
            for _ in range(20)]
    assert detect_kind(seqs) == "dna"
    proteins = ["".join(rng.choice("ACDEFGHIKLMNPQRSTVWY") for _ in range(300)) for _ in range(20)]
    assert detect_kind(proteins) == "protein"
    assert detect_kind(["GATTACA" * 3 + "RKSW"]) == "dna" and detect_kind(["MKRSWAGT"]) == "protein"
