"""Shared helpers for the encoder tests: every registered config, shrunk so each test takes well under a second."""

from __future__ import annotations

import numpy as np
import torch

from phylocl.models.registry import build_encoder, get_config, list_models

PROTEIN = "ACDEFGHIKLMNPQRSTVWY"
MODELS = list_models()


def fast_overrides(name: str) -> dict:
    """Small widths for any registered config; backbone, pooling, head and aMLP-ness stay as registered."""
    cfg = get_config(name)
    out = {"dim": 32, "depth": 2, "ffn_dim": 64, "embed_dim": 16, "max_len": 32, "dropout": 0.0, "drop_path": 0.0}
    if cfg.backbone == "transformer":
        out["heads"] = 2
    if cfg.attn_dim is not None:
        out["attn_dim"] = 16
    if cfg.moe_experts:
        out["moe_ffn_dim"] = 64
    if cfg.backbone == "smlp":
        out.update(smlp_dense=1, smoe_chunk=8)
    if cfg.attention == "deberta":
        out["rel_buckets"] = 8
    return out


def make_encoder(name: str, seed: int = 0, **extra) -> torch.nn.Module:
    torch.manual_seed(seed)
    values = {**fast_overrides(name), **extra}
    if get_config(name).backbone == "kmerprofile":  # its width follows from the alphabet and word length
        from phylocl.models.kmerprofile import profile_dim

        values.pop("ffn_dim")
        values["dim"] = values["embed_dim"] = profile_dim(values.get("alphabet", "protein"), values["depth"],
                                                          values.get("similar_rank", 0))
    return build_encoder(name, **values)


def pools_itself(name: str) -> bool:
    """True for the k-mer backbones, which pool token ids themselves (mean pooling only)."""
    return get_config(name).backbone in ("kmerbag", "kmerprofile")


def random_protein(length: int, rng: np.random.Generator) -> str:
    return "".join(rng.choice(list(PROTEIN), size=length))
