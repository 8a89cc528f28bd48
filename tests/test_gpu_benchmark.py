"""benchmarks/gpu.sh and benchmarks/gpu_train.py: the smoke run end to end, the JSON it writes, and the pieces
that produce its figures (retrieval metrics, FLOP count, pair sampler, data pack) against references."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("gpu_train", REPO / "benchmarks" / "gpu_train.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gpu_train = _module()


def _run(*args, timeout=120):
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    return subprocess.run(["bash", str(REPO / "benchmarks" / "gpu.sh"), *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=REPO, check=False)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu") / "smoke.json"
    proc = _run("--smoke", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(out.read_text())


def test_smoke_json_keys_and_sanity(smoke):
    assert set(gpu_train.Report.KEYS) <= set(smoke)
    assert smoke["status"] == "ok" and smoke["errors"] == [] and smoke["smoke"] is True
    assert smoke["throughput"]["tokens_per_s"] > 0 and smoke["throughput"]["steps_done"] == 6
    assert smoke["mfu"] is None and "CPU" in smoke["mfu_reason"]  # no peak is assumed for a CPU
    assert smoke["memory"]["peak_mb"] > 0 and smoke["memory"]["metric"]
    assert smoke["model"]["model_flops_per_token"] == pytest.approx(3 * smoke["model"]["forward_flops_per_token"])
    # a cached step runs the forward twice (no-grad pass and replay) plus the backward: about 4/3 of 3 forwards
    assert 3.5 < smoke["model"]["cached_step_flops_per_token"] / smoke["model"]["forward_flops_per_token"] < 4.5
    curve = smoke["curve"]
    steps = [p["step"] for p in curve]
    assert len(curve) >= 2 and steps == sorted(set(steps)) and steps[0] == 0
    for point in curve:
        for row in point["rows"]:
            for key in ("recall@100", "recall@300", "auc1"):
                assert 0.0 <= row[key] <= 1.0
        assert 0.0 <= point["mean_recall@300"] <= 1.0 and 0.0 <= point["mean_auc1"] <= 1.0
    assert smoke["final"] == curve[-1]
    assert all(np.isfinite(loss) for _, loss in smoke["loss_curve"])


def test_deadline_keeps_what_finished(tmp_path):
    out = tmp_path / "r.json"
    assert gpu_train.main(["train", "--smoke", "--out", str(out), "--deadline-seconds", "0"]) == 1
    r = json.loads(out.read_text())
    assert r["status"] == "partial" and "deadline" in r["errors"][0]["error"]
    assert r["curve"][0]["step"] == 0 and r["model"]["parameters"] > 0  # the untrained start was scored


def test_missing_pack_is_one_line_exit_2(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert gpu_train.main(["train", "--data", str(tmp_path / "absent.npz"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "absent.npz" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_missing_torch_is_reported(tmp_path):
    env = {**os.environ, "PYTHON": "/bin/false"}
    proc = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu.sh"), "--smoke"], capture_output=True, text=True,
                          env=env, cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "cannot import torch" in proc.stderr


def _clustered(rng, n_fam=9, per=(1, 7), dim=6):
    x, labels = [], []
    for f in range(n_fam):
        centre = rng.normal(size=dim)
        for _ in range(int(rng.integers(*per))):
            x.append(centre + rng.normal(scale=1.0, size=dim))
            labels.append(f"f{f}")
    x = np.asarray(x, dtype=np.float32)
    x[5] = x[3]  # exact ties: pessimistic order matters
    x[9] = x[3]
    return x / np.linalg.norm(x, axis=1, keepdims=True), labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_retrieval_figures_match_phylocl_evaluate(seed):
    from phylocl.retrieval.evaluation import evaluate_embeddings

    x, labels = _clustered(np.random.default_rng(seed))
    ks = (1, 3, 10, 300)
    ours = gpu_train.retrieval_figures(torch.from_numpy(x), labels, ks=ks)
    ref = evaluate_embeddings(x, labels, ks=ks)
    assert ours["n_queries"] == ref["n_queries"]
    for key in ("auc1", "top1", *(f"recall@{k}" for k in ks)):
        assert ours[key] == pytest.approx(ref[key], abs=1e-12), key


def test_retrieval_figures_by_hand():
    # rows: a0, a1, b0 on a line; a0's neighbours by score: a1 (0.9) then b0 (0.1) -> recall@1 = 1, auc1 = 1
    x = torch.tensor([[1.0, 0.0], [0.9, 0.43589], [0.1, 0.99499]])
    m = gpu_train.retrieval_figures(x, ["a", "a", "b"], ks=(1, 2))
    assert m["n_queries"] == 2 and m["recall@1"] == 1.0 and m["auc1"] == 1.0
    # a tie between the relevant and the non-relevant row counts the non-relevant one first
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    m = gpu_train.retrieval_figures(x, ["a", "b", "a"], ks=(1,))
    assert m["n_queries"] == 2 and m["recall@1"] == 0.0 and m["auc1"] == 0.0


def test_forward_flop_count_matches_the_gmlp_formula():
    import phylocl

    enc = phylocl.build_encoder("gmlp-tiny", max_len=40)
    c = enc.config
    b, width = 5, 40
    batch = {"input_ids": torch.randint(3, 20, (b, width)), "attention_mask": torch.ones(b, width, dtype=torch.bool)}
    with torch.no_grad():
        counted = gpu_train.count_flops(lambda: enc(batch))
    f = c.ffn_dim
    block = 2 * c.dim * f + 2 * (f // 2) * c.dim + 2 * width * (f // 2)  # proj_in, proj_out, spatial, per token
    head = 2 * c.dim * c.dim + 2 * c.dim * c.embed_dim  # mlp head, per sequence
    assert counted == c.depth * b * width * block + b * head


def test_pair_sampler_rows_are_crops_of_two_members_of_one_family():
    rng = np.random.default_rng(0)
    arrays = [rng.integers(3, 23, size=int(rng.integers(5, 30))) for _ in range(40)]
    family = np.array([i // 4 for i in range(36)] + [100, 101, 102, 103], dtype=np.int32)  # 4 singletons
    tokens, offsets = gpu_train._flat(arrays)
    s = gpu_train.PairSampler(tokens=tokens, offsets=offsets, family=family, max_len=12, seed=1)
    assert s.num_families == 9
    a, b = s.sample(9)
    seqs = ["".join(map(chr, x + 60)) for x in arrays]
    fams_seen = []
    for view_a, view_b in zip(zip(a["input_ids"], a["attention_mask"]), zip(b["input_ids"], b["attention_mask"])):
        owners = []
        for ids, mask in (view_a, view_b):
            n = int(mask.sum())
            assert mask[:n].all() and not mask[n:].any() and (ids[n:] == 0).all()
            crop = "".join(map(chr, ids[:n].numpy() + 60))
            hits = [i for i, q in enumerate(seqs) if crop in q and n == min(len(q), 12)]
            assert hits
            owners.append(hits)
        pairs = [(i, j) for i in owners[0] for j in owners[1] if i != j and family[i] == family[j] < 100]
        assert pairs
        fams_seen.append(family[pairs[0][0]])
    assert sorted(fams_seen) == list(range(9))  # distinct families


def test_pack_round_trip_and_score(tmp_path, capsys):
    data = REPO / "datasets" / "example-mini-mit"
    fams = sorted({line.split("\t")[1] for line in (data / "protein" / "labels.tsv").read_text().splitlines()[1:]})
    dev = fams[:2]
    config = tmp_path / "c.yaml"
    config.write_text(f"data:\n  path: {data / 'protein'}\n  fractions: [1.0, 0.0, 0.0]\n"
                      f"  holdout:\n    val: {json.dumps(dev)}\n    test: []\n")
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"datasets": {"protein": {"val": dev}}}))
    out = tmp_path / "pack.npz"
    gpu_train.main(["pack", "--config", str(config), "--split", str(split), "--data-root", str(data),
                    "--out", str(out)])
    capsys.readouterr()
    p = gpu_train.load_pack(out)
    from phylocl.data.layouts import read_dataset

    ds = read_dataset(data / "protein")
    d = p["dev"][0]
    assert d["dataset"] == "protein" and sorted(set(d["labels"]["family"])) == dev
    want = [ds.alphabet.encode(s) for s, f in zip(ds.sequences, ds.families) if f in dev]
    assert [list(a) for a in d["arrays"]] == [list(a) for a in want]
    _, offsets, family = p["train"]
    assert p["meta"]["n_train_families"] == len(set(family)) == len(fams) - 2
    assert len(offsets) - 1 == sum(f not in dev for f in ds.families)
    # score: kmer:3 on the pack's dev set (token ids decoded back to letters) = phylocl evaluate on the sequences
    from phylocl.retrieval.evaluation import evaluate_embeddings
    from phylocl.workflows.embed_buffers import embed_all
    from phylocl.workflows.model_spec import resolve_model

    gpu_train.main(["score", "kmer:3", "untrained:gmlp-tiny", "--data", str(out), "--max-len", "32"])
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert [x["model"] for x in lines] == ["kmer:3", "untrained:gmlp-tiny"]
    items = [(i, s, f) for i, s, f in zip(ds.ids, ds.sequences, ds.families) if f in dev]
    x, _ = embed_all(items, resolve_model("kmer:3", alphabet="protein"))
    ref = evaluate_embeddings(x, [f for _, _, f in items], ks=(100, 300))
    for key in ("auc1", "recall@100", "top1"):
        assert lines[0]["rows"][0][key] == pytest.approx(ref[key], abs=1e-9)
    assert 0 <= lines[1]["rows"][0]["auc1"] <= 1
