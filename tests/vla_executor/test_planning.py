# SPDX-License-Identifier: Apache-2.0
"""Planning + timing: every trajectory respects joint/velocity/acceleration limits and is
collision-free against a scene with obstacles, checked densely (not only at waypoints)."""

from __future__ import annotations

import numpy as np
import pytest

from vla_executor.planner import (
    Box,
    PlanningError,
    PyBulletCollisionChecker,
    SafetyAwareChecker,
    densify,
    first_collision,
    plan_joint_path,
    table_box,
    voxelize,
)
from vla_executor.robot_model import RobotModel
from vla_executor.safety import check_trajectory
from vla_executor.timing import (
    Trajectory,
    linear_interpolation,
    time_parameterize_ruckig,
    time_parameterize_toppra,
)

WALL = Box((0.5, 0.0, 0.10), (0.12, 0.015, 0.10))  # a 20 cm high wall splitting the table in y


def scene(model: RobotModel) -> list[Box]:
    return [table_box(model), WALL, Box((0.45, -0.22, 0.04), (0.03, 0.03, 0.04)),
            Box((0.66, 0.30, 0.05), (0.03, 0.03, 0.05))]


def down(x: float, y: float, z: float, yaw: float = 0.0) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    T = np.eye(4)
    T[:3, :3] = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.diag([1.0, -1.0, -1.0])
    T[:3, 3] = [x, y, z]
    return T


@pytest.fixture(scope="module", params=["ur5", "humanoid_arm"])
def setup(request):
    model = RobotModel.load(request.param)
    planner_checker = PyBulletCollisionChecker(model, scene(model))
    verify_checker = PyBulletCollisionChecker(model, scene(model))  # independent instance for verification
    yield model, planner_checker, verify_checker
    planner_checker.close()
    verify_checker.close()


def test_checker_sees_obstacles(setup):
    model, checker, _ = setup
    assert checker.is_free(model.home)
    q_in_wall = model.ik(down(0.5, 0.0, 0.10), model.home)
    assert q_in_wall is not None
    assert not checker.is_free(q_in_wall)
    assert any(other.startswith("body") for _, other in checker.colliding_pairs(q_in_wall))
    q_low = model.ik(down(0.5, -0.15, -0.02), model.home)  # fingertips into the table
    assert q_low is not None and not checker.is_free(q_low)


def test_plans_across_wall_respect_limits_and_are_collision_free(setup):
    model, checker, verify = setup
    starts = [down(0.45, -0.12, 0.08), down(0.55, -0.15, 0.10, 0.6), down(0.40, -0.10, 0.12)]
    goals = [down(0.45, 0.22, 0.08), down(0.60, 0.20, 0.12, -0.5), down(0.50, 0.25, 0.06)]
    methods = []
    for Ts, Tg in zip(starts, goals):
        qs, qg = model.ik(Ts, model.home), model.ik(Tg, model.home)
        assert qs is not None and qg is not None
        res = plan_joint_path(model, SafetyAwareChecker(model, checker), qs, qg, timeout_s=5.0)
        methods.append(res.method)
        assert np.allclose(res.path[0], qs) and np.allclose(res.path[-1], qg)
        # the path itself is free at 0.01 rad steps
        assert first_collision(verify, res.path, 0.01) is None
        for traj in (time_parameterize_toppra(res.path, model.vel_limits * 0.5, model.acc_limits * 0.5,
                                              stop_at_waypoints=True),
                     time_parameterize_ruckig(res.path, model.vel_limits * 0.5, model.acc_limits * 0.5,
                                              np.asarray(model.config["jerk_limit"]) * 0.5)):
            assert_limits(model, traj, scale=0.5)
            assert first_collision(verify, traj.q, 0.005) is None  # densely, between samples too
            assert np.allclose(traj.q[0], qs, atol=1e-9) and np.allclose(traj.q[-1], qg, atol=1e-6)
            assert check_trajectory(model, traj).ok
    assert "rrtconnect" in methods  # the wall blocks the straight line at least once


def assert_limits(model: RobotModel, traj: Trajectory, scale: float) -> None:
    assert np.all(traj.q >= model.lower - 1e-9) and np.all(traj.q <= model.upper + 1e-9)
    assert np.all(np.abs(traj.qd) <= model.vel_limits * scale + 1e-9)
    assert np.all(np.abs(traj.qdd) <= model.acc_limits * scale * (1 + 1e-6) + 1e-9)
    # independent of the reported derivatives: finite differences of the sampled positions
    fd_vel = np.diff(traj.q, axis=0) / np.diff(traj.t)[:, None]
    assert np.all(np.abs(fd_vel) <= model.vel_limits * scale * 1.02 + 1e-6)
    assert np.all(np.diff(traj.t) > 0)


def test_start_in_collision_is_refused(setup):
    model, checker, _ = setup
    q_in_wall = model.ik(down(0.5, 0.0, 0.10), model.home)
    with pytest.raises(PlanningError) as err:
        plan_joint_path(model, checker, q_in_wall, model.home)
    assert err.value.reason == "start_in_collision"
    with pytest.raises(PlanningError) as err:
        plan_joint_path(model, checker, model.home, model.upper + 0.1)
    assert err.value.reason == "goal_out_of_limits"


def test_densify_bounds_the_step():
    path = np.array([[0.0, 0.0], [1.0, -0.3], [1.0, 0.5]])
    d = densify(path, 0.01)
    assert np.abs(np.diff(d, axis=0)).max() <= 0.01 + 1e-12
    assert np.allclose(d[0], path[0]) and np.allclose(d[-1], path[-1])


def test_point_cloud_occupancy_blocks_motion():
    model = RobotModel.load("ur5")
    checker = PyBulletCollisionChecker(model, [table_box(model)])
    q = model.ik(down(0.5, 0.0, 0.12), model.home)
    assert checker.is_free(q)
    # a sampled 20 cm block of points around the TCP, as a depth camera would see it
    g = np.stack(np.meshgrid(*[np.linspace(-0.1, 0.1, 15)] * 3), -1).reshape(-1, 3) + [0.5, 0.0, 0.15]
    n = checker.set_point_cloud(g, voxel_m=0.02)
    assert n > 0 and not checker.is_free(q)
    checker.set_point_cloud(g, voxel_m=0.02, keep_out=[(np.array([0.5, 0.0, 0.15]), 0.5)])
    assert checker.is_free(q)
    assert len(voxelize(g, 0.05)) < len(voxelize(g, 0.02))
    checker.close()


def test_linear_baseline_has_much_higher_jerk():
    from vla_executor.metrics import rms_jerk

    model = RobotModel.load("ur5")
    path = np.stack([model.home, model.home + 0.4, model.home + np.array([0.8, 0.1, -0.2, 0.1, 0.3, 0.0])])
    smooth = time_parameterize_toppra(path, model.vel_limits, model.acc_limits)
    naive = linear_interpolation(path, model.vel_limits)
    assert rms_jerk(naive.t, naive.q) > 10 * rms_jerk(smooth.t, smooth.q)
