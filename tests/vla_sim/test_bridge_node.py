# SPDX-License-Identifier: Apache-2.0
"""The sim bridge as a real process: trajectories over DDS move the simulated joints; limits refuse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from builtin_interfaces.msg import Duration  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, JointState  # noqa: E402
from std_msgs.msg import Float64, String  # noqa: E402
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint  # noqa: E402

from vla_common.conversions import depth_image_to_metres  # noqa: E402
from vla_common.qos import EVENT_QOS, LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]
ARM = [
    "shoulder_pan_joint",
    "shoulder_lift_joint",
    "elbow_joint",
    "wrist_1_joint",
    "wrist_2_joint",
    "wrist_3_joint",
]


class Probe:
    """Test-side node: watches joint states, status events and one camera."""

    def __init__(self, context):
        self.node = rclpy.create_node("bridge_probe", context=context)
        self.q: dict[str, float] = {}
        self.events: list[dict] = []
        self.images: list[Image] = []
        self.depths: list[Image] = []
        self.infos: list[CameraInfo] = []
        self.node.create_subscription(JointState, "/joint_states", self._on_js, SENSOR_QOS)
        self.node.create_subscription(
            String, "/vla/status", lambda m: self.events.append(json.loads(m.data)), EVENT_QOS
        )
        self.node.create_subscription(Image, "/cameras/top/color/image_raw", self.images.append, SENSOR_QOS)
        self.node.create_subscription(
            Image, "/cameras/top/aligned_depth_to_color/image_raw", self.depths.append, SENSOR_QOS
        )
        self.node.create_subscription(
            CameraInfo, "/cameras/top/color/camera_info", self.infos.append, LATCHED_QOS
        )
        self.traj_pub = self.node.create_publisher(
            JointTrajectory, "/arm_controller/joint_trajectory", RELIABLE_QOS
        )
        self.scene_pub = self.node.create_publisher(String, "/sim/load_scene", RELIABLE_QOS)
        self.grip_pub = self.node.create_publisher(Float64, "/gripper_controller/command", RELIABLE_QOS)

    def _on_js(self, msg: JointState) -> None:
        self.q = dict(zip(msg.name, msg.position))

    def spin_until(self, executor, cond, timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s  # test-harness timeout only; the sim itself runs on steps
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
            if cond():
                return True
        return False

    def arm(self) -> np.ndarray:
        return np.array([self.q[n] for n in ARM])

    def send(self, points: list[tuple[float, np.ndarray]]) -> None:
        msg = JointTrajectory()
        msg.joint_names = list(reversed(ARM))  # any order is accepted
        for t, q in points:
            p = JointTrajectoryPoint()
            p.positions = [float(v) for v in reversed(q)]
            p.time_from_start = Duration(sec=int(t), nanosec=int(round((t % 1) * 1e9)))
            msg.points.append(p)
        self.traj_pub.publish(msg)


@pytest.fixture(scope="module")
def bridge():
    cmd = [
        sys.executable,
        "-m",
        "vla_sim.bridge_node",
        "--ros-args",
        "-p",
        "renderer:=tiny",
        "-p",
        "render_width:=160",
        "-p",
        "render_height:=120",
        "-p",
        "camera_rate_hz:=1.0",
        "-p",
        "tick_hz:=100.0",
        "-p",
        "steps_per_tick:=8",
        "-p",
        "task:=grasp",
        "-p",
        "seed:=3",
    ]
    proc = subprocess.Popen(
        cmd, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    context = rclpy.Context()
    rclpy.init(context=context)
    executor = SingleThreadedExecutor(context=context)
    probe = Probe(context)
    executor.add_node(probe.node)
    try:
        ok = probe.spin_until(executor, lambda: all(n in probe.q for n in ARM), 90.0)
        if not ok:
            proc.kill()
            pytest.fail(
                "sim bridge published no joint states:\n" + (proc.stdout.read() if proc.stdout else "")
            )
        probe.spin_until(
            executor,
            lambda: (
                probe.traj_pub.get_subscription_count() > 0 and probe.grip_pub.get_subscription_count() > 0
            ),
            20.0,
        )
        yield probe, executor
    finally:
        executor.shutdown()
        probe.node.destroy_node()
        rclpy.shutdown(context=context)
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        print(out[-3000:])
        assert "Traceback" not in out, out[-3000:]


def test_trajectory_moves_joints_within_1_mrad(bridge):
    probe, ex = bridge
    q0 = probe.arm()
    goal = q0 + np.array([0.3, 0.15, -0.2, 0.1, 0.2, -0.3])
    probe.send([(0.5, q0 + 0.3 * (goal - q0)), (1.5, goal)])
    assert probe.spin_until(ex, lambda: np.max(np.abs(probe.arm() - goal)) < 1e-3, 60.0), (
        f"joints at {probe.arm()}, goal {goal}"
    )
    assert any(e["event"] == "motion_started" for e in probe.events)
    assert probe.images and probe.images[-1].width == 160 and probe.images[-1].encoding == "rgb8"
    assert probe.depths and probe.depths[-1].encoding == "32FC1"
    depth = depth_image_to_metres(probe.depths[-1])
    assert depth.shape == (120, 160) and 0.7 < np.nanmedian(depth) < 0.86  # table is 0.85 m below the camera
    assert probe.infos and abs(probe.infos[-1].k[0] - 605.0 / 4) < 1e-6
    assert probe.images[-1].header.frame_id == "top_color_optical_frame"


def test_out_of_limit_trajectory_is_refused_and_nothing_moves(bridge):
    probe, ex = bridge
    q_before = probe.arm()
    bad = q_before.copy()
    bad[0] = 4.0  # shoulder_pan limit is +-pi
    n_events = len(probe.events)
    probe.send([(1.0, bad)])
    assert probe.spin_until(
        ex, lambda: any(e["event"] == "motion_refused" for e in probe.events[n_events:]), 30.0
    )
    refused = [e for e in probe.events[n_events:] if e["event"] == "motion_refused"][0]
    assert "shoulder_pan_joint" in refused["detail"] and refused["level"] == "warn"
    probe.spin_until(ex, lambda: False, 1.0)
    assert np.max(np.abs(probe.arm() - q_before)) < 1e-3


def test_gripper_command_closes_and_opens(bridge):
    probe, ex = bridge

    def width() -> float:
        return probe.q["left_finger_joint"] + probe.q["right_finger_joint"]

    probe.grip_pub.publish(Float64(data=0.0))
    assert probe.spin_until(ex, lambda: width() < 0.005, 30.0)
    probe.grip_pub.publish(Float64(data=1.0))
    assert probe.spin_until(ex, lambda: width() > 0.083, 30.0)


def test_load_scene_and_privileged_object_lifted_event(bridge):
    from vla_executor.robot_model import RobotModel

    probe, ex = bridge
    n_events = len(probe.events)
    probe.scene_pub.publish(String(data=json.dumps({"task": "place", "split": "seen", "seed": 3})))
    assert probe.spin_until(
        ex, lambda: any(e["event"] == "scene_loaded" for e in probe.events[n_events:]), 30.0
    )
    loaded = [e for e in probe.events[n_events:] if e["event"] == "scene_loaded"][-1]
    assert loaded["task"] == "place"
    model = RobotModel.load("ur5")
    probe.spin_until(ex, lambda: False, 0.5)  # fresh joint states of the new scene
    q0 = probe.arm()
    T = model.fk(q0)
    T[2, 3] += 0.15
    q1 = model.ik(T, q0)
    probe.send([(1.5, q1)])
    assert probe.spin_until(
        ex, lambda: any(e["event"] == "object_lifted" for e in probe.events[n_events:]), 30.0
    )
    lifted = [e for e in probe.events[n_events:] if e["event"] == "object_lifted"][0]
    assert lifted["object"] in loaded["objects"] and lifted["lift_m"] >= 0.10


def test_sim_report_answers_start_boxes_and_the_place_check(bridge):
    probe, ex = bridge
    pub = probe.node.create_publisher(String, "/sim/report", RELIABLE_QOS)
    assert probe.spin_until(ex, lambda: pub.get_subscription_count() > 0, 20.0)
    loaded = [e for e in probe.events if e["event"] == "scene_loaded"][-1]
    obj, ref = loaded["objects"][0], loaded["objects"][1]
    n_events = len(probe.events)
    pub.publish(String(data=json.dumps({"place": {"object": obj, "relation": "near", "references": [ref]}})))
    def seen(event: str) -> bool:
        return any(e["event"] == event for e in probe.events[n_events:])

    assert probe.spin_until(ex, lambda: seen("sim_report"), 30.0)
    report = [e for e in probe.events[n_events:] if e["event"] == "sim_report"][-1]
    assert sorted(report["start_boxes"]) == sorted(loaded["objects"])
    lo, hi = (np.asarray(v) for v in report["start_boxes"][obj])
    assert (hi > lo).all()
    place = report["place"]
    assert place["object"] == obj and place["relation"] == "near" and list(place["references"]) == [ref]
    assert isinstance(place["success"], bool) and place["references"][ref]["gap_m"] >= 0.0
    pub.publish(String(data="not json"))
    assert probe.spin_until(ex, lambda: seen("report_refused"), 10.0)
