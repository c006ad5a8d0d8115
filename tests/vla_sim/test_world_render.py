# SPDX-License-Identifier: Apache-2.0
"""Camera rig: image shapes, intrinsics, depth back-projection, segmentation, noise, rig YAML."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vla_sim import objects as objlib
from vla_sim.world import DepthNoise, SimWorld, default_rig, load_rig_yaml, save_rig_yaml

REPO = Path(__file__).resolve().parents[2]


def _backproject(frame, mask):
    K = frame.intrinsics
    v, u = np.nonzero(mask & np.isfinite(frame.depth))
    z = frame.depth[v, u].astype(np.float64)
    pts = np.stack([(u - K.cx) / K.fx * z, (v - K.cy) / K.fy * z, z])  # (3, N) optical frame
    return (frame.T_world_cam[:3, :3] @ pts + frame.T_world_cam[:3, 3:4]).T  # (N, 3) world


@pytest.fixture(scope="module", params=[(640, 480), (320, 240)])
def frames_and_world(request):
    w = SimWorld(robot=None, renderer="auto", render_size=request.param)
    w.add_object(
        objlib.get("red cube"), np.array([0.5, 0.1, 0.1]), np.array([0, 0, 0, 1.0]), rest_on_table=True
    )
    w.settle()
    yield w.render(), w, request.param
    w.close()


def test_frames_shapes_and_intrinsics(frames_and_world):
    frames, w, (W, H) = frames_and_world
    assert [f.name for f in frames] == ["top", "left", "right"]
    for f in frames:
        f.validate()
        assert f.rgb.shape == (H, W, 3) and f.depth.shape == (H, W) and f.seg.shape == (H, W)
        assert f.depth.dtype == np.float32 and f.seg.dtype == np.int32
        assert abs(f.intrinsics.fx - 605.0 * W / 640) < 1e-9


def test_table_backprojects_to_z0_and_cube_to_its_pose(frames_and_world):
    frames, w, (W, _) = frames_and_world
    cube = w.object_ids["red cube"]
    for f in frames:
        table = _backproject(f, f.seg == w.table_id)
        # interior pixels only (object silhouettes alias at the edges)
        assert abs(np.median(table[:, 2])) < 0.002, f.name
        assert np.percentile(np.abs(table[:, 2]), 95) < 0.005, f.name
        pts = _backproject(f, f.seg == cube)
        assert len(pts) > (50 if W == 640 else 12)
        # every cube point lies within the 5 cm cube (+ 4 mm for edge pixels), its top at z = 5 cm
        assert np.all(np.abs(pts[:, :2] - [0.5, 0.1]) < 0.029), f.name
        assert np.all(pts[:, 2] > -0.004) and abs(np.percentile(pts[:, 2], 99) - 0.05) < 0.003, f.name


def test_projection_matches_K(frames_and_world):
    """The cube centre projected with K lands on the cube's segmentation blob."""
    frames, w, _ = frames_and_world
    cube = w.object_ids["red cube"]
    T = w.object_pose("red cube")
    for f in frames:
        p_cam = np.linalg.inv(f.T_world_cam) @ np.append(T[:3, 3], 1.0)
        u = f.intrinsics.fx * p_cam[0] / p_cam[2] + f.intrinsics.cx
        v = f.intrinsics.fy * p_cam[1] / p_cam[2] + f.intrinsics.cy
        vs, us = np.nonzero(f.seg == cube)
        assert abs(us.mean() - u) < 3.0 and abs(vs.mean() - v) < 3.0, f.name
        assert np.all(f.rgb[int(round(v)), int(round(u))] == f.rgb[int(round(v)), int(round(u))])
        r, g, b = f.rgb[int(round(v)), int(round(u))].astype(int)
        assert r > g + 40 and r > b + 40, f"{f.name}: cube pixel is not red: {(r, g, b)}"


def test_depth_noise_is_seeded_and_drops_pixels():
    w = SimWorld(robot=None, renderer="tiny", render_size=(160, 120), seed=3)
    try:
        clean = w.render(cameras=["top"])[0].depth
        noise = DepthNoise(sigma_m=0.003, dropout_prob=0.05)
        a = w.render(noise, cameras=["top"])[0].depth
        frac = np.isnan(a).mean()
        assert 0.03 < frac < 0.07
        ok = np.isfinite(a) & np.isfinite(clean)
        assert 0.002 < np.std(a[ok] - clean[ok]) < 0.004
    finally:
        w.close()
    w2 = SimWorld(robot=None, renderer="tiny", render_size=(160, 120), seed=3)
    try:
        w2.render(cameras=["top"])
        b = w2.render(noise, cameras=["top"])[0].depth
        assert np.array_equal(np.isnan(a), np.isnan(b)) and np.allclose(a[ok], b[ok])
    finally:
        w2.close()
    with pytest.raises(ValueError):
        DepthNoise(sigma_m=-1.0)


def test_rig_yaml_roundtrip_and_shipped_file_is_current(tmp_path):
    rig = default_rig()
    back = load_rig_yaml(save_rig_yaml(tmp_path / "rig.yaml", rig))
    for a, b in zip(rig, back):
        assert a.name == b.name and a.intrinsics == b.intrinsics
        assert np.allclose(a.T_world_cam, b.T_world_cam, atol=1e-9)
    shipped = load_rig_yaml(REPO / "config" / "rig_sim.yaml")
    assert [c.name for c in shipped] == ["top", "left", "right"]
    for a, b in zip(rig, shipped):
        assert np.allclose(a.T_world_cam, b.T_world_cam, atol=1e-9), "regenerate config/rig_sim.yaml"
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras:\n  top: {width: 640}\n")
    with pytest.raises(ValueError, match="lacks"):
        load_rig_yaml(bad)
