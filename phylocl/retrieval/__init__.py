"""Retrieval: embedding files, FAISS indexes, hit lists and family-retrieval metrics.

Arrays in, numbers out; nothing here imports models or training (``KmerEmbedder`` and ``parse_model_spec`` moved
to :mod:`phylocl.models.kmer`; they are re-exported here for old imports).

- :mod:`~phylocl.retrieval.embeddings`  ``save_embeddings``, ``load_embeddings``, ``EmbeddingWriter``
- :mod:`~phylocl.retrieval.index`       ``build_index``, ``RetrievalIndex``, ``drop_self_hits``
- :mod:`~phylocl.retrieval.index_io`    ``save_index``, ``load_index``, ``check_compatible``
- :mod:`~phylocl.retrieval.hits`        ``HitLists``, ``hits_from_search``, ``read_hits_tsv``, ``write_hits_tsv``
- :mod:`~phylocl.retrieval.metrics`     ``score_hits``
- :mod:`~phylocl.retrieval.evaluation`  ``evaluate_embeddings``
"""

from phylocl.moved import alias_modules
from phylocl.retrieval.embeddings import EmbeddingSet, EmbeddingWriter, load_embeddings, save_embeddings
from phylocl.retrieval.evaluation import evaluate_embeddings
from phylocl.retrieval.hits import BLAST_TAB, HitLists, hits_from_search, read_hits_tsv, write_hits_tsv
from phylocl.retrieval.index import INDEX_KINDS, RetrievalIndex, build_index, drop_self_hits, set_num_threads
from phylocl.retrieval.index_io import check_compatible, load_index, save_index
from phylocl.retrieval.metrics import score_hits

alias_modules({"phylocl.retrieval.kmer": "phylocl.models.kmer"})  # moved with the other models; old name kept

__all__ = [
    "EmbeddingSet", "EmbeddingWriter", "save_embeddings", "load_embeddings",
    "KmerEmbedder", "parse_model_spec",
    "INDEX_KINDS", "RetrievalIndex", "build_index", "drop_self_hits", "set_num_threads",
    "save_index", "load_index", "check_compatible",
    "HitLists", "hits_from_search", "read_hits_tsv", "write_hits_tsv", "BLAST_TAB",
    "score_hits", "evaluate_embeddings",
]


def __getattr__(name: str):
    # KmerEmbedder and parse_model_spec moved to phylocl.models.kmer; kept (imported on first use) for old imports
    if name in ("KmerEmbedder", "parse_model_spec"):
        import importlib

        return getattr(importlib.import_module("phylocl.models.kmer"), name)
    raise AttributeError(f"module 'phylocl.retrieval' has no attribute {name!r}")
