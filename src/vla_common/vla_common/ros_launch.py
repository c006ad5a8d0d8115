# SPDX-License-Identifier: Apache-2.0
"""``ros2 launch`` support: a LaunchDescription built from :mod:`vla_common.graph`.

``launch/sim.launch.py`` and ``launch/robot.launch.py`` call :func:`launch_description`, so
``ros2 launch`` and ``vla launch`` start exactly the same nodes with the same parameter files,
parameters and remappings. Needs the ROS ``launch`` and ``launch_ros`` packages (a ROS install or
the Docker image); they are imported inside the functions so this module imports without them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import yaml

from vla_common.graph import ROBOTS, NodeSpec, config_dir, graph
from vla_common.ros_env import localhost_env


@dataclass(frozen=True)
class ParamArgument:
    """A launch argument that sets one node parameter when given (``""`` = keep the YAML value).

    The value is read as YAML (``0.1`` -> float, ``true`` -> bool, text stays text).
    """

    name: str
    node: str
    parameter: str
    description: str
    choices: tuple[str, ...] = ()


def apply_arguments(nodes: list[NodeSpec], arguments: list[ParamArgument] | tuple[ParamArgument, ...],
                    values: dict[str, str]) -> list[NodeSpec]:
    """Set the parameters of ``arguments`` that have a non-empty value in ``values`` (in place).

    Raises:
        ValueError: an argument names a node that is not in ``nodes``, or a value is not one of its
            choices.
    """
    by_name = {n.name: n for n in nodes}
    for arg in arguments:
        value = str(values.get(arg.name, "")).strip()
        if not value:
            continue
        if arg.node not in by_name:
            raise ValueError(f"launch argument {arg.name}: no node {arg.node!r} in the graph")
        if arg.choices and value not in arg.choices:
            raise ValueError(f"launch argument {arg.name}:={value}: choose one of {list(arg.choices)}")
        by_name[arg.node].parameters[arg.parameter] = yaml.safe_load(value)
    return nodes


def _nodes_for(context: Any, graph_name: str, arguments: tuple[ParamArgument, ...] = ()) -> list[Any]:
    """OpaqueFunction body: resolve the launch arguments and build the Node actions."""
    from launch.actions import SetEnvironmentVariable
    from launch_ros.actions import Node

    robot = context.launch_configurations["robot"]
    local = context.launch_configurations["local"].lower() in ("1", "true", "yes")
    actions: list[Any] = []
    if local:
        domain = os.environ.get("ROS_DOMAIN_ID", "0")
        env = localhost_env(domain_id=int(domain) if domain.isdigit() else 0)
        for key in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_DOMAIN_ID", "FASTRTPS_DEFAULT_PROFILES_FILE",
                    "FASTDDS_DEFAULT_PROFILES_FILE", "RMW_IMPLEMENTATION"):
            actions.append(SetEnvironmentVariable(key, env[key]))
    config = config_dir()
    nodes = apply_arguments(graph(graph_name, robot=robot), arguments,
                            {a.name: context.launch_configurations.get(a.name, "") for a in arguments})
    for node in nodes:
        params: list[Any] = [str(p) for p in node.params_paths(config)]
        if node.parameters:
            params.append(dict(node.parameters))
        actions.append(Node(package=node.package, executable=node.executable, name=node.name,
                            parameters=params, remappings=list(node.remappings), output="screen",
                            emulate_tty=True))
    return actions


def launch_description(graph_name: str, local_default: bool,
                       arguments: list[ParamArgument] | tuple[ParamArgument, ...] = ()) -> Any:
    """LaunchDescription of graph ``graph_name`` with arguments ``robot``, ``local`` and ``arguments``."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    return LaunchDescription([
        DeclareLaunchArgument("robot", default_value="ur5", choices=list(ROBOTS),
                              description="robot model (URDF + YAML in vla_executor/robots)"),
        DeclareLaunchArgument("local", default_value="true" if local_default else "false",
                              description="keep DDS on loopback (vla_common.ros_env.localhost_env)"),
        *[DeclareLaunchArgument(a.name, default_value="", description=a.description) for a in arguments],
        OpaqueFunction(function=_nodes_for, args=[graph_name, tuple(arguments)]),
    ])
