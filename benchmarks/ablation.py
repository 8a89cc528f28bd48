"""Development split, ablation runs and dev-set figures of the shipped encoders (see docs/models.md).

Run from the repository root with the virtual environment active; shared data is read from ``../shared/data``::

    python benchmarks/ablation.py split protein          # -> configs/splits/dev-protein.json (+ the YAML holdout)
    python benchmarks/ablation.py materialize protein    # -> runs/dev/protein/<dataset>/{sequences.fasta,labels.tsv}
    python benchmarks/ablation.py run protein [VARIANT ...]   # short trainings, one at a time, runs/ablation/protein/
    python benchmarks/ablation.py score MODEL protein    # dev figures of a model (run dir, .pt file, shipped name)
        [--decoys] [--windows W]                         # on the model's default search path (--windows 0: whole rows)
    python benchmarks/ablation.py table protein          # markdown table of the ablation runs
    python benchmarks/ablation.py speed --query Q.fasta --db DB.fasta   # phylocl search vs DIAMOND --sensitive
    python benchmarks/ablation.py ship runs/default-protein default-protein   # -> phylocl/pretrained/<name>/
    python benchmarks/ablation.py figures --decoys protein   # -> phylocl/pretrained/dev-figures.json (measured,
                                                             #    each method on its default search path)

**Split rule** (``split``): per dataset, its groups (families; SCOPe: folds) are shuffled with
``numpy.random.default_rng([SEED, dataset index])`` and taken in that order until at least ``DEV_FRACTION`` of the
dataset's families, and at least ``MIN_DEV_FAMILIES``, are held out (``val``). Families of *other* datasets of the
same alphabet that are homologous to a dev family (DIAMOND ``--sensitive`` for protein, MMseqs2 nucleotide search for
DNA, e-value < ``EVALUE``; and, for RNA, the same Rfam accession) are quarantined (``test``): neither trained on nor
reported.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from peers import write_fasta  # benchmarks/peers.py, beside this script

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / ".." / "shared" / "data"
SEED = 8
DEV_FRACTION = 0.15
MIN_DEV_FAMILIES = 2  # so that every dev set has negatives
EVALUE = 1e-5
DATASETS = {  # dataset folder -> grouping column of the split (None: the family)
    "protein": {"mycoplasma-orthogroups": None, "ecoli-shigella-protein": None, "scope40-train": "fold",
                "phykit-protein": None, "pfam-seed-examples": None},
    "dna": {"ecoli-shigella-cds": None, "rfam5-seed": None, "nucleotide-families": None, "phykit-dna": None},
}
GROUP_LEVELS = {"scope40-train": ["superfamily"]}  # coarser levels reported besides the family
RECALL_KS = (1, 10, 100, 300)  # recall@100 / @300: the prefilter's yardstick (issue 24)
HARD = {"mycoplasma-orthogroups", "scope40-train", "rfam5-seed", "nucleotide-families"}  # dev sets off the ceiling


def read(name: str):
    from phylocl.data.layouts import read_dataset

    return read_dataset(DATA / name)


def choose_dev(ds, column: str | None, rng: np.random.Generator) -> list[str]:
    """Whole groups (families, or ``column`` values) in seeded order until ``DEV_FRACTION`` of the families."""
    groups: dict[str, list[str]] = {}
    for fam, idx in ds.family_index.items():
        groups.setdefault(fam if column is None else ds.metadata[column][idx[0]], []).append(fam)
    names = sorted(groups)
    want = max(MIN_DEV_FAMILIES, math.ceil(DEV_FRACTION * len(ds.family_index)))
    dev: list[str] = []
    for k in rng.permutation(len(names)):
        if len(dev) >= want:
            break
        dev += groups[names[k]]
    return sorted(dev)


def homolog_hits(alphabet: str, query: tuple[list, list], target: tuple[list, list], threads: int = 2) -> set:
    """Target ids with a hit (e-value < ``EVALUE``) from any query sequence: DIAMOND --sensitive or MMseqs2 (nt)."""
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        write_fasta(t / "q.fa", *query)
        write_fasta(t / "t.fa", *target)
        if alphabet == "protein":
            subprocess.run(["diamond", "makedb", "--in", t / "t.fa", "-d", t / "db", "--quiet"], check=True)
            subprocess.run(["diamond", "blastp", "-q", t / "q.fa", "-d", t / "db", "-o", t / "hits.tsv",
                            "--sensitive", "-e", str(EVALUE), "-k", "50", "-p", str(threads), "--quiet"],
                           check=True)
        else:
            subprocess.run(["mmseqs", "easy-search", t / "q.fa", t / "t.fa", t / "hits.tsv", t / "work",
                            "--search-type", "3", "-e", str(EVALUE), "--threads", str(threads), "-v", "1"],
                           check=True, stdout=subprocess.DEVNULL)
        return {line.split("\t")[1] for line in open(t / "hits.tsv")}


def make_split(alphabet: str) -> dict:
    """The dev split of one alphabet (see the module docstring), with per-dataset counts and the evidence."""
    parts = {name: read(name) for name in DATASETS[alphabet]}
    all_fams = [f for ds in parts.values() for f in ds.family_names]
    if len(set(all_fams)) != len(all_fams):
        raise SystemExit("family ids clash across datasets: the config would see prefixed ids")
    dev = {name: choose_dev(ds, DATASETS[alphabet][name], np.random.default_rng([SEED, k]))
           for k, (name, ds) in enumerate(parts.items())}
    quarantine: dict[str, dict[str, str]] = {name: {} for name in parts}  # dataset -> family -> reason
    for name, ds in parts.items():
        held = set(dev[name])
        q = [(i, s) for i, s, f in zip(ds.ids, ds.sequences, ds.families) if f in held]
        for other, ods in parts.items():
            if other == name:
                continue
            keep = [(i, s, f) for i, s, f in zip(ods.ids, ods.sequences, ods.families) if f not in dev[other]]
            fam_of = {i: f for i, _, f in keep}
            hits = homolog_hits(alphabet, ([i for i, _ in q], [s for _, s in q]),
                                ([i for i, _, _ in keep], [s for _, s, _ in keep]))
            for i in hits:
                quarantine[other].setdefault(fam_of[i], f"homolog of {name} dev sequences")
    if alphabet == "dna":  # the same Rfam family under two names
        acc = {f: a for f, a in zip(parts["nucleotide-families"].families,
                                    parts["nucleotide-families"].metadata["accession"]) if a.startswith("RF")}
        for f, a in acc.items():
            if f in dev["nucleotide-families"] and a not in dev["rfam5-seed"]:
                quarantine["rfam5-seed"].setdefault(a, f"same Rfam family as nucleotide-families dev {f}")
            if a in dev["rfam5-seed"] and f not in dev["nucleotide-families"]:
                quarantine["nucleotide-families"].setdefault(f, f"same Rfam family as rfam5-seed dev {a}")
    per_dataset = {}
    for name, ds in parts.items():
        fams = ds.family_index
        d, qn = dev[name], sorted(quarantine[name])
        per_dataset[name] = {
            "group_column": DATASETS[alphabet][name], "families": len(fams), "dev_families": len(d),
            "dev_sequences": sum(len(fams[f]) for f in d), "quarantined_families": len(qn),
            "quarantined_sequences": sum(len(fams[f]) for f in qn), "val": d, "test": qn,
            "quarantine_reasons": {f: quarantine[name][f] for f in qn},
        }
    return {
        "description": f"{alphabet} development split of the default encoder: val = held-out dev families "
                       "(reported in docs/models.md), test = quarantined homologs (not trained on, not reported)",
        "rule": {"seed": SEED, "dev_fraction": DEV_FRACTION, "min_dev_families": MIN_DEV_FAMILIES,
                 "homology_evalue": EVALUE,
                 "tool": "diamond --sensitive" if alphabet == "protein" else "mmseqs easy-search --search-type 3",
                 "generated_by": f"python benchmarks/ablation.py split {alphabet}"},
        "val": sorted(f for v in per_dataset.values() for f in v["val"]),
        "test": sorted(f for v in per_dataset.values() for f in v["test"]),
        "datasets": per_dataset,
    }


def holdout_yaml(split: dict, width: int = 116) -> str:
    """The ``holdout:`` block of the data section (flow-style lists wrapped at ``width``)."""
    out = ["  holdout:"]
    for key in ("val", "test"):
        line, lines = f"    {key}: [", []
        for k, fam in enumerate(split[key]):
            item = json.dumps(fam) + ("," if k < len(split[key]) - 1 else "]")
            if len(line) + len(item) + 1 > width:
                lines.append(line.rstrip())
                line = "      "
            line += item + " "
        lines.append(line.rstrip() if split[key] else f"    {key}: []")
        out += lines
    return "\n".join(out) + "\n"


def cmd_split(args) -> None:
    split = make_split(args.alphabet)
    path = REPO / "configs" / "splits" / f"dev-{args.alphabet}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(split, indent=1) + "\n")
    for name, v in split["datasets"].items():
        print(f"{name}: {v['dev_families']}/{v['families']} dev families ({v['dev_sequences']} seqs), "
              f"{v['quarantined_families']} quarantined ({v['quarantined_sequences']} seqs)", file=sys.stderr)
    print(holdout_yaml(split), end="")



ABLATION_BASE = {a: REPO / "configs" / f"ablation-{a}.yaml" for a in DATASETS}
_NL = ["data.mask_prob=0.0", "data.substitution_prob=0.0", "optim.lr=3e-4"]  # the nonoise-lr3e-4 row
VARIANTS = {  # name -> --set overrides on configs/ablation-<alphabet>.yaml (same number of training pairs each)
    "protein": {
        "base": [],
        "seed1": ["trainer.seed=1", "data.seed=1"],  # the baseline again with other seeds: the noise level
        "flatnce": ["loss.name=flatnce"],
        "uniform": ["data.pair_strategy=uniform"],
        "hardest": ["data.pair_strategy=hardest"],
        "len256": ["data.max_len=256"],
        "matched": ["data.crop=matched"],
        "cached256": ["data.batch_size=256", "cache.enabled=true", "cache.chunk_size=64", "trainer.max_steps=38",
                      "trainer.val_every_n_steps=38", "optim.warmup_steps=5"],
        "transformer": ["model.name=transformer-small"],
        "narrow": ["model.overrides={dim: 64, ffn_dim: 256}"],
        "temp0.1": ["loss.temperature=0.1"],
        "lr3e-3": ["optim.lr=3e-3"],
        "lr3e-4": ["optim.lr=3e-4"],
        "nonoise": ["data.mask_prob=0.0", "data.substitution_prob=0.0"],
        "nonoise-lr3e-4": ["data.mask_prob=0.0", "data.substitution_prob=0.0", "optim.lr=3e-4"],
        "nodrop": ["model.overrides={dropout: 0.0, drop_path: 0.0}"],
        # issue 13, on top of nonoise-lr3e-4 (the best row above; refresh every 50 steps, 2 members per family)
        "nl-seed1": [*_NL, "trainer.seed=1", "data.seed=1"],
        "nl-bucket": [*_NL, "data.bucket_by_length=true"],
        "nl-knn": [*_NL, "data.batching=knn"],
        "nl-knn-seed1": [*_NL, "data.batching=knn", "trainer.seed=1", "data.seed=1"],
        "nl-group": [*_NL, "data.batching=group", "data.group_by=superfamily"],
        # issue 15 backbones (docs/encoders.md), each at gmlp-small's dropout like the baseline
        "smlp": ["model.name=smlp-small"],
        "gmlp-moe": ["model.name=gmlp-small-moe"],
        "transformer-moe": ["model.name=transformer-small-moe"],
        "transformer-deberta": ["model.name=transformer-small-deberta"],
    },
    "dna": {
        "base": [],
        "seed1": ["trainer.seed=1", "data.seed=1"],
        "len256": ["data.max_len=256"],
        "uniform": ["data.pair_strategy=uniform"],
        "flatnce": ["loss.name=flatnce"],
        "nodrop": ["model.overrides={alphabet: dna, dropout: 0.0, drop_path: 0.0}"],
        "len256-nonoise": ["data.max_len=256", "data.mask_prob=0.0", "data.substitution_prob=0.0"],
        "len256-lr3e-4": ["data.max_len=256", "optim.lr=3e-4"],
    },
}


PART = {"val": "dev", "test": "quarantine"}  # split part -> folder under runs/ (the quarantine: reported once)


def dev_dir(alphabet: str, part: str = "val") -> Path:
    return REPO / "runs" / PART[part] / alphabet


def dev_sets(alphabet: str, part: str = "val"):
    """``(name, labelled dataset)`` of each dataset of ``alphabet`` present in ``dev_dir(alphabet, part)`` (a dataset
    without quarantined families has no folder there)."""
    from phylocl.workflows.inputs import read_labelled

    for name in DATASETS[alphabet]:
        if (dev_dir(alphabet, part) / name).is_dir():
            yield name, read_labelled(dev_dir(alphabet, part) / name, None)


def cmd_materialize(args) -> None:
    """Write each dataset's dev families as ``sequences.fasta`` + ``labels.tsv`` (all label columns kept).

    ``|`` in sequence ids becomes ``_``: MMseqs2 reads ``gi|...|gb|ACC|`` as ``ACC`` and its hits would not match.
    """
    from phylocl.atomic import atomic_dir

    split = json.loads((REPO / "configs" / "splits" / f"dev-{args.alphabet}.json").read_text())
    for name, info in split["datasets"].items():
        if not info[args.part]:
            continue
        ds = read(name).select_families(info[args.part])
        ids = [i.replace("|", "_") for i in ds.ids]
        if len(set(ids)) != len(ids):
            raise SystemExit(f"{name}: ids clash once '|' is replaced")
        with atomic_dir(dev_dir(args.alphabet, args.part) / name) as tmp:
            write_fasta(tmp / "sequences.fasta", ids, ds.sequences)
            cols = list(ds.metadata)
            with open(tmp / "labels.tsv", "w", newline="") as f:
                w = csv.writer(f, delimiter="\t", lineterminator="\n")
                w.writerow(["sequence_id", "family_id", *cols])
                for k in range(len(ds)):
                    w.writerow([ids[k], ds.families[k], *(ds.metadata[c][k] for c in cols)])
        print(f"{name}: {len(ds)} sequences, {len(ds.family_index)} families", file=sys.stderr)


def search_cut(embedder, windows: int | None = None, stride: int | None = None):
    """The cut that ``phylocl search``/``evaluate`` use with ``embedder`` (a :class:`~phylocl.workflows.windows.WindowCut`
    or ``None`` for one row per sequence): ``windows`` ``None`` is the model's own default (``search.json``, e.g.
    tiles of 200 for ``default-protein``; ``kmer:K`` and run folders: whole rows), ``0`` whole rows, ``W`` tiles of
    ``W``. ``stride`` replaces the tiles' stride (``W // 2``: the half-overlapping windows of the probe rows in
    docs/models.md)."""
    import dataclasses

    from phylocl.workflows.windows import resolve_windows

    cut = resolve_windows(windows, embedder)
    if stride is not None:
        if cut is None or not 1 <= stride <= cut.width:
            raise SystemExit(f"--stride {stride} needs windows of at least that many residues")
        cut = dataclasses.replace(cut, stride=stride)
    return cut


def _cut_record(cut) -> dict:
    """What a score row says about the cut: ``{"window": W, "stride": S}``, or ``{"window": 0}`` for whole rows."""
    return cut.params() if cut is not None else {"window": 0}


def score(model: str, alphabet: str, *, batch_size: int = 64, part: str = "val", windows: int | None = None,
          stride: int | None = None) -> list[dict]:
    """Dev figures of ``model`` on every materialized dev set (family level, plus ``GROUP_LEVELS``), all against all
    within each set, on the search path ``phylocl evaluate`` takes (:func:`search_cut`: the model's default windows
    unless ``windows`` says otherwise; a pair scores its best window pair).

    The steps of ``phylocl evaluate`` (read, resolve the model, embed, :func:`evaluate_embeddings` or
    :func:`evaluate_windows`), with each dev set embedded once for all its levels.
    """
    from phylocl.retrieval.evaluation import evaluate_embeddings, evaluate_windows
    from phylocl.workflows.embed_buffers import embed_all
    from phylocl.workflows.model_spec import resolve_model
    from phylocl.workflows.windows import embed_windows

    embedder = resolve_model(model, alphabet=alphabet, device="cpu")
    cut = search_cut(embedder, windows, stride)
    rows = []
    for name, ds in dev_sets(alphabet, part):
        started = time.perf_counter()
        items = zip(ds.ids, ds.sequences, ds.families)
        if cut is None:
            x, _ = embed_all(items, embedder, batch_size=batch_size)  # (N, D)
        else:
            x, _ = embed_windows(items, embedder, cut, batch_size=batch_size)  # WindowRows of N sequences
        seconds = time.perf_counter() - started
        for level in [None, *GROUP_LEVELS.get(name, [])]:
            groups = None if level is None else ds.metadata[level]
            evaluate = evaluate_embeddings if cut is None else evaluate_windows
            m = evaluate(x, ds.families, ks=RECALL_KS, group_labels=groups)
            rows.append({"dataset": name, "level": level or "family", "n_sequences": len(ds),
                         "n_queries": m["n_queries"],
                         **{k: float(m[k]) for k in ("top1", "map_r", "auc1",
                                                     *(f"recall@{k}" for k in RECALL_KS[1:]))},
                         **_cut_record(cut), "embed_seconds": round(seconds, 2), "model": embedder.name})
    return rows


def decoy_sequences(alphabet: str) -> list[str]:
    """The training sequences of ``alphabet``: every dataset's sequences outside its dev (``val``) and quarantined
    (``test``) families, in dataset order (protein: 16,489 sequences of 3,416 families)."""
    split = json.loads((REPO / "configs" / "splits" / f"dev-{alphabet}.json").read_text())
    out = []
    for name, info in split["datasets"].items():
        held = set(info["val"]) | set(info["test"])
        ds = read(name)
        out += [s for s, f in zip(ds.sequences, ds.families) if f not in held]
    return out


def _sparse_hits(index, q_rows, n_dev: int, depth: int):
    """Each dev query's hit list (:func:`~phylocl.retrieval.evaluation.tied_lists`) from a sparse index over dev rows
    ``0..n_dev-1``, then decoys."""
    from phylocl.retrieval.evaluation import tied_lists
    from phylocl.retrieval.hits import HitLists

    lists = []
    for lo in range(0, len(q_rows), 256):
        lists += tied_lists(index.scores(q_rows.slice(lo, min(lo + 256, len(q_rows)))), lo, depth)  # (b, N)
    return HitLists.from_lists(lists)


def _score_windows_decoys(embedder, cut, alphabet: str, *, batch_size: int = 64, part: str = "val") -> list[dict]:
    """:func:`score_decoys` with late interaction (``phylocl evaluate --db-extra`` on windows): every sequence
    (queries, dev set, decoys) is cut by ``cut`` into windows embedded separately; a pair scores its best window
    pair (:func:`~phylocl.retrieval.evaluation.evaluate_windows`). Also reports the cost: window rows, stored
    nonzeros and embedding seconds of the decoys."""
    from phylocl.retrieval.evaluation import evaluate_windows
    from phylocl.workflows.windows import embed_windows

    seqs = decoy_sequences(alphabet)
    started = time.perf_counter()
    decoys, _ = embed_windows([(str(i), s, None) for i, s in enumerate(seqs)], embedder, cut,
                              batch_size=batch_size)  # WindowRows of M sequences
    decoy_seconds = time.perf_counter() - started
    rows = []
    for name, ds in dev_sets(alphabet, part):
        x, _ = embed_windows(zip(ds.ids, ds.sequences, ds.families), embedder, cut, batch_size=batch_size)
        for level in [None, *GROUP_LEVELS.get(name, [])]:
            groups = None if level is None else ds.metadata[level]
            m = evaluate_windows(x, ds.families, decoys=decoys, ks=RECALL_KS, group_labels=groups)
            rows.append({"dataset": name, "level": level or "family", "n_sequences": len(ds),
                         "n_decoys": len(decoys), "n_queries": m["n_queries"], **_cut_record(cut),
                         **{k: float(m[k]) for k in ("top1", "map_r", "auc1",
                                                     *(f"recall@{k}" for k in RECALL_KS[1:]))},
                         "decoy_windows": len(decoys.owners), "decoy_nnz": int(decoys.rows.indptr[-1]),
                         "decoy_embed_seconds": round(decoy_seconds, 2), "model": embedder.name})
    return rows


def score_decoys(model: str, alphabet: str, *, batch_size: int = 64, part: str = "val",
                 dense: bool = False, windows: int | None = None, stride: int | None = None) -> list[dict]:
    """Dev figures with the training sequences as decoys (:func:`decoy_sequences`): each dev set's sequences query
    that dev set plus ~16,000 (protein) unlabelled decoys, so that recall@100 / @300 measure a prefilter on a
    database larger than the dev set (all-against-all within a 444-sequence dev set, recall@300 is near 1 for
    any method). On the search path ``phylocl evaluate`` takes (:func:`search_cut`: the model's default windows
    unless ``windows`` says otherwise; then :func:`_score_windows_decoys`). Whole rows: exact cosine search through
    the sparse index for models with sparse rows (k-mer profile models, ``kmer:K``); dense encoders (gMLP,
    transformer, sMLP, ...), or any model with ``dense``, through :func:`_score_decoys_dense`."""
    from phylocl.retrieval.metrics import score_hits
    from phylocl.retrieval.sparse_build import sparse_index_in_memory
    from phylocl.sparse_rows import concat_rows
    from phylocl.workflows.model_spec import resolve_model

    embedder = resolve_model(model, alphabet=alphabet, device="cpu")
    if dense or not embedder.sparse:
        if windows:
            raise SystemExit("dense decoy scoring takes whole rows (--windows 0)")
        return _score_decoys_dense(embedder, alphabet, batch_size=batch_size, part=part)
    cut = search_cut(embedder, windows, stride)
    if cut is not None:
        return _score_windows_decoys(embedder, cut, alphabet, batch_size=batch_size, part=part)
    started = time.perf_counter()
    decoys = embedder.embed_sparse(decoy_sequences(alphabet), batch_size=batch_size)
    decoy_seconds = time.perf_counter() - started
    rows = []
    for name, ds in dev_sets(alphabet, part):
        q = embedder.embed_sparse(ds.sequences, batch_size=batch_size)
        db = concat_rows([q, decoys])
        index = sparse_index_in_memory(db, ids=[str(i) for i in range(len(db))])
        for level in [None, *GROUP_LEVELS.get(name, [])]:
            rel = list(ds.families if level is None else ds.metadata[level])
            largest = int(np.unique(rel, return_counts=True)[1].max()) - 1
            hits = _sparse_hits(index, q, len(ds), min(max(RECALL_KS[-1], largest), len(db) - 1))
            m = score_hits(hits, rel, rel + [None] * len(decoys), ks=RECALL_KS, query_rows=np.arange(len(ds)))
            rows.append({"dataset": name, "level": level or "family", "n_sequences": len(ds),
                         "n_decoys": len(decoys), "n_queries": m["n_queries"], **_cut_record(None),
                         **{k: float(m[k]) for k in ("top1", "map_r", "auc1",
                                                     *(f"recall@{k}" for k in RECALL_KS[1:]))},
                         "decoy_nnz": int(decoys.indptr[-1]), "decoy_embed_seconds": round(decoy_seconds, 2),
                         "model": embedder.name})
    return rows


def _score_decoys_dense(embedder, alphabet: str, *, batch_size: int = 64, part: str = "val") -> list[dict]:
    """:func:`score_decoys` for dense rows: the decoys and each dev set embedded as ``phylocl evaluate`` embeds
    (:func:`~phylocl.workflows.embed_buffers.embed_all`, fp32), then exact inner-product search over the unit rows
    (:func:`~phylocl.retrieval.evaluation.evaluate_embeddings` with ``decoy_embeddings``: flat index, self
    excluded, ties kept pessimistically as in the sparse path). Progress of the decoy embedding on stderr."""
    from tqdm.auto import tqdm

    from phylocl.retrieval.evaluation import evaluate_embeddings
    from phylocl.workflows.embed_buffers import embed_all

    seqs = decoy_sequences(alphabet)
    started = time.perf_counter()
    with tqdm(total=len(seqs), desc="decoys", unit="seq", mininterval=30, file=sys.stderr) as bar:
        decoys, _ = embed_all([(str(i), s, None) for i, s in enumerate(seqs)], embedder, batch_size=batch_size,
                              progress=bar)  # (M, D)
    decoy_seconds = time.perf_counter() - started
    rows = []
    for name, ds in dev_sets(alphabet, part):
        x, _ = embed_all(zip(ds.ids, ds.sequences, ds.families), embedder, batch_size=batch_size)  # (N, D)
        for level in [None, *GROUP_LEVELS.get(name, [])]:
            groups = None if level is None else ds.metadata[level]
            m = evaluate_embeddings(x, ds.families, decoy_embeddings=decoys, ks=RECALL_KS, group_labels=groups)
            rows.append({"dataset": name, "level": level or "family", "n_sequences": len(ds),
                         "n_decoys": len(decoys), "n_queries": m["n_queries"],
                         **{k: float(m[k]) for k in ("top1", "map_r", "auc1",
                                                     *(f"recall@{k}" for k in RECALL_KS[1:]))},
                         "decoy_embed_seconds": round(decoy_seconds, 2), "search": "dense", "model": embedder.name})
    return rows


def score_aligner_decoys(tool: str, alphabet: str, threads: int = 1, part: str = "val") -> list[dict]:
    """:func:`score_decoys` for an aligner (``diamond``: ``--sensitive``; ``mmseqs``: ``-s 7.5``, nucleotide search
    for DNA), E <= 10, hits ranked by bit score, every hit kept: ``hitlist_recall`` is the fraction of each
    query's relatives anywhere in its hit list (what a prefilter of unlimited depth would pass on)."""
    from phylocl.retrieval.hits import BLAST_TAB, read_hits_tsv
    from phylocl.retrieval.metrics import score_hits

    decoys = decoy_sequences(alphabet)
    rows = []
    for name, ds in dev_sets(alphabet, part):
        ids = [f"q{i}" for i in range(len(ds))] + [f"d{i}" for i in range(len(decoys))]
        with tempfile.TemporaryDirectory() as tmp:
            t = Path(tmp)
            write_fasta(t / "q.fa", ids[:len(ds)], ds.sequences)
            write_fasta(t / "db.fa", ids, list(ds.sequences) + decoys)
            started = time.perf_counter()
            if tool == "diamond":
                cmds = [["diamond", "makedb", "--in", t / "db.fa", "-d", t / "db", "--quiet"],
                        ["diamond", "blastp", "-q", t / "q.fa", "-d", t / "db", "-o", t / "hits.tsv", "--sensitive",
                         "--max-target-seqs", str(len(ids)), "--evalue", "10", "--threads", str(threads),
                         "--quiet"]]
            else:
                cmds = [["mmseqs", "easy-search", t / "q.fa", t / "db.fa", t / "hits.tsv", t / "work", "-s", "7.5",
                         "--max-seqs", str(len(ids)), "-e", "10", "--threads", str(threads), "-v", "1",
                         "--search-type", "3" if alphabet == "dna" else "1"]]
            for cmd in cmds:
                subprocess.run([str(c) for c in cmd], check=True, stdout=subprocess.DEVNULL)
            seconds = time.perf_counter() - started
            hits = read_hits_tsv(t / "hits.tsv", query_ids=ids[:len(ds)], db_ids=ids, **dict(BLAST_TAB))
        for level in [None, *GROUP_LEVELS.get(name, [])]:
            rel = list(ds.families if level is None else ds.metadata[level])
            ks = (*RECALL_KS, len(ids))
            m = score_hits(hits, rel, rel + [None] * len(decoys), ks=ks, query_ids=ids[:len(ds)], db_ids=ids)
            rows.append({"dataset": name, "level": level or "family", "n_sequences": len(ds),
                         "n_decoys": len(decoys), "n_queries": m["n_queries"],
                         **{k: float(m[k]) for k in ("top1", "map_r", "auc1",
                                                     *(f"recall@{k}" for k in RECALL_KS[1:]))},
                         "hitlist_recall": float(m[f"recall@{len(ids)}"]), "search_seconds": round(seconds, 2),
                         "model": tool})
    return rows


