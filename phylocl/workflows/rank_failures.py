"""One failure, one report, in a run of several processes (``phylocl train`` with ``trainer.devices``, ``phylocl
embed --devices``).

A rank that stops on its own leaves the others in the next collective: on CPU (gloo) they failed there, each with
a traceback of its own ("Connection closed by peer"), once its process had gone (a backend that does not notice may
wait out the process-group timeout, 30 minutes; not measured); a failure every rank meets (a bad record: every rank reads the whole input) was printed once per rank; and a
rank other than 0 that exited first got rank 0 killed by Lightning's launcher (exit 137) before it had reported.

Instead, at a point every rank reaches (the end of a checkpoint write, of a rank's shards), each rank hands
:func:`raise_together` the error it met there, or ``None``. When one failed, every rank raises: rank 0 the error of
the lowest failing rank (its own, or rebuilt from what that rank sent), which the command line prints, one line and
exit 2; every other rank raises its own error (else that one) marked :func:`reported_by_rank_zero`, which the command
line does not print and exits 0 on, so that the launcher never stops rank 0 before it has reported. (An error the
command line does not print in one line, a bug, reaches rank 0 as a RuntimeError naming it; the rank that met it
prints its traceback.)
"""

from __future__ import annotations

from phylocl.errors import InputError

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


def _summary(err: BaseException) -> tuple:
    """What the other ranks need to raise ``err`` again, as plain values: ``(kind, type name, text, errno, strerror,
    filename)``; ``kind`` is how the command line prints it (``input``, ``os``, ``memory``) or ``other``."""
    kind = ("input" if isinstance(err, InputError) else "os" if isinstance(err, OSError)
            else "memory" if isinstance(err, MemoryError) else "other")
    os_fields = (err.errno, err.strerror, err.filename) if isinstance(err, OSError) else (None, None, None)
    fields = (kind, type(err).__name__, str(err), *os_fields)
    return tuple(v if v is None or isinstance(v, int) else str(v) for v in fields)


def _rebuild(summary: tuple, rank: int) -> BaseException:
    """The error another rank sent, as the command line prints it (an InputError, OSError or MemoryError with the
    same words), or a RuntimeError naming that rank, the error's type and text."""
    kind, name, text, code, strerror, filename = summary
    if kind == "input":
        return InputError(text)
    if kind == "os":
        return OSError(code, strerror, filename) if code is not None else OSError(text)
    if kind == "memory":
        return MemoryError(text)
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
    own = error is not None
    if not own:  # (when rank 0 failed, failed[0] is 0: it raises its own)
        error = _rebuild(sent[failed[0]], failed[0])
    if dist.get_rank() != 0 and not (own and _summary(error)[0] == "other"):  # (a bug's traceback: printed here)
        mark_reported_by_rank_zero(error)
    raise error
