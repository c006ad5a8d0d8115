# SPDX-License-Identifier: Apache-2.0
"""Pick-and-place through the real sim graph, by action and by topic, judged by the simulator.

The whole sim graph (sim bridge, perception, policy, executor) runs as separate processes over real
DDS on loopback, as ``vla demo`` starts it, with the sim bridge on one fixed pick-and-place case
(``vla_sim/cases/pickplace_seen.json``, the scene ``vla eval --cases fixed`` scores). This process is
an outside rclpy client:

1. it reloads the scene (``/sim/load_scene``) and sends the case's own sentence as a
   ``/vla/manipulate`` goal: the result succeeds with stages
   grasp and place and a pose in ``world`` for each, feedback reports each stage moving, and the
   simulator itself (privileged events no node of the graph reads) saw the named object lifted and
   finds it at rest in the named region (the bridge's ``sim_report`` placement check, judged with
   ``vla_sim.checks.judge_place`` as ``vla demo`` does);
2. it reloads the scene (``/sim/load_scene``) and says the same task as "pick up the X and put it
   <relation> the Y" on ``/vla/instruction``: the policy ends that task with ``task_succeeded``
   after both stages (its latched TaskStatus says so too), with the same simulator verdicts.

The case was chosen because the shipped learned policy (checkpoint SR) places its object in this
graph; the policy is not perfect on every case (0.6-0.75 pick-and-place success on seen cases, 2026-12-07).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("vla_interfaces.action")
from graph_client import Client, sim_graph  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from vla_common import topics  # noqa: E402
from vla_common.launcher import Launcher  # noqa: E402
from vla_common.qos import EVENT_QOS, RELIABLE_QOS, TASK_STATUS_QOS  # noqa: E402
from vla_interfaces.msg import TaskStatus  # noqa: E402
from vla_sim.checks import judge_place, place_question  # noqa: E402
from vla_sim.scenes import CaseSet, Scene, case_path  # noqa: E402

# The grasp and the place are the shipped learned policy's choices. Before object-level grounding
# it failed 1 run in 9 (a collision-refused grasp, then a wrong object) and ran apart from make
# test; with object-level grounding and the finger-corner table clearance it passed 10 of 10 runs
# (2026-12-07, session 6) and is part of make test again.
pytestmark = [pytest.mark.slow, pytest.mark.ros]

SPLIT = "seen"
# fixed pickplace/seen case "place the blue cube on the brown box": the learned policy placed it by action
# and by topic in this graph, as in `vla eval --cases fixed` (not every case is so: 1001, placed in vla eval,
# has the wooden block lifted instead of the plum here)
CASE_SEED = 1007
MAX_ATTEMPTS = 4
TASK_WALL_S = 600.0  # safety net per task; the task itself is bounded by the policy's attempts


def _case(seed: int) -> Scene:
    """The fixed pick-and-place case with this seed (the scene the sim bridge builds for the seed)."""
    cases = [c for c in CaseSet.load(case_path("pickplace", SPLIT)).cases if c.seed == seed]
    assert len(cases) == 1, f"no fixed pickplace/{SPLIT} case with seed {seed}"
    return cases[0]


class SceneClient(Client):
    """The action client plus the topics a person uses: instructions, scene loading, the sim's verdict."""

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.instruction_pub = self.node.create_publisher(String, topics.INSTRUCTION, EVENT_QOS)
        self.report_pub = self.node.create_publisher(String, "/sim/report", RELIABLE_QOS)
        self.task_status: list[TaskStatus] = []
        self.node.create_subscription(TaskStatus, topics.TASK_STATUS, self.task_status.append,
                                      TASK_STATUS_QOS)

    def sim_verdict(self, instruction: str, scene_objects: list[str], n0: int, launcher: Launcher):
        """The simulator's account of the task since event ``n0``: (lifted objects, placement, verdict).

        Asks the sim bridge for its privileged ``sim_report`` (``vla_sim.checks.place_report`` of the
        last lifted object in the region the sentence names) and judges it as ``vla demo`` does.
        """
        lifted = list(dict.fromkeys(e["object"] for e in self.since(n0, "object_lifted", "sim_bridge")))
        moved = lifted[-1] if lifted else None
        question = place_question(instruction, scene_objects, moved)
        assert question is not None, (instruction, scene_objects, lifted)
        k = len(self.events)
        self.publish(self.report_pub, json.dumps({"place": question}), launcher)
        answered = lambda: self.since(k, "sim_report", "sim_bridge")  # noqa: E731
        assert self.spin_until(answered, 60.0, launcher), "no sim_report"
        report = answered()[-1]
        verdict = judge_place(instruction, sorted(report["start_boxes"]), moved, report["place"], lifted)
        return lifted, report["place"], verdict


def _assert_placed(c: SceneClient, sentence: str, case: Scene, n0: int, launcher: Launcher, how: str) -> None:
    """The simulator lifted only the case's object and finds it at rest where the case's region says."""
    target, reference = case.instruction["target"], case.instruction["region"]["reference"]
    lifted, place, verdict = c.sim_verdict(sentence, case.names, n0, launcher)
    print(f"{how}: sim verdict {verdict.sentence!r}; lifted {lifted}")
    assert lifted == [target], f"the simulator saw {lifted} lifted, the sentence names the {target}"
    assert place["object"] == target and place["success"], place
    assert place["references"][reference]["success"], place
    assert verdict.label == "SUCCESS" and verdict.ok, verdict.sentence


