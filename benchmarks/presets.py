"""Aligned ranking of ``phylocl search`` on a labelled dev set at several speed/sensitivity settings
(``--candidates``, ``--word-budget``, ``--filter-pvalue``), to choose the ``--sensitivity`` presets.

For a labelled set (``runs/dev/protein/<dataset>``) it writes the set (and, with ``--decoys``, the unlabelled
training sequences after it) to one FASTA, builds a sparse index over it once (``phylocl index --fasta``: the
model's default windows), then for every setting runs ``phylocl search`` with the set as queries, ``-k`` = the
setting's candidates (every aligned hit with E-value <= 10 is written, as ``evaluate --align`` ranks them) and
scores the hits with :func:`~phylocl.retrieval.metrics.score_hits` (bit scores, ties pessimistic; self hits left
out; decoys only ever false positives). Prints one JSON line per setting: ``auc1``, ``map_r``, ``top1``, wall and
CPU seconds of the search (index loaded, alignment included; index build excluded).

A setting is ``CANDIDATES[:WORD_BUDGET[:FILTER_PVALUE]]`` (``500``: today's default; ``200:0.2``) or a preset
name (``fast``)::

    OMP_NUM_THREADS=1 python benchmarks/presets.py --data runs/dev/protein/mycoplasma-orthogroups \\
        --decoys work/decoys.fasta --work /tmp/presets --settings 500 1000 200:0.2 fast --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from phylocl.retrieval.hits import HitLists  # noqa: E402
from phylocl.retrieval.metrics import score_hits  # noqa: E402
from phylocl.workflows.inputs import read_labelled  # noqa: E402


def _fasta_records(path: Path):
    """``(id, sequence)`` of a plain FASTA file."""
    rid, seq = None, []
    for line in path.read_text().splitlines():
        if line.startswith(">"):
            if rid is not None:
                yield rid, "".join(seq)
            rid, seq = line[1:].split()[0], []
        elif line.strip():
            seq.append(line.strip())
    if rid is not None:
        yield rid, "".join(seq)


def _setting(text: str) -> dict:
    """``"200:0.2:0.02"`` -> search options; a preset name -> ``{"sensitivity": name}``."""
    if not text[0].isdigit():
        return {"sensitivity": text}
    parts = text.split(":")
    out = {"candidates": int(parts[0])}
    if len(parts) > 1 and float(parts[1]) < 1:
        out["word_budget"] = float(parts[1])
    if len(parts) > 2:
        out["filter_pvalue"] = float(parts[2])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="labelled dataset folder (runs/dev/protein/<name>)")
    p.add_argument("--decoys", help="FASTA of unlabelled sequences added to the database")
    p.add_argument("--group-column", help="labels column deciding relevance (default: the family)")
    p.add_argument("--work", required=True, help="folder for the FASTA, the index and the hits")
    p.add_argument("--settings", nargs="+", required=True)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()

    from phylocl.workflows.search import search
    from phylocl.workflows.sparse_index_command import build_sparse_index_file

    ds = read_labelled(args.data, None)
    rel = list(ds.families)
    if args.group_column:
        import csv

        with open(Path(args.data) / "labels.tsv") as f:
            rows = {r[next(iter(r))]: r[args.group_column] for r in csv.DictReader(f, delimiter="\t")}
        rel = [rows[i] for i in ds.ids]
    decoys = list(_fasta_records(Path(args.decoys))) if args.decoys else []
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    queries, db = work / "queries.fasta", work / "db.fasta"
    with open(queries, "w") as f:
        f.writelines(f">{i}\n{s}\n" for i, s in zip(ds.ids, ds.sequences))
    with open(db, "w") as f:
        f.writelines(f">{i}\n{s}\n" for i, s in [*zip(ds.ids, ds.sequences), *decoys])
    index = work / "db.index"
    if not index.exists():
        build_sparse_index_file(fasta=db, out=index, progress=False, threads=args.threads)
    row = {rid: n for n, (rid, _) in enumerate([*zip(ds.ids, ds.sequences), *decoys])}
    db_labels = rel + [None] * len(decoys)
    for text in args.settings:
        opts = _setting(text)
        out = work / f"hits-{text.replace(':', '_')}.tsv"
        c0, t0 = os.times(), time.perf_counter()
        r = search(query=queries, index=index, out=out, k=opts.get("candidates", 2000), threads=args.threads,
                   progress=False, **opts)
        wall, c1 = time.perf_counter() - t0, os.times()
        lists: dict[str, list] = {i: ([], []) for i in ds.ids}
        with open(out) as f:
            next(f)
            for line in f:
                q, t, _, _, bits, _ = line.rstrip("\n").split("\t")
                lists[q][0].append(row[t])
                lists[q][1].append(float(bits))
        m = score_hits(HitLists.from_lists([lists[i] for i in ds.ids]), rel, db_labels, ks=(1, 10),
                       query_rows=list(range(len(ds.ids))))
        print(json.dumps({"data": Path(args.data).name, "decoys": bool(decoys), "level": args.group_column or
                          "family", "setting": text, "candidates": r.candidates, "word_budget": r.word_budget,
                          "auc1": round(m["auc1"], 4), "map_r": round(m["map_r"], 4), "top1": round(m["top1"], 4),
                          "n_queries": m["n_queries"], "seconds": round(wall, 2),
                          "cpu_seconds": round(c1.user + c1.system + c1.children_user + c1.children_system
                                               - c0.user - c0.system - c0.children_user - c0.children_system, 2),
                          "load": os.getloadavg()[0]}), flush=True)


if __name__ == "__main__":
    main()
