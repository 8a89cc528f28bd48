"""``phylocl evaluate``: how well a model retrieves family members from a labelled set.

Every labelled sequence queries all the others (plus optional unlabelled distractors, which can only be false
positives); the ranked hits are scored by :func:`~phylocl.retrieval.evaluation.evaluate_embeddings`, the same code
``phylocl train`` validates with. Figures (defined in :mod:`phylocl.retrieval.metrics`): ``top1``, ``recall@k``,
``map_r`` (MAP@R), ``auc1`` (sensitivity up to the first false positive), means over queries whose family has
another member; ``per_family`` holds the same per family. ``group_column`` (a labels-table column such as
SCOPe ``superfamily``) makes a hit relevant when it shares the query's group instead of its family.

Beside them, ``prefilter_recall`` holds ``recall@k`` for ``k`` in :data:`PREFILTER_KS` (10, 100, 300, 1000): the
fraction of a query's other family (group) members found among its ``k`` best embedding hits, averaged over the
scored queries, ties ranked pessimistically (:mod:`phylocl.retrieval.metrics`), i.e. what an alignment stage fed
with ``k`` candidates can find at most. ``align=True`` adds ``aligned``: the same figures for the ranking
``phylocl search`` writes, the ``candidates`` best embedding hits aligned and ranked by bit score
(:mod:`phylocl.workflows.evaluate_align`).

``split`` (``train``/``val``/``test``) evaluates only the families of one split of a training run, read from the
run's ``splits.json`` (``phylocl train`` writes it): found next to ``split_config`` (a run folder, its
``config.yaml`` or the ``splits.json`` itself) or in the ``--model`` folder. A training config without a
``splits.json`` beside it is re-split the way training splits (``data.fractions``, ``seed``, ``group_column``,
``holdout``), when its data is ``--data``. Queries and database are then that split's sequences only.
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from phylocl.arguments import is_whole, on_command_line, option, setting
from phylocl.atomic import atomic_path
from phylocl.errors import InputError
from phylocl.workflows import progress_bar
from phylocl.workflows.embed_buffers import DEFAULT_BUFFER, check_counts, embed_all
from phylocl.workflows.inputs import (check_dataset_alphabet, check_output_file, fasta_records, letter_notes,
                                      open_fasta, read_labelled)
from phylocl.workflows.model_spec import resolve_model
from phylocl.workflows.search import check_align_options
from phylocl.workflows.sensitivity import resolve_sensitivity

if TYPE_CHECKING:
    from phylocl.workflows.windows import WindowCut

__all__ = ["evaluate", "format_report", "write_per_family", "metric_names", "split_families_of", "SPLITS",
           "PREFILTER_KS"]

SPLITS = ("train", "val", "test")
PREFILTER_KS = (10, 100, 300, 1000)  # candidate counts whose embedding recall is always reported


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


def _read_splits_json(path: Path, split: str) -> list[str]:
    from phylocl.safejson import read_json_object

    splits = read_json_object(path)
    try:
        names = [str(f) for f in splits[split]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(f"cannot read the {split!r} families from this splits file ({type(err).__name__}: "
                         f"{err})", path=path) from None
    return names


def _resplit(config: Path, ds, data, split: str) -> list[str]:
    """The families of ``split`` when ``config``'s data (``--data``) is split the way ``phylocl train`` does."""
    from phylocl.config import load_config
    from phylocl.data.splits import split_families

    c = load_config(config).data
    inputs = [Path(p).resolve() for p in ([c.path] if c.path else []) + list(c.paths)]
    if inputs != [Path(data).resolve()] or c.extra_train_paths:
        raise InputError(f"its data ({', '.join(map(str, inputs)) or 'none'}) is not --data {data}; pass the "
                         "training run's folder or splits.json instead", path=config)
    parts = split_families(ds, fractions=c.fractions, seed=c.seed, group_column=c.group_column, holdout=c.holdout)
    return parts[split].family_names


