"""``--sensitivity`` presets of ``phylocl search`` / ``evaluate --align`` / ``Searcher``: resolution, explicit
options overriding, ``default`` byte for byte today's output, refusals, and a budget left out where it cannot
apply."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from phylocl.errors import InputError
from phylocl.workflows import sensitivity as sens_mod
from phylocl.workflows.evaluate import evaluate
from phylocl.workflows.search import DEFAULT_CANDIDATES, search
from phylocl.workflows.searcher import Searcher
from phylocl.workflows.sensitivity import PRESETS, resolve_sensitivity

from families import mutated_families, write_fasta  # tests/workflows/families.py


@pytest.fixture
def db(tmp_path):
    return write_fasta(tmp_path / "db.fasta", mutated_families(families=8, members=5, lengths=(60, 120), rate=0.3))


@pytest.fixture
def index(tmp_path, db, cli):
    code, _, err = cli("index", "--fasta", db, "--model", "kmer:3", "-o", tmp_path / "ix", "--quiet")
    assert code == 0, err
    return tmp_path / "ix"


@pytest.fixture
def small_fast(monkeypatch):
    """``fast`` shrunk to the toy database (40 sequences): 3 candidates, budget 0.3, so that its values show."""
    monkeypatch.setitem(PRESETS, "fast", {"candidates": 3, "word_budget": 0.3})


def test_default_preset_is_the_options_defaults():
    assert PRESETS["default"] == {"candidates": DEFAULT_CANDIDATES, "word_budget": None}
    r = resolve_sensitivity(None, candidates=None, word_budget=None, filter_pvalue=None)
    assert (r.name, r.candidates, r.word_budget, r.filter_pvalue, r.named) == ("default", 500, None, None, False)


def test_explicit_options_override_the_preset():
    r = resolve_sensitivity("fast", candidates=None, word_budget=None, filter_pvalue=None)
    assert (r.candidates_for("protein"), r.candidates_for(None), r.word_budget, r.preset_budget) == (300, 300, 0.2, True)
    assert r.candidates_for("dna") == DEFAULT_CANDIDATES  # fewer DNA candidates cost AUC1 on the dev sets
    r = resolve_sensitivity("fast", candidates=77, word_budget=1.0, filter_pvalue=0.5)
    assert (r.candidates_for("dna"), r.word_budget, r.filter_pvalue, r.preset_budget) == (77, 1.0, 0.5, False)
    sensitive = resolve_sensitivity("sensitive", candidates=None, word_budget=None, filter_pvalue=None)
    assert sensitive.candidates_for("protein") == sensitive.candidates_for("dna") == 1000


def test_candidates_follow_the_index_alphabet(tmp_path, cli, monkeypatch):
    monkeypatch.setitem(PRESETS, "fast", {"candidates": {"protein": 3, "dna": 5}, "word_budget": 0.3})
    rng = np.random.default_rng(1)
    dna = write_fasta(tmp_path / "dna.fasta", [(f"d{i}", "".join(rng.choice(list("ACGT"), 80))) for i in range(12)])
    assert cli("index", "--fasta", dna, "--model", "kmer:3", "-o", tmp_path / "dix", "--quiet")[0] == 0
    code, out, err = cli("search", "--query", dna, "--index", tmp_path / "dix", "-k", "2", "--quiet", "-o",
                         tmp_path / "h.tsv", "--sensitivity", "fast")
    assert code == 0 and "5 candidates" in out and "word budget 0.3" in out, err
    with Searcher(index=tmp_path / "dix", sensitivity="fast") as s:
        assert (s.candidates, s.k_eff, s.stage.filter_pvalue) == (5, 5, 1.0)  # DNA: the filter stays off


@pytest.mark.parametrize("align", [[], ["--no-align"], ["--format", "blast6"]])
def test_default_writes_todays_output_byte_for_byte(tmp_path, db, index, cli, align):
    common = ["search", *align, "--query", db, "--index", index, "-k", "6", "--quiet"]
    assert cli(*common, "-o", tmp_path / "plain.tsv")[0] == 0
    code, out, err = cli(*common, "-o", tmp_path / "default.tsv", "--sensitivity", "default")
    assert code == 0, err
    assert (tmp_path / "default.tsv").read_bytes() == (tmp_path / "plain.tsv").read_bytes()
    assert "sensitivity" not in out


def test_preset_values_reach_the_search_and_explicit_ones_win(tmp_path, db, index, cli, small_fast):
    common = ["search", "--query", db, "--index", index, "-k", "6", "--quiet"]
    code, out, err = cli(*common, "-o", tmp_path / "fast.tsv", "--sensitivity", "fast")
    assert code == 0, err
    assert "3 candidates" in out and "word budget 0.3 (not exact)" in out and "sensitivity fast" in out
    assert cli(*common, "-o", tmp_path / "same.tsv", "--candidates", "3", "--word-budget", "0.3")[0] == 0
    assert cli(*common, "-o", tmp_path / "plain.tsv")[0] == 0
    fast = (tmp_path / "fast.tsv").read_bytes()
    assert fast == (tmp_path / "same.tsv").read_bytes() and fast != (tmp_path / "plain.tsv").read_bytes()
    # explicit options override: exact with 5 candidates
    code, out, err = cli(*common, "-o", tmp_path / "over.tsv", "--sensitivity", "fast", "--candidates", "5",
                         "--word-budget", "1")
    assert code == 0 and "5 candidates" in out and "not exact" not in out, err
    assert cli(*common, "-o", tmp_path / "five.tsv", "--candidates", "5")[0] == 0
    assert (tmp_path / "over.tsv").read_bytes() == (tmp_path / "five.tsv").read_bytes()


def test_searcher_takes_the_preset(index, small_fast):
    with Searcher(index=index, k=4, sensitivity="fast") as s:
        assert (s.sensitivity, s.candidates, s.word_budget, s.k_eff) == ("fast", 3, 0.3, 3)
        assert s.notes == ["k=4 is more than the 3 candidates aligned per query: at most 3 hits per query are "
                           "written (candidates=4 aligns more)"]  # as search's note on -k
        assert s.stage.filter_pvalue == 0.02  # the protein default: no preset sets the filter
        copy = pickle.loads(pickle.dumps(s))  # re-opened with the same options
        assert (copy.sensitivity, copy.candidates, copy.word_budget) == ("fast", 3, 0.3)
        copy.close()
    with Searcher(index=index, k=4, sensitivity="fast", candidates=9, word_budget=0.5) as s:
        assert (s.candidates, s.word_budget, s.k_eff) == (9, 0.5, 9)


@pytest.mark.parametrize("value", ["bogus", "Fast", ""])
def test_bad_preset_exits_2_with_one_line_and_no_output(tmp_path, db, index, cli, value):
    code, _, err = cli("search", "--query", db, "--index", index, "-o", tmp_path / "h.tsv", "--quiet",
                       "--sensitivity", value)
    assert code == 2 and "--sensitivity must be one of fast, default, sensitive" in err, err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "h.tsv").exists()


def test_bad_preset_from_python(tmp_path, db, index):
    with pytest.raises(InputError, match="sensitivity must be one of"):
        search(query=db, index=index, out=tmp_path / "h.tsv", progress=False, sensitivity="turbo")
    with pytest.raises(InputError, match="sensitivity must be one of"):
        Searcher(index=index, sensitivity=1)
    assert not (tmp_path / "h.tsv").exists()


def test_preset_budget_is_left_out_for_a_dense_index_with_a_note(tmp_path, db, cli, small_fast):
    """kmer:3:64 (dense sketches): an explicit --word-budget is refused, a preset's is left out and said so."""
    common = ["search", "--no-align", "--query", db, "--db", db, "--model", "kmer:3:64", "-k", "4", "--quiet"]
    code, out, err = cli(*common, "-o", tmp_path / "fast.tsv", "--sensitivity", "fast")
    assert code == 0, err
    assert "--sensitivity fast: its word budget (0.3) applies to sparse indexes" in err
    assert "not exact" not in out and "sensitivity fast" in out
    assert cli(*common, "-o", tmp_path / "exact.tsv")[0] == 0
    assert (tmp_path / "fast.tsv").read_bytes() == (tmp_path / "exact.tsv").read_bytes()


