"""Per-backbone-family configs: each holds only its family's keys and rebuilds the flat EncoderConfig exactly."""

from __future__ import annotations

import json

import pytest

from phylocl.models.backbone_config import (KmerBagConfig, KmerProfileConfig, StackConfig, family_config,
                                            flat_values, stored_dict)
from phylocl.models.encoder_config import EncoderConfig
from phylocl.models.registry import get_config, list_models


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_round_trips_through_its_family(name):
    config = get_config(name)
    family = family_config(config)
    assert family.encoder_config() == config
    assert EncoderConfig.from_dict(flat_values(stored_dict(config))) == config
    assert EncoderConfig.from_dict(stored_dict(config)) == config  # from_dict reads the family form itself


def test_kmer_families_name_depth_for_what_it_is():
    profile = family_config(get_config("kmerprofile-small"))
    assert isinstance(profile, KmerProfileConfig) and profile.word_length == 3
    assert not hasattr(profile, "depth") and not hasattr(profile, "ffn_dim") and not hasattr(profile, "heads")
    assert profile.encoder_config().dim == 24000  # 3 patterns x 20^3, filled in
    bag = family_config(get_config("kmerbag-small"))
    assert isinstance(bag, KmerBagConfig) and bag.k == 3 and not hasattr(bag, "depth")
    assert isinstance(family_config(get_config("gmlp-tiny")), StackConfig)


def test_a_stored_kmer_profile_holds_only_its_keys(tmp_path):
    from phylocl.models.registry import build_encoder

    enc = build_encoder("kmerprofile-small", alphabet="dna", word_length=2)
    stored = json.loads((enc.save_pretrained(tmp_path / "m") / "config.json").read_text())
    assert "word_length" in stored and not {"depth", "ffn_dim", "heads", "rope_base", "moe_ffn_dim"} & set(stored)


def test_old_names_still_set_the_family_keys():
    # training configs written before the family configs override `depth` (and the width that follows from it)
    new = get_config("kmerprofile-small", alphabet="dna", word_length=5)
    old = get_config("kmerprofile-small", alphabet="dna", depth=5, dim=3072, embed_dim=3072, drop_path=0.0)
    assert old == new and new.dim == 3072
    assert get_config("kmerbag-small", depth=2) == get_config("kmerbag-small", k=2)


def test_conflicting_or_odd_values_are_refused_or_kept():
    with pytest.raises(ValueError, match="not both"):
        flat_values({"backbone": "kmerprofile", "word_length": 3, "depth": 3})
    with pytest.raises(ValueError, match="embed_dim == dim"):  # a width that does not follow from word_length
        EncoderConfig.from_dict({"backbone": "kmerprofile", "word_length": 3, "dim": 7, "max_len": 64})
    with pytest.raises(ValueError, match=r"missing encoder config key\(s\) \['max_len'\]"):
        EncoderConfig.from_dict({"backbone": "kmerprofile", "word_length": 3})
    odd = get_config("kmerprofile-small").replace(heads=8)  # a value the backbone ignores: stored flat, not lost
    assert stored_dict(odd)["heads"] == 8 and EncoderConfig.from_dict(flat_values(stored_dict(odd))) == odd


def test_reading_a_stored_config_and_listing_shipped_models_need_no_torch():
    import subprocess
    import sys

    code = ("import json, sys; from phylocl.models.encoder_config import EncoderConfig; "  # 3 x (20^3 + 32)
            "from phylocl.models.persistence import PRETRAINED_DIR, shipped_models; "
            "c = json.loads((PRETRAINED_DIR / 'default-protein' / 'config.json').read_text()); "
            "c = {k: v for k, v in c.items() if k not in ('model_type', 'phylocl_version')}; "
            "assert EncoderConfig.from_dict(c).dim == 24096 and shipped_models(); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
