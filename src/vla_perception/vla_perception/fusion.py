# SPDX-License-Identifier: Apache-2.0
"""Multi-view fusion of dense 2D CLIP features into one 3D feature point cloud.

Implements Secondary Realignment §3.2.2 (seeds/001): every candidate 3D point is projected into
every view with the camera intrinsics and extrinsics; the deviation between the projected depth
and the depth measured at that pixel gives an exponentially decaying confidence; the 2D feature map
is sampled bilinearly at the sub-pixel location; the views are fused by a confidence-weighted mean.
The paper's equations were lost in extraction; the standard forms used here are

    c_v(p) = exp(-|z_v(p) - D_v(pi_v(p))| / tau)       (0 outside the image / without depth)
    f(p)   = normalize( sum_v c_v(p) f_v(pi_v(p)) / sum_v c_v(p) )

with z_v the point's depth in camera v, D_v the measured depth (nearest pixel: interpolating depth
across an object edge would invent surfaces) and f_v bilinear in the (D, h, w) patch map. The
default ``tau_m = 0.01`` m: a point on the surface a view measures (error of a few mm from depth
noise and voxel averaging) keeps weight > 0.6, one hidden behind a 3 cm object gets < 0.05.

Candidate points are the back-projected depth pixels of all usable views (sub-sampled by a pixel
stride), cropped to a world workspace box and voxel-downsampled with open3d (5 mm default; the
voxel keeps the mean position and mean colour of its points). A view with no valid depth, a wrong
shape, a non-finite pose, a stale stamp or a malformed feature map is dropped and listed with the
reason in ``FeatureCloud.dropped_views``; points seen by no usable view are removed, so features
are never NaN. Only when no view is usable does :func:`fuse_views` raise.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from vla_common.camera import RGBDFrame


@dataclass
class FusionConfig:
    """Parameters of :func:`fuse_views`.

    Args:
        voxel_size_m: open3d voxel size of the candidate points (0 disables downsampling).
        tau_m: depth-consistency scale of the confidence exp(-|dz| / tau).
        workspace_min: (3,) lower corner of the world crop box, metres.
        workspace_max: (3,) upper corner of the world crop box, metres.
        depth_min_m: depths below this are treated as missing.
        depth_max_m: depths above this are treated as missing.
        pixel_stride: back-project every n-th pixel in u and v (1 = all pixels); 0 = automatic: the
            largest stride whose pixel spacing at the view's median depth stays within one voxel
            (3 for the 640x480 sim rig with 5 mm voxels), so sub-sampling loses no voxel on surfaces
            facing the camera while cutting the points to voxelise ~9x.
        max_stamp_skew_s: a view older than the newest view by more than this is dropped as stale.
        min_confidence: a view's sample with a confidence below this does not contribute.
    """

    voxel_size_m: float = 0.005
    tau_m: float = 0.01
    workspace_min: tuple[float, float, float] = (0.15, -0.5, -0.02)
    workspace_max: tuple[float, float, float] = (0.9, 0.5, 0.4)
    depth_min_m: float = 0.05
    depth_max_m: float = 3.0
    pixel_stride: int = 0
    max_stamp_skew_s: float = 0.5
    min_confidence: float = 1e-3

    def __post_init__(self) -> None:
        if self.voxel_size_m < 0:
            raise ValueError(f"voxel_size_m must be >= 0, got {self.voxel_size_m}")
        if self.tau_m <= 0:
            raise ValueError(f"tau_m must be > 0, got {self.tau_m}")
        if not 0 <= self.depth_min_m < self.depth_max_m:
            raise ValueError(f"need 0 <= depth_min_m < depth_max_m, got {self.depth_min_m}, "
                             f"{self.depth_max_m}")
        if self.pixel_stride < 0:
            raise ValueError(f"pixel_stride must be >= 0 (0 = automatic), got {self.pixel_stride}")
        lo, hi = np.asarray(self.workspace_min, float), np.asarray(self.workspace_max, float)
        if lo.shape != (3,) or hi.shape != (3,) or np.any(lo >= hi):
            raise ValueError(f"workspace_min must be below workspace_max on x, y, z; got {lo} and {hi}")

    @classmethod
    def from_dict(cls, d: dict) -> FusionConfig:
        """Build from a dict (e.g. the ``fusion`` section of config/perception.yaml); unknown keys fail."""
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown fusion parameters {sorted(unknown)}; known: {sorted(known)}")
        d = dict(d)
        for k in ("workspace_min", "workspace_max"):
            if k in d:
                d[k] = tuple(float(x) for x in d[k])
        return cls(**d)


@dataclass
class FeatureCloud:
    """A 3D point cloud with one fused CLIP feature per point.

    Attributes:
        xyz: (N, 3) float32 world coordinates, metres.
        rgb: (N, 3) uint8 mean colour of the voxel.
        features: (N, D) float32 L2-normalised fused features.
        confidence: (N,) float32 best single-view confidence in [0, 1].
        dropped_views: "name: reason" for every view that was not used.
        n_views: (N,) int number of views that contributed to each point.
    """

    xyz: np.ndarray
    rgb: np.ndarray
    features: np.ndarray
    confidence: np.ndarray
    dropped_views: list[str] = field(default_factory=list)
    n_views: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.xyz.shape[0])


class NoUsableViewError(ValueError):
    """Raised when every view was dropped; the message lists each view and why."""


@functools.lru_cache(maxsize=16)
def _camera_rays(intr, stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel grid (every ``stride``-th pixel) and its normalised rays (float32), cached per camera."""
    v, u = np.mgrid[0:intr.height:stride, 0:intr.width:stride]
    u, v = u.ravel(), v.ravel()
    rays = np.stack([(u - intr.cx) / intr.fx, (v - intr.cy) / intr.fy], 1).astype(np.float32)
    for a in (u, v, rays):
        a.flags.writeable = False  # shared by every later call: read-only
    return u, v, rays


