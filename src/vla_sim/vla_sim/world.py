# SPDX-License-Identifier: Apache-2.0
"""The PyBullet world of the benchmark: table, objects, robot, three RGB-D cameras.

Follows the papers' simulated setup (Secondary Realignment Sec. 4 / A2: PyBullet, UR5, three RGB-D
cameras over a tabletop) with three differences that matter for a fair benchmark:

- one DIRECT client per world, reused across scenes with ``resetSimulation`` (the EGL renderer is
  only fast in a client that stays alive);
- everything is driven by step counts at a fixed 240 Hz, never by the wall clock, so a slow
  machine gives the same result as a fast one;
- the cameras are an explicit calibrated rig (intrinsics + optical-frame extrinsics), written to
  ``config/rig_sim.yaml`` in the same format a real rig uses.

Frames: world = robot base (z up, x forward, table top at z = 0). Cameras are optical frames
(z forward, x right, y down). "Left" is +y (the robot's left, facing +x).
"""

from __future__ import annotations

import importlib.util
import logging
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pybullet as pb
import yaml

from vla_common.camera import CameraIntrinsics, RGBDFrame
from vla_common.transforms import look_at, matrix_to_quat, pose_to_matrix, quat_to_matrix
from vla_sim import objects as objlib

logger = logging.getLogger(__name__)

PHYSICS_HZ = 240
DT_S = 1.0 / PHYSICS_HZ
GRAVITY_MPS2 = 9.81

# Workspace on the table (metres, world frame), where scenes put objects.
WORKSPACE_X = (0.30, 0.75)
WORKSPACE_Y = (-0.35, 0.35)
WORKSPACE_CENTRE = np.array([0.525, 0.0, 0.0])
# The table: a slab whose top is z = 0, larger than the workspace; a floor catches what falls.
TABLE_X = (-0.35, 1.05)
TABLE_Y = (-0.75, 0.75)
TABLE_THICKNESS_M = 0.04
FLOOR_Z = -0.75
TABLE_RGBA = (0.78, 0.72, 0.62, 1.0)
FLOOR_RGBA = (0.35, 0.35, 0.38, 1.0)

# RealSense L515 colour stream at 640x480: fx = fy ~ 605 px, principal point near the centre.
L515_640x480 = CameraIntrinsics(640, 480, 605.0, 605.0, 321.5, 244.5)
DEPTH_NEAR_M = 0.05
DEPTH_FAR_M = 4.0

# An object is still when its speed and spin stay under these for STILL_STEPS consecutive checks.
STILL_LIN_MPS = 0.005
STILL_ANG_RADPS = 0.05
STILL_CHECKS = 3
STILL_CHECK_EVERY = 8
SETTLE_MAX_STEPS = 2400


@dataclass
class CameraSpec:
    """One calibrated camera of the rig: intrinsics and optical-frame pose in the world."""

    name: str
    intrinsics: CameraIntrinsics
    T_world_cam: np.ndarray  # (4, 4) optical frame

    @property
    def frame_id(self) -> str:
        """ROS frame name of the optical frame."""
        return f"{self.name}_color_optical_frame"


