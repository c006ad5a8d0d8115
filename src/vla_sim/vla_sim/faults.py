# SPDX-License-Identifier: Apache-2.0
"""``vla faults``: drive the real multi-process sim graph through fault and bad-input scenarios.

Tooling (it launches the simulator), not runtime. One ``sim`` graph (sim bridge, perception,
policy, executor as separate processes, DDS on loopback, ``respawn`` 3, exits announced on
``/vla/status``) is shared by every scenario that needs it; this process adds one rclpy node that

* sends instructions, poses, clouds and joint states like any other participant;
* relays the simulated cameras to the perception node (which listens on ``/faults/cameras/...``)
  and injects camera faults on the way: a silent camera, NaN or zero depth, stamps 2 s old, a
  colour image at another resolution than its camera_info;
* checks every ``JointTrajectory`` the executor commands against the robot's joint position,
  velocity and acceleration limits and its TCP safety box, and watches ``/joint_states`` for
  whether the arm moved;
* kills nodes (SIGKILL) mid-task and waits for the launcher to restart them.

File scenarios (a corrupt or pickled policy checkpoint, a truncated or pickled CLIP checkpoint,
parameter YAML with unknown keys, wrong types or broken syntax, a rig calibration without a
camera or with a non-rigid pose) start the one node concerned on its own and expect it to refuse
to start with a clear message.

Each scenario gives one row: its final status (the event that ended it), seconds to it (wall and
simulated), whether the arm moved, commands outside limits, which nodes are alive, and whether
the graph recovered (the next task, or the node, works). ``results/faults.md`` and
``results/faults.json`` hold the table. ``--soak N`` instead sends N consecutive tasks (mixed
valid and invalid) to one graph and records answers and each node's memory
(``results/soak.json``, ``results/soak.md``).

Usage::

    vla faults                       # every scenario (about 10-20 min on 2 busy cores)
    vla faults --set quick           # the reduced set used by `make test` (no full task)
    vla faults --only kill_perception,empty_instruction
    vla faults --soak 200 --valid-every 10
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vla_common.graph import graph
from vla_common.ros_env import apply_localhost_env

FINAL_TASK = ("task_succeeded", "task_failed", "instruction_refused", "instruction_not_understood")
FINAL_MOTION = ("motion_done", "motion_refused")
NODES = ("sim_bridge", "perception", "policy", "executor")
CAMERAS = ("top", "left", "right")
VALID = "pick up the red mug"  # the scene below (grasp, seen, seed 0) has a red mug
SCENE = {"task": "grasp", "split": "seen", "seed": 0}
TOL = 1e-6
# scenarios that need the whole graph (a real cloud, a moving arm); the others run without perception
NEEDS_PERCEPTION = ("cloud_nan", "camera", "kill", "second", "cancel", "pose_non")


@dataclass
class Row:
    """One scenario's result (one row of the table)."""

    scenario: str
    group: str
    expect: str
    final_status: str = "none"
    detail: str = ""
    wall_s: float | None = None
    sim_s: float | None = None
    arm_moved: bool = False
    commands_outside_limits: int = 0
    nodes_alive: list[str] = field(default_factory=list)
    recovered: bool | None = None
    ok: bool = False
    notes: str = ""


