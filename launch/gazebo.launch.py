# SPDX-License-Identifier: Apache-2.0
"""Gazebo Harmonic instead of PyBullet: ``ros2 launch vla_common gazebo.launch.py [graph:=true]``.

Starts gz sim on the exported world (vla_sim/gazebo/world.sdf, see vla_sim.gazebo_export), spawns
the UR5 from ``robot_description`` (ros2_control through gz_ros2_control), spawns
``joint_state_broadcaster`` and ``arm_controller``, runs ros_gz_bridge with the exported
bridge.yaml and publishes the rig calibration latched on ``/cameras/rig_calibration``, so the graph
sees the same topics as with the PyBullet sim_bridge. ``graph:=true`` also starts perception, policy
and executor (the ``robot`` graph of vla_common.graph) on simulated time. Arguments: ``headless``
(server only, default false), ``world_dir`` (another export folder), ``graph``.
Needs ros-jazzy-ros-gz, gz-ros2-control and the ros2_controllers (docker/apt-packages.txt).
"""

from __future__ import annotations


def _actions(context, *_args):
    from launch.actions import ExecuteProcess, IncludeLaunchDescription, SetEnvironmentVariable
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    from launch_ros.actions import Node
    from launch_ros.substitutions import FindPackageShare

    from vla_common.graph import config_dir, graph
    from vla_sim.gazebo_export import OUT_DIR, launch_plan

    cfg = context.launch_configurations
    truthy = ("1", "true", "yes")
    plan = launch_plan(cfg["world_dir"] or OUT_DIR, headless=cfg["headless"].lower() in truthy)
    gz_launch = FindPackageShare("ros_gz_sim").perform(context) + "/launch/gz_sim.launch.py"
    actions = [
        SetEnvironmentVariable("GZ_SIM_RESOURCE_PATH", plan["resource_path"]),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(gz_launch),
            launch_arguments={"gz_args": plan["gz_args"], "on_exit_shutdown": "true"}.items()),
        Node(package="robot_state_publisher", executable="robot_state_publisher", output="screen",
             parameters=[{"robot_description": plan["robot_description"], "use_sim_time": True}]),
        Node(package="ros_gz_sim", executable="create", output="screen",
             arguments=["-topic", "robot_description", "-name", plan["robot"]]),
        Node(package="controller_manager", executable="spawner", output="screen",
             arguments=[*plan["controllers"], "--controller-manager", "/controller_manager"]),
        Node(package="ros_gz_bridge", executable="parameter_bridge", output="screen",
             parameters=[{"config_file": plan["bridge_config"], "use_sim_time": True}]),
        ExecuteProcess(cmd=["ros2", "topic", "pub", "--rate", "1", "--qos-durability", "transient_local",
                            "--qos-reliability", "reliable", "/cameras/rig_calibration",
                            "std_msgs/msg/String", plan["rig_message"]], output="log"),
    ]
    if cfg["graph"].lower() in truthy:
        for node in graph("robot", robot=plan["robot"]):
            params = [str(p) for p in node.params_paths(config_dir())]
            params.append({**node.parameters, "use_sim_time": True})
            actions.append(Node(package=node.package, executable=node.executable, name=node.name,
                                parameters=params, remappings=list(node.remappings), output="screen"))
    return actions


def generate_launch_description():
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    return LaunchDescription([
        DeclareLaunchArgument("headless", default_value="false", description="gz server only (no GUI)"),
        DeclareLaunchArgument("world_dir", default_value="",
                              description="export folder (python -m vla_sim.gazebo_export --out DIR)"),
        DeclareLaunchArgument("graph", default_value="false",
                              description="also start perception, policy and executor on simulated time"),
        OpaqueFunction(function=_actions),
    ])
