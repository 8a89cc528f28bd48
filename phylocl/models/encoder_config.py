"""EncoderConfig: every hyper-parameter of a :class:`~phylocl.models.encoder.SequenceEncoder`, flat, validated at once.

This is the one record every backbone is built from and every fingerprint hashes (its keys are those of 0.1, so
fingerprints of older models stay). Models are declared and stored in the smaller config of their backbone
family (:mod:`phylocl.models.backbone_config`: stacks, k-mer profiles, k-mer bags), which names ``depth`` for
what it is there (``word_length``, ``k``) and turns into this record; ``EncoderConfig(**config.to_dict())``
rebuilds the same architecture.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from phylocl.data.alphabet import get_alphabet
from phylocl.models.patterns import profile_dim

_FFN_DIM = object()  # marker: the default is the config's ffn_dim
# options added after the first release, with their defaults (see EncoderConfig.identity_dict)
_ADDED_FIELDS: dict[str, Any] = {"attention": "rope", "rel_buckets": 32, "moe_experts": 0, "moe_every": 2,
                                 "moe_ffn_dim": _FFN_DIM, "moe_capacity_factor": 1.25, "smlp_dense": None,
                                 "smoe_chunk": 16, "word_weights": "idf", "similar_rank": 0}

__all__ = ["EncoderConfig", "BACKBONES", "POOLINGS", "HEADS", "ATTENTIONS", "flat_values", "FAMILY_DEPTH"]

BACKBONES = ("gmlp", "transformer", "smlp", "kmerbag", "kmerprofile")
ATTENTIONS = ("rope", "deberta")
POOLINGS = ("mean", "cls")
HEADS = ("linear", "mlp", "none")
WORD_WEIGHTS = ("idf", "uniform")


FAMILY_DEPTH = {"kmerprofile": "word_length", "kmerbag": "k"}  # a k-mer family's own name for the flat `depth`


def flat_values(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` in the flat form: a k-mer family's ``word_length`` / ``k`` (the form of
    :mod:`phylocl.models.backbone_config`) becomes ``depth``, and a k-mer profile's width (``dim``,
    ``embed_dim``) and head (``none``) follow from it unless given. Flat values (older files, ``--set
    model.depth=...``) pass unchanged. Raises ``ValueError`` when both ``depth`` and the family's name are given.
    """
    backbone = values.get("backbone")
    key = FAMILY_DEPTH.get(backbone)
    if key is None or key not in values:
        return dict(values)
    if "depth" in values:
        raise ValueError(f"{backbone}: give {key} (depth is its older name), not both")
    out = {k: v for k, v in values.items() if k != key}
    out["depth"] = values[key]
    if backbone == "kmerprofile":
        try:
            width = profile_dim(values.get("alphabet", "protein"), values[key], values.get("similar_rank", 0))
        except (TypeError, ValueError) as err:
            raise ValueError(f"kmerprofile {key}: {err}") from None
        out.setdefault("dim", width)
        out.setdefault("embed_dim", width)
        out.setdefault("head", "none")
    return out


