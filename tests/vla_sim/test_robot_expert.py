# SPDX-License-Identifier: Apache-2.0
"""Robot in the world, the expert executed in physics, and the eval CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vla_sim import checks
from vla_sim.evaluation import RandomPolicy, evaluate, main, run_episode
from vla_sim.expert import ExpertPolicy
from vla_sim.primitives import joint_move
from vla_sim.robot import MotionRefused
from vla_sim.scenes import CaseSet, case_path, make_scene
from vla_sim.world import SimWorld


@pytest.fixture(scope="module")
def world():
    w = SimWorld(robot="ur5", renderer="tiny", render_size=(160, 120))
    yield w
    w.close()


def test_robot_tracks_a_trajectory_and_refuses_limits(world):
    world.load_scene(make_scene("grasp", "seen", 2))
    r = world.robot
    q0 = world.joint_positions()
    assert np.allclose(q0, r.model.home, atol=1e-6)
    goal = q0 + np.array([0.2, -0.1, 0.15, 0.1, -0.2, 0.3])
    t, q = joint_move(q0, goal, r.vel_limits)
    assert world.execute(t, q)
    assert np.max(np.abs(world.joint_positions() - goal)) < 1e-3
    assert np.allclose(r.tcp_pose(), r.model.fk(world.joint_positions()), atol=1e-4)  # sim FK == model FK
    bad = goal.copy()
    bad[1] = -4.0
    steps = world.steps
    with pytest.raises(MotionRefused, match="shoulder_lift_joint"):
        world.execute(np.array([1.0]), bad[None])
    with pytest.raises(MotionRefused, match="velocity limit"):
        world.execute(np.array([0.01]), (goal + 0.5)[None])
    with pytest.raises(MotionRefused, match="joint limits"):
        world.set_joint_targets(bad)
    assert world.steps == steps  # nothing was stepped


def test_place_scene_starts_with_the_object_held_and_it_survives_motion(world):
    scene = make_scene("place", "seen", 3)
    world.load_scene(scene)
    body = world.object_ids[scene.held]
    assert world.robot.holds(body)
    z0 = world.object_pose(scene.held)[2, 3]
    q0 = world.joint_positions()
    goal = q0 + np.array([0.4, -0.2, 0.2, 0.0, 0.0, 0.5])
    t, q = joint_move(q0, goal, world.robot.vel_limits)
    assert world.execute(t, q)
    world.step(240)
    assert world.robot.holds(body)
    assert world.object_pose(scene.held)[2, 3] > z0 - 0.2  # carried with the arm, not dropped
    world.set_gripper(True)
    world.step(240)
    assert not world.robot.holds(body)


def test_case_file_with_robot_replays_exactly(world):
    case = CaseSet.load(case_path("place", "seen")).cases[0]
    settled = world.load_scene(case)
    for name, pose in case.settled.items():
        assert np.allclose(settled[name][:3, 3], pose[:3], atol=2e-6), name


@pytest.mark.slow
def test_expert_grasp_success_on_seen_cases(world):
    cases = CaseSet.load(case_path("grasp", "seen")).cases[:20]
    expert = ExpertPolicy()
    results = [run_episode(world, c, expert) for c in cases]
    rate = np.mean([r.success for r in results])
    assert rate >= 0.95, [(r.seed, r.instruction, r.notes) for r in results if not r.success]
    assert all(r.steps <= checks.MAX_GRASP_ATTEMPTS for r in results)


@pytest.mark.slow
def test_expert_place_success_on_seen_cases(world):
    cases = CaseSet.load(case_path("place", "seen")).cases[:20]
    expert = ExpertPolicy()
    results = [run_episode(world, c, expert) for c in cases]
    rate = np.mean([r.success for r in results])
    assert rate >= 0.90, [(r.seed, r.instruction, r.notes) for r in results if not r.success]
    assert all(r.steps == 1 for r in results)


def test_random_policy_episode_and_failed_place_is_detected(world):
    # the random policy sees only frames; its place is judged in physics like any other
    case = CaseSet.load(case_path("place", "seen")).cases[1]
    res = run_episode(world, case, RandomPolicy(seed=0))
    assert res.steps == 1 and res.place_success in (True, False)
    results, summary = evaluate(
        RandomPolicy(1), "place", "seen", 1, renderer="tiny", render_size=(160, 120), progress=False
    )
    assert summary["episodes"] == 1 and results[0].steps == 1 and "place_success_rate" in summary


def test_eval_cli_writes_json_and_markdown(tmp_path, capsys):
    cases = tmp_path / "one.json"
    CaseSet("one", CaseSet.load(case_path("place", "seen")).cases[:1]).save(cases)
    rc = main(
        [
            "--policy",
            "expert",
            "--task",
            "place",
            "--cases",
            str(cases),
            "--out",
            str(tmp_path),
            "--renderer",
            "tiny",
            "--render-size",
            "160x120",
            "--no-progress",
        ]
    )
    assert rc == 0
    data = json.loads((tmp_path / "eval_expert_place_seen.json").read_text())
    assert data["summary"]["episodes"] == 1 and len(data["episodes"]) == 1
    md = (tmp_path / "eval_expert_place_seen.md").read_text()
    assert md.startswith("| policy | task |") and "expert" in md
    assert "success_rate" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--policy", "nonsense", "--episodes", "1"])
