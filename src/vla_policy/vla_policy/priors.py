# SPDX-License-Identifier: Apache-2.0
"""Action priors from the fused point cloud alone (SR paper 001, Sec. 3.4.1; replaces GraspNet).

GraspNet weights cannot be downloaded here, so grasp candidates come from the cloud's geometry
(optionally re-ranked by a small learned prior that also sees only the cloud); nothing from the
simulator (object poses, segmentation) is used.

Grasp candidates (``grasp_candidates``), for a parallel gripper with an 85 mm stroke; TCP frame as
in docs/ARCHITECTURE.md: origin between the finger pads (the real tips 17.5 mm further along z;
poses are raised so they clear the table), z = approach direction (out of the gripper), y =
closing direction:

1. Support plane: RANSAC plane fit (numpy, seeded: deterministic across processes; on a regular
   stride of <= 6k points, refined by least squares) of the cloud, accepted when its normal is
   within 20 deg of world z; points more than
   ``min_height_m`` above it are object points (voxel-averaged to ``analysis_voxel_m`` first when the
   cloud is much denser than that).
2. Object points are clustered (open3d DBSCAN) and normals are estimated (open3d, hybrid radius /
   30-nearest search) and oriented away from the local surface's inside (the centroid of the
   object points within ``orient_radius_m``), else from their cluster's centroid.
3. Antipodal sampling: for seed points spread over every cluster, a partner point in the same
   cluster at a distance w in [min_width, stroke - clearance] is searched such that the segment
   u = (q - p)/|q - p| enters the surface at p and leaves at q within the friction cone:
   ``-u . n_p >= cos(theta)`` and ``u . n_q >= cos(theta)`` (theta = 20 deg); all pairs of a cluster
   are scored at once as (seeds x points) matrices. Closing axis y = u, centre (p + q)/2; approach
   axes z orthogonal to y, from the most top-down one tilted about y by ``approach_tilts_deg``; TCP
   pushed ``depths_m`` along z past the contact line.
4. Top-down grasps: per cluster, PCA of its points in the table plane gives the narrow horizontal
   axis (closing y) and approach z = -world z at the cluster's top (plus yaw variants and offsets
   along the long axis for long objects), kept when the narrow extent fits the stroke.
5. Collision check against the cloud (``max_checked`` poses at most, best pre-scores first,
   round-robin over clusters): the two fingers (at full opening) and the palm are boxes in the TCP
   frame; a candidate is dropped when a box dips below the support plane, when more than
   ``max_collision_points`` cloud points fall inside them, or when fewer than
   ``min_points_between`` points lie between the fingers. Stages run cheapest first on the
   survivors of the previous one, each box's points gathered from small neighbourhoods.
6. Ranking and pruning (the pre-grasping prior): geometric score = 0.5 * antipodal quality
   (friction-cone cosine, 1 for PCA top-down grasps with a well-defined narrow axis) + 0.3 *
   top-down-ness (-z_approach . world z) + 0.2 * fill (fraction of the finger gap holding points).
   With ``learned_prior`` set, the learned pre-grasping prior of ``vla_policy.grasp_prior`` (a
   PointNet over the cloud inside each gripper, trained on grasps executed in simulation) predicts
   each grasp's lift probability, which replaces the geometric score as the ranking, and
   ``prior_min_prob`` prunes unlikely grasps (each object keeps its best few). Then non-maximum
   suppression (1 cm, 20 deg, with the 180 deg symmetry about z of a parallel gripper) and a
   round-robin over clusters so every object keeps candidates, up to ``max_candidates``.

Cost on one core (median CPU time, 2026-11-22): ~75 ms for a ~48k-point fused sim cloud with the
geometric ranking, ~90 ms with the learned prior; the pre-vectorisation version took ~390 ms.

Place candidates (``place_candidates``): a height map (1 cm cells) over the cloud; a site on a
coarser grid is free when the disc of radius ``place_clearance_m`` around it is fully observed and
flat (heights within ``place_flat_tol_m``); this gives table sites and flat object tops. The pose
is top-down (z = -world z) at ``place_height_m`` above the surface, with ``place_yaws_deg`` yaws.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

WORLD_UP = np.array([0.0, 0.0, 1.0])


@dataclass
class GripperSpec:
    """Parallel gripper geometry in the TCP frame (metres).

    Args:
        stroke_m: maximum opening between the finger pads.
        finger_length_m: finger length along z of the collision boxes (they end at z = 0).
        finger_thickness_m: finger thickness along y.
        finger_width_m: finger width along x.
        palm_size_m: palm box extent (x, y, z); it sits behind the finger bases.
        tip_beyond_tcp_m: the real fingertips lie this far beyond the TCP along z. The robots'
            TCP is the centre of the finger pads (``fingertip_offset_m`` in vla_executor's robot
            files: half the 35 mm pad), and the executor refuses a target whose tips would be below
            the table, so the chosen grasp poses are raised until the tips clear it
            (``tip_clearance_m``), after the collision check and ranking. The collision boxes above
            end at the TCP: extending them to the real tips cut the candidates on the demo scene
            from 57 to 12 and lost every grasp of the red mug (measured 2026-12-07).
        tip_clearance_m: grasp poses are raised along their approach axis until the real
            fingertips are at least this far above the support plane (as the expert grasps flat
            objects).
    """

    stroke_m: float = 0.085
    finger_length_m: float = 0.045
    finger_thickness_m: float = 0.012
    finger_width_m: float = 0.022
    palm_size_m: tuple[float, float, float] = (0.05, 0.2, 0.06)
    tip_beyond_tcp_m: float = 0.0175
    tip_clearance_m: float = 0.004

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

    def gap(self) -> np.ndarray:
        """(2, 3) box [min, max] between the open fingers in the TCP frame (where the object sits)."""
        return np.array([[-self.finger_width_m / 2, -self.stroke_m / 2, -self.finger_length_m],
                         [self.finger_width_m / 2, self.stroke_m / 2, 0.0]])


@dataclass
class PriorConfig:
    """Parameters of the grasp and place priors (see the module docstring).

    Args:
        gripper: gripper geometry.
        min_height_m: points this far above the support plane count as objects.
        normal_radius_m: open3d normal-estimation radius.
        orient_radius_m: normals point away from the centroid of the object points within this
            radius (the local surface's inside) ...
        orient_min_offset_m: ... where that centroid lies at least this far off the tangent
            plane; elsewhere (flat faces far from an edge) away from the cluster centroid.
        focus_radius_m: with a ``focus`` (``grasp_set``), the object points within this of it.
        cluster_eps_m: DBSCAN neighbourhood radius.
        cluster_min_points: DBSCAN minimum cluster size.
        analysis_voxel_m: object points are voxel-averaged to this size before normals, clustering
            and antipodal sampling when the cloud is much denser (fewer than 0.6 occupied voxels
            per point); 0 disables. The collision check always uses every point.
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
        learned_prior: the learned pre-grasping prior (``vla_policy.grasp_prior``) that ranks the
            collision-free grasps: ``"shipped"`` (default: ``checkpoints/grasp_prior``; geometric
            ranking when absent), a checkpoint directory, or None for the geometric ranking. On by
            default because it measurably helps (checkpoints/grasp_prior/README.md).
        prior_min_prob: with a learned prior, grasps whose predicted lift probability is below
            this are pruned, except each cluster's ``prior_min_per_cluster`` best (every object
            keeps candidates for the language-conditioned choice).
        prior_min_per_cluster: see ``prior_min_prob``.
    """

    gripper: GripperSpec = None  # type: ignore[assignment]
    min_height_m: float = 0.008
    normal_radius_m: float = 0.012
    orient_radius_m: float = 0.03
    orient_min_offset_m: float = 0.002
    focus_radius_m: float = 0.006
    cluster_eps_m: float = 0.012
    cluster_min_points: int = 15
    analysis_voxel_m: float = 0.005
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
    learned_prior: str | None = "shipped"
    prior_min_prob: float = 0.5
    prior_min_per_cluster: int = 2

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
        lift_prob: (C,) the learned prior's lift probability, which then sets the order (None
            without a learned prior).
    """

    poses: np.ndarray
    widths: np.ndarray
    scores: np.ndarray
    cluster: np.ndarray
    lift_prob: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.poses.shape[0])


