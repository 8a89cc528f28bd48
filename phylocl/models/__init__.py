"""phylocl.models: everything that turns sequences into vectors.

- :mod:`~phylocl.models.embedder`  the :class:`Embedder` protocol every model below follows
- :mod:`~phylocl.models.kmer`      ``KmerEmbedder``: the ``kmer:K`` count baselines (NumPy, no torch)
- :mod:`~phylocl.models.encoder`   ``SequenceEncoder``: trained encoders (gMLP/aMLP, transformer, k-mer backbones)
- :mod:`~phylocl.models.registry`  named encoder configurations; :mod:`~phylocl.models.persistence` model folders

See ``docs/encoders.md``. Names are imported on first use, so ``kmer:K`` never pays for torch. The usual entry
points are re-exported at the package root: ``phylocl.build_encoder``, ``phylocl.list_models``,
``phylocl.load_encoder``.
"""

from __future__ import annotations

from phylocl.lazy import lazy_exports


__all__ = ["Embedder", "SparseEmbedder", "KmerEmbedder", "SequenceEncoder", "EncoderConfig", "build_encoder",
           "describe_model", "get_config", "list_models", "load_encoder", "shipped_models"]

_LAZY = {
    "Embedder": "phylocl.models.embedder",
    "SparseEmbedder": "phylocl.models.embedder",
    "KmerEmbedder": "phylocl.models.kmer",
    "SequenceEncoder": "phylocl.models.encoder",
    "EncoderConfig": "phylocl.models.encoder_config",
    "build_encoder": "phylocl.models.registry",
    "describe_model": "phylocl.models.registry",
    "get_config": "phylocl.models.registry",
    "list_models": "phylocl.models.registry",
    "load_encoder": "phylocl.models.persistence",
    "shipped_models": "phylocl.models.persistence",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY, __all__)
