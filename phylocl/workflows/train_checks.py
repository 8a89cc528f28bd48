"""Checks ``phylocl train`` makes before it writes anything, and the Lightning glue that keeps user errors one line
(the checkpoints written during training and on interrupts: :mod:`phylocl.workflows.train_checkpoints`).

- :func:`check_trainer_settings`: what the config check cannot know: a GPU asked for where there is none;
- :func:`lightning_errors`: Lightning's own refusals (devices, strategy, precision combinations) as one
  :class:`~phylocl.errors.InputError` line instead of a traceback;
- :func:`check_training_families`: at least two training families with two or more sequences (one family gives
  loss 0 and gradient 0, as ``phylocl compare`` already refuses);
- :func:`check_exportable`: finite weights and finite embeddings of a probe batch before the export (a run that
  diverges on its last update has finite losses and gradients but weights of 1e28 whose embeddings are NaN);
- :func:`input_fingerprint` / :func:`check_same_inputs`: what a run trains on (its splits as read, its input
  files' sizes and times), recorded in its checkpoints; ``--resume`` refuses data that changed since the run began.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Iterator

from phylocl.data.orthofinder import find_orthofinder_results
from phylocl.errors import InputError

__all__ = ["check_trainer_settings", "lightning_errors", "check_training_families", "launched_rank",
           "split_notes", "check_exportable", "state_dict_mismatch", "interruption_kind", "input_fingerprint",
           "check_same_inputs"]

PROBE_SEQUENCES = 8  # training sequences embedded before the export


def launched_rank() -> int:
    """Global rank of this process as set by a launcher (``RANK``, or Lightning's ``NODE_RANK``/``LOCAL_RANK``)."""
    if "RANK" in os.environ:
        return int(os.environ["RANK"])
    return int(os.environ.get("NODE_RANK", 0)) + int(os.environ.get("LOCAL_RANK", 0))


def check_trainer_settings(trainer) -> None:
    """Refuse ``trainer.accelerator=gpu``/``cuda`` where no CUDA GPU is available, ``ddp_spawn``, a strategy
    Lightning does not know and ``num_nodes > 1`` outside a multi-node launch (``trainer``: TrainerConfig)."""
    import torch

    if str(trainer.accelerator).lower() in ("gpu", "cuda") and not torch.cuda.is_available():
        raise InputError(f"trainer.accelerator={trainer.accelerator} but no CUDA GPU is available here; use "
                         "trainer.accelerator=cpu or auto")
    if str(trainer.strategy).startswith("ddp_spawn"):  # its main process never sees the trained state
        raise InputError(f"trainer.strategy={trainer.strategy} is not supported: the process that exports the model "
                         "does not see the run's steps or best checkpoint; use trainer.strategy=ddp (or auto)")
    from lightning.pytorch.strategies import StrategyRegistry

    names = StrategyRegistry.available_strategies()
    if str(trainer.strategy) != "auto" and str(trainer.strategy) not in names:  # before the data are read
        raise InputError(f"trainer.strategy={trainer.strategy} is not a Lightning strategy; use auto, ddp or one of "
                         f"{', '.join(n for n in names if 'spawn' not in n)}")
    if trainer.num_nodes > 1 and not _multi_node_launch():
        raise InputError(f"trainer.num_nodes={trainer.num_nodes} but this process was not started as one of several "
                         "nodes (no SLURM, torchrun, LSF or MPI job, no MASTER_ADDR): it would wait for the other "
                         "nodes forever; launch it on every node (srun, torchrun, or MASTER_ADDR/MASTER_PORT/NODE_RANK "
                         "set), or use trainer.num_nodes=1")


def _multi_node_launch() -> bool:
    """Whether a cluster launcher started this process (the environments Lightning detects), or ``MASTER_ADDR`` is
    set for a hand-made multi-node launch."""
    from lightning.fabric.plugins.environments import (LSFEnvironment, MPIEnvironment, SLURMEnvironment,
                                                       TorchElasticEnvironment)

    if "MASTER_ADDR" in os.environ:
        return True
    for env in (SLURMEnvironment, TorchElasticEnvironment, LSFEnvironment, MPIEnvironment):
        with contextlib.suppress(Exception):  # MPI without mpi4py, say
            if env.detect():
                return True
    return False


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
    if not cfg.data.evolved.fraction and cfg.data.batch_size > n_train:  # hard-negative batches too: one of all
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


# ------------------------------------------------------------------------------------------ inputs of a run
INPUTS_VERSION = 1
_LISTED_FILES = 512  # files of one input folder recorded one by one (above: their count and a digest of the listing)


def _input_roots(data) -> list[tuple[str, Path]]:
    """``(setting, path)`` of every input of the ``data:`` section a run reads: ``data.path`` (+ ``data.labels``),
    ``data.paths``, ``data.extra_train_paths`` and a ``data.evolved.roots`` FASTA file."""
    roots = [("data.path", Path(data.path))] if data.path else []
    roots += [("data.labels", Path(data.labels))] if data.labels else []
    roots += [("data.paths", Path(p)) for p in data.paths]
    roots += [("data.extra_train_paths", Path(p)) for p in data.extra_train_paths]
    evolved_roots = getattr(getattr(data, "evolved", None), "roots", "train")
    if evolved_roots not in (None, "train", "random"):
        roots.append(("data.evolved.roots", Path(evolved_roots)))
    return roots


def _files_of(root: Path) -> list[Path]:
    """The files a reader of ``root`` looks at: ``root`` itself, or a folder's own files (sequences.fasta +
    labels.tsv, one FASTA per family, proteomes), those of its ``trees/`` and an OrthoFinder table below it."""
    if not root.is_dir():
        return [root]
    files = []
    for folder in (root, root / "trees"):
        if folder.is_dir():
            files += sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file())
    with contextlib.suppress(Exception):  # several OrthoFinder runs: the reader has refused them already
        table = find_orthofinder_results(root)
        if table is not None and table not in files:
            files.append(table)
    return files


