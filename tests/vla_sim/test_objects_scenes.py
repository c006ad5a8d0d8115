# SPDX-License-Identifier: Apache-2.0
"""Catalogue, scenes, instructions and case files: pure Python plus short physics settles."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vla_sim import instructions as ins
from vla_sim import objects as objlib
from vla_sim.scenes import CaseSet, Scene, make_case, make_scene
from vla_sim.world import SimWorld


@pytest.fixture(scope="module")
def world():
    w = SimWorld(robot=None, renderer="tiny", render_size=(160, 120))
    yield w
    w.close()


def test_catalogue_sizes_and_splits():
    assert len(objlib.by_split("seen")) >= 40
    assert len(objlib.by_split("unseen")) >= 15
    assert len(objlib.by_split("novel_word")) >= 3
    for o in objlib.CATALOGUE:
        size = o.size_m
        assert size.min() <= objlib.GRASPABLE_WIDTH_M, o.name
        assert size.max() <= 0.20, o.name


def test_unseen_words_are_seen_and_novel_words_are_new():
    seen = objlib.seen_vocabulary()
    for o in objlib.by_split("unseen"):
        assert o.description_words() <= seen, (o.name, o.description_words() - seen)
    for o in objlib.by_split("novel_word"):
        assert set(o.name.split()) - seen, o.name


def test_every_object_builds_with_its_catalogue_size_and_stands_still(world):
    for o in objlib.CATALOGUE:
        world._reset_world()
        world.add_object(o, np.array([0.5, 0.0, 0.2]), np.array([0, 0, 0, 1.0]), rest_on_table=True)
        lo, hi = world.object_aabb(o.name)
        # PyBullet pads AABBs by a small collision margin; meshes use their convex collision shape
        assert np.allclose(np.sort(hi - lo), np.sort(o.size_m), atol=0.01), o.name
        world.settle(max_steps=480)
        T = world.object_pose(o.name)
        assert T[2, 2] > 0.85, f"{o.name} tipped over"
        assert np.linalg.norm(T[:2, 3] - [0.5, 0.0]) < 0.02, f"{o.name} rolled away"


@pytest.mark.parametrize("task", ["grasp", "place", "pickplace"])
@pytest.mark.parametrize("split", ["seen", "unseen", "novel_word"])
def test_same_seed_same_scene_bit_for_bit(task, split):
    a, b = make_scene(task, split, 11), make_scene(task, split, 11)
    assert json.dumps(a.to_dict()) == json.dumps(b.to_dict())
    assert json.dumps(make_scene(task, split, 12).to_dict()) != json.dumps(a.to_dict())
    names = a.names + ([a.held] if a.held else [])
    assert len(set(names)) == len(names)
    pool_split = {split} if split != "novel_word" else {"novel_word", "unseen"}
    assert all(objlib.get(n).split in pool_split or objlib.get(n).supports for n in names)


def test_scene_layout_rules():
    g = make_scene("grasp", "seen", 0)
    assert len(g.objects) == 15
    p = make_scene("place", "seen", 0)
    assert len(p.objects) == 8 and p.held
    xy = np.array([o.xyz[:2] for o in p.objects])
    d = np.linalg.norm(xy[:, None] - xy[None], axis=-1) + np.eye(len(xy))
    assert d.min() >= 0.1
    pp = make_scene("pickplace", "seen", 0)
    left = [o for o in pp.objects if not o.rest_on_table]
    right = [o for o in pp.objects if o.rest_on_table]
    assert all(o.xyz[1] > 0 for o in left) and all(o.xyz[1] < 0 for o in right)


def test_settled_scene_is_deterministic_and_case_file_replays(world, tmp_path):
    case = make_case(world, "grasp", "seen", 4)
    assert len(world.object_ids) >= 14  # at most one object may roll off the table
    original = {n: world.object_pose(n) for n in world.object_ids}
    path = case.save(tmp_path / "case.json")
    again = Scene.load(path)
    assert again.to_dict() == case.to_dict()
    replay = world.load_scene(again)
    assert set(replay) == set(original)
    for name, pose in again.settled.items():
        assert np.array_equal(replay[name], original[name]), name  # bit for bit
        assert np.allclose(replay[name][:3, 3], pose[:3], atol=1e-6), name  # recorded to 1e-6
    # a second world (fresh client) gives the same result
    w2 = SimWorld(robot=None, renderer="tiny")
    try:
        replay2 = w2.load_scene(again)
        assert all(np.array_equal(replay2[n], replay[n]) for n in replay)
    finally:
        w2.close()
    cs = CaseSet("x", [case, case])
    assert CaseSet.load(cs.save(tmp_path / "set.json")).cases[1].to_dict() == case.to_dict()


def test_bad_case_file_gives_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {"task": "grasp", "split": "seen", "seed": 0, "objects": [{"name": "unicorn", "xyz": [0, 0, 0]}]}
        )
    )
    with pytest.raises(ValueError, match="unicorn"):
        Scene.load(bad)
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read"):
        Scene.load(bad)


def test_grasp_instructions_cover_all_kinds_and_targets_match():
    rng = np.random.default_rng(0)
    names = make_scene("grasp", "seen", 1).names
    target = next(n for n in names if objlib.get(n).grasp_target)
    for kind in ins.GRASP_KINDS:
        instr = ins.grasp_instruction(rng, names, target=target, kind=kind)
        assert target in instr.targets and instr.text
        spec = objlib.get(target)
        for t in instr.targets:
            o = objlib.get(t)
            if kind == "category":
                assert o.category == spec.category and spec.category in instr.text
            if kind == "function":
                assert o.function == spec.function and spec.function in instr.text
            if kind == "colour_shape":
                assert (o.colour.name, o.shape) == (spec.colour.name, spec.shape)
    assert ins.Instruction.from_dict(instr.to_dict()) == instr


def test_region_geometry():
    ref_min, ref_max = (0.45, -0.05, 0.0), (0.55, 0.05, 0.06)

    def region(rel):
        return ins.Region(rel, "blue box", ref_min, ref_max)

    assert region("in").contains([0.5, 0.0, 0.03], 0.01)
    assert not region("in").contains([0.5, 0.0, 0.1], 0.07)  # above the rim
    assert region("on").contains([0.5, 0.0, 0.08], 0.06)
    assert not region("on").contains([0.5, 0.0, 0.02], 0.0)
    assert region("left of").contains([0.5, 0.12, 0.02], 0.0)
    assert not region("left of").contains([0.5, -0.12, 0.02], 0.0)
    assert region("right of").contains([0.5, -0.12, 0.02], 0.0)
    assert region("in front of").contains([0.38, 0.0, 0.02], 0.0)
    assert region("behind").contains([0.62, 0.0, 0.02], 0.0)
    assert not region("behind").contains([0.62, 0.3, 0.02], 0.0)  # diagonal, not behind
    assert region("next to").contains([0.5, 0.12, 0.02], 0.0)
    assert not region("next to").contains([0.5, 0.17, 0.02], 0.0)
    assert region("near").contains([0.5, 0.17, 0.02], 0.0)
    assert region("around").contains([0.5, 0.22, 0.02], 0.0)
    assert not region("near").contains([0.5, 0.0, 0.08], 0.06)  # on top is not near
    assert ins.valid_relations("blue box")[0] == "in"
    with pytest.raises(ValueError, match="does not fit"):
        ins.place_instruction(np.random.default_rng(0), "red cube", "red cube", (ref_min, ref_max), "in")


@pytest.mark.parametrize("split,seed", [("seen", 1001), ("seen", 1016), ("unseen", 1014)])
def test_place_case_never_refers_to_the_held_object(split, seed):
    """The object in the gripper is no place reference ("put it near the X" while holding the X).

    These seeds drew the held object as the reference before the generator excluded it.
    """
    with SimWorld(robot="ur5", renderer="tiny", render_size=(64, 48)) as w:
        case = make_case(w, "place", split, seed)
    region = case.instruction["region"]
    assert case.held == case.instruction["target"]
    assert region["reference"] != case.held
    assert region["reference"] in case.names
