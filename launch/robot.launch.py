# SPDX-License-Identifier: Apache-2.0
"""Real robot: perception, policy and executor (``ros2 launch launch/robot.launch.py robot:=ur5``).

Cameras and the arm controller come from the robot's own drivers (realsense2_camera,
ros2_control); DDS keeps the ROS defaults unless ``local:=true``. The node list comes from
vla_common.graph, the same description ``vla launch robot`` uses.
"""


def generate_launch_description():
    from vla_common.ros_launch import launch_description

    return launch_description("robot", local_default=False)
