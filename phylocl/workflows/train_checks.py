"""Checks ``phylocl train`` makes before it writes anything, and the Lightning glue that keeps user errors one line.

- :func:`check_trainer_settings`: what the config check cannot know: a GPU asked for where there is none;
- :func:`lightning_errors`: Lightning's own refusals (devices, strategy, precision combinations) as one
  :class:`~phylocl.errors.InputError` line instead of a traceback;
- :func:`check_training_families`: at least two training families with two or more sequences (one family gives
  loss 0 and gradient 0, as ``phylocl compare`` already refuses);
- :func:`check_exportable`: finite weights and finite embeddings of a probe batch before the export (a run that
  diverges on its last update has finite losses and gradients but weights of 1e28 whose embeddings are NaN);
- :class:`InterruptCheckpoint`: ``interrupted.ckpt`` (and the log rows not yet flushed) on Ctrl-C or a crash, but
  not for a refused run (an InputError such as a diverged loss), which must leave nothing to resume from.
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import Iterator

from lightning.pytorch.callbacks import OnExceptionCheckpoint

from phylocl.errors import InputError

__all__ = ["check_trainer_settings", "lightning_errors", "check_training_families", "launched_rank",
           "split_notes", "check_exportable", "state_dict_mismatch", "InterruptCheckpoint", "interruption_kind"]

PROBE_SEQUENCES = 8  # training sequences embedded before the export


def launched_rank() -> int:
    """Global rank of this process as set by a launcher (``RANK``, or Lightning's ``NODE_RANK``/``LOCAL_RANK``)."""
    if "RANK" in os.environ:
        return int(os.environ["RANK"])
    return int(os.environ.get("NODE_RANK", 0)) + int(os.environ.get("LOCAL_RANK", 0))


def check_trainer_settings(trainer) -> None:
    """Refuse ``trainer.accelerator=gpu``/``cuda`` where no CUDA GPU is available, and ``ddp_spawn`` (``trainer``:
    TrainerConfig)."""
    import torch

    if str(trainer.accelerator).lower() in ("gpu", "cuda") and not torch.cuda.is_available():
        raise InputError(f"trainer.accelerator={trainer.accelerator} but no CUDA GPU is available here; use "
                         "trainer.accelerator=cpu or auto")
    if str(trainer.strategy).startswith("ddp_spawn"):  # its main process never sees the trained state
        raise InputError(f"trainer.strategy={trainer.strategy} is not supported: the process that exports the model "
                         "does not see the run's steps or best checkpoint; use trainer.strategy=ddp (or auto)")


def interruption_kind(trainer) -> type[KeyboardInterrupt]:
    """What stopped a run that Lightning's own handler ended: :class:`~phylocl.errors.Terminated` when it saw
    SIGTERM (exit 143), else ``KeyboardInterrupt`` (Ctrl-C, exit 130)."""
    from phylocl.errors import Terminated

    return Terminated if getattr(trainer, "received_sigterm", False) else KeyboardInterrupt


@contextlib.contextmanager
def lightning_errors(what: str) -> Iterator[None]:
    """Turn Lightning's configuration errors raised inside the block into one-line InputErrors."""
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    try:
        yield
    except (MisconfigurationException, ValueError, TypeError) as err:
        raise InputError(f"invalid {what} settings: {' '.join(str(err).split())}") from None


def check_exportable(encoder, probe, *, step: int) -> None:
    """Refuse (one :class:`InputError` line naming the step and the parameter) to export ``encoder`` when a weight
    is NaN/inf or the embeddings of the ``probe`` sequences are not finite."""
    import numpy as np
    import torch

    advice = "(training diverged; lower optim.lr or set optim.grad_clip); no encoder was exported"
    where = f"refusing to export the weights after step {step}"
    with torch.no_grad():
        for name, param in encoder.named_parameters():
            bad = param[~torch.isfinite(param)]
            if bad.numel():
                raise InputError(f"{where}: parameter {name} holds {bad.flatten()[0].item()} {advice}")
    was_training = encoder.training
    try:
        x = encoder.embed(list(probe)[:PROBE_SEQUENCES])  # (n, D)
        why = None if np.isfinite(x).all() else f"hold {x[~np.isfinite(x)].flat[0]}"
    except (RuntimeError, ValueError, FloatingPointError) as err:
        why = f"cannot be computed ({' '.join(str(err).split())[:120]})"
    finally:
        encoder.train(was_training)
    if why is not None:
        raise InputError(f"{where}: the embeddings of {min(len(probe), PROBE_SEQUENCES)} training sequences {why} "
                         f"{advice}")


def check_training_families(dm) -> None:
    """At least two training families must have two or more sequences (otherwise no batch has negatives)."""
    n = len(dm.train_set.family_index) and sum(len(v) >= 2 for v in dm.train_set.family_index.values())
    if n < 2:
        raise InputError(f"{n} training famil{'y has' if n == 1 else 'ies have'} two or more sequences; contrastive "
                         "training needs at least 2 (a batch of one family has loss 0 and gradient 0); add "
                         "families or change data.fractions")


def split_notes(dm, cfg) -> list[str]:
    """What a small dataset changes, said once before training: a batch size capped by the number of training
    families, and a validation or test split too small to score (fewer than 2 families: no validation, no best
    checkpoint, no test figures)."""
    notes = []
    n_train = sum(len(v) >= 2 for v in dm.train_set.family_index.values())
    if cfg.data.batching == "random" and not cfg.data.evolved.fraction and cfg.data.batch_size > n_train:
        notes.append(f"data.batch_size is {cfg.data.batch_size} but the training split has {n_train} families with "
                     f"two or more sequences: every batch holds at most {n_train} pairs")
    if cfg.eval.enabled:
        for name, ds in (("validation", dm.val_set), ("test", dm.test_set)):
            n = len(set(ds.families))
            if n < 2:
                notes.append(f"the {name} split has {n} famil{'y' if n == 1 else 'ies'}: nothing is "
                             + ("validated and the last step is exported" if name == "validation" else "tested")
                             + " (retrieval needs 2 or more); raise data.fractions for it or use more families")
    return notes


def state_dict_mismatch(err: BaseException) -> str | None:
    """One line for PyTorch's state-dict mismatch (a line per key, 2-37 lines), or ``None`` for other errors:
    ``"3 size mismatches (encoder.embedding.weight: [24, 32] in the checkpoint, [24, 48] in the model; ...)"``."""
    text = str(err)
    if not isinstance(err, RuntimeError) or "Error(s) in loading state_dict" not in text:
        return None
    sizes = re.findall(r"size mismatch for ([\w.]+): copying a param with shape torch.Size\((\[[^\]]*\])\) from "
                       r"checkpoint, the shape in current model is torch.Size\((\[[^\]]*\])\)", text)
    parts = []
    if sizes:
        shown = "; ".join(f"{k}: {a} in the checkpoint, {b} in the model" for k, a, b in sizes[:2])
        parts.append(f"{len(sizes)} size mismatch{'es' if len(sizes) > 1 else ''} ({shown}"
                     + (f"; ... {len(sizes) - 2} more)" if len(sizes) > 2 else ")"))
    for what in ("Missing", "Unexpected"):
        m = re.search(rf"{what} key\(s\) in state_dict: ([^\n]*)", text)
        if m:
            keys = re.findall(r'"([^"]+)"', m.group(1))
            parts.append(f"{len(keys)} {what.lower()} weights ({', '.join(keys[:3])}"
                         + (f", ... {len(keys) - 3} more)" if len(keys) > 3 else ")"))
    return "; ".join(parts) or " ".join(text.split())[:300]


class InterruptCheckpoint(OnExceptionCheckpoint):
    """``interrupted.ckpt`` when training stops on Ctrl-C or an unexpected error; none for an InputError or for a
    checkpoint that does not fit the model (saving then would store untrained weights for the next --resume)."""

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if isinstance(exception, InputError) or state_dict_mismatch(exception) is not None:
            return
        for logger in trainer.loggers:  # rows logged since the last flush: a resume continues after them
            with contextlib.suppress(Exception):
                logger.save()
        super().on_exception(trainer, pl_module, exception)
