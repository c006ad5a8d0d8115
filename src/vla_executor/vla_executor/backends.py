# SPDX-License-Identifier: Apache-2.0
"""Motion backends behind one interface: the built-in planner, or MoveIt via moveit_py.

``make_backend(cfg)`` picks one from ``backend: builtin | moveit`` (config/executor_<robot>.yaml).

- ``BuiltinBackend``: motions.plan_grasp / plan_place (OMPL + toppra/ruckig + safety). All
  segments are planned and checked before anything moves; ``execute`` hands each trajectory to
  a ``send`` callable (the executor node publishes a JointTrajectory) and returns at once; the
  node watches /joint_states for completion.
- ``MoveItBackend``: on a real robot with MoveIt 2 (Jazzy) installed. Each pose goal is planned
  right before it runs (MoveIt starts from the current state), using exactly the moveit_py
  calls: ``MoveItPy(node_name=...)``, ``get_planning_component(group)``,
  ``set_start_state_to_current_state()``, ``set_goal_state(pose_stamped_msg=..., pose_link=...)``,
  ``plan()``, ``execute(plan.trajectory, controllers=[])`` (blocking). Every planned trajectory is
  read back (``plan.trajectory.get_robot_trajectory_msg()``) and each of its points checked
  against joint, velocity and acceleration limits, the safety box and the table
  (safety.check_trajectory) before it is executed; ``stop()`` (e-stop, cancel) calls
  ``get_trajactory_execution_manager().stop_execution()`` (sic, moveit_py's spelling), from another
  thread while ``execute`` blocks. ``moveit.planning`` is imported only when no MoveItPy instance is
  injected. MoveIt cannot be installed here, so it
  is tested against tests/vla_executor/fake_moveit.py (FakeMoveItPy), which records the calls.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from vla_executor.motions import (
    GripperAction,
    MotionConfig,
    MotionError,
    MotionPlan,
    Segment,
    lifted,
    offset_along_approach,
    plan_grasp,
    plan_place,
)
from vla_executor.planner import CollisionChecker
from vla_executor.robot_model import RobotModel
from vla_executor.safety import check_target, check_trajectory, trajectory_from_points
from vla_executor.timing import Trajectory


@dataclass
class PoseGoal:
    """A pose step planned by the backend just before it runs (MoveIt)."""

    name: str
    T_base_tool: np.ndarray
    cartesian: bool


Step = Segment | GripperAction | PoseGoal


class MotionBackend(ABC):
    """Plans grasp/place step lists and executes arm steps."""

    name: str = "abstract"

    def __init__(self, model: RobotModel, cfg: MotionConfig | None = None):
        self.model = model
        self.cfg = cfg or MotionConfig()

    @abstractmethod
    def plan_grasp(self, q_start: np.ndarray, T_grasp: np.ndarray) -> list[Step]:
        """Steps of a grasp (raises MotionError when refused)."""

    @abstractmethod
    def plan_place(self, q_start: np.ndarray, T_place: np.ndarray) -> list[Step]:
        """Steps of a place (raises MotionError when refused)."""

    @abstractmethod
    def plan_to_pose(self, T_base_tool: np.ndarray, q_start: np.ndarray | None = None,
                     name: str = "move") -> Any:
        """Plan a move of the tool to T_base_tool; returns a backend-specific planned motion."""

    @abstractmethod
    def execute(self, motion: Any) -> bool:
        """Run a planned motion; True when accepted (builtin) or finished successfully (MoveIt)."""

    @property
    def blocking(self) -> bool:
        """True when execute() returns only after the motion ended (MoveIt)."""
        return False

    def stop(self) -> None:  # noqa: B027 - optional hook, a no-op for non-blocking backends
        """Stop a running execution now (called from the e-stop/cancel thread).

        Builtin: nothing to do here, the node's empty trajectory stops the controller.
        """


class BuiltinBackend(MotionBackend):
    """OMPL + toppra/ruckig + safety checks in-process; trajectories go out through ``send``.

    Args:
        model: robot.
        checker: collision world.
        send: called with each Trajectory to execute (the node publishes it).
        cfg: motion parameters.
        holding: optional hook for plan_grasp (see motions.plan_grasp).
    """

    name = "builtin"

    def __init__(self, model: RobotModel, checker: CollisionChecker,
                 send: Callable[[Trajectory], None] | None = None, cfg: MotionConfig | None = None,
                 holding: Callable[[bool], None] | None = None):
        super().__init__(model, cfg)
        self.checker = checker
        self.send = send
        self.holding = holding
        self.last_plan: MotionPlan | None = None

    def plan_grasp(self, q_start: np.ndarray, T_grasp: np.ndarray) -> list[Step]:
        """All grasp segments, planned and checked."""
        self.last_plan = plan_grasp(self.model, self.checker, q_start, T_grasp, self.cfg, self.holding)
        return list(self.last_plan.steps)

    def plan_place(self, q_start: np.ndarray, T_place: np.ndarray) -> list[Step]:
        """All place segments, planned and checked."""
        self.last_plan = plan_place(self.model, self.checker, q_start, T_place, self.cfg)
        return list(self.last_plan.steps)

    def plan_to_pose(self, T_base_tool: np.ndarray, q_start: np.ndarray | None = None,
                     name: str = "move") -> Segment:
        """A free move to an IK solution of T_base_tool nearest q_start."""
        from vla_executor.motions import _Planner

        q_start = self.model.home if q_start is None else q_start
        p = _Planner(self.model, self.checker, self.cfg)
        return p.free(name, q_start, p.ik(T_base_tool, q_start, name))

    def execute(self, motion: Segment) -> bool:
        """Hand the segment's trajectory to ``send``; completion is observed on /joint_states."""
        if self.send is None:
            raise RuntimeError("BuiltinBackend has no send callable; pass send= to execute trajectories")
        self.send(motion.traj)
        return True


