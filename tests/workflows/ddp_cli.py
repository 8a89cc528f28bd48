"""Run ``phylocl`` on two CPU processes as a user does (``--devices 2``: Lightning starts rank 1 by running the same
script again), with a fault patched in before ``main`` (test_train_trust.py, test_embed_distributed.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

SCRIPT = """\
import datetime, os, sys, time
import torch.distributed as dist

_init = dist.init_process_group
def _short(*args, **kwargs):  # a rank left waiting in a collective fails in seconds, not in Lightning's 30 minutes
    kwargs["timeout"] = datetime.timedelta(seconds={pg_timeout})
    return _init(*args, **kwargs)
dist.init_process_group = _short
from phylocl.workflows.train_checks import launched_rank
{patch}
from phylocl.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def run_ranks(tmp_path, patch: str, argv, *, timeout: float = 150, pg_timeout: int = 20):
    """``(exit code, stderr, seconds)`` of ``phylocl argv`` run as a script in ``tmp_path`` whose lines ``patch``
    (Python, run in every rank before ``main``; ``launched_rank()`` tells the rank) come first. Returns when every
    rank has ended (they share the stderr pipe); the whole session is killed after ``timeout`` seconds."""
    script = tmp_path / "phylocl_with_fault.py"
    script.write_text(SCRIPT.format(patch=patch, pg_timeout=pg_timeout))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(script), *map(str, argv)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # rank 0 and the rank it started, in its session
        _, err = proc.communicate()
        raise AssertionError(f"still running after {timeout} s: {err[-2000:]}") from None
    return proc.returncode, err, time.perf_counter() - started
