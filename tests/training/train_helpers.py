"""Shared pieces of the training tests: a fixed global batch and a module that records its gradients."""

from __future__ import annotations

import torch

from phylocl.config import load_config
from phylocl.data.alphabet import PROTEIN
from phylocl.data.tokens import pad_batch
from phylocl.training.module import ContrastiveModule


def fixed_batch(n: int = 8, *, seed: int = 0, families: int | None = None) -> dict:
    """``n`` pairs of random protein views (lengths 5..30) with family labels ``0..families-1``."""
    g = torch.Generator().manual_seed(seed)
    views = []
    for _ in range(2):
        arrays = []
        for _ in range(n):
            length = int(torch.randint(5, 31, (1,), generator=g))
            arrays.append(torch.randint(3, 3 + len(PROTEIN.letters), (length,), generator=g).numpy())
        views.append(pad_batch(arrays))
    families = n if families is None else families
    labels = torch.arange(n) % families
    return {"a": views[0], "b": views[1], "labels": labels}


def rows(batch: dict, index) -> dict:
    """Rows ``index`` of a pair batch (views trimmed to their longest row)."""
    from phylocl.data.tokens import slice_batch

    return {"a": slice_batch(batch["a"], index), "b": slice_batch(batch["b"], index), "labels": batch["labels"][index]}


def tiny_config(**sets) -> object:
    base = ["model.name=gmlp-tiny", "model.overrides={dropout: 0.0, drop_path: 0.0}", "data.max_len=32",
            "optim.grad_clip=null", "optim.warmup_steps=0", "trainer.max_steps=1", "eval.enabled=false"]
    return load_config(None, base + [f"{k}={v}" for k, v in sets.items()])


class RecordingModule(ContrastiveModule):
    """Stores a copy of every parameter's gradient right before the optimizer step (and optionally saves it)."""

    def __init__(self, *, save_to: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.save_to = save_to
        self.grads: dict[str, torch.Tensor] = {}

    def on_before_optimizer_step(self, optimizer) -> None:
        self.grads = {n: p.grad.detach().clone() for n, p in self.named_parameters() if p.grad is not None}
        if self.save_to and self.trainer.is_global_zero:
            torch.save(self.grads, self.save_to)
        super().on_before_optimizer_step(optimizer)