class MoveItBackend(MotionBackend):
    """moveit_py (MoveIt 2 Jazzy) planning and execution for a real robot.

    Args:
        model: robot (for target checks and frame names).
        group: MoveIt planning group.
        pose_link: link whose pose is the goal (our ``tcp``; must exist in MoveIt's URDF).
        frame_id: frame of the goal poses.
        node_name: MoveItPy node name.
        moveit: an existing MoveItPy-like object; None creates one with ``moveit_cls``.
        cfg: motion parameters (approach/lift distances).
        moveit_cls: the class to create (``moveit.planning.MoveItPy`` when None; tests pass
            FakeMoveItPy). It gets ``config_dict`` = the robot's generated MoveIt configuration
            (:func:`vla_executor.robots.moveit_config.moveit_params`: URDF, SRDF, kinematics, joint
            limits, OMPL pipeline, controllers) unless ``config_dict`` is given.
        config_dict: MoveIt parameters overriding the generated ones (None = generated).
    """

    name = "moveit"

    def __init__(self, model: RobotModel, group: str = "arm", pose_link: str = "tcp",
                 frame_id: str = "base_link", node_name: str = "vla_moveit_py", moveit: Any = None,
                 cfg: MotionConfig | None = None, moveit_cls: Any = None,
                 config_dict: dict[str, Any] | None = None):
        super().__init__(model, cfg)
        if moveit is None:
            if moveit_cls is None:
                try:
                    from moveit.planning import MoveItPy as moveit_cls  # lazy: only where MoveIt 2 is
                except ImportError as exc:
                    raise RuntimeError("backend 'moveit' needs moveit_py (apt install ros-jazzy-moveit-py); "
                                       "use backend: builtin where MoveIt is not installed") from exc
            if config_dict is None:
                from vla_executor.robots.moveit_config import moveit_params

                config_dict = moveit_params(model.name)
                # plan at the executor's speed_scale (0.1 on the first day: README "First day on a robot")
                scale = float(np.clip(self.cfg.speed_scale, 0.01, 1.0))
                config_dict["plan_request_params"].update(max_velocity_scaling_factor=scale,
                                                          max_acceleration_scaling_factor=scale)
            moveit = moveit_cls(node_name=node_name, config_dict=config_dict)
        self.robot = moveit
        self.group = group
        self.pose_link = pose_link
        self.frame_id = frame_id
        self.component = self.robot.get_planning_component(group)

    @property
    def blocking(self) -> bool:
        """MoveItPy.execute blocks until the controllers finish."""
        return True

    def _check(self, T: np.ndarray, what: str) -> None:
        rep = check_target(self.model, T)
        if not rep:
            raise MotionError(rep.reason, f"{what} pose: {rep.detail}")

    def plan_grasp(self, q_start: np.ndarray, T_grasp: np.ndarray) -> list[Step]:
        """Pose goals: open, pre-grasp, grasp, close, lift (each planned just before it runs)."""
        self._check(T_grasp, "grasp")
        c = self.cfg
        return [GripperAction(True, "open"),
                PoseGoal("to_pregrasp", offset_along_approach(T_grasp, -c.approach_distance_m), False),
                PoseGoal("approach", np.asarray(T_grasp, float), True), GripperAction(False, "close"),
                PoseGoal("lift", lifted(T_grasp, c.lift_height_m), True)]

    def plan_place(self, q_start: np.ndarray, T_place: np.ndarray) -> list[Step]:
        """Pose goals: pre-place, lower, open, retreat."""
        self._check(T_place, "place")
        c = self.cfg
        return [PoseGoal("transport", offset_along_approach(T_place, -c.approach_distance_m), False),
                PoseGoal("lower", np.asarray(T_place, float), True), GripperAction(True, "open"),
                PoseGoal("retreat", offset_along_approach(T_place, -c.retreat_distance_m), True)]

    def plan_to_pose(self, T_base_tool: np.ndarray, q_start: np.ndarray | None = None,
                     name: str = "move") -> Any:
        """Plan with MoveIt from the robot's current state; returns the MotionPlanResponse."""
        from vla_common.conversions import matrix_to_pose_stamped

        pose = matrix_to_pose_stamped(np.asarray(T_base_tool, float), frame_id=self.frame_id)
        self.component.set_start_state_to_current_state()
        self.component.set_goal_state(pose_stamped_msg=pose, pose_link=self.pose_link)
        plan = self.component.plan()
        if not plan:
            code = getattr(getattr(plan, "error_code", None), "val", "?")
            raise MotionError("no_path", f"{name}: MoveIt planning failed (error code {code})")
        self.check_plan(plan, name)
        return plan

    def check_plan(self, plan: Any, name: str = "move") -> None:
        """Check every point of a MoveIt plan's trajectory (limits, box, table); MotionError if unsafe.

        The trajectory is read back as moveit_msgs/RobotTrajectory; one that cannot be read or
        checked is refused, never executed unchecked.
        """
        try:
            msg = plan.trajectory.get_robot_trajectory_msg()
            jt = msg.joint_trajectory
            traj = trajectory_from_points(self.model, list(jt.joint_names), list(jt.points))
        except (AttributeError, ValueError) as exc:
            raise MotionError("unchecked_trajectory", f"{name}: MoveIt's trajectory cannot be checked "
                              f"({exc}); not executed") from exc
        rep = check_trajectory(self.model, traj)
        if not rep:
            raise MotionError(rep.reason, f"{name}: MoveIt's trajectory is unsafe: {rep.detail}")

    def stop(self) -> None:
        """Ask MoveIt's trajectory execution manager to stop the running execution."""
        get = getattr(self.robot, "get_trajactory_execution_manager", None) or getattr(
            self.robot, "get_trajectory_execution_manager", None)
        if get is not None:
            get().stop_execution()

    def execute(self, motion: Any) -> bool:
        """Execute a MotionPlanResponse (blocking); True when MoveIt reports success."""
        status = self.robot.execute(motion.trajectory, controllers=[])
        return bool(status)


def make_backend(kind: str, model: RobotModel, checker: CollisionChecker | None = None,
                 send: Callable[[Trajectory], None] | None = None, cfg: MotionConfig | None = None,
                 **moveit_kwargs: Any) -> MotionBackend:
    """Backend from config: ``builtin`` or ``moveit`` (moveit_kwargs go to MoveItBackend)."""
    if kind == "builtin":
        if checker is None:
            raise ValueError("backend 'builtin' needs a collision checker")
        return BuiltinBackend(model, checker, send, cfg)
    if kind == "moveit":
        return MoveItBackend(model, cfg=cfg, **moveit_kwargs)
    raise ValueError(f"unknown backend {kind!r}; choose 'builtin' or 'moveit'")