def _xyz(cloud) -> np.ndarray:
    xyz = np.asarray(getattr(cloud, "xyz", cloud), dtype=np.float64)
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise ValueError(f"cloud must have xyz of shape (N, 3); got {xyz.shape}")
    finite = np.isfinite(xyz).all(1)
    return xyz[finite]


_PLANE_FIT_POINTS = 6000  # RANSAC runs on at most this many points (a regular stride of the cloud)
_PLANE_CACHE: dict[bytes, tuple[np.ndarray, float]] = {}  # cloud digest -> plane, the last 8 clouds
_PLANE_TRIALS = 200  # RANSAC plane hypotheses
_PLANE_INLIER_M = 0.004  # a point within this of a plane supports it


def support_plane(xyz: np.ndarray) -> tuple[np.ndarray, float]:
    """Dominant horizontal plane (unit normal n with n_z > 0, offset d: n . x + d = 0).

    RANSAC on a regular stride of at most ``_PLANE_FIT_POINTS`` points (the table holds most of the
    cloud, so the stride keeps its inlier fraction): ``_PLANE_TRIALS`` planes through point triples
    drawn with a fixed seed, each scored by its inliers within 4 mm, the best refined by a
    least-squares fit to its inliers. Deterministic: the same cloud gives the same plane in every
    process (open3d's multi-threaded ``segment_plane`` did not, even seeded, and a plane differing
    by 1e-5 moved points across the object-height threshold and so changed sub-samples and
    decisions between runs). Falls back to z = 2nd percentile of the cloud when no near-horizontal
    plane holds a tenth of the points.
    """
    xyz = np.asarray(xyz, dtype=np.float64)
    key = hashlib.blake2b(np.ascontiguousarray(xyz).tobytes(), digest_size=16).digest()
    if key not in _PLANE_CACHE:  # a decision asks for the plane of the same cloud several times
        if len(_PLANE_CACHE) >= 8:
            _PLANE_CACHE.pop(next(iter(_PLANE_CACHE)))
        _PLANE_CACHE[key] = _fit_support_plane(xyz)
    n, d = _PLANE_CACHE[key]
    return n.copy(), d


