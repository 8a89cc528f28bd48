"""Process-wide settings of the ``phylocl`` command line, made by :func:`phylocl.cli.main` only.

The library logs through :mod:`logging` (logger ``phylocl`` and its children) and never changes warning filters
or logger levels itself: an application embedding phylocl keeps its own. The command line, which owns its
process, routes ``phylocl`` log records to stderr as ``phylocl COMMAND: message`` (INFO and up, WARNING and up
with ``--quiet``) and silences Lightning's start-up chatter and warnings that do not apply to how ``phylocl
train``, ``compare`` and ``embed --devices`` drive it.
"""

from __future__ import annotations

import logging
import sys
import warnings

__all__ = ["configure_logging", "quiet_lightning"]

_LIGHTNING_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda",
                      "lightning.fabric.utilities.seed", "lightning.pytorch.utilities.model_summary",
                      "lightning.pytorch.trainer.connectors.signal_connector",  # "Received SIGTERM"
                      "lightning.pytorch.trainer.connectors.checkpoint_connector",  # its weights_only note
                      "lightning.fabric.utilities.distributed")  # "Initializing distributed: GLOBAL_RANK ..."
_LIGHTNING_WARNINGS = (
    ".*does not have many workers.*",  # phylocl's loaders are fast in-process readers
    ".*LeafSpec.*",
    ".*number of training batches.*",  # training is counted in steps, not epochs
    ".*manual optimization and every_n_train_steps.*",
    r".*fit\(ckpt_path=.*",
    ".*exists and is not empty.*",  # resume: logs are kept (workflows.run_folder)
    ".*predict returned None.*",  # embed --devices: each rank writes its shards, predict returns nothing
    ".*your dataloader is not resumable.*",  # it is: the datamodule's state_dict (data.samplers.ResumableBatches)
)


class _StderrHandler(logging.StreamHandler):
    """Writes to the ``sys.stderr`` of the moment (so redirections and test captures see the lines)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr  # not setStream(): it flushes the previous stream, which may be closed by now
        super().emit(record)


def configure_logging(command: str, *, quiet: bool = False) -> None:
    """Send ``phylocl`` log records to stderr as ``phylocl COMMAND: message``; replaces an earlier setup."""
    logger = logging.getLogger("phylocl")
    for handler in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
        logger.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter(f"phylocl {command}: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)


def quiet_lightning() -> None:
    """Lightning's info loggers to WARNING and the warnings listed above ignored, for this process."""
    for name in _LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for message in _LIGHTNING_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
