"""Learning curves of ``phylocl train`` runs: dev figures and the same figures on training families, against pairs
seen, read from ``DIR/logs/metrics.csv`` (see :mod:`phylocl.workflows.callbacks`).

A dev curve that rises with the training-family curve means the encoder learns something that transfers; a
training-family curve that keeps rising while the dev curve stays flat means it memorises families::

    python -m phylocl.workflows.curves runs/a runs/b -o curves.png --metric auc1
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from phylocl.atomic import atomic_path
from phylocl.errors import InputError

__all__ = ["read_curves", "plot_curves"]


def read_curves(run: str | Path, *, metric: str = "map_r") -> dict[str, list[tuple[float, float]]]:
    """``{"val": [(pairs_seen, value), ...], "train_fam": [...]}`` of one run (rows with the metric only)."""
    path = Path(run) / "logs" / "metrics.csv"
    if not path.is_file():
        raise InputError("no logs/metrics.csv (not a phylocl train folder?)", path=Path(run))
    curves: dict[str, list[tuple[float, float]]] = {"val": [], "train_fam": []}
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        try:
            for row in reader:
                seen = row.get("val/pairs_seen")
                for prefix, points in curves.items():
                    value = row.get(f"{prefix}/{metric}")
                    if value and seen:
                        points.append((_number(seen, path, reader.line_num), _number(value, path, reader.line_num)))
        except UnicodeDecodeError:  # decoded a block at a time: the line is not known
            raise InputError("not UTF-8 text, so not a metrics table written by phylocl train", path=path) from None
        except csv.Error as err:
            raise InputError(f"not a metrics table written by phylocl train ({err})", path=path,
                             line=reader.line_num) from None
    logged = sorted(c.split("/", 1)[1] for c in reader.fieldnames or () if c.startswith("val/") and c != "val/pairs_seen")
    if logged and metric not in logged:  # a misspelt --metric, not an older run
        raise InputError(f"no val/{metric} logged; the metric must be one of {', '.join(logged)}", path=path)
    if not curves["val"]:
        raise InputError(f"no val/{metric} with val/pairs_seen logged (an older run, or validation off)", path=path)
    return curves


def _number(text: str, path: Path, line: int) -> float:
    """A figure of the table, or :class:`InputError` naming the file and line."""
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{text[:40]!r} is not a number", path=path, line=line) from None


def check_figure_format(out: str | Path) -> str:
    """The figure format of ``out`` by its suffix (``png`` without one), or :class:`InputError` listing those
    matplotlib writes (less ``pgf``, which needs a LaTeX installation)."""
    from matplotlib.figure import Figure

    fmt = Path(out).suffix.lstrip(".").lower() or "png"
    supported = set(Figure().canvas.get_supported_filetypes()) - {"pgf"}
    if fmt not in supported:
        raise InputError(f"cannot write a figure as .{fmt}; use one of .{', .'.join(sorted(supported))}", path=out)
    return fmt


def plot_curves(runs: list[str | Path], out: str | Path, *, metric: str = "map_r") -> Path:
    """One figure: per run, the dev curve (solid) and the training-family curve (dashed) of ``metric`` against
    pairs seen on a log axis; written atomically to ``out`` (PNG/SVG/PDF by its suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fmt = check_figure_format(out)
    all_curves = [read_curves(run, metric=metric) for run in runs]  # every run read before a figure is made
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for k, (run, curves) in enumerate(zip(runs, all_curves)):
        colour = f"C{k % 10}"
        for prefix, style, what in (("val", "-", "dev families"), ("train_fam", "--", "training families")):
            if curves[prefix]:
                x, y = zip(*curves[prefix])
                ax.plot(x, y, style, color=colour, marker="o", ms=3, label=f"{Path(run).name}: {what}")
    ax.set_xscale("log")
    ax.set_xlabel("training pairs seen")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format=fmt, dpi=120)
    plt.close(fig)
    return out


def main(argv=None) -> int:
    """The command line above; bad input is one line on stderr and exit status 2, as for ``phylocl``."""
    import sys

    from phylocl.outputs import check_output_file

    p = argparse.ArgumentParser(prog="python -m phylocl.workflows.curves", description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", help="phylocl train output folders")
    p.add_argument("-o", "--out", required=True, help="figure file (.png, .svg, .pdf)")
    p.add_argument("--metric", default="map_r", help="map_r (default), auc1, top1, recall@10, ...")
    args = p.parse_args(argv)
    try:
        check_output_file(args.out, inputs=[Path(r) / "logs" / "metrics.csv" for r in args.runs],
                          example="curves.png")
        print(plot_curves(args.runs, args.out, metric=args.metric))
    except (InputError, OSError) as err:
        print(f"{p.prog}: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
