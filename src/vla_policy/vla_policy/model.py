# SPDX-License-Identifier: Apache-2.0
"""Two-stage cross-modal alignment model (SR paper 001, Sec. 3.3, Fig. 3) with PosA and 000's losses.

Pipeline for one decision (shapes per sample; B batch, N points, T text tokens, C candidates,
K = ``num_keep`` points in the semantic mask, Dc CLIP width, D model width):

1. Visual-position tokens: ``v_n = MLP([f_n, s * (p_n - mean(p)), rgb_n])`` from the fused CLIP
   point features ``f`` (N, Dc), positions ``p`` (N, 3) and (``use_rgb``) colours -> (N, D).
2. 1-Align (language -> vision, "coarse semantic localisation"): the instruction tokens, projected
   to D, are the queries and the visual tokens the keys: per point and token
   ``r_tn = q_t . k_n / sqrt(D)``; relevance ``r_n`` = mean over valid tokens, plus
   ``alpha * cos(e_text, f_n)`` (zero-shot CLIP similarity, learnable alpha) (N,). The semantic
   mask keeps the top-K points by ``r_n``; the language-driven semantic cloud is
   ``x_n = v_n + sigmoid(r_n) * W e_text`` on those points (K, D) (the sigmoid gate lets the action
   loss reach the relevance).
3. Encoder: L layers of pre-LN ``x = x + Attn(LN x)``, ``x = x + FFN(LN x)`` over the semantic
   cloud, with the selectable attention (softmax / relu / dssa / mgfa). Every layer gets the kept
   points' positions ``kept_xyz`` (B, K, 3): DSSA uses them for its relative bias and, with
   ``dssa_neighbourhood="serial"``, to order the tokens along a 3D Z-order curve, so its score
   convolution and windows run over spatial neighbours rather than relevance-rank neighbours.
4. 2-Align (action -> vision, "fine geometric adaptation"): each candidate, a 7-D pose
   (xyz centred and scaled like the points, quaternion xyzw with w >= 0), is embedded by a 3-layer
   MLP into a query; it cross-attends to the encoded semantic cloud (softmax attention with a
   learnable relative position bias between the candidate and point positions, initialised to
   favour nearby points; with PosA and ``posa_anchor="pose"`` also the pose-conditioned anchor
   bias below), then FFN, then an MLP head gives one score per candidate (C,).

5. Restriction to the semantic mask (``relevance_pool``, two-stage variants): 2-Align must not
   prefer a candidate that lies away from everything 1-Align found relevant. With ``c`` the
   candidate position, ``R`` = ``relevance_pool_radius_m`` (3 cm) and Gaussian weights
   ``w_cn = exp(-|p_n - c|^2 / (2 (R/2)^2))`` on the points with ``|p_n - c| <= R``:

       pool_c = sum_n w_cn r_n / sum_n w_cn      if a semantic-mask (top-K) point lies within R,
       pool_c = min_n r_n                        otherwise (gated: the lowest relevance in the cloud),
       score_c = head(q_c) + beta * pool_c       (beta learnable, initialised to 1).

   The relevance is not detached here, so the action loss also trains 1-Align. The head's last layer
   starts at zero, so an untrained model ranks candidates by CLIP's zero-shot grounding around
   them (measured on held-out grasp scenes: see checkpoints/README.md) and training learns the
   geometric correction on top.

BASE (``two_stage=False``) skips 2 and 5 and runs 3-4 over all N points.

Losses (``PolicyModel.loss``):
* ``ce``: cross-entropy of the candidate scores against the expert's candidate index.
* ``posa`` (PosA-VLA, 002; on/off): pose-conditioned anchor attention. The paper anchors the visual
  attention with the pose: a pose encoder conditions the attention weights, and a pose-alignment
  loss supervises them toward the task-relevant region (its method section; the stored text gives
  the design, not the equations). Here the anchor of a 7-D pose ``(t, R)`` (TCP frame: x finger
  width, y closing, z approach) is the oriented Gaussian

      a_n(t, R) ∝ exp(-1/2 * sum_ax (u_n,ax / sigma_ax)^2),   u_n = R^T (p_n - t),

  with ``sigma = posa_sigma_tcp_m`` (default 1.5 / 4 / 2.5 cm: narrow across the fingers, wide
  along the 8.5 cm stroke, finger-length deep), i.e. the region between the gripper's fingers.
  (a) Attention: each candidate's cross-attention logits get ``-1/2 sum_ax (u_n,ax / s_h,ax)^2``
  with its own pose, per head, ``s`` learnable (init ``sigma``). (b) Loss: ``KL(a* || attn)`` for
  every candidate query's cross-attention (and, in two-stage variants, for the 1-Align relevance
  distribution ``softmax_n(r_n)``), averaged, where ``a*`` is the anchor of the expert pose:
  position ``TARGET_XYZ``, orientation from ``TARGET_POSE`` when the batch has it, else the
  labelled (expert) candidate's. ``posa_anchor="position"`` (checkpoints saved before the field)
  is the original form: isotropic ``a_n ∝ exp(-|p_n - p*|^2 / 2 sigma^2)``, loss only.
* ``align`` (000's cross-modal alignment perception; on/off): symmetric InfoNCE between the
  relevance-pooled visual feature ``sum_n softmax(r)_n W_v v_n`` and the pooled instruction
  embedding ``W_t e_text`` across the batch (CLIP-style, temperature tau).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vla_policy.attention import RelativePositionBias, make_attention
from vla_policy.configuration import PolicyConfig

# batch keys (shapes per batch)
XYZ = "xyz"  # (B, N, 3) float, metres, world frame
FEATURES = "features"  # (B, N, Dc) float
RGB = "rgb"  # (B, N, 3) float in [0, 1] (used when cfg.use_rgb)
POINT_MASK = "point_mask"  # (B, N) bool, True = real point
TEXT = "text"  # (B, T, Dc) float, CLIP text tokens (token 0 = pooled sentence embedding)
TEXT_MASK = "text_mask"  # (B, T) bool, True = real token
CANDIDATES = "candidates"  # (B, C, 7) float, xyz (m) + quaternion xyzw
CAND_MASK = "cand_mask"  # (B, C) bool, True = real candidate
LABEL = "label"  # (B,) long, expert candidate index
TARGET_XYZ = "target_xyz"  # (B, 3) float, expert target position (PosA)
TARGET_POSE = "target_pose"  # optional (B, 7) float, expert pose xyz + quat xyzw (PosA orientation)


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.GELU())
    return nn.Sequential(*layers)


class EncoderLayer(nn.Module):
    """Pre-LN transformer layer: selectable self-attention + FFN, residual connections."""

    def __init__(self, cfg: PolicyConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.d_model)
        self.attn = make_attention(
            cfg.attention, cfg.d_model, cfg.num_heads, cfg.dropout,
            num_buckets=cfg.dssa_buckets, k_keep=cfg.mgfa_k_keep, num_memory=cfg.mgfa_memory,
            neighbourhood=cfg.dssa_neighbourhood, window=cfg.dssa_window,
        )
        self.norm2 = nn.LayerNorm(cfg.d_model)
        self.ffn = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.ffn_mult * cfg.d_model), nn.GELU(), nn.Dropout(cfg.dropout),
            nn.Linear(cfg.ffn_mult * cfg.d_model, cfg.d_model),
        )

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None, pos: torch.Tensor) -> torch.Tensor:
        """(B, K, D), pad (B, K) True = padding, pos (B, K, 3) metres -> (B, K, D)."""
        h = self.norm1(x)
        a, _ = self.attn(h, h, h, key_padding_mask=pad, q_pos=pos, k_pos=pos)
        x = x + a
        return x + self.ffn(self.norm2(x))


def quat_to_matrix(quat: torch.Tensor) -> torch.Tensor:
    """(…, 4) unit quaternions xyzw -> (…, 3, 3) rotation matrices (columns: the frame's axes)."""
    x, y, z, w = quat.unbind(-1)
    rows = [
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ]
    return torch.stack(rows, -1).unflatten(-1, (3, 3))


def pose_anchor_logits(pts: torch.Tensor, xyz: torch.Tensor, rot: torch.Tensor,
                       sigma: torch.Tensor) -> torch.Tensor:
    """PosA anchor log-weights ``-1/2 sum_ax (u_ax / sigma_ax)^2``, ``u = R^T (p - t)``.

    pts (B, K, 3) points, xyz (B, C, 3) pose positions, rot (B, C, 3, 3) pose rotations (metres,
    world frame); sigma (3,) or (H, 3) widths along the TCP axes. Returns (B, C, K) or (B, H, C, K).
    """
    u = torch.einsum("bckx,bcxa->bcka", pts[:, None] - xyz[:, :, None], rot)  # (B, C, K, 3) in TCP frame
    inv = sigma.pow(-2)
    if sigma.dim() == 1:
        return -0.5 * (u.square() * inv).sum(-1)
    return -0.5 * torch.einsum("bcka,ha->bhck", u.square(), inv)


class CandidateCrossAttention(nn.Module):
    """Candidate queries over point tokens: softmax attention + relative position bias, with weights.

    With ``anchor_sigma_m`` (PosA, ``posa_anchor="pose"``), the logits also get each candidate's
    pose-conditioned anchor (``pose_anchor_logits``) with learnable per-head widths.
    """

    def __init__(self, d_model: int, num_heads: int, num_buckets: int = 16,
                 anchor_sigma_m: tuple[float, float, float] | None = None) -> None:
        super().__init__()
        self.h = num_heads
        self.dh = d_model // num_heads
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)
        self.o = nn.Linear(d_model, d_model)
        self.bias = RelativePositionBias(num_heads, num_buckets)
        with torch.no_grad():  # start by favouring points near the candidate (local geometry)
            ramp = -0.5 * torch.arange(num_buckets, dtype=torch.float32)
            self.bias.table.copy_(ramp[:, None].expand(num_buckets, num_heads))
        if anchor_sigma_m is not None:  # log widths (H, 3) along the TCP axes x, y, z
            log_sigma = torch.tensor(anchor_sigma_m, dtype=torch.float32).log()
            self.anchor_log_sigma = nn.Parameter(log_sigma[None].repeat(num_heads, 1))

    def forward(self, q, kv, pad, q_pos, k_pos, q_rot=None):
        """Attend: q (B,C,D), kv (B,K,D), pad (B,K), positions (m) -> out (B,C,D), weights (B,C,K).

        ``q_rot`` (B, C, 3, 3): the candidates' rotations, needed with the pose anchor.
        """
        b, c, d = q.shape
        k_ = kv.shape[1]
        qh = self.q(q).view(b, c, self.h, self.dh).transpose(1, 2)  # (B, H, C, Dh)
        kh = self.k(kv).view(b, k_, self.h, self.dh).transpose(1, 2)  # (B, H, K, Dh)
        vh = self.v(kv).view(b, k_, self.h, self.dh).transpose(1, 2)
        s = qh @ kh.transpose(-2, -1) / math.sqrt(self.dh) + self.bias(q_pos, k_pos)  # (B, H, C, K)
        if hasattr(self, "anchor_log_sigma"):
            if q_rot is None:
                raise ValueError("the pose-anchored cross-attention needs the candidates' rotations q_rot")
            s = s + pose_anchor_logits(k_pos, q_pos, q_rot, self.anchor_log_sigma.exp())
        if pad is not None:
            s = s.masked_fill(pad[:, None, None, :], float("-inf"))
        a = s.softmax(-1)
        o = (a @ vh).transpose(1, 2).reshape(b, c, d)
        return self.o(o), a.mean(1)


