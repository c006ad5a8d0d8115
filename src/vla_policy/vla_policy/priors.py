# SPDX-License-Identifier: Apache-2.0
"""Action priors from the fused point cloud alone (SR paper 001, Sec. 3.4.1; replaces GraspNet).

GraspNet weights cannot be downloaded here, so grasp candidates come from geometry only; nothing
from the simulator (object poses, segmentation) is used.

Grasp candidates (``grasp_candidates``), for a parallel gripper with an 85 mm stroke; TCP frame as
in docs/ARCHITECTURE.md: origin between the fingertips, z = approach direction (out of the
gripper), y = closing direction:

1. Support plane: RANSAC plane fit (open3d ``segment_plane``) of the cloud, accepted when its
   normal is within 20 deg of world z; points more than ``min_height_m`` above it are object points.
2. Object points are clustered (open3d DBSCAN) and normals are estimated (open3d, hybrid KNN
   search) and oriented away from their cluster's centroid.
3. Antipodal sampling: for seed points spread over every cluster, a partner point in the same
   cluster at a distance w in [min_width, stroke - clearance] is searched such that the segment
   u = (q - p)/|q - p| enters the surface at p and leaves at q within the friction cone:
   ``-u . n_p >= cos(theta)`` and ``u . n_q >= cos(theta)`` (theta = 20 deg). Closing axis y = u,
   centre (p + q)/2; approach axes z orthogonal to y, from the most top-down one tilted about y by
   ``approach_tilts_deg``; TCP pushed ``depths_m`` along z past the contact line.
4. Top-down grasps: per cluster, PCA of its points in the table plane gives the narrow horizontal
   axis (closing y) and approach z = -world z at the cluster's top (plus yaw variants and offsets
   along the long axis for long objects), kept when the narrow extent fits the stroke.
5. Collision check against the cloud: the two fingers (at full opening) and the palm are boxes in
   the TCP frame; a candidate is dropped when more than ``max_collision_points`` cloud points fall
   inside them, when a box dips below the support plane, or when fewer than
   ``min_points_between`` points lie between the fingers.
6. Pre-grasping prior (ranking and pruning): the paper's learned pre-grasping prior is replaced by a
   documented geometric prior (no learned scorer yet): score = 0.5 * antipodal quality (friction-
   cone cosine, 1 for PCA top-down grasps with a well-defined narrow axis) + 0.3 * top-down-ness
   (-z_approach . world z) + 0.2 * fill (fraction of the finger gap holding points); then
   non-maximum suppression (1 cm, 20 deg, with the 180 deg symmetry about z of a parallel gripper)
   and a round-robin over clusters so every object keeps candidates, up to ``max_candidates``.

Place candidates (``place_candidates``): a height map (1 cm cells) over the cloud; a site on a
coarser grid is free when the disc of radius ``place_clearance_m`` around it is fully observed and
flat (heights within ``place_flat_tol_m``); this gives table sites and flat object tops. The pose
is top-down (z = -world z) at ``place_height_m`` above the surface, with ``place_yaws_deg`` yaws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

WORLD_UP = np.array([0.0, 0.0, 1.0])


@dataclass
class GripperSpec:
    """Parallel gripper geometry in the TCP frame (metres).

    Args:
        stroke_m: maximum opening between the finger pads.
        finger_length_m: finger length along z (tips at z = 0, base at z = -length).
        finger_thickness_m: finger thickness along y.
        finger_width_m: finger width along x.
        palm_size_m: palm box extent (x, y, z); it sits behind the finger bases.
    """

    stroke_m: float = 0.085
    finger_length_m: float = 0.045
    finger_thickness_m: float = 0.012
    finger_width_m: float = 0.022
    palm_size_m: tuple[float, float, float] = (0.05, 0.2, 0.06)

    def boxes(self) -> np.ndarray:
        """(3, 2, 3) axis-aligned boxes [min, max] in the TCP frame: left finger, right finger, palm."""
        h = self.stroke_m / 2
        fx = self.finger_width_m / 2
        L = self.finger_length_m
        t = self.finger_thickness_m
        px, py, pz = self.palm_size_m
        return np.array([
            [[-fx, h, -L], [fx, h + t, 0.0]],
            [[-fx, -h - t, -L], [fx, -h, 0.0]],
            [[-px / 2, -py / 2, -L - pz], [px / 2, py / 2, -L]],
        ])


@dataclass
class PriorConfig:
    """Parameters of the grasp and place priors (see the module docstring).

    Args:
        gripper: gripper geometry.
        min_height_m: points this far above the support plane count as objects.
        normal_radius_m: open3d normal-estimation radius.
        cluster_eps_m: DBSCAN neighbourhood radius.
        cluster_min_points: DBSCAN minimum cluster size.
        num_seeds: antipodal seed points over the whole cloud.
        friction_deg: friction-cone half angle of the antipodal test.
        min_width_m: smallest grasp width.
        width_clearance_m: the pair's width must be below stroke - clearance.
        approach_tilts_deg: rotations of the approach axis about the closing axis.
        depths_m: TCP offsets along the approach past the contact line.
        max_collision_points: cloud points tolerated inside the gripper boxes (noise).
        min_points_between: points required between the fingers.
        max_candidates: candidates returned.
        max_checked: poses collision-checked at most (best pre-scores, round-robin over clusters).
        nms_dist_m: NMS distance.
        nms_angle_deg: NMS angle.
        place_cell_m: height-map cell for place candidates.
        place_step_m: spacing of place sites.
        place_clearance_m: free radius around a place site.
        place_flat_tol_m: height tolerance within the disc.
        place_height_m: TCP height above the surface at release.
        place_yaws_deg: yaws of the top-down place poses.
        max_place_candidates: place candidates returned.
    """

    gripper: GripperSpec = None  # type: ignore[assignment]
    min_height_m: float = 0.008
    normal_radius_m: float = 0.012
    cluster_eps_m: float = 0.012
    cluster_min_points: int = 15
    num_seeds: int = 400
    friction_deg: float = 20.0
    min_width_m: float = 0.008
    width_clearance_m: float = 0.01
    approach_tilts_deg: tuple[float, ...] = (0.0, 30.0, -30.0, 60.0, -60.0)
    depths_m: tuple[float, ...] = (0.005, 0.015)
    max_collision_points: int = 2
    min_points_between: int = 5
    max_candidates: int = 64
    max_checked: int = 600
    nms_dist_m: float = 0.01
    nms_angle_deg: float = 20.0
    place_cell_m: float = 0.01
    place_step_m: float = 0.03
    place_clearance_m: float = 0.04
    place_flat_tol_m: float = 0.008
    place_height_m: float = 0.05
    place_yaws_deg: tuple[float, ...] = (0.0,)
    max_place_candidates: int = 64

    def __post_init__(self) -> None:
        if self.gripper is None:
            self.gripper = GripperSpec()
        if not 0 < self.friction_deg < 90:
            raise ValueError(f"PriorConfig.friction_deg must be in (0, 90), got {self.friction_deg}")
        if self.min_width_m >= self.gripper.stroke_m - self.width_clearance_m:
            raise ValueError("PriorConfig.min_width_m must be below stroke_m - width_clearance_m")
        for name in ("num_seeds", "max_candidates", "max_place_candidates"):
            if getattr(self, name) < 1:
                raise ValueError(f"PriorConfig.{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class GraspSet:
    """Ranked grasp candidates.

    Attributes:
        poses: (C, 4, 4) T_world_tool, best first.
        widths: (C,) contact width in metres (the opening needed).
        scores: (C,) geometric prior score in [0, 1].
        cluster: (C,) index of the point cluster the grasp is on.
    """

    poses: np.ndarray
    widths: np.ndarray
    scores: np.ndarray
    cluster: np.ndarray

    def __len__(self) -> int:
        return int(self.poses.shape[0])


def _xyz(cloud) -> np.ndarray:
    xyz = np.asarray(getattr(cloud, "xyz", cloud), dtype=np.float64)
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise ValueError(f"cloud must have xyz of shape (N, 3); got {xyz.shape}")
    finite = np.isfinite(xyz).all(1)
    return xyz[finite]


def support_plane(xyz: np.ndarray) -> tuple[np.ndarray, float]:
    """Dominant horizontal plane (unit normal n with n_z > 0, offset d: n . x + d = 0).

    Falls back to z = 2nd percentile of the cloud when RANSAC finds no near-horizontal plane.
    """
    import open3d as o3d

    if len(xyz) >= 50:
        pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(xyz))
        o3d.utility.random.seed(0)
        model, inliers = pcd.segment_plane(distance_threshold=0.004, ransac_n=3, num_iterations=200)
        n = np.asarray(model[:3], dtype=np.float64)
        d = float(model[3])
        norm = np.linalg.norm(n)
        if norm > 0 and len(inliers) > 0.1 * len(xyz):
            n, d = n / norm, d / norm
            if n[2] < 0:
                n, d = -n, -d
            if n[2] > np.cos(np.deg2rad(20)):
                return n, d
    return WORLD_UP.copy(), -float(np.percentile(xyz[:, 2], 2))


def _frames(y: np.ndarray, z: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(M,3) closing y, approach z (orthonormal), positions t -> (M,4,4) with x = y cross z."""
    x = np.cross(y, z)
    T = np.tile(np.eye(4), (len(t), 1, 1))
    T[:, :3, 0], T[:, :3, 1], T[:, :3, 2], T[:, :3, 3] = x, y, z, t
    return T


