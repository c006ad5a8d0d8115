# SPDX-License-Identifier: Apache-2.0
"""vla calibrate: extrinsics recovered from images of the ChArUco board projected with known poses.

The images are the printed board (OpenCV's own rendering of it) projected through the simulated
rig's cameras (config/rig_sim.yaml) by the exact plane homography K [r1 r2 t], rendered at 4x and
area-downsampled, then blurred and given sensor noise; the board lies on the table as the procedure
says. Tolerance: 3 mm in camera position, 0.3 degrees in orientation.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

cv2 = pytest.importorskip("cv2")

from vla_common.camera import CameraIntrinsics  # noqa: E402
from vla_perception import calibrate as cal  # noqa: E402
from vla_perception.sources import load_rig_extrinsics  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
RIG = REPO / "config" / "rig_sim.yaml"
POS_TOL_M, ROT_TOL_DEG = 0.003, 0.3


def rig_cameras() -> dict[str, tuple[CameraIntrinsics, np.ndarray]]:
    data = yaml.safe_load(RIG.read_text())["cameras"]
    return {n: (CameraIntrinsics(c["width"], c["height"], c["fx"], c["fy"], c["cx"], c["cy"]),
                np.asarray(c["T_world_cam"], float)) for n, c in data.items()}


def render_board(board: cal.BoardSpec, intr: CameraIntrinsics, T_cam_board: np.ndarray, seed: int,
                 ss: int = 4, px_per_m: float = 3000.0) -> np.ndarray:
    """(H, W) uint8 camera image of the board (grey table around it), blurred and noisy."""
    tex = board.image(px_per_m)
    K = intr.K.copy()
    K[:2] *= ss
    K[:2, 2] += (ss - 1) / 2.0  # pixel centres of the supersampled image
    H = K @ np.column_stack([T_cam_board[:3, 0], T_cam_board[:3, 1], T_cam_board[:3, 3]]) @ \
        np.diag([1.0 / px_per_m, 1.0 / px_per_m, 1.0])
    big = cv2.warpPerspective(tex, H, (intr.width * ss, intr.height * ss), flags=cv2.INTER_LINEAR,
                              borderValue=120)
    img = cv2.resize(big, (intr.width, intr.height), interpolation=cv2.INTER_AREA).astype(np.float64)
    img = cv2.GaussianBlur(img, (0, 0), 0.7)
    img += np.random.default_rng(seed).normal(0.0, 2.0, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def rotation_error_deg(A: np.ndarray, B: np.ndarray) -> float:
    c = (np.trace(A[:3, :3].T @ B[:3, :3]) - 1.0) / 2.0
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


@pytest.mark.parametrize("board_xyz, yaw", [((0.36, 0.10, 0.0), 0.0), ((0.33, 0.05, 0.004), 12.0)])
def test_extrinsics_recovered_for_the_three_cameras(board_xyz, yaw):
    board = cal.BoardSpec()
    T_wb = cal.board_in_world(board_xyz, yaw)
    results = []
    for k, (name, (intr, T_wc)) in enumerate(rig_cameras().items()):
        img = render_board(board, intr, np.linalg.inv(T_wc) @ T_wb, seed=k)
        r = cal.calibrate_camera(name, img, intr, T_wb, board)
        results.append(r)
        assert r.n_corners >= 20, (name, r.n_corners)  # most of the 24 inner corners
        pos_err = np.linalg.norm(r.T_world_cam[:3, 3] - T_wc[:3, 3])
        rot_err = rotation_error_deg(r.T_world_cam, T_wc)
        assert pos_err < POS_TOL_M and rot_err < ROT_TOL_DEG, (name, pos_err, rot_err, r.rms_px)
        assert r.rms_px < 0.5
    # the wrong board placement moves every camera: the check is not vacuous
    intr, T_wc = rig_cameras()["top"]
    img = render_board(board, intr, np.linalg.inv(T_wc) @ T_wb, seed=9)
    wrong = cal.calibrate_camera("top", img, intr, cal.board_in_world((0.38, 0.10, 0.0)), board)
    assert np.linalg.norm(wrong.T_world_cam[:3, 3] - T_wc[:3, 3]) > 0.015


def test_cli_writes_a_rig_yaml_the_perception_node_reads(tmp_path):
    board = cal.BoardSpec()
    T_wb = cal.board_in_world((0.36, 0.10, 0.0))
    args = ["rig", "--intrinsics", str(RIG), "--board-xyz", "0.36", "0.10", "0.0",
            "--out", str(tmp_path / "rig.yaml")]
    for k, (name, (intr, T_wc)) in enumerate(rig_cameras().items()):
        png = tmp_path / f"{name}.png"
        cv2.imwrite(str(png), render_board(board, intr, np.linalg.inv(T_wc) @ T_wb, seed=k))
        args += ["--image", f"{name}={png}", "--serial", f"{name}=90000{k}"]
    assert cal.main(args) == 0
    poses = load_rig_extrinsics(tmp_path / "rig.yaml")
    truth = load_rig_extrinsics(RIG)
    assert set(poses) == {"top", "left", "right"}
    for name in poses:
        assert np.linalg.norm(poses[name][:3, 3] - truth[name][:3, 3]) < POS_TOL_M
    data = yaml.safe_load((tmp_path / "rig.yaml").read_text())
    left = data["cameras"]["left"]
    assert left["serial"] == "900001" and left["calibration"]["rms_px"] < 0.5
    assert (cal.main(["board", "--out", str(tmp_path / "board.png")]) == 0
            and cv2.imread(str(tmp_path / "board.png")).shape[:2] == (2362, 3307))  # 280 x 200 mm at 300 dpi


def test_refuses_an_image_without_the_board(tmp_path, capsys):
    intr = rig_cameras()["top"][0]
    with pytest.raises(cal.CalibrationError, match="0 board corners found"):
        cal.calibrate_camera("top", np.full((intr.height, intr.width), 120, np.uint8), intr, np.eye(4))
    png = tmp_path / "blank.png"
    cv2.imwrite(str(png), np.full((intr.height, intr.width), 120, np.uint8))
    rc = cal.main(["rig", "--image", f"top={png}", "--intrinsics", str(RIG), "--board-xyz", "0", "0", "0",
                   "--out", str(tmp_path / "rig.yaml")])
    assert rc == 1 and "camera top: 0 board corners" in capsys.readouterr().err
    assert not (tmp_path / "rig.yaml").exists()
    with pytest.raises(ValueError, match="smaller than the square"):
        cal.BoardSpec(square_m=0.03, marker_m=0.04)
