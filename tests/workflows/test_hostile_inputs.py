"""Hostile inputs beyond the listed ones (issue 14): each is one line, exit 2, no traceback, nothing written; and
limits that must not follow the user's numbers (search -k)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from phylocl.cli import main

FASTA = ">a\nMKTAYIAKQR\n>b\nMKTAYIAKQK\n>c\nGSHMLEDPVV\n>d\nGSHMLEDPAV\n"
LABELS = "sequence_id\tfamily_id\na\tF1\nb\tF1\nc\tF2\nd\tF2\n"



@pytest.fixture
def files(tmp_path):
    fa, labels = tmp_path / "s.fa", tmp_path / "l.tsv"
    fa.write_text(FASTA)
    labels.write_text(LABELS)
    return fa, labels


@pytest.mark.parametrize("model, index_class", [("kmer:2", "SparseIndex"), ("kmer:2:8", "RetrievalIndex")])
def test_search_k_is_clamped_to_the_database_before_allocating(tmp_path, cli, files, monkeypatch, model,
                                                                index_class):
    from phylocl.retrieval import index, sparse_index

    cls = getattr(index, index_class, None) or getattr(sparse_index, index_class)  # full profiles go sparse
    seen = []
    real = cls.search

    def spy(self, queries, k, **kw):
        seen.append(k)
        return real(self, queries, k, **kw)

    monkeypatch.setattr(cls, "search", spy)
    fa, _ = files
    code, _, err = cli("search", "--no-align", "--query", fa, "--db", fa, "--model", model, "-k", 10_000_000,
                       "-o", tmp_path / "h.tsv", "--quiet")
    assert code == 0, err
    assert seen and max(seen) <= 4
    rows = (tmp_path / "h.tsv").read_text().splitlines()[1:]
    assert len(rows) == 4 * 3  # every other database row for each query (self hits left out)
    seen.clear()  # the alignment stage's --candidates is clamped the same way
    code, _, err = cli("search", "--query", fa, "--db", fa, "--model", model, "--candidates", 10_000_000,
                       "-o", tmp_path / "h.tsv", "--quiet")
    assert code == 0, err
    assert seen and max(seen) <= 4


@pytest.mark.parametrize("case, needle", [
    ("fasta-as-model", "not a phylocl encoder file (a FASTA file)"),
    ("utf16", "UTF-16 text (save it as UTF-8)"),
    ("unreadable-folder", "permission denied"),
    ("unreadable-labels", "cannot read: permission denied"),
])
def test_one_line_refusals(tmp_path, cli, files, monkeypatch, case, needle):
    fa, labels = files
    argv = ["inspect", fa, "--labels", labels]
    if case == "fasta-as-model":
        argv = ["embed", "--fasta", fa, "--model", fa, "-o", tmp_path / "e.npz", "--quiet"]
    elif case == "utf16":
        fa.write_bytes(FASTA.encode("utf-16"))
    elif case == "unreadable-folder":
        d = tmp_path / "fams"
        d.mkdir()
        real = Path.iterdir

        def denied(self):
            if self == d:
                raise PermissionError(13, "Permission denied", str(self))
            return real(self)

        monkeypatch.setattr(Path, "iterdir", denied)
        argv = ["inspect", d]
    else:
        import phylocl.data.textio as textio

        real_open = open

        def guarded(path, *a, **k):
            if Path(path) == labels:
                raise PermissionError(13, "Permission denied")
            return real_open(path, *a, **k)

        monkeypatch.setattr(textio, "open", guarded, raising=False)
    code, out, err = cli(*argv)
    assert code == 2 and err.count("\n") == 1 and needle in err, err
    assert not (tmp_path / "e.npz").exists()


def test_alphabet_mismatch_never_suggests_the_model_in_use(tmp_path, cli):
    dna = tmp_path / "dna.fa"
    dna.write_text("".join(f">d{i}\nACGTACGTTGCAACGTACGTAAGTACGGT\n" for i in range(4)))
    code, _, err = cli("embed", "--fasta", dna, "--model", "default-protein", "-o", tmp_path / "e.npz",
                       "--quiet")
    assert code == 2 and "--model default-dna" in err and "--alphabet protein" in err
    prot = tmp_path / "p.fa"
    prot.write_text(FASTA)
    code, _, err = cli("embed", "--fasta", prot, "--model", "default-dna", "-o", tmp_path / "e.npz",
                       "--quiet")
    assert code == 2 and "--model default-protein" in err and "--model default-dna" not in err


def test_mismatch_error_picks_another_model():
    from types import SimpleNamespace

    from phylocl.data.alphabet import DNA
    from phylocl.workflows.inputs import mismatch_error

    embedder = SimpleNamespace(alphabet=DNA, name="default-protein", source="x")  # impossible but checks the pick
    msg = str(mismatch_error("protein", embedder, path="f.fa"))
    assert "--model kmer:3" in msg and "--model default-protein" not in msg


def test_a_closed_stdout_pipe_ends_quietly(capsys, monkeypatch, files):
    import phylocl.data.inspect as inspect_mod

    def broken(summary):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(inspect_mod, "format_summary", broken)
    fa, labels = files
    assert main(["inspect", str(fa), "--labels", str(labels)]) == 141
    assert capsys.readouterr().err == ""


def test_a_pipe_without_labels_asks_for_them(tmp_path, cli):
    import threading

    fifo = tmp_path / "s.pipe"
    os.mkfifo(fifo)
    threading.Thread(target=lambda: open(fifo, "w").write(FASTA), daemon=True).start()
    code, _, err = cli("inspect", fifo)
    assert code == 2 and "a single FASTA file needs a labels table" in err and err.count("\n") == 1
    with open(fifo) as f:  # let the writer thread finish if the pipe was never opened
        f.read()
