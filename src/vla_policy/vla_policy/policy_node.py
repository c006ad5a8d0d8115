# SPDX-License-Identifier: Apache-2.0
"""ROS 2 policy node: owns a task from the instruction to its final result.

Topics (docs/ARCHITECTURE.md, shared/DESIGN.md):

* subscribes ``/vla/instruction`` (std_msgs/String), ``/vla/feature_cloud`` (sensor_msgs/PointCloud2
  with ``x y z`` + ``f0..f{D-1}``), ``/vla/status`` (the executor's ``motion_done`` /
  ``motion_refused`` events);
* publishes ``/vla/grasp_pose`` / ``/vla/place_pose`` (geometry_msgs/PoseStamped, frame ``world``),
  ``/vla/grasp_candidates`` (geometry_msgs/PoseArray, for RViz), ``/vla/perception/request``
  (std_msgs/Empty) and status events on ``/vla/status``.

Task life cycle (a timer drives it; callbacks only record what arrived). Stages, attempts,
exclusions and outcomes are :class:`vla_common.task.TaskCore`, the same core ``vla eval`` drives;
this node adds only the transport (cloud requests, pose topics, the executor's events, timeouts):

1. An instruction that is empty, over ``max_instruction_chars`` or arrives while a task runs is
   refused with ``instruction_refused`` (no task starts). A sentence the policy cannot ground
   (:meth:`Policy.understand`: an object its vocabulary does not know, another language, no object
   at all) is refused with ``instruction_not_understood`` and the reason. Otherwise
   ``instruction_received``; :mod:`vla_common.language` reads the stages: a pick-and-place sentence
   ("pick up the X and put it near the Y", "place the X beside the Y") becomes a grasp stage ("pick up
   the X") and a place stage ("put it near the Y"), a place sentence ("put it left of the Y") a
   place stage, any other sentence a grasp stage.
2. Each attempt requests a fresh cloud and waits for one stamped after the request (the first
   decision of a task may use a cloud of frames up to ``max_cloud_age_s`` old taken after the arm's
   last motion ended, so the robot answers without waiting for the next camera frames); the policy
   decides; ``grasp_selected`` / ``place_selected`` plus the pose are published, or
   ``target_not_found`` ends the task.
3. The executor's ``motion_done`` (field ``success``) ends the attempt. A failed attempt excludes a
   ``exclude_radius_m`` region around the failed pose and retries, up to ``max_attempts``.
4. Every task ends with exactly one ``task_succeeded`` or ``task_failed`` (also on timeouts).

The action ``/vla/manipulate`` (vla_interfaces/action/Manipulate) is the other way in, and the
task machine above is the same for both: a goal (instruction + options ``max_attempts``,
``timeout_s``) starts a task exactly as a ``/vla/instruction`` line does (a line is a goal
without options and without a client to answer). Feedback is sent at each stage and attempt
(``perceiving``, ``moving`` with the chosen pose, ``retrying``); the result carries the outcome
(succeeded | failed | target_not_found | not_understood | refused | cancelled), the reason, the
stages and the chosen poses. Busy rule: one task at a time; a goal that arrives while a task runs
(from either way in) is rejected at once, and a line is refused with ``instruction_refused``.
Cancel (or the goal's ``timeout_s``) stops the arm at once (std_msgs/Empty on
``/vla/motion/cancel``: the executor holds position) and ends the task with outcome ``cancelled``
(``failed`` on a timeout). Every task's final status also goes out latched as
vla_interfaces/TaskStatus on ``/vla/task_status``, and this node's ``/vla/status`` writer is
transient local (EVENT_LATCHED_QOS), so a late subscriber still learns how the last tasks ended.
The node spins single-threaded and never blocks in a callback: the decision (CLIP text encoding,
2-Align over the cloud, 100-600 ms) runs in a worker thread that the tick starts and collects, and
the action's execute callback is a coroutine that awaits the task's end. So e-stop, cancel, goals
and instructions are handled while the policy decides; a decision that an e-stop or cancel
overtook is dropped (no pose is sent). rclpy's MultiThreadedExecutor is not used: with it the node
answered a burst of 200 instructions in 34 s (single-threaded: 0.12 s), because its spin loop
polls entities of a busy callback group instead of waiting.

Faults: the checkpoint and CLIP load when the node starts (a corrupt or missing file is an error
at start-up, not at the first instruction). A steady-clock watchdog ends a task when the ROS clock
(simulated time: ``/clock``) stops for ``clock_stall_s`` of wall time, since the sim-time timers
above stop with it; a ``node_exited`` event from the launcher naming a peer (perception, executor,
sim_bridge) ends the task in flight with ``task_failed``.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseArray, PoseStamped
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.task import Future
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Bool, Empty, String

from vla_common import topics
from vla_common.conversions import (
    matrices_to_pose_array,
    matrix_to_pose_stamped,
    pointcloud2_to_numpy,
    time_to_s,
)
from vla_common.language import NotUnderstood
from vla_common.node_runner import spin_node
from vla_common.qos import EVENT_LATCHED_QOS, EVENT_QOS, RELIABLE_QOS, SENSOR_QOS, TASK_STATUS_QOS
from vla_common.ros_params import at_least, in_range, positive, validate_on_set
from vla_common.ros_status import StatusPublisher
from vla_common.task import Step, TaskCore
from vla_interfaces.action import Manipulate
from vla_interfaces.msg import TaskStatus
from vla_policy.policy import InstructionError, check_instruction, clip_weights_sha256

NODE = "policy"
EXECUTOR_NODE = "executor"  # the node whose motion_started / motion_done bracket an arm motion


@dataclass
class _Task:
    """A running task: the shared task core (stages, attempts, exclusions, outcome) + transport state."""

    core: TaskCore
    state: str = "need_cloud"  # need_cloud | wait_cloud | wait_motion
    requested_s: float = 0.0
    fresh_after_s: float = 0.0           # a cloud stamped (frames taken) before this is not used
    waiting_since_s: float = 0.0
    task_id: str = ""
    goal_handle: Any = None              # rclpy ServerGoalHandle for /vla/manipulate goals
    deadline_s: float = 0.0              # node-clock time limit (0 = none)
    poses: list[Any] = field(default_factory=list)  # PoseStamped chosen per stage (last attempt)
    cancel_requested: bool = False
    abort_reason: str = ""               # set by the e-stop thread: end the task as failed with this
    abort_state: str = ""                # what the task was doing then (deciding, wait_motion, ...)
    done: threading.Event = field(default_factory=threading.Event)
    finished: Any = None                 # rclpy Future the goal's coroutine awaits (set at the end)
    result: dict[str, Any] = field(default_factory=dict)
    decision: Any = None                 # the worker thread's (decision, error) once it has finished
    cloud_age_s: float = 0.0             # request time minus the decided cloud's stamp (node clock)
    worker: threading.Thread | None = None

    @property
    def instruction(self) -> str:
        return self.core.instruction


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
        self.clock_stall_s = float(self.declare_parameter("clock_stall_s", 5.0).value)
        self.max_cloud_age_s = float(self.declare_parameter("max_cloud_age_s", 1.0).value)
        for name, val in (("max_instruction_chars", self.max_chars), ("max_attempts", self.max_attempts)):
            if val < 1:
                raise ValueError(f"parameter {name} must be >= 1, got {val}")
        if not self.max_cloud_age_s >= 0:
            raise ValueError(f"parameter max_cloud_age_s must be >= 0, got {self.max_cloud_age_s}")
        timeouts = (("cloud_timeout_s", self.cloud_timeout_s), ("motion_timeout_s", self.motion_timeout_s),
                    ("tick_s", self.tick_s), ("clock_stall_s", self.clock_stall_s))
        for name, val in timeouts:
            if val <= 0:
                raise ValueError(f"parameter {name} must be > 0, got {val}")
        validate_on_set(self, {
            "max_instruction_chars": at_least(1, integer=True), "max_attempts": in_range(1, 8, integer=True),
            "exclude_radius_m": at_least(0.0), "cloud_timeout_s": positive(), "motion_timeout_s": positive(),
            "max_cloud_age_s": at_least(0.0),
            "clock_stall_s": positive()}, read_only=("checkpoint", "clip_model", "frame_id", "tick_s"),
            apply=self._apply_param)
        self._status_out = StatusPublisher(self, NODE, EVENT_LATCHED_QOS)
        self.status_pub = self._status_out.pub
        self.task_status_pub = self.create_publisher(TaskStatus, topics.TASK_STATUS, TASK_STATUS_QOS)
        self.motion_cancel_pub = self.create_publisher(Empty, topics.MOTION_CANCEL, RELIABLE_QOS)
        self._start_lock = threading.Lock()  # one task at a time across the topic and the action
        self._claimed = False                # a goal was accepted and is about to start
        self._n_topic_tasks = 0
        self._estop = False                  # /vla/estop engaged: the task in flight ends, none starts
        self._decide_lock = threading.Lock()  # one decision at a time (an overtaken one may still run)
        self._last_motion_end_s = 0.0        # node-clock time of the last motion_done / motion_refused
        self._motion_running = False         # the executor reported motion_started and no end yet
        self.create_subscription(Bool, topics.ESTOP, self._on_estop, RELIABLE_QOS)
        self.action_server = ActionServer(
            self, Manipulate, topics.MANIPULATE, execute_callback=self._execute_goal,
            goal_callback=self._on_goal, cancel_callback=self._on_cancel)
        self.grasp_pub = self.create_publisher(PoseStamped, topics.GRASP_POSE, RELIABLE_QOS)
        self.place_pub = self.create_publisher(PoseStamped, topics.PLACE_POSE, RELIABLE_QOS)
        self.cands_pub = self.create_publisher(PoseArray, topics.GRASP_CANDIDATES, RELIABLE_QOS)
        self.request_pub = self.create_publisher(Empty, topics.PERCEPTION_REQUEST, RELIABLE_QOS)
        self.create_subscription(String, topics.INSTRUCTION, self._on_instruction, EVENT_QOS)
        self.create_subscription(PointCloud2, topics.FEATURE_CLOUD, self._on_cloud, SENSOR_QOS)
        self.create_subscription(String, topics.STATUS, self._on_status, EVENT_QOS)
        self.task: _Task | None = None
        self.cloud: tuple[float, PointCloud2] | None = None
        self.motion_result: dict[str, Any] | None = None
        self._policy = None
        self._encoder = None
        self.timer = self.create_timer(self.tick_s, self._tick)
        try:  # a bad checkpoint or CLIP fails here, at start-up, not at the first instruction
            self._load()
        except Exception as exc:  # noqa: BLE001 - every loader raises its own type; name the files
            raise RuntimeError(f"checkpoint {self.checkpoint!r} with CLIP {self.clip_model!r} does not load: "
                               f"{type(exc).__name__}: {exc}") from exc
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._clock_seen = (self._now(), self._steady.now().nanoseconds * 1e-9)
        self.create_timer(0.5, self._watchdog, clock=self._steady)
        self.get_logger().info(f"policy node up (checkpoint {self.checkpoint!r}, clip {self.clip_model!r})")

    # ------------------------------------------------------------------ helpers
    _PARAM_ATTR = {"max_instruction_chars": ("max_chars", int), "max_attempts": ("max_attempts", int),
                   "exclude_radius_m": ("exclude_radius_m", float),
                   "cloud_timeout_s": ("cloud_timeout_s", float),
                   "max_cloud_age_s": ("max_cloud_age_s", float),
                   "motion_timeout_s": ("motion_timeout_s", float), "clock_stall_s": ("clock_stall_s", float)}

    def _apply_param(self, name: str, value: Any) -> None:
        """A validated run-time parameter change (vla_common.ros_params): used from the next task on."""
        attr, cast = self._PARAM_ATTR[name]
        setattr(self, attr, cast(value))

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _status(self, event: str, level: str = "info", detail: str = "", **fields: Any) -> None:
        self._status_out(event, level, detail, **fields)

    def _end(self, ok: bool, detail: str, outcome: str = "", **fields: Any) -> None:
        """End the task in flight (the core keeps the first final outcome) and report it."""
        task = self.task
        self.task = None
        outcome = "succeeded" if ok else (outcome or "failed")
        if task is not None:
            task.core.end(ok, outcome, detail)
            r = task.core.result
            ok, outcome, detail = r.success, r.outcome, r.reason
        self._status("task_succeeded" if ok else "task_failed", "info" if ok else "error", detail,
                     instruction=task.instruction if task else "", outcome=outcome,
                     task_id=task.task_id if task else "", **fields)
        if task is not None:
            self._finish(task, ok, outcome, "" if ok else detail)

    def _finish(self, task: _Task, ok: bool, outcome: str, reason: str) -> None:
        """Record the task's result, publish the latched TaskStatus and wake the goal's thread."""
        core = task.core
        kinds = [k for k, _ in core.stages]
        task.result = {"success": ok, "outcome": outcome, "reason": reason, "stages": kinds,
                       "poses": list(task.poses), "attempts": core.decisions}
        msg = TaskStatus(task_id=task.task_id, instruction=task.instruction, success=ok, outcome=outcome,
                         reason=reason, stages=kinds, stages_done=min(core.stage_index, len(kinds)))
        msg.stamp = self.get_clock().now().to_msg()
        self.task_status_pub.publish(msg)
        task.done.set()
        if task.finished is not None and not task.finished.done():
            task.finished.set_result(task.result)

    def _feedback(self, task: _Task, state: str, pose: PoseStamped | None = None) -> None:
        """Action feedback for goals (stage, attempt, state, chosen pose); nothing for topic tasks."""
        core = task.core
        if task.goal_handle is None or core.done:
            return
        fb = Manipulate.Feedback(stage=core.stage.kind, stage_index=core.stage_index,
                                 stage_count=len(core.stages), attempt=core.attempt + 1, state=state,
                                 text=core.stage.text)
        if pose is not None:
            fb.pose = pose
        task.goal_handle.publish_feedback(fb)

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
            self._warm_up()

    def _warm_up(self) -> None:
        """One decision on a synthetic cloud (a table and a 5 cm box) at start-up.

        The first decision of a fresh process took 1.8 s instead of 0.15-0.3 s (lazy torch, open3d
        and scipy initialisation; results/bench_response.md, task 0); paying it here keeps it out of
        the first task. A failure is logged, not fatal: the checkpoint itself already loaded.
        """
        t0 = time.perf_counter()
        g = np.linspace(0.2, 0.8, 40)
        table = np.stack(np.meshgrid(g, g - 0.5), -1).reshape(-1, 2)           # (1600, 2)
        xyz = np.concatenate([np.c_[table, np.zeros(len(table))],
                              np.random.default_rng(0).uniform([0.475, -0.025, 0.0], [0.525, 0.025, 0.05],
                                                              (400, 3))]).astype(np.float32)  # (2000, 3)
        dim = int(self._policy.cfg.feature_dim)
        feats = np.random.default_rng(1).standard_normal((len(xyz), dim)).astype(np.float32)  # (2000, D)
        feats /= np.linalg.norm(feats, axis=1, keepdims=True)
        # an object the checkpoint's vocabulary knows, so the decision runs the prior and the model
        # (an unknown word ends it as not_understood before either)
        vocab = getattr(getattr(self._policy, "recogniser", None), "vocabulary", None) or []
        names = [v["name"] for v in vocab if isinstance(v, dict) and v.get("name")]
        text = f"pick up the {names[0]}" if names else "pick up the red cube"
        try:
            d = self._policy.decide(_Cloud(xyz, feats, None), text, self._encoder, kind="grasp")
        except Exception as exc:  # noqa: BLE001 - a warm-up problem must not hide a good checkpoint
            self.get_logger().warning(f"warm-up decision failed ({type(exc).__name__}: {exc}); "
                                      "the first task pays the start-up cost")
            return
        self.get_logger().info(f"warm-up decision ({text!r}: {d.outcome}, {len(d.candidates)} candidates) "
                               f"in {time.perf_counter() - t0:.2f} s")

    # ------------------------------------------------------------------ callbacks
    def _on_instruction(self, msg: String) -> None:
        """A ``/vla/instruction`` line: a goal without options and without a client to answer."""
        with self._start_lock:
            self._n_topic_tasks += 1
            self._start_task(msg.data, f"topic-{self._n_topic_tasks}", None, 0, 0.0)

    def _start_task(self, raw: str, task_id: str, goal_handle: Any, max_attempts: int,
                    timeout_s: float) -> tuple[str, str]:
        """Start a task (caller holds ``_start_lock``); returns ("", "") or (outcome, reason) when refused."""
        try:
            text = check_instruction(raw, self.max_chars)
        except InstructionError as exc:
            self._status("instruction_refused", "warn", str(exc), length=len(raw), task_id=task_id)
            return "refused", str(exc)
        if self.task is not None or (goal_handle is None and self._claimed):
            busy = self.task.instruction if self.task is not None else "a goal that is starting"
            why = f"busy with {busy!r}; send the next instruction when it has ended"
            self._status("instruction_refused", "warn", why, instruction=text, task_id=task_id)
            return "refused", why
        if self._estop:
            why = "e-stop engaged: release /vla/estop before sending a task"
            self._status("instruction_refused", "warn", why, instruction=text, task_id=task_id)
            return "refused", why
        if not 0 <= max_attempts <= 8:
            why = f"max_attempts must be 0 (node default) .. 8, got {max_attempts}"
            self._status("instruction_refused", "warn", why, instruction=text, task_id=task_id)
            return "refused", why
        if not np.isfinite(timeout_s) or timeout_s < 0:
            why = f"timeout_s must be >= 0 (0 = none), got {timeout_s}"
            self._status("instruction_refused", "warn", why, instruction=text, task_id=task_id)
            return "refused", why
        try:
            self._load()
            parsed = self._policy.understand(text)
        except NotUnderstood as exc:
            self._status("instruction_not_understood", "warn", exc.reason, instruction=text, task_id=task_id)
            return "not_understood", exc.reason
        except Exception as exc:  # noqa: BLE001 - a policy that cannot load refuses with the reason
            self._status("instruction_refused", "error", f"policy unavailable: {exc}", instruction=text,
                         task_id=task_id)
            return "refused", f"policy unavailable: {exc}"
        core = TaskCore(text, parsed.stages(), max_attempts=max_attempts or self.max_attempts,
                        exclude_radius_m=self.exclude_radius_m)
        task = _Task(core, task_id=task_id, goal_handle=goal_handle,
                     deadline_s=self._now() + timeout_s if timeout_s > 0 else 0.0, finished=Future())
        self.task = task
        self._status("instruction_received", "info", f"task started: {text!r}", instruction=text,
                     stages=[k for k, _ in core.stages], stage_texts=[t for _, t in core.stages],
                     object=parsed.object, relation=parsed.relation, reference=parsed.reference,
                     task_id=task_id, via="action" if goal_handle is not None else "topic")
        return "", ""

    # ------------------------------------------------------------------ the action /vla/manipulate
    def _on_goal(self, goal: Any) -> GoalResponse:
        """Accept a goal only when no task runs or is starting (the busy rule, module docstring)."""
        with self._start_lock:
            if self.task is not None or self._claimed:
                busy = self.task.instruction if self.task is not None else "a goal that is starting"
                self._status("goal_rejected", "warn", f"busy with {busy!r}: one task at a time",
                             instruction=goal.instruction)
                return GoalResponse.REJECT
            self._claimed = True
            return GoalResponse.ACCEPT

    def _on_estop(self, msg: Bool) -> None:
        """E-stop (own callback group, handled while the policy decides): end the task, refuse new ones.

        The executor halts the arm by itself; here the task in flight ends with ``task_failed``
        (reason ``estop``) at the next tick, a decision being made is dropped (no pose is sent), and
        instructions and goals are refused until the e-stop is released.
        """
        self._estop = bool(msg.data)
        task = self.task
        if self._estop and task is not None and not task.abort_reason:
            task.abort_state = task.state
            task.abort_reason = "e-stop engaged: task ended, the arm holds its position"

    def _on_cancel(self, goal_handle: Any) -> CancelResponse:
        """Accept a cancel; when the goal's task runs, stop the arm now (the tick ends the task)."""
        task = self.task
        if task is not None and task.goal_handle is goal_handle:
            task.cancel_requested = True
            if task.state == "wait_motion":
                self.motion_cancel_pub.publish(Empty())
        return CancelResponse.ACCEPT

    async def _execute_goal(self, goal_handle: Any) -> Any:
        """Run one goal: start its task and await its end (feedback is sent by the task machine).

        A coroutine: the single-threaded executor goes on with every other callback while it waits.
        """
        req = goal_handle.request
        task_id = bytes(goal_handle.goal_id.uuid).hex()
        with self._start_lock:
            self._claimed = False
            if goal_handle.is_cancel_requested:
                outcome, reason = "cancelled", "cancelled before it started"
            else:
                outcome, reason = self._start_task(req.instruction, task_id, goal_handle,
                                                   int(req.max_attempts), float(req.timeout_s))
            task = self.task if not outcome else None
        if task is None:
            if outcome == "cancelled":
                goal_handle.canceled()
            else:
                goal_handle.abort()
            return Manipulate.Result(success=False, outcome=outcome, reason=reason)
        r = task.result if task.done.is_set() else await task.finished
        result = Manipulate.Result(success=bool(r["success"]), outcome=r["outcome"], reason=r["reason"],
                                   stages=r["stages"], poses=r["poses"],
                                   attempts=min(255, int(r["attempts"])))
        if r["success"]:
            goal_handle.succeed()
        elif r["outcome"] == "cancelled" and goal_handle.is_cancel_requested:
            goal_handle.canceled()
        else:
            goal_handle.abort()
        return result

    def _on_cloud(self, msg: PointCloud2) -> None:
        self.cloud = (time_to_s(msg.header.stamp), msg)

    def _on_status(self, msg: String) -> None:
        try:
            ev = json.loads(msg.data)
        except json.JSONDecodeError:
            return
        if not isinstance(ev, dict) or ev.get("node") == NODE:
            return
        if ev.get("event") == "motion_started" and ev.get("node") == EXECUTOR_NODE:
            # only the executor's motions count: the simulated controller reports each trajectory it
            # starts tracking too, and its report of the one a cancel just stopped can arrive after
            # the executor's motion_done; it would then mark the arm as moving until the next motion
            # and make the next task wait for fresh camera frames (0.5 s) for nothing
            self._motion_running = True
        if ev.get("event") in ("motion_done", "motion_refused"):
            self.motion_result = ev
            self._motion_running = False
            self._last_motion_end_s = self._now()
        elif (ev.get("event") == "node_exited" and self.task is not None
              and ev.get("name") in ("perception", EXECUTOR_NODE, "sim_bridge")):
            self.motion_cancel_pub.publish(Empty())  # an executor waiting on a dead robot/sim stops now
            self._end(False, f"node '{ev.get('name')}' died mid-task ({ev.get('exit', '?')}); the launcher "
                             "restarts it, send the instruction again", reason="node_died")
        elif ev.get("event") == "cameras_silent" and self.task is not None:
            # perception waited for camera frames on our cloud request in vain: no cloud will come
            self._end(False, f"no feature cloud: {ev.get('detail', 'the cameras are silent')}; check the "
                             "cameras, then send the instruction again", reason="cameras_silent",
                      cameras=ev.get("cameras", []))

    def _watchdog(self) -> None:
        """Steady-clock check: end the task when the ROS (simulated) clock has stopped."""
        now, wall = self._now(), self._steady.now().nanoseconds * 1e-9
        if now != self._clock_seen[0]:
            self._clock_seen = (now, wall)
        elif self.task is not None and wall - self._clock_seen[1] > self.clock_stall_s:
            self.motion_cancel_pub.publish(Empty())
            self._end(False, f"the clock stopped: no time update for {wall - self._clock_seen[1]:.0f} s "
                             "(is the sim bridge / robot driver publishing /clock?)", reason="clock_stopped")

    # ------------------------------------------------------------------ task machine
    def _tick(self) -> None:
        task = self.task
        if task is None:
            return
        now = self._now()
        if task.abort_reason:  # e-stop: the executor already holds the arm
            self._end(False, task.abort_reason, reason="estop", interrupted=task.abort_state)
            return
        if task.cancel_requested or (task.deadline_s and now > task.deadline_s):
            cancelled = task.cancel_requested
            if task.state == "wait_motion":  # stop the arm where it is; the executor stays ready
                self.motion_cancel_pub.publish(Empty())
            self._end(False, "cancelled by the client: arm stopped" if cancelled
                      else "task timeout_s reached: arm stopped",
                      outcome="cancelled" if cancelled else "failed")
            return
        if task.state == "need_cloud":
            self._feedback(task, "perceiving")
            task.requested_s = now
            task.waiting_since_s = now
            task.fresh_after_s = self._fresh_after(task, now)
            task.state = "wait_cloud"
            # a cloud stamped in the future comes from before a clock reset (the simulator restarted)
            fresh = self.cloud is not None and task.fresh_after_s <= self.cloud[0] <= now + 1.0
            self.cloud = self.cloud if fresh else None
            self.request_pub.publish(Empty())
        elif task.state == "wait_cloud":
            if self.cloud is not None and task.fresh_after_s <= self.cloud[0] <= now + 1.0:
                self._start_decision(task, self.cloud[1])
            elif now - task.waiting_since_s > self.cloud_timeout_s:
                self._end(False, f"no feature cloud newer than the request within "
                                 f"{self.cloud_timeout_s:.0f} s; is the perception node running?")
        elif task.state == "deciding":
            if task.decision is not None:  # the worker has finished; act on its decision here
                task.worker, (decision, error) = None, task.decision
                task.decision = None
                self._apply_decision(task, decision, error)
        elif task.state == "wait_motion":
            if self.motion_result is not None:
                ev, self.motion_result = self.motion_result, None
                self._motion_finished(task, ev)
            elif now - task.waiting_since_s > self.motion_timeout_s:
                self._end(False, f"no motion_done from the executor within {self.motion_timeout_s:.0f} s")

    def _fresh_after(self, task: _Task, now: float) -> float:
        """The oldest cloud stamp (frames' time) the next decision may use.

        The first decision of a task may use frames up to ``max_cloud_age_s`` old, but never frames
        from before the last motion ended: the arm has stood still since, so the scene is as they
        show it, and the robot answers without waiting for the next camera frames (up to a camera
        period, 0.5 s in the sim). Every later decision (a retry, the place stage) follows a
        motion of this task and waits for a cloud taken after its request.
        """
        if self._last_motion_end_s > now:  # the clock went back (the simulator restarted)
            self._last_motion_end_s = 0.0
        if (task.core.decisions > 0 or task.core.stage_index > 0 or self.max_cloud_age_s <= 0
                or self._motion_running):
            return now
        return max(now - self.max_cloud_age_s, self._last_motion_end_s)

    def _start_decision(self, task: _Task, msg: PointCloud2) -> None:
        """Decide on ``msg`` in a worker thread; the tick collects the result (state ``deciding``)."""
        kind, text, exclude = task.core.stage.kind, task.core.stage.text, list(task.core.exclude)
        task.cloud_age_s = task.requested_s - time_to_s(msg.header.stamp)  # > 0: frames before the request

        def work() -> None:
            try:
                task.decision = (self._decide(msg, kind, text, exclude), None)
            except Exception as exc:  # noqa: BLE001 - any failure ends the task with a clear status
                task.decision = (None, exc)

        task.state = "deciding"
        task.worker = threading.Thread(target=work, name="policy-decide", daemon=True)
        task.worker.start()

    def _decide(self, msg: PointCloud2, kind: str, text: str, exclude: list[Any]) -> Any:
        """The policy's decision on one feature cloud (worker thread; touches no node state)."""
        xyz, rgb, feats = pointcloud2_to_numpy(msg)
        if feats is None:
            raise ValueError("the feature cloud has no f0.. feature channels")
        ok = np.isfinite(xyz).all(1)
        cloud = _Cloud(xyz[ok], feats[ok], None if rgb is None else rgb[ok])
        with self._decide_lock:
            return self._policy.decide(cloud, text, self._encoder, kind=kind, exclude=exclude)

    def _apply_decision(self, task: _Task, decision: Any, error: Exception | None) -> None:
        """Act on a finished decision: publish the pose, retry, or end the task (executor thread)."""
        kind, text = task.core.stage.kind, task.core.stage.text
        if error is not None:
            self._end(False, f"policy could not decide: {error}")
            return
        rel = decision.relevance
        if decision.outcome == "target_not_found":
            self._status("target_not_found", "warn", f"nothing in the scene matches {text!r}",
                         presence=rel.get("presence"), threshold=rel.get("threshold"))
            self._end(False, "target not found", outcome="target_not_found")
            return
        if decision.outcome == "not_understood":
            self._status("instruction_not_understood", "warn", decision.reason, instruction=text)
            self._end(False, decision.reason, outcome="not_understood")
            return
        if decision.outcome != "ok":
            self._next(task, task.core.decided(decision.outcome, None, f"no {kind} candidates in the cloud"))
            return
        if task.cancel_requested or task.abort_reason:  # stopped while deciding: the tick ends it
            return
        task.core.decided("ok", decision.pose)  # -> Step.EXECUTE
        stamp = self._now()
        self.cands_pub.publish(matrices_to_pose_array(decision.candidates, self.frame_id, stamp))
        pub = self.grasp_pub if kind == "grasp" else self.place_pub
        pose_msg = matrix_to_pose_stamped(decision.pose, self.frame_id, stamp)
        pub.publish(pose_msg)
        task.poses = task.poses[:task.core.stage_index] + [pose_msg]
        task.state = "wait_motion"
        task.waiting_since_s = self._now()
        self.motion_result = None
        self._feedback(task, "moving", pose_msg)
        what = f"{kind} candidate {decision.index} of {len(decision.candidates)}"
        self._status(f"{kind}_selected", "info", what,
                     instruction=text, attempt=task.core.attempt + 1,
                     score=float(decision.scores[decision.index]),
                     position=decision.pose[:3, 3], presence=rel.get("presence"),
                     timings_ms=decision.timings_ms, cloud_age_s=round(task.cloud_age_s, 3),
                     scores=[round(float(p), 5) for p in decision.scores])  # per candidate, as published

    def _motion_finished(self, task: _Task, ev: dict[str, Any]) -> None:
        ok = ev.get("event") == "motion_done" and bool(ev.get("success"))
        self._next(task, task.core.motion_finished(ok, "" if ok else str(ev.get("detail", ev.get("event")))))

    def _next(self, task: _Task, step: Step) -> None:
        """Carry out the task core's next step (after a decision without a pose or a motion result)."""
        if step is Step.DONE:
            r = task.core.result
            self._end(r.success, r.reason, outcome=r.outcome)
        elif step is Step.RETRY:
            self._status("retrying", "warn", f"{task.core.last_failure}; retrying with a fresh cloud",
                         attempt=task.core.attempt + 1)
            self._feedback(task, "retrying")
            task.state = "need_cloud"
        else:  # Step.PERCEIVE: the next stage
            task.state = "need_cloud"


def main(args: list[str] | None = None) -> None:
    """Run the policy node until shut down."""
    spin_node(PolicyNode, args)


if __name__ == "__main__":
    main()
