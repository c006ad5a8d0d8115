# SPDX-License-Identifier: Apache-2.0
"""The demo's verdict: what was lifted, judged against what the sentence asked for (simulator's view)."""

from __future__ import annotations

from vla_sim.checks import judge_grasp

SCENE = ["red mug", "red cube", "blue box", "banana"]


def test_right_object_is_a_success():
    v = judge_grasp("could you grab the red mug for me?", SCENE, ["red mug"])
    assert (v.label, v.ok, v.sentence) == ("SUCCESS", True, "SUCCESS: lifted the red mug")


def test_wrong_object_is_named_with_what_was_asked():
    v = judge_grasp("pick up the red mug", SCENE, ["red cube"])
    assert v.label == "WRONG OBJECT" and not v.ok
    assert v.sentence == "WRONG OBJECT: lifted the red cube, asked for the red mug"


def test_any_object_fitting_the_description_counts():
    assert judge_grasp("I need a fruit", SCENE, ["banana"]).ok
    assert judge_grasp("grasp the red cylindrical object", SCENE, ["red mug"]).ok
    assert judge_grasp("I need something to drink from", SCENE, ["red mug"]).targets == ["red mug"]


def test_refusals_are_judged_by_the_scene():
    absent = judge_grasp("pick up the yellow duck", SCENE, [], refused="target not found")
    assert absent.label == "CORRECTLY REFUSED" and absent.ok
    unknown = judge_grasp("pick up the purple elephant", SCENE, [], refused="'elephant' is unknown")
    assert unknown.label == "CORRECTLY REFUSED" and unknown.ok
    present = judge_grasp("pick up the banana", SCENE, [], refused="target not found")
    assert present.label == "WRONGLY REFUSED" and not present.ok
    nothing = judge_grasp("pick up the banana", SCENE, [])
    assert nothing.label == "NOTHING LIFTED" and not nothing.ok
    grabbed = judge_grasp("pick up the purple elephant", SCENE, ["red cube"])
    assert grabbed.label == "WRONG OBJECT" and not grabbed.ok
