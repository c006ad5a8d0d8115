# SPDX-License-Identifier: Apache-2.0
"""vla_executor driving the simulated arm in one process (what `vla eval` moves the arm with)."""

from __future__ import annotations

import numpy as np
import pytest

from vla_sim import checks
from vla_sim.evaluation import run_episode
from vla_sim.expert import ExpertPolicy
from vla_sim.instructions import Instruction
from vla_sim.scenes import CaseSet, case_path
from vla_sim.sim_executor import SimExecutor, executor_for
from vla_sim.world import SimWorld


@pytest.fixture(scope="module")
def world():
    w = SimWorld(robot="ur5", renderer="tiny", render_size=(160, 120))
    yield w
    w.close()


def test_executor_grasps_through_the_execution_core_and_reports_its_metrics(world):
    case = CaseSet.load(case_path("grasp", "seen")).cases[0]
    world.load_scene(case)
    expert = ExpertPolicy()
    expert.bind(world, Instruction.from_dict(case.instruction))
    T = expert.act([], case.instruction["text"], {"phase": "grasp"})
    z_before = checks.object_heights(world)
    ex = executor_for(world)
    assert executor_for(world) is ex  # one per world, reused across episodes
    rep = ex.run("grasp", T)
    assert rep.success and rep.reason == "", rep
    # the executor's own metrics: planned (ruckig-timed segments) and measured on the joints
    assert rep.planned["execution_time_s"] > 1.0 and rep.planned["path_length_rad"] > 0.1
    assert rep.planned["rms_jerk"] > 0 and rep.measured["execution_time_s"] >= rep.planned["execution_time_s"]
    assert 0 < rep.sim_time_s < 30
    world.step(48)
    chk = checks.check_grasp(world, Instruction.from_dict(case.instruction).targets, z_before)
    assert chk.success, chk
    lift = world.robot.tcp_pose()[2, 3] - T[2, 3]
    assert abs(lift - 0.15) < 0.01  # the executor's lift_height_m (config/executor_ur5.yaml)


def test_a_pose_outside_the_workspace_is_refused_and_nothing_moves(world):
    world.load_scene(CaseSet.load(case_path("grasp", "seen")).cases[0])
    q0 = world.joint_positions()
    T = np.eye(4)
    T[:3, :3] = np.diag([1.0, -1.0, -1.0])  # top-down
    T[:3, 3] = [0.45, 0.6, 0.05]  # y beyond the workspace box (|y| <= 0.48 m)
    with SimExecutor(world) as ex:
        rep = ex.run("grasp", T)
    assert not rep.success and rep.reason == "outside_workspace", rep
    assert np.abs(world.joint_positions() - q0).max() < 1e-3


def test_an_episode_runs_the_task_core_and_records_every_motion(world):
    # pick-and-place: two stages of one TaskCore, each executed by the executor and judged in physics
    case = CaseSet.load(case_path("pickplace", "seen")).cases[0]
    res = run_episode(world, case, ExpertPolicy())
    assert res.outcome in ("succeeded", "failed")
    assert res.success == (res.outcome == "succeeded")
    kinds = [m["kind"] for m in res.motions]
    assert kinds[0] == "grasp" and res.grasp_attempts == kinds.count("grasp")
    if res.success:
        assert kinds[-1] == "place" and res.steps == len(kinds)
        assert all(m["success"] and m["measured"]["execution_time_s"] > 0 for m in res.motions)


class _Refuses:
    """A policy that never finds the target: the task core ends the episode at the first decision."""

    name = "refuses"
    needs_frames = False
    last_outcome = ("target_not_found", "nothing in the scene matches")

    def act(self, frames, text, state):
        assert state["stage_text"] == text and state["exclude"] == []
        return None


def test_target_not_found_ends_the_episode_as_on_the_robot(world):
    case = CaseSet.load(case_path("grasp", "seen")).cases[0]
    res = run_episode(world, case, _Refuses())
    assert res.outcome == "target_not_found" and not res.success
    assert res.steps == 1 and res.motions == []

