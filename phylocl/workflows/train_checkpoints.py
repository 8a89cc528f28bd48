"""Checkpoints written while ``phylocl train`` runs, and the interrupts that write them.

- :class:`AtomicCheckpointIO`: every checkpoint is written as phylocl writes its outputs (a hidden temporary beside
  it, then ``os.replace``: :func:`phylocl.atomic.atomic_path`), so a kill never leaves a truncated one;
- :class:`CheckpointTrainer`: under DDP, a write failing on rank 0 stops every rank, reported once;
- :class:`StepCheckpoint`: ``last.ckpt`` every ``trainer.checkpoint_every_n_steps`` optimizer steps between
  validations, so that a run killed outright (SIGKILL, out of memory) loses at most that many steps;
- :class:`InterruptCheckpoint`: ``interrupted.ckpt`` (and the log rows not yet flushed) on Ctrl-C or a crash, but
  not for a refused run (an InputError such as a diverged loss), which must leave nothing to resume from, nor
  inside a validation (Lightning resumes one cut short on part of its batches);
- :class:`DeferredInterrupt`: Ctrl-C or SIGTERM from a step's optimizer update to the next batch (its logging, a
  validation) stops training at the next batch's start; a second one during a validation stops at once;
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint, OnExceptionCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from phylocl.atomic import atomic_path
from phylocl.errors import InputError
from phylocl.workflows.train_checks import state_dict_mismatch

__all__ = ["AtomicCheckpointIO", "CheckpointWriteError", "CheckpointTrainer", "StepCheckpoint", "InterruptCheckpoint",
           "DeferredInterrupt"]


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, writing through :func:`~phylocl.atomic.atomic_path` (a Trainer plugin).

    Lightning's own writes a temporary file in the system's temporary folder and moves it into place, which is a
    copy when that folder is on another file system: a kill during the copy leaves a truncated ``last.ckpt`` (and
    its temporary in ``/tmp``). Here the temporary sits beside the checkpoint (``.last.ckpt.<pid>.<random>.tmp.ckpt``,
    swept by the next write once its writer is dead) and replaces it in one rename; a full disk is a
    :class:`CheckpointWriteError` naming it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.held: list[CheckpointWriteError] | None = None  # while holding(): the failed writes, not raised

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        import torch

        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO.save_checkpoint takes no storage_options")
        try:
            with atomic_path(Path(path)) as tmp:
                torch.save(checkpoint, tmp)
        except InputError as err:  # not an InputError, which removes a new run's folder: its checkpoints stay
            if self.held is None:
                raise CheckpointWriteError(str(err)) from None
            self.held.append(CheckpointWriteError(str(err)))

    @contextlib.contextmanager
    def holding(self):
        """Within: a failed write is appended to the list this yields instead of raised (see
        :class:`CheckpointTrainer`)."""
        self.held = []
        try:
            yield self.held
        finally:
            self.held = None


def moved_state(state: dict, dirpath: str | None) -> dict:
    """A :class:`ModelCheckpoint` state saved in another folder (the run folder moved or copied since), its paths
    into that folder read as the same files of ``dirpath``; the state itself where it was saved in ``dirpath``."""
    old = state.get("dirpath")
    if old is None or dirpath is None or Path(old) == Path(dirpath):
        return state

    def here(p):
        return str(Path(dirpath) / Path(p).name) if p and Path(p).parent == Path(old) else p

    state = dict(state, dirpath=dirpath)
    for key in ("best_model_path", "kth_best_model_path", "last_model_path"):
        if key in state:
            state[key] = here(state[key])
    if state.get("best_k_models"):
        state["best_k_models"] = {here(p): v for p, v in state["best_k_models"].items()}
    return state


class FolderCheckpoint(ModelCheckpoint):
    """Lightning's :class:`ModelCheckpoint` whose saved paths follow the run folder: Lightning reloads the best score
    and the checkpoints' paths only when the absolute folder is the one they were saved in, so a run folder copied or
    moved resumed with no best score (its next validation overwrote ``best.ckpt``, however worse) and with
    ``best_model_path`` into the old folder (the export read the old run's file, or failed)."""

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(moved_state(state_dict, self.dirpath))


class CheckpointWriteError(OSError):
    """A checkpoint that could not be written (a full disk), in one line. Not an
    :class:`~phylocl.errors.InputError`: a refused run's new folder is removed, and this run's earlier checkpoints
    must stay for ``--resume``."""


class CheckpointTrainer(L.Trainer):
    """A Lightning Trainer whose checkpoint write failing on one rank stops every rank, reported once.

    Under DDP rank 0 alone writes a checkpoint while the other ranks wait at Lightning's barrier after the write: a
    :class:`CheckpointWriteError` raised on rank 0 left them there until rank 0's process had gone, each then
    printing a traceback (gloo: "Connection closed by peer"; another backend may wait out the process-group timeout).
    Here a failed write is held (:meth:`AtomicCheckpointIO.holding`) past that barrier, then every rank raises it
    together (:func:`~phylocl.workflows.rank_failures.raise_together`; rank 0's is the one the command line prints).
    One process: as Lightning's.
    """

    def save_checkpoint(self, filepath, weights_only: bool | None = None, storage_options=None) -> None:
        io = self.strategy.checkpoint_io
        if self.world_size < 2 or not isinstance(io, AtomicCheckpointIO):
            return super().save_checkpoint(filepath, weights_only, storage_options)
        from phylocl.workflows.rank_failures import raise_together

        with io.holding() as failed:
            super().save_checkpoint(filepath, weights_only, storage_options)
        raise_together(failed[0] if failed else None)


class StepCheckpoint(L.Callback):
    """``last.ckpt`` every ``every`` optimizer steps, so that a run killed without warning loses at most ``every``.

    Written at the start of the batch after the step (when ``global_step`` is a multiple of ``every``), before
    anything of that batch is done: where a held Ctrl-C writes ``interrupted.ckpt`` (:class:`DeferredInterrupt`), the
    place ``--resume`` continues exactly (that batch is redone). Not after the steps that a validation follows (every
    ``val_every``): ``last.ckpt`` is written at that validation's end (or, without validation, at that step's end),
    and one written before the validation would be resumed as if it had run. Nor at the step a run starts or resumes
    at. ``seconds``: the time of each write (flushing the log rows, then the checkpoint).
    """

    def __init__(self, *, dirpath: str | Path, every: int, val_every: int) -> None:
        super().__init__()
        if every < 1 or val_every < 1:
            raise ValueError(f"every and val_every must be >= 1, got {every} and {val_every}")
        self.path = Path(dirpath) / "last.ckpt"
        self.every, self.val_every = int(every), int(val_every)
        self._start: int | None = None
        self.seconds: list[float] = []

    def on_train_start(self, trainer, pl_module) -> None:
        self._start = int(trainer.global_step)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        step = int(trainer.global_step)
        if step == self._start or step % self.every or step % self.val_every == 0:
            return
        started = time.perf_counter()
        for logger in trainer.loggers:  # the rows up to this step, on disk with the checkpoint that follows them
            logger.save()
        trainer.save_checkpoint(self.path)
        self.seconds.append(time.perf_counter() - started)


def _stepped_not_logged(trainer) -> bool:
    """Whether training stopped in a batch's ``on_train_batch_end`` hooks (a ``last.ckpt`` being saved, say): its
    optimizer step done, its row not yet handed to the logger. Lightning resumes such a checkpoint after that
    batch (as from a ``last.ckpt`` saved there), so the row would be missing from ``logs/metrics.csv``."""
    try:
        total = trainer.fit_loop.epoch_loop.batch_progress.total
        return (bool(trainer.training) and total.ready == total.started == total.processed
                and total.completed == total.processed - 1)
    except AttributeError:  # another Lightning's loop layout: nothing logged, as before
        return False


class InterruptCheckpoint(OnExceptionCheckpoint):
    """``interrupted.ckpt`` when training stops on Ctrl-C or an unexpected error; none for an InputError, for a
    checkpoint that does not fit the model (saving then would store untrained weights for the next --resume) or
    for a checkpoint that could not be written (:class:`CheckpointWriteError`; --resume takes the one before)."""

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if isinstance(exception, InputError) or state_dict_mismatch(exception) is not None:
            return
        write_failed = isinstance(exception, CheckpointWriteError)  # a full disk: interrupted.ckpt would fail too
        if _stepped_not_logged(trainer):  # a resume does not redo this step: log its row now, or it is lost
            with contextlib.suppress(Exception):
                trainer._logger_connector.update_train_step_metrics()
        for logger in trainer.loggers:  # rows logged since the last flush: a resume continues after them
            with contextlib.suppress(Exception):
                logger.save()
        if trainer.validating or trainer.sanity_checking:
            # Lightning resumes a validation cut short by skipping as many batches at its end as were done (the
            # figures of that step came from part of the families, and chose best.ckpt): resume instead from the
            # checkpoint saved at the end of the validation before (last.ckpt), which redoes the steps since
            return
        if not write_failed:
            super().on_exception(trainer, pl_module, exception)


class DeferredInterrupt(L.Callback):
    """Hold Ctrl-C (SIGINT) and SIGTERM from a step's optimizer update to the start of the next batch.

    Acted on at the next batch's start (before anything of it is done: the case ``--resume`` continues exactly) or
    at the end of training. Elsewhere, an interrupt made the resumed run differ from an uninterrupted one:

    * between ``opt.step()`` and the end of the step (``sched.step()``, the step's log calls): the update was kept
      but the batch redone, its row lost and every later learning rate one step late;
    * inside a validation: Lightning resumes a validation cut short over all but as many batches as were done, so
      its figures (and the best.ckpt they choose) came from part of the families.

    In the forward and backward passes (most of a step's time) an interrupt acts at once, as before; so does a
    second signal during a validation (:class:`InterruptCheckpoint` then saves nothing, and ``--resume`` continues
    from the checkpoint of the validation before). Signal handlers: main thread only.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        super().__init__()
        self._held: dict[int, object] = {}  # signal -> its handler before the hold
        self._pending: int | None = None
        self._trainer = None

    def _hold(self, trainer) -> None:
        if not self._held and threading.current_thread() is threading.main_thread():
            self._trainer = trainer
            for sig in self.SIGNALS:
                self._held[sig] = signal.signal(sig, self._handler)

    def _handler(self, signum, frame) -> None:
        if self._pending is not None and self._trainer is not None and self._trainer.validating:
            self._release()  # a second one during a validation: at once, as the handler of before would have done
            self._deliver(signum)
        if self._pending is None and self._trainer is not None and self._trainer.validating:  # (a step: at once)
            logging.getLogger("phylocl").warning("%s received: training stops when this validation ends (press "
                                                 "Ctrl-C again to stop at once)", signal.Signals(signum).name)
        self._pending = signum

    def _release(self) -> None:
        for sig, handler in self._held.items():
            signal.signal(sig, handler)
        self._held = {}

    def _deliver(self, signum: int) -> None:
        """Act on ``signum`` as the handler in place before the hold would have (Lightning's and phylocl's SIGTERM
        handlers: Terminated, exit 143; SIGINT: KeyboardInterrupt)."""
        self._pending = None
        handler = signal.getsignal(signum)
        if callable(handler):
            handler(signum, None)
        raise KeyboardInterrupt

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self._hold(trainer)

    def on_validation_start(self, trainer, pl_module) -> None:
        self._hold(trainer)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._release()
        if self._pending is not None:
            self._deliver(self._pending)

    def on_train_end(self, trainer, pl_module) -> None:
        self.on_train_batch_start(trainer, pl_module, None, -1)

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._release()
        self._pending = None
