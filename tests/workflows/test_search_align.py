"""``phylocl search`` with the alignment stage (the default): ranking against phylocl.align's API, BLAST tabular read
by Biopython, --db vs --index, threads, stdout, and the refusals (exit 2, one line, no output)."""

from __future__ import annotations

import numpy as np
import pytest

from phylocl.align import align_candidates, scoring_system
from phylocl.cli import main
from phylocl.workflows.search import search

from families import AA, mutated_families, write_fasta  # tests/workflows/families.py


def _records(seed=0):
    """24 proteins in 6 families of mutated copies (lengths 30..90), one with lowercase letters and an X."""
    out = mutated_families(families=6, members=4, lengths=(30, 90), rate=0.3, seed=seed)
    out[5] = (out[5][0], out[5][1][:10].lower() + "X" + out[5][1][11:])
    return out


@pytest.fixture
def db(tmp_path):
    return write_fasta(tmp_path / "db.fasta", _records())


def _rows(path):
    lines = path.read_text().splitlines()
    return lines[0], [line.split("\t") for line in lines[1:]]


@pytest.mark.parametrize("filter_pvalue", [None, 1.0])  # the default ungapped filter (0.02), and none
def test_aligned_hits_equal_the_api_over_all_candidates(tmp_path, db, capsys, filter_pvalue):
    from phylocl.align.msv import DEFAULT_FILTER_PVALUE

    out = tmp_path / "h.tsv"
    extra = [] if filter_pvalue is None else ["--filter-pvalue", str(filter_pvalue)]
    assert main(["search", "--model", "kmer:2", "--query", str(db), "--db", str(db), "-k", "5", "-o", str(out),
                 "--evalue", "1", *extra]) == 0
    assert "aligned (BLOSUM62 11/1, 500 candidates)" in capsys.readouterr().out
    header, rows = _rows(out)
    assert header == "query\ttarget\tscore\trank\tbitscore\tevalue"
    recs = _records()
    ids, seqs = [i for i, _ in recs], [s for _, s in recs]
    # 500 candidates > 23 others: every database row is a candidate, so the result is the API's over all of them
    cands = [[j for j in range(len(ids)) if j != i] for i in range(len(ids))]
    ref = align_candidates(seqs, seqs, cands, scoring=scoring_system(), evalue=1.0,
                           filter_pvalue=DEFAULT_FILTER_PVALUE if filter_pvalue is None else filter_pvalue)
    ref_bits = {(ids[i], ids[t]): f"{b:.1f}" for i in range(len(ids)) for t, _, b, _ in zip(*ref.query(i))}
    assert all(ref_bits[q, t] == b for q, t, _, _, b, _ in rows)  # each pair's bit score is the API's
    for i, q in enumerate(ids):  # and each query's list is the API's top 5 (ties may order differently)
        assert [r[4] for r in rows if r[0] == q] == [f"{b:.1f}" for b in ref.query(i)[2][:5]]
    for q in set(ids):
        mine = [r for r in rows if r[0] == q]
        assert [int(r[3]) for r in mine] == list(range(1, len(mine) + 1))
        assert all(float(r[5]) <= 1.0 for r in mine) and all(r[1] != q for r in mine)
    def fam(x):
        return x.split("_")[0]

    assert all(fam(q) == fam(t) for q, t, *_, e in rows if float(e) < 1e-3)  # significant hits are relatives
    assert sum(fam(q) == fam(t) for q, t, *_ in rows) == 24 * 3  # every relative is found


def test_blast6_is_read_by_biopython(tmp_path, db):
    from Bio import SearchIO

    out = tmp_path / "h.m8"
    assert main(["search", "--model", "kmer:2", "--query", str(db), "--db", str(db), "-k", "3", "--format",
                 "blast6", "-o", str(out), "--quiet"]) == 0
    lines = out.read_text().splitlines()
    assert lines and all(len(line.split("\t")) == 12 for line in lines)
    n = sum(len(qr.hits) for qr in SearchIO.parse(str(out), "blast-tab"))
    assert n == len(lines)
    seqs = dict(_records())
    for line in lines:
        q, t, pident, length, mismatch, gapopen, qs, qe, ss, se, _, _ = line.split("\t")
        assert 0 < float(pident) <= 100 and int(mismatch) + int(gapopen) <= int(length)
        assert 1 <= int(qs) <= int(qe) <= len(seqs[q]) and 1 <= int(ss) <= int(se) <= len(seqs[t])


