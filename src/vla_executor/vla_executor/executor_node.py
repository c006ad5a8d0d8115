# SPDX-License-Identifier: Apache-2.0
"""Executor node: grasp/place poses in, safe arm trajectories and gripper commands out.

Subscribes ``/vla/grasp_pose`` and ``/vla/place_pose`` (geometry_msgs/PoseStamped, frame
``world`` or ``base_link``), ``/joint_states``, ``/vla/estop`` (std_msgs/Bool) and, optionally,
``/vla/feature_cloud`` (sensor_msgs/PointCloud2) as collision occupancy. Publishes
trajectory_msgs/JointTrajectory on ``/arm_controller/joint_trajectory``, std_msgs/Float64 on
``/gripper_controller/command`` (1.0 open, 0.0 closed) and JSON status events on /vla/status
(executor_ready once joint states arrive, motion_started, motion_refused, motion_done, estop).

All logic lives in the plain-Python ``ExecutionCore`` (execution.py); this node converts
messages and runs a timer. ``/vla/motion/cancel`` (std_msgs/Empty) stops the running motion
(empty trajectory = hold) and leaves the executor ready; the policy node sends it when a task is
cancelled or times out.

E-stop always wins: a pose request starts planning (up to ``planning_timeout_s``) in a worker
thread, so the spinning thread handles ``/vla/estop`` and ``/vla/motion/cancel`` at once (the plan
is then discarded); the stop trajectory is published from the e-stop callback itself. With the
MoveIt backend, whose execute blocks, the node spins a MultiThreadedExecutor with e-stop and cancel
in their own callback group (``backend.stop()`` ends the execution); the builtin backend spins
single-threaded, because rclpy's MultiThreadedExecutor delayed the sim e-stop to 0.10-0.55 s.
The collision world is the table plus, when ``use_feature_cloud`` is set, the latest feature
cloud as voxels (no simulator ground truth).

Run: ``executor_node --ros-args --params-file config/executor.yaml --params-file
config/executor_ur5.yaml -p robot:=ur5``.
"""

from __future__ import annotations

import threading

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import JointState, PointCloud2
from std_msgs.msg import Bool, Empty, Float64
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from vla_common import topics
from vla_common.conversions import joint_state_to_numpy, pointcloud2_to_numpy, pose_stamped_to_matrix
from vla_common.node_runner import destroy_entities, spin_node
from vla_common.qos import RELIABLE_QOS, SENSOR_QOS
from vla_common.ros_params import at_least, in_range, positive, validate_on_set
from vla_common.ros_status import StatusPublisher
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
from vla_executor.timing import Trajectory


def warm_up_timing(model: RobotModel) -> None:
    """Time-parameterise a tiny path once with toppra and ruckig, so the first task does not pay for it.

    toppra's import alone took 1.5 s here, and the first grasp of a task used to pay it (the first
    plan of a fresh executor took 1.5-2.4 s, the next ones 0.08-0.3 s; results/bench_response.md).
    """
    from vla_executor.timing import time_parameterize_ruckig, time_parameterize_toppra

    q0 = np.asarray(model.home, dtype=np.float64)  # (n,)
    path = np.stack([q0, q0 + 0.05])                # (2, n)
    vel, acc = np.asarray(model.vel_limits), np.asarray(model.acc_limits)
    time_parameterize_toppra(path, vel, acc, dt=0.01)
    time_parameterize_ruckig(path, vel, acc, acc * 4.0, dt=0.01)


def trajectory_to_msg(traj: Trajectory, joint_names: list[str], stride: int = 1) -> JointTrajectory:
    """Trajectory -> JointTrajectory (header stamp 0 = start now); every ``stride``-th sample + the last."""
    msg = JointTrajectory()
    msg.joint_names = list(joint_names)
    idx = list(range(0, len(traj.t), max(1, stride)))
    if idx[-1] != len(traj.t) - 1:
        idx.append(len(traj.t) - 1)
    for k in idx:
        pt = JointTrajectoryPoint()
        pt.positions = [float(v) for v in traj.q[k]]
        pt.velocities = [float(v) for v in traj.qd[k]]
        pt.accelerations = [float(v) for v in traj.qdd[k]]
        sec = int(traj.t[k])
        pt.time_from_start.sec = sec
        pt.time_from_start.nanosec = int(round((float(traj.t[k]) - sec) * 1e9))
        msg.points.append(pt)
    return msg


