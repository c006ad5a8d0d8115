# SPDX-License-Identifier: Apache-2.0
"""Action priors on synthetic clouds: antipodal grasps across a box's narrow width, free place sites."""

from __future__ import annotations

import numpy as np
import pytest
from clouds import box_scene, table

from vla_common.language import RELATIONS
from vla_policy.priors import (
    GripperSpec,
    PriorConfig,
    below_carry_height,
    collision_free,
    grasp_set,
    place_candidates,
    relation_mask,
)


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
    rank_key = gs.scores if gs.lift_prob is None else gs.lift_prob  # learned prior's order when shipped
    assert np.all(np.diff(rank_key) <= 1e-12)


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


def test_carried_object_is_no_support_surface():
    """The object in the gripper (its flat bottom 0.33 m above the table) gives no place site."""
    from clouds import box

    pts = box_scene(size=(0.05, 0.12, 0.08))
    held = box((0.06, 0.06, 0.04), (0.4, 0.2))
    held[:, 2] += 0.33  # hanging in the gripper above the table
    both = np.concatenate([pts, held])
    low = below_carry_height(both)
    assert low[: len(pts)].all() and not low[len(pts):].any()
    T = place_candidates(both)
    assert len(T) > 10
    assert T[:, 2, 3].max() < 0.2  # every site is on the table or the box, none on the carried object


@pytest.mark.parametrize("relation", RELATIONS)
def test_place_candidates_follow_the_relation(relation):
    """Every relation gets candidates in its own region of a wide flat box, and they differ."""
    size = (0.14, 0.14, 0.03)  # big enough to have sites on top ("on"); "in" is over the footprint too
    pts = box_scene(size=size)
    lo, hi = np.array([0.5 - 0.07, -0.07, 0.0]), np.array([0.5 + 0.07, 0.07, 0.03])
    T = place_candidates(pts, keep=lambda xy, z: relation_mask(xy, z, relation, lo, hi))
    assert len(T) > 0
    xy = T[:, :2, 3]
    assert relation_mask(xy, T[:, 2, 3] - PriorConfig().place_height_m, relation, lo, hi).all()
    centre = xy.mean(0) - np.array([0.5, 0.0])
    expect = {"left of": (1, 1), "right of": (1, -1), "in front of": (0, -1), "behind": (0, 1)}
    if relation in expect:
        axis, sign = expect[relation]
        assert sign * centre[axis] > 0.07
    if relation in ("on", "in"):
        assert np.all(np.abs(xy - [0.5, 0.0]) < 0.07)


def test_relation_mask_reads_the_sides_of_the_reference():
    lo, hi = np.array([0.45, -0.05, 0.0]), np.array([0.55, 0.05, 0.1])
    xy = np.array([[0.5, 0.12], [0.5, -0.12], [0.38, 0.0], [0.62, 0.0], [0.5, 0.0], [0.8, 0.0]])
    z = np.array([0.0, 0.0, 0.0, 0.0, 0.1, 0.0])
    assert relation_mask(xy, z, "left of", lo, hi).tolist() == [True, False, False, False, False, False]
    assert relation_mask(xy, z, "right of", lo, hi).tolist() == [False, True, False, False, False, False]
    assert relation_mask(xy, z, "in front of", lo, hi).tolist() == [False, False, True, False, False, False]
    assert relation_mask(xy, z, "behind", lo, hi).tolist() == [False, False, False, True, False, False]
    assert relation_mask(xy, z, "on", lo, hi).tolist() == [False, False, False, False, True, False]
    assert relation_mask(xy, z, "near", lo, hi).tolist() == [True, True, True, True, False, False]


def test_empty_table_has_no_grasps_but_place_sites():
    pts = table()
    assert len(grasp_set(pts)) == 0
    assert len(place_candidates(pts)) > 0


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="N, 3"):
        grasp_set(np.zeros((10, 2)))
    with pytest.raises(ValueError, match="min_width_m"):
        PriorConfig(gripper=GripperSpec(stroke_m=0.01))


