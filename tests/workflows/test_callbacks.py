"""The validation callback: retrieval figures plus effective rank, alignment, uniformity; one collapse warning."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from phylocl.config import load_config
from phylocl.diagnostics.measures import effective_rank
from phylocl.errors import InputError
from phylocl.workflows.callbacks import RetrievalMetrics


class _Module:
    def __init__(self):
        self.logged = {}

    def log(self, name, value, **kwargs):
        self.logged[name] = value


def _epoch(cb, x, labels, step=10):
    trainer = SimpleNamespace(sanity_checking=False, global_step=step, world_size=1)
    module = _Module()
    cb.on_validation_epoch_start(trainer, module)
    for lo in range(0, len(x), 7):
        out = {"embeddings": torch.tensor(x[lo:lo + 7]), "labels": torch.tensor(labels[lo:lo + 7]),
               "index": torch.arange(lo, min(lo + 7, len(x)))}
        cb.on_validation_batch_end(trainer, module, out, None, 0)
    cb.on_validation_epoch_end(trainer, module)
    return module.logged


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_logs_health_with_retrieval_and_warns_once_on_collapse(caplog):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 4)
    collapsed = _unit(np.ones((40, 16)) + 1e-3 * rng.normal(size=(40, 16)))
    cb = RetrievalMetrics(ks=(1,), min_rank_fraction=0.5)
    with caplog.at_level(logging.WARNING, logger="phylocl.workflows.callbacks"):
        logged = _epoch(cb, collapsed, labels)
        _epoch(cb, collapsed, labels, step=20)
    assert {"val/top1", "val/map_r", "val/effective_rank", "val/alignment", "val/uniformity"} <= set(logged)
    assert logged["val/effective_rank"] == pytest.approx(effective_rank(collapsed), rel=1e-6)
    warnings = [r for r in caplog.records if "effective rank" in r.getMessage()]
    assert len(warnings) == 1 and "step 10" in warnings[0].getMessage()


def test_no_warning_for_a_spread_set_or_without_threshold(caplog):
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(10), 4)
    spread = _unit(rng.normal(size=(40, 16)))
    collapsed = _unit(np.ones((40, 16)) + 1e-3 * rng.normal(size=(40, 16)))
    with caplog.at_level(logging.WARNING, logger="phylocl.workflows.callbacks"):
        _epoch(RetrievalMetrics(min_rank_fraction=0.5), spread, labels)  # rank ~13 of min(16, 10) = 10
        _epoch(RetrievalMetrics(min_rank_fraction=None), collapsed, labels)
    assert not [r for r in caplog.records if "effective rank" in r.getMessage()]
    with pytest.raises(ValueError, match="min_rank_fraction"):
        RetrievalMetrics(min_rank_fraction=0.0)


@pytest.mark.parametrize("value", ["0", "1.5", "-0.1"])
def test_config_threshold_is_validated(value):
    with pytest.raises(InputError, match="eval.min_effective_rank_fraction"):
        load_config(None, [f"eval.min_effective_rank_fraction={value}"])
    assert load_config(None, ["eval.min_effective_rank_fraction=null"]).eval.min_effective_rank_fraction is None


def test_a_warning_after_the_cli_stderr_was_closed_still_goes_out(monkeypatch, capsys, tmp_path):
    """The CLI's log handler follows sys.stderr; a stream closed since (e.g. an earlier capture) is not flushed."""
    from phylocl.console import configure_logging

    old = open(tmp_path / "stderr.txt", "w")  # noqa: SIM115 (closed by hand below, like a finished capture)
    monkeypatch.setattr("sys.stderr", old)
    configure_logging("train")
    logging.getLogger("phylocl.workflows.callbacks").warning("first")
    old.close()
    monkeypatch.undo()
    logging.getLogger("phylocl.workflows.callbacks").warning("second")
    assert "phylocl train: second" in capsys.readouterr().err


def test_step_progress_logs_plain_lines_without_a_terminal(caplog, monkeypatch):
    """Issue 25: with no terminal (a log file) training printed nothing for minutes; now a line every interval."""
    import io
    import logging
    import types

    import phylocl.workflows.callbacks as callbacks
    from phylocl.workflows.callbacks import StepProgress

    clock = [100.0]
    monkeypatch.setattr(callbacks.time, "monotonic", lambda: clock[0])
    trainer = types.SimpleNamespace(is_global_zero=True, max_steps=10, global_step=0,
                                    callback_metrics={"train/loss": torch.tensor(2.5)})
    cb = StepProgress(stream=io.StringIO(), interval=30.0)  # a StringIO is no terminal: the bar is off
    cb.on_train_start(trainer, None)
    with caplog.at_level(logging.INFO, logger="phylocl"):
        for step in range(1, 11):
            clock[0] += 10.0  # 10 s per step: a line every third step, and one at the end
            trainer.global_step = step
            cb.on_train_batch_end(trainer, None, None, None, step)
    lines = [r.getMessage() for r in caplog.records if "step" in r.getMessage()]
    assert [line.split(",")[0] for line in lines] == ["training: step 3/10 (30%)", "training: step 6/10 (60%)",
                                                       "training: step 9/10 (90%)", "training: step 10/10 (100%)"]
    assert "0.10 steps/s" in lines[0] and "about 1.2 min left" in lines[0] and "loss 2.500" in lines[0]
    assert "left" not in lines[-1]
