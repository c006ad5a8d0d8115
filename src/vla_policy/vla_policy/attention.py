# SPDX-License-Identifier: Apache-2.0
"""Multi-head attention variants behind one interface, selectable by name.

Every module here is a full multi-head attention block (input projections, attention, output
projection) with the same call signature::

    out, weights = attn(q, k, v, key_padding_mask=None, q_pos=None, k_pos=None, need_weights=False)

* ``q`` (B, Nq, D), ``k`` and ``v`` (B, Nk, D); ``out`` (B, Nq, D).
* ``key_padding_mask`` (B, Nk) bool, **True marks a padded key that must be ignored** (the
  ``torch.nn.MultiheadAttention`` convention). A masked key gets exactly zero weight and its
  content cannot change the output. A row with every key masked yields zeros.
* ``q_pos`` (B, Nq, 3) / ``k_pos`` (B, Nk, 3): optional 3D positions in metres, used by the
  variants that have a relative position term (DSSA).
* ``weights`` (B, Nq, Nk): head-averaged attention weights when ``need_weights`` is True (and the
  variant can attribute its output to keys), else None.

Variants (``make_attention(name, dim, num_heads, **kw)``):

``softmax``
    Standard scaled dot-product attention through ``torch.nn.functional.scaled_dot_product_attention``
    (fused kernel, no (B, H, N, N) tensor on the fast path).
``relu``
    Plain ReLU attention baseline, ``A = relu(QK^T / sqrt(d)) / n_valid`` (Wortsman et al. 2023,
    "Replacing softmax with ReLU in vision transformers"); materialises the score map.
``dssa``
    Deep Sparse Self-Attention, SR paper (001) Sec. 3.3, Fig. 4. The equations were lost in the
    text extraction; the forms used here are:

    * scores ``S = Q K^T / sqrt(d_h) + B`` with ``B`` a learnable relative position bias indexed
      by the bucketed 3D distance ``||p_i - p_j||`` (log-spaced buckets, one table entry per head
      and bucket, as in T5/Swin relative bias, but over metric 3D offsets);
    * dense convolutional branch (DCSA): ``A_d = softmax(Conv_3x3(QK^T / sqrt(d_h)) + B)`` - a
      depthwise 3x3 convolution (one kernel per head) over the (Nq, Nk) score map, initialised to
      the identity so training starts from plain softmax attention, computed exactly but without
      an N x N convolution by factorising it over Q and K (``DSSAttention.dense_scores``); the
      position bias is added after the convolution; ``O_d = A_d V``;
    * sparse branch (SSA, ref. [32] Zhang et al. 2021, "Sparse Attention with Linear Units"):
      ``A_s = relu(S)^2`` (no softmax: exactly zero wherever ``S <= 0``), ``O_s = RMSNorm(A_s V)``
      (ReLA normalises the unnormalised output with an RMSNorm with learnable gain, per head);
    * adaptive fusion: ``O = w_d O_d + w_s O_s`` with ``(w_d, w_s) = softmax(alpha)``, alpha a
      learnable 2-vector, so the weights are positive and sum to one.

    The paper does not say over which neighbourhood the convolution runs; a score map is indexed
    by token order, so its 3 x 3 neighbours are the tokens next in that order. Two forms
    (``neighbourhood``):

    * ``"serial"`` (default; issue 11): the tokens are first put in Z-order (Morton order) of their
      3D positions on a 2^10-cell cubic grid over the cloud (the serialisation of Point
      Transformer V3, Wu et al. 2024), so the neighbours of a token in that order are its
      neighbours in space. With ``pi`` that order, the formulas above run on
      ``S_pi[a, b] = S[pi(a), pi(b)]``: ``Conv`` is the 3 x 3 convolution of the serialised score
      map (exact, zero padded at the sequence ends), and both softmax and ReLU^2 are restricted to
      serialisation windows of ``window`` tokens: ``A_d[a, b] ∝ exp(Conv(S_pi)[a, b] + B[a, b])``
      and ``A_s[a, b] = relu(S_pi[a, b] + B[a, b])^2`` for ``b`` in the window of ``a``, 0 elsewhere
      (padded keys excluded). The first half of the heads uses windows ``[m w, (m + 1) w)``, the
      second half windows shifted by ``w / 2`` (Swin's shifted windows, on the serialised order),
      so no token is always at a window edge. The dense branch thus mixes the scores of spatial
      neighbours (query and key side), the sparse branch keeps its exact zeros, and the cost is
      O(N w D) instead of O(N^2 D). Self-attention runs through ``_SerialWindowDSSA``, one fused
      function with a hand-written backward that keeps only its input; cross-attention and
      ``need_weights`` run the same formulas on full maps masked to the windows (a query's window
      is the one holding its insertion point in the keys' Z-order).
    * ``"rank"``: the original form: global attention, the convolution over the tokens' given
      order (in the policy, the 1-Align relevance rank, so the neighbours of a token in the map
      are generally not its neighbours in space). It needs the full (B, H, Nq, Nk) score map, so
      its memory grows as N^2. Checkpoints saved before the option existed use it.
``mgfa``
    Memory-gated filtering attention (000, Ren & Shi 2025; only the summary is available, so the
    design is ours; formulas and complexity in ``MemoryGatedFilteringAttention``). A rank-(1 + M)
    gate/pooling projection runs on every key; the ``k_keep`` keys with the highest gate get full
    multi-head attention among themselves plus ``M`` memory tokens (learned tokens plus a
    gate-biased pooled summary of all keys); every other query attends to the memory tokens only,
    through a folded rank-(H M) projection. Per-token cost O(N D (1 + 2M + H M)), dense cost
    independent of N; no (B, H, N, N) or (B, H, N, Dh) tensor is built.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

ATTENTION_TYPES = ("softmax", "relu", "dssa", "mgfa")


class AttentionBase(nn.Module):
    """Shared projections and head handling for all attention variants.

    Args:
        dim: model width D (must be divisible by ``num_heads``).
        num_heads: number of heads H.
        dropout: dropout on the attention output projection.
    """

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"attention dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.dim = dim
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, N, Dh)

    def _merge(self, x: torch.Tensor) -> torch.Tensor:
        b, _, n, _ = x.shape
        return x.transpose(1, 2).reshape(b, n, self.dim)  # (B, N, D)

    @staticmethod
    def _check(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kpm: torch.Tensor | None) -> None:
        if q.dim() != 3 or k.dim() != 3 or v.dim() != 3:
            shapes = f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
            raise ValueError(f"q, k, v must be (B, N, D); got {shapes}")
        if k.shape[:2] != v.shape[:2]:
            raise ValueError(f"k and v must share (B, Nk); got {tuple(k.shape)} and {tuple(v.shape)}")
        if kpm is not None and (kpm.shape != k.shape[:2] or kpm.dtype != torch.bool):
            raise ValueError(
                f"key_padding_mask must be bool (B, Nk) = {tuple(k.shape[:2])}; "
                f"got {kpm.dtype} {tuple(kpm.shape)}"
            )

    def _project(self, q, k, v):
        return self._split(self.q_proj(q)), self._split(self.k_proj(k)), self._split(self.v_proj(v))

    def _finish(self, o: torch.Tensor, empty_rows: torch.Tensor | None) -> torch.Tensor:
        out = self.dropout(self.out_proj(self._merge(o)))  # (B, Nq, D)
        if empty_rows is not None:
            out = out.masked_fill(empty_rows[:, None, None], 0.0)
        return out

    @staticmethod
    def _empty(kpm: torch.Tensor | None) -> torch.Tensor | None:
        """(B,) True where every key is masked (the output of such rows is zeroed)."""
        if kpm is None:
            return None
        empty = kpm.all(dim=1)
        return empty if bool(empty.any()) else None


class SoftmaxAttention(AttentionBase):
    """Softmax multi-head attention via ``F.scaled_dot_product_attention`` (the MHSA baseline)."""

    def forward(self, q, k, v, key_padding_mask=None, q_pos=None, k_pos=None, need_weights=False):
        """Attend; see the module docstring for shapes and mask convention."""
        self._check(q, k, v, key_padding_mask)
        qh, kh, vh = self._project(q, k, v)  # (B, H, N, Dh)
        empty = self._empty(key_padding_mask)
        kpm = key_padding_mask
        if empty is not None:  # keep softmax finite for fully masked rows; they are zeroed after
            kpm = kpm & ~empty[:, None]
        if need_weights:
            s = qh @ kh.transpose(-2, -1) / math.sqrt(self.head_dim)  # (B, H, Nq, Nk)
            if kpm is not None:
                s = s.masked_fill(kpm[:, None, None, :], float("-inf"))
            a = s.softmax(-1)
            o = a @ vh
            w = a.mean(1)
            if empty is not None:
                w = w.masked_fill(empty[:, None, None], 0.0)
            return self._finish(o, empty), w
        mask = None if kpm is None else ~kpm[:, None, None, :]  # True = take part
        o = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=mask)
        return self._finish(o, empty), None


class ReluAttention(AttentionBase):
    """Plain ReLU attention baseline: ``A = relu(QK^T/sqrt(d)) / n_valid_keys``."""

    def forward(self, q, k, v, key_padding_mask=None, q_pos=None, k_pos=None, need_weights=False):
        """Attend; see the module docstring for shapes and mask convention."""
        self._check(q, k, v, key_padding_mask)
        qh, kh, vh = self._project(q, k, v)
        s = qh @ kh.transpose(-2, -1) / math.sqrt(self.head_dim)  # (B, H, Nq, Nk)
        a = F.relu(s)
        if key_padding_mask is not None:
            a = a.masked_fill(key_padding_mask[:, None, None, :], 0.0)
            n_valid = (~key_padding_mask).sum(1).clamp(min=1).to(a.dtype)  # (B,)
        else:
            n_valid = torch.full((q.shape[0],), float(k.shape[1]), dtype=a.dtype, device=a.device)
        a = a / n_valid[:, None, None, None]
        o = a @ vh
        return self._finish(o, self._empty(key_padding_mask)), (a.mean(1) if need_weights else None)


class RelativePositionBias(nn.Module):
    """Learnable per-head bias indexed by the bucketed 3D distance between query and key positions.

    Buckets: bucket 0 holds distances below ``min_dist_m``; buckets 1..n-1 are log-spaced up to
    ``max_dist_m`` (larger distances share the last bucket). The table starts at zero.
    """

    def __init__(
        self, num_heads: int, num_buckets: int = 16, min_dist_m: float = 0.005, max_dist_m: float = 0.5
    ) -> None:
        super().__init__()
        self.num_buckets = num_buckets
        edges = torch.logspace(math.log10(min_dist_m), math.log10(max_dist_m), num_buckets - 1)
        self.register_buffer("edges", edges, persistent=False)
        self.table = nn.Parameter(torch.zeros(num_buckets, num_heads))

    def forward(self, q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor:
        """(B, Nq, 3), (B, Nk, 3) metres -> bias (B, H, Nq, Nk)."""
        d = torch.cdist(q_pos.float(), k_pos.float())  # (B, Nq, Nk)
        idx = torch.bucketize(d, self.edges)  # (B, Nq, Nk) in [0, num_buckets - 1]
        return self.table[idx].permute(0, 3, 1, 2)  # (B, H, Nq, Nk)


class RMSNorm(nn.Module):
    """RMSNorm over the last dimension with a learnable gain (Zhang & Sennrich 2019)."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` by its root mean square."""
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


