# SPDX-License-Identifier: Apache-2.0
"""Simulated robot: sim_bridge, perception, policy and executor (``ros2 launch launch/sim.launch.py``).

Arguments: ``robot:=ur5|humanoid_arm``, ``local:=true|false`` (loopback-only DDS, default true).
The node list comes from vla_common.graph, the same description ``vla launch sim`` uses.
"""


def generate_launch_description():
    from vla_common.ros_launch import launch_description

    return launch_description("sim", local_default=True)
