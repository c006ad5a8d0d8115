# SPDX-License-Identifier: Apache-2.0
"""Backends: MoveItBackend against FakeMoveItPy (MoveIt cannot be installed here), selection."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from vla_executor.backends import BuiltinBackend, MoveItBackend, PoseGoal, make_backend
from vla_executor.execution import ExecutionCore, SendGripper, State, Status
from vla_executor.motions import GripperAction
from vla_executor.planner import PyBulletCollisionChecker, table_box
from vla_executor.robot_model import RobotModel

sys.path.insert(0, str(Path(__file__).parent))
from fake_moveit import FakeMoveItPy  # noqa: E402

pytest.importorskip("geometry_msgs.msg")


def down(x: float, y: float, z: float) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = np.diag([1.0, -1.0, -1.0])
    T[:3, 3] = [x, y, z]
    return T


def test_moveit_backend_makes_the_moveit_py_calls():
    model = RobotModel.load("ur5")
    fake = FakeMoveItPy(node_name="vla_moveit_py", model=model)
    backend = MoveItBackend(model, group="manipulator", pose_link="tcp", frame_id="base_link", moveit=fake)
    assert fake.calls == [("get_planning_component", "manipulator")]
    T = down(0.5, 0.1, 0.03)
    steps = backend.plan_grasp(model.home, T)
    assert [s.name for s in steps] == ["open", "to_pregrasp", "approach", "close", "lift"]
    assert isinstance(steps[1], PoseGoal) and np.isclose(steps[1].T_base_tool[2, 3], 0.13)
    core = ExecutionCore(model, backend)
    names = list(model.joint_names) + list(model.gripper["joints"])
    core.on_joint_state(0.0, names, np.concatenate([model.home, [0.0, 0.0]]))
    out = core.request(0.0, "grasp", T)
    assert out[0].event == "motion_started" and isinstance(out[-1], SendGripper) and out[-1].value == 1.0
    # gripper settles (width constant), then the next steps run through MoveIt (blocking)
    log = []
    for k in range(1, 200):
        log += core.on_joint_state(0.05 * k, names, np.concatenate([model.home, [0.02, 0.02]]))
        if core.state is State.IDLE:
            break
    done = [c for c in log if isinstance(c, Status) and c.event == "motion_done"]
    assert done and done[0].fields["success"] is True
    kinds = [c[0] for c in fake.calls[1:]]
    assert kinds == ["set_start_state_to_current_state", "set_goal_state", "plan", "execute"] * 3
    goals = [c for c in fake.calls if c[0] == "set_goal_state"]
    pose_msg, link = goals[1][1], goals[1][2]
    assert link == "tcp" and pose_msg.header.frame_id == "base_link"
    p = pose_msg.pose.position
    assert np.allclose([p.x, p.y, p.z], T[:3, 3])
    execs = [c for c in fake.calls if c[0] == "execute"]
    assert all(c[2] == [] for c in execs)  # controllers=[] (Jazzy signature)
    assert execs[0][1].goal[0] is goals[0][1]  # executes the trajectory of the plan just made


def test_moveit_planning_failure_is_reported():
    model = RobotModel.load("ur5")
    fake = FakeMoveItPy(plan_ok=[False])
    backend = MoveItBackend(model, moveit=fake)
    core = ExecutionCore(model, backend)
    names = list(model.joint_names) + list(model.gripper["joints"])
    core.on_joint_state(0.0, names, np.concatenate([model.home, [0.0, 0.0]]))
    out = core.request(0.0, "place", down(0.5, 0.1, 0.05))  # place starts with an arm step: planned at once
    done = [c for c in out if isinstance(c, Status) and c.event == "motion_done"]
    assert done[0].fields["success"] is False and done[0].fields["reason"] == "no_path"
    assert core.state is State.IDLE
    assert not any(c[0] == "execute" for c in fake.calls)


def test_moveit_backend_refuses_unsafe_targets_before_planning():
    model = RobotModel.load("ur5")
    fake = FakeMoveItPy()
    backend = MoveItBackend(model, moveit=fake)
    from vla_executor.motions import MotionError

    with pytest.raises(MotionError) as err:
        backend.plan_grasp(model.home, down(1.5, 0.0, 0.1))
    assert err.value.reason == "outside_workspace"
    assert [c[0] for c in fake.calls] == ["get_planning_component"]


@pytest.mark.skipif(importlib.util.find_spec("moveit") is not None, reason="MoveIt is installed here")
def test_moveit_backend_without_moveit_explains_the_fix():
    with pytest.raises(RuntimeError, match="moveit_py.*builtin"):
        make_backend("moveit", RobotModel.load("ur5"))


def test_make_backend_selects_by_name():
    model = RobotModel.load("ur5")
    checker = PyBulletCollisionChecker(model, [table_box(model)])
    assert isinstance(make_backend("builtin", model, checker), BuiltinBackend)
    with pytest.raises(ValueError, match="builtin.*moveit"):
        make_backend("magic", model, checker)
    steps = make_backend("builtin", model, checker).plan_grasp(model.home, down(0.5, 0.0, 0.03))
    assert isinstance(steps[0], GripperAction)
    checker.close()


def _moveit_core(fake: FakeMoveItPy):
    model = fake.model
    core = ExecutionCore(model, MoveItBackend(model, moveit=fake))
    names = list(model.joint_names) + list(model.gripper["joints"])
    core.on_joint_state(0.0, names, np.concatenate([model.home, [0.0, 0.0]]))
    return core


def test_moveit_trajectory_points_are_checked_before_execution():
    # the goal is inside the workspace (check_target passes) but MoveIt's plan passes a point beyond
    # a joint limit: refused, never executed
    fake = FakeMoveItPy(model=RobotModel.load("ur5"), unsafe_plans=[True])
    core = _moveit_core(fake)
    out = core.request(0.0, "place", down(0.5, 0.1, 0.05))
    done = [c for c in out if isinstance(c, Status) and c.event == "motion_done"]
    assert done[0].fields["success"] is False and done[0].fields["reason"] == "joint_limit", done
    assert not any(c[0] == "execute" for c in fake.calls)
    # a plan that cannot be read back is not executed either
    blind = FakeMoveItPy(readable=False)
    core = ExecutionCore(RobotModel.load("ur5"), MoveItBackend(RobotModel.load("ur5"), moveit=blind))
    names = list(core.model.joint_names) + list(core.model.gripper["joints"])
    core.on_joint_state(0.0, names, np.concatenate([core.model.home, [0.0, 0.0]]))
    out = core.request(0.0, "place", down(0.5, 0.1, 0.05))
    done = [c for c in out if isinstance(c, Status) and c.event == "motion_done"]
    assert done[0].fields["reason"] == "unchecked_trajectory"
    assert not any(c[0] == "execute" for c in blind.calls)


def test_estop_stops_a_blocking_moveit_execution_from_another_thread():
    import threading
    import time

    fake = FakeMoveItPy(model=RobotModel.load("ur5"), execute_s=30.0)
    core = _moveit_core(fake)
    result: list = []
    worker = threading.Thread(target=lambda: result.extend(core.request(0.0, "place", down(0.5, 0.1, 0.05))))
    worker.start()
    deadline = time.monotonic() + 20
    while not any(c[0] == "execute" for c in fake.calls) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert any(c[0] == "execute" for c in fake.calls), "MoveIt execute never started"
    out = core.estop(1.0, True)  # from this thread, while execute() blocks the other one
    worker.join(timeout=10)
    assert not worker.is_alive(), "execute() was not stopped"
    assert ("stop_execution",) in fake.calls
    assert core.state is State.ESTOPPED
    events = [c.event for c in out + result if isinstance(c, Status)]
    assert events.count("motion_done") == 1 and "estop" in events
    n_exec = sum(c[0] == "execute" for c in fake.calls)
    assert n_exec == 1  # nothing after the stopped step ran
