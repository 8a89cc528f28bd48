"""Hit lists from FAISS output and from tabular files (MMseqs2 / DIAMOND / plain TSV)."""

from __future__ import annotations

import numpy as np
import pytest

from phylocl.errors import InputError
from phylocl.retrieval.hits import BLAST_TAB, HitLists, hits_from_search, read_hits_tsv, write_hits_tsv
from phylocl.retrieval.metrics import score_hits

QIDS = ["q1", "q2", "q3"]
DBIDS = ["d0", "d1", "d2"]


def test_from_search_drops_missing_entries():
    scores = np.array([[0.9, 0.5, -np.inf], [0.7, -np.inf, -np.inf]], dtype=np.float32)
    idx = np.array([[2, 0, -1], [1, -1, -1]])
    h = hits_from_search(scores, idx)
    assert h.n_queries == 2 and h.offsets.tolist() == [0, 2, 3]
    t, s = h.query(0)
    assert t.tolist() == [2, 0] and s == pytest.approx([0.9, 0.5])
    assert h.query(1)[0].tolist() == [1]


def test_from_lists_and_validation():
    h = HitLists.from_lists([([1, 2], [0.3, 0.2]), ([], [])])
    assert h.offsets.tolist() == [0, 2, 2] and h.query(1)[0].size == 0
    with pytest.raises(ValueError, match="offsets"):
        HitLists(offsets=np.array([0, 3]), targets=np.array([1]), scores=np.array([0.1]))
    with pytest.raises(ValueError, match=">= 0"):
        HitLists.from_lists([([-1], [0.1])])
    with pytest.raises(ValueError, match="same"):
        hits_from_search(np.zeros((2, 3)), np.zeros((2, 2), dtype=int))


def test_plain_tsv_with_header_comments_and_missing_query(tmp_path):
    p = tmp_path / "hits.tsv"
    p.write_text("query\ttarget\tscore\n# a comment\nq2\td1\t5\nq1\td2\t7.5\n\nq1\td0\t1e1\n")
    h = read_hits_tsv(p, query_ids=QIDS, db_ids=DBIDS)
    assert h.n_queries == 3
    assert h.query(0)[0].tolist() == [2, 0] and h.query(0)[1].tolist() == [7.5, 10.0]  # file order kept
    assert h.query(1)[0].tolist() == [1]
    assert h.query(2)[0].size == 0  # q3 absent from the file: no hits


def test_blast_tabular_layout_and_evalue_ranking(tmp_path):
    p = tmp_path / "m8.tsv"
    row = "{q}\t{t}\t90.0\t100\t10\t0\t1\t100\t1\t100\t{e}\t{b}\n"
    p.write_text(row.format(q="q1", t="d0", e="1e-30", b="120") + row.format(q="q1", t="d1", e="1e-5", b="40"))
    by_bits = read_hits_tsv(p, query_ids=QIDS, db_ids=DBIDS, **BLAST_TAB)
    assert by_bits.query(0)[1].tolist() == [120.0, 40.0]
    by_evalue = read_hits_tsv(p, query_ids=QIDS, db_ids=DBIDS, score_col=10, higher_is_better=False)
    assert by_evalue.query(0)[1].tolist() == [-1e-30, -1e-5]  # negated: the smaller E-value scores higher


def test_unknown_ids_error_with_line_or_are_skipped(tmp_path):
    p = tmp_path / "hits.tsv"
    p.write_text("q1\td0\t1\nq1\tdX\t2\nqX\td1\t3\n")
    with pytest.raises(InputError, match="target id 'dX'") as err:
        read_hits_tsv(p, query_ids=QIDS, db_ids=DBIDS)
    assert err.value.line == 2 and err.value.path == str(p)
    h = read_hits_tsv(p, query_ids=QIDS, db_ids=DBIDS, unknown="ignore")
    assert h.targets.tolist() == [0]


@pytest.mark.parametrize("text, message, line", [
    ("q1\td0\n", "at least 3", 1),
    ("q1\td0\t1\nq1\td1\tabc\n", "not a number", 2),
    ("q1\td0\tnan\n", "not finite", 1),
])
def test_malformed_lines(tmp_path, text, message, line):
    p = tmp_path / "bad.tsv"
    p.write_text(text)
    with pytest.raises(InputError, match=message) as err:
        read_hits_tsv(p, query_ids=QIDS, db_ids=DBIDS)
    assert err.value.line == line


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        read_hits_tsv(tmp_path / "nope.tsv", query_ids=QIDS, db_ids=DBIDS)


