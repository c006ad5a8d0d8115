# SPDX-License-Identifier: Apache-2.0
"""Policy.decide on a synthetic scene: decision, target-not-found, exclusion, save/load, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from clouds import box_scene

from vla_policy.configuration import PolicyConfig
from vla_policy.model import PolicyModel
from vla_policy.policy import InstructionError, Policy, check_instruction

D = 16


class _Cloud:
    def __init__(self, xyz, features):
        self.xyz, self.features = xyz, features


def _scene():
    xyz = box_scene().astype(np.float32)
    f = np.random.default_rng(0).standard_normal((len(xyz), D)).astype(np.float32)
    return _Cloud(xyz, f / np.linalg.norm(f, axis=1, keepdims=True))


def _policy(meta=None):
    torch.manual_seed(0)
    cfg = PolicyConfig.from_variant("SR", feature_dim=D, d_model=32, num_heads=4, num_layers=1,
                                    num_points=256, num_keep=64)
    return Policy(PolicyModel(cfg), meta)


TEXT = np.random.default_rng(1).standard_normal((3, D)).astype(np.float32)


def test_decide_returns_a_candidate_pose():
    dec = _policy().decide(_scene(), "grasp the box", text_features=TEXT)
    assert dec.outcome == "ok" and dec.kind == "grasp"
    assert dec.pose.shape == (4, 4)
    assert np.allclose(dec.pose, dec.candidates[dec.index])
    assert dec.scores.shape == (len(dec.candidates),) and abs(dec.scores.sum() - 1) < 1e-5
    assert dec.index == int(np.argmax(dec.scores))
    assert {"presence", "threshold"} <= dec.relevance.keys()
    place = _policy().decide(_scene(), "put it near the box", text_features=TEXT, kind="place")
    assert place.outcome == "ok" and place.pose[2, 2] == pytest.approx(-1.0)


def test_low_relevance_gives_target_not_found():
    pol = _policy()
    presence = pol.decide(_scene(), "grasp the box", text_features=TEXT).relevance["presence"]
    pol.meta["presence_threshold"] = presence + 1.0
    dec = pol.decide(_scene(), "grasp the box", text_features=TEXT)
    assert dec.outcome == "target_not_found" and dec.pose is None and dec.index == -1
    pol.meta["presence_threshold"] = presence - 1.0
    assert pol.decide(_scene(), "grasp the box", text_features=TEXT).outcome == "ok"


def test_exclude_region_skips_candidates():
    pol = _policy()
    first = pol.decide(_scene(), "grasp the box", text_features=TEXT)
    again = pol.decide(_scene(), "grasp the box", text_features=TEXT, exclude=[(first.pose[:3, 3], 0.02)])
    assert again.outcome == "ok"
    assert np.all(np.linalg.norm(again.candidates[:, :3, 3] - first.pose[:3, 3], axis=1) > 0.02)


def test_save_load_roundtrip(tmp_path):
    pol = _policy({"presence_threshold": -3.0})
    pol.save(tmp_path / "ckpt")
    back = Policy.load(tmp_path / "ckpt")
    assert back.meta["presence_threshold"] == -3.0 and back.cfg == pol.cfg
    a = pol.decide(_scene(), "grasp the box", text_features=TEXT)
    b = back.decide(_scene(), "grasp the box", text_features=TEXT)
    assert a.index == b.index
    np.testing.assert_allclose(a.scores, b.scores, atol=2e-2)  # fp16 weights


def test_bad_inputs_are_named(tmp_path):
    pol = _policy()
    with pytest.raises(InstructionError, match="empty"):
        pol.decide(_scene(), "  ", text_features=TEXT)
    with pytest.raises(InstructionError, match="limit"):
        check_instruction("x" * 500)
    cloud = _scene()
    cloud.features = cloud.features[:, :8]
    with pytest.raises(ValueError, match="same CLIP"):
        pol.decide(cloud, "grasp the box", text_features=TEXT)
    with pytest.raises(FileNotFoundError, match="vla train"):
        Policy.load(tmp_path / "missing")
