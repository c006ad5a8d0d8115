# SPDX-License-Identifier: Apache-2.0
"""launch/*.launch.py: import without the ROS launch packages, build the graph where they exist."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

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
