"""Facts the code knows, checked against the sentences of README.md and docs/ that state them (issue 25: make
drift hard). When a shipped model is retrained or the dev-figures table changes, these fail until the docs say so."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _text(name: str) -> str:
    return " ".join((REPO / name).read_text(encoding="utf-8").split())  # sentences wrap across lines


@pytest.fixture(scope="module")
def defaults() -> dict[str, str]:
    """The method used without --model, per alphabet, as the code chooses it from dev-figures.json."""
    from phylocl.workflows.model_spec import default_model

    return {a: default_model(a).spec for a in ("protein", "dna")}


def test_readme_names_the_default_model_of_each_alphabet(defaults):
    m = re.search(r"the best measured method per alphabet, today `([^`]+)` \([^)]*\) / `([^`]+)`", _text("README.md"))
    assert m, "README.md no longer states the default models in the expected sentence"
    assert (m.group(1), m.group(2)) == (defaults["protein"], defaults["dna"])


def test_retrieval_doc_names_the_default_model_of_each_alphabet(defaults):
    m = re.search(r"today `([^`]+)` for protein, `([^`]+)` for DNA", _text("docs/retrieval.md"))
    assert m, "docs/retrieval.md no longer states the default models in the expected sentence"
    assert (m.group(1), m.group(2)) == (defaults["protein"], defaults["dna"])


@pytest.mark.parametrize("name", ["default-protein", "default-dna"])
def test_models_doc_table_matches_the_shipped_model(name):
    """docs/models.md's first table: parameters, output width, window and size of each shipped model."""
    from phylocl.models.persistence import PRETRAINED_DIR, load_encoder

    enc = load_encoder(name)
    row = next((line for line in (REPO / "docs" / "models.md").read_text().splitlines()
                if line.startswith(f"| `{name}` |")), None)
    assert row is not None, f"docs/models.md has no table row for {name}"
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[4] == f"{enc.num_parameters():,}", f"{name}: docs say {cells[4]} parameters"
    assert f"{enc.config.embed_dim:,}-d output" in cells[3], f"{name}: output width {enc.config.embed_dim:,}"
    assert re.search(rf"{enc.config.max_len:,}-(residue|nt) windows", cells[3]), f"window {enc.config.max_len:,}"
    size = sum(p.stat().st_size for p in (PRETRAINED_DIR / name).iterdir()) / 1e6
    assert cells[5] == f"{size:.1f} MB", f"{name}: {size:.1f} MB on disk, docs say {cells[5]}"