@pytest.fixture
def labels(tmp_path, db):
    ids = [line[1:] for line in db.read_text().splitlines() if line.startswith(">")]
    path = tmp_path / "labels.tsv"
    path.write_text("sequence_id\tfamily_id\n" + "".join(f"{i}\t{i.split('_')[0]}\n" for i in ids))
    return path


def test_evaluate_takes_the_preset_and_says_its_budget_is_not_applied(db, labels, small_fast):
    data = dict(data=db, labels=labels, model="kmer:3", ks=[1], progress=False, align=True)
    fast = evaluate(**data, sensitivity="fast")
    three = evaluate(**data, candidates=3)
    assert fast["aligned"]["candidates"] == 3 and fast["aligned"]["sensitivity"] == "fast"
    assert fast["aligned"]["auc1"] == three["aligned"]["auc1"] and "sensitivity" not in three["aligned"]
    assert fast["aligned"]["auc1"] != evaluate(**data)["aligned"]["auc1"]  # 3 candidates rank worse than 500
    assert any("word budget (0.3) is not applied" in n for n in fast["notes"])
    assert "sensitivity" not in evaluate(**data, sensitivity="default")["aligned"]


def test_evaluate_refuses_a_preset_without_align(db, labels, cli):
    code, _, err = cli("evaluate", "--data", db, "--labels", labels, "--model", "kmer:3", "--sensitivity", "fast")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--sensitivity is an option of the aligned ranking; add --align" in err
    code, _, err = cli("evaluate", "--data", db, "--labels", labels, "--model", "kmer:3", "--align",
                       "--sensitivity", "turbo")
    assert code == 2 and "--sensitivity must be one of" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(InputError, match="add align=True"):
        evaluate(data=db, labels=labels, model="kmer:3", progress=False, sensitivity="fast")