DSSA_NEIGHBOURHOODS = ("serial", "rank")
ZORDER_BITS = 10  # grid cells per axis = 2**10 over the cloud's bounding cube
_INVALID_CODE = 1 << (3 * ZORDER_BITS)  # sorts padded tokens after every real one


def _spread_bits(x: torch.Tensor) -> torch.Tensor:
    """Interleave two zero bits after each of the low 10 bits of ``x`` (int64), for Morton codes."""
    x = x & 0x3FF
    x = (x | (x << 16)) & 0x030000FF
    x = (x | (x << 8)) & 0x0300F00F
    x = (x | (x << 4)) & 0x030C30C3
    return (x | (x << 2)) & 0x09249249


def zorder_codes(pos: torch.Tensor, valid: torch.Tensor | None, ref: torch.Tensor | None = None,
                 ref_valid: torch.Tensor | None = None) -> torch.Tensor:
    """Z-order (Morton) codes (B, N) int64 of 3D positions on a cubic grid over the valid points.

    ``pos`` (B, N, 3) metres; ``valid`` (B, N) bool (None: all). The grid spans the bounding cube
    of ``ref`` (default ``pos``) over its valid points, ``2**ZORDER_BITS`` cells per axis (about
    0.5 mm for a 0.5 m scene); cells are cubes (one scale for the three axes). Invalid points get
    ``_INVALID_CODE``, larger than any real code, so a stable sort puts them last.
    """
    ref = pos if ref is None else ref
    ref_valid = valid if ref is pos else ref_valid
    rv = torch.ones(ref.shape[:2], dtype=torch.bool, device=ref.device) if ref_valid is None else ref_valid
    big = torch.finfo(ref.dtype).max
    lo = ref.masked_fill(~rv[..., None], big).amin(1, keepdim=True)  # (B, 1, 3)
    hi = ref.masked_fill(~rv[..., None], -big).amax(1, keepdim=True)
    lo = torch.where(rv.any(1)[:, None, None], lo, torch.zeros_like(lo))
    ext = (hi - lo).amax(-1, keepdim=True).clamp(min=1e-6)  # (B, 1, 1) one scale: cubic cells
    cells = (1 << ZORDER_BITS) - 1
    g = ((pos - lo) / ext * cells).round().clamp(0, cells).long()  # (B, N, 3)
    code = _spread_bits(g[..., 0]) | (_spread_bits(g[..., 1]) << 1) | (_spread_bits(g[..., 2]) << 2)
    if valid is not None:
        code = code.masked_fill(~valid, _INVALID_CODE)
    return code


