"""Newick trees per family: finding them next to the data, reading them (Bio.Phylo) and patristic distances.

A family tree's leaves are named by sequence id; extra leaves are allowed (e.g. sequences removed as duplicates),
but every member of the family must be a leaf.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from phylocl.errors import InputError

if TYPE_CHECKING:  # Bio.Phylo is imported where a tree is read: reading FASTA (a search's queries) needs none
    from Bio.Phylo.BaseTree import Tree

__all__ = ["TREE_SUFFIXES", "find_tree", "read_tree", "has_branch_lengths", "leaf_names", "patristic_matrix",
           "check_tree_leaves", "tree_safe"]

TREE_SUFFIXES = (".nwk", ".newick", ".tree", ".treefile")


def find_tree(directory: Path, family: str, filename: str | None = None) -> Path | None:
    """The Newick file of ``family`` in ``directory`` or ``directory/trees``, or ``None``.

    Candidates, in order: ``<family><suffix>`` then ``<filename><suffix>`` (IQ-TREE writes ``OG1.fa.treefile``),
    first next to the sequences, then in a ``trees/`` subfolder; suffixes from :data:`TREE_SUFFIXES`. A candidate
    that is a broken symbolic link is refused (:class:`InputError`), not skipped.
    """
    stems = [family] + ([filename] if filename and filename != family else [])
    for folder in (directory, directory / "trees"):
        for stem in stems:
            for sfx in TREE_SUFFIXES:
                p = folder / f"{stem}{sfx}"
                if p.is_file():
                    return p
                if p.is_symlink():  # a link whose target is gone: the family would silently lose its tree
                    raise InputError(f"a broken symbolic link: its target {os.readlink(p)} does not exist", path=p)
    return None


def read_tree(path: str | Path) -> Tree:
    """Read one Newick tree; :class:`InputError` naming the file if it cannot be parsed."""
    from Bio import Phylo

    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(256)
        start = head.removeprefix(b"\xef\xbb\xbf").lstrip()
        if start[:6].upper() == b"#NEXUS":  # read as Newick, its words became leaves ("trees"), none of the family's
            raise InputError("a NEXUS file, not a Newick tree; save the tree as Newick (one line ending in ';')",
                             path=path, line=head.count(b"\n", 0, len(head) - len(start)) + 1)
        trees = list(Phylo.parse(str(path), "newick"))
    except InputError:
        raise
    except Exception as err:  # Bio.Phylo raises NewickError, ValueError, ... depending on the defect
        raise InputError(f"not a readable Newick tree ({err})", path=path) from None
    if not trees:
        raise InputError("no Newick tree in file", path=path)
    return trees[0]


_NEWICK_SAFE = re.compile(r"[^A-Za-z0-9_.\-]")  # what tree builders keep of a name; the rest they write as '_'


def tree_safe(name: str) -> str:
    """``name`` as tree builders such as IQ-TREE write it into a tree: every character other than a letter, a digit,
    ``_``, ``.`` or ``-`` replaced by ``_`` (``sp|P12345|ABC_HUMAN`` -> ``sp_P12345_ABC_HUMAN``)."""
    return _NEWICK_SAFE.sub("_", name)


def leaf_names(tree: Tree, names: Sequence[str]) -> list[str | None]:
    """The leaf of ``tree`` that stands for each of ``names``: the leaf of that very name, else, for a name that a tree
    builder rewrote (:func:`tree_safe`), the one leaf of its rewritten form, when no other member's name or leaf
    claims it; ``None`` where neither is found."""
    leaves = Counter(c.name for c in tree.get_terminals())
    out: list[str | None] = [n if leaves[n] else None for n in names]
    if all(out):
        return out
    claimed = Counter(tree_safe(n) for n in names)  # two members rewritten alike cannot be told apart
    exact = set(names)
    for i, n in enumerate(names):
        safe = tree_safe(n)
        if out[i] is None and leaves[safe] == 1 and claimed[safe] == 1 and safe not in exact:
            out[i] = safe
    return out


def check_tree_leaves(tree: Tree, names: Sequence[str], *, path: str | Path, family: str) -> None:
    """Raise :class:`InputError` if some of ``names`` are not leaves of ``tree`` (:func:`leaf_names`: by name, or
    as a tree builder rewrote it) or a leaf name repeats."""
    counts = Counter(c.name for c in tree.get_terminals())
    found = leaf_names(tree, names)
    twice = [leaf for leaf in found if leaf is not None and counts[leaf] > 1]
    if twice:
        raise InputError(f"leaf {twice[0]!r} appears twice in the tree of family {family!r}", path=path)
    missing = [n for n, leaf in zip(names, found) if leaf is None]
    if missing:
        used = set(names) | {leaf for leaf in found if leaf is not None}
        others = [leaf for leaf in counts if leaf not in used][:3]  # what the tree calls them instead
        shown = f"; the tree's other leaves are e.g. {', '.join(repr(o) for o in others)}" if others else ""
        raise InputError(
            f"tree of family {family!r} has no leaf for {len(missing)} of its {len(names)} sequence(s) "
            f"(e.g. {', '.join(repr(m) for m in missing[:3])}){shown}; leaves must be named by sequence id (or "
            "by the id with characters other than letters, digits, '_', '.' and '-' written as '_', as IQ-TREE and "
            "other tree builders write them)",
            path=path,
        )


def has_branch_lengths(tree: Tree) -> bool:
    """Whether any branch below the root of ``tree`` has a length (the root's own is not a branch between leaves)."""
    return any(c.branch_length is not None for c in tree.find_clades() if c is not tree.root)


def patristic_matrix(tree: Tree, names: Sequence[str]) -> np.ndarray:
    """Patristic (path-length) distances between the leaves ``names``, shape ``(n, n)`` float64, zero diagonal.

    One post-order pass: for every internal node, each pair of its child subtrees gets
    ``d(a, b) = depth(a) + depth(b) - 2 * depth(node)`` in one block assignment (missing branch lengths count 0).
    Units are those of the tree's branch lengths (substitutions per site for ML trees and for ``simulate``). A tree
    without any branch length (a topology, e.g. a species tree or a consensus) gives the number of edges between
    the leaves instead, so that the samplers' "distant" still means far apart on the tree (before, every distance
    was 0: ``distant`` drew uniformly and ``hardest`` paired each member with the same one).
    """
    pos = {leaf: i for i, leaf in enumerate(leaf_names(tree, names)) if leaf is not None}
    n = len(names)
    depth = tree.depths(unit_branch_lengths=not has_branch_lengths(tree))
    leaf_depth = np.zeros(n)
    found = np.zeros(n, dtype=bool)
    dist = np.zeros((n, n))
    empty = np.zeros(0, dtype=np.int64)
    under: dict[int, np.ndarray] = {}
    for clade in tree.find_clades(order="postorder"):
        if clade.is_terminal():
            i = pos.get(clade.name)
            if i is None or found[i]:
                under[id(clade)] = empty
            else:
                found[i] = True
                leaf_depth[i] = depth[clade]
                under[id(clade)] = np.array([i])
            continue
        parts = [under.pop(id(c)) for c in clade.clades]
        h = depth[clade]
        for a in range(len(parts)):
            for b in range(a + 1, len(parts)):
                A, B = parts[a], parts[b]
                if A.size and B.size:
                    block = leaf_depth[A][:, None] + leaf_depth[B][None, :] - 2.0 * h  # (|A|, |B|)
                    dist[np.ix_(A, B)] = block
                    dist[np.ix_(B, A)] = block.T
        under[id(clade)] = np.concatenate(parts) if parts else empty
    if not found.all():
        missing = [names[i] for i in np.flatnonzero(~found)[:3]]
        raise ValueError(f"{int((~found).sum())} name(s) are not leaves of the tree, e.g. {missing}")
    return dist