def cmd_score(args) -> None:
    args.model = untrained_spec(args.model, args.alphabet)
    if args.model in ("diamond", "mmseqs"):
        rows = score_aligner_decoys(args.model, args.alphabet, part=args.part) if args.decoys else None
        if rows is None:
            raise SystemExit("aligners are scored with --decoys here (benchmarks/peers.py without decoys)")
    else:
        rows = (score_decoys if args.decoys else score)(args.model, args.alphabet, part=args.part,
                                                         windows=args.windows, stride=args.stride)
    text = json.dumps(rows, indent=1) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    print(text, end="")


def save_untrained(alphabet: str, path: Path, model_name: str | None = None) -> None:
    """The baseline's encoder at step 0 (built as ``phylocl train`` builds it, seeded with ``trainer.seed``);
    ``model_name`` swaps the registered encoder config, as the ``model.name=...`` variants do (their start)."""
    import torch

    from phylocl.config import load_config
    from phylocl.models.registry import build_encoder

    cfg = load_config(ABLATION_BASE[alphabet])
    torch.manual_seed(cfg.trainer.seed)
    overrides = {"max_len": cfg.data.max_len, **cfg.model.overrides, "alphabet": alphabet}
    path.parent.mkdir(parents=True, exist_ok=True)
    build_encoder(model_name or cfg.model.name, **overrides).save(path)


