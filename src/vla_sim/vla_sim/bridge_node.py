# SPDX-License-Identifier: Apache-2.0
"""``sim_bridge``: the PyBullet world behind the same ROS topics as the real robot (DESIGN.md).

Publishes (names follow realsense2_camera and ros2_control, so the rest of the graph cannot tell
the simulation from the robot):

- ``/cameras/<name>/color/image_raw`` (rgb8), ``/cameras/<name>/aligned_depth_to_color/image_raw``
  (32FC1, metres, NaN = no depth), ``/cameras/<name>/color/camera_info`` (latched) for ``top``,
  ``left``, ``right``, every ``1 / camera_rate_hz`` seconds of simulated time;
- ``/joint_states`` (arm joints and the two finger joints, finger positions in metres);
- ``/clock`` (rosgraph_msgs/Clock): simulated time; other nodes run with ``use_sim_time``;
- ``/cameras/rig_calibration`` (std_msgs/String, latched): the rig calibration YAML text (same
  format as ``config/rig_sim.yaml``). Camera extrinsics travel this way because the pip ROS wheels
  have no tf2_msgs; where tf2 exists a static broadcaster can publish the same poses.
- ``/vla/status`` JSON events: ``sim_ready``, ``scene_loaded``, ``motion_refused``,
  ``motion_started``, ``object_lifted`` (privileged: the name of an object held and raised
  >= 10 cm; for demos and scoring, a policy must never subscribe to it).

Subscribes:

- ``/arm_controller/joint_trajectory`` (trajectory_msgs/JointTrajectory): executed by linear
  interpolation of its points in simulated time from the moment it arrives (a first point with
  ``time_from_start > 0`` starts from the current position). Joint names may come in any order
  but must cover the arm. Trajectories beyond the joint position or velocity limits are refused
  as a whole (status ``motion_refused``) and nothing moves. An empty trajectory stops the arm.
- ``/gripper_controller/command`` (std_msgs/Float64): 1.0 open, 0.0 closed (closing uses the
  maximum force, 40 N); values in between open to that fraction of the 85 mm stroke.
- ``/sim/report`` (std_msgs/String, JSON ``{}`` or ``{"place": {"object", "relation",
  "references"}}``): answered with a privileged ``sim_report`` status event (object boxes at scene
  load; with ``place``, ``vla_sim.checks.place_report``), for ``vla demo``'s verdict only.
- ``/sim/load_scene`` (std_msgs/String, JSON ``{"task", "split", "seed"}`` or ``{"case_file",
  "index"}``): reset the world to another scene.

Physics runs in a wall-clock timer (``tick_hz``); each tick advances exactly
``steps_per_tick`` physics steps, so simulated time advances at a fixed ratio to the ticks and a
slow machine simply runs slower in wall time, never differently.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import yaml
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float64, String
from trajectory_msgs.msg import JointTrajectory

from vla_common import topics
from vla_common.ros_status import StatusPublisher

try:  # the foundation's conversions (sensor_msgs <-> numpy)
    from vla_common.conversions import (
        intrinsics_to_camera_info,
        metres_to_depth_image,
        numpy_to_image,
        s_to_time,
    )
    from vla_common.qos import LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS
except ImportError as exc:  # pragma: no cover (vla_common ships them)
    raise ImportError(f"vla_sim.bridge_node needs vla_common.conversions and vla_common.qos: {exc}") from exc

from vla_common.node_runner import spin_node
from vla_sim import objects as objlib
from vla_sim.checks import LIFT_SUCCESS_M, place_report
from vla_sim.robot import PHYSICS_HZ, MotionRefused
from vla_sim.scenes import CaseSet, make_case
from vla_sim.world import DepthNoise, SimWorld, rig_to_dict

NODE_NAME = "sim_bridge"


def trajectory_to_arrays(msg: JointTrajectory, joint_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """JointTrajectory -> (t (K,) s, q (K, n) rad) in ``joint_names`` order.

    Raises:
        MotionRefused: joints missing, or a point without a position per joint.
    """
    names = list(msg.joint_names)
    missing = [n for n in joint_names if n not in names]
    if missing:
        raise MotionRefused(f"trajectory lacks joints {missing} (has {names})")
    idx = [names.index(n) for n in joint_names]
    t, q = [], []
    for k, p in enumerate(msg.points):
        if len(p.positions) != len(names):
            raise MotionRefused(f"point {k} has {len(p.positions)} positions for {len(names)} joint names")
        t.append(p.time_from_start.sec + 1e-9 * p.time_from_start.nanosec)
        q.append([p.positions[i] for i in idx])
    return np.asarray(t, dtype=np.float64), np.asarray(q, dtype=np.float64).reshape(len(t), len(joint_names))


class SimBridgeNode(Node):
    """The simulated robot and cameras on ROS topics (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        self.robot_name = self.declare_parameter("robot", "ur5").value
        self.task = self.declare_parameter("task", "grasp").value
        self.split = self.declare_parameter("split", "seen").value
        self.seed = int(self.declare_parameter("seed", 0).value)
        self.case_file = str(self.declare_parameter("case_file", "").value)
        self.case_index = int(self.declare_parameter("case_index", 0).value)
        self.camera_rate_hz = float(self.declare_parameter("camera_rate_hz", 2.0).value)
        self.joint_state_rate_hz = float(self.declare_parameter("joint_state_rate_hz", 60.0).value)
        self.tick_hz = float(self.declare_parameter("tick_hz", 60.0).value)
        self.steps_per_tick = int(self.declare_parameter("steps_per_tick", 4).value)
        width = int(self.declare_parameter("render_width", 640).value)
        height = int(self.declare_parameter("render_height", 480).value)
        self.renderer = str(self.declare_parameter("renderer", "auto").value)
        self.depth_noise_sigma_m = float(self.declare_parameter("depth_noise_sigma_m", 0.0).value)
        self.depth_dropout = float(self.declare_parameter("depth_dropout_prob", 0.0).value)
        self.enable_cameras = bool(self.declare_parameter("enable_cameras", True).value)
        for name, value, ok in (
            ("tick_hz", self.tick_hz, self.tick_hz > 0),
            ("steps_per_tick", self.steps_per_tick, self.steps_per_tick > 0),
            ("camera_rate_hz", self.camera_rate_hz, self.camera_rate_hz > 0),
            ("render_width", width, width > 0 and height > 0),
        ):
            if not ok:
                raise ValueError(f"parameter {name} must be positive, got {value}")
        self.noise = (
            DepthNoise(self.depth_noise_sigma_m, self.depth_dropout)
            if self.depth_noise_sigma_m > 0 or self.depth_dropout > 0
            else None
        )

        self.world = SimWorld(
            robot=self.robot_name, renderer=self.renderer, seed=self.seed, render_size=(width, height)
        )
        self._status_out = StatusPublisher(self, NODE_NAME)
        self.status_pub = self._status_out.pub
        self.clock_pub = self.create_publisher(Clock, topics.CLOCK, RELIABLE_QOS)
        self.joint_pub = self.create_publisher(JointState, topics.JOINT_STATES, SENSOR_QOS)
        self.rig_pub = self.create_publisher(String, topics.RIG_CALIBRATION, LATCHED_QOS)
        self.cam_pubs = {}
        for cam in self.world.rig:
            base = f"/cameras/{cam.name}"
            self.cam_pubs[cam.name] = (
                self.create_publisher(Image, f"{base}/color/image_raw", SENSOR_QOS),
                self.create_publisher(Image, f"{base}/aligned_depth_to_color/image_raw", SENSOR_QOS),
                self.create_publisher(CameraInfo, f"{base}/color/camera_info", LATCHED_QOS),
            )
        self.create_subscription(
            JointTrajectory, topics.ARM_TRAJECTORY, self._on_trajectory, RELIABLE_QOS
        )
        self.create_subscription(Float64, topics.GRIPPER_COMMAND, self._on_gripper, RELIABLE_QOS)
        self.create_subscription(String, topics.SIM_LOAD_SCENE, self._on_load_scene, RELIABLE_QOS)
        self.create_subscription(String, "/sim/report", self._on_report, RELIABLE_QOS)

        self._lift_ref_z: dict[str, float] = {}
        self._lifted: set[str] = set()
        self._next_cam_step = 0
        self._next_js_step = 0
        self._load(self.task, self.split, self.seed, self.case_file or None, self.case_index)
        rig_msg = String()
        rig_msg.data = yaml.safe_dump(rig_to_dict(self.world.rig), sort_keys=False)
        self.rig_pub.publish(rig_msg)
        self.timer = self.create_timer(1.0 / self.tick_hz, self._tick)
        self._status(
            "sim_ready",
            f"simulated {self.robot_name} ready ({self.world.renderer} renderer)",
            renderer=self.world.renderer,
            joint_names=self.world.robot.joint_names,
            rig_topic=topics.RIG_CALIBRATION,
        )

    # ------------------------------------------------------------------ scene
    def _load(self, task: str, split: str, seed: int, case_file: str | None, index: int) -> None:
        # /clock stays monotonic across scene resets (the world counts steps from 0 per scene)
        self._step_base = getattr(self, "_step_base", 0) + self.world.steps
        if case_file:
            cases = CaseSet.load(Path(case_file)).cases
            if not cases:
                raise ValueError(f"case file {case_file} holds no cases")
            scene = cases[index % len(cases)]
            self.world.load_scene(scene)
        else:
            scene = make_case(self.world, task, split, seed)
        self._lift_ref_z = {n: float(self.world.object_pose(n)[2, 3]) for n in self.world.object_ids}
        self._start_boxes = {n: self.world.object_aabb(n) for n in self.world.object_ids}
        self._lifted = set()
        self._next_cam_step = 0
        self._next_js_step = 0
        instr = scene.instruction or {}
        self._status(
            "scene_loaded",
            f"{scene.task}/{scene.split} scene with {len(self.world.object_ids)} objects",
            task=scene.task,
            split=scene.split,
            seed=scene.seed,
            objects=sorted(self.world.object_ids),
            example_instruction=instr.get("text"),
        )

    def _on_load_scene(self, msg: String) -> None:
        try:
            req = json.loads(msg.data)
            if not isinstance(req, dict):
                raise ValueError("expected a JSON object")
            self._load(
                str(req.get("task", self.task)),
                str(req.get("split", self.split)),
                int(req.get("seed", self.seed)),
                req.get("case_file"),
                int(req.get("index", 0)),
            )
        except (ValueError, KeyError, RuntimeError) as exc:
            self._status("scene_refused", f"cannot load scene {msg.data!r}: {exc}", level="warn")

    def _on_report(self, msg: String) -> None:
        """Privileged ``sim_report`` for the person (``vla demo``), never for the graph.

        Request JSON: ``{"place": {"object", "relation", "references"}}`` (optional). Answers each
        object's box when the scene was loaded and, with ``place``, the simulator's own placement
        check (``vla_sim.checks.place_report``: at rest inside the named region, as ``vla eval``).
        """
        try:
            req = json.loads(msg.data or "{}")
            place = req.get("place") if isinstance(req, dict) else None
            report = None
            if place:
                report = place_report(self.world, str(place["object"]), str(place["relation"]),
                                      [str(r) for r in place.get("references", [])], self._start_boxes)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self._status("report_refused", f"cannot answer /sim/report {msg.data!r}: {exc}", level="warn")
            return
        boxes = {n: [[float(v) for v in lo], [float(v) for v in hi]]
                 for n, (lo, hi) in self._start_boxes.items()}
        self._status("sim_report", "privileged scene report (for the person, not the robot)",
                     start_boxes=boxes, place=report)

    # ------------------------------------------------------------------ commands
    def _on_trajectory(self, msg: JointTrajectory) -> None:
        robot = self.world.robot
        if not msg.points:
            robot.stop()
            self._status("motion_stopped", "empty trajectory: holding the current position")
            return
        try:
            t, q = trajectory_to_arrays(msg, robot.joint_names)
            robot.start_trajectory(t, q, self.world.steps)
        except MotionRefused as exc:
            self._status("motion_refused", f"trajectory refused: {exc}", level="warn", reason=str(exc))
            return
        self._status(
            "motion_started",
            f"tracking {len(t)} points over {t[-1]:.2f} s",
            points=len(t),
            duration_s=float(t[-1]),
        )

    def _on_gripper(self, msg: Float64) -> None:
        v = float(msg.data)
        if not math.isfinite(v) or v < 0.0 or v > 1.0:
            self._status(
                "motion_refused", f"gripper command {v} outside [0, 1] (1 open, 0 closed)", level="warn"
            )
            return
        robot = self.world.robot
        if v <= 0.01:
            robot.command_gripper(open=False)
        else:
            robot.command_gripper(open=True, width_m=v * 2 * robot.finger_max)

    # ------------------------------------------------------------------ simulation tick
    def _tick(self) -> None:
        w = self.world
        w.step(self.steps_per_tick)
        stamp = (self._step_base + w.steps) / PHYSICS_HZ
        clock = Clock()
        clock.clock = s_to_time(stamp)
        self.clock_pub.publish(clock)
        if w.steps >= self._next_js_step:
            self._publish_joint_states(stamp)
            self._next_js_step = w.steps + max(1, int(round(PHYSICS_HZ / self.joint_state_rate_hz)))
        self._check_lifts()
        if self.enable_cameras and w.steps >= self._next_cam_step:
            self._publish_cameras(stamp)
            self._next_cam_step = w.steps + max(1, int(round(PHYSICS_HZ / self.camera_rate_hz)))

    def _publish_joint_states(self, stamp: float) -> None:
        r = self.world.robot
        names = r.joint_names + list(r.model.gripper["joints"])
        pos = np.concatenate([r.joint_positions(), r.finger_positions()])
        vel = np.concatenate([r.joint_velocities(), np.zeros(len(r.finger_idx))])
        msg = JointState()
        msg.header.stamp = s_to_time(stamp)
        msg.name = names
        msg.position = pos.tolist()
        msg.velocity = vel.tolist()
        self.joint_pub.publish(msg)

    def _publish_cameras(self, stamp: float) -> None:
        for f in self.world.render(self.noise, seg=False):
            rgb_pub, depth_pub, info_pub = self.cam_pubs[f.name]
            frame_id = f"{f.name}_color_optical_frame"
            rgb_pub.publish(numpy_to_image(f.rgb, "rgb8", frame_id, stamp))
            depth_pub.publish(metres_to_depth_image(f.depth, "32FC1", frame_id, stamp))
            info_pub.publish(intrinsics_to_camera_info(f.intrinsics, frame_id, stamp))

    def _check_lifts(self) -> None:
        """Privileged event: an object held and raised >= 10 cm above where it rested."""
        w = self.world
        for name, body in w.object_ids.items():
            z = float(w.object_pose(name)[2, 3])
            held = w.robot.holds(body)
            if not held:
                self._lift_ref_z[name] = z
                self._lifted.discard(name)
                continue
            ref = self._lift_ref_z.setdefault(name, z)
            if name not in self._lifted and z - ref >= LIFT_SUCCESS_M:
                self._lifted.add(name)
                spec = objlib.get(name)
                self._status(
                    "object_lifted",
                    f"{name} lifted {z - ref:.2f} m (privileged, for scoring)",
                    object=name,
                    category=spec.category,
                    lift_m=z - ref,
                    sim_time_s=(self._step_base + w.steps) / PHYSICS_HZ,
                )

    def _status(self, event: str, detail: str, level: str = "info", **fields) -> None:
        self._status_out(event, level, detail, **fields)

    def destroy_node(self) -> None:
        """Close the PyBullet client with the node."""
        self.world.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """Run the sim bridge until shutdown."""
    spin_node(SimBridgeNode, args)


if __name__ == "__main__":
    main()
