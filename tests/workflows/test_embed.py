"""``phylocl embed``: model specs, streamed embedding in input order, labels, progress, atomicity, bad input."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import phylocl
from phylocl.cli import main
from phylocl.errors import InputError
from phylocl.workflows import progress_bar
from phylocl.retrieval.embedding_files import load_embeddings
from phylocl.models.kmer import KmerEmbedder
from phylocl.workflows import embed as embed_mod
from phylocl.workflows import model_spec
from phylocl.workflows.embed import embed
from phylocl.workflows.model_spec import ResolvedModel, resolve_model

AA = "ACDEFGHIKLMNPQRSTVWY"


def _protein_families(n_fam=4, members=5, seed=0):
    """``{family: [sequence, ...]}``: mutated copies of random roots of different lengths (10..150 residues)."""
    rng = np.random.default_rng(seed)
    fams = {}
    for f in range(n_fam):
        root = rng.choice(list(AA), size=int(rng.integers(10, 150)))
        seqs = []
        for _ in range(members):
            s = root.copy()
            hit = rng.random(len(s)) < 0.2
            s[hit] = rng.choice(list(AA), size=int(hit.sum()))
            seqs.append("".join(s[: len(s) - int(rng.integers(0, 5))]))
        fams[f"fam{f}"] = seqs
    return fams


def write_dataset(folder: Path, fams: dict, *, extra_columns: dict | None = None) -> Path:
    """Write ``sequences.fasta`` + ``labels.tsv`` (ids ``<family>_<k>``); returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = [(f"{fam}_{k}", fam, s) for fam, seqs in fams.items() for k, s in enumerate(seqs)]
    (folder / "sequences.fasta").write_text("".join(f">{i} some description\n{s}\n" for i, _, s in ids))
    cols = list(extra_columns or {})
    rows = ["\t".join(["sequence_id", "family_id", *cols])]
    rows += ["\t".join([i, fam, *(extra_columns[c][fam] for c in cols)]) for i, fam, _ in ids]
    (folder / "labels.tsv").write_text("\n".join(rows) + "\n")
    return folder


def write_fasta(path: Path, records) -> Path:
    path.write_text("".join(f">{i}\n{s}\n" for i, s in records))
    return path


@pytest.fixture
def encoder_path(tmp_path):
    torch.manual_seed(0)
    (tmp_path / "model").mkdir()
    return phylocl.build_encoder("gmlp-tiny").save(tmp_path / "model")  # model/encoder.pt


@pytest.fixture
def dataset(tmp_path):
    return write_dataset(tmp_path / "data", _protein_families())


def _records(folder):
    text = (folder / "sequences.fasta").read_text().split(">")[1:]
    return [(r.split()[0], r.splitlines()[1]) for r in text]


# ----------------------------------------------------------------------------- model specs
def test_resolve_kmer_encoder_file_and_directory(encoder_path):
    k = resolve_model("kmer:2", alphabet="dna")
    assert k.alphabet.name == "dna" and k.dim == 16 and k.model_info()["name"] == "kmer:2"
    enc = phylocl.load_encoder(encoder_path)
    for spec in (encoder_path, encoder_path.parent):
        e = resolve_model(str(spec))
        assert e.model_info()["fingerprint"] == enc.fingerprint() and e.dim == 32 and e.alphabet.name == "protein"
        assert np.allclose(e.embed(["MKVLA", "ACDEFGH"]), enc.embed(["MKVLA", "ACDEFGH"]), atol=1e-6)


