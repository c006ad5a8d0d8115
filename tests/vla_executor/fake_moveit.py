# SPDX-License-Identifier: Apache-2.0
"""FakeMoveItPy: a recording stand-in for moveit_py's MoveItPy (MoveIt cannot be installed here).

It implements only the calls MoveItBackend makes, with the Jazzy signatures from
/work/shared/reference/ros2-notes.md, and records every call in ``calls`` so tests can assert the
exact sequence. ``plan_ok`` / ``execute_ok`` script failures.

A plan is a real joint trajectory of ``model`` (vla_executor RobotModel; the UR5 when None) from
the fake's current joints to the model's IK solution of the goal (linear, at half the velocity
limits), read back by ``trajectory.get_robot_trajectory_msg()`` as moveit_py does; ``unsafe_plans``
scripts plans whose middle point leaves the joint limits, ``readable=False`` plans that cannot be
read back. ``execute`` takes ``execute_s`` of wall time and returns early
(ABORTED) when ``get_trajactory_execution_manager().stop_execution()`` is called from another thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np


@dataclass
class FakeExecutionStatus:
    """Like moveit_py's ExecutionStatus: ``status`` string and truthiness."""

    status: str

    def __bool__(self) -> bool:
        return self.status == "SUCCEEDED"


@dataclass
class FakeErrorCode:
    val: int


@dataclass
class FakePlanResponse:
    """Like MotionPlanResponse: ``trajectory``, ``error_code``, truthy on success."""

    trajectory: Any
    error_code: FakeErrorCode

    def __bool__(self) -> bool:
        return self.error_code.val == 1


class FakeRobotTrajectory:
    """Like moveit_py's RobotTrajectory: ``get_robot_trajectory_msg()`` (moveit_msgs/RobotTrajectory-like)."""

    def __init__(self, goal: Any, n: int, joint_names: list[str] | None = None,
                 q: np.ndarray | None = None, t: np.ndarray | None = None):
        self.goal, self.n = goal, n
        self.joint_names, self.q, self.t = joint_names, q, t

    def get_robot_trajectory_msg(self) -> Any:
        if self.q is None:
            raise AttributeError("this FakeMoveItPy's plans cannot be read back (readable=False)")
        qd = np.gradient(self.q, self.t, axis=0) if len(self.t) > 1 else np.zeros_like(self.q)
        points = []
        for k in range(len(self.t)):
            sec = int(self.t[k])
            stamp = SimpleNamespace(sec=sec, nanosec=int((self.t[k] - sec) * 1e9))
            points.append(SimpleNamespace(positions=list(self.q[k]), velocities=list(qd[k]), accelerations=[],
                                          time_from_start=stamp))
        jt = SimpleNamespace(joint_names=list(self.joint_names), points=points)
        return SimpleNamespace(joint_trajectory=jt)


class FakeExecutionManager:
    """Like TrajectoryExecutionManager: ``stop_execution()``."""

    def __init__(self, owner: FakeMoveItPy):
        self.owner = owner

    def stop_execution(self, auto_clear: bool = True) -> None:
        self.owner.calls.append(("stop_execution",))
        self.owner.stopped.set()


class FakePlanningComponent:
    """Records set_start_state_to_current_state / set_goal_state / plan."""

    def __init__(self, owner: FakeMoveItPy, group: str):
        self.owner, self.group = owner, group
        self.goal = None

    def set_start_state_to_current_state(self) -> None:
        self.owner.calls.append(("set_start_state_to_current_state", self.group))

    def set_goal_state(self, *, pose_stamped_msg=None, pose_link: str | None = None, configuration_name=None,
                       robot_state=None, motion_plan_constraints=None) -> None:
        self.goal = (pose_stamped_msg, pose_link)
        self.owner.calls.append(("set_goal_state", pose_stamped_msg, pose_link))

    def plan(self, single_plan_parameters=None, multi_plan_parameters=None) -> FakePlanResponse:
        ok = self.owner.plan_ok.pop(0) if self.owner.plan_ok else True
        self.owner.calls.append(("plan", self.group))
        return FakePlanResponse(self.owner.make_trajectory(self.goal), FakeErrorCode(1 if ok else 99999))


@dataclass
class FakeMoveItPy:
    """Stand-in for ``moveit.planning.MoveItPy(node_name=...)``."""

    node_name: str = "moveit_py"
    calls: list = field(default_factory=list)
    plan_ok: list[bool] = field(default_factory=list)
    execute_ok: list[bool] = field(default_factory=list)
    model: Any = None
    readable: bool = True
    unsafe_plans: list[bool] = field(default_factory=list)
    execute_s: float = 0.0
    q: Any = None
    stopped: threading.Event = field(default_factory=threading.Event)

    def make_trajectory(self, goal: Any) -> FakeRobotTrajectory:
        n = len(self.calls)
        if not self.readable:
            return FakeRobotTrajectory(goal, n)
        from vla_common.conversions import pose_stamped_to_matrix

        if self.model is None:
            from vla_executor.robot_model import RobotModel

            self.model = RobotModel.load("ur5")

        q0 = self.model.home.copy() if self.q is None else np.asarray(self.q, float)
        q1 = self.model.ik(pose_stamped_to_matrix(goal[0]), q0)
        q1 = q0 if q1 is None else q1
        dur = max(0.2, float(np.max(np.abs(q1 - q0) / (0.5 * self.model.vel_limits))))
        t = np.linspace(0.0, dur, 21)
        q = q0 + (q1 - q0) * (t / dur)[:, None]
        if self.unsafe_plans and self.unsafe_plans.pop(0):
            q[10, 0] = self.model.upper[0] + 0.5  # one point beyond the first joint's limit
        return FakeRobotTrajectory(goal, n, list(self.model.joint_names), q, t)

    def get_trajactory_execution_manager(self) -> FakeExecutionManager:  # moveit_py's spelling
        return FakeExecutionManager(self)

    def get_planning_component(self, group: str) -> FakePlanningComponent:
        self.calls.append(("get_planning_component", group))
        return FakePlanningComponent(self, group)

    def execute(self, trajectory, controllers: list[str]) -> FakeExecutionStatus:
        ok = self.execute_ok.pop(0) if self.execute_ok else True
        self.calls.append(("execute", trajectory, list(controllers)))
        if self.execute_s > 0 and self.stopped.wait(self.execute_s):
            self.stopped.clear()
            return FakeExecutionStatus("ABORTED")
        if ok and getattr(trajectory, "q", None) is not None:
            self.q = trajectory.q[-1].copy()
        return FakeExecutionStatus("SUCCEEDED" if ok else "ABORTED")
