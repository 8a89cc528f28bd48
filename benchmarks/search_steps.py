"""Run ``phylocl search`` with wall and CPU timers around its steps; prints the split to stderr at exit.

    OMP_NUM_THREADS=2 python benchmarks/search_steps.py search --query SET.fasta --db SET.fasta -o hits.m8 \
        --format blast6 -k 2800 --evalue 10 --threads 2 --quiet

The arguments are those of ``phylocl search`` (a windowed ``--db`` search: the default path of ``default-protein``).
Each step's CPU is that of this process and of its finished worker processes (``os.times``), so the forked workers
of the filter, the scores and the tracebacks count in their step; ``main process`` is this process alone. Steps:
embedding the database and building its index, the prefilter search, the MSV filter (the alignment stage's first
pool of workers), the Smith-Waterman scores (its second), the tracebacks, and the whole alignment stage with the
writing (``AlignStage.write``). The search's output is the same as without the timers.
"""

from __future__ import annotations

import atexit
import collections
import os
import sys
import time

T0 = time.perf_counter()
_ACC: dict[str, list] = collections.defaultdict(lambda: [0.0, 0.0, 0.0, 0])  # wall, cpu, own cpu, calls


def _cpu() -> tuple[float, float]:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system, t.user + t.system


def _wrap(obj, name: str, label) -> None:
    f = getattr(obj, name)

    def timed(*a, **k):
        w, (c, o) = time.perf_counter(), _cpu()
        try:
            return f(*a, **k)
        finally:
            r = _ACC[label() if callable(label) else label]
            c1, o1 = _cpu()
            r[0] += time.perf_counter() - w
            r[1] += c1 - c
            r[2] += o1 - o
            r[3] += 1

    setattr(obj, name, timed)


def _report() -> None:
    c, o = _cpu()
    print(f"{'start to exit':24s} {time.perf_counter() - T0:7.2f} s wall {c:7.2f} s CPU (main process {o:6.2f})",
          file=sys.stderr)
    for k, (w, c, o, n) in _ACC.items():
        print(f"{k:24s} {w:7.2f} s wall {c:7.2f} s CPU (main process {o:6.2f})  x{n}", file=sys.stderr)


def main() -> None:
    import phylocl.align.aligner as aligner
    import phylocl.workflows.search as search
    import phylocl.workflows.search_align as search_align
    from phylocl.retrieval.windowed import WindowedIndex

    _wrap(search, "_embed_database", "embed database + index")
    _wrap(WindowedIndex, "search", "prefilter search")
    pools = iter(["  MSV filter", "  Smith-Waterman"])  # align_candidates' two pools of workers, in this order
    _wrap(aligner, "map_blocks", lambda: next(pools, "  other pool"))
    _wrap(search_align, "align_candidates", "alignment (scores)")
    _wrap(search_align.AlignStage, "_trace_rows", "tracebacks")
    _wrap(search_align.AlignStage, "write", "alignment stage + output")
    atexit.register(_report)
    from phylocl.cli import main as cli

    sys.argv = ["phylocl", *sys.argv[1:]]
    raise SystemExit(cli())


if __name__ == "__main__":
    main()
