# SPDX-License-Identifier: Apache-2.0
"""The one task core (vla_common.task): stages, attempts, exclusions and the single final outcome."""

from __future__ import annotations

import numpy as np
import pytest

from vla_common.language import parse_instruction
from vla_common.task import Step, TaskCore


def pose_at(x: float, y: float, z: float = 0.05) -> np.ndarray:
    T = np.eye(4)
    T[:3, 3] = [x, y, z]
    return T


def pickplace() -> TaskCore:
    parsed = parse_instruction("pick up the red mug and put it on the green plate")
    return TaskCore(parsed.text, parsed.stages(), max_attempts=3)


def test_pick_and_place_runs_both_stages_in_order():
    core = pickplace()
    assert [s[0] for s in core.stages] == ["grasp", "place"]
    assert core.stage.kind == "grasp" and "red mug" in core.stage.text
    assert core.decided("ok", pose_at(0.5, 0.0)) is Step.EXECUTE
    assert core.motion_finished(True) is Step.PERCEIVE
    assert core.stage.kind == "place" and "green plate" in core.stage.text
    assert core.decided("ok", pose_at(0.4, 0.2)) is Step.EXECUTE
    assert core.motion_finished(True) is Step.DONE
    r = core.result
    assert r.success and r.outcome == "succeeded" and r.attempts == 2
    assert [p[0, 3] for p in r.poses] == [0.5, 0.4]


def test_failed_attempts_exclude_the_pose_and_give_up_after_max_attempts():
    core = pickplace()
    assert core.decided("ok", pose_at(0.5, 0.0)) is Step.EXECUTE
    assert core.motion_finished(False, "grasp_empty") is Step.RETRY
    assert "grasp_empty" in core.last_failure
    assert len(core.exclude) == 1 and np.allclose(core.exclude[0][0], [0.5, 0.0, 0.05])
    assert core.decided("no_candidates", None) is Step.RETRY  # a decision without a pose is an attempt
    assert core.decided("ok", pose_at(0.6, 0.1)) is Step.EXECUTE
    assert core.motion_finished(False) is Step.DONE
    r = core.result
    assert not r.success and r.outcome == "failed" and r.failed_stage == "grasp" and r.attempts == 3
    assert "gave up after 3 attempts" in r.reason
    assert len(core.exclude) == 2


def test_exclusions_reset_for_the_next_stage_and_place_attempts_are_separate():
    core = TaskCore("x", [("grasp", "pick up the x"), ("place", "put it on the y")], max_attempts=8,
                    max_place_attempts=1)
    core.decided("ok", pose_at(0.5, 0.0))
    assert core.motion_finished(False) is Step.RETRY
    core.decided("ok", pose_at(0.55, 0.0))
    assert core.motion_finished(True) is Step.PERCEIVE
    assert core.exclude == [] and core.attempt == 0 and core.attempts_allowed == 1
    core.decided("ok", pose_at(0.4, 0.2))
    assert core.motion_finished(False, "tracking_timeout") is Step.DONE  # one place attempt (benchmark)
    assert core.result.failed_stage == "place"


@pytest.mark.parametrize("outcome", ["target_not_found", "not_understood"])
def test_refusals_end_the_task_at_once(outcome):
    core = pickplace()
    assert core.decided(outcome, None, "nothing matches 'the red mug'") is Step.DONE
    assert core.result.outcome == outcome and not core.result.success
    with pytest.raises(RuntimeError, match="has ended"):
        core.decided("ok", pose_at(0.5, 0.0))


def test_first_final_outcome_wins():
    core = pickplace()
    core.decided("ok", pose_at(0.5, 0.0))
    assert core.end(False, "cancelled", "cancelled by the client") is Step.DONE
    core.end(True, "succeeded", "late")
    assert core.result.outcome == "cancelled" and not core.result.success


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="at least one stage"):
        TaskCore("x", [])
    with pytest.raises(ValueError, match="'grasp' or 'place'"):
        TaskCore("x", [("push", "push it")])
    with pytest.raises(ValueError, match="max_attempts"):
        TaskCore("x", [("grasp", "pick up x")], max_attempts=9)
    core = TaskCore("x", [("grasp", "pick up x")])
    with pytest.raises(RuntimeError, match="without a pose"):
        core.motion_finished(True)
    with pytest.raises(ValueError, match="outcome must be"):
        core.end(False, "exploded", "?")
