"""``phylocl search``: TSV format and ordering against a brute-force reference, self-hit exclusion, --db vs --index,
fingerprint refusal, streaming, atomicity and bad input."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

import phylocl
from phylocl.cli import main
from phylocl.retrieval.index import RetrievalIndex
from phylocl.models.kmer import KmerEmbedder
from phylocl.retrieval.sparse_index import SparseIndex
from phylocl.workflows.search import search

from families import mutated_families, write_fasta  # tests/workflows/families.py


def _records(n=24, seed=0):
    """``n`` protein records in 6 families of mutated copies (lengths 20..90)."""
    return mutated_families(families=6, members=n // 6, lengths=(20, 90), rate=0.25, seed=seed)


def _read(path):
    with open(path, newline="") as f:
        header = f.readline()
        rows = [(q, t, float(s), int(r)) for q, t, s, r in csv.reader(f, delimiter="\t")]
    return header, rows


def _reference(x_q, q_ids, x_db, db_ids, k):
    """Brute-force top-k by cosine similarity (numpy), dropping each query's own id."""
    sims = x_q @ x_db.T  # (Q, M)
    out = []
    for qi, qid in enumerate(q_ids):
        order = [j for j in np.argsort(-sims[qi], kind="stable") if db_ids[j] != qid][:k]
        out += [(qid, db_ids[j], float(sims[qi, j]), r + 1) for r, j in enumerate(order)]
    return out


def _same(rows, ref):
    """Same hits in the same order, scores within float32 precision (ties may swap targets)."""
    assert len(rows) == len(ref)
    for (q, t, s, r), (q2, t2, s2, r2) in zip(rows, ref):
        assert (q, r) == (q2, r2) and abs(s - s2) < 1e-5
        assert t == t2 or abs(s - s2) < 1e-5  # equal scores: order among ties is not defined


@pytest.fixture
def db(tmp_path):
    return write_fasta(tmp_path / "db.fasta", _records())


def test_summary_line_says_one_query_and_one_hit(tmp_path, db, capsys):
    q = write_fasta(tmp_path / "q.fasta", _records()[:1])
    assert main(["search", "--no-align", "--model", "kmer:2", "--query", str(q), "--db", str(db), "-k", "1",
                 "-o", str(tmp_path / "h.tsv")]) == 0
    assert "wrote 1 hit of 1 query against 24 sequences" in capsys.readouterr().out  # not "1 hits of 1 queries"


def test_all_against_all_kmer_matches_brute_force_and_excludes_self(tmp_path, db, capsys):
    out = tmp_path / "hits.tsv"
    assert main(["search", "--no-align", "--model", "kmer:2", "--query", str(db), "--db", str(db), "-k", "5", "-o", str(out)]) == 0
    assert "wrote 120 hits of 24 queries against 24 sequences (model kmer:2, embedding only)" in capsys.readouterr().out
    header, rows = _read(out)
    assert header == "query\ttarget\tscore\trank\n"
    recs = _records()
    x = KmerEmbedder(k=2, alphabet="protein").embed([s for _, s in recs])
    ids = [i for i, _ in recs]
    _same(rows, _reference(x, ids, x, ids, 5))
    assert all(q != t for q, t, _, _ in rows)  # no self hits
    assert [r for _, _, _, r in rows] == list(range(1, 6)) * 24  # ranks 1..k per query, queries in file order
    assert [q for q, *_ in rows[::5]] == ids


def test_index_search_equals_db_search_with_an_encoder(tmp_path, db):
    torch.manual_seed(0)
    enc_path = phylocl.build_encoder("gmlp-tiny").save(tmp_path / "enc.pt")
    query = write_fasta(tmp_path / "q.fasta", _records()[:7] + [("new", "MKVLAAGIVGLLLAQQ")])
    m = ["--model", str(enc_path), "--quiet"]
    assert main(["embed", *m, "--fasta", str(db), "-o", str(tmp_path / "db.npz")]) == 0
    assert main(["index", "--embeddings", str(tmp_path / "db.npz"), "-o", str(tmp_path / "idx")]) == 0
    assert main(["search", "--no-align", *m, "--query", str(query), "--index", str(tmp_path / "idx"), "-k", "4", "-o",
                 str(tmp_path / "a.tsv")]) == 0
    assert main(["search", "--no-align", *m, "--query", str(query), "--db", str(db), "-k", "4", "-o", str(tmp_path / "b.tsv")]) == 0
    a, b = _read(tmp_path / "a.tsv")[1], _read(tmp_path / "b.tsv")[1]
    _same(a, b)
    enc = phylocl.load_encoder(enc_path)
    recs, qrecs = _records(), _records()[:7] + [("new", "MKVLAAGIVGLLLAQQ")]
    ref = _reference(enc.embed([s for _, s in qrecs]), [i for i, _ in qrecs], enc.embed([s for _, s in recs]),
                     [i for i, _ in recs], 4)
    _same(a, ref)
    # queries that are database rows lose only their own hit; the new query keeps the full top 4
    assert len(a) == 8 * 4 and not any(q == t for q, t, *_ in a)


