"""The import map of ``phylocl/``: which module imports which, read from the source with ``ast``.

Every ``import`` and ``from ... import`` counts, at module level and inside functions (an import hidden in a function
body is still a dependency; only imports under ``if TYPE_CHECKING:`` are left out: they never run).
``from phylocl.models import persistence`` counts as an import of the submodule ``phylocl.models.persistence``.
A package's ``__init__`` is a module like any other; importing ``phylocl.a.b`` is not counted as importing
``phylocl.a`` (the package ``__init__`` files import their names lazily).

Layers, lowest first (:data:`LAYERS`); a module may import its own layer and the layers below it:

    base        phylocl/__init__ and the other top-level modules (errors, atomic, sparse_rows, configtools ...)
    data        phylocl/data/ (the simulator in phylocl/data/simulator/)
    models      phylocl/models/
    losses      phylocl/losses/
    training    phylocl/training/, phylocl/config.py (the training schema)
    retrieval   phylocl/retrieval/
    diagnostics phylocl/diagnostics/ (representation health: embeddings in, numbers out)
    align       phylocl/align/ (alignment stage of search)
    workflows   phylocl/workflows/
    cli         phylocl/cli.py, phylocl/cli_parser.py

Run from the repository root: ``python benchmarks/import_map.py [--png docs/figures/import_map.png]`` prints
``{"modules", "imports", "cycles", "upward"}`` as JSON (the last two must be empty lists) and draws the map.
``tests/test_import_map.py`` asserts the same.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "phylocl"

LAYERS = ["base", "data", "models", "losses", "training", "retrieval", "diagnostics", "align", "workflows", "cli"]
_TOP = {"cli": "cli", "cli_parser": "cli", "config": "training"}  # top-level modules outside the base layer


def module_name(path: Path, package: Path = PACKAGE) -> str:
    """``phylocl/models/kmer.py`` -> ``phylocl.models.kmer``; ``phylocl/data/__init__.py`` -> ``phylocl.data``."""
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    """The layer of a ``phylocl`` module (see the module docstring)."""
    parts = module.split(".")
    if len(parts) == 1:
        return "base"
    if len(parts) == 2 and not (PACKAGE / parts[1]).is_dir():
        return _TOP.get(parts[1], "base")
    return parts[1]


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_package: bool, modules: set[str]):
    """``(target module, line)`` of every phylocl import in ``tree`` (skipping ``if TYPE_CHECKING:`` blocks)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _type_checking_only(node):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "phylocl":
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != "phylocl":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield (sub if sub in modules else base), node.lineno


