"""Data layer: alphabets, FASTA/ortholog-group readers, splits, pair strategies, samplers and the DataModule; the
evolution simulator in :mod:`phylocl.data.simulator`.

Names are imported on first use, so ``phylocl inspect`` and ``from phylocl.data import read_dataset`` do not pay
for torch or Lightning; the DataModule lives in :mod:`phylocl.data.datamodule`.
"""

from __future__ import annotations


from phylocl.lazy import lazy_exports
from phylocl.moved import alias_modules

# the evolution simulator moved to phylocl.data.simulator; its old module names still import
alias_modules({f"phylocl.data.{name}": f"phylocl.data.simulator.{name}" for name in
               ("evolution", "evolved", "evolved_config", "indels", "rates", "simulate", "substitution")})

__all__ = ["Alphabet", "PROTEIN", "DNA", "get_alphabet", "detect_alphabet", "pad_batch", "OrthologDataset",
           "read_dataset", "read_datasets", "iter_fasta", "split_families"]

_LAZY = {
    "Alphabet": "phylocl.data.alphabet",
    "PROTEIN": "phylocl.data.alphabet",
    "DNA": "phylocl.data.alphabet",
    "get_alphabet": "phylocl.data.alphabet",
    "detect_alphabet": "phylocl.data.alphabet",
    "pad_batch": "phylocl.data.tokens",
    "OrthologDataset": "phylocl.data.dataset",
    "read_dataset": "phylocl.data.layouts",
    "read_datasets": "phylocl.data.layouts",
    "iter_fasta": "phylocl.data.layouts",
    "split_families": "phylocl.data.splits",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY, __all__)
