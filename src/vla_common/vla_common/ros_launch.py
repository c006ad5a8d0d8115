# SPDX-License-Identifier: Apache-2.0
"""``ros2 launch`` support: a LaunchDescription built from :mod:`vla_common.graph`.

``launch/sim.launch.py`` and ``launch/robot.launch.py`` call :func:`launch_description`, so
``ros2 launch`` and ``vla launch`` start exactly the same nodes with the same parameter files,
parameters and remappings. Needs the ROS ``launch`` and ``launch_ros`` packages (a ROS install or
the Docker image); they are imported inside the functions so this module imports without them.
"""

from __future__ import annotations

import os
from typing import Any

from vla_common.graph import ROBOTS, config_dir, graph
from vla_common.ros_env import localhost_env


def _nodes_for(context: Any, graph_name: str) -> list[Any]:
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
    for node in graph(graph_name, robot=robot):
        params: list[Any] = [str(p) for p in node.params_paths(config)]
        if node.parameters:
            params.append(dict(node.parameters))
        actions.append(Node(package=node.package, executable=node.executable, name=node.name,
                            parameters=params, remappings=list(node.remappings), output="screen",
                            emulate_tty=True))
    return actions


def launch_description(graph_name: str, local_default: bool) -> Any:
    """LaunchDescription of graph ``graph_name`` with arguments ``robot`` and ``local``."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    return LaunchDescription([
        DeclareLaunchArgument("robot", default_value="ur5", choices=list(ROBOTS),
                              description="robot model (URDF + YAML in vla_executor/robots)"),
        DeclareLaunchArgument("local", default_value="true" if local_default else "false",
                              description="keep DDS on loopback (vla_common.ros_env.localhost_env)"),
        OpaqueFunction(function=_nodes_for, args=[graph_name]),
    ])
