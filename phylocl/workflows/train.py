"""``phylocl train``: fit an encoder on ortholog families and export it.

Output directory ``DIR``::

    DIR/encoder.pt          the exported encoder (best validation checkpoint, else the last); phylocl.load_encoder(DIR)
    DIR/config.yaml         the resolved config (re-run with phylocl train --config DIR/config.yaml)
    DIR/metrics.json        final validation/test retrieval figures, steps, wall time, device
    DIR/splits.json         the families of each split (train/val/test), for evaluating on the held-out ones
    DIR/checkpoints/        last.ckpt (every val_every_n_steps), best.ckpt, interrupted.ckpt (Ctrl-C); --resume
    DIR/logs/metrics.csv    per-step loss, InfoNCE value, positive probability, mean in-batch negative similarity
                            (train/neg_sim), temperature, lr, grad norm; at each validation the dev figures
                            (val/...), the same figures on a fixed sample of training families (train_fam/...)
                            and val/pairs_seen: the learning curves (phylocl.workflows.curves plots them)

The exported files are written atomically at the very end, so an interrupted run never leaves a half-written
encoder; ``--resume`` continues from ``checkpoints/last.ckpt`` and finishes the export.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import yaml

from phylocl.atomic import atomic_path
from phylocl.config import TrainConfig, load_config
from phylocl.configtools import to_dict
from phylocl.errors import InputError

__all__ = ["train", "TrainResult"]

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    out_dir: Path
    encoder_path: Path
    metrics: dict


def _quiet_lightning() -> None:
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda",
                 "lightning.fabric.utilities.seed", "lightning.pytorch.utilities.model_summary"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*number of training batches.*")
    warnings.filterwarnings("ignore", message=".*manual optimization and every_n_train_steps.*")
    warnings.filterwarnings("ignore", message=r".*fit\(ckpt_path=.*")


def _evaluate_split(module, dm, split: str, ks) -> dict:
    """Retrieval figures of the module's encoder on the val or test families (empty dict when there are none)."""
    import numpy as np
    import torch

    from phylocl.retrieval.evaluation import evaluate_embeddings

    dataset = dm.val_set if split == "val" else dm.test_set
    loader = dm.eval_dataloader(dataset)
    if not len(dataset) or len(set(dataset.families)) < 2:
        return {}
    enc = module.encoder
    was_training = enc.training
    enc.eval()
    xs, idx = [], []
    device = next(enc.parameters()).device
    with torch.no_grad():
        for batch in loader:
            tokens = {k: v.to(device) for k, v in batch["tokens"].items()}
            xs.append(enc(tokens).float().cpu())
            idx.append(batch["index"])
    enc.train(was_training)
    order = torch.cat(idx).numpy()
    x = np.empty((len(dataset), enc.embed_dim), dtype=np.float32)
    x[order] = torch.cat(xs).numpy()
    m = evaluate_embeddings(x, dataset.families, ks=ks)
    keep = ("top1", "map_r", "auc1", "n_queries", *(f"recall@{k}" for k in ks))
    return {k: m[k] for k in keep if k in m}