def _rotate_about(v: np.ndarray, axis: np.ndarray, ang: float) -> np.ndarray:
    """Rodrigues rotation of rows v about unit rows axis by ang radians."""
    c, s = np.cos(ang), np.sin(ang)
    return v * c + np.cross(axis, v) * s + axis * (axis * v).sum(-1, keepdims=True) * (1 - c)


def _topdown_axis(y: np.ndarray) -> np.ndarray:
    """Approach axes orthogonal to closing axes y, as close to -world z as possible."""
    down = np.broadcast_to(-WORLD_UP, y.shape)
    z = down - (down * y).sum(-1, keepdims=True) * y
    n = np.linalg.norm(z, axis=-1, keepdims=True)
    alt = np.cross(y, np.array([1.0, 0.0, 0.0]))
    alt_bad = np.linalg.norm(alt, axis=-1, keepdims=True) < 1e-3
    alt = np.where(alt_bad, np.cross(y, np.array([0.0, 1.0, 0.0])), alt)
    z = np.where(n > 1e-3, z / np.maximum(n, 1e-9), alt / np.linalg.norm(alt, axis=-1, keepdims=True))
    return z


class _Scene:
    """Cloud analysed once: plane, object points, clusters, oriented normals, KD-tree."""

    def __init__(self, xyz: np.ndarray, cfg: PriorConfig) -> None:
        import open3d as o3d

        self.xyz = xyz
        self.n, self.d = support_plane(xyz)
        self.height = xyz @ self.n + self.d  # (N,)
        obj = self.height > cfg.min_height_m
        self.obj_xyz = xyz[obj]
        # collision cloud: everything above the plane (the plane itself is checked analytically)
        self.coll_xyz = xyz[self.height > 0.003]
        self.tree = cKDTree(self.coll_xyz if len(self.coll_xyz) else np.zeros((1, 3)) + 1e6)
        self.labels = np.zeros(0, dtype=int)
        self.normals = np.zeros((0, 3))
        if len(self.obj_xyz) < cfg.cluster_min_points:
            return
        pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(self.obj_xyz))
        self.labels = np.asarray(
            pcd.cluster_dbscan(eps=cfg.cluster_eps_m, min_points=min(cfg.cluster_min_points, 8)), dtype=int
        )
        pcd.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=cfg.normal_radius_m, max_nn=30))
        normals = np.asarray(pcd.normals).copy()
        for lab in np.unique(self.labels):
            if lab < 0:
                continue
            m = self.labels == lab
            if m.sum() < cfg.cluster_min_points:
                self.labels[m] = -1
                continue
            c = self.obj_xyz[m].mean(0)
            # orient outward: away from the cluster centroid, but a near-horizontal face points up
            out = self.obj_xyz[m] - c
            flip = (normals[m] * out).sum(-1) < 0
            nm = normals[m]
            nm[flip] *= -1
            normals[m] = nm
        up_face = np.abs(normals @ self.n) > 0.9
        normals[up_face] *= np.sign(normals[up_face] @ self.n)[:, None]
        self.normals = normals

    def clusters(self) -> list[int]:
        return [int(lab) for lab in np.unique(self.labels) if lab >= 0]


