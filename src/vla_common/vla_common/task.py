# SPDX-License-Identifier: Apache-2.0
"""The one task core: an instruction's stages, attempts, exclusions and its one final outcome.

Plain Python (no rclpy, no simulator). The ROS policy node (``vla_policy.policy_node``) and the
benchmark (``vla eval``, ``vla_sim.evaluation``) both drive a :class:`TaskCore`; each supplies
only its transport: how a decision is obtained (a fresh feature cloud in the graph, rendered frames
in the benchmark) and how a pose is executed (``vla_executor`` over ROS, or the same executor
in-process against the simulator). So retries, exclusions and outcomes cannot drift apart between
the robot and the benchmark.

Life cycle::

    core = TaskCore(instruction, parsed.stages(), max_attempts=8)
    while not core.done:
        stage = core.stage                      # Stage(kind, text): what to decide now
        pose = ...decide(stage.text, stage.kind, core.exclude)...
        step = core.decided("ok", pose)        # or ("target_not_found", None, why), ...
        if step is Step.EXECUTE:
            ok, why = ...execute(stage.kind, pose)...
            step = core.motion_finished(ok, why)
    core.result                                 # TaskResult: outcome, reason, attempts, poses

Rules (the same for both callers):

* an attempt is one decision; ``decided("ok", pose)`` asks the caller to execute the pose;
* a decision without a pose (no candidates) or a failed motion is a failed attempt: the failed
  pose's position is excluded (``exclude_radius_m``) and the stage is tried again, up to
  ``max_attempts`` per grasp stage and ``max_place_attempts`` per place stage;
* ``target_not_found`` and ``not_understood`` decisions end the task at once with that outcome
  (the robot never grasps something else instead);
* a successful motion completes the stage; after the last stage the task has succeeded;
* :meth:`TaskCore.end` ends it from outside (timeouts, e-stop, cancel, a dead node); the first
  final outcome wins, later ones are ignored, so every task has exactly one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

OUTCOMES = ("succeeded", "failed", "target_not_found", "not_understood", "refused", "cancelled")
MAX_ATTEMPTS = 8  # the benchmark protocol's limit per grasp stage (Secondary Realignment A2)


class Step(enum.Enum):
    """What the caller does next."""

    EXECUTE = "execute"  # send the pose just decided to the executor
    PERCEIVE = "perceive"  # decide the (next) stage on fresh sensor data
    RETRY = "retry"  # the attempt failed: decide the same stage again on fresh data
    DONE = "done"  # the task has ended; see TaskCore.result


@dataclass(frozen=True)
class Stage:
    """One stage of a task: ``kind`` (grasp | place) and the canonical text the policy reads."""

    kind: str
    text: str


@dataclass
class TaskResult:
    """How a task ended (one per task)."""

    success: bool
    outcome: str  # one of OUTCOMES
    reason: str
    attempts: int  # decisions made over all stages
    stage_kinds: list[str]
    poses: list[np.ndarray]  # (4, 4) world pose chosen per stage reached (last attempt of each)
    failed_stage: str = ""  # kind of the stage it ended in, when it did not succeed


@dataclass
class TaskCore:
    """Stages, attempts, exclusions and the final outcome of one task (module docstring).

    Args:
        instruction: the sentence as received (for the result and status events).
        stages: ``[(kind, text), ...]`` from ``ParsedInstruction.stages()``.
        max_attempts: decisions allowed per grasp stage (1..8).
        max_place_attempts: decisions allowed per place stage (default: ``max_attempts``; the
            benchmark protocol allows one).
        exclude_radius_m: radius around a failed pose whose candidates later attempts skip.
    """

    instruction: str
    stages: list[tuple[str, str]]
    max_attempts: int = MAX_ATTEMPTS
    max_place_attempts: int | None = None
    exclude_radius_m: float = 0.03
    stage_index: int = 0
    attempt: int = 0  # failed attempts of the current stage
    decisions: int = 0
    exclude: list[tuple[np.ndarray, float]] = field(default_factory=list)
    poses: list[np.ndarray] = field(default_factory=list)
    result: TaskResult | None = None
    last_failure: str = ""  # why the last attempt failed (for the caller's "retrying" status)
    _pending: np.ndarray | None = None  # pose decided and being executed

    def __post_init__(self) -> None:
        if not self.stages:
            raise ValueError("a task needs at least one stage")
        for kind, _ in self.stages:
            if kind not in ("grasp", "place"):
                raise ValueError(f"stage kind must be 'grasp' or 'place', got {kind!r}")
        if not 1 <= int(self.max_attempts) <= MAX_ATTEMPTS:
            raise ValueError(f"max_attempts must be 1..{MAX_ATTEMPTS}, got {self.max_attempts}")
        if self.max_place_attempts is not None and not 1 <= int(self.max_place_attempts) <= MAX_ATTEMPTS:
            raise ValueError(f"max_place_attempts must be 1..{MAX_ATTEMPTS}, got {self.max_place_attempts}")
        if not self.exclude_radius_m >= 0:
            raise ValueError(f"exclude_radius_m must be >= 0, got {self.exclude_radius_m}")

    # ------------------------------------------------------------------ queries
    @property
    def done(self) -> bool:
        """Whether the task has its final outcome."""
        return self.result is not None

    @property
    def stage(self) -> Stage:
        """The stage to decide or being executed (the last one once done)."""
        kind, text = self.stages[min(self.stage_index, len(self.stages) - 1)]
        return Stage(kind, text)

    @property
    def attempts_allowed(self) -> int:
        """Decisions allowed for the current stage."""
        if self.stage.kind == "place" and self.max_place_attempts is not None:
            return int(self.max_place_attempts)
        return int(self.max_attempts)

    # ------------------------------------------------------------------ inputs
    def decided(self, outcome: str, pose: np.ndarray | None = None, reason: str = "") -> Step:
        """Record the policy's decision for the current stage.

        Args:
            outcome: ``ok`` (``pose`` given), ``target_not_found``, ``not_understood``, or anything
                else for a decision without a pose (e.g. ``no_candidates``).
            pose: (4, 4) world TCP pose when ``ok``.
            reason: why, for a decision without a pose.
        """
        self._check_open()
        self.decisions += 1
        if outcome == "ok" and pose is not None:
            self._pending = np.array(pose, dtype=np.float64)
            self.poses = self.poses[:self.stage_index] + [self._pending.copy()]
            return Step.EXECUTE
        if outcome in ("target_not_found", "not_understood"):
            return self.end(False, outcome, reason or outcome.replace("_", " "))
        return self._attempt_failed(reason or f"no {self.stage.kind} proposed")

    def motion_finished(self, success: bool, reason: str = "") -> Step:
        """The executed pose's result (for the benchmark: the judged result of the attempt)."""
        self._check_open()
        if self._pending is None:
            raise RuntimeError("motion_finished without a pose being executed")
        kind = self.stage.kind
        if success:
            self._pending = None
            self.stage_index += 1
            self.attempt = 0
            self.exclude = []
            if self.stage_index >= len(self.stages):
                return self.end(True, "succeeded", f"{kind} succeeded")
            return Step.PERCEIVE
        return self._attempt_failed(f"{kind} attempt failed" + (f": {reason}" if reason else ""))

    def end(self, success: bool, outcome: str, reason: str) -> Step:
        """End the task now (first call wins); returns :attr:`Step.DONE`."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
        if self.result is None:
            self.result = TaskResult(
                success=bool(success), outcome=outcome, reason=reason, attempts=self.decisions,
                stage_kinds=[k for k, _ in self.stages], poses=[p.copy() for p in self.poses],
                failed_stage="" if success else self.stage.kind)
        return Step.DONE

    # ------------------------------------------------------------------ internals
    def _attempt_failed(self, why: str) -> Step:
        self.attempt += 1
        if self._pending is not None:
            self.exclude.append((self._pending[:3, 3].copy(), float(self.exclude_radius_m)))
            self._pending = None
        if self.attempt >= self.attempts_allowed:
            return self.end(False, "failed", f"{why}; gave up after {self.attempt} attempts")
        self.last_failure = why
        return Step.RETRY

    def _check_open(self) -> None:
        if self.result is not None:
            raise RuntimeError(f"the task has ended ({self.result.outcome}); start a new one")
