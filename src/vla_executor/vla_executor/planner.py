# SPDX-License-Identifier: Apache-2.0
"""Joint-space motion planning: OMPL RRTConnect against a collision checker, densely checked.

The planner sees the world only through a ``CollisionChecker`` (``is_free(q) -> bool``):

- ``PyBulletCollisionChecker``: the robot URDF plus obstacles (boxes, meshes, or a point cloud
  turned into voxel boxes) in a private PyBullet DIRECT client, independent of the simulator.
  In sim the obstacles may come from the scene; on a robot from the fused point cloud
  (occupancy), so the executor never needs ground truth.

Planning: a straight joint-space line is tried first (checked densely); otherwise RRTConnect
(``ompl`` 2.0.1 nanobind API) with edge checks every ``resolution_rad`` and OMPL path
simplification. The returned waypoint path is re-checked densely (max joint step
``resolution_rad`` between checks), so any timing law that follows the polyline stays free.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from vla_executor.robot_model import RobotModel

_OMPL_SEEDED = False


class PlanningError(RuntimeError):
    """No collision-free path was found; ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class CollisionChecker(Protocol):
    """Anything that says whether a joint configuration is collision-free."""

    def is_free(self, q: np.ndarray) -> bool:
        """True when configuration q (n,) is free of collisions."""
        ...


@dataclass
class Box:
    """A box obstacle: centre (3,) in the base frame, half extents (3,), orientation quaternion xyzw."""

    center: tuple[float, float, float]
    half_extents: tuple[float, float, float]
    quat_xyzw: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)


@dataclass
class MeshObstacle:
    """A mesh obstacle (OBJ/STL path, loaded as a convex hull by PyBullet) at a pose."""

    path: str
    position: tuple[float, float, float]
    quat_xyzw: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)
    scale: float = 1.0


def table_box(model: RobotModel, half_x: float = 0.9, half_y: float = 0.9, thickness: float = 0.05) -> Box:
    """The table top under the robot as a box (top face at ``model.table_height``)."""
    return Box((0.35, 0.0, model.table_height - thickness / 2.0), (half_x, half_y, thickness / 2.0))


def voxelize(xyz: np.ndarray, voxel_m: float, min_z: float | None = None,
             max_points: int = 4000) -> np.ndarray:
    """Centres (M, 3) of the occupied voxels of a point cloud xyz (N, 3).

    Args:
        xyz: points in the base frame, metres.
        voxel_m: voxel edge length.
        min_z: drop points below this height (e.g. the table surface, modelled separately).
        max_points: cap on the returned voxels (the most populated ones are kept).
    """
    xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    xyz = xyz[np.all(np.isfinite(xyz), axis=1)]
    if min_z is not None:
        xyz = xyz[xyz[:, 2] >= min_z]
    if len(xyz) == 0:
        return np.zeros((0, 3))
    keys = np.floor(xyz / voxel_m).astype(np.int64)  # (N, 3)
    uniq, counts = np.unique(keys, axis=0, return_counts=True)
    if len(uniq) > max_points:
        uniq = uniq[np.argsort(-counts)[:max_points]]
    return (uniq + 0.5) * voxel_m