def untrained_spec(model: str, alphabet: str) -> str:
    """``untrained:NAME`` -> the folder of the ablation baseline with encoder config ``NAME`` at step 0
    (``runs/ablation/<alphabet>/untrained-NAME/encoder.pt``, built once); any other spec unchanged."""
    if not model.startswith("untrained:"):
        return model
    name = model.split(":", 1)[1]
    path = REPO / "runs" / "ablation" / alphabet / f"untrained-{name}" / "encoder.pt"
    if not path.exists():
        save_untrained(alphabet, path, name)
    return str(path.parent)


def cmd_run(args) -> None:
    """Train each variant (skipping finished ones), then score it on the dev sets: ``<run>/dev.json``."""
    from phylocl.workflows.run_folder import exported_model

    names = args.variants or list(VARIANTS[args.alphabet])
    for name in names:
        out = REPO / "runs" / "ablation" / args.alphabet / name
        if name == "untrained" and exported_model(out) is None:
            save_untrained(args.alphabet, out / "encoder.pt")
        elif exported_model(out) is None:  # a model folder (config.json + model.safetensors) or an older encoder.pt
            cmd = [sys.executable, "-m", "phylocl.cli", "train", "--config", str(ABLATION_BASE[args.alphabet]),
                   "--out", str(out), "--quiet"]
            for item in VARIANTS[args.alphabet][name]:
                cmd += ["--set", item]
            if (out / "checkpoints").is_dir():
                cmd.append("--resume")
            started, cpu0 = time.time(), _children_cpu()
            subprocess.run(cmd, check=True, cwd=REPO)
            (out / "cost.json").write_text(json.dumps({"wall_seconds": round(time.time() - started, 1),
                                                       "cpu_seconds": round(_children_cpu() - cpu0, 1)}) + "\n")
        if not (out / "dev.json").exists():
            (out / "dev.json").write_text(json.dumps(score(str(out), args.alphabet), indent=1) + "\n")
        print(f"{name}: done", file=sys.stderr, flush=True)


