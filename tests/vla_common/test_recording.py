# SPDX-License-Identifier: Apache-2.0
"""Pictures, videos and rerun recordings of an episode (vla_common.recording), read back by their readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from vla_common import recording as rec

RIG = Path(__file__).resolve().parents[2] / "config" / "rig_sim.yaml"


@pytest.fixture(scope="module")
def cams() -> dict[str, rec.Camera]:
    return rec.rig_cameras(yaml.safe_load(RIG.read_text()))


def test_projection_puts_a_world_point_where_the_camera_sees_it(cams):
    top = cams["top"]
    below = top.T_world_cam[:3, 3] * np.array([1, 1, 0])  # on the table straight under the top camera
    uv, z = rec.project(top, below[None])
    assert np.allclose(uv[0], top.K[:2, 2], atol=1e-6) and z[0] == pytest.approx(top.T_world_cam[2, 3])
    # a point 10 cm further along world +x moves along the image axis the rotation says (fx * 0.1 / z)
    uv2, _ = rec.project(top, (below + [0.1, 0, 0])[None])
    assert np.linalg.norm(uv2[0] - uv[0]) == pytest.approx(top.K[0, 0] * 0.1 / z[0], rel=1e-6)


def test_annotation_draws_the_target_box_candidates_and_grasp_at_their_projections(cams):
    top = cams["top"]
    img = np.full((480, 640, 3), 100, np.uint8)
    centre = np.array([0.5, 0.1, 0.05])
    box = (centre - 0.03, centre + 0.03)
    grasp = np.eye(4)
    grasp[:3, :3] = np.diag([1.0, -1.0, -1.0])  # top-down
    grasp[:3, 3] = centre
    cands = np.stack([grasp] * 3)
    cands[:, 0, 3] += [0.0, 0.1, 0.2]
    out = rec.annotate(img, top, {"target: red mug": box}, cands, np.array([0.1, 0.2, 0.7]), grasp, "demo")
    assert out.shape == img.shape and out.dtype == np.uint8 and (img == 100).all()  # a copy
    corners, _ = rec.project(top, np.array([box[0], box[1]]))
    u0, v0 = np.floor(corners.min(0)).astype(int)
    assert (out[v0:v0 + 60, u0 - 2:u0 + 3] == [40, 230, 40]).all(-1).any()  # green box edge
    (u, v), = rec.project(top, cands[2, :3, 3][None])[0]
    best = out[int(v) - 1:int(v) + 2, int(u) - 1:int(u) + 2].reshape(-1, 3)
    assert (best[:, 0] > 200).any() and (best[:, 2] < 60).any()  # highest score drawn red
    assert (out[0:14] == 0).all(-1).mean() > 0.5  # caption bar


def test_keyframe_strip_and_video_have_the_expected_sizes(tmp_path):
    frames = [np.full((480, 640, 3), 40 * i, np.uint8) for i in range(5)]
    strip = rec.keyframe_strip(list(zip(["start", "grasp", "lift", "place", "end"], frames, strict=True)))
    assert strip.shape == (240, 5 * 320, 3)
    small = [rec.side_by_side(f[::2, ::2], f[::2, ::2]) for f in frames]
    rec.write_video(small, tmp_path / "e.mp4", tmp_path / "e.gif", fps=4)
    import imageio_ffmpeg
    from PIL import Image

    reader = imageio_ffmpeg.read_frames(str(tmp_path / "e.mp4"))
    meta = next(reader)
    assert tuple(meta["size"]) == (640, 240) and sum(1 for _ in reader) == 5
    with Image.open(tmp_path / "e.gif") as gif:
        assert gif.size == (640, 240) and gif.n_frames == 5


def test_recording_reads_back_with_rerun_with_cloud_candidates_and_trajectory(tmp_path, cams):
    path = tmp_path / "ep.rrd"
    r = rec.EpisodeRecording(path)
    rng = np.random.default_rng(0)
    xyz = rng.uniform(0, 1, (500, 3)).astype(np.float32)
    r.time(0.0)
    r.cloud(xyz, rng.integers(0, 255, (500, 3), dtype=np.uint8), rng.uniform(0, 1, 500))
    cands = np.tile(np.eye(4), (7, 1, 1))
    cands[:, 0, 3] = np.linspace(0.3, 0.6, 7)
    r.candidates(cands, np.linspace(0, 1, 7), chosen=6)
    path_pts = np.c_[np.linspace(0, 0.5, 12), np.zeros(12), np.full(12, 0.3)]
    for k in range(len(path_pts)):
        r.time(0.1 * k)
        r.trajectory(path_pts[: k + 1])
    r.image(cams["top"], "top", np.zeros((480, 640, 3), np.uint8))
    r.event("task_succeeded")
    r.close()
    rows = rec.read_recording(path)
    for entity in ("/world/cloud/rgb", "/world/cloud/relevance", "/world/candidates/grasp",
                   "/world/chosen/grasp", "/world/tcp_trajectory", "/world/cameras/top", "/events"):
        assert rows.get(entity, 0) >= 1, (entity, rows)
    assert np.allclose(rec.read_points(path, "/world/cloud/rgb")[0], xyz)
    assert np.allclose(rec.read_points(path, "/world/candidates/grasp")[0], cands[:, :3, 3])
    assert np.allclose(rec.read_points(path, "/world/tcp_trajectory")[-1], path_pts)


def test_demo_key_frames_follow_the_gripper_and_the_lift():
    from types import SimpleNamespace

    from vla_common.demo import _frame_at, _keyframe_times

    frames = [(float(t), np.full((4, 4, 3), t, np.uint8)) for t in range(20)]
    driver = SimpleNamespace(
        frames={"top": frames},
        poses=[(3.0, "grasp", np.eye(4)), (8.0, "grasp", np.eye(4)), (14.0, "place", np.eye(4))],
        gripper=[(5.0, 0.0), (6.0, 1.0), (10.0, 0.0), (16.0, 1.0)],  # a failed try, the lifting one, release
    )
    events = [{"event": "grasp_selected"}, {"event": "object_lifted"}]
    keys = _keyframe_times(driver, events, [3.0, 11.0])
    assert keys == {"start": 0.0, "grasp": 10.5, "lift": 11.0, "place": 16.5, "end": 19.0}
    assert _frame_at(frames, keys["grasp"])[0, 0, 0] == 11 and _frame_at(frames, 99.0)[0, 0, 0] == 19