def split_families_of(split: str, ds, *, data, model: str | None, split_config: str | Path | None) -> list[str]:
    """Family names of ``split`` of a training run (see the module docstring for where they are looked up)."""
    if split not in SPLITS:
        raise InputError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    if split_config is not None:
        where = Path(split_config)
        if where.is_dir():
            where = where / "splits.json"
        if not where.is_file():
            raise InputError("no such run folder, splits.json or config", path=where)
        if where.suffix == ".json":
            return _read_splits_json(where, split)
        if (where.parent / "splits.json").is_file():
            return _read_splits_json(where.parent / "splits.json", split)
        return _resplit(where, ds, data, split)
    if model is not None and (Path(model) / "splits.json").is_file():
        return _read_splits_json(Path(model) / "splits.json", split)
    raise InputError(f"--split {split} needs the training run's splits: pass its folder as --model, or "
                     "--split-config RUN (folder, config.yaml or splits.json)")


def _check_enough_families(labels, *, split: str | None, decoys: bool, path=None) -> None:
    """Refuse a set of one family (or group) without decoys: every hit is then a true hit, and MAP@R, AUC1 and
    top-1 are 1.0 whatever the model (as ``phylocl train`` refuses to train on one family)."""
    n = len(set(labels))
    if n < 2 and not decoys:
        where = f"the {split} split of the run" if split else "the data"
        raise InputError(f"{where} holds {n} family: every hit is in the query's family, so every figure would be "
                         "1.0 whatever the model; evaluate on two or more families (a split with more families, "
                         "no --split, or --db-extra decoys)", path=path)


def _restrict_to_split(ds, split: str | None, *, data, model, split_config) -> tuple:
    """``(ds reduced to the families of split of a training run, notes)`` (``ds`` unchanged without ``split``); a
    note names the split's families missing from ``data`` (the figures are then over the others only)."""
    if split is None:
        if split_config is not None:
            raise InputError("--split-config goes with --split train|val|test")
        return ds, []
    wanted = split_families_of(split, ds, data=data, model=model, split_config=split_config)
    present = [f for f in wanted if f in ds.family_index]
    if not present:
        raise InputError(f"none of the {len(wanted)} {split} families of the run is in --data {data}")
    missing = [f for f in wanted if f not in ds.family_index]
    notes = [f"{len(missing):,} of the {len(wanted):,} {split} families of the run are not in {data} (e.g. "
             f"{', '.join(map(repr, missing[:3]))}): the figures are over the other {len(present):,}"] if missing else []
    return ds.select_families(present), notes


def _relevance_groups(ds, group_column: str | None, *, data) -> list | None:
    """The labels column that defines relevance (``None``: the family); refuses a set with nothing to find.
    ``data``: where the labels were read (the ``--labels`` file when given, else the dataset)."""
    groups = None
    if group_column is not None:
        if group_column not in ds.metadata:
            have = ", ".join(sorted(ds.metadata)) or "none"
            raise InputError(f"no column {group_column!r} in the labels (columns besides the family: {have})",
                             path=data)
        groups = ds.metadata[group_column]
        blank = [i for i, g in enumerate(groups) if not str(g).strip()]
        if blank:  # read as one group "", every such sequence was relevant to every other
            file, line = ds.where(blank[0])
            first = f"{ds.ids[blank[0]]!r}" + (f" at {file}:{line}" if file else "")
            raise InputError(f"column {group_column!r} is empty for {len(blank):,} sequence(s) (first {first}); a hit "
                             f"is relevant when it shares the query's {group_column}, so each sequence needs one",
                             path=data)
    rel = ds.families if groups is None else groups
    if len(set(rel)) == len(rel):
        raise InputError(f"every {group_column or 'family'} has a single sequence: no query has anything to find",
                         path=data)
    return groups


