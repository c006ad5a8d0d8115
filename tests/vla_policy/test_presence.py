# SPDX-License-Identifier: Apache-2.0
"""Target-presence statistic: instruction parsing, the recogniser heads, and decide()'s refusal."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from clouds import box, table

from vla_policy.configuration import PolicyConfig
from vla_policy.model import PolicyModel
from vla_policy.policy import (
    Policy,
    PresenceRecogniser,
    instruction_referents,
    presence_descriptors,
)
from vla_policy.train import vocabulary_from_catalogue

D = 16
VOCAB = vocabulary_from_catalogue()
NAMES = [v["name"] for v in VOCAB]


def _names(text: str, kind: str = "grasp") -> set[str]:
    return {NAMES[i] for i in instruction_referents(text, VOCAB, kind)}


def test_referents_follow_the_instruction_templates():
    assert _names("pick up the red mug") == {"red mug"}
    assert _names("give me the orange") == {"orange"}
    assert _names("grasp the orange block") == {"orange block"}  # longest name, not the fruit
    # colour + shape: every orange round object, fruit or toy
    assert _names("grasp the orange round object") == {v["name"] for v in VOCAB
                                                       if (v["colour"], v["shape"]) == ("orange", "round")}
    assert {"orange", "orange ball"} <= _names("grasp the orange round object")
    cups = _names("I need something to drink from")
    assert "red mug" in cups and "red soda can" not in cups  # "to drink from", not "to drink"
    assert "red soda can" in _names("get me something to drink")
    writing = _names("I need a writing tool")
    assert "blue pen" in writing and "grey wrench" not in writing
    assert "grey wrench" in _names("I need a tool") and "blue pen" not in _names("I need a tool")
    # place: the reference object (named last), not the held one
    assert _names("put the red mug near the blue box", kind="place") == {"blue box"}
    assert _names("put it near the red mug", kind="place") == {"red mug"}
    assert _names("wave at the camera") == set()


def _object_scene(objects: list[tuple[tuple, tuple, int]], seed: int = 0):
    """Table + boxes; each box (size, centre, vocabulary index) gets its catalogue colour and a feature
    direction of its own (+ noise), the table a feature of its own. Returns xyz, rgb, features, labels."""
    from vla_sim.objects import COLOURS

    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(np.random.default_rng(123).standard_normal((D, D)))[0]  # fixed per-object directions
    xyz, rgb, feats, lab = [table(half=0.2)], [], [], []
    rgb.append(np.full((len(xyz[0]), 3), 120))
    feats.append(np.tile(basis[0], (len(xyz[0]), 1)))
    lab.append(np.full(len(xyz[0]), -1))
    for size, centre, vi in objects:
        p = box(size, centre, step=0.006)
        xyz.append(p)
        rgb.append(np.tile(np.array(COLOURS[VOCAB[vi]["colour"]].rgba[:3]) * 255, (len(p), 1)))
        feats.append(np.tile(basis[1 + vi % (D - 1)], (len(p), 1)))
        lab.append(np.full(len(p), vi))
    xyz, rgb, feats, lab = (np.concatenate(a) for a in (xyz, rgb, feats, lab))
    feats = feats + 0.05 * rng.standard_normal(feats.shape)
    xyz = xyz + 0.001 * rng.standard_normal(xyz.shape)
    return xyz.astype(np.float32), rgb.astype(np.uint8), feats.astype(np.float32), lab


RED_MUG, BLUE_BOX, YELLOW_DUCK = NAMES.index("red mug"), NAMES.index("blue box"), NAMES.index("yellow duck")
TALL, FLAT = (0.06, 0.06, 0.10), (0.12, 0.10, 0.03)


def _training_points(mug_xy=(0.45, -0.08), box_xy=(0.55, 0.08)) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors (M, F) and vocabulary labels (M,) of the object points of three training scenes."""
    xs, ys = [], []
    for seed in range(3):
        xyz, rgb, f, lab = _object_scene([(TALL, mug_xy, RED_MUG), (FLAT, box_xy, BLUE_BOX),
                                          (TALL, (0.45, 0.1), YELLOW_DUCK)], seed)
        idx, d = presence_descriptors(xyz, rgb, f)
        keep = lab[idx] >= 0
        xs.append(d[keep])
        ys.append(lab[idx][keep])
    return np.concatenate(xs), np.concatenate(ys)


