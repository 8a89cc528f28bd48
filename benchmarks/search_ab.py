"""Two checkouts' ``phylocl search`` on the same index and queries, interleaved, beside MMseqs2 with a prepared index.

    python benchmarks/search_ab.py --base /tmp/start --index work/db-100000-default-protein.index \\
        --queries 'work/queries-{n}.fasta' --counts 1 10 100 500 --mmseqs-db work/db-100000.mmseqs --passes 3

``--base`` is another checkout's folder (e.g. a ``git archive`` of the commit to compare against, unpacked); the
new side is this checkout (``--new``). Each pass runs, for each query count ``n``: MMseqs2 (``mmseqs easy-search
--max-seqs 10`` against the ``createindex``'d ``--mmseqs-db``, a fresh temporary folder; skipped without it), the
base, then the new code: ``phylocl search --query Q --index I -k 10 --threads T --quiet`` as a fresh process (start-up,
model and index loading included) from the checkout's own folder with ``PYTHONPATH`` set to it, so each side runs
its own code with this interpreter. Prints one JSON object per run (``pass``, ``queries``, ``side``, ``wall_s``,
``user_s``, ``sys_s``, ``peak_rss_mb``) and, at the end, one per query count saying whether the two sides' hits files
of the last pass are the same bytes (they must be, for a change that claims the same output). Compile the bytecode
of both sides first (``python -m compileall -q phylocl``) when ``PYTHONDONTWRITEBYTECODE`` is set.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = "from phylocl.cli import main; raise SystemExit(main())"


def timed(cmd: list[str], *, cwd: Path | None = None, env: dict | None = None) -> dict:
    """Run ``cmd`` to the end; wall seconds, CPU seconds and peak RSS of the process (``os.wait4``)."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        if code:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd[:3])} ... failed ({code}): {err.read().decode(errors='replace')[-400:]}")
    return {"wall_s": round(wall, 3), "user_s": round(usage.ru_utime, 2), "sys_s": round(usage.ru_stime, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def phylocl_search(tree: Path, queries: Path, index: Path, out: Path, threads: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS=str(threads))
    return timed([sys.executable, "-c", CLI, "search", "--query", str(queries), "--index", str(index), "-k", "10",
                  "-o", str(out), "--threads", str(threads), "--quiet"], cwd=tree, env=env)


def mmseqs_search(queries: Path, db: Path, threads: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="search-ab-mmseqs-"))
    try:
        return timed(["mmseqs", "easy-search", str(queries), str(db), str(tmp / "hits.tsv"), str(tmp / "tmp"),
                      "--max-seqs", "10", "--threads", str(threads), "-v", "1"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base", type=Path, required=True, help="the other checkout's folder")
    p.add_argument("--new", type=Path, default=Path(__file__).resolve().parents[1], help="default: this checkout")
    p.add_argument("--index", type=Path, required=True, help="phylocl index bundle both sides search")
    p.add_argument("--base-index", type=Path, help="the base side's bundle, if it needs another (default --index)")
    p.add_argument("--queries", required=True, help="query FASTA; '{n}' is replaced by each --counts value")
    p.add_argument("--counts", type=int, nargs="+", default=[1])
    p.add_argument("--mmseqs-db", type=Path, help="MMseqs2 database with `mmseqs createindex` done")
    p.add_argument("--passes", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "search-ab", help="hits files")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for pas in range(1, args.passes + 1):
        for n in args.counts:
            queries = Path(args.queries.replace("{n}", str(n)))
            runs = [("mmseqs", lambda: mmseqs_search(queries, args.mmseqs_db, args.threads))] if args.mmseqs_db else []
            runs += [(side, lambda side=side, tree=tree, index=index: phylocl_search(
                tree, queries, index, args.out / f"{side}-{n}.tsv", args.threads))
                for side, tree, index in (("base", args.base, args.base_index or args.index),
                                          ("new", args.new, args.index))]
            for side, run in runs:
                print(json.dumps({"pass": pas, "queries": n, "side": side, **run(),
                                  "load": round(os.getloadavg()[0], 2)}), flush=True)
    for n in args.counts:
        same = filecmp.cmp(args.out / f"base-{n}.tsv", args.out / f"new-{n}.tsv", shallow=False)
        print(json.dumps({"queries": n, "same_bytes": same}), flush=True)


if __name__ == "__main__":
    main()
