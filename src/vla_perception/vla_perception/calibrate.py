# SPDX-License-Identifier: Apache-2.0
"""``vla calibrate``: camera extrinsics from one printed ChArUco board on the table -> the rig YAML.

Procedure (README, "First day on a robot"):

1. ``vla calibrate board --out board.png`` writes the board (7 x 5 squares of 40 mm, ArUco 5x5
   markers of 30 mm; 280 x 200 mm, fits A4 landscape) at 300 dpi. Print it at 100 % scale,
   measure one square (must be 40.0 mm; pass ``--square-m`` / ``--marker-m`` otherwise) and
   glue it flat on a rigid plate.
2. Lay it face up on the table where all three cameras see it, with the printed top edge on the
   robot's left (+y) side, the printed left edge towards the robot (-x), so the board's x axis (along
   the printed top edge, left to right) points along world +x and its y axis (printed top to
   bottom) along world -y. Measure the world position of the board's top-left corner (the outer
   corner of the top-left square) in the robot base frame, e.g. by jogging the TCP onto it, and
   pass it as ``--board-xyz X Y Z`` (Z = the board surface, usually the table top plus the plate
   thickness); ``--board-yaw-deg`` rotates the board about world z if it cannot lie square.
3. ``vla calibrate rig --realsense --serial top=... --serial left=... --serial right=... --board-xyz ...
   --out config/rig_robot.yaml`` grabs one colour frame per camera by serial number (intrinsics
   from the device), or ``--image top=top.png ... --intrinsics config/rig_robot.yaml`` calibrates
   saved images with known intrinsics. For each camera it detects the ChArUco corners, solves the
   board pose (planar PnP, IPPE + Levenberg-Marquardt refinement), and writes
   ``T_world_cam = T_world_board @ inv(T_cam_board)`` into the rig YAML (the format of
   config/rig_sim.yaml, plus ``serial`` and a ``calibration`` record: corners used and RMS
   reprojection error). A camera with fewer than ``--min-corners`` corners or an RMS error above
   ``--max-rms-px`` is refused with the reason; nothing is written unless every camera passes.
4. Point the perception node at the file (``rig_calibration``) and check the fused cloud of the
   bare table in RViz: the table top must lie at z = 0 within a few millimetres.

The core (:func:`detect_board`, :func:`board_pose`, :func:`calibrate_camera`, :func:`rig_dict`)
is plain numpy + OpenCV; the RealSense capture is the only hardware part.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from vla_common.camera import CameraIntrinsics
from vla_common.transforms import matrix_to_quat

DICTIONARY = "DICT_5X5_100"
SQUARES = (7, 5)  # (x, y) squares
SQUARE_M = 0.040
MARKER_M = 0.030
MIN_CORNERS = 8
MAX_RMS_PX = 1.0
DEPTH_NEAR_M, DEPTH_FAR_M = 0.1, 3.0  # RealSense D4xx usable range, recorded with each camera


@dataclass
class BoardSpec:
    """The printed ChArUco board: squares (x, y), square and marker side in metres, ArUco dictionary."""

    squares: tuple[int, int] = SQUARES
    square_m: float = SQUARE_M
    marker_m: float = MARKER_M
    dictionary: str = DICTIONARY

    def __post_init__(self) -> None:
        if not 0.0 < self.marker_m < self.square_m:
            raise ValueError(f"marker side {self.marker_m} m must be positive and smaller than the square "
                             f"side {self.square_m} m")
        if min(self.squares) < 3:
            raise ValueError(f"a ChArUco board needs at least 3 x 3 squares, got {self.squares}")

    @property
    def size_m(self) -> tuple[float, float]:
        """Board width (x) and height (y) in metres."""
        return self.squares[0] * self.square_m, self.squares[1] * self.square_m

    def cv_board(self) -> Any:
        """The OpenCV ``aruco.CharucoBoard``."""
        import cv2

        aruco = cv2.aruco
        dictionary = aruco.getPredefinedDictionary(getattr(aruco, self.dictionary))
        return aruco.CharucoBoard(tuple(self.squares), self.square_m, self.marker_m, dictionary)

    def image(self, px_per_m: float) -> np.ndarray:
        """(H, W) uint8 image of the board, no margin: pixel (u, v) = board point (u, v) / px_per_m."""
        w, h = (int(round(s * px_per_m)) for s in self.size_m)
        return self.cv_board().generateImage((w, h), marginSize=0, borderBits=1)


def board_in_world(xyz: tuple[float, float, float], yaw_deg: float = 0.0) -> np.ndarray:
    """(4, 4) T_world_board of a board lying face up at ``xyz`` (its top-left outer corner).

    Board x along world x rotated by ``yaw_deg`` about world z, board y along world -y, board z
    (into the board) along world -z.
    """
    c, s = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
    T = np.eye(4)
    T[:3, :3] = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ np.diag([1.0, -1.0, -1.0])
    T[:3, 3] = xyz
    return T


def detect_board(gray: np.ndarray, board: BoardSpec) -> tuple[np.ndarray, np.ndarray]:
    """ChArUco corners of one image: (pixels (N, 2) float64, board points (N, 3) float64 metres).

    Raises:
        ValueError: the image is not (H, W) or (H, W, 3) uint8.
    """
    import cv2

    img = np.asarray(gray)
    if img.dtype != np.uint8 or img.ndim not in (2, 3):
        raise ValueError(f"expected an (H, W) or (H, W, 3) uint8 image, got {img.dtype} {img.shape}")
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    cv_board = board.cv_board()
    corners, ids, _, _ = cv2.aruco.CharucoDetector(cv_board).detectBoard(img)
    if corners is None or ids is None or len(ids) == 0:
        return np.zeros((0, 2)), np.zeros((0, 3))
    obj = cv_board.getChessboardCorners()[ids.ravel()]
    return corners.reshape(-1, 2).astype(np.float64), obj.astype(np.float64)


@dataclass
class CameraCalibration:
    """One camera's result: T_world_cam (4, 4), corners used, RMS reprojection error in pixels."""

    name: str
    T_world_cam: np.ndarray
    n_corners: int
    rms_px: float
    intrinsics: CameraIntrinsics
    distortion: list[float]
    serial: str | None = None


