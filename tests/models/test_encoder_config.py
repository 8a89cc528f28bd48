"""EncoderConfig validation: every bad value fails at construction with a message naming the key."""

from __future__ import annotations

import pytest

from phylocl.models.encoder_config import EncoderConfig

BASE = dict(backbone="gmlp", dim=32, depth=2, max_len=64, embed_dim=16)


@pytest.mark.parametrize(
    "change,message",
    [
        ({"backbone": "lstm"}, "backbone must be one of"),
        ({"dim": 0}, "dim must be >= 1"),
        ({"depth": 2.5}, "depth must be an integer"),
        ({"max_len": True}, "max_len must be an integer"),
        ({"pooling": "max"}, "pooling must be one of"),
        ({"head": "conv"}, "head must be one of"),
        ({"dropout": -0.1}, "dropout must be in"),
        ({"drop_path": "0.1"}, "drop_path must be a number"),
        ({"alphabet": "klingon"}, "unknown alphabet"),
        ({"ffn_dim": 33}, "ffn_dim must be even"),
        ({"attn_dim": 0}, "attn_dim must be >= 1"),
        ({"sgu_init_eps": 2.0}, "sgu_init_eps"),
        ({"backbone": "transformer", "heads": 3}, "must split into 3 heads"),
        ({"backbone": "transformer", "heads": 32}, "heads of even size"),
        ({"backbone": "transformer", "attn_dim": 8}, "gmlp backbone only"),
        ({"backbone": "transformer", "heads": 2, "rope_base": 1}, "rope_base"),
    ],
)
def test_invalid_values_raise(change, message):
    with pytest.raises(ValueError, match=message):
        EncoderConfig(**{**BASE, **change})


def test_round_trip_and_replace():
    cfg = EncoderConfig(**BASE)
    assert cfg.ffn_dim == 128 and cfg.alphabet == "protein" and cfg.num_special == 0
    assert EncoderConfig.from_dict(cfg.to_dict()) == cfg
    cls = cfg.replace(pooling="cls", dropout=0)
    assert cls.num_special == 1 and cls.dropout == 0.0 and isinstance(cls.dropout, float)
    with pytest.raises(ValueError, match=r"unknown encoder config key\(s\) \['depht'\]"):
        cfg.replace(depht=3)
    with pytest.raises(KeyError):
        cfg["nope"]


def test_options_added_later_keep_the_fingerprint_identity_at_their_defaults():
    from phylocl.models.encoder_config import EncoderConfig

    base = EncoderConfig(backbone="transformer", dim=16, depth=2, ffn_dim=32, heads=2, max_len=32, alphabet="protein",
                         embed_dim=8)
    identity = base.identity_dict()
    assert "moe_experts" not in identity and "attention" not in identity and "moe_ffn_dim" not in identity
    assert set(base.to_dict()) - set(identity) == {"attention", "rel_buckets", "moe_experts", "moe_every",
                                                   "moe_ffn_dim", "moe_capacity_factor", "smlp_dense", "smoe_chunk",
                                                   "word_weights", "similar_rank"}
    similar = EncoderConfig(backbone="kmerprofile", dim=3 * (8000 + 2), depth=3, max_len=32, head="none",
                            embed_dim=3 * (8000 + 2), similar_rank=2)
    assert similar.identity_dict()["similar_rank"] == 2
    with pytest.raises(ValueError, match="dim = embed_dim = 24006"):
        EncoderConfig(backbone="kmerprofile", dim=24000, depth=3, max_len=32, head="none", embed_dim=24000,
                      similar_rank=2)
    with pytest.raises(ValueError, match="similar_rank applies to the kmerprofile backbone only"):
        EncoderConfig(backbone="transformer", dim=16, depth=2, ffn_dim=32, heads=2, max_len=32, embed_dim=8,
                      similar_rank=2)
    moe = EncoderConfig(backbone="transformer", dim=16, depth=2, ffn_dim=32, heads=2, max_len=32, alphabet="protein",
                        embed_dim=8, moe_experts=4)
    assert moe.identity_dict()["moe_experts"] == 4
