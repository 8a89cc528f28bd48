"""Inference-only copies of an encoder for faster embedding (no training, no gradients).

Precisions of :meth:`~phylocl.models.encoder.SequenceEncoder.embed`:

``fp32``  the encoder itself, float32.
``bf16``  the encoder itself under bfloat16 autocast (weights cast per call; LayerNorm and softmax stay float32).
``int8``  a copy whose ``nn.Linear`` layers are dynamically quantised to int8 (weights int8 per tensor,
          activations quantised per batch; ``torch.ao.quantization.quantize_dynamic``); the spatial projections,
          LayerNorms and the embedding stay float32. CPU only.

A copy is built once per encoder, precision and state of the weights: :func:`inference_module` keys its cache on
the parameters' version counters, so an optimiser step (an in-place update) invalidates it.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

__all__ = ["PRECISIONS", "inference_module", "check_precision"]

PRECISIONS = ("fp32", "bf16", "int8")


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def _weights_key(module: nn.Module, precision: str) -> tuple:
    params = list(module.parameters())
    device = params[0].device if params else torch.device("cpu")
    return (precision, str(device), tuple(id(p) for p in params), tuple(p._version for p in params))


def _quantized_copy(module: nn.Module) -> nn.Module:
    if next(module.parameters()).device.type != "cpu":
        raise ValueError("int8 inference runs on the CPU; use --device cpu (or bf16 on a GPU)")
    cached = module.__dict__.pop("_phylocl_inference", None)  # not copied into the twin
    try:
        twin = copy.deepcopy(module).eval()
    finally:
        if cached is not None:
            module.__dict__["_phylocl_inference"] = cached
    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao; it works in torch 2.x
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(twin, {nn.Linear}, dtype=torch.qint8)


def inference_module(module: nn.Module, precision: str) -> nn.Module:
    """The module to run for ``precision``: ``module`` itself (fp32, bf16) or its cached int8 copy.

    The copy is stored on ``module`` (attribute ``_phylocl_inference``, not a submodule, so it is not saved with
    the weights) and rebuilt whenever a parameter of ``module`` changed since it was made.
    """
    check_precision(precision)
    if precision != "int8":
        return module
    key = _weights_key(module, precision)
    cached = module.__dict__.get("_phylocl_inference")
    if cached is None or cached[0] != key:
        cached = (key, _quantized_copy(module))
        module.__dict__["_phylocl_inference"] = cached
    return cached[1]
