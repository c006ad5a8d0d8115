# SPDX-License-Identifier: Apache-2.0
"""The demo's placement verdict on scripted episodes in physics, and ``vla eval --record``.

The verdict uses the same check ``vla eval`` scores with (vla_sim.checks.check_place: at rest inside
the named region); the demo's exit status follows the verdict.
"""

from __future__ import annotations

import numpy as np
import pytest

from vla_common.demo import DemoResult, _judge, _moved, exit_code
from vla_sim import checks, primitives
from vla_sim.evaluation import evaluate, robot_state
from vla_sim.expert import ExpertPolicy
from vla_sim.instructions import Instruction
from vla_sim.scenes import make_case
from vla_sim.world import SimWorld


@pytest.fixture(scope="module")
def world():
    with SimWorld(robot="ur5", renderer="tiny", render_size=(160, 120)) as w:
        yield w


def _place_episode(world, shift_m: float):
    """Load the seeded place case, release where the expert would (shifted by ``shift_m`` in y)."""
    scene = make_case(world, "place", "seen", 0)
    world.load_scene(scene)
    boxes = {n: world.object_aabb(n) for n in world.object_ids}
    ins = Instruction.from_dict(scene.instruction)
    expert = ExpertPolicy()
    expert.bind(world, ins)
    T = np.array(expert.act([], ins.text, robot_state(world, "place")))
    T[1, 3] += shift_m
    assert primitives.execute_place(world, T).ok
    question = checks.place_question(ins.text, list(world.object_ids), scene.held)
    assert question == {"object": scene.held, "relation": ins.region.relation,
                        "references": [ins.region.reference]}
    report = checks.place_report(world, scene.held, question["relation"], question["references"], boxes)
    return ins, scene, checks.judge_place(ins.text, list(world.object_ids), scene.held, report), report


def _demo_verdict(text: str, world, held: str, report: dict) -> DemoResult:
    """The demo's own judgement (``vla_common.demo._judge``) of the bridge's ``sim_report``."""
    result = DemoResult(instruction=text, scene_objects=list(world.object_ids))
    _judge(result, held, {"event": "sim_report", "place": report})
    return result


def test_placed_where_asked_is_a_success_and_exits_0(world):
    ins, scene, v, report = _place_episode(world, 0.0)
    assert report["at_rest"] and not report["held"]
    assert v.label == "SUCCESS" and v.ok
    demo = _demo_verdict(ins.text, world, scene.held, report)
    assert (demo.verdict_label, demo.verdict, exit_code(demo)) == ("SUCCESS", v.sentence, 0)
    assert v.sentence == f"SUCCESS: placed the {scene.held} {ins.region.relation} the {ins.region.reference}"


def test_placed_elsewhere_is_a_wrong_place_and_exits_1(world):
    ins, scene, v, report = _place_episode(world, -0.30)  # 30 cm to the robot's right of the spot
    assert not report["success"]
    assert v.label == "WRONG PLACE" and not v.ok
    demo = _demo_verdict(ins.text, world, scene.held, report)
    assert (demo.verdict_label, exit_code(demo)) == ("WRONG PLACE", 1) and demo.placement == report
    assert v.sentence.startswith(f"WRONG PLACE: the {scene.held} ") and ins.region.reference in v.sentence


def test_place_verdicts_without_a_placement():
    assert _moved("put it on the plate", "red mug", []) == "red mug"  # place: the held object
    assert _moved("put the banana on the plate", None, ["red mug"]) == "red mug"  # what actually went up
    assert _moved("pick up the banana", None, ["banana"]) is None
    scene = ["red mug", "green plate", "blue box", "banana"]
    held = {"object": "red mug", "relation": "on", "success": False, "at_rest": True, "held": True,
            "references": {"green plate": {"success": False, "gap_m": 0.2}}}
    assert checks.judge_place("put it on the plate", scene, "red mug", held).sentence == (
        "WRONG PLACE: the red mug is still in the gripper, asked for on the plate")
    wrong = checks.judge_place("put the banana on the plate", scene, "red mug", None, lifted=["red mug"])
    assert wrong.label == "WRONG OBJECT" and not wrong.ok
    assert checks.judge_place("put the banana on the plate", scene, None, None).label == "NOTHING LIFTED"
    absent = checks.judge_place("put it in the bowl", scene, "red mug", None, refused="target not found")
    assert absent.label == "CORRECTLY REFUSED" and absent.ok
    present = checks.judge_place("put it on the plate", scene, "red mug", None, refused="target not found")
    assert present.label == "WRONGLY REFUSED" and not present.ok
    assert checks.judge_place("pick up the banana", scene, None, None, lifted=["banana"]).label == "SUCCESS"


def test_eval_record_writes_a_rerun_file_per_episode(tmp_path):
    from vla_common.recording import read_points, read_recording

    results, _ = evaluate(ExpertPolicy(), "grasp", "seen", 1, render_size=(160, 120), renderer="tiny",
                          progress=False, record=tmp_path)
    files = sorted(tmp_path.glob("*.rrd"))
    assert [f.name for f in files] == ["episode_000_grasp_seen_0.rrd"]
    rows = read_recording(files[0])
    for entity in ("/world/cloud/rgb", "/world/chosen/grasp", "/world/tcp_trajectory", "/world/targets",
                   "/events"):
        assert rows.get(entity, 0) >= 1, (entity, rows)
    path = read_points(files[0], "/world/tcp_trajectory")[-1]  # the TCP went down to the object and up
    assert len(path) > 10 and np.ptp(path[:, 2]) > 0.1
    assert results[0].steps >= 1