def _clean_depth(depth: np.ndarray, cfg: FusionConfig) -> np.ndarray:
    """Depth (H, W) float32 with NaN where missing, non-finite or out of range."""
    d = np.asarray(depth, dtype=np.float32)
    bad = ~np.isfinite(d) | (d < cfg.depth_min_m) | (d > cfg.depth_max_m)
    return np.where(bad, np.float32(np.nan), d)


def check_frame(frame: RGBDFrame | None, newest_stamp_s: float, cfg: FusionConfig) -> str | None:
    """Why ``frame`` cannot be used for geometry, or None when it can."""
    if frame is None:
        return "missing frame"
    try:
        frame.validate()
    except (ValueError, AttributeError, TypeError) as exc:
        return f"malformed: {exc}"
    if not isinstance(frame.stamp_s, (int, float)) or not np.isfinite(frame.stamp_s):
        return f"malformed: stamp_s must be a finite number, got {frame.stamp_s!r}"
    if newest_stamp_s - frame.stamp_s > cfg.max_stamp_skew_s:
        return f"stale: {newest_stamp_s - frame.stamp_s:.3f} s older than the newest view"
    return None


def check_feature_map(fmap: torch.Tensor | np.ndarray | None, dim: int | None) -> str | None:
    """Why a view's (D, h, w) feature map cannot be used, or None when it can."""
    if fmap is None:
        return "missing feature map"
    if getattr(fmap, "ndim", 0) != 3 or (dim is not None and fmap.shape[0] != dim):
        return f"feature map must be (D={dim}, h, w), got {tuple(getattr(fmap, 'shape', ()))}"
    if not bool(torch.isfinite(torch.as_tensor(fmap)).all()):
        return "feature map has non-finite values"
    return None


def _common_dim(maps: list) -> int | None:
    """The feature width D most of the (D, h, w) maps share (None when there is none)."""
    dims = [int(f.shape[0]) for f in maps if f is not None and getattr(f, "ndim", 0) == 3]
    return max(set(dims), key=dims.count) if dims else None


def _no_depth_reason(cfg: FusionConfig) -> str:
    return f"no valid depth (all NaN, zero or outside [{cfg.depth_min_m}, {cfg.depth_max_m}] m)"