def _children_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cmd_table(args) -> None:
    """Markdown table of every ablation run of ``alphabet`` (AUC1 per dev set, MAP@R where informative)."""
    root = REPO / "runs" / "ablation" / args.alphabet
    head = None
    for name in ["untrained", *VARIANTS[args.alphabet], *args.extra]:
        run = root / name if name in VARIANTS[args.alphabet] or name == "untrained" else Path(name)
        dev = run / "dev.json" if run.is_dir() else run
        if not dev.exists():
            continue
        rows = json.loads(dev.read_text())
        cost = json.loads((run / "cost.json").read_text()) if (run / "cost.json").exists() else {}
        steps = json.loads((run / "metrics.json").read_text())["steps"] if (run / "metrics.json").exists() else 0
        cols = {f"{r['dataset']} {r['level']}": r for r in rows}
        if head is None:
            head = list(cols)
            print("| variant | change | steps | CPU min | " + " | ".join(f"{c} MAP@R / AUC1" for c in head)
                  + " | mean AUC1 | hard mean AUC1 |")
            print("|---|---|---:|---:|" + "---:|" * (len(head) + 2))
        auc = [cols[c]["auc1"] for c in head]
        hard = [cols[c]["auc1"] for c in head if c.split()[0] in HARD]
        change = ", ".join(VARIANTS[args.alphabet].get(name, [])) or ("baseline" if name == "base" else "-")
        cpu = f"{cost['cpu_seconds'] / 60:.1f}" if cost else "-"
        label = name if name in VARIANTS[args.alphabet] or name == "untrained" else rows[0]["model"]
        print(f"| {label} | {change} | {steps} | {cpu} | "
              + " | ".join(f"{cols[c]['map_r']:.3f} / {cols[c]['auc1']:.3f}" for c in head)
              + f" | {np.mean(auc):.3f} | {np.mean(hard):.3f} |")


