"""One config class per backbone family, holding only the keys that family reads.

- :class:`StackConfig`: attention and MLP stacks (``gmlp``/aMLP, ``transformer``, ``smlp``); ``depth`` = blocks.
- :class:`KmerProfileConfig`: spaced k-mer profiles (``kmerprofile``); ``word_length`` = letters per word.
- :class:`KmerBagConfig`: bags of learned k-mer embeddings (``kmerbag``); ``k`` = longest k-mer.

These are the forms a model is declared in (registry YAML files) and stored in (a model folder's
``config.json``). Each turns into the flat :class:`~phylocl.models.encoder_config.EncoderConfig`
(:meth:`encoder_config`), which validates every value and is what model fingerprints hash: the flat record
keeps ``depth`` for all three, so a model saved before the family configs existed keeps its fingerprint, its
embedding files and its indexes. :func:`family_config` goes back; :func:`stored_dict` is what ``config.json``
holds; ``EncoderConfig.from_dict`` reads either form (:func:`~phylocl.models.encoder_config.flat_values`, re-exported
here).

Example::

    KmerProfileConfig(alphabet="protein", word_length=3).encoder_config().dim    # 24000 = 3 patterns x 20^3
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from phylocl.models.encoder_config import FAMILY_DEPTH, EncoderConfig, flat_values
from phylocl.models.patterns import profile_dim

__all__ = ["StackConfig", "KmerProfileConfig", "KmerBagConfig", "FAMILIES", "family_config", "stored_dict",
           "flat_values", "with_family_names"]


@dataclass(frozen=True, kw_only=True)
class StackConfig:
    """A ``gmlp``, ``transformer`` or ``smlp`` encoder: token embeddings, ``depth`` blocks, pooling, a head.
    Fields as in :class:`~phylocl.models.encoder_config.EncoderConfig` (which documents each)."""

    backbones: ClassVar[tuple[str, ...]] = ("gmlp", "transformer", "smlp")
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
    name: str = "custom"

    def encoder_config(self) -> EncoderConfig:
        return EncoderConfig(**dataclasses.asdict(self))

    @classmethod
    def from_flat(cls, c: EncoderConfig) -> "StackConfig":
        return cls(**{f.name: getattr(c, f.name) for f in dataclasses.fields(cls)})


@dataclass(frozen=True, kw_only=True)
class KmerProfileConfig:
    """A ``kmerprofile`` encoder (:mod:`phylocl.models.kmerprofile`): its width follows from the alphabet and
    ``word_length`` (patterns x ``n^word_length``), it has no head and pools words itself.

    Args: ``alphabet``; ``word_length`` letters per word; ``max_len`` residues per window; ``word_weights``
    (``"idf"`` or ``"uniform"``: where ``phylocl train`` starts the word weights); ``similar_rank`` columns of the
    learned similar-word block per pattern (0: none); ``dropout``; ``name``.
    """

    backbones: ClassVar[tuple[str, ...]] = ("kmerprofile",)
    backbone: str = "kmerprofile"
    alphabet: str = "protein"
    word_length: int = 3
    max_len: int = 4096
    word_weights: str = "idf"
    similar_rank: int = 0
    dropout: float = 0.0
    name: str = "custom"

    def encoder_config(self) -> EncoderConfig:
        dim = profile_dim(self.alphabet, self.word_length, self.similar_rank)
        return EncoderConfig(backbone=self.backbone, alphabet=self.alphabet, dim=dim, depth=self.word_length,
                             max_len=self.max_len, embed_dim=dim, head="none", pooling="mean",
                             word_weights=self.word_weights, similar_rank=self.similar_rank, dropout=self.dropout,
                             name=self.name)

    @classmethod
    def from_flat(cls, c: EncoderConfig) -> "KmerProfileConfig":
        return cls(alphabet=c.alphabet, word_length=c.depth, max_len=c.max_len, word_weights=c.word_weights,
                   similar_rank=c.similar_rank, dropout=c.dropout, name=c.name)


@dataclass(frozen=True, kw_only=True)
class KmerBagConfig:
    """A ``kmerbag`` encoder (:mod:`phylocl.models.kmerbag`): mean embeddings of k-mers of orders ``1..k``.

    Args: ``alphabet``; ``dim`` embedding width; ``k`` longest k-mer; ``max_len`` residues per window;
    ``embed_dim`` output width; ``head`` (``"linear"``, ``"mlp"``, ``"none"``); ``dropout``; ``name``.
    """

    backbones: ClassVar[tuple[str, ...]] = ("kmerbag",)
    backbone: str = "kmerbag"
    alphabet: str = "protein"
    dim: int
    k: int
    max_len: int
    embed_dim: int
    head: str = "mlp"
    dropout: float = 0.0
    name: str = "custom"

    def encoder_config(self) -> EncoderConfig:
        return EncoderConfig(backbone=self.backbone, alphabet=self.alphabet, dim=self.dim, depth=self.k,
                             max_len=self.max_len, embed_dim=self.embed_dim, head=self.head, pooling="mean",
                             dropout=self.dropout, name=self.name)

    @classmethod
    def from_flat(cls, c: EncoderConfig) -> "KmerBagConfig":
        return cls(alphabet=c.alphabet, dim=c.dim, k=c.depth, max_len=c.max_len, embed_dim=c.embed_dim,
                   head=c.head, dropout=c.dropout, name=c.name)


FAMILIES = {b: fam for fam in (StackConfig, KmerProfileConfig, KmerBagConfig) for b in fam.backbones}


def family_config(config: EncoderConfig) -> StackConfig | KmerProfileConfig | KmerBagConfig:
    """The family config of ``config``'s backbone (only that family's keys)."""
    return FAMILIES[config.backbone].from_flat(config)


def stored_dict(config: EncoderConfig) -> dict[str, Any]:
    """What a model folder's ``config.json`` holds: the family's keys when they rebuild ``config`` exactly, else
    (a config with values its backbone ignores, e.g. a ``heads`` set on a k-mer model) every flat key, so that
    the fingerprint never changes on a save and load."""
    family = family_config(config)
    if family.encoder_config() == config:
        return {"backbone": config.backbone, **{k: v for k, v in dataclasses.asdict(family).items()
                                                 if k != "backbone"}}
    return config.to_dict()


def with_family_names(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` of the config ``base``, with an older ``depth`` renamed to the family's own key when ``base``
    is in the family form (so ``--set model.depth=4`` still sets a ``kmerprofile``'s ``word_length``)."""
    key = FAMILY_DEPTH.get(overrides.get("backbone", base.get("backbone")))
    if key is not None and key in base and "depth" in overrides and key not in overrides:
        overrides = dict(overrides)
        overrides[key] = overrides.pop("depth")
    return overrides
