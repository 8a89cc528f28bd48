"""``benchmarks/presets.py``: a preset scores as the options it names, and the scoring matches ``evaluate --align``."""

from __future__ import annotations

import json
import sys

import numpy as np

from phylocl.workflows.evaluate import evaluate

LETTERS = np.array(list("ACDEFGHIKLMNPQRSTVWY"))


def test_presets_script_scores_settings_as_evaluate_does(tmp_path, monkeypatch, capsys, benchmark_script):
    rng = np.random.default_rng(5)
    fasta, labels = [], ["sequence_id\tfamily_id"]
    for f in range(6):
        root = rng.choice(LETTERS, int(rng.integers(60, 140)))
        for m in range(4):
            s = root.copy()
            hit = rng.random(len(s)) < 0.45
            s[hit] = rng.choice(LETTERS, int(hit.sum()))
            fasta.append(f">f{f}_{m}\n{''.join(s)}\n")
            labels.append(f"f{f}_{m}\tf{f}")
    data = tmp_path / "set"
    data.mkdir()
    (data / "sequences.fasta").write_text("".join(fasta))
    (data / "labels.tsv").write_text("\n".join(labels) + "\n")
    decoys = tmp_path / "decoys.fasta"
    decoys.write_text("".join(f">decoy{i}\n{''.join(rng.choice(LETTERS, 100))}\n" for i in range(30)))
    presets = benchmark_script("presets")
    monkeypatch.setattr(sys, "argv", ["presets.py", "--data", str(data), "--decoys", str(decoys), "--work",
                                      str(tmp_path / "w"), "--settings", "500", "default", "3", "--threads", "1"])
    presets.main()
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["candidates"] for r in rows] == [500, 500, 3]
    assert rows[0]["auc1"] == rows[1]["auc1"]  # the preset is its options
    ref = evaluate(data=data, db_extra=decoys, ks=[1], progress=False, align=True, threads=1)
    assert abs(rows[0]["auc1"] - ref["aligned"]["auc1"]) <= 5e-5  # the script prints 4 decimals
    assert rows[2]["auc1"] < rows[0]["auc1"]  # 3 candidates cannot hold a family of 4 with 30 decoys beside
