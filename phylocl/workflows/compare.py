"""``phylocl compare``: train a grid of losses x batch sizes x seeds at an equal pair budget and compare them.

Every cell is a ``phylocl train`` run (:func:`phylocl.workflows.train.train`) on the same training families, scored
on the same held-out test families with the retrieval metrics of ``phylocl evaluate``. What differs between cells:
``loss.name``, ``data.batch_size``, the seed (``trainer.seed`` and ``data.seed``: initialisation, pair draws, crops)
and, through the fixed pair budget, ``trainer.max_steps = pairs_budget // batch_size`` (warm-up scaled alike). The
reference cell trains ``compare.reference.loss`` at a large batch (capped at the number of training families)
through cached-embedding gradients, on the same budget.

The family split is drawn once from the base config (``data.seed``, ``data.fractions``, ``data.group_column``,
``data.holdout``) and frozen into every cell as an explicit ``data.holdout``, so seeds vary training, never which
families are held out. Checkpoint selection: with ``compare.evaluations = n > 0`` each cell validates ``n`` times
(at equal pair counts) and exports the best validation checkpoint; with 0 (the default) it exports the last step.

Output directory ``DIR``::

    DIR/compare.yaml              resolved config (a re-run must match it, except for the grid lists)
    DIR/split.json                the frozen split: families and sequences per set
    DIR/results.csv               one row per cell (RESULT_COLUMNS), rewritten atomically after every cell
    DIR/summary.md, summary.json  mean ± std per loss and batch size, paired FlatNCE - InfoNCE differences
    DIR/compare.png, dynamics.png metric vs batch size; gradient norm and positive probability vs step
    DIR/cells/<cell>/             the cell's ``phylocl train`` output, plus cell.json (status, wall time)

Resumable: a cell with an exported model is not trained again; a failed cell is recorded (status ``failed``,
the error, ``error.log`` in its folder) and retried on the next run. The folder is locked while a study writes to
it (``.phylocl-compare.lock``, as ``phylocl train`` locks its run folder): a second study into it is refused.
"""

from __future__ import annotations

import csv
import gc
import json
import logging
import math
import shutil
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from tqdm import tqdm

from phylocl.atomic import atomic_path
from phylocl.config import TrainConfig
from phylocl.configtools import from_dict, to_dict
from phylocl.errors import InputError
from phylocl.safejson import read_json_object
from phylocl.workflows import train as train_workflow
from phylocl.workflows.compare_config import CompareConfig, load_compare_config, resolved_dict
from phylocl.workflows.compare_report import DYNAMICS, read_curves, write_report
from phylocl.workflows.run_folder import exported_model, unfinished_signs

log = logging.getLogger(__name__)

__all__ = ["compare", "CompareResult", "Cell", "plan_cells", "cell_config", "read_curves", "result_columns",
           "LOCK_NAME"]

LOCK_NAME = ".phylocl-compare.lock"  # held while a study writes to its folder (a second one is refused)

HEALTH = ("effective_rank", "alignment", "uniformity")  # of the test embeddings (phylocl.diagnostics)


@dataclass(frozen=True)
class Cell:
    """One training run of the grid. ``skip``: why it cannot run (empty when it can)."""

    loss: str
    batch_size: int
    seed: int
    reference: bool = False
    skip: str = ""

    @property
    def name(self) -> str:
        return f"{'ref-' if self.reference else ''}{self.loss}-b{self.batch_size}-s{self.seed}"


@dataclass
class CompareResult:
    out_dir: Path
    rows: list[dict]
    summary: dict


def result_columns(ks) -> list[str]:
    """Columns of ``results.csv``; metrics (retrieval, and the effective rank, alignment and uniformity of the
    embeddings) are on the test families, ``val_map_r`` on the validation ones."""
    metrics = ["top1", "map_r", "auc1", *(f"recall@{k}" for k in ks), "n_queries", "val_map_r", *HEALTH]
    dynamics = [f"{name}_{part}" for name in DYNAMICS for part in ("first", "last")]
    return ["cell", "loss", "batch_size", "seed", "reference", "steps", "pairs_seen", *metrics, *dynamics,
            "wall_seconds", "device", "status", "error"]


