"""``benchmarks/ablation.py figures`` refuses to write (or cache) empty rows when the dev sets are missing."""

from __future__ import annotations

import importlib.util
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _ablation(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))  # it imports its sibling scripts (peers)
    spec = importlib.util.spec_from_file_location("ablation_bench", REPO / "benchmarks" / "ablation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_figures_refuses_missing_dev_sets_and_empty_scores(tmp_path, monkeypatch):
    ablation = _ablation(monkeypatch)
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
