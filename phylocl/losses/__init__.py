"""phylocl.losses: contrastive losses on embeddings and labels (never the model).

:class:`InfoNCE` and :class:`FlatNCE` share one definition of positives and negatives
(:mod:`phylocl.losses.logits`), so their values and gradients are directly comparable.
"""

from phylocl.losses.flatnce import FlatNCE
from phylocl.losses.infonce import InfoNCE

__all__ = ["InfoNCE", "FlatNCE"]
