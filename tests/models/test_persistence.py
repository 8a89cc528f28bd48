"""Model folders (config.json + model.safetensors), legacy .pt files and shipped names through one load_encoder."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import phylocl
from phylocl.errors import InputError
from phylocl.models.encoder import SequenceEncoder
from phylocl.models.persistence import load_encoder, shipped_models

from .helpers import make_encoder, random_protein

SEQS = ["MKVLAAGIVRRR", "MSTA", "ACDEFGHIKLMNPQRSTVWYACDEFGHIKLMNPQRSTVWY"]  # the last is windowed (max_len 32)


@pytest.mark.parametrize("name", ["gmlp-tiny", "transformer-tiny"])
def test_save_pretrained_round_trip_without_pickle(tmp_path, monkeypatch, name):
    enc = make_encoder(name, dropout=0.1)
    folder = enc.save_pretrained(tmp_path / "model")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "phylocl-encoder" and config["dim"] == enc.config.dim
    assert config["phylocl_version"] == phylocl.__version__

    def no_pickle(*args, **kwargs):
        raise AssertionError("torch.load (pickle) used to read a model folder")

    monkeypatch.setattr(torch, "load", no_pickle)
    x = enc.embed(SEQS)
    for source in (folder, str(folder), folder / "model.safetensors", folder / "config.json"):
        again = phylocl.load_encoder(source)
        assert not again.training and again.config == enc.config
        assert again.fingerprint() == enc.fingerprint()
        np.testing.assert_array_equal(again.embed(SEQS), x)
    assert SequenceEncoder.from_pretrained(folder).fingerprint() == enc.fingerprint()


def test_legacy_pt_file_and_train_folder_still_load(tmp_path):
    enc = make_encoder("gmlp-tiny")
    path = enc.save(tmp_path / "enc.pt")
    enc.save(tmp_path / "run")  # run/encoder.pt, as `phylocl train` writes
    assert phylocl.load_encoder(path).fingerprint() == enc.fingerprint()
    assert phylocl.load_encoder(tmp_path / "run").fingerprint() == enc.fingerprint()


def test_shipped_names_load_by_name():
    names = shipped_models()
    assert names == ["default-dna", "default-protein"]
    for name in names:
        enc = phylocl.load_encoder(name)
        assert isinstance(enc, SequenceEncoder) and enc.config.name == name


def test_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="encoder not found.*shipped models: default-dna, default-protein"):
        load_encoder("default-amoeba")
    folder = make_encoder("gmlp-tiny").save_pretrained(tmp_path / "m")
    weights = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(weights[:100])
    with pytest.raises(InputError, match="not a readable safetensors file") as err:
        load_encoder(folder)
    assert err.value.path.endswith("model.safetensors")
    (folder / "model.safetensors").write_bytes(weights)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "dim": 48}))
    with pytest.raises(InputError, match="does not match its config"):
        load_encoder(folder)
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "bert"}))
    with pytest.raises(InputError, match="not a phylocl model config") as err:
        load_encoder(folder)
    assert err.value.path.endswith("config.json")
    (folder / "config.json").write_text("{not json")
    with pytest.raises(InputError, match="not a readable model config"):
        load_encoder(folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(InputError, match="without model.safetensors"):
        load_encoder(folder)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        make_encoder("gmlp-tiny").save_pretrained(tmp_path / "file")


def test_a_train_run_that_has_not_exported_is_named_so(tmp_path):
    """``embed/diagnose --model RUN`` (or load_encoder) of a run still training, or stopped, said 'encoder not
    found: RUN is not an encoder file, a model folder ...' of a phylocl train run folder."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "interrupted.ckpt").write_bytes(b"x")
    (run / "config.yaml").write_text("trainer: {max_steps: 3}\n")
    with pytest.raises(InputError, match="a phylocl train run that has not exported its model .* phylocl train "
                                         "--resume --out "):
        load_encoder(run)
    (run / "checkpoints" / "interrupted.ckpt").unlink()
    with pytest.raises(InputError, match="encoder not found"):  # no checkpoint: not a run to finish
        load_encoder(run)
    # the checkpoint file itself said "not a phylocl encoder file (expected a dict with 'config' and 'state_dict')"
    torch.save({"state_dict": {}, "global_step": 3, "epoch": 0}, run / "checkpoints" / "best.ckpt")
    with pytest.raises(InputError, match="a phylocl train .Lightning. checkpoint, not an encoder file: load the run "
                                         "folder .*run once it has exported its model"):
        load_encoder(run / "checkpoints" / "best.ckpt")


