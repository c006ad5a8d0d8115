# SPDX-License-Identifier: Apache-2.0
"""Executor benchmark: IK time per solve, planning time per move, RMS jerk vs naive interpolation.

``run(out_dir)`` writes ``results/bench_executor.json`` (called by ``vla bench``). For each robot:

- IK: 200 random reachable poses (FK of random in-limit configurations) solved from the home
  pose, and 200 top-down table poses in the object area (the executor's usual case); time per
  solve and success rate.
- Planning: grasp + place motions to random object positions on a table with obstacles (a wall
  and boxes), through motions.plan_grasp / plan_place: IK, OMPL and time-parameterisation time.
- Jerk: for every free segment planned above, RMS jerk of the trajectory the executor sends
  (``executor``, default timing ruckig), of toppra and ruckig on the same waypoints, and of naive
  linear joint interpolation at the same speed limits (``linear``) and stretched to the
  executor's duration (``linear_same_duration``): the arm-jitter measure (humanoid-arm paper,
  seeds 000_5fbc6ba69300ff4c).

Usage: ``python -m vla_executor.bench [out_dir]`` (default ``results``).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from vla_executor.metrics import rms_jerk
from vla_executor.motions import MotionConfig, MotionError, plan_grasp, plan_place
from vla_executor.planner import Box, PyBulletCollisionChecker, table_box
from vla_executor.robot_model import RobotModel, pose_error
from vla_executor.timing import linear_interpolation, time_parameterize_ruckig, time_parameterize_toppra


def _stats(values: list[float], scale: float = 1.0) -> dict[str, float]:
    if not values:
        return {"n": 0}
    a = np.asarray(values, dtype=np.float64) * scale
    return {"n": int(len(a)), "median": float(np.median(a)), "mean": float(a.mean()),
            "p90": float(np.percentile(a, 90)), "max": float(a.max())}


def _down(x: float, y: float, z: float, yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    T = np.eye(4)
    T[:3, :3] = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.diag([1.0, -1.0, -1.0])
    T[:3, 3] = [x, y, z]
    return T


def bench_ik(model: RobotModel, n: int = 200, seed: int = 0) -> dict[str, Any]:
    """IK time per solve (ms) and success on random reachable poses and top-down table poses."""
    rng = np.random.default_rng(seed)
    out = {}
    area = model.config["object_area"]
    cases = {
        "random_reachable": [model.fk(rng.uniform(model.lower, model.upper)) for _ in range(n)],
        "table_top_down": [_down(rng.uniform(area["min_xy"][0], area["max_xy"][0]),
                                 rng.uniform(area["min_xy"][1], area["max_xy"][1]),
                                 rng.uniform(0.02, 0.25), rng.uniform(-np.pi / 2, np.pi / 2))
                           for _ in range(n)],
    }
    for name, poses in cases.items():
        times, ok = [], 0
        for T in poses:
            t0 = time.perf_counter()
            q = model.ik(T, model.home)
            times.append(time.perf_counter() - t0)
            if q is not None:
                dp, dr = pose_error(model.fk(q), T)
                ok += dp < 1e-3 and np.degrees(dr) < 0.5
        out[name] = {"time_ms": _stats(times, 1e3), "success_rate": ok / len(poses)}
    return out


def bench_motions(model: RobotModel, n_moves: int = 8, seed: int = 0) -> dict[str, Any]:
    """Grasp + place planning times and the RMS jerk of toppra / ruckig / linear on free segments."""
    rng = np.random.default_rng(seed)
    obstacles = [table_box(model), Box((0.5, 0.0, 0.08), (0.1, 0.012, 0.08)),
                 Box((0.62, -0.25, 0.04), (0.03, 0.03, 0.04)), Box((0.38, 0.25, 0.05), (0.03, 0.03, 0.05))]
    checker = PyBulletCollisionChecker(model, obstacles)
    cfg = MotionConfig(speed_scale=float(model.config.get("bench_speed_scale", 0.5)))
    vel, acc = model.vel_limits * cfg.speed_scale, model.acc_limits * cfg.speed_scale
    jerk_lim = np.asarray(model.config["jerk_limit"]) * cfg.speed_scale
    plan_t, ompl_t, ik_t, timing_t, refused = [], [], [], [], []
    kinds = ("executor", "toppra", "ruckig", "linear", "linear_same_duration")
    jerk: dict[str, list[float]] = {k: [] for k in kinds}
    duration: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(n_moves):
        side = rng.choice([-1.0, 1.0])
        grasp = _down(rng.uniform(0.38, 0.62), side * rng.uniform(0.08, 0.28), 0.03, rng.uniform(-1.2, 1.2))
        place = _down(rng.uniform(0.38, 0.62), -side * rng.uniform(0.08, 0.28), 0.04, rng.uniform(-1.2, 1.2))
        try:
            t0 = time.perf_counter()
            g = plan_grasp(model, checker, model.home, grasp, cfg)
            p = plan_place(model, checker, g.q_end, place, cfg)
            plan_t.append(time.perf_counter() - t0)
        except MotionError as exc:
            refused.append(exc.reason)
            continue
        for plan in (g, p):
            ik_t.append(plan.timings_s["ik_s"])
            ompl_t.append(plan.timings_s["plan_s"])
            timing_t.append(plan.timings_s["timing_s"])
            for seg in plan.segments:
                if seg.cartesian:
                    continue
                # recover the planner's waypoints: the executor's trajectory rests at each of them
                path = _waypoints(seg.traj.q)
                slow = seg.traj.duration / max(linear_interpolation(path, vel).duration, 1e-9)
                trajs = {"executor": seg.traj,
                         "toppra": time_parameterize_toppra(path, vel, acc, stop_at_waypoints=True),
                         "ruckig": time_parameterize_ruckig(path, vel, acc, jerk_lim),
                         "linear": linear_interpolation(path, vel),
                         "linear_same_duration": linear_interpolation(path, vel / slow)}
                for k, tr in trajs.items():
                    jerk[k].append(rms_jerk(tr.t, tr.q))
                    duration[k].append(tr.duration)
    checker.close()
    return {
        "moves_planned": len(plan_t), "moves_refused": refused,
        "grasp_plus_place_plan_time_ms": _stats(plan_t, 1e3),
        "per_motion_ik_time_ms": _stats(ik_t, 1e3),
        "per_motion_path_planning_time_ms": _stats(ompl_t, 1e3),
        "per_motion_time_parameterisation_ms": _stats(timing_t, 1e3),
        "rms_jerk_rad_s3": {k: _stats(v) for k, v in jerk.items()},
        "segment_duration_s": {k: _stats(v) for k, v in duration.items()},
        "speed_scale": cfg.speed_scale,
        "executor_timing": cfg.timing,
    }


def _waypoints(q: np.ndarray, tol: float = 1e-3) -> np.ndarray:
    """Corner points of a sampled joint path (drop samples on the line between neighbours)."""
    keep = [0]
    for i in range(1, len(q) - 1):
        a, b = q[keep[-1]], q[i + 1]
        d = b - a
        s = np.clip((q[i] - a) @ d / max(d @ d, 1e-12), 0.0, 1.0)
        if np.abs(a + s * d - q[i]).max() > tol:
            keep.append(i)
    keep.append(len(q) - 1)
    return q[keep]


def run(out_dir: Path | str = "results") -> dict[str, Any]:
    """Run the executor benchmark for both robots; writes ``<out_dir>/bench_executor.json``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"note": "times are wall-clock on this machine (CPU, shared cores)"}
    for name in ("ur5", "humanoid_arm"):
        model = RobotModel.load(name)
        result[name] = {"ik": bench_ik(model), "motions": bench_motions(model)}
    (out_dir / "bench_executor.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    res = run(sys.argv[1] if len(sys.argv) > 1 else "results")
    print(json.dumps(res, indent=2))