def _collision_reference(T, scene, cfg):
    """Per-pose check written plainly (every collision point transformed into every TCP frame)."""
    g = cfg.gripper
    boxes = g.boxes()
    corners = np.array(np.meshgrid([0, 1], [0, 1], [0, 1], indexing="ij")).reshape(3, -1).T
    ok, fill = np.zeros(len(T), dtype=bool), np.zeros(len(T))
    for m, Tm in enumerate(T):
        R, t = Tm[:3, :3], Tm[:3, 3]
        bc = np.concatenate([b[0] + corners * (b[1] - b[0]) for b in boxes])
        if np.any((bc @ R.T + t) @ scene.n + scene.d < 0.002):
            continue
        local = (scene.coll_xyz - t) @ R
        hits = sum(int(np.all((local > b[0] - 0.002) & (local < b[1] + 0.002), axis=1).sum()) for b in boxes)
        between = int(((np.abs(local[:, 0]) < g.finger_width_m / 2) & (np.abs(local[:, 1]) < g.stroke_m / 2)
                       & (local[:, 2] > -g.finger_length_m) & (local[:, 2] < 0.0)).sum())
        if hits <= cfg.max_collision_points and between >= cfg.min_points_between:
            ok[m], fill[m] = True, min(1.0, between / 60.0)
    return ok, fill


def test_collision_check_matches_plain_reference():
    """The staged, tiled neighbour-query check gives exactly the per-pose brute-force answer."""
    from scipy.spatial.transform import Rotation

    from vla_policy.priors import _Scene

    pts = box_scene(size=(0.05, 0.12, 0.08), yaw=0.3, noise=0.0005)
    cfg = PriorConfig()
    scene = _Scene(pts, cfg)
    rng = np.random.default_rng(3)
    n = 300
    T = np.tile(np.eye(4), (n, 1, 1))
    # approach axes in the lower hemisphere around the box, positions over and beside it
    T[:, :3, :3] = Rotation.from_euler("xyz", np.c_[np.pi + rng.normal(0, 0.6, n), rng.normal(0, 0.6, n),
                                                    rng.uniform(-np.pi, np.pi, n)]).as_matrix()
    T[:, :3, 3] = np.c_[0.5 + rng.normal(0, 0.04, n), rng.normal(0, 0.06, n), rng.uniform(0.0, 0.12, n)]
    ok, fill = collision_free(T, scene, cfg)
    ok_ref, fill_ref = _collision_reference(T, scene, cfg)
    assert 10 < ok_ref.sum() < n - 10  # the sample exercises both outcomes
    np.testing.assert_array_equal(ok, ok_ref)
    np.testing.assert_allclose(fill, fill_ref)


def test_round_robin_takes_clusters_in_turn():
    from vla_policy.priors import _round_robin

    order = np.array([4, 0, 3, 1, 2, 5])  # indices, best first
    cluster = np.array([0, 1, 0, 2, 1, 0])  # cluster of each index
    # per cluster in order: 0 -> [0, 2, 5], 1 -> [4, 1], 2 -> [3]; rounds take clusters 0, 1, 2
    assert _round_robin(order, cluster, 6).tolist() == [0, 4, 3, 2, 1, 5]
    assert _round_robin(order, cluster, 4).tolist() == [0, 4, 3, 2]
    assert _round_robin(np.zeros(0, dtype=int), cluster, 4).tolist() == []


def test_grasps_keep_the_fingertips_above_the_table():
    """The robots' fingertips lie 17.5 mm past the TCP: no candidate puts them into the table, and a
    flat object (1 cm high) still gets top-down grasps, raised so the real tips clear the table."""
    from vla_policy.priors import raise_tips_above_plane

    pts = box_scene(size=(0.012, 0.14, 0.01), yaw=0.2, noise=0.0003)  # a pencil lying on the table
    g = PriorConfig().gripper
    gs = grasp_set(pts, PriorConfig(learned_prior=None))
    assert len(gs.poses) > 0
    tips = gs.poses[:, :3, 3] + g.tip_beyond_tcp_m * gs.poses[:, :3, 2]
    assert tips[:, 2].min() >= g.tip_clearance_m - 1e-3  # table at z = 0 (support plane fit)
    # a top-down pose 5 mm above the table is raised by the deficit; a clear one is not moved
    T = np.tile(np.diag([1.0, -1.0, -1.0, 1.0]), (2, 1, 1))
    T[0, :3, 3], T[1, :3, 3] = [0.5, 0.0, 0.005], [0.5, 0.0, 0.05]
    up = raise_tips_above_plane(T, np.array([0.0, 0.0, 1.0]), 0.0, g)
    assert up[0, 2, 3] == pytest.approx(g.tip_beyond_tcp_m + g.tip_clearance_m)
    np.testing.assert_array_equal(up[1], T[1])


