"""End-to-end jobs behind the CLI commands (train, embed, index, search, evaluate, compare).

They sit above every other layer: they read inputs, wire data, models, losses, training and retrieval together,
show progress and write outputs atomically. ``phylocl/cli.py`` only parses arguments and calls these.
"""

from __future__ import annotations

from phylocl.moved import alias_modules

# renamed so that each name says its layer (the retrieval and model modules have the short names); old names import
alias_modules({
    "phylocl.workflows.models": "phylocl.workflows.model_spec",
    "phylocl.workflows.index": "phylocl.workflows.index_command",
    "phylocl.workflows.sparse_index": "phylocl.workflows.sparse_index_command",
    "phylocl.workflows.embedding": "phylocl.workflows.embed_buffers",
})

__all__ = ["progress_bar"]


def progress_bar(label: str, *, total: int | None = None, unit: str = "sequences", enabled: bool = True,
                 stream=None):
    """The tqdm bar every workflow shows: count, rate, elapsed time and (with ``total``) ETA on ``stream``
    (default stderr). Silent when ``enabled`` is false (``--quiet``) or ``stream`` is not a terminal (a batch
    job's log), where tqdm's rewritten line would only clutter the file."""
    from tqdm.auto import tqdm

    return tqdm(desc=label, total=total, unit=unit, file=stream, disable=None if enabled else True,
                dynamic_ncols=True, unit_scale=False)