def _fit_support_plane(xyz: np.ndarray) -> tuple[np.ndarray, float]:
    """:func:`support_plane` without the cache."""
    if len(xyz) >= 50:
        sub = xyz[:: max(1, int(np.ceil(len(xyz) / _PLANE_FIT_POINTS)))]
        rng = np.random.default_rng(0)
        tri = sub[rng.integers(0, len(sub), size=(_PLANE_TRIALS, 3))]  # (T, 3, 3)
        n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # (T, 3)
        norm = np.linalg.norm(n, axis=1)
        good = norm > 1e-9
        n = n[good] / norm[good, None]
        n *= np.where(n[:, 2:3] < 0, -1.0, 1.0)
        flat = n[:, 2] > np.cos(np.deg2rad(20))
        n, p0 = n[flat], tri[good][flat, 0]
        if len(n):
            d = -(n * p0).sum(1)  # (T',)
            counts = (np.abs(sub @ n.T + d) < _PLANE_INLIER_M).sum(0)  # (T',)
            k = int(np.argmax(counts))
            if counts[k] > 0.1 * len(sub):
                inl = sub[np.abs(sub @ n[k] + d[k]) < _PLANE_INLIER_M]
                c = inl.mean(0)
                nn = np.linalg.svd(inl - c, full_matrices=False)[2][-1]  # least-squares normal
                nn = nn if nn[2] > 0 else -nn
                if nn[2] > np.cos(np.deg2rad(20)):
                    return nn, float(-nn @ c)
    return WORLD_UP.copy(), -float(np.percentile(xyz[:, 2], 2))


