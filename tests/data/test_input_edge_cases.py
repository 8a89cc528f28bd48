"""Inputs a demanding user hands the readers: each is read sensibly or refused as one InputError naming the file
and line (the CLI's exit 2)."""

from __future__ import annotations

import pytest

from phylocl.data.labels import read_labels
from phylocl.errors import InputError


def test_labels_columns_without_a_name_are_dropped_when_empty(tmp_path):
    path = tmp_path / "labels.tsv"  # a trailing tab, as spreadsheets export; a row may end before it
    path.write_text("sequence_id\tfamily_id\t\t\na\tF1\t\t\nb\tF1\n")
    table = read_labels(path)
    assert table.family == {"a": "F1", "b": "F1"} and table.metadata == {}


def test_labels_value_under_a_column_without_a_name_is_refused_at_its_line(tmp_path):
    path = tmp_path / "labels.tsv"
    path.write_text("sequence_id\tfamily_id\t\na\tF1\t\nb\tF1\thuman\n")
    with pytest.raises(InputError, match="column 3 holds 'human' but has no name") as err:
        read_labels(path)
    assert (err.value.path, err.value.line) == (str(path), 3)


def test_labels_repeated_column_is_named(tmp_path):
    path = tmp_path / "labels.tsv"
    path.write_text("sequence_id\tfamily_id\tspecies\tspecies\na\tF1\tx\ty\n")
    with pytest.raises(InputError, match="repeated column name.s. species$") as err:
        read_labels(path)
    assert err.value.line == 1


def orthofinder_table(root, table: str):
    """Proteomes spA.faa, spB.faa under ``root`` and ``table`` as OrthoFinder 2's Orthogroups.tsv (its path)."""
    root.mkdir()
    (root / "spA.faa").write_text(">a1\nMKTAYIAKQR\n>a2\nGSHMLEDPVV\n")
    (root / "spB.faa").write_text(">b1\nMRTAYIAKQR\n>b2\nGSHMLEDPAV\n")
    path = root / "OrthoFinder" / "Results_Jan01" / "Orthogroups" / "Orthogroups.tsv"
    path.parent.mkdir(parents=True)
    path.write_text(table)
    return path


@pytest.mark.parametrize("table, line, message", [
    ("Orthogroup\tspA\tspB\nOG1\ta1\tb1\n\ta2\tb2\n", 3, "row without an orthogroup id"),
    ("Orthogroup\tspA\tspB\nOG1\ta1\tb1\nOG1\ta2\tb2\n", 3, r"orthogroup 'OG1' is listed twice \(lines 2 and 3\)"),
    ("Orthogroup\tspA\t\nOG1\ta1, a2\t\n", 1, "column 3 of the header has no species name"),
    ("Orthogroup\tspA\tspA\nOG1\ta1\ta2\n", 1, "species column.s. spA appear twice"),
    ("Orthogroup\tspA\tspB\nOG1\ta1, a1\tb1\n", 2, r"gene 'a1' \(spA\) is listed twice in OG1$"),  # "lines 2 and 2"
])
def test_orthofinder_table_defects_are_refused_at_their_line(tmp_path, table, line, message):
    from phylocl.data.layouts import read_dataset

    path = orthofinder_table(tmp_path / "prot", table)
    with pytest.raises(InputError, match=message) as err:
        read_dataset(tmp_path / "prot")
    assert (err.value.path, err.value.line) == (str(path), line)


def test_a_nexus_tree_is_named_as_nexus(tmp_path):
    from phylocl.data.trees import read_tree

    path = tmp_path / "F1.tree"  # MrBayes and BEAST write .tre/.tree files in NEXUS
    path.write_text("\n#NEXUS\nbegin trees;\n  tree t1 = ((a:0.1,b:0.2):0.3,c:0.4);\nend;\n")
    with pytest.raises(InputError, match="a NEXUS file, not a Newick tree") as err:
        read_tree(path)
    assert err.value.line == 2