def _antipodal(scene: _Scene, cfg: PriorConfig, rng: np.random.Generator):
    """Antipodal pairs -> (y (M,3), centre (M,3), width (M,), quality (M,), cluster (M,))."""
    pts, nrm, lab = scene.obj_xyz, scene.normals, scene.labels
    valid = np.flatnonzero(lab >= 0)
    if len(valid) == 0:
        return (np.zeros((0, 3)),) * 2 + (np.zeros(0),) * 2 + (np.zeros(0, dtype=int),)
    # spread seeds: one random point per 1.5 cm cell, then cap
    cells = np.floor(pts[valid] / 0.015).astype(np.int64)
    _, first = np.unique(cells, axis=0, return_index=True)
    seeds = valid[first]
    if len(seeds) > cfg.num_seeds:
        seeds = rng.choice(seeds, cfg.num_seeds, replace=False)
    tree = cKDTree(pts)
    cos_t = np.cos(np.deg2rad(cfg.friction_deg))
    w_max = cfg.gripper.stroke_m - cfg.width_clearance_m
    ys, cs, ws, qs, ls = [], [], [], [], []
    for i, nbrs in zip(seeds, tree.query_ball_point(pts[seeds], w_max)):
        nbrs = np.asarray(nbrs)
        nbrs = nbrs[lab[nbrs] == lab[i]]
        u = pts[nbrs] - pts[i]
        w = np.linalg.norm(u, axis=1)
        ok = w >= cfg.min_width_m
        if not ok.any():
            continue
        nbrs, u, w = nbrs[ok], u[ok], w[ok]
        u = u / w[:, None]
        c_in = -(u @ nrm[i])  # enters at p
        c_out = (u * nrm[nbrs]).sum(1)  # leaves at q
        qual = np.minimum(c_in, c_out)
        good = qual >= cos_t
        if not good.any():
            continue
        j = np.argmax(np.where(good, qual, -1))
        ys.append(u[j])
        cs.append(0.5 * (pts[i] + pts[nbrs[j]]))
        ws.append(w[j])
        qs.append(qual[j])
        ls.append(lab[i])
    if not ys:
        return (np.zeros((0, 3)),) * 2 + (np.zeros(0),) * 2 + (np.zeros(0, dtype=int),)
    return np.array(ys), np.array(cs), np.array(ws), np.array(qs), np.array(ls, dtype=int)


