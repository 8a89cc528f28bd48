"""Which training decoys displace a DNA dev family's relatives from the top 300, and are they homologs?

Issue 24's DNA yardstick (``benchmarks/ablation.py score MODEL dna --decoys``) counts every training sequence as
irrelevant. The quarantine removed only MMseqs2 nucleotide hits (E < 1e-5) to dev families, so an RNA homolog
that MMseqs2 misses (RNAs keep structure more than sequence) stays a decoy. This script, for one dev set
(default: ``nucleotide-families``, the one set with room for +0.05 recall@300):

1. ranks dev + decoys for every dev query exactly as ``score --decoys`` does (sparse index, cosine, pessimistic
   ties) and tallies the decoys inside the top 300 of queries that lose a relative there (*displacing decoys*),
   by dataset and family;
2. runs Infernal ``cmsearch`` with the covariance model of each dev family (the calibrated CMs that Infernal ships
   beside the alignments the dev families were taken from, ``--cm FAMILY=PATH``) over every decoy: a decoy with
   a hit at E <= ``--evalue`` is an unlabelled homolog of that family;
3. scores recall@K twice: with every decoy irrelevant (the yardstick as it is) and with the CM hits removed from
   the decoys (a quarantine that also uses the family's CM).

Run from the repository root::

    python benchmarks/dna_decoys.py --model default-dna --out runs/dna-decoys.json \\
        --cm Vault=/usr/share/doc/infernal/examples/testsuite/Vault.c.cm \\
        --cm RNaseP_eubacterial=/usr/share/doc/infernal/examples/testsuite/rnaseP-eubact.c.cm

``--models`` scores more models on both versions (the CM search is done once).
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ablation  # noqa: E402  (benchmarks/ablation.py, beside this script)

DEPTH = 300


def labelled_decoys(alphabet: str) -> list[tuple[str, str, str, str]]:
    """``(dataset, family, id, sequence)`` of every training sequence, in :func:`ablation.decoy_sequences`' order."""
    split = json.loads((ablation.REPO / "configs" / "splits" / f"dev-{alphabet}.json").read_text())
    out = []
    for name, info in split["datasets"].items():
        held = set(info["val"]) | set(info["test"])
        ds = ablation.read(name)
        out += [(name, f, i, s) for i, s, f in zip(ds.ids, ds.sequences, ds.families) if f not in held]
    return out


def cm_hits(cm: str, sequences: list[str], evalue: float, threads: int = 1) -> dict[int, float]:
    """``{decoy position: best E-value}`` of Infernal ``cmsearch`` hits (either strand) with E <= ``evalue``."""
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        with open(t / "db.fa", "w") as f:
            for k, s in enumerate(sequences):
                f.write(f">d{k}\n{s}\n")
        subprocess.run(["cmsearch", "--cpu", str(threads), "-E", str(evalue), "--tblout", t / "hits.tbl", "-o",
                        "/dev/null", cm, t / "db.fa"], check=True)
        best: dict[int, float] = {}
        for line in open(t / "hits.tbl"):
            if line.startswith("#"):
                continue
            f = line.split()
            k, e = int(f[0][1:]), float(f[15])
            best[k] = min(e, best.get(k, np.inf))
    return best


def score_matrix(embedder, queries: list[str], decoys: list[str]) -> np.ndarray:
    """``(n, n + M)`` cosine scores of each dev query against dev rows ``0..n-1`` then decoys, through the sparse
    index as ``score --decoys`` (float32)."""
    from phylocl.retrieval.sparse_build import sparse_index_in_memory
    from phylocl.sparse_rows import concat_rows

    q = embedder.embed_sparse(queries)
    d = embedder.embed_sparse(decoys)
    db = concat_rows([q, d])
    index = sparse_index_in_memory(db, ids=[str(i) for i in range(len(db))])
    return np.concatenate([index.scores(q.slice(lo, min(lo + 256, len(queries))))
                           for lo in range(0, len(queries), 256)])


