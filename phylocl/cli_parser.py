"""The ``phylocl`` argument parser: one sub-parser per subcommand (``_add_<command>``) and the option groups they
share. :mod:`phylocl.cli` runs the command the parser names (``args.command``)."""

from __future__ import annotations

import argparse

__all__ = ["build_parser"]


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
    

def _add_inspect(sub) -> None:
    p = sub.add_parser("inspect", help="read a dataset and summarise it (families, sequences, lengths)")
    p.add_argument("path", help="dataset folder, FASTA file (with --labels), OrthoFinder results, "
                                "or a folder of FASTA files, one per family")
    p.add_argument("--labels", help="labels TSV (sequence_id, family_id, ...) for a FASTA file")
    _add_reading_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    

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
    

def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train an encoder on ortholog families and export it")
    p.add_argument("--config", help="YAML training config (see configs/); default: built-in defaults")
    _add_run_options(p, example="--set optim.lr=3e-4 --set trainer.devices=2")
    p.add_argument("--out", required=True, help="output folder (the model: config.json + model.safetensors; config.yaml, "
                                                  "metrics.json, logs/)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_reading_options(p, alphabet=False)  # the alphabet is the config's data.alphabet
    

def _add_compare(sub) -> None:
    p = sub.add_parser("compare", help="InfoNCE vs FlatNCE (or any losses) across batch sizes and seeds at an equal "
                                       "pair budget; results.csv, summary.md, plots")
    p.add_argument("--config", required=True, help="compare config: training sections plus a compare: section "
                                                   "(see configs/compare-small-batch.yaml)")
    p.add_argument("--out", required=True, help="study folder; re-running continues it (finished cells are kept)")
    _add_run_options(p, example="--set compare.seeds=[0] --set data.max_len=96")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    

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
