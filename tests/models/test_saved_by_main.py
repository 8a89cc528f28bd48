"""Model folders and a legacy encoder.pt written by phylocl 0.1 (main before the per-backbone configs) still load,
with the same fingerprints and embeddings (tests/models/fixtures/main-0.1, made by make_main_fixture.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from phylocl.models.persistence import load_encoder

FIXTURE = Path(__file__).parent / "fixtures" / "main-0.1"
EXPECTED = json.loads((FIXTURE / "expected.json").read_text())["models"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_folder_written_by_main_loads_and_embeds_identically(name):
    enc = load_encoder(FIXTURE / name)
    want = EXPECTED[name]
    assert enc.fingerprint() == want["fingerprint"]  # so its embedding files and indexes stay usable
    # float32 unit vectors: torch's CPU kernels sum in another order on another CPU (seen: 4.6e-7 on one machine,
    # under 2e-7 on the one that wrote the fixture); a wrong weight or layer moves them by far more
    np.testing.assert_allclose(enc.embed(want["sequences"]), np.array(want["embeddings"]), atol=5e-6)


def test_a_legacy_encoder_file_written_by_main_loads():
    enc = load_encoder(FIXTURE / "gmlp-protein-legacy.pt")
    assert enc.fingerprint() == EXPECTED["gmlp-protein"]["fingerprint"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_saving_again_keeps_the_fingerprint(tmp_path, name):
    enc = load_encoder(FIXTURE / name)
    again = load_encoder(enc.save_pretrained(tmp_path / name))
    assert again.fingerprint() == EXPECTED[name]["fingerprint"]
    assert again.config == enc.config
