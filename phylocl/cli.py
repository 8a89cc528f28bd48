"""The ``phylocl`` command line: argument parsing only; every subcommand calls the library.

User errors (bad paths, bad FASTA, bad config values) end with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import sys
import threading

from phylocl.errors import InputError, Terminated

__all__ = ["main", "build_parser"]


def _cmd_models(args: argparse.Namespace) -> int:
    from phylocl.models.registry import describe_model, list_models

    if args.pretrained:
        from phylocl.workflows.model_spec import default_model, resolve_model, shipped_models

        info = {n: resolve_model(n, device="cpu").model.model_info() for n in shipped_models()}
        chosen = {a: default_model(a) for a in ("protein", "dna")}
        if args.json:
            print(json.dumps({"pretrained": info, "without_model": {a: c.record() for a, c in chosen.items()}},
                             indent=2))
        else:
            for n, m in info.items():
                print(f"{n}\t{m['alphabet']}\t{m['backbone']}\t{m['parameters']:,} parameters\t{m['fingerprint']}")
            for a, c in chosen.items():
                print(f"without --model, {a} input uses {c.describe()}")
        return 0
    names = list_models()
    if args.json:
        print(json.dumps({n: describe_model(n) for n in names}, indent=2))
    else:
        for n in names:
            print(n)
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    from phylocl.data.layouts import read_dataset
    from phylocl.data.inspect import format_summary

    summary = read_dataset(args.path, labels=args.labels, alphabet=args.alphabet, strict=args.strict).summary()
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from phylocl.data.simulator.simulate import SimulationParams, iter_families, write_simulation

    try:
        params = SimulationParams(families=args.families, members=args.members, length=args.length,
                                  alphabet=args.alphabet, seed=args.seed, rate=args.rate,
                                  indel_rate=args.indel_rate, kappa=args.kappa, gamma_shape=args.gamma_shape,
                                  indel_length=args.indel_length, indel_mean=args.indel_mean,
                                  divergence=tuple(args.divergence) if args.divergence else None)
    except ValueError as err:
        raise InputError(str(err)) from None
    out = write_simulation(iter_families(params), args.output, params=params, overwrite=args.overwrite)
    print(f"wrote {params.families} families x {params.members} {params.alphabet} sequences to {out}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from phylocl.workflows.train import train

    overrides = (args.set or []) + (["data.strict=true"] if args.strict else [])
    result = train(args.config, args.out, overrides=overrides, data=args.data, resume=args.resume,
                   progress=not args.quiet)
    if result.note:
        print(f"phylocl train: note: {result.note}", file=sys.stderr)
        return 0
    if result.metrics:
        figures = ", ".join(f"{k}={v:.3f}" for k, v in result.metrics.get("val", {}).items() if k != "n_queries")
        print(f"exported {result.encoder_path} after {result.metrics['steps']} steps"
              + (f" (validation: {figures})" if figures else ""))
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from phylocl.workflows.compare import compare

    r = compare(args.config, args.out, overrides=args.set or [], data=args.data, progress=not args.quiet)
    status = [row["status"] for row in r.rows]
    print(f"{status.count('ok')}/{len(status)} cells finished ({status.count('failed')} failed, "
          f"{status.count('skipped')} skipped); results in {r.out_dir / 'results.csv'}, summary in "
          f"{r.out_dir / 'summary.md'}")
    return 0 if "failed" not in status else 1


def _say_default(command: str, model: dict) -> None:
    """The stderr note of a command run without ``--model``: which method was used and why."""
    choice = model.get("default_choice")
    if choice:
        ranking = "; ".join(f"{s} {v:.3f}" for s, v in choice["ranking"])
        print(f"phylocl {command}: note: no --model given: using {choice['spec']}, the best measured "
              f"{choice['alphabet']} method on the dev split (mean AUC1: {ranking}; `phylocl models --pretrained`)",
              file=sys.stderr)


def _cmd_embed(args: argparse.Namespace) -> int:
    from phylocl.workflows.embed import embed

    _refuse_stdout(args.output, "an embeddings file (.npz, binary, resumable shards beside it)")
    r = embed(out=args.output, model=args.model, fasta=args.fasta, data=args.data, labels=args.labels,
              batch_size=args.batch_size, device=args.device, precision=args.precision,
              overlap=args.window_overlap, shard_size=args.shard_size, devices=args.devices,
              num_nodes=args.num_nodes, progress=not args.quiet, alphabet=args.alphabet, strict=args.strict)
    if r.rank != 0:
        return 0  # rank 0 merged the shards and reports
    _print_notes("embed", r.notes)
    _say_default("embed", r.model)
    print(f"wrote {r.n:,} embeddings (dim {r.dim}, model {r.model['name']}"
          + (", with family labels" if r.labelled else "") + f") to {r.path} in {r.seconds:.1f} s")
    return 0


def _refuse_stdout(output: str, what: str) -> None:
    """``-o -`` means standard output to DIAMOND/MMseqs2 users; ``embed`` and ``index`` write files, so say so."""
    if str(output) == "-":
        raise InputError(f"-o -: this command writes {what}, which cannot go to standard output; give a path")


def _refuse_unused(args: argparse.Namespace, what: str, names: tuple[str, ...]) -> None:
    """One line naming the options among ``names`` that were given but that ``what`` does not use (they were
    silently ignored)."""
    defaults = {"type": "auto"}
    given = [n for n in names if getattr(args, n) not in (None, defaults.get(n))]
    if given:
        flags = ", ".join("--kind" if n == "type" else "-o" if n == "output" else "--" + n.replace("_", "-")
                          for n in given)
        raise InputError(f"{what} does not use {flags}; drop {'it' if len(given) == 1 else 'them'}")


_FAISS_OPTIONS = ("memory_gb", "nlist", "nprobe", "ef_search")


def _cmd_index(args: argparse.Namespace) -> int:
    if args.verify is not None:
        from phylocl.retrieval.index_io import verify_bundle

        _refuse_unused(args, "--verify (it checks the bundle INDEX only)",
                       ("output", "type", *_FAISS_OPTIONS, "model", "windows"))

        print(verify_bundle(args.verify))
        return 0
    if args.output is None:
        raise InputError("-o/--output is required (the index folder to write)")
    _refuse_stdout(args.output, "an index folder")
    if args.threads is not None and args.threads < 1:
        raise InputError(f"--threads must be >= 1, got {args.threads}")
    if args.fasta is not None:
        from phylocl.workflows.sparse_index_command import build_sparse_index_file

        if args.type not in ("auto", "sparse"):
            raise InputError(f"--fasta builds a sparse index (--kind sparse); for a {args.type} index run "
                             "`phylocl embed` and `phylocl index --embeddings`")
        _refuse_unused(args, "--fasta (a sparse index, exact)", _FAISS_OPTIONS)
        r = build_sparse_index_file(fasta=args.fasta, out=args.output, model=args.model, batch_size=args.batch_size,
                                    device=args.device, precision=args.precision, overlap=args.window_overlap,
                                    progress=not args.quiet, alphabet=args.alphabet, strict=args.strict,
                                    windows=args.windows, threads=args.threads)
        _say_default("index", r.model)
    else:
        from phylocl.workflows.index_command import build_index_file

        if args.windows not in (None, 0):  # 0 (one row per sequence) is what an embeddings file holds anyway
            raise InputError("--windows needs --fasta: windows are indexed from the sequences into a sparse index; "
                             "an index over an embeddings file holds one row per sequence")

        if args.type == "sparse":
            raise InputError("a sparse index is built from the sequences: use --fasta DB.fasta (and --model)")
        _refuse_unused(args, "--embeddings (the file names the model of its rows)", ("model",))
        if args.memory_gb is not None and not (math.isfinite(args.memory_gb) and args.memory_gb > 0):
            raise InputError(f"--memory-gb must be a positive number of gigabytes, got {args.memory_gb}")
        budget = None if args.memory_gb is None else int(args.memory_gb * 2**30)
        r = build_index_file(embeddings=args.embeddings, out=args.output, kind=args.type, seed=args.seed,
                             threads=args.threads, memory_budget=budget, nlist=args.nlist, nprobe=args.nprobe,
                             ef_search=args.ef_search)
    _print_notes("index", r.notes)
    params = ", ".join(f"{k}={v}" for k, v in sorted(r.params.items()))
    print(f"wrote index {r.path}: {r.kind}" + (f" ({params})" if params else "")
          + f", {r.n:,} {'sequences' if r.kind == 'sparse-windows' else 'vectors'} of dim {r.dim}, model "
          f"{r.model.get('name')}, {r.seconds:.1f} s")
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    from phylocl.workflows.search import search

    to_stdout = args.output == "-"
    r = search(query=args.query, out=args.output, model=args.model, db=args.db, index=args.index, k=args.k,
               batch_size=args.batch_size, device=args.device, precision=args.precision,
               overlap=args.window_overlap, progress=not args.quiet, alphabet=args.alphabet, strict=args.strict,
               align=not args.no_align, candidates=args.candidates, evalue=args.evalue, matrix=args.matrix,
               gap_open=args.gap_open, gap_extend=args.gap_extend, out_format=args.format, threads=args.threads,
               filter_pvalue=args.filter_pvalue, windows=args.windows, word_budget=args.word_budget,
               strand=args.strand, self_hits=args.self_hits, sensitivity=args.sensitivity)
    _print_notes("search", r.notes)
    _say_default("search", r.model)
    how = (f"aligned ({r.scoring['matrix']} {r.scoring['gap_open']}/{r.scoring['gap_extend']}, "
           f"{r.candidates} candidates{', both strands' if r.strand == 'both' else ''})" if r.aligned
           else "embedding only" + (", both strands" if r.strand == "both" else ""))
    if r.word_budget is not None and r.word_budget < 1:
        how += f", word budget {r.word_budget:g} (not exact)"
    if r.sensitivity is not None:
        how += f", sensitivity {r.sensitivity}"
    print(f"wrote {r.n_hits:,} hits of {r.n_queries:,} queries against {r.db_size:,} sequences "
          f"(model {r.model['name']}, {how}) to {'stdout' if to_stdout else r.path} in {r.seconds:.1f} s",
          file=sys.stderr if to_stdout else sys.stdout)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from phylocl.workflows.evaluate import evaluate, format_report

    result = evaluate(data=args.data, labels=args.labels, model=args.model, db_extra=args.db_extra,
                      group_column=args.group_column, ks=args.k, per_family=args.per_family,
                      split=args.split, split_config=args.split_config, batch_size=args.batch_size,
                      device=args.device, precision=args.precision, overlap=args.window_overlap,
                      progress=not args.quiet, strict=args.strict, align=args.align,
                      candidates=args.candidates, evalue=args.evalue,
                      matrix=args.matrix, gap_open=args.gap_open, gap_extend=args.gap_extend, threads=args.threads,
                      filter_pvalue=args.filter_pvalue, windows=args.windows, strand=args.strand,
                      sensitivity=args.sensitivity)
    _say_default("evaluate", result["model"])
    _print_notes("evaluate", result["notes"])
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k not in ("per_family", "notes")}))
    else:
        print(format_report(result))
    return 0


def _cmd_diagnose(args: argparse.Namespace) -> int:
    from phylocl.workflows.diagnose import diagnose, format_diagnosis

    result = diagnose(model=args.model, data=args.data, labels=args.labels, out_dir=args.output,
                      batch_size=args.batch_size, device=args.device, precision=args.precision,
                      overlap=args.window_overlap, max_sequences=args.max_sequences, seed=args.seed,
                      progress=not args.quiet)
    _say_default("diagnose", result["model"])
    print(json.dumps(result) if args.json else format_diagnosis(result))
    if args.output and not args.json:
        print(f"wrote diagnosis.json and plots to {args.output}")
    return 0


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="M",
                   help="trained encoder (file or `phylocl train` folder), kmer:K (k-mer baseline) or a shipped "
                        "model name; default: the best measured method for the input's alphabet (`phylocl models "
                        "--pretrained` says which)")
    p.add_argument("--batch-size", type=int, default=64, metavar="N",
                   help="sequences per model call (default %(default)s)")
    p.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when available, else cpu")
    p.add_argument("--precision", choices=["fp32", "bf16", "int8"], default="fp32",
                   help="encoder arithmetic: fp32 (default), bf16 autocast (1.6-1.9x faster on a CPU with "
                        "AVX-512 BF16, slower on one without) or int8 linear layers (CPU; see docs/performance.md); "
                        "ignored by kmer:K")
    p.add_argument("--window-overlap", type=float, metavar="F",
                   help="fraction of a window shared by consecutive windows of a sequence longer than the "
                        "encoder's max_len (default 0.5; 0 embeds each residue once; ignored by kmer:K)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _print_notes(command: str, notes) -> None:
    for note in notes:
        print(f"phylocl {command}: note: {note}", file=sys.stderr)


def _add_reading_options(p: argparse.ArgumentParser, *, alphabet: bool = True, aligns: bool = False) -> None:
    """``--strict`` (and ``--alphabet``) for every command that reads sequences (``aligns``: one whose alignment
    stage keeps DNA codes)."""
    if alphabet:
        p.add_argument("--alphabet", choices=["auto", "protein", "dna"], default="auto",
                       help="alphabet of the input sequences (default: detected from the first 256 records)")
    p.add_argument("--strict", action="store_true",
                   help="refuse internal stops (*), rare (U, O) and ambiguous letters (B Z J; IUPAC codes in DNA) "
                        "instead of reading them as the unknown token X/N" + (
                            " (the alignment stage scores DNA codes as blastn does)" if aligns else ""))


def _add_run_options(p: argparse.ArgumentParser, *, example: str) -> None:
    """``--data`` and ``--set``, shared by ``train`` and ``compare``."""
    p.add_argument("--data", nargs="+", metavar="PATH", help="input dataset(s), replacing the config's data.path")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help=f"override a config value, e.g. {example} (repeatable)")


def _add_models(sub) -> None:
    p = sub.add_parser("models", help="list the registered encoder configurations (--pretrained: shipped encoders)")
    p.add_argument("--json", action="store_true", help="print each config as JSON")
    p.add_argument("--pretrained", action="store_true",
                   help="list the pretrained encoders shipped with phylocl and what is used when --model is omitted")
    p.set_defaults(func=_cmd_models)


def _add_inspect(sub) -> None:
    p = sub.add_parser("inspect", help="read a dataset and summarise it (families, sequences, lengths)")
    p.add_argument("path", help="dataset folder, FASTA file (with --labels), OrthoFinder results, "
                                "or a folder of FASTA files, one per family")
    p.add_argument("--labels", help="labels TSV (sequence_id, family_id, ...) for a FASTA file")
    _add_reading_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_inspect)


def _add_simulate(sub) -> None:
    p = sub.add_parser("simulate", help="write synthetic ortholog families evolved along random trees",
                       description="Synthetic ortholog families: a random root sequence per family evolved down a "
                                   "random Yule tree (BLOSUM62-derived substitutions for protein, K80 for DNA, "
                                   "optional rate heterogeneity and indels). Writes <family>.fasta, trees/ and "
                                   "simulation.json; families are written as they are made, and sizes that cannot "
                                   "fit in memory or on disk are refused with the estimate.")
    p.add_argument("--families", type=int, required=True, metavar="N", help="number of families (>= 1)")
    p.add_argument("--members", type=int, required=True, metavar="M", help="sequences per family (>= 2)")
    p.add_argument("--length", type=int, required=True, metavar="L", help="root sequence length in residues (>= 1)")
    p.add_argument("--alphabet", choices=["protein", "dna"], default="protein",
                   help="protein (BLOSUM62-derived substitutions) or dna (K80); default %(default)s")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    p.add_argument("--seed", type=int, default=0, help="random seed, an integer >= 0 (default %(default)s)")
    p.add_argument("--rate", type=float, default=0.5,
                   help="root-to-leaf substitutions per site (default %(default)s)")
    p.add_argument("--indel-rate", type=float, default=0.0,
                   help="insertion/deletion events per site per substitution unit (default %(default)s: none)")
    p.add_argument("--indel-length", choices=["geometric", "zipf"], default="geometric",
                   help="indel length distribution (default %(default)s)")
    p.add_argument("--indel-mean", type=float, default=2.0,
                   help="mean indel length in residues, between 1 and --length (default %(default)s)")
    p.add_argument("--gamma-shape", type=float, default=None,
                   help="discrete-gamma shape of rate heterogeneity across sites (default: equal rates)")
    p.add_argument("--divergence", type=float, nargs=2, metavar=("MIN", "MAX"),
                   help="draw each family's tree diameter (substitutions/site between its two most distant "
                        "leaves) log-uniformly in [MIN, MAX] instead of using --rate (default: off)")
    p.add_argument("--kappa", type=float, default=2.0,
                   help="DNA transition/transversion ratio, 1 = JC69 (default %(default)s; ignored for protein)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier simulation in the output folder")
    p.set_defaults(func=_cmd_simulate)


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train an encoder on ortholog families and export it")
    p.add_argument("--config", help="YAML training config (see configs/); default: built-in defaults")
    _add_run_options(p, example="--set optim.lr=3e-4 --set trainer.devices=2")
    p.add_argument("--out", required=True, help="output folder (the model: config.json + model.safetensors; config.yaml, "
                                                  "metrics.json, logs/)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_reading_options(p, alphabet=False)  # the alphabet is the config's data.alphabet
    p.set_defaults(func=_cmd_train)


def _add_compare(sub) -> None:
    p = sub.add_parser("compare", help="InfoNCE vs FlatNCE (or any losses) across batch sizes and seeds at an equal "
                                       "pair budget; results.csv, summary.md, plots")
    p.add_argument("--config", required=True, help="compare config: training sections plus a compare: section "
                                                   "(see configs/compare-small-batch.yaml)")
    p.add_argument("--out", required=True, help="study folder; re-running continues it (finished cells are kept)")
    _add_run_options(p, example="--set compare.seeds=[0] --set data.max_len=96")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=_cmd_compare)


def _add_embed(sub) -> None:
    p = sub.add_parser("embed", help="embed sequences into an .npz file (float32 rows, ids, family labels)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--fasta", metavar="FILE", help="FASTA file, streamed (any size)")
    src.add_argument("--data", metavar="PATH", help="labelled dataset (folder, or FASTA with --labels)")
    p.add_argument("--labels", metavar="TSV", help="labels table for a --data FASTA file")
    p.add_argument("-o", "--output", required=True, metavar="OUT.npz", help="embeddings file to write")
    p.add_argument("--shard-size", type=int, default=65536, metavar="N",
                   help="sequences per shard (default 65536): finished shards are kept in OUT.npz.shards/ and a "
                        "rerun after a kill or crash skips them")
    p.add_argument("--devices", type=int, metavar="N",
                   help="embed with N processes (GPUs with --device cuda, else CPU processes) through Lightning DDP; "
                        "each writes its own shards, rank 0 merges them")
    p.add_argument("--num-nodes", type=int, default=1, metavar="M",
                   help="nodes of a multi-node run (launched by torchrun/SLURM; OUT must be on a shared file system)")
    _add_model_options(p)
    _add_reading_options(p)
    p.set_defaults(func=_cmd_embed)


def _add_index(sub) -> None:
    from phylocl.retrieval.index_params import INDEX_KINDS, PARAM_HELP

    p = sub.add_parser("index", help="build an index folder from an embeddings file (FAISS) or, for k-mer "
                                     "profile models, straight from a FASTA file (sparse)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--embeddings", metavar="FILE.npz", help="written by `phylocl embed`")
    source.add_argument("--fasta", metavar="DB.fasta",
                        help="database sequences, embedded here into a sparse (inverted) index: exact search for "
                             "kmer:K and k-mer profile encoders (default-protein) at a few percent of their dense "
                             "size")
    source.add_argument("--verify", metavar="INDEX",
                        help="check an existing index folder: the checksums of every file written when it was built "
                             "and its whole structure (loading checks small files and the structure only)")
    p.add_argument("-o", "--output", metavar="INDEX", help="index folder to write")
    p.add_argument("--kind", "--type", dest="type", choices=["auto", *INDEX_KINDS, "sparse"], default="auto",
                   help="auto (default): with --embeddings flat (exact) up to 50,000 vectors or for vectors "
                        "512 or more wide, else hnsw up to 2,000,000, then ivf, and ivfpq when the vectors exceed "
                        "--memory-gb; with --fasta sparse; or force one kind")
    p.add_argument("--memory-gb", type=float, metavar="GB",
                   help="auto: most GB of raw vectors an index may hold before it switches to ivfpq (default 4)")
    p.add_argument("--nlist", type=int, help=PARAM_HELP["nlist"])
    p.add_argument("--nprobe", type=int, help=PARAM_HELP["nprobe"])
    p.add_argument("--ef-search", type=int, help=PARAM_HELP["ef_search"])
    p.add_argument("--seed", type=int, default=0, help="seed of the ivf/pq training")
    p.add_argument("--threads", type=int, help="FAISS threads; with --fasta, the processes that embed the sequences "
                   "(default: all cores)")
    _add_windows_option(p, "with --fasta: index each sequence as windows of W residues, one row per window; search "
                           "then ranks sequences by their best window pair")
    _add_model_options(p)
    _add_reading_options(p, aligns=True)
    p.set_defaults(func=_cmd_index)


def _add_windows_option(p, text: str) -> None:
    p.add_argument("--windows", type=int, metavar="W",
                   help=text + "; consecutive windows share only the residues of one word; default: the model's own "
                   "width (default-protein: 200, other models none), 0: one row per sequence (docs/retrieval.md, "
                   "\"Windows\")")


def _add_align_options(g, *, no_align: bool) -> None:
    """The alignment stage's options (search: on by default, with --no-align and --format; evaluate: --align)."""
    if no_align:
        g.add_argument("--no-align", action="store_true",
                       help="rank by the embedding alone (cosine similarity), without aligning the candidates")
    from phylocl.workflows.sensitivity import SENSITIVITIES, describe

    budget = ("a word budget applies to sparse indexes only" if no_align else
              "evaluate searches exactly: a word budget is not applied")
    g.add_argument("--sensitivity", metavar="{" + ",".join(SENSITIVITIES) + "}",
                   help=f"speed/sensitivity preset: {describe()} ({budget}); an option given explicitly overrides "
                        "the preset's value; the MSV filter keeps its default (docs/retrieval.md, "
                        "'Speed/sensitivity presets')")
    g.add_argument("--candidates", type=int, metavar="N",
                   help="embedding hits per query passed to the filter and aligner (default 500)")
    g.add_argument("--evalue", type=float, default=10.0, help="keep hits with E-value <= this (default 10)")
    g.add_argument("--filter-pvalue", type=float, metavar="P",
                   help="align only the candidates whose ungapped score against the query (HMMER's MSV filter) has a "
                        "P-value <= P (default: protein 0.02, HMMER's F1; DNA 1, which aligns every candidate)")
    g.add_argument("--matrix", help="protein substitution matrix: BLOSUM62 (default), BLOSUM45, BLOSUM50, BLOSUM80, "
                                    "BLOSUM90, PAM30, PAM70 or PAM250, NCBI's tables as blastp scores them (DNA uses "
                                    "BLASTN's +2/-3)")
    g.add_argument("--gap-open", type=int, metavar="G",
                   help="gap opening cost, BLAST's convention: a gap of length L costs G + L*E (default 11, DNA 5)")
    g.add_argument("--gap-extend", type=int, metavar="E", help="gap extension cost (default 1, DNA 2)")
    if no_align:
        g.add_argument("--format", default="tsv", metavar="{tsv,blast6,\"6 COLUMN ...\"}",
                       help="tsv (default) or blast6: BLAST/DIAMOND tabular (qseqid sseqid pident length mismatch "
                            "gapopen qstart qend sstart send evalue bitscore); or \"6 COLUMN ...\", BLAST's "
                            "-outfmt with its columns, e.g. \"6 qseqid sseqid evalue bitscore qlen slen qcovhsp\" "
                            "(also std, score nident gaps scovhsp sstrand, and the aligned letters positive ppos qseq "
                            "sseq btop; docs/retrieval.md, 'Output columns')")
    g.add_argument("--threads", type=int, help="aligner threads (default: all cores)")
    g.add_argument("--strand", choices=["plus", "both"],
                   help="DNA only: both (the default when aligning, as blastn) also searches and aligns each query's "
                        "reverse complement and keeps the better strand per target; plus: the query as given")


