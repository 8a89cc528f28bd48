"""Model specs of the ``embed``/``search``/``evaluate`` commands: one string names what embeds the sequences.

``--model`` accepts, in this order:

1. ``kmer:K``: the k-mer count baseline (:class:`~phylocl.models.kmer.KmerEmbedder`) in the data's alphabet;
2. a path: a model folder (``config.json`` + ``model.safetensors``), a trained encoder file, or a directory
   holding ``encoder.pt`` (``phylocl train --out DIR`` writes a model folder; earlier versions wrote encoder.pt);
3. the name of a shipped pretrained encoder, the folder ``phylocl/pretrained/<name>/`` (see
   :func:`~phylocl.models.persistence.shipped_models`).

Paths and names are read by :func:`phylocl.load_encoder`; this module adds ``kmer:K``, the default per alphabet
and the messages of the command line.

Without ``--model`` the commands use the method that measures best on the dev split for the input's alphabet
(:func:`~phylocl.workflows.defaults.choose_default`, from ``phylocl/pretrained/dev-figures.json``): a ``kmer:K``
baseline until a shipped encoder beats it. The returned :class:`ResolvedModel` then carries the choice
(``default_choice``; ``model_info()["default_choice"]``), so that outputs say what was used and why.
Everything else is an :class:`~phylocl.errors.InputError` saying what exists.

``resolve_model(..., sparse_only=True)`` (``phylocl search --index`` of a sparse index, which needs only
:meth:`ResolvedModel.embed_sparse`) loads a k-mer profile encoder's model folder with NumPy
(:class:`~phylocl.models.profile_numpy.NumpyProfileEncoder`, the same rows and fingerprint) when it would run on
the CPU at fp32, so such a search never imports torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from phylocl.arguments import option, setting, usable_path
from phylocl.data.alphabet import Alphabet, get_alphabet
from phylocl.errors import InputError
from phylocl.sparse_rows import SparseRows
from phylocl.workflows.defaults import DefaultChoice, choose_default

__all__ = ["ResolvedModel", "Embedder", "resolve_model", "default_model", "shipped_models", "resolve_device"]

PRECISIONS = ("fp32", "bf16", "int8")  # as phylocl.models.inference.PRECISIONS (not imported: torch stays lazy here)


def _train_hint(architecture: str | None = None) -> str:
    """Where a model comes from, in the caller's words (``--model DIR`` / ``model='DIR'``); ``architecture``: the
    registered one to train (``phylocl train --set model.name=...``)."""
    arch = f" --set model.name={architecture}" if architecture else ""
    return (f"train one with `phylocl train --out DIR{arch}` and pass {setting('model', 'DIR')}, or use the "
            f"baseline {setting('model', 'kmer:3')}")


def shipped_models() -> list[str]:
    """Names of the pretrained encoders shipped in ``phylocl/pretrained/`` (see :mod:`phylocl.models.persistence`)."""
    from phylocl.models.persistence import shipped_models

    return shipped_models()


def resolve_device(device: str | None) -> str:
    """``"cpu"`` or ``"cuda"``; ``None`` picks ``cuda`` when available. Asking for an absent GPU is an InputError."""
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") and not str(device).startswith("cuda:"):
        raise InputError(f"unknown device {device!r}; use cpu or cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"{setting('device', device)} was asked for but no CUDA GPU is available here; use "
                         f"{setting('device', 'cpu')}")
    return device


class ResolvedModel:
    """A model (any :class:`~phylocl.models.embedder.Embedder`) bound to the settings of one run; itself an
    :class:`~phylocl.models.embedder.SparseEmbedder`, and what :func:`resolve_model` returns.

    Args:
        model: a :class:`~phylocl.models.encoder.SequenceEncoder` or a :class:`~phylocl.models.kmer.KmerEmbedder`
            (anything with ``embed``, ``model_info``, ``alphabet``, ``dim``, ``sparse`` and ``embed_sparse``).
        source: where it came from (the spec, a path), for messages.
        device: where a model with weights runs (it is moved there once); a NumPy model runs on the CPU.
        precision: ``fp32``, ``bf16`` (bfloat16 autocast) or ``int8`` (int8 linear layers, CPU) for a model with
            weights; the k-mer baseline is exact (always ``fp32``).
        overlap: window overlap of an encoder on long sequences (``None``: the encoder's default, 0.5; see
            :func:`~phylocl.models.windows.overlap_stride`); the k-mer baseline has no windows.
        default_choice: set when no model was named and this one was chosen as the best measured default.
        default_windows: the window width the model's folder names for sparse search (``search.json``;
            :func:`~phylocl.models.model_files.default_windows`), ``None``: one row per sequence.

    Attributes: ``model``, ``alphabet`` (:class:`Alphabet`), ``dim`` (embedding width), ``name``, ``source``,
    ``device``, ``precision``, ``overlap``, ``default_choice``, ``default_windows``, ``is_encoder`` (the model has weights that run on
    ``device``). Which settings the model takes is decided once, here; :meth:`embed` and :meth:`embed_sparse` then
    call the model's own methods with them.
    """

    def __init__(self, *, model, source: str, device: str = "cpu", precision: str = "fp32",
                 overlap: float | None = None, default_choice: DefaultChoice | None = None,
                 default_windows: int | None = None) -> None:
        if not (hasattr(model, "embed") and hasattr(model, "model_info")):
            raise ValueError(f"model must have embed() and model_info(), got {type(model).__name__}")
        self.model, self.source = model, str(source)
        self.is_encoder = hasattr(model, "to") and hasattr(model, "parameters")  # torch weights (else NumPy)
        self.device = device if self.is_encoder else "cpu"
        if precision not in PRECISIONS:
            raise InputError(f"unknown precision {precision!r}; use {' or '.join(PRECISIONS)}")
        self.precision = precision if self.is_encoder else "fp32"
        if self.precision == "int8" and self.device != "cpu":
            raise InputError(f"{setting('precision', 'int8')} runs on the CPU; use {setting('device', 'cpu')}, or "
                             "bf16 on a GPU")
        check_overlap(overlap)
        self.overlap = overlap if self.is_encoder else None
        # the run settings each method of the model takes (a NumPy model takes none)
        self._dense_options = {"precision": self.precision, "overlap": self.overlap} if self.is_encoder else {}
        self._sparse_options = {"overlap": self.overlap} if self.is_encoder else {}
        if self.is_encoder:
            model.to(self.device).eval()
        self.default_choice = default_choice
        self.default_windows = default_windows
        self._info: dict | None = None

    @property
    def alphabet(self) -> Alphabet:
        return get_alphabet(self.model.alphabet)

    @property
    def dim(self) -> int:
        return int(self.model.dim)

    @property
    def name(self) -> str:
        return str(self.model_info()["name"])

    def model_info(self) -> dict:
        """The ``model`` record for embedding files and indexes (fingerprint, name, dim, alphabet, ...); cached,
        since an encoder's fingerprint hashes every weight."""
        if self._info is None:
            self._info = dict(self.model.model_info())
            self._info.setdefault("source", self.source)
            if self.default_choice is not None:
                self._info["default_choice"] = self.default_choice.record()
        return dict(self._info)

    def embed(self, sequences: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """``N`` sequences (canonical letters of :attr:`alphabet`) -> ``(N, dim)`` float32 rows of unit norm."""
        x = self.model.embed(list(sequences), batch_size=batch_size, **self._dense_options)
        return np.asarray(x, dtype=np.float32)

    @property
    def sparse(self) -> bool:
        """Whether :meth:`embed_sparse` works: full ``kmer:K`` profiles and k-mer profile encoders (fp32)."""
        return self.precision == "fp32" and bool(getattr(self.model, "sparse", False))

    def embed_sparse(self, sequences: Sequence[str], *, batch_size: int = 64) -> SparseRows:
        """The rows of :meth:`embed` as :class:`~phylocl.sparse_rows.SparseRows` (see :attr:`sparse`)."""
        if not self.sparse and getattr(self.model, "sparse", False):  # a k-mer profile encoder at bf16 / int8
            raise InputError(f"model {self.name} gives sparse rows at fp32 only (a sparse index holds them exactly, "
                             f"at fp32); drop {setting('precision', self.precision)}")
        if not self.sparse:
            raise InputError(f"model {self.name} does not give sparse rows (only full k-mer profiles, kmer:K, and "
                             "k-mer profile encoders such as default-protein do, at fp32)")
        return self.model.embed_sparse(list(sequences), batch_size=batch_size, **self._sparse_options)


Embedder = ResolvedModel  # this class's former name; kept for old imports (the protocol is phylocl.models.embedder.Embedder)


def _load_encoder_file(source: str | Path, name: str, device: str, precision: str,
                       overlap: float | None, sparse_only: bool = False) -> ResolvedModel:
    from phylocl.models.persistence import PRETRAINED_DIR, load_encoder
    from phylocl.models.profile_numpy import NumpyProfileEncoder, is_profile_folder

    folder = Path(source).expanduser()
    folder = folder if folder.exists() else PRETRAINED_DIR / str(source)  # a shipped name
    folder = folder.parent if folder.name in ("config.json", "model.safetensors") else folder
    from phylocl.models.model_files import default_windows

    windows = default_windows(folder)  # search.json: the model's own window width, if it names one
    if sparse_only and device in (None, "cpu") and precision == "fp32" and is_profile_folder(folder):
        return ResolvedModel(model=NumpyProfileEncoder(folder=folder, overlap=overlap), source=name,
                             default_windows=windows)  # no torch

    device = resolve_device(device)  # imports torch: only encoders need it (kmer:K starts in a fraction of a second)
    return ResolvedModel(model=load_encoder(source), source=name, device=device, precision=precision, overlap=overlap,
                         default_windows=windows)


def default_model(alphabet: str | Alphabet) -> DefaultChoice:
    """What ``resolve_model(None, alphabet=...)`` uses: the best measured usable method (see the module doc)."""
    return choose_default(get_alphabet(alphabet).name, shipped=shipped_models())


def check_overlap(overlap: float | None) -> None:
    """Raise :class:`InputError` unless ``overlap`` is ``None`` or in ``[0, 1)`` (``nan`` is refused)."""
    if overlap is not None and not 0 <= overlap < 1:
        raise InputError(f"{option('overlap')} must be in [0, 1), got {overlap}")


def resolve_model(spec: str | None, *, alphabet: str | Alphabet | None = None, device: str | None = "cpu",
                  precision: str = "fp32", overlap: float | None = None, sparse_only: bool = False) -> ResolvedModel:
    """The :class:`ResolvedModel` named by ``spec`` (see the module docstring).

    Args:
        spec: ``kmer:K``, an encoder file or directory, a shipped model name, or ``None`` for the best
            measured method of ``alphabet`` (:func:`default_model`).
        alphabet: the input's alphabet; needed by ``kmer:K`` and by ``spec=None``.
        device: ``cpu``, ``cuda`` or ``None`` (GPU when available) for encoders.
        precision: ``fp32``, ``bf16`` or ``int8`` for encoders (:meth:`SequenceEncoder.embed`); the k-mer baseline
            is exact. overlap: encoders' window overlap (``None``: default).
        sparse_only: the caller uses only :meth:`ResolvedModel.embed_sparse`: a k-mer profile encoder's model folder
            is then read with NumPy when ``device`` is ``None``/``cpu`` and ``precision`` fp32 (no torch import;
            with ``device=None`` such an encoder runs on the CPU even where a GPU exists).

    Raises :class:`InputError` for a spec that names nothing usable, listing what exists.
    """
    from phylocl.models.kmer import KmerEmbedder, parse_model_spec

    check_overlap(overlap)  # before an encoder is built with it
    if precision not in PRECISIONS:  # kmer:K ignores it, but a misspelt one is refused for every model
        raise InputError(f"unknown precision {precision!r}; use {' or '.join(PRECISIONS)}")
    alpha = None if alphabet is None else get_alphabet(alphabet)
    spec = None if spec is None else str(spec)
    kmer = None if spec is None else parse_model_spec(spec)
    if kmer is not None:  # before anything imports torch: kmer:K starts in a fraction of a second
        if alpha is None:
            raise InputError(f"{spec} needs the input's alphabet (protein or dna)")
        if device not in (None, "cpu"):
            resolve_device(device)  # an absent GPU is still an error, though kmer:K would not use it
        try:
            return ResolvedModel(model=KmerEmbedder(k=kmer[1], alphabet=alpha, dim=kmer[2]), source=spec)
        except ValueError as err:
            raise InputError(f"bad k-mer model {spec!r}: {err}") from None
    shipped = shipped_models()
    listing = f"shipped models: {', '.join(shipped)}" if shipped else "no pretrained model is shipped yet"
    if spec is None:
        if alpha is None:
            raise ValueError("resolve_model(None) needs the input's alphabet to pick its default method")
        choice = default_model(alpha)
        embedder = resolve_model(choice.spec, alphabet=alpha, device=device, precision=precision, overlap=overlap,
                                 sparse_only=sparse_only)
        embedder.default_choice = choice
        return embedder
    path = usable_path("model", spec)  # a name too long for a file: InputError naming model, not OSError
    if path.exists():
        return _load_encoder_file(path, spec, device, precision, overlap, sparse_only)
    if spec in shipped:
        return _load_encoder_file(spec, spec, device, precision, overlap, sparse_only)
    from phylocl.models.registry import list_models

    if spec in list_models():
        raise InputError(f"{spec!r} is an untrained architecture, not a model with weights; "
                         f"{_train_hint(spec)}; {listing}")
    raise InputError(f"unknown model {spec!r}: not kmer:K, not an existing encoder file or directory, and not a "
                     f"shipped model ({listing}); " + _train_hint())