def _touching_boxes():
    """Table + three 5 x 5 x 6 cm boxes side by side along x, touching (one DBSCAN cluster)."""
    from clouds import box

    t = table()
    boxes = [box((0.05, 0.05, 0.06), (x, 0.0)) for x in (0.45, 0.50, 0.55)]
    under = (np.abs(t[:, 0] - 0.50) < 0.075) & (np.abs(t[:, 1]) < 0.025)
    return np.concatenate([t[~under], *boxes]), boxes


def test_focus_puts_every_candidate_on_the_described_object():
    """Touching objects share a cluster; a focus (the grounded object) gets candidates of its own."""
    xyz, boxes = _touching_boxes()
    cfg = PriorConfig(learned_prior=None)
    gs = grasp_set(xyz, cfg, focus=boxes[2])
    assert len(gs) >= 3
    p = gs.poses[:, :3, 3]
    assert np.all(np.abs(p[:, 0] - 0.55) <= 0.03) and np.all(np.abs(p[:, 1]) <= 0.03)
    # closing across the box (5 cm), never across two boxes
    widths = np.abs(gs.poses[:, :3, 1] @ np.array([1.0, 0.0, 0.0]))
    assert len(gs.widths) and np.all(gs.widths <= 0.06)
    assert widths.size == len(gs)
    assert len(grasp_set(xyz, cfg, focus=np.zeros((0, 3)) + 5.0)) == 0  # a focus on nothing: none


def test_normals_point_out_of_each_touching_object():
    """Normals are oriented by the local surface, not by the centroid of a cluster of touching
    objects: in a U of five touching boxes, the inner faces of the arms face that centroid."""
    from clouds import box

    from vla_policy.priors import _Scene

    centres = [(0.45, 0.05), (0.45, 0.0), (0.50, 0.0), (0.55, 0.0), (0.55, 0.05)]
    xyz = np.concatenate([table(), *[box((0.05, 0.05, 0.06), c) for c in centres]])
    scene = _Scene(xyz, PriorConfig(learned_prior=None))
    pts, nrm = scene.obj_xyz, scene.normals
    assert len(np.unique(scene.labels[scene.labels >= 0])) == 1  # one cluster
    mid = (pts[:, 2] > 0.015) & (pts[:, 2] < 0.05) & (pts[:, 1] > 0.045)
    inner_left = mid & (np.abs(pts[:, 0] - 0.475) < 0.001)  # +x face of the left arm
    inner_right = mid & (np.abs(pts[:, 0] - 0.525) < 0.001)  # -x face of the right arm
    assert inner_left.sum() > 20 and inner_right.sum() > 20
    assert np.mean(nrm[inner_left, 0] > 0.5) > 0.8
    assert np.mean(nrm[inner_right, 0] < -0.5) > 0.8


def test_a_tilted_grasp_is_raised_until_its_lowest_finger_corner_clears_the_table():
    """Tilted 60 deg about the closing axis, a finger's edge is lower than the tip centre."""
    from vla_policy.priors import raise_tips_above_plane

    g = PriorConfig().gripper
    a = np.deg2rad(60.0)
    T = np.eye(4)
    T[:3, 1] = [0.0, 1.0, 0.0]  # closing y
    T[:3, 2] = [np.sin(a), 0.0, -np.cos(a)]  # approach, tilted about y
    T[:3, 0] = np.cross(T[:3, 1], T[:3, 2])
    T[:3, 3] = [0.5, 0.0, 0.0]
    up = raise_tips_above_plane(T[None], np.array([0.0, 0.0, 1.0]), 0.0, g)[0]
    fx, fy = g.finger_width_m / 2, g.stroke_m / 2 + g.finger_thickness_m
    corners = [up[:3, 3] + up[:3, :3] @ [sx * fx, sy * fy, g.tip_beyond_tcp_m]
               for sx in (-1, 1) for sy in (-1, 1)]
    low = min(c[2] for c in corners)
    assert low == pytest.approx(g.tip_clearance_m, abs=1e-9)
    centre = up[:3, 3] + g.tip_beyond_tcp_m * up[:3, 2]
    assert centre[2] > low + 0.009  # the centre alone would have been 9.5 mm too low
