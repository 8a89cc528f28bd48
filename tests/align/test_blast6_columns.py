"""``--format "6 COLUMN ..."`` (phylocl.align.blast6.parse_format / blast6_fields): the columns BLAST names, written
as blastp and blastn write them (against the binaries where installed; skipped when absent), in the order asked,
read by Biopython with those fields; the default twelve unchanged; unknown columns refused in one line."""

from __future__ import annotations

import random
import shutil
import subprocess

import numpy as np
import pytest

from phylocl.align.blast6 import BLAST6_COLUMNS, FIELDS, blast6_fields, coverage, parse_format
from phylocl.align.strands import reverse_complement
from phylocl.cli import main

HAVE_BLAST = all(shutil.which(t) for t in ("blastp", "blastn", "makeblastdb"))
AA = "ACDEFGHIKLMNPQRSTVWY"
EXTRA = ("qseqid", "sseqid", "score", "nident", "gaps", "qlen", "slen", "qcovhsp", "sstrand", "qstart", "qend",
         "sstart", "send", "length", "mismatch")


def _fasta(path, records):
    path.write_text("".join(f">{i}\n{s}\n" for i, s in records))
    return path


def _blast(tool: str, qf, df, tmp_path, fmt: str, *extra) -> dict:
    """``tool``'s (blastp or blastn) best HSP of each query's best subject, ``fmt`` columns, keyed by (query,
    subject)."""
    kind = "prot" if tool == "blastp" else "nucl"
    subprocess.run(["makeblastdb", "-in", str(df), "-dbtype", kind, "-out", str(tmp_path / "db")],
                   capture_output=True, check=True)
    out = subprocess.run([tool, *extra, "-query", str(qf), "-db", str(tmp_path / "db"), "-max_hsps", "1",
                          "-max_target_seqs", "1", "-outfmt", fmt], capture_output=True, text=True, check=True).stdout
    return {tuple(f[:2]): f for f in (line.split("\t") for line in out.splitlines())}


def _search_lines(qf, df, tmp_path, model: str, fmt: str, evalue: str) -> list[list[str]]:
    """``phylocl search --db`` of the best hit of each query, in ``fmt``: its lines' fields."""
    hits = tmp_path / "h.m8"
    assert main(["search", "--model", model, "--query", str(qf), "--db", str(df), "-k", "1", "--format", fmt,
                 "--evalue", evalue, "-o", str(hits), "--quiet"]) == 0
    return [line.split("\t") for line in hits.read_text().splitlines()]


def test_parse_format():
    assert parse_format("tsv") == ("tsv", ())
    assert parse_format("blast6") == parse_format("6") == parse_format(" 6 ") == ("blast6", BLAST6_COLUMNS)
    assert parse_format("6 qseqid sseqid qlen") == ("blast6", ("qseqid", "sseqid", "qlen"))
    assert parse_format("blast6 slen,qseqid") == ("blast6", ("slen", "qseqid"))  # BLAST-like commas too; order kept
    assert parse_format("6 std qlen") == ("blast6", BLAST6_COLUMNS + ("qlen",))  # std: blastp's twelve
    assert parse_format("6 qseqid qseqid sseqid qseqid") == ("blast6", ("qseqid", "sseqid"))  # as blastp: once
    assert parse_format("6 qlen std") == ("blast6", ("qlen",) + BLAST6_COLUMNS)
    for bad, says in [("6 qseqid qcovs", "'qcovs'"), ("7", "tsv, blast6"), ("", "tsv, blast6"),
                      ("tsv qseqid", "tsv, blast6"), ("6 QSEQID", "'QSEQID'")]:
        with pytest.raises(ValueError, match=says):
            parse_format(bad)
    with pytest.raises(ValueError, match="string"):
        parse_format(6)


def test_coverage_rounds_half_up_like_blast():
    assert coverage(1, 230, 230) == 100
    assert coverage(11, 20, 40) == 25
    assert coverage(1, 1, 200) == 1  # 0.5 -> 1 (half up; Python's round() gives 0)
    assert coverage(1, 5, 200) == 3  # 2.5 -> 3
    assert coverage(20, 11, 40) == 25  # a minus-strand subject range (sstart > send)
    assert coverage(0, 0, 40) == 0


