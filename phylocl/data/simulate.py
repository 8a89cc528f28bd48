"""Synthetic ortholog families evolved along random trees (``phylocl simulate``).

Per family, independently:

1. a random ultrametric Yule (pure-birth) tree over ``members`` leaves, rescaled so that every leaf is ``rate``
   substitutions per site from the root (two leaves are at most ``2 * rate`` apart);
2. a random root sequence of ``length`` residues drawn from the model's stationary frequencies;
3. evolution down every branch of length ``t``: each site changes state by the transition matrix ``P(t)`` of the
   model (protein: the BLOSUM62-derived reversible chain, ``expm(Q t)``; DNA: K80 closed form, ``kappa = 1`` is
   JC69; see :mod:`phylocl.data.substitution`); then ``Poisson(indel_rate * t * len)`` indel events, each an
   insertion (residues from the stationary frequencies) or a deletion with equal probability, of geometric length
   (mean 2).

With ``indel_rate = 0`` all sequences of a family stay aligned site by site, so for two leaves at patristic
distance ``d`` the expected fraction of differing sites is ``3/4 (1 - e^(-4d/3))`` under JC69.

Output layout (read back by :func:`phylocl.data.layouts.read_dataset`): ``<family>.fasta`` per family,
``trees/<family>.nwk`` (leaves named by sequence id, branch lengths in substitutions per site) and
``simulation.json`` (the parameters).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from Bio import Phylo
from Bio.Phylo.BaseTree import Clade, Tree

from phylocl.atomic import atomic_dir
from phylocl.data.substitution import (AMINO_ACIDS, NUCLEOTIDES, k80_transition_matrix, protein_rate_matrix,
                                       transition_matrix)
from phylocl.errors import InputError

__all__ = ["SimulationParams", "SimulatedFamily", "yule_tree", "simulate_families", "write_simulation"]


@dataclass(frozen=True)
class SimulationParams:
    """Parameters of :func:`simulate_families` (validated on construction)."""

    families: int
    members: int
    length: int
    alphabet: str = "protein"
    seed: int = 0
    rate: float = 0.5
    indel_rate: float = 0.0
    kappa: float = 2.0

    def __post_init__(self) -> None:
        if self.families < 1 or self.members < 2 or self.length < 1:
            raise ValueError(f"need families >= 1, members >= 2, length >= 1; got {self.families}, "
                             f"{self.members}, {self.length}")
        if self.alphabet not in ("protein", "dna"):
            raise ValueError(f"alphabet must be protein or dna, got {self.alphabet!r}")
        if not (self.rate >= 0 and self.indel_rate >= 0 and self.kappa > 0):
            raise ValueError(f"need rate >= 0, indel_rate >= 0, kappa > 0; got {self.rate}, {self.indel_rate}, "
                             f"{self.kappa}")


@dataclass
class SimulatedFamily:
    name: str
    ids: list[str]
    sequences: list[str]
    tree: Tree


def yule_tree(names: list[str], rng: np.random.Generator, *, height: float) -> Tree:
    """Random ultrametric pure-birth tree over leaves ``names``, root-to-leaf distance ``height``."""
    root = Clade(branch_length=0.0)
    root.clades = [Clade(branch_length=0.0), Clade(branch_length=0.0)]
    active = list(root.clades)
    while True:
        wait = rng.exponential(1.0 / len(active))
        for c in active:
            c.branch_length += wait
        if len(active) == len(names):
            break
        parent = active.pop(int(rng.integers(len(active))))
        parent.clades = [Clade(branch_length=0.0), Clade(branch_length=0.0)]
        active += parent.clades
    for c, k in zip(active, rng.permutation(len(names))):
        c.name = names[k]
    tree = Tree(root=root, rooted=True)
    total = max(tree.depths().values())
    for clade in tree.find_clades():
        clade.branch_length = clade.branch_length * height / total if total > 0 else 0.0
    return tree


class _Model:
    """States, stationary frequencies and ``P(t)`` of the substitution model for one alphabet."""

    def __init__(self, alphabet: str, kappa: float) -> None:
        self.letters = AMINO_ACIDS if alphabet == "protein" else NUCLEOTIDES
        if alphabet == "protein":
            self.pi, self.q = protein_rate_matrix()
        else:
            self.pi, self.q = np.full(4, 0.25), None
        self.kappa = kappa

    def p(self, t: float) -> np.ndarray:
        return transition_matrix(self.q, self.pi, t) if self.q is not None else k80_transition_matrix(t, self.kappa)


def _substitute(states: np.ndarray, p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    cdf = np.cumsum(p, axis=1)[states]  # (L, S)
    u = rng.random(len(states))[:, None]
    return np.minimum((u > cdf).sum(axis=1), p.shape[0] - 1)


def _indels(states: np.ndarray, t: float, rate: float, pi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    for _ in range(int(rng.poisson(rate * t * len(states)))):
        size = int(rng.geometric(0.5))
        pos = int(rng.integers(len(states) + 1))
        if rng.random() < 0.5:
            states = np.concatenate([states[:pos], rng.choice(len(pi), size=size, p=pi), states[pos:]])
        elif len(states) - size >= 1:
            states = np.concatenate([states[:pos], states[pos + size:]])
    return states


def simulate_families(params: SimulationParams) -> list[SimulatedFamily]:
    """Evolve ``params.families`` independent families (see module doc); deterministic given ``params.seed``."""
    rng = np.random.default_rng(params.seed)
    model = _Model(params.alphabet, params.kappa)
    wf, wm = len(str(params.families - 1)), len(str(params.members - 1))
    out = []
    for f in range(params.families):
        name = f"fam{f:0{wf}d}"
        ids = [f"{name}_s{m:0{wm}d}" for m in range(params.members)]
        tree = yule_tree(ids, rng, height=params.rate)
        seqs: dict[str, np.ndarray] = {}
        stack = [(tree.root, rng.choice(len(model.pi), size=params.length, p=model.pi))]
        while stack:
            clade, states = stack.pop()
            for child in clade.clades:
                t = float(child.branch_length)
                new = _substitute(states, model.p(t), rng)
                if params.indel_rate > 0:
                    new = _indels(new, t, params.indel_rate, model.pi, rng)
                if child.is_terminal():
                    seqs[child.name] = new
                else:
                    stack.append((child, new))
        letters = np.array(list(model.letters))
        out.append(SimulatedFamily(name, ids, ["".join(letters[seqs[i]]) for i in ids], tree))
    return out


def write_simulation(families: list[SimulatedFamily], out_dir: str | Path, *, params: SimulationParams,
                     overwrite: bool = False) -> Path:
    """Write ``<family>.fasta``, ``trees/<family>.nwk`` and ``simulation.json`` into ``out_dir`` atomically.

    An existing non-empty ``out_dir`` is replaced only with ``overwrite=True`` and only if it holds a
    ``simulation.json`` (an earlier simulation), never an unrelated folder.
    """
    from phylocl.outputs import check_output_dir

    out_dir = check_output_dir(out_dir)  # not a file, device or pipe, not under /proc, in a writable folder
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise InputError("output exists and is not empty (use --overwrite to replace an earlier simulation)",
                             path=out_dir)
        if not (out_dir / "simulation.json").is_file():
            raise InputError("refusing to replace a folder that is not an earlier simulation (no simulation.json)",
                             path=out_dir)
    with atomic_dir(out_dir) as tmp:
        (tmp / "trees").mkdir()
        for fam in families:
            text = "".join(f">{i}\n{s}\n" for i, s in zip(fam.ids, fam.sequences))
            (tmp / f"{fam.name}.fasta").write_text(text)
            Phylo.write(fam.tree, str(tmp / "trees" / f"{fam.name}.nwk"), "newick", format_branch_length="%.10g")
        meta = {"generator": "phylocl simulate", "params": asdict(params),
                "model": "BLOSUM62-derived reversible CTMC" if params.alphabet == "protein"
                else ("JC69" if params.kappa == 1 else f"K80 (kappa={params.kappa})"),
                "tree": "Yule, ultrametric, root-to-leaf = rate substitutions/site"}
        (tmp / "simulation.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out_dir