def _add_search(sub) -> None:
    p = sub.add_parser("search", help="best database hits of each query: embedding candidates, aligned and ranked "
                                      "by bit score (--no-align: by the embedding), as TSV or BLAST tabular")
    p.add_argument("--query", required=True, metavar="Q.fasta", help="query FASTA file")
    db = p.add_mutually_exclusive_group(required=True)
    db.add_argument("--db", metavar="DB.fasta", help="database FASTA, embedded on the fly (exact search)")
    db.add_argument("--index", metavar="INDEX", help="index folder from `phylocl index`")
    p.add_argument("-k", type=int, default=50, help="hits per query (default %(default)s), as blastp's "
                   "-max_target_seqs but ranked by bit score, not E-value (ties: embedding order; --no-align: by "
                   "the embedding); a hit on a database sequence with the query's own id is left out unless "
                   "--self-hits")
    p.add_argument("--self-hits", action="store_true",
                   help="keep each query's hit on the database sequence with its own id, as BLAST, DIAMOND and "
                        "MMseqs2 report it (default: left out, so that a set searched against itself gives each "
                        "query its -k best other sequences)")
    p.add_argument("-o", "--output", required=True, metavar="HITS.tsv",
                   help="hits file ('-': stdout, written once the search is done): TSV with columns query, target, "
                        "score (cosine similarity), rank, and bitscore, evalue when aligned; or BLAST tabular")
    p.add_argument("--word-budget", type=float, metavar="F",
                   help="sparse index only: each query reads only its words of most weight per posting, up to "
                        "fraction F (0 < F <= 1) of the postings exact search reads; faster, not exact (recall: "
                        "docs/retrieval.md, 'Word budget'); default 1, exact")
    g = p.add_argument_group("alignment stage (on by default)")
    _add_align_options(g, no_align=True)
    _add_windows_option(p, "with --db: embed database and queries as windows of W residues and rank database "
                           "sequences by their best window pair; an --index uses its own cut")
    _add_model_options(p)
    _add_reading_options(p, aligns=True)
    p.set_defaults(func=_cmd_search)


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="family-retrieval figures of a model on a labelled set")
    p.add_argument("--data", required=True, metavar="PATH", help="labelled dataset (folder, or FASTA with --labels)")
    p.add_argument("--labels", metavar="TSV", help="labels table for a --data FASTA file")
    p.add_argument("--db-extra", metavar="DECOYS.fasta",
                   help="unlabelled distractors added to the database (every hit on one is a false positive)")
    p.add_argument("--group-column", metavar="COL",
                   help="labels column to evaluate at (e.g. superfamily); default: the family")
    p.add_argument("-k", type=int, nargs="+", default=[1, 10, 50], metavar="K",
                   help="recall@k cut-offs (default 1 10 50)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--per-family", metavar="TSV", help="also write per-family figures to this TSV")
    p.add_argument("--split", choices=["train", "val", "test"],
                   help="only the families of this split of a training run (from its splits.json)")
    p.add_argument("--split-config", metavar="RUN",
                   help="where the split comes from: a `phylocl train` folder, its config.yaml or splits.json "
                        "(default: the --model folder)")
    g = p.add_argument_group("aligned ranking (as phylocl search writes it)")
    g.add_argument("--align", action="store_true",
                   help="also report the figures after aligning each sequence's --candidates embedding hits")
    _add_align_options(g, no_align=False)
    _add_windows_option(p, "score each pair by its best pair of windows of W residues, as `phylocl search` on an "
                           "index built with --windows W")
    _add_model_options(p)
    _add_reading_options(p, alphabet=False, aligns=True)
    p.set_defaults(func=_cmd_evaluate)


