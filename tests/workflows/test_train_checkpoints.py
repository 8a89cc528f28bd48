"""Checkpoints are written atomically: a write cut short leaves the previous checkpoint whole and no temporary."""

from __future__ import annotations

import pytest
import torch

from phylocl.training.checkpoints import load_checkpoint
from phylocl.workflows.train_checkpoints import AtomicCheckpointIO, StepCheckpoint


def test_a_checkpoint_write_cut_short_leaves_the_previous_one(tmp_path, monkeypatch):
    io, path = AtomicCheckpointIO(), tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "global_step": 4}, path)
    real = torch.save

    def killed(obj, f, *args, **kwargs):  # half the bytes written, then Ctrl-C
        real(obj, f, *args, **kwargs)
        with open(f, "r+b") as fh:
            fh.truncate(fh.seek(0, 2) // 2)
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "global_step": 6}, path)
    assert load_checkpoint(path)["global_step"] == 4
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]


def test_step_checkpoint_refuses_bad_intervals(tmp_path):
    for every, val_every in ((0, 4), (3, 0)):
        with pytest.raises(ValueError, match="must be >= 1"):
            StepCheckpoint(dirpath=tmp_path, every=every, val_every=val_every)