@pytest.fixture(scope="module")
def recogniser():
    return PresenceRecogniser.fit(*_training_points(), VOCAB, steps=200)


def test_descriptors_cover_only_object_points():
    xyz, rgb, f, lab = _object_scene([(TALL, (0.45, -0.08), RED_MUG)])
    idx, d = presence_descriptors(xyz, rgb, f)
    assert d.shape == (len(idx), 2 * (D + 12))
    assert np.all(lab[idx] == RED_MUG)  # the table points are not descriptors
    assert (lab == RED_MUG).sum() - len(idx) < 0.2 * (lab == RED_MUG).sum()  # most object points are
    np.testing.assert_allclose(np.linalg.norm(d[:, :D], axis=1), 1.0, atol=1e-5)


def test_present_object_scores_above_absent_ones(recogniser):
    xyz, rgb, f, _ = _object_scene([(TALL, (0.5, 0.0), RED_MUG), (FLAT, (0.5, 0.15), BLUE_BOX)], seed=7)
    _, d = presence_descriptors(xyz, rgb, f)
    present = recogniser.presence(d, instruction_referents("pick up the red mug", VOCAB))
    absent = recogniser.presence(d, instruction_referents("pick up the yellow duck", VOCAB))
    unknown_colour = recogniser.presence(d, instruction_referents("give me the purple cube", VOCAB))
    assert present > 0.5 > absent
    assert present > unknown_colour
    assert recogniser.presence(d, []) is None
    assert recogniser.presence(d[:0], [RED_MUG]) == 0.0
    p = recogniser.object_probs(d)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-9)


def test_meta_roundtrip_keeps_probabilities(recogniser):
    back = PresenceRecogniser.from_meta(json.loads(json.dumps(recogniser.to_meta())))
    xyz, rgb, f, _ = _object_scene([(TALL, (0.5, 0.0), RED_MUG)], seed=3)
    _, d = presence_descriptors(xyz, rgb, f)
    np.testing.assert_allclose(back.object_probs(d), recogniser.object_probs(d), atol=1e-3)


FACTORISED = {"colour": ["colour"], "shape": ["clip", "geometry"], "category": ["clip", "geometry"]}


@pytest.mark.parametrize("inputs", [None, FACTORISED], ids=["shared", "factorised"])
def test_hidden_layer_recogniser_separates_and_roundtrips(tmp_path, inputs):
    """One shared hidden layer, or one per attribute over its own descriptor groups (factorised:
    shape and category blind to the colour statistics)."""
    rec = PresenceRecogniser.fit(*_training_points((0.5, -0.1), (0.55, 0.1)), VOCAB, steps=150, hidden=16,
                                 inputs=inputs)
    if inputs is None:
        assert rec.trunk is not None and rec.trunk[0].shape[0] == 16
    else:
        assert rec.trunk is None and rec.inputs == inputs
        assert rec.trunks["colour"][0].shape == (16, 12)  # colour mean + std of both radii
    xyz, rgb, f, _ = _object_scene([(TALL, (0.5, 0.0), RED_MUG), (FLAT, (0.5, 0.15), BLUE_BOX)], seed=7)
    _, d = presence_descriptors(xyz, rgb, f)
    present = rec.presence(d, instruction_referents("pick up the red mug", VOCAB))
    absent = rec.presence(d, instruction_referents("pick up the yellow duck", VOCAB))
    assert present > 0.5 > absent
    back = PresenceRecogniser.load(rec.save(tmp_path))
    np.testing.assert_allclose(back.object_probs(d), rec.object_probs(d), atol=1e-4)
    meta = PresenceRecogniser.from_meta(json.loads(json.dumps(rec.to_meta())))
    np.testing.assert_allclose(meta.object_probs(d), rec.object_probs(d), atol=1e-3)


TINY_SR = PolicyConfig.from_variant("SR", feature_dim=D, d_model=32, num_heads=4, num_layers=1,
                                   num_points=256, num_keep=64)


class _Cloud:
    def __init__(self, xyz, rgb, features):
        self.xyz, self.rgb, self.features = xyz, rgb, features