def cmd_rtable(args) -> None:
    """Markdown table of score JSON files (``score`` / ``score --decoys`` output): AUC1 / recall@100 / recall@300 per
    dev set, one row per ``LABEL=FILE`` (docs/models.md, issue 24); ``--sets`` picks the columns."""
    head = None
    for item in args.rows:
        label, _, path = item.partition("=")
        rows = {f"{r['dataset']} {r['level']}": r for r in json.loads(Path(path).read_text())}
        cols = [c for c in rows if not args.sets or any(c.startswith(s) for s in args.sets)]
        if head is None:
            head = cols
            print("| method | " + " | ".join(head) + " |")
            print("|---|" + "---:|" * len(head))
        print(f"| {label} | " + " | ".join(
            f"{rows[c]['auc1']:.3f} / {rows[c]['recall@100']:.3f} / {rows[c]['recall@300']:.3f}"
            + (f" ({rows[c]['hitlist_recall']:.3f})" if "hitlist_recall" in rows[c] else "") for c in head) + " |")


def _timed(cmd: list, cwd: Path, env: dict) -> float:
    started = time.perf_counter()
    subprocess.run([str(c) for c in cmd], check=True, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def cmd_speed(args) -> None:
    """Wall time of one search, phylocl (embed + exact FAISS) against DIAMOND ``--sensitive``, same files/threads.

    ``oneshot``: both start from FASTA files (``phylocl search --db`` embeds the database; DIAMOND runs ``makedb``).
    ``prebuilt``: the database is ready (``phylocl embed`` + ``phylocl index``, or ``phylocl index --fasta`` with
    ``--sparse``, / ``diamond makedb`` done before, timed separately as ``build``); only the query side is timed. Tools alternate ``--repeats`` times; the median
    is printed (one JSON line per measurement, then a summary).
    """
    import os
    import statistics

    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    q, db = Path(args.query).resolve(), Path(args.db).resolve()
    phylocl = [sys.executable, "-m", "phylocl.cli"]
    model = (["--model", args.model] if args.model else []) + ["--precision", args.precision]
    k = str(args.k)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        if args.sparse:  # posting lists straight from the FASTA (k-mer profile models)
            phylocl_build = _timed(phylocl + ["index", "--fasta", db, "-o", t / "idx", *model, "--quiet"], t, env)
        else:
            phylocl_build = (_timed(phylocl + ["embed", "--fasta", db, "-o", t / "db.npz", *model, "--quiet"], t, env)
                             + _timed(phylocl + ["index", "--embeddings", t / "db.npz", "-o", t / "idx", "--threads",
                                                 str(args.threads)], t, env))
        build = {
            "phylocl": phylocl_build,
            "diamond": _timed(["diamond", "makedb", "--in", db, "-d", t / "db", "--threads", str(args.threads),
                               "--quiet"], t, env),
        }
        runs = {
            ("oneshot", "phylocl"): phylocl + ["search", "--query", q, "--db", db, "-k", k, "-o", t / "a.tsv",
                                               *model, "--quiet"],
            ("oneshot", "diamond"): ["sh", "-c", f"diamond makedb --in {db} -d {t}/db1 --threads {args.threads} "
                                     f"--quiet && diamond blastp -q {q} -d {t}/db1 -o {t}/b.tsv --sensitive "
                                     f"--max-target-seqs {k} --evalue 10 --threads {args.threads} --quiet"],
            ("prebuilt", "phylocl"): phylocl + ["search", "--query", q, "--index", t / "idx", "-k", k,
                                                "-o", t / "c.tsv", *model, "--quiet"],
            ("prebuilt", "diamond"): ["diamond", "blastp", "-q", q, "-d", t / "db", "-o", t / "d.tsv", "--sensitive",
                                      "--max-target-seqs", k, "--evalue", "10", "--threads", str(args.threads),
                                      "--quiet"],
        }
        times: dict = {key: [] for key in runs}
        for _ in range(args.repeats):
            for key, cmd in runs.items():
                times[key].append(_timed(cmd, t, env))
                print(json.dumps({"mode": key[0], "tool": key[1], "seconds": round(times[key][-1], 2),
                                  "load_avg_1min": os.getloadavg()[0]}), flush=True)
    n_q = sum(1 for line in open(q) if line.startswith(">"))
    n_db = sum(1 for line in open(db) if line.startswith(">"))
    summary = {"query": str(args.query), "db": str(args.db), "n_query": n_q, "n_db": n_db, "threads": args.threads,
               "model": args.model or "default", "precision": args.precision, "sparse": args.sparse,
               "build_seconds": {k2: round(v, 2) for k2, v in build.items()}}
    for mode in ("oneshot", "prebuilt"):
        med = {tool: statistics.median(times[(mode, tool)]) for tool in ("phylocl", "diamond")}
        summary[mode] = {**{tool: round(v, 2) for tool, v in med.items()},
                         "diamond_over_phylocl": round(med["diamond"] / med["phylocl"], 2)}
    print(json.dumps(summary))


FIGURE_METHODS = {"protein": ["kmer:3", "default-protein"], "dna": ["kmer:5", "kmer:3", "default-dna"]}
FIGURES = REPO / "phylocl" / "pretrained" / "dev-figures.json"


def figure_cut(method: str, alphabet: str) -> dict:
    """The search path a user gets with ``--model METHOD`` (:func:`search_cut` with no ``--windows``), as a record:
    ``{"window": W, "stride": S}`` (the model's ``search.json``) or ``{"window": 0}`` (one row per sequence)."""
    from phylocl.workflows.model_spec import resolve_model

    return _cut_record(search_cut(resolve_model(method, alphabet=alphabet, device="cpu")))


def cmd_figures(args) -> None:
    """Write ``phylocl/pretrained/dev-figures.json`` from measurements (the no-model default is chosen from it;
    ``python benchmarks/ablation.py figures --decoys protein``).

    Per alphabet and method (``FIGURE_METHODS``: the ``kmer:K`` baselines and the shipped encoders), each scored on
    the search path a user gets by default with it (:func:`figure_cut`: ``default-protein`` as tiles of 200, from
    its ``search.json``; the others whole rows; recorded under ``search``): family-level AUC1 per dev set
    (``<alphabet>``, the table :mod:`phylocl.workflows.defaults` ranks by), recall@300 per dev set (``recall@300``:
    all against all within the dev set, as AUC1) and, with ``--decoys``, recall@300 against the dev set plus the
    training sequences as decoys (``recall@300_decoys``, sparse models only). Each method's rows are cached in
    ``runs/figures/<alphabet>/<method>[.w<W>s<S>][.decoys].json`` (delete them to re-measure a method).
    """
    from phylocl.atomic import atomic_path

    cache = REPO / "runs" / "figures"
    table = {"description": "Dev-split figures (family level) of the methods that phylocl can use without --model, "
                            "per alphabet, each on the search path it gets by default (search: window width and "
                            "stride, 0 = one row per sequence): AUC1 per dev set (the default is the method with "
                            "the highest mean AUC1 over the alphabet's dev sets; ties: the first listed) and "
                            "recall@300 (all against all within each dev set; recall@300_decoys: against the dev "
                            "set plus the alphabet's training sequences as unlabelled decoys).",
             "source": "python benchmarks/ablation.py figures [--decoys] (score / score --decoys of each method on "
                       "the family-disjoint dev sets of configs/splits/dev-<alphabet>.json); docs/models.md",
             "metric": "auc1"}
    extra: dict = {"search": {}, "recall@300": {}, "recall@300_decoys": {}}
    for alphabet in args.alphabets:
        if not dev_dir(alphabet, "val").is_dir():  # else every method scores no set and [] would be cached
            raise SystemExit(f"{dev_dir(alphabet, 'val')} is missing: run `python benchmarks/ablation.py "
                             f"materialize {alphabet}` first")
        table[alphabet] = {}
        for method in FIGURE_METHODS[alphabet]:
            cut = figure_cut(method, alphabet)
            extra["search"].setdefault(alphabet, {})[method] = cut
            tag = f".w{cut['window']}s{cut['stride']}" if cut["window"] else ""
            for decoys in (False, True) if alphabet in args.decoys else (False,):
                name = method.replace(":", "").replace("/", "_")  # kmer:3 -> kmer3; a path -> one file name
                path = cache / alphabet / f"{name}{tag}{'.decoys' if decoys else ''}.json"
                if not path.exists():
                    path.parent.mkdir(parents=True, exist_ok=True)
                    rows = (score_decoys if decoys else score)(method, alphabet)
                    if not rows:
                        raise SystemExit(f"{method} ({alphabet}) scored no dev set; nothing cached")
                    path.write_text(json.dumps(rows, indent=1) + "\n")
                rows = [r for r in json.loads(path.read_text()) if r["level"] == "family"]
                if decoys:
                    extra["recall@300_decoys"].setdefault(alphabet, {})[method] = {
                        r["dataset"]: round(r["recall@300"], 4) for r in rows}
                else:
                    table[alphabet][method] = {r["dataset"]: round(r["auc1"], 4) for r in rows}
                    extra["recall@300"].setdefault(alphabet, {})[method] = {
                        r["dataset"]: round(r["recall@300"], 4) for r in rows}
                print(f"{alphabet} {method}{' (decoys)' if decoys else ''}: measured", file=sys.stderr, flush=True)
    table.update({k: v for k, v in extra.items() if v})
    out = Path(args.out)
    with atomic_path(out) as tmp:
        Path(tmp).write_text(json.dumps(table, indent=1) + "\n")
    print(json.dumps({"written": str(out)}))


def cmd_ship(args) -> None:
    """Copy a trained run's exported encoder into the package as the model folder ``phylocl/pretrained/<name>/``
    (config.json + model.safetensors), renamed."""
    import phylocl
    from phylocl.models.encoder import SequenceEncoder
    from phylocl.models.encoder_config import EncoderConfig

    enc = phylocl.load_encoder(args.run)
    config = {**enc.config.to_dict(), "name": args.name}
    shipped = SequenceEncoder(config=EncoderConfig(**config))
    shipped.load_state_dict(enc.state_dict())
    path = shipped.save_pretrained(REPO / "phylocl" / "pretrained" / args.name)
    print(json.dumps({"name": args.name, "folder": str(path.relative_to(REPO)),
                      "bytes": (path / "model.safetensors").stat().st_size,
                      "fingerprint": shipped.fingerprint(), "parameters": shipped.num_parameters(),
                      "from": str(args.run)}))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("split", help="make configs/splits/dev-<alphabet>.json and print the holdout block")
    s.add_argument("alphabet", choices=sorted(DATASETS))
    s.set_defaults(fn=cmd_split)
    s = sub.add_parser("materialize", help="write the dev families of each dataset under runs/dev/<alphabet>/")
    s.add_argument("alphabet", choices=sorted(DATASETS))
    s.add_argument("--part", choices=sorted(PART), default="val",
                   help="test: the quarantined families instead, under runs/quarantine/<alphabet>/ (report once)")
    s.set_defaults(fn=cmd_materialize)
    s = sub.add_parser("run", help="train and score ablation variants (one training at a time)")
    s.add_argument("alphabet", choices=sorted(DATASETS))
    s.add_argument("variants", nargs="*", help="variant names (default: all)")
    s.set_defaults(fn=cmd_run)
    s = sub.add_parser("score", help="dev figures of a model spec (run dir, .pt file, shipped name, kmer:K)")
    s.add_argument("model", help="run dir, .pt file, shipped name, kmer:K, diamond/mmseqs (with --decoys), or "
                   "untrained:NAME (the ablation baseline with encoder config NAME at step 0)")
    s.add_argument("alphabet", choices=sorted(DATASETS))
    s.add_argument("--out", help="also write the rows there (JSON)")
    s.add_argument("--decoys", action="store_true",
                   help="dev sets searched against themselves plus the training sequences as decoys (sparse index for "
                   "k-mer profile models and kmer:K, exact dense search for the other encoders)")
    s.add_argument("--part", choices=sorted(PART), default="val", help="test: the quarantined families")
    s.add_argument("--windows", type=int, metavar="W",
                   help="late interaction over windows of W residues (tiles; a pair scores its best window pair), "
                   "0: one row per sequence; default: the model's own search path, as phylocl evaluate "
                   "(default-protein: tiles of 200, from its search.json)")
    s.add_argument("--stride", type=int, metavar="S",
                   help="with windows: stride S instead of the tiles' (W // 2: the half-overlapping probe windows)")
    s.set_defaults(fn=cmd_score)
    s = sub.add_parser("table", help="markdown table of the ablation runs")
    s.add_argument("alphabet", choices=sorted(DATASETS))
    s.add_argument("extra", nargs="*", help="more rows: run folders or score JSON files (e.g. kmer:3's)")
    s.set_defaults(fn=cmd_table)
    s = sub.add_parser("rtable", help="markdown table of score JSON files: AUC1 / recall@100 / recall@300")
    s.add_argument("rows", nargs="+", metavar="LABEL=FILE")
    s.add_argument("--sets", nargs="*", default=[], help="dataset name prefixes to show (default: all)")
    s.set_defaults(fn=cmd_rtable)
    s = sub.add_parser("speed", help="embedding + FAISS search against DIAMOND --sensitive on one query/db pair")
    s.add_argument("--query", required=True)
    s.add_argument("--db", required=True)
    s.add_argument("--model", help="phylocl model spec (default: default-<alphabet>)")
    s.add_argument("-k", type=int, default=50)
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--repeats", type=int, default=3)
    s.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="phylocl's --precision")
    s.add_argument("--sparse", action="store_true",
                   help="prebuilt: a sparse index from the FASTA (k-mer profile models) instead of embed + flat")
    s.set_defaults(fn=cmd_speed)
    s = sub.add_parser("figures", help="measure and write phylocl/pretrained/dev-figures.json")
    s.add_argument("--alphabets", nargs="+", default=["protein", "dna"], choices=sorted(DATASETS))
    s.add_argument("--decoys", nargs="*", default=[], choices=sorted(DATASETS), metavar="ALPHABET",
                   help="also recall@300 with the training sequences as decoys, for these alphabets")
    s.add_argument("--out", default=str(FIGURES))
    s.set_defaults(fn=cmd_figures)
    s = sub.add_parser("ship", help="copy a run's encoder into phylocl/pretrained/<name>/ under that name")
    s.add_argument("run", help="training output folder (or encoder file)")
    s.add_argument("name", help="shipped name, e.g. default-protein")
    s.set_defaults(fn=cmd_ship)
    args = p.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
