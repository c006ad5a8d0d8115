# SPDX-License-Identifier: Apache-2.0
"""Grasp and place motion primitives executed in physics (the same for every policy).

A policy (learned, random or the expert) only chooses a 6-DoF tool pose; these primitives turn it
into joint trajectories with the robot's IK (``vla_executor.robot_model.RobotModel.ik``) and
execute them in the world, stepping physics. Unlike the public A2 code, places are executed too
(the object is released and must come to rest), and nothing waits on the wall clock.

Grasp: hover above/behind the pose (>= 0.22 m high), open, descend along the approach axis,
close, lift 0.20 m straight up. Place: hover above the pose, descend, open, retreat, go home.
Trajectories: joint-space moves with a smooth (cubic) time law at <= 50 % of the velocity limits;
Cartesian moves as IK waypoints every 1 cm, each seeded by the previous one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

logger = logging.getLogger(__name__)

HOVER_MIN_Z_M = 0.22
APPROACH_DIST_M = 0.10
LIFT_M = 0.20
CART_SPEED_MPS = 0.15
JOINT_SPEED_FRACTION = 0.5
MAX_WAYPOINT_JUMP_RAD = 0.35
RELEASE_OPENING_M = 0.02


@dataclass
class MotionResult:
    """What a primitive did.

    Attributes:
        ok: the motion ran to completion (IK found and the arm reached every goal).
        reason: why not, when ``ok`` is False ("unreachable", "tracking", ...).
        held: names of objects between the pads afterwards (grasp only).
        steps: physics steps the primitive took.
    """

    ok: bool
    reason: str = ""
    held: list[str] = field(default_factory=list)
    steps: int = 0


def joint_move(
    q0: np.ndarray, q1: np.ndarray, vel_limits: np.ndarray, n: int = 16, min_duration_s: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    """A smooth joint-space move: t (n,) s and q (n, dof) with a cubic time law."""
    q0, q1 = np.asarray(q0, float), np.asarray(q1, float)
    # peak speed of a cubic time law is 1.5 x the mean speed
    dur = max(min_duration_s, float(np.max(1.5 * np.abs(q1 - q0) / (JOINT_SPEED_FRACTION * vel_limits))))
    s = np.linspace(0.0, 1.0, n)
    blend = 3 * s**2 - 2 * s**3  # (n,)
    return s * dur, q0 + blend[:, None] * (q1 - q0)


def cartesian_path(
    model, T0: np.ndarray, T1: np.ndarray, q_seed: np.ndarray, speed_mps: float = CART_SPEED_MPS
) -> tuple[np.ndarray, np.ndarray] | None:
    """Straight-line TCP path from T0 to T1 (same orientation) as IK waypoints every ~1 cm.

    Returns (t (K,), q (K, dof)) or None if a waypoint is unreachable or the arm would jump.
    """
    dist = float(np.linalg.norm(T1[:3, 3] - T0[:3, 3]))
    k = max(2, int(np.ceil(dist / 0.01)) + 1)
    qs = []
    q = np.asarray(q_seed, float)
    for a in np.linspace(0.0, 1.0, k):
        T = T1.copy()
        T[:3, 3] = (1 - a) * T0[:3, 3] + a * T1[:3, 3]
        q_new = model.ik(T, q)
        if q_new is None or np.max(np.abs(q_new - q)) > MAX_WAYPOINT_JUMP_RAD and qs:
            return None
        qs.append(q_new)
        q = q_new
    Q = np.asarray(qs)  # (K, dof)
    s = np.linspace(0.0, 1.0, k)
    dur = max(0.2, dist / speed_mps)
    # cubic time law: resample waypoint parameters at smooth times
    t = np.linspace(0.0, dur, k)
    s_of_t = 3 * (t / dur) ** 2 - 2 * (t / dur) ** 3
    Qt = np.stack([np.interp(s_of_t, s, Q[:, j]) for j in range(Q.shape[1])], axis=1)
    # respect velocity limits: stretch time if needed
    v = np.abs(np.diff(Qt, axis=0)) / np.diff(t)[:, None]
    ratio = float(np.max(v / (JOINT_SPEED_FRACTION * model.vel_limits)))
    if ratio > 1.0:
        t = t * ratio
    return t, Qt


def _run(world, t: np.ndarray, q: np.ndarray) -> bool:
    return world.execute(t, q)


def hover_pose(T: np.ndarray, min_z: float = HOVER_MIN_Z_M, dist: float = APPROACH_DIST_M) -> np.ndarray:
    """Pose backed off along -approach (tool z) by >= ``dist`` and at least ``min_z`` high."""
    a = T[:3, 2]
    d = dist
    if a[2] < -1e-3:  # approaching downwards: back off until high enough
        d = max(dist, (min_z - T[2, 3]) / -a[2])
    H = T.copy()
    H[:3, 3] = T[:3, 3] - d * a
    return H


def move_to_pose(world, T: np.ndarray, seed: np.ndarray | None = None) -> MotionResult:
    """Joint-space move to a TCP pose (IK nearest ``seed``, default the current joints)."""
    robot = world.robot
    q0 = robot.joint_positions()
    q1 = robot.model.ik(T, q0 if seed is None else seed)
    if q1 is None:
        return MotionResult(False, "unreachable")
    t, q = joint_move(q0, q1, robot.vel_limits)
    start = world.steps
    ok = _run(world, t, q)
    return MotionResult(ok, "" if ok else "tracking", steps=world.steps - start)


def go_home(world) -> MotionResult:
    """Joint-space move back to the home configuration."""
    robot = world.robot
    start = world.steps
    t, q = joint_move(robot.joint_positions(), robot.model.home, robot.vel_limits)
    ok = _run(world, t, q)
    return MotionResult(ok, "" if ok else "tracking", steps=world.steps - start)


def held_objects(world) -> list[str]:
    """Names of objects both pads touch now."""
    robot = world.robot
    return [n for n, b in world.object_ids.items() if robot.holds(b)]


def execute_grasp(world, T_grasp: np.ndarray) -> MotionResult:
    """Hover, open, descend to ``T_grasp`` (world TCP pose), close, lift 0.20 m.

    The result lists the objects held after the lift; the caller decides success (the target
    must be held and raised >= 10 cm, see ``vla_sim.checks``).
    """
    robot = world.robot
    model = robot.model
    start = world.steps
    H = hover_pose(T_grasp)
    q_hover = model.ik(H, model.home)
    if q_hover is None:
        return MotionResult(False, "unreachable", steps=0)
    descend = cartesian_path(model, H, T_grasp, q_hover)
    if descend is None:
        return MotionResult(False, "unreachable", steps=0)
    L = T_grasp.copy()
    L[2, 3] += LIFT_M
    lift = cartesian_path(model, T_grasp, L, descend[1][-1])
    if lift is None:
        return MotionResult(False, "unreachable", steps=0)
    robot.command_gripper(open=True)
    t, q = joint_move(robot.joint_positions(), q_hover, robot.vel_limits)
    if not _run(world, t, q):
        return MotionResult(False, "tracking", steps=world.steps - start)
    world.set_gripper(True, max_steps=120)
    if not _run(world, *descend):
        logger.debug("grasp descent did not reach the pose (contact?)")
    world.set_gripper(False, max_steps=180)
    _run(world, *lift)
    world.step(48)  # let a slipping object fall before judging
    return MotionResult(True, held=held_objects(world), steps=world.steps - start)


def execute_place(world, T_place: np.ndarray, retreat: bool = True) -> MotionResult:
    """Carry the held object to ``T_place`` (world TCP pose): hover, descend, open, retreat, home."""
    robot = world.robot
    model = robot.model
    start = world.steps
    H = hover_pose(T_place)
    q_hover = model.ik(H, robot.joint_positions())
    if q_hover is None:
        q_hover = model.ik(H, model.home)
    if q_hover is None:
        return MotionResult(False, "unreachable")
    descend = cartesian_path(model, H, T_place, q_hover)
    if descend is None:
        return MotionResult(False, "unreachable")
    # rise first (straight up from where the object is), then travel at hover height
    T_now = robot.tcp_pose()
    if T_now[2, 3] < HOVER_MIN_Z_M - 1e-3:
        U = T_now.copy()
        U[2, 3] = HOVER_MIN_Z_M
        up = cartesian_path(model, T_now, U, robot.joint_positions())
        if up is not None:
            _run(world, *up)
    t, q = joint_move(robot.joint_positions(), q_hover, robot.vel_limits)
    if not _run(world, t, q):
        return MotionResult(False, "tracking", steps=world.steps - start)
    _run(world, *descend)
    # open just enough to let go (a full 85 mm opening would push on container walls)
    world.set_gripper(True, max_steps=120, width_m=robot.gripper_width() + RELEASE_OPENING_M)
    if retreat:
        back = cartesian_path(model, robot.tcp_pose(), H, robot.joint_positions())
        if back is not None:
            _run(world, *back)
        go_home(world)
    return MotionResult(True, steps=world.steps - start)