def test_decide_refuses_an_absent_target_only(recogniser):
    torch.manual_seed(0)
    cfg = TINY_SR
    meta = {"presence_statistic": "recogniser", "presence_recogniser": recogniser.to_meta(),
            "presence_threshold": 0.5}
    pol = Policy(PolicyModel(cfg), meta)
    xyz, rgb, f, _ = _object_scene([(TALL, (0.5, 0.0), RED_MUG), (FLAT, (0.5, 0.15), BLUE_BOX)], seed=11)
    cloud, text = _Cloud(xyz, rgb, f), np.random.default_rng(1).standard_normal((3, D)).astype(np.float32)
    ok = pol.decide(cloud, "pick up the red mug", text_features=text)
    assert ok.outcome == "ok" and ok.relevance["presence"] > 0.5
    absent = pol.decide(cloud, "pick up the yellow duck", text_features=text)
    assert absent.outcome == "target_not_found" and absent.pose is None
    assert absent.relevance["presence"] < 0.5 and absent.relevance["threshold"] == 0.5
    # no object named: refused as not understood (it used to grasp whatever scored best)
    vague = pol.decide(cloud, "pick that up", text_features=text)
    assert vague.outcome == "not_understood" and vague.pose is None and "object" in vague.reason
    # without a calibrated threshold nothing is refused
    pol.meta["presence_threshold"] = None
    assert pol.decide(cloud, "pick up the yellow duck", text_features=text).outcome == "ok"


