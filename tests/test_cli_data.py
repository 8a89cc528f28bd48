"""`phylocl inspect` and `phylocl simulate` through the CLI: every input layout, every bad-input case (exit 2, one
line on stderr naming the file and, where it applies, the line; no traceback)."""

from __future__ import annotations

import gzip
import json

import pytest




def one_line_error(err: str, *, path, line=None) -> str:
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, err
    where = f"{path}:{line}:" if line is not None else f"{path}:"
    assert where in err, err
    return err


# ---- every input layout ---------------------------------------------------------------------------------------


def family_dir(root, gz=False):
    root.mkdir()
    for fam, seqs in {"F1": ["MKTAYIAKQR", "MKTAYIAKQK"], "F2": ["GSHMLEDPVV", "GSHMLEDPAV", "GSHMLEDPAA"]}.items():
        text = "".join(f">{fam}_{k}\n{s}\n" for k, s in enumerate(seqs))
        if gz:
            (root / f"{fam}.faa.gz").write_bytes(gzip.compress(text.encode()))
        else:
            (root / f"{fam}.fasta").write_text(text)
    return root


def pair(root, fasta="sequences.fasta", labels="labels.tsv", label_rows=None, fasta_text=None):
    root.mkdir(exist_ok=True)
    (root / fasta).write_text(fasta_text or ">a\nMKTAYIAKQR\n>b\nMKTAYIAKQK\n>c\nGSHMLEDPVV\n")
    rows = label_rows if label_rows is not None else ["a\tF1\tx", "b\tF1\ty", "c\tF2\tx"]
    (root / labels).write_text("sequence_id\tfamily_id\tspecies\n" + "".join(r + "\n" for r in rows))
    return root / fasta, root / labels


@pytest.mark.parametrize("gz", [False, True])
def test_inspect_family_directory(tmp_path, cli, gz):
    code, out, _ = cli("inspect", family_dir(tmp_path / "fams", gz=gz), "--json")
    s = json.loads(out)
    assert code == 0 and (s["families"], s["sequences"], s["format"]) == (2, 5, "family-fasta-directory")
    assert (s["min_family_size"], s["median_length"], s["max_length"], s["skipped"]) == (2, 10.0, 10, 0)


def test_inspect_fasta_with_labels_and_dataset_folder(tmp_path, cli):
    fasta, labels = pair(tmp_path / "d", fasta="seqs.fa", labels="my_labels.tsv")
    code, out, _ = cli("inspect", fasta, "--labels", labels, "--json")
    s = json.loads(out)
    assert code == 0 and (s["families"], s["sequences"], s["skipped"], s["alphabet"]) == (2, 3, 1, "protein")
    pair(tmp_path / "folder")
    code, out, _ = cli("inspect", tmp_path / "folder", "--json")
    assert code == 0 and json.loads(out)["format"] == "dataset-directory"
    code, out, _ = cli("inspect", tmp_path / "folder")
    assert code == 0 and "families" in out and "1 family with fewer than 2 sequences" in out


def test_inspect_orthofinder_results(tmp_path, cli):
    prot = tmp_path / "proteomes"
    prot.mkdir()
    (prot / "A.faa").write_text(">a1 x\nMKTAYIAKQR\n>a2\nGSHMLEDPVV\n")
    (prot / "B.faa").write_text(">b1\nMKTAYIAKQK\n>b2\nGSHMLEDPAV\n")
    results = prot / "OrthoFinder" / "Results_Jan01"
    (results / "Orthogroups").mkdir(parents=True)
    (results / "Orthogroups" / "Orthogroups.tsv").write_text("Orthogroup\tA\tB\nOG0\ta1\tb1\nOG1\ta2\tb2\n")
    code, out, _ = cli("inspect", results, "--json")
    s = json.loads(out)
    assert code == 0 and (s["format"], s["families"], s["sequences"]) == ("orthofinder", 2, 4)


def test_alphabet_option(tmp_path, cli):
    fasta, labels = pair(tmp_path / "d", fasta_text=">a\nACGTACGT\n>b\nACGTACGA\n>c\nACGGGG\n")
    code, out, _ = cli("inspect", fasta, "--labels", labels, "--json")
    assert json.loads(out)["alphabet"] == "dna"
    code, out, _ = cli("inspect", fasta, "--labels", labels, "--alphabet", "protein", "--json")
    assert json.loads(out)["alphabet"] == "protein"


