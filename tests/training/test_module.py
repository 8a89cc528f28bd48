"""ContrastiveModule: the plain and cached paths give the same step; DDP on 2 CPU processes equals 1 process."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from train_helpers import RecordingModule, fixed_batch, rows, tiny_config


class _Batches:
    """One batch per step; under DDP each rank takes its share of the rows of the global batch."""

    def __init__(self, batch, steps=1):
        self.batch, self.steps = batch, steps

    def __len__(self):
        return self.steps

    def __iter__(self):
        batch = self.batch
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            r, w = torch.distributed.get_rank(), torch.distributed.get_world_size()
            n = batch["labels"].shape[0]
            batch = rows(batch, slice(r * n // w, (r + 1) * n // w))
        return iter([batch] * self.steps)


def _fit(module, batch, *, steps=1, **trainer_kwargs):
    trainer = L.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False,
                        num_sanity_val_steps=0, limit_val_batches=0, **trainer_kwargs)
    trainer.fit(module, train_dataloaders=_Batches(batch, steps))
    return trainer


def _module(cfg, seed=0, **kw):
    torch.manual_seed(seed)
    return RecordingModule(config=cfg, alphabet="protein", **kw)


def _assert_close(g1, g2, rel=1e-4):
    """Same parameter names, and each gradient equal up to ``rel`` in norm: |g1 - g2| <= rel * |g1|."""
    assert g1.keys() == g2.keys() and g1
    for k in g1:
        err = (g1[k] - g2[k]).norm().item()
        assert err <= rel * g1[k].norm().item() + 1e-12, f"{k}: |diff| = {err:.3g}, |g| = {g1[k].norm().item():.3g}"


@pytest.mark.parametrize("loss", ["infonce", "flatnce"])
def test_cached_step_equals_plain_step(loss):
    batch = fixed_batch(8, families=5)  # repeated families: label masking is active
    plain = _module(tiny_config(**{"loss.name": loss}))
    cached = _module(tiny_config(**{"loss.name": loss, "cache.enabled": "true", "cache.chunk_size": 3}))
    cached.load_state_dict(plain.state_dict())
    _fit(plain, batch)
    _fit(cached, batch)
    _assert_close(plain.grads, cached.grads)
    for (n, p), q in zip(plain.named_parameters(), cached.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6, msg=lambda m: f"{n}: {m}")


@pytest.mark.parametrize("model, overrides", [
    ("smlp-tiny", "{dropout: 0.0, drop_path: 0.0, moe_capacity_factor: 0.75}"),
    ("transformer-tiny", "{dropout: 0.0, drop_path: 0.0, moe_experts: 4, moe_every: 1, moe_capacity_factor: 0.75}"),
])
def test_moe_cached_step_equals_plain_step_and_logs_utilisation(model, overrides):
    batch = fixed_batch(8, families=5)
    sets = {"model.name": model, "model.overrides": overrides, "loss.moe_balance_weight": 0.5,
            "loss.moe_z_weight": 0.05}
    plain = _module(tiny_config(**sets))
    cached = _module(tiny_config(**sets, **{"cache.enabled": "true", "cache.chunk_size": 3}))
    cached.load_state_dict(plain.state_dict())
    trainers = [_fit(plain, batch), _fit(cached, batch)]
    assert any("router" in k for k in plain.grads)
    _assert_close(plain.grads, cached.grads)
    logged = [{k: float(v) for k, v in t.callback_metrics.items() if k.startswith("train/moe/")} for t in trainers]
    assert logged[0].keys() == logged[1].keys()
    for k in logged[0]:
        assert logged[0][k] == pytest.approx(logged[1][k], rel=1e-4, abs=1e-6), k
    for k in range(2):  # smlp-tiny: the sMoE and tMoE of its sparse block; transformer-tiny: its 2 blocks
        used = sum(logged[0][f"train/moe/l{k}_util{e}"] for e in range(4))
        assert used == pytest.approx(1 - logged[0][f"train/moe/l{k}_dropped"])
    assert logged[0]["train/moe/l1_dropped"] > 0  # capacity 0.75 drops tokens, and says so
    assert logged[0]["train/moe/balance"] > 0 and logged[0]["train/moe/aux"] > 0


def test_step_changes_parameters_and_lowers_loss_on_a_fixed_batch():
    batch = fixed_batch(8)
    module = _module(tiny_config(**{"optim.lr": 3e-3}))
    before = {n: p.detach().clone() for n, p in module.named_parameters()}
    losses = []

    class Track(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            losses.append(float(outputs["loss"] if isinstance(outputs, dict) else outputs))

    _fit(module, batch, steps=30, callbacks=[Track()])
    assert len(losses) == 30
    assert all(not torch.equal(before[n], p) for n, p in module.named_parameters())
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5


def test_learnable_temperature_is_optimised():
    module = _module(tiny_config(**{"loss.learn_temperature": "true", "optim.lr": 1e-2}))
    t0 = module.loss_fn.temperature
    _fit(module, fixed_batch(8), steps=3)
    assert "loss_fn.logit_scale" in module.grads
    assert module.loss_fn.temperature != pytest.approx(t0)


@pytest.mark.multiprocess
@pytest.mark.parametrize("sets", [
    {},
    {"cache.enabled": "true", "cache.chunk_size": 3},
    {"loss.name": "flatnce"},
    {"loss.learn_temperature": "true", "cache.enabled": "true", "cache.chunk_size": 2},
    {"model.name": "smlp-tiny", "cache.enabled": "true", "cache.chunk_size": 3, "loss.moe_balance_weight": 0.5},
], ids=["plain", "cached", "flatnce", "cached-learned-temperature", "smlp-cached"])
def test_ddp_two_processes_equals_one_process(tmp_path, sets):
    """Lightning DDP (gloo, 2 CPU processes, 4 rows each) gives the gradient of the 8-row global batch."""
    batch = fixed_batch(8, families=6, seed=3)
    cfg = tiny_config(**sets)
    single = _module(cfg)
    state = {k: v.clone() for k, v in single.state_dict().items()}
    _fit(single, batch)

    saved = tmp_path / "ddp_grads.pt"
    ddp = _module(cfg, save_to=str(saved))
    ddp.load_state_dict(state)
    from lightning.pytorch.strategies import DDPStrategy

    _fit(ddp, batch, devices=2, strategy=DDPStrategy(start_method="spawn", process_group_backend="gloo"))
    _assert_close(single.grads, torch.load(saved))


@pytest.mark.parametrize("cached", [False, True], ids=["plain", "cached"])
def test_bf16_mixed_precision_step_is_close_to_fp32(cached):
    """Under Lightning's bf16-mixed autocast (the loss and the cached surrogate stay fp32) gradients stay close."""
    batch = fixed_batch(8, families=5)
    sets = {"cache.enabled": "true", "cache.chunk_size": 3} if cached else {}
    ref = _module(tiny_config(**sets))
    low = _module(tiny_config(**sets))
    low.load_state_dict(ref.state_dict())
    _fit(ref, batch)
    _fit(low, batch, precision="bf16-mixed")
    total = sum(g.norm() ** 2 for g in ref.grads.values()) ** 0.5
    diff = sum((ref.grads[k] - low.grads[k]).norm() ** 2 for k in ref.grads) ** 0.5
    assert 0 < diff / total < 0.1  # bf16 really was used (not bitwise fp32), and the step is still right