def _pca_topdown(scene: _Scene, cfg: PriorConfig):
    """Top-down grasps across each cluster's narrow horizontal axis -> same tuple as _antipodal."""
    ys, cs, ws, qs, ls = [], [], [], [], []
    w_max = cfg.gripper.stroke_m - cfg.width_clearance_m
    for lab in scene.clusters():
        p = scene.obj_xyz[scene.labels == lab]
        xy = p[:, :2] - p[:, :2].mean(0)
        evals, evecs = np.linalg.eigh(np.cov(xy.T) + 1e-12 * np.eye(2))
        minor, major = evecs[:, 0], evecs[:, 1]
        ext_minor = np.ptp(xy @ minor)
        ext_major = np.ptp(xy @ major)
        if ext_minor > w_max or ext_minor < cfg.min_width_m:
            continue
        top = np.percentile(p[:, 2], 95)
        height = top - (p[:, 2].min())
        z_c = top - min(0.02, 0.5 * max(height, 0.01))
        offsets = [0.0] if ext_major < 0.06 else [0.0, -ext_major / 4, ext_major / 4]
        anis = 1.0 - float(np.sqrt(evals[0] / max(evals[1], 1e-12)))
        for off in offsets:
            for yaw in (0.0, np.deg2rad(20), -np.deg2rad(20)):
                c, s = np.cos(yaw), np.sin(yaw)
                y2 = np.array([c * minor[0] - s * minor[1], s * minor[0] + c * minor[1]])
                ctr = np.r_[p[:, :2].mean(0) + off * major, z_c]
                ys.append(np.r_[y2, 0.0])
                cs.append(ctr)
                ws.append(ext_minor)
                qs.append(0.6 + 0.4 * anis - 0.1 * abs(yaw) / np.deg2rad(20))
                ls.append(lab)
    if not ys:
        return (np.zeros((0, 3)),) * 2 + (np.zeros(0),) * 2 + (np.zeros(0, dtype=int),)
    return np.array(ys), np.array(cs), np.array(ws), np.array(qs), np.array(ls, dtype=int)


