"""Readable summaries of a dataset for ``phylocl inspect``."""

from __future__ import annotations

__all__ = ["format_summary"]

_ORDER = ("path", "format", "alphabet", "families", "pair_families", "sequences", "min_family_size",
          "median_family_size", "max_family_size", "min_length", "median_length", "max_length", "trees")


def format_summary(summary: dict) -> str:
    """Aligned ``key: value`` lines of :meth:`OrthologDataset.summary`, skipped families explained at the end."""
    keys = [k for k in _ORDER if k in summary]
    keys += [k for k in summary if k not in keys and k not in ("skipped", "skipped_examples", "unknown_letters")]
    width = max(len(k) for k in keys)
    lines = []
    for k in keys:
        v = summary[k]
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, list):
            v = ", ".join(map(str, v)) or "-"
        lines.append(f"{k.replace('_', ' '):<{width}}  {v}")
    n = summary.get("skipped", 0)
    if n:
        eg = ", ".join(summary.get("skipped_examples", []))
        lines.append(f"{n} famil{'y' if n == 1 else 'ies'} with fewer than 2 sequences cannot give a positive pair; "
                     f"kept as distractors (e.g. {eg})")
    letters = summary.get("unknown_letters")
    if letters:
        from phylocl.data.letters import LetterReport

        report = LetterReport()
        report.kinds = {k: dict(v) for k, v in letters.items()}
        lines += [f"{'unknown letters' if i == 0 else '':<{width}}  {line}" for i, line in enumerate(report.lines())]
    return "\n".join(lines)
