"""Search at database scale: time and peak memory of ``phylocl embed`` / ``index`` / ``search`` against DIAMOND.

Input: one ``phylocl simulate`` folder (``famNNNNN.fasta`` files, ``members`` sequences each). For each database
size ``N`` the first ``N / members`` families are the database, minus the queries: the first member of each of
the first ``--queries`` families (the same query set at every size, each with ``members - 1`` relatives in the
database). Every step runs as its own process under ``/usr/bin/time`` (wall seconds, peak RSS):

- ``phylocl embed`` of the database, ``phylocl index --kind K`` for each kind (``sparse``: ``phylocl index --fasta``,
  no embed step), ``phylocl search --index`` of the queries (``-k 10``; query embedding, model loading and start-up included, so per-query seconds = wall / Q);
- ``diamond makedb`` and ``diamond blastp --sensitive -k 10`` on the same queries (``--diamond``);
- MMseqs2 with a prepared index (``--mmseqs``): ``mmseqs createdb`` and ``mmseqs createindex`` once (timed as its
  build), then ``mmseqs easy-search --max-seqs 10`` of the queries against the indexed database (a fresh temporary
  folder per run), the peer for interactive searches: DIAMOND pays for its seed index in every run, MMseqs2 does
  not;
- recall@10 of each approximate index against the exact (flat or sparse) index's hits, and the fraction of each tool's top 10
  that are true family members (precision@10 of the relatives);
- an embeddings file already in ``--work`` is reused (delete it to time ``phylocl embed`` again);
- ``--query-counts 1 10 100``: the same searches (every index built, DIAMOND) for the first ``c`` queries only, since
  per-query cost depends on how many queries share one run (DIAMOND scans its database once per run);
- ``--word-budget 0.1 0.2``: each ``--query-counts`` search of a sparse index again with ``search --word-budget F``
  (a non-exact candidate stage), right after the exact one, with its top-10 recall against the exact run's hits.

Prints one JSON object per step. Example (the commands of docs/performance.md are the issue-17 runs)::

    phylocl simulate --families 5000 --members 20 --length 300 --indel-rate 0.05 --seed 17 -o sim
    python benchmarks/scale.py --sim sim --work work --sizes 10000 100000 --model kmer:3:1024=flat \\
        --model kmer:3=sparse --model default-protein=sparse --diamond --mmseqs --threads 2 \\
        --query-counts 1 10 100 500
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], *, threads: int, log: Path, repo: Path = REPO) -> dict:
    """Run ``cmd`` under ``/usr/bin/time`` (phylocl from ``repo``); ``{"seconds", "peak_rss_mb", "rc"}``."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(repo)}
    stats = log.with_suffix(".time")
    with open(log, "w") as out:
        rc = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", str(stats), *cmd], stdout=out, cwd=repo,
                            stderr=subprocess.STDOUT, env=env).returncode  # cwd: `python -c` imports from it first
    sec, kb = stats.read_text().split()[-2:]
    return {"seconds": float(sec), "peak_rss_mb": round(int(kb) / 1024), "rc": rc}


def compiled(repo: Path) -> None:
    """Write the bytecode of ``repo``'s package now, as ``pip install`` does: a run under
    ``PYTHONDONTWRITEBYTECODE`` (or from a read-only checkout) would otherwise compile every phylocl module in every
    timed run (~50 ms of a one-query search)."""
    import compileall

    compileall.compile_dir(str(repo / "phylocl"), quiet=1)


def phylocl(*args: str) -> list[str]:
    return [sys.executable, "-c", "from phylocl.cli import main; raise SystemExit(main())", *args]


def search_cmd(queries: Path, index: Path, out: Path, *extra: str, k: int = 10) -> list[str]:
    """``phylocl search --index`` of ``queries``, ``k`` hits each."""
    return phylocl("search", "--query", str(queries), "--index", str(index), "-k", str(k), "-o", str(out), "--quiet",
                   *extra)


def base_cmd(cmd: list[str]) -> list[str]:
    """``cmd`` writing its hits beside, to ``*.base.tsv`` (the --compare-repo run of the same search)."""
    out = list(cmd)
    at = out.index("-o") + 1
    out[at] = str(Path(out[at]).with_suffix(".base.tsv"))
    return out


