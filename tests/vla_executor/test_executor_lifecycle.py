# SPDX-License-Identifier: Apache-2.0
"""The executor as a lifecycle node, driven through its real lifecycle services by another process.

``autostart:=false``: unconfigured it has no pose subscription; configured but inactive it refuses
poses (reason ``inactive``); active it moves; deactivated mid-motion it stops the arm (empty
trajectory) and reports the motion cancelled. The arm is played by this process (test_executor_node's
RobotSide: joint states that follow the received trajectory).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("rclpy")
import rclpy  # noqa: E402
import rclpy.executors  # noqa: E402
from lifecycle_msgs.msg import State, Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402

from vla_common.conversions import matrix_to_pose_stamped  # noqa: E402
from vla_executor.robot_model import RobotModel  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from test_executor_node import REPO, RobotSide, down, spin_until  # noqa: E402

pytestmark = pytest.mark.ros


def test_executor_lifecycle_configure_activate_deactivate(ros_localhost_env):
    model = RobotModel.load("ur5")
    cmd = [sys.executable, "-m", "vla_executor.executor_node", "--ros-args",
           "--params-file", str(REPO / "config" / "executor.yaml"),
           "--params-file", str(REPO / "config" / "executor_ur5.yaml"), "-p", "robot:=ur5",
           "-p", "autostart:=false"]
    proc = subprocess.Popen(cmd, env=ros_localhost_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("executor_lifecycle_test", context=ctx)
    ex = rclpy.executors.SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    try:
        robot = RobotSide(node, model)
        change = node.create_client(ChangeState, "/executor/change_state")
        get = node.create_client(GetState, "/executor/get_state")
        assert spin_until(ex, lambda: change.service_is_ready() and get.service_is_ready(), 30.0), \
            "no lifecycle services"

        def call(client, req):
            fut = client.call_async(req)
            assert spin_until(ex, fut.done, 30.0), "lifecycle service did not answer"
            return fut.result()

        def transition(tid: int) -> bool:
            return call(change, ChangeState.Request(transition=Transition(id=tid))).success

        def state() -> int:
            return call(get, GetState.Request()).current_state.id

        def event(name, start=0):
            return next((s for s in robot.status[start:] if s["event"] == name), None)

        assert state() == State.PRIMARY_STATE_UNCONFIGURED
        spin_until(ex, lambda: False, 0.5)
        assert robot.grasp_pub.get_subscription_count() == 0  # nothing to command before configure

        assert transition(Transition.TRANSITION_CONFIGURE) and state() == State.PRIMARY_STATE_INACTIVE
        assert spin_until(ex, lambda: robot.grasp_pub.get_subscription_count() > 0, 15.0)
        n0 = len(robot.status)
        robot.grasp_pub.publish(matrix_to_pose_stamped(down(0.55, -0.1, 0.03), "world"))
        assert spin_until(ex, lambda: event("motion_refused", n0) is not None, 10.0)
        assert event("motion_refused", n0)["reason"] == "inactive" and not robot.trajs

        assert transition(Transition.TRANSITION_ACTIVATE) and state() == State.PRIMARY_STATE_ACTIVE
        n1 = len(robot.status)
        robot.grasp_pub.publish(matrix_to_pose_stamped(down(0.55, -0.1, 0.03), "world"))
        assert spin_until(ex, lambda: len(robot.trajs) >= 1, 20.0), f"no trajectory: {robot.status[n1:]}"
        assert event("motion_started", n1) is not None
        spin_until(ex, lambda: False, 0.3)

        n2 = len(robot.status)
        assert transition(Transition.TRANSITION_DEACTIVATE) and state() == State.PRIMARY_STATE_INACTIVE
        stopped = spin_until(ex, lambda: event("motion_done", n2) is not None
                             and len(robot.trajs[-1].points) == 0, 10.0)
        assert stopped, robot.status[n2:]
        assert event("motion_done", n2)["reason"] == "cancelled" and event("executor_inactive", n2)
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