class CalibrationError(RuntimeError):
    """A camera could not be calibrated (too few corners, reprojection error too large)."""


def board_pose(pixels: np.ndarray, points: np.ndarray, K: np.ndarray, dist: np.ndarray) -> tuple[
        np.ndarray, float]:
    """T_cam_board (4, 4) from corner correspondences, and the RMS reprojection error (pixels)."""
    import cv2

    ok, rvec, tvec = cv2.solvePnP(points, pixels, K, dist, flags=cv2.SOLVEPNP_IPPE)
    if not ok:
        raise CalibrationError("solvePnP found no board pose")
    rvec, tvec = cv2.solvePnPRefineLM(points, pixels, K, dist, rvec, tvec)
    proj, _ = cv2.projectPoints(points, rvec, tvec, K, dist)
    rms = float(np.sqrt(np.mean(np.sum((proj.reshape(-1, 2) - pixels) ** 2, axis=1))))
    T = np.eye(4)
    T[:3, :3] = cv2.Rodrigues(rvec)[0]
    T[:3, 3] = tvec.ravel()
    return T, rms


def calibrate_camera(name: str, image: np.ndarray, intrinsics: CameraIntrinsics, T_world_board: np.ndarray,
                     board: BoardSpec | None = None, distortion: list[float] | None = None,
                     min_corners: int = MIN_CORNERS, max_rms_px: float = MAX_RMS_PX,
                     serial: str | None = None) -> CameraCalibration:
    """Extrinsics of one camera from one image of the board.

    Raises:
        CalibrationError: fewer than ``min_corners`` corners found, or RMS error above ``max_rms_px``
            (the message says which and what to do).
    """
    board = board or BoardSpec()
    dist = np.asarray(distortion if distortion is not None else [0.0] * 5, dtype=np.float64)
    pixels, points = detect_board(image, board)
    if len(pixels) < min_corners:
        raise CalibrationError(f"camera {name}: {len(pixels)} board corners found, need {min_corners}; the "
                               "board must be fully visible, in focus and not in glare")
    T_cam_board, rms = board_pose(pixels, points, intrinsics.K, dist)
    if rms > max_rms_px:
        raise CalibrationError(f"camera {name}: reprojection error {rms:.2f} px > {max_rms_px} px; check the "
                               "intrinsics, the printed square size and that the board is flat")
    T_world_cam = np.asarray(T_world_board, float) @ np.linalg.inv(T_cam_board)
    return CameraCalibration(name, T_world_cam, len(pixels), rms, intrinsics, [float(v) for v in dist],
                             serial)