def test_help_names_the_presets_values(small_fast):
    assert "fast = --candidates 3 --word-budget 0.3; default = --candidates 500;" in sens_mod.describe()


def test_k_above_the_candidates_says_how_many_hits_can_be_written(tmp_path, db, index, cli):
    common = ["search", "--query", db, "--index", index, "--quiet", "--candidates", "3"]
    code, _, err = cli(*common, "-k", "6", "-o", tmp_path / "six.tsv")  # was capped at 3 per query without a word
    assert code == 0 and "note: -k 6 is more than the 3 candidates aligned per query: at most 3 hits per query" in err
    assert "--candidates 6 aligns more" in err
    rows = (tmp_path / "six.tsv").read_text().splitlines()[1:]
    assert max(int(r.split("\t")[3]) for r in rows) <= 3  # the rank column
    code, _, err = cli(*common, "-k", "3", "-o", tmp_path / "three.tsv")
    assert code == 0 and "candidates aligned per query" not in err
    code, _, err = cli(*common, "-k", "6", "--no-align", "-o", tmp_path / "emb.tsv")
    assert code == 0 and "candidates aligned per query" not in err  # no alignment stage: -k hits are written


def test_searcher_notes_k_above_the_candidates_as_search_does(index):
    """Searcher(k=6, candidates=3) wrote at most 3 hits per query without a word (the command says so)."""
    with Searcher(index=index, k=6, candidates=3) as s:
        assert s.notes == ["k=6 is more than the 3 candidates aligned per query: at most 3 hits per query are "
                           "written (candidates=6 aligns more)"]
    for kwargs in ({"k": 3, "candidates": 3}, {"k": 6, "candidates": 3, "align": False}):
        with Searcher(index=index, **kwargs) as s:
            assert s.notes == []
