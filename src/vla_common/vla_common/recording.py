# SPDX-License-Identifier: Apache-2.0
"""Pictures, videos and rerun recordings of an episode, for the person watching (``vla demo``, ``vla eval``).

Plain Python (numpy, Pillow, imageio-ffmpeg, rerun-sdk); no rclpy, no simulator:

- :func:`project` / :func:`annotate` draw 3D things into a camera image with the rig's
  calibration (intrinsics + ``T_world_cam``, optical frame): a target box, grasp candidates
  coloured by score and the chosen gripper pose;
- :func:`keyframe_strip` lays labelled frames side by side; :func:`write_video` writes MP4
  (imageio-ffmpeg's bundled ffmpeg, no system install) and GIF;
- :class:`EpisodeRecording` writes one rerun ``.rrd`` file per episode (saved to disk, no viewer is
  spawned, nothing goes on the network): the fused cloud in RGB and coloured by relevance to the
  instruction, the candidates with their scores, the chosen pose, the TCP trajectory, camera
  images and the status events, all on one timeline ``time`` (seconds). Open it with
  ``rerun file.rrd``; :func:`read_recording` reads it back with rerun's own reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

TIMELINE = "time"


@dataclass
class Camera:
    """A pinhole camera of the rig: ``K`` (3, 3), ``T_world_cam`` (4, 4) optical frame, image size."""

    name: str
    K: np.ndarray
    T_world_cam: np.ndarray
    width: int
    height: int


def rig_cameras(rig: dict[str, Any]) -> dict[str, Camera]:
    """Cameras of a rig calibration dict (``config/rig_sim.yaml``, ``/cameras/rig_calibration``)."""
    cams = rig.get("cameras") if isinstance(rig, dict) else None
    if not isinstance(cams, dict) or not cams:
        raise ValueError("rig calibration has no 'cameras' mapping")
    out = {}
    for name, c in cams.items():
        K = np.array([[c["fx"], 0.0, c["cx"]], [0.0, c["fy"], c["cy"]], [0.0, 0.0, 1.0]], dtype=np.float64)
        T = np.asarray(c["T_world_cam"], dtype=np.float64)
        if T.shape != (4, 4):
            raise ValueError(f"camera {name}: T_world_cam must be 4x4, got {T.shape}")
        out[name] = Camera(name, K, T, int(c["width"]), int(c["height"]))
    return out


def project(cam: Camera, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World points (N, 3) -> pixel coordinates (N, 2) and depth along the optical axis (N,)."""
    pts = np.asarray(pts, dtype=np.float64).reshape(-1, 3)
    T_cam_world = np.linalg.inv(cam.T_world_cam)
    pc = pts @ T_cam_world[:3, :3].T + T_cam_world[:3, 3]  # (N, 3) camera frame
    z = pc[:, 2]
    uv = (pc @ cam.K.T)[:, :2] / np.where(np.abs(z) < 1e-9, 1e-9, z)[:, None]
    return uv, z


