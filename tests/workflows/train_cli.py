"""Shared helpers of the `phylocl train` command-line tests (test_train_faults.py, test_train_trust.py,
test_resume_interrupted.py, test_train_resume.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from phylocl.cli import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "datasets" / "example-mini-mit" / "protein"


def tiny_sets(*, steps: int, val_every: int, warmup: int) -> list[str]:
    """``--set`` values of a gmlp-tiny run on the bundled families, ``steps`` long."""
    return ["model.name=gmlp-tiny", f"data.path={EXAMPLE}", "data.max_len=48", "data.batch_size=4",
            "data.fractions=[0.6,0.2,0.2]", f"trainer.max_steps={steps}", f"trainer.val_every_n_steps={val_every}",
            "trainer.log_every_n_steps=1", f"optim.warmup_steps={warmup}"]


def train_args(out, sets, *extra) -> list[str]:
    """``phylocl train --out OUT --quiet --set ...`` with ``sets`` then ``extra``."""
    args = ["train", "--out", str(out), "--quiet"]
    for s in list(sets) + list(extra):
        args += ["--set", s]
    return args


def refused(capsys, argv, *needles) -> str:
    """Run ``phylocl argv``; assert exit 2, one line on stderr, no traceback, each of ``needles`` in it."""
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    return err


def run_killed(out, sets, *, method: str, when: str) -> None:
    """Train ``sets`` into ``out`` in a child process that dies as ``kill -9`` would (``os._exit(9)``: no handler, no
    checkpoint) in the first call of ``ContrastiveModule.<method>`` for which ``when`` (Python text over ``self`` and
    the call's positional ``args``) is true."""
    import torch

    # the child sums on as many threads as this process (other tests may have changed its OpenMP count, e.g.
    # FAISS's set_num_threads), else its rows differ by 1e-7 from a reference trained here
    code = (f"import torch; torch.set_num_threads({torch.get_num_threads()})\n"
            "import os, sys; sys.path.insert(0, sys.argv[1]); from phylocl.cli import main; "
            f"from phylocl.training import module as m; real = m.ContrastiveModule.{method}\n"
            "def killed(self, *args, **kwargs):\n"
            f"    if {when}: os._exit(9)\n"
            "    return real(self, *args, **kwargs)\n"
            f"m.ContrastiveModule.{method} = killed; main(sys.argv[2:])")
    here = os.path.dirname(os.path.abspath(__file__))
    run = subprocess.run([sys.executable, "-c", code, here, *map(str, train_args(out, sets))], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert run.returncode == 9, run.stderr[-2000:]