def rig_dict(cams: list[CameraCalibration], board: BoardSpec, T_world_board: np.ndarray,
             name: str = "robot") -> dict[str, Any]:
    """The rig YAML data (format of config/rig_sim.yaml, plus ``serial`` and ``calibration``)."""
    out = {}
    for c in cams:
        K = c.intrinsics
        entry = {"frame_id": f"{c.name}_color_optical_frame", "width": int(K.width), "height": int(K.height),
                 "fx": float(K.fx), "fy": float(K.fy), "cx": float(K.cx), "cy": float(K.cy),
                 "distortion": c.distortion, "depth_near_m": DEPTH_NEAR_M, "depth_far_m": DEPTH_FAR_M,
                 "T_world_cam": [[round(float(v), 9) + 0.0 for v in row] for row in c.T_world_cam],
                 "xyz": [round(float(v), 9) + 0.0 for v in c.T_world_cam[:3, 3]],
                 "quat_xyzw": [round(float(v), 9) + 0.0 for v in matrix_to_quat(c.T_world_cam)]}
        if c.serial:
            entry["serial"] = str(c.serial)
        entry["calibration"] = {"method": "charuco", "corners": c.n_corners, "rms_px": round(c.rms_px, 4)}
        out[c.name] = entry
    return {"rig": name, "world_frame": "world", "convention": "optical frames (z forward, x right, y down)",
            "board": {"squares": list(board.squares), "square_m": board.square_m, "marker_m": board.marker_m,
                      "dictionary": board.dictionary,
                      "T_world_board": [[round(float(v), 9) + 0.0 for v in row] for row in T_world_board]},
            "cameras": out}


def write_rig(path: Path, data: dict[str, Any]) -> Path:
    """Write the rig YAML with a header saying how it was made."""
    header = ("# SPDX-License-Identifier: Apache-2.0\n"
              "# Camera rig calibration written by `vla calibrate rig` (ChArUco board on the table).\n"
              "# Intrinsics in pixels, T_world_cam of each optical frame (z forward, x right, y down);\n"
              "# world = robot base frame.\n")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + yaml.safe_dump(data, sort_keys=False, default_flow_style=None))
    return path


# ---------------------------------------------------------------------------------------------- inputs
def _pairs(items: list[str] | None, what: str) -> dict[str, str]:
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise ValueError(f"{what} must be given as NAME=VALUE, got {item!r}")
        out[name] = value
    return out


def _intrinsics_from_rig(path: Path, name: str) -> tuple[CameraIntrinsics, list[float]]:
    data = yaml.safe_load(Path(path).read_text()) or {}
    cam = (data.get("cameras") or {}).get(name)
    if not cam:
        raise ValueError(f"{path} has no camera {name!r} to take intrinsics from")
    return (CameraIntrinsics(int(cam["width"]), int(cam["height"]), float(cam["fx"]), float(cam["fy"]),
                             float(cam["cx"]), float(cam["cy"])), list(cam.get("distortion", [0.0] * 5)))


def _grab_realsense(name: str, serial: str) -> tuple[np.ndarray, CameraIntrinsics]:
    """One colour frame and the colour intrinsics of the RealSense with this serial."""
    from vla_perception.sources import RealSenseCamera

    cam = RealSenseCamera.from_pipeline(name, np.eye(4), serial=serial)
    try:
        for _ in range(15):  # let auto exposure settle
            frame = cam.frame()
        return frame.rgb, frame.intrinsics
    finally:
        cam.close()