# ---- bad input: exit 2, one line ------------------------------------------------------------------------------


def test_missing_path(tmp_path, cli):
    code, _, err = cli("inspect", tmp_path / "nope")
    assert code == 2 and "no such file or directory" in one_line_error(err, path=tmp_path / "nope")


def test_empty_file(tmp_path, cli):
    d = family_dir(tmp_path / "fams")
    (d / "F3.fa").write_text("")
    code, _, err = cli("inspect", d)
    assert code == 2 and "empty file" in one_line_error(err, path=d / "F3.fa")


@pytest.mark.parametrize("content, line", [(b"sequence_id\tfamily_id\na\tF1\n", 1), (b"\x7fELF\x02\x01\x00\x00", None)])
def test_not_fasta(tmp_path, cli, content, line):
    d = family_dir(tmp_path / "fams")
    (d / "F0.fa").write_bytes(content)
    code, _, err = cli("inspect", d)
    assert code == 2 and "not a FASTA file" in one_line_error(err, path=d / "F0.fa", line=line)


def test_letters_outside_alphabet(tmp_path, cli):
    fasta, labels = pair(tmp_path / "d", fasta_text=">a\nMKTAYIAKQR\n>b\nMKT\nAY1#K\n>c\nGSHMLEDPVV\n")
    code, _, err = cli("inspect", fasta, "--labels", labels)
    msg = one_line_error(err, path=fasta, line=5)  # the line that holds the '1', not the header (line 3)
    assert code == 2 and "record 'b'" in msg and "'#1'" in msg and "protein alphabet" in msg


def test_duplicate_ids_name_both_lines(tmp_path, cli):
    fasta, labels = pair(tmp_path / "d", fasta_text=">a\nMKTAYIAKQR\n>b\nMKTAYIAKQK\n>a\nGSHMLEDPVV\n")
    code, _, err = cli("inspect", fasta, "--labels", labels)
    msg = one_line_error(err, path=fasta, line=5)
    assert code == 2 and "duplicate sequence id 'a'" in msg and f"{fasta}:1" in msg
    d = family_dir(tmp_path / "fams")
    (d / "F3.fa").write_text(">x\nMKK\n>F1_0\nMKT\n")
    code, _, err = cli("inspect", d)
    msg = one_line_error(err, path=d / "F3.fa", line=3)
    assert code == 2 and f"{d / 'F1.fasta'}:1" in msg


def test_labels_that_do_not_match(tmp_path, cli):
    fasta, labels = pair(tmp_path / "a", label_rows=["a\tF1\tx", "b\tF1\tx", "c\tF2\tx", "zz\tF2\tx", "yy\tF3\tq"])
    code, _, err = cli("inspect", fasta, "--labels", labels)
    msg = one_line_error(err, path=labels, line=5)
    assert code == 2 and "2 id(s) in the labels are not in sequences.fasta (e.g. 'zz', 'yy')" in msg
    fasta, labels = pair(tmp_path / "b", label_rows=["a\tF1\tx"])
    code, _, err = cli("inspect", fasta, "--labels", labels)  # the first record without a label: its header line
    msg = one_line_error(err, path=fasta, line=3)
    assert code == 2 and "2 FASTA id(s) have no label in labels.tsv (e.g. 'b', 'c')" in msg
    fasta, labels = pair(tmp_path / "c")
    labels.write_text("id\tfamily\na\tF1\n")
    code, _, err = cli("inspect", fasta, "--labels", labels)
    msg = one_line_error(err, path=labels, line=1)
    assert code == 2 and "lacks column(s) sequence_id, family_id" in msg and "header has: id, family" in msg
    labels.write_text("sequence_id\tfamily_id\na\tF1\nb\n")
    code, _, err = cli("inspect", fasta, "--labels", labels)
    assert code == 2 and "expected 2 tab-separated columns" in one_line_error(err, path=labels, line=3)
    labels.write_text("sequence_id\tfamily_id\na\tF1\nb\tF1\na\tF2\n")
    code, _, err = cli("inspect", fasta, "--labels", labels)
    assert code == 2 and "listed twice (lines 2 and 4)" in one_line_error(err, path=labels, line=4)


