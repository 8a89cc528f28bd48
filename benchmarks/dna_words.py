"""Which DNA word profile finds held-out families: word length x count transform x word weights (docs/models.md).

Every variant is an untrained k-mer profile (no gradient steps): for each seed pattern (``"1" * k``, or the three
spaced patterns of :func:`~phylocl.models.kmerprofile.seed_patterns`) the word counts of
:meth:`KmerProfile.counts <phylocl.models.kmerprofile.KmerProfile.counts>` go through a transform (``raw``: counts,
as ``kmer:K``; ``sqrt``: as the k-mer profile encoder; ``bin``: presence), times the word weights (``uniform``: 1;
``idf``: the training sequences' inverse document frequencies, :meth:`KmerProfile.fit_statistics`), L2-normalised
per pattern and concatenated with equal gains, so the cosine is the mean of the per-pattern cosines. ``raw``
``uniform`` with one contiguous pattern is exactly ``kmer:K``. Each dev set of ``runs/dev/dna`` (``ablation.py
materialize dna``) is scored with :func:`~phylocl.retrieval.evaluation.evaluate_embeddings`, the metric code of
``phylocl evaluate``; training sequences (for IDF) are those of ``--config``'s split.

Run from the repository root (all rows: 6.7 min wall, 2.6 CPU min on one thread at load average 3-5; peak memory
4.8 GB, from the rows with 8-letter words: up to 2,505 x 87,360 float32 features)::

    python benchmarks/ablation.py materialize dna
    python benchmarks/dna_words.py [--out runs/dna-words.json] [VARIANT ...]    # e.g. k7-spaced-sqrt-uniform

A variant ``k5+7-...`` concatenates the blocks of several word lengths, each of norm ``1 / sqrt(blocks)``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ablation import DATASETS, REPO, dev_dir  # benchmarks/ablation.py, beside this script

TRANSFORMS = ("raw", "sqrt", "bin")
WEIGHTS = ("uniform", "idf")


ROWS = ["k3-contiguous-raw-uniform", "k5-contiguous-raw-uniform", "k5-contiguous-raw-idf", "k5-contiguous-sqrt-uniform",
        "k5-contiguous-sqrt-idf", "k5-contiguous-bin-uniform", "k5-spaced-sqrt-idf", "k6-contiguous-raw-uniform",
        "k6-contiguous-sqrt-uniform", "k6-spaced-sqrt-uniform", "k7-contiguous-raw-uniform",
        "k7-contiguous-sqrt-uniform", "k7-contiguous-sqrt-idf", "k7-contiguous-bin-uniform", "k7-spaced-raw-uniform",
        "k7-spaced-sqrt-uniform", "k7-spaced-sqrt-idf", "k8-contiguous-raw-uniform", "k8-contiguous-sqrt-uniform",
        "k3+5+7-contiguous-sqrt-uniform", "k3+5+7-contiguous-raw-uniform", "k5+7-contiguous-sqrt-uniform",
        "k3+4+5+6+7+8-contiguous-sqrt-uniform", "k7+8-contiguous-sqrt-uniform"]  # the rows of docs/models.md


def parse(name: str) -> tuple[list[int], bool, str, str]:
    """``"k7-spaced-sqrt-idf"`` -> ``([7], True, "sqrt", "idf")``; ``"k5+7-..."``: blocks of 5- and 7-letter words.

    A malformed name exits with a one-line message.
    """
    parts = name.split("-")
    ks = parts[0][1:].split("+") if parts[0][:1] == "k" else []
    ok = (len(parts) == 4 and ks and all(k.isdigit() and 1 <= int(k) <= 8 for k in ks)
          and parts[1] in ("contiguous", "spaced") and parts[2] in TRANSFORMS and parts[3] in WEIGHTS)
    if not ok:
        sys.exit(f"dna_words.py: bad variant {name!r}: write k<K>[+<K>...]-<contiguous|spaced>-<raw|sqrt|bin>-"
                 "<uniform|idf> with 1 <= K <= 8")
    return [int(k) for k in ks], parts[1] == "spaced", parts[2], parts[3]


def train_tokens(config: str) -> list[np.ndarray]:
    """Token arrays of the training sequences of ``config``'s split (the sequences ``phylocl train`` fits IDF on)."""
    from phylocl.config import load_config
    from phylocl.data.datamodule import OrthologDataModule

    dm = OrthologDataModule(config=load_config(config).data)
    dm.setup("fit")
    return [dm.alphabet.encode(s) for s in dm.train_set.sequences]


def features(profile, tokens: list[np.ndarray], *, spaced: bool, transform: str, blocks: int,
             batch_size: int = 64) -> np.ndarray:
    """``(N, P * 4^k)`` float32 rows: per pattern ``normalize(transform(counts) * weights) / sqrt(blocks)``, where
    ``blocks`` counts the patterns of every word length of the variant (so that the cosine is their mean)."""
    import torch
    import torch.nn.functional as F

    from phylocl.data.tokens import pad_batch

    patterns = len(profile.patterns) if spaced else 1
    rows = []
    with torch.no_grad():
        for lo in range(0, len(tokens), batch_size):
            batch = pad_batch(tokens[lo:lo + batch_size])
            c = profile.counts(batch["input_ids"], batch["attention_mask"])[:, :patterns]  # (B, P, 4^k)
            c = {"raw": c, "sqrt": c.sqrt(), "bin": (c > 0).float()}[transform] * profile.weights[:patterns]
            rows.append((F.normalize(c, dim=-1) / blocks**0.5).flatten(1).numpy())
    return np.concatenate(rows)


def score_variant(name: str, train: list[np.ndarray], dev: dict) -> dict[str, float]:
    """``{dev set: AUC1}`` of one variant (see the module docstring)."""
    from phylocl.models.kmerprofile import KmerProfile, seed_patterns
    from phylocl.retrieval.evaluation import evaluate_embeddings

    ks, spaced, transform, weights = parse(name)
    blocks = sum(len(seed_patterns(k)) if spaced else 1 for k in ks)
    profiles = []
    for k in ks:
        profiles.append(KmerProfile(alphabet="dna", k=k))
        if weights == "idf":
            profiles[-1].fit_statistics(train)
    out = {}
    for set_name, (tokens, families) in dev.items():
        x = np.concatenate([features(p, tokens, spaced=spaced, transform=transform, blocks=blocks)
                            for p in profiles], axis=1)
        out[set_name] = float(evaluate_embeddings(x, families, ks=(1,))["auc1"])
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default=str(REPO / "configs" / "default-dna.yaml"))
    p.add_argument("--out", default=str(REPO / "runs" / "dna-words.json"))
    p.add_argument("variants", nargs="*")
    args = p.parse_args(argv)
    names = args.variants or ROWS
    for name in names:
        parse(name)  # every name checked before the slow part
    from phylocl.data.alphabet import get_alphabet
    from phylocl.workflows.inputs import read_labelled

    alphabet = get_alphabet("dna")
    dev = {}
    for set_name in DATASETS["dna"]:
        ds = read_labelled(dev_dir("dna") / set_name, None)
        dev[set_name] = ([alphabet.encode(s) for s in ds.sequences], list(ds.families))
    train = train_tokens(args.config)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    for name in names:
        results[name] = score_variant(name, train, dev)
        out.write_text(json.dumps(results, indent=1) + "\n")
        print(name, " ".join(f"{v:.3f}" for v in results[name].values()), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