@dataclass(frozen=True)
class DepthNoise:
    """Depth sensor noise: additive Gaussian (sigma_m) and random missing pixels (NaN).

    Attributes:
        sigma_m: standard deviation of the additive depth noise in metres (L515: ~2-3 mm at 1 m).
        dropout_prob: probability that a pixel has no depth (returned as NaN).
    """

    sigma_m: float = 0.002
    dropout_prob: float = 0.01

    def __post_init__(self) -> None:
        if self.sigma_m < 0 or not 0.0 <= self.dropout_prob < 1.0:
            raise ValueError(f"DepthNoise needs sigma_m >= 0 and 0 <= dropout_prob < 1, got {self}")

    def apply(self, depth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Noisy copy of a (H, W) float32 depth image (metres)."""
        out = depth.astype(np.float32, copy=True)
        if self.sigma_m > 0:
            out += rng.normal(0.0, self.sigma_m, size=out.shape).astype(np.float32)
        if self.dropout_prob > 0:
            out[rng.random(out.shape) < self.dropout_prob] = np.nan
        return out


def default_rig(width: int = 640, height: int = 480) -> list[CameraSpec]:
    """The simulated rig: ``top`` straight down from 0.85 m, ``left``/``right`` at 45 degrees.

    All three look at the workspace centre. The side cameras sit 0.75 m from it, in the y-z plane
    (left = +y). ``width``/``height`` rescale the L515 intrinsics (e.g. 320x240 for fast data
    collection); the extrinsics do not change.
    """
    K = L515_640x480.scaled(width, height) if (width, height) != (640, 480) else L515_640x480
    c = WORKSPACE_CENTRE
    d = 0.75
    s = math.sqrt(0.5)
    return [
        # up = +x: the far side of the table is at the top of the image, the robot at the bottom.
        CameraSpec("top", K, look_at(c + [0.0, 0.0, 0.85], c, up=(1.0, 0.0, 0.0))),
        CameraSpec("left", K, look_at(c + [0.0, d * s, d * s], c)),
        CameraSpec("right", K, look_at(c + [0.0, -d * s, d * s], c)),
    ]


def rig_to_dict(rig: list[CameraSpec], name: str = "sim") -> dict[str, Any]:
    """The rig calibration as plain data (the format of config/rig_*.yaml)."""
    cams = {}
    for cam in rig:
        K = cam.intrinsics
        xyz = cam.T_world_cam[:3, 3]
        cams[cam.name] = {
            "frame_id": cam.frame_id,
            "width": K.width,
            "height": K.height,
            "fx": float(K.fx),
            "fy": float(K.fy),
            "cx": float(K.cx),
            "cy": float(K.cy),
            "distortion": [0.0, 0.0, 0.0, 0.0, 0.0],
            "depth_near_m": DEPTH_NEAR_M,
            "depth_far_m": DEPTH_FAR_M,
            "T_world_cam": [[round(float(v), 12) + 0.0 for v in row] for row in cam.T_world_cam],
            "xyz": [round(float(v), 12) + 0.0 for v in xyz],
            "quat_xyzw": [round(float(v), 12) + 0.0 for v in matrix_to_quat(cam.T_world_cam)],
        }
    return {
        "rig": name,
        "world_frame": "world",
        "convention": "optical frames (z forward, x right, y down)",
        "cameras": cams,
    }


def save_rig_yaml(path: Path, rig: list[CameraSpec] | None = None, name: str = "sim") -> Path:
    """Write the rig calibration YAML (generated from the code; see ``default_rig``)."""
    path = Path(path)
    data = rig_to_dict(rig or default_rig(), name)
    header = (
        "# SPDX-License-Identifier: Apache-2.0\n"
        "# Simulated camera rig calibration, generated by `python -m vla_sim.world --write-rig`.\n"
        "# Same format as a real rig: intrinsics (pixels) and T_world_cam of each optical frame\n"
        "# (z forward, x right, y down); world = robot base, table top at z = 0.\n"
    )
    path.write_text(header + yaml.safe_dump(data, sort_keys=False, default_flow_style=None))
    return path


def load_rig_yaml(path: Path) -> list[CameraSpec]:
    """Read a rig calibration YAML written by :func:`save_rig_yaml` (or by hand for a real rig)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read rig calibration {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("cameras"), dict):
        raise ValueError(f"rig calibration {path} needs a `cameras:` mapping of name -> calibration")
    rig = []
    for name, c in data["cameras"].items():
        missing = {"width", "height", "fx", "fy", "cx", "cy", "T_world_cam"} - set(c)
        if missing:
            raise ValueError(f"rig calibration {path}: camera {name!r} lacks {sorted(missing)}")
        T = np.asarray(c["T_world_cam"], dtype=np.float64)
        if T.shape != (4, 4):
            raise ValueError(f"rig calibration {path}: camera {name!r} T_world_cam must be 4x4")
        K = CameraIntrinsics(
            int(c["width"]), int(c["height"]), float(c["fx"]), float(c["fy"]), float(c["cx"]), float(c["cy"])
        )
        rig.append(CameraSpec(name, K, T))
    return rig


def projection_matrix_gl(K: CameraIntrinsics, near: float, far: float) -> list[float]:
    """OpenGL projection (column-major 16 floats) that reproduces the pinhole ``K`` exactly.

    Pixel (u, v) with centre at integer coordinates maps to NDC x = 2 (u + 0.5) / W - 1 and
    y = 1 - 2 (v + 0.5) / H (PyBullet returns row 0 at the top), so off-centre principal points
    are honoured.
    """
    W, H = K.width, K.height
    P = np.zeros((4, 4))
    P[0, 0] = 2.0 * K.fx / W
    P[0, 2] = 1.0 - 2.0 * (K.cx + 0.5) / W
    P[1, 1] = 2.0 * K.fy / H
    P[1, 2] = 2.0 * (K.cy + 0.5) / H - 1.0
    P[2, 2] = -(far + near) / (far - near)
    P[2, 3] = -2.0 * far * near / (far - near)
    P[3, 2] = -1.0
    return P.flatten(order="F").tolist()


def view_matrix_gl(T_world_cam: np.ndarray) -> list[float]:
    """OpenGL view matrix (column-major 16 floats) of an optical-frame camera pose."""
    T_world_gl = T_world_cam @ np.diag([1.0, -1.0, -1.0, 1.0])  # GL camera: y up, z backwards
    R, t = T_world_gl[:3, :3], T_world_gl[:3, 3]
    V = np.eye(4)
    V[:3, :3] = R.T
    V[:3, 3] = -R.T @ t
    return V.flatten(order="F").tolist()


def zbuffer_to_metres(zbuf: np.ndarray, near: float, far: float) -> np.ndarray:
    """OpenGL depth buffer in [0, 1] -> distance along the optical axis in metres."""
    return (far * near / (far - (far - near) * zbuf)).astype(np.float32)


class SimWorld:
    """One PyBullet DIRECT client holding a table, objects, a robot and the camera rig.

    Args:
        robot: ``ur5``, ``humanoid_arm`` (URDFs from vla_executor) or None for no robot.
        renderer: ``auto`` (EGL when its plugin loads, else TinyRenderer), ``egl`` or ``tiny``.
        seed: seeds the depth-noise generator (physics itself is deterministic).
        render_size: (width, height) of rendered images; (320, 240) for fast data collection.
        rig: camera rig; :func:`default_rig` at ``render_size`` when None.
    """

    def __init__(
        self,
        robot: str | None = "ur5",
        renderer: str = "auto",
        seed: int = 0,
        render_size: tuple[int, int] = (640, 480),
        rig: list[CameraSpec] | None = None,
    ):
        if renderer not in ("auto", "egl", "tiny"):
            raise ValueError(f"renderer must be 'auto', 'egl' or 'tiny', got {renderer!r}")
        self.seed = int(seed)
        self.robot_name = robot
        self.cid = pb.connect(pb.DIRECT)
        self.renderer = "tiny"
        self._egl_plugin = -1
        if renderer in ("auto", "egl"):
            self._egl_plugin = self._load_egl()
            if self._egl_plugin >= 0:
                self.renderer = "egl"
            elif renderer == "egl":
                pb.disconnect(self.cid)
                raise RuntimeError(
                    "the EGL renderer plugin did not load; install Mesa EGL "
                    "(apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri) or use renderer='tiny'"
                )
        self.rig = rig if rig is not None else default_rig(*render_size)
        self.steps = 0
        self.object_ids: dict[str, int] = {}
        self.scene = None
        self.robot = None  # set by load_scene when a robot is configured
        self._render_count = 0
        self._static_ids: dict[str, int] = {}
        self._reset_world()

    # ------------------------------------------------------------------ lifecycle
    def _load_egl(self) -> int:
        spec = importlib.util.find_spec("eglRenderer")
        if spec is None or spec.origin is None:
            return -1
        try:
            plugin = pb.loadPlugin(spec.origin, "_eglRendererPlugin", physicsClientId=self.cid)
        except pb.error:  # pragma: no cover (depends on the host's GL stack)
            return -1
        if plugin < 0:
            logger.warning("EGL renderer plugin did not load; using TinyRenderer")
        return plugin

    def close(self) -> None:
        """Disconnect the PyBullet client."""
        if self.cid is not None and pb.isConnected(self.cid):
            pb.disconnect(self.cid)
            _PLAIN_TEXTURES.pop(self.cid, None)
        self.cid = None

    def __enter__(self) -> SimWorld:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _reset_world(self) -> None:
        """Empty world: gravity, 240 Hz, table slab (top at z = 0) and floor."""
        c = self.cid
        pb.resetSimulation(physicsClientId=c)
        _PLAIN_TEXTURES.pop(c, None)  # textures do not survive a reset
        _plain_texture(c)  # load it first, before any mesh brings its own textures
        pb.setGravity(0, 0, -GRAVITY_MPS2, physicsClientId=c)
        pb.setTimeStep(DT_S, physicsClientId=c)
        pb.setPhysicsEngineParameter(
            numSolverIterations=50, deterministicOverlappingPairs=1, physicsClientId=c
        )
        self.steps = 0
        self.object_ids = {}
        self._static_ids = {}
        self.robot = None  # its body is gone; load_scene adds it again
        hx, hy = (TABLE_X[1] - TABLE_X[0]) / 2, (TABLE_Y[1] - TABLE_Y[0]) / 2
        half = [hx, hy, TABLE_THICKNESS_M / 2]
        centre = [(TABLE_X[0] + TABLE_X[1]) / 2, (TABLE_Y[0] + TABLE_Y[1]) / 2, -TABLE_THICKNESS_M / 2]
        self._static_ids["table"] = pb.createMultiBody(
            0,
            pb.createCollisionShape(pb.GEOM_BOX, halfExtents=half, physicsClientId=c),
            pb.createVisualShape(pb.GEOM_BOX, halfExtents=half, rgbaColor=TABLE_RGBA, physicsClientId=c),
            centre,
            physicsClientId=c,
        )
        fhalf = [3.0, 3.0, 0.05]
        self._static_ids["floor"] = pb.createMultiBody(
            0,
            pb.createCollisionShape(pb.GEOM_BOX, halfExtents=fhalf, physicsClientId=c),
            pb.createVisualShape(pb.GEOM_BOX, halfExtents=fhalf, rgbaColor=FLOOR_RGBA, physicsClientId=c),
            [0.5, 0.0, FLOOR_Z - 0.05],
            physicsClientId=c,
        )
        for bid in self._static_ids.values():
            pb.changeDynamics(bid, -1, lateralFriction=1.0, physicsClientId=c)

    @property
    def table_id(self) -> int:
        """PyBullet body id of the table."""
        return self._static_ids["table"]

    @property
    def sim_time_s(self) -> float:
        """Simulated time since the scene was loaded (steps / 240 Hz)."""
        return self.steps * DT_S

    # ------------------------------------------------------------------ objects and scenes
    def add_object(
        self, spec: objlib.ObjectSpec, xyz: np.ndarray, quat_xyzw: np.ndarray, rest_on_table: bool = False
    ) -> int:
        """Create one catalogue object at a pose; returns its body id.

        Args:
            spec: the object.
            xyz: (3,) position of the body origin (the object's bounding-box centre).
            quat_xyzw: (4,) orientation.
            rest_on_table: lower or raise the object so its lowest point is 1 mm above the table.
        """
        if spec.name in self.object_ids:
            raise ValueError(f"object {spec.name!r} is already in the scene (names are unique)")
        bid = build_object(spec, self.cid)
        pb.resetBasePositionAndOrientation(
            bid, list(map(float, xyz)), list(map(float, quat_xyzw)), physicsClientId=self.cid
        )
        if rest_on_table:
            lo, _ = pb.getAABB(bid, physicsClientId=self.cid)
            p = np.asarray(xyz, dtype=np.float64).copy()
            p[2] += 0.001 - lo[2]
            pb.resetBasePositionAndOrientation(
                bid, p.tolist(), list(map(float, quat_xyzw)), physicsClientId=self.cid
            )
        self.object_ids[spec.name] = bid
        return bid

    def load_scene(self, scene: Any, settle: bool = True) -> dict[str, np.ndarray]:
        """Reset the world and build ``scene`` (a :class:`vla_sim.scenes.Scene`).

        Objects appear at their spawn poses in the scene's order, then physics runs until every
        object is still (at most SETTLE_MAX_STEPS steps). Objects that fell off the table are
        removed. The robot is added afterwards at its home pose (for place scenes holding the
        scene's ``held`` object). Returns the settled poses {name: (4, 4)}.
        """
        self._reset_world()
        self.scene = scene
        for so in scene.objects:
            self.add_object(
                objlib.get(so.name),
                np.asarray(so.xyz),
                np.asarray(so.quat_xyzw),
                rest_on_table=so.rest_on_table,
            )
        if settle:
            self.settle()
        for name in list(self.object_ids):
            if self.object_pose(name)[2, 3] < -0.1:
                logger.info("object %s fell off the table; removed", name)
                self.remove_object(name)
        # the robot comes in after the objects have settled, so nothing lands on the arm
        if self.robot_name is not None:
            self._load_robot()
            if getattr(scene, "held", None):
                self.robot.hold_new_object(self, objlib.get(scene.held))
        return {n: self.object_pose(n) for n in self.object_ids}

    def _load_robot(self) -> None:
        from vla_sim.robot import SimRobot  # local import: the robot needs vla_executor

        self.robot = SimRobot.load(self.robot_name, self.cid)

    def settle(self, max_steps: int = SETTLE_MAX_STEPS) -> int:
        """Step until all objects are still (checked every 8 steps); returns the steps taken."""
        still, taken = 0, 0
        while taken < max_steps:
            self.step(STILL_CHECK_EVERY)
            taken += STILL_CHECK_EVERY
            still = still + 1 if self.all_still() else 0
            if still >= STILL_CHECKS:
                break
        return taken

    def all_still(self, names: list[str] | None = None) -> bool:
        """True when every (listed) object moves slower than the stillness thresholds."""
        for name in names or list(self.object_ids):
            lin, ang = pb.getBaseVelocity(self.object_ids[name], physicsClientId=self.cid)
            if np.linalg.norm(lin) > STILL_LIN_MPS or np.linalg.norm(ang) > STILL_ANG_RADPS:
                return False
        return True

    def step(self, n: int = 1) -> None:
        """Advance physics by ``n`` steps of 1/240 s (the robot's controllers act each step)."""
        for _ in range(int(n)):
            if self.robot is not None:
                self.robot.pre_step(self.steps)
            pb.stepSimulation(physicsClientId=self.cid)
            self.steps += 1

    def object_pose(self, name: str) -> np.ndarray:
        """(4, 4) world pose of an object's body frame (its bounding-box centre, upright axes)."""
        pos, quat = pb.getBasePositionAndOrientation(self._id(name), physicsClientId=self.cid)
        return pose_to_matrix(pos, quat)

    def object_aabb(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(min (3,), max (3,)) world axis-aligned bounding box of an object."""
        lo, hi = pb.getAABB(self._id(name), physicsClientId=self.cid)
        return np.asarray(lo), np.asarray(hi)

    def object_velocity(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(linear (3,) m/s, angular (3,) rad/s) velocity of an object."""
        lin, ang = pb.getBaseVelocity(self._id(name), physicsClientId=self.cid)
        return np.asarray(lin), np.asarray(ang)

    def set_object_pose(self, name: str, T: np.ndarray) -> None:
        """Teleport an object (zero velocity); for setting up tests and the place task."""
        bid = self._id(name)
        pb.resetBasePositionAndOrientation(
            bid, T[:3, 3].tolist(), matrix_to_quat(T).tolist(), physicsClientId=self.cid
        )
        pb.resetBaseVelocity(bid, [0, 0, 0], [0, 0, 0], physicsClientId=self.cid)

    def remove_object(self, name: str) -> None:
        """Delete an object from the world (e.g. a wrongly grasped non-target)."""
        bid = self._id(name)
        if self.robot is not None:
            self.robot.forget_object(bid)
        pb.removeBody(bid, physicsClientId=self.cid)
        del self.object_ids[name]

    def name_of(self, body_id: int) -> str | None:
        """Object name of a PyBullet body id (None for the table, floor and robot)."""
        for n, b in self.object_ids.items():
            if b == body_id:
                return n
        return None

    def _id(self, name: str) -> int:
        try:
            return self.object_ids[name]
        except KeyError:
            raise KeyError(f"no object {name!r} in the scene; objects: {sorted(self.object_ids)}") from None

    # ------------------------------------------------------------------ robot pass-throughs
    def _need_robot(self):
        if self.robot is None:
            raise RuntimeError(
                "this SimWorld has no robot; create it with robot='ur5' or 'humanoid_arm' "
                "and call load_scene()"
            )
        return self.robot

    def joint_positions(self) -> np.ndarray:
        """(n,) arm joint positions in radians (URDF order of the robot YAML)."""
        return self._need_robot().joint_positions()

    def set_joint_targets(self, q: np.ndarray) -> None:
        """Position targets for the arm's joint controllers (refused beyond the joint limits)."""
        self._need_robot().set_joint_targets(q)

    def execute(self, traj_t: np.ndarray, traj_q: np.ndarray, max_steps: int | None = None) -> bool:
        """Track a joint trajectory (t (K,) s, q (K, n) rad) while stepping physics.

        Returns True when the arm reached the final waypoint within tolerance and within
        ``max_steps`` (default: the trajectory's duration plus 1 s of steps).
        """
        return self._need_robot().execute(self, traj_t, traj_q, max_steps)

    def set_gripper(self, open: bool, max_steps: int = 240, width_m: float | None = None) -> float:
        """Open or close the gripper, stepping until the fingers stop; returns the final width (m).

        ``width_m`` opens only that far (None = fully, 85 mm).
        """
        return self._need_robot().set_gripper(self, open, max_steps, width_m)

    def gripper_width(self) -> float:
        """Distance between the finger pads in metres."""
        return self._need_robot().gripper_width()

    # ------------------------------------------------------------------ cameras
    def render(
        self, noise: DepthNoise | None = None, cameras: list[str] | None = None, seg: bool = True
    ) -> list[RGBDFrame]:
        """Render RGB + depth (metres) + segmentation (PyBullet body ids, -1 = none) per camera.

        Args:
            noise: depth noise model; None for exact depth.
            cameras: subset of camera names (default: all, in rig order top, left, right).
            seg: also return the segmentation image.
        """
        frames = []
        rng = np.random.default_rng([self.seed, self._render_count])
        self._render_count += 1
        flags = 0 if seg else pb.ER_NO_SEGMENTATION_MASK
        for cam in self.rig:
            if cameras is not None and cam.name not in cameras:
                continue
            K = cam.intrinsics
            _, _, rgba, zbuf, segm = pb.getCameraImage(
                K.width,
                K.height,
                viewMatrix=view_matrix_gl(cam.T_world_cam),
                projectionMatrix=projection_matrix_gl(K, DEPTH_NEAR_M, DEPTH_FAR_M),
                renderer=pb.ER_BULLET_HARDWARE_OPENGL if self.renderer == "egl" else pb.ER_TINY_RENDERER,
                flags=flags,
                shadow=0,
                lightDirection=[0.4, 0.2, 1.0],
                physicsClientId=self.cid,
            )
            rgb = np.asarray(rgba, dtype=np.uint8).reshape(K.height, K.width, 4)[:, :, :3].copy()
            depth = zbuffer_to_metres(
                np.asarray(zbuf, dtype=np.float64).reshape(K.height, K.width), DEPTH_NEAR_M, DEPTH_FAR_M
            )
            depth[depth >= DEPTH_FAR_M * 0.999] = np.nan
            if noise is not None:
                depth = noise.apply(depth, rng)
            seg_img = np.asarray(segm, dtype=np.int32).reshape(K.height, K.width) if seg else None
            frames.append(
                RGBDFrame(cam.name, rgb, depth, K, cam.T_world_cam.copy(), self.sim_time_s, seg_img)
            )
        return frames


# ---------------------------------------------------------------------------------------------
def _rpy_quat(rpy: tuple[float, float, float]) -> list[float]:
    return list(pb.getQuaternionFromEuler(rpy))


_PLAIN_TEXTURES: dict[int, int] = {}


@cache
def _mesh_has_texture(rel_path: str) -> bool:
    """True when an OBJ in pybullet_data references a material with a texture map (map_Kd)."""
    obj = objlib.pybullet_data_path() / rel_path
    for line in obj.read_text(errors="replace").splitlines():
        if line.startswith("mtllib"):
            mtl = obj.parent / line.split(maxsplit=1)[1].strip()
            return mtl.is_file() and "map_Kd" in mtl.read_text(errors="replace")
    return False


def _white_png_path() -> Path:
    """A 2x2 white PNG in the temp folder (written once), used to draw textured meshes plain."""
    import struct
    import tempfile
    import zlib

    path = Path(tempfile.gettempdir()) / "vla_sim_white_2x2_rgba.png"
    if not path.exists():

        def chunk(tag: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

        raw = b"".join(b"\x00" + b"\xff" * 8 for _ in range(2))  # 2 rows: filter byte + 2 RGBA pixels
        png = (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b"")
        )
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(png)
        tmp.replace(path)
    return path


def _plain_texture(cid: int) -> int:
    """Texture id of a plain white texture in client ``cid`` (loaded once per reset)."""
    tex = _PLAIN_TEXTURES.get(cid)
    if tex is None:
        tex = pb.loadTexture(str(_white_png_path()), physicsClientId=cid)
        _PLAIN_TEXTURES[cid] = tex
    return tex


def build_object(spec: objlib.ObjectSpec, cid: int) -> int:
    """Create the PyBullet body of a catalogue object (origin = bounding-box centre, upright)."""
    g = spec.geometry
    rgba = list(spec.rgba)
    if g.kind == "box":
        half = [s / 2 for s in g.size]
        col = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=half, physicsClientId=cid)
        vis = pb.createVisualShape(pb.GEOM_BOX, halfExtents=half, rgbaColor=rgba, physicsClientId=cid)
    elif g.kind == "cylinder":
        r, h = g.size
        col = pb.createCollisionShape(pb.GEOM_CYLINDER, radius=r, height=h, physicsClientId=cid)
        vis = pb.createVisualShape(pb.GEOM_CYLINDER, radius=r, length=h, rgbaColor=rgba, physicsClientId=cid)
    elif g.kind == "sphere":
        col = pb.createCollisionShape(pb.GEOM_SPHERE, radius=g.size[0], physicsClientId=cid)
        vis = pb.createVisualShape(pb.GEOM_SPHERE, radius=g.size[0], rgbaColor=rgba, physicsClientId=cid)
    elif g.kind == "capsule":
        r, length = g.size
        along_x = _rpy_quat((0.0, math.pi / 2, 0.0))
        col = pb.createCollisionShape(
            pb.GEOM_CAPSULE,
            radius=r,
            height=length - 2 * r,
            physicsClientId=cid,
            collisionFrameOrientation=along_x,
        )
        # visual: cylinder + two spheres (PyBullet's capsule mesh is drawn with very few facets)
        h = length - 2 * r
        vis = pb.createVisualShapeArray(
            [pb.GEOM_CYLINDER, pb.GEOM_SPHERE, pb.GEOM_SPHERE],
            radii=[r, r, r],
            lengths=[h, 0.0, 0.0],
            visualFramePositions=[[0, 0, 0], [h / 2, 0, 0], [-h / 2, 0, 0]],
            visualFrameOrientations=[along_x, [0, 0, 0, 1], [0, 0, 0, 1]],
            rgbaColors=[rgba] * 3,
            physicsClientId=cid,
        )
    elif g.kind == "open_box":
        x, y, z, w = g.size
        parts = [  # (half extents, centre): bottom, 4 walls
            ([x / 2, y / 2, w / 2], [0, 0, -z / 2 + w / 2]),
            ([w / 2, y / 2, z / 2], [x / 2 - w / 2, 0, 0]),
            ([w / 2, y / 2, z / 2], [-x / 2 + w / 2, 0, 0]),
            ([x / 2 - w, w / 2, z / 2], [0, y / 2 - w / 2, 0]),
            ([x / 2 - w, w / 2, z / 2], [0, -y / 2 + w / 2, 0]),
        ]
        n = len(parts)
        col = pb.createCollisionShapeArray(
            [pb.GEOM_BOX] * n,
            halfExtents=[p[0] for p in parts],
            collisionFramePositions=[p[1] for p in parts],
            physicsClientId=cid,
        )
        vis = pb.createVisualShapeArray(
            [pb.GEOM_BOX] * n,
            halfExtents=[p[0] for p in parts],
            visualFramePositions=[p[1] for p in parts],
            rgbaColors=[rgba] * n,
            physicsClientId=cid,
        )
    else:  # mesh
        data = objlib.pybullet_data_path()
        s = spec.mesh_scale
        lo, hi = objlib.mesh_bounds(g.mesh)
        q_up = _rpy_quat(g.upright_rpy)
        R = quat_to_matrix(np.asarray(q_up))
        offset = (-(R @ ((lo + hi) / 2.0)) * s).tolist()  # mesh bbox centre -> body origin
        scale = [s, s, s]
        vis = pb.createVisualShape(
            pb.GEOM_MESH,
            fileName=str(data / g.mesh),
            meshScale=scale,
            rgbaColor=rgba,
            visualFramePosition=offset,
            visualFrameOrientation=q_up,
            physicsClientId=cid,
        )
        if g.collision == "box":
            col = pb.createCollisionShape(
                pb.GEOM_BOX,
                halfExtents=((hi - lo) * s / 2).tolist(),
                collisionFrameOrientation=q_up,
                physicsClientId=cid,
            )
        else:
            col_file = g.mesh if g.collision == "hull" else g.collision
            col = pb.createCollisionShape(
                pb.GEOM_MESH,
                fileName=str(data / col_file),
                meshScale=scale,
                collisionFramePosition=offset,
                collisionFrameOrientation=q_up,
                physicsClientId=cid,
            )
    if col < 0 or vis < 0:
        raise RuntimeError(f"PyBullet could not build object {spec.name!r} ({g.kind})")
    bid = pb.createMultiBody(spec.mass_kg, col, vis, [0, 0, 1.0], physicsClientId=cid)
    if g.kind == "mesh" and not g.keep_texture and _mesh_has_texture(g.mesh):
        pb.changeVisualShape(
            bid, -1, textureUniqueId=_plain_texture(cid), rgbaColor=rgba, physicsClientId=cid
        )
    pb.changeDynamics(
        bid,
        -1,
        lateralFriction=spec.friction,
        spinningFriction=0.005,
        rollingFriction=0.005,
        restitution=0.0,
        linearDamping=0.04,
        angularDamping=0.1,
        physicsClientId=cid,
    )
    return bid


def main(argv: list[str] | None = None) -> int:
    """``python -m vla_sim.world --write-rig PATH``: write the simulated rig calibration."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--write-rig", type=Path, required=True, help="output YAML, e.g. config/rig_sim.yaml")
    args = ap.parse_args(argv)
    print(save_rig_yaml(args.write_rig))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
