"""SequenceEncoder: token ids → embedding (+ CLS) → backbone → pooling → projection head → unit vectors.

Input batches are :func:`phylocl.data.tokens.pad_batch` dicts: ``input_ids`` ``(B, L)`` int64 right-padded with 0,
``attention_mask`` ``(B, L)`` bool, True on real tokens, at least one per row, no CLS in the ids (with
``pooling="cls"`` the encoder prepends a learned CLS vector itself).

Long sequences: a row with more than ``max_len`` residues is embedded as overlapping windows of ``max_len``
residues (stride ``max_len // 2``, last window aligned to the end, see :mod:`phylocl.models.windows`); the unit
embeddings of its windows are averaged and the mean is re-normalised. ``forward`` does this (vectorised) for
batches wider than ``max_len``; ``embed`` (:mod:`phylocl.models.inference`) does it for any list of strings with
a bounded number of windows per step.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from phylocl.arguments import is_real, positive_int, usable_path
from phylocl.atomic import atomic_path
from phylocl.data.alphabet import PAD_ID, Alphabet, get_alphabet
from phylocl.data.tokens import pad_batch
from phylocl.errors import InputError
from phylocl.models.backbone_config import KmerBagConfig, KmerProfileConfig, stored_dict
from phylocl.models.encoder_config import EncoderConfig
from phylocl.models.gmlp import GMLP
from phylocl.models.kmerbag import KmerBag
from phylocl.models.kmerprofile import KmerProfile
from phylocl.models.layers import ProjectionHead, masked_mean
from phylocl.models.model_files import ENCODER_FILE, read_model, write_model_folder
from phylocl.models.moe import MoEOptions
from phylocl.models.smlp import SMLP
from phylocl.models.transformer import Transformer
from phylocl.models.inference import PRECISIONS, embed_token_arrays
from phylocl.models.sparse_embed import embed_sparse, supports_sparse
from phylocl.models.windows import default_stride, window_batch

__all__ = ["SequenceEncoder", "ENCODER_FILE", "PRECISIONS", "check_device"]


def _moe(c: EncoderConfig) -> MoEOptions | None:
    if not c.moe_experts:
        return None
    return MoEOptions(experts=c.moe_experts, every=c.moe_every, hidden=c.moe_ffn_dim,
                      capacity_factor=c.moe_capacity_factor)


def _gmlp(c: EncoderConfig) -> nn.Module:
    return GMLP(
        dim=c.dim, depth=c.depth, ffn_dim=c.ffn_dim, seq_len=c.max_len + c.num_special, attn_dim=c.attn_dim,
        dropout=c.dropout, drop_path=c.drop_path, init_eps=c.sgu_init_eps, moe=_moe(c),
    )


def _transformer(c: EncoderConfig) -> nn.Module:
    return Transformer(
        dim=c.dim, depth=c.depth, heads=c.heads, ffn_dim=c.ffn_dim, dropout=c.dropout, drop_path=c.drop_path,
        rope_base=c.rope_base, attention=c.attention, rel_buckets=c.rel_buckets,
        max_distance=c.max_len + c.num_special, moe=_moe(c),
    )


def _kmerbag(c: EncoderConfig) -> nn.Module:
    family = KmerBagConfig.from_flat(c)
    return KmerBag(alphabet=family.alphabet, dim=family.dim, k=family.k)


def _kmerprofile(c: EncoderConfig) -> nn.Module:
    family = KmerProfileConfig.from_flat(c)
    return KmerProfile(alphabet=family.alphabet, k=family.word_length, similar_rank=family.similar_rank)


def _smlp(c: EncoderConfig) -> nn.Module:
    return SMLP(
        dim=c.dim, depth=c.depth, dense=c.smlp_dense, ffn_dim=c.ffn_dim, seq_len=c.max_len + c.num_special,
        experts=c.moe_experts, chunk=c.smoe_chunk, capacity_factor=c.moe_capacity_factor, moe_hidden=c.moe_ffn_dim,
        dropout=c.dropout, drop_path=c.drop_path, init_eps=c.sgu_init_eps,
    )


def check_device(value, name: str = "device") -> torch.device:
    """``value`` (a str such as ``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``torch.device`` or a CUDA index) as a
    ``torch.device`` that exists here; ``ValueError`` naming ``name`` for a malformed one or a CUDA device this
    machine lacks (torch's own errors are a ``RuntimeError`` listing every backend, or an ``AssertionError``),
    ``TypeError`` for another type."""
    if isinstance(value, bool) or not isinstance(value, (str, torch.device, int)):
        raise TypeError(f"{name} must be a device name such as 'cpu' or 'cuda', or a torch.device, got "
                        f"{type(value).__name__} {value!r}")
    try:
        device = torch.device(value)
    except (RuntimeError, ValueError):
        raise ValueError(f"{name} {value!r} is not a device name: use 'cpu', 'cuda' or 'cuda:N' (or 'mps' on a "
                         "Mac)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name} {str(device)!r} was asked for but no CUDA GPU is available here; use "
                             f"{name}='cpu'")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"{name} {str(device)!r}: this machine has {torch.cuda.device_count()} CUDA "
                             "device(s), numbered from 0")
    return device


_BACKBONES = {"gmlp": _gmlp, "transformer": _transformer, "smlp": _smlp, "kmerbag": _kmerbag,
              "kmerprofile": _kmerprofile}


class SequenceEncoder(nn.Module):
    """Maps sequences to L2-normalised embeddings of size ``config.embed_dim``; an
    :class:`~phylocl.models.embedder.Embedder` (with the sparse form when :attr:`sparse`).

    Example::

        enc = SequenceEncoder(config=EncoderConfig(backbone="gmlp", dim=32, depth=2, max_len=64, embed_dim=16))
        z = enc(enc.tokenize(["MKVL", "MSTAQ"]))   # (2, 16), rows of norm 1
        X = enc.embed(["MKVL", "MSTAQ"])            # numpy float32 (2, 16)
    """

    def __init__(self, *, config: EncoderConfig) -> None:
        super().__init__()
        if not isinstance(config, EncoderConfig):
            raise ValueError(f"config must be an EncoderConfig, got {type(config).__name__}")
        self.config = config
        self.alphabet: Alphabet = get_alphabet(config.alphabet)
        self.embedding = nn.Embedding(self.alphabet.vocab_size, config.dim, padding_idx=PAD_ID)
        self.cls = nn.Parameter(torch.zeros(1, 1, config.dim)) if config.pooling == "cls" else None
        self.dropout = nn.Dropout(config.dropout)
        self.backbone = _BACKBONES[config.backbone](config)
        self.head = ProjectionHead(dim=config.dim, out_dim=config.embed_dim, kind=config.head, dropout=config.dropout)
        self._init_weights()

    def _init_weights(self) -> None:
        """Linear/embedding weights ~ N(0, 0.02²), biases 0; gMLP spatial weights keep their own init."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        nn.init.trunc_normal_(self.embedding.weight, std=0.02)
        with torch.no_grad():
            self.embedding.weight[PAD_ID].zero_()
        if self.cls is not None:
            nn.init.trunc_normal_(self.cls, std=0.02)
        if hasattr(self.backbone, "reset_unigram"):  # k-mer profile: composition term starts at zero
            self.backbone.reset_unigram(self.embedding)

    # ----------------------------------------------------------------- properties
    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    @property
    def dim(self) -> int:
        """Width of the rows (:class:`~phylocl.models.embedder.Embedder`); same as :attr:`embed_dim`."""
        return self.config.embed_dim

    @property
    def sparse(self) -> bool:
        """Whether :meth:`embed_sparse` works: a k-mer profile backbone with head ``none``."""
        return supports_sparse(self)

    @property
    def max_len(self) -> int:
        """Most residues per forward window (longer sequences are windowed)."""
        return self.config.max_len

    @property
    def window_stride(self) -> int:
        return default_stride(self.config.max_len)

    def num_parameters(self, *, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    # ----------------------------------------------------------------- tokens
    def _token_array(self, index: int, seq: str) -> np.ndarray:
        if not isinstance(seq, str):
            raise InputError(f"sequence {index + 1}: expected a string, got {type(seq).__name__}")
        if not seq:
            raise InputError(f"sequence {index + 1} is empty")
        try:
            return self.alphabet.encode(seq)
        except ValueError as err:
            hint = ""
            if any(c in seq for c in "-.*"):
                hint = ("; remove alignment gaps ('-', '.') and stops ('*') first (read_dataset and Searcher do; "
                        "the encoder reads residues only)")
            raise InputError(f"sequence {index + 1}: {err}{hint}") from None

    def tokenize(self, sequences: Sequence[str]) -> dict[str, torch.Tensor]:
        """Token batch of ``sequences`` (full length, no CLS): ``{"input_ids": (N, L), "attention_mask": (N, L)}``.

        Raises :class:`~phylocl.errors.InputError` on empty sequences or letters outside the alphabet (gaps and
        stops included), ``ValueError`` for no sequences at all, ``TypeError`` for ``None`` or a dict.
        """
        sequences = _sequence_list(sequences)
        if not sequences:
            raise ValueError("sequences is empty: a token batch needs at least one sequence")
        return pad_batch([self._token_array(i, s) for i, s in enumerate(sequences)])

    # ----------------------------------------------------------------- forward
    def _encode(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Unit embeddings ``(B, E)`` of rows of at most ``max_len`` tokens."""
        if getattr(self.backbone, "takes_ids", False):  # k-mer backbones pool token ids themselves
            pooled = self.dropout(self.backbone(ids, mask, self.embedding))  # (B, D)
            return F.normalize(self.head(pooled), dim=-1)  # (B, E)
        x = self.embedding(ids)  # (B, L, D)
        if self.cls is not None:
            b = x.shape[0]
            x = torch.cat([self.cls.expand(b, -1, -1).to(x.dtype), x], dim=1)  # (B, 1 + L, D)
            mask = torch.cat([mask.new_ones(b, 1), mask], dim=1)  # (B, 1 + L)
        h = self.backbone(self.dropout(x), mask)  # (B, L', D)
        pooled = h[:, 0] if self.cls is not None else masked_mean(h, mask)  # (B, D)
        return F.normalize(self.head(pooled), dim=-1)  # (B, E)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Embed a token batch; returns ``(B, embed_dim)`` float rows of L2 norm 1.

        Batches wider than ``max_len`` are cut into windows (see the module docstring); rows no longer than
        ``max_len`` get exactly the embedding they would get alone.
        """
        if not isinstance(batch, Mapping) or not {"input_ids", "attention_mask"} <= set(batch):
            what = f"a dict with keys {sorted(map(str, batch))}" if isinstance(batch, Mapping) else \
                type(batch).__name__
            raise TypeError(f"batch must be a token batch, a dict with input_ids and attention_mask "
                            f"(enc.tokenize(sequences)), got {what}; enc.embed(sequences) embeds strings")
        device = self.embedding.weight.device
        ids = batch["input_ids"].to(device)
        mask = batch["attention_mask"].to(device=device, dtype=torch.bool)
        if ids.shape != mask.shape or ids.dim() != 2:
            raise ValueError(f"input_ids {tuple(ids.shape)} and attention_mask {tuple(mask.shape)} must be (B, L)")
        if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
            raise ValueError(f"input_ids must hold integer token ids, got {ids.dtype}")
        if ids.numel() and (ids.device.type == "cpu" or not self.training):  # no device sync per training step
            low, high = (int(v) for v in torch.aminmax(ids))  # a CUDA gather would assert on the device
            if low < 0 or high >= self.embedding.num_embeddings:
                raise ValueError(f"input_ids hold token id {low if low < 0 else high} outside this encoder's "
                                 f"vocabulary 0..{self.embedding.num_embeddings - 1} ({self.alphabet.name}); "
                                 "enc.tokenize(sequences) makes valid ids")
        if ids.shape[1] <= self.max_len:
            return self._encode(ids, mask)
        w_ids, w_mask, owner = window_batch(ids, mask, window=self.max_len, stride=self.window_stride)
        z = self._encode(w_ids, w_mask)  # (M, E)
        total = z.new_zeros(ids.shape[0], z.shape[1]).index_add_(0, owner, z)  # (B, E)
        return F.normalize(total, dim=-1)

    def embed(
        self, sequences: Sequence[str], *, batch_size: int = 64, show_progress_bar: bool = False,
        convert_to_tensor: bool = False, device: str | torch.device | None = None, precision: str = "fp32",
        overlap: float | None = None, normalize_embeddings: bool | None = None,
    ) -> np.ndarray | torch.Tensor:
        """Embeddings of any number of sequences of any length: ``(N, embed_dim)`` float32 rows of unit norm.

        Args:
            sequences: strings of the encoder's alphabet (a single string counts as one sequence).
            batch_size: windows per forward call.
            show_progress_bar: a tqdm bar of sequences on stderr.
            convert_to_tensor: return a ``torch.Tensor`` on the model's device instead of a numpy array.
            device: move the model there first; it **stays** there (as sentence-transformers' ``encode``), so
                repeated calls do not copy the weights back and forth. ``None``: where it is.
            precision: ``"fp32"``, ``"bf16"`` for bfloat16 autocast (faster on a CPU with AVX-512 BF16; window
                sums and the normalisation stay float64), or ``"int8"``: a cached copy with int8 dynamically
                quantised linear layers (CPU; :func:`~phylocl.models.inference.inference_module`). Speeds measured
                in docs/performance.md.
            overlap: fraction of a window shared by consecutive windows of a long sequence (``None``: 0.5, as in
                ``forward``; 0 embeds each residue once, see :func:`~phylocl.models.windows.overlap_stride`).
            normalize_embeddings: accepted for sentence-transformers users: rows are always unit vectors, so
                ``True`` (or ``None``) changes nothing and ``False`` is refused (``ValueError``).

        Runs in eval mode without gradients (the previous train/eval mode is restored). Long sequences are
        embedded as windows (module docstring, :mod:`phylocl.models.inference`). Rows come back in input order;
        no sequences give a ``(0, embed_dim)`` array. Lower case is read as upper case; alignment gaps (``-``,
        ``.``) and stops (``*``) are refused (:class:`~phylocl.errors.InputError` naming the sequence: remove them
        first, as :func:`phylocl.read_dataset` does). ``ValueError`` for a ``batch_size`` that is not an int >= 1,
        an ``overlap`` outside [0, 1), an unknown ``precision`` or a ``device`` that is malformed or absent here;
        ``TypeError`` for ``sequences`` that are not strings.
        """
        if normalize_embeddings is False:
            raise ValueError("phylocl encoders always return unit rows (their similarity is the cosine); "
                             "normalize_embeddings=False is not available")
        sequences = _sequence_list(sequences)
        positive_int("batch_size", batch_size)
        if overlap is not None and not is_real(overlap):
            raise ValueError(f"overlap must be a number in [0, 1) or None, got {overlap!r}")
        arrays = [self._token_array(i, s) for i, s in enumerate(sequences)]
        if device is not None:
            self.to(check_device(device))
        x = embed_token_arrays(self, arrays, batch_size=batch_size, precision=precision, overlap=overlap,
                               show_progress_bar=show_progress_bar)  # (N, E)
        return torch.from_numpy(x).to(self.embedding.weight.device) if convert_to_tensor else x

    def embed_sparse(self, sequences: Sequence[str], *, batch_size: int = 64,
                     overlap: float | None = None):
        """The rows of :meth:`embed` (fp32) as :class:`~phylocl.sparse_rows.SparseRows`, for k-mer profile encoders
        (:attr:`sparse`); see :func:`phylocl.models.sparse_embed.embed_sparse`."""
        return embed_sparse(self, sequences, batch_size=batch_size, overlap=overlap)

    def encode(self, sentences: Sequence[str], **kwargs) -> np.ndarray | torch.Tensor:
        """sentence-transformers' name for :meth:`embed` (same arguments: ``batch_size``, ``show_progress_bar``,
        ``convert_to_tensor``, ``device``, ``normalize_embeddings``...); ``(N, embed_dim)`` unit rows."""
        kwargs.pop("convert_to_numpy", None)  # numpy is the default; convert_to_tensor=True gives a tensor
        return self.embed(sentences, **kwargs)

    # ----------------------------------------------------------------- persistence
    def fingerprint(self) -> str:
        """Short stable hex digest (16 hex chars) of the config and all weights; changes when either changes."""
        h = hashlib.sha256(json.dumps(self.config.identity_dict(), sort_keys=True).encode())
        for name, t in sorted(self.state_dict().items()):
            t = t.detach().to("cpu").contiguous()
            h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        return h.hexdigest()[:16]

    def model_info(self) -> dict:
        """The ``model`` record stored with embeddings and indexes (same keys as the k-mer baseline's, plus more).

        ``{"fingerprint", "name", "dim", "alphabet", "kind": "encoder", "backbone", "max_len", "parameters"}``.
        """
        c = self.config
        return {"fingerprint": self.fingerprint(), "name": c.name, "dim": c.embed_dim, "alphabet": c.alphabet,
                "kind": "encoder", "backbone": c.backbone, "max_len": c.max_len, "parameters": self.num_parameters()}

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write a model folder: ``config.json`` (the backbone family's keys) + ``model.safetensors`` (see
        :mod:`phylocl.models.model_files`); :func:`phylocl.load_encoder` (or :meth:`from_pretrained`) reads it back.
        Returns the folder."""
        state = {k: v.detach().to("cpu").contiguous() for k, v in self.state_dict().items()}
        return write_model_folder(directory, config=stored_dict(self.config), state=state)

    @classmethod
    def from_pretrained(cls, source: str | Path, *, map_location: str | torch.device = "cpu",
                        device: str | torch.device | None = None) -> "SequenceEncoder":
        """Same as :func:`phylocl.load_encoder`: a shipped name, a model folder or an encoder file (``device``: an
        alias of ``map_location``)."""
        map_location = resolve_location(map_location, device)
        check_source(source)
        config, state, path = read_model(source)
        return cls.from_parts(config, state, path=path, map_location=map_location)

    @classmethod
    def from_parts(cls, config: dict, state: dict, *, path: str | Path | None = None,
                   map_location: str | torch.device = "cpu") -> "SequenceEncoder":
        """An encoder (eval mode, on ``map_location``) from a stored config (family or flat keys) and its weights;
        an :class:`~phylocl.errors.InputError` naming ``path`` when they do not fit together. The weights may come
        from any device (they are copied to ``map_location``); a CUDA ``map_location`` on a machine without one is
        a ``ValueError``."""
        map_location = check_device(map_location, "map_location")
        try:
            encoder = cls(config=EncoderConfig.from_dict(config))
            result = encoder.load_state_dict(state, strict=False)
        except (ValueError, TypeError, RuntimeError) as err:
            raise InputError(f"encoder file does not match its config: {_one_line(err)}", path=path) from None
        if result.missing_keys or result.unexpected_keys:
            raise InputError(f"encoder file does not match its config: {_key_summary(result)}", path=path)
        bad = next((name for name, t in encoder.state_dict().items()
                    if t.is_floating_point() and not bool(torch.isfinite(t).all())), None)
        if bad is not None:
            raise InputError(f"the weights hold NaN or infinite values ({bad}): the file is damaged or its training "
                             "diverged", path=path)
        return encoder.to(map_location).eval()

    def save(self, path: str | Path) -> Path:
        """Write config + weights to one legacy ``.pt`` file atomically (a directory gets ``encoder.pt`` inside);
        returns the file. :meth:`save_pretrained` writes the standard model folder instead.

        The file is a plain dict ``{"config", "state_dict", "phylocl_version"}`` readable with
        ``torch.load(path, weights_only=True)``; :func:`phylocl.load_encoder` rebuilds the encoder.
        """
        from phylocl import __version__

        path = Path(path)
        if path.is_dir():
            path = path / ENCODER_FILE
        payload = {
            "config": self.config.to_dict(),
            "state_dict": {k: v.detach().to("cpu") for k, v in self.state_dict().items()},
            "phylocl_version": __version__,
        }
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
        return path


def _key_summary(result, shown: int = 3) -> str:
    """``"2 missing weights (a, b), 1 unexpected (c)"``: one line however many keys differ."""
    parts = []
    for what, keys in (("missing weights", result.missing_keys), ("unexpected weights", result.unexpected_keys)):
        if keys:
            more = f", ... {len(keys) - shown} more" if len(keys) > shown else ""
            parts.append(f"{len(keys)} {what} ({', '.join(keys[:shown])}{more})")
    return "; ".join(parts)


def _one_line(err: BaseException, limit: int = 300) -> str:
    """A one-line summary of a state-dict mismatch: PyTorch lists every missing/unexpected key on its own line."""
    text = " ".join(str(err).split())
    text = text.replace("Error(s) in loading state_dict for SequenceEncoder: ", "")
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."


def _sequence_list(sequences) -> list:
    """``sequences`` as a list: one str is one sequence; ``None``, bytes, a number or a dict are a ``TypeError``."""
    if isinstance(sequences, str):
        return [sequences]
    if sequences is None or isinstance(sequences, (bytes, Mapping)) or not isinstance(sequences, Iterable):
        hint = " (pass list(d.values()), in the order you want the rows)" if isinstance(sequences, Mapping) else ""
        raise TypeError(f"sequences must be a str or a list of str, got {type(sequences).__name__}{hint}")
    return list(sequences)


def check_source(source) -> None:
    """A model ``source`` is a str or a path (``TypeError`` naming it otherwise) that a file could have
    (:func:`~phylocl.arguments.usable_path`: a name too long is an :class:`~phylocl.errors.InputError` naming
    ``source``)."""
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"source must be a shipped model name, a model folder or an encoder file (a str or a Path), "
                        f"got {type(source).__name__} {source!r}")
    usable_path("source", source)


def resolve_location(map_location, device):
    """``map_location``, or ``device`` where given (its alias; both given and different: ``ValueError``)."""
    if device is None:
        return map_location
    if map_location not in ("cpu", None) and str(map_location) != str(device):
        raise ValueError(f"map_location={map_location!r} and device={device!r} disagree: give one of them")
    return device
