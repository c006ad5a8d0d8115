# SPDX-License-Identifier: Apache-2.0
"""Robot descriptions and kinematics: URDF FK vs PyBullet and ur_analytic_ik, IK accuracy, refusals."""

from __future__ import annotations

from xml.etree import ElementTree

import numpy as np
import pybullet as pb
import pytest
import yaml

from vla_common.transforms import quat_to_matrix
from vla_executor.robot_model import RobotModel, pose_error
from vla_executor.robots import generate

ROBOTS = ["ur5", "humanoid_arm"]


@pytest.fixture(scope="module", params=ROBOTS)
def model(request) -> RobotModel:
    return RobotModel.load(request.param)


def _origin(el) -> np.ndarray:
    """(4, 4) transform of a URDF <origin> element (identity when absent)."""
    T = np.eye(4)
    if el is None:
        return T
    T[:3, :3] = generate.rpy_to_rot(tuple(float(v) for v in el.get("rpy", "0 0 0").split()))
    T[:3, 3] = [float(v) for v in el.get("xyz", "0 0 0").split()]
    return T


def _urdf_numbers(text: str) -> dict[str, np.ndarray]:
    """Every number of a URDF that matters to kinematics and dynamics, keyed by where it sits.

    Inertials are compared as the full (3, 3) tensor in the link frame, so two equivalent
    principal-axis rotations (Euler angles are not unique) compare equal.
    """
    root = ElementTree.fromstring(text)
    out: dict[str, np.ndarray] = {}
    for link in root.iter("link"):
        name = link.get("name")
        inertial = link.find("inertial")
        T = _origin(inertial.find("origin"))
        i = inertial.find("inertia").attrib
        diag = np.diag([float(i["ixx"]), float(i["iyy"]), float(i["izz"])])
        out[f"{name}/mass"] = np.array([float(inertial.find("mass").get("value"))])
        out[f"{name}/com"] = T[:3, 3]
        out[f"{name}/inertia"] = T[:3, :3] @ diag @ T[:3, :3].T
        for k, geom in enumerate(link.iter("collision")):
            out[f"{name}/collision{k}"] = _origin(geom.find("origin"))
            shape = geom.find("geometry")[0]
            out[f"{name}/collision{k}/{shape.tag}"] = np.array(
                [float(v) for key in sorted(shape.attrib) for v in shape.get(key).split()])
    for joint in root.iter("joint"):
        name = joint.get("name")
        out[f"{name}/origin"] = _origin(joint.find("origin"))
        for tag in ("axis", "limit"):
            el = joint.find(tag)
            if el is not None:
                out[f"{name}/{tag}"] = np.array(
                    [float(v) for key in sorted(el.attrib) for v in el.get(key).split()])
    return out


def test_shipped_files_match_generator():
    """The shipped URDF/YAML describe the same robot as the generator, compared as numbers (1e-9)."""
    for name, (urdf, desc) in generate.build().items():
        shipped = _urdf_numbers((generate.HERE / f"{name}.urdf").read_text())
        fresh = _urdf_numbers(urdf)
        assert shipped.keys() == fresh.keys(), f"{name}.urdf is stale (links/joints differ): run generate.py"
        for key, value in fresh.items():
            assert np.allclose(shipped[key], value, rtol=0.0, atol=1e-9), \
                f"{name}.urdf is stale at {key}: {shipped[key]} != {value}; run generate.py"
        shipped_yaml = yaml.safe_load((generate.HERE / f"{name}.yaml").read_text())
        assert shipped_yaml == yaml.safe_load(yaml.safe_dump(desc)), f"{name}.yaml is stale: run generate.py"


def test_generator_writes_canonical_text():
    """Equivalent inputs give the same text: no -0, one Euler triple, axes fixed inside repeated moments."""
    assert generate._f(-3.47e-18) == "0" and generate._f(-0.0) == "0"
    flipped = np.diag([-1.0, -1.0, 1.0]) @ generate.rpy_to_rot((0.3, -0.2, 1.1)) @ np.diag([-1.0, -1.0, 1.0])
    assert np.allclose(generate.rpy_to_rot(generate.rot_to_rpy(flipped)), flipped, atol=1e-12)
    # yaw of exactly +-pi is written as +pi whichever sign the last bit gave
    for eps in (1e-17, -1e-17):
        R = generate.rpy_to_rot((0.0, 0.0, np.pi))
        R[0, 1] += eps
        assert generate.rot_to_rpy(R)[2] == np.pi
    # a symmetric tensor, rotated by any orthonormal basis of its repeated eigenspace, gives one answer
    rng = np.random.default_rng(0)
    inertia = np.diag([2.0, 2.0, 5.0])
    answers = set()
    for _ in range(10):
        a = rng.uniform(0, 2 * np.pi)
        Q = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])
        moments, axes = generate.principal_axes(Q @ inertia @ Q.T)
        assert np.allclose(axes @ np.diag(moments) @ axes.T, inertia, atol=1e-12)
        assert np.isclose(np.linalg.det(axes), 1.0)
        answers.add(tuple(np.round(axes, 9).ravel()))
    assert len(answers) == 1


def test_unknown_robot_names_the_choices():
    with pytest.raises(ValueError, match="available.*humanoid_arm.*ur5"):
        RobotModel.load("ur10")