def _embed_decoys(db_extra, ds, embedder, *, data, strict: bool, batch_size: int, buffer_size: int,
                  progress: bool, stream, windows: WindowCut | None = None, keep_ambiguous: bool = False) -> tuple:
    """``(decoy embeddings (M, D), notes, M sequences)``; a decoy id that is also a labelled sequence is refused.
    ``windows``: the embeddings are the decoys' :class:`~phylocl.retrieval.windowed.WindowRows`; ``keep_ambiguous``:
    the sequences keep DNA ambiguity codes, for the aligner (:func:`~phylocl.workflows.inputs.open_fasta`)."""
    labelled = set(ds.ids)
    decoy_stream = open_fasta(db_extra, strict=strict, keep_ambiguous=keep_ambiguous)
    if decoy_stream.kind != ds.alphabet.name:  # the model suits the labelled set: name that, not another model
        from phylocl.data.fasta import looks_like

        shown = {"dna": "DNA"}
        kind, want = (shown.get(k, k) for k in (decoy_stream.kind, ds.alphabet.name))
        rec = next((r for r in decoy_stream.head if looks_like(decoy_stream.kind, r.sequence)), decoy_stream.head[0])
        raise InputError(f"record {rec.id!r} looks like {kind}, but the labelled set {data} is {want}: decoys must be "
                         f"{want} sequences too", path=db_extra, line=rec.line)
    records = fasta_records(decoy_stream, embedder, alphabet_option=False)  # evaluate detects the alphabet
    sequences: list[str] = []

    def checked():
        for r in records:
            if r.id in labelled:
                raise InputError(f"decoy {r.id!r} is also a labelled sequence of {data}; distractors must be "
                                 "other sequences", path=db_extra, line=r.line)
            sequences.append(r.sequence)
            yield r.id, r.sequence, None

    with progress_bar("embedding decoys", enabled=progress, stream=stream) as bar:
        decoys, _ = _embed(checked(), embedder, batch_size=batch_size, buffer_size=buffer_size, progress=bar,
                           windows=windows)
    return decoys, letter_notes(decoy_stream.letters), sequences


def _embed(items, embedder, *, batch_size: int, buffer_size: int, progress, windows: WindowCut | None):
    """:func:`embed_all`, or with ``windows`` :func:`~phylocl.workflows.windows.embed_windows`."""
    if windows is None:
        return embed_all(items, embedder, batch_size=batch_size, buffer_size=buffer_size, progress=progress)
    from phylocl.workflows.windows import embed_windows

    return embed_windows(items, embedder, windows, batch_size=batch_size, buffer_size=buffer_size, progress=progress)


def _checked_ks(ks: Sequence[int]) -> list[int]:
    """Sorted unique ``recall@k`` cut-offs; :class:`InputError` unless ``ks`` is a non-empty sequence (list, tuple,
    array) of whole numbers ``>= 1`` (a string is not: ``"10"`` was read as the cut-offs 1 and 0)."""
    listed = list(ks) if isinstance(ks, Iterable) and not isinstance(ks, (str, bytes)) else None
    if not listed or not all(is_whole(k) and k >= 1 for k in listed):
        raise InputError(f"{'-k' if on_command_line() else 'ks'} values must be whole numbers >= 1, got "
                         f"{listed if listed is not None else repr(ks)}")
    return sorted({int(k) for k in listed})


def _summary(m: dict, ds, ks: list[int], *, data, split, group_column, model_info: dict,
             embed_seconds: float) -> dict:
    """:func:`evaluate`'s result up to ``embed_seconds``, from :func:`evaluate_embeddings`'s figures ``m``."""
    return {
        "dataset": str(data), "split": split, "level": group_column or "family", "n_sequences": len(ds),
        "n_families": len(ds.family_index), "n_decoys": m["n_decoys"], "n_queries": m["n_queries"],
        "n_singleton_queries": m["n_singleton_queries"], "ks": ks,
        **{name: _finite_or_none(m[name]) for name in metric_names(ks)},
        "depth": m["depth"], "model": model_info, "embed_seconds": round(embed_seconds, 3),
    }


