"""Searcher used as a Python user would: queries as a dict or a FASTA Path, strings refused with the way out, whole
numbers checked, close / with / pickling / threads, a repr."""

from __future__ import annotations

import io
import pickle
import threading
from pathlib import Path

import numpy as np
import pytest

from phylocl.cli import main
from phylocl.errors import InputError
from phylocl.workflows import searcher as searcher_module
from phylocl.workflows.searcher import Searcher

from families import mutated_families, write_fasta  # tests/workflows/families.py


def _records():
    return mutated_families(families=4, members=4, lengths=(40, 90), rate=0.3, seed=5)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A kmer:3 index of 16 proteins with its sequences stored (fast: no encoder)."""
    tmp = tmp_path_factory.mktemp("searcher_inputs")
    write_fasta(tmp / "db.fasta", _records())
    assert main(["index", "--fasta", str(tmp / "db.fasta"), "--model", "kmer:3", "-o", str(tmp / "db.index"),
                 "--quiet"]) == 0
    return tmp / "db.index"


def _queries():
    return [(f"q{i}", s) for i, (_, s) in enumerate(_records()[::4])]


def test_a_dict_and_a_fasta_path_are_the_pairs(tmp_path, bundle):
    searcher = Searcher(index=bundle, k=3, threads=1)
    want = searcher.search(_queries())
    assert len(want) >= 4
    assert searcher.search(dict(_queries())) == want  # the dict's keys were read as (id, sequence) pairs
    fasta = write_fasta(tmp_path / "q.fasta", _queries())
    assert searcher.search(fasta) == want  # a Path was "not iterable"
    with pytest.raises(InputError, match=r"got a str; to search the FASTA file .*pass pathlib.Path"):
        searcher.search(str(fasta))


@pytest.mark.parametrize("queries, message", [
    (["MKVLAAGIWK"], r"query 1: expected an \(id, sequence\) pair, got str 'MKVLAAGIWK'; give ids"),
    (["MK"], r"query 1: expected an \(id, sequence\) pair, got str 'MK'"),  # was searched as id 'M', sequence 'K'
    (("q1", "MKVLAAGIWK"), r"query 1: expected an \(id, sequence\) pair, got str 'q1'"),  # one pair, not in a list
    ("MKVLAAGIWK", r"queries must be \(id, sequence\) pairs.*got a str; one query is \[\(id, sequence\)\]"),
    ("MKVLAAGIWK" * 30, r"queries must be \(id, sequence\) pairs.*got a str; one query is"),  # was OSError:
    # the path probe of the hint raised 'File name too long' for a sequence of over 255 letters
    (5, r"queries must be \(id, sequence\) pairs.*got int"),
])
def test_strings_where_pairs_belong_are_refused_with_the_way_out(bundle, queries, message):
    with pytest.raises(InputError, match=message):
        Searcher(index=bundle, k=2, threads=1).search(queries)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"k": 2.5}, ValueError, "k must be an int >= 1, got 2.5"),  # was searched as k=2
    ({"k": True}, ValueError, "k must be an int >= 1, got True"),
    ({"k": "3"}, ValueError, "k must be an int >= 1, got '3'"),
    ({"candidates": 10.7}, ValueError, "candidates must be an int >= 1 or None, got 10.7"),  # was int(10.7) = 10
    ({"threads": 1.5}, ValueError, "threads must be an int >= 1 or None, got 1.5"),
    ({"index": None}, TypeError, "index must be the path of an index bundle.*NoneType"),
    # these raised TypeError ("'>' not supported between instances of 'str' and 'int'"), AttributeError ('int'
    # object has no attribute 'upper'), or were taken as int(11.5) = 11 and int("11")
    ({"evalue": "1e-5"}, InputError, "evalue must be a number > 0, got str '1e-5'"),
    ({"evalue": None}, InputError, "evalue must be a number > 0, got NoneType None"),
    ({"filter_pvalue": "0.1"}, InputError, "filter_pvalue must be a number > 0, got str '0.1'"),
    ({"matrix": 62}, InputError, r"matrix must be a matrix name \(a str\), got int 62"),
    ({"gap_open": 11.5}, InputError, "gap_open must be a whole number, got float 11.5"),
    ({"gap_extend": "1"}, InputError, "gap_extend must be a whole number, got str '1'"),
    ({"word_budget": "0.5"}, InputError, r"word_budget must be in \(0, 1\] \(1: exact search\), got '0.5'"),
])
def test_options_of_the_wrong_kind_are_refused(bundle, kwargs, error, message):
    with pytest.raises(error, match=message):
        Searcher(**{"index": bundle, **kwargs})


def test_numpy_integers_and_k_beyond_the_database(bundle):
    a = Searcher(index=bundle, k=np.int64(3), candidates=np.int32(20), threads=np.int64(1)).search(_queries())
    assert a == Searcher(index=bundle, k=3, candidates=20, threads=1).search(_queries())
    hits = Searcher(index=bundle, k=1000, align=False).search(_queries()[:1])
    assert len(hits) == 16 and [h["rank"] for h in hits] == list(range(1, 17))
    assert Searcher(index=bundle, k=2, threads=1).search([]) == []


def test_close_with_and_a_closed_searcher(bundle):
    with Searcher(index=bundle, k=2, threads=1) as searcher:
        assert not searcher.closed and searcher.search(_queries()[:1])
    assert searcher.closed and searcher.ridx is None
    with pytest.raises(ValueError, match="search on a closed Searcher"):
        searcher.search(_queries()[:1])
    with pytest.raises(ValueError, match="closed"):
        searcher.write(_queries()[:1], io.StringIO())
    searcher.close()  # again: nothing
    assert "closed" in repr(searcher) and searcher.db_size == 16


def test_repr_names_the_index_and_options(bundle):
    text = repr(Searcher(index=bundle, k=2, align=False))
    assert text.startswith("Searcher(index=") and str(bundle.name) in text and "k=2" in text
    assert "align=False" in text and "db_size=16" in text


def test_a_pickled_searcher_reopens_the_bundle_and_searches_the_same(bundle, monkeypatch, tmp_path):
    searcher = Searcher(index=bundle, k=3, threads=1)
    monkeypatch.chdir(tmp_path)  # another working directory: the copy holds the absolute path
    copy = pickle.loads(pickle.dumps(searcher))  # was "ctypes objects containing pointers cannot be pickled"
    assert copy is not searcher and copy.search(_queries()) == searcher.search(_queries())
    assert Path(copy._options["index"]).is_absolute()


def test_write_needs_a_text_file(bundle, tmp_path):
    searcher = Searcher(index=bundle, k=2, threads=1)
    with pytest.raises(TypeError, match="f must be a file open for writing text.*str"):
        searcher.write(_queries(), str(tmp_path / "out.tsv"))  # with no hit it silently wrote nothing
    with open(tmp_path / "out.bin", "wb") as f, pytest.raises(TypeError, match="BufferedWriter"):
        searcher.write(_queries(), f)


def test_searches_from_several_threads_equal_one_at_a_time(bundle):
    searcher = Searcher(index=bundle, k=3, threads=1)
    queries = [(rid, seq) for rid, seq in _records()]
    want = {q[0]: Searcher(index=bundle, k=3, threads=1).search([q]) for q in queries}
    bad, errors = [], []

    def run(i):
        try:
            for r in range(4):
                q = queries[(i * 5 + r) % len(queries)]
                if searcher.search([q]) != want[q[0]]:
                    bad.append(q[0])
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and not bad
    assert "several threads are safe" in " ".join(searcher_module.__doc__.split())


def test_a_short_peptide_of_nucleotide_letters_is_searched_as_the_command_searches_it(bundle, tmp_path):
    """GATTACA is a peptide (a FASTA record counts as DNA from 20 residues on, phylocl.data.fasta.MixCheck): the
    searcher refused it as DNA where `phylocl search --index` searches it; a 21-nt query is still refused."""
    queries = _queries()[:1] + [("pep", "GATTACA"), ("pep2", "ACGTTGCAN")]
    fasta, out = write_fasta(tmp_path / "q.fasta", queries), tmp_path / "hits.tsv"
    assert main(["search", "--query", str(fasta), "--index", str(bundle), "-k", "3", "--evalue", "1000",
                 "--threads", "1", "-o", str(out), "--quiet"]) == 0
    buf = io.StringIO()
    Searcher(index=bundle, k=3, evalue=1000, threads=1).write(queries, buf)
    assert buf.getvalue() == "".join(out.read_text().splitlines(keepends=True)[1:])  # the command's lines
    assert "\npep\t" in buf.getvalue()  # the peptide has hits (E-value <= 1000)
    with pytest.raises(InputError, match="query 'nt' looks like DNA"):
        Searcher(index=bundle, k=3, threads=1).search([("nt", "ACGTACGTACGTACGTAACGT")])
