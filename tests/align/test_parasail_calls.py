"""parasail's C functions called directly: the scoring system's matrix made without the ``parasail`` bindings scores
as the bindings' matrix does, and a search's start imports no bindings."""

from __future__ import annotations

import ctypes
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from phylocl.align import scoring_system
from phylocl.align.parasail_calls import CMatrix, library_path, parasail_calls

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("alphabet", ["protein", "dna"])
def test_c_matrix_scores_as_the_bindings_matrix(alphabet):
    import parasail

    scoring = scoring_system(alphabet)
    theirs = parasail.matrix_create(scoring.letters, 0, 0)  # what the scoring system made before
    for i in range(len(scoring.letters)):
        for j in range(len(scoring.letters)):
            theirs.set_value(i, j, scoring.scores[i][j])
    c = parasail_calls()
    mine = CMatrix(c, scoring.letters, scoring.scores)
    n = len(scoring.letters)
    assert theirs.matrix[:n, :n].tolist() == [list(r) for r in scoring.scores]  # (plus parasail's extra row)
    rng = np.random.default_rng(0)
    letters = scoring.letters
    for _ in range(40):
        a, b = ("".join(rng.choice(list(letters), rng.integers(1, 120))).encode() for _ in range(2))
        scores = []
        for m in (ctypes.cast(theirs.pointer, ctypes.c_void_p).value, mine.address):
            r = c.striped[2](a, len(a), b, len(b), scoring.gap_open + scoring.gap_extend, scoring.gap_extend, m)
            scores.append(ctypes_score(r))
            c.result_free(r)
        assert scores[0] == scores[1]


def ctypes_score(result) -> int:
    from phylocl.align.parasail_calls import Result

    return ctypes.cast(result, ctypes.POINTER(Result)).contents.score


def test_the_library_is_the_packages_own():
    import parasail

    assert Path(library_path()).resolve() == Path(parasail.bindings_v2._lib._name).resolve()


def test_scoring_and_tracing_import_no_parasail_bindings():
    code = ("import sys\n"
            "from phylocl.align import scoring_system\n"
            "from phylocl.align.traceback import trace_alignment\n"
            "s = scoring_system()\n"
            "a = trace_alignment('MKVLAAGIWW', 'MKVLAGIWW', s)\n"
            "print(a.score, 'parasail' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    score, imported = out.stdout.split()
    assert int(score) > 0 and imported == "False"
