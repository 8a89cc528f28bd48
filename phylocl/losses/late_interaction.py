"""Late interaction: a pair of sequences scored by its best pair of windows, as the windowed search scores it.

``phylocl search`` ranks database sequences by the best cosine between any window of the query and any window of
the target (:mod:`phylocl.retrieval.windowed`; ColBERT-style late interaction, tiles of 200 residues for
``default-protein``). Training on whole-sequence embeddings optimises another score. Here each view of a batch is
cut into windows, every window is embedded, and the ``(B, B)`` similarity of sequences ``i`` and ``j`` is::

    S_ij = max over windows u of a_i, w of b_j of  <z_u, z_w>        (unit rows: a cosine)

which then goes through the same negatives as the plain losses (:func:`~phylocl.losses.logits.similarity_terms`:
cross-view, same family masked), so InfoNCE or FlatNCE is unchanged but for the score. The gradient of a maximum
reaches the windows that attain it (ties: shared evenly, as ``torch.amax``). With one window per sequence this is
exactly the plain loss (tested).

Inputs are window embeddings ``(W, D)`` and, per window, the batch row it belongs to (``owners``, every row owning
at least one window), as :func:`phylocl.models.windows.window_batch` cuts them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from phylocl.losses.logits import ContrastiveLoss, float_dtype, similarity_terms

__all__ = ["LateInteraction", "window_similarity"]


def window_similarity(z_a: torch.Tensor, owners_a: torch.Tensor, z_b: torch.Tensor, owners_b: torch.Tensor,
                      n: int) -> torch.Tensor:
    """``(n, n)``: for rows ``i`` and ``j``, the largest ``z_a[u] . z_b[w]`` over windows ``u`` of row ``i``
    (``owners_a[u] == i``) and ``w`` of row ``j``. ``z_a`` ``(Wa, D)``, ``z_b`` ``(Wb, D)``; ``owners`` int64 in
    ``0..n-1``, each row owning at least one window of each view."""
    if z_a.dim() != 2 or z_b.dim() != 2 or z_a.shape[1] != z_b.shape[1]:
        raise ValueError(f"window embeddings must be (W, D) with one D, got {tuple(z_a.shape)} and {tuple(z_b.shape)}")
    owners_a, owners_b = owners_a.to(z_a.device).long(), owners_b.to(z_a.device).long()
    if owners_a.shape != (z_a.shape[0],) or owners_b.shape != (z_b.shape[0],):
        raise ValueError("one owner per window")
    for owners in (owners_a, owners_b):
        if not len(owners) or int(owners.min()) < 0 or int(owners.max()) >= n or \
                bool((torch.bincount(owners, minlength=n) == 0).any()):
            raise ValueError(f"every one of the {n} rows must own at least one window, and no other row")
    s = z_a @ z_b.T  # (Wa, Wb)
    per_b = s.new_full((s.shape[0], n), float("-inf")).scatter_reduce(
        1, owners_b[None, :].expand_as(s), s, reduce="amax", include_self=False)  # (Wa, n): best w of row j
    return per_b.new_full((n, n), float("-inf")).scatter_reduce(
        0, owners_a[:, None].expand_as(per_b), per_b, reduce="amax", include_self=False)  # (n, n)


class LateInteraction(torch.nn.Module):
    """A plain contrastive loss (``loss``: :class:`~phylocl.losses.infonce.InfoNCE` or
    :class:`~phylocl.losses.flatnce.FlatNCE`, whose temperature, symmetry and ``last_stats`` it uses) over
    best-window-pair similarities (module docstring).

    Called as ``loss(z_a, owners_a, z_b, owners_b, labels=None)``: window embeddings ``(Wa, D)`` / ``(Wb, D)``,
    their rows ``(Wa,)`` / ``(Wb,)`` in ``0..B-1``, optional ``(B,)`` family ids; returns a scalar. Windows are
    L2-normalised first when ``loss.normalize``. Not for gathered (DDP) batches: ``loss.gather_distributed`` is
    refused.
    """

    def __init__(self, *, loss: ContrastiveLoss) -> None:
        super().__init__()
        if loss.gather_distributed:
            raise ValueError("late interaction does not gather windows across processes")
        self.loss = loss

    @property
    def last_stats(self) -> dict[str, torch.Tensor]:
        return self.loss.last_stats

    def forward(self, z_a: torch.Tensor, owners_a: torch.Tensor, z_b: torch.Tensor, owners_b: torch.Tensor,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        labels = self.loss._labels(labels)
        n = int(labels.shape[0]) if labels is not None else int(owners_a.max()) + 1
        dtype = float_dtype(z_a, z_b)
        z_a, z_b = z_a.to(dtype), z_b.to(dtype)
        if self.loss.normalize:
            z_a, z_b = F.normalize(z_a, dim=-1), F.normalize(z_b, dim=-1)  # (W, D) each
        scale = self.loss.scale()
        s = window_similarity(z_a, owners_a, z_b, owners_b, n) * scale  # (B, B) logits
        return self.loss.finish(similarity_terms(s, labels=labels, symmetric=self.loss.symmetric), scale)
