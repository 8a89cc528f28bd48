"""Real sequence files through the CLI (issue 14, part 1): internal stops and rare/ambiguous letters read as the
unknown token and reported, ``--strict`` refusing them, ``--alphabet``, byte-order marks, named pipes."""

from __future__ import annotations

import json
import os
import random
import threading

import numpy as np
import pytest


PROTEOME = (">p1\nMKTAYIAKQRMKTAYIAKQR*\n>p2\nMKTA*YIAKQRMKTAYIAKQR*\n>p3\nMKUAYIAKQRMKTAYIAKQR\n"
            ">p4\nMKTAYIAKQBMKTAYIAKQR\n")
LABELS = "sequence_id\tfamily_id\np1\tF1\np2\tF1\np3\tF2\np4\tF2\n"



@pytest.fixture
def proteome(tmp_path):
    fa, labels = tmp_path / "prot.fa", tmp_path / "labels.tsv"
    fa.write_text(PROTEOME)
    labels.write_text(LABELS)
    return fa, labels


def test_inspect_reports_kind_count_and_first_line(proteome, cli):
    fa, labels = proteome
    code, out, _ = cli("inspect", fa, "--labels", labels)
    assert code == 0
    assert f"1 internal stop (*) in 1 record read as X; first at {fa}:4" in out  # the letter's line
    assert f"1 rare residue (U) in 1 record read as X; first at {fa}:6" in out
    assert f"1 ambiguity code (B) in 1 record read as X; first at {fa}:8" in out
    code, out, _ = cli("inspect", fa, "--labels", labels, "--json")
    got = json.loads(out)["unknown_letters"]
    assert got["internal_stop"] == {"count": 1, "records": 1, "letters": "*", "reads_as": "X", "first": f"{fa}:4"}


STRICT_RUNS = {
    "inspect": lambda fa, lab, tmp: ["inspect", fa, "--labels", lab],
    "embed": lambda fa, lab, tmp: ["embed", "--fasta", fa, "--model", "kmer:2", "-o", tmp / "e.npz", "--quiet"],
    "embed-data": lambda fa, lab, tmp: ["embed", "--data", fa, "--labels", lab, "--model", "kmer:2",
                                        "-o", tmp / "e.npz", "--quiet"],
    "search": lambda fa, lab, tmp: ["search", "--query", fa, "--db", fa, "--model", "kmer:2", "-o", tmp / "h.tsv",
                                    "--quiet"],
    "evaluate": lambda fa, lab, tmp: ["evaluate", "--data", fa, "--labels", lab, "--model", "kmer:2", "--quiet"],
}


@pytest.mark.parametrize("command", sorted(STRICT_RUNS))
def test_lenient_by_default_strict_refuses(proteome, tmp_path, cli, command):
    fa, labels = proteome
    argv = STRICT_RUNS[command](fa, labels, tmp_path)
    code, _, err = cli(*argv)
    assert code == 0, err
    if command != "inspect":
        assert f"note: 1 internal stop (*) in 1 record read as X; first at {fa}:4" in err
    for f in tmp_path.glob("[eh].*"):
        f.unlink()
    code, _, err = cli(*argv, "--strict")
    assert code == 2 and err.count("\n") == 1
    assert f"{fa}:4:5: record 'p2': letter(s) '*' refused by --strict" in err  # line and column of the '*'
    assert not list(tmp_path.glob("[eh].*"))


def test_train_strict_refuses_before_writing(proteome, tmp_path, cli):
    fa, labels = proteome
    code, _, err = cli("train", "--data", fa, "--set", f"data.labels={labels}", "--out", tmp_path / "run",
                       "--strict", "--quiet")
    assert code == 2 and "refused by --strict" in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


def _ambiguous_dna(n=12, length=200, share=0.2, seed=0):
    rng = random.Random(seed)
    return "".join(f">d{i}\n" + "".join(rng.choice("ACGT") if rng.random() > share else rng.choice("RYSWKMBDHVN")
                                       for _ in range(length)) + "\n" for i in range(n))


def test_dna_with_a_fifth_ambiguity_codes_embeds_as_dna(tmp_path, cli):
    fa = tmp_path / "dna.fa"
    fa.write_text(_ambiguous_dna())
    code, _, err = cli("embed", "--fasta", fa, "--model", "default-dna", "-o", tmp_path / "e.npz", "--quiet")
    assert code == 0, err
    assert "ambiguity codes" in err  # counted and reported


def test_alphabet_option_overrides_detection(tmp_path, cli):
    from phylocl.retrieval.embedding_files import load_embeddings

    fa = tmp_path / "dna.fa"
    fa.write_text(_ambiguous_dna(share=0.6))  # mostly ambiguity codes: detected as protein
    code, _, _ = cli("embed", "--fasta", fa, "--model", "kmer:2", "-o", tmp_path / "p.npz", "--quiet")
    assert code == 0 and load_embeddings(tmp_path / "p.npz").model["alphabet"] == "protein"
    code, _, err = cli("embed", "--fasta", fa, "--model", "kmer:2", "--alphabet", "dna",
                       "-o", tmp_path / "d.npz", "--quiet")
    assert code == 0 and load_embeddings(tmp_path / "d.npz").model["alphabet"] == "dna"
    code, _, err = cli("search", "--query", fa, "--db", fa, "--model", "kmer:2", "--alphabet", "dna",
                       "-o", tmp_path / "h.tsv", "--quiet")
    assert code == 0, err
    code, _, err = cli("embed", "--fasta", fa, "--model", "default-dna", "-o", tmp_path / "x.npz", "--quiet")
    assert code == 2 and "--alphabet dna" in err and "--model default-dna" not in err  # never the model in use


def test_byte_order_mark_through_inspect(tmp_path, cli):
    fa, labels = tmp_path / "s.fa", tmp_path / "l.tsv"
    fa.write_bytes(b"\xef\xbb\xbf" + PROTEOME.encode())
    labels.write_bytes(b"\xef\xbb\xbf" + LABELS.encode())
    code, out, err = cli("inspect", fa, "--labels", labels, "--json")
    assert code == 0, err
    assert json.loads(out)["sequences"] == 4


def test_embed_and_search_read_named_pipes(tmp_path, cli):
    from phylocl.retrieval.embedding_files import load_embeddings

    text = "".join(f">s{i}\n{'MKTAYIAKQRGSHMLEDPVV' * 20}\n" for i in range(400)).encode()
    (tmp_path / "db.fa").write_bytes(text)

    def pipe(name):
        fifo = tmp_path / name
        os.mkfifo(fifo)
        t = threading.Thread(target=lambda: open(fifo, "wb").write(text), daemon=True)
        t.start()
        return fifo, t

    fifo, t = pipe("q.pipe")
    code, _, err = cli("embed", "--fasta", fifo, "--model", "kmer:2", "-o", tmp_path / "e.npz", "--quiet")
    t.join(5)
    assert code == 0, err
    got = load_embeddings(tmp_path / "e.npz")
    assert got.ids == [f"s{i}" for i in range(400)] and np.isfinite(got.embeddings).all()
    fifo2, t2 = pipe("q2.pipe")
    code, _, err = cli("search", "--query", fifo2, "--db", tmp_path / "db.fa", "--model", "kmer:2", "-k", "1",
                       "-o", tmp_path / "h.tsv", "--quiet")
    t2.join(5)
    assert code == 0, err
    assert len((tmp_path / "h.tsv").read_text().splitlines()) == 401
