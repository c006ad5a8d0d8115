# SPDX-License-Identifier: Apache-2.0
"""Grasp and place as sequences of checked trajectory segments and gripper actions.

grasp: open -> free move to pre-grasp (``approach_distance_m`` back along the TCP approach axis
z) -> straight Cartesian approach -> close -> straight lift (``lift_height_m`` up in the base
frame). place: free transport to pre-place -> straight lower -> open -> straight retreat.

Free segments are planned in joint space (planner.plan_joint_path); straight segments solve IK
along the line every ``cartesian_step_m`` seeded by the previous solution and refuse joint jumps
(a flip through a singularity) larger than ``max_joint_jump_rad``. Every segment is
time-parameterised (toppra, or ruckig for free segments when ``timing="ruckig"``), checked
densely for collisions and by safety.check_trajectory before the plan is returned; any failure
raises MotionError with a reason code, so nothing is sent unless the whole motion is valid.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from vla_executor.metrics import trajectory_metrics
from vla_executor.planner import (
    CollisionChecker,
    PlanningError,
    SafetyAwareChecker,
    first_collision,
    plan_joint_path,
)
from vla_executor.robot_model import RobotModel, rot_log
from vla_executor.safety import check_target, check_trajectory
from vla_executor.timing import Trajectory, time_parameterize_ruckig, time_parameterize_toppra


class MotionError(RuntimeError):
    """A motion was refused; ``reason`` is a short code (unreachable, no_path, table_clearance, ...)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class MotionConfig:
    """Parameters of grasp/place sequences (see config/executor_<robot>.yaml).

    Args:
        approach_distance_m: pre-grasp / pre-place offset back along the approach axis.
        lift_height_m: lift after closing, straight up in the base frame.
        retreat_distance_m: retreat after opening, back along the approach axis.
        cartesian_step_m: spacing of IK points on straight segments.
        max_joint_jump_rad: largest joint change allowed between consecutive line points.
        timing: ``toppra`` (time-optimal) or ``ruckig`` (jerk-limited) for free segments.
        dt: trajectory sample period, s.
        planning_timeout_s: RRTConnect budget per free segment.
        resolution_rad: dense collision-check step.
        speed_scale: fraction of the velocity and acceleration limits used (0, 1].
    """

    approach_distance_m: float = 0.10
    lift_height_m: float = 0.15
    retreat_distance_m: float = 0.10
    cartesian_step_m: float = 0.005
    max_joint_jump_rad: float = 0.25
    timing: str = "ruckig"
    dt: float = 0.01
    planning_timeout_s: float = 2.0
    resolution_rad: float = 0.01
    speed_scale: float = 0.5

    def __post_init__(self):
        if self.timing not in ("toppra", "ruckig"):
            raise ValueError(f"timing must be 'toppra' or 'ruckig', got {self.timing!r}")
        if not 0.0 < self.speed_scale <= 1.0:
            raise ValueError(f"speed_scale must be in (0, 1], got {self.speed_scale}")


@dataclass
class GripperAction:
    """Open (True) or close (False) the gripper; ``name`` labels the step."""

    open: bool
    name: str


@dataclass
class Segment:
    """One arm motion: a named, checked trajectory."""

    name: str
    traj: Trajectory
    cartesian: bool
    plan_time_s: float = 0.0


@dataclass
class MotionPlan:
    """A grasp or place: ordered steps (segments and gripper actions) and what they cost."""

    kind: str
    steps: list[Segment | GripperAction]
    q_end: np.ndarray
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def segments(self) -> list[Segment]:
        """The arm segments, in order."""
        return [s for s in self.steps if isinstance(s, Segment)]

    def metrics(self) -> dict[str, float]:
        """Summed execution time, joint path length and duration-weighted RMS jerk of the segments."""
        per = [trajectory_metrics(s.traj.t, s.traj.q) for s in self.segments]
        total_t = sum(m["execution_time_s"] for m in per)
        jerk2 = sum(m["rms_jerk"] ** 2 * m["execution_time_s"] for m in per)
        return {"execution_time_s": total_t, "path_length_rad": sum(m["path_length_rad"] for m in per),
                "rms_jerk": float(np.sqrt(jerk2 / total_t)) if total_t > 0 else 0.0}


def offset_along_approach(T: np.ndarray, distance_m: float) -> np.ndarray:
    """T moved ``distance_m`` along its own z (negative = back, away from the object)."""
    out = np.array(T, dtype=np.float64)
    out[:3, 3] += distance_m * out[:3, 2]
    return out


def lifted(T: np.ndarray, height_m: float) -> np.ndarray:
    """T moved ``height_m`` up along the base z axis."""
    out = np.array(T, dtype=np.float64)
    out[2, 3] += height_m
    return out


def grasp_held(width_m: float, gripper: dict, min_object_m: float = 0.003) -> bool:
    """A closed gripper holds something when its width is between closed and open.

    Args:
        width_m: measured distance between the pads after closing.
        gripper: the robot YAML gripper section (closed_width_m, open_width_m).
        min_object_m: widths below closed + this count as empty.
    """
    closed = float(gripper.get("closed_width_m", 0.0))
    opened = float(gripper.get("open_width_m", gripper.get("stroke_m", 0.085)))
    return closed + min_object_m < width_m < opened - 0.002