def plan_cells(grid: CompareConfig, train_families: int) -> list[Cell]:
    """Cells in run order: seed by seed (so an early stop leaves whole seeds), each seed's reference after its grid.

    A batch larger than ``train_families`` (families with a positive pair) is planned as skipped; the reference
    batch is capped at ``train_families`` and skipped when ``pairs_budget`` is below it (no whole step).
    """
    ref = grid.reference
    ref_batch = min(ref.batch_size, train_families)
    ref_seeds = grid.reference_seeds if ref.enabled else []
    cells: list[Cell] = []
    for seed in list(grid.seeds) + [s for s in ref_seeds if s not in grid.seeds]:
        if seed in grid.seeds:
            for b in grid.batch_sizes:
                for loss in grid.losses:
                    why = f"batch_size {b} > {train_families} training families" if b > train_families else ""
                    cells.append(Cell(loss=loss, batch_size=b, seed=seed, skip=why))
        if seed in ref_seeds:
            why = ("fewer than 2 training families" if ref_batch < 2 else
                   f"compare.pairs_budget {grid.pairs_budget} < reference batch {ref_batch}: 0 steps"
                   if grid.pairs_budget < ref_batch else "")
            cells.append(Cell(loss=ref.loss, batch_size=ref_batch, seed=seed, reference=True, skip=why))
    return cells


