# SPDX-License-Identifier: Apache-2.0
"""The scripted expert: privileged grasp and place poses, for demonstrations and as a reference.

It reads the simulator state (object poses, sizes, the instruction's ground truth), which no
learned policy may see. Grasps are top-down and antipodal across the object's narrowest
horizontal width: the object's surface points (catalogue shape at the simulated pose) in the slab
the pads sweep are projected on candidate closing directions every 5 degrees; a candidate is kept
when the width fits the 85 mm gripper, the IK solution exists within the joint limits and the
open gripper at the grasp pose touches nothing (PyBullet closest-point query with the arm posed
kinematically, then restored).
Places: the held object's current offset from the TCP is kept; a free point in the relation's
region is chosen (clear of the other objects by the object's radius plus 1.2 cm, and where the
opening fingers touch nothing) and the object is released 1.2 cm above the support surface (into
containers: from just above the rim).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pybullet as pb

from vla_executor.safety import check_target
from vla_sim import objects as objlib
from vla_sim.instructions import Instruction, Region
from vla_sim.primitives import hover_pose

YAW_STEP_DEG = 5
MAX_WIDTH_M = 0.074
FINGER_CLEARANCE_M = 0.003
RELEASE_HEIGHT_M = 0.012
FLOOR_OF_OPEN_BOX_M = 0.008
FINGERTIP_BELOW_TCP_M = 0.0175
SLAB_HALF_M = 0.015
SLAB_ONLY_PENALTY = 0.05


@dataclass(order=True)
class GraspCandidate:
    """A top-down grasp: TCP pose (world), the width across the fingers and a score (lower = better)."""

    score: float
    name: str = field(compare=False)
    T: np.ndarray = field(compare=False, repr=False)
    width_m: float = field(compare=False)
    key: tuple = field(compare=False, default=())


def _top_down(x: float, y: float, z: float, closing_xy: np.ndarray) -> np.ndarray:
    """TCP pose with z pointing down and y (closing direction) along ``closing_xy``."""
    yv = np.array([closing_xy[0], closing_xy[1], 0.0])
    yv /= np.linalg.norm(yv)
    if yv[1] > 0 or (abs(yv[1]) < 1e-9 and yv[0] < 0):  # home has y_tool = -y_world: stay near it
        yv = -yv
    zv = np.array([0.0, 0.0, -1.0])
    xv = np.cross(yv, zv)
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = xv, yv, zv, [x, y, z]
    return T


def surface_points_world(world, name: str) -> np.ndarray:
    """(N, 3) world points on an object's surface (catalogue shape at its simulated pose)."""
    T = world.object_pose(name)
    pts = objlib.get(name).surface_points()
    return (T[:3, :3] @ pts.T).T + T[:3, 3]


def grasp_candidates(world, name: str) -> list[GraspCandidate]:
    """Top-down antipodal candidates on one object, best first (not yet checked for collisions).

    For each closing direction (every 5 degrees) and each offset along the perpendicular, only the
    surface points in the slab the pads sweep (+-1.5 cm across, from the fingertips to 5 cm above
    the TCP) set the width and the centre; the rest of the object (a mug's handle, a neighbour) is
    left to the collision check.
    """
    pts = surface_points_world(world, name)  # (N, 3)
    _, hi = world.object_aabb(name)
    top = float(min(hi[2], pts[:, 2].max()))
    centre = 0.5 * (pts.min(axis=0) + pts.max(axis=0))
    z_levels = [max(0.022, min(0.5 * top, top - 0.02))]
    if top - 0.016 > z_levels[0] + 0.01:  # also try gripping just the top (tilted or tall objects)
        z_levels.append(top - 0.016)
    out = []
    for deg in range(0, 180, YAW_STEP_DEG):
        d = np.array([math.cos(math.radians(deg)), math.sin(math.radians(deg))])
        perp = np.array([-d[1], d[0]])
        along = pts[:, :2] @ d  # (N,)
        across = pts[:, :2] @ perp  # (N,)
        length = float(np.ptp(across))
        offsets = (
            [0.0] + ([0.015, -0.015] if length > 0.06 else []) + ([0.03, -0.03] if length > 0.09 else [])
        )
        c_across = float(centre[:2] @ perp)
        whole = float(np.ptp(along))  # width of the whole object in this direction
        for k, z in enumerate(z_levels):
            in_z = (pts[:, 2] >= z - FINGERTIP_BELOW_TCP_M) & (pts[:, 2] <= z + 0.05)
            for off in offsets:
                slab = in_z & (np.abs(across - (c_across + off)) <= SLAB_HALF_M)
                if not np.any(slab):
                    continue
                lo_d, hi_d = float(along[slab].min()), float(along[slab].max())
                width = hi_d - lo_d
                if width > MAX_WIDTH_M:
                    continue
                xy = 0.5 * (lo_d + hi_d) * d + (c_across + off) * perp
                # grasps across the whole object first; slab-only ones (e.g. beside a handle) after
                score = (
                    width + 0.5 * abs(off) + 0.01 * k + (0.0 if whole <= MAX_WIDTH_M else SLAB_ONLY_PENALTY)
                )
                out.append(
                    GraspCandidate(score, name, _top_down(xy[0], xy[1], z, d), width, (name, deg, off, k))
                )
    out.sort()
    return out