def test_fk_matches_pybullet(model):
    cid = pb.connect(pb.DIRECT)
    try:
        body = pb.loadURDF(str(model.urdf_path), useFixedBase=True, physicsClientId=cid)
        n = pb.getNumJoints(body, physicsClientId=cid)
        info = [pb.getJointInfo(body, i, physicsClientId=cid) for i in range(n)]
        joint_idx = {j[1].decode(): j[0] for j in info}
        tcp_idx = next(j[0] for j in info if j[12].decode() == model.tool_frame)
        rng = np.random.default_rng(3)
        for _ in range(30):
            q = rng.uniform(model.lower, model.upper)
            for name, v in zip(model.joint_names, q):
                pb.resetJointState(body, joint_idx[name], v, physicsClientId=cid)
            st = pb.getLinkState(body, tcp_idx, computeForwardKinematics=True, physicsClientId=cid)
            T = np.eye(4)
            T[:3, :3] = quat_to_matrix(np.array(st[5]))
            T[:3, 3] = st[4]
            assert np.abs(T - model.fk(q)).max() < 1e-6
    finally:
        pb.disconnect(cid)


def test_ur5_flange_matches_ur_analytic_ik():
    import ur_analytic_ik

    m = RobotModel.load("ur5")
    T_flange_tcp = np.eye(4)
    T_flange_tcp[2, 3] = m.config["tcp_offset_m"]
    Rz_pi = np.diag([-1.0, -1.0, 1.0, 1.0])  # base_link -> DH base (as ur_description)
    rng = np.random.default_rng(0)
    for _ in range(100):
        q = rng.uniform(m.lower, m.upper)
        T_ours = m.fk(q) @ np.linalg.inv(T_flange_tcp)
        T_ref = Rz_pi @ np.asarray(ur_analytic_ik.ur5.forward_kinematics(*q))
        assert np.abs(T_ours - T_ref).max() < 1e-6


def test_fk_batch_matches_single(model):
    Q = np.random.default_rng(1).uniform(model.lower, model.upper, (5, model.dof))
    assert np.allclose(model.fk_batch(Q), np.stack([model.fk(q) for q in Q]))


def test_jacobian_matches_finite_differences(model):
    q = np.random.default_rng(2).uniform(model.lower * 0.5, model.upper * 0.5)
    J = model.jacobian(q)
    T0 = model.fk(q)
    eps = 1e-6
    for i in range(model.dof):
        dq = np.zeros(model.dof)
        dq[i] = eps
        T1 = model.fk(q + dq)
        v = (T1[:3, 3] - T0[:3, 3]) / eps
        W = (T1[:3, :3] @ T0[:3, :3].T - np.eye(3)) / eps
        w = np.array([W[2, 1], W[0, 2], W[1, 0]])
        assert np.allclose(J[:3, i], v, atol=1e-4) and np.allclose(J[3:, i], w, atol=1e-4)


def test_ik_200_random_reachable_poses(model):
    """Reachable = FK of a random in-limit configuration; solved within 1 mm and 0.5 deg, in limits."""
    rng = np.random.default_rng(42)
    for k in range(200):
        q_true = rng.uniform(model.lower, model.upper)
        T = model.fk(q_true)
        near = np.clip(q_true + rng.normal(0, 0.3, model.dof), model.lower, model.upper)
        seed = model.home if k % 2 == 0 else near
        q = model.ik(T, seed)
        assert q is not None, f"pose {k} (FK of {q_true.round(3)}) not solved"
        assert model.within_limits(q)
        dp, dr = pose_error(model.fk(q), T)
        assert dp < 1e-3 and np.degrees(dr) < 0.5


def test_ik_returns_solution_nearest_seed_ur5():
    m = RobotModel.load("ur5")
    q_true = np.array([0.3, -1.2, 1.4, -1.7, -1.5, 0.4])
    q = m.ik(m.fk(q_true), q_true + 0.05)
    assert np.allclose(q, q_true, atol=1e-6)


def test_ik_refuses_unreachable(model):
    shoulder = model.fk(model.home)[:3, 3] * 0  # base origin
    far = np.eye(4)
    far[:3, 3] = shoulder + np.array([2.0, 0.0, 0.3])
    assert model.ik(far, model.home) is None
    # just beyond the stretched arm, pointing back at the robot: outside reach but inside the cheap bound
    q_stretch = np.zeros(model.dof)
    T = model.fk(q_stretch)
    p0 = model._steps[0].T_before[:3, 3]
    direction = (T[:3, 3] - p0) / np.linalg.norm(T[:3, 3] - p0)
    T_bad = np.eye(4)
    T_bad[:3, 3] = p0 + direction * (np.linalg.norm(T[:3, 3] - p0) - 0.01)
    z = -direction
    x = np.cross([0.0, 0.0, 1.0] if abs(z[2]) < 0.9 else [1.0, 0.0, 0.0], z)
    x /= np.linalg.norm(x)
    T_bad[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
    assert model.ik(T_bad, model.home) is None


def test_home_pose_is_tcp_down_above_table(model):
    T = model.fk(model.home)
    assert model.within_limits(model.home)
    assert np.allclose(T[:3, 3], model.config["home_tcp_xyz"], atol=1e-4)
    assert T[2, 2] < -0.999  # tcp z (approach) points down
    assert T[2, 3] > model.table_height + 0.2


def test_ik_rejects_bad_input(model):
    with pytest.raises(ValueError, match="finite"):
        model.ik(np.full((4, 4), np.nan), model.home)
    with pytest.raises(ValueError, match="q_seed"):
        model.ik(np.eye(4), np.zeros(3))