def _frames(y: np.ndarray, z: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(M,3) closing y, approach z (orthonormal), positions t -> (M,4,4) with x = y cross z."""
    x = np.cross(y, z)
    T = np.tile(np.eye(4), (len(t), 1, 1))
    T[:, :3, 0], T[:, :3, 1], T[:, :3, 2], T[:, :3, 3] = x, y, z, t
    return T


def _rotate_about(v: np.ndarray, axis: np.ndarray, ang) -> np.ndarray:
    """Rodrigues rotation of rows v about unit rows axis by ang radians (scalar or (M,))."""
    ang = np.asarray(ang, dtype=np.float64)
    c, s = np.cos(ang), np.sin(ang)
    if c.ndim:
        c, s = c[:, None], s[:, None]
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


class _RadiusSearch:
    """Fixed-radius neighbour search over one point set (open3d core NNS, flat index arrays).

    ``scipy``'s ``query_ball_point`` returns Python lists, whose conversion cost more than the
    search itself; open3d returns flat index arrays plus per-query row offsets. One hash-grid index
    is built on first use, with that call's radius as its cell size (searches at other radii are
    still exact; the collision check queries at 3-5 cm).
    """

    def __init__(self, points: np.ndarray) -> None:
        self.points = np.ascontiguousarray(points, dtype=np.float64)  # (N, 3)
        self._nns = None

    def __call__(self, queries: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
        """Neighbours of each query within ``radius`` -> (idx (K,) int64, seg (K,) query index)."""
        q = np.ascontiguousarray(queries, dtype=np.float64).reshape(-1, 3)
        if len(self.points) == 0 or len(q) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        import open3d.core as o3c

        if self._nns is None:
            self._nns = o3c.nns.NearestNeighborSearch(o3c.Tensor(self.points))
            self._nns.fixed_radius_index(float(radius))
        idx, _, splits = self._nns.fixed_radius_search(o3c.Tensor(q), float(radius), sort=False)
        idx = idx.numpy().astype(np.int64, copy=False)
        counts = np.diff(splits.numpy())
        return idx, np.repeat(np.arange(len(q)), counts)


class _Scene:
    """Cloud analysed once: plane, object points, clusters, oriented normals, neighbour searches."""

    def __init__(self, xyz: np.ndarray, cfg: PriorConfig, focus: np.ndarray | None = None) -> None:
        import open3d as o3d

        self.xyz = xyz
        self.n, self.d = support_plane(xyz)
        self.height = xyz @ self.n + self.d  # (N,)
        obj = self.height > cfg.min_height_m
        self.obj_xyz = xyz[obj]
        # collision cloud: everything above the plane (the plane itself is checked analytically)
        self.coll_xyz = xyz[self.height > 0.003]
        self.coll_search = _RadiusSearch(self.coll_xyz)
        self.dense_voxel = 0.0  # set when the object points were voxel-averaged (dense input)
        self._prior_cloud: tuple[np.ndarray, _RadiusSearch] | None = None
        self.labels = np.zeros(0, dtype=int)
        self.normals = np.zeros((0, 3))
        if len(self.obj_xyz) < cfg.cluster_min_points:
            return
        pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(self.obj_xyz))
        if cfg.analysis_voxel_m > 0:
            # a cloud much denser than the analysis resolution (synthetic or unvoxelised input) is
            # voxel-averaged first: normals, clusters and antipodal pairs cost ~ points x neighbours;
            # fused clouds (5 mm voxels) keep >= 0.75 of their points here and stay untouched
            ds = pcd.voxel_down_sample(cfg.analysis_voxel_m)
            if len(ds.points) < 0.6 * len(self.obj_xyz):
                pcd = ds
                self.obj_xyz = np.asarray(ds.points).copy()
                self.dense_voxel = cfg.analysis_voxel_m
        pts = self.obj_xyz
        labels = np.asarray(
            pcd.cluster_dbscan(eps=cfg.cluster_eps_m, min_points=min(cfg.cluster_min_points, 8)), dtype=int
        )
        # tensor-API normals: the same hybrid (radius, 30 nearest) PCA as the legacy call, ~2x faster
        tpc = o3d.t.geometry.PointCloud(o3d.core.Tensor(pts))
        tpc.estimate_normals(max_nn=30, radius=cfg.normal_radius_m)
        normals = tpc.point.normals.numpy().astype(np.float64)  # (N, 3)
        sizes = np.bincount(labels[labels >= 0], minlength=1)
        labels[(labels >= 0) & (sizes[np.maximum(labels, 0)] < cfg.cluster_min_points)] = -1
        self.focus_label = -1
        if focus is not None and len(focus):
            # the described object's points (language grounding) become a cluster of their own,
            # cut out of whatever cluster of touching objects held them
            from scipy.spatial import cKDTree

            d, _ = cKDTree(np.asarray(focus, dtype=np.float64)).query(pts)
            near = d <= cfg.focus_radius_m
            if near.sum() >= min(cfg.cluster_min_points, 8):
                self.focus_label = int(labels.max()) + 1
                labels[near] = self.focus_label
        self.labels = labels
        if (labels >= 0).any():
            # orient outward: away from the centroid of the object points around each point (the
            # surface curves away from its outside), else away from the cluster centroid; a
            # near-horizontal face points up. The cluster centroid alone is wrong where touching
            # objects share a cluster (clutter): half of each object's sides then point inward and
            # no antipodal pair forms on it.
            m = labels >= 0
            k = int(labels.max()) + 1
            cnt = np.bincount(labels[m], minlength=k)
            cen = np.stack([np.bincount(labels[m], pts[m, a], minlength=k) for a in range(3)], 1)
            cen /= np.maximum(cnt, 1)[:, None]  # (K, 3)
            out = pts[m] - cen[labels[m]]  # (Nm, 3)
            idx, seg = _RadiusSearch(pts)(pts[m], cfg.orient_radius_m)
            n_near = np.bincount(seg, minlength=int(m.sum())).astype(np.float64)
            local = np.stack([np.bincount(seg, pts[idx, a], minlength=int(m.sum())) for a in range(3)], 1)
            local = pts[m] - local / np.maximum(n_near, 1.0)[:, None]  # (Nm, 3) from the local centroid
            nm = normals[m]
            lo = (nm * local).sum(-1)
            ref = np.where(np.abs(lo) > cfg.orient_min_offset_m, lo, (nm * out).sum(-1))
            nm[ref < 0] *= -1
            normals[m] = nm
        up_face = np.abs(normals @ self.n) > 0.9
        normals[up_face] *= np.sign(normals[up_face] @ self.n)[:, None]
        self.normals = normals

    def clusters(self) -> list[int]:
        return [int(lab) for lab in np.unique(self.labels) if lab >= 0]

    def prior_cloud(self) -> tuple[np.ndarray, _RadiusSearch]:
        """Points above the plane at the resolution the learned prior was trained on.

        That is the collision cloud, voxel-averaged when the input was much denser than a fused
        cloud (otherwise the crops hold more points than in training, and cost more).
        """
        if self._prior_cloud is None:
            if self.dense_voxel > 0 and len(self.coll_xyz):
                import open3d as o3d

                pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(self.coll_xyz))
                pts = np.asarray(pcd.voxel_down_sample(self.dense_voxel).points).copy()
                self._prior_cloud = (pts, _RadiusSearch(pts))
            else:
                self._prior_cloud = (self.coll_xyz, self.coll_search)
        return self._prior_cloud


def _no_pairs():
    return (np.zeros((0, 3)),) * 2 + (np.zeros(0),) * 2 + (np.zeros(0, dtype=int),)


def _antipodal(scene: _Scene, cfg: PriorConfig, rng: np.random.Generator):
    """Antipodal pairs -> (y (M,3), centre (M,3), width (M,), quality (M,), cluster (M,)).

    Per cluster, all (seed, partner) pairs are tested at once as (seeds x cluster points) matrices
    built from three small matrix products (no neighbour lists); per seed the partner with the best
    friction-cone quality is kept.
    """
    pts, nrm, lab = scene.obj_xyz, scene.normals, scene.labels
    valid = np.flatnonzero(lab >= 0)
    if len(valid) == 0:
        return _no_pairs()
    # spread seeds: one random point per 1.5 cm cell, then cap
    cell = 0.015
    if scene.focus_label >= 0:  # seeds only on the described object, twice as dense
        valid = np.flatnonzero(lab == scene.focus_label)
        cell = 0.0075
    cells = np.floor(pts[valid] / cell).astype(np.int64)
    _, first = np.unique(cells, axis=0, return_index=True)
    seeds = valid[first]
    if len(seeds) > cfg.num_seeds:
        seeds = rng.choice(seeds, cfg.num_seeds, replace=False)
    cos_t = np.cos(np.deg2rad(cfg.friction_deg))
    w_max = cfg.gripper.stroke_m - cfg.width_clearance_m
    slot, partner, quality = [], [], []
    sq = (pts * pts).sum(1)  # (N,)
    pn = (pts * nrm).sum(1)  # (N,) p . n
    for c in np.unique(lab[seeds]):
        k = np.flatnonzero(lab[seeds] == c)  # seed slots on this cluster
        si = seeds[k]
        mem = np.flatnonzero(lab == c)  # partners: the cluster's points, ascending index
        P, Nm = pts[mem], nrm[mem]  # (Nc, 3)
        w = np.sqrt(np.maximum(sq[si][:, None] + sq[mem][None] - 2.0 * pts[si] @ P.T, 0.0))  # (S, Nc)
        c_in = pn[si][:, None] - nrm[si] @ P.T  # (q - p) . -n_p: enters at p
        c_out = pn[mem][None] - pts[si] @ Nm.T  # (q - p) . n_q: leaves at q
        qual = np.minimum(c_in, c_out) / np.maximum(w, 1e-12)
        qual[(w < cfg.min_width_m) | (w > w_max) | (qual < cos_t)] = -np.inf
        best = np.argmax(qual, axis=1)  # (S,) first (lowest index) on ties
        qb = qual[np.arange(len(si)), best]
        found = np.isfinite(qb)
        slot.append(k[found])
        partner.append(mem[best[found]])
        quality.append(qb[found])
    if not slot or not sum(len(x) for x in slot):
        return _no_pairs()
    slot_a, j, qual_a = np.concatenate(slot), np.concatenate(partner), np.concatenate(quality)
    order = np.argsort(slot_a)  # seed order
    i, j, qual_a = seeds[slot_a[order]], j[order], qual_a[order]
    u = pts[j] - pts[i]
    w = np.linalg.norm(u, axis=1)
    return u / w[:, None], 0.5 * (pts[i] + pts[j]), w, qual_a, lab[i].astype(int)


def _pca_topdown(scene: _Scene, cfg: PriorConfig):
    """Top-down grasps across each cluster's narrow horizontal axis -> same tuple as _antipodal."""
    ys, cs, ws, qs, ls = [], [], [], [], []
    w_max = cfg.gripper.stroke_m - cfg.width_clearance_m
    for lab in scene.clusters():
        if scene.focus_label >= 0 and lab != scene.focus_label:
            continue
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
        return _no_pairs()
    return np.array(ys), np.array(cs), np.array(ws), np.array(qs), np.array(ls, dtype=int)


