"""Shared helpers of the `phylocl train` command-line tests (test_train_faults.py, test_train_trust.py)."""

from __future__ import annotations

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