def test_missing_leaves_show_what_the_tree_calls_its_leaves(tmp_path):
    from phylocl.data.trees import check_tree_leaves, read_tree

    path = tmp_path / "F1.nwk"
    path.write_text("((a:x,b:0.2):0.3,c:0.4);")  # a length that is not a number: Bio.Phylo names the leaf 'x'
    with pytest.raises(InputError, match=r"no leaf for 1 of its 3 .*\(e\.g\. 'a'\); the tree's other leaves are "
                                         r"e\.g\. 'x'"):
        check_tree_leaves(read_tree(path), ["a", "b", "c"], path=path, family="F1")


def test_hidden_files_of_a_family_folder_are_not_read(tmp_path):
    from phylocl.data.layouts import read_dataset

    (tmp_path / "OG1.fa").write_text(">a\nMKTAYIAKQR\n>b\nMKTAYIAKQK\n")
    (tmp_path / "._OG1.fa").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ")  # AppleDouble
    ds = read_dataset(tmp_path)
    assert ds.family_names == ["OG1"] and ds.ids == ["a", "b"]


def test_protein_letters_after_records_detected_as_dna_advise_the_alphabet(tmp_path):
    from phylocl.data.layouts import iter_fasta, read_dataset

    fasta = tmp_path / "peptides.fa"  # short peptides of A C G T letters first: the file is detected as DNA
    fasta.write_text("".join(f">p{i}\nGATTACAGA\n" for i in range(300)) + ">q\nMKTAYIAKQRQISFVKSHFSRQLEERLG\n")
    with pytest.raises(InputError, match="detected as DNA .* give alphabet='protein'$") as err:
        list(iter_fasta(fasta))
    assert (err.value.line, err.value.column) == (602, 6)  # M K Y are IUPAC codes, I is not
    assert len(list(iter_fasta(fasta, alphabet="protein"))) == 301
    with pytest.raises(InputError) as err:  # asked for: no advice
        list(iter_fasta(fasta, alphabet="dna"))
    assert "detected" not in str(err.value)
    labels = tmp_path / "labels.tsv"
    labels.write_text("sequence_id\tfamily_id\n" + "".join(f"p{i}\tF{i % 2}\n" for i in range(300)) + "q\tF1\n")
    with pytest.raises(InputError, match="detected as DNA"):
        read_dataset(fasta, labels=labels)


def test_a_byte_order_mark_inside_a_file_is_skipped(tmp_path):
    from phylocl.data.layouts import iter_fasta

    path = tmp_path / "joined.fa"  # `cat a.fa b.fa`, each saved by a Windows editor with a byte-order mark
    bom = "\ufeff".encode()
    path.write_bytes(bom + b">a\nMKTAYIAKQR\n>b\nMKTAYIAKQK\n" + bom + b">c\nGSHMLEDPVV\n" + bom + b"\n")
    records = list(iter_fasta(path))
    assert [(r.id, r.sequence, r.line) for r in records] == [("a", "MKTAYIAKQR", 1), ("b", "MKTAYIAKQK", 3),
                                                             ("c", "GSHMLEDPVV", 5)]


@pytest.mark.parametrize("text, line, column", [
    (" >a\nMKTAYIAKQR\n>b\nMKTAYIAKQK\n", 1, 2),
    (">a\nMKTAYIAKQR\n\n\t >b\nMKTAYIAKQK\n", 4, 3),  # was read as letters of record a, refused as '>'
])
def test_an_indented_header_is_named(tmp_path, text, line, column):
    from phylocl.data.fasta import parse_fasta

    path = tmp_path / "x.fa"
    path.write_text(text)
    with pytest.raises(InputError, match="indented header line") as err:
        list(parse_fasta(path))
    assert (err.value.line, err.value.column) == (line, column)


def test_bzip2_and_xz_names_are_read_in_folders(tmp_path):
    import bz2
    import lzma

    from phylocl.data.layouts import read_dataset

    families = tmp_path / "families"  # the files were read when named, not found in a folder
    families.mkdir()
    (families / "OG1.fa.xz").write_bytes(lzma.compress(b">a\nMKTAYIAKQR\n>b\nMKTAYIAKQK\n"))
    (families / "OG2.faa.bz2").write_bytes(bz2.compress(b">c\nGSHMLEDPVV\n"))
    assert read_dataset(families).family_names == ["OG1", "OG2"]
    pair = tmp_path / "pair"
    pair.mkdir()
    (pair / "sequences.fasta.bz2").write_bytes(bz2.compress(b">a\nMKTAYIAKQR\n>b\nMKTAYIAKQK\n"))
    (pair / "labels.tsv.xz").write_bytes(lzma.compress(b"sequence_id\tfamily_id\na\tF1\nb\tF1\n"))
    assert read_dataset(pair).summary()["format"] == "dataset-directory"


