"""The code in examples/ runs (issue 25: a plain-PyTorch example of sampling pairs, tested)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pairs_pytorch_example_trains_on_the_bundled_data():
    example = _load("pairs_pytorch")
    ds = __import__("phylocl").read_dataset(REPO / "datasets" / "example-mini-mit" / "protein")
    pairs = example.FamilyPairs(ds, max_len=50, seed=1)
    a, b, family = pairs[3]
    members = pairs.families[family]
    assert len(a) <= 50 and any(a in m for m in members) and any(b in m for m in members)  # crops of two members
    losses = example.train(str(REPO / "datasets" / "example-mini-mit" / "protein"), steps=4, batch_size=4)
    assert len(losses) == 4 and all(math.isfinite(v) for v in losses)
    assert losses[0] > 0.5 * math.log(4)  # an untrained encoder: near log(batch), not already solved


def test_pairs_pytorch_example_lowers_the_loss_in_its_default_steps():
    """What `python examples/pairs_pytorch.py` prints: the mean loss of its last 10 steps is below step 1's (a
    single batch's loss is noisy: at 20 steps the last one was above the first)."""
    example = _load("pairs_pytorch")
    losses = example.train(str(REPO / "datasets" / "example-mini-mit" / "protein"))
    assert len(losses) == 50 and sum(losses[-10:]) / 10 < 0.5 * losses[0]
