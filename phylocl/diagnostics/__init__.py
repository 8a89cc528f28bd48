"""Representation health: rank collapse of token representations, and the spread of embeddings.

* :mod:`~phylocl.diagnostics.measures`: numbers from arrays (numpy/torch, no model imports): the rank-collapse
  residual of Dong et al. 2021, effective rank, per-dimension spread, alignment and uniformity.
* :mod:`~phylocl.diagnostics.probes`: family kNN top-1 and a cross-validated linear probe (scikit-learn).
* :mod:`~phylocl.diagnostics.layers`: per-block token representations of an encoder (forward hooks), reduced to
  the residual per block.
* :mod:`~phylocl.diagnostics.plots`: residual against depth, singular-value spectrum, 2-D map by family.

``phylocl diagnose`` (:mod:`phylocl.workflows.diagnose`) puts them together; ``phylocl train`` logs
:func:`~phylocl.diagnostics.measures.embedding_health` at every validation.
"""

from phylocl.diagnostics.measures import (alignment, effective_rank, embedding_health, masked_residual,
                                          rank_collapse_residual, uniformity)

__all__ = ["rank_collapse_residual", "masked_residual", "effective_rank", "alignment", "uniformity",
           "embedding_health"]
