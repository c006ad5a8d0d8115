# SPDX-License-Identifier: Apache-2.0
"""Kinematic robot model from the shipped URDF + YAML: FK, Jacobian and IK in plain numpy.

``RobotModel.load("ur5" | "humanoid_arm")`` parses the URDF joint chain from ``base_link`` to the
tool frame (``tcp``) with ``xml.etree`` (no PyBullet needed) and reads limits, home pose, gripper
and workspace from the YAML (docs/ARCHITECTURE.md, "vla_executor").

IK:
- UR5: closed form with ``ur_analytic_ik`` (up to 8 solutions); each solution is wrapped to the
  2*pi-equivalent nearest the seed inside the joint limits, and the one nearest the seed wins.
  The transforms between our ``base_link``/``tcp`` and its DH base/flange frames are derived
  from the URDF at load time, not hard-coded. A damped-least-squares (DLS) refinement polishes
  the result and is the fallback when the closed form has no solution within limits.
- Other robots (the 7-DoF humanoid arm): Levenberg-Marquardt damped least squares (DLS) with
  an active set at the joint limits and a null-space pull toward the seed, started at the seed
  (fast when the target is near, the usual case for an executor). When that fails and the arm is
  detected to be S-R-S (spherical shoulder, elbow, spherical wrist; the humanoid arm is), a
  closed-form solver enumerates all branches over a grid of the shoulder-yaw redundancy
  (Paden-Kahan subproblems 1 and 2) and keeps the in-limit one nearest the seed; random DLS
  restarts (deterministic RNG) are the last resort for other 7-DoF chains. Measured on the
  humanoid arm: DLS alone converges from ~55 % of random starts; the closed form from 100 %.
Converged means < 0.1 mm and < 0.05 deg; anything else returns None (unreachable).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROBOTS_DIR = Path(__file__).parent / "robots"
POS_TOL_M = 1e-4
ROT_TOL_RAD = math.radians(0.05)


def available_robots() -> list[str]:
    """Names of the shipped robot descriptions (``robots/<name>.yaml`` with a URDF)."""
    return sorted(p.stem for p in ROBOTS_DIR.glob("*.yaml") if (ROBOTS_DIR / f"{p.stem}.urdf").exists())


def _rpy_matrix(rpy: np.ndarray) -> np.ndarray:
    r, p, y = rpy
    cr, sr, cp, sp, cy, sy = math.cos(r), math.sin(r), math.cos(p), math.sin(p), math.cos(y), math.sin(y)
    return np.array([
        [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
        [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
        [-sp, cp * sr, cp * cr],
    ])


def _floats(elem: ET.Element | None, attr: str, default: str) -> np.ndarray:
    """Whitespace-separated floats of an URDF attribute (default when the element is absent)."""
    text = elem.get(attr, default) if elem is not None else default
    return np.array([float(v) for v in text.split()])


def _axis_angle(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rodrigues rotation(s): axis (3,), angle (...,) -> (..., 3, 3)."""
    angle = np.asarray(angle, dtype=np.float64)
    x, y, z = axis
    K = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    s, c = np.sin(angle)[..., None, None], np.cos(angle)[..., None, None]
    return np.eye(3) + s * K + (1.0 - c) * (K @ K)


