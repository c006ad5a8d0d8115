# SPDX-License-Identifier: Apache-2.0
"""Action priors on synthetic clouds: antipodal grasps across a box's narrow width, free place sites."""

from __future__ import annotations

import numpy as np
import pytest
from clouds import box_scene, table

from vla_policy.priors import GripperSpec, PriorConfig, collision_free, grasp_set, place_candidates


def _rot_ok(T):
    R = T[:, :3, :3]
    eye = np.einsum("nji,njk->nik", R, R)
    return np.allclose(eye, np.eye(3), atol=1e-6) and np.allclose(np.linalg.det(R), 1.0, atol=1e-6)


@pytest.mark.parametrize("yaw", [0.0, 0.6])
def test_box_grasps_close_across_narrow_width(yaw):
    pts = box_scene(size=(0.05, 0.12, 0.08), yaw=yaw, noise=0.0005)
    gs = grasp_set(pts)
    assert len(gs) >= 5
    assert _rot_ok(gs.poses)
    narrow = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    y = gs.poses[:, :3, 1]
    cos_narrow = np.abs(y @ narrow)
    # every grasp closes across the 5 cm side (the 12 cm side exceeds the 85 mm stroke; the 8 cm
    # height cannot be grasped because the bottom face rests on the table)
    assert np.all(cos_narrow > np.cos(np.deg2rad(25))), cos_narrow
    np.testing.assert_allclose(gs.widths, 0.05, atol=0.01)
    # centres inside the box footprint, below its top
    c = gs.poses[:, :3, 3]
    assert np.all(np.abs((c[:, :2] - [0.5, 0.0]) @ narrow[:2]) < 0.015)
    assert np.all(c[:, 2] < 0.08) and np.all(c[:, 2] > 0.005)
    # a top-down grasp is among them (approach z pointing down)
    assert np.any(gs.poses[:, 2, 2] < -0.95)
    assert np.all(np.diff(gs.scores) <= 1e-12)


def test_too_wide_box_gives_no_grasp():
    pts = box_scene(size=(0.11, 0.12, 0.06))
    assert len(grasp_set(pts)) == 0


def test_collision_check_rejects_gripper_inside_object():
    pts = box_scene()
    from vla_policy.priors import _Scene

    scene = _Scene(pts, PriorConfig())
    T_good = np.eye(4)
    T_good[:3, 0], T_good[:3, 1], T_good[:3, 2] = [0, -1, 0], [1, 0, 0], [0, 0, -1]
    T_good[:3, 3] = [0.5, 0.0, 0.065]
    T_bad = T_good.copy()
    T_bad[:3, 0], T_bad[:3, 1] = [1, 0, 0], [0, 1, 0]  # closing along the 12 cm side: fingers hit the box
    T_low = T_good.copy()
    T_low[2, 3] = 0.01  # palm/fingers through the table
    ok, _ = collision_free(np.stack([T_good, T_bad, T_low]), scene, PriorConfig())
    assert ok.tolist() == [True, False, False]


def test_place_candidates_avoid_objects():
    pts = box_scene(size=(0.05, 0.12, 0.08))
    T = place_candidates(pts)
    assert len(T) > 10
    assert _rot_ok(T)
    xy = T[:, :2, 3]
    # no site within 4 cm of the box footprint (2.5 x 6 cm half extents)
    dx = np.maximum(np.abs(xy[:, 0] - 0.5) - 0.025, 0)
    dy = np.maximum(np.abs(xy[:, 1]) - 0.06, 0)
    on_top = (np.abs(xy[:, 0] - 0.5) < 0.025) & (np.abs(xy[:, 1]) < 0.06)
    assert np.all((np.hypot(dx, dy) > 0.03) | on_top)
    table_sites = ~on_top
    np.testing.assert_allclose(T[table_sites, 2, 3], PriorConfig().place_height_m, atol=0.005)
    np.testing.assert_allclose(T[:, 2, 2], -1.0)


def test_empty_table_has_no_grasps_but_place_sites():
    pts = table()
    assert len(grasp_set(pts)) == 0
    assert len(place_candidates(pts)) > 0


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="N, 3"):
        grasp_set(np.zeros((10, 2)))
    with pytest.raises(ValueError, match="min_width_m"):
        PriorConfig(gripper=GripperSpec(stroke_m=0.01))