def blastp_cmd(queries: Path, dmnd: Path, out: Path, threads: int) -> list[str]:
    """``diamond blastp --sensitive`` of ``queries``, 10 hits each."""
    return ["diamond", "blastp", "--sensitive", "-q", str(queries), "-d", str(dmnd), "-k", "10", "-o", str(out),
            "--threads", str(threads), "--quiet"]


def mmseqs_cmd(queries: Path, mdb: Path, out: Path, tmp: Path, threads: int) -> list[str]:
    """``mmseqs easy-search --max-seqs 10`` of ``queries`` against the indexed database ``mdb`` (hits in ``out``)."""
    return ["mmseqs", "easy-search", str(queries), str(mdb), str(out), str(tmp), "--max-seqs", "10",
            "--threads", str(threads), "-v", "1"]


def read_fasta(path: Path):
    name, seq = None, []
    for line in open(path):
        if line.startswith(">"):
            if name:
                yield name, "".join(seq)
            name, seq = line[1:].split()[0], []
        else:
            seq.append(line.strip())
    if name:
        yield name, "".join(seq)


def prepare(sims: list[Path], work: Path, n: int, members: int, queries: int) -> tuple[Path, Path, dict]:
    """Write ``db-N.fasta`` and ``queries.fasta``; returns them and ``{sequence id: family}``.

    Families are taken from the simulation folders in order; ids of the second folder on get a ``s<i>_`` prefix.
    """
    files = [(i, path) for i, sim in enumerate(sims) for path in sorted(sim.glob("fam*.fasta"))][: n // members]
    if len(files) < n // members:
        raise SystemExit(f"{n} sequences need {n // members} families; the simulations hold {len(files)}")
    db, qf = work / f"db-{n}.fasta", work / "queries.fasta"
    family = {}
    with open(db, "w") as d, open(qf, "w") as q:
        for f, (i, path) in enumerate(files):
            for m, (name, seq) in enumerate(read_fasta(path)):
                name = f"s{i}_{name}" if i else name
                family[name] = f"{i}/{path.stem}"
                (q if m == 0 and f < queries else d).write(f">{name}\n{seq}\n")
    return db, qf, family


def hits(path: Path, k: int = 10) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in open(path):
        parts = line.rstrip("\n").split("\t")
        if parts[0] == "query" or len(parts) < 2:
            continue
        lst = out.setdefault(parts[0], [])
        if len(lst) < k and parts[1] not in lst:
            lst.append(parts[1])
    return out


def overlap(a: dict, b: dict, k: int = 10) -> float:
    """Mean over ``b``'s queries of |a top-k & b top-k| / |b top-k| (recall of ``a`` against ``b``)."""
    vals = [len(set(a.get(q, [])[:k]) & set(t[:k])) / len(t[:k]) for q, t in b.items() if t]
    return round(sum(vals) / len(vals), 4) if vals else 0.0


def family_precision(h: dict, family: dict, n_queries: int, k: int = 10) -> float:
    vals = [sum(family.get(t) == family.get(q) for t in ts[:k]) / k for q, ts in h.items()]
    return round(sum(vals) / n_queries, 4)


def model_specs(args, n: int) -> list[tuple[str, list[str]]]:
    """``(model, kinds)`` of every ``--model M[@MAXSIZE][=KIND,KIND]`` that applies to size ``n``."""
    out = []
    for spec in args.model or ["kmer:3:512"]:
        head, _, kinds = spec.partition("=")
        model, _, most = head.partition("@")
        if not most or n <= int(most):
            out.append((model, (kinds or args.kinds).split(",")))
    return out


def run_phylocl(args, n: int, db: Path, qf: Path, family: dict, model: str, kinds: list[str]) -> None:
    tag = model.replace(":", "_")
    emb = args.work / f"db-{n}-{tag}.npz"
    extra = ["--precision", args.precision] if not model.startswith("kmer") else []
    dense = any(kind != "sparse" for kind in kinds)  # the FAISS kinds index an embeddings file
    if dense and emb.exists():
        print(json.dumps({"size": n, "tool": f"phylocl {model}", "step": "embed", "reused": str(emb)}), flush=True)
    elif dense:
        r = timed(phylocl("embed", "--fasta", str(db), "--model", model, "-o", str(emb), "--quiet", *extra),
                  threads=args.threads, log=args.work / f"embed-{n}-{tag}.log")
        print(json.dumps({"size": n, "tool": f"phylocl {model}", "step": "embed", **r}), flush=True)
    exact = None
    for kind in kinds:
        if n > args.max_hnsw and kind == "hnsw":
            continue
        idx = args.work / f"db-{n}-{tag}-{kind}.index"
        windows = [] if args.windows is None else ["--windows", str(args.windows)]  # None: the model's default
        source = (["--fasta", str(db), "--model", model, "--quiet", *windows] if kind == "sparse"
                  else ["--embeddings", str(emb)])
        r = timed(phylocl("index", *source, "-o", str(idx), "--kind", kind, "--threads", str(args.threads)),
                  threads=args.threads, log=args.work / f"index-{n}-{tag}-{kind}.log")
        print(json.dumps({"size": n, "tool": f"phylocl {model}", "step": "index", "kind": kind, **r}), flush=True)
        out = args.work / f"hits-{n}-{tag}-{kind}.tsv"
        r = timed(search_cmd(qf, idx, out, *extra), threads=args.threads,
                  log=args.work / f"search-{n}-{tag}-{kind}.log")
        h = hits(out) if r["rc"] == 0 else {}
        exact = h if kind in ("flat", "sparse") else exact  # both exact
        print(json.dumps({"size": n, "tool": f"phylocl {model}", "step": "search", "kind": kind, **r,
                          "queries": args.queries, "seconds_per_query": round(r["seconds"] / args.queries, 4),
                          "recall@10_vs_exact": overlap(h, exact) if exact is not None else None,
                          "family_precision@10": family_precision(h, family, args.queries)}), flush=True)


def whole_sparse(idx: Path) -> bool:
    """Whether bundle ``idx`` is a sparse index, of whole rows or windows (the kinds a word budget applies to)."""
    return json.loads((idx / "meta.json").read_text()).get("kind") in ("sparse", "sparse-windows")


def first_queries(qf: Path, count: int) -> Path:
    """``queries-<count>.fasta``: the first ``count`` records of ``qf``."""
    out = qf.with_name(f"queries-{count}.fasta")
    with open(out, "w") as f:
        for _, (name, seq) in zip(range(count), read_fasta(qf)):
            f.write(f">{name}\n{seq}\n")
    return out


def run_counts(args, n: int, qf: Path, family: dict) -> None:
    """Per-query seconds of every phylocl index built for size ``n`` (each model and kind) and of DIAMOND, for
    runs of ``c`` queries, one after the other for each ``c``."""
    indexes = [(model, kind, args.work / f"db-{n}-{model.replace(':', '_')}-{kind}.index")
               for model, kinds in model_specs(args, n) for kind in kinds]
    indexes = [(model, kind, idx) for model, kind, idx in indexes if idx.is_dir()]
    for c in args.query_counts:
        sub = first_queries(qf, c)
        runs = [r for model, kind, idx in indexes for r in (
            (f"phylocl {model}", kind, search_cmd(sub, idx, args.work / f"hits-{n}-{idx.stem}-{c}.tsv",
                                                  k=args.search_k)),
            *[(f"phylocl {model} wb{b:g}", kind,
               search_cmd(sub, idx, args.work / f"hits-{n}-{idx.stem}-{c}-wb{b:g}.tsv", "--word-budget", str(b),
                          k=args.search_k)) for b in (args.word_budget if whole_sparse(idx) else [])])]
        if args.compare_repo:  # each phylocl search again with another checkout's code, right after it
            runs = [r for run in runs for r in (run, (f"{run[0]}@{args.compare_repo.name}", run[1], base_cmd(run[2])))]
        if args.diamond:
            runs.append(("diamond --sensitive", None, blastp_cmd(sub, args.work / f"db-{n}.dmnd",
                                                                 args.work / f"hits-{n}-diamond-{c}.tsv",
                                                                 args.threads)))
        if args.mmseqs:
            runs.append(("mmseqs indexed", None, mmseqs_cmd(sub, args.work / f"db-{n}.mmseqs",
                                                            args.work / f"hits-{n}-mmseqs-{c}.tsv",
                                                            args.work / f"tmp-mmseqs-{n}-{c}", args.threads)))
        exact: dict = {}  # hits of each exact phylocl search, for the recall of its word-budget runs
        for tool, kind, cmd in runs:
            tag = f"{'-'.join(tool.split()[1:]).replace(':', '_')}-{kind}" if kind else tool.split()[0]
            if tool.startswith("mmseqs"):
                shutil.rmtree(cmd[5], ignore_errors=True)  # a fresh temporary folder: nothing reused
            load = os.getloadavg()[0]
            repo = args.compare_repo if "@" in tool else REPO
            tag += "-base" if "@" in tool else ""
            r = timed(cmd, threads=args.threads, log=args.work / f"count-{n}-{c}-{tag}.log", repo=repo)
            out = Path(cmd[cmd.index("-o") + 1]) if "-o" in cmd else Path(cmd[4])
            h = hits(out) if r["rc"] == 0 else {}
            budget = tool.split()[-1] if " wb" in tool else None
            if tool.startswith("phylocl") and budget is None and "@" not in tool:
                exact[(tool, kind)] = h
            reference = exact.get((tool.rsplit(" ", 1)[0], kind)) if budget else None
            print(json.dumps({"size": n, "tool": tool, "step": "search", "kind": kind, "queries": c,
                              "k": args.search_k if tool.startswith("phylocl") else 10, **r,
                              "load_before": round(load, 2), "seconds_per_query": round(r["seconds"] / c, 4),
                              "family_precision@10": family_precision(h, family, c) if r["rc"] == 0 else None,
                              **({"recall@10_vs_exact": overlap(h, reference)} if reference else {})}), flush=True)


def run_diamond(args, n: int, db: Path, qf: Path, family: dict) -> None:
    dmnd = args.work / f"db-{n}.dmnd"
    r = timed(["diamond", "makedb", "--in", str(db), "-d", str(dmnd), "--threads", str(args.threads)],
              threads=args.threads, log=args.work / f"makedb-{n}.log")
    print(json.dumps({"size": n, "tool": "diamond --sensitive", "step": "makedb", **r}), flush=True)
    out = args.work / f"hits-{n}-diamond.tsv"
    r = timed(blastp_cmd(qf, dmnd, out, args.threads), threads=args.threads, log=args.work / f"blastp-{n}.log")
    h = hits(out) if r["rc"] == 0 else {}
    print(json.dumps({"size": n, "tool": "diamond --sensitive", "step": "search", **r, "queries": args.queries,
                      "seconds_per_query": round(r["seconds"] / args.queries, 4),
                      "family_precision@10": family_precision(h, family, args.queries)}), flush=True)


def run_mmseqs(args, n: int, db: Path, qf: Path, family: dict) -> None:
    """``mmseqs createdb`` + ``createindex`` of the database (one build step), then all queries in one run."""
    mdb, tmp = args.work / f"db-{n}.mmseqs", args.work / f"tmp-mmseqs-{n}"
    shutil.rmtree(tmp, ignore_errors=True)
    r1 = timed(["mmseqs", "createdb", str(db), str(mdb), "-v", "1"], threads=args.threads,
               log=args.work / f"createdb-{n}.log")
    r2 = timed(["mmseqs", "createindex", str(mdb), str(tmp), "--threads", str(args.threads), "-v", "1"],
               threads=args.threads, log=args.work / f"createindex-{n}.log")
    size = sum(p.stat().st_size for p in args.work.glob(f"db-{n}.mmseqs*") if p.is_file())
    print(json.dumps({"size": n, "tool": "mmseqs indexed", "step": "createdb+createindex",
                      "seconds": round(r1["seconds"] + r2["seconds"], 2),
                      "peak_rss_mb": max(r1["peak_rss_mb"], r2["peak_rss_mb"]), "rc": r1["rc"] or r2["rc"],
                      "disk_mb": round(size / 2**20)}), flush=True)
    out = args.work / f"hits-{n}-mmseqs.tsv"
    shutil.rmtree(tmp, ignore_errors=True)
    r = timed(mmseqs_cmd(qf, mdb, out, tmp, args.threads), threads=args.threads, log=args.work / f"msearch-{n}.log")
    h = hits(out) if r["rc"] == 0 else {}
    print(json.dumps({"size": n, "tool": "mmseqs indexed", "step": "search", **r, "queries": args.queries,
                      "seconds_per_query": round(r["seconds"] / args.queries, 4),
                      "family_precision@10": family_precision(h, family, args.queries)}), flush=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sim", type=Path, nargs="+", required=True, help="phylocl simulate folder(s), used in order")
    p.add_argument("--work", type=Path, required=True, help="folder for FASTA, embeddings, indexes, hits, logs")
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--members", type=int, default=20, help="sequences per simulated family")
    p.add_argument("--queries", type=int, default=500, help="query families (one query each)")
    p.add_argument("--model", action="append", default=[], metavar="M[@MAXSIZE][=KINDS]",
                   help="phylocl model, optionally only up to a database size and with its own index kinds, e.g. "
                        "default-protein@100000=sparse")
    p.add_argument("--kinds", default="flat,ivf,hnsw,ivfpq",
                   help="index kinds (flat or sparse first: the exact reference for recall); sparse is built "
                        "from the FASTA (full k-mer profiles, k-mer profile encoders)")
    p.add_argument("--max-hnsw", type=int, default=10**6, help="skip hnsw above this size (slow build)")
    p.add_argument("--precision", default="fp32", help="--precision of the learned encoders")
    p.add_argument("--diamond", action="store_true", help="also run DIAMOND --sensitive")
    p.add_argument("--mmseqs", action="store_true", help="also run MMseqs2 easy-search against a createindex'd db")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--query-counts", type=int, nargs="*", default=[],
                   help="also time runs of only the first C queries (every index built for the size, and DIAMOND)")
    p.add_argument("--search-k", type=int, default=10,
                   help="-k of the --query-counts phylocl searches (DIAMOND and MMseqs2 keep 10)")
    p.add_argument("--compare-repo", type=Path, default=None,
                   help="also time every --query-counts phylocl search with the code of this checkout (e.g. main)")
    p.add_argument("--word-budget", type=float, nargs="*", default=[], metavar="F",
                   help="also run every --query-counts search of a sparse index (whole rows or windows) with "
                        "search --word-budget F")
    p.add_argument("--windows", type=int, metavar="W",
                   help="--windows of the sparse indexes (phylocl index --fasta); default: the model's own "
                        "(default-protein: 200), 0: one row per sequence (the tables of docs/performance.md "
                        "before windows became default-protein's default)")
    p.add_argument("--skip-build", action="store_true",
                   help="only the --query-counts runs, on the embeddings/indexes/databases already in --work")
    args = p.parse_args(argv)
    # the commands run with the repository as working directory (timed): every path they get must be absolute
    args.work, args.sim = args.work.resolve(), [s.resolve() for s in args.sim]
    if args.compare_repo is not None:
        args.compare_repo = args.compare_repo.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    for repo in (REPO, args.compare_repo):
        if repo is not None:
            compiled(repo)
    for n in sorted(args.sizes):
        db, qf, family = prepare(args.sim, args.work, n, args.members, args.queries)
        if args.skip_build:
            if args.mmseqs and not (args.work / f"db-{n}.mmseqs.idx").exists():
                run_mmseqs(args, n, db, qf, family)
            run_counts(args, n, qf, family)
            continue
        for model, kinds in model_specs(args, n):
            run_phylocl(args, n, db, qf, family, model, kinds)
        if args.diamond:
            run_diamond(args, n, db, qf, family)
        if args.mmseqs:
            run_mmseqs(args, n, db, qf, family)
        run_counts(args, n, qf, family)


if __name__ == "__main__":
    main()
