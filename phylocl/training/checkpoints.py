"""Reading Lightning checkpoints as data: no code in a checkpoint ever runs.

A ``.ckpt`` is a pickle; loading one with ``torch.load`` and weights-only mode off runs whatever the pickle says (a
crafted ``checkpoints/last.ckpt`` would run its code on ``phylocl train --resume``). Every checkpoint phylocl reads
goes through :func:`load_checkpoint` (and Lightning's own load on resume through :func:`checkpoint_globals`), which
unpickles tensors, containers and plain values only (``weights_only=True``), plus the few data-only types listed in
:data:`ALLOWED_TYPES`. Anything else is refused as :class:`UnsafeCheckpoint`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from pickle import UnpicklingError  # the error type only: nothing here unpickles with pickle
from typing import Iterator

import numpy as np
import torch

__all__ = ["load_checkpoint", "checkpoint_globals", "UnsafeCheckpoint", "ALLOWED_TYPES", "INPUTS_KEY"]

INPUTS_KEY = "phylocl_inputs"  # the fingerprint of the run's training data (plain data) that --resume compares

# Data-only types a Lightning checkpoint may hold beyond tensors and builtins: numpy scalars and dtypes (a metric
# logged as np.float64 ends up in ModelCheckpoint's state). Reconstructing them runs no user code.
ALLOWED_TYPES = (np.dtype, np.ndarray, np.generic, *{type(np.dtype(t)) for t in ("f4", "f8", "i4", "i8", "b1")})


def _numpy_reconstructors() -> list:
    """The numpy functions pickles of numpy scalars/arrays name (their module moved in numpy 2)."""
    out = []
    for mod in ("numpy._core.multiarray", "numpy.core.multiarray"):
        with contextlib.suppress(ImportError, AttributeError):
            m = __import__(mod, fromlist=["scalar", "_reconstruct"])
            out += [m.scalar, m._reconstruct]
    return out


class UnsafeCheckpoint(ValueError):
    """The checkpoint holds objects whose unpickling could run code (anything but tensors and plain data)."""


@contextlib.contextmanager
def checkpoint_globals() -> Iterator[None]:
    """Within the block, ``torch.load(weights_only=True)`` also accepts :data:`ALLOWED_TYPES` (for Lightning's own
    load of ``trainer.fit(ckpt_path=..., weights_only=True)``)."""
    with torch.serialization.safe_globals([*ALLOWED_TYPES, *_numpy_reconstructors()]):
        yield


def load_checkpoint(path: str | Path) -> dict:
    """The checkpoint at ``path`` as a dict, on the CPU, unpickled as data only.

    Raises :class:`UnsafeCheckpoint` naming the first disallowed object when the file would run code, and the
    errors of a damaged file (``RuntimeError``, ``EOFError``, ``zipfile`` errors) as ``torch.load`` raises them.
    """
    try:
        with checkpoint_globals():
            state = torch.load(path, map_location="cpu", weights_only=True)
    except UnpicklingError as err:
        text = " ".join(str(err).split())
        if "weights only load failed" in text.lower() or "unsupported global" in text.lower():
            what = text.split("Unsupported global: GLOBAL ", 1)[-1].split(" ")[0] if "GLOBAL " in text else ""
            raise UnsafeCheckpoint("it holds Python objects other than tensors and plain data"
                                   + (f" ({what})" if what else "")) from None
        raise
    if not isinstance(state, dict):
        raise ValueError(f"not a training checkpoint (a {type(state).__name__}, not a dict)")
    return state
