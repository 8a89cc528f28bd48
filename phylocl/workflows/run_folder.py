"""The output folder of ``phylocl train``: claimed and locked, its config written first, its logs kept on resume.

- :func:`claim`: creates the folder (and missing parents) and takes an exclusive lock (``fcntl.flock`` on
  ``.phylocl-train.lock``, which holds the owner's pid) for the whole run; a second run into the same folder is
  refused with one line. The kernel drops the lock when its process dies, so a lock file left by a killed run
  (a stale pid) does not block. An :class:`~phylocl.errors.InputError` raised inside removes what the claim
  created, so a refused run leaves no empty or half-filled folder behind.
- :func:`output_lock`: the same for one output file (``phylocl embed``): ``.<name>.lock`` beside it, held while a
  run writes it, so that a second run writing the same file is refused at once. Both use :func:`held_lock`, which
  removes its lock file when the run ends (a file left by a killed run names a dead pid and blocks nothing).
- :func:`write_config` / :func:`check_resume_config`: ``config.yaml`` is written when training starts, so
  ``phylocl train --resume --out DIR`` finds it after an interrupt; resuming with another config names what differs.
- :func:`kept_metrics`: Lightning's CSV logger deletes ``logs/metrics.csv`` when it starts; on resume the earlier
  rows are put back in front of the new ones.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import os
import shutil
import warnings
from pathlib import Path
from typing import Callable, Iterator

import yaml

from phylocl.atomic import atomic_path, names_open, short_name
from phylocl.errors import InputError, os_error_message

__all__ = ["exported_model", "unfinished_signs", "claim", "check_unlocked", "held_lock", "output_lock",
           "output_lock_path", "write_config", "stored_config", "check_resume_config", "config_differences",
           "kept_metrics", "LOCK_NAME", "RESUMABLE_KEYS"]

LOCK_NAME = ".phylocl-train.lock"
RESUMABLE_KEYS = ("trainer.max_steps", "trainer.progress_bar", "data.num_workers",  # may change on --resume
                  "trainer.checkpoint_every_n_steps")  # (absent from the config.yaml of phylocl 0.5.0 and earlier)


def exported_model(out: str | Path) -> Path | None:
    """The model a finished run exported into ``out``: ``out`` itself when it is a model folder (``config.json`` +
    ``model.safetensors``, what ``phylocl train`` writes, ``config.json`` last), or the ``out/encoder.pt`` of a run of
    an earlier phylocl; ``None`` when the run did not finish."""
    out = Path(out)
    if (out / "config.json").is_file() and (out / "model.safetensors").is_file():
        return out
    if (out / "encoder.pt").is_file():
        return out / "encoder.pt"
    return None


RUN_FILES = ("config.json", "config.yaml", "metrics.json", "model.safetensors", "splits.json", "logs", "checkpoints",
             "encoder.pt")  # what phylocl train writes into its --out folder (encoder.pt: earlier versions)


def unfinished_signs(out: str | Path) -> list[str]:
    """What a started but unfinished run left in ``out`` (checkpoints, logs, its config), as relative paths."""
    out = Path(out)
    signs = [f"checkpoints/{p.name}" for p in sorted((out / "checkpoints").glob("*.ckpt"))]
    signs += [name for name in ("logs/metrics.csv", "config.yaml") if (out / name).is_file()]
    return signs


def _first_missing(path: Path) -> Path | None:
    """The top-most folder of ``path`` that does not exist yet (``None`` when ``path`` exists)."""
    top = None
    for p in (path, *path.parents):
        if p.exists():
            break
        top = p
    return top


def _acquire(lock: Path, *, busy: Callable[[str], Exception], unguarded: Callable[[str], str],
             probe: bool) -> int | None:
    """Open and lock ``lock`` (see :func:`held_lock`); the open descriptor, or ``None`` when ``probe`` finds no file."""
    for _ in range(64):
        try:
            fd = os.open(lock, os.O_RDWR if probe else os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            if probe:
                return None
            raise InputError("cannot create the lock file: no such folder", path=lock) from None
        except OSError as err:
            raise InputError(f"cannot create the lock file: {os_error_message(err)}", path=lock) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise busy(owner) from None
        except OSError as err:  # a file system without locks (some network mounts): run, unguarded, and say so
            warnings.warn(unguarded(os_error_message(err)), stacklevel=4)
            return fd
        if probe or names_open(lock, fd):
            return fd
        os.close(fd)  # the file its holder removed as it finished: lock the one the path names now
    raise busy("?")


@contextlib.contextmanager
def held_lock(lock: str | Path, *, busy: Callable[[str], Exception], unguarded: Callable[[str], str],
              probe: bool = False) -> Iterator[None]:
    """Hold an exclusive ``fcntl.flock`` on the file ``lock`` for the ``with`` block: the lock of one output that
    one phylocl process at a time may write (a ``train`` run folder, an ``embed`` output).

    The file is created holding this process's pid and removed at the end (while still locked; a process that
    locked the removed file meanwhile sees that the path no longer names it and starts over, so two processes
    never both hold it). The kernel drops the lock when its holder dies: a file left by a killed run (SIGKILL)
    does not block, and the next holder removes it.

    Args:
        busy: ``busy(owner pid)`` is the exception raised at once when another process holds the lock (nothing
            is written or removed then).
        unguarded: ``unguarded(reason)`` is the warning given where the file system has no locks (some network
            mounts); the block then runs unguarded.
        probe: only check that nobody holds the lock: the file is not created, written or removed.
    """
    lock = Path(lock)
    fd = _acquire(lock, busy=busy, unguarded=unguarded, probe=probe)
    if fd is None:
        yield
        return
    try:
        if not probe:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        if not probe and names_open(lock, fd):
            with contextlib.suppress(OSError):
                lock.unlink()
        os.close(fd)


@contextlib.contextmanager
def _lock(out: Path, *, keep_file: bool = False, name: str = LOCK_NAME, command: str = "train") -> Iterator[None]:
    def busy(owner: str) -> InputError:
        return InputError(f"another `phylocl {command}` (pid {owner}) is writing to this folder; wait for it to "
                          "finish or choose another --out", path=out)

    def unguarded(reason: str) -> str:
        return f"{out}: cannot lock the run folder ({reason}); make sure no other run writes to it"

    with held_lock(out / name, busy=busy, unguarded=unguarded, probe=keep_file):
        yield


def output_lock_path(out: str | Path) -> Path:
    """The lock file of the output file ``out``: ``.<name>.lock`` beside it (see :func:`output_lock`)."""
    out = Path(out)
    return out.with_name(f".{short_name(out.name)}.lock")


@contextlib.contextmanager
def output_lock(out: str | Path, *, command: str, option: str = "-o") -> Iterator[None]:
    """Hold the lock of the output file ``out`` (``.<name>.lock`` beside it, :func:`held_lock`) for the ``with``
    block: a second ``phylocl <command>`` writing the same file is refused at once with one line, and leaves
    nothing behind. The lock file exists only while a run writes ``out`` (or after a run killed with SIGKILL,
    when it holds a dead pid and blocks nothing)."""
    out = Path(out)

    def busy(owner: str) -> InputError:
        return InputError(f"another `phylocl {command}` (pid {owner}) is writing this output; wait for it to finish "
                          f"or choose another {option}", path=out)

    def unguarded(reason: str) -> str:
        return f"{out}: cannot lock the output ({reason}); make sure no other run writes to it"

    created = _first_missing(out.parent)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot create the output's folder: {os_error_message(err)}", path=out) from None
    try:
        with held_lock(output_lock_path(out), busy=busy, unguarded=unguarded):
            yield
    except BaseException:
        _remove_empty(out.parent, created)  # folders made for an output that was not written
        raise


def _remove_empty(folder: Path, top: Path | None) -> None:
    """Remove ``folder`` and its parents up to ``top`` (folders a run created), those that are empty."""
    if top is None:
        return
    for p in (folder, *folder.parents):
        try:
            p.rmdir()
        except OSError:
            return
        if p == top:
            return


def check_unlocked(out: str | Path, *, name: str = LOCK_NAME, command: str = "train") -> None:
    """Refuse at once (before reading data or checkpoints) when another run holds ``out``'s lock."""
    lock = Path(out) / name
    if not lock.is_file():
        return
    with contextlib.suppress(FileNotFoundError), _lock(Path(out), keep_file=True, name=name, command=command):
        pass


