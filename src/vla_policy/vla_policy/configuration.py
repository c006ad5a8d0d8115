# SPDX-License-Identifier: Apache-2.0
"""Configuration of the two-stage alignment policy, and its named variants (SR paper Sec. 4 ablation).

The config is the contract between data, model, training and the policy: every switch of the
ablation is one field, and ``PolicyConfig.from_variant(name)`` builds the named variants:

| variant   | two_stage (1-Align) | attention | posa | align_loss | relevance_pool |
|-----------|---------------------|-----------|------|------------|----------------|
| BASE      | no (whole cloud)    | softmax   | no   | no         | no             |
| SR-A      | yes                 | softmax   | no   | yes        | yes            |
| SR        | yes                 | dssa      | no   | yes        | yes            |
| SR+PosA   | yes                 | dssa      | yes  | yes        | yes            |
| SR+MGFA   | yes                 | mgfa      | yes  | yes        | yes            |
| SR-ReLU   | yes                 | relu      | no   | yes        | yes            |

SR-ReLU is the plain-ReLU baseline of the SR paper's noise table (Table 4: ReLU^2, i.e. DSSA's
sparse branch, against ReLU and softmax); ``vla_policy.noise`` measures the three under point-cloud
noise.

The defaults are sized for a 2-core CPU: width 128 (the compact CLIP's width), 4 heads, 1 encoder
layer (the paper's setting: "width 768, 8 heads, and 1 layer") over a cloud sub-sampled to 1024
tokens, of which the 1-Align semantic mask keeps 256 (the paper's width 768 costs ~14 s per batch
of 32 on this CPU; see shared/reference/sim-assets-and-costs.md Sec. 5).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from vla_policy.attention import ATTENTION_TYPES, DSSA_NEIGHBOURHOODS

POSA_ANCHORS = ("pose", "position")
# Values that fields added after checkpoints were shipped take when a saved config lacks them
# (``from_dict``): the behaviour those checkpoints were trained with. New configs use the
# dataclass defaults (the new behaviour).
LEGACY_DEFAULTS: dict[str, Any] = {"dssa_neighbourhood": "rank", "posa_anchor": "position"}

VARIANTS: dict[str, dict[str, Any]] = {
    "BASE": {"two_stage": False, "attention": "softmax", "posa": False, "align_loss": False},
    "SR-A": {"two_stage": True, "attention": "softmax", "posa": False, "align_loss": True,
             "relevance_pool": True},
    "SR": {"two_stage": True, "attention": "dssa", "posa": False, "align_loss": True, "relevance_pool": True},
    "SR+PosA": {"two_stage": True, "attention": "dssa", "posa": True, "align_loss": True,
                "relevance_pool": True},
    "SR+MGFA": {"two_stage": True, "attention": "mgfa", "posa": True, "align_loss": True,
                "relevance_pool": True},
    "SR-ReLU": {"two_stage": True, "attention": "relu", "posa": False, "align_loss": True,
                "relevance_pool": True},
}


@dataclass
class PolicyConfig:
    """Two-stage cross-modal alignment policy.

    Args:
        variant: name of the variant this config was built from (informational).
        feature_dim: width Dc of the CLIP point and text features (set from the data / extractor).
        use_rgb: also feed each point's colour (the fused cloud's rgb, scaled to [0, 1]) to the
            visual-position MLP. An addition to the paper: with a weak compact CLIP, colour is the
            most reliable cue for colour words.
        d_model: model width D.
        num_heads: attention heads H.
        num_layers: encoder layers L (self-attention over the semantic cloud + FFN).
        ffn_mult: FFN hidden width as a multiple of ``d_model``.
        dropout: dropout rate in attention outputs and FFNs.
        attention: encoder attention type, one of ``softmax``, ``relu``, ``dssa``, ``mgfa``.
        two_stage: True = 1-Align (language -> vision) then 2-Align on the semantic mask;
            False = BASE, 2-Align over the whole cloud.
        num_points: cloud tokens N the model sees (the cloud is sub-sampled to this many points).
        num_keep: points kept by the 1-Align semantic mask (top-k by relevance).
        max_candidates: candidates C per decision (padding above the real count).
        dssa_buckets: relative-position buckets of DSSA's bias.
        dssa_neighbourhood: ``"serial"``: DSSA orders the tokens along a 3D Z-order curve of their
            positions, convolves the score map over that order and attends within windows of
            ``dssa_window`` tokens (attention.py); ``"rank"``: the original DSSA (global, score
            convolution over the tokens' relevance-rank order). Saved configs without the field
            load as ``"rank"`` (``LEGACY_DEFAULTS``).
        dssa_window: tokens per DSSA serialisation window.
        mgfa_k_keep: keys each query sees directly in MGFA.
        mgfa_memory: MGFA memory slots M.
        posa: enable the pose-conditioned anchor attention loss (PosA-VLA).
        posa_weight: weight of the anchor loss.
        posa_sigma_m: width (metres) of the Gaussian anchor region around the target position
            (``posa_anchor="position"``).
        posa_anchor: ``"pose"``: the anchor is an oriented Gaussian in the expert pose's TCP frame
            (widths ``posa_sigma_tcp_m``), and the 2-Align cross-attention gets the same
            pose-conditioned anchor as a learnable bias (model.py); ``"position"``: the original
            isotropic anchor around the target position, loss only. Saved configs without the
            field load as ``"position"``.
        posa_sigma_tcp_m: anchor widths (metres) along the TCP frame's x (finger width), y
            (closing direction) and z (approach) axes.
        align_loss: enable the cross-modal alignment (InfoNCE) loss (000).
        align_weight: weight of the alignment loss.
        align_temperature: InfoNCE temperature.
        relevance_pool: add the 1-Align relevance pooled around each candidate to its 2-Align score,
            and give candidates with no semantic-mask point within the radius the cloud's lowest
            relevance (model.py, step 5); needs ``two_stage``. Default False so checkpoints saved
            before the field existed load unchanged; the two-stage variants switch it on.
        relevance_pool_radius_m: radius (metres) of that pooling neighbourhood.
        pos_scale: positions (metres, centred on the cloud mean) are multiplied by this before the
            MLPs, so a 0.5 m workspace spans ~[-1, 1].
        lr: Adam learning rate (paper: 1e-4).
        batch_size: training batch (paper: 32).
        weight_decay: Adam weight decay.
    """

    variant: str = "SR"
    # I/O
    feature_dim: int = 256
    use_rgb: bool = True
    # architecture
    d_model: int = 128
    num_heads: int = 4
    num_layers: int = 1
    ffn_mult: int = 2
    dropout: float = 0.0
    attention: str = "dssa"
    two_stage: bool = True
    num_points: int = 1024
    num_keep: int = 256
    max_candidates: int = 64
    dssa_buckets: int = 16
    dssa_neighbourhood: str = "serial"
    dssa_window: int = 64
    mgfa_k_keep: int = 64
    mgfa_memory: int = 8
    pos_scale: float = 4.0
    relevance_pool: bool = False
    relevance_pool_radius_m: float = 0.03
    # auxiliary losses
    posa: bool = False
    posa_weight: float = 0.2
    posa_sigma_m: float = 0.03
    posa_anchor: str = "pose"
    posa_sigma_tcp_m: tuple[float, float, float] = (0.015, 0.04, 0.025)
    align_loss: bool = True
    align_weight: float = 0.1
    align_temperature: float = 0.1
    # training
    lr: float = 1e-4
    batch_size: int = 32
    weight_decay: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.attention not in ATTENTION_TYPES:
            raise ValueError(f"PolicyConfig.attention={self.attention!r}; choose one of {ATTENTION_TYPES}")
        if self.dssa_neighbourhood not in DSSA_NEIGHBOURHOODS:
            raise ValueError(f"PolicyConfig.dssa_neighbourhood={self.dssa_neighbourhood!r}; "
                             f"choose one of {DSSA_NEIGHBOURHOODS}")
        if int(self.dssa_window) < 2:
            raise ValueError(f"PolicyConfig.dssa_window must be >= 2, got {self.dssa_window}")
        if self.posa_anchor not in POSA_ANCHORS:
            raise ValueError(f"PolicyConfig.posa_anchor={self.posa_anchor!r}; choose one of {POSA_ANCHORS}")
        sig = tuple(float(x) for x in self.posa_sigma_tcp_m)
        if len(sig) != 3 or min(sig) <= 0:
            raise ValueError(
                f"PolicyConfig.posa_sigma_tcp_m must be 3 widths > 0 (m), got {self.posa_sigma_tcp_m}")
        self.posa_sigma_tcp_m = sig
        for name in ("feature_dim", "d_model", "num_heads", "num_layers", "ffn_mult", "num_points",
                     "num_keep", "max_candidates", "mgfa_k_keep", "mgfa_memory", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"PolicyConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.d_model % self.num_heads != 0:
            raise ValueError(
                f"PolicyConfig.d_model ({self.d_model}) must be divisible by num_heads ({self.num_heads})"
            )
        if self.two_stage and self.num_keep > self.num_points:
            raise ValueError(
                f"PolicyConfig.num_keep ({self.num_keep}) must be <= num_points ({self.num_points})"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"PolicyConfig.dropout must be in [0, 1), got {self.dropout}")
        for name in ("posa_sigma_m", "align_temperature", "lr", "pos_scale", "relevance_pool_radius_m"):
            if float(getattr(self, name)) <= 0:
                raise ValueError(f"PolicyConfig.{name} must be > 0, got {getattr(self, name)}")
        if self.align_loss and not self.two_stage:
            raise ValueError("PolicyConfig.align_loss needs two_stage=True (it aligns the 1-Align relevance)")
        if self.relevance_pool and not self.two_stage:
            raise ValueError("PolicyConfig.relevance_pool needs two_stage=True (BASE has no 1-Align "
                             "relevance to pool); set relevance_pool=False")

    @classmethod
    def from_variant(cls, name: str, **overrides: Any) -> PolicyConfig:
        """The named variant (``BASE``, ``SR-A``, ``SR``, ``SR+PosA``, ``SR+MGFA``) with overrides."""
        if name not in VARIANTS:
            raise ValueError(f"unknown policy variant {name!r}; choose one of {list(VARIANTS)}")
        kwargs = {**VARIANTS[name], "variant": name, **overrides}
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (saved next to the weights)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PolicyConfig:
        """Inverse of ``to_dict``; unknown keys raise a clear error.

        Fields missing from ``d`` (a config saved before they existed) take ``LEGACY_DEFAULTS``,
        so a shipped checkpoint keeps the behaviour it was trained with.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown PolicyConfig keys {sorted(unknown)}; known keys: {sorted(known)}")
        return cls(**{**{k: v for k, v in LEGACY_DEFAULTS.items() if k not in d}, **d})
