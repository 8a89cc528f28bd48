"""``phylocl train`` trust (issue 25): checkpoints never run code (defect 1), a diverged run is not exported
(defect 2), a killed run is not silently started over and a finished one is not rewritten (defect 8); the export is a
``save_pretrained`` model folder, and old ``encoder.pt`` runs still load (issue 26, item 5)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from phylocl.cli import main
from phylocl.config import load_config
from phylocl.configtools import to_dict
from phylocl.workflows.run_folder import write_config

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "datasets" / "example-mini-mit" / "protein"
SETS = ["model.name=gmlp-tiny", f"data.path={EXAMPLE}", "data.max_len=48", "data.batch_size=4",
        "data.fractions=[0.6,0.2,0.2]", "trainer.max_steps=4", "trainer.val_every_n_steps=2",
        "trainer.log_every_n_steps=1", "optim.warmup_steps=1"]


def _args(out, *extra, sets=SETS):
    args = ["train", "--out", str(out), "--quiet"]
    for s in list(sets) + list(extra):
        args += ["--set", s]
    return args


def _refused(capsys, argv, *needles):
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    return err


class _Evil:
    """Unpickling it opens (creates) the file ``marker``: code run by a checkpoint."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _run_folder_with(out: Path, name: str, payload) -> None:
    """A run folder as a killed run leaves it (config.yaml, checkpoints/NAME), with ``payload`` as the checkpoint."""
    (out / "checkpoints").mkdir(parents=True)
    write_config(out, to_dict(load_config(None, SETS)))
    torch.save(payload, out / "checkpoints" / name)


# ------------------------------------------------------------------------------------- defect 1: no code on resume
@pytest.mark.parametrize("name", ["last.ckpt", "interrupted.ckpt"])
def test_resume_from_a_crafted_checkpoint_runs_no_code(tmp_path, capsys, name):
    out, marker = tmp_path / "run", tmp_path / "pwned"
    _run_folder_with(out, name, {"state_dict": {}, "epoch": 0, "global_step": 1, "x": _Evil(marker)})
    _refused(capsys, ["train", "--resume", "--out", out, "--quiet"], name, "refusing to load")
    assert not marker.exists()  # the pickle's code never ran


def test_a_real_checkpoint_loads_weights_only(tmp_path):
    from phylocl.training.checkpoints import load_checkpoint

    out = tmp_path / "run"
    assert main(_args(out)) == 0
    state = load_checkpoint(out / "checkpoints" / "last.ckpt")
    assert state["global_step"] == 4 and "state_dict" in state


def test_every_load_in_the_package_is_data_only():
    """No ``torch.load(weights_only=False)``, ``pickle``, ``np.load(allow_pickle=True)`` or ``yaml.load`` in
    phylocl/: each file phylocl reads is read as data."""
    import re

    bad = re.compile(r"weights_only\s*=\s*False|allow_pickle\s*=\s*True|\byaml\.(?:load|unsafe_load|full_load)\(|"
                     r"\bimport pickle\b|\bpickle\.loads?\(|\bnp\.load\((?![^)]*allow_pickle=False)")
    hits = [f"{p.relative_to(REPO)}:{i}" for p in (REPO / "phylocl").rglob("*.py")
            for i, line in enumerate(p.read_text().splitlines(), 1) if bad.search(line)]
    assert hits == []