def collision_free(T: np.ndarray, scene: _Scene, cfg: PriorConfig) -> tuple[np.ndarray, np.ndarray]:
    """Gripper-vs-cloud check for poses (M,4,4) -> (ok (M,) bool, fill (M,) in [0, 1])."""
    g = cfg.gripper
    boxes = g.boxes()  # (3, 2, 3)
    reach = np.linalg.norm(np.array([g.palm_size_m[1] / 2, g.palm_size_m[0] / 2, g.finger_length_m + 0.06]))
    ok = np.zeros(len(T), dtype=bool)
    fill = np.zeros(len(T))
    inflate = 0.002
    corners = np.array(np.meshgrid([0, 1], [0, 1], [0, 1], indexing="ij")).reshape(3, -1).T  # (8, 3)
    for m, (Tm, nbrs) in enumerate(zip(T, scene.tree.query_ball_point(T[:, :3, 3], reach))):
        R, t = Tm[:3, :3], Tm[:3, 3]
        # boxes must stay above the support plane
        bc = np.stack([b[0] + corners * (b[1] - b[0]) for b in boxes]).reshape(-1, 3)  # (24, 3)
        world = bc @ R.T + t
        if np.any(world @ scene.n + scene.d < 0.002):
            continue
        local = (scene.coll_xyz[np.asarray(nbrs, dtype=int)] - t) @ R  # (K, 3) in the TCP frame
        hits = 0
        for b in boxes:
            inside = np.all((local > b[0] - inflate) & (local < b[1] + inflate), axis=1)
            hits += int(inside.sum())
        if hits > cfg.max_collision_points:
            continue
        h = g.stroke_m / 2
        between = (np.abs(local[:, 0]) < g.finger_width_m / 2) & (np.abs(local[:, 1]) < h) & (
            local[:, 2] > -g.finger_length_m) & (local[:, 2] < 0.0)
        nb = int(between.sum())
        if nb < cfg.min_points_between:
            continue
        ok[m] = True
        fill[m] = min(1.0, nb / 60.0)
    return ok, fill


def _nms(T: np.ndarray, scores: np.ndarray, cluster: np.ndarray, cfg: PriorConfig, limit: int) -> np.ndarray:
    """Greedy NMS (position + rotation with the 180 deg z symmetry), then round-robin over clusters."""
    order = np.argsort(-scores)
    kept: list[int] = []
    cos_a = np.cos(np.deg2rad(cfg.nms_angle_deg))
    for i in order:
        dup = False
        for j in kept:
            if np.linalg.norm(T[i, :3, 3] - T[j, :3, 3]) > cfg.nms_dist_m:
                continue
            same_z = T[i, :3, 2] @ T[j, :3, 2] > cos_a
            same_y = abs(T[i, :3, 1] @ T[j, :3, 1]) > cos_a
            if same_z and same_y:
                dup = True
                break
        if not dup:
            kept.append(int(i))
    out = _round_robin(np.asarray(kept, dtype=int), cluster, limit)
    return out[np.argsort(-scores[out], kind="stable")]


def _round_robin(order: np.ndarray, cluster: np.ndarray, limit: int) -> np.ndarray:
    """Up to ``limit`` indices taken in turn from each cluster, each cluster in ``order``."""
    per: dict[int, list[int]] = {}
    for i in order:
        per.setdefault(int(cluster[i]), []).append(int(i))
    out: list[int] = []
    while len(out) < limit and any(per.values()):
        for lab in sorted(per):
            if per[lab] and len(out) < limit:
                out.append(per[lab].pop(0))
    return np.asarray(out, dtype=int)


