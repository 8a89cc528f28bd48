"""phylocl next to the tools people use: all-against-all family retrieval with MMseqs2, DIAMOND, k-mers and models.

Every tool searches the labelled set against itself; every hit list is scored by the same code as
``phylocl evaluate`` (:func:`~phylocl.retrieval.hits.read_hits_tsv` + :func:`~phylocl.retrieval.metrics.score_hits`
for the aligners, :func:`~phylocl.retrieval.evaluation.evaluate_embeddings` for embeddings, which calls
``score_hits`` too), self hits removed, ties ranked pessimistically. One JSON object per tool on stdout::

    python benchmarks/peers.py --data ../shared/data/pfam-seed-examples --threads 2
    python benchmarks/peers.py --data ../shared/data/scope40-train --group-column family,superfamily \\
        --tools mmseqs,diamond,kmer:3 --model runs/scope/ --split test
    python benchmarks/peers.py --data ../shared/data/rfam5-seed --tools "mmseqs,mmseqs:-k 0,kmer:5"

Tools (``--tools``, comma-separated):

``mmseqs``         MMseqs2 ``easy-search`` at high sensitivity (``-s 7.5``), ``--max-seqs`` = the number of
                   sequences, ``-e 10``; nucleotide search (``--search-type 3``) for DNA, else protein
                   (``--search-type 1``). Score: bit score (``--score evalue`` ranks by -E-value instead).
``diamond``        DIAMOND ``blastp --sensitive``, ``--max-target-seqs`` = the number of sequences, ``--evalue 10``
                   (protein only: skipped for DNA). ``diamond-ultra`` runs ``--ultra-sensitive``.
``mmseqs-index``   MMseqs2 with a prepared index: ``createdb`` + ``createindex`` once, then ``easy-search`` against the
                   indexed database (same settings as ``mmseqs``); ``step_seconds`` times each command, so the
                   search alone is the last entry.
``blastp``         NCBI BLASTP (``makeblastdb`` + ``blastp -evalue 10 -max_target_seqs`` = the number of
                   sequences; BLAST's defaults otherwise: composition-based statistics on); protein only.
``phylocl-align``  ``phylocl search --query SET --db SET --format blast6`` (alignment stage on, the default
                   model), run as a command like the aligners, so its time includes start-up, embedding and
                   alignment; ``phylocl-align:--candidates 100`` passes options.
``ALIGNER:ARGS``   extra arguments for the search command, e.g. ``mmseqs:-k 0``: MMseqs2's nucleotide search
                   otherwise seeds with exact 15-mers whatever ``-s`` says; ``-k 0`` lets it pick its k (6 here).
``kmer:K``         the k-mer profile baseline; ``--model M`` (repeatable) adds phylocl encoders.

``--group-column family,superfamily`` scores the same searches at both levels (one row each); ``--split test``
keeps the held-out families of a training run (as ``phylocl evaluate --split``), so every tool is measured on
families the model never saw.

Times: ``search_seconds`` is the search itself (aligner run incl. its database build / FAISS index + search);
``total_seconds`` adds writing the input, embedding, reading and scoring the hits; ``load_avg_1min`` is the
machine's load when the dataset was read (other jobs slow every timing). Aligner command lines are shown with
their working folder as ``WORK``. Tools that are not installed are skipped with a message on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from phylocl.data.layouts import read_dataset
from phylocl.retrieval.hits import BLAST_TAB, HitLists, read_hits_tsv
from phylocl.retrieval.metrics import score_hits

ALIGNERS = ("mmseqs", "mmseqs-index", "diamond", "diamond-ultra", "blastp", "phylocl-align")
EXECUTABLE = {"mmseqs": "mmseqs", "mmseqs-index": "mmseqs", "diamond": "diamond", "diamond-ultra": "diamond",
              "blastp": "blastp", "phylocl-align": sys.executable}
PHYLOCL = [sys.executable, "-c", "import sys; from phylocl.cli import main; sys.exit(main())"]
EVALUE_COL = 10  # BLAST tabular: qseqid sseqid pident length mismatch gapopen qstart qend sstart send evalue bitscore


# ----------------------------------------------------------------------------- input
def subsample(ds, max_sequences: int | None, seed: int, group_column: str | None = None):
    """At most ``max_sequences`` sequences made of whole families (whole groups with ``group_column``), drawn in a
    seeded random order; a unit that would overflow the budget is skipped. Dataset order is kept."""
    if max_sequences is None or len(ds) <= max_sequences:
        return ds
    unit = ds.metadata[group_column] if group_column else ds.families
    members: dict[str, list[int]] = {}
    for i, u in enumerate(unit):
        members.setdefault(u, []).append(i)
    names = sorted(members)
    keep: list[int] = []
    for j in np.random.default_rng(seed).permutation(len(names)):
        rows = members[names[j]]
        if len(keep) + len(rows) <= max_sequences:
            keep.extend(rows)
    return ds.subset(sorted(keep))


def write_fasta(path: Path, ids, sequences) -> Path:
    with open(path, "w") as f:
        for i, s in zip(ids, sequences):
            f.write(f">{i}\n{s}\n")
    return path


# ----------------------------------------------------------------------------- aligners
def split_tool(spec: str) -> tuple[str, list[str]]:
    """``"mmseqs:-k 0"`` -> ``("mmseqs", ["-k", "0"])``: an aligner and extra arguments appended to its search
    command; ``"kmer:3"`` or a model spec -> ``(spec, [])``."""
    base, sep, extra = spec.partition(":")
    if base in ALIGNERS:
        return base, shlex.split(extra) if sep else []
    return spec, []


def parse_version(tool: str, text: str) -> str:
    """Version string from ``mmseqs version`` (``14-7e284+ds-1+b2``) or ``diamond version`` output."""
    text = text.strip()
    if EXECUTABLE.get(tool, tool) == "diamond":
        return text.split("version", 1)[1].strip().split()[0] if "version" in text else text
    return text.split()[0] if text else "unknown"


def tool_version(tool: str) -> str | None:
    """Installed version of ``tool``, or ``None`` when its executable is not on PATH."""
    if tool == "phylocl-align":
        from phylocl import __version__

        return __version__
    exe = shutil.which(EXECUTABLE[tool])
    if exe is None:
        return None
    if tool == "blastp":
        done = subprocess.run([exe, "-version"], capture_output=True, text=True, check=False)
        return done.stdout.split(":", 1)[-1].strip().splitlines()[0] if done.stdout else "unknown"
    done = subprocess.run([exe, "version"], capture_output=True, text=True, check=False)
    return parse_version(tool, done.stdout + done.stderr)


def skip_reason(tool: str, alphabet: str) -> str | None:
    """Why ``tool`` cannot run on this data, or ``None``."""
    if tool.startswith("diamond") and alphabet == "dna":
        return "DIAMOND aligns proteins only (blastp/blastx); this dataset is DNA"
    if tool == "blastp" and alphabet == "dna":
        return "blastp aligns proteins; this dataset is DNA"
    if shutil.which(EXECUTABLE[tool]) is None:
        return f"{EXECUTABLE[tool]} is not installed (not on PATH)"
    return None


def aligner_commands(tool: str, fasta: Path, out: Path, work: Path, *, alphabet: str, threads: int,
                     n: int, sensitivity: float = 7.5, evalue: float = 10.0,
                     extra: list[str] = ()) -> list[list[str]]:
    """The command lines that search ``fasta`` against itself and write BLAST tabular hits to ``out``;
    ``extra`` arguments go at the end of the search command."""
    if tool == "mmseqs":
        return [["mmseqs", "easy-search", str(fasta), str(fasta), str(out), str(work / "tmp"),
                 "-s", str(sensitivity), "--max-seqs", str(n), "-e", str(evalue), "--threads", str(threads),
                 "--search-type", "3" if alphabet == "dna" else "1", "-v", "1", *extra]]
    if tool == "mmseqs-index":
        db = str(work / "db")
        return [["mmseqs", "createdb", str(fasta), db, "-v", "1"],
                ["mmseqs", "createindex", db, str(work / "tmp"), "--threads", str(threads), "-s", str(sensitivity),
                 "--search-type", "3" if alphabet == "dna" else "1", "-v", "1"],
                ["mmseqs", "easy-search", str(fasta), db, str(out), str(work / "tmp"),
                 "-s", str(sensitivity), "--max-seqs", str(n), "-e", str(evalue), "--threads", str(threads),
                 "--search-type", "3" if alphabet == "dna" else "1", "-v", "1", *extra]]
    if tool == "blastp":
        db = str(work / "blastdb")
        return [["makeblastdb", "-in", str(fasta), "-dbtype", "prot", "-out", db],
                ["blastp", "-query", str(fasta), "-db", db, "-out", str(out), "-outfmt", "6", "-evalue", str(evalue),
                 "-max_target_seqs", str(n), "-num_threads", str(threads), *extra]]
    if tool == "phylocl-align":
        return [[*PHYLOCL, "search", "--query", str(fasta), "--db", str(fasta), "-o", str(out), "--format",
                 "blast6", "-k", str(n), "--evalue", str(evalue), "--threads", str(threads), "--quiet", *extra]]
    if tool in ("diamond", "diamond-ultra"):
        if alphabet == "dna":
            raise ValueError("DIAMOND is protein-only")
        db = work / "db.dmnd"
        mode = "--ultra-sensitive" if tool == "diamond-ultra" else "--sensitive"
        return [["diamond", "makedb", "--in", str(fasta), "-d", str(db), "--threads", str(threads), "--quiet"],
                ["diamond", "blastp", "-q", str(fasta), "-d", str(db), "-o", str(out), mode,
                 "--max-target-seqs", str(n), "--evalue", str(evalue), "--threads", str(threads),
                 "--outfmt", "6", "--quiet", *extra]]
    raise ValueError(f"unknown aligner {tool!r}; choose from {ALIGNERS}")


def read_tool_hits(path: Path, ids, *, score: str = "bitscore") -> HitLists:
    """BLAST tabular hits (MMseqs2 / DIAMOND) of the set against itself, ranked by bit score or by -E-value."""
    if score == "bitscore":
        cols = dict(BLAST_TAB)
    elif score == "evalue":
        cols = {"query_col": 0, "target_col": 1, "score_col": EVALUE_COL, "higher_is_better": False}
    else:
        raise ValueError(f"score must be bitscore or evalue, got {score!r}")
    return read_hits_tsv(path, query_ids=ids, db_ids=ids, **cols)


def score_tool_hits(hits: HitLists, ids, families, groups, ks) -> dict:
    """:func:`score_hits` of the set against itself: self hits dropped by id, relevance by group (or family)."""
    rel = families if groups is None else groups
    return score_hits(hits, rel, rel, ks=ks, query_ids=ids, db_ids=ids,
                      report_labels=families if groups is not None else None)


def run_aligner(spec: str, ds, levels, args, work: Path) -> list[dict]:
    """Search once with aligner ``spec`` (``mmseqs``, ``mmseqs:-k 0`` ...), score at every level; one row per
    level."""
    start = time.perf_counter()
    tool, extra = split_tool(spec)
    ids = [f"s{i}" for i in range(len(ds))]  # plain ids: MMseqs2 shortens 'gi|1|gb|ACC|' headers to 'ACC'
    fasta = write_fasta(work / "set.fasta", ids, ds.sequences)
    out = work / f"{tool}.m8"
    commands = aligner_commands(tool, fasta, out, work, alphabet=ds.alphabet.name, threads=args.threads,
                                n=len(ds), sensitivity=args.sensitivity, evalue=args.evalue, extra=extra)
    t0 = time.perf_counter()
    steps = []
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}  # phylocl-align's embedding threads
    for cmd in commands:
        t1 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        steps.append(round(time.perf_counter() - t1, 2))
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"{shlex.join(cmd)} failed ({done.returncode}): {' | '.join(tail)}")
    search = time.perf_counter() - t0
    hits = read_tool_hits(out, ids, score=args.score)
    shown = " && ".join(shlex.join(c) for c in commands).replace(str(work), "WORK").replace(shlex.join(PHYLOCL),
                                                                                              "phylocl")
    head = {"tool": spec, "version": tool_version(tool), "command": shown, "score": args.score,
            "n_hits": int(len(hits.targets)), "search_seconds": round(search, 2), "step_seconds": steps}
    rows = [{"level": name, **head, **_figures(score_tool_hits(hits, ids, ds.families, groups, args.k), args.k)}
            for name, groups in levels]
    total = round(time.perf_counter() - start, 2)
    return [{**r, "total_seconds": total} for r in rows]


# ----------------------------------------------------------------------------- embedders
def run_embedder(spec: str, ds, levels, args) -> list[dict]:
    """Embed once, then index + search + score per level (``search_seconds`` of the first level)."""
    import torch

    from phylocl import __version__
    from phylocl.retrieval.evaluation import evaluate_embeddings
    from phylocl.workflows.embed_buffers import embed_all
    from phylocl.workflows.model_spec import resolve_model

    start = time.perf_counter()
    torch.set_num_threads(args.threads)
    embedder = resolve_model(spec, alphabet=ds.alphabet, device=args.device)
    x, _ = embed_all(zip(ds.ids, ds.sequences, ds.families), embedder, batch_size=args.batch_size)
    embed_seconds = time.perf_counter() - start
    info = embedder.model_info()
    rows = []
    for name, groups in levels:
        t0 = time.perf_counter()
        m = evaluate_embeddings(x, ds.families, ids=ds.ids, ks=args.k, group_labels=groups)
        search = time.perf_counter() - t0
        rows.append({"level": name, "tool": spec if spec.startswith("kmer:") else f"phylocl {info['name']}",
                     "version": __version__,
                     "command": f"phylocl evaluate --model {spec} --data {args.data}"
                                + (f" --group-column {name}" if groups is not None else ""),
                     "score": "cosine", "model": {k: info[k] for k in ("name", "fingerprint", "dim") if k in info},
                     "search_seconds": round(search, 2), "embed_seconds": round(embed_seconds, 2),
                     "total_seconds": round(embed_seconds + search, 2), **_figures(m, args.k)})
    return rows


def _figures(m: dict, ks) -> dict:
    names = ["top1", *(f"recall@{k}" for k in ks), "map_r", "auc1"]
    return {"n_queries": m["n_queries"], "n_singleton_queries": m["n_singleton_queries"],
            **{k: round(m[k], 4) for k in names}}


# ----------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="labelled dataset (folder, or FASTA with --labels)")
    p.add_argument("--labels", help="labels TSV for a FASTA --data")
    p.add_argument("--group-column", default="family", metavar="COL[,COL...]",
                   help="relevance level(s): family (default) and/or labels columns such as superfamily, "
                        "comma-separated; each tool searches once and is scored at every level")
    p.add_argument("--split", choices=["train", "val", "test"],
                   help="only the families of this split of a training run (see phylocl evaluate --split)")
    p.add_argument("--split-config", metavar="RUN", help="the run folder, its config.yaml or splits.json")
    p.add_argument("--tools", default="mmseqs,diamond,kmer:3", help="comma-separated (default %(default)s)")
    p.add_argument("--model", action="append", default=[], metavar="M", help="phylocl model spec (repeatable)")
    p.add_argument("--max-sequences", type=int, help="subsample whole families (groups) down to this many")
    p.add_argument("--seed", type=int, default=0, help="subsampling seed")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("-k", type=int, nargs="+", default=[1, 10, 50], help="recall@k cut-offs")
    p.add_argument("--score", choices=["bitscore", "evalue"], default="bitscore", help="aligner hit ranking")
    p.add_argument("--sensitivity", type=float, default=7.5, help="MMseqs2 -s (default 7.5)")
    p.add_argument("--evalue", type=float, default=10.0, help="aligner E-value cut-off (default 10)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--workdir", help="keep the aligners' files here (default: a temporary folder)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import compileall

    import phylocl  # its bytecode written now, as pip install does: no timed run compiles the package (~50 ms)

    compileall.compile_dir(str(Path(phylocl.__file__).parent), quiet=1)
    ds = read_dataset(args.data, labels=args.labels)
    names = [c.strip() for c in args.group_column.split(",") if c.strip()]
    missing = [c for c in names if c != "family" and c not in ds.metadata]
    if missing:
        raise SystemExit(f"no column {missing[0]!r} in the labels (have {sorted(ds.metadata)})")
    if args.split:
        from phylocl.workflows.evaluate import split_families_of

        model = args.model[0] if args.model else None
        ds = ds.select_families(set(split_families_of(args.split, ds, data=args.data, model=model,
                                                      split_config=args.split_config)) & set(ds.family_index))
    coarse = next((c for c in names if c != "family"), None)
    ds = subsample(ds, args.max_sequences, args.seed, coarse)
    levels = [(c, None if c == "family" else ds.metadata[c]) for c in names]
    common = {"dataset": Path(args.data).name, "split": args.split, "n_sequences": len(ds),
              "n_families": len(ds.family_index), "alphabet": ds.alphabet.name, "threads": args.threads,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
              "load_avg_1min": round(os.getloadavg()[0], 2)}  # other jobs on the machine slow the timings
    tools = [t.strip() for t in args.tools.split(",") if t.strip()] + [m for m in args.model]
    with tempfile.TemporaryDirectory(prefix="peers.") as tmp:
        for i, tool in enumerate(tools):
            base, _ = split_tool(tool)
            if base in ALIGNERS:
                reason = skip_reason(base, ds.alphabet.name)
                if reason:
                    print(f"skipping {tool}: {reason}", file=sys.stderr)
                    continue
                work = (Path(args.workdir) if args.workdir else Path(tmp)) / f"{i}-{base}"
                work.mkdir(parents=True, exist_ok=True)
                rows = run_aligner(tool, ds, levels, args, work)
            else:
                rows = run_embedder(tool, ds, levels, args)
            for row in rows:
                print(json.dumps({**common, **row}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