def cell_config(base: TrainConfig, grid: CompareConfig, cell: Cell, *, holdout: Mapping[str, list[str]],
                cache_dir: Path | None = None) -> TrainConfig:
    """The training config of one cell: ``base`` with the per-cell fields set (see the module docstring)."""
    steps = grid.pairs_budget // cell.batch_size
    d = to_dict(base)
    d["loss"]["name"] = cell.loss
    d["data"].update(batch_size=cell.batch_size, seed=cell.seed, fractions=[1.0, 0.0, 0.0],
                     holdout={k: list(v) for k, v in holdout.items()})
    if d["data"]["distance_cache_dir"] is None and cache_dir is not None:
        d["data"]["distance_cache_dir"] = str(cache_dir)
    d["cache"]["enabled"] = cell.reference
    if cell.reference:
        d["cache"]["chunk_size"] = grid.reference.chunk_size
    val_every = max(1, steps // grid.evaluations) if grid.evaluations else steps + 1  # steps + 1: never validate
    d["trainer"].update(max_steps=steps, seed=cell.seed, log_every_n_steps=max(1, steps // grid.log_points),
                        val_every_n_steps=val_every)
    d["optim"]["warmup_steps"] = round(grid.warmup_fraction * steps)
    return from_dict(TrainConfig, d)


def freeze_split(base: TrainConfig) -> tuple[dict[str, list[str]], dict]:
    """Draw the base config's split once. Returns ``(holdout, info)``: the val/test families as a ``data.holdout``
    and counts (``train_pair_families`` = training families with at least two sequences)."""
    from phylocl.data.datamodule import OrthologDataModule

    dm = OrthologDataModule(config=replace(base.data, pair_strategy="uniform"))  # no distances needed here
    dm.setup("fit")
    holdout = {"val": list(dm.val_set.family_names), "test": list(dm.test_set.family_names)}
    info = {"train_pair_families": len(dm.train_pairs()), "alphabet": dm.alphabet.name}
    for split in ("train", "val", "test"):
        ds = getattr(dm, f"{split}_set")
        info[f"{split}_families"], info[f"{split}_sequences"] = len(ds.family_names), len(ds)
    return holdout, info


def _dynamics(curves: dict, steps: int, fraction: float) -> dict[str, float]:
    """Mean of each curve over the first and the last ``fraction`` of the ``steps``."""
    out = {}
    for name, series in curves.items():
        first = [v for s, v in series if s < fraction * steps]
        last = [v for s, v in series if s >= (1.0 - fraction) * steps]
        out[f"{name}_first"] = sum(first) / len(first) if first else math.nan
        out[f"{name}_last"] = sum(last) / len(last) if last else math.nan
    return out


def _cell_row(cell: Cell, grid: CompareConfig, cell_dir: Path, ks) -> dict[str, Any]:
    """The results row of a cell, built from its folder (``metrics.json``, ``logs/``, ``cell.json``)."""
    steps = grid.pairs_budget // cell.batch_size
    row: dict[str, Any] = {"cell": cell.name, "loss": cell.loss, "batch_size": cell.batch_size, "seed": cell.seed,
                           "reference": int(cell.reference), "steps": steps, "pairs_seen": steps * cell.batch_size}
    if cell.skip:
        return {**row, "status": "skipped", "error": cell.skip}
    info = read_json_object(cell_dir / "cell.json") if (cell_dir / "cell.json").exists() else {}
    if exported_model(cell_dir) is None:
        return {**row, "status": info.get("status", "pending"), "error": info.get("error", ""),
                "wall_seconds": info.get("wall_seconds", "")}
    metrics = read_json_object(cell_dir / "metrics.json")
    row["steps"] = metrics["steps"]
    row["pairs_seen"] = metrics["steps"] * cell.batch_size
    row.update({k: v for k, v in metrics.get("test", {}).items() if k in result_columns(ks)})
    row["val_map_r"] = metrics.get("val", {}).get("map_r", "")
    row.update(_dynamics(read_curves(cell_dir / "logs" / "metrics.csv"), metrics["steps"], grid.dynamics_fraction))
    row["wall_seconds"] = info.get("wall_seconds", metrics.get("wall_seconds"))
    return {**row, "device": metrics.get("device", ""), "status": "ok", "error": ""}


def _write_json(path: Path, data) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")


def _check_same_study(out: Path, resolved: dict) -> None:
    """Refuse to mix studies: a re-run may change the grid lists, not the settings every cell shares."""
    import yaml

    def identity(d: dict) -> dict:
        d = json.loads(json.dumps(d))
        for key in ("losses", "batch_sizes", "seeds"):
            d["compare"].pop(key, None)
        d["compare"]["reference"].pop("seeds", None)
        return d

    path = out / "compare.yaml"
    if path.exists():
        old = yaml.safe_load(path.read_text()) or {}
        if "compare" in old:
            try:  # settings added to phylocl since the study began take their defaults (they were not asked for)
                old = resolved_dict(*load_compare_config(old))
            except InputError:
                pass  # not loadable any more: compare what was stored
        if "compare" in old and identity(old) != identity(resolved):
            a, b = identity(old), identity(resolved)
            keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            raise InputError(f"holds a study with different settings (sections {', '.join(keys)}); use another "
                             "--out or the same config", path=out)
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(resolved, sort_keys=False))


def write_results(path: Path, rows: list[dict], ks) -> None:
    """``results.csv``, atomically; floats with 6 significant digits, NaN as an empty field."""
    cols = result_columns(ks)

    def fmt(v):
        if isinstance(v, float):
            return "" if math.isnan(v) else f"{v:.6g}"
        return v

    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
            w.writeheader()
            for row in rows:
                w.writerow({c: fmt(row.get(c, "")) for c in cols})


def _train_cell(cfg: TrainConfig, cell_dir: Path) -> float:
    """Train one cell into ``cell_dir`` (resuming its checkpoint if a previous run left one); returns seconds."""
    ckpts = cell_dir / "checkpoints"
    resume = (ckpts / "last.ckpt").exists() or (ckpts / "interrupted.ckpt").exists()
    if cell_dir.exists() and not resume:
        shutil.rmtree(cell_dir)  # a failed attempt with nothing to resume: start clean
    started = time.perf_counter()
    train_workflow.train(cfg, cell_dir, resume=resume, progress=False)
    return time.perf_counter() - started


STUDY_FILES = ("split.json", "compare.yaml", "results.csv", "summary.json", "summary.md", "compare.png",
               "dynamics.png", "cells", "distance-cache")  # what a study writes (split.json first: its marker)


def _plan_study(config, out_dir, overrides, data) -> tuple:
    """Load and check everything, writing nothing: ``(grid, base, out, split_info, cells, {cell name: TrainConfig},
    holdout)``; :func:`compare` then locks ``out``, refuses a study with other settings there and writes
    ``split.json``."""
    from phylocl.outputs import check_output_dir, refuse_clashes

    grid, base = load_compare_config(config, overrides, data)
    out = check_output_dir(out_dir, inputs=data or ())  # not a file, device or pipe, not under /proc, writable
    ours = (out / "split.json").is_file()
    refuse_clashes(out, STUDY_FILES, ours=ours, what="phylocl compare")
    run = [] if ours else [sign for sign in unfinished_signs(out) if sign != "config.yaml"]  # (maybe the study's)
    if not ours and exported_model(out) is not None:
        run.insert(0, "its exported model")
    if run:  # as train refuses a study's folder: the study's split.json would lock the run out of --resume
        raise InputError(f"holds a phylocl train run ({', '.join(run[:3])}); give compare its own --out", path=out)
    holdout, split_info = freeze_split(base)
    cells = plan_cells(grid, split_info["train_pair_families"])
    try:
        configs = {c.name: cell_config(base, grid, c, holdout=holdout, cache_dir=out / "distance-cache")
                   for c in cells if not c.skip}
    except (ValueError, TypeError) as err:
        raise InputError(f"invalid compare config: {err}") from None
    return grid, base, out, split_info, cells, configs, holdout


def _run_cell(cfg: TrainConfig, name: str, cell_dir: Path, t0: float) -> None:
    """Train one cell and write its ``cell.json`` (``ok``, or ``failed`` with ``error.log``: other cells go on)."""
    try:
        seconds = _train_cell(cfg, cell_dir)
        _write_json(cell_dir / "cell.json", {"status": "ok", "wall_seconds": round(seconds, 1)})
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"study interrupted in cell {name}; run the same command again to "
                                "continue") from None
    except Exception as err:  # one failed cell must not cost the others
        cell_dir.mkdir(parents=True, exist_ok=True)
        (cell_dir / "error.log").write_text(traceback.format_exc())
        message = " ".join(f"{type(err).__name__}: {err}".split())[:500]
        _write_json(cell_dir / "cell.json", {"status": "failed", "error": message,
                                             "wall_seconds": round(time.perf_counter() - t0, 1)})


