# SPDX-License-Identifier: Apache-2.0
"""Multi-view fusion on a rendered PyBullet scene with a cube at a known pose (noise off)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from percep_scene import CUBE_CENTER, CUBE_HALF, cube_mask_in, distance_to_cube_surface, render_scene
from scipy.spatial import cKDTree

from vla_perception.fusion import FusionConfig, NoUsableViewError, fuse_views, project, view_confidence


@pytest.fixture(scope="module")
def frames():
    return render_scene(320, 240)


def const_maps(frames, dim=4, channel=None):
    """One constant feature map per view (view i -> unit vector e_i unless `channel` is given)."""
    maps = []
    for i, _ in enumerate(frames):
        m = torch.zeros(dim, 15, 20)
        m[i if channel is None else channel] = 1.0
        maps.append(m)
    return maps


def on_cube(xyz):
    return (xyz[:, 2] > 0.004) & (np.linalg.norm(xyz[:, :2] - CUBE_CENTER[:2], axis=1) < 2 * CUBE_HALF)


def test_geometry_cube_faces_within_2mm(frames):
    cloud = fuse_views(frames, const_maps(frames), FusionConfig())
    assert cloud.dropped_views == []
    xyz = cloud.xyz.astype(np.float64)
    cube = on_cube(xyz)
    assert cube.sum() > 200
    assert distance_to_cube_surface(xyz[cube]).max() < 0.002
    # everything else is on the ground plane or the cube's lowest millimetres
    assert np.minimum(np.abs(xyz[~cube, 2]), distance_to_cube_surface(xyz[~cube])).max() < 0.002
    # the top face and at least two side faces are covered
    T_local = (xyz[cube] - CUBE_CENTER)
    assert (np.abs(T_local[:, 2] - CUBE_HALF) < 0.002).sum() > 30
    assert np.isfinite(cloud.features).all()
    assert np.allclose(np.linalg.norm(cloud.features, axis=1), 1.0, atol=1e-5)
    assert cloud.rgb.dtype == np.uint8 and cloud.xyz.dtype == np.float32


def test_three_views_agree(frames):
    clouds = [fuse_views([f], const_maps([f]), FusionConfig()) for f in frames]
    for c in clouds:
        cube = on_cube(c.xyz.astype(np.float64))
        assert cube.sum() > 50
        assert distance_to_cube_surface(c.xyz[cube].astype(np.float64)).max() < 0.002
    # where two views overlap, their points lie on the same surface: nearest neighbours are close
    for a in range(3):
        for b in range(a + 1, 3):
            tree = cKDTree(clouds[b].xyz)
            d, _ = tree.query(clouds[a].xyz[on_cube(clouds[a].xyz.astype(np.float64))])
            overlap = d < 0.01
            assert overlap.sum() > 20
            assert np.median(d[overlap]) < 0.004  # within a voxel


def test_voxel_size_is_configurable(frames):
    coarse = fuse_views(frames, const_maps(frames), FusionConfig(voxel_size_m=0.01))
    fine = fuse_views(frames, const_maps(frames), FusionConfig(voxel_size_m=0.005))
    assert len(fine) > 2 * len(coarse)  # 4x on a surface, less where pixels are sparse


def test_occluded_view_gets_low_confidence(frames):
    """Ground points hidden behind the cube in one view get ~0 weight from that view."""
    cloud = fuse_views(frames, const_maps(frames), FusionConfig())
    xyz = cloud.xyz.astype(np.float64)
    ground = xyz[:, 2] < 0.002
    for i, f in enumerate(frames):
        conf, u, v = view_confidence(xyz, f, FusionConfig())
        h, w = f.depth.shape
        ui, vi = np.rint(u).clip(0, w - 1).astype(int), np.rint(v).clip(0, h - 1).astype(int)
        inside = (u >= 0) & (u <= w - 1) & (v >= 0) & (v <= h - 1)
        _, _, z = project(xyz, f)
        # ground points behind the cube in this view: the cube's pixel there is >= 3 cm nearer
        hidden = ground & inside & cube_mask_in(f)[vi, ui] & (z - f.depth[vi, ui] > 0.03)
        visible = inside & ~hidden & ground
        if hidden.sum() < 5:
            continue
        assert conf[hidden].max() < np.exp(-3.0), f"{f.name}: occluded points keep {conf[hidden].max()}"
        assert np.median(conf[hidden]) < 0.01
        assert np.median(conf[visible]) > 0.9
        # and the fused feature of those hidden points carries no trace of view i's feature
        assert np.abs(cloud.features[hidden, i]).max() < 0.05


def test_painted_features_land_on_cube(frames):
    """Paint channel 0 on the cube's pixels of ONE view; the fused cloud lights up on the cube only."""
    view = 0
    f = frames[view]
    h, w = f.depth.shape
    m = torch.zeros(3, h, w)
    m[0] = torch.from_numpy(cube_mask_in(f).astype(np.float32))
    m[1] = 1.0 - m[0]
    maps = [m if i == view else torch.zeros(3, h, w).index_fill_(0, torch.tensor([2]), 1.0)
            for i in range(len(frames))]
    cloud = fuse_views(frames, maps, FusionConfig())
    xyz = cloud.xyz.astype(np.float64)
    cube = on_cube(xyz)
    lit = cloud.features[:, 0] > 0.3
    # the painted view sees the top face: the lit points are on the cube's surface
    assert lit.sum() > 50
    d = distance_to_cube_surface(xyz[lit])
    assert np.mean(d < 0.002) > 0.95
    assert d.max() < 0.01  # bilinear bleed at the mask's edge: <= 3 pixels of 3.5 mm
    assert (cloud.features[~cube & (xyz[:, 2] < 0.002), 0] < 0.3).mean() > 0.99