def _policy_story(c: SceneClient, n0: int) -> str:
    """What the policy, executor and sim bridge said since event ``n0``, a line each (failure messages)."""
    quiet = ("cloud_published", "sim_report", "motion_started")
    keep = ("detail", "score", "presence", "threshold", "position", "reason", "object", "attempt")
    return "\n".join(f"{e['node']}: {e['event']} {json.dumps({k: e[k] for k in keep if k in e})[:400]}"
                     for e in c.events[n0:]
                     if e["node"] in ("policy", "executor", "sim_bridge") and e["event"] not in quiet)


def _reload(c: SceneClient, launcher: Launcher, sentence: str) -> None:
    """Reload the case (``/sim/load_scene``) and wait for a feature cloud of the reloaded scene."""
    loaded = c.reload_scene({"task": "pickplace", "split": SPLIT, "seed": CASE_SEED}, launcher)
    assert loaded["example_instruction"] == sentence, loaded  # the fixed case again


@pytest.mark.timeout(1800)  # graph start-up and two whole pick-and-place tasks on a small machine
def test_pick_and_place_sentence_by_action_and_by_topic_places_the_named_object():
    case = _case(CASE_SEED)
    target = case.instruction["target"]
    relation, reference = case.instruction["region"]["relation"], case.instruction["region"]["reference"]
    with sim_graph({"task": "pickplace", "split": SPLIT, "seed": CASE_SEED}, SceneClient) as (c, launcher):
        # 1) the case's sentence as a goal: both stages, with feedback, and the simulator agrees.
        # The scene is reloaded first, as for round 2: on the scene the bridge starts with, the
        # place stage's reference was not found in 3 of 12 runs (presence 0.00014 against 0.34 in
        # one) while after a reload it was found in 30 of 30 (open finding, see the closing note).
        sentence = case.instruction["text"]
        _reload(c, launcher, sentence)
        n0 = len(c.events)
        fb: list = []
        gh = c.send(sentence, fb, max_attempts=MAX_ATTEMPTS)
        assert gh.accepted
        res = gh.get_result_async()
        assert c.spin_until(res.done, TASK_WALL_S, launcher), f"no result: {[e['event'] for e in c.events]}"
        r = res.result().result
        print(f"action: {sentence!r}: {r.outcome} {r.reason!r}, {r.attempts} attempt(s) in the last stage")
        assert r.success and r.outcome == "succeeded" and res.result().status == 4, (  # SUCCEEDED
            f"{r.outcome} ({r.reason}); stages {list(r.stages)}\n{_policy_story(c, n0)}")
        assert list(r.stages) == ["grasp", "place"], r.stages
        assert len(r.poses) == 2 and all(p.header.frame_id == "world" for p in r.poses), r.poses
        states = [(f.stage, f.state) for f in fb]
        assert ("grasp", "moving") in states and ("place", "moving") in states, states
        assert states.index(("grasp", "moving")) < states.index(("place", "moving")), states
        moving = [f for f in fb if f.state == "moving"]
        assert all(f.stage_count == 2 and f.pose.header.frame_id == "world" for f in moving), moving
        _assert_placed(c, sentence, case, n0, launcher, "action")

        # 2) the same scene again, the same task said on the topic: the policy's own account and the sim's
        _reload(c, launcher, sentence)
        spoken = f"pick up the {target} and put it {relation} the {reference}"
        n2 = len(c.events)
        c.publish(c.instruction_pub, spoken, launcher)
        ends = lambda: [e for e in c.since(n2, "task_succeeded", "policy")  # noqa: E731
                        + c.since(n2, "task_failed", "policy") if e.get("instruction") == spoken]
        assert c.spin_until(ends, TASK_WALL_S, launcher), f"no end: {[e['event'] for e in c.events[n2:]]}"
        end = ends()[0]
        print(f"topic: {spoken!r}: {end['event']} {end.get('detail', '')!r}")
        ok = end["event"] == "task_succeeded" and end["outcome"] == "succeeded"
        assert ok, f"{end}\n{_policy_story(c, n2)}"
        received = [e for e in c.since(n2, "instruction_received", "policy") if e["instruction"] == spoken]
        assert len(received) == 1 and received[0]["via"] == "topic", received
        assert received[0]["stages"] == ["grasp", "place"], received[0]
        assert c.since(n2, "grasp_selected", "policy") and c.since(n2, "place_selected", "policy")
        mine = lambda: [m for m in c.task_status if m.task_id == end["task_id"]]  # noqa: E731
        assert c.spin_until(mine, 15.0, launcher), [m.task_id for m in c.task_status]
        status = mine()[-1]
        assert status.success and status.outcome == "succeeded", status
        assert list(status.stages) == ["grasp", "place"] and status.stages_done == 2, status
        _assert_placed(c, spoken, case, n2, launcher, "topic")
