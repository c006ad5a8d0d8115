# SPDX-License-Identifier: Apache-2.0
"""Noise table (vla_policy.noise): point noise draws, table rows, CLI outputs, on synthetic shards."""

from __future__ import annotations

import json

import numpy as np
import pytest
from synthetic import write_shards

from vla_policy.configuration import PolicyConfig
from vla_policy.data import load_samples
from vla_policy.model import PolicyModel
from vla_policy.noise import add_point_noise, noise_table, to_markdown


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    d = tmp_path_factory.mktemp("shards")
    write_shards(d, n_episodes=6)
    return load_samples(d)


def test_point_noise_has_the_requested_sigma_and_keeps_the_inputs(samples):
    before = [s["xyz"].copy() for s in samples]
    noisy = add_point_noise(samples, 0.02, seed=3)
    d = np.concatenate([n["xyz"] - s["xyz"] for n, s in zip(noisy, samples)])
    assert abs(d.std() - 0.02) < 0.002 and abs(d.mean()) < 0.002
    assert all(np.array_equal(b, s["xyz"]) for b, s in zip(before, samples))  # inputs untouched
    assert all(n["features"] is s["features"] for n, s in zip(noisy, samples))  # only xyz changes
    again = add_point_noise(samples, 0.02, seed=3)
    assert all(np.array_equal(a["xyz"], b["xyz"]) for a, b in zip(noisy, again))  # seeded
    assert all(np.array_equal(a["xyz"], s["xyz"]) for a, s in zip(add_point_noise(samples, 0.0, 0), samples))
    with pytest.raises(ValueError, match="sigma"):
        add_point_noise(samples, -0.01, seed=0)
    with pytest.raises(ValueError, match="unknown noise kind"):
        add_point_noise(samples, 0.1, seed=0, kind="rgb")


def test_feature_noise_keeps_unit_features_at_the_requested_angle(samples):
    noisy = add_point_noise(samples, 0.3, seed=1, kind="features")
    f0 = np.concatenate([s["features"].astype(np.float32) for s in samples])
    f1 = np.concatenate([n["features"] for n in noisy])
    assert np.allclose(np.linalg.norm(f1, axis=1), 1.0, atol=1e-5)
    # noise of norm ~0.3 on a unit vector: the feature turns by ~atan(0.3) = 17 deg on average
    cos = (f0 / np.linalg.norm(f0, axis=1, keepdims=True) * f1).sum(1)
    assert 0.93 < cos.mean() < 0.98
    assert all(np.array_equal(n["xyz"], s["xyz"]) for n, s in zip(noisy, samples))


def test_table_rows_and_markdown(samples):
    tiny = dict(d_model=32, num_heads=4, num_layers=1, num_points=128, num_keep=32, max_candidates=12,
                feature_dim=16)
    models = {v: PolicyModel(PolicyConfig.from_variant(v, **tiny)).eval() for v in ("SR-A", "SR-ReLU")}
    rows = noise_table(models, samples, "xyz", sigmas=(0.0, 0.05), repeats=2, progress=False)
    assert [(r["variant"], r["sigma"], r["draws"]) for r in rows] == [
        ("SR-A", 0.0, 1), ("SR-A", 0.05, 2), ("SR-ReLU", 0.0, 1), ("SR-ReLU", 0.05, 2)]
    assert {r["attention"] for r in rows} == {"softmax", "relu"}
    assert all(0.0 <= r["hit"] <= 1.0 and r["n"] == len(samples) for r in rows)
    md = to_markdown(rows)
    assert "| SR-ReLU (relu) |" in md and "sigma 5 cm" in md
    json.dumps(rows)  # serialisable as written by the CLI
