"""Embedding speed of the shipped ``default-protein`` against the gMLP that was ``default-protein`` before it.

The gMLP is rebuilt from its recorded architecture (gmlp-small: dim 128, depth 6, 128-residue windows, MLP head) with
random weights: speed does not depend on the weight values. Both embed the same real proteins (the first ``--n`` of
``../shared/data/mycoplasma-orthogroups``) through ``SequenceEncoder.embed`` (one thread unless ``--threads``); prints one JSON object with
process CPU seconds (best of the repeats, steadier than wall time on a shared machine) and residues per CPU second.

    python benchmarks/default_speed.py --n 256
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import phylocl
from phylocl.data.layouts import iter_fasta
from phylocl.models.encoder import SequenceEncoder
from phylocl.models.encoder_config import EncoderConfig

MYCOPLASMA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mycoplasma-orthogroups" / "sequences.fasta"
# the architecture of default-protein v2 (the gMLP shipped until the k-mer profile encoder replaced it)
GMLP_V2 = dict(backbone="gmlp", dim=128, depth=6, max_len=128, embed_dim=128, alphabet="protein", ffn_dim=512,
               heads=4, pooling="mean", head="mlp", dropout=0.0, drop_path=0.0, name="default-protein-gmlp")


def cpu_seconds(encoder, seqs, *, batch_size: int, repeats: int) -> float:
    encoder.embed(seqs[:8], batch_size=batch_size)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.process_time()
        encoder.embed(seqs, batch_size=batch_size)
        best = min(best, time.process_time() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=256, help="proteins embedded (default %(default)s)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default %(default)s)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    seqs = [r.sequence for _, r in zip(range(args.n), iter_fasta(MYCOPLASMA))]
    residues = sum(map(len, seqs))
    out = {"sequences": len(seqs), "residues": residues, "threads": args.threads}
    for name, enc in (("gmlp_v2", SequenceEncoder(config=EncoderConfig(**GMLP_V2)).eval()),
                      ("default_protein", phylocl.load_encoder("default-protein"))):
        s = cpu_seconds(enc, seqs, batch_size=args.batch_size, repeats=args.repeats)
        out[name] = {"cpu_seconds": round(s, 3), "residues_per_cpu_second": round(residues / s)}
    out["speedup"] = round(out["default_protein"]["residues_per_cpu_second"]
                           / out["gmlp_v2"]["residues_per_cpu_second"], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
