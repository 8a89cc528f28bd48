"""The ``phylocl`` command line: every subcommand calls the library (the parser: :mod:`phylocl.cli_parser`).

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

from phylocl.cli_parser import build_parser
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


def _given(args: argparse.Namespace, names: tuple[str, ...]) -> list[str]:
    """The options among ``names`` given other values than their defaults, as the command line names them."""
    defaults = {"type": "auto", "evalue": 10.0}
    return ["--kind" if n == "type" else "-o" if n == "output" else "--" + n.replace("_", "-")
            for n in names if getattr(args, n) not in (None, defaults.get(n))]


def _refuse_unused(args: argparse.Namespace, what: str, names: tuple[str, ...]) -> None:
    """One line naming the options among ``names`` that were given but that ``what`` does not use (they were
    silently ignored)."""
    given = _given(args, names)
    if given:
        raise InputError(f"{what} does not use {', '.join(given)}; drop {'it' if len(given) == 1 else 'them'}")


def _unused_note(args: argparse.Namespace, what: str, names: tuple[str, ...]) -> list[str]:
    """A note naming the options among ``names`` that were given but that ``what`` does not use (they were
    silently ignored; a note, not a refusal: scripts pass one set of options with and without the aligner)."""
    given = _given(args, names)
    return [f"{what} does not use {', '.join(given)} (not applied)"] if given else []


_FAISS_OPTIONS = ("memory_gb", "nlist", "nprobe", "ef_search")
_ALIGN_OPTIONS = ("candidates", "evalue", "filter_pvalue", "matrix", "gap_open", "gap_extend")  # the aligner's only


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
    if args.no_align:
        _print_notes("search", _unused_note(args, "--no-align (the embedding ranking alone)", _ALIGN_OPTIONS))
    _say_default("search", r.model)
    how = (f"aligned ({r.scoring['matrix']} {r.scoring['gap_open']}/{r.scoring['gap_extend']}, "
           f"{r.candidates} candidates{', both strands' if r.strand == 'both' else ''})" if r.aligned
           else "embedding only" + (", both strands" if r.strand == "both" else ""))
    if r.word_budget is not None and r.word_budget < 1:
        how += f", word budget {r.word_budget:g} (not exact)"
    if r.sensitivity is not None:
        how += f", sensitivity {r.sensitivity}"
    queries = f"{r.n_queries:,} quer{'y' if r.n_queries == 1 else 'ies'}"
    print(f"wrote {r.n_hits:,} hit{'' if r.n_hits == 1 else 's'} of {queries} against {r.db_size:,} sequence{'' if r.db_size == 1 else 's'} "
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
    if not args.align:
        _print_notes("evaluate", _unused_note(args, "evaluate without --align (the embedding figures alone)",
                                              (*_ALIGN_OPTIONS, "threads")))
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


def _print_notes(command: str, notes) -> None:
    for note in notes:
        print(f"phylocl {command}: note: {note}", file=sys.stderr)


COMMANDS = {"models": _cmd_models, "inspect": _cmd_inspect, "simulate": _cmd_simulate, "train": _cmd_train,
            "compare": _cmd_compare, "embed": _cmd_embed, "index": _cmd_index, "search": _cmd_search,
            "evaluate": _cmd_evaluate, "diagnose": _cmd_diagnose}  # the parser's subcommands (phylocl.cli_parser)


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


def _run_command(args: argparse.Namespace) -> int:
    """The exit code of the command ``args.command`` (:data:`COMMANDS`). A rank other than 0 of a distributed run
    stops silently, with exit code 0, on an error that rank 0 raised too and reports
    (:mod:`phylocl.workflows.rank_failures`): printed by every rank it was N copies of one line, and a rank that
    exited non-zero first had Lightning's launcher kill rank 0 (exit 137)."""
    try:
        return int(COMMANDS[args.command](args) or 0)
    except Exception as err:
        from phylocl.workflows.rank_failures import reported_by_rank_zero

        if reported_by_rank_zero(err):
            return 0
        raise


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
            return _run_command(args)
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
