# SPDX-License-Identifier: Apache-2.0
"""``vla_executor`` moving the simulated arm in one process: how ``vla eval`` executes every motion.

In the ROS graph the executor node runs :class:`vla_executor.execution.ExecutionCore` and the sim
bridge runs the PyBullet robot; they talk over ``/joint_states``, ``/arm_controller/joint_trajectory``
and ``/gripper_controller/command``. :class:`SimExecutor` connects the same ``ExecutionCore`` (same
builtin backend: IK, OMPL planning, ruckig timing, the per-segment safety check before a trajectory
is sent, completion observed on the joints and the gripper width) to the same
:class:`vla_sim.robot.SimRobot` controller directly, with the parameters of the executor node's own
files (``config/executor.yaml`` + ``config/executor_<robot>.yaml``). Commands are applied exactly as
the bridge applies them; joint states are fed every :data:`JOINT_STATE_STEPS` physics steps (60 Hz
of sim time, the executor node ticks at 50 Hz). So the benchmark measures the arm the robot runs,
and each motion's metrics (execution time, RMS jerk, joint path length) come from the executor.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vla_common.config import load_node_params
from vla_common.graph import config_dir
from vla_common.transforms import pose_to_matrix
from vla_executor.backends import make_backend
from vla_executor.execution import (
    ExecutionCore,
    ExecutionParams,
    SendGripper,
    SendStop,
    SendTrajectory,
    Status,
)
from vla_executor.motions import MotionConfig
from vla_executor.planner import PyBulletCollisionChecker, table_box
from vla_executor.robot_model import RobotModel
from vla_sim.robot import MotionRefused

JOINT_STATE_STEPS = 4  # physics steps (1/240 s) between joint-state updates: 60 Hz
MAX_MOTION_SIM_S = 60.0  # a motion without a final event by then is cancelled and failed


@dataclass
class MotionReport:
    """The executor's verdict on one grasp or place request."""

    kind: str
    success: bool
    reason: str  # "" on success; the executor's reason (grasp_empty, unreachable, ...) otherwise
    detail: str
    planned: dict[str, float] = field(default_factory=dict)  # execution_time_s, path_length_rad, rms_jerk
    measured: dict[str, float] = field(default_factory=dict)  # execution_time_s, rms_jerk_measured
    sim_time_s: float = 0.0  # sim time from the request to the final event

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for EpisodeResult.motions)."""
        return {"kind": self.kind, "success": self.success, "reason": self.reason, "detail": self.detail,
                "planned": self.planned, "measured": self.measured, "sim_time_s": self.sim_time_s}


def executor_parameters(robot: str) -> dict[str, Any]:
    """The executor node's parameters for ``robot``: executor.yaml, then executor_<robot>.yaml."""
    folder = config_dir()
    params = load_node_params(folder / "executor.yaml", "executor")
    own = folder / f"executor_{robot}.yaml"
    if own.is_file():
        params.update(load_node_params(own, "executor"))
    return params


