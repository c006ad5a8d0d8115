# SPDX-License-Identifier: Apache-2.0
"""ExecutionCore: sequencing by observed joint states, grasp verification, e-stop logic."""

from __future__ import annotations

import numpy as np
import pytest

from vla_executor.backends import BuiltinBackend
from vla_executor.execution import ExecutionCore, SendGripper, SendStop, SendTrajectory, State, Status
from vla_executor.planner import PyBulletCollisionChecker, table_box
from vla_executor.robot_model import RobotModel


def down(x: float, y: float, z: float) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = np.diag([1.0, -1.0, -1.0])
    T[:3, 3] = [x, y, z]
    return T


class FakeArm:
    """Test double for the robot side of /joint_states: tracks commands perfectly after a delay."""

    def __init__(self, model: RobotModel, width_on_close: float):
        self.model = model
        self.q = model.home.copy()
        self.width = 0.0
        self.width_on_close = width_on_close
        self.traj = None
        self.traj_t0 = 0.0

    def apply(self, t: float, commands: list) -> None:
        for c in commands:
            if isinstance(c, SendTrajectory):
                self.traj, self.traj_t0 = c.traj, t
            elif isinstance(c, SendStop):
                self.traj = None  # stop where it is
            elif isinstance(c, SendGripper):
                self.width = 0.085 if c.value > 0.5 else self.width_on_close

    def joint_state(self, t: float):
        if self.traj is not None:
            k = min(np.searchsorted(self.traj.t, t - self.traj_t0), len(self.traj.t) - 1)
            self.q = self.traj.q[k].copy()
        names = list(self.model.joint_names) + list(self.model.gripper["joints"])
        pos = np.concatenate([self.q, [self.width / 2, self.width / 2]])
        return names, pos


@pytest.fixture(scope="module")
def model():
    return RobotModel.load("ur5")


@pytest.fixture(scope="module")
def checker(model):
    c = PyBulletCollisionChecker(model, [table_box(model)])
    yield c
    c.close()


def run(core: ExecutionCore, arm: FakeArm, t0: float, t_end: float, dt: float = 0.02,
        estop_at: float | None = None):
    """Drive the core with joint states every dt; returns all commands with their times."""
    log = []
    t = t0
    while t < t_end:
        if estop_at is not None and t >= estop_at:
            out = core.estop(t, True)
            arm.apply(t, out)
            log += [(t, c) for c in out]
            estop_at = None
        names, pos = arm.joint_state(t)
        out = core.on_joint_state(t, names, pos)
        arm.apply(t, out)
        log += [(t, c) for c in out]
        if core.state is not State.RUNNING and estop_at is None:
            break
        t += dt
    return log


def statuses(log, event):
    return [c for _, c in log if isinstance(c, Status) and c.event == event]


def test_grasp_runs_to_completion_and_verifies_width(model, checker):
    core = ExecutionCore(model, BuiltinBackend(model, checker))
    arm = FakeArm(model, width_on_close=0.04)
    core.on_joint_state(0.0, *arm.joint_state(0.0))
    out = core.request(0.0, "grasp", down(0.5, 0.0, 0.03))
    arm.apply(0.0, out)
    assert out[0].event == "motion_started" and isinstance(out[1], SendGripper) and out[1].value == 1.0
    log = run(core, arm, 0.02, 60.0)
    done = statuses(log, "motion_done")
    assert len(done) == 1 and done[0].fields["success"] is True
    assert done[0].fields["metrics"]["execution_time_s"] > 0
    sent = [c for _, c in log if isinstance(c, SendTrajectory)]
    assert len(sent) == 3  # to_pregrasp, approach, lift
    assert np.isclose(model.fk(sent[-1].traj.q[-1])[2, 3], 0.03 + 0.15, atol=1e-3)  # lifted 15 cm
    assert np.abs(arm.q - sent[-1].traj.q[-1]).max() <= 0.02  # done only once the arm got there
    assert core.state is State.IDLE


def test_empty_grasp_reports_failure(model, checker):
    core = ExecutionCore(model, BuiltinBackend(model, checker))
    arm = FakeArm(model, width_on_close=0.0)
    core.on_joint_state(0.0, *arm.joint_state(0.0))
    arm.apply(0.0, core.request(0.0, "grasp", down(0.5, 0.1, 0.03)))
    done = statuses(run(core, arm, 0.02, 60.0), "motion_done")
    assert done[0].fields["success"] is False and done[0].fields["reason"] == "grasp_empty"


def test_estop_holds_position_and_refuses_until_released(model, checker):
    core = ExecutionCore(model, BuiltinBackend(model, checker))
    arm = FakeArm(model, width_on_close=0.04)
    core.on_joint_state(0.0, *arm.joint_state(0.0))
    arm.apply(0.0, core.request(0.0, "grasp", down(0.55, -0.1, 0.03)))
    log = run(core, arm, 0.02, 60.0, estop_at=1.5)  # mid-way through the first arm segment
    t_stop, stop = next((t, c) for t, c in log if isinstance(c, SendStop))
    assert t_stop == pytest.approx(1.5, abs=0.021)  # sent in the same call, not on a later tick
    assert stop.joint_names == model.joint_names
    assert not np.allclose(core.q, model.home)  # it was moving when stopped
    assert not [c for t, c in log if t > t_stop and isinstance(c, (SendTrajectory, SendGripper))]
    assert statuses(log, "estop")[0].fields["interrupted"] is True
    assert statuses(log, "motion_done")[0].fields["reason"] == "estop"
    assert core.state is State.ESTOPPED
    # nothing more is sent after the stop, and requests are refused while engaged
    assert core.tick(100.0) == []
    out = core.request(100.0, "place", down(0.5, 0.2, 0.05))
    assert out[0].event == "motion_refused" and out[0].fields["reason"] == "estop_active"
    out = core.estop(101.0, False)
    assert out[0].event == "estop" and core.state is State.IDLE
    out = core.request(101.0, "place", down(0.5, 0.2, 0.05))
    assert out[0].event == "motion_started"


def test_refusals(model, checker):
    core = ExecutionCore(model, BuiltinBackend(model, checker))
    out = core.request(0.0, "grasp", down(0.5, 0.0, 0.05))
    assert out[0].fields["reason"] == "no_joint_state"
    arm = FakeArm(model, 0.04)
    core.on_joint_state(0.0, *arm.joint_state(0.0))
    out = core.request(0.0, "grasp", down(2.0, 0.0, 0.05))
    assert out[0].event == "motion_refused" and out[0].fields["reason"] == "outside_workspace"
    core.request(0.0, "grasp", down(0.5, 0.0, 0.05))
    out = core.request(0.1, "grasp", down(0.5, 0.0, 0.05))
    assert out[0].fields["reason"] == "busy"
    with pytest.raises(ValueError, match="kind"):
        core.request(0.2, "push", down(0.5, 0.0, 0.05))


def test_tracking_timeout(model, checker):
    core = ExecutionCore(model, BuiltinBackend(model, checker))
    arm = FakeArm(model, 0.04)
    core.on_joint_state(0.0, *arm.joint_state(0.0))
    core.request(0.0, "grasp", down(0.5, 0.0, 0.05))
    log = []
    names, pos = arm.joint_state(0.0)  # the arm never moves
    for k in range(1, 2000):
        log += core.on_joint_state(k * 0.05, names, pos)
        if core.state is State.IDLE:
            break
    done = [c for c in log if isinstance(c, Status) and c.event == "motion_done"]
    assert done and done[0].fields["reason"] == "tracking_timeout"