def main(argv: list[str] | None = None) -> int:
    """``vla calibrate board|rig`` (see the module docstring)."""
    ap = argparse.ArgumentParser(prog="vla calibrate", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for p in (sub.add_parser("board", help="write the printable ChArUco board"),
              sub.add_parser("rig", help="calibrate the camera extrinsics and write the rig YAML")):
        p.add_argument("--squares", type=int, nargs=2, default=list(SQUARES), metavar=("X", "Y"))
        p.add_argument("--square-m", type=float, default=SQUARE_M)
        p.add_argument("--marker-m", type=float, default=MARKER_M)
    sub.choices["board"].add_argument("--out", type=Path, default=Path("charuco_board.png"))
    sub.choices["board"].add_argument("--dpi", type=float, default=300.0)
    rig = sub.choices["rig"]
    rig.add_argument("--image", action="append", metavar="CAMERA=PNG", help="a saved image per camera")
    rig.add_argument("--intrinsics", type=Path, help="rig YAML with the intrinsics of the --image cameras")
    rig.add_argument("--realsense", action="store_true", help="grab one frame per --serial camera")
    rig.add_argument("--serial", action="append", metavar="CAMERA=SERIAL")
    rig.add_argument("--board-xyz", type=float, nargs=3, required=True, metavar=("X", "Y", "Z"))
    rig.add_argument("--board-yaw-deg", type=float, default=0.0)
    rig.add_argument("--min-corners", type=int, default=MIN_CORNERS)
    rig.add_argument("--max-rms-px", type=float, default=MAX_RMS_PX)
    rig.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    try:
        board = BoardSpec(tuple(args.squares), args.square_m, args.marker_m)
        if args.cmd == "board":
            import cv2

            img = board.image(args.dpi / 0.0254)
            cv2.imwrite(str(args.out), img)
            w, h = board.size_m
            print(f"wrote {args.out}: {img.shape[1]} x {img.shape[0]} px = {w * 1000:.0f} x "
                  f"{h * 1000:.0f} mm at {args.dpi:g} dpi; print at 100 % and check one square is "
                  f"{board.square_m * 1000:.1f} mm")
            return 0
        serials, images = _pairs(args.serial, "--serial"), _pairs(args.image, "--image")
        if args.realsense == bool(images):
            raise ValueError("give either --realsense (with --serial CAMERA=SERIAL) or --image CAMERA=PNG")
        T_wb = board_in_world(tuple(args.board_xyz), args.board_yaw_deg)
        results = []
        if args.realsense:
            if not serials:
                raise ValueError("--realsense needs --serial CAMERA=SERIAL for each camera")
            for name, serial in serials.items():
                rgb, intr = _grab_realsense(name, serial)
                results.append(calibrate_camera(name, rgb, intr, T_wb, board, None, args.min_corners,
                                                args.max_rms_px, serial))
        else:
            import cv2

            if args.intrinsics is None:
                raise ValueError("--image needs --intrinsics RIG_YAML (fx, fy, cx, cy, distortion)")
            for name, png in images.items():
                img = cv2.imread(png, cv2.IMREAD_GRAYSCALE)
                if img is None:
                    raise ValueError(f"cannot read image {png!r} for camera {name}")
                intr, dist = _intrinsics_from_rig(args.intrinsics, name)
                results.append(calibrate_camera(name, img, intr, T_wb, board, dist, args.min_corners,
                                                args.max_rms_px, serials.get(name)))
    except (ValueError, CalibrationError, RuntimeError, OSError) as exc:
        print(f"vla calibrate: {exc}", file=sys.stderr)
        return 1
    for r in results:
        x, y, z = r.T_world_cam[:3, 3]
        print(f"{r.name}: {r.n_corners} corners, RMS {r.rms_px:.3f} px, "
              f"camera at x {x:.3f} y {y:.3f} z {z:.3f} m")
    print(f"wrote {write_rig(args.out, rig_dict(results, board, T_wb))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