def test_index_equals_db_threads_do_not_matter_and_stdout(tmp_path, db, capsys):
    assert main(["index", "--fasta", str(db), "--model", "kmer:2", "-o", str(tmp_path / "ix"), "--quiet"]) == 0
    common = ["--query", str(db), "-k", "4", "--quiet", "--format", "blast6"]
    assert main(["search", *common, "--index", str(tmp_path / "ix"), "-o", str(tmp_path / "a"), "--threads",
                 "1"]) == 0
    assert main(["search", *common, "--model", "kmer:2", "--db", str(db), "-o", str(tmp_path / "b"), "--threads",
                 "2"]) == 0
    assert (tmp_path / "a").read_text() == (tmp_path / "b").read_text()
    capsys.readouterr()
    assert main(["search", *common, "--index", str(tmp_path / "ix"), "-o", "-"]) == 0
    captured = capsys.readouterr()
    assert captured.out == (tmp_path / "a").read_text()
    assert "wrote" in captured.err  # the summary goes to stderr when the hits go to stdout


def test_no_align_is_the_embedding_ranking(tmp_path, db):
    res = search(query=db, db=db, out=tmp_path / "n.tsv", model="kmer:2", k=3, align=False, progress=False)
    header, rows = _rows(tmp_path / "n.tsv")
    assert header == "query\ttarget\tscore\trank" and not res.aligned and len(rows) == 24 * 3
    aligned = search(query=db, db=db, out=tmp_path / "a.tsv", model="kmer:2", k=3, progress=False)
    _, arows = _rows(tmp_path / "a.tsv")
    cos = {(q, t): s for q, t, s, _ in rows}
    for q, t, s, *_ in arows:  # the aligned file keeps the embedding's cosine in `score`
        if (q, t) in cos:
            assert s == cos[q, t]
    assert aligned.aligned and aligned.scoring["matrix"] == "BLOSUM62"


def test_dna_is_aligned_with_the_blastn_scheme(tmp_path):
    rng = np.random.default_rng(1)
    recs = []
    for f in range(3):
        root = rng.choice(list("ACGT"), size=120)
        for m in range(3):
            s = root.copy()
            hit = rng.random(120) < 0.1
            s[hit] = rng.choice(list("ACGT"), size=int(hit.sum()))
            recs.append((f"d{f}_{m}", "".join(s)))
    fa = write_fasta(tmp_path / "d.fa", recs)
    res = search(query=fa, db=fa, out=tmp_path / "h.tsv", model="kmer:3", k=2, evalue=1e-5, progress=False)
    _, rows = _rows(tmp_path / "h.tsv")
    assert res.scoring["matrix"] == "BLASTN-2-3" and len(rows) == 9 * 2
    assert all(q.split("_")[0] == t.split("_")[0] for q, t, *_ in rows)