def train(config: TrainConfig | str | Path | None, out_dir: str | Path, *, overrides=(), data: list[str] | None = None,
          resume: bool = False, progress: bool = True) -> TrainResult:
    """Train an encoder as ``config`` says and export it to ``out_dir``.

    Args:
        config: a :class:`TrainConfig`, or the path of a YAML config (``None``: defaults).
        out_dir: output directory (created; an existing finished run is refused unless ``resume``).
        overrides: ``key=value`` strings applied on top of the YAML.
        data: input paths replacing ``data.path``/``data.paths`` (the first becomes ``data.path``).
        resume: continue from ``out_dir/checkpoints/last.ckpt`` if it exists.
        progress: show Lightning's progress bar.
    """
    _quiet_lightning()
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import ModelCheckpoint, OnExceptionCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from phylocl.data.datamodule import OrthologDataModule
    from phylocl.workflows.callbacks import RetrievalMetrics
    from phylocl.training.module import ContrastiveModule
    from phylocl.training.progress import StepProgress
    from phylocl.training.refresh import NeighbourRefresh

    out = Path(out_dir)
    if data:
        overrides = list(overrides) + [f"data.path={data[0]}", f"data.paths={json.dumps(list(data[1:]))}",
                                       "data.labels=null"]
    cfg = load_config(config, list(overrides))

    ckpt_dir = out / "checkpoints"
    # the newer of the periodic checkpoint and the one written when the run was interrupted
    candidates = [p for p in (ckpt_dir / "last.ckpt", ckpt_dir / "interrupted.ckpt") if p.exists()]
    last_ckpt = max(candidates, key=lambda p: p.stat().st_mtime) if candidates else ckpt_dir / "last.ckpt"
    if (out / "encoder.pt").exists() and not resume:
        raise InputError("already holds a trained encoder; choose another --out or delete it", path=out)
    if resume and not last_ckpt.exists():
        raise InputError("nothing to resume: no checkpoints/last.ckpt or interrupted.ckpt", path=out)
    L.seed_everything(cfg.trainer.seed, workers=True, verbose=False)
    dm = OrthologDataModule(config=cfg.data, train_eval_families=cfg.eval.train_families if cfg.eval.enabled else 0)
    dm.setup("fit")  # reads and checks the data before anything is written
    out.mkdir(parents=True, exist_ok=True)
    alphabet = dm.alphabet.name
    module = ContrastiveModule(config=cfg, alphabet=alphabet)

    t = cfg.trainer
    has_val = len(dm.val_set) > 0 and len(set(dm.val_set.families)) > 1 and cfg.eval.enabled
    metric = cfg.eval.monitor
    last_cb = ModelCheckpoint(dirpath=ckpt_dir, save_last=True, save_top_k=0,
                              every_n_train_steps=cfg.trainer.val_every_n_steps)
    best_cb = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor=f"val/{metric}", mode="max", save_top_k=1,
                              save_on_train_epoch_end=False, auto_insert_metric_name=False, enable_version_counter=False)
    callbacks = [last_cb, OnExceptionCheckpoint(dirpath=ckpt_dir, filename="interrupted")]
    if has_val:
        callbacks += [RetrievalMetrics(ks=cfg.eval.ks, pairs_per_step=cfg.data.batch_size), best_cb]
    if cfg.data.batching != "random" and cfg.data.refresh_every:
        callbacks.append(NeighbourRefresh(every=cfg.data.refresh_every))
    if progress and cfg.trainer.progress_bar:
        callbacks.append(StepProgress())

    trainer = L.Trainer(
        max_steps=t.max_steps, max_epochs=-1, precision=t.precision, accelerator=t.accelerator, devices=t.devices,
        num_nodes=t.num_nodes, strategy=t.strategy, deterministic=t.deterministic or None,
        log_every_n_steps=t.log_every_n_steps, enable_progress_bar=False, enable_model_summary=False,
        logger=CSVLogger(save_dir=str(out), name="logs", version=""), callbacks=callbacks,
        val_check_interval=t.val_every_n_steps if has_val else None, check_val_every_n_epoch=None,
        limit_val_batches=1.0 if has_val else 0, num_sanity_val_steps=0, use_distributed_sampler=False,
        enable_checkpointing=True,
    )
    started = time.time()
    try:
        trainer.fit(module, datamodule=dm, ckpt_path=str(last_ckpt) if resume else None)
    except SystemExit:  # Lightning exits after saving interrupted.ckpt on Ctrl-C
        if trainer.interrupted:
            raise KeyboardInterrupt(f"training interrupted; continue with --resume --out {out}") from None
        raise
    if trainer.interrupted:
        raise KeyboardInterrupt(f"training interrupted; continue with --resume --out {out}")
    wall = time.time() - started

    if not trainer.is_global_zero:
        return TrainResult(out, out / "encoder.pt", {})

    best = best_cb.best_model_path if has_val else ""
    if best:
        state = torch.load(best, map_location="cpu", weights_only=False)["state_dict"]
        module.load_state_dict(state)
    module.cpu()
    metrics = {
        "steps": int(trainer.global_step),
        "wall_seconds": round(wall, 1),
        "device": _device_name(trainer),
        "exported_checkpoint": os.path.basename(best) if best else "last",
        "parameters": module.encoder.num_parameters(),
        "val": _evaluate_split(module, dm, "val", cfg.eval.ks) if has_val else {},
        "test": _evaluate_split(module, dm, "test", cfg.eval.ks) if cfg.eval.enabled else {},
    }
    with atomic_path(out / "config.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    splits = {name: sorted(set(ds.families)) for name, ds in
              (("train", dm.train_set), ("val", dm.val_set), ("test", dm.test_set))}
    with atomic_path(out / "splits.json") as tmp:
        tmp.write_text(json.dumps(splits, indent=1) + "\n")
    with atomic_path(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    encoder_path = module.encoder.save(out / "encoder.pt")  # last: its presence marks a finished run
    return TrainResult(out, encoder_path, metrics)


def _device_name(trainer) -> str:
    import platform

    import torch

    root = trainer.strategy.root_device
    if root.type == "cuda":
        return f"{torch.cuda.get_device_name(root)} x{trainer.world_size}"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads) x{trainer.world_size}"
