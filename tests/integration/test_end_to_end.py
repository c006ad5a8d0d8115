# SPDX-License-Identifier: Apache-2.0
"""End to end: the simulated UR5, told over /vla/instruction to grasp an object, lifts the right one.

Runs the whole sim graph (sim bridge, perception, policy, executor) as separate processes over
real DDS on loopback, exactly as ``vla demo`` does, and checks the simulator's own account of
which object went up (the privileged ``object_lifted`` events, which no node of the graph uses).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from vla_common.demo import run_demo

pytestmark = [pytest.mark.slow, pytest.mark.ros]


@pytest.mark.parametrize(("instruction", "seed", "target"), [
    ("pick up the red mug", 0, "red mug"),
])
def test_ur5_lifts_the_named_object(instruction: str, seed: int, target: str, tmp_path) -> None:
    result = run_demo(instruction, robot="ur5", task="grasp", split="seen", seed=seed, timeout_s=400,
                      save=tmp_path, quiet_nodes=True, record=True)
    events = [e["event"] for e in result.events if e["node"] == "policy"]
    assert result.outcome == "task_succeeded", (result.outcome, result.detail, events)
    assert result.lifted and result.lifted[0] == target, f"lifted {result.lifted}, wanted {target}"
    # the policy ended the task exactly once
    assert sum(e in ("task_succeeded", "task_failed") for e in events) == 1
    assert (tmp_path / "summary.json").is_file() and (tmp_path / "episode.gif").is_file()
    assert result.verdict == f"SUCCESS: lifted the {target}" and result.succeeded
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["verdict"] == result.verdict and target in summary["scene_objects"]
    _check_pictures_and_recording(tmp_path, result)


def _check_pictures_and_recording(out, result) -> None:
    """The pictures have their sizes; the rerun recording reads back with cloud, candidates and TCP path."""
    from PIL import Image

    from vla_common.recording import read_points, read_recording

    for name in ("start.png", "end.png", "side_start.png", "start_annotated.png", "side_start_annotated.png"):
        with Image.open(out / name) as im:
            assert im.size == (640, 480), name
    assert list(result.keyframes)[:1] == ["start"] and {"grasp", "lift", "end"} <= set(result.keyframes)
    with Image.open(out / "keyframes.png") as im:
        assert im.size == (320 * len(result.keyframes), 480)  # top row top camera, bottom row side camera
    with Image.open(out / "episode.gif") as im:
        assert im.size == (640, 240)
    assert (out / "episode.mp4").stat().st_size > 0
    rows = read_recording(out / "episode.rrd")
    for entity in ("/world/cloud/rgb", "/world/cloud/relevance", "/world/candidates/grasp",
                   "/world/chosen/grasp", "/world/tcp_trajectory", "/events"):
        assert rows.get(entity, 0) >= 1, (entity, rows)
    selected = [e for e in result.events if e["event"] == "grasp_selected"]
    cands = read_points(out / "episode.rrd", "/world/candidates/grasp")
    assert len(cands[0]) == len(selected[0]["scores"])  # one score per candidate, as the policy ranked them
    path = read_points(out / "episode.rrd", "/world/tcp_trajectory")[-1]
    assert np.ptp(path[:, 2]) > 0.05  # the TCP went down to the mug and up again


def test_instruction_naming_an_absent_object_lifts_nothing(tmp_path) -> None:
    # seed 0's scene has no banana (tests/vla_sim checks scene contents are seeded)
    result = run_demo("pick up the banana", robot="ur5", task="grasp", split="seen", seed=0, timeout_s=300,
                      save=tmp_path, quiet_nodes=True)
    events = [e["event"] for e in result.events if e["node"] == "policy"]
    assert result.outcome == "task_failed", (result.outcome, events)
    assert "target_not_found" in events
    assert result.lifted == []
    assert result.verdict.startswith("CORRECTLY REFUSED") and result.succeeded


def test_instruction_the_robot_cannot_ground_is_refused_with_the_reason(tmp_path) -> None:
    result = run_demo("pick up the purple elephant", robot="ur5", task="grasp", split="seen", seed=0,
                      timeout_s=300, save=tmp_path, quiet_nodes=True)
    events = [e for e in result.events if e["node"] == "policy"]
    assert result.outcome == "instruction_not_understood", (result.outcome, [e["event"] for e in events])
    assert "elephant" in result.detail
    assert not [e for e in events if e["event"] in ("instruction_received", "grasp_selected")]
    assert result.lifted == [] and result.verdict.startswith("CORRECTLY REFUSED")