def test_recogniser_files_roundtrip_through_policy_save_and_load(recogniser, tmp_path):
    """Policy.save writes the heads as safetensors next to the model; load reads them back, and a
    corrupt file is a clear error at load time (not mid-task)."""
    cfg = TINY_SR
    meta = {"presence_statistic": "recogniser", "presence_recogniser": recogniser.to_meta(),
            "presence_threshold": 0.5}
    Policy(PolicyModel(cfg), meta).save(tmp_path / "ckpt")
    blob = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert blob["meta"]["presence_recogniser"] == "."  # no weights as JSON numbers
    back = Policy.load(tmp_path / "ckpt").recogniser
    xyz, rgb, f, _ = _object_scene([(TALL, (0.5, 0.0), RED_MUG)], seed=3)
    _, d = presence_descriptors(xyz, rgb, f)
    np.testing.assert_allclose(back.object_probs(d), recogniser.object_probs(d), atol=1e-5)
    (tmp_path / "ckpt" / "presence_recogniser.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="cannot load the presence recogniser"):
        Policy.load(tmp_path / "ckpt")


def test_shipped_checkpoints_share_one_recogniser():
    from vla_policy.policy import CHECKPOINT_DIR

    recs = [Policy.load(v) for v in ("SR", "SR+MGFA")]
    assert all(p.meta["presence_recogniser"] == "../presence" for p in recs)
    assert recs[0].recogniser.vocabulary == recs[1].recogniser.vocabulary
    assert (CHECKPOINT_DIR / "presence" / "presence_recogniser.safetensors").stat().st_size < 1e6


def test_grounding_reweights_candidates_towards_the_described_object(recogniser):
    from vla_policy.policy import GROUNDING_FLOOR, grounding_scores, reground

    points = np.array([[0.5, 0.0, 0.05], [0.5, 0.15, 0.05]])
    probs = np.array([0.9, 0.1])  # p(red mug | point) near the mug, not near the box
    cands = np.array([[0.5, 0.01, 0.06], [0.5, 0.15, 0.06], [0.9, 0.9, 0.9]])
    g = grounding_scores(cands, points, probs)
    np.testing.assert_allclose(g, [0.9, 0.1, 0.0])  # the far candidate has no described point near it
    model = np.array([0.2, 0.7, 0.1])  # the policy prefers the box
    out = reground(model, g, 4.0)
    assert out.argmax() == 0 and abs(out.sum() - 1.0) < 1e-9
    np.testing.assert_allclose(reground(model, g, 0.0), model)  # weight 0: unchanged
    assert out[2] > 0 and out[2] < model[2] * GROUNDING_FLOOR ** 3  # off every object: kept, tiny

    # in decide(): the same cloud and model, the grounded choice lands on the instructed object
    torch.manual_seed(0)
    cfg = TINY_SR
    meta = {"presence_statistic": "recogniser", "presence_recogniser": recogniser.to_meta(),
            "presence_threshold": None, "grounding_weight": 4.0}
    pol = Policy(PolicyModel(cfg), meta)
    # two graspable objects (the flat box is wider than the gripper opens)
    xyz, rgb, f, lab = _object_scene([(TALL, (0.5, 0.0), RED_MUG), (TALL, (0.5, 0.15), YELLOW_DUCK)], seed=11)
    text = np.random.default_rng(1).standard_normal((3, D)).astype(np.float32)
    for instruction, centre in (("pick up the red mug", (0.5, 0.0)),
                                ("pick up the yellow duck", (0.5, 0.15))):
        d = pol.decide(_Cloud(xyz, rgb, f), instruction, text_features=text)
        assert d.outcome == "ok" and np.linalg.norm(d.pose[:2, 3] - np.array(centre)) < 0.06, instruction


def test_objects_the_heads_never_saw_are_not_judged(recogniser):
    """An instruction describing an object outside the fitted set is neither refused nor re-weighted."""
    assert recogniser.known == sorted({"red mug", "blue box", "yellow duck"})
    duck = [YELLOW_DUCK]
    assert recogniser.judges([RED_MUG]) and not recogniser.judges([RED_MUG, NAMES.index("banana")])
    cfg = TINY_SR
    pol = Policy(PolicyModel(cfg), {"presence_statistic": "recogniser", "presence_threshold": 0.5,
                                    "presence_recogniser": recogniser.to_meta(), "grounding_weight": 4.0})
    xyz, rgb, f, _ = _object_scene([(TALL, (0.5, 0.0), RED_MUG), (FLAT, (0.5, 0.15), BLUE_BOX)], seed=11)
    text = np.random.default_rng(1).standard_normal((3, D)).astype(np.float32)
    assert pol.referent_map(xyz, rgb, f, "pick up the yellow duck") is not None and duck
    d = pol.decide(_Cloud(xyz, rgb, f), "pick up the banana", text_features=text)
    assert d.outcome == "ok" and d.relevance["presence"] is None  # cannot judge: no refusal
    back = PresenceRecogniser.from_meta(json.loads(json.dumps(recogniser.to_meta())))
    assert back.known == recogniser.known


def test_reference_box_takes_a_big_object_whole_and_nothing_beside_it():
    """A 20 cm tray whose best point is at one corner is taken whole; a look-alike 4 cm away is not."""
    from vla_policy.policy import reference_box

    g = np.arange(0.0, 0.2001, 0.01)
    xx, yy = np.meshgrid(g + 0.4, g - 0.1)
    tray = np.c_[xx.ravel(), yy.ravel(), np.full(xx.size, 0.03)]  # (441, 3) top of the tray
    # the recogniser is surest at one corner and less sure across the tray (0.9 -> 0.3)
    p_tray = 0.9 - 0.6 * np.linalg.norm(tray[:, :2] - tray[0, :2], axis=1) / 0.283
    other = np.c_[np.full(25, 0.64), np.linspace(-0.1, 0.1, 25), np.full(25, 0.05)]  # 4 cm past the edge
    pts = np.concatenate([tray, other])
    probs = np.concatenate([p_tray, np.full(25, 0.8)])
    lo, hi = reference_box(pts, probs)
    np.testing.assert_allclose(lo[:2], [0.4, -0.1], atol=1e-6)
    np.testing.assert_allclose(hi[:2], [0.6, 0.1], atol=1e-6)  # the whole tray, not the look-alike
    assert reference_box(pts, probs * 0.1) is None  # nothing convincing: not found


def test_target_region_is_the_described_object_and_not_a_touching_one():
    """Two touching boxes of different colours: the region is grown over the described one only,
    although single points of the other score as high (per-point noise)."""
    from clouds import box, table

    from vla_policy.policy import target_region

    a = box((0.05, 0.05, 0.06), (0.50, 0.0), step=0.005)
    b = box((0.05, 0.05, 0.06), (0.55, 0.0), step=0.005)
    t = table(step=0.01)
    t = t[~((np.abs(t[:, 0] - 0.525) < 0.05) & (np.abs(t[:, 1]) < 0.025))]
    xyz = np.concatenate([t, a, b])
    rgb = np.concatenate([np.full((len(t), 3), 200), np.tile([200, 30, 30], (len(a), 1)),
                          np.tile([30, 30, 200], (len(b), 1))]).astype(np.uint8)
    rng = np.random.default_rng(0)
    obj = np.arange(len(t), len(xyz))
    sub = obj[rng.random(len(obj)) < 0.5]  # the map covers a sub-sample of the object points
    is_a = sub < len(t) + len(a)
    probs = np.where(is_a, rng.uniform(0.3, 0.9, len(sub)), rng.uniform(0.0, 0.1, len(sub)))
    probs[np.flatnonzero(~is_a)[:2]] = 0.95  # two confident wrong points on the other box
    region = target_region(xyz[sub], probs, xyz, rgb)
    in_a = np.all(np.abs(region[:, :2] - [0.50, 0.0]) <= 0.0251, axis=1)
    assert in_a.all() and len(region) > 0.8 * len(a[a[:, 2] > 0.008])
    # without the cloud: the whole component (both boxes touch)
    assert len(target_region(xyz[sub], probs)) == len(sub)


def test_presence_descriptors_keep_a_flat_object_with_the_full_cloud_plane():
    """An object-biased sub-sample of a scene with a big flat book: RANSAC on it may take the book's
    top for the table; with the full cloud's plane the book's points stay object points."""
    from clouds import box, table

    from vla_policy.priors import support_plane

    book = box((0.18, 0.16, 0.025), (0.5, 0.0), step=0.004)
    t = table(step=0.005)
    full = np.concatenate([t, book])
    sub = np.concatenate([t[::12], book])  # what select_points keeps: mostly object points
    f = np.ones((len(sub), 4), np.float32)
    plane = support_plane(full)
    idx, _ = presence_descriptors(sub, None, f, plane=plane)
    on_book = np.arange(len(t[::12]), len(sub))
    top = on_book[book[:, 2] > 0.02]
    assert np.isin(top, idx).all()


def test_object_grounding_puts_every_candidate_on_the_described_touching_object(recogniser):
    """decide() with ``grounding_object``: two touching objects share a cluster; every scored
    candidate lies on the described one, and once every pose on it has failed the whole scene's
    candidates come back."""
    torch.manual_seed(0)
    meta = {"presence_statistic": "recogniser", "presence_recogniser": recogniser.to_meta(),
            "presence_threshold": None, "grounding_weight": 4.0, "grounding_object": True}
    pol = Policy(PolicyModel(TINY_SR), meta)
    small = (0.05, 0.05, 0.10)
    xyz, rgb, f, _ = _object_scene([(small, (0.5, 0.0), RED_MUG), (small, (0.5, 0.05), YELLOW_DUCK)], seed=5)
    text = np.random.default_rng(1).standard_normal((3, D)).astype(np.float32)
    for instruction, centre in (("pick up the red mug", (0.5, 0.0)),
                                ("pick up the yellow duck", (0.5, 0.05))):
        d = pol.decide(_Cloud(xyz, rgb, f), instruction, text_features=text)
        assert d.outcome == "ok" and len(d.candidates) > 0, instruction
        off = np.abs(d.candidates[:, :2, 3] - np.array(centre)).max(1)
        assert np.all(off <= 0.035), (instruction, off.max())  # all on the 5 cm object (+ tilt offsets)
    # every pose on the mug tried: the next decision may use the rest of the scene
    d = pol.decide(_Cloud(xyz, rgb, f), "pick up the red mug", text_features=text)
    tried = [(c[:3, 3], 0.03) for c in d.candidates]
    d2 = pol.decide(_Cloud(xyz, rgb, f), "pick up the red mug", text_features=text, exclude=tried)
    assert d2.outcome == "ok" and np.abs(d2.pose[1, 3] - 0.05) < 0.035  # the duck's poses, re-weighted


def test_container_drop_pose_is_over_the_centre_with_the_tips_above_the_rim():
    from vla_policy.priors import CONTAINER_RIM_CLEARANCE_M, GripperSpec, container_drop_pose

    g = GripperSpec()
    T = container_drop_pose(np.array([0.35, -0.2, 0.0]), np.array([0.55, -0.04, 0.06]), g)
    np.testing.assert_allclose(T[:2, 3], [0.45, -0.12])
    np.testing.assert_allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-12)
    assert np.linalg.det(T[:3, :3]) == pytest.approx(1.0)
    tips = T[:3, 3] + g.tip_beyond_tcp_m * T[:3, 2]
    assert T[2, 2] == -1.0 and tips[2] == pytest.approx(0.06 + CONTAINER_RIM_CLEARANCE_M)