def test_resolve_shipped_model_and_measured_default(tmp_path, monkeypatch, encoder_path):
    import json

    from phylocl.workflows import defaults

    table = tmp_path / "dev-figures.json"
    monkeypatch.setattr(defaults, "DEV_FIGURES", table)
    monkeypatch.setattr(model_spec, "choose_default",
                        lambda alphabet, *, shipped: defaults.choose_default(alphabet, shipped=shipped, path=table))
    from phylocl.models import persistence

    monkeypatch.setattr(persistence, "PRETRAINED_DIR", tmp_path / "pretrained")
    # the encoder measures better than kmer:3 on protein, but is not installed yet: kmer:3 is used
    table.write_text(json.dumps({"protein": {"kmer:3": {"a": 0.5, "b": 0.5}, "default-protein": {"a": 0.9, "b": 0.6}},
                                 "dna": {"kmer:5": {"a": 0.8}, "default-dna": {"a": 0.7}}}))
    e = resolve_model(None, alphabet="protein")
    assert e.model_info()["name"] == "kmer:3" and e.default_choice.skipped == ("default-protein",)
    with pytest.raises(InputError, match="default-protein.*no pretrained model is shipped"):
        resolve_model("default-protein")
    phylocl.load_encoder(encoder_path).save_pretrained(tmp_path / "pretrained" / "default-protein")
    assert model_spec.shipped_models() == ["default-protein"]
    fp = phylocl.load_encoder(encoder_path).fingerprint()
    chosen = resolve_model(None, alphabet="protein")  # installed and better: the encoder
    assert chosen.model_info()["fingerprint"] == fp
    assert chosen.model_info()["default_choice"]["ranking"] == [["default-protein", 0.75], ["kmer:3", 0.5]]
    assert resolve_model("default-protein").model_info()["fingerprint"] == fp
    assert "default_choice" not in resolve_model("default-protein").model_info()
    assert resolve_model(None, alphabet="dna").model_info()["name"] == "kmer:5"  # the k-mer measures better


@pytest.mark.parametrize("spec, message", [
    ("no-such-model", "unknown model 'no-such-model'.*phylocl train"),
    ("gmlp-tiny", "untrained architecture"),
    ("kmer:x", "kmer:K"),
    ("kmer:4", "limited to 8192"),  # 20^4 protein dimensions
])
def test_resolve_bad_specs(spec, message):
    with pytest.raises(InputError, match=message):
        resolve_model(spec, alphabet="protein")


def test_kmer_needs_an_alphabet_and_cuda_needs_a_gpu():
    with pytest.raises(InputError, match="alphabet"):
        resolve_model("kmer:2")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU"):
            resolve_model("kmer:2", alphabet="protein", device="cuda")