# --------------------------------------------------------------------------------------- the graph
class Harness:
    """The sim graph under test plus this process's rclpy node (see the module docstring)."""

    def __init__(self, robot: str = "ur5", log: Path | None = None, nodes: tuple[str, ...] = NODES) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import CameraInfo, Image, JointState
        from std_msgs.msg import String
        from trajectory_msgs.msg import JointTrajectory

        from vla_common.launcher import Launcher
        from vla_common.qos import EVENT_QOS, RELIABLE_QOS, SENSOR_QOS
        from vla_executor.robot_model import RobotModel

        self._saved_env = dict(os.environ)  # restored by close(): callers (tests) keep their domain
        self.env = apply_localhost_env()
        self.model = RobotModel.load(robot)
        specs = [n for n in graph("sim", robot=robot) if n.name in nodes]
        for n in specs:
            if n.name == "perception":
                n.parameters["camera_prefix"] = "/faults/cameras"
            if n.name == "sim_bridge":
                n.parameters.update(SCENE)
                if "perception" not in nodes:
                    n.parameters["enable_cameras"] = False
        self._log = open(log or os.devnull, "w")  # noqa: SIM115 (closed in close())
        self.launcher = Launcher(specs, out=self._log, respawn=3, respawn_delay_s=1.0, announce=True)
        self.launcher.line_callbacks.append(self._on_line)
        self.lock = threading.Lock()
        self.events: list[tuple[float, dict[str, Any]]] = []  # (wall monotonic, event)
        self.bad_commands: list[str] = []
        self.n_commands = 0
        self.q_last: np.ndarray | None = None
        self.moved_since: float = 0.0
        self.sim_now = 0.0
        self.clock_count = 0
        self.camera_fault: dict[str, Any] = {}
        self.start_lines: dict[str, list[str]] = {}

        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx)
        self.node = rclpy.create_node("vla_faults", context=self.ctx)
        nd = self.node
        nd.create_subscription(String, "/vla/status", self._on_status, EVENT_QOS)
        nd.create_subscription(
            JointTrajectory, "/arm_controller/joint_trajectory", self._on_traj, RELIABLE_QOS
        )
        nd.create_subscription(JointState, "/joint_states", self._on_joints, SENSOR_QOS)
        nd.create_subscription(Clock, "/clock", self._on_clock, SENSOR_QOS)
        self.pub_instruction = nd.create_publisher(String, "/vla/instruction", EVENT_QOS)
        from geometry_msgs.msg import PoseStamped
        from sensor_msgs.msg import PointCloud2
        from std_msgs.msg import Bool

        self.pub_grasp = nd.create_publisher(PoseStamped, "/vla/grasp_pose", RELIABLE_QOS)
        self.pub_cloud = nd.create_publisher(PointCloud2, "/vla/feature_cloud", SENSOR_QOS)
        self.pub_joints = nd.create_publisher(JointState, "/joint_states", SENSOR_QOS)
        self.pub_estop = nd.create_publisher(Bool, "/vla/estop", RELIABLE_QOS)
        self.pub_scene = nd.create_publisher(String, "/sim/load_scene", RELIABLE_QOS)
        self.relays: dict[str, Any] = {}
        for cam in CAMERAS:
            for kind, typ in (
                ("color/image_raw", Image),
                ("aligned_depth_to_color/image_raw", Image),
                ("color/camera_info", CameraInfo),
            ):
                out = nd.create_publisher(typ, f"/faults/cameras/{cam}/{kind}", SENSOR_QOS)
                nd.create_subscription(
                    typ,
                    f"/cameras/{cam}/{kind}",
                    lambda m, c=cam, k=kind, o=out: self._relay(c, k, m, o),
                    SENSOR_QOS,
                )
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(nd)
        self._spin = threading.Thread(target=self._spin_loop, daemon=True)
        self._spin.start()
        self.launcher.start()

    # ------------------------------------------------------------------ plumbing
    def _spin_loop(self) -> None:
        while self.ctx.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: BLE001 - shutting down
                if not self.ctx.ok():
                    return

    def _on_line(self, name: str, line: str) -> None:
        with self.lock:
            self.start_lines.setdefault(name, []).append(line)
            del self.start_lines[name][:-50]

    def _on_status(self, msg: Any) -> None:
        try:
            ev = json.loads(msg.data)
        except json.JSONDecodeError:
            return
        if isinstance(ev, dict):
            ev["_sim"] = self.sim_now
            with self.lock:
                self.events.append((time.monotonic(), ev))

    def _on_clock(self, msg: Any) -> None:
        self.sim_now = msg.clock.sec + 1e-9 * msg.clock.nanosec
        self.clock_count += 1

    def _on_joints(self, msg: Any) -> None:
        names = list(msg.name)
        if not all(n in names for n in self.model.joint_names):
            return
        q = np.array([msg.position[names.index(n)] for n in self.model.joint_names])
        if self.q_last is not None and np.abs(q - self.q_last).max() > 0.01:
            self.moved_since = time.monotonic()
            self.q_last = q
        elif self.q_last is None:
            self.q_last = q

    def _on_traj(self, msg: Any) -> None:
        """Check every commanded point against the robot's limits and safety box."""
        m = self.model
        self.n_commands += 1
        names = list(msg.joint_names)
        if not msg.points:
            return  # a stop
        if sorted(names) != sorted(m.joint_names):
            self.bad_commands.append(f"trajectory joints {names}")
            return
        idx = [names.index(n) for n in m.joint_names]
        lo, hi = np.asarray(m.lower), np.asarray(m.upper)
        vmax, amax = np.asarray(m.vel_limits), np.asarray(m.acc_limits)
        box = m.config.get("safety_box")
        for k, p in enumerate(msg.points):
            q = np.asarray(p.positions, float)[idx]
            if not np.isfinite(q).all() or (q < lo - TOL).any() or (q > hi + TOL).any():
                self.bad_commands.append(f"point {k}: position {q.round(3).tolist()} outside joint limits")
            if len(p.velocities) == len(names):
                v = np.asarray(p.velocities, float)[idx]
                if (np.abs(v) > vmax * 1.001 + TOL).any():
                    self.bad_commands.append(f"point {k}: velocity {v.round(3).tolist()} over limits")
            if len(p.accelerations) == len(names):
                a = np.asarray(p.accelerations, float)[idx]
                if (np.abs(a) > amax * 1.001 + TOL).any():
                    self.bad_commands.append(f"point {k}: acceleration {a.round(3).tolist()} over limits")
            if box is not None and k % 5 == 0:
                xyz = m.fk(q)[:3, 3]
                if (xyz < np.asarray(box["min"]) - 0.01).any() or (xyz > np.asarray(box["max"]) + 0.01).any():
                    self.bad_commands.append(f"point {k}: TCP {xyz.round(3).tolist()} outside the safety box")

    def _relay(self, cam: str, kind: str, msg: Any, out: Any) -> None:
        """Forward one camera message to the perception node, applying :attr:`camera_fault`."""
        f = self.camera_fault
        if cam in f.get("silent", ()):
            return
        if cam in f.get("stale", ()):
            t = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec - 2.0
            if t > 0:
                msg.header.stamp.sec, msg.header.stamp.nanosec = int(t), int((t - int(t)) * 1e9)
        if kind.startswith("aligned_depth") and cam in f.get("depth", {}):
            d = np.frombuffer(bytes(msg.data), dtype=np.float32).copy()
            d[:] = np.nan if f["depth"][cam] == "nan" else 0.0
            msg.data = d.tobytes()
        if kind == "color/image_raw" and cam in f.get("resize", ()):
            img = np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(msg.height, msg.width, 3)[::2, ::2]
            msg.height, msg.width, msg.step = img.shape[0], img.shape[1], img.shape[1] * 3
            msg.data = np.ascontiguousarray(img).tobytes()
        out.publish(msg)

    # ------------------------------------------------------------------ queries
    def mark(self) -> int:
        """Index of the next event (scenarios look at events after their mark)."""
        with self.lock:
            return len(self.events)

    def since(self, mark: int) -> list[dict[str, Any]]:
        """Events after ``mark``."""
        with self.lock:
            return [e for _, e in self.events[mark:]]

    def wait_event(
        self, mark: int, pred: Callable[[dict[str, Any]], bool], timeout_s: float
    ) -> dict[str, Any] | None:
        """The first event after ``mark`` matching ``pred``, waiting up to ``timeout_s`` (wall)."""
        end = time.monotonic() + timeout_s
        seen = mark
        while True:
            with self.lock:
                new = self.events[seen:]
                seen = len(self.events)
            for _, ev in new:
                if pred(ev):
                    return ev
            if time.monotonic() > end:
                return None
            self.launcher.supervise()
            time.sleep(0.05)

    def alive(self) -> list[str]:
        """Names of node processes running now."""
        self.launcher.supervise()
        return [n for n, p in self.launcher.procs.items() if p.poll() is None]

    def reset_scene(self, timeout_s: float = 30.0) -> bool:
        """Reload the sim bridge's scene (:data:`SCENE`; the arm goes home); True once it says so."""
        from std_msgs.msg import String

        m = self.mark()
        self.pub_scene.publish(String(data=json.dumps(SCENE)))
        ok = self.wait_event(
            m, lambda e: e.get("node") == "sim_bridge" and e.get("event") == "scene_loaded", timeout_s
        )
        return ok is not None

    def say(self, text: str) -> None:
        """Publish one instruction."""
        from std_msgs.msg import String

        self.pub_instruction.publish(String(data=text))

    def wait_ready(self, timeout_s: float = 300.0) -> bool:
        """Until every node this harness runs is up.

        The policy answers a probe instruction; perception has published a cloud.
        """
        end = time.monotonic() + timeout_s
        names = set(self.launcher.procs)
        if "policy" in names and not self.probe_policy(end - time.monotonic()):
            return False
        if (
            "perception" in names
            and self.wait_event(
                0, lambda e: e.get("event") == "cloud_published", max(1.0, end - time.monotonic())
            )
            is None
        ):
            return False
        return True

    def probe_policy(self, timeout_s: float) -> bool:
        """Send a whitespace instruction until the policy refuses it (it is up and listening)."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            m = self.mark()
            self.say("   ")
            if (
                self.wait_event(
                    m, lambda e: e.get("node") == "policy" and e.get("event") == "instruction_refused", 2.0
                )
                is not None
            ):
                return True
        return False

    def close(self) -> None:
        """Stop the graph and this node."""
        try:
            self.ctx.try_shutdown()
        except Exception:  # noqa: BLE001
            pass
        self._spin.join(timeout=2.0)
        self.launcher.stop()
        self._log.close()
        os.environ.clear()
        os.environ.update(self._saved_env)


# --------------------------------------------------------------------------------------- scenarios
def _finish(
    h: Harness, row: Row, mark: int, t0: float, sim0: float, ev: dict[str, Any] | None, bad0: int
) -> Row:
    if ev is not None:
        row.final_status = f"{ev.get('node')}:{ev.get('event')}"
        row.detail = str(ev.get("detail", ""))[:300]
        row.wall_s = round(time.monotonic() - t0, 2)
        row.sim_s = round(max(0.0, float(ev.get("_sim", h.sim_now)) - sim0), 2)
    else:
        row.final_status = "none"
        row.detail = "no final status"
    row.arm_moved = h.moved_since > t0
    row.commands_outside_limits = len(h.bad_commands) - bad0
    row.nodes_alive = h.alive()
    return row


def _task_final(sent: str) -> Callable[[dict[str, Any]], bool]:
    """The final event answering ``sent`` (not the busy refusal of another instruction)."""

    def pred(e: dict[str, Any]) -> bool:
        if e.get("event") not in FINAL_TASK:
            return False
        return not (
            e.get("event") == "instruction_refused"
            and "busy" in str(e.get("detail", ""))
            and e.get("instruction") != sent
        )

    return pred


def run_instruction(
    h: Harness, row: Row, text: str, timeout_s: float = 240.0, during: Callable[[int], None] | None = None
) -> Row:
    """Send ``text``; the row ends with the task's (or refusal's) final event."""
    mark, t0, sim0, bad0 = h.mark(), time.monotonic(), h.sim_now, len(h.bad_commands)
    h.say(text)
    if during is not None:
        during(mark)
    ev = h.wait_event(mark, _task_final(text.strip()), timeout_s)
    return _finish(h, row, mark, t0, sim0, ev, bad0)


def s_instruction(text: str, expect: str, name: str) -> Callable[[Harness], Row]:
    """Send ``text``; expect a final event ending in ``expect``."""

    def run(h: Harness) -> Row:
        row = run_instruction(h, Row(name, "instructions", expect), text)
        row.ok = row.final_status.endswith(expect) and row.commands_outside_limits == 0
        return row

    return run


def s_burst(h: Harness) -> Row:
    """200 instructions in one second: each gets exactly one answer."""
    row = Row("burst_200_in_1s", "instructions", "200 answers")
    mark, t0, sim0, bad0 = h.mark(), time.monotonic(), h.sim_now, len(h.bad_commands)
    texts = [f"pick up the purple elephant number {i}" if i % 2 else f"   {i}   " for i in range(200)]
    for i, t in enumerate(texts):
        h.say(t)
        time.sleep(max(0.0, t0 + (i + 1) / 200.0 - time.monotonic()))
    want = {t.strip() for t in texts}
    end = time.monotonic() + 120
    answered: set[str] = set()
    while time.monotonic() < end and len(answered) < len(want):
        answered = {
            e.get("instruction", "")
            for e in h.since(mark)
            if e.get("node") == "policy"
            and e.get("event") in ("instruction_refused", "instruction_not_understood")
        }
        answered |= {
            e.get("instruction", "") for e in h.since(mark) if e.get("event") == "instruction_refused"
        }
        answered &= want
        time.sleep(0.2)
    last = h.since(mark)
    _finish(h, row, mark, t0, sim0, last[-1] if last else None, bad0)
    row.final_status = f"{len(answered)}/200 answered"
    row.detail = f"{len(want - answered)} unanswered"
    row.ok = len(answered) == 200 and row.commands_outside_limits == 0
    return row


def s_second_while_busy(h: Harness) -> Row:
    """A second instruction during a task is refused as busy; the first still ends."""
    row = Row("second_task_while_busy", "instructions", "instruction_refused (busy), first task ends")
    second = "pick up the blue cube"
    got: dict[str, Any] = {}

    def during(mark: int) -> None:
        if h.wait_event(mark, lambda e: e.get("event") == "instruction_received", 60) is None:
            return
        m2 = h.mark()
        h.say(second)
        got["ev"] = h.wait_event(
            m2, lambda e: e.get("event") == "instruction_refused" and e.get("instruction") == second, 20
        )

    run_instruction(h, row, VALID, during=during)
    busy = got.get("ev")
    row.notes = f"second: {busy.get('detail', '')[:120]}" if busy else "second instruction not refused"
    row.ok = (
        busy is not None and "busy" in busy.get("detail", "") and row.final_status.startswith("policy:task_")
    )
    row.recovered = row.final_status == "policy:task_succeeded"
    return row


def s_estop_while_busy(h: Harness) -> Row:
    """E-stop (the graph's cancel) while the arm moves: the task ends, the arm stops, release works."""
    row = Row("cancel_estop_while_busy", "instructions", "task_failed after estop")
    from std_msgs.msg import Bool

    def during(mark: int) -> None:
        if h.wait_event(mark, lambda e: e.get("event") == "motion_started", 120) is None:
            return
        time.sleep(0.5)
        h.pub_estop.publish(Bool(data=True))

    run_instruction(h, row, VALID, during=during)
    h.pub_estop.publish(Bool(data=False))
    time.sleep(1.0)
    row.ok = row.final_status == "policy:task_failed" and row.commands_outside_limits == 0
    return row


def _pose_msg(xyz: tuple[float, float, float], quat: tuple[float, float, float, float], frame: str) -> Any:
    from geometry_msgs.msg import PoseStamped

    msg = PoseStamped()
    msg.header.frame_id = frame
    p, o = msg.pose.position, msg.pose.orientation
    p.x, p.y, p.z = (float(v) for v in xyz)
    o.x, o.y, o.z, o.w = (float(v) for v in quat)
    return msg


def s_pose(
    name: str, xyz: tuple, quat: tuple, frame: str = "world", expect: str = "motion_refused"
) -> Callable[[Harness], Row]:
    """A grasp pose straight to the executor; expect ``executor:<expect>``."""

    def run(h: Harness) -> Row:
        row = Row(name, "messages", f"executor:{expect}")
        mark, t0, sim0, bad0 = h.mark(), time.monotonic(), h.sim_now, len(h.bad_commands)
        h.pub_grasp.publish(_pose_msg(xyz, quat, frame))
        ev = h.wait_event(mark, lambda e: e.get("node") == "executor" and e.get("event") in FINAL_MOTION, 120)
        _finish(h, row, mark, t0, sim0, ev, bad0)
        row.ok = row.final_status.startswith(f"executor:{expect}") and row.commands_outside_limits == 0
        return row

    return run


def _cloud(kind: str, stamp_s: float) -> Any:
    """A malformed PointCloud2 (``kind``: point_step, nan_xyz, feature_width)."""
    from vla_common.conversions import numpy_to_pointcloud2

    rng = np.random.default_rng(0)
    n, d = 500, 7 if kind == "feature_width" else 32
    xyz = rng.uniform([0.3, -0.2, 0.0], [0.6, 0.2, 0.1], (n, 3)).astype(np.float32)
    if kind == "nan_xyz":
        xyz[:] = np.nan
    msg = numpy_to_pointcloud2(xyz, None, rng.standard_normal((n, d)).astype(np.float32), "world", stamp_s)
    if kind == "point_step":
        msg.point_step = 8  # shorter than its x y z + features fields
        msg.row_step = msg.point_step * msg.width
    return msg


def s_cloud(kind: str) -> Callable[[Harness], Row]:
    """A malformed cloud arrives while the policy waits for one: the task ends, no node dies."""

    def run(h: Harness) -> Row:
        row = Row(f"cloud_{kind}", "messages", "policy:task_failed, all nodes alive")

        def during(mark: int) -> None:
            if h.wait_event(mark, lambda e: e.get("event") == "instruction_received", 60) is None:
                return
            for _ in range(10):  # newer than the policy's request; repeated in case one is lost
                h.pub_cloud.publish(_cloud(kind, h.sim_now + 0.3))
                time.sleep(0.05)

        run_instruction(h, row, VALID, during=during)
        row.ok = (
            row.final_status.startswith("policy:task_")
            and set(row.nodes_alive) == set(h.launcher.procs)
            and row.commands_outside_limits == 0
        )
        return row

    return run


def s_wrong_joint_names(h: Harness) -> Row:
    """JointStates with names the robot does not have: ignored (or reported), nothing moves, no crash."""
    from sensor_msgs.msg import JointState

    row = Row("joint_state_wrong_names", "messages", "ignored, executor alive, next pose handled")
    mark, t0, sim0, bad0 = h.mark(), time.monotonic(), h.sim_now, len(h.bad_commands)
    for _ in range(20):
        h.pub_joints.publish(JointState(name=["a", "b"], position=[1.0, 2.0]))
        h.pub_joints.publish(JointState(name=["a", "b"], position=[1.0]))  # and a length mismatch
        time.sleep(0.05)
    h.pub_grasp.publish(_pose_msg((0.5, 0.0, -0.2), (0, 0, 0, 1), "world"))  # a refusal proves it is alive
    ev = h.wait_event(mark, lambda e: e.get("node") == "executor" and e.get("event") in FINAL_MOTION, 30)
    _finish(h, row, mark, t0, sim0, ev, bad0)
    bad = [e for e in h.since(mark) if e.get("event") == "bad_message"]
    row.notes = f"{len(bad)} bad_message events"
    row.ok = "executor" in row.nodes_alive and ev is not None and not row.arm_moved
    return row


def s_camera(name: str, fault: dict[str, Any], expect: str = "policy:task_") -> Callable[[Harness], Row]:
    """Run the valid task with a camera fault in the relay; it must end with a final status."""

    def run(h: Harness) -> Row:
        row = Row(name, "cameras", "task ends (succeeded or failed with a reason)")
        h.camera_fault = fault
        time.sleep(1.0)
        try:
            run_instruction(h, row, VALID)
        finally:
            h.camera_fault = {}
        drops = [e for e in h.since(0)[-400:] if e.get("event") == "view_dropped"]
        row.notes = f"view_dropped: {drops[-1].get('detail', '')[:100]}" if drops else ""
        row.ok = (
            row.final_status.startswith(expect)
            and row.commands_outside_limits == 0
            and set(row.nodes_alive) == set(h.launcher.procs)
        )
        return row

    return run


def _probe_executor(h: Harness, timeout_s: float) -> bool:
    """Send an out-of-workspace pose until the executor refuses it (it is up and subscribed).

    One-shot start-up events (``executor_ready``) can be published before this process has
    discovered the new participant, so a probe is the reliable sign.
    """
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        m = h.mark()
        h.pub_grasp.publish(_pose_msg((0.5, 0.0, -0.3), (1, 0, 0, 0), "world"))
        if h.wait_event(m, lambda e: e.get("node") == "executor" and e.get("event") == "motion_refused", 2.0):
            return True
    return False


def _ready_after_restart(h: Harness, name: str, mark: int, timeout_s: float = 240.0) -> bool:
    """The restarted node is back: it answers a probe (policy, executor), or publishes again."""
    del mark
    if name == "policy":
        return h.probe_policy(timeout_s)
    if name == "executor":
        return _probe_executor(h, timeout_s)
    if name == "sim_bridge":  # /clock again, and the executor has joint states from the new world
        n0, end = h.clock_count, time.monotonic() + timeout_s
        while h.clock_count < n0 + 10 and time.monotonic() < end:
            h.alive()  # supervises: the launcher restarts the bridge from here
            time.sleep(0.1)
        if h.clock_count < n0 + 10 or not _probe_executor(h, max(1.0, end - time.monotonic())):
            return False
    # perception: a cloud made after now (for the bridge: from the new world's frames)
    return h.wait_event(h.mark(), lambda e: e.get("event") == "cloud_published", timeout_s) is not None


def s_kill(name: str, after: str = "instruction_received", delay_s: float = 1.0) -> Callable[[Harness], Row]:
    """SIGKILL ``name`` mid-task: the task fails clearly, the node is restarted, the next task works."""

    def run(h: Harness) -> Row:
        row = Row(f"kill_{name}_mid_task", "nodes", "task_failed; node restarted; next task ends")
        killed: dict[str, Any] = {}

        def during(mark: int) -> None:
            if h.wait_event(mark, lambda e: e.get("event") == after, 120) is None:
                return
            time.sleep(delay_s)
            proc = h.launcher.procs[name]
            killed["pid"], killed["mark"] = proc.pid, h.mark()
            killed["t"], killed["sim"] = time.monotonic(), h.sim_now
            os.kill(proc.pid, signal.SIGKILL)

        run_instruction(h, row, VALID, timeout_s=120, during=during)
        if "pid" not in killed:
            row.notes = f"the task never reached {after}"
            return row
        if row.final_status != "none":  # seconds from the kill (not from the instruction) to the end
            row.wall_s = round(time.monotonic() - killed["t"], 2)
            row.sim_s = None if name == "sim_bridge" else round(max(0.0, h.sim_now - killed["sim"]), 2)
        back = _ready_after_restart(h, name, killed["mark"])
        restarted = h.launcher.procs[name].pid != killed["pid"] and h.launcher.procs[name].poll() is None
        nxt = run_instruction(h, Row("next", "nodes", ""), VALID) if back else None
        row.recovered = bool(back and nxt is not None and nxt.final_status == "policy:task_succeeded")
        row.nodes_alive = h.alive()
        row.notes = (
            f"restarted={restarted}; next task: {nxt.final_status if nxt else 'not sent'}"
            f"{' (' + nxt.detail[:80] + ')' if nxt and nxt.final_status != 'policy:task_succeeded' else ''}"
        )
        row.commands_outside_limits += nxt.commands_outside_limits if nxt else 0
        row.ok = (
            row.final_status.endswith("task_failed")
            and restarted
            and back
            and nxt is not None
            and nxt.final_status.startswith("policy:task_")
            and row.commands_outside_limits == 0
        )
        return row

    return run


# --------------------------------------------------------------------------------------- files
def _start_alone(
    module: str, params: list[str], params_file: Path | None = None, timeout_s: float = 120.0
) -> tuple[int | None, str, float]:
    """Start one node process on its own; (exit code or None if still running, output, seconds)."""
    from vla_common.ros_env import localhost_env

    cmd = [sys.executable, "-m", module, "--ros-args"]
    if params_file is not None:
        cmd += ["--params-file", str(params_file)]
    for p in params:
        cmd += ["-p", p]
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        env=localhost_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    try:
        out, _ = proc.communicate(timeout=timeout_s)
        return proc.returncode, out, time.monotonic() - t0
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        return None, out, time.monotonic() - t0


class _Payload:
    """A pickle that would create a file when unpickled (weights_only must refuse to run it)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def _policy_checkpoint(tmp: Path, how: str) -> Path:
    from vla_policy.policy import CHECKPOINT_DIR

    d = tmp / f"policy_{how}"
    shutil.copytree(CHECKPOINT_DIR / "SR", d)
    w = d / "model.safetensors"
    if how == "corrupt":
        w.write_bytes(os.urandom(4096))
    elif how == "pickled":
        import torch

        torch.save({"weights": _Payload(tmp / "PWNED_policy")}, w)
    return d


def _clip_dir(tmp: Path, how: str) -> Path:
    from vla_perception.clip_features import COMPACT_DIR

    d = tmp / f"clip_{how}"
    shutil.copytree(COMPACT_DIR, d)
    w = d / "model.safetensors"
    if how == "truncated":
        data = w.read_bytes()
        w.write_bytes(data[: len(data) // 2])
    elif how == "pickled":
        import torch

        w.unlink()
        torch.save({"visual.proj": _Payload(tmp / "PWNED_clip")}, d / "open_clip_pytorch_model.bin")
    return d


def s_file(
    name: str,
    module: str,
    make: Callable[[Path], tuple[list[str], Path | None]],
    expect_words: tuple[str, ...],
) -> Callable[[Harness | None], Row]:
    """Start one node with a bad file: it must exit non-zero with a clear message, no payload run."""

    def run(h: Harness | None) -> Row:
        del h
        row = Row(name, "files", "start-up refused with a clear error")
        with tempfile.TemporaryDirectory() as tmp:
            params, pfile = make(Path(tmp))
            rc, out, secs = _start_alone(module, params, pfile)
            pwned = any(Path(tmp).glob("PWNED*"))
        lines = [ln for ln in out.splitlines() if "cannot start" in ln] or out.strip().splitlines()[-1:]
        row.final_status = "still running" if rc is None else f"exit {rc}"
        row.detail = (lines[0] if lines else "")[:300]
        row.wall_s = round(secs, 1)
        row.notes = "pickled payload RAN" if pwned else ""
        row.ok = (
            rc not in (None, 0)
            and any(w.lower() in out.lower() for w in expect_words)
            and not pwned
            and any("cannot start" in ln for ln in out.splitlines())
        )
        return row

    return run


def _yaml(tmp: Path, node: str, params: dict[str, Any], raw: str | None = None) -> Path:
    import yaml

    p = tmp / f"{node}.yaml"
    p.write_text(raw if raw is not None else yaml.safe_dump({node: {"ros__parameters": params}}))
    return p


def _rig(tmp: Path, how: str) -> Path:
    import yaml

    from vla_common.graph import config_dir

    rig = yaml.safe_load((config_dir() / "rig_sim.yaml").read_text())
    if how == "missing":
        del rig["cameras"]["left"]
    else:  # a scaled, non-rigid T_world_cam
        rig["cameras"]["left"]["T_world_cam"] = [
            [2.0 * v for v in row[:3]] + row[3:] for row in rig["cameras"]["left"]["T_world_cam"][:3]
        ] + [[0.0, 0.0, 0.0, 1.0]]
        rig["cameras"]["left"].pop("quat_xyzw", None)
    p = tmp / f"rig_{how}.yaml"
    p.write_text(yaml.safe_dump(rig))
    return p


POLICY, PERCEPTION = "vla_policy.policy_node", "vla_perception.perception_node"


def file_scenarios() -> list[tuple[str, Callable[[Any], Row]]]:
    """The start-up scenarios (no graph needed)."""
    return [
        (
            "policy_checkpoint_corrupt",
            s_file(
                "policy_checkpoint_corrupt",
                POLICY,
                lambda t: ([f"checkpoint:={_policy_checkpoint(t, 'corrupt')}"], None),
                ("checkpoint",),
            ),
        ),
        (
            "policy_checkpoint_pickled",
            s_file(
                "policy_checkpoint_pickled",
                POLICY,
                lambda t: ([f"checkpoint:={_policy_checkpoint(t, 'pickled')}"], None),
                ("checkpoint",),
            ),
        ),
        (
            "clip_checkpoint_truncated",
            s_file(
                "clip_checkpoint_truncated",
                POLICY,
                lambda t: ([f"clip_model:={_clip_dir(t, 'truncated')}"], None),
                ("clip",),
            ),
        ),
        (
            "clip_checkpoint_pickled",
            s_file(
                "clip_checkpoint_pickled",
                POLICY,
                lambda t: ([f"clip_model:={_clip_dir(t, 'pickled')}"], None),
                ("weights", "clip"),
            ),
        ),
        (
            "config_unknown_key",
            s_file(
                "config_unknown_key",
                POLICY,
                lambda t: ([], _yaml(t, "policy", {"checkpoint": "SR", "max_atempts": 3})),
                ("max_atempts",),
            ),
        ),
        (
            "config_wrong_type",
            s_file(
                "config_wrong_type",
                POLICY,
                lambda t: ([], _yaml(t, "policy", {"max_attempts": "three"})),
                ("max_attempts",),
            ),
        ),
        (
            "config_bad_yaml",
            s_file(
                "config_bad_yaml",
                POLICY,
                lambda t: ([], _yaml(t, "policy", {}, raw="policy:\n  ros__parameters: [\n")),
                ("yaml", "parse", "param"),
            ),
        ),
        (
            "rig_missing_camera",
            s_file(
                "rig_missing_camera",
                PERCEPTION,
                lambda t: ([f"rig_calibration:={_rig(t, 'missing')}"], None),
                ("left",),
            ),
        ),
        (
            "rig_wrong_extrinsics",
            s_file(
                "rig_wrong_extrinsics",
                PERCEPTION,
                lambda t: ([f"rig_calibration:={_rig(t, 'scaled')}"], None),
                ("left",),
            ),
        ),
    ]


def graph_scenarios(full: bool) -> list[tuple[str, Callable[[Harness], Row]]]:
    """The scenarios run against the shared graph (``full``: also those that need a whole task)."""
    quick: list[tuple[str, Callable[[Harness], Row]]] = [
        ("empty_instruction", s_instruction("", "instruction_refused", "empty_instruction")),
        ("whitespace_instruction", s_instruction(" \t\n ", "instruction_refused", "whitespace_instruction")),
        (
            "oversized_10kB",
            s_instruction("pick up the red mug " * 500, "instruction_refused", "oversized_10kB"),
        ),
        (
            "non_utf8_bytes",
            s_instruction(
                b"pick up the \xff\xfe mug".decode("latin-1"), "instruction_not_understood", "non_utf8_bytes"
            ),
        ),
        (
            "control_characters",
            s_instruction(
                "pick up the red\x07\x1b[2J\u202e mug", "instruction_refused", "control_characters"
            ),
        ),
        (
            "other_language",
            s_instruction("Nimm den roten Becher", "instruction_not_understood", "other_language"),
        ),
        (
            "absent_unknown_object",
            s_instruction(
                "pick up the purple elephant", "instruction_not_understood", "absent_unknown_object"
            ),
        ),
        ("burst_200_in_1s", s_burst),
        ("pose_zero_quaternion", s_pose("pose_zero_quaternion", (0.5, 0.0, 0.1), (0, 0, 0, 0))),
        ("pose_nan_position", s_pose("pose_nan_position", (math.nan, 0.0, 0.1), (1, 0, 0, 0))),
        ("pose_unknown_frame", s_pose("pose_unknown_frame", (0.5, 0.0, 0.1), (1, 0, 0, 0), frame="moon")),
        ("pose_unreachable", s_pose("pose_unreachable", (3.0, 0.0, 0.1), (1, 0, 0, 0))),
        ("pose_inside_table", s_pose("pose_inside_table", (0.5, 0.0, -0.10), (1, 0, 0, 0))),
        ("joint_state_wrong_names", s_wrong_joint_names),
        ("cloud_point_step", s_cloud("point_step")),
        ("cloud_feature_width", s_cloud("feature_width")),
    ]
    if not full:
        return quick
    return quick + [
        (
            "pose_non_unit_quaternion",
            s_pose("pose_non_unit_quaternion", (0.5, 0.1, 0.05), (2, 0, 0, 0), expect="motion_"),
        ),
        ("second_task_while_busy", s_second_while_busy),
        ("cloud_nan_xyz", s_cloud("nan_xyz")),
        ("camera_one_silent", s_camera("camera_one_silent", {"silent": {"left"}})),
        ("camera_all_silent", s_camera("camera_all_silent", {"silent": set(CAMERAS)}, "policy:task_failed")),
        ("camera_nan_depth", s_camera("camera_nan_depth", {"depth": {"top": "nan"}})),
        ("camera_zero_depth", s_camera("camera_zero_depth", {"depth": {"right": "zero"}})),
        ("camera_2s_stale", s_camera("camera_2s_stale", {"stale": {"left"}})),
        ("camera_mismatched_resolution", s_camera("camera_mismatched_resolution", {"resize": {"top"}})),
        ("cancel_estop_while_busy", s_estop_while_busy),
        ("kill_perception_mid_task", s_kill("perception")),
        ("kill_policy_mid_task", s_kill("policy")),
        ("kill_executor_mid_task", s_kill("executor", after="motion_started", delay_s=0.5)),
        ("kill_sim_bridge_mid_task", s_kill("sim_bridge", after="motion_started", delay_s=0.5)),
    ]


# --------------------------------------------------------------------------------------- report
def write_table(rows: list[Row], out: Path, name: str = "faults") -> tuple[Path, Path]:
    """``<out>/<name>.json`` and ``<out>/<name>.md``."""
    out.mkdir(parents=True, exist_ok=True)
    js, md = out / f"{name}.json", out / f"{name}.md"
    summary = {
        "scenarios": len(rows),
        "ok": sum(r.ok for r in rows),
        "commands_outside_limits": sum(r.commands_outside_limits for r in rows),
        "python": sys.version.split()[0],
        "written": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    js.write_text(json.dumps({"summary": summary, "rows": [asdict(r) for r in rows]}, indent=2))
    lines = [
        f"# `vla faults`: {summary['ok']}/{summary['scenarios']} scenarios as expected, "
        f"{summary['commands_outside_limits']} commands outside limits",
        "",
        "Written by `vla faults` (vla_sim.faults) against the real multi-process sim graph. "
        "`sim s` = simulated seconds from the fault to the final status.",
        "",
        "| scenario | group | final status | wall s | sim s | arm moved | outside limits | nodes alive | "
        "recovered | as expected | detail |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        detail = (r.detail + (f" [{r.notes}]" if r.notes else "")).replace("|", "/").replace("\n", " ")[:220]
        lines.append(
            f"| {r.scenario} | {r.group} | {r.final_status} | {r.wall_s if r.wall_s is not None else '-'} "
            f"| {r.sim_s if r.sim_s is not None else '-'} | {'yes' if r.arm_moved else 'no'} | "
            f"{r.commands_outside_limits} | {len(r.nodes_alive)}/4 {','.join(r.nodes_alive)} | "
            f"{'-' if r.recovered is None else ('yes' if r.recovered else 'no')} | "
            f"{'yes' if r.ok else 'NO'} | {detail} |"
        )
    md.write_text("\n".join(lines) + "\n")
    return js, md


def merge_rows(base: list[Row] | None, new: list[Row]) -> list[Row]:
    """``base`` with each row of the same scenario replaced by ``new``'s; new scenarios appended."""
    if not base:
        return list(new)
    by_name = {r.scenario: r for r in new}
    merged = [by_name.pop(r.scenario, r) for r in base]
    return merged + [r for r in new if r.scenario in by_name]


def load_rows(path: Path) -> list[Row]:
    """The rows of a ``faults.json`` written by :func:`write_table`."""
    return [Row(**r) for r in json.loads(Path(path).read_text())["rows"]]


def run_scenarios(
    names: list[str] | None,
    full: bool,
    out: Path,
    robot: str = "ur5",
    log: Path | None = None,
    files: bool = True,
    base: list[Row] | None = None,
) -> list[Row]:
    """Run the chosen scenarios (graph ones on one shared graph) and write the table.

    ``base``: rows of an earlier run; the table keeps them, replacing those run again.
    """
    chosen_g = [(n, f) for n, f in graph_scenarios(full) if names is None or n in names]
    chosen_f = [(n, f) for n, f in file_scenarios() if (names is None and files) or (names and n in names)]
    rows: list[Row] = []
    if chosen_g:
        nodes = (
            NODES
            if full or any(n.startswith(NEEDS_PERCEPTION) for n, _ in chosen_g)
            else ("policy", "executor", "sim_bridge")
        )
        h = Harness(robot, log=log, nodes=nodes)
        try:
            t0 = time.monotonic()
            ready = h.wait_ready()
            print(
                f"[faults] graph {'ready' if ready else 'NOT ready'} after {time.monotonic() - t0:.0f} s "
                f"({', '.join(h.launcher.procs)})",
                flush=True,
            )
            for name, fn in chosen_g:
                t1 = time.monotonic()
                try:
                    row = fn(h)
                except Exception as exc:  # noqa: BLE001 - a scenario bug is a row, not the end of the run
                    row = Row(
                        name, "error", "", final_status="harness error", detail=f"{type(exc).__name__}: {exc}"
                    )
                rows.append(row)
                print(
                    f"[faults] {name}: {row.final_status} ({time.monotonic() - t1:.0f} s) "
                    f"{'ok' if row.ok else 'NOT AS EXPECTED'} {row.detail[:100]}",
                    flush=True,
                )
                write_table(merge_rows(base, rows), out)
                if "policy" in h.launcher.procs:  # a quiet graph before the next scenario
                    h.probe_policy(60)
        finally:
            h.close()
    for name, fn in chosen_f:
        t1 = time.monotonic()
        row = fn(None)
        rows.append(row)
        print(
            f"[faults] {name}: {row.final_status} ({time.monotonic() - t1:.0f} s) "
            f"{'ok' if row.ok else 'NOT AS EXPECTED'} {row.detail[:100]}",
            flush=True,
        )
        write_table(merge_rows(base, rows), out)
    return rows


# --------------------------------------------------------------------------------------- soak
def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


SOAK_INVALID = [
    "",
    "pick up the purple elephant",
    "Nimm den roten Becher",
    "x" * 300,
    "pick up the \x1b[31m mug",
    "please",
    "pick up the zebra",
    "   ",
]


def run_soak(
    n: int,
    valid_every: int,
    out: Path,
    robot: str = "ur5",
    log: Path | None = None,
    max_minutes: float = 0.0,
) -> dict[str, Any]:
    """``n`` consecutive tasks on one graph; answers and node memory (RSS) after each.

    ``max_minutes`` > 0 stops early (after the task running then) and says so in the results.
    """
    h = Harness(robot, log=log)
    samples: list[dict[str, Any]] = []
    try:
        if not h.wait_ready():
            raise RuntimeError("the graph did not come up")
        t0 = time.monotonic()
        for i in range(n):
            if max_minutes and time.monotonic() - t0 > 60.0 * max_minutes:
                print(f"[soak] stopping after {i} tasks: --max-minutes {max_minutes}", flush=True)
                break
            text = VALID if valid_every and i % valid_every == 0 else SOAK_INVALID[i % len(SOAK_INVALID)]
            if text == VALID:  # the same scene again: the last valid task left the mug in the gripper
                h.reset_scene()
            row = run_instruction(h, Row(f"soak_{i}", "soak", ""), text, timeout_s=300)
            rss = {name: _rss_mb(p.pid) for name, p in h.launcher.procs.items()}
            samples.append(
                {
                    "i": i,
                    "valid": text == VALID,
                    "final": row.final_status,
                    "wall_s": row.wall_s,
                    "rss_mb": rss,
                    "outside_limits": row.commands_outside_limits,
                    "alive": row.nodes_alive,
                }
            )
            print(
                f"[soak] {i}: {row.final_status} {row.wall_s} s rss "
                f"{ {k: round(v or 0) for k, v in rss.items()} }",
                flush=True,
            )
        wall = time.monotonic() - t0
        restarts = dict(h.launcher.respawns)
    finally:
        h.close()
    done = len(samples)
    warm_i = min(done - 1, max(1, done // 10))
    warm = samples[warm_i]["rss_mb"]
    last = samples[-1]["rss_mb"]
    growth = {k: (last[k] - warm[k]) / warm[k] for k in last if last.get(k) and warm.get(k)}
    result = {
        "tasks": done,
        "tasks_asked": n,
        "node_restarts": restarts,
        "valid": sum(s["valid"] for s in samples),
        "unanswered": sum(s["final"] == "none" for s in samples),
        "finals": {k: sum(s["final"] == k for s in samples) for k in sorted({s["final"] for s in samples})},
        "commands_outside_limits": sum(s["outside_limits"] for s in samples),
        "rss_growth_after_warmup": growth,
        "warmup_task": samples[warm_i]["i"],
        "wall_s": round(wall, 1),
        "samples": samples,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.json").write_text(json.dumps(result, indent=2))
    md = [
        f"# Soak: {done} consecutive tasks on one sim graph ({result['valid']} valid"
        + (f"; {n} asked, stopped by the time limit)" if done < n else ")"),
        "",
        "Written by `vla faults --soak` (vla_sim.faults).",
        "",
        f"- unanswered: {result['unanswered']}",
        f"- node restarts: {restarts or 'none'}",
        f"- final statuses: {result['finals']}",
        f"- commands outside limits: {result['commands_outside_limits']}",
        f"- wall time: {result['wall_s']} s",
        f"- RSS growth from task {result['warmup_task']} (after warm-up) to the last task: "
        + ", ".join(f"{k} {100 * v:+.1f} %" for k, v in growth.items()),
        "",
        "| node | RSS after warm-up (MB) | RSS at the end (MB) |",
        "|---|---|---|",
    ]
    md += [f"| {k} | {warm[k]:.0f} | {last[k]:.0f} |" for k in last if last.get(k) and warm.get(k)]
    (out / "soak.md").write_text("\n".join(md) + "\n")
    return result


# --------------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    """Options of ``vla faults``."""
    p = argparse.ArgumentParser(prog="vla faults", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--set",
        choices=("full", "quick"),
        default="full",
        help="full: every scenario; quick: bad input and files only (no whole task)",
    )
    p.add_argument("--only", default=None, help="comma-separated scenario names")
    p.add_argument("--no-files", action="store_true", help="skip the start-up (file) scenarios")
    p.add_argument(
        "--merge",
        action="store_true",
        help="keep the rows of <out>/faults.json, replacing the scenarios run now",
    )
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("--robot", default="ur5")
    p.add_argument("--out", type=Path, default=Path("results"))
    p.add_argument("--log", type=Path, default=None, help="write the nodes' output here")
    p.add_argument("--soak", type=int, default=0, help="run N consecutive tasks instead of the scenarios")
    p.add_argument("--valid-every", type=int, default=10, help="soak: every k-th task is a valid one")
    p.add_argument("--max-minutes", type=float, default=0.0, help="soak: stop after this long (0 = no limit)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``vla faults``; exit 0 when every scenario went as expected."""
    args = build_parser().parse_args(argv)
    if args.list:
        for n, _ in graph_scenarios(True) + file_scenarios():
            print(n)
        return 0
    if args.soak:
        res = run_soak(args.soak, args.valid_every, args.out, args.robot, args.log, args.max_minutes)
        print(json.dumps({k: v for k, v in res.items() if k != "samples"}, indent=2))
        return 0 if res["unanswered"] == 0 and res["commands_outside_limits"] == 0 else 1
    names = [n.strip() for n in args.only.split(",")] if args.only else None
    known = {n for n, _ in graph_scenarios(True) + file_scenarios()}
    if names and set(names) - known:
        print(f"vla faults: unknown scenarios {sorted(set(names) - known)} (see --list)", file=sys.stderr)
        return 2
    base = (
        load_rows(args.out / "faults.json") if args.merge and (args.out / "faults.json").is_file() else None
    )
    rows = run_scenarios(
        names,
        args.set == "full" or bool(names),
        args.out,
        args.robot,
        args.log,
        files=not args.no_files,
        base=base,
    )
    rows = merge_rows(base, rows)
    js, md = write_table(rows, args.out)
    bad = [r.scenario for r in rows if not r.ok]
    print(
        f"[faults] {len(rows) - len(bad)}/{len(rows)} as expected; "
        f"{sum(r.commands_outside_limits for r in rows)} commands outside limits; table: {md}"
    )
    if bad:
        print(f"[faults] not as expected: {', '.join(bad)}")
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
