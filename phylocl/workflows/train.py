"""``phylocl train``: fit an encoder on ortholog families and export it.

Output directory ``DIR``::

    DIR/config.json         the exported encoder, a model folder (save_pretrained; best validation checkpoint, else
    DIR/model.safetensors   the last): phylocl.load_encoder(DIR). Runs of earlier versions hold DIR/encoder.pt (still read)
    DIR/config.yaml         the resolved config (re-run with phylocl train --config DIR/config.yaml)
    DIR/metrics.json        final validation/test retrieval figures (+ effective rank, alignment, uniformity), steps,
                            wall time, device
    DIR/splits.json         the families of each split (train/val/test), for evaluating on the held-out ones
    DIR/checkpoints/        last.ckpt (each validation's end, else every val_every_n_steps, and every
                            checkpoint_every_n_steps between them), best.ckpt, interrupted.ckpt (Ctrl-C; after a
                            validation in progress); --resume. Each written atomically (no truncated file)
    DIR/logs/metrics.csv    per-step loss, InfoNCE value, positive probability, mean in-batch negative similarity
                            (train/neg_sim), temperature, lr, grad norm; at each validation the dev figures
                            (val/...), the same figures on a fixed sample of training families (train_fam/...)
                            and val/pairs_seen: the learning curves (phylocl.workflows.curves plots them)

``config.yaml`` is written when training starts (``phylocl train --resume --out DIR`` reads it back; resuming with
a different config is refused, naming the differences); the exported files are written atomically at the very end,
so an interrupted run never leaves a half-written encoder; their weights and the embeddings of a probe batch must be
finite (a run that diverges on its last update is not exported). ``--resume`` continues from ``checkpoints/last.ckpt``
(or ``interrupted.ckpt``, whichever is newer and loads) and keeps the earlier rows of ``logs/metrics.csv``, labelled
as an uninterrupted run labels them. Every checkpoint records what the run trains on (its train/val/test splits as
read, the sizes and times of its input files); ``--resume`` refuses, naming the file, data that changed since the
run began (a run of an earlier phylocl, which recorded nothing, resumes with a note).
The folder is locked while a run writes to it; settings, data and output place are checked before anything is
written, and a run refused by such a check leaves no folder behind. A folder holding a run that did not finish is
refused without ``--resume`` (its logs would be lost); ``--resume`` on a finished run does nothing and says so. A loss or gradient that turns NaN/inf stops
training at that step (:mod:`phylocl.training.guards`) without exporting.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from phylocl.atomic import atomic_path
from phylocl.config import TrainConfig, data_overrides, load_config
from phylocl.configtools import to_dict
from phylocl.errors import InputError, Terminated
from phylocl.outputs import check_output_dir, refuse_clashes, same_file
from phylocl.workflows.run_folder import (RUN_FILES, check_resume_config, check_unlocked, claim, exported_model,
                                         kept_metrics, stored_config, unfinished_signs, write_config)
from phylocl.workflows.train_checks import (check_exportable, check_same_inputs, check_trainer_settings,
                                            check_training_families, input_fingerprint, interruption_kind,
                                            launched_rank, lightning_errors, split_notes, state_dict_mismatch)

__all__ = ["train", "TrainResult"]

@dataclass
class TrainResult:
    """``encoder_path``: the exported model (the run folder, a model folder; an older run's ``encoder.pt``);
    ``note``: set when nothing was trained (``--resume`` of a finished run), saying why."""

    out_dir: Path
    encoder_path: Path
    metrics: dict
    note: str = ""


def _evaluate_split(module, dm, split: str, ks) -> dict:
    """Retrieval figures of the module's encoder on the val or test families (empty dict when there are none),
    embedded exactly as ``phylocl evaluate`` embeds them (:func:`~phylocl.workflows.embed_buffers.embed_all`,
    long sequences as windows, batches of 64), so ``metrics.json`` and ``phylocl evaluate --split`` agree."""
    from phylocl.retrieval.evaluation import evaluate_embeddings
    from phylocl.workflows.callbacks import health_metrics
    from phylocl.workflows.embed_buffers import embed_all
    from phylocl.workflows.model_spec import ResolvedModel

    dataset = dm.val_set if split == "val" else dm.test_set
    if not len(dataset) or len(set(dataset.families)) < 2:
        return {}
    enc = module.encoder
    was_training = enc.training
    device = str(next(enc.parameters()).device)
    try:
        embedder = ResolvedModel(model=enc, source="training", device=device)
        x, _ = embed_all(zip(dataset.ids, dataset.sequences, dataset.families), embedder)  # (N, D)
    finally:
        enc.train(was_training)
    m = evaluate_embeddings(x, dataset.families, ids=dataset.ids, ks=ks)
    keep = ("top1", "map_r", "auc1", "n_queries", *(f"recall@{k}" for k in ks))
    return {**{k: m[k] for k in keep if k in m}, **health_metrics(x, list(dataset.families))}


def _load(config, overrides, data):
    """The resolved :class:`TrainConfig`: YAML (or defaults), then ``--data`` paths, then ``overrides``."""
    if data:  # before the user's overrides, so that --set data.labels=TSV labels a --data FASTA file
        overrides = [*data_overrides(data), *overrides]
    return load_config(config, list(overrides))


def _resume_checkpoint(out: Path, resume: bool, max_steps: int) -> tuple[Path, dict | None]:
    """The checkpoint ``--resume`` continues from, and the fingerprint of the training data it records (``None``: a
    run of an earlier phylocl); refuses a finished run (without ``resume``) or nothing to resume.

    The newer of ``last.ckpt`` (periodic) and ``interrupted.ckpt`` (Ctrl-C) that loads; a truncated or corrupt one is
    skipped, and an InputError names it when none loads. ``max_steps`` (``trainer.max_steps``) below the steps that
    checkpoint has done is refused: Lightning would stop at once and export the run with a config.yaml that no
    longer describes it.
    """
    ckpt_dir = out / "checkpoints"
    candidates = [p for p in (ckpt_dir / "last.ckpt", ckpt_dir / "interrupted.ckpt") if p.exists()]
    candidates.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    if exported_model(out) is not None and not resume:
        raise InputError("already holds a trained encoder; choose another --out or delete it", path=out)
    if not resume:
        signs = unfinished_signs(out)
        if signs and candidates:
            raise InputError(f"holds a run that did not finish ({', '.join(signs[:3])}); continue it with --resume, "
                             "or choose a new --out (starting over here would lose its logs)", path=out)
        if signs:  # killed before its first checkpoint: nothing to resume, but its files are not ours to delete
            raise InputError(f"holds a run that stopped before its first checkpoint ({', '.join(signs[:3])}); "
                             "choose a new --out, or delete this folder to start over here", path=out)
        refuse_clashes(out, RUN_FILES, ours=False, what="phylocl train")  # a user's metrics.json, model.safetensors
        return ckpt_dir / "last.ckpt", None
    if not candidates:
        raise InputError("nothing to resume: no checkpoints/last.ckpt or interrupted.ckpt", path=out)
    problems = []
    for ckpt in candidates:
        why, done, inputs = _unloadable(ckpt)
        if why is None:
            if 0 < max_steps < done:
                raise InputError(f"the run has done {done} steps, more than trainer.max_steps={max_steps}; resume "
                                 f"with trainer.max_steps >= {done}", path=out)
            return ckpt, inputs
        problems.append(f"{ckpt.name}: {why}")
    raise InputError(f"cannot resume: {'; '.join(problems)}; delete the broken checkpoint(s) or start a new --out",
                     path=ckpt_dir)


def _unloadable(ckpt: Path) -> tuple[str | None, int, dict | None]:
    """``(why, steps, inputs)``: why ``ckpt`` cannot be resumed from (truncated, corrupt, not a Lightning
    checkpoint), or ``None``, the optimizer steps it has done and the fingerprint of the training data it records
    (:func:`~phylocl.workflows.train_checks.input_fingerprint`; ``None`` in a checkpoint of an earlier phylocl).

    Read as data only (:func:`~phylocl.training.checkpoints.load_checkpoint`); a checkpoint whose unpickling
    could run code is refused at once (InputError), whatever the other checkpoints hold.
    """
    from phylocl.training.checkpoints import INPUTS_KEY, UnsafeCheckpoint, load_checkpoint

    try:
        state = load_checkpoint(ckpt)
    except UnsafeCheckpoint as err:
        raise InputError(f"refusing to load: {err}; phylocl reads checkpoints as data only (weights_only), so this "
                         "file was not written by phylocl train: delete it or start a new --out", path=ckpt) from None
    except Exception as err:  # torch raises RuntimeError, EOFError, pickle and zip errors for damaged files
        return f"truncated or corrupt ({' '.join(str(err).split())[:120]})", 0, None
    if not isinstance(state, dict) or "state_dict" not in state:
        return "not a phylocl training checkpoint", 0, None
    inputs = state.get(INPUTS_KEY)
    return None, int(state.get("global_step", 0) or 0), inputs if isinstance(inputs, dict) else None


def _finished(out: Path, cfg: TrainConfig) -> TrainResult | None:
    """``--resume`` of a run that already exported its model and reached ``trainer.max_steps``: nothing to do (a
    result whose ``note`` says so; no file is touched), else ``None`` (a larger max_steps trains further)."""
    model = exported_model(out)
    if model is None:
        return None
    try:
        metrics = json.loads((out / "metrics.json").read_text())
        steps = int(metrics["steps"])
    except (OSError, ValueError, KeyError, TypeError):
        metrics, steps = {}, None
    if steps is not None and cfg.trainer.max_steps > steps:
        return None
    at = f" at step {steps}" if steps is not None else ""
    return TrainResult(out, model, metrics, note=f"{out}: already finished{at}, its model exported; nothing to resume, "
                       "no file changed (raise trainer.max_steps with --set to train further)")


def _has_validation(cfg: TrainConfig, dm) -> bool:
    return len(dm.val_set) > 0 and len(set(dm.val_set.families)) > 1 and cfg.eval.enabled


def _callbacks(cfg: TrainConfig, ckpt_dir: Path, *, has_val: bool, progress: bool):
    """``(callbacks, best)``: periodic/last, interrupted and (with validation) best checkpoints, metrics, progress."""
    from phylocl.training.refresh import NeighbourRefresh
    from phylocl.workflows.callbacks import RetrievalMetrics, StepProgress
    from phylocl.workflows.train_checkpoints import DeferredInterrupt, InterruptCheckpoint, StepCheckpoint
    from phylocl.workflows.train_checkpoints import FolderCheckpoint as ModelCheckpoint  # follows a moved folder

    # With validation, last.ckpt is saved at the end of each validation (after best.ckpt, so that it holds the best
    # score so far): Lightning resumes a checkpoint saved at a batch's end as if that batch's validation had run, so
    # a run killed during a validation lost it (no row, never a candidate for best.ckpt). Without, every N steps.
    if has_val:  # (Lightning saves save_last only beside a top-k checkpoint: the latest, named last, is that)
        last_cb = ModelCheckpoint(dirpath=ckpt_dir, filename="last", monitor=None, save_top_k=1,
                                  save_on_train_epoch_end=False, enable_version_counter=False)
    else:
        last_cb = ModelCheckpoint(dirpath=ckpt_dir, save_last=True, save_top_k=0, enable_version_counter=False,
                                  every_n_train_steps=cfg.trainer.val_every_n_steps)  # replaces StepCheckpoint's
    best_cb = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor=f"val/{cfg.eval.monitor}", mode="max",
                              save_top_k=1, save_on_train_epoch_end=False, auto_insert_metric_name=False,
                              enable_version_counter=False)
    callbacks = [InterruptCheckpoint(dirpath=ckpt_dir, filename="interrupted"), DeferredInterrupt()]
    if has_val:
        callbacks.append(RetrievalMetrics(ks=cfg.eval.ks, min_rank_fraction=cfg.eval.min_effective_rank_fraction,
                                          pairs_per_step=cfg.data.batch_size))
        if cfg.eval.export == "best":
            callbacks.append(best_cb)
    callbacks.append(last_cb)
    if cfg.trainer.checkpoint_every_n_steps:  # before the refresh: a checkpoint at a batch's start, before all of it
        callbacks.append(StepCheckpoint(dirpath=ckpt_dir, every=cfg.trainer.checkpoint_every_n_steps,
                                        val_every=cfg.trainer.val_every_n_steps))
    if cfg.data.batching != "random" and cfg.data.refresh_every:
        callbacks.append(NeighbourRefresh(every=cfg.data.refresh_every))
    if progress and cfg.trainer.progress_bar:
        callbacks.append(StepProgress())
    return callbacks, best_cb


def _trainer(cfg: TrainConfig, out: Path, callbacks: list, *, has_val: bool):
    """The Lightning Trainer of the ``trainer:`` section: counted in steps, validated every ``val_every_n_steps``."""
    from lightning.pytorch.loggers import CSVLogger

    from phylocl.workflows.train_checkpoints import AtomicCheckpointIO, CheckpointTrainer

    t = cfg.trainer
    return CheckpointTrainer(
        max_steps=t.max_steps, max_epochs=-1, precision=t.precision, accelerator=t.accelerator, devices=t.devices,
        num_nodes=t.num_nodes, strategy=t.strategy, deterministic=t.deterministic or None,
        log_every_n_steps=min(t.log_every_n_steps, t.max_steps) if t.max_steps > 0 else t.log_every_n_steps,
        enable_progress_bar=False, enable_model_summary=False,  # (a run shorter than the interval logs its last step)
        logger=CSVLogger(save_dir=str(out), name="logs", version=""), callbacks=callbacks,
        val_check_interval=t.val_every_n_steps if has_val else None, check_val_every_n_epoch=None,
        limit_val_batches=1.0 if has_val else 0, num_sanity_val_steps=0, use_distributed_sampler=False,
        enable_checkpointing=True, plugins=[AtomicCheckpointIO()],
    )


def _fit(trainer, module, dm, *, out: Path, ckpt: Path | None) -> float:
    """Run ``trainer.fit`` (from ``ckpt`` when resuming); returns the wall seconds. Ctrl-C -> KeyboardInterrupt."""
    from phylocl.training.checkpoints import checkpoint_globals
    from phylocl.workflows.rank_failures import mark_reported_by_rank_zero
    from phylocl.workflows.train_checkpoints import CheckpointWriteError

    started = time.time()
    try:
        with checkpoint_globals():  # Lightning's own load of ckpt: data only, as _unloadable checked it
            trainer.fit(module, datamodule=dm, ckpt_path=str(ckpt) if ckpt is not None else None, weights_only=True)
    except SystemExit:  # Lightning exits after saving interrupted.ckpt on Ctrl-C
        if trainer.interrupted:
            raise _interruption(trainer, out) from None
        raise
    except CheckpointWriteError as err:  # a full disk: the run's folder and earlier checkpoints stay for --resume
        if not _has_checkpoint(out):  # a refused run: its new folder is removed
            raise mark_reported_by_rank_zero(InputError(f"{err}; nothing to resume"), like=err) from None
        raise mark_reported_by_rank_zero(CheckpointWriteError(
            f"{err}; the checkpoint before it is kept: continue with --resume --out {out} once there is room"),
            like=err) from None  # (another rank's copy of rank 0's error stays silent: rank 0 reports it)
    except RuntimeError as err:  # a checkpoint of another architecture: one line, not PyTorch's line per key
        summary = state_dict_mismatch(err)
        if summary is None or ckpt is None:
            raise
        raise InputError(f"cannot resume: {ckpt.name} does not fit the model of config.yaml: {summary}",
                         path=ckpt) from None
    if trainer.interrupted:
        raise _interruption(trainer, out)
    return time.time() - started


def _has_checkpoint(out: Path) -> bool:
    """Whether the run folder ``out`` holds a checkpoint ``--resume`` can continue from."""
    return any((out / "checkpoints" / name).is_file() for name in ("last.ckpt", "interrupted.ckpt"))


def _interruption(trainer, out: Path) -> KeyboardInterrupt:
    """Ctrl-C (exit 130) or, when Lightning's handler saw SIGTERM, :class:`Terminated` (exit 143)."""
    cls = interruption_kind(trainer)
    what = "terminated" if cls is Terminated else "interrupted"
    if not _has_checkpoint(out):
        return cls(f"training {what} before its first checkpoint (the first validation's end, or "
                   f"trainer.checkpoint_every_n_steps): nothing to resume; delete {out} to start over")
    return cls(f"training {what}; continue with --resume --out {out}")


def _export(out: Path, cfg: TrainConfig, module, dm, trainer, *, best: str, wall: float, has_val: bool) -> TrainResult:
    """Load the best checkpoint (if any), check that its weights and a probe batch's embeddings are finite, score
    val/test and write splits.json, metrics.json and, last (its config.json marks a finished run), the model folder
    (``save_pretrained``: config.json + model.safetensors in ``out``)."""
    from phylocl.training.checkpoints import load_checkpoint

    step = int(trainer.global_step)
    if best:
        state = load_checkpoint(best)
        module.load_state_dict(state["state_dict"])
        step = int(state.get("global_step", step))
    module.cpu()
    check_exportable(module.encoder, dm.train_set.sequences, step=step)
    metrics = {
        "steps": int(trainer.global_step),
        "wall_seconds": round(wall, 1),
        "device": _device_name(trainer),
        "exported_checkpoint": os.path.basename(best) if best else "last",
        "parameters": module.encoder.num_parameters(),
        "val": _evaluate_split(module, dm, "val", cfg.eval.ks) if has_val else {},
        "test": _evaluate_split(module, dm, "test", cfg.eval.ks) if cfg.eval.enabled else {},
    }
    splits = {name: sorted(set(ds.families)) for name, ds in
              (("train", dm.train_set), ("val", dm.val_set), ("test", dm.test_set))}
    with atomic_path(out / "splits.json") as tmp:
        tmp.write_text(json.dumps(splits, indent=1) + "\n")
    with atomic_path(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    module.encoder.save_pretrained(out)  # last (config.json after the weights): its presence marks a finished run
    (out / "encoder.pt").unlink(missing_ok=True)  # an older run's export, now superseded (resumed and extended)
    return TrainResult(out, out, metrics)


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
    import lightning as L

    from phylocl.data.datamodule import OrthologDataModule
    from phylocl.training.module import ContrastiveModule

    out = check_output_dir(out_dir, inputs=data or ())
    if (out / "split.json").is_file() or (out / "compare.yaml").is_file():  # a study's folder, with its own lock
        raise InputError("holds a phylocl compare study (split.json, compare.yaml); give train its own --out",
                         path=out)
    if isinstance(config, (str, Path)) and same_file(config, out / "config.yaml") and not resume:
        raise InputError(f"--config {config} is the config.yaml that phylocl train writes into --out; keep your "
                         "config outside the run folder (or choose another --out)", path=out)
    if launched_rank() == 0:
        check_unlocked(out)  # a second run into a busy folder is refused before it reads anything
    if resume and not out.is_dir():
        raise InputError("no such run folder to resume (--resume continues a `phylocl train --out` folder)",
                         path=out)
    stored = stored_config(out) if resume else None
    if resume and stored is None and config is None and not data and not overrides:
        raise InputError("this run has no config.yaml (an older phylocl wrote it only at the end); resume with the "
                         "run's own --config/--data/--set", path=out)
    cfg = _load(stored if stored is not None and config is None else config, overrides, data)
    done = _finished(out, cfg) if resume else None
    if done is not None:
        return done
    # the folder checks are rank 0's: a DDP rank that Lightning launched finds rank 0's config.yaml already there
    last_ckpt, recorded = (_resume_checkpoint(out, resume, cfg.trainer.max_steps)
                           if resume or launched_rank() == 0 else (out / "checkpoints" / "last.ckpt", None))
    if stored is not None:
        check_resume_config(stored, to_dict(cfg))
    check_trainer_settings(cfg.trainer)
    L.seed_everything(cfg.trainer.seed, workers=True, verbose=False)
    dm = OrthologDataModule(config=cfg.data, train_eval_families=cfg.eval.train_families if cfg.eval.enabled else 0)
    dm.setup("fit")  # reads and checks the data before anything is written
    check_training_families(dm)
    inputs = input_fingerprint(cfg.data, dm) if launched_rank() == 0 else None
    if resume and inputs is not None:  # the data the run began with, or a refusal naming the changed file
        note = check_same_inputs(recorded, inputs, checkpoint=str(last_ckpt))
        if note:
            logging.getLogger("phylocl").warning("note: %s", note)
    if cfg.data.aligned_evalue > 0:
        _mine_aligned(dm, cfg)
    module = ContrastiveModule(config=cfg, alphabet=dm.alphabet.name)  # refuses a model too big for memory
    module.input_fingerprint = inputs  # recorded in every checkpoint, for --resume to compare
    if launched_rank() == 0:
        for note in split_notes(dm, cfg):
            logging.getLogger("phylocl").warning("note: %s", note)
    backbone = module.encoder.backbone
    if hasattr(backbone, "fit_statistics") and module.encoder.config.word_weights == "idf" and not resume:
        # k-mer profile: word weights start at the training set's IDF (word_weights "uniform": at 1, as built)
        backbone.fit_statistics([dm.alphabet.encode(s) for s in dm.train_set.sequences])
    has_val = _has_validation(cfg, dm)
    callbacks, best_cb = _callbacks(cfg, out / "checkpoints", has_val=has_val, progress=progress)
    with lightning_errors("trainer"):
        trainer = _trainer(cfg, out, callbacks, has_val=has_val)
    with claim(out) if launched_rank() == 0 else contextlib.nullcontext():
        if launched_rank() == 0:
            write_config(out, to_dict(cfg))  # now, so that --resume finds it after an interrupt
        with kept_metrics(out, resume=resume):
            wall = _fit(trainer, module, dm, out=out, ckpt=last_ckpt if resume else None)
        if not trainer.is_global_zero:
            return TrainResult(out, out, {})
        best = best_cb.best_model_path if has_val and cfg.eval.export == "best" else ""
        try:
            return _export(out, cfg, module, dm, trainer, best=best, wall=wall, has_val=has_val)
        except KeyboardInterrupt as err:  # training is done and checkpointed; the export is redone by --resume
            if isinstance(err, Terminated):
                raise Terminated(f"export terminated; finish it with --resume --out {out}") from None
            raise KeyboardInterrupt(f"export interrupted; finish it with --resume --out {out}") from None


def _mine_aligned(dm, cfg: TrainConfig) -> None:
    """Alignment-guided positives (``data.aligned_evalue``): mined once before training, deterministic in the
    data and ``data.seed`` (so a resumed run finds the same pairs)."""
    from phylocl.workflows.aligned_positives import mine_aligned_pairs

    c = cfg.data
    started = time.perf_counter()
    families = sorted(dm.train_set.pair_families)
    pairs, stats = mine_aligned_pairs(dm.train_set, families, evalue=c.aligned_evalue, candidates=c.aligned_candidates,
                                      members=c.aligned_members, seed=c.seed)
    dm.set_aligned_pairs(pairs)
    if launched_rank() == 0:
        logging.getLogger("phylocl").warning(
            "note: aligned positives (E < %g, mode %s): %d pairs joining %d families, from %d representatives and "
            "%d alignments in %.1f s", c.aligned_evalue, c.aligned_mode, stats["pairs"], stats["families_joined"],
            stats["representatives"], stats["alignments"], time.perf_counter() - started)


def _device_name(trainer) -> str:
    import platform

    import torch

    root = trainer.strategy.root_device
    if root.type == "cuda":
        return f"{torch.cuda.get_device_name(root)} x{trainer.world_size}"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads) x{trainer.world_size}"