def recall_figures(s: np.ndarray, fams: list[str], n_decoys: int) -> tuple[dict, list]:
    """AUC1 / recall@100 / recall@300 of score rows ``s`` (``-inf``: not in the database) with the metric code of
    ``score --decoys`` (pessimistic ties; decoys never relevant), overall and per family; and the hit lists."""
    from phylocl.retrieval.evaluation import tied_lists
    from phylocl.retrieval.hits import HitLists
    from phylocl.retrieval.metrics import score_hits

    n = len(fams)
    largest = int(np.unique(fams, return_counts=True)[1].max()) - 1
    lists = tied_lists(s, 0, max(DEPTH, largest))
    out = {}
    for fam in [None, *sorted(set(fams))]:
        rows = np.arange(n) if fam is None else np.flatnonzero(np.asarray(fams) == fam)
        hits = HitLists.from_lists([lists[i] for i in rows])
        m = score_hits(hits, [fams[i] for i in rows], fams + [None] * n_decoys, ks=(1, 100, DEPTH),
                       query_rows=rows)
        out[fam or "all"] = {k: float(m[k]) for k in ("auc1", "recall@100", f"recall@{DEPTH}")}
    return out, lists


def word_names(model_spec: str) -> tuple[int, callable]:
    """``(columns per pattern, name)``: ``name(col)`` is the word of sparse column ``col`` of k-mer profile model
    ``model_spec`` (a folder or shipped name) as letters, ``.`` at a spaced pattern's skipped position (the column
    layout of :class:`~phylocl.models.profile_numpy.NumpyProfileEncoder`, the same as the torch sparse rows')."""
    from phylocl.models.persistence import PRETRAINED_DIR
    from phylocl.models.profile_numpy import NumpyProfileEncoder

    folder = Path(model_spec) if Path(model_spec).exists() else PRETRAINED_DIR / model_spec
    model = NumpyProfileEncoder(folder=folder)
    size = model.n ** model.k
    letters = {int(model.code[model._alpha.encode(a)[0]]): a for a in "ACGT"}

    def name(col: int) -> str:
        pattern, word = model.patterns[col // size], col % size
        digits = [letters[(word // model.n ** e) % model.n] for e in range(model.k - 1, -1, -1)]
        it = iter(digits)
        return "".join(next(it) if c == "1" else "." for c in pattern)

    return size, name


def shared_words(embedder, model_spec: str, queries: list[str], targets: list[str], top: int) -> dict:
    """The words that make ``targets[i]`` score high against ``queries[i]``: the sparse part's dot product split by
    word, summed over the pairs; the ``top`` words with their share of the summed sparse dot product (the
    composition term's share of each score is left out)."""
    q, t = embedder.embed_sparse(queries), embedder.embed_sparse(targets)
    _, name = word_names(model_spec)
    by_word: collections.Counter = collections.Counter()
    sparse_total = 0.0
    for i in range(len(queries)):
        qa, qb = q.indptr[i], q.indptr[i + 1]
        ta, tb = t.indptr[i], t.indptr[i + 1]
        common, qi, ti = np.intersect1d(q.indices[qa:qb], t.indices[ta:tb], return_indices=True)
        prod = q.values[qa:qb][qi].astype(np.float64) * t.values[ta:tb][ti]
        for c, v in zip(common, prod):
            by_word[name(int(c))] += float(v)
        sparse_total += float(prod.sum())
    return {"pairs": len(queries), "sparse_dot_sum": sparse_total,
            "top_words": [(w, round(v / sparse_total, 4)) for w, v in by_word.most_common(top)]}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="default-dna")
    p.add_argument("--models", nargs="*", default=[], help="more models scored on both decoy sets")
    p.add_argument("--dataset", default="nucleotide-families")
    p.add_argument("--cm", action="append", default=[], metavar="FAMILY=PATH", help="covariance model of a dev family")
    p.add_argument("--evalue", type=float, default=0.01, help="cmsearch inclusion E-value for a homolog")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--words", type=int, default=0, metavar="N",
                   help="also the N words that most raise displacing decoys' scores, per dev family (first model)")
    p.add_argument("--reuse", help="take the CM hits from this earlier output instead of running cmsearch")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    from phylocl.workflows.model_spec import resolve_model

    ds = dict(ablation.dev_sets("dna"))[args.dataset]
    decoys = labelled_decoys("dna")
    d_seqs = [s for *_, s in decoys]
    fams = list(ds.families)
    # 2. homologs among the decoys, per dev family (CM search once)
    homologs: dict[str, dict[int, float]] = {}
    reuse = json.loads(Path(args.reuse).read_text()) if args.reuse else None
    for item in args.cm:
        fam, _, path = item.partition("=")
        if reuse is not None:  # the CM hits of an earlier run (same decoys, CMs and E-value)
            assert reuse["evalue"] == args.evalue and reuse["cm"][fam] == path and reuse["n_decoys"] == len(decoys)
            homologs[fam] = {int(k): e for k, e in reuse["homolog_decoys"][fam]["positions"].items()}
        else:
            homologs[fam] = cm_hits(path, d_seqs, args.evalue, args.threads)
        print(f"{fam}: {len(homologs[fam])} decoys with cmsearch E <= {args.evalue}", file=sys.stderr, flush=True)
    dev_hits = reuse["dev_members_found_by_own_cm"] if reuse else {}
    for item in [] if reuse else args.cm:  # sanity: the family's own members are found by its CM
        fam, _, path = item.partition("=")
        members = [s for s, f in zip(ds.sequences, fams) if f == fam]
        dev_hits[fam] = {"members": len(members), "found": len(cm_hits(path, members, args.evalue, args.threads))}
    result = {"dataset": args.dataset, "evalue": args.evalue, "n_decoys": len(decoys), "cm": dict(
        item.partition("=")[::2] for item in args.cm), "dev_members_found_by_own_cm": dev_hits, "homolog_decoys": {
        fam: {"count": len(h), "by_family": collections.Counter(
            f"{decoys[k][0]}:{decoys[k][1]}" for k in h).most_common(),
            "evalues": {decoys[k][2]: e for k, e in sorted(h.items(), key=lambda kv: kv[1])},
            "positions": {str(k): e for k, e in h.items()}}
        for fam, h in homologs.items()}, "models": {}}
    n = len(ds)
    for model in [args.model, *args.models]:
        embedder = resolve_model(model, alphabet="dna", device="cpu")
        s = score_matrix(embedder, list(ds.sequences), d_seqs)  # (n, n + M)
        as_is, lists = recall_figures(s, fams, len(decoys))
        s_cm = s.copy()
        for fam, hom in homologs.items():  # the CM quarantine: a family's homolog decoys leave its queries' database
            if hom:
                s_cm[np.ix_(np.flatnonzero(np.asarray(fams) == fam), n + np.fromiter(hom, dtype=np.int64))] = -np.inf
        cm, _ = recall_figures(s_cm, fams, len(decoys))
        displacing = collections.Counter()
        per_family = collections.defaultdict(collections.Counter)
        for i, (rows, _) in enumerate(lists):
            rel = sum(1 for j in range(n) if j != i and fams[j] == fams[i])
            top = rows[:DEPTH]
            if sum(1 for r in top if r < n and fams[r] == fams[i]) < min(rel, DEPTH):  # loses a relative
                for r in top[top >= n]:
                    key = f"{decoys[r - n][0]}:{decoys[r - n][1]}"
                    displacing[key] += 1
                    hom = (r - n) in homologs.get(fams[i], {})
                    per_family[fams[i]][key + (" (CM homolog)" if hom else "")] += 1
        words = {}
        if args.words and model == args.model:
            for fam in sorted(set(fams)):
                pairs = [(i, r) for i, (rows, _) in enumerate(lists) if fams[i] == fam
                         for r in rows[:DEPTH] if r >= n]  # every (query, decoy in its top 300)
                words[fam] = shared_words(embedder, model, [ds.sequences[i] for i, _ in pairs],
                                          [d_seqs[r - n] for _, r in pairs], args.words)
        result["models"][model] = {
            "as_is": as_is, "cm_quarantine": cm, "words": words,
            "displacing_decoys": displacing.most_common(15),
            "displacing_by_dev_family": {f: c.most_common(10) for f, c in per_family.items()},
            "displacing_slots": {f: sum(c.values()) for f, c in per_family.items()},
        }
        print(json.dumps({model: {"as_is": as_is["all"], "cm_quarantine": cm["all"]}}), file=sys.stderr, flush=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "homolog_decoys"}, indent=1))


if __name__ == "__main__":
    main()