def test_mix_of_dna_and_protein(tmp_path, cli):
    text = ">a\nMKTAYIAKQRQISFVKSHFSRQ\n>b\nMKTAYIAKQK\n>c\n" + "ACGT" * 8 + "\n"
    fasta, labels = pair(tmp_path / "d", fasta_text=text)
    code, _, err = cli("inspect", fasta, "--labels", labels)
    msg = one_line_error(err, path=fasta, line=5)
    assert code == 2 and "mix of DNA and protein" in msg and "'c' looks like DNA" in msg and "'a'" in msg


def test_empty_sequence(tmp_path, cli):
    fasta, labels = pair(tmp_path / "d", fasta_text=">a\nMKTAYIAKQR\n>b\n\n>c\nGSHMLEDPVV\n")
    code, _, err = cli("inspect", fasta, "--labels", labels)
    assert code == 2 and "record 'b' has an empty sequence" in one_line_error(err, path=fasta, line=3)


def test_fasta_without_labels_and_labels_with_directory(tmp_path, cli):
    fasta, labels = pair(tmp_path / "d")
    code, _, err = cli("inspect", fasta)
    assert code == 2 and "needs a labels table" in one_line_error(err, path=fasta)
    code, _, err = cli("inspect", tmp_path / "d", "--labels", labels)
    assert code == 2 and "--labels needs a FASTA file" in one_line_error(err, path=tmp_path / "d")
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = cli("inspect", empty)
    assert code == 2 and "no FASTA files" in one_line_error(err, path=empty)


# ---- simulate ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alphabet", ["protein", "dna"])
def test_simulate_then_inspect(tmp_path, cli, alphabet):
    out = tmp_path / "sim"
    code, text, _ = cli("simulate", "--families", 4, "--members", 3, "--length", 40, "--alphabet", alphabet,
                        "-o", out, "--seed", 1, "--rate", 0.3, "--indel-rate", 0.01)
    assert code == 0 and "wrote 4 families" in text
    code, text, _ = cli("inspect", out, "--json")
    s = json.loads(text)
    assert (s["families"], s["sequences"], s["trees"], s["alphabet"]) == (4, 12, 4, alphabet)
    code, _, err = cli("simulate", "--families", 4, "--members", 3, "--length", 40, "-o", out)
    assert code == 2 and "not empty" in one_line_error(err, path=out)
    code, _, err = cli("simulate", "--families", 0, "--members", 3, "--length", 40, "-o", tmp_path / "x")
    assert code == 2 and "families >= 1" in err and err.count("\n") == 1


def test_simulate_gamma_indels_and_divergence_spread(tmp_path, cli):
    out = tmp_path / "sim"
    code, text, _ = cli("simulate", "--families", 6, "--members", 4, "--length", 200, "-o", out, "--seed", 2,
                        "--gamma-shape", 0.5, "--indel-rate", 0.1, "--indel-length", "zipf", "--indel-mean", 2.5,
                        "--divergence", 0.05, 3.0)
    assert code == 0 and "wrote 6 families" in text
    meta = json.loads((out / "simulation.json").read_text())
    assert meta["params"]["gamma_shape"] == 0.5 and meta["params"]["divergence"] == [0.05, 3.0]
    assert "discrete gamma" in meta["model"] and "zipf" in meta["model"]
    from phylocl.data.layouts import read_dataset
    from phylocl.data.trees import read_tree

    ds = read_dataset(out)
    assert len({len(s) for s in ds.sequences}) > 1  # indels
    heights = [max(read_tree(out / "trees" / f"{f}.nwk").depths().values()) for f in ds.family_names]
    assert all(0.025 - 1e-9 <= h <= 1.5 + 1e-9 for h in heights) and max(heights) / min(heights) > 1.5  # a spread
    code, _, err = cli("simulate", "--families", 2, "--members", 3, "--length", 40, "-o", tmp_path / "y",
                       "--gamma-shape", -1)
    assert code == 2 and "gamma shape" in err and err.count("\n") == 1
    code, _, err = cli("simulate", "--families", 2, "--members", 3, "--length", 40, "-o", tmp_path / "z",
                       "--divergence", 2, 1)
    assert code == 2 and "divergence" in err and err.count("\n") == 1


# ---- bad input named by the line that shows it -----------------------------------------------------------------