def grasp_set(cloud, cfg: PriorConfig | None = None, seed: int = 0) -> GraspSet:
    """Ranked, collision-checked grasp candidates from a cloud (``FeatureCloud`` or (N,3) array)."""
    cfg = cfg or PriorConfig()
    rng = np.random.default_rng(seed)
    xyz = _xyz(cloud)
    empty = GraspSet(np.zeros((0, 4, 4)), np.zeros(0), np.zeros(0), np.zeros(0, dtype=int))
    if len(xyz) < cfg.cluster_min_points:
        return empty
    scene = _Scene(xyz, cfg)
    if not scene.clusters():
        return empty
    parts = [_antipodal(scene, cfg, rng), _pca_topdown(scene, cfg)]
    y = np.concatenate([p[0] for p in parts])
    c = np.concatenate([p[1] for p in parts])
    w = np.concatenate([p[2] for p in parts])
    q = np.concatenate([p[3] for p in parts])
    lab = np.concatenate([p[4] for p in parts])
    n_anti = len(parts[0][0])
    if len(y) == 0:
        return empty
    poses, widths, quals, labs = [], [], [], []
    z0 = _topdown_axis(y)
    for k in range(len(y)):
        tilts = cfg.approach_tilts_deg if k < n_anti else (0.0,)
        for tilt in tilts:
            z = _rotate_about(z0[k:k + 1], y[k:k + 1], np.deg2rad(tilt))[0]
            if z[2] > 0.2:  # never approach from below the table
                continue
            depths = cfg.depths_m if k < n_anti else (0.0,)
            for dep in depths:
                poses.append(_frames(y[k:k + 1], z[None], (c[k] + dep * z)[None])[0])
                widths.append(w[k])
                quals.append(q[k])
                labs.append(lab[k])
    if not poses:
        return empty
    T = np.stack(poses)
    widths_a, quals_a, labs_a = np.array(widths), np.array(quals), np.array(labs, dtype=int)
    if len(T) > cfg.max_checked:  # keep the most top-down / best-quality poses, spread over clusters
        pre = 0.6 * np.clip(quals_a, 0, 1) + 0.4 * np.clip(-T[:, 2, 2], 0, 1)
        sel = _round_robin(np.argsort(-pre), labs_a, cfg.max_checked)
        T, widths_a, quals_a, labs_a = T[sel], widths_a[sel], quals_a[sel], labs_a[sel]
    ok, fill = collision_free(T, scene, cfg)
    T, widths_a, quals_a, labs_a, fill = T[ok], widths_a[ok], quals_a[ok], labs_a[ok], fill[ok]
    if len(T) == 0:
        return empty
    topdown = np.clip(-(T[:, :3, 2] @ scene.n), 0.0, 1.0)
    score = 0.5 * np.clip(quals_a, 0, 1) + 0.3 * topdown + 0.2 * fill
    keep = _nms(T, score, labs_a, cfg, cfg.max_candidates)
    return GraspSet(T[keep], widths_a[keep], score[keep], labs_a[keep])


def grasp_candidates(cloud, cfg: PriorConfig | None = None, seed: int = 0) -> np.ndarray:
    """Grasp candidates (C, 4, 4) T_world_tool, best first (see ``grasp_set`` for widths and scores)."""
    return grasp_set(cloud, cfg, seed).poses


def place_candidates(cloud, cfg: PriorConfig | None = None) -> np.ndarray:
    """Top-down place poses (C, 4, 4) over free, flat, observed support surfaces (table or object tops)."""
    cfg = cfg or PriorConfig()
    xyz = _xyz(cloud)
    if len(xyz) < 10:
        return np.zeros((0, 4, 4))
    cell = cfg.place_cell_m
    lo = xyz[:, :2].min(0)
    ij = np.floor((xyz[:, :2] - lo) / cell).astype(int)
    shape = ij.max(0) + 1
    hmap = np.full(shape, np.nan)
    order = np.argsort(xyz[:, 2])  # ascending: the last write per cell is the maximum
    hmap[ij[order, 0], ij[order, 1]] = xyz[order, 2]
    r = int(np.ceil(cfg.place_clearance_m / cell))
    di, dj = np.meshgrid(np.arange(-r, r + 1), np.arange(-r, r + 1), indexing="ij")
    disc = (di**2 + dj**2) * cell**2 <= cfg.place_clearance_m**2
    di, dj = di[disc], dj[disc]
    step = max(1, int(round(cfg.place_step_m / cell)))
    out = []
    for i in range(r, shape[0] - r, step):
        for j in range(r, shape[1] - r, step):
            h = hmap[i + di, j + dj]
            if np.isnan(h).mean() > 0.1:
                continue
            h = h[~np.isnan(h)]
            if np.ptp(h) > cfg.place_flat_tol_m:
                continue
            surf = float(np.median(h))
            xy = lo + (np.array([i, j]) + 0.5) * cell
            for yaw in cfg.place_yaws_deg:
                a = np.deg2rad(yaw)
                y = np.array([np.cos(a), np.sin(a), 0.0])
                z = -WORLD_UP
                out.append(_frames(y[None], z[None], np.r_[xy, surf + cfg.place_height_m][None])[0])
    if not out:
        return np.zeros((0, 4, 4))
    T = np.stack(out)
    if len(T) > cfg.max_place_candidates:  # spread the kept sites: farthest-point sampling
        chosen = [0]
        dist = np.linalg.norm(T[:, :3, 3] - T[0, :3, 3], axis=1)
        while len(chosen) < cfg.max_place_candidates:
            k = int(np.argmax(dist))
            chosen.append(k)
            dist = np.minimum(dist, np.linalg.norm(T[:, :3, 3] - T[k, :3, 3], axis=1))
        T = T[np.array(chosen)]
    return T
