"""Batched inference of a :class:`~phylocl.models.encoder.SequenceEncoder` on sequences of any length.

Each sequence is cut into windows of ``max_len`` residues (:mod:`phylocl.models.windows`); all windows are sorted
by length and run ``batch_size`` at a time (little padding); each sequence's window embeddings are summed in
float64, then the sums are re-normalised. This is the one embedding path: :meth:`SequenceEncoder.embed`, the
``embed``/``search``/``evaluate`` commands and the validation inside ``phylocl train`` all go through
:func:`embed_token_arrays`.

Precisions: ``fp32``; ``bf16`` (bfloat16 autocast; LayerNorm and softmax stay float32); ``int8``: a copy of the
encoder whose ``nn.Linear`` layers are dynamically quantised (``torch.ao.quantization.quantize_dynamic``: int8
weights, activations quantised per batch, so a row depends slightly on its batch), the spatial projections,
LayerNorms and the embedding staying float32; CPU only. The copy is built once per encoder and state of the
weights (:func:`inference_module` keys it on the parameters' version counters, so an optimiser step rebuilds it).
``overlap`` sets the window stride (:func:`~phylocl.models.windows.overlap_stride`; default half a window).
"""

from __future__ import annotations

import copy
import warnings
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from phylocl.arguments import positive_int, setting
from phylocl.data.tokens import pad_batch
from phylocl.models.windows import overlap_stride, window_starts

__all__ = ["embed_token_arrays", "inference_module", "check_precision", "PRECISIONS"]

PRECISIONS = ("fp32", "bf16", "int8")  # inference precisions


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def _weights_key(module: torch.nn.Module, precision: str) -> tuple:
    params = list(module.parameters())
    device = params[0].device if params else torch.device("cpu")
    return (precision, str(device), tuple(id(p) for p in params), tuple(p._version for p in params))


def _quantized_copy(module: torch.nn.Module) -> torch.nn.Module:
    if next(module.parameters()).device.type != "cpu":
        raise ValueError(f"int8 inference runs on the CPU; use {setting('device', 'cpu')} (or bf16 on a GPU)")
    cached = module.__dict__.pop("_phylocl_inference", None)  # not copied into the twin
    try:
        twin = copy.deepcopy(module).eval()
    finally:
        if cached is not None:
            module.__dict__["_phylocl_inference"] = cached
    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao; it works in torch 2.x
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(twin, {torch.nn.Linear}, dtype=torch.qint8)


def inference_module(module: torch.nn.Module, precision: str) -> torch.nn.Module:
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


def _windows(arrays: Sequence[np.ndarray], window: int, stride: int) -> tuple[list[tuple[int, int]], np.ndarray]:
    """``(owner, start)`` of every window and the order that runs them shortest first."""
    windows = [(i, s) for i, a in enumerate(arrays) for s in window_starts(len(a), window, stride)]
    lengths = np.array([min(window, len(arrays[i]) - s) for i, s in windows])
    return windows, np.argsort(lengths, kind="stable")


@torch.no_grad()
def embed_token_arrays(encoder, arrays: Sequence[np.ndarray], *, batch_size: int = 64, precision: str = "fp32",
                       show_progress_bar: bool = False, overlap: float | None = None) -> np.ndarray:
    """Unit embeddings ``(N, embed_dim)`` float32 of ``N`` token arrays (no CLS, any length), in input order.

    Runs ``encoder`` where its weights are, in eval mode (its previous mode is restored), under bfloat16
    autocast when ``precision="bf16"`` (window sums and the normalisation stay float64), its int8 copy when
    ``precision="int8"``. ``show_progress_bar`` shows a tqdm bar of sequences on stderr; ``overlap`` (``None``:
    the encoder's half window) sets the window stride.
    """
    check_precision(precision)
    batch_size = positive_int("batch_size", batch_size)
    stride = encoder.window_stride if overlap is None else overlap_stride(encoder.max_len, overlap)
    windows, order = _windows(arrays, encoder.max_len, stride)
    sums = np.zeros((len(arrays), encoder.embed_dim), dtype=np.float64)  # (N, E)
    remaining = np.bincount([i for i, _ in windows], minlength=len(arrays))  # windows left per sequence
    was_training = encoder.training
    device_type = next(encoder.parameters()).device.type
    encoder.eval()
    bar = tqdm(total=len(arrays), unit="seq", desc="embedding", disable=not show_progress_bar)
    try:
        runner = inference_module(encoder, precision)  # encoder itself, or its int8 copy
        for lo in range(0, len(order), batch_size):
            chunk = [windows[j] for j in order[lo : lo + batch_size]]
            batch = pad_batch([arrays[i][s : s + encoder.max_len] for i, s in chunk])
            with torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                z = runner(batch).float().cpu().numpy()  # (b, E)
            owners = [i for i, _ in chunk]
            np.add.at(sums, owners, z)
            np.subtract.at(remaining, owners, 1)
            bar.update(int(np.sum(remaining[np.unique(owners)] == 0)))
    finally:
        bar.close()
        encoder.train(was_training)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.maximum(norms, 1e-12)).astype(np.float32)
