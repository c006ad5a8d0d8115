# SPDX-License-Identifier: Apache-2.0
"""launch/*.launch.py: import without the ROS launch packages, build the graph where they exist."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from vla_common.graph import graph

LAUNCH_DIR = Path(__file__).resolve().parents[2] / "launch"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name.replace(".", "_"), LAUNCH_DIR / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["sim.launch.py", "robot.launch.py", "gazebo.launch.py"])
def test_launch_file_imports_without_launch_package(name):
    assert callable(_load(name).generate_launch_description)


@pytest.mark.parametrize("name, graph_name", [("sim.launch.py", "sim"), ("robot.launch.py", "robot")])
def test_launch_description_has_graph_nodes(name, graph_name):
    pytest.importorskip("launch")
    pytest.importorskip("launch_ros")
    from launch import LaunchContext
    from launch.actions import OpaqueFunction

    ld = _load(name).generate_launch_description()
    context = LaunchContext()
    for entity in ld.entities:
        if not isinstance(entity, OpaqueFunction):
            entity.visit(context)
    opaque = next(e for e in ld.entities if isinstance(e, OpaqueFunction))
    nodes = [a for a in opaque.execute(context) if type(a).__name__ == "Node"]
    assert [n.node_name for n in nodes] == [n.name for n in graph(graph_name)]


def test_robot_launch_arguments_set_node_parameters():
    from vla_common.ros_launch import apply_arguments

    args = _load("robot.launch.py").ARGUMENTS
    nodes = apply_arguments(graph("robot"), args, {"backend": "moveit", "speed_scale": "0.1",
                                                   "camera_source": "pyrealsense2", "rig_calibration": ""})
    by_name = {n.name: n.parameters for n in nodes}
    assert by_name["executor"]["backend"] == "moveit" and by_name["executor"]["speed_scale"] == 0.1
    assert by_name["perception"] == {"camera_source": "pyrealsense2"}  # "" keeps the YAML value
    with pytest.raises(ValueError, match=r"choose one of \['builtin', 'moveit'\]"):
        apply_arguments(graph("robot"), args, {"backend": "magic"})
    declared = {n.name: {k for path in n.params_paths()
                         for k in yaml.safe_load(path.read_text())[n.name]["ros__parameters"]}
                for n in graph("robot")}
    for a in args:  # every argument names a parameter the node's YAML files declare
        assert a.parameter in declared[a.node], a