class PyBulletCollisionChecker:
    """Robot + obstacles in a private PyBullet DIRECT client; ``is_free(q)`` costs ~0.1 ms.

    Contacts of the fixed base link are ignored (it stands on the table by design). Self
    collisions between non-adjacent links are checked, except pairs already touching at the
    home configuration. The gripper fingers are held open during checks (conservative).

    Args:
        model: the robot.
        obstacles: boxes / meshes in the base frame.
        margin_m: a configuration counts as colliding when any distance is below this.
        ignore_self_pairs: extra (link_a, link_b) name pairs whose contacts are ignored.
    """

    def __init__(self, model: RobotModel, obstacles: list[Box | MeshObstacle] | None = None,
                 margin_m: float = 0.0, ignore_self_pairs: list[tuple[str, str]] | None = None):
        import pybullet as pb

        self._pb = pb
        self.model = model
        self.margin_m = float(margin_m)
        self.cid = pb.connect(pb.DIRECT)
        self.robot = pb.loadURDF(str(model.urdf_path), useFixedBase=True, flags=pb.URDF_USE_SELF_COLLISION,
                                 physicsClientId=self.cid)
        n = pb.getNumJoints(self.robot, physicsClientId=self.cid)
        info = [pb.getJointInfo(self.robot, i, physicsClientId=self.cid) for i in range(n)]
        self.link_names = {j[0]: j[12].decode() for j in info}
        self.link_names[-1] = model.base_frame
        by_name = {j[1].decode(): j[0] for j in info}
        self.joint_ids = [by_name[name] for name in model.joint_names]
        for gj in model.gripper.get("joints", []):
            if gj in by_name:
                pb.resetJointState(self.robot, by_name[gj], float(model.gripper.get("finger_stroke_m", 0.0)),
                                   physicsClientId=self.cid)
        self.obstacle_ids: list[int] = []
        self._ignored_bodies: set[int] = set()
        self.n_checks = 0
        self.add_obstacles(obstacles or [])
        link_id = {v: k for k, v in self.link_names.items()}
        self._ignored_self = {tuple(sorted((link_id[a], link_id[b]))) for a, b in (ignore_self_pairs or [])}
        self.set_q(model.home)
        pb.performCollisionDetection(physicsClientId=self.cid)
        for c in pb.getContactPoints(self.robot, self.robot, physicsClientId=self.cid):
            if c[8] < self.margin_m:
                self._ignored_self.add(tuple(sorted((c[3], c[4]))))

    # ------------------------------------------------------------------ world
    def add_obstacles(self, obstacles: list[Box | MeshObstacle]) -> list[int]:
        """Add boxes/meshes; returns their body ids."""
        pb, ids = self._pb, []
        for ob in obstacles:
            if isinstance(ob, Box):
                shape = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=list(ob.half_extents),
                                                physicsClientId=self.cid)
                pos, quat = ob.center, ob.quat_xyzw
            elif isinstance(ob, MeshObstacle):
                if not Path(ob.path).exists():
                    raise ValueError(f"mesh obstacle {ob.path!r} does not exist")
                shape = pb.createCollisionShape(pb.GEOM_MESH, fileName=ob.path, meshScale=[ob.scale] * 3,
                                                physicsClientId=self.cid)
                pos, quat = ob.position, ob.quat_xyzw
            else:
                raise TypeError(f"obstacle must be Box or MeshObstacle, got {type(ob).__name__}")
            ids.append(pb.createMultiBody(0.0, shape, basePosition=list(pos), baseOrientation=list(quat),
                                          physicsClientId=self.cid))
        self.obstacle_ids += ids
        return ids

    def set_point_cloud(self, xyz: np.ndarray, voxel_m: float = 0.02, min_z: float | None = None,
                        keep_out: list[tuple[np.ndarray, float]] | None = None) -> int:
        """Replace the cloud obstacles with voxel boxes of a point cloud (N, 3) in the base frame.

        Args:
            xyz: points, metres.
            voxel_m: voxel edge.
            min_z: ignore points below (default: table height + one voxel).
            keep_out: (centre (3,), radius) spheres whose points are dropped (the object to grasp).

        Returns:
            number of voxel boxes.
        """
        pb = self._pb
        for bid in getattr(self, "_cloud_ids", []):
            pb.removeBody(bid, physicsClientId=self.cid)
            self.obstacle_ids.remove(bid)
        self._cloud_ids: list[int] = []
        pts = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
        for centre, radius in keep_out or []:
            pts = pts[np.linalg.norm(pts - np.asarray(centre), axis=1) > radius]
        z0 = self.model.table_height + voxel_m if min_z is None else min_z
        centres = voxelize(pts, voxel_m, min_z=z0)
        if len(centres):
            shape = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=[voxel_m / 2] * 3,
                                            physicsClientId=self.cid)
            for chunk in range(0, len(centres), 1000):
                part = centres[chunk:chunk + 1000]
                ids = pb.createMultiBody(0.0, shape, batchPositions=part.tolist(), physicsClientId=self.cid)
                ids = list(ids) if isinstance(ids, (list, tuple)) else [ids]
                self._cloud_ids += ids
        self.obstacle_ids += self._cloud_ids
        return len(centres)

    def ignore_bodies(self, body_ids: list[int]) -> None:
        """Ignore contacts with these obstacle bodies (e.g. the object being grasped)."""
        self._ignored_bodies = set(body_ids)

    def set_q(self, q: np.ndarray) -> None:
        """Put the arm at q (n,) without physics."""
        for jid, v in zip(self.joint_ids, q):
            self._pb.resetJointState(self.robot, jid, float(v), physicsClientId=self.cid)

    # ------------------------------------------------------------------ checks
    def colliding_pairs(self, q: np.ndarray) -> list[tuple[str, str]]:
        """Names of (robot link, other) pairs in collision at q; empty when free."""
        pb = self._pb
        self.set_q(q)
        pb.performCollisionDetection(physicsClientId=self.cid)
        out = []
        for c in pb.getContactPoints(bodyA=self.robot, physicsClientId=self.cid):
            if c[8] >= self.margin_m:
                continue
            if c[2] == self.robot:  # self collision
                if c[3] in (-1,) and c[4] in (-1,):
                    continue
                if tuple(sorted((c[3], c[4]))) in self._ignored_self:
                    continue
                out.append((self.link_names[c[3]], self.link_names[c[4]]))
            elif c[3] != -1 and c[2] not in self._ignored_bodies:
                out.append((self.link_names[c[3]], f"body{c[2]}"))
        return out

    def is_free(self, q: np.ndarray) -> bool:
        """True when q (n,) is inside the joint limits and collision-free."""
        self.n_checks += 1
        if not self.model.within_limits(q):
            return False
        return not self.colliding_pairs(q)

    def close(self) -> None:
        """Disconnect the private PyBullet client."""
        if self.cid is not None:
            self._pb.disconnect(self.cid)
            self.cid = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


