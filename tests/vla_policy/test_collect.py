# SPDX-License-Identifier: Apache-2.0
"""`vla collect` end to end on the real sim, perception and expert: shard format, resume, refeature."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vla_policy.collect import main
from vla_policy.data import ARRAYS, load_samples, pose_distance, shard_index


@pytest.mark.slow
def test_collect_one_grasp_episode_resume_and_refeature(tmp_path):
    out = tmp_path / "grasp"
    args = ["--task", "grasp", "--episodes", "1", "--workers", "1", "--steps-per-episode", "2",
            "--store-views", "--seed", "5", "--out", str(out)]
    assert main(args) == 0
    entries = shard_index(out)
    assert 1 <= len(entries) <= 2
    samples = load_samples(out, extra=("views_rgb", "views_depth", "views_intr", "views_T"))
    s = samples[0]
    assert set(ARRAYS) <= s.keys()
    assert s["xyz"].shape[1] == 3 and s["features"].dtype == np.float16
    assert s["features"].shape == (len(s["xyz"]), s["text"].shape[1])
    assert s["views_rgb"].shape[0] == 3 and s["views_rgb"].dtype == np.uint8
    lab = int(s["label"])
    assert 0 <= lab < len(s["candidates"])
    chosen = s["candidates"][lab][None].astype(np.float64)
    d, a = pose_distance(chosen, s["target_pose"][None].astype(np.float64))
    assert d[0] <= 0.03 and s["meta"]["label_dist_m"] == pytest.approx(d[0], abs=1e-4)
    # nothing privileged among the model inputs: object names only in the metadata
    assert s["meta"]["instruction"] and s["meta"]["task"] == "grasp"
    # resume: the episode is complete, a second run adds nothing
    assert main(args) == 0
    assert len(shard_index(out)) == len(entries)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["samples"] == len(entries)
    # refeature with the same CLIP reproduces the stored features
    assert main(["--refeature", str(out), "--out", str(tmp_path / "re")]) == 0
    re = load_samples(tmp_path / "re")
    assert len(re) == len(samples)
    np.testing.assert_array_equal(re[0]["xyz"], s["xyz"])
    cos = (re[0]["features"].astype(np.float32) * s["features"].astype(np.float32)).sum(1)
    assert np.median(cos) > 0.95
