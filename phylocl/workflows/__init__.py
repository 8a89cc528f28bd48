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
    import sys

    out = sys.stderr if stream is None else stream
    if not enabled or not (hasattr(out, "isatty") and out.isatty()):
        return _SilentBar()  # what tqdm would draw nothing for, without importing it (~40 ms of a search's start-up)
    from tqdm.auto import tqdm

    return tqdm(desc=label, total=total, unit=unit, file=stream, disable=None if enabled else True,
                dynamic_ncols=True, unit_scale=False)


class _SilentBar:
    """The part of tqdm's interface the workflows use, counting but drawing nothing (a disabled bar)."""

    disable = True

    def __init__(self) -> None:
        self.n = 0

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _SilentBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