class SimExecutor:
    """An ExecutionCore with the builtin backend, driving ``world.robot`` (module docstring).

    Args:
        world: a ``vla_sim.world.SimWorld`` with the robot loaded.
        robot: robot name (``ur5`` | ``humanoid_arm``), as for the executor node.
    """

    def __init__(self, world: Any, robot: str = "ur5") -> None:
        p = executor_parameters(robot)
        if str(p.get("backend", "builtin")) != "builtin":
            raise ValueError("the simulated benchmark runs the builtin backend (MoveIt needs a ROS install)")
        self.world = world
        self.robot = robot
        self.model = RobotModel.load(robot)
        base = self.model.config.get("base_pose_world", {"xyz": [0, 0, 0], "quat_xyzw": [0, 0, 0, 1]})
        self.T_world_base = pose_to_matrix(base["xyz"], base["quat_xyzw"])
        cfg = MotionConfig(approach_distance_m=float(p.get("approach_distance_m", 0.10)),
                           lift_height_m=float(p.get("lift_height_m", 0.15)),
                           retreat_distance_m=float(p.get("retreat_distance_m", 0.10)),
                           timing=str(p.get("timing", "ruckig")),
                           planning_timeout_s=float(p.get("planning_timeout_s", 2.0)),
                           speed_scale=float(p.get("speed_scale", 0.5)))
        self.checker = PyBulletCollisionChecker(self.model, [table_box(self.model)])
        backend = make_backend("builtin", self.model, self.checker, cfg=cfg)
        self.core = ExecutionCore(self.model, backend, ExecutionParams(
            goal_tolerance_rad=float(p.get("goal_tolerance_rad", 0.02)),
            goal_timeout_s=float(p.get("goal_timeout_s", 3.0))))

    def close(self) -> None:
        """Release the planner's collision world."""
        if self.checker is not None:
            self.checker.close()
            self.checker = None

    def __enter__(self) -> SimExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ running a motion
    def run(self, kind: str, T_world_tool: np.ndarray, max_sim_s: float = MAX_MOTION_SIM_S) -> MotionReport:
        """Request a grasp or place at the world TCP pose and step the world until the executor ends it."""
        world = self.world
        t0 = world.sim_time_s
        self._feed()
        T_base = np.linalg.inv(self.T_world_base) @ np.asarray(T_world_tool, dtype=np.float64)
        final = self._apply(self.core.request(world.sim_time_s, kind, T_base))
        while final is None:
            if world.sim_time_s - t0 > max_sim_s:
                self._apply(self.core.cancel(world.sim_time_s))
                return MotionReport(kind, False, "timeout",
                                    f"no motion_done within {max_sim_s:.0f} s of sim time",
                                    sim_time_s=world.sim_time_s - t0)
            world.step(JOINT_STATE_STEPS)
            final = self._apply(self._feed())
        fields = final.fields
        return MotionReport(kind, final.event == "motion_done" and bool(fields.get("success")),
                            str(fields.get("reason", "")), final.detail,
                            planned=dict(fields.get("metrics") or {}),
                            measured=dict(fields.get("measured") or {}),
                            sim_time_s=world.sim_time_s - t0)

    def _feed(self) -> list:
        """Give the core the measured joints and gripper (what the bridge publishes on /joint_states)."""
        r = self.world.robot
        names = list(r.joint_names) + list(r.model.gripper["joints"])
        pos = np.concatenate([r.joint_positions(), r.finger_positions()])
        vel = np.concatenate([r.joint_velocities(), np.zeros(len(r.finger_idx))])
        return self.core.on_joint_state(self.world.sim_time_s, names, pos, vel)

    def _apply(self, commands: list) -> Status | None:
        """Carry out the commands as the bridge does; return the final status event, if any."""
        robot = self.world.robot
        final = None
        for c in commands:
            if isinstance(c, SendTrajectory):
                try:
                    robot.start_trajectory(c.traj.t, c.traj.q, self.world.steps)
                except MotionRefused as exc:  # the controller refused it: stop the motion here
                    self.core.cancel(self.world.sim_time_s)
                    final = Status("motion_refused", "warn", f"controller refused the trajectory: {exc}",
                                   {"reason": "controller_refused"})
            elif isinstance(c, SendStop):
                robot.stop()
            elif isinstance(c, SendGripper):
                if c.value <= 0.01:
                    robot.command_gripper(open=False)
                else:
                    robot.command_gripper(open=True, width_m=c.value * 2 * robot.finger_max)
            elif isinstance(c, Status) and c.event in ("motion_done", "motion_refused"):
                final = c
        return final


_EXECUTORS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def executor_for(world: Any) -> SimExecutor:
    """The SimExecutor of ``world`` (made once per world and robot, then reused across episodes)."""
    ex = _EXECUTORS.get(world)
    if ex is None or ex.world is not world or ex.robot != world.robot_name:
        if ex is not None:
            ex.close()
        ex = SimExecutor(world, world.robot_name)
        _EXECUTORS[world] = ex
    return ex