class ExecutorNode(LifecycleNode):
    """Thin rclpy adapter around ExecutionCore, as a lifecycle (managed) node.

    * unconfigured: parameters only (validated on set);
    * ``configure``: loads the robot model, the backend (collision world / MoveIt) and the core,
      and subscribes to poses, joint states, e-stop and cancel;
    * ``activate``: accepts grasp/place poses; ``deactivate``: stops a running motion (hold) and
      refuses poses (``motion_refused`` reason ``inactive``); the e-stop works in both states;
    * ``cleanup``: releases the collision world and the subscriptions.

    With ``autostart`` (default true: ``vla launch`` and the launch files need nothing more) the node
    configures and activates itself at start, and a failed configure fails the start; with
    ``autostart:=false`` a lifecycle manager (``ros2 lifecycle set /executor configure``, the
    ``/executor/change_state`` service) drives it.
    """

    def __init__(self) -> None:
        super().__init__("executor")
        self.robot_name = str(self.declare_parameter("robot", "ur5").value)
        self.backend_kind = str(self.declare_parameter("backend", "builtin").value)
        for name, default in (("timing", "ruckig"), ("speed_scale", 0.5), ("approach_distance_m", 0.10),
                              ("lift_height_m", 0.15), ("retreat_distance_m", 0.10),
                              ("planning_timeout_s", 2.0), ("goal_tolerance_rad", 0.02),
                              ("goal_timeout_s", 3.0)):
            self.declare_parameter(name, default)
        self.use_cloud = bool(self.declare_parameter("use_feature_cloud", False).value)
        self.voxel_m = float(self.declare_parameter("cloud_voxel_m", 0.02).value)
        self.keep_out_m = float(self.declare_parameter("cloud_keep_out_radius_m", 0.08).value)
        self.tick_hz = float(self.declare_parameter("tick_rate_hz", 50.0).value)
        self.traj_stride = int(self.declare_parameter("trajectory_stride", 1).value)
        arm_topic = str(self.declare_parameter("trajectory_topic", topics.ARM_TRAJECTORY).value)
        gripper_topic = str(self.declare_parameter("gripper_topic", topics.GRIPPER_COMMAND).value)
        self.moveit_group = str(self.declare_parameter("moveit_group", "arm").value)
        autostart = bool(self.declare_parameter("autostart", True).value)
        if self.tick_hz <= 0 or self.voxel_m <= 0:
            raise ValueError("tick_rate_hz and cloud_voxel_m must be > 0")
        validate_on_set(self, {
            "speed_scale": in_range(0.01, 1.0), "goal_tolerance_rad": positive(),
            "goal_timeout_s": positive(), "cloud_voxel_m": positive(),
            "cloud_keep_out_radius_m": at_least(0.0), "trajectory_stride": at_least(1, integer=True)},
            read_only=("robot", "backend", "timing", "approach_distance_m", "lift_height_m",
                       "retreat_distance_m", "planning_timeout_s", "use_feature_cloud", "tick_rate_hz",
                       "trajectory_topic", "gripper_topic", "moveit_group", "autostart"),
            apply=self._apply_param)

        self.core: ExecutionCore | None = None
        self.checker = None
        self._active = False
        self._entities: list = []  # subscriptions and the timer made by configure
        self._cloud_xyz: np.ndarray | None = None
        self.traj_pub = self.create_publisher(JointTrajectory, arm_topic, RELIABLE_QOS)
        self.gripper_pub = self.create_publisher(Float64, gripper_topic, RELIABLE_QOS)
        self._status_out = StatusPublisher(self, "executor", robot=self.robot_name)
        self.status_pub = self._status_out.pub
        # callback groups: e-stop/cancel never wait behind planning (module docstring)
        self._safety_group = MutuallyExclusiveCallbackGroup()
        self._plan_group = MutuallyExclusiveCallbackGroup()
        if autostart:
            if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                raise RuntimeError(f"executor could not configure: {self._configure_error}")
            self.trigger_activate()

    # ------------------------------------------------------------------ lifecycle
    _configure_error = ""

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the robot model, backend and core; subscribe (class docstring)."""
        gp = self.get_parameter
        try:
            self.model = RobotModel.load(self.robot_name)
            base = self.model.config.get("base_pose_world", {"xyz": [0, 0, 0], "quat_xyzw": [0, 0, 0, 1]})
            self.T_world_base = pose_to_matrix(base["xyz"], base["quat_xyzw"])
            cfg = MotionConfig(approach_distance_m=float(gp("approach_distance_m").value),
                               lift_height_m=float(gp("lift_height_m").value),
                               retreat_distance_m=float(gp("retreat_distance_m").value),
                               timing=str(gp("timing").value),
                               planning_timeout_s=float(gp("planning_timeout_s").value),
                               speed_scale=float(gp("speed_scale").value))
            if self.backend_kind == "builtin":
                self.checker = PyBulletCollisionChecker(self.model, [table_box(self.model)])
                backend = make_backend("builtin", self.model, self.checker, cfg=cfg)
                warm_up_timing(self.model)
            else:
                backend = make_backend(self.backend_kind, self.model, cfg=cfg, group=self.moveit_group,
                                       pose_link=self.model.tool_frame, frame_id=self.model.base_frame)
            self.core = ExecutionCore(self.model, backend, ExecutionParams(
                goal_tolerance_rad=float(gp("goal_tolerance_rad").value),
                goal_timeout_s=float(gp("goal_timeout_s").value)))
        except Exception as exc:  # noqa: BLE001 - a failed configure names the cause and stays unconfigured
            self._configure_error = f"{type(exc).__name__}: {exc}"
            self.get_logger().error(f"configure failed: {self._configure_error}")
            self._release()
            return TransitionCallbackReturn.FAILURE
        sub = self.create_subscription
        self._entities = [
            sub(PoseStamped, topics.GRASP_POSE, lambda m: self._on_pose(m, "grasp"), RELIABLE_QOS,
                callback_group=self._plan_group),
            sub(PoseStamped, topics.PLACE_POSE, lambda m: self._on_pose(m, "place"), RELIABLE_QOS,
                callback_group=self._plan_group),
            sub(JointState, topics.JOINT_STATES, self._on_joint_state, SENSOR_QOS),
            sub(Bool, topics.ESTOP, self._on_estop, RELIABLE_QOS, callback_group=self._safety_group),
            sub(Empty, topics.MOTION_CANCEL, self._on_cancel, RELIABLE_QOS,
                callback_group=self._safety_group),
        ]
        if self.use_cloud:
            self._entities.append(sub(PointCloud2, topics.FEATURE_CLOUD, self._on_cloud, RELIABLE_QOS))
        self.timer = self.create_timer(1.0 / self.tick_hz, self._on_tick)
        self._entities.append(self.timer)
        self.get_logger().info(f"executor configured: robot={self.robot_name} backend={self.backend_kind} "
                               f"timing={gp('timing').value} cloud={'on' if self.use_cloud else 'off'}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Accept grasp/place poses from now on."""
        self._active = True
        self._status("executor_active", "info", "active: accepting grasp/place poses")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop a running motion (hold) and refuse poses until activated again."""
        self._active = False
        if self.core is not None:
            self._emit(self.core.cancel(self._now()))
        self._status("executor_inactive", "warn", "inactive: motion stopped, grasp/place poses refused")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release the subscriptions, the timer and the collision world."""
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop any motion and release everything."""
        if self.core is not None and self._active:
            self._emit(self.core.cancel(self._now()))
        self._active = False
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _release(self) -> None:
        destroy_entities(self, self._entities)
        if self.checker is not None:
            self.checker.close()
            self.checker = None
        self.core = None

    def _apply_param(self, name: str, value: float) -> None:
        """A validated run-time parameter change (vla_common.ros_params): used from the next motion on.

        Before configure the core does not exist yet; configure reads the parameters themselves.
        """
        if name == "cloud_voxel_m":
            self.voxel_m = float(value)
        elif name == "cloud_keep_out_radius_m":
            self.keep_out_m = float(value)
        elif name == "trajectory_stride":
            self.traj_stride = int(value)
        elif self.core is not None and name == "speed_scale":
            self.core.backend.cfg.speed_scale = float(value)
        elif self.core is not None and name == "goal_tolerance_rad":
            self.core.params.goal_tolerance_rad = float(value)
        elif self.core is not None and name == "goal_timeout_s":
            self.core.params.goal_timeout_s = float(value)

    # ------------------------------------------------------------------ callbacks
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_joint_state(self, msg: JointState) -> None:
        names, pos = joint_state_to_numpy(msg)
        vel = np.asarray(msg.velocity, dtype=np.float64) if len(msg.velocity) == len(names) else None
        had_state = self.core.q is not None
        self._emit(self.core.on_joint_state(self._now(), list(names), pos, vel))
        if not had_state and self.core.q is not None:
            self._status("executor_ready", "info", "joint states received; accepting grasp/place poses",
                         joint_names=self.model.joint_names)

    def _on_pose(self, msg: PoseStamped, kind: str) -> None:
        if not self._active:
            self._status("motion_refused", "warn", f"{kind} refused: the executor is not active (lifecycle)",
                         kind=kind, reason="inactive")
            return
        frame = msg.header.frame_id or "world"
        try:
            T = pose_stamped_to_matrix(msg)
        except ValueError as exc:
            self._status("motion_refused", "warn", f"{kind} refused: {exc}", kind=kind, reason="invalid_pose")
            return
        if frame == "world":
            T = np.linalg.inv(self.T_world_base) @ T
        elif frame != self.model.base_frame:
            self._status("motion_refused", "warn", f"{kind} refused: pose frame {frame!r} is neither "
                         f"'world' nor {self.model.base_frame!r}", kind=kind, reason="unknown_frame")
            return
        refused, ticket = self.core.admit(kind)  # refusals at once and in order
        if ticket is None:
            self._emit(refused)
            return
        # plan in a worker thread: the spinning thread stays free for /vla/estop and cancel
        threading.Thread(target=self._plan, args=(kind, T, ticket), name=f"plan-{kind}", daemon=True).start()

    def _plan(self, kind: str, T: np.ndarray, ticket: tuple) -> None:
        """Worker thread: collision world from the latest cloud, then plan and start the motion."""
        def collision_world() -> None:
            if self.checker is not None and self.use_cloud and self._cloud_xyz is not None:
                keep_out = [(T[:3, 3], self.keep_out_m)]
                if self.core.q is not None:  # the held object moves with the gripper
                    keep_out.append((self.model.fk(self.core.q)[:3, 3], self.keep_out_m))
                n_vox = self.checker.set_point_cloud(self._cloud_xyz, self.voxel_m, keep_out=keep_out)
                self.get_logger().info(f"collision world: table + {n_vox} cloud voxels")

        try:
            self._emit(self.core.plan_admitted(self._now(), kind, T, ticket, prepare=collision_world))
        except Exception as exc:  # noqa: BLE001 - a planning crash is a refusal, never a dead thread
            self._status("motion_refused", "error", f"{kind} refused: planning failed: {type(exc).__name__}: "
                         f"{exc}", kind=kind, reason="planning_error")

    def _on_estop(self, msg: Bool) -> None:
        self._emit(self.core.estop(self._now(), bool(msg.data)))

    def _on_cancel(self, msg: Empty) -> None:
        self._emit(self.core.cancel(self._now()))

    def _on_cloud(self, msg: PointCloud2) -> None:
        xyz, _, _ = pointcloud2_to_numpy(msg)
        pts = np.asarray(xyz, dtype=np.float64)
        if msg.header.frame_id in ("world", ""):
            pts = (np.linalg.inv(self.T_world_base) @ np.c_[pts, np.ones(len(pts))].T).T[:, :3]
        self._cloud_xyz = pts

    def _on_tick(self) -> None:
        self._emit(self.core.tick(self._now()))

    # ------------------------------------------------------------------ outputs
    def _emit(self, commands: list) -> None:
        for c in commands:
            if isinstance(c, SendTrajectory):
                self.traj_pub.publish(trajectory_to_msg(c.traj, c.joint_names, self.traj_stride))
            elif isinstance(c, SendStop):
                stop = JointTrajectory()
                stop.joint_names = list(c.joint_names)
                self.traj_pub.publish(stop)
            elif isinstance(c, SendGripper):
                self.gripper_pub.publish(Float64(data=float(c.value)))
            elif isinstance(c, Status):
                self._status(c.event, c.level, c.detail, **c.fields)

    def _status(self, event: str, level: str, detail: str, **fields) -> None:
        self._status_out(event, level, detail, **fields)

    def destroy_node(self) -> None:
        """Release the collision client too."""
        if self.checker is not None:
            self.checker.close()
            self.checker = None
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """Run the executor node until shut down."""
    # single-threaded (planning runs in its own thread); MoveIt's blocking execute needs the
    # e-stop's callback group on a second executor thread
    spin_node(ExecutorNode, args, threads=lambda node: 4 if node.backend_kind == "moveit" else 1)


if __name__ == "__main__":
    main()
