"""The one interface of everything that embeds sequences: :class:`Embedder` (and its sparse form).

Three kinds of object follow it, so a caller never asks which one it holds:

- :class:`~phylocl.models.kmer.KmerEmbedder`: the ``kmer:K`` count baselines (NumPy);
- :class:`~phylocl.models.encoder.SequenceEncoder`: trained encoders (torch);
- :class:`~phylocl.workflows.model_spec.ResolvedModel`: either of them bound to run settings (device, precision,
  window overlap), what ``resolve_model`` returns and the commands (``embed``, ``index``, ``search``,
  ``evaluate``) use.

The protocol is structural (:class:`typing.Protocol`): nothing inherits from it, and
``isinstance(x, Embedder)`` checks that the members exist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:  # annotations only: importing this module costs nothing
    import numpy as np

    from phylocl.data.alphabet import Alphabet
    from phylocl.sparse_rows import SparseRows

__all__ = ["Embedder", "SparseEmbedder", "MODEL_INFO_KEYS"]

MODEL_INFO_KEYS = ("fingerprint", "name", "dim", "alphabet", "kind")  # every model_info() holds at least these


@runtime_checkable
class Embedder(Protocol):
    """Sequences in, unit vectors out.

    Members:
        alphabet: the :class:`~phylocl.data.alphabet.Alphabet` whose letters ``embed`` accepts.
        dim: width ``D`` of the rows.
        embed(sequences, *, batch_size): ``N`` strings -> ``(N, D)`` float32 rows of L2 norm 1 (a sequence
            without a single usable letter may give the zero row), in input order.
        model_info(): the ``model`` record stored with embedding files and indexes; holds at least
            :data:`MODEL_INFO_KEYS` (``fingerprint`` identifies the output space: equal fingerprints, comparable
            rows).
    """

    @property
    def alphabet(self) -> "Alphabet": ...

    @property
    def dim(self) -> int: ...

    def embed(self, sequences: Sequence[str], *, batch_size: int = ...) -> "np.ndarray": ...

    def model_info(self) -> dict: ...


@runtime_checkable
class SparseEmbedder(Embedder, Protocol):
    """An :class:`Embedder` that can also give its rows in sparse form (k-mer profiles).

    Members:
        sparse: whether :meth:`embed_sparse` works for this model (full ``kmer:K`` profiles and k-mer profile
            encoders with head ``none`` at fp32; a sketch or an attention stack: ``False``).
        embed_sparse(sequences, *, batch_size): the rows of ``embed`` as :class:`~phylocl.sparse_rows.SparseRows`
            (equal to float32 rounding); raises when ``sparse`` is false.
    """

    @property
    def sparse(self) -> bool: ...

    def embed_sparse(self, sequences: Sequence[str], *, batch_size: int = ...) -> "SparseRows": ...