def test_index_built_with_another_model_is_refused(tmp_path, db, capsys):
    torch.manual_seed(0)
    a = phylocl.build_encoder("gmlp-tiny").save(tmp_path / "a.pt")
    torch.manual_seed(1)
    b = phylocl.build_encoder("gmlp-tiny").save(tmp_path / "b.pt")
    assert main(["embed", "--model", str(a), "--fasta", str(db), "-o", str(tmp_path / "e.npz"), "--quiet"]) == 0
    assert main(["index", "--embeddings", str(tmp_path / "e.npz"), "-o", str(tmp_path / "idx")]) == 0
    capsys.readouterr()
    out = tmp_path / "hits.tsv"
    for model in (str(b), "kmer:1"):  # same architecture, other weights; other dimension
        assert main(["search", "--no-align", "--model", model, "--query", str(db), "--index", str(tmp_path / "idx"), "-o",
                     str(out), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "index was built with model gmlp-tiny (fingerprint" in err
        assert phylocl.load_encoder(a).fingerprint() in err and not out.exists()
        assert err.startswith(f"phylocl search: error: {tmp_path / 'idx'}: ")  # the index is named


def test_kmer_index_supplies_its_own_model(tmp_path, db):
    assert main(["embed", "--model", "kmer:2", "--fasta", str(db), "-o", str(tmp_path / "e.npz"), "--quiet"]) == 0
    assert main(["index", "--embeddings", str(tmp_path / "e.npz"), "-o", str(tmp_path / "idx")]) == 0
    assert main(["search", "--no-align", "--query", str(db), "--index", str(tmp_path / "idx"), "-k", "3", "-o",
                 str(tmp_path / "h.tsv"), "--quiet"]) == 0
    assert len(_read(tmp_path / "h.tsv")[1]) == 24 * 3


def test_k_larger_than_database_and_streamed_queries(tmp_path, db):
    small = write_fasta(tmp_path / "small.fasta", _records()[:4])
    res = search(align=False, query=db, db=small, out=tmp_path / "h.tsv", model="kmer:2", k=10, buffer_size=5, batch_size=2,
                 progress=False)
    _, rows = _read(tmp_path / "h.tsv")
    assert res.n_queries == 24 and res.db_size == 4
    per_query = {}
    for q, _, _, r in rows:
        per_query.setdefault(q, []).append(r)
    assert all(ranks == list(range(1, len(ranks) + 1)) for ranks in per_query.values())
    in_db = {i for i, _ in _records()[:4]}
    assert all(len(per_query[q]) == (3 if q in in_db else 4) for q in per_query) and len(per_query) == 24


@pytest.mark.parametrize("model, cls", [("kmer:2", SparseIndex), ("kmer:2:16", RetrievalIndex)])
def test_failure_during_search_leaves_no_output(tmp_path, db, monkeypatch, model, cls):
    calls = []
    original = cls.search

    def failing(self, *a, **kw):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("boom")
        return original(self, *a, **kw)

    monkeypatch.setattr(cls, "search", failing)
    out = tmp_path / "out" / "hits.tsv"
    with pytest.raises(RuntimeError, match="boom"):
        search(align=False, query=db, db=db, out=out, model=model, k=3, buffer_size=5, progress=False)
    assert len(calls) == 2 and not out.parent.exists()  # nor the folder created for it


@pytest.mark.parametrize("case, message", [
    ("k0", "-k must be >= 1"),
    ("missing_query", "no such file"),
    ("missing_index", "no such index"),
    ("overwrite_input", "output would overwrite an input file"),
    ("dna_query", "looks like DNA, but the index"),  # not "use --model kmer:2": the index fixes the model
    ("no_shipped", "unknown model 'default-protein'"),
])
def test_bad_input_exit_2_one_line_no_output(tmp_path, db, capsys, monkeypatch, case, message):
    out = tmp_path / "h.tsv"
    q, target, model, k = str(db), ["--db", str(db)], ["--model", "kmer:2"], "5"
    if case == "k0":
        k = "0"
    elif case == "missing_query":
        q = str(tmp_path / "nope.fasta")
    elif case == "missing_index":
        target = ["--index", str(tmp_path / "nope")]
    elif case == "overwrite_input":
        out = db
    elif case == "dna_query":
        q = str(write_fasta(tmp_path / "dna.fasta", [("d", "ACGTACGTTGCAACGTACGTAAGT")]))
        assert main(["embed", "--model", "kmer:2", "--fasta", str(db), "-o", str(tmp_path / "e.npz"), "--quiet"]) == 0
        assert main(["index", "--embeddings", str(tmp_path / "e.npz"), "-o", str(tmp_path / "idx")]) == 0
        target = ["--index", str(tmp_path / "idx")]
        capsys.readouterr()
    else:  # an installation without the shipped encoders
        from phylocl.models import persistence

        monkeypatch.setattr(persistence, "PRETRAINED_DIR", tmp_path / "no-pretrained")
        model = ["--model", "default-protein"]
    before = db.read_text()
    assert main(["search", "--no-align", *model, "--query", q, *target, "-k", k, "-o", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("phylocl search: error: ") and message in err and err.count("\n") == 1
    assert db.read_text() == before and (case == "overwrite_input" or not out.exists())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_bf16_precision_search_and_embed(tmp_path, db, capsys):
    """--precision bf16 reaches the encoder (hits within bf16 rounding of the fp32 ones); kmer:K ignores it."""
    from phylocl.retrieval.embedding_files import load_embeddings
    from phylocl.workflows.model_spec import resolve_model

    torch.manual_seed(0)
    enc_path = phylocl.build_encoder("gmlp-tiny").save(tmp_path / "enc.pt")
    m = ["--model", str(enc_path), "--quiet", "--query", str(db), "--db", str(db), "-k", "3"]
    assert main(["search", "--no-align", *m, "-o", str(tmp_path / "fp32.tsv")]) == 0
    assert main(["search", "--no-align", *m, "--precision", "bf16", "-o", str(tmp_path / "bf16.tsv")]) == 0
    a, b = _read(tmp_path / "fp32.tsv")[1], _read(tmp_path / "bf16.tsv")[1]
    assert len(a) == len(b) == 24 * 3
    diffs = [abs(s - s2) for (_, _, s, _), (_, _, s2, _) in zip(a, b)]
    assert 0 < max(diffs) < 0.02  # bf16 really ran, and only rounding changed
    assert main(["embed", "--model", str(enc_path), "--quiet", "--precision", "bf16", "--fasta", str(db),
                 "-o", str(tmp_path / "e.npz")]) == 0
    x = load_embeddings(tmp_path / "e.npz").embeddings
    ref = resolve_model(str(enc_path), device="cpu", precision="bf16").embed([s for _, s in _records()])
    np.testing.assert_allclose(x, ref, atol=1e-6)
    assert resolve_model("kmer:2", alphabet="protein", precision="bf16").precision == "fp32"
    from phylocl.errors import InputError

    with pytest.raises(InputError, match="precision"):
        resolve_model(str(enc_path), device="cpu", precision="fp16")
    with pytest.raises(SystemExit) as err:
        main(["search", "--no-align", *m, "--precision", "fp16", "-o", str(tmp_path / "x.tsv")])
    assert err.value.code == 2 and not (tmp_path / "x.tsv").exists()
    capsys.readouterr()


# ---- sparse (inverted) index: phylocl index --fasta

def test_sparse_index_search_equals_brute_force_and_drops_self_hits(tmp_path, db, cli):
    code, out, err = cli("index", "--fasta", db, "--model", "kmer:3", "-o", tmp_path / "ix", "--quiet")
    assert code == 0, err
    assert "sparse, 24 vectors of dim 8000, model kmer:3" in out and "stored values" in err
    meta = json.loads((tmp_path / "ix" / "meta.json").read_text())
    assert (meta["kind"], meta["rank"], meta["model"]["name"]) == ("sparse", 0, "kmer:3")
    queries = write_fasta(tmp_path / "q.fasta", _records()[:5] + [("new", "MKVLAAGIVLLAHHW")])
    code, _, err = cli("search", "--no-align", "--query", queries, "--index", tmp_path / "ix", "-k", "4", "-o", tmp_path / "h.tsv",
                       "--quiet")
    assert code == 0, err
    recs, q = _records(), _records()[:5] + [("new", "MKVLAAGIVLLAHHW")]
    emb = KmerEmbedder(k=3)
    ref = _reference(emb.embed([s for _, s in q]), [i for i, _ in q], emb.embed([s for _, s in recs]),
                     [i for i, _ in recs], 4)
    _same(_read(tmp_path / "h.tsv")[1], ref)


def test_model_defaults_to_the_index_model(tmp_path, db, cli):
    assert cli("index", "--fasta", db, "--model", "kmer:2", "-o", tmp_path / "ix", "--quiet")[0] == 0
    code, out, err = cli("search", "--no-align", "--query", db, "--index", tmp_path / "ix", "-k", "2", "-o", tmp_path / "h.tsv")
    assert code == 0, err
    assert "model kmer:2" in out


@pytest.mark.parametrize("argv, message", [
    (["--model", "kmer:3:64"], "gives dense rows"),
    (["--model", "kmer:3", "--kind", "flat"], "--fasta builds a sparse index"),
    (["--model", "default-protein", "--precision", "bf16"], "at fp32"),
])
def test_refusals_exit_2_and_write_nothing(tmp_path, db, cli, argv, message):
    code, out, err = cli("index", "--fasta", db, "-o", tmp_path / "ix", "--quiet", *argv)
    assert code == 2 and message in err and not (tmp_path / "ix").exists()


def test_sparse_kind_needs_sequences_and_bad_fasta_is_named(tmp_path, db, cli):
    code, _, err = cli("index", "--embeddings", tmp_path / "e.npz", "--kind", "sparse", "-o", tmp_path / "ix")
    assert code == 2 and "--fasta" in err
    bad = tmp_path / "bad.fasta"
    bad.write_text(">a\nMKV\n>b\nMK1V\n")
    code, _, err = cli("index", "--fasta", bad, "--model", "kmer:3", "-o", tmp_path / "ix", "--quiet")
    assert code == 2 and "bad.fasta:4:3: record 'b'" in err and "cannot build" not in err
    assert not (tmp_path / "ix").exists()


def test_db_search_with_the_default_protein_model_goes_sparse_and_equals_brute_force(tmp_path, db, monkeypatch):
    import phylocl.retrieval.sparse_build as sparse_build
    from phylocl.workflows.model_spec import resolve_model

    built = []
    real = sparse_build.sparse_index_in_memory
    monkeypatch.setattr(sparse_build, "sparse_index_in_memory", lambda *a, **kw: built.append(1) or real(*a, **kw))
    out = tmp_path / "h.tsv"
    search(align=False, query=db, db=db, out=out, model="default-protein", k=5, buffer_size=7, progress=False,
           windows=0)  # whole rows (its default is windows: tests/workflows/test_windows.py)
    recs = _records()
    x = resolve_model("default-protein", alphabet="protein").embed([s for _, s in recs])  # the dense path
    ids = [i for i, _ in recs]
    assert built == [1]
    _same(_read(out)[1], _reference(x, ids, x, ids, 5))


def test_sparse_index_without_model_says_which_default_it_used(tmp_path, db, cli):
    code, out, err = cli("index", "--fasta", db, "-o", tmp_path / "ix", "--quiet")
    assert code == 0, err
    assert "model default-protein" in out and "no --model given: using default-protein" in err


def test_written_rows_clip_cosines_to_one():
    import io

    import numpy as np

    from phylocl.workflows.search import write_hit_rows

    f = io.StringIO()
    scores = np.array([[np.float32(1.0) + np.float32(1.2e-7), -1.0000002, 0.25]], dtype=np.float32)
    assert write_hit_rows(f, ["q"], ["a", "b", "c"], scores, np.array([[0, 1, 2]])) == 3
    assert [line.split("\t")[2] for line in f.getvalue().splitlines()] == ["1", "-1", "0.25"]


@pytest.mark.parametrize("kw, name", [({"candidates": 2.5}, "candidates"), ({"k": 2.5}, "k"),
                                      ({"threads": 1.5}, "threads"), ({"batch_size": True}, "batch_size"),
                                      ({"buffer_size": "64"}, "buffer_size")])
def test_python_sizes_that_are_not_whole_numbers_are_refused_by_name(tmp_path, db, kw, name):
    """``search(candidates=2.5)`` aligned 2 candidates and ``k=2.5`` failed deep inside; as ``Searcher`` does, each
    is a ValueError naming the keyword, and nothing is written."""
    out = tmp_path / "h.tsv"
    with pytest.raises(ValueError, match=rf"^{name} must be a whole number"):
        search(query=db, db=db, out=out, model="kmer:2", progress=False, **kw)
    assert not out.exists()
