"""``benchmarks/ablation.py score --decoys`` for dense encoders: the dense path equals the sparse index's figures
and a slow NumPy reference; ``untrained:NAME`` builds the ablation baseline's encoder with another config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

LETTERS = np.array(list("ACDEFGHIKLMNPQRSTVWY"))


def _mutant(rng, seq: str, rate: float) -> str:
    s = np.array(list(seq))
    hit = rng.random(len(s)) < rate
    s[hit] = rng.choice(LETTERS, hit.sum())
    return "".join(s)


@pytest.fixture
def toy(tmp_path, monkeypatch, ablation_script):
    """One materialized protein dev set (8 families x 4 members at ~40% substitutions) and 60 random decoys."""
    ablation = ablation_script
    rng = np.random.default_rng(3)
    ids, seqs, fams = [], [], []
    for f in range(8):
        root = "".join(rng.choice(LETTERS, int(rng.integers(60, 160))))
        for m in range(4):
            ids.append(f"f{f}m{m}")
            seqs.append(_mutant(rng, root, 0.4))
            fams.append(f"fam{f}")
    decoys = ["".join(rng.choice(LETTERS, int(rng.integers(50, 200)))) for _ in range(60)]
    folder = tmp_path / "runs" / "dev" / "protein" / "toy"
    folder.mkdir(parents=True)
    (folder / "sequences.fasta").write_text("".join(f">{i}\n{s}\n" for i, s in zip(ids, seqs)))
    (folder / "labels.tsv").write_text("sequence_id\tfamily_id\n" + "".join(f"{i}\t{f}\n" for i, f in zip(ids, fams)))
    monkeypatch.setattr(ablation, "REPO", tmp_path)
    monkeypatch.setattr(ablation, "DATASETS", {"protein": ["toy"]})
    monkeypatch.setattr(ablation, "RECALL_KS", (1, 3, 10, 40))
    monkeypatch.setattr(ablation, "decoy_sequences", lambda alphabet: decoys)
    return ablation, seqs, fams, decoys


def _reference_recall(x: np.ndarray, fams: list[str], n_decoys_rows: np.ndarray, k: int) -> float:
    """Slow recall@k: cosine of every dev row against dev + decoys, self excluded, mean over queries."""
    db = np.concatenate([x, n_decoys_rows])
    db = db / np.linalg.norm(db, axis=1, keepdims=True)
    q = db[:len(x)]
    out = []
    for i in range(len(x)):
        s = db @ q[i]
        s[i] = -np.inf
        top = np.argsort(-s, kind="stable")[:k]
        rel = sum(1 for j in top if j < len(x) and fams[j] == fams[i])
        out.append(rel / (fams.count(fams[i]) - 1))
    return float(np.mean(out))


def test_dense_decoy_scoring_equals_sparse_and_reference(toy):
    ablation, seqs, fams, decoys = toy
    sparse = ablation.score_decoys("kmer:3", "protein")
    dense = ablation.score_decoys("kmer:3", "protein", dense=True)
    assert len(sparse) == len(dense) == 1 and dense[0]["search"] == "dense" and dense[0]["n_decoys"] == 60
    for key in ("top1", "map_r", "auc1", "recall@3", "recall@10", "recall@40"):
        assert dense[0][key] == pytest.approx(sparse[0][key], abs=1e-9), key
    assert 0.0 < dense[0]["recall@10"] < 1.0  # informative: decoys and remote members do get in the way

    from phylocl.workflows.model_spec import resolve_model

    embedder = resolve_model("kmer:3", alphabet="protein")
    x, d = embedder.embed(seqs), embedder.embed(decoys)  # (32, D), (60, D)
    for k in (3, 10):
        assert dense[0][f"recall@{k}"] == pytest.approx(_reference_recall(x, fams, d, k), abs=1e-9)


def test_untrained_spec_builds_the_named_config_at_step_zero(toy):
    ablation = toy[0]
    folder = Path(ablation.untrained_spec("untrained:transformer-tiny", "protein"))
    assert folder == ablation.REPO / "runs" / "ablation" / "protein" / "untrained-transformer-tiny"
    before = (folder / "encoder.pt").read_bytes()
    assert ablation.untrained_spec("untrained:transformer-tiny", "protein") == str(folder)  # built once, reused
    assert (folder / "encoder.pt").read_bytes() == before
    assert ablation.untrained_spec("kmer:3", "protein") == "kmer:3"

    from phylocl.workflows.model_spec import resolve_model

    embedder = resolve_model(str(folder), alphabet="protein")
    assert "transformer" in type(embedder.model.backbone).__name__.lower()
    rows = ablation.score_decoys(str(folder), "protein")  # a dense encoder: no sparse rows, the dense path
    assert rows[0]["search"] == "dense" and 0.0 <= rows[0]["recall@40"] <= 1.0


def _windowed_model(tmp_path, width: int) -> Path:
    """The shipped ``default-protein`` weights in a folder whose ``search.json`` names windows of ``width``."""
    import json
    import shutil

    from phylocl.models.persistence import PRETRAINED_DIR

    folder = tmp_path / "windowed-model"
    shutil.copytree(PRETRAINED_DIR / "default-protein", folder)
    (folder / "search.json").write_text(json.dumps({"windows": width}))
    return folder


def _reference_window_recall(embedder, seqs, fams, decoys, k: int, width: int, stride: int) -> float:
    """Slow recall@k of best-window-pair cosine: every window embedded densely, max over window pairs."""
    from phylocl.retrieval.windowed import window_pieces

    pieces, owners = window_pieces(list(seqs) + list(decoys), width, stride)
    x = embedder.embed(pieces)  # (W, D)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    pair = x @ x.T  # (W, W) window cosines
    n_all = len(seqs) + len(decoys)
    best = np.full((n_all, n_all), -np.inf)
    for a in range(len(pieces)):
        np.maximum.at(best[owners[a]], owners, pair[a])
    out = []
    for i in range(len(seqs)):
        s = best[i].copy()
        s[i] = -np.inf
        top = np.argsort(-s, kind="stable")[:k]
        out.append(sum(1 for j in top if j < len(seqs) and fams[j] == fams[i]) / (fams.count(fams[i]) - 1))
    return float(np.mean(out))


def test_scores_follow_the_models_default_search_path(toy, tmp_path):
    """A model folder whose search.json names windows is scored as tiles of that width, within the set and with
    decoys (what ``phylocl evaluate`` does with it); ``windows=0`` is whole rows; figures equal a slow reference."""
    ablation, seqs, fams, decoys = toy
    folder = str(_windowed_model(tmp_path, 40))
    within, whole = ablation.score(folder, "protein"), ablation.score(folder, "protein", windows=0)
    assert (within[0]["window"], within[0]["stride"]) == (40, 37)  # tiles: W - span + 1, span 4 (spaced 3-mers)
    assert whole[0]["window"] == 0 and "stride" not in whole[0]
    untimed = [{k: v for k, v in r.items() if k != "embed_seconds"} for r in within]
    assert untimed == [{k: v for k, v in r.items() if k != "embed_seconds"}
                       for r in ablation.score(folder, "protein", windows=40)]
    with_decoys = ablation.score_decoys(folder, "protein")
    assert with_decoys[0]["window"] == 40 and with_decoys[0]["n_decoys"] == 60
    assert ablation.score_decoys(folder, "protein", windows=0)[0]["window"] == 0

    from phylocl.workflows.model_spec import resolve_model

    embedder = resolve_model(folder, alphabet="protein")
    for k in (3, 10):
        assert within[0][f"recall@{k}"] == pytest.approx(
            _reference_window_recall(embedder, seqs, fams, [], k, 40, 37), abs=1e-9)
        assert with_decoys[0][f"recall@{k}"] == pytest.approx(
            _reference_window_recall(embedder, seqs, fams, decoys, k, 40, 37), abs=1e-9)
    assert with_decoys[0]["recall@10"] != pytest.approx(  # the decoys matter here, so the check above can fail
        _reference_window_recall(embedder, seqs, fams, [], 10, 40, 37), abs=1e-6)


def test_figures_record_and_use_each_methods_search_path(toy, tmp_path, monkeypatch):
    import json
    import types

    ablation = toy[0]
    folder = str(_windowed_model(tmp_path, 40))
    monkeypatch.setattr(ablation, "FIGURE_METHODS", {"protein": ["kmer:3", folder]})
    monkeypatch.setattr(ablation, "RECALL_KS", (1, 10, 100, 300))  # the table keeps recall@300
    out = tmp_path / "figures.json"
    ablation.cmd_figures(types.SimpleNamespace(alphabets=["protein"], decoys=["protein"], out=str(out)))
    table = json.loads(out.read_text())
    assert table["search"]["protein"] == {"kmer:3": {"window": 0}, folder: {"window": 40, "stride": 37}}
    within = ablation.score(folder, "protein")[0]
    assert table["protein"][folder] == {"toy": round(within["auc1"], 4)}
    assert within["auc1"] != ablation.score(folder, "protein", windows=0)[0]["auc1"]  # windows, not whole rows
    assert table["recall@300_decoys"]["protein"][folder] == {
        "toy": round(ablation.score_decoys(folder, "protein")[0]["recall@300"], 4)}
    cached = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "runs" / "figures").rglob("*.json"))
    assert sum(".w40s37" in c for c in cached) == 2 and len(cached) == 4  # the cut is in the cache's file name