def pixel_stride(frame: RGBDFrame, depth: np.ndarray, cfg: FusionConfig) -> int:
    """The configured stride, or (0 = automatic) pixel spacing <= one voxel at the median depth."""
    if cfg.pixel_stride > 0:
        return cfg.pixel_stride
    if cfg.voxel_size_m <= 0:
        return 1
    z = np.nanmedian(depth[::8, ::8]) if np.isfinite(depth[::8, ::8]).any() else np.nanmedian(depth)
    f = min(frame.intrinsics.fx, frame.intrinsics.fy)
    return int(max(1, np.floor(cfg.voxel_size_m * f / float(z))))


def backproject(frame: RGBDFrame, cfg: FusionConfig,
                depth: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """World points (M, 3) float32 and colours (M, 3) uint8 of the valid depth pixels of one view.

    ``depth`` is the view's depth after ``_clean_depth`` when the caller has it already.
    """
    depth = _clean_depth(frame.depth, cfg) if depth is None else depth
    u, v, rays = _camera_rays(frame.intrinsics, pixel_stride(frame, depth, cfg))
    z = depth[v, u]
    ok = np.isfinite(z)
    z, rays, u, v = z[ok], rays[ok], u[ok], v[ok]
    T = np.asarray(frame.T_world_cam, dtype=np.float32)
    # p_world = R (z [x_n, y_n, 1]) + t, without building the (M, 3) camera-frame array first
    pw = (rays @ T[:3, :2].T + T[:3, 2]) * z[:, None] + T[:3, 3]  # (M, 3)
    return pw, frame.rgb[v, u]


def crop_workspace(xyz: np.ndarray, cfg: FusionConfig) -> np.ndarray:
    """Boolean mask (M,) of points inside the workspace box."""
    lo, hi = cfg.workspace_min, cfg.workspace_max
    x, y, z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    return (x >= lo[0]) & (x <= hi[0]) & (y >= lo[1]) & (y <= hi[1]) & (z >= lo[2]) & (z <= hi[2])


def voxel_downsample(xyz: np.ndarray, rgb: np.ndarray, voxel_m: float) -> tuple[np.ndarray, np.ndarray]:
    """open3d voxel downsampling: mean position and mean colour per occupied voxel."""
    if voxel_m <= 0 or len(xyz) == 0:
        return xyz, rgb
    import open3d as o3d

    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.ascontiguousarray(xyz, dtype=np.float64)))
    pcd.colors = o3d.utility.Vector3dVector(np.ascontiguousarray(rgb, dtype=np.float64) / 255.0)
    down = pcd.voxel_down_sample(voxel_m)
    col = np.clip(np.asarray(down.colors) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.asarray(down.points), col


def project(xyz: np.ndarray, frame: RGBDFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project world points into one view.

    Returns:
        u, v: (N,) float pixel coordinates (pixel centres at integers), in xyz's float type.
        z: (N,) depth along the optical axis, metres (<= 0 behind the camera).
    """
    T = np.asarray(frame.T_world_cam, dtype=xyz.dtype if xyz.dtype == np.float32 else np.float64)
    R, t = T[:3, :3], T[:3, 3]
    pc = xyz @ R - t @ R  # (N, 3) = R^T (p - t)
    z = pc[:, 2]
    zs = np.where(z > 1e-6, z, np.inf)
    k = frame.intrinsics
    return k.fx * pc[:, 0] / zs + k.cx, k.fy * pc[:, 1] / zs + k.cy, z


def view_confidence(xyz: np.ndarray, frame: RGBDFrame, cfg: FusionConfig,
                    depth: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Depth-consistency confidence of each point in one view.

    Returns:
        conf: (N,) float32 exp(-|z - D(u, v)| / tau), 0 outside the image or without depth.
        u, v: (N,) projected pixel coordinates.
    """
    depth = _clean_depth(frame.depth, cfg) if depth is None else depth
    u, v, z = project(xyz, frame)
    h, w = depth.shape
    ui, vi = np.rint(u), np.rint(v)
    inside = (z > 1e-6) & (ui >= 0) & (ui <= w - 1) & (vi >= 0) & (vi <= h - 1)
    conf = np.zeros(len(xyz), dtype=np.float32)
    idx = np.flatnonzero(inside)
    d_meas = depth[vi[idx].astype(np.intp), ui[idx].astype(np.intp)]
    c = np.exp(-np.abs(z[idx] - d_meas) / cfg.tau_m)
    conf[idx] = np.where(np.isfinite(c), c, 0.0)
    conf[conf < cfg.min_confidence] = 0.0
    return conf, u, v


def bilinear_taps(u: np.ndarray, v: np.ndarray, width: int, height: int, h: int,
                  w: int) -> tuple[np.ndarray, np.ndarray]:
    """The 4 bilinear taps of image pixels (u, v) in an (h, w) patch grid covering the image.

    Same sampling as ``F.grid_sample(..., align_corners=False, padding_mode="border")``: a pixel
    at u covers [u - 0.5, u + 0.5] and the grid's cells cover the image evenly.

    Returns:
        cols: (N, 4) int64 flat patch indices (y * w + x).
        vals: (N, 4) float32 weights summing to 1 per point.
    """
    gx = np.clip((np.asarray(u, np.float32) + 0.5) * np.float32(w / width) - 0.5, 0.0, w - 1.0)
    gy = np.clip((np.asarray(v, np.float32) + 0.5) * np.float32(h / height) - 0.5, 0.0, h - 1.0)
    gx = np.nan_to_num(gx, nan=0.0)
    gy = np.nan_to_num(gy, nan=0.0)
    x0, y0 = np.floor(gx).astype(np.int64), np.floor(gy).astype(np.int64)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = gx - x0, gy - y0
    cols = np.stack([y0 * w + x0, y0 * w + x1, y1 * w + x0, y1 * w + x1], axis=1)
    vals = np.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], axis=1).astype(np.float32)
    return cols, vals