def _window_groups(num_heads: int, n: int, window: int) -> list[tuple[int, int, int]]:
    """(first head, end head, offset) per head group of the serial DSSA.

    The sequence (N tokens in Z-order) is cut into windows of ``window`` tokens; the second half
    of the heads uses windows shifted by ``window // 2`` (Swin's shifted windows, on the
    serialised order), so a token near a window edge still sees its neighbours on both sides.
    With one head, or when everything fits one window, there is a single unshifted group.
    """
    if num_heads == 1 or n <= window:
        return [(0, num_heads, 0)]
    return [(0, num_heads // 2, 0), (num_heads // 2, num_heads, window // 2)]


def _vmask(t: torch.Tensor, vf: torch.Tensor | None) -> torch.Tensor:
    """``t * vf`` (zero the padded tokens), or ``t`` itself when there is no padding (``vf`` None)."""
    return t if vf is None else t * vf


class _SerialWindowDSSA(torch.autograd.Function):
    """Serial DSSA self-attention block, fused: input (B, N, D) -> output (B, N, D).

    The whole block in one function: input projection (``[q | k | v] = x W_in^T + b_in``), the
    window attention (formulas in ``DSSAttention``, ``neighbourhood="serial"``) and the output
    projection, one sample, head group and chunk of windows at a time. It keeps for the backward
    only the input (which exists anyway) and the windows' distance-bucket indices (uint8,
    (N + w) w bytes per sample and group), and recomputes one sample's projections and one chunk's
    window maps at a time in the backward, so nothing of size (B, H, N, N) or (B, H, N, w)
    outlives a step of the loop, and no (B, N, 3D) projection, head output or output-projection
    input is kept: the token-sized tensors of a training step are the output and the input
    gradient. Chunks hold at most ``CHUNK_ELEMENTS`` map entries, so the loop's temporaries stay
    small and are reused by the allocator. The backward is written out by hand (checked against
    plain autograd on the same formulas in the tests).
    """

    CHUNK_ELEMENTS = 1 << 17  # map entries (Hg x windows x w x w) per chunk: 512 KiB in fp32

    @staticmethod
    def _layout(rows, val, h0, h1, off, window, dh, kk):
        """Window layout of one (sample, head group) from its Z-ordered rows (N, 3D) -> dict."""
        n, d = rows.shape[0], rows.shape[1] // 3
        hg = h1 - h0
        c0, c1 = h0 * dh, h1 * dh
        vf = None if bool(val.all()) else val.to(rows.dtype)[None, :, None]  # (1, N, 1); None: no padding
        length = -(-(n + off) // window) * window  # layout length L: whole windows
        back = length - n - off
        p = kk // 2
        # (Hg, L + 2p, Dh): conv halo + window padding; q and k zero at padded tokens
        qpad = F.pad(_vmask(rows[:, c0:c1].view(n, hg, dh).transpose(0, 1), vf), (0, 0, p + off, p + back))
        kpad = F.pad(_vmask(rows[:, d + c0:d + c1].view(n, hg, dh).transpose(0, 1), vf),
                     (0, 0, p + off, p + back))
        vpad = F.pad(rows[:, 2 * d + c0:2 * d + c1].view(n, hg, dh).transpose(0, 1), (0, 0, off, back))
        return dict(n=n, hg=hg, c0=c0, c1=c1, off=off, back=back, length=length, p=p, nw=length // window,
                    vf=vf, qpad=qpad, kpad=kpad, vpad=vpad, kval=F.pad(val, (off, back)), window=window,
                    step=max(1, _SerialWindowDSSA.CHUNK_ELEMENTS // (hg * window * window)))

    @staticmethod
    def _chunk(lay, m0, m1, conv_w, conv_b, tab_t, bidx, h0, h1, scale, gain, eps, fusion=None):
        """Windows ``m0 .. m1 - 1`` of one (sample, head group): inputs, maps and branch outputs.

        With ``fusion`` (forward only) returns just the fused output ``o`` (Hg, nc, w, Dh).
        """
        hg, window, p = lay["hg"], lay["window"], lay["p"]
        kk, dh = conv_w.shape[-1], lay["qpad"].shape[-1]
        t0, t1 = m0 * window, m1 * window
        nc, lc = m1 - m0, t1 - t0
        qpad, kpad = lay["qpad"], lay["kpad"]
        # the score convolution as k products (see dense_scores): conv(S)[t, u] =
        # sum_i q[t + i - p] . kmix_i[u], kmix_i[u] = sum_j w[i, j] k[u + j - p]; q_sh[i] are views
        q_sh = [qpad[:, t0 + i:t1 + i].reshape(hg, nc, window, dh) for i in range(kk)]
        w = conv_w[h0:h1, :, :, None, None]  # (Hg, k, k, 1, 1)
        kmix = kpad.new_empty(kk, hg, lc, dh)
        for i in range(kk):
            torch.mul(kpad[:, t0:t1], w[:, i, 0], out=kmix[i])
            for j in range(1, kk):
                kmix[i].addcmul_(kpad[:, t0 + j:t1 + j], w[:, i, j])
        kmix = kmix.view(kk, hg, nc, window, dh)
        qc = qpad[:, p + t0:p + t1].reshape(hg, nc, window, dh)
        kc = kpad[:, p + t0:p + t1].reshape(hg, nc, window, dh)
        vw = lay["vpad"][:, t0:t1].reshape(hg, nc, window, dh)
        kv = lay["kval"][t0:t1].reshape(1, nc, 1, window)  # valid keys
        bidx = bidx[m0:m1]
        s = qc @ kc.transpose(-2, -1) * scale  # (Hg, nc, w, w) plain scores
        c = q_sh[0] @ kmix[0].transpose(-2, -1)
        for i in range(1, kk):
            c += q_sh[i] @ kmix[i].transpose(-2, -1)
        c = c.mul_(scale).add_(conv_b[h0:h1, None, None, None])  # conv(scores)
        pb = tab_t[h0:h1].index_select(1, bidx.reshape(-1).long()).view(hg, nc, window, window)  # bias B
        full = bool(kv.all())  # no padded key in these windows: skip the masking
        zd = c.add_(pb) if full else c.add_(pb).masked_fill_(~kv, -1e30)
        a_d = zd.softmax(-1)  # dense branch
        r = s.add_(pb).relu_() if full else s.add_(pb).relu_().mul_(kv)  # sparse branch, masked keys 0
        a_s = r.square_() if fusion is not None else r * r
        o_d = a_d @ vw  # (Hg, nc, w, Dh)
        u = a_s @ vw
        rs = torch.rsqrt(u.pow(2).mean(-1, keepdim=True) + eps)
        if fusion is not None:  # o = f_d O_d + f_s RMSNorm(u)
            return torch.addcmul(o_d.mul_(fusion[0]), u.mul_(rs), gain * fusion[1])
        un = u * rs
        return dict(t0=t0, t1=t1, lc=lc, nc=nc, bidx=bidx, q_sh=q_sh, kmix=kmix, qc=qc, kc=kc, vw=vw,
                    a_d=a_d, r=r, a_s=a_s, o_d=o_d, un=un, rs=rs, o_s=un * gain)

    @staticmethod
    def _chunks(lay):
        return [(m0, min(lay["nw"], m0 + lay["step"])) for m0 in range(0, lay["nw"], lay["step"])]

    @staticmethod
    def _chunk_backward(lay, m, go, conv_w, h0, h1, fusion, gain, scale, acc, dqpad, dkpad, dvpad):
        """Backward of one chunk: adds into dqpad / dkpad / dvpad and the parameter grads ``acc``."""
        dw, dcb, dtab, dgain, dfus = acc
        hg, window, p = lay["hg"], lay["window"], lay["p"]
        kk, dh = conv_w.shape[-1], lay["qpad"].shape[-1]
        t0, t1, lc = m["t0"], m["t1"], m["lc"]
        go = go[:, t0:t1].reshape(hg, -1, window, dh)  # (Hg, nc, w, Dh)
        dfus[0] += (go * m["o_d"]).sum()
        dfus[1] += (go * m["o_s"]).sum()
        g_d, g_s = fusion[0] * go, fusion[1] * go
        dgain += (g_s * m["un"]).sum((0, 1, 2))
        dun = g_s * gain
        du = m["rs"] * (dun - m["un"] * (dun * m["un"]).mean(-1, keepdim=True))  # RMSNorm backward
        vw, a_d = m["vw"], m["a_d"]
        dvpad[:, t0:t1] = (a_d.transpose(-2, -1) @ g_d + m["a_s"].transpose(-2, -1) @ du).reshape(hg, lc, dh)
        da_d = g_d @ vw.transpose(-2, -1)
        dz_d = (da_d - (da_d * a_d).sum(-1, keepdim=True)).mul_(a_d)  # softmax backward (Hg, nc, w, w)
        dz_s = (du @ vw.transpose(-2, -1)).mul_(m["r"]).mul_(2.0)  # ReLU^2 backward
        dtab[h0:h1].index_add_(1, m["bidx"].reshape(-1).long(), (dz_d + dz_s).reshape(hg, -1))
        dcb[h0:h1] += dz_d.sum((1, 2, 3))
        dz_d.mul_(scale)
        dz_s.mul_(scale)
        nc = m["nc"]
        dqpad[:, p + t0:p + t1].view(hg, nc, window, dh).add_(dz_s @ m["kc"])
        dkpad[:, p + t0:p + t1].view(hg, nc, window, dh).add_(dz_s.transpose(-2, -1) @ m["qc"])
        # kunf[h, (t, d), j] = k[h, t + j - p, d];
        # dw[h, i, j] = sum_(t, d) dkmix_i[h, t, d] kunf[h, (t, d), j]
        kunf = lay["kpad"][:, t0:t1 + 2 * p].unfold(1, kk, 1).reshape(hg, lc * dh, kk)  # (Hg, Lc Dh, k)
        wij = conv_w[h0:h1, :, :, None, None]
        dz_dt = dz_d.transpose(-2, -1)
        for i in range(kk):
            dqpad[:, t0 + i:t1 + i].view(hg, nc, window, dh).add_(dz_d @ m["kmix"][i])
            dkm = (dz_dt @ m["q_sh"][i]).view(hg, lc, dh)  # gradient of kmix_i
            dw[h0:h1, i] += (dkm.view(hg, 1, lc * dh) @ kunf).squeeze(1)
            for j in range(kk):
                dkpad[:, t0 + j:t1 + j].addcmul_(dkm, wij[:, i, j])

    @staticmethod
    def forward(ctx, x, w_in, b_in, w_out, b_out, pos, order, valid, conv_w, conv_b, table, gain, fusion,
                edges, window, eps):
        b_, n, d = x.shape
        h = conv_w.shape[0]
        dh = d // h
        kk = conv_w.shape[-1]
        scale = dh ** -0.5
        tab_t = table.t().contiguous()  # (H, buckets)
        out = x.new_empty(b_, n, d)  # every row is written below
        buckets = []
        with torch.no_grad():
            for b in range(b_):
                idx = order[b]  # (N,) original index of each Z-ordered position
                xs = x[b].index_select(0, idx)  # (N, D)
                rows = torch.addmm(b_in, xs, w_in.t())  # (N, 3D) [q | k | v] in Z-order
                val = valid[b].index_select(0, idx)
                ps = pos[b].index_select(0, idx)
                o = x.new_empty(n, d)
                for h0, h1, off in _window_groups(h, n, window):
                    lay = _SerialWindowDSSA._layout(rows, val, h0, h1, off, window, dh, kk)
                    pw = F.pad(ps, (0, 0, off, lay["back"])).reshape(-1, window, 3)
                    bidx = torch.bucketize(torch.cdist(pw, pw), edges).to(torch.uint8)  # (nw, w, w)
                    buckets.append(bidx)
                    og = x.new_empty(lay["hg"], lay["length"], dh)
                    for m0, m1 in _SerialWindowDSSA._chunks(lay):
                        oc = _SerialWindowDSSA._chunk(lay, m0, m1, conv_w, conv_b, tab_t, bidx, h0, h1, scale,
                                                      gain, eps, fusion)
                        og[:, m0 * window:m1 * window] = oc.flatten(1, 2)
                    og = _vmask(og[:, off:off + n], lay["vf"])  # padded queries -> 0
                    o[:, lay["c0"]:lay["c1"]] = og.transpose(0, 1).reshape(n, -1)
                out[b].index_copy_(0, idx, torch.addmm(b_out, o, w_out.t()))
        ctx.save_for_backward(x, w_in, b_in, w_out, order, valid, conv_w, conv_b, table, gain, fusion,
                              *buckets)
        ctx.window, ctx.eps = window, eps
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, g_out):
        x, w_in, b_in, w_out, order, valid, conv_w, conv_b, table, gain, fusion, *buckets = ctx.saved_tensors
        window, eps = ctx.window, ctx.eps
        b_, n, d = x.shape
        h = conv_w.shape[0]
        dh = d // h
        scale = dh ** -0.5
        kk = conv_w.shape[-1]
        tab_t = table.t().contiguous()
        dx = torch.empty_like(x)  # every row is written below
        dw_in, db_in = torch.zeros_like(w_in), torch.zeros_like(b_in)
        dw_out, db_out = torch.zeros_like(w_out), torch.zeros(d, dtype=x.dtype, device=x.device)
        acc = (torch.zeros_like(conv_w), torch.zeros_like(conv_b), torch.zeros_like(tab_t),
               torch.zeros_like(gain), torch.zeros_like(fusion))
        it = iter(buckets)
        for b in range(b_):
            idx = order[b]
            xs = x[b].index_select(0, idx)  # (N, D)
            rows = torch.addmm(b_in, xs, w_in.t())  # (N, 3D), recomputed rather than kept
            val = valid[b].index_select(0, idx)
            gob = g_out[b].index_select(0, idx)  # (N, D) output gradient in Z-order
            go = gob @ w_out  # (N, D) gradient of the merged head output
            drows = x.new_empty(n, 3 * d)
            o = x.new_empty(n, d)
            for h0, h1, off in _window_groups(h, n, window):
                lay = _SerialWindowDSSA._layout(rows, val, h0, h1, off, window, dh, kk)
                bidx = next(it)
                hg, c0, c1, vf, p = lay["hg"], lay["c0"], lay["c1"], lay["vf"], lay["p"]
                gog = _vmask(go[:, c0:c1].view(n, hg, dh).transpose(0, 1), vf)
                gog = F.pad(gog, (0, 0, off, lay["back"]))  # (Hg, L, Dh)
                dqpad, dkpad = torch.zeros_like(lay["qpad"]), torch.zeros_like(lay["kpad"])
                dvpad = torch.empty_like(lay["vpad"])
                og = x.new_empty(hg, lay["length"], dh)
                for m0, m1 in _SerialWindowDSSA._chunks(lay):
                    m = _SerialWindowDSSA._chunk(lay, m0, m1, conv_w, conv_b, tab_t, bidx, h0, h1, scale,
                                                 gain, eps)
                    og[:, m["t0"]:m["t1"]] = (fusion[0] * m["o_d"] + fusion[1] * m["o_s"]).flatten(1, 2)
                    _SerialWindowDSSA._chunk_backward(lay, m, gog, conv_w, h0, h1, fusion, gain, scale, acc,
                                                      dqpad, dkpad, dvpad)
                o[:, c0:c1] = _vmask(og[:, off:off + n], vf).transpose(0, 1).reshape(n, -1)
                sl = slice(p + off, p + off + n)
                drows[:, c0:c1] = _vmask(dqpad[:, sl], vf).transpose(0, 1).reshape(n, -1)
                drows[:, d + c0:d + c1] = _vmask(dkpad[:, sl], vf).transpose(0, 1).reshape(n, -1)
                drows[:, 2 * d + c0:2 * d + c1] = dvpad[:, off:off + n].transpose(0, 1).reshape(n, -1)
            dw_out.addmm_(gob.t(), o)
            db_out += gob.sum(0)
            dw_in.addmm_(drows.t(), xs)
            db_in += drows.sum(0)
            dx[b].index_copy_(0, idx, drows @ w_in)
        dw, dcb, dtab, dgain, dfus = acc
        return (dx, dw_in, db_in, dw_out, db_out, None, None, None, dw, dcb, dtab.t(), dgain, dfus,
                None, None, None)


class DSSAttention(AttentionBase):
    """Deep Sparse Self-Attention (SR paper Sec. 3.3): dense conv-softmax branch + ReLU^2 branch.

    See the module docstring for the formulas of both neighbourhoods. Extra args:
        num_buckets: relative-position buckets of the bias ``B``.
        conv_kernel: kernel size of the convolution over the score map (odd).
        sparse_init: initial fusion logit of the sparse branch relative to the dense one.
        neighbourhood: ``"serial"`` (default): tokens in Z-order of their 3D positions, the score
            convolution runs over that order and both branches attend within serialisation windows
            (``_SerialWindowDSSA``); ``"rank"``: the original form, convolution over the tokens'
            given order (relevance rank in the policy) and global attention; checkpoints trained
            before the field existed load with it. Both have the same parameters.
        window: tokens per serialisation window (``serial`` only).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        dropout: float = 0.0,
        num_buckets: int = 16,
        conv_kernel: int = 3,
        sparse_init: float = 0.0,
        neighbourhood: str = "serial",
        window: int = 64,
    ) -> None:
        super().__init__(dim, num_heads, dropout)
        if conv_kernel % 2 != 1:
            raise ValueError(f"DSSA conv_kernel must be odd, got {conv_kernel}")
        if neighbourhood not in DSSA_NEIGHBOURHOODS:
            raise ValueError(f"DSSA neighbourhood {neighbourhood!r}; choose one of {DSSA_NEIGHBOURHOODS}")
        if window < 2:
            raise ValueError(f"DSSA window must be >= 2 tokens, got {window}")
        self.neighbourhood = neighbourhood
        self.window = int(window)
        self.fused = True  # serial self-attention: fused window kernel (False: plain autograd reference)
        self.rel_bias = RelativePositionBias(num_heads, num_buckets)
        # depthwise kernel (one per head), applied as k*k shifted multiply-adds: on CPU this is ~30x
        # faster (forward + backward) than nn.Conv2d on a (B, H, N, N) map; same result.
        self.conv_kernel = conv_kernel
        weight = torch.zeros(num_heads, conv_kernel, conv_kernel)
        weight[:, conv_kernel // 2, conv_kernel // 2] = 1.0  # identity: starts as plain softmax attention
        self.conv_weight = nn.Parameter(weight)
        self.conv_bias = nn.Parameter(torch.zeros(num_heads))
        self.sparse_norm = RMSNorm(self.head_dim)
        self.fusion_logits = nn.Parameter(torch.tensor([0.0, float(sparse_init)]))
        self._last_sparse: torch.Tensor | None = None  # for inspection in tests

    @property
    def fusion_weights(self) -> torch.Tensor:
        """(2,) softmax-normalised (dense, sparse) branch weights."""
        return self.fusion_logits.softmax(0)

    def score_conv(self, s: torch.Tensor) -> torch.Tensor:
        """Reference: depthwise k x k convolution (zero padding) of a score map (B, H, Nq, Nk)."""
        return F.conv2d(s, self.conv_weight[:, None], self.conv_bias, padding=self.conv_kernel // 2,
                        groups=self.num_heads)

    def scores(self, qh, kh, q_pos, k_pos) -> torch.Tensor:
        """Scores S = QK^T/sqrt(d_h) + B, (B, H, Nq, Nk) (the sparse branch's input)."""
        s = qh @ kh.transpose(-2, -1) / math.sqrt(self.head_dim)
        if q_pos is not None and k_pos is not None:
            s = s + self.rel_bias(q_pos, k_pos)
        return s

    def dense_scores(self, qh: torch.Tensor, kh: torch.Tensor) -> torch.Tensor:
        """``Conv(Q K^T / sqrt(d_h))`` (B, H, Nq, Nk) without convolving an N x N map.

        The convolution of a product map factorises over the two axes:
        ``Conv(QK^T)[q, k] = sum_i Q[q+i-p] . (sum_j w[i, j] K[k+j-p])``, so it costs ``k`` matmuls
        (shifted Q against kernel-mixed shifted K) instead of k*k passes over the score map.
        """
        kk, p = self.conv_kernel, self.conv_kernel // 2
        nq, nk = qh.shape[2], kh.shape[2]
        qp = F.pad(qh, (0, 0, p, p))  # (B, H, Nq + 2p, Dh)
        kp = F.pad(kh, (0, 0, p, p))
        w = self.conv_weight  # (H, k, k)
        out = None
        for i in range(kk):
            # (B, H, Nk, Dh): kernel row i mixes the shifted keys
            k_mix = sum(w[None, :, i, j, None, None] * kp[:, :, j:j + nk] for j in range(kk))
            term = qp[:, :, i:i + nq] @ k_mix.transpose(-2, -1)
            out = term if out is None else out + term
        return out / math.sqrt(self.head_dim) + self.conv_bias[None, :, None, None]

    def forward(self, q, k, v, key_padding_mask=None, q_pos=None, k_pos=None, need_weights=False):
        """Attend; see the module docstring for shapes and mask convention.

        In self-attention (``q is k``) the key padding mask also marks padded query rows, which
        are zeroed before the convolution so they cannot reach their neighbours' scores (and, with
        ``neighbourhood="serial"``, get a zero output).
        """
        if self.neighbourhood == "rank":
            return self._forward_rank(q, k, v, key_padding_mask, q_pos, k_pos, need_weights)
        self._check(q, k, v, key_padding_mask)
        if q_pos is None or k_pos is None:
            raise ValueError("DSSA with neighbourhood='serial' needs the token positions q_pos / k_pos "
                             "(B, N, 3) in metres: its windows follow the 3D Z-order of the tokens")
        if q_pos.shape != (*q.shape[:2], 3) or k_pos.shape != (*k.shape[:2], 3):
            raise ValueError(
                f"q_pos / k_pos must be (B, N, 3); got {tuple(q_pos.shape)}, {tuple(k_pos.shape)}")
        if self.fused and q is k and k is v and not need_weights:
            return self._forward_serial_fused(q, key_padding_mask, q_pos), None
        return self._forward_serial_reference(q, k, v, key_padding_mask, q_pos, k_pos, need_weights)

    def _forward_serial_fused(self, x, kpm, pos):
        """Self-attention through ``_SerialWindowDSSA`` (the fast, low-memory path)."""
        valid = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device) if kpm is None else ~kpm
        empty = self._empty(kpm)
        with torch.no_grad():
            order = zorder_codes(pos, valid).sort(dim=1, stable=True).indices  # (B, N)
        w_in = torch.cat([self.q_proj.weight, self.k_proj.weight, self.v_proj.weight])  # (3D, D)
        b_in = torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias])
        out = _SerialWindowDSSA.apply(
            x, w_in, b_in, self.out_proj.weight, self.out_proj.bias, pos.to(x.dtype), order, valid,
            self.conv_weight, self.conv_bias, self.rel_bias.table, self.sparse_norm.weight,
            self.fusion_weights,
            self.rel_bias.edges.to(x.dtype), self.window, self.sparse_norm.eps,
        )  # (B, N, D): projections, window attention and output projection, original token order
        out = self.dropout(out)
        if empty is not None:
            out = out.masked_fill(empty[:, None, None], 0.0)
        return out

    def _forward_serial_reference(self, q, k, v, kpm, q_pos, k_pos, need_weights):
        """Serial DSSA with plain autograd over full (B, H, Nq, Nk) maps restricted to the windows.

        Used for cross-attention and ``need_weights`` (and, with ``fused = False``, as the
        reference the fused kernel is tested against). Query ``i`` lies in the key window that
        holds its insertion point in the keys' Z-order (in self-attention: its own position).
        """
        b, nq, _ = q.shape
        nk = k.shape[1]
        qh, kh, vh = self._project(q, k, v)  # (B, H, N, Dh)
        self_attn = q is k
        empty = self._empty(kpm)
        kval = torch.ones(b, nk, dtype=torch.bool, device=k.device) if kpm is None else ~kpm
        if empty is not None:  # keep every row finite; such rows are zeroed at the end
            kval = kval | empty[:, None]
        kf = kval.to(kh.dtype)[:, None, :, None]
        kh = kh * kf
        with torch.no_grad():
            kcode = zorder_codes(k_pos, kval)
            kcode_s, korder = kcode.sort(dim=1, stable=True)  # (B, Nk)
            if self_attn:
                qorder = korder
                qrank = torch.arange(nq, device=q.device).expand(b, nq)  # sorted query i sits at key rank i
            else:
                qcode = zorder_codes(q_pos, None, ref=k_pos, ref_valid=kval)
                qcode_s, qorder = qcode.sort(dim=1, stable=True)
                n_valid = kval.sum(1, keepdim=True)
                qrank = torch.minimum(torch.searchsorted(kcode_s, qcode_s), n_valid - 1)
        if self_attn:
            qh = qh * kf
        gq = qorder[:, None, :, None]
        qh = qh.gather(2, gq.expand_as(qh))  # (B, H, Nq, Dh) in query Z-order
        kh = kh.gather(2, korder[:, None, :, None].expand_as(kh))
        vh = vh.gather(2, korder[:, None, :, None].expand_as(vh))
        qps = q_pos.gather(1, qorder[..., None].expand(b, nq, 3))
        kps = k_pos.gather(1, korder[..., None].expand(b, nk, 3))
        kvs = kval.gather(1, korder)  # (B, Nk)
        member = torch.zeros(b, self.num_heads, nq, nk, dtype=torch.bool, device=q.device)
        krank = torch.arange(nk, device=q.device)
        for h0, h1, off in _window_groups(self.num_heads, nk, self.window):
            same = ((qrank[:, :, None] + off) // self.window) == ((krank + off) // self.window)  # (B, Nq, Nk)
            member[:, h0:h1] = same[:, None]
        member &= kvs[:, None, None, :]
        bias = self.rel_bias(qps, kps)  # (B, H, Nq, Nk)
        sd = self.dense_scores(qh, kh) + bias
        a_d = sd.masked_fill(~member, -1e30).softmax(-1)  # finite: a padded row has no member
        s = qh @ kh.transpose(-2, -1) / math.sqrt(self.head_dim) + bias
        a_s = F.relu(s).square() * member
        kinv = korder.argsort(1)
        qinv = qorder.argsort(1)
        ls = a_s.detach().gather(2, qinv[:, None, :, None].expand_as(a_s))  # back to the given order
        self._last_sparse = ls.gather(3, kinv[:, None, None, :].expand_as(a_s))
        w = self.fusion_weights
        o = w[0] * (a_d @ vh) + w[1] * self.sparse_norm(a_s @ vh)  # (B, H, Nq, Dh), query Z-order
        if self_attn:  # padded query rows -> 0, as in the fused kernel
            o = o * kvs.to(o.dtype)[:, None, :, None]
        o = o.gather(2, qinv[:, None, :, None].expand_as(o))
        weights = None
        if need_weights:
            wm = (w[0] * a_d + w[1] * a_s / a_s.sum(-1, keepdim=True).clamp(min=1e-9)).mean(1)  # (B, Nq, Nk)
            wm = wm.gather(1, qinv[..., None].expand(b, nq, nk))
            wm = wm.gather(2, kinv[:, None, :].expand(b, nq, nk))
            if empty is not None:
                wm = wm.masked_fill(empty[:, None, None], 0.0)
            weights = wm
        return self._finish(o, empty), weights

    def _forward_rank(self, q, k, v, key_padding_mask=None, q_pos=None, k_pos=None, need_weights=False):
        """The original DSSA (``neighbourhood="rank"``): global, conv over the given token order."""
        self._check(q, k, v, key_padding_mask)
        qh, kh, vh = self._project(q, k, v)
        bias = self.rel_bias(q_pos, k_pos) if q_pos is not None and k_pos is not None else None
        kpm = key_padding_mask
        if kpm is not None:  # padded keys (and padded query rows in self-attention) carry nothing
            kh = kh.masked_fill(kpm[:, None, :, None], 0.0)
            if q is k:
                qh = qh.masked_fill(kpm[:, None, :, None], 0.0)
        kpm4 = None if kpm is None else kpm[:, None, None, :]
        empty = self._empty(kpm)
        # dense convolutional branch: softmax(Conv(QK^T/sqrt(d)) + B)
        sd = self.dense_scores(qh, kh)
        if bias is not None:
            sd = sd + bias
        if kpm4 is not None:
            m = kpm4 if empty is None else kpm4 & ~empty[:, None, None, None]
            sd = sd.masked_fill(m, float("-inf"))
        a_d = sd.softmax(-1)
        o_d = a_d @ vh  # (B, H, Nq, Dh)
        # sparse ReLU^2 branch on S = QK^T/sqrt(d) + B (exactly zero where S <= 0)
        s = qh @ kh.transpose(-2, -1) / math.sqrt(self.head_dim)
        if bias is not None:
            s = s + bias
        a_s = F.relu(s).square()
        if kpm4 is not None:
            a_s = a_s.masked_fill(kpm4, 0.0)
        self._last_sparse = a_s.detach()
        o_s = self.sparse_norm(a_s @ vh)
        w = self.fusion_weights
        o = w[0] * o_d + w[1] * o_s
        weights = None
        if need_weights:
            weights = (w[0] * a_d + w[1] * a_s / a_s.sum(-1, keepdim=True).clamp(min=1e-9)).mean(1)
            if empty is not None:
                weights = weights.masked_fill(empty[:, None, None], 0.0)
        return self._finish(o, empty), weights


class _GradSink:
    """One shared (B, N, D) gradient buffer for the MGFA reads of a self-attention input ``x``.

    Plain autograd gives every read of ``x`` (gate projection, pooled sum, gather, memory read) its
    own (B, N, D) gradient and then sums them out of place (3-4 token-sized temporaries at the peak
    of the backward). The fused reads below add their contribution in place into this one buffer;
    the gate read (structurally the last to run: every other read depends on its output through
    the pooling weights and top-k) returns it. A read that runs after the buffer was returned (an
    unusual graph) returns its own contribution instead, so the gradient is always complete.
    """

    def __init__(self) -> None:
        self.buf: torch.Tensor | None = None
        self.done = False

    def acquire(self, like: torch.Tensor) -> torch.Tensor:
        """The buffer a read adds its contribution into."""
        if self.done:
            return torch.zeros_like(like)
        if self.buf is None:
            self.buf = torch.zeros_like(like)
        return self.buf

    def result(self, buf: torch.Tensor, final: bool) -> torch.Tensor | None:
        """The gradient the read returns for ``x`` (None while the shared buffer is still filling)."""
        if buf is not self.buf:
            return buf
        if final:
            self.buf, self.done = None, True
            return buf
        return None


class _GateRead(torch.autograd.Function):
    """``z = x W^T + b`` (B, N, R) for the gate and pooling logits; returns the shared x gradient."""

    @staticmethod
    def forward(ctx, x, weight, bias, sink):
        ctx.save_for_backward(x, weight)
        ctx.sink = sink
        return F.linear(x, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx, gz):
        x, w = ctx.saved_tensors
        d, r = x.shape[-1], w.shape[0]
        gz2 = gz.reshape(-1, r)  # (B N, R)
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            buf = ctx.sink.acquire(x)
            buf.view(-1, d).addmm_(gz2, w)
            gx = ctx.sink.result(buf, final=True)
        if ctx.needs_input_grad[1]:
            gw = gz2.t() @ x.reshape(-1, d)
        if ctx.needs_input_grad[2]:
            gb = gz2.sum(0)
        return gx, gw, gb, None


class _PoolGather(torch.autograd.Function):
    """``pooled = P^T x`` (B, M, D) and ``x_sel = x[idx]`` (B, k, D); x gradient into the sink."""

    @staticmethod
    def forward(ctx, x, p_t, idx, sink):
        ctx.save_for_backward(x, p_t, idx)
        ctx.sink = sink
        ix = idx[..., None].expand(-1, -1, x.shape[-1])
        return p_t @ x, x.gather(1, ix)

    @staticmethod
    @once_differentiable
    def backward(ctx, g_pooled, g_sel):
        x, p_t, idx = ctx.saved_tensors
        gx = gp = None
        if ctx.needs_input_grad[0]:
            buf = ctx.sink.acquire(x)
            buf.baddbmm_(p_t.transpose(1, 2), g_pooled)
            buf.scatter_add_(1, idx[..., None].expand(-1, -1, x.shape[-1]), g_sel)
            gx = ctx.sink.result(buf, final=False)
        if ctx.needs_input_grad[1]:
            gp = g_pooled @ x.transpose(1, 2)  # (B, M, N)
        return gx, gp, None, None


def _read_weights(x, a_mat, c, kept, heads: int) -> torch.Tensor:
    """Folded per-head softmax over the memory tokens, (..., N, H M); rows of kept queries are 0.

    ``x`` (..., N, D), ``a_mat`` (..., D, H M), ``c`` (..., 1, H M), ``kept`` (..., N) bool.
    """
    hm = a_mat.shape[-1]
    r = (x @ a_mat + c).unflatten(-1, (heads, hm // heads)).softmax(-1)  # (..., N, H, M)
    return r.masked_fill(kept[..., None, None], 0.0).flatten(-2)


def _chunks(x: torch.Tensor, chunk: int):
    """(batch index, token slice) pairs covering ``x`` (B, N, D) in contiguous (chunk, D) blocks."""
    for i in range(x.shape[0]):
        for s in range(0, x.shape[1], chunk):
            yield i, slice(s, min(x.shape[1], s + chunk))


class _MemoryRead(torch.autograd.Function):
    """``y = r(x) Y_mem + b_o`` (B, N, D), computed and differentiated in (chunk, D) token blocks.

    Saves nothing token-sized but ``x`` itself (which exists anyway; ``r`` is recomputed in the
    backward) and never holds more than a (chunk, H M) block of ``r`` or its gradient.
    """

    @staticmethod
    def forward(ctx, x, a_mat, c, y_mem, bias, kept, sink, heads, chunk):
        ctx.save_for_backward(x, a_mat, c, y_mem, kept)
        ctx.sink, ctx.heads, ctx.chunk = sink, heads, chunk
        out = x.new_empty(x.shape[0], x.shape[1], y_mem.shape[-1])  # (B, N, D)
        for i, t in _chunks(x, chunk):
            r = _read_weights(x[i, t], a_mat[i], c[i], kept[i, t], heads)  # (n, H M)
            torch.addmm(bias, r, y_mem[i], out=out[i, t])
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, g_out):
        x, a_mat, c, y_mem, kept = ctx.saved_tensors
        h = ctx.heads
        ga, gc, gy = torch.zeros_like(a_mat), torch.zeros_like(c), torch.zeros_like(y_mem)
        buf = ctx.sink.acquire(x) if ctx.needs_input_grad[0] else None
        for i, t in _chunks(x, ctx.chunk):
            xc, go = x[i, t], g_out[i, t]  # (n, D)
            r = _read_weights(xc, a_mat[i], c[i], kept[i, t], h)  # (n, H M)
            gr = (go @ y_mem[i].t()).unflatten(-1, (h, -1))  # (n, H, M)
            gy[i].addmm_(r.t(), go)
            rv = r.view_as(gr)
            gl = (rv * (gr - (gr * rv).sum(-1, keepdim=True))).flatten(-2)  # softmax backward (n, H M)
            ga[i].addmm_(xc.t(), gl)
            gc[i] += gl.sum(0, keepdim=True)
            if buf is not None:
                buf[i, t].addmm_(gl, a_mat[i].t())
        gx = None if buf is None else ctx.sink.result(buf, final=False)
        return gx, ga, gc, gy, g_out.sum((0, 1)), None, None, None, None


class MemoryGatedFilteringAttention(AttentionBase):
    """Memory-gated filtering attention (MGFA): gate -> top-k full attention + M memory tokens.

    Paper 000 (Ren & Shi 2025) reports only the idea (a memory-gated filter in front of attention,
    -72 % GPU memory, 10x faster training); the formulas below are our design. The principle: the
    work done for *every* token is a few rank-``r`` projections (r = 1 + M and H M, both << D); full
    multi-head attention with full Q/K/V projections runs only on ``k = k_keep`` selected tokens.

    Notation: keys ``x_j = k[:, j]`` (B, Nk, D), queries ``q_i``, ``W_q, W_k, W_v, W_o`` and biases
    the usual projections (per head ``h``: ``W_q^h`` (Dh, D), ``W_o^h`` (D, Dh)), ``M`` learned memory
    tokens ``e_m`` (D,).

    1. Gate (per key, rank 1): ``gamma_j = w_g^T x_j + b_g``, ``g_j = sigmoid(gamma_j)``.
    2. Filter: ``S`` = the ``k`` valid keys with the largest ``gamma_j`` (top-k on the detached
       gate; padded keys rank last). In self-attention (``q is k``) the same ``k`` tokens are the
       *kept queries* ``S_q``; otherwise ``S_q`` is the top-k of the gate applied to the queries
       (all queries when ``Nq <= k``).
    3. Memory (per key, rank M): pooling weights over the valid keys
       ``P_jm = softmax_j(u_m^T x_j + c_m + log g_j)`` (masked keys get exactly 0); memory token
       ``m`` has key ``K_m = W_k (e_m + sum_j P_jm k_j) + b_k`` and value
       ``V_m = W_v (e_m + sum_j P_jm v_j) + b_v``: a linear-cost summary of *all* keys, biased
       towards open gates (the gate's first gradient path).
    4. Kept queries ``i in S_q``: exact multi-head softmax attention (SDPA) over the ``k + M``
       tokens ``[K_S ; K_mem]`` with values ``[g_S * V_S ; V_mem]`` (the gate scales the kept values:
       its second gradient path), then ``W_o``.
    5. Every other query: exact multi-head softmax attention over the ``M`` memory tokens only, but
       computed in folded form so no (B, N, D) Q projection or (B, H, N, Dh) head tensor is built:
       ``r_ihm = softmax_m(q_i^T A_hm + c_hm)`` with ``A_hm = W_q^h^T K_m^h / sqrt(Dh)`` (D,) and
       ``c_hm = b_q^h . K_m^h / sqrt(Dh)``; output ``y_i = sum_{h,m} r_ihm (W_o^h V_m^h) + b_o``.
       This is identical to ``W_o concat_h softmax(Q^h K_mem^h^T / sqrt(Dh)) V_mem^h + b_o``.

    Cost per forward (B = 1): per-token work O(N D (1 + 2M + H M)) for the gate/pool logits, the
    pooled sums and the folded memory read (H M = 64 columns for the defaults, vs 4 D = 1024 for
    the Q/K/V/O projections of MHSA), plus O(N log k) for top-k; the dense part is
    O(k D^2 + H k (k + M) Dh), independent of N. In total O(N D (1 + 2M + H M) + k D^2 + k^2 D)
    time versus MHSA's O(N D^2 + N^2 D).

    Memory. Self-attention (``q is k is v``, the encoder) takes a fused path: the three reads of
    the input (``_GateRead``, ``_PoolGather``, ``_MemoryRead``) are custom autograd functions that
    save nothing token-sized but the input itself, recompute the (chunk, H M) read weights in
    (chunk, D) blocks in the backward, and add their input gradients in place into one shared
    buffer (``_GradSink``). The token-sized tensors alive in a training step are then the output
    and the input gradient (2 x (B, N, D)) plus O(B N (1 + M)) logits and O(B k D) for the kept
    tokens; measured (bench.py, N = 4096, k = 64) about 2.2 (B, N, D)-sized tensors versus about 9
    for SDPA MHSA, which keeps Q, K, V, the head output and the merged output for its backward.
    Other calls (cross-attention, ``need_weights``) run the same formulas with plain autograd
    (``fused = False`` forces that; the tests check both paths agree in outputs and gradients).
    Nothing of size (B, H, N, N), (B, H, N, Dh) or (B, Nq, Nk) is built, except the explicit
    (B, Nq, Nk) weights when ``need_weights``.

    ``need_weights`` returns the head-averaged weights over the original keys: kept-key weights
    are scattered back to their key, each memory token's weight is spread over the keys by ``P``
    (the ``e_m`` part of a memory token is not attributable to any key and is spread the same way).

    Args:
        dim: model width D.
        num_heads: heads H.
        dropout: dropout on the output.
        k_keep: number k of tokens that get full attention (kept keys and kept queries).
        num_memory: number M of memory tokens.
    """

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0, k_keep: int = 64, num_memory: int = 8):
        super().__init__(dim, num_heads, dropout)
        if k_keep < 1 or num_memory < 1:
            raise ValueError(f"mgfa needs k_keep >= 1 and num_memory >= 1, got {k_keep}, {num_memory}")
        self.k_keep = k_keep
        self.num_memory = num_memory
        # column 0: gate logit gamma; columns 1..M: pooling logits (rank 1 + M per token)
        self.gate = nn.Linear(dim, 1 + num_memory)
        nn.init.normal_(self.gate.weight, std=0.02)
        with torch.no_grad():
            self.gate.bias.zero_()
            self.gate.bias[0] = 2.0  # gates start open (sigmoid(2) = 0.88)
        self.memory = nn.Parameter(torch.randn(num_memory, dim) * 0.5)  # e_m (M, D)
        self.last_gate: torch.Tensor | None = None  # (B, Nk) gate values of the last call
        self.last_kept: torch.Tensor | None = None  # (B, k) kept key indices of the last call
        self.fused = True  # low-memory custom-backward reads in self-attention (False: plain autograd)
        self.chunk = 1024  # tokens per block in the fused memory read

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if prefix + "gate_norm.weight" in state_dict:
            raise ValueError(
                f"checkpoint entry {prefix!r} holds the pre-redesign MGFA (gate_norm, per-head memory "
                f"(H, M, Dh)), which the current memory-gated filtering attention cannot load; retrain "
                f"the variant (e.g. `vla train --variant SR+MGFA ...`) with this code"
            )
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _gate_logit(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.gate.weight[:1], self.gate.bias[:1]).squeeze(-1)  # (B, N)

    def _kept_queries(self, q, k, idx: torch.Tensor) -> torch.Tensor:
        """(B, kq) indices of the queries that get full attention."""
        b, nq, _ = q.shape
        if q is k:
            return idx
        if nq <= self.k_keep:
            return torch.arange(nq, device=q.device).expand(b, nq)
        return self._gate_logit(q).detach().topk(self.k_keep, dim=1).indices

    def _memory_operands(self, mem_k: torch.Tensor, mem_v: torch.Tensor) -> tuple:
        """Fold ``W_q`` into the memory keys and ``W_o`` into the memory values (all small).

        Returns ``A`` (B, D, H M), ``c`` (B, 1, H M) so that the per-head scores of query ``x`` over
        the memory tokens are ``x A + c``, and ``Y`` (B, H M, D) so that the output is ``r Y + b_o``.
        """
        b = mem_k.shape[0]
        h, dh, m = self.num_heads, self.head_dim, self.num_memory
        kmh = self._split(mem_k)  # (B, H, M, Dh)
        scale = dh**-0.5
        wq = self.q_proj.weight.view(h, dh, self.dim)  # (H, Dh, D)
        a_mat = torch.einsum("bhmd,hdc->bchm", kmh, wq).reshape(b, self.dim, h * m) * scale
        c = torch.einsum("bhmd,hd->bhm", kmh, self.q_proj.bias.view(h, dh)).reshape(b, 1, h * m) * scale
        wo = self.out_proj.weight.view(self.dim, h, dh)  # (D, H, Dh)
        y_mem = torch.einsum("bhmd,chd->bhmc", self._split(mem_v), wo).reshape(b, h * m, self.dim)
        return a_mat, c, y_mem

    def forward(self, q, k, v, key_padding_mask=None, q_pos=None, k_pos=None, need_weights=False):
        """Attend; see the class docstring for the formulas and the module docstring for shapes."""
        self._check(q, k, v, key_padding_mask)
        b, nq, d = q.shape
        nk = k.shape[1]
        h, m = self.num_heads, self.num_memory
        # fused low-memory reads for self-attention (the encoder); plain autograd otherwise
        fused = self.fused and q is k and k is v and not need_weights
        sink = _GradSink() if fused else None
        empty = self._empty(key_padding_mask)
        kpm = key_padding_mask
        if kpm is not None and empty is not None:  # keep softmax finite; such rows are zeroed after
            kpm = kpm & ~empty[:, None]
        # 1. gate and pooling logits: the only projection applied to every key
        z = _GateRead.apply(k, self.gate.weight, self.gate.bias, sink) if fused else self.gate(k)
        # z (B, Nk, 1 + M)
        gamma = z[..., 0]  # (B, Nk)
        log_g = F.logsigmoid(gamma)
        self.last_gate = log_g.detach().exp()
        # 2. filter: top-k valid keys by gate
        kk = min(self.k_keep, nk)
        rank = gamma.detach() if kpm is None else gamma.detach().masked_fill(kpm, float("-inf"))
        idx = rank.topk(kk, dim=1).indices  # (B, k)
        self.last_kept = idx
        # 3. memory tokens: gate-biased pooled summaries of all valid keys, linear in Nk
        pl = z[..., 1:] + log_g[..., None]  # (B, Nk, M)
        if kpm is not None:
            pl = pl.masked_fill(kpm[..., None], float("-inf"))
        p_t = pl.softmax(1).transpose(1, 2)  # (B, M, Nk), rows sum to 1 over valid keys
        qidx = self._kept_queries(q, k, idx)  # (B, kq)
        kq = qidx.shape[1]
        if fused:
            pooled_k, x_sel = _PoolGather.apply(k, p_t, idx, sink)  # (B, M, D), (B, k, D)
            pooled_v, k_sel, v_sel, q_sel = pooled_k, x_sel, x_sel, x_sel
        else:
            pooled_k = p_t @ k  # (B, M, D)
            pooled_v = pooled_k if v is k else p_t @ v
            ix = idx[..., None].expand(b, kk, d)
            k_sel, v_sel = k.gather(1, ix), v.gather(1, ix)  # (B, k, D)
            q_sel = q.gather(1, qidx[..., None].expand(b, kq, d))  # (B, kq, D)
        mem_k = self.k_proj(pooled_k + self.memory)  # (B, M, D)
        mem_v = self.v_proj(pooled_v + self.memory)
        # 5. all other queries: folded attention over the memory tokens only. Built before step 4
        # so that, in the backward, the kept-token branch (created later, so run first) frees its
        # saved tensors before the memory read allocates the (B, N, D) input-gradient buffer.
        a_mat, c, y_mem = self._memory_operands(mem_k, mem_v)  # (B, D, HM), (B, 1, HM), (B, HM, D)
        kept_q = torch.zeros(b, nq, dtype=torch.bool, device=q.device).scatter_(1, qidx, True)
        if fused:
            out = _MemoryRead.apply(q, a_mat, c, y_mem, self.out_proj.bias, kept_q, sink, h, self.chunk)
        else:
            r = _read_weights(q, a_mat, c, kept_q, h)  # (B, Nq, HM)
            out = torch.baddbmm(self.out_proj.bias.view(1, 1, d), r, y_mem)  # (B, Nq, D)
        # 4. kept queries: full attention over kept keys (gate-scaled values) + memory tokens
        g_sel = log_g.gather(1, idx).exp()  # (B, k)
        keys = self._split(torch.cat([self.k_proj(k_sel), mem_k], 1))  # (B, H, k + M, Dh)
        vals = self._split(torch.cat([self.v_proj(v_sel) * g_sel[..., None], mem_v], 1))
        qh = self._split(self.q_proj(q_sel))  # (B, H, kq, Dh)
        mask = None
        if kpm is not None:  # only when fewer than k valid keys can a padded key be selected
            keep = torch.cat([~kpm.gather(1, idx), kpm.new_ones(b, m)], 1)  # (B, k + M)
            mask = keep[:, None, None, :]
        a = None
        if need_weights:
            s = qh @ keys.transpose(-2, -1) * self.head_dim**-0.5  # (B, H, kq, k + M)
            if mask is not None:
                s = s.masked_fill(~mask, float("-inf"))
            a = s.softmax(-1)
            o_sel = a @ vals
        else:
            o_sel = F.scaled_dot_product_attention(qh, keys, vals, attn_mask=mask)
        y_sel = self.out_proj(self._merge(o_sel))  # (B, kq, D)
        bi = torch.arange(b, device=q.device)[:, None].expand(b, kq)
        # in place, accumulate: the backward passes the output gradient through without a copy
        out = out.index_put_((bi, qidx), y_sel - self.out_proj.bias, accumulate=True)
        out = self.dropout(out)
        if empty is not None:
            out = out.masked_fill(empty[:, None, None], 0.0)
        weights = None
        if need_weights:
            weights = r.view(b, nq, h, m).mean(2) @ p_t  # (B, Nq, Nk): memory-only queries
            w_sel = a[..., :kk].mean(1)  # (B, kq, k)
            w_kept = (a[..., kk:].mean(1) @ p_t).scatter_add(2, idx[:, None, :].expand(b, kq, kk), w_sel)
            weights = weights.index_put((bi, qidx), w_kept, accumulate=True)
            if empty is not None:
                weights = weights.masked_fill(empty[:, None, None], 0.0)
        return out, weights


def make_attention(name: str, dim: int, num_heads: int, dropout: float = 0.0, **kwargs) -> AttentionBase:
    """Build an attention module by name (one of ``ATTENTION_TYPES``).

    Extra keyword arguments go to the variant (``num_buckets``, ``conv_kernel`` for dssa;
    ``k_keep``, ``num_memory`` for mgfa); arguments meant for another variant are ignored.
    """
    if name == "softmax":
        return SoftmaxAttention(dim, num_heads, dropout)
    if name == "relu":
        return ReluAttention(dim, num_heads, dropout)
    if name == "dssa":
        keys = ("num_buckets", "conv_kernel", "sparse_init", "neighbourhood", "window")
        return DSSAttention(dim, num_heads, dropout, **{k: v for k, v in kwargs.items() if k in keys})
    if name == "mgfa":
        keys = ("k_keep", "num_memory")
        extra = {k: v for k, v in kwargs.items() if k in keys}
        return MemoryGatedFilteringAttention(dim, num_heads, dropout, **extra)
    raise ValueError(f"unknown attention type {name!r}; choose one of {ATTENTION_TYPES}")
