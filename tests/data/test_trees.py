"""Patristic distances from Newick trees, against Bio.Phylo's own pairwise distance."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from Bio import Phylo

from phylocl.data.simulator.simulate import yule_tree
from phylocl.data.trees import check_tree_leaves, patristic_matrix, read_tree
from phylocl.errors import InputError


def test_matches_bio_phylo_distance_on_random_trees():
    rng = np.random.default_rng(0)
    for n in (2, 3, 9):
        names = [f"s{i}" for i in range(n)]
        tree = yule_tree(names, rng, height=0.7)
        order = list(rng.permutation(names))
        dist = patristic_matrix(tree, order)
        for i, j in itertools.product(range(n), repeat=2):
            ref = 0.0 if i == j else tree.distance(order[i], order[j])
            assert dist[i, j] == pytest.approx(ref, abs=1e-12)


def test_multifurcation_missing_lengths_and_extra_leaves():
    tree = Phylo.read(io.StringIO("((a:1,b:2,c:3):0.5,(d:1,e):2,x:4);"), "newick")
    dist = patristic_matrix(tree, ["a", "b", "c", "d", "e"])
    expected = np.array([
        [0, 3, 4, 4.5, 3.5],
        [3, 0, 5, 5.5, 4.5],
        [4, 5, 0, 6.5, 5.5],
        [4.5, 5.5, 6.5, 0, 1],
        [3.5, 4.5, 5.5, 1, 0],
    ])
    np.testing.assert_allclose(dist, expected)


def test_leaf_checks_and_unreadable_tree(tmp_path):
    tree = Phylo.read(io.StringIO("(a:1,(b:1,a:2):1);"), "newick")
    with pytest.raises(InputError, match="appears twice"):
        check_tree_leaves(tree, ["a", "b"], path="t.nwk", family="F")
    with pytest.raises(InputError, match="no leaf for 1 of its 2"):
        check_tree_leaves(tree, ["b", "zz"], path="t.nwk", family="F")
    bad = tmp_path / "bad.nwk"
    bad.write_text("((a:1,b:2;")
    with pytest.raises(InputError) as err:
        read_tree(bad)
    assert err.value.path == str(bad)


def test_a_topology_without_branch_lengths_gives_edges_between_leaves():
    tree = Phylo.read(io.StringIO("((a,b),(c,(d,e)));"), "newick")
    dist = patristic_matrix(tree, ["a", "b", "c", "d", "e"])  # was all 0: no pair farther than another
    expected = np.array([
        [0, 2, 4, 5, 5],
        [2, 0, 4, 5, 5],
        [4, 4, 0, 3, 3],
        [5, 5, 3, 0, 2],
        [5, 5, 3, 2, 0],
    ])
    np.testing.assert_allclose(dist, expected)
    unit = Phylo.read(io.StringIO("((a:1,b:1):1,(c:1,(d:1,e:1):1):1);"), "newick")  # the same tree, unit edges
    for i, j in itertools.combinations(range(5), 2):
        assert dist[i, j] == unit.distance("abcde"[i], "abcde"[j])


def test_one_branch_length_keeps_the_lengths_reading():
    tree = Phylo.read(io.StringIO("((a,b:1),c);"), "newick")  # lengths given in part: missing ones count 0
    np.testing.assert_allclose(patristic_matrix(tree, ["a", "b", "c"]), [[0, 1, 0], [1, 0, 1], [0, 1, 0]])


def test_leaves_renamed_by_tree_builders_are_matched():
    ids = ["sp|P1|A_HUMAN", "sp|P2|A_MOUSE", "tr|Q3|A RAT"]  # IQ-TREE writes '|' and ' ' as '_'
    tree = Phylo.read(io.StringIO("((sp_P1_A_HUMAN:1,sp_P2_A_MOUSE:2):3,tr_Q3_A_RAT:4);"), "newick")
    check_tree_leaves(tree, ids, path="t.nwk", family="F")  # was: no leaf for 3 of its 3 sequences
    np.testing.assert_allclose(patristic_matrix(tree, ids), [[0, 3, 8], [3, 0, 9], [8, 9, 0]])
    exact = Phylo.read(io.StringIO("((a:1,b:2):3,c:4);"), "newick")
    np.testing.assert_allclose(patristic_matrix(exact, ["a", "b", "c"]), [[0, 3, 8], [3, 0, 9], [8, 9, 0]])


def test_rewritten_names_that_clash_are_not_guessed():
    tree = Phylo.read(io.StringIO("((x_1:1,x_2:2):3,y:4);"), "newick")
    with pytest.raises(InputError, match=r"no leaf for 2 of its 3.*'x\|1'.*IQ-TREE"):  # x|1 and x 1 both read x_1
        check_tree_leaves(tree, ["x|1", "x 1", "y"], path="t.nwk", family="F")
    with pytest.raises(InputError, match="no leaf for 1 of its 2"):  # the leaf x_1 is a member's own name
        check_tree_leaves(tree, ["x_1", "x|1"], path="t.nwk", family="F")


def test_a_broken_link_to_a_tree_is_refused(tmp_path):
    from phylocl.data.trees import find_tree

    (tmp_path / "trees").mkdir()
    (tmp_path / "trees" / "F1.nwk").symlink_to(tmp_path / "gone.nwk")  # was skipped: distances from k-mers, no word
    with pytest.raises(InputError, match="broken symbolic link: its target .*gone.nwk does not exist"):
        find_tree(tmp_path, "F1")
    assert find_tree(tmp_path, "F2") is None