WRAPPED = ">a\nMKTAYIAKQR\n>b first record\nMKTAYIAKQR\nGSHMLEDPVV\nGSHM1EDPVV\nGSH\n>c\nGSHMLEDPVV\n"


def test_bad_letter_in_a_wrapped_record_names_its_own_line_and_column(tmp_path, cli):
    fasta, labels = pair(tmp_path / "d", fasta_text=WRAPPED)
    runs = [("inspect", fasta, "--labels", labels), ("inspect", tmp_path / "d"),
            ("embed", "--fasta", fasta, "--model", "kmer:2", "-o", tmp_path / "e.npz"),
            ("embed", "--data", tmp_path / "d", "--model", "kmer:2", "-o", tmp_path / "e.npz"),
            ("index", "--fasta", fasta, "--model", "kmer:2", "-o", tmp_path / "ix"),
            ("search", "--query", fasta, "--db", fasta, "--model", "kmer:2", "-o", tmp_path / "h.tsv")]
    for argv in runs:
        code, _, err = cli(*argv)
        msg = one_line_error(err, path=fasta, line="6:5")  # the '1', four lines below the header (line 3)
        assert code == 2 and "record 'b'" in msg and "'1' not in the protein alphabet" in msg, argv
        assert not list(tmp_path.glob("[eh].*")) and not (tmp_path / "ix").exists()


def test_bad_letter_after_gaps_and_blank_lines_names_its_line(tmp_path, cli):
    fasta, labels = pair(tmp_path / "d", fasta_text=">a\nMKTAYIAKQR\n>b\nMK-TA\n\nYI..AK\nQ1R\n\n>c\nGSHM\n")
    code, _, err = cli("inspect", fasta, "--labels", labels)
    msg = one_line_error(err, path=fasta, line=7)  # gaps removed: the line is exact, the column is not given
    assert code == 2 and f"{fasta}:7: record 'b'" in msg and "position 10" in msg


def test_strict_and_unknown_letter_notes_name_the_letters_line(tmp_path, cli):
    fasta, labels = pair(tmp_path / "d", fasta_text=">a\nMKTAYIAKQR\nMKTA*IAKQR\n>b\nMKTAYIAKQK\n>c\nGSHMLEDPVV\n")
    code, out, _ = cli("inspect", fasta, "--labels", labels)
    assert code == 0 and f"1 internal stop (*) in 1 record read as X; first at {fasta}:3" in out
    code, _, err = cli("inspect", fasta, "--labels", labels, "--strict")
    assert code == 2 and "refused by --strict" in one_line_error(err, path=fasta, line="3:5")


DNA_ROWS = ["ACGTACGTACGTACGTAC", "ACGTACGTTGCAACGTACGTAA", "ACGTTGCAACGTACGTACGG", "TTGCAACGTACGTACGTACG"]


def test_dataset_of_the_other_alphabet_names_the_file_and_line_not_the_folder(tmp_path, cli):
    text = "".join(f">d{i}\n{s}\n" for i, s in enumerate(DNA_ROWS))
    fasta, _ = pair(tmp_path / "dna", fasta_text=text, label_rows=["d0\tF1\tx", "d1\tF1\tx", "d2\tF2\tx", "d3\tF2\tx"])
    for argv in (("embed", "--data", tmp_path / "dna", "--model", "default-protein", "-o", tmp_path / "e.npz"),
                 ("evaluate", "--data", tmp_path / "dna", "--model", "default-protein")):
        code, _, err = cli(*argv)
        msg = one_line_error(err, path=fasta, line=1)  # the FASTA file, not the folder (tmp_path / "dna")
        assert code == 2 and "record 'd0' looks like DNA, but model default-protein" in msg
        assert not (tmp_path / "e.npz").exists()
    fasta, _ = pair(tmp_path / "prot")
    code, _, err = cli("embed", "--data", tmp_path / "prot", "--model", "default-dna", "-o", tmp_path / "e.npz")
    assert code == 2 and "record 'a' looks like protein" in one_line_error(err, path=fasta, line=1)
    fams = family_dir(tmp_path / "fams")
    code, _, err = cli("embed", "--data", fams, "--model", "default-dna", "-o", tmp_path / "e.npz")
    assert code == 2 and "record 'F1_0' looks like protein" in one_line_error(err, path=fams / "F1.fasta", line=1)


