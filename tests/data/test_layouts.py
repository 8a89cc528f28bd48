"""read_dataset over every layout, and the streaming iter_fasta."""

from __future__ import annotations

import gzip

import pytest

from phylocl.data.layouts import iter_fasta, read_dataset, read_datasets
from phylocl.errors import InputError

PROT = {"F1": ["MKTAYIAKQR", "MKTAYIAKQK", "MRTAYIAKQR"], "F2": ["GSHMLEDPVV", "GSHMLEDPAV"], "F3": ["WWPPCCHHEE"]}


def write_family_dir(root, families=PROT, suffix=".fa"):
    root.mkdir(parents=True, exist_ok=True)
    for fam, seqs in families.items():
        text = "".join(f">{fam}_{k} some description\n{s}\n" for k, s in enumerate(seqs))
        if suffix.endswith(".gz"):
            (root / f"{fam}{suffix}").write_bytes(gzip.compress(text.encode()))
        else:
            (root / f"{fam}{suffix}").write_text(text)
    return root


def write_pair(root, families=PROT, fasta_name="sequences.fasta", labels_name="labels.tsv"):
    root.mkdir(parents=True, exist_ok=True)
    fasta = "".join(f">{f}_{k}\n{s}\n" for f, seqs in families.items() for k, s in enumerate(seqs))
    labels = "sequence_id\tfamily_id\tspecies\n" + "".join(
        f"{f}_{k}\t{f}\tsp{k}\n" for f, seqs in families.items() for k in range(len(seqs)))
    (root / fasta_name).write_text(fasta)
    (root / labels_name).write_text(labels)
    return root / fasta_name, root / labels_name


def check_prot(ds):
    assert ds.families == ["F1"] * 3 + ["F2"] * 2 + ["F3"]
    assert ds.sequences[0] == "MKTAYIAKQR" and ds.ids[0] == "F1_0"
    assert ds.family_index == {"F1": [0, 1, 2], "F2": [3, 4], "F3": [5]}
    assert ds.alphabet.name == "protein"
    assert [s["family"] for s in ds.skipped] == ["F3"]
    s = ds.summary()
    assert (s["families"], s["sequences"], s["min_family_size"], s["max_length"], s["skipped"]) == (3, 6, 1, 10, 1)


@pytest.mark.parametrize("suffix", [".fa", ".fasta", ".faa", ".fa.gz", ".fasta.gz"])
def test_family_directory(tmp_path, suffix):
    ds = read_dataset(write_family_dir(tmp_path / "fams", suffix=suffix))
    check_prot(ds)
    assert ds.summary()["format"] == "family-fasta-directory"


def test_family_directory_trees_next_to_files_or_in_trees_folder(tmp_path):
    d = write_family_dir(tmp_path / "fams")
    (d / "F1.nwk").write_text("((F1_0:0.1,F1_1:0.2):0.05,F1_2:0.3,extra:1);")
    (d / "trees").mkdir()
    (d / "trees" / "F2.treefile").write_text("(F2_0:0.5,F2_1:0.5);")
    ds = read_dataset(d)
    assert set(ds.trees) == {"F1", "F2"} and ds.trees["F2"].name == "F2.treefile"
    (d / "F1.nwk").write_text("((F1_0:0.1,F1_9:0.2),F1_2:0.3);")
    with pytest.raises(InputError, match="no leaf for 1 of its 3 sequence"):
        read_dataset(d)


def test_fasta_plus_labels_and_dataset_directory(tmp_path):
    fasta, labels = write_pair(tmp_path / "pair")
    for ds in (read_dataset(fasta, labels=labels), read_dataset(tmp_path / "pair")):
        check_prot(ds)
        assert ds.metadata == {"species": ["sp0", "sp1", "sp2", "sp0", "sp1", "sp0"]}
    assert read_dataset(tmp_path / "pair").summary()["format"] == "dataset-directory"
    (tmp_path / "pair" / "trees").mkdir()
    (tmp_path / "pair" / "trees" / "F2.nwk").write_text("(F2_0:0.5,F2_1:0.25);")
    assert list(read_dataset(tmp_path / "pair").trees) == ["F2"]


def test_alphabet_detection_and_override(tmp_path):
    dna = {"A": ["ACGTACGTAC", "ACGTACGTTC"], "B": ["GGGCCCAAAT", "GGGCCCAAAA"]}
    ds = read_dataset(write_family_dir(tmp_path / "dna", dna))
    assert ds.alphabet.name == "dna"
    as_protein = read_dataset(tmp_path / "dna", alphabet="protein")
    assert as_protein.alphabet.name == "protein" and as_protein.sequences == ds.sequences
    with pytest.raises(InputError, match="not in the dna alphabet"):
        read_dataset(write_family_dir(tmp_path / "prot"), alphabet="dna")


def test_subset_keeps_metadata_and_trees(tmp_path):
    fasta, labels = write_pair(tmp_path / "pair")
    ds = read_dataset(fasta, labels=labels)
    sub = ds.subset([4, 0])
    assert sub.ids == ["F2_1", "F1_0"] and sub.metadata["species"] == ["sp1", "sp0"]
    assert sub.family_index == {"F2": [0], "F1": [1]} and len(sub.skipped) == 2
    assert ds.select_families(["F2"]).ids == ["F2_0", "F2_1"]


