"""Registry: names from the YAML files, overrides, describe_model, the CLI listing, encoder files."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

import phylocl
from phylocl.cli import main
from phylocl.errors import InputError
from phylocl.models.encoder import SequenceEncoder
from phylocl.models.backbone_config import family_config
from phylocl.models.encoder_config import EncoderConfig
from phylocl.models.registry import CONFIG_DIR, build_encoder, describe_model, get_config, list_models, load_encoder

from .helpers import MODELS, make_encoder

REQUIRED = {"gmlp-tiny", "gmlp-small", "gmlp-base", "amlp-small", "transformer-tiny", "transformer-small",
            "transformer-base", "smlp-tiny", "smlp-small", "gmlp-small-moe", "transformer-small-moe",
            "transformer-small-deberta"}


def test_issue15_configs_resolve_their_options():
    smlp = get_config("smlp-small")
    assert (smlp.backbone, smlp.smlp_dense, smlp.depth, smlp.moe_experts) == ("smlp", 3, 6, 4)
    assert get_config("gmlp-small-moe").moe_experts == get_config("transformer-small-moe").moe_experts == 4
    assert get_config("transformer-small-deberta").attention == "deberta"
    assert get_config("transformer-small").attention == "rope" and get_config("gmlp-small").moe_experts == 0


def test_list_models_is_sorted_and_matches_yaml_files():
    names = phylocl.list_models()
    assert names == sorted(names) == list_models()
    assert names == sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    assert REQUIRED <= set(names)


@pytest.mark.parametrize("name", MODELS)
def test_every_yaml_names_its_alphabet_and_describes(name):
    import yaml

    raw = yaml.safe_load((CONFIG_DIR / f"{name}.yaml").read_text())
    assert raw["alphabet"] == "protein"
    info = describe_model(name)
    assert info["name"] == name and info["backbone"] == raw["backbone"]
    family = family_config(get_config(name))
    assert set(info) == {f.name for f in dataclasses.fields(family)} | {"parameters"}  # its family's keys only
    assert EncoderConfig.from_dict({k: v for k, v in info.items() if k != "parameters"}) == get_config(name)
    if raw["backbone"].startswith("kmer"):
        assert not {"heads", "attention", "rope_base", "moe_experts"} & set(info)
    json.dumps(info)  # plain JSON-able values
    if name.endswith("tiny"):  # meta-device count equals a real build's count
        assert info["parameters"] == build_encoder(name).num_parameters()


def test_sizes_are_ordered():
    for family in ("gmlp", "transformer"):
        counts = [describe_model(f"{family}-{size}")["parameters"] for size in ("tiny", "small", "base")]
        assert counts[0] < 30_000 < 500_000 < counts[1] < 5_000_000 < 20_000_000 < counts[2]
    assert describe_model("amlp-small")["attn_dim"] == 64
    assert describe_model("amlp-small")["parameters"] > describe_model("gmlp-small")["parameters"]
    assert describe_model("gmlp-base")["max_len"] == 512 and describe_model("gmlp-base")["dim"] == 512


def test_overrides_apply_and_validate():
    enc = build_encoder("gmlp-small", alphabet="dna", max_len=48, dropout=0.0, depth=1)
    assert isinstance(enc, SequenceEncoder)
    assert enc.alphabet.name == "dna" and enc.max_len == 48 and enc.config.depth == 1
    assert enc.config["max_len"] == 48 and enc.config.to_dict()["alphabet"] == "dna"
    assert enc.backbone.blocks[0].sgu.weight.shape == (48, 48)
    assert build_encoder("gmlp-tiny", pooling="cls").backbone.blocks[0].sgu.weight.shape == (65, 65)
    with pytest.raises(ValueError, match=r"unknown encoder config key\(s\) \['widht'\]; valid keys: .*'dim'"):
        build_encoder("gmlp-tiny", widht=3)
    with pytest.raises(ValueError, match="dropout must be in"):
        build_encoder("gmlp-tiny", dropout=1.5)
    with pytest.raises(InputError, match="unknown model 'gmlp-huge'; registered models: amlp-small"):
        build_encoder("gmlp-huge")


def test_public_api_through_package_root(tmp_path):
    torch.manual_seed(0)
    enc = phylocl.build_encoder("transformer-tiny")
    X = enc.embed(["MKVLAAGIV", "MSTA"])
    enc.save(tmp_path)  # a directory gets encoder.pt
    assert (tmp_path / "encoder.pt").is_file()
    assert (phylocl.load_encoder(tmp_path).embed(["MKVLAAGIV", "MSTA"]) == X).all()
    assert not list(tmp_path.glob(".*tmp*"))  # the atomic temp file is gone


def test_load_encoder_errors(tmp_path):
    with pytest.raises(InputError, match="encoder not found") as err:
        load_encoder(tmp_path / "missing.pt")
    assert err.value.path.endswith("missing.pt")
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"not a torch file at all")
    with pytest.raises(InputError, match="not a phylocl encoder file \\(not a torch file\\)") as err:
        load_encoder(bad)
    assert err.value.path == str(bad)
    fasta = tmp_path / "seqs.fa"
    fasta.write_text(">a\nMKT\n")
    with pytest.raises(InputError, match=r"not a phylocl encoder file \(a FASTA file\)") as err:
        load_encoder(fasta)
    assert "\n" not in str(err.value)
    path = make_encoder("gmlp-tiny").save(tmp_path / "good.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:200])
    with pytest.raises(InputError, match="not a readable encoder file, truncated or damaged") as err:
        load_encoder(truncated)
    assert "\n" not in str(err.value)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(InputError, match="not a phylocl encoder file"):
        load_encoder(other)
    payload = torch.load(path, weights_only=True)
    payload["config"]["dim"] = 48  # weights no longer fit the config
    torch.save(payload, other)
    with pytest.raises(InputError, match="does not match its config"):
        load_encoder(other)
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(InputError, match="encoder not found"):
        load_encoder(tmp_path / "empty_dir")


def test_cli_models_lists_and_describes(capsys):
    assert main(["models"]) == 0
    assert capsys.readouterr().out.split() == list_models()
    assert main(["models", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert sorted(info) == list_models()
    assert info["gmlp-tiny"]["parameters"] == describe_model("gmlp-tiny")["parameters"]


def test_get_config_resolves_defaults():
    cfg = get_config("transformer-tiny", ffn_dim=None)
    assert cfg.ffn_dim == 4 * cfg.dim
    assert get_config("gmlp-tiny", alphabet="rna").alphabet == "dna"