def test_missing_and_bad_views_are_dropped(frames):
    maps = const_maps(frames)
    nan_frame = dataclasses.replace(frames[1], depth=np.full_like(frames[1].depth, np.nan))
    cloud = fuse_views([frames[0], nan_frame, frames[2]], maps, FusionConfig())
    assert len(cloud) > 1000 and np.isfinite(cloud.features).all()
    assert len(cloud.dropped_views) == 1 and cloud.dropped_views[0].startswith("left: no valid depth")

    zero = dataclasses.replace(frames[1], depth=np.zeros_like(frames[1].depth))
    small = dataclasses.replace(frames[2], depth=frames[2].depth[::2, ::2])  # wrong size
    stale = dataclasses.replace(frames[2], stamp_s=frames[0].stamp_s - 5.0)
    nan_feat = torch.full_like(maps[2], float("nan"))
    for bad, fmap, why in [(zero, maps[1], "no valid depth"), (small, maps[2], "malformed"),
                           (stale, maps[2], "stale"), (frames[2], nan_feat, "non-finite"),
                           (None, maps[1], "missing frame"), (frames[1], None, "missing feature map")]:
        cloud = fuse_views([frames[0], bad], [maps[0], fmap], FusionConfig())
        assert len(cloud.dropped_views) == 1 and why in cloud.dropped_views[0], cloud.dropped_views
        assert np.isfinite(cloud.features).all() and len(cloud) > 500

    # out-of-range / negative depth values are ignored, not turned into points
    noisy = frames[0].depth.copy()
    noisy[::7, ::5] = -1.0
    noisy[1::7, ::5] = 100.0
    noisy[2::7, ::5] = np.inf
    cloud = fuse_views([dataclasses.replace(frames[0], depth=noisy)], [maps[0]], FusionConfig())
    assert cloud.xyz[:, 2].min() > -0.003 and np.isfinite(cloud.features).all()


def test_all_views_unusable_raises(frames):
    bad = [dataclasses.replace(f, depth=np.full_like(f.depth, np.nan)) for f in frames]
    with pytest.raises(NoUsableViewError, match="top: no valid depth.*left: no valid depth"):
        fuse_views(bad, const_maps(frames), FusionConfig())


def test_workspace_crop(frames):
    cfg = FusionConfig(workspace_min=(0.4, -0.05, 0.001), workspace_max=(0.6, 0.15, 0.2))
    cloud = fuse_views(frames, const_maps(frames), cfg)
    assert len(cloud) > 100
    assert (cloud.xyz >= np.array(cfg.workspace_min) - 1e-6).all()
    assert (cloud.xyz <= np.array(cfg.workspace_max) + 1e-6).all()


def test_config_validation():
    with pytest.raises(ValueError, match="tau_m"):
        FusionConfig(tau_m=0)
    with pytest.raises(ValueError, match="workspace_min"):
        FusionConfig(workspace_min=(1, 0, 0), workspace_max=(0, 1, 1))
    with pytest.raises(ValueError, match="unknown fusion parameters"):
        FusionConfig.from_dict({"voxel": 0.1})