def evaluate(*, data: str | Path, labels: str | Path | None = None, model: str | None = None,
             db_extra: str | Path | None = None, group_column: str | None = None,
             ks: Sequence[int] = (1, 10, 50), per_family: str | Path | None = None, split: str | None = None,
             split_config: str | Path | None = None, batch_size: int = 64,
             device: str | None = None, precision: str = "fp32", overlap: float | None = None,
             buffer_size: int = DEFAULT_BUFFER, progress: bool = True, stream=None, strict: bool = False,
             align: bool = False, candidates: int | None = None, evalue: float = 10.0, matrix: str | None = None,
             gap_open: int | None = None, gap_extend: int | None = None, threads: int | None = None,
             filter_pvalue: float | None = None, windows: int | None = None, strand: str | None = None,
             sensitivity: str | None = None) -> dict:
    """Embed the labelled set ``data`` (and the decoys ``db_extra``) and score all-against-all retrieval.

    Args:
        data, labels: a labelled dataset (any ``read_dataset`` layout).
        model: model spec; ``None``: the best measured method of the data's alphabet
            (:func:`~phylocl.workflows.model_spec.default_model`).
        db_extra: FASTA of unlabelled distractors added to the database (ids must differ from ``data``'s).
        group_column: labels column defining relevance (``superfamily``, ``fold``...); default: the family.
        ks: ``recall@k`` cut-offs, each ``>= 1``.
        per_family: also write the per-family table there (TSV).
        device, precision, overlap: where, in which precision and with which window overlap an encoder runs (as in
            :func:`~phylocl.workflows.embed.embed`).
        split, split_config: evaluate only the families of one split of a training run (module docstring).
        strict: refuse internal stops, rare and ambiguous letters instead of reading them as unknown.
        align, candidates, evalue, matrix, gap_open, gap_extend, threads, filter_pvalue: also score the aligned ranking of
            ``phylocl search`` (module docstring) with these settings (``candidates`` ``None``: search's default,
            :data:`~phylocl.workflows.search.DEFAULT_CANDIDATES`). As in search, DNA ambiguity codes then stay in
            the sequences aligned (scored as ``blastn`` scores them) while the embedding reads them as ``N``.
        windows: score each pair by its best pair of windows of this many residues (tiles:
            :mod:`phylocl.workflows.windows`), as ``phylocl search`` does on an index built with ``--windows``
            (models with sparse rows only); ``None``: the model's default width (``default-protein``: 200), ``0``:
            one row per sequence.
        strand: DNA with ``align``: ``both`` (default) or ``plus``, as in ``phylocl search``
            (:mod:`phylocl.workflows.evaluate_align`; the reverse complements are searched too, by windows with
            ``windows``).
        sensitivity: with ``align``, a preset of ``phylocl search`` (:mod:`phylocl.workflows.sensitivity`) giving
            ``candidates`` when that is ``None``. The embedding search here is exact, so a preset's word budget is
            not applied (a note says so): the aligned figures are those of its candidates.

    Returns a dict: ``dataset``, ``split``, ``level``, ``n_sequences``, ``n_families``, ``n_decoys``, ``n_queries``,
    ``n_singleton_queries``, ``ks``, the figures (``top1``, ``recall@k``, ``map_r``, ``auc1``; ``None`` when no
    query could be scored), ``depth``, ``model`` (its record), ``embed_seconds``, ``wall_seconds``, ``notes``
    (warnings of the evaluation, e.g. hit lists capped for very large families), ``per_family`` (list of dicts),
    ``prefilter_recall`` (``{"recall@10": ..., ...}``) and, with ``align``, ``aligned`` (figures of the aligned
    ranking, ``candidates``, ``scoring``, ``align_seconds``).
    """
    from phylocl.retrieval.evaluation import MAX_DEPTH, evaluate_embeddings

    start = time.perf_counter()
    ks = _checked_ks(ks)
    check_counts(batch_size=batch_size, buffer_size=buffer_size)
    if candidates is not None and not is_whole(candidates):  # 2.5 was read as 2
        raise InputError(f"{option('candidates')} must be a whole number, got {candidates!r}")
    sens = resolve_sensitivity(sensitivity, candidates=None if candidates is None else int(candidates),
                               word_budget=None, filter_pvalue=filter_pvalue)
    if sensitivity is not None and not align:
        raise InputError(f"{option('sensitivity')} is an option of the aligned ranking; add "
                         f"{setting('align', True)}")
    candidates = sens.candidates_for(None)  # again once the alphabet is known (a preset's may depend on it)
    check_align_options(align=align, candidates=candidates, evalue=evalue, out_format="tsv", threads=threads,
                        filter_pvalue=filter_pvalue)  # search's own checks: one line, exit 2
    if per_family is not None and str(per_family) == "-":  # stdout holds the report
        raise InputError("--per-family - : give a file name for the per-family TSV (the report goes to stdout)")
    if per_family is not None:
        sources = (data, labels, db_extra, model, split_config)
        check_output_file(per_family, inputs=[p for p in sources if p is not None], example="families.tsv")
    # DNA ambiguity codes stay for the aligner, as search keeps them (the embedding reads them as N)
    ds = read_labelled(data, labels, strict=strict, keep_ambiguous=align)
    notes = letter_notes(ds.source.get("unknown_letters", {}), keep_ambiguous=align)
    ds, split_notes = _restrict_to_split(ds, split, data=data, model=model, split_config=split_config)
    notes += split_notes
    groups = _relevance_groups(ds, group_column, data=labels if labels is not None else data)
    _check_enough_families(ds.families if groups is None else groups, split=split, decoys=db_extra is not None,
                           path=labels if labels is not None else data)
    embedder = resolve_model(model, alphabet=ds.alphabet, device=device, precision=precision, overlap=overlap)
    check_dataset_alphabet(ds, embedder, data, alphabet_option=False)  # the alphabet is detected
    from phylocl.workflows.windows import resolve_windows

    windows = resolve_windows(windows, embedder)  # the model's default width (search.json), 0: whole rows
    candidates = sens.candidates_for(embedder.alphabet.name)
    if strand is not None and not align:
        raise InputError("--strand is an option of the aligned ranking; add --align")
    if align:  # refuse bad scoring options before embedding
        from phylocl.align import scoring_system
        from phylocl.workflows.search_strands import resolve_strand

        strand = resolve_strand(strand, embedder.alphabet.name, align=True)

        scoring_system(embedder.alphabet.name, matrix=matrix, gap_open=gap_open, gap_extend=gap_extend)
    with progress_bar("embedding", total=len(ds), enabled=progress, stream=stream) as bar:
        x, _ = _embed(zip(ds.ids, ds.sequences, ds.families), embedder, batch_size=batch_size,
                      buffer_size=buffer_size, progress=bar, windows=windows)
    decoys, decoy_seqs = None, []
    if db_extra is not None:
        decoys, decoy_notes, decoy_seqs = _embed_decoys(db_extra, ds, embedder, data=data, strict=strict,
                                                        batch_size=batch_size, buffer_size=buffer_size,
                                                        progress=progress, stream=stream, windows=windows,
                                                        keep_ambiguous=align)
        notes += decoy_notes
    embed_seconds = time.perf_counter() - start
    all_ks = sorted(set(ks) | set(PREFILTER_KS) | ({candidates} if align else set()))
    # the aligned ranking needs each query's `candidates` best hits, however many (search aligns them all)
    max_depth = max(MAX_DEPTH, candidates) if align else MAX_DEPTH
    with warnings.catch_warnings(record=True) as caught, progress_bar(
            "searching", total=len(ds), unit="queries", enabled=progress, stream=stream) as bar:
        warnings.simplefilter("always")  # e.g. lists capped at max_depth: reported as notes

        def searched(n: int) -> None:  # the all-against-all search, then one pass that ranks and scores the hits
            bar.update(n)
            if bar.n >= len(ds):
                bar.set_postfix_str("scoring")

        if windows is None:
            m = evaluate_embeddings(x, ds.families, ids=ds.ids, decoy_embeddings=decoys, ks=all_ks,
                                    group_labels=groups, return_hits=align, max_depth=max_depth, progress=searched)
        else:
            from phylocl.retrieval.evaluation import evaluate_windows

            m = evaluate_windows(x, ds.families, ids=ds.ids, decoys=decoys, ks=all_ks, group_labels=groups,
                                 return_hits=align, max_depth=max_depth, progress=searched)
            m["windows"] = windows.params()
    result = _summary(m, ds, ks, data=data, split=split, group_column=group_column, model_info=embedder.model_info(),
                      embed_seconds=embed_seconds)
    result["prefilter_recall"] = {f"recall@{k}": _finite_or_none(m[f"recall@{k}"]) for k in PREFILTER_KS}
    if windows is not None:
        result["windows"] = m["windows"]
    if align:
        from phylocl.workflows.evaluate_align import aligned_figures

        rel = ds.families if groups is None else [str(g) for g in groups]
        minus = None
        if strand == "both" and windows is None:
            import numpy as np

            from phylocl.workflows.evaluate_align import minus_hits

            db_x = x if decoys is None else np.concatenate([x, decoys])
            minus = minus_hits(embedder, ds.sequences, db_x, candidates, batch_size=batch_size)
        elif strand == "both":  # the minus strand's candidates by best window pair, as search on a windowed index
            from phylocl.retrieval.windowed import concat_windows
            from phylocl.workflows.evaluate_align import minus_window_hits

            db_w = x if decoys is None else concat_windows([x, decoys])
            minus = minus_window_hits(embedder, ds.sequences, db_w, windows, candidates, batch_size=batch_size)
        a = aligned_figures(m["hits"], list(ds.sequences) + decoy_seqs, rel, list(rel) + [None] * len(decoy_seqs),
                            ks=ks, candidates=candidates, alphabet=embedder.alphabet.name, evalue=evalue,
                            matrix=matrix, gap_open=gap_open, gap_extend=gap_extend, threads=threads,
                            filter_pvalue=filter_pvalue, strand=strand, minus=minus, progress=progress,
                            stream=stream)
        result["aligned"] = {k: _finite_or_none(v) for k, v in a.items()}
        if sens.named:
            result["aligned"]["sensitivity"] = sens.name
            if sens.word_budget is not None:  # evaluate_embeddings / evaluate_windows search exactly
                notes.append(f"{option('sensitivity')} {sens.name}: evaluate's embedding search is exact, so the "
                             f"preset's word budget ({sens.word_budget:g}) is not applied; the aligned figures are "
                             f"those of its {candidates} candidates")
    if per_family is not None:
        write_per_family(per_family, m["per_family"], ks)
    result["wall_seconds"] = round(time.perf_counter() - start, 3)
    result["notes"] = notes + [str(w.message) for w in caught]
    result["per_family"] = m["per_family"]
    return result


