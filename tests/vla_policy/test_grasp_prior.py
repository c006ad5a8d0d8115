# SPDX-License-Identifier: Apache-2.0
"""Learned pre-grasping prior: loading, shapes, corrupt checkpoints, learning a geometric rule, grasp_set."""

from __future__ import annotations

import json

import numpy as np
import pytest
from clouds import box_scene

from vla_policy import grasp_prior as gp
from vla_policy.priors import PriorConfig, grasp_set


def _pose(centre, yaw):
    """Top-down TCP pose closing along the box's x axis rotated by ``yaw``."""
    T = np.eye(4)
    y = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    z = np.array([0.0, 0.0, -1.0])
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = np.cross(y, z), y, z, centre
    return T


def _toy_scene(rng):
    """A box on a table; 6 grasps across it (label 1) and 6 over empty table (label 0)."""
    yaw = rng.uniform(-np.pi, np.pi)
    centre = np.array([0.5 + rng.uniform(-0.03, 0.03), rng.uniform(-0.03, 0.03)])
    h = rng.uniform(0.05, 0.08)
    xyz = box_scene(size=(0.05, 0.1, h), center=tuple(centre), yaw=yaw, noise=0.0005,
                    seed=int(rng.integers(1e6)))
    poses, labels = [], []
    for k in range(12):
        if k < 6:
            c = np.r_[centre + rng.normal(0, 0.005, 2), h - 0.02]
        else:  # beside the box, over the table: nothing between the fingers
            ang = rng.uniform(0, 2 * np.pi)
            c = np.r_[centre + 0.13 * np.array([np.cos(ang), np.sin(ang)]), h - 0.02]
        poses.append(_pose(c, yaw + rng.normal(0, 0.1)))
        labels.append(int(k < 6))
    return xyz.astype(np.float32), np.stack(poses), np.array(labels)


def _write_toy_data(d, n_scenes, seed):
    rng = np.random.default_rng(seed)
    d.mkdir(parents=True, exist_ok=True)
    for s in range(n_scenes):
        xyz, T, y = _toy_scene(rng)
        c = len(T)
        np.savez_compressed(d / f"{s}.npz", xyz=xyz, poses=T, scores=np.full(c, 0.7), widths=np.full(c, 0.05),
                            executed=np.arange(c), lifted_any=y, lifted=y, reason=np.array(["x"] * c))


@pytest.fixture(scope="module")
def toy_prior(tmp_path_factory):
    """A prior trained on toy scenes where success = object between the fingers."""
    root = tmp_path_factory.mktemp("prior")
    _write_toy_data(root / "data", 24, seed=0)
    meta = gp.train(root / "data", root / "ckpt", epochs=25, lr=3e-3)
    return root / "ckpt", meta


def test_learns_object_between_fingers_rule(toy_prior):
    path, meta = toy_prior
    prior = gp.GraspPrior.load(path)
    rng = np.random.default_rng(99)  # fresh scenes
    correct, n = 0, 0
    for _ in range(6):
        xyz, T, y = _toy_scene(rng)
        plane, pts = gp._scene_plane(xyz)
        p = prior.score(pts, plane, T, np.full(len(T), 0.7), np.full(len(T), 0.05))
        assert p.shape == (len(T),) and np.all((p >= 0) & (p <= 1))
        correct += int(((p > 0.5) == (y == 1)).sum())
        n += len(y)
        assert p[y == 1].min() > p[y == 0].max()  # every grasp on the box outranks every empty one
    assert correct / n > 0.9
    assert meta["train_grasps"] > 0 and meta["val_scenes"] >= 1


def test_checkpoint_is_small_and_round_trips(toy_prior, tmp_path):
    path, _ = toy_prior
    assert (path / gp.WEIGHTS_NAME).stat().st_size < 1_000_000
    prior = gp.GraspPrior.load(path)
    prior.save(tmp_path / "copy")
    again = gp.GraspPrior.load(tmp_path / "copy")
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(5, 64, 3)).astype(np.float32)  # (C, P, 3)
    glob = rng.normal(size=(5, len(gp.GLOBAL))).astype(np.float32)  # (C, G)
    np.testing.assert_allclose(prior.logits(pts, glob), again.logits(pts, glob), rtol=1e-6)


def test_corrupt_or_missing_checkpoint_is_named(toy_prior, tmp_path):
    path, _ = toy_prior
    with pytest.raises(FileNotFoundError, match="grasp-prior checkpoint"):
        gp.GraspPrior.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="grasp-prior checkpoint"):  # a named prior must exist
        grasp_set(box_scene(), PriorConfig(learned_prior=str(tmp_path / "nowhere")))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / gp.CONFIG_NAME).write_text((path / gp.CONFIG_NAME).read_text())
    (bad / gp.WEIGHTS_NAME).write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ValueError, match="safetensors"):
        gp.GraspPrior.load(bad)
    (bad / gp.WEIGHTS_NAME).write_bytes((path / gp.WEIGHTS_NAME).read_bytes())
    cfg = json.loads((path / gp.CONFIG_NAME).read_text())
    cfg["net"]["point_dims"] = [16, 16]  # weights no longer fit
    (bad / gp.CONFIG_NAME).write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="architecture"):
        gp.GraspPrior.load(bad)
    (bad / gp.CONFIG_NAME).write_text("{not json")
    with pytest.raises(ValueError, match="JSON"):
        gp.GraspPrior.load(bad)
    (bad / gp.CONFIG_NAME).write_text(json.dumps({"format": gp.FORMAT}))
    with pytest.raises(ValueError, match="malformed"):
        gp.GraspPrior.load(bad)
    cfg["format"] = "something else"
    (bad / gp.CONFIG_NAME).write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="format"):
        gp.GraspPrior.load(bad)


def test_grasp_set_ranks_and_prunes_with_the_prior(toy_prior):
    path, _ = toy_prior
    pts = box_scene(size=(0.05, 0.12, 0.08), yaw=0.4, noise=0.0005)
    plain = grasp_set(pts, PriorConfig(learned_prior=None))
    ranked = grasp_set(pts, PriorConfig(learned_prior=str(path)))
    assert plain.lift_prob is None
    assert ranked.lift_prob is not None and ranked.lift_prob.shape == (len(ranked),)
    assert np.all(np.diff(ranked.lift_prob) <= 1e-12)  # best first by the learned probability
    assert 0 < len(ranked) <= PriorConfig().max_candidates
    # nothing reaches 1.01: only each cluster's best two survive, in the same order
    cfg = PriorConfig(learned_prior=str(path), prior_min_prob=1.01, prior_min_per_cluster=2)
    pruned = grasp_set(pts, cfg)
    seen: dict[int, int] = {}
    expect = []
    for k, c in enumerate(ranked.cluster):
        seen[int(c)] = seen.get(int(c), 0) + 1
        if seen[int(c)] <= 2:
            expect.append(k)
    assert len(pruned) == len(expect) < len(ranked)
    np.testing.assert_allclose(pruned.poses, ranked.poses[expect])


@pytest.mark.skipif(not (gp.CHECKPOINT / gp.CONFIG_NAME).exists(), reason="no shipped grasp prior")
def test_shipped_prior_loads_and_scores():
    prior = gp.shipped_prior()
    assert prior is not None
    pts = box_scene(size=(0.05, 0.12, 0.08), noise=0.0005)
    gs = grasp_set(pts, PriorConfig(learned_prior="shipped"))
    assert gs.lift_prob is not None and gs.lift_prob.shape == (len(gs),) and len(gs) > 0
    assert np.all((gs.lift_prob >= 0) & (gs.lift_prob <= 1))
