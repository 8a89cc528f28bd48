"""Retrieval: embedding files, FAISS indexes, hit lists and family-retrieval metrics.

Arrays in, numbers out; nothing here imports models or training (``KmerEmbedder`` and ``parse_model_spec`` moved
to :mod:`phylocl.models.kmer`; they are re-exported here for old imports).

- :mod:`~phylocl.retrieval.embedding_files`  ``save_embeddings``, ``load_embeddings``, ``EmbeddingWriter``
- :mod:`~phylocl.retrieval.index`            ``build_index``, ``RetrievalIndex``, ``drop_self_hits``
- :mod:`~phylocl.retrieval.index_io`         ``save_index``, ``load_index``, ``check_compatible``
- :mod:`~phylocl.retrieval.hits`             ``HitLists``, ``hits_from_search``, ``read_hits_tsv``, ``write_hits_tsv``
- :mod:`~phylocl.retrieval.metrics`          ``score_hits``
- :mod:`~phylocl.retrieval.evaluation`       ``evaluate_embeddings``
"""


from phylocl.lazy import lazy_exports
from phylocl.moved import alias_modules

_LAZY = {  # imported on first use: a search loads neither the metrics nor the embeddings files
    "EmbeddingSet": "phylocl.retrieval.embedding_files",
    "EmbeddingWriter": "phylocl.retrieval.embedding_files",
    "load_embeddings": "phylocl.retrieval.embedding_files",
    "save_embeddings": "phylocl.retrieval.embedding_files",
    "evaluate_embeddings": "phylocl.retrieval.evaluation",
    "BLAST_TAB": "phylocl.retrieval.hits",
    "HitLists": "phylocl.retrieval.hits",
    "hits_from_search": "phylocl.retrieval.hits",
    "read_hits_tsv": "phylocl.retrieval.hits",
    "write_hits_tsv": "phylocl.retrieval.hits",
    "INDEX_KINDS": "phylocl.retrieval.index",
    "RetrievalIndex": "phylocl.retrieval.index",
    "build_index": "phylocl.retrieval.index",
    "drop_self_hits": "phylocl.retrieval.index",
    "set_num_threads": "phylocl.retrieval.index",
    "check_compatible": "phylocl.retrieval.index_io",
    "load_index": "phylocl.retrieval.index_io",
    "save_index": "phylocl.retrieval.index_io",
    "KmerEmbedder": "phylocl.models.kmer",
    "parse_model_spec": "phylocl.models.kmer",
    "score_hits": "phylocl.retrieval.metrics",
}

alias_modules({
    "phylocl.retrieval.kmer": "phylocl.models.kmer",  # moved with the other models; old name kept
    "phylocl.retrieval.embeddings": "phylocl.retrieval.embedding_files",  # renamed: the embeddings file format
})

__all__ = [
    "EmbeddingSet", "EmbeddingWriter", "save_embeddings", "load_embeddings",
    "KmerEmbedder", "parse_model_spec",
    "INDEX_KINDS", "RetrievalIndex", "build_index", "drop_self_hits", "set_num_threads",
    "save_index", "load_index", "check_compatible",
    "HitLists", "hits_from_search", "read_hits_tsv", "write_hits_tsv", "BLAST_TAB",
    "score_hits", "evaluate_embeddings",
]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY, __all__)