def import_graph(package: Path = PACKAGE) -> dict[str, dict[str, int]]:
    """``{module: {imported module: first line}}`` for every module of ``package`` (targets outside the package
    tree, e.g. a name that is not a module, resolve to the module that defines it)."""
    files = {module_name(p, package): p for p in sorted(package.rglob("*.py"))}
    modules = set(files)
    graph: dict[str, dict[str, int]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        edges: dict[str, int] = {}
        for target, line in _imports(tree, name, path.name == "__init__.py", modules):
            while target not in modules and "." in target:  # `import phylocl.x.y.z` of a name: its module
                target = target.rsplit(".", 1)[0]
            if target != name and target in modules:
                edges.setdefault(target, line)
        graph[name] = edges
    return graph


def find_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted; sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def upward_imports(graph: dict[str, dict[str, int]]) -> list[str]:
    """``"a (layer) -> b (layer), line N"`` for every import of a higher layer."""
    rank = {name: i for i, name in enumerate(LAYERS)}
    out = []
    for src, edges in sorted(graph.items()):
        for dst, line in sorted(edges.items()):
            if rank[layer_of(dst)] > rank[layer_of(src)]:
                out.append(f"{src} ({layer_of(src)}) -> {dst} ({layer_of(dst)}), line {line}")
    return out


def layer_counts(graph: dict[str, dict[str, int]]) -> dict[tuple[str, str], int]:
    """``{(importing layer, imported layer): number of module imports}`` between different layers."""
    out: dict[tuple[str, str], int] = {}
    for src, edges in graph.items():
        for dst in edges:
            pair = (layer_of(src), layer_of(dst))
            if pair[0] != pair[1]:
                out[pair] = out.get(pair, 0) + 1
    return out


def draw(graph: dict[str, dict[str, int]], path: Path) -> None:
    """Top: the layers, lowest left, with one arc per pair of layers that import each other (width and label: the
    number of module imports). Bottom: every module in its layer's column and an arrow per import (grey within a
    layer, blue to a lower layer, red if one ever points up)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rank = {name: i for i, name in enumerate(LAYERS)}
    columns: dict[str, list[str]] = {layer: [] for layer in LAYERS}
    for name in sorted(graph):
        columns[layer_of(name)].append(name)
    fig, (top, ax) = plt.subplots(2, 1, figsize=(22, 19), gridspec_kw={"height_ratios": [1, 2.6]})
    for (src, dst), n in sorted(layer_counts(graph).items()):
        x0, x1 = rank[src] * 3.0, rank[dst] * 3.0
        up = x1 > x0
        top.annotate("", xy=(x1, 0.08), xytext=(x0, 0.08),
                     arrowprops={"arrowstyle": "->", "color": "red" if up else "tab:blue", "alpha": 0.55,
                                 "lw": 0.6 + 1.2 * n ** 0.5, "connectionstyle": f"arc3,rad={-0.35 if x1 < x0 else 0.35}",
                                 "shrinkA": 14, "shrinkB": 14})
        mid, height = (x0 + x1) / 2, 0.08 - 0.175 * abs(x1 - x0)  # the arc's lowest point (half its bend)
        top.text(mid, height, str(n), fontsize=8, ha="center", va="center", color="0.25",
                 bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8})
    for layer in LAYERS:
        top.text(rank[layer] * 3.0, 0.08, f"{layer}\n{len(columns[layer])} modules", fontsize=11, ha="center",
                 va="center", weight="bold", bbox={"boxstyle": "round,pad=0.4", "fc": "#eef3fb", "ec": "0.5"})
    top.set_xlim(-1.8, (len(LAYERS) - 1) * 3.0 + 1.8)
    top.set_ylim(-0.175 * (len(LAYERS) - 1) * 3.0 - 0.5, 0.6)
    top.axis("off")
    top.set_title("phylocl layers, lowest left: an arc per pair of layers, labelled with the number of module "
                  "imports (all point from a higher layer to a lower one)", fontsize=13)
    tallest = max(len(c) for c in columns.values())
    pos = {}
    for x, layer in enumerate(LAYERS):
        for y, name in enumerate(columns[layer]):
            pos[name] = (x * 3.0, tallest - y * (tallest / max(len(columns[layer]), 1)))
    for src, edges in graph.items():
        for dst in edges:
            (x0, y0), (x1, y1) = pos[src], pos[dst]
            up = rank[layer_of(dst)] > rank[layer_of(src)]
            same = layer_of(dst) == layer_of(src)
            color, alpha = ("red", 0.9) if up else ("0.5", 0.3) if same else ("tab:blue", 0.12)
            ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                        arrowprops={"arrowstyle": "->", "color": color, "alpha": alpha, "lw": 0.6,
                                    "connectionstyle": "arc3,rad=0.25" if same else "arc3,rad=0.0"})
    for name, (x, y) in pos.items():
        short = name.split(".", 2)[-1] if name.count(".") >= 2 else name.replace("phylocl.", "") or "phylocl"
        ax.text(x, y, short, fontsize=7, ha="center", va="center",
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "0.7", "lw": 0.4})
    for x, layer in enumerate(LAYERS):
        ax.text(x * 3.0, tallest + 1.5, layer, fontsize=11, ha="center", va="bottom", weight="bold")
    ax.set_xlim(-1.8, (len(LAYERS) - 1) * 3.0 + 1.8)
    ax.set_ylim(-1, tallest + 3)
    ax.axis("off")
    ax.set_title("every module in its layer; one arrow per import, function-level imports included (blue: to a "
                 "lower layer, grey: within the layer; an upward import would be red)", fontsize=13)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--png", type=Path, help="draw the map into this PNG file")
    args = parser.parse_args(argv)
    graph = import_graph()
    cycles, upward = find_cycles(graph), upward_imports(graph)
    if args.png:
        draw(graph, args.png)
    print(json.dumps({"modules": len(graph), "imports": sum(len(e) for e in graph.values()),
                      "cycles": cycles, "upward": upward}, indent=1))
    return 1 if cycles or upward else 0


if __name__ == "__main__":
    raise SystemExit(main())
