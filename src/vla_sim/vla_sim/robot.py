# SPDX-License-Identifier: Apache-2.0
"""The simulated arm: the vla_executor URDF in PyBullet, joint position control, a gripper.

The robot description (URDF + YAML: joint names, limits, home, gripper) belongs to
``vla_executor.robots``; this module only loads it into a PyBullet client and drives it:

- arm joints: PyBullet position motors with the URDF effort limits, tracking a joint trajectory
  that is interpolated at the simulation time of every physics step (so tracking depends on step
  counts only, not on the wall clock);
- gripper: both finger joints position-controlled with the YAML's maximum force (40 N, 85 mm
  stroke); friction on the pads (1.2) holds the object;
- commands beyond the joint position limits, or faster than the velocity limits, are refused
  with :class:`MotionRefused` before anything moves.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pybullet as pb

from vla_common.transforms import matrix_to_quat, pose_to_matrix
from vla_sim import objects as objlib

if TYPE_CHECKING:
    from vla_sim.world import SimWorld

logger = logging.getLogger(__name__)

PHYSICS_HZ = 240
LIMIT_TOL_RAD = 1e-6
VEL_TOL = 1.05  # trajectories may exceed the velocity limits by 5 % (interpolation rounding)
REACHED_TOL_RAD = 0.002
PAD_FRICTION = 1.2
ARM_POSITION_GAIN = 0.3
ARM_VELOCITY_GAIN = 1.0
FINGER_SPEED_MPS = 0.12


class MotionRefused(ValueError):
    """A command the robot refuses (joint limits, velocity limits, malformed trajectory)."""


@dataclass
class _Trajectory:
    start_step: int
    t: np.ndarray  # (K,) s from start, strictly increasing, t[0] = 0
    q: np.ndarray  # (K, n) rad

    def sample(self, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        """(q (n,), qd (n,)) linearly interpolated at time ``t_s`` after the start."""
        t = self.t
        if t_s <= t[0]:
            return self.q[0], np.zeros(self.q.shape[1])
        if t_s >= t[-1]:
            return self.q[-1], np.zeros(self.q.shape[1])
        k = int(np.searchsorted(t, t_s, side="right")) - 1
        a = (t_s - t[k]) / (t[k + 1] - t[k])
        qd = (self.q[k + 1] - self.q[k]) / (t[k + 1] - t[k])
        return self.q[k] + a * (self.q[k + 1] - self.q[k]), qd

    @property
    def end_step(self) -> int:
        return self.start_step + int(math.ceil(self.t[-1] * PHYSICS_HZ))


class SimRobot:
    """An arm + parallel gripper loaded from vla_executor's robot description.

    Use :meth:`load`; the world calls :meth:`pre_step` before every physics step.
    """

    def __init__(self, model, cid: int):
        self.model = model  # vla_executor.robot_model.RobotModel
        self.cid = cid
        base = model.config.get("base_pose_world", {"xyz": [0, 0, 0], "quat_xyzw": [0, 0, 0, 1]})
        self.body = pb.loadURDF(
            str(model.urdf_path),
            base["xyz"],
            base["quat_xyzw"],
            useFixedBase=True,
            flags=pb.URDF_USE_INERTIA_FROM_FILE,
            physicsClientId=cid,
        )
        names = {}
        links = {}
        for j in range(pb.getNumJoints(self.body, physicsClientId=cid)):
            info = pb.getJointInfo(self.body, j, physicsClientId=cid)
            names[info[1].decode()] = j
            links[info[12].decode()] = j
        missing = [n for n in model.joint_names + list(model.gripper["joints"]) if n not in names]
        if missing:
            raise ValueError(f"robot {model.name}: URDF {model.urdf_path} lacks joints {missing}")
        self.arm_idx = [names[n] for n in model.joint_names]
        self.finger_idx = [names[n] for n in model.gripper["joints"]]
        self.tcp_link = links[model.tool_frame]
        self.pad_links = [links[n] for n in model.gripper.get("pad_links", [])]
        self.finger_max = float(model.gripper.get("finger_stroke_m", 0.0425))
        self.finger_force = float(model.gripper.get("max_force_n", 40.0))
        self.effort = np.asarray(
            model.config["joints"].get("effort", [150.0] * len(self.arm_idx)), dtype=float
        )
        self.lower, self.upper, self.vel_limits = model.lower, model.upper, model.vel_limits
        for link in self.pad_links:
            pb.changeDynamics(
                self.body,
                link,
                lateralFriction=PAD_FRICTION,
                spinningFriction=0.01,
                frictionAnchor=1,
                physicsClientId=cid,
            )
        for j in range(-1, pb.getNumJoints(self.body, physicsClientId=cid)):
            pb.changeDynamics(self.body, j, linearDamping=0.0, angularDamping=0.0, physicsClientId=cid)
        self._traj: _Trajectory | None = None
        self._q_target = model.home.copy()
        self._gripper_open = True
        self._open_width = 2 * self.finger_max
        self._steps = 0
        self.reset(model.home, gripper_open=True)

    @classmethod
    def load(cls, name: str, cid: int) -> SimRobot:
        """Load robot ``name`` (``ur5`` or ``humanoid_arm``) from vla_executor into client ``cid``."""
        from vla_executor.robot_model import RobotModel

        return cls(RobotModel.load(name), cid)

    @property
    def n(self) -> int:
        """Number of arm joints."""
        return len(self.arm_idx)

    @property
    def joint_names(self) -> list[str]:
        """Arm joint names."""
        return list(self.model.joint_names)

    # ------------------------------------------------------------------ state
    def reset(self, q: np.ndarray, gripper_open: bool = True) -> None:
        """Teleport the arm to ``q`` (no dynamics) and hold it there."""
        q = self.check_limits(np.asarray(q, dtype=np.float64).reshape(-1))
        for j, v in zip(self.arm_idx, q):
            pb.resetJointState(self.body, j, float(v), 0.0, physicsClientId=self.cid)
        f = self.finger_max if gripper_open else 0.0
        for j in self.finger_idx:
            pb.resetJointState(self.body, j, f, 0.0, physicsClientId=self.cid)
        self._traj = None
        self._q_target = q.copy()
        self._gripper_open = gripper_open
        self._open_width = 2 * self.finger_max
        self._apply_arm(q, np.zeros(self.n))
        self._apply_gripper()

    def joint_positions(self) -> np.ndarray:
        """(n,) arm joint positions, rad."""
        states = pb.getJointStates(self.body, self.arm_idx, physicsClientId=self.cid)
        return np.array([s[0] for s in states])

    def joint_velocities(self) -> np.ndarray:
        """(n,) arm joint velocities, rad/s."""
        states = pb.getJointStates(self.body, self.arm_idx, physicsClientId=self.cid)
        return np.array([s[1] for s in states])

    def finger_positions(self) -> np.ndarray:
        """(2,) finger joint positions, m (each finger's distance from the centre line)."""
        states = pb.getJointStates(self.body, self.finger_idx, physicsClientId=self.cid)
        return np.array([s[0] for s in states])

    def gripper_width(self) -> float:
        """Distance between the pads in metres (sum of the finger joints)."""
        return float(self.finger_positions().sum())

    def tcp_pose(self) -> np.ndarray:
        """(4, 4) world pose of the tool frame (TCP) as simulated."""
        st = pb.getLinkState(
            self.body, self.tcp_link, computeForwardKinematics=True, physicsClientId=self.cid
        )
        return pose_to_matrix(st[4], st[5])

    @property
    def gripper_is_open(self) -> bool:
        """The last gripper command (True = open)."""
        return self._gripper_open

    @property
    def busy(self) -> bool:
        """True while a trajectory is being tracked."""
        return self._traj is not None

    # ------------------------------------------------------------------ commands
    def check_limits(self, q: np.ndarray) -> np.ndarray:
        """Return ``q`` (n,) or raise MotionRefused naming the joints outside their limits."""
        q = np.asarray(q, dtype=np.float64)
        if q.shape != (self.n,) or not np.all(np.isfinite(q)):
            raise MotionRefused(
                f"expected {self.n} finite joint positions for {self.model.name}, got {q.tolist()}"
            )
        bad = np.nonzero((q < self.lower - LIMIT_TOL_RAD) | (q > self.upper + LIMIT_TOL_RAD))[0]
        if len(bad):
            parts = [
                f"{self.joint_names[i]}={q[i]:.4f} not in [{self.lower[i]:.4f}, {self.upper[i]:.4f}]"
                for i in bad
            ]
            raise MotionRefused("joint limits exceeded: " + "; ".join(parts))
        return q

    def check_trajectory(self, traj_t: np.ndarray, traj_q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Validate a trajectory (t (K,), q (K, n)); raise MotionRefused with the reason."""
        t = np.asarray(traj_t, dtype=np.float64).reshape(-1)
        q = np.asarray(traj_q, dtype=np.float64)
        if q.ndim != 2 or q.shape != (len(t), self.n) or len(t) == 0:
            raise MotionRefused(f"trajectory must be t (K,) and q (K, {self.n}); got {t.shape} and {q.shape}")
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(q))):
            raise MotionRefused("trajectory contains NaN or infinite values")
        if t[0] < 0 or np.any(np.diff(t) <= 0):
            raise MotionRefused("trajectory times must start at >= 0 and strictly increase")
        for k in range(len(t)):
            try:
                self.check_limits(q[k])
            except MotionRefused as exc:
                raise MotionRefused(f"waypoint {k} (t={t[k]:.3f} s): {exc}") from None
        q_all = np.vstack([self.joint_positions()[None], q]) if t[0] > 0 else q
        t_all = np.concatenate([[0.0], t]) if t[0] > 0 else t
        if len(t_all) > 1:
            v = np.abs(np.diff(q_all, axis=0)) / np.diff(t_all)[:, None]  # (K-1, n)
            over = v > self.vel_limits * VEL_TOL
            if np.any(over):
                k, i = np.argwhere(over)[0]
                raise MotionRefused(
                    f"velocity limit exceeded: {self.joint_names[i]} needs {v[k, i]:.2f} rad/s "
                    f"between waypoints {k} and {k + 1} (limit {self.vel_limits[i]:.2f})"
                )
        return t_all, q_all

    def start_trajectory(self, traj_t: np.ndarray, traj_q: np.ndarray, now_step: int) -> None:
        """Begin tracking a trajectory at physics step ``now_step`` (refused as a whole if invalid).

        When ``traj_t[0] > 0`` the current joint positions are prepended at t = 0.
        """
        t, q = self.check_trajectory(traj_t, traj_q)
        self._traj = _Trajectory(now_step, t, q)
        self._q_target = q[-1].copy()

    def set_joint_targets(self, q: np.ndarray) -> None:
        """Hold position targets ``q`` (n,) (refused beyond the limits); cancels a trajectory."""
        q = self.check_limits(np.asarray(q, dtype=np.float64))
        self._traj = None
        self._q_target = q.copy()
        self._apply_arm(q, np.zeros(self.n))

    def stop(self) -> None:
        """Cancel the trajectory and hold the current position."""
        self.set_joint_targets(np.clip(self.joint_positions(), self.lower, self.upper))

    def command_gripper(self, open: bool, width_m: float | None = None) -> None:
        """Open or close the gripper (non-blocking; the motors act as the world steps).

        Args:
            open: True opens, False closes (with the maximum force until the pads stop).
            width_m: when opening, open only to this pad distance (e.g. to release inside a box).
        """
        self._gripper_open = bool(open)
        self._open_width = (
            self.finger_max * 2 if width_m is None else float(np.clip(width_m, 0.0, 2 * self.finger_max))
        )
        self._apply_gripper()

    def pre_step(self, step: int) -> None:
        """Called by the world before physics step ``step``: update the trajectory set-point."""
        self._steps = step
        if self._traj is None:
            return
        q, qd = self._traj.sample((step - self._traj.start_step) / PHYSICS_HZ)
        self._apply_arm(q, qd)
        if step >= self._traj.end_step:
            self._traj = None

    def _apply_arm(self, q: np.ndarray, qd: np.ndarray) -> None:
        pb.setJointMotorControlArray(
            self.body,
            self.arm_idx,
            pb.POSITION_CONTROL,
            targetPositions=q.tolist(),
            targetVelocities=qd.tolist(),
            forces=self.effort.tolist(),
            positionGains=[ARM_POSITION_GAIN] * self.n,
            velocityGains=[ARM_VELOCITY_GAIN] * self.n,
            physicsClientId=self.cid,
        )

    def _apply_gripper(self) -> None:
        target = 0.5 * self._open_width if self._gripper_open else 0.0
        for j in self.finger_idx:
            pb.setJointMotorControl2(
                self.body,
                j,
                pb.POSITION_CONTROL,
                targetPosition=target,
                force=self.finger_force,
                maxVelocity=FINGER_SPEED_MPS,
                physicsClientId=self.cid,
            )

    # ------------------------------------------------------------------ blocking helpers (world steps)
    def execute(
        self,
        world: SimWorld,
        traj_t: np.ndarray,
        traj_q: np.ndarray,
        max_steps: int | None = None,
        settle_steps: int = 120,
    ) -> bool:
        """Track a trajectory, stepping ``world``; True when the final waypoint is reached.

        Args:
            world: the world to step.
            traj_t: (K,) seconds.
            traj_q: (K, n) joint positions, rad.
            max_steps: step budget; default trajectory duration + ``settle_steps``.
            settle_steps: extra steps allowed after the trajectory ends to converge.
        """
        self.start_trajectory(traj_t, traj_q, world.steps)
        assert self._traj is not None
        budget = max_steps if max_steps is not None else (self._traj.end_step - world.steps) + settle_steps
        goal = self._traj.q[-1]
        end = world.steps + budget
        while world.steps < end:
            world.step(1)
            if self._traj is None and np.max(np.abs(self.joint_positions() - goal)) < REACHED_TOL_RAD:
                return True
        return bool(np.max(np.abs(self.joint_positions() - goal)) < REACHED_TOL_RAD)

    def set_gripper(
        self, world: SimWorld, open: bool, max_steps: int = 240, width_m: float | None = None
    ) -> float:
        """Open/close and step until the fingers stop (or ``max_steps``); returns the width (m)."""
        self.command_gripper(open, width_m)
        still = 0
        prev = self.finger_positions()
        for _ in range(max_steps):
            world.step(1)
            cur = self.finger_positions()
            still = still + 1 if np.max(np.abs(cur - prev)) < 2e-5 else 0
            prev = cur
            if still >= 6:
                break
        return self.gripper_width()

    def contacts_with(self, body: int) -> set[int]:
        """Robot links touching ``body`` now."""
        return {c[3] for c in pb.getContactPoints(self.body, body, physicsClientId=self.cid)}

    def holds(self, body: int) -> bool:
        """True when both pads touch ``body`` and the gripper is not fully closed."""
        links = self.contacts_with(body)
        pads = set(self.pad_links)
        return bool(pads) and pads <= links and self.gripper_width() > 0.002

    def forget_object(self, body: int) -> None:
        """Hook for the world before it removes a body (nothing cached here today)."""

    def hold_new_object(self, world: SimWorld, spec: objlib.ObjectSpec) -> int:
        """Place-task setup: create ``spec`` between the open fingers at the current TCP and close.

        The object is oriented upright with its narrower horizontal side across the fingers.
        Returns its body id.
        """
        T_tcp = self.tcp_pose()
        size = spec.size_m
        R_obj = np.eye(3)
        y_tool = T_tcp[:3, 1]
        # body x or y along the closing direction, whichever is narrower; keep the object upright
        across = 0 if size[0] <= size[1] else 1
        yaw_dir = np.array([y_tool[0], y_tool[1], 0.0])
        yaw_dir /= np.linalg.norm(yaw_dir)
        if across == 0:
            R_obj[:, 0], R_obj[:, 2] = yaw_dir, [0, 0, 1]
            R_obj[:, 1] = np.cross(R_obj[:, 2], R_obj[:, 0])
        else:
            R_obj[:, 1], R_obj[:, 2] = yaw_dir, [0, 0, 1]
            R_obj[:, 0] = np.cross(R_obj[:, 1], R_obj[:, 2])
        # the pads (3.5 cm tall) grip the object 1 cm below its top, or at its centre if it is short
        top_offset = max(0.0, 0.5 * size[2] - 0.0275)
        centre = T_tcp[:3, 3] - np.array([0.0, 0.0, top_offset])
        bid = world.add_object(spec, centre, matrix_to_quat(R_obj))
        # fingers just outside the object, the object pinned to the world while the pads close on it
        half = 0.5 * float(size[across]) + 0.001
        for j in self.finger_idx:
            pb.resetJointState(self.body, j, min(half, self.finger_max), 0.0, physicsClientId=self.cid)
        pin = pb.createConstraint(
            bid,
            -1,
            -1,
            -1,
            pb.JOINT_FIXED,
            [0, 0, 0],
            [0, 0, 0],
            centre.tolist(),
            childFrameOrientation=matrix_to_quat(R_obj).tolist(),
            physicsClientId=self.cid,
        )
        self.command_gripper(open=False)
        world.step(48)
        pb.removeConstraint(pin, physicsClientId=self.cid)
        world.step(120)
        if not self.holds(bid):
            logger.warning(
                "hold_new_object: %s not held after closing (width %.3f m)", spec.name, self.gripper_width()
            )
        return bid
