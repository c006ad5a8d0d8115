# SPDX-License-Identifier: Apache-2.0
"""`vla train` end to end on synthetic shards: checkpoints, metrics, resume, calibration, Policy.load."""

from __future__ import annotations

import json

import numpy as np
import torch
from synthetic import write_shards

from vla_policy.data import load_samples
from vla_policy.policy import Policy
from vla_policy.train import main

TINY = ["d_model=32", "num_heads=4", "num_layers=1", "num_points=128", "num_keep=32", "max_candidates=12"]


def test_train_resume_and_load(tmp_path):
    data = tmp_path / "data"
    write_shards(data, n_episodes=12)
    samples = load_samples(data)
    assert len(samples) == 12 and samples[0]["features"].dtype == np.float16
    out = tmp_path / "run"
    args = ["--variant", "SR+PosA", "--data", str(data), "--out", str(out), "--batch-size", "4",
            "--lr", "3e-3", "--val-frac", "0.25", "--log-every", "1", "--set", *TINY]
    assert main([*args, "--epochs", "2"]) == 0
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert any(r["split"] == "val" for r in rows) and any("posa" in r for r in rows if r["split"] == "train")
    steps_first = max(r["step"] for r in rows)
    assert (out / "loss.png").stat().st_size > 1000
    # resume continues from the saved step instead of starting over
    assert main([*args, "--epochs", "3"]) == 0
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    val_steps = [r["step"] for r in rows if r["split"] == "val"]
    assert val_steps == sorted(val_steps) and max(val_steps) > steps_first
    st = torch.load(out / "training_state.pt", weights_only=True)
    assert st["epoch"] == 3
    pol = Policy.load(out / "best")
    assert pol.cfg.variant == "SR+PosA" and pol.cfg.d_model == 32
    summary = json.loads((out / "summary.json").read_text())
    assert "presence_threshold" in summary
    assert (out / "best" / "model.safetensors").stat().st_size < 20e6


def test_on_target_metric_and_off_target_filter():
    import numpy as np

    from vla_policy.train import off_target, on_object

    box = [[0.0, 0.0, 0.0], [0.1, 0.1, 0.1]]
    assert on_object(np.array([0.105, 0.05, 0.05]), box)  # within the 1 cm margin
    assert not on_object(np.array([0.12, 0.05, 0.05]), box)
    pose = np.eye(4)
    pose[:3, 3] = [0.3, 0.3, 0.05]  # the expert grasped something else (a blocker)
    s = {"target_pose": pose, "meta": {"task": "grasp", "target": "mug",
                                       "object_aabbs": {"mug": box, "box": [[0.25] * 3, [0.35] * 3]}}}
    assert off_target(s)
    pose[:3, 3] = [0.05, 0.05, 0.05]
    assert not off_target(s)
    s["meta"].pop("object_aabbs")  # older shards: no metadata, kept
    pose[:3, 3] = [0.3, 0.3, 0.05]
    assert not off_target(s)