def test_tsv_and_in_memory_hits_score_the_same(tmp_path):
    rng = np.random.default_rng(0)
    db_labels = ["A", "A", "B", "B", None]
    db_ids = [f"d{i}" for i in range(5)]
    lists = [(rng.integers(0, 5, 4), rng.random(4).round(2)) for _ in range(4)]
    qids, qlabels = ["d0", "d1", "d2", "d3"], ["A", "A", "B", "B"]
    p = tmp_path / "hits.tsv"
    p.write_text("".join(f"{q}\t{db_ids[t]}\t{s}\n" for q, (ts, ss) in zip(qids, lists) for t, s in zip(ts, ss)))
    from_file = read_hits_tsv(p, query_ids=qids, db_ids=db_ids)
    a = score_hits(from_file, qlabels, db_labels, ks=(1, 2), query_ids=qids, db_ids=db_ids)
    b = score_hits(HitLists.from_lists(lists), qlabels, db_labels, ks=(1, 2), query_ids=qids, db_ids=db_ids)
    assert a == b


def test_written_search_results_read_back_exactly(tmp_path):
    rng = np.random.default_rng(1)
    scores = np.sort(rng.random((3, 4)).astype(np.float32), axis=1)[:, ::-1]
    indices = np.array([[2, 0, 1, -1], [1, 2, 0, -1], [0, 1, -1, -1]])
    p = write_hits_tsv(tmp_path / "out" / "hits.tsv", QIDS, DBIDS, scores, indices, db_labels=["A", "B", "C"])
    lines = p.read_text().splitlines()
    assert lines[0] == "query\ttarget\tscore\trank\ttarget_label"
    assert lines[1].split("\t")[0:2] == ["q1", "d2"] and lines[1].endswith("\t1\tC")
    assert len(lines) == 1 + 3 + 3 + 2
    back = read_hits_tsv(p, query_ids=QIDS, db_ids=DBIDS)
    want = hits_from_search(scores, indices)
    np.testing.assert_array_equal(back.targets, want.targets)
    np.testing.assert_array_equal(back.scores.astype(np.float32), want.scores.astype(np.float32))
    with pytest.raises(ValueError, match="queries"):
        write_hits_tsv(tmp_path / "x.tsv", QIDS[:2], DBIDS, scores, indices)
    assert not (tmp_path / "x.tsv").exists()


def test_ids_starting_with_hash_are_hits_not_comments(tmp_path):
    p = tmp_path / "hits.tsv"
    p.write_text("# BLASTP 2.14\n# Fields: query, subject, bitscore\n#q\t#d\t5\nq1\t#d\t7\n")
    h = read_hits_tsv(p, query_ids=["#q", "q1"], db_ids=["#d", "d1"])
    assert h.query(0)[0].tolist() == [0] and h.query(0)[1].tolist() == [5.0]
    assert h.query(1)[0].tolist() == [0] and h.query(1)[1].tolist() == [7.0]


def test_written_cosines_are_clipped_to_one(tmp_path):
    """Identical unit rows summed in float32 can give 1.00000012; the written score is a cosine, at most 1."""
    scores = np.array([[np.float32(1.0) + np.float32(1.2e-7), 0.5]], dtype=np.float32)
    path = write_hits_tsv(tmp_path / "h.tsv", ["q"], ["a", "b"], scores, np.array([[0, 1]]))
    assert [line.split("\t")[2] for line in path.read_text().splitlines()[1:]] == ["1", "0.5"]


def test_read_hits_keep_the_file_order_inside_each_query_over_many_interleaved_lines(tmp_path):
    """Mutation audit: hits are grouped by query with a stable sort, so each query's hits stay in file order
    (a tool's own ranking), however many lines are interleaved; reference: a loop over the lines."""
    rng = np.random.default_rng(3)
    qids, dids = [f"q{i}" for i in range(5)], [f"d{j}" for j in range(60)]
    lines = [(qids[int(rng.integers(5))], dids[int(rng.integers(60))], float(rng.integers(0, 4))) for _ in range(400)]
    path = tmp_path / "hits.tsv"
    path.write_text("".join(f"{q}\t{t}\t{s}\n" for q, t, s in lines))
    got = read_hits_tsv(path, query_ids=qids, db_ids=dids)
    for i, q in enumerate(qids):
        targets, scores = got.query(i)
        want = [(int(t[1:]), s) for qq, t, s in lines if qq == q]
        assert list(zip(targets.tolist(), scores.tolist())) == want
