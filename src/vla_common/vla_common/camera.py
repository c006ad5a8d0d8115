# SPDX-License-Identifier: Apache-2.0
"""Camera data shared by the simulator, the camera sources and the fusion code.

A frame is an RGB image, a depth image aligned to it (metres, NaN or 0 where the sensor saw
nothing), the pinhole intrinsics and the camera pose in the world. Camera poses are optical
frames (REP-103: z forward, x right, y down), as realsense2_camera publishes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics of an undistorted image, in pixels."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    @property
    def K(self) -> np.ndarray:  # noqa: N802 (the conventional name)
        """The 3x3 camera matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @classmethod
    def from_fov(cls, width: int, height: int, fov_y_deg: float) -> CameraIntrinsics:
        """Square-pixel intrinsics from a vertical field of view, principal point at the centre."""
        f = 0.5 * height / math.tan(math.radians(fov_y_deg) / 2.0)
        return cls(width, height, f, f, (width - 1) / 2.0, (height - 1) / 2.0)

    def scaled(self, width: int, height: int) -> CameraIntrinsics:
        """The same camera at another resolution."""
        sx, sy = width / self.width, height / self.height
        return CameraIntrinsics(width, height, self.fx * sx, self.fy * sy,
                                (self.cx + 0.5) * sx - 0.5, (self.cy + 0.5) * sy - 0.5)


@dataclass
class RGBDFrame:
    """One aligned RGB-D observation from one camera.

    Attributes:
        name: camera name (``top``, ``left``, ``right`` in the sim rig).
        rgb: (H, W, 3) uint8 colour image.
        depth: (H, W) float32 depth along the optical axis in metres; NaN or 0 = no measurement.
        intrinsics: pinhole model of ``rgb`` and ``depth``.
        T_world_cam: (4, 4) pose of the camera optical frame in the world frame.
        stamp_s: acquisition time in seconds (sim time in simulation).
        seg: (H, W) int32 segmentation (simulator only, for training and scoring), else None.
    """

    name: str
    rgb: np.ndarray
    depth: np.ndarray
    intrinsics: CameraIntrinsics
    T_world_cam: np.ndarray
    stamp_s: float = 0.0
    seg: np.ndarray | None = None

    def validate(self) -> None:
        """Raise ValueError naming the field when shapes or dtypes disagree."""
        h, w = self.intrinsics.height, self.intrinsics.width
        if self.rgb.shape != (h, w, 3) or self.rgb.dtype != np.uint8:
            raise ValueError(f"camera '{self.name}': rgb must be ({h}, {w}, 3) uint8, got "
                             f"{self.rgb.shape} {self.rgb.dtype}")
        if self.depth.shape != (h, w):
            raise ValueError(f"camera '{self.name}': depth must be ({h}, {w}) like the intrinsics, "
                             f"got {self.depth.shape}")
        if self.T_world_cam.shape != (4, 4) or not np.all(np.isfinite(self.T_world_cam)):
            raise ValueError(f"camera '{self.name}': T_world_cam must be a finite 4x4 matrix")