def test_fields_from_one_row():
    row = [57, 40, 30, 6, 2, 3, 40, 11, 48, ]  # score length nident mismatch gapopen qstart qend sstart send
    letters = ("QSEQ", "SSEQ", 33, "BTOP")  # (qseq, sseq, positive, btop): passed through
    got = blast6_fields(list(FIELDS), qseqid="q", sseqid="s", row=row, evalue=2.5e-7, bitscore=26.94, qlen=50,
                        slen=48, strand=None, letters=letters)
    want = {"qseqid": "q", "sseqid": "s", "pident": "75.000", "length": "40", "mismatch": "6", "gapopen": "2",
            "qstart": "3", "qend": "40", "sstart": "11", "send": "48", "evalue": "2.5e-07", "bitscore": "26.9",
            "score": "57", "nident": "30", "gaps": "4", "qlen": "50", "slen": "48", "qcovhsp": "76",
            "scovhsp": "79", "sstrand": "N/A", "positive": "33", "ppos": "82.50", "qseq": "QSEQ", "sseq": "SSEQ",
            "btop": "BTOP"}
    assert dict(zip(FIELDS, got)) == want
    row800 = [4558, 800, 797, 3, 0, 1, 800, 1, 800]  # blastp 2.12 writes ppos 99.62 for 797 / 800 (%.2f)
    assert blast6_fields(["ppos"], qseqid="q", sseqid="s", row=row800, evalue=0, bitscore=1, qlen=800, slen=800,
                         strand=None, letters=("", "", 797, "")) == ["99.62"]
    with pytest.raises(ValueError, match="ppos qseq need the aligned letters"):
        blast6_fields(["qseqid", "ppos", "qseq"], qseqid="q", sseqid="s", row=row, evalue=1, bitscore=1, qlen=50,
                      slen=48, strand=None)
    assert blast6_fields(["sstrand", "qseqid"], qseqid="q", sseqid="s", row=row, evalue=1, bitscore=1, qlen=50,
                         slen=48, strand="minus") == ["minus", "q"]


def _protein_set(rng):
    """Queries with a core shared by one database member each (a partial overlap: flanks of random length), plus
    unrelated sequences."""
    queries, db = [], []
    for i in range(6):
        core = "".join(rng.choice(AA) for _ in range(rng.randint(60, 140)))
        other = "".join(rng.choice(AA) if rng.random() < 0.15 else c for c in core)
        cut = len(other) // 3
        other = other[:cut] + "GSG" + other[cut:2 * cut] + other[2 * cut + 4:]  # an insertion, a deletion
        queries.append((f"q{i}", "".join(rng.choice(AA) for _ in range(rng.randint(5, 120))) + core))
        db.append((f"d{i}", other + "".join(rng.choice(AA) for _ in range(rng.randint(5, 80)))))
    db += [(f"r{j}", "".join(rng.choice(AA) for _ in range(150))) for j in range(10)]
    return queries, db


@pytest.mark.skipif(not HAVE_BLAST, reason="NCBI BLAST+ not installed (apt-get install ncbi-blast+)")
def test_protein_columns_equal_blastps(tmp_path):
    queries, db = _protein_set(random.Random(3))
    qf, df = _fasta(tmp_path / "q.fa", queries), _fasta(tmp_path / "d.fa", db)
    blast = _blast("blastp", qf, df, tmp_path, "6 " + " ".join(EXTRA), "-comp_based_stats", "0", "-seg", "no")
    lines = _search_lines(qf, df, tmp_path, "kmer:3", "6 " + " ".join(EXTRA), "1e-3")
    assert sorted(tuple(f[:2]) for f in lines) == [(f"q{i}", f"d{i}") for i in range(6)]
    covered = set()
    for f in lines:
        assert len(f) == len(EXTRA) and f == blast[f[0], f[1]], f  # every column, as blastp writes it
        covered.add(f[EXTRA.index("qcovhsp")])
    assert "N/A" == lines[0][EXTRA.index("sstrand")] and len(covered) > 3  # partial coverages, not all 100


