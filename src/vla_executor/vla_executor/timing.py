# SPDX-License-Identifier: Apache-2.0
"""Time parameterisation of joint paths: toppra (time-optimal) and ruckig (jerk-limited).

Both return a ``Trajectory`` sampled at a fixed rate (default 100 Hz) with positions,
velocities and accelerations, ready for a JointTrajectory message.

- ``time_parameterize_toppra``: TOPP-RA over a cubic spline through the waypoints, with joint
  velocity and acceleration limits. A spline through sparse waypoints can bulge away from the
  collision-checked polyline, so sparse paths are first densified (``max_gap_rad``); callers
  still re-check the sampled trajectory (safety.check_trajectory, planner.first_collision).
- ``time_parameterize_ruckig``: per segment, a jerk-limited point-to-point motion with phase
  synchronisation, which keeps the motion exactly on the straight joint-space segment and
  stops at each waypoint. Bounded jerk is what keeps arm jitter low (the humanoid-arm paper,
  seeds 000_5fbc6ba69300ff4c, names arm jitter as a failure mode); metrics.rms_jerk measures it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vla_executor.planner import densify


@dataclass
class Trajectory:
    """A sampled joint trajectory: t (K,) s from 0, q / qd / qdd (K, n)."""

    t: np.ndarray
    q: np.ndarray
    qd: np.ndarray
    qdd: np.ndarray

    @property
    def duration(self) -> float:
        """Duration in seconds."""
        return float(self.t[-1]) if len(self.t) else 0.0

    @classmethod
    def hold(cls, q: np.ndarray, duration_s: float = 0.0) -> Trajectory:
        """A trajectory that holds q (n,) (used for e-stop and zero-length moves)."""
        q = np.asarray(q, dtype=np.float64)
        t = np.array([0.0]) if duration_s <= 0 else np.array([0.0, duration_s])
        Q = np.repeat(q[None], len(t), axis=0)
        return cls(t, Q, np.zeros_like(Q), np.zeros_like(Q))

    def concat(self, other: Trajectory) -> Trajectory:
        """This trajectory followed by another (the other's first sample is dropped)."""
        return Trajectory(np.concatenate([self.t, other.t[1:] + self.t[-1]]),
                          np.concatenate([self.q, other.q[1:]]), np.concatenate([self.qd, other.qd[1:]]),
                          np.concatenate([self.qdd, other.qdd[1:]]))


def _dedupe(path: np.ndarray, eps: float = 1e-9) -> np.ndarray:
    keep = [0] + [i for i in range(1, len(path)) if np.abs(path[i] - path[i - 1]).max() > eps]
    return path[keep]


def time_parameterize_toppra(path: np.ndarray, vel_limits: np.ndarray, acc_limits: np.ndarray,
                             dt: float = 0.01, max_gap_rad: float = 0.05,
                             safety_scale: float = 0.98, stop_at_waypoints: bool = False) -> Trajectory:
    """Time-optimal trajectory along a joint path (M, n) under velocity and acceleration limits.

    Args:
        path: waypoints, (M, n) rad.
        vel_limits: (n,) rad/s (symmetric).
        acc_limits: (n,) rad/s^2 (symmetric).
        dt: output sample period, s.
        max_gap_rad: densify the path so the spline stays close to the polyline.
        safety_scale: fraction of the limits used (headroom for spline/sampling error).
        stop_at_waypoints: parameterise each straight segment separately (rest at every
            waypoint), so the motion follows the polyline exactly. Use it for sparse planner
            paths whose corners a spline would round off (and slow down to a crawl at).
    """
    import toppra as ta
    import toppra.algorithm as algo
    import toppra.constraint as constraint

    path = _dedupe(np.asarray(path, dtype=np.float64))
    if len(path) < 2:
        return Trajectory.hold(path[0])
    if stop_at_waypoints and len(path) > 2:
        out = None
        for a, b in zip(path[:-1], path[1:]):
            seg = time_parameterize_toppra(np.stack([a, b]), vel_limits, acc_limits, dt, max_gap_rad,
                                           safety_scale)
            out = seg if out is None else out.concat(seg)
        return out
    dense = densify(path, max_gap_rad)
    seg = np.linalg.norm(np.diff(dense, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    s /= s[-1]
    ta.setup_logging("WARNING")
    # a straight segment stays exactly straight with natural end conditions; curved (dense
    # Cartesian) paths are clamped so they start and end with zero path velocity
    straight = len(path) == 2
    spline = ta.SplineInterpolator(s, dense, bc_type="natural" if straight else "clamped")
    v = np.asarray(vel_limits) * safety_scale
    a = np.asarray(acc_limits) * safety_scale
    pc_vel = constraint.JointVelocityConstraint(np.stack([-v, v], axis=1))
    pc_acc = constraint.JointAccelerationConstraint(np.stack([-a, a], axis=1))
    inst = algo.TOPPRA([pc_vel, pc_acc], spline, parametrizer="ParametrizeConstAccel",
                       gridpoints=np.linspace(0, 1, max(100, 2 * len(dense))))
    traj = inst.compute_trajectory(0.0, 0.0)
    if traj is None:
        raise RuntimeError("toppra failed to parameterise the path (infeasible limits?)")
    T = float(traj.duration)
    # TOPP-RA enforces the limits at its grid points only; between them the spline can exceed
    # them slightly. Slow the whole trajectory down uniformly (t -> k t) until every sample of a
    # 4x finer grid is within the full limits: velocities scale by 1/k, accelerations by 1/k^2.
    fine = np.linspace(0.0, T, max(8, int(4 * T / dt)))
    k = max(1.0, float(np.max(np.abs(traj(fine, 1)) / np.asarray(vel_limits))),
            float(np.sqrt(np.max(np.abs(traj(fine, 2)) / np.asarray(acc_limits)))))
    if k > 1.0:
        k *= 1.01
    t = np.append(np.arange(0.0, T * k, dt), T * k)
    q, qd, qdd = traj(t / k), traj(t / k, 1) / k, traj(t / k, 2) / k**2
    q[0], q[-1] = path[0], path[-1]
    qd[0] = qd[-1] = 0.0
    return Trajectory(t, q, qd, qdd)


def time_parameterize_ruckig(path: np.ndarray, vel_limits: np.ndarray, acc_limits: np.ndarray,
                             jerk_limits: np.ndarray, dt: float = 0.01) -> Trajectory:
    """Jerk-limited trajectory through the waypoints (stopping at each), exactly on the polyline.

    Args:
        path: waypoints, (M, n) rad.
        vel_limits: (n,) rad/s.
        acc_limits: (n,) rad/s^2.
        jerk_limits: (n,) rad/s^3.
        dt: output sample period, s.
    """
    from ruckig import InputParameter, Result, Ruckig, Synchronization
    from ruckig import Trajectory as RTrajectory

    path = _dedupe(np.asarray(path, dtype=np.float64))
    n = path.shape[1]
    if len(path) < 2:
        return Trajectory.hold(path[0])
    out: Trajectory | None = None
    otg = Ruckig(n)
    for a, b in zip(path[:-1], path[1:]):
        inp = InputParameter(n)
        inp.current_position, inp.target_position = a.tolist(), b.tolist()
        inp.current_velocity = inp.current_acceleration = [0.0] * n
        inp.target_velocity = inp.target_acceleration = [0.0] * n
        inp.max_velocity = list(map(float, vel_limits))
        inp.max_acceleration = list(map(float, acc_limits))
        inp.max_jerk = list(map(float, jerk_limits))
        inp.synchronization = Synchronization.Phase  # straight line in joint space
        rt = RTrajectory(n)
        res = otg.calculate(inp, rt)
        if res not in (Result.Working, Result.Finished):
            raise RuntimeError(f"ruckig failed on a segment: {res}")
        T = rt.duration
        t = np.append(np.arange(0.0, T, dt), T)
        samples = [rt.at_time(float(x)) for x in t]
        seg = Trajectory(t, np.array([s[0] for s in samples]), np.array([s[1] for s in samples]),
                         np.array([s[2] for s in samples]))
        out = seg if out is None else out.concat(seg)
    return out


def linear_interpolation(path: np.ndarray, vel_limits: np.ndarray, dt: float = 0.01) -> Trajectory:
    """The naive baseline: constant joint velocity per segment (at the slowest joint's limit).

    Velocities jump at every waypoint and at start/stop, so accelerations and jerk are large;
    used only by the benchmark to compare jerk.
    """
    path = _dedupe(np.asarray(path, dtype=np.float64))
    if len(path) < 2:
        return Trajectory.hold(path[0])
    durs = np.array([np.max(np.abs(b - a) / vel_limits) for a, b in zip(path[:-1], path[1:])])
    knots = np.concatenate([[0.0], np.cumsum(durs)])
    t = np.append(np.arange(0.0, knots[-1], dt), knots[-1])
    q = np.stack([np.interp(t, knots, path[:, j]) for j in range(path.shape[1])], axis=1)
    qd = np.gradient(q, t, axis=0)
    qdd = np.gradient(qd, t, axis=0)
    return Trajectory(t, q, qd, qdd)