def test_descriptor_groups_partition_the_columns():
    from vla_policy.policy import DESCRIPTOR_GROUPS, descriptor_columns

    width = 2 * (D + 12)
    parts = [descriptor_columns([g], width) for g in DESCRIPTOR_GROUPS]
    assert [len(p) for p in parts] == [2 * D, 12, 12]
    assert sorted(np.concatenate(parts).tolist()) == list(range(width))
    assert descriptor_columns(["colour"], width).tolist() == [D, D + 1, D + 2, D + 3, D + 4, D + 5,
                                                               2 * D + 12, 2 * D + 13, 2 * D + 14,
                                                               2 * D + 15, 2 * D + 16, 2 * D + 17]
    with pytest.raises(ValueError, match="blocks"):
        descriptor_columns(["clip"], width + 1)


def test_factorised_recogniser_refuses_bad_inputs():
    rec = PresenceRecogniser.fit(*_training_points(), VOCAB, steps=5, hidden=4, inputs=FACTORISED)
    with pytest.raises(ValueError, match="descriptor groups"):
        PresenceRecogniser(VOCAB, rec.heads, inputs={**FACTORISED, "colour": ["hue"]}, trunks=rec.trunks)
    with pytest.raises(ValueError, match="hidden layer per attribute"):
        PresenceRecogniser(VOCAB, rec.heads, inputs=FACTORISED)
    with pytest.raises(ValueError, match="hidden > 0"):
        PresenceRecogniser.fit(*_training_points(), VOCAB, steps=5, inputs=FACTORISED)


