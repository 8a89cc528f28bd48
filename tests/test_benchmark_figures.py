"""``benchmarks/ablation.py figures`` refuses to write (or cache) empty rows when the dev sets are missing."""

from __future__ import annotations

import types

import pytest


def test_figures_refuses_missing_dev_sets_and_empty_scores(tmp_path, monkeypatch, ablation_script):
    ablation = ablation_script
    monkeypatch.setattr(ablation, "REPO", tmp_path)  # runs/dev/... and the runs/figures cache live here now
    out = tmp_path / "dev-figures.json"
    args = types.SimpleNamespace(alphabets=["dna"], decoys=[], out=str(out))
    with pytest.raises(SystemExit, match="materialize dna"):
        ablation.cmd_figures(args)
    ablation.dev_dir("dna").mkdir(parents=True)  # present, but every method scores nothing
    monkeypatch.setattr(ablation, "score", lambda method, alphabet: [])
    with pytest.raises(SystemExit, match="scored no dev set"):
        ablation.cmd_figures(args)
    assert not out.exists() and not list((tmp_path / "runs" / "figures").rglob("*.json"))