def _add_diagnose(sub) -> None:
    p = sub.add_parser("diagnose", help="representation health of a model: rank collapse per layer, effective "
                                        "rank, alignment/uniformity, kNN and linear-probe accuracy")
    p.add_argument("--data", required=True, metavar="PATH", help="labelled dataset (folder, or FASTA with --labels)")
    p.add_argument("--labels", metavar="TSV", help="labels table for a --data FASTA file")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("-o", "--output", metavar="DIR", help="also write diagnosis.json and plots (residual.png, "
                                                         "spectrum.png, map.png) into this folder")
    p.add_argument("--max-sequences", type=int, metavar="N",
                   help="measure on whole families drawn at random up to N sequences (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the subsampling, pair sampling and probe folds")
    _add_model_options(p)
    p.set_defaults(func=_cmd_diagnose)


_SUBCOMMANDS = (_add_models, _add_inspect, _add_simulate, _add_train, _add_compare, _add_embed, _add_index,
                _add_search, _add_evaluate, _add_diagnose)


def build_parser() -> argparse.ArgumentParser:
    """The ``phylocl`` parser: one sub-parser per subcommand, each added by its ``_add_<command>`` function."""
    from phylocl import __version__

    parser = argparse.ArgumentParser(
        prog="phylocl",
        description="Contrastive learning on ortholog families (FASTA in, sequence embeddings out).",
    )
    parser.add_argument("--version", action="version", version=f"phylocl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in _SUBCOMMANDS:
        add(sub)
    for command in sub.choices.values():  # an unknown option is refused with its command's usage (main)
        command.set_defaults(_parser=command)
    return parser


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Raise :class:`Terminated` on SIGTERM inside the block (main thread only; Lightning installs its own
    handler while training, which stops at the next step and leaves interrupted.ckpt)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


HEAP_COMMANDS = ("search", "index")  # short-lived runs that allocate and free the same large arrays block after
# block: freed memory kept for the next block (phylocl/heap.py; docs/performance.md, "Freed memory kept")
BLAS_SPIN = "4"  # OpenBLAS's idle spin, 2^4 cycles (its default, ~2^28, is ~0.1 s on this project's machines)


def _short_blas_spin() -> None:
    """Let NumPy's OpenBLAS threads sleep at once after a product instead of spinning ~0.1 s (unless the user set
    ``OPENBLAS_THREAD_TIMEOUT``; read when NumPy is first imported, so set before it). A search runs its own
    threads and processes right after each product (sparse sums, alignment): the spinning threads held the cores,
    and a query's sums shared by two threads took 0.09 s instead of 0.05 s at 10^6 rows (docs/performance.md,
    "Ids mapped in place, row blocks shared by threads")."""
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", BLAS_SPIN)


PATH_OPTIONS = ("config", "data", "db", "db_extra", "embeddings", "fasta", "index", "labels", "model", "out",
                "output", "path", "per_family", "query", "resume", "split_config", "verify")  # files or folders


def _refuse_empty_paths(args: argparse.Namespace) -> None:
    """An empty string for a file or folder (an unset shell variable: ``--query "$Q"``) is refused with the command's
    usage; it read as the working folder (``.: is a directory``, or "output would overwrite an input file")."""
    for action in args._parser._actions:
        value = getattr(args, action.dest, None) if action.dest in PATH_OPTIONS else None
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and not v.strip() for v in values):
            name = "/".join(action.option_strings) or action.dest
            args._parser.error(f"argument {name}: an empty string is not a file or folder name (an unset shell "
                               "variable?)")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``phylocl`` console script. Returns the process exit code."""
    _short_blas_spin()
    from phylocl.console import configure_logging, quiet_lightning

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # `phylocl models --bogus` showed the top-level usage: the command's own says what it takes
        args._parser.error(f"unrecognized arguments: {' '.join(extra)}")
    _refuse_empty_paths(args)
    configure_logging(args.command, quiet=getattr(args, "quiet", False))
    if args.command in ("train", "compare", "embed"):  # embed: --devices runs Lightning's DDP
        quiet_lightning()
    if args.command in HEAP_COMMANDS:
        from phylocl.heap import keep_freed_memory

        keep_freed_memory()
    from phylocl.arguments import command_line_names

    try:
        with _sigterm_as_interrupt(), command_line_names():  # messages name the options (--threads), not keywords
            return int(args.func(args) or 0)
    except InputError as err:
        print(f"phylocl {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `phylocl inspect ... | head`: the reader left; stop quietly, as Unix tools do
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as err:  # the environment (disk full, permissions, a vanished file): one line, not a traceback
        from phylocl.errors import os_error_message

        where = f"{err.filename}: " if err.filename else ""
        print(f"phylocl {args.command}: error: {where}{os_error_message(err)}", file=sys.stderr)
        return 2
    except MemoryError:  # an allocation the machine (or `ulimit -v`) refused: one line, not a traceback
        print(f"phylocl {args.command}: error: out of memory; use a machine with more memory, or smaller "
              "--batch-size / --buffer-size or inputs", file=sys.stderr)
        return 2
    except Terminated as err:
        print(f"phylocl {args.command}: terminated" + (f" ({err})" if str(err) else ""), file=sys.stderr)
        return 143
    except KeyboardInterrupt as err:
        print(f"phylocl {args.command}: interrupted" + (f" ({err})" if str(err) else ""), file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