# ----------------------------------------------------------------------------- embedding
def test_streamed_fasta_matches_direct_embedding_in_input_order(tmp_path, dataset, encoder_path, monkeypatch):
    """A FASTA larger than the buffer: rows and ids equal one direct ``enc.embed`` call, in file order; no
    buffer is read ahead of what is being embedded."""
    records = _records(dataset)
    fasta = write_fasta(tmp_path / "q.fasta", records)
    read, calls = [0], []
    original = embed_mod.fasta_records

    def counting(path, embedder):
        for rec in original(path, embedder):
            read[0] += 1
            yield rec

    original_embed = ResolvedModel.embed

    def spy(self, seqs, *, batch_size=64):
        calls.append((read[0], [len(s) for s in seqs]))
        return original_embed(self, seqs, batch_size=batch_size)

    monkeypatch.setattr(embed_mod, "fasta_records", counting)
    monkeypatch.setattr(ResolvedModel, "embed", spy)
    res = embed(out=tmp_path / "e.npz", model=str(encoder_path), fasta=fasta, batch_size=3, buffer_size=7,
                progress=False)
    got = load_embeddings(tmp_path / "e.npz")
    direct = phylocl.load_encoder(encoder_path).embed([s for _, s in records])
    assert res.n == len(records) == 20 and got.ids == [i for i, _ in records] and got.labels is None
    assert got.embeddings.dtype == np.float32 and np.allclose(got.embeddings, direct, atol=1e-5)
    assert got.model["fingerprint"] == phylocl.load_encoder(encoder_path).fingerprint()
    # buffers of 7: the first batch is embedded after reading 7 records, never more than one buffer ahead
    assert calls[0][0] == 7 and all(n_read <= 7 * (1 + b // 3) for b, (n_read, _) in enumerate(calls))
    assert all(max(lens) <= 150 and len(lens) <= 3 for _, lens in calls)
    assert calls[0][1] == sorted(calls[0][1], reverse=True)  # each buffer is embedded longest first
    first_buffer = sorted((len(s) for _, s in records[:7]), reverse=True)
    assert [n for _, lens in calls[:3] for n in lens] == first_buffer


def test_embed_dataset_stores_family_labels_via_cli(tmp_path, dataset, capsys):
    out = tmp_path / "sub" / "e.npz"
    assert main(["embed", "--model", "kmer:2", "--data", str(dataset), "-o", str(out)]) == 0
    cap = capsys.readouterr()
    assert "wrote 20 embeddings (dim 400, model kmer:2, with family labels)" in cap.out
    assert "embedding" not in cap.err  # the tqdm bar is shown on a terminal only (stderr is captured here)
    got = load_embeddings(out)
    records = _records(dataset)
    assert got.ids == [i for i, _ in records] and got.labels == [i.rsplit("_", 1)[0] for i, _ in records]
    ref = KmerEmbedder(k=2, alphabet="protein").embed([s for _, s in records])
    assert np.allclose(got.embeddings, ref, atol=1e-6)


def test_embed_fasta_plus_labels_and_quiet(tmp_path, dataset, capsys):
    out = tmp_path / "e.npz"
    assert main(["embed", "--model", "kmer:1", "--data", str(dataset / "sequences.fasta"), "--labels",
                 str(dataset / "labels.tsv"), "-o", str(out), "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    assert load_embeddings(out).labels[:2] == ["fam0", "fam0"]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("error", [RuntimeError("device lost"), KeyboardInterrupt()])
def test_failure_mid_embed_leaves_no_output_file(tmp_path, dataset, monkeypatch, error):
    calls = []
    original = ResolvedModel.embed

    def failing(self, seqs, *, batch_size=64):
        calls.append(len(seqs))
        if len(calls) > 1:
            raise error
        return original(self, seqs, batch_size=batch_size)

    monkeypatch.setattr(ResolvedModel, "embed", failing)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    argv = ["embed", "--model", "kmer:2", "--fasta", str(dataset / "sequences.fasta"), "-o",
            str(out_dir / "e.npz"), "--batch-size", "4", "--quiet"]
    if isinstance(error, KeyboardInterrupt):
        assert main(argv) == 130
    else:
        with pytest.raises(RuntimeError, match="device lost"):
            main(argv)
    # no output, no spool or temporary file; only the (empty) shard folder a rerun resumes from
    assert len(calls) == 2 and [p.name for p in out_dir.iterdir()] == ["e.npz.shards"]
    assert [p.name for p in (out_dir / "e.npz.shards").iterdir()] == ["manifest.json"]


def test_existing_output_survives_a_failed_run(tmp_path, dataset):
    out = tmp_path / "e.npz"
    out.write_bytes(b"previous")
    bad = write_fasta(tmp_path / "bad.fasta", [("a", "MKVLA"), ("b", "MK1LA")])
    assert main(["embed", "--model", "kmer:2", "--fasta", str(bad), "-o", str(out), "--quiet"]) == 2
    assert out.read_bytes() == b"previous" and _leftovers(tmp_path) == []


# ----------------------------------------------------------------------------- bad input
DNA_RECORDS = [(f"d{i}", "ACGTTGCAAGCTTGCAACGTAGCTAGCTAGGCTA"[i:] + "ACGT") for i in range(5)]


@pytest.mark.parametrize("case, pattern", [
    ("missing", r"missing\.fasta: no such file"),
    ("empty", r"empty\.fasta: empty file"),
    ("dna_for_protein_model", r"dna\.fasta:1: record 'd0' looks like DNA, but model gmlp-tiny .* reads protein"),
    ("bad_letter_late", r"late\.fasta:10:5: record 'd4': letter\(s\) 'J' not in the dna alphabet"),
    ("output_is_dir", r"output is a directory"),
    ("labels_without_data", r"--labels goes with --data"),
])
def test_bad_input_is_one_line_exit_2_and_no_file(tmp_path, encoder_path, capsys, case, pattern):
    out = tmp_path / "e.npz"
    model = ["--model", str(encoder_path)]
    if case == "missing":
        args = ["--fasta", str(tmp_path / "missing.fasta")]
    elif case == "empty":
        (tmp_path / "empty.fasta").write_text("\n")
        args = ["--fasta", str(tmp_path / "empty.fasta")]
    elif case == "dna_for_protein_model":
        args = ["--fasta", str(write_fasta(tmp_path / "dna.fasta", DNA_RECORDS))]
    elif case == "bad_letter_late":
        recs = DNA_RECORDS[:4] + [("d4", "ACGTJACGT")]
        args, model = ["--fasta", str(write_fasta(tmp_path / "late.fasta", recs))], ["--model", "kmer:3"]
    elif case == "output_is_dir":
        out.mkdir()
        args = ["--fasta", str(write_fasta(tmp_path / "p.fasta", [("a", "MKVLA")]))]
    else:
        args = ["--fasta", str(write_fasta(tmp_path / "p.fasta", [("a", "MKVLA")])), "--labels", "x.tsv"]
    assert main(["embed", *model, *args, "-o", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("phylocl embed: error: ") and err.count("\n") == 1
    assert re.search(pattern, err), err
    assert out.is_dir() if case == "output_is_dir" else not out.exists()
    assert _leftovers(tmp_path) == []


def test_protein_dataset_for_a_dna_model_names_a_record(tmp_path, dataset, capsys):
    dna_model = phylocl.build_encoder("gmlp-tiny", alphabet="dna").save(tmp_path / "dna.pt")
    out = tmp_path / "e.npz"
    assert main(["embed", "--model", str(dna_model), "--data", str(dataset), "-o", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "record 'fam0_0' looks like protein, but model gmlp-tiny" in err and "reads DNA" in err
    assert not out.exists()


def test_fasta_and_data_together_is_a_usage_error(tmp_path, dataset):
    with pytest.raises(SystemExit) as exc:
        main(["embed", "--fasta", "a.fa", "--data", str(dataset), "-o", str(tmp_path / "e.npz")])
    assert exc.value.code == 2


# ----------------------------------------------------------------------------- progress
class Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_shows_count_rate_and_eta_on_a_terminal_only():
    out = Tty()
    with progress_bar("embedding", total=10, stream=out) as bar:
        for _ in range(10):
            bar.update(1)
    text = out.getvalue()
    assert "embedding" in text and "10/10" in text and "sequences/s" in text and "<" in text  # elapsed<ETA
    log = io.StringIO()  # a batch job's log: no isatty() -> nothing written
    with progress_bar("embedding", total=10, stream=log) as bar:
        bar.update(10)
    assert log.getvalue() == ""
    quiet = Tty()  # --quiet on a terminal
    with progress_bar("x", stream=quiet, enabled=False) as bar:
        bar.update(3)
        bar.update(2)
    assert quiet.getvalue() == "" and bar.n == 5 and bar.disable  # still counts, as a disabled tqdm bar does


def test_embed_reports_progress_through_tqdm(tmp_path, dataset, encoder_path):
    fasta = write_fasta(tmp_path / "q.fasta", _records(dataset))
    out = Tty()
    embed(out=tmp_path / "e.npz", model=str(encoder_path), fasta=fasta, batch_size=4, stream=out)
    assert "embedding" in out.getvalue() and "20" in out.getvalue()


@pytest.mark.parametrize("model, wide", [("kmer:3", True), ("kmer:2", False), ("encoder", False)])
def test_wide_sparse_rows_get_a_note_naming_their_size_and_the_sparse_index(model, wide, tmp_path, dataset,
                                                                            encoder_path, capsys):
    """A model with sparse rows of 4,096 columns or more (kmer:3: 8,000) is written dense, 4 x dim bytes a
    sequence: ``embed`` says so up front and points to ``phylocl index --fasta``; narrow or dense rows get no note."""
    spec = str(encoder_path) if model == "encoder" else model
    for quiet in ([], ["--quiet"]):  # shown before the work, or (quiet) after it with the other notes
        out = tmp_path / f"e{len(quiet)}.npz"
        assert main(["embed", "--data", str(dataset), "--model", spec, "-o", str(out), *quiet]) == 0
        err = capsys.readouterr().err
        notes = [line for line in err.splitlines() if "sparse rows" in line]
        n = len(load_embeddings(out).ids)
        if not wide:
            assert notes == []
            continue
        assert len(notes) == 1 and notes[0].startswith("phylocl embed: note: kmer:3 gives sparse rows 8,000 wide")
        assert f"{4 * 8000 * n / 1e6:,.1f} MB for these {n:,}" in notes[0] and "phylocl index --fasta" in notes[0]
    if wide:  # a quiet run that fails prints its one error line only
        bad = tmp_path / "bad.fasta"
        bad.write_text(">a\nMKVLAAG\n" * 1 + "".join(f">s{i}\nMKVLAAGLL\n" for i in range(300)) + ">a\nMKV\n")
        assert main(["embed", "--fasta", str(bad), "--model", spec, "-o", str(tmp_path / "f.npz"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("phylocl embed: error: ") and err.count("\n") == 1 and "duplicate" in err


@pytest.mark.parametrize("argv, message", [
    (["--shard-size", "0"], "--shard-size must be a whole number >= 1, got 0"),  # named --devices, --num-nodes too
    (["--devices", "0"], "--devices must be a whole number >= 1, got 0"),
    (["--batch-size", "0"], "--batch-size must be a whole number >= 1, got 0"),  # named the buffer size too
])
def test_a_bad_size_is_named_alone(tmp_path, capsys, argv, message):
    fasta = write_fasta(tmp_path / "p.fasta", [("a", "MKVLA")])
    assert main(["embed", "--model", "kmer:2", "--fasta", str(fasta), "-o", str(tmp_path / "e.npz"), *argv]) == 2
    assert capsys.readouterr().err == f"phylocl embed: error: {message}\n"


@pytest.mark.parametrize("kwargs, message", [
    ({"shard_size": 2.5}, "shard_size must be a whole number >= 1, got 2.5"),  # was a ValueError from islice
    ({"batch_size": True}, "batch_size must be a whole number >= 1, got True"),  # was batches of one
])
def test_python_sizes_that_are_not_whole_numbers_are_refused(tmp_path, kwargs, message):
    fasta = write_fasta(tmp_path / "p.fasta", [("a", "MKVLA")])
    with pytest.raises(InputError, match=message):
        embed(out=tmp_path / "e.npz", model="kmer:2", fasta=fasta, progress=False, **kwargs)
    assert not (tmp_path / "e.npz").exists()


def test_more_cpu_ranks_than_usable_cores_are_refused_before_anything_starts(tmp_path, capsys, monkeypatch):
    """``embed --devices 64`` on 2 CPU cores started 64 processes (296 s and more); the ranks are processes, so more
    of them than usable cores is one line, exit 2, before any process or file."""
    import phylocl.align.workers as workers

    monkeypatch.setattr(workers, "usable_cpus", lambda: 2)
    fasta = write_fasta(tmp_path / "p.fasta", [("a", "MKVLA")])
    out = tmp_path / "e.npz"
    assert main(["embed", "--model", "kmer:2", "--fasta", str(fasta), "-o", str(out), "--device", "cpu",
                 "--devices", "3"]) == 2
    assert capsys.readouterr().err == ("phylocl embed: error: --devices 3 on the CPU starts 3 processes, and phylocl "
                                       "may use 2 cores here; give 2 or fewer\n")
    assert not out.exists() and not any(p.name.startswith("e.npz") for p in tmp_path.iterdir())