def grasp_reachable(model, T: np.ndarray) -> bool:
    """Whether the executor accepts the target (workspace, table) and the grasp path has IK solutions."""
    from vla_sim.primitives import LIFT_M, cartesian_path

    if not check_target(model, T):  # the executor's own refusal rule (base frame = world here)
        return False
    H = hover_pose(T)
    q_hover = model.ik(H, model.home)
    if q_hover is None:
        return False
    down = cartesian_path(model, H, T, q_hover)
    if down is None:
        return False
    L = T.copy()
    L[2, 3] += LIFT_M
    return cartesian_path(model, T, L, down[1][-1]) is not None


class KinematicProbe:
    """Poses the arm kinematically to test a configuration for contacts, then restores it."""

    def __init__(self, world):
        self.world = world
        self.robot = world.robot

    def collisions(
        self,
        q: np.ndarray,
        ignore: set[int] = frozenset(),
        margin: float = FINGER_CLEARANCE_M,
        gripper_open: bool = True,
    ) -> list[str]:
        """Names of what the robot at ``q`` (fingers open) comes within ``margin`` of ('table' too)."""
        r, cid = self.robot, self.world.cid
        idx = r.arm_idx + r.finger_idx
        saved = [pb.getJointState(r.body, j, physicsClientId=cid)[:2] for j in idx]
        finger = r.finger_max if gripper_open else 0.0
        hits = []
        try:
            for j, v in zip(r.arm_idx, q):
                pb.resetJointState(r.body, j, float(v), 0.0, physicsClientId=cid)
            for j in r.finger_idx:
                pb.resetJointState(r.body, j, finger, 0.0, physicsClientId=cid)
            bodies = {n: b for n, b in self.world.object_ids.items() if b not in ignore}
            bodies["table"] = self.world.table_id
            for n, b in bodies.items():
                # the robot base stands on the table: its contact there does not count
                if any(c[3] != -1 for c in pb.getClosestPoints(r.body, b, margin, physicsClientId=cid)):
                    hits.append(n)
            return hits
        finally:
            for j, (p, v) in zip(idx, saved):
                pb.resetJointState(r.body, j, p, v, physicsClientId=cid)

    def collides(self, q: np.ndarray, **kw) -> bool:
        """True when the robot at ``q`` touches anything (see :meth:`collisions`)."""
        return bool(self.collisions(q, **kw))


