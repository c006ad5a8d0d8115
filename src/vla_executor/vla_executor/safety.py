# SPDX-License-Identifier: Apache-2.0
"""Safety checks every trajectory must pass before it is sent, with reasons a person can read.

Checks (all on the densely resampled trajectory, max joint step ``max_step_rad``):
joint position limits, velocity and acceleration limits (with a small numerical tolerance),
the TCP inside the robot's safety box, and the fingertips above the table by the clearance
from the robot YAML. Targets (grasp/place poses) are checked against the workspace box first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vla_executor.planner import densify
from vla_executor.robot_model import RobotModel
from vla_executor.timing import Trajectory


@dataclass
class SafetyReport:
    """Outcome of a check: ``ok`` plus a machine code and a sentence when refused."""

    ok: bool
    reason: str = ""
    detail: str = ""

    def __bool__(self) -> bool:
        return self.ok


OK = SafetyReport(True)


def check_target(model: RobotModel, T_base_tool: np.ndarray) -> SafetyReport:
    """Refuse a target TCP pose outside the workspace box or with fingertips below the table."""
    T = np.asarray(T_base_tool, dtype=np.float64)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        return SafetyReport(False, "invalid_pose", "target pose is not a finite 4x4 transform")
    R = T[:3, :3]
    if not np.allclose(R.T @ R, np.eye(3), atol=1e-4) or np.linalg.det(R) < 0:
        return SafetyReport(False, "invalid_pose",
                            "target orientation is not a rotation (normalise the quaternion)")
    p = T[:3, 3]
    if np.any(p < model.workspace_min) or np.any(p > model.workspace_max):
        return SafetyReport(False, "outside_workspace",
                            f"target TCP {p.round(3).tolist()} is outside the workspace box "
                            f"{model.workspace_min.tolist()}..{model.workspace_max.tolist()}")
    tips = _fingertips(model, T[None])
    clearance = float(model.config.get("table_clearance_m", 0.0))
    if tips[:, 2].min() < model.table_height + clearance:
        return SafetyReport(False, "table_clearance",
                            f"fingertips at z={tips[:, 2].min():.3f} m would be below the table "
                            f"(top {model.table_height:.3f} m + clearance {clearance:.3f} m)")
    return OK


def _fingertips(model: RobotModel, T: np.ndarray) -> np.ndarray:
    """TCP and fingertip points (B*2, 3) for tool poses T (B, 4, 4)."""
    off = float(model.config.get("fingertip_offset_m", 0.0))
    tips = T[:, :3, 3] + off * T[:, :3, 2]  # pad tips lie along the approach axis
    return np.concatenate([T[:, :3, 3], tips])


def check_trajectory(model: RobotModel, traj: Trajectory, max_step_rad: float = 0.01,
                     vel_tol: float = 1.02, acc_tol: float = 1.05) -> SafetyReport:
    """Check a trajectory against joint/velocity/acceleration limits, safety box and table.

    Args:
        model: robot with limits, safety box and table height.
        traj: the trajectory to send.
        max_step_rad: resampling step for the Cartesian checks.
        vel_tol: allowed ratio of |qd| to the velocity limits (numerical headroom).
        acc_tol: allowed ratio of |qdd| to the acceleration limits.
    """
    n = model.dof
    if traj.q.ndim != 2 or traj.q.shape[1] != n or len(traj.t) != len(traj.q):
        return SafetyReport(False, "malformed_trajectory", f"expected q of shape (K, {n}) matching t")
    if not all(np.all(np.isfinite(a)) for a in (traj.t, traj.q, traj.qd, traj.qdd)):
        return SafetyReport(False, "malformed_trajectory", "trajectory contains NaN or inf")
    if len(traj.t) > 1 and np.any(np.diff(traj.t) <= 0):
        return SafetyReport(False, "malformed_trajectory", "time stamps must increase strictly")
    lo, hi = model.lower - 1e-6, model.upper + 1e-6
    bad = np.where(np.any((traj.q < lo) | (traj.q > hi), axis=1))[0]
    if len(bad):
        j = int(np.where((traj.q[bad[0]] < lo) | (traj.q[bad[0]] > hi))[0][0])
        k = bad[0]
        return SafetyReport(False, "joint_limit", f"{model.joint_names[j]} reaches {traj.q[k, j]:.3f} rad at "
                            f"t={traj.t[k]:.2f} s, limits [{model.lower[j]:.3f}, {model.upper[j]:.3f}]")
    vr = np.abs(traj.qd) / model.vel_limits
    if vr.max() > vel_tol:
        k, j = np.unravel_index(np.argmax(vr), vr.shape)
        return SafetyReport(False, "velocity_limit", f"{model.joint_names[j]} velocity {traj.qd[k, j]:.3f} "
                            f"rad/s exceeds {model.vel_limits[j]:.3f} rad/s at t={traj.t[k]:.2f} s")
    ar = np.abs(traj.qdd) / model.acc_limits
    if ar.max() > acc_tol:
        k, j = np.unravel_index(np.argmax(ar), ar.shape)
        return SafetyReport(False, "acceleration_limit", f"{model.joint_names[j]} acceleration "
                            f"{traj.qdd[k, j]:.3f} rad/s^2 exceeds {model.acc_limits[j]:.3f} "
                            f"at t={traj.t[k]:.2f} s")
    Q = densify(traj.q, max_step_rad)  # (M, n)
    T = model.fk_batch(Q)  # (M, 4, 4)
    box = model.config.get("safety_box", {"min": [-np.inf] * 3, "max": [np.inf] * 3})
    bmin, bmax = np.asarray(box["min"], float), np.asarray(box["max"], float)
    p = T[:, :3, 3]
    out = np.where(np.any((p < bmin) | (p > bmax), axis=1))[0]
    if len(out):
        return SafetyReport(False, "outside_safety_box", f"TCP leaves the safety box at "
                            f"{p[out[0]].round(3).tolist()} (box {bmin.tolist()}..{bmax.tolist()})")
    pts = _fingertips(model, T)
    clearance = float(model.config.get("table_clearance_m", 0.0))
    zmin = float(pts[:, 2].min())
    if zmin < model.table_height + clearance - 1e-6:
        return SafetyReport(False, "table_clearance", f"gripper comes within "
                            f"{zmin - model.table_height:.4f} m of the table (clearance {clearance:.3f} m)")
    return OK


def trajectory_from_points(model: RobotModel, joint_names: list[str], points: list) -> Trajectory:
    """A ``trajectory_msgs/JointTrajectory``'s points as a :class:`Trajectory` in the model's joint order.

    Used to check a trajectory another planner made (MoveIt) with :func:`check_trajectory` before it
    runs. Missing velocities/accelerations become zeros; a joint of the model that the trajectory
    does not name raises ValueError (the trajectory cannot be checked, so it must not run).

    Args:
        model: robot whose joints the trajectory drives.
        joint_names: the trajectory's joint names (any order; extra joints are ignored).
        points: ``JointTrajectoryPoint``-like objects with positions, velocities, accelerations and
            ``time_from_start`` (sec, nanosec).
    """
    index = {n: i for i, n in enumerate(joint_names)}
    missing = [n for n in model.joint_names if n not in index]
    if missing:
        raise ValueError(f"trajectory does not name joint(s) {missing}")
    if not points:
        raise ValueError("trajectory has no points")
    cols = [index[n] for n in model.joint_names]
    K, n = len(points), model.dof

    def arr(attr: str) -> np.ndarray:  # (K, n)
        out = np.zeros((K, n))
        for k, p in enumerate(points):
            vals = list(getattr(p, attr, []) or [])
            if vals:
                out[k] = np.asarray(vals, dtype=np.float64)[cols]
        return out

    t = np.array([p.time_from_start.sec + 1e-9 * p.time_from_start.nanosec for p in points], dtype=np.float64)
    return Trajectory(t=t, q=arr("positions"), qd=arr("velocities"), qdd=arr("accelerations"))
