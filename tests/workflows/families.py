"""Shared helper of the search tests (test_search, test_search_align, test_search_word_budget, test_windows):
small protein families of mutated copies, and a FASTA writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np

AA = "ACDEFGHIKLMNPQRSTVWY"


def mutated_families(*, families: int, members: int, lengths: tuple[int, int], rate: float, seed: int = 0,
                     shorten: int = 0, min_length: int = 8) -> list[tuple[str, str]]:
    """``(id, sequence)`` records ``f{f}_{m}``: per family a random root of ``rng.integers(*lengths)`` residues;
    member ``m`` is the root cut to ``max(min_length, len - shorten * m)`` residues, each residue replaced by a random
    one with probability ``rate`` (one seeded generator, draws in family then member order)."""
    rng = np.random.default_rng(seed)
    out = []
    for f in range(families):
        root = rng.choice(list(AA), size=int(rng.integers(*lengths)))
        for m in range(members):
            s = root[: max(min_length, len(root) - shorten * m)].copy()
            hit = rng.random(len(s)) < rate
            s[hit] = rng.choice(list(AA), size=int(hit.sum()))
            out.append((f"f{f}_{m}", "".join(s)))
    return out


def write_fasta(path: Path, records) -> Path:
    """``records`` ``(id, sequence)`` as FASTA at ``path``; returns ``path``."""
    path.write_text("".join(f">{i}\n{s}\n" for i, s in records))
    return path