@contextlib.contextmanager
def claim(out: str | Path, *, name: str = LOCK_NAME, command: str = "train") -> Iterator[Path]:
    """Create and lock the run folder ``out`` for the duration of the ``with`` block (see module doc).

    ``name``: the lock file; ``command``: the command named when another one holds it (``phylocl compare`` locks its
    study folder with ``.phylocl-compare.lock``)."""
    out = Path(out)
    created = _first_missing(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot create the output folder: {os_error_message(err)}", path=out) from None
    try:
        with _lock(out, name=name, command=command):
            yield out
    except InputError as err:
        if created is not None and f"another `phylocl {command}`" not in str(err):
            shutil.rmtree(created, ignore_errors=True)
        raise


def stored_config(out: str | Path) -> Path | None:
    """``out/config.yaml`` if a run wrote one."""
    path = Path(out) / "config.yaml"
    return path if path.is_file() else None


def write_config(out: Path, config: dict) -> Path:
    """Write ``out/config.yaml`` (atomically)."""
    with atomic_path(out / "config.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    return out / "config.yaml"


def _flatten(d, prefix="") -> dict:
    out = {}
    for k, v in (d or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def config_differences(stored: dict, new: dict, *, ignore=RESUMABLE_KEYS) -> list[str]:
    """``key: stored -> new`` for every dotted key whose value differs (keys in ``ignore`` left out)."""
    a, b = _flatten(stored), _flatten(new)
    keys = sorted((set(a) | set(b)) - set(ignore))
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys if a.get(k) != b.get(k)]


def check_resume_config(path: Path, config: dict) -> None:
    """Refuse to resume the run whose config is ``path`` with a different ``config`` (one line naming the keys)."""
    try:
        stored = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as err:
        raise InputError(f"cannot read the stored config ({' '.join(str(err).split())[:200]})", path=path) from None
    diff = config_differences(stored, config)
    if diff:
        shown = "; ".join(diff[:6]) + (f"; and {len(diff) - 6} more" if len(diff) > 6 else "")
        raise InputError(f"--resume with a config that differs from the run's ({shown}); resume with the same "
                         f"config (omit --config/--set to use the stored one) or choose a new --out", path=path)


@contextlib.contextmanager
def kept_metrics(out: Path, *, resume: bool) -> Iterator[None]:
    """Keep the rows of ``out/logs/metrics.csv`` written before a resume (older steps first, then the new rows)."""
    metrics = out / "logs" / "metrics.csv"
    if not (resume and metrics.is_file()):
        yield
        return
    saved = metrics.with_name(".metrics.before-resume.csv")
    os.replace(metrics, saved)
    try:
        yield
    finally:
        _merge_rows(saved, metrics)


def _read_rows(path: Path) -> tuple[list[str], list[dict]]:
    if not path.is_file():
        return [], []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def _row_kind(row: dict) -> str:
    """``val`` for a row of validation figures (``val/...`` columns filled), else ``train``."""
    return "val" if any(k.startswith("val/") and v not in (None, "") for k, v in row.items()) else "train"


def _merge_rows(saved: Path, metrics: Path) -> None:
    old_cols, old = _read_rows(saved)
    new_cols, new = _read_rows(metrics)
    first_new = min((int(float(r["step"])) for r in new if r.get("step")), default=None)
    if first_new is not None:
        # the resumed run logs again from first_new on; at that step itself an old row of another kind (the training
        # row before a validation that was interrupted and is now rerun at the same step) was not logged again
        again = {_row_kind(r) for r in new if r.get("step") and int(float(r["step"])) == first_new}
        old = [r for r in old if r.get("step") and (int(float(r["step"])) < first_new or (
            int(float(r["step"])) == first_new and _row_kind(r) not in again))]
    cols = list(dict.fromkeys(old_cols + new_cols))
    with atomic_path(metrics) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=cols)
        writer.writeheader()
        writer.writerows(old + new)
    saved.unlink()