class _Planner:
    """Shared machinery of plan_grasp / plan_place."""

    def __init__(self, model: RobotModel, checker: CollisionChecker, cfg: MotionConfig):
        self.model, self.cfg = model, cfg
        self.checker = SafetyAwareChecker(model, checker)
        self.vel = model.vel_limits * cfg.speed_scale
        self.acc = model.acc_limits * cfg.speed_scale
        self.jerk = np.asarray(model.config.get("jerk_limit", model.acc_limits * 4.0)) * cfg.speed_scale
        self.timings = {"ik_s": 0.0, "plan_s": 0.0, "timing_s": 0.0, "check_s": 0.0}

    def ik(self, T: np.ndarray, seed: np.ndarray, what: str) -> np.ndarray:
        t0 = time.perf_counter()
        q = self.model.ik(T, seed)
        self.timings["ik_s"] += time.perf_counter() - t0
        if q is None:
            raise MotionError("unreachable", f"no IK solution within the joint limits for the {what} pose "
                              f"at {np.round(T[:3, 3], 3).tolist()}")
        return q

    def _finish(self, name: str, path: np.ndarray, cartesian: bool, plan_time: float) -> Segment:
        """Time-parameterise a checked path, then check the timed trajectory (limits, box, collisions).

        Free paths with corners get two candidates: a spline through the corners (faster when the
        corners are gentle; it leaves the checked polyline, so it must pass the dense collision
        check itself) and exact straight segments resting at each waypoint. The faster candidate
        that passes every check wins.
        """
        t0 = time.perf_counter()
        cands = []
        if cartesian:
            cands.append(time_parameterize_toppra(path, self.vel, self.acc, dt=self.cfg.dt))
        elif self.cfg.timing == "ruckig":
            cands.append(time_parameterize_ruckig(path, self.vel, self.acc, self.jerk, dt=self.cfg.dt))
        else:
            cands.append(time_parameterize_toppra(path, self.vel, self.acc, dt=self.cfg.dt,
                                                  stop_at_waypoints=True))
            if len(path) > 2:
                cands.append(time_parameterize_toppra(path, self.vel, self.acc, dt=self.cfg.dt))
        t1 = time.perf_counter()
        self.timings["timing_s"] += t1 - t0
        # IK solutions on straight lines may sit exactly on a joint limit (a redundant arm's wrist
        # saturating); the cubic spline through them then overshoots the limit slightly (2 mrad
        # measured on the humanoid lift). Clip overshoots up to 5 mrad (< 1 mm at the TCP);
        # anything larger is a real violation and check_trajectory refuses it below.
        lo, hi = self.model.lower, self.model.upper
        for traj in cands:
            over = np.maximum(lo - traj.q, traj.q - hi).max()
            if 0.0 < over <= 5e-3:
                traj.q = np.clip(traj.q, lo, hi)
        failure = None
        for traj in sorted(cands, key=lambda tr: tr.duration):
            report = check_trajectory(self.model, traj, self.cfg.resolution_rad)
            if not report:
                failure = MotionError(report.reason, f"{name}: {report.detail}")
                continue
            if first_collision(self.checker, traj.q, self.cfg.resolution_rad) is not None:
                failure = MotionError("collision", f"{name}: the timed trajectory collides (checked every "
                                      f"{self.cfg.resolution_rad} rad)")
                continue
            self.timings["check_s"] += time.perf_counter() - t1
            return Segment(name, traj, cartesian, plan_time)
        raise failure

    def free(self, name: str, q_start: np.ndarray, q_goal: np.ndarray) -> Segment:
        t0 = time.perf_counter()
        try:
            cfg = self.cfg
            res = plan_joint_path(self.model, self.checker, q_start, q_goal, timeout_s=cfg.planning_timeout_s,
                                  resolution_rad=cfg.resolution_rad)
        except PlanningError as exc:
            raise MotionError(exc.reason, f"{name}: {exc.detail}") from exc
        dt = time.perf_counter() - t0
        self.timings["plan_s"] += dt
        return self._finish(name, res.path, False, dt)

    def line(self, name: str, q_start: np.ndarray, T_from: np.ndarray, T_to: np.ndarray) -> Segment:
        """Straight TCP line from T_from (where q_start is) to T_to, orientation slerped."""
        dist = float(np.linalg.norm(T_to[:3, 3] - T_from[:3, 3]))
        n_pts = max(2, int(np.ceil(dist / self.cfg.cartesian_step_m)) + 1)
        w = rot_log(T_from[:3, :3].T @ T_to[:3, :3])
        qs = [np.asarray(q_start, dtype=np.float64)]
        t0 = time.perf_counter()
        for s in np.linspace(0.0, 1.0, n_pts)[1:]:
            T = np.eye(4)
            T[:3, 3] = (1 - s) * T_from[:3, 3] + s * T_to[:3, 3]
            T[:3, :3] = T_from[:3, :3] @ _exp_so3(s * w)
            q = self.ik(T, qs[-1], name)
            jump = float(np.abs(q - qs[-1]).max())
            if jump > self.cfg.max_joint_jump_rad:
                raise MotionError("singularity", f"{name}: joint jump of {jump:.2f} rad along the straight "
                                  "line (the arm would flip); try another grasp orientation")
            qs.append(q)
        path = np.array(qs)
        dt = time.perf_counter() - t0
        self.timings["plan_s"] += dt
        return self._finish(name, path, True, dt)