def format_report(result: dict, *, worst: int = 5) -> str:
    """A readable table of :func:`evaluate`'s result: figures, then the ``worst`` families by MAP@R."""
    model = result["model"]
    lines = [
        f"dataset    {result['dataset']}" + (f" [{result['split']} split]" if result.get("split") else "")
        + f" ({result['n_sequences']:,} sequences, {result['n_families']:,} families"
        + (f", {result['n_decoys']:,} decoys)" if result["n_decoys"] else ")"),
        f"model      {model['name']} (fingerprint {model['fingerprint']}, dim {model['dim']})",
        *([f"windows    {result['windows']['window']} residues, stride {result['windows']['stride']} (a pair scores "
            "its best window pair)"] if result.get("windows") else []),
        f"level      {result['level']}",
        f"queries    {result['n_queries']:,} scored, {result['n_singleton_queries']:,} alone in their "
        f"{result['level']} (not scored)",
    ]
    aligned = result.get("aligned")
    if aligned:
        lines.append(f"{'':<10} {'embedding':>9} {'aligned':>9}   (aligned: {aligned['candidates']} candidates, "
                     f"{aligned['scoring']['matrix']} {aligned['scoring']['gap_open']}/"
                     f"{aligned['scoring']['gap_extend']}"
                     f"{', both strands' if aligned.get('strand') == 'both' else ''}"
                     f"{', sensitivity ' + aligned['sensitivity'] if aligned.get('sensitivity') else ''}, "
                     f"{aligned['align_seconds']:.1f} s)")
    for name in metric_names(result["ks"]):
        value = result[name]
        text = 'n/a' if value is None else f'{value:.4f}'
        if aligned:
            other = aligned.get(name)
            text = f"{text:>9} {'n/a' if other is None else f'{other:.4f}':>9}"
        lines.append(f"{name:<10} {text}")
    pre = result.get("prefilter_recall") or {}
    if pre:
        lines.append("prefilter  " + ", ".join(f"{k} {'n/a' if v is None else f'{v:.4f}'}" for k, v in pre.items())
                     + " (embedding candidates)")
    lines.append(f"time       {result['wall_seconds']:.1f} s ({result['embed_seconds']:.1f} s embedding)")
    rows = sorted(result.get("per_family", []), key=lambda r: (r["map_r"], r["family"]))[:worst]
    if rows and len(result["per_family"]) > worst:
        lines.append("lowest MAP@R: " + ", ".join(f"{r['family']} {r['map_r']:.3f} (n={r['n_queries']})"
                                                   for r in rows))
    return "\n".join(lines)
