"""phylocl.align against NCBI BLAST+ (skipped when blastp/blastn are not installed; CI: apt-get install ncbi-blast+).

Tolerances: raw scores exact; lambda, K, H as printed by blastp (3 significant digits); E-values within 4%
(blastp prints 2-3 significant digits: 1.3 for 1.265) with composition-based statistics and SEG filtering off, which BLASTP
applies by default and phylocl does not; bit scores within 0.1 (blastp prints one decimal; above 100 none, so within 1).
"""

from __future__ import annotations

import math
import random
import shutil
import subprocess

import pytest

from phylocl.align import align_candidates, scoring_system
from phylocl.align.scoring import DNA_PARAMS, PROTEIN_PARAMS

pytestmark = pytest.mark.skipif(shutil.which("blastp") is None or shutil.which("blastn") is None,
                                reason="NCBI BLAST+ not installed (apt-get install ncbi-blast+)")
AA = "ACDEFGHIKLMNPQRSTVWY"


def _fasta(path, seqs):
    path.write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(seqs)))
    return path


def _gapped_params(out: str) -> tuple[float, float, float]:
    block = out[out.index("\nGapped\n") + 1:]
    lam, k, h = block.splitlines()[2].split()[:3]
    return float(lam), float(k), float(h)


@pytest.mark.parametrize("key", [k for k in PROTEIN_PARAMS if k[0] == "BLOSUM62" or k[1:] in ((10, 1), (9, 1),
                                                                                                 (14, 2))])
def test_tabulated_parameters_are_blastps(tmp_path, key):
    matrix, go, ge = key
    q = _fasta(tmp_path / "q.fa", ["MKVLAAGIVGLLLAWPQRSTVVEEKKLLMNPQRSTWYACDEFGHIKLMNPQ"])
    out = subprocess.run(["blastp", "-query", str(q), "-subject", str(q), "-matrix", matrix, "-gapopen", str(go),
                          "-gapextend", str(ge), "-comp_based_stats", "0", "-seg", "no"],
                         capture_output=True, text=True, check=True).stdout
    lam, k, h = _gapped_params(out)
    want = PROTEIN_PARAMS[key]
    assert (lam, k, h) == pytest.approx(want[:3], rel=0.02)


@pytest.mark.parametrize("key", sorted(DNA_PARAMS))
def test_dna_parameters_are_blastns(tmp_path, key):
    _, go, ge = key
    q = _fasta(tmp_path / "q.fa", ["ACGTTGCAAGCTTGACCGTAGGCTAGCTAGGATCGATCGGATCGATTTAGCGGCG"])
    out = subprocess.run(["blastn", "-task", "blastn", "-query", str(q), "-subject", str(q), "-reward", "2",
                          "-penalty", "-3", "-gapopen", str(go), "-gapextend", str(ge)],
                         capture_output=True, text=True, check=True).stdout
    assert _gapped_params(out) == pytest.approx(DNA_PARAMS[key][:3], rel=0.005)
    assert DNA_PARAMS[key][3] == pytest.approx(DNA_PARAMS[key][0] / DNA_PARAMS[key][2], abs=0.015)  # alpha ~ L / H (2 digits)


def _mutate(rng, s, rate):
    out = []
    for c in s:
        r = rng.random()
        out.append(rng.choice(AA) if r < rate else ("" if r < 1.15 * rate else c))
    return "".join(out)


def test_scores_and_evalues_match_blastp(tmp_path):
    rng = random.Random(5)
    base = ["".join(rng.choice(AA) for _ in range(rng.randint(60, 300))) for _ in range(6)]
    queries = [_mutate(rng, b, 0.4) for b in base]
    db = [_mutate(rng, b, r) for b in base for r in (0.3, 0.5)] + \
         ["".join(rng.choice(AA) for _ in range(200)) for _ in range(20)]
    qf, df = _fasta(tmp_path / "q.fa", queries), _fasta(tmp_path / "d.fa", db)
    # a real database (with -subject BLAST gives every subject its own search space)
    subprocess.run(["makeblastdb", "-in", str(df), "-dbtype", "prot", "-out", str(tmp_path / "db")],
                   capture_output=True, check=True)
    out = subprocess.run(["blastp", "-query", str(qf), "-db", str(tmp_path / "db"), "-comp_based_stats", "0", "-seg", "no",
                          "-evalue", "1000", "-max_hsps", "1", "-outfmt", "6 qseqid sseqid score evalue bitscore"],
                         capture_output=True, text=True, check=True).stdout
    blast = {}
    for line in out.splitlines():
        q, s, score, ev, bits = line.split("\t")
        blast[(int(q[1:]), int(s[1:]))] = (int(score), float(ev), float(bits))
    hits = align_candidates(queries, db, [list(range(len(db)))] * len(queries), scoring=scoring_system(),
                            evalue=math.inf)
    checked = 0
    for qi in range(len(queries)):
        for t, raw, bits, ev in zip(*hits.query(qi)):
            if (qi, int(t)) not in blast or ev > 100:
                continue  # BLAST's heuristic seeds miss some weak pairs; the Smith-Waterman score bounds its
            b_score, b_ev, b_bits = blast[(qi, int(t))]
            assert raw >= b_score  # an exhaustive local alignment scores at least BLAST's gapped extension
            if raw == b_score:
                assert ev == pytest.approx(b_ev, rel=0.04, abs=1e-180), (qi, int(t))
                assert bits == pytest.approx(b_bits, abs=0.1 if b_bits < 100 else 1.0)  # "121" above 100
                checked += 1
    assert checked >= 12
