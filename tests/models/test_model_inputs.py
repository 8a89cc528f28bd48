"""build_encoder / load_encoder / SequenceEncoder called as a user of the Python API would: names, paths, devices
and arguments of the wrong kind are refused in one line naming the argument (and the way out)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import phylocl
from phylocl.errors import InputError
from phylocl.models.encoder import SequenceEncoder

TINY = dict(dim=16, depth=1, ffn_dim=32, embed_dim=8, max_len=32, dropout=0.0)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return phylocl.build_encoder("gmlp-tiny", **TINY)


@pytest.mark.parametrize("name, hint", [
    ("gmlp-smal", "did you mean 'gmlp-small'"),
    ("GMLP-TINY", "did you mean 'gmlp-tiny'"),
    (" gmlp-tiny", "did you mean 'gmlp-tiny'"),
    ("default-protein", r"phylocl.load_encoder\('default-protein'\) reads it"),
])
def test_unknown_names_list_the_registered_ones_and_the_nearest(name, hint):
    with pytest.raises(InputError, match=f"unknown model {name!r}; registered models: amlp-small.*{hint}"):
        phylocl.build_encoder(name)


def test_a_folder_name_points_to_load_encoder(tmp_path, tiny):
    folder = tiny.save_pretrained(tmp_path / "mine")
    with pytest.raises(InputError, match="is a trained model or a path: phylocl.load_encoder"):
        phylocl.build_encoder(str(folder))
    with pytest.raises(TypeError, match="name must be the str name.*PosixPath.*phylocl.load_encoder"):
        phylocl.build_encoder(folder)  # was "unknown model PosixPath(...)"
    with pytest.raises(TypeError, match="name must be the str name.*NoneType"):
        phylocl.build_encoder(None)


def test_a_name_too_long_for_a_path_is_an_unknown_model():
    """The hint looks for a path of that name: a name with a part over 255 bytes made Path.exists() raise, and
    build_encoder raised OSError 'File name too long' instead of naming the registered models."""
    with pytest.raises(InputError, match=r"unknown model 'xxxx.*; registered models: amlp-small"):
        phylocl.build_encoder("x" * 300)


def test_numpy_overrides_count_as_python_numbers():
    enc = phylocl.build_encoder("gmlp-tiny", dim=np.int64(16), depth=np.int32(1), dropout=np.float64(0.25))
    assert (enc.config.dim, enc.config.depth, enc.config.dropout) == (16, 1, 0.25)  # were "must be an integer"
    with pytest.raises(InputError, match="dim must be an integer, got '16'"):
        phylocl.build_encoder("gmlp-tiny", dim="16")


def test_load_encoder_names_a_source_of_the_wrong_type():
    for bad in (None, 3, ["default-protein"]):
        with pytest.raises(TypeError, match="source must be a shipped model name"):  # "expected str, bytes ..."
            phylocl.load_encoder(bad)


def test_load_encoder_takes_device_as_an_alias_and_checks_it(tmp_path, tiny):
    folder = tiny.save_pretrained(tmp_path / "m")
    for kwargs in ({"device": "cpu"}, {"device": torch.device("cpu")}, {"map_location": "cpu", "device": "cpu"}):
        enc = phylocl.load_encoder(str(folder), **kwargs)  # device= was an unexpected keyword
        assert enc.fingerprint() == tiny.fingerprint() and not enc.training
    assert SequenceEncoder.from_pretrained(folder, device="cpu").fingerprint() == tiny.fingerprint()
    with pytest.raises(ValueError, match="map_location 'gpu' is not a device name"):  # was torch's RuntimeError
        phylocl.load_encoder(folder, map_location="gpu")
    with pytest.raises(ValueError, match="device 'cuda:7' was asked for|device 'cuda:7': this machine has"):
        phylocl.load_encoder(folder, device="cuda:7")
    with pytest.raises(ValueError, match="disagree"):
        phylocl.load_encoder(folder, map_location="meta", device="cpu")
    with pytest.raises(TypeError, match="map_location must be a device name"):
        phylocl.load_encoder(folder, map_location={"cuda:0": "cpu"})


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_a_value_error(tmp_path, tiny):
    folder = tiny.save_pretrained(tmp_path / "m")
    with pytest.raises(ValueError, match="no CUDA GPU is available here"):  # was AssertionError
        phylocl.load_encoder(folder, map_location="cuda")
    with pytest.raises(ValueError, match="no CUDA GPU is available here"):
        tiny.embed(["MKV"], device="cuda")


def test_weights_stored_from_any_device_load_on_the_cpu(tmp_path, tiny):
    """A GPU-trained encoder's files hold CPU tensors (save_pretrained and save move them first), and both readers
    load onto the CPU before moving to map_location (torch.load(map_location='cpu'), safetensors device='cpu')."""
    path = tiny.save(tmp_path / "enc.pt")
    payload = torch.load(path, weights_only=True)
    assert all(t.device.type == "cpu" for t in payload["state_dict"].values())
    enc = phylocl.load_encoder(path, map_location="cpu")
    assert next(enc.parameters()).device.type == "cpu" and enc.fingerprint() == tiny.fingerprint()


def test_missing_and_damaged_weights_are_input_errors_naming_the_file(tmp_path, tiny):
    folder = tiny.save_pretrained(tmp_path / "m")
    (folder / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes()[:100])
    with pytest.raises(InputError, match="model.safetensors: not a readable safetensors file"):
        phylocl.load_encoder(folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(InputError, match="model folder without model.safetensors"):
        phylocl.load_encoder(folder)


def test_embed_refuses_arguments_of_the_wrong_kind(tiny):
    with pytest.raises(TypeError, match="sequences must be a str or a list of str, got NoneType"):
        tiny.embed(None)
    with pytest.raises(TypeError, match=r"got dict \(pass list\(d.values\(\)\)"):
        tiny.embed({"a": "MKV"})
    for bad in (2.5, "2", True, 0):  # 2.5 and "2" were deep TypeErrors
        with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
            tiny.embed(["MKV"], batch_size=bad)
    assert tiny.embed(["MKV", "MSTA"], batch_size=np.int64(1)).shape == (2, 8)
    with pytest.raises(ValueError, match="overlap must be a number in"):
        tiny.embed(["MKV"], overlap="0.5")
    with pytest.raises(ValueError, match="device 'gpu' is not a device name"):
        tiny.embed(["MKV"], device="gpu")


def test_gaps_and_stops_are_refused_with_the_way_out(tiny):
    with pytest.raises(InputError, match=r"sequence 2: letter\(s\) '-'.*remove alignment gaps"):
        tiny.embed(["MKV", "MK-V"])
    with pytest.raises(InputError, match=r"letter\(s\) '\*'.*stops"):
        tiny.embed(["MKV*"])
    assert np.allclose(tiny.embed(["mkv"]), tiny.embed(["MKV"]))  # lower case is read as upper


def test_forward_names_a_batch_that_is_not_a_token_batch(tiny):
    with pytest.raises(TypeError, match="batch must be a token batch.*got list; enc.embed"):
        tiny(["MKV"])  # was "list indices must be integers or slices, not str"
    with pytest.raises(TypeError, match=r"got a dict with keys \['input_ids'\]"):
        tiny({"input_ids": torch.ones(1, 3, dtype=torch.long)})  # was KeyError
    with pytest.raises(ValueError, match="input_ids must hold integer token ids, got torch.float32"):
        tiny({"input_ids": torch.ones(1, 3), "attention_mask": torch.ones(1, 3)})
    with pytest.raises(ValueError, match="sequences is empty"):
        tiny.tokenize([])
    assert tiny(tiny.tokenize("MKV")).shape == (1, 8)  # one str is one sequence


@pytest.mark.parametrize("name", ["gmlp-tiny", "kmerprofile-small"])
@pytest.mark.parametrize("bad", [-3, 99])
def test_forward_names_token_ids_outside_the_vocabulary(name, bad):
    enc = phylocl.build_encoder(name, **(TINY if name == "gmlp-tiny" else {}))
    batch = enc.tokenize(["ACDEF", "MKV"])
    batch["input_ids"][0, 1] = bad  # was a bare IndexError ("index out of range in self") or embedding_bag's message
    with pytest.raises(ValueError, match=rf"token id {bad} outside this encoder's vocabulary 0\.\.\d+ \(protein\)"):
        enc(batch)
    batch["input_ids"][0, 1] = enc.embedding.num_embeddings - 1  # the last valid id is read
    assert enc(batch).shape[0] == 2