def test_embed_options(capsys):
    rng = np.random.default_rng(0)
    enc = make_encoder("gmlp-tiny")
    seqs = [random_protein(int(n), rng) for n in rng.integers(5, 80, size=9)]
    x = enc.embed(seqs, batch_size=4)
    t = enc.embed(seqs, batch_size=4, convert_to_tensor=True, device="cpu")
    assert isinstance(x, np.ndarray) and isinstance(t, torch.Tensor) and t.dtype == torch.float32
    np.testing.assert_array_equal(t.numpy(), x)
    capsys.readouterr()
    enc.embed(seqs, show_progress_bar=True)
    err = capsys.readouterr().err
    assert "embedding" in err and "9/9" in err
    enc.embed(seqs)
    assert capsys.readouterr().err == ""
    assert enc.embed([]).shape == (0, enc.embed_dim)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_embed_moves_the_model_to_the_device_once():
    enc = make_encoder("gmlp-tiny")
    ref = enc.embed(SEQS)
    t = enc.embed(SEQS, device="cuda", convert_to_tensor=True)
    weight = next(enc.parameters())
    assert weight.device.type == "cuda" and t.device.type == "cuda"
    ptr = weight.data_ptr()
    np.testing.assert_allclose(enc.embed(SEQS, device="cuda"), ref, atol=1e-4)
    assert next(enc.parameters()).data_ptr() == ptr  # not copied back and forth between calls


def test_state_dict_mismatch_is_one_line(tmp_path):
    """Issue 25, defect 11: PyTorch lists every missing and unexpected key on its own line (2-37 lines before)."""
    from safetensors.torch import load_file, save_file

    enc = make_encoder("gmlp-tiny")
    enc.save_pretrained(tmp_path / "m")
    state = load_file(str(tmp_path / "m" / "model.safetensors"))
    renamed = {("x." + k if i % 2 else k): v for i, (k, v) in enumerate(sorted(state.items()))}
    save_file(renamed, str(tmp_path / "m" / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(InputError) as err:
        load_encoder(tmp_path / "m")
    text = str(err.value)
    assert "\n" not in text and "missing weights" in text and "unexpected weights" in text
    assert "more" in text and len(text) < 600  # a few names shown, the rest counted
    wide = make_encoder("gmlp-tiny", dim=48)  # same keys, other shapes: PyTorch's "size mismatch" lines
    torch.save({"config": enc.config.to_dict(), "state_dict": wide.state_dict()}, tmp_path / "wide.pt")
    with pytest.raises(InputError, match="size mismatch") as err:
        load_encoder(tmp_path / "wide.pt")
    assert "\n" not in str(err.value)


def test_the_same_weights_give_the_same_file_bytes(tmp_path):
    """safetensors writes its header's metadata from a hash map, in an order that changed between runs, so two
    identical trainings wrote different model.safetensors bytes; the metadata keys are now sorted."""
    import hashlib

    from safetensors.torch import load_file

    from phylocl.models.model_files import write_model_folder

    state = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.ones(2)}
    digests = set()
    for i in range(8):
        folder = write_model_folder(tmp_path / f"m{i}", config={"a": 1}, state=state)
        digests.add(hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest())
    assert len(digests) == 1
    loaded = load_file(folder / "model.safetensors")
    assert set(loaded) == set(state) and all(torch.equal(loaded[k], state[k]) for k in state)