def canonical_pose7(pose7: torch.Tensor) -> torch.Tensor:
    """(…, 7) xyz + quat xyzw with the quaternion normalised and w >= 0 (q and -q are one rotation)."""
    xyz, quat = pose7[..., :3], pose7[..., 3:]
    quat = F.normalize(quat, dim=-1)
    quat = torch.where(quat[..., 3:4] < 0, -quat, quat)
    return torch.cat([xyz, quat], dim=-1)


class PolicyModel(nn.Module):
    """Two-stage alignment network; ``forward(batch) -> dict``, ``loss(batch, out) -> (loss, logs)``."""

    def __init__(self, cfg: PolicyConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.vis_mlp = _mlp([cfg.feature_dim + 3 + (3 if cfg.use_rgb else 0), d, d])
        self.vis_norm = nn.LayerNorm(d)
        if cfg.two_stage:
            self.text_q = nn.Linear(cfg.feature_dim, d)
            self.rel_k = nn.Linear(d, d)
            self.lang_inject = nn.Linear(cfg.feature_dim, d)
            self.rel_bias = nn.Parameter(torch.zeros(()))
            self.clip_scale = nn.Parameter(torch.tensor(10.0))
            self.align_v = nn.Linear(d, d)
            self.align_t = nn.Linear(cfg.feature_dim, d)
        if cfg.relevance_pool:
            self.pool_weight = nn.Parameter(torch.tensor(1.0))  # beta of step 5
        self.layers = nn.ModuleList([EncoderLayer(cfg) for _ in range(cfg.num_layers)])
        self.enc_norm = nn.LayerNorm(d)
        self.cand_mlp = _mlp([7, d, d, d])  # 3-layer MLP on the 7-D pose
        self.cross_norm = nn.LayerNorm(d)
        pose_anchor = cfg.posa and cfg.posa_anchor == "pose"
        self.cross = CandidateCrossAttention(d, cfg.num_heads, cfg.dssa_buckets,
                                             cfg.posa_sigma_tcp_m if pose_anchor else None)
        self.cand_norm = nn.LayerNorm(d)
        self.cand_ffn = _mlp([d, cfg.ffn_mult * d, d])
        self.head = _mlp([d, d, 1])
        if cfg.two_stage and cfg.relevance_pool:  # start from the pooled relevance alone (step 5)
            with torch.no_grad():
                self.head[-1].weight.zero_()
                self.head[-1].bias.zero_()

    # -- helpers -----------------------------------------------------------------------------
    def _relevance(self, vis, feats, text, text_mask, point_mask):
        """1-Align relevance logits (B, N).

        ``r_n = mean_t (q_t . k_n / sqrt(D)) + alpha * cos(e_text, f_n) + b``: the learned
        text-query / visual-key attention score plus the zero-shot CLIP similarity of the sentence
        embedding and the point feature (the two live in CLIP's joint space), scaled by a learnable
        ``alpha`` (init 10, like CLIP's logit scale), so training starts from CLIP's grounding.
        """
        q = self.text_q(text)  # (B, T, D)
        k = self.rel_k(vis)  # (B, N, D)
        r_tn = q @ k.transpose(1, 2) / math.sqrt(self.cfg.d_model)  # (B, T, N)
        w = text_mask.float()
        r = (r_tn * w[:, :, None]).sum(1) / w.sum(1, keepdim=True).clamp(min=1)  # (B, N)
        cos = torch.einsum("bnd,bd->bn", F.normalize(feats, dim=-1), F.normalize(text[:, 0], dim=-1))
        r = r + self.clip_scale * cos + self.rel_bias
        return r.masked_fill(~point_mask, float("-inf"))

    def _relevance_pool(self, r, xyz, pmask, keep_idx, cand_xyz):
        """Step 5: relevance pooled around each candidate, gated by the semantic mask -> (B, C).

        r (B, N) relevance logits (-inf at padding), xyz (B, N, 3) m, pmask (B, N), keep_idx (B, K),
        cand_xyz (B, C, 3) m.
        """
        rad = self.cfg.relevance_pool_radius_m
        d2 = torch.cdist(cand_xyz, xyz).square()  # (B, C, N)
        near = (d2 <= rad**2) & pmask[:, None, :]  # (B, C, N)
        kept = torch.zeros_like(pmask).scatter(1, keep_idx, True) & pmask  # (B, N)
        w = torch.exp(-d2 / (2 * (0.5 * rad) ** 2)) * near.float()  # (B, C, N)
        r0 = r.masked_fill(~pmask, 0.0)  # (B, N)
        pool = (w * r0[:, None, :]).sum(-1) / w.sum(-1).clamp(min=1e-12)  # (B, C)
        rmin = r.masked_fill(~pmask, float("inf")).min(1).values  # (B,)
        gated = (near & kept[:, None, :]).any(-1)  # (B, C)
        return torch.where(gated, pool, rmin[:, None].expand_as(pool))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Score the candidates.

        Args:
            batch: the keys listed at the top of this module (LABEL / TARGET_XYZ optional).

        Returns:
            dict with ``logits`` (B, C) (-inf at padded candidates), ``relevance`` (B, N) 1-Align
            logits (-inf at padded points; zeros for BASE), ``keep_idx`` (B, K) indices of the
            semantic mask, ``cross_attn`` (B, C, K), ``kept_xyz`` (B, K, 3), ``kept_pad`` (B, K),
            for two-stage models ``align_vis`` (B, D) / ``align_txt`` (B, D), and with
            ``relevance_pool`` the pooled relevance ``relevance_pool`` (B, C) (step 5).
        """
        xyz, feats, pmask = batch[XYZ], batch[FEATURES], batch[POINT_MASK]
        if not bool(pmask.any(1).all()):
            raise ValueError("every sample needs at least one real point (point_mask all False)")
        cfg = self.cfg
        w = pmask.float()[..., None]
        center = (xyz * w).sum(1, keepdim=True) / w.sum(1, keepdim=True)  # (B, 1, 3)
        rel = (xyz - center) * cfg.pos_scale  # (B, N, 3)
        parts = [feats, rel]
        if cfg.use_rgb:
            parts.append(batch[RGB] if RGB in batch else torch.zeros_like(rel))
        vis = self.vis_norm(self.vis_mlp(torch.cat(parts, dim=-1)))  # (B, N, D)
        out: dict[str, torch.Tensor] = {}
        if cfg.two_stage:
            text, tmask = batch[TEXT], batch[TEXT_MASK]
            r = self._relevance(vis, feats, text, tmask, pmask)  # (B, N)
            kk = min(cfg.num_keep, xyz.shape[1])
            keep_idx = r.detach().topk(kk, dim=1).indices  # (B, K)
            gate = torch.sigmoid(r).masked_fill(~pmask, 0.0)  # (B, N)
            sent = text[:, 0]  # (B, Dc)
            x = vis + gate[..., None] * self.lang_inject(sent)[:, None, :]  # (B, N, D)
            x = x.gather(1, keep_idx[..., None].expand(-1, -1, x.shape[-1]))  # (B, K, D)
            kept_xyz = xyz.gather(1, keep_idx[..., None].expand(-1, -1, 3))  # (B, K, 3)
            kept_pad = ~pmask.gather(1, keep_idx)  # (B, K)
            p = torch.softmax(r, dim=1)  # (B, N)
            out["align_vis"] = (p[..., None] * self.align_v(vis)).sum(1)  # (B, D)
            out["align_txt"] = self.align_t(sent)  # (B, D)
            out["relevance"] = r
        else:
            keep_idx = torch.arange(xyz.shape[1], device=xyz.device).expand(xyz.shape[0], -1)
            x, kept_xyz, kept_pad = vis, xyz, ~pmask
            out["relevance"] = torch.zeros_like(pmask, dtype=xyz.dtype)
        pad = kept_pad if bool(kept_pad.any()) else None
        for layer in self.layers:
            x = layer(x, pad, kept_xyz)
        x = self.enc_norm(x)
        cands = canonical_pose7(batch[CANDIDATES])  # (B, C, 7)
        cand_in = torch.cat([(cands[..., :3] - center) * cfg.pos_scale, cands[..., 3:]], dim=-1)
        qc = self.cand_mlp(cand_in)  # (B, C, D)
        rot = quat_to_matrix(cands[..., 3:])  # (B, C, 3, 3)
        a, attn = self.cross(self.cross_norm(qc), x, pad, cands[..., :3], kept_xyz, rot)
        qc = qc + a
        qc = qc + self.cand_ffn(self.cand_norm(qc))
        logits = self.head(qc).squeeze(-1)  # (B, C)
        if cfg.two_stage and cfg.relevance_pool:
            pool = self._relevance_pool(out["relevance"], xyz, pmask, keep_idx, cands[..., :3])  # (B, C)
            logits = logits + self.pool_weight * pool
            out["relevance_pool"] = pool
        logits = logits.masked_fill(~batch[CAND_MASK], float("-inf"))
        out.update(logits=logits, keep_idx=keep_idx, cross_attn=attn, kept_xyz=kept_xyz, kept_pad=kept_pad)
        return out

    # -- training ----------------------------------------------------------------------------
    def _anchor(self, pts: torch.Tensor, pad: torch.Tensor, target: torch.Tensor,
                rot: torch.Tensor | None = None) -> torch.Tensor:
        """PosA anchor distribution over points (B, N), pts (B, N, 3), pad (B, N), target (B, 3).

        With ``rot`` (B, 3, 3) (``posa_anchor="pose"``): the oriented Gaussian of the pose
        ``(target, rot)`` (module docstring); without: isotropic around ``target``.
        """
        if rot is None:
            d2 = (pts - target[:, None, :]).square().sum(-1)  # (B, N)
            logit = -d2 / (2 * self.cfg.posa_sigma_m**2)
        else:
            sigma = torch.tensor(self.cfg.posa_sigma_tcp_m, dtype=pts.dtype, device=pts.device)
            logit = pose_anchor_logits(pts, target[:, None], rot[:, None], sigma)[:, 0]  # (B, N)
        return logit.masked_fill(pad, float("-inf")).softmax(-1)

    def expert_rotation(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, 3, 3) rotation of the expert pose: ``TARGET_POSE`` if given, else the labelled candidate's."""
        if TARGET_POSE in batch:
            quat = batch[TARGET_POSE][:, 3:]
        else:
            lab = batch[LABEL]
            quat = batch[CANDIDATES][torch.arange(lab.shape[0], device=lab.device), lab, 3:]
        return quat_to_matrix(canonical_pose7(torch.cat([torch.zeros_like(quat[:, :3]), quat], -1))[:, 3:])

    def loss(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]):
        """Total loss and a dict of float logs (``ce``, ``acc``, ``posa``, ``align``)."""
        cfg = self.cfg
        label = batch[LABEL]
        logits = out["logits"]
        ce = F.cross_entropy(logits, label)
        logs = {"ce": float(ce.detach()), "acc": float((logits.argmax(-1) == label).float().mean())}
        total = ce
        if cfg.posa:
            tgt = batch[TARGET_XYZ]
            rot = self.expert_rotation(batch) if cfg.posa_anchor == "pose" else None  # (B, 3, 3)
            a = self._anchor(out["kept_xyz"], out["kept_pad"], tgt, rot)  # (B, K)
            attn = out["cross_attn"].clamp(min=1e-9)  # (B, C, K)
            cm = batch[CAND_MASK].float()
            kl = (a[:, None, :] * (a[:, None, :].clamp(min=1e-9).log() - attn.log())).sum(-1)  # (B, C)
            posa = (kl * cm).sum() / cm.sum().clamp(min=1)
            if cfg.two_stage:
                a_all = self._anchor(batch[XYZ], ~batch[POINT_MASK], tgt, rot)  # (B, N)
                logp = torch.log_softmax(out["relevance"], dim=1).clamp(min=-1e4)
                posa = 0.5 * posa + 0.5 * (a_all * (a_all.clamp(min=1e-9).log() - logp)).sum(-1).mean()
            total = total + cfg.posa_weight * posa
            logs["posa"] = float(posa.detach())
        if cfg.align_loss and cfg.two_stage and logits.shape[0] > 1:
            v = F.normalize(out["align_vis"], dim=-1)
            t = F.normalize(out["align_txt"], dim=-1)
            sim = v @ t.T / cfg.align_temperature  # (B, B)
            tgt = torch.arange(sim.shape[0], device=sim.device)
            align = 0.5 * (F.cross_entropy(sim, tgt) + F.cross_entropy(sim.T, tgt))
            total = total + cfg.align_weight * align
            logs["align"] = float(align.detach())
        logs["loss"] = float(total.detach())
        return total, logs