@pytest.mark.skipif(not HAVE_BLAST, reason="NCBI BLAST+ not installed (apt-get install ncbi-blast+)")
def test_dna_columns_equal_blastns_on_both_strands(tmp_path):
    rng = np.random.default_rng(2)

    def mutate(s, rate):
        return "".join(str(rng.choice(list("ACGT"))) if rng.random() < rate else c for c in s)

    base = ["".join(rng.choice(list("ACGT"), size=int(rng.integers(200, 400)))) for _ in range(4)]
    flank = lambda n: "".join(rng.choice(list("ACGT"), size=n))  # noqa: E731
    queries = [(f"q{i}", flank(int(rng.integers(10, 90))) + mutate(b, 0.1)) for i, b in enumerate(base)]
    db = [(f"d{i}", reverse_complement(mutate(b, 0.1)) + flank(40) if i % 2 else mutate(b, 0.1) + flank(30))
          for i, b in enumerate(base)]
    db += [(f"r{j}", flank(300)) for j in range(6)]
    qf, df = _fasta(tmp_path / "q.fa", queries), _fasta(tmp_path / "d.fa", db)
    blast = _blast("blastn", qf, df, tmp_path, "6 " + " ".join(EXTRA), "-task", "blastn", "-dust", "no")
    lines = _search_lines(qf, df, tmp_path, "kmer:4", "6 " + " ".join(EXTRA), "1e-10")
    assert sorted(tuple(f[:2]) for f in lines) == [(f"q{i}", f"d{i}") for i in range(4)]
    for f in lines:
        assert f == blast[f[0], f[1]], f
    assert sorted(f[EXTRA.index("sstrand")] for f in lines) == ["minus", "minus", "plus", "plus"]


def test_default_columns_are_blast6s_and_biopython_reads_chosen_ones(tmp_path):
    from Bio import SearchIO

    queries, db = _protein_set(random.Random(5))
    qf, df = _fasta(tmp_path / "q.fa", queries), _fasta(tmp_path / "d.fa", db)
    common = ["search", "--model", "kmer:3", "--query", str(qf), "--db", str(df), "-k", "2", "--quiet"]
    assert main([*common, "--format", "blast6", "-o", str(tmp_path / "a.m8")]) == 0
    assert main([*common, "--format", "6 " + " ".join(BLAST6_COLUMNS), "-o", str(tmp_path / "b.m8")]) == 0
    assert main([*common, "--format", "6", "-o", str(tmp_path / "c.m8")]) == 0
    a = (tmp_path / "a.m8").read_bytes()
    assert a and a == (tmp_path / "b.m8").read_bytes() == (tmp_path / "c.m8").read_bytes()
    cols = "qseqid sseqid evalue bitscore qlen slen qstart qend sstart send nident"
    assert main([*common, "--format", "6 " + cols, "-o", str(tmp_path / "d.m8")]) == 0
    seqs = dict(queries + db)
    n = 0
    for qr in SearchIO.parse(str(tmp_path / "d.m8"), "blast-tab", fields=cols):
        assert qr.seq_len == len(seqs[qr.id])
        for h in qr.hits:
            assert h.seq_len == len(seqs[h.id]) and h.hsps[0].ident_num > 0
            n += 1
    assert n == sum(1 for _ in (tmp_path / "d.m8").read_text().splitlines()) > 0


def test_bad_columns_are_one_line_and_no_file(tmp_path, capsys):
    queries, db = _protein_set(random.Random(6))
    qf, df = _fasta(tmp_path / "q.fa", queries), _fasta(tmp_path / "d.fa", db)
    out = tmp_path / "h.m8"
    common = ["search", "--model", "kmer:3", "--query", str(qf), "--db", str(df), "-o", str(out), "--quiet"]
    assert main([*common, "--format", "6 qseqid qcovs"]) == 2
    err = capsys.readouterr().err
    assert "unknown tabular column 'qcovs'" in err and "qcovhsp" in err and "Traceback" not in err
    assert main([*common, "--format", "6 qseqid", "--no-align"]) == 2
    assert "needs the alignment stage" in capsys.readouterr().err
    assert not out.exists()


def test_searcher_rows_have_the_chosen_columns_and_types(tmp_path):
    from phylocl import Searcher

    queries, db = _protein_set(random.Random(7))
    df = _fasta(tmp_path / "d.fa", db)
    assert main(["index", "--fasta", str(df), "--model", "kmer:3", "-o", str(tmp_path / "idx"), "--quiet"]) == 0
    with Searcher(index=tmp_path / "idx", k=1, out_format="6 sseqid qlen slen qcovhsp evalue") as s:
        assert [n for n, _ in s.columns] == ["sseqid", "qlen", "slen", "qcovhsp", "evalue"]
        rows = s.search([queries[0]])
    assert len(rows) == 1 and rows[0]["sseqid"] == "d0"
    assert rows[0]["qlen"] == len(queries[0][1]) and rows[0]["slen"] == len(db[0][1])
    assert isinstance(rows[0]["qcovhsp"], int) and 0 < rows[0]["qcovhsp"] < 100 and rows[0]["evalue"] < 1e-5