@dataclass
class FusionGeometry:
    """The feature-independent half of fusion: candidate points and every view's confidences.

    It depends on depth and poses only, so :class:`~vla_perception.pipeline.PerceptionPipeline`
    computes it while the CLIP tower runs on the same frames.

    Attributes:
        xyz: (N, 3) float32 voxelised candidate points, world frame, metres.
        rgb: (N, 3) uint8 mean colour per voxel.
        views: (input index, name) of each usable view, in order.
        conf: (V, N) float32 depth-consistency confidence of each point in each usable view.
        u: (V, N) float32 projected pixel column of each point in each usable view.
        v: (V, N) float32 projected pixel row.
        image_sizes: (width, height) of each usable view.
        dropped_views: "name: reason" for every view that was not used.
        timings_ms: ``downsampling`` and ``projection`` (back-projection, crop, confidences) in ms.
        grid_hw: the (h, w) patch grid the taps were precomputed for, or None.
        taps: precomputed when ``grid_hw`` was given: the bilinear taps of every point in all usable
            views' ``grid_hw`` maps stacked in view order, cols (N, 4V) (view k's patches offset by
            k h w) and confidence-weighted vals (N, 4V).
    """

    xyz: np.ndarray
    rgb: np.ndarray
    views: list[tuple[int, str]]
    conf: np.ndarray
    u: np.ndarray
    v: np.ndarray
    image_sizes: list[tuple[int, int]]
    dropped_views: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    grid_hw: tuple[int, int] | None = None
    taps: tuple[np.ndarray, np.ndarray] | None = None

    def view_taps(self, k: int, h: int, w: int, seen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bilinear taps of view ``k``'s points in ``seen`` for an (h, w) patch map.

        Returns cols (n, 4) and confidence-weighted vals (n, 4).
        """
        width, height = self.image_sizes[k]
        cols, vals = bilinear_taps(self.u[k, seen], self.v[k, seen], width, height, h, w)
        return cols, vals * self.conf[k, seen][:, None]


def _view_name(frame: RGBDFrame | None, i: int) -> str:
    return getattr(frame, "name", None) or f"view{i}"


def fusion_geometry(frames: list[RGBDFrame | None], cfg: FusionConfig | None = None,
                    skip: dict[int, str] | None = None,
                    grid_hw: tuple[int, int] | None = None) -> FusionGeometry:
    """Candidate points of all usable views and their per-view confidences (module docstring).

    Points no usable view sees with confidence > 0 are removed here.

    Args:
        frames: V RGB-D frames (None entries are missing views).
        cfg: fusion parameters; defaults when None.
        skip: views already known to be unusable (input index -> reason), e.g. a bad feature map.
        grid_hw: the (h, w) patch grid of the feature maps to come, when known: their bilinear
            taps are then precomputed here (off the critical path when overlapped with CLIP).

    Raises:
        NoUsableViewError: when no view is usable (the message lists each view's reason).
    """
    cfg = cfg or FusionConfig()
    skip = skip or {}
    t0 = time.perf_counter()
    stamps = [f.stamp_s for f in frames
              if f is not None and isinstance(getattr(f, "stamp_s", None), (int, float))]
    newest = max(stamps) if stamps else 0.0
    usable: list[tuple[int, RGBDFrame, np.ndarray]] = []
    dropped: list[str] = []
    for i, frame in enumerate(frames):
        reason = check_frame(frame, newest, cfg) or skip.get(i)
        depth = None
        if reason is None:
            depth = _clean_depth(frame.depth, cfg)
            if not np.isfinite(depth).any():
                reason = _no_depth_reason(cfg)
        if reason is None:
            usable.append((i, frame, depth))
        else:
            dropped.append(f"{_view_name(frame, i)}: {reason}")
    if not usable:
        raise NoUsableViewError("no usable camera view: " + "; ".join(dropped) if dropped else
                                "fuse_views got no views")

    # Candidate points: back-projected depth of all usable views, cropped, voxelised.
    pts, cols = [], []
    for _, frame, depth in usable:
        p, c = backproject(frame, cfg, depth)
        keep = crop_workspace(p, cfg)
        pts.append(p[keep])
        cols.append(c[keep])
    xyz, rgb = np.concatenate(pts), np.concatenate(cols)
    t1 = time.perf_counter()
    xyz, rgb = voxel_downsample(xyz, rgb, cfg.voxel_size_m)
    xyz = np.ascontiguousarray(xyz, dtype=np.float32)
    t2 = time.perf_counter()
    conf, us, vs = (np.stack(a) for a in zip(*(view_confidence(xyz, frame, cfg, depth)
                                                for _, frame, depth in usable)))  # (V, N) each
    seen = conf.sum(0) > 0
    geometry = FusionGeometry(
        xyz=xyz[seen], rgb=rgb[seen], views=[(i, _view_name(f, i)) for i, f, _ in usable],
        conf=conf[:, seen], u=us[:, seen].astype(np.float32), v=vs[:, seen].astype(np.float32),
        image_sizes=[(f.intrinsics.width, f.intrinsics.height) for _, f, _ in usable],
        dropped_views=dropped)
    if grid_hw is not None:
        everything = np.ones(len(geometry.xyz), dtype=bool)
        taps = [geometry.view_taps(k, *grid_hw, everything) for k in range(len(usable))]
        cells = grid_hw[0] * grid_hw[1]
        # the bag of all views, for the usual case that every view's map arrives (fuse_features)
        geometry.taps = (np.concatenate([c + k * cells for k, (c, _) in enumerate(taps)], axis=1),
                         np.concatenate([v for _, v in taps], axis=1))  # (N, 4V) each
        geometry.grid_hw = tuple(grid_hw)
    t3 = time.perf_counter()
    geometry.timings_ms = {"downsampling": (t2 - t1) * 1e3, "projection": (t1 - t0 + t3 - t2) * 1e3}
    return geometry


def fuse_features(geometry: FusionGeometry, feature_maps: list) -> FeatureCloud:
    """Fuse the usable views' (D, h, w) feature maps at the geometry's points (module docstring).

    Args:
        geometry: from :func:`fusion_geometry` on the same frames.
        feature_maps: one (D, h, w) tensor or array per INPUT frame (None = missing), indexed like
            the frames given to :func:`fusion_geometry`.

    Returns:
        The fused :class:`FeatureCloud`; a view whose map is missing, malformed or non-finite is
        dropped here (its points stay only where another view sees them). Its timings are in
        ``geometry.timings_ms`` (``fusion`` added here).

    Raises:
        NoUsableViewError: when no usable view has a usable feature map.
    """
    t0 = time.perf_counter()
    dim = _common_dim([feature_maps[i] for i, _ in geometry.views if i < len(feature_maps)])
    dropped = list(geometry.dropped_views)
    rows, maps = [], []
    for k, (i, name) in enumerate(geometry.views):
        fmap = feature_maps[i] if i < len(feature_maps) else None
        reason = check_feature_map(fmap, dim)
        if reason is None:
            rows.append(k)
            maps.append(torch.as_tensor(fmap, dtype=torch.float32).cpu())
        else:
            dropped.append(f"{name}: {reason}")
    if not rows:
        raise NoUsableViewError("no usable camera view: " + "; ".join(dropped))
    conf = geometry.conf[rows]  # (V', N)
    w_sum = conf.sum(0)
    seen = w_sum > 0

    # Every fused feature is a weighted sum of patch features (4 bilinear taps per view, weighted
    # by the view's confidence): one weighted bag of 4V patch rows per point, which
    # F.embedding_bag computes without materialising the (n, 4V, D) gather (~3x faster than a
    # sparse CSR (n, V*h*w) x (V*h*w, D) product here, and far less memory than V dense samplings).
    grids = {tuple(m.shape[1:]) for m in maps}
    if geometry.taps is not None and len(rows) == len(geometry.views) and grids == {geometry.grid_hw}:
        cols, vals = (torch.from_numpy(a) for a in geometry.taps)  # (n, 4V) each, precomputed
    else:
        cols_list, vals_list = [], []
        offset = 0
        for k, fmap in zip(rows, maps):
            c, v = geometry.view_taps(k, fmap.shape[1], fmap.shape[2], seen)  # (n, 4) each
            cols_list.append(c + offset)
            vals_list.append(v)
            offset += fmap.shape[1] * fmap.shape[2]
        cols = torch.from_numpy(np.concatenate(cols_list, axis=1))  # (n, 4V)
        vals = torch.from_numpy(np.concatenate(vals_list, axis=1))  # (n, 4V)
    patches = torch.cat([m.reshape(m.shape[0], -1).T for m in maps]).contiguous()  # (P, D)
    feats = F.embedding_bag(cols, patches, per_sample_weights=vals, mode="sum")  # (n, D)
    # normalise in place: F.normalize's broadcast division took ~18 ms here for (28k, 128)
    feats = feats.div_(torch.linalg.vector_norm(feats, dim=1, keepdim=True).clamp_min_(1e-12)).numpy()
    geometry.timings_ms["fusion"] = (time.perf_counter() - t0) * 1e3
    return FeatureCloud(xyz=geometry.xyz[seen], rgb=geometry.rgb[seen], features=feats,
                        confidence=conf.max(0)[seen], dropped_views=dropped,
                        n_views=(conf > 0).sum(0).astype(np.int32)[seen])


def fuse_views(frames: list[RGBDFrame], feature_maps: list, cfg: FusionConfig | None = None,
               timings_ms: dict | None = None) -> FeatureCloud:
    """Fuse per-view (D, h, w) feature maps into one 3D feature cloud (module docstring).

    :func:`fusion_geometry` followed by :func:`fuse_features`; a view with a bad feature map is
    dropped before its depth contributes candidate points.

    Args:
        frames: V RGB-D frames (None entries are treated as missing views).
        feature_maps: V matching (D, h, w) torch tensors or arrays (None = missing).
        cfg: fusion parameters; defaults when None.
        timings_ms: if given, filled with ``downsampling`` and ``projection_fusion`` milliseconds.

    Returns:
        The fused :class:`FeatureCloud`; unusable views are listed in ``dropped_views``.

    Raises:
        NoUsableViewError: when no view is usable (the message lists each view's reason).
    """
    if len(feature_maps) != len(frames):
        raise ValueError(f"fuse_views got {len(frames)} frames but {len(feature_maps)} feature maps")
    dim = _common_dim(feature_maps)
    skip = {i: r for i, f in enumerate(feature_maps) if (r := check_feature_map(f, dim)) is not None}
    geometry = fusion_geometry(frames, cfg, skip)
    cloud = fuse_features(geometry, feature_maps)
    if timings_ms is not None:
        t = geometry.timings_ms
        timings_ms["downsampling"] = t["downsampling"]
        timings_ms["projection_fusion"] = t["projection"] + t["fusion"]
    return cloud