def _outcome(row: dict) -> str:
    """One cell's result for the progress line: its test ``map_r`` / ``auc1``, or why it has none."""
    if row["status"] != "ok":
        return f"FAILED ({row['error']})"
    outcome = ", ".join(f"test {k} {row[k]:.3f}" for k in ("map_r", "auc1") if isinstance(row.get(k), float))
    return outcome or "no test metrics (fewer than 2 test families)"


def compare(config: str | Path | Mapping[str, Any], out_dir: str | Path, *, overrides=(),
            data: list[str] | None = None, progress: bool = True) -> CompareResult:
    """Run (or continue) the comparison that ``config`` describes into ``out_dir`` (see the module docstring).

    Args:
        config: YAML path of a compare config, or the same content as a mapping.
        out_dir: study folder; an existing one is continued (finished cells are not trained again).
        overrides: ``key=value`` strings (``compare.seeds=[0]``, ``data.max_len=96`` ...).
        data: input paths replacing ``data.path``.
        progress: log one line per cell (cell i/N, elapsed, ETA) at INFO on the ``phylocl.workflows.compare``
            logger (``phylocl compare`` prints them on stderr unless ``--quiet``); ``False``: at DEBUG.

    Returns a :class:`CompareResult` with the rows of ``results.csv`` and the summary. Bad configs or inputs raise
    :class:`InputError` before anything is written.
    """
    from phylocl.workflows.run_folder import check_unlocked, claim

    check_unlocked(out_dir, name=LOCK_NAME, command="compare")  # a busy study: refused before reading anything
    grid, base, out, split_info, cells, configs, holdout = _plan_study(config, out_dir, overrides, data)
    with claim(out, name=LOCK_NAME, command="compare"):
        _check_same_study(out, resolved_dict(grid, base))
        _write_json(out / "split.json", {**split_info, "holdout": holdout})
        return _run_study(grid, base, out, split_info, cells, configs, progress=progress)


def _run_study(grid, base, out: Path, split_info, cells, configs, *, progress: bool) -> CompareResult:
    """Train the cells still to do, rewriting results.csv and the report after each (the folder is locked)."""

    ks = base.eval.ks
    cell_dirs = {c.name: out / "cells" / c.name for c in cells}
    rows = [_cell_row(c, grid, cell_dirs[c.name], ks) for c in cells]

    plotted = [-math.inf]

    def save(final: bool = False) -> dict:
        """results.csv and the summary after every cell; the plots at most once a minute and at the end."""
        write_results(out / "results.csv", rows, ks)
        plots = final or time.perf_counter() - plotted[0] > 60.0
        if plots:
            plotted[0] = time.perf_counter()
        return write_report(out, rows, grid=grid, base=base, split=split_info, cell_dirs=cell_dirs, plots=plots)

    summary = save()
    todo = [i for i, r in enumerate(rows) if r["status"] not in ("ok", "skipped")]
    say = log.info if progress else log.debug
    say(f"{len(cells)} cells ({len(cells) - len(todo)} done or skipped, {len(todo)} to train) -> {out}")
    started, spent = time.perf_counter(), []
    for n, i in enumerate(todo, 1):
        cell = cells[i]
        cell_dir = cell_dirs[cell.name]
        say(f"[{n}/{len(todo)}] {cell.name}: {configs[cell.name].trainer.max_steps} steps of {cell.batch_size} pairs")
        t0 = time.perf_counter()
        _run_cell(configs[cell.name], cell.name, cell_dir, t0)
        rows[i] = _cell_row(cell, grid, cell_dir, ks)
        summary = save()
        spent.append(time.perf_counter() - t0)
        eta = sum(spent) / len(spent) * (len(todo) - n)
        say(f"[{n}/{len(todo)}] {cell.name}: {_outcome(rows[i])} in {tqdm.format_interval(spent[-1])}; elapsed "
            f"{tqdm.format_interval(time.perf_counter() - started)}, ETA {tqdm.format_interval(eta)}")
        gc.collect()
    summary = save(final=True)
    return CompareResult(out, rows, summary)