def test_late_interaction_with_one_window_per_view_is_the_plain_step():
    """Windows at least as long as every view: one window each, so the best window pair is the pair itself."""
    batch = fixed_batch(8, families=5)
    plain = _module(tiny_config())
    late = _module(tiny_config(**{"loss.window": 32}))
    late.load_state_dict(plain.state_dict())
    _fit(plain, batch)
    _fit(late, batch)
    _assert_close(plain.grads, late.grads, rel=1e-5)


def test_late_interaction_step_loss_is_infonce_over_the_best_window_pairs():
    from phylocl.losses.infonce import InfoNCE
    from phylocl.losses.logits import similarity_terms
    from phylocl.models.windows import window_starts

    batch = fixed_batch(6, families=4, seed=2)  # lengths 5..30: several windows of 8 at stride 5
    module = _module(tiny_config(**{"loss.window": 8, "loss.window_stride": 5}))
    torch.manual_seed(0)
    reference = _module(tiny_config())
    reference.load_state_dict(module.state_dict())
    losses = []

    class Track(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            losses.append(float(outputs["loss"] if isinstance(outputs, dict) else outputs))

    def windows(view):  # each window of each row embedded alone (no padding), with the start module's weights
        out = []
        for ids, mask in zip(view["input_ids"], view["attention_mask"]):
            seq = ids[mask]
            with torch.no_grad():
                out.append(torch.stack([reference.encoder({"input_ids": seq[s:s + 8][None],
                                                           "attention_mask": torch.ones(1, len(seq[s:s + 8]),
                                                                                        dtype=torch.bool)})[0]
                                        for s in window_starts(len(seq), 8, 5)]))
        return out

    wa, wb = windows(batch["a"]), windows(batch["b"])
    assert max(len(w) for w in wa) > 1
    s = torch.tensor([[float((u @ w.T).max()) for w in wb] for u in wa], dtype=torch.float64)  # (6, 6) cosines
    base = InfoNCE(temperature=module.cfg.loss.temperature)
    want = base.finish(similarity_terms(s / base.temperature, labels=batch["labels"]), 1 / base.temperature)
    _fit(module, batch, callbacks=[Track()])
    assert losses[0] == pytest.approx(float(want), rel=1e-4)


def test_late_interaction_settings_are_checked():
    from phylocl.errors import InputError

    with pytest.raises(InputError, match="cache.enabled"):
        tiny_config(**{"loss.window": 16, "cache.enabled": "true"})
    with pytest.raises(InputError, match="window"):
        tiny_config(**{"loss.window": 16, "loss.window_stride": 20})
    module = _module(tiny_config(**{"loss.window": 16}))
    assert module._window == (16, 8)  # a gMLP has no word span: half-window stride


def test_step_seeds_differ_by_step_and_by_rank_and_rank_zero_keeps_the_single_process_seed():
    """Each step's draws are seeded from (seed, step); DDP ranks other than 0 add their rank, so the ranks' rows
    get independent dropout masks while a single process (rank 0) keeps its seeds."""
    import numpy as np

    from phylocl.training.module import step_seed

    seeds = {step_seed(0, s, r) for s in range(50) for r in range(4)}
    assert len(seeds) == 200 and all(0 <= x < 2 ** 63 for x in seeds)
    assert step_seed(0, 7) == step_seed(0, 7, 0) != step_seed(0, 7, 1)
    hi, lo = np.random.SeedSequence([0, 7]).generate_state(2, np.uint32)
    assert step_seed(0, 7) == (int(hi) << 31) ^ int(lo)  # the single-process seeds of 0.5.0's first commits
    assert step_seed(1, 7) != step_seed(0, 7)
