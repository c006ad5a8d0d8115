# SPDX-License-Identifier: Apache-2.0
"""`vla train` end to end on synthetic shards: checkpoints, metrics, resume, calibration, Policy.load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic import write_shards

from vla_policy.data import load_samples
from vla_policy.policy import CHECKPOINT_DIR, Policy
from vla_policy.train import main

TINY = ["d_model=32", "num_heads=4", "num_layers=1", "num_points=128", "num_keep=32", "max_candidates=12"]


def test_train_resume_and_load(tmp_path):
    data = tmp_path / "data"
    write_shards(data, n_episodes=12)
    samples = load_samples(data)
    assert len(samples) == 12 and samples[0]["features"].dtype == np.float16
    out = tmp_path / "run"
    args = ["--variant", "SR+PosA", "--data", str(data), "--out", str(out), "--batch-size", "4",
            "--lr", "3e-3", "--val-frac", "0.25", "--log-every", "1", "--eval-every", "2", "--set", *TINY]
    assert main([*args, "--steps", "4"]) == 0
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert any(r["split"] == "val" for r in rows) and any("posa" in r for r in rows if r["split"] == "train")
    steps_first = max(r["step"] for r in rows)
    assert (out / "loss.png").stat().st_size > 1000
    # resume continues from the saved step instead of starting over
    assert main([*args, "--steps", "6"]) == 0
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    val_steps = [r["step"] for r in rows if r["split"] == "val"]
    assert val_steps == sorted(val_steps) and max(val_steps) > steps_first
    st = torch.load(out / "training_state.pt", weights_only=True)
    assert st["step"] == 6 and st["trainer"]["steps"] == 6
    pol = Policy.load(out / "best")
    assert pol.cfg.variant == "SR+PosA" and pol.cfg.d_model == 32
    summary = json.loads((out / "summary.json").read_text())
    assert "presence_threshold" in summary
    assert (out / "best" / "model.safetensors").stat().st_size < 20e6


def test_resumed_run_equals_uninterrupted_run(tmp_path):
    """Bounded by steps and seeded: 4 steps + a resume to 6 give the weights of one 6-step run."""
    from safetensors.torch import load_file

    data = tmp_path / "data"
    write_shards(data, n_episodes=12)
    base = ["--variant", "SR", "--data", str(data), "--batch-size", "4", "--lr", "3e-3", "--val-frac", "0.25",
            "--eval-every", "2", "--presence-from", "SR", "--set", *TINY]
    assert main([*base, "--out", str(tmp_path / "a"), "--steps", "4"]) == 0
    assert main([*base, "--out", str(tmp_path / "a"), "--steps", "6"]) == 0
    assert main([*base, "--out", str(tmp_path / "b"), "--steps", "6"]) == 0
    wa, wb = (load_file(tmp_path / r / "last" / "model.safetensors") for r in "ab")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    # another seed trains other weights (the comparison above can fail)
    assert main([*base, "--out", str(tmp_path / "c"), "--steps", "6", "--seed", "1"]) == 0
    wc = load_file(tmp_path / "c" / "last" / "model.safetensors")
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    # --presence-from: the shipped grounding, not a recogniser of the run's own
    meta = Policy.load(tmp_path / "a" / "best").meta
    assert Path(meta["presence_recogniser"]) == (CHECKPOINT_DIR / "presence").resolve()
    assert meta["presence_threshold"] == Policy.load("SR").meta["presence_threshold"]
    last = Policy.load(tmp_path / "a" / "last").meta
    assert last["step"] == 6 and last["trainer"]["steps"] == 6 and last["trainer"]["seed"] == 0


def test_install_ships_the_run_next_to_the_shared_recogniser(tmp_path, monkeypatch):
    import vla_policy.train as train_mod

    ck = tmp_path / "checkpoints"
    shutil.copytree(CHECKPOINT_DIR / "presence", ck / "presence")
    shutil.copytree(CHECKPOINT_DIR / "SR", ck / "SR")
    monkeypatch.setattr(train_mod, "CHECKPOINT_DIR", ck)
    data = tmp_path / "data"
    write_shards(data, n_episodes=8)
    run = tmp_path / "run"
    assert main(["--variant", "SR", "--data", str(data), "--out", str(run), "--batch-size", "4",
                 "--steps", "2",
                 "--presence-from", str(ck / "SR"), "--install", "--set", *TINY]) == 0
    blob = json.loads((ck / "SR" / "config.json").read_text())
    assert blob["meta"]["presence_recogniser"] == "../presence" and blob["policy"]["d_model"] == 32
    assert (ck / "SR" / "loss.png").exists()
    shipped, trained = Policy.load(ck / "SR"), Policy.load(run / "best")
    assert shipped.recogniser is not None
    assert all(torch.equal(a, b) for a, b in zip(shipped.model.state_dict().values(),
                                                 trained.model.state_dict().values()))
    with pytest.raises(ValueError, match="not SR-A"):
        train_mod.install_checkpoint(run / "best", "SR-A")


def test_resume_refuses_another_config(tmp_path):
    data = tmp_path / "data"
    write_shards(data, n_episodes=8)
    base = ["--variant", "SR", "--data", str(data), "--out", str(tmp_path / "r"), "--batch-size", "4",
            "--eval-every", "2", "--presence-from", "SR", "--set", *TINY]
    assert main([*base, "--steps", "2"]) == 0
    with pytest.raises(SystemExit, match="another config"):
        main([*base, "--steps", "4", "--lr", "1e-2"])


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
