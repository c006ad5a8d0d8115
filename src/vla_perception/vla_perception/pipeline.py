# SPDX-License-Identifier: Apache-2.0
"""RGB-D frames -> dense CLIP features per view -> fused 3D feature cloud (SR §3.2), with timings.

:class:`PerceptionPipeline` is the plain-Python core the perception node wraps: it runs the CLIP
image tower once on all usable views (one batch), fuses the maps with
:mod:`vla_perception.fusion`, and records per-stage wall times in ``last_timings_ms``.

The geometry half of fusion (back-projection, crop, voxel grid, per-view confidences, bilinear
taps) needs depth and poses only, so it runs on a worker thread while the CLIP tower runs on the
calling thread (numpy and torch release the GIL in their kernels; open3d's voxel grid does not, so
CLIP stalls for its ~7 ms); only the feature half (the confidence-weighted sum, normalisation)
waits for CLIP. ``last_timings_ms`` holds ``clip``, ``projection_fusion``, ``downsampling`` (stage
durations; the first two overlap in wall time), ``wait_geometry`` (how long the geometry outlasted
CLIP) and ``total`` (wall time of the frame).
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vla_common.camera import RGBDFrame
from vla_perception.clip_features import ClipFeatureExtractor
from vla_perception.fusion import FeatureCloud, FusionConfig, fuse_features, fusion_geometry

logger = logging.getLogger(__name__)


@dataclass
class PerceptionConfig:
    """Parameters of :class:`PerceptionPipeline`.

    Args:
        clip_model: ``compact``, a checkpoint directory or an open_clip model name.
        clip_pretrained: open_clip tag or local checkpoint for a named model (None = random init).
        clip_readout: ``maskclip`` / ``tokens`` or None for the model's default.
        device: torch device.
        threads: torch CPU threads; 0 = automatic: one core fewer than the machine has when
            ``overlap_geometry`` is on (that core runs the geometry), else all of them.
        overlap_geometry: run the geometry half of fusion on a worker thread during CLIP.
        fusion: fusion parameters.
    """

    clip_model: str = "compact"
    clip_pretrained: str | None = None
    clip_readout: str | None = None
    device: str = "cpu"
    threads: int = 0
    overlap_geometry: bool = True
    fusion: FusionConfig = field(default_factory=FusionConfig)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PerceptionConfig:
        """From a plain dict such as the ``pipeline`` section of config/perception.yaml."""
        d = dict(d)
        fusion = FusionConfig.from_dict(d.pop("fusion", {}) or {})
        known = set(cls.__dataclass_fields__) - {"fusion"}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown perception parameters {sorted(unknown)}; known: {sorted(known)}")
        if d.get("clip_pretrained") == "":
            d["clip_pretrained"] = None
        if d.get("clip_readout") == "":
            d["clip_readout"] = None
        return cls(fusion=fusion, **d)

    @classmethod
    def from_yaml(cls, path: str | Path) -> PerceptionConfig:
        """From config/perception.yaml (``perception: ros__parameters:`` keys, fusion.* flattened)."""
        from vla_common.config import load_node_params

        params = load_node_params(path, "perception")
        return cls.from_dict(params_to_dict(params))


def auto_threads(overlap_geometry: bool) -> int:
    """Torch threads for ``threads: 0``: all cores, less the one the geometry worker uses."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores - 1) if overlap_geometry else cores


def params_to_dict(params: dict[str, Any]) -> dict[str, Any]:
    """ROS-style flat parameters (``fusion.voxel_size_m``) -> nested dict; node-only keys dropped."""
    out: dict[str, Any] = {"fusion": {}}
    fields = set(PerceptionConfig.__dataclass_fields__)
    for k, v in params.items():
        if k.startswith("fusion."):
            out["fusion"][k.split(".", 1)[1]] = v
        elif k in fields:
            out[k] = v
        elif isinstance(v, dict) and k == "fusion":
            out["fusion"].update(v)
    return out


class PerceptionPipeline:
    """CLIP + multi-view fusion.

    Args:
        cfg: a :class:`PerceptionConfig` (or a dict for :meth:`PerceptionConfig.from_dict`).
        extractor: an existing :class:`ClipFeatureExtractor` to share (e.g. with the policy).
    """

    def __init__(self, cfg: PerceptionConfig | dict | None = None,
                 extractor: ClipFeatureExtractor | None = None) -> None:
        if cfg is None:
            cfg = PerceptionConfig()
        elif isinstance(cfg, dict):
            cfg = PerceptionConfig.from_dict(cfg)
        self.cfg = cfg
        if cfg.threads < 0:
            raise ValueError(f"threads must be >= 0 (0 = automatic), got {cfg.threads}")
        torch.set_num_threads(cfg.threads or auto_threads(cfg.overlap_geometry))
        self.clip = extractor or ClipFeatureExtractor(cfg.clip_model, cfg.clip_pretrained, cfg.device,
                                                      cfg.clip_readout)
        self.last_timings_ms: dict[str, float] = {}
        self._pool: ThreadPoolExecutor | None = None

    def feature_maps(self, frames: list[RGBDFrame]) -> list[torch.Tensor | None]:
        """Dense CLIP maps (D, h, w) per frame; None for frames whose rgb cannot be used."""
        ok = [i for i, f in enumerate(frames)
              if f is not None and isinstance(getattr(f, "rgb", None), np.ndarray) and f.rgb.ndim == 3
              and f.rgb.shape[2] == 3 and f.rgb.dtype == np.uint8 and f.rgb.size > 0]
        maps: list[torch.Tensor | None] = [None] * len(frames)
        # views of different sizes go through the tower in one batch per size
        by_size: dict[tuple, list[int]] = {}
        for i in ok:
            by_size.setdefault(frames[i].rgb.shape, []).append(i)
        for idx in by_size.values():
            out = self.clip.dense(np.stack([frames[i].rgb for i in idx]))  # (v, D, h, w)
            for k, i in enumerate(idx):
                maps[i] = out[k]
        return maps

    def process(self, frames: list[RGBDFrame]) -> FeatureCloud:
        """Fuse one synchronised set of views.

        Raises:
            NoUsableViewError: every view was unusable (see ``fusion.fuse_views``).
        """
        t0 = time.perf_counter()
        if self.cfg.overlap_geometry:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fusion-geometry")
            pending = self._pool.submit(fusion_geometry, frames, self.cfg.fusion, None,
                                       tuple(self.clip.grid_size))
            maps = self.feature_maps(frames)
            t1 = time.perf_counter()
            geometry = pending.result()  # raises NoUsableViewError like the sequential path
        else:
            maps = self.feature_maps(frames)
            t1 = time.perf_counter()
            geometry = fusion_geometry(frames, self.cfg.fusion)
        t2 = time.perf_counter()
        cloud = fuse_features(geometry, maps)
        t3 = time.perf_counter()
        g = geometry.timings_ms
        self.last_timings_ms = {"clip": (t1 - t0) * 1e3, "downsampling": g["downsampling"],
                                "projection_fusion": g["projection"] + g["fusion"],
                                "wait_geometry": (t2 - t1) * 1e3, "total": (t3 - t0) * 1e3}
        return cloud

    def close(self) -> None:
        """Stop the geometry worker thread (also done at interpreter exit)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def text(self, texts: list[str]) -> torch.Tensor:
        """(T, D) normalised text embeddings from the same CLIP."""
        return self.clip.text(texts)
