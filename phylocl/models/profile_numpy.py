"""A k-mer profile encoder's sparse rows in NumPy, read from its model folder: the query side of a search without torch.

:func:`phylocl.models.sparse_embed.embed_sparse` computes the rows of a
:class:`~phylocl.models.kmerprofile.KmerProfile` encoder (head ``none``) as
:class:`~phylocl.sparse_rows.SparseRows` with torch; importing torch alone takes 1.3-1.5 s, more than embedding a
few hundred queries. :class:`NumpyProfileEncoder` reads the same ``config.json`` and ``model.safetensors``
(``safetensors.numpy``) and computes the same rows with the same arithmetic (float64 sums, float32 output: equal to
the torch path to float32 rounding, tested to 1e-5), for ``phylocl search --index`` of a sparse index. Its
:meth:`~NumpyProfileEncoder.model_info` carries the same fingerprint as
:meth:`~phylocl.models.encoder.SequenceEncoder.fingerprint`, so the index's model check is unchanged.

Per window ``w`` (at most ``max_len`` residues; longer sequences are cut as in :mod:`phylocl.models.windows`),
pattern ``p`` and word ``j``: ``v = g_p sqrt(count) w_pj / |block_p|``, the composition coefficients
``c = g_c n / |n E|`` (``n`` the window's token counts, ``E`` the token embedding ``(r, D)``), both divided by the
window's norm ``|v + c E|``; a sequence is the sum of its windows, divided by its norm again
(see :mod:`phylocl.models.sparse_embed`).

With a similar-word block (``similar_rank = s > 0``; :class:`~phylocl.models.kmerprofile.KmerProfile`), each
window and pattern also gets ``g_s / sqrt(P) * t / |t|``, ``t = sum_j sqrt(count) w_pj E_j`` ``(s,)`` (``E`` the
word vectors ``(n^k, s)``), in the last ``P s`` columns; as in the torch sparse path these values are extra
low-rank coefficients on unit basis rows, so the rows, their norms and the stored basis are the torch path's.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from phylocl.data.alphabet import FIRST_LETTER_ID, PAD_ID, get_alphabet
from phylocl.errors import InputError
from phylocl.models.backbone_config import flat_values
from phylocl.models.encoder_config import EncoderConfig
from phylocl.models.patterns import profile_dim, seed_patterns  # noqa: F401 (re-exported)
from phylocl.models.windows import default_stride, overlap_stride, window_starts
from phylocl.sparse_ops import csr_dense, csr_from_sorted
from phylocl.sparse_rows import SparseRows, matmul_rows

__all__ = ["NumpyProfileEncoder", "seed_patterns", "profile_dim", "is_profile_folder"]

_EPS = 1e-12  # F.normalize's floor on norms, as in the torch paths
_TORCH_DTYPES = {"float32": "torch.float32", "float64": "torch.float64", "float16": "torch.float16",
                 "int64": "torch.int64", "int32": "torch.int32"}  # how a state tensor's dtype enters the fingerprint


def _read_config(folder: Path) -> dict | None:
    from phylocl.safejson import read_json_object

    try:
        return read_json_object(folder / "config.json")  # bounded depth and size; a mapping
    except InputError:
        return None  # not a profile folder here; load_encoder names the problem


def is_profile_folder(folder: str | Path) -> bool:
    """Whether ``folder`` is a model folder (config.json + model.safetensors) of a k-mer profile encoder with
    head ``none``, the encoders whose rows :class:`NumpyProfileEncoder` computes."""
    folder = Path(folder)
    config = _read_config(folder) if folder.is_dir() else None
    if config is None or config.get("model_type") != "phylocl-encoder" or config.get("backbone") != "kmerprofile":
        return False
    try:  # the family form (word_length; phylocl.models.backbone_config) leaves out what follows from it
        flat = flat_values({k: v for k, v in config.items() if k not in ("model_type", "phylocl_version")})
    except (ValueError, TypeError):
        return False
    return (folder / "model.safetensors").is_file() and flat.get("head") == "none"


def _norm(sq: np.ndarray) -> np.ndarray:
    return np.maximum(np.sqrt(np.maximum(sq, 0)), _EPS)


def _sum_rows(row: np.ndarray, val: np.ndarray, cols: np.ndarray, n: int) -> np.ndarray:
    """``out[i, j] = sum of val[e] * cols[j, e] over the entries e with row[e] == i``: ``(n, r)`` float64 from
    ``cols (r, nnz)``; one bincount per column, summed in entry order (as torch's ``index_add_``)."""
    return np.stack([np.bincount(row, weights=val * c, minlength=n) for c in cols], axis=1)


class NumpyProfileEncoder:
    """The sparse rows of the k-mer profile encoder stored in model folder ``folder``, computed with NumPy.

    Args:
        folder: a model folder of a ``kmerprofile`` encoder with head ``none`` (:func:`is_profile_folder`).
        overlap: window overlap for sequences longer than ``max_len`` (``None``: half a window, the default).

    Attributes mirror what :class:`~phylocl.workflows.model_spec.ResolvedModel` reads: ``alphabet`` (name),
    ``embed_dim``, ``sketch_dim`` (``None``: the rows are sparse), ``max_len``. Raises :class:`InputError` on an unreadable folder.
    """

    sketch_dim = None

    def __init__(self, *, folder: str | Path, overlap: float | None = None) -> None:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        folder = Path(folder)
        if not is_profile_folder(folder):
            raise InputError("not a model folder of a k-mer profile encoder with head 'none'", path=folder)
        raw = {k: v for k, v in _read_config(folder).items() if k not in ("model_type", "phylocl_version")}
        try:
            self.config = EncoderConfig.from_dict(raw)  # family form (word_length) or flat
            self.state = load_file(str(folder / "model.safetensors"))
            self.weights = self.state["backbone.weights"].astype(np.float64)  # (P, n^k)
            self.gains = self.state["backbone.gains"].astype(np.float64)  # (P,)
            self.comp_gain = float(self.state["backbone.composition_gain"])
            self.tokens = self.state["embedding.weight"].astype(np.float64)  # (v, D) token embedding
            self.similar_rank = int(self.config.similar_rank or 0)
            if self.similar_rank:
                self.word_vectors = self.state["backbone.word_vectors"].astype(np.float64)  # (n^k, s)
                self.similar_gain = float(self.state["backbone.similar_gain"])
        except (ValueError, TypeError, KeyError, SafetensorError, OSError) as err:
            raise InputError(f"not a readable k-mer profile model ({str(err).splitlines()[0][:160]})",
                             path=folder) from None
        alpha = get_alphabet(self.config.alphabet)
        self.alphabet, self._alpha = alpha.name, alpha
        self.n, self.k = len(alpha.letters) - 1, int(self.config.depth)
        self.patterns = seed_patterns(self.k)
        self.embed_dim, self.max_len = int(self.config.embed_dim), int(self.config.max_len)
        self.stride = default_stride(self.max_len) if overlap is None else overlap_stride(self.max_len, overlap)
        size, extra = self.n**self.k, len(self.patterns) * self.similar_rank
        if (self.weights.shape != (len(self.patterns), size) or self.tokens.shape[1] != self.embed_dim
                or (extra and self.word_vectors.shape != (size, self.similar_rank))):
            raise InputError(f"weights {self.weights.shape} / embedding {self.tokens.shape} do not fit the config",
                             path=folder)
        # the basis (r, D): the token rows, then one unit row per similar-block column (the last P s columns)
        self.vocab, r, d = len(self.tokens), len(self.tokens) + extra, self.embed_dim
        self.basis = np.zeros((r, d), np.float32)  # float32: the basis every SparseRows of embed_sparse carries
        self.basis[:self.vocab] = self.tokens
        self.basis[self.vocab + np.arange(extra), d - extra + np.arange(extra)] = 1
        self.basis.flags.writeable = False  # shared by every output
        self.gram = self._gram(extra)  # (r, r)
        self.tokens_t = np.ascontiguousarray(self.tokens.T)  # (D, v)
        code = np.full(alpha.vocab_size, -1, np.int64)  # token id -> letter index (X and specials: -1)
        letters = [c for c in alpha.letters if c != alpha.unknown]
        for c in letters:
            code[FIRST_LETTER_ID + alpha.letters.index(c)] = letters.index(c)
        self.code = code
        self._info: dict | None = None

    def _gram(self, extra: int) -> np.ndarray:
        """``B B^T`` ``(r, r)`` float64 of the basis (the float64 token rows, then ``extra`` unit rows in the last
        columns), by blocks: the token rows' products, each token row's entry in a unit row's column, the identity
        (what :func:`~phylocl.sparse_rows.basis_gram` gives for the dense basis; no ``(r, D)`` float64 basis built)."""
        v, d = self.vocab, self.embed_dim
        gram = np.zeros((v + extra, v + extra))
        gram[:v, :v] = self.tokens @ self.tokens.T
        gram[:v, v:] = self.tokens[:, d - extra:]
        gram[v:, :v] = gram[:v, v:].T
        gram[v:, v:] = np.eye(extra)
        return gram

    sparse = True  # the Embedder protocol's sparse form (phylocl.models.embedder)

    @property
    def name(self) -> str:
        return str(self.config.name)

    @property
    def dim(self) -> int:
        return self.embed_dim

    def fingerprint(self) -> str:
        """The torch encoder's fingerprint: its config's identity and every stored tensor, hashed the same way."""
        h = hashlib.sha256(json.dumps(self.config.identity_dict(), sort_keys=True).encode())
        for name, t in sorted(self.state.items()):
            h.update(f"{name}|{_TORCH_DTYPES[t.dtype.name]}|{tuple(t.shape)}|".encode())
            h.update(np.ascontiguousarray(t).reshape(-1).view(np.uint8).tobytes())
        return h.hexdigest()[:16]

    def model_info(self) -> dict:
        """What :meth:`SequenceEncoder.model_info` gives for the same folder (every stored tensor is a parameter)."""
        if self._info is None:
            c = self.config
            self._info = {"fingerprint": self.fingerprint(), "name": c.name, "dim": c.embed_dim,
                          "alphabet": c.alphabet, "kind": "encoder", "backbone": c.backbone, "max_len": c.max_len,
                          "parameters": int(sum(t.size for t in self.state.values()))}
        return dict(self._info)

    def _tokens(self, sequences: Sequence[str]) -> list[np.ndarray]:
        out = []
        for i, seq in enumerate(sequences):
            if not seq:
                raise InputError(f"sequence {i + 1} is empty")
            try:
                out.append(self._alpha.encode(seq))
            except ValueError as err:
                raise InputError(f"sequence {i + 1}: {err}") from None
        return out

    def _window_rows(self, chunks: list[np.ndarray]):
        """Unit rows of ``W`` windows (token arrays): entries ``win, col, val`` (float64) and ``coeffs (W, r)``."""
        n_win, size, n_pat, v = len(chunks), self.n**self.k, len(self.patterns), self.vocab
        gap = max(len(p) for p in self.patterns)
        lens = np.array([len(c) for c in chunks], np.int64)  # (W,)
        ids = np.concatenate(chunks)  # (T,)
        win_of = np.repeat(np.arange(n_win), lens)  # (T,) window of each token
        # every window followed by `gap` invalid codes, so that no word spans two windows
        pos = np.arange(len(ids)) + win_of * gap  # (T,)
        codes = np.full(len(ids) + n_win * gap, -1, np.int64)
        codes[pos] = self.code[ids]
        owner = np.repeat(np.arange(n_win), lens + gap)  # (len(codes),)
        keys = []
        for p, pattern in enumerate(self.patterns):
            offsets = [i for i, c in enumerate(pattern) if c == "1"]
            m = len(codes) - len(pattern) + 1
            parts = np.stack([codes[o:o + m] for o in offsets])  # (k, m)
            ok = (parts >= 0).all(0)
            word = ((self.n ** np.arange(self.k - 1, -1, -1))[:, None] * parts).sum(0)  # (m,)
            keys.append((owner[:m][ok] * n_pat + p) * size + word[ok])
        key, count = np.unique(np.concatenate(keys), return_counts=True)  # sorted by window, pattern, word
        win, pat, word = key // (n_pat * size), key // size % n_pat, key % size
        val = np.sqrt(count) * self.weights[pat, word]  # (nnz,)
        block = win * n_pat + pat
        raw = val
        val = val * self.gains[pat] / _norm(np.bincount(block, weights=val * val, minlength=n_win * n_pat))[block]
        tokens = np.bincount(win_of * v + ids, minlength=n_win * v).reshape(n_win, v).astype(np.float64)  # (W, v)
        tokens[:, PAD_ID] = 0
        gram = self.gram[:v, :v]
        coeffs = self.comp_gain * tokens / _norm((matmul_rows(tokens, gram) * tokens).sum(1))[:, None]  # (W, v)
        if self.similar_rank:
            coeffs = np.concatenate([coeffs, self._similar_block(block, word, raw, n_win)], 1)  # (W, v + P s)
        col = pat * size + word
        norm = self._row_norms(win, col, val, coeffs)  # (W,)
        return win, col, val / norm[win], coeffs / norm[:, None]

    def _similar_block(self, block: np.ndarray, word: np.ndarray, raw: np.ndarray, n_win: int) -> np.ndarray:
        """``(W, P s)``: per window and pattern ``g_s / sqrt(P) * t / |t|``, ``t = sum sqrt(count) w E_word``, from
        the entries ``block`` (window * P + pattern), ``word`` and ``raw = sqrt(count) w`` (``(nnz,)`` each)."""
        n_pat, s = len(self.patterns), self.similar_rank
        t = csr_dense(*csr_from_sorted(block, word, raw, n_win * n_pat), self.word_vectors)  # (W P, s)
        t = t / _norm((t * t).sum(1))[:, None] * (self.similar_gain / n_pat**0.5)
        return t.reshape(n_win, n_pat * s)

    def _row_norms(self, row, col, val, coeffs) -> np.ndarray:
        """``|v + c E|`` of rows given by entries ``row, col, val`` (sorted by row) and ``coeffs (k, r)`` (floored at
        1e-12). The unit rows of a similar-word block lie in columns the sparse part never uses: their ``E v`` is 0."""
        indptr = np.concatenate([[0], np.cumsum(np.bincount(row, minlength=len(coeffs)))])  # rows sorted
        e_v = np.zeros_like(coeffs)  # (k, r) = E v
        e_v[:, :self.vocab] = csr_dense(indptr, col, val, self.tokens_t)  # (k, v)
        sq = np.bincount(row, weights=val * val, minlength=len(coeffs))
        return _norm(sq + 2 * (coeffs * e_v).sum(1) + (matmul_rows(coeffs, self.gram) * coeffs).sum(1))

    def embed_sparse(self, sequences: Sequence[str], *, batch_size: int = 1024) -> SparseRows:
        """``N`` sequences -> ``N`` unit rows as :class:`~phylocl.sparse_rows.SparseRows` (rank ``r``), in order.

        ``batch_size`` windows are counted at once. Raises :class:`InputError` on empty sequences or bad letters.
        """
        if isinstance(sequences, str):
            raise TypeError("embed_sparse takes a list of sequences, not a single string")
        arrays = self._tokens(sequences)
        windows = [(i, s) for i, a in enumerate(arrays) for s in window_starts(len(a), self.max_len, self.stride)]
        basis, r = self.basis, len(self.gram)
        rows, cols, vals, coeffs = [], [], [], np.zeros((len(arrays), r))
        for lo in range(0, len(windows), max(batch_size, 1)):
            part = windows[lo:lo + batch_size]
            owners = np.array([i for i, _ in part], np.int64)
            win, col, val, c = self._window_rows([arrays[i][s:s + self.max_len] for i, s in part])
            rows.append(owners[win])
            cols.append(col)
            vals.append(val)
            lo_seq = owners[0]  # the batch's sequences are consecutive: add into their rows only (not all N)
            coeffs[lo_seq:owners[-1] + 1] += _sum_rows(owners - lo_seq, np.ones(len(owners)), c.T,
                                                       int(owners[-1] - lo_seq) + 1)
        if not rows:
            return SparseRows(indptr=np.zeros(1, np.int64), indices=np.zeros(0, np.int32),
                              values=np.zeros(0, np.float32), coeffs=np.zeros((0, r), np.float32), basis=basis,
                              dim=self.embed_dim)
        row, col, val = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
        key, inverse = np.unique(row * self.embed_dim + col, return_inverse=True)  # the windows of a sequence summed
        val = np.bincount(inverse, weights=val, minlength=len(key))
        row, col = key // self.embed_dim, key % self.embed_dim
        z = self._row_norms(row, col, val, coeffs)  # (N,)
        keep = val != 0  # a word whose weight or pattern gain is 0 adds nothing
        indptr = np.concatenate([[0], np.cumsum(np.bincount(row[keep], minlength=len(arrays)))]).astype(np.int64)
        return SparseRows(indptr=indptr, indices=col[keep].astype(np.int32),
                          values=(val / z[row])[keep].astype(np.float32),
                          coeffs=(coeffs / z[:, None]).astype(np.float32), basis=basis, dim=self.embed_dim)

    def embed(self, sequences: Sequence[str], *, batch_size: int = 1024) -> np.ndarray:
        """The rows as a dense ``(N, embed_dim)`` float32 array (small sets; a search keeps them sparse)."""
        return self.embed_sparse(list(sequences), batch_size=batch_size).to_dense()
