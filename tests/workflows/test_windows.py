"""``--windows W`` of ``phylocl index``, ``search`` and ``evaluate``: hits equal a slow reference (max over window
pairs of dense cosines), are unique sequences, do not depend on the thread count, go through the alignment stage,
and bad input is refused with one line, exit 2 and nothing written."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from phylocl.retrieval.windowed import window_pieces
from phylocl.models.model_files import default_windows
from phylocl.workflows.model_spec import resolve_model

from families import mutated_families, write_fasta  # tests/workflows/families.py


def _records(seed=0):
    """18 protein records in 3 families of mutated copies, lengths 8..150 (some shorter than the windows)."""
    return mutated_families(families=3, members=6, lengths=(60, 150), rate=0.2, seed=seed, shorten=25)  # 1-5 windows


def _hits(path):
    with open(path, newline="") as f:
        f.readline()
        return [(q, t, float(s), int(r)) for q, t, s, r, *_ in csv.reader(f, delimiter="\t")]


SPAN = {"kmer:3": 3, "default-protein": 4}  # residues one word spans


def _tile(model: str, width: int) -> int:
    """The stride of ``--windows width``: consecutive windows share one word less one residue."""
    return width - SPAN[model] + 1


def _reference(model: str, queries, db, width: int, k: int, stride: int | None = None):
    """Top-k database sequences per query by the best dense cosine over window pairs (windows of ``width`` at
    ``stride``, default the tiles of ``model``), own id left out."""
    emb = resolve_model(model, alphabet="protein")
    stride = stride or _tile(model, width)
    qp, qo = window_pieces([s for _, s in queries], width, stride)
    dp, do = window_pieces([s for _, s in db], width, stride)
    sims = emb.embed(qp) @ emb.embed(dp).T  # (Wq, Wd) dense rows
    best = np.full((len(queries), len(db)), -np.inf)
    for i, qi in enumerate(qo):
        for j, dj in enumerate(do):
            best[qi, dj] = max(best[qi, dj], sims[i, j])
    out = {}
    for qi, (qid, _) in enumerate(queries):
        order = [j for j in np.argsort(-best[qi], kind="stable") if db[j][0] != qid][:k]
        out[qid] = [(db[j][0], float(best[qi, j])) for j in order]
    return out


def _check(rows, ref, k):
    got = {}
    for q, t, s, r in rows:
        got.setdefault(q, []).append((t, s, r))
    assert set(got) == set(ref)
    for q, hits in got.items():
        assert [r for *_, r in hits] == list(range(1, k + 1))
        assert len({t for t, *_ in hits}) == k  # each database sequence once
        np.testing.assert_allclose([s for _, s, _ in hits], [s for _, s in ref[q]], atol=1e-5)
        for (t, s, _), (t2, s2) in zip(hits, ref[q]):
            assert t == t2 or abs(s - s2) < 1e-5  # ties may swap


@pytest.fixture
def db(tmp_path):
    return write_fasta(tmp_path / "db.fasta", _records())


@pytest.mark.parametrize("model, width", [("kmer:3", 40), ("default-protein", 50)])
def test_windowed_index_and_db_search_equal_the_reference(tmp_path, db, cli, model, width):
    queries = _records()[::4] + [("new", _records()[2][1][5:45])]
    qf = write_fasta(tmp_path / "q.fasta", queries)
    code, out, err = cli("index", "--fasta", db, "--model", model, "--windows", width, "-o", tmp_path / "ix", "--quiet")
    assert code == 0, err
    stride = _tile(model, width)
    assert f"sparse-windows (stride={stride}, window={width}), 18 sequences" in out
    meta = json.loads((tmp_path / "ix" / "meta.json").read_text())
    assert (meta["ntotal"], meta["params"]) == (18, {"window": width, "stride": stride})
    assert meta["rows"] == len(window_pieces([s for _, s in _records()], width, stride)[0])
    code, out, err = cli("index", "--verify", tmp_path / "ix")
    assert code == 0 and "files match their checksums" in out
    assert cli("search", "--no-align", "--query", qf, "--index", tmp_path / "ix", "-k", 6, "-o", tmp_path / "a.tsv",
               "--quiet")[0] == 0
    assert cli("search", "--no-align", "--query", qf, "--db", db, "--model", model, "--windows", width, "-k", 6,
               "-o", tmp_path / "b.tsv", "--quiet")[0] == 0
    a, b = _hits(tmp_path / "a.tsv"), _hits(tmp_path / "b.tsv")
    ref = _reference(model, queries, _records(), width, 6)
    _check(a, ref, 6)
    _check(b, ref, 6)
    assert a[0][1] != a[0][0]  # a query of the database does not hit itself


def test_query_set_against_itself_threads_and_alignment_stage(tmp_path, db, cli, monkeypatch):
    outputs = []
    for threads in ("1", "3"):
        monkeypatch.setenv("OMP_NUM_THREADS", threads)
        out = tmp_path / f"h{threads}.tsv"
        assert cli("search", "--no-align", "--query", db, "--db", db, "--model", "kmer:3", "--windows", 30, "-k", 17,
                   "-o", out, "--quiet")[0] == 0
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    _check(_hits(tmp_path / "h1.tsv"), _reference("kmer:3", _records(), _records(), 30, 17), 17)
    # the alignment stage takes the windowed candidates (sequences) unchanged: index and --db agree
    assert cli("index", "--fasta", db, "--model", "kmer:3", "--windows", 30, "-o", tmp_path / "ix", "--quiet")[0] == 0
    for name, where in (("x", ["--index", tmp_path / "ix"]), ("y", ["--db", db, "--model", "kmer:3", "--windows", 30])):
        code, out, err = cli("search", "--query", db, *where, "-k", 5, "--candidates", 8, "--threads", 1,
                             "-o", tmp_path / f"{name}.tsv", "--quiet")
        assert code == 0, err
    x = (tmp_path / "x.tsv").read_text()
    assert x == (tmp_path / "y.tsv").read_text() and x.startswith("query\ttarget\tscore\trank\tbitscore\tevalue\n")
    pairs = [tuple(line.split("\t")[:2]) for line in x.splitlines()[1:]]
    assert len(pairs) == len(set(pairs)) and all(q != t for q, t in pairs)


def test_evaluate_with_windows(tmp_path, db, cli):
    recs = _records()
    data = tmp_path / "data"
    data.mkdir()
    write_fasta(data / "sequences.fasta", recs)
    (data / "labels.tsv").write_text("sequence_id\tfamily_id\n" + "".join(f"{i}\t{i.split('_')[0]}\n" for i, _ in recs))
    code, out, err = cli("evaluate", "--data", data, "--model", "kmer:3", "--windows", 40, "-k", 1, 5, "--json",
                         "--quiet")
    assert code == 0, err
    r = json.loads(out)
    assert r["windows"] == {"window": 40, "stride": 38}
    ref = _reference("kmer:3", recs, recs, 40, 5)
    fam = {i: i.split("_")[0] for i, _ in recs}
    top1 = np.mean([fam[ref[q][0][0]] == fam[q] for q, _ in recs])  # no ties at the top of these lists
    assert r["top1"] == pytest.approx(top1)
    code, out, err = cli("evaluate", "--data", data, "--model", "kmer:3", "--windows", 1000, "-k", 1, 5, "--json",
                         "--quiet")  # one window per sequence: the whole-sequence figures
    whole = json.loads(cli("evaluate", "--data", data, "--model", "kmer:3", "-k", 1, 5, "--json", "--quiet")[1])
    assert all(json.loads(out)[k] == pytest.approx(whole[k]) for k in ("top1", "recall@5", "map_r", "auc1"))


@pytest.mark.parametrize("argv, message", [
    (["index", "--model", "kmer:3", "--windows", -8], "--windows must be a positive number"),
    (["index", "--model", "kmer:3", "--windows", 5], "too small for kmer:3, whose words span 3 residues: use at "
                                                     "least 6"),
    (["index", "--model", "default-protein", "--windows", 7], "whose words span 4 residues"),
    (["index", "--model", "kmer:3:64", "--windows", 40], "gives dense rows"),
    (["search-db", "--model", "kmer:3", "--windows", 2], "too small"),
    (["search-db", "--model", "kmer:3:64", "--windows", 40], "dense rows"),
    (["evaluate", "--model", "kmer:3", "--windows", 4], "too small"),
    # the model's default windows at bf16 (no sparse rows) were dropped in silence: whole rows, other figures
    (["evaluate", "--model", "default-protein", "--precision", "bf16"], "default-protein is used as windows of 200 "
     "residues, which need its sparse rows at fp32; drop --precision bf16, or give --windows 0"),
    (["search-db", "--model", "default-protein", "--precision", "bf16"], "drop --precision bf16, or give --windows 0"),
])
def test_bad_windows_exit_2_one_line_nothing_written(tmp_path, db, cli, argv, message):
    command, *rest = argv
    out = tmp_path / "out"
    if command == "index":
        full = ["index", "--fasta", db, "-o", out, *rest]
    elif command == "search-db":
        full = ["search", "--query", db, "--db", db, "-o", out, *rest]
    else:
        data = tmp_path / "data"
        data.mkdir()
        write_fasta(data / "sequences.fasta", _records())
        (data / "labels.tsv").write_text("sequence_id\tfamily_id\n" + "".join(f"{i}\t{i[:2]}\n" for i, _ in _records()))
        full = ["evaluate", "--data", data, "--per-family", out, *rest]
    code, _, err = cli(*full, "--quiet")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_windowed_index_refuses_other_models_and_widths(tmp_path, db, cli):
    assert cli("index", "--fasta", db, "--model", "kmer:3", "--windows", 40, "-o", tmp_path / "ix", "--quiet")[0] == 0
    assert cli("index", "--fasta", db, "--model", "kmer:3", "-o", tmp_path / "whole", "--quiet")[0] == 0
    out = tmp_path / "h.tsv"
    for argv, message in (
        (["--index", tmp_path / "ix", "--model", "kmer:2"], "index was built with model kmer:3"),
        (["--index", tmp_path / "ix", "--model", "default-protein"], "index was built with model kmer:3"),
        (["--index", tmp_path / "ix", "--windows", 60], "built with windows of 40 residues"),
        (["--index", tmp_path / "whole", "--windows", 40], "holds one row per sequence"),
    ):
        code, _, err = cli("search", "--query", db, *argv, "-o", out, "--quiet")
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists()
    for width in (40, -5):  # a negative width is refused too, not ignored (0: one row per sequence, accepted)
        code, _, err = cli("index", "--embeddings", tmp_path / "e.npz", "--windows", width, "-o", tmp_path / "f")
        assert code == 2 and "--windows needs --fasta" in err and not (tmp_path / "f").exists()
    # --windows equal to the index's own is accepted
    assert cli("search", "--query", db, "--index", tmp_path / "ix", "--windows", 40, "--no-align", "-o", out,
               "--quiet")[0] == 0


def _model_folder(tmp_path, search: str | None):
    """A copy of the shipped default-protein folder whose search.json holds ``search`` (``None``: no file)."""
    import shutil

    from phylocl.models.persistence import PRETRAINED_DIR

    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(PRETRAINED_DIR / "default-protein" / name, folder / name)
    if search is not None:
        (folder / "search.json").write_text(search)
    return folder


def test_shipped_default_protein_names_windows_of_200_other_models_none(tmp_path, db, cli):
    from phylocl.models.persistence import PRETRAINED_DIR

    assert default_windows(PRETRAINED_DIR / "default-protein") == 200
    assert default_windows(PRETRAINED_DIR / "default-dna") is None
    assert resolve_model("default-protein", alphabet="protein").default_windows == 200
    assert resolve_model("kmer:3", alphabet="protein").default_windows is None
    for model, argv, kind, params in (("default-protein", [], "sparse-windows", {"window": 200, "stride": 197}),
                                      ("default-protein", ["--windows", 0], "sparse", {}),
                                      ("kmer:3", [], "sparse", {})):
        out = tmp_path / f"ix-{model}-{len(argv)}"
        assert cli("index", "--fasta", db, "--model", model, *argv, "-o", out, "--quiet")[0] == 0
        meta = json.loads((out / "meta.json").read_text())
        assert (meta["kind"], meta["params"]) == (kind, params)


def test_model_default_windows_are_used_unless_windows_0(tmp_path, db, cli):
    folder = _model_folder(tmp_path, '{"windows": 50}')
    queries = _records()[::4] + [("new", _records()[2][1][5:45])]
    qf = write_fasta(tmp_path / "q.fasta", queries)
    runs = {"default": [], "50": ["--windows", 50], "0": ["--windows", 0], "budget": ["--word-budget", 1],
            "0-budget": ["--windows", 0, "--word-budget", 1]}
    hits = {}
    for name, argv in runs.items():
        code, _, err = cli("search", "--no-align", "--query", qf, "--db", db, "--model", folder, *argv, "-k", 6,
                           "-o", tmp_path / f"{name}.tsv", "--quiet")
        assert code == 0, err
        hits[name] = (tmp_path / f"{name}.tsv").read_text()
    assert hits["default"] == hits["50"] == hits["budget"] and hits["0"] == hits["0-budget"] != hits["default"]
    _check(_hits(tmp_path / "default.tsv"), _reference("default-protein", queries, _records(), 50, 6), 6)
    _check(_hits(tmp_path / "0.tsv"), _reference("default-protein", queries, _records(), 1000, 6, stride=1000), 6)
    assert cli("index", "--fasta", db, "--model", folder, "-o", tmp_path / "ix", "--quiet")[0] == 0
    meta = json.loads((tmp_path / "ix" / "meta.json").read_text())
    assert (meta["kind"], meta["params"]) == ("sparse-windows", {"window": 50, "stride": 47})
    assert cli("search", "--no-align", "--query", qf, "--index", tmp_path / "ix", "-k", 6, "-o", tmp_path / "i.tsv",
               "--quiet")[0] == 0
    assert (tmp_path / "i.tsv").read_text() == hits["default"]
    code, _, err = cli("search", "--no-align", "--query", qf, "--index", tmp_path / "ix", "--word-budget", 1, "-k",
                       6, "-o", tmp_path / "w.tsv", "--quiet")  # budget 1: exact, through a windowed bundle too
    assert code == 0, err
    assert (tmp_path / "w.tsv").read_text() == hits["default"]
    recs = _records()
    data = tmp_path / "data"
    data.mkdir()
    write_fasta(data / "sequences.fasta", recs)
    (data / "labels.tsv").write_text("sequence_id\tfamily_id\n" + "".join(f"{i}\t{i.split('_')[0]}\n" for i, _ in recs))
    ev = {}
    for name, argv in (("default", []), ("50", ["--windows", 50]), ("0", ["--windows", 0])):
        code, out, err = cli("evaluate", "--data", data, "--model", folder, *argv, "-k", 1, 5, "--json", "--quiet")
        assert code == 0, err
        ev[name] = json.loads(out)
    assert ev["default"]["windows"] == ev["50"]["windows"] == {"window": 50, "stride": 47} and "windows" not in ev["0"]
    assert all(ev["default"][k] == ev["50"][k] for k in ("top1", "recall@5", "map_r", "auc1"))


@pytest.mark.parametrize("search, message", [('{"windows": "x"}', '"windows" must be a number'),
                                             ('{"windows": -5}', '"windows" must be a number'),
                                             ("[200]", "cannot read the model's search defaults"),
                                             ("{", "cannot read the model's search defaults")])
def test_bad_search_json_exit_2_one_line(tmp_path, db, cli, search, message):
    folder = _model_folder(tmp_path, search)
    out = tmp_path / "h.tsv"
    code, _, err = cli("search", "--query", db, "--db", db, "--model", folder, "-o", out, "--quiet")
    assert code == 2 and message in err and "search.json" in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_a_bundle_of_half_overlapping_windows_is_searched_with_its_own_stride(tmp_path, db, cli, monkeypatch):
    import phylocl.retrieval.windowed as windowed

    with monkeypatch.context() as m:  # a bundle written before tiles: stride W // 2
        m.setattr(windowed, "window_stride", lambda width, span=None: width // 2)
        assert cli("index", "--fasta", db, "--model", "kmer:3", "--windows", 40, "-o", tmp_path / "ix",
                   "--quiet")[0] == 0
    assert json.loads((tmp_path / "ix" / "meta.json").read_text())["params"] == {"window": 40, "stride": 20}
    queries = _records()[::4]
    qf = write_fasta(tmp_path / "q.fasta", queries)
    assert cli("search", "--no-align", "--query", qf, "--index", tmp_path / "ix", "-k", 6, "-o", tmp_path / "a.tsv",
               "--quiet")[0] == 0
    _check(_hits(tmp_path / "a.tsv"), _reference("kmer:3", queries, _records(), 40, 6, stride=20), 6)
