# SPDX-License-Identifier: Apache-2.0
"""ConfiguredFakeMoveItPy: FakeMoveItPy started from a MoveIt parameter dict, checked as MoveIt would.

``MoveItBackend`` creates its MoveItPy as ``moveit_cls(node_name=..., config_dict=...)`` with the
generated configuration (vla_executor.robots.moveit_config.moveit_params). This fake parses and
cross-checks that configuration the way MoveIt does when MoveItPy starts (:func:`check_config`):
the SRDF parses and names only links and joints of the URDF, group states set exactly their group's
joints, kinematics / OMPL / controller entries refer to existing groups and joints, joint limits are
no looser than the URDF, the pipeline named in ``plan_request_params`` is configured. Afterwards
``get_planning_component`` refuses a group that is not in the SRDF (moveit_py throws "Invalid group
name") and ``set_goal_state`` a link that is not in the URDF.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree import ElementTree as ET

from fake_moveit import FakeMoveItPy, FakePlanningComponent


@dataclass
class MoveItModelInfo:
    """What the checked configuration defines: URDF links and SRDF groups -> their active joints."""

    links: set[str]
    groups: dict[str, list[str]]


def check_config(cfg: dict) -> MoveItModelInfo:
    """Parse and cross-check a MoveIt parameter dict; RuntimeError naming the first inconsistency."""
    urdf = ET.fromstring(cfg["robot_description"])
    srdf = ET.fromstring(cfg["robot_description_semantic"])
    if srdf.get("name") != urdf.get("name"):
        raise RuntimeError(f"SRDF is for {srdf.get('name')!r}, URDF for {urdf.get('name')!r}")
    links = {link.get("name") for link in urdf.iter("link")}
    joints = {j.get("name"): j for j in urdf.iter("joint")}
    parent_joint = {j.find("child").get("link"): j for j in joints.values()}
    groups: dict[str, list[str]] = {}
    for g in srdf.iter("group"):
        members = [j.get("name") for j in g.findall("joint")]
        for chain in g.findall("chain"):
            base, tip = chain.get("base_link"), chain.get("tip_link")
            path, link = [], tip
            while link != base:
                if link not in parent_joint:
                    raise RuntimeError(f"group {g.get('name')}: no chain from {base} to {tip}")
                path.append(parent_joint[link].get("name"))
                link = parent_joint[link].find("parent").get("link")
            members += [j for j in reversed(path) if joints[j].get("type") != "fixed"]
        unknown = [j for j in members if j not in joints]
        if unknown:
            raise RuntimeError(f"group {g.get('name')}: joints {unknown} are not in the URDF")
        groups[g.get("name")] = members
    for el in srdf.iter("disable_collisions"):
        for key in ("link1", "link2"):
            if el.get(key) not in links:
                raise RuntimeError(f"disable_collisions names link {el.get(key)!r}, not in the URDF")
    for ee in srdf.iter("end_effector"):
        if ee.get("parent_link") not in links or ee.get("group") not in groups:
            raise RuntimeError(f"end_effector {ee.get('name')} refers to an unknown link or group")
    for vj in srdf.iter("virtual_joint"):
        if vj.get("child_link") not in links:
            raise RuntimeError(f"virtual_joint child {vj.get('child_link')!r} is not in the URDF")
    for state in srdf.iter("group_state"):
        names = [j.get("name") for j in state.iter("joint")]
        if sorted(names) != sorted(groups.get(state.get("group"), [""])):
            raise RuntimeError(f"group_state {state.get('name')} does not set exactly its group's joints")
        for j in state.iter("joint"):
            lim = joints[j.get("name")].find("limit")
            if not float(lim.get("lower")) - 1e-6 <= float(j.get("value")) <= float(lim.get("upper")) + 1e-6:
                raise RuntimeError(f"group_state {state.get('name')}: {j.get('name')} outside its limits")
    for group in cfg["robot_description_kinematics"]:
        if group not in groups:
            raise RuntimeError(f"kinematics.yaml configures unknown group {group!r}")
    for name, lim in cfg["robot_description_planning"]["joint_limits"].items():
        el = joints[name].find("limit")
        if (lim["max_velocity"] > float(el.get("velocity")) + 1e-6
                or lim["min_position"] < float(el.get("lower")) - 1e-6
                or lim["max_position"] > float(el.get("upper")) + 1e-6):
            raise RuntimeError(f"joint_limits.yaml is looser than the URDF for {name}")
    pipeline = cfg["plan_request_params"]["planning_pipeline"]
    if pipeline not in cfg["planning_pipelines"]["pipeline_names"] or pipeline not in cfg:
        raise RuntimeError(f"planning pipeline {pipeline!r} is not configured")
    ompl = cfg[pipeline]
    for key, opts in ompl.items():
        if isinstance(opts, dict) and "default_planner_config" in opts:
            if key not in groups:
                raise RuntimeError(f"OMPL configures unknown group {key!r}")
            if opts["default_planner_config"] not in ompl["planner_configs"]:
                raise RuntimeError(f"OMPL planner {opts['default_planner_config']} is not defined")
    manager = cfg["moveit_simple_controller_manager"]
    for name in manager["controller_names"]:
        if not set(manager[name]["joints"]) <= set(joints):
            raise RuntimeError(f"controller {name} drives joints that are not in the URDF")
    return MoveItModelInfo(links, groups)


class ConfiguredFakeMoveItPy(FakeMoveItPy):
    """FakeMoveItPy(node_name=..., config_dict=...) that checks the configuration first."""

    def __init__(self, node_name: str = "moveit_py", config_dict: dict | None = None, **kwargs):
        if config_dict is None:
            raise RuntimeError("MoveItPy without parameters: robot_description is missing")
        info = check_config(config_dict)
        if "model" in FakeMoveItPy.__dataclass_fields__ and "model" not in kwargs:
            # plans are real joint trajectories of the robot the URDF describes
            from vla_executor.robot_model import RobotModel

            kwargs["model"] = RobotModel.load(ET.fromstring(config_dict["robot_description"]).get("name"))
        super().__init__(node_name=node_name, **kwargs)
        self.config_dict = config_dict
        self.info = info

    def get_planning_component(self, group: str) -> FakePlanningComponent:
        if group not in self.info.groups:
            raise RuntimeError(f"Invalid group name {group!r} (SRDF groups: {sorted(self.info.groups)})")
        component = super().get_planning_component(group)
        links, set_goal = self.info.links, component.set_goal_state

        def checked_set_goal_state(**kwargs):
            if kwargs.get("pose_link") not in links:
                raise RuntimeError(f"pose_link {kwargs.get('pose_link')!r} is not a link of the robot model")
            return set_goal(**kwargs)

        component.set_goal_state = checked_set_goal_state
        return component
