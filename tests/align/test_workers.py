"""Worker processes of the alignment stage: the same results as one thread, in order, errors raised in the caller."""

from __future__ import annotations

import math

import numpy as np
import pytest

import phylocl.align.workers as workers
from phylocl.align import align_candidates, clean_sequence, scoring_system
from phylocl.align.workers import map_blocks, use_processes
from .test_aligner import _pairs

pytestmark = pytest.mark.skipif(not use_processes(2, workers.MIN_PROCESS_ITEMS), reason="no fork on this platform")


def test_map_blocks_runs_closures_in_forked_processes_in_order():
    import os

    data = list(range(100))  # a closure over the caller's data: inherited by the fork, never pickled
    got = map_blocks(lambda b: (data[b] * 2, os.getpid()), 7, 2, processes=True)
    assert [v for v, _ in got] == [2 * b for b in range(7)]
    assert os.getpid() not in {pid for _, pid in got}
    assert map_blocks(lambda b: b, 3, 2, processes=False) == map_blocks(lambda b: b, 3, 1, processes=True) == [0, 1, 2]
    assert map_blocks(lambda b: b, 0, 2, processes=True) == []
    assert not workers._TASKS  # nothing left behind


def test_an_error_in_a_worker_is_raised_in_the_caller():
    def fail(b):
        if b == 2:
            raise ValueError("query 2: letter '1' cannot be scored")
        return b

    with pytest.raises(ValueError, match="letter '1'"):
        map_blocks(fail, 4, 2, processes=True)
    assert not workers._TASKS


def test_few_pairs_or_one_worker_stay_in_threads(monkeypatch):
    assert not use_processes(1, 10**9) and not use_processes(2, workers.MIN_PROCESS_ITEMS - 1)
    monkeypatch.setenv("PHYLOCL_ALIGN_PROCESSES", "0")
    assert not use_processes(2, 10**9)


@pytest.mark.parametrize("filter_pvalue", [None, 0.02])
def test_processes_align_as_one_thread_does(monkeypatch, filter_pvalue):
    """All-against-all (query_rows, so pairs of two queries scored once within a block) and plain: the hits of
    forked workers are those of one thread, column by column."""
    scoring = scoring_system()
    seqs = [clean_sequence(s, scoring) for p in _pairs(20, seed=31) for s in p]
    n = len(seqs)
    cands = [[j for j in range(n) if j != i] for i in range(n)]
    kw = dict(scoring=scoring, evalue=math.inf, filter_pvalue=filter_pvalue)
    want = align_candidates(seqs, seqs, cands, threads=1, **kw)
    monkeypatch.setattr(workers, "MIN_PROCESS_ITEMS", 1)
    calls = []
    real = workers.map_blocks
    monkeypatch.setattr("phylocl.align.aligner.map_blocks",
                        lambda *a, **k: calls.append(k["processes"]) or real(*a, **k))
    for rows in (None, range(n)):
        got = align_candidates(seqs, seqs, cands, threads=2, query_rows=rows, **kw)
        for f in ("offsets", "targets", "raw", "bits", "evalues", "cand_rank"):
            assert np.array_equal(getattr(got, f), getattr(want, f)), f
        assert got.n_candidates == want.n_candidates
    assert calls == [True] * 4  # the filter, then the scores, in forked workers


@pytest.mark.parametrize("query_rows", [False, True])
def test_processes_trace_as_one_thread_does(monkeypatch, query_rows):
    from phylocl.workflows.search_align import AlignStage

    scoring = scoring_system()
    seqs = [clean_sequence(s, scoring) for p in _pairs(15, seed=32) for s in p]
    n = len(seqs)
    ids = [f"s{i}" for i in range(n)]
    cands = np.array([[j for j in range(n) if j != i] for i in range(n)])
    rows = range(n) if query_rows else None
    import phylocl.workflows.search_align as sa

    monkeypatch.setattr(sa, "TRACE_CHUNK", 16)  # several blocks of pairs
    calls = []
    real = workers.map_blocks
    monkeypatch.setattr(sa, "map_blocks", lambda *a, **k: calls.append((a[1], k["processes"])) or real(*a, **k))
    out = {}
    for threads, floor in ((1, workers.MIN_PROCESS_ITEMS), (2, 1)):
        monkeypatch.setattr(workers, "MIN_PROCESS_ITEMS", floor)
        stage = AlignStage(scoring=scoring, fetch=seqs.__getitem__, db_ids=ids, db_residues=sum(map(len, seqs)),
                           db_sequences=n, k=n, evalue=1e9, out_format="blast6", threads=threads, filter_pvalue=None)
        import io

        f = io.StringIO()
        stage.write(f, ids, seqs, np.zeros(cands.shape), cands, query_rows=rows)
        out[threads] = f.getvalue()
    assert out[1] == out[2] and out[1].count("\n") > n
    assert not calls[0][1] and calls[1][1] and calls[1][0] > 2  # one thread, then forked workers on > 2 blocks


def test_pools_end_cleanly_under_the_command_lines_sigterm_handler():
    """``phylocl``'s command line turns SIGTERM into an exception; forked workers inherited that handler, and a
    pool ended by terminate() could leave one waiting forever (seen once in 3 all-against-all runs). The workers
    now reset it and the pool is closed, not terminated: many pools in a row, in a child process with a deadline."""
    import subprocess
    import sys

    code = ("from phylocl.cli import _sigterm_as_interrupt\n"
            "from phylocl.align.workers import map_blocks\n"
            "with _sigterm_as_interrupt():\n"
            "    for _ in range(30):\n"
            "        assert map_blocks(lambda b: b * b, 6, 2, processes=True) == [b * b for b in range(6)]\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_grouped_tasks_keep_each_key_whole_and_in_position_order():
    rng = np.random.default_rng(3)
    key = rng.integers(0, 40, 1000)
    tasks = workers.grouped_tasks(key, 64)
    groups = [g for task in tasks for g in task]
    assert sorted(np.concatenate(groups).tolist()) == list(range(1000))  # every position once
    assert [int(key[g[0]]) for g in groups] == sorted(set(key.tolist()))  # one group per key, keys in order
    assert all((key[g] == key[g[0]]).all() and (np.diff(g) > 0).all() for g in groups)
    sizes = [sum(map(len, task)) for task in tasks]
    assert all(s >= 64 for s in sizes[:-1]) and all(s - len(t[-1]) < 64 for s, t in zip(sizes, tasks))
    assert workers.grouped_tasks(np.zeros(0, np.int64), 64) == []


def test_a_pool_whose_terminate_hangs_is_given_up_and_its_workers_killed():
    """A worker killed by a process-group SIGTERM can die holding the task queue's lock; Pool.terminate() then
    waited forever (phylocl index hung under `timeout -s TERM`)."""
    import threading
    import time

    from phylocl.align.workers import _terminate

    class Worker:
        exitcode = None
        killed = False

        def kill(self):
            self.killed = True

    class StuckPool:
        def __init__(self):
            self._pool = [Worker(), Worker()]
            self.never = threading.Event()

        def terminate(self):
            self.never.wait()  # the lock a dead worker holds

    pool = StuckPool()
    start = time.perf_counter()
    _terminate(pool, wait=0.2)
    assert time.perf_counter() - start < 2 and all(w.killed for w in pool._pool)
