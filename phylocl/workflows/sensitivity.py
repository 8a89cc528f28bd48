"""Speed/sensitivity presets of ``phylocl search`` and ``evaluate --align`` (``--sensitivity``: ``fast``,
``default``, ``sensitive``, ``very-sensitive``), as DIAMOND's ``--fast`` ... ``--very-sensitive`` and MMseqs2's
``-s``.

A preset names values of the existing options; an option given explicitly keeps its own value::

    s = resolve_sensitivity("fast", candidates=None, word_budget=None, filter_pvalue=None)
    s.candidates_for("protein"), s.word_budget    # 300, 0.2 (PRESETS["fast"])
    s.candidates_for("dna")                       # 500: DNA keeps its candidates (below)
    resolve_sensitivity("fast", candidates=None, word_budget=1.0, filter_pvalue=None).word_budget  # 1.0: exact

- ``default`` is the options' own defaults (500 candidates, exact prefilter, the MSV filter at its alphabet's
  default): a search with it is byte for byte a search without ``--sensitivity``.
- Candidates may differ by alphabet: ``fast`` keeps DNA at 500, because on the DNA dev sets fewer candidates cost
  what the word budget alone does not (nucleotide families: aligned AUC1 0.940 at 500, 0.794 at 300 with the budget,
  0.940 at 500 with it).
- The word budget applies to sparse indexes only (k-mer profile models: ``--index`` of ``phylocl index --fasta``,
  ``--db`` with such a model). Where the index is not sparse (``index --embeddings``, ``--db`` with a dense model) a
  preset's budget is left out and a note says so; an explicit ``--word-budget`` there stays refused. ``evaluate
  --align`` searches exactly (no word budget): its figures for a preset with a budget are those of its candidates.
- The MSV filter's threshold is not part of any preset: each keeps the alphabet's default (protein P <= 0.02, DNA
  off), so DNA runs stay unfiltered unless ``--filter-pvalue`` is given.

The values were measured on the dev split and at 10^5-10^6 proteins (docs/retrieval.md, "Speed/sensitivity presets").
"""

from __future__ import annotations

from dataclasses import dataclass

from phylocl.arguments import option
from phylocl.errors import InputError

__all__ = ["PRESETS", "SENSITIVITIES", "DEFAULT_CANDIDATES", "Sensitivity", "resolve_sensitivity", "describe"]

DEFAULT = "default"
DEFAULT_CANDIDATES = 500  # embedding candidates per query, MSV-filtered, then aligned (docs/retrieval.md, "Ungapped filter")
PRESETS: dict[str, dict] = {  # name -> the options it sets: candidates (an int, or per alphabet), word_budget (None: exact)
    "fast": {"candidates": {"protein": 300, "dna": DEFAULT_CANDIDATES}, "word_budget": 0.2},
    DEFAULT: {"candidates": DEFAULT_CANDIDATES, "word_budget": None},
    "sensitive": {"candidates": 1000, "word_budget": None},
    "very-sensitive": {"candidates": 2000, "word_budget": None},
}
SENSITIVITIES = tuple(PRESETS)


@dataclass(frozen=True)
class Sensitivity:
    """A preset resolved against the options given: ``candidates`` (the caller's, else the preset's: an int or
    ``{alphabet: int}``; :meth:`candidates_for`), ``word_budget`` (``None``: exact), ``filter_pvalue`` (``None``: the
    alphabet's default); ``preset_budget``: the budget is the preset's, not the caller's (left out, with a note,
    where the index is not sparse)."""

    name: str
    candidates: int | dict
    word_budget: float | None
    filter_pvalue: float | None
    preset_budget: bool = False

    @property
    def named(self) -> bool:
        """Whether the preset differs from the options' defaults (the run's summary names it)."""
        return self.name != DEFAULT

    def candidates_for(self, alphabet: str | None) -> int:
        """Candidates per query for queries of ``alphabet`` (``None``, not known yet: the protein value)."""
        if isinstance(self.candidates, dict):
            return self.candidates.get(alphabet or "protein", self.candidates["protein"])
        return self.candidates

    def budget_for(self, *, sparse: bool) -> tuple[float | None, list[str]]:
        """The word budget a search of an index (``sparse`` or not) uses, and the notes to show: a preset's budget
        on an index that is not sparse is dropped (an explicit one is left to be refused by the caller's check)."""
        if sparse or not self.preset_budget:
            return self.word_budget, []
        return None, [f"{option('sensitivity')} {self.name}: its word budget ({self.word_budget:g}) applies to "
                      "sparse indexes (k-mer profile models) only; this index is searched exactly"]


def resolve_sensitivity(sensitivity: str | None, *, candidates: int | None, word_budget: float | None,
                        filter_pvalue: float | None) -> Sensitivity:
    """The values of preset ``sensitivity`` (``None``: ``default``), an option given (not ``None``) overriding the
    preset's; :class:`InputError` (one line) for a name that is not a preset."""
    name = DEFAULT if sensitivity is None else sensitivity
    if not isinstance(name, str) or name not in PRESETS:
        raise InputError(f"{option('sensitivity')} must be one of {', '.join(SENSITIVITIES)}, got {sensitivity!r}")
    preset = PRESETS[name]
    return Sensitivity(name=name, candidates=preset["candidates"] if candidates is None else candidates,
                       word_budget=preset["word_budget"] if word_budget is None else word_budget,
                       filter_pvalue=filter_pvalue,
                       preset_budget=word_budget is None and preset["word_budget"] is not None)


def describe() -> str:
    """The presets' values as the command's help names them: ``fast = --candidates 300 (DNA 500) --word-budget
    0.2; ...``."""
    parts = []
    for name, preset in PRESETS.items():
        c = preset["candidates"]
        count = c if isinstance(c, int) else c["protein"]
        dna = f" (DNA {c['dna']})" if isinstance(c, dict) and c.get("dna", count) != count else ""
        budget = f" --word-budget {preset['word_budget']:g}" if preset["word_budget"] is not None else ""
        parts.append(f"{name} = --candidates {count}{dna}{budget}")
    return "; ".join(parts)
