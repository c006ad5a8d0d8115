# SPDX-License-Identifier: Apache-2.0
"""The generated MoveIt configuration: fresh from the URDFs, consistent as MoveIt checks it, and the
MoveIt backend started on it (ConfiguredFakeMoveItPy: MoveIt cannot be installed here)."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest
import yaml

from vla_executor.motions import MotionConfig
from vla_executor.robot_model import RobotModel
from vla_executor.robots import moveit_config as mc

sys.path.insert(0, str(Path(__file__).parent))
from fake_moveit_config import ConfiguredFakeMoveItPy, check_config  # noqa: E402


@pytest.mark.parametrize("robot", mc.ROBOTS)
def test_shipped_moveit_files_match_generator(robot):
    shipped = {p.name: p.read_text() for p in mc.config_dir(robot).iterdir()}
    fresh = mc.build(robot)
    assert shipped.keys() == fresh.keys()
    for name, text in fresh.items():
        assert shipped[name] == text, f"moveit/{robot}/{name} is stale: run python -m {mc.__name__}"


@pytest.mark.parametrize("robot", mc.ROBOTS)
def test_configuration_is_consistent_with_the_robot(robot):
    model = RobotModel.load(robot)
    params = mc.moveit_params(robot)
    info = check_config(params)
    assert info.groups["arm"] == list(model.joint_names)
    assert info.groups["gripper"] == list(model.gripper["joints"])
    ctrl = params["moveit_simple_controller_manager"]
    name = ctrl["controller_names"][0]
    assert ctrl[name]["joints"] == list(model.joint_names) and ctrl[name]["type"] == "FollowJointTrajectory"
    assert name == ("scaled_joint_trajectory_controller" if robot == "ur5" else "arm_controller")
    limits = params["robot_description_planning"]["joint_limits"]
    acc = [limits[j]["max_acceleration"] for j in model.joint_names]
    assert np.allclose(acc, model.acc_limits, atol=1e-6)
    assert np.allclose([limits[j]["min_position"] for j in model.joint_names], model.lower, atol=1e-6)
    home = ET.fromstring(params["robot_description_semantic"]).find("group_state[@name='home']")
    assert np.allclose([float(j.get("value")) for j in home], model.home, atol=1e-5)


@pytest.mark.parametrize("robot", mc.ROBOTS)
def test_disabled_collisions_are_computed_from_the_model(robot):
    srdf = ET.fromstring(mc.moveit_params(robot)["robot_description_semantic"])
    disabled = {tuple(sorted((e.get("link1"), e.get("link2")))): e.get("reason")
                for e in srdf.iter("disable_collisions")}
    assert mc.adjacent_pairs(robot) == {p for p, why in disabled.items() if why == "Adjacent"}
    # the first 200 of the generator's samples (same seed): a pair seen in contact stays checked
    counts, _ = mc.sample_contacts(robot, n_samples=200)
    touching = {p for p, n in counts.items() if n > 0}
    assert touching, "the sampled configurations never brought two links into contact"
    assert not touching & set(disabled)
    assert any(why == "Never" for why in disabled.values())


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c["robot_description_kinematics"].update(manipulator=c["robot_description_kinematics"]["arm"]),
     "unknown group 'manipulator'"),
    (lambda c: c.update(robot_description_semantic=c["robot_description_semantic"].replace(
        'link2="wrist_2_link"', 'link2="wrist_two_link"', 1)), "wrist_two_link"),
    (lambda c: c["plan_request_params"].update(planning_pipeline="pilz"), "pipeline 'pilz'"),
    (lambda c: c["robot_description_planning"]["joint_limits"]["elbow_joint"].update(max_position=7.0),
     "looser than the URDF for elbow_joint"),
])
def test_config_check_finds_inconsistencies(mutate, message):
    cfg = copy.deepcopy(mc.moveit_params("ur5"))
    mutate(cfg)
    with pytest.raises(RuntimeError, match=message):
        check_config(cfg)


def test_moveit_backend_starts_on_the_generated_configuration():
    pytest.importorskip("geometry_msgs.msg")
    from vla_executor.backends import MoveItBackend

    model = RobotModel.load("ur5")
    backend = MoveItBackend(model, group="arm", pose_link="tcp", frame_id="base_link",
                            moveit_cls=ConfiguredFakeMoveItPy, cfg=MotionConfig(speed_scale=0.1))
    fake = backend.robot
    assert isinstance(fake, ConfiguredFakeMoveItPy) and fake.node_name == "vla_moveit_py"
    assert fake.config_dict["robot_description_semantic"] == (mc.config_dir("ur5") / "ur5.srdf").read_text()
    assert fake.config_dict["plan_request_params"]["max_velocity_scaling_factor"] == pytest.approx(0.1)
    T = np.eye(4)
    T[:3, :3] = np.diag([1.0, -1.0, -1.0])
    T[:3, 3] = [0.5, 0.1, 0.1]
    plan = backend.plan_to_pose(T, name="to_pregrasp")
    assert backend.execute(plan)
    kinds = [c[0] for c in fake.calls]
    assert kinds[:4] == ["get_planning_component", "set_start_state_to_current_state", "set_goal_state",
                         "plan"]
    # the shipped file itself is what reached MoveIt, not a dict built on the side
    assert yaml.safe_load((mc.config_dir("ur5") / "kinematics.yaml").read_text()) == \
        fake.config_dict["robot_description_kinematics"]
    with pytest.raises(RuntimeError, match="Invalid group name 'manipulator'"):
        MoveItBackend(model, group="manipulator", moveit_cls=ConfiguredFakeMoveItPy)
    with pytest.raises(RuntimeError, match="pose_link 'gripper_tip'"):
        MoveItBackend(model, pose_link="gripper_tip", moveit_cls=ConfiguredFakeMoveItPy).plan_to_pose(T)
