"""The evolution simulator: synthetic ortholog families evolved along random trees.

- :mod:`~phylocl.data.simulator.substitution`  BLOSUM62-derived protein and K80 DNA substitution models
- :mod:`~phylocl.data.simulator.rates`         discrete gamma rate heterogeneity across sites
- :mod:`~phylocl.data.simulator.indels`        insertions and deletions along a branch
- :mod:`~phylocl.data.simulator.evolution`     one sequence evolved along a tree (all of the above)
- :mod:`~phylocl.data.simulator.simulate`      ``phylocl simulate``: families on Yule trees, written as a dataset
- :mod:`~phylocl.data.simulator.evolved`       families evolved on the fly as a training source
  (configured by :mod:`~phylocl.data.simulator.evolved_config`, the ``data.evolved`` section)

These modules used to be ``phylocl.data.<name>``; those names still import (the same module objects), see
:mod:`phylocl.moved`.
"""
