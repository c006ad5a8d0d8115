# SPDX-License-Identifier: Apache-2.0
"""Camera sources behind one interface: ``CameraSource.read() -> list[RGBDFrame]``.

* :class:`SimCameraSource` wraps a ``vla_sim.world.SimWorld`` (its three rendered cameras).
* :class:`RosCameraSource` is the transport-free part of the perception node: it is fed
  realsense2_camera messages (colour, aligned depth, camera info per camera; topic names from
  :func:`realsense_topics`), pairs them by stamp within a configurable slop and returns the newest
  complete, synchronised set. Extrinsics come from the rig calibration YAML
  (:func:`load_rig_extrinsics`, e.g. ``config/rig_sim.yaml``) because ``tf2_ros`` has no wheel
  here; where ``tf2_ros`` is importable the node can pass extrinsics looked up from /tf_static
  through :meth:`RosCameraSource.set_extrinsics` instead.
* :class:`RealSenseSource` reads Intel RealSense devices through pyrealsense2 (depth aligned to
  colour with ``rs.align``, depth units from the device). Tests drive it with pyrealsense2's
  ``software_device``, which injects frames through the real SDK (syncer, align, intrinsics).
"""

from __future__ import annotations

import abc
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from vla_common.camera import CameraIntrinsics, RGBDFrame

logger = logging.getLogger(__name__)


