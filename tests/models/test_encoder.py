"""SequenceEncoder properties, parametrized over every registered config (shrunk widths, real code paths)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from phylocl.errors import InputError
from phylocl.models.moe import pop_router_records, record_routing
from phylocl.models.registry import build_encoder, get_config, load_encoder
from phylocl.models.windows import window_starts

from .helpers import MODELS, make_encoder, pools_itself, random_protein

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _unit_rows(z):
    return torch.allclose(z.norm(dim=-1), torch.ones(z.shape[0]), atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_real_size_shape_norm_and_padding(name, rng):
    """Each named config at its registered width (base configs: 2 blocks) embeds and ignores padding."""
    cfg = get_config(name)
    torch.manual_seed(0)
    enc = build_encoder(name, **({"depth": 2} if cfg.depth > 6 else {})).eval()
    assert enc.embed_dim == cfg.embed_dim and enc.max_len == cfg.max_len
    seqs = [random_protein(n, rng) for n in (12, cfg.max_len, 40)]
    with torch.no_grad():
        z = enc(enc.tokenize(seqs))
        alone = enc(enc.tokenize(seqs[:1]))
    assert z.shape == (3, cfg.embed_dim) and z.dtype == torch.float32
    assert _unit_rows(z)
    torch.testing.assert_close(z[:1], alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", MODELS)
def test_shape_and_unit_norm(name, rng):
    enc = make_encoder(name).eval()
    batch = enc.tokenize([random_protein(n, rng) for n in (5, 31, 1, 17)])
    z = enc(batch)
    assert z.shape == (4, enc.embed_dim)
    assert _unit_rows(z)
    X = enc.embed([random_protein(n, rng) for n in (5, 31)])
    assert X.dtype == np.float32 and X.shape == (2, enc.embed_dim)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_padding_invariance(name, pooling, rng):
    """A sequence alone == the same sequence batched with much longer ones (up to and beyond max_len)."""
    if pooling == "cls" and pools_itself(name):
        pytest.skip("k-mer backbones pool themselves (mean only)")
    enc = make_encoder(name, pooling=pooling).eval()
    short = random_protein(4, rng)
    others = [random_protein(n, rng) for n in (30, 32, 25, 90)]
    with torch.no_grad():
        alone = enc(enc.tokenize([short]))
        for batch_seqs in ([short] + others[:3], others[:2] + [short], [short] + others):
            z = enc(enc.tokenize(batch_seqs))
            torch.testing.assert_close(z[batch_seqs.index(short)], alone[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", MODELS)
def test_batch_order_invariance(name, rng):
    enc = make_encoder(name).eval()
    seqs = [random_protein(n, rng) for n in (3, 29, 12, 32, 7)]
    perm = [3, 0, 4, 2, 1]
    with torch.no_grad():
        z = enc(enc.tokenize(seqs))
        zp = enc(enc.tokenize([seqs[i] for i in perm]))
    torch.testing.assert_close(zp, z[perm], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", MODELS)
def test_padded_token_ids_do_not_matter(name, rng):
    enc = make_encoder(name, pooling="cls" if "gmlp" in name else "mean").eval()
    batch = enc.tokenize([random_protein(n, rng) for n in (3, 20, 9)])
    noisy = dict(batch)
    ids = batch["input_ids"].clone()
    pad = ~batch["attention_mask"]
    ids[pad] = torch.randint(3, 24, (int(pad.sum()),))
    noisy["input_ids"] = ids
    with torch.no_grad():
        torch.testing.assert_close(enc(noisy), enc(batch), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", MODELS)
def test_save_load_round_trip(name, tmp_path, rng):
    enc = make_encoder(name, seed=3)
    seqs = [random_protein(n, rng) for n in (8, 70, 2)]
    before = enc.embed(seqs)
    path = enc.save(tmp_path / "model" / "encoder.pt")
    raw = torch.load(path, weights_only=True)
    assert set(raw) >= {"config", "state_dict", "phylocl_version"}
    for source in (path, path.parent):  # the file or its directory
        enc2 = load_encoder(source)
        assert enc2.config == enc.config
        assert enc2.fingerprint() == enc.fingerprint()
        np.testing.assert_array_equal(enc2.embed(seqs), before)


@pytest.mark.parametrize("name", MODELS)
def test_long_sequence_is_mean_of_window_embeddings(name, rng):
    enc = make_encoder(name).eval()
    long = random_protein(3 * enc.max_len + 5, rng)
    short = random_protein(10, rng)
    with torch.no_grad():
        windows = [long[s : s + enc.max_len] for s in window_starts(len(long), enc.max_len, enc.max_len // 2)]
        assert len(windows) == 6  # 101 residues, window 32, stride 16: starts 0, 16, 32, 48, 64, 69
        per_window = torch.cat([enc(enc.tokenize([w])) for w in windows])  # each window alone
        want = F.normalize(per_window.mean(dim=0), dim=0)
        via_forward = enc(enc.tokenize([short, long]))  # a batch wider than max_len
    via_embed = enc.embed([short, long], batch_size=3)
    torch.testing.assert_close(via_forward[1], want, atol=1e-5, rtol=0)
    np.testing.assert_allclose(via_embed[1], want.numpy(), atol=1e-5)
    np.testing.assert_allclose(via_embed[0], via_forward[0].numpy(), atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_gradients_reach_every_parameter(name, rng):
    # MoE configs pool the mean: with CLS pooling the last block's experts only matter at the CLS position
    cls = "transformer" in name and not get_config(name).moe_experts
    enc = make_encoder(name, dropout=0.1, pooling="cls" if cls else "mean").train()
    seqs = [random_protein(n, rng) for n in (6, 32, 19, 11)]
    record_routing(enc)
    z = enc(enc.tokenize(seqs))
    idle = {f"{k}.{e}" for k, calls in enumerate(pop_router_records(enc)) for e, n in enumerate(calls[0].kept) if n == 0}
    target = torch.randn_like(z)
    ((z - target) ** 2).sum().backward()
    missing = [n for n, p in enc.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    # only experts that took no token may get a zero gradient
    assert all(".experts." in n for n in missing) and (idle or not missing), f"no gradient for {missing}"
    assert all(p.grad is not None for p in enc.parameters())  # never a missing one (DDP needs every gradient)
    enc.zero_grad()
    enc(enc.tokenize([random_protein(80, rng)])).sum().backward()  # the windowed path is differentiable too
    assert enc.embedding.weight.grad.any()


@pytest.mark.parametrize("name", MODELS)
def test_dropout_only_in_train_mode(name, rng):
    enc = make_encoder(name, dropout=0.3, drop_path=0.2)
    batch = enc.tokenize([random_protein(n, rng) for n in (9, 24)])
    enc.train()
    assert not torch.allclose(enc(batch), enc(batch))  # dropout is active in training
    enc.eval()
    with torch.no_grad():
        assert torch.equal(enc(batch), enc(batch))


@pytest.mark.parametrize("name", MODELS)
def test_embed_order_mode_and_batching(name, rng):
    enc = make_encoder(name, dropout=0.2)
    seqs = [random_protein(n, rng) for n in (30, 3, 70, 12, 1, 33)]
    enc.train()
    X = enc.embed(seqs, batch_size=2)
    assert enc.training  # previous mode restored
    assert not any(p.grad is not None for p in enc.parameters())
    enc.eval()
    with torch.no_grad():
        for i, s in enumerate(seqs):  # input order, equal to each sequence alone
            np.testing.assert_allclose(X[i], enc(enc.tokenize([s]))[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(enc.embed(seqs, batch_size=64, device="cpu"), X, atol=1e-5)
    assert not enc.training
    assert enc.embed([]).shape == (0, enc.embed_dim)


@pytest.mark.parametrize("name", MODELS)
def test_dna_build(name, rng):
    enc = make_encoder(name, alphabet="dna").eval()
    assert enc.alphabet.name == "dna" and enc.config.alphabet == "dna"
    assert enc.embedding.num_embeddings == enc.alphabet.vocab_size
    X = enc.embed(["ACGTNACGT", "acgu" * 20])
    assert X.shape == (2, enc.embed_dim) and np.isfinite(X).all()
    with pytest.raises(InputError, match="sequence 1"):
        enc.tokenize(["MKQE"])  # E is not a nucleotide letter


def test_tokenize_errors_and_format():
    enc = make_encoder("gmlp-tiny")
    batch = enc.tokenize(["MKV", "M"])
    assert batch["input_ids"].dtype == torch.int64 and batch["attention_mask"].dtype == torch.bool
    assert batch["input_ids"].tolist() == [list(enc.alphabet.encode("MKV")), [enc.alphabet.encode("M")[0], 0, 0]]
    with pytest.raises(InputError, match="sequence 2 is empty"):
        enc.tokenize(["MKV", ""])
    with pytest.raises(InputError, match="sequence 1: letter"):
        enc.embed(["MK*V"])
    with pytest.raises(ValueError, match="batch_size"):
        enc.embed(["MKV"], batch_size=0)


def test_fingerprint_tracks_weights_and_config():
    enc = make_encoder("gmlp-tiny")
    fp = enc.fingerprint()
    assert len(fp) == 16 and int(fp, 16) >= 0
    assert make_encoder("gmlp-tiny").fingerprint() == fp  # same seed, same weights
    assert make_encoder("gmlp-tiny", seed=1).fingerprint() != fp
    assert make_encoder("gmlp-tiny", drop_path=0.1).fingerprint() != fp  # config is part of it
    with torch.no_grad():
        enc.head.net[0].bias[0] += 1e-3
    assert enc.fingerprint() != fp


def test_model_info_record():
    enc = make_encoder("amlp-small", alphabet="dna")
    info = enc.model_info()
    assert info == {"fingerprint": enc.fingerprint(), "name": "amlp-small", "dim": 16, "alphabet": "dna",
                    "kind": "encoder", "backbone": "gmlp", "max_len": 32, "parameters": enc.num_parameters()}


def test_bundled_example_proteins_embed():
    """Real protein lengths from the bundled MIT example set (several beyond max_len)."""
    from Bio import SeqIO

    fasta = REPO / "datasets" / "example-mini-mit" / "protein" / "sequences.fasta"
    if not fasta.is_file():
        pytest.skip("bundled example data absent")
    seqs = [str(r.seq).replace("-", "") for r in SeqIO.parse(fasta, "fasta")][:12]
    enc = make_encoder("gmlp-tiny")
    X = enc.embed(seqs, batch_size=16)
    assert X.shape == (len(seqs), 16) and np.isfinite(X).all()
    assert max(map(len, seqs)) > enc.max_len
    np.testing.assert_allclose(X, enc.eval()(enc.tokenize(seqs)).detach().numpy(), atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_bf16_embedding_runs_in_bfloat16_and_stays_close_to_fp32(name, rng, monkeypatch):
    enc = make_encoder(name).eval()
    if enc.config.head == "none":
        pytest.skip("no matrix product to run in bfloat16 (k-mer profile)")
    seqs = [random_protein(n, rng) for n in (30, 3, 70, 12, 200)]
    x32 = enc.embed(seqs)
    seen = []
    orig = type(enc)._encode

    def spy(self, ids, mask):
        z = orig(self, ids, mask)
        seen.append(z.dtype)
        return z

    monkeypatch.setattr(type(enc), "_encode", spy)
    x16 = enc.embed(seqs, precision="bf16")
    assert seen and all(d == torch.bfloat16 for d in seen)  # the model really ran under bf16 autocast
    assert x16.dtype == np.float32 and np.allclose(np.linalg.norm(x16, axis=1), 1, atol=1e-5)
    assert not np.array_equal(x16, x32)
    assert (x16 * x32).sum(axis=1).min() > 0.99  # same direction to bf16 rounding (cosine)
    seen.clear()
    np.testing.assert_array_equal(enc.embed(seqs, precision="fp32"), x32)
    assert seen and all(d == torch.float32 for d in seen)
    with pytest.raises(ValueError, match="precision"):
        enc.embed(seqs, precision="fp16")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal where no CUDA GPU exists")
def test_embed_on_an_absent_gpu_is_a_value_error_and_leaves_the_model_where_it_was():
    enc = make_encoder("gmlp-tiny")
    seq = random_protein(20, np.random.default_rng(1))
    with pytest.raises(ValueError, match="no CUDA GPU is available here"):  # torch's AssertionError before
        enc.embed([seq], device="cuda")
    assert enc.embedding.weight.device.type == "cpu" and enc.embed([seq]).shape[0] == 1
