"""``phylocl evaluate``: how well a model retrieves family members from a labelled set.

Every labelled sequence queries all the others (plus optional unlabelled distractors, which can only be false
positives); the ranked hits are scored by :func:`~phylocl.retrieval.evaluation.evaluate_embeddings`, the same code
``phylocl train`` validates with. Figures (defined in :mod:`phylocl.retrieval.metrics`): ``top1``, ``recall@k``,
``map_r`` (MAP@R), ``auc1`` (sensitivity up to the first false positive), means over queries whose family has
another member; ``per_family`` holds the same per family. ``group_column`` (a labels-table column such as
SCOPe ``superfamily``) makes a hit relevant when it shares the query's group instead of its family.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Sequence

from phylocl.atomic import atomic_path
from phylocl.errors import InputError
from phylocl.progress import Progress
from phylocl.workflows.embed import (DEFAULT_BUFFER, check_dataset_alphabet, embed_all, fasta_records,
                                     read_labelled)
from phylocl.workflows.models import resolve_model

__all__ = ["evaluate", "format_report", "write_per_family", "metric_names"]


def metric_names(ks: Sequence[int]) -> list[str]:
    """Overall figure names in report order: ``top1``, ``recall@k`` for each k, ``map_r``, ``auc1``."""
    return ["top1", *(f"recall@{k}" for k in ks), "map_r", "auc1"]


def _finite_or_none(v):
    return None if isinstance(v, float) and not math.isfinite(v) else v


def write_per_family(path: str | Path, rows: list[dict], ks: Sequence[int]) -> Path:
    """Write per-family figures as TSV (``family [group] n_queries top1 recall@k... map_r auc1``), atomically."""
    cols = ["family", *(["group"] if rows and "group" in rows[0] else []), "n_queries", *metric_names(ks)]
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write("\t".join(cols) + "\n")
        for row in rows:
            f.write("\t".join(f"{row[c]:.6f}" if isinstance(row[c], float) else str(row[c]) for c in cols) + "\n")
    return Path(path)


def evaluate(*, data: str | Path, labels: str | Path | None = None, model: str | None = None,
             db_extra: str | Path | None = None, group_column: str | None = None,
             ks: Sequence[int] = (1, 10, 50), per_family: str | Path | None = None, batch_size: int = 64,
             device: str | None = None, buffer_size: int = DEFAULT_BUFFER, progress: bool = True,
             stream=None) -> dict:
    """Embed the labelled set ``data`` (and the decoys ``db_extra``) and score all-against-all retrieval.

    Args:
        data, labels: a labelled dataset (any ``read_dataset`` layout).
        model: model spec; ``None``: ``default-<alphabet of the data>``.
        db_extra: FASTA of unlabelled distractors added to the database (ids must differ from ``data``'s).
        group_column: labels column defining relevance (``superfamily``, ``fold``...); default: the family.
        ks: ``recall@k`` cut-offs, each ``>= 1``.
        per_family: also write the per-family table there (TSV).

    Returns a dict: ``dataset``, ``level``, ``n_sequences``, ``n_families``, ``n_decoys``, ``n_queries``,
    ``n_singleton_queries``, ``ks``, the figures (``top1``, ``recall@k``, ``map_r``, ``auc1``; ``None`` when no
    query could be scored), ``depth``, ``model`` (its record), ``embed_seconds``, ``wall_seconds`` and
    ``per_family`` (list of dicts).
    """
    from phylocl.retrieval.evaluation import evaluate_embeddings

    start = time.perf_counter()
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 1:
        raise InputError(f"-k values must be >= 1, got {ks}")
    ks = sorted(set(ks))
    ds = read_labelled(data, labels)
    groups = None
    if group_column is not None:
        if group_column not in ds.metadata:
            have = ", ".join(sorted(ds.metadata)) or "none"
            raise InputError(f"no column {group_column!r} in the labels (columns besides the family: {have})",
                             path=data)
        groups = ds.metadata[group_column]
    rel = ds.families if groups is None else groups
    if len(set(rel)) == len(rel):
        raise InputError(f"every {group_column or 'family'} has a single sequence: no query has anything to find",
                         path=data)
    embedder = resolve_model(model, alphabet=ds.alphabet, device=device)
    check_dataset_alphabet(ds, embedder, data)
    with Progress(label="embedding", total=len(ds), unit="sequences", enabled=progress, stream=stream) as bar:
        x, _ = embed_all(zip(ds.ids, ds.sequences, ds.families), embedder, batch_size=batch_size,
                         buffer_size=buffer_size, progress=bar)
    decoys = None
    if db_extra is not None:
        labelled = set(ds.ids)
        records = fasta_records(db_extra, embedder)

        def checked():
            for r in records:
                if r.id in labelled:
                    raise InputError(f"decoy {r.id!r} is also a labelled sequence of {data}; distractors must be "
                                     "other sequences", path=db_extra, line=r.line)
                yield r.id, r.sequence, None

        with Progress(label="embedding decoys", unit="sequences", enabled=progress, stream=stream) as bar:
            decoys, _ = embed_all(checked(), embedder, batch_size=batch_size, buffer_size=buffer_size,
                                  progress=bar)
    embed_seconds = time.perf_counter() - start
    m = evaluate_embeddings(x, ds.families, ids=ds.ids, decoy_embeddings=decoys, ks=ks, group_labels=groups)
    result = {
        "dataset": str(data), "level": group_column or "family", "n_sequences": len(ds),
        "n_families": len(ds.family_index), "n_decoys": m["n_decoys"], "n_queries": m["n_queries"],
        "n_singleton_queries": m["n_singleton_queries"], "ks": ks,
        **{name: _finite_or_none(m[name]) for name in metric_names(ks)},
        "depth": m["depth"], "model": embedder.model_info(), "embed_seconds": round(embed_seconds, 3),
    }
    if per_family is not None:
        write_per_family(per_family, m["per_family"], ks)
    result["wall_seconds"] = round(time.perf_counter() - start, 3)
    result["per_family"] = m["per_family"]
    return result


def format_report(result: dict, *, worst: int = 5) -> str:
    """A readable table of :func:`evaluate`'s result: figures, then the ``worst`` families by MAP@R."""
    model = result["model"]
    lines = [
        f"dataset    {result['dataset']} ({result['n_sequences']:,} sequences, {result['n_families']:,} families"
        + (f", {result['n_decoys']:,} decoys)" if result["n_decoys"] else ")"),
        f"model      {model['name']} (fingerprint {model['fingerprint']}, dim {model['dim']})",
        f"level      {result['level']}",
        f"queries    {result['n_queries']:,} scored, {result['n_singleton_queries']:,} alone in their "
        f"{result['level']} (not scored)",
    ]
    for name in metric_names(result["ks"]):
        value = result[name]
        lines.append(f"{name:<10} {'n/a' if value is None else f'{value:.4f}'}")
    lines.append(f"time       {result['wall_seconds']:.1f} s ({result['embed_seconds']:.1f} s embedding)")
    rows = sorted(result.get("per_family", []), key=lambda r: (r["map_r"], r["family"]))[:worst]
    if rows and len(result["per_family"]) > worst:
        lines.append("lowest MAP@R: " + ", ".join(f"{r['family']} {r['map_r']:.3f} (n={r['n_queries']})"
                                                   for r in rows))
    return "\n".join(lines)
