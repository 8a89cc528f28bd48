"""One failure, one report, in a run of several processes (``phylocl train`` with ``trainer.devices``, ``phylocl
embed --devices``).

A rank that stops on its own leaves the others in the next collective: they waited there until the process-group
timeout (30 minutes), or failed with a traceback of their own ("Connection closed by peer") once its process had
gone; a failure every rank meets (a bad record: every rank reads the whole input) was printed once per rank; and a
rank other than 0 that exited first got rank 0 killed by Lightning's launcher (exit 137) before it had reported.

Instead, at a point every rank reaches (the end of a checkpoint write, of a rank's shards), each rank hands
:func:`raise_together` the error it met there, or ``None``. When one failed, every rank raises: rank 0 the error of
the lowest failing rank (its own, or rebuilt from what that rank sent), which the command line prints, one line and
exit 2; every other rank raises its own error (else that one) marked :func:`reported_by_rank_zero`, which the command
line does not print and exits 0 on, so that the launcher never stops rank 0 before it has reported.
"""

from __future__ import annotations

import pickle

__all__ = ["raise_together", "reported_by_rank_zero", "mark_reported_by_rank_zero"]

_MARK = "phylocl_reported_by_rank_zero"


def reported_by_rank_zero(err: BaseException) -> bool:
    """Whether ``err``, raised on a rank other than 0, is one that rank 0 raised too and reports."""
    return bool(getattr(err, _MARK, False))


def mark_reported_by_rank_zero(err: BaseException, like: BaseException | None = None) -> BaseException:
    """Mark ``err`` as reported by rank 0 (or, with ``like``, only when ``like`` is marked: an error rewrapped
    keeps the mark of the one it replaces); returns ``err``."""
    if like is None or reported_by_rank_zero(like):
        setattr(err, _MARK, True)
    return err


def _summary(err: BaseException) -> tuple[str, str, bytes | None]:
    """``(type name, text, pickled error or None)``: what the other ranks need to raise ``err`` again."""
    try:
        pickled = pickle.dumps(err)
    except Exception:  # an error with unpicklable state: its text only
        pickled = None
    return type(err).__name__, str(err), pickled


def _rebuild(summary: tuple[str, str, bytes | None], rank: int) -> BaseException:
    """The error another rank sent: unpickled, else a RuntimeError naming its type and text."""
    name, text, pickled = summary
    if pickled is not None:
        try:
            err = pickle.loads(pickled)
            if isinstance(err, BaseException):
                return err
        except Exception:
            pass
    return RuntimeError(f"the process of rank {rank} failed: {name}: {text}")


def raise_together(error: BaseException | None) -> None:
    """A collective: every rank of the default process group calls it at the same point with the error it met there
    (``None``: none). Returns when no rank failed; else raises on every rank (see the module docstring).

    Without a process group of two or more ranks it raises ``error`` (if any) as it is. Costs one
    ``all_gather_object`` of a few bytes per call when no rank failed.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        if error is not None:
            raise error
        return
    sent = [None] * dist.get_world_size()
    dist.all_gather_object(sent, None if error is None else _summary(error))
    failed = [r for r, s in enumerate(sent) if s is not None]
    if not failed:
        return
    if error is None:  # (when rank 0 failed, failed[0] is 0: it raises its own)
        error = _rebuild(sent[failed[0]], failed[0])
    if dist.get_rank() != 0:
        mark_reported_by_rank_zero(error)
    raise error
