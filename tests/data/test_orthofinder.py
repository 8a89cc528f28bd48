"""OrthoFinder results: Orthogroups.tsv + the proteomes, in OrthoFinder's directory layout."""

from __future__ import annotations

import pytest

from phylocl.data.layouts import read_dataset
from phylocl.errors import InputError


def make_run(root, table=None, old_layout=False):
    """<root>/spA.faa, spB.fasta, OrthoFinder/Results_Jan01/Orthogroups/Orthogroups.tsv (OrthoFinder 2 layout)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "spA.faa").write_text(">a1 protein one\nMKTAYIAKQR\n>a2\nMKTAYIAKQK\n>sp|P9:x(y) long header\nGSHMLEDPVV\n"
                                  ">shared\nWWPPCCHHEE\n")
    (root / "spB.fasta").write_text(">b1\nMRTAYIAKQR\n>b2\nGSHMLEDPAV\n>shared\nWWPPCCHHEK\n>b3\nMKKLLPPWWE\n")
    table = table or ("Orthogroup\tspA\tspB\n"
                      "OG0000000\ta1, a2\tb1\n"
                      "OG0000001\tsp|P9_x_y_\tb2\n"
                      "OG0000002\tshared\tshared\n"
                      "OG0000003\t\tb3\n")
    results = root / ("Results_Jan01" if old_layout else "OrthoFinder/Results_Jan01")
    (results / "Orthogroups").mkdir(parents=True)
    (results / "Orthogroups" / "Orthogroups.tsv").write_text(table)
    return results


def test_reads_groups_with_species_and_sanitized_names(tmp_path):
    results = make_run(tmp_path / "prot")
    ds = read_dataset(results)
    assert ds.families == ["OG0000000"] * 3 + ["OG0000001"] * 2 + ["OG0000002"] * 2 + ["OG0000003"]
    assert ds.ids == ["a1", "a2", "b1", "sp|P9_x_y_", "b2", "spA|shared", "spB|shared", "b3"]
    assert ds.metadata["species"] == ["spA", "spA", "spB", "spA", "spB", "spA", "spB", "spB"]
    assert ds.sequences[3] == "GSHMLEDPVV" and ds.sequences[6] == "WWPPCCHHEK"
    s = ds.summary()
    assert (s["format"], s["families"], s["sequences"], s["skipped"]) == ("orthofinder", 4, 8, 1)


@pytest.mark.parametrize("where", ["results", "orthogroups", "table", "orthofinder", "proteomes"])
def test_found_from_any_level(tmp_path, where):
    results = make_run(tmp_path / "prot")
    path = {"results": results, "orthogroups": results / "Orthogroups",
            "table": results / "Orthogroups" / "Orthogroups.tsv", "orthofinder": results.parent,
            "proteomes": tmp_path / "prot"}[where]
    assert len(read_dataset(path)) == 8


def test_orthofinder_1_layout(tmp_path):
    results = make_run(tmp_path / "prot", old_layout=True)
    assert len(read_dataset(results)) == 8


def test_errors(tmp_path):
    results = make_run(tmp_path / "p1", table="Orthogroup\tspA\tspB\nOG1\ta1\tb1\nOG2\tzz9\tb2\n")
    with pytest.raises(InputError, match="gene 'zz9' of OG2 is not in the spA proteome") as err:
        read_dataset(results)
    assert err.value.line == 3 and err.value.path.endswith("Orthogroups.tsv")

    results = make_run(tmp_path / "p2", table="Orthogroup\tspA\tspB\nOG1\ta1\tb1\nOG2\ta1\tb2\n")
    with pytest.raises(InputError, match=r"gene 'a1' \(spA\) is in two orthogroups \(lines 2 and 3\)"):
        read_dataset(results)

    results = make_run(tmp_path / "p3", table="Orthogroup\tspA\tspC\nOG1\ta1\tc1\n")
    with pytest.raises(InputError, match="proteome FASTA file\\(s\\) for 1 species.*'spC'"):
        read_dataset(results)

    make_run(tmp_path / "p4")
    (tmp_path / "p4" / "OrthoFinder" / "Results_Feb02" / "Orthogroups").mkdir(parents=True)
    (tmp_path / "p4" / "OrthoFinder" / "Results_Feb02" / "Orthogroups" / "Orthogroups.tsv").write_text("x")
    with pytest.raises(InputError, match="several OrthoFinder runs"):
        read_dataset(tmp_path / "p4")

    results = make_run(tmp_path / "p5", table="OG\tspA\nOG1\ta1\n")
    with pytest.raises(InputError, match="not an OrthoFinder orthogroups table"):
        read_dataset(results)