def test_a_mix_found_by_detection_advises_the_protein_alphabet(tmp_path):
    from phylocl.data.layouts import iter_fasta

    path = tmp_path / "plasmodium.fa"  # a protein fragment of asparagine repeats reads as DNA
    path.write_text(">a\nMKTAYIAKQRQISFVKSHFSRQ\n>b\nM" + "N" * 30 + "Q\n")
    with pytest.raises(InputError, match=r"mix of DNA and protein .* or, if every record is protein .* give "
                                         r"alphabet='protein'$") as err:
        list(iter_fasta(path))
    assert err.value.line == 3
    assert [r.sequence[-2:] for r in iter_fasta(path, alphabet="protein")] == ["RQ", "NQ"]
    with pytest.raises(InputError) as err:  # the alphabet was given: no advice about it
        list(iter_fasta(path, alphabet="dna"))
    assert "alphabet='protein'" not in str(err.value)


def test_an_empty_string_is_not_read_as_the_working_folder(tmp_path, monkeypatch):
    from phylocl.data.layouts import read_dataset

    (tmp_path / "OG1.fa").write_text(">a\nMKTAYIAKQR\n>b\nMKTAYIAKQK\n")
    monkeypatch.chdir(tmp_path)  # a dataset folder: read_dataset("") read it (`phylocl inspect "$UNSET"`)
    with pytest.raises(InputError, match="path is an empty string"):
        read_dataset("")
    with pytest.raises(InputError, match="labels is an empty string"):
        read_dataset("OG1.fa", labels="")


def test_simulate_refuses_an_empty_output_path(tmp_path, monkeypatch, cli):
    monkeypatch.chdir(tmp_path)  # the working folder is an earlier simulation: -o "" --overwrite replaced it
    args = ["simulate", "--families", "1", "--members", "2", "--length", "5"]
    assert cli(*args, "-o", "sim")[0] == 0
    monkeypatch.chdir(tmp_path / "sim")
    code, _, err = cli(*args, "-o", "", "--overwrite")
    assert code == 2 and "an empty string is not a file or folder name" in err  # the command line's refusal
    assert (tmp_path / "sim" / "simulation.json").is_file()


@pytest.mark.parametrize("layout", ["families", "pair"])
def test_a_broken_link_in_a_dataset_folder_is_named(tmp_path, layout):
    from phylocl.data.layouts import read_dataset

    folder = tmp_path / "data"
    folder.mkdir()
    if layout == "families":  # OG2's link was skipped: the dataset was read without that family
        (folder / "OG1.fa").write_text(">a\nMKTAYIAKQR\n>b\nMKTAYIAKQK\n")
        link = folder / "OG2.fa"
    else:  # was "no FASTA files, no sequences.fasta + labels.tsv"
        (folder / "labels.tsv").write_text("sequence_id\tfamily_id\na\tF1\n")
        link = folder / "sequences.fasta"
    link.symlink_to(tmp_path / "moved" / "x.fa")
    with pytest.raises(InputError, match="a broken symbolic link: its target .*moved/x.fa does not exist") as err:
        read_dataset(folder)
    assert err.value.path == str(link)


def test_a_broken_link_beside_a_pair_is_not_read(tmp_path):
    from phylocl.data.layouts import read_dataset

    (tmp_path / "sequences.fasta").write_text(">a\nMKTAYIAKQR\n>b\nMKTAYIAKQK\n")
    (tmp_path / "labels.tsv").write_text("sequence_id\tfamily_id\na\tF1\nb\tF1\n")
    (tmp_path / "old.fa").symlink_to(tmp_path / "gone.fa")  # not read: the pair is
    assert read_dataset(tmp_path).ids == ["a", "b"]
