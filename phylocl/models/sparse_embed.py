"""Embeddings of a k-mer profile encoder as :class:`~phylocl.sparse_rows.SparseRows` (sparse + low-rank), exactly.

For a :class:`~phylocl.models.kmerprofile.KmerProfile` backbone with head ``none``, one window ``w`` (at most
``max_len`` residues) embeds to ``(prof_w + c_w @ E) / norm_w``: ``prof_w`` ``(D,)`` the concatenated pattern
blocks, nonzero only at words present in the window; ``E`` ``(r, D)`` the token embedding (``r`` = vocabulary
size); ``c_w = g_c * n_w / |n_w @ E|`` with ``n_w`` ``(r,)`` the window's token counts (padding excluded);
``norm_w^2 = |prof_w|^2 + 2 c_w . (E prof_w) + c_w G c_w`` with ``G = E E^T``. A sequence is the normalised sum
of its windows (:func:`~phylocl.models.inference.embed_token_arrays`), so its row is ``(S + C @ E) / Z`` with
``S = sum_w prof_w / norm_w`` sparse and ``C = sum_w c_w / norm_w``; ``Z`` follows from the same identity. No
``(N, D)`` array is ever built: the work per step is one batch of windows and its nonzeros.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from phylocl.data.alphabet import PAD_ID
from phylocl.data.tokens import pad_batch
from phylocl.models.inference import _windows
from phylocl.models.kmerprofile import KmerProfile
from phylocl.models.windows import overlap_stride
from phylocl.sparse_rows import SparseRows

__all__ = ["supports_sparse", "embed_sparse"]

_EPS = 1e-12  # F.normalize's floor on norms, as in the dense path


def supports_sparse(encoder) -> bool:
    """True for a :class:`~phylocl.models.encoder.SequenceEncoder` with a k-mer profile backbone and head ``none``
    (read from its members: this module sits below the encoder and does not import it)."""
    head = getattr(getattr(encoder, "head", None), "net", None)
    return isinstance(getattr(encoder, "backbone", None), KmerProfile) and isinstance(head, nn.Identity)


def _norm(sq: torch.Tensor) -> torch.Tensor:
    return sq.clamp(min=0).sqrt().clamp(min=_EPS)


def _row_norms(row, col, val, coeffs, basis, gram, token_rows: int | None = None) -> torch.Tensor:
    """``(k,)`` norms (floored at 1e-12) of rows ``v + coeffs @ basis``, ``v`` given by entries ``row, col, val``.

    ``|v + c E|^2 = |v|^2 + 2 c . (E v) + c G c`` with ``G = E E^T`` ``(r, r)``; ``coeffs`` ``(k, r)``. Basis rows
    past the first ``token_rows`` (default all; the similar-word block's unit rows, :func:`_basis`) live in columns
    the sparse part never uses, so their ``E v`` is 0 and is not computed (``basis.T[col]`` costs ``nnz x r``).
    """
    t = basis.shape[0] if token_rows is None else token_rows
    e_v = torch.zeros_like(coeffs)  # (k, r) = E v
    e_v[:, :t] = torch.zeros(len(coeffs), t, dtype=coeffs.dtype).index_add_(0, row, val[:, None] * basis[:t].T[col])
    sq = torch.zeros(len(coeffs), dtype=torch.float64).index_add_(0, row, val * val)  # (k,)
    return _norm(sq + 2 * (coeffs * e_v).sum(1) + ((coeffs @ gram) * coeffs).sum(1))


def _basis(backbone: KmerProfile, tokens: torch.Tensor) -> torch.Tensor:
    """``(r, D)`` float64: the token embedding ``(v, D)``, then, with a similar-word block of ``P s`` columns (the
    last ones), one unit row per column of it (its values are coefficients too)."""
    extra = len(backbone.patterns) * backbone.similar_rank
    if not extra:
        return tokens
    unit = torch.zeros(extra, tokens.shape[1], dtype=tokens.dtype)
    unit[:, tokens.shape[1] - extra:] = torch.eye(extra, dtype=tokens.dtype)
    return torch.cat([tokens, unit])


def _window_terms(backbone: KmerProfile, batch: dict, basis: torch.Tensor, gram: torch.Tensor):
    """Unit window embeddings ``prof + coeffs @ basis`` of a token batch ``(b, L)``, all float64 on the CPU.

    Returns ``(win (nnz,), col (nnz,), val (nnz,), coeffs (b, r))``: entry ``j`` of the sparse part is
    ``val[j]`` at column ``col[j]`` of window ``win[j]``, sorted by window then column. ``coeffs`` holds the
    composition term's ``v`` token coefficients, then the similar-word block's values (:func:`_basis`).
    """
    device = backbone.code.device
    ids, mask = batch["input_ids"], batch["attention_mask"]
    counts = backbone.counts(ids.to(device), mask.to(device))  # (b, P, K) float32
    n_pat, size = counts.shape[1:]
    nz = counts.nonzero()  # (nnz, 3): window, pattern, word, sorted
    cnt = counts[nz[:, 0], nz[:, 1], nz[:, 2]].cpu().double()  # (nnz,)
    win, pat, word = nz.cpu().unbind(1)
    val = cnt.sqrt() * backbone.weights.detach().cpu().double()[pat, word]  # (nnz,)
    block = win * n_pat + pat  # (nnz,)
    block_norm = _norm(torch.zeros(len(ids) * n_pat, dtype=torch.float64).index_add_(0, block, val * val))
    val = val * backbone.gains.detach().cpu().double()[pat] / block_norm[block]
    vocab = basis.shape[0] - len(backbone.patterns) * backbone.similar_rank
    tokens = torch.zeros(len(ids), vocab, dtype=torch.float64)  # (b, v) token counts
    tokens.scatter_add_(1, ids, mask.double())
    tokens[:, PAD_ID] = 0
    gain = float(backbone.composition_gain.detach())
    tok_gram = gram[:vocab, :vocab]
    coeffs = gain * tokens / _norm(((tokens @ tok_gram) * tokens).sum(1))[:, None]  # (b, v): |coeffs @ E| = |g_c|
    if backbone.similar_rank:  # the dense block, computed as the dense path does (float32)
        weighted = counts.sqrt() * backbone.weights.detach()  # (b, P, K)
        block = backbone.similar_block(weighted).detach().cpu().double()  # (b, P, s)
        coeffs = torch.cat([coeffs, block.flatten(1)], 1)  # (b, v + P s)
    col = pat * size + word  # (nnz,)
    norm = _row_norms(win, col, val, coeffs, basis, gram, vocab)  # (b,)
    return win, col, val / norm[win], coeffs / norm[:, None]


def _finish(run: torch.Tensor, col: torch.Tensor, val: torch.Tensor, coeffs: torch.Tensor, basis: torch.Tensor,
            gram: torch.Tensor, token_rows: int | None = None):
    """Normalise summed rows ``(S + coeffs @ basis) / Z`` (``S``: entries ``run, col, val`` sorted; ``coeffs (k, r)``).

    Returns numpy ``(lengths (k,), indices int32, values float32, coeffs (k, r) float32)`` of the CSR rows.
    """
    z = _row_norms(run, col, val, coeffs, basis, gram, token_rows)  # (k,)
    keep = val != 0  # a word whose weight or pattern gain is 0 adds nothing
    lengths = torch.bincount(run[keep], minlength=len(coeffs))  # (k,)
    values = (val / z[run])[keep].numpy().astype(np.float32)
    return lengths.numpy(), col[keep].numpy().astype(np.int32), values, (coeffs / z[:, None]).numpy().astype(np.float32)


def _in_input_order(owners, lengths, indices, values, coeffs, basis: np.ndarray) -> SparseRows:
    """Reorder rows finished in window order (``owners[i]`` = input position of row ``i``) into input order."""
    order = np.argsort(owners, kind="stable")
    old_start = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)  # (N,)
    indptr = np.concatenate([[0], np.cumsum(lengths[order])]).astype(np.int64)  # (N + 1,)
    src = np.repeat(old_start[order] - indptr[:-1], lengths[order]) + np.arange(indptr[-1])  # (nnz,)
    return SparseRows(indptr=indptr, indices=indices[src], values=values[src], coeffs=coeffs[order],
                      basis=basis, dim=basis.shape[1])


def _sum_windows(owners: torch.Tensor, win, col, val, coeffs, carry, dim: int):
    """Sum the window terms of each run of equal ``owners`` ``(b,)`` (one sequence per run) plus ``carry``.

    Returns ``(run_owners (k,), (run, col, val, sums (k, r)))``: sparse entries sorted by run, then column.
    """
    first = torch.cat([torch.ones(1, dtype=torch.bool), owners[1:] != owners[:-1]])  # (b,) a run starts
    run_of = first.long().cumsum(0) - 1  # (b,)
    sums = torch.zeros(int(first.sum()), coeffs.shape[1], dtype=torch.float64).index_add_(0, run_of, coeffs)
    run = run_of[win]
    if carry is not None:  # the first run continues the last sequence of the previous batch
        run, col, val = (torch.cat([torch.zeros_like(carry[0]), run]), torch.cat([carry[0], col]),
                         torch.cat([carry[1], val]))
        sums[0] += carry[2]
    key, inverse = torch.unique(run * dim + col, return_inverse=True)  # sorted by run, then column
    val = torch.zeros(len(key), dtype=torch.float64).index_add_(0, inverse, val)
    return owners[first].numpy(), (key // dim, key % dim, val, sums)


def _split_last(run, col, val, sums):
    """The rows but the last, and the last as a carry ``(col, val, sums (r,))``."""
    last = run == len(sums) - 1
    return (run[~last], col[~last], val[~last], sums[:-1]), (col[last], val[last], sums[-1])


@torch.no_grad()
def embed_sparse(encoder, sequences: Sequence[str], *, batch_size: int = 64,
                 overlap: float | None = None) -> SparseRows:
    """The rows of ``encoder.embed(sequences, overlap=overlap)`` as :class:`~phylocl.sparse_rows.SparseRows`.

    ``N`` sequences give ``N`` unit rows of width ``D = embed_dim``: a sparse part (one entry per word present,
    columns strictly increasing) plus ``coeffs (N, r) @ basis``, ``basis`` the token embedding ``(r, D)``
    float32. Same tokenisation (:class:`~phylocl.errors.InputError` on bad letters), windows and batches of
    ``batch_size`` windows as the dense path, which it matches to float32 rounding (sums are float64); runs with
    eval-mode semantics. Memory: one batch of windows plus the output's nonzeros.
    """
    if not supports_sparse(encoder):
        raise ValueError(f"sparse embeddings need a kmerprofile encoder with head 'none', got backbone "
                         f"{getattr(getattr(encoder, 'config', None), 'backbone', type(encoder).__name__)!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if isinstance(sequences, str):
        sequences = [sequences]
    arrays = [encoder._token_array(i, s) for i, s in enumerate(sequences)]
    width = encoder.max_len
    basis = _basis(encoder.backbone, encoder.embedding.weight.detach().cpu().double())  # (r, D)
    vocab = encoder.embedding.weight.shape[0]  # basis rows that may share columns with the sparse part
    stride = encoder.window_stride if overlap is None else overlap_stride(width, overlap)
    windows, order = _windows(arrays, width, stride)  # a sequence's windows are consecutive in `order`
    gram = basis @ basis.T  # (r, r)
    parts, carry = [], None
    for lo in range(0, len(order), batch_size):
        chunk = [windows[j] for j in order[lo:lo + batch_size]]
        terms = _window_terms(encoder.backbone, pad_batch([arrays[i][s:s + width] for i, s in chunk]), basis, gram)
        owners, rows = _sum_windows(torch.tensor([i for i, _ in chunk]), *terms, carry, basis.shape[1])
        hi = lo + batch_size
        carry = None
        if hi < len(order) and windows[order[hi]][0] == owners[-1]:  # its last sequence goes on
            rows, carry = _split_last(*rows)
        parts.append((owners[:len(rows[3])], *_finish(*rows, basis, gram, vocab)))
    if not parts:
        parts = [(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32),
                  np.zeros((0, basis.shape[0]), np.float32))]
    owners = np.concatenate([p[0] for p in parts])
    if not np.array_equal(np.sort(owners), np.arange(len(arrays))):  # the window order kept each sequence together
        raise RuntimeError("windows of one sequence were not consecutive in the window order")
    return _in_input_order(*(np.concatenate(p) for p in zip(*parts)), basis=basis.float().numpy())