def _subproblem1(w: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Paden-Kahan 1: angles theta (...,) with Rot(w, theta) p = q, for p, q (..., 3)."""
    pp = p - (p @ w)[..., None] * w
    qq = q - (q @ w)[..., None] * w
    return np.arctan2(np.cross(pp, qq) @ w, np.sum(pp * qq, axis=-1))


def _subproblem2(w1: np.ndarray, w2: np.ndarray, p: np.ndarray,
                 q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Paden-Kahan 2: Rot(w1, t1) Rot(w2, t2) p = q for p, q (..., 3), axes through the origin.

    Returns:
        t1 (..., 2), t2 (..., 2) (the two branches) and a validity mask (...,).
    """
    c = float(w1 @ w2)
    denom = c * c - 1.0
    alpha = (c * (p @ w2) - q @ w1) / denom  # (...,)
    beta = (c * (q @ w1) - p @ w2) / denom
    cr = np.cross(w1, w2)
    gamma2 = (np.sum(p * p, axis=-1) - alpha**2 - beta**2 - 2 * alpha * beta * c) / (cr @ cr)
    valid = gamma2 >= -1e-9
    gamma = np.sqrt(np.maximum(gamma2, 0.0))
    base = alpha[..., None] * w1 + beta[..., None] * w2  # (..., 3)
    t1, t2 = [], []
    for sign in (1.0, -1.0):
        z = base + sign * gamma[..., None] * cr
        t2.append(_subproblem1(w2, p, z))
        t1.append(_subproblem1(w1, z, q))
    return np.stack(t1, -1), np.stack(t2, -1), valid


def rot_log(R: np.ndarray) -> np.ndarray:
    """Rotation vector (3,) of a rotation matrix (log map), robust near 0 and pi."""
    cos = min(1.0, max(-1.0, (R[0, 0] + R[1, 1] + R[2, 2] - 1.0) / 2.0))
    vee = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    angle = math.acos(cos)
    if angle < 1e-6:
        return 0.5 * vee
    if angle > math.pi - 1e-3:
        B = (R + np.eye(3)) / 2.0
        i = int(np.argmax(np.diag(B)))
        axis = B[:, i] / math.sqrt(max(B[i, i], 1e-12))
        if axis @ vee < 0:
            axis = -axis
        return angle * axis / np.linalg.norm(axis)
    return angle / (2.0 * math.sin(angle)) * vee


def pose_error(T_a: np.ndarray, T_b: np.ndarray) -> tuple[float, float]:
    """(position error m, rotation error rad) between two (4, 4) poses."""
    dp = float(np.linalg.norm(T_a[:3, 3] - T_b[:3, 3]))
    dr = float(np.linalg.norm(rot_log(T_a[:3, :3].T @ T_b[:3, :3])))
    return dp, dr


@dataclass
class _Step:
    """One movable joint of the chain: fixed transform before it, then rotation/translation on axis."""

    T_before: np.ndarray  # (4, 4)
    axis: np.ndarray  # (3,) unit, in the joint frame
    kind: str  # revolute | prismatic

    def __post_init__(self) -> None:
        # R_before @ Rot(axis, q) = A + sin(q) AK + (1 - cos(q)) AK2 (Rodrigues), precomputed
        x, y, z = self.axis
        K = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
        self.A = self.T_before[:3, :3].copy()
        self.t = self.T_before[:3, 3].copy()
        self.AK = self.A @ K
        self.AK2 = self.A @ K @ K


@dataclass
class RobotModel:
    """Kinematics + limits of one robot (docs/ARCHITECTURE.md contract).

    Attributes:
        name: robot name (``ur5``, ``humanoid_arm``).
        urdf_path: path of the URDF the sim loads.
        joint_names: arm joint names in chain order, (n,).
        lower, upper: joint position limits in rad, (n,).
        vel_limits: rad/s, (n,). acc_limits: rad/s^2, (n,).
        home: home configuration, (n,): TCP above the table looking down.
        tool_frame: the TCP link (``tcp``); flange_frame: ``tool0``; base_frame: ``base_link``.
        gripper: gripper section of the YAML (joints, stroke, max force, ...).
        workspace_min, workspace_max: TCP box in the base frame, (3,) each, metres.
        table_height: table top z in the base frame (m).
        config: the whole YAML description.
    """

    name: str
    urdf_path: Path
    joint_names: list[str]
    lower: np.ndarray
    upper: np.ndarray
    vel_limits: np.ndarray
    acc_limits: np.ndarray
    home: np.ndarray
    tool_frame: str
    flange_frame: str
    base_frame: str
    gripper: dict[str, Any]
    workspace_min: np.ndarray
    workspace_max: np.ndarray
    table_height: float
    config: dict[str, Any]
    _steps: list[_Step] = field(repr=False, default_factory=list)
    _T_end: np.ndarray = field(repr=False, default_factory=lambda: np.eye(4))
    _T_flange_tool: np.ndarray = field(repr=False, default_factory=lambda: np.eye(4))
    _reach_m: float = field(repr=False, default=np.inf)
    _ur: Any = field(repr=False, default=None)
    _T_dh_pre: np.ndarray = field(repr=False, default_factory=lambda: np.eye(4))
    _T_dh_post: np.ndarray = field(repr=False, default_factory=lambda: np.eye(4))
    _srs: dict[str, Any] | None = field(repr=False, default=None)
    _revolute: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, dtype=bool))

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, name: str) -> RobotModel:
        """Load a shipped robot by name (``ur5``, ``humanoid_arm``) or from a path to its YAML.

        Raises:
            ValueError: unknown robot name, or a YAML/URDF that does not describe a usable chain.
        """
        path = Path(name)
        if path.suffix in (".yaml", ".yml") and path.exists():
            yaml_path = path
        else:
            yaml_path = ROBOTS_DIR / f"{name}.yaml"
            if not yaml_path.exists():
                raise ValueError(f"unknown robot {name!r}; available: {available_robots()} "
                                 "(or pass the path of a robot YAML)")
        with open(yaml_path) as f:
            cfg = yaml.safe_load(f)
        for key in ("joints", "urdf", "tool_frame", "home", "gripper", "workspace"):
            if key not in cfg:
                raise ValueError(f"{yaml_path}: missing key {key!r}; see robots/generate.py for the format")
        urdf_path = (yaml_path.parent / cfg["urdf"]).resolve()
        j = cfg["joints"]
        n = len(j["names"])
        keys = ("lower", "upper", "velocity", "acceleration")
        arrays = {k: np.asarray(j[k], dtype=np.float64) for k in keys}
        for k, v in arrays.items():
            if v.shape != (n,):
                raise ValueError(f"{yaml_path}: joints.{k} has {v.size} values, expected {n} (one per joint)")
        home = np.asarray(cfg["home"], dtype=np.float64) if cfg["home"] is not None else np.zeros(n)
        model = cls(
            name=cfg.get("name", yaml_path.stem), urdf_path=urdf_path, joint_names=list(j["names"]),
            lower=arrays["lower"], upper=arrays["upper"], vel_limits=arrays["velocity"],
            acc_limits=arrays["acceleration"], home=home, tool_frame=cfg["tool_frame"],
            flange_frame=cfg.get("flange_frame", "tool0"), base_frame=cfg.get("base_frame", "base_link"),
            gripper=dict(cfg["gripper"]), workspace_min=np.asarray(cfg["workspace"]["min"], float),
            workspace_max=np.asarray(cfg["workspace"]["max"], float),
            table_height=float(cfg.get("table_height_m", 0.0)), config=cfg,
        )
        model._parse_chain()
        if model.name == "ur5":
            model._init_ur_analytic()
        model._detect_srs()
        return model

    def _parse_chain(self) -> None:
        root = ET.parse(self.urdf_path).getroot()
        by_child = {}
        for je in root.findall("joint"):
            by_child[je.find("child").get("link")] = je
        chain = []  # joints from base to tool, in order
        link = self.tool_frame
        while link != self.base_frame:
            if link not in by_child:
                raise ValueError(f"{self.urdf_path}: no joint chain from {self.base_frame!r} "
                                 f"to {self.tool_frame!r}")
            je = by_child[link]
            chain.append(je)
            link = je.find("parent").get("link")
        chain.reverse()
        T = np.eye(4)
        steps: list[_Step] = []
        found = []
        flange_T = None
        for je in chain:
            org = je.find("origin")
            xyz = _floats(org, "xyz", "0 0 0")
            rpy = _floats(org, "rpy", "0 0 0")
            A = np.eye(4)
            A[:3, :3] = _rpy_matrix(rpy)
            A[:3, 3] = xyz
            T = T @ A
            kind = je.get("type")
            if kind in ("revolute", "continuous", "prismatic"):
                if je.get("name") not in self.joint_names:
                    raise ValueError(f"{self.urdf_path}: movable joint {je.get('name')!r} on the tool chain "
                                     f"is not in the YAML joint list {self.joint_names}")
                axis = _floats(je.find("axis"), "xyz", "1 0 0")
                kind = "prismatic" if kind == "prismatic" else "revolute"
                steps.append(_Step(T, axis / np.linalg.norm(axis), kind))
                found.append(je.get("name"))
                T = np.eye(4)
            if je.find("child").get("link") == self.flange_frame:
                flange_T = T.copy()
        if found != self.joint_names:
            raise ValueError(f"{self.urdf_path}: chain joints {found} differ from the YAML joint list "
                             f"{self.joint_names} (same names, same order expected)")
        self._steps = steps
        self._revolute = np.array([st.kind == "revolute" for st in steps])
        self._T_end = T
        # flange -> tool: the fixed transforms after the flange (flange_T is last-joint -> flange)
        self._T_flange_tool = np.linalg.inv(flange_T) @ T if flange_T is not None else np.eye(4)
        # reach bound: distances between joint origins after the first joint, plus the tool offset
        links_m = sum(np.linalg.norm(s.T_before[:3, 3]) for s in steps[1:])
        self._reach_m = float(links_m + np.linalg.norm(T[:3, 3]))

    def _joint_frames(self, q: np.ndarray) -> list[np.ndarray]:
        """Base-frame (4, 4) pose of each joint frame (before its own motion) at q."""
        T = np.eye(4)
        frames = []
        for i, s in enumerate(self._steps):
            T = T @ s.T_before
            frames.append(T.copy())
            M = np.eye(4)
            M[:3, :3] = _axis_angle(s.axis, q[i])
            T = T @ M
        return frames

    def _detect_srs(self) -> None:
        """Detect a 7-DoF spherical-shoulder / elbow / spherical-wrist (S-R-S) arm.

        For such arms the elbow angle follows from the shoulder-wrist distance alone
        (|W - S|^2 = a + b cos(q_elbow + phi)), which gives exact elbow seeds for the DLS
        restarts and an exact reachability test. Detected numerically, not assumed.
        """
        if self.dof != 7 or any(s.kind != "revolute" for s in self._steps):
            return
        rng = np.random.default_rng(0)

        def line_dist(frame: np.ndarray, axis: np.ndarray, point: np.ndarray) -> float:
            a = frame[:3, :3] @ axis
            d = point - frame[:3, 3]
            return float(np.linalg.norm(d - (d @ a) * a))

        for _ in range(3):
            q = rng.uniform(self.lower, self.upper)
            F = self._joint_frames(q)
            S, W = F[0][:3, 3], F[5][:3, 3]
            if max(line_dist(F[i], self._steps[i].axis, S) for i in range(3)) > 1e-9:
                return
            if max(line_dist(F[i], self._steps[i].axis, W) for i in (4, 5, 6)) > 1e-9:
                return
        # |W - S|^2 as a function of the elbow angle: a + b cos(q3) + c sin(q3)
        def dist2(q3: float) -> float:
            q = np.zeros(7)
            q[3] = q3
            F = self._joint_frames(q)
            return float(np.sum((F[5][:3, 3] - F[0][:3, 3]) ** 2))

        d0, d1, d2 = dist2(0.0), dist2(math.pi / 2), dist2(math.pi)
        a = (d0 + d2) / 2.0
        b, c = d0 - a, d1 - a
        q0 = np.zeros(7)
        F0 = self._joint_frames(q0)
        T0 = self.fk(q0)
        W_tool = (np.linalg.inv(T0) @ np.append(F0[5][:3, 3], 1.0))[:3]  # wrist centre in the tool frame
        self._srs = {"a": a, "amp": math.hypot(b, c), "phi": math.atan2(c, b), "W_tool": W_tool,
                     "analytic": False}
        # closed form needs identity joint-frame rotations and coincident shoulder joint origins
        rot_ok = all(np.allclose(s.T_before[:3, :3], np.eye(3), atol=1e-12) for s in self._steps)
        orig_ok = all(np.linalg.norm(self._steps[i].T_before[:3, 3]) < 1e-12 for i in (1, 2))
        if rot_ok and orig_ok:
            t = [s.T_before[:3, 3] for s in self._steps]
            self._srs.update(analytic=True, t3=t[3], t45=t[4] + t[5], axes=[s.axis for s in self._steps],
                             R_end=self._T_end[:3, :3])

    def _srs_elbows(self, T_goal: np.ndarray) -> list[float] | None:
        """Elbow angles (within limits) that give the shoulder-wrist distance of T_goal; None if none."""
        srs = self._srs
        W = T_goal[:3, :3] @ srs["W_tool"] + T_goal[:3, 3]
        S = self._steps[0].T_before[:3, 3]
        c = (float(np.sum((W - S) ** 2)) - srs["a"]) / srs["amp"]
        if abs(c) > 1.0 + 1e-9:
            return None
        base = math.acos(max(-1.0, min(1.0, c)))
        out = []
        for cand in (base + srs["phi"], -base + srs["phi"]):
            for k in (-1, 0, 1):
                v = cand + 2 * math.pi * k
                if self.lower[3] - 1e-9 <= v <= self.upper[3] + 1e-9:
                    out.append(min(max(v, self.lower[3]), self.upper[3]))
        return out or None

    def _ik_srs(self, T_goal: np.ndarray, q_seed: np.ndarray, n_grid: int = 72) -> np.ndarray | None:
        """Closed-form S-R-S IK, redundancy parameterised by the shoulder yaw (joint 3 of 7).

        For each shoulder-yaw sample (the seed's value plus a grid over its range), each elbow
        angle, each shoulder branch (Paden-Kahan 2) and each wrist branch: all candidates in one
        vectorised pass; the in-limit candidate nearest the seed wins.
        """
        srs = self._srs
        elbows = self._srs_elbows(T_goal)
        if elbows is None:
            return None
        a = srs["axes"]
        S = self._steps[0].T_before[:3, 3]
        d = T_goal[:3, :3] @ srs["W_tool"] + T_goal[:3, 3] - S  # (3,) shoulder -> wrist, base frame
        R6 = T_goal[:3, :3] @ srs["R_end"].T  # wrist-roll frame orientation
        q2 = np.concatenate([[q_seed[2]], np.linspace(self.lower[2], self.upper[2], n_grid)])  # (G,)
        cands = []
        for q3 in elbows:
            v = srs["t3"] + _axis_angle(a[3], q3) @ srs["t45"]  # shoulder -> wrist in the upper-arm frame
            p = np.einsum("gij,j->gi", _axis_angle(a[2], q2), v)  # (G, 3)
            t0, t1, ok = _subproblem2(a[0], a[1], p, np.broadcast_to(d, p.shape))
            for b in range(2):
                qs = np.zeros((len(q2), 7))
                qs[:, 0], qs[:, 1], qs[:, 2], qs[:, 3] = t0[:, b], t1[:, b], q2, q3
                R_arm = (_axis_angle(a[0], qs[:, 0]) @ _axis_angle(a[1], qs[:, 1]) @ _axis_angle(a[2], q2)
                         @ _axis_angle(a[3], q3))  # (G, 3, 3)
                M = np.swapaxes(R_arm, 1, 2) @ R6  # = Rot4 Rot5 Rot6, (G, 3, 3)
                Ma6 = M @ a[6]  # (G, 3)
                t4, t5, ok_w = _subproblem2(a[4], a[5], np.broadcast_to(a[6], Ma6.shape), Ma6)
                r = np.cross(a[6], [1.0, 0.0, 0.0] if abs(a[6][0]) < 0.9 else [0.0, 1.0, 0.0])
                for w in range(2):
                    R45 = _axis_angle(a[4], t4[:, w]) @ _axis_angle(a[5], t5[:, w])
                    t6 = _subproblem1(a[6], np.broadcast_to(r, Ma6.shape),
                                      np.einsum("gji,gj->gi", R45, M @ r))
                    qq = qs.copy()
                    qq[:, 4], qq[:, 5], qq[:, 6] = t4[:, w], t5[:, w], t6
                    cands.append(qq[ok & ok_w])
        Q = np.concatenate(cands)  # (K, 7)
        if len(Q) == 0:
            return None
        Q = q_seed + (Q - q_seed + np.pi) % (2 * np.pi) - np.pi  # nearest 2*pi-equivalent to the seed
        Q = np.where(Q > self.upper, Q - 2 * np.pi, Q)
        Q = np.where(Q < self.lower, Q + 2 * np.pi, Q)
        Q = Q[np.all((Q >= self.lower - 1e-9) & (Q <= self.upper + 1e-9), axis=1)]
        if len(Q) == 0:
            return None
        for k in np.argsort(np.abs(Q - q_seed).sum(axis=1))[:4]:
            q = np.clip(Q[k], self.lower, self.upper)
            dp, dr = pose_error(self.fk(q), T_goal)
            if dp < POS_TOL_M and dr < ROT_TOL_RAD:
                return q
            q = self._dls(T_goal, q, q, max_iter=10, null_gain=0.0)
            if q is not None:
                return q
        return None

    def _init_ur_analytic(self) -> None:
        import ur_analytic_ik

        self._ur = ur_analytic_ik.ur5
        # base_link -> DH base: the fixed transform before joint 1 (its rotation is about DH z).
        self._T_dh_pre = self._steps[0].T_before.copy()
        q0 = np.zeros(len(self.joint_names))
        T_flange0 = self.fk(q0) @ np.linalg.inv(self._T_flange_tool)
        T_dh0 = np.asarray(self._ur.forward_kinematics(*q0))
        # DH flange -> our flange (identity for the shipped URDF; computed, not assumed)
        self._T_dh_post = np.linalg.inv(T_dh0) @ np.linalg.inv(self._T_dh_pre) @ T_flange0

    # ------------------------------------------------------------------ kinematics
    @property
    def dof(self) -> int:
        """Number of arm joints."""
        return len(self.joint_names)

    def fk(self, q: np.ndarray) -> np.ndarray:
        """T_base_tool (4, 4) for joint positions q (n,)."""
        return self._fk_jac(np.asarray(q, dtype=np.float64), jacobian=False)[0]

    def fk_batch(self, Q: np.ndarray) -> np.ndarray:
        """T_base_tool for a batch of configurations: Q (B, n) -> (B, 4, 4)."""
        Q = np.asarray(Q, dtype=np.float64)
        if Q.ndim != 2 or Q.shape[1] != self.dof:
            raise ValueError(f"expected joint positions of shape (B, {self.dof}), got {Q.shape}")
        T = np.broadcast_to(np.eye(4), (Q.shape[0], 4, 4)).copy()  # (B, 4, 4)
        for i, s in enumerate(self._steps):
            T = T @ s.T_before
            M = np.broadcast_to(np.eye(4), T.shape).copy()
            if s.kind == "revolute":
                M[:, :3, :3] = _axis_angle(s.axis, Q[:, i])
            else:
                M[:, :3, 3] = Q[:, i, None] * s.axis
            T = T @ M
        return T @ self._T_end

    def _fk_jac(self, q: np.ndarray, jacobian: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """(T_base_tool (4, 4), geometric Jacobian (6, n): rows vx vy vz wx wy wz in the base frame).

        Single-configuration fast path (~5 us per joint): rotation and translation are propagated
        separately with the precomputed Rodrigues terms of each joint.
        """
        R = np.eye(3)
        p = np.zeros(3)
        n = self.dof
        Z = np.empty((n, 3))
        P = np.empty((n, 3))
        for i, s in enumerate(self._steps):
            p = p + R @ s.t
            if s.kind == "revolute":
                qi = q[i]
                R = R @ (s.A + math.sin(qi) * s.AK + (1.0 - math.cos(qi)) * s.AK2)
                Z[i] = R @ s.axis
                P[i] = p
            else:
                R = R @ s.A
                Z[i] = R @ s.axis
                P[i] = p
                p = p + Z[i] * q[i]
        T = np.eye(4)
        T[:3, :3] = R @ self._T_end[:3, :3]
        T[:3, 3] = p + R @ self._T_end[:3, 3]
        if not jacobian:
            return T, None
        J = np.zeros((6, n))
        rev = self._revolute
        J[:3, rev] = np.cross(Z[rev], T[:3, 3] - P[rev]).T
        J[3:, rev] = Z[rev].T
        J[:3, ~rev] = Z[~rev].T
        return T, J

    def jacobian(self, q: np.ndarray) -> np.ndarray:
        """Geometric Jacobian (6, n) of the tool frame in the base frame (linear rows first)."""
        return self._fk_jac(np.asarray(q, dtype=np.float64))[1]

    def within_limits(self, q: np.ndarray, tol: float = 1e-9) -> bool:
        """True when q (n,) is inside [lower, upper] (with a small tolerance)."""
        q = np.asarray(q)
        return bool(np.all(q >= self.lower - tol) and np.all(q <= self.upper + tol))

    # ------------------------------------------------------------------ IK
    def ik(self, T_base_tool: np.ndarray, q_seed: np.ndarray | None = None, *, restarts: int = 12,
           seed: int = 0) -> np.ndarray | None:
        """Joint positions (n,) that put the tool at T_base_tool, nearest q_seed, or None.

        Args:
            T_base_tool: target (4, 4) pose of the tool frame (tcp) in the base frame.
            q_seed: configuration to stay near (default: home).
            restarts: random restarts of the numerical solver after the seeded attempt.
            seed: RNG seed of the restarts (deterministic results).

        Returns:
            (n,) within the joint limits with < 0.1 mm / 0.05 deg error, or None when unreachable.
        """
        T_goal = np.asarray(T_base_tool, dtype=np.float64)
        if T_goal.shape != (4, 4) or not np.all(np.isfinite(T_goal)):
            raise ValueError(f"IK target must be a finite (4, 4) matrix, got shape {T_goal.shape}")
        q_seed = self.home if q_seed is None else np.asarray(q_seed, dtype=np.float64)
        if q_seed.shape != (self.dof,):
            raise ValueError(f"q_seed must have shape ({self.dof},), got {q_seed.shape}")
        q_seed = np.clip(q_seed, self.lower, self.upper)
        # cheap reachability bound: distance from the first joint's origin to the target
        if np.linalg.norm(T_goal[:3, 3] - self._steps[0].T_before[:3, 3]) > self._reach_m + 1e-6:
            return None
        if self._ur is not None:
            q = self._ik_ur(T_goal, q_seed)
            if q is not None:
                return q
        return self._ik_dls_restarts(T_goal, q_seed, restarts, seed)

    def _ik_ur(self, T_goal: np.ndarray, q_seed: np.ndarray) -> np.ndarray | None:
        T_dh = np.linalg.inv(self._T_dh_pre) @ T_goal @ np.linalg.inv(self._T_flange_tool) @ np.linalg.inv(
            self._T_dh_post)
        sols = self._ur.inverse_kinematics(np.ascontiguousarray(T_dh))
        if not sols:
            return None
        S = np.array(sols)  # (K, 6)
        S = S[np.all(np.isfinite(S), axis=1)]
        if len(S) == 0:
            return None
        # wrap each angle to the 2*pi-equivalent nearest the seed, then into the limits
        S = q_seed + (S - q_seed + np.pi) % (2 * np.pi) - np.pi
        S = np.where(S > self.upper, S - 2 * np.pi, S)
        S = np.where(S < self.lower, S + 2 * np.pi, S)
        ok = np.all((S >= self.lower - 1e-9) & (S <= self.upper + 1e-9), axis=1)
        S = S[ok]
        if len(S) == 0:
            return None
        order = np.argsort(np.abs(S - q_seed).sum(axis=1))
        for k in order:
            q = np.clip(S[k], self.lower, self.upper)
            # verify with the closed-form FK (C++, ~2 us); near singularities polish with DLS
            dp, dr = pose_error(np.asarray(self._ur.forward_kinematics(*q)), T_dh)
            if dp < POS_TOL_M and dr < ROT_TOL_RAD:
                return q
            q = self._dls(T_goal, q, q, max_iter=10, null_gain=0.0)
            if q is not None:
                return q
        return None

    def _error(self, T_goal: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(error (6,): position m then rotation vector rad, tool pose (4, 4), Jacobian (6, n)) at q."""
        T, J = self._fk_jac(q)
        e = np.empty(6)
        e[:3] = T_goal[:3, 3] - T[:3, 3]
        e[3:] = rot_log(T_goal[:3, :3] @ T[:3, :3].T)
        return e, T, J

    def _dls(self, T_goal: np.ndarray, q0: np.ndarray, q_rest: np.ndarray, max_iter: int = 60,
             null_gain: float = 0.05) -> np.ndarray | None:
        """Levenberg-Marquardt damped least squares with an active set at the joint limits.

        A joint at a limit whose update would push it further out is frozen for that step (its
        Jacobian column removed); steps that do not lower the error raise the damping. For
        redundant arms a small null-space term pulls toward q_rest (the seed).
        """
        q = np.clip(q0, self.lower, self.upper)
        e, _, J = self._error(T_goal, q)
        cost = float(e @ e)
        lam = 1e-3
        eye6 = np.eye(6)
        for _ in range(max_iter):
            if np.linalg.norm(e[:3]) < POS_TOL_M and np.linalg.norm(e[3:]) < ROT_TOL_RAD:
                return q
            free = np.ones(self.dof, dtype=bool)
            for _pass in range(2):
                Jf = J[:, free]
                A = Jf @ Jf.T + lam * eye6
                dq = np.zeros(self.dof)
                dq[free] = Jf.T @ np.linalg.solve(A, e)
                if null_gain > 0.0 and self.dof > 6:
                    P = np.eye(int(free.sum())) - Jf.T @ np.linalg.solve(A, Jf)
                    dq[free] += null_gain * P @ (q_rest - q)[free]
                blocked = ((q <= self.lower + 1e-9) & (dq < 0)) | ((q >= self.upper - 1e-9) & (dq > 0))
                if not np.any(blocked & free):
                    break
                free &= ~blocked
            step = np.abs(dq).max()
            if step > 0.5:
                dq *= 0.5 / step
            q_new = np.clip(q + dq, self.lower, self.upper)
            e_new, _, J_new = self._error(T_goal, q_new)
            cost_new = float(e_new @ e_new)
            if cost_new < cost:
                q, e, J, cost = q_new, e_new, J_new, cost_new
                lam = max(lam * 0.3, 1e-7)
            else:
                lam *= 10.0
                if lam > 1e3:
                    break  # stuck in a local minimum (often at a limit): let the caller restart
        if np.linalg.norm(e[:3]) < POS_TOL_M and np.linalg.norm(e[3:]) < ROT_TOL_RAD:
            return q
        return None

    def _ik_dls_restarts(self, T_goal: np.ndarray, q_seed: np.ndarray, restarts: int,
                         seed: int) -> np.ndarray | None:
        elbows = None
        if self._srs is not None:
            elbows = self._srs_elbows(T_goal)
            if elbows is None:
                return None  # shoulder-wrist distance impossible for any elbow angle in limits
        q = self._dls(T_goal, q_seed, q_seed, max_iter=25)
        if q is not None:
            return q
        if self._srs is not None and self._srs["analytic"]:
            q = self._ik_srs(T_goal, q_seed)
            if q is not None:
                return q
        rng = np.random.default_rng(seed)
        for k in range(restarts):
            q0 = rng.uniform(self.lower, self.upper)
            if elbows is not None:
                q0[3] = elbows[k % len(elbows)]
                if k == 0:
                    q0 = q_seed.copy()
                    q0[3] = elbows[0]
            q = self._dls(T_goal, q0, q_seed)
            if q is not None:
                return q
        return None
