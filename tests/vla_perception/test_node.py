# SPDX-License-Identifier: Apache-2.0
"""The perception node in its own process publishes a feature cloud from published camera topics,
reports a dropped view, and reports ``cameras_silent`` when every camera stops during a request."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from percep_scene import render_scene

pytest.importorskip("rclpy")
pytestmark = pytest.mark.ros  # ~15 s: two processes, one CLIP load
HERE = Path(__file__).parent


def test_node_publishes_cloud_and_reports_dropped_view(tmp_path, ros_localhost_env):
    frames = render_scene(160, 120)
    rig = {"cameras": {f.name: {"T_world_cam": f.T_world_cam.tolist()} for f in frames}}
    (tmp_path / "rig.yaml").write_text(yaml.safe_dump(rig))
    params = {"perception": {"ros__parameters": {
        "rig_calibration": str(tmp_path / "rig.yaml"), "publish_rate_hz": 0.0, "partial_after_s": 1.0,
        "silent_after_s": 1.0,
        "threads": 1, "fusion.workspace_min": [0.0, -0.6, -0.02], "fusion.workspace_max": [1.0, 0.6, 0.4]}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = dict(ros_localhost_env)
    env["PYTHONPATH"] = str(HERE) + ":" + env.get("PYTHONPATH", "")
    node = subprocess.Popen([sys.executable, "-m", "vla_perception.perception_node", "--ros-args",
                             "--params-file", str(tmp_path / "params.yaml")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        peer = subprocess.run([sys.executable, str(HERE / "percep_peer.py"), "60"], env=env,
                              capture_output=True, text=True, timeout=120)
    finally:
        node.terminate()
        try:
            node_out, _ = node.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            node.kill()
            node_out, _ = node.communicate()
    assert peer.returncode == 0, peer.stderr[-3000:]
    result = json.loads(peer.stdout.strip().splitlines()[-1])
    clouds, events = result["clouds"], result["events"]
    assert clouds, f"no cloud received; node output:\n{node_out[-3000:]}"
    first = clouds[0]
    assert first["n"] > 200 and first["dim"] == 128 and first["has_rgb"] and first["finite"]
    assert first["frame_id"] == "world" and first["z_max"] < 0.12  # cube top at 8 cm
    published = [e for e in events if e["event"] == "cloud_published"]
    assert published and published[0]["dropped_views"] == [] and published[0]["n_points"] == first["n"]
    # the right camera went silent: a cloud from two views, with the drop reported
    dropped = [e for e in events if e["event"] == "view_dropped"]
    assert any(e["camera"] == "right" for e in dropped), events
    assert any(e["dropped_views"] and "right" in e["dropped_views"][0] for e in published)
    assert np.all([c["finite"] for c in clouds])
    # cameras delivering (phases 1, 2: requests every 0.1 s) never count as silent; all of them
    # stopped (phase 3) while requests continue: one cameras_silent naming every camera
    silent = [e for e in events if e["event"] == "cameras_silent"]
    assert silent and all(e["phase"] == 3 for e in silent), events
    ev = silent[0]
    assert ev["level"] == "error" and sorted(ev["cameras"]) == ["left", "right", "top"]
    assert ev["waited_s"] >= 1.0 and all(s is not None and s >= 1.0 for s in ev["seconds"].values()), ev
    assert ev["seconds"]["right"] > ev["seconds"]["top"]  # right went silent a phase earlier
