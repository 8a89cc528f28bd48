"""``phylocl search --word-budget``: exact at 1 (bit for bit), lower-bound scores below 1, refusals."""

from __future__ import annotations

import pytest

from phylocl.models.kmer import KmerEmbedder
from phylocl.workflows.search import search

from families import mutated_families  # tests/workflows/families.py


def _records(n_fam=8, members=5, seed=0):
    return mutated_families(families=n_fam, members=members, lengths=(60, 120), rate=0.3, seed=seed)


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "db.fasta"
    path.write_text("".join(f">{i}\n{s}\n" for i, s in _records()))
    return path


@pytest.fixture
def index(tmp_path, db, cli):
    code, _, err = cli("index", "--fasta", db, "--model", "kmer:3", "-o", tmp_path / "ix", "--quiet")
    assert code == 0, err
    return tmp_path / "ix"


@pytest.mark.parametrize("align", [[], ["--no-align"]])
def test_budget_one_writes_the_exact_output_byte_for_byte(tmp_path, db, index, cli, align):
    common = ["search", *align, "--query", db, "--index", index, "-k", "6", "--quiet"]
    assert cli(*common, "-o", tmp_path / "exact.tsv")[0] == 0
    code, out, err = cli(*common, "-o", tmp_path / "one.tsv", "--word-budget", "1")
    assert code == 0, err
    assert (tmp_path / "one.tsv").read_bytes() == (tmp_path / "exact.tsv").read_bytes()
    assert "word budget" not in out


def test_budget_scores_are_lower_bounds_of_the_exact_cosines(tmp_path, db, index, cli):
    code, out, err = cli("search", "--no-align", "--query", db, "--index", index, "-k", "6", "--quiet",
                         "-o", tmp_path / "h.tsv", "--word-budget", "0.2")
    assert code == 0, err
    assert "word budget 0.2 (not exact)" in out
    recs = dict(_records())
    x = KmerEmbedder(k=3).embed(list(recs.values()))  # (N, D) unit rows: the exact cosines
    row = {i: n for n, i in enumerate(recs)}
    lines = (tmp_path / "h.tsv").read_text().splitlines()[1:]
    assert len(lines) == 40 * 6
    below = 0
    for line in lines:
        q, t, s, _ = line.split("\t")
        exact = float(x[row[q]] @ x[row[t]])
        assert float(s) <= exact + 1e-6
        below += float(s) < exact - 1e-6
    assert below > 0  # the budget left words out


def test_api_records_the_budget(tmp_path, db, index):
    r = search(query=db, index=index, out=tmp_path / "h.tsv", k=3, align=False, progress=False, word_budget=0.5)
    assert r.word_budget == 0.5 and r.n_hits == 40 * 3


@pytest.mark.parametrize("value", ["0", "-0.1", "1.5", "nan", "inf"])
def test_bad_budgets_exit_2_with_one_line_and_no_output(tmp_path, db, index, cli, value):
    code, _, err = cli("search", "--query", db, "--index", index, "-o", tmp_path / "h.tsv", "--quiet",
                       "--word-budget", value)
    assert code == 2 and "--word-budget must be in (0, 1]" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "h.tsv").exists()


def test_budget_needs_a_sparse_index(tmp_path, db, cli):
    code, _, err = cli("search", "--no-align", "--query", db, "--db", db, "--model", "kmer:3:64", "-o",
                       tmp_path / "h.tsv", "--word-budget", "0.5", "--quiet")
    assert code == 2 and "--word-budget needs a sparse index" in err and not (tmp_path / "h.tsv").exists()
    assert cli("embed", "--fasta", db, "--model", "kmer:3:64", "-o", tmp_path / "e.npz", "--quiet")[0] == 0
    assert cli("index", "--embeddings", tmp_path / "e.npz", "--kind", "flat", "-o", tmp_path / "flat",
               "--quiet")[0] == 0
    code, _, err = cli("search", "--no-align", "--query", db, "--index", tmp_path / "flat", "-o", tmp_path / "h.tsv",
                       "--word-budget", "0.5", "--quiet")
    assert code == 2 and "--word-budget needs a sparse index" in err and "flat" in err
    assert not (tmp_path / "h.tsv").exists()
    code, _, err = cli("search", "--no-align", "--query", db, "--db", db, "--model", "kmer:3", "-o",
                       tmp_path / "h.tsv", "--word-budget", "0.5", "--quiet")  # an in-memory sparse index takes it
    assert code == 0, err


def test_budget_with_windows_reads_fewer_words_and_is_exact_at_one(tmp_path, db, cli):
    common = ["search", "--no-align", "--query", db, "--db", db, "--model", "kmer:3", "--windows", "40", "-k", "6",
              "--quiet"]
    for name, extra in (("exact", []), ("one", ["--word-budget", "1"]), ("half", ["--word-budget", "0.3"])):
        code, _, err = cli(*common, "-o", tmp_path / f"{name}.tsv", *extra)
        assert code == 0, err
    exact, half = ((tmp_path / f"{n}.tsv").read_text().splitlines()[1:] for n in ("exact", "half"))
    assert (tmp_path / "one.tsv").read_text() == (tmp_path / "exact.tsv").read_text()
    best = {}
    for line in exact:
        q, t, s, _ = line.split("\t")
        best[q, t] = float(s)
    assert half != exact and len(half) == len(exact)
    for line in half:  # kmer:3 rows are non-negative: a budgeted best window pair is at most the exact one
        q, t, s, _ = line.split("\t")
        assert (q, t) not in best or float(s) <= best[q, t] + 1e-6