class ExpertPolicy:
    """Privileged scripted policy (``act`` follows the evaluation Policy protocol).

    The evaluator calls :meth:`bind` with the world and the ground-truth instruction before each
    episode; a learned policy never receives either.
    """

    name = "expert"
    privileged = True
    needs_frames = False

    def __init__(self) -> None:
        self.world = None
        self.instruction: Instruction | None = None
        self._tried: set[tuple] = set()
        self._no_grasp_at_step = -1

    def bind(self, world, instruction: Instruction) -> None:
        """Give the expert the world state and the ground truth of the next episode."""
        self.world = world
        self.instruction = instruction
        self._tried = set()
        self._no_grasp_at_step = -1

    def reset(self) -> None:
        """Forget the attempts of the previous episode."""
        self._tried = set()
        self._no_grasp_at_step = -1

    def act(self, frames, instruction_text: str, robot_state: dict) -> np.ndarray | None:
        """Grasp or place pose (4, 4) in the world for the current phase, or None if none found."""
        if self.world is None or self.instruction is None:
            raise RuntimeError("ExpertPolicy.act needs bind(world, instruction) first (it is privileged)")
        if robot_state.get("phase", "grasp") == "grasp":
            return self.grasp_pose()
        return self.place_pose()

    # ------------------------------------------------------------------ grasp
    def grasp_pose(self) -> np.ndarray | None:
        """Best collision-free, reachable grasp on an acceptable target not tried before.

        When every target grasp is blocked, it grasps the object that blocks most of them, or
        what blocks that one (the episode removes a lifted non-target; the attempt counts as a
        step).
        """
        world = self.world
        if self._no_grasp_at_step == world.steps:
            return None  # nothing moved since the last fruitless search: same answer
        targets = [t for t in self.instruction.targets if t in world.object_ids]
        targets.sort(key=lambda n: -world.object_aabb(n)[1][2])  # most exposed first
        # breadth-first: the targets, then what blocks them, then what blocks those (3 levels)
        level, seen = targets, set(targets)
        for _ in range(3):
            blockers: dict[str, int] = {}
            for name in level:
                T = self._first_free_grasp(name, blockers)
                if T is not None:
                    return T
            level = [
                n for n in sorted(blockers, key=lambda n: -blockers[n]) if n != "table" and n not in seen
            ]
            seen.update(level)
            if not level:
                break
        self._no_grasp_at_step = world.steps
        return None

    def _first_free_grasp(self, name: str, blockers: dict[str, int]) -> np.ndarray | None:
        world = self.world
        model = world.robot.model
        probe = KinematicProbe(world)
        for cand in grasp_candidates(world, name):
            if cand.key in self._tried:
                continue
            q = model.ik(cand.T, model.home)
            if q is None:
                continue
            hits = probe.collisions(q)  # cheap: checked before the full path
            if hits:
                for h in hits:
                    if h != name:
                        blockers[h] = blockers.get(h, 0) + 1
                continue
            if not grasp_reachable(model, cand.T):
                continue
            self._tried.add(cand.key)
            return cand.T
        return None

    # ------------------------------------------------------------------ place
    def place_pose(self) -> np.ndarray | None:
        """Release pose for the held object inside the instruction's region, or None."""
        world = self.world
        region = self.instruction.region
        held = self.instruction.target
        if region is None or held not in world.object_ids:
            return None
        T_tcp = world.robot.tcp_pose()
        lo, hi = world.object_aabb(held)
        obj_c = world.object_pose(held)[:3, 3]
        off_xy = obj_c[:2] - T_tcp[:2, 3]
        bottom_off = lo[2] - T_tcp[2, 3]
        pts = surface_points_world(world, held)  # (N, 3)
        radius = float(np.max(np.linalg.norm(pts[:, :2] - obj_c[:2], axis=1)))  # footprint about the centre
        model = world.robot.model
        probe = KinematicProbe(world)
        held_id = {world.object_ids[held]}
        for xy, surface_z in place_points(world, region, held, radius):
            T = T_tcp.copy()
            T[:2, 3] = xy - off_xy
            # release 1.2 cm above the surface, the fingertips >= 6 mm above it (thin objects drop a bit)
            T[2, 3] = max(
                surface_z + RELEASE_HEIGHT_M - bottom_off, surface_z + FINGERTIP_BELOW_TCP_M + 0.006
            )
            if region.relation == "in":  # fingertips stay above the rim; the object drops in
                T[2, 3] = max(T[2, 3], region.ref_max[2] + FINGERTIP_BELOW_TCP_M + 0.01)
            if not check_target(model, T):  # the executor would refuse it (workspace, table)
                continue
            q = model.ik(T, world.robot.joint_positions())
            if q is None:
                q = model.ik(T, model.home)
            if q is None or model.ik(hover_pose(T), model.home) is None:
                continue
            if region.relation not in ("in", "on") and probe.collisions(q, ignore=held_id):
                continue  # the opening fingers would hit a neighbour
            return T
        return None


def place_points(world, region: Region, held: str, radius: float) -> list[tuple[np.ndarray, float]]:
    """Candidate object centres (xy) and support heights for a region, best first."""
    lo, hi = np.asarray(region.ref_min), np.asarray(region.ref_max)
    c = 0.5 * (lo + hi)
    if region.relation in ("in", "on"):
        z = lo[2] + FLOOR_OF_OPEN_BOX_M if region.relation == "in" else hi[2]
        return [(c[:2].copy(), float(z))]
    others = [n for n in world.object_ids if n != held]
    boxes = [world.object_aabb(n) for n in others]
    clear = radius + 0.012
    pts = []
    xs = np.arange(lo[0] - 0.3, hi[0] + 0.3, 0.01)
    ys = np.arange(lo[1] - 0.3, hi[1] + 0.3, 0.01)
    gmax = {"next to": 0.10, "near": 0.15, "around": 0.20}.get(region.relation, 0.25)
    want_gap = min(max(radius + 0.02, 0.5 * gmax), gmax - 0.02)
    for x in xs:
        for y in ys:
            p = np.array([x, y])
            if not (0.25 <= x <= 0.76 and abs(y) <= 0.42):
                continue
            # inside the region with 1.5 cm to spare in every direction
            if not all(
                region.contains(np.array([x + dx, y + dy, 0.05]), 0.0)
                for dx, dy in ((0, 0), (0.015, 0), (-0.015, 0), (0, 0.015), (0, -0.015))
            ):
                continue
            g = region.gap(p)
            if g < radius + 0.01:
                continue
            ok = True
            for blo, bhi in boxes:
                d = np.maximum(np.maximum(blo[:2] - p, p - bhi[:2]), 0.0)
                if np.linalg.norm(d) < clear:
                    ok = False
                    break
            if not ok:
                continue
            lateral = 0.0
            if region.relation in ("left of", "right of"):
                lateral = abs(x - c[0])
            elif region.relation in ("in front of", "behind"):
                lateral = abs(y - c[1])
            pts.append((abs(g - want_gap) + 0.5 * lateral, p))
    pts.sort(key=lambda sp: sp[0])
    return [(p, 0.0) for _, p in pts[:40]]