def test_presence_calibration_reads_factorised_inputs():
    import argparse

    from vla_policy.presence_calibration import parse_inputs

    assert parse_inputs("colour=colour; shape=clip,geometry;category=clip") == {
        "colour": ["colour"], "shape": ["clip", "geometry"], "category": ["clip"]}
    for bad in ("colour=colour", "colour=colour;shape=clip;category=hue", "colour=;shape=clip;category=clip"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_inputs(bad)


def test_attribute_recogniser_judges_the_objects_the_heads_do_not_know(tmp_path):
    """referent_probs: the heads for objects they were fitted on, the attribute recogniser for others;
    both travel in one directory and in the meta."""
    x, y = _training_points()
    known = PresenceRecogniser.fit(x[y != YELLOW_DUCK], y[y != YELLOW_DUCK], VOCAB, steps=100)
    inputs = {"colour": ["colour"], "shape": ["geometry"], "category": ["geometry"]}
    attrs = PresenceRecogniser.fit(x, y, VOCAB, steps=100, hidden=8, inputs=inputs)
    xyz, rgb, f, _ = _object_scene([(TALL, (0.5, 0.0), RED_MUG), (TALL, (0.5, 0.15), YELLOW_DUCK)], seed=5)
    _, d = presence_descriptors(xyz, rgb, f)
    mug, duck = [RED_MUG], [YELLOW_DUCK]
    assert known.judges(mug) and not known.judges(duck)
    np.testing.assert_allclose(known.referent_probs(d, duck), known.object_probs(d)[:, duck].sum(1))
    known.attributes = attrs
    np.testing.assert_allclose(known.referent_probs(d, mug), known.object_probs(d)[:, mug].sum(1))
    np.testing.assert_allclose(known.referent_probs(d, duck), attrs.object_probs(d)[:, duck].sum(1))
    back = PresenceRecogniser.load(known.save(tmp_path))
    assert back.attributes is not None and back.attributes.inputs == inputs
    np.testing.assert_allclose(back.referent_probs(d, duck), known.referent_probs(d, duck), atol=1e-4)
    meta = PresenceRecogniser.from_meta(json.loads(json.dumps(known.to_meta())))
    np.testing.assert_allclose(meta.referent_probs(d, duck), known.referent_probs(d, duck), atol=1e-3)
    known.attributes = None  # saving without one removes the companion files
    assert PresenceRecogniser.load(known.save(tmp_path)).attributes is None


def test_a_true_instruction_counts_only_where_its_target_is_in_the_stored_cloud():
    """Calibration positives: a target with (almost) no points in the stored cloud cannot be
    recognised, so it does not count as a present target (train.target_visible)."""
    from vla_policy.train import target_visible

    xyz, rgb, f, _ = _object_scene([(TALL, (0.45, -0.08), RED_MUG)])
    mug_box = [[0.41, -0.12, -0.01], [0.49, -0.04, 0.12]]
    elsewhere = [[0.1, 0.3, -0.01], [0.15, 0.35, 0.12]]

    def sample(target, box):
        return {"xyz": xyz, "rgb": rgb, "features": f,
                "meta": {"target": target, "object_aabbs": {target: box}}}

    assert target_visible(sample("red mug", mug_box), NAMES)
    assert not target_visible(sample("red mug", elsewhere), NAMES)  # its box holds no cloud point
    assert not target_visible(sample("red mug", mug_box), NAMES, min_points=10 ** 6)
    assert target_visible({"xyz": xyz, "rgb": rgb, "features": f, "meta": {"target": "red mug"}}, NAMES)


def test_install_from_ships_a_run_without_refitting(tmp_path, monkeypatch):
    """Heads from one run, then an attribute recogniser from another: each lands beside the other."""
    import shutil

    import vla_policy.presence_calibration as pc
    from vla_policy.policy import CHECKPOINT_DIR

    ck = tmp_path / "checkpoints"
    shutil.copytree(CHECKPOINT_DIR / "presence", ck / "presence")
    shutil.copytree(CHECKPOINT_DIR / "SR", ck / "SR")
    monkeypatch.setattr(pc, "CHECKPOINT_DIR", ck)
    shipped_attrs = PresenceRecogniser.load(ck / "presence").attributes
    assert shipped_attrs is not None
    x, y = _training_points()
    heads = PresenceRecogniser.fit(x, y, VOCAB, steps=50)
    heads.save(tmp_path / "run_heads")
    (tmp_path / "run_heads" / "presence_calibration.json").write_text(json.dumps(
        {"presence_threshold": 0.123, "presence_tpr": 0.9, "calibration": "test"}))
    assert pc.install_from(tmp_path / "run_heads", {}) == ["SR"]
    now = PresenceRecogniser.load(ck / "presence")
    np.testing.assert_allclose(now.heads["colour"][0], heads.heads["colour"][0])
    assert now.attributes is not None  # the shipped attribute recogniser stays
    np.testing.assert_allclose(now.attributes.heads["colour"][0], shipped_attrs.heads["colour"][0])
    meta = json.loads((ck / "SR" / "config.json").read_text())["meta"]
    assert meta["presence_threshold"] == 0.123 and meta["presence_recogniser"] == "../presence"
    assert not any(k.startswith("combined_") for k in meta)  # measured with other heads: dropped

    inputs = {"colour": ["colour"], "shape": ["geometry"], "category": ["geometry"]}
    attrs = PresenceRecogniser.fit(x, y, VOCAB, steps=30, hidden=8, inputs=inputs)
    other = PresenceRecogniser.fit(x[:50], y[:50], VOCAB, steps=5)  # the heads that run was attached to
    other.attributes = attrs
    other.save(tmp_path / "run_attrs")
    (tmp_path / "run_attrs" / "presence_calibration.json").write_text(json.dumps(
        {"attributes_presence_tpr": 0.8, "combined_heldout_seen_grounding_acc": 0.1}))
    assert pc.install_from(tmp_path / "run_attrs", {}) == ["SR"]
    now = PresenceRecogniser.load(ck / "presence")
    np.testing.assert_allclose(now.heads["colour"][0], heads.heads["colour"][0])  # not the run's heads
    np.testing.assert_allclose(now.attributes.trunks["colour"][0], attrs.trunks["colour"][0])
    meta = json.loads((ck / "SR" / "config.json").read_text())["meta"]
    assert meta["attributes_presence_tpr"] == 0.8 and meta["presence_threshold"] == 0.123
    assert "combined_heldout_seen_grounding_acc" not in meta  # stale: measured with the run's heads