def _exp_so3(w: np.ndarray) -> np.ndarray:
    th = float(np.linalg.norm(w))
    if th < 1e-12:
        return np.eye(3)
    k = w / th
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(th) * K + (1 - np.cos(th)) * K @ K


def _check_safety_box(model: RobotModel, T: np.ndarray, what: str) -> None:
    """Intermediate poses (pre-grasp, lift, pre-place) need only be inside the safety box."""
    box = model.config.get("safety_box")
    if box and (np.any(T[:3, 3] < box["min"]) or np.any(T[:3, 3] > box["max"])):
        raise MotionError("outside_safety_box", f"{what} pose {T[:3, 3].round(3).tolist()} leaves the safety "
                          f"box {box['min']}..{box['max']}")


def plan_grasp(model: RobotModel, checker: CollisionChecker, q_start: np.ndarray, T_grasp: np.ndarray,
               cfg: MotionConfig | None = None, holding: Callable[[bool], None] | None = None) -> MotionPlan:
    """Plan open -> pre-grasp -> approach -> close -> lift for a TCP grasp pose T_grasp (4, 4).

    Args:
        model: the robot.
        checker: the collision world.
        q_start: current joint positions (n,).
        T_grasp: TCP pose at the grasp in the base frame; z = approach direction.
        cfg: motion parameters.
        holding: called with True before planning the segments after closing (so the checker can
            ignore the grasped object) and with False at the end.

    Raises:
        MotionError: refused (unreachable, outside workspace, no path, collision, limits...).
    """
    cfg = cfg or MotionConfig()
    t_all = time.perf_counter()
    rep = check_target(model, T_grasp)
    if not rep:
        raise MotionError(rep.reason, f"grasp pose: {rep.detail}")
    p = _Planner(model, checker, cfg)
    T_pre = offset_along_approach(T_grasp, -cfg.approach_distance_m)
    T_lift = lifted(T_grasp, cfg.lift_height_m)
    _check_safety_box(model, T_pre, "pre-grasp")
    _check_safety_box(model, T_lift, "lift")
    q_pre = p.ik(T_pre, q_start, "pre-grasp")
    steps: list[Segment | GripperAction] = [GripperAction(True, "open")]
    steps.append(p.free("to_pregrasp", q_start, q_pre))
    approach = p.line("approach", q_pre, T_pre, T_grasp)
    steps += [approach, GripperAction(False, "close")]
    try:
        if holding is not None:
            holding(True)
        lift = p.line("lift", approach.traj.q[-1], T_grasp, T_lift)
    finally:
        if holding is not None:
            holding(False)
    steps.append(lift)
    p.timings["total_s"] = time.perf_counter() - t_all
    return MotionPlan("grasp", steps, lift.traj.q[-1].copy(), p.timings)


def plan_place(model: RobotModel, checker: CollisionChecker, q_start: np.ndarray, T_place: np.ndarray,
               cfg: MotionConfig | None = None) -> MotionPlan:
    """Plan transport -> pre-place -> lower -> open -> retreat for a TCP release pose T_place (4, 4).

    Raises:
        MotionError: refused (see plan_grasp).
    """
    cfg = cfg or MotionConfig()
    t_all = time.perf_counter()
    rep = check_target(model, T_place)
    if not rep:
        raise MotionError(rep.reason, f"place pose: {rep.detail}")
    p = _Planner(model, checker, cfg)
    T_pre = offset_along_approach(T_place, -cfg.approach_distance_m)
    T_retreat = offset_along_approach(T_place, -cfg.retreat_distance_m)
    _check_safety_box(model, T_pre, "pre-place")
    q_pre = p.ik(T_pre, q_start, "pre-place")
    transport = p.free("transport", q_start, q_pre)
    lower = p.line("lower", q_pre, T_pre, T_place)
    retreat = p.line("retreat", lower.traj.q[-1], T_place, T_retreat)
    steps: list[Segment | GripperAction] = [transport, lower, GripperAction(True, "open"), retreat]
    p.timings["total_s"] = time.perf_counter() - t_all
    return MotionPlan("place", steps, retreat.traj.q[-1].copy(), p.timings)


def plan_to_joints(model: RobotModel, checker: CollisionChecker, q_start: np.ndarray, q_goal: np.ndarray,
                   cfg: MotionConfig | None = None, name: str = "move") -> MotionPlan:
    """A single free move (e.g. back to home)."""
    cfg = cfg or MotionConfig()
    p = _Planner(model, checker, cfg)
    seg = p.free(name, q_start, q_goal)
    return MotionPlan(name, [seg], seg.traj.q[-1].copy(), p.timings)