def test_read_datasets_prefixes_clashing_families(tmp_path):
    write_family_dir(tmp_path / "one", {"F1": ["MKTAYIAK", "MKTAYIAR"], "X": ["MKKKLLLW", "MKKKLLLP"]})
    write_family_dir(tmp_path / "two", {"F1": ["GSHMLEDP", "GSHMLEDA"]})
    ds = read_datasets([tmp_path / "one", tmp_path / "two"])
    assert ds.family_names == ["one/F1", "X", "two/F1"]
    assert ds.ids == ["one/F1_0", "one/F1_1", "X_0", "X_1", "two/F1_0", "two/F1_1"]
    write_family_dir(tmp_path / "dna", {"D": ["ACGTACGTAC", "ACGTACGTTT"]})
    with pytest.raises(InputError, match="share an alphabet"):
        read_datasets([tmp_path / "one", tmp_path / "dna"])


def test_iter_fasta_streams_cleaned_records(tmp_path):
    f = tmp_path / "q.fa"
    f.write_text(">a x\nmkt-a*\n>b\nMK\nUO\n")
    recs = list(iter_fasta(f))
    assert [(r.id, r.sequence, r.line) for r in recs] == [("a", "MKTA", 1), ("b", "MKXX", 3)]
    f.write_text(">a\nACGT\n>a\nACGA\n")
    with pytest.raises(InputError, match="duplicate sequence id 'a' \\(first at line 1\\)") as err:
        list(iter_fasta(f))
    assert err.value.line == 3


def test_iter_fasta_is_lazy(tmp_path):
    f = tmp_path / "big.fa"
    f.write_text("".join(f">s{i}\nMKTAYIAKQR\n" for i in range(1000)) + ">bad\nMK1\n")
    it = iter_fasta(f)
    first = [next(it) for _ in range(300)]  # the defect at the end is not read yet
    assert first[-1].id == "s299"
    with pytest.raises(InputError) as err:
        list(it)
    assert (err.value.line, err.value.column) == (2002, 3)  # the line and column of the '1'


def test_iter_fasta_detects_mix_late_in_stream(tmp_path):
    f = tmp_path / "mix.fa"
    f.write_text("".join(f">p{i}\nMKTAYIAKQRQISFVKSHFSRQ\n" for i in range(300)) + ">d\n" + "ACGT" * 10 + "\n")
    with pytest.raises(InputError, match="mix of DNA and protein"):
        list(iter_fasta(f))


def test_a_lone_sequences_fasta_is_refused_and_family_files_beside_a_pair_are_named(tmp_path, caplog):
    """A forgotten labels.tsv turned the whole set into one family named 'sequences'; family files next to
    sequences.fasta + labels.tsv were dropped without a word."""
    import logging

    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "sequences.fasta").write_text(">a\nMKVLAAG\n>b\nMKVLAAW\n")
    with pytest.raises(InputError, match="holds sequences.fasta but no labels.tsv"):
        read_dataset(lone)
    both = tmp_path / "both"
    both.mkdir()
    (both / "sequences.fasta").write_text(">x1\nMKVL\n>x2\nMKVW\n")
    (both / "labels.tsv").write_text("sequence_id\tfamily_id\nx1\tA\nx2\tA\n")
    (both / "fam0.fasta").write_text(">p_a\nMKVLAAGIVG\n")
    with caplog.at_level(logging.WARNING, logger="phylocl"):
        ds = read_dataset(both)
    assert len(ds) == 2 and any("not read: fam0.fasta" in r.getMessage() for r in caplog.records)


def test_datasets_know_where_each_record_was_read(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d, n in ((a, 2), (b, 3)):
        d.mkdir()
        (d / "F1.fa").write_text("".join(f">{d.name}{k}\nMKTAYIAKQR\nMK\n" for k in range(n)))
        (d / "F2.fa").write_text(">x\nGSHMLEDPVV\n>y\nGSHMLEDPAV\n")
    ds = read_datasets([a, b])
    assert len(ds) == 9 and ds.where(0) == (str(a / "F1.fa"), 1) and ds.where(1) == (str(a / "F1.fa"), 4)
    assert ds.where(6) == (str(b / "F1.fa"), 7) and ds.where(8) == (str(b / "F2.fa"), 3)
    sub = ds.subset([8, 0])
    assert sub.where(0) == (str(b / "F2.fa"), 3) and sub.where(1) == (str(a / "F1.fa"), 1)
    assert ds.select_families(["b/F2"]).where(1) == (str(b / "F2.fa"), 3)


def test_a_protein_file_with_poly_a_records_reads_when_protein_is_asked_for(tmp_path):
    """A record of 20+ residues that is >= 90% A/C/G/T/N (poly-Ala, poly-Asn) looks like DNA; asked for protein
    (``--alphabet protein``), the file is read as protein instead of being refused as a mix; asked for DNA, a
    protein record is still refused, and detection still refuses the mix."""
    f = tmp_path / "p.fa"
    f.write_text("".join(f">p{i}\nMKTAYIAKQRQISFVKSHFSRQ\n" for i in range(5)) + ">polyA\n" + "A" * 30 + "N" * 3 + "\n")
    recs = list(iter_fasta(f, alphabet="protein"))
    assert [r.id for r in recs][-1] == "polyA" and recs[-1].sequence == "A" * 30 + "N" * 3  # N: asparagine
    labels = tmp_path / "labels.tsv"
    labels.write_text("sequence_id\tfamily_id\n" + "".join(f"{r.id}\tf{i % 2}\n" for i, r in enumerate(recs)))
    ds = read_dataset(f, labels=labels, alphabet="protein")
    assert ds.alphabet.name == "protein" and len(ds.ids) == 6
    with pytest.raises(InputError, match="mix of DNA and protein"):
        list(iter_fasta(f))
    d = tmp_path / "d.fa"
    d.write_text("".join(f">d{i}\n" + "ACGT" * 10 + "\n" for i in range(5)) + ">p\nMKTAYIAKQRQISFVKSHFSRQ\n")
    with pytest.raises(InputError, match="mix of DNA and protein"):
        list(iter_fasta(d, alphabet="dna"))
