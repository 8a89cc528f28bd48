"""``phylocl train`` end to end on the bundled example: outputs, reproducibility, refusal, interruption + resume."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

import phylocl
from phylocl.cli import main
from phylocl.errors import InputError
from phylocl.workflows import train as train_mod
from phylocl.workflows import train_checkpoints

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "datasets" / "example-mini-mit" / "protein"

SETS = ["model.name=gmlp-tiny", f"data.path={EXAMPLE}", "data.max_len=48", "data.batch_size=4",
        "data.fractions=[0.6,0.2,0.2]", "trainer.max_steps=6", "trainer.val_every_n_steps=3",
        "trainer.log_every_n_steps=1", "optim.warmup_steps=2"]


def _args(out, *extra):
    args = ["train", "--out", str(out), "--quiet"]
    for s in SETS + list(extra):
        args += ["--set", s]
    return args


def _weights(path):
    return phylocl.load_encoder(path).state_dict()


def test_train_writes_a_loadable_encoder_config_metrics_and_logs(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_args(out)) == 0
    assert "exported" in capsys.readouterr().out
    enc = phylocl.load_encoder(out)
    x = enc.embed(["MKVLAAGIVGLLLA", "MSTAPQRW"])
    assert x.shape == (2, enc.embed_dim)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 6
    for split in ("val", "test"):
        assert {"top1", "map_r", "auc1", "recall@1", "recall@10", "recall@100", "recall@300"} <= set(metrics[split])
        assert 0.0 <= metrics[split]["map_r"] <= 1.0
        assert 1.0 <= metrics[split]["effective_rank"] <= 64 and metrics[split]["uniformity"] < 0
    splits = json.loads((out / "splits.json").read_text())
    assert all(splits[k] for k in ("train", "val", "test"))
    assert not set(splits["train"]) & set(splits["val"]) and not set(splits["train"]) & set(splits["test"])
    assert len(splits["train"]) + len(splits["val"]) + len(splits["test"]) == 10  # every family, once
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["model"]["name"] == "gmlp-tiny" and cfg["trainer"]["max_steps"] == 6
    with open(out / "logs" / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    logged = {k for r in rows for k, v in r.items() if v}
    assert {"train/loss", "train/infonce", "train/pos_prob", "train/temperature", "train/lr",
            "train/grad_norm", "val/map_r", "val/auc1", "val/effective_rank", "val/alignment",
            "val/uniformity", "val/recall@100", "val/recall@300"} <= logged  # recall@K: the yardstick (issue 24)
    recall = [float(r["val/recall@300"]) for r in rows if r.get("val/recall@300")]
    assert recall and all(0.0 <= v <= 1.0 for v in recall)
    steps = [int(r["step"]) for r in rows if r.get("train/loss")]
    assert steps == list(range(6))
    from phylocl.config import load_config  # the logged rate is the one each step used (it was the next)
    from phylocl.training.schedule import warmup_cosine

    o = load_config(None, SETS).optim
    want = [o.lr * warmup_cosine(st, warmup_steps=2, total_steps=6, min_ratio=o.min_lr_ratio) for st in steps]
    got = [float(r["train/lr"]) for r in rows if r.get("train/loss")]
    assert got == pytest.approx(want, rel=1e-6) and got[0] == pytest.approx(o.lr / 2, rel=1e-6)
    assert (out / "checkpoints" / "last.ckpt").exists() and (out / "checkpoints" / "best.ckpt").exists()


def test_same_seed_same_model_and_resolved_config_reproduces(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert main(_args(a)) == 0
    assert main(_args(b)) == 0
    assert main(["train", "--config", str(a / "config.yaml"), "--out", str(c), "--quiet"]) == 0
    wa, wb, wc = _weights(a), _weights(b), _weights(c)
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
        assert torch.equal(wa[k], wc[k]), k
    d = tmp_path / "d"
    assert main(_args(d, "trainer.seed=1")) == 0
    assert any(not torch.equal(wa[k], v) for k, v in _weights(d).items())


def test_refuses_finished_run_and_bad_config_without_writing(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_args(out)) == 0
    capsys.readouterr()
    assert main(_args(out)) == 2
    assert "already holds a trained encoder" in capsys.readouterr().err
    fresh = tmp_path / "fresh"
    assert main(_args(fresh, "loss.temperature=0")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "temperature" in err and "Traceback" not in err
    assert not fresh.exists()
    assert main(_args(fresh, "data.path=/nonexistent/data")) == 2
    assert not fresh.exists()
    assert main(["train", "--resume", "--out", str(tmp_path / "none"), "--quiet"]) == 2


class _Interrupt(L.Callback):
    def __init__(self, at_step):
        self.at_step = at_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.at_step:
            raise KeyboardInterrupt


def test_interrupted_run_leaves_no_encoder_and_resume_finishes_it(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    real_trainer = train_checkpoints.CheckpointTrainer  # the Trainer of phylocl train

    def trainer_with_interrupt(*args, **kwargs):
        kwargs["callbacks"] = list(kwargs.get("callbacks", [])) + [_Interrupt(4)]
        return real_trainer(*args, **kwargs)

    monkeypatch.setattr(train_checkpoints, "CheckpointTrainer", trainer_with_interrupt)
    assert main(_args(out)) == 130
    assert "--resume" in capsys.readouterr().err
    assert not (out / "encoder.pt").exists()
    assert (out / "checkpoints" / "interrupted.ckpt").exists()
    monkeypatch.setattr(train_checkpoints, "CheckpointTrainer", real_trainer)

    assert main(_args(out) + ["--resume"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 6
    # the resumed run matches an uninterrupted one step for step
    ref = tmp_path / "ref"
    assert main(_args(ref)) == 0
    wr, wo = _weights(ref), _weights(out)
    for k in wr:
        torch.testing.assert_close(wo[k], wr[k], rtol=1e-5, atol=1e-6)


def test_train_function_accepts_config_objects(tmp_path):
    from phylocl.config import load_config

    cfg = load_config(None, SETS)
    result = train_mod.train(cfg, tmp_path / "run", progress=False, overrides=["trainer.max_steps=2"])
    assert result.metrics["steps"] == 2
    with pytest.raises(InputError):
        train_mod.train(cfg, tmp_path / "run2", progress=False, overrides=["nope.key=1"])


def test_progress_counts_optimizer_steps_on_a_terminal(tmp_path, monkeypatch):
    import io
    import sys

    class Tty(io.StringIO):
        def isatty(self):
            return True

    err = Tty()
    monkeypatch.setattr(sys, "stderr", err)
    args = [a for a in _args(tmp_path / "run") if a != "--quiet"]
    assert main(args) == 0
    text = err.getvalue()
    assert "training: 100%" in text and "6/6" in text and "step/s" in text and "loss " in text
    assert "Epoch" not in text  # not Lightning's per-epoch bar


def test_metrics_json_agrees_with_evaluate_on_sequences_longer_than_max_len(tmp_path):
    """One embedding path: the validation figures of metrics.json are those of `phylocl evaluate --split val`,
    on a set whose sequences are longer than the training max_len (so cropping would give other figures)."""
    import numpy as np

    from phylocl.data.layouts import read_dataset
    from phylocl.retrieval.evaluation import evaluate_embeddings
    from phylocl.workflows.evaluate import evaluate

    out = tmp_path / "run"
    assert main(_args(out, "data.max_len=24")) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    res = evaluate(data=EXAMPLE, model=str(out), split="val", ks=[1, 10], progress=False)
    val_families = json.loads((out / "splits.json").read_text())["val"]
    ds = read_dataset(EXAMPLE).select_families(val_families)
    assert max(len(s) for s in ds.sequences) > 24
    for name in ("top1", "map_r", "auc1", "recall@1", "recall@10"):
        assert metrics["val"][name] == pytest.approx(res[name], abs=1e-6), name
    # the old path (the first max_len residues only) gives other figures on this set: the test can tell them apart
    enc = phylocl.load_encoder(out)
    cropped = enc.embed([s[:24] for s in ds.sequences])
    old = evaluate_embeddings(cropped, ds.families, ids=ds.ids, ks=(1, 10))
    assert not np.isclose(old["map_r"], res["map_r"], atol=1e-4)


def test_library_call_changes_no_warning_filters_or_logger_levels(tmp_path):
    """Only the command line quiets Lightning; train() called from Python leaves the process settings alone."""
    import logging
    import warnings

    names = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.seed", "phylocl")
    before = (list(warnings.filters), {n: logging.getLogger(n).level for n in names})
    result = train_mod.train(None, tmp_path / "run", overrides=SETS, progress=False)
    assert (result.encoder_path / "model.safetensors").is_file()  # a model folder (issue 26)
    assert (list(warnings.filters), {n: logging.getLogger(n).level for n in names}) == before


def test_moe_encoder_trains_logs_expert_utilisation_and_embeds(tmp_path):
    """``phylocl train`` with sMLP: router losses and per-layer utilisation in logs/metrics.csv, an embeddable export."""
    out = tmp_path / "run"
    assert main(_args(out, "model.name=smlp-tiny", "trainer.max_steps=3", "cache.enabled=true",
                      "cache.chunk_size=2")) == 0
    with open(out / "logs" / "metrics.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("train/moe/aux")]
    assert len(rows) == 3
    for r in rows:  # two router layers (sMoE, tMoE), four experts each: kept + dropped fractions sum to one
        for k in (0, 1):
            used = sum(float(r[f"train/moe/l{k}_util{e}"]) for e in range(4))
            assert used + float(r[f"train/moe/l{k}_dropped"]) == pytest.approx(1.0, abs=1e-5)
        assert float(r["train/moe/balance"]) > 0 and float(r["train/moe/z"]) > 0
    enc = phylocl.load_encoder(out)
    assert enc.config.backbone == "smlp" and enc.embed(["MKVLAAGIVGLLLA"]).shape == (1, enc.embed_dim)


def test_export_last_gives_the_weights_of_the_same_run_without_validation(tmp_path):
    """Validation (dev + training-family figures) reads the model only: with ``eval.export=last`` the exported
    encoder is bit-identical to the one a run without validation exports, and no best checkpoint is kept."""
    off, last = tmp_path / "off", tmp_path / "last"
    assert main(_args(off, "eval.enabled=false")) == 0
    assert main(_args(last, "eval.export=last", "trainer.val_every_n_steps=2", "eval.train_families=3")) == 0
    w_off, w_last = _weights(off), _weights(last)
    assert w_off.keys() == w_last.keys() and all(torch.equal(w_off[k], w_last[k]) for k in w_off)
    metrics = json.loads((last / "metrics.json").read_text())
    assert metrics["exported_checkpoint"] == "last" and metrics["val"]["map_r"] >= 0.0
    assert not (last / "checkpoints" / "best.ckpt").exists()
    with open(last / "logs" / "metrics.csv") as fh:
        assert [r["step"] for r in csv.DictReader(fh) if r.get("train_fam/map_r")] == ["1", "3", "5"]
    with pytest.raises(InputError, match="eval.export"):
        train_mod.train(None, tmp_path / "bad", overrides=SETS + ["eval.export=first"], progress=False)


@pytest.mark.parametrize("word_weights", ["idf", "uniform"])
def test_kmer_profile_word_weights_start_as_configured(tmp_path, word_weights):
    out = tmp_path / word_weights
    assert main(_args(out, "model.name=kmerprofile-small", f"model.overrides={{word_weights: {word_weights}}}",
                      "trainer.max_steps=1", "optim.warmup_steps=100")) == 0  # first step at lr / 100
    trained = phylocl.load_encoder(out)  # the run folder is a model folder (issue 26)
    assert trained.config.word_weights == word_weights
    reference = phylocl.build_encoder("kmerprofile-small", max_len=48)
    if word_weights == "idf":
        from phylocl.data.datamodule import OrthologDataModule
        from phylocl.config import load_config

        dm = OrthologDataModule(config=load_config(None, SETS).data)
        dm.setup("fit")
        reference.backbone.fit_statistics([dm.alphabet.encode(s) for s in dm.train_set.sequences])
    got, want = trained.backbone.weights.detach(), reference.backbone.weights.detach()
    assert (want > 1.5).any() == (word_weights == "idf")  # IDF of a word missing from some sequences is > 1
    torch.testing.assert_close(got, want, atol=1e-3, rtol=0)  # one Adam step moves a weight by at most lr / 100


def test_data_paths_named_like_yaml_words_stay_paths():
    """``--data yes`` (a folder named like a YAML word) was read as ``True``: 'data.path: True is not a valid
    Optional'; so were ``null`` and ``a: b``."""
    from phylocl.workflows.train import _load

    for name in ("yes", "null", "a: b", "[x]"):
        cfg = _load(None, [], [name, "it's"])
        assert cfg.data.path == name and list(cfg.data.paths) == ["it's"]