def test_two_inputs_of_different_alphabets_name_a_record_of_the_second(tmp_path, cli):
    prot = family_dir(tmp_path / "prot")
    dna = tmp_path / "dna"
    dna.mkdir()
    (dna / "G1.fa").write_text("".join(f">g{i}\n{s}\n" for i, s in enumerate(DNA_ROWS)))
    code, _, err = cli("train", "--data", prot, dna, "--out", tmp_path / "run", "--quiet")
    msg = one_line_error(err, path=dna / "G1.fa", line=1)
    assert code == 2 and "must share an alphabet" in msg and "record 'g0' of dna looks like DNA" in msg
    assert not (tmp_path / "run").exists()


def test_undecodable_byte_past_the_first_chunk_is_named_by_line_and_column(tmp_path, cli):
    text = "".join(f">s{i}\n{'MKTAYIAKQR' * 6}\n" for i in range(300))  # ~22 KB: past the decoder's 8 KB chunks
    d = tmp_path / "d"
    fasta, labels = pair(d, fasta_text=text, label_rows=[f"s{i}\tF{i % 7}\tx" for i in range(300)])
    fasta.write_bytes(text.encode() + b">lat\xe9 caf\xe9\nMKTA\n")  # in the id (the description's would be Latin-1)
    code, _, err = cli("embed", "--fasta", fasta, "--model", "kmer:2", "-o", tmp_path / "e.npz")
    assert code == 2 and "undecodable byte 0xe9" in one_line_error(err, path=fasta, line="601:5")
    assert not (tmp_path / "e.npz").exists()
    fasta.write_text(text)
    labels.write_bytes(labels.read_bytes() + b"x0\tF\xe9\tx\n")  # line 302, the byte in column 5
    code, _, err = cli("inspect", d)
    assert code == 2 and "not a labels table (undecodable byte 0xe9" in one_line_error(err, path=labels, line="302:5")


def test_control_character_in_a_header_is_refused_with_its_place(tmp_path, cli):
    text = "".join(f">s{i}\n{'MKTAYIAKQR' * 6}\n" for i in range(100))  # the NUL lies past the 4 KB sniffed
    fasta = tmp_path / "n.fa"
    fasta.write_bytes(text.encode() + b">z\x00z\nMKTA\n")
    code, _, err = cli("embed", "--fasta", fasta, "--model", "kmer:2", "-o", tmp_path / "e.npz")
    assert code == 2 and "control character '\\x00'" in one_line_error(err, path=fasta, line="201:3")


def test_labels_and_sequences_swapped(tmp_path, cli):
    fasta, labels = pair(tmp_path / "d")
    code, _, err = cli("inspect", labels, "--labels", fasta)
    assert code == 2 and "FASTA file, not a labels table" in one_line_error(err, path=fasta, line=1)


def test_nul_byte_in_the_first_kilobytes_is_placed_binary_files_are_not(tmp_path, cli):
    fasta = tmp_path / "n.fa"
    fasta.write_bytes(b">a\nMKTAYIAKQR\n>b\nMKT\x00AY\n")
    code, _, err = cli("embed", "--fasta", fasta, "--model", "kmer:2", "-o", tmp_path / "e.npz")
    assert code == 2 and "binary content: a NUL byte" in one_line_error(err, path=fasta, line="4:4")
    fasta.write_bytes(b"\x7fELF\x02\x01\x00\x00\n\n")  # no line of text before it: no line named
    code, _, err = cli("embed", "--fasta", fasta, "--model", "kmer:2", "-o", tmp_path / "e.npz")
    assert code == 2 and f"{fasta}: not a FASTA file (binary content)" in one_line_error(err, path=fasta)


def test_labels_rows_end_at_newlines_only(tmp_path, cli):
    """A form feed or U+2028 inside a cell (pasted text) does not split the row: the rows and their numbers are
    the editor's."""
    fasta, labels = pair(tmp_path / "d")
    labels.write_text("sequence_id\tfamily_id\tspecies\na\tF1\tx\x0cy\nb\tF1\tz\u2028w\nc\tF2\n")
    code, _, err = cli("inspect", fasta, "--labels", labels)
    assert code == 2 and "expected 3 tab-separated columns, found 2" in one_line_error(err, path=labels, line=4)