class SafetyAwareChecker:
    """A collision checker that also keeps the TCP in the safety box and the fingertips above the table.

    Planning against it makes RRT paths satisfy the Cartesian safety checks by construction
    (without it, a shortcut path may swing the TCP over the robot and be refused afterwards).
    """

    def __init__(self, model: RobotModel, inner: CollisionChecker):
        self.model, self.inner = model, inner
        box = model.config.get("safety_box", {"min": [-np.inf] * 3, "max": [np.inf] * 3})
        self.bmin, self.bmax = np.asarray(box["min"], float), np.asarray(box["max"], float)
        self.z_min = model.table_height + float(model.config.get("table_clearance_m", 0.0))
        self.tip = float(model.config.get("fingertip_offset_m", 0.0))

    def is_free(self, q: np.ndarray) -> bool:
        """True when q is collision-free and its TCP/fingertips satisfy the Cartesian limits."""
        T = self.model.fk(q)
        p = T[:3, 3]
        if np.any(p < self.bmin) or np.any(p > self.bmax):
            return False
        if min(p[2], p[2] + self.tip * T[2, 2]) < self.z_min:
            return False
        return self.inner.is_free(q)

    def first_blocked(self, Q: np.ndarray) -> int | None:
        """Index of the first configuration of Q (M, n) that :meth:`is_free` refuses, or None.

        Same answer as calling :meth:`is_free` in order; the Cartesian limits of all M
        configurations come from one batched forward kinematics (half the cost of a dense check).
        """
        Q = np.asarray(Q, dtype=np.float64)
        if not len(Q):
            return None
        T = self.model.fk_batch(Q)  # (M, 4, 4)
        p = T[:, :3, 3]
        bad = np.any(p < self.bmin, axis=1) | np.any(p > self.bmax, axis=1)
        bad |= np.minimum(p[:, 2], p[:, 2] + self.tip * T[:, 2, 2]) < self.z_min
        for i, q in enumerate(Q):
            if bad[i] or not self.inner.is_free(q):
                return i
        return None


def densify(path: np.ndarray, max_step_rad: float) -> np.ndarray:
    """Insert points along a joint path (M, n) so no joint moves more than max_step_rad per step."""
    path = np.asarray(path, dtype=np.float64)
    if len(path) < 2:
        return path.copy()
    step = path[1:] - path[:-1]  # (M-1, n)
    k = np.maximum(1, np.ceil(np.abs(step).max(axis=1) / max_step_rad).astype(np.int64))  # (M-1,)
    seg = np.repeat(np.arange(len(k)), k)  # segment of each inserted point
    j = np.arange(len(seg)) - np.repeat(np.cumsum(k) - k, k) + 1  # 1..k within its segment
    s = (j / np.repeat(k, k))[:, None]
    return np.concatenate([path[:1], path[seg] + s * step[seg]])


def first_collision(checker: CollisionChecker, path: np.ndarray, max_step_rad: float = 0.01) -> int | None:
    """Index into densify(path) of the first colliding configuration, or None when all are free."""
    dense = densify(path, max_step_rad)
    if hasattr(checker, "first_blocked"):
        return checker.first_blocked(dense)
    for i, q in enumerate(dense):
        if not checker.is_free(q):
            return i
    return None


@dataclass
class PlanResult:
    """A joint-space path and what it cost to find it."""

    path: np.ndarray  # (M, n) waypoints, start and goal included
    plan_time_s: float
    simplify_time_s: float
    n_checks: int
    method: str  # "direct" | "rrtconnect"
    info: dict = field(default_factory=dict)


