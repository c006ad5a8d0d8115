# SPDX-License-Identifier: Apache-2.0
"""The executor node as a real process over real DDS: refusal, motion start, e-stop, release.

The robot side is played by this test process: it publishes /joint_states that follow the
received JointTrajectory (perfect tracking), and echoes gripper commands into finger joints.
The in-sim pick-and-place through vla_sim's bridge node is a separate test.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy")
import rclpy  # noqa: E402
import rclpy.executors  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Bool, Float64, String  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

from vla_common.conversions import matrix_to_pose_stamped  # noqa: E402
from vla_executor.robot_model import RobotModel  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.ros


def down(x: float, y: float, z: float) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = np.diag([1.0, -1.0, -1.0])
    T[:3, 3] = [x, y, z]
    return T


class RobotSide:
    """Plays the arm: joint states at 50 Hz that follow the last received trajectory."""

    def __init__(self, node, model: RobotModel):
        self.node, self.model = node, model
        self.q = model.home.copy()
        self.width = 0.0
        self.traj: JointTrajectory | None = None
        self.t0 = 0.0
        self.trajs: list[JointTrajectory] = []
        self.gripper: list[float] = []
        self.status: list[dict] = []
        self.js_pub = node.create_publisher(JointState, "/joint_states", 10)
        self.grasp_pub = node.create_publisher(PoseStamped, "/vla/grasp_pose", 10)
        self.estop_pub = node.create_publisher(Bool, "/vla/estop", 10)
        node.create_subscription(JointTrajectory, "/arm_controller/joint_trajectory", self._on_traj, 10)
        node.create_subscription(Float64, "/gripper_controller/command", self._on_gripper, 10)
        node.create_subscription(String, "/vla/status", lambda m: self.status.append(json.loads(m.data)), 10)
        node.create_timer(0.02, self._publish)

    def _on_traj(self, msg: JointTrajectory) -> None:
        self.trajs.append(msg)
        if not msg.points:  # empty trajectory: stop where it is (JTC semantics)
            self.traj = None
            return
        self.traj, self.t0 = msg, time.monotonic()

    def _on_gripper(self, msg: Float64) -> None:
        self.gripper.append(msg.data)
        self.width = 0.085 if msg.data > 0.5 else 0.04

    def _publish(self) -> None:
        if self.traj is not None and self.traj.points:
            t = time.monotonic() - self.t0
            times = [p.time_from_start.sec + 1e-9 * p.time_from_start.nanosec for p in self.traj.points]
            k = min(int(np.searchsorted(times, t)), len(times) - 1)
            self.q = np.array(self.traj.points[k].positions)
        msg = JointState()
        msg.name = list(self.model.joint_names) + list(self.model.gripper["joints"])
        msg.position = [float(v) for v in self.q] + [self.width / 2, self.width / 2]
        self.js_pub.publish(msg)


def spin_until(executor, cond, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.02)
        if cond():
            return True
    return False


def test_executor_node_refuses_moves_and_stops(ros_localhost_env):
    model = RobotModel.load("ur5")
    cmd = [sys.executable, "-m", "vla_executor.executor_node", "--ros-args",
           "--params-file", str(REPO / "config" / "executor.yaml"),
           "--params-file", str(REPO / "config" / "executor_ur5.yaml"), "-p", "robot:=ur5"]
    proc = subprocess.Popen(cmd, env=ros_localhost_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("executor_test_robot", context=ctx)
    ex = rclpy.executors.SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    try:
        robot = RobotSide(node, model)
        started = spin_until(ex, lambda: robot.grasp_pub.get_subscription_count() > 0
                             and robot.estop_pub.get_subscription_count() > 0, 30.0)
        assert started, "executor node did not start"
        # executor_ready is volatile: it may have gone out before our status subscription matched
        spin_until(ex, lambda: any(s["event"] == "executor_ready" for s in robot.status), 3.0)

        def event(name, start=0):
            return next((s for s in robot.status[start:] if s["event"] == name), None)

        robot.grasp_pub.publish(matrix_to_pose_stamped(down(1.5, 0.0, 0.1), "world"))
        assert spin_until(ex, lambda: event("motion_refused") is not None, 10.0)
        assert event("motion_refused")["reason"] == "outside_workspace"

        n0 = len(robot.status)
        robot.grasp_pub.publish(matrix_to_pose_stamped(down(0.55, -0.1, 0.03), "world"))
        assert spin_until(ex, lambda: len(robot.trajs) >= 1, 15.0), f"no trajectory published: {robot.status}"
        assert event("motion_started", n0)["kind"] == "grasp"
        # gripper and arm commands travel on different topics: their arrival order is not guaranteed
        assert spin_until(ex, lambda: len(robot.gripper) >= 1, 5.0), "no gripper command published"
        assert robot.gripper[0] == 1.0  # opened first
        first = robot.trajs[0]
        assert list(first.joint_names) == model.joint_names and len(first.points) > 10
        spin_until(ex, lambda: False, 0.6)  # let it move for a while
        q_before = robot.q.copy()
        assert not np.allclose(q_before, model.home)
        robot.estop_pub.publish(Bool(data=True))
        assert spin_until(ex, lambda: event("motion_done", n0) is not None and len(robot.trajs) >= 2, 5.0)
        assert event("estop", n0)["engaged"] is True
        stop = robot.trajs[-1]
        assert len(stop.points) == 0 and list(stop.joint_names) == model.joint_names  # stop and hold
        done = event("motion_done", n0)
        assert done is not None and done["success"] is False and done["reason"] == "estop"

        n1 = len(robot.status)
        robot.grasp_pub.publish(matrix_to_pose_stamped(down(0.5, 0.1, 0.03), "world"))
        assert spin_until(ex, lambda: event("motion_refused", n1) is not None, 10.0)
        assert event("motion_refused", n1)["reason"] == "estop_active"
        assert len(robot.trajs) == 2  # nothing was sent while engaged

        robot.estop_pub.publish(Bool(data=False))
        n2 = len(robot.status)
        assert spin_until(ex, lambda: event("estop", n2) is not None, 5.0)
        robot.grasp_pub.publish(matrix_to_pose_stamped(down(0.5, 0.1, 0.03), "world"))
        assert spin_until(ex, lambda: event("motion_started", n2) is not None, 15.0)
    finally:
        node.destroy_node()
        rclpy.shutdown(context=ctx)
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        print(out[-3000:])
