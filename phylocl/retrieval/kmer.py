"""Moved to :mod:`phylocl.models.kmer` (the k-mer baselines sit with the other models); kept for old imports."""

from phylocl.models.kmer import MAX_DIM, SKETCH_SEED, KmerEmbedder, parse_model_spec  # noqa: F401

__all__ = ["KmerEmbedder", "parse_model_spec", "MAX_DIM"]