class CameraSource(abc.ABC):
    """Anything that yields one synchronised set of RGB-D frames per call."""

    @abc.abstractmethod
    def read(self) -> list[RGBDFrame]:
        """The newest synchronised frames (possibly fewer than the rig has; never stale ones)."""

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release devices or connections."""


# ---------------------------------------------------------------------------------------------- sim
class SimCameraSource(CameraSource):
    """Frames rendered by a ``vla_sim.world.SimWorld``.

    Args:
        world: the SimWorld (anything with ``render(noise) -> list[RGBDFrame]``).
        noise: optional ``vla_sim.world.DepthNoise``.
        cameras: subset of camera names, or None for all.
    """

    def __init__(self, world: Any, noise: Any = None, cameras: list[str] | None = None) -> None:
        self.world = world
        self.noise = noise
        self.cameras = cameras

    def read(self) -> list[RGBDFrame]:
        """Render every camera now."""
        frames = self.world.render(self.noise)
        if self.cameras is not None:
            frames = [f for f in frames if f.name in self.cameras]
        return frames


# ---------------------------------------------------------------------------------------------- ROS
def realsense_topics(camera: str, prefix: str = "/cameras") -> dict[str, str]:
    """realsense2_camera topic names of one camera (colour, aligned depth, colour camera info)."""
    base = f"{prefix.rstrip('/')}/{camera}"
    return {"color": f"{base}/color/image_raw", "depth": f"{base}/aligned_depth_to_color/image_raw",
            "info": f"{base}/color/camera_info"}


def load_rig_extrinsics(path: str | Path) -> dict[str, np.ndarray]:
    """``{camera: T_world_cam (4, 4)}`` from a rig calibration YAML (``cameras: {name: {T_world_cam}}``).

    Raises:
        ValueError: unreadable file, no ``cameras`` mapping, or a pose that is not a finite 4x4
            rigid transform (the message names the camera and the file).
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read rig calibration {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("cameras"), dict) or not data["cameras"]:
        raise ValueError(f"rig calibration {path} needs a non-empty `cameras:` mapping of "
                         "name -> calibration")
    out = {}
    for name, cam in data["cameras"].items():
        try:
            T = np.asarray(cam["T_world_cam"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"rig calibration {path}: camera {name!r} needs T_world_cam (4x4 list)") from exc
        R = T[:3, :3] if T.shape == (4, 4) else None
        if R is None or not np.all(np.isfinite(T)) or not np.allclose(R @ R.T, np.eye(3), atol=1e-4):
            raise ValueError(f"rig calibration {path}: camera {name!r} T_world_cam is not a finite 4x4 rigid "
                             "transform")
        out[str(name)] = T
    return out


@dataclass
class _Slot:
    """Latest messages of one camera, as (stamp_s, payload) lists (newest last)."""

    color: list = field(default_factory=list)
    depth: list = field(default_factory=list)
    info: CameraIntrinsics | None = None


CLOCK_JUMP_BACK_S = 5.0  # a stamp this much older than the newest one means the clock was reset


class RosCameraSource(CameraSource):
    """Synchronises per-camera colour / depth / intrinsics into RGBDFrame sets (no rclpy inside).

    The node converts messages with ``vla_common.conversions`` and calls :meth:`add_color`,
    :meth:`add_depth` and :meth:`set_info`; :meth:`read` returns, for the newest reference stamp
    that every camera can match, one frame per camera whose colour and depth stamps lie within
    ``slop_s`` of it. Cameras that cannot be matched are left out (the fusion then lists them as
    dropped by name, see :attr:`missing`).

    Args:
        cameras: camera names (``top``, ``left``, ``right``).
        extrinsics: ``{camera: T_world_cam}`` (from :func:`load_rig_extrinsics` or /tf_static).
        slop_s: largest stamp difference within one set.
        history: messages kept per stream.
    """

    def __init__(self, cameras: list[str], extrinsics: dict[str, np.ndarray], slop_s: float = 0.05,
                 history: int = 5) -> None:
        if slop_s < 0:
            raise ValueError(f"slop_s must be >= 0, got {slop_s}")
        self.cameras = list(cameras)
        self.extrinsics = {k: np.asarray(v, dtype=np.float64) for k, v in extrinsics.items()}
        unknown = [c for c in self.cameras if c not in self.extrinsics]
        if unknown:
            raise ValueError(f"no extrinsics for cameras {unknown}; the rig calibration has "
                             f"{sorted(self.extrinsics)}")
        self.slop_s = float(slop_s)
        self.history = int(history)
        self.slots = {c: _Slot() for c in self.cameras}
        self.missing: dict[str, str] = {}
        self._last_stamp = -np.inf
        self._lock = threading.Lock()  # callbacks may run on other executor threads than read()

    def set_extrinsics(self, camera: str, T_world_cam: np.ndarray) -> None:
        """Replace one camera's extrinsics (e.g. from /tf_static)."""
        self.extrinsics[camera] = np.asarray(T_world_cam, dtype=np.float64)

    def _push(self, lst: list, stamp_s: float, item: Any) -> None:
        with self._lock:
            if lst and stamp_s < lst[-1][0] - CLOCK_JUMP_BACK_S:
                # the clock went back (a simulator restarted): older sets would hide every new one
                for slot in self.slots.values():
                    slot.color.clear()
                    slot.depth.clear()
                self._last_stamp = -np.inf
            lst.append((float(stamp_s), item))
            lst.sort(key=lambda x: x[0])
            del lst[: max(0, len(lst) - self.history)]

    def _check_size(self, camera: str, what: str, shape: tuple[int, ...]) -> None:
        info = self.slots[camera].info
        if info is not None and tuple(shape[:2]) != (info.height, info.width):
            raise ValueError(f"{what} image is {shape[1]}x{shape[0]} but camera_info says "
                             f"{info.width}x{info.height}; image dropped")

    def add_color(self, camera: str, stamp_s: float, rgb: np.ndarray) -> None:
        """A colour image (H, W, 3) uint8.

        Raises:
            ValueError: its size differs from the camera's camera_info (the image is dropped).
        """
        if camera in self.slots:
            self._check_size(camera, "colour", rgb.shape)
            self._push(self.slots[camera].color, stamp_s, rgb)

    def add_depth(self, camera: str, stamp_s: float, depth_m: np.ndarray) -> None:
        """An aligned depth image (H, W) float32 metres (ValueError: size differs from camera_info)."""
        if camera in self.slots:
            self._check_size(camera, "depth", depth_m.shape)
            self._push(self.slots[camera].depth, stamp_s, depth_m)

    def set_info(self, camera: str, intrinsics: CameraIntrinsics) -> None:
        """The colour camera's intrinsics (from CameraInfo)."""
        if camera in self.slots:
            self.slots[camera].info = intrinsics

    @staticmethod
    def _nearest(lst: list, t: float) -> tuple[float, Any] | None:
        return min(lst, key=lambda x: abs(x[0] - t)) if lst else None

    def read(self, allow_partial: bool = False) -> list[RGBDFrame]:
        """The newest synchronised set not returned before ([] when nothing new is complete).

        Args:
            allow_partial: when no complete set exists, return the newest set of the cameras that
                did match (the caller decides when waiting longer is pointless, e.g. a dead camera);
                :attr:`missing` then names the others and why.
        """
        with self._lock:
            return self._read(allow_partial)

    def _read(self, allow_partial: bool) -> list[RGBDFrame]:
        refs = sorted({s for slot in self.slots.values() for s, _ in slot.color}, reverse=True)
        newest_partial: tuple[float, list, dict] | None = None
        for ref in refs:
            if ref <= self._last_stamp:
                break
            frames, why = [], {}
            for cam, slot in self.slots.items():
                c = self._nearest(slot.color, ref)
                d = self._nearest(slot.depth, c[0]) if c is not None else None
                if slot.info is None:
                    why[cam] = "no camera_info received"
                elif c is None or abs(c[0] - ref) > self.slop_s:
                    why[cam] = f"no colour image within {self.slop_s} s of the set's stamp"
                elif d is None or abs(d[0] - c[0]) > self.slop_s:
                    why[cam] = f"no depth image within {self.slop_s} s of its colour image"
                else:
                    frames.append(RGBDFrame(cam, c[1], d[1], slot.info, self.extrinsics[cam], c[0]))
            if not why:
                self._last_stamp, self.missing = ref, {}
                return frames
            if newest_partial is None and frames:
                newest_partial = (ref, frames, why)
        if allow_partial and newest_partial is not None:
            self._last_stamp, frames, self.missing = newest_partial
            return frames
        return []


# ---------------------------------------------------------------------------------------------- RealSense
class RealSenseCamera:
    """One RealSense device (or software_device) delivering aligned colour + depth framesets.

    Args:
        name: camera name in the rig.
        T_world_cam: (4, 4) pose of the colour optical frame in the world (rig calibration).
        wait_for_frames: callable returning a ``rs.composite_frame`` (``pipeline.wait_for_frames`` or
            a ``rs.syncer``'s ``wait_for_frames``); see :meth:`from_pipeline`.
        timeout_ms: frame wait timeout.
        stop: callable that stops the device (pipeline.stop), called by :meth:`close`.
        max_tries: framesets to wait for until one has both colour and depth.
    """

    def __init__(self, name: str, T_world_cam: np.ndarray, wait_for_frames: Any, timeout_ms: int = 2000,
                 stop: Any = None, max_tries: int = 5) -> None:
        import pyrealsense2 as rs

        self.rs = rs
        self.name = name
        self.T_world_cam = np.asarray(T_world_cam, dtype=np.float64)
        self._wait = wait_for_frames
        self._stop = stop
        self.timeout_ms = int(timeout_ms)
        self.max_tries = int(max_tries)
        self.align = rs.align(rs.stream.color)

    @classmethod
    def from_pipeline(cls, name: str, T_world_cam: np.ndarray, serial: str | None = None,
                      width: int = 640, height: int = 480, fps: int = 30) -> RealSenseCamera:
        """Start a real device through ``rs.pipeline`` (rgb8 colour + z16 depth)."""
        import pyrealsense2 as rs

        pipe, cfg = rs.pipeline(), rs.config()
        if serial:
            cfg.enable_device(serial)
        cfg.enable_stream(rs.stream.color, width, height, rs.format.rgb8, fps)
        cfg.enable_stream(rs.stream.depth, width, height, rs.format.z16, fps)
        try:
            pipe.start(cfg)
        except RuntimeError as exc:
            raise RuntimeError(f"RealSense camera {name!r} (serial {serial or 'any'}) did not start: {exc}. "
                               "Is it plugged in (USB 3) and not used by another process?") from exc
        return cls(name, T_world_cam, pipe.wait_for_frames, stop=pipe.stop)

    def frame(self) -> RGBDFrame:
        """Wait for one frameset and convert it (depth aligned to colour, metres, 0 -> NaN)."""
        rs = self.rs
        color = depth = None
        for _ in range(self.max_tries):  # a syncer may hand out a colour-only set before depth arrives
            try:
                fs = self._wait(self.timeout_ms)
            except RuntimeError as exc:
                raise RuntimeError(f"RealSense camera {self.name!r}: no frames within {self.timeout_ms} ms "
                                   f"({exc})") from exc
            if fs.get_color_frame() and fs.get_depth_frame():
                fs = self.align.process(fs)
                color, depth = fs.get_color_frame(), fs.get_depth_frame()
                break
        if not color or not depth:
            raise RuntimeError(f"RealSense camera {self.name!r}: {self.max_tries} framesets without both "
                               "colour and depth; enable both streams")
        vp = color.get_profile().as_video_stream_profile()
        it = vp.get_intrinsics()
        intr = CameraIntrinsics(it.width, it.height, it.fx, it.fy, it.ppx, it.ppy)
        rgb = np.asanyarray(color.get_data())
        fmt = vp.format()
        if fmt == rs.format.bgr8:
            rgb = rgb[:, :, ::-1]
        elif fmt in (rs.format.rgba8, rs.format.bgra8):
            rgb = rgb[:, :, :3] if fmt == rs.format.rgba8 else rgb[:, :, 2::-1]
        elif fmt != rs.format.rgb8:
            raise RuntimeError(f"RealSense camera {self.name!r}: colour format {fmt} not supported "
                               "(use rgb8)")
        d = np.asanyarray(depth.get_data()).astype(np.float32) * np.float32(depth.get_units())
        d[d <= 0] = np.nan
        return RGBDFrame(self.name, np.ascontiguousarray(rgb, dtype=np.uint8), d, intr,
                         self.T_world_cam.copy(), stamp_s=color.get_timestamp() / 1000.0)

    def close(self) -> None:
        """Stop the pipeline (if this object started it)."""
        if self._stop is not None:
            self._stop()
            self._stop = None


class RealSenseSource(CameraSource):
    """Several RealSense cameras; a camera that fails to deliver is skipped with a warning.

    Offers the calls the perception node makes on :class:`RosCameraSource` (``read(allow_partial)``,
    ``missing``, ``set_extrinsics``), so the node reads either source the same way.
    """

    def __init__(self, cameras: list[RealSenseCamera]) -> None:
        self.cameras = list(cameras)
        self.errors: dict[str, str] = {}

    @property
    def missing(self) -> dict[str, str]:
        """Cameras that delivered no frame in the last read, with the reason."""
        return self.errors

    def set_extrinsics(self, camera: str, T_world_cam: np.ndarray) -> None:
        """Replace one camera's pose (e.g. from /tf_static)."""
        for cam in self.cameras:
            if cam.name == camera:
                cam.T_world_cam = np.asarray(T_world_cam, dtype=np.float64)
                return
        raise KeyError(f"no RealSense camera named {camera!r}")

    def read(self, allow_partial: bool = True) -> list[RGBDFrame]:
        """One aligned frame per camera that delivered one within its timeout.

        Every read is partial by nature (each device is waited for in turn); ``allow_partial`` is
        accepted for the RosCameraSource interface.
        """
        frames, self.errors = [], {}
        for cam in self.cameras:
            try:
                frames.append(cam.frame())
            except RuntimeError as exc:
                self.errors[cam.name] = str(exc)
                logger.warning("RealSense camera %s: %s", cam.name, exc)
        return frames

    def close(self) -> None:
        """Stop every camera."""
        for cam in self.cameras:
            cam.close()


def realsense_serials(path: str | Path, cameras: list[str]) -> dict[str, str]:
    """``{camera: serial number}`` of ``cameras`` from the rig YAML (``cameras: {name: {serial}}``).

    Raises:
        ValueError: a camera without a ``serial`` entry, or two cameras with the same serial (the
            message names the file and what to run: ``rs-enumerate-devices -s`` lists serials).
    """
    path = Path(path)
    data = yaml.safe_load(path.read_text()) or {}
    rig = data.get("cameras") or {}
    serials = {}
    for name in cameras:
        serial = (rig.get(name) or {}).get("serial")
        if serial in (None, ""):
            raise ValueError(f"rig calibration {path}: camera {name!r} has no `serial:` (camera_source "
                             "pyrealsense2 opens each device by serial number; `rs-enumerate-devices -s` "
                             "lists them)")
        serials[name] = str(serial)
    dupes = {s for s in serials.values() if list(serials.values()).count(s) > 1}
    if dupes:
        raise ValueError(f"rig calibration {path}: serial numbers {sorted(dupes)} are used by more than one "
                         "camera")
    return serials


def realsense_source_from_rig(path: str | Path, cameras: list[str], width: int = 640, height: int = 480,
                              fps: int = 30, open_camera: Any = None) -> RealSenseSource:
    """A :class:`RealSenseSource` with one device per camera, by the serial numbers in the rig YAML.

    Extrinsics come from the same file (``T_world_cam``); intrinsics from each device.
    ``open_camera(name, T_world_cam, serial, width, height, fps) -> RealSenseCamera`` defaults to
    :meth:`RealSenseCamera.from_pipeline` (tests pass one that opens a software device). Devices
    already opened are stopped again when a later one fails to start.
    """
    extrinsics = load_rig_extrinsics(path)
    unknown = [c for c in cameras if c not in extrinsics]
    if unknown:
        raise ValueError(f"rig calibration {path} has no cameras {unknown} (it has {sorted(extrinsics)})")
    serials = realsense_serials(path, cameras)
    open_camera = open_camera or (lambda name, T, serial, w, h, f: RealSenseCamera.from_pipeline(
        name, T, serial=serial, width=w, height=h, fps=f))
    opened: list[RealSenseCamera] = []
    try:
        for name in cameras:
            opened.append(open_camera(name, extrinsics[name], serials[name], width, height, fps))
    except Exception:
        for cam in opened:
            cam.close()
        raise
    return RealSenseSource(opened)
