# SPDX-License-Identifier: Apache-2.0
"""Camera sources: RealSense through pyrealsense2's software_device, ROS stamp sync, rig YAML, sim."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from vla_common.camera import CameraIntrinsics
from vla_perception.sources import (
    RealSenseCamera,
    RealSenseSource,
    RosCameraSource,
    SimCameraSource,
    load_rig_extrinsics,
    realsense_topics,
)

W, H = 64, 48


def software_realsense(depth_mm: np.ndarray, rgb: np.ndarray, n_frames: int = 3):
    """A pyrealsense2 software_device with depth (z16) + colour (rgb8) streams fed from numpy."""
    rs = pytest.importorskip("pyrealsense2")
    dev = rs.software_device()
    ds, cs = dev.add_sensor("Depth"), dev.add_sensor("Color")
    intr = rs.intrinsics()
    intr.width, intr.height, intr.fx, intr.fy, intr.ppx, intr.ppy = W, H, 50.0, 52.0, 31.0, 23.0
    intr.model, intr.coeffs = rs.distortion.none, [0.0] * 5

    def stream(kind, uid, bpp, fmt):
        vs = rs.video_stream()
        vs.type, vs.index, vs.uid, vs.fmt = kind, 0, uid, fmt
        vs.width, vs.height, vs.fps, vs.bpp = W, H, 30, bpp
        vs.intrinsics = intr
        return vs

    dp = ds.add_video_stream(stream(rs.stream.depth, 0, 2, rs.format.z16))
    cp = cs.add_video_stream(stream(rs.stream.color, 1, 3, rs.format.rgb8))
    ds.add_read_only_option(rs.option.depth_units, 0.001)
    ex = rs.extrinsics()
    ex.rotation, ex.translation = [1, 0, 0, 0, 1, 0, 0, 0, 1], [0, 0, 0]
    dp.register_extrinsics_to(cp, ex)
    dev.create_matcher(rs.matchers.default)
    sync = rs.syncer(10)  # queue of 10 framesets: the test feeds them all before reading
    ds.open(dp)
    cs.open(cp)
    ds.start(sync)
    cs.start(sync)

    def feed():
        for i in range(n_frames):
            for sensor, prof, pix, bpp in ((ds, dp, depth_mm, 2), (cs, cp, rgb, 3)):
                f = rs.software_video_frame()
                f.pixels, f.stride, f.bpp = pix, W * bpp, bpp
                f.timestamp, f.frame_number = 1000.0 + 33.0 * i, i
                f.domain = rs.timestamp_domain.hardware_clock
                f.profile = prof.as_video_stream_profile()
                sensor.on_video_frame(f)

    keep = (dev, ds, cs, dp, cp)  # the SDK objects must outlive the test
    return sync, feed, keep


def test_realsense_software_device_frames():
    depth = np.full((H, W), 700, np.uint16)
    depth[10:20, 10:20] = 0  # holes -> NaN
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[..., 0] = 200
    rgb[:, :8, 2] = 90
    sync, feed, _keep = software_realsense(depth, rgb)
    T = np.eye(4)
    T[:3, 3] = [0.1, 0.2, 0.9]
    feed()
    src = RealSenseSource([RealSenseCamera("top", T, sync.wait_for_frames, timeout_ms=1000)])
    frames = src.read()
    assert src.errors == {} and len(frames) == 1
    f = frames[0]
    f.validate()
    assert f.name == "top" and f.rgb.shape == (H, W, 3) and f.depth.dtype == np.float32
    assert np.array_equal(f.rgb, rgb)
    assert (f.intrinsics.fx, f.intrinsics.fy, f.intrinsics.cx, f.intrinsics.cy) == (50.0, 52.0, 31.0, 23.0)
    valid = np.isfinite(f.depth)
    assert np.allclose(f.depth[valid], 0.7, atol=1e-4)  # z16 * depth_units (1 mm) -> metres
    assert np.isnan(f.depth[12:18, 12:18]).all()  # the holes stay holes after alignment
    assert np.allclose(f.T_world_cam, T) and f.stamp_s > 0


def test_realsense_timeout_is_reported_not_raised():
    rs = pytest.importorskip("pyrealsense2")
    sync = rs.syncer()  # nothing ever feeds it
    cam = RealSenseCamera("left", np.eye(4), sync.wait_for_frames, timeout_ms=50, max_tries=1)
    src = RealSenseSource([cam])
    assert src.read() == []
    assert "left" in src.errors and "no frames" in src.errors["left"]


def test_ros_source_syncs_by_stamp():
    K = CameraIntrinsics(4, 3, 2.0, 2.0, 1.5, 1.0)
    src = RosCameraSource(["a", "b"], {"a": np.eye(4), "b": np.eye(4)}, slop_s=0.02)
    rgb, depth = np.zeros((3, 4, 3), np.uint8), np.ones((3, 4), np.float32)
    for cam in "ab":
        src.set_info(cam, K)
    src.add_color("a", 1.00, rgb)
    src.add_depth("a", 1.005, depth)
    src.add_color("b", 1.01, rgb)
    src.add_depth("b", 1.50, depth)  # b's depth is far off: no set yet
    assert src.read() == []
    src.add_depth("b", 1.012, depth)
    frames = src.read()
    assert [f.name for f in frames] == ["a", "b"] and frames[1].stamp_s == pytest.approx(1.01)
    assert src.read() == []  # nothing new
    # camera b stops: only a partial set, and only when asked for it
    src.add_color("a", 2.0, rgb)
    src.add_depth("a", 2.0, depth)
    assert src.read() == []
    frames = src.read(allow_partial=True)
    assert [f.name for f in frames] == ["a"] and "b" in src.missing and "colour" in src.missing["b"]


def test_ros_source_needs_extrinsics_for_every_camera():
    with pytest.raises(ValueError, match=r"no extrinsics for cameras \['c'\]"):
        RosCameraSource(["a", "c"], {"a": np.eye(4)})


def test_realsense_topic_names():
    t = realsense_topics("top")
    assert t == {"color": "/cameras/top/color/image_raw",
                 "depth": "/cameras/top/aligned_depth_to_color/image_raw",
                 "info": "/cameras/top/color/camera_info"}


def test_rig_yaml(tmp_path):
    from pathlib import Path

    rig = Path(__file__).resolve().parents[2] / "config" / "rig_sim.yaml"
    ext = load_rig_extrinsics(rig)
    assert set(ext) == {"top", "left", "right"}
    assert ext["top"][2, 3] > 0.5  # above the table
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras:\n  top:\n    T_world_cam: [[1, 0], [0, 1]]\n")
    with pytest.raises(ValueError, match="camera 'top' T_world_cam is not a finite 4x4"):
        load_rig_extrinsics(bad)
    bad.write_text("cameras: [\n")
    with pytest.raises(ValueError, match="cannot read rig calibration"):
        load_rig_extrinsics(bad)


def test_sim_source_renders_the_rig():
    from vla_sim.world import SimWorld

    with SimWorld(robot=None, renderer="tiny", render_size=(80, 60)) as world:
        frames = SimCameraSource(world, cameras=["top", "left"]).read()
    assert [f.name for f in frames] == ["top", "left"]
    for f in frames:
        f.validate()
        assert np.isfinite(f.depth).mean() > 0.9


def test_thread_safety_smoke():
    """Callbacks may add while another thread reads (executor threads): no exception."""
    K = CameraIntrinsics(4, 3, 2.0, 2.0, 1.5, 1.0)
    src = RosCameraSource(["a"], {"a": np.eye(4)}, slop_s=0.01)
    src.set_info("a", K)
    rgb, depth = np.zeros((3, 4, 3), np.uint8), np.ones((3, 4), np.float32)

    def writer():
        for i in range(300):
            src.add_color("a", i * 0.1, rgb)
            src.add_depth("a", i * 0.1, depth)

    t = threading.Thread(target=writer)
    t.start()
    n = sum(len(src.read()) for _ in range(300))
    t.join()
    assert n >= 1


def test_ros_source_follows_a_clock_reset():
    """The simulator restarted (stamps start again near 0): new sets come out, not the old ones."""
    K = CameraIntrinsics(4, 3, 2.0, 2.0, 2.0, 1.5)
    src = RosCameraSource(["a"], {"a": np.eye(4)}, slop_s=0.02)
    src.set_info("a", K)
    old, new = np.zeros((3, 4, 3), np.uint8), np.full((3, 4, 3), 9, np.uint8)
    depth = np.ones((3, 4), np.float32)
    src.add_color("a", 300.0, old)
    src.add_depth("a", 300.0, depth)
    assert src.read()[0].stamp_s == 300.0
    src.add_color("a", 0.5, new)
    src.add_depth("a", 0.5, depth)
    frames = src.read()
    assert frames and frames[0].stamp_s == 0.5 and frames[0].rgb[0, 0, 0] == 9


def test_ros_source_drops_an_image_of_another_size():
    K = CameraIntrinsics(4, 3, 2.0, 2.0, 2.0, 1.5)
    src = RosCameraSource(["a"], {"a": np.eye(4)})
    src.set_info("a", K)
    with pytest.raises(ValueError, match="2x1 but camera_info says 4x3"):
        src.add_color("a", 1.0, np.zeros((1, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="depth"):
        src.add_depth("a", 1.0, np.zeros((6, 8), np.float32))
    src.add_color("a", 1.0, np.zeros((3, 4, 3), np.uint8))  # the right size still goes in