def test_a_long_query_is_scored_and_too_large_tracebacks_are_refused(tmp_path, db, capsys, monkeypatch):
    """A 10^5-residue query is aligned; a traceback over the cell limit is traced in pieces (the same lines); where
    no row cuts it (forced here), the run stops with one line naming the pair and writes nothing."""
    rng = np.random.default_rng(2)
    long_seq = "".join(rng.choice(list(AA), size=100_000)) + _records()[0][1]  # 10^5 residues + a family member
    q = write_fasta(tmp_path / "long.fa", [("long", long_seq)])
    out = tmp_path / "h.m8"
    assert main(["search", "--model", "kmer:2", "--query", str(q), "--db", str(db), "-k", "3", "--format", "blast6",
                 "-o", str(out), "--quiet"]) == 0
    whole = out.read_text()
    first = whole.splitlines()[0].split("\t")
    assert first[1] == "f0_0" and int(first[6]) > 100_000  # the aligned region lies at the end of the query
    import phylocl.align.split_trace as st
    import phylocl.align.traceback as tb

    monkeypatch.setattr(tb, "TRACE_CELLS", 1000)
    out.unlink()
    assert main(["search", "--model", "kmer:2", "--query", str(q), "--db", str(db), "-k", "3", "--format", "blast6",
                 "-o", str(out), "--quiet"]) == 0
    assert [line.split("\t")[10:] for line in out.read_text().splitlines()] == [
        line.split("\t")[10:] for line in whole.splitlines()]  # the same hits, E-values and bit scores

    def no_cut(*args, **kwargs):
        raise ValueError("no row cuts")

    monkeypatch.setattr(st, "global_ops", no_cut)
    out.unlink()
    assert main(["search", "--model", "kmer:2", "--query", str(q), "--db", str(db), "-k", "3", "--format", "blast6",
                 "-o", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.splitlines()[-1]  # (after the note on the database's X)
    assert "too many for a traceback" in err and "--format tsv" in err and "'long'" in err and err.startswith("phylocl search: error")
    assert not out.exists()
    assert main(["search", "--model", "kmer:2", "--query", str(q), "--db", str(db), "-k", "3", "-o", str(out),
                 "--quiet"]) == 0  # tsv needs no traceback


@pytest.mark.parametrize("args, message", [
    (["--candidates", "0"], "--candidates must be >= 1, got 0"),
    (["--evalue", "0"], "--evalue must be > 0"),
    (["--threads", "0"], "--threads must be >= 1"),
    (["--filter-pvalue", "0"], "--filter-pvalue must be > 0"),
    (["--gap-open", "5"], "no Karlin-Altschul statistics for BLOSUM62 with gaps 5/1"),
    (["--matrix", "NUC.4.4"], "lacks the letter(s)"),
    (["--matrix", "FOO"], "unknown substitution matrix"),
    (["--no-align", "--format", "blast6"], "--format blast6 needs the alignment stage"),
])
def test_bad_options_exit_2_one_line_no_output(tmp_path, db, capsys, args, message):
    out = tmp_path / "h.tsv"
    assert main(["search", "--model", "kmer:2", "--query", str(db), "--db", str(db), "-o", str(out), "--quiet",
                 *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not out.exists()


@pytest.mark.parametrize("args, named", [
    (["--evalue", "1e-5"], "--evalue"), (["--candidates", "50", "--matrix", "PAM30"], "--candidates, --matrix"),
    (["--filter-pvalue", "0.1", "--gap-open", "10", "--gap-extend", "1"], "--filter-pvalue, --gap-open, --gap-extend"),
])
def test_aligner_options_with_no_align_are_named_in_a_note(tmp_path, db, capsys, args, named):
    """They were silently ignored: all -k embedding hits written, no E-value cut, as if they had not been given."""
    out = tmp_path / "h.tsv"
    assert main(["search", "--model", "kmer:2", "--query", str(db), "--db", str(db), "-o", str(out), "--quiet",
                 "--no-align", *args]) == 0
    err = capsys.readouterr().err
    assert f"note: --no-align (the embedding ranking alone) does not use {named} (not applied)" in err
    assert main(["search", "--model", "kmer:2", "--query", str(db), "--db", str(db), "-o", str(tmp_path / "p.tsv"),
                 "--quiet", "--no-align"]) == 0
    assert "does not use" not in capsys.readouterr().err and out.read_bytes() == (tmp_path / "p.tsv").read_bytes()


def test_index_without_sequences_or_with_damaged_ones_is_refused(tmp_path, db, capsys):
    assert main(["embed", "--model", "kmer:2", "--fasta", str(db), "-o", str(tmp_path / "e.npz"), "--quiet"]) == 0
    assert main(["index", "--embeddings", str(tmp_path / "e.npz"), "-o", str(tmp_path / "dense")]) == 0
    assert main(["index", "--fasta", str(db), "--model", "kmer:2", "-o", str(tmp_path / "ix"), "--quiet"]) == 0
    (tmp_path / "ix" / "sequences.bin").write_bytes((tmp_path / "ix" / "sequences.bin").read_bytes()[:-3])
    capsys.readouterr()
    out = tmp_path / "h.tsv"
    for bundle, message in (("dense", "built from embeddings (`phylocl index --embeddings`), which hold no sequences"),
                            ("ix", "sequences.bin holds")):
        assert main(["search", "--query", str(db), "--index", str(tmp_path / bundle), "-o", str(out),
                     "--quiet"]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and not out.exists()  # (ix: checksums.json names it)
    (tmp_path / "ix" / "checksums.json").unlink(missing_ok=True)  # without checksums, the store's own check
    assert main(["search", "--query", str(db), "--index", str(tmp_path / "ix"), "-o", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "do not match the index" in err and err.count("\n") == 1 and not out.exists()
    assert main(["search", "--query", str(db), "--index", str(tmp_path / "dense"), "-o", str(out), "--quiet",
                 "--no-align"]) == 0


def test_a_stored_sequence_with_a_byte_outside_the_alphabet_is_one_line_in_search_and_verify(tmp_path, db, capsys):
    """A flipped byte in sequences.bin that the load's checksums do not see (a store over their size limit, or no
    checksums.json): the row's letters are checked when the alignment stage first reads it, one line, exit 2, no
    output (it was pyhmmer's traceback); ``index --verify`` scans every row and names it; a /2 bundle without
    checksums is refused by --verify once its contents pass."""
    ix = tmp_path / "ix"
    assert main(["index", "--fasta", str(db), "--model", "kmer:2", "-o", str(ix), "--quiet"]) == 0
    assert oct((ix / "sequences.bin").stat().st_mode & 0o777) == oct((ix / "meta.json").stat().st_mode & 0o777)
    (ix / "checksums.json").unlink()
    assert main(["index", "--verify", str(ix)]) == 2
    assert "checksums.json is missing" in capsys.readouterr().err
    data = bytearray((ix / "sequences.bin").read_bytes())
    offsets = np.load(ix / "sequence_offsets.npy")
    data[int(offsets[7]) + 3] = 0x0B
    (ix / "sequences.bin").write_bytes(bytes(data))
    out = tmp_path / "h.m8"
    for threads in ("1", "2"):
        assert main(["search", "--query", str(db), "--index", str(ix), "-o", str(out), "--quiet", "--format",
                     "blast6", "--threads", threads]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "stored sequence 7 holds bytes" in err and not out.exists()
    assert main(["index", "--verify", str(ix)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "stored sequence 7 holds bytes" in err
    assert main(["search", "--query", str(db), "--index", str(ix), "-o", str(out), "--quiet", "--no-align"]) == 0


def test_a_stored_row_is_checked_once_and_all_rows_on_request():
    from phylocl.errors import InputError
    from phylocl.retrieval.sequence_store import SequenceStore

    data = np.frombuffer(b"ACGTNACGZT", dtype=np.uint8)
    store = SequenceStore(data, np.array([0, 5, 7, 10]), letters="ACGTN", path="s.bin")
    assert store[0] == "ACGTN" and store[-3] == "ACGTN" and store[1] == "AC"
    with pytest.raises(InputError, match="stored sequence 2 holds bytes"):
        store[-1]
    with pytest.raises(InputError, match="stored sequence 2 holds bytes"):
        store.check_all(chunk=3)
    assert SequenceStore(data, np.array([0, 5, 7, 10]))[2] == "GZT"  # no letters: unchecked
    SequenceStore(data[:7], np.array([0, 5, 7]), letters="ACGTN").check_all(chunk=2)


def test_index_into_missing_folders_and_options_out_of_range(tmp_path, db, capsys):
    """``index --fasta -o a/b/x.idx`` makes the folders (as every other output does; it named the hidden spool of
    the sequences before); --window-overlap outside [0, 1) is one line, exit 2, for index and search alike."""
    ix = tmp_path / "a" / "b" / "x.idx"
    assert main(["index", "--fasta", str(db), "--model", "kmer:2", "-o", str(ix), "--quiet"]) == 0
    assert (ix / "sequences.bin").is_file() and sorted(p.name for p in ix.parent.iterdir()) == ["x.idx"]
    capsys.readouterr()
    for overlap in ("1.5", "1", "-0.5", "nan"):
        for argv in (["index", "--fasta", str(db), "-o", str(tmp_path / "y.idx")],
                     ["search", "--query", str(db), "--index", str(ix), "-o", str(tmp_path / "h.tsv")]):
            assert main([*argv, "--window-overlap", overlap, "--quiet"]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and "--window-overlap must be in [0, 1)" in err
    assert not (tmp_path / "y.idx").exists() and not (tmp_path / "h.tsv").exists()


def test_search_to_a_closed_stdout_and_a_forced_alphabet_say_what_happened(tmp_path, db, capsys, monkeypatch):
    import sys

    ix = tmp_path / "ix"
    assert main(["index", "--fasta", str(db), "--model", "kmer:2", "-o", str(ix), "--quiet"]) == 0
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdout", None)  # what Python gives a process started with stdout closed (>&-)
    assert main(["search", "--query", str(db), "--index", str(ix), "-o", "-", "--quiet"]) == 2
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "standard output is closed" in err
    assert main(["search", "--query", str(db), "--index", str(ix), "-o", str(tmp_path / "h.tsv"),
                 "--alphabet", "dna"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "read as DNA (--alphabet dna)" in err and "looks like" not in err


def test_a_sparse_index_refuses_bf16_queries_in_one_line(tmp_path, db, capsys):
    """default-protein's sparse rows are stored at fp32, so its index is searched at fp32: --precision bf16 is
    refused naming that (it said the model gives no sparse rows); a directory as -o names a hits file."""
    ix = tmp_path / "ix"
    assert main(["index", "--fasta", str(db), "--model", "default-protein", "-o", str(ix), "--quiet"]) == 0
    capsys.readouterr()
    out = tmp_path / "h.tsv"
    assert main(["search", "--query", str(db), "--index", str(ix), "-o", str(out), "--precision", "bf16"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sparse rows at fp32 only" in err and "drop --precision bf16" in err
    assert not out.exists()
    assert main(["search", "--query", str(db), "--index", str(ix), "-o", str(tmp_path)]) == 2
    assert "such as hits.tsv" in capsys.readouterr().err


def test_database_over_the_memory_budget_and_failures_leave_nothing(tmp_path, db, capsys, monkeypatch):
    from phylocl.errors import InputError

    out = tmp_path / "h.tsv"
    with pytest.raises(InputError, match="memory budget of a --db search"):
        search(query=db, db=db, out=out, model="kmer:2", memory_budget=100, progress=False)
    assert not out.exists()
    import phylocl.workflows.search_align as sa

    def boom(*a, **kw):
        raise RuntimeError("aligner failed")

    monkeypatch.setattr(sa, "align_candidates", boom)
    with pytest.raises(RuntimeError):
        search(query=db, db=db, out="-", model="kmer:2", progress=False)
    assert capsys.readouterr().out == ""  # nothing on stdout either


def test_an_index_without_sequences_is_refused_after_the_checks_of_the_model_and_options(tmp_path, db, capsys):
    """The order of the refusals of ``search --index`` (and Searcher) on a bundle that cannot align (built from
    embeddings): the model, the queries' alphabet, the cut, the word budget, the strand, the scoring system, and
    only then the missing sequences. Each run below has every fault from its own on; it is refused for the first."""
    assert main(["embed", "--model", "kmer:2", "--fasta", str(db), "-o", str(tmp_path / "e.npz"), "--quiet"]) == 0
    assert main(["index", "--embeddings", str(tmp_path / "e.npz"), "-o", str(tmp_path / "dense")]) == 0
    dna = tmp_path / "dna.fasta"
    dna.write_text(">d1\nACGTACGTTAGCATCGATCGATCGTAGCTAGCTAGCATCG\n")
    faults = [  # (flags, words of its refusal), in the order they are checked
        (["--model", "kmer:3"], "you are searching with model kmer:3"),
        (["--query", str(dna)], "looks like DNA"),
        (["--windows", "50"], "this index holds one row per sequence"),
        (["--word-budget", "0.5"], "--word-budget needs a sparse index"),
        (["--strand", "both"], "--strand is for DNA searches"),
        (["--matrix", "FOO"], "unknown substitution matrix"),
        ([], "built from embeddings (`phylocl index --embeddings`), which hold no sequences"),
    ]
    out = tmp_path / "h.tsv"
    capsys.readouterr()
    for i, (_, words) in enumerate(faults):
        flags = [f for fault, _ in faults[i:] for f in fault]
        query = [] if "--query" in flags else ["--query", str(db)]
        assert main(["search", *query, "--index", str(tmp_path / "dense"), "-o", str(out), "--quiet",
                     *flags]) == 2, words
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1 and not out.exists(), (words, err)


@pytest.mark.parametrize("alphabet", ["protein", "dna"])
def test_letter_columns_fetch_each_target_once(alphabet):
    """A format with letter columns and slen fetches each hit target's sequence once per buffer (it was fetched for
    the traces, again for the letters and a third time for slen), and writes what a fetch per use wrote."""
    import io

    from phylocl.align.strands import reverse_complement
    from phylocl.workflows.search_align import AlignStage

    rng = np.random.default_rng(4)
    letters = AA if alphabet == "protein" else "ACGT"
    base = ["".join(rng.choice(list(letters), size=80)) for _ in range(3)]
    seqs = [b if j % 2 or alphabet == "protein" else reverse_complement(b) for b in base for j in range(3)]
    seqs = [("".join(rng.choice(list(letters)) if rng.random() < 0.1 else c for c in s)) for s in seqs]
    ids, n = [f"s{i}" for i in range(len(seqs))], len(seqs)
    fetched = []

    def fetch(t):
        fetched.append(t)
        return seqs[t]

    out, calls = {}, {}
    for name, getter in (("once", fetch), ("plain", seqs.__getitem__)):
        stage = AlignStage(scoring=scoring_system(alphabet), fetch=getter, db_ids=ids,
                           db_residues=sum(map(len, seqs)), db_sequences=n, k=n, evalue=10.0,
                           out_format="6 std slen scovhsp qseq sseq btop", threads=1, filter_pvalue=None,
                           strand="both" if alphabet == "dna" else "plus")
        write_hits = stage._write_blast6  # the fetches after the aligner's own: the written hits'
        stage._write_blast6 = lambda *a: fetched.clear() or write_hits(*a)
        cands = np.array([[j for j in range(n) if j != i] for i in range(n)])
        f = io.StringIO()
        stage.write(f, ids, seqs, np.zeros(cands.shape), cands)
        out[name], calls[name] = f.getvalue(), list(fetched)
    targets = {line.split("\t")[1] for line in out["once"].splitlines()}
    assert len(targets) > 3 and sorted(calls["once"]) == sorted(int(t[1:]) for t in targets)  # each target once
    assert out["once"] == out["plain"]


@pytest.mark.parametrize("kind", ["protein", "dna"])
def test_self_hits_adds_each_querys_own_hit_and_changes_nothing_else(tmp_path, db, kind):
    """``--self-hits`` keeps the hit on the query's own id (pident 100 over its whole length, ranked first: no other
    target scores as well), aligned, unaligned, with ``--db``, ``--index`` and :class:`phylocl.Searcher`, DNA on both
    strands; the other lines are those written without it (``-k`` above the database size)."""
    import phylocl

    if kind == "dna":
        rng = np.random.default_rng(2)
        roots = ["".join(rng.choice(list("ACGT"), size=150)) for _ in range(3)]
        db = write_fasta(tmp_path / "d.fa", [(f"d{f}_{m}", r[m * 7:] + r[:m * 7]) for f, r in enumerate(roots)
                                             for m in range(3)])
    model = "kmer:3" if kind == "dna" else "kmer:2"
    ids = [line[1:].split()[0] for line in db.read_text().splitlines() if line.startswith(">")]
    assert main(["index", "--fasta", str(db), "--model", model, "-o", str(tmp_path / "ix"), "--quiet"]) == 0
    for extra in ([], ["--no-align"]):
        fmt = [] if extra else ["--format", "blast6"]
        common = ["--query", str(db), "-k", "100", "--quiet", *fmt, *extra]
        outs = {}
        for name, where, keep in (("db", ["--model", model, "--db", str(db)], False),
                                  ("db+", ["--model", model, "--db", str(db)], True),
                                  ("ix+", ["--index", str(tmp_path / "ix")], True)):
            out = tmp_path / f"{name}{len(extra)}.tsv"
            assert main(["search", *common, *where, "-o", str(out), *(["--self-hits"] if keep else [])]) == 0
            outs[name] = out.read_text().splitlines()
        assert outs["db+"] == outs["ix+"]
        body = [line.split("\t") for line in outs["db+"][0 if fmt else 1:]]
        own = [row for row in body if row[0] == row[1]]
        assert [row[0] for row in own] == ids  # one each, in query order
        firsts = {}
        for row in body:
            firsts.setdefault(row[0], row[1])
        assert all(firsts[q] == q for q in ids)  # ranked first
        if fmt:
            assert all(float(row[2]) == 100.0 and int(row[3]) > 20 for row in own)
        else:
            assert all(abs(float(row[2]) - 1.0) < 1e-6 and row[3] == "1" for row in own)
        others = [line for line in outs["db+"] if line.split("\t")[0] != line.split("\t")[1]]
        if extra:  # unaligned ranks count the own hit: compare without the rank column
            others = ["\t".join(line.split("\t")[:3]) for line in others]
            assert others == ["\t".join(line.split("\t")[:3]) for line in outs["db"]]
        else:
            assert others == outs["db"]
    with phylocl.Searcher(index=tmp_path / "ix", k=100, out_format="blast6", self_hits=True) as s:
        rows = s.search(list(zip(ids, [line for line in db.read_text().splitlines() if not line.startswith(">")])))
    assert [(r["qseqid"], r["sseqid"]) for r in rows if r["qseqid"] == r["sseqid"]] == [(i, i) for i in ids]


def test_a_same_id_row_of_another_sequence_is_a_hit_not_the_query_itself(tmp_path):
    """Two genomes annotated alike share ids (PROKKA_00001 in each): the aligned search left out the other genome's
    same-id protein as if it were the query itself, so the ortholog was never reported. It is now left out only when
    it holds the query's own sequence (the all-against-all case); --self-hits keeps that one too."""
    rng = np.random.default_rng(4)
    base = ["".join(rng.choice(list(AA), size=150)) for _ in range(3)]
    mutated = ["".join(c if rng.random() > 0.1 else rng.choice(list(AA)) for c in s) for s in base]
    a = write_fasta(tmp_path / "a.fa", [(f"PROKKA_0000{i}", s) for i, s in enumerate(base)])
    b = write_fasta(tmp_path / "b.fa", [(f"PROKKA_0000{i}", s) for i, s in enumerate(mutated)]
                    + [(f"other{i}", "".join(rng.choice(list(AA), size=150))) for i in range(5)])
    same = write_fasta(tmp_path / "same.fa", [("PROKKA_00000", base[0]), ("PROKKA_00001", mutated[1])])

    def top(query, db, *extra):
        out = tmp_path / "h.m8"
        assert main(["search", "--model", "kmer:3", "--query", str(query), "--db", str(db), "-k", "1", "--format",
                     "blast6", "--quiet", "-o", str(out), *extra]) == 0
        return {f[0]: f[1] for f in (line.split("\t") for line in out.read_text().splitlines())}

    assert top(a, b) == {f"PROKKA_0000{i}": f"PROKKA_0000{i}" for i in range(3)}  # the orthologs (none before)
    # the database holds PROKKA_00000's own sequence: left out as itself (nothing else relates to it); PROKKA_00001's
    # is another: kept
    assert top(a, same) == {"PROKKA_00001": "PROKKA_00001"}
    assert top(a, same, "--self-hits")["PROKKA_00000"] == "PROKKA_00000"
    idx = tmp_path / "b.index"
    assert main(["index", "--fasta", str(b), "--model", "kmer:3", "-o", str(idx), "--quiet"]) == 0
    out = tmp_path / "i.m8"
    assert main(["search", "--query", str(a), "--index", str(idx), "-k", "1", "--format", "blast6", "--quiet",
                 "-o", str(out)]) == 0
    assert [line.split("\t")[:2] for line in out.read_text().splitlines()] == [[f"PROKKA_0000{i}"] * 2 for i in range(3)]