def backproject(frame: Any, stride: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """World points (N, 3) and their colours (N, 3) uint8 from every ``stride``-th valid depth pixel.

    ``frame`` is a ``vla_common.camera.RGBDFrame`` (depth in metres, NaN or 0 = missing).
    """
    d = np.asarray(frame.depth)[::stride, ::stride]
    v, u = np.nonzero(np.isfinite(d) & (d > 0))
    z = d[v, u].astype(np.float64)
    K = frame.intrinsics
    rgb = np.asarray(frame.rgb)[v * stride, u * stride, :3]
    pc = np.stack([(u * stride - K.cx) / K.fx * z, (v * stride - K.cy) / K.fy * z, z])  # (3, N)
    xyz = (frame.T_world_cam[:3, :3] @ pc + frame.T_world_cam[:3, 3:4]).T
    return xyz.astype(np.float32), rgb.astype(np.uint8)


def score_colours(scores: np.ndarray) -> np.ndarray:
    """(C,) scores -> (C, 3) uint8 colours by rank, blue (lowest) to red (highest) of this set.

    By rank, not value: softmax scores put one candidate near 1 and the rest near 0, which a value
    scale would paint all the same blue.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if s.size == 0:
        return np.zeros((0, 3), dtype=np.uint8)
    rank = np.empty(s.size)
    rank[np.argsort(s, kind="stable")] = np.arange(s.size)
    t = rank / (s.size - 1) if s.size > 1 and np.ptp(s) > 1e-12 else np.ones_like(s)
    return np.stack([255 * t, 64 + 96 * (1 - np.abs(2 * t - 1)), 255 * (1 - t)], 1).astype(np.uint8)


def relevance_colours(relevance: np.ndarray) -> np.ndarray:
    """(N,) relevance -> (N, 3) uint8 heat colours (dark blue low, yellow high), ranked within the cloud."""
    r = np.asarray(relevance, dtype=np.float64).reshape(-1)
    if r.size == 0:
        return np.zeros((0, 3), dtype=np.uint8)
    lo, hi = np.percentile(r, 5), np.percentile(r, 99.5)
    t = np.clip((r - lo) / max(hi - lo, 1e-9), 0.0, 1.0) ** 2
    return np.stack([40 + 215 * t, 20 + 220 * t, 120 * (1 - t)], 1).astype(np.uint8)


def _gripper_lines(T: np.ndarray, width_m: float = 0.085, finger_m: float = 0.045) -> list[np.ndarray]:
    """3D polylines of a parallel gripper at TCP pose ``T``: y = closing axis, z = approach."""
    T = np.asarray(T, dtype=np.float64)
    o, y, z = T[:3, 3], T[:3, 1], T[:3, 2]
    a, b = o + y * width_m / 2, o - y * width_m / 2
    return [np.stack([a + z * 0.01, a - z * finger_m, b - z * finger_m, b + z * 0.01]),
            np.stack([o - z * finger_m, o - z * (finger_m + 0.06)])]


def annotate(img: np.ndarray, cam: Camera, boxes: dict[str, tuple[Any, Any]] | None = None,
             candidates: np.ndarray | None = None, scores: np.ndarray | None = None,
             chosen: np.ndarray | None = None, caption: str = "", legend: str = "") -> np.ndarray:
    """Draw into a copy of ``img`` (H, W, 3) uint8 as seen by ``cam``.

    Args:
        img: the camera image (or a resized copy of it).
        cam: the camera that took it (its calibration projects the 3D things).
        boxes: ``{label: (min (3,), max (3,))}`` world AABBs, drawn as green rectangles with the label
            (the target from the simulator, for the person only: the robot never sees it).
        candidates: (C, 4, 4) TCP poses, drawn as dots coloured by their scores.
        scores: (C,) candidate scores (blue lowest, red highest; all cyan when None).
        chosen: (4, 4) chosen TCP pose, drawn as a gripper (white outline, yellow fingers).
        caption: a line of text at the top.
        legend: a line of text at the bottom.
    """
    from PIL import Image, ImageDraw

    im = Image.fromarray(np.ascontiguousarray(img[..., :3]).astype(np.uint8))
    d = ImageDraw.Draw(im)
    sx, sy = im.width / cam.width, im.height / cam.height  # images may be resized copies of the camera's
    S = np.array([sx, sy])
    for name, (lo, hi) in (boxes or {}).items():
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])
                            for z in (lo[2], hi[2])])  # (8, 3)
        uv, z = project(cam, corners)
        if (z <= 0).any():
            continue
        uv = uv * S
        box = [float(uv[:, 0].min()), float(uv[:, 1].min()), float(uv[:, 0].max()), float(uv[:, 1].max())]
        d.rectangle(box, outline=(40, 230, 40), width=3)
        ty = box[1] - 14 if box[1] >= 14 else box[3] + 2
        d.rectangle([box[0], ty, box[0] + 6 * len(name) + 4, ty + 12], fill=(0, 0, 0))
        d.text((box[0] + 2, ty), name, fill=(40, 230, 40))
    if candidates is not None and len(candidates):
        C = np.asarray(candidates, dtype=np.float64)
        known = scores is not None and len(scores) == len(C)
        sc = np.asarray(scores, dtype=np.float64) if known else np.zeros(len(C))
        cols = score_colours(sc) if known else np.tile(np.array([[0, 200, 255]], np.uint8), (len(C), 1))
        uv, z = project(cam, C[:, :3, 3])
        for i in np.argsort(sc):  # best drawn last (on top)
            if z[i] <= 0:
                continue
            u, v = uv[i] * S
            r = 3
            d.ellipse([u - r, v - r, u + r, v + r], fill=tuple(int(c) for c in cols[i]), outline=(0, 0, 0))
    if chosen is not None:
        for k, line in enumerate(_gripper_lines(chosen)):
            uv, z = project(cam, line)
            if (z <= 0).any():
                continue
            pts = [tuple(p) for p in uv * S]
            d.line(pts, fill=(0, 0, 0), width=6)
            d.line(pts, fill=(255, 230, 0) if k == 0 else (255, 255, 255), width=3)
    if caption:
        d.rectangle([0, 0, im.width, 14], fill=(0, 0, 0))
        d.text((4, 1), caption[:120], fill=(255, 255, 255))
    if legend:
        d.rectangle([0, im.height - 14, im.width, im.height], fill=(0, 0, 0))
        d.text((4, im.height - 13), legend[:120], fill=(255, 255, 255))
    return np.asarray(im)


def keyframe_strip(frames: list[tuple[str, np.ndarray]], height: int = 240) -> np.ndarray:
    """Labelled frames side by side, each resized to ``height``: (height, sum of widths, 3) uint8."""
    from PIL import Image, ImageDraw

    if not frames:
        raise ValueError("keyframe_strip needs at least one frame")
    tiles = []
    for label, f in frames:
        im = Image.fromarray(np.ascontiguousarray(f[..., :3]).astype(np.uint8))
        im = im.resize((max(1, round(im.width * height / im.height)), height))
        d = ImageDraw.Draw(im)
        d.rectangle([0, 0, 8 + 7 * len(label), 14], fill=(0, 0, 0))
        d.text((4, 1), label, fill=(255, 255, 255))
        tiles.append(np.asarray(im))
    return np.concatenate(tiles, axis=1)


def side_by_side(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two images next to each other at the height of ``a`` (``b`` resized)."""
    from PIL import Image

    if b.shape[0] != a.shape[0]:
        im = Image.fromarray(b)
        b = np.asarray(im.resize((round(im.width * a.shape[0] / im.height), a.shape[0])))
    return np.concatenate([a, b], axis=1)


def write_video(frames: list[np.ndarray], mp4: Path | None, gif: Path | None, fps: float = 4.0) -> None:
    """Write frames (each (H, W, 3) uint8, same size) as an H.264 MP4 and/or a looping GIF.

    The MP4 uses imageio-ffmpeg's bundled ffmpeg binary (no system ffmpeg needed); sizes are padded
    to even numbers (yuv420p needs them).
    """
    if not frames:
        raise ValueError("write_video needs at least one frame")
    if mp4 is not None:
        import imageio_ffmpeg

        h, w = frames[0].shape[:2]
        H, W = h + h % 2, w + w % 2
        writer = imageio_ffmpeg.write_frames(str(mp4), (W, H), fps=fps, codec="libx264",
                                             pix_fmt_out="yuv420p", macro_block_size=1, quality=7)
        writer.send(None)  # start the generator
        for f in frames:
            if f.shape[:2] != (H, W):
                pad = np.zeros((H, W, 3), dtype=np.uint8)
                pad[: f.shape[0], : f.shape[1]] = f[:H, :W, :3]
                f = pad
            writer.send(np.ascontiguousarray(f[..., :3], dtype=np.uint8))
        writer.close()
    if gif is not None:
        from PIL import Image

        imgs = [Image.fromarray(np.ascontiguousarray(f[..., :3], dtype=np.uint8)) for f in frames]
        imgs[0].save(gif, save_all=True, append_images=imgs[1:], duration=int(1000 / fps), loop=0)


class EpisodeRecording:
    """One rerun recording of one episode, written to ``path`` (.rrd); see the module docstring.

    Entities: ``world/cloud/rgb`` and ``world/cloud/relevance`` (Points3D), ``world/candidates``
    (Points3D + per-candidate score, label ``#i p=score``), ``world/chosen`` (Transform3D + gripper
    lines), ``world/tcp_trajectory`` (LineStrips3D, the TCP path so far), ``world/targets`` (Boxes3D,
    privileged, for the person), ``cameras/<name>`` (Pinhole + Image), ``events`` (TextLog),
    ``scores`` (Scalars: the chosen candidate's score).
    """

    def __init__(self, path: Path, name: str = "vla_episode") -> None:
        try:
            import rerun as rr
        except ImportError as exc:
            raise RuntimeError("recording needs rerun-sdk (pinned in requirements.txt: "
                               "pip install rerun-sdk==0.41.0)") from exc

        self.rr = rr
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rec = rr.RecordingStream(name, recording_id=self.path.stem)
        self.rec.save(str(self.path))  # file sink: no viewer, no network
        self.rec.log("world", rr.ViewCoordinates.RIGHT_HAND_Z_UP, static=True)

    def time(self, t_s: float) -> None:
        """Set the timeline (seconds since the episode started) for what is logged next."""
        self.rec.set_time(TIMELINE, duration=float(t_s))

    def cloud(self, xyz: np.ndarray, rgb: np.ndarray | None = None,
              relevance: np.ndarray | None = None) -> None:
        """The fused cloud (N, 3) with its colours (N, 3) uint8 and per-point relevance (N,)."""
        xyz = np.asarray(xyz, dtype=np.float32)
        self.rec.log("world/cloud/rgb", self.rr.Points3D(xyz, colors=rgb, radii=0.002))
        if relevance is not None:
            self.rec.log("world/cloud/relevance", self.rr.Points3D(xyz, colors=relevance_colours(relevance),
                                                                   radii=0.002))

    def candidates(self, poses: np.ndarray, scores: np.ndarray | None = None, chosen: int | None = None,
                   kind: str = "grasp") -> None:
        """Candidate TCP poses (C, 4, 4) and their scores (C,); the chosen one is also logged as a pose."""
        poses = np.asarray(poses, dtype=np.float64).reshape(-1, 4, 4)
        ok = scores is not None and len(scores) == len(poses)
        sc = np.asarray(scores, float) if ok else np.zeros(len(poses))
        labels = [f"#{i} p={s:.3f}" for i, s in enumerate(sc)]
        self.rec.log(f"world/candidates/{kind}", self.rr.Points3D(poses[:, :3, 3], colors=score_colours(sc),
                                                                   radii=0.004, labels=labels))
        self.rec.log(f"world/candidates/{kind}/approach", self.rr.Arrows3D(
            origins=poses[:, :3, 3], vectors=poses[:, :3, 2] * 0.03, colors=score_colours(sc)))
        if chosen is not None and 0 <= chosen < len(poses):
            self.chosen(poses[chosen], kind, float(sc[chosen]))

    def chosen(self, T: np.ndarray, kind: str = "grasp", score: float | None = None) -> None:
        """The chosen TCP pose (4, 4), drawn as a gripper."""
        T = np.asarray(T, dtype=np.float64)
        self.rec.log(f"world/chosen/{kind}", self.rr.Transform3D(translation=T[:3, 3], mat3x3=T[:3, :3]))
        self.rec.log(f"world/chosen/{kind}/gripper", self.rr.LineStrips3D(
            _gripper_lines(np.eye(4)), colors=[255, 230, 0]))  # in the pose's frame
        if score is not None:
            self.rec.log(f"scores/{kind}", self.rr.Scalars(score))

    def trajectory(self, points: np.ndarray, path: bool = True) -> None:
        """The TCP now (the last of ``points`` (K, 3)) and, with ``path``, the whole path so far."""
        pts = np.asarray(points, dtype=np.float32).reshape(-1, 3)
        if path and len(pts) >= 2:
            self.rec.log("world/tcp_trajectory",
                         self.rr.LineStrips3D([pts], colors=[255, 140, 0], radii=0.002))
        if len(pts):
            self.rec.log("world/tcp", self.rr.Points3D(pts[-1:], colors=[255, 140, 0], radii=0.008))

    def targets(self, boxes: dict[str, tuple[Any, Any]]) -> None:
        """Privileged target boxes ``{name: (min, max)}`` (for the person; the robot never sees them)."""
        if not boxes:
            return
        lo = np.array([b[0] for b in boxes.values()], float)
        hi = np.array([b[1] for b in boxes.values()], float)
        self.rec.log("world/targets", self.rr.Boxes3D(centers=(lo + hi) / 2, sizes=hi - lo,
                                                      labels=list(boxes), colors=[40, 230, 40]))

    def image(self, cam: Camera | None, name: str, rgb: np.ndarray) -> None:
        """A camera image (H, W, 3) uint8, with the camera's pose and pinhole where known."""
        if cam is not None:
            T = cam.T_world_cam
            self.rec.log(f"world/cameras/{name}", self.rr.Transform3D(translation=T[:3, 3], mat3x3=T[:3, :3]))
            self.rec.log(f"world/cameras/{name}", self.rr.Pinhole(
                image_from_camera=cam.K, width=cam.width, height=cam.height))
            self.rec.log(f"world/cameras/{name}", self.rr.Image(rgb).compress(jpeg_quality=85))
        else:
            self.rec.log(f"cameras/{name}", self.rr.Image(rgb).compress(jpeg_quality=85))

    def event(self, text: str, level: str = "info") -> None:
        """A status event as a text log line."""
        lvl = {"warn": "WARN", "error": "ERROR"}.get(level, "INFO")
        self.rec.log("events", self.rr.TextLog(text, level=lvl))

    def close(self) -> None:
        """Flush and close the file."""
        self.rec.flush()
        self.rec.disconnect()


def read_recording(path: Path) -> dict[str, int]:
    """Rows per entity path of a ``.rrd`` file, read back with rerun's own reader (``rerun.chunk``)."""
    from rerun.chunk import RrdReader

    rows: dict[str, int] = {}
    for chunk in RrdReader(Path(path)).stream().collect().stream():
        rows[chunk.entity_path] = rows.get(chunk.entity_path, 0) + chunk.num_rows
    return rows


def read_points(path: Path, entity: str) -> list[np.ndarray]:
    """Every ``Points3D`` / ``LineStrips3D`` position batch logged at ``entity``, as (N, 3) arrays."""
    from rerun.chunk import RrdReader

    out = []
    for chunk in RrdReader(Path(path)).stream().collect().stream():
        if chunk.entity_path != entity:
            continue
        batch = chunk.to_record_batch()
        for col in ("Points3D:positions", "LineStrips3D:strips"):
            if col in batch.schema.names:
                for cell in batch.column(col).to_pylist():
                    if cell:
                        flat = cell if col.startswith("Points") else [p for s in cell for p in s]
                        out.append(np.asarray(flat, dtype=np.float64).reshape(-1, 3))
    return out
