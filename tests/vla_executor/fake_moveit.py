# SPDX-License-Identifier: Apache-2.0
"""FakeMoveItPy: a recording stand-in for moveit_py's MoveItPy (MoveIt cannot be installed here).

It implements only the calls MoveItBackend makes, with the Jazzy signatures from
/work/shared/reference/ros2-notes.md, and records every call in ``calls`` so tests can assert the
exact sequence. ``plan_ok`` / ``execute_ok`` script failures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
        traj = {"goal": self.goal, "n": len(self.owner.calls)}
        return FakePlanResponse(traj, FakeErrorCode(1 if ok else 99999))


@dataclass
class FakeMoveItPy:
    """Stand-in for ``moveit.planning.MoveItPy(node_name=...)``."""

    node_name: str = "moveit_py"
    calls: list = field(default_factory=list)
    plan_ok: list[bool] = field(default_factory=list)
    execute_ok: list[bool] = field(default_factory=list)

    def get_planning_component(self, group: str) -> FakePlanningComponent:
        self.calls.append(("get_planning_component", group))
        return FakePlanningComponent(self, group)

    def execute(self, trajectory, controllers: list[str]) -> FakeExecutionStatus:
        ok = self.execute_ok.pop(0) if self.execute_ok else True
        self.calls.append(("execute", trajectory, list(controllers)))
        return FakeExecutionStatus("SUCCEEDED" if ok else "ABORTED")
