"""benchmarks/peers.py: aligner output parsed into hit lists and scored by hand-checked numbers, versions, command
lines, subsampling; one tiny real run per installed aligner (skipped when it is absent)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def peers():
    spec = importlib.util.spec_from_file_location("peers_bench", REPO / "benchmarks" / "peers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["peers_bench"] = module
    spec.loader.exec_module(module)
    return module


IDS = ["a1", "a2", "a3", "b1", "b2"]
FAMILIES = ["A", "A", "A", "B", "B"]


def _m8(rows):
    """BLAST tabular lines: query target pident length mismatch gapopen qstart qend sstart send evalue bits."""
    return "".join(f"{q}\t{t}\t90.0\t100\t5\t0\t1\t100\t1\t100\t{e}\t{b}\n" for q, t, e, b in rows)


def test_tabular_hits_are_parsed_ranked_and_scored(tmp_path, peers):
    path = tmp_path / "hits.m8"
    path.write_text(_m8([
        ("a1", "a1", "1e-80", 300.0),  # self hit: dropped
        ("a1", "b1", "1e-30", 120.0),  # false positive above ...
        ("a1", "a2", "1e-50", 200.0),  # ... the best true positive? no: ranked by bit score, a2 first
        ("a1", "a3", "1e-30", 120.0),  # ties b1 at 120: non-relevant ranks first
        ("a1", "a2", "1e-10", 50.0),  # a second HSP of a2: the best copy counts
        ("b1", "a1", "1e-5", 40.0),
        ("b1", "b2", "1e-3", 30.0),
    ]))
    hits = peers.read_tool_hits(path, IDS, score="bitscore")
    assert hits.n_queries == 5 and list(np.diff(hits.offsets)) == [5, 0, 0, 2, 0]
    t, s = hits.query(0)
    assert [IDS[i] for i in t] == ["a1", "b1", "a2", "a3", "a2"] and list(s) == [300, 120, 200, 120, 50]
    m = peers.score_tool_hits(hits, IDS, FAMILIES, None, ks=(1, 2))
    # a1 (R = 2): ranking a2 (TP), b1 (FP, tie first), a3 (TP) -> top1 1, recall@2 1/2, MAP@R (1 + 0)/2, AUC1 1/2
    # b1 (R = 1): a1 (FP), b2 (TP) -> top1 0, recall@2 1, MAP@R 0, AUC1 0; a2, a3, b2: no hits -> all 0
    assert m["n_queries"] == 5
    assert m["top1"] == pytest.approx(1 / 5) and m["recall@2"] == pytest.approx((0.5 + 1) / 5)
    assert m["map_r"] == pytest.approx(0.5 / 5) and m["auc1"] == pytest.approx(0.5 / 5)
    # ranked by -E-value instead: for b1 the 1e-5 hit still beats 1e-3
    by_e = peers.read_tool_hits(path, IDS, score="evalue")
    assert list(by_e.query(3)[1]) == [-1e-5, -1e-3]
    with pytest.raises(ValueError, match="bitscore or evalue"):
        peers.read_tool_hits(path, IDS, score="pident")


def test_group_level_and_unknown_ids(tmp_path, peers):
    path = tmp_path / "hits.m8"
    path.write_text(_m8([("a1", "b1", "1e-30", 120.0), ("a1", "zz", "1", 10.0)]))
    from phylocl.errors import InputError

    with pytest.raises(InputError, match=r"hits\.m8:2: target id 'zz'"):
        peers.read_tool_hits(path, IDS)
    path.write_text(_m8([("a1", "b1", "1e-30", 120.0)]))
    m = peers.score_tool_hits(peers.read_tool_hits(path, IDS), IDS, FAMILIES, ["G"] * 5, ks=(1,))
    assert m["top1"] == pytest.approx(1 / 5)  # b1 shares a1's group: relevant at the group level
    assert [r["family"] for r in m["per_family"]] == ["A", "B"]


def test_versions_commands_and_skips(tmp_path, peers, monkeypatch):
    assert peers.parse_version("mmseqs", "14-7e284+ds-1+b2\n") == "14-7e284+ds-1+b2"
    assert peers.parse_version("diamond", "diamond version 2.1.3\n") == "2.1.3"
    f, out, work = tmp_path / "s.fa", tmp_path / "o.m8", tmp_path
    mm = peers.aligner_commands("mmseqs", f, out, work, alphabet="dna", threads=2, n=500)
    assert mm[0][:2] == ["mmseqs", "easy-search"] and mm[0][mm[0].index("--search-type") + 1] == "3"
    assert mm[0][mm[0].index("--max-seqs") + 1] == "500" and mm[0][mm[0].index("-s") + 1] == "7.5"
    prot = peers.aligner_commands("mmseqs", f, out, work, alphabet="protein", threads=2, n=500)
    assert prot[0][prot[0].index("--search-type") + 1] == "1"
    dm = peers.aligner_commands("diamond-ultra", f, out, work, alphabet="protein", threads=1, n=9)
    assert dm[0][:2] == ["diamond", "makedb"] and "--ultra-sensitive" in dm[1]
    assert dm[1][dm[1].index("--max-target-seqs") + 1] == "9" and dm[1][dm[1].index("--evalue") + 1] == "10.0"
    with pytest.raises(ValueError, match="protein-only"):
        peers.aligner_commands("diamond", f, out, work, alphabet="dna", threads=1, n=9)
    extra = peers.aligner_commands("mmseqs", f, out, work, alphabet="dna", threads=2, n=5, extra=["-k", "0"])
    assert extra[0][-2:] == ["-k", "0"]
    assert peers.split_tool("mmseqs:-k 0 --zdrop 80") == ("mmseqs", ["-k", "0", "--zdrop", "80"])
    assert peers.split_tool("diamond") == ("diamond", []) and peers.split_tool("kmer:3") == ("kmer:3", [])
    assert "DNA" in peers.skip_reason("diamond", "dna")
    monkeypatch.setattr(peers.shutil, "which", lambda exe: None)
    assert peers.skip_reason("mmseqs", "protein") == "mmseqs is not installed (not on PATH)"
    assert peers.tool_version("mmseqs") is None


def test_subsample_keeps_whole_families(peers, make_dataset):
    fams = {f"F{i}": ["MKV" + "A" * i] * (i % 4 + 1) for i in range(12)}
    ds = make_dataset(fams)
    small = peers.subsample(ds, 10, seed=1)
    assert len(small) <= 10 and len(small) >= 7
    sizes = {f: small.families.count(f) for f in set(small.families)}
    assert all(n == len(fams[f]) for f, n in sizes.items())  # never a partial family
    assert peers.subsample(ds, 10, seed=1).ids == small.ids and peers.subsample(ds, 10**6, seed=1) is ds


@pytest.mark.parametrize("tool", [pytest.param("mmseqs", marks=pytest.mark.slow), "diamond"])  # mmseqs: ~5 s
def test_tiny_real_run(tmp_path, peers, capsys, tool):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed")
    rng = np.random.default_rng(0)
    aa = list("ACDEFGHIKLMNPQRSTVWY")
    rows = []
    for f in range(3):
        root = rng.choice(aa, size=120)
        for m in range(3):
            s = root.copy()
            hit = rng.random(120) < 0.15
            s[hit] = rng.choice(aa, size=int(hit.sum()))
            rows.append((f"f{f}_{m}", f"fam{f}", "".join(s)))
    (tmp_path / "sequences.fasta").write_text("".join(f">{i}\n{s}\n" for i, _, s in rows))
    clan = {"fam0": "c0", "fam1": "c0", "fam2": "c1"}
    (tmp_path / "labels.tsv").write_text("sequence_id\tfamily_id\tclan\n"
                                         + "".join(f"{i}\t{f}\t{clan[f]}\n" for i, f, _ in rows))
    assert peers.main(["--data", str(tmp_path), "--tools", tool, "--threads", "1", "-k", "1", "2",
                       "--sensitivity", "4", "--group-column", "family,clan"]) == 0
    fam, cl = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert fam["tool"] == tool and fam["n_queries"] == 9 and fam["version"] and fam["n_hits"] == cl["n_hits"]
    assert fam["top1"] == 1.0 and fam["map_r"] == 1.0 and fam["recall@2"] == 1.0  # 85% identity: trivially found
    row = fam
    # clan level: fam0/fam1 queries have R = 5, fam2 queries R = 2; unrelated random families are not found
    assert (fam["level"], cl["level"]) == ("family", "clan") and cl["top1"] == 1.0 and cl["map_r"] < 1.0
    assert "WORK/set.fasta" in row["command"] and "peers." not in row["command"]  # no temporary path shown