def plan_joint_path(model: RobotModel, checker: CollisionChecker, q_start: np.ndarray, q_goal: np.ndarray,
                    timeout_s: float = 2.0, resolution_rad: float = 0.01, simplify: bool = True,
                    seed: int = 0, simplify_time_s: float = 0.1) -> PlanResult:
    """A collision-free joint-space path from q_start to q_goal.

    Args:
        model: robot (joint limits bound the search).
        checker: collision checker.
        q_start: start configuration (n,).
        q_goal: goal configuration (n,).
        timeout_s: RRTConnect time budget.
        resolution_rad: maximum joint step between two collision checks along edges.
        simplify: run OMPL's path simplifier (shortcutting + smoothing).
        simplify_time_s: time budget of the simplifier.
        seed: OMPL RNG seed (deterministic plans).

    Raises:
        PlanningError: start/goal in collision or outside limits, or no path within the timeout.
    """
    q_start = np.asarray(q_start, dtype=np.float64)
    q_goal = np.asarray(q_goal, dtype=np.float64)
    n = model.dof
    counter = {"n": 0}

    def free(q: np.ndarray) -> bool:
        counter["n"] += 1
        return checker.is_free(q)

    for name, q in (("start", q_start), ("goal", q_goal)):
        if q.shape != (n,):
            raise ValueError(f"{name} configuration must have shape ({n},), got {q.shape}")
        if not model.within_limits(q, tol=1e-6):
            raise PlanningError(f"{name}_out_of_limits", f"{name} configuration {q.round(3).tolist()} "
                                "is outside the joint limits")
        if not free(np.clip(q, model.lower, model.upper)):
            raise PlanningError(f"{name}_in_collision", f"{name} configuration is in collision")
    q_start = np.clip(q_start, model.lower, model.upper)
    q_goal = np.clip(q_goal, model.lower, model.upper)
    t0 = time.perf_counter()
    direct = np.stack([q_start, q_goal])
    if all(free(q) for q in densify(direct, resolution_rad)):
        return PlanResult(direct, time.perf_counter() - t0, 0.0, counter["n"], "direct")

    from ompl import base as ob
    from ompl import geometric as og
    from ompl import util as ou

    ou.setLogLevel(ou.LOG_WARN)
    global _OMPL_SEEDED
    if not _OMPL_SEEDED:  # OMPL accepts a seed only before its first random number
        ou.RNG.setSeed(int(seed) + 1)
        _OMPL_SEEDED = True
    space = ob.RealVectorStateSpace(n)
    bounds = ob.RealVectorBounds(n)
    for i in range(n):
        bounds.setLow(i, float(model.lower[i]))
        bounds.setHigh(i, float(model.upper[i]))
    space.setBounds(bounds)
    ss = og.SimpleSetup(space)
    ss.setStateValidityChecker(lambda st: free(np.fromiter((st[i] for i in range(n)), float, n)))
    si = ss.getSpaceInformation()
    # OMPL checks edges every resolution * max extent (L2); use the L2 bound of a max-joint step
    si.setStateValidityCheckingResolution(resolution_rad / space.getMaximumExtent())
    start, goal = space.allocState(), space.allocState()
    for i in range(n):
        start[i] = float(q_start[i])
        goal[i] = float(q_goal[i])
    ss.setStartAndGoalStates(start, goal)
    ss.setPlanner(og.RRTConnect(si))
    solved = ss.solve(float(timeout_s))
    plan_time = time.perf_counter() - t0
    if not solved or not ss.haveExactSolutionPath():
        raise PlanningError("no_path", f"RRTConnect found no path in {timeout_s:.1f} s "
                            f"({counter['n']} collision checks)")
    t1 = time.perf_counter()
    path_obj = ss.getSolutionPath()
    if simplify:
        # bounded OMPL simplification: vertex reduction + partial shortcutting (no B-spline
        # smoothing, which adds vertices and costs many dense edge checks)
        ps = og.PathSimplifier(si)
        t_end = time.perf_counter() + simplify_time_s
        for _ in range(3):
            changed = ps.reduceVertices(path_obj)
            changed = ps.partialShortcutPath(path_obj) or changed
            if not changed or time.perf_counter() > t_end:
                break
    path = np.array([[path_obj.getState(k)[i] for i in range(n)] for k in range(path_obj.getStateCount())])
    simplify_time = time.perf_counter() - t1
    # our own dense re-check of the final polyline (OMPL's motion validator uses L2 steps)
    bad = first_collision(FunctionChecker(free), path, resolution_rad)
    if bad is not None:
        raise PlanningError("path_in_collision", "the simplified path failed the dense re-check")
    return PlanResult(path, plan_time, simplify_time, counter["n"], "rrtconnect")


class FunctionChecker:
    """Adapt a ``q -> bool`` callable to the CollisionChecker protocol."""

    def __init__(self, fn):
        self._fn = fn

    def is_free(self, q: np.ndarray) -> bool:
        """Forward to the wrapped callable."""
        return bool(self._fn(q))