def _stat(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [int(st.st_size), int(st.st_mtime_ns)]


def _split_digest(ds) -> dict:
    """Families, sequences and a sha256 of what the split holds: every record's id, family and letters in order,
    the label columns and the tree of each family, path and Newick text (what training reads; not the sequence
    files' bytes)."""
    h = hashlib.sha256()
    ids, fams, seqs = ds.ids, ds.families, ds.sequences
    step = 8192  # records joined per update: hashing runs near memory speed, without a copy of the whole split
    for i in range(0, len(ids), step):
        h.update("".join(f"{a}\t{f}\t{s}\n" for a, f, s in zip(ids[i:i + step], fams[i:i + step],
                                                               seqs[i:i + step])).encode())
    for column in sorted(ds.metadata):
        h.update(f"\0{column}\0".encode())
        values = ds.metadata[column]
        for i in range(0, len(values), step):
            h.update("".join(f"{v}\n" for v in values[i:i + step]).encode())
    for fam in sorted(ds.trees):
        h.update(f"\0tree\0{fam}\t{ds.trees[fam]}\n".encode())
        try:  # the tree's Newick text: its branch lengths choose the distant pairs (small files)
            h.update(Path(ds.trees[fam]).read_bytes())
        except OSError:
            h.update(b"\0unreadable\0")
    return {"families": len(set(fams)), "sequences": len(ids), "sha256": h.hexdigest()}


def input_fingerprint(data, dm) -> dict:
    """What a run trains on, recorded in its checkpoints so that ``--resume`` can tell whether it changed.

    ``splits``: per split (train/val/test) its families, sequences and a sha256 of what it holds (ids, families,
    letters, label columns, trees), as read and split: what matters, whatever file it came from (about 1 s per GB
    of sequences); ``files``: size and modification time of every input file, to name the one that changed;
    ``roots``: the sha256 of a ``data.evolved.roots`` FASTA file (read later, during training).
    ``data``: the run's ``data:`` config section; ``dm``: its data module after ``setup()``.
    """
    files: dict[str, dict] = {}
    roots_digest = None
    for setting, root in _input_roots(data):
        entry = {"setting": setting}
        listed = _files_of(root)
        stats = {str(p): _stat(p) for p in listed}
        if len(stats) <= _LISTED_FILES:
            entry["files"] = stats
        else:
            entry["count"] = len(stats)
            entry["listing"] = hashlib.sha256(json.dumps(stats, sort_keys=True).encode()).hexdigest()
        files[str(root)] = entry
        if setting == "data.evolved.roots" and root.is_file():
            with open(root, "rb") as f:
                roots_digest = hashlib.file_digest(f, "sha256").hexdigest()
    splits = {name: _split_digest(ds) for name, ds in (("train", dm.train_set), ("val", dm.val_set),
                                                       ("test", dm.test_set))}
    return {"version": INPUTS_VERSION, "splits": splits, "files": files, "roots": roots_digest}


def _changed_files(recorded: dict, current: dict) -> list[tuple[str, str]]:
    """``(file, how)`` for every input file whose size or time differs, that is new or that is gone (``how``: "was
    modified", "is gone" ...)."""
    out = []
    for root, now in current.items():
        was = recorded.get(root)
        if not isinstance(was, dict):
            out.append((root, "was not an input when the run began"))
            continue
        if isinstance(was.get("files"), dict) and "files" in now:
            for path in sorted(set(was["files"]) | set(now["files"])):
                a, b = was["files"].get(path), now["files"].get(path)
                if a == b:
                    continue
                a, b = (v if isinstance(v, list) and len(v) == 2 else None for v in (a, b))
                if path not in now["files"] or b is None:
                    how = "is gone"
                elif path not in was["files"] or a is None:
                    how = "is new"
                elif a[0] != b[0]:
                    how = f"was {a[0]} bytes, is {b[0]} now"
                else:
                    how = "was modified"
                out.append((path, how))
        elif (was.get("files"), was.get("listing"), was.get("count")) != (now.get("files"), now.get("listing"),
                                                                          now.get("count")):
            n_was = was.get("count", len(was.get("files") or {}))
            n_now = now.get("count", len(now.get("files") or {}))
            out.append((root, f"holds other files ({n_was} then, {n_now} now)"))
    order = ("was ", "holds", "is gone", "is new")  # edits first: a new file is more often one the reader skips
    return sorted(out, key=lambda item: next(i for i, w in enumerate(order + ("",)) if item[1].startswith(w)))


def check_same_inputs(recorded: dict | None, current: dict, *, checkpoint: str) -> str | None:
    """Refuse (:class:`InputError`, one line naming the changed file) to resume a run whose data changed since it
    began: its splits (families, sequences, letters) or its evolved roots differ from those recorded in the
    checkpoint it resumes from. Returns a note when the checkpoint records nothing (an earlier phylocl's run: not
    checked), else ``None``. Files only touched (same data read) resume."""
    if not isinstance(recorded, dict) or not isinstance(recorded.get("splits"), dict):
        return (f"{checkpoint} records no fingerprint of the training data (a run of an earlier phylocl): not "
                "checked whether its data changed since the run began")
    if recorded["splits"] == current["splits"] and recorded.get("roots") == current.get("roots"):
        return None
    what = []
    for name in ("train", "val", "test"):
        a, b = recorded["splits"].get(name), current["splits"][name]
        a = a if isinstance(a, dict) else {}
        if (a.get("families"), a.get("sequences")) != (b["families"], b["sequences"]):
            what.append(f"{name}: {a.get('families')} families, {a.get('sequences')} sequences then, "
                        f"{b['families']} and {b['sequences']} now")
    counts = f" ({'; '.join(what)})" if what else ""
    advice = ("--resume would continue on other data; restore the data the run began with, or train into a new "
              "--out")
    files = recorded.get("files")
    changed = _changed_files(files if isinstance(files, dict) else {}, current["files"])
    if changed:
        path, how = changed[0]
        more = f" (and {len(changed) - 1} more input file(s))" if len(changed) > 1 else ""
        raise InputError(f"the training data changed since the run began: this file {how}{more}{counts}; "
                         f"{advice}", path=path)
    inputs = ", ".join(current["files"]) or "the inputs"
    raise InputError(f"the training data read from {inputs} differs from what the run began with{counts}, though "
                     f"no input file's size or time changed; {advice}")