_INFLATE_M = 0.002  # the gripper boxes are grown by this for the collision test


def _local_points(T: np.ndarray, scene: _Scene, centre: np.ndarray, radius: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Collision points within ``radius`` of the TCP-frame point ``centre`` of each pose (M,4,4).

    Returns (seg (K,) pose index, local (K,3) the points in that pose's TCP frame).
    """
    R, t = T[:, :3, :3], T[:, :3, 3]  # (M,3,3), (M,3)
    idx, seg = scene.coll_search(t + R @ centre, radius)
    d = scene.coll_xyz[idx] - t[seg]  # (K, 3)
    Rs = R.reshape(-1, 9)[seg]  # (K, 9) row-major R per point
    local = np.empty_like(d)  # d @ R: world -> TCP frame
    for a in range(3):
        local[:, a] = d[:, 0] * Rs[:, a] + d[:, 1] * Rs[:, 3 + a] + d[:, 2] * Rs[:, 6 + a]
    return seg, local


def _tiles(box: np.ndarray, pad: float, n: int) -> list[tuple[np.ndarray, float, float, float]]:
    """``box`` grown by ``pad`` cut into ``n`` slabs along y -> (centre (3,), radius, y_lo, y_hi) each."""
    lo, hi = box[0] - pad, box[1] + pad
    edges = np.linspace(lo[1], hi[1], n + 1)
    out = []
    for k in range(n):
        tlo, thi = lo.copy(), hi.copy()
        tlo[1], thi[1] = edges[k], edges[k + 1]
        radius = float(np.linalg.norm(0.5 * (thi - tlo))) + 1e-6
        out.append((0.5 * (tlo + thi), radius, edges[k], edges[k + 1]))
    return out


def _count_in(T: np.ndarray, scene: _Scene, box: np.ndarray, pad: float, n_tiles: int) -> np.ndarray:
    """(M,) collision points strictly inside ``box`` (TCP frame, grown by ``pad``) for each pose.

    The box is tiled along y so that each neighbour query stays small; a point is counted in the
    tile whose y range holds it, so no point counts twice.
    """
    counts = np.zeros(len(T), dtype=np.int64)
    if len(T) == 0:
        return counts
    tiles = _tiles(box, pad, n_tiles)
    for k, (centre, radius, ylo, yhi) in enumerate(tiles):
        seg, local = _local_points(T, scene, centre, radius)
        in_tile = (local[:, 1] >= ylo) & ((local[:, 1] < yhi) | (k == n_tiles - 1))
        counts += np.bincount(seg[in_tile & _inside(local, box, pad)], minlength=len(T))
    return counts


def _inside(local: np.ndarray, box: np.ndarray, pad: float) -> np.ndarray:
    """(K,) whether TCP-frame points lie strictly inside ``box`` ([min, max] (2,3)) grown by ``pad``."""
    return np.all((local > box[0] - pad) & (local < box[1] + pad), axis=1)


def collision_free(T: np.ndarray, scene: _Scene, cfg: PriorConfig) -> tuple[np.ndarray, np.ndarray]:
    """Gripper-vs-cloud check for poses (M,4,4) -> (ok (M,) bool, fill (M,) in [0, 1]).

    A pose fails when a box corner dips below the support plane, when more than
    ``max_collision_points`` cloud points lie inside the (2 mm inflated) finger and palm boxes, or
    when fewer than ``min_points_between`` lie between the fingers. Each stage runs on the poses
    that survived the previous one, cheapest and most selective first: the plane (analytic), the
    finger boxes, the wide palm, the gap between the fingers. Points are gathered per box from small
    neighbourhoods (boxes tiled along y, ``_count_in``) instead of one 15 cm ball per pose.
    """
    g = cfg.gripper
    boxes = g.boxes()  # (3, 2, 3): left finger, right finger, palm
    M = len(T)
    ok = np.zeros(M, dtype=bool)
    fill = np.zeros(M)
    if M == 0:
        return ok, fill
    pad = _INFLATE_M
    # 1. boxes must stay above the support plane
    corners = np.array(np.meshgrid([0, 1], [0, 1], [0, 1], indexing="ij")).reshape(3, -1).T  # (8, 3)
    bc = (boxes[:, None, 0] + corners[None] * (boxes[:, None, 1] - boxes[:, None, 0])).reshape(-1, 3)
    world = np.einsum("mij,kj->mki", T[:, :3, :3], bc) + T[:, None, :3, 3]  # (M, 24, 3)
    alive = np.flatnonzero(~np.any(world @ scene.n + scene.d < 0.002, axis=1))
    # 2. fingers (small neighbourhoods; most rejected poses fail here)
    hits = _count_in(T[alive], scene, boxes[0], pad, 1) + _count_in(T[alive], scene, boxes[1], pad, 1)
    keep = hits <= cfg.max_collision_points
    alive, hits = alive[keep], hits[keep]
    # 3. palm
    hits = hits + _count_in(T[alive], scene, boxes[2], pad, 4)
    keep = hits <= cfg.max_collision_points
    alive = alive[keep]
    # 4. points between the fingers (not inflated; the object sits there, so the most points to
    # count: done last, on the fewest poses); the count also sets the fill
    nb = _count_in(T[alive], scene, g.gap(), 0.0, 4)
    keep = nb >= cfg.min_points_between
    ok[alive[keep]] = True
    fill[alive[keep]] = np.minimum(1.0, nb[keep] / 60.0)
    return ok, fill


def _nms(T: np.ndarray, scores: np.ndarray, cluster: np.ndarray, cfg: PriorConfig, limit: int) -> np.ndarray:
    """Greedy NMS (position + rotation with the 180 deg z symmetry), then round-robin over clusters."""
    order = np.argsort(-scores)
    cos_a = np.cos(np.deg2rad(cfg.nms_angle_deg))
    p, y, z = T[:, :3, 3], T[:, :3, 1], T[:, :3, 2]
    dup = ((np.linalg.norm(p[:, None] - p[None], axis=-1) <= cfg.nms_dist_m)
           & (z @ z.T > cos_a) & (np.abs(y @ y.T) > cos_a))  # (M, M)
    kept_mask = np.zeros(len(T), dtype=bool)
    kept: list[int] = []
    for i in order:
        if not (dup[i] & kept_mask).any():
            kept_mask[i] = True
            kept.append(int(i))
    out = _round_robin(np.asarray(kept, dtype=int), cluster, limit)
    return out[np.argsort(-scores[out], kind="stable")]


def _round_robin(order: np.ndarray, cluster: np.ndarray, limit: int) -> np.ndarray:
    """Up to ``limit`` indices taken in turn from each cluster, each cluster in ``order``.

    Round r takes the r-th index of every cluster (clusters in ascending label order).
    """
    order = np.asarray(order, dtype=int)
    if len(order) == 0:
        return order
    lab = np.asarray(cluster)[order]
    by_lab = np.argsort(lab, kind="stable")  # grouped by cluster, ``order`` kept within a cluster
    sl = lab[by_lab]
    start = np.searchsorted(sl, sl)  # first position of each element's cluster
    rank = np.empty(len(order), dtype=int)
    rank[by_lab] = np.arange(len(order)) - start
    turn = np.lexsort((lab, rank))
    return order[turn[:limit]]


def _poses(y: np.ndarray, c: np.ndarray, w: np.ndarray, q: np.ndarray, lab: np.ndarray, n_anti: int,
           cfg: PriorConfig):
    """Grasp frames from (closing axis, centre) pairs -> (T (P,4,4), widths, qualities, clusters).

    Antipodal pairs (the first ``n_anti``) get every approach tilt x depth; PCA top-down grasps one
    pose each. Poses approaching from below (z_z > 0.2) are dropped.
    """
    tilts = np.deg2rad(np.asarray(cfg.approach_tilts_deg, dtype=np.float64))
    depths = np.asarray(cfg.depths_m, dtype=np.float64)
    z0 = _topdown_axis(y)
    na, nt, nd = n_anti, len(tilts), len(depths)
    # antipodal: (k, tilt, depth) in this order
    k = np.repeat(np.arange(na), nt)
    za = _rotate_about(z0[k], y[k], np.tile(tilts, na))  # (na*nt, 3)
    k = np.repeat(k, nd)
    za = np.repeat(za, nd, axis=0)
    ta = c[k] + np.tile(depths, na * nt)[:, None] * za
    kk = np.r_[k, np.arange(na, len(y))]
    zz = np.concatenate([za, z0[na:]])
    tt = np.concatenate([ta, c[na:]])
    up = zz[:, 2] <= 0.2  # never approach from below the table
    kk, zz, tt = kk[up], zz[up], tt[up]
    return _frames(y[kk], zz, tt), w[kk], q[kk], lab[kk].astype(int)


def grasp_set(cloud, cfg: PriorConfig | None = None, seed: int = 0, focus: np.ndarray | None = None
              ) -> GraspSet:
    """Ranked, collision-checked grasp candidates from a cloud (``FeatureCloud`` or (N,3) array).

    ``focus`` (F, 3): points of the one object the instruction describes (the policy's object-level
    grounding). The object points within ``cfg.focus_radius_m`` of them become their own cluster
    and every candidate is sought on it (denser seeds, its own top-down axes); the collision check
    still sees the whole cloud. Empty when nothing on it can be grasped (the caller falls back to
    the whole scene). None: candidates over every object.
    """
    cfg = cfg or PriorConfig()
    rng = np.random.default_rng(seed)
    xyz = _xyz(cloud)
    empty = GraspSet(np.zeros((0, 4, 4)), np.zeros(0), np.zeros(0), np.zeros(0, dtype=int))
    if len(xyz) < cfg.cluster_min_points:
        return empty
    scene = _Scene(xyz, cfg, focus)
    if not scene.clusters() or (focus is not None and scene.focus_label < 0):
        return empty
    parts = [_antipodal(scene, cfg, rng), _pca_topdown(scene, cfg)]
    y, c, w, q, lab = (np.concatenate([p[i] for p in parts]) for i in range(5))
    if len(y) == 0:
        return empty
    T, widths_a, quals_a, labs_a = _poses(y, c, w, q, lab, len(parts[0][0]), cfg)
    if len(T) == 0:
        return empty
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
    prior = _learned_prior(cfg)
    if prior is None:
        keep = _nms(T, score, labs_a, cfg, cfg.max_candidates)
        return GraspSet(raise_tips_above_plane(T[keep], scene.n, scene.d, cfg.gripper), widths_a[keep],
                        score[keep], labs_a[keep])
    pts, search = scene.prior_cloud()
    prob = prior.score(pts, (scene.n, scene.d), T, score, widths_a, search=search, seed=seed)  # (M,)
    keep = _nms(T, prob, labs_a, cfg, cfg.max_candidates)
    if cfg.prior_min_prob > 0:
        rank = np.zeros(len(keep), dtype=int)  # rank of each kept grasp within its cluster (keep is by prob)
        for lab in np.unique(labs_a[keep]):
            m = labs_a[keep] == lab
            rank[m] = np.arange(int(m.sum()))
        keep = keep[(prob[keep] >= cfg.prior_min_prob) | (rank < cfg.prior_min_per_cluster)]
    # checked and ranked as the collision model sees them; raised last so the real tips clear the table
    return GraspSet(raise_tips_above_plane(T[keep], scene.n, scene.d, cfg.gripper), widths_a[keep],
                    score[keep], labs_a[keep], prob[keep])


def raise_tips_above_plane(T: np.ndarray, n: np.ndarray, d: float, gripper: GripperSpec) -> np.ndarray:
    """Grasp poses (M, 4, 4) moved back along their approach axis until the tips clear the plane.

    The lowest corner of the open fingers' tips (x = +-finger_width / 2, y = +-(stroke / 2 +
    thickness), ``tip_beyond_tcp_m`` past the TCP) ends ``gripper.tip_clearance_m`` above the plane
    ``n . x + d = 0``; poses already clear are unchanged. For a top-down pose all corners are as
    low as the tip centre; a pose tilted 60 deg about its closing axis has a corner 9.5 mm lower,
    which put the fingers into the table (the executor refused such grasps as colliding).
    A flat object (a pencil, 1 cm high) is then gripped by the lower end of the pads, as the expert
    grips it, instead of by a pose whose tips are in the table (which the executor refuses).
    """
    T = np.array(T, dtype=np.float64, copy=True)
    z = T[:, :3, 2]                                                 # (M, 3) approach axes
    fx = gripper.finger_width_m / 2
    fy = gripper.stroke_m / 2 + gripper.finger_thickness_m
    corners = np.array([[sx * fx, sy * fy, gripper.tip_beyond_tcp_m] for sx in (-1, 1) for sy in (-1, 1)])
    tips = T[:, None, :3, 3] + np.einsum("mij,kj->mki", T[:, :3, :3], corners)  # (M, 4, 3)
    deficit = gripper.tip_clearance_m - (tips @ n + d).min(1)       # (M,) metres below the clearance
    down = np.maximum(-(z @ n), 0.3)                                # (M,) descent per metre of approach
    back = np.where(deficit > 0, deficit / down, 0.0)               # (M,)
    T[:, :3, 3] -= back[:, None] * z
    return T


def _learned_prior(cfg: PriorConfig):
    """The ``GraspPrior`` that ``cfg.learned_prior`` names, or None for the geometric ranking."""
    if cfg.learned_prior is None:
        return None
    from vla_policy.grasp_prior import shipped_prior

    return shipped_prior(None if cfg.learned_prior == "shipped" else cfg.learned_prior)


def grasp_candidates(cloud, cfg: PriorConfig | None = None, seed: int = 0) -> np.ndarray:
    """Grasp candidates (C, 4, 4) T_world_tool, best first (see ``grasp_set`` for widths and scores)."""
    return grasp_set(cloud, cfg, seed).poses


# the policy's reading of each relation, for the reference's footprint (x away from the robot, y left)
RELATION_GAP_M = {"next to": 0.10, "near": 0.15, "around": 0.20, "left of": 0.25, "right of": 0.25,
                  "in front of": 0.25, "behind": 0.25}
RELATION_SIDE_SLACK_M = 0.05


def relation_mask(xy: np.ndarray, z: np.ndarray, relation: str, ref_min: np.ndarray,
                  ref_max: np.ndarray, margin_m: float = 0.02) -> np.ndarray:
    """Which place sites satisfy ``relation`` to a reference with this world AABB.

    The robot's own model of the words (the benchmark judges with its own checks): ``in`` / ``on``
    = over the footprint shrunk by ``margin_m`` (``on``: on its top surface); ``next to`` / ``near``
    / ``around`` = outside the footprint within :data:`RELATION_GAP_M` (less ``margin_m``); ``left
    of`` / ``right of`` = beyond the footprint towards +y / -y and within the slack of its x extent;
    ``in front of`` / ``behind`` the same towards -x / +x.

    Args:
        xy: (C, 2) site positions, m.
        z: (C,) surface heights at the sites, m.
        relation: one of ``vla_common.language.RELATIONS``.
        ref_min: (3,) reference AABB minimum, m.
        ref_max: (3,) reference AABB maximum, m.
        margin_m: how far inside a region's border a site must lie.

    Returns:
        (C,) bool.
    """
    lo, hi = np.asarray(ref_min, dtype=np.float64), np.asarray(ref_max, dtype=np.float64)
    d = np.maximum(np.maximum(lo[:2] - xy, xy - hi[:2]), 0.0)
    gap = np.linalg.norm(d, axis=1)
    inside = np.all((xy > lo[:2] + margin_m) & (xy < hi[:2] - margin_m), axis=1)
    if relation == "in":
        return inside
    if relation == "on":
        return inside & (z >= hi[2] - 0.02)
    if relation in ("next to", "near", "around"):
        return (gap > margin_m) & (gap <= RELATION_GAP_M[relation] - margin_m)
    axis, sign = {"left of": (1, 1), "right of": (1, -1), "in front of": (0, -1), "behind": (0, 1)}[relation]
    other = 1 - axis
    beyond = (xy[:, axis] - hi[axis] > margin_m) if sign > 0 else (lo[axis] - xy[:, axis] > margin_m)
    along = (xy[:, other] > lo[other] - RELATION_SIDE_SLACK_M + margin_m) & \
            (xy[:, other] < hi[other] + RELATION_SIDE_SLACK_M - margin_m)
    return beyond & along & (gap <= RELATION_GAP_M[relation] - margin_m)


CARRY_MIN_HEIGHT_M = 0.24  # points this high above the table are the arm or what it carries


def below_carry_height(xyz: np.ndarray, max_height_m: float = CARRY_MIN_HEIGHT_M) -> np.ndarray:
    """(N,) bool: the points of ``xyz`` (N, 3) lower than ``max_height_m`` above the support plane.

    At a place decision the gripper holds the object above the table (the arm's carry pose, about
    0.35 m up); its points are no support to put it on and no reference to put it near. The tallest
    object a scene stands on the table is 0.16 m, so 0.24 m separates the two.
    """
    xyz = np.asarray(xyz, dtype=np.float64)
    if len(xyz) < 50:
        return np.ones(len(xyz), dtype=bool)
    n, d = support_plane(xyz)
    return (xyz @ n + d) < max_height_m


def place_candidates(cloud, cfg: PriorConfig | None = None, keep=None) -> np.ndarray:
    """Top-down place poses (C, 4, 4) over free, flat, observed support surfaces (table or object tops).

    ``keep``: optional ``(xy (C, 2), z (C,)) -> (C,) bool`` (e.g. :func:`relation_mask` of the
    instruction's relation and reference): sites it accepts come first and are thinned among
    themselves, so a relation's region is never thinned away by the spread over the whole table.
    """
    cfg = cfg or PriorConfig()
    xyz = _xyz(cloud)
    xyz = xyz[below_carry_height(xyz)]  # the carried object is no support surface
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
    if keep is not None:
        ok = np.asarray(keep(T[:, :2, 3], T[:, 2, 3] - cfg.place_height_m), dtype=bool)
        if ok.any():
            return _spread(T[ok], cfg.max_place_candidates)
    return _spread(T, cfg.max_place_candidates)


CONTAINER_RIM_CLEARANCE_M = 0.01  # "in" a container without a seen floor: tips this far above its rim


def container_drop_pose(ref_min: np.ndarray, ref_max: np.ndarray, gripper: GripperSpec,
                        clearance_m: float = CONTAINER_RIM_CLEARANCE_M) -> np.ndarray:
    """(4, 4) top-down release pose over a container's centre, the fingertips ``clearance_m`` above its rim.

    For "in" a container whose floor no camera sees whole (its walls hide part of it), so that
    :func:`place_candidates` finds no flat site inside; oriented as those sites at yaw 0.

    Args:
        ref_min: (3,) the container's world AABB minimum, m.
        ref_max: (3,) its maximum (the rim's height is ``ref_max[2]``), m.
        gripper: the tips lie ``gripper.tip_beyond_tcp_m`` past the TCP.
        clearance_m: height of the fingertips above the rim, m.
    """
    centre = 0.5 * (np.asarray(ref_min, dtype=np.float64) + np.asarray(ref_max, dtype=np.float64))
    t = np.array([centre[0], centre[1], float(ref_max[2]) + gripper.tip_beyond_tcp_m + clearance_m])
    return _frames(np.array([[1.0, 0.0, 0.0]]), -WORLD_UP[None], t[None])[0]


def _spread(T: np.ndarray, n: int) -> np.ndarray:
    """At most ``n`` of the poses (C, 4, 4), spread out by farthest-point sampling of their positions."""
    if len(T) <= n:
        return T
    chosen = [0]
    dist = np.linalg.norm(T[:, :3, 3] - T[0, :3, 3], axis=1)
    while len(chosen) < n:
        k = int(np.argmax(dist))
        chosen.append(k)
        dist = np.minimum(dist, np.linalg.norm(T[:, :3, 3] - T[k, :3, 3], axis=1))
    return T[np.array(chosen)]
