"""phylocl: contrastive learning on ortholog families.

Public API::

    import phylocl
    enc = phylocl.load_encoder("default-protein")      # shipped name, model folder or encoder file
    X = enc.embed(sequences, batch_size=64)             # (N, D) float32 unit rows
    enc.save_pretrained("my-model")                     # config.json + model.safetensors
    phylocl.list_models(); enc2 = phylocl.build_encoder("gmlp-small")
    loss = phylocl.InfoNCE(temperature=0.1)            # or phylocl.FlatNCE(...); normalize=, gather_distributed=
    cached = phylocl.CachedContrastiveLoss(enc2, loss, chunk_size=64)
    cached(batch_a, batch_b, labels).backward()         # GradCache as a loss
    phylocl.cached_backward(enc2, batch_a, batch_b, loss, chunk_size=64)
    searcher = phylocl.Searcher(index="db.index", k=10)  # an index held open: search again and again
    hits = searcher.search([("q1", "MKVLAAGIW...")])    # one dict per hit (the columns of `phylocl search`)
"""

from __future__ import annotations

from phylocl.lazy import lazy_exports


__version__ = "0.7.0"

__all__ = [
    "build_encoder",
    "list_models",
    "load_encoder",
    "InfoNCE",
    "FlatNCE",
    "cached_backward",
    "CachedContrastiveLoss",
    "read_dataset",
    "Searcher",
    "InputError",
]

# Imported on first use so `import phylocl` (and the CLI's argument parsing) stays fast.
_LAZY = {
    "build_encoder": "phylocl.models.registry",
    "list_models": "phylocl.models.registry",
    "load_encoder": "phylocl.models.persistence",
    "InfoNCE": "phylocl.losses.infonce",
    "FlatNCE": "phylocl.losses.flatnce",
    "cached_backward": "phylocl.training.gradcache",
    "CachedContrastiveLoss": "phylocl.training.cached_loss",
    "read_dataset": "phylocl.data.layouts",
    "Searcher": "phylocl.workflows.searcher",
    "InputError": "phylocl.errors",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY, __all__)
