"""Synthetic ortholog families evolved along random trees (``phylocl simulate``).

Per family, independently:

1. a random ultrametric Yule (pure-birth) tree over ``members`` leaves, rescaled so that every leaf is ``rate``
   substitutions per site from the root (two leaves are at most ``2 * rate`` apart); with ``divergence = (lo,
   hi)`` the tree's diameter (``2 * rate``) is instead drawn log-uniformly from ``[lo, hi]`` per family, a spread
   from near-identical to the twilight zone;
2. a random root sequence of ``length`` residues drawn from the model's stationary frequencies;
3. evolution down every branch by :class:`~phylocl.data.simulator.evolution.EvolutionModel`: substitutions by the BLOSUM62
   chain (protein) or K80 (DNA, ``kappa = 1`` is JC69; see :mod:`phylocl.data.simulator.substitution`), discrete-gamma rate
   heterogeneity across sites (``gamma_shape``; ``None`` = equal rates, see :mod:`phylocl.data.simulator.rates`) and
   insertions/deletions (``indel_rate`` events per substitution per site, lengths ``indel_length`` with mean
   ``indel_mean``; see :mod:`phylocl.data.simulator.indels`).

With ``indel_rate = 0`` all sequences of a family stay aligned site by site, so for two leaves at patristic
distance ``d`` the expected fraction of differing sites is ``3/4 (1 - e^(-4d/3))`` under JC69 with equal rates
(:meth:`EvolutionModel.expected_identity` in general).

Output layout (read back by :func:`phylocl.data.layouts.read_dataset`): ``<family>.fasta`` per family,
``trees/<family>.nwk`` (leaves named by sequence id, branch lengths in substitutions per site) and
``simulation.json`` (the parameters).
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from Bio import Phylo
from Bio.Phylo.BaseTree import Clade, Tree

from phylocl.atomic import atomic_dir
from phylocl.data.simulator.evolution import EvolutionModel
from phylocl.data.simulator.indels import IndelModel
from phylocl.errors import InputError
from phylocl.resources import available_memory, human_bytes

__all__ = ["SimulationParams", "SimulatedFamily", "yule_tree", "iter_families", "simulate_families", "write_simulation"]


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
    gamma_shape: float | None = None
    gamma_categories: int = 4
    indel_length: str = "geometric"
    indel_mean: float = 2.0
    divergence: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        for name in ("families", "members", "length", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"{name} must be an integer, got {value!r}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        numbers = {"rate": self.rate, "indel_rate": self.indel_rate, "kappa": self.kappa, "indel_mean": self.indel_mean,
                   "gamma_shape": self.gamma_shape, "divergence": self.divergence}
        for name, value in numbers.items():
            for v in (value if isinstance(value, (tuple, list)) else (value,)):
                if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                                      or not math.isfinite(v)):
                    raise ValueError(f"{name} must be a finite number, got {v!r}")
        if self.gamma_shape is not None and self.gamma_shape <= 0:
            raise ValueError(f"gamma shape (--gamma-shape) must be > 0, got {self.gamma_shape}")
        if self.families < 1 or self.members < 2 or self.length < 1:
            raise ValueError(f"need families >= 1, members >= 2, length >= 1; got {self.families}, "
                             f"{self.members}, {self.length}")
        if self.indel_mean > self.length:
            raise ValueError(f"indel_mean ({self.indel_mean:g}) must be <= length ({self.length}): an indel "
                             "longer than the sequence")
        if self.alphabet not in ("protein", "dna"):
            raise ValueError(f"alphabet must be protein or dna, got {self.alphabet!r}")
        if not (self.rate >= 0 and self.indel_rate >= 0 and self.kappa > 0):
            raise ValueError(f"need rate >= 0, indel_rate >= 0, kappa > 0; got {self.rate}, {self.indel_rate}, "
                             f"{self.kappa}")
        if self.divergence is not None:
            lo, hi = (float(v) for v in self.divergence)
            if not 0 < lo <= hi:
                raise ValueError(f"divergence must be (min, max) with 0 < min <= max, got {self.divergence}")
            object.__setattr__(self, "divergence", (lo, hi))
        self.model()  # validates gamma and indel settings

    def family_bytes(self) -> int:
        """Estimated peak memory of evolving one family, in bytes: per site of a branch, the substitution CDFs
        (states x 8 B, twice) and the state arrays; per leaf, its states (8 B) and its text (about 8 B)."""
        states = 20 if self.alphabet == "protein" else 4
        return int(self.length * (16 * states + 64) + self.members * self.length * 16)

    def output_bytes(self) -> int:
        """Estimated size of the written simulation, in bytes: every sequence with its FASTA header and the
        Newick trees (about 40 B per member)."""
        header = len(f">fam{self.families}_s{self.members}\n") + 1
        return int(self.families * self.members * (self.length + header + 40))

    def check_fits(self, out_dir: str | Path) -> None:
        """Raise :class:`~phylocl.errors.InputError` when one family cannot be held in this machine's memory or
        the whole output cannot fit on the disk of ``out_dir`` (estimates in the message)."""
        need, have = self.family_bytes(), available_memory()
        if have is not None and need > have / 2:
            raise InputError(f"one family of {self.members:,} members x {self.length:,} residues needs about "
                             f"{human_bytes(need)} of memory to evolve, more than half the {human_bytes(have)} available; use fewer "
                             "--members or a shorter --length")
        parent = Path(out_dir).resolve().parent
        while not parent.exists():
            parent = parent.parent
        need, free = self.output_bytes(), shutil.disk_usage(parent).free
        if need > free:
            raise InputError(f"{self.families:,} families x {self.members:,} members x {self.length:,} residues "
                             f"would write about {human_bytes(need)}, more than the {human_bytes(free)} free", path=parent)

    def model(self) -> EvolutionModel:
        """The evolution model these parameters describe."""
        indels = IndelModel(rate=self.indel_rate, mean=self.indel_mean, distribution=self.indel_length)
        return EvolutionModel(alphabet=self.alphabet, gamma_shape=self.gamma_shape,
                              gamma_categories=self.gamma_categories, indels=indels, kappa=self.kappa)

    def height(self, rng: np.random.Generator) -> float:
        """Root-to-leaf distance of the next family: ``rate``, or half a log-uniform diameter."""
        if self.divergence is None:
            return self.rate
        lo, hi = self.divergence
        return float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) / 2


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


def iter_families(params: SimulationParams) -> Iterator[SimulatedFamily]:
    """Evolve ``params.families`` independent families one at a time (see module doc); deterministic given
    ``params.seed``. Only the family being yielded is held, so :func:`write_simulation` streams any number."""
    rng = np.random.default_rng(params.seed)
    model = params.model()
    wf, wm = len(str(params.families - 1)), len(str(params.members - 1))
    for f in range(params.families):
        name = f"fam{f:0{wf}d}"
        ids = [f"{name}_s{m:0{wm}d}" for m in range(params.members)]
        tree = yule_tree(ids, rng, height=params.height(rng))
        leaves = model.evolve(model.random_root(params.length, rng), tree, rng)
        yield SimulatedFamily(name, ids, [model.decode(leaves[i]) for i in ids], tree)


def _written_by_simulate(out_dir: Path) -> set[str]:
    """The files an earlier ``phylocl simulate`` wrote into ``out_dir`` (from its ``simulation.json``'s families
    count): ``simulation.json``, ``fam<i>.fasta`` and ``trees/fam<i>.nwk``."""
    try:
        families = int(json.loads((out_dir / "simulation.json").read_text())["params"]["families"])
    except (OSError, ValueError, KeyError, TypeError):
        families = 0  # unreadable: only simulation.json counts as ours, so every other file is named
    width = len(str(max(families, 1) - 1))
    names = {f"fam{f:0{width}d}" for f in range(families)}
    return {"simulation.json", *(f"{n}.fasta" for n in names), *(f"trees/{n}.nwk" for n in names)}


def simulate_families(params: SimulationParams) -> list[SimulatedFamily]:
    """Every family of :func:`iter_families` in a list (small simulations; tests)."""
    return list(iter_families(params))


def write_simulation(families: Iterable[SimulatedFamily], out_dir: str | Path, *, params: SimulationParams,
                     overwrite: bool = False) -> Path:
    """Write ``<family>.fasta``, ``trees/<family>.nwk`` and ``simulation.json`` into ``out_dir`` atomically.

    ``families`` may be a generator (:func:`iter_families`): each family is written as it comes. Sizes that cannot
    fit (:meth:`SimulationParams.check_fits`) are refused before anything is written.

    An existing non-empty ``out_dir`` is replaced only with ``overwrite=True`` and only if it holds a
    ``simulation.json`` (an earlier simulation), never an unrelated folder.
    """
    from phylocl.outputs import check_output_dir, refuse_foreign_files

    if isinstance(out_dir, str) and not out_dir:  # Path("") is ".": --overwrite would replace the working folder
        raise InputError("the output folder is an empty string, not a path (an unset shell variable?)")
    out_dir = check_output_dir(out_dir)  # not a file, device or pipe, not under /proc, in a writable folder
    params.check_fits(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise InputError("output exists and is not empty (use --overwrite to replace an earlier simulation)",
                             path=out_dir)
        if not (out_dir / "simulation.json").is_file():
            raise InputError("refusing to replace a folder that is not an earlier simulation (no simulation.json)",
                             path=out_dir)
        refuse_foreign_files(out_dir, _written_by_simulate(out_dir), what="the simulation")
    with atomic_dir(out_dir) as tmp:
        (tmp / "trees").mkdir()
        for fam in families:
            text = "".join(f">{i}\n{s}\n" for i, s in zip(fam.ids, fam.sequences))
            (tmp / f"{fam.name}.fasta").write_text(text)
            Phylo.write(fam.tree, str(tmp / "trees" / f"{fam.name}.nwk"), "newick", format_branch_length="%.10g")
        subst = ("BLOSUM62-derived reversible CTMC" if params.alphabet == "protein"
                 else ("JC69" if params.kappa == 1 else f"K80 (kappa={params.kappa})"))
        rates = "" if params.gamma_shape is None else f" + discrete gamma (alpha={params.gamma_shape}, " \
            f"{params.gamma_categories} categories)"
        indels = "" if params.indel_rate == 0 else f" + indels ({params.indel_length}, mean {params.indel_mean})"
        meta = {"generator": "phylocl simulate", "params": asdict(params), "model": subst + rates + indels,
                "tree": "Yule, ultrametric, root-to-leaf = rate substitutions/site" if params.divergence is None
                else "Yule, ultrametric, diameter log-uniform in divergence (substitutions/site)"}
        (tmp / "simulation.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out_dir
