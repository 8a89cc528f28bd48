"""ContrastiveModule: a Lightning module that trains a :class:`~phylocl.models.encoder.SequenceEncoder` on pairs.

One optimizer step per training batch ``{"a": tokens, "b": tokens, "labels": (B,)}``, with manual optimisation so
the plain path and the cached-gradient path (:func:`~phylocl.training.gradcache.cached_backward`) share one loop:

* plain: ``loss(encoder(a), encoder(b))`` and one backward;
* cached: embed in chunks without grad, loss + gradient w.r.t. the embeddings, replay chunks with grad.

Encoders with mixture-of-experts layers record their routing per call; the step's router losses
(:mod:`phylocl.training.router_loss`) are added to the contrastive loss on both paths (the cached path adds each
replayed chunk's share), and the expert utilisation of every layer is logged as ``moe/...``.

Under DDP every rank gathers the embeddings (and family labels) of all ranks before the loss, so the negatives come
from the global batch (:mod:`phylocl.training.distributed`). Validation batches ``{"tokens", "labels", "index"}``
are embedded and handed back as arrays; a callback turns them into retrieval metrics.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch

from phylocl.config import TrainConfig
from phylocl.configtools import from_dict, to_dict
from phylocl.losses.flatnce import FlatNCE
from phylocl.losses.infonce import InfoNCE
from phylocl.losses.late_interaction import LateInteraction
from phylocl.losses.logits import mean_negative_similarity
from phylocl.models.moe import pop_router_records, record_routing
from phylocl.models.patterns import word_span
from phylocl.models.registry import build_encoder, get_config
from phylocl.models.size import check_fits
from phylocl.models.windows import window_batch
from phylocl.training.checkpoints import INPUTS_KEY
from phylocl.training.distributed import gather_labels, gather_with_grad, is_distributed
from phylocl.training.gradcache import cached_backward
from phylocl.training.guards import check_batch, check_finite
from phylocl.training.router_loss import RouterLoss, StepTotals
from phylocl.training.schedule import warmup_cosine

__all__ = ["ContrastiveModule", "build_loss", "step_seed"]

_AUTOCAST = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def step_seed(seed: int, step: int, rank: int = 0) -> int:
    """The seed of torch's generator for optimizer step ``step`` (0-based) of a run seeded ``seed`` on process
    ``rank``: a 63-bit integer from ``numpy.random.SeedSequence([seed, step])`` (``[seed, step, rank]`` on ranks
    other than 0, so that DDP ranks draw independent dropout masks for their rows; distinct steps give unrelated
    streams)."""
    entropy = [int(seed), int(step)] + ([int(rank)] if rank else [])
    hi, lo = np.random.SeedSequence(entropy).generate_state(2, np.uint32)
    return (int(hi) << 31) ^ int(lo)


def build_loss(config) -> torch.nn.Module:
    """The loss named by a :class:`~phylocl.config.LossConfig` (wrapped in
    :class:`~phylocl.losses.late_interaction.LateInteraction` when ``config.window``)."""
    if config.name == "infonce":
        loss = InfoNCE(temperature=config.temperature, learn_temperature=config.learn_temperature,
                       symmetric=config.symmetric, chunk_size=config.chunk_size)
    else:
        loss = FlatNCE(temperature=config.temperature, symmetric=config.symmetric, chunk_size=config.chunk_size)
    return LateInteraction(loss=loss) if config.window else loss


class ContrastiveModule(L.LightningModule):
    """Encoder + contrastive loss + optimiser schedule.

    Args:
        config: the full training config (a :class:`~phylocl.config.TrainConfig` or its dict form).
        alphabet: alphabet name of the data (``"protein"``/``"dna"``); overrides the model config's.
    """

    def __init__(self, *, config: TrainConfig | dict, alphabet: str) -> None:
        super().__init__()
        cfg = config if isinstance(config, TrainConfig) else from_dict(TrainConfig, config)
        self.cfg = cfg
        self.save_hyperparameters({"config": to_dict(cfg), "alphabet": alphabet})
        overrides = dict(cfg.model.overrides)
        overrides["alphabet"] = alphabet
        overrides.setdefault("max_len", cfg.data.max_len)
        check_fits(get_config(cfg.model.name, **overrides), copies=4)  # weights, gradients, AdamW moments
        self.encoder = build_encoder(cfg.model.name, **overrides)
        self.loss_fn = build_loss(cfg.loss)
        self.has_routers = record_routing(self.encoder) > 0
        self._window = None  # late interaction: (window, stride) of the views' windows
        if cfg.loss.window:
            span = word_span(self.encoder)
            stride = cfg.loss.window_stride or (cfg.loss.window - span + 1 if 0 < span < cfg.loss.window
                                                 else max(1, cfg.loss.window // 2))
            self._window = (cfg.loss.window, stride)
            if self.has_routers:
                raise ValueError("loss.window (late interaction) is not supported for mixture-of-experts encoders")
        self.router_loss = RouterLoss(balance_weight=cfg.loss.moe_balance_weight, z_weight=cfg.loss.moe_z_weight)
        self._router_totals: StepTotals | None = None
        self.automatic_optimization = False
        self._val_outputs: list[dict[str, torch.Tensor]] = []
        self._neg_sim = torch.tensor(float("nan"))
        self.input_fingerprint: dict | None = None  # what the run trains on, saved in every checkpoint (if set)

    # ----------------------------------------------------------------------------------------------- optimisation
    def configure_optimizers(self):
        o = self.cfg.optim
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            # no weight decay on biases, norms, embeddings' padding-free scalars and the temperature
            (no_decay if p.ndim < 2 or "logit_scale" in name else decay).append(p)
        groups = [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        fused = self.device.type == "cuda"
        opt = torch.optim.AdamW(groups, lr=o.lr, betas=tuple(o.betas), eps=o.eps, fused=fused or None)
        total = self.cfg.trainer.max_steps
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: warmup_cosine(s, warmup_steps=o.warmup_steps, total_steps=total,
                                         min_ratio=o.min_lr_ratio))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_before_optimizer_step(self, optimizer) -> None:
        # Lightning calls this after unscaling fp16 gradients: the norm and clipping see true gradients.
        params = [p for p in self.parameters() if p.grad is not None]
        clip = self.cfg.optim.grad_clip
        norm = torch.nn.utils.clip_grad_norm_(params, clip if clip is not None else float("inf"))
        if getattr(self.trainer.precision_plugin, "scaler", None) is None:  # fp16 scaling skips inf steps itself
            check_finite("gradient norm", float(norm), step=self.global_step + 1)
        self.log("train/grad_norm", norm, on_step=True, on_epoch=False)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Record :attr:`input_fingerprint` (plain data: read back with ``weights_only``) for ``--resume``."""
        if self.input_fingerprint is not None:
            checkpoint[INPUTS_KEY] = self.input_fingerprint

    # --------------------------------------------------------------------------------------------------- training
    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        """Seed the step's random draws (dropout, drop-path, router noise) from ``(trainer.seed, global_step)``, and
        put Lightning's batch counters back in step with ``global_step`` (the optimizer steps done) after a resume.

        The seed: Lightning's checkpoints do not hold torch's random state, so a resumed run drew other dropout
        masks than an uninterrupted one from the interrupted step on (gmlp-small, interrupted at step 4 of 24: 24
        rows of ``logs/metrics.csv`` and the weights differed); seeded per step, a redone step draws what the
        uninterrupted one drew, whatever happened before it.

        One optimizer step per batch: at the start of every batch of an uninterrupted run, the loop's count of
        stepped batches (the ``step`` of the rows logged to ``logs/metrics.csv``) equals ``global_step``, and so do
        the batches it has counted finished (``total.completed``; ``total.ready`` one more, this batch; whence the
        validation schedule, every ``val_every_n_steps`` batches). Lightning restores these counters assuming that
        a checkpoint saved inside a batch was saved at its ``on_train_batch_end``, after the step. ``interrupted.ckpt``
        is written in a batch's forward/backward pass or at a batch's start (where a signal held through the update
        and the validation acts, ``train_checkpoints.DeferredInterrupt``), and that batch is redone: every later row was
        labelled one step late (its own label missing, one labelled ``max_steps`` at the end) and validation ran one
        batch early. The optimizer step count restored from the checkpoint is the truth; in an uninterrupted run,
        and from ``last.ckpt`` (saved at a validation's end), this changes nothing.

        Private counters, against STYLE.md's public hooks: Lightning 2.6 has no public way to set them, and the only
        place it restores exactly (a checkpoint at ``on_train_batch_end``) has not logged that batch's row yet and is
        resumed as if the validation due after that batch had run. A logger that labels rows by ``global_step``
        would mend the labels but not the validation schedule (``total.ready``).
        """
        torch.manual_seed(step_seed(self.cfg.trainer.seed, int(self.global_step), int(self.global_rank)))
        loop = self.trainer.fit_loop.epoch_loop
        step = int(self.global_step)
        if getattr(loop, "_batches_that_stepped", step) != step:
            loop._batches_that_stepped = step
        total = getattr(getattr(loop, "batch_progress", None), "total", None)
        if total is not None and (total.completed, total.ready) != (step, step + 1):
            # Lightning rewinds the epoch's counters of a batch cut short (current), not the run's (total)
            total.completed = total.processed = total.started = step
            total.ready = step + 1

    def _global_loss(self, z_a: torch.Tensor, z_b: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Loss over the global batch: embeddings and labels of every rank (identity on one process)."""
        if is_distributed():
            z_a, z_b = gather_with_grad(z_a), gather_with_grad(z_b)
            labels = None if labels is None else gather_labels(labels)
        self._neg_sim = mean_negative_similarity(z_a, z_b, labels)  # batch hardness, logged as train/neg_sim
        return self.loss_fn(z_a, z_b, labels)

    def _backward(self, tensor: torch.Tensor, last: bool) -> None:
        """Backward for the cached path: only the last replay goes through Lightning (DDP gradient sync)."""
        if last:
            # Parameters of the loss (a learnable temperature) got their gradient when the loss was cached; a zero
            # term puts them in this graph too so DDP's reducer sees every parameter once (the value is unchanged).
            for p in self._loss_params():
                tensor = tensor + 0.0 * p.sum()
            self.trainer.strategy.pre_backward(tensor)
            tensor.backward()
            self.trainer.strategy.post_backward(tensor)
        else:
            tensor.backward()

    def _first_pass_routing(self) -> None:
        """Cached path: the step's routing totals from the no-grad first pass (all chunks, all ranks)."""
        self._router_totals = self.router_loss.totals(pop_router_records(self.encoder))

    def _replay_router_term(self) -> torch.Tensor:
        """Cached path: the router losses' share of the chunk just replayed."""
        return self.router_loss.surrogate(pop_router_records(self.encoder), self._router_totals)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        opt = self.optimizers()
        sched = self.lr_schedulers()
        opt.zero_grad(set_to_none=True)
        labels = batch["labels"]
        check_batch(int(labels.shape[0]), self.trainer.world_size, step=self.global_step + 1)
        if self.cfg.cache.enabled:
            precision = str(self.trainer.precision)
            scaler = getattr(self.trainer.precision_plugin, "scaler", None)
            routed = dict(after_first_pass=self._first_pass_routing, replay_term=self._replay_router_term)
            with torch.autocast(self.device.type, enabled=False):
                loss = cached_backward(
                    self.encoder, batch["a"], batch["b"], self._global_loss, self.cfg.cache.chunk_size, labels,
                    token_budget=self.cfg.cache.token_budget, scaler=scaler, autocast=_AUTOCAST.get(precision),
                    backward=self._backward, **(routed if self.has_routers else {}))
        elif self._window is not None:
            if is_distributed():
                raise RuntimeError("loss.window (late interaction) runs on one process; DDP is not supported")
            z_a, o_a = self._window_embeddings(batch["a"])  # (Wa, D), (Wa,)
            z_b, o_b = self._window_embeddings(batch["b"])  # (Wb, D), (Wb,)
            with torch.autocast(self.device.type, enabled=False):
                loss = self.loss_fn(z_a.float(), o_a, z_b.float(), o_b, labels)
            self.manual_backward(loss)
            loss = loss.detach()
        else:
            z_a = self.encoder(batch["a"])  # (B, D)
            z_b = self.encoder(batch["b"])  # (B, D)
            with torch.autocast(self.device.type, enabled=False):
                loss = self._global_loss(z_a.float(), z_b.float(), labels)
            total = loss
            if self.has_routers:
                records = pop_router_records(self.encoder)
                self._router_totals = self.router_loss.totals(records)
                total = loss + self.router_loss.surrogate(records, self._router_totals)
            self.manual_backward(total)
            loss = loss.detach()
        check_finite("loss", float(loss), step=self.global_step + 1)
        lr = sched.get_last_lr()[0]  # the rate this step uses (after sched.step() it would be the next step's)
        opt.step()
        sched.step()
        stats = self.loss_fn.last_stats
        bs = int(labels.shape[0])
        self.log("train/loss", loss, prog_bar=True, batch_size=bs)
        self.log("train/infonce", stats["infonce"], batch_size=bs)
        self.log("train/pos_prob", stats["pos_prob"], batch_size=bs)
        self.log("train/logit_gap", stats["logit_gap"], batch_size=bs)
        self.log("train/neg_sim", self._neg_sim, batch_size=bs)
        self.log("train/temperature", stats["temperature"], batch_size=bs)
        self.log("train/lr", lr, prog_bar=True, batch_size=bs)
        self.log("train/batch_size", float(bs), batch_size=bs)
        if self.has_routers:
            for key, value in self.router_loss.value(self._router_totals).items():
                self.log(f"train/{key}", value, batch_size=bs)
        return loss

    def _window_embeddings(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Late interaction: every view cut into windows (as search cuts sequences), each embedded alone:
        ``(W, D)`` window embeddings and ``(W,)`` the batch row of each."""
        window, stride = self._window
        ids, mask, owner = window_batch(batch["input_ids"].to(self.device),
                                        batch["attention_mask"].to(self.device, dtype=torch.bool),
                                        window=window, stride=stride)  # (W, w), (W, w), (W,)
        return self.encoder({"input_ids": ids, "attention_mask": mask}), owner

    def _loss_params(self) -> list[torch.nn.Parameter]:
        return [p for p in self.loss_fn.parameters() if p.requires_grad]

    # ------------------------------------------------------------------------------------------------- evaluation
    def validation_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict:
        z = self.encoder(batch["tokens"])  # (B, D)
        return {"embeddings": z.float().cpu(), "labels": batch["labels"].cpu(), "index": batch["index"].cpu(),
                "loader": torch.full_like(batch["labels"].cpu(), dataloader_idx)}

    def test_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict:
        return self.validation_step(batch, batch_idx, dataloader_idx)
