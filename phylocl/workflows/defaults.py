"""Which method ``search``/``embed``/``evaluate`` use when no ``--model`` is given: the best *measured* one.

``phylocl/pretrained/dev-figures.json`` holds, per alphabet, the dev-split AUC1 of every candidate (``kmer:K``
baselines and shipped encoders) on each dev set of docs/models.md. :func:`choose_default` ranks the candidates
that are usable here (``kmer:K`` always; a shipped name only when its file is installed) by their mean AUC1 over
the dev sets and takes the first; ties go to the one listed first. A learned default is therefore used without
``--model`` only once its measured figures beat the k-mer baselines: a user who names no model never gets the
weaker answer. Retraining a default means re-measuring it and updating the table (the tests read it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from phylocl.errors import InputError

__all__ = ["DEV_FIGURES", "DefaultChoice", "read_dev_figures", "choose_default"]

DEV_FIGURES = Path(__file__).resolve().parents[1] / "pretrained" / "dev-figures.json"


@dataclass(frozen=True)
class DefaultChoice:
    """The method chosen for ``alphabet``; ``ranking`` lists every usable candidate with its mean dev AUC1,
    best first (``ranking[0] == (spec, score)``); ``skipped`` names table entries not installed here."""

    alphabet: str
    spec: str
    score: float
    ranking: tuple[tuple[str, float], ...]
    skipped: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line: what is used and why, e.g. ``kmer:3 (best measured protein method: ...)``."""
        others = ", ".join(f"{s} {v:.3f}" for s, v in self.ranking[1:])
        line = (f"{self.spec} (best measured {self.alphabet} method on the dev split: mean AUC1 {self.score:.3f}"
                + (f"; {others}" if others else "") + ")")
        if self.skipped:
            line += f"; not installed: {', '.join(self.skipped)}"
        return line

    def record(self) -> dict:
        """The JSON record stored with outputs (``model["default_choice"]``)."""
        return {"spec": self.spec, "alphabet": self.alphabet, "mean_dev_auc1": round(self.score, 4),
                "ranking": [[s, round(v, 4)] for s, v in self.ranking], "table": DEV_FIGURES.name}


def read_dev_figures(path: str | Path = DEV_FIGURES) -> dict[str, dict[str, dict[str, float]]]:
    """``{alphabet: {method: {dev set: AUC1}}}`` from ``path``, checked: every method of an alphabet scores the
    same dev sets, with values in [0, 1]. A malformed table raises :class:`InputError` naming the file."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read the dev-figures table ({err})", path=path) from None
    out = {}
    for alphabet in ("protein", "dna"):
        methods = raw.get(alphabet)
        if not isinstance(methods, dict) or not methods:
            raise InputError(f"the dev-figures table has no {alphabet!r} methods", path=path)
        sets = None
        for method, cells in methods.items():
            if not isinstance(cells, dict) or not cells:
                raise InputError(f"{alphabet} method {method!r} has no dev figures", path=path)
            if sets is not None and set(cells) != sets:
                raise InputError(f"{alphabet} method {method!r} scores other dev sets than the others "
                                 f"({sorted(cells)} vs {sorted(sets)})", path=path)
            sets = set(cells)
            if not all(isinstance(v, (int, float)) and 0.0 <= v <= 1.0 for v in cells.values()):
                raise InputError(f"{alphabet} method {method!r}: AUC1 values must be numbers in [0, 1]", path=path)
        out[alphabet] = {m: {k: float(v) for k, v in c.items()} for m, c in methods.items()}
    return out


def choose_default(alphabet: str, *, shipped: list[str], path: str | Path = DEV_FIGURES) -> DefaultChoice:
    """The best-measured usable method for ``alphabet`` (``protein``/``dna``); ``shipped`` = installed names.

    Candidates are the table's methods that are ``kmer:K`` or in ``shipped``; the mean AUC1 over the dev sets
    ranks them (stable: ties keep table order). Raises :class:`InputError` when none is usable.
    """
    methods = read_dev_figures(path)[alphabet]
    usable = [m for m in methods if m.startswith("kmer:") or m in shipped]
    skipped = tuple(m for m in methods if m not in usable)
    if not usable:
        raise InputError(f"no usable {alphabet} method in the dev-figures table (not installed: "
                         f"{', '.join(skipped)})", path=Path(path))
    means = [(m, sum(methods[m].values()) / len(methods[m])) for m in usable]
    ranking = tuple(sorted(means, key=lambda item: -item[1]))  # sorted() is stable: ties keep table order
    return DefaultChoice(alphabet=alphabet, spec=ranking[0][0], score=ranking[0][1], ranking=ranking,
                         skipped=skipped)
