# SPDX-License-Identifier: Apache-2.0
"""camera_source: pyrealsense2 — three devices opened by the serial numbers of the rig YAML.

No RealSense camera is attached here: the devices are pyrealsense2 software_devices (real
librealsense frames, alignment and intrinsics) opened by ``open_fake_realsense``, a fake standing in
for ``RealSenseCamera.from_pipeline`` behind the same ``open_camera`` interface.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from vla_perception.sources import RealSenseCamera, realsense_serials, realsense_source_from_rig

sys.path.insert(0, str(Path(__file__).parent))
from test_sources import H, W, software_realsense  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CAMERAS = ["top", "left", "right"]


def rig_with_serials(tmp_path: Path, serials: dict[str, str | None]) -> Path:
    rig = yaml.safe_load((REPO / "config" / "rig_sim.yaml").read_text())
    for name, serial in serials.items():
        if serial is None:
            rig["cameras"][name].pop("serial", None)
        else:
            rig["cameras"][name]["serial"] = serial
    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump(rig, sort_keys=False))
    return path


def test_three_devices_by_serial(tmp_path):
    path = rig_with_serials(tmp_path, {"top": "f0000001", "left": "f0000002", "right": "f0000003"})
    opened, keep = [], []

    def open_fake_realsense(name, T, serial, width, height, fps):
        depth = np.full((H, W), 500 + 100 * len(opened), np.uint16)
        rgb = np.full((H, W, 3), 40 * (len(opened) + 1), np.uint8)
        sync, feed, k = software_realsense(depth, rgb)
        feed()
        keep.append(k)
        opened.append((name, serial, width, height, fps))
        return RealSenseCamera(name, T, sync.wait_for_frames, timeout_ms=1000)

    src = realsense_source_from_rig(path, CAMERAS, 848, 480, 15, open_camera=open_fake_realsense)
    assert opened == [("top", "f0000001", 848, 480, 15), ("left", "f0000002", 848, 480, 15),
                      ("right", "f0000003", 848, 480, 15)]
    frames = src.read(allow_partial=False)
    assert [f.name for f in frames] == CAMERAS and src.missing == {}
    rig = yaml.safe_load(path.read_text())["cameras"]
    for k, f in enumerate(frames):
        assert np.allclose(f.T_world_cam, rig[f.name]["T_world_cam"])  # extrinsics from the rig YAML
        assert f.intrinsics.fx == 50.0  # intrinsics from the device
        assert np.nanmedian(f.depth) == pytest.approx(0.5 + 0.1 * k, abs=1e-4)
    src.set_extrinsics("left", np.eye(4))
    assert np.allclose(src.cameras[1].T_world_cam, np.eye(4))


def test_rig_without_serials_or_with_duplicates_is_refused(tmp_path):
    with pytest.raises(ValueError, match="'left' has no `serial:`.*rs-enumerate-devices"):
        realsense_serials(rig_with_serials(tmp_path, {"top": "1", "left": None, "right": "3"}), CAMERAS)
    with pytest.raises(ValueError, match=r"\['7'\] are used by more than one camera"):
        realsense_serials(rig_with_serials(tmp_path, {"top": "7", "left": "7", "right": "3"}), CAMERAS)
    with pytest.raises(ValueError, match=r"no cameras \['front'\]"):
        realsense_source_from_rig(rig_with_serials(tmp_path, {}), ["top", "front"])


def test_a_device_that_fails_closes_the_ones_opened(tmp_path):
    path = rig_with_serials(tmp_path, {"top": "1", "left": "2", "right": "3"})
    closed = []

    class FakeRealSenseCamera:
        def __init__(self, name):
            self.name = name

        def close(self):
            closed.append(self.name)

    def open_fake_realsense(name, T, serial, width, height, fps):
        if name == "right":
            raise RuntimeError(f"RealSense camera {name!r} (serial {serial}) did not start")
        return FakeRealSenseCamera(name)

    with pytest.raises(RuntimeError, match="serial 3"):
        realsense_source_from_rig(path, CAMERAS, open_camera=open_fake_realsense)
    assert closed == ["top", "left"]


def test_perception_node_reads_camera_source_parameter(ros_localhost_env):
    pytest.importorskip("rclpy")
    base = [sys.executable, "-m", "vla_perception.perception_node", "--ros-args",
            "-p", f"rig_calibration:={REPO / 'config' / 'rig_sim.yaml'}"]
    r = subprocess.run(base + ["-p", "camera_source:=pyrealsense2"], env=ros_localhost_env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "has no `serial:`" in r.stdout + r.stderr  # the simulated rig has none
