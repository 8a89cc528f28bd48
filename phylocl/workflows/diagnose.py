"""``phylocl diagnose``: representation health of a model on a labelled set.

Measures (definitions in :mod:`phylocl.diagnostics.measures` and :mod:`phylocl.diagnostics.probes`):

* per block of the encoder, the rank-collapse residual of its token representations (Dong et al. 2021, Frobenius
  norm), averaged over sequences, padding excluded (``layer_residual``; empty for ``kmer:K``, which has no
  layers); ``input_residual`` is that of the token embeddings entering the first block;
* of the final embeddings: effective rank, per-dimension standard deviation, alignment (family pairs) and
  uniformity (Wang & Isola 2020, ``alpha = 2``, ``t = 2``), the singular values;
* family kNN top-1 (leave-one-out) and a linear probe's accuracy (stratified folds over family members).

``out_dir`` receives ``diagnosis.json`` (the same object ``--json`` prints) and ``residual.png``,
``spectrum.png``, ``map.png`` (first two principal components coloured by family), each written atomically.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from phylocl.arguments import is_whole, option
from phylocl.atomic import atomic_path
from phylocl.errors import InputError
from phylocl.workflows import progress_bar
from phylocl.workflows.embed_buffers import embed_all
from phylocl.workflows.inputs import check_dataset_alphabet, read_labelled
from phylocl.workflows.model_spec import check_overlap, resolve_model

__all__ = ["diagnose", "write_diagnosis", "format_diagnosis", "DIAGNOSIS_FILE"]

DIAGNOSIS_FILE = "diagnosis.json"
MAX_SEED = 2**32 - 1


def _subsample(ds, max_sequences: int | None, seed: int):
    """Whole families, in a seeded random order, until ``max_sequences`` would be exceeded (``None``: all)."""
    if max_sequences is None or len(ds) <= max_sequences:
        return ds
    names = list(ds.family_index)
    keep, total = [], 0
    for k in np.random.default_rng(seed).permutation(len(names)):
        size = len(ds.family_index[names[k]])
        if total + size <= max_sequences:
            keep.append(names[k])
            total += size
    if not keep:
        raise InputError(f"--max-sequences {max_sequences} is smaller than every family")
    if len(keep) == 1 < len(names):  # else "DATA: holds 1 family", of a dataset holding many
        raise InputError(f"--max-sequences {max_sequences} keeps 1 whole family of the {len(names)} (families are "
                         "not cut): kNN and probe accuracy need two or more; raise it")
    return ds.select_families(keep)


def _check_out_dir(out_dir, inputs=()) -> Path | None:
    """``-o``: a folder (created if missing) that is not the input dataset folder nor inside it."""
    import os

    from phylocl.outputs import check_output_dir, refuse_clashes

    if out_dir is None:
        return None
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError("exists and is not a folder; -o takes a folder for diagnosis.json and the plots", path=out)
    for src in inputs:
        if src is not None and Path(src).is_dir() and Path(os.path.realpath(out)).is_relative_to(
                os.path.realpath(src)):
            raise InputError(f"output folder is (inside) the input dataset folder {src}; choose another -o", path=out)
    out = check_output_dir(out, inputs=[s for s in inputs if s is not None])
    refuse_clashes(out, DIAGNOSIS_FILES, ours=_our_diagnosis(out / DIAGNOSIS_FILE), what="phylocl diagnose")
    return out


DIAGNOSIS_FILES = (DIAGNOSIS_FILE, "residual.png", "spectrum.png", "map.png")


def _our_diagnosis(path: Path) -> bool:
    """Whether ``path`` is a ``diagnosis.json`` that ``phylocl diagnose`` wrote (then the plots beside it are its
    too, and a new diagnosis may replace them)."""
    from phylocl.safejson import read_json_object

    try:
        record = read_json_object(path)
    except (InputError, OSError):
        return False
    return {"singular_values", "knn_top1", "model"} <= set(record)


def diagnose(*, model: str | None, data: str | Path, labels: str | Path | None = None,
             out_dir: str | Path | None = None, batch_size: int = 64, device: str | None = None,
             precision: str = "fp32", overlap: float | None = None, max_sequences: int | None = None,
             seed: int = 0, progress: bool = True, stream=None) -> dict:
    """Measure ``model`` on the labelled set ``data``; with ``out_dir`` also write the JSON and the plots.

    ``overlap``: the window overlap of an encoder on sequences longer than its ``max_len`` (``None``: default; in
    ``[0, 1)``), as ``phylocl embed``'s ``--window-overlap``.

    Returns a JSON-ready dict: ``dataset``, ``model`` (record), ``n_sequences``, ``n_families``,
    ``effective_rank``, ``effective_rank_fraction``, ``dim_std`` (list) and its ``_mean``/``_min``/``_uniform``,
    ``alignment``, ``uniformity``, ``n_family_pairs``, ``singular_values``, ``residual_norm`` (``"frobenius"``),
    ``input_residual``, ``layer_residual`` (one per block), ``knn_top1``, ``knn_queries``,
    ``linear_probe_accuracy``, ``probe_folds``, ``probe_families``, ``probe_sequences``, ``seconds``.
    """
    from phylocl.diagnostics.layers import layer_residuals
    from phylocl.diagnostics.measures import embedding_health, singular_values
    from phylocl.diagnostics.probes import knn_top1, linear_probe

    start = time.perf_counter()
    check_overlap(overlap)  # before anything is read
    if not is_whole(seed) or not 0 <= seed <= MAX_SEED:  # the probe's folds take NumPy's legacy 32-bit seeds
        raise InputError(f"{option('seed')} must be a whole number in [0, {MAX_SEED}], got {seed!r}")
    if max_sequences is not None and max_sequences < 2:
        raise InputError(f"--max-sequences must be >= 2, got {max_sequences}")
    out = _check_out_dir(out_dir, inputs=(data, labels))
    ds = _subsample(read_labelled(data, labels), max_sequences, seed)
    if len(ds) < 2:
        raise InputError("needs at least 2 sequences", path=data)
    if len(ds.family_index) < 2:  # as phylocl evaluate refuses it
        raise InputError(f"holds {len(ds.family_index)} family: every neighbour is in the query's family, so kNN "
                         "and probe accuracy would be 1.0 whatever the model; diagnose on two or more families",
                         path=data)
    embedder = resolve_model(model, alphabet=ds.alphabet, device=device, precision=precision,
                             overlap=overlap)
    check_dataset_alphabet(ds, embedder, data, alphabet_option=False)  # the alphabet is detected
    with progress_bar("embedding", total=len(ds), enabled=progress, stream=stream) as bar:
        x, _ = embed_all(zip(ds.ids, ds.sequences, ds.families), embedder, batch_size=batch_size, progress=bar)
    families = list(ds.families)
    result = {"dataset": str(data), "model": embedder.model_info(), "n_sequences": len(ds),
              "n_families": len(ds.family_index)}
    result.update(embedding_health(x, families, seed=seed))
    result["singular_values"] = [float(s) for s in singular_values(x)]
    result["residual_norm"] = "frobenius"
    layers = (layer_residuals(embedder.model, list(ds.sequences), batch_size=batch_size) if embedder.is_encoder
              else {"input_residual": None, "layer_residual": []})
    result.update(layers)
    knn = knn_top1(x, families)
    result.update(knn_top1=knn["knn_top1"], knn_queries=knn["n_queries"])
    result.update(linear_probe(x, families, seed=seed))
    result["seconds"] = round(time.perf_counter() - start, 3)
    if out is not None:
        write_diagnosis(out, result, x, families)
    return result


def write_diagnosis(out_dir: str | Path, result: dict, x: np.ndarray, families) -> Path:
    """Write ``diagnosis.json``, ``residual.png``, ``spectrum.png`` and ``map.png`` into ``out_dir`` (each
    atomically); returns the JSON path."""
    from phylocl.diagnostics.plots import plot_family_map, plot_residuals, plot_spectrum

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = result["model"].get("name", "model")
    if result["layer_residual"]:
        plot_residuals({name: [result["input_residual"], *result["layer_residual"]]}, out / "residual.png",
                       title=f"{name}: rank-collapse residual per block")
    plot_spectrum(np.asarray(result["singular_values"]), out / "spectrum.png",
                  title=f"{name}: effective rank {result['effective_rank']:.1f} of {result['dim']}")
    plot_family_map(x, families, out / "map.png", title=f"{name}: embeddings, PCA")
    path = out / DIAGNOSIS_FILE
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n")
    return path


def _fmt(v, digits: int = 4) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def format_diagnosis(r: dict) -> str:
    """A readable summary of :func:`diagnose`'s result."""
    m = r["model"]
    lines = [f"dataset          {r['dataset']} ({r['n_sequences']:,} sequences, {r['n_families']:,} families)",
             f"model            {m.get('name')} (fingerprint {m.get('fingerprint')}, dim {r['dim']})",
             f"effective rank   {r['effective_rank']:.2f} of dim {r['dim']} ({r['effective_rank_fraction']:.1%}; at most "
             f"min(sequences, dim) = {min(r['n'], r['dim'])})",
             f"dimension std    mean {r['dim_std_mean']:.4f}, min {r['dim_std_min']:.4f} "
             f"(uniform on the sphere: {r['dim_std_uniform']:.4f})",
             f"alignment        {_fmt(r['alignment'])} ({r['n_family_pairs']:,} family pairs; 0 = identical)",
             f"uniformity       {_fmt(r['uniformity'])} (log E exp(-2 d^2); lower = more uniform)",
             f"kNN top-1        {_fmt(r['knn_top1'])} ({r['knn_queries']:,} queries)",
             f"linear probe     {_fmt(r['linear_probe_accuracy'])} ({r['probe_folds']} stratified folds, "
             f"{r['probe_families']:,} families with >= 2 members)"]
    if r["layer_residual"]:
        lines.append("layer residual   " + " ".join(f"{v:.3f}" for v in r["layer_residual"])
                     + f" (input {r['input_residual']:.3f}; Frobenius, 0 = rank one)")
    else:
        lines.append("layer residual   none (the model has no layers)")
    return "\n".join(lines)
