# SPDX-License-Identifier: Apache-2.0
"""The learned policy behind ``vla eval``'s policy interface, so it runs the benchmark protocol.

``act(frames, instruction_text, robot_state)`` does exactly what the ROS graph does for one
decision, in one process: perception (CLIP dense features + multi-view fusion,
``vla_perception.pipeline.PerceptionPipeline``) on the rendered RGB-D frames, then
``Policy.decide`` on the fused cloud. It sees no simulator state: frames, text and the robot's
own phase only. ``vla eval`` runs each episode through the same task core as the policy node
(``vla_common.task``): it passes the stage's canonical text and the core's exclusions of failed
poses (``robot_state['exclude']``), reads the instruction with :meth:`understand` and a refusal
from :attr:`last_outcome`.

Usage::

    vla eval --policy vla_policy.sim_adapter:make_sr --task grasp --split seen --episodes 20
    vla eval --policy vla_policy.sim_adapter:make_sr_mgfa --task grasp --split unseen
    VLA_POLICY_CHECKPOINT=runs/SR/best vla eval --policy vla_policy.sim_adapter:make_checkpoint ...

One factory per shipped variant: ``make_base``, ``make_sr_a``, ``make_sr``, ``make_sr_posa``,
``make_sr_mgfa``, ``make_sr_relu``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from vla_common.camera import RGBDFrame

logger = logging.getLogger(__name__)


class LearnedSimPolicy:
    """Perception + a shipped (or given) policy checkpoint as a ``vla_sim.evaluation.Policy``.

    Args:
        checkpoint: shipped variant name (``SR``, ``SR+MGFA``) or a checkpoint directory.
        clip_model: CLIP for both the point features and the instruction (must match training).
        exclude_radius_m: candidates within this distance of an earlier failed pose are skipped.
    """

    privileged = False
    needs_frames = True

    def __init__(self, checkpoint: str = "SR", clip_model: str = "compact",
                 exclude_radius_m: float = 0.03) -> None:
        from vla_perception.pipeline import PerceptionPipeline
        from vla_policy.policy import Policy

        self.name = f"learned:{checkpoint}"
        self.policy = Policy.load(checkpoint)
        self.pipeline = PerceptionPipeline({"clip_model": clip_model})
        self.exclude_radius_m = float(exclude_radius_m)
        self._tried: list[np.ndarray] = []
        self.last_decision: Any = None
        self.last_outcome: tuple[str, str] | None = None  # (outcome, reason) of a decision without a pose

    def reset(self) -> None:
        """Forget the failed poses of the previous episode."""
        self._tried = []

    def understand(self, instruction: str) -> Any:
        """The instruction's stages as the policy node reads them (raises NotUnderstood)."""
        return self.policy.understand(instruction)

    def act(self, frames: list[RGBDFrame], instruction_text: str,
            robot_state: dict[str, Any]) -> np.ndarray | None:
        """(4, 4) world TCP pose for ``robot_state['phase']`` (grasp or place), or None."""
        kind = "place" if robot_state.get("phase") == "place" else "grasp"
        cloud = self.pipeline.process(frames)
        if "exclude" in robot_state:  # the task core's exclusions (vla eval)
            exclude = list(robot_state["exclude"]) or None
        else:
            exclude = [(p, self.exclude_radius_m) for p in self._tried] if kind == "grasp" else None
        decision = self.policy.decide(cloud, instruction_text, text_encoder=self.pipeline.clip, kind=kind,
                                      exclude=exclude)
        self.last_decision = decision
        pose = getattr(decision, "pose", None)
        self.last_outcome = None if pose is not None else (
            str(getattr(decision, "outcome", "no_candidates")), str(getattr(decision, "reason", "")))
        if pose is None:
            logger.info("policy proposed nothing for %r (%s)", instruction_text,
                        getattr(decision, "outcome", ""))
            return None
        if kind == "grasp":  # an episode's next attempt comes only after this one failed
            self._tried.append(np.asarray(pose)[:3, 3].copy())
        return np.asarray(pose, dtype=np.float64)


CHECKPOINT_ENV = "VLA_POLICY_CHECKPOINT"


def make_sr() -> LearnedSimPolicy:
    """The shipped SR checkpoint (two-stage + DSSA) with the compact CLIP."""
    return LearnedSimPolicy("SR")


def make_sr_mgfa() -> LearnedSimPolicy:
    """The shipped SR+MGFA checkpoint with the compact CLIP."""
    return LearnedSimPolicy("SR+MGFA")


def make_base() -> LearnedSimPolicy:
    """The shipped BASE checkpoint (2-Align over the whole cloud, no 1-Align)."""
    return LearnedSimPolicy("BASE")


def make_sr_a() -> LearnedSimPolicy:
    """The shipped SR-A checkpoint (two-stage, softmax attention)."""
    return LearnedSimPolicy("SR-A")


def make_sr_posa() -> LearnedSimPolicy:
    """The shipped SR+PosA checkpoint (SR + the pose-conditioned anchor)."""
    return LearnedSimPolicy("SR+PosA")


def make_sr_relu() -> LearnedSimPolicy:
    """The shipped SR-ReLU checkpoint (SR with plain ReLU attention)."""
    return LearnedSimPolicy("SR-ReLU")


def make_checkpoint() -> LearnedSimPolicy:
    """The checkpoint named by ``$VLA_POLICY_CHECKPOINT`` (a variant name or a run's ``best/``).

    For evaluating a training run before it is installed::

        VLA_POLICY_CHECKPOINT=runs/SR/best vla eval --policy vla_policy.sim_adapter:make_checkpoint ...
    """
    import os

    checkpoint = os.environ.get(CHECKPOINT_ENV)
    if not checkpoint:
        raise ValueError(f"make_checkpoint needs ${CHECKPOINT_ENV}: a shipped variant name or a checkpoint "
                         "directory")
    return LearnedSimPolicy(checkpoint)
