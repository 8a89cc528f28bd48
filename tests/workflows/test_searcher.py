"""Searcher: an index held open gives, query by query and in any batch, the hits ``phylocl search --index`` writes;
bad queries are refused in one line naming them."""

from __future__ import annotations

import io

import pytest

import phylocl
from phylocl.cli import main
from phylocl.errors import InputError
from phylocl.workflows.searcher import Searcher

from families import mutated_families, write_fasta  # tests/workflows/families.py


def _records():
    return mutated_families(families=6, members=5, lengths=(40, 120), rate=0.3, seed=3)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A windowed index of 30 proteins built with the default model (its default cut), sequences stored."""
    tmp = tmp_path_factory.mktemp("searcher")
    db = write_fasta(tmp / "db.fasta", _records())
    assert main(["index", "--fasta", str(db), "-o", str(tmp / "db.index"), "--quiet"]) == 0
    return tmp / "db.index"


def _queries():
    """Ten queries: mutated copies of database members (other ids), one lowercase with an X and a U."""
    recs = mutated_families(families=6, members=5, lengths=(40, 120), rate=0.3, seed=3)
    out = [(f"q{i}", s) for i, (_, s) in enumerate(recs[::3])]
    out[2] = (out[2][0], out[2][1][:6].lower() + "XU" + out[2][1][8:])
    return out


def _cli_lines(tmp_path, bundle, queries, *extra) -> list[str]:
    q = write_fasta(tmp_path / "q.fasta", queries)
    out = tmp_path / "h.out"
    assert main(["search", "--query", str(q), "--index", str(bundle), "-o", str(out), "--quiet", *extra]) == 0
    lines = out.read_text().splitlines()
    return lines[1:] if "blast6" not in extra else lines  # blast6 has no header


@pytest.mark.parametrize("extra", [("-k", "5"), ("-k", "3", "--format", "blast6"), ("-k", "4", "--no-align"),
                                   ("-k", "5", "--word-budget", "0.5")])
def test_hits_equal_the_clis_whatever_the_batch(tmp_path, bundle, extra):
    opts = dict(zip(extra[::2], extra[1::2]))
    searcher = Searcher(index=bundle, k=int(opts["-k"]), out_format=opts.get("--format", "tsv"),
                        align="--no-align" not in extra, threads=1,
                        word_budget=float(opts["--word-budget"]) if "--word-budget" in opts else None)
    queries = _queries()
    want = _cli_lines(tmp_path, bundle, queries, *extra)
    assert len(want) >= 2 * len(queries)
    buf = io.StringIO()
    assert searcher.write(queries, buf) == len(want)
    assert buf.getvalue().splitlines() == want  # all at once
    one_by_one = []
    for q in queries[::-1]:  # one at a time, in another order: each query's own lines
        buf = io.StringIO()
        searcher.write([q], buf)
        one_by_one = buf.getvalue().splitlines() + one_by_one
    assert one_by_one == want


def test_search_returns_typed_rows_of_the_written_columns(bundle):
    searcher = phylocl.Searcher(index=bundle, k=3, threads=2)
    hits = searcher.search(_queries()[:2])
    assert [c for c, _ in searcher.columns] == ["query", "target", "score", "rank", "bitscore", "evalue"]
    assert [h["query"] for h in hits] == ["q0"] * 3 + ["q1"] * 3
    assert [h["rank"] for h in hits[:3]] == [1, 2, 3]
    assert all(isinstance(h["bitscore"], float) and isinstance(h["rank"], int) for h in hits)
    assert hits[0]["bitscore"] >= hits[1]["bitscore"] >= hits[2]["bitscore"]
    assert hits[0]["target"].startswith("f0_") and searcher.db_size == 30
    assert searcher.search([]) == []



@pytest.mark.parametrize("out_format", [" tsv", "tsv,", "tsv\n"])
def test_a_spaced_tsv_format_gives_tsvs_columns(bundle, out_format):
    """parse_format reads " tsv" as tsv (the stage wrote TSV), but Searcher.columns was empty and search() gave
    [{}, {}, ...]."""
    with Searcher(index=bundle, k=2, out_format=out_format) as searcher:
        assert searcher.columns == phylocl.workflows.searcher.COLUMNS["tsv"]
        hits = searcher.search(_queries()[:1])
    assert len(hits) == 2 and hits[0]["query"] == "q0" and hits[0]["rank"] == 1


def test_a_tabular_format_without_alignment_is_refused_naming_the_format_given(tmp_path, bundle, capsys):
    """The refusal named out_format='blast6' / --format blast6 whatever tabular format was given."""
    with pytest.raises(InputError, match=r"^out_format='6 qseqid sseqid' needs the alignment stage; drop align=False"):
        Searcher(index=bundle, out_format="6 qseqid sseqid", align=False)
    q = write_fasta(tmp_path / "q.fasta", _queries()[:1])
    assert main(["search", "--query", str(q), "--index", str(bundle), "-o", str(tmp_path / "h"), "--no-align",
                 "--format", "6 qseqid sseqid"]) == 2
    assert ("error: --format '6 qseqid sseqid' needs the alignment stage; drop --no-align"
            in capsys.readouterr().err)

def test_a_query_named_as_a_database_sequence_does_not_hit_it(bundle):
    rec = _records()[7]
    hits = Searcher(index=bundle, k=4, threads=1).search([rec])
    assert rec[0] not in {h["target"] for h in hits} and len(hits) == 4


@pytest.mark.parametrize("queries, message", [
    ([("q1", "MKVLA"), ("q1", "MKVLW")], "duplicate query id 'q1'"),
    ([("q1", "")], "query 'q1' has no sequence"),
    ([("a b", "MKV")], "the id 'a b' is empty or holds whitespace"),
    ([("q1", "MKV1LA")], "q1"),
    ([("q1", "ACGTACGTACGTACGTAACGT")], "query 'q1' looks like DNA"),
    (["MKVLA"], "expected an (id, sequence) pair"),
    ([("q1", None)], "query 2: the sequence is a NoneType, not a str"),  # was searched as the protein "NONE"
    ([("q1", b"MKVLA")], "query 2: the sequence is a bytes, not a str"),
])
def test_bad_queries_are_refused_naming_them_before_any_search(bundle, queries, message):
    searcher = Searcher(index=bundle, k=2, threads=1)
    buf = io.StringIO()
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        searcher.write([("ok", _records()[0][1]), *queries], buf)
    assert buf.getvalue() == ""  # refused before the first query was searched


def test_alignment_gaps_and_a_final_stop_are_removed_as_fasta_reading_removes_them(bundle):
    seq = _records()[0][1]
    gapped = seq[:10] + "--" + seq[10:20] + "." + seq[20:] + "*"  # refused before ("letter(s) '-'")
    searcher = Searcher(index=bundle, k=3, threads=1)
    assert searcher.search([("q", gapped)]) == searcher.search([("q", seq)])


def test_strict_refuses_rare_letters(bundle):
    with pytest.raises(InputError, match="strict"):
        Searcher(index=bundle, k=2, threads=1, strict=True).search([("q1", "MKVLUAGW")])


@pytest.mark.parametrize("kwargs, message", [  # in the keywords' names (they said --word-budget, --format)
    ({"word_budget": 2.0}, r"^word_budget must be in"),
    ({"align": False, "out_format": "blast6"}, r"^out_format='blast6' needs the alignment stage; drop align=False$"),
])
def test_bad_options_are_refused(bundle, kwargs, message):
    with pytest.raises(InputError, match=message):
        Searcher(index=bundle, **kwargs)


@pytest.mark.parametrize("name", ["k", "candidates", "threads", "batch_size", "buffer_size"])
def test_counts_below_one_are_refused_in_the_apis_own_names(bundle, name):
    """(They were refused in the command line's words: '-k must be >= 1'; batch_size 0 only by the first search.)"""
    with pytest.raises(ValueError, match=rf"^{name} must be an int >= 1"):
        Searcher(index=bundle, **{name: 0})


def test_an_index_of_an_encoder_of_ones_own_needs_its_path(tmp_path, capsys):
    """model=None means the index's own model only where phylocl can load it from the name the bundle records
    (kmer:K, shipped models); for a user's encoder the error says so (it said "you are searching with
    default-protein"), and model=PATH searches it."""
    enc = phylocl.build_encoder("gmlp-tiny", alphabet="protein", max_len=64)
    enc.save_pretrained(tmp_path / "tiny")
    db = write_fasta(tmp_path / "db.fasta", _records())
    assert main(["embed", "--fasta", str(db), "--model", str(tmp_path / "tiny"), "-o", str(tmp_path / "e.npz"),
                 "--quiet"]) == 0
    assert main(["index", "--embeddings", str(tmp_path / "e.npz"), "-o", str(tmp_path / "d.index")]) == 0
    with pytest.raises(InputError, match=r"neither kmer:K nor a shipped model.*\(model='PATH'\)$"):  # Python's words
        Searcher(index=tmp_path / "d.index", k=3, align=False)
    q = write_fasta(tmp_path / "q.fasta", _queries())
    assert main(["search", "--query", str(q), "--index", str(tmp_path / "d.index"), "-o", str(tmp_path / "h.tsv"),
                 "--no-align", "--quiet"]) == 2
    assert capsys.readouterr().err.rstrip().endswith("give the encoder it was built with (--model PATH)")  # the CLI's
    hits = Searcher(index=tmp_path / "d.index", model=str(tmp_path / "tiny"), k=3, align=False).search(_queries())
    assert len(hits) == 30


def test_a_missing_index_is_one_error(tmp_path):
    with pytest.raises(InputError, match="no such index"):
        Searcher(index=tmp_path / "nope.index")


def test_dna_searches_both_strands_as_the_cli(tmp_path):
    import numpy as np

    rng = np.random.default_rng(5)
    roots = ["".join(rng.choice(list("ACGT"), 150)) for _ in range(4)]
    comp = str.maketrans("ACGT", "TGCA")
    db = [(f"d{f}_{m}", "".join(c if rng.random() > 0.1 else rng.choice(list("ACGT")) for c in r))
          for f, r in enumerate(roots) for m in range(4)]
    queries = [("qplus", roots[0][10:140]), ("qminus", roots[1][5:145].translate(comp)[::-1])]
    write_fasta(tmp_path / "db.fasta", db)
    assert main(["index", "--fasta", str(tmp_path / "db.fasta"), "--model", "kmer:5", "-o", str(tmp_path / "x"),
                 "--quiet"]) == 0
    want = _cli_lines(tmp_path, tmp_path / "x", queries, "-k", "3", "--format", "blast6")
    searcher = Searcher(index=tmp_path / "x", k=3, out_format="blast6", threads=1)
    assert searcher.strand == "both"
    hits = searcher.search(queries)
    assert len(hits) == len(want) == 6
    buf = io.StringIO()
    searcher.write(queries, buf)
    assert buf.getvalue().splitlines() == want
    minus = [h for h in hits if h["qseqid"] == "qminus"]
    assert minus[0]["sseqid"].startswith("d1_") and minus[0]["sstart"] > minus[0]["send"]  # a minus-strand hit


def test_a_fasta_paths_bad_record_is_named_by_file_and_line(tmp_path, bundle):
    # a FASTA file given as a Path: its errors name the file and the line, as phylocl search names them
    s = Searcher(index=bundle, k=1)
    fa = tmp_path / "q.fasta"
    fa.write_text(">q1\nMKVLAAGHHWTTQQ\n>q2\nMKVLA\nAG1HH\n")
    with pytest.raises(InputError, match=r"q\.fasta:5:3: record 'q2': letter\(s\) '1'"):
        s.search(fa)
    fa.write_text(">q1\nMKVLAAGHHWTTQQ\n\n>q1\nMKVLAAGHHW\n")
    with pytest.raises(InputError, match=r"q\.fasta:4: duplicate query id 'q1'"):
        s.search(fa)
    with pytest.raises(InputError, match=r"^<queries>:2: record 'q2'"):  # pairs: the n-th query
        s.search([("q1", "MKVLAAGHHW"), ("q2", "MKV1")])
    s.close()


@pytest.mark.parametrize("name", ["align", "strict", "self_hits"])
def test_a_flag_that_is_not_a_bool_is_refused_naming_it(bundle, name):
    """``align="no"`` was kept as a true value (the alignment stage ran), ``strict="no"`` refused rare letters."""
    with pytest.raises(TypeError, match=rf"^{name} must be True or False, got 'no'$"):
        Searcher(index=bundle, **{name: "no"})
