# SPDX-License-Identifier: Apache-2.0
"""The executor's state machine in plain Python (no rclpy): requests, step sequencing, e-stop.

``ExecutionCore`` turns grasp/place requests into commands and status events; the ROS node
(executor_node.py) only converts messages. Inputs: ``on_joint_state``, ``request``, ``estop``,
``tick`` (all take the current time in seconds from the node clock, which is sim time in sim).
Outputs: a list of ``SendTrajectory`` / ``SendGripper`` / ``Status`` commands per call.

Completion is observed, never slept on: an arm step is done when the measured joints are within
``goal_tolerance_rad`` of the segment's last point and nearly still; a gripper step when the
measured width has settled. E-stop: at once an empty trajectory (stop and hold where you are) is
sent (SendStop), the sequence is dropped, and every request is refused until the e-stop is released.
Cancel (``cancel``): the same stop, but the executor is ready for the next request at once.

Threads: the node calls ``estop`` / ``cancel`` from their own callback group while another thread
may be inside ``request`` (planning, up to ``planning_timeout_s``) or inside a blocking MoveIt
``execute``. Both stop paths bump a stop counter and call ``backend.stop()`` first, without waiting
for any lock: a plan that finishes after a stop is discarded (``motion_refused``, nothing is sent),
and a blocking execution returns early and runs no further step. State changes are serialised by
one lock, which is never held while planning.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vla_executor.backends import MotionBackend, PoseGoal, Step
from vla_executor.metrics import rms_jerk
from vla_executor.motions import GripperAction, MotionError, Segment, grasp_held
from vla_executor.robot_model import RobotModel
from vla_executor.safety import check_trajectory
from vla_executor.timing import Trajectory


@dataclass
class SendTrajectory:
    """Publish this trajectory on the arm controller topic (replaces any running one)."""

    traj: Trajectory
    joint_names: list[str]


@dataclass
class SendStop:
    """Publish an empty trajectory: the controller stops and holds its current position at once.

    (ros2_control's JointTrajectoryController and vla_sim's bridge both treat an empty
    trajectory this way; it is exact, unlike re-sending the last measured position, which is
    one /joint_states period stale while the arm moves.)
    """

    joint_names: list[str]


@dataclass
class SendGripper:
    """Publish a gripper command: 1.0 open, 0.0 closed."""

    value: float


@dataclass
class Status:
    """A /vla/status event (see docs/ARCHITECTURE.md)."""

    event: str
    level: str
    detail: str
    fields: dict[str, Any] = field(default_factory=dict)


Command = SendTrajectory | SendStop | SendGripper | Status


class State(enum.Enum):
    """Executor states."""

    IDLE = "idle"
    RUNNING = "running"
    ESTOPPED = "estopped"


@dataclass
class ExecutionParams:
    """Completion and timeout parameters.

    Args:
        goal_tolerance_rad: max joint error to call an arm step done.
        still_velocity_rad_s: max joint speed to call an arm step done (when velocities are known).
        goal_timeout_s: extra time after a segment's duration before it counts as failed.
        gripper_settle_s: the width must change less than ``gripper_settle_m`` over this window.
        gripper_settle_m: see above.
        gripper_min_time_s: minimum time after a gripper command before checking it settled.
        gripper_timeout_s: give up waiting for the gripper after this.
    """

    goal_tolerance_rad: float = 0.02
    still_velocity_rad_s: float = 0.05
    goal_timeout_s: float = 3.0
    gripper_settle_s: float = 0.25
    gripper_settle_m: float = 0.0005
    gripper_min_time_s: float = 0.3
    gripper_timeout_s: float = 2.5


class ExecutionCore:
    """Sequencing, completion, e-stop and status for grasp/place motions.

    Args:
        model: robot.
        backend: builtin or MoveIt backend (its plan_grasp/plan_place give the steps).
        params: completion parameters.
    """

    def __init__(self, model: RobotModel, backend: MotionBackend, params: ExecutionParams | None = None):
        self.model = model
        self.backend = backend
        self.params = params or ExecutionParams()
        self.state = State.IDLE
        self.q: np.ndarray | None = None
        self.qd: np.ndarray | None = None
        self.width: float | None = None
        self._steps: list[Step] = []
        self._kind = ""
        self._step_started = 0.0
        self._step_deadline = 0.0
        self._goal: np.ndarray | None = None
        self._width_hist: list[tuple[float, float]] = []
        self._t_start = 0.0
        self._samples: list[tuple[float, np.ndarray]] = []
        self._planned_metrics: dict[str, float] = {}
        self._grasp_ok: bool | None = None
        self._lock = threading.RLock()
        self._stop_gen = 0         # bumped by every e-stop / cancel (read by planning and execution)
        self._planning = False

    # ------------------------------------------------------------------ inputs
    def on_joint_state(self, t_s: float, names: list[str], position: np.ndarray,
                       velocity: np.ndarray | None = None) -> list[Command]:
        """Update the measured state from a JointState (names may come in any order)."""
        with self._lock:
            return self._on_joint_state(t_s, names, position, velocity)

    def _on_joint_state(self, t_s: float, names: list[str], position: np.ndarray,
                        velocity: np.ndarray | None) -> list[Command]:
        index = {n: i for i, n in enumerate(names)}
        if all(n in index for n in self.model.joint_names):
            idx = [index[n] for n in self.model.joint_names]
            self.q = np.asarray(position, dtype=np.float64)[idx]
            if velocity is not None and len(velocity) == len(names):
                self.qd = np.asarray(velocity, dtype=np.float64)[idx]
        gj = self.model.gripper.get("joints", [])
        if gj and all(n in index for n in gj):
            self.width = float(sum(position[index[n]] for n in gj))
            self._width_hist.append((t_s, self.width))
            # (entries from the future: the clock was reset, e.g. the simulator restarted)
            self._width_hist = [(t, w) for t, w in self._width_hist if t_s - 2.0 <= t <= t_s]
        if self.state is State.RUNNING and self.q is not None:
            self._samples.append((t_s, self.q.copy()))
        return self.tick(t_s)

    def request(self, t_s: float, kind: str, T_base_tool: np.ndarray) -> list[Command]:
        """A grasp or place request (TCP pose in the base frame): :meth:`admit`, then plan here."""
        refused, ticket = self.admit(kind)
        if ticket is None:
            return refused
        return self.plan_admitted(t_s, kind, T_base_tool, ticket)

    def admit(self, kind: str) -> tuple[list[Command], tuple[int, np.ndarray] | None]:
        """The quick checks of a request, in the caller's thread and order.

        Returns ``([refusal], None)``, or ``([], ticket)`` with planning reserved (a further request
        is refused as busy) until :meth:`plan_admitted` with that ticket has returned.
        """
        if kind not in ("grasp", "place"):
            raise ValueError(f"kind must be 'grasp' or 'place', got {kind!r}")
        with self._lock:
            if self.state is State.ESTOPPED:
                return [self._refused(kind, "estop_active",
                                      "e-stop is engaged; release it on /vla/estop first")], None
            if self.state is State.RUNNING or self._planning:
                return [self._refused(kind, "busy", f"a {self._kind or kind} motion is still running")], None
            if self.q is None:
                return [self._refused(kind, "no_joint_state", "no /joint_states received yet")], None
            self._planning = True
            return [], (self._stop_gen, self.q.copy())

    def plan_admitted(self, t_s: float, kind: str, T_base_tool: np.ndarray, ticket: tuple[int, np.ndarray],
                      prepare: Callable[[], None] | None = None) -> list[Command]:
        """Plan an admitted request and start it; may run in a worker thread.

        ``prepare`` runs first, inside the reservation (the node updates its collision world there).
        Planning runs without the lock: an e-stop or cancel meanwhile discards the plan.
        """
        gen, q0 = ticket
        try:
            if prepare is not None:
                prepare()
            plan = self.backend.plan_grasp if kind == "grasp" else self.backend.plan_place
            steps = plan(q0, np.asarray(T_base_tool, dtype=np.float64))
        except MotionError as exc:
            return [self._refused(kind, exc.reason, exc.detail)]
        finally:
            self._planning = False
        with self._lock:
            if self._stop_gen != gen:
                why = "e-stop" if self.state is State.ESTOPPED else "cancel"
                return [self._refused(kind, "estop_active" if why == "e-stop" else "cancelled",
                                      f"{why} while planning: the plan was discarded, nothing was sent")]
            return self._begin(t_s, kind, steps)

    def _begin(self, t_s: float, kind: str, steps: list[Step]) -> list[Command]:
        last = getattr(self.backend, "last_plan", None)
        self._planned_metrics = last.metrics() if last is not None else {}
        timings = dict(last.timings_s) if last is not None else {}
        self._kind, self._steps, self.state = kind, list(steps), State.RUNNING
        self._t_start, self._samples, self._grasp_ok = t_s, [], None
        out: list[Command] = [Status("motion_started", "info", f"{kind}: {len(steps)} steps",
                                     {"kind": kind, "steps": [s.name for s in steps],
                                      "planning": timings, "planned": self._planned_metrics})]
        return out + self._start_step(t_s)

    def estop(self, t_s: float, engaged: bool) -> list[Command]:
        """Engage (hold position now, refuse motions) or release the e-stop."""
        if engaged:
            self._stop_gen += 1  # seen at once by a planning thread or a blocking execution
            self.backend.stop()
        with self._lock:
            return self._estop(t_s, engaged)

    def cancel(self, t_s: float) -> list[Command]:
        """Stop the running motion now (hold position) and drop its sequence; stay ready for requests.

        The running motion ends with ``motion_done`` (success false, reason ``cancelled``); a plan
        being made is discarded when it finishes. Nothing happens when idle (no stop is sent).
        """
        busy = self.state is State.RUNNING or self._planning
        if not busy:
            return []
        self._stop_gen += 1
        self.backend.stop()
        with self._lock:
            if self.state is not State.RUNNING:  # was planning: request() reports the discarded plan
                return [SendStop(list(self.model.joint_names))]
            self.state, self._steps = State.IDLE, []
            return [SendStop(list(self.model.joint_names)),
                    Status("motion_done", "warn", f"{self._kind} cancelled: holding position",
                           {"kind": self._kind, "success": False, "reason": "cancelled"})]

    def _estop(self, t_s: float, engaged: bool) -> list[Command]:
        if engaged:
            was = self.state
            self.state = State.ESTOPPED
            self._steps = []
            out: list[Command] = []
            out.append(SendStop(list(self.model.joint_names)))
            out.append(Status("estop", "error", "e-stop engaged: holding position, motions refused",
                              {"engaged": True, "interrupted": was is State.RUNNING, "kind": self._kind,
                               "planning": self._planning, "t_s": t_s}))
            if was is State.RUNNING:
                out.append(Status("motion_done", "error", f"{self._kind} interrupted by e-stop",
                                  {"kind": self._kind, "success": False, "reason": "estop"}))
            return out
        if self.state is State.ESTOPPED:
            self.state = State.IDLE
            return [Status("estop", "info", "e-stop released", {"engaged": False})]
        return []

    def tick(self, t_s: float) -> list[Command]:
        """Advance the sequence when the current step has finished (or timed out)."""
        with self._lock:
            return self._tick(t_s)

    def _tick(self, t_s: float) -> list[Command]:
        if self.state is not State.RUNNING or not self._steps:
            return []
        step = self._steps[0]
        if isinstance(step, GripperAction):
            done = self._gripper_settled(t_s)
            if not done and t_s < self._step_deadline:
                return []
            if not step.open:
                self._grasp_ok = self.width is not None and grasp_held(self.width, self.model.gripper)
        elif isinstance(step, Segment):
            if not self._arm_reached():
                if t_s > self._step_deadline:
                    return self._finish(t_s, False, "tracking_timeout",
                                        f"{step.name}: the arm did not reach the segment's end in time")
                return []
        self._steps.pop(0)
        if not self._steps:
            if self._kind == "grasp" and self._grasp_ok is False:
                return self._finish(t_s, False, "grasp_empty",
                                    f"gripper closed to {self.width:.4f} m: nothing held")
            return self._finish(t_s, True, "", "done")
        return self._start_step(t_s)

    # ------------------------------------------------------------------ internals
    def _start_step(self, t_s: float) -> list[Command]:
        out: list[Command] = []
        while self._steps:
            step = self._steps[0]
            self._step_started = t_s
            if isinstance(step, GripperAction):
                self._step_deadline = t_s + self.params.gripper_timeout_s
                return out + [SendGripper(1.0 if step.open else 0.0)]
            if isinstance(step, Segment):
                rep = check_trajectory(self.model, step.traj)  # every backend, right before it is sent
                if not rep:
                    return out + self._finish(t_s, False, rep.reason, f"{step.name}: {rep.detail}")
                self._goal = step.traj.q[-1]
                self._step_deadline = t_s + step.traj.duration + self.params.goal_timeout_s
                return out + [SendTrajectory(step.traj, list(self.model.joint_names))]
            if isinstance(step, PoseGoal):  # blocking backends (MoveIt): plan and run now
                gen = self._stop_gen
                try:
                    motion = self.backend.plan_to_pose(step.T_base_tool, self.q, step.name)
                    if self._stop_gen != gen:
                        return out  # stopped while planning: the stop path reports it
                    ok = self.backend.execute(motion)
                except MotionError as exc:
                    return out + self._finish(t_s, False, exc.reason, exc.detail)
                if self._stop_gen != gen:
                    return out  # stopped during the execution: nothing further runs
                if not ok:
                    return out + self._finish(t_s, False, "execution_failed",
                                              f"{step.name}: MoveIt execution failed")
                self._steps.pop(0)
                continue
            raise TypeError(f"unknown step type {type(step).__name__}")
        return out + self._finish(t_s, self._grasp_ok is not False, "", "done")

    def _arm_reached(self) -> bool:
        if self.q is None or self._goal is None:
            return False
        if np.abs(self.q - self._goal).max() > self.params.goal_tolerance_rad:
            return False
        return self.qd is None or np.abs(self.qd).max() < self.params.still_velocity_rad_s

    def _gripper_settled(self, t_s: float) -> bool:
        p = self.params
        if t_s < self._step_started + p.gripper_min_time_s:
            return False
        window = [w for t, w in self._width_hist if t >= t_s - p.gripper_settle_s and t >= self._step_started]
        return len(window) >= 2 and max(window) - min(window) < p.gripper_settle_m

    def _finish(self, t_s: float, success: bool, reason: str, detail: str) -> list[Command]:
        self.state = State.IDLE if self.state is State.RUNNING else self.state
        self._steps = []
        measured: dict[str, float] = {"execution_time_s": t_s - self._t_start}
        if len(self._samples) >= 4:
            ts = np.array([s[0] for s in self._samples])
            qs = np.stack([s[1] for s in self._samples])
            keep = np.concatenate([[True], np.diff(ts) > 1e-6])
            measured["rms_jerk_measured"] = rms_jerk(ts[keep], qs[keep])
        fields = {"kind": self._kind, "success": success, "reason": reason, "metrics": self._planned_metrics,
                  "measured": measured}
        if self._kind == "grasp":
            fields["gripper_width_m"] = self.width
        return [Status("motion_done", "info" if success else "warn", f"{self._kind}: {detail}", fields)]

    def _refused(self, kind: str, reason: str, detail: str) -> Status:
        return Status("motion_refused", "warn", f"{kind} refused: {detail}", {"kind": kind, "reason": reason})
