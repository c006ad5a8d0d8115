# SPDX-License-Identifier: Apache-2.0
"""ROS 2 policy node: owns a task from the instruction to its final result.

Topics (docs/ARCHITECTURE.md, shared/DESIGN.md):

* subscribes ``/vla/instruction`` (std_msgs/String), ``/vla/feature_cloud`` (sensor_msgs/PointCloud2
  with ``x y z`` + ``f0..f{D-1}``), ``/vla/status`` (the executor's ``motion_done`` /
  ``motion_refused`` events);
* publishes ``/vla/grasp_pose`` / ``/vla/place_pose`` (geometry_msgs/PoseStamped, frame ``world``),
  ``/vla/grasp_candidates`` (geometry_msgs/PoseArray, for RViz), ``/vla/perception/request``
  (std_msgs/Empty) and status events on ``/vla/status``.

Task life cycle (a timer drives it; callbacks only record what arrived):

1. An instruction that is empty, over ``max_instruction_chars`` or arrives while a task runs is
   refused with ``instruction_refused`` (no task starts). A sentence the policy cannot ground
   (:meth:`Policy.understand`: an object its vocabulary does not know, another language, no object
   at all) is refused with ``instruction_not_understood`` and the reason. Otherwise
   ``instruction_received``; :mod:`vla_common.language` reads the stages: a pick-and-place sentence
   ("pick up the X and put it near the Y", "place the X beside the Y") becomes a grasp stage ("pick up
   the X") and a place stage ("put it near the Y"), a place sentence ("put it left of the Y") a
   place stage, any other sentence a grasp stage.
2. Each attempt requests a fresh cloud and waits for one stamped after the request; the policy
   decides; ``grasp_selected`` / ``place_selected`` plus the pose are published, or
   ``target_not_found`` ends the task.
3. The executor's ``motion_done`` (field ``success``) ends the attempt. A failed attempt excludes a
   ``exclude_radius_m`` region around the failed pose and retries, up to ``max_attempts``.
4. Every task ends with exactly one ``task_succeeded`` or ``task_failed`` (also on timeouts).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseArray, PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Empty, String

from vla_common.conversions import (
    matrices_to_pose_array,
    matrix_to_pose_stamped,
    pointcloud2_to_numpy,
    time_to_s,
)
from vla_common.language import NotUnderstood
from vla_common.node_runner import spin_node
from vla_common.qos import EVENT_QOS, RELIABLE_QOS, SENSOR_QOS
from vla_common.status import make_status
from vla_policy.policy import InstructionError, check_instruction, clip_weights_sha256

NODE = "policy"
@dataclass
class _Task:
    instruction: str
    stages: list[tuple[str, str]]
    stage: int = 0
    attempt: int = 0
    state: str = "need_cloud"  # need_cloud | wait_cloud | wait_motion
    requested_s: float = 0.0
    waiting_since_s: float = 0.0
    last_pose: np.ndarray | None = None
    exclude: list[tuple[np.ndarray, float]] = field(default_factory=list)


class _Cloud:
    def __init__(self, xyz: np.ndarray, features: np.ndarray, rgb: np.ndarray | None) -> None:
        self.xyz, self.features, self.rgb = xyz, features, rgb


class PolicyNode(Node):
    """The policy node (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__(NODE)
        self.checkpoint = str(self.declare_parameter("checkpoint", "SR").value)
        self.clip_model = str(self.declare_parameter("clip_model", "compact").value)
        self.max_chars = int(self.declare_parameter("max_instruction_chars", 200).value)
        self.max_attempts = int(self.declare_parameter("max_attempts", 3).value)
        self.exclude_radius_m = float(self.declare_parameter("exclude_radius_m", 0.03).value)
        self.cloud_timeout_s = float(self.declare_parameter("cloud_timeout_s", 20.0).value)
        self.motion_timeout_s = float(self.declare_parameter("motion_timeout_s", 120.0).value)
        self.frame_id = str(self.declare_parameter("frame_id", "world").value)
        self.tick_s = float(self.declare_parameter("tick_s", 0.05).value)
        for name, val in (("max_instruction_chars", self.max_chars), ("max_attempts", self.max_attempts)):
            if val < 1:
                raise ValueError(f"parameter {name} must be >= 1, got {val}")
        timeouts = (("cloud_timeout_s", self.cloud_timeout_s), ("motion_timeout_s", self.motion_timeout_s),
                    ("tick_s", self.tick_s))
        for name, val in timeouts:
            if val <= 0:
                raise ValueError(f"parameter {name} must be > 0, got {val}")
        self.status_pub = self.create_publisher(String, "/vla/status", EVENT_QOS)
        self.grasp_pub = self.create_publisher(PoseStamped, "/vla/grasp_pose", RELIABLE_QOS)
        self.place_pub = self.create_publisher(PoseStamped, "/vla/place_pose", RELIABLE_QOS)
        self.cands_pub = self.create_publisher(PoseArray, "/vla/grasp_candidates", RELIABLE_QOS)
        self.request_pub = self.create_publisher(Empty, "/vla/perception/request", RELIABLE_QOS)
        self.create_subscription(String, "/vla/instruction", self._on_instruction, EVENT_QOS)
        self.create_subscription(PointCloud2, "/vla/feature_cloud", self._on_cloud, SENSOR_QOS)
        self.create_subscription(String, "/vla/status", self._on_status, EVENT_QOS)
        self.task: _Task | None = None
        self.cloud: tuple[float, PointCloud2] | None = None
        self.motion_result: dict[str, Any] | None = None
        self._policy = None
        self._encoder = None
        self.timer = self.create_timer(self.tick_s, self._tick)
        self.get_logger().info(f"policy node up (checkpoint {self.checkpoint!r}, clip {self.clip_model!r})")

    # ------------------------------------------------------------------ helpers
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _status(self, event: str, level: str = "info", detail: str = "", **fields: Any) -> None:
        self.status_pub.publish(String(data=make_status(NODE, event, level, detail, **fields)))
        # rclpy ties a severity to each call site, so one call per level
        if level == "info":
            self.get_logger().info(f"{event}: {detail}")
        elif level == "warn":
            self.get_logger().warning(f"{event}: {detail}")
        else:
            self.get_logger().error(f"{event}: {detail}")

    def _end(self, ok: bool, detail: str, **fields: Any) -> None:
        task = self.task
        self.task = None
        self._status("task_succeeded" if ok else "task_failed", "info" if ok else "error", detail,
                     instruction=task.instruction if task else "", **fields)

    def _load(self) -> None:
        if self._policy is None:
            from vla_perception.clip_features import ClipFeatureExtractor
            from vla_policy.policy import Policy

            self._policy = Policy.load(self.checkpoint)
            self._encoder = ClipFeatureExtractor(self.clip_model)
            want = self._policy.meta.get("clip_sha256")
            have = clip_weights_sha256(self.clip_model)
            if want and have and want != have:
                self._status("clip_mismatch", "warn",
                             f"checkpoint {self.checkpoint!r} was trained on another CLIP than "
                             f"{self.clip_model!r}; retrain the policy on features of this CLIP "
                             "(vla collect --refeature, vla train)")

    # ------------------------------------------------------------------ callbacks
    def _on_instruction(self, msg: String) -> None:
        try:
            text = check_instruction(msg.data, self.max_chars)
        except InstructionError as exc:
            self._status("instruction_refused", "warn", str(exc), length=len(msg.data))
            return
        if self.task is not None:
            self._status("instruction_refused", "warn",
                         f"busy with {self.task.instruction!r}; send the next instruction when it has ended",
                         instruction=text)
            return
        try:
            self._load()
            parsed = self._policy.understand(text)
        except NotUnderstood as exc:
            self._status("instruction_not_understood", "warn", exc.reason, instruction=text)
            return
        except Exception as exc:  # noqa: BLE001 - a policy that cannot load refuses with the reason
            self._status("instruction_refused", "error", f"policy unavailable: {exc}", instruction=text)
            return
        self.task = _Task(text, parsed.stages())
        self._status("instruction_received", "info", f"task started: {text!r}", instruction=text,
                     stages=[k for k, _ in self.task.stages], stage_texts=[t for _, t in self.task.stages],
                     object=parsed.object, relation=parsed.relation, reference=parsed.reference)

    def _on_cloud(self, msg: PointCloud2) -> None:
        self.cloud = (time_to_s(msg.header.stamp), msg)

    def _on_status(self, msg: String) -> None:
        try:
            ev = json.loads(msg.data)
        except json.JSONDecodeError:
            return
        if not isinstance(ev, dict) or ev.get("node") == NODE:
            return
        if ev.get("event") in ("motion_done", "motion_refused"):
            self.motion_result = ev

    # ------------------------------------------------------------------ task machine
    def _tick(self) -> None:
        task = self.task
        if task is None:
            return
        now = self._now()
        if task.state == "need_cloud":
            task.requested_s = now
            task.waiting_since_s = now
            task.state = "wait_cloud"
            self.cloud = None if self.cloud is None or self.cloud[0] < now else self.cloud
            self.request_pub.publish(Empty())
        elif task.state == "wait_cloud":
            if self.cloud is not None and self.cloud[0] >= task.requested_s:
                self._decide(task, self.cloud[1])
            elif now - task.waiting_since_s > self.cloud_timeout_s:
                self._end(False, f"no feature cloud newer than the request within "
                                 f"{self.cloud_timeout_s:.0f} s; is the perception node running?")
        elif task.state == "wait_motion":
            if self.motion_result is not None:
                ev, self.motion_result = self.motion_result, None
                self._motion_finished(task, ev)
            elif now - task.waiting_since_s > self.motion_timeout_s:
                self._end(False, f"no motion_done from the executor within {self.motion_timeout_s:.0f} s")

    def _decide(self, task: _Task, msg: PointCloud2) -> None:
        kind, text = task.stages[task.stage]
        try:
            self._load()
            xyz, rgb, feats = pointcloud2_to_numpy(msg)
            if feats is None:
                raise ValueError("the feature cloud has no f0.. feature channels")
            ok = np.isfinite(xyz).all(1)
            cloud = _Cloud(xyz[ok], feats[ok], None if rgb is None else rgb[ok])
            decision = self._policy.decide(cloud, text, self._encoder, kind=kind,
                                           exclude=task.exclude)
        except Exception as exc:  # noqa: BLE001 - any failure ends the task with a clear status
            self._end(False, f"policy could not decide: {exc}")
            return
        rel = decision.relevance
        if decision.outcome == "target_not_found":
            self._status("target_not_found", "warn", f"nothing in the scene matches {text!r}",
                         presence=rel.get("presence"), threshold=rel.get("threshold"))
            self._end(False, "target not found")
            return
        if decision.outcome == "not_understood":
            self._status("instruction_not_understood", "warn", decision.reason, instruction=text)
            self._end(False, decision.reason)
            return
        if decision.outcome != "ok":
            self._attempt_failed(task, f"no {kind} candidates in the cloud")
            return
        stamp = self._now()
        self.cands_pub.publish(matrices_to_pose_array(decision.candidates, self.frame_id, stamp))
        pub = self.grasp_pub if kind == "grasp" else self.place_pub
        pub.publish(matrix_to_pose_stamped(decision.pose, self.frame_id, stamp))
        task.last_pose = decision.pose
        task.state = "wait_motion"
        task.waiting_since_s = self._now()
        self.motion_result = None
        what = f"{kind} candidate {decision.index} of {len(decision.candidates)}"
        self._status(f"{kind}_selected", "info", what,
                     instruction=text, attempt=task.attempt + 1, score=float(decision.scores[decision.index]),
                     position=decision.pose[:3, 3], presence=rel.get("presence"),
                     timings_ms=decision.timings_ms,
                     scores=[round(float(p), 5) for p in decision.scores])  # per candidate, as published

    def _motion_finished(self, task: _Task, ev: dict[str, Any]) -> None:
        kind = task.stages[task.stage][0]
        if ev.get("event") == "motion_done" and bool(ev.get("success")):
            task.stage += 1
            task.attempt = 0
            task.exclude = []
            if task.stage >= len(task.stages):
                self._end(True, f"{kind} succeeded")
            else:
                task.state = "need_cloud"
            return
        self._attempt_failed(task, f"{kind} attempt failed: {ev.get('detail', ev.get('event'))}")

    def _attempt_failed(self, task: _Task, why: str) -> None:
        task.attempt += 1
        if task.last_pose is not None:
            task.exclude.append((task.last_pose[:3, 3].copy(), self.exclude_radius_m))
            task.last_pose = None
        if task.attempt >= self.max_attempts:
            self._end(False, f"{why}; gave up after {task.attempt} attempts")
        else:
            self._status("retrying", "warn", f"{why}; retrying with a fresh cloud", attempt=task.attempt + 1)
            task.state = "need_cloud"


def main(args: list[str] | None = None) -> None:
    """Run the policy node until shut down."""
    spin_node(PolicyNode, args)


if __name__ == "__main__":
    main()