def _check_int(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def _check_rate(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return float(value)


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


@dataclass(frozen=True)
class EncoderConfig:
    """Architecture of a sequence encoder.

    Attributes:
        backbone: ``"gmlp"`` (gMLP, or aMLP when ``attn_dim`` is set), ``"transformer"``, ``"smlp"`` (sparse
            all-MLP: ``smlp_dense`` gMLP blocks, then sparse blocks with spatial and feed-forward experts),
            ``"kmerbag"`` (mean learned k-mer embeddings, :mod:`phylocl.models.kmerbag`) or ``"kmerprofile"``
            (spaced k-mer profiles with learned weights, :mod:`phylocl.models.kmerprofile`); the k-mer backbones
            pool themselves (``pooling: mean``).
        dim: width of the token representations.
        depth: number of blocks; for ``kmerbag`` the longest k-mer (``KmerBagConfig.k``: orders ``1..depth``), for
            ``kmerprofile`` the letters per word (``KmerProfileConfig.word_length``).
        max_len: most residues one forward window holds (a CLS token, if any, comes on top). Longer sequences are
            embedded as overlapping windows of ``max_len`` residues, stride ``max_len // 2``.
        embed_dim: size of the output (L2-normalised) embedding.
        alphabet: ``"protein"`` or ``"dna"`` (aliases such as ``"rna"`` are resolved to the canonical name).
        ffn_dim: hidden width of the channel MLP (gMLP: before the split into ``u, v``, so it must be even);
            ``None`` resolves to ``4 * dim``.
        heads: attention heads (transformer only); must divide ``dim`` with an even head size (rotary).
        attn_dim: size of the aMLP tiny attention (gMLP only); ``None`` for plain gMLP.
        pooling: ``"mean"`` over real tokens or ``"cls"`` (a learned CLS vector is prepended).
        head: projection head, ``"linear"``, ``"mlp"`` (Linear, GELU, Linear) or ``"none"`` (identity; needs
            ``embed_dim == dim``; ``kmerprofile`` needs it, with ``dim`` = patterns x letters^depth).
        dropout: dropout rate on embeddings, block outputs and attention probabilities.
        drop_path: stochastic-depth rate of the last block (rates grow linearly from 0 at the first block).
        sgu_init_eps: gMLP spatial weights start as ``U(-eps / n, eps / n)`` (``n`` spatial size), bias 1.
        rope_base: rotary frequency base (transformer only).
        attention: ``"rope"`` (rotary) or ``"deberta"`` (disentangled, bucketed relative positions; transformer).
        rel_buckets: DeBERTa relative-position buckets per direction (even); offsets up to ``max_len`` are told apart.
        moe_experts: experts of the Switch feed-forward layers (0: none; smlp: of its tMoE and sMoE, >= 2).
        moe_every: every ``moe_every``-th block gets the Switch layer (gmlp: a sublayer after the block;
            transformer: replaces the MLP). smlp ignores it (every sparse block has both).
        moe_ffn_dim: hidden width of a feed-forward expert; ``None`` resolves to ``ffn_dim``.
        moe_capacity_factor: an expert takes at most ``ceil(factor · n / E)`` of a sequence's ``n`` routed units.
        smlp_dense: leading dense gMLP blocks of smlp; ``None`` resolves to ``depth // 2``.
        smoe_chunk: channels per routed chunk of the sMoE (must divide ``ffn_dim / 2``).
        word_weights: kmerprofile only: the word weights ``phylocl train`` starts from, ``"idf"`` (the training
            sequences' inverse document frequencies) or ``"uniform"`` (all 1, as built). A built encoder's weights
            are 1 either way; this records how training initialises them.
        similar_rank: kmerprofile only (protein or DNA): rank ``r`` of the learned similar-word block (0: none); the
            output is then ``patterns x (n^depth + r)`` wide (:mod:`phylocl.models.kmerprofile`).
        name: registry name the config came from (informational).
    """

    backbone: str
    dim: int
    depth: int
    max_len: int
    embed_dim: int
    alphabet: str = "protein"
    ffn_dim: int | None = None
    heads: int = 4
    attn_dim: int | None = None
    pooling: str = "mean"
    head: str = "mlp"
    dropout: float = 0.0
    drop_path: float = 0.0
    sgu_init_eps: float = 1e-3
    rope_base: float = 10000.0
    attention: str = "rope"
    rel_buckets: int = 32
    moe_experts: int = 0
    moe_every: int = 2
    moe_ffn_dim: int | None = None
    moe_capacity_factor: float = 1.25
    smlp_dense: int | None = None
    smoe_chunk: int = 16
    word_weights: str = "idf"
    similar_rank: int = 0
    name: str = "custom"

    def __post_init__(self) -> None:
        _check_choice("backbone", self.backbone, BACKBONES)
        _check_choice("pooling", self.pooling, POOLINGS)
        _check_choice("head", self.head, HEADS)
        for key in ("dim", "depth", "max_len", "embed_dim", "heads"):
            _check_int(key, getattr(self, key), minimum=1)
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731  (frozen dataclass)
        set_("alphabet", get_alphabet(self.alphabet).name)
        if self.ffn_dim is None:
            set_("ffn_dim", 4 * self.dim)
        _check_int("ffn_dim", self.ffn_dim, minimum=1)
        set_("dropout", _check_rate("dropout", self.dropout))
        set_("drop_path", _check_rate("drop_path", self.drop_path))
        if not isinstance(self.name, str):
            raise ValueError(f"name must be a string, got {self.name!r}")
        _check_choice("attention", self.attention, ATTENTIONS)
        _check_choice("word_weights", self.word_weights, WORD_WEIGHTS)
        if self.similar_rank and self.backbone != "kmerprofile":
            raise ValueError(f"similar_rank applies to the kmerprofile backbone only, got {self.backbone}")
        if self.word_weights != "idf" and self.backbone != "kmerprofile":
            raise ValueError(f"word_weights applies to the kmerprofile backbone only, got {self.word_weights!r} "
                             f"for {self.backbone}")
        self._check_moe(set_)
        if self.head == "none" and self.embed_dim != self.dim:
            raise ValueError(f"head 'none' needs embed_dim == dim, got {self.embed_dim} and {self.dim}")
        if self.backbone in ("kmerbag", "kmerprofile"):
            self._check_kmer()
        elif self.backbone in ("gmlp", "smlp"):
            if self.attention != "rope":
                raise ValueError("attention applies to the transformer backbone only")
            if self.ffn_dim % 2:
                raise ValueError(f"gmlp ffn_dim must be even (split into u and v), got {self.ffn_dim}")
            if self.attn_dim is not None:
                _check_int("attn_dim", self.attn_dim, minimum=1)
            eps = self.sgu_init_eps
            if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0.0 <= eps <= 1.0:
                raise ValueError(f"sgu_init_eps must be a number in [0, 1], got {eps!r}")
            set_("sgu_init_eps", float(eps))
        else:
            if self.attn_dim is not None:
                raise ValueError("attn_dim (aMLP tiny attention) applies to the gmlp backbone only")
            if self.dim % self.heads or (self.dim // self.heads) % 2:
                raise ValueError(
                    f"transformer dim ({self.dim}) must split into {self.heads} heads of even size (rotary)"
                )
            base = self.rope_base
            if isinstance(base, bool) or not isinstance(base, (int, float)) or base <= 1:
                raise ValueError(f"rope_base must be a number > 1, got {base!r}")
            set_("rope_base", float(base))
            if self.attention == "deberta":
                _check_int("rel_buckets", self.rel_buckets, minimum=2)
                if self.rel_buckets % 2:
                    raise ValueError(f"rel_buckets must be even, got {self.rel_buckets}")

    def _check_kmer(self) -> None:
        if self.pooling != "mean" or self.attn_dim is not None or self.attention != "rope" or self.moe_experts:
            raise ValueError(f"the {self.backbone} backbone pools k-mers itself: it needs pooling 'mean' and no "
                             "attn_dim, attention or experts")
        if self.backbone == "kmerprofile":
            _check_int("similar_rank", self.similar_rank, minimum=0)
            want = profile_dim(self.alphabet, self.depth, self.similar_rank)
            if self.head != "none" or self.dim != want:
                raise ValueError(f"kmerprofile with {self.alphabet} words of {self.depth} letters needs head 'none' "
                                 f"and dim = embed_dim = {want}, got head {self.head!r}, dim {self.dim}")

    def _check_moe(self, set_) -> None:
        for key, minimum in (("moe_experts", 0), ("moe_every", 1), ("smoe_chunk", 1)):
            _check_int(key, getattr(self, key), minimum=minimum)
        if self.moe_experts == 1:
            raise ValueError("moe_experts must be 0 (no experts) or >= 2, got 1")
        if self.moe_ffn_dim is None:
            set_("moe_ffn_dim", self.ffn_dim)
        _check_int("moe_ffn_dim", self.moe_ffn_dim, minimum=1)
        cf = self.moe_capacity_factor
        if isinstance(cf, bool) or not isinstance(cf, (int, float)) or not cf > 0:
            raise ValueError(f"moe_capacity_factor must be a number > 0, got {cf!r}")
        set_("moe_capacity_factor", float(cf))
        if self.backbone != "smlp":
            if self.smlp_dense is not None:
                raise ValueError("smlp_dense applies to the smlp backbone only")
            return
        if self.moe_experts < 2:
            raise ValueError(f"smlp needs moe_experts >= 2, got {self.moe_experts}")
        if self.attn_dim is not None:
            raise ValueError("attn_dim (aMLP tiny attention) applies to the gmlp backbone only")
        if self.smlp_dense is None:
            set_("smlp_dense", self.depth // 2)
        _check_int("smlp_dense", self.smlp_dense, minimum=0)
        if self.smlp_dense >= self.depth:
            raise ValueError(f"smlp_dense must be < depth ({self.depth}), got {self.smlp_dense}")
        if (self.ffn_dim // 2) % self.smoe_chunk:
            raise ValueError(f"smoe_chunk ({self.smoe_chunk}) must divide ffn_dim / 2 ({self.ffn_dim // 2})")

    @classmethod
    def field_names(cls) -> list[str]:
        """Names of all config keys, sorted."""
        return sorted(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "EncoderConfig":
        """Build from a plain dict, flat or in a backbone family's form (:func:`flat_values`); unknown keys raise
        ``ValueError`` naming the valid ones."""
        values = flat_values(values)
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise ValueError(f"unknown encoder config key(s) {unknown}; valid keys: {cls.field_names()}")
        required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING]
        missing = [k for k in required if k not in values]
        if missing:
            raise ValueError(f"missing encoder config key(s) {missing}")
        return cls(**values)

    def replace(self, **overrides: Any) -> "EncoderConfig":
        """A copy with ``overrides`` applied (validated; unknown keys raise ``ValueError``)."""
        return self.from_dict({**self.to_dict(), **overrides})

    def to_dict(self) -> dict[str, Any]:
        """Plain ``{key: int | float | str | None}`` dict (JSON/YAML/``torch.load(weights_only=True)`` safe)."""
        return dataclasses.asdict(self)

    def identity_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` without the fields added after 0.1 while they hold their defaults.

        This is what model fingerprints hash, so a model saved before an option existed keeps its fingerprint
        (and the embedding files and indexes built with it stay usable) when the option is added.
        """
        out = self.to_dict()
        for key, default in _ADDED_FIELDS.items():
            if out.get(key) == (out["ffn_dim"] if default is _FFN_DIM else default):
                out.pop(key, None)
        return out

    @property
    def num_special(self) -> int:
        """Tokens the encoder adds in front of the residues (1 with CLS pooling, else 0)."""
        return 1 if self.pooling == "cls" else 0

    def __getitem__(self, key: str) -> Any:
        """Dict-style read access, ``config["max_len"]``, for code that treats the config as a mapping."""
        if key not in self.field_names():
            raise KeyError(key)
        return getattr(self, key)
